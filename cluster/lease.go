package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Leases (DESIGN.md, Leases). Each node renews one lease through raft;
// the holder counts it from before it sent the renewal, the leader from
// after it applied it, so the holder's deadline always comes first.

// heldLease is this node's lease as its renewer got it.
type heldLease struct {
	index uint64
	until time.Time // monotonic
}

// seenRenewal is when this node applied a node's renewal, on its own
// monotonic clock: a side record, not directory state.
type seenRenewal struct {
	index uint64
	at    time.Time
}

// leaseState is what the Cluster keeps for leases, under leaseMu.
type leaseState struct {
	held heldLease
	seen map[string]seenRenewal
	// term and since: the raft term this node leads and when it first
	// saw itself leading it; termStart: raft's last index then (at least
	// the index of the term's first entry). Until this node's directory
	// has applied termStart, a renewal committed under the old leader
	// may not be applied here yet: it judges no lease lapsed before
	// LeaseTTL from since. From then on it judges from when it applied
	// each renewal itself (as a follower, maybe): never another node's
	// clock.
	term      uint64
	since     time.Time
	termStart uint64
}

// renewApplied records that node's renewal at index was applied here
// (raft's FSM goroutine: must not block).
func (c *Cluster) renewApplied(node string, index uint64) {
	now := time.Now()
	c.leaseMu.Lock()
	defer c.leaseMu.Unlock()
	if c.lease.seen == nil {
		c.lease.seen = map[string]seenRenewal{}
	}
	c.lease.seen[node] = seenRenewal{index: index, at: now}
}

// leadership returns when this node started leading its current term,
// or false if it does not lead. The start is noted when first seen
// (manage looks at every leader change and every Reconcile), never
// earlier than the real one: late only delays judgements.
func (c *Cluster) leadership() (time.Time, bool) {
	term := c.raft.CurrentTerm()
	if c.raft.State() != raft.Leader || c.raft.CurrentTerm() != term {
		return time.Time{}, false
	}
	c.leaseMu.Lock()
	defer c.leaseMu.Unlock()
	if c.lease.term != term {
		c.lease.term, c.lease.since, c.lease.termStart = term, time.Now(), c.raft.LastIndex()
	}
	return c.lease.since, true
}

// caughtUp reports whether this leader's directory has applied every
// entry committed before its term: each renewal's apply time here is
// then known.
func (c *Cluster) caughtUp() bool {
	c.leaseMu.Lock()
	start := c.lease.termStart
	c.leaseMu.Unlock()
	applied, _ := c.fsm.index()
	return start != 0 && applied >= start
}

// IsLeader reports whether this node is the raft leader.
func (c *Cluster) IsLeader() bool {
	_, ok := c.leadership()
	return ok
}

// Lease returns this node's lease: Sites from the local directory, and
// a zero state unless the lease is held now and the local directory has
// applied the renewal that granted it (a renewal committed after a
// failover must not let a node whose directory still shows the old
// primary write). Writes must stop before Until, whatever the caller
// last saw: compare it with time.Now() before each one.
func (c *Cluster) Lease() LeaseState {
	if c.closed.Load() {
		return LeaseState{}
	}
	c.leaseMu.Lock()
	h := c.lease.held
	c.leaseMu.Unlock()
	if h.index == 0 || !time.Now().Before(h.until) {
		return LeaseState{}
	}
	applied, sites := c.fsm.primarySites(c.cfg.Node)
	if applied < h.index {
		return LeaseState{}
	}
	return LeaseState{Index: h.index, Until: h.until, Sites: sites}
}

