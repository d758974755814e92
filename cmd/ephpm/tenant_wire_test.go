package main_test

// Regression tests for issue 12 (tenant isolation), on the wire: who a
// routed write comes from, who may read /metrics, connections that never
// log in, and the read-your-writes cookie. Real ephpm processes, real
// php-fpm.

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ephpm/ephpm/internal/testutil"
)

// whoPHP shows what PHP believes about the client; on POST it also
// writes a note, so the response carries the site's log position.
const whoPHP = `<?php
header('Content-Type: application/json');
$out = [];
foreach (['REMOTE_ADDR', 'HTTPS', 'REQUEST_SCHEME', 'SERVER_PORT', 'HTTP_X_FORWARDED_FOR', 'HTTP_X_EPHPM_CLIENT_ADDR'] as $k) {
	$out[$k] = $_SERVER[$k] ?? null;
}
echo json_encode($out);
`

// notePHP writes a note on POST and shows the last one on GET.
const notePHP = `<?php
mysqli_report(MYSQLI_REPORT_OFF);
$m = new mysqli(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), (int) getenv('EPHPM_DB_PORT'));
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
	$m->query("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY AUTO_INCREMENT, v VARCHAR(64))");
	$m->query("INSERT INTO notes (v) VALUES ('" . $m->real_escape_string($_POST['v'] ?? '') . "')") or die('error ' . $m->error);
	echo 'ok ', $m->insert_id;
	exit;
}
$r = $m->query("SELECT v FROM notes ORDER BY id DESC LIMIT 1");
echo $r ? 'last ' . ($r->fetch_row()[0] ?? '') : 'none';
`

// credsPHP hands the site's database and KV credentials to the test.
const credsPHP = `<?php
echo json_encode(['db_user' => getenv('EPHPM_DB_USER'), 'db_pass' => getenv('EPHPM_DB_PASSWORD'), 'db_name' => getenv('EPHPM_DB_NAME'),
	'kv_user' => getenv('EPHPM_KV_USER'), 'kv_pass' => getenv('EPHPM_KV_PASSWORD')]);
`

// wireNode is one ephpm process of a two-node cluster.
type wireNode struct {
	p    *proc
	repl string
}

