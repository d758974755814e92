package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
)

// A node alone (empty Join) is a single-voter cluster; OnChange is called
// after a write, never concurrently with itself; the collector exports
// the directory.
func TestSingleNodeOnChangeAndMetrics(t *testing.T) {
	var calls, inFlight atomic.Int32
	var overlap atomic.Bool
	cfg := testConfig(t, "solo", t.TempDir(), nil)
	cfg.OnChange = func() {
		if inFlight.Add(1) > 1 {
			overlap.Store(true)
		}
		calls.Add(1)
		inFlight.Add(-1)
	}
	c := start(t, cfg)
	waitConverged(t, c)
	before := calls.Load()
	if _, err := c.CreateSite(ctxT(t), "solo.example", "solo", nil); err != nil {
		t.Fatal(err)
	}
	testutil.RetryUntil(t, converge, func() error {
		if calls.Load() <= before {
			return fmt.Errorf("OnChange not called after the write")
		}
		return nil
	})
	if overlap.Load() {
		t.Error("OnChange ran concurrently with itself")
	}

	waitHeld(t, c)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(c)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			switch {
			case m.Gauge != nil:
				got[key] = m.Gauge.GetValue()
			case m.Counter != nil:
				got[key] = m.Counter.GetValue()
			}
		}
	}
	for k, want := range map[string]float64{
		"ephpm_cluster_sites":                    1,
		"ephpm_cluster_site_epoch{solo.example}": 1,
		"ephpm_cluster_members{alive}":           1,
		"ephpm_cluster_raft_leader":              1,
		"ephpm_cluster_lease_held":               1,
		"ephpm_cluster_leases_lapsed":            0,
		"ephpm_cluster_failovers_total":          0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], want, got)
		}
	}
	if got["ephpm_cluster_lease_renewals_total{ok}"] < 1 {
		t.Errorf("no renewal counted: %v", got)
	}
	if _, ok := got["ephpm_cluster_leases_lapsed"]; !ok {
		t.Errorf("the leader exports no ephpm_cluster_leases_lapsed: %v", got)
	}
	// renewals are not directory changes for OnChange
	quiet, renewed := calls.Load(), c.renewals.Load()
	testutil.RetryUntil(t, converge, func() error {
		if c.renewals.Load() < renewed+3 {
			return fmt.Errorf("%d renewals since", c.renewals.Load()-renewed)
		}
		return nil
	})
	if n := calls.Load() - quiet; n != 0 {
		t.Errorf("%d OnChange calls for renewals alone", n)
	}
	if got["ephpm_cluster_raft_term"] < 1 || got["ephpm_cluster_leader_changes_total"] < 1 {
		t.Errorf("term/leader changes: %v", got)
	}
}

// A follower's writes share one kept-alive connection to the leader: a
// handshake per write would cost two more round trips between regions.
func TestCommandConnectionKeptAlive(t *testing.T) {
	nodes, _ := newTestCluster(t, 3)
	leader := waitConverged(t, nodes...)
	f := followers(leader, nodes)[0]
	ctx := ctxT(t)
	before := f.cmdDials.Load()
	for i := range 5 {
		if _, err := f.CreateSite(ctx, fmt.Sprintf("k%d.example", i), leader.cfg.Node, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.cmdDials.Load() - before; n > 1 {
		t.Errorf("%d command connections dialled for 5 writes, want at most 1", n)
	}
}

// A voter gone for good is removed by hand: it no longer counts toward
// the quorum, and its name leaves the nodes table. An alive node, or one
// that is still a site's primary, is refused.
func TestRemoveNode(t *testing.T) {
	nodes, _ := newTestCluster(t, 3)
	leader := waitConverged(t, nodes...)
	ctx := ctxT(t)
	fs := followers(leader, nodes)
	gone, other := fs[0], fs[1]
	if _, err := other.CreateSite(ctx, "held.example", gone.cfg.Node, nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RemoveNode of an alive node", other.RemoveNode(ctx, gone.cfg.Node), ErrNodeInUse)
	name := gone.cfg.Node
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RemoveNode of a site's primary", other.RemoveNode(ctx, name), ErrNodeInUse)
	if _, err := other.SetPrimary(ctx, "held.example", other.cfg.Node, 1); err != nil {
		t.Fatal(err)
	}
	testutil.RetryUntil(t, converge, func() error { return other.RemoveNode(ctx, name) })
	if _, in := suffrage(leader, name); in {
		t.Errorf("%s still in the raft configuration", name)
	}
	for _, c := range []*Cluster{leader, other} {
		testutil.RetryUntil(t, converge, func() error {
			if _, ok := c.Node(name); ok {
				return fmt.Errorf("%s: %s still in the nodes table", c.cfg.Node, name)
			}
			return nil
		})
	}
	// Two voters left, both needed: the directory still takes writes.
	if _, err := leader.CreateSite(ctx, "after.example", other.cfg.Node, nil); err != nil {
		t.Fatalf("write after removing a voter: %v", err)
	}
}
