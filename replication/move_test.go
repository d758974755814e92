package replication_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sqlite"
)

const moveSite = "move.test"

func siteCfg(n *node, role ephpm.Role, primary *node, epoch uint64) replication.SiteConfig {
	c := replication.SiteConfig{Name: moveSite, DBPath: filepath.Join(n.dir, moveSite+".db"), Role: role, Epoch: epoch}
	if primary != nil {
		c.PrimaryURL = primary.url
	}
	return c
}

// writeRow inserts id through the site's single writer on n, as a client
// write does.
func writeRow(ctx context.Context, n *node, id int) error {
	db, release, err := n.pool.Acquire(ctx, filepath.Join(n.dir, moveSite+".db"))
	if err != nil {
		return err
	}
	defer release()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		return err
	}
	defer w.Release(ctx)
	_, err = w.ExecContext(ctx, "INSERT INTO t (id) VALUES (?)", id)
	return err
}

// load writes ids 1, 2, ... to whichever node is the site's primary,
// counting what was acknowledged; a write refused with ErrNotPrimary (a
// demotion woke it at the fence) goes again to the primary of the moment.
type load struct {
	nodes      []*node
	acked      sync.Map // id → node name
	n          atomic.Int64
	notPrimary atomic.Int64
	err        error
	stop, done chan struct{}
}

func startLoad(nodes ...*node) *load {
	l := &load{nodes: nodes, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		ctx := context.Background()
		deadline := time.Now().Add(60 * time.Second)
		for id := 1; time.Now().Before(deadline); id++ {
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				default:
				}
				var target *node
				for _, n := range l.nodes {
					if n.m.Role(moveSite) == ephpm.RolePrimary {
						target = n
					}
				}
				if target == nil {
					time.Sleep(time.Millisecond) // between two SetSites
					continue
				}
				err := writeRow(ctx, target, id)
				if errors.Is(err, ephpm.ErrNotPrimary) {
					l.notPrimary.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					l.err = fmt.Errorf("write %d on %s: %w", id, target.dir, err)
					return
				}
				l.acked.Store(id, target.dir)
				l.n.Add(1)
				break
			}
		}
	}()
	return l
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	<-l.done
	if l.err != nil {
		t.Fatal(l.err)
	}
}

// missing lists the acknowledged ids db does not have.
func (l *load) missing(db *sqlite.DB) []int {
	var out []int
	l.acked.Range(func(k, _ any) bool {
		var one int
		if err := db.Reader().QueryRow("SELECT 1 FROM t WHERE id = ?", k).Scan(&one); err != nil {
			out = append(out, k.(int))
		}
		return true
	})
	return out
}

func waitRows(t *testing.T, l *load, n int64) {
	t.Helper()
	testutil.RetryUntil(t, 20*time.Second, func() error {
		if l.n.Load() < n {
			return fmt.Errorf("%d rows acknowledged", l.n.Load())
		}
		return nil
	})
}

// move runs a planned change of primary from old to target with a third
// replica, as the node and the directory would: TakeOver on the target,
// then SetSites everywhere.
func move(t *testing.T, old, target, other *node, epoch uint64, l *load) replication.TakeOverStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	oldDB := old.db(t, moveSite)
	st, err := target.m.TakeOver(ctx, moveSite, func(context.Context) error {
		// The directory records the move here; meanwhile the load's
		// writer waits at the old primary's fence.
		testutil.RetryUntil(t, 10*time.Second, func() error {
			if oldDB.FenceWaiters() != 1 {
				return fmt.Errorf("%d writers wait at the fence", oldDB.FenceWaiters())
			}
			return nil
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The other replica has all the old primary logged before it stops
	// serving (a replica behind the fence would need a snapshot).
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if a := other.m.Applied(moveSite); a < st.Fence.Next {
			return fmt.Errorf("other replica at %d, fence at %d", a, st.Fence.Next)
		}
		return nil
	})
	before := l.notPrimary.Load()
	old.m.SetSites([]replication.SiteConfig{siteCfg(old, ephpm.RoleReplica, target, epoch)})
	target.m.SetSites([]replication.SiteConfig{siteCfg(target, ephpm.RolePrimary, nil, epoch)})
	other.m.SetSites([]replication.SiteConfig{siteCfg(other, ephpm.RoleReplica, target, epoch)})
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if l.notPrimary.Load() == before {
			return errors.New("the writer at the fence has not been refused yet")
		}
		return nil
	})
	return st
}

