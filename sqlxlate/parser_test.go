package sqlxlate_test

import (
	"fmt"
	"testing"
)

// Versioned comments are read as SQL up to MySQL 8.4 (vitess's default
// version, the translator's since it began), later ones stay comments.
func TestVersionedComments(t *testing.T) {
	s := newSession(t)
	for _, tc := range []struct {
		name, sql string
		want      int64
	}{
		{"8.0", "SELECT 1 /*!80000 + 1 */ AS x", 2},
		{"8.4", "SELECT 1 /*!80406 + 1 */ AS x", 2},
		{"9.0", "SELECT 1 /*!90000 + 1 */ AS x", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.mustRun(tc.sql)
			if len(r.rows) != 1 || fmt.Sprint(r.rows[0][0]) != fmt.Sprint(tc.want) {
				t.Errorf("%s: got %v, want %d", tc.sql, r.rows, tc.want)
			}
		})
	}
}
