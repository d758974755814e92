package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/phpfpm"
	"github.com/ephpm/ephpm/sites"
)

// Defaults for per-site pools ([php] isolation = "pool").
const (
	// DefaultPoolWorkers is each site's pm.max_children: small, since
	// the pool exists only while the site is busy.
	DefaultPoolWorkers = 2
	// DefaultPoolIdle stops a site's php-fpm after this long unused.
	DefaultPoolIdle = 5 * time.Minute
	// poolStartTimeout bounds the first request's wait for its pool.
	poolStartTimeout = 15 * time.Second
)

// pools runs one php-fpm per site, started on the site's first request
// and stopped when it has been idle; an idle site costs no process.
type pools struct {
	cfg     *config.Config
	runDir  string
	log     *slog.Logger
	idle    time.Duration
	workers int

	mu    sync.Mutex
	byKey map[string]*sitePool
	gen   atomic.Int64 // a fresh runtime dir per start: a pool being
	// reaped may still hold its socket while the site's next one starts

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type sitePool struct {
	ready chan struct{} // closed once sup/client/err are set
	dir   string
	sup   *phpfpm.Supervisor
	php   *fastcgi.Client
	err   error
	used  atomic.Int64
	busy  atomic.Int32
}

func newPools(cfg *config.Config, runDir string, log *slog.Logger) *pools {
	p := &pools{cfg: cfg, runDir: runDir, log: log.WithGroup("pools"), idle: DefaultPoolIdle,
		workers: DefaultPoolWorkers, byKey: map[string]*sitePool{}}
	if cfg.PHP.PoolIdle > 0 {
		p.idle = cfg.PHP.PoolIdle.D()
	}
	if cfg.PHP.PoolWorkers > 0 {
		p.workers = cfg.PHP.PoolWorkers
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go p.reap(ctx)
	return p
}

// reap stops pools idle longer than p.idle.
func (p *pools) reap(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(max(p.idle/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-p.idle).UnixNano()
		var stop []*sitePool
		p.mu.Lock()
		for k, sp := range p.byKey {
			select {
			case <-sp.ready:
			default:
				continue // still starting
			}
			if sp.busy.Load() == 0 && sp.used.Load() < cutoff {
				delete(p.byKey, k)
				stop = append(stop, sp)
				p.log.Info("site pool stopped: idle", "site", k)
			}
		}
		p.mu.Unlock()
		for _, sp := range stop {
			sp.close()
		}
	}
}

func (sp *sitePool) close() {
	if sp.php != nil {
		sp.php.Close()
	}
	if sp.sup != nil {
		sp.sup.Close()
	}
	if sp.dir != "" {
		os.RemoveAll(sp.dir)
	}
}

// Close stops every pool.
func (p *pools) Close() {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	all := p.byKey
	p.byKey = map[string]*sitePool{}
	p.mu.Unlock()
	for _, sp := range all {
		<-sp.ready
		sp.close()
	}
}

// Len is the number of running site pools.
func (p *pools) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byKey)
}

// get returns the site's running pool, starting it if needed.
func (p *pools) get(ctx context.Context, s *sites.Site) (*sitePool, error) {
	p.mu.Lock()
	sp := p.byKey[s.Name]
	starter := sp == nil
	if starter {
		sp = &sitePool{ready: make(chan struct{})}
		p.byKey[s.Name] = sp
	}
	p.mu.Unlock()
	if starter {
		sp.dir = filepath.Join(p.runDir, "pools", fmt.Sprintf("%s.%d", s.Name, p.gen.Add(1)))
		sp.sup, sp.php, sp.err = p.start(s, sp.dir)
		close(sp.ready)
		if sp.err != nil {
			p.mu.Lock()
			delete(p.byKey, s.Name)
			p.mu.Unlock()
		}
	}
	select {
	case <-sp.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return sp, sp.err
}

func (p *pools) start(s *sites.Site, dir string) (*phpfpm.Supervisor, *fastcgi.Client, error) {
	disable := p.cfg.PHP.DisableFunctions
	if s.Conf.DisableFunctions != nil {
		disable = s.Conf.DisableFunctions
	}
	ini := map[string]string{
		"post_max_size":       p.cfg.Server.Request.MaxBodySize.PHPString(),
		"upload_max_filesize": p.cfg.Server.Request.MaxBodySize.PHPString(),
		"open_basedir":        s.Dir + "/:" + s.StateDir + "/",
		"session.save_path":   filepath.Join(s.StateDir, "sessions"),
		"upload_tmp_dir":      filepath.Join(s.StateDir, "tmp"),
		"sys_temp_dir":        filepath.Join(s.StateDir, "tmp"),
	}
	if len(disable) > 0 {
		ini["disable_functions"] = strings.Join(disable, ",")
	}
	for k, v := range s.Conf.IniOverrides {
		ini[k] = v
	}
	user := p.cfg.PHP.User
	if s.Conf.RunAs != "" {
		user = s.Conf.RunAs
		// The site's own user owns its tmp and session dirs.
		if err := chownTree(s.StateDir, user); err != nil {
			return nil, nil, fmt.Errorf("site %s: run_as %q: %w", s.Name, user, err)
		}
	}
	sup, err := phpfpm.New(phpfpm.Config{
		Binary:           p.cfg.PHP.FPMBinary,
		RuntimeDir:       dir,
		Workers:          p.workers,
		User:             user,
		MemoryLimit:      s.Conf.MemoryLimit.PHPString(),
		MaxExecutionTime: s.Conf.MaxExecutionTime.D(),
		INI:              ini,
		Logger:           p.log.With("site", s.Name),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("site %s pool: %w", s.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), poolStartTimeout)
	defer cancel()
	if err := sup.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("site %s pool: %w", s.Name, err)
	}
	p.log.Info("site pool started", "site", s.Name, "workers", p.workers, "user", user)
	return sup, fastcgi.NewClient(fastcgi.Config{Network: "unix", Address: sup.Socket(), MaxConns: p.workers, MaxIdle: p.workers}), nil
}

// poolPHP is a site's runtime in pool mode: it starts the pool lazily.
type poolPHP struct {
	p    *pools
	site *sites.Site
}

var _ httpd.PHP = poolPHP{}

// Do implements httpd.PHP.
func (pp poolPHP) Do(ctx context.Context, params []fastcgi.Param, body io.Reader) (*fastcgi.Response, error) {
	sp, err := pp.p.get(ctx, pp.site)
	if err != nil {
		return nil, err
	}
	sp.used.Store(time.Now().UnixNano())
	sp.busy.Add(1)
	resp, err := sp.php.Do(ctx, params, body)
	if err != nil {
		sp.busy.Add(-1)
		return nil, err
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: func() {
		sp.used.Store(time.Now().UnixNano())
		sp.busy.Add(-1)
	}}
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

// chownTree gives the site's state directories (not what is in them) to
// the named user (as root), without following a symlink the site's PHP
// may have put in their place.
func chownTree(dir, name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := osuser.Lookup(name)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	root, site := filepath.Split(filepath.Clean(dir))
	for _, rel := range []string{site, site + "/tmp", site + "/sessions"} {
		if _, err := sites.MkdirBeneath(root, rel, 0o700, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
