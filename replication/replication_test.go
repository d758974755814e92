package replication_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sqlite"
)

const token = "test-token-0123456789"

// node is one Manager with its own pool and data dir, serving its
// replication endpoint on loopback.
type node struct {
	m     *replication.Manager
	pool  *sqlite.Pool
	dir   string
	url   string
	srv   *http.Server
	conns atomic.Int64 // TCP connections accepted
	snaps atomic.Int64 // snapshot requests served
	// snapDelay holds each snapshot request; snapNow/snapMax count them
	// in flight.
	snapDelay        time.Duration
	snapNow, snapMax atomic.Int64
	execs            atomic.Int64 // forwarded statements received
	// proxied: requests a replica passed on whole (answered or 421)
	proxied atomic.Int64
	// hold: requests for /hold wait until it is closed.
	hold chan struct{}
}

func startNode(t testing.TB, dir string, compact int) *node {
	return startNodeIdle(t, dir, compact, 0)
}

func startNodeIdle(t testing.TB, dir string, compact int, idle time.Duration) *node {
	return startNodeWith(t, dir, idle, func(c *replication.Config) { c.CompactFrames = compact })
}

// startNodeWith starts a node whose HTTP front answers "served by <node>
// for <client>", so tests see where a request ran.
func startNodeWith(t testing.TB, dir string, idle time.Duration, conf func(*replication.Config)) *node {
	t.Helper()
	n := &node{dir: dir, hold: make(chan struct{})}
	n.pool = sqlite.NewPool(sqlite.PoolConfig{
		IdleClose: idle,
		OnOpen:    func(ctx context.Context, db *sqlite.DB) error { return n.m.OnOpen(ctx, db) },
		OnClose:   func(db *sqlite.DB) { n.m.OnClose(db) },
	})
	cfg := replication.Config{Node: filepath.Base(dir), Token: token, Pool: n.pool}
	conf(&cfg)
	m, err := replication.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-n.hold // a request still running on this node (see node.hold)
		}
		fmt.Fprintf(w, "served by %s for %s", filepath.Base(dir), r.RemoteAddr)
		if c, ok := ephpm.ClientOf(r.Context()); ok {
			fmt.Fprintf(w, " (https=%t server_port=%s via=%s)", c.HTTPS, c.ServerPort, c.Via)
		}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			fmt.Fprintf(w, " body=%s", b)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	h := m.Handler(front, nil)
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_ephpm/repl/v1/snapshot":
			n.snaps.Add(1)
			now := n.snapNow.Add(1)
			defer n.snapNow.Add(-1)
			for m := n.snapMax.Load(); now > m && !n.snapMax.CompareAndSwap(m, now); m = n.snapMax.Load() {
			}
			time.Sleep(n.snapDelay)
		case "/_ephpm/repl/v1/exec":
			n.execs.Add(1)
		}
		if r.Header.Get("X-Ephpm-Auth") != "" {
			n.proxied.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	n.srv = &http.Server{Handler: counted, Protocols: &p,
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 10000},
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				n.conns.Add(1)
			}
		}}
	go n.srv.Serve(ln)
	n.url = "http://" + ln.Addr().String()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.srv.Close()
	n.m.Close()
	n.pool.Close()
}

