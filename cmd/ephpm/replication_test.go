package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
	"github.com/ephpm/ephpm/sqlite"
)

const replToken = "e2e-replication-token-0123456789"

// The one-way delay between "regions" in the cluster tests.
const regionDelay = 50 * time.Millisecond

// region is one ephpm process of a three-node cluster on loopback.
type region struct {
	name     string
	base     string // its directory: sites/, data/
	sitesDir string
	repl     string // replication listener
	mysql    string
	env      []string
	p        *proc
}

// cluster builds frankfurt, tokyo and saopaulo; every node reaches every
// other through a DelayProxy. primaries maps a site to its primary region.
type cluster struct {
	t       testing.TB
	regions map[string]*region
	proxies map[[2]string]*testutil.DelayProxy // [from, to]
	tree    string                             // WordPress files
}

var clusterNames = []string{"frankfurt", "tokyo", "saopaulo"}

const writerPHP = `<?php
// Inserts n rows one statement at a time, printing each acknowledged id.
$m = new mysqli($_SERVER['EPHPM_DB_HOST'], $_SERVER['EPHPM_DB_USER'], $_SERVER['EPHPM_DB_PASSWORD'],
	$_SERVER['EPHPM_DB_NAME'], (int) $_SERVER['EPHPM_DB_PORT']);
$m->query("CREATE TABLE IF NOT EXISTS acks (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64), at DATETIME)");
$n = (int) ($_GET['n'] ?? 1);
for ($i = 0; $i < $n; $i++) {
	if (!$m->query("INSERT INTO acks (v, at) VALUES ('" . $m->real_escape_string($_GET['v'] ?? 'x') . "', NOW())")) {
		echo "error ", $m->errno, " ", $m->error, "\n";
		exit;
	}
	echo "ack ", $m->insert_id, " affected ", $m->affected_rows, "\n";
	flush();
}
`

const transientPHP = `<?php
// A GET whose PHP writes: WordPress stores a transient.
require __DIR__ . '/wp-load.php';
$v = 'v' . mt_rand();
set_transient('ephpm_probe', $v, 3600);
echo get_transient('ephpm_probe') === $v ? "stored $v" : "lost";
`

func newCluster(t testing.TB, primaries map[string]string) *cluster {
	return newClusterDelay(t, primaries, regionDelay)
}

const txPHP = `<?php
// A transaction, a duplicate key and a prepared statement, through mysqli.
mysqli_report(MYSQLI_REPORT_OFF);
$m = new mysqli($_SERVER['EPHPM_DB_HOST'], $_SERVER['EPHPM_DB_USER'], $_SERVER['EPHPM_DB_PASSWORD'],
	$_SERVER['EPHPM_DB_NAME'], (int) $_SERVER['EPHPM_DB_PORT']);
$t = 'tx_' . preg_replace('/[^a-z0-9]/', '', $_GET['t'] ?? 'x');
$out = [];
$m->query("CREATE TABLE $t (k VARCHAR(32) PRIMARY KEY, v INT)") or die("create: " . $m->error);
$m->begin_transaction();
$m->query("INSERT INTO $t (k, v) VALUES ('a', 1)");
$r = $m->query("SELECT v FROM $t WHERE k = 'a'");
$out['in_tx_read'] = $r ? (int) $r->fetch_row()[0] : null;
$m->query("INSERT INTO $t (k, v) VALUES ('a', 2)");
$out['dup_errno'] = $m->errno;
$out['dup_error'] = $m->error;
$m->rollback();
$r = $m->query("SELECT count(*) FROM $t WHERE k = 'a'");
$out['after_rollback'] = (int) $r->fetch_row()[0];
$m->begin_transaction();
$m->query("INSERT INTO $t (k, v) VALUES ('b', 7)");
$m->commit();
$r = $m->query("SELECT v FROM $t WHERE k = 'b'");
$out['after_commit'] = $r && ($row = $r->fetch_row()) ? (int) $row[0] : null;
$st = $m->prepare("INSERT INTO $t (k, v) VALUES (?, ?)");
$k = 'c'; $v = 42;
$st->bind_param('si', $k, $v);
$st->execute();
$out['prep_affected'] = $st->affected_rows;
echo json_encode($out);
`

