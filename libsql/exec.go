package libsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

// column is a result column.
type column struct {
	name     string
	decltype string
}

// execResult is one statement's outcome.
type execResult struct {
	cols      []column
	rows      [][]any
	affected  int64
	lastID    int64
	hasLastID bool
	dur       time.Duration
}

// sqlError is a per-statement error with SQLite's code: it goes back to the
// client inside a successful response.
type sqlError struct {
	code string // Hrana code, e.g. SQLITE_CONSTRAINT
	ext  int    // SQLite extended result code, 0 if none
	msg  string
}

func (e *sqlError) Error() string { return e.code + ": " + e.msg }

// sqliteCodeNames are SQLite's primary result codes by number.
var sqliteCodeNames = [...]string{
	1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM", 4: "SQLITE_ABORT",
	5: "SQLITE_BUSY", 6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY",
	9: "SQLITE_INTERRUPT", 10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT", 12: "SQLITE_NOTFOUND",
	13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN", 15: "SQLITE_PROTOCOL", 16: "SQLITE_EMPTY",
	17: "SQLITE_SCHEMA", 18: "SQLITE_TOOBIG", 19: "SQLITE_CONSTRAINT", 20: "SQLITE_MISMATCH",
	21: "SQLITE_MISUSE", 22: "SQLITE_NOLFS", 23: "SQLITE_AUTH", 24: "SQLITE_FORMAT",
	25: "SQLITE_RANGE", 26: "SQLITE_NOTADB",
}

// toSQLError turns any error from running a statement into a client error.
func toSQLError(err error) *sqlError {
	var se *sqlError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, ephpm.ErrNoLease):
		// Refused at once (or its COMMIT rolled back): no lease.
		return &sqlError{code: "SQLITE_READONLY", ext: sqlite.CodeReadOnly, msg: err.Error()}
	case errors.Is(err, ephpm.ErrCommitUnconfirmed):
		return &sqlError{code: "SQLITE_ERROR", ext: sqlite.CodeError, msg: err.Error()}
	case errors.Is(err, ephpm.ErrNotPrimary):
		return &sqlError{code: "SQLITE_READONLY", ext: sqlite.CodeReadOnly, msg: "not the primary"}
	case errors.Is(err, sqlite.ErrLockTimeout):
		return &sqlError{code: "SQLITE_BUSY", ext: sqlite.CodeBusy, msg: err.Error()}
	case errors.Is(err, sqlite.ErrStatementTimeout):
		return &sqlError{code: "SQLITE_INTERRUPT", ext: sqlite.CodeInterrupt, msg: "interrupted: statement time limit exceeded"}
	case errors.Is(err, sqlite.ErrClosed):
		return &sqlError{code: "SQLITE_INTERRUPT", ext: sqlite.CodeInterrupt, msg: "interrupted: the database is closing"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &sqlError{code: "SQLITE_INTERRUPT", ext: sqlite.CodeInterrupt, msg: err.Error()}
	}
	code := sqlite.ErrorCode(err)
	if code == 0 {
		return &sqlError{code: "SQLITE_ERROR", msg: err.Error()}
	}
	name := "SQLITE_ERROR"
	if p := code & 0xff; p < len(sqliteCodeNames) && sqliteCodeNames[p] != "" {
		name = sqliteCodeNames[p]
	}
	msg := err.Error()
	// modernc writes "<generic text>: <sqlite3_errmsg> (NNN)"; clients get
	// SQLite's own message, as from sqld, and the code separately.
	if i := strings.LastIndex(msg, " ("); i > 0 && strings.HasSuffix(msg, ")") {
		msg = msg[:i]
	}
	if _, rest, ok := strings.Cut(msg, ": "); ok && rest != "" {
		msg = rest
	}
	return &sqlError{code: name, ext: code, msg: msg}
}

// session is one client's connection state across requests (a Hrana
// stream or a proxy client_id): the writer it holds inside a transaction.
// It is not safe for concurrent use.
type session struct {
	w    *sqlite.Writer
	site *Site // kept open while w is held across requests
	// inTx mirrors SQLite's autocommit state for the statements we can see
	// (BEGIN/COMMIT/ROLLBACK/SAVEPOINT); the writer is held while set.
	inTx bool
	// Since the request began (see movable): the writer was taken (so
	// something may have been written here), or refused with
	// ephpm.ErrNotPrimary (the site's primary moved away while it
	// waited at the fence).
	acquired, refused bool
	// released is the writer releaseIdle gave back last: its commits'
	// acknowledgement (sync = "replica") is waited for after it, by exec.
	released *sqlite.Writer

	timeout   time.Duration // each statement's (Config.StatementTimeout)
	maxResult int           // bytes of one result (Config.MaxResultSize)
}

// newSession is a session with the server's statement limits.
func (s *Server) newSession() session {
	return session{timeout: s.cfg.StatementTimeout, maxResult: s.cfg.MaxResultSize}
}

