package sqlxlate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

func textCol(name string) Column {
	return Column{Name: name, OrgName: name, Type: querypb.Type_VARCHAR, Length: 1024, Charset: charsetUTF8MB4}
}

func intCol(name string) Column {
	return Column{Name: name, OrgName: name, Type: querypb.Type_INT64, Length: 21, Charset: charsetBinary, Flags: flagNum}
}

func textCols(names ...string) []Column {
	out := make([]Column, len(names))
	for i, n := range names {
		out[i] = textCol(n)
	}
	return out
}

// resultPlan returns rows computed here: filtered by LIKE on the first
// column in Go, or by a WHERE expression in SQLite over a VALUES CTE.
func (x *xlate) resultPlan(cols []Column, rows [][]any, f *sqlparser.ShowFilter) (*Plan, error) {
	if f != nil && f.Filter != nil {
		return &Plan{Kind: KindQuery, Columns: cols, Stmts: []string{x.valuesSQL(cols, rows) + " where " + x.print(f.Filter)}}, nil
	}
	if f != nil && f.Like != "" {
		var kept [][]any
		for _, r := range rows {
			if s, ok := r[0].(string); ok && likeMatch(f.Like, s) {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	return &Plan{Kind: KindResult, Columns: cols, Rows: rows}, nil
}

// valuesSQL is "with _r(cols) as (values …) select * from _r".
func (x *xlate) valuesSQL(cols []Column, rows [][]any) string {
	var b strings.Builder
	b.WriteString("with `_r` (")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(c.Name))
	}
	b.WriteString(") as (")
	b.WriteString(valuesBody(len(cols), rows))
	b.WriteString(") select * from `_r`")
	return b.String()
}

func valuesBody(ncols int, rows [][]any) string {
	var b strings.Builder
	if len(rows) == 0 {
		b.WriteString("select ")
		for i := 0; i < ncols; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("NULL")
		}
		b.WriteString(" limit 0")
		return b.String()
	}
	b.WriteString("values ")
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(sqlValue(v))
		}
		b.WriteString(")")
	}
	return b.String()
}

// rawSQL marks a value that is already SQL (a subquery).
type rawSQL string

func sqlValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return quoteString(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case rawSQL:
		return "(" + string(x) + ")"
	}
	return quoteString(fmt.Sprint(v))
}

// likeMatch is MySQL LIKE (case-insensitive, % _ and \ escapes), in
// linear space and quadratic worst-case time (no backtracking blow-up).
func likeMatch(pattern, s string) bool {
	type tok struct {
		r   rune
		any bool // _
		all bool // %
	}
	var p []tok
	pr := []rune(strings.ToLower(pattern))
	for i := 0; i < len(pr); i++ {
		switch {
		case pr[i] == '\\' && i+1 < len(pr):
			i++
			p = append(p, tok{r: pr[i]})
		case pr[i] == '%':
			p = append(p, tok{all: true})
		case pr[i] == '_':
			p = append(p, tok{any: true})
		default:
			p = append(p, tok{r: pr[i]})
		}
	}
	r := []rune(strings.ToLower(s))
	// cur[j]: pattern prefix of length j matches the text read so far
	cur := make([]bool, len(p)+1)
	next := make([]bool, len(p)+1)
	cur[0] = true
	for j := 1; j <= len(p) && p[j-1].all; j++ {
		cur[j] = true
	}
	for _, c := range r {
		for j := range next {
			next[j] = false
		}
		for j := 1; j <= len(p); j++ {
			t := p[j-1]
			switch {
			case t.all:
				next[j] = next[j-1] || cur[j]
			case t.any || t.r == c:
				next[j] = cur[j-1]
			}
		}
		cur, next = next, cur
	}
	return cur[len(p)]
}

