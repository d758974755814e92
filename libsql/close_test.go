package libsql_test

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/libsql"
)

// Close returns only when the janitor (running while a stream is open)
// has ended.
func TestCloseStopsJanitor(t *testing.T) {
	db := openDB(t)
	ts := serve(t, db, nil, libsql.Config{})
	pipeline(t, ts.url, nil, `{"type":"execute","stmt":{"sql":"CREATE TABLE t (v)"}}`) // the stream stays open
	janitor := func() []string {
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		var out []string
		for _, g := range strings.Split(b.String(), "\n\n") {
			if strings.Contains(g, "libsql.(*Server).startReaperLocked") {
				out = append(out, g)
			}
		}
		return out
	}
	if len(janitor()) == 0 {
		t.Fatal("no janitor while a stream is open")
	}
	ts.srv.Close()
	if left := janitor(); len(left) > 0 {
		t.Fatalf("janitor still running after Close:\n%s", strings.Join(left, "\n\n"))
	}
}
