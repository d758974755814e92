// Package sqlite is a site's database: one SQLite file in WAL mode with a
// single writer connection, a pool of read-only connections, ephpm-driven
// checkpoints and a post-commit hook point for replication. It keeps the
// driver (modernc.org/sqlite) behind its own API.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/defaults"
)

const (
	// PageSize is the page size of every site database; replication ships
	// whole pages, so it is fixed.
	PageSize = 4096
	// DefaultMmapSize lets readers take pages straight from the OS page
	// cache (shared by every connection) instead of copying them into
	// each connection's own cache.
	DefaultMmapSize = 256 << 20

	// DefaultReaders is the size of the read-only pool: reads are short and
	// the machine small, so a few connections keep every core busy.
	DefaultReaders = 4

	// DefaultLockTimeout is how long a session waits for the writer before
	// giving up with ErrLockTimeout (MySQL 1205). Shorter than InnoDB's 50 s
	// because PHP requests have their own time limits.
	DefaultLockTimeout = 10 * time.Second

	// DefaultBusyTimeout is SQLite's busy_timeout on every connection; only
	// checkpoints and recovery make readers wait in WAL mode.
	DefaultBusyTimeout = 5 * time.Second

	// DefaultStmtCache is how many prepared read statements a DB keeps;
	// SQLite parsing costs as much as running a point SELECT, but each
	// entry costs memory on every reader connection.
	DefaultStmtCache = 64

	// DefaultCheckpointPages is the WAL size (in pages) above which ephpm
	// checkpoints after a commit; SQLite's own autocheckpoint is off so that
	// replication sees every frame before it is checkpointed.
	DefaultCheckpointPages = 1000
)

// ErrLockTimeout is returned when the writer stays busy past the lock
// timeout; the MySQL front maps it to 1205.
var ErrLockTimeout = errors.New("sqlite: lock wait timeout exceeded")

// ErrClosed is returned by operations on a closed DB.
var ErrClosed = errors.New("sqlite: database closed")

// Function is a Go implementation of an SQL function registered on every
// connection.
type Function struct {
	Name          string
	NArgs         int // -1: variadic
	Deterministic bool
	Impl          func(args []driver.Value) (driver.Value, error)
}

// CommitHook runs after every commit on the writer, while the writer is still
// held, so that no other transaction commits before it returns and SQLite
// has not yet checkpointed the new frames. It runs on the goroutine of the
// statement that committed, one call at a time; while it runs, every
// other writer waits, and its error fails that statement. It may use the
// *Held methods (CheckpointHeld, ApplyPagesHeld) but must not acquire the
// writer, which it already holds.
type CommitHook func(ctx context.Context, db *DB) error

// Config of one database. The zero value of each field means its default.
type Config struct {
	Path            string        // database file; created on first use
	Readers         int           // read-only pool size (DefaultReaders)
	LockTimeout     time.Duration // wait for the writer (DefaultLockTimeout)
	BusyTimeout     time.Duration // SQLite busy_timeout (DefaultBusyTimeout)
	CheckpointPages int           // checkpoint threshold (DefaultCheckpointPages); < 0 disables automatic checkpoints
	Functions       []Function    // registered on every connection
	ReadOnly        bool          // replica: AcquireWriter fails with ephpm.ErrNotPrimary
	// MaxLength is the longest string, blob or row a statement may build
	// or store (DefaultMaxLength), SQLite's SQLITE_LIMIT_LENGTH.
	MaxLength int
	Logger    *slog.Logger
}

