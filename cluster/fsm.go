package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Op names a directory command. The ".v1" suffix versions the command's
// JSON: a later change of meaning gets a new name, so an old entry in a
// log is never read with new rules.
type Op string

const (
	OpRegisterNode Op = "register_node.v1"
	OpCreateSite   Op = "create_site.v1"
	OpRemoveSite   Op = "remove_site.v1"
	OpSetPrimary   Op = "set_primary.v1"
	OpRemoveNode   Op = "remove_node.v1"
	// OpRenewLease renews the proposing node's lease (DESIGN.md, Leases).
	OpRenewLease Op = "renew_lease.v1"
	// OpFailover moves a site's primary away from a node whose lease
	// lapsed: a compare-and-set on the primary, the epoch and the lease.
	OpFailover Op = "failover.v1"
	// OpReadIndex is not a log entry: a follower asks the leader how far
	// the directory is (a barrier, then the leader's applied index) and
	// is caught up once it has applied that far.
	OpReadIndex Op = "read_index.v1"
)

// Limits on names (checked by the proposer and again by Apply).
const (
	MaxSiteName   = 253
	MaxNodeName   = 64
	MaxSiteConfig = 256 << 10 // site.toml text kept in the directory
)

// command is one raft log entry of the directory (JSON).
type command struct {
	Op      Op        `json:"op"`
	Node    *NodeInfo `json:"node,omitempty"`
	Site    string    `json:"site,omitempty"`
	Primary string    `json:"primary,omitempty"`
	Epoch   uint64    `json:"epoch,omitempty"`
	Config  []byte    `json:"config,omitempty"`
	// From and LeaseIndex: failover.v1's premise (Primary is its To).
	From       string `json:"from,omitempty"`
	LeaseIndex uint64 `json:"lease_index,omitempty"`
	// Time is set by the proposer: Apply must be deterministic, so it
	// never reads the clock.
	Time time.Time `json:"time,omitzero"`
}

// applyResult is what fsm.Apply returns for each command.
type applyResult struct {
	Site SiteInfo
	Err  error
}

// fsmState is the directory itself, as snapshotted.
type fsmState struct {
	Sites map[string]SiteInfo `json:"sites"`
	Nodes map[string]NodeInfo `json:"nodes"`
	// Leases by node name (absent from snapshots taken before leases).
	Leases map[string]leaseRecord `json:"leases,omitempty"`
	// Index is the raft index of the last command applied: the waits of
	// writes count on it after a restore.
	Index uint64 `json:"index"`
}

// leaseRecord is a node's last lease renewal.
type leaseRecord struct {
	Index   uint64    `json:"index"`   // raft index of the renewal
	Renewed time.Time `json:"renewed"` // the proposer's clock, informational
}

