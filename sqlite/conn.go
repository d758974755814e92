package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"reflect"

	msqlite "modernc.org/sqlite"
)

// conn is a guarded driver connection, what database/sql sees for the
// writer and the reader pool: each call runs under the limits of its
// context (see guard), and the driver gets a context it never has to
// watch.
type conn struct {
	c driver.Conn // modernc's
	g *guard
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
)

// Unwrap is for modernc's helpers that take a *sql.Conn (Limit).
func (c *conn) Unwrap() driver.Conn { return c.c }

// ColumnInfo describes a statement without running it (libsql's describe).
func (c *conn) ColumnInfo(query string) ([]msqlite.ColumnInfo, error) {
	ci, ok := c.c.(interface {
		ColumnInfo(string) ([]msqlite.ColumnInfo, error)
	})
	if !ok {
		return nil, errors.New("sqlite driver cannot describe statements")
	}
	return ci.ColumnInfo(query)
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	st, err := c.c.(driver.ConnPrepareContext).PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	return &stmt{s: st, g: c.g}, nil
}

func (c *conn) Close() error {
	c.g.close()
	return c.c.Close()
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(_ context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.c.(driver.ConnBeginTx).BeginTx(context.Background(), opts)
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prev := c.g.arm(ctx)
	r, err := c.c.(driver.ExecerContext).ExecContext(context.Background(), query, args)
	err = c.g.err(err)
	c.g.restore(prev)
	return r, err
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prev := c.g.arm(ctx)
	r, err := c.c.(driver.QueryerContext).QueryContext(context.Background(), query, args)
	if err != nil {
		err = c.g.err(err)
		c.g.restore(prev)
		return nil, err
	}
	return &rows{r: r, g: c.g, prev: prev}, nil
}

func (c *conn) ResetSession(ctx context.Context) error {
	return c.c.(driver.SessionResetter).ResetSession(ctx)
}

func (c *conn) IsValid() bool { return c.c.(driver.Validator).IsValid() }

func (c *conn) Ping(context.Context) error {
	if p, ok := c.c.(driver.Pinger); ok {
		return p.Ping(context.Background())
	}
	return nil
}

// stmt is a guarded prepared statement.
type stmt struct {
	s driver.Stmt
	g *guard
}

var (
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

func (s *stmt) Close() error  { return s.s.Close() }
func (s *stmt) NumInput() int { return s.s.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prev := s.g.arm(ctx)
	r, err := s.s.(driver.StmtExecContext).ExecContext(context.Background(), args)
	err = s.g.err(err)
	s.g.restore(prev)
	return r, err
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prev := s.g.arm(ctx)
	r, err := s.s.(driver.StmtQueryContext).QueryContext(context.Background(), args)
	if err != nil {
		err = s.g.err(err)
		s.g.restore(prev)
		return nil, err
	}
	return &rows{r: r, g: s.g, prev: prev}, nil
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

// rows keeps its call's limits armed until it is closed: every step of
// the query is watched, not only the first.
type rows struct {
	r      driver.Rows
	g      *guard
	prev   limits
	closed bool
}

var (
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
)

func (r *rows) Columns() []string { return r.r.Columns() }

func (r *rows) Next(dest []driver.Value) error { return r.g.err(r.r.Next(dest)) }

func (r *rows) Close() error {
	err := r.r.Close()
	if !r.closed {
		r.closed = true
		r.g.restore(r.prev)
	}
	return err
}

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	return r.r.(driver.RowsColumnTypeDatabaseTypeName).ColumnTypeDatabaseTypeName(i)
}

func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.r.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *rows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.r.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *rows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.r.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.r.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
