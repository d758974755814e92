package main_test

// Issue 12: a hostile tenant on a hosting node. Each test performs one
// attack with the tenant's own PHP writing its own site directory (as
// WordPress does, the directory belongs to www-data) and asserts that it
// fails. ephpm runs as root, PHP as www-data.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
)

// tenantPHP is the hostile tenant's toolbox.
const tenantPHP = `<?php
header('Content-Type: application/json');
$op = $_GET['op'] ?? '';
$out = ['op' => $op];
switch ($op) {
case 'write':   // write a file of the site (site.toml, say)
	$out['ok'] = file_put_contents(__DIR__ . '/' . $_GET['file'], file_get_contents('php://input')) !== false;
	break;
case 'symlink':
	$out['ok'] = @symlink($_GET['target'], __DIR__ . '/' . $_GET['link']);
	break;
case 'mkdir':
	$out['ok'] = @mkdir(__DIR__ . '/' . $_GET['dir'], 0777, true);
	break;
case 'ini':     // the settings this request runs with
	foreach (['max_input_vars', 'default_charset', 'open_basedir', 'allow_url_include', 'auto_prepend_file', 'ffi.enable', 'memory_limit'] as $k) {
		$out[$k] = ini_get($k);
	}
	$out['prepended'] = isset($GLOBALS['pwned']);
	break;
case 'include':       // another tenant's script, through OPcache
	$f = $_GET['path'];
	$out['read'] = @file_get_contents($f) !== false;
	$out['include_once'] = (@include_once $f) !== false;
	$out['include'] = (@include $f) !== false;
	$out['secret'] = $secret ?? null;
	break;
case 'opcache':
	$out['status'] = @opcache_get_status(true);
	$out['status'] = is_array($out['status']) ? array_keys($out['status']['scripts'] ?? []) : $out['status'];
	$out['invalidate'] = @opcache_invalidate($_GET['path'], true);
	break;
}
echo json_encode($out);
`

// needRoot: the tenant boundary is a Unix one (PHP runs as www-data).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
			t.Fatal("tenant isolation tests need root (PHP runs as www-data)")
		}
		t.Skip("needs root")
	}
}

