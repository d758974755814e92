package sqlxlate_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/sqlxlate"
)

// FuzzTranslate: parse + translate never panics, and yields either an
// *Error or SQLite statements SQLite accepts (errors that name a missing
// table/column/function are the user's, not the translator's).
func FuzzTranslate(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.sql")
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, st := range parseGolden(&testing.T{}, string(src)) {
			f.Add(st.sql)
		}
	}
	for _, q := range wordpressCorpus(f) {
		f.Add(q)
	}
	for _, s := range []string{"", ";", "SELECT", "SELECT 'a\\", "SELECT `x", "SELECT 0x", "INSERT INTO wp_options VALUES ()", "SELECT * FROM information_schema.nosuch", "SELECT @@", "SET @a = (SELECT 1)"} {
		f.Add(s)
	}
	s := newSession(f)
	for _, st := range parseGolden(&testing.T{}, readFile(f, "testdata/golden/wp_schema.sql")) {
		if strings.HasPrefix(st.sql, "CREATE TABLE") && strings.Contains(st.sql, "DEFAULT CHARACTER SET") {
			s.mustRun(st.sql)
		}
	}
	f.Fuzz(func(t *testing.T, q string) {
		// statements run for real (INSERT … SELECT from a recursive CTE can
		// loop): SQLite is interrupted when the context ends
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		tr := sqlxlate.NewTranslator(16)
		p, err := tr.Translate(ctx, q, s.cat)
		if err != nil {
			var xe *sqlxlate.Error
			if !errors.As(err, &xe) {
				t.Fatalf("Translate(%q): non-MySQL error %T %v", q, err, err)
			}
			if strings.Contains(xe.Message, "internal translator error") {
				t.Fatalf("Translate(%q): %v", q, err)
			}
			return
		}
		// The wire front binds them by name as they are: database/sql
		// and modernc refuse a name that does not start with a letter.
		for _, name := range p.SessionParams {
			if name == "" || name[0] < 'a' || name[0] > 'z' {
				t.Fatalf("Translate(%q): session parameter %q does not start with a letter", q, name)
			}
		}
		if p.Kind != sqlxlate.KindQuery && p.Kind != sqlxlate.KindExec {
			return
		}
		check := func(stmt string, err error) {
			if err == nil {
				return
			}
			me := sqlxlate.SQLiteError(err, "wordpress")
			switch me.Code {
			case 1146, 1054, 1305, 1062, 1048, 1050, 1136, 1205:
				return
			}
			msg := err.Error()
			for _, ok := range []string{"wrong number of arguments", "misuse of aggregate", "no such index", "already exists", "ambiguous column", "GROUP BY term", "aggregate functions are not allowed", "not allowed in", "too many terms", "circular reference", "SELECTs to the left and right", "row value misused", "may not be indexed", "unsupported", "LIMIT", "ORDER BY", "not authorized", "interrupted", "context deadline", "sub-select returns", "cannot", "unknown", "prohibited", "too many", "parser stack overflow", "integer overflow", "out of range", "too big", "column index", "no tables specified", "is not a function", "number of columns", "no such savepoint", "interrupted", "constraint failed", "datatype mismatch", "near \":\"", "unrecognized token", "default value of column", "expressions prohibited", "has no column named", "HAVING", "RETURNING", "must appear", "must be", "nested too deep", "recursive", "generated column", "non-deterministic"} {
				if strings.Contains(msg, ok) {
					return
				}
			}
			t.Fatalf("Translate(%q) produced SQL SQLite rejects:\n%s\n%v", q, stmt, err)
		}
		conn := s.conn
		if p.Kind == sqlxlate.KindQuery {
			for _, st := range append([]string{p.CalcFoundRows}, p.Stmts...) {
				if st == "" {
					continue
				}
				ps, err := conn.PrepareContext(ctx, st)
				if err == nil {
					ps.Close()
				}
				check(st, err)
			}
			return
		}
		if _, err := conn.ExecContext(ctx, "SAVEPOINT fuzz"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			conn.ExecContext(context.Background(), "ROLLBACK TO fuzz")
			conn.ExecContext(context.Background(), "RELEASE fuzz")
			s.cat.Invalidate()
		}()
		for _, st := range p.Stmts {
			_, err := conn.ExecContext(ctx, st, s.args(p, nil)...)
			if err != nil {
				check(st, err)
				return
			}
		}
	})
}

func readFile(tb testing.TB, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// wordpressCorpus is the distinct statements of the recorded WordPress run.
func wordpressCorpus(tb testing.TB) []string {
	f, err := os.Open("testdata/wordpress/session.jsonl.gz")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var q string
		if json.Unmarshal(sc.Bytes(), &q) == nil && !seen[q] && len(q) < 4096 {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}
