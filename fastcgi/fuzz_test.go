package fastcgi_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/fastcgi"
)

// FuzzRecordReader feeds arbitrary bytes to the client as if php-fpm had
// sent them: it must never panic, hang or allocate beyond its bounds.
func FuzzRecordReader(f *testing.F) {
	f.Add(cat(out("Status: 201 Created\r\nX-A: 1\r\n\r\nhello"), rec(tStderr, 1, "warn", 3), out(""), end(0)))
	f.Add(cat(out("Content-Type: text/html\n\n"), out("body"), end(0)))
	f.Add(cat(out("Location: /x\r\n\r\n"), end(0)))
	f.Add(end(2))
	f.Add(rec(tStdout, 1, "X: 1\r\n\r\n", 255)[:20])
	f.Add(rec(tGetValues, 0, "", 0))
	f.Add([]byte{1, 6, 0, 1, 0xff, 0xff, 0xff, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _ := fakeClient(data)
		defer c.Close()
		before := totalAlloc()
		resp, err := c.Do(context.Background(), []fastcgi.Param{{"A", "b"}}, nil)
		if err == nil {
			if resp.Status < 100 || resp.Status > 999 {
				t.Fatalf("status %d", resp.Status)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n > int64(len(data)) {
				t.Fatalf("body %d bytes from %d input bytes", n, len(data))
			}
			if len(resp.Stderr()) > fastcgi.MaxStderrBytes {
				t.Fatalf("stderr %d bytes", len(resp.Stderr()))
			}
		}
		// Nothing may scale with lengths claimed in the input: a record is
		// at most 64 KB and the header block 1 MB.
		if a := totalAlloc() - before; a > uint64(fastcgi.MaxHeaderBytes)+uint64(4*len(data))+1<<20 {
			t.Fatalf("allocated %d bytes for %d input bytes", a, len(data))
		}
		if busy, _ := c.Stats(); busy != 0 {
			t.Fatalf("slot leaked")
		}
	})
}

// FuzzParseHeaders checks the CGI header block parser: no panic, and what
// it accepts is safe to copy into an HTTP response.
func FuzzParseHeaders(f *testing.F) {
	f.Add([]byte("Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n"))
	f.Add([]byte("Set-Cookie: a=1\nSet-Cookie: b=2\n\n"))
	f.Add([]byte("Location: http://example.com/\r\n"))
	f.Add([]byte("X: a\rb\r\n"))
	f.Add([]byte("status: 99\r\n"))
	f.Add([]byte("\r\n"))
	f.Add([]byte(": x\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if e := fastcgi.HeaderEnd(data, 0); e > len(data) || e < -1 || e == 0 {
			t.Fatalf("HeaderEnd = %d for %d bytes", e, len(data))
		}
		st, h, err := fastcgi.ParseHeaders(data)
		if err != nil {
			return
		}
		if st < 100 || st > 999 {
			t.Fatalf("status %d", st)
		}
		for k, vs := range h {
			if k == "" || strings.ContainsAny(k, " \t\r\n:\x00") {
				t.Fatalf("bad key %q", k)
			}
			if k == "Status" {
				t.Fatal("Status left in header map")
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("bad value %q", v)
				}
			}
		}
	})
}