func (n *node) db(t testing.TB, site string) *sqlite.DB {
	t.Helper()
	db, release, err := n.pool.Acquire(context.Background(), filepath.Join(n.dir, site+".db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return db
}

func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func count(db *sqlite.DB, table string) int {
	var n int
	if err := db.Reader().QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		return -1
	}
	return n
}

func sameHash(t *testing.T, a, b string) bool {
	ha, _, err1 := sqlite.Hash(context.Background(), a)
	hb, _, err2 := sqlite.Hash(context.Background(), b)
	return err1 == nil && err2 == nil && ha == hb
}

func setup(primary, replica *node, sites ...string) {
	var p, r []replication.SiteConfig
	for _, s := range sites {
		p = append(p, replication.SiteConfig{Name: s, DBPath: filepath.Join(primary.dir, s+".db"), Role: ephpm.RolePrimary})
		r = append(r, replication.SiteConfig{Name: s, DBPath: filepath.Join(replica.dir, s+".db"), Role: ephpm.RoleReplica, PrimaryURL: primary.url})
	}
	primary.m.SetSites(p)
	replica.m.SetSites(r)
}

func TestReplicaFollowsPrimary(t *testing.T) {
	root := t.TempDir()
	p := startNode(t, filepath.Join(root, "frankfurt"), 0)
	r := startNode(t, filepath.Join(root, "tokyo"), 0)
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	setup(p, r, "alice-blog.com")

	pdb := p.db(t, "alice-blog.com")
	testutil.Exec(t, pdb, "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT)")
	for i := range 100 {
		testutil.Exec(t, pdb, "INSERT INTO posts (title) VALUES (?)", fmt.Sprint("post ", i))
	}
	// One transaction larger than a stream message (1,024 frames) goes
	// out in pieces and is applied whole.
	ctx := context.Background()
	w, err := pdb.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Begin(ctx)
	for range 1500 {
		if _, err := w.ExecContext(ctx, "INSERT INTO posts (title) VALUES (?)", strings.Repeat("big ", 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Release(ctx)
	testutil.Exec(t, pdb, "DELETE FROM posts WHERE title LIKE 'big %'")
	rdb := r.db(t, "alice-blog.com")
	eventually(t, "the replica at the primary's position", func() bool {
		return r.m.Status()[0].Position == p.m.Status()[0].Position
	})
	if n := count(rdb, "posts"); n != 100 {
		t.Fatalf("replica has %d rows, want 100", n)
	}
	if !sameHash(t, pdb.Path(), rdb.Path()) {
		ph, pn, _ := sqlite.Hash(context.Background(), pdb.Path())
		rh, rn, _ := sqlite.Hash(context.Background(), rdb.Path())
		t.Fatalf("replica pages differ from the primary's: %s %d / %s %d; status p=%+v r=%+v", ph, pn, rh, rn, p.m.Status(), r.m.Status())
	}
	// Nothing but replication writes a replica.
	if _, err := rdb.AcquireWriter(context.Background()); err == nil {
		t.Fatal("a client could write the replica")
	}
	st := r.m.Status()
	if len(st) != 1 || st[0].Role != "replica" || st[0].Position == 0 || st[0].LagFrames != 0 {
		t.Fatalf("status = %+v", st)
	}
}

func TestManySitesShareOneConnection(t *testing.T) {
	root := t.TempDir()
	p := startNode(t, filepath.Join(root, "frankfurt"), 0)
	r := startNode(t, filepath.Join(root, "tokyo"), 0)
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	var names []string
	for i := range 50 {
		names = append(names, fmt.Sprintf("site%02d.example", i))
	}
	setup(p, r, names...)
	for _, s := range names {
		testutil.Exec(t, p.db(t, s), "CREATE TABLE t (a)")
	}
	for _, s := range names {
		rdb := r.db(t, s)
		eventually(t, s+" replicated", func() bool { return count(rdb, "t") == 0 })
	}
	if c := p.conns.Load(); c != 1 {
		t.Fatalf("%d sites used %d TCP connections to the primary, want 1", len(names), c)
	}
}

func TestReplicaResumesAndRebootstraps(t *testing.T) {
	root := t.TempDir()
	pdir, rdir := filepath.Join(root, "frankfurt"), filepath.Join(root, "tokyo")
	os.MkdirAll(pdir, 0o700)
	os.MkdirAll(rdir, 0o700)
	p := startNode(t, pdir, 200)
	r := startNode(t, rdir, 0)
	setup(p, r, "s.com")
	pdb := p.db(t, "s.com")
	testutil.Exec(t, pdb, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
	testutil.Exec(t, pdb, "INSERT INTO t (b) VALUES ('one')")
	rdb := r.db(t, "s.com")
	eventually(t, "first row", func() bool { return count(rdb, "t") == 1 })
	txBefore := r.m.Status()[0].Txs

	// The replica stops; the primary writes on; the replica resumes from
	// its position (it applies only the new transactions).
	r.stop()
	for range 5 {
		testutil.Exec(t, pdb, "INSERT INTO t (b) VALUES ('while away')")
	}
	r2 := startNode(t, rdir, 0)
	r2.url = r.url
	setup(p, r2, "s.com")
	rdb2 := r2.db(t, "s.com")
	eventually(t, "resume", func() bool { return count(rdb2, "t") == 6 && r2.m.Status()[0].Position == p.m.Status()[0].Position })
	// The counter moves just after the rows become visible.
	eventually(t, "applied count", func() bool { return r2.m.Status()[0].Txs >= 5 })
	if st := r2.m.Status()[0]; st.Txs != 5 {
		t.Fatalf("resumed replica applied %d transactions (had %d before), want exactly the 5 new ones", st.Txs, txBefore)
	}

	// Compaction: a new replica bootstraps from the snapshot.
	for range 300 {
		testutil.Exec(t, pdb, "INSERT INTO t (b) VALUES (?)", strings.Repeat("x", 3000))
	}
	fdir := filepath.Join(root, "saopaulo")
	os.MkdirAll(fdir, 0o700)
	f := startNode(t, fdir, 0)
	f.m.SetSites([]replication.SiteConfig{{Name: "s.com", DBPath: filepath.Join(fdir, "s.com.db"), Role: ephpm.RoleReplica, PrimaryURL: p.url}})
	fdb := f.db(t, "s.com")
	eventually(t, "bootstrap", func() bool { return count(fdb, "t") == 306 })
	eventually(t, "same pages", func() bool { return sameHash(t, pdb.Path(), fdb.Path()) })
	if st := f.m.Status()[0]; st.Txs >= 300 {
		t.Fatalf("fresh replica replayed %d transactions instead of bootstrapping from the snapshot", st.Txs)
	}

	// The primary's log is reset (a new history): replicas start over.
	p.stop()
	os.RemoveAll(filepath.Join(pdir, "s.com.db-replog"))
	p2 := startNode(t, pdir, 0)
	pdb2 := p2.db(t, "s.com")
	testutil.Exec(t, pdb2, "DELETE FROM t WHERE a > 3")
	f.m.SetSites([]replication.SiteConfig{{Name: "s.com", DBPath: filepath.Join(fdir, "s.com.db"), Role: ephpm.RoleReplica, PrimaryURL: p2.url}})
	p2.m.SetSites([]replication.SiteConfig{{Name: "s.com", DBPath: filepath.Join(pdir, "s.com.db"), Role: ephpm.RolePrimary}})
	eventually(t, "re-bootstrap after the log reset", func() bool { return count(fdb, "t") == 3 })
	eventually(t, "same pages after reset", func() bool { return sameHash(t, pdb2.Path(), fdb.Path()) })
}

func TestStreamNeedsToken(t *testing.T) {
	root := t.TempDir()
	p := startNode(t, filepath.Join(root, "frankfurt"), 0)
	for _, path := range []string{"/_ephpm/repl/v1/stream?site=x&from=0", "/_ephpm/repl/v1/snapshot?site=x", "/_ephpm/repl/v1/status"} {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
			req, _ := http.NewRequest("GET", p.url+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with %q: %s, want 401", path, auth, resp.Status)
			}
		}
	}
	// Forwarded requests too.
	req, _ := http.NewRequest("POST", p.url+"/wp-admin/post.php", nil)
	req.Header.Set("X-Ephpm-Forwarded", "evil")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forwarded request without token: %s", resp.Status)
	}
}

func TestReplicationOverTLS(t *testing.T) {
	root := t.TempDir()
	pdir, rdir := filepath.Join(root, "frankfurt"), filepath.Join(root, "tokyo")
	os.MkdirAll(pdir, 0o700)
	os.MkdirAll(rdir, 0o700)
	p := &node{dir: pdir}
	p.pool = sqlite.NewPool(sqlite.PoolConfig{
		OnOpen:  func(ctx context.Context, db *sqlite.DB) error { return p.m.OnOpen(ctx, db) },
		OnClose: func(db *sqlite.DB) { p.m.OnClose(db) },
	})
	var err error
	if p.m, err = replication.New(replication.Config{Node: "frankfurt", Token: token, Pool: p.pool}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(p.m.Handler(http.NotFoundHandler(), nil))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(func() { ts.Close(); p.m.Close(); p.pool.Close() })

	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	r := &node{dir: rdir}
	r.pool = sqlite.NewPool(sqlite.PoolConfig{
		OnOpen:  func(ctx context.Context, db *sqlite.DB) error { return r.m.OnOpen(ctx, db) },
		OnClose: func(db *sqlite.DB) { r.m.OnClose(db) },
	})
	client := replication.NewClient(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}})
	if r.m, err = replication.New(replication.Config{Node: "tokyo", Token: token, Pool: r.pool, Client: client}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.m.Close(); r.pool.Close() })

	p.url = ts.URL
	setup(p, r, "tls.example")
	pdb := p.db(t, "tls.example")
	testutil.Exec(t, pdb, "CREATE TABLE t (a)")
	testutil.Exec(t, pdb, "INSERT INTO t VALUES (1)")
	rdb := r.db(t, "tls.example")
	eventually(t, "replicated over TLS", func() bool { return count(rdb, "t") == 1 })

	// A replica that does not trust the primary's certificate gets nothing.
	odir := filepath.Join(root, "saopaulo")
	os.MkdirAll(odir, 0o700)
	o := startNode(t, odir, 0) // default client: system roots
	o.m.SetSites([]replication.SiteConfig{{Name: "tls.example", DBPath: filepath.Join(odir, "tls.example.db"), Role: ephpm.RoleReplica, PrimaryURL: ts.URL}})
	eventually(t, "untrusted primary refused", func() bool {
		st := o.m.Status()[0]
		return st.Position == 0 && strings.Contains(st.State, "certificate")
	})
}

func TestRouteWritesAndReadYourWrites(t *testing.T) {
	root := t.TempDir()
	p := startNode(t, filepath.Join(root, "frankfurt"), 0)
	r := startNodeWith(t, filepath.Join(root, "tokyo"), 0, func(c *replication.Config) {
		c.WaitApplied = 300 * time.Millisecond
		c.WritePaths = []string{"/wp-admin/", "/wp-login.php"}
	})
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	setup(p, r, "s.com")
	testutil.Exec(t, p.db(t, "s.com"), "CREATE TABLE t (a)")
	eventually(t, "replica caught up", func() bool { return r.m.Status()[0].Position == p.m.Status()[0].Position })
	route := r.m.Route("s.com")
	do := func(method, path, cookie string) (bool, *httptest.ResponseRecorder) {
		req := httptest.NewRequest(method, "http://s.com"+path, nil)
		req.RemoteAddr = "203.0.113.7:4444"
		req.Header.Set("X-Ephpm-Forwarded", "spoofed") // a client's own is dropped
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: replication.CookieName, Value: cookie})
		}
		rec := httptest.NewRecorder()
		return route(rec, req), rec
	}
	if handled, _ := do("GET", "/", ""); handled {
		t.Fatal("a plain read left the replica")
	}
	// A write goes whole to the primary, with the client's address, and
	// comes back with the primary's position as a cookie.
	handled, rec := do("POST", "/wp-admin/post.php", "")
	if !handled || rec.Body.String() != "served by frankfurt for 203.0.113.7:4444 (https=false server_port= via=tokyo)" {
		t.Fatalf("POST: handled=%v %q", handled, rec.Body.String())
	}
	var frame string
	for _, c := range rec.Result().Cookies() {
		if c.Name == replication.CookieName {
			frame = c.Value
		}
	}
	// "<frame>.<expiry>.<mac>", the frame in base 36.
	if pos := p.m.Status()[0].Position; !strings.HasPrefix(frame, strconv.FormatUint(pos, 36)+".") {
		t.Fatalf("cookie %q, primary at %d", frame, pos)
	}
	if handled, _ := do("GET", "/wp-login.php", ""); !handled {
		t.Fatal("a write path was served by the replica")
	}
	// A read from a client whose write this replica has: served here.
	if handled, _ := do("GET", "/", frame); handled {
		t.Fatal("a read the replica can serve left it")
	}
	// One whose write has not arrived: waits, then goes to the primary
	// rather than serve stale data.
	start := time.Now()
	handled, rec = do("GET", "/", replication.FrameCookie(r.m, "s.com", p.m.Status()[0].Position+1000, time.Now().Add(time.Minute)))
	if !handled || !strings.HasPrefix(rec.Body.String(), "served by frankfurt") {
		t.Fatalf("stale read: handled=%v %q", handled, rec.Body.String())
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("gave up after %s, before wait_applied", waited)
	}
}

