package sqlxlate

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"vitess.io/vitess/go/vt/sqlparser"
)

// print formats node as SQLite SQL.
func (x *xlate) print(node sqlparser.SQLNode) string {
	buf := sqlparser.NewTrackedBuffer(x.format)
	buf.SetEscapeAllIdentifiers()
	buf.Myprintf("%v", node)
	return buf.String()
}

// quoteIdent quotes an identifier for SQLite.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// quoteString returns a SQLite string literal. SQLite literals cannot hold
// NUL, so such strings are written as a cast blob.
func quoteString(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return "CAST(X'" + hex.EncodeToString([]byte(s)) + "' AS TEXT)"
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// format is the TrackedBuffer node formatter printing SQLite syntax.
func (x *xlate) format(buf *sqlparser.TrackedBuffer, node sqlparser.SQLNode) {
	switch n := node.(type) {
	case *sqlparser.Literal:
		buf.WriteString(literalSQL(n))
	case *sqlparser.Variable:
		buf.WriteString(x.variable(n))
	case *sqlparser.ParsedComments:
		// comments and optimizer hints mean nothing to SQLite
	case *sqlparser.Select:
		x.formatSelect(buf, n)
	case *sqlparser.Union:
		x.formatUnion(buf, n)
	case *sqlparser.AliasedTableExpr:
		x.formatAliasedTable(buf, n)
	case sqlparser.TableName:
		buf.WriteString(x.tableName(n))
	case *sqlparser.JoinTableExpr:
		if n.Join == sqlparser.StraightJoinType {
			c := *n
			c.Join = sqlparser.NormalJoinType
			c.Format(buf)
			return
		}
		n.Format(buf)
	case *sqlparser.FuncExpr:
		x.formatFunc(buf, n)
	case *sqlparser.CurTimeFuncExpr:
		x.formatCurTime(buf, n)
	case *sqlparser.IntervalDateExpr:
		x.formatInterval(buf, n)
	case *sqlparser.ComparisonExpr:
		x.formatComparison(buf, n)
	case *sqlparser.BinaryExpr:
		switch n.Operator {
		case sqlparser.DivOp:
			buf.Myprintf("(CAST(%v AS REAL) / %v)", n.Left, n.Right)
		case sqlparser.IntDivOp:
			buf.Myprintf("CAST(%v / %v AS INTEGER)", n.Left, n.Right)
		case sqlparser.BitXorOp:
			buf.Myprintf("((%v | %v) - (%v & %v))", n.Left, n.Right, n.Left, n.Right)
		default:
			n.Format(buf)
		}
	case *sqlparser.BetweenExpr:
		if isNumericExpr(n.Left) {
			c := *n
			c.From, c.To = numericLiteral(n.From), numericLiteral(n.To)
			c.Format(buf)
			return
		}
		n.Format(buf)
	case *sqlparser.UnaryExpr:
		switch n.Operator {
		case sqlparser.NStringOp: // N'…' is just a string here
			buf.Myprintf("%v", n.Expr)
		case sqlparser.BangOp: // !x
			buf.Myprintf("(not %v)", n.Expr)
		default:
			n.Format(buf)
		}
	case *sqlparser.CollateExpr:
		buf.Myprintf("%v COLLATE %s", n.Expr, sqliteCollation(n.Collation))
	case *sqlparser.IntroducerExpr:
		if n.CharacterSet == "_binary" {
			if lit, ok := n.Expr.(*sqlparser.Literal); ok && lit.Type == sqlparser.StrVal {
				buf.WriteString("X'" + hex.EncodeToString([]byte(lit.Val)) + "'")
				return
			}
		}
		buf.Myprintf("%v", n.Expr)
	case *sqlparser.CastExpr:
		if n.Array {
			x.fail(notSupported("CAST … ARRAY"))
		}
		x.formatCast(buf, n.Expr, n.Type)
	case *sqlparser.ConvertExpr:
		x.formatCast(buf, n.Expr, n.Type)
	case *sqlparser.ConvertUsingExpr:
		buf.Myprintf("%v", n.Expr)
	case *sqlparser.SubstrExpr:
		if n.To != nil {
			buf.Myprintf("mysql_substring(%v, %v, %v)", n.Name, n.From, n.To)
		} else {
			buf.Myprintf("mysql_substring(%v, %v)", n.Name, n.From)
		}
	case *sqlparser.LocateExpr:
		if n.Pos != nil {
			buf.Myprintf("mysql_locate(%v, %v, %v)", n.SubStr, n.Str, n.Pos)
		} else {
			buf.Myprintf("mysql_locate(%v, %v)", n.SubStr, n.Str)
		}
	case *sqlparser.ExtractFuncExpr:
		buf.Myprintf("mysql_extract('%s', %v)", strings.ToLower(n.IntervalType.ToString()), n.Expr)
	case *sqlparser.TimestampDiffExpr:
		buf.Myprintf("mysql_timestampdiff('%s', %v, %v)", strings.ToLower(n.Unit.ToString()), n.Expr1, n.Expr2)
	case *sqlparser.GroupConcatExpr:
		x.formatGroupConcat(buf, n)
	case *sqlparser.TrimFuncExpr:
		fn := "trim"
		switch n.Type {
		case sqlparser.LeadingTrimType:
			fn = "ltrim"
		case sqlparser.TrailingTrimType:
			fn = "rtrim"
		}
		if n.TrimArg != nil {
			buf.Myprintf("%s(%v, %v)", fn, n.StringArg, n.TrimArg)
		} else {
			buf.Myprintf("%s(%v)", fn, n.StringArg)
		}
	case *sqlparser.ValuesFuncExpr:
		buf.WriteString("excluded." + quoteIdent(n.Name.Name.String()))
	case *sqlparser.ColName:
		if x.upsert && x.rowAlias != "" && strings.EqualFold(n.Qualifier.Name.String(), x.rowAlias) {
			buf.WriteString("excluded." + quoteIdent(n.Name.String()))
			return
		}
		if !n.Qualifier.Qualifier.IsEmpty() {
			// db.table.col: SQLite has one schema per connection here
			c := *n
			c.Qualifier.Qualifier = sqlparser.NewIdentifierCS("")
			c.Format(buf)
			return
		}
		n.Format(buf)
	case *sqlparser.MatchExpr:
		x.fail(notSupported("MATCH … AGAINST (FULLTEXT search)"))
	case *sqlparser.AssignmentExpr:
		x.fail(notSupported("assignment to a user variable inside an expression"))
	case *sqlparser.Default:
		x.fail(notSupported("DEFAULT as a value"))
	case *sqlparser.IntervalFuncExpr:
		x.fail(notSupported("INTERVAL()"))
	case *sqlparser.CharExpr:
		buf.WriteString("char(")
		for i, e := range n.Exprs {
			if i > 0 {
				buf.WriteString(", ")
			}
			buf.Myprintf("%v", e)
		}
		buf.WriteString(")")
	case *sqlparser.RegexpLikeExpr:
		buf.Myprintf("mysql_regexp(%v, %v)", n.Expr, n.Pattern)
	case *sqlparser.RegexpReplaceExpr:
		if n.Occurrence != nil || n.Position != nil || n.MatchType != nil {
			x.fail(notSupported("REGEXP_REPLACE with position/occurrence/match type"))
		}
		buf.Myprintf("mysql_regexp_replace(%v, %v, %v)", n.Expr, n.Pattern, n.Repl)
	case *sqlparser.Limit:
		// MySQL: LIMIT offset, count; SQLite accepts the same order. The
		// "all rows" idiom LIMIT n, 18446744073709551615 overflows SQLite's
		// integers: a negative count means no limit there.
		if n == nil {
			return
		}
		if lit, ok := n.Rowcount.(*sqlparser.Literal); ok && lit.Type == sqlparser.IntVal {
			if _, err := strconv.ParseInt(lit.Val, 10, 64); err != nil {
				c := *n
				c.Rowcount = sqlparser.NewIntLiteral("-1")
				c.Format(buf)
				return
			}
		}
		n.Format(buf)
	case *sqlparser.Order:
		n.Format(buf)
	case *sqlparser.With:
		n.Format(buf)
	default:
		node.Format(buf)
	}
}

// literalSQL prints a MySQL literal as a SQLite literal.
func literalSQL(n *sqlparser.Literal) string {
	switch n.Type {
	case sqlparser.StrVal:
		return quoteString(n.Val)
	case sqlparser.DateVal, sqlparser.TimeVal, sqlparser.TimestampVal:
		return quoteString(n.Val)
	case sqlparser.BitNum:
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(n.Val), "0b"), 2, 64)
		if err != nil {
			return "0"
		}
		return strconv.FormatUint(v, 10)
	case sqlparser.HexVal:
		return "X'" + n.Val + "'"
	case sqlparser.HexNum:
		// 0x… is a binary string in MySQL (numeric only in numeric context);
		// as a blob it compares and stores like MySQL's binary string.
		h := strings.TrimPrefix(strings.ToLower(n.Val), "0x")
		if len(h)%2 == 1 {
			h = "0" + h
		}
		return "X'" + h + "'"
	default:
		return n.Val
	}
}

