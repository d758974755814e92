package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The read fast path: driver connections used without database/sql, each
// with its own prepared statements, and (for a ReadSession that pins one)
// a read transaction kept open across a client's consecutive reads.
//
// SQLite in WAL mode takes and drops a shared-memory lock and sets up a
// snapshot for every autocommit SELECT; a PHP request doing 30 point reads
// pays that 30 times. A kept read transaction pays it once, but it must
// never serve stale data and must never hold up a checkpoint, so it lives
// only while nobody writes: taking the writer lease (every client commit,
// checkpoint and replica ApplyPages takes it first) ends every kept
// transaction that is idle and marks the busy ones to end after their
// statement, and no new one is kept while the lease is out. The commit
// generation and Applied() are checked too, as a second guard.

// rconn is a reader driver connection with its prepared statements. One
// goroutine uses it at a time.
type rconn struct {
	c     driver.Conn // the driver's own: ReadSession arms the guard itself
	g     *guard
	stmts map[string]driver.Stmt

	// kept read transaction (pinned connections only), guarded by
	// DB.snapMu while the connection is idle
	inTx    bool
	gen     uint64 // DB.snapGen when it began
	commits uint64 // DB.commits when it began
	applied uint64 // DB.Applied() when it began
}

func (c *rconn) stmt(query string) (driver.Stmt, error) {
	if st := c.stmts[query]; st != nil {
		return st, nil
	}
	// Never a cancellable context for the driver: it would take over
	// the progress handler the guard owns (here and in exec).
	st, err := c.c.(driver.ConnPrepareContext).PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	if len(c.stmts) >= DefaultStmtCache {
		for q, old := range c.stmts { // random eviction: map order
			old.Close()
			delete(c.stmts, q)
			break
		}
	}
	c.stmts[query] = st
	return st, nil
}

func (c *rconn) exec(q string) error {
	_, err := c.c.(driver.ExecerContext).ExecContext(context.Background(), q, nil)
	return err
}

func (c *rconn) close() error {
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
	c.g.close()
	return c.c.Close()
}

// fastPool holds the idle reader driver connections. Pinned connections
// are capped at Readers and the pool at twice that, so a statement that
// borrows one never waits for a session to end.
type fastPool struct {
	idle chan *rconn
	mu   sync.Mutex
	open int
	max  int
}

func (db *DB) openRconn(ctx context.Context) (*rconn, error) {
	c, g, err := (&connector{dsn: db.readerDSN, db: db}).open()
	if err != nil {
		return nil, fmt.Errorf("open reader %s: %w", db.cfg.Path, err)
	}
	if _, ok := c.(driver.ConnPrepareContext); !ok {
		g.close()
		c.Close()
		return nil, errors.New("sqlite driver cannot prepare with a context")
	}
	return &rconn{c: c, g: g, stmts: map[string]driver.Stmt{}}, nil
}

// getRconn borrows an idle connection, opening one below the cap, else
// waits for one.
func (db *DB) getRconn(ctx context.Context) (*rconn, error) {
	p := &db.fast
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	p.mu.Lock()
	if p.open < p.max {
		p.open++
		p.mu.Unlock()
		c, err := db.openRconn(ctx)
		if err != nil {
			p.mu.Lock()
			p.open--
			p.mu.Unlock()
			return nil, err
		}
		return c, nil
	}
	p.mu.Unlock()
	select {
	case c := <-p.idle:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-db.closing:
		return nil, ErrClosed
	}
}

// putRconn returns a connection to the pool, or closes it once the DB is
// closing.
func (db *DB) putRconn(c *rconn) {
	select {
	case <-db.closing:
	default:
		select {
		case db.fast.idle <- c:
			return
		default:
		}
	}
	c.close()
	db.fast.mu.Lock()
	db.fast.open--
	db.fast.mu.Unlock()
}

// closeFast closes the idle connections; those out come back through
// putRconn, which closes them.
func (db *DB) closeFast() error {
	var errs []error
	for {
		select {
		case c := <-db.fast.idle:
			errs = append(errs, c.close())
			db.fast.mu.Lock()
			db.fast.open--
			db.fast.mu.Unlock()
		default:
			return errors.Join(errs...)
		}
	}
}

