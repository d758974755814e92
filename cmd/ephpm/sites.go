package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/internal/phpenv"
	"github.com/ephpm/ephpm/phpfpm"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sites"
	"github.com/ephpm/ephpm/sqlite"
)

// startSites serves every directory of sites_dir as a site, each with
// its own database, MySQL account and KV keyspace.
//
// Built in dependency order: the database pool; replication, which
// takes the pool and becomes its hooks (SetHooks fails if anything was
// opened without them); the registry, whose Route is replication's and
// which reports the replicated sites to it; the MySQL directory, whose
// Forward is replication's; the MySQL front and the KV store, which take
// the registry. No hook checks whether what it calls exists yet.
//
// Some hooks point back to what is built after them, and are methods of
// the node that read its fields: replication's siteOf, openSession and
// flushKeyspace, called once the registry reports the replicated sites
// (in its Start, last here) or the replication listener serves (after
// startSites); the registry's OnRemove, called from its scan (Start);
// and its Params, called when a site loads. A client of the MySQL front
// or the KV store can load a site as soon as that service has started,
// so for the moment between the two starts a site loaded then could
// miss the other's variables, as before; PHP itself cannot, HTTP starts
// last.
func (n *node) startSites(ctx context.Context) (*sites.Registry, error) {
	cfg := n.cfg
	if os.Geteuid() != 0 {
		n.log.Warn("ephpm is not root: PHP runs as ephpm's own user, so sites are not isolated from each other's files or from site.toml; run as root to host tenants")
	}
	if cfg.DB.SQLite.Proxy.Enabled || cfg.ReplicationEnabled() {
		n.pool = n.newDBPool(sqlite.PoolConfig{})
		n.defer_(func() { n.pool.Close() })
		n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ephpm_db_open_databases", Help: "Site databases open now."},
			func() float64 { return float64(n.pool.Len()) }))
		if cfg.ReplicationEnabled() {
			if err := n.newReplication(); err != nil {
				return nil, err
			}
		}
	}
	r, err := n.newRegistry()
	if err != nil {
		return nil, err
	}
	n.sites = r
	if n.pool != nil {
		n.dir = &sites.Directory{R: r, Pool: n.pool}
		if n.repl != nil {
			n.dir.Forward = n.repl.Forwarder
		}
	}
	if cfg.DB.SQLite.Proxy.Enabled {
		sock := cfg.DB.SQLite.Proxy.Socket
		if sock == "" {
			sock = filepath.Join(n.sockDir, "mysql.sock")
		}
		srv, ep, err := startMySQL(ctx, cfg, sock, n.dir, n.log, n.reg)
		if err != nil {
			return nil, err
		}
		n.defer_(func() { srv.Close() })
		n.mysql, n.env.DB = srv, &ep
	}
	if cfg.KV.Enabled {
		kvs, ep, err := startKV(ctx, cfg, n.sockDir, r.KVAuth, n.log, n.reg)
		if err != nil {
			return nil, err
		}
		n.defer_(func() { kvs.Close() })
		n.kvs, n.env.KV = kvs, &ep
	}
	if cfg.Cluster.Enabled {
		if err := n.startCluster(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	if n.place != nil {
		// Every cluster site has its role (read-only until the directory
		// is caught up) before anything can open its database writable.
		if err := n.place.Sync(ctx); err != nil {
			return nil, err
		}
	}
	n.defer_(func() { r.Close() })
	return r, nil
}

// newRegistry builds the site registry of the running node.
func (n *node) newRegistry() (*sites.Registry, error) {
	if n.cfg.PHP.Isolation != "pool" {
		return n.newRegistryWith(sites.SharedPHP(n.php))
	}
	p, err := phpfpm.NewPools(phpfpm.PoolsConfig{
		RuntimeDir: filepath.Join(n.runDir, "pools"),
		Workers:    n.cfg.PHP.PoolWorkers,
		Idle:       n.cfg.PHP.PoolIdle.D(),
		Logger:     n.log.WithGroup("pools"),
	})
	if err != nil {
		return nil, err
	}
	n.defer_(func() { p.Close() })
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ephpm_php_site_pools", Help: "Per-site php-fpm pools running now."},
		func() float64 { return float64(p.Len()) }))
	return n.newRegistryWith(sites.PoolPHP(p, n.cfg))
}