func (x *xlate) variable(n *sqlparser.Variable) string {
	name := strings.ToLower(n.Name.String())
	if n.Scope == sqlparser.VariableScope {
		return x.param(ParamUserVarPrefix + sanitizeParam(name))
	}
	return x.param(ParamVarPrefix + sanitizeParam(name))
}

// sanitizeParam keeps a parameter name a valid SQLite identifier.
func sanitizeParam(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf && (r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteString("_" + strconv.FormatInt(int64(r), 16) + "_")
		}
	}
	return b.String()
}

func sqliteCollation(c string) string {
	c = strings.ToLower(c)
	if strings.HasSuffix(c, "_bin") || c == "binary" || strings.HasSuffix(c, "_cs") {
		return "BINARY"
	}
	return "NOCASE"
}

func (x *xlate) tableName(n sqlparser.TableName) string {
	if q := n.Qualifier.String(); q != "" && strings.EqualFold(q, "information_schema") {
		return x.infoSchemaRef(n.Name.String())
	} else if q != "" && !strings.EqualFold(q, x.cat.Database()) {
		// A connection reaches its own database only (one site each).
		x.fail(&Error{Code: ErrDBAccess, State: "42000", Message: fmt.Sprintf("Access denied to database '%s'", q)})
	}
	name := n.Name.String()
	if q := n.Qualifier.String(); q != "" && !strings.EqualFold(q, x.cat.Database()) {
		// a site reaches only its own database
		x.fail(noSuchTable(q, name))
	}
	if isHidden(name) {
		x.fail(noSuchTable(x.cat.Database(), name))
	}
	return quoteIdent(name)
}

