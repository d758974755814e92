package replication_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/replication"
)

func fenced(n *node) bool {
	for _, s := range n.m.Status() {
		if s.Site == moveSite {
			return s.Fenced
		}
	}
	return false
}

func TestFenceTimeoutReconfirms(t *testing.T) {
	for _, tc := range []struct {
		name        string
		still       bool
		wantFenced  bool
		failsBefore int32 // Reconfirm errors first
	}{
		{"still primary: lifted", true, false, 0},
		{"no longer primary: stays", false, true, 0},
		{"errors, then still primary: lifted", true, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int32
			a := startNodeWith(t, t.TempDir(), 0, func(c *replication.Config) {
				c.FenceTimeout = 20 * time.Millisecond
				c.Reconfirm = func(ctx context.Context, site string) (bool, error) {
					if n := asked.Add(1); n <= tc.failsBefore {
						return false, errors.New("directory unreachable")
					}
					return tc.still, nil
				}
			})
			a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
			db := a.db(t, moveSite)
			testutil.Exec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
			pos, err := a.m.Fence(context.Background(), moveSite)
			if err != nil {
				t.Fatal(err)
			}
			if pos.Next == 0 || len(pos.LogID) != 36 {
				t.Fatalf("fence position %+v", pos)
			}
			testutil.RetryUntil(t, 10*time.Second, func() error {
				if asked.Load() <= tc.failsBefore {
					return fmt.Errorf("Reconfirm asked %d times", asked.Load())
				}
				if fenced(a) != tc.wantFenced {
					return fmt.Errorf("fenced: %t", fenced(a))
				}
				return nil
			})
			if got := db.Fenced(); got != tc.wantFenced {
				t.Errorf("database fenced: %t, want %t", got, tc.wantFenced)
			}
			if !tc.wantFenced {
				testutil.Exec(t, db, "INSERT INTO t VALUES (1)")
			}
		})
	}
}

// A take-over whose commit fails lifts the old primary's fence; the old
// primary takes writes again and nothing moved.
func TestTakeOverFailureUnfences(t *testing.T) {
	a := startNode(t, t.TempDir(), 0)
	b := startNode(t, t.TempDir(), 0)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 1)})
	adb := a.db(t, moveSite)
	testutil.Exec(t, adb, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if b.m.Applied(moveSite) == 0 {
			return errors.New("not streaming yet")
		}
		return nil
	})
	boom := errors.New("raft: not the leader")
	_, err := b.m.TakeOver(context.Background(), moveSite, func(context.Context) error {
		if !fenced(a) {
			t.Error("commit runs with the old primary not fenced")
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("TakeOver: %v, want the commit's error", err)
	}
	if fenced(a) || adb.Fenced() {
		t.Fatal("the old primary stays fenced after a failed take-over")
	}
	testutil.Exec(t, adb, "INSERT INTO t VALUES (1)")
	if _, err := a.m.TakeOver(context.Background(), moveSite, nil); !errors.Is(err, replication.ErrNotReplica) {
		t.Errorf("TakeOver on the primary: %v, want ErrNotReplica", err)
	}
}

func TestLagRisesWhilePrimaryUnreachable(t *testing.T) {
	a := startNode(t, t.TempDir(), 0)
	b := startNode(t, t.TempDir(), 0)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 1)})
	testutil.Exec(t, a.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	lag := func() (float64, string) {
		for _, s := range b.m.Status() {
			if s.Site == moveSite {
				return s.LagMillis, s.State
			}
		}
		return -1, ""
	}
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if b.m.Applied(moveSite) == 0 {
			return errors.New("not streaming yet")
		}
		return nil
	})
	a.srv.Close() // the primary is gone
	var first float64
	testutil.RetryUntil(t, 10*time.Second, func() error {
		l, state := lag()
		if state == string(replication.ReplicaStreaming) || l < 50 {
			return fmt.Errorf("lag %v ms, state %s", l, state)
		}
		first = l
		return nil
	})
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if l, _ := lag(); l <= first {
			return fmt.Errorf("lag %v ms, was %v", l, first)
		}
		return nil
	})
}

