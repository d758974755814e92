// Package config loads ephpm.toml: one struct tree with defaults from
// New, values from the file, then EPHPM_<SECTION>__<KEY> environment
// overrides, then Validate. Every error names the file, line and key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Defaults for an empty config: serve the current directory on :8080.
const (
	DefaultListen        = "0.0.0.0:8080"
	DefaultFallback      = "/index.php?$query_string"
	DefaultMaxBodySize   = 100 << 20 // like a generous client_max_body_size
	DefaultMaxHeaderSize = 64 << 10  // request line + headers
	// Request bodies are read whole before PHP gets a worker (httpd's
	// DESIGN.md, "Request bodies"): up to DefaultBodyBufferSize in
	// memory, the rest in a temp file; each read within
	// DefaultBodyReadTimeout (nginx's client_body_timeout), and all of it
	// by start + DefaultBodyRateGrace + size / DefaultBodyMinRate, else 408.
	DefaultBodyBufferSize  = 64 << 10
	DefaultBodyReadTimeout = 60 * time.Second
	DefaultBodyMinRate     = 1 << 10 // bytes per second
	DefaultBodyRateGrace   = 10 * time.Second
	// MaxBodyBufferSize bounds body_buffer_size: a buffer is held per body
	// being read, and bigger bodies are better off in a file.
	MaxBodyBufferSize      = 64 << 20
	DefaultRequestTimeout  = 60 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultMemoryLimit     = "128M"
	DefaultMaxExecution    = 30 * time.Second
	// DefaultCompressMinSize is the smallest body worth compressing.
	DefaultCompressMinSize = 1024
	// DefaultAuthTimeout closes a MySQL or KV connection that has not
	// authenticated this long after connecting (MySQL's connect_timeout).
	DefaultAuthTimeout = 10 * time.Second

	// DefaultStatementTimeout bounds every SQL statement (MySQL and
	// Hrana). It is shorter than PHP's max_execution_time (30 s), so that
	// PHP, whose own limit does not count time spent waiting for the
	// database, gets the error (3024) well before php-fpm kills it at
	// max_execution_time + 5 s. A site's own max_execution_time does not
	// change it.
	DefaultStatementTimeout = 25 * time.Second
	// DefaultMaxValueSize is the longest string, blob or row a statement
	// may build or store: MariaDB's default max_allowed_packet.
	DefaultMaxValueSize = 16 << 20
	// DefaultMaxResultSize bounds one statement's result, which ephpm
	// builds in memory before sending it: PHP's default memory_limit,
	// within which PHP itself buffers a result.
	DefaultMaxResultSize = 128 << 20
	// DefaultDBMemoryLimit bounds SQLite's heap, all sites together.
	DefaultDBMemoryLimit = 512 << 20
)

// DefaultIndexFiles are tried, in order, for a directory request.
var DefaultIndexFiles = []string{"index.php", "index.html", "index.htm"}

// Config is the whole of ephpm.toml.
type Config struct {
	Server Server `toml:"server"`
	PHP    PHP    `toml:"php"`
	DB     DB     `toml:"db"`
	KV     KV     `toml:"kv"`

	Replication NodeReplication `toml:"replication"`
	Cluster     Cluster         `toml:"cluster"`

	// File is the path the config was read from ("" when none).
	File string `toml:"-"`
	// pos maps a dotted key ("server.listen") to "file:line".
	pos map[string]string
}

// Server is [server].
type Server struct {
	Listen         string   `toml:"listen"`
	DocumentRoot   string   `toml:"document_root"`
	SitesDir       string   `toml:"sites_dir"`
	IndexFiles     []string `toml:"index_files"`
	Fallback       string   `toml:"fallback"`
	TrustedProxies []string `toml:"trusted_proxies"`
	AccessLog      bool     `toml:"access_log"`
	LogLevel       string   `toml:"log_level"`
	DataDir        string   `toml:"data_dir"`
	RuntimeDir     string   `toml:"runtime_dir"`
	Static         Static   `toml:"static"`
	Response       Response `toml:"response"`
	Request        Request  `toml:"request"`
	Timeouts       Timeouts `toml:"timeouts"`
	Metrics        Metrics  `toml:"metrics"`
	TLS            TLS      `toml:"tls"`
}

