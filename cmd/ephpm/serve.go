package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/cluster"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/internal/gotune"
	"github.com/ephpm/ephpm/internal/logbuf"
	"github.com/ephpm/ephpm/internal/phpenv"
	"github.com/ephpm/ephpm/kv"
	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/phpfpm"
	"github.com/ephpm/ephpm/placement"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sites"
	"github.com/ephpm/ephpm/sqlite"
)

func loadConfig(f *serveFlags) (*config.Config, error) {
	cfg, err := config.Load(f.config, os.Environ())
	if err != nil {
		return nil, err
	}
	// Flags win over the file and the environment.
	if f.listen != "" || f.root != "" {
		if f.listen != "" {
			cfg.Server.Listen = f.listen
		}
		if f.root != "" {
			cfg.Server.DocumentRoot = f.root
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func findFPM(cfg *config.Config) (string, error) {
	return phpfpm.Find(cfg.PHP.FPMBinary)
}

// node is one running ephpm: what serve wires together. Components are
// built in dependency order by serve and startSites; closers undo, in
// reverse, whatever was started, also after a failed start.
type node struct {
	cfg     *config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	runDir  string
	sockDir string
	closers []func()

	php     *fastcgi.Client
	sup     *phpfpm.Supervisor
	phpUser unixUser // PHP's user when we are root
	// env is what PHP is told of the MySQL front and the KV store, set
	// as each starts.
	env phpenv.Services

	// Sites mode (startSites), in the order they are built.
	pool *sqlite.Pool         // site databases (with MySQL or replication)
	repl *replication.Manager // with [replication] or [cluster]
	// replClient talks to other nodes' replication listeners.
	replClient *http.Client
	sites      *sites.Registry
	dir        *sites.Directory // MySQL accounts over pool (with pool)
	mysql      *mysqlwire.Server
	kvs        *kv.Server
	// With [cluster]: membership and directory, and what makes the
	// node's sites follow it.
	clu   *cluster.Cluster
	place *placement.Placement
}

// unixUser is a uid and gid (zero: unset).
type unixUser struct{ UID, GID int }

func (n *node) defer_(f func()) { n.closers = append(n.closers, f) }

func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
}

// serve runs the node until ctx ends or a server fails, then drains and
// stops everything.
func serve(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	logw := logbuf.New(stdout)
	defer logw.Close()
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Server.LogLevel))
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: level}))

	n := &node{cfg: cfg, log: log}
	defer n.close()
	setSQLLimits(cfg, log)
	if err := n.dirs(); err != nil {
		return err
	}
	gcCtx, stopGC := context.WithCancel(ctx)
	var kvBytes int64
	if cfg.KV.Enabled {
		kvBytes = int64(cfg.KV.MemoryLimit)
	}
	waitGC := gotune.StartGCTuner(gcCtx, gotune.MemoryLimit(kvBytes), os.Getenv, log)
	n.defer_(func() { stopGC(); waitGC() })
	if addr := os.Getenv("EPHPM_PPROF"); addr != "" {
		n.defer_(startPprof(addr, log))
	}
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := n.startPHP(ctx); err != nil {
		return err
	}

	var resolver httpd.SiteResolver
	if cfg.Server.SitesDir != "" {
		r, err := n.startSites(ctx)
		if err != nil {
			return err
		}
		resolver = r
	} else {
		site, err := n.singleSite(ctx)
		if err != nil {
			return err
		}
		resolver = httpd.SingleSite{S: site}
	}

	intercept, serveTLS, err := n.tlsFront(ctx)
	if err != nil {
		return err
	}
	front, err := httpd.New(httpd.Config{
		Intercept:      intercept,
		Sites:          resolver,
		TrustedProxies: cfg.Server.TrustedProxies,
		MaxBodySize:    int64(cfg.Server.Request.MaxBodySize),
		MaxHeaderSize:  int(cfg.Server.Request.MaxHeaderSize),
		RequestTimeout: cfg.Server.Timeouts.Request.D(),
		Compression:    cfg.Server.Response.Compression,
		CompressMin:    int64(cfg.Server.Response.CompressionMinSize),
		AccessLog:      cfg.Server.AccessLog,
		MetricsPublic:  cfg.Server.Metrics.Public,
		MetricsAllow:   cfg.Server.Metrics.Allow,
		Ready:          n.ready,
		Registry:       n.reg,
		Logger:         log.WithGroup("http"),
		TmpDir:         n.runDir,
		// Bodies are read whole before PHP gets a worker (issue 12).
		BodyBufferSize:  int(cfg.Server.Request.BodyBufferSize),
		BodyReadTimeout: cfg.Server.Request.BodyReadTimeout.D(),
		BodyMinRate:     int64(cfg.Server.Request.BodyMinRate),
		BodyRateGrace:   cfg.Server.Request.BodyRateGrace.D(),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("serving", "version", ephpm.Version, "http", ln.Addr().String(), "sites_dir", cfg.Server.SitesDir,
		"document_root", cfg.Server.DocumentRoot, "php_workers", cfg.PHP.Workers)
	srvs := newServers(ctx)
	drain := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.Timeouts.Shutdown.D())
		defer cancel()
		return srvs.shutdown(sctx)
	}
	srvs.add(func() error { return front.Serve(ln) }, func(ctx context.Context) error {
		// Both listeners of the front (HTTP and HTTPS) drain here.
		if err := front.Shutdown(ctx); err != nil {
			log.Warn("shutdown: requests still running at the deadline", "err", err)
		}
		return nil
	})
	if n.repl != nil {
		serve, stop, err := n.serveReplication(front)
		if err != nil {
			return errors.Join(err, drain())
		}
		srvs.add(serve, stop)
	}
	if serveTLS != nil {
		serve, stop, err := serveTLS(front)
		if err != nil {
			return errors.Join(err, drain())
		}
		srvs.add(serve, stop)
	}
	<-srvs.done()
	log.Info("shutting down: draining requests", "timeout", cfg.Server.Timeouts.Shutdown.String())
	err = drain()
	log.Info("stopped")
	return err
}