func (x *xlate) showPlan(s *sqlparser.Show) (*Plan, error) {
	switch n := s.Internal.(type) {
	case *sqlparser.ShowBasic:
		return x.showBasic(n)
	case *sqlparser.ShowCreate:
		switch n.Command {
		case sqlparser.CreateTbl:
			return x.showCreateTable(n.Op.Name.String())
		case sqlparser.CreateDb:
			db := n.Op.Name.String()
			return &Plan{Kind: KindResult, Columns: textCols("Database", "Create Database"), Rows: [][]any{{db, "CREATE DATABASE `" + db + "` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */"}}}, nil
		}
		return nil, notSupported("SHOW CREATE %s", n.Command.ToString())
	case *sqlparser.ShowGrants:
		return &Plan{Kind: KindResult, Columns: textCols("Grants"), Rows: [][]any{{"GRANT ALL PRIVILEGES ON `" + x.cat.Database() + "`.* TO CURRENT_USER()"}}}, nil
	case *sqlparser.ShowEngine:
		return &Plan{Kind: KindResult, Columns: textCols("Type", "Name", "Status"), Rows: nil}, nil
	}
	return nil, notSupported("this SHOW statement")
}

func (x *xlate) showBasic(n *sqlparser.ShowBasic) (*Plan, error) {
	db := x.cat.Database()
	otherDB := !n.DbName.IsEmpty() && !strings.EqualFold(n.DbName.String(), db)
	switch n.Command {
	case sqlparser.Table:
		cols := textCols("Tables_in_" + db)
		if !n.DbName.IsEmpty() {
			cols = textCols("Tables_in_" + n.DbName.String())
		}
		if n.Full {
			cols = append(cols, textCol("Table_type"))
		}
		var rows [][]any
		if !otherDB {
			names, err := x.cat.Tables(x.ctx)
			if err != nil {
				return nil, fmt.Errorf("show tables: %w", err)
			}
			for _, t := range names {
				if n.Full {
					rows = append(rows, []any{t, "BASE TABLE"})
				} else {
					rows = append(rows, []any{t})
				}
			}
		}
		return x.resultPlan(cols, rows, n.Filter)
	case sqlparser.Column:
		return x.describePlan(n.Tbl, "", n.Full, n.Filter)
	case sqlparser.Index:
		return x.showIndex(n.Tbl.Name.String(), n.Filter)
	case sqlparser.TableStatus:
		return x.showTableStatus(n.Filter, otherDB)
	case sqlparser.VariableSession, sqlparser.VariableGlobal:
		return x.showVariables(n.Filter)
	case sqlparser.StatusSession, sqlparser.StatusGlobal:
		rows := [][]any{{"Uptime", "1"}, {"Threads_connected", "1"}, {"Threads_running", "1"}, {"Questions", "0"}, {"Connections", "1"}, {"Open_tables", "0"}, {"Slow_queries", "0"}}
		return x.resultPlan(textCols("Variable_name", "Value"), rows, n.Filter)
	case sqlparser.Database:
		rows := [][]any{{"information_schema"}, {db}}
		return x.resultPlan(textCols("Database"), rows, n.Filter)
	case sqlparser.Collation:
		cols := append(textCols("Collation", "Charset"), intCol("Id"), textCol("Default"), textCol("Compiled"), intCol("Sortlen"), textCol("Pad_attribute"))
		rows := [][]any{
			{"utf8mb4_0900_ai_ci", "utf8mb4", int64(255), "Yes", "Yes", int64(0), "NO PAD"},
			{"utf8mb4_bin", "utf8mb4", int64(46), "", "Yes", int64(1), "PAD SPACE"},
			{"utf8mb4_general_ci", "utf8mb4", int64(45), "", "Yes", int64(1), "PAD SPACE"},
			{"utf8mb4_unicode_ci", "utf8mb4", int64(224), "", "Yes", int64(8), "PAD SPACE"},
			{"utf8mb4_unicode_520_ci", "utf8mb4", int64(246), "", "Yes", int64(8), "PAD SPACE"},
			{"utf8mb3_general_ci", "utf8mb3", int64(33), "Yes", "Yes", int64(1), "PAD SPACE"},
			{"latin1_swedish_ci", "latin1", int64(8), "Yes", "Yes", int64(1), "PAD SPACE"},
			{"binary", "binary", int64(63), "Yes", "Yes", int64(1), "NO PAD"},
		}
		return x.resultPlan(cols, rows, n.Filter)
	case sqlparser.Charset:
		cols := append(textCols("Charset", "Description", "Default collation"), intCol("Maxlen"))
		rows := [][]any{
			{"utf8mb4", "UTF-8 Unicode", "utf8mb4_0900_ai_ci", int64(4)},
			{"utf8mb3", "UTF-8 Unicode", "utf8mb3_general_ci", int64(3)},
			{"latin1", "cp1252 West European", "latin1_swedish_ci", int64(1)},
			{"binary", "Binary pseudo charset", "binary", int64(1)},
		}
		return x.resultPlan(cols, rows, n.Filter)
	case sqlparser.Engines:
		rows := [][]any{{"InnoDB", "DEFAULT", "SQLite-backed storage (ephpm)", "YES", "NO", "YES"}}
		return x.resultPlan(textCols("Engine", "Support", "Comment", "Transactions", "XA", "Savepoints"), rows, n.Filter)
	case sqlparser.Warnings, sqlparser.Errors:
		return &Plan{Kind: KindResult, Columns: []Column{textCol("Level"), intCol("Code"), textCol("Message")}}, nil
	case sqlparser.ProcessList:
		cols := []Column{intCol("Id"), textCol("User"), textCol("Host"), textCol("db"), textCol("Command"), intCol("Time"), textCol("State"), textCol("Info")}
		return &Plan{Kind: KindResult, Columns: cols}, nil
	case sqlparser.Trigger:
		return &Plan{Kind: KindResult, Columns: textCols("Trigger", "Event", "Table", "Statement", "Timing", "Created", "sql_mode", "Definer", "character_set_client", "collation_connection", "Database Collation")}, nil
	case sqlparser.Procedure, sqlparser.Function:
		return &Plan{Kind: KindResult, Columns: textCols("Db", "Name", "Type", "Definer", "Modified", "Created", "Security_type", "Comment", "character_set_client", "collation_connection", "Database Collation")}, nil
	case sqlparser.Events:
		return &Plan{Kind: KindResult, Columns: textCols("Db", "Name", "Definer", "Time zone", "Type", "Execute at", "Interval value", "Interval field", "Starts", "Ends", "Status", "Originator", "character_set_client", "collation_connection", "Database Collation")}, nil
	case sqlparser.Plugins:
		return &Plan{Kind: KindResult, Columns: textCols("Name", "Status", "Type", "Library", "License")}, nil
	case sqlparser.OpenTable:
		return &Plan{Kind: KindResult, Columns: textCols("Database", "Table", "In_use", "Name_locked")}, nil
	case sqlparser.Privilege:
		return &Plan{Kind: KindResult, Columns: textCols("Privilege", "Context", "Comment")}, nil
	}
	return nil, notSupported("SHOW %s", n.Command.ToString())
}

