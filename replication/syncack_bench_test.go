package replication_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
)

// BenchmarkSyncCommit measures a client's commit latency on a primary
// whose replica is oneWay away (a delaying proxy carries the stream and
// the acks): sync = "local" vs sync = "replica", one writer at a time
// and 8 concurrent (whose waits share the replica's acks). It reports
// milliseconds per commit and the ratio; it asserts nothing on time.
//
//	go test ./replication -run '^$' -bench BenchmarkSyncCommit -benchtime 20x
func BenchmarkSyncCommit(b *testing.B) {
	for _, oneWay := range []time.Duration{50 * time.Millisecond, 125 * time.Millisecond} {
		for _, writers := range []int{1, 8} {
			b.Run(fmt.Sprintf("oneway=%s/writers=%d", oneWay, writers), func(b *testing.B) {
				root := b.TempDir()
				p := startNode(b, filepath.Join(root, "p"), 0)
				r := startNode(b, filepath.Join(root, "r"), 0)
				os.MkdirAll(p.dir, 0o700)
				os.MkdirAll(r.dir, 0o700)
				px := testutil.NewDelayProxy(b, p.url[len("http://"):], oneWay)
				var pc, rc []replication.SiteConfig
				for _, s := range []struct {
					name string
					sync replication.SyncMode
				}{{"local.bench", replication.SyncLocal}, {"replica.bench", replication.SyncReplica}} {
					pc = append(pc, replication.SiteConfig{Name: s.name, DBPath: filepath.Join(p.dir, s.name+".db"), Role: ephpm.RolePrimary, Sync: s.sync})
					rc = append(rc, replication.SiteConfig{Name: s.name, DBPath: filepath.Join(r.dir, s.name+".db"), Role: ephpm.RoleReplica, PrimaryURL: "http://" + px.Addr, Sync: s.sync})
				}
				p.m.SetSites(pc)
				r.m.SetSites(rc)
				ctx := context.Background()
				per := map[string]float64{}
				for _, site := range []string{"local.bench", "replica.bench"} {
					db := p.db(b, site)
					testutil.Exec(b, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
					// Warm up: the replica is streaming and has acked once.
					if err := clientWrite(ctx, db, "INSERT INTO t (v) VALUES ('warm')"); err != nil {
						b.Fatal(err)
					}
					n := max(b.N, writers)
					start := time.Now()
					var wg sync.WaitGroup
					for w := range writers {
						wg.Go(func() {
							for i := w; i < n; i += writers {
								if err := clientWrite(ctx, db, "INSERT INTO t (v) VALUES ('x')"); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					per[site] = float64(time.Since(start).Microseconds()) / 1000 / float64(n) * float64(writers)
				}
				b.ReportMetric(per["local.bench"], "local-ms/commit")
				b.ReportMetric(per["replica.bench"], "replica-ms/commit")
				b.ReportMetric(per["replica.bench"]/per["local.bench"], "ratio")
				b.Logf("one way %v, %d writers: local %.2f ms, replica %.2f ms per commit (x%.0f)", oneWay, writers,
					per["local.bench"], per["replica.bench"], per["replica.bench"]/per["local.bench"])
			})
		}
	}
}
