package mysqlwire

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/replication"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/vtenv"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
	"github.com/ephpm/ephpm/sqlxlate"
)

// handler adapts vitess's callbacks to sessions. vitess calls it from one
// goroutine per connection, so a session needs no locking.
type handler struct {
	srv *Server
}

var _ mysql.Handler = (*handler)(nil)

// session is one client connection's state.
type session struct {
	srv  *Server
	conn *mysql.Conn

	acct    *Account
	db      *sqlite.DB
	release func()
	site    *siteState
	opened  bool
	// rd runs the session's single-statement reads outside transactions:
	// one pinned reader connection keeps its read snapshot across them
	// while nothing commits (see sqlite.ReadSession).
	rd *sqlite.ReadSession

	database   string
	autocommit bool
	inTx       bool           // BEGIN seen, not yet ended
	w          *sqlite.Writer // held from a transaction's first write to its end
	savepoints []string
	schemaTx   bool // the open transaction changed the schema
	// hasTemp: the session created temporary tables; they live on the
	// writer connection, so its statements run there from then on.
	hasTemp bool

	vars         map[string]string
	uvars        map[string]any
	lastInsertID uint64
	foundRows    int64
	rowCount     int64

	// replica sites: the session's statements that run on the primary
	fwd        ForwardSession
	setHistory []string

	// watch bounds the session's statements (time limit, client gone);
	// ctx carries it and is what they run with.
	watch sqlite.Watch
	ctx   context.Context
}

// newSession is a connection's (or a Detached) session.
func newSession(srv *Server, c *mysql.Conn) *session {
	s := &session{srv: srv, conn: c, autocommit: true, rowCount: -1}
	s.watch.Timeout = srv.cfg.StatementTimeout
	s.ctx = sqlite.WithWatch(srv.stmtCtx, &s.watch)
	s.resetVars()
	return s
}

func sess(c *mysql.Conn) *session { return c.ClientData.(*session) }

func (h *handler) NewConnection(c *mysql.Conn) {
	c.StatusFlags |= mysql.ServerStatusAutocommit
	s := newSession(h.srv, c)
	s.watch.Gone = s.clientGone
	c.ClientData = s
	if !h.srv.trackConn(c) {
		c.Close()
	}
}

func (h *handler) ConnectionReady(c *mysql.Conn) {
	// The connect-time database arrived (as USE) already, if any; opening
	// here makes a broken database fail the first command, not silently.
	_ = sess(c).open()
}

func (h *handler) ConnectionClosed(c *mysql.Conn) {
	s := sess(c)
	if s.fwd != nil {
		s.fwd.Close()
		s.fwd = nil
	}
	s.endTx(context.Background(), false)
	if s.hasTemp {
		s.dropTemps(context.Background())
	}
	if s.rd != nil {
		s.rd.Close()
		s.rd = nil
	}
	if s.release != nil {
		h.srv.releaseSite(s.db)
		s.release()
		s.release = nil
	}
	h.srv.untrackConn(c)
}

func (h *handler) ComResetConnection(c *mysql.Conn) {
	s := sess(c)
	if s.fwd != nil {
		s.fwd.Close()
		s.fwd = nil
	}
	s.setHistory = nil
	s.endTx(s.srv.ctx, false)
	s.autocommit = true
	s.watch.Timeout = s.srv.cfg.StatementTimeout
	s.resetVars()
	s.lastInsertID, s.foundRows, s.rowCount = 0, 0, -1
	s.setStatus()
}

func (h *handler) Env() *vtenv.Environment { return h.srv.env }

func (h *handler) WarningCount(*mysql.Conn) uint16 { return 0 }

func (h *handler) ComQuery(c *mysql.Conn, query string, callback func(*sqltypes.Result) error) error {
	s := sess(c)
	res, err := s.runSQL(query, nil)
	if err != nil {
		return err
	}
	return callback(res)
}

func (h *handler) ComQueryMulti(*mysql.Conn, string, func(sqltypes.QueryResponse, bool, bool) error) error {
	return sqlerror.NewSQLErrorf(sqlerror.ERUnknownComError, sqlerror.SSNetError, "multi-query mode is not enabled")
}

