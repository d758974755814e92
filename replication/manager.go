// Package replication keeps every node's copy of every replicated site's
// database: on a site's primary it owns the site's frame log and serves
// it; on a replica it streams the primary's frames and applies each
// transaction atomically, and it forwards writes (single statements from
// the MySQL front, whole requests from the HTTP front) to the primary.
//
// Between ephpm nodes everything travels over one HTTP/2 connection per
// node pair (h2c, or h2 over TLS): each replicated site is one long-lived
// stream on it, so a thousand sites share one TCP connection.
package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/internal/defaults"
	"github.com/ephpm/ephpm/internal/task"
	"github.com/ephpm/ephpm/sqlite"
)

// Defaults.
const (
	// DefaultWaitApplied bounds how long a replica holds a read back for
	// a client's own write to arrive before it sends the read to the
	// primary instead (read-your-writes).
	DefaultWaitApplied = 2 * time.Second
	// DefaultBatchFrames is how many frames a stream message carries at
	// most (plus the rest of a transaction).
	DefaultBatchFrames = 1024
	// DefaultPing is how often an idle stream says it is alive; a replica
	// that hears nothing for 3 pings reconnects.
	DefaultPing = 5 * time.Second
	// DefaultMaxBootstraps is how many snapshots a replica node copies at
	// once.
	DefaultMaxBootstraps = 4
	// DefaultSessionIdle ends a forwarded MySQL session (rolling back its
	// transaction) after this long without a statement.
	DefaultSessionIdle = 30 * time.Second
	// DefaultFenceTimeout is how long a fence may stand without being
	// lifted or followed by a demotion before the node asks
	// Config.Reconfirm whether it is still the site's primary.
	DefaultFenceTimeout = 10 * time.Second
	// DefaultDialTimeout bounds opening a connection to another node
	// (TCP connect, and the TLS handshake after it).
	DefaultDialTimeout = 3 * time.Second
	// DefaultPeerPingIdle is how long a connection to another node may
	// go without receiving a frame before the client pings it; a ping
	// unanswered for DefaultPeerPingTimeout closes the connection and
	// fails every request on it. Together they bound how long a request
	// waits on a peer that does not answer at all (~5 s), while a peer
	// that answers pings may take as long as its PHP needs. See DESIGN.md,
	// "An unreachable primary".
	DefaultPeerPingIdle = 2 * time.Second
	// DefaultPeerPingTimeout: see DefaultPeerPingIdle.
	DefaultPeerPingTimeout = 3 * time.Second
)

// SiteConfig is one replicated site as this node sees it.
type SiteConfig struct {
	Name       string // normalized domain
	DBPath     string
	Role       ephpm.Role // ephpm.RolePrimary or ephpm.RoleReplica
	PrimaryURL string     // replica: the primary's replication endpoint
	// Epoch is the directory's epoch of the site's primary (Status shows
	// it). A change of Epoch alone changes nothing else: the site keeps
	// its stream, log and fence.
	Epoch uint64
	// Sync: when the primary acknowledges a commit (syncack.go); on a
	// replica, SyncReplica makes it sync and ack each batch.
	Sync SyncMode
}

// sameSite reports whether a and b differ in nothing but their epoch (a
// change of Sync is a change: the site is replaced).
func sameSite(a, b SiteConfig) bool {
	a.Epoch, b.Epoch = 0, 0
	return a == b
}

