package replication_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sqlite"
)

// benchPair is a primary and a replica of one site, the replica reaching
// the primary through a delaying proxy.
func benchPair(b *testing.B, oneWay time.Duration) (p, r *node, site string, applied func() (uint64, time.Time)) {
	root := b.TempDir()
	p = startNode(b, filepath.Join(root, "p"), 0)
	r = startNode(b, filepath.Join(root, "r"), 0)
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	site = "bench.example"
	url := p.url
	if oneWay > 0 {
		px := testutil.NewDelayProxy(b, p.url[len("http://"):], oneWay)
		url = "http://" + px.Addr
	}
	p.m.SetSites([]replication.SiteConfig{{Name: site, DBPath: filepath.Join(p.dir, site+".db"), Role: ephpm.RolePrimary}})
	r.m.SetSites([]replication.SiteConfig{{Name: site, DBPath: filepath.Join(r.dir, site+".db"), Role: ephpm.RoleReplica, PrimaryURL: url}})
	return p, r, site, nil
}

// BenchmarkLag measures how long after its commit on the primary a
// transaction is applied on a replica 50 ms (one way) away, at 100 write
// transactions per second. Target: p99 ≤ 60 ms.
func BenchmarkLag(b *testing.B) {
	for _, oneWay := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("oneway=%s", oneWay), func(b *testing.B) {
			p, r, site, _ := benchPair(b, oneWay)
			pdb := p.db(b, site)
			testutil.Exec(b, pdb, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
			eventually(b, "replica up", func() bool { return r.m.Applied(site) > 0 && r.m.Applied(site) == p.m.Status()[0].Position })
			const rate, n = 100, 300
			type commit struct {
				next uint64
				at   time.Time
			}
			commits := make([]commit, 0, n)
			// The replica side: when did each position become visible?
			var mu sync.Mutex
			var seen []commit
			done := make(chan struct{})
			go func() {
				defer close(done)
				last := r.m.Applied(site)
				deadline := time.Now().Add(time.Duration(n)*time.Second/rate + 10*time.Second)
				for time.Now().Before(deadline) {
					if a := r.m.Applied(site); a != last {
						last = a
						mu.Lock()
						seen = append(seen, commit{a, time.Now()})
						mu.Unlock()
					}
					mu.Lock()
					finished := len(commits) == n && len(seen) > 0 && seen[len(seen)-1].next >= commits[n-1].next
					mu.Unlock()
					if finished {
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
			}()
			b.ResetTimer()
			tick := time.NewTicker(time.Second / rate)
			for i := range n {
				<-tick.C
				testutil.Exec(b, pdb, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("row ", i))
				at := time.Now()
				mu.Lock()
				commits = append(commits, commit{p.m.Status()[0].Position, at})
				mu.Unlock()
			}
			tick.Stop()
			<-done
			b.StopTimer()
			var lags []float64
			for _, c := range commits {
				for _, s := range seen {
					if s.next >= c.next {
						lags = append(lags, float64(s.at.Sub(c.at))/float64(time.Millisecond))
						break
					}
				}
			}
			if len(lags) != n {
				b.Fatalf("%d of %d transactions reached the replica", len(lags), n)
			}
			slices.Sort(lags)
			b.ReportMetric(lags[len(lags)/2], "p50-ms")
			b.ReportMetric(lags[len(lags)*99/100], "p99-ms")
			b.ReportMetric(lags[len(lags)-1], "max-ms")
		})
	}
}

// BenchmarkThroughput writes small transactions back to back on the
// primary and reports how many per second the replica applies (target
// ≥ 2,000/s on loopback).
func BenchmarkThroughput(b *testing.B) {
	p, r, site, _ := benchPair(b, 0)
	pdb := p.db(b, site)
	testutil.Exec(b, pdb, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	eventually(b, "replica up", func() bool { return r.m.Applied(site) > 0 })
	n := max(b.N, 3000)
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		testutil.Exec(b, pdb, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("row ", i))
	}
	wrote := time.Since(start)
	target := p.m.Status()[0].Position
	deadline := time.Now().Add(60 * time.Second)
	for r.m.Applied(site) < target {
		if time.Now().After(deadline) {
			b.Fatal("replica did not catch up")
		}
		time.Sleep(time.Millisecond)
	}
	all := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/wrote.Seconds(), "primary-tx/s")
	b.ReportMetric(float64(n)/all.Seconds(), "replica-applied-tx/s")
	st := r.m.Status()[0]
	b.ReportMetric(float64(st.Txs), "txs")
}