func (h *handler) ComPrepare(c *mysql.Conn, query string) ([]*querypb.Field, uint16, error) {
	s := sess(c)
	if err := s.open(); err != nil {
		return nil, 0, err
	}
	plan, err := s.translate(query)
	if err != nil {
		return nil, 0, err
	}
	if plan.Params > 65535 {
		return nil, 0, sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "too many placeholders")
	}
	s.watch.Begin() // describing may run the query
	fields, err := s.describe(plan)
	if err != nil {
		s.countInterrupt(err)
		return nil, 0, toSQLError(err, s.database)
	}
	return fields, uint16(plan.Params), nil
}

func (h *handler) ComStmtExecute(c *mysql.Conn, prep *mysql.PrepareData, callback func(*sqltypes.Result) error) error {
	s := sess(c)
	args := make([]any, prep.ParamsCount)
	for i := range args {
		bv := prep.BindVars["v"+strconv.Itoa(i+1)]
		if bv == nil {
			continue
		}
		v, err := bindValue(bv)
		if err != nil {
			return sqlerror.NewSQLErrorf(sqlerror.ERWrongArguments, sqlerror.SSUnknownSQLState, "bad parameter %d: %v", i+1, err)
		}
		args[i] = v
	}
	res, err := s.runSQL(prep.PrepareStmt, args)
	if err != nil {
		return err
	}
	return callback(res)
}

func (h *handler) ComRegisterReplica(*mysql.Conn, string, uint16, string, string) error {
	return notSupported("replication")
}

func (h *handler) ComBinlogDump(*mysql.Conn, string, uint32) error { return notSupported("binlog") }

func (h *handler) ComBinlogDumpGTID(*mysql.Conn, string, uint64, replication.GTIDSet, uint16) error {
	return notSupported("binlog")
}

func notSupported(what string) error {
	return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError, "This version of ephpm doesn't yet support '%s'", what)
}

// defaultVars are the session variables a connection starts with, keys
// lower case; built once, copied per connection.
var defaultVars = func() map[string]string {
	m := map[string]string{}
	for k, v := range sqlxlate.DefaultVariables() {
		m[strings.ToLower(k)] = v
	}
	m["autocommit"] = "1"
	return m
}()

func (s *session) resetVars() {
	s.vars = maps.Clone(defaultVars)
	s.uvars = map[string]any{}
	// What bounds this session, as MySQL reports it.
	s.vars["max_allowed_packet"] = strconv.Itoa(sqlxlate.MaxLength())
	s.vars["max_execution_time"] = strconv.FormatInt(s.watch.Timeout.Milliseconds(), 10)
}

// open resolves the account and opens the site database once.
func (s *session) open() error {
	if s.opened {
		return nil
	}
	ud, ok := s.conn.UserData.(*accountData)
	if !ok {
		return sqlerror.NewSQLErrorf(sqlerror.ERAccessDeniedError, sqlerror.SSAccessDeniedError, "not authenticated")
	}
	s.acct = ud.acct
	db, release, err := s.acct.Open(s.srv.ctx)
	if err != nil {
		s.srv.log.Error("open site database", "user", s.acct.User, "err", err)
		return sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "cannot open database '%s'", s.acct.Database)
	}
	if release == nil {
		release = func() {}
	}
	s.db, s.release = db, release
	s.rd = db.NewReadSession()
	s.site = s.srv.acquireSite(db, s.acct.Database)
	s.opened = true
	return nil
}

func (s *session) translate(query string) (*sqlxlate.Plan, error) {
	if a := s.db.Applied(); a != s.site.applied.Load() {
		// A replica applied the primary's pages: the schema may have
		// changed underneath the cached definitions.
		s.site.applied.Store(a)
		s.site.cat.Invalidate()
	}
	if v := s.db.SchemaVersion(); v != s.site.schema.Load() {
		// Someone else (Hrana, ephpm) changed the schema.
		s.site.schema.Store(v)
		s.site.cat.Invalidate()
	}
	plan, err := s.srv.xl.Translate(s.srv.ctx, query, s.site.cat)
	if err != nil {
		return nil, toSQLError(err, s.database)
	}
	return plan, nil
}

