package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/tlsacme/pebbletest"
)

// tlsPHP reports what PHP knows about the request's transport.
const tlsPHP = `<?php
header('Content-Type: application/json');
echo json_encode(['https' => $_SERVER['HTTPS'] ?? '', 'scheme' => $_SERVER['REQUEST_SCHEME'] ?? '',
  'port' => $_SERVER['SERVER_PORT'] ?? '', 'host' => $_SERVER['HTTP_HOST'] ?? '', 'site' => basename(__DIR__)]);
`

// tlsNode is an ephpm with sites and [server.tls] pointed at a Pebble.
type tlsNode struct {
	*proc
	tlsAddr string
	roots   *x509.CertPool // Pebble's issuing root, once Pebble runs
}

type tlsEnv struct {
	base     string // sites/ and data/ inside
	sitesDir string
	pebble   *pebbletest.Pebble
}

// newTLSEnv makes a sites dir with two sites (one with an alias) and
// prepares, without starting, a Pebble.
func newTLSEnv(t *testing.T) *tlsEnv {
	t.Helper()
	testutil.NeedProgram(t, "php")
	e := &tlsEnv{base: testutil.WorldReadableDir(t), pebble: pebbletest.New(t)}
	e.sitesDir = filepath.Join(e.base, "sites")
	e.site(t, "alice-blog.example", "")
	e.site(t, "bob.example", "[server]\naliases = [\"www.bob.example\"]\n")
	return e
}

