package httpd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// h1Handler answers the tests' paths.
func h1Handler(t testing.TB, watched chan<- error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			fmt.Fprintf(w, "host=%s proto=%s", r.Host, r.Proto)
		case "/echo":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d:%s", len(b), b)
		case "/big": // unknown length, past the held-back buffer
			for i := 0; i < 10; i++ {
				w.Write(bytes.Repeat([]byte{'a' + byte(i)}, 2000))
			}
		case "/cl":
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("hello"))
		case "/short": // declares more than it sends
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("hello"))
		case "/flush":
			Watch(r)
			w.Write([]byte("one\n"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/watch":
			Watch(r)
			select {
			case <-r.Context().Done():
				watched <- r.Context().Err()
			case <-time.After(5 * time.Second):
				watched <- nil
			}
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			w.Write([]byte("dropped"))
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Write([]byte("after hints"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/hijack":
			nc, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			line, _ := rw.ReadString('\n')
			rw.WriteString("echo:" + line)
			rw.Flush()
			nc.Close()
		case "/file", "/emptyfile": // sendfile through ReadFrom
			f, err := os.CreateTemp(t.TempDir(), "f")
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			n := 200 << 10
			if r.URL.Path == "/emptyfile" {
				n = 0
			}
			f.Write(bytes.Repeat([]byte("x"), n))
			f.Seek(0, io.SeekStart)
			w.Header().Set("Content-Length", fmt.Sprint(n))
			io.CopyN(w, f, int64(n))
		case "/relength": // changes the header after WriteHeader
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(200)
			w.Header().Set("Content-Length", "3")
			w.Write([]byte("0123456789"))
		case "/gzipped":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte{0x1f, 0x8b, 8, 0})
		case "/notmodified":
			w.Header().Set("Content-Type", "text/css")
			w.WriteHeader(http.StatusNotModified)
		case "/ws": // 101, then the connection is the handler's
			w.Header().Set("Upgrade", "echo")
			w.Header().Set("Connection", "Upgrade")
			w.WriteHeader(http.StatusSwitchingProtocols)
			fallthrough
		case "/watchhijack":
			if r.URL.Path == "/watchhijack" {
				Watch(r) // a background read may take the first byte
				time.Sleep(100 * time.Millisecond)
			}
			nc, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			if r.Body != http.NoBody {
				if _, err := r.Body.Read(make([]byte, 1)); err != http.ErrHijacked {
					t.Errorf("body read after Hijack: %v, want ErrHijacked", err)
				}
			}
			line, _ := rw.ReadString('\n')
			rw.WriteString("echo:" + line)
			rw.Flush()
		case "/duplex": // reads the body on another goroutine while it answers
			done := make(chan struct{})
			go func() {
				io.Copy(io.Discard, r.Body)
				close(done)
			}()
			w.Header().Set("Content-Length", "2")
			w.Write([]byte("ok"))
			w.(http.Flusher).Flush()
			<-done
		case "/panic":
			panic("boom")
		default:
			http.NotFound(w, r)
		}
	})
}