// newRegistryWith builds a registry with a given runtime picker (the
// offline CLI commands pass one that starts nothing).
func (n *node) newRegistryWith(php func(*sites.Site) (httpd.PHP, error)) (*sites.Registry, error) {
	cfg := n.cfg
	dir, err := filepath.Abs(cfg.Server.SitesDir)
	if err != nil {
		return nil, err
	}
	dd, err := dataDir(cfg)
	if err != nil {
		return nil, err
	}
	sec, err := secret(filepath.Join(dd, "node-secret"))
	if err != nil {
		return nil, err
	}
	dbDir := cfg.DB.SQLite.Dir
	if dbDir == "" {
		dbDir = filepath.Join(dd, "sites")
	}
	// The node's value of every directive a site may set: sent with the
	// requests of sites that do not set it.
	defaults, err := phpfpm.QueryINI(cfg.PHP.FPMBinary, config.SiteINI)
	if err != nil {
		return nil, err
	}
	for k, v := range n.nodeINI() {
		if config.SiteINIAllowed(k) {
			defaults[k] = v
		}
	}
	var def *httpd.Site
	if cfg.Server.DocumentRoot != "" {
		root, err := cfg.Root()
		if err != nil {
			return nil, err
		}
		def = &httpd.Site{Name: "default", Root: root, IndexFiles: cfg.Server.IndexFiles,
			Fallback: cfg.Server.Fallback, CacheControl: cfg.Server.Static.CacheControl, PHP: n.php}
	}
	sc := sites.Config{
		Global:      cfg,
		Dir:         dir,
		Default:     def,
		StateDir:    filepath.Join(dd, "state"),
		DBDir:       dbDir,
		Secret:      []byte(sec),
		PHPDefaults: defaults,
		PHPUser:     n.phpUser.UID,
		PHPGroup:    n.phpUser.GID,
		Logger:      n.log.WithGroup("sites"),
		PHP:         php,
		Params:      n.siteParams,
	}
	if cfg.KV.Enabled {
		sc.OnRemove = n.dropKeyspace
	}
	if m := n.repl; m != nil {
		sc.Route = m.Route
		sc.OnReplicated = func(list []sites.Replicated) { m.SetSites(replicationSites(list)) }
		if cfg.Cluster.Enabled {
			// Placement decides the roles from the directory; it starts
			// before the registry reports (startCluster).
			sc.OnReplicated = func(list []sites.Replicated) { n.place.SetLocal(list) }
		}
	}
	return sites.New(sc)
}

// siteParams is the registry's Params: the EPHPM_* variables of a site.
func (n *node) siteParams(s *sites.Site) []fastcgi.Param {
	return n.env.Params(phpenv.Account{
		DBName: s.DBName, DBUser: s.DBUser, DBPassword: s.DBPassword,
		KVUser: s.Name, KVPassword: s.KVPassword,
	})
}

// dropKeyspace is the registry's OnRemove (with the KV store): a deleted
// site's cached objects go with it.
func (n *node) dropKeyspace(site string) { n.kvs.DropKeyspace(site) }

// replicationSites are the registry's replicated sites as replication
// takes them.
func replicationSites(list []sites.Replicated) []replication.SiteConfig {
	var out []replication.SiteConfig
	for _, s := range list {
		out = append(out, replication.SiteConfig{Name: s.Name, DBPath: s.DBPath, Role: s.Role, PrimaryURL: s.PrimaryURL})
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func splitAddr(a string) (string, string, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", "", fmt.Errorf("mysql_listen %q: %w", a, err)
	}
	if h == "" || h == "0.0.0.0" {
		h = "127.0.0.1"
	}
	return h, p, nil
}
