package main_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
)

const wpSource = "/usr/share/wordpress"

// wordpressTree copies Debian's stock WordPress (symlinks resolved,
// translations left out) and adds examples/wordpress/wp-config.php.
func wordpressTree(t testing.TB, withObjectCache bool) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(wpSource, "wp-settings.php")); err != nil {
		if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
			t.Fatalf("WordPress (Debian package wordpress) missing: %v", err)
		}
		t.Skip("WordPress not installed")
	}
	dst := filepath.Join(testutil.WorldReadableDir(t), "wp")
	err := filepath.Walk(wpSource, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(wpSource, p)
		if rel == "wp-content/languages" || rel == "wp-config.php" || rel == ".htaccess" {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		st, err := os.Stat(p) // follows symlinks
		if err != nil {
			return nil // dangling Debian symlink
		}
		if st.IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				return copyDir(p, target)
			}
			return nil
		}
		return copyFile(p, target)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := copyFile("../../examples/wordpress/wp-config.php", filepath.Join(dst, "wp-config.php")); err != nil {
		t.Fatal(err)
	}
	if withObjectCache {
		if err := copyFile("../../examples/wordpress/object-cache.php", filepath.Join(dst, "wp-content/object-cache.php")); err != nil {
			t.Fatal(err)
		}
	}
	// A must-use plugin that reports the work a page view did.
	mu := filepath.Join(dst, "wp-content/mu-plugins")
	_ = os.MkdirAll(mu, 0o755)
	_ = os.WriteFile(filepath.Join(mu, "ephpm-test-stats.php"), []byte(`<?php
add_action('shutdown', function () {
	global $wpdb, $wp_object_cache;
	if (is_admin() || wp_doing_ajax() || defined('XMLRPC_REQUEST') || defined('REST_REQUEST')) return;
	printf("\n<!-- ephpm-stats queries=%d hits=%d -->", $wpdb->num_queries, isset($wp_object_cache->cache_hits) ? $wp_object_cache->cache_hits : -1);
}, 1000);
`), 0o644)
	// The uploads folder must be writable by PHP.
	up := filepath.Join(dst, "wp-content/uploads")
	_ = os.MkdirAll(up, 0o777)
	_ = os.Chmod(up, 0o777)
	return dst
}

