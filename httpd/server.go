// Package httpd is ephpm's HTTP front: site resolution, path security,
// try_files routing, static files and PHP over FastCGI, health and
// metrics endpoints, access logs and graceful shutdown.
package httpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/defaults"
)

// Defaults for the HTTP server.
const (
	DefaultReadHeaderTimeout = 10 * time.Second  // slowloris guard
	DefaultIdleTimeout       = 120 * time.Second // keep-alive idle
	DefaultRequestTimeout    = 60 * time.Second
	DefaultMaxBody           = 100 << 20
	DefaultMaxHeader         = 64 << 10
	DefaultCompressMin       = 1024
)

// Config configures a Server. New fills zero values with defaults.
type Config struct {
	Sites          SiteResolver
	TrustedProxies []string // IPs or CIDRs whose X-Forwarded-* are believed
	MaxBodySize    int64
	MaxHeaderSize  int
	RequestTimeout time.Duration // PHP requests; past it the client gets 504
	Compression    bool
	CompressMin    int64
	AccessLog      bool
	MetricsPublic  bool     // else /metrics answers only a client on loopback or in MetricsAllow
	MetricsAllow   []string // IPs or CIDRs; the client trusted proxies name, never the proxy
	// Ready answers /_ephpm/ready: nil, or why the node is not ready yet
	// (shown to the caller: say nothing secret). nil Ready = always ready.
	Ready    func() error
	Registry *prometheus.Registry
	Logger   *slog.Logger
	TmpDir   string // request bodies larger than BodyBufferSize
	// Request bodies are read whole before PHP runs (DESIGN.md, "Request
	// bodies"): up to BodyBufferSize in memory, each read within
	// BodyReadTimeout, and all of it by start + BodyRateGrace +
	// size/BodyMinRate (bytes per second), else 408.
	BodyBufferSize  int
	BodyReadTimeout time.Duration
	BodyMinRate     int64
	BodyRateGrace   time.Duration
	// Intercept, if set, sees every request first and returns true when it
	// has answered it (ACME HTTP-01 challenges, the HTTP→HTTPS redirect).
	// The request's context carries its ephpm.Client. Called on the
	// request's goroutine; it may block only as long as a handler may.
	Intercept func(w http.ResponseWriter, r *http.Request) bool
}

// Server is the HTTP front. It is an http.Handler.
type Server struct {
	sites          SiteResolver
	trustedNets    []*net.IPNet
	maxBody        int64
	maxHeader      int
	requestTimeout time.Duration
	compress       bool
	compressMin    int64
	accessLog      bool
	metricsPublic  bool
	metricsNets    []*net.IPNet
	ready          func() error
	log            *slog.Logger
	tmpDir         string
	bodyBufSize    int
	bodyTimeout    time.Duration
	bodyMinRate    int64
	bodyGrace      time.Duration
	bodyPool       sync.Pool // *memBody
	files          *fileCache
	metrics        *metrics
	metricsHandler http.Handler
	intercept      func(w http.ResponseWriter, r *http.Request) bool

	mu   sync.Mutex
	srvs []*http.Server
	h1   *h1server // plain HTTP/1.1; TLS is net/http's
}

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	s := &Server{
		sites: cfg.Sites, maxBody: cfg.MaxBodySize, maxHeader: cfg.MaxHeaderSize,
		requestTimeout: cfg.RequestTimeout, compress: cfg.Compression, compressMin: cfg.CompressMin,
		accessLog: cfg.AccessLog, metricsPublic: cfg.MetricsPublic, ready: cfg.Ready,
		log: cfg.Logger, tmpDir: cfg.TmpDir, files: newFileCache(DefaultFileCacheMax),
		intercept: cfg.Intercept, bodyBufSize: cfg.BodyBufferSize, bodyTimeout: cfg.BodyReadTimeout,
		bodyMinRate: cfg.BodyMinRate, bodyGrace: cfg.BodyRateGrace,
	}
	if s.sites == nil {
		return nil, errors.New("httpd: no sites")
	}
	s.maxBody = defaults.Positive(s.maxBody, DefaultMaxBody)
	s.maxHeader = defaults.Positive(s.maxHeader, DefaultMaxHeader)
	s.requestTimeout = defaults.Positive(s.requestTimeout, DefaultRequestTimeout)
	s.compressMin = defaults.Positive(s.compressMin, DefaultCompressMin)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.ready == nil {
		s.ready = func() error { return nil }
	}
	if s.tmpDir == "" {
		s.tmpDir = os.TempDir()
	}
	s.bodyBufSize = defaults.Positive(s.bodyBufSize, DefaultBodyBufferSize)
	s.bodyTimeout = defaults.Positive(s.bodyTimeout, DefaultBodyReadTimeout)
	s.bodyMinRate = defaults.Positive(s.bodyMinRate, DefaultBodyMinRate)
	s.bodyGrace = defaults.Positive(s.bodyGrace, DefaultBodyRateGrace)
	bufSize := s.bodyBufSize
	s.bodyPool.New = func() any { return &memBody{buf: make([]byte, bufSize)} }
	var err error
	if s.trustedNets, err = parseNets(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("httpd: trusted proxy: %w", err)
	}
	if s.metricsNets, err = parseNets(cfg.MetricsAllow); err != nil {
		return nil, fmt.Errorf("httpd: metrics allow: %w", err)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(reg)
	s.h1 = &h1server{
		handler: s, maxHeader: s.maxHeader,
		readHeaderTimeout: DefaultReadHeaderTimeout, idleTimeout: DefaultIdleTimeout, bodyTimeout: s.bodyTimeout,
		log: func(msg string, args ...any) { s.log.Error(msg, args...) },
	}
	s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return s, nil
}

