package sqlxlate

import (
	"strconv"
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"
)

func ddlPlan(stmts ...string) *Plan {
	return &Plan{Kind: KindExec, Write: true, SchemaChange: true, Stmts: append([]string{SchemaBootstrapSQL}, stmts...), Main: 0}
}

func defaultCollation(charset string) string {
	switch strings.ToLower(charset) {
	case "", "utf8mb4":
		return "utf8mb4_0900_ai_ci"
	case "utf8", "utf8mb3":
		return "utf8mb3_general_ci"
	case "latin1":
		return "latin1_swedish_ci"
	case "binary":
		return "binary"
	case "ascii":
		return "ascii_general_ci"
	}
	return strings.ToLower(charset) + "_general_ci"
}

func charsetOf(collation string) string {
	if i := strings.IndexByte(collation, '_'); i > 0 {
		return collation[:i]
	}
	return collation
}

// tableFromSpec builds the catalog definition of CREATE TABLE.
func (x *xlate) tableFromSpec(name string, spec *sqlparser.TableSpec, temp bool) (*Table, error) {
	t := &Table{Name: name, Engine: "InnoDB", Charset: "utf8mb4", Temporary: temp}
	for _, o := range spec.Options {
		applyTableOption(t, o)
	}
	if t.Collation == "" {
		t.Collation = defaultCollation(t.Charset)
	}
	if spec.PartitionOption != nil {
		return nil, notSupported("PARTITION BY")
	}
	for _, cd := range spec.Columns {
		col, err := x.columnFromDef(t, cd)
		if err != nil {
			return nil, err
		}
		if t.column(col.Name) >= 0 {
			return nil, &Error{Code: 1060, State: "42S21", Message: "Duplicate column name '" + col.Name + "'"}
		}
		t.Columns = append(t.Columns, col)
		if err := addColumnKey(t, cd); err != nil {
			return nil, err
		}
	}
	for _, id := range spec.Indexes {
		if err := addIndexDef(t, id); err != nil {
			return nil, err
		}
	}
	return t, checkTable(t)
}

func applyTableOption(t *Table, o *sqlparser.TableOption) {
	val := o.String
	if o.Value != nil {
		val = o.Value.Val
	}
	switch n := strings.ToLower(o.Name); {
	case n == "engine":
		t.Engine = val
	case strings.Contains(n, "charset") || strings.Contains(n, "character set"):
		t.Charset = strings.ToLower(val)
		t.Collation = ""
	case strings.Contains(n, "collate"):
		t.Collation = strings.ToLower(val)
		t.Charset = charsetOf(t.Collation)
	case n == "auto_increment":
		n, _ := strconv.ParseUint(val, 10, 64)
		t.AutoIncrement = n
	case n == "comment":
		t.Comment = val
	}
}

func (x *xlate) columnFromDef(t *Table, cd *sqlparser.ColumnDefinition) (TableColumn, error) {
	ct := cd.Type
	c := colType{base: strings.ToLower(ct.Type), length: -1, scale: -1, unsigned: ct.Unsigned, zerofill: ct.Zerofill}
	if ct.Length != nil {
		c.length = *ct.Length
	}
	if ct.Scale != nil {
		c.scale = *ct.Scale
	}
	for _, v := range ct.EnumValues {
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		}
		c.enumVals = append(c.enumVals, v)
	}
	switch c.base {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "bool", "boolean", "bit", "year",
		"float", "double", "real", "decimal", "numeric", "dec", "fixed", "double precision",
		"char", "varchar", "nchar", "nvarchar", "tinytext", "text", "mediumtext", "longtext", "json",
		"enum", "set", "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"date", "datetime", "timestamp", "time":
	default:
		return TableColumn{}, notSupported("column type %s", ct.Type)
	}
	col := TableColumn{Name: cd.Name.String(), Type: c.mysqlString(), Nullable: true}
	if c.isText() {
		switch {
		case ct.Options != nil && ct.Options.Collate != "":
			col.Collation = strings.ToLower(ct.Options.Collate)
		case ct.Charset.Name != "":
			col.Collation = defaultCollation(ct.Charset.Name)
		default:
			col.Collation = t.Collation
		}
		if ct.Charset.Binary {
			col.Collation = charsetOf(col.Collation) + "_bin"
		}
	}
	o := ct.Options
	if o == nil {
		return col, nil
	}
	if o.Null != nil && !*o.Null {
		col.Nullable = false
	}
	if o.KeyOpt == sqlparser.ColKeyPrimary {
		col.Nullable = false
	}
	col.AutoIncrement = o.Autoincrement
	if o.As != nil {
		return TableColumn{}, notSupported("generated columns")
	}
	if o.Comment != nil {
		col.Comment = o.Comment.Val
	}
	if o.OnUpdate != nil {
		col.OnUpdate = "CURRENT_TIMESTAMP"
	}
	if o.Default != nil {
		switch d := o.Default.(type) {
		case *sqlparser.NullVal:
		case *sqlparser.Literal:
			v := d.Val
			if d.Type == sqlparser.HexVal || d.Type == sqlparser.HexNum || d.Type == sqlparser.BitNum {
				v = literalSQL(d)
				col.DefaultIsExpr = true
			}
			col.Default = &v
		case sqlparser.BoolVal:
			v := "0"
			if d {
				v = "1"
			}
			col.Default = &v
		case *sqlparser.CurTimeFuncExpr:
			v := "CURRENT_TIMESTAMP"
			col.Default, col.DefaultIsExpr = &v, true
		case *sqlparser.UnaryExpr:
			v := strings.ReplaceAll(sqlparser.String(d), " ", "")
			col.Default = &v
		default:
			v := x.print(d)
			col.Default, col.DefaultIsExpr = &v, true
		}
	}
	return col, nil
}

