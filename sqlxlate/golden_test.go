package sqlxlate_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the translator golden files")

type goldenStmt struct {
	sql  string
	args []any
}

// parseGolden splits a .sql case file: statements end with ';' at the end
// of a line; "-- args: [json]" gives the next statement's ? parameters.
func parseGolden(t *testing.T, src string) []goldenStmt {
	var out []goldenStmt
	var cur []string
	var args []any
	for _, line := range strings.Split(src, "\n") {
		trim := strings.TrimSpace(line)
		if len(cur) == 0 && strings.HasPrefix(trim, "-- args:") {
			if err := json.Unmarshal([]byte(strings.TrimPrefix(trim, "-- args:")), &args); err != nil {
				t.Fatalf("bad args line %q: %v", line, err)
			}
			continue
		}
		if len(cur) == 0 && (trim == "" || strings.HasPrefix(trim, "--")) {
			continue
		}
		cur = append(cur, line)
		if strings.HasSuffix(trim, ";") {
			s := strings.TrimSpace(strings.Join(cur, "\n"))
			out = append(out, goldenStmt{sql: strings.TrimSuffix(s, ";"), args: args})
			cur, args = nil, nil
		}
	}
	if len(cur) > 0 {
		out = append(out, goldenStmt{sql: strings.TrimSpace(strings.Join(cur, "\n")), args: args})
	}
	return out
}

// TestGolden runs each testdata/golden/<case>.sql through the translator
// and a real SQLite, and compares the translation, the rows, the affected
// rows and the errors with <case>.golden (go test -run TestGolden -update
// rewrites them; review the diff).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".sql")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := newSession(t)
			var b strings.Builder
			for _, st := range parseGolden(t, string(src)) {
				b.WriteString("mysql> " + oneLine(st.sql) + "\n")
				if len(st.args) > 0 {
					a, _ := json.Marshal(st.args)
					b.WriteString("args> " + string(a) + "\n")
				}
				for i := range st.args {
					if f, ok := st.args[i].(float64); ok && f == float64(int64(f)) {
						st.args[i] = int64(f)
					}
				}
				r, err := s.run(st.sql, st.args...)
				if r != nil && r.plan != nil {
					for _, q := range r.plan.Stmts {
						if strings.HasPrefix(q, "create table if not exists _ephpm_schema") || strings.HasPrefix(q, "insert or replace into _ephpm_schema") {
							continue
						}
						b.WriteString("sqlite> " + oneLine(q) + "\n")
					}
					if r.plan.CalcFoundRows != "" {
						b.WriteString("found_rows> " + oneLine(r.plan.CalcFoundRows) + "\n")
					}
				}
				if err != nil {
					b.WriteString("error: " + err.Error() + "\n\n")
					continue
				}
				switch {
				case r.cols != nil:
					b.WriteString("cols: " + strings.Join(r.cols, " | ") + "\n")
					for _, row := range r.rows {
						vals := make([]string, len(row))
						for i, v := range row {
							vals[i] = formatValue(v)
						}
						b.WriteString("row: " + strings.Join(vals, " | ") + "\n")
					}
					if strings.Contains(strings.ToUpper(st.sql), "SQL_CALC_FOUND_ROWS") {
						b.WriteString("found_rows: " + strconv.FormatInt(s.foundRows, 10) + "\n")
					}
				case r.plan.Kind.String() == "Exec":
					b.WriteString("affected: " + strconv.FormatInt(r.affected, 10))
					if r.insertID != 0 {
						b.WriteString(" insert_id: " + strconv.FormatInt(r.insertID, 10))
					}
					b.WriteString("\n")
				default:
					b.WriteString("ok: " + r.plan.Kind.String() + "\n")
				}
				b.WriteString("\n")
			}
			got := b.String()
			gf := strings.TrimSuffix(f, ".sql") + ".golden"
			if *update {
				if err := os.WriteFile(gf, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("golden mismatch for %s; diff:\n%s", name, lineDiff(string(want), got))
			}
		})
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n- " + w + "\n+ " + g + "\n")
			if n++; n > 8 {
				break
			}
		}
	}
	return b.String()
}