// Config configures a Manager.
type Config struct {
	Node  string // this node's name, for logs and loop detection
	Token string // shared secret every node-to-node request carries
	Pool  *sqlite.Pool
	// Client talks to primaries; nil means an h2c client.
	Client        *http.Client
	CompactFrames int
	// TailFrames is how many applied frames a replica keeps to start its
	// log with if promoted (DefaultTailFrames when 0).
	TailFrames int
	// MaxBootstraps bounds the snapshots a node copies at once
	// (DefaultMaxBootstraps when 0): a node joining a cluster of many
	// sites copies them a few at a time, not all at once.
	MaxBootstraps int
	// WritePaths always go to the primary, whatever the method: a path
	// ending in "/" as a prefix, any other exactly ([replication]
	// write_paths, whose default is config.DefaultWritePaths).
	WritePaths  []string
	WaitApplied time.Duration // DefaultWaitApplied when 0

	// The hooks below may each be called from many goroutines at once
	// (for different sites, or requests). None is called with a lock of
	// the Manager held.

	// OnApply runs after a replica applied a site's transactions and
	// recorded its new position (the KV store drops the site's cached
	// objects). It runs on that site's stream goroutine: calls for one
	// site come one at a time, in order; other sites' concurrently. It
	// must not block: the site's replication waits for it (other sites'
	// do not). It may read the Manager (Status, Applied, Role) but must
	// not call SetSites or Close, which wait for the stream, nor wait
	// for the site to advance (WaitApplied).
	OnApply func(site string)
	// OpenSession opens a MySQL session on a site this node is primary
	// for, to run the statements a replica forwards. It runs on the HTTP
	// handler goroutine of the replica's first forwarded statement (POST
	// /_ephpm/repl/v1/exec), concurrently with others; it may block to
	// open the site's database, bounded by ctx (that request's). The
	// session it returns is used by one goroutine at a time; see
	// StatementSession.
	OpenSession func(ctx context.Context, site string) (StatementSession, error)
	// SiteOf names the site serving a Host header (aliases included). It
	// runs on HTTP handler goroutines, for every request forwarded to
	// this node and every response stamped with the log position: it
	// must be quick and must not block. It may read the Manager.
	SiteOf func(host string) (string, bool)
	// FenceTimeout is DefaultFenceTimeout when 0.
	FenceTimeout time.Duration
	// Reconfirm asks the directory whether this node is still the site's
	// primary, once a fence has stood for FenceTimeout with neither
	// Unfence nor a demotion (the move that fenced it went quiet). The
	// node re-confirms itself there by bumping the epoch, so that a late
	// takeover fails. true lifts the fence; false leaves it (a demotion
	// will come); an error is asked again after FenceTimeout/4, the
	// fence standing meanwhile. It runs on a goroutine of the Manager's
	// (one per fence), may block (bounded by ctx, which ends with the
	// fence or Close), and may call Unfence and SetSites. nil: the fence
	// stands until Unfence or a demotion.
	Reconfirm func(ctx context.Context, site string) (stillPrimary bool, err error)
	// Leases is true on cluster nodes: a cluster site's primary (Epoch
	// != 0) takes writes only while it holds the lease SetLease gives
	// (lease.go). false: SetLease does nothing and nothing is gated.
	Leases bool
	// SyncTimeout bounds a sync = "replica" commit's wait for a replica
	// (DefaultSyncTimeout when 0).
	SyncTimeout time.Duration
	Logger      *slog.Logger
}

// Manager is the node's replication: one per process.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client

	setMu  sync.Mutex // serializes SetSites and Close
	mu     sync.Mutex
	sites  map[string]*site
	byPath map[string]*site

	// loops owns every goroutine the manager starts: each replica
	// site's stream and the expiry of forwarded sessions.
	loops  *task.Group
	closed bool // Close was called (guarded by setMu): no stream starts
	// goMu guards stopping, set when Close begins: goroutines started
	// outside setMu (a fence's watch) check it before joining loops.
	goMu     sync.Mutex
	stopping bool

	sessions *sessions
	boots    chan struct{} // a slot per snapshot being copied (MaxBootstraps)
	frameKey []byte        // MACs the read-your-writes cookie

	connMu sync.Mutex
	conns  map[string]*primaryConn // by primary URL

	// lease: what SetLease gave last (nil: none yet); leaseSet wakes the
	// lease timer.
	lease    atomic.Pointer[lease]
	leaseSet chan struct{}
	leaseMu  sync.Mutex // serializes gateLease (taken after mu, never before)

	// audit: EPHPM_COMMIT_AUDIT's file (audit.go), nil when unset.
	audit *auditLog

	rejoin rejoinStats // quarantined copies and repair bytes (diverge.go)
}

