package sqlxlate

import (
	"strconv"
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"
)

func (x *xlate) selectPlan(ts sqlparser.TableStatement) (*Plan, error) {
	p := &Plan{Kind: KindQuery}
	first := firstSelect(ts)
	calc := false
	if first != nil {
		x.aliasColumns(first)
		if first.SQLCalcFoundRows {
			calc = true
			first.SQLCalcFoundRows = false
		}
		if first.Lock != sqlparser.NoLock {
			// SELECT … FOR UPDATE / LOCK IN SHARE MODE: run on the writer
			// (and the primary) so a read-modify-write is serialised.
			p.Write = true
		}
	}
	main := x.print(ts)
	if calc {
		count := "select count(*) from (" + x.print(withoutLimit(ts)) + ")"
		p.CalcFoundRows = x.withCTE(count)
	}
	p.Stmts = []string{x.withCTE(main)}
	return p, nil
}

func firstSelect(ts sqlparser.TableStatement) *sqlparser.Select {
	for {
		switch s := ts.(type) {
		case *sqlparser.Select:
			return s
		case *sqlparser.Union:
			ts = s.Left
		default:
			return nil
		}
	}
}

// withoutLimit returns a shallow copy of ts without ORDER BY and LIMIT.
func withoutLimit(ts sqlparser.TableStatement) sqlparser.TableStatement {
	switch s := ts.(type) {
	case *sqlparser.Select:
		c := *s
		c.OrderBy, c.Limit = nil, nil
		return &c
	case *sqlparser.Union:
		c := *s
		c.OrderBy, c.Limit = nil, nil
		return &c
	}
	return ts
}

// aliasColumns names unaliased expression columns as MySQL does: by the
// expression's text as the client wrote it (COUNT(*), not count(*)).
func (x *xlate) aliasColumns(s *sqlparser.Select) {
	if s.SelectExprs == nil {
		return
	}
	var texts []string
	for i, se := range s.SelectExprs.Exprs {
		ae, ok := se.(*sqlparser.AliasedExpr)
		if !ok || !ae.As.IsEmpty() {
			continue
		}
		var name string
		switch e := ae.Expr.(type) {
		case *sqlparser.ColName:
			continue
		case *sqlparser.Literal:
			if e.Type == sqlparser.StrVal {
				name = e.Val
			}
		case *sqlparser.NullVal:
			name = "NULL"
		}
		if name == "" {
			if texts == nil {
				texts = selectExprTexts(x.src)
				if len(texts) != len(s.SelectExprs.Exprs) {
					texts = []string{}
				}
			}
			if i < len(texts) {
				name = texts[i]
			} else {
				name = sqlparser.String(ae.Expr)
			}
		}
		if len(name) > 256 {
			name = name[:256]
		}
		ae.As = sqlparser.NewIdentifierCI(name)
	}
}

// selectExprTexts returns the source text of each top-level select
// expression of the first SELECT in sql.
func selectExprTexts(sql string) []string {
	tkn := parser.NewStringTokenizer(sql)
	depth := 0
	inList := false
	var out []string
	segStart, segEnd := -1, -1
	for {
		typ, _ := tkn.Scan()
		if typ == 0 || typ == sqlparser.LEX_ERROR {
			break
		}
		end := tkn.Pos
		if !inList {
			if typ == sqlparser.SELECT && depth == 0 {
				inList = true
			}
			if typ == '(' {
				depth++
			} else if typ == ')' {
				depth--
			}
			continue
		}
		if depth == 0 && (typ == sqlparser.FROM || typ == sqlparser.INTO || typ == sqlparser.UNION || typ == ';' || typ == sqlparser.WHERE || typ == sqlparser.ORDER || typ == sqlparser.LIMIT || typ == sqlparser.GROUP || typ == sqlparser.HAVING || typ == sqlparser.FOR || typ == sqlparser.LOCK) {
			break
		}
		if depth == 0 && typ == ',' {
			out = append(out, strings.TrimSpace(sql[segStart:segEnd]))
			segStart = -1
			continue
		}
		if depth == 0 && segStart < 0 && isSelectModifier(typ) {
			continue
		}
		if typ == '(' {
			depth++
		} else if typ == ')' {
			depth--
		}
		if segStart < 0 {
			segStart = tokenStart(sql, end, typ)
		}
		segEnd = end
	}
	if segStart >= 0 && segEnd <= len(sql) && segStart <= segEnd {
		out = append(out, strings.TrimSpace(sql[segStart:segEnd]))
	}
	return out
}

