package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/internal/phpenv"
	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/sqlite"
	"github.com/ephpm/ephpm/sqlxlate"
)

// dataDir is where databases and secrets live: [server] data_dir, else
// /var/lib/ephpm for root, else the user's XDG data dir.
func dataDir(cfg *config.Config) (string, error) {
	d := cfg.Server.DataDir
	if d == "" {
		if os.Geteuid() == 0 {
			d = "/var/lib/ephpm"
		} else if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			d = filepath.Join(x, "ephpm")
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("data dir: %w", err)
			}
			d = filepath.Join(home, ".local", "share", "ephpm")
		}
	}
	d, err := filepath.Abs(d)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	// As root, PHP runs as another user and must reach its own state
	// dirs (<data_dir>/state/<site>/): traverse-only, as the runtime dir.
	// What is inside protects itself (node-secret 0600, databases and
	// each site's dirs 0700). Bits are added, so a data dir left 0700 by
	// an earlier version is repaired.
	if os.Geteuid() == 0 {
		st, err := os.Stat(d)
		if err != nil {
			return "", fmt.Errorf("data dir: %w", err)
		}
		if st.Mode().Perm()&0o011 != 0o011 {
			if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
				return "", fmt.Errorf("data dir: %w", err)
			}
		}
	}
	return d, nil
}

// secret returns the persisted secret in file, creating it on first use.
func secret(file string) (string, error) {
	if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 18)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	s := hex.EncodeToString(buf)
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("write secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		return "", fmt.Errorf("write secret: %w", err)
	}
	return s, nil
}

// startDB serves the single site's database behind the MySQL wire
// protocol, through a sqlite.Pool as in sites mode, and returns the
// account PHP logs in with.
func (n *node) startDB(ctx context.Context, root string) (phpenv.Account, error) {
	cfg := n.cfg
	dd, err := dataDir(cfg)
	if err != nil {
		return phpenv.Account{}, err
	}
	p := cfg.DB.SQLite.Proxy
	path := cfg.DB.SQLite.Path
	if path == "" {
		// One database per document root, outside it.
		sum := sha256.Sum256([]byte(root))
		path = filepath.Join(dd, "db", fmt.Sprintf("%s-%s.db", p.Database, hex.EncodeToString(sum[:4])))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return phpenv.Account{}, fmt.Errorf("database dir: %w", err)
	}
	if rel, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(rel, "..") {
		n.log.Warn("the database file is inside the document root (it is never served, but keep it outside)", "path", path)
	}
	password := p.Password
	if password == "" {
		if password, err = secret(filepath.Join(dd, "mysql-password")); err != nil {
			return phpenv.Account{}, err
		}
	}
	pool := n.newDBPool(sqlite.PoolConfig{})
	n.defer_(func() { pool.Close() })
	sock := p.Socket
	if sock == "" {
		sock = filepath.Join(n.sockDir, "mysql.sock")
	}
	open := func(ctx context.Context) (*sqlite.DB, func(), error) { return pool.Acquire(ctx, path) }
	srv, ep, err := startMySQL(ctx, cfg, sock,
		mysqlwire.StaticDirectory{p.User: {User: p.User, Password: password, Database: p.Database, Open: open}}, n.log, n.reg)
	if err != nil {
		return phpenv.Account{}, err
	}
	n.defer_(func() { srv.Close() })
	n.env.DB = &ep
	n.log.Info("database", "path", path, "mysql", p.MySQLListen, "socket", sock, "user", p.User, "database", p.Database)
	return phpenv.Account{DBName: p.Database, DBUser: p.User, DBPassword: password}, nil
}

// newDBPool is the pool of the node's databases (the single site's, or
// every site's), with hooks from pc.
func (n *node) newDBPool(pc sqlite.PoolConfig) *sqlite.Pool {
	pc.Template = sqlite.Config{Logger: n.log.WithGroup("sqlite"), MaxLength: int(n.cfg.DB.SQLite.MaxValueSize)}
	pc.IdleClose = n.cfg.DB.SQLite.IdleClose.D()
	return sqlite.NewPool(pc)
}

// setSQLLimits applies the process-wide bounds of SQL statements: the
// longest value the Go SQL functions build (the databases' own limit is
// set per database) and SQLite's heap.
func setSQLLimits(cfg *config.Config, log *slog.Logger) {
	sqlxlate.SetMaxLength(int(cfg.DB.SQLite.MaxValueSize))
	if err := sqlite.SetHeapLimit(int64(cfg.DB.SQLite.MemoryLimit)); err != nil {
		log.Warn("SQLite's heap is not bounded", "err", err)
	}
}

// startMySQL starts the MySQL front over a directory of accounts.
func startMySQL(ctx context.Context, cfg *config.Config, sock string, dir mysqlwire.Directory, log *slog.Logger, reg prometheus.Registerer) (*mysqlwire.Server, phpenv.Endpoint, error) {
	p := cfg.DB.SQLite.Proxy
	srv, err := mysqlwire.New(mysqlwire.Config{
		Listen: p.MySQLListen, Socket: sock, AllowRemote: p.AllowRemote,
		// Access is by password, as with MySQL; PHP runs as another user.
		SocketMode: 0o666,
		Sites:      dir, Logger: log.WithGroup("mysql"), Metrics: reg,
		AuthTimeout:      p.AuthTimeout.D(),
		StatementTimeout: cfg.DB.SQLite.StatementTimeout.D(),
		MaxResultSize:    int(cfg.DB.SQLite.MaxResultSize),
	})
	if err != nil {
		return nil, phpenv.Endpoint{}, err
	}
	// The front outlives the shutdown signal: requests draining after
	// SIGTERM still need their database. The node's Close, after the
	// drain, stops it and interrupts the statements still running.
	if err := srv.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, phpenv.Endpoint{}, fmt.Errorf("start mysql front: %w", err)
	}
	return srv, phpenv.EndpointOf(srv.Addr(), sock), nil
}