// Static is [server.static].
type Static struct {
	CacheControl string `toml:"cache_control"`
}

// Response is [server.response].
type Response struct {
	Compression        bool `toml:"compression"`
	CompressionMinSize Size `toml:"compression_min_size"`
}

// Request is [server.request].
type Request struct {
	MaxBodySize   Size `toml:"max_body_size"`
	MaxHeaderSize Size `toml:"max_header_size"`
	// BodyBufferSize is the largest request body kept in memory while it
	// is read before PHP runs; a larger one goes to a temp file.
	BodyBufferSize Size `toml:"body_buffer_size"`
	// BodyReadTimeout bounds the wait for each read of a request body.
	BodyReadTimeout Duration `toml:"body_read_timeout"`
	// BodyMinRate (bytes per second) and BodyRateGrace: a body must have
	// arrived by start + grace + size / rate.
	BodyMinRate   Size     `toml:"body_min_rate"`
	BodyRateGrace Duration `toml:"body_rate_grace"`
}

// Timeouts is [server.timeouts].
type Timeouts struct {
	Request  Duration `toml:"request"`
	Shutdown Duration `toml:"shutdown"`
}

// Metrics is [server.metrics]: who may read /metrics.
type Metrics struct {
	// Public serves /metrics to any client. By default only a client on
	// loopback may read it — the client itself: behind trusted_proxies,
	// the one the proxy names, never the proxy.
	Public bool `toml:"public"`
	// Allow lets clients from these IPs or CIDRs read /metrics too (a
	// Prometheus server elsewhere).
	Allow []string `toml:"allow"`
}

// PHP is [php].
type PHP struct {
	FPMBinary        string            `toml:"fpm_binary"`
	Workers          int               `toml:"workers"`
	MemoryLimit      Size              `toml:"memory_limit"`
	MaxExecutionTime Duration          `toml:"max_execution_time"`
	IniOverrides     map[string]string `toml:"ini_overrides"`
	User             string            `toml:"user"`
	// Isolation is "shared" (one pool, per-request open_basedir) or
	// "pool" (each site its own php-fpm, started on demand).
	Isolation string `toml:"isolation"`
	// DisableFunctions applies to every site when sites_dir is set.
	DisableFunctions []string `toml:"disable_functions"`
	// PoolWorkers and PoolIdle size and reap the per-site pools.
	PoolWorkers int      `toml:"pool_workers"`
	PoolIdle    Duration `toml:"pool_idle"`
	// OPcache is where the shared pool keeps compiled scripts: "file"
	// (the default for sites in the shared pool) or "shm". In shared
	// memory one site's PHP can include another's cached script past
	// open_basedir; the file cache opens every script through
	// open_basedir first.
	OPcache string `toml:"opcache"`
}

// OPcacheFile reports whether the shared pool caches scripts in files
// (see PHP.OPcache).
func (c *Config) OPcacheFile() bool {
	return c.Server.SitesDir != "" && c.PHP.Isolation == "shared" && c.PHP.OPcache != "shm"
}

// DefaultDisableFunctions are off for multi-tenant PHP: process control
// and raw sockets.
var DefaultDisableFunctions = []string{
	"exec", "shell_exec", "system", "passthru", "proc_open", "popen", "proc_nice", "proc_terminate",
	"proc_get_status", "proc_close", "pcntl_exec", "pcntl_fork", "pcntl_signal", "pcntl_alarm",
	"pcntl_waitpid", "pcntl_wait", "pcntl_signal_dispatch", "pcntl_sigprocmask", "posix_kill",
	"posix_setuid", "posix_setgid", "posix_seteuid", "posix_setegid", "posix_setpgid", "posix_setsid",
	"posix_mkfifo", "socket_create", "socket_create_listen", "socket_create_pair", "dl", "putenv",
}

