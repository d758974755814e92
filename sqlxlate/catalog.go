package sqlxlate

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// SchemaBootstrapSQL creates the hidden catalog table; every DDL plan also
// runs it, so calling it at open time is optional.
const SchemaBootstrapSQL = "create table if not exists " + SchemaTable + " (name text primary key collate nocase, def text not null)"

// SQLiteCatalog is the Catalog backed by SchemaTable. Share one per
// database (its Querier the reader pool) and call Invalidate after running
// a plan with SchemaChange (and again when that transaction ends).
type SQLiteCatalog struct {
	q       Querier
	db      string
	version atomic.Uint64

	mu     sync.Mutex
	tables map[string]*Table // lower-case name → definition (nil: absent)
}

var _ Catalog = (*SQLiteCatalog)(nil)

// catalogEpoch gives every catalog its own range of versions: plans are
// cached by (sql, database, version), and a database closed when idle and
// opened again must not meet plans made for an older schema.
var catalogEpoch atomic.Uint64

// NewCatalog returns the catalog of the database clients know as database.
func NewCatalog(q Querier, database string) *SQLiteCatalog {
	c := &SQLiteCatalog{q: q, db: database, tables: map[string]*Table{}}
	c.version.Store(catalogEpoch.Add(1) << 32)
	return c
}

// Database is the MySQL database name.
func (c *SQLiteCatalog) Database() string { return c.db }

// Version changes after every Invalidate.
func (c *SQLiteCatalog) Version() uint64 { return c.version.Load() }

// Invalidate drops cached definitions and bumps Version.
func (c *SQLiteCatalog) Invalidate() {
	c.mu.Lock()
	c.tables = map[string]*Table{}
	c.version.Add(1)
	c.mu.Unlock()
}