func startH1(t *testing.T, watched chan<- error) (*h1server, string) {
	t.Helper()
	s := &h1server{handler: h1Handler(t, watched), maxHeader: 4 << 10, readHeaderTimeout: 5 * time.Second,
		idleTimeout: 10 * time.Second, log: func(string, ...any) {}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// dialH1 connects to the loop, with a deadline and a cleanup.
func dialH1(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// exchange sends raw bytes on a fresh connection and reads n responses.
func exchange(t *testing.T, addr, raw string, n int, method string) ([]*http.Response, []string, net.Conn, *bufio.Reader) {
	t.Helper()
	c := dialH1(t, addr)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		resps = append(resps, resp)
		bodies = append(bodies, string(b))
	}
	return resps, bodies, c, br
}

func TestH1Framing(t *testing.T) {
	_, addr := startH1(t, nil)
	for _, tt := range []struct {
		name, raw, method string
		status            int
		body              string
		hdr               map[string]string // "" = must be absent
		closed            bool
	}{
		{name: "small gets a length", raw: "GET /small HTTP/1.1\r\nHost: a.test\r\n\r\n", status: 200, body: "host=a.test proto=HTTP/1.1",
			hdr: map[string]string{"Content-Length": "26", "Transfer-Encoding": "", "Content-Type": "text/plain; charset=utf-8"}},
		{name: "big goes chunked", raw: "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: strings.Repeat("a", 2000) + strings.Repeat("b", 2000) + strings.Repeat("c", 2000) + strings.Repeat("d", 2000) + strings.Repeat("e", 2000) + strings.Repeat("f", 2000) + strings.Repeat("g", 2000) + strings.Repeat("h", 2000) + strings.Repeat("i", 2000) + strings.Repeat("j", 2000),
			hdr: map[string]string{"Content-Length": ""}},
		{name: "declared length", raw: "GET /cl HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "hello", hdr: map[string]string{"Content-Length": "5"}},
		{name: "head has length, no body", raw: "HEAD /small HTTP/1.1\r\nHost: a\r\n\r\n", method: "HEAD", status: 200, hdr: map[string]string{"Content-Length": "21"}},
		{name: "204 drops body", raw: "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n", status: 204, hdr: map[string]string{"Content-Length": ""}},
		{name: "http/1.0 big closes", raw: "GET /big HTTP/1.0\r\n\r\n", status: 200, body: strings.Repeat("a", 2000) + strings.Repeat("b", 2000) + strings.Repeat("c", 2000) + strings.Repeat("d", 2000) + strings.Repeat("e", 2000) + strings.Repeat("f", 2000) + strings.Repeat("g", 2000) + strings.Repeat("h", 2000) + strings.Repeat("i", 2000) + strings.Repeat("j", 2000),
			hdr: map[string]string{"Connection": "close"}, closed: true},
		{name: "http/1.0 keep-alive", raw: "GET /small HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", status: 200, body: "host= proto=HTTP/1.0", hdr: map[string]string{"Connection": "keep-alive"}},
		{name: "client close", raw: "GET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", status: 200, body: "host=a proto=HTTP/1.1", hdr: map[string]string{"Connection": "close"}, closed: true},
		{name: "handler close", raw: "GET /close HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "bye", closed: true},
		{name: "short body closes", raw: "GET /short HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, closed: true},
		{name: "chunked request", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", status: 200, body: "5:abcde"},
		{name: "missing host", raw: "GET /small HTTP/1.1\r\n\r\n", status: 400, closed: true},
		{name: "two hosts", raw: "GET /small HTTP/1.1\r\nHost: a\r\nhOsT: b\r\n\r\n", status: 400, closed: true},
		{name: "bad header line", raw: "GET /small HTTP/1.1\r\nHost: a\r\n<script>alert(1)</script>\r\n\r\n", status: 400, closed: true},
		{name: "bad host", raw: "GET /small HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400, closed: true},
		// As net/http: chunked wins over a Content-Length (RFC 9112 6.3),
		// but the connection closes after the response (RFC 9112 6.1).
		{name: "chunked and length", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 200, body: "0:",
			hdr: map[string]string{"Connection": "close"}, closed: true},
		{name: "length and chunked", raw: "POST /echo HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 2\r\n\r\n2\r\nab\r\n0\r\n\r\n", status: 200, body: "2:ab",
			hdr: map[string]string{"Connection": "close"}, closed: true},
		// HTTP/1.0 knows no Transfer-Encoding: the body is framed by the
		// length, and the framing is faulty (RFC 9112 6.1).
		{name: "http/1.0 with TE", raw: "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nab", status: 200, body: "2:ab",
			hdr: map[string]string{"Connection": "close"}, closed: true},
		// A header whose name only starts like one of them counts for nothing.
		{name: "lookalike headers", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length-X: 1\r\nX-Transfer-Encoding: chunked\r\nHost-Y: b\r\nContent-Length: 2\r\n\r\nab", status: 200, body: "2:ab"},
		{name: "bad TE", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501, closed: true},
		{name: "header too large", raw: "GET /small HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("x", 10<<10) + "\r\n\r\n", status: 431, closed: true},
		{name: "http/2 preface", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 505, closed: true},
		{name: "expect other", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx", status: 417, closed: true},
		{name: "panic closes", raw: "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n", status: -1, closed: true},
		{name: "length is the one written", raw: "GET /relength HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "0123456789", hdr: map[string]string{"Content-Length": "10"}},
		{name: "no sniffing of encoded bodies", raw: "GET /gzipped HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, hdr: map[string]string{"Content-Type": ""}},
		{name: "304 has no type", raw: "GET /notmodified HTTP/1.1\r\nHost: a\r\n\r\n", status: 304, hdr: map[string]string{"Content-Type": ""}},
		{name: "no 1xx for http/1.0", raw: "GET /hints HTTP/1.0\r\n\r\n", status: 200, body: "after hints", closed: true},
		{name: "crlf after a post", raw: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab\r\n", status: 200, body: "2:ab"},
		{name: "unread big body announces close", raw: "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 400000\r\n\r\n" + strings.Repeat("z", 400000), status: 200, body: "hello",
			hdr: map[string]string{"Connection": "close"}, closed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			c := dialH1(t, addr)
			io.WriteString(c, tt.raw)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if tt.status == -1 {
				if err == nil {
					t.Fatalf("got a response %d from a panicking handler", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil && !tt.closed {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, b)
			}
			if resp.StatusCode == 400 && strings.Contains(string(b), "<") {
				t.Fatalf("400 echoes the request: %q", b)
			}
			if tt.body != "" && string(b) != tt.body {
				t.Fatalf("body %.80q, want %.80q", b, tt.body)
			}
			for k, v := range tt.hdr {
				got := resp.Header.Get(k)
				if k == "Transfer-Encoding" || k == "Content-Length" && v == "" {
					// The client moves these out of Header.
					if k == "Content-Length" && resp.ContentLength != -1 && v == "" && resp.StatusCode != 204 {
						t.Fatalf("Content-Length %d, want none", resp.ContentLength)
					}
					continue
				}
				if k == "Content-Length" {
					got = fmt.Sprint(resp.ContentLength)
				}
				if k == "Connection" && v == "close" && resp.Close {
					got = "close" // the client takes it out of Header
				}
				if got != v {
					t.Fatalf("%s = %q, want %q", k, got, v)
				}
			}
			// A closed connection reads EOF; an open one still serves.
			io.WriteString(c, "GET /cl HTTP/1.1\r\nHost: a\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			next, err := http.ReadResponse(br, nil)
			if tt.closed && err == nil {
				t.Fatalf("connection still open: %d", next.StatusCode)
			}
			if !tt.closed && (err != nil || next.StatusCode != 200) {
				t.Fatalf("connection not reusable: %v", err)
			}
		})
	}
}

// A header sent with MSG_MORE ahead of sendfile must never be held back
// waiting for a body that does not come (the kernel would wait 200 ms).
func TestH1SendfileHeader(t *testing.T) {
	_, addr := startH1(t, nil)
	_, _, c, br := exchange(t, addr, "", 0, "GET")
	start := time.Now()
	for i, path := range []string{"/file", "/emptyfile", "/emptyfile", "/emptyfile", "/file", "/emptyfile"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%d %s: %v", i, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		if want := map[string]int{"/file": 200 << 10, "/emptyfile": 0}[path]; err != nil || len(b) != want {
			t.Fatalf("%d %s: %d bytes, want %d (%v)", i, path, len(b), want, err)
		}
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Fatalf("6 responses one after another took %v: a header was held back", d)
	}
}

func TestH1NewConnectionOwesItsRequestSoon(t *testing.T) {
	s := &h1server{handler: h1Handler(t, nil), maxHeader: 4 << 10, readHeaderTimeout: 200 * time.Millisecond,
		idleTimeout: 10 * time.Second, log: func(string, ...any) {}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.serve(ln)
	defer s.shutdown(context.Background())
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a silent connection got bytes")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a silent new connection stayed %v: the idle timeout, not the header timeout", d)
	}
}

func TestH1Hijack(t *testing.T) {
	_, addr := startH1(t, nil)
	for _, req := range []string{"GET /ws", "GET /watchhijack", "POST /ws"} {
		path := strings.Fields(req)[1]
		c := dialH1(t, addr)
		if strings.HasPrefix(req, "POST") {
			// The body's bytes belong to the handler after Hijack.
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n", path)
		} else {
			fmt.Fprintf(c, "%s HTTP/1.1\r\nHost: a\r\n\r\n", req)
		}
		time.Sleep(30 * time.Millisecond)
		io.WriteString(c, "hello\n")
		br := bufio.NewReader(c)
		if path == "/ws" {
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo" {
				t.Fatalf("%s: %v %v", path, resp, err)
			}
		}
		line, err := br.ReadString('\n')
		if err != nil || line != "echo:hello\n" {
			t.Fatalf("%s: hijacked echo %q %v", path, line, err)
		}
	}
}

// A body read on another goroutine while the response goes out: the
// 100 Continue and the header must not race (go test -race), and a 100
// never follows the final status.
func TestH1ContinueWhileAnswering(t *testing.T) {
	_, addr := startH1(t, nil)
	for i := 0; i < 20; i++ {
		c := dialH1(t, addr)
		io.WriteString(c, "POST /duplex HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 100 {
			io.WriteString(c, "abc")
			if resp, err = http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
		} else {
			io.WriteString(c, "abc")
		}
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		io.ReadAll(resp.Body)
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if rest, _ := br.Peek(1); len(rest) > 0 {
			t.Fatalf("bytes after the response: %q", rest)
		}
		c.Close()
	}
}

func TestH1Pipelining(t *testing.T) {
	_, addr := startH1(t, nil)
	raw := "GET /small HTTP/1.1\r\nHost: one\r\n\r\nPOST /echo HTTP/1.1\r\nHost: two\r\nContent-Length: 3\r\n\r\nxyzGET /small HTTP/1.1\r\nHost: three\r\n\r\n"
	_, bodies, _, _ := exchange(t, addr, raw, 3, "GET")
	want := []string{"host=one proto=HTTP/1.1", "3:xyz", "host=three proto=HTTP/1.1"}
	for i := range want {
		if bodies[i] != want[i] {
			t.Fatalf("response %d = %q, want %q", i, bodies[i], want[i])
		}
	}
}

func TestH1ExpectContinue(t *testing.T) {
	_, addr := startH1(t, nil)
	c := dialH1(t, addr)
	io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "body")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "4:body" {
		t.Fatalf("body %q", b)
	}
}

func TestH1UnreadBody(t *testing.T) {
	_, addr := startH1(t, nil)
	// A small unread body is skipped and the connection stays.
	_, bodies, _, _ := exchange(t, addr, "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET /small HTTP/1.1\r\nHost: b\r\n\r\n", 2, "GET")
	if bodies[1] != "host=b proto=HTTP/1.1" {
		t.Fatalf("after an unread body: %q", bodies[1])
	}
	// One past the limit closes it rather than read on.
	c := dialH1(t, addr)
	fmt.Fprintf(c, "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", 1<<30)
	go c.Write(make([]byte, 1<<20))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("connection kept after a 1 GB unread body")
	}
}

func TestH1Streaming(t *testing.T) {
	_, addr := startH1(t, nil)
	c := dialH1(t, addr)
	io.WriteString(c, "GET /flush HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "one\n" {
		t.Fatalf("flushed line %q %v", line, err)
	}
	c.Close() // the handler waits for its context: closing ends it
}

func TestH1WatchCancelsOnClientGone(t *testing.T) {
	watched := make(chan error, 1)
	_, addr := startH1(t, watched)
	c := dialH1(t, addr)
	io.WriteString(c, "GET /watch HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // let the handler start waiting
	c.Close()
	select {
	case err := <-watched:
		if err == nil {
			t.Fatal("handler's context not cancelled when the client went away")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler never returned")
	}
}

func TestH1EarlyHintsAndHijack(t *testing.T) {
	_, addr := startH1(t, nil)
	c := dialH1(t, addr)
	io.WriteString(c, "GET /hints HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	// The client reads past 1xx responses; check the wire instead.
	hints, err := http.ReadResponse(br, nil)
	if err != nil || hints.StatusCode != 103 || hints.Header.Get("Link") == "" {
		t.Fatalf("early hints: %v %v", hints, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "after hints" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}

	io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: a\r\n\r\nping\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v", err)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:ping\n" {
		t.Fatalf("hijacked echo %q %v", line, err)
	}
}

func TestH1ShutdownWaitsForActive(t *testing.T) {
	s, addr := startH1(t, nil)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
	ibr := bufio.NewReader(idle)
	resp, err := http.ReadResponse(ibr, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	active, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer active.Close()
	io.WriteString(active, "GET /flush HTTP/1.1\r\nHost: a\r\n\r\n")
	abr := bufio.NewReader(active)
	if _, err := http.ReadResponse(abr, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("shutdown with a request in flight: %v", err)
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ibr.ReadByte(); err == nil {
		t.Fatal("idle connection left open by shutdown")
	}
	active.Close() // ends the handler; the cleanup's shutdown then returns nil
}

// memConn is a net.Conn over a fixed input, for fuzzing the loop.
type memConn struct {
	in  *strings.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzH1Conn: whatever bytes a client sends, the loop answers with
// well-formed HTTP/1.1 responses, one per request the handler saw.
func FuzzH1Conn(f *testing.F) {
	for _, s := range []string{
		"GET /small HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /small HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HEAD /big HTTP/1.0\r\n\r\n",
		"GET /big HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"POST /cl HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nxx",
		"GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\nGET /short HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://x/small HTTP/1.1\r\nHost: y\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var methods []string
		base := h1Handler(t, nil)
		s := &h1server{maxHeader: 1 << 10, log: func(string, ...any) {},
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				methods = append(methods, r.Method)
				if r.URL.Path == "/panic" || r.URL.Path == "/flush" || r.URL.Path == "/watch" || r.URL.Path == "/hijack" {
					r.URL.Path = "/small"
				}
				base.ServeHTTP(w, r)
			})}
		s.conns = map[*h1conn]struct{}{}
		s.idle = make(chan struct{})
		mc := &memConn{in: strings.NewReader(in)}
		c := &h1conn{srv: s, nc: mc, remote: "127.0.0.1:1234"}
		s.conns[c] = struct{}{}
		c.serve()
		br := bufio.NewReader(&mc.out)
		got := 0
		for {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			head, _ := br.Peek(12)
			if bytes.HasPrefix(head, []byte("HTTP/1.1 100")) || bytes.HasPrefix(head, []byte("HTTP/1.1 103")) {
				if _, err := http.ReadResponse(br, nil); err != nil {
					t.Fatalf("bad 1xx: %v\n%q", err, mc.out.String())
				}
				continue
			}
			method := "GET"
			if got < len(methods) {
				method = methods[got]
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatalf("response %d unreadable: %v\nin %q\nout %q", got, err, in, mc.out.String())
			}
			got++
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				// A handler that sent less than it declared: the
				// connection ends there.
				if rest, _ := io.ReadAll(br); len(rest) > 0 {
					t.Fatalf("response %d body: %v, then %q", got, err, rest)
				}
				if got < len(methods) {
					t.Fatalf("truncated response %d of %d", got, len(methods))
				}
				break
			}
		}
		if got < len(methods) {
			t.Fatalf("handler ran %d times, %d responses", len(methods), got)
		}
	})
}

// TestNetHTTPCLTECloses: net/http (the TLS listener's server) keeps a
// connection after a request with both Content-Length and
// Transfer-Encoding; the Server closes it after the response (RFC 9112
// 6.1), and answers no request pipelined behind it.
func TestNetHTTPCLTECloses(t *testing.T) {
	s, err := New(Config{Sites: SingleSite{S: &Site{Name: "default", Root: t.TempDir()}},
		Intercept: func(w http.ResponseWriter, r *http.Request) bool {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d:%s", len(b), b)
			return true
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.serve(ln, nil) }() // net/http, as ServeTLS, without the TLS
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	c := dialH1(t, ln.Addr().String())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "2:ab" || !resp.Close {
		t.Fatalf("got %q, close %v; want the chunked body and Connection: close", b, resp.Close)
	}
	if resp, err := http.ReadResponse(br, nil); err == nil {
		t.Fatalf("pipelined request answered: %d", resp.StatusCode)
	}
}