// isHidden reports names clients must never reach.
func isHidden(name string) bool {
	l := strings.ToLower(name)
	// pragma_* and dbstat are SQLite's eponymous virtual tables: they would
	// expose the file path and internals.
	return strings.HasPrefix(l, "_ephpm_") || strings.HasPrefix(l, "sqlite_") || strings.HasPrefix(l, "pragma_") || l == "dbstat"
}

func (x *xlate) formatAliasedTable(buf *sqlparser.TrackedBuffer, n *sqlparser.AliasedTableExpr) {
	if len(n.Columns) > 0 {
		x.fail(notSupported("derived table column list"))
	}
	switch e := n.Expr.(type) {
	case sqlparser.TableName:
		buf.WriteString(x.tableName(e))
		if n.As.IsEmpty() && strings.EqualFold(e.Qualifier.String(), "information_schema") {
			buf.WriteString(" AS " + quoteIdent(e.Name.String()))
		}
	default:
		buf.Myprintf("%v", n.Expr)
	}
	if !n.As.IsEmpty() {
		buf.WriteString(" AS " + quoteIdent(n.As.String()))
	}
	// index hints (USE/FORCE/IGNORE INDEX) are dropped: SQLite plans itself
}

func (x *xlate) formatSelect(buf *sqlparser.TrackedBuffer, n *sqlparser.Select) {
	if n.Into != nil {
		x.fail(notSupported("SELECT … INTO"))
	}
	if n.GroupBy != nil && n.GroupBy.WithRollup {
		x.fail(notSupported("GROUP BY … WITH ROLLUP"))
	}
	if n.With != nil {
		buf.Myprintf("%v", n.With)
	}
	buf.WriteString("select ")
	if n.Distinct {
		buf.WriteString("distinct ")
	}
	buf.Myprintf("%v", n.SelectExprs)
	if !isDual(n.From) {
		buf.WriteString(" from ")
		for i, te := range n.From {
			if i > 0 {
				buf.WriteString(", ")
			}
			buf.Myprintf("%v", te)
		}
	}
	where, having := n.Where, n.Having
	if having != nil && n.GroupBy == nil && !sqlparser.ContainsAggregation(n.SelectExprs) && !sqlparser.ContainsAggregation(having) {
		// MySQL allows HAVING on a plain query (it may name select
		// aliases, which SQLite's WHERE also resolves); SQLite does not.
		if where == nil {
			where = &sqlparser.Where{Type: sqlparser.WhereClause, Expr: having.Expr}
		} else {
			where = &sqlparser.Where{Type: sqlparser.WhereClause, Expr: &sqlparser.AndExpr{Left: where.Expr, Right: having.Expr}}
		}
		having = nil
	}
	buf.Myprintf("%v%v%v", where, n.GroupBy, having)
	if n.Windows != nil {
		buf.Myprintf(" %v", n.Windows)
	}
	buf.Myprintf("%v%v", n.OrderBy, n.Limit)
}

