package httpd_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/httpd"
)

// recPHP is a PHP that reports the body it was given: where it was kept
// (memory or file), its length and digest, and the CONTENT_LENGTH PHP
// would see. Each call is also sent on calls.
type recPHP struct {
	calls chan phpCall
}

type phpCall struct {
	Kind          string `json:"kind"` // "none", "memory", "file"
	Len           int    `json:"len"`
	MD5           string `json:"md5"`
	ContentLength string `json:"content_length"`
	at            time.Time
}

func (p *recPHP) Do(ctx context.Context, params []fastcgi.Param, body io.Reader) (*fastcgi.Response, error) {
	c := phpCall{Kind: "none", at: time.Now()}
	for _, pr := range params {
		if pr.Name == "CONTENT_LENGTH" {
			c.ContentLength = pr.Value
		}
	}
	if body != nil {
		c.Kind = "memory"
		if _, ok := body.(*os.File); ok {
			c.Kind = "file"
		}
		h := md5.New()
		n, err := io.Copy(h, body)
		if err != nil {
			return nil, err
		}
		c.Len, c.MD5 = int(n), hex.EncodeToString(h.Sum(nil))
	}
	select {
	case p.calls <- c:
	default:
	}
	b, _ := json.Marshal(c)
	return &fastcgi.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(string(b))), Stderr: func() string { return "" }}, nil
}

// bodyEnv serves one site whose PHP is a recPHP on the plain listener
// (the lean HTTP/1.1 loop) and over TLS (net/http: HTTP/1.1 and HTTP/2).
type bodyEnv struct {
	php            *recPHP
	plain, tlsAddr string
	tmpDir         string
}

func startBodyServer(t *testing.T, tweak func(*httpd.Config)) *bodyEnv {
	t.Helper()
	root, err := filepath.Abs("testdata/site")
	if err != nil {
		t.Fatal(err)
	}
	e := &bodyEnv{php: &recPHP{calls: make(chan phpCall, 64)}, tmpDir: t.TempDir()}
	cfg := httpd.Config{
		Sites: httpd.SingleSite{S: &httpd.Site{Name: "default", Root: root, IndexFiles: []string{"index.php"},
			Fallback: "/index.php?$query_string", PHP: e.php}},
		MaxBodySize: 8 << 10, BodyBufferSize: 1 << 10, TmpDir: e.tmpDir,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := httpd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- srv.Serve(plain) }()
	go func() { done <- srv.ServeTLS(tl, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		<-done
	})
	e.plain, e.tlsAddr = plain.Addr().String(), tl.Addr().String()
	return e
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// listener names one way in: the lean loop, net/http's HTTP/1.1 and HTTP/2.
type listener struct {
	name string
	h2   bool
	tls  bool
}

var listeners = []listener{{"h1 plain", false, false}, {"net/http h1 tls", false, true}, {"net/http h2 tls", true, true}}

func (e *bodyEnv) client(l listener) (*http.Client, string) {
	tr := &http.Transport{DisableCompression: true}
	url := "http://" + e.plain
	if l.tls {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the test's own certificate
		tr.ForceAttemptHTTP2 = l.h2
		url = "https://" + e.tlsAddr
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}, url
}

// dial opens a raw HTTP/1.1 connection on the plain or the TLS listener.
func (e *bodyEnv) dial(t *testing.T, overTLS bool) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if overTLS {
		c, err = tls.Dial("tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", e.plain)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	return c
}

// onlyReader hides a body's length, so that the client sends it chunked.
type onlyReader struct{ io.Reader }

// TestBodyBuffering: a body is read whole before PHP runs, in memory up
// to the buffer size and in an unlinked temp file beyond it; PHP sees
// its length as CONTENT_LENGTH, chunked or not; the size limit is 413.
func TestBodyBuffering(t *testing.T) {
	e := startBodyServer(t, nil) // buffer 1 KB, limit 8 KB
	for _, l := range listeners {
		client, url := e.client(l)
		for _, tc := range []struct {
			name    string
			size    int
			chunked bool
			status  int
			kind    string
		}{
			{"small", 10, false, 200, "memory"},
			{"buffer size", 1 << 10, false, 200, "memory"},
			{"past the buffer", 1<<10 + 1, false, 200, "file"},
			{"at the limit", 8 << 10, false, 200, "file"},
			{"over the limit", 8<<10 + 1, false, 413, ""},
			{"chunked small", 100, true, 200, "memory"},
			{"chunked buffer size", 1 << 10, true, 200, "memory"},
			{"chunked past the buffer", 1<<10 + 1, true, 200, "file"},
			{"chunked large", 5000, true, 200, "file"},
			{"chunked over the limit", 8<<10 + 1, true, 413, ""},
			{"empty post", 0, false, 200, "none"},
		} {
			t.Run(l.name+"/"+tc.name, func(t *testing.T) {
				payload := strings.Repeat("0123456789abcdef", tc.size/16+1)[:tc.size]
				var body io.Reader = strings.NewReader(payload)
				if tc.chunked {
					body = onlyReader{body}
				}
				req, _ := http.NewRequest("POST", url+"/post.php", body)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
				}
				if tc.status != 200 {
					return
				}
				var got phpCall
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatalf("%v: %s", err, b)
				}
				sum := md5.Sum([]byte(payload))
				want := phpCall{Kind: tc.kind, Len: tc.size, MD5: hex.EncodeToString(sum[:]), ContentLength: fmt.Sprint(tc.size)}
				if tc.kind == "none" {
					want.MD5 = ""
				}
				if got != want {
					t.Errorf("PHP got %+v, want %+v", got, want)
				}
			})
		}
	}
	// The temp files are unlinked at once: none is left behind.
	if left, _ := os.ReadDir(e.tmpDir); len(left) != 0 {
		t.Errorf("temp dir holds %d files after the requests", len(left))
	}
}

