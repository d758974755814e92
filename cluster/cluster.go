// Package cluster is ephpm's membership and site directory: gossip
// (hashicorp/memberlist) finds the nodes and their addresses, raft
// (hashicorp/raft) replicates the directory of sites and their primaries.
// See DESIGN.md.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephpm/ephpm/internal/task"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

const (
	// DefaultWriteTimeout bounds a write whose ctx has no earlier deadline.
	DefaultWriteTimeout = 30 * time.Second
	// raftTransportTimeout bounds one raft RPC's I/O.
	raftTransportTimeout = 10 * time.Second
	// configChangeTimeout bounds one AddVoter/RemoveServer of the reconcile.
	configChangeTimeout = 10 * time.Second
)

// Cluster is one node of the cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	cfg    Config
	timing Timing
	log    *slog.Logger

	localMu sync.RWMutex
	local   NodeInfo
	meta    []byte // local as compact JSON: the gossip meta

	membersMu sync.RWMutex
	members   map[string]*memberRec

	votersMu sync.RWMutex
	voters   []string // resolved voter gossip addresses; nil until resolved

	ml       *memberlist.Memberlist
	mux      *mux
	cmdConns cmdPool // kept-alive command connections to leaders
	store    *raftboltdb.BoltStore
	raft     *raft.Raft
	fsm      *fsm
	obs      *raft.Observer
	obsCh    chan raft.Observation
	hasState bool // raft had state at start: never bootstrap

	bootstrapped  atomic.Bool
	bootstraps    atomic.Int64 // BootstrapCluster calls that succeeded (tests)
	leaderChanges atomic.Int64
	cmdDials      atomic.Int64 // command connections dialled (tests)
	// synced: this node applied what the current leader had applied when
	// asked (OpReadIndex); reset at every leader change.
	synced atomic.Bool

	wake      chan struct{} // manager: membership changed
	changed   chan struct{} // notifier: call OnChange
	leaseKick chan struct{} // lease renewer: renew now if due or not held
	leaseNote chan struct{} // lease notifier: the lease may have changed

	leaseMu     sync.Mutex
	lease       leaseState
	renewals    atomic.Int64 // successful lease renewals
	renewErrors atomic.Int64

	cancel    context.CancelFunc
	group     *task.Group
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New starts a node: it binds the gossip and raft ports (an error if
// either cannot be bound), opens the raft store, and starts its
// goroutines; joining is retried in the background. ctx is the parent of
// the node's goroutines' context (its values are kept, its cancellation
// is not: the node lives until Close).
func New(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:       cfg,
		timing:    cfg.Timing.withDefaults(),
		log:       cfg.Logger,
		members:   map[string]*memberRec{},
		wake:      make(chan struct{}, 1),
		changed:   make(chan struct{}, 1),
		leaseKick: make(chan struct{}, 1),
		leaseNote: make(chan struct{}, 1),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "cluster", "node", cfg.Node)
	var cleanup []func()
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(cleanup) {
				f()
			}
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster data dir: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.RaftBind)
	if err != nil {
		return nil, fmt.Errorf("raft listen %s: %w", cfg.RaftBind, err)
	}
	cleanup = append(cleanup, func() { ln.Close() })
	tc, err := raftTLS(cfg.Secret)
	if err != nil {
		return nil, err
	}

	// memberlist
	c.local = NodeInfo{Name: cfg.Node, Region: cfg.Region, HTTP: cfg.HTTP, Repl: cfg.Repl, Version: cfg.Version}
	mc, err := c.memberlistConfig()
	if err != nil {
		return nil, err
	}
	// What others dial, if the addresses say it already; for a 0.0.0.0
	// bind it is known only once memberlist has chosen its address.
	bound := ln.Addr().(*net.TCPAddr).Port
	if ip := net.ParseIP(mc.AdvertiseAddr); ip != nil {
		c.local.Gossip = net.JoinHostPort(mc.AdvertiseAddr, strconv.Itoa(mc.AdvertisePort))
		c.local.Raft, _ = raftAdvertise(cfg, ip, bound)
	} else if ip := net.ParseIP(mc.BindAddr); ip != nil && !ip.IsUnspecified() && mc.BindPort != 0 {
		c.local.Gossip = net.JoinHostPort(mc.BindAddr, strconv.Itoa(mc.BindPort))
		c.local.Raft, _ = raftAdvertise(cfg, ip, bound)
	}
	if err := c.setLocal(c.local); err != nil {
		return nil, err
	}
	c.ml, err = memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", cfg.Bind, err)
	}
	cleanup = append(cleanup, func() { _ = c.ml.Shutdown() })
	self := c.ml.LocalNode()
	local := c.local
	local.Gossip = net.JoinHostPort(self.Addr.String(), strconv.Itoa(int(self.Port)))
	local.Raft, err = raftAdvertise(cfg, self.Addr, bound)
	if err != nil {
		return nil, err
	}
	if local != c.LocalNode() {
		if err := c.setLocal(local); err != nil {
			return nil, err
		}
		// A node that joined us meanwhile may miss this broadcast; the
		// periodic push-pull carries the meta too.
		if err := c.ml.UpdateNode(c.timing.ProbeTimeout); err != nil {
			c.log.Debug("gossip meta update", "err", err)
		}
	}
	radv, err := net.ResolveTCPAddr("tcp", local.Raft)
	if err != nil {
		return nil, fmt.Errorf("raft advertise %q: %w", local.Raft, err)
	}

	// raft port
	c.mux = newMux(ln, tc, radv, func(msg string, args ...any) { c.log.Debug(msg, args...) })
	c.mux.handle = c.serveCommand
	c.mux.start()
	cleanup = append(cleanup, func() { _ = c.mux.close() })

	// raft
	c.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("raft store: %w", err)
	}
	cleanup = append(cleanup, func() { _ = c.store.Close() })
	raftLog := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: slogWriter{c.log}, Level: hclog.Info, DisableTime: true})
	snaps, err := raft.NewFileSnapshotStore(cfg.DataDir, 2, slogWriter{c.log})
	if err != nil {
		return nil, fmt.Errorf("raft snapshots: %w", err)
	}
	c.hasState, err = raft.HasExistingState(c.store, c.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("raft state: %w", err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		ServerAddressProvider: addrProvider{c},
		Stream:                streamLayer{c.mux},
		MaxPool:               3,
		Timeout:               raftTransportTimeout,
		Logger:                raftLog,
	})
	// raft.Shutdown closes it once raft runs; until then it is ours.
	transOwned := true
	cleanup = append(cleanup, func() {
		if transOwned {
			_ = trans.Close()
		}
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Node)
	rc.HeartbeatTimeout = c.timing.RaftHeartbeat
	rc.ElectionTimeout = c.timing.RaftElection
	rc.LeaderLeaseTimeout = c.timing.RaftLeaderLease
	rc.CommitTimeout = c.timing.RaftCommit
	rc.Logger = raftLog
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft timing: %w", err)
	}
	c.fsm = newFSM(c.notify)
	c.fsm.onRenew = c.renewApplied
	c.raft, err = raft.NewRaft(rc, c.fsm, c.store, c.store, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	transOwned = false
	cleanup = append(cleanup, func() { _ = c.raft.Shutdown().Error() })
	c.obsCh = make(chan raft.Observation, 16)
	c.obs = raft.NewObserver(c.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	c.raft.RegisterObserver(c.obs)

	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.group = task.NewGroup(gctx)
	c.group.Go(c.manage)
	c.group.Go(c.notifier)
	c.group.Go(c.joinLoop)
	c.group.Go(c.leaseRenewer)
	c.group.Go(c.leaseNotifier)
	c.log.Info("cluster node started", "gossip", local.Gossip, "raft", local.Raft, "existing_state", c.hasState)
	return c, nil
}

func (cfg *Config) validate() error {
	if err := ValidNodeName(cfg.Node); err != nil {
		return err
	}
	if len(cfg.Secret) < MinSecret {
		return fmt.Errorf("%w: cluster secret shorter than %d characters", ErrInvalid, MinSecret)
	}
	if cfg.DataDir == "" {
		return fmt.Errorf("%w: no cluster data dir", ErrInvalid)
	}
	t := cfg.Timing.withDefaults()
	if t.LeaseTTL <= 2*leaseMargin(t.LeaseTTL) || t.LeaseRenew > t.LeaseTTL/2 {
		return fmt.Errorf("%w: lease TTL %s must exceed %s and be at least twice the renewal period %s",
			ErrInvalid, t.LeaseTTL, 2*leaseMargin(t.LeaseTTL), t.LeaseRenew)
	}
	for _, a := range []string{cfg.Bind, cfg.RaftBind} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%w: bind address %q: %v", ErrInvalid, a, err)
		}
	}
	return nil
}

