package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
)

// probePHP reports what a site's PHP can see and do.
const probePHP = `<?php
header('Content-Type: application/json');
$out = ['site' => basename(__DIR__), 'host' => $_SERVER['HTTP_HOST'],
  'memory_limit' => ini_get('memory_limit'), 'open_basedir' => ini_get('open_basedir'),
  'session_path' => ini_get('session.save_path'), 'upload_tmp' => ini_get('upload_tmp_dir'),
  'exec' => function_exists('exec'), 'shell_exec' => function_exists('shell_exec'), 'pid' => getmypid(),
  'user' => posix_getpwuid(posix_geteuid())['name']];
if (isset($_GET['read'])) { $out['read'] = @file_get_contents($_GET['read']); }
if (isset($_GET['db'])) {
  mysqli_report(MYSQLI_REPORT_OFF);
  $db = new mysqli(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
  $out['db_connect'] = $db->connect_errno;
  $db->query('CREATE TABLE IF NOT EXISTS notes (id INT PRIMARY KEY, body TEXT)');
  $db->query("REPLACE INTO notes VALUES (1, '" . $db->real_escape_string($out['site']) . "')");
  $r = $db->query('SELECT body FROM notes WHERE id = 1');
  $out['db_row'] = $r ? $r->fetch_row()[0] : null;
  $out['db_name'] = $db->query('SELECT DATABASE()')->fetch_row()[0];
  $r = $db->query("SELECT DISTINCT table_schema FROM information_schema.tables");
  $out['schemas'] = $r ? array_column($r->fetch_all(), 0) : $db->error;
  $out['attach'] = $db->query("ATTACH DATABASE '/tmp/x.db' AS x") ? 0 : $db->errno;
  $out['select_other'] = $db->select_db($_GET['db']) ? 0 : $db->errno;
  $out['qualified_other'] = $db->query('SELECT * FROM ' . chr(96) . $_GET['db'] . chr(96) . '.notes') ? 0 : $db->errno;
}
if (isset($_GET['kv'])) {
  $r = new Redis(); $r->connect(getenv('EPHPM_KV_SOCKET')); $r->auth([getenv('EPHPM_KV_USER'), getenv('EPHPM_KV_PASSWORD')]);
  $r->set('owner', $out['site']);
  $out['kv_n'] = $r->incr('n');
  $out['kv_keys'] = $r->keys('*');
  $out['kv_owner'] = $r->get('owner');
}
echo json_encode($out);
`