func isDual(from []sqlparser.TableExpr) bool {
	if len(from) != 1 {
		return len(from) == 0
	}
	a, ok := from[0].(*sqlparser.AliasedTableExpr)
	if !ok {
		return false
	}
	tn, ok := a.Expr.(sqlparser.TableName)
	return ok && tn.Qualifier.IsEmpty() && tn.Name.String() == "dual"
}

func (x *xlate) formatUnion(buf *sqlparser.TrackedBuffer, n *sqlparser.Union) {
	if n.Into != nil {
		x.fail(notSupported("UNION … INTO"))
	}
	if n.With != nil {
		buf.Myprintf("%v", n.With)
	}
	x.unionMember(buf, n.Left)
	if n.Distinct {
		buf.WriteString(" union ")
	} else {
		buf.WriteString(" union all ")
	}
	x.unionMember(buf, n.Right)
	buf.Myprintf("%v%v", n.OrderBy, n.Limit)
}

// unionMember prints a compound member; SQLite allows no parentheses and
// no ORDER BY/LIMIT on members, so such members become subqueries.
func (x *xlate) unionMember(buf *sqlparser.TrackedBuffer, s sqlparser.TableStatement) {
	switch m := s.(type) {
	case *sqlparser.Select:
		if len(m.OrderBy) > 0 || m.Limit != nil || m.With != nil {
			buf.Myprintf("select * from (%v)", m)
			return
		}
		buf.Myprintf("%v", m)
	case *sqlparser.Union:
		if len(m.OrderBy) > 0 || m.Limit != nil || m.With != nil {
			buf.Myprintf("select * from (%v)", m)
			return
		}
		buf.Myprintf("%v", m)
	default:
		buf.Myprintf("%v", s)
	}
}

func (x *xlate) formatComparison(buf *sqlparser.TrackedBuffer, n *sqlparser.ComparisonExpr) {
	switch n.Operator {
	case sqlparser.LikeOp, sqlparser.NotLikeOp:
		op := "like"
		if n.Operator == sqlparser.NotLikeOp {
			op = "not like"
		}
		// MySQL's default LIKE escape is backslash; SQLite has none.
		if n.Escape != nil {
			buf.Myprintf("%l %s %r escape %v", n.Left, op, n.Right, n.Escape)
		} else {
			buf.Myprintf("%l %s %r escape '\\'", n.Left, op, n.Right)
		}
	case sqlparser.RegexpOp:
		buf.Myprintf("mysql_regexp(%v, %v)", n.Left, n.Right)
	case sqlparser.NotRegexpOp:
		buf.Myprintf("not mysql_regexp(%v, %v)", n.Left, n.Right)
	case sqlparser.NullSafeEqualOp:
		buf.Myprintf("%l is %r", n.Left, n.Right)
	default:
		if n.Modifier != 0 {
			x.fail(notSupported("ANY/ALL comparison"))
		}
		// MySQL compares a number with a string numerically; SQLite ranks
		// every number below every string unless a column's affinity
		// converts the literal. Numeric expressions have no affinity, so
		// numeric-looking string literals compared with them become numbers.
		if x.textCols[colOf(n.Left)] || x.textCols[colOf(n.Right)] {
			c := *n
			c.Left, c.Right = x.realCast(n.Left), x.realCast(n.Right)
			c.Format(buf)
			return
		}
		if isNumericExpr(n.Left) || isNumericExpr(n.Right) {
			c := *n
			c.Left, c.Right = numericLiteral(n.Left), numericLiteral(n.Right)
			c.Format(buf)
			return
		}
		n.Format(buf)
	}
}

