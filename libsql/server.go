package libsql

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/defaults"
	"github.com/ephpm/ephpm/internal/task"
)

const (
	// DefaultStreamIdle is how long a Hrana stream lives without a request
	// (sqld's value); an open transaction is rolled back when it expires.
	DefaultStreamIdle = 10 * time.Second
	// DefaultMaxStreams bounds open Hrana streams per server so that
	// clients that never close cannot exhaust memory.
	DefaultMaxStreams = 1024
	// DefaultProxyIdle is how long an embedded replica's write session
	// (client_id) lives without a request (sqld's value).
	DefaultProxyIdle = 30 * time.Second
	// DefaultMaxProxySessions bounds write-proxy sessions per server.
	DefaultMaxProxySessions = 1024
	// DefaultMaxBody bounds a request body (Hrana JSON or gRPC-Web).
	DefaultMaxBody = 16 << 20
	// DefaultMaxSQLs is how many store_sql texts a stream may hold (sqld).
	DefaultMaxSQLs = 50
	// DefaultMaxSQLLen bounds one stored SQL text.
	DefaultMaxSQLLen = 64 << 10
	// DefaultBatchFrames is how many frames one BatchLogEntries answer
	// carries at most (libSQL's MAX_FRAMES_PER_BATCH), rounded up to a
	// transaction boundary.
	DefaultBatchFrames = 1024
	// DefaultMaxResultSize bounds the memory of one statement's result,
	// which is built whole before it is sent.
	DefaultMaxResultSize = 128 << 20
	// reapInterval is how often idle streams and sessions are looked at.
	reapInterval = time.Second
)

// Config configures the libSQL protocol server. Zero values mean defaults.
type Config struct {
	// Resolve authenticates each request and names its site (required).
	Resolve Resolver
	Logger  *slog.Logger
	// Key signs batons and session tokens; random per process if empty
	// (then batons do not survive a restart, which clients tolerate).
	Key              []byte
	StreamIdle       time.Duration
	MaxStreams       int
	ProxyIdle        time.Duration
	MaxProxySessions int
	MaxBody          int64
	// StatementTimeout bounds each statement (0: none); one that runs
	// longer is interrupted and answered SQLITE_INTERRUPT. A statement
	// also stops when its request's context ends (the client left).
	StatementTimeout time.Duration
	// MaxResultSize bounds one statement's result (DefaultMaxResultSize);
	// a larger one is answered SQLITE_TOOBIG.
	MaxResultSize int
	// Version is answered on GET /version (ephpm.Version if empty).
	Version string
}

// Server serves Hrana over HTTP and the embedded-replica protocols. It owns
// a janitor goroutine while streams or sessions are open; Close ends them.
type Server struct {
	cfg   Config
	log   *slog.Logger
	key   []byte
	genID string // HelloResponse.generation_id: per process, ignored by clients
	// loops owns the janitor; its context also ends the LogEntries
	// calls in flight when the server closes.
	loops *task.Group

	mu      sync.Mutex
	closed  bool
	streams map[uint64]*stream
	proxies map[string]*proxySession
	reaping bool
}

var _ http.Handler = (*Server)(nil)

// NewHandler returns a Server as an http.Handler; see NewServer.
func NewHandler(cfg Config) http.Handler { return NewServer(cfg) }

// NewServer returns a server; call Close to roll back open transactions and
// stop its goroutine.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.StreamIdle = defaults.Positive(cfg.StreamIdle, DefaultStreamIdle)
	cfg.MaxStreams = defaults.Positive(cfg.MaxStreams, DefaultMaxStreams)
	cfg.ProxyIdle = defaults.Positive(cfg.ProxyIdle, DefaultProxyIdle)
	cfg.MaxProxySessions = defaults.Positive(cfg.MaxProxySessions, DefaultMaxProxySessions)
	cfg.MaxBody = defaults.Positive(cfg.MaxBody, DefaultMaxBody)
	cfg.MaxResultSize = defaults.Positive(cfg.MaxResultSize, DefaultMaxResultSize)
	if cfg.Version == "" {
		cfg.Version = ephpm.Version
	}
	key := cfg.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	}
	return &Server{
		cfg:     cfg,
		log:     cfg.Logger.WithGroup("libsql"),
		key:     key,
		genID:   newUUID(),
		loops:   task.NewGroup(context.Background()),
		streams: map[uint64]*stream{},
		proxies: map[string]*proxySession{},
	}
}

// Close rolls back every open transaction, releases their sites and waits
// for the janitor.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	streams, proxies := s.streams, s.proxies
	s.streams, s.proxies = map[uint64]*stream{}, map[string]*proxySession{}
	s.mu.Unlock()
	s.loops.Close() // the janitor returns no error
	ctx := context.Background()
	for _, st := range streams {
		st.mu.Lock()
		st.closeLocked(ctx)
		st.mu.Unlock()
	}
	for _, p := range proxies {
		p.mu.Lock()
		p.closeLocked(ctx)
		p.mu.Unlock()
	}
	return nil
}

