package replication

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

// Leases (DESIGN.md, "Leases: no write without one"): on a cluster node
// (Config.Leases) a site's primary commits a client's write only while
// it holds the lease placement last gave it — for the site's epoch, and
// before its end on this node's monotonic clock. The directory names a
// new primary only after the old lease has run out, so two nodes never
// commit for the same site at once. Static sites (epoch 0) are never
// gated.

// ErrNoLease is ephpm.ErrNoLease: a cluster site's primary without its
// lease refuses writes at once (reads are still served).
var ErrNoLease = ephpm.ErrNoLease

// lease is what SetLease gave: until (monotonic) and the granted epoch
// of each site this node is primary for.
type lease struct {
	until time.Time
	sites map[string]uint64
}

// LeaseError is a write refused for want of a lease: it names the site
// and why. errors.Is(err, ErrNoLease) holds.
type LeaseError struct {
	Site   string
	Reason string
	// Moved: the lease is held but no longer names the site at its
	// epoch here — the directory gave the site to another node (a move
	// or a failover) and this node's SetSites is about to follow.
	Moved bool
}

func (e *LeaseError) Error() string {
	return "site " + e.Site + ": " + e.Reason + "; writes refused, reads still served"
}

func (e *LeaseError) Is(target error) bool { return target == ephpm.ErrNoLease }

// Reasons of a LeaseError.
const (
	reasonNoLease = "this node holds no primary lease yet (the cluster directory has not granted one)"
	reasonLapsed  = "this node's primary lease lapsed (the cluster directory is unreachable)"
)

// SetLease tells the Manager this node's lease: until (on this node's
// monotonic clock: a time.Time from time.Now()+d) and the sites whose
// primary it is, each with its epoch. A cluster site (SiteConfig.Epoch
// != 0) on this node as primary may commit only while time.Now() < until
// AND sites[name] == its SiteConfig.Epoch. Sites with Epoch 0 (static,
// no cluster) are never gated. Before the first SetLease, cluster sites
// are not writable. Without Config.Leases it does nothing.
//
// Placement calls it from one goroutine, never concurrently. It does not
// block: open databases' gates are set at once (writers waiting at a
// fence wake), and the Manager's lease timer closes them when until
// passes, whether or not another SetLease comes.
func (m *Manager) SetLease(until time.Time, sites map[string]uint64) {
	if !m.cfg.Leases {
		return
	}
	m.lease.Store(&lease{until: until, sites: maps.Clone(sites)})
	m.regateAll()
	select {
	case m.leaseSet <- struct{}{}:
	default: // the timer is already told
	}
}

// leaseErr is why a primary site may not commit now, nil when it may.
// It runs inside SQLite's commit hook at every client commit: atomic
// loads, a map lookup and one read of the clock; it allocates only to
// refuse.
func (m *Manager) leaseErr(s *site) error {
	epoch := s.epoch.Load()
	if !m.cfg.Leases || epoch == 0 {
		return nil
	}
	l := m.lease.Load()
	if l == nil {
		return &LeaseError{Site: s.cfg.Name, Reason: reasonNoLease}
	}
	// Time first: a lease that ran out (placement passes the zero lease
	// then) is a lapse, not a move.
	if !time.Now().Before(l.until) {
		return &LeaseError{Site: s.cfg.Name, Reason: reasonLapsed}
	}
	if granted, ok := l.sites[s.cfg.Name]; !ok {
		return &LeaseError{Site: s.cfg.Name, Reason: "this node's primary lease does not name the site", Moved: true}
	} else if granted != epoch {
		return &LeaseError{Site: s.cfg.Name, Reason: fmt.Sprintf("this node's primary lease is for epoch %d, the site is at epoch %d", granted, epoch), Moved: true}
	}
	return nil
}

// gateDB sets a site's open database's hooks from the site: the lease's
// gates and the commit ack (sync = "replica", the audit).
func (m *Manager) gateDB(s *site, db *sqlite.DB) {
	m.gateLease(s, db)
	m.gateAck(s, db)
}

// gateLease sets a primary's open database from the lease: the commit
// check (the hard gate: a commit without the lease rolls back) and the
// refusing gate in front of AcquireWriter (fail fast, never wait). On a
// replica's database both are lifted: it refuses writes as read-only.
func (m *Manager) gateLease(s *site, db *sqlite.DB) {
	if !m.cfg.Leases {
		return
	}
	// Deciding and setting are one step: a gating from a lease that was
	// just replaced must not land after the new one's.
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	if s.cfg.Role != ephpm.RolePrimary {
		db.SetCommitCheck(nil)
		db.SetRefused(nil)
		return
	}
	db.SetCommitCheck(func() error { return m.leaseErr(s) })
	err := m.leaseErr(s)
	if le, ok := err.(*LeaseError); ok && le.Moved {
		// The site left this node in the directory: the demotion that
		// SetSites brings next wakes the writers waiting at a move's
		// fence with ErrNotPrimary, and the MySQL session forwards them
		// to the new primary. Refusing them now would fail writes a
		// move promises to carry over; the commit check still refuses
		// any commit meanwhile.
		err = nil
	}
	if old := db.Refused(); (old == nil) != (err == nil) || old != nil && old.Error() != err.Error() {
		db.SetRefused(err) // only on a change: it wakes the writers at the gate
	}
}

// regateAll sets every open database's gates and hooks from its site
// and the lease as they are now: after SetLease, SetSites, and when the
// lease runs out.
func (m *Manager) regateAll() {
	m.mu.Lock()
	list := make([]*site, 0, len(m.sites))
	for _, s := range m.sites {
		list = append(list, s)
	}
	m.mu.Unlock()
	for _, s := range list {
		m.cfg.Pool.IfOpen(s.cfg.DBPath, func(db *sqlite.DB) { m.gateDB(s, db) })
	}
}

// leaseTimer closes the gates exactly when the lease runs out: this
// node's clock decides, not a later SetLease (which may never come when
// the directory is unreachable). It runs in the Manager's group.
func (m *Manager) leaseTimer(ctx context.Context) error {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var fired *lease // the lease whose end was already acted on
	for {
		var expire <-chan time.Time
		l := m.lease.Load()
		if l != nil && l != fired {
			t.Reset(time.Until(l.until))
			expire = t.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.leaseSet:
		case <-expire:
			fired = l
			m.regateAll()
			m.log.Warn("primary lease ran out: writes of cluster sites refused until it is granted again")
		}
		t.Stop()
	}
}

// refuseNoLease answers a write request on a primary without its lease:
// 503, Retry-After and a plain-text body naming the site and the reason,
// before PHP runs. It reports whether it answered.
func (m *Manager) refuseNoLease(s *site, w http.ResponseWriter) bool {
	err := m.leaseErr(s)
	if le, ok := err.(*LeaseError); err == nil || ok && le.Moved {
		// Moved: PHP's writes wait for the demotion and are forwarded
		// (gateLease); the commit check refuses anything else.
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(DefaultRetryAfter))
	http.Error(w, err.Error(), http.StatusServiceUnavailable)
	return true
}
