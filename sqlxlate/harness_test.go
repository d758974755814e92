package sqlxlate_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/ephpm/ephpm/sqlxlate"
)

var registerOnce sync.Once

// registerFunctions registers sqlxlate.Functions with modernc, as the
// wire front does.
func registerFunctions(tb testing.TB) {
	tb.Helper()
	var err error
	registerOnce.Do(func() {
		for _, f := range sqlxlate.Functions() {
			impl := f.Impl
			fn := func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) { return impl(args) }
			if f.Deterministic {
				err = sqlite.RegisterDeterministicScalarFunction(f.Name, int32(f.NArgs), fn)
			} else {
				err = sqlite.RegisterScalarFunction(f.Name, int32(f.NArgs), fn)
			}
			if err != nil {
				err = fmt.Errorf("register %s: %w", f.Name, err)
				return
			}
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// session is a minimal executor of Plans over one SQLite connection,
// standing in for the wire front so translations are checked end to end.
type session struct {
	tb        testing.TB
	db        *sql.DB
	conn      *sql.Conn
	cat       *sqlxlate.SQLiteCatalog
	tr        *sqlxlate.Translator
	vars      map[string]any
	uvars     map[string]any
	lastID    int64
	foundRows int64
	rowCount  int64
	tx        bool
}

func newSession(tb testing.TB) *session {
	tb.Helper()
	registerFunctions(tb)
	path := filepath.Join(tb.TempDir(), "site.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	tb.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	vars := map[string]any{}
	for k, v := range sqlxlate.DefaultVariables() {
		vars[k] = v
	}
	return &session{tb: tb, db: db, conn: conn, cat: sqlxlate.NewCatalog(conn, "wordpress"), tr: sqlxlate.NewTranslator(0), vars: vars, uvars: map[string]any{}}
}

type result struct {
	plan     *sqlxlate.Plan
	cols     []string
	rows     [][]any
	affected int64
	insertID int64
}

func (s *session) args(p *sqlxlate.Plan, params []any) []any {
	var out []any
	for i := 0; i < p.Params && i < len(params); i++ {
		out = append(out, sql.Named(fmt.Sprintf("v%d", i+1), params[i]))
	}
	for _, name := range p.SessionParams {
		var v any
		switch {
		case name == sqlxlate.ParamLastInsertID:
			v = s.lastID
		case name == sqlxlate.ParamFoundRows:
			v = s.foundRows
		case name == sqlxlate.ParamRowCount:
			v = s.rowCount
		case name == sqlxlate.ParamDatabase:
			v = "wordpress"
		case name == sqlxlate.ParamUser:
			v = "wp@localhost"
		case name == sqlxlate.ParamConnectionID:
			v = int64(7)
		case strings.HasPrefix(name, sqlxlate.ParamVarPrefix):
			v = s.vars[strings.TrimPrefix(name, sqlxlate.ParamVarPrefix)]
		case strings.HasPrefix(name, sqlxlate.ParamUserVarPrefix):
			v = s.uvars[strings.TrimPrefix(name, sqlxlate.ParamUserVarPrefix)]
		}
		out = append(out, sql.Named(name, v))
	}
	return out
}

// run translates and executes one MySQL statement.
func (s *session) run(mysql string, params ...any) (*result, error) {
	ctx := context.Background()
	p, err := s.tr.Translate(ctx, mysql, s.cat)
	if err != nil {
		return nil, err
	}
	r := &result{plan: p}
	args := s.args(p, params)
	switch p.Kind {
	case sqlxlate.KindQuery:
		for _, st := range p.Stmts[:len(p.Stmts)-1] {
			if _, err := s.conn.ExecContext(ctx, st, args...); err != nil {
				return r, fmt.Errorf("sqlite: %w", err)
			}
		}
		rows, err := s.conn.QueryContext(ctx, p.Stmts[len(p.Stmts)-1], args...)
		if err != nil {
			return r, fmt.Errorf("sqlite: %w", err)
		}
		defer rows.Close()
		r.cols, _ = rows.Columns()
		for rows.Next() {
			vals := make([]any, len(r.cols))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return r, err
			}
			r.rows = append(r.rows, vals)
		}
		if err := rows.Err(); err != nil {
			return r, fmt.Errorf("sqlite: %w", err)
		}
		s.foundRows = int64(len(r.rows))
		if p.CalcFoundRows != "" {
			if err := s.conn.QueryRowContext(ctx, p.CalcFoundRows, args...).Scan(&s.foundRows); err != nil {
				return r, fmt.Errorf("sqlite found rows: %w", err)
			}
		}
		s.rowCount = -1
	case sqlxlate.KindExec:
		own := !s.tx
		if own {
			if _, err := s.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
				return r, err
			}
		}
		for i, st := range p.Stmts {
			res, err := s.conn.ExecContext(ctx, st, args...)
			if err != nil {
				if own {
					s.conn.ExecContext(ctx, "ROLLBACK")
				}
				return r, fmt.Errorf("sqlite: %w", err)
			}
			if i == p.Main {
				r.affected, _ = res.RowsAffected()
				r.insertID, _ = res.LastInsertId()
			}
		}
		if own {
			if _, err := s.conn.ExecContext(ctx, "COMMIT"); err != nil {
				return r, err
			}
		}
		if p.SchemaChange {
			s.cat.Invalidate()
			r.affected, r.insertID = 0, 0
		} else if strings.HasPrefix(strings.TrimSpace(strings.ToLower(mysql)), "insert") || strings.HasPrefix(strings.TrimSpace(strings.ToLower(mysql)), "replace") {
			if !p.AutoIncrement {
				r.insertID = 0
			}
			if r.affected > 0 && r.insertID != 0 {
				s.lastID = r.insertID
			} else {
				r.insertID = 0
			}
		} else {
			r.insertID = 0
		}
		s.rowCount = r.affected
	case sqlxlate.KindResult:
		for _, c := range p.Columns {
			r.cols = append(r.cols, c.Name)
		}
		r.rows = p.Rows
	case sqlxlate.KindSet:
		for _, sv := range p.Sets {
			v := sv.Value
			if sv.Expr != "" {
				if err := s.conn.QueryRowContext(ctx, "select "+sv.Expr, args...).Scan(&v); err != nil {
					return r, fmt.Errorf("sqlite set: %w", err)
				}
			}
			if sv.Scope == "user" {
				s.uvars[sv.Name] = v
			} else {
				s.vars[sv.Name] = v
			}
		}
	case sqlxlate.KindBegin:
		_, err = s.conn.ExecContext(ctx, "BEGIN IMMEDIATE")
		s.tx = err == nil
	case sqlxlate.KindCommit:
		if s.tx {
			_, err = s.conn.ExecContext(ctx, "COMMIT")
			s.tx = false
		}
	case sqlxlate.KindRollback:
		if s.tx {
			_, err = s.conn.ExecContext(ctx, "ROLLBACK")
			s.tx = false
		}
	case sqlxlate.KindSavepoint:
		_, err = s.conn.ExecContext(ctx, "SAVEPOINT "+p.Name)
	case sqlxlate.KindRelease:
		_, err = s.conn.ExecContext(ctx, "RELEASE SAVEPOINT "+p.Name)
	case sqlxlate.KindRollbackTo:
		_, err = s.conn.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+p.Name)
	}
	return r, err
}

// mustRun fails the test on error.
func (s *session) mustRun(mysql string, params ...any) *result {
	s.tb.Helper()
	r, err := s.run(mysql, params...)
	if err != nil {
		plan := ""
		if r != nil && r.plan != nil {
			plan = strings.Join(r.plan.Stmts, "\n  ")
		}
		s.tb.Fatalf("%s\n  %s\n: %v", mysql, plan, err)
	}
	return r
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	case time.Time:
		return "TIME(" + x.String() + ")"
	case float64:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

func errCode(err error) int {
	var xe *sqlxlate.Error
	if errors.As(err, &xe) {
		return xe.Code
	}
	return -1
}
