package cluster

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
)

// leaseLog records a node's OnLease calls.
type leaseLog struct {
	mu       sync.Mutex
	calls    []LeaseState
	inFlight atomic.Int32
	overlap  atomic.Bool
}

func (l *leaseLog) on(st LeaseState) {
	if l.inFlight.Add(1) > 1 {
		l.overlap.Store(true)
	}
	defer l.inFlight.Add(-1)
	l.mu.Lock()
	l.calls = append(l.calls, st)
	l.mu.Unlock()
}

func (l *leaseLog) last() (LeaseState, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) == 0 {
		return LeaseState{}, 0
	}
	return l.calls[len(l.calls)-1], len(l.calls)
}

// newLeaseCluster is newTestCluster with an OnLease log per node.
func newLeaseCluster(tb testing.TB, n int) ([]*Cluster, []*leaseLog, []Config) {
	tb.Helper()
	cfgs := make([]Config, n)
	logs := make([]*leaseLog, n)
	var join []string
	for i := range n {
		cfgs[i] = testConfig(tb, fmt.Sprintf("node%d", i), tb.TempDir(), nil)
		join = append(join, cfgs[i].Bind)
	}
	nodes := make([]*Cluster, n)
	for i := range n {
		logs[i] = &leaseLog{}
		cfgs[i].Join = join
		cfgs[i].OnLease = logs[i].on
		nodes[i] = start(tb, cfgs[i])
	}
	return nodes, logs, cfgs
}

func indexOf(c *Cluster, nodes []*Cluster) int {
	for i, o := range nodes {
		if o == c {
			return i
		}
	}
	return -1
}

func waitHeld(tb testing.TB, nodes ...*Cluster) {
	tb.Helper()
	testutil.RetryUntil(tb, converge, func() error {
		for _, c := range nodes {
			if !c.Lease().Held(time.Now()) {
				return fmt.Errorf("%s holds no lease", c.cfg.Node)
			}
		}
		return nil
	})
}

func seenBy(c *Cluster, node string) seenRenewal {
	c.leaseMu.Lock()
	defer c.leaseMu.Unlock()
	return c.lease.seen[node]
}

func heldBy(c *Cluster) heldLease {
	c.leaseMu.Lock()
	defer c.leaseMu.Unlock()
	return c.lease.held
}

// Every node gets a lease; OnLease reports it with the sites the node is
// primary of, and Sites follow a SetPrimary as soon as it is applied
// locally, without waiting for a renewal.
func TestLeaseSites(t *testing.T) {
	nodes, logs, _ := newLeaseCluster(t, 3)
	leader := waitConverged(t, nodes...)
	waitHeld(t, nodes...)
	ctx := ctxT(t)
	fs := followers(leader, nodes)
	f0, f1 := fs[0], fs[1]
	log0, log1 := logs[indexOf(f0, nodes)], logs[indexOf(f1, nodes)]

	if _, err := leader.CreateSite(ctx, "l.example", f0.cfg.Node, nil); err != nil {
		t.Fatal(err)
	}
	testutil.RetryUntil(t, converge, func() error {
		st, _ := log0.last()
		if !st.Held(time.Now()) || !maps.Equal(st.Sites, map[string]uint64{"l.example": 1}) {
			return fmt.Errorf("%s: OnLease last got %+v", f0.cfg.Node, st)
		}
		return nil
	})

	if _, err := f1.SetPrimary(ctx, "l.example", f1.cfg.Node, 1); err != nil {
		t.Fatal(err)
	}
	// applied here when SetPrimary returned: no renewal needed
	if st := f1.Lease(); !st.Held(time.Now()) || st.Sites["l.example"] != 2 {
		t.Fatalf("%s right after SetPrimary: %+v", f1.cfg.Node, st)
	}
	testutil.RetryUntil(t, converge, func() error {
		if st, _ := log1.last(); st.Sites["l.example"] != 2 {
			return fmt.Errorf("%s: OnLease last got %+v", f1.cfg.Node, st)
		}
		if st := f0.Lease(); len(st.Sites) != 0 {
			return fmt.Errorf("%s still lists %v", f0.cfg.Node, st.Sites)
		}
		return nil
	})
	// renewals go on and are reported
	_, n := log1.last()
	testutil.RetryUntil(t, converge, func() error {
		if _, m := log1.last(); m < n+2 {
			return fmt.Errorf("%d OnLease calls since, want 2 renewals", m-n)
		}
		return nil
	})
	for i, l := range logs {
		if l.overlap.Load() {
			t.Errorf("node%d: OnLease ran concurrently with itself", i)
		}
	}
	st := leader.Status()
	if len(st.Leases) != 3 || st.LeaseUntil.IsZero() {
		t.Fatalf("leader status leases %+v, until %v", st.Leases, st.LeaseUntil)
	}
	for _, nl := range st.Leases {
		if nl.Index == 0 || nl.Renewed.IsZero() || nl.Lapsed == nil || *nl.Lapsed {
			t.Errorf("leader's status of %+v", nl)
		}
	}
	for _, nl := range f0.Status().Leases {
		if nl.Lapsed != nil {
			t.Errorf("a follower judges %+v", nl)
		}
	}
}