func (t Timing) withDefaults() Timing {
	if t == (Timing{}) {
		return WANTiming()
	}
	w := WANTiming()
	for _, p := range []struct{ v, d *time.Duration }{
		{&t.ProbeInterval, &w.ProbeInterval}, {&t.ProbeTimeout, &w.ProbeTimeout},
		{&t.GossipInterval, &w.GossipInterval}, {&t.RaftHeartbeat, &w.RaftHeartbeat},
		{&t.RaftElection, &w.RaftElection}, {&t.RaftLeaderLease, &w.RaftLeaderLease},
		{&t.RaftCommit, &w.RaftCommit}, {&t.Reconcile, &w.Reconcile},
		{&t.LeaseTTL, &w.LeaseTTL}, {&t.LeaseRenew, &w.LeaseRenew},
	} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	if t.SuspicionMult <= 0 {
		t.SuspicionMult = w.SuspicionMult
	}
	return t
}

func (c *Cluster) memberlistConfig() (*memberlist.Config, error) {
	mc := memberlist.DefaultWANConfig()
	mc.Name = c.cfg.Node
	host, port, err := splitPort(c.cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("%w: gossip bind: %v", ErrInvalid, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	if mc.BindAddr == "" {
		mc.BindAddr = "0.0.0.0"
	}
	if c.cfg.Advertise != "" {
		host, port, err := splitPort(c.cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("%w: gossip advertise: %v", ErrInvalid, err)
		}
		if net.ParseIP(host) == nil {
			// memberlist wants an IP: resolve a name once here
			ips, err := net.LookupIP(host)
			if err != nil || len(ips) == 0 {
				return nil, fmt.Errorf("gossip advertise %q: %v", c.cfg.Advertise, err)
			}
			host = ips[0].String()
		}
		mc.AdvertiseAddr, mc.AdvertisePort = host, port
	}
	mc.SecretKey = deriveKey(c.cfg.Secret, labelGossip)
	// Every message is encrypted and verified: a node without the key
	// is neither heard nor answered.
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.Delegate = delegate{c}
	mc.Events = delegate{c}
	mc.Logger = log.New(slogWriter{c.log.With("lib", "memberlist")}, "", 0)
	t := c.timing
	mc.ProbeInterval, mc.ProbeTimeout, mc.GossipInterval = t.ProbeInterval, t.ProbeTimeout, t.GossipInterval
	mc.SuspicionMult = t.SuspicionMult
	// Lifeguard starts a suspicion at SuspicionMaxTimeoutMult times the
	// nominal timeout and shortens it as others confirm; 2 (not 6) keeps
	// the worst case near twice the nominal one in small clusters.
	mc.SuspicionMaxTimeoutMult = 2
	// Full state exchange: 30 probe intervals (WAN: 60 s, memberlist's
	// WAN default); it also repairs a missed meta update.
	mc.PushPullInterval = 30 * t.ProbeInterval
	// One join attempt or push-pull: ten probe timeouts (WAN 10 s).
	mc.TCPTimeout = 10 * t.ProbeTimeout
	return mc, nil
}

func splitPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", hostport)
	}
	return host, port, nil
}

