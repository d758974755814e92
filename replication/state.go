package replication

import (
	"errors"
	"fmt"

	"github.com/ephpm/ephpm"
)

// ReplicaState is where a replica site's stream is; Status.State shows
// it (with the error after "error: " in ReplicaFailed).
type ReplicaState string

const (
	// ReplicaStarting: the stream has not reached the primary yet.
	ReplicaStarting ReplicaState = "starting"
	// ReplicaBootstrapping: the local copy is being replaced with the
	// primary's snapshot.
	ReplicaBootstrapping ReplicaState = "bootstrapping"
	// ReplicaStreaming: the primary said hello; its frames are applied as
	// they arrive.
	ReplicaStreaming ReplicaState = "streaming"
	// ReplicaFailed: the last attempt failed (replicaStatus.err says why);
	// the stream retries after a backoff.
	ReplicaFailed ReplicaState = "error"
)

// A primary site's Status.State: whether its frame log is open (its
// database is; an idle site's closes).
const (
	logOpen   = "open"
	logClosed = "closed"
)

// replicaStatus is a replica's state and, in ReplicaFailed, why; it is
// replaced whole (site.status), so a reader never sees one without the
// other.
type replicaStatus struct {
	state ReplicaState
	err   error // set in ReplicaFailed only
}

// String is the state as Status shows it: "streaming", or "error: <why>".
func (st replicaStatus) String() string {
	if st.state == ReplicaFailed && st.err != nil {
		return string(ReplicaFailed) + ": " + st.err.Error()
	}
	return string(st.state)
}

// ErrPrimaryUnknown: a replica site was given no primary URL (its
// cluster directory is not readable yet); writes on it fail, reads are
// served from the local copy.
var ErrPrimaryUnknown = errors.New("the site's primary is not known yet (waiting for the cluster directory)")

// Why a primary refuses to stream from a position, as a sentinel on each
// side and as a word on the wire (the body of a 409, the payload of an
// msgError): the words are the protocol, the sentinels are what code
// tests with errors.Is.
var (
	// errLogReset: the replica follows a log the primary no longer has
	// (another log ID); it starts over.
	errLogReset = errors.New("the primary's log is not the one this replica follows")
	// errAhead: the replica is past the end of the primary's log (the
	// primary lost frames); it starts over.
	errAhead = errors.New("the replica is ahead of the primary's log")
	// ErrStaleEpoch: the other side knows a newer epoch of the site's
	// directory than this one (a primary that was replaced, or a stream
	// from it). A primary that sees it fences its own writes (see
	// epoch.go); a replica ends the stream and retries later.
	ErrStaleEpoch = errors.New("a newer epoch of the site exists: this primary was replaced")
)

// refusals pairs each refusal's wire word with its sentinel.
// ephpm.ErrNeedSnapshot: the log no longer holds the position (compacted
// away); the replica bootstraps from the primary's snapshot.
var refusals = []struct {
	word string
	err  error
}{
	{"need-snapshot", ephpm.ErrNeedSnapshot},
	{"log-reset", errLogReset},
	{"ahead", errAhead},
	{"stale-epoch", ErrStaleEpoch},
	{"diverged", errDiverged},      // rejoin (diverge.go)
	{"need-repair", errNeedRepair}, // rejoin (diverge.go)
}

// refusalWord is the wire word for a refusal sentinel (err wraps one);
// any other error goes as its text, which a replica reports as an
// unknown refusal.
func refusalWord(err error) string {
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return r.word
		}
	}
	return err.Error()
}

// refusalErr is the error for a primary's refusal word: one of the
// sentinels, or a plain error naming a word this node does not know.
func refusalErr(word string) error {
	for _, r := range refusals {
		if r.word == word {
			return r.err
		}
	}
	return fmt.Errorf("primary refused the stream: %s", word)
}
