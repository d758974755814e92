package testutil

import (
	"context"
	"testing"

	"github.com/ephpm/ephpm/sqlite"
)

// Exec runs one statement on a site database's writer, failing the test
// on error.
func Exec(tb testing.TB, db *sqlite.DB, q string, args ...any) {
	tb.Helper()
	ctx := context.Background()
	w, err := db.AcquireWriter(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Release(ctx)
	if _, err := w.ExecContext(ctx, q, args...); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
}