func addColumnKey(t *Table, cd *sqlparser.ColumnDefinition) error {
	if cd.Type.Options == nil {
		return nil
	}
	name := cd.Name.String()
	switch cd.Type.Options.KeyOpt {
	case sqlparser.ColKeyPrimary:
		if t.primary() != nil {
			return &Error{Code: 1068, State: "42000", Message: "Multiple primary key defined"}
		}
		t.Indexes = append([]Index{{Name: "PRIMARY", Primary: true, Unique: true, Columns: []IndexColumn{{Name: name}}}}, t.Indexes...)
	case sqlparser.ColKeyUnique, sqlparser.ColKeyUniqueKey:
		t.Indexes = append(t.Indexes, Index{Name: uniqueIndexName(t, name), Unique: true, Columns: []IndexColumn{{Name: name}}})
	case sqlparser.ColKey:
		t.Indexes = append(t.Indexes, Index{Name: uniqueIndexName(t, name), Columns: []IndexColumn{{Name: name}}})
	case sqlparser.ColKeyFulltextKey:
		t.Indexes = append(t.Indexes, Index{Name: uniqueIndexName(t, name), Fulltext: true, Columns: []IndexColumn{{Name: name}}})
	case sqlparser.ColKeySpatialKey:
		return notSupported("SPATIAL keys")
	}
	return nil
}

func uniqueIndexName(t *Table, base string) string {
	name := base
	for i := 2; t.index(name) >= 0; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	return name
}

func addIndexDef(t *Table, id *sqlparser.IndexDefinition) error {
	ix := Index{Name: id.Info.Name.String()}
	switch id.Info.Type {
	case sqlparser.IndexTypePrimary:
		ix.Name, ix.Primary, ix.Unique = "PRIMARY", true, true
		if t.primary() != nil {
			return &Error{Code: 1068, State: "42000", Message: "Multiple primary key defined"}
		}
	case sqlparser.IndexTypeUnique:
		ix.Unique = true
	case sqlparser.IndexTypeFullText:
		ix.Fulltext = true
	case sqlparser.IndexTypeSpatial:
		return notSupported("SPATIAL keys")
	}
	for _, c := range id.Columns {
		if c.Expression != nil {
			return notSupported("functional key parts")
		}
		ic := IndexColumn{Name: c.Column.String()}
		if c.Length != nil {
			ic.Length = *c.Length
		}
		if t.column(ic.Name) < 0 {
			return &Error{Code: 1072, State: "42000", Message: "Key column '" + ic.Name + "' doesn't exist in table"}
		}
		ix.Columns = append(ix.Columns, ic)
	}
	if ix.Name == "" {
		ix.Name = uniqueIndexName(t, ix.Columns[0].Name)
	} else if !ix.Primary && t.index(ix.Name) >= 0 {
		return &Error{Code: ErrDupKeyName, State: "42000", Message: "Duplicate key name '" + ix.Name + "'"}
	}
	if ix.Primary {
		for _, c := range ix.Columns {
			t.Columns[t.column(c.Name)].Nullable = false
		}
		t.Indexes = append([]Index{ix}, t.Indexes...)
		return nil
	}
	t.Indexes = append(t.Indexes, ix)
	return nil
}

