// Package mysqlwire is the MySQL protocol front of the site databases: PHP's
// mysqli and pdo_mysql (and the mariadb CLI) connect to it, authenticate
// with a site's credentials and run MySQL statements, which sqlxlate
// translates into SQLite plans this package executes on the site's
// sqlite.DB.
package mysqlwire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"vitess.io/vitess/go/mysql"
	vtlog "vitess.io/vitess/go/vt/log"
	"vitess.io/vitess/go/vt/vtenv"

	"github.com/ephpm/ephpm/sqlite"
	"github.com/ephpm/ephpm/sqlxlate"
)

const (
	// DefaultListen is where PHP finds the database unless configured.
	DefaultListen = "127.0.0.1:3306"

	// DefaultServerVersion is the MySQL version announced in the handshake;
	// WordPress and mysqlnd enable utf8mb4 and modern SQL for 8.0.
	DefaultServerVersion = "8.0.36"

	// DefaultSocketMode lets the owner and group (php-fpm's pool user)
	// connect through the unix socket.
	DefaultSocketMode os.FileMode = 0o660

	// DefaultPlanCache is the number of translated plans kept in memory.
	DefaultPlanCache = 4096

	// DefaultAuthTimeout closes a connection that has not authenticated
	// this long after it was accepted (MySQL's connect_timeout is 10 s),
	// so clients that connect and say nothing cannot pile up.
	// Authenticated connections, idle or not, are not timed out.
	DefaultAuthTimeout = 10 * time.Second

	// DefaultMaxResultSize bounds the memory a result takes while it is
	// built: results are materialised before they are sent (types must be
	// known before the first row), so without a bound one SELECT could
	// hold the node's memory. PHP buffers a whole result itself, within
	// its memory_limit (128M by default).
	DefaultMaxResultSize = 128 << 20
)

// Account is what a MySQL user name stands for: the password it must
// present, the one database it may use, and how to reach that database.
type Account struct {
	User     string
	Password string
	// Database is the name clients see (USE, DATABASE(), SHOW TABLES);
	// connecting to any other name fails with 1044.
	Database string
	// Open returns the site database and a release function called when
	// the connection ends, so that the owner may close idle databases.
	// It is called on the connection's goroutine, once, at its first
	// command; it may block while the database opens (the pool's open
	// hooks run there). release is called once, when the connection (or
	// Detached session) ends.
	Open func(ctx context.Context) (db *sqlite.DB, release func(), err error)
	// Forward, set for a replicated site, sends writes to the primary
	// while the database is read-only (a replica; a primary demoted
	// while the connection lives).
	Forward Forwarder
}

// PoolAccount is an Account whose database is the file at path, opened
// through pool (shared with other users of the site, closed when idle).
func PoolAccount(user, password, database string, pool *sqlite.Pool, path string) *Account {
	return &Account{
		User: user, Password: password, Database: database,
		Open: func(ctx context.Context) (*sqlite.DB, func(), error) {
			return pool.Acquire(ctx, path)
		},
	}
}

// Directory maps a MySQL user name to its Account. Lookup returns nil, nil
// for an unknown user. It is called once per connection attempt, on that
// connection's goroutine during the handshake, by many connections at
// once (and for every Detached session ephpm opens); it may block
// briefly (ctx ends when the server closes), but the client waits.
type Directory interface {
	Lookup(ctx context.Context, user string) (*Account, error)
}

// StaticDirectory is a fixed Directory keyed by user name.
type StaticDirectory map[string]*Account

var _ Directory = StaticDirectory(nil)

// Lookup implements Directory.
func (d StaticDirectory) Lookup(_ context.Context, user string) (*Account, error) {
	return d[user], nil
}

// Translator turns MySQL into plans; *sqlxlate.Translator is the real one.
type Translator interface {
	Translate(ctx context.Context, sql string, cat sqlxlate.Catalog) (*sqlxlate.Plan, error)
}

var _ Translator = (*sqlxlate.Translator)(nil)

// Config of the server.
type Config struct {
	// Listen is the TCP address; "" disables TCP.
	Listen string
	// Socket is the unix socket path; "" disables it.
	Socket string
	// SocketMode is the socket's permission bits (DefaultSocketMode): PHP
	// workers must be the owner or in the group to connect.
	SocketMode os.FileMode
	// AllowRemote permits a Listen address that is not loopback.
	AllowRemote bool
	// Sites resolves users to accounts. Required.
	Sites Directory
	// Translator defaults to sqlxlate.NewTranslator(DefaultPlanCache).
	Translator Translator
	// ServerVersion defaults to DefaultServerVersion.
	ServerVersion string
	// StatementTimeout bounds each statement (like MySQL's
	// max_execution_time, for every statement): one that runs longer is
	// interrupted and fails with 3024. 0, the default, means none. A
	// session may lower it for itself (SET max_execution_time = ms).
	StatementTimeout time.Duration
	// AuthTimeout bounds the handshake: a connection not authenticated
	// this long after accept is closed. 0 means DefaultAuthTimeout, a
	// negative value none.
	AuthTimeout time.Duration
	// MaxResultSize bounds the bytes of one result (DefaultMaxResultSize);
	// a larger one fails with 1041.
	MaxResultSize int
	Logger        *slog.Logger
	// Metrics, if set, receives the ephpm_mysql_* collectors.
	Metrics prometheus.Registerer
}

