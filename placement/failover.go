package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/cluster"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/replication"
)

// Failover and failback run on the raft leader only (DESIGN.md,
// "Failover"): the leader alone judges leases lapsed, and its proposals
// are compare-and-sets the directory checks in log order, so a leader
// that lost its office meanwhile proposes nothing that can commit.

// Defaults.
const (
	// DefaultFailoverCheck is the period of the leader's look at lapsed
	// leases: it adds at most this much to a failover.
	DefaultFailoverCheck = 250 * time.Millisecond
	// DefaultPositionTimeout bounds the question "how far is your copy?"
	// put to every candidate at a failover.
	DefaultPositionTimeout = 2 * time.Second
	// DefaultFailbackDelay is how long a site stays on the node a
	// failover gave it before it may move back (the old primary must
	// have been back and caught up that long), and the wait between two
	// failback attempts of one site.
	DefaultFailbackDelay = 10 * time.Second
)

// Leader is what failover needs of the directory on the raft leader
// (*cluster.Cluster).
type Leader interface {
	IsLeader() bool
	LapsedNodes() ([]cluster.Lapse, error)
	LeaseValid(node string) bool
	Failover(ctx context.Context, site, from, to string, epoch, leaseIndex uint64) (cluster.SiteInfo, error)
}

// candidatePos is a candidate's copy of a site, as it told the leader.
type candidatePos struct {
	node     string
	position uint64
	rank     int // its place in candidates (ties)
}

// failoverLoop runs failover and failback passes while this node leads.
func (p *Placement) failoverLoop(ctx context.Context) error {
	t := time.NewTicker(p.check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if p.cfg.Leader == nil || !p.cfg.Leader.IsLeader() {
			continue
		}
		p.failoverPass(ctx)
		p.failbackPass(ctx)
	}
}

// settings is a site's [db.sqlite.replication] as this node's site.toml
// says (every node has the same file); without one here, as the
// site.toml the site was created with says (the directory keeps it);
// else the defaults.
func (p *Placement) settings(site string) config.Replication {
	p.mu.Lock()
	l, ok := p.local[site]
	p.mu.Unlock()
	if ok {
		return l.Settings
	}
	d, ok := p.cfg.Dir.Site(site)
	if !ok || len(d.Config) == 0 {
		return config.Replication{}
	}
	var f struct {
		DB struct {
			SQLite struct {
				Replication config.Replication `toml:"replication"`
			} `toml:"sqlite"`
		} `toml:"db"`
	}
	if err := toml.Unmarshal(d.Config, &f); err != nil {
		return config.Replication{} // checked when it was registered
	}
	return f.DB.SQLite.Replication
}

// failoverPass promotes a replica of every site whose primary's lease
// lapsed.
func (p *Placement) failoverPass(ctx context.Context) {
	lapsed, err := p.cfg.Leader.LapsedNodes()
	if err != nil {
		return // not the leader any more
	}
	if len(lapsed) == 0 {
		return
	}
	byNode := map[string]cluster.Lapse{}
	for _, l := range lapsed {
		byNode[l.Node] = l
	}
	for _, d := range p.cfg.Dir.Sites() {
		l, ok := byNode[d.Primary]
		if d.State != cluster.SiteActive || !ok {
			continue
		}
		if err := p.failover(ctx, d, l); err != nil {
			p.warnFailover(d.Name, err.Error())
		}
	}
}

// errNoCandidate: no node may take the site over now.
var errNoCandidate = errors.New("no candidate")

// failover promotes the best candidate of one site.
func (p *Placement) failover(ctx context.Context, d cluster.SiteInfo, l cluster.Lapse) error {
	set := p.settings(d.Name)
	if !set.AutoFailover() {
		return fmt.Errorf("primary %s's lease lapsed; failover = \"manual\": waiting for `ephpm sites move`", d.Primary)
	}
	cands := p.candidates(ctx, d, set)
	if len(cands) == 0 {
		return fmt.Errorf("primary %s's lease lapsed; %w with a live lease and a copy of the site", d.Primary, errNoCandidate)
	}
	best := cands[0]
	ctx, cancel := context.WithTimeout(ctx, DefaultWriteTimeout)
	defer cancel()
	nd, err := p.cfg.Leader.Failover(ctx, d.Name, d.Primary, best.node, d.Epoch, l.LeaseIndex)
	if err != nil {
		if errors.Is(err, cluster.ErrConflict) {
			return nil // the site moved or its primary renewed: next pass
		}
		return fmt.Errorf("failover to %s: %w", best.node, err)
	}
	p.okFailover(d.Name)
	p.log.Warn("failover: the site's primary lease lapsed; a replica was promoted",
		"site", d.Name, "from", d.Primary, "to", best.node, "epoch", nd.Epoch,
		"position", best.position, "lease_index", l.LeaseIndex, "lapsed_for", l.For)
	return nil
}

