package sqlite

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Limits on statements. Every connection a DB opens for clients carries a
// guard: SQLite's progress handler, which runs on the statement's own
// goroutine every progressOps VM instructions, looks at the limits of the
// call in progress and interrupts it (SQLITE_INTERRUPT) when its context
// is done, its deadline or its Watch's time limit has passed, its Watch
// reports the client gone, or the database is closing. Nothing runs beside
// a statement (no goroutine or timer per statement), and a statement that
// ends within progressOps instructions never reads the clock.
//
// The driver (modernc) interrupts on context cancellation itself, with a
// goroutine per call and the same progress-handler slot, and it stops
// watching once a query's first row is out; so the guarded connections
// hand it contexts that are never cancelled, and the guard watches every
// step of a query until its rows are closed.

const (
	// DefaultMaxLength is the longest string, blob or row a statement may
	// build or store (SQLITE_LIMIT_LENGTH), MariaDB's default
	// max_allowed_packet: a statement that would make a longer one fails
	// with SQLITE_TOOBIG instead of growing the node.
	DefaultMaxLength = 16 << 20
	// maxLengthCap is SQLITE_MAX_LENGTH of modernc's build.
	maxLengthCap = 1_000_000_000

	// DefaultHeapLimit bounds SQLite's heap, all databases of the process
	// together (sqlite3_hard_heap_limit64): an allocation beyond it fails
	// the statement with SQLITE_NOMEM. Page caches shrink from half of it
	// on (the soft limit).
	DefaultHeapLimit = 512 << 20

	// progressOps is how many VM instructions run between two looks at a
	// statement's limits (the driver's own value).
	progressOps = 1000

	// goneAfter is how long a statement runs before its Watch's Gone is
	// first polled, and goneEvery how often after that: a poll is a
	// system call, which statements of a few milliseconds never pay.
	goneAfter = 10 * time.Millisecond
	goneEvery = 10 * time.Millisecond
)

// ErrStatementTimeout is returned (wrapping SQLite's SQLITE_INTERRUPT
// error) by a statement that ran longer than its Watch's Timeout.
var ErrStatementTimeout = errors.New("sqlite: statement time limit exceeded")

// ErrClientGone is returned (wrapping SQLite's SQLITE_INTERRUPT error) by a
// statement interrupted because its Watch reported the client gone.
var ErrClientGone = errors.New("sqlite: client gone, statement interrupted")

// A Watch bounds the statements of one client session, run with a context
// that carries it (WithWatch). Call Begin before each client statement:
// the SQLite statements it runs share its time limit.
//
// A Watch is not safe for concurrent use: its checks run inside SQLite on
// the goroutine that runs the statement, which must be the session's.
type Watch struct {
	// Timeout is each client statement's time limit; 0 means none. Its
	// clock starts when the statement has run progressOps instructions.
	Timeout time.Duration
	// Gone, if set, reports whether the session's client has gone away;
	// it is called from inside SQLite (it must not run SQL), once a
	// statement has run for goneAfter and then every goneEvery.
	Gone func() bool

	started  bool
	deadline int64 // unix nanoseconds; 0: none
	nextPoll int64
}

// Begin starts the watch over a new client statement.
func (w *Watch) Begin() { w.started = false }

type watchKey struct{}

// WithWatch returns ctx carrying w: statements run with it are bounded by w.
func WithWatch(ctx context.Context, w *Watch) context.Context {
	return context.WithValue(ctx, watchKey{}, w)
}

// unwatched strips the Watch from ctx: for ephpm's own statements run on a
// client's behalf (commit hooks, checkpoints, transaction control), which
// a client's time limit must not cut short.
func unwatched(ctx context.Context) context.Context {
	if w, _ := ctx.Value(watchKey{}).(*Watch); w == nil {
		return ctx
	}
	return context.WithValue(ctx, watchKey{}, (*Watch)(nil))
}

// limits are what bound the call in progress on a connection.
type limits struct {
	ctx      context.Context // set when ctx can be cancelled
	done     <-chan struct{}
	deadline int64 // ctx's, unix nanoseconds; 0: none
	watch    *Watch
}

func limitsOf(ctx context.Context) limits {
	var l limits
	if d := ctx.Done(); d != nil {
		l.ctx, l.done = ctx, d
	}
	if t, ok := ctx.Deadline(); ok {
		l.deadline = t.UnixNano()
	}
	l.watch, _ = ctx.Value(watchKey{}).(*Watch)
	return l
}

// guard is one connection's progress handler state. It is used by the
// goroutine that uses the connection (database/sql and ReadSession hand a
// connection from one goroutine to the next with a lock in between).
type guard struct {
	id     uintptr
	handle uintptr // sqlite3*
	db     *DB
	cur    limits
	why    error // why the progress handler interrupted the current call
}

var (
	guards  sync.Map // id → *guard; the progress handler's argument is the id
	guardID atomic.Uintptr

	// progressFn is progress as a function pointer for the transpiled C
	// code (the representation modernc's own callbacks rely on).
	progressFn = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr) int32
	}{progress}))
)

