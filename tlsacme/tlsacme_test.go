package tlsacme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/tlsacme"
	"github.com/ephpm/ephpm/tlsacme/pebbletest"
)

// front is a Manager behind real HTTP and HTTPS listeners on loopback,
// the ports Pebble validates against.
type front struct {
	m        *tlsacme.Manager
	reg      *prometheus.Registry
	httpAddr string
	tlsAddr  string
	pebble   *pebbletest.Pebble
	roots    *x509.CertPool
	// challenges answered: HTTP-01 requests, TLS-ALPN-01 handshakes
	httpChal, alpnChal atomic.Int32
}

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// newFront starts listeners, Pebble and a Manager configured by edit.
func newFront(t testing.TB, edit func(*tlsacme.Config)) *front {
	t.Helper()
	p := pebbletest.New(t)
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	roots, err := os.ReadFile(p.RootFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots)
	f := &front{reg: prometheus.NewRegistry(), httpAddr: hl.Addr().String(), tlsAddr: tl.Addr().String(), pebble: p}
	cfg := tlsacme.Config{
		Directory: p.Directory, Roots: pool, Storage: t.TempDir(), OnDemand: true,
		Allow: func(ctx context.Context, name string) error {
			if strings.HasSuffix(name, ".allowed.example") {
				return nil
			}
			return errors.New("not a site")
		},
		HTTPAddr: f.httpAddr, TLSAddr: f.tlsAddr, Registerer: f.reg,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := tlsacme.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	hsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.HandleHTTPChallenge(w, r) {
			f.httpChal.Add(1)
			return
		}
		http.NotFound(w, r)
	})}
	tc := m.TLSConfig()
	getCert := tc.GetCertificate
	tc.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if slices.Contains(h.SupportedProtos, "acme-tls/1") {
			f.alpnChal.Add(1)
		}
		return getCert(h)
	}
	tsrv := &http.Server{TLSConfig: tc, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over %s", r.Host, r.Proto)
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = hsrv.Serve(hl) }()
	go func() { _ = tsrv.ServeTLS(tl, "", "") }()
	t.Cleanup(func() {
		hsrv.Close()
		tsrv.Close()
		m.Close()
	})
	p.Start(port(f.httpAddr), port(f.tlsAddr))
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.roots = p.IssuerRoots()
	return f
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// handshake connects with SNI name, trusting only Pebble's issuing root.
func (f *front) handshake(name string) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", f.tlsAddr, &tls.Config{ServerName: name, RootCAs: f.roots, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func (f *front) get(t *testing.T, name string) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: name, RootCAs: f.roots}, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", f.tlsAddr)
		}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + name + "/")
	if err != nil {
		t.Fatalf("GET https://%s/: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestChallenges(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*tlsacme.Config)
	}{
		{"http-01 on the HTTP listener", func(c *tlsacme.Config) { c.DisableTLSALPN01 = true }},
		{"tls-alpn-01 on the TLS listener", func(c *tlsacme.Config) { c.DisableHTTP01 = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFront(t, tc.edit)
			leaf, err := f.handshake("shop.allowed.example")
			if err != nil {
				t.Fatalf("handshake: %v\npebble:\n%s", err, f.pebble.Log())
			}
			if err := leaf.VerifyHostname("shop.allowed.example"); err != nil {
				t.Fatal(err)
			}
			if f.pebble.Orders() != 1 {
				t.Errorf("orders = %d, want 1", f.pebble.Orders())
			}
			// Pebble validates from several perspectives: at least one hit
			// on the listener of the challenge type, none on the other.
			h, a := f.httpChal.Load(), f.alpnChal.Load()
			if strings.Contains(tc.name, "alpn") != (a > 0 && h == 0) || (h > 0) == (a > 0) {
				t.Errorf("challenge requests: http-01 %d, tls-alpn-01 %d", h, a)
			}
			if body := f.get(t, "shop.allowed.example"); body != "hello shop.allowed.example over HTTP/2.0" {
				t.Errorf("body = %q", body)
			}
			// Served from memory now: no second order.
			if _, err := f.handshake("shop.allowed.example"); err != nil || f.pebble.Orders() != 1 {
				t.Errorf("second handshake: %v, orders = %d", err, f.pebble.Orders())
			}
			if n := metric(t, f.reg, "ephpm_tls_certificates_issued_total", "renewal", "false"); n != 1 {
				t.Errorf("issued metric = %v", n)
			}
		})
	}
}

func TestRefusedNameNeverReachesCA(t *testing.T) {
	f := newFront(t, nil)
	for _, name := range []string{"evil.example", "allowed.example.evil.com", "localhost"} {
		start := time.Now()
		if _, err := f.handshake(name); err == nil {
			t.Errorf("%s: handshake succeeded", name)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: refusal took %v", name, d)
		}
	}
	if n := f.pebble.Orders(); n != 0 {
		t.Fatalf("orders = %d, want 0", n)
	}
	if n := metric(t, f.reg, "ephpm_tls_handshake_errors_total", "reason", "refused"); n < 2 {
		t.Errorf("refused metric = %v", n)
	}
}