// candidates are the nodes that may take the site over, best first:
// named by candidates (default every node), holding a lease, alive, with
// a copy of the site (the highest position first; ties in candidates
// order, then by name).
func (p *Placement) candidates(ctx context.Context, d cluster.SiteInfo, set config.Replication) []candidatePos {
	ctx, cancel := context.WithTimeout(ctx, DefaultPositionTimeout)
	defer cancel()
	var (
		mu  sync.Mutex
		out []candidatePos
		wg  sync.WaitGroup
	)
	for _, m := range p.cfg.Dir.Status().Members {
		name := m.Name
		if name == d.Primary || !set.Candidate(name) || m.State != cluster.MemberAlive || !p.cfg.Leader.LeaseValid(name) {
			continue
		}
		rank := len(set.Candidates)
		if i := slices.Index(set.Candidates, name); i >= 0 {
			rank = i
		}
		wg.Add(1)
		go func(name, repl string) {
			defer wg.Done()
			var list []replication.Status
			if name == p.cfg.Node {
				list = p.cfg.Repl.Status()
			} else {
				var err error
				if list, err = p.remoteStatus(ctx, repl); err != nil {
					p.log.Debug("failover: a candidate did not say its position", "site", d.Name, "node", name, "err", err)
					return
				}
			}
			for _, s := range list {
				// Only a copy that has been a replica of the site with a
				// log position: an empty or failed copy cannot serve.
				if s.Site == d.Name && s.Role == ephpm.RoleReplica && s.LogID != "" && s.Position > 0 {
					mu.Lock()
					out = append(out, candidatePos{node: name, position: s.Position, rank: rank})
					mu.Unlock()
				}
			}
		}(name, m.Repl)
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.position != b.position {
			return a.position > b.position
		}
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		return a.node < b.node
	})
	return out
}

// failbackPass moves a site back to its preferred primary (site.toml's
// `primary`) when a failover took it away, that node holds a lease
// again and its copy has caught up, unless failback = false. Only a
// failover is undone: a site moved by `ephpm sites move` stays.
func (p *Placement) failbackPass(ctx context.Context) {
	for _, d := range p.cfg.Dir.Sites() {
		if d.State != cluster.SiteActive || d.Failovers == 0 || d.LastFailover.Epoch != d.Epoch {
			continue
		}
		set := p.settings(d.Name)
		home := set.Primary
		if home == "" {
			home = d.LastFailover.From
		}
		if !set.FailsBack() || home == d.Primary || !p.cfg.Leader.LeaseValid(home) {
			continue
		}
		if time.Since(d.LastFailover.Time) < p.failbackDelay || !p.failbackDue(d.Name) {
			continue
		}
		if !p.caughtUp(ctx, d, home) {
			continue
		}
		p.markFailback(d.Name)
		// A move takes a while: the pass goes on meanwhile.
		p.tasks.Go(func(ctx context.Context) error { p.failback(ctx, d, home); return nil })
	}
}

// caughtUp reports whether node's copy of the site streams from the
// primary with no frames to apply.
func (p *Placement) caughtUp(ctx context.Context, d cluster.SiteInfo, node string) bool {
	n, ok := p.cfg.Dir.Node(node)
	if !ok || n.Repl == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultPositionTimeout)
	defer cancel()
	var list []replication.Status
	if node == p.cfg.Node {
		list = p.cfg.Repl.Status()
	} else {
		var err error
		if list, err = p.remoteStatus(ctx, n.Repl); err != nil {
			return false
		}
	}
	for _, s := range list {
		if s.Site == d.Name {
			return s.Role == ephpm.RoleReplica && s.State == string(replication.ReplicaStreaming) && s.LagFrames == 0 && s.Epoch == d.Epoch
		}
	}
	return false
}

func (p *Placement) failback(ctx context.Context, d cluster.SiteInfo, home string) {
	ctx, cancel := context.WithTimeout(ctx, DefaultMoveTimeout)
	defer cancel()
	res, err := p.Move(ctx, d.Name, home)
	if err != nil {
		p.log.Warn("failback: moving the site back to its primary failed; retried later", "site", d.Name, "to", home, "err", err)
		return
	}
	p.log.Info("failback: the site is back on its primary", "site", d.Name, "to", home, "epoch", res.Epoch, "pause_ms", res.PauseMs)
}

