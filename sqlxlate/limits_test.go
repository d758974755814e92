package sqlxlate_test

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/sqlxlate"
)

func impl(t *testing.T, name string) func([]driver.Value) (driver.Value, error) {
	t.Helper()
	for _, f := range sqlxlate.Functions() {
		if f.Name == name {
			return f.Impl
		}
	}
	t.Fatalf("no function %s", name)
	return nil
}

// No function builds a result longer than MaxLength: each fails with
// MySQL's 1301 message before allocating it, whatever its arguments ask.
func TestFunctionsRefuseResultsOverMaxLength(t *testing.T) {
	const limit = 1 << 20
	sqlxlate.SetMaxLength(limit)
	t.Cleanup(func() { sqlxlate.SetMaxLength(0) })
	if sqlxlate.MaxLength() != limit {
		t.Fatalf("MaxLength = %d", sqlxlate.MaxLength())
	}
	half := strings.Repeat("a", limit/2+1)
	tests := []struct {
		fn   string
		args []driver.Value
	}{
		{"repeat", []driver.Value{"a", int64(limit + 1)}},
		{"repeat", []driver.Value{"ab", int64(1) << 62}},
		{"repeat", []driver.Value{strings.Repeat("a", 1000), int64(limit / 999)}},
		{"space", []driver.Value{int64(limit + 1)}},
		{"space", []driver.Value{"1e18"}},
		{"lpad", []driver.Value{"x", int64(limit + 1), "y"}},
		{"rpad", []driver.Value{"x", int64(1) << 40, "y"}},
		{"rpad", []driver.Value{"x", int64(limit/2 + 1), "é"}}, // 2 bytes a character
		{"concat", []driver.Value{half, half}},
		{"concat_ws", []driver.Value{",", half, half}},
		{"insert", []driver.Value{half, int64(2), int64(0), half}},
		{"regexp_replace", []driver.Value{strings.Repeat("a", 1000), "a", strings.Repeat("b", 2000)}},
		{"regexp_replace", []driver.Value{strings.Repeat("a", 1000), "", strings.Repeat("b", 2000)}},
		{"hex", []driver.Value{half}},
		{"quote", []driver.Value{strings.Repeat("'", limit/2+1)}},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s%.40v", tt.fn, tt.args)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		v, err := impl(t, "mysql_"+tt.fn)(tt.args)
		runtime.ReadMemStats(&after)
		want := fmt.Sprintf("Result of %s() was larger than max_allowed_packet (%d) - truncated", tt.fn, limit)
		if err == nil || err.Error() != want {
			t.Errorf("%s = %.20v, %v; want error %q", name, v, err, want)
			continue
		}
		if xe := sqlxlate.ResultTooLong(fmt.Errorf("SQL logic error: %w (1)", err)); xe == nil || xe.Code != 1301 || xe.Message != want {
			t.Errorf("%s: ResultTooLong = %+v", name, xe)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 8*limit {
			t.Errorf("%s allocated %d KB before it failed", name, grew>>10)
		}
	}
	// Up to the limit they work.
	for _, tt := range []struct {
		fn   string
		args []driver.Value
		n    int
	}{
		{"repeat", []driver.Value{"ab", int64(limit / 2)}, limit},
		{"space", []driver.Value{int64(limit)}, limit},
		{"lpad", []driver.Value{"x", int64(limit), "yz"}, limit},
		{"concat", []driver.Value{half[1:], half[1:]}, limit},
		{"regexp_replace", []driver.Value{"aaa", "a", "bb"}, 6},
	} {
		v, err := impl(t, "mysql_"+tt.fn)(tt.args)
		if s, _ := v.(string); err != nil || len(s) != tt.n {
			t.Errorf("%s%.30v: %d bytes, %v; want %d", tt.fn, tt.args, len(s), err, tt.n)
		}
	}
	if v, err := impl(t, "mysql_repeat")([]driver.Value{"a", int64(-1)}); v != "" || err != nil {
		t.Errorf("repeat('a', -1) = %v, %v", v, err)
	}
	if xe := sqlxlate.ResultTooLong(errors.New("no such table: x")); xe != nil {
		t.Errorf("ResultTooLong of another error: %+v", xe)
	}
}