func TestBackoffAfterFailure(t *testing.T) {
	f := newFront(t, func(c *tlsacme.Config) { c.BackoffMin, c.BackoffMax = 2*time.Second, 4*time.Second })
	// Pebble validates at 127.0.0.2, where nothing listens: the order fails.
	f.pebble.Resolve("broken.allowed.example", "127.0.0.2")
	start := time.Now()
	if _, err := f.handshake("broken.allowed.example"); err == nil {
		t.Fatal("handshake succeeded")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("failing handshake held the client %v", d)
	}
	// One issuance tries each challenge type, an order each.
	failed := f.pebble.Orders()
	if failed < 1 {
		t.Fatalf("orders = %d, want at least 1", failed)
	}
	// Inside the backoff: refused without contacting the CA.
	if _, err := f.handshake("broken.allowed.example"); err == nil {
		t.Fatal("handshake succeeded")
	}
	if n := f.pebble.Orders(); n != failed {
		t.Fatalf("orders during backoff = %d, want %d", n, failed)
	}
	if n := metric(t, f.reg, "ephpm_tls_issuance_throttled_total", "reason", "backoff"); n != 1 {
		t.Errorf("backoff metric = %v", n)
	}
	// Other names are not held back by it.
	if _, err := f.handshake("fine.allowed.example"); err != nil {
		t.Fatalf("other name: %v", err)
	}
	// Fixed now; after the backoff the next handshake tries again.
	f.pebble.Resolve("broken.allowed.example", "127.0.0.1")
	testutil.RetryUntil(t, 15*time.Second, func() error {
		_, err := f.handshake("broken.allowed.example")
		return err
	})
	if n := f.pebble.Orders(); n != failed+2 {
		t.Errorf("orders = %d, want %d (failed, fine, retry)", n, failed+2)
	}
}

func TestGlobalRateLimit(t *testing.T) {
	f := newFront(t, func(c *tlsacme.Config) { c.IssueRate, c.IssueWindow = 2, time.Hour })
	for _, n := range []string{"a.allowed.example", "b.allowed.example"} {
		if _, err := f.handshake(n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	if _, err := f.handshake("c.allowed.example"); err == nil {
		t.Fatal("third issuance within the window succeeded")
	}
	if n := f.pebble.Orders(); n != 2 {
		t.Fatalf("orders = %d, want 2", n)
	}
	if n := metric(t, f.reg, "ephpm_tls_issuance_throttled_total", "reason", "rate"); n != 1 {
		t.Errorf("rate metric = %v", n)
	}
	// Certificates already issued keep being served.
	if _, err := f.handshake("a.allowed.example"); err != nil {
		t.Fatal(err)
	}
}

func TestFixedDomainsInBackground(t *testing.T) {
	f := newFront(t, func(c *tlsacme.Config) {
		c.OnDemand = false
		c.Domains = []string{"www.fixed.example"}
	})
	// Obtained without any handshake asking for it.
	testutil.RetryUntil(t, 30*time.Second, func() error {
		if f.pebble.Orders() != 1 {
			return fmt.Errorf("orders = %d", f.pebble.Orders())
		}
		return nil
	})
	testutil.RetryUntil(t, 30*time.Second, func() error {
		_, err := f.handshake("www.fixed.example")
		return err
	})
	// Not on demand: the Allow function is not consulted.
	if _, err := f.handshake("shop.allowed.example"); err == nil {
		t.Fatal("on-demand issuance with on_demand off")
	}
	if n := f.pebble.Orders(); n != 1 {
		t.Fatalf("orders = %d, want 1", n)
	}
}

// metric is the value of a counter with one label.
func metric(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// BenchmarkHandshake compares a full handshake (no resumption) for a
// certificate certmagic manages with one for a static certificate of
// the same key type, server and client in this process.
func BenchmarkHandshake(b *testing.B) {
	f := newFront(b, nil)
	if _, err := f.handshake("bench.allowed.example"); err != nil {
		b.Fatal(err)
	}
	static := staticServer(b)
	for _, tc := range []struct {
		name, addr string
		roots      *x509.CertPool
	}{
		{"certmagic", f.tlsAddr, f.roots},
		{"static", static.addr, static.roots},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := &tls.Config{ServerName: "bench.allowed.example", RootCAs: tc.roots}
			for b.Loop() {
				c, err := tls.Dial("tcp", tc.addr, cfg)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

type staticSrv struct {
	addr  string
	roots *x509.CertPool
}

// staticServer serves a self-signed ECDSA P-256 certificate, certmagic's
// default key type.
func staticServer(tb testing.TB) staticSrv {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"bench.allowed.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { srv.Close() })
	return staticSrv{addr: l.Addr().String(), roots: pool}
}