// checkTable rejects what SQLite cannot represent faithfully.
func checkTable(t *Table) error {
	for _, c := range t.Columns {
		if !c.AutoIncrement {
			continue
		}
		pk := t.primary()
		if pk == nil || len(pk.Columns) != 1 || !strings.EqualFold(pk.Columns[0].Name, c.Name) {
			return notSupported("AUTO_INCREMENT on a column that is not the whole PRIMARY KEY")
		}
		if !parseColType(c.Type).isInt() {
			return &Error{Code: 1063, State: "42000", Message: "Incorrect column specifier for column '" + c.Name + "'"}
		}
	}
	return nil
}

// rowidPK is the AUTO_INCREMENT primary key column, which becomes SQLite's
// INTEGER PRIMARY KEY AUTOINCREMENT ("" if none).
func rowidPK(t *Table) string {
	pk := t.primary()
	if pk == nil || len(pk.Columns) != 1 {
		return ""
	}
	i := t.column(pk.Columns[0].Name)
	if i < 0 || !t.Columns[i].AutoIncrement {
		return ""
	}
	return t.Columns[i].Name
}

func columnSQL(c TableColumn, rowid bool) string {
	ct := parseColType(c.Type)
	if rowid {
		return quoteIdent(c.Name) + " INTEGER PRIMARY KEY AUTOINCREMENT"
	}
	var b strings.Builder
	b.WriteString(quoteIdent(c.Name) + " " + ct.sqliteDecl())
	if !c.Nullable {
		b.WriteString(" NOT NULL")
	}
	switch {
	case c.Default != nil && c.DefaultIsExpr && *c.Default == "CURRENT_TIMESTAMP":
		switch ct.base {
		case "date":
			b.WriteString(" DEFAULT (date('now','localtime'))")
		case "time":
			b.WriteString(" DEFAULT (time('now','localtime'))")
		default:
			b.WriteString(" DEFAULT (datetime('now','localtime'))")
		}
	case c.Default != nil && c.DefaultIsExpr:
		b.WriteString(" DEFAULT (" + *c.Default + ")")
	case c.Default != nil:
		if ct.isNumeric() && isNumberLiteral(*c.Default) {
			b.WriteString(" DEFAULT " + *c.Default)
		} else {
			b.WriteString(" DEFAULT " + quoteString(*c.Default))
		}
	case !c.Nullable:
		b.WriteString(" DEFAULT " + ct.implicitDefault())
	}
	if ct.isText() {
		b.WriteString(" COLLATE " + sqliteCollation(c.Collation))
	}
	return b.String()
}

func isNumberLiteral(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// createSQL is the SQLite DDL of t under the table name sqliteName.
func createSQL(t *Table, sqliteName string, ifNotExists bool) string {
	var b strings.Builder
	b.WriteString("create ")
	if t.Temporary {
		b.WriteString("temp ")
	}
	b.WriteString("table ")
	if ifNotExists {
		b.WriteString("if not exists ")
	}
	b.WriteString(quoteIdent(sqliteName) + " (")
	rowid := rowidPK(t)
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(columnSQL(c, rowid != "" && strings.EqualFold(c.Name, rowid)))
	}
	if pk := t.primary(); pk != nil && rowid == "" {
		b.WriteString(", primary key (")
		for i, c := range pk.Columns {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(c.Name))
		}
		b.WriteString(")")
	}
	b.WriteString(")")
	return b.String()
}

// indexSQL creates the SQLite index for ix ("" for PRIMARY and FULLTEXT).
func indexSQL(t *Table, ix *Index, ifNotExists bool) string {
	if ix.Primary || ix.Fulltext {
		ix.SQLiteName = ""
		return ""
	}
	if ix.SQLiteName == "" {
		ix.SQLiteName = t.Name + "__" + ix.Name
	}
	var b strings.Builder
	b.WriteString("create ")
	if ix.Unique {
		b.WriteString("unique ")
	}
	b.WriteString("index ")
	if ifNotExists {
		b.WriteString("if not exists ")
	}
	if t.Temporary {
		b.WriteString("temp.")
	}
	b.WriteString(quoteIdent(ix.SQLiteName) + " on " + quoteIdent(t.Name) + " (")
	for i, c := range ix.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(c.Name))
	}
	b.WriteString(")")
	return b.String()
}

