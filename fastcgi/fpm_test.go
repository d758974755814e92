package fastcgi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
)

// fpm is a php-fpm started by a test with its own config on a unix socket.
// It is deliberately independent of the phpfpm package so that these tests
// exercise only the client.
type fpm struct {
	t       testing.TB
	bin     string
	dir     string
	sock    string
	docroot string
	cmd     *exec.Cmd
	stderr  *bytes.Buffer
}

func fpmBinary(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"/usr/sbin/php-fpm8.2", "php-fpm8.2", "php-fpm"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
		tb.Fatal("php-fpm not found (EPHPM_REQUIRE_ALL is set)")
	}
	tb.Skip("php-fpm not found")
	return ""
}

func startFPM(tb testing.TB, workers int) *fpm {
	tb.Helper()
	bin := fpmBinary(tb)
	// Short dir: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "fcgi")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	docroot, err := filepath.Abs("testdata/php")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fpm{t: tb, bin: bin, dir: dir, sock: filepath.Join(dir, "fpm.sock"), docroot: docroot}
	conf := fmt.Sprintf(`[global]
error_log = %s/error.log
daemonize = no
[www]
listen = %s
listen.backlog = 511
pm = static
pm.max_children = %d
catch_workers_output = yes
`, dir, f.sock, workers)
	if err := os.WriteFile(filepath.Join(dir, "fpm.conf"), []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	f.start()
	tb.Cleanup(f.stop)
	return f
}

func (f *fpm) start() {
	f.t.Helper()
	args := []string{"-F", "-n", "-y", filepath.Join(f.dir, "fpm.conf"), "-d", "post_max_size=0", "-d", "memory_limit=256M"}
	if os.Geteuid() == 0 {
		args = append(args, "-R")
	}
	f.cmd = exec.Command(f.bin, args...)
	f.stderr = &bytes.Buffer{}
	f.cmd.Stderr = f.stderr
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := f.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", f.sock)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(f.dir, "error.log"))
			f.t.Fatalf("php-fpm did not start: %v\n%s\n%s", err, f.stderr, log)
		}
		time.Sleep(10 * time.Millisecond) // polling the socket, bounded by deadline
	}
}

func (f *fpm) stop() {
	if f.cmd == nil {
		return
	}
	syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
	f.cmd.Wait()
	f.cmd = nil
}

// restart stops php-fpm (SIGQUIT: graceful, workers exit and close their
// kept-alive connections) and starts it again on the same socket.
func (f *fpm) restart() {
	f.t.Helper()
	f.cmd.Process.Signal(syscall.SIGQUIT)
	f.cmd.Wait()
	f.cmd = nil
	f.start()
}

func (f *fpm) params(script, method, query string, extra ...fastcgi.Param) []fastcgi.Param {
	p := []fastcgi.Param{
		{"GATEWAY_INTERFACE", "CGI/1.1"},
		{"SERVER_PROTOCOL", "HTTP/1.1"},
		{"SERVER_SOFTWARE", "ephpm-test"},
		{"SERVER_NAME", "localhost"},
		{"REQUEST_METHOD", method},
		{"QUERY_STRING", query},
		{"REQUEST_URI", "/" + script + "?" + query},
		{"SCRIPT_NAME", "/" + script},
		{"SCRIPT_FILENAME", filepath.Join(f.docroot, script)},
		{"DOCUMENT_ROOT", f.docroot},
		{"REMOTE_ADDR", "127.0.0.1"},
	}
	return append(p, extra...)
}

// countingDialer counts dials and connections open at once.
type countingDialer struct {
	dials, open, maxOpen atomic.Int64
}

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.dials.Add(1)
	n := d.open.Add(1)
	for {
		m := d.maxOpen.Load()
		if n <= m || d.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	return &countedConn{Conn: c, d: d}, nil
}

type countedConn struct {
	net.Conn
	d    *countingDialer
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.d.open.Add(-1) })
	return c.Conn.Close()
}

func (f *fpm) client(tb testing.TB, cfg fastcgi.Config) (*fastcgi.Client, *countingDialer) {
	d := &countingDialer{}
	cfg.Network, cfg.Address, cfg.Dial = "unix", f.sock, d.dial
	c := fastcgi.NewClient(cfg)
	tb.Cleanup(func() { c.Close() })
	return c, d
}

func readAll(tb testing.TB, resp *fastcgi.Response) string {
	tb.Helper()
	var b strings.Builder
	_, err := io.Copy(&b, resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return b.String()
}
