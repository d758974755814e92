package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ephpm-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "ephpm")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build ephpm: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	addr   string
	runDir string
	out    *syncBuilder
	done   chan error
}

// syncBuilder is the child's output: written by the goroutine that scans
// it, read by the test.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startEphpm runs the built binary in dir with extra environment and
// waits until it is ready.
func startEphpm(t testing.TB, dir string, env ...string) *proc {
	t.Helper()
	testutil.NeedProgram(t, "php-fpm8.2", "php-fpm")
	p := &proc{addr: freePort(t), runDir: filepath.Join(testutil.WorldReadableDir(t), "run"), out: &syncBuilder{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "serve")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "EPHPM_SERVER__LISTEN="+p.addr, "EPHPM_SERVER__RUNTIME_DIR="+p.runDir,
		"EPHPM_PHP__WORKERS=2", "EPHPM_KV__ENABLED=false", "EPHPM_DB_SQLITE_PROXY__ENABLED=false")
	p.cmd.Env = append(p.cmd.Env, env...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			p.out.WriteString(s.Text() + "\n")
		}
	}()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	})
	testutil.RetryUntil(t, 30*time.Second, func() error {
		select {
		case err := <-p.done:
			t.Fatalf("ephpm exited: %v\n%s", err, p.out.String())
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/_ephpm/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("ready: %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func run(t testing.TB, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

func TestCLI(t *testing.T) {
	if code, out := run(t, "version"); code != 0 || !strings.HasPrefix(out, "ephpm ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out := run(t, "--help"); code != 0 || !strings.Contains(out, "ephpm serve") {
		t.Errorf("--help: %d %q", code, out)
	}
	if code, out := run(t, "frobnicate"); code != 2 || !strings.Contains(out, "unknown command") {
		t.Errorf("unknown command: %d %q", code, out)
	}
}

func TestConfigCheck(t *testing.T) {
	testutil.NeedProgram(t, "php-fpm8.2", "php-fpm")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[server]\nlisten = \"127.0.0.1:9999\"\n[php]\nworkers = 2\n"), 0o644)
	if code, out := run(t, "config", "check", "--config", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("good config: %d %q", code, out)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[server]\nlisten = \"127.0.0.1:9999\"\n\n[php]\nworkers = -1\nmemroy_limit = \"1G\"\n"), 0o644)
	code, out := run(t, "config", "check", "--config", bad)
	if code != 1 || !strings.Contains(out, "bad.toml:6: php.memroy_limit: unknown key") {
		t.Errorf("bad config: %d %q", code, out)
	}
	bad2 := filepath.Join(dir, "bad2.toml")
	os.WriteFile(bad2, []byte("[php]\nworkers = 0\n"), 0o644)
	if code, out := run(t, "config", "check", "--config", bad2); code != 1 || !strings.Contains(out, "bad2.toml:2: php.workers") {
		t.Errorf("bad value: %d %q", code, out)
	}
}

// TestServeZeroConfig: `ephpm serve` in a directory, no config file.
func TestServeZeroConfig(t *testing.T) {
	dir, _ := filepath.Abs("testdata/site")
	p := startEphpm(t, dir)
	if code, body := get(t, "http://"+p.addr+"/some/pretty/permalink/"); code != 200 || body != "front:/some/pretty/permalink/" {
		t.Errorf("permalink: %d %q", code, body)
	}
	code, body := get(t, "http://"+p.addr+"/ini.php")
	if code != 200 || !strings.HasPrefix(body, "128M 100M") {
		t.Errorf("ini: %d %q", code, body)
	}
	if os.Geteuid() == 0 && !strings.HasSuffix(body, "www-data") {
		t.Errorf("PHP runs as root: %q", body)
	}
	// serve re-executed itself (same PID) with sysmon kept awake.
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid)); err != nil || !strings.Contains(string(env), "GODEBUG=schedtrace=2147483647") {
		t.Errorf("serve's environment lacks GODEBUG=schedtrace=2147483647 (err %v)", err)
	}
	if code, body := get(t, "http://"+p.addr+"/metrics"); code != 200 || !strings.Contains(body, "ephpm_phpfpm_restarts_total") || !strings.Contains(body, "ephpm_php_pool_busy") {
		t.Errorf("metrics: %d", code)
	}
	// The access log is JSON lines from slog.
	testutil.RetryUntil(t, 5*time.Second, func() error {
		if !strings.Contains(p.out.String(), `"msg":"access"`) || !strings.Contains(p.out.String(), `"uri":"/ini.php"`) {
			return fmt.Errorf("no access log line yet")
		}
		return nil
	})
}

