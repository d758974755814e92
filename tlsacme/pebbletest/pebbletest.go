// Package pebbletest runs Let's Encrypt's test CA, Pebble (Debian
// package pebble), as a real process for tests, with real challenge
// validation against the ports a test gives it and a tiny DNS server
// that points every name at 127.0.0.1 (or where a test says).
package pebbletest

import (
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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ephpm/ephpm/internal/testutil"
)

// Pebble is one Pebble CA. New prepares it (its URL and the root of
// its directory's TLS certificate are known before it runs); Start runs
// it with validation pointed at the given ports.
type Pebble struct {
	tb  testing.TB
	bin string
	dir string

	// Directory is the ACME directory URL.
	Directory string
	// RootFile is the PEM of the root that signs the directory's TLS
	// certificate (ephpm's ca_root).
	RootFile string
	// ValidityPeriod of issued certificates; 0 is Pebble's default (5 years).
	ValidityPeriod time.Duration

	acmeAddr, mgmtAddr string
	wfeRoots           *x509.CertPool

	dnsSrv *dns.Server
	mu     sync.Mutex
	hosts  map[string]string // name → IPv4 override
	log    *logBuf
	cmd    *exec.Cmd
	done   chan struct{}
}

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// New prepares a Pebble and starts its DNS server. It skips the test if
// pebble is not installed (fails when EPHPM_REQUIRE_ALL is set).
func New(tb testing.TB) *Pebble {
	tb.Helper()
	p := &Pebble{tb: tb, bin: testutil.NeedProgram(tb, "pebble"), dir: tb.TempDir(), hosts: map[string]string{}, log: &logBuf{}}
	p.acmeAddr, p.mgmtAddr = freeAddr(tb), freeAddr(tb)
	p.Directory = "https://" + p.acmeAddr + "/dir"
	p.RootFile = filepath.Join(p.dir, "wfe-root.pem")
	p.writeWFECert()
	p.startDNS()
	tb.Cleanup(p.Stop)
	return p
}

func freeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeWFECert makes a self-signed certificate for 127.0.0.1/localhost:
// Pebble's directory serves it, clients trust it through RootFile.
func (p *Pebble) writeWFECert() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "pebble test directory"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		p.tb.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.tb.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(p.RootFile, certPEM, 0o644); err != nil {
		p.tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "wfe-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		p.tb.Fatal(err)
	}
	p.wfeRoots = x509.NewCertPool()
	p.wfeRoots.AppendCertsFromPEM(certPEM)
}

// Resolve makes Pebble's DNS answer name with ip instead of 127.0.0.1.
func (p *Pebble) Resolve(name, ip string) {
	p.mu.Lock()
	p.hosts[strings.ToLower(dns.Fqdn(name))] = ip
	p.mu.Unlock()
}

// startDNS answers every A query with 127.0.0.1 (or the override) and
// everything else (AAAA, CAA) with an empty answer.
func (p *Pebble) startDNS() {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		p.tb.Fatal(err)
	}
	mux := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		for _, q := range req.Question {
			if q.Qtype != dns.TypeA {
				continue
			}
			p.mu.Lock()
			ip, ok := p.hosts[strings.ToLower(q.Name)]
			p.mu.Unlock()
			if !ok {
				ip = "127.0.0.1"
			}
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: net.ParseIP(ip)})
		}
		_ = w.WriteMsg(m)
	})
	started := make(chan struct{})
	p.dnsSrv = &dns.Server{PacketConn: pc, Handler: mux, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = p.dnsSrv.ActivateAndServe() }()
	<-started
	p.tb.Cleanup(func() { _ = p.dnsSrv.Shutdown() })
}

func (p *Pebble) dnsAddr() string { return p.dnsSrv.PacketConn.LocalAddr().String() }

// Start runs Pebble, validating HTTP-01 on httpPort and TLS-ALPN-01 on
// tlsPort of whatever the DNS gives, and waits until its directory
// answers.
func (p *Pebble) Start(httpPort, tlsPort int) {
	p.tb.Helper()
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": p.acmeAddr, "managementListenAddress": p.mgmtAddr,
		"certificate": p.RootFile, "privateKey": filepath.Join(p.dir, "wfe-key.pem"),
		"httpPort": httpPort, "tlsPort": tlsPort, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"certificateValidityPeriod": int(p.ValidityPeriod / time.Second),
	}}
	b, _ := json.Marshal(conf)
	cfgFile := filepath.Join(p.dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		p.tb.Fatal(err)
	}
	cmd := exec.Command(p.bin, "-config", cfgFile, "-dnsserver", p.dnsAddr())
	// Real validation: PEBBLE_VA_ALWAYS_VALID stays unset.
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEBBLE_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.tb.Fatalf("start pebble: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	c := p.client()
	testutil.RetryUntil(p.tb, 30*time.Second, func() error {
		select {
		case <-done:
			p.tb.Fatalf("pebble exited:\n%s", p.log.String())
		default:
		}
		resp, err := c.Get(p.Directory)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("pebble directory: %d", resp.StatusCode)
		}
		return nil
	})
}

func (p *Pebble) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.wfeRoots}}}
}

// Stop kills Pebble (it keeps no state) and waits for it; the DNS
// server stops at the test's end. Safe to call twice.
func (p *Pebble) Stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

// IssuerRoots fetches the root that signs issued certificates (new on
// every Pebble start).
func (p *Pebble) IssuerRoots() *x509.CertPool {
	p.tb.Helper()
	resp, err := p.client().Get("https://" + p.mgmtAddr + "/roots/0")
	if err != nil {
		p.tb.Fatalf("pebble roots: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		p.tb.Fatalf("pebble roots: no PEM: %s", b)
	}
	return pool
}

// Orders counts the new-order requests Pebble has received.
func (p *Pebble) Orders() int { return strings.Count(p.log.String(), "POST /order-plz") }

// Log is Pebble's output so far.
func (p *Pebble) Log() string { return p.log.String() }
