package httpd_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/phpfpm"
)

type env struct {
	url, addr, root, runDir string
	sup                     *phpfpm.Supervisor
	client                  *http.Client
}

// start runs php-fpm, the FastCGI client and the HTTP front in-process.
func start(t *testing.T, tweak func(*httpd.Config)) *env {
	t.Helper()
	testutil.NeedProgram(t, "php-fpm8.2", "php-fpm")
	root, err := filepath.Abs("testdata/site")
	if err != nil {
		t.Fatal(err)
	}
	runDir := testutil.WorldReadableDir(t)
	sup, err := phpfpm.New(phpfpm.Config{
		RuntimeDir: filepath.Join(runDir, "fpm"), Workers: 3,
		MemoryLimit: "64M", MaxExecutionTime: 30 * time.Second,
		INI:    map[string]string{"upload_max_filesize": "64M", "post_max_size": "64M"},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sup.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Close() })
	php := fastcgi.NewClient(fastcgi.Config{Network: "unix", Address: sup.Socket(), MaxConns: 3, MaxIdle: 3})
	t.Cleanup(func() { php.Close() })
	cfg := httpd.Config{
		Sites: httpd.SingleSite{S: &httpd.Site{
			Name: "default", Root: root, IndexFiles: []string{"index.php", "index.html"},
			Fallback: "/index.php?$query_string", CacheControl: "public, max-age=60", PHP: php,
		}},
		MaxBodySize: 64 << 20, MaxHeaderSize: 16 << 10, RequestTimeout: 10 * time.Second,
		Compression: true, CompressMin: 1024, Ready: sup.ReadyErr, TmpDir: runDir,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := httpd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &env{
		url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), root: root, runDir: runDir, sup: sup,
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{DisableCompression: true}},
	}
}

func (e *env) do(t *testing.T, method, path string, body io.Reader, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

func (e *env) get(t *testing.T, path string, hdr ...string) (*http.Response, string) {
	return e.do(t, http.MethodGet, path, nil, hdr...)
}

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %v: %q", err, body)
	}
	return m
}

// raw sends a request line over TCP, as clients would normalise it.
func (e *env) raw(t *testing.T, target string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %q: %v", target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "SECRET") || strings.Contains(string(body), "sqlite data") || strings.Contains(string(body), "<?php") {
		t.Errorf("GET %q leaked file contents: %q", target, body)
	}
	return resp.StatusCode
}