// dribble writes body one byte every interval, at most n bytes, until
// stop is closed or a write fails.
func dribble(c net.Conn, n int, interval time.Duration, stop <-chan struct{}) {
	for i := 0; i < n; i++ {
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		if _, err := c.Write([]byte{'x'}); err != nil {
			return
		}
	}
}

// TestBodySlowClientGets408: a body that falls under the minimum rate
// after the grace period, or stalls longer than the read timeout, is
// answered 408 and its connection closed, without PHP ever running.
func TestBodySlowClientGets408(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tweak    func(*httpd.Config)
		interval time.Duration // between body bytes; 0: stall after the first
	}{
		{"under the minimum rate", func(c *httpd.Config) {
			c.BodyRateGrace, c.BodyMinRate, c.BodyReadTimeout = 500*time.Millisecond, 100, 10*time.Second
		}, 50 * time.Millisecond},
		{"stalled past the read timeout", func(c *httpd.Config) {
			c.BodyRateGrace, c.BodyMinRate, c.BodyReadTimeout = 10*time.Second, 1, 500*time.Millisecond
		}, 0},
	} {
		for _, overTLS := range []bool{false, true} {
			name := tc.name + "/h1 plain"
			if overTLS {
				name = tc.name + "/net/http h1 tls"
			}
			t.Run(name, func(t *testing.T) {
				e := startBodyServer(t, tc.tweak)
				for _, size := range []int{500, 5000} { // memory and file
					c := e.dial(t, overTLS)
					start := time.Now()
					fmt.Fprintf(c, "POST /post.php HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\nx", size)
					stop := make(chan struct{})
					var wg sync.WaitGroup
					if tc.interval > 0 {
						wg.Add(1)
						go func() { defer wg.Done(); dribble(c, 100, tc.interval, stop) }()
					}
					br := bufio.NewReader(c)
					resp, err := http.ReadResponse(br, nil)
					close(stop)
					wg.Wait()
					if err != nil {
						t.Fatalf("size %d: %v", size, err)
					}
					io.ReadAll(resp.Body)
					resp.Body.Close()
					if d := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || d > 4*time.Second {
						t.Fatalf("size %d: %d after %v, want 408 within 4 s", size, resp.StatusCode, d)
					}
					if !resp.Close {
						t.Errorf("size %d: 408 without Connection: close", size)
					}
					if rest, err := br.Peek(1); err == nil {
						t.Errorf("size %d: connection still open after 408: %q", size, rest)
					}
				}
				select {
				case call := <-e.php.calls:
					t.Fatalf("PHP ran for a body that never arrived: %+v", call)
				default:
				}
			})
		}
	}
	// HTTP/2: the stream's read deadline ends the body; the client gets 408.
	t.Run("under the minimum rate/net/http h2 tls", func(t *testing.T) {
		e := startBodyServer(t, func(c *httpd.Config) {
			c.BodyRateGrace, c.BodyMinRate = 500*time.Millisecond, 100
		})
		client, url := e.client(listener{h2: true, tls: true})
		pr, pw := io.Pipe()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			defer pw.Close()
			for i := 0; i < 100; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := pw.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}()
		req, _ := http.NewRequest("POST", url+"/post.php", pr)
		req.ContentLength = 500
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout || d > 4*time.Second {
			t.Fatalf("%s %d after %v, want HTTP/2 408 within 4 s", resp.Proto, resp.StatusCode, d)
		}
	})
}

