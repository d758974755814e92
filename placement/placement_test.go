package placement

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/cluster"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sites"
)

// fakeDir is a directory held in memory.
type fakeDir struct {
	mu       sync.Mutex
	sites    map[string]cluster.SiteInfo
	nodes    map[string]cluster.NodeInfo
	creates  []string
	notReady error
	members  []cluster.Member
}

func newFakeDir() *fakeDir {
	return &fakeDir{sites: map[string]cluster.SiteInfo{}, nodes: map[string]cluster.NodeInfo{
		"a": {Name: "a", Repl: "http://a:5001"}, "b": {Name: "b", Repl: "http://b:5001"},
	}}
}

func (d *fakeDir) Sites() []cluster.SiteInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cluster.SiteInfo
	for _, s := range d.sites {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
func (d *fakeDir) Site(n string) (cluster.SiteInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.sites[n]
	return s, ok
}
func (d *fakeDir) Node(n string) (cluster.NodeInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.nodes[n]
	return s, ok
}
func (d *fakeDir) Status() cluster.Status {
	return cluster.Status{Node: "a", Sites: d.Sites(), Members: d.members}
}
func (d *fakeDir) Ready() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.notReady
}
func (d *fakeDir) CreateSite(_ context.Context, name, primary string, conf []byte) (cluster.SiteInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.sites[name]; ok && s.State == cluster.SiteActive {
		return s, cluster.ErrSiteExists
	}
	if _, ok := d.nodes[primary]; !ok {
		return cluster.SiteInfo{}, cluster.ErrUnknownNode
	}
	d.creates = append(d.creates, name)
	s := cluster.SiteInfo{Name: name, Primary: primary, Epoch: 1, State: cluster.SiteActive, Config: conf}
	d.sites[name] = s
	return s, nil
}
func (d *fakeDir) RemoveSite(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.sites[name]
	if !ok {
		return cluster.ErrNoSite
	}
	s.State = cluster.SiteRemoved
	d.sites[name] = s
	return nil
}
func (d *fakeDir) RemoveNode(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.nodes, name)
	return nil
}
func (d *fakeDir) SetPrimary(_ context.Context, name, to string, epoch uint64) (cluster.SiteInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.sites[name]
	if !ok {
		return s, cluster.ErrNoSite
	}
	if s.Epoch != epoch {
		return s, cluster.ErrEpochChanged
	}
	s.Primary, s.Epoch = to, epoch+1
	d.sites[name] = s
	return s, nil
}

// fakeLocal is a sites_dir held in memory.
type fakeLocal struct {
	mu      sync.Mutex
	files   map[string][]byte
	removed []string
}

func (l *fakeLocal) IsSite(n string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.files[n]
	return ok
}
func (l *fakeLocal) SiteFile(n string) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.files[n]
	if !ok {
		return nil, sites.ErrNoSite
	}
	return b, nil
}
func (l *fakeLocal) Create(n string, conf []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.files[n]; !ok {
		l.files[n] = conf
	}
	return nil
}
func (l *fakeLocal) Remove(n string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.files, n)
	l.removed = append(l.removed, n)
	return nil
}

// fakeRepl records SetSites.
type fakeRepl struct {
	mu    sync.Mutex
	last  []replication.SiteConfig
	state map[string]string
	took  []string
}

func (r *fakeRepl) SetSites(l []replication.SiteConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = l
}
func (r *fakeRepl) Status() []replication.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []replication.Status
	for _, c := range r.last {
		st := replication.Status{Site: c.Name, Role: c.Role, State: r.state[c.Name]}
		out = append(out, st)
	}
	return out
}
func (r *fakeRepl) TakeOver(ctx context.Context, site string, commit func(context.Context) error) (replication.TakeOverStats, error) {
	r.mu.Lock()
	r.took = append(r.took, site)
	r.mu.Unlock()
	return replication.TakeOverStats{Pause: time.Millisecond}, commit(ctx)
}
func (r *fakeRepl) roles() map[string]replication.SiteConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]replication.SiteConfig{}
	for _, c := range r.last {
		m[c.Name] = c
	}
	return m
}

func newTest(t *testing.T, node string) (*Placement, *fakeDir, *fakeLocal, *fakeRepl) {
	d, l, r := newFakeDir(), &fakeLocal{files: map[string][]byte{}}, &fakeRepl{state: map[string]string{}}
	p := New(Config{Node: node, Dir: d, Local: l, Repl: r, DBPath: func(s string) string { return "/db/" + s + ".db" }, Token: "tok-0123456789abcdef"})
	return p, d, l, r
}

