package cluster

import "errors"

// Sentinel errors. Every one of them survives forwarding: the leader
// sends its code (errorCodes) and the follower maps it back, so
// errors.Is works on whichever node made the call.
var (
	// ErrNoSite: the directory has no site of that name.
	ErrNoSite = errors.New("cluster: no such site")
	// ErrSiteExists: CreateSite for a name the directory already holds.
	ErrSiteExists = errors.New("cluster: site exists")
	// ErrEpochChanged: SetPrimary's compare-and-set lost (the site's
	// epoch is no longer the one the caller read).
	ErrEpochChanged = errors.New("cluster: site epoch changed")
	// ErrUnknownNode: a primary that is not in the nodes table.
	ErrUnknownNode = errors.New("cluster: unknown node")
	// ErrNoLeader: no raft leader could be reached before the deadline.
	ErrNoLeader = errors.New("cluster: no raft leader")
	// ErrClosed: the Cluster has been closed.
	ErrClosed = errors.New("cluster: closed")
	// ErrNodeInUse: RemoveNode of a node that is alive or still the
	// primary of sites.
	ErrNodeInUse = errors.New("cluster: node in use")
	// ErrInvalid: a malformed name or command (never retried).
	ErrInvalid = errors.New("cluster: invalid request")
	// ErrConflict: a Failover whose premise no longer holds: the site's
	// primary or epoch moved, or the old primary renewed its lease since
	// (or, on the leader, its lease has not lapsed).
	ErrConflict = errors.New("cluster: conflict")
	// ErrNotLeader: a call only the raft leader answers (LapsedNodes,
	// Failover) made on another node.
	ErrNotLeader = errors.New("cluster: this node is not the raft leader")

	// errNotLeader: the node asked to apply is no longer the leader
	// (internal: the forwarder retries with the new one).
	errNotLeader = errors.New("cluster: not the leader")
)

// errorCodes is the one table between sentinels and the codes that
// carry them over the command RPC.
var errorCodes = []struct {
	code string
	err  error
}{
	{"no_site", ErrNoSite},
	{"site_exists", ErrSiteExists},
	{"epoch_changed", ErrEpochChanged},
	{"unknown_node", ErrUnknownNode},
	{"no_leader", ErrNoLeader},
	{"closed", ErrClosed},
	{"invalid", ErrInvalid},
	{"node_in_use", ErrNodeInUse},
	{"conflict", ErrConflict},
	{"not_raft_leader", ErrNotLeader},
	{"not_leader", errNotLeader},
}

// codeOf returns the wire code of err ("error" for one without a
// sentinel, "" for nil).
func codeOf(err error) string {
	if err == nil {
		return ""
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return "error"
}

// errorOf turns a wire code and message back into an error that wraps
// the same sentinel.
func errorOf(code, msg string) error {
	if code == "" {
		return nil
	}
	for _, e := range errorCodes {
		if e.code == code {
			if msg == "" || msg == e.err.Error() {
				return e.err
			}
			return &remoteError{msg: msg, err: e.err}
		}
	}
	return &remoteError{msg: msg}
}

// remoteError keeps the leader's message and unwraps to the sentinel.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return "leader: " + e.msg }
func (e *remoteError) Unwrap() error { return e.err }
