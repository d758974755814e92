// Package sites maps host names to sites: each directory of sites_dir is
// a site named by its domain, with an optional site.toml. Sites appear
// and disappear with their directories; nothing is held for a site that
// is idle beyond a small cache entry.
package sites

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/httpd"
)

// Defaults for the registry.
const (
	// DefaultRecheck is how long a cached site is trusted before its
	// directory and site.toml are looked at again.
	DefaultRecheck = time.Second
	// DefaultIdle drops a cached site nobody asked for this long.
	DefaultIdle = 10 * time.Minute
	// DefaultScanInterval refreshes the alias index from every site.toml.
	DefaultScanInterval = 2 * time.Second
	// SiteFile is the per-site settings file, never served.
	SiteFile = "site.toml"
)

// ErrNoSite means no site (and no default document root) serves a host.
var ErrNoSite = errors.New("no such site")

// Config configures a Registry.
type Config struct {
	Global   *config.Config
	Dir      string      // sites_dir, absolute
	Default  *httpd.Site // served when no site matches; nil = 404
	StateDir string      // per-site tmp and session dirs: StateDir/<site>/
	DBDir    string      // per-site databases: DBDir/<site>.db
	Secret   []byte      // derives per-site credentials
	// PHP picks the runtime for a site (the shared pool, or its own).
	PHP func(s *Site) (httpd.PHP, error)
	// Params adds node-level variables for a site's PHP (EPHPM_DB_HOST, ...).
	Params func(s *Site) []fastcgi.Param
	// PHPUser owns the per-site state dirs (the pool user, when root).
	PHPUser  int
	PHPGroup int
	// OnRemove runs when a site's directory is gone (drop its cache keyspace).
	OnRemove func(name string)
	// Route, if set, gives a replicated site's HTTP hook (replicas send
	// writes to the primary).
	Route  func(name string) func(http.ResponseWriter, *http.Request) bool
	Logger *slog.Logger
}

// Site is one site as the node knows it.
type Site struct {
	Name     string // the directory name: a normalized host
	Dir      string // its document root
	StateDir string
	Conf     *config.Site
	Err      error // site.toml is broken: the site answers 503
	HTTP     *httpd.Site

	DBUser, DBPassword, DBName, DBPath string
	KVPassword                         string

	checked  atomic.Int64 // unix nanos of the last disk check
	used     atomic.Int64
	tomlMod  time.Time
	tomlSize int64
}

// Registry resolves hosts to sites.
type Registry struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex
	sites   map[string]*Site
	aliases map[string]string // alias -> site name
	// scanned remembers each site.toml's aliases by its size and mtime,
	// so a scan re-reads only the files that changed.
	scanned map[string]scanEntry
	present map[string]bool // site dirs at the last scan
	// loading serializes the first load of a site.
	loadMu sync.Mutex

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a registry; Start runs its background scan.
func New(cfg Config) (*Registry, error) {
	if cfg.Dir == "" || cfg.Global == nil {
		return nil, errors.New("sites: Dir and Global are required")
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("sites: secret too short")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{cfg: cfg, log: cfg.Logger, sites: map[string]*Site{}, aliases: map[string]string{}}, nil
}

// Start builds the alias index and keeps it fresh; it also drops idle
// cache entries.
func (r *Registry) Start(ctx context.Context) error {
	r.scan()
	ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(DefaultScanInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.scan()
				r.evictIdle(time.Now().Add(-DefaultIdle))
			}
		}
	}()
	return nil
}

// Close stops the background scan.
func (r *Registry) Close() error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	return nil
}

type scanEntry struct {
	mod     time.Time
	size    int64
	aliases []string
}

