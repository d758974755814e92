// Package kv is ephpm's Redis-compatible object cache: a RESP2 server over
// TCP and a unix socket, with an in-memory store that has TTLs, a memory
// limit with approximate-LRU eviction, and one isolated keyspace per site.
package kv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/internal/defaults"
	"github.com/ephpm/ephpm/internal/task"
)

const (
	// DefaultListen is the RESP address; loopback only, like the MySQL port.
	DefaultListen = "127.0.0.1:6379"
	// DefaultEviction is the policy once MemoryLimit is reached; an object
	// cache should drop cold entries rather than fail writes.
	DefaultEviction = "allkeys-lru"
	// DefaultMaxConnections caps concurrent clients (Redis's maxclients).
	DefaultMaxConnections = 10000
	// DefaultMaxBulkLen caps one argument. Redis allows 512 MB; an object
	// cache never needs that, and a lower cap bounds what one client can
	// make the server buffer.
	DefaultMaxBulkLen = 64 << 20
	// DefaultMaxQueryBuffer caps the bytes one connection may buffer for a
	// single command (Redis's client-query-buffer-limit, lowered likewise).
	DefaultMaxQueryBuffer = 128 << 20
	// maxValueLen bounds MaxBulkLen: entries keep lengths in 32 bits, and
	// Redis's own ceiling (proto-max-bulk-len) is 512 MB.
	maxValueLen = 1 << 30
	// DefaultMaxArgs caps the argument count of one command.
	DefaultMaxArgs = 1 << 20
	// DefaultAuthTimeout closes a connection that has not sent a good
	// AUTH (or HELLO AUTH) this long after it was accepted, when AUTH is
	// required, so clients that connect and say nothing cannot hold
	// connection slots (MySQL's connect_timeout is 10 s too).
	// Authenticated connections, idle or not, are not timed out.
	DefaultAuthTimeout = 10 * time.Second
	// writeBufferSize is the per-connection reply buffer; replies of a
	// pipeline accumulate here and leave in one write.
	writeBufferSize = 16 << 10
	// defaultKeyspace names the single keyspace used without sites.
	defaultKeyspace = ""
)

// DefaultLoops is one event loop per 4 CPUs, at least 1 and at most 8.
// The KV shares its node with PHP, and one loop already matches a
// single-threaded redis-server; two loops on two cores lost ~30% on a hot
// key to lock contention under redis-benchmark.
func DefaultLoops() int { return max(1, min(runtime.GOMAXPROCS(0)/4, 8)) }

// Eviction policies.
const (
	EvictionAllKeysLRU = "allkeys-lru"
	EvictionNone       = "noeviction"
)

// Config configures a Server. The zero value plus a Listen address works;
// New fills in defaults.
type Config struct {
	// Listen is the TCP address ("127.0.0.1:6379"); "" = no TCP listener.
	// Non-loopback addresses are refused unless AllowRemote is set.
	Listen      string
	AllowRemote bool
	// Socket is a unix socket path; "" = none.
	Socket string
	// MemoryLimit is the node-wide limit in bytes for all keyspaces (Redis's
	// maxmemory); 0 = unlimited.
	MemoryLimit int64
	// Eviction is "allkeys-lru" (default) or "noeviction".
	Eviction       string
	MaxConnections int
	// Password is the optional requirepass of single-keyspace mode.
	Password string
	// AuthTimeout bounds how long a connection may stay unauthenticated
	// when AUTH is required (Auth or Password set): 0 means
	// DefaultAuthTimeout, a negative value none.
	AuthTimeout time.Duration
	// Auth enables multi-site mode: it maps a site's credentials to its
	// keyspace name and quota in bytes (0 = none). Clients must AUTH first.
	// It is called on every AUTH from the event loop, so it must be quick
	// (a map lookup, not a password hash).
	Auth func(user, pass string) (keyspace string, quota int64, ok bool)
	// Loops is the number of event loops (Linux); 0 = DefaultLoops().
	// More loops use more cores but contend on hot keys' shard locks.
	Loops int
	// MaxBulkLen and MaxQueryBuffer bound what a client may send.
	MaxBulkLen     int
	MaxQueryBuffer int
	Logger         *slog.Logger
	// Registerer, if set, receives the KV metrics.
	Registerer prometheus.Registerer
}