const readerPHP = `<?php
// A read-only page: how many acknowledged rows this node's copy has.
$m = new mysqli($_SERVER['EPHPM_DB_HOST'], $_SERVER['EPHPM_DB_USER'], $_SERVER['EPHPM_DB_PASSWORD'],
	$_SERVER['EPHPM_DB_NAME'], (int) $_SERVER['EPHPM_DB_PORT']);
echo "rows ", $m->query("SELECT count(*) FROM acks")->fetch_row()[0];
`

const kvPHP = `<?php
// The site's KV keyspace on this node: set or get one key.
$r = new Redis();
$r->connect($_SERVER['EPHPM_KV_HOST'], (int) $_SERVER['EPHPM_KV_PORT']);
$r->auth([$_SERVER['EPHPM_KV_USER'], $_SERVER['EPHPM_KV_PASSWORD']]);
if (($_GET['op'] ?? '') === 'set') { $r->set('probe', 'cached'); }
echo json_encode($r->get('probe'));
`

func newClusterDelay(t testing.TB, primaries map[string]string, delay time.Duration) *cluster {
	testutil.NeedProgram(t, "php")
	c := &cluster{t: t, regions: map[string]*region{}, proxies: map[[2]string]*testutil.DelayProxy{}}
	c.tree = wordpressTree(t, false)
	for _, f := range []struct{ name, body string }{{"ephpm-w.php", writerPHP}, {"ephpm-transient.php", transientPHP},
		{"ephpm-tx.php", txPHP}, {"ephpm-kv.php", kvPHP}, {"ephpm-r.php", readerPHP}} {
		if err := os.WriteFile(filepath.Join(c.tree, f.name), []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := testutil.WorldReadableDir(t)
	for _, name := range clusterNames {
		r := &region{name: name, base: filepath.Join(base, name), repl: lowPort(t), mysql: lowPort(t)}
		r.sitesDir = filepath.Join(r.base, "sites")
		c.regions[name] = r
	}
	for _, from := range clusterNames {
		for _, to := range clusterNames {
			if from != to {
				c.proxies[[2]string{from, to}] = testutil.NewDelayProxy(t, c.regions[to].repl, delay)
			}
		}
	}
	for _, name := range clusterNames {
		r := c.regions[name]
		for site, primary := range primaries {
			toml := "[db.sqlite.replication]\nrole = \"primary\"\n"
			if primary != name {
				toml = fmt.Sprintf("[db.sqlite.replication]\nrole = \"replica\"\nprimary_grpc_url = \"http://%s\"\n", c.proxies[[2]string{name, primary}].Addr)
			}
			dir := filepath.Join(r.sitesDir, site)
			if err := copyDir(c.tree, dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "site.toml"), []byte(toml), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var peers []string
		for _, to := range clusterNames {
			if to != name {
				peers = append(peers, fmt.Sprintf("%q", "http://"+c.proxies[[2]string{name, to}].Addr))
			}
		}
		r.env = []string{
			"EPHPM_REPLICATION__PEERS=[" + strings.Join(peers, ",") + "]",
			"EPHPM_SERVER__SITES_DIR=" + r.sitesDir, "EPHPM_SERVER__DATA_DIR=" + filepath.Join(r.base, "data"),
			"EPHPM_DB_SQLITE_PROXY__ENABLED=true", "EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN=" + r.mysql,
			"EPHPM_REPLICATION__LISTEN=" + r.repl, "EPHPM_REPLICATION__AUTH_TOKEN=" + replToken,
			"EPHPM_REPLICATION__NODE=" + name, "EPHPM_PHP__WORKERS=3", "EPHPM_WP_DISABLE_CRON=1",
			"EPHPM_KV__ENABLED=true", "EPHPM_KV__LISTEN=" + freePort(t),
		}
		c.start(name)
	}
	return c
}

func (c *cluster) start(name string) {
	r := c.regions[name]
	r.p = startEphpm(c.t, r.base, r.env...)
}

// kill9 kills a region's process with SIGKILL and waits for it.
func (c *cluster) kill9(name string) {
	p := c.regions[name].p
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s did not die", name)
	}
}

// client is a browser of one site through one region: every host name
// resolves to that region.
func (c *cluster) client(region, site string) *wpClient {
	addr := c.regions[region].p.addr
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}
	c.t.Cleanup(tr.CloseIdleConnections)
	return &wpClient{t: c.t, base: "http://" + site, c: &http.Client{Jar: jar, Transport: tr, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *cluster) dbPath(region, site string) string {
	return filepath.Join(c.regions[region].base, "data", "sites", site+".db")
}

// converged waits until every region holds the same pages of site.
func (c *cluster) converged(site string) {
	c.t.Helper()
	testutil.RetryUntil(c.t, 60*time.Second, func() error {
		var first string
		for _, name := range clusterNames {
			h, n, err := sqlite.Hash(context.Background(), c.dbPath(name, site))
			if err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			if first == "" {
				first = h
			} else if h != first {
				return fmt.Errorf("%s differs (%d pages): %v", name, n, c.status(name))
			}
		}
		return nil
	})
}

func (c *cluster) status(region string) []map[string]any {
	req, _ := http.NewRequest("GET", "http://"+c.regions[region].repl+"/_ephpm/repl/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+replToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

func waitFor(t testing.TB, what string, f func() (bool, string)) {
	t.Helper()
	var last string
	testutil.RetryUntil(t, 60*time.Second, func() error {
		ok, s := f()
		last = s
		if !ok {
			return fmt.Errorf("%s: %.4000s", what, last)
		}
		return nil
	})
}

var postIDRe = regexp.MustCompile(`<string>(\d+)</string>`)

func TestReplicationWordPressThreeRegions(t *testing.T) {
	c := newCluster(t, map[string]string{"alice-blog.com": "frankfurt", "bobs-recipes.com": "tokyo"})

	// WordPress installs on each site's primary, through that region.
	alice := c.client("frankfurt", "alice-blog.com")
	alice.install("Alice Blog")
	bob := c.client("tokyo", "bobs-recipes.com")
	bob.install("Bob's Recipes")
	alice.login()
	bob.login()

	body := alice.xmlrpc("wp.newPost", "<int>1</int>", xs("admin"), xs("correct horse battery"),
		`<struct><member><name>post_title</name><value><string>Guten Tag from Frankfurt</string></value></member>`+
			`<member><name>post_content</name><value><string>Written in Frankfurt.</string></value></member>`+
			`<member><name>post_status</name><value><string>publish</string></value></member></struct>`)
	if !postIDRe.MatchString(body) {
		t.Fatalf("newPost: %s", body)
	}
	bob.xmlrpc("wp.newPost", "<int>1</int>", xs("admin"), xs("correct horse battery"),
		`<struct><member><name>post_title</name><value><string>Ramen from Tokyo</string></value></member>`+
			`<member><name>post_status</name><value><string>publish</string></value></member></struct>`)

	// Every region serves both sites' posts from its own copy.
	for _, region := range clusterNames {
		for site, title := range map[string]string{"alice-blog.com": "Guten Tag from Frankfurt", "bobs-recipes.com": "Ramen from Tokyo"} {
			cl := c.client(region, site)
			waitFor(t, region+" shows "+site, func() (bool, string) {
				resp, body := cl.req("GET", "/", nil, "", "")
				return resp.StatusCode == 200 && strings.Contains(body, title), fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("Location"), " ", c.status(region), grepLines(c.regions[region].p.out.String(), "replica"))
			})
		}
	}
	c.converged("alice-blog.com")
	c.converged("bobs-recipes.com")

	// An author in Tokyo saves a post on alice-blog.com: the request goes
	// whole to Frankfurt, and the same client sees it on its next request
	// to Tokyo.
	tokyoAlice := c.client("tokyo", "alice-blog.com")
	tokyoAlice.login()
	body = tokyoAlice.xmlrpc("wp.newPost", "<int>1</int>", xs("admin"), xs("correct horse battery"),
		`<struct><member><name>post_title</name><value><string>Konnichiwa via Tokyo</string></value></member>`+
			`<member><name>post_status</name><value><string>publish</string></value></member></struct>`)
	m := postIDRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("newPost via tokyo: %s", body)
	}
	u, _ := url.Parse("http://alice-blog.com/")
	var token string
	for _, ck := range tokyoAlice.c.Jar.Cookies(u) {
		if ck.Name == "ephpm_frame" {
			token = ck.Value
		}
	}
	if token == "" {
		t.Fatal("a write through a replica did not set the read-your-writes cookie")
	}
	code, page := tokyoAlice.get("/?p=" + m[1])
	if code != 200 || !strings.Contains(page, "Konnichiwa via Tokyo") {
		t.Fatalf("the author's next read on tokyo does not show the post: %d %.500s", code, page)
	}
	if code, page := c.client("frankfurt", "alice-blog.com").get("/?p=" + m[1]); code != 200 || !strings.Contains(page, "Konnichiwa") {
		t.Fatalf("the post is not on the primary: %d", code)
	}

	// A GET on a replica whose PHP writes: statement forwarding.
	code, page = c.client("saopaulo", "alice-blog.com").get("/ephpm-transient.php")
	if code != 200 || !strings.HasPrefix(page, "stored ") {
		t.Fatalf("transient on a replica: %d %.500s", code, page)
	}
	code, page = c.client("saopaulo", "alice-blog.com").get("/ephpm-w.php?n=3&v=sp")
	if code != 200 || strings.Count(page, "ack ") != 3 || !strings.Contains(page, "affected 1") {
		t.Fatalf("inserts forwarded from a replica: %d %.500s", code, page)
	}
	// A transaction on a replica runs on the primary, pinned to one
	// session there: it reads its own writes, gets MySQL's errors, rolls
	// back; a prepared statement carries its parameters.
	code, page = c.client("saopaulo", "alice-blog.com").get("/ephpm-tx.php?t=sp")
	var tx struct {
		InTxRead      *int   `json:"in_tx_read"`
		DupErrno      int    `json:"dup_errno"`
		DupError      string `json:"dup_error"`
		AfterRollback int    `json:"after_rollback"`
		AfterCommit   *int   `json:"after_commit"`
		PrepAffected  int    `json:"prep_affected"`
	}
	if err := json.Unmarshal([]byte(page), &tx); err != nil || code != 200 {
		t.Fatalf("transaction on a replica: %d %.500s", code, page)
	}
	if tx.InTxRead == nil || *tx.InTxRead != 1 || tx.DupErrno != 1062 || tx.AfterRollback != 0 ||
		tx.AfterCommit == nil || *tx.AfterCommit != 7 || tx.PrepAffected != 1 {
		t.Fatalf("transaction on a replica: %s", page)
	}

	// The replica's object cache for a site is dropped when the site's
	// database changes underneath it.
	kv := c.client("tokyo", "alice-blog.com")
	if _, page := kv.get("/ephpm-kv.php?op=set"); page != `"cached"` {
		t.Fatalf("kv set on tokyo: %s", page)
	}
	c.acks("frankfurt", "alice-blog.com", 1, 0, nil)
	waitFor(t, "tokyo's cache flushed after applying", func() (bool, string) {
		_, page := kv.get("/ephpm-kv.php")
		return page == "false", page
	})

	st := c.status("saopaulo")
	var fwd float64
	for _, s := range st {
		if s["site"] == "alice-blog.com" {
			fwd = s["forwarded_statements"].(float64)
		}
	}
	if fwd < 4 {
		t.Fatalf("saopaulo forwarded %v statements, want ≥ 4: %v", fwd, st)
	}
	c.converged("alice-blog.com")

	// Requests without the token are refused on the replication port.
	resp, err := http.Get("http://" + c.regions["frankfurt"].repl + "/_ephpm/repl/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status without token: %s", resp.Status)
	}

	// libSQL clients reach a site on its primary's replication listener
	// with the site's token: Hrana queries, an embedded replica that syncs
	// the whole WordPress database and delegates a write.
	libsqlClients(t, c, "frankfurt", "alice-blog.com")
	// The same clients on a replica node: reads are served there, writes,
	// transactions and the embedded replica's protocol go to frankfurt.
	libsqlClients(t, c, "tokyo", "alice-blog.com")

	// /metrics on a replica carries the replication gauges.
	_, metrics := get(t, "http://"+c.regions["tokyo"].p.addr+"/metrics")
	for _, want := range []string{`ephpm_replication_role{role="replica",site="alice-blog.com"} 1`, `ephpm_replication_lag_frames{site="alice-blog.com"}`, `ephpm_replication_forwarded_requests_total{site="alice-blog.com"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// `ephpm db status` lists the replicated sites.
	cfg := filepath.Join(t.TempDir(), "ephpm.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[replication]\nlisten = %q\nauth_token = %q\n", c.regions["tokyo"].repl, replToken)), 0o644)
	if code, out := run(t, "db", "status", "--config", cfg); code != 0 || !strings.Contains(out, "alice-blog.com") || !strings.Contains(out, "replica") || !strings.Contains(out, "bobs-recipes.com") {
		t.Fatalf("db status: %d %s", code, out)
	}
}

// acks runs the writer script on a region and returns the ids it
// acknowledged before the response ended (or the process died).
func (c *cluster) acks(region, site string, n int, stopAfter int, onStop func()) []int {
	cl := c.client(region, site)
	req, _ := http.NewRequest("GET", cl.base+"/ephpm-w.php?n="+strconv.Itoa(n), nil)
	resp, err := cl.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ids []int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var id int
		if _, err := fmt.Sscanf(sc.Text(), "ack %d", &id); err == nil {
			ids = append(ids, id)
			if len(ids) == stopAfter && onStop != nil {
				onStop()
				onStop = nil
			}
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return ids
}

func (c *cluster) rows(region, site string, ids []int) error {
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: c.dbPath(region, site), ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	for _, id := range ids {
		var n int
		if err := db.Reader().QueryRow("SELECT count(*) FROM acks WHERE id = ?", id).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("%s: acknowledged row %d missing (%v)", region, id, err)
		}
	}
	return nil
}

func TestReplicationCrashes(t *testing.T) {
	c := newCluster(t, map[string]string{"alice-blog.com": "frankfurt"})
	site := "alice-blog.com"
	if ids := c.acks("frankfurt", site, 20, 0, nil); len(ids) != 20 {
		t.Fatalf("writer: %v", ids)
	}
	c.converged(site)
	t.Log("converged after the first writes")

	// A replica killed mid-stream resumes from its position: no snapshot.
	var acked []int
	acked = append(acked, c.acks("frankfurt", site, 200, 50, func() { c.kill9("tokyo") })...)
	c.start("tokyo")
	c.converged(site)
	if out := c.regions["tokyo"].p.out.String(); strings.Contains(out, "bootstrapping") {
		t.Fatalf("tokyo re-bootstrapped instead of resuming:\n%s", grepLines(out, "replica"))
	}
	for _, s := range c.status("tokyo") {
		if s["site"] == site && s["transactions_applied"].(float64) > 200 {
			t.Fatalf("tokyo replayed %v transactions after the restart", s["transactions_applied"])
		}
	}

	// The primary killed during a write load: every acknowledged write is
	// there after its restart, and every region converges to its pages.
	acked = append(acked, c.acks("frankfurt", site, 400, 80, func() { c.kill9("frankfurt") })...)
	// With the primary down, replicas keep serving reads from their copy;
	// writes fail cleanly instead of landing on a replica.
	tokyo := c.client("tokyo", site)
	if code, body := tokyo.get("/wp-login.php?action=lostpassword&probe=1"); code != 503 {
		t.Fatalf("a write path with the primary down: %d %.200s", code, body)
	}
	if code, body := tokyo.get("/ephpm-r.php"); code != 200 || !strings.HasPrefix(body, "rows ") {
		t.Fatalf("replica read with the primary down: %d %.200s", code, body)
	}
	// A write statement fails with a MySQL error, nothing is written locally.
	if code, body := tokyo.get("/ephpm-w.php?n=1"); code == 200 && strings.Contains(body, "ack ") {
		t.Fatalf("a write succeeded on a replica with the primary down: %s", body)
	}
	if err := c.rows("tokyo", site, acked[:len(acked)/2]); err != nil {
		t.Fatalf("tokyo's copy while the primary is down: %v", err)
	}
	c.start("frankfurt")
	if err := c.rows("frankfurt", site, acked); err != nil {
		t.Fatal(err)
	}
	c.converged(site)
	for _, region := range clusterNames {
		if err := c.rows(region, site, acked); err != nil {
			t.Fatal(err)
		}
	}

	// The primary's log is reset (lost, or the database restored from a
	// backup): replicas bootstrap again instead of diverging.
	before := ""
	for _, s := range c.status("saopaulo") {
		if s["site"] == site {
			before, _ = s["log_id"].(string)
		}
	}
	c.kill9("frankfurt")
	if err := os.RemoveAll(c.dbPath("frankfurt", site) + "-replog"); err != nil {
		t.Fatal(err)
	}
	c.start("frankfurt")
	c.acks("frankfurt", site, 5, 0, nil)
	c.converged(site)
	for _, s := range c.status("saopaulo") {
		if s["site"] == site && s["log_id"] == before {
			t.Fatalf("saopaulo still follows the old log %s", before)
		}
	}
}

func libsqlClients(t *testing.T, c *cluster, region, site string) {
	dir := testutil.NPMInstall(t, "../../libsql/testdata/npm", "libsql", "@libsql/client")
	cfg := filepath.Join(t.TempDir(), "ephpm.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[replication]\nauth_token = %q\n", replToken)), 0o644)
	code, tok := run(t, "db", "token", "--site", site, "--config", cfg)
	if code != 0 {
		t.Fatalf("db token: %s", tok)
	}
	cmd := exec.Command("node", "ephpm-site.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "URL=http://"+c.regions[region].repl, "TOKEN="+strings.TrimSpace(tok),
		"DBFILE="+filepath.Join(t.TempDir(), "embedded.db"), "KEY=ephpm_libsql_"+region)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var res struct {
		Blogname string   `json:"blogname"`
		Posts    []string `json:"posts"`
		Changes  int      `json:"changes"`
		ReadBack *string  `json:"readBack"`
		Hrana    int      `json:"hranaChanges"`
		HranaTx  string   `json:"hranaTx"`
		Error    string   `json:"error"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.Error != "" {
		t.Fatalf("libsql clients: %v %s", err, out)
	}
	if res.Blogname != "Alice Blog" || !strings.Contains(strings.Join(res.Posts, "|"), "Guten Tag from Frankfurt") ||
		res.Changes != 1 || res.ReadBack == nil || *res.ReadBack != "delegated" || res.Hrana != 1 || res.HranaTx != "hrana-tx" {
		t.Fatalf("libsql clients saw %s", out)
	}
	// The delegated write went through the primary into the log: every
	// region gets it.
	c.converged(site)
	// A wrong token is refused.
	cmd = exec.Command("node", "ephpm-site.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "URL=http://"+c.regions[region].repl, "TOKEN="+site+".forged",
		"DBFILE="+filepath.Join(t.TempDir(), "embedded.db"))
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "error") {
		t.Fatalf("a forged token was accepted: %s", out)
	}
}