// DB is an open site database. It is safe for concurrent use.
type DB struct {
	cfg    Config
	log    *slog.Logger
	reader *sql.DB
	wdb    *sql.DB
	wconn  *sql.Conn
	wguard *guard        // the writer connection's
	wsem   chan struct{} // holds one token while a Writer is out

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	seen   map[string]bool // run once, not cached yet

	hooksMu sync.RWMutex
	hooks   []*CommitHook // by pointer, so that OnCommit's remove finds its own

	// The fence (a planned change of primary): while fenced, AcquireWriter
	// waits; gate is closed and replaced whenever fenced or readOnly
	// changes, waking the waiters to look again.
	gateMu  sync.Mutex
	fenced  bool
	refuse  error // SetRefused: client writers fail at once with it
	gate    chan struct{}
	waiting atomic.Int64 // writers waiting at the fence

	// The commit check (SetCommitCheck) runs inside SQLite's commit hook
	// while a client's Writer is out (clientOut); refusal keeps its error
	// for the statement that committed, which SQLite only sees fail with
	// SQLITE_CONSTRAINT_COMMITHOOK.
	check     atomic.Pointer[func() error]
	clientOut atomic.Bool
	refusal   atomic.Pointer[error]
	// ack (SetCommitAck) and what it asked the client's commits under
	// the Writer now out to wait for (guarded by the writer lease).
	ack  atomic.Pointer[func() func(context.Context) error]
	acks []func(context.Context) error

	readOnly  atomic.Bool // replica: clients may not write
	committed atomic.Bool // set by SQLite's commit hook on the writer
	guard     atomic.Pointer[func(context.Context) error]

	applyMu   sync.Mutex
	apply     *sql.DB // replica: page writer (see ApplyPages)
	applyConn *sql.Conn
	applied   atomic.Uint64 // bumped after every ApplyPages
	internal  atomic.Bool   // the writer runs an ephpm statement the authorizer must allow

	// read fast path (readsession.go)
	readerDSN string
	fast      fastPool
	commits   atomic.Uint64 // bumped by SQLite's commit hook on the writer
	schema    atomic.Uint64 // SQLite's schema_version after the last local commit
	snapMu    sync.Mutex
	snapGen   uint64 // bumped when the writer lease is taken and given back
	leaseOut  bool   // the writer lease is out: keep no read transaction
	pinned    int
	sessions  map[*ReadSession]struct{} // sessions with a pinned connection

	closeOnce sync.Once
	closing   chan struct{}
	closeErr  error
}

// driver registry: a private modernc Driver so that our functions do not
// leak into other users of the "sqlite" driver name. Function registration
// must not race with Driver.Open, hence the lock.
var (
	drvMu      sync.RWMutex
	drv        = &msqlite.Driver{}
	registered = map[string]bool{}
)

// RegisterFunctions registers fns on the driver all DBs use; a name already
// registered is kept. Connections opened afterwards see them.
func RegisterFunctions(fns []Function) error {
	drvMu.Lock()
	defer drvMu.Unlock()
	for _, f := range fns {
		key := strings.ToLower(f.Name)
		if registered[key] {
			continue
		}
		impl := f.Impl
		fn := func(_ *msqlite.FunctionContext, args []driver.Value) (driver.Value, error) { return impl(args) }
		var err error
		if f.Deterministic {
			err = drv.RegisterDeterministicScalarFunction(key, int32(f.NArgs), fn)
		} else {
			err = drv.RegisterScalarFunction(key, int32(f.NArgs), fn)
		}
		if err != nil {
			return fmt.Errorf("register function %s: %w", f.Name, err)
		}
		registered[key] = true
	}
	return nil
}

