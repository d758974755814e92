package cluster

import (
	"log/slog"
	"time"
)

// MaxVoters is the number of raft voters: the first MaxVoters distinct
// join addresses.
const MaxVoters = 5

// Config configures a Cluster node.
type Config struct {
	Node, Region string
	// Bind and RaftBind are the gossip (UDP+TCP) and raft (TCP) listen
	// addresses, host:port.
	Bind, RaftBind string
	// Advertise and RaftAdvertise are what other nodes dial. "" means
	// the bind address; for a 0.0.0.0 (or ::) bind, the address
	// memberlist picks (its first private IP) with the bind's port.
	Advertise, RaftAdvertise string
	// Join lists seed gossip addresses host:port. Names are resolved at
	// each attempt; joining is retried in the background until one
	// answers; the list may include this node. The first MaxVoters
	// distinct ones (after resolution) are the raft voters. Empty: this
	// node alone is the one voter (a single-node cluster).
	Join []string
	// Secret (at least MinSecret characters) keys the gossip encryption
	// and the raft port's TLS; every node of a cluster has the same.
	Secret string
	// DataDir holds raft.db and snapshots/ (created 0700).
	DataDir string
	HTTP    string // this node's public HTTP address (informational)
	Repl    string // this node's replication URL, e.g. http://10.0.0.1:5001
	Version string
	Timing  Timing // zero value: WANTiming()
	Logger  *slog.Logger
	// OnChange is called after the directory (FSM), the membership or
	// the raft leader changed. It is called from one goroutine owned by
	// the Cluster, never concurrently with itself, and coalesced (many
	// changes, one call). It may block (later calls wait, nothing else
	// does) and may call the Cluster's read methods and writes, but not
	// Close (which waits for it).
	OnChange func()
	// OnLease, if set, is called with this node's LeaseState after each
	// successful renewal, after each local directory change that changes
	// its Sites while the lease is held, and once with the zero
	// LeaseState when the lease ends here (not renewed in time, or the
	// Cluster's view fell behind; not at Close, after which Lease is
	// zero). It is called from one goroutine owned
	// by the Cluster, never concurrently with itself, and coalesced (the
	// latest state, not every one). It must not block: a late call
	// delays the next one, and a lapse then reaches the caller late. The
	// caller must still compare Until with time.Now() before each write.
	OnLease func(LeaseState)
}

// Timing holds the failure-detection and election timings.
type Timing struct {
	ProbeInterval, ProbeTimeout, GossipInterval              time.Duration
	SuspicionMult                                            int
	RaftHeartbeat, RaftElection, RaftLeaderLease, RaftCommit time.Duration
	// Reconcile is the period of the leader's reconcile and of the
	// bootstrap and self-registration checks (0: 2 s). Member and leader
	// events run them at once as well.
	Reconcile time.Duration
	// LeaseTTL is how long a renewal of a node's lease counts (the
	// holder stops writing leaseMargin(LeaseTTL) sooner; the leader
	// judges it lapsed LeaseTTL after it applied it). LeaseRenew is the
	// period of the renewals; at most LeaseTTL/2.
	LeaseTTL, LeaseRenew time.Duration
}

// leaseMargin is how much sooner than LeaseTTL the holder stops: it
// covers clock-rate drift between the holder and the leader (2×10⁻⁴
// of 5 s is 1 ms; the margin is 500 ms) and a write that checked the
// lease just before its deadline and lands a little after it.
func leaseMargin(ttl time.Duration) time.Duration {
	return max(ttl/10, 200*time.Millisecond)
}

// WANTiming returns the defaults, chosen for 50–250 ms round trips
// between regions (DESIGN.md works out the detection times).
func WANTiming() Timing {
	return Timing{
		ProbeInterval:   2 * time.Second,
		ProbeTimeout:    1 * time.Second, // 4 round trips at 250 ms
		GossipInterval:  300 * time.Millisecond,
		SuspicionMult:   4,
		RaftHeartbeat:   2 * time.Second,
		RaftElection:    2 * time.Second,
		RaftLeaderLease: 1 * time.Second,
		RaftCommit:      50 * time.Millisecond,
		Reconcile:       2 * time.Second,
		LeaseTTL:        5 * time.Second, // a failed primary's sites: ~6.5 s without writes (DESIGN.md)
		LeaseRenew:      1 * time.Second,
	}
}

// LANTiming returns fast values for tests on loopback (still loose
// enough for -race on two cores).
func LANTiming() Timing {
	return Timing{
		ProbeInterval:   200 * time.Millisecond,
		ProbeTimeout:    100 * time.Millisecond,
		GossipInterval:  50 * time.Millisecond,
		SuspicionMult:   3,
		RaftHeartbeat:   300 * time.Millisecond,
		RaftElection:    300 * time.Millisecond,
		RaftLeaderLease: 150 * time.Millisecond,
		RaftCommit:      10 * time.Millisecond,
		Reconcile:       200 * time.Millisecond,
		LeaseTTL:        2 * time.Second, // loose: -race on two cores delays renewals
		LeaseRenew:      200 * time.Millisecond,
	}
}