// newGuard installs the progress handler and the length limit on a
// connection the driver just opened.
func newGuard(dc any, db *DB, maxLength int) (*guard, error) {
	h, err := handleOf(dc)
	if err != nil {
		return nil, err
	}
	g := &guard{id: guardID.Add(1), handle: h, db: db}
	guards.Store(g.id, g)
	// A TLS of our own, as the driver's interrupt does: the connection's
	// is not ours (nothing runs on the connection yet).
	tls := libc.NewTLS()
	defer tls.Close()
	sqlite3.Xsqlite3_progress_handler(tls, h, progressOps, progressFn, g.id)
	sqlite3.Xsqlite3_limit(tls, h, sqlite3.SQLITE_LIMIT_LENGTH, int32(maxLength))
	return g, nil
}

// handleOf finds the sqlite3* of a modernc connection, which the driver
// does not export. A driver upgrade that renames it fails every Open
// (and the tests), never silently.
func handleOf(dc any) (uintptr, error) {
	v := reflect.ValueOf(dc)
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("db"); f.IsValid() && f.Kind() == reflect.Uintptr && f.Uint() != 0 {
			return uintptr(f.Uint()), nil
		}
	}
	return 0, fmt.Errorf("sqlite: cannot find the connection handle of %T", dc)
}

func (g *guard) close() { guards.Delete(g.id) }

// arm makes ctx's limits those of the call about to run and returns the
// previous ones for restore (calls nest: a query's rows stay open while
// other statements run on the same connection).
func (g *guard) arm(ctx context.Context) limits {
	prev := g.cur
	g.cur = limitsOf(ctx)
	g.why = nil
	return prev
}

func (g *guard) restore(prev limits) { g.cur = prev }

// err adds to the error of an interrupted call why it was interrupted.
func (g *guard) err(err error) error {
	if err == nil || g.why == nil {
		return err
	}
	if ErrorCode(err)&0xff != CodeInterrupt {
		return err
	}
	return fmt.Errorf("%w: %w", g.why, err)
}

// autocommit reports whether SQLite is outside a transaction on this
// connection (a write interrupted inside one rolls it back). Only the
// connection's user may call it, between statements.
func (g *guard) autocommit() bool {
	tls := libc.NewTLS()
	defer tls.Close()
	return sqlite3.Xsqlite3_get_autocommit(tls, g.handle) != 0
}

func progress(_ *libc.TLS, id uintptr) int32 {
	v, ok := guards.Load(id)
	if !ok {
		return 0
	}
	return v.(*guard).check()
}

// check runs inside SQLite on the statement's goroutine; non-zero
// interrupts the statement.
func (g *guard) check() int32 {
	l := &g.cur
	if l.done == nil && l.deadline == 0 && l.watch == nil {
		return 0
	}
	if l.done != nil {
		select {
		case <-l.done:
			g.why = l.ctx.Err()
			return 1
		default:
		}
	}
	// A client's statement stops when its database closes (shutdown);
	// ephpm's own run unwatched and uncancelled, and finish.
	select {
	case <-g.db.closing:
		g.why = ErrClosed
		return 1
	default:
	}
	now := time.Now().UnixNano()
	if l.deadline != 0 && now >= l.deadline {
		g.why = context.DeadlineExceeded
		return 1
	}
	w := l.watch
	if w == nil {
		return 0
	}
	if !w.started {
		w.started = true
		w.deadline = 0
		if w.Timeout > 0 {
			w.deadline = now + int64(w.Timeout)
		}
		w.nextPoll = now + int64(goneAfter)
		return 0
	}
	if w.deadline != 0 && now >= w.deadline {
		g.why = ErrStatementTimeout
		return 1
	}
	if w.Gone != nil && now >= w.nextPoll {
		w.nextPoll = now + int64(goneEvery)
		if w.Gone() {
			g.why = ErrClientGone
			return 1
		}
	}
	return 0
}

// Heap limits are process-wide in SQLite and work only with its memory
// statistics on, which modernc builds off and which can only be switched on
// before SQLite initialises: at this package's init, before any connection.
var memstatusErr error

func init() {
	tls := libc.NewTLS()
	defer tls.Close()
	va := libc.Xmalloc(tls, 8)
	if va == 0 {
		memstatusErr = errors.New("sqlite: out of memory")
		return
	}
	defer libc.Xfree(tls, va)
	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_MEMSTATUS, libc.VaList(va, int32(1))); rc != sqlite3.SQLITE_OK {
		memstatusErr = fmt.Errorf("sqlite: memory statistics: SQLite was initialised already (rc %d)", rc)
		return
	}
	SetHeapLimit(DefaultHeapLimit)
}

// SetHeapLimit bounds SQLite's heap, all databases of the process together:
// beyond n bytes an allocation fails its statement with SQLITE_NOMEM, and
// page caches give memory back from n/2 on. n <= 0 removes the limits.
func SetHeapLimit(n int64) error {
	if memstatusErr != nil {
		return memstatusErr
	}
	if n < 0 {
		n = 0
	}
	tls := libc.NewTLS()
	defer tls.Close()
	sqlite3.Xsqlite3_hard_heap_limit64(tls, n)
	sqlite3.Xsqlite3_soft_heap_limit64(tls, n/2)
	return nil
}

// HeapUsed is the memory SQLite has allocated now, and the most it has held
// since the process started.
func HeapUsed() (now, highest int64) {
	tls := libc.NewTLS()
	defer tls.Close()
	return sqlite3.Xsqlite3_memory_used(tls), sqlite3.Xsqlite3_memory_highwater(tls, 0)
}