// ReadSession is one client session's read path (a MySQL connection's):
// while the database has fewer than Readers pinned sessions it pins a
// reader connection, whose read transaction it keeps across consecutive
// reads as long as nothing commits; otherwise each read borrows a pooled
// connection. Either way a read sees every commit that finished before it
// began. A ReadSession is not safe for concurrent use; Close it when the
// session ends.
type ReadSession struct {
	db     *DB
	pinned *rconn // nil: not pinned (yet, or the cap was reached)
	tried  bool   // pinning was attempted
	busy   bool   // a statement runs on pinned (guarded by db.snapMu)
	cur    *rconn // the connection of the open Rows
	closed bool
}

// NewReadSession returns a session; it takes no connection until its
// first read.
func (db *DB) NewReadSession() *ReadSession { return &ReadSession{db: db} }

// Generation changes whenever a transaction commits on this database or a
// replica applies pages: equal values mean no data changed in between.
func (db *DB) Generation() uint64 { return db.commits.Load() + db.applied.Load() }

// Query runs one SQL statement that returns rows (a read) with args; the
// Rows must be closed before the next Query.
func (rs *ReadSession) Query(ctx context.Context, query string, args []driver.NamedValue) (*Rows, error) {
	if rs.closed {
		return nil, ErrClosed
	}
	if rs.cur != nil {
		return nil, errors.New("sqlite: previous rows not closed")
	}
	db := rs.db
	select {
	case <-db.closing:
		return nil, ErrClosed
	default:
	}
	if !rs.tried {
		rs.tried = true
		rs.pin(ctx)
	}
	var c *rconn
	if rs.pinned != nil {
		c = rs.pinned
		if err := rs.startStmt(ctx); err != nil {
			rs.endStmt()
			return nil, err
		}
	} else {
		var err error
		if c, err = db.getRconn(ctx); err != nil {
			return nil, err
		}
	}
	rs.cur = c
	st, err := c.stmt(query)
	if err != nil {
		rs.done()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		rs.done()
		return nil, err
	}
	// The driver gets a context it need not watch: the guard watches
	// every step of the query until the rows are closed.
	prev := c.g.arm(ctx)
	r, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), args)
	if err != nil {
		err = c.g.err(err)
		c.g.restore(prev)
		rs.done()
		return nil, err
	}
	return &Rows{rs: rs, r: r, g: c.g, prev: prev, decl: r.(driver.RowsColumnTypeDatabaseTypeName)}, nil
}

// pin takes a pinned connection if fewer than Readers are pinned.
func (rs *ReadSession) pin(ctx context.Context) {
	db := rs.db
	db.snapMu.Lock()
	if db.pinned >= db.cfg.Readers {
		db.snapMu.Unlock()
		return
	}
	db.pinned++
	db.snapMu.Unlock()
	c, err := db.getRconn(ctx)
	if err != nil {
		db.snapMu.Lock()
		db.pinned--
		db.snapMu.Unlock()
		return
	}
	db.snapMu.Lock()
	rs.pinned = c
	db.sessions[rs] = struct{}{}
	db.snapMu.Unlock()
}

// startStmt marks the pinned connection busy and makes sure its read
// transaction is current: a stale one ends, and a new one begins unless
// the writer lease is out (its transaction could commit at any time).
func (rs *ReadSession) startStmt(ctx context.Context) error {
	db, c := rs.db, rs.pinned
	db.snapMu.Lock()
	defer db.snapMu.Unlock()
	rs.busy = true
	if c.inTx && !db.snapValid(c) {
		if err := db.endSnap(c); err != nil {
			return err
		}
	}
	if !c.inTx && !db.leaseOut {
		// BEGIN (deferred) reads nothing: the snapshot is taken by the
		// statement's first step, after gen was recorded here, so a
		// commit before that step is seen and one after bumps gen.
		if err := c.exec("BEGIN"); err != nil {
			return fmt.Errorf("begin read: %w", err)
		}
		c.inTx, c.gen, c.commits, c.applied = true, db.snapGen, db.commits.Load(), db.applied.Load()
	}
	return nil
}

