package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A node with another secret is neither gossiped with nor let into raft.
func TestWrongSecret(t *testing.T) {
	nodes, cfgs := newTestCluster(t, 1)
	waitConverged(t, nodes...)
	good := nodes[0]

	bad := testConfig(t, "intruder", t.TempDir(), []string{cfgs[0].Bind})
	bad.Secret = "another secret, just as long"
	b := start(t, bad)
	// Join synchronously: the push-pull has been refused when it returns.
	if n, err := b.ml.Join([]string{cfgs[0].Bind}); err == nil || n != 0 {
		t.Fatalf("join with another secret: %d contacted, err %v", n, err)
	}
	for _, m := range good.ml.Members() {
		if m.Name == "intruder" {
			t.Fatal("the intruder is a gossip member")
		}
	}
	if slices.ContainsFunc(good.Members(), func(m Member) bool { return m.Name == "intruder" }) {
		t.Fatal("the intruder is in Members")
	}
	if got := b.ml.NumMembers(); got != 1 {
		t.Errorf("the intruder sees %d members", got)
	}
	// Nor can it talk raft or commands to the node.
	if _, err := b.mux.dial(context.Background(), good.LocalNode().Raft, chanRaft, 5*time.Second); err == nil {
		t.Fatal("raft dial with another secret succeeded")
	}
	if _, _, err := b.callLeader(context.Background(), good.LocalNode().Raft, command{Op: OpRemoveSite, Site: "x.example"}); err == nil {
		t.Fatal("command RPC with another secret succeeded")
	}
}

// newTestMux serves a mux with the given secret on loopback.
func newTestMux(t *testing.T, secret string) *mux {
	t.Helper()
	tc, err := raftTLS(secret)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, tc, ln.Addr(), func(msg string, args ...any) { t.Log(append([]any{msg}, args...)...) })
	m.handle = func(ctx context.Context, c net.Conn) {}
	m.start()
	t.Cleanup(func() { m.close() })
	return m
}

func TestStreamLayer(t *testing.T) {
	server := newTestMux(t, testSecret)
	client := newTestMux(t, testSecret)
	other := newTestMux(t, "another secret, just as long")
	sl := streamLayer{server}

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := sl.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := streamLayer{client}.Dial(raft.ServerAddress(server.ln.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("dial with the secret: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("no stream accepted")
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	sc.Close()

	// Another secret: the dialler refuses the server's key.
	if _, err := (streamLayer{other}).Dial(raft.ServerAddress(server.ln.Addr().String()), 5*time.Second); err == nil {
		t.Fatal("dial with another secret succeeded")
	}
	// The server refuses a client that skips its own check and shows
	// another key: in TLS 1.3 the client's handshake ends first, so the
	// refusal shows on the first read.
	bogus, err := raftTLS("another secret, just as long")
	if err != nil {
		t.Fatal(err)
	}
	bogus = bogus.Clone()
	bogus.VerifyPeerCertificate = nil
	conn, err := tls.Dial("tcp", server.ln.Addr().String(), bogus)
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte{chanRaft})
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("the server accepted a client keyed from another secret")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not refuse the client: %v", err)
	}
}

func TestDerivedKeysDiffer(t *testing.T) {
	g, r := deriveKey(testSecret, labelGossip), deriveKey(testSecret, labelRaft)
	if len(g) != 32 || len(r) != 32 || string(g) == string(r) {
		t.Fatalf("gossip and raft keys: %x %x", g, r)
	}
	if string(deriveKey("another secret, just as long", labelGossip)) == string(g) {
		t.Fatal("the key does not depend on the secret")
	}
}

func TestConfigValidate(t *testing.T) {
	base := Config{Node: "n1", Bind: "127.0.0.1:0", RaftBind: "127.0.0.1:0", Secret: testSecret, DataDir: "/tmp/x"}
	for name, mut := range map[string]func(*Config){
		"short secret": func(c *Config) { c.Secret = "short" },
		"bad node":     func(c *Config) { c.Node = "a b" },
		"no data dir":  func(c *Config) { c.DataDir = "" },
		"bad bind":     func(c *Config) { c.Bind = "nope" },
	} {
		c := base
		mut(&c)
		if _, err := New(context.Background(), c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	for name, tm := range map[string]Timing{"WAN": WANTiming(), "LAN": LANTiming()} {
		rc := raft.DefaultConfig()
		rc.LocalID = "n1"
		rc.HeartbeatTimeout, rc.ElectionTimeout = tm.RaftHeartbeat, tm.RaftElection
		rc.LeaderLeaseTimeout, rc.CommitTimeout = tm.RaftLeaderLease, tm.RaftCommit
		if err := raft.ValidateConfig(rc); err != nil {
			t.Errorf("%s timing: %v", name, err)
		}
	}
	// a bind that cannot be bound fails at once
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := base
	c.DataDir = t.TempDir()
	c.RaftBind = ln.Addr().String()
	if _, err := New(context.Background(), c); err == nil {
		t.Error("New on a port in use succeeded")
	}
}
