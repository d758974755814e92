package testutil

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/cluster"
)

// TestPublicAddressesCluster: three cluster.Cluster nodes that bind
// loopback ports and advertise delaying proxies (gossip TCP+UDP on one
// port, raft) form one directory; the raft and gossip traffic crosses
// the proxies. The scheme the end-to-end cluster tests use.
func TestPublicAddressesCluster(t *testing.T) {
	delay := 50 * time.Millisecond
	timing := cluster.LANTiming()
	if s := os.Getenv("PUBLIC_ADDR_WAN"); s != "" {
		delay, _ = time.ParseDuration(s)
		timing = cluster.WANTiming()
	}
	names := []string{"frankfurt", "tokyo", "saopaulo"}
	type node struct {
		cfg cluster.Config
		g   *GossipProxy
		r   *DelayProxy
		c   *cluster.Cluster
	}
	nodes := map[string]*node{}
	var join []string
	for _, name := range names {
		n := &node{}
		bind, raft := FreeLowPort(t, true), FreeLowPort(t, false)
		n.g = NewDelayGossipProxy(t, bind, delay)
		n.r = NewDelayProxy(t, raft, delay)
		n.cfg = cluster.Config{Node: name, Region: "r-" + name, Bind: bind, RaftBind: raft, Advertise: n.g.Addr, RaftAdvertise: n.r.Addr,
			Secret: "public-address-test-secret-0123", DataDir: t.TempDir(), Timing: timing, Version: "test"}
		join = append(join, n.g.Addr)
		nodes[name] = n
	}
	for _, name := range names {
		n := nodes[name]
		n.cfg.Join = join
		c, err := cluster.New(context.Background(), n.cfg)
		if err != nil {
			t.Fatal(err)
		}
		n.c = c
		t.Cleanup(func() { c.Close() })
	}
	var leader string
	start := time.Now()
	RetryUntil(t, 120*time.Second, func() error {
		leader = ""
		for _, name := range names {
			st := nodes[name].c.Status()
			var alive []string
			for _, m := range st.Members {
				if m.State == "alive" && m.RaftRole == "voter" {
					alive = append(alive, m.Name)
				}
			}
			sort.Strings(alive)
			if strings.Join(alive, ",") != "frankfurt,saopaulo,tokyo" || st.Leader == "" {
				return fmt.Errorf("%s: leader %q, alive voters %v", name, st.Leader, alive)
			}
			if leader != "" && st.Leader != leader {
				return fmt.Errorf("two leaders")
			}
			leader = st.Leader
		}
		return nil
	})
	t.Logf("converged in %v, leader %s", time.Since(start).Round(time.Millisecond), leader)
	for _, name := range names {
		for _, m := range nodes[name].c.Status().Members {
			if want := nodes[m.Name].g.Addr; m.Gossip != want {
				t.Errorf("%s knows %s at %s, want %s", name, m.Name, m.Gossip, want)
			}
		}
	}
	other := names[0]
	if other == leader {
		other = names[1]
	}
	// Membership converged; each node registers itself in the directory
	// right after (Ready says so), and a site's primary must be known.
	RetryUntil(t, 30*time.Second, func() error {
		for _, name := range names {
			if err := nodes[name].c.Ready(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
	if _, err := nodes[other].c.CreateSite(context.Background(), "a.test", other, nil); err != nil {
		t.Fatal(err)
	}
	RetryUntil(t, 30*time.Second, func() error {
		for _, name := range names {
			if _, ok := nodes[name].c.Site("a.test"); !ok {
				return fmt.Errorf("%s lacks a.test", name)
			}
		}
		return nil
	})
	for _, name := range names {
		n := nodes[name]
		if n.g.UDP.Forwarded() == 0 || n.g.TCP.Accepted() == 0 || (name != leader && n.r.Accepted() == 0) {
			t.Errorf("%s's proxies: %d datagrams, %d gossip and %d raft connections", name, n.g.UDP.Forwarded(), n.g.TCP.Accepted(), n.r.Accepted())
		}
	}
	if os.Getenv("PUBLIC_ADDR_WAN") == "" {
		return
	}
	// Failure detection (figures only): a non-leader's proxies paused.
	victim := names[2]
	if victim == leader {
		victim = names[1]
	}
	nodes[victim].g.Pause()
	nodes[victim].r.Pause()
	start = time.Now()
	var suspect time.Duration
	RetryUntil(t, 120*time.Second, func() error {
		for _, name := range names {
			if name == victim {
				continue
			}
			for _, m := range nodes[name].c.Members() {
				if m.Name == victim {
					if m.State != "alive" && suspect == 0 {
						suspect = time.Since(start)
					}
					if m.State != "dead" {
						return fmt.Errorf("%s sees %s %s", name, victim, m.State)
					}
				}
			}
		}
		return nil
	})
	t.Logf("partitioned %s: suspect after %v, dead after %v", victim, suspect.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	nodes[victim].g.Resume()
	nodes[victim].r.Resume()
}
