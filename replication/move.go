package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/framelog"
)

// A planned change of primary (DESIGN.md, "Change of primary"): the
// target fences the old primary (Fence: new writes wait, its log end is
// final), catches up to that end, the directory records it as primary,
// and SetSites on every node demotes the old primary (its waiting
// writers forward to the new one) and promotes the target (its log
// continues the one it followed).

// FencePos is where a fenced primary's log ends: nothing is written
// after it until Unfence.
type FencePos struct {
	LogID string `json:"log_id"`
	Next  uint64 `json:"next"`
}

// TakeOverStats says what a TakeOver cost.
type TakeOverStats struct {
	// Pause is from asking for the fence to commit's return: how long
	// new writes waited, up to the directory's change (SetSites on each
	// node adds its own time).
	Pause time.Duration
	// Frames is how many frames this replica still had to apply after
	// the fence.
	Frames uint64
	Fence  FencePos
}

var (
	// ErrNotReplica: TakeOver runs on a replica of the site.
	ErrNotReplica = errors.New("not a replica of this site")
	// ErrCommitUnknown, wrapped by what TakeOver's commit returns, says
	// the directory may have recorded the change after all (a timeout):
	// TakeOver then leaves the old primary fenced, and its Reconfirm
	// settles it (the node's epoch bump fails if the change went in).
	ErrCommitUnknown = errors.New("the directory's change may or may not have been made")
)

// Fence stops new writes on a site this node is primary for: new write
// transactions wait (sqlite.DB.SetFenced), a write already holding the
// writer finishes (bounded by ctx), and it returns the log's end, which
// no write passes until Unfence. The site keeps serving its stream, so
// the target catches up. A demotion (SetSites) wakes the waiting writers
// with an error wrapping ephpm.ErrNotPrimary; a fence left standing for
// Config.FenceTimeout asks Config.Reconfirm.
func (m *Manager) Fence(ctx context.Context, name string) (FencePos, error) {
	s := m.site(name)
	if s == nil || s.cfg.Role != ephpm.RolePrimary {
		return FencePos{}, ephpm.ErrNotPrimary
	}
	s.fenceMu.Lock()
	if !s.fenced {
		s.fenced = true
		s.watchFenceLocked()
	}
	s.fenceMu.Unlock()
	l, db, release, err := m.primaryLog(ctx, name)
	if err != nil {
		return FencePos{}, err
	}
	defer release()
	db.SetFenced(true)
	// Forwarded sessions end: their open transactions roll back (the
	// clients are told at their next statement) rather than hold the
	// writer until the lock wait gives up.
	if n := m.sessions.closeSite(name); n > 0 {
		m.log.Info("fence: forwarded sessions closed", "site", name, "sessions", n)
	}
	// Taking the writer once: the write that held it has finished (and
	// its commit was logged).
	if err := db.WithWriter(ctx, func() error { return nil }); err != nil {
		return FencePos{}, fmt.Errorf("fence %s: wait for the writer: %w", name, err)
	}
	pos := FencePos{LogID: l.ID(), Next: l.Next()}
	m.log.Info("site fenced", "site", name, "log_id", pos.LogID, "next", pos.Next)
	return pos, nil
}

// Unfence lifts the fence (a move that did not happen): the waiting
// writers go on.
func (m *Manager) Unfence(name string) error {
	s := m.site(name)
	if s == nil || s.cfg.Role != ephpm.RolePrimary {
		return ephpm.ErrNotPrimary
	}
	s.fenceMu.Lock()
	if n := s.staleByLocked(); n != 0 {
		s.fenceMu.Unlock()
		// Replaced: only a demotion or this node's own epoch reaching
		// n lifts it.
		return fmt.Errorf("unfence %s: epoch %d seen: %w", name, n, ErrStaleEpoch)
	}
	was := s.fenced
	s.fenced = false
	if s.fenceStop != nil {
		s.fenceStop()
		s.fenceStop = nil
	}
	s.fenceMu.Unlock()
	if !was {
		return nil
	}
	s.regate()
	m.log.Info("site unfenced", "site", name)
	return nil
}

// isFenced: new writes wait, for a move (Fence) or because a newer
// epoch was seen (checkEpoch).
func (s *site) isFenced() bool {
	s.fenceMu.Lock()
	defer s.fenceMu.Unlock()
	return s.fenced || s.staleByLocked() != 0
}

// endFence ends the fence's state (a move's and an epoch's) and its
// watch; it reports whether the site was fenced. The database's gate is
// the caller's.
func (s *site) endFence() bool {
	s.fenceMu.Lock()
	defer s.fenceMu.Unlock()
	if s.fenceStop != nil {
		s.fenceStop()
		s.fenceStop = nil
	}
	was := s.fenced || s.staleByLocked() != 0
	s.fenced, s.newer = false, 0
	return was
}

func (s *site) watchFence() {
	s.fenceMu.Lock()
	defer s.fenceMu.Unlock()
	s.watchFenceLocked()
}

