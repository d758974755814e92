package replication_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
)

// BenchmarkRejoin: a replica that applied 100 transactions its new
// primary never had (the old primary died) rejoins by page diff. It
// reports the bytes of the pages that changed and the bytes the repair
// moved. EPHPM_REJOIN_MB sets the database's size (default 4; the 100 MB
// run is bench/'s):
//
//	EPHPM_REJOIN_MB=100 go test ./replication -run '^$' -bench BenchmarkRejoin -benchtime 1x
func BenchmarkRejoin(b *testing.B) {
	mb := 4
	if v, err := strconv.Atoi(os.Getenv("EPHPM_REJOIN_MB")); err == nil && v > 0 {
		mb = v
	}
	for range b.N {
		b.StopTimer()
		a := startNode(b, b.TempDir(), 0)
		nb := startNode(b, b.TempDir(), 0)
		c := startNode(b, b.TempDir(), 0)
		a.m.SetSites([]replication.SiteConfig{rejoinCfg(a, ephpm.RolePrimary, "", 1)})
		nb.m.SetSites([]replication.SiteConfig{rejoinCfg(nb, ephpm.RoleReplica, a.url, 1)})
		c.m.SetSites([]replication.SiteConfig{rejoinCfg(c, ephpm.RoleReplica, a.url, 1)})
		exec(b, a, "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
		rowsN := mb << 10 // ~1 KB rows
		for done := 0; done < rowsN; done += 10000 {
			exec(b, a, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?) INSERT INTO t (v) SELECT randomblob(1000) FROM n", min(10000, rowsN-done))
		}
		caughtUp(b, nb, a)
		caughtUp(b, c, a)
		// 100 transactions nb never gets, each one row somewhere.
		nb.m.SetSites([]replication.SiteConfig{rejoinCfg(nb, ephpm.RoleReplica, deadURL, 1)})
		for i := range 100 {
			exec(b, a, "UPDATE t SET v = randomblob(1000) WHERE id = ?", 1+i*rowsN/100)
		}
		caughtUp(b, c, a)
		a.stop()
		nb.m.SetSites([]replication.SiteConfig{rejoinCfg(nb, ephpm.RolePrimary, "", 2)})
		exec(b, nb, "UPDATE t SET v = randomblob(1000) WHERE id = 1")
		differ, _, _ := diffPages(b, dbPath(c), dbPath(nb))
		b.StartTimer()
		start := time.Now()
		c.m.SetSites([]replication.SiteConfig{rejoinCfg(c, ephpm.RoleReplica, nb.url, 2)})
		testutil.RetryUntil(b, 10*time.Minute, func() error {
			if _, ok := c.m.LastRepair(moveSite); !ok || c.m.Applied(moveSite) != nb.m.Status()[0].Position {
				return fmt.Errorf("not repaired yet: %+v", c.m.Status())
			}
			return nil
		})
		took := time.Since(start)
		b.StopTimer()
		st, _ := c.m.LastRepair(moveSite)
		if int(st.Pages) != differ {
			b.Fatalf("repair copied %d pages, %d differed", st.Pages, differ)
		}
		changed := int64(st.Pages) * 4096
		moved := st.Sent + st.Recv
		b.ReportMetric(float64(changed), "changed-bytes")
		b.ReportMetric(float64(moved), "moved-bytes")
		b.ReportMetric(float64(moved)/float64(max(changed, 1)), "moved/changed")
		b.ReportMetric(float64(int64(st.DBPages)*4096), "db-bytes")
		b.Logf("database %d MB (%d pages): %d pages changed (%d bytes), repair moved %d bytes (sent %d, received %d), %.2f× the changed pages, in %v; quarantined %v",
			mb, st.DBPages, st.Pages, changed, moved, st.Sent, st.Recv, float64(moved)/float64(max(changed, 1)), took, c.m.Quarantined(moveSite))
		for _, n := range []*node{nb, c} {
			n.stop()
		}
		b.StartTimer()
	}
}
