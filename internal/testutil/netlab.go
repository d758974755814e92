package testutil

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// NetLab gives each node of a multi-process test a network namespace of
// its own, joined to this (the test's) namespace by a veth pair:
// node i is Node(i).IP inside, and reaches this namespace at
// Node(i).Gateway. The test's proxies listen in this namespace, so every
// connection and datagram they take comes from the IP of the node that
// sent it, and a proxy can hold one node's link without touching the
// others' (DelayProxy.Hold). Nothing leaves the machine: the namespaces
// reach only this one. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and
// iproute2.
type NetLab struct {
	tb    testing.TB
	net   int // the second octet of 10.N.i.0/24
	nodes []LabNode
}

// LabNode is one namespace.
type LabNode struct {
	NS      string // its name (ip netns)
	IP      string // the node's address, inside the namespace
	Gateway string // this namespace's end of the veth pair
}

// NetLabUsable reports why NewNetLab cannot work here ("" when it can).
func NetLabUsable() string {
	if os.Geteuid() != 0 {
		return "network namespaces need root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "iproute2 (ip) is not installed"
	}
	return ""
}

// NewNetLab creates n namespaces; Cleanup deletes them.
func NewNetLab(tb testing.TB, n int) *NetLab {
	tb.Helper()
	if why := NetLabUsable(); why != "" {
		tb.Fatalf("NetLab: %s", why)
	}
	l := &NetLab{tb: tb, net: 100 + rand.IntN(100)}
	tag := fmt.Sprintf("%d%02d", os.Getpid()%10000, rand.IntN(100))
	tb.Cleanup(l.close)
	for i := range n {
		ns := fmt.Sprintf("ephpm%s-%d", tag, i)
		host, peer := fmt.Sprintf("eh%s%d", tag, i), fmt.Sprintf("ep%s%d", tag, i)
		node := LabNode{NS: ns, IP: fmt.Sprintf("10.%d.%d.2", l.net, i), Gateway: fmt.Sprintf("10.%d.%d.1", l.net, i)}
		l.nodes = append(l.nodes, node)
		steps := [][]string{
			{"netns", "add", ns},
			{"link", "add", host, "type", "veth", "peer", "name", peer},
			{"link", "set", peer, "netns", ns},
			{"addr", "add", node.Gateway + "/24", "dev", host},
			{"link", "set", host, "up"},
			{"-n", ns, "addr", "add", node.IP + "/24", "dev", peer},
			{"-n", ns, "link", "set", peer, "up"},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", ns, "route", "add", "default", "via", node.Gateway},
		}
		for _, s := range steps {
			if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
				tb.Fatalf("NetLab: ip %s: %v\n%s", strings.Join(s, " "), err, out)
			}
		}
	}
	return l
}

// Node is namespace i.
func (l *NetLab) Node(i int) LabNode { return l.nodes[i] }

// Command runs name with args inside namespace i (ip netns exec execs
// it: the process's PID is the command's own, for signals).
func (l *NetLab) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.nodes[i].NS, name}, args...)...)
}

func (l *NetLab) close() {
	for _, n := range l.nodes {
		// Deleting the namespace deletes its end of the veth pair, and
		// with it the pair.
		if out, err := exec.Command("ip", "netns", "del", n.NS).CombinedOutput(); err != nil {
			l.tb.Logf("NetLab: ip netns del %s: %v\n%s", n.NS, err, out)
		}
	}
}
