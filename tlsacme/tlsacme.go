// Package tlsacme is ephpm's certmagic wiring: certificates issued on
// the fly from an ACME CA for the names a Config allows, HTTP-01 on the
// HTTP listener and TLS-ALPN-01 on the TLS listener, per-name backoff
// after a failed issuance and a global issuance rate limit.
//
// A name is certified only if Allow says so, and Allow runs before any
// storage lookup or CA contact. An unreachable CA never blocks: New and
// Start only prepare, issuance happens in handshakes (on demand) or in
// background jobs (fixed domains), and certificates already obtained are
// served from storage.
package tlsacme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config.
const (
	// DefaultIssueRate issuances per DefaultIssueWindow, node-wide: well
	// under Let's Encrypt's 300 new orders per 3 hours per account, and
	// enough for a burst of new sites.
	DefaultIssueRate   = 20
	DefaultIssueWindow = time.Minute
	// DefaultBackoffMin is the wait after a name's first failed
	// issuance; it doubles per failure up to DefaultBackoffMax.
	DefaultBackoffMin = time.Minute
	DefaultBackoffMax = 6 * time.Hour
	// DefaultHandshakeTimeout bounds how long a handshake waits for an
	// on-demand issuance.
	DefaultHandshakeTimeout = 90 * time.Second
)

// ErrNotAllowed is returned (wrapped) by an Allow function for a name
// that must not get a certificate.
var ErrNotAllowed = errors.New("tlsacme: no certificate for this name")

// Config configures a Manager. Zero values take the Default* constants.
type Config struct {
	// Directory is the ACME directory URL.
	Directory string
	// Email is the ACME account contact (may be empty).
	Email string
	// Roots verifies the directory's TLS certificate; nil uses the
	// system roots.
	Roots *x509.CertPool
	// Storage is the directory for certificates, keys and the account.
	Storage string
	// Domains always get certificates; with OnDemand false they are
	// obtained at Start, in the background.
	Domains []string
	// OnDemand issues during the first handshake for a name that Allow
	// accepts.
	OnDemand bool
	// Allow decides whether a name (normalized, punycode) may have a
	// certificate beyond Domains; nil allows only Domains.
	Allow func(ctx context.Context, name string) error
	// HTTPAddr and TLSAddr are ephpm's own listeners, which answer the
	// challenges (certmagic must not try to bind them itself).
	HTTPAddr, TLSAddr string
	// DisableHTTP01 and DisableTLSALPN01 turn a challenge type off.
	DisableHTTP01, DisableTLSALPN01 bool

	IssueRate          int
	IssueWindow        time.Duration
	BackoffMin         time.Duration
	BackoffMax         time.Duration
	HandshakeTimeout   time.Duration
	RenewalWindowRatio float64 // 0: certmagic's default (1/3 of the lifetime)

	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Manager issues, stores, renews and serves certificates.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	magic   *certmagic.Config
	acme    *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	limits  *limiter
	domains map[string]bool
	m       *metrics

	mu     sync.Mutex
	cancel context.CancelFunc
	closed bool
}

type metrics struct {
	handshakes *prometheus.CounterVec
	hsErrors   *prometheus.CounterVec
	issued     *prometheus.CounterVec
	failed     *prometheus.CounterVec
	refused    *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ephpm_tls_handshakes_total",
			Help: "Completed TLS handshakes."}, []string{"resumed"}),
		hsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ephpm_tls_handshake_errors_total",
			Help: "Handshakes without a certificate: refused (name not allowed) or error (issuance failed, backoff)."}, []string{"reason"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ephpm_tls_certificates_issued_total",
			Help: "Certificates obtained from the ACME CA."}, []string{"renewal"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ephpm_tls_issuance_failures_total",
			Help: "Failed ACME issuances."}, []string{"renewal"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ephpm_tls_issuance_throttled_total",
			Help: "Issuances not attempted: per-name backoff or the global rate limit."}, []string{"reason"}),
	}
	if r != nil {
		r.MustRegister(m.handshakes, m.hsErrors, m.issued, m.failed, m.refused)
	}
	return m
}

type handshakeKey struct{}

// New prepares a Manager; it contacts nobody.
func New(cfg Config) (*Manager, error) {
	if cfg.Directory == "" {
		return nil, errors.New("tlsacme: no ACME directory")
	}
	if cfg.Storage == "" {
		return nil, errors.New("tlsacme: no storage directory")
	}
	if cfg.IssueRate == 0 {
		cfg.IssueRate = DefaultIssueRate
	}
	if cfg.IssueWindow <= 0 {
		cfg.IssueWindow = DefaultIssueWindow
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		cfg:     cfg,
		log:     cfg.Logger,
		limits:  newLimiter(cfg.IssueRate, cfg.IssueWindow, cfg.BackoffMin, cfg.BackoffMax),
		domains: map[string]bool{},
		m:       newMetrics(cfg.Registerer),
	}
	for _, d := range cfg.Domains {
		m.domains[d] = true
	}
	zl := newZap(cfg.Logger)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		Logger:           zl,
	})
	var onDemand *certmagic.OnDemandConfig
	if cfg.OnDemand {
		// The decision covers the fixed domains too: they are obtained
		// by their first handshake like the sites.
		onDemand = &certmagic.OnDemandConfig{DecisionFunc: m.decide}
	}
	m.magic = certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: cfg.RenewalWindowRatio,
		OnEvent:            m.onEvent,
		OnDemand:           onDemand,
		Storage:            &certmagic.FileStorage{Path: cfg.Storage},
		Logger:             zl,
	})
	host, httpPort := splitPort(cfg.HTTPAddr)
	_, tlsPort := splitPort(cfg.TLSAddr)
	m.acme = certmagic.NewACMEIssuer(m.magic, certmagic.ACMEIssuer{
		CA:                      cfg.Directory,
		TestCA:                  testCA(cfg.Directory),
		Email:                   cfg.Email,
		Agreed:                  true,
		TrustedRoots:            cfg.Roots,
		DisableHTTPChallenge:    cfg.DisableHTTP01,
		DisableTLSALPNChallenge: cfg.DisableTLSALPN01,
		ListenHost:              host,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          tlsPort,
		Logger:                  zl,
	})
	m.magic.Issuers = []certmagic.Issuer{&issuer{ACMEIssuer: m.acme, m: m}}
	return m, nil
}

