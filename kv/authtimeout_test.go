package kv_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/kv"
)

// TestUnauthenticatedConnectionsTimeOut: when AUTH is required, a
// connection that has not authenticated AuthTimeout after it connected
// is closed, whatever it sends meanwhile; an authenticated one, or any
// when no AUTH is required, may idle. Both serving modes.
func TestUnauthenticatedConnectionsTimeOut(t *testing.T) {
	for _, mode := range []string{"event loop", "goroutines"} {
		t.Run(mode, func(t *testing.T) {
			kv.SetForceGoroutines(mode == "goroutines")
			defer kv.SetForceGoroutines(false)
			testAuthTimeout(t)
		})
	}
}

func testAuthTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	sock := filepath.Join(t.TempDir(), "kv.sock")
	srv := startKV(t, kv.Config{
		Listen: "127.0.0.1:0", Socket: sock, Loops: 2, AuthTimeout: timeout,
		Auth: func(user, pass string) (string, int64, bool) {
			return user, 0, user == "alice.test" && pass == "alice-pass"
		},
	})
	addr := srv.Addr().String()
	dial := func(t *testing.T, network, addr string) net.Conn {
		t.Helper()
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // bounds the test, not the server
		return c
	}
	// closedAfter reads until the server closes c.
	closedAfter := func(t *testing.T, c net.Conn, start time.Time) {
		t.Helper()
		_, err := io.ReadAll(c)
		d := time.Since(start)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("still open after %s", d)
		}
		if d < timeout-50*time.Millisecond || d > timeout+2*time.Second {
			t.Fatalf("closed after %s, want about %s", d, timeout)
		}
	}
	for _, tc := range []struct {
		name, network string
		send          []string // sent at once, then every 100 ms while open
	}{
		{"silent", "tcp", nil},
		{"silent on the socket", "unix", nil},
		{"half a command", "tcp", []string{"*2\r\n$4\r\nAU"}},
		{"PING without AUTH", "tcp", []string{"PING\r\n"}},
		{"wrong password", "unix", []string{"AUTH alice.test nope\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := addr
			if tc.network == "unix" {
				a = sock
			}
			start := time.Now()
			c := dial(t, tc.network, a)
			done := make(chan struct{})
			defer close(done)
			if tc.send != nil {
				go func() {
					for i := 0; i < 50; i++ {
						if _, err := io.WriteString(c, tc.send[0]); err != nil {
							return
						}
						select {
						case <-done:
							return
						case <-time.After(100 * time.Millisecond):
						}
					}
				}()
			}
			closedAfter(t, c, start)
		})
	}
	t.Run("many at once", func(t *testing.T) {
		start := time.Now()
		var cs []net.Conn
		for i := 0; i < 20; i++ {
			cs = append(cs, dial(t, "tcp", addr))
		}
		for _, c := range cs {
			closedAfter(t, c, start)
		}
	})
	t.Run("authenticated idle", func(t *testing.T) {
		for _, network := range []string{"tcp", "unix"} {
			a := addr
			if network == "unix" {
				a = sock
			}
			c := dial(t, network, a)
			br := bufio.NewReader(c)
			io.WriteString(c, "AUTH alice.test alice-pass\r\n")
			if l, _ := br.ReadString('\n'); l != "+OK\r\n" {
				t.Fatalf("AUTH: %q", l)
			}
			time.Sleep(timeout + 300*time.Millisecond)
			io.WriteString(c, "PING\r\n")
			if l, err := br.ReadString('\n'); l != "+PONG\r\n" {
				t.Fatalf("%s: PING after idling past the auth timeout: %q %v", network, l, err)
			}
		}
	})
	t.Run("HELLO AUTH", func(t *testing.T) {
		c := dial(t, "tcp", addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "HELLO 2 AUTH alice.test alice-pass\r\n")
		if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "*") {
			t.Fatalf("HELLO: %q", l)
		}
		for br.Buffered() > 0 {
			br.ReadString('\n')
		}
		time.Sleep(timeout + 300*time.Millisecond)
		io.WriteString(c, "PING\r\n")
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("PING after HELLO AUTH and idling: %v", err)
			}
			if l == "+PONG\r\n" {
				break
			}
		}
	})
}

// TestNoAuthNoTimeout: without Auth or Password nothing is awaited, so
// no connection is timed out.
func TestNoAuthNoTimeout(t *testing.T) {
	srv := startKV(t, kv.Config{AuthTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	time.Sleep(400 * time.Millisecond)
	io.WriteString(c, "PING\r\n")
	if l, err := bufio.NewReader(c).ReadString('\n'); l != "+PONG\r\n" {
		t.Fatalf("PING: %q %v", l, err)
	}
}

// TestPasswordAuthTimeout: single-keyspace mode with a password awaits
// AUTH the same way.
func TestPasswordAuthTimeout(t *testing.T) {
	srv := startKV(t, kv.Config{Password: "pw", AuthTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(5 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if d := time.Since(start); errors.As(err, &ne) && ne.Timeout() || d > 3*time.Second {
		t.Fatalf("still open after %s", d)
	}
}