// primaryConn makes the streams to one primary share a connection: the
// first request after a failure goes alone, so that concurrent streams
// do not each dial their own.
type primaryConn struct {
	mu sync.Mutex
	ok bool
}

// site is the replication state of one site on this node.
type site struct {
	cfg SiteConfig
	m   *Manager
	// epoch is cfg.Epoch as SetSites last gave it (it changes in place).
	epoch atomic.Uint64
	// retired is closed when SetSites replaces or removes the site: the
	// streams it serves end, so replicas reconnect to what replaced it.
	retired chan struct{}

	// fence (primary): new writers wait (sqlite.DB.SetFenced on every
	// instance of the database); fenceStop ends the fence's Reconfirm
	// watch. Guarded by fenceMu.
	fenceMu   sync.Mutex
	fenced    bool
	fenceStop context.CancelFunc
	// newer (primary, fenceMu): the highest epoch of the site a peer
	// sent; above epoch, this node was replaced and its writes wait
	// (fencing by epoch, epoch.go).
	newer uint64
	// gateMu serializes deciding and setting the database's gate when a
	// fence is lifted against an epoch fence coming (regate).
	gateMu sync.Mutex

	// primary: the log of the open database
	logMu     sync.Mutex
	flog      *framelog.Log
	flogDB    *sqlite.DB
	logClosed chan struct{}
	// logHeir is the site that took this one's open log when SetSites
	// replaced it in place (a change other than the epoch): the log's
	// OnAppend, bound to this site, moves that one's position and wakes
	// its streams (appended).
	logHeir atomic.Pointer[site]

	// replica
	stop    context.CancelFunc
	done    chan struct{}
	applied atomic.Uint64 // the next frame this copy needs (= frames applied)
	known   atomic.Uint64 // the primary's Next as last heard
	lagNs   atomic.Int64  // primary send → applied, last batch
	// caughtUp is when (unix ns) this replica last knew it had applied
	// everything the primary had: while frames are pending or the stream
	// is down, the lag is the time since.
	caughtUp atomic.Int64
	logID    atomic.Value // string
	status   atomic.Pointer[replicaStatus]
	wakeMu   sync.Mutex
	wake     chan struct{} // closed and replaced after every apply
	txs      atomic.Uint64 // transactions applied
	batches  atomic.Uint64

	// fwdFrame (replica): the highest primary position a statement
	// forwarded from here reached; a request that began on this node as
	// primary and wrote through forwarding after its demotion is stamped
	// with it (see logNext).
	fwdFrame atomic.Uint64

	// sync: sync = "replica" (syncack.go)
	sync syncState

	fwdStatements atomic.Uint64
	fwdRequests   atomic.Uint64
	fwdNanos      atomic.Int64
	fwdErrors     atomic.Uint64
}

