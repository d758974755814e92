package sqlxlate_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/sqlxlate"
)

const benchQuery = "SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID FROM wp_posts  LEFT JOIN wp_term_relationships ON (wp_posts.ID = wp_term_relationships.object_id) WHERE 1=1  AND ( wp_term_relationships.term_taxonomy_id IN (2) ) AND ((wp_posts.post_type = 'post' AND (wp_posts.post_status = 'publish'))) GROUP BY wp_posts.ID ORDER BY wp_posts.post_date DESC LIMIT 0, 10"

// benchSession has the WordPress schema loaded.
func benchSession(b *testing.B) *session {
	s := newSession(b)
	for _, st := range parseGolden(&testing.T{}, readFile(b, "testdata/golden/wp_schema.sql")) {
		if strings.HasPrefix(st.sql, "CREATE TABLE") && strings.Contains(st.sql, "DEFAULT CHARACTER SET") {
			s.mustRun(st.sql)
		}
	}
	return s
}

// BenchmarkTranslateCached is the per-statement cost on a cache hit (every
// WordPress page repeats its statement shapes).
func BenchmarkTranslateCached(b *testing.B) {
	s := benchSession(b)
	tr := sqlxlate.NewTranslator(0)
	ctx := context.Background()
	if _, err := tr.Translate(ctx, benchQuery, s.cat); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Translate(ctx, benchQuery, s.cat); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateUncached parses and prints every time (distinct SQL).
func BenchmarkTranslateUncached(b *testing.B) {
	s := benchSession(b)
	tr := sqlxlate.NewTranslator(0)
	ctx := context.Background()
	qs := make([]string, 1024)
	for i := range qs {
		qs[i] = benchQuery + " /* " + strconv.Itoa(i) + " */"
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// a fresh translator every 1024 statements keeps every call a miss
		if i%len(qs) == 0 {
			tr = sqlxlate.NewTranslator(0)
		}
		if _, err := tr.Translate(ctx, qs[i%len(qs)], s.cat); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslatePointSelect is the uncached cost of the simplest
// statement shape (primary-key lookup).
func BenchmarkTranslatePointSelect(b *testing.B) {
	s := benchSession(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr := sqlxlate.NewTranslator(1)
		if _, err := tr.Translate(ctx, "SELECT * FROM wp_posts WHERE ID = 1", s.cat); err != nil {
			b.Fatal(err)
		}
	}
}