// leaseRenewer is the one goroutine that renews this node's lease:
// every LeaseRenew, at once when the directory makes this node primary
// of a site at a new epoch, and soon after a wake-up (notify: readiness,
// leader changes) while no lease is held.
func (c *Cluster) leaseRenewer(ctx context.Context) error {
	t := time.NewTicker(c.timing.LeaseRenew)
	defer t.Stop()
	var last time.Time // start of the last attempt
	var seen map[string]uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.leaseKick:
		}
		if _, id := c.raft.LeaderWithID(); id == "" {
			continue
		}
		if _, ok := c.fsm.node(c.cfg.Node); !ok {
			continue // the directory refuses renewals of unregistered nodes
		}
		_, sites := c.fsm.primarySites(c.cfg.Node)
		fresh := false
		for s, e := range sites {
			if seen[s] != e {
				fresh = true
			}
		}
		seen = sites
		now := time.Now()
		switch {
		case fresh, last.IsZero(), now.Sub(last) >= c.timing.LeaseRenew*9/10:
		case !c.Lease().Held(now) && now.Sub(last) >= c.timing.LeaseRenew/4:
		default:
			continue
		}
		last = now
		c.renewLease(ctx)
	}
}

// renewLease makes one renewal, bounded by LeaseTTL/2.
func (c *Cluster) renewLease(ctx context.Context) {
	ttl := c.timing.LeaseTTL
	ctx, cancel := context.WithTimeout(ctx, ttl/2)
	defer cancel()
	// Before sending: every node applies the renewal later than this,
	// so the leader's count starts later than the holder's.
	t0 := time.Now()
	_, idx, err := c.writeIndex(ctx, command{Op: OpRenewLease, Node: &NodeInfo{Name: c.cfg.Node}, Time: t0.Round(0).UTC()})
	if err != nil {
		c.renewErrors.Add(1)
		if !errors.Is(err, ErrClosed) {
			c.log.Debug("lease renewal", "err", err)
		}
		return
	}
	c.renewals.Add(1)
	c.leaseMu.Lock()
	if idx > c.lease.held.index {
		c.lease.held = heldLease{index: idx, until: t0.Add(ttl - leaseMargin(ttl))}
	}
	c.leaseMu.Unlock()
	signal(c.leaseNote)
}