// NodeInfo describes a node: gossiped as its memberlist meta (compact
// JSON, at most 512 bytes) and kept in the directory's nodes table.
type NodeInfo struct {
	Name    string `json:"name"`
	Region  string `json:"region,omitempty"`
	Gossip  string `json:"gossip,omitempty"`
	Raft    string `json:"raft,omitempty"`
	HTTP    string `json:"http,omitempty"`
	Repl    string `json:"repl,omitempty"`
	Version string `json:"version,omitempty"`
}

// SiteState is the state of a site in the directory.
type SiteState string

const (
	// SiteActive: the site is served, its primary takes writes.
	SiteActive SiteState = "active"
	// SiteRemoved: a tombstone. Every node takes the site off; it is
	// kept so that a node still holding the site's directory does not
	// register it again. Creating the site anew revives the entry.
	SiteRemoved SiteState = "removed"
)

// SiteInfo is one site of the directory.
type SiteInfo struct {
	Name    string    `json:"name"`
	Primary string    `json:"primary"` // node name
	Epoch   uint64    `json:"epoch"`   // 1 at creation; +1 at every SetPrimary
	State   SiteState `json:"state"`
	Config  []byte    `json:"config,omitempty"` // the site.toml text it was created with
	Created time.Time `json:"created"`
	// Failovers counts the Failover entries applied to the site (kept
	// when a removed site is created again); LastFailover is the latest.
	Failovers    uint64       `json:"failovers,omitempty"`
	LastFailover FailoverInfo `json:"last_failover,omitzero"`
}

// FailoverInfo records a Failover of a site's primary.
type FailoverInfo struct {
	From       string    `json:"from"`
	To         string    `json:"to"`
	Epoch      uint64    `json:"epoch"`       // the new epoch
	LeaseIndex uint64    `json:"lease_index"` // From's lease that had lapsed
	Time       time.Time `json:"time"`        // the leader's clock, informational
}

// LeaseState is this node's lease as its holder knows it.
type LeaseState struct {
	Index uint64            // raft index of the renewal that granted it (0: none yet)
	Until time.Time         // on this node's monotonic clock; writes must stop before it
	Sites map[string]uint64 // sites whose primary this node is → their epoch
}

// Held reports whether the lease allows writes at now (time.Now(): the
// monotonic reading matters).
func (l LeaseState) Held(now time.Time) bool {
	return l.Index != 0 && now.Before(l.Until)
}

// Lapse is a node whose lease the leader judged lapsed.
type Lapse struct {
	Node       string
	LeaseIndex uint64        // the renewal that lapsed (0: none since the node registered); Failover's premise
	For        time.Duration // how long ago it lapsed, on the leader's clock
}

// NodeLease is a node's lease as the directory records it.
type NodeLease struct {
	Node    string    `json:"node"`
	Index   uint64    `json:"index"`            // raft index of its last renewal (0: none)
	Renewed time.Time `json:"renewed,omitzero"` // the holder's clock when it sent it, informational
	// Lapsed is the leader's judgement; nil on other nodes.
	Lapsed *bool `json:"lapsed,omitempty"`
}

// MemberState is a gossip member's state. memberlist v0.5.4 keeps its
// suspicion to itself (the Node it hands out never carries its State),
// so a member is alive until memberlist declares it dead, after the
// suspicion timeout (DESIGN.md, Timings).
type MemberState string

const (
	MemberAlive MemberState = "alive"
	MemberDead  MemberState = "dead"
	MemberLeft  MemberState = "left"
)

// RaftRole values of Member.RaftRole ("" = not in the raft configuration).
const (
	RoleVoter    = "voter"
	RoleNonvoter = "nonvoter"
)

// Member is a gossip member with its place in raft.
type Member struct {
	NodeInfo
	State    MemberState `json:"state"`
	RaftRole string      `json:"raft_role,omitempty"`
}

// Status is a snapshot of the node's view of the cluster.
type Status struct {
	Node         string     `json:"node"`
	Leader       string     `json:"leader"`
	RaftState    string     `json:"raft_state"`
	Term         uint64     `json:"term"`
	CommitIndex  uint64     `json:"commit_index"`
	AppliedIndex uint64     `json:"applied_index"`
	Members      []Member   `json:"members"` // sorted by name
	Nodes        []NodeInfo `json:"nodes"`   // sorted by name
	Sites        []SiteInfo `json:"sites"`   // sorted by name
	// Leases are the registered nodes' leases, sorted by node.
	Leases []NodeLease `json:"leases,omitempty"`
	// LeaseUntil is when this node's own lease ends (wall clock; zero:
	// not held).
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}