// Open opens (creating if needed) the database at cfg.Path.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if strings.ContainsAny(cfg.Path, "?#") {
		return nil, fmt.Errorf("sqlite: path %q: '?' and '#' are not allowed", cfg.Path)
	}
	cfg.Readers = defaults.Positive(cfg.Readers, DefaultReaders)
	cfg.LockTimeout = defaults.Positive(cfg.LockTimeout, DefaultLockTimeout)
	cfg.BusyTimeout = defaults.Positive(cfg.BusyTimeout, DefaultBusyTimeout)
	if cfg.CheckpointPages == 0 {
		cfg.CheckpointPages = DefaultCheckpointPages
	}
	cfg.MaxLength = defaults.Positive(cfg.MaxLength, DefaultMaxLength)
	if cfg.MaxLength > maxLengthCap {
		return nil, fmt.Errorf("sqlite: MaxLength %d is above SQLite's %d", cfg.MaxLength, maxLengthCap)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := RegisterFunctions(cfg.Functions); err != nil {
		return nil, err
	}
	db := &DB{
		cfg:     cfg,
		log:     cfg.Logger.With("db", cfg.Path),
		wsem:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		stmts:   map[string]*sql.Stmt{},
		seen:    map[string]bool{},

		sessions: map[*ReadSession]struct{}{},
		fast:     fastPool{idle: make(chan *rconn, 2*cfg.Readers), max: 2 * cfg.Readers},
	}
	db.readOnly.Store(cfg.ReadOnly)
	// temp_store stays FILE (the build's default): sorts and temporary
	// b-trees (DISTINCT, UNION, GROUP BY, materialised subqueries) keep
	// up to the page cache in memory and spill the rest to a file, where
	// MEMORY would grow the heap without bound (a recursive UNION grew it
	// by ~40 MB/s).
	base := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=page_size(%d)&_pragma=journal_mode(WAL)"+
		"&_pragma=wal_autocheckpoint(0)&_pragma=synchronous(NORMAL)"+
		"&_pragma=mmap_size(%d)",
		cfg.Path, cfg.BusyTimeout.Milliseconds(), PageSize, DefaultMmapSize)

	// The writer is opened first: it creates the file and switches it to WAL.
	db.wdb = sql.OpenDB(&connector{dsn: base, db: db, writer: true})
	db.wdb.SetMaxOpenConns(1)
	db.wdb.SetMaxIdleConns(1)
	db.wdb.SetConnMaxLifetime(0)
	var err error
	db.wconn, err = db.wdb.Conn(ctx)
	if err == nil {
		err = db.wconn.Raw(func(dc any) error {
			db.wguard = dc.(*conn).g
			return nil
		})
	}
	if err != nil {
		if db.wconn != nil {
			db.wconn.Close()
		}
		db.wdb.Close()
		return nil, fmt.Errorf("open site db %q: %w", cfg.Path, err)
	}
	var mode string
	db.internal.Store(true)
	err = db.wconn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err == nil {
		err = db.readSchemaVersion(ctx)
	}
	db.internal.Store(false)
	if err != nil || !strings.EqualFold(mode, "wal") {
		db.wconn.Close()
		db.wdb.Close()
		return nil, fmt.Errorf("open site db %q: journal mode %q: %v", cfg.Path, mode, err)
	}

	db.readerDSN = base + "&_pragma=query_only(1)"
	db.reader = sql.OpenDB(&connector{dsn: db.readerDSN, db: db})
	db.reader.SetMaxOpenConns(cfg.Readers)
	db.reader.SetMaxIdleConns(cfg.Readers)
	db.reader.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.reader.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open site db %q readers: %w", cfg.Path, err)
	}
	return db, nil
}

// readSchemaVersion records SQLite's schema cookie; the caller holds the
// writer and has set db.internal.
func (db *DB) readSchemaVersion(ctx context.Context) error {
	var v int64
	if err := db.wconn.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&v); err != nil {
		return err
	}
	db.schema.Store(uint64(v))
	return nil
}

// SchemaVersion changes when a local commit changed the schema (any
// client: MySQL, Hrana, ephpm itself). A replica's ApplyPages changes
// Applied() instead.
func (db *DB) SchemaVersion() uint64 { return db.schema.Load() }

// Closed reports whether Close was called.
func (db *DB) Closed() bool {
	select {
	case <-db.closing:
		return true
	default:
		return false
	}
}

// Path is the database file.
func (db *DB) Path() string { return db.cfg.Path }

// Reader is the read-only pool. Reads never wait for the writer.
func (db *DB) Reader() *sql.DB { return db.reader }

// QueryContext runs a read on the reader pool through a small cache of
// prepared statements (SQLite re-prepares them itself after schema changes).
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := db.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return db.reader.QueryContext(ctx, query, args...)
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil && err.Error() == "sql: statement is closed" {
		// Evicted between lookup and use.
		return db.reader.QueryContext(ctx, query, args...)
	}
	return rows, err
}

