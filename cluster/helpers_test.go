package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/hashicorp/raft"
)

const (
	testSecret = "correct horse battery staple"
	converge   = 60 * time.Second // RetryUntil bound: generous for -race on two cores
)

// freePort returns a loopback port free for both TCP and UDP (gossip
// binds both) at the time of the call. It is taken below the ephemeral
// range, so that the source port of some outgoing connection of the
// test cannot take it before the node binds it.
func freePort(tb testing.TB) int {
	tb.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	for range 200 {
		port := 10000 + rand.IntN(low-10000)
		ln, err := net.Listen("tcp", addr(port))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr(port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	tb.Fatal("no free port")
	return 0
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func testLogger(tb testing.TB) *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a loopback node on fresh ports.
func testConfig(tb testing.TB, name, dir string, join []string) Config {
	return Config{
		Node: name, Region: "test",
		Bind: addr(freePort(tb)), RaftBind: addr(freePort(tb)),
		Join: join, Secret: testSecret, DataDir: dir,
		HTTP: "127.0.0.1:8080", Repl: "http://127.0.0.1:5001/" + name, Version: "test",
		Timing: LANTiming(), Logger: testLogger(tb).With("test_node", name),
	}
}

func start(tb testing.TB, cfg Config) *Cluster {
	tb.Helper()
	c, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New(%s): %v", cfg.Node, err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("Close(%s): %v", cfg.Node, err)
		}
	})
	return c
}

// newTestCluster starts n voters that all list each other in Join.
func newTestCluster(tb testing.TB, n int) ([]*Cluster, []Config) {
	tb.Helper()
	cfgs := make([]Config, n)
	var join []string
	for i := range n {
		cfgs[i] = testConfig(tb, fmt.Sprintf("node%d", i), tb.TempDir(), nil)
		join = append(join, cfgs[i].Bind)
	}
	nodes := make([]*Cluster, n)
	for i := range n {
		cfgs[i].Join = join
		nodes[i] = start(tb, cfgs[i])
	}
	return nodes, cfgs
}

// waitConverged waits until every node is ready, agrees on one leader
// among them and has every node in its nodes table.
func waitConverged(tb testing.TB, nodes ...*Cluster) *Cluster {
	tb.Helper()
	var leader *Cluster
	testutil.RetryUntil(tb, converge, func() error {
		leader = nil
		var name string
		for _, c := range nodes {
			if err := c.Ready(); err != nil {
				return fmt.Errorf("%s: %w", c.cfg.Node, err)
			}
			st := c.Status()
			if name == "" {
				name = st.Leader
			} else if st.Leader != name {
				return fmt.Errorf("%s sees leader %q, another %q", c.cfg.Node, st.Leader, name)
			}
			for _, o := range nodes {
				if n, ok := c.Node(o.cfg.Node); !ok || n != o.LocalNode() {
					return fmt.Errorf("%s: node %s not registered (yet)", c.cfg.Node, o.cfg.Node)
				}
			}
		}
		for _, c := range nodes {
			if c.cfg.Node == name {
				leader = c
			}
		}
		if leader == nil {
			return fmt.Errorf("leader %q is none of the nodes", name)
		}
		return nil
	})
	return leader
}

func followers(leader *Cluster, nodes []*Cluster) []*Cluster {
	return slices.DeleteFunc(slices.Clone(nodes), func(c *Cluster) bool { return c == leader })
}

// suffrage returns name's suffrage in c's raft configuration.
func suffrage(c *Cluster, name string) (raft.ServerSuffrage, bool) {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return 0, false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == name {
			return s.Suffrage, true
		}
	}
	return 0, false
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func wantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}