// DB is [db].
type DB struct {
	SQLite SQLite `toml:"sqlite"`
}

// SQLite is [db.sqlite].
type SQLite struct {
	Path string `toml:"path"`
	Dir  string `toml:"dir"`
	// IdleClose closes a site's database after it is unused this long.
	IdleClose Duration `toml:"idle_close"`
	// StatementTimeout bounds every statement, MySQL's and Hrana's.
	StatementTimeout Duration `toml:"statement_timeout"`
	// MaxValueSize is the longest string, blob or row a statement may
	// build or store (reported as @@max_allowed_packet).
	MaxValueSize Size `toml:"max_value_size"`
	// MaxResultSize bounds one statement's result.
	MaxResultSize Size `toml:"max_result_size"`
	// MemoryLimit bounds SQLite's heap, all sites together.
	MemoryLimit Size  `toml:"memory_limit"`
	Proxy       Proxy `toml:"proxy"`
}

// Proxy is [db.sqlite.proxy]: the MySQL wire front.
type Proxy struct {
	Enabled     bool   `toml:"enabled"`
	MySQLListen string `toml:"mysql_listen"`
	Socket      string `toml:"socket"`
	AllowRemote bool   `toml:"allow_remote"`
	Database    string `toml:"database"`
	User        string `toml:"user"`
	Password    string `toml:"password"`
	// AuthTimeout closes a connection that has not logged in this long
	// after connecting; logged-in connections may idle.
	AuthTimeout Duration `toml:"auth_timeout"`
}

// KV is [kv].
type KV struct {
	Enabled        bool   `toml:"enabled"`
	Listen         string `toml:"listen"`
	Socket         string `toml:"socket"`
	AllowRemote    bool   `toml:"allow_remote"`
	MemoryLimit    Size   `toml:"memory_limit"`
	Eviction       string `toml:"eviction"`
	MaxConnections int    `toml:"max_connections"`
	Password       string `toml:"password"`
	// AuthTimeout closes a connection that has not sent a good AUTH this
	// long after connecting, when AUTH is required.
	AuthTimeout Duration `toml:"auth_timeout"`
}

// New returns the zero-configuration defaults.
func New() *Config {
	return &Config{
		Server: Server{
			Listen:     DefaultListen,
			IndexFiles: append([]string(nil), DefaultIndexFiles...),
			Fallback:   DefaultFallback,
			AccessLog:  true,
			LogLevel:   "info",
			Response:   Response{Compression: true, CompressionMinSize: DefaultCompressMinSize},
			Request: Request{MaxBodySize: DefaultMaxBodySize, MaxHeaderSize: DefaultMaxHeaderSize,
				BodyBufferSize: DefaultBodyBufferSize, BodyReadTimeout: Duration(DefaultBodyReadTimeout),
				BodyMinRate: DefaultBodyMinRate, BodyRateGrace: Duration(DefaultBodyRateGrace)},
			Timeouts: Timeouts{Request: Duration(DefaultRequestTimeout), Shutdown: Duration(DefaultShutdownTimeout)},
		},
		PHP: PHP{
			Workers:          runtime.NumCPU() * 2,
			MemoryLimit:      128 << 20,
			MaxExecutionTime: Duration(DefaultMaxExecution),
			Isolation:        "shared",
			DisableFunctions: append([]string(nil), DefaultDisableFunctions...),
		},
		DB: DB{SQLite: SQLite{
			IdleClose:        Duration(2 * time.Minute),
			StatementTimeout: Duration(DefaultStatementTimeout),
			MaxValueSize:     DefaultMaxValueSize,
			MaxResultSize:    DefaultMaxResultSize,
			MemoryLimit:      DefaultDBMemoryLimit,
			Proxy: Proxy{
				Enabled: true, MySQLListen: "127.0.0.1:3306",
				Database: "ephpm", User: "ephpm", AuthTimeout: Duration(DefaultAuthTimeout),
			}}},
		KV: KV{
			Enabled: true, Listen: "127.0.0.1:6379",
			MemoryLimit: 128 << 20, Eviction: "allkeys-lru", MaxConnections: 10000,
			AuthTimeout: Duration(DefaultAuthTimeout),
		},
		Replication: NodeReplication{WritePaths: append([]string(nil), DefaultWritePaths...)},
		pos:         map[string]string{},
	}
}