func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	st := db.stmts[query]
	if st == nil && !db.seen[query] {
		// Admit a statement on its second use: SQL with inlined literals
		// is often run once, and caching it would prepare it twice.
		if len(db.seen) >= 4*DefaultStmtCache {
			clear(db.seen)
		}
		db.seen[query] = true
		db.stmtMu.Unlock()
		return nil, nil
	}
	db.stmtMu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := db.reader.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	var evict []*sql.Stmt
	db.stmtMu.Lock()
	if old := db.stmts[query]; old != nil {
		evict = append(evict, st) // lost a race: keep the cached one
		st = old
	} else {
		for q, s := range db.stmts {
			if len(db.stmts) < DefaultStmtCache {
				break
			}
			evict = append(evict, s) // random eviction: map order
			delete(db.stmts, q)
		}
		db.stmts[query] = st
	}
	db.stmtMu.Unlock()
	for _, s := range evict {
		// Waits for rows still open on s (other sessions read theirs
		// to the end at once).
		s.Close()
	}
	return st, nil
}

// SetCheckpointGuard installs g, which must succeed before any checkpoint
// runs: the replication log uses it to capture every WAL frame first. g
// runs with the writer held, on the goroutine that checkpoints; it must
// not acquire the writer.
func (db *DB) SetCheckpointGuard(g func(context.Context) error) {
	if g == nil {
		db.guard.Store(nil)
		return
	}
	db.guard.Store(&g)
}

// OnCommit adds a hook run after every commit (see CommitHook); remove
// takes it off again (a primary's frame log when the site is demoted).
// Call remove with the writer held, so that no commit is half-way
// through the hooks.
func (db *DB) OnCommit(h CommitHook) (remove func()) {
	p := &h
	db.hooksMu.Lock()
	db.hooks = append(db.hooks, p)
	db.hooksMu.Unlock()
	return func() {
		db.hooksMu.Lock()
		defer db.hooksMu.Unlock()
		// A new slice: afterCommit may be ranging over the old one.
		db.hooks = slices.DeleteFunc(slices.Clone(db.hooks), func(q *CommitHook) bool { return q == p })
	}
}

// SetReadOnly switches client writes off (replica) or on (primary); a
// Writer already out is not affected. Writers waiting at the fence wake:
// on a read-only database they fail with ephpm.ErrNotPrimary.
func (db *DB) SetReadOnly(ro bool) {
	db.readOnly.Store(ro)
	db.openGate()
}

// SetFenced closes (or opens) the gate in front of AcquireWriter: while
// fenced, new writers wait (bounded by the lock timeout and their ctx)
// for the fence to lift or for the database to become read-only. A
// Writer already out is not affected: to know that it has finished, take
// the writer once afterwards (WithWriter). Internal writers (WithWriter,
// Checkpoint, ApplyPages) pass the gate.
func (db *DB) SetFenced(on bool) {
	db.gateMu.Lock()
	db.fenced = on
	db.gateMu.Unlock()
	db.openGate()
}

// SetRefused makes client writers fail at once with err (nil lifts it):
// a primary without its lease refuses rather than waits, where a fence
// makes writers wait. Writers waiting at the fence wake and fail too. A
// Writer already out is not affected (the commit check catches its
// commit). Internal writers pass.
func (db *DB) SetRefused(err error) {
	db.gateMu.Lock()
	db.refuse = err
	db.gateMu.Unlock()
	db.openGate()
}

// Refused is the error client writers fail with now, or nil.
func (db *DB) Refused() error {
	db.gateMu.Lock()
	defer db.gateMu.Unlock()
	return db.refuse
}

// SetCommitCheck installs check, asked by SQLite's commit hook at every
// commit of a client's Writer (never an internal writer's: checkpoints,
// ApplyPages, WithWriter). A non-nil error turns the COMMIT into a
// rollback, and the statement that committed fails with an error that
// wraps it (errors.Is). check runs inside SQLite with the writer held,
// on the committing goroutine: it must be cheap and must not run SQL.
// nil removes it.
func (db *DB) SetCommitCheck(check func() error) {
	if check == nil {
		db.check.Store(nil)
		return
	}
	db.check.Store(&check)
}

// SetCommitAck installs ack, called after each commit of a client's
// Writer once the commit hooks succeeded, with the writer still held (so
// it sees the state that commit left, e.g. the frame log's end). What it
// returns, if not nil, is what the client must wait for before it is
// told the commit succeeded: Writer.Acked runs it after Release, so
// that the wait never holds the writer and concurrent commits group. ack
// must not block or run SQL. nil removes it.
func (db *DB) SetCommitAck(ack func() func(context.Context) error) {
	if ack == nil {
		db.ack.Store(nil)
		return
	}
	db.ack.Store(&ack)
}

