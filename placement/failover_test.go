package placement

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/cluster"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sites"
)

// fakeLeader is the leader's side of a fakeDir.
type fakeLeader struct {
	d *fakeDir

	mu        sync.Mutex
	lapsed    []cluster.Lapse
	noLease   map[string]bool
	failovers []string // "site from→to lease"
	conflict  bool
}

func (l *fakeLeader) IsLeader() bool { return true }
func (l *fakeLeader) LapsedNodes() ([]cluster.Lapse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lapsed, nil
}
func (l *fakeLeader) LeaseValid(node string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lapsed {
		if x.Node == node {
			return false
		}
	}
	return !l.noLease[node]
}
func (l *fakeLeader) Failover(_ context.Context, site, from, to string, epoch, leaseIndex uint64) (cluster.SiteInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conflict {
		return cluster.SiteInfo{}, cluster.ErrConflict
	}
	l.failovers = append(l.failovers, site+" "+from+"→"+to)
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	s := l.d.sites[site]
	s.Primary, s.Epoch = to, epoch+1
	s.Failovers++
	s.LastFailover = cluster.FailoverInfo{From: from, To: to, Epoch: epoch + 1, LeaseIndex: leaseIndex, Time: time.Now()}
	l.d.sites[site] = s
	return s, nil
}

// statusNode serves a node's /_ephpm/repl/v1/status and records moves
// handed to it.
type statusNode struct {
	mu    sync.Mutex
	list  []replication.Status
	moves []string
}

func (n *statusNode) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		switch {
		case r.URL.Path == "/_ephpm/repl/v1/status":
			json.NewEncoder(w).Encode(n.list)
		case r.Method == "POST":
			n.moves = append(n.moves, r.URL.Path)
			json.NewEncoder(w).Encode(MoveResult{})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// newFailoverTest: this node "x" leads; "a" is the site's primary; "b"
// and "c" hold copies at the given positions.
func newFailoverTest(t *testing.T, settings string, posB, posC uint64) (*Placement, *fakeDir, *fakeLeader, map[string]*statusNode) {
	d, l, r := newFakeDir(), &fakeLocal{files: map[string][]byte{}}, &fakeRepl{state: map[string]string{}}
	nodes := map[string]*statusNode{}
	d.nodes = map[string]cluster.NodeInfo{}
	for _, name := range []string{"a", "b", "c"} {
		n := &statusNode{}
		nodes[name] = n
		d.nodes[name] = cluster.NodeInfo{Name: name, Repl: n.serve(t)}
		d.members = append(d.members, cluster.Member{NodeInfo: d.nodes[name], State: cluster.MemberAlive})
	}
	d.nodes["x"] = cluster.NodeInfo{Name: "x", Repl: "http://x.invalid"}
	nodes["b"].list = []replication.Status{{Site: "shop.test", Role: ephpm.RoleReplica, LogID: "L", Position: posB, State: "streaming"}}
	nodes["c"].list = []replication.Status{{Site: "shop.test", Role: ephpm.RoleReplica, LogID: "L", Position: posC, State: "streaming"}}
	d.sites["shop.test"] = cluster.SiteInfo{Name: "shop.test", Primary: "a", Epoch: 3, State: cluster.SiteActive}
	leader := &fakeLeader{d: d, noLease: map[string]bool{}}
	p := New(Config{Node: "x", Dir: d, Local: l, Repl: r, Leader: leader, Token: "tok-0123456789abcdef", Client: &http.Client{},
		DBPath: func(s string) string { return "/db/" + s + ".db" }})
	g := config.New()
	g.Cluster.Enabled = true
	s, err := g.ParseSite("shop.test", "/sites/shop.test/site.toml", "/sites/shop.test", []byte("[db.sqlite.replication]\nprimary = \"a\"\n"+settings))
	if err != nil {
		t.Fatal(err)
	}
	p.SetLocal([]sites.Replicated{{Name: "shop.test", DBPath: "/db/shop.test.db", Primary: "a", Settings: s.Replication}})
	return p, d, leader, nodes
}

func TestFailoverPromotesHighestPosition(t *testing.T) {
	p, d, l, _ := newFailoverTest(t, "", 10, 12)
	ctx := context.Background()
	p.failoverPass(ctx)
	if len(l.failovers) != 0 {
		t.Fatalf("failover with no lease lapsed: %v", l.failovers)
	}
	l.lapsed = []cluster.Lapse{{Node: "a", LeaseIndex: 77, For: time.Second}}
	p.failoverPass(ctx)
	if len(l.failovers) != 1 || l.failovers[0] != "shop.test a→c" {
		t.Fatalf("failovers %v, want c (the highest position)", l.failovers)
	}
	s, _ := d.Site("shop.test")
	if s.Epoch != 4 || s.LastFailover.LeaseIndex != 77 {
		t.Errorf("directory after the failover: %+v", s)
	}
	// A pass after it changes nothing (the primary is c now).
	p.failoverPass(ctx)
	if len(l.failovers) != 1 {
		t.Errorf("second failover: %v", l.failovers)
	}
}

func TestFailoverRespectsSettingsAndLeases(t *testing.T) {
	lapsed := []cluster.Lapse{{Node: "a", LeaseIndex: 5}}
	for _, tc := range []struct {
		name     string
		settings string
		noLease  string
		want     string
	}{
		{"manual", "failover = \"manual\"\n", "", ""},
		{"candidates", "candidates = [\"b\"]\n", "", "shop.test a→b"},
		{"candidate without a lease", "", "c", "shop.test a→b"},
		{"no candidate with a lease", "candidates = [\"c\"]\n", "c", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, l, _ := newFailoverTest(t, tc.settings, 10, 12)
			l.lapsed = lapsed
			if tc.noLease != "" {
				l.noLease[tc.noLease] = true
			}
			p.failoverPass(context.Background())
			got := ""
			if len(l.failovers) > 0 {
				got = l.failovers[0]
			}
			if got != tc.want {
				t.Errorf("failover %q, want %q", got, tc.want)
			}
		})
	}
	// A copy that never had a position cannot be promoted.
	p, _, l, nodes := newFailoverTest(t, "", 0, 0)
	nodes["b"].list[0].LogID = ""
	l.lapsed = lapsed
	p.failoverPass(context.Background())
	if len(l.failovers) != 0 {
		t.Errorf("promoted an empty copy: %v", l.failovers)
	}
	// The directory refuses (the primary renewed): no harm done.
	p, _, l, _ = newFailoverTest(t, "", 10, 12)
	l.lapsed, l.conflict = lapsed, true
	p.failoverPass(context.Background())
}