func copyDir(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		st, err := os.Stat(p)
		if err != nil {
			return nil
		}
		if st.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		return copyFile(p, t)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

type wpClient struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newWPClient(t testing.TB, base string) *wpClient {
	jar, _ := cookiejar.New(nil)
	return &wpClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (w *wpClient) req(method, path string, form url.Values, ctype string, body string) (*http.Response, string) {
	w.t.Helper()
	var rd io.Reader
	if form != nil {
		rd, ctype = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	} else if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.base+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (w *wpClient) get(path string) (int, string) {
	w.t.Helper()
	resp, body := w.req("GET", path, nil, "", "")
	return resp.StatusCode, body
}

func (w *wpClient) xmlrpc(method string, params ...string) string {
	w.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "<?xml version=\"1.0\"?><methodCall><methodName>%s</methodName><params>", method)
	for _, p := range params {
		fmt.Fprintf(&b, "<param><value>%s</value></param>", p)
	}
	b.WriteString("</params></methodCall>")
	resp, body := w.req("POST", "/xmlrpc.php", nil, "text/xml", b.String())
	if resp.StatusCode != 200 || strings.Contains(body, "<fault>") {
		w.t.Fatalf("xmlrpc %s: %d %s", method, resp.StatusCode, body)
	}
	return body
}

func xs(s string) string {
	return "<string>" + strings.NewReplacer("&", "&amp;", "<", "&lt;").Replace(s) + "</string>"
}

// startWordPress serves a fresh WordPress tree on the embedded database.
func startWordPress(t *testing.T, withObjectCache bool) (*proc, *wpClient) {
	testutil.NeedProgram(t, "php")
	root := wordpressTree(t, withObjectCache)
	data := testutil.WorldReadableDir(t)
	env := []string{"EPHPM_DB_SQLITE_PROXY__ENABLED=true", "EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN=" + freePort(t),
		"EPHPM_SERVER__DATA_DIR=" + data, "EPHPM_PHP__WORKERS=4", "EPHPM_WP_DISABLE_CRON=1"}
	if withObjectCache {
		env = append(env, "EPHPM_KV__ENABLED=true", "EPHPM_KV__LISTEN="+freePort(t))
	}
	p := startEphpm(t, root, env...)
	return p, newWPClient(t, "http://"+p.addr)
}

func (w *wpClient) install(title string) {
	w.t.Helper()
	if code, body := w.get("/wp-admin/install.php"); code != 200 || !strings.Contains(body, "install") {
		w.t.Fatalf("install page: %d %.500s", code, body)
	}
	resp, body := w.req("POST", "/wp-admin/install.php?step=2", url.Values{
		"weblog_title": {title}, "user_name": {"admin"}, "admin_password": {"correct horse battery"},
		"admin_password2": {"correct horse battery"}, "pw_weak": {"1"}, "admin_email": {"admin@example.com"},
		"blog_public": {"0"}, "language": {""},
	}, "", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "Success!") {
		w.t.Fatalf("install: %d %.3000s", resp.StatusCode, body)
	}
}

func (w *wpClient) login() {
	w.t.Helper()
	w.get("/wp-login.php") // sets the test cookie
	resp, body := w.req("POST", "/wp-login.php", url.Values{
		"log": {"admin"}, "pwd": {"correct horse battery"}, "wp-submit": {"Log In"},
		"redirect_to": {w.base + "/wp-admin/"}, "testcookie": {"1"},
	}, "", "")
	if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "wp-admin") {
		w.t.Fatalf("login: %d %s %.2000s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

var intRe = regexp.MustCompile(`<(?:int|i4|string)>(\d+)</(?:int|i4|string)>`)

func TestWordPress(t *testing.T) {
	p, wp := startWordPress(t, false)
	wp.install("Edge Blog")
	wp.login()
	if code, body := wp.get("/wp-admin/"); code != 200 || !strings.Contains(body, "Dashboard") {
		t.Fatalf("dashboard: %d %.1000s", code, body)
	}
	// install.php saves rewrite rules before the taxonomies' permalinks
	// exist (stock WordPress); opening Settings → Permalinks flushes them,
	// as an admin does after install.
	if code, body := wp.get("/wp-admin/options-permalink.php"); code != 200 || !strings.Contains(body, "Permalink") {
		t.Fatalf("permalink settings: %d", code)
	}

	// Publish a post in a new category over XML-RPC, as the admin.
	auth := []string{xs("1"), xs("admin"), xs("correct horse battery")}
	out := wp.xmlrpc("wp.newPost", append(auth, `<struct>
<member><name>post_title</name><value>`+xs("Hello from the edge")+`</value></member>
<member><name>post_content</name><value>`+xs("Served by ephpm with an embedded database. Zebra-crossing.")+`</value></member>
<member><name>post_status</name><value>`+xs("publish")+`</value></member>
<member><name>comment_status</name><value>`+xs("open")+`</value></member>
<member><name>terms_names</name><value><struct><member><name>category</name><value><array><data><value>`+xs("Edge News")+`</value></data></array></value></member></struct></value></member>
</struct>`)...)
	m := intRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("newPost: %s", out)
	}
	postID := m[1]

	// Comment on it (logged in, so it is approved at once).
	resp, body := wp.req("POST", "/wp-comments-post.php", url.Values{
		"comment_post_ID": {postID}, "comment": {"A comment about zebras"}, "submit": {"Post Comment"},
	}, "", "")
	if resp.StatusCode != 302 {
		t.Fatalf("comment: %d %s", resp.StatusCode, body[max(0, strings.Index(body, "<body")):])
	}

	// WordPress's installer probed the server, found that pretty
	// permalinks work (try_files) and enabled them: ?p=N redirects.
	anon := newWPClient(t, wp.base)
	anon.c.CheckRedirect = nil
	resp, _ = anon.req("GET", "/?p="+postID, nil, "", "")
	if resp.Request.URL.Path == "/" || !strings.HasSuffix(resp.Request.URL.Path, "/hello-from-the-edge/") {
		t.Errorf("pretty permalink: ended at %s", resp.Request.URL)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"front page", "/", "Hello from the edge"},
		{"single post", "/?p=" + postID, "Zebra-crossing"},
		{"comment shown", "/?p=" + postID, "A comment about zebras"},
		{"search", "/?s=zebra-crossing", "Hello from the edge"},
		{"category archive", "/?category_name=edge-news", "Hello from the edge"},
		{"pretty category archive", "/category/edge-news/", "Hello from the edge"},
		{"feed", "/?feed=rss2", "Hello from the edge"},
	} {
		code, body := anon.get(tc.path)
		if code != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("%s (%s): %d, %q not found in %.600s", tc.name, tc.path, code, tc.want, body)
		}
	}
	if code, body := wp.get("/wp-admin/edit.php"); code != 200 || !strings.Contains(body, "Hello from the edge") {
		t.Errorf("posts list: %d", code)
	}
	if code, body := wp.get("/wp-admin/edit-comments.php"); code != 200 || !strings.Contains(body, "A comment about zebras") {
		t.Errorf("comments list: %d", code)
	}

	// Edit, then delete.
	wp.xmlrpc("wp.editPost", append(auth, "<int>"+postID+"</int>", `<struct><member><name>post_title</name><value>`+xs("Edited at the edge")+`</value></member></struct>`)...)
	if code, body := anon.get("/?p=" + postID); code != 200 || !strings.Contains(body, "Edited at the edge") {
		t.Errorf("after edit: %d", code)
	}
	wp.xmlrpc("wp.deletePost", append(auth, "<int>"+postID+"</int>")...)
	if code, body := anon.get("/"); code != 200 || strings.Contains(body, "Edited at the edge") {
		t.Errorf("deleted post still on the front page: %d", code)
	}

	// Debian's install.php has warnings of its own; the database must add none.
	for _, bad := range []string{"WordPress database error", "PHP Fatal", "mysqli", "wpdb", "class-wpdb"} {
		if strings.Contains(p.out.String(), bad) {
			t.Errorf("log contains %q:\n%s", bad, grepLines(p.out.String(), bad))
		}
	}
}

// TestWordPressObjectCache: with the drop-in, repeated page views hit
// the KV store and send fewer queries to the database.
func TestWordPressObjectCache(t *testing.T) {
	_, wp := startWordPress(t, true)
	wp.install("Cached Blog")
	statsRe := regexp.MustCompile(`ephpm-stats queries=(\d+) hits=(-?\d+)`)
	view := func() (int, int) {
		code, body := wp.get("/")
		m := statsRe.FindStringSubmatch(body)
		if code != 200 || m == nil {
			t.Fatalf("front page: %d %.500s", code, body)
		}
		q, _ := strconv.Atoi(m[1])
		h, _ := strconv.Atoi(m[2])
		return q, h
	}
	q1, _ := view()
	q2, h2 := view()
	if !(q2 < q1) || h2 <= 0 {
		t.Errorf("object cache: first view %d queries, second %d queries with %d cache hits", q1, q2, h2)
	}
	t.Logf("queries per front page view: %d cold, %d warm (%d cache hits)", q1, q2, h2)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	if len(out) > 20 {
		out = out[:20]
	}
	return strings.Join(out, "\n")
}