func TestSIGTERMDrainsInFlight(t *testing.T) {
	dir, _ := filepath.Abs("testdata/site")
	// With every service on, as by default: all of them must stop.
	p := startEphpm(t, dir, "EPHPM_DB_SQLITE_PROXY__ENABLED=true", "EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN="+freePort(t),
		"EPHPM_SERVER__DATA_DIR="+t.TempDir(), "EPHPM_KV__ENABLED=true", "EPHPM_KV__LISTEN="+freePort(t))
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + p.addr + "/slow.php?ms=1500")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	// Wait until the request is in PHP.
	testutil.RetryUntil(t, 10*time.Second, func() error {
		_, m := get(t, "http://"+p.addr+"/metrics")
		if !strings.Contains(m, "ephpm_php_pool_busy 1") {
			return fmt.Errorf("slow request not in flight yet")
		}
		return nil
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q %v", r.code, r.body, r.err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, p.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ephpm did not exit after SIGTERM")
	}
	if pids := testutil.ProcessesMatching(p.runDir); len(pids) > 0 {
		t.Errorf("php-fpm left running after shutdown: %v", pids)
	}
}

func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 {
			if pp, _ := strconv.Atoi(f[1]); pp == pid {
				c, _ := strconv.Atoi(e.Name())
				out = append(out, c)
			}
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// TestSIGKILLLeavesNoPHP: php-fpm never outlives ephpm.
func TestSIGKILLLeavesNoPHP(t *testing.T) {
	dir, _ := filepath.Abs("testdata/site")
	p := startEphpm(t, dir)
	masters := testutil.ProcessesMatching(p.runDir)
	if len(masters) == 0 {
		t.Fatal("no php-fpm master found")
	}
	all := append([]int(nil), masters...)
	for _, m := range masters {
		all = append(all, childrenOf(m)...)
	}
	if len(all) < 3 {
		t.Fatalf("expected a master and 2 workers, found %v", all)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	testutil.RetryUntil(t, 15*time.Second, func() error {
		for _, pid := range all {
			if alive(pid) {
				return fmt.Errorf("php-fpm process %d still running after ephpm was killed", pid)
			}
		}
		return ctx.Err()
	})
}

// TestServeKV: PHP reaches the embedded KV store with phpredis, by TCP
// and by unix socket, with the password ephpm passes it.
func TestServeKV(t *testing.T) {
	testutil.NeedProgram(t, "php")
	dir, _ := filepath.Abs("testdata/site")
	kvAddr := freePort(t)
	p := startEphpm(t, dir, "EPHPM_KV__ENABLED=true", "EPHPM_KV__LISTEN="+kvAddr, "EPHPM_KV__PASSWORD=s3cret")
	for i, via := range []string{"tcp", "socket", "tcp"} {
		code, body := get(t, "http://"+p.addr+"/kv.php?via="+via)
		if code != 200 || body != strconv.Itoa(i+1) {
			t.Errorf("kv via %s: %d %q", via, code, body)
		}
	}
	// Without the password the store refuses.
	c, err := net.Dial("tcp", kvAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET hits\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "-NOAUTH") {
		t.Errorf("unauthenticated GET: %q", line)
	}
}
