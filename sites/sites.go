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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/fastcgi"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/internal/task"
	"github.com/ephpm/ephpm/phpfpm"
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
	// DefaultReplicatedInterval is how often Config.OnReplicated is told
	// the replicated sites: a site.toml's new role takes effect within it.
	DefaultReplicatedInterval = 2 * time.Second
	// SiteFile is the per-site settings file, never served.
	SiteFile = "site.toml"
)

// ErrNoSite means no site (and no default document root) serves a host.
var ErrNoSite = errors.New("no such site")

// Config configures a Registry.
//
// The hooks (PHP, Params, Route, OnRemove, OnReplicated) are fixed at
// New. PHP, Params and Route run while a site loads, under the
// registry's load lock: they must not call Get, List, SiteOf or KVAuth
// (a load would wait for itself). OnRemove and OnReplicated hold no lock
// of the registry and may call any of its methods but Close.
type Config struct {
	Global   *config.Config
	Dir      string      // sites_dir, absolute
	Default  *httpd.Site // served when no site matches; nil = 404
	StateDir string      // per-site tmp and session dirs: StateDir/<site>/
	DBDir    string      // per-site databases: DBDir/<site>.db
	Secret   []byte      // derives per-site credentials
	// PHP picks the runtime for a site (the shared pool, or its own:
	// SharedPHP, PoolPHP). Required. It is called when a site is loaded,
	// on the goroutine of the Get that loads it (which waits; one load at
	// a time), and must not block; an error makes the site answer 503.
	PHP func(s *Site) (httpd.PHP, error)
	// Params adds node-level variables for a site's PHP (EPHPM_DB_HOST,
	// ...). Called like PHP, when a site is loaded; must not block. The
	// result is kept with the site until it is loaded again.
	Params func(s *Site) []fastcgi.Param
	// PHPDefaults are the node's values of every directive a site may
	// set (config.SiteINI): sent with each request of a site that does
	// not set it, so no shared worker keeps another site's value.
	PHPDefaults map[string]string
	// PHPUser owns the per-site state dirs (the pool user, when root).
	PHPUser  int
	PHPGroup int
	// OnRemove, if set, runs when a site's directory is gone (drop its
	// cache keyspace). It is called from the scan, on Start's goroutine
	// or the registry's own, never concurrently with itself; it should
	// not block (the next scan waits for it).
	OnRemove func(name string)
	// Route, if set, gives a replicated site's HTTP hook (replicas send
	// writes to the primary). Called like PHP, when a site whose
	// site.toml has a replication role is loaded; must not block.
	Route func(name string) func(http.ResponseWriter, *http.Request) bool
	// OnReplicated, if set, is told every site whose site.toml gives it
	// a replication role (sites with a broken site.toml are left out):
	// once during Start, then every DefaultReplicatedInterval on the
	// registry's own goroutine, with the whole list each time, changed
	// or not. Calls never overlap. It may block: the next report waits,
	// the scan does not.
	OnReplicated func([]Replicated)
	Logger       *slog.Logger
}

// Replicated is a site with a replication role, as OnReplicated sees it.
type Replicated struct {
	Name       string
	DBPath     string
	Role       ephpm.Role // as in site.toml: primary or replica
	PrimaryURL string     // a replica's primary_grpc_url
	Primary    string     // the cluster form: the primary's node name
	// Settings is the whole [db.sqlite.replication] section (failover,
	// candidates, failback, sync).
	Settings config.Replication
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
	noFiles  atomic.Bool // the directory holds only site.toml (ErrNoFiles)
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
	present map[string]bool   // site dirs at the last scan
	refused map[string]string // alias -> why it is refused (logged once)
	// loading serializes the first load of a site.
	loadMu sync.Mutex

	tasks *task.Group // the scan and the replicated-sites report; nil before Start
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
	r := &Registry{cfg: cfg, log: cfg.Logger, sites: map[string]*Site{}, aliases: map[string]string{}}
	if cfg.DBDir != "" {
		// Databases open by path from many parts (replication may open a
		// site's before anything loaded it): the directory is there.
		if err := os.MkdirAll(cfg.DBDir, 0o700); err != nil {
			return nil, fmt.Errorf("sites: database dir: %w", err)
		}
	}
	if d := cfg.Default; d != nil && d.PHP != nil {
		// The fallback root is served by the same workers as the sites:
		// it carries a complete set of settings too, or it would run with
		// the open_basedir of whichever site a worker served last.
		conf, err := cfg.Global.ParseSite(DefaultName, "", d.Root, nil)
		if err != nil {
			return nil, err
		}
		sd, err := r.stateDir(DefaultName)
		if err != nil {
			return nil, err
		}
		def := *d
		def.Params = append([]fastcgi.Param{{Name: "PHP_ADMIN_VALUE", Value: r.adminValue(d.Root, sd, conf)}}, d.Params...)
		r.cfg.Default = &def
	}
	return r, nil
}