func logID(n *node) string {
	for _, s := range n.m.Status() {
		if s.Site == moveSite {
			return s.LogID
		}
	}
	return ""
}

func TestMoveUnderWriteLoad(t *testing.T) {
	a := startNode(t, t.TempDir(), 0)
	b := startNode(t, t.TempDir(), 0)
	c := startNode(t, t.TempDir(), 0)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 1)})
	c.m.SetSites([]replication.SiteConfig{siteCfg(c, ephpm.RoleReplica, a, 1)})
	testutil.Exec(t, a.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	origID := logID(a)

	l := startLoad(a, b)
	waitRows(t, l, 30)
	st := move(t, a, b, c, 2, l)
	if st.Fence.LogID != origID || st.Pause <= 0 {
		t.Errorf("take over: %+v, log %s", st, origID)
	}
	t.Logf("A → B: pause %v, frames waited for %d, fence at %d", st.Pause, st.Frames, st.Fence.Next)
	at := l.n.Load()
	waitRows(t, l, at+30) // B takes writes

	// Read-your-writes: a cookie issued before the move is already
	// satisfied on the old primary, now a replica: served there.
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if got := a.m.Applied(moveSite); got < st.Fence.Next {
			return fmt.Errorf("A applied %d, fence at %d", got, st.Fence.Next)
		}
		return nil
	})
	req := httptest.NewRequest(http.MethodGet, "http://"+moveSite+"/", nil)
	req.AddCookie(&http.Cookie{Name: replication.CookieName, Value: replication.FrameCookie(a.m, moveSite, st.Fence.Next, time.Now().Add(time.Minute))})
	if a.m.Route(moveSite)(httptest.NewRecorder(), req) {
		t.Error("a read whose cookie predates the move was sent to the primary")
	}

	// And back: B → A. A must not reuse its log from before.
	st2 := move(t, b, a, c, 3, l)
	t.Logf("B → A: pause %v, frames waited for %d, fence at %d", st2.Pause, st2.Frames, st2.Fence.Next)
	if st2.Fence.Next <= st.Fence.Next {
		t.Fatalf("B's fence at %d, not past A's %d: B took no writes", st2.Fence.Next, st.Fence.Next)
	}
	at = l.n.Load()
	waitRows(t, l, at+30)
	l.finish(t)

	if id := logID(a); id != origID {
		t.Errorf("log id after two moves: %s, want %s", id, origID)
	}
	for _, n := range []*node{a, b, c} {
		if got := n.snaps.Load(); got != 0 {
			t.Errorf("%s served %d snapshots", n.dir, got)
		}
	}
	// Every acknowledged row is on the primary and on both replicas.
	adb, bdb, cdb := a.db(t, moveSite), b.db(t, moveSite), c.db(t, moveSite)
	if m := l.missing(adb); len(m) > 0 {
		t.Fatalf("primary A lacks acknowledged ids %v", m)
	}
	for _, r := range []*sqlite.DB{bdb, cdb} {
		testutil.RetryUntil(t, 10*time.Second, func() error {
			if m := l.missing(r); len(m) > 0 {
				return fmt.Errorf("%s lacks %d acknowledged ids", r.Path(), len(m))
			}
			return nil
		})
	}
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if count(adb, "t") != count(bdb, "t") || count(adb, "t") != count(cdb, "t") {
			return fmt.Errorf("rows: A %d, B %d, C %d", count(adb, "t"), count(bdb, "t"), count(cdb, "t"))
		}
		return nil
	})
	t.Logf("%d rows acknowledged, %d writes refused at a fence and sent again", l.n.Load(), l.notPrimary.Load())
}