// raftAdvertise is RaftAdvertise, else RaftBind, with an unspecified
// host replaced by the gossip address memberlist chose and port 0 by
// the port actually bound.
func raftAdvertise(cfg Config, gossipIP net.IP, boundPort int) (string, error) {
	a := cfg.RaftAdvertise
	if a == "" {
		a = cfg.RaftBind
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("%w: raft advertise %q: %v", ErrInvalid, a, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = gossipIP.String()
	}
	if port == "0" || port == "" {
		port = strconv.Itoa(boundPort)
	}
	return net.JoinHostPort(host, port), nil
}

// setLocal sets this node's info and its gossip meta.
func (c *Cluster) setLocal(n NodeInfo) error { return c.setMeta(gossipMeta{NodeInfo: n}) }

func (c *Cluster) setMeta(m gossipMeta) error {
	n := m.NodeInfo
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("%w: node info is %d bytes as gossip meta (limit %d): shorten names and URLs", ErrInvalid, len(b), memberlist.MetaMaxSize)
	}
	c.localMu.Lock()
	c.local, c.meta = n, b
	c.localMu.Unlock()
	return nil
}

// serverAddr gives raft the raft address a server gossips now, so a
// node that came back on another address is reached before the
// configuration is updated (after a cold restart of all nodes, no leader
// could update it otherwise). raft falls back to the configured address
// on error.
func (c *Cluster) serverAddr(id raft.ServerID) (raft.ServerAddress, error) {
	c.membersMu.RLock()
	defer c.membersMu.RUnlock()
	// the last address gossiped, even by a member now failed: better
	// than the configuration's, which may be older
	if m, ok := c.members[string(id)]; ok && m.info.Raft != "" {
		return raft.ServerAddress(m.info.Raft), nil
	}
	if string(id) == c.cfg.Node {
		return raft.ServerAddress(c.LocalNode().Raft), nil
	}
	return "", fmt.Errorf("%w: %q never seen in gossip", ErrUnknownNode, id)
}

