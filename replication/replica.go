package replication

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

// maxApplyBytes bounds how much a replica merges into one local
// transaction when frames arrive faster than it applies them.
const maxApplyBytes = 8 << 20

// errRestart asks the loop to reconnect at once (after a bootstrap or a
// log reset), not after a backoff.
var errRestart = errors.New("restart")

// startReplica starts the site's stream in the manager's loops, with a
// context of its own so that SetSites can stop it alone (stopSite). The
// caller holds setMu.
func (m *Manager) startReplica(s *site) {
	if m.closed {
		return
	}
	ctx, cancel := context.WithCancel(m.loops.Context())
	s.stop, s.done = cancel, make(chan struct{})
	done := s.done
	m.loops.Go(func(context.Context) error {
		defer close(done)
		s.run(ctx)
		return nil
	})
}

// run streams until ctx ends, reconnecting with backoff.
func (s *site) run(ctx context.Context) {
	if s.cfg.PrimaryURL == "" {
		// A replica whose primary is not known yet (a cluster node whose
		// directory is not caught up): read-only, nothing to stream from
		// until SetSites names the primary.
		s.setFailed(ErrPrimaryUnknown)
		<-ctx.Done()
		return
	}
	log := s.m.log.With("site", s.cfg.Name, "primary", s.cfg.PrimaryURL)
	var (
		pf  *posFile
		pos position
		err error
	)
	for {
		if err = os.MkdirAll(filepath.Dir(s.cfg.DBPath), 0o700); err == nil {
			// A primary replaced without a clean demotion: its log's
			// end becomes its position first (diverge.go).
			if err = s.exPrimaryPos(ctx); err != nil {
				err = fmt.Errorf("former primary's position: %w", err)
			} else if pf, pos, err = openPos(s.cfg.DBPath); err == nil {
				if pf.tail, err = openTail(s.cfg.DBPath, pos, s.m.tailFrames()); err == nil {
					break
				}
				err = errors.Join(err, pf.close())
			}
		}
		log.Error("replica cannot start; retrying", "err", err)
		s.setFailed(err)
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			return
		}
	}
	defer func() {
		// Every write was checked when it was made; a late error (a
		// network file system) is still worth knowing.
		if err := pf.close(); err != nil {
			log.Warn("closing the replica's position file", "err", err)
		}
	}()
	s.applied.Store(pos.Next)
	s.logID.Store(pos.LogID)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var progressed bool
		var err error
		if pos.Repairing || pos.ExPrimary && pos.LogID == "" {
			// A repair is owed (one was under way, or a former primary
			// knows nothing of its history): before any stream.
			err = s.recover(ctx, pf, &pos, errNeedRepair)
		} else {
			progressed, err = s.stream(ctx, pf, &pos)
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRestart) {
			continue
		}
		if progressed {
			backoff = 100 * time.Millisecond
		}
		s.setFailed(err)
		log.Warn("replication stream ended; reconnecting", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *site) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := strings.TrimRight(s.cfg.PrimaryURL, "/") + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.m.cfg.Token)
	req.Header.Set(hdrNode, s.m.cfg.Node)
	return s.m.client.Do(req)
}

// connect makes sure a connection to the primary is up before a stream
// starts on it (see primaryConn).
func (s *site) connect(ctx context.Context) error {
	s.m.connMu.Lock()
	pc := s.m.conns[s.cfg.PrimaryURL]
	if pc == nil {
		pc = &primaryConn{}
		s.m.conns[s.cfg.PrimaryURL] = pc
	}
	s.m.connMu.Unlock()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.ok {
		return nil
	}
	resp, err := s.get(ctx, "/_ephpm/repl/v1/ping", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("primary answered %s", resp.Status)
	}
	pc.ok = true
	return nil
}

func (s *site) disconnected() {
	s.m.connMu.Lock()
	if pc := s.m.conns[s.cfg.PrimaryURL]; pc != nil {
		pc.mu.Lock()
		pc.ok = false
		pc.mu.Unlock()
	}
	s.m.connMu.Unlock()
}