// tenantSite makes a site whose directory belongs to www-data, as a
// host sets it up for WordPress, with the tenant's toolbox in it.
func tenantSite(t *testing.T, sitesDir, name string) string {
	t.Helper()
	dir := writeSite(t, sitesDir, name, "")
	if err := os.WriteFile(filepath.Join(dir, "tenant.php"), []byte(tenantPHP), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup("www-data")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil || filepath.Base(p) == "site.toml" {
			return err // the operator's file stays the operator's
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// tenantDo runs one op of the toolbox on host, with an optional body.
func tenantDo(t *testing.T, addr, host string, q url.Values, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/tenant.php?"+q.Encode(), strings.NewReader(body))
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s %v: %d: %v", host, q, resp.StatusCode, err)
	}
	return m
}

// operatorSiteToml writes site.toml as the operator does: root, 0644.
func operatorSiteToml(t *testing.T, dir, body string) {
	t.Helper()
	p := filepath.Join(dir, "site.toml")
	os.Remove(p)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitStatus(t *testing.T, addr, host, path string, want int) {
	t.Helper()
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if code, body := hostGet(t, addr, host, path); code != want {
			return fmt.Errorf("%s%s: %d, want %d: %.200s", host, path, code, want, body)
		}
		return nil
	})
}

// recorder is a listener that notes every request sent to it.
type recorder struct {
	addr string
	mu   sync.Mutex
	got  []string
}

func newRecorder(t *testing.T) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				r.mu.Lock()
				r.got = append(r.got, string(buf[:n]))
				r.mu.Unlock()
			}()
		}
	}()
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// TestTenantSiteTomlFromPHPIsRefused: a site.toml the tenant's PHP
// writes (naming its own "primary") is refused, and the node never sends
// the cluster token, a visitor's cookies or body to that address.
func TestTenantSiteTomlFromPHPIsRefused(t *testing.T) {
	needRoot(t)
	rec := newRecorder(t)
	p, sitesDir := startSitesNode(t, "EPHPM_REPLICATION__LISTEN="+freePort(t), "EPHPM_REPLICATION__AUTH_TOKEN="+replToken)
	tenantSite(t, sitesDir, "alice.test")
	evil := fmt.Sprintf("[db.sqlite.replication]\nrole = \"replica\"\nprimary_grpc_url = \"http://%s\"\n[server]\naliases = [\"evil.test\"]\n", rec.addr)
	if m := tenantDo(t, p.addr, "alice.test", url.Values{"op": {"write"}, "file": {"site.toml"}}, evil); m["ok"] != true {
		t.Fatalf("the tenant could not write its site.toml: %v", m)
	}
	waitStatus(t, p.addr, "alice.test", "/", 503)
	// A visitor's write request with a cookie: nothing may leave the node.
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/wp-login.php", strings.NewReader("log=admin&pwd=hunter2"))
	req.Host = "alice.test"
	req.Header.Set("Cookie", "wordpress_logged_in=visitor-secret")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if code, _ := hostGet(t, p.addr, "evil.test", "/"); code != 404 {
		t.Errorf("alias from the tenant's site.toml served: %d", code)
	}
	time.Sleep(2*time.Second + 500*time.Millisecond) // a scan and a recheck
	if got := rec.requests(); len(got) != 0 {
		t.Fatalf("the node connected to the tenant's address: %q", got)
	}
	if !strings.Contains(p.out.String(), "not trusted") {
		t.Errorf("no log line says why the site.toml is refused")
	}
	// The operator's own file (root, 0644) is believed.
	operatorSiteToml(t, filepath.Join(sitesDir, "alice.test"), "[php]\nmemory_limit = \"64M\"\n")
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if m := tenantDo(t, p.addr, "alice.test", url.Values{"op": {"ini"}}, ""); m["memory_limit"] != "64M" {
			return fmt.Errorf("operator's site.toml: %v", m)
		}
		return nil
	})
	// A symlink in its place (to a file the operator wrote) is refused.
	if err := os.Remove(filepath.Join(sitesDir, "alice.test", "site.toml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(sitesDir, "bob.test", "site.toml"), filepath.Join(sitesDir, "alice.test", "site.toml")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, p.addr, "alice.test", "/", 503)
}

// TestTenantINIOverridesDoNotCrossSites: one site's ini_overrides never
// show up in another site's requests on the same shared workers, and
// settings that grant power are refused even from the operator's file.
func TestTenantINIOverridesDoNotCrossSites(t *testing.T) {
	needRoot(t)
	root := testutil.WorldReadableDir(t)
	if err := os.WriteFile(filepath.Join(root, "index.php"), []byte(`<?php echo "fallback ", ini_get('open_basedir');`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, sitesDir := startSitesNode(t, "EPHPM_SERVER__DOCUMENT_ROOT="+root)
	alice := tenantSite(t, sitesDir, "alice.test")
	bob := tenantSite(t, sitesDir, "bob.test")
	operatorSiteToml(t, alice, "[php]\nini_overrides = { max_input_vars = \"5000\", default_charset = \"ISO-8859-1\" }\n")
	operatorSiteToml(t, bob, "")
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if m := tenantDo(t, p.addr, "alice.test", url.Values{"op": {"ini"}}, ""); m["max_input_vars"] != "5000" {
			return fmt.Errorf("alice's override not applied: %v", m)
		}
		return nil
	})
	// Two workers: alternating, every worker serves both sites.
	for i := 0; i < 8; i++ {
		a := tenantDo(t, p.addr, "alice.test", url.Values{"op": {"ini"}}, "")
		b := tenantDo(t, p.addr, "bob.test", url.Values{"op": {"ini"}}, "")
		if a["max_input_vars"] != "5000" || a["default_charset"] != "ISO-8859-1" {
			t.Fatalf("alice lost her settings: %v", a)
		}
		if b["max_input_vars"] != "1000" || b["default_charset"] != "UTF-8" || strings.Contains(b["open_basedir"].(string), "alice") {
			t.Fatalf("alice's settings reached bob: %v", b)
		}
		code, body := hostGet(t, p.addr, "nosuch.test", "/")
		if code != 200 || !strings.HasPrefix(body, "fallback "+root+"/") {
			t.Fatalf("fallback document_root after alice: %d %q", code, body)
		}
	}
	// Settings beyond the allowlist, and values that inject a directive.
	payload := "data://text/plain;base64,PD9waHAgJEdMT0JBTFNbJ3B3bmVkJ10gPSAxOw=="
	for _, hostile := range []string{
		"[php]\nini_overrides = { allow_url_include = \"1\", auto_prepend_file = \"" + payload + "\" }\n",
		"[php]\nini_overrides = { \"ffi.enable\" = \"true\" }\n",
		"[php]\nini_overrides = { html_errors = \"1\\ropen_basedir=/\" }\n",
		"[php]\nini_overrides = { auto_prepend_file = \"" + bob + "/tenant.php\" }\n",
		"[php]\nini_overrides = { \"opcache.enable\" = \"0\" }\n",
	} {
		operatorSiteToml(t, alice, hostile)
		waitStatus(t, p.addr, "alice.test", "/tenant.php?op=ini", 503)
		for i := 0; i < 4; i++ {
			if b := tenantDo(t, p.addr, "bob.test", url.Values{"op": {"ini"}}, ""); b["prepended"] != false || b["allow_url_include"] == "1" ||
				strings.Contains(b["open_basedir"].(string), "alice") || b["open_basedir"] == "/" {
				t.Fatalf("hostile settings reached bob: %v", b)
			}
		}
	}
}

// TestTenantDBPathCannotReachAnotherDatabase: the symlink chain of the
// issue, built by the tenant's PHP, gets no other site's database.
func TestTenantDBPathCannotReachAnotherDatabase(t *testing.T) {
	needRoot(t)
	p, sitesDir := startSitesNode(t)
	data := filepath.Join(filepath.Dir(sitesDir), "data")
	alice := tenantSite(t, sitesDir, "alice.test")
	if m := probe(t, p.addr, "bob.test", "db=x"); m["db_row"] != "bob.test" {
		t.Fatalf("bob's database: %v", m)
	}
	// The tenant's symlinks: tmplink -> a/b/c/d/e/f, bob.db -> tmplink/../../../../data/sites/bob.test.db
	for _, q := range []url.Values{
		{"op": {"mkdir"}, "dir": {"a/b/c/d/e/f"}},
		{"op": {"symlink"}, "target": {"a/b/c/d/e/f"}, "link": {"tmplink"}},
		{"op": {"symlink"}, "target": {"tmplink/../../../../data/sites/bob.test.db"}, "link": {"bob.db"}},
	} {
		if m := tenantDo(t, p.addr, "alice.test", q, ""); m["ok"] != true {
			t.Fatalf("%v: %v", q, m)
		}
	}
	// Even the operator cannot put a database where the tenant writes.
	for _, path := range []string{filepath.Join(alice, "bob.db"), "../bob.test.db", filepath.Join(data, "sites", "bob.test.db")} {
		operatorSiteToml(t, alice, fmt.Sprintf("[db.sqlite]\npath = %q\n", path))
		waitStatus(t, p.addr, "alice.test", "/", 503)
	}
	// A symlink inside the operator's directory is not followed either.
	own := filepath.Join(data, "sites", "alice.test")
	if err := os.MkdirAll(own, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "sites"), filepath.Join(own, "db")); err != nil {
		t.Fatal(err)
	}
	operatorSiteToml(t, alice, "[db.sqlite]\npath = \"db/bob.test.db\"\n")
	waitStatus(t, p.addr, "alice.test", "/", 503)
	// Where the operator may put it, it works, and it is alice's own.
	operatorSiteToml(t, alice, "[db.sqlite]\npath = \"main.db\"\n")
	waitStatus(t, p.addr, "alice.test", "/", 200)
	if m := probe(t, p.addr, "alice.test", "db=bob.test"); m["db_row"] != "alice.test" || m["select_other"] == 0.0 || m["qualified_other"] == 0.0 {
		t.Fatalf("alice's database: %v", m)
	}
	if _, err := os.Stat(filepath.Join(own, "main.db")); err != nil {
		t.Fatalf("alice's database is not where the operator put it: %v", err)
	}
	if m := probe(t, p.addr, "bob.test", "db=x"); m["db_row"] != "bob.test" {
		t.Fatalf("bob's database changed: %v", m)
	}
}

