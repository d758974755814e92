package phpfpm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/internal/lazypool"
)

// Defaults for per-site pools ([php] isolation = "pool").
const (
	// DefaultPoolWorkers is each site's pm.max_children: small, since
	// the pool exists only while the site is busy.
	DefaultPoolWorkers = 2
	// DefaultPoolIdle stops a site's php-fpm after this long unused.
	DefaultPoolIdle = 5 * time.Minute
	// DefaultPoolStartTimeout bounds the first request's wait for its
	// pool.
	DefaultPoolStartTimeout = 15 * time.Second
	// minPoolReap is the shortest interval between two looks for idle
	// pools.
	minPoolReap = 100 * time.Millisecond
)

// PoolsConfig configures Pools. Zero fields get defaults in NewPools.
type PoolsConfig struct {
	// RuntimeDir holds each pool's runtime dir, RuntimeDir/<site>.<n>: a
	// fresh one per start, since a pool being stopped may still hold its
	// socket while the site's next one starts. Required.
	RuntimeDir string
	// Workers is each pool's pm.max_children (and its FastCGI client's
	// connection limit); default DefaultPoolWorkers.
	Workers int
	// Idle stops a pool nobody used for this long; default
	// DefaultPoolIdle.
	Idle time.Duration
	// StartTimeout bounds a start; default DefaultPoolStartTimeout.
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Pools runs one php-fpm master per site, started by the site's first
// request and stopped when it has been idle: an idle site costs no
// process.
type Pools struct {
	cfg   PoolsConfig
	log   *slog.Logger
	gen   atomic.Int64 // numbers the runtime dirs
	pools *lazypool.Pool[*sitePool]
}

// sitePool is one running php-fpm master and its FastCGI client.
type sitePool struct {
	dir string
	sup *Supervisor
	php *fastcgi.Client
}

// NewPools returns the pools of a node and starts the goroutine that
// stops idle ones; Close stops it and every pool.
func NewPools(cfg PoolsConfig) (*Pools, error) {
	if cfg.RuntimeDir == "" {
		return nil, errors.New("phpfpm: PoolsConfig.RuntimeDir is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultPoolWorkers
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultPoolIdle
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultPoolStartTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pools{cfg: cfg, log: cfg.Logger}
	p.pools = lazypool.New(lazypool.Config[*sitePool]{
		Close:    p.stop,
		Idle:     cfg.Idle,
		Interval: max(cfg.Idle/4, minPoolReap),
	})
	return p, nil
}

// Spec returns the Config of a site's php-fpm (binary, user, ini,
// limits); Pools sets RuntimeDir, Workers and Logger. It is called at
// each start of the site's pool, on the goroutine of the request that
// starts it, which waits: it may block (e.g. to prepare the site's
// directories for its user) and must not call the site's runtime.
type Spec func() (Config, error)

// Site returns the PHP runtime of a site: requests through it start the
// site's pool with spec if it is not running, and keep it running while
// a response is being read. Runtimes of the same name share one pool
// (the first to start it gives the Spec).
func (p *Pools) Site(name string, spec Spec) *SitePHP {
	return &SitePHP{p: p, name: name, spec: spec}
}

// Len is the number of pools running or starting.
func (p *Pools) Len() int { return p.pools.Len() }

// Close stops every pool (after the start of those starting) and the
// idle reaper.
func (p *Pools) Close() error { return p.pools.Close() }

func (p *Pools) start(name string, spec Spec) (*sitePool, error) {
	dir := filepath.Join(p.cfg.RuntimeDir, fmt.Sprintf("%s.%d", name, p.gen.Add(1)))
	cfg, err := spec()
	if err != nil {
		return nil, err
	}
	cfg.RuntimeDir, cfg.Workers, cfg.Logger = dir, p.cfg.Workers, p.log.With("site", name)
	sup, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("site %s pool: %w", name, err)
	}
	// Not the request's context: the pool outlives the request that
	// started it, and serves the others waiting for it.
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StartTimeout)
	defer cancel()
	if err := sup.Start(ctx); err != nil {
		return nil, fmt.Errorf("site %s pool: %w", name, err)
	}
	p.log.Info("site pool started", "site", name, "workers", p.cfg.Workers, "user", cfg.User)
	php := fastcgi.NewClient(fastcgi.Config{Network: "unix", Address: sup.Socket(), MaxConns: p.cfg.Workers, MaxIdle: p.cfg.Workers})
	return &sitePool{dir: dir, sup: sup, php: php}, nil
}

// stop is the lazypool's Close: it stops a site's php-fpm.
func (p *Pools) stop(name string, sp *sitePool, why lazypool.Reason) error {
	if why == lazypool.Idle {
		p.log.Info("site pool stopped: idle", "site", name)
	}
	sp.php.Close()
	err := sp.sup.Close()
	if rerr := os.RemoveAll(sp.dir); err == nil {
		err = rerr
	}
	return err
}

// SitePHP is a site's PHP runtime in pool mode (httpd.PHP).
type SitePHP struct {
	p    *Pools
	name string
	spec Spec
}

// Do sends a request to the site's pool, starting it if needed. The pool
// is not stopped while the response body is open.
func (s *SitePHP) Do(ctx context.Context, params []fastcgi.Param, body io.Reader) (*fastcgi.Response, error) {
	sp, release, err := s.p.pools.Acquire(ctx, s.name, func(context.Context, string) (*sitePool, error) {
		return s.p.start(s.name, s.spec)
	})
	if err != nil {
		return nil, err
	}
	resp, err := sp.php.Do(ctx, params, body)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: release}
	return resp, nil
}

// doneBody runs done once when the response body is closed.
type doneBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// Buffered keeps streaming flushes working through the wrapper.
func (b *doneBody) Buffered() int {
	if bb, ok := b.ReadCloser.(interface{ Buffered() int }); ok {
		return bb.Buffered()
	}
	return 0
}
