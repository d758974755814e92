package replication_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
)

// unreachableCeiling is far above what a request to a silent primary
// now takes (DefaultPeerPingIdle + DefaultPeerPingTimeout, ~5 s) and
// below the 25 s+ it used to hang: not a timing assertion, a guard
// against the old behaviour.
const unreachableCeiling = 15 * time.Second

// startProxiedPair runs a primary (frankfurt) and a replica (tokyo) of
// s.com, caught up, the replica reaching the primary through px.
func startProxiedPair(t *testing.T) (p, r *node, px *testutil.DelayProxy) {
	t.Helper()
	root := t.TempDir()
	p = startNodeWith(t, filepath.Join(root, "frankfurt"), 0, func(c *replication.Config) {
		c.OpenSession = func(context.Context, string) (replication.StatementSession, error) {
			return &fakeSession{res: &ephpm.Result{}}, nil
		}
	})
	r = startNodeWith(t, filepath.Join(root, "tokyo"), 0, func(c *replication.Config) { c.WaitApplied = 100 * time.Millisecond })
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	px = testutil.NewDelayProxy(t, strings.TrimPrefix(p.url, "http://"), 0)
	p.m.SetSites([]replication.SiteConfig{{Name: "s.com", DBPath: filepath.Join(p.dir, "s.com.db"), Role: ephpm.RolePrimary}})
	r.m.SetSites([]replication.SiteConfig{{Name: "s.com", DBPath: filepath.Join(r.dir, "s.com.db"), Role: ephpm.RoleReplica, PrimaryURL: "http://" + px.Addr}})
	testutil.Exec(t, p.db(t, "s.com"), "CREATE TABLE t (a)")
	eventually(t, "replica caught up", func() bool {
		ps, rs := p.m.Status(), r.m.Status()
		return len(ps) == 1 && len(rs) == 1 && rs[0].Position > 0 && ps[0].Position == rs[0].Position
	})
	return p, r, px
}

// serve is the replica's front: the route hook, else "served locally".
func serve(route func(http.ResponseWriter, *http.Request) bool, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	if !route(rec, req) {
		rec.WriteString("served locally")
	}
	return rec
}

// TestPrimaryUnreachable: with the primary silent (a partition), a
// replica answers a forwarded statement and a forwarded write request
// with a clear error, quickly, and serves a read whose client's write it
// has not applied from its own copy, marked stale.
func TestPrimaryUnreachable(t *testing.T) {
	p, r, px := startProxiedPair(t)
	route := r.m.Route("s.com")
	ahead := replication.FrameCookie(r.m, "s.com", position(p.m, "s.com")+1000, time.Now().Add(time.Minute))
	read := func() *http.Request {
		req := httptest.NewRequest("GET", "http://s.com/", nil)
		req.AddCookie(&http.Cookie{Name: replication.CookieName, Value: ahead})
		return req
	}

	// Reachable: the read goes to the primary, as before.
	if rec := serve(route, read()); !strings.HasPrefix(rec.Body.String(), "served by frankfurt") || rec.Header().Get(replication.HdrStale) != "" {
		t.Fatalf("read with the primary reachable: %q %v", rec.Body.String(), rec.Header())
	}

	px.Pause()

	t.Run("stale read", func(t *testing.T) {
		rec := serve(route, read())
		if rec.Code != http.StatusOK || rec.Body.String() != "served locally" || rec.Header().Get(replication.HdrStale) != "1" {
			t.Fatalf("a read ahead of the replica, primary unreachable: %d %v %q", rec.Code, rec.Header(), rec.Body.String())
		}
		// Once the stream has noticed, such reads stay here at once.
		testutil.RetryUntil(t, 30*time.Second, func() error {
			if st := r.m.Status()[0].State; !strings.HasPrefix(st, "error") {
				return fmt.Errorf("replica state %q", st)
			}
			return nil
		})
		if rec := serve(route, read()); rec.Body.String() != "served locally" || rec.Header().Get(replication.HdrStale) != "1" {
			t.Fatalf("a read with the stream down: %q %v", rec.Body.String(), rec.Header())
		}
	})

	t.Run("statement", func(t *testing.T) {
		sess := r.m.Forwarder("s.com").Open()
		defer sess.Close()
		start := time.Now()
		_, err := sess.Exec(context.Background(), "INSERT INTO t VALUES (1)", nil)
		var se *ephpm.SQLError
		if !errors.As(err, &se) || !strings.Contains(se.Message, "s.com") || !strings.Contains(se.Message, "primary unreachable") {
			t.Fatalf("a forwarded statement with the primary unreachable: %v", err)
		}
		if d := time.Since(start); d > unreachableCeiling {
			t.Fatalf("answered after %s", d)
		}
	})

	t.Run("request", func(t *testing.T) {
		start := time.Now()
		rec := serve(route, httptest.NewRequest("POST", "http://s.com/wp-admin/post.php", strings.NewReader("x=1")))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "primary unreachable") {
			t.Fatalf("a forwarded write with the primary unreachable: %d %v %q", rec.Code, rec.Header(), rec.Body.String())
		}
		if d := time.Since(start); d > unreachableCeiling {
			t.Fatalf("answered after %s", d)
		}
	})

	// Healed: reads follow the primary again, writes go through.
	px.Resume()
	testutil.RetryUntil(t, 30*time.Second, func() error {
		rec := serve(route, httptest.NewRequest("POST", "http://s.com/wp-admin/post.php", nil))
		if !strings.HasPrefix(rec.Body.String(), "served by frankfurt") {
			return fmt.Errorf("write after healing: %d %q", rec.Code, rec.Body.String())
		}
		return nil
	})
}