// onUpdateSQL emulates ON UPDATE CURRENT_TIMESTAMP with a trigger. It
// fires only for rows an UPDATE changed (unchanged rows are filtered out
// by the changed-rows predicate), as in MySQL; recursive triggers are off,
// so its own UPDATE does not fire it again, and changes() ignores it.
func onUpdateSQL(t *Table) []string {
	var out []string
	for _, c := range t.Columns {
		if c.OnUpdate == "" {
			continue
		}
		now := "datetime('now','localtime')"
		if parseColType(c.Type).base == "date" {
			now = "date('now','localtime')"
		}
		temp := ""
		if t.Temporary {
			temp = "temp "
		}
		col := quoteIdent(c.Name)
		out = append(out, "create "+temp+"trigger "+quoteIdent(t.Name+"__"+c.Name+"__on_update")+" after update on "+quoteIdent(t.Name)+
			" for each row when new."+col+" is old."+col+" begin update "+quoteIdent(t.Name)+" set "+col+" = "+now+" where rowid = new.rowid; end")
	}
	return out
}

func dropIndexSQL(ix Index) string {
	if ix.SQLiteName == "" {
		return ""
	}
	return "drop index if exists " + quoteIdent(ix.SQLiteName)
}

// tableSQL is everything that creates t: table, indexes, catalog row,
// AUTO_INCREMENT start.
func tableSQL(t *Table, ifNotExists bool) []string {
	out := []string{createSQL(t, t.Name, ifNotExists)}
	for i := range t.Indexes {
		if s := indexSQL(t, &t.Indexes[i], ifNotExists); s != "" {
			out = append(out, s)
		}
	}
	out = append(out, onUpdateSQL(t)...)
	if !t.Temporary {
		out = append(out, schemaRowSQL(t))
	}
	if t.AutoIncrement > 1 && rowidPK(t) != "" && !t.Temporary {
		out = append(out, setAutoIncSQL(t.Name, t.AutoIncrement))
	}
	return out
}

func setAutoIncSQL(name string, next uint64) string {
	q := quoteString(name)
	n := strconv.FormatUint(next-1, 10)
	// sqlite_sequence has no key: update the row or add it
	return "insert into sqlite_sequence (name, seq) select " + q + ", " + n + " where not exists (select 1 from sqlite_sequence where name = " + q + "); " +
		"update sqlite_sequence set seq = max(seq, " + n + ") where name = " + q
}

func (x *xlate) createTablePlan(s *sqlparser.CreateTable) (*Plan, error) {
	name := s.Table.Name.String()
	if isHidden(name) {
		return nil, &Error{Code: 1103, State: "42000", Message: "Incorrect table name '" + name + "'"}
	}
	if !s.Temp {
		existing, err := x.table(name)
		if err != nil {
			return nil, err
		}
		if existing != nil {
			if s.IfNotExists {
				return &Plan{Kind: KindNoop}, nil
			}
			return nil, &Error{Code: ErrTableExists, State: "42S01", Message: "Table '" + name + "' already exists"}
		}
	}
	var t *Table
	switch {
	case s.OptLike != nil:
		src, err := x.mustTable(s.OptLike.LikeTable.Name.String())
		if err != nil {
			return nil, err
		}
		t = src.clone()
		t.Name, t.Temporary, t.AutoIncrement = name, s.Temp, 0
		for i := range t.Indexes {
			t.Indexes[i].SQLiteName = ""
		}
	case s.Select != nil:
		if s.TableSpec != nil && len(s.TableSpec.Columns) > 0 {
			return nil, notSupported("CREATE TABLE with columns … SELECT")
		}
		create := "create "
		if s.Temp {
			create += "temp "
		}
		create += "table "
		if s.IfNotExists {
			create += "if not exists "
		}
		p := ddlPlan(create + quoteIdent(name) + " as " + x.print(s.Select))
		p.Stmts[1] = x.withCTE(p.Stmts[1])
		p.TempTable = s.Temp
		return p, nil
	case s.TableSpec != nil:
		var err error
		t, err = x.tableFromSpec(name, s.TableSpec, s.Temp)
		if err != nil {
			return nil, err
		}
	default:
		return nil, notSupported("this CREATE TABLE form")
	}
	stmts := tableSQL(t, s.IfNotExists)
	if s.Temp {
		return &Plan{Kind: KindExec, Write: true, SchemaChange: true, TempTable: true, Stmts: splitStmts(stmts)}, nil
	}
	return ddlPlan(splitStmts(stmts)...), nil
}