// dirs makes the runtime dir and the socket dir PHP can reach.
func (n *node) dirs() error {
	runDir := n.cfg.Server.RuntimeDir
	if runDir == "" {
		d, err := os.MkdirTemp("", "ephpm-run-")
		if err != nil {
			return fmt.Errorf("runtime dir: %w", err)
		}
		runDir = d
		n.defer_(func() { os.RemoveAll(d) })
	} else if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("runtime dir: %w", err)
	}
	// PHP (an unprivileged user when we are root) must reach the KV and
	// MySQL sockets: traverse-only on the run dir, a readable sock dir.
	sockDir := filepath.Join(runDir, "sock")
	if err := os.MkdirAll(sockDir, 0o755); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	_ = os.Chmod(runDir, 0o711)
	_ = os.Chmod(sockDir, 0o755)
	n.runDir, n.sockDir = runDir, sockDir
	if os.Geteuid() == 0 {
		name := n.cfg.PHP.User
		if name == "" {
			name = "www-data"
		}
		if u, err := user.Lookup(name); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			n.phpUser = unixUser{UID: uid, GID: gid}
		}
	}
	return nil
}

// startPHP starts the shared php-fpm pool and its FastCGI client.
func (n *node) startPHP(ctx context.Context) error {
	cfg := n.cfg
	var defines map[string]string
	if cfg.OPcacheFile() {
		// One OPcache in shared memory would let a tenant include another
		// tenant's cached scripts without open_basedir seeing it.
		dir := filepath.Join(n.runDir, "opcache")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("opcache dir: %w", err)
		}
		if n.phpUser.UID > 0 {
			if err := os.Chown(dir, n.phpUser.UID, n.phpUser.GID); err != nil {
				return fmt.Errorf("opcache dir: %w", err)
			}
		}
		defines = map[string]string{"opcache.file_cache": dir, "opcache.file_cache_only": "1",
			// Only PHP itself writes there (open_basedir keeps tenants out):
			// no checksum over every script on every include.
			"opcache.file_cache_consistency_checks": "0"}
	}
	sup, err := phpfpm.New(phpfpm.Config{
		Binary:           cfg.PHP.FPMBinary,
		RuntimeDir:       filepath.Join(n.runDir, "php-fpm"),
		Workers:          cfg.PHP.Workers,
		User:             cfg.PHP.User,
		MemoryLimit:      cfg.PHP.MemoryLimit.PHPString(),
		MaxExecutionTime: cfg.PHP.MaxExecutionTime.D(),
		INI:              n.nodeINI(),
		Defines:          defines,
		Logger:           n.log.WithGroup("phpfpm"),
	})
	if err != nil {
		return err
	}
	if err := sup.Start(ctx); err != nil {
		return fmt.Errorf("start php-fpm: %w", err)
	}
	n.defer_(func() { sup.Close() })
	// One client per pool, at most one connection per worker: php-fpm
	// ties a worker to each kept-alive connection.
	php := fastcgi.NewClient(fastcgi.Config{Network: "unix", Address: sup.Socket(), MaxConns: cfg.PHP.Workers, MaxIdle: cfg.PHP.Workers})
	n.defer_(func() { php.Close() })
	n.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ephpm_php_pool_busy", Help: "FastCGI connections in use."},
			func() float64 { b, _ := php.Stats(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ephpm_php_pool_idle", Help: "Idle kept-alive FastCGI connections."},
			func() float64 { _, i := php.Stats(); return float64(i) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ephpm_php_workers", Help: "php-fpm worker processes (pm=static)."},
			func() float64 { return float64(cfg.PHP.Workers) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ephpm_phpfpm_restarts_total", Help: "php-fpm restarts after it died."},
			func() float64 { return float64(sup.Restarts()) }),
	)
	n.sup, n.php = sup, php
	return nil
}

// nodeINI is the php.ini of the node's shared pool: what the operator
// set in ephpm.toml, and what ephpm sets for tenants.
func (n *node) nodeINI() map[string]string {
	cfg := n.cfg
	// PHP's own body limits follow max_body_size unless overridden.
	ini := map[string]string{
		"post_max_size":       cfg.Server.Request.MaxBodySize.PHPString(),
		"upload_max_filesize": cfg.Server.Request.MaxBodySize.PHPString(),
	}
	if cfg.Server.SitesDir != "" {
		if len(cfg.PHP.DisableFunctions) > 0 {
			ini["disable_functions"] = strings.Join(cfg.PHP.DisableFunctions, ",")
		}
		// Only scripts under the runtime dir (there are none) may call
		// opcache_get_status, opcache_invalidate and the like: a tenant
		// must not list or evict the scripts of the others.
		ini["opcache.restrict_api"] = filepath.Join(n.runDir, "php-fpm") + "/"
	}
	for k, v := range cfg.PHP.IniOverrides {
		ini[k] = v
	}
	return ini
}

// singleSite serves document_root as the one site, with its database
// and cache.
func (n *node) singleSite(ctx context.Context) (*httpd.Site, error) {
	cfg := n.cfg
	root, err := cfg.Root()
	if err != nil {
		return nil, err
	}
	var acct phpenv.Account
	if cfg.DB.SQLite.Proxy.Enabled {
		if acct, err = n.startDB(ctx, root); err != nil {
			return nil, err
		}
	}
	if cfg.KV.Enabled {
		kvs, ep, err := startKV(ctx, cfg, n.sockDir, nil, n.log, n.reg)
		if err != nil {
			return nil, err
		}
		n.defer_(func() { kvs.Close() })
		n.env.KV = &ep
		acct.KVUser, acct.KVPassword = "", cfg.KV.Password
	}
	return &httpd.Site{
		Name:         "default",
		Root:         root,
		IndexFiles:   cfg.Server.IndexFiles,
		Fallback:     cfg.Server.Fallback,
		CacheControl: cfg.Server.Static.CacheControl,
		PHP:          n.php,
		Params:       n.env.Params(acct),
	}, nil
}