// failbackDue reports whether the site's last failback attempt is old
// enough for another.
func (p *Placement) failbackDue(site string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(p.failedBack[site]) >= p.failbackDelay
}

func (p *Placement) markFailback(site string) {
	p.mu.Lock()
	p.failedBack[site] = time.Now()
	p.mu.Unlock()
}

// warnFailover logs a site's failover problem once per change of it.
func (p *Placement) warnFailover(site, why string) {
	p.warnOnce(p.foWarned, "failover: the site has no primary that takes writes", site, why)
}

func (p *Placement) okFailover(site string) { p.forget(p.foWarned, site) }

// primaryGone reports whether gossip has the node as failed or left: a
// move then cannot fence it, and is a failover instead. A node gossip
// does not know (yet) is tried as a planned move.
func (p *Placement) primaryGone(node string) bool {
	for _, m := range p.cfg.Dir.Status().Members {
		if m.Name == node {
			return m.State != cluster.MemberAlive
		}
	}
	return false
}

// FailoverRequest is the body of POST .../sites/{name}/failover.
type FailoverRequest struct {
	To string `json:"to"`
}

// askFailover has the raft leader promote node `to` in place of a
// primary that is gone (`ephpm sites move` to a live node, also with
// failover = "manual").
func (p *Placement) askFailover(ctx context.Context, d cluster.SiteInfo, to string, start time.Time) (MoveResult, error) {
	res := MoveResult{Site: d.Name, From: d.Primary, To: to, Epoch: d.Epoch}
	leader := p.cfg.Dir.Status().Leader
	n, ok := p.cfg.Dir.Node(leader)
	if leader == "" || !ok || n.Repl == "" {
		return res, fmt.Errorf("site %s: its primary %s is gone and %w to promote %s", d.Name, d.Primary, cluster.ErrNoLeader, to)
	}
	var out cluster.SiteInfo
	if leader == p.cfg.Node {
		var err error
		if out, err = p.failoverTo(ctx, d.Name, to); err != nil {
			return res, err
		}
	} else if err := p.call(ctx, "POST", n.Repl+PathSites+"/"+d.Name+"/failover", FailoverRequest{To: to}, &out); err != nil {
		return res, err
	}
	res.Epoch = out.Epoch
	if err := p.sync(ctx); err != nil {
		p.log.Warn("reconcile after failover", "site", d.Name, "err", err)
	}
	res.TotalMs = float64(time.Since(start)) / float64(time.Millisecond)
	return res, nil
}

// failoverTo (the leader) names `to` primary in place of a primary whose
// lease lapsed; ErrConflict while that lease holds.
func (p *Placement) failoverTo(ctx context.Context, site, to string) (cluster.SiteInfo, error) {
	if p.cfg.Leader == nil {
		return cluster.SiteInfo{}, cluster.ErrNotLeader
	}
	d, ok := p.cfg.Dir.Site(site)
	if !ok || d.State != cluster.SiteActive {
		return cluster.SiteInfo{}, fmt.Errorf("site %s: %w", site, cluster.ErrNoSite)
	}
	lapsed, err := p.cfg.Leader.LapsedNodes()
	if err != nil {
		return cluster.SiteInfo{}, err
	}
	i := slices.IndexFunc(lapsed, func(l cluster.Lapse) bool { return l.Node == d.Primary })
	if i < 0 {
		return cluster.SiteInfo{}, fmt.Errorf("%w: site %s: the lease of its primary %s has not lapsed yet (a failover waits for it; try again in a few seconds)",
			cluster.ErrConflict, site, d.Primary)
	}
	if !p.cfg.Leader.LeaseValid(to) {
		return cluster.SiteInfo{}, fmt.Errorf("%w: node %s holds no lease", cluster.ErrConflict, to)
	}
	out, err := p.cfg.Leader.Failover(ctx, site, d.Primary, to, d.Epoch, lapsed[i].LeaseIndex)
	if err == nil {
		p.log.Warn("failover by request: a replica was promoted in place of a primary that is gone",
			"site", site, "from", d.Primary, "to", to, "epoch", out.Epoch)
	}
	return out, err
}

func (p *Placement) serveFailover(w http.ResponseWriter, r *http.Request) {
	var req FailoverRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.To == "" {
		fail(w, fmt.Errorf("%w: want {\"to\": NODE}", errBadRequest))
		return
	}
	out, err := p.failoverTo(r.Context(), r.PathValue("name"), req.To)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
