package replication_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
)

// deadURL: a replica pointed here has its stream cut (nothing listens).
const deadURL = "http://127.0.0.1:1"

func rejoinCfg(n *node, role ephpm.Role, primaryURL string, epoch uint64) replication.SiteConfig {
	return replication.SiteConfig{Name: moveSite, DBPath: filepath.Join(n.dir, moveSite+".db"), Role: role, PrimaryURL: primaryURL, Epoch: epoch}
}

// exec runs q on n's copy of the site through its writer.
func exec(t testing.TB, n *node, q string, args ...any) {
	t.Helper()
	db, release, err := n.pool.Acquire(context.Background(), filepath.Join(n.dir, moveSite+".db"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	testutil.Exec(t, db, q, args...)
}

// rows counts t's rows on n whose v starts with prefix.
func rows(t testing.TB, n *node, prefix string) int {
	t.Helper()
	db, release, err := n.pool.Acquire(context.Background(), filepath.Join(n.dir, moveSite+".db"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var c int
	if err := db.Reader().QueryRow("SELECT count(*) FROM t WHERE v LIKE ?", prefix+"%").Scan(&c); err != nil {
		return -1
	}
	return c
}

// fileRows counts rows with prefix in a database file (a quarantined
// copy), opened read-only as an operator would.
func fileRows(t *testing.T, path, prefix string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c int
	if err := db.QueryRow("SELECT count(*) FROM t WHERE v LIKE ?", prefix+"%").Scan(&c); err != nil {
		t.Fatalf("quarantined copy %s: %v", path, err)
	}
	return c
}

func dbPath(n *node) string { return filepath.Join(n.dir, moveSite+".db") }

// caughtUp waits until r has applied everything p has written.
func caughtUp(t testing.TB, r, p *node) {
	t.Helper()
	testutil.RetryUntil(t, 15*time.Second, func() error {
		want := p.m.Status()[0].Position
		if got := r.m.Applied(moveSite); got != want {
			return fmt.Errorf("replica at %d, primary at %d (replica: %+v)", got, want, r.m.Status())
		}
		return nil
	})
}

// samePages waits until a and b hold the same pages (sqlite_dbpage).
func samePages(t *testing.T, a, b *node) {
	t.Helper()
	testutil.RetryUntil(t, 15*time.Second, func() error {
		if !sameHash(t, dbPath(a), dbPath(b)) {
			return fmt.Errorf("pages differ (%+v / %+v)", a.m.Status(), b.m.Status())
		}
		return nil
	})
}

// A replica that applied frames the new primary never had is told so,
// keeps its copy aside and is repaired to the new primary's pages.
func TestDivergedReplicaQuarantinedAndRepaired(t *testing.T) {
	a := startNode(t, t.TempDir(), 0)
	b := startNode(t, t.TempDir(), 0)
	c, cLog := startNodeLogged(t, t.TempDir())
	a.m.SetSites([]replication.SiteConfig{rejoinCfg(a, ephpm.RolePrimary, "", 1)})
	b.m.SetSites([]replication.SiteConfig{rejoinCfg(b, ephpm.RoleReplica, a.url, 1)})
	c.m.SetSites([]replication.SiteConfig{rejoinCfg(c, ephpm.RoleReplica, a.url, 1)})
	exec(t, a, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	for i := range 20 {
		exec(t, a, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("common ", i, strings.Repeat("x", 500)))
	}
	caughtUp(t, b, a)
	caughtUp(t, c, a)

	// A's stream to B is cut; C still gets A's last transactions.
	forkWant := b.m.Applied(moveSite) // B's copy ends here
	b.m.SetSites([]replication.SiteConfig{rejoinCfg(b, ephpm.RoleReplica, deadURL, 1)})
	for i := range 7 {
		exec(t, a, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("lost on A ", i))
	}
	caughtUp(t, c, a)
	if n := rows(t, c, "lost on A"); n != 7 {
		t.Fatalf("C has %d of A's last rows", n)
	}
	// A dies; B is promoted at epoch 2 and takes writes.
	a.stop()
	b.m.SetSites([]replication.SiteConfig{rejoinCfg(b, ephpm.RolePrimary, "", 2)})
	for i := range 3 {
		exec(t, b, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("on B ", i))
	}
	c.m.SetSites([]replication.SiteConfig{rejoinCfg(c, ephpm.RoleReplica, b.url, 2)})
	samePages(t, b, c)
	caughtUp(t, c, b)
	if n := rows(t, c, "lost on A"); n != 0 {
		t.Fatalf("C still has %d rows B never had", n)
	}
	q := c.m.Quarantined(moveSite)
	if len(q) != 1 {
		t.Fatalf("quarantined copies %v, want one", q)
	}
	if !strings.Contains(filepath.Base(q[0]), "-diverged-2-") {
		t.Fatalf("quarantined copy %s does not name epoch 2", q[0])
	}
	if n := fileRows(t, q[0], "lost on A"); n != 7 {
		t.Fatalf("the quarantined copy has %d of A's last rows, want 7", n)
	}
	if st, ok := c.m.LastRepair(moveSite); !ok || st.Pages == 0 || c.m.RepairBytes(moveSite) == 0 {
		t.Fatalf("repair stats %+v %v, bytes %d", st, ok, c.m.RepairBytes(moveSite))
	}
	if got := rejoinMetrics(t, c.m); got["ephpm_replication_diverged_total"] != 1 || got["ephpm_replication_repair_bytes_total"] != float64(c.m.RepairBytes(moveSite)) {
		t.Fatalf("metrics %v", got)
	}
	if fork, n := cLog.last(); fork != int64(forkWant) || n != 7 {
		t.Fatalf("logged fork frame %v, diverged frames %v; want %d and 7", fork, n, forkWant)
	}
	if got := b.snaps.Load(); got != 0 {
		t.Fatalf("B served %d snapshots", got)
	}
	// C streams B's later writes.
	for i := range 5 {
		exec(t, b, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("later on B ", i))
	}
	caughtUp(t, c, b)
	samePages(t, b, c)
	if n := rows(t, c, "later on B"); n != 5 {
		t.Fatalf("C has %d of B's later rows", n)
	}
	// B, whose history C now follows, is never quarantined.
	if q := b.m.Quarantined(moveSite); len(q) != 0 {
		t.Fatalf("B quarantined %v", q)
	}
}

// The old primary comes back as a replica of the one that replaced it:
// killed (it restarts with its log and no position), or partitioned (a
// demotion reaches it later). Its transactions B never had are kept
// aside; its pages end equal to B's.
func TestOldPrimaryRejoinsAsReplica(t *testing.T) {
	for _, how := range []string{"killed", "partitioned"} {
		t.Run(how, func(t *testing.T) {
			adir := t.TempDir()
			a, aLog := startNodeLogged(t, adir)
			b, _ := startNodeLogged(t, t.TempDir())
			a.m.SetSites([]replication.SiteConfig{rejoinCfg(a, ephpm.RolePrimary, "", 1)})
			b.m.SetSites([]replication.SiteConfig{rejoinCfg(b, ephpm.RoleReplica, a.url, 1)})
			exec(t, a, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
			for i := range 10 {
				exec(t, a, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("common ", i))
			}
			caughtUp(t, b, a)
			forkWant := b.m.Applied(moveSite) // B's copy ends here
			b.m.SetSites([]replication.SiteConfig{rejoinCfg(b, ephpm.RoleReplica, deadURL, 1)})
			for i := range 4 {
				exec(t, a, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("lost on A ", i))
			}
			b.m.SetSites([]replication.SiteConfig{rejoinCfg(b, ephpm.RolePrimary, "", 2)})
			for i := range 6 {
				exec(t, b, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("on B ", i))
			}
			if how == "killed" {
				a.stop()
				a, aLog = startNodeLogged(t, adir)
			}
			a.m.SetSites([]replication.SiteConfig{rejoinCfg(a, ephpm.RoleReplica, b.url, 2)})
			samePages(t, b, a)
			caughtUp(t, a, b)
			if n := rows(t, a, "lost on A"); n != 0 {
				t.Fatalf("A still has %d rows B never had", n)
			}
			q := a.m.Quarantined(moveSite)
			if len(q) != 1 {
				t.Logf("a %+v b %+v rows %d/%d", a.m.Status(), b.m.Status(), rows(t, a, ""), rows(t, b, ""))
				t.Fatalf("quarantined copies %v, want one", q)
			}
			if n := fileRows(t, q[0], "lost on A"); n != 4 {
				t.Fatalf("the quarantined copy has %d of A's last rows, want 4", n)
			}
			if fork, n := aLog.last(); fork != int64(forkWant) || n != 4 {
				t.Fatalf("logged fork frame %d, diverged frames %d; want %d and 4", fork, n, forkWant)
			}
			exec(t, b, "INSERT INTO t (v) VALUES ('after')")
			caughtUp(t, a, b)
			samePages(t, b, a)
		})
	}
}

// A replica whose position the primary's log no longer holds (compacted
// away) repairs by page diff: it moves about the changed pages, not the
// database.
func TestReplicaPastRetentionRepairsByPageDiff(t *testing.T) {
	p := startNode(t, t.TempDir(), 100)
	r := startNode(t, t.TempDir(), 0)
	p.m.SetSites([]replication.SiteConfig{rejoinCfg(p, ephpm.RolePrimary, "", 1)})
	r.m.SetSites([]replication.SiteConfig{rejoinCfg(r, ephpm.RoleReplica, p.url, 1)})
	exec(t, p, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	// ~2 MB in one transaction.
	exec(t, p, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 500) INSERT INTO t (v) SELECT 'row ' || i || printf('%.3900c', 'x') FROM n")
	caughtUp(t, r, p)
	r.m.SetSites(nil)
	// Many small transactions on a few rows: the log passes twice the
	// database and is compacted past the replica's position.
	for i := range 1200 {
		exec(t, p, "UPDATE t SET v = ? WHERE id = ?", fmt.Sprint("row changed ", i), 1+i%5)
	}
	r.m.SetSites([]replication.SiteConfig{rejoinCfg(r, ephpm.RoleReplica, p.url, 1)})
	caughtUp(t, r, p)
	samePages(t, p, r)
	st, ok := r.m.LastRepair(moveSite)
	if !ok {
		t.Fatalf("the replica did not repair (status %+v)", r.m.Status())
	}
	moved := st.Sent + st.Recv
	size := int64(st.DBPages) * 4096
	t.Logf("repair: %d of %d pages, %d bytes moved for a %d-byte database", st.Pages, st.DBPages, moved, size)
	if moved*4 >= size {
		t.Fatalf("repair moved %d bytes for a %d-byte database", moved, size)
	}
	if p.snaps.Load() != 0 {
		t.Fatal("the replica took a snapshot")
	}
	if q := r.m.Quarantined(moveSite); len(q) != 0 {
		t.Fatalf("a replica that only lagged was quarantined: %v", q)
	}
}

// A replica that is only behind streams on: no repair, no quarantine.
func TestLaggingReplicaStreamsOn(t *testing.T) {
	p := startNode(t, t.TempDir(), 0)
	r := startNode(t, t.TempDir(), 0)
	p.m.SetSites([]replication.SiteConfig{rejoinCfg(p, ephpm.RolePrimary, "", 1)})
	r.m.SetSites([]replication.SiteConfig{rejoinCfg(r, ephpm.RoleReplica, p.url, 1)})
	exec(t, p, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	exec(t, p, "INSERT INTO t (v) VALUES ('one')")
	caughtUp(t, r, p)
	r.m.SetSites(nil)
	for i := range 10 {
		exec(t, p, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("while away ", i))
	}
	r.m.SetSites([]replication.SiteConfig{rejoinCfg(r, ephpm.RoleReplica, p.url, 1)})
	caughtUp(t, r, p)
	samePages(t, p, r)
	if _, ok := r.m.LastRepair(moveSite); ok {
		t.Fatal("a lagging replica was repaired")
	}
	if q := r.m.Quarantined(moveSite); len(q) != 0 {
		t.Fatalf("a lagging replica was quarantined: %v", q)
	}
	if st := r.m.Status()[0]; st.Txs != 10 {
		t.Fatalf("the replica applied %d transactions, want the 10 new ones", st.Txs)
	}
}

// startNodeLogged starts a node whose divergence warnings are recorded
// (and, with -v, its log is the test's).
func startNodeLogged(t *testing.T, dir string) (*node, *forkRecorder) {
	rec := &forkRecorder{fork: -1, frames: -1}
	var h slog.Handler = rec
	if testing.Verbose() {
		h = teeHandler{rec, slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})}
	}
	return startNodeWith(t, dir, 0, func(c *replication.Config) { c.Logger = slog.New(h) }), rec
}

// last is the fork frame and diverged frame count of the last
// divergence warning (-1 when none, or unknown).
func (r *forkRecorder) last() (fork, frames int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fork, r.frames
}

// forkRecorder keeps the fork frame and count of the last divergence
// warning (attributes of the record itself: With's are not needed).
type forkRecorder struct {
	mu           sync.Mutex
	fork, frames int64
}

func (r *forkRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *forkRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *forkRecorder) WithGroup(string) slog.Handler            { return r }
func (r *forkRecorder) Handle(_ context.Context, rec slog.Record) error {
	if !strings.Contains(rec.Message, "diverged") {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fork, r.frames = -1, -1
	rec.Attrs(func(a slog.Attr) bool {
		switch {
		case a.Key == "fork_frame" && a.Value.Kind() == slog.KindUint64:
			r.fork = int64(a.Value.Uint64())
		case a.Key == "diverged_frames" && a.Value.Kind() == slog.KindUint64:
			r.frames = int64(a.Value.Uint64())
		}
		return true
	})
	return nil
}

type teeHandler struct{ a, b slog.Handler }

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool { return true }
func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	_ = h.a.Handle(ctx, r) // the recorder never fails
	if h.b.Enabled(ctx, r.Level) {
		return h.b.Handle(ctx, r.Clone())
	}
	return nil
}
func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h.a.WithAttrs(as), h.b.WithAttrs(as)}
}
func (h teeHandler) WithGroup(g string) slog.Handler {
	return teeHandler{h.a.WithGroup(g), h.b.WithGroup(g)}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// rejoinMetrics collects m's rejoin metrics for the site, by name.
func rejoinMetrics(t *testing.T, m *replication.Manager) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	replication.NewRejoinCollector(m).Collect(ch)
	close(ch)
	out := map[string]float64{}
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil {
			t.Fatal(err)
		}
		name := pm.Desc().String()
		name = name[strings.Index(name, `fqName: "`)+9:]
		name = name[:strings.Index(name, `"`)]
		out[name] = d.GetCounter().GetValue()
	}
	return out
}

// A replica that lost its position file but has its database repairs by
// page diff (it does not replay the whole log) and is not quarantined:
// nothing says its history diverged.
func TestReplicaWithoutPositionRepairs(t *testing.T) {
	p := startNode(t, t.TempDir(), 0)
	r := startNode(t, t.TempDir(), 0)
	p.m.SetSites([]replication.SiteConfig{rejoinCfg(p, ephpm.RolePrimary, "", 1)})
	r.m.SetSites([]replication.SiteConfig{rejoinCfg(r, ephpm.RoleReplica, p.url, 1)})
	exec(t, p, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	exec(t, p, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300) INSERT INTO t (v) SELECT printf('%.3000c', 'x') FROM n")
	caughtUp(t, r, p)
	r.m.SetSites(nil)
	if err := os.Remove(dbPath(r) + "-replica"); err != nil {
		t.Fatal(err)
	}
	exec(t, p, "INSERT INTO t (v) VALUES ('while away')")
	r.m.SetSites([]replication.SiteConfig{rejoinCfg(r, ephpm.RoleReplica, p.url, 1)})
	caughtUp(t, r, p)
	samePages(t, p, r)
	st, ok := r.m.LastRepair(moveSite)
	if !ok || st.Pages > 10 {
		t.Fatalf("repair %+v %v: want a page diff of a few pages", st, ok)
	}
	if q := r.m.Quarantined(moveSite); len(q) != 0 {
		t.Fatalf("quarantined %v", q)
	}
}
