package mysqlwire_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

// need skips the test when a Debian program is missing, unless
// EPHPM_REQUIRE_ALL is set (CI), where a missing program fails.
func need(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
			t.Fatalf("%s is required: %v", prog, err)
		}
		t.Skipf("%s not installed", prog)
	}
	return p
}

func (ts *testServer) env(socket bool) []string {
	host, port, _ := net.SplitHostPort(ts.addr)
	env := append(os.Environ(),
		"EPHPM_DB_HOST="+host, "EPHPM_DB_PORT="+port,
		"EPHPM_DB_NAME="+testDB, "EPHPM_DB_USER="+testUser, "EPHPM_DB_PASSWORD="+testPassword)
	if socket {
		env = append(env, "EPHPM_DB_SOCKET="+ts.socket)
	}
	return env
}

// runPHP runs a script from testdata/php and decodes its JSON output.
func runPHP(t *testing.T, ts *testServer, socket bool, script string, args ...string) map[string]any {
	t.Helper()
	php := need(t, "php")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, php, append([]string{"-d", "display_errors=stderr", "testdata/php/" + script}, args...)...)
	cmd.Env = ts.env(socket)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("php %s: %v\nstdout: %s\nstderr: %s", script, err, stdout.String(), stderr.String())
	}
	// WordPress 6.1 on PHP 8.2 emits deprecations unrelated to the
	// database; anything else on stderr (warnings, notices) fails.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "Deprecated:") {
			t.Errorf("php %s wrote to stderr: %s", script, line)
		}
	}
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("php %s output is not JSON: %v\n%s", script, err, stdout.String())
	}
	return out
}

// js decodes a JSON literal so expectations read like the PHP output.
func js(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad expectation %s: %v", s, err)
	}
	return v
}

func checkJSON(t *testing.T, out map[string]any, want map[string]string) {
	t.Helper()
	for k, w := range want {
		got, ok := out[k]
		if !ok {
			t.Errorf("%s: missing from PHP output", k)
			continue
		}
		if !reflect.DeepEqual(got, js(t, w)) {
			g, _ := json.Marshal(got)
			t.Errorf("%s = %s, want %s", k, g, w)
		}
	}
}

func TestPHPMysqli(t *testing.T) {
	for _, tc := range []struct {
		name   string
		socket bool
	}{{"tcp", false}, {"unix socket", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, withTranslator(nil))
			out := runPHP(t, ts, tc.socket, "mysqli.php")
			checkJSON(t, out, map[string]string{
				"set_charset":      `true`,
				"server_version":   `80036`,
				"insert_id":        `1`,
				"affected":         `1`,
				"stmt_insert_id":   `2`,
				"stmt_affected":    `1`,
				"stmt_insert_id2":  `3`,
				"escape_roundtrip": `true`,
				// Text protocol: every value is a string, NULL is null.
				"text_rows": `[
					{"id":"1","name":"O'Brien \\ \"q\" \n 🎉","qty":"2","price":"9.5","created":"2024-01-02 03:04:05"},
					{"id":"2","name":"widget","qty":"7","price":"1.25","created":null},
					{"id":"3","name":"gadget","qty":"0","price":"0.5","created":null}]`,
				"stmt_field_count": `5`,
				"stmt_param_count": `1`,
				// Binary protocol: ints and doubles are native, DATETIME a string.
				"bind_result": `[[1,"O'Brien \\ \"q\" \n 🎉",2,9.5,"2024-01-02 03:04:05"],[2,"widget",7,1.25,null]]`,
				"get_result": `[
					{"id":1,"name":"O'Brien \\ \"q\" \n 🎉","qty":2,"price":9.5,"created":"2024-01-02 03:04:05"},
					{"id":2,"name":"widget","qty":7,"price":1.25,"created":null}]`,
				"echo":               `"echoed"`,
				"dup":                `[1062,"23000"]`,
				"no_table":           `[1146,"42S02"]`,
				"in_tx_sum":          `"300"`,
				"after_rollback_sum": `"9"`,
				"after_commit_qty":   `"3"`,
				"ping":               `true`,
				"select_db":          `true`,
				"select_other_db":    `1044`,
				"multi":              `["1","2"]`,
				"native":             `[2,7,1.25,"widget"]`,
				"bad_password":       `1045`,
			})
		})
	}
}

