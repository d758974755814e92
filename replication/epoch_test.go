package replication_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
)

func statusOf(t *testing.T, n *node) replication.Status {
	t.Helper()
	for _, s := range n.m.Status() {
		if s.Site == moveSite {
			return s
		}
	}
	t.Fatalf("no status for %s", moveSite)
	return replication.Status{}
}

func countRows(t *testing.T, n *node) int {
	t.Helper()
	return count(n.db(t, moveSite), "t")
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitEpochFenced waits until n, a primary at epoch 1, says a newer
// epoch 2 was seen and its writes are fenced.
func waitEpochFenced(t *testing.T, n *node) {
	t.Helper()
	testutil.RetryUntil(t, 10*time.Second, func() error {
		st := statusOf(t, n)
		if want := "fenced: newer epoch 2 seen"; st.State != want || !st.Fenced {
			return fmt.Errorf("old primary: state %q fenced %t, want %q", st.State, st.Fenced, want)
		}
		return nil
	})
}

// A replica that knows epoch 2 refuses to stream from a primary still at
// epoch 1 (it never got its SetSites), and that primary, once asked,
// commits nothing more: a direct write waits at the fence and fails with
// ErrNotPrimary at the demotion.
func TestStaleEpochPrimaryFencedByReplicaStream(t *testing.T) {
	a := startNode(t, t.TempDir(), 0)
	b := startNode(t, t.TempDir(), 0)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
	testutil.Exec(t, a.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	for id := 1; id <= 3; id++ {
		if err := writeRow(context.Background(), a, id); err != nil {
			t.Fatal(err)
		}
	}
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 2)})
	waitEpochFenced(t, a)
	testutil.RetryUntil(t, 10*time.Second, func() error {
		st := statusOf(t, b)
		if !strings.HasPrefix(st.State, "error: ") || !strings.Contains(st.State, replication.ErrStaleEpoch.Error()) {
			return fmt.Errorf("replica state %q", st.State)
		}
		return nil
	})
	if got := b.m.Applied(moveSite); got != 0 {
		t.Errorf("replica applied up to frame %d from a stale primary", got)
	}
	fencePos := statusOf(t, a).Position

	// A write with a short deadline waits at the fence and gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := writeRow(ctx, a, 100); err == nil {
		t.Fatal("the stale primary committed a write")
	}
	cancel()
	// Nothing lifts it but the directory: Unfence is refused.
	if err := a.m.Unfence(moveSite); !errors.Is(err, replication.ErrStaleEpoch) {
		t.Errorf("Unfence: %v, want ErrStaleEpoch", err)
	}
	// A write waiting at the fence fails with ErrNotPrimary at the
	// demotion that SetSites brings.
	waiting := make(chan error, 1)
	go func() { waiting <- writeRow(context.Background(), a, 101) }()
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RoleReplica, b, 2)})
	if err := <-waiting; !errors.Is(err, ephpm.ErrNotPrimary) {
		t.Fatalf("write waiting at the fence: %v, want ErrNotPrimary", err)
	}
	if got := countRows(t, a); got != 3 {
		t.Errorf("old primary holds %d rows, want the 3 written before the fence", got)
	}
	// The demoted replica's position (its stream loads it) is the log's
	// end at the fence.
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if st := statusOf(t, a); st.Role != ephpm.RoleReplica || st.Position != fencePos {
			return fmt.Errorf("demoted: role %s position %d, want replica at the fence's %d", st.Role, st.Position, fencePos)
		}
		return nil
	})
}

// A primary's epoch fence lifts when its own SetSites raises its epoch
// to the one seen (a re-confirmation, not a replacement).
func TestEpochFenceLiftedByOwnEpoch(t *testing.T) {
	a := startNode(t, t.TempDir(), 0)
	b := startNode(t, t.TempDir(), 0)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
	testutil.Exec(t, a.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 2)})
	waitEpochFenced(t, a)
	waiting := make(chan error, 1)
	go func() { waiting <- writeRow(context.Background(), a, 1) }()
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 2)})
	if err := <-waiting; err != nil {
		t.Fatalf("write after the epoch caught up: %v", err)
	}
	if st := statusOf(t, a); st.Fenced || st.Epoch != 2 {
		t.Errorf("status %+v, want unfenced at epoch 2", st)
	}
	// The replica now streams from it.
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if got := countRows(t, b); got != 1 {
			return fmt.Errorf("replica has %d rows", got)
		}
		return nil
	})
}