// scan reads the aliases of every site.toml (only those that changed
// since the last scan). It loads no site: idle sites stay unloaded.
func (r *Registry) scan() {
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		r.log.Warn("scan sites_dir", "dir", r.cfg.Dir, "err", err)
		return
	}
	idx := map[string]string{}
	seen := make(map[string]scanEntry, len(r.scanned))
	present := make(map[string]bool, len(ents))
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		present[name] = true
		st, err := os.Stat(filepath.Join(r.cfg.Dir, name, SiteFile))
		if err != nil {
			continue
		}
		se, ok := r.scanned[name]
		if !ok || !se.mod.Equal(st.ModTime()) || se.size != st.Size() {
			se = scanEntry{mod: st.ModTime(), size: st.Size()}
			if n, err := config.NormalizeHost(name); err == nil && n == name {
				if c, err := r.cfg.Global.LoadSite(name, filepath.Join(r.cfg.Dir, name, SiteFile)); err == nil {
					se.aliases = c.Aliases
				}
			}
		}
		seen[name] = se
		for _, a := range se.aliases {
			if a, err := config.NormalizeHost(a); err == nil && a != name {
				idx[a] = name
			}
		}
	}
	r.scanned = seen
	// Gone: seen by the last scan, or served since, and not there now.
	gone := map[string]bool{}
	for name := range r.present {
		if !present[name] {
			gone[name] = true
		}
	}
	r.present = present
	r.mu.Lock()
	r.aliases = idx
	for name := range r.sites {
		if !present[name] {
			gone[name] = true
		}
	}
	for name := range gone {
		delete(r.sites, name)
	}
	r.mu.Unlock()
	for name := range gone {
		r.log.Info("site removed", "site", name)
		if r.cfg.OnRemove != nil {
			r.cfg.OnRemove(name)
		}
	}
}

func (r *Registry) evictIdle(cutoff time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, s := range r.sites {
		if s.used.Load() < cutoff.UnixNano() {
			delete(r.sites, name)
		}
	}
}

// Site implements httpd.SiteResolver.
func (r *Registry) Site(req *http.Request) (*httpd.Site, error) {
	name, err := config.NormalizeHost(req.Host)
	if err != nil {
		return nil, &httpd.Error{Status: http.StatusBadRequest, Msg: "bad Host header", Err: err}
	}
	s, err := r.Get(name)
	if errors.Is(err, ErrNoSite) {
		if r.cfg.Default != nil {
			return r.cfg.Default, nil
		}
		return nil, &httpd.Error{Status: http.StatusNotFound, Msg: "no site for host " + name}
	}
	if err != nil {
		return nil, &httpd.Error{Status: http.StatusServiceUnavailable, Msg: "site unavailable", Err: err}
	}
	if s.Err != nil {
		return nil, &httpd.Error{Status: http.StatusServiceUnavailable, Msg: "site configuration is broken", Err: s.Err}
	}
	return s.HTTP, nil
}

// Get returns the site for a normalized host name or alias.
func (r *Registry) Get(name string) (*Site, error) {
	now := time.Now()
	r.mu.RLock()
	s := r.sites[name]
	if s == nil {
		if target, ok := r.aliases[name]; ok {
			s = r.sites[target]
			name = target
		}
	}
	r.mu.RUnlock()
	if s != nil && now.UnixNano()-s.checked.Load() < int64(DefaultRecheck) {
		s.used.Store(now.UnixNano())
		return s, nil
	}
	return r.load(name, s, now)
}

// load (re)reads a site from disk when it is new or its check expired.
func (r *Registry) load(name string, old *Site, now time.Time) (*Site, error) {
	if strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
		return nil, ErrNoSite
	}
	dir := filepath.Join(r.cfg.Dir, name)
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		// The scan drops the entry and reports the removal.
		return nil, ErrNoSite
	}
	tomlPath := filepath.Join(dir, SiteFile)
	var tmod time.Time
	var tsize int64 = -1
	if tst, err := os.Stat(tomlPath); err == nil {
		tmod, tsize = tst.ModTime(), tst.Size()
	}
	if old != nil && old.tomlMod.Equal(tmod) && old.tomlSize == tsize {
		old.checked.Store(now.UnixNano())
		old.used.Store(now.UnixNano())
		return old, nil
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	s := &Site{Name: name, Dir: dir, tomlMod: tmod, tomlSize: tsize}
	s.checked.Store(now.UnixNano())
	s.used.Store(now.UnixNano())
	conf, err := r.cfg.Global.LoadSite(name, tomlPath)
	if err != nil {
		s.Err = err
		r.log.Error("site.toml is broken: the site answers 503 until it is fixed", "site", name, "err", err)
	} else if err := r.prepare(s, conf); err != nil {
		s.Err = err
		r.log.Error("site cannot be served", "site", name, "err", err)
	} else if old == nil {
		r.log.Debug("site loaded", "site", name)
	}
	r.mu.Lock()
	r.sites[name] = s
	r.mu.Unlock()
	return s, nil
}