func TestPHPPDO(t *testing.T) {
	for _, mode := range []string{"emulate", "native"} {
		t.Run(mode, func(t *testing.T) {
			ts := startServer(t, withTranslator(nil))
			out := runPHP(t, ts, false, "pdo.php", mode)
			checkJSON(t, out, map[string]string{
				"last_insert_id":  `"1"`,
				"row_count":       `1`,
				"last_insert_id2": `"2"`,
				"update_count":    `2`,
				// PHP 8.1+ pdo_mysql returns native ints and floats in both modes.
				"rows": `[
					{"id":1,"name":"alpha","qty":4,"price":2.5,"created":"2024-05-06 07:08:09"},
					{"id":2,"name":"beta's","qty":5,"price":0.25,"created":null}]`,
				"column_count":   `5`,
				"named":          `"beta's"`,
				"query":          `2`,
				"dup":            `["23000",1062]`,
				"no_table":       `["42S02",1146]`,
				"in_tx":          `true`,
				"after_rollback": `2`,
			})
		})
	}
}

// TestPHPWordPressQueries runs what wpdb sends during install and page
// views through the real translator.
func TestPHPWordPressQueries(t *testing.T) {
	ts := startServer(t, withTranslator(nil))
	out := runPHP(t, ts, false, "wpdb.php")
	checkJSON(t, out, map[string]string{
		"select_db":        `true`,
		"sql_mode_after":   `"NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"`,
		"show_tables":      `["wp_options","wp_posts"]`,
		"columns":          `[["ID","bigint(20) unsigned","NO","PRI"],["post_author","bigint(20) unsigned","NO",""],["post_date","datetime","NO",""]]`,
		"describe_count":   `4`,
		"options_insert":   `[1,1]`,
		"options_upsert":   `2`,
		"insert_ignore":    `0`,
		"siteurl":          `"http://changed.test"`,
		"case_insensitive": `1`,
		"last_post_id":     `12`,
		"page_ids":         `["12","11","10"]`,
		"found_rows":       `"12"`,
		"search":           `4`,
		"date_fn":          `{"y":"2024","m":"1","d":"2024/01/03"}`,
		"date_add":         `"2024-02-01 00:00:00"`,
		"update_limit":     `2`,
		"update_same":      `0`,
		"delete":           `2`,
		"count":            `"10"`,
		"unknown_column":   `[1054,"42S22"]`,
		"errors":           `[]`,
	})
}

// TestWordPressInstallCLI installs the Debian wordpress package against the
// server from php-cli and drives posts, comments, queries and options
// through WordPress's own API: the whole of wpdb's SQL, unmodified.
func TestWordPressInstallCLI(t *testing.T) {
	root := "/usr/share/wordpress/"
	if _, err := os.Stat(root + "wp-settings.php"); err != nil {
		if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
			t.Fatalf("Debian package wordpress is required: %v", err)
		}
		t.Skip("Debian package wordpress not installed")
	}
	ts := startServer(t, withTranslator(nil))
	out := runPHP(t, ts, false, "../wordpress/install.php")
	checkJSON(t, out, map[string]string{
		"installed":     `true`,
		"admin_id":      `1`,
		"blogname":      `"Ephpm Test"`,
		"term":          `"ok"`,
		"post_ids_ok":   `12`,
		"comment":       `true`,
		"comment_count": `1`,
		// The install's "Hello world!" post is dated now: newest.
		"front_titles":     `["Hello world!","Ephpm post 12","Ephpm post 11","Ephpm post 10","Ephpm post 9"]`,
		"found_posts":      `13`,
		"max_pages":        `3`,
		"search_found":     `4`,
		"category_found":   `12`,
		"month_archive":    `12`,
		"edited":           `"Edited title"`,
		"deleted":          `true`,
		"option_roundtrip": `{"a":1,"b":"quote'd"}`,
		"transient":        `true`,
		"login":            `true`,
		"db_version":       `"8.0.36"`,
		"errors":           `[]`,
	})
}