// runSQL translates and runs one statement; args are the values of ?
// placeholders for prepared statements.
func (s *session) runSQL(query string, args []any) (res *sqltypes.Result, err error) {
	// A bug in translation or execution fails the statement, not the
	// connection (vitess would drop it) nor the server.
	defer func() {
		if x := recover(); x != nil {
			s.srv.log.Error("panic in statement", "sql", query, "panic", x)
			res, err = nil, sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "internal error: %v", x)
		}
	}()
	if err := s.open(); err != nil {
		return nil, err
	}
	plan, err := s.translate(query)
	if err != nil {
		return nil, err
	}
	// No context per statement (a timer each): the session's Watch
	// bounds it, checked from inside SQLite (see sqlite.Watch).
	s.watch.Begin()
	ctx := s.ctx
	s.srv.stats.statements.Add(1)
	if fres, handled, ferr := s.forward(ctx, query, plan, args); handled {
		if ferr != nil {
			s.srv.stats.errors.Add(1)
			return nil, toSQLError(ferr, s.database)
		}
		return fres, nil
	}
	res, err = s.run(ctx, plan, args)
	if errors.Is(err, ephpm.ErrNotPrimary) && s.w == nil && !s.txActive() {
		// The site was demoted while this write waited at its fence
		// (a change of primary): nothing of it ran here, so it goes to
		// the new primary as on any replica.
		if fres, handled, ferr := s.forward(ctx, query, plan, args); handled {
			if ferr != nil {
				s.srv.stats.errors.Add(1)
				return nil, toSQLError(ferr, s.database)
			}
			return fres, nil
		}
	}
	var rolledBack bool
	if err != nil && s.w != nil && !s.w.InTx() {
		// SQLite rolled the whole transaction back (a write in it was
		// interrupted or ran out of memory): so does the session, as
		// MySQL does after a deadlock, and the writer is free again.
		s.endTx(context.WithoutCancel(ctx), false)
		rolledBack = true
	}
	s.setStatus()
	if err != nil {
		s.srv.log.Debug("statement failed", "sql", query, "err", err)
		s.srv.stats.errors.Add(1)
		if errors.Is(err, sqlite.ErrLockTimeout) {
			s.srv.stats.lockTimeouts.Add(1)
		}
		s.countInterrupt(err)
		se := toSQLError(err, s.database)
		if e, ok := se.(*sqlerror.SQLError); ok && rolledBack {
			se = sqlerror.NewSQLErrorf(e.Num, e.State, "%s; the transaction was rolled back", e.Message)
		}
		return nil, se
	}
	return res, nil
}

// countInterrupt counts the statements the Watch interrupted.
func (s *session) countInterrupt(err error) {
	switch {
	case errors.Is(err, sqlite.ErrStatementTimeout):
		s.srv.stats.timeouts.Add(1)
		s.srv.log.Info("statement time limit exceeded", "database", s.database, "limit", s.watch.Timeout.String())
	case errors.Is(err, sqlite.ErrClientGone):
		s.srv.stats.clientGone.Add(1)
		s.srv.log.Info("statement interrupted: client gone", "database", s.database)
	}
}