// prepare derives everything a site needs from its settings.
func (r *Registry) prepare(s *Site, conf *config.Site) error {
	s.Conf = conf
	s.StateDir = filepath.Join(r.cfg.StateDir, s.Name)
	for _, d := range []string{s.StateDir, filepath.Join(s.StateDir, "tmp"), filepath.Join(s.StateDir, "sessions")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		if r.cfg.PHPUser > 0 {
			_ = os.Chown(d, r.cfg.PHPUser, r.cfg.PHPGroup)
		}
	}
	s.DBUser = s.Name
	s.DBName = s.Name
	s.DBPassword = r.derive("mysql", s.Name)
	s.KVPassword = r.derive("kv", s.Name)
	s.DBPath = conf.DBPath
	if s.DBPath == "" {
		s.DBPath = filepath.Join(r.cfg.DBDir, s.Name+".db")
	} else {
		if !filepath.IsAbs(s.DBPath) {
			s.DBPath = filepath.Join(s.Dir, s.DBPath)
		}
		s.DBPath = filepath.Clean(s.DBPath)
		// A site.toml may move its own database, never onto another's.
		own := filepath.Join(r.cfg.DBDir, s.Name)
		if !within(s.DBPath, s.Dir) && !within(s.DBPath, own) {
			return fmt.Errorf("site %s: [db.sqlite] path %q must be inside the site's directory or %s/", s.Name, conf.DBPath, own)
		}
	}
	hs := &httpd.Site{
		Name:         s.Name,
		Root:         s.Dir,
		IndexFiles:   conf.IndexFiles,
		Fallback:     conf.Fallback,
		CacheControl: conf.CacheControl,
	}
	php, err := r.cfg.PHP(s)
	if err != nil {
		return err
	}
	hs.PHP = php
	hs.Params = r.params(s)
	if r.cfg.Route != nil && conf.Replication.Role != "" {
		hs.Route = r.cfg.Route(s.Name)
	}
	s.HTTP = hs
	return nil
}

// params are the per-site CGI variables: credentials and the PHP
// settings that isolate the site (sent with every request, so a worker
// that served another site never keeps that site's settings).
func (r *Registry) params(s *Site) []fastcgi.Param {
	var ini strings.Builder
	tmp := filepath.Join(s.StateDir, "tmp")
	fmt.Fprintf(&ini, "open_basedir=%s/:%s/\n", s.Dir, s.StateDir)
	fmt.Fprintf(&ini, "session.save_path=%s\n", filepath.Join(s.StateDir, "sessions"))
	fmt.Fprintf(&ini, "upload_tmp_dir=%s\nsys_temp_dir=%s\n", tmp, tmp)
	fmt.Fprintf(&ini, "memory_limit=%s\n", s.Conf.MemoryLimit.PHPString())
	fmt.Fprintf(&ini, "max_execution_time=%d\n", int(s.Conf.MaxExecutionTime.D().Seconds()))
	keys := make([]string, 0, len(s.Conf.IniOverrides))
	for k := range s.Conf.IniOverrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&ini, "%s=%s\n", k, s.Conf.IniOverrides[k])
	}
	p := []fastcgi.Param{{Name: "PHP_ADMIN_VALUE", Value: ini.String()}}
	if r.cfg.Params != nil {
		p = append(p, r.cfg.Params(s)...)
	}
	return p
}

// derive makes a per-site secret from the node secret.
func (r *Registry) derive(purpose, name string) string {
	m := hmac.New(sha256.New, r.cfg.Secret)
	m.Write([]byte(purpose + "\x00" + name))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// List returns every site directory, loaded (broken ones with Err set).
func (r *Registry) List() ([]*Site, error) {
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return nil, err
	}
	var out []*Site
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		if n, err := config.NormalizeHost(name); err != nil || n != name {
			out = append(out, &Site{Name: name, Dir: filepath.Join(r.cfg.Dir, name), Err: fmt.Errorf("directory name %q is not a valid host name", name)})
			continue
		}
		s, err := r.Get(name)
		if err != nil {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// KVAuth maps a site's KV credentials to its keyspace.
func (r *Registry) KVAuth(user, pass string) (string, int64, bool) {
	s, err := r.Get(user)
	if err != nil || s.Err != nil || !hmac.Equal([]byte(pass), []byte(s.KVPassword)) {
		return "", 0, false
	}
	return s.Name, s.Conf.KVQuota, true
}

// within reports whether p is inside dir (not dir itself).
func within(p, dir string) bool {
	return strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator))
}
