package sqlxlate

import (
	"context"
	"database/sql/driver"
	"sync/atomic"

	querypb "vitess.io/vitess/go/vt/proto/query"
)

// SQLiteCatalog is the Catalog backed by SchemaTable. Share one per database
// (its Querier the reader pool); call Invalidate after schema changes.
type SQLiteCatalog struct {
	q       Querier
	db      string
	version atomic.Uint64
}

var _ Catalog = (*SQLiteCatalog)(nil)

// NewCatalog returns the catalog of the database clients know as database.
func NewCatalog(q Querier, database string) *SQLiteCatalog {
	return &SQLiteCatalog{q: q, db: database}
}

func (c *SQLiteCatalog) Table(ctx context.Context, name string) (*Table, error) { return nil, nil }
func (c *SQLiteCatalog) Tables(ctx context.Context) ([]string, error)          { return nil, nil }
func (c *SQLiteCatalog) Version() uint64                                       { return c.version.Load() }
func (c *SQLiteCatalog) Database() string                                      { return c.db }

// Invalidate drops cached definitions and bumps Version.
func (c *SQLiteCatalog) Invalidate() { c.version.Add(1) }

// Translator translates and caches plans by (sql, catalog version).
type Translator struct{}

// NewTranslator returns a Translator caching up to cacheSize plans.
func NewTranslator(cacheSize int) *Translator { return &Translator{} }

// Translate translates one MySQL statement.
func (t *Translator) Translate(ctx context.Context, sql string, cat Catalog) (*Plan, error) {
	return nil, &Error{Code: ErrNotSupported, State: "42000", Message: "not implemented yet"}
}

// FieldType maps a declared SQLite column type to MySQL result metadata.
func FieldType(decltype string) (typ querypb.Type, flags uint32, length uint32) {
	return querypb.Type_VARCHAR, 0, 0
}

// Functions lists the MySQL functions SQLite lacks.
func Functions() []Function { return nil }

var _ = driver.Value(nil)

// DefaultVariables are the variables a fresh session sees.
func DefaultVariables() map[string]string { return map[string]string{} }