// refusedCommit is a commit the commit check turned into a rollback.
type refusedCommit struct{ check, sqlite error }

func (e *refusedCommit) Error() string {
	return e.check.Error() + " (the transaction was rolled back)"
}
func (e *refusedCommit) Unwrap() []error { return []error{e.check, e.sqlite} }

// commitErr turns SQLite's SQLITE_CONSTRAINT_COMMITHOOK into the commit
// check's error.
func (db *DB) commitErr(err error) error {
	if err == nil || ErrorCode(err) != CodeConstraintCommitHook {
		return err
	}
	if p := db.refusal.Swap(nil); p != nil {
		return &refusedCommit{check: *p, sqlite: err}
	}
	return err
}

// Fenced reports whether new writers wait at the fence.
func (db *DB) Fenced() bool {
	db.gateMu.Lock()
	defer db.gateMu.Unlock()
	return db.fenced
}

// openGate wakes every writer waiting at the gate, to look again.
func (db *DB) openGate() {
	db.gateMu.Lock()
	if db.gate != nil {
		close(db.gate)
	}
	db.gate = make(chan struct{})
	db.gateMu.Unlock()
}

// gateState is the fence, the refusal and the channel that says they
// changed.
func (db *DB) gateState() (bool, error, chan struct{}) {
	db.gateMu.Lock()
	defer db.gateMu.Unlock()
	if db.gate == nil {
		db.gate = make(chan struct{})
	}
	return db.fenced, db.refuse, db.gate
}

// ReadOnly reports whether client writes are refused.
func (db *DB) ReadOnly() bool { return db.readOnly.Load() }

// AcquireWriter waits (at most the lock timeout) for the single writer and
// returns it; the caller must Release it. Concurrent writers are thereby
// serialised rather than failed with SQLITE_BUSY. On a read-only (replica)
// database it fails with ephpm.ErrNotPrimary. While the database is
// fenced (SetFenced) it waits at the gate, within the same bound; if the
// database becomes read-only meanwhile (the site was demoted), it fails
// with ephpm.ErrNotPrimary, and the caller may forward the write to the
// new primary.
func (db *DB) AcquireWriter(ctx context.Context) (*Writer, error) {
	t := time.NewTimer(db.cfg.LockTimeout)
	defer t.Stop()
	// Each round ends in a result or waits for a change of the gate;
	// the timer bounds them all.
	for {
		select {
		case <-db.closing:
			return nil, ErrClosed
		default:
		}
		if db.readOnly.Load() {
			return nil, ephpm.ErrNotPrimary
		}
		fenced, refuse, gate := db.gateState()
		if refuse != nil {
			return nil, refuse
		}
		if fenced {
			db.waiting.Add(1)
			err := db.waitGate(ctx, gate, t.C)
			db.waiting.Add(-1)
			if err != nil {
				return nil, err
			}
			continue
		}
		w, err := db.acquireBy(ctx, t.C)
		if err != nil {
			return nil, err
		}
		// A fence or a demotion may have come while we waited for the
		// writer: whoever fenced must not see a write after it.
		if f, r, _ := db.gateState(); f || r != nil || db.readOnly.Load() {
			w.Release(ctx)
			continue
		}
		w.client = true
		db.refusal.Store(nil)
		db.clientOut.Store(true)
		return w, nil
	}
}

// waitGate waits for the gate to change.
func (db *DB) waitGate(ctx context.Context, gate chan struct{}, expire <-chan time.Time) error {
	select {
	case <-gate:
		return nil
	case <-expire:
		return fmt.Errorf("%w (the site is fenced: its primary is moving)", ErrLockTimeout)
	case <-ctx.Done():
		return ctx.Err()
	case <-db.closing:
		return ErrClosed
	}
}

// FenceWaiters is how many writers wait at the fence now.
func (db *DB) FenceWaiters() int { return int(db.waiting.Load()) }

func (db *DB) acquire(ctx context.Context) (*Writer, error) {
	t := time.NewTimer(db.cfg.LockTimeout)
	defer t.Stop()
	return db.acquireBy(ctx, t.C)
}

