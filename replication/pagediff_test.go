package replication_test

import (
	"context"
	"testing"

	"github.com/ephpm/ephpm/sqlite"
)

// diffPages counts the pages of b that differ from a's (page 1 without
// its per-node stamps), and both page counts.
func diffPages(t testing.TB, a, b string) (int, uint32, uint32) {
	ctx := context.Background()
	sa, err := sqlite.OpenPageSnapshot(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := sqlite.OpenPageSnapshot(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	m := map[uint32]string{}
	sa.Each(ctx, func(no uint32, d []byte) error { m[no] = string(sqlite.NormalizePage1(no, d)); return nil })
	n := 0
	sb.Each(ctx, func(no uint32, d []byte) error {
		if m[no] != string(sqlite.NormalizePage1(no, d)) {
			n++
		}
		return nil
	})
	return n, sa.Pages(), sb.Pages()
}