// BenchmarkCatchUp measures a replica's apply capacity: the primary
// writes small transactions while the replica is away, then the replica
// catches up (merging what is queued into fewer local transactions).
func BenchmarkCatchUp(b *testing.B) {
	root := b.TempDir()
	p := startNode(b, filepath.Join(root, "p"), 0)
	os.MkdirAll(p.dir, 0o700)
	site := "bench.example"
	p.m.SetSites([]replication.SiteConfig{{Name: site, DBPath: filepath.Join(p.dir, site+".db"), Role: ephpm.RolePrimary}})
	pdb := p.db(b, site)
	testutil.Exec(b, pdb, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	n := max(b.N, 5000)
	for i := range n {
		testutil.Exec(b, pdb, "INSERT INTO t (v) VALUES (?)", fmt.Sprint("row ", i))
	}
	target := p.m.Status()[0].Position
	b.ResetTimer()
	start := time.Now()
	r := startNode(b, filepath.Join(root, "r"), 0)
	os.MkdirAll(r.dir, 0o700)
	r.m.SetSites([]replication.SiteConfig{{Name: site, DBPath: filepath.Join(r.dir, site+".db"), Role: ephpm.RoleReplica, PrimaryURL: p.url}})
	deadline := time.Now().Add(60 * time.Second)
	for r.m.Applied(site) < target {
		if time.Now().After(deadline) {
			b.Fatal("replica did not catch up")
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "applied-tx/s")
}

// BenchmarkCommit is the primary's cost per small transaction with and
// without the frame log (capture = the difference).
func BenchmarkCommit(b *testing.B) {
	for _, logged := range []bool{false, true} {
		b.Run(fmt.Sprintf("log=%v", logged), func(b *testing.B) {
			ctx := context.Background()
			db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "p.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if logged {
				l, err := framelog.Open(ctx, db, framelog.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
			}
			testutil.Exec(b, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				testutil.Exec(b, db, "INSERT INTO t (v) VALUES ('small row')")
			}
		})
	}
}

// BenchmarkApply is a replica's cost to apply one small transaction.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	primary, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "p.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer primary.Close()
	testutil.Exec(b, primary, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	testutil.Exec(b, primary, "INSERT INTO t (v) VALUES ('small row')")
	primary.Checkpoint(ctx, "TRUNCATE")
	data, _ := os.ReadFile(primary.Path())
	var pages []sqlite.Page
	for i := 0; i*sqlite.PageSize < len(data); i++ {
		pages = append(pages, sqlite.Page{No: uint32(i + 1), Data: data[i*sqlite.PageSize : (i+1)*sqlite.PageSize]})
	}
	replica, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "r.db"), ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer replica.Close()
	if err := replica.ApplyPages(ctx, pages, uint32(len(pages))); err != nil {
		b.Fatal(err)
	}
	small := pages[len(pages)-1:] // a one-row insert touches the table's leaf
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := replica.ApplyPages(ctx, small, uint32(len(pages))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManySites replicates 1,000 sites between two nodes: one TCP
// connection, and site databases close when idle although their streams
// stay open.
func BenchmarkManySites(b *testing.B) {
	const sites = 1000
	root := b.TempDir()
	p := startNodeIdle(b, filepath.Join(root, "p"), 0, time.Second)
	r := startNodeIdle(b, filepath.Join(root, "r"), 0, time.Second)
	os.MkdirAll(p.dir, 0o700)
	os.MkdirAll(r.dir, 0o700)
	var names []string
	for i := range sites {
		names = append(names, fmt.Sprintf("site%04d.example", i))
	}
	b.ResetTimer()
	start := time.Now()
	setup(p, r, names...)
	for _, s := range names {
		db, release, err := p.pool.Acquire(context.Background(), filepath.Join(p.dir, s+".db"))
		if err != nil {
			b.Fatal(err)
		}
		testutil.Exec(b, db, "CREATE TABLE t (a)")
		release()
	}
	eventually(b, "all replicated", func() bool {
		for _, st := range r.m.Status() {
			if st.Position == 0 || st.LagFrames != 0 || st.State != "streaming" {
				return false
			}
		}
		return true
	})
	b.ReportMetric(time.Since(start).Seconds(), "s-to-replicate")
	deadline := time.Now().Add(30 * time.Second)
	for p.pool.Len() != 0 || r.pool.Len() != 0 {
		if time.Now().After(deadline) {
			b.Fatalf("open databases: primary %d, replica %d", p.pool.Len(), r.pool.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(p.conns.Load()), "tcp-conns")
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/sites/1024, "heap-KB/site-pair")
	b.ReportMetric(float64(runtime.NumGoroutine())/sites, "goroutines/site-pair")
	// Still live: a write to an idle site reaches its replica.
	db, release, _ := p.pool.Acquire(context.Background(), filepath.Join(p.dir, names[7]+".db"))
	testutil.Exec(b, db, "INSERT INTO t VALUES (1)")
	release()
	rdb, rrelease, _ := r.pool.Acquire(context.Background(), filepath.Join(r.dir, names[7]+".db"))
	defer rrelease()
	eventually(b, "write after idle", func() bool { return count(rdb, "t") == 1 })
}