// autocommit is Hrana's get_autocommit / the proxy's INIT state.
func (s *session) autocommit() bool { return !s.inTx }

// acquire takes the writer of db for this session.
func (s *session) acquire(ctx context.Context, db *sqlite.DB) error {
	if s.w != nil {
		return nil
	}
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		if errors.Is(err, ephpm.ErrNotPrimary) {
			s.refused = true
		}
		return err
	}
	s.w, s.acquired = w, true
	return nil
}

// beginRequest starts what movable looks at; it reports whether the
// session was outside a transaction.
func (s *session) beginRequest() bool {
	s.acquired, s.refused = false, false
	return !s.inTx && s.w == nil
}

// movable reports whether a request that began outside a transaction
// (beginRequest) may run again elsewhere: a write of it was refused
// because this node is not the site's primary (any more), and it never
// took the writer here, so it wrote nothing.
func (s *session) movable() bool { return s.refused && !s.acquired }

// releaseIdle gives the writer back when no transaction needs it.
func (s *session) releaseIdle(ctx context.Context) {
	if s.w != nil && !s.inTx {
		s.w.Release(ctx)
		s.released, s.w = s.w, nil
	}
}

// endRequest runs after each request: a writer still held (open
// transaction) keeps the request's site open until the session lets go.
func (s *session) endRequest(ctx context.Context, rs *reqSite) {
	s.releaseIdle(ctx)
	s.released = nil // exec waited for its statements' commits
	switch {
	case s.w != nil && s.site == nil:
		s.site = rs.site
		rs.kept = true
	case s.w == nil && s.site != nil:
		s.site.Release()
		s.site = nil
	}
}

// close rolls back and releases everything (stream closed or expired).
func (s *session) close(ctx context.Context) {
	if s.w != nil {
		s.w.Release(ctx) // rolls back an open transaction
		s.w = nil
	}
	s.inTx = false
	if s.site != nil {
		s.site.Release()
		s.site = nil
	}
}

// reqSite is the site a request resolved; kept is set when a session took
// over the duty to release it.
type reqSite struct {
	site *Site
	kept bool
}

// exec runs one statement with positional and named arguments.
func (s *session) exec(ctx context.Context, db *sqlite.DB, st sqlStmt, args []any, wantRows bool) (*execResult, error) {
	start := time.Now()
	// The statement stops at its time limit, or when the request's
	// context ends (the client left), checked from inside SQLite.
	ctx = sqlite.WithWatch(ctx, &sqlite.Watch{Timeout: s.timeout})
	res, err := s.run(ctx, db, st, args, wantRows)
	if w := s.released; w != nil {
		// The writer is given back: a commit of it may now wait for a
		// replica (sync = "replica") without holding up other writers.
		s.released = nil
		if aerr := w.Acked(ctx); err == nil && aerr != nil {
			err = aerr
		}
	}
	if err != nil {
		if s.inTx && s.w != nil && !s.w.InTx() {
			// SQLite rolled the transaction back (a write in it was
			// interrupted or ran out of memory): so does the stream,
			// whose client sees autocommit again.
			s.inTx = false
			s.releaseIdle(context.WithoutCancel(ctx))
		}
		return nil, toSQLError(err)
	}
	res.dur = time.Since(start)
	return res, nil
}