// snapValid: nothing wrote since c's transaction began. Caller holds snapMu.
func (db *DB) snapValid(c *rconn) bool {
	return !db.leaseOut && c.gen == db.snapGen && c.commits == db.commits.Load() && c.applied == db.applied.Load()
}

// endSnap ends c's kept read transaction. Caller holds snapMu and c is
// not running a statement.
func (db *DB) endSnap(c *rconn) error {
	c.inTx = false
	if err := c.exec("ROLLBACK"); err != nil {
		return fmt.Errorf("end read: %w", err)
	}
	return nil
}

// endStmt marks the pinned connection idle, ending its transaction if a
// writer came along meanwhile.
func (rs *ReadSession) endStmt() {
	db, c := rs.db, rs.pinned
	db.snapMu.Lock()
	rs.busy = false
	if c.inTx && !db.snapValid(c) {
		if err := db.endSnap(c); err != nil {
			db.log.Warn("end read transaction", "err", err)
		}
	}
	db.snapMu.Unlock()
}

// done ends the current statement's use of its connection.
func (rs *ReadSession) done() {
	c := rs.cur
	rs.cur = nil
	if c == nil {
		return
	}
	if c == rs.pinned {
		rs.endStmt()
		return
	}
	rs.db.putRconn(c)
}

// Close ends the kept read transaction and gives the pinned connection
// back.
func (rs *ReadSession) Close() {
	if rs.closed {
		return
	}
	rs.closed = true
	if rs.cur != nil {
		rs.done()
	}
	c := rs.pinned
	if c == nil {
		return
	}
	db := rs.db
	db.snapMu.Lock()
	delete(db.sessions, rs)
	db.pinned--
	rs.pinned = nil
	if c.inTx {
		if err := db.endSnap(c); err != nil {
			db.log.Warn("end read transaction", "err", err)
		}
	}
	db.snapMu.Unlock()
	db.putRconn(c)
}

// takeLease is called with the writer lease just taken: no read
// transaction is kept from now until dropLease, and idle ones end now so
// that they hold up no checkpoint.
func (db *DB) takeLease() {
	db.snapMu.Lock()
	defer db.snapMu.Unlock()
	db.leaseOut = true
	db.snapGen++
	for rs := range db.sessions {
		if !rs.busy && rs.pinned != nil && rs.pinned.inTx {
			if err := db.endSnap(rs.pinned); err != nil {
				db.log.Warn("end read transaction", "err", err)
			}
		}
	}
}

// dropLease is called just before the writer lease is given back.
func (db *DB) dropLease() {
	db.snapMu.Lock()
	db.leaseOut = false
	db.snapGen++
	db.snapMu.Unlock()
}

// Rows is the result of ReadSession.Query.
type Rows struct {
	rs   *ReadSession
	r    driver.Rows
	g    *guard
	prev limits
	decl driver.RowsColumnTypeDatabaseTypeName
	cols []string
}

// Columns are the result's column names.
func (r *Rows) Columns() []string {
	if r.cols == nil {
		r.cols = r.r.Columns()
	}
	return r.cols
}

// DeclType is column i's declared type, upper case ("" for expressions).
func (r *Rows) DeclType(i int) string { return r.decl.ColumnTypeDatabaseTypeName(i) }

// Next fills dest (one value per column: nil, int64, float64, string,
// []byte or time.Time for DATE/DATETIME/TIMESTAMP columns) with the next
// row; io.EOF after the last. The values are the caller's to keep.
func (r *Rows) Next(dest []driver.Value) error {
	if r.rs == nil {
		return io.EOF
	}
	return r.g.err(r.r.Next(dest))
}

// Close ends the statement; it is safe to call more than once.
func (r *Rows) Close() error {
	if r.rs == nil {
		return nil
	}
	err := r.r.Close()
	r.g.restore(r.prev)
	r.rs.done()
	r.rs = nil
	return err
}