// startReaperLocked runs the janitor if it is not running; s.mu is held.
func (s *Server) startReaperLocked() {
	if s.reaping || s.closed {
		return
	}
	s.reaping = true
	s.loops.Go(func(ctx context.Context) error {
		// Its own context ends the janitor when nothing is left to reap.
		ctx, idle := context.WithCancel(ctx)
		defer idle()
		return task.Every(ctx, reapInterval, func(ctx context.Context) {
			if !s.reap(ctx, time.Now()) {
				idle()
			}
		})
	})
}

// reap expires idle streams and sessions; it reports false, ending the
// janitor, when none is left.
func (s *Server) reap(ctx context.Context, now time.Time) bool {
	var dead []interface {
		tryExpire(context.Context, time.Time) bool
	}
	s.mu.Lock()
	for _, st := range s.streams {
		dead = append(dead, st)
	}
	for _, p := range s.proxies {
		dead = append(dead, p)
	}
	s.mu.Unlock()
	for _, d := range dead {
		d.tryExpire(ctx, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.streams {
		if st.isDead() {
			delete(s.streams, id)
		}
	}
	for id, p := range s.proxies {
		if p.isDead() {
			delete(s.proxies, id)
		}
	}
	if len(s.streams) == 0 && len(s.proxies) == 0 {
		s.reaping = false
		return false
	}
	return true
}

// ServeHTTP routes a request by path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/health":
		w.WriteHeader(http.StatusOK)
		return
	case p == "/version":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(s.cfg.Version))
		return
	case (p == "/v2" || p == "/v3") && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("Hello, this is HTTP API " + p[1:] + " (Hrana over HTTP)"))
		return
	case p == "/v2/pipeline" || p == "/v3/pipeline" || p == "/v3/cursor":
		if r.Method != http.MethodPost {
			httpError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		s.withSite(w, r, hranaAuthError, func(rs *reqSite) {
			if p == "/v3/cursor" {
				s.cursor(w, r, rs)
			} else {
				s.pipeline(w, r, rs)
			}
		})
		return
	case p == "/info":
		// 404 makes libsql's embedded replica use the v1 (gRPC-Web)
		// protocol; 401 makes its constructor fail with "Unauthorized".
		s.withSite(w, r, hranaAuthError, func(*reqSite) {
			httpError(w, http.StatusNotFound, "not found")
		})
		return
	case strings.HasPrefix(p, "/wal_log.ReplicationLog/") || strings.HasPrefix(p, "/proxy.Proxy/"):
		s.grpc(w, r)
		return
	}
	httpError(w, http.StatusNotFound, "not found")
}

// withSite resolves the request's site, answers auth errors in the
// protocol's shape, and releases the site when fn is done (unless a
// session took it over).
func (s *Server) withSite(w http.ResponseWriter, r *http.Request, onErr func(http.ResponseWriter, error), fn func(*reqSite)) {
	site, err := s.cfg.Resolve(r.Context(), r)
	if err != nil {
		onErr(w, err)
		return
	}
	rs := &reqSite{site: site}
	defer func() {
		if !rs.kept && site.Release != nil {
			site.Release()
		}
	}()
	fn(rs)
}

func hranaAuthError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnauthorized):
		jsonError(w, http.StatusUnauthorized, err.Error(), "UNAUTHORIZED")
	case errors.Is(err, ErrNoSite):
		jsonError(w, http.StatusNotFound, err.Error(), "NAMESPACE_DOESNT_EXIST")
	default:
		jsonError(w, http.StatusInternalServerError, err.Error(), "INTERNAL")
	}
}

// jsonError answers in both shapes clients read: {message, code} (the JS
// client) and {error} (sqld's, read by libsql-client-go).
func jsonError(w http.ResponseWriter, status int, msg, code string) {
	b, _ := json.Marshal(map[string]string{"error": msg, "message": msg, "code": code})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(msg))
}

// Batons: base64(stream id u64 BE ‖ seq u64 BE ‖ HMAC-SHA256(key, id ‖ seq)).

func (s *Server) encodeBaton(id, seq uint64) string {
	var b [48]byte
	binary.BigEndian.PutUint64(b[0:], id)
	binary.BigEndian.PutUint64(b[8:], seq)
	m := hmac.New(sha256.New, s.key)
	m.Write(b[:16])
	copy(b[16:], m.Sum(nil))
	return base64.RawStdEncoding.EncodeToString(b[:])
}

var errBadBaton = errors.New("invalid baton")

func (s *Server) decodeBaton(baton string) (id, seq uint64, err error) {
	b, err := decodeBase64(baton)
	if err != nil || len(b) != 48 {
		return 0, 0, errBadBaton
	}
	m := hmac.New(sha256.New, s.key)
	m.Write(b[:16])
	if !hmac.Equal(m.Sum(nil), b[16:]) {
		return 0, 0, errBadBaton
	}
	return binary.BigEndian.Uint64(b[0:]), binary.BigEndian.Uint64(b[8:]), nil
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}