func TestRouting(t *testing.T) {
	e := start(t, nil)
	for _, tc := range []struct {
		name, method, path string
		status             int
		body, header       string // substrings
	}{
		{"php hello", "GET", "/hello.php", 200, "Hello, World!", ""},
		{"head php", "HEAD", "/hello.php", 200, "", ""},
		{"static", "GET", "/hello.txt", 200, "hello static", "Content-Type: text/plain"},
		{"static cache-control", "GET", "/hello.txt", 200, "", "Cache-Control: public, max-age=60"},
		{"static head", "HEAD", "/hello.txt", 200, "", "Content-Length: 13"},
		{"static post not allowed", "POST", "/hello.txt", 405, "", "Allow: GET, HEAD"},
		{"root index.php", "GET", "/", 200, `"script":"\/index.php"`, ""},
		{"dir index.html", "GET", "/sub/", 200, "sub index", ""},
		{"dir redirect", "GET", "/sub?x=1", 301, "", "Location: /sub/?x=1"},
		{"dir index.php", "GET", "/blog/", 200, "blog index", ""},
		{"pretty permalink", "GET", "/2024/01/hello-world/?replytocom=5", 200, `"uri":"\/2024\/01\/hello-world\/?replytocom=5"`, ""},
		{"permalink query", "GET", "/category/news/?paged=2", 200, `"paged":"2"`, ""},
		{"dir without index falls back", "GET", "/noindex/", 200, `"front":true`, ""},
		{"missing php is 404", "GET", "/nope.php", 404, "", ""},
		{"missing php with path info", "GET", "/nope.php/a/b", 404, "", ""},
		{"custom status", "GET", "/status.php?code=418", 418, "status page", "X-Custom-Header: yes"},
		{"php 404 status", "GET", "/status.php?code=404", 404, "status page", ""},
		{"redirect", "GET", "/redirect.php", 302, "", "Location: /env.php?from=redirect"},
		{"mime css", "GET", "/style.css", 200, "color: red", "Content-Type: text/css"},
		{"health", "GET", "/_ephpm/health", 200, "ok", ""},
		{"ready", "GET", "/_ephpm/ready", 200, "ready", ""},
		{"metrics from loopback", "GET", "/metrics", 200, "ephpm_http_requests_total", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(t, tc.method, tc.path, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(body, tc.body) {
				t.Errorf("body %q does not contain %q", body, tc.body)
			}
			if tc.header != "" {
				k, v, _ := strings.Cut(tc.header, ": ")
				if got := resp.Header.Get(k); !strings.Contains(got, v) {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.method == "HEAD" && body != "" {
				t.Errorf("HEAD returned a body: %q", body)
			}
		})
	}
}

func TestCGIVariables(t *testing.T) {
	e := start(t, nil)
	resp, body := e.get(t, "/env.php/extra/path?x=1&y=2", "X-Custom", "v1", "Proxy", "http://evil:1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	m := decode(t, body)
	want := map[string]any{
		"SCRIPT_FILENAME": filepath.Join(e.root, "env.php"), "SCRIPT_NAME": "/env.php", "PATH_INFO": "/extra/path",
		"REQUEST_URI": "/env.php/extra/path?x=1&y=2", "QUERY_STRING": "x=1&y=2", "DOCUMENT_ROOT": e.root,
		"REQUEST_METHOD": "GET", "REMOTE_ADDR": "127.0.0.1", "HTTP_X_CUSTOM": "v1", "getenv_custom": "v1",
		"HTTP_PROXY": nil, "SERVER_NAME": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
		"HTTPS": nil, "REQUEST_SCHEME": "http",
	}
	_, port, _ := net.SplitHostPort(e.addr)
	want["SERVER_PORT"] = port
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	untrusted := start(t, nil)
	_, body := untrusted.get(t, "/env.php", "X-Forwarded-For", "203.0.113.9", "X-Forwarded-Proto", "https")
	if m := decode(t, body); m["REMOTE_ADDR"] != "127.0.0.1" || m["HTTPS"] != nil {
		t.Errorf("untrusted peer's X-Forwarded-* believed: %v", m)
	}
	trusted := start(t, func(c *httpd.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} })
	_, body = trusted.get(t, "/env.php", "X-Forwarded-For", "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto", "https")
	if m := decode(t, body); m["REMOTE_ADDR"] != "203.0.113.9" || m["HTTPS"] != "on" {
		t.Errorf("trusted proxy: REMOTE_ADDR=%v HTTPS=%v", m["REMOTE_ADDR"], m["HTTPS"])
	}
}

func TestPost(t *testing.T) {
	e := start(t, nil)
	t.Run("urlencoded", func(t *testing.T) {
		resp, body := e.do(t, "POST", "/post.php?q=1", strings.NewReader("a=1&b=h%C3%A9llo"), "Content-Type", "application/x-www-form-urlencoded")
		m := decode(t, body)
		post := m["post"].(map[string]any)
		if resp.StatusCode != 200 || post["a"] != "1" || post["b"] != "héllo" || m["get"].(map[string]any)["q"] != "1" {
			t.Errorf("got %d %v", resp.StatusCode, m)
		}
	})
	t.Run("raw json", func(t *testing.T) {
		payload := `{"x":[1,2,3]}`
		_, body := e.do(t, "PUT", "/post.php", strings.NewReader(payload), "Content-Type", "application/json")
		m := decode(t, body)
		sum := md5.Sum([]byte(payload))
		if m["method"] != "PUT" || m["raw_md5"] != hex.EncodeToString(sum[:]) {
			t.Errorf("got %v", m)
		}
	})
	t.Run("chunked body", func(t *testing.T) {
		payload := strings.Repeat("z", 100000)
		pr, pw := io.Pipe()
		go func() { _, _ = io.Copy(pw, strings.NewReader(payload)); pw.Close() }()
		_, body := e.do(t, "POST", "/post.php", pr, "Content-Type", "text/plain")
		if m := decode(t, body); m["raw_len"] != float64(len(payload)) {
			t.Errorf("raw_len = %v, want %d", m["raw_len"], len(payload))
		}
	})
	t.Run("multipart 20MB file streamed", func(t *testing.T) {
		const size = 20 << 20
		h := md5.New()
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			_ = mw.WriteField("title", "upload")
			fw, _ := mw.CreateFormFile("file", "big.bin")
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
			for n := 0; n < size; n += len(chunk) {
				h.Write(chunk)
				if _, err := fw.Write(chunk); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			mw.Close()
			pw.Close()
		}()
		resp, body := e.do(t, "POST", "/post.php", pr, "Content-Type", mw.FormDataContentType())
		m := decode(t, body)
		f := m["files"].(map[string]any)["file"].(map[string]any)
		if resp.StatusCode != 200 || f["size"] != float64(size) || f["md5"] != hex.EncodeToString(h.Sum(nil)) || m["post"].(map[string]any)["title"] != "upload" {
			t.Errorf("got %d %v", resp.StatusCode, m)
		}
	})
}

func TestCookies(t *testing.T) {
	e := start(t, nil)
	resp, body := e.get(t, "/cookie.php", "Cookie", "in=x; other=y")
	if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || !strings.HasPrefix(got[0], "first=one") || !strings.HasPrefix(got[1], "second=two") {
		t.Errorf("Set-Cookie = %q", got)
	}
	if m := decode(t, body); m["in"] != "x" || m["other"] != "y" {
		t.Errorf("cookies seen by PHP = %v", m)
	}
}

// Every rule is a named regression test; requests go over raw TCP
// because HTTP clients normalise paths.
func TestSecurity(t *testing.T) {
	e := start(t, nil)
	for _, tc := range []struct {
		name, target string
		status       int
	}{
		{"dotdot", "/../httpd_test.go", 400},
		{"dotdot inside", "/sub/../.env", 400},
		{"encoded dotdot", "/sub/%2e%2e/.env", 400},
		{"mixed encoded dotdot", "/sub/.%2e/hello.txt", 400},
		{"encoded slash", "/sub%2findex.html", 400},
		{"encoded backslash", "/sub%5cindex.html", 400},
		{"backslash", "/sub\\index.html", 400},
		{"encoded NUL", "/hello.php%00.txt", 400},
		{"dotfile", "/.env", 404},
		{"dot dir", "/.git/config", 404},
		{"sqlite db", "/data.db", 404},
		{"sqlite wal", "/data.db-wal", 404},
		{"sqlite3 file", "/store.sqlite3", 404},
		{"site.toml", "/site.toml", 404},
		{"php backup source", "/hello.php.bak", 404},
		{"phtml source", "/old.phtml", 404},
		{"uppercase php not served as source", "/UPPER.PHP", 404},
		{"missing uppercase php goes to front controller", "/HELLO.PHP", 200},
		{"fix_pathinfo upload", "/uploads/x.jpg/evil.php", 404},
		{"php in image name", "/uploads/evil.php.jpg", 404},
		{"path info on static", "/hello.txt/x.php", 404},
		{"well-known allowed", "/.well-known/acme-challenge/tok", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.raw(t, tc.target); got != tc.status {
				t.Errorf("GET %s = %d, want %d", tc.target, got, tc.status)
			}
		})
	}
	t.Run("php source never served", func(t *testing.T) {
		_, body := e.get(t, "/hello.php")
		if strings.Contains(body, "<?php") {
			t.Fatalf("PHP source served: %q", body)
		}
	})
	t.Run("body limit", func(t *testing.T) {
		small := start(t, func(c *httpd.Config) { c.MaxBodySize = 1000 })
		resp, _ := small.do(t, "POST", "/post.php", strings.NewReader(strings.Repeat("a", 5000)), "Content-Type", "text/plain")
		if resp.StatusCode != 413 {
			t.Errorf("status = %d, want 413", resp.StatusCode)
		}
		pr, pw := io.Pipe()
		go func() { _, _ = pw.Write(bytes.Repeat([]byte("a"), 5000)); pw.Close() }()
		resp, _ = small.do(t, "POST", "/post.php", pr, "Content-Type", "text/plain")
		if resp.StatusCode != 413 {
			t.Errorf("chunked: status = %d, want 413", resp.StatusCode)
		}
	})
	t.Run("header limit", func(t *testing.T) {
		resp, _ := e.get(t, "/hello.php", "X-Big", strings.Repeat("b", 32<<10))
		if resp.StatusCode != 431 {
			t.Errorf("status = %d, want 431", resp.StatusCode)
		}
	})
}

func TestCompression(t *testing.T) {
	e := start(t, nil)
	for _, path := range []string{"/style.css", "/text.php"} {
		t.Run(path, func(t *testing.T) {
			resp, body := e.get(t, path, "Accept-Encoding", "gzip")
			if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Fatalf("headers = %v", resp.Header)
			}
			zr, err := gzip.NewReader(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || len(plain) < 4000 {
				t.Fatalf("gunzip: %v, %d bytes", err, len(plain))
			}
			resp, _ = e.get(t, path, "Accept-Encoding", "br")
			if resp.Header.Get("Content-Encoding") != "br" {
				t.Errorf("br not used: %v", resp.Header)
			}
			resp, body = e.get(t, path)
			if resp.Header.Get("Content-Encoding") != "" || len(body) < 4000 {
				t.Errorf("compressed without Accept-Encoding: %v", resp.Header)
			}
		})
	}
	t.Run("small file not compressed", func(t *testing.T) {
		resp, _ := e.get(t, "/hello.txt", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("13-byte file compressed")
		}
	})
	t.Run("binary not compressed", func(t *testing.T) {
		resp, _ := e.get(t, "/blob.bin", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("octet-stream compressed")
		}
	})
}

func TestConditionalAndRange(t *testing.T) {
	e := start(t, nil)
	resp, _ := e.get(t, "/style.css")
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("no validators: %v", resp.Header)
	}
	if resp, body := e.get(t, "/style.css", "If-None-Match", etag); resp.StatusCode != 304 || body != "" {
		t.Errorf("If-None-Match: %d %q", resp.StatusCode, body)
	}
	if resp, _ := e.get(t, "/style.css", "If-Modified-Since", lm); resp.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d", resp.StatusCode)
	}
	if resp, _ := e.get(t, "/style.css", "If-None-Match", `"other"`); resp.StatusCode != 200 {
		t.Errorf("non-matching ETag: %d", resp.StatusCode)
	}
	resp, body := e.get(t, "/blob.bin", "Range", "bytes=256-511")
	if resp.StatusCode != 206 || len(body) != 256 || body[0] != 0 || body[255] != 255 || resp.Header.Get("Content-Range") != "bytes 256-511/2048" {
		t.Errorf("Range: %d len=%d %v", resp.StatusCode, len(body), resp.Header)
	}
	resp, _ = e.get(t, "/blob.bin", "Range", "bytes=5000-6000")
	if resp.StatusCode != 416 {
		t.Errorf("unsatisfiable range: %d", resp.StatusCode)
	}
}