// Server is the MySQL wire server. Start it once; Close stops the listeners,
// closes every client connection and waits for their goroutines.
type Server struct {
	cfg       Config
	log       *slog.Logger
	env       *vtenv.Environment
	xl        Translator
	auth      *authServer
	stats     counters
	describes describeCache

	ctx    context.Context
	cancel context.CancelFunc
	// stmtCtx runs statements: not cancelled by Close, which closes the
	// connections instead: a running statement sees its client gone (see
	// session.clientGone) and stops.
	stmtCtx context.Context
	wg      sync.WaitGroup // accept loops and connections

	mu        sync.Mutex
	listeners []*mysql.Listener
	conns     map[*mysql.Conn]struct{}
	sites     map[*sqlite.DB]*siteState
	closed    bool
}

// New checks cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Sites == nil {
		return nil, errors.New("mysqlwire: Config.Sites is required")
	}
	if cfg.Listen == "" && cfg.Socket == "" {
		return nil, errors.New("mysqlwire: neither Listen nor Socket is set")
	}
	if cfg.Listen != "" && !cfg.AllowRemote {
		if err := checkLoopback(cfg.Listen); err != nil {
			return nil, err
		}
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = DefaultServerVersion
	}
	if cfg.SocketMode == 0 {
		cfg.SocketMode = DefaultSocketMode
	}
	if cfg.AuthTimeout == 0 {
		cfg.AuthTimeout = DefaultAuthTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Translator == nil {
		cfg.Translator = sqlxlate.NewTranslator(DefaultPlanCache)
	}
	if cfg.MaxResultSize <= 0 {
		cfg.MaxResultSize = DefaultMaxResultSize
	}
	if cfg.StatementTimeout < 0 {
		return nil, errors.New("mysqlwire: negative StatementTimeout")
	}
	// vitess logs through a process-wide logger; send it to ours.
	vtlog.SwapLogger(cfg.Logger.With("component", "vitess"))
	if err := sqlite.RegisterFunctions(SQLiteFunctions()); err != nil {
		return nil, fmt.Errorf("mysqlwire: %w", err)
	}
	env, err := vtenv.New(vtenv.Options{MySQLServerVersion: cfg.ServerVersion})
	if err != nil {
		return nil, fmt.Errorf("mysqlwire: vitess environment: %w", err)
	}
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "mysqlwire"),
		env:   env,
		xl:    cfg.Translator,
		conns: map[*mysql.Conn]struct{}{},
		sites: map[*sqlite.DB]*siteState{},
	}
	s.auth = &authServer{srv: s}
	if cfg.Metrics != nil {
		if err := s.registerMetrics(cfg.Metrics); err != nil {
			return nil, fmt.Errorf("mysqlwire: metrics: %w", err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.stmtCtx = context.WithoutCancel(s.ctx)
	return s, nil
}

// checkLoopback refuses addresses that would expose the database beyond
// this host: a wildcard or a non-loopback IP, or a name resolving to one.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("mysqlwire: listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("mysqlwire: listen %q is not a loopback address (set AllowRemote to permit it)", addr)
	}
	return nil
}

// Start binds the listeners and serves until Close or ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.cfg.Listen != "" {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("mysqlwire: listen %s: %w", s.cfg.Listen, err)
		}
		if err := s.serve(ln); err != nil {
			return err
		}
	}
	if s.cfg.Socket != "" {
		// A stale socket from a crashed run would make Listen fail.
		if fi, err := os.Lstat(s.cfg.Socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(s.cfg.Socket)
		}
		ln, err := net.Listen("unix", s.cfg.Socket)
		if err != nil {
			s.Close()
			return fmt.Errorf("mysqlwire: listen %s: %w", s.cfg.Socket, err)
		}
		if err := os.Chmod(s.cfg.Socket, s.cfg.SocketMode); err != nil {
			ln.Close()
			s.Close()
			return fmt.Errorf("mysqlwire: chmod %s: %w", s.cfg.Socket, err)
		}
		if err := s.serve(ln); err != nil {
			return err
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			// stop, not Close: Close waits for this goroutine too.
			s.stop()
		case <-s.ctx.Done():
		}
	}()
	return nil
}