// watchFenceLocked starts the fence's watch: after FenceTimeout with the
// fence still standing, ask Reconfirm. Caller holds fenceMu.
func (s *site) watchFenceLocked() {
	m := s.m
	if s.fenceStop != nil {
		return
	}
	// goMu: no goroutine joins the group once Close has begun.
	m.goMu.Lock()
	defer m.goMu.Unlock()
	if m.stopping {
		return
	}
	ctx, cancel := context.WithCancel(m.loops.Context())
	s.fenceStop = cancel
	m.loops.Go(func(context.Context) error {
		defer cancel()
		wait := m.cfg.FenceTimeout
		// Each round waits, then asks once; ctx (the fence's end, or
		// Close) ends them.
		for {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			if m.cfg.Reconfirm == nil {
				m.log.Warn("fence still standing, and no Reconfirm hook: it stays", "site", s.cfg.Name)
				return nil
			}
			still, err := m.cfg.Reconfirm(ctx, s.cfg.Name)
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				m.log.Warn("fence: reconfirming this node as primary failed; the fence stays, asking again", "site", s.cfg.Name, "err", err)
				wait = max(m.cfg.FenceTimeout/4, 10*time.Millisecond)
				continue
			case still:
				m.log.Info("fence timed out; this node is still primary: lifting it", "site", s.cfg.Name)
				if cur := m.site(s.cfg.Name); cur == s {
					s.fenceMu.Lock()
					s.fenceStop = nil // this goroutine; it ends now
					s.fenceMu.Unlock()
					if err := m.Unfence(s.cfg.Name); err != nil {
						m.log.Warn("fence: lifting", "site", s.cfg.Name, "err", err)
					}
				}
				return nil
			default:
				m.log.Warn("fence timed out; this node is no longer primary: the fence stays until the demotion", "site", s.cfg.Name)
				return nil
			}
		}
	})
}

// TakeOver makes this node, a replica of the site, ready to be its
// primary: it fences the current primary (Config's PrimaryURL) over
// HTTP, waits until it has applied up to the fence's end (bounded by
// ctx), then calls commit, which records the change in the directory.
// It does not promote: once commit returned nil, the node calls SetSites
// with the new roles (this node primary, the old one replica), on every
// node. If anything fails before commit succeeded, it lifts the fence
// (unless commit's error wraps ErrCommitUnknown). commit runs on the
// caller's goroutine with the old primary fenced: keep it short, the
// site's writes wait for it.
func (m *Manager) TakeOver(ctx context.Context, name string, commit func(ctx context.Context) error) (TakeOverStats, error) {
	var st TakeOverStats
	s := m.site(name)
	if s == nil || s.cfg.Role != ephpm.RoleReplica || s.cfg.PrimaryURL == "" {
		return st, fmt.Errorf("take over %s: %w", name, ErrNotReplica)
	}
	start := time.Now()
	unfence := func(why error) error {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := m.postFence(uctx, s, "unfence", nil); err != nil {
			return errors.Join(why, fmt.Errorf("and lifting the fence failed (its Reconfirm will): %w", err))
		}
		return why
	}
	var pos FencePos
	if err := m.postFence(ctx, s, "fence", &pos); err != nil {
		// The fence may have taken hold with its answer lost.
		return st, unfence(fmt.Errorf("take over %s: fence: %w", name, err))
	}
	st.Fence = pos
	if id, _ := s.logID.Load().(string); id != pos.LogID {
		return st, unfence(fmt.Errorf("take over %s: this replica follows log %q, the primary's is %q", name, id, pos.LogID))
	}
	if a := s.applied.Load(); a < pos.Next {
		st.Frames = pos.Next - a
	}
	if err := m.waitAppliedCtx(ctx, s, pos.Next); err != nil {
		return st, unfence(fmt.Errorf("take over %s: catch up to frame %d: %w", name, pos.Next, err))
	}
	if err := commit(ctx); err != nil {
		err = fmt.Errorf("take over %s: commit: %w", name, err)
		if errors.Is(err, ErrCommitUnknown) {
			return st, err
		}
		return st, unfence(err)
	}
	st.Pause = time.Since(start)
	m.log.Info("took over the site", "site", name, "from", s.cfg.PrimaryURL, "next", pos.Next, "pause", st.Pause, "frames", st.Frames)
	return st, nil
}

