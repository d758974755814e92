// Package placement makes a cluster node's sites follow the cluster's
// directory: every site the directory knows exists on this node, with
// the role the directory gives it (primary on the node it names, a
// replica of that node everywhere else); sites created on this node are
// registered, removed ones taken off. It also serves the cluster's
// operations (status, create, remove, move) on the replication listener.
//
// It sits between three parts that do not know each other: package
// cluster (the raft directory), the sites registry (sites_dir) and
// replication (streams and roles). cmd/ephpm wires them.
package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/cluster"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/internal/task"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sites"
)

// Defaults.
const (
	// DefaultWriteTimeout bounds one change of the directory made while
	// reconciling (registering a site found on disk).
	DefaultWriteTimeout = 10 * time.Second
	// DefaultResync reconciles even when nothing said the directory or
	// sites_dir changed (a safety net: a missed hand-made change).
	DefaultResync = 5 * time.Second
)

// Directory is the cluster's directory as placement uses it
// (*cluster.Cluster). Reads are local and quick; writes go through raft.
type Directory interface {
	Sites() []cluster.SiteInfo
	Site(name string) (cluster.SiteInfo, bool)
	Node(name string) (cluster.NodeInfo, bool)
	Status() cluster.Status
	Ready() error
	CreateSite(ctx context.Context, name, primary string, conf []byte) (cluster.SiteInfo, error)
	RemoveSite(ctx context.Context, name string) error
	SetPrimary(ctx context.Context, name, to string, epoch uint64) (cluster.SiteInfo, error)
	RemoveNode(ctx context.Context, name string) error
}

// Local is this node's sites_dir (*sites.Registry).
type Local interface {
	IsSite(name string) bool
	SiteFile(name string) ([]byte, error)
	Create(name string, conf []byte) error
	Remove(name string) error
}

// Replication is this node's replication (*replication.Manager).
type Replication interface {
	SetSites([]replication.SiteConfig)
	Status() []replication.Status
	TakeOver(ctx context.Context, site string, commit func(context.Context) error) (replication.TakeOverStats, error)
}

// Config configures a Placement.
type Config struct {
	Node  string
	Dir   Directory
	Local Local
	Repl  Replication
	// DBPath is where a site's database lives on this node (the
	// registry's rule), for sites not loaded yet.
	DBPath func(site string) string
	// Token authenticates calls to other nodes' replication listeners
	// (moves handed to the target, status gathered from every member).
	Token  string
	Client *http.Client
	Logger *slog.Logger
	// Leader, if set, runs failover and failback while this node is the
	// raft leader (the same *cluster.Cluster as Dir).
	Leader Leader
	// FailoverCheck and FailbackDelay: DefaultFailoverCheck and
	// DefaultFailbackDelay when 0.
	FailoverCheck, FailbackDelay time.Duration
}

// Placement keeps this node's sites in line with the directory.
type Placement struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	local  map[string]sites.Replicated // the registry's last report
	warned map[string]string           // site → the last problem logged
	wanted []replication.SiteConfig    // what SetSites was last given
	// readyOnce: a pass ran with the directory caught up.
	readyOnce bool

	foWarned   map[string]string    // site → the last failover problem logged
	failedBack map[string]time.Time // site → the last failback attempt

	check, failbackDelay time.Duration

	kick  chan struct{}   // a reconcile is wanted
	waits chan chan error // callers waiting for the next pass
	tasks *task.Group
}

// New returns a Placement; Start runs it.
func New(cfg Config) *Placement {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = replication.NewClient(nil)
	}
	p := &Placement{cfg: cfg, log: cfg.Logger, local: map[string]sites.Replicated{}, warned: map[string]string{},
		foWarned: map[string]string{}, failedBack: map[string]time.Time{},
		check: cfg.FailoverCheck, failbackDelay: cfg.FailbackDelay,
		kick: make(chan struct{}, 1), waits: make(chan chan error, 16)}
	if p.check <= 0 {
		p.check = DefaultFailoverCheck
	}
	if p.failbackDelay <= 0 {
		p.failbackDelay = DefaultFailbackDelay
	}
	return p
}

// Start runs the reconcile loop until Close.
func (p *Placement) Start(ctx context.Context) {
	p.tasks = task.NewGroup(ctx)
	p.tasks.Go(p.loop)
	if p.cfg.Leader != nil {
		p.tasks.Go(p.failoverLoop)
	}
}

// Close stops the loop and waits for it.
func (p *Placement) Close() error {
	if p.tasks == nil {
		return nil
	}
	return p.tasks.Close()
}