// DefaultName names the fallback document root's state directory; no
// site can have it (a host name has no "_").
const DefaultName = "_default"

// Start builds the alias index and keeps it fresh; it also drops idle
// cache entries and, with OnReplicated, reports the replicated sites.
// Its goroutines run until ctx ends or Close.
func (r *Registry) Start(ctx context.Context) error {
	r.scan()
	r.tasks = task.NewGroup(ctx)
	r.tasks.Every(DefaultScanInterval, func(context.Context) {
		r.scan()
		r.evictIdle(time.Now().Add(-DefaultIdle))
	})
	if r.cfg.OnReplicated != nil {
		r.reportReplicated()
		r.tasks.Every(DefaultReplicatedInterval, func(context.Context) { r.reportReplicated() })
	}
	return nil
}

// Close stops the registry's goroutines and waits for them.
func (r *Registry) Close() error {
	if r.tasks == nil {
		return nil
	}
	return r.tasks.Close()
}

// reportReplicated tells OnReplicated which sites replicate.
func (r *Registry) reportReplicated() {
	list, err := r.List()
	if err != nil {
		r.log.Warn("replication: cannot list sites", "err", err)
		return
	}
	var out []Replicated
	for _, s := range list {
		if s.Err != nil || s.Conf == nil || s.Conf.Replication.Role == "" && s.Conf.Replication.Primary == "" {
			continue
		}
		out = append(out, Replicated{
			Name: s.Name, DBPath: s.DBPath, Role: s.Conf.Replication.Role,
			PrimaryURL: s.Conf.Replication.PrimaryGRPCURL, Primary: s.Conf.Replication.Primary,
			Settings: s.Conf.Replication,
		})
	}
	r.cfg.OnReplicated(out)
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
	claims := map[string][]string{} // alias -> sites claiming it
	seen := make(map[string]scanEntry, len(r.scanned))
	present := make(map[string]bool, len(ents))
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		present[name] = true
		st, err := os.Lstat(filepath.Join(r.cfg.Dir, name, SiteFile))
		if err != nil {
			continue
		}
		se, ok := r.scanned[name]
		if !ok || !se.mod.Equal(st.ModTime()) || se.size != st.Size() {
			se = scanEntry{mod: st.ModTime(), size: st.Size()}
			if n, err := config.NormalizeHost(name); err == nil && n == name {
				if c, err := r.loadConf(name); err == nil {
					se.aliases = c.Aliases
				}
			}
		}
		seen[name] = se
		for _, a := range se.aliases {
			if a, err := config.NormalizeHost(a); err == nil && a != name {
				claims[a] = append(claims[a], name)
			}
		}
	}
	idx := r.aliasIndex(claims, present)
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

