package cluster

import (
	"fmt"
	"testing"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/hashicorp/raft"
)

func TestThreeVoters(t *testing.T) {
	nodes, _ := newTestCluster(t, 3)
	leader := waitConverged(t, nodes...)
	fs := followers(leader, nodes)
	f0, f1 := fs[0], fs[1]
	ctx := ctxT(t)

	for _, c := range nodes {
		for _, o := range nodes {
			if s, ok := suffrage(c, o.cfg.Node); !ok || s != raft.Voter {
				t.Errorf("%s: %s is %v (in config: %v), want voter", c.cfg.Node, o.cfg.Node, s, ok)
			}
		}
	}

	conf := []byte("primary = \"node0\"\n")
	si, err := f0.CreateSite(ctx, "example.com", f0.cfg.Node, conf)
	if err != nil {
		t.Fatalf("CreateSite on a follower: %v", err)
	}
	if si.Epoch != 1 || si.Primary != f0.cfg.Node || si.State != SiteActive || string(si.Config) != string(conf) || si.Created.IsZero() {
		t.Fatalf("CreateSite = %+v", si)
	}
	// the write returned once applied here: a local read sees it at once
	if got, ok := f0.Site("example.com"); !ok || got.Epoch != 1 {
		t.Fatalf("local read after CreateSite: %+v, %v", got, ok)
	}
	testutil.RetryUntil(t, converge, func() error {
		for _, c := range nodes {
			got, ok := c.Site("example.com")
			if !ok || got.Primary != si.Primary || !got.Created.Equal(si.Created) {
				return fmt.Errorf("%s: site %+v, %v", c.cfg.Node, got, ok)
			}
		}
		return nil
	})

	old, err := f1.CreateSite(ctx, "example.com", f1.cfg.Node, nil)
	wantErr(t, "CreateSite twice", err, ErrSiteExists)
	if old.Primary != f0.cfg.Node {
		t.Errorf("CreateSite twice returned %+v, want the existing site", old)
	}
	_, err = f1.CreateSite(ctx, "other.example", "nosuchnode", nil)
	wantErr(t, "CreateSite unknown primary", err, ErrUnknownNode)
	_, err = f1.CreateSite(ctx, "Bad_Name", f1.cfg.Node, nil)
	wantErr(t, "CreateSite bad name", err, ErrInvalid)

	// compare-and-set from the other follower
	si2, err := f1.SetPrimary(ctx, "example.com", f1.cfg.Node, 1)
	if err != nil {
		t.Fatalf("SetPrimary: %v", err)
	}
	if si2.Epoch != 2 || si2.Primary != f1.cfg.Node {
		t.Fatalf("SetPrimary = %+v", si2)
	}
	_, err = f1.SetPrimary(ctx, "example.com", f0.cfg.Node, 1)
	wantErr(t, "SetPrimary with a stale epoch (follower)", err, ErrEpochChanged)
	_, err = f0.SetPrimary(ctx, "example.com", f0.cfg.Node, 1)
	wantErr(t, "SetPrimary with a stale epoch (other follower)", err, ErrEpochChanged)
	_, err = leader.SetPrimary(ctx, "example.com", f0.cfg.Node, 1)
	wantErr(t, "SetPrimary with a stale epoch (leader)", err, ErrEpochChanged)
	_, err = f0.SetPrimary(ctx, "example.com", "nosuchnode", 2)
	wantErr(t, "SetPrimary to an unknown node", err, ErrUnknownNode)
	_, err = f0.SetPrimary(ctx, "nosuch.example", f0.cfg.Node, 1)
	wantErr(t, "SetPrimary of a missing site", err, ErrNoSite)
	// re-confirming the current primary bumps the epoch only
	si3, err := f0.SetPrimary(ctx, "example.com", f1.cfg.Node, 2)
	if err != nil || si3.Epoch != 3 || si3.Primary != f1.cfg.Node {
		t.Fatalf("re-confirm: %+v, %v", si3, err)
	}

	wantErr(t, "RemoveSite of a missing site", f0.RemoveSite(ctx, "nosuch.example"), ErrNoSite)
	if _, err := leader.CreateSite(ctx, "gone.example", leader.cfg.Node, nil); err != nil {
		t.Fatal(err)
	}
	if err := f1.RemoveSite(ctx, "gone.example"); err != nil {
		t.Fatalf("RemoveSite: %v", err)
	}
	if s, ok := f1.Site("gone.example"); !ok || s.State != SiteRemoved {
		t.Errorf("after RemoveSite returned: %+v (want a tombstone)", s)
	}

	st := f1.Status() // f1 wrote last: its reads see every write above
	if st.Leader != leader.cfg.Node || st.RaftState != "follower" || len(st.Members) != 3 || len(st.Nodes) != 3 || len(st.Sites) != 2 {
		t.Errorf("Status = %+v", st)
	}
	for _, m := range st.Members {
		if m.State != MemberAlive || m.RaftRole != RoleVoter || m.Raft == "" {
			t.Errorf("member %+v", m)
		}
	}
}

