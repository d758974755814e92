package libsql_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/libsql"
	"github.com/ephpm/ephpm/sqlite"
)

// A Hrana write that waited at the fence of a change of primary, and was
// refused when the demotion woke it, goes whole to the new primary
// (Site.Reforward), without this node's baton; with no Reforward the
// client gets the error.
func TestWriteAtTheFenceIsReforwarded(t *testing.T) {
	db := openDB(t)
	var (
		mu     sync.Mutex
		bodies []string
		offer  = true
	)
	reforward := func() func(http.ResponseWriter, *http.Request, []byte) {
		mu.Lock()
		defer mu.Unlock()
		if !offer {
			return nil
		}
		return func(w http.ResponseWriter, _ *http.Request, body []byte) {
			mu.Lock()
			bodies = append(bodies, string(body))
			mu.Unlock()
			io.WriteString(w, `{"moved":true}`)
		}
	}
	srv := libsql.NewServer(libsql.Config{Resolve: func(ctx context.Context, r *http.Request) (*libsql.Site, error) {
		return &libsql.Site{Name: "alice.test", DB: db, Release: func() {}, Reforward: reforward}, nil
	}})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	send := func(path, body string) string {
		resp, err := http.Post(hs.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := send("/v3/pipeline", `{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"CREATE TABLE t (id INTEGER PRIMARY KEY)"}}]}`); !strings.Contains(got, `"type":"ok"`) {
		t.Fatalf("create: %s", got)
	}
	// A stream that read here first: its baton stays here.
	first := send("/v3/pipeline", `{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}}]}`)
	i := strings.Index(first, `"baton":"`)
	if i < 0 {
		t.Fatalf("no baton: %s", first)
	}
	baton := first[i+9 : i+9+strings.IndexByte(first[i+9:], '"')]

	db.SetFenced(true)
	answers := make(chan string, 2)
	go func() {
		answers <- send("/v3/pipeline", `{"baton":"`+baton+`","requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}},{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (1)"}}]}`)
	}()
	go func() {
		answers <- send("/v3/cursor", `{"baton":null,"batch":{"steps":[{"stmt":{"sql":"INSERT INTO t VALUES (2)"}}]}}`)
	}()
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if n := db.FenceWaiters(); n != 2 {
			return fmt.Errorf("%d writers wait at the fence", n)
		}
		return nil
	})
	db.SetReadOnly(true) // the demotion
	for range 2 {
		if got := <-answers; got != `{"moved":true}` {
			t.Fatalf("a write refused at the fence was answered here: %s", got)
		}
	}
	mu.Lock()
	for _, b := range bodies {
		if !strings.Contains(b, `"baton":null`) || !strings.Contains(b, "INSERT INTO t VALUES") {
			t.Errorf("passed on: %s", b)
		}
	}
	offer = false
	mu.Unlock()
	if n := countRows(t, db); n != 0 {
		t.Fatalf("%d rows written here", n)
	}

	// Nowhere to send it: the client gets the error.
	if got := send("/v3/pipeline", `{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"INSERT INTO t VALUES (3)"}}]}`); !strings.Contains(got, "SQLITE_READONLY") {
		t.Fatalf("with no new primary: %s", got)
	}
}

func countRows(t *testing.T, db *sqlite.DB) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return n
}