// aliasIndex keeps the aliases that name exactly one site and no site
// directory: an alias never takes another site's name, and a name two
// sites claim serves neither (each refusal is logged once).
func (r *Registry) aliasIndex(claims map[string][]string, present map[string]bool) map[string]string {
	idx := make(map[string]string, len(claims))
	refused := map[string]string{}
	for a, names := range claims {
		switch {
		case present[a]:
			refused[a] = fmt.Sprintf("alias %s of %s is another site's name", a, strings.Join(names, ", "))
		case len(names) > 1:
			sort.Strings(names)
			refused[a] = fmt.Sprintf("alias %s is claimed by %s", a, strings.Join(names, " and "))
		default:
			idx[a] = names[0]
		}
	}
	for a, why := range refused {
		if r.refused[a] != why {
			r.log.Warn("alias refused", "alias", a, "reason", why)
		}
	}
	r.refused = refused
	return idx
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
	if s.noFiles.Load() {
		// Never the fallback page nor another site's content.
		return nil, &httpd.Error{Status: http.StatusServiceUnavailable, Msg: ErrNoFiles.Error(), Err: ErrNoFiles, Public: true}
	}
	return s.HTTP, nil
}

// SiteOf names the site serving a Host header (a site directory or an
// alias; a site whose site.toml is broken is still that site).
func (r *Registry) SiteOf(host string) (string, bool) {
	h, err := config.NormalizeHost(host)
	if err != nil {
		return "", false
	}
	s, err := r.Get(h)
	if err != nil {
		return "", false
	}
	return s.Name, true
}

// Get returns the site for a normalized host name or alias.
func (r *Registry) Get(name string) (*Site, error) {
	now := time.Now()
	r.mu.RLock()
	s := r.sites[name]
	target, alias := r.aliases[name]
	r.mu.RUnlock()
	if s == nil && alias && !r.isSiteDir(name) {
		// A site directory of that name always wins over an alias, even
		// one created since the last scan.
		r.mu.RLock()
		s = r.sites[target]
		r.mu.RUnlock()
		name = target
	}
	if s != nil && now.UnixNano()-s.checked.Load() < int64(DefaultRecheck) {
		s.used.Store(now.UnixNano())
		return s, nil
	}
	return r.load(name, s, now)
}

func (r *Registry) isSiteDir(name string) bool {
	if strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
		return false
	}
	st, err := os.Stat(filepath.Join(r.cfg.Dir, name))
	return err == nil && st.IsDir()
}

