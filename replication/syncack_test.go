package replication_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/mysqlwire"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sqlite"
)

// mysqlFront serves the site's database on n through the real MySQL
// front, as PHP reaches it.
func mysqlFront(t *testing.T, n *node, site string) *sql.DB {
	t.Helper()
	if err := sqlite.RegisterFunctions(mysqlwire.SQLiteFunctions()); err != nil {
		t.Fatal(err)
	}
	srv, err := mysqlwire.New(mysqlwire.Config{
		Listen: "127.0.0.1:0",
		Sites: mysqlwire.StaticDirectory{"u": mysqlwire.PoolAccount("u", "secret-password", "wp", n.pool,
			filepath.Join(n.dir, site+".db"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := sql.Open("mysql", fmt.Sprintf("u:secret-password@tcp(%s)/wp", srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientWrite commits one statement as a client does, waiting for its
// acknowledgement after the writer is given back.
func clientWrite(ctx context.Context, db *sqlite.DB, q string, args ...any) error {
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		return err
	}
	_, err = w.ExecContext(ctx, q, args...)
	w.Release(ctx)
	if err != nil {
		return err
	}
	return w.Acked(ctx)
}

func syncCfg(n *node, site string, role ephpm.Role, primary *node, sync replication.SyncMode) replication.SiteConfig {
	c := replication.SiteConfig{Name: site, DBPath: filepath.Join(n.dir, site+".db"), Role: role, Epoch: 1, Sync: sync}
	if primary != nil {
		c.PrimaryURL = primary.url
	}
	return c
}

// sync = "replica": a commit returns only once the replica has it; with
// the replica gone, it fails after the bound (committed on the primary,
// not acknowledged); a sync = "local" site is not affected. Every
// acknowledged commit is in the audit, and no other.
func TestSyncReplica(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	t.Setenv(replication.AuditEnv, audit)
	// The bound is loose enough for a replica's ack under -race on two
	// cores; the refusal below waits it out (twice).
	const bound = 3 * time.Second
	p := startNodeWith(t, t.TempDir(), 0, func(c *replication.Config) { c.SyncTimeout = bound })
	os.Unsetenv(replication.AuditEnv)
	r := startNode(t, t.TempDir(), 0)
	for _, n := range []*node{p, r} {
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	const site, local = "sync.test", "local.test"
	p.m.SetSites([]replication.SiteConfig{
		syncCfg(p, site, ephpm.RolePrimary, nil, replication.SyncReplica),
		syncCfg(p, local, ephpm.RolePrimary, nil, replication.SyncLocal),
	})
	r.m.SetSites([]replication.SiteConfig{syncCfg(r, site, ephpm.RoleReplica, p, replication.SyncReplica)})
	c := mysqlFront(t, p, site)
	rdb := r.db(t, site)
	acked := 0
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY)")
	acked++
	for id := 1; id <= 5; id++ {
		mustExec(t, c, "INSERT INTO t (id) VALUES (?)", id)
		acked++
		if got := count(rdb, "t"); got != id {
			t.Fatalf("after commit %d returned, the replica has %d rows", id, got)
		}
	}
	// Concurrent commits each wait for a replica that has them.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			id := 100 + i
			if _, err := c.Exec("INSERT INTO t (id) VALUES (?)", id); err != nil {
				errs <- err
				return
			}
			var n int
			if err := rdb.Reader().QueryRow("SELECT count(*) FROM t WHERE id = ?", id).Scan(&n); err != nil || n != 1 {
				errs <- fmt.Errorf("row %d not on the replica when its commit returned (%d, %v)", id, n, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	acked += 8
	// A transaction: COMMIT waits too.
	tx, err := c.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t (id) VALUES (200)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	acked++
	var n int
	if err := rdb.Reader().QueryRow("SELECT count(*) FROM t WHERE id = 200").Scan(&n); err != nil || n != 1 {
		t.Fatalf("COMMIT returned before the replica had it (%d, %v)", n, err)
	}

	// The replica stops: the commit is refused its OK after the bound.
	r.m.SetSites(nil)
	start := time.Now()
	_, err = c.Exec("INSERT INTO t (id) VALUES (300)")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1105 || !strings.Contains(me.Message, "no replica confirmed it") {
		t.Fatalf("commit without a replica = %v, want 1105 saying it is not confirmed", err)
	}
	if d := time.Since(start); d < bound {
		t.Errorf("the unconfirmed commit failed after %v, before the bound (%v)", d, bound)
	}
	pdb := p.db(t, site)
	if err := pdb.Reader().QueryRow("SELECT count(*) FROM t WHERE id = 300").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the unconfirmed commit is not on the primary (%d, %v)", n, err)
	}
	// The session is still usable.
	if err := c.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("read after the unconfirmed commit: %v", err)
	}
	ldb := p.db(t, local)
	testutil.Exec(t, ldb, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	if err := clientWrite(context.Background(), ldb, "INSERT INTO t (id) VALUES (1)"); err != nil {
		t.Fatalf("sync = local site: %v", err)
	}
	acked++
	if err := clientWrite(context.Background(), pdb, "INSERT INTO t (id) VALUES (301)"); !errors.Is(err, ephpm.ErrCommitUnconfirmed) {
		t.Fatalf("direct commit without a replica = %v, want ErrCommitUnconfirmed", err)
	}

	p.stop()
	f, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []replication.AuditRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec replication.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != acked {
		t.Fatalf("%d audit lines, want %d (one per acknowledged commit)", len(recs), acked)
	}
	last := map[string]uint64{}
	seen := map[string]bool{}
	for _, rec := range recs {
		if rec.Node != filepath.Base(p.dir) || rec.Epoch != 1 || rec.T == 0 || (rec.Site != site && rec.Site != local) {
			t.Fatalf("audit record %+v", rec)
		}
		// Lines come in the order the clients were answered, which
		// concurrent commits may swap; each commit has its own frame.
		k := fmt.Sprint(rec.Site, rec.Frame)
		if seen[k] {
			t.Fatalf("two audit lines for frame %d of %s", rec.Frame, rec.Site)
		}
		seen[k] = true
		last[rec.Site] = max(last[rec.Site], rec.Frame)
	}
	if last[local] == 0 || last[site] == 0 {
		t.Fatalf("audit frames %v", last)
	}
}

func mustExec(t *testing.T, c *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := c.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// A change of sync alone is a change of the site (sameSite): the primary
// keeps its log and from then on waits for the replica.
func TestSyncChangeTakesEffect(t *testing.T) {
	ctx := context.Background()
	p := startNodeWith(t, t.TempDir(), 0, func(c *replication.Config) { c.SyncTimeout = 300 * time.Millisecond })
	r := startNode(t, t.TempDir(), 0)
	for _, n := range []*node{p, r} {
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	const site = "sync.test"
	p.m.SetSites([]replication.SiteConfig{syncCfg(p, site, ephpm.RolePrimary, nil, replication.SyncLocal)})
	pdb := p.db(t, site)
	testutil.Exec(t, pdb, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	if err := clientWrite(ctx, pdb, "INSERT INTO t (id) VALUES (1)"); err != nil {
		t.Fatalf("sync = local without a replica: %v", err)
	}
	p.m.SetSites([]replication.SiteConfig{syncCfg(p, site, ephpm.RolePrimary, nil, replication.SyncReplica)})
	if err := clientWrite(ctx, pdb, "INSERT INTO t (id) VALUES (2)"); !errors.Is(err, ephpm.ErrCommitUnconfirmed) {
		t.Fatalf("sync = replica without a replica: %v, want ErrCommitUnconfirmed", err)
	}
	r.m.SetSites([]replication.SiteConfig{syncCfg(r, site, ephpm.RoleReplica, p, replication.SyncReplica)})
	rdb := r.db(t, site)
	testutil.RetryUntil(t, 10*time.Second, func() error {
		err := clientWrite(ctx, pdb, "INSERT INTO t (id) VALUES (NULL)")
		if err != nil {
			return fmt.Errorf("%w; p %+v r %+v", err, p.m.Status(), r.m.Status())
		}
		return nil
	})
	if got, want := count(rdb, "t"), count(pdb, "t"); got != want {
		t.Fatalf("the replica has %d rows when the commit returned, the primary %d", got, want)
	}
}