// Server is a running KV store. Create it with New, then Start.
type Server struct {
	cfg     Config
	log     *slog.Logger
	st      *store
	started time.Time

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[*conn]struct{}
	closed    bool
	running   bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeDone chan struct{} // closed when the first Close has finished
	loops     []*loop       // event loops; nil = a goroutine per connection
	stopping  atomic.Bool   // tells the loops to close their connections

	nextID     atomic.Int64
	nconns     atomic.Int64
	commands   atomic.Int64
	connsTotal atomic.Int64
	rejected   atomic.Int64
}

// New validates cfg, fills in defaults and returns a Server that is not yet
// listening.
func New(cfg Config) (*Server, error) {
	if cfg.Eviction == "" {
		cfg.Eviction = DefaultEviction
	}
	if cfg.Eviction != EvictionAllKeysLRU && cfg.Eviction != EvictionNone {
		return nil, fmt.Errorf("kv: eviction %q: want %q or %q", cfg.Eviction, EvictionAllKeysLRU, EvictionNone)
	}
	if cfg.MemoryLimit < 0 {
		return nil, fmt.Errorf("kv: negative memory limit %d", cfg.MemoryLimit)
	}
	cfg.MaxConnections = defaults.Positive(cfg.MaxConnections, DefaultMaxConnections)
	cfg.Loops = defaults.Positive(cfg.Loops, DefaultLoops())
	cfg.MaxBulkLen = defaults.Positive(cfg.MaxBulkLen, DefaultMaxBulkLen)
	if cfg.MaxBulkLen > maxValueLen {
		return nil, fmt.Errorf("kv: MaxBulkLen %d over %d", cfg.MaxBulkLen, maxValueLen)
	}
	cfg.MaxQueryBuffer = defaults.Positive(cfg.MaxQueryBuffer, DefaultMaxQueryBuffer)
	if cfg.AuthTimeout == 0 {
		cfg.AuthTimeout = DefaultAuthTimeout
	}
	if cfg.MaxQueryBuffer < cfg.MaxBulkLen+readChunk {
		cfg.MaxQueryBuffer = cfg.MaxBulkLen + readChunk
	}
	if cfg.Listen == "" && cfg.Socket == "" {
		return nil, errors.New("kv: neither listen address nor socket set")
	}
	if cfg.Listen != "" && !cfg.AllowRemote {
		host, _, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("kv: listen %q: %w", cfg.Listen, err)
		}
		if !isLoopbackHost(host) {
			return nil, fmt.Errorf("kv: listen %q is not a loopback address (set AllowRemote to allow)", cfg.Listen)
		}
	}
	if cfg.Auth != nil && cfg.Password != "" {
		return nil, errors.New("kv: Password and Auth are exclusive")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:   cfg,
		log:   log.WithGroup("kv"),
		st:    newStore(cfg.MemoryLimit, cfg.Eviction == EvictionNone),
		conns: make(map[*conn]struct{}),

		closeDone: make(chan struct{}),
	}
	if cfg.Registerer != nil {
		if err := s.registerMetrics(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("kv: register metrics: %w", err)
		}
	}
	return s, nil
}

// Start binds the listeners and serves in goroutines owned by s. It returns
// once listening; cancelling ctx or calling Close stops the server.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.running {
		return errors.New("kv: server already started or closed")
	}
	var lns []net.Listener
	fail := func(err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	if s.cfg.Listen != "" {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fail(fmt.Errorf("kv: listen %s: %w", s.cfg.Listen, err))
		}
		lns = append(lns, ln)
	}
	if s.cfg.Socket != "" {
		// A socket file left by a previous run would make bind fail.
		if fi, err := os.Lstat(s.cfg.Socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(s.cfg.Socket)
		}
		ln, err := net.Listen("unix", s.cfg.Socket)
		if err != nil {
			return fail(fmt.Errorf("kv: listen unix %s: %w", s.cfg.Socket, err))
		}
		// PHP runs as another user; access control is AUTH, as on TCP.
		if err := os.Chmod(s.cfg.Socket, 0o666); err != nil {
			ln.Close()
			return fail(fmt.Errorf("kv: chmod %s: %w", s.cfg.Socket, err))
		}
		lns = append(lns, ln)
	}
	if !forceGoroutines {
		if err := s.startLoops(); err != nil {
			s.log.Info("kv event loop unavailable, serving a goroutine per connection", "err", err)
		}
	}
	s.listeners = lns
	s.running = true
	s.started = time.Now()
	ctx, s.cancel = context.WithCancel(ctx)
	for _, ln := range lns {
		s.wg.Add(1)
		go s.acceptLoop(ln)
	}
	s.wg.Add(1)
	go s.background(ctx)
	s.log.Info("kv listening", "addr", s.Addr(), "socket", s.cfg.Socket, "memory_limit", s.cfg.MemoryLimit, "eviction", s.cfg.Eviction)
	return nil
}