func writeSite(t *testing.T, sitesDir, name, siteToml string) string {
	t.Helper()
	dir := filepath.Join(sitesDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.php"), []byte(probePHP), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("secret of "+name), 0o644); err != nil {
		t.Fatal(err)
	}
	if siteToml != "" {
		if err := os.WriteFile(filepath.Join(dir, "site.toml"), []byte(siteToml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func hostGet(t *testing.T, addr, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func probe(t *testing.T, addr, host, query string) map[string]any {
	t.Helper()
	code, body := hostGet(t, addr, host, "/?"+query)
	if code != 200 {
		t.Fatalf("%s: %d %s", host, code, body)
	}
	var m map[string]any
	_ = os.Stdout
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%s: %v: %s", host, err, body)
	}
	return m
}

// rawHost sends a Host header as-is over TCP.
func rawHost(t *testing.T, addr, host string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(c, buf, 12)
	var code int
	fmt.Sscanf(string(buf[:n]), "HTTP/1.1 %d", &code)
	return code
}

func startSitesNode(t *testing.T, env ...string) (*proc, string) {
	testutil.NeedProgram(t, "php")
	base := testutil.WorldReadableDir(t)
	sitesDir := filepath.Join(base, "sites")
	writeSite(t, sitesDir, "alice.test", "")
	writeSite(t, sitesDir, "bob.test", "[php]\nmemory_limit = \"96M\"\n[server]\naliases = [\"www.bob.test\"]\n")
	cwd, _ := filepath.Abs("testdata/site")
	p := startEphpm(t, cwd, append([]string{
		"EPHPM_SERVER__SITES_DIR=" + sitesDir, "EPHPM_SERVER__DATA_DIR=" + filepath.Join(base, "data"),
		"EPHPM_DB_SQLITE_PROXY__ENABLED=true", "EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN=" + freePort(t),
		"EPHPM_KV__ENABLED=true", "EPHPM_KV__LISTEN=" + freePort(t)}, env...)...)
	return p, sitesDir
}

func TestSitesHostRouting(t *testing.T) {
	p, _ := startSitesNode(t)
	for _, host := range []string{"alice.test", "ALICE.test", "alice.test:8080", "alice.test."} {
		if m := probe(t, p.addr, host, ""); m["site"] != "alice.test" {
			t.Errorf("Host %q served %v", host, m["site"])
		}
	}
	if m := probe(t, p.addr, "bob.test", ""); m["site"] != "bob.test" {
		t.Errorf("bob.test served %v", m["site"])
	}
	if code, _ := hostGet(t, p.addr, "nobody.test", "/"); code != 404 {
		t.Errorf("unknown site: %d, want 404", code)
	}
	if code, _ := hostGet(t, p.addr, "bob.test", "/site.toml"); code != 404 {
		t.Errorf("site.toml served: %d", code)
	}
	testutil.RetryUntil(t, 10*time.Second, func() error {
		code, body := hostGet(t, p.addr, "www.bob.test", "/")
		if code != 200 || !strings.Contains(body, `"site":"bob.test"`) {
			return fmt.Errorf("alias: %d %s", code, body)
		}
		return nil
	})
}

// TestSitesHostileHosts: a Host header never reaches the file system.
func TestSitesHostileHosts(t *testing.T) {
	p, _ := startSitesNode(t)
	for _, h := range []string{"../etc", "..", "%2e%2e", "a/b", "alice.test/../bob.test", "a\\b",
		strings.Repeat("a", 300) + ".test", "-bad.test", "[::1]", "alice.test:xx"} {
		if code := rawHost(t, p.addr, h); code != 400 {
			t.Errorf("Host %q: %d, want 400", h, code)
		}
	}
}

func TestSitesAppearAndDisappear(t *testing.T) {
	p, sitesDir := startSitesNode(t)
	if code, _ := hostGet(t, p.addr, "carol.test", "/"); code != 404 {
		t.Fatalf("carol before creation: %d", code)
	}
	dir := writeSite(t, sitesDir, "carol.test", "")
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if code, body := hostGet(t, p.addr, "carol.test", "/"); code != 200 || !strings.Contains(body, "carol.test") {
			return fmt.Errorf("carol after creation: %d", code)
		}
		return nil
	})
	probe(t, p.addr, "carol.test", "kv=1") // carol's cache keyspace has keys
	if m := probe(t, p.addr, "carol.test", "kv=1"); m["kv_n"] != float64(2) {
		t.Fatalf("carol's counter: %v", m["kv_n"])
	}
	os.RemoveAll(dir)
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if code, _ := hostGet(t, p.addr, "carol.test", "/"); code != 404 {
			return fmt.Errorf("carol after deletion: %d", code)
		}
		return nil
	})
	// Its cache keyspace is dropped, so a new carol starts empty.
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if !strings.Contains(p.out.String(), `"msg":"site removed"`) {
			return fmt.Errorf("no removal logged")
		}
		return nil
	})
	writeSite(t, sitesDir, "carol.test", "")
	testutil.RetryUntil(t, 10*time.Second, func() error {
		code, body := hostGet(t, p.addr, "carol.test", "/?kv=1")
		if code != 200 {
			return fmt.Errorf("carol again: %d", code)
		}
		if !strings.Contains(body, `"kv_n":1`) {
			return fmt.Errorf("new carol sees the old keyspace: %s", body)
		}
		return nil
	})
}

// TestSitesBrokenSiteToml: a broken site.toml takes only that site offline.
func TestSitesBrokenSiteToml(t *testing.T) {
	p, sitesDir := startSitesNode(t)
	writeSite(t, sitesDir, "broken.test", "[php]\nmemory_limit = \"96M\"\nnot_a_key = 1\n")
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if code, _ := hostGet(t, p.addr, "broken.test", "/"); code != 503 {
			return fmt.Errorf("broken site: %d, want 503", code)
		}
		return nil
	})
	if m := probe(t, p.addr, "alice.test", ""); m["site"] != "alice.test" {
		t.Errorf("alice affected by broken site: %v", m)
	}
	// A site.toml cannot point its database at another site's.
	writeSite(t, sitesDir, "mallory.test", "[db.sqlite]\npath = \"../bob.test/../../data/sites/bob.test.db\"\n")
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if code, _ := hostGet(t, p.addr, "mallory.test", "/"); code != 503 {
			return fmt.Errorf("mallory with bob's database: %d, want 503", code)
		}
		return nil
	})
	testutil.RetryUntil(t, 5*time.Second, func() error {
		if !strings.Contains(p.out.String(), "site.toml:3: php.not_a_key: unknown key") {
			return fmt.Errorf("no log line naming the site.toml line")
		}
		return nil
	})
}

