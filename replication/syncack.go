package replication

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

// sync = "replica" (DESIGN.md): a site's primary tells a client its
// commit succeeded only once a replica has the commit's frames durably.
// The replica, after each batch, syncs what it applied and tells the
// primary its position (POST /_ephpm/repl/v1/ack, one in flight per
// site, the latest wins); the client's goroutine waits for it after the
// writer is given back (sqlite.Writer.Acked), so concurrent commits
// share one replica round trip.

// SyncMode is when a site's primary acknowledges a commit.
type SyncMode uint8

const (
	// SyncLocal (the default, "local"): once it is in the primary's
	// frame log (fsynced there).
	SyncLocal SyncMode = iota
	// SyncReplica ("replica"): once, in addition, at least one other
	// node has its frames durably. Replicas of the site ack their
	// position when their SiteConfig says so.
	SyncReplica
)

func (s SyncMode) String() string {
	if s == SyncReplica {
		return "replica"
	}
	return "local"
}

// ParseSyncMode reads a site's sync setting: "" or "local", "replica".
func ParseSyncMode(v string) (SyncMode, error) {
	switch strings.ToLower(v) {
	case "", "local":
		return SyncLocal, nil
	case "replica":
		return SyncReplica, nil
	}
	return SyncLocal, fmt.Errorf("sync = %q: want \"local\" or \"replica\"", v)
}

// DefaultSyncTimeout bounds how long a commit of a sync = "replica" site
// waits for a replica's ack before its client gets an error.
const DefaultSyncTimeout = 5 * time.Second

// syncState is a site's side of sync = "replica": on the primary the
// best ack heard, on a replica the ack to send.
type syncState struct {
	mu sync.Mutex
	// primary: the highest next a replica acked for log id (wake is
	// closed and replaced when it grows).
	id   string
	next uint64
	wake chan struct{}
	// replica: the latest durable position to send, the one a sender
	// took last, and how many senders run (at most maxAcksInFlight).
	sendID, takenID     string
	sendNext, takenNext uint64
	senders             int

	// primary: commits that waited, those unconfirmed, time waited
	waits, unconfirmed atomic.Uint64
	waitNanos          atomic.Int64
}

// maxAcksInFlight bounds a site's acks in flight. One would make a
// commit that lands just after an ack left wait for that ack's answer
// too (a third one-way trip); a few in flight, each with the latest
// position, keep the wait at frames there + ack back under load.
const maxAcksInFlight = 4

// ackApplied runs on a replica's stream after a batch is applied and its
// position written: for a sync = "replica" site it makes the batch
// durable (the database's WAL and file, the position file) and has the
// primary told. An error fails the batch: the position must not be
// acked (nor taken as applied) if it is not durable.
func (s *site) ackApplied(pf *posFile, pos position) error {
	if s.cfg.Sync != SyncReplica {
		return nil
	}
	if err := syncApplied(s.cfg.DBPath, pf); err != nil {
		return fmt.Errorf("sync = replica: making frames up to %d durable: %w", pos.Next, err)
	}
	st := &s.sync
	st.mu.Lock()
	st.sendID, st.sendNext = pos.LogID, pos.Next
	start := st.senders < maxAcksInFlight
	if start {
		st.senders++
	}
	st.mu.Unlock()
	if start && !s.m.goAck(s) {
		st.mu.Lock()
		st.senders--
		st.mu.Unlock()
	}
	return nil
}

// syncApplied fsyncs what a replica applied: the WAL (ApplyPages commits
// there; synchronous=NORMAL does not sync it), the database file (a
// checkpoint may have moved the pages there) and the position file.
func syncApplied(dbPath string, pf *posFile) error {
	for _, p := range []string{dbPath + "-wal", dbPath} {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) && p != dbPath {
			continue // checkpointed and truncated: all in the file
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return pf.f.Sync()
}

// goAck starts the site's ack sender in the Manager's group; false when
// the Manager is closing.
func (m *Manager) goAck(s *site) bool {
	m.goMu.Lock()
	defer m.goMu.Unlock()
	if m.stopping {
		return false
	}
	m.loops.Go(func(ctx context.Context) error {
		m.sendAcks(ctx, s)
		return nil
	})
	return true
}

// sendAcks sends the site's latest durable position until no sender
// has a newer one to take, retrying (with backoff) while the primary
// does not take it, until the site is retired or the Manager closes.
func (m *Manager) sendAcks(ctx context.Context, s *site) {
	st := &s.sync
	backoff := 20 * time.Millisecond
	for {
		st.mu.Lock()
		id, next := st.sendID, st.sendNext
		if id == st.takenID && next == st.takenNext {
			st.senders--
			st.mu.Unlock()
			return
		}
		st.takenID, st.takenNext = id, next
		st.mu.Unlock()
		err := m.postAck(ctx, s, id, next)
		if err == nil {
			backoff = 20 * time.Millisecond
			continue
		}
		// Nothing durable depends on the ack: the primary's commits
		// wait for it, bounded, and the next batch sends a newer one.
		m.log.Debug("sync = replica: ack not taken", "site", s.cfg.Name, "next", next, "err", err)
		st.mu.Lock()
		if st.takenID == id && st.takenNext == next {
			st.takenID, st.takenNext = "", 0 // to be sent again
		}
		st.mu.Unlock()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-s.retired:
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil || isClosed(s.retired) {
			st.mu.Lock()
			st.senders--
			st.mu.Unlock()
			return
		}
		backoff = min(2*backoff, time.Second)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// postAck tells the primary this replica has frames before next of log
// id durably.
func (m *Manager) postAck(ctx context.Context, s *site, id string, next uint64) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout+DefaultPeerPingTimeout)
	defer cancel()
	q := url.Values{"site": {s.cfg.Name}, "log_id": {id}, "next": {strconv.FormatUint(next, 10)},
		"epoch": {strconv.FormatUint(s.epoch.Load(), 10)}}
	u := strings.TrimRight(s.cfg.PrimaryURL, "/") + "/_ephpm/repl/v1/ack?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+m.cfg.Token)
	req.Header.Set(hdrNode, m.cfg.Node)
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("primary answered %s", resp.Status)
	}
	return nil
}