func (s *Server) serve(ln net.Listener) error {
	var h mysql.Handler = &handler{srv: s}
	if s.cfg.AuthTimeout > 0 {
		h = authDeadlineHandler{&handler{srv: s}}
	}
	l, err := mysql.NewListenerWithConfig(mysql.ListenerConfig{
		Listener:           ln,
		AuthServer:         s.auth,
		Handler:            h,
		ConnReadBufferSize: 16 * 1024,
		// Results are built whole and flushed at the end of each command,
		// so vitess's flush timer (re-armed on every packet, re-added to
		// the timer heap on every command) never has anything to do; at
		// its 100 ms default, adding it woke the netpoller thread once a
		// command (~15 % of ephpm's CPU on a WordPress page).
		FlushDelay: time.Hour,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("mysqlwire: listener: %w", err)
	}
	if t := s.cfg.AuthTimeout; t > 0 {
		// The handshake (greeting, login, the connect-time USE) must end
		// by the deadline; authDeadlineHandler lifts it once it has.
		l.PreHandleFunc = func(_ context.Context, c net.Conn, _ uint32) (net.Conn, error) {
			if err := c.SetDeadline(time.Now().Add(t)); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return errors.New("mysqlwire: server closed")
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		l.Accept()
	}()
	return nil
}

// authDeadlineHandler lifts the handshake deadline (Config.AuthTimeout)
// from a connection once it is authenticated and ready for commands.
type authDeadlineHandler struct{ *handler }

func (h authDeadlineHandler) ConnectionReady(c *mysql.Conn) {
	if raw := c.GetRawConn(); raw != nil {
		_ = raw.SetDeadline(time.Time{})
	}
	h.handler.ConnectionReady(c)
}

// Addr is the bound TCP address (nil without TCP), useful with port 0.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if a := l.Addr(); a.Network() == "tcp" {
			return a
		}
	}
	return nil
}

// Close stops accepting, closes client connections (rolling back their open
// transactions) and waits for every goroutine of the server.
func (s *Server) Close() error {
	s.stop()
	s.wg.Wait()
	if s.cfg.Socket != "" {
		os.Remove(s.cfg.Socket)
	}
	return nil
}

// stop closes the listeners and connections without waiting for their
// goroutines; it is safe to call more than once.
func (s *Server) stop() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	ls := s.listeners
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	for _, l := range ls {
		l.Close()
	}
}

// siteState is shared by the connections of one database: its catalog.
// It outlives its connections for as long as the database stays open, so
// that a site's next request (often with no other connection open in
// between) finds its plans translated and its statements described.
type siteState struct {
	refs    int
	cat     *sqlxlate.SQLiteCatalog
	applied atomic.Uint64 // the DB's Applied() the catalog has seen
	schema  atomic.Uint64 // the DB's SchemaVersion() the catalog has seen
}

func (s *Server) acquireSite(db *sqlite.DB, database string) *siteState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sites[db]
	if st == nil {
		// A new database: drop the states of closed ones (the map keeps
		// them from being freed, so no new DB can reuse their address).
		for d, old := range s.sites {
			if old.refs <= 0 && (d.Closed() || d == db) {
				delete(s.sites, d)
				s.describes.forget(d)
			}
		}
		st = &siteState{cat: sqlxlate.NewCatalog(db.Reader(), database)}
		st.applied.Store(db.Applied())
		st.schema.Store(db.SchemaVersion())
		s.sites[db] = st
	}
	st.refs++
	return st
}

func (s *Server) releaseSite(db *sqlite.DB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.sites[db]; st != nil {
		st.refs--
		if st.refs <= 0 && db.Closed() {
			delete(s.sites, db)
			s.describes.forget(db)
		}
	}
}

// trackConn registers a live connection; false when the server is closing.
func (s *Server) trackConn(c *mysql.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.stats.connsTotal.Add(1)
	s.stats.conns.Add(1)
	return true
}

func (s *Server) untrackConn(c *mysql.Conn) {
	s.mu.Lock()
	_, ok := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	if ok {
		s.stats.conns.Add(-1)
		s.wg.Done()
	}
}

// SQLiteFunctions are the MySQL functions SQLite lacks (from sqlxlate), ready
// for sqlite.Config.Functions. New registers them too, so a database opened
// after New has them either way.
func SQLiteFunctions() []sqlite.Function {
	fns := sqlxlate.Functions()
	out := make([]sqlite.Function, len(fns))
	for i, f := range fns {
		out[i] = sqlite.Function{Name: f.Name, NArgs: f.NArgs, Deterministic: f.Deterministic, Impl: f.Impl}
	}
	return out
}
