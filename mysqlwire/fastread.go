package mysqlwire

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"

	"vitess.io/vitess/go/sqltypes"

	"github.com/ephpm/ephpm/sqlite"
	"github.com/ephpm/ephpm/sqlxlate"
)

// queryFast runs a single-statement read outside a transaction on the
// session's sqlite.ReadSession: driver statements without database/sql,
// and one read snapshot across consecutive reads while nothing commits.
func (s *session) queryFast(ctx context.Context, plan *sqlxlate.Plan, named []any) (*sqltypes.Result, error) {
	rows, err := s.fastRows(ctx, plan.Stmts[0], named)
	if err != nil {
		return nil, err
	}
	res, err := s.collect(plan, fastRows{rows}, 0)
	if err != nil {
		return nil, err
	}
	if plan.CalcFoundRows != "" {
		// Same snapshot as the rows, when one is kept.
		rows, err := s.fastRows(ctx, plan.CalcFoundRows, named)
		if err != nil {
			return nil, fmt.Errorf("found rows: %w", err)
		}
		dest := make([]driver.Value, len(rows.Columns()))
		err = rows.Next(dest)
		rows.Close()
		if err != nil || len(dest) == 0 {
			return nil, fmt.Errorf("found rows: %v", err)
		}
		n, ok := dest[0].(int64)
		if !ok {
			return nil, fmt.Errorf("found rows: %T", dest[0])
		}
		s.foundRows = n
	}
	s.readDone(plan, res)
	return res, nil
}

func (s *session) fastRows(ctx context.Context, q string, named []any) (*sqlite.Rows, error) {
	args := argsFor(q, named)
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		n := a.(sql.NamedArg)
		v, err := driverValue(n.Value)
		if err != nil {
			return nil, err
		}
		nv[i] = driver.NamedValue{Name: n.Name, Ordinal: i + 1, Value: v}
	}
	return s.rd.Query(ctx, q, nv)
}

// driverValue is what database/sql's default converter would bind.
func driverValue(v any) (driver.Value, error) {
	switch v.(type) {
	case nil, int64, float64, string, []byte, bool:
		return v, nil
	}
	return driver.DefaultParameterConverter.ConvertValue(v)
}

// rowSource is what collect reads: sqlite.Rows, or database/sql rows.
type rowSource interface {
	Columns() ([]string, error)
	DeclType(i int) string
	Next(dest []driver.Value) (bool, error)
	Close() error
}

type fastRows struct{ r *sqlite.Rows }

func (f fastRows) Columns() ([]string, error) { return f.r.Columns(), nil }
func (f fastRows) DeclType(i int) string      { return f.r.DeclType(i) }
func (f fastRows) Close() error               { return f.r.Close() }

func (f fastRows) Next(dest []driver.Value) (bool, error) {
	err := f.r.Next(dest)
	if err == io.EOF {
		return false, nil
	}
	return err == nil, err
}

type sqlRows struct {
	r    *sql.Rows
	cts  []*sql.ColumnType
	vals []any
	ptrs []any
}

func (q *sqlRows) Columns() ([]string, error) {
	cts, err := q.r.ColumnTypes()
	if err != nil {
		return nil, err
	}
	q.cts = cts
	names := make([]string, len(cts))
	for i, ct := range cts {
		names[i] = ct.Name()
	}
	return names, nil
}

func (q *sqlRows) DeclType(i int) string { return q.cts[i].DatabaseTypeName() }
func (q *sqlRows) Close() error          { return q.r.Close() }

func (q *sqlRows) Next(dest []driver.Value) (bool, error) {
	if !q.r.Next() {
		return false, q.r.Err()
	}
	if q.ptrs == nil {
		q.vals = make([]any, len(dest))
		q.ptrs = make([]any, len(dest))
		for i := range q.vals {
			q.ptrs[i] = &q.vals[i]
		}
	}
	if err := q.r.Scan(q.ptrs...); err != nil {
		return false, err
	}
	for i, v := range q.vals {
		dest[i] = v
	}
	return true, nil
}