// New returns a Manager; call SetSites to give it the replicated sites.
func New(cfg Config) (*Manager, error) {
	if len(cfg.Token) < 16 {
		return nil, errors.New("replication: auth_token must be at least 16 characters")
	}
	if cfg.Pool == nil {
		return nil, errors.New("replication: Pool is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WaitApplied <= 0 {
		cfg.WaitApplied = DefaultWaitApplied
	}
	if cfg.FenceTimeout <= 0 {
		cfg.FenceTimeout = DefaultFenceTimeout
	}
	m := &Manager{
		cfg: cfg, log: cfg.Logger, client: cfg.Client,
		sites: map[string]*site{}, byPath: map[string]*site{}, conns: map[string]*primaryConn{},
		frameKey: frameKey(cfg.Token),
		leaseSet: make(chan struct{}, 1),
	}
	if m.client == nil {
		m.client = NewClient(nil)
	}
	m.loops = task.NewGroup(context.Background())
	m.sessions = newSessions(m)
	m.boots = make(chan struct{}, defaults.Positive(cfg.MaxBootstraps, DefaultMaxBootstraps))
	if err := m.startAudit(); err != nil {
		return nil, err
	}
	if cfg.Leases {
		m.loops.Go(m.leaseTimer)
	}
	return m, nil
}

// NewClient returns an HTTP client for node-to-node traffic: HTTP/2 with
// prior knowledge on plain connections (h2 by ALPN over TLS), so every
// site's stream to the same primary shares one connection. A peer that
// cannot be connected to fails a request within DefaultDialTimeout; one
// whose connection goes silent (a partition, a frozen process) within
// DefaultPeerPingIdle + DefaultPeerPingTimeout, whatever the request.
func NewClient(tlsRoot *http.Transport) *http.Client {
	tr := tlsRoot
	if tr == nil {
		tr = &http.Transport{}
	}
	if tr.DialContext == nil {
		tr.DialContext = (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 15 * time.Second}).DialContext
	}
	if tr.TLSHandshakeTimeout == 0 {
		tr.TLSHandshakeTimeout = DefaultDialTimeout
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP2(true)
	tr.Protocols = &p
	tr.HTTP2 = &http.HTTP2Config{
		MaxConcurrentStreams: 10000,
		SendPingTimeout:      DefaultPeerPingIdle,
		PingTimeout:          DefaultPeerPingTimeout,
	}
	tr.ForceAttemptHTTP2 = true
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr}
}

// SetSites replaces the set of replicated sites: replicas start or stop
// streaming, roles change. A primary that becomes a replica is demoted
// first (its log closes at its end, which becomes the replica's
// position, and writers waiting at its fence fail with
// ephpm.ErrNotPrimary so that they forward); a replica that becomes the
// primary is promoted (its log continues the one it followed, from where
// it applied). It returns when both are done. Their errors are logged:
// the site takes its new role regardless (a replica that could not keep
// its position bootstraps).
func (m *Manager) SetSites(list []SiteConfig) {
	m.setMu.Lock()
	defer m.setMu.Unlock()
	// Find what changes; stop the old streams without holding mu (a
	// stream may be opening its database, whose open hook takes mu).
	m.mu.Lock()
	want := map[string]SiteConfig{}
	var changed []SiteConfig
	var stop []*site
	for _, c := range list {
		want[c.Name] = c
		old := m.sites[c.Name]
		if old != nil && sameSite(old.cfg, c) {
			old.epoch.Store(c.Epoch)
			if c.Role == ephpm.RolePrimary {
				old.liftEpochFence()
			}
			continue
		}
		changed = append(changed, c)
		if old != nil {
			stop = append(stop, old)
		}
	}
	for name, s := range m.sites {
		if _, ok := want[name]; !ok {
			stop = append(stop, s)
		}
	}
	m.mu.Unlock()
	type fence struct {
		fenced bool
		newer  uint64
	}
	carryFence := map[string]fence{}
	for _, s := range stop {
		m.stopSite(s)
		close(s.retired)
		c, ok := want[s.cfg.Name]
		if s.cfg.Role == ephpm.RolePrimary && ok && c.DBPath == s.cfg.DBPath {
			switch c.Role {
			case ephpm.RoleReplica:
				if err := m.demote(s); err != nil {
					m.log.Error("demoting the site: its replica will bootstrap", "site", s.cfg.Name, "err", err)
				}
			case ephpm.RolePrimary:
				s.fenceMu.Lock()
				carryFence[c.Name] = fence{s.fenced, s.newer}
				s.fenceMu.Unlock()
			}
		}
		if s.endFence() && !ok {
			// No longer replicated here: nothing will lift the gate.
			m.cfg.Pool.IfOpen(s.cfg.DBPath, func(db *sqlite.DB) { db.SetFenced(false) })
		}
	}

	m.mu.Lock()
	var promote []*site
	for name, s := range m.sites {
		if _, ok := want[name]; !ok {
			delete(m.sites, name)
			if m.byPath[s.cfg.DBPath] == s {
				delete(m.byPath, s.cfg.DBPath)
			}
		}
	}
	for _, c := range changed {
		old := m.sites[c.Name]
		s := &site{cfg: c, m: m, wake: make(chan struct{}), retired: make(chan struct{})}
		s.epoch.Store(c.Epoch)
		s.caughtUp.Store(time.Now().UnixNano())
		s.setState(ReplicaStarting)
		s.logID.Store("")
		if old != nil && old.cfg.Role == ephpm.RolePrimary && c.Role == ephpm.RoleReplica {
			// Demoted: the log ended there, and frame numbers go on.
			s.known.Store(old.known.Load())
		}
		switch {
		case c.Role == ephpm.RoleReplica:
			// A database already open takes the new role at once.
			m.cfg.Pool.IfOpen(c.DBPath, func(db *sqlite.DB) {
				db.SetReadOnly(true)
				db.SetFenced(false)
			})
		case old != nil && old.cfg.Role == ephpm.RoleReplica:
			promote = append(promote, s) // below, without mu
		case old == nil:
			m.cfg.Pool.IfOpen(c.DBPath, func(db *sqlite.DB) {
				m.gateDB(s, db) // before the first write
				db.SetReadOnly(false)
			})
		}
		if f := carryFence[c.Name]; f.fenced || f.newer > c.Epoch {
			s.fenced = f.fenced
			if f.newer > c.Epoch {
				s.newer = f.newer
			}
			s.watchFence()
		}
		if prev := m.byPath[c.DBPath]; prev != nil && c.Role == ephpm.RolePrimary {
			// The database's log (its hook is installed) stays with it.
			prev.logMu.Lock()
			s.flog, s.flogDB, s.logClosed = prev.flog, prev.flogDB, prev.logClosed
			prev.flog, prev.flogDB = nil, nil
			if s.flog != nil {
				prev.logHeir.Store(s)
			}
			prev.logMu.Unlock()
			if s.flog != nil {
				s.logID.Store(s.flog.ID())
				s.known.Store(s.flog.Next())
			}
		}
		if old != nil && m.byPath[old.cfg.DBPath] == old {
			delete(m.byPath, old.cfg.DBPath)
		}
		m.sites[c.Name] = s
		m.byPath[c.DBPath] = s
		if c.Role == ephpm.RoleReplica {
			m.startReplica(s)
		}
		m.log.Info("replicated site", "site", c.Name, "role", c.Role, "primary", c.PrimaryURL, "epoch", c.Epoch)
	}
	m.mu.Unlock()
	for _, s := range promote {
		// Gated before promote makes it writable.
		m.cfg.Pool.IfOpen(s.cfg.DBPath, func(db *sqlite.DB) { m.gateDB(s, db) })
	}
	defer m.regateAll() // epochs changed in place, roles
	for _, s := range promote {
		if err := m.promote(s); err != nil {
			m.log.Error("promoting the site: it takes no writes until its database opens", "site", s.cfg.Name, "err", err)
		}
	}
}

