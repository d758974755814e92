package phpfpm

import (
	"testing"

	"github.com/ephpm/ephpm/internal/testutil"
)

func TestParseINIInfo(t *testing.T) {
	info := "PHP Version => 8.2.29\n\nDirective => Local Value => Master Value\n" +
		"max_input_vars => 1000 => 1000\nauto_prepend_file => no value => no value\n" +
		"error_reporting => 22527 => 22527\nsession.name => PHPSESSID => PHPSESSID\nopen_basedir => no value => no value\n"
	got := parseINIInfo(info, []string{"max_input_vars", "auto_prepend_file", "error_reporting", "session.name", "missing"})
	want := map[string]string{"max_input_vars": "1000", "auto_prepend_file": "", "error_reporting": "22527", "session.name": "PHPSESSID"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestQueryINIRealFPM(t *testing.T) {
	testutil.NeedProgram(t, "php-fpm8.2", "php-fpm")
	bin, err := Find("")
	if err != nil {
		t.Fatal(err)
	}
	got, err := QueryINI(bin, []string{"max_input_vars", "default_charset"})
	if err != nil || got["max_input_vars"] == "" || got["default_charset"] == "" {
		t.Fatalf("%v %v", got, err)
	}
}