// A forwarded session follows a move: its session on the old primary is
// given up outside a transaction (the MySQL front reopens it), and a
// statement that meets the new primary before it was promoted (421) is
// sent again until it is.
func TestForwardedStatementsFollowTheMove(t *testing.T) {
	oldRuns := &fakeSession{res: &ephpm.Result{RowsAffected: 1}}
	p, r := startForwarding(t, func() *fakeSession { return oldRuns })
	newRuns := &fakeSession{res: &ephpm.Result{RowsAffected: 1}}
	q := startNodeWith(t, t.TempDir(), 0, func(c *replication.Config) {
		c.OpenSession = func(context.Context, string) (replication.StatementSession, error) { return newRuns, nil }
	})
	cfg := func(n *node, role ephpm.Role, primary *node) []replication.SiteConfig {
		c := replication.SiteConfig{Name: "s.com", DBPath: filepath.Join(n.dir, "s.com.db"), Role: role}
		if primary != nil {
			c.PrimaryURL = primary.url
		}
		return []replication.SiteConfig{c}
	}
	q.m.SetSites(cfg(q, ephpm.RoleReplica, p))
	ctx := context.Background()
	sess := r.m.Forwarder("s.com").Open()
	if _, err := sess.Exec(ctx, "INSERT INTO t VALUES (1)", nil); err != nil {
		t.Fatal(err)
	}
	// r hears of the move before q does.
	r.m.SetSites(cfg(r, ephpm.RoleReplica, q))
	if _, err := sess.Exec(ctx, "INSERT INTO t VALUES (2)", nil); !errors.Is(err, mysqlwire.ErrPrimaryChanged) {
		t.Fatalf("statement in a session on the old primary: %v, want ErrPrimaryChanged", err)
	}
	sess.Close()
	sess = r.m.Forwarder("s.com").Open()
	defer sess.Close()
	done := make(chan error, 1)
	go func() {
		_, err := sess.Exec(ctx, "INSERT INTO t VALUES (2)", nil)
		done <- err
	}()
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if q.execs.Load() == 0 {
			return errors.New("q was not asked yet")
		}
		return nil
	})
	q.m.SetSites(cfg(q, ephpm.RolePrimary, nil))
	p.m.SetSites(cfg(p, ephpm.RoleReplica, q))
	if err := <-done; err != nil {
		t.Fatalf("statement during the move: %v", err)
	}
	newRuns.mu.Lock()
	defer newRuns.mu.Unlock()
	if newRuns.runs != 1 {
		t.Errorf("the new primary ran %d statements, want 1", newRuns.runs)
	}
}

// A request proxied whole during a move that meets the new primary
// before it was promoted (421) is sent again, body and all, until it is;
// one whose body is too large to keep is not, and the client gets the
// 421.
func TestProxiedRequestFollowsTheMove(t *testing.T) {
	p, r := startPair(t, time.Second)
	q := startNode(t, t.TempDir(), 0)
	cfg := func(n *node, role ephpm.Role, primary *node) []replication.SiteConfig {
		c := replication.SiteConfig{Name: "s.com", DBPath: filepath.Join(n.dir, "s.com.db"), Role: role}
		if primary != nil {
			c.PrimaryURL = primary.url
		}
		return []replication.SiteConfig{c}
	}
	q.m.SetSites(cfg(q, ephpm.RoleReplica, p))
	// r hears of the move before q does.
	r.m.SetSites(cfg(r, ephpm.RoleReplica, q))
	route := r.m.Route("s.com")

	big := strings.Repeat("x", replication.DefaultRetryBody+1)
	req := httptest.NewRequest("POST", "http://s.com/wp-admin/post.php", strings.NewReader(big))
	rec := httptest.NewRecorder()
	if !route(rec, req) || rec.Code != http.StatusMisdirectedRequest {
		t.Fatalf("a body too large to send again: %d, want 421", rec.Code)
	}

	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		req := httptest.NewRequest("POST", "http://s.com/wp-admin/post.php", strings.NewReader("title=hello"))
		rec := httptest.NewRecorder()
		route(rec, req)
		done <- answer{rec.Code, rec.Body.String()}
	}()
	before := q.proxied.Load()
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if q.proxied.Load() < before+2 {
			return errors.New("q was not asked twice yet")
		}
		return nil
	})
	q.m.SetSites(cfg(q, ephpm.RolePrimary, nil))
	p.m.SetSites(cfg(p, ephpm.RoleReplica, q))
	got := <-done
	if got.code != http.StatusOK || !strings.HasPrefix(got.body, "served by "+filepath.Base(q.dir)) || !strings.HasSuffix(got.body, " body=title=hello") {
		t.Fatalf("request during the move: %d %q", got.code, got.body)
	}
}