// testCA keeps certmagic's retry-on-staging for Let's Encrypt and
// retries on the same CA for any other.
func testCA(dir string) string {
	if dir == certmagic.LetsEncryptProductionCA {
		return certmagic.LetsEncryptStagingCA
	}
	return dir
}

func splitPort(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(p)
	if h == "0.0.0.0" || h == "::" {
		h = ""
	}
	return h, n
}

// Start begins managing the fixed domains when not on demand: loading
// them from storage, or obtaining them in the background with
// certmagic's retries. It returns at once; the CA may be down.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("tlsacme: closed")
	}
	if m.cfg.OnDemand || len(m.cfg.Domains) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	if err := m.magic.ManageAsync(ctx, m.cfg.Domains); err != nil {
		return fmt.Errorf("tlsacme: manage %v: %w", m.cfg.Domains, err)
	}
	return nil
}

// Close stops background issuance and renewal.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.cancel != nil {
		m.cancel()
	}
	m.cache.Stop()
	return nil
}

// decide is certmagic's on-demand decision: fixed domains, then Allow.
// Only names it accepts are looked up in storage or sent to the CA.
// certmagic asks only for names not in its memory cache, so a name in
// its backoff has no certificate to load: it is turned away here, before
// certmagic takes a storage lock for an issuance the issuer would refuse.
func (m *Manager) decide(ctx context.Context, name string) error {
	if !m.domains[name] {
		if m.cfg.Allow == nil {
			return fmt.Errorf("%w: %s", ErrNotAllowed, name)
		}
		if err := m.cfg.Allow(ctx, name); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrNotAllowed, name, err)
		}
	}
	if m.limits.blocked(name, time.Now()) {
		m.m.refused.WithLabelValues("backoff").Inc()
		return fmt.Errorf("%s: %w", name, ErrBackoff)
	}
	return nil
}

// TLSConfig is the tls.Config for the HTTPS listener: HTTP/2,
// HTTP/1.1 and the TLS-ALPN-01 protocol.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		NextProtos:       []string{"h2", "http/1.1", "acme-tls/1"},
		GetCertificate:   m.getCertificate,
		VerifyConnection: m.countHandshake,
	}
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.WithValue(hello.Context(), handshakeKey{}, true), m.cfg.HandshakeTimeout)
	defer cancel()
	c, err := m.magic.GetCertificateWithContext(ctx, hello)
	if err != nil {
		reason := "error"
		if errors.Is(err, ErrNotAllowed) {
			reason = "refused"
		}
		m.m.hsErrors.WithLabelValues(reason).Inc()
	}
	return c, err
}

// countHandshake runs for every completed handshake, resumed or not.
func (m *Manager) countHandshake(cs tls.ConnectionState) error {
	m.m.handshakes.WithLabelValues(strconv.FormatBool(cs.DidResume)).Inc()
	return nil
}

// HandleHTTPChallenge answers an ACME HTTP-01 request that belongs to
// a challenge of ours; false means it is not one.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return m.acme.HandleHTTPChallenge(w, r)
}

func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtained":
		m.m.issued.WithLabelValues(strconv.FormatBool(renewal)).Inc()
		m.log.Info("certificate obtained", "name", data["identifier"], "renewal", renewal)
	case "cert_failed":
		m.m.failed.WithLabelValues(strconv.FormatBool(renewal)).Inc()
	}
	return nil
}

// issuer puts the backoff and the global limit in front of the ACME
// issuer. In a handshake a failure is final (ErrNoRetry): the client
// is not held while certmagic waits to retry; the next handshake after
// the backoff tries again. Background jobs keep certmagic's retries.
type issuer struct {
	*certmagic.ACMEIssuer
	m *Manager
}

var _ certmagic.Issuer = (*issuer)(nil)

func (i *issuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	m := i.m
	name := csr.Subject.CommonName
	if len(csr.DNSNames) > 0 {
		name = csr.DNSNames[0]
	}
	inHandshake := ctx.Value(handshakeKey{}) != nil
	final := func(err error) error {
		if inHandshake {
			return certmagic.ErrNoRetry{Err: err}
		}
		return err
	}
	if err := m.limits.begin(name, time.Now()); err != nil {
		reason := "rate"
		if errors.Is(err, ErrBackoff) {
			reason = "backoff"
		}
		m.m.refused.WithLabelValues(reason).Inc()
		m.log.Warn("certificate issuance not attempted", "name", name, "reason", err)
		return nil, final(fmt.Errorf("%s: %w", name, err))
	}
	cert, err := i.ACMEIssuer.Issue(ctx, csr)
	if err != nil {
		wait := m.limits.fail(name, time.Now())
		m.log.Warn("certificate issuance failed", "name", name, "retry_after", wait.String(), "err", err)
		return nil, final(err)
	}
	m.limits.succeed(name)
	return cert, nil
}
