package phpfpm_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/phpfpm"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		conf phpfpm.FPMConf
	}{
		{name: "minimal", conf: phpfpm.FPMConf{Dir: "/run/ephpm", Workers: 4}},
		{name: "root", conf: phpfpm.FPMConf{
			Dir: "/run/ephpm", Workers: 8, User: "www-data", Group: "www-data", Owner: "root", OGroup: "root",
			MemoryLimit: "128M", MaxExec: 30 * time.Second,
			INI: map[string]string{"upload_max_filesize": "64M", "display_errors": "off", "error_reporting": "E_ALL & ~E_NOTICE"},
			Env: map[string]string{"DB_PASSWORD": `p"a$s\w;rd`, "DB_HOST": "127.0.0.1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.conf.Render()
			path := filepath.Join("testdata", "render", tt.name+".golden")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("config differs from %s:\n%s", path, got)
			}
		})
	}
}

func TestFind(t *testing.T) {
	requireFPM(t)
	tests := []struct {
		name, binary string
		wantErr      bool
	}{
		{name: "auto", binary: ""},
		{name: "absolute path", binary: "/usr/sbin/php-fpm8.2"},
		{name: "missing path", binary: "/nonexistent/php-fpm", wantErr: true},
		{name: "missing name", binary: "php-fpm-does-not-exist", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.binary == "/usr/sbin/php-fpm8.2" {
				if _, err := os.Stat(tt.binary); err != nil {
					t.Skip(err)
				}
			}
			got, err := phpfpm.Find(tt.binary)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Find(%q) = %q, %v", tt.binary, got, err)
			}
			if err != nil && tt.binary != "" && !strings.Contains(err.Error(), tt.binary) {
				t.Errorf("error %q does not name the binary", err)
			}
			if err == nil && !strings.Contains(filepath.Base(got), "php-fpm") {
				t.Errorf("Find(%q) = %q", tt.binary, got)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	requireFPM(t)
	long := "/tmp/" + strings.Repeat("d", 120)
	tests := []struct {
		name string
		cfg  phpfpm.Config
		want string
	}{
		{name: "bad binary", cfg: phpfpm.Config{Binary: "/nonexistent/php-fpm", RuntimeDir: "/tmp/x"}, want: "/nonexistent/php-fpm"},
		{name: "no runtime dir", cfg: phpfpm.Config{}, want: "RuntimeDir"},
		{name: "socket path too long", cfg: phpfpm.Config{RuntimeDir: long}, want: "unix sockets"},
		{name: "ini newline", cfg: phpfpm.Config{RuntimeDir: "/tmp/x", INI: map[string]string{"a": "1\n[evil]"}}, want: "ini"},
		{name: "ini bad key", cfg: phpfpm.Config{RuntimeDir: "/tmp/x", INI: map[string]string{"a]": "1"}}, want: "ini"},
		{name: "env dollar", cfg: phpfpm.Config{RuntimeDir: "/tmp/x", Env: map[string]string{"A": "$HOME"}}, want: "env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := phpfpm.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: err = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestStartServesWithOverrides(t *testing.T) {
	requireFPM(t)
	root := docroot(t, map[string]string{"info.php": infoPHP})
	dir := runtimeDir(t)
	s, err := phpfpm.New(phpfpm.Config{
		RuntimeDir: dir, Workers: 2, MemoryLimit: "96M", MaxExecutionTime: 7 * time.Second,
		INI: map[string]string{"upload_max_filesize": "3M", "display_errors": "off",
			"error_reporting": "E_ALL & ~E_NOTICE", "session.save_path": "/tmp/a b;c"},
		Env:    map[string]string{"EPHPM_TEST": "hello", "WEIRD": `a"b$c\d;e`},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Ready() {
		t.Fatal("not Ready after Start")
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("runtime dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	got := get(t, s.Socket(), root, "info.php")
	want := map[string]any{
		"memory_limit": "96M", "upload_max_filesize": "3M", "display_errors": "",
		"max_execution_time": "7", "fix_pathinfo": "0", "ini_set": "refused",
		"error_reporting": "32759", "session_save_path": "/tmp/a b;c",
		"env": "hello", "weird": `a"b$c\d;e`, "path": false,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if os.Geteuid() == 0 && got["user"] != "www-data" {
		t.Errorf("PHP runs as %v, want www-data", got["user"])
	}
}

func TestRestartAfterKill(t *testing.T) {
	requireFPM(t)
	for _, nons := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoPIDNamespace=%v", nons), func(t *testing.T) {
			root := docroot(t, map[string]string{"info.php": infoPHP})
			dir := runtimeDir(t)
			s, err := phpfpm.New(phpfpm.Config{RuntimeDir: dir, Workers: 2, NoPIDNamespace: nons})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			get(t, s.Socket(), root, "info.php")
			old := waitWorkers(t, dir, 2)
			master := s.Pid()
			syscall.Kill(master, syscall.SIGKILL)
			// The old workers must go too: they would keep the socket and
			// make the new master fail with "Another FPM instance".
			// (Only the old pids: the restarted php-fpm uses the same dir.)
			waitGone(t, "", pidsOf(old), 5*time.Second)
			waitUntil(t, 5*time.Second, "restart", func() bool { return s.Restarts() == 1 && s.Ready() })
			if s.Pid() == master || s.Pid() == 0 {
				t.Errorf("pid %d after restart (was %d)", s.Pid(), master)
			}
			if got := get(t, s.Socket(), root, "info.php"); got["memory_limit"] == nil {
				t.Errorf("no answer after restart: %v", got)
			}
		})
	}
}

func TestCloseStopsEverything(t *testing.T) {
	requireFPM(t)
	dir := runtimeDir(t)
	s, err := phpfpm.New(phpfpm.Config{RuntimeDir: dir, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ps := waitWorkers(t, dir, 3)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	waitGone(t, dir, pidsOf(ps), time.Second)
	if s.Ready() || s.Restarts() != 0 {
		t.Errorf("after Close: Ready %v, Restarts %d", s.Ready(), s.Restarts())
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestParentSIGKILL kills a process running the supervisor with SIGKILL
// and checks that the php-fpm master and its workers die with it.
func TestParentSIGKILL(t *testing.T) {
	requireFPM(t)
	modes := []bool{false}
	if os.Geteuid() == 0 {
		modes = append(modes, true) // also the fallback without a PID namespace
	}
	for _, nons := range modes {
		t.Run(fmt.Sprintf("NoPIDNamespace=%v", nons), func(t *testing.T) {
			dir := runtimeDir(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+dir)
			if nons {
				cmd.Env = append(cmd.Env, helperEnv+"_NONS=1")
			}
			killParentAndCheck(t, cmd, dir)
		})
	}
}

func TestStaleSocketAndPid(t *testing.T) {
	requireFPM(t)
	dir := runtimeDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A socket file nobody listens on, as a crash leaves it.
	l, err := net.Listen("unix", filepath.Join(dir, "php-fpm.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	os.WriteFile(filepath.Join(dir, "php-fpm.pid"), []byte("999999\n"), 0o600)
	s, err := phpfpm.New(phpfpm.Config{RuntimeDir: dir, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("stale files blocked start: %v", err)
	}
	defer s.Close()

	// A live one is refused: another ephpm owns the directory.
	s2, err := phpfpm.New(phpfpm.Config{RuntimeDir: dir, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "in use") {
		s2.Close()
		t.Fatalf("second supervisor on a live dir: %v", err)
	}
}

func TestStartFailureReportsOutput(t *testing.T) {
	requireFPM(t)
	bin := filepath.Join(t.TempDir(), "fake-fpm")
	os.WriteFile(bin, []byte("#!/bin/sh\necho 'ERROR: boom from fake fpm' >&2\nexit 78\n"), 0o755)
	s, err := phpfpm.New(phpfpm.Config{Binary: bin, RuntimeDir: runtimeDir(t), StartTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "boom from fake fpm") {
		t.Fatalf("Start: %v, want php-fpm's stderr in the error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStartContext(t *testing.T) {
	requireFPM(t)
	bin := filepath.Join(t.TempDir(), "hang-fpm")
	os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755)
	s, err := phpfpm.New(phpfpm.Config{Binary: bin, RuntimeDir: runtimeDir(t), StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Start(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Start took %v", d)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestReadyWithPinnedWorkers: a kept-alive fastcgi connection pins the only
// worker; health checks must neither pile up in the listen backlog nor
// report php-fpm down.
func TestReadyWithPinnedWorkers(t *testing.T) {
	requireFPM(t)
	root := docroot(t, map[string]string{"info.php": infoPHP})
	s, err := phpfpm.New(phpfpm.Config{RuntimeDir: runtimeDir(t), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := fastcgi.NewClient(fastcgi.Config{Address: s.Socket(), MaxConns: 1})
	defer c.Close()
	do := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Do(ctx, []fastcgi.Param{{Name: "SCRIPT_FILENAME", Value: filepath.Join(root, "info.php")}, {Name: "REQUEST_METHOD", Value: "GET"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do() // the worker now waits on our idle connection
	for i := range 600 {
		if !s.Ready() {
			t.Fatalf("Ready() false after %d checks", i)
		}
	}
	do()
}

// killParentAndCheck starts cmd (a helper running a supervisor on dir),
// SIGKILLs it once php-fpm is up, and checks that php-fpm dies with it.
func killParentAndCheck(t *testing.T, cmd *exec.Cmd, dir string) []proc {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("helper: %q %v", line, err)
	}
	master, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
	ps := waitWorkers(t, dir, 2)
	found := false
	for _, p := range ps {
		found = found || p.pid == master
	}
	if !found {
		t.Fatalf("master %d not among %v", master, ps)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitGone(t, dir, pidsOf(ps), 5*time.Second)
	return ps
}

// TestParentSIGKILLNonRoot runs the supervisor as an unprivileged user (no
// PID namespace, no pool user) and kills it with SIGKILL.
func TestParentSIGKILLNonRoot(t *testing.T) {
	requireFPM(t)
	if os.Geteuid() != 0 {
		t.Skip("not root: TestParentSIGKILL already runs unprivileged")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	base, err := os.MkdirTemp("", "phpfpmnr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o777)
	// The test binary may sit in a directory only root can read.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "phpfpm.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "run")
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	ps := killParentAndCheck(t, cmd, dir)
	if st, err := os.Stat(filepath.Join(dir, "php-fpm.conf")); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != uid {
			t.Errorf("config not written by the unprivileged user")
		}
	}
	if len(ps) != 3 {
		t.Errorf("processes: %v", ps)
	}
}