// serveAck takes a replica's durable position for a sync = "replica"
// site (POST /_ephpm/repl/v1/ack?site&log_id&next&epoch).
func (m *Manager) serveAck(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	next, err := strconv.ParseUint(q.Get("next"), 10, 64)
	if err != nil {
		http.Error(w, "bad next", http.StatusBadRequest)
		return
	}
	s := m.site(q.Get("site"))
	if s == nil || s.cfg.Role != ephpm.RolePrimary {
		http.Error(w, "this node is not the primary for "+q.Get("site"), http.StatusMisdirectedRequest)
		return
	}
	// A replica that knows a newer epoch: this node was replaced, and
	// its commits must not be confirmed by it.
	if err := m.checkEpoch(r.Context(), s, parseEpoch(q.Get("epoch"))); err != nil {
		m.refuseStale(w, s, err)
		return
	}
	id := q.Get("log_id")
	if id == "" || id != s.flogID() {
		http.Error(w, refusalWord(errLogReset), http.StatusConflict)
		return
	}
	st := &s.sync
	st.mu.Lock()
	if st.id != id || next > st.next {
		st.id, st.next = id, next
		if st.wake != nil {
			close(st.wake)
			st.wake = nil
		}
	}
	st.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// waitAcked waits until a replica acked frames before next of log id,
// at most Config.SyncTimeout (or ctx).
func (m *Manager) waitAcked(ctx context.Context, s *site, id string, next uint64) (err error) {
	st := &s.sync
	start := time.Now()
	defer func() {
		st.waits.Add(1)
		st.waitNanos.Add(int64(time.Since(start)))
		if err != nil {
			st.unconfirmed.Add(1)
		}
	}()
	t := time.NewTimer(m.syncTimeout())
	defer t.Stop()
	for {
		st.mu.Lock()
		if st.id == id && st.next >= next {
			st.mu.Unlock()
			return nil
		}
		if st.wake == nil {
			st.wake = make(chan struct{})
		}
		wake := st.wake
		st.mu.Unlock()
		select {
		case <-wake:
		case <-t.C:
			return fmt.Errorf("site %s: the commit (frame %d) is on the primary but no replica confirmed it within %v; it may be lost if this node fails now: %w",
				s.cfg.Name, next-1, m.syncTimeout(), ephpm.ErrCommitUnconfirmed)
		case <-ctx.Done():
			return fmt.Errorf("site %s: the commit (frame %d) is on the primary; waiting for a replica to confirm it: %w (%w)",
				s.cfg.Name, next-1, ctx.Err(), ephpm.ErrCommitUnconfirmed)
		}
	}
}

func (m *Manager) syncTimeout() time.Duration {
	if m.cfg.SyncTimeout > 0 {
		return m.cfg.SyncTimeout
	}
	return DefaultSyncTimeout
}

// commitAck is a primary site's sqlite.DB.SetCommitAck hook (nil when
// there is nothing to wait for nor record): it takes the commit's end
// from the log (the writer is held, the hooks ran) and returns the wait
// for a replica (sync = "replica") and the audit line.
func (m *Manager) commitAck(s *site) func() func(context.Context) error {
	audit := m.audit
	if s.cfg.Sync != SyncReplica && audit == nil {
		return nil
	}
	return func() func(context.Context) error {
		// The log's end as its OnAppend recorded it for this commit (the
		// hooks ran). Not logMu: openLog holds it while it waits for the
		// writer, which this commit holds.
		id, next, epoch := s.flogID(), s.known.Load(), s.epoch.Load()
		if id == "" {
			return nil // no log (yet): nothing a replica could confirm
		}
		return func(ctx context.Context) error {
			if s.cfg.Sync == SyncReplica {
				if err := m.waitAcked(ctx, s, id, next); err != nil {
					return err
				}
			}
			if audit != nil && next > 0 {
				audit.add(m.cfg.Node, s.cfg.Name, epoch, next-1)
			}
			return nil
		}
	}
}

// gateAck installs (or removes) the commit ack on a site's open
// database.
func (m *Manager) gateAck(s *site, db *sqlite.DB) {
	if s.cfg.Role != ephpm.RolePrimary {
		db.SetCommitAck(nil)
		return
	}
	db.SetCommitAck(m.commitAck(s))
}
