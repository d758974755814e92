package mysqlwire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/mysqlwire"
)

// A forwarded statement's result goes primary → JSON → replica as an
// ephpm.Result. The replica's client must get exactly what it got when
// the result travelled as vitess's protobuf: each case is converted
// both ways and compared with that.
func TestNeutralResultRoundTrip(t *testing.T) {
	blobFlags := uint32(querypb.MySqlFlag_BLOB_FLAG | querypb.MySqlFlag_BINARY_FLAG)
	col := func(name string, typ querypb.Type) *querypb.Field {
		return &querypb.Field{Name: name, Type: typ, Charset: 255}
	}
	row := func(vals ...sqltypes.Value) []sqltypes.Value { return vals }
	// Every column type, with a value each (NULL for the NULL type).
	var allFields []*querypb.Field
	var allRow []sqltypes.Value
	for _, v := range querypb.Type_value {
		typ := querypb.Type(v)
		allFields = append(allFields, col(typ.String(), typ))
		if typ == sqltypes.Null {
			allRow = append(allRow, sqltypes.NULL)
		} else {
			allRow = append(allRow, sqltypes.MakeTrusted(typ, []byte("1")))
		}
	}
	for _, tc := range []struct {
		name string
		res  *sqltypes.Result
	}{
		{"nil", nil},
		{"ok", &sqltypes.Result{RowsAffected: 3, InsertID: 41, InsertIDChanged: true}},
		{"large counts", &sqltypes.Result{RowsAffected: math.MaxUint64, InsertID: math.MaxUint64, InsertIDChanged: true}},
		{"no rows", &sqltypes.Result{Fields: []*querypb.Field{col("a", sqltypes.Int64)}}},
		{"nulls and empty strings", &sqltypes.Result{
			Fields: []*querypb.Field{col("s", sqltypes.VarChar), col("n", sqltypes.Int64)},
			Rows: [][]sqltypes.Value{
				row(sqltypes.NULL, sqltypes.NULL),
				row(sqltypes.NewVarChar(""), sqltypes.NewInt64(0)),
				row(sqltypes.MakeTrusted(sqltypes.VarChar, nil), sqltypes.NULL),
				row(sqltypes.NewVarChar("x"), sqltypes.NewInt64(1)),
			}}},
		{"binary", &sqltypes.Result{
			Fields: []*querypb.Field{{Name: "b", Type: sqltypes.Blob, Charset: 63, Flags: blobFlags, ColumnLength: 65535}},
			Rows: [][]sqltypes.Value{
				row(sqltypes.MakeTrusted(sqltypes.Blob, []byte{0, 0xff, 0xfe, '"', '\\', 0x80})),
				row(sqltypes.MakeTrusted(sqltypes.Blob, []byte{})),
				row(sqltypes.NULL),
			}}},
		{"large numbers", &sqltypes.Result{
			Fields: []*querypb.Field{col("i", sqltypes.Int64), col("u", sqltypes.Uint64), {Name: "d", Type: sqltypes.Decimal, Decimals: 2}, col("f", sqltypes.Float64)},
			Rows: [][]sqltypes.Value{
				row(sqltypes.NewInt64(math.MinInt64), sqltypes.NewUint64(math.MaxUint64),
					sqltypes.MakeTrusted(sqltypes.Decimal, []byte("123456789012345678901234567890.50")),
					sqltypes.MakeTrusted(sqltypes.Float64, []byte(strconv.FormatFloat(math.MaxFloat64, 'g', -1, 64)))),
				row(sqltypes.NewInt64(math.MaxInt64), sqltypes.NewUint64(0),
					sqltypes.MakeTrusted(sqltypes.Decimal, []byte("-0.01")),
					sqltypes.MakeTrusted(sqltypes.Float64, []byte("5e-324"))),
			}}},
		{"metadata", &sqltypes.Result{
			Fields: []*querypb.Field{{
				Name: "ID", OrgName: "id", Table: "p", OrgTable: "wp_posts", Database: "wp",
				Type: sqltypes.Uint64, ColumnLength: 20, Charset: 63, Decimals: 0,
				Flags: uint32(querypb.MySqlFlag_NOT_NULL_FLAG | querypb.MySqlFlag_PRI_KEY_FLAG | querypb.MySqlFlag_UNSIGNED_FLAG | querypb.MySqlFlag_AUTO_INCREMENT_FLAG),
			}, {Name: "when", Type: sqltypes.Datetime, ColumnLength: 19, Charset: 63, Flags: uint32(querypb.MySqlFlag_BINARY_FLAG)}},
			Rows: [][]sqltypes.Value{row(sqltypes.NewUint64(7), sqltypes.MakeTrusted(sqltypes.Datetime, []byte("2026-12-31 23:59:59.999999")))},
		}},
		{"every type", &sqltypes.Result{Fields: allFields, Rows: [][]sqltypes.Value{allRow}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := viaProto(t, tc.res)
			n, err := mysqlwire.ToResult(tc.res)
			if err != nil {
				t.Fatalf("ToResult: %v", err)
			}
			b, err := json.Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			var back *ephpm.Result
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			got, err := mysqlwire.FromResult(back)
			if err != nil {
				t.Fatalf("FromResult: %v (JSON %s)", err, b)
			}
			sameResult(t, got, want)
		})
	}
}

