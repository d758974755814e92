package replication_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
)

func leaseNode(t *testing.T, leases bool) *node {
	t.Helper()
	n := startNodeWith(t, t.TempDir(), 0, func(c *replication.Config) { c.Leases = leases })
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantNoLease(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, replication.ErrNoLease) || !errors.Is(err, ephpm.ErrNoLease) {
		t.Fatalf("write = %v, want ErrNoLease", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "site "+moveSite+": ") || !strings.Contains(msg, reason) ||
		!strings.Contains(msg, "writes refused, reads still served") {
		t.Fatalf("message %q does not name the site and %q", msg, reason)
	}
}

// A lease that runs out closes the site's writes at its end, with no
// further SetLease: a write fails at once, a transaction open across the
// end fails at COMMIT and leaves nothing, reads go on; a new lease opens
// them again.
func TestLeaseLapseRefusesWrites(t *testing.T) {
	ctx := context.Background()
	n := leaseNode(t, true)
	n.m.SetSites([]replication.SiteConfig{siteCfg(n, ephpm.RolePrimary, nil, 3)})
	// No lease yet: not writable.
	if err := writeRow(ctx, n, 1); err == nil {
		t.Fatal("a write before the first SetLease succeeded")
	} else {
		wantNoLease(t, err, "no primary lease yet")
	}
	n.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{moveSite: 3})
	testutil.Exec(t, n.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	if err := writeRow(ctx, n, 1); err != nil {
		t.Fatalf("write under the lease: %v", err)
	}

	until := time.Now().Add(2 * time.Second) // room for the steps below under -race
	n.m.SetLease(until, map[string]uint64{moveSite: 3})
	db := n.db(t, moveSite)
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, "INSERT INTO t (id) VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(until) + 20*time.Millisecond)
	wantNoLease(t, w.Commit(ctx), "lease lapsed")
	w.Release(ctx)

	start := time.Now()
	err = writeRow(ctx, n, 3)
	wantNoLease(t, err, "this node's primary lease lapsed (the cluster directory is unreachable)")
	if d := time.Since(start); d > time.Second {
		t.Errorf("the refusal took %v: it must not wait", d)
	}
	if !errors.Is(db.Refused(), ephpm.ErrNoLease) {
		t.Errorf("the gate is not closed after the lease's end: %v", db.Refused())
	}
	if got := count(db, "t"); got != 1 {
		t.Fatalf("%d rows, want 1 (reads still served, nothing committed after the lease)", got)
	}
	if st := statusOf(t, n); !strings.Contains(st.Lease, "lease lapsed") {
		t.Errorf("status lease %q, want it lapsed", st.Lease)
	}

	n.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{moveSite: 3})
	if err := writeRow(ctx, n, 4); err != nil {
		t.Fatalf("write after the lease was granted again: %v", err)
	}
	if st := statusOf(t, n); st.Lease != "held" {
		t.Errorf("status lease %q, want held", st.Lease)
	}
}

// A lease for another epoch of the site, or one that does not name it,
// is no lease.
func TestLeaseForAnotherEpochRefuses(t *testing.T) {
	ctx := context.Background()
	n := leaseNode(t, true)
	n.m.SetSites([]replication.SiteConfig{siteCfg(n, ephpm.RolePrimary, nil, 3)})
	n.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{moveSite: 3})
	testutil.Exec(t, n.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	n.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{moveSite: 2})
	wantNoLease(t, writeRow(ctx, n, 1), "lease is for epoch 2, the site is at epoch 3")
	n.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{"other.test": 3})
	wantNoLease(t, writeRow(ctx, n, 1), "does not name the site")
	// The directory's epoch catches up with the lease.
	n.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{moveSite: 4})
	n.m.SetSites([]replication.SiteConfig{siteCfg(n, ephpm.RolePrimary, nil, 4)})
	if err := writeRow(ctx, n, 1); err != nil {
		t.Fatalf("write with the lease for the site's new epoch: %v", err)
	}
}