// Error is a configuration error at a place in a file (or an
// environment variable).
type Error struct {
	Where string // "ephpm.toml:12" or "env EPHPM_SERVER__LISTEN"
	Key   string // "server.listen"
	Msg   string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.Where, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Where, e.Key, e.Msg)
}

// Load reads path (may be "" for defaults only), applies the EPHPM_*
// variables from environ (os.Environ() form) and validates the result.
func Load(path string, environ []string) (*Config, error) {
	c := New()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := c.decode(path, data); err != nil {
			return nil, err
		}
		c.File = path
	}
	if err := c.applyEnv(environ); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode merges one TOML document into c, rejecting unknown keys.
func (c *Config) decode(file string, data []byte) error {
	if err := DecodeStrict(file, data, c); err != nil {
		return err
	}
	for k, line := range KeyLines(data) {
		c.pos[k] = fmt.Sprintf("%s:%d", file, line)
	}
	return nil
}

// DecodeStrict decodes data into v, rejecting unknown keys and turning
// every decode error into an *Error naming file:line and the key. It is
// shared with site.toml.
func DecodeStrict(file string, data []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().EnableUnmarshalerInterface()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) {
		var errs []error
		for i := range sm.Errors {
			e := &sm.Errors[i]
			row, _ := e.Position()
			errs = append(errs, &Error{Where: fmt.Sprintf("%s:%d", file, row), Key: strings.Join(e.Key(), "."), Msg: "unknown key"})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return &Error{Where: fmt.Sprintf("%s:%d", file, row), Key: strings.Join(de.Key(), "."), Msg: msg}
	}
	// Errors from our own value types carry no position: find the key
	// by decoding each key/value on its own.
	for _, kv := range keyValues(data) {
		doc := fmt.Sprintf("[%s]\n%s = %s\n", kv.table, kv.name, kv.raw)
		if kv.table == "" {
			doc = fmt.Sprintf("%s = %s\n", kv.name, kv.raw)
		}
		probe := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if e := toml.NewDecoder(strings.NewReader(doc)).EnableUnmarshalerInterface().Decode(probe); e != nil {
			return &Error{Where: fmt.Sprintf("%s:%d", file, kv.line), Key: kv.key(), Msg: err.Error()}
		}
	}
	return &Error{Where: file, Msg: err.Error()}
}

// Where names the place a key was set, for validation errors.
func (c *Config) Where(key string) string {
	if p, ok := c.pos[key]; ok {
		return p
	}
	if c.File != "" {
		return c.File
	}
	return "defaults"
}

