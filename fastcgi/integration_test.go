package fastcgi_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
)

func TestFPMRequests(t *testing.T) {
	f := startFPM(t, 2)
	c, _ := f.client(t, fastcgi.Config{MaxConns: 2})
	ctx := context.Background()

	t.Run("GET with query", func(t *testing.T) {
		resp, err := c.Do(ctx, f.params("echo.php", "GET", "a=1&b=two+words"), nil)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		var got struct {
			Method, Query string
			Get           map[string]string
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if resp.Status != 200 || got.Method != "GET" || got.Query != "a=1&b=two+words" || got.Get["a"] != "1" || got.Get["b"] != "two words" {
			t.Errorf("status %d body %s", resp.Status, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	})

	t.Run("POST urlencoded", func(t *testing.T) {
		form := "x=1&y=hello+world&z=%C3%A9"
		p := f.params("echo.php", "POST", "",
			fastcgi.Param{Name: "CONTENT_TYPE", Value: "application/x-www-form-urlencoded"},
			fastcgi.Param{Name: "CONTENT_LENGTH", Value: strconv.Itoa(len(form))})
		resp, err := c.Do(ctx, p, strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		var got struct{ Post map[string]string }
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		want := map[string]string{"x": "1", "y": "hello world", "z": "é"}
		if fmt.Sprint(got.Post) != fmt.Sprint(want) {
			t.Errorf("post = %v, want %v", got.Post, want)
		}
	})

	t.Run("long and many params", func(t *testing.T) {
		// A 40 KB value (4-byte length) and enough params to need several
		// PARAMS records.
		extra := []fastcgi.Param{{Name: "HTTP_X_LONG", Value: strings.Repeat("v", 40000)}}
		for i := range 300 {
			extra = append(extra, fastcgi.Param{Name: fmt.Sprintf("HTTP_X_MANY_%d", i), Value: strings.Repeat("m", 300)})
		}
		resp, err := c.Do(ctx, f.params("echo.php", "GET", "", extra...), nil)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		var got struct{ Long, Many int }
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if got.Long != 40000 || got.Many != 300 {
			t.Errorf("long=%d many=%d, want 40000 300", got.Long, got.Many)
		}
	})

	t.Run("multiple Set-Cookie", func(t *testing.T) {
		resp, err := c.Do(ctx, f.params("cookies.php", "GET", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"a=1", "b=2"}) {
			t.Errorf("Set-Cookie = %q", got)
		}
		if got := resp.Header.Values("X-Multi"); !slices.Equal(got, []string{"one", "two"}) {
			t.Errorf("X-Multi = %q", got)
		}
		if body != "cookies" {
			t.Errorf("body %q", body)
		}
	})

	t.Run("status 404", func(t *testing.T) {
		resp, err := c.Do(ctx, f.params("notfound.php", "GET", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.Status != 404 || body != "nope" {
			t.Errorf("status %d body %q", resp.Status, body)
		}
		if _, ok := resp.Header["Status"]; ok {
			t.Error("Status header left in the map")
		}
	})

	t.Run("missing script", func(t *testing.T) {
		resp, err := c.Do(ctx, f.params("does-not-exist.php", "GET", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.Status != 404 || !strings.Contains(resp.Stderr(), "Primary script unknown") {
			t.Errorf("status %d stderr %q", resp.Status, resp.Stderr())
		}
	})

	t.Run("Location redirect", func(t *testing.T) {
		resp, err := c.Do(ctx, f.params("redirect.php", "GET", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.Status != 302 || resp.Header.Get("Location") != "/elsewhere" {
			t.Errorf("status %d Location %q", resp.Status, resp.Header.Get("Location"))
		}
	})

	t.Run("stderr capture", func(t *testing.T) {
		resp, err := c.Do(ctx, f.params("stderr.php", "GET", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); body != "ok" {
			t.Errorf("body %q", body)
		}
		if got := resp.Stderr(); !strings.Contains(got, "hello from stderr") {
			t.Errorf("stderr %q", got)
		}
	})
}

// genReader produces n deterministic bytes without holding them and
// hashes what it hands out.
type genReader struct {
	left int64
	i    byte
	h    hash.Hash
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	for j := range p {
		p[j] = g.i
		g.i = g.i*31 + 7
	}
	g.left -= int64(len(p))
	g.h.Write(p)
	return len(p), nil
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

func TestFPMStreamingUpload(t *testing.T) {
	f := startFPM(t, 1)
	c, _ := f.client(t, fastcgi.Config{MaxConns: 1})
	const size = 50 << 20
	gen := &genReader{left: size, h: md5.New()}
	p := f.params("md5.php", "POST", "",
		fastcgi.Param{Name: "CONTENT_TYPE", Value: "application/octet-stream"},
		fastcgi.Param{Name: "CONTENT_LENGTH", Value: strconv.Itoa(size)})
	before := totalAlloc()
	resp, err := c.Do(context.Background(), p, gen)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	allocated := totalAlloc() - before
	want := fmt.Sprintf("%d %s", size, hex.EncodeToString(gen.h.Sum(nil)))
	if body != want {
		t.Errorf("php saw %q, want %q (stderr %q)", body, want, resp.Stderr())
	}
	// The body must stream: a 50 MB upload may not cost more than a few
	// record buffers.
	if allocated > 4<<20 {
		t.Errorf("allocated %d bytes for a %d byte upload", allocated, size)
	}
}

func TestFPMStreamingResponse(t *testing.T) {
	f := startFPM(t, 1)
	c, _ := f.client(t, fastcgi.Config{MaxConns: 1})
	before := totalAlloc()
	resp, err := c.Do(context.Background(), f.params("big.php", "GET", "mb=20"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	buf := make([]byte, 32<<10)
	n, err := io.CopyBuffer(h, resp.Body, buf)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	allocated := totalAlloc() - before
	want := md5.New()
	chunk := strings.Repeat("0123456789abcdef", 4096)
	for range 20 * 16 {
		io.WriteString(want, chunk)
	}
	if n != 20<<20 || !slices.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Errorf("got %d bytes, md5 mismatch=%v", n, !slices.Equal(h.Sum(nil), want.Sum(nil)))
	}
	if allocated > 4<<20 {
		t.Errorf("allocated %d bytes for a 20 MB response", allocated)
	}
}

func TestFPMKeepAlive(t *testing.T) {
	f := startFPM(t, 2)
	c, d := f.client(t, fastcgi.Config{MaxConns: 2})
	for i := range 20 {
		resp, err := c.Do(context.Background(), f.params("hello.php", "GET", ""), nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if body := readAll(t, resp); body != "Hello, World!" {
			t.Fatalf("body %q", body)
		}
	}
	// POSTs (STDIN streamed by a goroutine) keep the connection too.
	for i := range 10 {
		form := "x=" + strconv.Itoa(i)
		resp, err := c.Do(context.Background(), f.params("echo.php", "POST", "",
			fastcgi.Param{Name: "CONTENT_TYPE", Value: "application/x-www-form-urlencoded"},
			fastcgi.Param{Name: "CONTENT_LENGTH", Value: strconv.Itoa(len(form))}), strings.NewReader(form))
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		if body := readAll(t, resp); !strings.Contains(body, fmt.Sprintf(`"x":"%d"`, i)) {
			t.Fatalf("body %s", body)
		}
	}
	if got := d.dials.Load(); got != 1 {
		t.Errorf("%d dials for 30 sequential requests, want 1", got)
	}
	if busy, idle := c.Stats(); busy != 0 || idle != 1 {
		t.Errorf("Stats() = %d busy, %d idle; want 0, 1", busy, idle)
	}
}

func TestFPMBoundedPool(t *testing.T) {
	f := startFPM(t, 4)
	c, d := f.client(t, fastcgi.Config{MaxConns: 4})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	pids := map[string]bool{}
	for range 50 {
		wg.Go(func() {
			resp, err := c.Do(context.Background(), f.params("sleep.php", "GET", "us=10000"), nil)
			if err == nil {
				if busy, _ := c.Stats(); busy > 4 {
					err = fmt.Errorf("busy = %d", busy)
				}
				var b strings.Builder
				_, err = io.Copy(&b, resp.Body)
				resp.Body.Close()
				mu.Lock()
				pids[b.String()] = true
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	if m := d.maxOpen.Load(); m > 4 {
		t.Errorf("%d connections open at once, MaxConns is 4", m)
	}
	if m := d.maxOpen.Load(); m < 2 {
		t.Errorf("only %d connection(s) used under concurrency", m)
	}
	if busy, idle := c.Stats(); busy != 0 || idle > 4 {
		t.Errorf("Stats() = %d busy, %d idle", busy, idle)
	}
	t.Logf("dials=%d maxOpen=%d workers seen=%d", d.dials.Load(), d.maxOpen.Load(), len(pids))
}

func TestFPMRestartBetweenRequests(t *testing.T) {
	f := startFPM(t, 2)
	c, d := f.client(t, fastcgi.Config{MaxConns: 2})
	do := func() {
		t.Helper()
		resp, err := c.Do(context.Background(), f.params("hello.php", "GET", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); body != "Hello, World!" {
			t.Fatalf("body %q", body)
		}
	}
	// Two idle connections: both die with the restart, so the retry must
	// dial rather than take the other idle one.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			resp, err := c.Do(context.Background(), f.params("sleep.php", "GET", "us=50000"), nil)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if _, idle := c.Stats(); idle != 2 {
		t.Fatalf("%d idle connections, want 2", idle)
	}
	f.restart()
	do() // the idle connection is dead: retried on a fresh one
	if got := d.dials.Load(); got != 3 {
		t.Errorf("%d dials, want 3", got)
	}
	do() // the other dead idle connection: retried too
	do()
	// A POST body that was not read yet is retried too.
	f.restart()
	form := "x=1"
	resp, err := c.Do(context.Background(), f.params("echo.php", "POST", "",
		fastcgi.Param{Name: "CONTENT_TYPE", Value: "application/x-www-form-urlencoded"},
		fastcgi.Param{Name: "CONTENT_LENGTH", Value: "3"}), strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); !strings.Contains(body, `"post":{"x":"1"}`) {
		t.Errorf("body %s", body)
	}
}

func TestFPMContext(t *testing.T) {
	f := startFPM(t, 2)
	c, _ := f.client(t, fastcgi.Config{MaxConns: 2})

	t.Run("while reading headers", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Do(ctx, f.params("sleep.php", "GET", "us=1500000"), nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v", d)
		}
		if busy, idle := c.Stats(); busy != 0 || idle != 0 {
			t.Errorf("Stats() = %d, %d; the aborted connection must be closed", busy, idle)
		}
	})

	t.Run("while reading body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := c.Do(ctx, f.params("slow.php", "GET", "us=1500000"), nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := io.ReadFull(resp.Body, buf[:5])
		if err != nil || string(buf[:n]) != "first" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err = resp.Body.Read(buf)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("read took %v", d)
		}
		resp.Body.Close()
		if busy, idle := c.Stats(); busy != 0 || idle != 0 {
			t.Errorf("Stats() = %d, %d; the aborted connection must be closed", busy, idle)
		}
	})

	t.Run("while waiting for a slot", func(t *testing.T) {
		c1, _ := f.client(t, fastcgi.Config{MaxConns: 1})
		resp, err := c1.Do(context.Background(), f.params("hello.php", "GET", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c1.Do(ctx, f.params("hello.php", "GET", ""), nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want DeadlineExceeded", err)
		}
	})
}

func TestFPMBodyReadError(t *testing.T) {
	f := startFPM(t, 1)
	c, _ := f.client(t, fastcgi.Config{MaxConns: 1})
	boom := errors.New("client went away")
	body := io.MultiReader(strings.NewReader("partial"), errReader{boom})
	_, err := c.Do(context.Background(), f.params("md5.php", "POST", "",
		fastcgi.Param{Name: "CONTENT_LENGTH", Value: "1000"}), body)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the body's error", err)
	}
	// The client is still usable.
	resp, err := c.Do(context.Background(), f.params("hello.php", "GET", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "Hello, World!" {
		t.Errorf("body %q", got)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func BenchmarkDoHello(b *testing.B) {
	f := startFPM(b, 2)
	c, _ := f.client(b, fastcgi.Config{MaxConns: 2})
	p := f.params("hello.php", "GET", "")
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Do(context.Background(), p, nil)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					break
				}
			}
			resp.Body.Close()
		}
	})
}

// TestFPMKeptConnPinsWorker documents why MaxConns must not exceed
// pm.max_children: php-fpm keeps a worker on a kept-alive connection, so a
// connection beyond the worker count waits in the listen backlog while
// idle pooled connections hold every worker.
func TestFPMKeptConnPinsWorker(t *testing.T) {
	f := startFPM(t, 1)
	c, d := f.client(t, fastcgi.Config{MaxConns: 2})
	first, err := c.Do(context.Background(), f.params("sleep.php", "GET", "us=100000"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// A second connection while the only worker is busy.
		resp, err := c.Do(ctx, f.params("hello.php", "GET", ""), nil)
		if err == nil {
			readAll(t, resp)
		}
		done <- err
	}()
	waitFor := time.Now().Add(5 * time.Second)
	for d.dials.Load() < 2 && time.Now().Before(waitFor) {
		runtime.Gosched() // until the second request has its own connection
	}
	readAll(t, first) // the worker is now free but waits on the idle first conn
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request: %v; php-fpm no longer pins workers to kept-alive connections?", err)
	}
}