func isSelectModifier(typ int) bool {
	switch typ {
	case sqlparser.DISTINCT, sqlparser.ALL, sqlparser.DISTINCTROW, sqlparser.SQL_CALC_FOUND_ROWS, sqlparser.SQL_NO_CACHE, sqlparser.SQL_CACHE, sqlparser.HIGH_PRIORITY, sqlparser.STRAIGHT_JOIN, sqlparser.SQL_SMALL_RESULT, sqlparser.SQL_BIG_RESULT, sqlparser.SQL_BUFFER_RESULT:
		return true
	}
	return false
}

// tokenStart finds where the token ending at end begins: the tokenizer
// reports only end positions, so scan back over the token's text.
func tokenStart(sql string, end, typ int) int {
	if end > len(sql) {
		end = len(sql)
	}
	i := end
	// back over one token: quoted string/identifier or a run of word chars
	if i > 0 {
		c := sql[i-1]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i--
			for i > 0 {
				i--
				if sql[i] == c && (i == 0 || sql[i-1] != '\\') {
					break
				}
			}
			// X'..', b'..', N'..', _utf8mb4'..'
			for i > 0 && isWordByte(sql[i-1]) && sql[i-1] != '.' {
				i--
			}
		case isWordByte(c):
			for i > 0 && isWordByte(sql[i-1]) {
				i--
			}
			if i > 0 && sql[i-1] == '@' {
				i--
				if i > 0 && sql[i-1] == '@' {
					i--
				}
			}
		default:
			i--
		}
	}
	return i
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// withCTE prefixes the information_schema views the statement reads.
func (x *xlate) withCTE(sql string) string {
	if len(x.infoSchema) == 0 {
		return sql
	}
	ctes := x.infoSchemaCTEs()
	switch {
	case strings.HasPrefix(sql, "with recursive "):
		return "with recursive " + ctes + ", " + sql[len("with recursive "):]
	case strings.HasPrefix(sql, "with "):
		return "with " + ctes + ", " + sql[len("with "):]
	}
	return "with " + ctes + " " + sql
}

func (x *xlate) insertPlan(n *sqlparser.Insert) (*Plan, error) {
	tn, ok := n.Table.Expr.(sqlparser.TableName)
	if !ok {
		return nil, notSupported("INSERT into a derived table")
	}
	if len(n.Partitions) > 0 {
		return nil, notSupported("PARTITION")
	}
	var b strings.Builder
	switch {
	case n.Action == sqlparser.ReplaceAct:
		b.WriteString("replace into ")
	case bool(n.Ignore) && len(n.OnDup) == 0:
		b.WriteString("insert or ignore into ")
	default:
		b.WriteString("insert into ")
	}
	b.WriteString(x.tableName(tn))
	if len(n.Columns) > 0 {
		b.WriteString(" (")
		for i, c := range n.Columns {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(c.String()))
		}
		b.WriteString(")")
	}
	autoIncZero(x, tn, n)
	switch rows := n.Rows.(type) {
	case sqlparser.Values:
		if len(rows) == 1 && len(rows[0]) == 0 {
			if len(n.Columns) > 0 {
				return nil, &Error{Code: 1136, State: "21S01", Message: "Column count doesn't match value count at row 1"}
			}
			if len(n.OnDup) > 0 {
				// SQLite has no upsert clause after DEFAULT VALUES
				return nil, notSupported("INSERT … VALUES () with ON DUPLICATE KEY UPDATE")
			}
			b.WriteString(" default values")
			break
		}
		b.WriteString(" values ")
		for _, r := range rows {
			if len(r) == 0 {
				return nil, notSupported("several empty VALUES () rows")
			}
		}
		for i, r := range rows {
			if len(n.Columns) > 0 && len(r) != len(n.Columns) || len(r) != len(rows[0]) {
				return nil, &Error{Code: 1136, State: "21S01", Message: "Column count doesn't match value count at row " + strconv.Itoa(i+1)}
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(x.print(r))
		}
	case sqlparser.TableStatement:
		if len(n.OnDup) > 0 {
			// SQLite cannot tell an upsert's ON from a join's ON after a
			// bare SELECT: a WHERE ends the SELECT unambiguously.
			b.WriteString(" select * from (" + x.print(rows) + ") where true")
		} else {
			b.WriteString(" " + x.print(rows))
		}
	default:
		return nil, notSupported("this INSERT form")
	}
	p := &Plan{Kind: KindExec, Write: true, AutoIncrement: true}
	if t, err := x.table(tn.Name.String()); err != nil {
		return nil, err
	} else if t != nil && rowidPK(t) == "" {
		p.AutoIncrement = false
	}
	if len(n.OnDup) > 0 {
		if n.RowAlias != nil {
			x.rowAlias = n.RowAlias.TableName.String()
		}
		x.upsert = true
		b.WriteString(" on conflict do update set ")
		var changed []string
		for i, ue := range n.OnDup {
			if i > 0 {
				b.WriteString(", ")
			}
			col := quoteIdent(ue.Name.Name.String())
			val := x.print(ue.Expr)
			b.WriteString(col + " = " + val)
			changed = append(changed, col+" is not ("+val+") collate binary")
		}
		// MySQL reports 0 affected rows when the update changes nothing.
		b.WriteString(" where " + strings.Join(changed, " or "))
		x.upsert = false
		p.DupKeyUpdate = true
	}
	p.Stmts = []string{x.withCTE(b.String())}
	return p, nil
}