// A request the old primary was running when it was demoted still gets
// its log position stamped: frame numbers go on in the same log, so the
// replica that passed it on sets the read-your-writes cookie.
func TestRequestFinishingAfterDemotionIsStamped(t *testing.T) {
	p, r := startPair(t, time.Second)
	next := position(p.m, "s.com")
	route := r.m.Route("s.com")
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		route(rec, httptest.NewRequest("POST", "http://s.com/hold", strings.NewReader("x=1")))
		done <- rec
	}()
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if p.proxied.Load() == 0 {
			return errors.New("the request has not reached p yet")
		}
		return nil
	})
	cfg := func(n *node, role ephpm.Role, primary *node) []replication.SiteConfig {
		c := replication.SiteConfig{Name: "s.com", DBPath: filepath.Join(n.dir, "s.com.db"), Role: role}
		if primary != nil {
			c.PrimaryURL = primary.url
		}
		return []replication.SiteConfig{c}
	}
	p.m.SetSites(cfg(p, ephpm.RoleReplica, r))
	close(p.hold)
	rec := <-done
	if rec.Code != http.StatusOK {
		t.Fatalf("request: %d %q", rec.Code, rec.Body.String())
	}
	var frame uint64
	for _, c := range rec.Result().Cookies() {
		if c.Name == replication.CookieName {
			frame, _ = replication.ParseFrameCookie(r.m, "s.com", c.Value, time.Now())
		}
	}
	if frame < next {
		t.Fatalf("cookie frame %d, want at least the demoted log's end %d", frame, next)
	}
}

// A libSQL request passed on to a node that is not (yet) the primary
// gets 421 there (LibsqlReforward) and is sent again, body and all, to
// the primary of the moment.
func TestLibsqlForwardRetriesA421(t *testing.T) {
	var asked atomic.Int64
	var body atomic.Value
	primary := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/pipeline" {
			http.Error(w, "not here", http.StatusServiceUnavailable) // the replica's stream
			return
		}
		b, _ := io.ReadAll(r.Body)
		body.Store(string(b))
		if asked.Add(1) < 3 {
			http.Error(w, "this node is not the primary for s.com", http.StatusMisdirectedRequest)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true) // as node-to-node clients speak
	primary.Config.Protocols = &p
	primary.Start()
	defer primary.Close()
	r := startNode(t, t.TempDir(), 0)
	r.m.SetSites([]replication.SiteConfig{{Name: "s.com", DBPath: filepath.Join(r.dir, "s.com.db"), Role: ephpm.RoleReplica, PrimaryURL: primary.URL}})
	req := httptest.NewRequest("POST", "http://s.com/v3/pipeline", nil)
	fwd := r.m.LibsqlForward("s.com", req)
	if fwd == nil {
		t.Fatal("no forwarder on a replica")
	}
	rec := httptest.NewRecorder()
	fwd(rec, req, []byte(`{"baton":null,"requests":[]}`))
	if rec.Code != http.StatusOK || rec.Body.String() != `{"ok":true}` || asked.Load() != 3 || body.Load() != `{"baton":null,"requests":[]}` {
		t.Fatalf("%d %q after %d attempts (last body %v)", rec.Code, rec.Body.String(), asked.Load(), body.Load())
	}
	// The node asked: a request passed on to it that it cannot run gets
	// 421, so that the sender tries again.
	via := httptest.NewRequest("POST", "http://s.com/v3/pipeline", nil)
	via.Header.Set("X-Ephpm-Libsql-Via", "tokyo")
	rec = httptest.NewRecorder()
	r.m.LibsqlReforward("s.com", via)(rec, via, nil)
	if rec.Code != http.StatusMisdirectedRequest {
		t.Fatalf("a passed-on request refused here: %d, want 421", rec.Code)
	}
}