// addrProvider keeps ServerAddr out of the Cluster's API.
type addrProvider struct{ c *Cluster }

func (p addrProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	return p.c.serverAddr(id)
}

var _ raft.ServerAddressProvider = addrProvider{}

// raftAddrOf is the address to dial for a raft server.
func (c *Cluster) raftAddrOf(id, fallback string) string {
	if a, err := c.serverAddr(raft.ServerID(id)); err == nil {
		return string(a)
	}
	return fallback
}

// Close leaves the gossip (bounded), shuts raft down and waits for
// every goroutine. It may be called more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.cancel()
		var errs []error
		// Announce the leave in the meta first (see gossipMeta); if the
		// update is not out in time the others see a failure instead.
		if err := c.setMeta(gossipMeta{NodeInfo: c.LocalNode(), Leaving: true}); err == nil {
			if err := c.ml.UpdateNode(2 * c.timing.ProbeInterval); err != nil {
				c.log.Debug("gossip leave announcement", "err", err)
			}
		}
		// A leave that times out is only a slower failure detection for
		// the others: logged, not returned.
		if err := c.ml.Leave(2 * c.timing.ProbeInterval); err != nil {
			c.log.Warn("gossip leave", "err", err)
		}
		c.raft.DeregisterObserver(c.obs)
		c.cmdConns.close()
		if err := c.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		if err := c.group.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := c.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
		}
		if err := c.mux.close(); err != nil {
			errs = append(errs, fmt.Errorf("raft listener: %w", err))
		}
		if err := c.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft store: %w", err))
		}
		c.closeErr = errors.Join(errs...)
		c.log.Info("cluster node closed")
	})
	return c.closeErr
}

// notify asks the notifier for an OnChange call (coalesced; never
// blocks), the lease notifier to look at the lease's Sites, and the
// renewer whether a renewal is due.
func (c *Cluster) notify() {
	signal(c.changed)
	signal(c.leaseNote)
	signal(c.leaseKick)
}

func (c *Cluster) wakeManager() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// notifier is the one goroutine that calls OnChange.
func (c *Cluster) notifier(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
		}
		if c.cfg.OnChange != nil {
			c.cfg.OnChange()
		}
	}
}

// Sites returns the directory's sites, sorted by name (local read).
func (c *Cluster) Sites() []SiteInfo { return c.fsm.sites() }

// Site returns one site of the directory (local read).
func (c *Cluster) Site(name string) (SiteInfo, bool) { return c.fsm.site(name) }

// Node returns a node of the directory's nodes table (local read).
func (c *Cluster) Node(name string) (NodeInfo, bool) { return c.fsm.node(name) }

// LocalNode returns this node's info as it gossips it.
func (c *Cluster) LocalNode() NodeInfo {
	c.localMu.RLock()
	defer c.localMu.RUnlock()
	return c.local
}