func (s *session) run(ctx context.Context, db *sqlite.DB, st sqlStmt, args []any, wantRows bool) (*execResult, error) {
	switch st.kind {
	case kindBegin:
		if s.inTx {
			return nil, &sqlError{code: "SQLITE_ERROR", ext: sqlite.CodeError, msg: "cannot start a transaction within a transaction"}
		}
		if err := s.acquire(ctx, db); err != nil {
			return nil, err
		}
		// BEGIN IMMEDIATE whatever the client asked for: the writer is
		// ours for the whole transaction anyway.
		if err := s.w.Begin(ctx); err != nil {
			s.releaseIdle(ctx)
			return nil, err
		}
		s.inTx = true
		return &execResult{}, nil
	case kindCommit, kindRollback:
		if !s.inTx {
			what := "commit"
			if st.kind == kindRollback {
				what = "rollback"
			}
			return nil, &sqlError{code: "SQLITE_ERROR", ext: sqlite.CodeError, msg: "cannot " + what + " - no transaction is active"}
		}
		// What the client asked for happens even if it hangs up meanwhile.
		ctx := context.WithoutCancel(ctx)
		var err error
		if st.kind == kindCommit {
			err = s.w.Commit(ctx)
			if err != nil && strings.Contains(err.Error(), "no transaction is active") {
				// SQLite already rolled back on its own (e.g. after an error).
				_ = s.w.Rollback(ctx)
			}
		} else {
			err = s.w.Rollback(ctx)
		}
		// A commit whose hook failed is still committed: follow the writer.
		s.inTx = s.w.InTx()
		s.releaseIdle(ctx)
		if err != nil {
			return nil, err
		}
		return &execResult{}, nil
	case kindSavepoint:
		if !s.inTx {
			// A savepoint outside a transaction opens one.
			if err := s.acquire(ctx, db); err != nil {
				return nil, err
			}
			if err := s.w.Begin(ctx); err != nil {
				s.releaseIdle(ctx)
				return nil, err
			}
			s.inTx = true
		}
	case kindRead:
		if !s.inTx {
			res, err := query(ctx, db.Reader(), st, args, wantRows, s.maxResult)
			if sqlite.ErrorCode(err)&0xff != sqlite.CodeReadOnly {
				return res, err
			}
			// The lexer thought it a read, SQLite knows better.
		}
	}
	if err := s.acquire(ctx, db); err != nil {
		return nil, err
	}
	// Outside a transaction the writer goes back as soon as the statement
	// is done, so that other clients are not kept waiting.
	defer s.releaseIdle(ctx)
	res, err := query(ctx, s.w, st, args, wantRows, s.maxResult)
	// The commit hooks (frame log) run now; if they fail, so does the
	// statement: the client must not believe in an unlogged commit.
	if herr := s.w.AfterStatement(ctx); herr != nil {
		switch {
		case sqlite.ErrorCode(err) == sqlite.CodeConstraintCommitHook:
			err = herr // the commit check's refusal, in its own words
		case err == nil:
			err = fmt.Errorf("after commit: %w", herr)
		}
	}
	if err != nil {
		return nil, err
	}
	if st.kind == kindWrite {
		var changes, last int64
		if err := s.w.QueryRowContext(ctx, "SELECT changes(), last_insert_rowid()").Scan(&changes, &last); err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
		res.affected, res.lastID, res.hasLastID = changes, last, true
	}
	return res, nil
}

// valueOverhead is what a value costs beside its bytes while a result is
// built and encoded, counted against the result's bound.
const valueOverhead = 48

// querier is the reader pool or the writer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// query runs a statement and reads its rows, at most maxResult bytes of
// them (0: no bound).
func query(ctx context.Context, q querier, st sqlStmt, args []any, wantRows bool, maxResult int) (*execResult, error) {
	rows, err := q.QueryContext(ctx, st.text, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	res := &execResult{}
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	res.cols = make([]column, len(types))
	for i, t := range types {
		res.cols[i] = column{name: t.Name(), decltype: t.DatabaseTypeName()}
	}
	dest := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	size := 0
	for rows.Next() {
		if !wantRows {
			continue // still step to the end: the statement must run fully
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]any, len(dest))
		for i, v := range dest {
			switch x := v.(type) {
			case []byte:
				v = append([]byte{}, x...)
				size += len(x)
			case string:
				size += len(x)
			}
			size += valueOverhead
			row[i] = v
		}
		if maxResult > 0 && size > maxResult {
			return nil, &sqlError{code: "SQLITE_TOOBIG", ext: sqlite.CodeTooBig,
				msg: fmt.Sprintf("the result is larger than %d bytes, the most one statement may return here; read it in parts (LIMIT)", maxResult)}
		}
		res.rows = append(res.rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// bindArgs turns Hrana/proxy arguments into database/sql arguments: the
// positional ones by index, the named ones by name without its prefix
// (the driver matches :a, @a and $a against "a").
func bindArgs(st sqlStmt, pos []any, names []string, vals []any) ([]any, error) {
	out := make([]any, 0, len(pos)+len(vals))
	out = append(out, pos...)
	for i, n := range names {
		if n == "" {
			return nil, &sqlError{code: "ARGS_INVALID", msg: "empty argument name"}
		}
		switch n[0] {
		case ':', '@', '$':
			n = n[1:]
		}
		if n == "" || !(n[0] >= 'a' && n[0] <= 'z' || n[0] >= 'A' && n[0] <= 'Z' || n[0] >= 0x80) {
			return nil, &sqlError{code: "ARGS_INVALID", msg: fmt.Sprintf("argument name %q is not supported", names[i])}
		}
		out = append(out, sql.Named(n, vals[i]))
	}
	if len(names) == 0 && len(pos) < len(st.params) {
		return nil, &sqlError{code: "ARGS_INVALID", msg: fmt.Sprintf("statement has %d parameters, %d arguments given", len(st.params), len(pos))}
	}
	return out, nil
}

// parseOne splits text and requires exactly one statement.
func parseOne(text string) (sqlStmt, error) {
	sts, err := splitSQL(text)
	if err != nil {
		return sqlStmt{}, &sqlError{code: "SQL_PARSE_ERROR", msg: err.Error()}
	}
	switch len(sts) {
	case 0:
		return sqlStmt{}, &sqlError{code: "SQL_NO_STATEMENT", msg: "SQL string does not contain any statement"}
	case 1:
		return sts[0], nil
	}
	return sqlStmt{}, &sqlError{code: "SQL_MANY_STATEMENTS", msg: "SQL string contains more than one statement"}
}