// A node that must copy many sites copies a few snapshots at a time
// (MaxBootstraps), not all at once.
func TestBootstrapsAreBounded(t *testing.T) {
	root := t.TempDir()
	pdir, rdir := filepath.Join(root, "frankfurt"), filepath.Join(root, "tokyo")
	os.MkdirAll(pdir, 0o700)
	os.MkdirAll(rdir, 0o700)
	p := startNode(t, pdir, 20)
	p.snapDelay = 150 * time.Millisecond
	const sites = 6
	var prim []replication.SiteConfig
	for i := range sites {
		name := fmt.Sprintf("s%d.com", i)
		prim = append(prim, replication.SiteConfig{Name: name, DBPath: filepath.Join(pdir, name+".db"), Role: ephpm.RolePrimary})
	}
	p.m.SetSites(prim)
	for i := range sites {
		db := p.db(t, fmt.Sprintf("s%d.com", i))
		testutil.Exec(t, db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
		for range 60 { // past compaction: a new replica needs the snapshot
			testutil.Exec(t, db, "INSERT INTO t (b) VALUES (?)", strings.Repeat("x", 3000))
		}
	}
	r := startNodeWith(t, rdir, 0, func(c *replication.Config) { c.MaxBootstraps = 2 })
	var repl []replication.SiteConfig
	for i := range sites {
		name := fmt.Sprintf("s%d.com", i)
		repl = append(repl, replication.SiteConfig{Name: name, DBPath: filepath.Join(rdir, name+".db"), Role: ephpm.RoleReplica, PrimaryURL: p.url})
	}
	r.m.SetSites(repl)
	eventually(t, "every site copied", func() bool {
		for i := range sites {
			if count(r.db(t, fmt.Sprintf("s%d.com", i)), "t") != 60 {
				return false
			}
		}
		return true
	})
	if n := p.snaps.Load(); n < sites {
		t.Fatalf("%d snapshots served, want %d (the test needs every replica to bootstrap)", n, sites)
	}
	if m := p.snapMax.Load(); m > 2 {
		t.Errorf("%d snapshots copied at once, want at most MaxBootstraps = 2", m)
	}
}