// applyEnv applies EPHPM_<SECTION>__<KEY>=value. Nested sections are
// joined with "_" or "__" (EPHPM_SERVER_STATIC__CACHE_CONTROL or
// EPHPM_SERVER__STATIC__CACHE_CONTROL). The value is read as a TOML
// value when it parses as one (8, true, ["a","b"]) and as a string
// otherwise.
func (c *Config) applyEnv(environ []string) error {
	sort.Strings(environ)
	var errs []error
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "EPHPM_") {
			continue
		}
		parts := strings.Split(strings.ToLower(strings.TrimPrefix(name, "EPHPM_")), "__")
		if len(parts) < 2 || parts[0] == "" || parts[len(parts)-1] == "" {
			continue // not a config key (e.g. EPHPM_DB_HOST given to PHP)
		}
		var section []string
		for _, p := range parts[:len(parts)-1] {
			section = append(section, strings.Split(p, "_")...)
		}
		sec, key := strings.Join(section, "."), parts[len(parts)-1]
		where := "env " + name
		doc := fmt.Sprintf("[%s]\n%s = %s\n", sec, key, envValue(val))
		if err := DecodeStrict(where, []byte(doc), c); err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				errs = append(errs, &Error{Where: where, Key: sec + "." + key, Msg: ce.Msg})
			} else {
				errs = append(errs, &Error{Where: where, Key: sec + "." + key, Msg: err.Error()})
			}
			continue
		}
		c.pos[sec+"."+key] = where
	}
	return errors.Join(errs...)
}

func envValue(v string) string {
	var m map[string]any
	if toml.Unmarshal([]byte("v = "+v), &m) == nil {
		return v
	}
	b, _ := toml.Marshal(map[string]string{"v": v})
	return strings.TrimSpace(strings.TrimPrefix(string(b), "v = "))
}

// Validate checks values, naming file:line and key for each problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Where: c.Where(key), Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		bad("server.listen", "invalid address %q: want host:port", c.Server.Listen)
	}
	c.validateTLS(bad)
	c.validateCluster(bad)
	c.validateReplication(bad)
	for _, f := range c.Server.IndexFiles {
		if f == "" || strings.ContainsAny(f, "/\\\x00") {
			bad("server.index_files", "invalid index file name %q", f)
		}
	}
	if fb := c.Server.Fallback; fb != "" && fb != "off" && !strings.HasPrefix(fb, "/") {
		bad("server.fallback", "must start with / (e.g. %q) or be \"off\"", DefaultFallback)
	}
	for _, p := range c.Server.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			bad("server.trusted_proxies", "%q is neither an IP address nor a CIDR range", p)
		}
	}
	for _, p := range c.Server.Metrics.Allow {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			bad("server.metrics.allow", "%q is neither an IP address nor a CIDR range", p)
		}
	}
	switch c.Server.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("server.log_level", "must be debug, info, warn or error, got %q", c.Server.LogLevel)
	}
	if c.Server.Request.MaxBodySize <= 0 {
		bad("server.request.max_body_size", "must be positive")
	}
	if c.Server.Request.MaxHeaderSize < 1024 {
		bad("server.request.max_header_size", "must be at least 1K")
	}
	if n := c.Server.Request.BodyBufferSize; n <= 0 || n > MaxBodyBufferSize {
		bad("server.request.body_buffer_size", "must be between 1 and 64MB, got %d", n)
	}
	if c.Server.Request.BodyReadTimeout <= 0 {
		bad("server.request.body_read_timeout", "must be positive")
	}
	if c.Server.Request.BodyMinRate <= 0 {
		bad("server.request.body_min_rate", "must be positive (bytes per second, e.g. \"1KB\")")
	}
	if c.Server.Request.BodyRateGrace <= 0 {
		bad("server.request.body_rate_grace", "must be positive")
	}
	if c.Server.Timeouts.Request <= 0 {
		bad("server.timeouts.request", "must be positive")
	}
	if c.DB.SQLite.Proxy.AuthTimeout <= 0 {
		bad("db.sqlite.proxy.auth_timeout", "must be positive")
	}
	if c.KV.AuthTimeout <= 0 {
		bad("kv.auth_timeout", "must be positive")
	}
	if c.PHP.Workers < 1 || c.PHP.Workers > 4096 {
		bad("php.workers", "must be between 1 and 4096, got %d", c.PHP.Workers)
	}
	if c.PHP.MemoryLimit < 2<<20 {
		bad("php.memory_limit", "must be at least 2M")
	}
	if c.PHP.OPcache != "" && c.PHP.OPcache != "file" && c.PHP.OPcache != "shm" {
		bad("php.opcache", "must be \"file\" or \"shm\", got %q", c.PHP.OPcache)
	}
	if c.PHP.Isolation != "shared" && c.PHP.Isolation != "pool" {
		bad("php.isolation", "must be \"shared\" or \"pool\", got %q", c.PHP.Isolation)
	}
	for k := range c.PHP.IniOverrides {
		if k == "" || strings.ContainsAny(k, "[]=\n\x00 ") {
			bad("php.ini_overrides", "invalid ini directive name %q", k)
		}
	}
	for k, v := range c.PHP.IniOverrides {
		if !ValidINIValue(v) {
			bad("php.ini_overrides", "value of %q contains a control character", k)
		}
	}
	if c.PHP.FPMBinary != "" {
		if st, err := os.Stat(c.PHP.FPMBinary); err != nil || st.IsDir() {
			bad("php.fpm_binary", "%q is not an executable file", c.PHP.FPMBinary)
		}
	}
	for _, d := range []struct{ key, dir string }{{"server.document_root", c.Server.DocumentRoot}, {"server.sites_dir", c.Server.SitesDir}} {
		if d.dir == "" {
			continue
		}
		if st, err := os.Stat(d.dir); err != nil || !st.IsDir() {
			bad(d.key, "%q is not a directory", d.dir)
		}
	}
	if c.DB.SQLite.Proxy.Enabled {
		checkLoopback(bad, "db.sqlite.proxy.mysql_listen", c.DB.SQLite.Proxy.MySQLListen, c.DB.SQLite.Proxy.AllowRemote)
	}
	c.validateSQLiteLimits(bad)
	if c.KV.Enabled {
		checkLoopback(bad, "kv.listen", c.KV.Listen, c.KV.AllowRemote)
		if c.KV.Eviction != "allkeys-lru" && c.KV.Eviction != "noeviction" {
			bad("kv.eviction", "must be \"allkeys-lru\" or \"noeviction\", got %q", c.KV.Eviction)
		}
		if c.KV.MemoryLimit < 1<<20 {
			bad("kv.memory_limit", "must be at least 1MB")
		}
		if c.KV.MaxConnections < 1 {
			bad("kv.max_connections", "must be positive")
		}
	}
	return errors.Join(errs...)
}