// Members returns the gossip members (including dead and left ones
// memberlist still remembers), sorted by name, with their raft role.
func (c *Cluster) Members() []Member {
	roles := map[string]string{}
	if f := c.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			roles[string(s.ID)] = roleOf(s.Suffrage)
		}
	}
	var out []Member
	for name, r := range c.memberRecs() {
		if _, known := c.fsm.node(name); r.state != MemberAlive && !known && roles[name] == "" {
			continue // removed (RemoveNode): gone for good
		}
		m := Member{NodeInfo: r.info, State: r.state, RaftRole: roles[name]}
		if m.Name == "" {
			m.Name = name
			m.Gossip = r.addr()
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func roleOf(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return RoleVoter
	case raft.Nonvoter:
		return RoleNonvoter
	}
	return ""
}

// Status returns this node's view of the cluster.
func (c *Cluster) Status() Status {
	_, id := c.raft.LeaderWithID()
	var until time.Time
	if l := c.Lease(); l.Index != 0 {
		until = l.Until.Round(0)
	}
	return Status{
		Node:         c.cfg.Node,
		Leader:       string(id),
		RaftState:    strings.ToLower(c.raft.State().String()),
		Term:         c.raft.CurrentTerm(),
		CommitIndex:  c.raft.CommitIndex(),
		AppliedIndex: c.raft.AppliedIndex(),
		Members:      c.Members(),
		Nodes:        c.fsm.nodes(),
		Sites:        c.fsm.sites(),
		Leases:       c.nodeLeases(),
		LeaseUntil:   until,
	}
}

// Ready returns nil once a leader is known, this node has heard from it
// (or is it) and has applied up to the commit index learned from it;
// otherwise the reason. raft counts an entry applied when it hands it to
// the FSM, which may trail by the entries still queued to it.
func (c *Cluster) Ready() error {
	if c.closed.Load() {
		return ErrClosed
	}
	_, id := c.raft.LeaderWithID()
	if id == "" {
		return ErrNoLeader
	}
	if c.raft.State() != raft.Leader {
		last := c.raft.LastContact()
		if last.IsZero() {
			return fmt.Errorf("cluster: no contact with leader %s yet", id)
		}
		if d := time.Since(last); d > 3*c.timing.RaftHeartbeat {
			return fmt.Errorf("cluster: no contact with leader %s for %s", id, d.Round(time.Millisecond))
		}
	}
	if !c.synced.Load() {
		// Heartbeats do not carry the commit index: a node back from a
		// restart may know the leader long before its log is caught up.
		return fmt.Errorf("cluster: catching up with leader %s", id)
	}
	if n, ok := c.fsm.node(c.cfg.Node); !ok || n != c.LocalNode() {
		// Sites cannot name this node as their primary before it is in
		// the nodes table, nor can its peers find its addresses.
		return fmt.Errorf("cluster: this node is not registered in the directory yet")
	}
	if commit, applied := c.raft.CommitIndex(), c.raft.AppliedIndex(); applied < commit {
		return fmt.Errorf("cluster: applied index %d behind commit index %d", applied, commit)
	}
	return nil
}

// CreateSite adds a site whose primary is a node of the nodes table. If
// the site exists it returns the existing one and ErrSiteExists.
func (c *Cluster) CreateSite(ctx context.Context, name, primary string, conf []byte) (SiteInfo, error) {
	res, err := c.write(ctx, command{Op: OpCreateSite, Site: name, Primary: primary, Config: conf, Time: time.Now().Round(0).UTC()})
	return res.Site, err
}

// RemoveSite removes a site (ErrNoSite if there is none).
func (c *Cluster) RemoveSite(ctx context.Context, name string) error {
	_, err := c.write(ctx, command{Op: OpRemoveSite, Site: name})
	return err
}

// RemoveNode takes a node that is gone for good out of the directory:
// out of raft's configuration (a voter no longer counts toward the
// quorum) and out of the nodes table. It refuses (ErrNodeInUse) a node
// gossip shows alive, the leader itself, or a node that is still some
// site's primary.
func (c *Cluster) RemoveNode(ctx context.Context, name string) error {
	_, err := c.write(ctx, command{Op: OpRemoveNode, Node: &NodeInfo{Name: name}})
	if err == nil {
		c.membersMu.Lock()
		delete(c.members, name)
		c.membersMu.Unlock()
		c.notify()
	}
	return err
}

// SetPrimary makes to the site's primary if its epoch is still epoch
// (compare-and-set), and increments the epoch. to may be the current
// primary (re-confirmation: only the epoch moves). On ErrEpochChanged or
// ErrUnknownNode it also returns the site as it is.
func (c *Cluster) SetPrimary(ctx context.Context, name, to string, epoch uint64) (SiteInfo, error) {
	res, err := c.write(ctx, command{Op: OpSetPrimary, Site: name, Primary: to, Epoch: epoch})
	return res.Site, err
}

// write applies cmd through the leader and returns once this node's FSM
// has applied it.
func (c *Cluster) write(ctx context.Context, cmd command) (applyResult, error) {
	res, _, err := c.writeIndex(ctx, cmd)
	return res, err
}

// writeIndex is write, with the raft index of the entry.
func (c *Cluster) writeIndex(ctx context.Context, cmd command) (applyResult, uint64, error) {
	if c.closed.Load() {
		return applyResult{}, 0, ErrClosed
	}
	if err := cmd.validate(); err != nil {
		return applyResult{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultWriteTimeout)
	defer cancel()
	res, idx, err := c.applyLocal(ctx, cmd)
	if errors.Is(err, errNotLeader) {
		res, idx, err = c.forward(ctx, cmd)
	}
	if err != nil {
		return applyResult{}, 0, err
	}
	if err := c.waitApplied(ctx, idx); err != nil {
		return applyResult{}, 0, err
	}
	return res, idx, res.Err
}

// applyLocal applies cmd on this node if it leads (errNotLeader if not).
func (c *Cluster) applyLocal(ctx context.Context, cmd command) (applyResult, uint64, error) {
	if c.raft.State() != raft.Leader {
		return applyResult{}, 0, errNotLeader
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return applyResult{}, 0, err
	}
	timeout := DefaultWriteTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return applyResult{}, 0, fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
	}
	if cmd.Op == OpRemoveNode {
		// The leader checks what only it can (gossip says the node is
		// gone), takes it out of raft's configuration, then out of the
		// nodes table.
		name := cmd.Node.Name
		if name == c.cfg.Node {
			return applyResult{}, 0, fmt.Errorf("%w: %s leads the directory; remove it from another node once it is gone", ErrNodeInUse, name)
		}
		if r, ok := c.memberRecs()[name]; ok && r.state == MemberAlive {
			return applyResult{}, 0, fmt.Errorf("%w: %s is alive (stop it first)", ErrNodeInUse, name)
		}
		if sites := c.fsm.primaryOf(name); len(sites) > 0 {
			return applyResult{}, 0, fmt.Errorf("%w: %s is the primary of %s (move them first)", ErrNodeInUse, name, strings.Join(sites, ", "))
		}
		if err := c.raft.RemoveServer(raft.ServerID(name), 0, timeout).Error(); err != nil {
			return applyResult{}, 0, fmt.Errorf("%w: remove %s from raft: %v", errNotLeader, name, err)
		}
		c.membersMu.Lock()
		delete(c.members, name)
		c.membersMu.Unlock()
	}
	if cmd.Op == OpFailover {
		// Only a lease this leader itself judges lapsed is failed over.
		if err := c.checkLapsed(cmd.From, cmd.LeaseIndex); err != nil {
			return applyResult{}, 0, err
		}
	}
	if cmd.Op == OpReadIndex {
		// Everything committed before the call has reached the FSM after
		// the barrier: the FSM's index (entries the FSM saw, not raft's
		// own barrier and configuration entries) is how far it is.
		if err := c.raft.Barrier(timeout).Error(); err != nil {
			return applyResult{}, 0, fmt.Errorf("%w: barrier: %v", errNotLeader, err)
		}
		idx, _ := c.fsm.index()
		return applyResult{}, idx, nil
	}
	// The future always resolves: at commit, at a loss of leadership
	// (after the leader lease) or at shutdown.
	f := c.raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return applyResult{}, 0, fmt.Errorf("%w: %v", errNotLeader, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return applyResult{}, 0, ErrClosed
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return applyResult{}, 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
		return applyResult{}, 0, fmt.Errorf("raft apply: %w", err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return applyResult{}, 0, fmt.Errorf("raft apply: unexpected response %T", f.Response())
	}
	return res, f.Index(), nil
}

// syncIndex asks the leader how far the directory is and waits until
// this node has applied that far: the node's directory is then as
// fresh as the leader's was at the call.
func (c *Cluster) syncIndex(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultRPCTimeout)
	defer cancel()
	cmd := command{Op: OpReadIndex}
	_, idx, err := c.applyLocal(ctx, cmd)
	if errors.Is(err, errNotLeader) {
		_, idx, err = c.forward(ctx, cmd)
	}
	if err != nil {
		return err
	}
	return c.waitApplied(ctx, idx)
}

// waitApplied waits until this node's FSM has applied index.
func (c *Cluster) waitApplied(ctx context.Context, index uint64) error {
	for {
		cur, ch := c.fsm.index()
		if cur >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft index %d here (applied %d): %w", index, cur, ctx.Err())
		case <-c.group.Context().Done():
			return ErrClosed
		case <-ch:
		}
	}
}