// A move between nodes whose databases closed while idle: demotion and
// promotion open them (the pool's open hook adopts the log).
func TestMoveWithIdleDatabases(t *testing.T) {
	a := startNodeIdle(t, t.TempDir(), 0, 20*time.Millisecond)
	b := startNodeIdle(t, t.TempDir(), 0, 20*time.Millisecond)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 1)})
	ctx := context.Background()
	func() {
		db, release, err := a.pool.Acquire(ctx, filepath.Join(a.dir, moveSite+".db"))
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		testutil.Exec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	}()
	for id := 1; id <= 5; id++ {
		if err := writeRow(ctx, a, id); err != nil {
			t.Fatal(err)
		}
	}
	origID := logID(a)
	st, err := b.m.TakeOver(ctx, moveSite, func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if a.pool.Len()+b.pool.Len() != 0 {
			return fmt.Errorf("%d, %d databases open", a.pool.Len(), b.pool.Len())
		}
		return nil
	})
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RoleReplica, b, 2)})
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RolePrimary, nil, 2)})
	if id := logID(b); id != origID {
		t.Fatalf("B's log %s, want %s", id, origID)
	}
	for id := 6; id <= 10; id++ {
		if err := writeRow(ctx, b, id); err != nil {
			t.Fatal(err)
		}
	}
	testutil.RetryUntil(t, 10*time.Second, func() error {
		db, release, err := a.pool.Acquire(ctx, filepath.Join(a.dir, moveSite+".db"))
		if err != nil {
			return err
		}
		defer release()
		if n := count(db, "t"); n != 10 {
			return fmt.Errorf("A has %d rows", n)
		}
		return nil
	})
	if a.snaps.Load()+b.snaps.Load() != 0 {
		t.Errorf("snapshots served: %d, %d", a.snaps.Load(), b.snaps.Load())
	}
	for _, s := range b.m.Status() {
		if s.Epoch != 2 || s.Position <= st.Fence.Next {
			t.Errorf("B's status %+v, fence at %d", s, st.Fence.Next)
		}
	}
}

// A replica that is behind the fence when it is pointed at the new
// primary continues from the new primary's log, which starts with the
// frames the promoted replica applied last (its tail): no snapshot, and
// every acknowledged row arrives. Then back, the same way: the demoted
// primary kept its log's last frames as its tail.
func TestMoveWithALaggingReplica(t *testing.T) {
	a := startNode(t, t.TempDir(), 0)
	b := startNode(t, t.TempDir(), 0)
	c := startNode(t, t.TempDir(), 0)
	a.m.SetSites([]replication.SiteConfig{siteCfg(a, ephpm.RolePrimary, nil, 1)})
	b.m.SetSites([]replication.SiteConfig{siteCfg(b, ephpm.RoleReplica, a, 1)})
	c.m.SetSites([]replication.SiteConfig{siteCfg(c, ephpm.RoleReplica, a, 1)})
	testutil.Exec(t, a.db(t, moveSite), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	l := startLoad(a, b)
	waitRows(t, l, 20)

	lagMove := func(old, target *node, epoch uint64) {
		t.Helper()
		// c's stream stops (a slow link): it falls behind.
		testutil.RetryUntil(t, 10*time.Second, func() error {
			if c.m.Applied(moveSite) == 0 {
				return errors.New("c has applied nothing yet")
			}
			return nil
		})
		c.m.SetSites(nil)
		paused, err := replication.OpenPos(filepath.Join(c.dir, moveSite+".db"))
		if err != nil {
			t.Fatal(err)
		}
		at := l.n.Load()
		waitRows(t, l, at+40)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := target.m.TakeOver(ctx, moveSite, func(context.Context) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if paused >= st.Fence.Next {
			t.Fatalf("c at %d is not behind the fence at %d", paused, st.Fence.Next)
		}
		old.m.SetSites([]replication.SiteConfig{siteCfg(old, ephpm.RoleReplica, target, epoch)})
		target.m.SetSites([]replication.SiteConfig{siteCfg(target, ephpm.RolePrimary, nil, epoch)})
		c.m.SetSites([]replication.SiteConfig{siteCfg(c, ephpm.RoleReplica, target, epoch)})
		t.Logf("move to %s: c at %d, fence at %d", filepath.Base(target.dir), paused, st.Fence.Next)
		at = l.n.Load()
		waitRows(t, l, at+30)
		testutil.RetryUntil(t, 10*time.Second, func() error {
			if got, want := c.m.Applied(moveSite), target.m.Status()[0].Position; got < want {
				return fmt.Errorf("c at %d, primary at %d", got, want)
			}
			return nil
		})
	}
	lagMove(a, b, 2)
	lagMove(b, a, 3)
	l.finish(t)

	for _, n := range []*node{a, b, c} {
		if got := n.snaps.Load(); got != 0 {
			t.Errorf("%s served %d snapshots", n.dir, got)
		}
	}
	adb, cdb := a.db(t, moveSite), c.db(t, moveSite)
	if m := l.missing(adb); len(m) > 0 {
		t.Fatalf("primary A lacks acknowledged ids %v", m)
	}
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if m := l.missing(cdb); len(m) > 0 {
			return fmt.Errorf("c lacks %d acknowledged ids", len(m))
		}
		if count(adb, "t") != count(cdb, "t") {
			return fmt.Errorf("rows: A %d, C %d", count(adb, "t"), count(cdb, "t"))
		}
		return nil
	})
}