// stream runs one connection: follow the primary from pos.Next.
func (s *site) stream(ctx context.Context, pf *posFile, pos *position) (progressed bool, err error) {
	if err := s.connect(ctx); err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(ctx)
	var watchdog sync.WaitGroup
	defer func() {
		cancel()
		watchdog.Wait()
	}()
	q := url.Values{"site": {s.cfg.Name}, "from": {strconv.FormatUint(pos.Next, 10)}, "log_id": {pos.LogID},
		"epoch": {strconv.FormatUint(s.epoch.Load(), 10)}, "rejoin": {"1"}}
	if pos.SumKnown {
		// The primary checks that frame from-1 is its own (diverge.go).
		q.Set("sum", strconv.FormatUint(pos.Sum, 10))
	}
	if pos.LogID == "" {
		// No position but a database (a lost position file): a page
		// diff rather than the whole log.
		if has, err := s.hasPages(); err != nil {
			return false, err
		} else if has {
			q.Set("has_pages", "1")
		}
	}
	resp, err := s.get(sctx, "/_ephpm/repl/v1/stream", q)
	if err != nil {
		s.disconnected()
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		why, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return false, s.recover(ctx, pf, pos, refusalErr(strings.TrimSpace(string(why))))
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return false, fmt.Errorf("primary answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	// A watchdog: no message for three pings means a dead connection.
	alive := make(chan struct{}, 1)
	watchdog.Go(func() {
		t := time.NewTimer(3 * DefaultPing)
		defer t.Stop()
		for {
			select {
			case <-alive:
				t.Reset(3 * DefaultPing)
			case <-t.C:
				cancel()
				return
			case <-sctx.Done():
				return
			}
		}
	})
	// Small buffers: a node streams a thousand idle sites.
	r := bufio.NewReaderSize(resp.Body, 16<<10)
	var buf []byte
	var batch txBatch
	want := pos.Next
	var sent int64
	var primaryEpoch uint64 // as the hello and pings said
	for {
		typ, msg, err := readMsg(r, buf)
		buf = msg
		if err != nil {
			if sctx.Err() != nil && ctx.Err() == nil {
				return progressed, errors.New("primary silent for too long")
			}
			return progressed, err
		}
		select {
		case alive <- struct{}{}:
		default:
		}
		switch typ {
		case msgHello:
			var h helloMsg
			if err := json.Unmarshal(msg, &h); err != nil {
				return progressed, fmt.Errorf("hello: %w", err)
			}
			primaryEpoch = h.Epoch
			if err := s.checkPrimaryEpoch(primaryEpoch); err != nil {
				return progressed, err
			}
			if pos.LogID == "" {
				pos.LogID = h.LogID
				s.logID.Store(h.LogID)
			}
			s.known.Store(h.Next)
			s.markCaughtUp()
			s.setState(ReplicaStreaming)
		case msgPing:
			if len(msg) >= 16 {
				next := binary.BigEndian.Uint64(msg[8:])
				s.known.Store(next)
				if next <= s.applied.Load() {
					s.lagNs.Store(0)
				}
				s.markCaughtUp()
			}
			if len(msg) >= 24 {
				primaryEpoch = binary.BigEndian.Uint64(msg[16:])
			}
			if err := s.checkPrimaryEpoch(primaryEpoch); err != nil {
				return progressed, err
			}
		case msgError:
			return progressed, s.recover(ctx, pf, pos, refusalErr(string(msg)))
		case msgFrames:
			if len(msg) < 8 {
				return progressed, errBadFrames
			}
			// This replica's epoch may have risen since the hello: no
			// frame from a primary older than it is applied.
			if err := s.checkPrimaryEpoch(primaryEpoch); err != nil {
				return progressed, err
			}
			sent = int64(binary.BigEndian.Uint64(msg))
			// The message buffer is reused: the batch keeps copies.
			recs := append([]byte(nil), msg[8:]...)
			if cap(buf) > 1<<20 {
				buf = nil // do not keep a large batch's buffer for an idle site
			}
			if want, err = parseFrames(&batch, recs, want); err != nil {
				return progressed, err
			}
			if want > s.known.Load() {
				s.known.Store(want)
			}
		}
		if batch.pages == nil || batch.pending || want < pos.Intent {
			// Nothing to apply; or, after a restart, not yet the end of
			// the batch that was unfinished (see position).
			continue
		}
		// Merge frames that already arrived into the same local
		// transaction.
		if r.Buffered() >= 5 && len(batch.pages)*sqlite.PageSize < maxApplyBytes {
			if next, _ := r.Peek(1); next[0] == msgFrames {
				continue
			}
		}
		if err := s.apply(ctx, pf, pos, &batch); err != nil {
			return progressed, err
		}
		progressed = true
		if sent > 0 {
			s.lagNs.Store(max(time.Now().UnixNano()-sent, 0))
		}
		s.markCaughtUp()
		batch = txBatch{}
	}
}

// apply writes a batch as one local transaction and moves the position.
func (s *site) apply(ctx context.Context, pf *posFile, pos *position, b *txBatch) error {
	next := b.last + 1
	if err := pf.write(position{LogID: pos.LogID, Next: pos.Next, Intent: max(next, pos.Intent), Sum: pos.Sum, SumKnown: pos.SumKnown}); err != nil {
		return err
	}
	// The tail gets the records before the position passes them (see
	// tailFile: a tail that does not reach the position is not used).
	if err := pf.tail.add(pos.LogID, b.first, b.recs); err != nil {
		return err
	}
	db, release, err := s.m.cfg.Pool.Acquire(ctx, s.cfg.DBPath)
	if err != nil {
		return err
	}
	err = db.ApplyPages(ctx, b.sorted(), b.size)
	release()
	if err != nil {
		return fmt.Errorf("apply frames %d..%d: %w", b.first, b.last, err)
	}
	*pos = position{LogID: pos.LogID, Next: next, Sum: b.sum, SumKnown: true}
	if err := pf.write(*pos); err != nil {
		return err
	}
	if err := s.ackApplied(pf, *pos); err != nil { // sync = "replica" (syncack.go; h-write)
		return err
	}
	s.txs.Add(uint64(b.txs))
	s.batches.Add(1)
	s.applyDone(next)
	return nil
}

// applyDone publishes a new applied position: waiting readers wake, the
// site's cache is dropped.
func (s *site) applyDone(next uint64) {
	s.applied.Store(next)
	s.broadcast()
	if s.m.cfg.OnApply != nil {
		s.m.cfg.OnApply(s.cfg.Name)
	}
}

// markCaughtUp notes the time if this replica has applied all the
// primary has, as far as it knows (see site.lag).
func (s *site) markCaughtUp() {
	if s.known.Load() <= s.applied.Load() {
		s.caughtUp.Store(time.Now().UnixNano())
	}
}

// setState records where the stream is (and that it has not failed).
func (s *site) setState(st ReplicaState) { s.status.Store(&replicaStatus{state: st}) }

// setFailed records that the stream's last attempt failed with err.
func (s *site) setFailed(err error) { s.status.Store(&replicaStatus{state: ReplicaFailed, err: err}) }

// broadcast wakes everyone waiting on the site.
func (s *site) broadcast() {
	s.wakeMu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.wakeMu.Unlock()
}

// recover handles the primary's refusal to stream from pos (see
// refusals): bootstrap from its snapshot, or start over when its log is
// not the one we follow.
func (s *site) recover(ctx context.Context, pf *posFile, pos *position, why error) error {
	log := s.m.log.With("site", s.cfg.Name)
	switch {
	case errors.Is(why, errDiverged), errors.Is(why, errNeedRepair), errors.Is(why, ephpm.ErrNeedSnapshot):
		// A copy with pages is repaired by page diff (repair.go), one
		// without bootstraps from the snapshot.
		has, err := s.hasPages()
		if err != nil {
			return err
		}
		if has || pos.Repairing {
			err := s.repair(ctx, pf, pos, why)
			if err == nil {
				return errRestart
			}
			if !errors.Is(err, errNoRepair) || !errors.Is(why, ephpm.ErrNeedSnapshot) {
				return fmt.Errorf("repair: %w", err)
			}
			// An older primary: its snapshot, as before.
		}
		if !errors.Is(why, ephpm.ErrNeedSnapshot) && pos.LogID != "" {
			// Nothing local to repair: start over; the primary then
			// streams from frame 0 or says where its snapshot is.
			*pos = position{}
			if err := pf.restart(*pos); err != nil {
				return err
			}
			s.logID.Store("")
			s.applied.Store(0)
			return errRestart
		}
		log.Info("replica bootstrapping from the primary's snapshot", "position", pos.Next)
		if err := s.bootstrap(ctx, pf, pos); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		return errRestart
	case errors.Is(why, errLogReset), errors.Is(why, errAhead):
		// Not the history we hold: start over from the primary's first
		// frame (the whole database) or its snapshot.
		log.Warn("primary's log is not the one this replica follows: re-bootstrapping", "why", refusalWord(why), "log_id", pos.LogID)
		*pos = position{}
		if err := pf.restart(*pos); err != nil {
			return err
		}
		s.logID.Store("")
		s.applied.Store(0)
		return errRestart
	}
	return why
}

// bootstrap replaces the local copy with the primary's snapshot, as one
// transaction (readers keep the old copy until it commits).
func (s *site) bootstrap(ctx context.Context, pf *posFile, pos *position) error {
	s.setState(ReplicaBootstrapping)
	select {
	case s.m.boots <- struct{}{}:
		defer func() { <-s.m.boots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	resp, err := s.get(ctx, "/_ephpm/repl/v1/snapshot", url.Values{"site": {s.cfg.Name}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("snapshot: primary answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	logID := resp.Header.Get(hdrLogID)
	end, err1 := strconv.ParseUint(resp.Header.Get(hdrSnapEnd), 10, 64)
	pages, err2 := strconv.ParseUint(resp.Header.Get(hdrSnapPages), 10, 32)
	if len(logID) != 36 || err1 != nil || err2 != nil || pages == 0 {
		return errors.New("snapshot: bad headers")
	}
	if err := pf.write(position{LogID: logID, Next: pos.Next, Intent: end + 1}); err != nil {
		return err
	}
	db, release, err := s.m.cfg.Pool.Acquire(ctx, s.cfg.DBPath)
	if err != nil {
		return err
	}
	// Page by page from the wire into one local transaction.
	r := bufio.NewReaderSize(resp.Body, 256<<10)
	no := uint32(0)
	err = db.ApplyPagesFunc(ctx, uint32(pages), func() (sqlite.Page, bool, error) {
		if no == uint32(pages) {
			return sqlite.Page{}, false, nil
		}
		no++
		p := make([]byte, sqlite.PageSize)
		if _, err := io.ReadFull(r, p); err != nil {
			return sqlite.Page{}, false, fmt.Errorf("snapshot page %d: %w", no, err)
		}
		return sqlite.Page{No: no, Data: p}, true, nil
	})
	release()
	if err != nil {
		return fmt.Errorf("apply snapshot: %w", err)
	}
	*pos = position{LogID: logID, Next: end + 1}
	if sum, err := strconv.ParseUint(resp.Header.Get(hdrSnapSum), 10, 64); err == nil {
		pos.Sum, pos.SumKnown = sum, true
	}
	if err := pf.restart(*pos); err != nil {
		return err
	}
	s.logID.Store(logID)
	s.applyDone(end + 1)
	return nil
}