func (m *Manager) tailFrames() int {
	if m.cfg.TailFrames > 0 {
		return m.cfg.TailFrames
	}
	return DefaultTailFrames
}

// stopSite stops a replica's stream (without holding mu).
func (m *Manager) stopSite(s *site) {
	if s.stop != nil {
		s.stop()
		<-s.done
		s.stop = nil
	}
}

func (m *Manager) site(name string) *site {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sites[name]
}

// Role returns this node's role for a site ("" when not replicated).
func (m *Manager) Role(name string) ephpm.Role {
	if s := m.site(name); s != nil {
		return s.cfg.Role
	}
	return ""
}

// OnOpen is the database pool's open hook: a replica's database is made
// read-only for clients; a primary's gets its frame log. The pool calls
// it on the goroutine of the database's first Acquire (later ones wait),
// before anyone else uses it. It blocks while the log opens (catching up
// with the WAL, or copying the database into a new log) and for up to
// 30 s while the previous instance's log closes. It takes the Manager's
// lock, so nothing may Acquire a database with that lock held.
func (m *Manager) OnOpen(ctx context.Context, db *sqlite.DB) error {
	m.mu.Lock()
	s := m.byPath[db.Path()]
	m.mu.Unlock()
	if s == nil {
		return nil
	}
	switch s.cfg.Role {
	case ephpm.RoleReplica:
		db.SetReadOnly(true)
		m.gateDB(s, db)
	case ephpm.RolePrimary:
		// Writable only once its log is open (and behind the fence, if
		// the site stands fenced).
		db.SetReadOnly(true)
		db.SetFenced(s.isFenced())
		m.gateDB(s, db)
		if err := s.openLog(ctx, db); err != nil {
			return err
		}
		db.SetReadOnly(false)
	}
	return nil
}