// loadConf reads a site's site.toml the way a hosting node must: only a
// file the operator wrote (ReadSiteFile) is believed.
func (r *Registry) loadConf(name string) (*config.Site, error) {
	dir := filepath.Join(r.cfg.Dir, name)
	data, err := ReadSiteFile(dir)
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", name, err)
	}
	return r.cfg.Global.ParseSite(name, filepath.Join(dir, SiteFile), dir, data)
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
	if tst, err := os.Lstat(tomlPath); err == nil {
		tmod, tsize = tst.ModTime(), tst.Size()
	}
	if old != nil && old.tomlMod.Equal(tmod) && old.tomlSize == tsize {
		if old.noFiles.Load() {
			old.noFiles.Store(onlySiteFile(dir))
		}
		old.checked.Store(now.UnixNano())
		old.used.Store(now.UnixNano())
		return old, nil
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	s := &Site{Name: name, Dir: dir, tomlMod: tmod, tomlSize: tsize}
	s.noFiles.Store(onlySiteFile(dir))
	s.checked.Store(now.UnixNano())
	s.used.Store(now.UnixNano())
	conf, err := r.loadConf(name)
	if err != nil {
		s.Err = err
		r.log.Error("site.toml is refused or broken: the site answers 503 until it is fixed", "site", name, "err", err)
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
	sd, err := r.stateDir(s.Name)
	if err != nil {
		return err
	}
	s.StateDir = sd
	s.DBUser = s.Name
	s.DBName = s.Name
	s.DBPassword = r.derive("mysql", s.Name)
	s.KVPassword = r.derive("kv", s.Name)
	if s.DBPath, err = r.dbPath(s.Name, conf.DBPath); err != nil {
		return err
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
	// A cluster node's sites all get the hook: the directory, not
	// site.toml, says which node is primary, and it changes.
	if r.cfg.Route != nil && (conf.Replication.Role != "" || r.cfg.Global.Cluster.Enabled) {
		hs.Route = r.cfg.Route(s.Name)
	}
	s.HTTP = hs
	return nil
}

// stateDir makes StateDir/<name>/{tmp,sessions}: the state root
// traversable only (0711: PHP, an unprivileged user when ephpm is root,
// must reach its own directory but not list the others), each site's
// directories 0700 and owned by the PHP user. Made without following
// symlinks: the site's PHP owns them and could have replaced one with a
// link to /etc before ephpm chowns it.
func (r *Registry) stateDir(name string) (string, error) {
	if err := os.MkdirAll(r.cfg.StateDir, 0o711); err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	if err := os.Chmod(r.cfg.StateDir, 0o711); err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	uid, gid := -1, -1
	if r.cfg.PHPUser > 0 {
		uid, gid = r.cfg.PHPUser, r.cfg.PHPGroup
	}
	for _, rel := range []string{name, name + "/tmp", name + "/sessions"} {
		if _, err := MkdirBeneath(r.cfg.StateDir, rel, 0o700, uid, gid); err != nil {
			return "", fmt.Errorf("site %s: state dir: %w", name, err)
		}
	}
	return filepath.Join(r.cfg.StateDir, name), nil
}

// dbPath is where a site's database lives: DBDir/<site>.db, or the
// site.toml's [db.sqlite] path inside DBDir/<site>/. Never in the site's
// own directory: PHP can write there, and SQLite opens the database and
// its -wal and -shm by name, so a tenant could swap any of them for a
// link to another site's database.
func (r *Registry) dbPath(name, conf string) (string, error) {
	if conf == "" {
		return filepath.Join(r.cfg.DBDir, name+".db"), nil
	}
	own := filepath.Join(r.cfg.DBDir, name)
	rel := conf
	if filepath.IsAbs(conf) {
		if !within(filepath.Clean(conf), own) {
			return "", fmt.Errorf("site %s: [db.sqlite] path %q must be inside %s/", name, conf, own)
		}
		rel, _ = filepath.Rel(own, filepath.Clean(conf))
	}
	if err := os.MkdirAll(own, 0o700); err != nil {
		return "", fmt.Errorf("site %s: database dir: %w", name, err)
	}
	p, err := ResolveFileBeneath(own, rel)
	if err != nil {
		return "", fmt.Errorf("site %s: [db.sqlite] path %q: %w", name, conf, err)
	}
	return p, nil
}

// params are the per-site CGI variables: credentials and the PHP
// settings of the site. php-fpm keeps a PHP_ADMIN_VALUE in the worker
// for the rest of its life, so each request carries the complete set of
// settings any site may change (config.SiteINI, the site's value or the
// node's) besides those ephpm sets for isolation.
func (r *Registry) params(s *Site) []fastcgi.Param {
	p := []fastcgi.Param{{Name: "PHP_ADMIN_VALUE", Value: r.adminValue(s.Dir, s.StateDir, s.Conf)}}
	if r.cfg.Params != nil {
		p = append(p, r.cfg.Params(s)...)
	}
	return p
}

// adminValue renders the PHP_ADMIN_VALUE of a site rooted at dir.
func (r *Registry) adminValue(dir, stateDir string, conf *config.Site) string {
	var ini strings.Builder
	line := func(k, v string) { ini.WriteString(k + "=" + phpfpm.INIValue(v) + "\n") }
	tmp := filepath.Join(stateDir, "tmp")
	line("open_basedir", dir+"/:"+stateDir+"/")
	line("session.save_path", filepath.Join(stateDir, "sessions"))
	line("upload_tmp_dir", tmp)
	line("sys_temp_dir", tmp)
	line("memory_limit", conf.MemoryLimit.PHPString())
	line("max_execution_time", strconv.Itoa(int(conf.MaxExecutionTime.D().Seconds())))
	for _, k := range config.SiteINI {
		v, ok := conf.IniOverrides[k]
		if !ok {
			if v, ok = r.cfg.PHPDefaults[k]; !ok {
				continue
			}
		}
		line(k, v)
	}
	return ini.String()
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
