package replication

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/sqlite"
)

// Rejoin (DESIGN.md, "Rejoin: divergence, quarantine and repair"): a
// replica's position names the last frame it applied by number and by
// its rolling checksum, so a primary can tell whether the replica
// follows its history. A replica that does not (its primary died after
// frames the new one never had) keeps a copy of its database aside and
// is repaired page by page (repair.go).

var (
	// errDiverged: the replica applied frames the primary's log does not
	// have (the checksum at its position differs, or it is past the
	// log's end): its copy is quarantined, then repaired.
	errDiverged = errors.New("the replica's history diverged from the primary's")
	// errNeedRepair: the primary cannot check the replica's position
	// (before its log's start, another log ID, no checksum): the copy is
	// repaired by page diff (a snapshot if it has no pages yet).
	errNeedRepair = errors.New("the primary cannot check the replica's position: repair by page diff")
)

// checkRejoin is the primary's answer to a replica that understands
// rejoin (it sent rejoin=1) at (id, from, sum): nil to stream on,
// errDiverged or errNeedRepair. hasPages: the replica has a database
// but no position (a page diff is cheaper than the whole log).
func checkRejoin(l *framelog.Log, id string, from, sum uint64, sumKnown, hasPages bool) error {
	start, next := l.Start(), l.Next()
	switch {
	case id == "" || from == 0:
		if start == 0 && !hasPages {
			return nil // the whole database is the log's first transaction
		}
		return errNeedRepair
	case id != l.ID():
		return errNeedRepair
	case from > next:
		return errDiverged
	case from < start:
		return errNeedRepair
	}
	ours, ok, err := l.SumBefore(from)
	if err != nil {
		return err
	}
	switch {
	case ok && sumKnown && ours == sum:
		return nil
	case ok && sumKnown:
		return errDiverged
	case ok:
		return errNeedRepair // the replica cannot say which history it holds
	case sumKnown:
		return errNeedRepair // we cannot say
	}
	// Neither side knows (a log adopted without a checksum, a replica
	// repaired to it): a repair could not tell more.
	return nil
}

// quarantine keeps the local copy as it is before a repair changes it:
// a consistent page image, written to <db>-diverged-<epoch>-<UTC
// time>.db beside the database, synced with its directory. It needs no
// checkpoint: a read transaction sees the WAL's commits too. The copy is
// marked as a rollback-journal database so sqlite3 opens it read-only
// without a -wal beside it.
func (s *site) quarantine(ctx context.Context) (string, error) {
	src := s.cfg.DBPath
	if st, err := os.Stat(src); err != nil || st.Size() == 0 {
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return "", nil // nothing to keep
		}
		return "", fmt.Errorf("quarantine: %w", err)
	}
	snap, err := sqlite.OpenPageSnapshot(ctx, src)
	if err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	defer snap.Close() // only read
	name := fmt.Sprintf("%s-diverged-%d-%s.db", src, s.epoch.Load(), time.Now().UTC().Format("20060102T150405.000Z"))
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	fail := func(err error) (string, error) {
		return "", errors.Join(fmt.Errorf("quarantine: %w", err), f.Close(), os.Remove(tmp))
	}
	want := uint32(1)
	err = snap.Each(ctx, func(no uint32, data []byte) error {
		if no != want {
			return fmt.Errorf("page %d where %d was expected", no, want)
		}
		want++
		if no == 1 && len(data) > 19 {
			data = append([]byte(nil), data...)
			data[18], data[19] = 1, 1 // legacy (rollback journal) format
		}
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return "", errors.Join(fmt.Errorf("quarantine: %w", err), os.Remove(tmp))
	}
	if err := os.Rename(tmp, name); err != nil {
		return "", errors.Join(fmt.Errorf("quarantine: %w", err), os.Remove(tmp))
	}
	if err := syncDir(filepath.Dir(src)); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	s.m.rejoin.add(s.cfg.Name, 1, 0)
	return name, nil
}

// Quarantined lists the copies a replica of site kept when its history
// diverged from its primary's (oldest first): <db>-diverged-*.db beside
// the database, for an operator to inspect (sqlite3 opens them) and
// remove.
func (m *Manager) Quarantined(site string) []string {
	s := m.site(site)
	if s == nil {
		return nil
	}
	return quarantined(s.cfg.DBPath)
}

func quarantined(dbPath string) []string {
	ents, err := os.ReadDir(filepath.Dir(dbPath))
	if err != nil {
		return nil // listing only: nothing depends on it
	}
	prefix := filepath.Base(dbPath) + "-diverged-"
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ".db") {
			out = append(out, filepath.Join(filepath.Dir(dbPath), n))
		}
	}
	slices.Sort(out) // the names carry the epoch and time
	return out
}