// openLog opens the frame log of a primary's database (once per open
// database).
func (s *site) openLog(ctx context.Context, db *sqlite.DB) error {
	s.logMu.Lock()
	if s.flogDB == db {
		s.logMu.Unlock()
		return nil
	}
	// A previous instance of this database may still be closing.
	if s.flog != nil {
		closed := s.logClosed
		s.logMu.Unlock()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("replication: %s: previous log still open", s.cfg.Name)
		}
		s.logMu.Lock()
	}
	defer s.logMu.Unlock()
	opts := framelog.Options{CompactFrames: s.m.cfg.CompactFrames, Logger: s.m.log, OnAppend: s.appended}
	// A replica here before: continue the log it followed (see promote).
	pos, wasReplica, err := readPos(s.cfg.DBPath)
	if err != nil {
		return fmt.Errorf("replication: %s: %w", s.cfg.Name, err)
	}
	if wasReplica {
		if pos.LogID != "" && pos.Intent == 0 && !pos.Repairing {
			opts.Adopt = &framelog.Adopt{ID: pos.LogID, Next: pos.Next, Sum: pos.Sum, SumKnown: pos.SumKnown}
			// The frames applied last go into the log, so replicas that
			// were a little behind continue without a snapshot. A tail
			// that cannot be read only costs them that.
			tail, err := readTail(s.cfg.DBPath, pos.LogID, pos.Next)
			if err != nil {
				s.m.log.Warn("promoted replica: its tail cannot be read; replicas behind its position will bootstrap", "site", s.cfg.Name, "err", err)
			}
			opts.Adopt.Tail = tail
		} else {
			// No position to continue from (or a batch half-way): a new
			// log, never one this node kept from an earlier time.
			s.m.log.Warn("promoted replica has no clean position: starting a new log (its replicas bootstrap)", "site", s.cfg.Name)
			dir := framelog.Dir(s.cfg.DBPath)
			for _, d := range []string{dir, dir + ".adopt", dir + ".old"} { // with an interrupted adoption's
				if err := os.RemoveAll(d); err != nil {
					return fmt.Errorf("replication: %s: remove the old log: %w", s.cfg.Name, err)
				}
			}
		}
	}
	l, err := framelog.Open(ctx, db, opts)
	if err != nil {
		return fmt.Errorf("replication: %s: %w", s.cfg.Name, err)
	}
	if wasReplica {
		// Until the position file is gone for good, a restart would
		// adopt again at the old position under newer writes.
		if err := removePos(s.cfg.DBPath); err != nil {
			return errors.Join(fmt.Errorf("replication: %s: %w", s.cfg.Name, err),
				db.WithWriter(ctx, func() error { l.Detach(); return nil }), l.Close())
		}
		// The log holds the tail now. A leftover is harmless: a replica
		// here later has no position of its log and starts it over.
		if err := os.Remove(tailPath(s.cfg.DBPath)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.m.log.Warn("removing the promoted replica's tail", "site", s.cfg.Name, "err", err)
		}
	}
	s.flog, s.flogDB, s.logClosed = l, db, make(chan struct{})
	s.logID.Store(l.ID())
	s.appended(l.Next())
	return nil
}

// appended records a primary's new log end and wakes its streams, which
// wait here rather than on the log so that the database (and its log)
// may close while the site is idle.
func (s *site) appended(next uint64) {
	for h := s.logHeir.Load(); h != nil; h = s.logHeir.Load() {
		s = h // the log went on with a site that replaced s
	}
	s.known.Store(next)
	s.broadcast()
}

