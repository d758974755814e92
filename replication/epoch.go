package replication

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

// Fencing by epoch (DESIGN.md, "Fencing by epoch"): every request
// between nodes about a site carries the epoch of the site's directory
// its sender knows (a stream's ?epoch=, X-Ephpm-Epoch on forwarded
// statements and requests), and every answer the primary's. A primary
// that sees a newer epoch than its own was replaced: it refuses, and
// fences its writes at once. 0 is "unknown" (static sites): it never
// refuses anything.

// hdrEpoch carries the sender's epoch of the site (requests) or the
// primary's (answers); missing means 0.
const hdrEpoch = "X-Ephpm-Epoch"

// parseEpoch reads an epoch from the wire; missing or malformed is 0
// (unknown: a peer that does not send one is never refused).
func parseEpoch(v string) uint64 {
	e, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0
	}
	return e
}

// newerEpoch reports whether theirs is newer than own, both known.
func newerEpoch(theirs, own uint64) bool { return theirs != 0 && own != 0 && theirs > own }

// staleBy is the newer epoch this primary saw (0 when none is newer
// than its own): while it stands, the site's writes wait at the fence.
func (s *site) staleBy() uint64 {
	s.fenceMu.Lock()
	defer s.fenceMu.Unlock()
	return s.staleByLocked()
}

func (s *site) staleByLocked() uint64 {
	if s.newer > s.epoch.Load() {
		return s.newer
	}
	return 0
}

// checkEpoch is a primary's answer to the epoch a peer sent for the site
// (a replica's stream, a forwarded statement or request): nil when it is
// not newer than this node's (or either is 0). A newer one means this
// node was replaced: the site's writes are fenced at once, a write
// already holding the writer is waited for (bounded), and it returns
// ErrStaleEpoch, as it does for every request while that fence stands —
// whatever epoch the request carries. The fence ends with the demotion
// SetSites brings, or when SetSites raises this node's epoch to the one
// seen (SetSites.liftEpochFence).
func (m *Manager) checkEpoch(ctx context.Context, s *site, theirs uint64) error {
	if s == nil || s.cfg.Role != ephpm.RolePrimary {
		return nil
	}
	own := s.epoch.Load()
	if newerEpoch(theirs, own) {
		s.fenceMu.Lock()
		first := s.staleByLocked() == 0
		s.newer = max(s.newer, theirs)
		s.watchFenceLocked() // a newer epoch nobody follows with SetSites: Reconfirm
		s.fenceMu.Unlock()
		if first {
			m.log.Warn("a newer epoch of the site exists: this primary was replaced; its writes are fenced", "site", s.cfg.Name, "epoch", own, "seen", theirs)
		}
		m.gateEpoch(ctx, s)
	}
	if n := s.staleBy(); n != 0 {
		return fmt.Errorf("site %s: epoch %d here, %d seen: %w", s.cfg.Name, s.epoch.Load(), n, ErrStaleEpoch)
	}
	return nil
}

// gateEpoch closes the database's gate for an epoch fence and waits for
// the write holding the writer, if any, so that nothing commits after
// the refusal is answered. Were the database closed, its next open
// closes the gate itself (OnOpen reads isFenced); Acquire waits for an
// open under way.
func (m *Manager) gateEpoch(ctx context.Context, s *site) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	db, release, err := m.cfg.Pool.Acquire(ctx, s.cfg.DBPath)
	if err != nil {
		// Nothing durable depends on it: the fence's state is set, and
		// the database's next open closes the gate.
		m.log.Warn("epoch fence: the database could not be opened to close its gate", "site", s.cfg.Name, "err", err)
		return
	}
	defer release()
	s.gateMu.Lock()
	db.SetFenced(true)
	s.gateMu.Unlock()
	if err := db.WithWriter(ctx, func() error { return nil }); err != nil {
		// A transaction that held the writer before the fence (a local
		// one, or a forwarded one, whose next statement is refused) may
		// still end; new ones cannot begin.
		m.log.Warn("epoch fence: waiting for the write in flight", "site", s.cfg.Name, "err", err)
	}
}

// regate sets the open database's gate from the site's fences (move and
// epoch), under gateMu so that a concurrent epoch fence is never undone
// by a lift that decided before it.
func (s *site) regate() {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	s.m.cfg.Pool.IfOpen(s.cfg.DBPath, func(db *sqlite.DB) { db.SetFenced(s.isFenced()) })
}

// liftEpochFence ends an epoch fence that SetSites' new epoch reached
// (this node is still primary at an epoch at least the one seen: a
// re-confirmation, not a replacement).
func (s *site) liftEpochFence() {
	s.fenceMu.Lock()
	lift := s.newer != 0 && s.newer <= s.epoch.Load()
	if lift {
		s.newer = 0
		if !s.fenced && s.fenceStop != nil {
			s.fenceStop()
			s.fenceStop = nil
		}
	}
	s.fenceMu.Unlock()
	if lift {
		s.regate()
		s.m.log.Info("epoch fence lifted: this node's epoch caught up", "site", s.cfg.Name, "epoch", s.epoch.Load())
	}
}

// refuseStale answers a request refused by an epoch fence: 421 (nothing
// ran) with the refusal word, and the primary's epoch.
func (m *Manager) refuseStale(w http.ResponseWriter, s *site, err error) {
	w.Header().Set(hdrEpoch, strconv.FormatUint(s.epoch.Load(), 10))
	http.Error(w, refusalWord(err), http.StatusMisdirectedRequest)
}

// checkPrimaryEpoch is a replica's check of its stream's primary: one
// whose epoch (hello, pings) is older than this replica's was replaced;
// its frames are refused and the stream ends (retried later, when
// SetSites may have named the new primary).
func (s *site) checkPrimaryEpoch(primary uint64) error {
	if own := s.epoch.Load(); newerEpoch(own, primary) {
		return fmt.Errorf("the primary is at epoch %d, this replica knows %d: %w", primary, own, ErrStaleEpoch)
	}
	return nil
}
