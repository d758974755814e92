package mysqlwire

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/collations"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/ephpm/ephpm/sqlite"
	"github.com/ephpm/ephpm/sqlxlate"
)

const (
	charsetUTF8MB4 = 255 // utf8mb4_0900_ai_ci, what MySQL 8 sends for text
	charsetBinary  = 63
)

// cell is a value from SQLite rendered as MySQL text.
type cell struct {
	b    []byte
	null bool
	kind byte // 'i' int, 'f' float, 's' text, 'b' binary, 't' time, 'n' null
}

// describeRows is how many rows a prepare-time describe reads to infer the
// types of expression columns.
const describeRows = 16

// cellOverhead is what a value costs beside its bytes while a result is
// built (its cell, its sqltypes.Value), counted against MaxResultSize.
const cellOverhead = 64

// collect reads the rows (all of them, or at most limit when limit > 0:
// types must be known before the first row is sent) and builds the MySQL
// result.
func (s *session) collect(plan *sqlxlate.Plan, rows rowSource, limit int) (*sqltypes.Result, error) {
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	n := len(names)
	decl := make([]string, n)
	for i := range names {
		decl[i] = strings.ToUpper(rows.DeclType(i))
	}
	var cells [][]cell
	vals := make([]driver.Value, n)
	size, max := 0, s.srv.cfg.MaxResultSize
	for limit <= 0 || len(cells) < limit {
		ok, err := rows.Next(vals)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		row := make([]cell, n)
		for i, v := range vals {
			row[i] = toCell(v, decl[i])
			size += len(row[i].b) + cellOverhead
		}
		if size > max {
			return nil, sqlerror.NewSQLErrorf(sqlerror.EROutOfResources, sqlerror.SSUnknownSQLState,
				"Out of resources: the result is larger than %d bytes, the most ephpm builds in memory before sending; read it in parts (LIMIT)", max)
		}
		cells = append(cells, row)
	}
	fields := make([]*querypb.Field, n)
	for i, name := range names {
		if i < len(plan.Columns) {
			fields[i] = s.columnField(plan.Columns[i])
		} else {
			fields[i] = s.inferField(name, decl[i], cells, i)
		}
	}
	return buildResult(fields, cells), nil
}

// buildResult coerces every value to its field's type; a column whose
// values do not fit its declared type (SQLite's dynamic typing) becomes
// VARCHAR, since binary rows are encoded by each value's type and a wrong
// type would reach PHP as a wrong number.
func buildResult(fields []*querypb.Field, cells [][]cell) *sqltypes.Result {
	for i, f := range fields {
		for _, row := range cells {
			if !fits(f.Type, row[i]) {
				downgrade(f, cells, i)
				break
			}
		}
	}
	res := &sqltypes.Result{Fields: fields, Rows: make([][]sqltypes.Value, len(cells))}
	for r, row := range cells {
		out := make([]sqltypes.Value, len(row))
		for i, c := range row {
			if c.null {
				out[i] = sqltypes.NULL
			} else {
				b := c.b
				if fields[i].Type == sqltypes.Decimal && (c.kind == 'f' || c.kind == 'i') {
					b = fixedScale(b, fields[i].Decimals)
				}
				out[i] = sqltypes.MakeTrusted(fields[i].Type, b)
			}
		}
		res.Rows[r] = out
	}
	return res
}

// declScale is the scale of a DECIMAL(p,s) declaration.
func declScale(decl string) uint32 {
	_, rest, ok := strings.Cut(decl, ",")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimRight(strings.Fields(rest + " ")[0], ")")))
	if err != nil || n < 0 || n > 30 {
		return 0
	}
	return uint32(n)
}

// fixedScale prints a number SQLite stored for a DECIMAL column the way
// MySQL does: with exactly scale decimals ("9.50", not "9.5").
func fixedScale(b []byte, scale uint32) []byte {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return b
	}
	return strconv.AppendFloat(nil, f, 'f', int(scale), 64)
}

func downgrade(f *querypb.Field, cells [][]cell, i int) {
	binary := false
	for _, row := range cells {
		if row[i].kind == 'b' && !utf8.Valid(row[i].b) {
			binary = true
			break
		}
	}
	if binary {
		f.Type, f.Charset, f.Flags = sqltypes.Blob, charsetBinary, uint32(querypb.MySqlFlag_BLOB_FLAG|querypb.MySqlFlag_BINARY_FLAG)
	} else {
		f.Type, f.Charset, f.Flags = sqltypes.VarChar, charsetUTF8MB4, 0
	}
	f.Decimals = 0
	f.ColumnLength = 65535
}