func TestReconcileFollowsDirectory(t *testing.T) {
	p, d, l, r := newTest(t, "b")
	ctx := context.Background()
	if _, err := d.CreateSite(ctx, "blog.test", "a", []byte("[db.sqlite.replication]\nprimary = \"a\"\n# from a\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSite(ctx, "mine.test", "b", nil); err != nil {
		t.Fatal(err)
	}
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	// Both sites were made here, with the directory's site.toml.
	if b, _ := l.SiteFile("blog.test"); !strings.Contains(string(b), "# from a") {
		t.Errorf("blog.test site.toml = %q", b)
	}
	if b, _ := l.SiteFile("mine.test"); string(b) != "[db.sqlite.replication]\nprimary = \"b\"\n" {
		t.Errorf("mine.test site.toml = %q", b)
	}
	roles := r.roles()
	if c := roles["blog.test"]; c.Role != ephpm.RoleReplica || c.PrimaryURL != "http://a:5001" || c.DBPath != "/db/blog.test.db" || c.Epoch != 1 {
		t.Errorf("blog.test = %+v", c)
	}
	if c := roles["mine.test"]; c.Role != ephpm.RolePrimary {
		t.Errorf("mine.test = %+v", c)
	}
	// Not ready until the replica streams.
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "1 of 2") {
		t.Errorf("Ready = %v", err)
	}
	r.mu.Lock()
	r.state["blog.test"] = string(replication.ReplicaStreaming)
	r.mu.Unlock()
	if err := p.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
	// Its primary unreachable: the replica still serves reads, so the
	// node stays ready.
	r.mu.Lock()
	r.state["blog.test"] = string(replication.ReplicaFailed) + `: Get "http://a:5001/_ephpm/repl/v1/ping": http2: client connection lost`
	r.mu.Unlock()
	if err := p.Ready(); err != nil {
		t.Errorf("Ready with the primary unreachable = %v", err)
	}
	r.mu.Lock()
	r.state["blog.test"] = string(replication.ReplicaStreaming)
	r.mu.Unlock()

	// A move in the directory: roles follow.
	if _, err := d.SetPrimary(ctx, "blog.test", "b", 1); err != nil {
		t.Fatal(err)
	}
	p.SetLocal([]sites.Replicated{{Name: "blog.test", DBPath: "/db/blog.test.db", Primary: "a"}, {Name: "mine.test", DBPath: "/db/mine.test.db", Primary: "b"}})
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if c := r.roles()["blog.test"]; c.Role != ephpm.RolePrimary || c.Epoch != 2 {
		t.Errorf("after the move blog.test = %+v", c)
	}

	// A removal: the site leaves this node and replication.
	if err := d.RemoveSite(ctx, "mine.test"); err != nil {
		t.Fatal(err)
	}
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if l.IsSite("mine.test") || len(l.removed) != 1 {
		t.Errorf("mine.test still here (removed %v)", l.removed)
	}
	if _, ok := r.roles()["mine.test"]; ok {
		t.Error("mine.test still replicated")
	}
}

func TestReconcileRegistersLocalSites(t *testing.T) {
	p, d, l, r := newTest(t, "a")
	ctx := context.Background()
	l.files["new.test"] = []byte("[db.sqlite.replication]\nprimary = \"a\"\n")
	l.files["typo.test"] = []byte("[db.sqlite.replication]\nprimary = \"zz\"\n")
	p.SetLocal([]sites.Replicated{
		{Name: "new.test", DBPath: "/db/new.test.db", Primary: "a"},
		{Name: "typo.test", DBPath: "/db/typo.test.db", Primary: "zz"},
		{Name: "static.test", DBPath: "/db/static.test.db", Role: ephpm.RoleReplica, PrimaryURL: "http://x:1"},
	})
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if s, ok := d.Site("new.test"); !ok || s.Primary != "a" || string(s.Config) != string(l.files["new.test"]) {
		t.Errorf("new.test in the directory: %+v %v", s, ok)
	}
	if _, ok := d.Site("typo.test"); ok {
		t.Error("a site naming an unknown node was registered")
	}
	// The static form is left as written.
	if c := r.roles()["static.test"]; c.Role != ephpm.RoleReplica || c.PrimaryURL != "http://x:1" {
		t.Errorf("static.test = %+v", c)
	}
	// Registered on the next pass it takes its role.
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if c := r.roles()["new.test"]; c.Role != ephpm.RolePrimary {
		t.Errorf("new.test = %+v", c)
	}
}