func (e *tlsEnv) site(t *testing.T, name, siteToml string) {
	t.Helper()
	dir := writeSite(t, e.sitesDir, name, siteToml)
	if err := os.WriteFile(filepath.Join(dir, "tls.php"), []byte(tlsPHP), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs ephpm; the CA may or may not be running.
func (e *tlsEnv) start(t *testing.T, env ...string) *tlsNode {
	t.Helper()
	n := &tlsNode{tlsAddr: freePort(t)}
	cwd, _ := filepath.Abs("testdata/site")
	n.proc = startEphpm(t, cwd, append([]string{
		"EPHPM_SERVER__SITES_DIR=" + e.sitesDir, "EPHPM_SERVER__DATA_DIR=" + filepath.Join(e.base, "data"),
		"EPHPM_SERVER_TLS__LISTEN=" + n.tlsAddr, "EPHPM_SERVER_TLS__CA=" + e.pebble.Directory,
		"EPHPM_SERVER_TLS__CA_ROOT=" + e.pebble.RootFile, "EPHPM_SERVER_TLS__EMAIL=ops@ephpm.example",
		"EPHPM_SERVER__LOG_LEVEL=debug",
	}, env...)...)
	testutil.RetryUntil(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", n.tlsAddr)
		if err == nil {
			c.Close()
		}
		return err
	})
	return n
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// startPebble runs the CA validating HTTP-01 on httpAddr and TLS-ALPN-01
// on tlsAddr (a dead address turns that challenge type off).
func (e *tlsEnv) startPebble(t *testing.T, httpAddr, tlsAddr string, nodes ...*tlsNode) {
	t.Helper()
	e.pebble.Start(portOf(t, httpAddr), portOf(t, tlsAddr))
	roots := e.pebble.IssuerRoots()
	for _, n := range nodes {
		n.roots = roots
	}
}

// handshake connects with SNI name and verifies the chain against
// Pebble's issuing root only.
func (n *tlsNode) handshake(name string) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", n.tlsAddr, &tls.Config{ServerName: name, RootCAs: n.roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// httpsGet fetches https://host/path from the node (HTTP/2 when offered).
func (n *tlsNode) httpsGet(t *testing.T, host, path string) (*http.Response, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.roots}, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", n.tlsAddr)
		}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + host + path)
	if err != nil {
		t.Fatalf("GET https://%s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func phpJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return m
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string { return freePort(t) }

func TestTLSOnDemandSites(t *testing.T) {
	e := newTLSEnv(t)
	n := e.start(t) // the CA is not running yet: startup does not wait for it
	e.startPebble(t, n.addr, n.tlsAddr, n)

	leaf, err := n.handshake("alice-blog.example")
	if err != nil {
		t.Fatalf("handshake: %v\n%s", err, n.out.String())
	}
	if err := leaf.VerifyHostname("alice-blog.example"); err != nil {
		t.Fatal(err)
	}
	resp, body := n.httpsGet(t, "alice-blog.example", "/tls.php")
	m := phpJSON(t, body)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || m["https"] != "on" || m["site"] != "alice-blog.example" {
		t.Fatalf("https request: %d %s %v", resp.StatusCode, resp.Proto, m)
	}
	// An alias from site.toml is a name of the site.
	if _, err := n.handshake("www.bob.example"); err != nil {
		t.Fatalf("alias: %v", err)
	}
	if _, body := n.httpsGet(t, "www.bob.example", "/tls.php"); phpJSON(t, body)["site"] != "bob.example" {
		t.Fatalf("alias served %s", body)
	}
	orders := e.pebble.Orders()
	// Unknown names: refused without an order.
	for _, name := range []string{"mallory.example", "alice-blog.example.evil.example", "xn--bcher-kva.example"} {
		if _, err := n.handshake(name); err == nil {
			t.Errorf("%s: handshake succeeded", name)
		}
	}
	if got := e.pebble.Orders(); got != orders {
		t.Fatalf("unknown names caused %d orders", got-orders)
	}
	// A site created now gets its certificate on its first request.
	e.site(t, "carol.example", "")
	if _, body := n.httpsGet(t, "carol.example", "/tls.php"); phpJSON(t, body)["https"] != "on" {
		t.Fatalf("new site: %s", body)
	}
	if e.pebble.Orders() != orders+1 {
		t.Errorf("orders for the new site = %d, want 1", e.pebble.Orders()-orders)
	}
	_, metrics := get(t, "http://"+n.addr+"/metrics")
	for _, want := range []string{`ephpm_tls_certificates_issued_total{renewal="false"} 3`, `ephpm_tls_handshake_errors_total{reason="refused"} 3`, `ephpm_tls_handshakes_total{resumed="false"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Stored under <data_dir>/certs by default.
	if ms, _ := filepath.Glob(filepath.Join(e.base, "data", "certs", "certificates", "*", "alice-blog.example", "alice-blog.example.crt")); len(ms) != 1 {
		t.Errorf("certificate not stored in data_dir/certs: %v", ms)
	}
}

// stop ends the node with SIGTERM and waits for it.
func (n *tlsNode) stop(t *testing.T) {
	t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.done <- err // for startEphpm's cleanup
	case <-time.After(40 * time.Second):
		t.Fatal("ephpm did not stop")
	}
}

func TestTLSRestartReusesStoredCert(t *testing.T) {
	e := newTLSEnv(t)
	n := e.start(t)
	e.startPebble(t, n.addr, n.tlsAddr, n)
	first, err := n.handshake("alice-blog.example")
	if err != nil {
		t.Fatal(err)
	}
	orders := e.pebble.Orders()
	n.stop(t)

	n2 := e.start(t)
	n2.roots = n.roots
	again, err := n2.handshake("alice-blog.example")
	if err != nil {
		t.Fatalf("after restart: %v\n%s", err, n2.out.String())
	}
	if again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("serial %x after restart, was %x", again.SerialNumber, first.SerialNumber)
	}
	if got := e.pebble.Orders(); got != orders {
		t.Errorf("restart placed %d new orders", got-orders)
	}
}

func TestTLSRenewsShortLivedCerts(t *testing.T) {
	e := newTLSEnv(t)
	e.pebble.ValidityPeriod = 9 * time.Second
	n := e.start(t)
	e.startPebble(t, n.addr, n.tlsAddr, n)
	first, err := n.handshake("alice-blog.example")
	if err != nil {
		t.Fatal(err)
	}
	if life := first.NotAfter.Sub(first.NotBefore); life > 10*time.Second {
		t.Fatalf("certificate lives %v", life)
	}
	// Renewal starts in the last third of the lifetime, triggered by a
	// handshake and done in the background: poll until a new one is served.
	var renewed *x509.Certificate
	testutil.RetryUntil(t, 40*time.Second, func() error {
		c, err := n.handshake("alice-blog.example")
		if err != nil {
			return err
		}
		if c.SerialNumber.Cmp(first.SerialNumber) == 0 {
			return fmt.Errorf("still the first certificate (expires %v)", time.Until(c.NotAfter).Round(time.Second))
		}
		renewed = c
		return nil
	})
	if time.Now().After(first.NotAfter) {
		t.Errorf("renewed only after the first certificate expired")
	}
	if renewed.NotAfter.Before(first.NotAfter) { // 1 s resolution: may be equal
		t.Errorf("renewed cert expires %v, first %v", renewed.NotAfter, first.NotAfter)
	}
	if _, body := n.httpsGet(t, "alice-blog.example", "/tls.php"); phpJSON(t, body)["https"] != "on" {
		t.Fatalf("after renewal: %s", body)
	}
	if _, m := get(t, "http://"+n.addr+"/metrics"); !strings.Contains(m, `ephpm_tls_certificates_issued_total{renewal="true"}`) {
		t.Errorf("no renewal counted")
	}
}

func TestTLSCAStopped(t *testing.T) {
	e := newTLSEnv(t)
	n := e.start(t)
	// Pebble cannot reach the HTTP listener: only TLS-ALPN-01 on ephpm's
	// TLS listener can succeed.
	e.startPebble(t, deadAddr(t), n.tlsAddr, n)
	if _, err := n.handshake("alice-blog.example"); err != nil {
		t.Fatalf("tls-alpn-01 issuance: %v\n%s", err, e.pebble.Log())
	}
	e.pebble.Stop()

	// Existing HTTPS and HTTP keep working.
	if _, body := n.httpsGet(t, "alice-blog.example", "/tls.php"); phpJSON(t, body)["https"] != "on" {
		t.Fatalf("https with the CA down: %s", body)
	}
	if code, body := hostGet(t, n.addr, "alice-blog.example", "/tls.php"); code != 200 || phpJSON(t, body)["https"] != "" {
		t.Fatalf("http with the CA down: %d %s", code, body)
	}
	// A new site cannot get a certificate, and its handshake fails
	// instead of hanging.
	e.site(t, "dave.example", "")
	start := time.Now()
	if _, err := n.handshake("dave.example"); err == nil {
		t.Fatal("certificate without a CA")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("handshake with the CA down took %v", d)
	}
	if _, err := n.handshake("alice-blog.example"); err != nil {
		t.Fatalf("existing certificate after a failed issuance: %v", err)
	}
	// A restart with the CA still down starts at once and serves the
	// stored certificate.
	n.stop(t)
	n2 := e.start(t)
	n2.roots = n.roots
	if _, body := n2.httpsGet(t, "alice-blog.example", "/tls.php"); phpJSON(t, body)["https"] != "on" {
		t.Fatalf("after restart with the CA down: %s", body)
	}
}

func TestTLSRedirectHTTP(t *testing.T) {
	e := newTLSEnv(t)
	n := e.start(t, "EPHPM_SERVER_TLS__REDIRECT_HTTP=true", `EPHPM_SERVER__TRUSTED_PROXIES=["127.0.0.1"]`)
	// Pebble cannot reach the TLS listener: only HTTP-01 through the
	// redirecting HTTP listener can succeed.
	e.startPebble(t, n.addr, deadAddr(t), n)

	// HTTPS ended at a trusted proxy (127.0.0.1) is not redirected again;
	// the same header from anyone else (127.0.0.2) is not believed.
	for _, tc := range []struct {
		from string
		code int
	}{{"127.0.0.1", 200}, {"127.0.0.2", 301}} {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.from)}}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", "http://"+n.addr+"/tls.php", nil)
		req.Host = "alice-blog.example"
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("X-Forwarded-Proto: https from %s: %d, want %d", tc.from, resp.StatusCode, tc.code)
		}
	}

	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, host, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+n.addr+path, strings.NewReader("x=1"))
		req.Host = host
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	tlsPort := strconv.Itoa(portOf(t, n.tlsAddr))
	for _, tc := range []struct {
		name, method, host, path string
		code                     int
		location                 string
	}{
		{"get", "GET", "alice-blog.example", "/tls.php?a=1&b=%2F", 301, "https://alice-blog.example:" + tlsPort + "/tls.php?a=1&b=%2F"},
		{"host with port", "GET", "Alice-Blog.example:8080", "/", 301, "https://alice-blog.example:" + tlsPort + "/"},
		{"post keeps method", "POST", "alice-blog.example", "/wp-login.php", 308, "https://alice-blog.example:" + tlsPort + "/wp-login.php"},
		// Not ours: the site answers it (here its front controller).
		{"unknown challenge not redirected", "GET", "alice-blog.example", "/.well-known/acme-challenge/nope", 200, ""},
		{"ready probe stays on http", "GET", "alice-blog.example", "/_ephpm/ready", 200, ""},
		{"metrics stay on http", "GET", "alice-blog.example", "/_ephpm/metrics", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(tc.method, tc.host, tc.path)
			if resp.StatusCode != tc.code || resp.Header.Get("Location") != tc.location {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.code, tc.location)
			}
		})
	}
	// The certificate comes through HTTP-01 on the redirecting listener.
	if _, err := n.handshake("alice-blog.example"); err != nil {
		t.Fatalf("http-01 issuance behind redirect_http: %v\n%s", err, e.pebble.Log())
	}
	if !strings.Contains(n.out.String(), `"uri":"/.well-known/acme-challenge/`) {
		t.Errorf("no challenge request in the access log")
	}
	// Following the redirect ends on the site over HTTPS.
	if _, body := n.httpsGet(t, "alice-blog.example", "/tls.php"); phpJSON(t, body)["https"] != "on" {
		t.Fatalf("redirect target: %s", body)
	}
}

func TestTLSManualCert(t *testing.T) {
	dir := testutil.WorldReadableDir(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "static.example"},
		DNSNames: []string{"static.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(root, "tls.php"), []byte(tlsPHP), 0o644)

	n := &tlsNode{tlsAddr: freePort(t), roots: x509.NewCertPool()}
	cert, _ := x509.ParseCertificate(der)
	n.roots.AddCert(cert)
	n.proc = startEphpm(t, root, "EPHPM_SERVER_TLS__LISTEN="+n.tlsAddr, "EPHPM_SERVER_TLS__CERT="+certFile, "EPHPM_SERVER_TLS__KEY="+keyFile)
	testutil.RetryUntil(t, 10*time.Second, func() error {
		_, err := n.handshake("static.example")
		return err
	})
	resp, body := n.httpsGet(t, "static.example", "/tls.php")
	if m := phpJSON(t, body); resp.ProtoMajor != 2 || m["https"] != "on" || m["port"] != strconv.Itoa(portOf(t, n.tlsAddr)) {
		t.Fatalf("%s %v", resp.Proto, m)
	}
}

func TestTLSSingleSiteDomains(t *testing.T) {
	pb := pebbletest.New(t)
	root := testutil.WorldReadableDir(t)
	_ = os.WriteFile(filepath.Join(root, "tls.php"), []byte(tlsPHP), 0o644)
	n := &tlsNode{tlsAddr: freePort(t)}
	n.proc = startEphpm(t, root, "EPHPM_SERVER_TLS__LISTEN="+n.tlsAddr, "EPHPM_SERVER_TLS__CA="+pb.Directory,
		"EPHPM_SERVER_TLS__CA_ROOT="+pb.RootFile, `EPHPM_SERVER_TLS__DOMAINS=["shop.example"]`,
		"EPHPM_SERVER__DATA_DIR="+filepath.Join(root, "data"))
	pb.Start(portOf(t, n.addr), portOf(t, n.tlsAddr))
	n.roots = pb.IssuerRoots()
	// Without sites_dir only the listed domains are certified.
	if _, err := n.handshake("other.example"); err == nil {
		t.Fatal("certificate for a name outside domains")
	}
	if pb.Orders() != 0 {
		t.Fatalf("orders = %d for a refused name", pb.Orders())
	}
	if _, body := n.httpsGet(t, "shop.example", "/tls.php"); phpJSON(t, body)["https"] != "on" {
		t.Fatalf("single site over https: %s", body)
	}
}