func TestSitesSettings(t *testing.T) {
	p, _ := startSitesNode(t)
	a, b := probe(t, p.addr, "alice.test", ""), probe(t, p.addr, "bob.test", "")
	if a["memory_limit"] != "128M" || b["memory_limit"] != "96M" {
		t.Errorf("memory_limit alice=%v bob=%v", a["memory_limit"], b["memory_limit"])
	}
	for _, m := range []map[string]any{a, b} {
		site := m["site"].(string)
		if !strings.Contains(m["session_path"].(string), site) || !strings.Contains(m["upload_tmp"].(string), site) {
			t.Errorf("%s: per-site session/upload dirs: %v %v", site, m["session_path"], m["upload_tmp"])
		}
		if m["exec"] != false || m["shell_exec"] != false {
			t.Errorf("%s: process functions enabled in multi-tenant mode", site)
		}
	}
}

// TestSitesIsolationFiles: site A's PHP cannot read site B's files.
func TestSitesIsolationFiles(t *testing.T) {
	p, sitesDir := startSitesNode(t)
	own := probe(t, p.addr, "alice.test", "read="+filepath.Join(sitesDir, "alice.test", "secret.txt"))
	if own["read"] != "secret of alice.test" {
		t.Fatalf("alice cannot read her own file: %v", own["read"])
	}
	other := probe(t, p.addr, "alice.test", "read="+filepath.Join(sitesDir, "bob.test", "secret.txt"))
	if other["read"] != false {
		t.Errorf("alice read bob's file: %v", other["read"])
	}
	etc := probe(t, p.addr, "alice.test", "read=/etc/passwd")
	if etc["read"] != false {
		t.Errorf("alice read /etc/passwd")
	}
	// A script or file symlinked in from outside the site is not run or served.
	outside := testutil.WorldReadableDir(t)
	os.WriteFile(filepath.Join(outside, "evil.php"), []byte("<?php echo 'ran outside';"), 0o644)
	os.WriteFile(filepath.Join(outside, "data.txt"), []byte("outside data"), 0o644)
	os.Symlink(filepath.Join(outside, "evil.php"), filepath.Join(sitesDir, "alice.test", "evil.php"))
	os.Symlink(filepath.Join(sitesDir, "bob.test", "secret.txt"), filepath.Join(sitesDir, "alice.test", "bob.txt"))
	for _, path := range []string{"/evil.php", "/bob.txt"} {
		code, body := hostGet(t, p.addr, "alice.test", path)
		if code == 200 || strings.Contains(body, "ran outside") || strings.Contains(body, "secret of bob") {
			t.Errorf("alice%s: %d %q: a symlink out of the site was followed", path, code, body)
		}
	}
}

// TestSitesIsolationDatabase: each site has its own database and can't
// open another's (MySQL 1044).
func TestSitesIsolationDatabase(t *testing.T) {
	p, _ := startSitesNode(t)
	defer func() {
		if t.Failed() {
			t.Log(grepLines(p.out.String(), "stderr"))
		}
	}()
	a := probe(t, p.addr, "alice.test", "db=bob.test")
	b := probe(t, p.addr, "bob.test", "db=alice.test")
	if a["db_connect"] != float64(0) || a["db_row"] != "alice.test" || b["db_row"] != "bob.test" {
		t.Fatalf("per-site databases: alice=%v bob=%v", a, b)
	}
	for _, m := range []map[string]any{a, b} {
		if m["select_other"] != float64(1044) {
			t.Errorf("%s: USE other site's db: errno %v, want 1044", m["site"], m["select_other"])
		}
		if m["qualified_other"] != float64(1044) {
			t.Errorf("%s: another site's table by qualified name: errno %v, want 1044", m["site"], m["qualified_other"])
		}
		if fmt.Sprint(m["schemas"]) != fmt.Sprintf("[%s]", m["site"]) {
			t.Errorf("%s: information_schema shows schemas %v", m["site"], m["schemas"])
		}
		if m["attach"] == float64(0) {
			t.Errorf("%s: ATTACH worked", m["site"])
		}
	}
}