// Table returns the MySQL definition of name; nil, nil when absent.
func (c *SQLiteCatalog) Table(ctx context.Context, name string) (*Table, error) {
	key := strings.ToLower(name)
	c.mu.Lock()
	t, ok := c.tables[key]
	v := c.version.Load()
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := c.load(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.version.Load() == v {
		c.tables[key] = t
	}
	c.mu.Unlock()
	return t, nil
}

func (c *SQLiteCatalog) load(ctx context.Context, name string) (*Table, error) {
	if isHidden(name) {
		return nil, nil
	}
	var real string
	if err := queryRow(ctx, c.q, "select name from sqlite_master where type = 'table' and name = ? collate nocase", []any{name}, &real); err != nil {
		if err == sql.ErrNoRows {
			return nil, nil
		}
		return nil, err
	}
	var def string
	err := queryRow(ctx, c.q, "select def from "+SchemaTable+" where name = ?", []any{real}, &def)
	switch {
	case err == nil:
		var t Table
		if err := json.Unmarshal([]byte(def), &t); err != nil {
			return nil, fmt.Errorf("decode definition of %s: %w", real, err)
		}
		t.Name = real
		return &t, nil
	case err == sql.ErrNoRows || strings.Contains(err.Error(), "no such table"):
		return c.derive(ctx, real)
	default:
		return nil, err
	}
}

// derive builds a definition for a table created outside the translator
// (by a libSQL client, say) from SQLite's own schema.
func (c *SQLiteCatalog) derive(ctx context.Context, name string) (*Table, error) {
	rows, err := c.q.QueryContext(ctx, "select name, type, \"notnull\", dflt_value, pk from pragma_table_info(?) order by cid", name)
	if err != nil {
		return nil, fmt.Errorf("table info %s: %w", name, err)
	}
	defer rows.Close()
	t := &Table{Name: name, Engine: "InnoDB", Charset: "utf8mb4", Collation: "utf8mb4_0900_ai_ci"}
	var pk []IndexColumn
	for rows.Next() {
		var col, typ string
		var notnull, pkpos int
		var dflt sql.NullString
		if err := rows.Scan(&col, &typ, &notnull, &dflt, &pkpos); err != nil {
			return nil, fmt.Errorf("table info %s: %w", name, err)
		}
		tc := TableColumn{Name: col, Type: mysqlTypeFromDecl(typ), Nullable: notnull == 0 && pkpos == 0}
		if dflt.Valid {
			d := strings.Trim(dflt.String, "'")
			tc.Default = &d
		}
		if pkpos > 0 {
			pk = append(pk, IndexColumn{Name: col})
			if strings.EqualFold(typ, "INTEGER") {
				tc.Type = "bigint"
			}
		}
		t.Columns = append(t.Columns, tc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table info %s: %w", name, err)
	}
	if len(pk) > 0 {
		t.Indexes = append(t.Indexes, Index{Name: "PRIMARY", Primary: true, Unique: true, Columns: pk})
	}
	irows, err := c.q.QueryContext(ctx, "select name, \"unique\", origin from pragma_index_list(?)", name)
	if err != nil {
		return nil, fmt.Errorf("index list %s: %w", name, err)
	}
	type il struct {
		name   string
		unique bool
	}
	var idx []il
	for irows.Next() {
		var n, origin string
		var u int
		if err := irows.Scan(&n, &u, &origin); err != nil {
			irows.Close()
			return nil, fmt.Errorf("index list %s: %w", name, err)
		}
		if origin == "pk" {
			continue
		}
		idx = append(idx, il{n, u == 1})
	}
	irows.Close()
	for _, ix := range idx {
		cr, err := c.q.QueryContext(ctx, "select name from pragma_index_info(?) order by seqno", ix.name)
		if err != nil {
			return nil, fmt.Errorf("index info %s: %w", ix.name, err)
		}
		in := Index{Name: ix.name, Unique: ix.unique, SQLiteName: ix.name}
		for cr.Next() {
			var cn sql.NullString
			if err := cr.Scan(&cn); err != nil {
				cr.Close()
				return nil, fmt.Errorf("index info %s: %w", ix.name, err)
			}
			in.Columns = append(in.Columns, IndexColumn{Name: cn.String})
		}
		cr.Close()
		t.Indexes = append(t.Indexes, in)
	}
	return t, nil
}

func mysqlTypeFromDecl(decl string) string {
	typ, flags, length := FieldType(decl)
	d := strings.ToLower(strings.Fields(decl + " text")[0])
	if i := strings.IndexByte(d, '('); i >= 0 {
		d = d[:i]
	}
	switch d {
	case "", "text", "varchar", "char", "longtext", "mediumtext", "tinytext":
		if d == "" {
			return "text"
		}
	}
	_ = typ
	_ = length
	s := d
	if strings.Contains(decl, "(") {
		s += decl[strings.IndexByte(decl, '('):]
		s = strings.ToLower(s)
	}
	if flags&flagUnsigned != 0 {
		s += " unsigned"
	}
	switch d {
	case "integer":
		return "bigint"
	case "real":
		return "double"
	case "numeric":
		return "decimal"
	}
	return s
}

// Tables lists the user tables, sorted.
func (c *SQLiteCatalog) Tables(ctx context.Context) ([]string, error) {
	rows, err := c.q.QueryContext(ctx, "select name from sqlite_master where type = 'table' order by name")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		if !isHidden(n) {
			out = append(out, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

func queryRow(ctx context.Context, q Querier, query string, args []any, dest ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// schemaRowSQL stores t's definition.
func schemaRowSQL(t *Table) string {
	b, _ := json.Marshal(t)
	return "insert or replace into " + SchemaTable + " (name, def) values (" + quoteString(t.Name) + ", " + quoteString(string(b)) + ")"
}

func (t *Table) clone() *Table {
	c := *t
	c.Columns = append([]TableColumn(nil), t.Columns...)
	c.Indexes = make([]Index, len(t.Indexes))
	for i, ix := range t.Indexes {
		ix.Columns = append([]IndexColumn(nil), ix.Columns...)
		c.Indexes[i] = ix
	}
	return &c
}

func (t *Table) column(name string) int {
	for i, c := range t.Columns {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

func (t *Table) index(name string) int {
	for i, ix := range t.Indexes {
		if strings.EqualFold(ix.Name, name) {
			return i
		}
	}
	return -1
}

func (t *Table) primary() *Index {
	for i := range t.Indexes {
		if t.Indexes[i].Primary {
			return &t.Indexes[i]
		}
	}
	return nil
}

func (t *Table) hasAutoIncrement() bool {
	for _, c := range t.Columns {
		if c.AutoIncrement {
			return true
		}
	}
	return false
}