// parseNets reads IPs ("10.0.0.1") and CIDRs ("10.0.0.0/8").
func parseNets(list []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, p := range list {
		if !strings.Contains(p, "/") {
			if strings.Contains(p, ":") {
				p += "/128"
			} else {
				p += "/32"
			}
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("bad IP or CIDR %q", p)
		}
		out = append(out, n)
	}
	return out, nil
}

// Metrics exposes the collectors others add to (PHP pool, fpm restarts).
func (s *Server) Registry() prometheus.Registerer { return s.metrics.reg }

// Serve serves plain HTTP/1.1 on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	return s.h1.serve(l)
}

// ServeTLS serves HTTPS (HTTP/2 and HTTP/1.1) on l with cfg until Shutdown.
func (s *Server) ServeTLS(l net.Listener, cfg *tls.Config) error { return s.serve(l, cfg) }

func (s *Server) serve(l net.Listener, tlsCfg *tls.Config) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    s.maxHeader,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig:         tlsCfg,
	}
	s.mu.Lock()
	s.srvs = append(s.srvs, srv)
	s.mu.Unlock()
	var err error
	if tlsCfg != nil {
		err = srv.ServeTLS(l, "", "")
	} else {
		err = srv.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for in-flight requests to finish,
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srvs := s.srvs
	s.mu.Unlock()
	errs := []error{s.h1.shutdown(ctx)}
	for _, srv := range srvs {
		errs = append(errs, srv.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		if _, lean := rw.(*h1resp); !lean {
			// net/http frames a body with both Content-Length and
			// Transfer-Encoding by the latter and deletes the former, so
			// that the two cannot be told from chunked alone here; RFC
			// 9112 6.1 wants the connection closed after such a request.
			// (The plain listener sees the raw head and closes only then.)
			rw.Header().Set("Connection", "close")
		}
	}
	w := &respWriter{ResponseWriter: rw}
	siteName := "-"
	client := s.client(r)
	defer func() {
		d := time.Since(start)
		status := w.status
		if status == 0 {
			status = http.StatusOK
		}
		s.metrics.observe(siteName, status, d)
		if s.accessLog {
			attrs := []slog.Attr{
				slog.String("site", siteName), slog.String("remote", client.Addr()),
				slog.String("method", r.Method), slog.String("uri", r.RequestURI), slog.String("proto", r.Proto),
				slog.Int("status", status), slog.Int64("bytes", w.bytes), slog.Duration("duration", d),
				slog.String("ua", r.UserAgent()),
			}
			if client.Via != "" {
				attrs = append(attrs, slog.String("via", client.Via)) // the node that passed it on
			} else if r.RemoteAddr != client.Addr() {
				attrs = append(attrs, slog.String("peer", r.RemoteAddr)) // the trusted proxy
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "access", attrs...)
		}
	}()
	if s.intercept != nil && s.intercept(w, r.WithContext(ephpm.WithClient(r.Context(), client))) {
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_ephpm/") || r.URL.Path == "/metrics" {
		if s.internal(w, r, client) {
			return
		}
	}
	site, err := s.sites.Site(r)
	if err != nil {
		s.fail(w, r, siteName, err)
		return
	}
	siteName = site.Name
	if site.Route != nil {
		rr := r
		if client.Via == "" {
			// The hook may pass the request to another node: tell it
			// who the client is.
			rr = r.WithContext(ephpm.WithClient(r.Context(), client))
		}
		if site.Route(w, rr) {
			return
		}
	}
	if err := s.serveSite(w, r, site); err != nil {
		s.fail(w, r, siteName, err)
	}
}

func (s *Server) serveSite(w *respWriter, r *http.Request, site *Site) error {
	if err := checkPath(r); err != nil {
		return err
	}
	rt, err := s.resolve(site, r)
	if err != nil {
		return err
	}
	switch rt.kind {
	case routeRedirect:
		w.Header().Set("Location", rt.location)
		w.WriteHeader(http.StatusMovedPermanently)
		return nil
	case routePHP:
		return s.servePHP(w, r, site, rt)
	default:
		return s.serveStatic(w, r, site, rt)
	}
}

// internal serves /_ephpm/* and /metrics; false means "not ours".
func (s *Server) internal(w *respWriter, r *http.Request, c ephpm.Client) bool {
	switch r.URL.Path {
	case "/_ephpm/health":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	case "/_ephpm/ready":
		w.Header().Set("Content-Type", "text/plain")
		if err := s.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return true
		}
		_, _ = w.Write([]byte("ready\n"))
	case "/metrics", "/_ephpm/metrics":
		if !s.metricsPublic && !s.mayReadMetrics(c) {
			if r.URL.Path == "/metrics" {
				return false // the site's own /metrics, if it has one
			}
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		s.metricsHandler.ServeHTTP(w, r)
	default:
		return false
	}
	return true
}

// mayReadMetrics: the client itself — not a trusted proxy speaking for
// it, nor a peer node passing its request on — is on loopback or in
// [server.metrics] allow.
func (s *Server) mayReadMetrics(c ephpm.Client) bool {
	if c.Via != "" {
		return false
	}
	ip := net.ParseIP(c.IP)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	for _, n := range s.metricsNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func peerIP(r *http.Request) net.IP {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		h = r.RemoteAddr
	}
	return net.ParseIP(h)
}

func (s *Server) trustedIP(ip net.IP) bool {
	for _, n := range s.trustedNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// trusted reports whether the direct peer is a trusted proxy.
func (s *Server) trusted(r *http.Request) bool {
	if len(s.trustedNets) == 0 {
		return false
	}
	ip := peerIP(r)
	return ip != nil && s.trustedIP(ip)
}

// client is who sent r: the one an authenticated peer node named when
// it passed the request on (see ephpm.WithClient), else the peer, or,
// behind trusted proxies, the client they name.
func (s *Server) client(r *http.Request) ephpm.Client {
	if c, ok := ephpm.ClientOf(r.Context()); ok {
		return c
	}
	var c ephpm.Client
	trusted := s.trusted(r)
	c.IP, c.Port = s.clientAddr(r, trusted)
	c.HTTPS = r.TLS != nil || (trusted && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		_, c.ServerPort = splitHostPort(la.String())
	}
	return c
}

// clientAddr is the client's address: the peer, or, behind trusted
// proxies, the right-most untrusted X-Forwarded-For entry.
func (s *Server) clientAddr(r *http.Request, trusted bool) (ip, port string) {
	ip, port = splitHostPort(r.RemoteAddr)
	if !trusted {
		return ip, port
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return ip, port
	}
	hops := strings.Split(strings.Join(xff, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		hip := net.ParseIP(h)
		if hip == nil {
			break
		}
		ip, port = h, ""
		if !s.trustedIP(hip) {
			break
		}
	}
	return ip, port
}

// respWriter records status and size, and keeps sendfile (ReadFrom)
// and Flush working through the wrapper.
type respWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *respWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(w.ResponseWriter, src)
	}
	w.bytes += n
	return n, err
}

func (w *respWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