func (x *xlate) updatePlan(n *sqlparser.Update) (*Plan, error) {
	if len(n.TableExprs) != 1 {
		return x.multiUpdate(n)
	}
	ate, ok := n.TableExprs[0].(*sqlparser.AliasedTableExpr)
	if !ok {
		return x.multiUpdate(n)
	}
	if _, ok := ate.Expr.(sqlparser.TableName); !ok {
		return nil, notSupported("UPDATE of a derived table")
	}
	var b strings.Builder
	if n.With != nil {
		b.WriteString(x.print(n.With) + " ")
	}
	b.WriteString("update ")
	if n.Ignore {
		b.WriteString("or ignore ")
	}
	b.WriteString(x.print(ate))
	b.WriteString(" set ")
	sets, changed := x.setList(n.Exprs)
	b.WriteString(sets)
	var conds []string
	if len(n.OrderBy) > 0 || n.Limit != nil {
		inner := "select rowid from " + x.print(ate)
		if n.Where != nil {
			inner += x.print(n.Where)
		}
		inner += x.print(n.OrderBy) + x.print(n.Limit)
		conds = append(conds, "rowid in ("+inner+")")
	} else if n.Where != nil {
		conds = append(conds, "("+x.print(n.Where.Expr)+")")
	}
	conds = append(conds, "("+changed+")")
	b.WriteString(" where " + strings.Join(conds, " and "))
	return &Plan{Kind: KindExec, Write: true, ChangedRowsOnly: true, Stmts: []string{x.withCTE(b.String())}}, nil
}

// setList prints SET assignments and the predicate "some column changes",
// which makes SQLite's changes() count changed rows like MySQL.
func (x *xlate) setList(exprs sqlparser.UpdateExprs, qualifier ...string) (sets, changed string) {
	var s, c []string
	for _, ue := range exprs {
		col := quoteIdent(ue.Name.Name.String())
		val := x.print(ue.Expr)
		s = append(s, col+" = "+val)
		ref := col
		if len(qualifier) > 0 {
			// UPDATE … FROM: the other tables may have the same column
			ref = quoteIdent(qualifier[0]) + "." + col
		}
		c = append(c, ref+" is not ("+val+") collate binary")
	}
	return strings.Join(s, ", "), strings.Join(c, " or ")
}