// A forwarded statement and a forwarded whole request that carry epoch
// 2 to a primary at epoch 1: 421, nothing runs there, and it is fenced.
func TestForwardedWritesWithNewerEpochRefused(t *testing.T) {
	for _, kind := range []string{"statement", "request"} {
		t.Run(kind, func(t *testing.T) {
			var opened atomic.Int64
			a := startNodeWith(t, t.TempDir(), 0, func(c *replication.Config) {
				c.OpenSession = func(context.Context, string) (replication.StatementSession, error) {
					opened.Add(1)
					return &fakeSession{}, nil
				}
			})
			a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
			testutil.Exec(t, a.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
			before := statusOf(t, a).Position

			var req *http.Request
			switch kind {
			case "statement":
				req = httptest.NewRequest(http.MethodPost, a.url+"/_ephpm/repl/v1/exec",
					strings.NewReader(`{"site":"`+moveSite+`","query":"INSERT INTO t VALUES (1)"}`))
				req.Header.Set("Authorization", "Bearer "+token)
			case "request":
				req = httptest.NewRequest(http.MethodPost, a.url+"/wp-admin/post.php", strings.NewReader("x=1"))
				req.Host = moveSite
				req.Header.Set("X-Ephpm-Auth", "Bearer "+token)
				req.Header.Set("X-Ephpm-Forwarded", "b")
			}
			req.RequestURI = ""
			req.Header.Set("X-Ephpm-Epoch", "2")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, "stale-epoch") {
				t.Fatalf("answer %s %q, want 421 stale-epoch", resp.Status, body)
			}
			if got := resp.Header.Get("X-Ephpm-Epoch"); got != "1" {
				t.Errorf("answer's epoch %q, want the primary's 1", got)
			}
			if opened.Load() != 0 || strings.Contains(body, "served by") {
				t.Errorf("the write ran on the stale primary (sessions opened %d, body %q)", opened.Load(), body)
			}
			waitEpochFenced(t, a)
			if got := statusOf(t, a).Position; got != before {
				t.Errorf("log position %d after the refusal, want %d", got, before)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := writeRow(ctx, a, 2); err == nil {
				t.Error("the stale primary committed a write")
			}
		})
	}
}

// The forwarders of a replica at epoch 2 whose directory still names a
// primary at epoch 1: the statement and the request go nowhere (421
// after DefaultMoveRetry), and the primary is fenced.
func TestForwardersCarryEpoch(t *testing.T) {
	var opened atomic.Int64
	a := startNodeWith(t, t.TempDir(), 0, func(c *replication.Config) {
		c.OpenSession = func(context.Context, string) (replication.StatementSession, error) {
			opened.Add(1)
			return &fakeSession{}, nil
		}
	})
	b := startNode(t, t.TempDir(), 0)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
	testutil.Exec(t, a.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 2)})

	if _, err := b.m.Forwarder(moveSite).Open().Exec(context.Background(), "INSERT INTO t VALUES (1)", nil); err == nil {
		t.Error("forwarded statement succeeded on a stale primary")
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "http://"+moveSite+"/", strings.NewReader("x=1"))
	if !b.m.Route(moveSite)(rec, req) {
		t.Fatal("a POST on a replica was not forwarded")
	}
	if rec.Code != http.StatusMisdirectedRequest || strings.Contains(rec.Body.String(), "served by") {
		t.Errorf("forwarded request: %d %q, want 421, not run", rec.Code, rec.Body.String())
	}
	if opened.Load() != 0 {
		t.Errorf("%d sessions opened on the stale primary", opened.Load())
	}
	waitEpochFenced(t, a)
}

// Epoch 0 (static sites) never refuses: a replica at 0 streams from a
// primary at 0, and a request that says epoch 5 is served by a primary
// that does not know its epoch.
func TestEpochZeroNeverRefuses(t *testing.T) {
	a := startNode(t, t.TempDir(), 0)
	b := startNode(t, t.TempDir(), 0)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 0)})
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 0)})
	testutil.Exec(t, a.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	req, _ := http.NewRequest(http.MethodPost, a.url+"/x", strings.NewReader("x=1"))
	req.Host = moveSite
	req.Header.Set("X-Ephpm-Auth", "Bearer "+token)
	req.Header.Set("X-Ephpm-Forwarded", "b")
	req.Header.Set("X-Ephpm-Epoch", "5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "served by") {
		t.Errorf("answer %s %q, want it served", resp.Status, body)
	}
	if err := writeRow(context.Background(), a, 1); err != nil {
		t.Fatal(err)
	}
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if got := countRows(t, b); got != 1 {
			return fmt.Errorf("replica has %d rows", got)
		}
		return nil
	})
	if st := statusOf(t, a); st.Fenced {
		t.Errorf("epoch-0 primary fenced: %+v", st)
	}
}
