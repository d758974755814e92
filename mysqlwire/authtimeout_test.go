package mysqlwire_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/sqlite"
)

// TestUnauthenticatedConnectionsTimeOut: a client that connects and never
// completes the login is disconnected after AuthTimeout, on TCP and on
// the unix socket; a logged-in connection may idle longer.
func TestUnauthenticatedConnectionsTimeOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, func(c *mysqlwire.Config, _ *sqlite.Config) { c.AuthTimeout = timeout })
	for _, tc := range []struct {
		name, network string
		send          []byte // after reading the greeting
	}{
		{"tcp silent", "tcp", nil},
		{"tcp half a packet header", "tcp", []byte{0x20, 0x00}},
		{"tcp a login packet cut short", "tcp", []byte{0x40, 0x00, 0x00, 0x01, 0x85, 0xa6}},
		{"unix silent", "unix", nil},
		{"unix half a packet header", "unix", []byte{0x20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := ts.addr
			if tc.network == "unix" {
				addr = ts.socket
			}
			c, err := net.Dial(tc.network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			_ = c.SetDeadline(start.Add(5 * time.Second)) // bounds the test, not the server
			buf := make([]byte, 512)
			if n, err := c.Read(buf); err != nil || n < 5 {
				t.Fatalf("greeting: %d bytes, %v", n, err)
			}
			if tc.send != nil {
				if _, err := c.Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			_, err = io.ReadAll(c) // until the server closes
			d := time.Since(start)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("still open after %s", d)
			}
			if d < timeout-50*time.Millisecond || d > timeout+2*time.Second {
				t.Fatalf("closed after %s, want about %s", d, timeout)
			}
		})
	}
	t.Run("authenticated idle", func(t *testing.T) {
		db := ts.open(t, "")
		db.SetMaxOpenConns(1)
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.PingContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(timeout + 300*time.Millisecond)
		var one int
		if err := conn.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("after idling past the auth timeout: %v %d", err, one)
		}
	})
}