// waitAppliedCtx waits until s has applied everything before next, or
// ctx ends (WaitApplied's bound is for reads, not for a move).
func (m *Manager) waitAppliedCtx(ctx context.Context, s *site, next uint64) error {
	for {
		s.wakeMu.Lock()
		wake := s.wake
		s.wakeMu.Unlock()
		if s.applied.Load() >= next {
			return nil
		}
		select {
		case <-wake:
		case <-s.retired:
			return fmt.Errorf("the site changed (SetSites) while waiting")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// postFence asks the site's primary to fence (out gets its log end) or
// unfence.
func (m *Manager) postFence(ctx context.Context, s *site, what string, out *FencePos) error {
	u := strings.TrimRight(s.cfg.PrimaryURL, "/") + "/_ephpm/repl/v1/" + what + "?" + url.Values{"site": {s.cfg.Name}}.Encode()
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
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("primary answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if out != nil {
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(out); err != nil {
			return fmt.Errorf("fence answer: %w", err)
		}
		if len(out.LogID) != 36 {
			return fmt.Errorf("fence answer: bad log id %q", out.LogID)
		}
	}
	return nil
}

// serveFence: POST /_ephpm/repl/v1/fence?site=S → {"log_id","next"}.
func (m *Manager) serveFence(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("site")
	pos, err := m.Fence(r.Context(), name)
	if err != nil {
		m.refuse(w, name, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(pos) // a lost answer: TakeOver unfences
}

// serveUnfence: POST /_ephpm/repl/v1/unfence?site=S.
func (m *Manager) serveUnfence(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("site")
	if err := m.Unfence(name); err != nil {
		m.refuse(w, name, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}\n")
}

// demote turns a primary site s (still installed, SetSites holding
// setMu) into a replica's starting point: client writes stop (at the
// fence; SetSites then makes the database read-only, and the writers
// waiting there fail with ephpm.ErrNotPrimary), the WAL is
// checkpointed into the database file, the log is detached and closed,
// and its end is written, synced, as the replica's position — the
// database is exactly the state as of that frame. The old log's
// directory is removed (a later promotion builds a new one). The
// position is marked as a former primary's (ExPrimary: its last frames
// may not be the new primary's; diverge.go). If a step fails, the
// position is left empty but so marked: the copy is quarantined and
// repaired rather than trusted.
func (m *Manager) demote(s *site) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, release, err := m.cfg.Pool.Acquire(ctx, s.cfg.DBPath)
	if err != nil {
		return errors.Join(err, writePosDurable(s.cfg.DBPath, position{ExPrimary: true}))
	}
	defer release()
	// New writers wait at the fence (one set already, unless the
	// directory changed without a move); SetSites wakes them once the
	// replica site is in place, so that they forward to its primary.
	db.SetFenced(true)
	if err := s.openLog(ctx, db); err != nil {
		return errors.Join(err, writePosDurable(s.cfg.DBPath, position{ExPrimary: true}))
	}
	err = db.WithWriter(ctx, func() error {
		s.logMu.Lock()
		defer s.logMu.Unlock()
		l := s.flog
		if l == nil {
			return errors.New("demote: the log is not open")
		}
		defer func() {
			l.Detach()
			// Every record was synced when it was appended: a close
			// error loses nothing.
			if cerr := l.Close(); cerr != nil {
				m.log.Warn("closing the frame log", "site", s.cfg.Name, "err", cerr)
			}
			s.flog, s.flogDB = nil, nil
			close(s.logClosed)
		}()
		// The checkpoint's guard captures the last commits; the file
		// then holds all (synced by SQLite), whatever the WAL's fate.
		if busy, _, _, err := db.CheckpointHeld(ctx, "TRUNCATE"); err != nil || busy != 0 {
			return fmt.Errorf("demote: checkpoint: busy=%d: %v", busy, err)
		}
		// The log's last frames become the replica's tail (before its
		// position: see tailFile). Without them only a move back costs
		// replicas behind it a snapshot: a failure is logged.
		start, recs, err := lastFrames(l, m.tailFrames())
		if err == nil {
			err = writeTail(s.cfg.DBPath, l.ID(), start, recs, m.tailFrames())
		}
		if err != nil {
			m.log.Warn("demote: keeping the log's last frames", "site", s.cfg.Name, "err", err)
			if rerr := os.Remove(tailPath(s.cfg.DBPath)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				// Even so it is checked before use (scanTail).
				m.log.Warn("demote: removing the tail", "site", s.cfg.Name, "err", rerr)
			}
		}
		// With the checksum of its last frame: the new primary tells
		// whether this node's last commits are in its history (a
		// failover may have lost them: diverge.go).
		next, sum := l.End()
		return writePosDurable(s.cfg.DBPath, position{LogID: l.ID(), Next: next, Sum: sum, SumKnown: true, ExPrimary: true})
	})
	if err != nil {
		return errors.Join(err, writePosDurable(s.cfg.DBPath, position{ExPrimary: true}))
	}
	if rerr := os.RemoveAll(framelog.Dir(s.cfg.DBPath)); rerr != nil {
		// The position file rules what happens next: a promotion
		// replaces the directory whatever it holds.
		m.log.Warn("removing the demoted site's log", "site", s.cfg.Name, "err", rerr)
	}
	m.log.Info("site demoted", "site", s.cfg.Name)
	return nil
}

// promote makes a replica's database (s is the new, primary site) take
// writes: its log continues the one it followed (openLog adopts from
// the position file), then the database becomes writable.
func (m *Manager) promote(s *site) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, release, err := m.cfg.Pool.Acquire(ctx, s.cfg.DBPath)
	if err != nil {
		return err
	}
	defer release()
	if err := s.openLog(ctx, db); err != nil {
		return err
	}
	db.SetFenced(s.isFenced())
	db.SetReadOnly(false)
	m.log.Info("site promoted", "site", s.cfg.Name, "log_id", s.flogID(), "next", s.known.Load())
	return nil
}

func (s *site) flogID() string {
	id, _ := s.logID.Load().(string)
	return id
}