// acquireBy takes the writer, waiting until expire fires.
func (db *DB) acquireBy(ctx context.Context, expire <-chan time.Time) (*Writer, error) {
	select {
	case <-db.closing:
		return nil, ErrClosed
	default:
	}
	select {
	case db.wsem <- struct{}{}:
		db.takeLease()
		return &Writer{db: db}, nil
	default:
	}
	select {
	case db.wsem <- struct{}{}:
		db.takeLease()
		return &Writer{db: db}, nil
	case <-expire:
		return nil, ErrLockTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-db.closing:
		return nil, ErrClosed
	}
}

// Checkpoint runs a WAL checkpoint with mode PASSIVE, FULL, RESTART or
// TRUNCATE, holding the writer; it returns SQLite's (busy, log, checkpointed).
func (db *DB) Checkpoint(ctx context.Context, mode string) (busy, log, done int, err error) {
	w, err := db.acquire(ctx) // replicas checkpoint too
	if err != nil {
		return 0, 0, 0, err
	}
	defer w.Release(ctx)
	return db.checkpoint(ctx, mode)
}

// AcquireInternal takes the writer past every gate (read-only, fence,
// refusal) and the commit check: for ephpm's own cleanup of the writer
// connection (a MySQL session's temporary tables, which the next session
// must not see), never for client SQL that writes the database.
func (db *DB) AcquireInternal(ctx context.Context) (*Writer, error) {
	return db.acquire(ctx)
}

// WithWriter runs fn holding the writer lease, on a replica too: for
// ephpm's own bookkeeping, never for client SQL.
func (db *DB) WithWriter(ctx context.Context, fn func() error) error {
	w, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	defer w.Release(ctx)
	return fn()
}

// CheckpointHeld is Checkpoint for code that already holds the writer: a
// commit hook.
func (db *DB) CheckpointHeld(ctx context.Context, mode string) (busy, log, done int, err error) {
	return db.checkpoint(ctx, mode)
}

func (db *DB) checkpoint(ctx context.Context, mode string) (busy, log, done int, err error) {
	switch mode = strings.ToUpper(mode); mode {
	case "PASSIVE", "FULL", "RESTART", "TRUNCATE":
	default:
		return 0, 0, 0, fmt.Errorf("sqlite: checkpoint mode %q", mode)
	}
	if g := db.guard.Load(); g != nil {
		if err := (*g)(ctx); err != nil {
			return 0, 0, 0, fmt.Errorf("checkpoint %s: not yet: %w", db.cfg.Path, err)
		}
	}
	db.internal.Store(true)
	defer db.internal.Store(false)
	err = db.wconn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &log, &done)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("checkpoint %s: %w", db.cfg.Path, err)
	}
	return busy, log, done, nil
}

// afterCommit runs the hooks and, if the WAL grew past the threshold, a
// checkpoint. The caller holds the writer. A failed hook fails the
// statement that committed (the data is in the database, but replication
// has not seen it) and no checkpoint runs, so the next hook can still read
// the frames from the WAL.
func (db *DB) afterCommit(ctx context.Context) error {
	if !db.committed.Swap(false) {
		return nil
	}
	ctx = unwatched(ctx)
	db.internal.Store(true)
	if err := db.readSchemaVersion(ctx); err != nil {
		db.log.Warn("read schema version", "err", err)
		db.schema.Add(1 << 32) // unknown: report a change
	}
	db.internal.Store(false)
	db.hooksMu.RLock()
	hooks := db.hooks
	db.hooksMu.RUnlock()
	for _, h := range hooks {
		if err := (*h)(ctx, db); err != nil {
			db.log.Error("commit hook failed", "err", err)
			return fmt.Errorf("%w: %w", ErrHook, err)
		}
	}
	if db.clientOut.Load() {
		if a := db.ack.Load(); a != nil {
			if wait := (*a)(); wait != nil {
				db.acks = append(db.acks, wait)
			}
		}
	}
	if db.cfg.CheckpointPages < 0 {
		return nil
	}
	fi, err := os.Stat(db.cfg.Path + "-wal")
	if err != nil || fi.Size() < int64(db.cfg.CheckpointPages)*PageSize {
		return nil
	}
	if _, _, _, err := db.checkpoint(context.WithoutCancel(ctx), "TRUNCATE"); err != nil {
		db.log.Warn("checkpoint failed", "err", err)
	}
	return nil
}