func TestNonVoter(t *testing.T) {
	nodes, cfgs := newTestCluster(t, 3)
	leader := waitConverged(t, nodes...)
	ctx := ctxT(t)
	if _, err := leader.CreateSite(ctx, "a.example", leader.cfg.Node, nil); err != nil {
		t.Fatal(err)
	}
	// a fourth node that is not in the join list: a non-voter
	cfg := testConfig(t, "node3", t.TempDir(), cfgs[0].Join)
	n3 := start(t, cfg)
	all := append(nodes, n3)
	leader = waitConverged(t, all...)
	testutil.RetryUntil(t, converge, func() error {
		for _, c := range all {
			s, ok := suffrage(c, "node3")
			if !ok || s != raft.Nonvoter {
				return fmt.Errorf("%s: node3 is %v (in config: %v)", c.cfg.Node, s, ok)
			}
		}
		return nil
	})
	if got, ok := n3.Site("a.example"); !ok || got.Primary != leader.cfg.Node {
		t.Fatalf("the non-voter's directory: %+v, %v", got, ok)
	}
	// a write on the non-voter is forwarded too
	if _, err := n3.CreateSite(ctx, "b.example", "node3", nil); err != nil {
		t.Fatalf("CreateSite on the non-voter: %v", err)
	}
	if n3.bootstraps.Load() != 0 {
		t.Error("the non-voter bootstrapped")
	}
}

func TestLeaderLoss(t *testing.T) {
	nodes, _ := newTestCluster(t, 3)
	leader := waitConverged(t, nodes...)
	ctx := ctxT(t)
	if _, err := leader.CreateSite(ctx, "a.example", leader.cfg.Node, []byte("x")); err != nil {
		t.Fatal(err)
	}
	old := leader.cfg.Node
	if err := leader.Close(); err != nil {
		t.Fatalf("Close the leader: %v", err)
	}
	rest := followers(leader, nodes)
	testutil.RetryUntil(t, converge, func() error {
		for _, c := range rest {
			if err := c.Ready(); err != nil {
				return err
			}
			if l := c.Status().Leader; l == old {
				return fmt.Errorf("%s still sees %s as leader", c.cfg.Node, l)
			}
		}
		return nil
	})
	if _, err := rest[0].CreateSite(ctx, "b.example", rest[1].cfg.Node, nil); err != nil {
		t.Fatalf("write after leader loss: %v", err)
	}
	if _, err := rest[1].SetPrimary(ctx, "a.example", rest[1].cfg.Node, 1); err != nil {
		t.Fatalf("SetPrimary after leader loss: %v", err)
	}
	testutil.RetryUntil(t, converge, func() error {
		for _, c := range rest {
			a, ok := c.Site("a.example")
			if !ok || a.Epoch != 2 || string(a.Config) != "x" {
				return fmt.Errorf("%s: a.example = %+v", c.cfg.Node, a)
			}
			if _, ok := c.Site("b.example"); !ok {
				return fmt.Errorf("%s: no b.example", c.cfg.Node)
			}
		}
		return nil
	})
	// A voter that shut down cleanly stays a voter: it is expected back,
	// and a rolling restart must not shrink the quorum.
	if s, in := suffrage(rest[0], old); !in || s != raft.Voter {
		t.Errorf("%s after a clean shutdown: in %v, suffrage %v", old, in, s)
	}
}

func TestColdRestart(t *testing.T) {
	nodes, cfgs := newTestCluster(t, 3)
	leader := waitConverged(t, nodes...)
	ctx := ctxT(t)
	if _, err := leader.CreateSite(ctx, "a.example", leader.cfg.Node, []byte("conf")); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].SetPrimary(ctx, "a.example", nodes[1].cfg.Node, 1); err != nil {
		t.Fatal(err)
	}
	var boots int64
	for _, c := range nodes {
		boots += c.bootstraps.Load()
	}
	if boots == 0 {
		t.Fatal("nobody bootstrapped")
	}
	want := leader.Sites()
	for _, c := range nodes {
		if err := c.Close(); err != nil {
			t.Fatalf("Close %s: %v", c.cfg.Node, err)
		}
	}

	// Same data dirs, new ports: the raft addresses in the logs are stale.
	var join []string
	for i := range cfgs {
		fresh := testConfig(t, cfgs[i].Node, cfgs[i].DataDir, nil)
		cfgs[i].Bind, cfgs[i].RaftBind = fresh.Bind, fresh.RaftBind
		join = append(join, cfgs[i].Bind)
	}
	again := make([]*Cluster, len(cfgs))
	for i := range cfgs {
		cfgs[i].Join = join
		again[i] = start(t, cfgs[i])
		if !again[i].hasState {
			t.Fatalf("%s: no raft state after restart", cfgs[i].Node)
		}
	}
	leader = waitConverged(t, again...)
	for _, c := range again {
		if n := c.bootstraps.Load(); n != 0 {
			t.Errorf("%s bootstrapped again (%d)", c.cfg.Node, n)
		}
	}
	testutil.RetryUntil(t, converge, func() error {
		for _, c := range again {
			got := c.Sites()
			if len(got) != 1 || got[0].Epoch != 2 || got[0].Primary != want[0].Primary || string(got[0].Config) != "conf" {
				return fmt.Errorf("%s: sites %+v, want %+v", c.cfg.Node, got, want)
			}
			// every node is still a voter (dialled at its new address,
			// which the write below needs: ServerAddr)
			for _, o := range again {
				f := c.raft.GetConfiguration()
				if f.Error() != nil {
					return f.Error()
				}
				found := false
				for _, s := range f.Configuration().Servers {
					if string(s.ID) == o.cfg.Node && s.Suffrage == raft.Voter {
						found = true
					}
				}
				if !found {
					return fmt.Errorf("%s: %s not a voter: %+v", c.cfg.Node, o.cfg.Node, f.Configuration().Servers)
				}
			}
		}
		return nil
	})
	if _, err := again[2].CreateSite(ctx, "b.example", again[0].cfg.Node, nil); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
	_ = leader
}