// viaProto is what the replica made of res when it travelled as
// vitess's protobuf (an absent result was an empty message).
func viaProto(t *testing.T, res *sqltypes.Result) *sqltypes.Result {
	t.Helper()
	var b []byte
	if res != nil {
		var err error
		if b, err = sqltypes.ResultToProto3(res).MarshalVT(); err != nil {
			t.Fatal(err)
		}
	}
	var qr querypb.QueryResult
	if err := qr.UnmarshalVT(b); err != nil {
		t.Fatal(err)
	}
	return sqltypes.Proto3ToResult(&qr)
}

func sameResult(t *testing.T, got, want *sqltypes.Result) {
	t.Helper()
	if got.RowsAffected != want.RowsAffected || got.InsertID != want.InsertID || got.InsertIDChanged != want.InsertIDChanged {
		t.Errorf("counts: got %d/%d/%v, want %d/%d/%v", got.RowsAffected, got.InsertID, got.InsertIDChanged,
			want.RowsAffected, want.InsertID, want.InsertIDChanged)
	}
	if len(got.Fields) != len(want.Fields) {
		t.Fatalf("got %d fields, want %d", len(got.Fields), len(want.Fields))
	}
	for i := range got.Fields {
		if !proto.Equal(got.Fields[i], want.Fields[i]) {
			t.Errorf("field %d: got %v, want %v", i, got.Fields[i], want.Fields[i])
		}
	}
	if (got.Rows == nil) != (want.Rows == nil) || len(got.Rows) != len(want.Rows) {
		t.Fatalf("got rows %#v, want %#v", got.Rows, want.Rows)
	}
	for r := range got.Rows {
		if len(got.Rows[r]) != len(want.Rows[r]) {
			t.Fatalf("row %d: got %d values, want %d", r, len(got.Rows[r]), len(want.Rows[r]))
		}
		for i, g := range got.Rows[r] {
			w := want.Rows[r][i]
			if g.Type() != w.Type() || g.IsNull() != w.IsNull() || !bytes.Equal(g.Raw(), w.Raw()) {
				t.Errorf("row %d value %d: got %v %v (null %v), want %v %v (null %v)", r, i,
					g.Type(), g.Raw(), g.IsNull(), w.Type(), w.Raw(), w.IsNull())
			}
		}
	}
}

// The JSON between the nodes: NULL is null, every other value base64
// (an empty string too), columns by SQL type name.
func TestNeutralResultJSON(t *testing.T) {
	n, err := mysqlwire.ToResult(&sqltypes.Result{
		Fields: []*querypb.Field{{Name: "n", Type: sqltypes.Uint64, Charset: 63, Flags: uint32(querypb.MySqlFlag_UNSIGNED_FLAG)}, {Name: "s", Type: sqltypes.VarChar, Charset: 255}},
		Rows:   [][]sqltypes.Value{{sqltypes.NewUint64(math.MaxUint64), sqltypes.NULL}, {sqltypes.NULL, sqltypes.NewVarChar("")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"columns":[{"name":"n","type":"BIGINT UNSIGNED","charset":63,"flags":32},{"name":"s","type":"VARCHAR","charset":255}],` +
		`"rows":[["MTg0NDY3NDQwNzM3MDk1NTE2MTU=",null],[null,""]]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// Every vitess column type has one neutral name, so a result converts
// both ways whatever its columns.
func TestNeutralTypeNames(t *testing.T) {
	seen := map[string]querypb.Type{}
	for name, v := range querypb.Type_value {
		n, ok := mysqlwire.TypeName(querypb.Type(v))
		if !ok {
			t.Errorf("%s has no neutral name", name)
			continue
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s are both %q", name, other, n)
		}
		seen[n] = querypb.Type(v)
	}
	if _, err := mysqlwire.FromResult(&ephpm.Result{Columns: []ephpm.Column{{Name: "x", Type: "NUMBER"}}}); err == nil {
		t.Error("an unknown type name was accepted")
	}
	if _, err := mysqlwire.FromResult(&ephpm.Result{Columns: []ephpm.Column{{Name: "x", Type: "INT"}}, Rows: [][]ephpm.Value{{nil, nil}}}); err == nil {
		t.Error("a row wider than its columns was accepted")
	}
}

// The primary's SQL error reaches the replica's client as it was.
func TestNeutralErrorRoundTrip(t *testing.T) {
	orig := sqlerror.NewSQLErrorf(sqlerror.ERDupEntry, sqlerror.SSConstraintViolation, "Duplicate entry for key 'PRIMARY'")
	n := mysqlwire.ToNeutralError(orig)
	var ne *ephpm.SQLError
	if !errors.As(n, &ne) {
		t.Fatalf("neutral error %T", n)
	}
	b, err := json.Marshal(ne)
	if err != nil {
		t.Fatal(err)
	}
	var back *ephpm.SQLError
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got, ok := mysqlwire.ToSQLError(back).(*sqlerror.SQLError)
	if !ok || got.Num != orig.Num || got.State != orig.State || got.Message != orig.Message {
		t.Errorf("got %#v, want %#v", got, orig)
	}
}