func TestLargeDownloadStreams(t *testing.T) {
	e := start(t, nil)
	resp, err := e.client.Get(e.url + "/big.php?mb=32")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != 32<<20 {
		t.Fatalf("got %d bytes, err %v", n, err)
	}
}

func TestFatalThenGood(t *testing.T) {
	e := start(t, nil)
	if resp, _ := e.get(t, "/fatal.php"); resp.StatusCode != 500 {
		t.Errorf("fatal: %d, want 500", resp.StatusCode)
	}
	if resp, body := e.get(t, "/hello.php"); resp.StatusCode != 200 || body != "Hello, World!" {
		t.Errorf("after fatal: %d %q", resp.StatusCode, body)
	}
}

func TestSlowScriptTimesOut(t *testing.T) {
	e := start(t, func(c *httpd.Config) { c.RequestTimeout = 300 * time.Millisecond })
	resp, _ := e.get(t, "/slow.php?ms=3000")
	if resp.StatusCode != 504 {
		t.Errorf("slow script: %d, want 504", resp.StatusCode)
	}
	testutil.RetryUntil(t, 10*time.Second, func() error {
		resp, body := e.get(t, "/hello.php")
		if resp.StatusCode != 200 || body != "Hello, World!" {
			return fmt.Errorf("after timeout: %d %q", resp.StatusCode, body)
		}
		return nil
	})
}