// TestSitesIsolationKV: each site sees only its own keys.
func TestSitesIsolationKV(t *testing.T) {
	p, _ := startSitesNode(t)
	defer func() {
		if t.Failed() {
			t.Log(grepLines(p.out.String(), "stderr"))
		}
	}()
	a := probe(t, p.addr, "alice.test", "kv=1")
	b := probe(t, p.addr, "bob.test", "kv=1")
	if a["kv_owner"] != "alice.test" || b["kv_owner"] != "bob.test" {
		t.Errorf("kv owners: alice=%v bob=%v", a["kv_owner"], b["kv_owner"])
	}
	if keys, _ := b["kv_keys"].([]any); len(keys) != 2 {
		t.Errorf("bob sees keys %v", b["kv_keys"])
	}
}

func TestSitesCLI(t *testing.T) {
	testutil.NeedProgram(t, "mariadb", "mysql")
	p, sitesDir := startSitesNode(t)
	writeSite(t, sitesDir, "broken.test", "[db.sqlite.replication]\nrole = \"leader\"\n")
	cli := func(stdin string, args ...string) (int, string) {
		cmd := exec.Command(binary, args...)
		cmd.Env = p.cmd.Env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, string(out)
	}
	code, out := cli("", "sites", "list")
	if code != 0 || !strings.Contains(out, "alice.test") || !strings.Contains(out, "bob.test") || !strings.Contains(out, "alice.test.db") {
		t.Errorf("sites list: %d\n%s", code, out)
	}
	code, out = cli("", "sites", "check")
	if code != 1 || !strings.Contains(out, "broken.test") || !strings.Contains(out, "site.toml:2: db.sqlite.replication.role") {
		t.Errorf("sites check: %d\n%s", code, out)
	}
	// The shell reaches the site's own database through the running node.
	probe(t, p.addr, "alice.test", "db=x")
	code, out = cli("SELECT body FROM notes;\n", "db", "shell", "--site", "alice.test")
	if code != 0 || !strings.Contains(out, "alice.test") {
		t.Errorf("db shell: %d\n%s", code, out)
	}
}

// TestSitesPoolIsolation: [php] isolation = "pool" gives each site its
// own php-fpm, started on demand and stopped when idle.
func TestSitesPoolIsolation(t *testing.T) {
	p, sitesDir := startSitesNode(t, "EPHPM_PHP__ISOLATION=pool", "EPHPM_PHP__POOL_IDLE=2s")
	defer func() {
		if t.Failed() {
			time.Sleep(300 * time.Millisecond) // the log is flushed every 200ms
			t.Log(grepLines(p.out.String(), "WARN"), grepLines(p.out.String(), "ERROR"))
		}
	}()
	runAs := ""
	if os.Geteuid() == 0 {
		runAs = "run_as = \"nobody\"\n"
	}
	writeSite(t, sitesDir, "dave.test", "[php]\ndisable_functions = []\n"+runAs)
	a, b, d := probe(t, p.addr, "alice.test", ""), probe(t, p.addr, "bob.test", ""), probe(t, p.addr, "dave.test", "")
	for _, site := range []string{"alice.test", "bob.test", "dave.test"} {
		if masters := testutil.TopProcessesMatching("master process (" + filepath.Join(p.runDir, "pools", site) + "."); len(masters) != 1 {
			t.Errorf("%s: %d php-fpm masters of its own, want 1", site, len(masters))
		}
	}
	if a["exec"] != false || d["exec"] != true {
		t.Errorf("disable_functions: alice exec=%v, dave (overridden) exec=%v", a["exec"], d["exec"])
	}
	if b["memory_limit"] != "96M" {
		t.Errorf("bob's pool memory_limit %v", b["memory_limit"])
	}
	if runAs != "" && (d["user"] != "nobody" || a["user"] != "www-data") {
		t.Errorf("run_as: dave runs as %v, alice as %v", d["user"], a["user"])
	}
	other := probe(t, p.addr, "alice.test", "read="+filepath.Join(sitesDir, "bob.test", "secret.txt"))
	if other["read"] != false {
		t.Errorf("alice read bob's file in pool mode")
	}
	pools := func() string {
		_, m := get(t, "http://"+p.addr+"/metrics")
		for _, l := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(l, "ephpm_php_site_pools "); ok {
				return v
			}
		}
		return "?"
	}
	if n := pools(); n != "3" {
		t.Errorf("%s site pools running, want 3", n)
	}
	testutil.RetryUntil(t, 20*time.Second, func() error {
		if n := pools(); n != "0" {
			return fmt.Errorf("%s site pools still running after idle", n)
		}
		return nil
	})
	if m := probe(t, p.addr, "alice.test", ""); m["site"] != "alice.test" {
		t.Errorf("after reaping: %v", m)
	}
}
