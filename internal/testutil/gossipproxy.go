package testutil

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GossipProxy delays a gossip address (memberlist): TCP and UDP on one
// port, as memberlist advertises one port for both.
type GossipProxy struct {
	Addr string
	TCP  *DelayProxy
	UDP  *DelayUDPProxy
}

// NewDelayGossipProxy forwards TCP and UDP on one new loopback port to
// the same target address, each delayed oneWay.
func NewDelayGossipProxy(tb testing.TB, target string, oneWay time.Duration) *GossipProxy {
	tb.Helper()
	return NewDelayGossipProxyOn(tb, "127.0.0.1", target, oneWay)
}

// NewDelayGossipProxyOn is NewDelayGossipProxy listening on host (a
// NetLab gateway, say).
func NewDelayGossipProxyOn(tb testing.TB, host, target string, oneWay time.Duration) *GossipProxy {
	tb.Helper()
	for try := 0; try < 100; try++ {
		t, err := ListenDelayProxy(tb, net.JoinHostPort(host, "0"), target, oneWay)
		if err != nil {
			tb.Fatal(err)
		}
		u, err := ListenDelayUDPProxy(tb, t.Addr, target, oneWay)
		if err != nil {
			t.Close() // the UDP port is taken: another pair
			continue
		}
		return &GossipProxy{Addr: t.Addr, TCP: t, UDP: u}
	}
	tb.Fatal("no port free for both TCP and UDP in 100 tries")
	return nil
}

// Pause holds TCP bytes and drops datagrams until Resume.
func (g *GossipProxy) Pause() { g.TCP.Pause(); g.UDP.Pause() }

// Hold holds (TCP) and drops (UDP) what passes between the source srcIP
// and the node in the directions dir, or (on false) stops doing so.
func (g *GossipProxy) Hold(srcIP string, dir Direction, on bool) {
	g.TCP.Hold(srcIP, dir, on)
	g.UDP.Hold(srcIP, dir, on)
}

// Resume forwards both again.
func (g *GossipProxy) Resume() { g.TCP.Resume(); g.UDP.Resume() }

// Cut closes the TCP connections and the UDP upstream sockets.
func (g *GossipProxy) Cut() { g.TCP.Cut(); g.UDP.Cut() }

// Close stops both.
func (g *GossipProxy) Close() { g.TCP.Close(); g.UDP.Close() }

// FreeTCPUDPPort is a loopback address whose port is free for both TCP
// and UDP (for a gossip bind), when this returns.
func FreeTCPUDPPort(tb testing.TB) string {
	tb.Helper()
	for try := 0; try < 100; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	tb.Fatal("no port free for both TCP and UDP in 100 tries")
	return ""
}

// PortOf is addr's port number.
func PortOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

var (
	lowMu   sync.Mutex
	lowUsed = map[int]bool{}
)

// FreeLowPort is a loopback address free for TCP (and UDP too if udp)
// when this returns, below the ephemeral port range: a port a process
// binds later (a node's listeners, across its restarts) that the source
// port of an outgoing connection cannot take meanwhile. A port is not
// handed out twice by one test binary.
func FreeLowPort(tb testing.TB, udp bool) string {
	tb.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	lowMu.Lock()
	defer lowMu.Unlock()
	for range 500 {
		port := 10000 + rand.IntN(low-10000)
		if lowUsed[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ok := true
		if udp {
			pc, err := net.ListenPacket("udp", addr)
			if err == nil {
				pc.Close()
			} else {
				ok = false
			}
		}
		ln.Close()
		if ok {
			lowUsed[port] = true
			return addr
		}
	}
	tb.Fatal("no free port below the ephemeral range in 500 tries")
	return ""
}