func toCell(v any, decl string) cell {
	switch x := v.(type) {
	case nil:
		return cell{null: true, kind: 'n'}
	case int64:
		return cell{b: strconv.AppendInt(nil, x, 10), kind: 'i'}
	case float64:
		return cell{b: strconv.AppendFloat(nil, x, 'g', -1, 64), kind: 'f'}
	case string:
		// Strings are immutable and cells are only read: no copy.
		if x == "" {
			return cell{b: []byte{}, kind: 's'}
		}
		return cell{b: unsafe.Slice(unsafe.StringData(x), len(x)), kind: 's'}
	case []byte:
		// The driver (and database/sql's Scan into *any) hand out their
		// own copy, and cells are only read.
		return cell{b: x, kind: 'b'}
	case bool:
		if x {
			return cell{b: []byte("1"), kind: 'i'}
		}
		return cell{b: []byte("0"), kind: 'i'}
	case time.Time:
		// modernc parses DATE/DATETIME/TIMESTAMP text into time.Time; give
		// PHP back MySQL's format.
		if decl == "DATE" {
			return cell{b: []byte(x.Format("2006-01-02")), kind: 't'}
		}
		layout := "2006-01-02 15:04:05"
		if x.Nanosecond() != 0 {
			layout = "2006-01-02 15:04:05.999999"
		}
		return cell{b: []byte(x.Format(layout)), kind: 't'}
	}
	return cell{b: []byte(fmt.Sprint(v)), kind: 's'}
}

