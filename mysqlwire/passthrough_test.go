package mysqlwire_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/ephpm/ephpm/sqlxlate"
)

// passthrough is a test translator for SQL that needs no translation: it
// classifies statements by their first words and rewrites ? into :vN. It
// lets the wire be tested independently of sqlxlate's progress.
type passthrough struct{}

var (
	reUse       = regexp.MustCompile("(?i)^use\\s+`?([^`\\s;]+)`?")
	reSavepoint = regexp.MustCompile(`(?i)^(savepoint|release\s+savepoint|rollback\s+(?:work\s+)?to\s+(?:savepoint\s+)?)\s*(\w+)`)
	reSetVar    = regexp.MustCompile(`(?i)^set\s+(?:session\s+|@@session\.|@@)?(\w+)\s*=\s*(.+)$`)
	reSetUser   = regexp.MustCompile(`(?i)^set\s+@(\w+)\s*=\s*(.+)$`)
	reSetNames  = regexp.MustCompile(`(?i)^set\s+names\s+'?(\w+)'?`)
)

func (passthrough) Translate(_ context.Context, q string, _ sqlxlate.Catalog) (*sqlxlate.Plan, error) {
	q = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(q), ";"))
	lower := strings.ToLower(q)
	first := strings.Fields(lower + " x")[0]
	switch {
	case reUse.MatchString(q):
		return &sqlxlate.Plan{Kind: sqlxlate.KindUse, DB: reUse.FindStringSubmatch(q)[1]}, nil
	case lower == "begin" || strings.HasPrefix(lower, "start transaction"):
		return &sqlxlate.Plan{Kind: sqlxlate.KindBegin}, nil
	case lower == "commit":
		return &sqlxlate.Plan{Kind: sqlxlate.KindCommit}, nil
	case lower == "rollback":
		return &sqlxlate.Plan{Kind: sqlxlate.KindRollback}, nil
	case reSavepoint.MatchString(q):
		m := reSavepoint.FindStringSubmatch(q)
		kind := sqlxlate.KindSavepoint
		switch w := strings.ToLower(m[1]); {
		case strings.HasPrefix(w, "release"):
			kind = sqlxlate.KindRelease
		case strings.HasPrefix(w, "rollback"):
			kind = sqlxlate.KindRollbackTo
		}
		return &sqlxlate.Plan{Kind: kind, Name: m[2]}, nil
	case reSetNames.MatchString(q):
		return &sqlxlate.Plan{Kind: sqlxlate.KindSet, Sets: []sqlxlate.SetVar{{Scope: "session", Name: "names", Value: reSetNames.FindStringSubmatch(q)[1]}}}, nil
	case reSetUser.MatchString(q):
		m := reSetUser.FindStringSubmatch(q)
		sql, n := placeholders(m[2])
		return &sqlxlate.Plan{Kind: sqlxlate.KindSet, Params: n, Sets: []sqlxlate.SetVar{{Scope: "user", Name: m[1], Expr: sql}}}, nil
	case reSetVar.MatchString(q):
		m := reSetVar.FindStringSubmatch(q)
		return &sqlxlate.Plan{Kind: sqlxlate.KindSet, Sets: []sqlxlate.SetVar{{Scope: "session", Name: m[1], Value: strings.Trim(m[2], "'")}}}, nil
	case lower == "select @@version_comment limit 1":
		return &sqlxlate.Plan{Kind: sqlxlate.KindResult,
			Columns: []sqlxlate.Column{{Name: "@@version_comment", Type: querypb.Type_VARCHAR}},
			Rows:    [][]any{{"ephpm"}}}, nil
	case lower == "select last_insert_id()":
		return &sqlxlate.Plan{Kind: sqlxlate.KindQuery, Stmts: []string{"SELECT :" + sqlxlate.ParamLastInsertID + " AS `LAST_INSERT_ID()`"}, SessionParams: []string{sqlxlate.ParamLastInsertID}}, nil
	case lower == "select found_rows()":
		return &sqlxlate.Plan{Kind: sqlxlate.KindQuery, Stmts: []string{"SELECT :" + sqlxlate.ParamFoundRows + " AS `FOUND_ROWS()`"}, SessionParams: []string{sqlxlate.ParamFoundRows}}, nil
	case lower == "select row_count()":
		return &sqlxlate.Plan{Kind: sqlxlate.KindQuery, Stmts: []string{"SELECT :" + sqlxlate.ParamRowCount + " AS `ROW_COUNT()`"}, SessionParams: []string{sqlxlate.ParamRowCount}}, nil
	case lower == "select database()":
		return &sqlxlate.Plan{Kind: sqlxlate.KindQuery, Stmts: []string{"SELECT :" + sqlxlate.ParamDatabase + " AS `DATABASE()`"}, SessionParams: []string{sqlxlate.ParamDatabase}}, nil
	case strings.HasPrefix(lower, "select @x"):
		return &sqlxlate.Plan{Kind: sqlxlate.KindQuery, Stmts: []string{"SELECT :" + sqlxlate.ParamUserVarPrefix + "x AS `@x`"}, SessionParams: []string{sqlxlate.ParamUserVarPrefix + "x"}}, nil
	case first == "select" || first == "with" || first == "values":
		sql, n := placeholders(q)
		return &sqlxlate.Plan{Kind: sqlxlate.KindQuery, Stmts: []string{sql}, Params: n}, nil
	case first == "insert" || first == "update" || first == "delete" || first == "replace":
		sql, n := placeholders(q)
		if strings.Contains(lower, " returning ") {
			return &sqlxlate.Plan{Kind: sqlxlate.KindQuery, Stmts: []string{sql}, Params: n, Write: true}, nil
		}
		return &sqlxlate.Plan{Kind: sqlxlate.KindExec, Stmts: []string{sql}, Params: n, Write: true,
			DupKeyUpdate: strings.Contains(lower, "on conflict")}, nil
	case first == "create" || first == "drop" || first == "alter":
		return &sqlxlate.Plan{Kind: sqlxlate.KindExec, Stmts: []string{q}, Write: true, SchemaChange: true}, nil
	case first == "lock" || first == "unlock" || first == "flush":
		return &sqlxlate.Plan{Kind: sqlxlate.KindNoop}, nil
	}
	// Anything else (ATTACH, PRAGMA…) goes to SQLite unchanged, so the
	// database's own defences are what is tested.
	sql, n := placeholders(q)
	return &sqlxlate.Plan{Kind: sqlxlate.KindExec, Stmts: []string{sql}, Params: n, Write: true}, nil
}

// placeholders rewrites ? outside quotes into :v1..:vN.
func placeholders(q string) (string, int) {
	var b strings.Builder
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '?':
			n++
			b.WriteString(":v" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), n
}