// startWireCluster runs frankfurt (the primary of the sites) and tokyo
// (their replica, with extra environment), on loopback, without delay.
func startWireCluster(t *testing.T, sites []string, tokyoEnv ...string) (frankfurt, tokyo *wireNode) {
	t.Helper()
	testutil.NeedProgram(t, "php")
	base := testutil.WorldReadableDir(t)
	nodes := map[string]*wireNode{"frankfurt": {repl: freePort(t)}, "tokyo": {repl: freePort(t)}}
	for _, name := range []string{"frankfurt", "tokyo"} {
		n := nodes[name]
		dir := filepath.Join(base, name)
		sitesDir := filepath.Join(dir, "sites")
		for _, site := range sites {
			sd := filepath.Join(sitesDir, site)
			if err := os.MkdirAll(sd, 0o755); err != nil {
				t.Fatal(err)
			}
			toml := "[db.sqlite.replication]\nrole = \"primary\"\n"
			if name == "tokyo" {
				toml = fmt.Sprintf("[db.sqlite.replication]\nrole = \"replica\"\nprimary_grpc_url = \"http://%s\"\n", nodes["frankfurt"].repl)
			}
			for f, body := range map[string]string{"who.php": whoPHP, "note.php": notePHP, "site.toml": toml} {
				if err := os.WriteFile(filepath.Join(sd, f), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		env := []string{
			"EPHPM_SERVER__SITES_DIR=" + sitesDir, "EPHPM_SERVER__DATA_DIR=" + filepath.Join(dir, "data"),
			"EPHPM_DB_SQLITE_PROXY__ENABLED=true", "EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN=" + freePort(t),
			"EPHPM_REPLICATION__LISTEN=" + n.repl, "EPHPM_REPLICATION__AUTH_TOKEN=" + replToken,
			"EPHPM_REPLICATION__NODE=" + name,
			fmt.Sprintf("EPHPM_REPLICATION__PEERS=[%q]", "http://"+nodes["frankfurt"].repl),
		}
		if name == "tokyo" {
			env = append(env, tokyoEnv...)
		}
		n.p = startEphpm(t, dir, env...)
	}
	return nodes["frankfurt"], nodes["tokyo"]
}

// send makes one request to addr with a Host and headers ("Name",
// "value", ...), without following redirects.
func send(t *testing.T, c *http.Client, method, addr, host, path string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func jsonMap(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %v: %.500s", err, body)
	}
	return m
}

// accessLines are a node's access-log lines for a path.
func accessLines(p *proc, path string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(p.out.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != "access" {
			continue
		}
		h, _ := m["http"].(map[string]any)
		if h != nil && strings.HasPrefix(fmt.Sprint(h["uri"]), path) {
			out = append(out, h)
		}
	}
	return out
}

// TestTenantRoutedWriteKeepsClientIdentity: behind a trusted proxy, a
// write a replica routes to the primary runs there with the client's
// address and scheme (not the proxy's, not plain HTTP), and the
// primary's access log names the client; a client talking to the
// primary directly cannot claim another address or HTTPS.
func TestTenantRoutedWriteKeepsClientIdentity(t *testing.T) {
	frankfurt, tokyo := startWireCluster(t, []string{"alice.test"}, `EPHPM_SERVER__TRUSTED_PROXIES=["127.0.0.1"]`)
	_, tokyoPort, _ := net.SplitHostPort(tokyo.p.addr)
	_, frankfurtPort, _ := net.SplitHostPort(frankfurt.p.addr)

	// Through the trusted proxy (this test, on 127.0.0.1) to tokyo.
	resp, body := send(t, nil, "POST", tokyo.p.addr, "alice.test", "/who.php?routed=1", url.Values{"a": {"1"}},
		"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https")
	if resp.StatusCode != 200 {
		t.Fatalf("routed POST: %d %s", resp.StatusCode, body)
	}
	m := jsonMap(t, body)
	for k, v := range map[string]any{"REMOTE_ADDR": "203.0.113.7", "HTTPS": "on", "REQUEST_SCHEME": "https", "SERVER_PORT": tokyoPort,
		"HTTP_X_FORWARDED_FOR": nil, "HTTP_X_EPHPM_CLIENT_ADDR": nil} {
		if m[k] != v {
			t.Errorf("PHP on the primary: %s = %#v, want %#v", k, m[k], v)
		}
	}
	// It ran on frankfurt, whose access log names the client and tokyo.
	waitFor(t, "frankfurt's access log", func() (bool, string) {
		lines := accessLines(frankfurt.p, "/who.php?routed=1")
		return len(lines) == 1 && lines[0]["remote"] == "203.0.113.7" && lines[0]["via"] == "tokyo" && lines[0]["peer"] == nil, fmt.Sprint(lines)
	})
	waitFor(t, "tokyo's access log", func() (bool, string) {
		lines := accessLines(tokyo.p, "/who.php?routed=1")
		return len(lines) == 1 && lines[0]["remote"] == "203.0.113.7" && strings.HasPrefix(fmt.Sprint(lines[0]["peer"]), "127.0.0.1:"), fmt.Sprint(lines)
	})

	// Straight to the primary, which trusts no proxy: forged forwarding
	// headers, ephpm's own included, are not believed.
	forged := []string{"X-Forwarded-For", "203.0.113.9", "X-Forwarded-Proto", "https",
		"X-Ephpm-Forwarded", "tokyo", "X-Ephpm-Client-Addr", "203.0.113.9:1", "X-Ephpm-Proto", "https", "X-Ephpm-Server-Port", "443"}
	resp, body = send(t, nil, "POST", frankfurt.p.addr, "alice.test", "/who.php?direct=1", url.Values{"a": {"1"}}, forged...)
	if resp.StatusCode != 200 {
		t.Fatalf("direct POST: %d %s", resp.StatusCode, body)
	}
	m = jsonMap(t, body)
	for k, v := range map[string]any{"REMOTE_ADDR": "127.0.0.1", "HTTPS": nil, "REQUEST_SCHEME": "http", "SERVER_PORT": frankfurtPort} {
		if m[k] != v {
			t.Errorf("direct request with forged headers: %s = %#v, want %#v", k, m[k], v)
		}
	}
	waitFor(t, "frankfurt's access log of the direct request", func() (bool, string) {
		lines := accessLines(frankfurt.p, "/who.php?direct=1")
		return len(lines) == 1 && strings.HasPrefix(fmt.Sprint(lines[0]["remote"]), "127.0.0.1:") && lines[0]["via"] == nil, fmt.Sprint(lines)
	})
	// On the replication listener the same headers need the cluster token.
	for _, auth := range []string{"", "Bearer wrong-token-0123456789abcdef"} {
		hdr := append([]string{"X-Ephpm-Auth", auth}, forged...)
		if resp, body := send(t, nil, "POST", frankfurt.repl, "alice.test", "/who.php", url.Values{"a": {"1"}}, hdr...); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("forwarded request with token %q: %d %.200s", auth, resp.StatusCode, body)
		}
	}
}

// TestTenantMetricsNotThroughProxy: /metrics (not public) answers a
// client on loopback, or in [server.metrics] allow, only — behind a
// trusted proxy that is the client the proxy names, not the proxy.
func TestTenantMetricsNotThroughProxy(t *testing.T) {
	type probe struct {
		name, host, path, xff string
		want                  bool
	}
	check := func(t *testing.T, p *proc, probes []probe) {
		t.Helper()
		hostGet(t, p.addr, "alice.test", "/") // a site in the metrics
		for _, tc := range probes {
			t.Run(tc.name, func(t *testing.T) {
				host := tc.host
				if host == "" {
					host = p.addr
				}
				var hdr []string
				if tc.xff != "" {
					hdr = []string{"X-Forwarded-For", tc.xff}
				}
				resp, body := send(t, nil, "GET", p.addr, host, tc.path, nil, hdr...)
				got := resp.StatusCode == 200 && strings.Contains(body, "ephpm_http_requests_total")
				if got != tc.want {
					t.Fatalf("%s %s X-Forwarded-For %q: %d, metrics=%v, want metrics=%v: %.300s", host, tc.path, tc.xff, resp.StatusCode, got, tc.want, body)
				}
				if !tc.want && strings.Contains(body, `site="alice.test"`) {
					t.Fatalf("site names leaked: %.300s", body)
				}
				if !tc.want && tc.path == "/_ephpm/metrics" && resp.StatusCode != http.StatusForbidden {
					t.Fatalf("%s: %d, want 403", tc.path, resp.StatusCode)
				}
			})
		}
	}
	p, _ := startSitesNode(t, `EPHPM_SERVER__TRUSTED_PROXIES=["127.0.0.1"]`)
	check(t, p, []probe{
		{"a remote client through the proxy", "", "/metrics", "203.0.113.7", false},
		{"a remote client, internal path", "", "/_ephpm/metrics", "203.0.113.7", false},
		{"a remote client, on a site", "alice.test", "/metrics", "203.0.113.7", false},
		{"a remote client naming loopback first", "", "/_ephpm/metrics", "127.0.0.1, 203.0.113.7", false},
		{"the proxy's own request", "", "/metrics", "", true},
		{"a loopback client through the proxy", "", "/_ephpm/metrics", "127.0.0.1", true},
	})
	// [server.metrics] allow lets a Prometheus elsewhere in.
	p, _ = startSitesNode(t, `EPHPM_SERVER__TRUSTED_PROXIES=["127.0.0.1"]`, `EPHPM_SERVER_METRICS__ALLOW=["198.51.100.0/24"]`)
	check(t, p, []probe{
		{"an allowed client through the proxy", "", "/metrics", "198.51.100.20", true},
		{"a client outside allow", "", "/_ephpm/metrics", "203.0.113.7", false},
	})
}

// TestTenantUnauthenticatedConnectionsTimeOut: MySQL and KV connections
// (TCP and unix socket) that do not log in are closed after the auth
// timeout; logged-in ones may idle longer.
func TestTenantUnauthenticatedConnectionsTimeOut(t *testing.T) {
	const timeout = time.Second
	testutil.NeedProgram(t, "php")
	base := testutil.WorldReadableDir(t)
	sitesDir := filepath.Join(base, "sites")
	if err := os.MkdirAll(filepath.Join(sitesDir, "alice.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sitesDir, "alice.test", "creds.php"), []byte(credsPHP), 0o644); err != nil {
		t.Fatal(err)
	}
	mysqlAddr, kvAddr := freePort(t), freePort(t)
	cwd, _ := filepath.Abs("testdata/site")
	p := startEphpm(t, cwd,
		"EPHPM_SERVER__SITES_DIR="+sitesDir, "EPHPM_SERVER__DATA_DIR="+filepath.Join(base, "data"),
		"EPHPM_DB_SQLITE_PROXY__ENABLED=true", "EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN="+mysqlAddr,
		"EPHPM_KV__ENABLED=true", "EPHPM_KV__LISTEN="+kvAddr,
		"EPHPM_DB_SQLITE_PROXY__AUTH_TIMEOUT="+timeout.String(), "EPHPM_KV__AUTH_TIMEOUT="+timeout.String())
	sock := filepath.Join(p.runDir, "sock")

	type probe struct {
		name, network, addr string
		mysql               bool   // the server speaks first: read its greeting
		send                string // then send this, and nothing more
	}
	probes := []probe{
		{"mysql tcp, silent", "tcp", mysqlAddr, true, ""},
		{"mysql tcp, handshake started", "tcp", mysqlAddr, true, "\x40\x00\x00\x01\x85\xa6\x3f"},
		{"mysql socket, silent", "unix", filepath.Join(sock, "mysql.sock"), true, ""},
		{"kv tcp, silent", "tcp", kvAddr, false, ""},
		{"kv tcp, no AUTH", "tcp", kvAddr, false, "PING\r\nAUTH alice.test wrong\r\nGET k\r\n"},
		{"kv socket, half a command", "unix", filepath.Join(sock, "kv.sock"), false, "*3\r\n$4\r\nAUTH\r\n"},
	}
	type result struct {
		d   time.Duration
		err error
	}
	results := make([]chan result, len(probes))
	start := time.Now()
	for i, pr := range probes {
		results[i] = make(chan result, 1)
		go func() {
			c, err := net.Dial(pr.network, pr.addr)
			if err != nil {
				results[i] <- result{err: err}
				return
			}
			defer c.Close()
			_ = c.SetDeadline(start.Add(timeout + 5*time.Second)) // bounds the test, not the server
			if pr.mysql {
				if n, err := c.Read(make([]byte, 512)); err != nil || n < 5 {
					results[i] <- result{err: fmt.Errorf("greeting: %d bytes, %v", n, err)}
					return
				}
			}
			if pr.send != "" {
				io.WriteString(c, pr.send)
			}
			_, err = io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("still open after %s", time.Since(start))
			}
			results[i] <- result{d: time.Since(start), err: err}
		}()
	}

	// Meanwhile a logged-in MySQL and KV connection idle past the timeout.
	code, body := hostGet(t, p.addr, "alice.test", "/creds.php")
	if code != 200 {
		t.Fatalf("creds: %d %s", code, body)
	}
	creds := jsonMap(t, body)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = creds["db_user"].(string), creds["db_pass"].(string), "tcp", mysqlAddr, creds["db_name"].(string)
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("mysql login: %v", err)
	}
	defer conn.Close()
	kv, err := net.Dial("tcp", kvAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	_ = kv.SetDeadline(time.Now().Add(timeout + 10*time.Second))
	kvr := bufio.NewReader(kv)
	fmt.Fprintf(kv, "AUTH %s %s\r\n", creds["kv_user"], creds["kv_pass"])
	if l, _ := kvr.ReadString('\n'); l != "+OK\r\n" {
		t.Fatalf("kv AUTH: %q", l)
	}

	for i, pr := range probes {
		r := <-results[i]
		if r.err != nil {
			t.Errorf("%s: %v", pr.name, r.err)
		} else if r.d < timeout-100*time.Millisecond || r.d > timeout+3*time.Second {
			t.Errorf("%s: closed after %s, want about %s", pr.name, r.d, timeout)
		}
	}
	time.Sleep(time.Until(start.Add(timeout + 500*time.Millisecond)))
	var one int
	if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("a logged-in MySQL connection idle past the timeout: %v", err)
	}
	fmt.Fprintf(kv, "PING\r\n")
	if l, err := kvr.ReadString('\n'); l != "+PONG\r\n" {
		t.Errorf("a logged-in KV connection idle past the timeout: %q %v", l, err)
	}
}

// TestTenantForgedFrameCookieIgnored: a replica holds a read back only
// for a read-your-writes cookie the cluster issued for that site; a
// forged one is ignored at once. A genuine one still gives the writer
// its write.
func TestTenantForgedFrameCookieIgnored(t *testing.T) {
	const waitApplied = 10 * time.Second
	_, tokyo := startWireCluster(t, []string{"alice.test", "bob.test"}, "EPHPM_REPLICATION__WAIT_APPLIED="+waitApplied.String())
	cookieOf := func(resp *http.Response) *http.Cookie {
		for _, c := range resp.Cookies() {
			if c.Name == "ephpm_frame" {
				return c
			}
		}
		t.Fatalf("no ephpm_frame cookie: %v", resp.Header)
		return nil
	}
	// A real write through tokyo: the cookie is MAC'd, and with it the
	// writer reads its write on tokyo.
	resp, body := send(t, nil, "POST", tokyo.p.addr, "alice.test", "/note.php", url.Values{"v": {"hello"}})
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "ok ") {
		t.Fatalf("write through tokyo: %d %s", resp.StatusCode, body)
	}
	genuine := cookieOf(resp)
	if strings.Count(genuine.Value, ".") != 2 || len(genuine.Value) > 40 {
		t.Fatalf("cookie %q: want <frame>.<expiry>.<mac>, short", genuine.Value)
	}
	if _, body := send(t, nil, "GET", tokyo.p.addr, "alice.test", "/note.php", nil, "Cookie", "ephpm_frame="+genuine.Value); body != "last hello" {
		t.Fatalf("read-your-writes on tokyo: %q", body)
	}
	// bob.test's genuine cookie, from further along bob's log.
	var bobs *http.Cookie
	for i := 0; i < 3; i++ {
		resp, body := send(t, nil, "POST", tokyo.p.addr, "bob.test", "/note.php", url.Values{"v": {fmt.Sprint("bob", i)}})
		if resp.StatusCode != 200 {
			t.Fatalf("bob write: %d %s", resp.StatusCode, body)
		}
		bobs = cookieOf(resp)
	}

	for _, tc := range []struct{ name, cookie string }{
		{"a bare frame number", "999999999"},
		{"a frame number with a made-up MAC", "lfls.zzzzzz.AAAAAAAAAAAAAAAA"},
		{"another site's genuine cookie", bobs.Value},
		{"a genuine cookie with another frame", "lfls" + genuine.Value[strings.IndexByte(genuine.Value, '.'):]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, body := send(t, nil, "GET", tokyo.p.addr, "alice.test", "/note.php", nil, "Cookie", "ephpm_frame="+tc.cookie)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("answered after %s (wait_applied %s)", d, waitApplied)
			}
			if resp.StatusCode != 200 || body != "last hello" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		})
	}
}