// A node cut off from the quorum sees its lease end before any leader
// could judge it lapsed: its deadline comes at least the margin before
// LeaseTTL after any node applied the renewal.
func TestLeaseEndsBeforeLapse(t *testing.T) {
	nodes, logs, _ := newLeaseCluster(t, 3)
	leader := waitConverged(t, nodes...)
	waitHeld(t, nodes...)
	x := followers(leader, nodes)[0]
	xlog := logs[indexOf(x, nodes)]
	others := followers(x, nodes)
	for _, o := range others {
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ttl := x.timing.LeaseTTL
	testutil.RetryUntil(t, 2*ttl+converge/4, func() error {
		if st := x.Lease(); st.Index != 0 {
			return fmt.Errorf("%s still holds %+v", x.cfg.Node, st)
		}
		return nil
	})
	ended := time.Now()
	h := heldBy(x)
	if !h.until.Before(ended) {
		t.Errorf("Lease() ended at %v, before its Until %v", ended, h.until)
	}
	anySeen := false
	for _, o := range others {
		s := seenBy(o, x.cfg.Node)
		if s.index < h.index {
			continue // o never applied the last renewal: it judges from an older, earlier one... or not at all
		}
		anySeen = true
		judge := s.at.Add(ttl)
		if gap := judge.Sub(h.until); gap < leaseMargin(ttl) {
			t.Errorf("%s could judge %s lapsed %v after its lease ended (want ≥ %v)", o.cfg.Node, x.cfg.Node, gap, leaseMargin(ttl))
		}
	}
	if !anySeen {
		t.Errorf("no other node applied %s's last renewal %d", x.cfg.Node, h.index)
	}
	testutil.RetryUntil(t, converge, func() error {
		if st, _ := xlog.last(); st.Index != 0 {
			return fmt.Errorf("OnLease last got %+v, want the zero state", st)
		}
		return nil
	})
	if _, err := x.LapsedNodes(); !errors.Is(err, ErrNotLeader) {
		t.Errorf("LapsedNodes off the leader: %v", err)
	}
}

// The leader reports a stopped node only LeaseTTL after it applied its
// last renewal; a failover then succeeds once, and fails with
// ErrConflict on a stale lease index, epoch or primary, or a live lease.
func TestLapseAndFailover(t *testing.T) {
	nodes, _, cfgs := newLeaseCluster(t, 3)
	leader := waitConverged(t, nodes...)
	waitHeld(t, nodes...)
	ctx := ctxT(t)
	fs := followers(leader, nodes)
	y, z := fs[0], fs[1]
	if _, err := z.CreateSite(ctx, "y.example", y.cfg.Node, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := z.CreateSite(ctx, "z.example", z.cfg.Node, nil); err != nil {
		t.Fatal(err)
	}
	if l, err := leader.LapsedNodes(); err != nil || len(l) != 0 {
		t.Fatalf("LapsedNodes with every node renewing: %v, %v", l, err)
	}
	if !leader.LeaseValid(y.cfg.Node) || z.LeaseValid(y.cfg.Node) || !leader.IsLeader() || z.IsLeader() {
		t.Error("LeaseValid/IsLeader")
	}
	if _, err := z.LapsedNodes(); !errors.Is(err, ErrNotLeader) {
		t.Errorf("LapsedNodes on a follower: %v", err)
	}
	zrec := leader.fsm.leases()[z.cfg.Node]
	_, err := leader.Failover(ctx, "z.example", z.cfg.Node, y.cfg.Node, 1, zrec.Index)
	wantErr(t, "Failover of a live lease", err, ErrConflict)

	t.Logf("closing %s", y.cfg.Node)
	if err := y.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed")
	ttl := leader.timing.LeaseTTL
	var lapse Lapse
	waitLapse := func() {
		testutil.RetryUntil(t, converge, func() error {
			l, err := leader.LapsedNodes()
			if err != nil {
				return err
			}
			for _, x := range l {
				if x.Node != y.cfg.Node {
					t.Fatalf("%s judged lapsed: %+v", x.Node, x)
				}
			}
			if len(l) == 0 {
				return errors.New("nothing lapsed yet")
			}
			lapse = l[0]
			if s := seenBy(leader, y.cfg.Node); time.Since(s.at) <= ttl || s.index != lapse.LeaseIndex {
				t.Fatalf("judged lapsed %v after the renewal %d was applied (lapse %+v)", time.Since(s.at), s.index, lapse)
			}
			return nil
		})
	}
	waitLapse()
	t.Logf("lapsed %+v", lapse)
	if lapse.For <= 0 || lapse.LeaseIndex == 0 || leader.LeaseValid(y.cfg.Node) {
		t.Errorf("lapse %+v, LeaseValid %v", lapse, leader.LeaseValid(y.cfg.Node))
	}
	_, err = z.Failover(ctx, "y.example", y.cfg.Node, z.cfg.Node, 1, lapse.LeaseIndex)
	wantErr(t, "Failover on a follower", err, ErrNotLeader)
	_, err = leader.Failover(ctx, "y.example", y.cfg.Node, z.cfg.Node, 1, lapse.LeaseIndex-1)
	wantErr(t, "Failover with a stale lease index", err, ErrConflict)
	_, err = leader.Failover(ctx, "y.example", y.cfg.Node, z.cfg.Node, 2, lapse.LeaseIndex)
	wantErr(t, "Failover at another epoch", err, ErrConflict)
	_, err = leader.Failover(ctx, "z.example", y.cfg.Node, leader.cfg.Node, 1, lapse.LeaseIndex)
	wantErr(t, "Failover of a site on another primary", err, ErrConflict)

	// y comes back and renews: the lapse judged before no longer holds
	ycfg := cfgs[indexOf(y, nodes)]
	y2 := start(t, ycfg)
	testutil.RetryUntil(t, converge, func() error {
		if !leader.LeaseValid(ycfg.Node) {
			return fmt.Errorf("%s has no valid lease yet", ycfg.Node)
		}
		return nil
	})
	_, err = leader.Failover(ctx, "y.example", y.cfg.Node, z.cfg.Node, 1, lapse.LeaseIndex)
	wantErr(t, "Failover after a renewal", err, ErrConflict)
	stale := lapse.LeaseIndex
	if err := y2.Close(); err != nil {
		t.Fatal(err)
	}
	waitLapse()
	if lapse.LeaseIndex <= stale {
		t.Fatalf("lapse after the restart at index %d, before %d", lapse.LeaseIndex, stale)
	}

	si, err := leader.Failover(ctx, "y.example", y.cfg.Node, z.cfg.Node, 1, lapse.LeaseIndex)
	if err != nil {
		t.Fatal(err)
	}
	want := FailoverInfo{From: y.cfg.Node, To: z.cfg.Node, Epoch: 2, LeaseIndex: lapse.LeaseIndex}
	got := si.LastFailover
	got.Time = time.Time{}
	if si.Primary != z.cfg.Node || si.Epoch != 2 || si.Failovers != 1 || got != want || si.LastFailover.Time.IsZero() {
		t.Fatalf("Failover = %+v", si)
	}
	_, err = leader.Failover(ctx, "y.example", y.cfg.Node, z.cfg.Node, 1, lapse.LeaseIndex)
	wantErr(t, "second Failover", err, ErrConflict)
	testutil.RetryUntil(t, converge, func() error {
		if st := z.Lease(); st.Sites["y.example"] != 2 {
			return fmt.Errorf("%s: lease %+v", z.cfg.Node, st)
		}
		return nil
	})
}

// A new leader judges no lease lapsed before LeaseTTL from its own
// start, whatever it recorded as a follower.
// TestNewLeaderJudgesSafely: the leader dies; the new leader judges its
// lease lapsed only after the old leader's own deadline (Until) passed,
// and only it.
func TestNewLeaderJudgesSafely(t *testing.T) {
	nodes, _, _ := newLeaseCluster(t, 3)
	leader := waitConverged(t, nodes...)
	waitHeld(t, nodes...)
	old := leader.cfg.Node
	rest := followers(leader, nodes)
	until := leader.Lease().Until
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.RetryUntil(t, converge, func() error {
		for _, c := range rest {
			if !c.IsLeader() {
				continue
			}
			l, err := c.LapsedNodes()
			if err != nil {
				return err
			}
			for _, x := range l {
				if x.Node != old {
					t.Fatalf("%s judged lapsed: %+v", x.Node, x)
				}
				if now := time.Now(); !now.After(until) {
					t.Fatalf("new leader judged %s lapsed %v before its holder's deadline", old, until.Sub(now))
				}
				return nil
			}
			return errors.New("nothing lapsed yet")
		}
		return errors.New("no new leader yet")
	})
}

func TestLapsedFor(t *testing.T) {
	t0 := time.Now()
	ttl := 2 * time.Second
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, c := range []struct {
		name  string
		now   time.Duration
		rec   leaseRecord
		seen  seenRenewal
		since time.Duration
		want  time.Duration
	}{
		{"fresh", 1 * time.Second, leaseRecord{Index: 5}, seenRenewal{5, at(0)}, -10 * time.Second, -time.Second},
		{"lapsed", 3 * time.Second, leaseRecord{Index: 5}, seenRenewal{5, at(0)}, -10 * time.Second, time.Second},
		{"new leader, not caught up", 3 * time.Second, leaseRecord{Index: 5}, seenRenewal{5, at(0)}, 2 * time.Second, -time.Second},
		{"applied, not yet seen", 30 * time.Second, leaseRecord{Index: 6}, seenRenewal{5, at(0)}, 0, -ttl},
		{"never renewed", 3 * time.Second, leaseRecord{}, seenRenewal{}, 0, time.Second},
	} {
		if got := lapsedFor(at(c.now), c.rec, c.seen, at(c.since), false, ttl); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestLapsedForCaughtUp: a leader caught up with the directory judges
// from its own apply of the renewal, even one applied as a follower
// before its leadership.
func TestLapsedForCaughtUp(t *testing.T) {
	t0 := time.Now()
	ttl := 2 * time.Second
	if got := lapsedFor(t0.Add(3*time.Second), leaseRecord{Index: 5}, seenRenewal{5, t0}, t0.Add(2*time.Second), true, ttl); got != time.Second {
		t.Errorf("caught up: %v, want 1s", got)
	}
	if got := lapsedFor(t0.Add(3*time.Second), leaseRecord{}, seenRenewal{}, t0.Add(2*time.Second), true, ttl); got != -time.Second {
		t.Errorf("never renewed: %v, want -1s (from the leadership's start)", got)
	}
}

func TestLeaseTimingValidate(t *testing.T) {
	cfg := testConfig(t, "v", t.TempDir(), nil)
	if err := cfg.validate(); err != nil {
		t.Fatalf("LAN timing: %v", err)
	}
	for _, tm := range []struct{ ttl, renew time.Duration }{
		{time.Second, 800 * time.Millisecond},            // renewals slower than TTL/2
		{300 * time.Millisecond, 100 * time.Millisecond}, // TTL within twice the margin
	} {
		cfg.Timing.LeaseTTL, cfg.Timing.LeaseRenew = tm.ttl, tm.renew
		if err := cfg.validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("TTL %v, renew %v: %v", tm.ttl, tm.renew, err)
		}
	}
	if w := (Timing{}).withDefaults(); w.LeaseTTL != 5*time.Second || w.LeaseRenew != time.Second {
		t.Errorf("defaults %v %v", w.LeaseTTL, w.LeaseRenew)
	}
}