// Changed asks for a reconcile soon; it never blocks. The cluster's
// OnChange calls it.
func (p *Placement) Changed() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// SetLocal is the registry's OnReplicated: the sites of sites_dir that
// replicate, with what their site.toml says.
func (p *Placement) SetLocal(list []sites.Replicated) {
	m := make(map[string]sites.Replicated, len(list))
	for _, s := range list {
		m[s.Name] = s
	}
	p.mu.Lock()
	p.local = m
	p.mu.Unlock()
	p.Changed()
}

// sync waits for a reconcile pass that starts after the call.
func (p *Placement) sync(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case p.waits <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.Changed()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Placement) loop(ctx context.Context) error {
	t := time.NewTicker(DefaultResync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-t.C:
		}
		var waiting []chan error
	drain:
		for {
			select {
			case w := <-p.waits:
				waiting = append(waiting, w)
			default:
				break drain
			}
		}
		err := p.reconcile(ctx)
		for _, w := range waiting {
			w <- err
		}
	}
}

// reconcile is one pass: directory → sites_dir and roles; sites_dir →
// directory for sites created here. It runs on the loop's goroutine
// only.
func (p *Placement) reconcile(ctx context.Context) error {
	p.mu.Lock()
	local := make(map[string]sites.Replicated, len(p.local))
	for k, v := range p.local {
		local[k] = v
	}
	p.mu.Unlock()
	dir := map[string]cluster.SiteInfo{}
	for _, s := range p.cfg.Dir.Sites() {
		dir[s.Name] = s
	}
	var errs []error
	var want []replication.SiteConfig
	if err := p.cfg.Dir.Ready(); err != nil {
		// A directory not caught up (a node starting, or cut off from
		// the leader) may be stale: no site is created, registered or
		// removed on its word. A node that was caught up before keeps
		// the roles it had (a replica keeps streaming; a primary keeps
		// its role, but its lease, which it cannot renew, stops its
		// writes); one starting serves its sites read-only until then.
		p.mu.Lock()
		had := p.readyOnce
		p.mu.Unlock()
		if had {
			return nil
		}
		for name, l := range local {
			c := replication.SiteConfig{Name: name, DBPath: l.DBPath, Role: l.Role, PrimaryURL: l.PrimaryURL}
			if l.Primary != "" {
				c.Role, c.PrimaryURL = ephpm.RoleReplica, ""
			}
			want = append(want, c)
		}
		p.setSites(want)
		return nil
	}
	for name, l := range local {
		if l.Primary == "" {
			// The static form (role + primary_grpc_url): as written.
			want = append(want, replication.SiteConfig{Name: name, DBPath: l.DBPath, Role: l.Role, PrimaryURL: l.PrimaryURL, Sync: syncOf(l.Settings)})
			continue
		}
		d, ok := dir[name]
		switch {
		case !ok:
			// Created on this node: register it, with its site.toml.
			if err := p.register(ctx, name, l.Primary); err != nil {
				errs = append(errs, err)
			}
			continue
		case d.State == cluster.SiteRemoved:
			if err := p.cfg.Local.Remove(name); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		c := p.role(name, l.DBPath, d)
		c.Sync = syncOf(l.Settings)
		want = append(want, c)
	}
	for name, d := range dir {
		if d.State != cluster.SiteActive {
			continue
		}
		if l, ok := local[name]; ok {
			if l.Primary == "" {
				p.warn(name, "its site.toml here has the static form (role, primary_grpc_url), which wins on this node")
			}
			continue
		}
		// Known to the directory, not (or not as a cluster site) here:
		// make it, keeping any site.toml the operator wrote.
		if err := p.cfg.Local.Create(name, siteConf(d)); err != nil {
			errs = append(errs, err)
			continue
		}
		want = append(want, p.role(name, p.cfg.DBPath(name), d))
	}
	p.setSites(want)
	p.mu.Lock()
	p.readyOnce = true
	p.mu.Unlock()
	return errors.Join(errs...)
}

func (p *Placement) setSites(want []replication.SiteConfig) {
	sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
	p.cfg.Repl.SetSites(want)
	p.mu.Lock()
	p.wanted = want
	p.mu.Unlock()
}

// Sync waits for a reconcile pass that starts after the call: the node
// calls it once before it serves, so that no cluster site is opened
// writable before placement gave it its role.
func (p *Placement) Sync(ctx context.Context) error { return p.sync(ctx) }

// role is this node's replication of a directory site.
func (p *Placement) role(name, dbPath string, d cluster.SiteInfo) replication.SiteConfig {
	c := replication.SiteConfig{Name: name, DBPath: dbPath, Epoch: d.Epoch}
	if d.Primary == p.cfg.Node {
		c.Role = ephpm.RolePrimary
		p.ok(name)
		return c
	}
	n, ok := p.cfg.Dir.Node(d.Primary)
	if !ok || n.Repl == "" {
		// Read-only until the primary's address is known.
		p.warn(name, fmt.Sprintf("primary node %q is not in the directory yet", d.Primary))
		c.Role = ephpm.RoleReplica
		return c
	}
	c.Role, c.PrimaryURL = ephpm.RoleReplica, n.Repl
	p.ok(name)
	return c
}

// syncOf is the site's sync setting (checked when site.toml was read).
func syncOf(r config.Replication) replication.SyncMode {
	m, _ := replication.ParseSyncMode(r.Sync)
	return m
}

// register records a site found in sites_dir in the directory.
func (p *Placement) register(ctx context.Context, name, primary string) error {
	conf, err := p.cfg.Local.SiteFile(name)
	if err != nil {
		return fmt.Errorf("site %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultWriteTimeout)
	defer cancel()
	_, err = p.cfg.Dir.CreateSite(ctx, name, primary, conf)
	switch {
	case err == nil:
		p.log.Info("site registered in the cluster directory", "site", name, "primary", primary)
	case errors.Is(err, cluster.ErrSiteExists):
		err = nil // another node was first: its entry wins
	case errors.Is(err, cluster.ErrUnknownNode):
		p.warn(name, fmt.Sprintf("site.toml names primary %q, which is not a node of the cluster", primary))
		return nil
	default:
		return fmt.Errorf("site %s: registering: %w", name, err)
	}
	return err
}

// siteConf is the site.toml a node writes for a site it learns from the
// directory: the one it was created with, else the cluster form.
func siteConf(d cluster.SiteInfo) []byte {
	if len(d.Config) > 0 {
		return d.Config
	}
	return []byte("[db.sqlite.replication]\nprimary = " + strconv.Quote(d.Primary) + "\n")
}

func (p *Placement) warn(site, why string) {
	p.warnOnce(p.warned, "cluster site not served as a replica yet", site, why)
}

func (p *Placement) ok(site string) { p.forget(p.warned, site) }

// warnOnce logs msg for a site once per change of why; seen (guarded by
// mu) remembers the last why of each site.
func (p *Placement) warnOnce(seen map[string]string, msg, site, why string) {
	p.mu.Lock()
	old := seen[site]
	seen[site] = why
	p.mu.Unlock()
	if old != why {
		p.log.Warn(msg, "site", site, "reason", why)
	}
}

// forget ends a site's problem in seen: the next one is logged.
func (p *Placement) forget(seen map[string]string, site string) {
	p.mu.Lock()
	delete(seen, site)
	p.mu.Unlock()
}

// Ready is nil once the directory is readable and every site it holds
// is served here: primary, or a replica that has bootstrapped (or
// failed, with its reason in status).
func (p *Placement) Ready() error {
	if err := p.cfg.Dir.Ready(); err != nil {
		return err
	}
	states := map[string]string{}
	for _, s := range p.cfg.Repl.Status() {
		states[s.Site] = s.State
		if s.Role == ephpm.RolePrimary {
			states[s.Site] = "primary"
		}
	}
	waiting, total := 0, 0
	for _, d := range p.cfg.Dir.Sites() {
		if d.State != cluster.SiteActive {
			continue
		}
		total++
		switch st := states[d.Name]; {
		case st == "primary", st == string(replication.ReplicaStreaming), len(st) > 5 && st[:5] == "error":
		default:
			waiting++
		}
	}
	if waiting > 0 {
		return fmt.Errorf("%d of %d sites not bootstrapped yet", waiting, total)
	}
	return nil
}

// Reconfirm is replication's hook for a fence nobody released: this
// node stays primary only if the directory still says so, and bumps the
// epoch so that a late takeover (which compares epochs) fails.
func (p *Placement) Reconfirm(ctx context.Context, site string) (bool, error) {
	d, ok := p.cfg.Dir.Site(site)
	if !ok || d.Primary != p.cfg.Node || d.State != cluster.SiteActive {
		return false, nil
	}
	_, err := p.cfg.Dir.SetPrimary(ctx, site, p.cfg.Node, d.Epoch)
	if errors.Is(err, cluster.ErrEpochChanged) {
		return false, nil
	}
	return err == nil, err
}