// Close waits for the writer (bounded by the lock timeout), checkpoints and
// closes every connection.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closing)
		ctx := context.Background()
		t := time.NewTimer(db.cfg.LockTimeout)
		held := false
		select {
		case db.wsem <- struct{}{}:
			held = true
		case <-t.C:
		}
		t.Stop()
		db.takeLease() // kept read transactions would hold up the final checkpoint
		var errs []error
		db.stmtMu.Lock()
		for q, st := range db.stmts {
			st.Close()
			delete(db.stmts, q)
		}
		db.stmtMu.Unlock()
		if db.reader != nil {
			errs = append(errs, db.reader.Close())
		}
		errs = append(errs, db.closeFast())
		errs = append(errs, db.closeApplier())
		if held && db.wconn != nil {
			if _, _, _, err := db.checkpoint(ctx, "TRUNCATE"); err != nil {
				db.log.Warn("final checkpoint failed", "err", err)
			}
		}
		if db.wconn != nil {
			errs = append(errs, db.wconn.Close())
		}
		if db.wdb != nil {
			errs = append(errs, db.wdb.Close())
		}
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
}

// Writer is the exclusive lease on the database's single writer connection.
// It is not safe for concurrent use; one session owns it at a time.
type Writer struct {
	db       *DB
	inTx     bool
	released bool
	client   bool // AcquireWriter's: its commits pass the commit check
	// acks: what its commits wait for after Release (SetCommitAck).
	acks []func(context.Context) error
}

// InTx reports whether a transaction Begin started is still open: not
// ended by Commit or Rollback, nor rolled back by SQLite itself (it rolls
// back the whole transaction when a write in it is interrupted or runs
// out of memory or disk).
func (w *Writer) InTx() bool {
	if w.inTx && w.db.wguard.autocommit() {
		w.inTx = false
	}
	return w.inTx
}

