// Package sqlxlate translates MySQL statements, as WordPress and other PHP
// applications send them, into SQLite statements plus the metadata the MySQL
// wire front needs to answer like MySQL would. It parses with vitess's
// sqlparser and prints SQLite SQL from the AST; it performs no I/O of its own
// except schema reads through a Querier.
package sqlxlate

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	querypb "vitess.io/vitess/go/vt/proto/query"
)

// Querier is the I/O the catalog needs (the wire front passes a *sql.DB,
// *sql.Conn or *sql.Tx; all satisfy it).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Catalog answers schema questions (MySQL column types, keys,
// auto_increment, table options) from the metadata kept inside the database
// in the hidden table SchemaTable.
type Catalog interface {
	// Table returns the table's MySQL definition; nil, nil when absent.
	Table(ctx context.Context, name string) (*Table, error)
	// Tables lists the user tables (hidden ephpm tables excluded), sorted.
	Tables(ctx context.Context) ([]string, error)
	// Version changes on every schema change; it is part of the plan cache key.
	Version() uint64
	// Database is the MySQL database name clients see (SHOW TABLES column
	// name, DATABASE(), information_schema.table_schema).
	Database() string
}

// SchemaTable is the hidden table holding the MySQL definition of every
// table as JSON. Plans never expose it to clients.
const SchemaTable = "_ephpm_schema"

// Table is the MySQL view of a table.
type Table struct {
	Name      string
	Columns   []TableColumn
	Indexes   []Index // the primary key first, named "PRIMARY"
	Engine    string  // reported engine, "InnoDB" unless declared
	Charset   string
	Collation string
	Comment   string
	// AutoIncrement is the AUTO_INCREMENT table option as declared; the live
	// value comes from sqlite_sequence.
	AutoIncrement uint64
	Temporary     bool
}

// TableColumn is one column as MySQL declared it.
type TableColumn struct {
	Name string
	// Type is the MySQL column type as SHOW COLUMNS prints it, e.g.
	// "bigint(20) unsigned", "varchar(255)", "longtext".
	Type          string
	Nullable      bool
	Default       *string // nil: no default; the literal text otherwise (unquoted)
	DefaultIsExpr bool    // Default is an expression such as CURRENT_TIMESTAMP
	AutoIncrement bool
	OnUpdate      string // e.g. "CURRENT_TIMESTAMP"
	Collation     string
	Comment       string
}

// Index is a PRIMARY/UNIQUE/plain/FULLTEXT key.
type Index struct {
	Name     string // "PRIMARY" for the primary key
	Primary  bool
	Unique   bool
	Fulltext bool
	Columns  []IndexColumn
	// SQLiteName is the name of the SQLite index that implements it
	// ("" for the primary key and for FULLTEXT keys, which are not indexed).
	SQLiteName string
}

// IndexColumn is one key part; Length is the prefix length (0 = whole column).
type IndexColumn struct {
	Name   string
	Length int
}

// Kind tells the wire front how to run a Plan.
type Kind int

// Plan kinds.
const (
	KindQuery      Kind = iota // returns rows: run Stmts (all but the last with Exec), the last is the query
	KindExec                   // run Stmts in order in one transaction (implicit unless the session is in one); report RowsAffected/LastInsertID of Stmts[Main]
	KindBegin                  // BEGIN / START TRANSACTION
	KindCommit                 // COMMIT
	KindRollback               // ROLLBACK
	KindSavepoint              // SAVEPOINT Name
	KindRelease                // RELEASE SAVEPOINT Name
	KindRollbackTo             // ROLLBACK TO SAVEPOINT Name
	KindSet                    // session variables: Sets
	KindUse                    // USE DB
	KindResult                 // constant result: Columns + Rows, nothing to run
	KindNoop                   // accepted, nothing to run: OK packet (LOCK TABLES, FLUSH, ANALYZE…)
)

var kindNames = [...]string{"Query", "Exec", "Begin", "Commit", "Rollback", "Savepoint", "Release", "RollbackTo", "Set", "Use", "Result", "Noop"}