// OnClose is the pool's close hook: the primary's log closes after its
// database (whose last checkpoint captures the final frames). The pool
// calls it on the goroutine that closed the database (its idle sweeper,
// Pool.Close, or a failed open); it only closes the log's files.
func (m *Manager) OnClose(db *sqlite.DB) {
	m.mu.Lock()
	s := m.byPath[db.Path()]
	m.mu.Unlock()
	if s == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.flogDB == db && s.flog != nil {
		// Every record was synced when it was appended: a close error
		// loses nothing, but is worth knowing.
		if err := s.flog.Close(); err != nil {
			m.log.Warn("closing the frame log", "site", s.cfg.Name, "err", err)
		}
		s.flog, s.flogDB = nil, nil
		close(s.logClosed)
	}
}

// primaryLog opens the site's database (so its log is open) and returns
// the log; release ends the use.
func (m *Manager) primaryLog(ctx context.Context, name string) (*framelog.Log, *sqlite.DB, func(), error) {
	s := m.site(name)
	if s == nil || s.cfg.Role != ephpm.RolePrimary {
		return nil, nil, nil, ephpm.ErrNotPrimary
	}
	db, release, err := m.cfg.Pool.Acquire(ctx, s.cfg.DBPath)
	if err != nil {
		return nil, nil, nil, err
	}
	// The database may have opened before the site became a primary.
	if err := s.openLog(ctx, db); err != nil {
		release()
		return nil, nil, nil, err
	}
	s.logMu.Lock()
	l := s.flog
	s.logMu.Unlock()
	return l, db, release, nil
}

// Status is one replicated site's state, for `ephpm db status` and
// metrics.
type Status struct {
	Site        string     `json:"site"`
	Role        ephpm.Role `json:"role"`
	Primary     string     `json:"primary,omitempty"`
	LogID       string     `json:"log_id,omitempty"`
	Position    uint64     `json:"position"` // the next frame (primary: written; replica: applied)
	PrimaryNext uint64     `json:"primary_position,omitempty"`
	LagFrames   uint64     `json:"lag_frames"`
	// LagMillis: a replica's lag in time. While it is behind or cannot
	// reach the primary, the time since it last knew it was caught up
	// (it keeps rising); otherwise the last batch's send → applied.
	LagMillis float64 `json:"lag_ms"`
	Epoch     uint64  `json:"epoch"`
	Fenced    bool    `json:"fenced,omitempty"` // a primary's new writes wait (a move, or a newer epoch seen)
	// State: a replica's ReplicaState ("error: <why>"); a primary's log:
	// open, closed, or "fenced: newer epoch N seen" (replaced).
	State string `json:"state"`
	Txs   uint64 `json:"transactions_applied,omitempty"`
	// Quarantined: copies of this node's database kept aside when its
	// history diverged (filled only on request: GET .../status?quarantined=1).
	Quarantined []string `json:"quarantined,omitempty"`
	// Lease (a cluster site's primary with Config.Leases): "" when not
	// gated, else why writes are refused, or "held".
	Lease string `json:"lease,omitempty"`
	Sync  string `json:"sync,omitempty"` // a primary's, when "replica"
	// A sync = replica primary's commits that waited for a replica, the
	// ones no replica confirmed in time, and the time waited.
	SyncWaits       uint64  `json:"sync_waits,omitempty"`
	SyncUnconfirmed uint64  `json:"sync_unconfirmed,omitempty"`
	SyncWaitMillis  float64 `json:"sync_wait_ms_total,omitempty"`

	ForwardedStatements uint64  `json:"forwarded_statements"`
	ForwardedRequests   uint64  `json:"forwarded_requests"`
	ForwardErrors       uint64  `json:"forward_errors"`
	ForwardMillis       float64 `json:"forward_ms_total"`
}