// TestBodyPHPRunsOnlyOnceTheBodyIsIn: a body that arrives slowly (but
// fast enough) reaches PHP whole, and PHP is called only after its last
// byte, so that no worker waits on a client.
func TestBodyPHPRunsOnlyOnceTheBodyIsIn(t *testing.T) {
	e := startBodyServer(t, nil)
	for _, overTLS := range []bool{false, true} {
		for _, size := range []int{20, 2000} { // memory and file
			c := e.dial(t, overTLS)
			fmt.Fprintf(c, "POST /post.php HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
			part := strings.Repeat("y", size/4)
			var last time.Time
			for i := 0; i < 4; i++ {
				time.Sleep(50 * time.Millisecond)
				select {
				case call := <-e.php.calls:
					t.Fatalf("tls=%v size %d: PHP ran after %d of 4 parts: %+v", overTLS, size, i, call)
				default:
				}
				last = time.Now()
				if _, err := io.WriteString(c, part); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			select {
			case call := <-e.php.calls:
				if call.at.Before(last) || call.Len != size {
					t.Errorf("tls=%v size %d: PHP called %v before the last byte, with %d bytes", overTLS, size, last.Sub(call.at), call.Len)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("tls=%v size %d: PHP never ran (%d)", overTLS, size, resp.StatusCode)
			}
		}
	}
}

// TestCLTEClosesConnection: a request with both Content-Length and
// Transfer-Encoding is served by its chunked body and its connection
// closed (RFC 9112 6.1), on the lean loop and on net/http; a request
// pipelined behind it is not answered.
func TestCLTEClosesConnection(t *testing.T) {
	e := startBodyServer(t, nil)
	for _, overTLS := range []bool{false, true} {
		for _, head := range []string{
			"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
			"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
		} {
			c := e.dial(t, overTLS)
			io.WriteString(c, "POST /post.php HTTP/1.1\r\nHost: a\r\n"+head+"\r\n5\r\nhello\r\n0\r\n\r\nGET /post.php HTTP/1.1\r\nHost: a\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("tls=%v %q: %v", overTLS, head, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got phpCall
			_ = json.Unmarshal(b, &got)
			if resp.StatusCode != 200 || got.Len != 5 || got.ContentLength != "5" {
				t.Errorf("tls=%v %q: %d %s, want the chunked body of 5 bytes", overTLS, head, resp.StatusCode, b)
			}
			if !resp.Close {
				t.Errorf("tls=%v %q: no Connection: close", overTLS, head)
			}
			if resp2, err := http.ReadResponse(br, nil); err == nil {
				t.Errorf("tls=%v %q: pipelined request answered: %d", overTLS, head, resp2.StatusCode)
			}
		}
	}
	// The lean loop sees the raw head: chunked alone keeps the connection.
	c := e.dial(t, false)
	io.WriteString(c, "POST /post.php HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /post.php HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("chunked only, response %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
