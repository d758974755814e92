package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberRec is what this node knows of a gossip member, from the events.
type memberRec struct {
	node    *memberlist.Node // as last notified (Addr, Port, Meta)
	info    NodeInfo         // parsed meta; Name "" if it did not parse
	leaving bool             // its last meta announced a graceful leave
	state   MemberState
	since   time.Time // when this record was made
}

// gossipMeta is the gossiped meta: the node's info and, set by Close
// just before memberlist's Leave, Leaving. memberlist's NotifyLeave does
// not say whether a node left or failed (the Node it passes keeps its
// old State), so a node announces its leave in its meta first.
type gossipMeta struct {
	NodeInfo
	Leaving bool `json:"leaving,omitempty"`
}

func (r *memberRec) addr() string {
	return net.JoinHostPort(r.node.Addr.String(), strconv.Itoa(int(r.node.Port)))
}

// delegate is memberlist's Delegate and EventDelegate. memberlist calls
// them from its own goroutines, possibly concurrently; none blocks:
// events update the member map under its lock and wake the manager and
// the notifier with non-blocking sends.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
)

func (d delegate) NodeMeta(limit int) []byte {
	d.c.localMu.RLock()
	defer d.c.localMu.RUnlock()
	if len(d.c.meta) > limit {
		return nil // checked in New; cannot happen
	}
	return d.c.meta
}

func (delegate) NotifyMsg([]byte)                           {}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d delegate) NotifyJoin(n *memberlist.Node)   { d.c.memberEvent(n, false) }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.c.memberEvent(n, false) }
func (d delegate) NotifyLeave(n *memberlist.Node)  { d.c.memberEvent(n, true) }

func (c *Cluster) memberEvent(n *memberlist.Node, gone bool) {
	cp := *n // memberlist reuses its Node: keep a copy
	rec := &memberRec{node: &cp, state: MemberAlive, since: time.Now()}
	var meta gossipMeta
	if err := json.Unmarshal(n.Meta, &meta); err == nil && meta.Name == n.Name {
		rec.info, rec.leaving = meta.NodeInfo, meta.Leaving
	}
	if gone {
		rec.state = MemberDead
		if rec.leaving {
			rec.state = MemberLeft
		}
	}
	c.log.Debug("member event", "member", n.Name, "state", rec.state, "addr", rec.addr())
	c.membersMu.Lock()
	c.members[n.Name] = rec
	c.membersMu.Unlock()
	c.wakeManager()
	c.notify()
}

// memberRecs copies the member map.
func (c *Cluster) memberRecs() map[string]memberRec {
	c.membersMu.RLock()
	defer c.membersMu.RUnlock()
	out := make(map[string]memberRec, len(c.members))
	for k, v := range c.members {
		out[k] = *v
	}
	return out
}

// othersAlive counts the alive members other than this node.
func (c *Cluster) othersAlive() int {
	n := 0
	for _, m := range c.ml.Members() {
		if m.Name != c.cfg.Node && m.State == memberlist.StateAlive {
			n++
		}
	}
	return n
}

// resolve turns join entries into distinct ip:port addresses, in order.
// complete is false when a name did not resolve.
func resolve(ctx context.Context, entries []string) (addrs []string, complete bool) {
	complete = true
	for _, e := range entries {
		host, port, err := net.SplitHostPort(e)
		if err != nil {
			complete = false
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil {
			rctx, cancel := context.WithTimeout(ctx, DefaultResolveTimeout)
			ips, err := net.DefaultResolver.LookupIPAddr(rctx, host)
			cancel()
			if err != nil || len(ips) == 0 {
				complete = false
				continue
			}
			ip = ips[0].IP
			for _, a := range ips { // prefer IPv4, as memberlist does
				if a.IP.To4() != nil {
					ip = a.IP
					break
				}
			}
		}
		a := net.JoinHostPort(ip.String(), port)
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs, complete
}

// DefaultResolveTimeout bounds the lookup of one join name.
const DefaultResolveTimeout = 5 * time.Second

// maxJoinBackoff caps the wait between join attempts.
const maxJoinBackoff = 30 * time.Second

// joinLoop joins the seeds until another node answers, and again
// whenever the member list drops to this node alone. While others are
// alive it reconnects to failed members now and then, as Serf does:
// memberlist alone never heals a partition whose sides each still have
// a live member (it stops gossiping to the dead after
// GossipToTheDeadTime). One attempt is bounded by memberlist's TCP
// timeout per address.
func (c *Cluster) joinLoop(ctx context.Context) error {
	base := c.timing.ProbeInterval
	wait := time.Duration(0)
	lastReconnect := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if c.othersAlive() > 0 {
			wait = 5 * base // check now and then that we are not alone
			if time.Since(lastReconnect) >= reconnectEvery*base {
				lastReconnect = time.Now()
				c.reconnectFailed()
			}
			continue
		}
		addrs, _ := resolve(ctx, c.cfg.Join)
		addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == c.LocalNode().Gossip })
		if len(addrs) == 0 {
			wait = 5 * base
			continue
		}
		n, err := c.ml.Join(addrs)
		if n > 0 {
			c.log.Info("joined the cluster", "contacted", n)
			wait = 5 * base
			continue
		}
		c.log.Debug("join failed; retrying", "seeds", strings.Join(addrs, ","), "err", err)
		wait = min(max(2*wait, base), maxJoinBackoff)
	}
}

// reconnectEvery is the period, in probe intervals, of the attempts to
// reach failed members (20 s with the WAN timing).
const reconnectEvery = 10

// reconnectFor is how long a failed member is tried again (Serf's
// reconnect_timeout default); one gone for good is removed with
// RemoveNode long before.
const reconnectFor = 24 * time.Hour

// reconnectFailed tries to join the members that failed (not those that
// left): a node on the other side of a healed partition answers and the
// push/pull that follows merges both sides' views.
func (c *Cluster) reconnectFailed() {
	var addrs []string
	for _, m := range c.memberRecs() {
		if m.state == MemberDead && m.info.Name != c.cfg.Node && time.Since(m.since) < reconnectFor {
			addrs = append(addrs, m.addr())
		}
	}
	if len(addrs) == 0 {
		return
	}
	n, err := c.ml.Join(addrs)
	c.log.Debug("reconnect to failed members", "tried", len(addrs), "contacted", n, "err", err)
}

// slogWriter feeds the lines of a library's logger (memberlist's
// *log.Logger, raft's hclog) into slog: their errors and warnings (a node
// with another secret, a peer that stopped answering) as warnings, the
// rest at debug level.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(bytes.TrimRight(p, "\n"), []byte("\n")) {
		level := slog.LevelDebug
		if bytes.Contains(line, []byte("[ERR")) || bytes.Contains(line, []byte("[WARN")) {
			level = slog.LevelWarn
		}
		w.log.Log(context.Background(), level, string(line))
	}
	return len(p), nil
}