// clientGone reports whether the client closed or reset its connection, or
// the server closed it (Close): SQLite polls it during a long statement
// (sqlite.Watch.Gone), a poll(2) on the socket that reads nothing.
func (s *session) clientGone() bool {
	if s.conn.IsClosed() {
		return true
	}
	sc, ok := s.conn.GetRawConn().(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	if err := rc.Control(func(fd uintptr) { gone = peerClosed(fd) }); err != nil {
		return true // closed under us
	}
	return gone
}

func (s *session) txActive() bool { return s.inTx || !s.autocommit }

func (s *session) setStatus() {
	if s.autocommit {
		s.conn.StatusFlags |= mysql.ServerStatusAutocommit
	} else {
		s.conn.StatusFlags &^= mysql.ServerStatusAutocommit
	}
	if s.inTx || s.w != nil {
		s.conn.StatusFlags |= mysql.ServerStatusInTrans
	} else {
		s.conn.StatusFlags &^= mysql.ServerStatusInTrans
	}
}

// run executes a plan.
func (s *session) run(ctx context.Context, plan *sqlxlate.Plan, args []any) (*sqltypes.Result, error) {
	switch plan.Kind {
	case sqlxlate.KindQuery:
		return s.query(ctx, plan, args)
	case sqlxlate.KindExec:
		return s.exec(ctx, plan, args)
	case sqlxlate.KindBegin:
		// MySQL commits an open transaction when a new one starts.
		if err := s.endTx(ctx, true); err != nil {
			return nil, err
		}
		s.inTx = true
		return &sqltypes.Result{}, nil
	case sqlxlate.KindCommit:
		return &sqltypes.Result{}, s.endTx(ctx, true)
	case sqlxlate.KindRollback:
		return &sqltypes.Result{}, s.endTx(ctx, false)
	case sqlxlate.KindSavepoint:
		if !s.txActive() {
			return &sqltypes.Result{}, nil
		}
		if err := s.ensureWriter(ctx); err != nil {
			return nil, err
		}
		if _, err := s.w.ExecContext(ctx, "SAVEPOINT "+quoteIdent(plan.Name)); err != nil {
			return nil, err
		}
		s.savepoints = append(s.savepoints, strings.ToLower(plan.Name))
		return &sqltypes.Result{}, nil
	case sqlxlate.KindRelease, sqlxlate.KindRollbackTo:
		i := s.findSavepoint(plan.Name)
		if i < 0 || s.w == nil {
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERSPDoesNotExist, "42000", "SAVEPOINT %s does not exist", plan.Name)
		}
		stmt := "RELEASE SAVEPOINT "
		if plan.Kind == sqlxlate.KindRollbackTo {
			stmt = "ROLLBACK TO SAVEPOINT "
			s.savepoints = s.savepoints[:i+1]
		} else {
			s.savepoints = s.savepoints[:i]
		}
		if _, err := s.w.ExecContext(ctx, stmt+quoteIdent(plan.Name)); err != nil {
			return nil, err
		}
		return &sqltypes.Result{}, nil
	case sqlxlate.KindSet:
		return &sqltypes.Result{}, s.set(ctx, plan, args)
	case sqlxlate.KindUse:
		if !strings.EqualFold(plan.DB, s.acct.Database) {
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERDBAccessDenied, "42000", "Access denied for user '%s'@'%%' to database '%s'", s.acct.User, plan.DB)
		}
		s.database = s.acct.Database
		return &sqltypes.Result{}, nil
	case sqlxlate.KindResult:
		return s.constResult(plan)
	case sqlxlate.KindNoop:
		return &sqltypes.Result{}, nil
	}
	return nil, fmt.Errorf("unknown plan kind %v", plan.Kind)
}

func (s *session) findSavepoint(name string) int {
	name = strings.ToLower(name)
	for i := len(s.savepoints) - 1; i >= 0; i-- {
		if s.savepoints[i] == name {
			return i
		}
	}
	return -1
}

// ensureWriter takes the writer for the open transaction on its first write.
func (s *session) ensureWriter(ctx context.Context) error {
	if s.w != nil {
		return nil
	}
	w, err := s.db.AcquireWriter(s.srv.ctx) // the wait ends with the server
	if err != nil {
		return err
	}
	if err := w.Begin(ctx); err != nil {
		w.Release(ctx)
		return err
	}
	s.w = w
	return nil
}

// endTx commits (or rolls back) the open transaction, if any, and gives
// the writer back.
func (s *session) endTx(ctx context.Context, commit bool) error {
	var err error
	if w := s.w; w != nil {
		if commit {
			err = w.Commit(ctx)
		} else {
			err = w.Rollback(ctx)
		}
		w.Release(ctx)
		s.w = nil
		if err == nil && commit {
			// sync = "replica": OK only once a replica has it, waited
			// for with the writer given back.
			err = w.Acked(ctx)
		}
	}
	if s.schemaTx && s.site != nil {
		s.site.cat.Invalidate()
	}
	s.inTx, s.schemaTx, s.savepoints = false, false, nil
	return err
}

// querier is what a statement runs on: the writer, a reader connection or
// the reader pool.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// cachedReader reads through the DB's prepared statement cache.
type cachedReader struct{ db *sqlite.DB }

func (r cachedReader) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return r.db.Reader().ExecContext(ctx, q, args...)
}

func (r cachedReader) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return r.db.QueryContext(ctx, q, args...)
}

func (r cachedReader) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return r.db.Reader().QueryRowContext(ctx, q, args...)
}

var (
	_ querier = cachedReader{}
	_ querier = (*sqlite.Writer)(nil)
	_ querier = (*sql.DB)(nil)
	_ querier = (*sql.Conn)(nil)
)

