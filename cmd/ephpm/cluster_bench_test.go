package main_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"
)

// The cluster benchmarks (bench/cluster.sh): figures, no pass/fail on
// timing. Each runs real ephpm processes behind the delaying proxies.

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return s[i]
}

// BenchmarkClusterFailureDetection: 3 nodes, 125 ms one way; one node
// killed with SIGKILL; the time until both others mark it dead (memberlist
// shows no suspect state). b.N kills, the node restarted in between.
func BenchmarkClusterFailureDetection(b *testing.B) {
	c := newEdgeCluster(b, clusterNames, 125*time.Millisecond, edgeOpts{})
	c.waitMembers(clusterNames, 120*time.Second)
	var dead []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		victim := clusterNames[1+i%2]
		others := without(clusterNames, victim)
		c.kill9(victim)
		start := time.Now()
		seenDead := map[string]bool{}
		var firstDead time.Duration
		deadline := start.Add(120 * time.Second)
		for len(seenDead) < len(others) && time.Now().Before(deadline) {
			for _, o := range others {
				s, err := c.statusErr(o)
				if err != nil {
					continue
				}
				m := s.member(victim)
				state := "gone"
				if m != nil {
					state = m.State
				}
				if (state == "dead" || state == "gone" || state == "left") && !seenDead[o] {
					seenDead[o] = true
					if len(seenDead) == len(others) {
						firstDead = time.Since(start)
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(seenDead) < len(others) {
			b.Fatalf("%s not marked dead in 120 s", victim)
		}
		dead = append(dead, float64(firstDead.Milliseconds()))
		b.StopTimer()
		c.restart(victim)
		c.waitMembers(clusterNames, 120*time.Second)
		b.StartTimer()
	}
	b.ReportMetric(percentile(dead, 0.5), "dead-ms-p50")
	b.ReportMetric(percentile(dead, 1), "dead-ms-max")
}

// BenchmarkClusterMove: b.N moves of a site between frankfurt and tokyo
// (125 ms one way) under ~100 writes a second through saopaulo; the
// hand-over pause each move reports and the move request's duration.
func BenchmarkClusterMove(b *testing.B) {
	const site = "shop.test"
	c := newEdgeCluster(b, clusterNames, 125*time.Millisecond, edgeOpts{before: func(c *edgeCluster) {
		c.siteFiles(site, map[string]string{"w.php": writerPHP, "r.php": readerPHP})
	}})
	c.waitMembers(clusterNames, 120*time.Second)
	c.createSite("frankfurt", site, "frankfurt")
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 120*time.Second)
	c.client("frankfurt", site).get("/w.php?n=1&v=first")

	// The load: 25 requests/s × 4 rows, for as long as the moves take
	// (bounded: 25 requests a second for at most 20 minutes).
	stop := make(chan struct{})
	loadDone := make(chan *loadResult)
	go func() { loadDone <- c.writeLoad("saopaulo", site, 25, 25*60*20, 4, nil, stop) }()
	var pauses, walls []float64
	primary := "frankfurt"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		to := "tokyo"
		if primary == "tokyo" {
			to = "frankfurt"
		}
		start := time.Now()
		code, body, err := c.api("saopaulo", "POST", "/_ephpm/cluster/v1/sites/"+site+"/move", map[string]string{"to": to})
		wall := time.Since(start)
		if err != nil || code != 200 {
			b.Fatalf("move to %s: %d %v %s", to, code, err, body)
		}
		var r struct {
			Epoch   uint64  `json:"epoch"`
			PauseMs float64 `json:"pause_ms"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			b.Fatalf("move: %v %s", err, body)
		}
		pauses = append(pauses, r.PauseMs)
		walls = append(walls, float64(wall.Milliseconds()))
		primary = to
		b.StopTimer()
		c.waitSiteStreaming(clusterNames, site, primary, 120*time.Second)
		b.StartTimer()
	}
	b.StopTimer()
	close(stop)
	res := <-loadDone
	b.ReportMetric(percentile(pauses, 0.5), "pause-ms-p50")
	b.ReportMetric(percentile(pauses, 0.99), "pause-ms-p99")
	b.ReportMetric(percentile(walls, 0.5), "move-wall-ms-p50")
	b.ReportMetric(float64(len(res.acked)), "rows-acked")
	b.ReportMetric(float64(res.failed), "requests-failed")
	if len(res.dups) > 0 {
		b.Errorf("split brain: %v", res.dups)
	}
}

// BenchmarkClusterJoin200: a 4th node joins a cluster of 200 sites (50
// ms one way): the time from its start to streaming every site, ready.
func BenchmarkClusterJoin200(b *testing.B) {
	var ds []float64
	for i := 0; i < b.N; i++ {
		ds = append(ds, float64(joinWithSites(b, 200, regionDelay).Milliseconds()))
	}
	b.ReportMetric(percentile(ds, 0.5), "join-ms")
}

// BenchmarkClusterFailover (issue 15): 3 nodes, 125 ms one way; b.N
// times the site's primary is killed with SIGKILL; the time until a
// write through each of the two other regions is acknowledged again
// (the lease lapses, the leader promotes the most advanced replica, the
// replicas follow). The killed node is restarted and rejoins as a
// replica before the next kill (failback = false).
func BenchmarkClusterFailover(b *testing.B) {
	const site = "bench.test"
	c := newEdgeCluster(b, clusterNames, 125*time.Millisecond, edgeOpts{
		before: failoverSite(site, "frankfurt", "failback = false\n")})
	c.waitMembers(clusterNames, 120*time.Second)
	c.waitSiteStreaming(clusterNames, site, "frankfurt", 120*time.Second)
	c.writeOK("frankfurt", site, "first")
	var took, tookLeader []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		victim, _ := c.primaryOf("tokyo", site)
		others := without(clusterNames, victim)
		leader := c.status(others[0]).Leader == victim
		c.kill9(victim)
		start := time.Now()
		for _, o := range others {
			for time.Since(start) < 120*time.Second {
				if ok, _ := c.writeOK(o, site, fmt.Sprint("k", i)); ok {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		took = append(took, float64(time.Since(start).Milliseconds()))
		if leader {
			// The raft leader died with the primary: an election first.
			tookLeader = append(tookLeader, took[len(took)-1])
		}
		b.StopTimer()
		c.restart(victim)
		p, _ := c.primaryOf(others[0], site)
		c.waitSiteStreaming(clusterNames, site, p, 180*time.Second)
		b.StartTimer()
	}
	b.ReportMetric(percentile(took, 0.5), "failover-ms-p50")
	b.ReportMetric(percentile(took, 0.99), "failover-ms-p99")
	b.ReportMetric(percentile(took, 0.99)/10000, "p99/10s-budget")
	b.ReportMetric(float64(len(tookLeader)), "kills-of-the-leader")
	b.ReportMetric(percentile(tookLeader, 1), "leader-too-ms-max")
}

// BenchmarkClusterCommitSync (issue 15): one write request (one INSERT)
// at a time on the primary, for a site with sync = "local" and one with
// sync = "replica", 50 and 125 ms one way to the replicas; the request's
// latency, p50 and p99, and their ratio.
func BenchmarkClusterCommitSync(b *testing.B) {
	for _, delay := range []time.Duration{50 * time.Millisecond, 125 * time.Millisecond} {
		b.Run(fmt.Sprint(delay.Milliseconds(), "ms"), func(b *testing.B) {
			c := newEdgeCluster(b, clusterNames, delay, edgeOpts{before: func(c *edgeCluster) {
				failoverSite("local.test", "frankfurt", "")(c)
				failoverSite("replica.test", "frankfurt", "sync = \"replica\"\n")(c)
			}})
			c.waitMembers(clusterNames, 120*time.Second)
			for _, s := range []string{"local.test", "replica.test"} {
				c.waitSiteStreaming(clusterNames, s, "frankfurt", 120*time.Second)
				c.writeOK("frankfurt", s, "warm")
			}
			lat := map[string][]float64{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, s := range []string{"local.test", "replica.test"} {
					t0 := time.Now()
					if ok, why := c.writeOK("frankfurt", s, fmt.Sprint("c", i)); !ok {
						b.Fatalf("%s: %s", s, why)
					}
					lat[s] = append(lat[s], float64(time.Since(t0).Microseconds())/1000)
				}
			}
			b.ReportMetric(percentile(lat["local.test"], 0.5), "local-ms-p50")
			b.ReportMetric(percentile(lat["replica.test"], 0.5), "replica-ms-p50")
			b.ReportMetric(percentile(lat["local.test"], 0.99), "local-ms-p99")
			b.ReportMetric(percentile(lat["replica.test"], 0.99), "replica-ms-p99")
			b.ReportMetric(percentile(lat["replica.test"], 0.5)/percentile(lat["local.test"], 0.5), "replica/local-p50")
		})
	}
}