// leaseNotifier is the one goroutine that calls OnLease: on a signal
// (a renewal, a directory change) and when the lease ends.
func (c *Cluster) leaseNotifier(ctx context.Context) error {
	var last LeaseState
	end := time.NewTimer(time.Hour)
	end.Stop()
	defer end.Stop()
	for {
		st := c.Lease()
		if st.Index != last.Index || !st.Until.Equal(last.Until) || !maps.Equal(st.Sites, last.Sites) {
			last = st
			if c.cfg.OnLease != nil {
				c.cfg.OnLease(st)
			}
		}
		if st.Index != 0 {
			end.Reset(time.Until(st.Until))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.leaseNote:
		case <-end.C:
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// lapsedFor is how long ago a lease lapsed as the leader judges it at
// now (≤ 0: not lapsed): LeaseTTL after this node applied the renewal
// rec — or, until the leader has caught up with what was committed
// before its term, after since (the start of its leadership) if later.
// Safe either way: a renewal is applied only after it committed, so
// after its holder sent it, and the holder stops before LeaseTTL from
// sending. A renewal the directory holds but seen does not yet is being
// applied: not lapsed. A node that never renewed counts from since.
func lapsedFor(now time.Time, rec leaseRecord, seen seenRenewal, since time.Time, caughtUp bool, ttl time.Duration) time.Duration {
	start := since
	if rec.Index != 0 {
		if seen.index != rec.Index {
			return -ttl
		}
		if caughtUp || seen.at.After(start) {
			start = seen.at
		}
	}
	return now.Sub(start) - ttl
}

// judge returns every registered node's lease record and how long ago
// it lapsed (≤ 0: not lapsed), or errNotLeader.
func (c *Cluster) judge() (map[string]leaseRecord, map[string]time.Duration, error) {
	since, ok := c.leadership()
	if !ok {
		return nil, nil, errNotLeader
	}
	recs := c.fsm.leases()
	c.leaseMu.Lock()
	seen := maps.Clone(c.lease.seen)
	c.leaseMu.Unlock()
	caught := c.caughtUp()
	now := time.Now()
	out := make(map[string]time.Duration, len(recs))
	for name, rec := range recs {
		out[name] = lapsedFor(now, rec, seen[name], since, caught, c.timing.LeaseTTL)
	}
	return recs, out, nil
}

// LapsedNodes lists the registered nodes whose lease lapsed, sorted, as
// judged by this node as raft leader; ErrNotLeader elsewhere. A node
// that never renewed since it registered is listed with LeaseIndex 0.
func (c *Cluster) LapsedNodes() ([]Lapse, error) {
	recs, lapsed, err := c.judge()
	if err != nil {
		return nil, ErrNotLeader
	}
	var out []Lapse
	for _, name := range slices.Sorted(maps.Keys(recs)) {
		if d := lapsed[name]; d > 0 {
			out = append(out, Lapse{Node: name, LeaseIndex: recs[name].Index, For: d})
		}
	}
	return out, nil
}

// LeaseValid is the leader's view of node's lease: renewed at least
// once and not lapsed. False when this node is not the leader.
func (c *Cluster) LeaseValid(node string) bool {
	recs, lapsed, err := c.judge()
	if err != nil {
		return false
	}
	rec, ok := recs[node]
	return ok && rec.Index != 0 && lapsed[node] <= 0
}

// checkLapsed (leader, before proposing a failover) refuses a failover
// whose lease this leader does not judge lapsed at leaseIndex. The
// directory checks the lease index again in log order.
func (c *Cluster) checkLapsed(from string, leaseIndex uint64) error {
	recs, lapsed, err := c.judge()
	if err != nil {
		return err
	}
	rec, ok := recs[from]
	switch {
	case !ok:
		return fmt.Errorf("%w: %q", ErrUnknownNode, from)
	case rec.Index != leaseIndex:
		return fmt.Errorf("%w: %s's lease is at index %d, not %d", ErrConflict, from, rec.Index, leaseIndex)
	case lapsed[from] <= 0:
		return fmt.Errorf("%w: %s's lease has not lapsed", ErrConflict, from)
	}
	return nil
}

// Failover names to as site's primary in place of from, at epoch+1,
// only if the site's primary is still from at epoch and from's lease is
// still the one at leaseIndex (no renewal since the leader judged it
// lapsed); otherwise ErrConflict, with the site as it is when the
// directory refused. Only the raft leader proposes it (ErrNotLeader
// elsewhere), after judging the lease lapsed itself. An ErrNotLeader
// after the entry was sent leaves it maybe committed: read the site.
func (c *Cluster) Failover(ctx context.Context, site, from, to string, epoch, leaseIndex uint64) (SiteInfo, error) {
	if c.closed.Load() {
		return SiteInfo{}, ErrClosed
	}
	cmd := command{Op: OpFailover, Site: site, From: from, Primary: to, Epoch: epoch, LeaseIndex: leaseIndex,
		Time: time.Now().Round(0).UTC()}
	if err := cmd.validate(); err != nil {
		return SiteInfo{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultWriteTimeout)
	defer cancel()
	res, idx, err := c.applyLocal(ctx, cmd)
	if errors.Is(err, errNotLeader) {
		return SiteInfo{}, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	if err != nil {
		return SiteInfo{}, err
	}
	if err := c.waitApplied(ctx, idx); err != nil {
		return SiteInfo{}, err
	}
	return res.Site, res.Err
}

// nodeLeases is the Status view of the leases.
func (c *Cluster) nodeLeases() []NodeLease {
	recs, lapsed, err := c.judge()
	if err != nil {
		recs, lapsed = c.fsm.leases(), nil
	}
	out := make([]NodeLease, 0, len(recs))
	for _, name := range slices.Sorted(maps.Keys(recs)) {
		nl := NodeLease{Node: name, Index: recs[name].Index, Renewed: recs[name].Renewed}
		if lapsed != nil {
			l := lapsed[name] > 0
			nl.Lapsed = &l
		}
		out = append(out, nl)
	}
	return out
}
