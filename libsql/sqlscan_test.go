package libsql

import (
	"reflect"
	"testing"
)

func TestSplitSQL(t *testing.T) {
	for _, tt := range []struct {
		name   string
		sql    string
		texts  []string
		kinds  []stmtKind
		params []int
	}{
		{"two", "SELECT 1; SELECT 2", []string{"SELECT 1", "SELECT 2"}, []stmtKind{kindRead, kindRead}, []int{0, 0}},
		{"empty statements dropped", " ;\n; -- c\n;", nil, nil, nil},
		// SQLite reads bytes >= 0x80 as identifier characters, so a lone
		// U+2003 is a statement (SQLite rejects it), not whitespace.
		{"unicode space is text", "\u2003", []string{"\u2003"}, []stmtKind{kindWrite}, []int{0}},
		{"quoted semicolons", "SELECT 'a;b', \"c;d\", [e;f], `g;h`", []string{"SELECT 'a;b', \"c;d\", [e;f], `g;h`"}, []stmtKind{kindRead}, []int{0}},
		{"trigger body", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = CASE WHEN 1 THEN 2 END; END; SELECT 1",
			[]string{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = CASE WHEN 1 THEN 2 END; END", "SELECT 1"},
			[]stmtKind{kindWrite, kindRead}, []int{0, 0}},
		{"with insert writes", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", []string{"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"}, []stmtKind{kindWrite}, []int{0}},
		{"parameter numbering", "SELECT ?, :a, ?5, :a", []string{"SELECT ?, :a, ?5, :a"}, []stmtKind{kindRead}, []int{5}},
		{"transaction", "BEGIN; COMMIT", []string{"BEGIN", "COMMIT"}, []stmtKind{kindBegin, kindCommit}, []int{0, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sts, err := splitSQL(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			var kinds []stmtKind
			var params []int
			for _, s := range sts {
				texts = append(texts, s.text)
				kinds = append(kinds, s.kind)
				params = append(params, len(s.params))
			}
			if !reflect.DeepEqual(texts, tt.texts) || !reflect.DeepEqual(kinds, tt.kinds) || !reflect.DeepEqual(params, tt.params) {
				t.Fatalf("got %q %v %v, want %q %v %v", texts, kinds, params, tt.texts, tt.kinds, tt.params)
			}
		})
	}
	for _, bad := range []string{"SELECT 'x", "/* open", "SELECT ?0", "SELECT ?99999999"} {
		if _, err := splitSQL(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
