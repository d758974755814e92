package sqlxlate

import (
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"
)

// findTextColumns marks text columns compared with number literals
// (meta_value > 10, option_value < 1700000000): MySQL compares those as
// numbers, SQLite would compare text. Columns are resolved against the
// statement's tables through the catalog; ambiguous or unknown columns are
// left alone.
func (x *xlate) findTextColumns(stmt sqlparser.Statement) error {
	var cands []*sqlparser.ColName
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		switch n := node.(type) {
		case *sqlparser.ComparisonExpr:
			switch n.Operator {
			case sqlparser.EqualOp, sqlparser.NotEqualOp, sqlparser.LessThanOp, sqlparser.LessEqualOp, sqlparser.GreaterThanOp, sqlparser.GreaterEqualOp, sqlparser.InOp, sqlparser.NotInOp:
			default:
				return true, nil
			}
			if c := colOf(n.Left); c != nil && isNumberValue(n.Right) {
				cands = append(cands, c)
			}
			if c := colOf(n.Right); c != nil && isNumberValue(n.Left) {
				cands = append(cands, c)
			}
		}
		return true, nil
	}, stmt)
	if len(cands) == 0 {
		return nil
	}
	// alias or table name → table, over every table the statement names
	scope := map[string]*Table{}
	var all []*Table
	var walkErr error
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		ate, ok := node.(*sqlparser.AliasedTableExpr)
		if !ok {
			return true, nil
		}
		tn, ok := ate.Expr.(sqlparser.TableName)
		if !ok || strings.EqualFold(tn.Qualifier.String(), "information_schema") {
			return true, nil
		}
		t, err := x.table(tn.Name.String())
		if err != nil {
			walkErr = err
			return false, err
		}
		if t == nil {
			return true, nil
		}
		all = append(all, t)
		scope[strings.ToLower(tn.Name.String())] = t
		if !ate.As.IsEmpty() {
			scope[strings.ToLower(ate.As.String())] = t
		}
		return true, nil
	}, stmt)
	if walkErr != nil {
		return walkErr
	}
	// UPDATE/INSERT targets are AliasedTableExprs too; nothing else to add
	for _, c := range cands {
		var col *TableColumn
		if q := c.Qualifier.Name.String(); q != "" {
			if t := scope[strings.ToLower(q)]; t != nil {
				if i := t.column(c.Name.String()); i >= 0 {
					col = &t.Columns[i]
				}
			}
		} else {
			n := 0
			for _, t := range all {
				if i := t.column(c.Name.String()); i >= 0 {
					if col == nil || &t.Columns[i] != col {
						n++
					}
					col = &t.Columns[i]
				}
			}
			if n != 1 {
				col = nil
			}
		}
		if col != nil && parseColType(col.Type).isText() {
			if x.textCols == nil {
				x.textCols = map[*sqlparser.ColName]bool{}
			}
			x.textCols[c] = true
		}
	}
	return nil
}

// isNumberValue: a number literal, or a tuple of them (IN lists).
func isNumberValue(e sqlparser.Expr) bool {
	switch v := e.(type) {
	case *sqlparser.Literal:
		return v.Type == sqlparser.IntVal || v.Type == sqlparser.FloatVal || v.Type == sqlparser.DecimalVal
	case *sqlparser.UnaryExpr:
		return v.Operator == sqlparser.UMinusOp && isNumberValue(v.Expr)
	case sqlparser.ValTuple:
		if len(v) == 0 {
			return false
		}
		for _, x := range v {
			if !isNumberValue(x) {
				return false
			}
		}
		return true
	}
	return false
}