// fsm is the replicated directory. raft calls Apply, Snapshot and
// Restore from its one FSM goroutine; reads take the read lock.
type fsm struct {
	onChange func() // called after every change but renewals, must not block
	// onRenew, if set, is called after a renewal of node's lease at
	// index is applied, and for every lease a Restore brings (raft's FSM
	// goroutine; must not block). Set before raft starts.
	onRenew func(node string, index uint64)

	mu      sync.RWMutex
	st      fsmState
	applied chan struct{} // closed and replaced after each apply
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(onChange func()) *fsm {
	if onChange == nil {
		onChange = func() {}
	}
	return &fsm{
		onChange: onChange,
		st:       fsmState{Sites: map[string]SiteInfo{}, Nodes: map[string]NodeInfo{}, Leases: map[string]leaseRecord{}},
		applied:  make(chan struct{}),
	}
}

// Apply runs one committed command.
func (f *fsm) Apply(l *raft.Log) any {
	var cmd command
	if err := json.Unmarshal(l.Data, &cmd); err != nil {
		// Stays deterministic: every node fails the same entry the same way.
		f.advance(l.Index)
		return applyResult{Err: fmt.Errorf("%w: decode command: %v", ErrInvalid, err)}
	}
	f.mu.Lock()
	res := f.st.apply(cmd, l.Index)
	f.st.Index = l.Index
	ch := f.applied
	f.applied = make(chan struct{})
	f.mu.Unlock()
	close(ch)
	switch {
	case res.Err != nil:
	case cmd.Op == OpRenewLease:
		// Every node renews every LeaseRenew: not a directory change
		// for OnChange.
		if f.onRenew != nil {
			f.onRenew(cmd.Node.Name, l.Index)
		}
	default:
		f.onChange()
	}
	return res
}

func (f *fsm) advance(index uint64) {
	f.mu.Lock()
	f.st.Index = index
	ch := f.applied
	f.applied = make(chan struct{})
	f.mu.Unlock()
	close(ch)
}

// apply changes the state for the entry at index; the caller holds the
// lock.
func (s *fsmState) apply(cmd command, index uint64) applyResult {
	switch cmd.Op {
	case OpRegisterNode:
		if cmd.Node == nil {
			return applyResult{Err: fmt.Errorf("%w: register_node without node", ErrInvalid)}
		}
		if err := ValidNodeName(cmd.Node.Name); err != nil {
			return applyResult{Err: err}
		}
		s.Nodes[cmd.Node.Name] = *cmd.Node
		return applyResult{}
	case OpCreateSite:
		if err := ValidSiteName(cmd.Site); err != nil {
			return applyResult{Err: err}
		}
		old, ok := s.Sites[cmd.Site]
		if ok && old.State != SiteRemoved {
			return applyResult{Site: old.clone(), Err: ErrSiteExists}
		}
		if _, ok := s.Nodes[cmd.Primary]; !ok {
			return applyResult{Err: fmt.Errorf("%w: %q", ErrUnknownNode, cmd.Primary)}
		}
		// A revived site's epoch keeps growing: epochs never repeat.
		si := SiteInfo{Name: cmd.Site, Primary: cmd.Primary, Epoch: old.Epoch + 1, State: SiteActive,
			Config: slices.Clone(cmd.Config), Created: cmd.Time.UTC(),
			Failovers: old.Failovers, LastFailover: old.LastFailover}
		s.Sites[cmd.Site] = si
		return applyResult{Site: si.clone()}
	case OpRemoveSite:
		si, ok := s.Sites[cmd.Site]
		if !ok || si.State == SiteRemoved {
			return applyResult{Err: fmt.Errorf("%w: %q", ErrNoSite, cmd.Site)}
		}
		si.State, si.Epoch = SiteRemoved, si.Epoch+1
		s.Sites[cmd.Site] = si
		return applyResult{Site: si.clone()}
	case OpRemoveNode:
		if cmd.Node == nil {
			return applyResult{Err: fmt.Errorf("%w: remove_node without node", ErrInvalid)}
		}
		if _, ok := s.Nodes[cmd.Node.Name]; !ok {
			return applyResult{Err: fmt.Errorf("%w: %q", ErrUnknownNode, cmd.Node.Name)}
		}
		// Checked again here, in log order: a site made primary there
		// since the leader looked keeps its node.
		if sites := s.primaryOf(cmd.Node.Name); len(sites) > 0 {
			return applyResult{Err: fmt.Errorf("%w: %s is the primary of %s", ErrNodeInUse, cmd.Node.Name, strings.Join(sites, ", "))}
		}
		delete(s.Nodes, cmd.Node.Name)
		delete(s.Leases, cmd.Node.Name)
		return applyResult{}
	case OpSetPrimary:
		si, ok := s.Sites[cmd.Site]
		if !ok || si.State == SiteRemoved {
			return applyResult{Err: fmt.Errorf("%w: %q", ErrNoSite, cmd.Site)}
		}
		if si.Epoch != cmd.Epoch {
			return applyResult{Site: si.clone(), Err: fmt.Errorf("%w: site %q is at epoch %d, not %d", ErrEpochChanged, cmd.Site, si.Epoch, cmd.Epoch)}
		}
		if _, ok := s.Nodes[cmd.Primary]; !ok {
			return applyResult{Site: si.clone(), Err: fmt.Errorf("%w: %q", ErrUnknownNode, cmd.Primary)}
		}
		si.Primary = cmd.Primary
		si.Epoch++
		s.Sites[cmd.Site] = si
		return applyResult{Site: si.clone()}
	case OpRenewLease:
		if cmd.Node == nil {
			return applyResult{Err: fmt.Errorf("%w: renew_lease without node", ErrInvalid)}
		}
		// A removed node's renewal still in flight must not bring its
		// lease back.
		if _, ok := s.Nodes[cmd.Node.Name]; !ok {
			return applyResult{Err: fmt.Errorf("%w: %q renews a lease", ErrUnknownNode, cmd.Node.Name)}
		}
		if s.Leases == nil {
			s.Leases = map[string]leaseRecord{}
		}
		s.Leases[cmd.Node.Name] = leaseRecord{Index: index, Renewed: cmd.Time.UTC()}
		return applyResult{}
	case OpFailover:
		si, ok := s.Sites[cmd.Site]
		if !ok || si.State == SiteRemoved {
			return applyResult{Err: fmt.Errorf("%w: %q", ErrNoSite, cmd.Site)}
		}
		// Checked here, in log order: a renewal or a move committed after
		// the leader judged the lease lapsed wins over the failover.
		if si.Primary != cmd.From || si.Epoch != cmd.Epoch {
			return applyResult{Site: si.clone(), Err: fmt.Errorf("%w: site %q is on %s at epoch %d, not %s at %d",
				ErrConflict, cmd.Site, si.Primary, si.Epoch, cmd.From, cmd.Epoch)}
		}
		if cur := s.Leases[cmd.From].Index; cur != cmd.LeaseIndex {
			return applyResult{Site: si.clone(), Err: fmt.Errorf("%w: %s renewed its lease (index %d, not %d)",
				ErrConflict, cmd.From, cur, cmd.LeaseIndex)}
		}
		if _, ok := s.Nodes[cmd.Primary]; !ok {
			return applyResult{Site: si.clone(), Err: fmt.Errorf("%w: %q", ErrUnknownNode, cmd.Primary)}
		}
		si.Primary = cmd.Primary
		si.Epoch++
		si.Failovers++
		si.LastFailover = FailoverInfo{From: cmd.From, To: cmd.Primary, Epoch: si.Epoch, LeaseIndex: cmd.LeaseIndex, Time: cmd.Time.UTC()}
		s.Sites[cmd.Site] = si
		return applyResult{Site: si.clone()}
	default:
		return applyResult{Err: fmt.Errorf("%w: unknown op %q", ErrInvalid, cmd.Op)}
	}
}

// primarySites maps the active sites whose primary is node to their
// epochs, with the index applied: what the holder's lease covers.
func (f *fsm) primarySites(node string) (uint64, map[string]uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := map[string]uint64{}
	for name, si := range f.st.Sites {
		if si.State == SiteActive && si.Primary == node {
			out[name] = si.Epoch
		}
	}
	return f.st.Index, out
}

// leases copies the lease records of the registered nodes.
func (f *fsm) leases() map[string]leaseRecord {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]leaseRecord, len(f.st.Nodes))
	for name := range f.st.Nodes {
		out[name] = f.st.Leases[name] // zero: never renewed
	}
	return out
}