// multiUpdate handles UPDATE a JOIN b … SET a.x = … (one target table) as
// SQLite's UPDATE … FROM.
func (x *xlate) multiUpdate(n *sqlparser.Update) (*Plan, error) {
	var tables []*sqlparser.AliasedTableExpr
	var ons []sqlparser.Expr
	var walk func(te sqlparser.TableExpr) bool
	walk = func(te sqlparser.TableExpr) bool {
		switch t := te.(type) {
		case *sqlparser.AliasedTableExpr:
			tables = append(tables, t)
			return true
		case *sqlparser.JoinTableExpr:
			if t.Join != sqlparser.NormalJoinType && t.Join != sqlparser.StraightJoinType {
				return false
			}
			if t.Condition != nil && len(t.Condition.Using) > 0 {
				return false
			}
			if !walk(t.LeftExpr) || !walk(t.RightExpr) {
				return false
			}
			if t.Condition != nil && t.Condition.On != nil {
				ons = append(ons, t.Condition.On)
			}
			return true
		case *sqlparser.ParenTableExpr:
			for _, e := range t.Exprs {
				if !walk(e) {
					return false
				}
			}
			return true
		}
		return false
	}
	for _, te := range n.TableExprs {
		if !walk(te) {
			return nil, notSupported("multi-table UPDATE with outer joins")
		}
	}
	if len(n.OrderBy) > 0 || n.Limit != nil {
		return nil, notSupported("multi-table UPDATE with ORDER BY/LIMIT")
	}
	target := ""
	for _, ue := range n.Exprs {
		q := ue.Name.Qualifier.Name.String()
		if q == "" && len(tables) > 1 {
			return nil, notSupported("multi-table UPDATE with unqualified SET columns")
		}
		if target != "" && !strings.EqualFold(q, target) {
			return nil, notSupported("UPDATE of several tables in one statement")
		}
		target = q
	}
	var tgt *sqlparser.AliasedTableExpr
	var others []string
	for _, t := range tables {
		name := t.As.String()
		if name == "" {
			if tn, ok := t.Expr.(sqlparser.TableName); ok {
				name = tn.Name.String()
			}
		}
		if tgt == nil && strings.EqualFold(name, target) {
			tgt = t
			continue
		}
		others = append(others, x.print(t))
	}
	if tgt == nil {
		return nil, notSupported("multi-table UPDATE target %s", target)
	}
	var b strings.Builder
	b.WriteString("update ")
	if n.Ignore {
		b.WriteString("or ignore ")
	}
	b.WriteString(x.print(tgt) + " set ")
	qual := tgt.As.String()
	if qual == "" {
		if tn, ok := tgt.Expr.(sqlparser.TableName); ok {
			qual = tn.Name.String()
		}
	}
	sets, changed := x.setList(n.Exprs, qual)
	b.WriteString(sets)
	if len(others) > 0 {
		b.WriteString(" from " + strings.Join(others, ", "))
	}
	var conds []string
	for _, on := range ons {
		conds = append(conds, "("+x.print(on)+")")
	}
	if n.Where != nil {
		conds = append(conds, "("+x.print(n.Where.Expr)+")")
	}
	conds = append(conds, "("+changed+")")
	b.WriteString(" where " + strings.Join(conds, " and "))
	return &Plan{Kind: KindExec, Write: true, ChangedRowsOnly: true, Stmts: []string{x.withCTE(b.String())}}, nil
}

