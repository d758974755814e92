package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// manage is the one goroutine that bootstraps raft, reconciles raft's
// configuration and the nodes table with gossip (on the leader), and
// registers this node. It runs on member events, leader changes and
// every Timing.Reconcile.
func (c *Cluster) manage(ctx context.Context) error {
	t := time.NewTicker(c.timing.Reconcile)
	defer t.Stop()
	var leader raft.ServerID
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		case o := <-c.obsCh:
			if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != leader {
				leader = lo.LeaderID
				c.leaderChanges.Add(1)
				c.synced.Store(false)
				c.notify()
			}
		case <-t.C:
		}
		c.leadership() // notes when this node started leading, as early as it can
		c.refreshVoters(ctx)
		c.maybeBootstrap()
		if !c.synced.Load() {
			if _, id := c.raft.LeaderWithID(); id != "" {
				if err := c.syncIndex(ctx); err != nil {
					c.log.Debug("catching up with the leader", "err", err)
				} else {
					c.synced.Store(true)
					c.notify() // Ready changed: placement acts on the directory now
				}
			}
		}
		if c.raft.State() == raft.Leader {
			c.reconcile(ctx)
		}
		c.registerSelf(ctx)
	}
}

// refreshVoters resolves the join list; the voters are its first
// MaxVoters distinct addresses. The set changes only on a complete
// resolution (a name that does not resolve must not shift the others).
func (c *Cluster) refreshVoters(ctx context.Context) {
	var voters []string
	if len(c.cfg.Join) == 0 {
		voters = []string{c.LocalNode().Gossip} // alone: a single-node cluster
	} else {
		addrs, complete := resolve(ctx, c.cfg.Join)
		if !complete {
			return
		}
		voters = addrs[:min(len(addrs), MaxVoters)]
	}
	c.votersMu.Lock()
	c.voters = voters
	c.votersMu.Unlock()
}

func (c *Cluster) voterAddrs() []string {
	c.votersMu.RLock()
	defer c.votersMu.RUnlock()
	return c.voters
}

func (c *Cluster) isVoterAddr(gossip string) bool {
	return slices.Contains(c.voterAddrs(), gossip)
}

// maybeBootstrap bootstraps raft on a voter without raft state once
// every voter address is an alive member with its meta. Every voter
// computes the same configuration from the same join list and gossip,
// so concurrent bootstraps agree (Consul's bootstrap_expect).
func (c *Cluster) maybeBootstrap() {
	if c.hasState || c.bootstrapped.Load() {
		return
	}
	voters := c.voterAddrs()
	if voters == nil || !slices.Contains(voters, c.LocalNode().Gossip) {
		return
	}
	recs := c.memberRecs()
	var servers []raft.Server
	for _, a := range voters {
		found := false
		for _, r := range recs {
			if r.state == MemberAlive && r.info.Name != "" && r.info.Raft != "" && r.addr() == a {
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(r.info.Name), Address: raft.ServerAddress(r.info.Raft)})
				found = true
				break
			}
		}
		if !found {
			return
		}
	}
	slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	err := c.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	switch {
	case err == nil:
		c.bootstraps.Add(1)
		c.bootstrapped.Store(true)
		c.log.Info("raft bootstrapped", "voters", len(servers))
	case errors.Is(err, raft.ErrCantBootstrap):
		c.bootstrapped.Store(true) // state appeared meanwhile: never again
	default:
		c.log.Warn("raft bootstrap", "err", err)
	}
}

// reconcile (leader only) brings raft's configuration in line with
// gossip: alive members not in it are added (voters if their gossip
// address is a voter address), a changed raft address is updated,
// members that left gracefully are removed. Dead members stay: they
// come back when restarted. It also registers alive members in the
// nodes table.
func (c *Cluster) reconcile(ctx context.Context) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		c.log.Warn("raft configuration", "err", err)
		return
	}
	servers := map[raft.ServerID]raft.Server{}
	for _, s := range f.Configuration().Servers {
		servers[s.ID] = s
	}
	for name, r := range c.memberRecs() {
		if ctx.Err() != nil || c.raft.State() != raft.Leader {
			return
		}
		id := raft.ServerID(name)
		srv, in := servers[id]
		switch r.state {
		case MemberLeft:
			// A voter that shut down cleanly is coming back (a restart,
			// an upgrade): removing it would shrink the quorum at each
			// rolling restart. Only a non-voter leaves the configuration.
			if in && name != c.cfg.Node && srv.Suffrage != raft.Voter {
				c.configChange("remove", name, c.raft.RemoveServer(id, 0, configChangeTimeout))
			}
			continue
		case MemberDead:
			continue
		}
		if r.info.Name == "" || r.info.Raft == "" {
			continue // no meta yet
		}
		addr := raft.ServerAddress(r.info.Raft)
		voter := c.isVoterAddr(r.addr())
		// A member whose address changed is not re-added: the transport
		// dials the address it last gossiped (ServerAddr), and changing a
		// peer's address in the configuration races inside raft v1.7.2
		// (hashicorp/raft#471, #681).
		switch {
		case !in && voter, in && voter && srv.Suffrage != raft.Voter:
			c.configChange("add voter", name, c.raft.AddVoter(id, addr, 0, configChangeTimeout))
		case !in:
			c.configChange("add nonvoter", name, c.raft.AddNonvoter(id, addr, 0, configChangeTimeout))
		}
		if n, ok := c.fsm.node(name); !ok || n != r.info {
			info := r.info
			c.registerNode(ctx, &info)
		}
	}
}

func (c *Cluster) configChange(what, name string, f raft.IndexFuture) {
	if err := f.Error(); err != nil {
		c.log.Warn("raft configuration change", "change", what, "member", name, "err", err)
		return
	}
	c.log.Info("raft configuration change", "change", what, "member", name)
}

// registerSelf writes this node's info into the nodes table once a
// leader is known and whenever the table differs.
func (c *Cluster) registerSelf(ctx context.Context) {
	if _, id := c.raft.LeaderWithID(); id == "" {
		return
	}
	local := c.LocalNode()
	if n, ok := c.fsm.node(local.Name); ok && n == local {
		return
	}
	c.registerNode(ctx, &local)
}

func (c *Cluster) registerNode(ctx context.Context, n *NodeInfo) {
	ctx, cancel := context.WithTimeout(ctx, DefaultRPCTimeout)
	defer cancel()
	if _, err := c.write(ctx, command{Op: OpRegisterNode, Node: n}); err != nil && !errors.Is(err, ErrClosed) {
		c.log.Debug("register node", "member", n.Name, "err", err)
	}
}
