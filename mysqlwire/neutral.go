package mysqlwire

import (
	"errors"
	"fmt"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/ephpm/ephpm"
)

// Statements a replica forwards travel between the nodes as
// ephpm.Result and ephpm.SQLError, not as vitess's types: this file is
// the only place they are converted.

// typeNames names vitess's column types in SQL; the last ones are
// vitess's own, which no result of ours carries, named only so that the
// table covers every type and converts both ways.
var typeNames = map[querypb.Type]string{
	sqltypes.Null:          "NULL",
	sqltypes.Int8:          "TINYINT",
	sqltypes.Uint8:         "TINYINT UNSIGNED",
	sqltypes.Int16:         "SMALLINT",
	sqltypes.Uint16:        "SMALLINT UNSIGNED",
	sqltypes.Int24:         "MEDIUMINT",
	sqltypes.Uint24:        "MEDIUMINT UNSIGNED",
	sqltypes.Int32:         "INT",
	sqltypes.Uint32:        "INT UNSIGNED",
	sqltypes.Int64:         "BIGINT",
	sqltypes.Uint64:        "BIGINT UNSIGNED",
	sqltypes.Float32:       "FLOAT",
	sqltypes.Float64:       "DOUBLE",
	sqltypes.Timestamp:     "TIMESTAMP",
	sqltypes.Date:          "DATE",
	sqltypes.Time:          "TIME",
	sqltypes.Datetime:      "DATETIME",
	sqltypes.Year:          "YEAR",
	sqltypes.Decimal:       "DECIMAL",
	sqltypes.Text:          "TEXT",
	sqltypes.Blob:          "BLOB",
	sqltypes.VarChar:       "VARCHAR",
	sqltypes.VarBinary:     "VARBINARY",
	sqltypes.Char:          "CHAR",
	sqltypes.Binary:        "BINARY",
	sqltypes.Bit:           "BIT",
	sqltypes.Enum:          "ENUM",
	sqltypes.Set:           "SET",
	sqltypes.Geometry:      "GEOMETRY",
	sqltypes.TypeJSON:      "JSON",
	sqltypes.Vector:        "VECTOR",
	sqltypes.Tuple:         "TUPLE",
	sqltypes.Expression:    "EXPRESSION",
	sqltypes.HexNum:        "HEXNUM",
	sqltypes.HexVal:        "HEXVAL",
	sqltypes.BitNum:        "BITNUM",
	querypb.Type_RAW:       "RAW",
	querypb.Type_ROW_TUPLE: "ROW_TUPLE",
}

var typesByName = func() map[string]querypb.Type {
	m := make(map[string]querypb.Type, len(typeNames))
	for t, n := range typeNames {
		m[n] = t
	}
	return m
}()

// toResult is res in neutral terms.
func toResult(res *sqltypes.Result) (*ephpm.Result, error) {
	if res == nil {
		return nil, nil
	}
	out := &ephpm.Result{RowsAffected: res.RowsAffected, InsertID: res.InsertID, InsertIDChanged: res.InsertIDChanged}
	if len(res.Fields) > 0 {
		out.Columns = make([]ephpm.Column, len(res.Fields))
	}
	for i, f := range res.Fields {
		name, ok := typeNames[f.Type]
		if !ok {
			return nil, fmt.Errorf("column %q: no name for type %v", f.Name, f.Type)
		}
		out.Columns[i] = ephpm.Column{
			Name: f.Name, Type: name, OrgName: f.OrgName, Table: f.Table, OrgTable: f.OrgTable, Database: f.Database,
			Length: f.ColumnLength, Decimals: f.Decimals, Charset: f.Charset, Flags: f.Flags,
		}
	}
	if len(res.Rows) > 0 {
		out.Rows = make([][]ephpm.Value, len(res.Rows))
	}
	for r, row := range res.Rows {
		vals := make([]ephpm.Value, len(row))
		for i, v := range row {
			if !v.IsNull() {
				raw := v.Raw()
				if raw == nil {
					raw = []byte{} // an empty value is not NULL
				}
				vals[i] = raw
			}
		}
		out.Rows[r] = vals
	}
	return out, nil
}

// fromResult is a neutral result in vitess's terms; every value takes
// its column's type. A nil result is an empty one.
func fromResult(res *ephpm.Result) (*sqltypes.Result, error) {
	out := &sqltypes.Result{Rows: [][]sqltypes.Value{}}
	if res == nil {
		return out, nil
	}
	out.RowsAffected, out.InsertID, out.InsertIDChanged = res.RowsAffected, res.InsertID, res.InsertIDChanged
	if len(res.Columns) > 0 {
		out.Fields = make([]*querypb.Field, len(res.Columns))
	}
	for i, c := range res.Columns {
		t, ok := typesByName[c.Type]
		if !ok {
			return nil, fmt.Errorf("column %q: unknown type %q", c.Name, c.Type)
		}
		out.Fields[i] = &querypb.Field{
			Name: c.Name, Type: t, OrgName: c.OrgName, Table: c.Table, OrgTable: c.OrgTable, Database: c.Database,
			ColumnLength: c.Length, Decimals: c.Decimals, Charset: c.Charset, Flags: c.Flags,
		}
	}
	if len(res.Rows) > 0 {
		out.Rows = make([][]sqltypes.Value, len(res.Rows))
	}
	for r, row := range res.Rows {
		if len(row) != len(out.Fields) {
			return nil, fmt.Errorf("row %d has %d values for %d columns", r, len(row), len(out.Fields))
		}
		vals := make([]sqltypes.Value, len(row))
		for i, v := range row {
			if v == nil {
				vals[i] = sqltypes.NULL
			} else {
				vals[i] = sqltypes.MakeTrusted(out.Fields[i].Type, v)
			}
		}
		out.Rows[r] = vals
	}
	return out, nil
}

// toNeutralError is a statement's error in neutral terms: runSQL's
// errors are *sqlerror.SQLError; any other goes as it is.
func toNeutralError(err error) error {
	var se *sqlerror.SQLError
	if errors.As(err, &se) {
		return &ephpm.SQLError{Code: uint16(se.Num), State: se.State, Message: se.Message}
	}
	return err
}