func colOf(e sqlparser.Expr) *sqlparser.ColName {
	c, _ := e.(*sqlparser.ColName)
	return c
}

// realCast wraps a marked text column in CAST(… AS REAL).
func (x *xlate) realCast(e sqlparser.Expr) sqlparser.Expr {
	if c := colOf(e); c != nil && x.textCols[c] {
		return &sqlparser.CastExpr{Expr: c, Type: &sqlparser.ConvertType{Type: "double"}}
	}
	return e
}

// numericLiteral turns a numeric-looking string literal (or a tuple of
// them) into a number literal.
func numericLiteral(e sqlparser.Expr) sqlparser.Expr {
	switch v := e.(type) {
	case *sqlparser.Literal:
		if v.Type == sqlparser.StrVal {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v.Val), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				if i, err := strconv.ParseInt(strings.TrimSpace(v.Val), 10, 64); err == nil {
					return sqlparser.NewIntLiteral(strconv.FormatInt(i, 10))
				}
				return sqlparser.NewFloatLiteral(strconv.FormatFloat(f, 'g', -1, 64))
			}
		}
	case sqlparser.ValTuple:
		out := make(sqlparser.ValTuple, len(v))
		for i, x := range v {
			out[i] = numericLiteral(x)
		}
		return out
	}
	return e
}

var numericFuncs = map[string]bool{
	"year": true, "month": true, "day": true, "dayofmonth": true, "hour": true, "minute": true,
	"second": true, "week": true, "weekday": true, "dayofweek": true, "dayofyear": true,
	"quarter": true, "unix_timestamp": true, "to_days": true, "datediff": true, "yearweek": true,
	"length": true, "octet_length": true, "char_length": true, "character_length": true,
	"abs": true, "floor": true, "ceil": true, "ceiling": true, "round": true, "truncate": true,
	"instr": true, "field": true, "find_in_set": true, "crc32": true, "sign": true, "mod": true,
	"pow": true, "power": true, "sqrt": true, "last_insert_id": true, "found_rows": true,
	"row_count": true, "connection_id": true, "bit_length": true, "ascii": true, "ord": true,
	"microsecond": true, "to_seconds": true, "time_to_sec": true, "inet_aton": true,
}

// isNumericExpr reports expressions whose value is a number in MySQL.
func isNumericExpr(e sqlparser.Expr) bool {
	switch v := e.(type) {
	case *sqlparser.CastExpr:
		return isNumericType(v.Type)
	case *sqlparser.ConvertExpr:
		return isNumericType(v.Type)
	case *sqlparser.BinaryExpr:
		return true
	case *sqlparser.UnaryExpr:
		return v.Operator == sqlparser.UMinusOp
	case *sqlparser.FuncExpr:
		return numericFuncs[v.Name.Lowered()]
	case *sqlparser.LocateExpr, *sqlparser.ExtractFuncExpr, *sqlparser.TimestampDiffExpr,
		*sqlparser.Count, *sqlparser.CountStar, *sqlparser.Sum, *sqlparser.Avg:
		return true
	}
	return false
}

func isNumericType(t *sqlparser.ConvertType) bool {
	switch strings.ToLower(t.Type) {
	case "signed", "signed integer", "unsigned", "unsigned integer", "integer", "int", "decimal", "float", "double", "real":
		return true
	}
	return false
}

