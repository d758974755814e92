package fastcgi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
)

// FastCGI record types, written out independently of the package.
const (
	tBegin     = 1
	tEnd       = 3
	tParams    = 4
	tStdin     = 5
	tStdout    = 6
	tStderr    = 7
	tGetValues = 9
)

func rec(typ byte, id uint16, content string, pad int) []byte {
	b := []byte{1, typ, byte(id >> 8), byte(id), byte(len(content) >> 8), byte(len(content)), byte(pad), 0}
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

func out(s string) []byte { return rec(tStdout, 1, s, 0) }

func end(protocolStatus byte) []byte {
	return rec(tEnd, 1, string([]byte{0, 0, 0, 0, protocolStatus, 0, 0, 0}), 0)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// fakeConn plays back a canned server response and records what the
// client writes.
type fakeConn struct {
	r      io.Reader
	mu     sync.Mutex
	writes [][]byte
	closed bool

	stdinDone chan struct{}
}

// Read waits, like php-fpm, until the request's STDIN is complete.
func (c *fakeConn) Read(p []byte) (int, error) {
	<-c.stdinDone
	return c.r.Read(p)
}
func (c *fakeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.writes = append(c.writes, bytes.Clone(p))
	if bytes.HasSuffix(p, []byte{1, tStdin, 0, 1, 0, 0, 0, 0}) {
		close(c.stdinDone)
	}
	return len(p), nil
}
func (c *fakeConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}
func (c *fakeConn) LocalAddr() net.Addr              { return &net.UnixAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.UnixAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func fakeClient(response []byte) (*fastcgi.Client, *fakeConn) {
	fc := &fakeConn{r: bytes.NewReader(response), stdinDone: make(chan struct{})}
	c := fastcgi.NewClient(fastcgi.Config{
		Address: "fake",
		Dial:    func(context.Context, string, string) (net.Conn, error) { return fc, nil },
	})
	return c, fc
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name       string
		response   []byte
		status     int
		header     map[string][]string
		body       string
		stderr     string
		reusable   bool
		doErr      error // from Do
		bodyErr    error // from reading Body
		errContain string
	}{
		{
			name: "headers split across records with padding and stderr",
			response: cat(
				rec(tStdout, 1, "Status: 201 Created\r\nX-A: 1\r\n", 3),
				rec(tStderr, 1, "PHP Warning: x", 5),
				out("Set-Cookie: a=1\r\nSet-Cookie: b=2\r"),
				out("\n\r\nhel"),
				out("lo"),
				rec(tStderr, 1, " more", 0),
				out(""), end(0)),
			status:   201,
			header:   map[string][]string{"X-A": {"1"}, "Set-Cookie": {"a=1", "b=2"}},
			body:     "hello",
			stderr:   "PHP Warning: x more",
			reusable: true,
		},
		{
			name:     "LF line endings",
			response: cat(out("content-type: text/plain\nx-b:  spaced  \n\nbody\n"), end(0)),
			status:   200,
			header:   map[string][]string{"Content-Type": {"text/plain"}, "X-B": {"spaced"}},
			body:     "body\n",
			reusable: true,
		},
		{
			name:     "Location without Status is 302",
			response: cat(out("Location: http://x/\r\n\r\n"), end(0)),
			status:   302,
			header:   map[string][]string{"Location": {"http://x/"}},
			reusable: true,
		},
		{
			name:     "Location with Status keeps it",
			response: cat(out("Status: 301\r\nLocation: /y\r\n\r\n"), end(0)),
			status:   301,
			header:   map[string][]string{"Location": {"/y"}},
			reusable: true,
		},
		{
			name:     "output ends without blank line",
			response: cat(out("X-C: 3\r\n"), end(0)),
			status:   200,
			header:   map[string][]string{"X-C": {"3"}},
			reusable: true,
		},
		{
			name:     "empty header block",
			response: cat(out("\r\nraw"), end(0)),
			status:   200,
			header:   map[string][]string{},
			body:     "raw",
			reusable: true,
		},
		{name: "empty response", response: end(0), doErr: fastcgi.ErrProtocol, errContain: "empty response"},
		{name: "bad version", response: append([]byte{2}, out("X: 1\r\n\r\n")[1:]...), doErr: fastcgi.ErrProtocol, errContain: "bad version"},
		{name: "unexpected type", response: rec(tGetValues, 1, "", 0), doErr: fastcgi.ErrProtocol, errContain: "unexpected record type"},
		{name: "request id mismatch", response: rec(tStdout, 2, "X: 1\r\n\r\n", 0), doErr: fastcgi.ErrProtocol, errContain: "request id"},
		{name: "truncated header", response: out("X: 1\r\n\r\n")[:5], doErr: fastcgi.ErrProtocol, errContain: "truncated"},
		{name: "truncated content", response: out("X: 1\r\n\r\n")[:12], doErr: fastcgi.ErrProtocol, errContain: "truncated"},
		{name: "truncated padding", response: rec(tStdout, 1, "X: 1\r\n\r\n", 7)[:18], doErr: nil, status: 200, header: map[string][]string{"X": {"1"}}, bodyErr: fastcgi.ErrProtocol},
		{name: "END_REQUEST too short", response: cat(out("X: 1\r\n\r\n"), rec(tEnd, 1, "1234", 0)), status: 200, header: map[string][]string{"X": {"1"}}, bodyErr: fastcgi.ErrProtocol},
		{name: "overloaded", response: end(2), doErr: fastcgi.ErrOverloaded},
		{name: "unknown role", response: end(3), doErr: fastcgi.ErrProtocol, errContain: "role"},
		{name: "malformed header line", response: cat(out("no colon here\r\n\r\n"), end(0)), doErr: fastcgi.ErrProtocol, errContain: "malformed"},
		{name: "bad header name", response: cat(out("Bad Name: x\r\n\r\n"), end(0)), doErr: fastcgi.ErrProtocol, errContain: "invalid header name"},
		{name: "CR inside header value", response: cat(out("X: a\rSet-Cookie: evil\r\n\r\n"), end(0)), doErr: fastcgi.ErrProtocol, errContain: "invalid byte"},
		{name: "bad status", response: cat(out("Status: abc\r\n\r\n"), end(0)), doErr: fastcgi.ErrProtocol, errContain: "Status"},
		{name: "connection closed before response", response: nil, errContain: "EOF"},
		{
			name:     "connection closed mid body",
			response: out("X: 1\r\n\r\nsome"),
			status:   200, header: map[string][]string{"X": {"1"}}, body: "some",
			bodyErr: fastcgi.ErrProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeClient(tt.response)
			defer c.Close()
			resp, err := c.Do(context.Background(), []fastcgi.Param{{"A", "b"}}, nil)
			if tt.doErr != nil || (tt.errContain != "" && tt.bodyErr == nil) {
				if err == nil {
					t.Fatalf("Do succeeded, want error %v %q", tt.doErr, tt.errContain)
				}
				if tt.doErr != nil && !errors.Is(err, tt.doErr) {
					t.Errorf("err = %v, want %v", err, tt.doErr)
				}
				if !strings.Contains(err.Error(), tt.errContain) {
					t.Errorf("err = %q, want it to contain %q", err, tt.errContain)
				}
				if busy, idle := c.Stats(); busy != 0 || idle != 0 {
					t.Errorf("after error Stats() = %d, %d", busy, idle)
				}
				return
			}
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if resp.Status != tt.status {
				t.Errorf("status %d, want %d", resp.Status, tt.status)
			}
			for k, v := range tt.header {
				if !slices.Equal(resp.Header[k], v) {
					t.Errorf("header %s = %q, want %q", k, resp.Header[k], v)
				}
			}
			if len(resp.Header) != len(tt.header) {
				t.Errorf("header = %v, want %v", resp.Header, tt.header)
			}
			body, err := io.ReadAll(resp.Body)
			if tt.bodyErr != nil {
				if !errors.Is(err, tt.bodyErr) {
					t.Errorf("body err = %v, want %v", err, tt.bodyErr)
				}
			} else if err != nil {
				t.Errorf("body err = %v", err)
			}
			if string(body) != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if got := resp.Stderr(); got != tt.stderr {
				t.Errorf("stderr %q, want %q", got, tt.stderr)
			}
			resp.Body.Close()
			busy, idle := c.Stats()
			if busy != 0 || (idle == 1) != tt.reusable {
				t.Errorf("after Close Stats() = %d busy, %d idle; reusable %v", busy, idle, tt.reusable)
			}
		})
	}
}

func TestHeaderTooLarge(t *testing.T) {
	var resp []byte
	line := strings.Repeat("X-Big: "+strings.Repeat("a", 1000)+"\r\n", 60) // ~60 KB per record
	for resp = nil; len(resp) < 2<<20; {
		resp = append(resp, out(line)...)
	}
	c, _ := fakeClient(resp)
	_, err := c.Do(context.Background(), nil, nil)
	if !errors.Is(err, fastcgi.ErrHeaderTooLarge) {
		t.Fatalf("err = %v, want ErrHeaderTooLarge", err)
	}
}

func TestStderrBounded(t *testing.T) {
	var resp []byte
	for range 10 {
		resp = append(resp, rec(tStderr, 1, strings.Repeat("e", 1000), 0)...)
	}
	resp = cat(resp, out("\r\nok"), end(0))
	c, _ := fakeClient(resp)
	r, err := c.Do(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(body) != "ok" || len(r.Stderr()) != fastcgi.MaxStderrBytes {
		t.Errorf("body %q, stderr %d bytes", body, len(r.Stderr()))
	}
}

// decodeRecords splits what the client wrote into records, checking the
// framing.
type record struct {
	typ     byte
	id      uint16
	content []byte
}

func decodeRecords(t *testing.T, b []byte) []record {
	t.Helper()
	var recs []record
	for len(b) > 0 {
		if len(b) < 8 || b[0] != 1 {
			t.Fatalf("bad record header % x", b[:min(8, len(b))])
		}
		n, pad := int(binary.BigEndian.Uint16(b[4:])), int(b[6])
		if len(b) < 8+n+pad {
			t.Fatalf("truncated record")
		}
		recs = append(recs, record{b[1], binary.BigEndian.Uint16(b[2:]), b[8 : 8+n]})
		b = b[8+n+pad:]
	}
	return recs
}

// decodePairs parses one PARAMS record's content; it must hold whole pairs.
func decodePairs(t *testing.T, b []byte) []fastcgi.Param {
	t.Helper()
	readLen := func() int {
		if len(b) == 0 {
			t.Fatal("pair split across records")
		}
		if b[0] < 128 {
			n := int(b[0])
			b = b[1:]
			return n
		}
		if len(b) < 4 {
			t.Fatal("pair split across records")
		}
		n := int(binary.BigEndian.Uint32(b) & 0x7fffffff)
		b = b[4:]
		return n
	}
	var ps []fastcgi.Param
	for len(b) > 0 {
		nl, vl := readLen(), readLen()
		if len(b) < nl+vl {
			t.Fatal("pair split across records")
		}
		ps = append(ps, fastcgi.Param{Name: string(b[:nl]), Value: string(b[nl : nl+vl])})
		b = b[nl+vl:]
	}
	return ps
}

func TestRequestEncoding(t *testing.T) {
	ok := cat(out("\r\n"), end(0))
	many := []fastcgi.Param{{"SHORT", "v"}, {strings.Repeat("N", 127), strings.Repeat("v", 128)}, {"EMPTY", ""}}
	for i := range 400 {
		many = append(many, fastcgi.Param{Name: "HTTP_X_" + strings.Repeat("k", i%200), Value: strings.Repeat("v", 300)})
	}
	tests := []struct {
		name   string
		params []fastcgi.Param
		body   string
	}{
		{name: "no params no body"},
		{name: "short params", params: []fastcgi.Param{{"REQUEST_METHOD", "GET"}, {"QUERY_STRING", ""}}},
		{name: "long values and several PARAMS records", params: many},
		{name: "pair of exactly 65535 bytes", params: []fastcgi.Param{{"A", strings.Repeat("x", 65535-1-2-4)}, {"B", "c"}}},
		{name: "with body", params: []fastcgi.Param{{"CONTENT_LENGTH", "200000"}}, body: strings.Repeat("b", 200000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fc := fakeClient(ok)
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, err := c.Do(context.Background(), tt.params, body)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			fc.mu.Lock()
			defer fc.mu.Unlock()
			if tt.body == "" && len(fc.writes) != 1 {
				t.Errorf("request head took %d writes, want 1", len(fc.writes))
			}
			recs := decodeRecords(t, bytes.Join(fc.writes, nil))
			if recs[0].typ != tBegin || !bytes.Equal(recs[0].content, []byte{0, 1, 1, 0, 0, 0, 0, 0}) {
				t.Errorf("BEGIN_REQUEST = %+v, want responder role with KEEP_CONN", recs[0])
			}
			var params []fastcgi.Param
			var stdin []byte
			i := 1
			for ; recs[i].typ == tParams && len(recs[i].content) > 0; i++ {
				params = append(params, decodePairs(t, recs[i].content)...)
			}
			if recs[i].typ != tParams || len(recs[i].content) != 0 {
				t.Fatalf("record %d = type %d, want empty PARAMS", i, recs[i].typ)
			}
			for i++; i < len(recs) && len(recs[i].content) > 0; i++ {
				if recs[i].typ != tStdin {
					t.Fatalf("record %d type %d, want STDIN", i, recs[i].typ)
				}
				stdin = append(stdin, recs[i].content...)
			}
			if i != len(recs)-1 || recs[i].typ != tStdin {
				t.Errorf("request does not end with one empty STDIN record")
			}
			for _, r := range recs {
				if r.id != 1 {
					t.Errorf("request id %d", r.id)
				}
			}
			if len(params) != len(tt.params) || (len(params) > 0 && !slices.Equal(params, tt.params)) {
				t.Errorf("params round trip: got %d, want %d", len(params), len(tt.params))
			}
			if string(stdin) != tt.body {
				t.Errorf("stdin %d bytes, want %d", len(stdin), len(tt.body))
			}
		})
	}
}

func TestParamTooLarge(t *testing.T) {
	c, _ := fakeClient(nil)
	_, err := c.Do(context.Background(), []fastcgi.Param{{"HTTP_X", strings.Repeat("x", 70000)}}, nil)
	if !errors.Is(err, fastcgi.ErrParamTooLarge) {
		t.Fatalf("err = %v, want ErrParamTooLarge", err)
	}
	if busy, _ := c.Stats(); busy != 0 {
		t.Errorf("slot leaked: busy %d", busy)
	}
}

func TestClosedClient(t *testing.T) {
	c, _ := fakeClient(nil)
	c.Close()
	if _, err := c.Do(context.Background(), nil, nil); !errors.Is(err, fastcgi.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		name   string
		block  string
		status int
		err    bool
	}{
		{name: "status with reason", block: "Status: 404 Not Found\r\n\r\n", status: 404},
		{name: "status code only", block: "Status: 204\r\n", status: 204},
		{name: "lowercase status", block: "status: 500 Oops\n\n", status: 500},
		{name: "status too low", block: "Status: 099\r\n", err: true},
		{name: "status junk after code", block: "Status: 2000\r\n", err: true},
		{name: "empty value ok", block: "X-Empty:\r\n", status: 200},
		{name: "NUL in value", block: "X: a\x00b\r\n", err: true},
		{name: "space before colon", block: "X : a\r\n", err: true},
		{name: "empty name", block: ": a\r\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _, err := fastcgi.ParseHeaders([]byte(tt.block))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err == nil && st != tt.status {
				t.Errorf("status %d, want %d", st, tt.status)
			}
		})
	}
}

func TestHeaderEnd(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"CRLF", "A: b\r\n\r\nbody", 8},
		{"LF", "A: b\n\nbody", 6},
		{"mixed", "A: b\n\r\nbody", 7},
		{"leading CRLF", "\r\nbody", 2},
		{"leading LF", "\nbody", 1},
		{"incomplete", "A: b\r\n", -1},
		{"incomplete CR", "A: b\r\n\r", -1},
		{"none", "A: b", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fastcgi.HeaderEnd([]byte(tt.in), 0); got != tt.want {
				t.Errorf("HeaderEnd(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}