// primaryOf lists the active sites whose primary is node, sorted.
func (s *fsmState) primaryOf(node string) []string {
	var out []string
	for name, si := range s.Sites {
		if si.State == SiteActive && si.Primary == node {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Snapshot copies the state; Persist writes it as JSON.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := fsmState{Sites: make(map[string]SiteInfo, len(f.st.Sites)), Nodes: maps.Clone(f.st.Nodes),
		Leases: maps.Clone(f.st.Leases), Index: f.st.Index}
	for k, v := range f.st.Sites {
		st.Sites[k] = v.clone()
	}
	return &fsmSnapshot{st: st}, nil
}

// Restore replaces the whole state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st fsmState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("restore directory snapshot: %w", err)
	}
	if st.Sites == nil {
		st.Sites = map[string]SiteInfo{}
	}
	if st.Nodes == nil {
		st.Nodes = map[string]NodeInfo{}
	}
	if st.Leases == nil {
		st.Leases = map[string]leaseRecord{}
	}
	f.mu.Lock()
	f.st = st
	ch := f.applied
	f.applied = make(chan struct{})
	f.mu.Unlock()
	close(ch)
	if f.onRenew != nil {
		// Applied now as far as this node knows: the leader's judgement
		// counts from here (or from its own start, if later).
		for name, l := range st.Leases {
			f.onRenew(name, l.Index)
		}
	}
	f.onChange()
	return nil
}

type fsmSnapshot struct{ st fsmState }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(&s.st); err != nil {
		// Cancel's own error adds nothing: the snapshot failed either way.
		_ = sink.Cancel()
		return fmt.Errorf("persist directory snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// index is the raft index of the last command applied, and a channel
// closed at the next apply.
func (f *fsm) index() (uint64, <-chan struct{}) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.Index, f.applied
}

func (f *fsm) sites() []SiteInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]SiteInfo, 0, len(f.st.Sites))
	for _, s := range f.st.Sites {
		out = append(out, s.clone())
	}
	slices.SortFunc(out, func(a, b SiteInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (f *fsm) site(name string) (SiteInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.st.Sites[name]
	return s.clone(), ok
}

func (f *fsm) nodes() []NodeInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := slices.Collect(maps.Values(f.st.Nodes))
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (f *fsm) node(name string) (NodeInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, ok := f.st.Nodes[name]
	return n, ok
}

// primaryOf lists the active sites whose primary is node.
func (f *fsm) primaryOf(node string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.primaryOf(node)
}

func (s SiteInfo) clone() SiteInfo {
	s.Config = slices.Clone(s.Config)
	return s
}

// ValidSiteName accepts a lowercase host name: letters, digits, '-'
// and '.', labels not empty and not starting or ending with '-'.
func ValidSiteName(name string) error {
	if name == "" || len(name) > MaxSiteName {
		return fmt.Errorf("%w: site name %q: 1 to %d characters", ErrInvalid, name, MaxSiteName)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: site name %q: bad label %q", ErrInvalid, name, label)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: site name %q: character %q", ErrInvalid, name, c)
			}
		}
	}
	return nil
}

// ValidNodeName accepts 1 to 64 printable characters without spaces or
// slashes (a node name appears in paths, URLs and metrics labels).
func ValidNodeName(name string) error {
	if name == "" || len(name) > MaxNodeName {
		return fmt.Errorf("%w: node name %q: 1 to %d characters", ErrInvalid, name, MaxNodeName)
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			return fmt.Errorf("%w: node name %q: character %q", ErrInvalid, name, c)
		}
	}
	return nil
}