// fits reports whether the value can be encoded as typ in a binary row.
func fits(typ querypb.Type, c cell) bool {
	if c.null {
		return true
	}
	// A view, not a copy: strconv does not keep it.
	s := unsafe.String(unsafe.SliceData(c.b), len(c.b))
	switch typ {
	case sqltypes.Int8:
		_, err := strconv.ParseInt(s, 10, 8)
		return err == nil
	case sqltypes.Uint8:
		_, err := strconv.ParseUint(s, 10, 8)
		return err == nil
	case sqltypes.Int16, sqltypes.Year:
		_, err := strconv.ParseInt(s, 10, 16)
		return err == nil
	case sqltypes.Uint16:
		_, err := strconv.ParseUint(s, 10, 16)
		return err == nil
	case sqltypes.Int24, sqltypes.Int32:
		_, err := strconv.ParseInt(s, 10, 32)
		return err == nil
	case sqltypes.Uint24, sqltypes.Uint32:
		_, err := strconv.ParseUint(s, 10, 32)
		return err == nil
	case sqltypes.Int64:
		_, err := strconv.ParseInt(s, 10, 64)
		return err == nil
	case sqltypes.Uint64:
		_, err := strconv.ParseUint(s, 10, 64)
		return err == nil
	case sqltypes.Float32, sqltypes.Float64, sqltypes.Decimal:
		_, err := strconv.ParseFloat(s, 64)
		return err == nil
	case sqltypes.Date:
		return isDate(s)
	case sqltypes.Datetime, sqltypes.Timestamp:
		return isDatetime(s)
	case sqltypes.Time:
		return isTime(s)
	}
	return true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func isDate(s string) bool {
	return len(s) == 10 && digits(s[0:4]) && s[4] == '-' && digits(s[5:7]) && s[7] == '-' && digits(s[8:10])
}

func isDatetime(s string) bool {
	if len(s) == 10 {
		return isDate(s)
	}
	if len(s) < 19 || !isDate(s[:10]) || s[10] != ' ' || !isClock(s[11:19]) {
		return false
	}
	return len(s) == 19 || (s[19] == '.' && len(s) <= 26 && digits(s[20:]))
}

func isClock(s string) bool {
	return len(s) == 8 && digits(s[0:2]) && s[2] == ':' && digits(s[3:5]) && s[5] == ':' && digits(s[6:8])
}

func isTime(s string) bool {
	s = strings.TrimPrefix(s, "-")
	h, rest, ok := strings.Cut(s, ":")
	if !ok || !digits(h) || len(rest) < 5 || !isClock("00:"+rest[:5]) {
		return false
	}
	return len(rest) == 5 || (rest[5] == '.' && digits(rest[6:]))
}

// columnField turns translator metadata into a wire field.
func (s *session) columnField(c sqlxlate.Column) *querypb.Field {
	cs := c.Charset
	if cs == 0 {
		cs = defaultCharset(c.Type)
	}
	return &querypb.Field{
		Name:         c.Name,
		OrgName:      c.OrgName,
		Table:        c.Table,
		OrgTable:     c.OrgTable,
		Database:     s.database,
		Type:         c.Type,
		ColumnLength: c.Length,
		Charset:      cs,
		Decimals:     c.Decimals,
		Flags:        c.Flags | mysql.FlagsForColumn(c.Type, collations.ID(cs)),
	}
}

func defaultCharset(t querypb.Type) uint32 {
	if sqltypes.IsText(t) || t == sqltypes.Enum || t == sqltypes.Set || t == sqltypes.TypeJSON {
		return charsetUTF8MB4
	}
	return charsetBinary
}

// inferField derives metadata from the declared SQLite type or, for
// expressions, from the values.
func (s *session) inferField(name, decl string, cells [][]cell, i int) *querypb.Field {
	f := &querypb.Field{Name: name, Database: s.database}
	if decl != "" {
		t := declField(decl)
		f.Type, f.ColumnLength, f.Decimals, f.Charset, f.Flags = t.Type, t.ColumnLength, t.Decimals, t.Charset, t.Flags
		return f
	}
	var ints, floats, texts, bins int
	for _, row := range cells {
		switch row[i].kind {
		case 'i':
			ints++
		case 'f':
			floats++
		case 'b':
			bins++
		case 's', 't':
			texts++
		}
	}
	switch {
	case ints > 0 && floats == 0 && texts == 0 && bins == 0:
		f.Type, f.ColumnLength, f.Charset = sqltypes.Int64, 21, charsetBinary
	case floats > 0 && texts == 0 && bins == 0:
		f.Type, f.ColumnLength, f.Charset, f.Decimals = sqltypes.Float64, 22, charsetBinary, 31
	case bins > 0 && texts == 0:
		f.Type, f.ColumnLength, f.Charset = sqltypes.Blob, 65535, charsetBinary
	default:
		f.Type, f.ColumnLength, f.Charset = sqltypes.VarChar, 65535, charsetUTF8MB4
	}
	f.Flags = mysql.FlagsForColumn(f.Type, collations.ID(f.Charset))
	return f
}

// declFields caches the field metadata of declared column types: parsing
// a declaration costs more than the point read it describes. Schemas have
// few distinct declarations; the cache empties itself if that is not so.
// Readers load the map without locking (copy on write: misses are rare).
var declFields struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]*querypb.Field]
}

const maxDeclFields = 1024

func declField(decl string) *querypb.Field {
	if m := declFields.m.Load(); m != nil {
		if f := (*m)[decl]; f != nil {
			return f
		}
	}
	typ, flags, length := sqlxlate.FieldType(decl)
	f := &querypb.Field{Type: typ, ColumnLength: length}
	if typ == sqltypes.Decimal {
		f.Decimals = declScale(decl)
	}
	f.Charset = defaultCharset(typ)
	f.Flags = flags | mysql.FlagsForColumn(typ, collations.ID(f.Charset))
	if typ == sqltypes.Float64 || typ == sqltypes.Float32 {
		f.Decimals = 31
	}
	declFields.mu.Lock()
	next := map[string]*querypb.Field{}
	if m := declFields.m.Load(); m != nil && len(*m) < maxDeclFields {
		maps.Copy(next, *m)
	}
	next[decl] = f
	declFields.m.Store(&next)
	declFields.mu.Unlock()
	return f
}

// constResult renders a KindResult plan.
func (s *session) constResult(plan *sqlxlate.Plan) (*sqltypes.Result, error) {
	fields := make([]*querypb.Field, len(plan.Columns))
	for i, c := range plan.Columns {
		fields[i] = s.columnField(c)
	}
	cells := make([][]cell, len(plan.Rows))
	for r, row := range plan.Rows {
		if len(row) != len(fields) {
			return nil, fmt.Errorf("result row %d has %d values for %d columns", r, len(row), len(fields))
		}
		out := make([]cell, len(row))
		for i, v := range row {
			out[i] = toCell(v, "")
		}
		cells[r] = out
	}
	s.foundRows = int64(len(cells))
	s.rowCount = -1
	return buildResult(fields, cells), nil
}