func (x *xlate) deletePlan(n *sqlparser.Delete) (*Plan, error) {
	if len(n.Partitions) > 0 {
		return nil, notSupported("PARTITION")
	}
	p := &Plan{Kind: KindExec, Write: true}
	if len(n.Targets) == 0 && len(n.TableExprs) == 1 {
		ate, ok := n.TableExprs[0].(*sqlparser.AliasedTableExpr)
		if !ok {
			return nil, notSupported("this DELETE form")
		}
		var b strings.Builder
		if n.With != nil {
			b.WriteString(x.print(n.With) + " ")
		}
		b.WriteString("delete from " + x.print(ate))
		if len(n.OrderBy) > 0 || n.Limit != nil {
			inner := "select rowid from " + x.print(ate)
			if n.Where != nil {
				inner += x.print(n.Where)
			}
			inner += x.print(n.OrderBy) + x.print(n.Limit)
			b.WriteString(" where rowid in (" + inner + ")")
		} else if n.Where != nil {
			b.WriteString(x.print(n.Where))
		}
		p.Stmts = []string{x.withCTE(b.String())}
		return p, nil
	}
	// DELETE a, b FROM t a, t b WHERE …: every target must be the same
	// table, so one DELETE … WHERE rowid IN (…) removes all matched rows.
	if len(n.OrderBy) > 0 || n.Limit != nil {
		return nil, notSupported("multi-table DELETE with ORDER BY/LIMIT")
	}
	aliases := map[string]string{}
	var collect func(te sqlparser.TableExpr)
	collect = func(te sqlparser.TableExpr) {
		switch t := te.(type) {
		case *sqlparser.AliasedTableExpr:
			if tn, ok := t.Expr.(sqlparser.TableName); ok {
				key := tn.Name.String()
				if !t.As.IsEmpty() {
					key = t.As.String()
				}
				aliases[strings.ToLower(key)] = tn.Name.String()
			}
		case *sqlparser.JoinTableExpr:
			collect(t.LeftExpr)
			collect(t.RightExpr)
		case *sqlparser.ParenTableExpr:
			for _, e := range t.Exprs {
				collect(e)
			}
		}
	}
	for _, te := range n.TableExprs {
		collect(te)
	}
	targets := n.Targets
	if len(targets) == 0 {
		return nil, notSupported("this DELETE form")
	}
	table := ""
	var from []string
	for _, te := range n.TableExprs {
		from = append(from, x.print(te))
	}
	where := ""
	if n.Where != nil {
		where = x.print(n.Where)
	}
	var selects []string
	for _, t := range targets {
		real, ok := aliases[strings.ToLower(t.Name.String())]
		if !ok {
			return nil, &Error{Code: 1109, State: "42S02", Message: "Unknown table '" + t.Name.String() + "' in MULTI DELETE"}
		}
		if table != "" && !strings.EqualFold(table, real) {
			return nil, notSupported("DELETE from several different tables in one statement")
		}
		table = real
		selects = append(selects, "select "+quoteIdent(t.Name.String())+".rowid from "+strings.Join(from, ", ")+where)
	}
	p.Stmts = []string{x.withCTE("delete from " + x.tableName(sqlparser.NewTableName(table)) + " where rowid in (" + strings.Join(selects, " union ") + ")")}
	return p, nil
}

// autoIncZero makes 0 in the AUTO_INCREMENT column mean "generate", as in
// MySQL (without NO_AUTO_VALUE_ON_ZERO); SQLite would store a row with id 0.
func autoIncZero(x *xlate, tn sqlparser.TableName, n *sqlparser.Insert) {
	rows, ok := n.Rows.(sqlparser.Values)
	if !ok {
		return
	}
	t, err := x.table(tn.Name.String())
	if err != nil || t == nil {
		return // temporary or unknown table: nothing to adjust
	}
	rowid := rowidPK(t)
	if rowid == "" {
		return
	}
	k := -1
	if len(n.Columns) > 0 {
		for i, c := range n.Columns {
			if strings.EqualFold(c.String(), rowid) {
				k = i
			}
		}
	} else {
		k = t.column(rowid)
	}
	if k < 0 {
		return
	}
	for _, r := range rows {
		if k >= len(r) {
			continue
		}
		switch v := r[k].(type) {
		case *sqlparser.NullVal:
			continue
		case *sqlparser.Literal:
			if f, err := strconv.ParseFloat(strings.TrimSpace(v.Val), 64); (v.Type == sqlparser.IntVal || v.Type == sqlparser.StrVal) && err == nil {
				if f == 0 {
					r[k] = &sqlparser.NullVal{}
				}
				continue
			}
		}
		// a bound value may arrive as the string '0'
		r[k] = &sqlparser.FuncExpr{Name: sqlparser.NewIdentifierCI("nullif"), Exprs: []sqlparser.Expr{
			&sqlparser.CastExpr{Expr: r[k], Type: &sqlparser.ConvertType{Type: "signed"}}, sqlparser.NewIntLiteral("0")}}
	}
}