func TestFailbackAfterFailoverOnly(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, settings string) (*Placement, *fakeDir, map[string]*statusNode) {
		p, d, l, nodes := newFailoverTest(t, settings, 10, 12)
		p.failbackDelay = time.Millisecond
		p.check = time.Hour // only the passes the test runs
		l.lapsed = []cluster.Lapse{{Node: "a", LeaseIndex: 5}}
		p.failoverPass(ctx)
		l.lapsed = nil
		s, _ := d.Site("shop.test")
		// a is back, streaming from c, caught up.
		nodes["a"].list = []replication.Status{{Site: "shop.test", Role: ephpm.RoleReplica, LogID: "L", Position: 20, State: "streaming", Epoch: s.Epoch}}
		time.Sleep(5 * time.Millisecond)
		return p, d, nodes
	}
	run := func(p *Placement) {
		p.Start(ctx)
		p.failbackPass(ctx)
		time.Sleep(300 * time.Millisecond) // the move runs on the group
		p.Close()
	}
	p, _, nodes := setup(t, "")
	run(p)
	if len(nodes["a"].moves) != 1 {
		t.Fatalf("failback moves handed to a: %v", nodes["a"].moves)
	}
	p, _, nodes = setup(t, "failback = false\n")
	run(p)
	if len(nodes["a"].moves) != 0 {
		t.Errorf("failback = false, yet moved: %v", nodes["a"].moves)
	}
	// Not caught up: no move.
	p, _, nodes = setup(t, "")
	nodes["a"].list[0].LagFrames = 3
	run(p)
	if len(nodes["a"].moves) != 0 {
		t.Errorf("moved back before a caught up: %v", nodes["a"].moves)
	}
	// A later planned move (epoch past the failover's): stays.
	p, d, nodes := setup(t, "")
	s, _ := d.Site("shop.test")
	s.Epoch++
	d.sites["shop.test"] = s
	run(p)
	if len(nodes["a"].moves) != 0 {
		t.Errorf("moved back after a planned move: %v", nodes["a"].moves)
	}
}

// TestFailoverByRequest: `ephpm sites move` to a live node while the
// primary is gone is a failover the leader makes, also with
// failover = "manual", and only once the old lease lapsed.
func TestFailoverByRequest(t *testing.T) {
	p, _, l, _ := newFailoverTest(t, "failover = \"manual\"\n", 10, 12)
	ctx := context.Background()
	if _, err := p.failoverTo(ctx, "shop.test", "b"); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("failover while a's lease holds: %v", err)
	}
	l.lapsed = []cluster.Lapse{{Node: "a", LeaseIndex: 9}}
	p.failoverPass(ctx) // manual: the pass does nothing
	if len(l.failovers) != 0 {
		t.Fatalf("manual site failed over by itself: %v", l.failovers)
	}
	l.noLease["c"] = true
	if _, err := p.failoverTo(ctx, "shop.test", "c"); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("failover to a node without a lease: %v", err)
	}
	s, err := p.failoverTo(ctx, "shop.test", "b")
	if err != nil || s.Primary != "b" || len(l.failovers) != 1 {
		t.Fatalf("failover by request: %+v %v %v", s, err, l.failovers)
	}
}

// TestFailoverSettingsFromDirectory: a leader without the site's
// site.toml (files are not replicated yet) uses the one the site was
// created with.
func TestFailoverSettingsFromDirectory(t *testing.T) {
	p, d, l, _ := newFailoverTest(t, "", 10, 12)
	p.SetLocal(nil)
	s := d.sites["shop.test"]
	s.Config = []byte("[db.sqlite.replication]\nprimary = \"a\"\ncandidates = [\"b\"]\n")
	d.sites["shop.test"] = s
	l.lapsed = []cluster.Lapse{{Node: "a", LeaseIndex: 5}}
	p.failoverPass(context.Background())
	if len(l.failovers) != 1 || l.failovers[0] != "shop.test a→b" {
		t.Fatalf("failovers %v, want b (the directory's site.toml names it the only candidate)", l.failovers)
	}
}