func (k Kind) String() string {
	if int(k) >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Plan is a translated statement. Plans are cached and shared: callers must
// not modify them.
type Plan struct {
	Kind  Kind
	Stmts []string // SQLite SQL
	Main  int      // index in Stmts whose RowsAffected/LastInsertId is reported (KindExec)
	// Columns is the MySQL metadata of the result columns by position, when
	// known (SHOW …, information_schema, KindResult); nil: infer from
	// FieldType(decltype) and the values.
	Columns []Column
	Rows    [][]any // KindResult
	Sets    []SetVar
	DB      string // KindUse
	Name    string // savepoint name
	// Params is the number of ? placeholders; the SQL names them :v1..:vN
	// (vitess's bind variable names); bind sql.Named("v1", …).
	Params int
	// SessionParams are the named parameters the SQL uses for session state;
	// the wire front binds each from the session: ParamLastInsertID, ParamFoundRows,
	// ParamRowCount, ParamDatabase, ParamUser, ParamConnectionID,
	// ParamVarPrefix+name (@@name, value from the session's variables, which
	// start as DefaultVariables), ParamUserVarPrefix+name (@name).
	SessionParams []string
	// CalcFoundRows, when set, is a SQLite COUNT query the wire front runs after the
	// main query (same params) to set FOUND_ROWS(). When empty after a
	// SELECT, FOUND_ROWS() is the number of rows the SELECT returned.
	CalcFoundRows string
	// Write: modifies data or schema (routes to the writer).
	Write bool
	// SchemaChange: the wire front must call Invalidate on the catalog after running
	// it (and again after the enclosing transaction commits or rolls back).
	SchemaChange bool
	// ChangedRowsOnly: the UPDATE was rewritten so that SQLite's changes()
	// counts changed rows as MySQL does (informative).
	ChangedRowsOnly bool
	// DupKeyUpdate: INSERT … ON DUPLICATE KEY UPDATE. MySQL reports 1 per
	// inserted row and 2 per updated row; SQLite's changes() gives 1 for
	// both. The wire front may compare last_insert_rowid before/after to approximate:
	// if the row was updated (rowid did not advance), report 2.
	DupKeyUpdate bool
	// AutoIncrement: an INSERT/REPLACE into a table with an AUTO_INCREMENT
	// column (or a table the catalog cannot see, e.g. a temporary one), so
	// last_insert_rowid is the insert id. False: MySQL reports insert id 0.
	AutoIncrement bool
	// TempTable: the plan creates a temporary table (CREATE TEMPORARY
	// TABLE). Temporary tables live in one SQLite connection, so the
	// session must keep using the connection that ran this plan.
	TempTable bool
}

// Session parameter names (see Plan.SessionParams).
const (
	ParamLastInsertID  = "ephpm_last_insert_id"
	ParamFoundRows     = "ephpm_found_rows"
	ParamRowCount      = "ephpm_row_count"
	ParamDatabase      = "ephpm_database"
	ParamUser          = "ephpm_user"
	ParamConnectionID  = "ephpm_connection_id"
	ParamVarPrefix     = "ephpm_var_"  // + lower-case name without @@ or scope
	ParamUserVarPrefix = "ephpm_uvar_" // + lower-case name without @
)

// Column is MySQL result metadata for one result column.
type Column struct {
	Name, OrgName, Table, OrgTable string
	Type                           querypb.Type
	Length                         uint32
	Decimals                       uint32
	Flags                          uint32
	Charset                        uint32
}

// SetVar is one assignment of a SET statement. Scope is "session",
// "global" or "user". Value is the new value as a Go value (string, int64,
// float64, nil); for SET NAMES the Name is "names" and Value the charset.
// Expr, when non-empty, is a SQLite expression the wire front must evaluate (SELECT
// Expr with the Plan's SessionParams bound) to get the value.
type SetVar struct {
	Scope string
	Name  string
	Value any
	Expr  string
}

// Error is a translation error carrying the MySQL error code and SQLSTATE.
type Error struct {
	Code    int
	State   string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("Error %d (%s): %s", e.Code, e.State, e.Message)
}

// MySQL error codes the translator returns.
const (
	ErrParse        = 1064 // syntax error, SQLSTATE 42000
	ErrNotSupported = 1235 // construct not supported, 42000
	ErrNoSuchTable  = 1146 // 42S02
	ErrBadField     = 1054 // unknown column, 42S22
	ErrTableExists  = 1050 // 42S01
	ErrDupKeyName   = 1061 // 42000
	ErrCantDropKey  = 1091 // 42000
	ErrBadDB        = 1049 // 42000
	ErrDBAccess     = 1044 // another database: every site sees only its own, 42000
)

// Function is a MySQL function SQLite lacks, implemented in Go. The wire
// front registers each on the driver (sqlite.RegisterFunctions, as a
// deterministic function when Deterministic is true).
type Function struct {
	Name          string
	NArgs         int // -1: variadic
	Deterministic bool
	Impl          func(args []driver.Value) (driver.Value, error)
}
