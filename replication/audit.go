package replication

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// The commit audit is a test aid (DESIGN.md, "Audit of acknowledged
// commits"): with EPHPM_COMMIT_AUDIT=<path>, a primary appends one JSON
// line per commit acknowledged to a client — {"node","site","epoch",
// "frame","t"} — so that fault tests can check that no two nodes
// acknowledged commits of the same site at the same epoch and frame (a
// split brain). Unset, it costs one nil check per commit.

// AuditEnv names the audit file.
const AuditEnv = "EPHPM_COMMIT_AUDIT"

// auditFlush is how often buffered lines reach the file at most later.
const auditFlush = 100 * time.Millisecond

// AuditRecord is one line of the audit file.
type AuditRecord struct {
	Node  string `json:"node"`
	Site  string `json:"site"`
	Epoch uint64 `json:"epoch"`
	Frame uint64 `json:"frame"` // the commit's last frame in the site's log
	T     int64  `json:"t"`     // wall clock, unix nanoseconds
}

type auditLog struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error // the first write error: reported once, at Close

	closeOnce sync.Once
	closeErr  error
}

func openAudit(path string) (*auditLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("commit audit %s: %w", path, err)
	}
	return &auditLog{f: f, w: bufio.NewWriter(f)}, nil
}

func (a *auditLog) add(node, site string, epoch, frame uint64) {
	b, err := json.Marshal(AuditRecord{Node: node, Site: site, Epoch: epoch, Frame: frame, T: time.Now().UnixNano()})
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		_, err = a.w.Write(append(b, '\n'))
	}
	if err != nil && a.err == nil {
		a.err = err
	}
}

func (a *auditLog) flush() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.w.Flush(); err != nil && a.err == nil {
		a.err = err
	}
	return a.err
}

// close flushes and closes the file (once; later lines are dropped).
func (a *auditLog) close() error {
	a.closeOnce.Do(func() {
		err := a.flush()
		a.closeErr = errors.Join(err, a.f.Close())
	})
	return a.closeErr
}

// startAudit opens EPHPM_COMMIT_AUDIT, if set, and flushes it every
// auditFlush in the Manager's group.
func (m *Manager) startAudit() error {
	path := os.Getenv(AuditEnv)
	if path == "" {
		return nil
	}
	a, err := openAudit(path)
	if err != nil {
		return err
	}
	m.audit = a
	reported := false
	m.loops.Every(auditFlush, func(context.Context) {
		if err := a.flush(); err != nil && !reported {
			reported = true // Close returns it too
			m.log.Error("commit audit: write failed", "err", err)
		}
	})
	return nil
}