// Begin starts a transaction (BEGIN IMMEDIATE: the writer is already ours).
func (w *Writer) Begin(ctx context.Context) error {
	if _, err := w.db.wconn.ExecContext(unwatched(ctx), "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	w.inTx = true
	return nil
}

// Commit commits the transaction and runs the commit hooks.
func (w *Writer) Commit(ctx context.Context) error {
	_, err := w.db.wconn.ExecContext(unwatched(ctx), "COMMIT")
	if err != nil {
		if rerr := w.db.commitErr(err); rerr != err {
			return rerr
		}
		return fmt.Errorf("commit: %w", err)
	}
	w.inTx = false
	return w.db.afterCommit(ctx)
}

// Rollback rolls the transaction back; nothing interrupts it.
func (w *Writer) Rollback(ctx context.Context) error {
	w.inTx = false
	if _, err := w.db.wconn.ExecContext(unwatched(context.WithoutCancel(ctx)), "ROLLBACK"); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

// ExecContext runs a statement on the writer; outside a transaction it
// commits on its own, and the commit hooks run before it returns.
func (w *Writer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := w.db.wconn.ExecContext(ctx, query, args...)
	err = w.db.commitErr(err)
	if !w.inTx {
		if herr := w.db.afterCommit(ctx); err == nil && herr != nil {
			return nil, herr
		}
	}
	return res, err
}

// QueryContext runs a query on the writer, seeing the transaction's own
// uncommitted writes. Close the rows before the next call.
func (w *Writer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return w.db.wconn.QueryContext(ctx, query, args...)
}

// QueryRowContext is QueryContext for a single row.
func (w *Writer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return w.db.wconn.QueryRowContext(ctx, query, args...)
}

// AfterStatement runs the commit hooks if a statement run through
// QueryContext outside a transaction committed (e.g. INSERT … RETURNING).
//
// A commit the commit check refused makes it return the check's error
// (the statement's own error, from its rows, is SQLite's bare
// SQLITE_CONSTRAINT_COMMITHOOK).
func (w *Writer) AfterStatement(ctx context.Context) error {
	if !w.inTx {
		if p := w.db.refusal.Swap(nil); p != nil {
			return &refusedCommit{check: *p, sqlite: errors.New("commit hook")}
		}
		return w.db.afterCommit(ctx)
	}
	return nil
}

// Release ends the lease: an open transaction is rolled back, so that a
// vanished client never leaves the writer inside its transaction.
func (w *Writer) Release(ctx context.Context) {
	if w.released {
		return
	}
	w.released = true
	if w.inTx {
		if err := w.Rollback(ctx); err != nil {
			w.db.log.Warn("rollback on release failed", "err", err)
		}
	}
	if err := w.db.afterCommit(ctx); err != nil {
		w.db.log.Error("commit on release not replicated yet", "err", err)
	}
	if w.client {
		w.db.clientOut.Store(false)
		w.db.refusal.Store(nil)
		w.acks, w.db.acks = w.db.acks, nil
	}
	w.db.dropLease()
	<-w.db.wsem
}

// Acked waits, after Release, for what the Writer's commits must wait
// for before the client hears they succeeded (SetCommitAck: a replica
// confirming them, with sync = "replica"). It returns the first error:
// the client must then be told the commit is not acknowledged. Without
// an ack hook it returns nil at once.
func (w *Writer) Acked(ctx context.Context) error {
	acks := w.acks
	w.acks = nil
	for _, wait := range acks {
		if err := wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// connector opens connections on the private driver and installs the
// authorizer (and, on the writer, the commit hook).
type connector struct {
	dsn    string
	db     *DB
	writer bool
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, g, err := c.open()
	if err != nil {
		return nil, err
	}
	return &conn{c: dc, g: g}, nil
}

// open opens a driver connection with the authorizer, the guard (limits)
// and, on the writer, the commit hook.
func (c *connector) open() (driver.Conn, *guard, error) {
	drvMu.RLock()
	dc, err := drv.Open(c.dsn)
	drvMu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	if a, ok := dc.(msqlite.AuthorizerRegisterer); ok {
		if err := a.RegisterAuthorizer(c.authorize); err != nil {
			dc.Close()
			return nil, nil, fmt.Errorf("register authorizer: %w", err)
		}
	}
	if c.writer {
		h, ok := dc.(msqlite.HookRegisterer)
		if !ok {
			dc.Close()
			return nil, nil, errors.New("sqlite driver has no commit hook")
		}
		h.RegisterCommitHook(func() int32 {
			// Only a client's commit is checked: internal writers
			// (bookkeeping, a demotion's checkpoint) must always pass.
			if c.db.clientOut.Load() && !c.db.internal.Load() {
				if chk := c.db.check.Load(); chk != nil {
					if err := (*chk)(); err != nil {
						c.db.refusal.Store(&err)
						return 1 // SQLite rolls the transaction back
					}
				}
			}
			c.db.committed.Store(true)
			c.db.commits.Add(1)
			return 0
		})
	}
	g, err := newGuard(dc, c.db, c.db.cfg.MaxLength)
	if err != nil {
		dc.Close()
		return nil, nil, err
	}
	return dc, g, nil
}

func (c *connector) Driver() driver.Driver { return drv }

// readPragmas are the introspection pragmas clients' SQL may use (the
// translator reads table and index definitions with them).
var readPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "table_list": true, "collation_list": true,
	"function_list": true, "data_version": true,
}

// authorize keeps ATTACH, PRAGMA (other than introspection) and
// load_extension out of reach of SQL that arrives from PHP.
func (c *connector) authorize(action msqlite.AuthorizerActionCode, arg1, arg2, _, _ string) msqlite.AuthorizerReturnCode {
	switch action {
	case msqlite.AuthAttach, msqlite.AuthDetach:
		return msqlite.AuthorizerDeny
	case msqlite.AuthPragma:
		if c.writer && c.db.internal.Load() {
			return msqlite.AuthorizerOK
		}
		// A pragma with an argument (arg2) could set something; only
		// reads of the whitelisted ones pass.
		if readPragmas[strings.ToLower(arg1)] {
			return msqlite.AuthorizerOK
		}
		return msqlite.AuthorizerDeny
	case msqlite.AuthFunction:
		if strings.EqualFold(arg2, "load_extension") {
			return msqlite.AuthorizerDeny
		}
	}
	return msqlite.AuthorizerOK
}