func (x *xlate) formatCast(buf *sqlparser.TrackedBuffer, e sqlparser.Expr, t *sqlparser.ConvertType) {
	typ := strings.ToLower(t.Type)
	switch typ {
	case "signed", "signed integer", "integer", "int", "unsigned", "unsigned integer":
		buf.Myprintf("mysql_cast_int(%v)", e)
	case "char", "nchar", "varchar", "text":
		if t.Length != nil {
			buf.Myprintf("substr(CAST(%v AS TEXT), 1, %s)", e, strconv.Itoa(*t.Length))
		} else {
			buf.Myprintf("CAST(%v AS TEXT)", e)
		}
	case "binary":
		// BINARY x / CAST(x AS BINARY) is mostly used for case-sensitive
		// comparison; a SQLite blob would never equal a text value.
		buf.Myprintf("(%v COLLATE BINARY)", e)
	case "decimal", "float", "double", "real":
		if t.Scale != nil {
			buf.Myprintf("round(CAST(%v AS REAL), %s)", e, strconv.Itoa(*t.Scale))
		} else if typ == "decimal" {
			buf.Myprintf("CAST(round(%v) AS INTEGER)", e)
		} else {
			buf.Myprintf("CAST(%v AS REAL)", e)
		}
	case "date":
		buf.Myprintf("mysql_date(%v)", e)
	case "datetime", "timestamp":
		buf.Myprintf("mysql_datetime(%v)", e)
	case "time":
		buf.Myprintf("mysql_time(%v)", e)
	case "json":
		buf.Myprintf("json(%v)", e)
	default:
		x.fail(notSupported("CAST(… AS %s)", t.Type))
	}
}

func (x *xlate) formatGroupConcat(buf *sqlparser.TrackedBuffer, n *sqlparser.GroupConcatExpr) {
	if n.Limit != nil {
		x.fail(notSupported("GROUP_CONCAT … LIMIT"))
	}
	sep := ","
	if n.Separator != "" {
		// vitess keeps the SEPARATOR literal as written
		sep = n.Separator
		if len(sep) >= 2 && (sep[0] == '\'' || sep[0] == '"') && sep[len(sep)-1] == sep[0] {
			sep = strings.ReplaceAll(sep[1:len(sep)-1], string(sep[0])+string(sep[0]), string(sep[0]))
		}
	}
	buf.WriteString("group_concat(")
	if n.Distinct {
		if len(n.Exprs) != 1 || sep != "," || len(n.OrderBy) > 0 {
			x.fail(notSupported("GROUP_CONCAT(DISTINCT …) with several values, a SEPARATOR or ORDER BY"))
		}
		buf.Myprintf("distinct %v)", n.Exprs[0])
		return
	}
	if len(n.Exprs) == 1 {
		buf.Myprintf("%v", n.Exprs[0])
	} else {
		buf.WriteString("mysql_concat(")
		for i, e := range n.Exprs {
			if i > 0 {
				buf.WriteString(", ")
			}
			buf.Myprintf("%v", e)
		}
		buf.WriteString(")")
	}
	buf.WriteString(", " + quoteString(sep))
	if len(n.OrderBy) > 0 {
		buf.Myprintf("%v", n.OrderBy)
	}
	buf.WriteString(")")
}

func (x *xlate) formatCurTime(buf *sqlparser.TrackedBuffer, n *sqlparser.CurTimeFuncExpr) {
	switch strings.ToLower(n.Name.String()) {
	case "now", "current_timestamp", "localtime", "localtimestamp", "sysdate":
		buf.WriteString("mysql_now()")
	case "curdate", "current_date":
		buf.WriteString("mysql_curdate()")
	case "curtime", "current_time":
		buf.WriteString("mysql_curtime()")
	case "utc_timestamp":
		buf.WriteString("mysql_utc_timestamp()")
	case "utc_date":
		buf.WriteString("substr(mysql_utc_timestamp(), 1, 10)")
	case "utc_time":
		buf.WriteString("substr(mysql_utc_timestamp(), 12)")
	default:
		x.fail(notSupported("%s()", n.Name.String()))
	}
}

func (x *xlate) formatInterval(buf *sqlparser.TrackedBuffer, n *sqlparser.IntervalDateExpr) {
	unit := "day" // ADDDATE(d, n) without a unit counts days
	if n.Unit != 0 {
		unit = strings.ToLower(n.Unit.ToString())
	}
	sign := ""
	switch n.Syntax {
	case sqlparser.IntervalDateExprDateSub, sqlparser.IntervalDateExprSubdate, sqlparser.IntervalDateExprBinarySub:
		sign = "-"
	}
	buf.Myprintf("mysql_date_add(%v, %v, '%s')", n.Date, n.Interval, sign+unit)
}