// A lease that moved the site away does not fail writers at the gate
// (a move's fence wakes them with the demotion, to be forwarded), but no
// commit goes through; the zero lease (it ran out) is a lapse, whatever
// its sites.
func TestLeaseMovedAwayWaitsLapsedRefuses(t *testing.T) {
	ctx := context.Background()
	n := leaseNode(t, true)
	n.m.SetSites([]replication.SiteConfig{siteCfg(n, ephpm.RolePrimary, nil, 3)})
	n.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{moveSite: 3})
	db := n.db(t, moveSite)
	testutil.Exec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	n.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{})
	if db.Refused() != nil {
		t.Fatalf("gate refuses for a site that moved away: %v", db.Refused())
	}
	wantNoLease(t, writeRow(ctx, n, 1), "does not name the site")
	n.m.SetLease(time.Time{}, nil)
	if db.Refused() == nil {
		t.Fatal("the zero lease left the gate open")
	}
	wantNoLease(t, writeRow(ctx, n, 2), "lease lapsed")
}

// Static sites (epoch 0) are never gated; without Config.Leases nothing
// is.
func TestLeaseGatesOnlyClusterSites(t *testing.T) {
	ctx := context.Background()
	n := leaseNode(t, true)
	n.m.SetSites([]replication.SiteConfig{siteCfg(n, ephpm.RolePrimary, nil, 0)})
	testutil.Exec(t, n.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	if err := writeRow(ctx, n, 1); err != nil {
		t.Fatalf("static site with Leases and no lease: %v", err)
	}
	off := leaseNode(t, false)
	off.m.SetSites([]replication.SiteConfig{siteCfg(off, ephpm.RolePrimary, nil, 5)})
	off.m.SetLease(time.Now().Add(-time.Second), nil) // ignored
	testutil.Exec(t, off.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	if err := writeRow(ctx, off, 1); err != nil {
		t.Fatalf("cluster site without Leases: %v", err)
	}
}

// A write request to a primary without its lease gets 503 naming the
// site before PHP runs, directly or forwarded by a replica (which passes
// the 503 on); reads are served.
func TestLeaseRouteRefusesWriteRequests(t *testing.T) {
	p := leaseNode(t, true)
	r := leaseNode(t, true)
	p.m.SetSites([]replication.SiteConfig{siteCfg(p, ephpm.RolePrimary, nil, 2)})
	// The primary's HTTP front as httpd runs it: the route hook first.
	proute := p.m.Route(moveSite)
	ps := httptest.NewUnstartedServer(p.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !proute(w, req) {
			w.Write([]byte("served by php"))
		}
	}), nil))
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	ps.Config.Protocols = &protos
	ps.Start()
	t.Cleanup(func() {
		r.m.SetSites(nil) // its stream holds a connection Close would wait for
		ps.CloseClientConnections()
		ps.Close()
	})
	rc := siteCfg(r, ephpm.RoleReplica, nil, 2)
	rc.PrimaryURL = ps.URL
	r.m.SetSites([]replication.SiteConfig{rc})
	p.m.SetLease(time.Now().Add(-time.Millisecond), map[string]uint64{moveSite: 2})

	for _, tc := range []struct {
		n    *node
		name string
	}{{p, "primary"}, {r, "replica"}} {
		route := tc.n.m.Route(moveSite)
		rec := serve(route, httptest.NewRequest(http.MethodPost, "http://"+moveSite+"/wp-comments-post.php", strings.NewReader("c=1")))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
			!strings.Contains(rec.Body.String(), "site "+moveSite+": this node's primary lease lapsed") {
			t.Fatalf("%s: POST = %d %q %v, want 503 naming the site", tc.name, rec.Code, rec.Body.String(), rec.Header())
		}
		if rec := serve(route, httptest.NewRequest(http.MethodGet, "http://"+moveSite+"/", nil)); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "served locally") {
			t.Fatalf("%s: GET = %d %q, want it served", tc.name, rec.Code, rec.Body.String())
		}
	}
	// With the lease, the forwarded write runs on the primary.
	p.m.SetLease(time.Now().Add(time.Hour), map[string]uint64{moveSite: 2})
	rec := serve(r.m.Route(moveSite), httptest.NewRequest(http.MethodPost, "http://"+moveSite+"/wp-comments-post.php", strings.NewReader("c=1")))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "served by php") {
		t.Fatalf("forwarded POST under the lease = %d %q", rec.Code, rec.Body.String())
	}
}