// exPrimaryPos: a node that was the site's primary and comes back as a
// replica without a clean demotion (killed, or restarted while it was
// partitioned) has no position file but still its frame log. The log's
// end (after it logged what the WAL still held) is its position, marked
// ExPrimary, written durably before the log is removed; if the log
// cannot be read, an empty ExPrimary position sends it to repair with
// quarantine.
func (s *site) exPrimaryPos(ctx context.Context) error {
	_, exists, err := readPos(s.cfg.DBPath)
	if err != nil || exists {
		return err
	}
	dir := framelog.Dir(s.cfg.DBPath)
	dirs := []string{dir, dir + ".adopt", dir + ".old"}
	found := false
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			found = true
		}
	}
	if !found {
		return nil
	}
	log := s.m.log.With("site", s.cfg.Name)
	pos := position{ExPrimary: true}
	db, release, err := s.m.cfg.Pool.Acquire(ctx, s.cfg.DBPath)
	if err != nil {
		return err
	}
	ferr := framelog.Final(ctx, db, framelog.Options{Logger: s.m.log, CompactFrames: s.m.cfg.CompactFrames}, func(l *framelog.Log) error {
		next, sum := l.End()
		pos = position{LogID: l.ID(), Next: next, Sum: sum, SumKnown: true, ExPrimary: true}
		// Its last frames become the tail, as a demotion's do: they
		// name the fork if the new primary does not have them. Without
		// them only the fork's log line says "unknown".
		start, recs, err := lastFrames(l, s.m.tailFrames())
		if err == nil {
			err = writeTail(s.cfg.DBPath, l.ID(), start, recs, s.m.tailFrames())
		}
		if err != nil {
			log.Warn("former primary: keeping the log's last frames", "err", err)
		}
		return nil
	})
	release()
	if ferr != nil {
		pos = position{ExPrimary: true}
		log.Warn("former primary: its frame log cannot be read; the copy will be quarantined and repaired", "err", ferr)
	}
	if err := writePosDurable(s.cfg.DBPath, pos); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			// The position rules from here (a promotion replaces the
			// directory whatever it holds).
			log.Warn("removing the former primary's log", "dir", d, "err", err)
		}
	}
	log.Warn("this node was the site's primary and was replaced without a clean demotion: its history is checked against the new primary",
		"log_id", pos.LogID, "next", pos.Next)
	return nil
}

// rejoinStats counts, per site, diverged copies quarantined and the
// bytes repairs moved (both directions).
type rejoinStats struct {
	mu       sync.Mutex
	diverged map[string]uint64
	bytes    map[string]uint64
	last     map[string]RepairStats
}

func (r *rejoinStats) setLast(site string, st RepairStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]RepairStats{}
	}
	r.last[site] = st
}

// LastRepair is what the last page-diff repair of site on this node
// moved.
func (m *Manager) LastRepair(site string) (RepairStats, bool) {
	m.rejoin.mu.Lock()
	defer m.rejoin.mu.Unlock()
	st, ok := m.rejoin.last[site]
	return st, ok
}

func (r *rejoinStats) add(site string, diverged, bytes uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.diverged == nil {
		r.diverged, r.bytes = map[string]uint64{}, map[string]uint64{}
	}
	r.diverged[site] += diverged
	r.bytes[site] += bytes
}

// RepairBytes is how many bytes page-diff repairs of site moved on this
// node (requests and answers), since it started.
func (m *Manager) RepairBytes(site string) uint64 {
	m.rejoin.mu.Lock()
	defer m.rejoin.mu.Unlock()
	return m.rejoin.bytes[site]
}

// RejoinCollector exports ephpm_replication_diverged_total and
// ephpm_replication_repair_bytes_total per site.
type RejoinCollector struct {
	m               *Manager
	diverged, bytes *prometheus.Desc
}

// NewRejoinCollector returns the rejoin metrics of m (register it beside
// NewCollector's).
func NewRejoinCollector(m *Manager) *RejoinCollector {
	return &RejoinCollector{m: m,
		diverged: prometheus.NewDesc("ephpm_replication_diverged_total", "Local copies quarantined because their history diverged from the primary's.", []string{"site"}, nil),
		bytes:    prometheus.NewDesc("ephpm_replication_repair_bytes_total", "Bytes moved by page-diff repairs (both directions).", []string{"site"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *RejoinCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.diverged; ch <- c.bytes }

// Collect implements prometheus.Collector.
func (c *RejoinCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.rejoin.mu.Lock()
	defer c.m.rejoin.mu.Unlock()
	for site, n := range c.m.rejoin.diverged {
		ch <- prometheus.MustNewConstMetric(c.diverged, prometheus.CounterValue, float64(n), site)
	}
	for site, n := range c.m.rejoin.bytes {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(n), site)
	}
}