// Addr is the TCP address being served (useful with port 0), or the unix
// socket address when there is no TCP listener; nil before Start.
func (s *Server) Addr() net.Addr {
	if len(s.listeners) == 0 {
		return nil
	}
	return s.listeners[0].Addr()
}

// Close stops listening, closes every connection and waits for all of the
// server's goroutines to end. Later calls wait for the first to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	defer close(s.closeDone)
	s.closed = true
	s.stopping.Store(true)
	for _, l := range s.loops {
		l.wake()
	}
	if s.cancel != nil {
		s.cancel()
	}
	var err error
	for _, ln := range s.listeners {
		if e := ln.Close(); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
			err = e
		}
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	for _, l := range s.loops {
		l.closeFDs()
	}
	if s.cfg.Socket != "" && s.running {
		os.Remove(s.cfg.Socket)
	}
	return err
}

// background runs the active expiry cycle until ctx ends,
// then closes the server if it was ctx that ended.
func (s *Server) background(ctx context.Context) {
	defer s.wg.Done()
	_ = task.Every(ctx, expireInterval, func(context.Context) {
		tickClock()
		s.st.expireCycle()
	})
	// Close may be waiting for us; closing from here must not block.
	go s.Close()
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, don't spin.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			s.log.Warn("kv accept", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.connsTotal.Add(1)
		if s.nconns.Load() >= int64(s.cfg.MaxConnections) {
			s.rejected.Add(1)
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(nc, "-ERR max number of clients reached\r\n")
			nc.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		if len(s.loops) > 0 {
			// Under s.mu, so Close cannot stop the loops half-way.
			s.nconns.Add(1)
			if err := s.handOff(nc); err != nil {
				s.nconns.Add(-1)
				s.log.Warn("kv hand-off to event loop", "err", err)
				nc.Close()
			}
			s.mu.Unlock()
			continue
		}
		c := s.newConn(nc)
		s.conns[c] = struct{}{}
		s.nconns.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Server) dropConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.nconns.Add(-1)
}

// forceGoroutines disables the event loop (tests of the fallback path).
var forceGoroutines bool

// isLoopbackHost reports whether host names the local machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PHPEnv returns the EPHPM_KV_* variables a site's PHP gets to reach this
// server with the given credentials (user "" and password "" in
// single-keyspace mode without a password). Call after Start.
func (s *Server) PHPEnv(user, password string) []string {
	var host, port string
	for _, ln := range s.listeners {
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			host, port = a.IP.String(), strconv.Itoa(a.Port)
			break
		}
	}
	return []string{
		"EPHPM_KV_HOST=" + host,
		"EPHPM_KV_PORT=" + port,
		"EPHPM_KV_SOCKET=" + s.cfg.Socket,
		"EPHPM_KV_USER=" + user,
		"EPHPM_KV_PASSWORD=" + password,
	}
}

// DropKeyspace deletes a site's keyspace and frees its memory, for a site
// that was removed. Connections still authenticated as it keep a detached,
// empty keyspace until they re-AUTH or close.
func (s *Server) DropKeyspace(name string) {
	st := s.st
	st.mu.Lock()
	site := st.sites[name]
	delete(st.sites, name)
	st.mu.Unlock()
	if site != nil {
		site.flush()
	}
}

// FlushKeyspace empties a site's keyspace (every database) and keeps it:
// a replica does this when the site's database changed underneath the
// cached objects.
func (s *Server) FlushKeyspace(name string) {
	st := s.st
	st.mu.Lock()
	site := st.sites[name]
	st.mu.Unlock()
	if site != nil {
		site.flush()
	}
}