func TestReconfirm(t *testing.T) {
	p, d, _, _ := newTest(t, "a")
	ctx := context.Background()
	d.CreateSite(ctx, "s.test", "a", nil)
	if ok, err := p.Reconfirm(ctx, "s.test"); !ok || err != nil {
		t.Fatalf("Reconfirm = %v, %v", ok, err)
	}
	if s, _ := d.Site("s.test"); s.Epoch != 2 || s.Primary != "a" {
		t.Errorf("after Reconfirm: %+v (want epoch 2, so a late takeover at epoch 1 fails)", s)
	}
	if _, err := d.SetPrimary(ctx, "s.test", "b", 1); !errors.Is(err, cluster.ErrEpochChanged) {
		t.Errorf("late takeover: %v", err)
	}
	d.SetPrimary(ctx, "s.test", "b", 2)
	if ok, err := p.Reconfirm(ctx, "s.test"); ok || err != nil {
		t.Errorf("Reconfirm after a move = %v, %v", ok, err)
	}
}

func TestHandlerAuthAndMove(t *testing.T) {
	p, d, _, r := newTest(t, "b")
	p.Start(context.Background())
	defer p.Close()
	ctx := context.Background()
	d.CreateSite(ctx, "s.test", "a", nil)
	// Nodes speak HTTP/2 without TLS (replication.NewClient).
	srv := httptest.NewUnstartedServer(p.Handler())
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &protos
	srv.Start()
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+PathStatus, nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad token: %d", resp.StatusCode)
	}

	// A move to this node takes the site over and records it.
	var res MoveResult
	if err := p.call(ctx, "POST", srv.URL+PathSites+"/s.test/move", MoveRequest{To: "b"}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 2 || res.From != "a" || len(r.took) != 1 {
		t.Errorf("move: %+v, took %v", res, r.took)
	}
	if c := r.roles()["s.test"]; c.Role != ephpm.RolePrimary {
		t.Errorf("after the move this node is %+v", c)
	}
	// A site that does not exist: 404.
	err = p.call(ctx, "POST", srv.URL+PathSites+"/nope.test/move", MoveRequest{To: "b"}, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Status != http.StatusNotFound {
		t.Errorf("unknown site: %v", err)
	}
	// Create with a bad name: 400.
	err = p.call(ctx, "POST", srv.URL+PathSites, CreateRequest{Name: "../etc", Primary: "a"}, nil)
	if !errors.As(err, &re) || re.Status != http.StatusBadRequest {
		t.Errorf("bad name: %v", err)
	}
}

// A directory that is not caught up decides nothing: cluster sites wait
// read-only with no primary, nothing is registered or removed.
func TestReconcileDirectoryNotReady(t *testing.T) {
	p, d, l, r := newTest(t, "a")
	ctx := context.Background()
	d.notReady = errors.New("no leader")
	l.files["mine.test"] = []byte("[db.sqlite.replication]\nprimary = \"a\"\n")
	p.SetLocal([]sites.Replicated{
		{Name: "mine.test", DBPath: "/db/mine.test.db", Primary: "a"},
		{Name: "static.test", DBPath: "/db/static.test.db", Role: ephpm.RolePrimary},
	})
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	roles := r.roles()
	if c := roles["mine.test"]; c.Role != ephpm.RoleReplica || c.PrimaryURL != "" {
		t.Errorf("mine.test while the directory is not ready = %+v (want a read-only replica with no primary)", c)
	}
	if c := roles["static.test"]; c.Role != ephpm.RolePrimary {
		t.Errorf("static.test = %+v", c)
	}
	if len(d.creates) != 0 {
		t.Errorf("registered %v on a directory that is not ready", d.creates)
	}
	if err := p.Ready(); err == nil {
		t.Error("ready with the directory not ready")
	}
	d.mu.Lock()
	d.notReady = nil
	d.mu.Unlock()
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Site("mine.test"); !ok {
		t.Error("not registered once the directory was ready")
	}
	// Cut off again after a ready pass: the roles stay (the lease, not
	// placement, stops a primary's writes).
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if c := r.roles()["mine.test"]; c.Role != ephpm.RolePrimary {
		t.Fatalf("mine.test once ready = %+v", c)
	}
	d.mu.Lock()
	d.notReady = errors.New("leader lost")
	d.mu.Unlock()
	if err := p.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if c := r.roles()["mine.test"]; c.Role != ephpm.RolePrimary {
		t.Errorf("mine.test after losing the leader = %+v (want its role kept)", c)
	}
}
