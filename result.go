package ephpm

import "fmt"

// Result is what one SQL statement produced, in no wire protocol's types:
// a primary's MySQL front builds it for a statement a replica forwarded
// (mysqlwire.Detached), replication carries it between the nodes as
// JSON, and the replica's MySQL front turns it back into its client's
// result. Only mysqlwire converts it to and from vitess's types.
type Result struct {
	// Columns describe the rows; none when the statement returns no
	// result set (an INSERT, a SET).
	Columns []Column  `json:"columns,omitempty"`
	Rows    [][]Value `json:"rows,omitempty"`
	// RowsAffected counts the rows a write changed, as MySQL does.
	RowsAffected uint64 `json:"rows_affected,omitempty"`
	// InsertID is the first id an INSERT generated; InsertIDChanged says
	// that it generated one.
	InsertID        uint64 `json:"insert_id,omitempty"`
	InsertIDChanged bool   `json:"insert_id_changed,omitempty"`
}

// Column describes one column of a Result as the client sees it.
type Column struct {
	Name string `json:"name"`
	// Type is the SQL type name: "BIGINT", "BIGINT UNSIGNED", "DOUBLE",
	// "DECIMAL", "VARCHAR", "BLOB", "DATETIME", "NULL", ...
	Type     string `json:"type"`
	OrgName  string `json:"org_name,omitempty"`
	Table    string `json:"table,omitempty"`
	OrgTable string `json:"org_table,omitempty"`
	Database string `json:"database,omitempty"`
	// Length is the column's display length, Decimals its scale.
	Length   uint32 `json:"length,omitempty"`
	Decimals uint32 `json:"decimals,omitempty"`
	// Charset (a collation id: 63 is binary, 255 utf8mb4) and Flags (NOT
	// NULL, UNSIGNED, BINARY, ...) are MySQL's numbers, which clients
	// read (mysqli's fetch_field): carried as they are.
	Charset uint32 `json:"charset,omitempty"`
	Flags   uint32 `json:"flags,omitempty"`
}

// Value is one cell of a Result: nil is SQL NULL; any other slice (an
// empty one too) is the value as text — numbers in decimal, dates as
// "2006-01-02 15:04:05" — or a binary value's bytes. In JSON it is
// base64, null for NULL.
type Value []byte

// SQLError is the error a statement ended with, numbered as MySQL
// numbers it (the fronts that forward statements speak MySQL): what a
// primary answers for a statement a replica forwarded, which the
// replica's front sends to its client as it is.
type SQLError struct {
	Code    uint16 `json:"code"`    // MySQL error number: 1062 duplicate entry, ...
	State   string `json:"state"`   // SQLSTATE, five characters
	Message string `json:"message"` // for the client
}

func (e *SQLError) Error() string {
	return fmt.Sprintf("%s (errno %d) (sqlstate %s)", e.Message, e.Code, e.State)
}