func (s *session) query(ctx context.Context, plan *sqlxlate.Plan, args []any) (*sqltypes.Result, error) {
	if len(plan.Stmts) == 0 {
		return nil, errors.New("empty query plan")
	}
	named := s.bind(plan, args)
	if s.w == nil && !plan.Write && !s.hasTemp && len(plan.Stmts) == 1 {
		return s.queryFast(ctx, plan, named)
	}
	var q querier
	switch {
	case s.w != nil:
		q = s.w // the transaction's own writes are visible only here
	case plan.Write && s.txActive():
		if err := s.ensureWriter(ctx); err != nil {
			return nil, err
		}
		q = s.w
	case plan.Write || s.hasTemp:
		w, err := s.db.AcquireWriter(s.srv.ctx)
		if err != nil {
			return nil, err
		}
		res, err := s.queryOn(ctx, w, plan, named)
		w.Release(ctx)
		if err == nil {
			err = w.Acked(ctx) // after Release: see endTx
		}
		if err != nil {
			return nil, err
		}
		return res, nil
	case len(plan.Stmts) > 1:
		c, err := s.db.Reader().Conn(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		q = c
	default:
		q = cachedReader{s.db}
	}
	return s.queryOn(ctx, q, plan, named)
}

// queryOn runs a query plan on q and reads its result.
func (s *session) queryOn(ctx context.Context, q querier, plan *sqlxlate.Plan, named []any) (*sqltypes.Result, error) {
	rows, err := queryPlan(ctx, q, plan, named)
	if err != nil {
		return nil, err
	}
	res, err := s.collect(plan, &sqlRows{r: rows}, 0)
	if err != nil {
		return nil, err
	}
	if plan.CalcFoundRows != "" {
		if err := queryRowOn(ctx, q, plan.CalcFoundRows, named).Scan(&s.foundRows); err != nil {
			return nil, fmt.Errorf("found rows: %w", err)
		}
	}
	s.readDone(plan, res)
	return res, nil
}

// readDone records what a read leaves for FOUND_ROWS() (its row count,
// unless SQL_CALC_FOUND_ROWS set it already) and ROW_COUNT() (-1).
func (s *session) readDone(plan *sqlxlate.Plan, res *sqltypes.Result) {
	if plan.CalcFoundRows == "" {
		s.foundRows = int64(len(res.Rows))
	}
	s.rowCount = -1
	if plan.SchemaChange {
		s.invalidate()
	}
}

func (s *session) invalidate() {
	s.site.cat.Invalidate()
	if s.w != nil {
		s.schemaTx = true
	}
}

func (s *session) exec(ctx context.Context, plan *sqlxlate.Plan, args []any) (*sqltypes.Result, error) {
	named := s.bind(plan, args)
	if plan.SchemaChange && s.w != nil {
		// MySQL commits the open transaction before DDL.
		if err := s.endTx(ctx, true); err != nil {
			return nil, err
		}
	}
	var (
		res *sqltypes.Result
		err error
	)
	if s.txActive() && !plan.SchemaChange {
		if err := s.ensureWriter(ctx); err != nil {
			return nil, err
		}
		res, err = s.execStmts(ctx, s.w, plan, named)
	} else {
		res, err = s.execAutocommit(ctx, plan, named)
		if plan.SchemaChange {
			s.inTx = false // DDL ends MySQL's transaction
		}
	}
	if plan.SchemaChange {
		s.invalidate()
	}
	if err != nil {
		return nil, err
	}
	if plan.TempTable {
		s.hasTemp = true
	}
	s.rowCount = int64(res.RowsAffected)
	if res.InsertID != 0 {
		s.lastInsertID = res.InsertID
	}
	return res, nil
}

// execAutocommit runs a write outside a client transaction: its statements
// commit together.
func (s *session) execAutocommit(ctx context.Context, plan *sqlxlate.Plan, named []any) (*sqltypes.Result, error) {
	w, err := s.db.AcquireWriter(s.srv.ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.execAutocommitOn(ctx, w, plan, named)
	w.Release(ctx) // rolls back if Begin succeeded and something failed
	if err == nil {
		err = w.Acked(ctx) // after Release: see endTx
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *session) execAutocommitOn(ctx context.Context, w *sqlite.Writer, plan *sqlxlate.Plan, named []any) (*sqltypes.Result, error) {
	if len(plan.Stmts) == 1 {
		return s.execStmts(ctx, w, plan, named)
	}
	if err := w.Begin(ctx); err != nil {
		return nil, err
	}
	res, err := s.execStmts(ctx, w, plan, named)
	if err != nil {
		return nil, err
	}
	return res, w.Commit(ctx)
}

// resultCounts reads a result defensively: database/sql panics on the
// (nil) driver result of SQL that holds no statement at all.
func resultCounts(r sql.Result) (affected, lastID int64) {
	defer func() { _ = recover() }()
	affected, _ = r.RowsAffected()
	lastID, _ = r.LastInsertId()
	return affected, lastID
}

func (s *session) execStmts(ctx context.Context, w *sqlite.Writer, plan *sqlxlate.Plan, named []any) (*sqltypes.Result, error) {
	var before int64
	if plan.DupKeyUpdate {
		if err := w.QueryRowContext(ctx, "SELECT last_insert_rowid()").Scan(&before); err != nil {
			return nil, err
		}
	}
	var affected, lastID int64
	for i, st := range plan.Stmts {
		r, err := execOn(ctx, w, st, named)
		if err != nil {
			return nil, err
		}
		if i == plan.Main {
			affected, lastID = resultCounts(r)
		}
	}
	res := &sqltypes.Result{RowsAffected: uint64(max(affected, 0))}
	if affected > 0 && plan.Main < len(plan.Stmts) && isInsert(plan.Stmts[plan.Main]) {
		switch {
		case plan.DupKeyUpdate && lastID == before:
			// Every row hit an existing key: MySQL counts 2 per updated row
			// and reports no new id.
			res.RowsAffected = uint64(affected) * 2
		default:
			// MySQL reports the first id of a multi-row insert.
			res.InsertID = uint64(lastID - affected + 1)
			res.InsertIDChanged = true
		}
	}
	return res, nil
}

// dropTemps removes the session's temporary tables from the shared writer
// connection so that the next session does not see them.
func (s *session) dropTemps(ctx context.Context) {
	// Past the gates: a primary without its lease (or demoted) must
	// still not hand this session's temporary tables to the next.
	w, err := s.db.AcquireInternal(ctx)
	if err != nil {
		s.srv.log.Warn("cannot drop temporary tables", "err", err)
		return
	}
	defer w.Release(ctx)
	rows, err := w.QueryContext(ctx, "SELECT name FROM temp.sqlite_master WHERE type = 'table'")
	if err != nil {
		s.srv.log.Warn("cannot list temporary tables", "err", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		if _, err := w.ExecContext(ctx, "DROP TABLE IF EXISTS temp."+quoteIdent(n)); err != nil {
			s.srv.log.Warn("cannot drop temporary table", "table", n, "err", err)
		}
	}
}

// isInsert reports whether the SQLite statement inserts rows, so that its
// last_insert_rowid is an insert id (UPDATE/DELETE leave it stale).
func isInsert(q string) bool {
	q = strings.TrimLeft(q, " \t\r\n(")
	if len(q) < 7 {
		return false
	}
	p := strings.ToLower(q[:7])
	return strings.HasPrefix(p, "insert") || strings.HasPrefix(p, "replace")
}

// set applies SET assignments.
func (s *session) set(ctx context.Context, plan *sqlxlate.Plan, args []any) error {
	named := s.bind(plan, args)
	for _, sv := range plan.Sets {
		val := sv.Value
		if sv.Expr != "" {
			q := "SELECT " + sv.Expr
			var src querier = s.db.Reader()
			if s.w != nil {
				src = s.w
			}
			if err := queryRowOn(ctx, src, q, named).Scan(&val); err != nil {
				return err
			}
		}
		name := strings.ToLower(sv.Name)
		if sv.Scope == "user" {
			s.uvars[name] = val
			continue
		}
		switch name {
		case "autocommit":
			on, err := boolValue(val)
			if err != nil {
				return sqlerror.NewSQLErrorf(sqlerror.ERWrongValueForVar, "42000", "Variable 'autocommit' can't be set to the value of '%v'", val)
			}
			if on && !s.autocommit {
				// Turning autocommit on commits the open transaction.
				if err := s.endTx(ctx, true); err != nil {
					return err
				}
			}
			s.autocommit = on
			s.vars["autocommit"] = map[bool]string{true: "1", false: "0"}[on]
		case "max_execution_time":
			// A session may lower its own time limit (milliseconds, as in
			// MySQL; here for every statement), never raise it.
			limit := s.srv.cfg.StatementTimeout
			if ms, err := strconv.ParseInt(sqlxlate.ToString(val), 10, 64); err == nil && ms > 0 && ms < 1<<40 {
				if d := time.Duration(ms) * time.Millisecond; limit == 0 || d < limit {
					limit = d
				}
			}
			s.watch.Timeout = limit
			s.vars[name] = strconv.FormatInt(limit.Milliseconds(), 10)
		case "names", "character set", "charset":
			cs := sqlxlate.ToString(val)
			s.vars["character_set_client"] = cs
			s.vars["character_set_connection"] = cs
			s.vars["character_set_results"] = cs
		default:
			s.vars[name] = sqlxlate.ToString(val)
		}
	}
	return nil
}

func boolValue(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case float64:
		return x != 0, nil
	}
	switch strings.ToLower(sqlxlate.ToString(v)) {
	case "1", "on", "true":
		return true, nil
	case "0", "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %v", v)
}

// bind builds the named arguments of a plan: :v1..:vN for placeholders and
// the session parameters the SQL reads.
func (s *session) bind(plan *sqlxlate.Plan, args []any) []any {
	named := make([]any, 0, plan.Params+len(plan.SessionParams))
	for i := 0; i < plan.Params; i++ {
		var v any
		if i < len(args) {
			v = args[i]
		}
		named = append(named, sql.Named(placeholderName(i), v))
	}
	for _, p := range plan.SessionParams {
		named = append(named, sql.Named(p, s.param(p)))
	}
	return named
}

// placeholderNames are v1..vN, the names the translator gives ? markers.
var placeholderNames = func() []string {
	n := make([]string, 64)
	for i := range n {
		n[i] = "v" + strconv.Itoa(i+1)
	}
	return n
}()

func placeholderName(i int) string {
	if i < len(placeholderNames) {
		return placeholderNames[i]
	}
	return "v" + strconv.Itoa(i+1)
}

func (s *session) param(p string) any {
	switch p {
	case sqlxlate.ParamLastInsertID:
		return int64(s.lastInsertID)
	case sqlxlate.ParamFoundRows:
		return s.foundRows
	case sqlxlate.ParamRowCount:
		return s.rowCount
	case sqlxlate.ParamDatabase:
		if s.database == "" {
			return nil
		}
		return s.database
	case sqlxlate.ParamUser:
		return s.acct.User + "@localhost"
	case sqlxlate.ParamConnectionID:
		return int64(s.conn.ConnectionID)
	}
	if name, ok := strings.CutPrefix(p, sqlxlate.ParamVarPrefix); ok {
		if v, ok := s.vars[name]; ok {
			return v
		}
		return nil
	}
	if name, ok := strings.CutPrefix(p, sqlxlate.ParamUserVarPrefix); ok {
		return s.uvars[name]
	}
	return nil
}

func execOn(ctx context.Context, on querier, q string, named []any) (sql.Result, error) {
	args := argsFor(q, named)
	return on.ExecContext(ctx, q, args...)
}

func queryOn(ctx context.Context, on querier, q string, named []any) (*sql.Rows, error) {
	args := argsFor(q, named)
	return on.QueryContext(ctx, q, args...)
}

// queryPlan runs a query plan on q: its leading statements, then the last,
// whose rows it returns.
func queryPlan(ctx context.Context, q querier, plan *sqlxlate.Plan, named []any) (*sql.Rows, error) {
	last := len(plan.Stmts) - 1
	for _, st := range plan.Stmts[:last] {
		if _, err := execOn(ctx, q, st, named); err != nil {
			return nil, err
		}
	}
	return queryOn(ctx, q, plan.Stmts[last], named)
}

func queryRowOn(ctx context.Context, on querier, q string, named []any) *sql.Row {
	args := argsFor(q, named)
	return on.QueryRowContext(ctx, q, args...)
}

// argsFor keeps the named arguments statement q uses: SQLite rejects
// binding a name a statement does not have only in some drivers, and
// passing fewer makes each Exec cheaper.
func argsFor(q string, named []any) []any {
	if len(named) == 0 || !strings.Contains(q, ":") {
		return nil
	}
	out := named[:0:0]
	for _, a := range named {
		n := a.(sql.NamedArg)
		if containsParam(q, n.Name) {
			out = append(out, a)
		}
	}
	return out
}

// containsParam reports whether q has the parameter :name (not as a prefix
// of a longer name, e.g. :v1 in :v10).
func containsParam(q, name string) bool {
	for i := 0; ; {
		j := strings.Index(q[i:], name)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(name)
		if start > 0 && q[start-1] == ':' && (end == len(q) || !isIdentByte(q[end])) {
			return true
		}
		i = start + 1
	}
}

func isIdentByte(b byte) bool {
	return b == '_' || b == '$' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= 0x80
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