// TestTenantOPcacheNotShared: once bob's config is in OPcache, alice
// can neither include it nor list or evict bob's cached scripts.
func TestTenantOPcacheNotShared(t *testing.T) {
	needRoot(t)
	p, sitesDir := startSitesNode(t)
	tenantSite(t, sitesDir, "alice.test")
	bob := tenantSite(t, sitesDir, "bob.test")
	cfg := filepath.Join(bob, "config.php")
	if err := os.WriteFile(cfg, []byte(`<?php $secret = 'bob-db-password';`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bob, "page.php"), []byte(`<?php require_once __DIR__ . '/config.php'; include __DIR__ . '/config.php'; echo $secret === 'bob-db-password' ? 'ok' : 'no';`), 0o644); err != nil {
		t.Fatal(err)
	}
	// OPcache does not cache a file changed in the last 2 s
	// (opcache.file_update_protection): bob's files are older.
	old := time.Now().Add(-time.Minute)
	for _, f := range []string{cfg, filepath.Join(bob, "page.php")} {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6; i++ { // every worker has it cached
		if code, body := hostGet(t, p.addr, "bob.test", "/page.php"); code != 200 || body != "ok" {
			t.Fatalf("bob's page: %d %q", code, body)
		}
	}
	// Bob's scripts are cached (in files, opened through open_basedir).
	var cached []string
	filepath.Walk(filepath.Join(p.runDir, "opcache"), func(f string, _ os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(f, cfg+".bin") {
			cached = append(cached, f)
		}
		return nil
	})
	if len(cached) == 0 {
		t.Fatalf("bob's config.php is not in the OPcache file cache")
	}
	for i := 0; i < 4; i++ {
		m := tenantDo(t, p.addr, "alice.test", url.Values{"op": {"include"}, "path": {cfg}}, "")
		if m["read"] != false || m["include_once"] != false || m["include"] != false || m["secret"] != nil {
			t.Fatalf("alice reached bob's cached script: %v", m)
		}
		m = tenantDo(t, p.addr, "alice.test", url.Values{"op": {"opcache"}, "path": {cfg}}, "")
		if m["status"] != false || m["invalidate"] != false {
			t.Fatalf("alice used the OPcache API on bob's scripts: %v", m)
		}
	}
	if code, body := hostGet(t, p.addr, "bob.test", "/page.php"); code != 200 || body != "ok" {
		t.Fatalf("bob's page after alice: %d %q", code, body)
	}
}

// TestTenantAliasTakeover: an alias never takes another site's name,
// whether or not that site is loaded, and a name claimed twice serves
// neither.
func TestTenantAliasTakeover(t *testing.T) {
	needRoot(t)
	base := testutil.WorldReadableDir(t)
	sitesDir := filepath.Join(base, "sites")
	writeSite(t, sitesDir, "alice.test", "[server]\naliases = [\"bob.test\", \"shared.test\", \"www.alice.test\"]\n")
	writeSite(t, sitesDir, "bob.test", "[server]\naliases = [\"shared.test\"]\n")
	cwd, _ := filepath.Abs("testdata/site")
	// A fresh node: bob.test is not loaded when its name is first asked.
	p := startEphpm(t, cwd, "EPHPM_SERVER__SITES_DIR="+sitesDir, "EPHPM_SERVER__DATA_DIR="+filepath.Join(base, "data"))
	if m := probe(t, p.addr, "bob.test", ""); m["site"] != "bob.test" {
		t.Fatalf("Host bob.test served %v", m["site"])
	}
	if m := probe(t, p.addr, "www.alice.test", ""); m["site"] != "alice.test" {
		t.Fatalf("alice's own alias served %v", m["site"])
	}
	if code, body := hostGet(t, p.addr, "shared.test", "/"); code != 404 {
		t.Fatalf("an alias two sites claim: %d %.100s", code, body)
	}
	// A site directory made after the scan wins over an alias at once.
	writeSite(t, sitesDir, "carol.test", "")
	operatorSiteToml(t, filepath.Join(sitesDir, "alice.test"), "[server]\naliases = [\"dave.test\"]\n")
	testutil.RetryUntil(t, 10*time.Second, func() error {
		if code, body := hostGet(t, p.addr, "dave.test", "/"); code != 200 || !strings.Contains(body, `"site":"alice.test"`) {
			return fmt.Errorf("dave.test: %d %.100s", code, body)
		}
		return nil
	})
	writeSite(t, sitesDir, "dave.test", "")
	if m := probe(t, p.addr, "dave.test", ""); m["site"] != "dave.test" {
		t.Fatalf("a new site's own name served %v", m["site"])
	}
	testutil.RetryUntil(t, 5*time.Second, func() error {
		if !strings.Contains(p.out.String(), "alias refused") {
			return fmt.Errorf("no log line for the refused aliases")
		}
		return nil
	})
}