// describe returns the result fields of a prepared statement (mysqlnd needs
// the column count for bind_result before the first execute). Queries run
// once with NULL parameters; expression types may be refined at execute.
func (s *session) describe(plan *sqlxlate.Plan) ([]*querypb.Field, error) {
	switch plan.Kind {
	case sqlxlate.KindResult:
		fields := make([]*querypb.Field, len(plan.Columns))
		for i, c := range plan.Columns {
			fields[i] = s.columnField(c)
		}
		return fields, nil
	case sqlxlate.KindQuery:
	default:
		return nil, nil
	}
	if plan.Write || len(plan.Stmts) == 0 {
		return nil, nil
	}
	// Clients prepare the same statements over and over (PDO and
	// go-sql-driver prepare, execute and close each query): remember the
	// fields per site, query and schema version instead of running the
	// query again. Not inside a writing transaction or with temp tables,
	// whose schema other sessions do not share.
	shared := s.w == nil && !s.hasTemp
	key := describeKey{db: s.db, query: strings.Join(plan.Stmts, ";"), version: s.site.cat.Version()}
	if shared {
		if f, ok := s.srv.describes.get(key); ok {
			return f, nil
		}
	}
	f, err := s.describeFresh(plan)
	if err == nil && shared {
		s.srv.describes.put(key, f)
	}
	return f, err
}

func (s *session) describeFresh(plan *sqlxlate.Plan) ([]*querypb.Field, error) {
	if s.hasTemp && s.w == nil {
		w, err := s.db.AcquireWriter(s.srv.ctx)
		if err != nil {
			return nil, err
		}
		defer w.Release(s.srv.ctx)
		return s.describeOn(w, plan)
	}
	var q querier = s.db.Reader()
	if s.w != nil {
		q = s.w
	}
	return s.describeOn(q, plan)
}

func (s *session) describeOn(q querier, plan *sqlxlate.Plan) ([]*querypb.Field, error) {
	ctx := s.ctx
	named := s.bind(plan, nil)
	if _, isPool := q.(*sql.DB); isPool && len(plan.Stmts) > 1 {
		c, err := s.db.Reader().Conn(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		q = c
	}
	rows, err := queryPlan(ctx, q, plan, named)
	if err != nil {
		return nil, err
	}
	saved := s.foundRows
	res, err := s.collect(plan, &sqlRows{r: rows}, describeRows)
	s.foundRows = saved
	if err != nil {
		return nil, err
	}
	return res.Fields, nil
}

// bindValue converts a prepared statement parameter to a SQLite argument.
func bindValue(bv *querypb.BindVariable) (any, error) {
	v, err := sqltypes.BindVariableToValue(bv)
	if err != nil {
		return nil, err
	}
	switch {
	case v.IsNull():
		return nil, nil
	case v.IsSigned():
		return v.ToInt64()
	case v.IsUnsigned():
		u, err := v.ToUint64()
		if err != nil {
			return nil, err
		}
		if u > 1<<63-1 {
			return v.ToString(), nil
		}
		return int64(u), nil
	case v.IsFloat():
		return v.ToFloat64()
	case v.Type() == sqltypes.Blob || v.Type() == sqltypes.VarBinary || v.Type() == sqltypes.Binary:
		// mysqlnd sends strings as VAR_STRING and blobs as BLOB; text that
		// is valid UTF-8 is bound as TEXT so it compares equal to stored text.
		if raw := v.Raw(); !utf8.Valid(raw) {
			return append([]byte(nil), raw...), nil
		}
	}
	return v.ToString(), nil
}

type describeKey struct {
	db      *sqlite.DB
	query   string
	version uint64
}

// describeCache holds prepare-time fields; it is emptied when full, which
// is cheap and keeps it bounded.
type describeCache struct {
	mu sync.Mutex
	m  map[describeKey][]*querypb.Field
}

func (c *describeCache) get(k describeKey) ([]*querypb.Field, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[k]
	return f, ok
}

func (c *describeCache) put(k describeKey, f []*querypb.Field) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= DefaultPlanCache {
		c.m = map[describeKey][]*querypb.Field{}
	}
	c.m[k] = f
}

// forget drops the entries of a database that is no longer in use.
func (c *describeCache) forget(db *sqlite.DB) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if k.db == db {
			delete(c.m, k)
		}
	}
}
