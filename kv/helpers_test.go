package kv_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/kv"
)

// needProgram skips when a Debian program is missing, unless CI demands
// every peer (EPHPM_REQUIRE_ALL).
func needProgram(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
			t.Fatalf("%s not installed (EPHPM_REQUIRE_ALL is set)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// startKV starts a server on a random loopback port and closes it at the
// end of the test.
func startKV(t testing.TB, cfg kv.Config) *kv.Server {
	t.Helper()
	if cfg.Listen == "" && cfg.Socket == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	srv, err := kv.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRedis starts a real redis-server on a random loopback port, the
// reference the KV store's replies are compared with.
func startRedis(t testing.TB, extra ...string) string {
	t.Helper()
	bin := needProgram(t, "redis-server")
	port := freePort(t)
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)
	cmd := exec.Command(bin, args...)
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			cl := &client{nc: c, br: bufio.NewReader(c)}
			if cl.Do("PING") == "+PONG" {
				c.Close()
				return addr
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// client is a minimal RESP client whose replies render as comparable
// strings: "+OK", "-ERR ...", ":1", "$value", "$nil", "*[a, b]".
type client struct {
	nc net.Conn
	br *bufio.Reader
	t  testing.TB
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	return &client{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), t: t}
}

func encode(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

// Do sends one command and returns its rendered reply.
func (c *client) Do(args ...string) string {
	if _, err := c.nc.Write(encode(args...)); err != nil {
		return "write error: " + err.Error()
	}
	return c.Read()
}

// Read reads one reply.
func (c *client) Read() string {
	s, err := readReply(c.br)
	if err != nil {
		return "read error: " + err.Error()
	}
	return s
}

func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty line")
	}
	switch line[0] {
	case '+', '-', ':':
		return line, nil
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "$nil", nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(br, buf); err != nil {
			return "", err
		}
		return "$" + string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "*nil", nil
		}
		items := make([]string, n)
		for i := range items {
			if items[i], err = readReply(br); err != nil {
				return "", err
			}
		}
		return "*[" + strings.Join(items, ", ") + "]", nil
	}
	return "", fmt.Errorf("bad reply line %q", line)
}

func ioReadFull(br *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := br.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// sortedArray sorts a rendered flat array reply; pairs > 1 sorts groups of
// that many items (HGETALL's field/value pairs).
func sortedArray(s string, pairs int) string {
	if !strings.HasPrefix(s, "*[") || s == "*[]" {
		return s
	}
	items := strings.Split(strings.TrimSuffix(strings.TrimPrefix(s, "*["), "]"), ", ")
	var groups []string
	for i := 0; i+pairs <= len(items); i += pairs {
		groups = append(groups, strings.Join(items[i:i+pairs], ", "))
	}
	sort.Strings(groups)
	return "*[" + strings.Join(groups, ", ") + "]"
}

// infoField returns one field of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	return ""
}

func infoInt(t testing.TB, info, name string) int64 {
	t.Helper()
	v := infoField(info, name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("INFO field %s = %q: %v", name, v, err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func execInput(in []byte, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