// Status lists every replicated site, sorted by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	list := make([]*site, 0, len(m.sites))
	for _, s := range m.sites {
		list = append(list, s)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(list))
	for _, s := range list {
		st := Status{
			Site: s.cfg.Name, Role: s.cfg.Role, Primary: s.cfg.PrimaryURL, Epoch: s.epoch.Load(),
			SyncWaits: s.sync.waits.Load(), SyncUnconfirmed: s.sync.unconfirmed.Load(),
			SyncWaitMillis:      float64(s.sync.waitNanos.Load()) / 1e6,
			ForwardedStatements: s.fwdStatements.Load(), ForwardedRequests: s.fwdRequests.Load(),
			ForwardErrors: s.fwdErrors.Load(), ForwardMillis: float64(s.fwdNanos.Load()) / 1e6,
		}
		if s.cfg.Role == ephpm.RolePrimary {
			st.LogID, _ = s.logID.Load().(string)
			st.Position, st.State = s.known.Load(), logClosed
			st.Fenced = s.isFenced()
			s.logMu.Lock()
			if s.flog != nil {
				st.State = logOpen
			}
			s.logMu.Unlock()
			if n := s.staleBy(); n != 0 {
				st.State = fmt.Sprintf("fenced: newer epoch %d seen", n)
			}
			if s.cfg.Sync == SyncReplica {
				st.Sync = s.cfg.Sync.String()
			}
			if m.cfg.Leases && s.epoch.Load() != 0 {
				st.Lease = "held"
				var le *LeaseError
				if errors.As(m.leaseErr(s), &le) {
					st.Lease = le.Reason
				}
			}
		} else {
			st.LogID, _ = s.logID.Load().(string)
			st.Position, st.PrimaryNext = s.applied.Load(), s.known.Load()
			if st.PrimaryNext > st.Position {
				st.LagFrames = st.PrimaryNext - st.Position
			}
			st.LagMillis = float64(s.lag(time.Now())) / 1e6
			st.State = s.status.Load().String()
			st.Txs = s.txs.Load()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out
}

// lag is a replica's lag in time at now: the last batch's, or, while
// frames are known to be pending or the stream is not up, the time since
// the replica last knew it was caught up, so that it keeps rising while
// the primary is unreachable.
func (s *site) lag(now time.Time) time.Duration {
	last := time.Duration(s.lagNs.Load())
	if s.status.Load().state == ReplicaStreaming && s.known.Load() <= s.applied.Load() {
		return last
	}
	return max(last, now.Sub(time.Unix(0, s.caughtUp.Load())))
}

// Applied is the next frame a replica site needs (how far it is).
func (m *Manager) Applied(name string) uint64 {
	if s := m.site(name); s != nil {
		return s.applied.Load()
	}
	return 0
}

// WaitApplied waits (at most the configured bound, or ctx) until the
// replica site has applied everything before frame next. It reports
// whether it has.
func (m *Manager) WaitApplied(ctx context.Context, name string, next uint64) bool {
	s := m.site(name)
	if s == nil || s.cfg.Role != ephpm.RoleReplica {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.WaitApplied)
	defer cancel()
	for {
		s.wakeMu.Lock()
		wake := s.wake
		s.wakeMu.Unlock()
		if s.applied.Load() >= next {
			return true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		}
	}
}

// Close stops every replica stream and forwarded session, and returns
// when every goroutine the manager started has ended.
func (m *Manager) Close() error {
	m.setMu.Lock()
	defer m.setMu.Unlock()
	m.closed = true
	m.goMu.Lock()
	m.stopping = true
	m.goMu.Unlock()
	m.loops.Close() // the loops return no errors
	m.mu.Lock()
	sites := make([]*site, 0, len(m.sites))
	for _, s := range m.sites {
		sites = append(sites, s)
	}
	m.mu.Unlock()
	for _, s := range sites {
		m.stopSite(s) // already ended: releases its context
	}
	m.sessions.closeAll()
	if m.audit != nil {
		return m.audit.close() // its last lines
	}
	return nil
}

func isWritePath(paths []string, p string) bool {
	for _, w := range paths {
		if strings.HasSuffix(w, "/") && strings.HasPrefix(p, w) || p == w {
			return true
		}
	}
	return false
}