// splitStmts splits the few generated strings that hold two statements.
func splitStmts(in []string) []string {
	var out []string
	for _, s := range in {
		if strings.HasPrefix(s, "insert into sqlite_sequence") {
			parts := strings.SplitN(s, "; ", 2)
			out = append(out, parts...)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (x *xlate) dropTablePlan(s *sqlparser.DropTable) (*Plan, error) {
	var stmts []string
	if s.Temp {
		// no catalog row to remove: plain statements, no bootstrap
		for _, tn := range s.FromTables {
			stmts = append(stmts, "drop table if exists temp."+quoteIdent(tn.Name.String()))
		}
		return &Plan{Kind: KindExec, Write: true, SchemaChange: true, Stmts: stmts}, nil
	}
	for _, tn := range s.FromTables {
		name := tn.Name.String()
		if isHidden(name) {
			return nil, &Error{Code: 1051, State: "42S02", Message: "Unknown table '" + x.cat.Database() + "." + name + "'"}
		}
		if s.Temp {
			stmts = append(stmts, "drop table if exists temp."+quoteIdent(name))
			continue
		}
		t, err := x.table(name)
		if err != nil {
			return nil, err
		}
		if t == nil {
			if s.IfExists {
				continue
			}
			// maybe a temporary table the catalog cannot see
			stmts = append(stmts, "drop table "+quoteIdent(name))
			continue
		}
		stmts = append(stmts, "drop table if exists "+quoteIdent(t.Name), "delete from "+SchemaTable+" where name = "+quoteString(t.Name))
	}
	if len(stmts) == 0 {
		return &Plan{Kind: KindNoop}, nil
	}
	return ddlPlan(stmts...), nil
}

func (x *xlate) renameTablePlan(s *sqlparser.RenameTable) (*Plan, error) {
	var stmts []string
	renamed := map[string]*Table{}
	for _, pair := range s.TablePairs {
		from, to := pair.FromTable.Name.String(), pair.ToTable.Name.String()
		if isHidden(to) || isHidden(from) {
			return nil, &Error{Code: 1103, State: "42000", Message: "Incorrect table name '" + to + "'"}
		}
		t := renamed[strings.ToLower(from)]
		if t == nil {
			var err error
			if t, err = x.mustTable(from); err != nil {
				return nil, err
			}
		}
		if dst, err := x.table(to); err != nil {
			return nil, err
		} else if dst != nil && renamed[strings.ToLower(to)] == nil {
			return nil, &Error{Code: ErrTableExists, State: "42S01", Message: "Table '" + to + "' already exists"}
		}
		nt := t.clone()
		nt.Name = to
		delete(renamed, strings.ToLower(from))
		renamed[strings.ToLower(to)] = nt
		stmts = append(stmts, "alter table "+quoteIdent(t.Name)+" rename to "+quoteIdent(to),
			"delete from "+SchemaTable+" where name = "+quoteString(t.Name), schemaRowSQL(nt))
	}
	return ddlPlan(stmts...), nil
}

func (x *xlate) truncatePlan(s *sqlparser.TruncateTable) (*Plan, error) {
	name := s.Table.Name.String()
	t, err := x.mustTable(name)
	if err != nil {
		return nil, err
	}
	stmts := []string{"delete from " + quoteIdent(t.Name)}
	if rowidPK(t) != "" {
		stmts = append(stmts, "delete from sqlite_sequence where name = "+quoteString(t.Name))
		if t.AutoIncrement > 1 {
			stmts = append(stmts, splitStmts([]string{setAutoIncSQL(t.Name, t.AutoIncrement)})...)
		}
	}
	return &Plan{Kind: KindExec, Write: true, Stmts: stmts}, nil
}

// alterTablePlan applies ALTER TABLE options to the catalog definition and
// emits either cheap SQLite statements or a table rebuild.
func (x *xlate) alterTablePlan(s *sqlparser.AlterTable) (*Plan, error) {
	if s.PartitionSpec != nil || s.PartitionOption != nil {
		return nil, notSupported("ALTER TABLE … PARTITION")
	}
	old, err := x.mustTable(s.Table.Name.String())
	if err != nil {
		return nil, err
	}
	t := old.clone()
	rebuild := false
	var cheap []string             // statements that need no rebuild, run after
	var dropIdx []string           // index drops, run first
	renames := map[string]string{} // new column name → old column name
	for _, c := range t.Columns {
		renames[strings.ToLower(c.Name)] = c.Name
	}
	newTableName := ""
	for _, opt := range s.AlterOptions {
		switch o := opt.(type) {
		case *sqlparser.AddColumns:
			for i, cd := range o.Columns {
				col, err := x.columnFromDef(t, cd)
				if err != nil {
					return nil, err
				}
				if t.column(col.Name) >= 0 {
					return nil, &Error{Code: 1060, State: "42S21", Message: "Duplicate column name '" + col.Name + "'"}
				}
				pos := len(t.Columns)
				if o.First {
					pos = i
				} else if o.After != nil {
					p := t.column(o.After.Name.String())
					if p < 0 {
						return nil, unknownColumn(o.After.Name.String(), t.Name)
					}
					pos = p + 1 + i
				}
				t.Columns = append(t.Columns, TableColumn{})
				copy(t.Columns[pos+1:], t.Columns[pos:])
				t.Columns[pos] = col
				if err := addColumnKey(t, cd); err != nil {
					return nil, err
				}
				simple := pos == len(t.Columns)-1 && !col.AutoIncrement && col.OnUpdate == "" && (cd.Type.Options == nil || cd.Type.Options.KeyOpt == sqlparser.ColKeyNone) &&
					!(col.DefaultIsExpr && col.Default != nil && *col.Default == "CURRENT_TIMESTAMP")
				if simple && !rebuild {
					cheap = append(cheap, "alter table "+quoteIdent(t.Name)+" add column "+columnSQL(col, false))
				} else {
					rebuild = true
				}
			}
		case *sqlparser.DropColumn:
			name := o.Name.Name.String()
			i := t.column(name)
			if i < 0 {
				return nil, &Error{Code: ErrCantDropKey, State: "42000", Message: "Can't DROP '" + name + "'; check that column/key exists"}
			}
			t.Columns = append(t.Columns[:i], t.Columns[i+1:]...)
			dropColumnFromIndexes(t, name)
			rebuild = true
		case *sqlparser.ChangeColumn, *sqlparser.ModifyColumn:
			var oldName string
			var cd *sqlparser.ColumnDefinition
			var first bool
			var after *sqlparser.ColName
			if c, ok := o.(*sqlparser.ChangeColumn); ok {
				oldName, cd, first, after = c.OldColumn.Name.String(), c.NewColDefinition, c.First, c.After
			} else {
				m := o.(*sqlparser.ModifyColumn)
				oldName, cd, first, after = m.NewColDefinition.Name.String(), m.NewColDefinition, m.First, m.After
			}
			i := t.column(oldName)
			if i < 0 {
				return nil, unknownColumn(oldName, t.Name)
			}
			col, err := x.columnFromDef(t, cd)
			if err != nil {
				return nil, err
			}
			if !strings.EqualFold(col.Name, oldName) && t.column(col.Name) >= 0 {
				return nil, &Error{Code: 1060, State: "42S21", Message: "Duplicate column name '" + col.Name + "'"}
			}
			src := renames[strings.ToLower(t.Columns[i].Name)]
			delete(renames, strings.ToLower(t.Columns[i].Name))
			renames[strings.ToLower(col.Name)] = src
			if pk := t.primary(); pk != nil {
				for _, c := range pk.Columns {
					if strings.EqualFold(c.Name, oldName) {
						col.Nullable = false
					}
				}
			}
			renameInIndexes(t, oldName, col.Name)
			t.Columns = append(t.Columns[:i], t.Columns[i+1:]...)
			pos := i
			if first {
				pos = 0
			} else if after != nil {
				p := t.column(after.Name.String())
				if p < 0 {
					return nil, unknownColumn(after.Name.String(), t.Name)
				}
				pos = p + 1
			}
			t.Columns = append(t.Columns, TableColumn{})
			copy(t.Columns[pos+1:], t.Columns[pos:])
			t.Columns[pos] = col
			if err := addColumnKey(t, cd); err != nil {
				return nil, err
			}
			rebuild = true
		case *sqlparser.RenameColumn:
			from, to := o.OldName.Name.String(), o.NewName.Name.String()
			i := t.column(from)
			if i < 0 {
				return nil, unknownColumn(from, t.Name)
			}
			src := renames[strings.ToLower(from)]
			delete(renames, strings.ToLower(from))
			renames[strings.ToLower(to)] = src
			t.Columns[i].Name = to
			renameInIndexes(t, from, to)
			if !rebuild {
				cheap = append(cheap, "alter table "+quoteIdent(t.Name)+" rename column "+quoteIdent(from)+" to "+quoteIdent(to))
			}
		case *sqlparser.AlterColumn:
			i := t.column(o.Column.Name.String())
			if i < 0 {
				return nil, unknownColumn(o.Column.Name.String(), t.Name)
			}
			switch {
			case o.DropDefault:
				t.Columns[i].Default, t.Columns[i].DefaultIsExpr = nil, false
				rebuild = true
			case o.DefaultVal != nil:
				v := ""
				if lit, ok := o.DefaultVal.(*sqlparser.Literal); ok {
					v = lit.Val
					t.Columns[i].DefaultIsExpr = false
				} else {
					v = x.print(o.DefaultVal)
					t.Columns[i].DefaultIsExpr = true
				}
				t.Columns[i].Default = &v
				rebuild = true
			}
		case *sqlparser.AddIndexDefinition:
			if err := addIndexDef(t, o.IndexDefinition); err != nil {
				return nil, err
			}
			if o.IndexDefinition.Info.Type == sqlparser.IndexTypePrimary {
				rebuild = true
				continue
			}
			ix := &t.Indexes[len(t.Indexes)-1]
			if s := indexSQL(t, ix, false); s != "" && !rebuild {
				cheap = append(cheap, s)
			}
		case *sqlparser.AddConstraintDefinition:
			// FOREIGN KEY / CHECK: remembered by MySQL, not enforced here
		case *sqlparser.DropKey:
			switch o.Type {
			case sqlparser.PrimaryKeyType:
				i := -1
				for j, ix := range t.Indexes {
					if ix.Primary {
						i = j
					}
				}
				if i < 0 {
					return nil, &Error{Code: ErrCantDropKey, State: "42000", Message: "Can't DROP 'PRIMARY'; check that column/key exists"}
				}
				t.Indexes = append(t.Indexes[:i], t.Indexes[i+1:]...)
				rebuild = true
			case sqlparser.NormalKeyType:
				i := t.index(o.Name.String())
				if i < 0 {
					return nil, &Error{Code: ErrCantDropKey, State: "42000", Message: "Can't DROP '" + o.Name.String() + "'; check that column/key exists"}
				}
				if s := dropIndexSQL(t.Indexes[i]); s != "" {
					dropIdx = append(dropIdx, s)
				}
				t.Indexes = append(t.Indexes[:i], t.Indexes[i+1:]...)
			default:
				// foreign keys and checks are not enforced: nothing to drop
			}
		case *sqlparser.RenameIndex:
			i := t.index(o.OldName.String())
			if i < 0 {
				return nil, &Error{Code: 1176, State: "42000", Message: "Key '" + o.OldName.String() + "' doesn't exist in table '" + t.Name + "'"}
			}
			if t.index(o.NewName.String()) >= 0 {
				return nil, &Error{Code: ErrDupKeyName, State: "42000", Message: "Duplicate key name '" + o.NewName.String() + "'"}
			}
			if s := dropIndexSQL(t.Indexes[i]); s != "" {
				dropIdx = append(dropIdx, s)
			}
			t.Indexes[i].Name = o.NewName.String()
			t.Indexes[i].SQLiteName = ""
			if s := indexSQL(t, &t.Indexes[i], false); s != "" {
				cheap = append(cheap, s)
			}
		case *sqlparser.RenameTableName:
			newTableName = o.Table.Name.String()
		case sqlparser.TableOptions:
			for _, to := range o {
				applyTableOption(t, to)
			}
			if t.Collation == "" {
				t.Collation = defaultCollation(t.Charset)
			}
		case *sqlparser.AlterCharset:
			t.Charset = strings.ToLower(o.CharacterSet)
			t.Collation = strings.ToLower(o.Collate)
			if t.Collation == "" {
				t.Collation = defaultCollation(t.Charset)
			}
			for i := range t.Columns {
				if t.Columns[i].Collation != "" {
					t.Columns[i].Collation = t.Collation
				}
			}
		case *sqlparser.KeyState, *sqlparser.Force, *sqlparser.LockOption, sqlparser.AlgorithmValue, *sqlparser.Validation, *sqlparser.OrderByOption, *sqlparser.AlterIndex, *sqlparser.AlterCheck:
			// accepted; nothing to do in SQLite
		default:
			return nil, notSupported("ALTER TABLE %s", sqlparser.String(opt))
		}
	}
	if err := checkTable(t); err != nil {
		return nil, err
	}
	var stmts []string
	if rebuild {
		stmts = rebuildSQL(old, t, renames)
	} else {
		stmts = append(dropIdx, cheap...)
		stmts = append(stmts, schemaRowSQL(t))
		if t.AutoIncrement != old.AutoIncrement && t.AutoIncrement > 0 && rowidPK(t) != "" {
			stmts = append(stmts, splitStmts([]string{setAutoIncSQL(t.Name, t.AutoIncrement)})...)
		}
	}
	if newTableName != "" && !strings.EqualFold(newTableName, t.Name) {
		if isHidden(newTableName) {
			return nil, &Error{Code: 1103, State: "42000", Message: "Incorrect table name '" + newTableName + "'"}
		}
		if dst, err := x.table(newTableName); err != nil {
			return nil, err
		} else if dst != nil {
			return nil, &Error{Code: ErrTableExists, State: "42S01", Message: "Table '" + newTableName + "' already exists"}
		}
		nt := t.clone()
		nt.Name = newTableName
		stmts = append(stmts, "alter table "+quoteIdent(t.Name)+" rename to "+quoteIdent(newTableName),
			"delete from "+SchemaTable+" where name = "+quoteString(t.Name), schemaRowSQL(nt))
	}
	return ddlPlan(stmts...), nil
}

func unknownColumn(col, table string) *Error {
	return &Error{Code: ErrBadField, State: "42S22", Message: "Unknown column '" + col + "' in '" + table + "'"}
}

func dropColumnFromIndexes(t *Table, col string) {
	out := t.Indexes[:0]
	for _, ix := range t.Indexes {
		cols := ix.Columns[:0]
		for _, c := range ix.Columns {
			if !strings.EqualFold(c.Name, col) {
				cols = append(cols, c)
			}
		}
		ix.Columns = cols
		if len(cols) > 0 {
			out = append(out, ix)
		}
	}
	t.Indexes = out
}

func renameInIndexes(t *Table, from, to string) {
	for i := range t.Indexes {
		for j := range t.Indexes[i].Columns {
			if strings.EqualFold(t.Indexes[i].Columns[j].Name, from) {
				t.Indexes[i].Columns[j].Name = to
			}
		}
	}
}

// rebuildSQL recreates the table with the new definition and copies the
// rows, keeping the AUTO_INCREMENT high-water mark.
func rebuildSQL(old, t *Table, renames map[string]string) []string {
	tmp := "_ephpm_new_" + t.Name
	var dst, src []string
	for _, c := range t.Columns {
		from, ok := renames[strings.ToLower(c.Name)]
		if !ok || old.column(from) < 0 {
			continue
		}
		dst = append(dst, quoteIdent(c.Name))
		expr := quoteIdent(from)
		if !c.Nullable {
			// MySQL (non-strict) turns NULLs into the implicit default
			expr = "coalesce(" + expr + ", " + parseColType(c.Type).implicitDefault() + ")"
		}
		src = append(src, expr)
	}
	nt := t.clone()
	for i := range nt.Indexes {
		nt.Indexes[i].SQLiteName = ""
	}
	stmts := []string{createSQL(nt, tmp, false)}
	if len(dst) > 0 {
		stmts = append(stmts, "insert into "+quoteIdent(tmp)+" ("+strings.Join(dst, ", ")+") select "+strings.Join(src, ", ")+" from "+quoteIdent(old.Name))
	}
	if rowidPK(old) != "" && rowidPK(nt) != "" {
		q := quoteString(old.Name)
		stmts = append(stmts,
			"insert into sqlite_sequence (name, seq) select "+quoteString(tmp)+", seq from sqlite_sequence where name = "+q+" and not exists (select 1 from sqlite_sequence where name = "+quoteString(tmp)+")",
			"update sqlite_sequence set seq = max(seq, coalesce((select seq from sqlite_sequence where name = "+q+"), 0)) where name = "+quoteString(tmp))
	}
	stmts = append(stmts, "drop table "+quoteIdent(old.Name), "alter table "+quoteIdent(tmp)+" rename to "+quoteIdent(nt.Name))
	for i := range nt.Indexes {
		if s := indexSQL(nt, &nt.Indexes[i], false); s != "" {
			stmts = append(stmts, s)
		}
	}
	stmts = append(stmts, onUpdateSQL(nt)...)
	stmts = append(stmts, schemaRowSQL(nt))
	if nt.AutoIncrement > 1 && rowidPK(nt) != "" && nt.AutoIncrement != old.AutoIncrement {
		stmts = append(stmts, splitStmts([]string{setAutoIncSQL(nt.Name, nt.AutoIncrement)})...)
	}
	return stmts
}