// validateSQLiteLimits checks the statements' bounds in [db.sqlite].
func (c *Config) validateSQLiteLimits(bad func(string, string, ...any)) {
	q := c.DB.SQLite
	if q.StatementTimeout <= 0 {
		bad("db.sqlite.statement_timeout", "must be positive (statements without a time limit could run forever)")
	}
	// SQLite's own ceiling (SQLITE_MAX_LENGTH) is 1e9 bytes.
	if q.MaxValueSize < 1<<20 || q.MaxValueSize > 1_000_000_000 {
		bad("db.sqlite.max_value_size", "must be between 1MB and 1000000000 bytes, got %d", int64(q.MaxValueSize))
	}
	if q.MaxResultSize < 1<<20 {
		bad("db.sqlite.max_result_size", "must be at least 1MB")
	}
	// A statement holds a few copies of a value as it builds one.
	if q.MemoryLimit < 32<<20 || q.MemoryLimit < 4*q.MaxValueSize {
		bad("db.sqlite.memory_limit", "must be at least 32MB and 4 x max_value_size, got %d", int64(q.MemoryLimit))
	}
}

// checkLoopback refuses a non-loopback listen address unless allowed.
func checkLoopback(bad func(string, string, ...any), key, addr string, allow bool) {
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		bad(key, "invalid address %q: want host:port", addr)
		return
	}
	if allow || host == "localhost" {
		return
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		bad(key, "%q is not a loopback address; set allow_remote = true to expose it", addr)
	}
}

// Root returns the document root to serve, absolute.
func (c *Config) Root() (string, error) {
	r := c.Server.DocumentRoot
	if r == "" {
		r = "."
	}
	return filepath.Abs(r)
}