// keyOf is the Key column of SHOW COLUMNS.
func keyOf(t *Table, col string) string {
	if pk := t.primary(); pk != nil {
		for _, c := range pk.Columns {
			if strings.EqualFold(c.Name, col) {
				return "PRI"
			}
		}
	}
	key := ""
	for _, ix := range t.Indexes {
		if ix.Primary || len(ix.Columns) == 0 || !strings.EqualFold(ix.Columns[0].Name, col) {
			continue
		}
		if ix.Unique && len(ix.Columns) == 1 {
			return "UNI"
		}
		key = "MUL"
	}
	return key
}

func extraOf(c TableColumn) string {
	var e []string
	if c.AutoIncrement {
		e = append(e, "auto_increment")
	}
	if c.DefaultIsExpr && c.Default != nil {
		e = append(e, "DEFAULT_GENERATED")
	}
	if c.OnUpdate != "" {
		e = append(e, "on update "+c.OnUpdate)
	}
	return strings.Join(e, " ")
}

func defaultOf(c TableColumn) any {
	if c.Default == nil {
		return nil
	}
	return *c.Default
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func (x *xlate) describePlan(tn sqlparser.TableName, wild string, full bool, filter ...*sqlparser.ShowFilter) (*Plan, error) {
	t, err := x.mustTable(tn.Name.String())
	if err != nil {
		return nil, err
	}
	var cols []Column
	if full {
		cols = textCols("Field", "Type", "Collation", "Null", "Key", "Default", "Extra", "Privileges", "Comment")
	} else {
		cols = textCols("Field", "Type", "Null", "Key", "Default", "Extra")
	}
	var rows [][]any
	for _, c := range t.Columns {
		null := yesNo(c.Nullable, "YES", "NO")
		if full {
			var coll any
			if c.Collation != "" {
				coll = c.Collation
			}
			rows = append(rows, []any{c.Name, c.Type, coll, null, keyOf(t, c.Name), defaultOf(c), extraOf(c), "select,insert,update,references", c.Comment})
		} else {
			rows = append(rows, []any{c.Name, c.Type, null, keyOf(t, c.Name), defaultOf(c), extraOf(c)})
		}
	}
	var f *sqlparser.ShowFilter
	if len(filter) > 0 {
		f = filter[0]
	}
	if wild != "" {
		f = &sqlparser.ShowFilter{Like: wild}
	}
	return x.resultPlan(cols, rows, f)
}

func (x *xlate) showIndex(name string, f *sqlparser.ShowFilter) (*Plan, error) {
	t, err := x.mustTable(name)
	if err != nil {
		return nil, err
	}
	cols := []Column{textCol("Table"), intCol("Non_unique"), textCol("Key_name"), intCol("Seq_in_index"), textCol("Column_name"), textCol("Collation"), intCol("Cardinality"), intCol("Sub_part"), textCol("Packed"), textCol("Null"), textCol("Index_type"), textCol("Comment"), textCol("Index_comment"), textCol("Visible"), textCol("Expression")}
	var rows [][]any
	for _, ix := range t.Indexes {
		for i, c := range ix.Columns {
			sub, null, typ := indexPart(t, &ix, c)
			coll := any("A")
			if ix.Fulltext {
				coll = nil
			}
			rows = append(rows, []any{t.Name, int64(boolInt(!ix.Unique)), ix.Name, int64(i + 1), c.Name, coll, int64(0), sub, nil, null, typ, "", "", "YES", nil})
		}
	}
	if f != nil && f.Filter != nil {
		return x.resultPlan(cols, rows, f)
	}
	return &Plan{Kind: KindResult, Columns: cols, Rows: rows}, nil
}

// indexPart is what SHOW INDEX and information_schema.STATISTICS say of
// one key part: its prefix length (nil: the whole column), "YES" when the
// column may be NULL, and the index type.
func indexPart(t *Table, ix *Index, c IndexColumn) (sub any, null, typ string) {
	if c.Length > 0 {
		sub = int64(c.Length)
	}
	if j := t.column(c.Name); j >= 0 && t.Columns[j].Nullable {
		null = "YES"
	}
	typ = "BTREE"
	if ix.Fulltext {
		typ = "FULLTEXT"
	}
	return sub, null, typ
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ShowCreateTable renders t as MySQL's SHOW CREATE TABLE does.
func ShowCreateTable(t *Table) string {
	var b strings.Builder
	b.WriteString("CREATE ")
	if t.Temporary {
		b.WriteString("TEMPORARY ")
	}
	b.WriteString("TABLE `" + t.Name + "` (\n")
	var lines []string
	for _, c := range t.Columns {
		l := "  `" + c.Name + "` " + c.Type
		if c.Collation != "" && c.Collation != t.Collation {
			l += " COLLATE " + c.Collation
		}
		if !c.Nullable {
			l += " NOT NULL"
		}
		if c.AutoIncrement {
			l += " AUTO_INCREMENT"
		}
		switch {
		case c.Default != nil && c.DefaultIsExpr:
			l += " DEFAULT " + *c.Default
		case c.Default != nil:
			l += " DEFAULT '" + strings.ReplaceAll(*c.Default, "'", "''") + "'"
		case c.Nullable && !c.AutoIncrement && !isLOB(c.Type):
			l += " DEFAULT NULL"
		}
		if c.OnUpdate != "" {
			l += " ON UPDATE " + c.OnUpdate
		}
		if c.Comment != "" {
			l += " COMMENT '" + strings.ReplaceAll(c.Comment, "'", "''") + "'"
		}
		lines = append(lines, l)
	}
	for _, ix := range t.Indexes {
		var parts []string
		for _, c := range ix.Columns {
			p := "`" + c.Name + "`"
			if c.Length > 0 {
				p += "(" + strconv.Itoa(c.Length) + ")"
			}
			parts = append(parts, p)
		}
		cols := "(" + strings.Join(parts, ",") + ")"
		switch {
		case ix.Primary:
			lines = append(lines, "  PRIMARY KEY "+cols)
		case ix.Unique:
			lines = append(lines, "  UNIQUE KEY `"+ix.Name+"` "+cols)
		case ix.Fulltext:
			lines = append(lines, "  FULLTEXT KEY `"+ix.Name+"` "+cols)
		default:
			lines = append(lines, "  KEY `"+ix.Name+"` "+cols)
		}
	}
	b.WriteString(strings.Join(lines, ",\n"))
	b.WriteString("\n) ENGINE=" + t.Engine)
	if t.AutoIncrement > 1 {
		b.WriteString(" AUTO_INCREMENT=" + strconv.FormatUint(t.AutoIncrement, 10))
	}
	b.WriteString(" DEFAULT CHARSET=" + t.Charset + " COLLATE=" + t.Collation)
	if t.Comment != "" {
		b.WriteString(" COMMENT='" + strings.ReplaceAll(t.Comment, "'", "''") + "'")
	}
	return b.String()
}

func isLOB(typ string) bool {
	c := parseColType(typ)
	return strings.HasSuffix(c.base, "text") || strings.HasSuffix(c.base, "blob") || c.base == "json"
}

func (x *xlate) showCreateTable(name string) (*Plan, error) {
	t, err := x.mustTable(name)
	if err != nil {
		return nil, err
	}
	return &Plan{Kind: KindResult, Columns: textCols("Table", "Create Table"), Rows: [][]any{{t.Name, ShowCreateTable(t)}}}, nil
}

func autoIncExpr(t *Table) any {
	if rowidPK(t) == "" {
		return nil
	}
	q := quoteString(t.Name)
	return rawSQL("select coalesce((select seq from sqlite_sequence where name = " + q + "), 0) + 1")
}

var tableStatusCols = []string{"Name", "Engine", "Version", "Row_format", "Rows", "Avg_row_length", "Data_length", "Max_data_length", "Index_length", "Data_free", "Auto_increment", "Create_time", "Update_time", "Check_time", "Collation", "Checksum", "Create_options", "Comment"}

func (x *xlate) showTableStatus(f *sqlparser.ShowFilter, otherDB bool) (*Plan, error) {
	cols := textCols(tableStatusCols...)
	for _, i := range []int{2, 4, 5, 6, 7, 8, 9, 10} {
		cols[i] = intCol(tableStatusCols[i])
	}
	var rows [][]any
	if !otherDB {
		names, err := x.cat.Tables(x.ctx)
		if err != nil {
			return nil, fmt.Errorf("show table status: %w", err)
		}
		for _, n := range names {
			if f != nil && f.Like != "" && !likeMatch(f.Like, n) {
				continue
			}
			t, err := x.mustTable(n)
			if err != nil {
				return nil, err
			}
			rows = append(rows, []any{t.Name, t.Engine, int64(10), "Dynamic", rawSQL("select count(*) from " + quoteIdent(t.Name)), int64(0), int64(0), int64(0), int64(0), int64(0), autoIncExpr(t), nil, nil, nil, t.Collation, nil, "", t.Comment})
		}
	}
	sql := x.valuesSQL(cols, rows)
	if f != nil && f.Filter != nil {
		sql += " where " + x.print(f.Filter)
	}
	return &Plan{Kind: KindQuery, Columns: cols, Stmts: []string{sql}}, nil
}

func (x *xlate) showVariables(f *sqlparser.ShowFilter) (*Plan, error) {
	vars := DefaultVariables()
	names := make([]string, 0, len(vars))
	for n := range vars {
		if f != nil && f.Like != "" && !likeMatch(f.Like, n) {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	cols := textCols("Variable_name", "Value")
	var rows [][]any
	for _, n := range names {
		rows = append(rows, []any{n, rawSQL("select " + x.param(ParamVarPrefix+n))})
	}
	sql := x.valuesSQL(cols, rows)
	if f != nil && f.Filter != nil {
		sql += " where " + x.print(f.Filter)
	}
	return &Plan{Kind: KindQuery, Columns: cols, Stmts: []string{sql}}, nil
}

func (x *xlate) adminResult(op, table string) (*Plan, error) {
	return &Plan{Kind: KindResult, Columns: textCols("Table", "Op", "Msg_type", "Msg_text"), Rows: [][]any{{x.cat.Database() + "." + table, op, "status", "OK"}}}, nil
}

// ---- information_schema ----

var infoSchemaCols = map[string][]string{
	"tables":     {"TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "TABLE_TYPE", "ENGINE", "VERSION", "ROW_FORMAT", "TABLE_ROWS", "AVG_ROW_LENGTH", "DATA_LENGTH", "MAX_DATA_LENGTH", "INDEX_LENGTH", "DATA_FREE", "AUTO_INCREMENT", "CREATE_TIME", "UPDATE_TIME", "CHECK_TIME", "TABLE_COLLATION", "CHECKSUM", "CREATE_OPTIONS", "TABLE_COMMENT"},
	"columns":    {"TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "ORDINAL_POSITION", "COLUMN_DEFAULT", "IS_NULLABLE", "DATA_TYPE", "CHARACTER_MAXIMUM_LENGTH", "CHARACTER_OCTET_LENGTH", "NUMERIC_PRECISION", "NUMERIC_SCALE", "DATETIME_PRECISION", "CHARACTER_SET_NAME", "COLLATION_NAME", "COLUMN_TYPE", "COLUMN_KEY", "EXTRA", "PRIVILEGES", "COLUMN_COMMENT", "GENERATION_EXPRESSION"},
	"statistics": {"TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "NON_UNIQUE", "INDEX_SCHEMA", "INDEX_NAME", "SEQ_IN_INDEX", "COLUMN_NAME", "COLLATION", "CARDINALITY", "SUB_PART", "PACKED", "NULLABLE", "INDEX_TYPE", "COMMENT", "INDEX_COMMENT", "IS_VISIBLE", "EXPRESSION"},
	"schemata":   {"CATALOG_NAME", "SCHEMA_NAME", "DEFAULT_CHARACTER_SET_NAME", "DEFAULT_COLLATION_NAME", "SQL_PATH"},
}

func (x *xlate) infoSchemaRef(name string) string {
	l := strings.ToLower(name)
	if _, ok := infoSchemaCols[l]; !ok {
		x.fail(&Error{Code: ErrNoSuchTable, State: "42S02", Message: "Table 'information_schema." + name + "' doesn't exist (ephpm provides TABLES, COLUMNS, STATISTICS, SCHEMATA)"})
		return "`_is_" + l + "`"
	}
	found := false
	for _, s := range x.infoSchema {
		found = found || s == l
	}
	if !found {
		x.infoSchema = append(x.infoSchema, l)
	}
	return "`_is_" + l + "`"
}

func (x *xlate) infoSchemaCTEs() string {
	var parts []string
	for _, view := range x.infoSchema {
		rows, err := x.infoSchemaRows(view)
		if err != nil {
			x.fail(err)
			return ""
		}
		cols := infoSchemaCols[view]
		var qc []string
		for _, c := range cols {
			qc = append(qc, quoteIdent(c))
		}
		parts = append(parts, "`_is_"+view+"` ("+strings.Join(qc, ", ")+") as ("+valuesBody(len(cols), rows)+")")
	}
	return strings.Join(parts, ", ")
}

func (x *xlate) infoSchemaRows(view string) ([][]any, error) {
	db := x.cat.Database()
	if view == "schemata" {
		return [][]any{
			{"def", "information_schema", "utf8mb3", "utf8mb3_general_ci", nil},
			{"def", db, "utf8mb4", "utf8mb4_0900_ai_ci", nil},
		}, nil
	}
	names, err := x.cat.Tables(x.ctx)
	if err != nil {
		return nil, fmt.Errorf("information_schema: %w", err)
	}
	var rows [][]any
	for _, n := range names {
		t, err := x.mustTable(n)
		if err != nil {
			return nil, err
		}
		switch view {
		case "tables":
			rows = append(rows, []any{"def", db, t.Name, "BASE TABLE", t.Engine, int64(10), "Dynamic", rawSQL("select count(*) from " + quoteIdent(t.Name)), int64(0), int64(0), int64(0), int64(0), int64(0), autoIncExpr(t), nil, nil, nil, t.Collation, nil, "", t.Comment})
		case "columns":
			for i, c := range t.Columns {
				ct := parseColType(c.Type)
				var charLen, octLen, numPrec, numScale, dtPrec, cs, coll any
				if ct.isText() || ct.isBlob() {
					l := int64(ct.length)
					switch ct.base {
					case "tinytext", "tinyblob":
						l = 255
					case "text", "blob":
						l = 65535
					case "mediumtext", "mediumblob":
						l = 16777215
					case "longtext", "longblob", "json":
						l = 4294967295
					}
					charLen, octLen = l, l
					if ct.isText() {
						if ct.base == "char" || ct.base == "varchar" {
							octLen = l * 4
						}
						coll = c.Collation
						cs = charsetOf(c.Collation)
					}
				}
				if ct.isNumeric() {
					numPrec = int64(map[string]int{"tinyint": 3, "smallint": 5, "mediumint": 7, "int": 10, "integer": 10, "bigint": 19, "float": 12, "double": 22}[ct.base])
					if ct.base == "bigint" && ct.unsigned {
						numPrec = int64(20)
					}
					if ct.base == "decimal" {
						numPrec = int64(ct.length)
					}
					if ct.isInt() || ct.base == "decimal" {
						numScale = int64(max(ct.scale, 0))
					}
				}
				if ct.isTemporal() && ct.base != "date" {
					dtPrec = int64(0)
				}
				rows = append(rows, []any{"def", db, t.Name, c.Name, int64(i + 1), defaultOf(c), yesNo(c.Nullable, "YES", "NO"), ct.base, charLen, octLen, numPrec, numScale, dtPrec, cs, coll, c.Type, keyOf(t, c.Name), extraOf(c), "select,insert,update,references", c.Comment, ""})
			}
		case "statistics":
			for _, ix := range t.Indexes {
				for i, c := range ix.Columns {
					sub, null, typ := indexPart(t, &ix, c)
					rows = append(rows, []any{"def", db, t.Name, int64(boolInt(!ix.Unique)), db, ix.Name, int64(i + 1), c.Name, "A", int64(0), sub, nil, null, typ, "", "", "YES", nil})
				}
			}
		}
	}
	return rows, nil
}