func TestFPMKilled(t *testing.T) {
	e := start(t, nil)
	if resp, _ := e.get(t, "/hello.php"); resp.StatusCode != 200 {
		t.Fatal("not serving")
	}
	pids := testutil.ProcessesMatching(e.runDir)
	if len(pids) == 0 {
		t.Fatal("no php-fpm master found")
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	testutil.RetryUntil(t, 20*time.Second, func() error {
		resp, body := e.get(t, "/hello.php")
		if resp.StatusCode != 200 || body != "Hello, World!" {
			return fmt.Errorf("after SIGKILL: %d %q", resp.StatusCode, body)
		}
		return nil
	})
	if e.sup.Restarts() < 1 {
		t.Errorf("Restarts() = %d", e.sup.Restarts())
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

// TestStreamingFlush: output PHP flushes reaches the client at once,
// not when the script ends.
func TestStreamingFlush(t *testing.T) {
	e := start(t, nil)
	start := time.Now()
	resp, err := e.client.Get(e.url + "/stream.php")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line: %q %v", line, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("first chunk took %v: output was buffered until the script ended", d)
	}
}

// TestSymlinkOutOfRoot: a symlink in the document root that points
// outside it (another site, the data dir, /etc) is never followed for a
// static file; one that stays inside is.
func TestSymlinkOutOfRoot(t *testing.T) {
	e := start(t, nil)
	outside := filepath.Join(testutil.WorldReadableDir(t), "node-secret.txt")
	if err := os.WriteFile(outside, []byte("TOP SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{"escape.txt": outside, "escape-big.bin": outside, "inside.txt": "hello.txt", "etc.txt": "/etc/hostname"}
	for name, target := range links {
		p := filepath.Join(e.root, name)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
	}
	for _, path := range []string{"/escape.txt", "/escape-big.bin", "/etc.txt"} {
		resp, body := e.get(t, path)
		if resp.StatusCode == 200 || strings.Contains(body, "TOP SECRET") {
			t.Errorf("%s: %d %q: followed a symlink out of the root", path, resp.StatusCode, body)
		}
	}
	if resp, body := e.get(t, "/escape.txt", "Range", "bytes=0-3"); resp.StatusCode == 206 || strings.Contains(body, "TOP") {
		t.Errorf("range request followed the symlink: %d %q", resp.StatusCode, body)
	}
	if resp, body := e.get(t, "/inside.txt"); resp.StatusCode != 200 || body != "hello static\n" {
		t.Errorf("symlink inside the root: %d %q", resp.StatusCode, body)
	}
}
