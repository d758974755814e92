package main_test

// Issue 12, item 10: as root, PHP (www-data) must be able to use its
// site's state directories (<data_dir>/state/<site>/{tmp,sessions}).
// When the state root was made root-owned 0700, session_start() failed
// with EACCES and every WordPress upload failed ("Missing a temporary
// folder"). These tests run the real binary as root in sites_dir mode.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/testutil"
)

// needRootAndPHPUser skips unless the test runs as root and returns the
// uid and gid of www-data, the user ephpm runs PHP as.
func needRootAndPHPUser(t *testing.T) (int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
			t.Fatal("this test must run as root")
		}
		t.Skip("needs root: ephpm as root runs PHP as www-data")
	}
	u, err := user.Lookup("www-data")
	if err != nil {
		t.Fatalf("user www-data: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// chownTree gives dir and everything in it to uid:gid, as a host does
// with a site's files so that its PHP can write them.
func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startTenantNode serves sitesDir as root with the embedded database.
// The data dir does not exist yet: ephpm makes it, as it makes its
// default /var/lib/ephpm on a fresh install.
func startTenantNode(t *testing.T, sitesDir string) (*proc, string) {
	t.Helper()
	testutil.NeedProgram(t, "php")
	data := filepath.Join(testutil.WorldReadableDir(t), "data")
	p := startEphpm(t, testutil.WorldReadableDir(t),
		"EPHPM_SERVER__SITES_DIR="+sitesDir, "EPHPM_SERVER__DATA_DIR="+data,
		"EPHPM_DB_SQLITE_PROXY__ENABLED=true", "EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN="+freePort(t))
	return p, data
}

// hostTransport sends every request, whatever its URL's host, to addr:
// a client can then use http://<site>/ URLs (the Host header a browser
// sends) without the name resolving.
func hostTransport(addr string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}
}

// newSiteClient is a WordPress client for http://<site>/ on node p.
func newSiteClient(t *testing.T, p *proc, site string) *wpClient {
	w := newWPClient(t, "http://"+site)
	w.c.Transport = hostTransport(p.addr)
	return w
}

// send is req with raw bytes and extra headers.
func (w *wpClient) send(method, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	w.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http://") {
		u = w.base + path
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// multipartBody encodes fields and one file (field, name, content
// type, content) as a browser's form does.
func multipartBody(t *testing.T, fields map[string]string, field, name, ctype string, content []byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, name))
	h.Set("Content-Type", ctype)
	fw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(content)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), b.Bytes()
}

// testPNG is a small valid PNG, different for each seed.
func testPNG(t *testing.T, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 24; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 10), uint8(y * 15), seed, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// owner is the uid owning p.
func owner(t *testing.T, p string) int {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

// checkStateDirs: the state root is traversable only, the site's own
// directories belong to PHP's user and to nobody else.
func checkStateDirs(t *testing.T, data, site string, uid int) {
	t.Helper()
	state := filepath.Join(data, "state")
	if st, err := os.Stat(state); err != nil || st.Mode().Perm() != 0o711 {
		t.Errorf("state root %s: %v %v, want 0711", state, st.Mode().Perm(), err)
	}
	for _, d := range []string{site, site + "/tmp", site + "/sessions"} {
		p := filepath.Join(state, d)
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st.Mode().Perm() != 0o700 || owner(t, p) != uid {
			t.Errorf("%s: mode %v owner %d, want 0700 owned by %d", p, st.Mode().Perm(), owner(t, p), uid)
		}
	}
}

type wpMedia struct {
	ID           int    `json:"id"`
	SourceURL    string `json:"source_url"`
	MediaDetails struct {
		File string `json:"file"`
	} `json:"media_details"`
}

// checkMedia: the attachment's file is under wp-content/uploads, was
// written by PHP's user and is served back by its URL.
func checkMedia(t *testing.T, wp *wpClient, root string, m wpMedia, want []byte, uid int) {
	t.Helper()
	if m.ID == 0 || m.MediaDetails.File == "" || !strings.HasPrefix(m.SourceURL, wp.base+"/wp-content/uploads/") {
		t.Errorf("attachment: %+v", m)
		return
	}
	p := filepath.Join(root, "wp-content/uploads", m.MediaDetails.File)
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("uploaded file %s: %d bytes, %v; want the %d bytes sent", p, len(got), err, len(want))
		return
	}
	if o := owner(t, p); o != uid {
		t.Errorf("%s owned by %d, want PHP's user %d", p, o, uid)
	}
	resp, body := wp.send("GET", m.SourceURL, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("GET %s: %d %s, %d bytes", m.SourceURL, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

var (
	tagRe   = regexp.MustCompile(`(?s)<style.*?</style>|<[^>]*>`)
	spaceRe = regexp.MustCompile(`\s+`)
)

// brief is a response body fit for a failure message: the text of an
// HTML page (wp_die's message), at most 500 bytes.
func brief(b []byte) string {
	s := string(b)
	const die = `class="wp-die-message">`
	if i := strings.Index(s, die); i >= 0 {
		s = s[i+len(die):]
	}
	if strings.Contains(s, "<") {
		s = strings.TrimSpace(spaceRe.ReplaceAllString(tagRe.ReplaceAllString(s, " "), " "))
	}
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

var wpnonceRe = regexp.MustCompile(`name="_wpnonce" value="([0-9a-f]+)"`)

// TestTenantWordPressUploadsAsRoot: ephpm as root serves a WordPress site
// of sites_dir whose files belong to www-data; media uploads work by
// every path WordPress has (REST raw body and multipart, the classic
// browser uploader, the drag-and-drop async-upload.php) and their
// temporary files go to the site's own tmp directory.
func TestTenantWordPressUploadsAsRoot(t *testing.T) {
	uid, gid := needRootAndPHPUser(t)
	const site = "wp.test"
	wpRoot := wordpressTree(t, false)
	root := filepath.Join(filepath.Dir(wpRoot), site)
	if err := os.Rename(wpRoot, root); err != nil {
		t.Fatal(err)
	}
	// WordPress's idea of its temporary directory (wp_tempnam: REST
	// uploads, sideloads, updates).
	if err := os.WriteFile(filepath.Join(root, "ephpm-tempdir.php"), []byte(`<?php
require __DIR__ . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/file.php';
header('Content-Type: application/json');
echo json_encode(['get_temp_dir' => get_temp_dir(), 'sys_get_temp_dir' => sys_get_temp_dir(),
	'upload_tmp_dir' => ini_get('upload_tmp_dir')]);
`), 0o644); err != nil {
		t.Fatal(err)
	}
	chownTree(t, root, uid, gid)
	// Writable by its owner only: uploads work because the tree is PHP's.
	if err := os.Chmod(filepath.Join(root, "wp-content/uploads"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, data := startTenantNode(t, filepath.Dir(root))
	wp := newSiteClient(t, p, site)
	wp.install("Tenant Blog")
	wp.login()

	// Settings → Permalinks → "Post name": WordPress's own probe of pretty
	// permalinks during install cannot reach http://wp.test/ (the name
	// does not resolve here); /wp-json/ needs a permalink structure.
	code, page := wp.get("/wp-admin/options-permalink.php")
	m := wpnonceRe.FindStringSubmatch(page)
	if code != 200 || m == nil {
		t.Fatalf("permalink settings: %d %s", code, brief([]byte(page)))
	}
	resp, body := wp.req("POST", "/wp-admin/options-permalink.php", url.Values{
		"_wpnonce": {m[1]}, "_wp_http_referer": {"/wp-admin/options-permalink.php"},
		"selection": {"/%postname%/"}, "permalink_structure": {"/%postname%/"},
		"category_base": {""}, "tag_base": {""}, "submit": {"Save Changes"},
	}, "", "")
	if resp.StatusCode != 302 {
		t.Fatalf("save permalinks: %d %s", resp.StatusCode, brief([]byte(body)))
	}

	// The temporary directory WordPress picks is the site's own.
	var tmp map[string]string
	code, page = wp.get("/ephpm-tempdir.php")
	// (The test mu-plugin appends a comment: read the first JSON value.)
	if err := json.NewDecoder(strings.NewReader(page)).Decode(&tmp); code != 200 || err != nil {
		t.Fatalf("tempdir probe: %d %v %s", code, err, brief([]byte(page)))
	}
	siteTmp := filepath.Join(data, "state", site, "tmp")
	if tmp["get_temp_dir"] != siteTmp+"/" || tmp["upload_tmp_dir"] != siteTmp {
		t.Errorf("temporary directories %v, want %s/", tmp, siteTmp)
	}

	// The REST API nonce, as the block editor gets it.
	code, nonce := wp.get("/wp-admin/admin-ajax.php?action=rest-nonce")
	if code != 200 || !regexp.MustCompile(`^[0-9a-f]{10}$`).MatchString(nonce) {
		t.Fatalf("rest-nonce: %d %s", code, brief([]byte(nonce)))
	}

	// (1) REST, the file as the request body.
	img := testPNG(t, 1)
	resp, raw := wp.send("POST", "/wp-json/wp/v2/media", map[string]string{
		"X-WP-Nonce": nonce, "Content-Type": "image/png",
		"Content-Disposition": `attachment; filename="rest-raw.png"`,
	}, img)
	var media wpMedia
	if err := json.Unmarshal(raw, &media); resp.StatusCode != 201 || err != nil {
		t.Errorf("REST upload (raw body): %d %v %s", resp.StatusCode, err, brief(raw))
	} else {
		checkMedia(t, wp, root, media, img, uid)
	}

	// (1b) REST, multipart, as the block editor uploads.
	img = testPNG(t, 2)
	ctype, mp := multipartBody(t, map[string]string{"title": "rest multipart"}, "file", "rest-multipart.png", "image/png", img)
	resp, raw = wp.send("POST", "/wp-json/wp/v2/media", map[string]string{"X-WP-Nonce": nonce, "Content-Type": ctype}, mp)
	media = wpMedia{}
	if err := json.Unmarshal(raw, &media); resp.StatusCode != 201 || err != nil {
		t.Errorf("REST upload (multipart): %d %v %s", resp.StatusCode, err, brief(raw))
	} else {
		checkMedia(t, wp, root, media, img, uid)
	}

	// (2) The classic browser uploader: Media → Add New → "browser uploader".
	code, page = wp.get("/wp-admin/media-new.php?browser-uploader")
	m = wpnonceRe.FindStringSubmatch(page)
	if code != 200 || m == nil || !strings.Contains(page, `name="async-upload"`) {
		t.Fatalf("browser uploader page: %d %s", code, brief([]byte(page)))
	}
	formNonce := m[1]
	img = testPNG(t, 3)
	ctype, mp = multipartBody(t, map[string]string{"post_id": "0", "_wpnonce": formNonce,
		"_wp_http_referer": "/wp-admin/media-new.php?browser-uploader", "html-upload": "Upload"},
		"async-upload", "classic-upload.png", "image/png", img)
	resp, raw = wp.send("POST", "/wp-admin/media-new.php", map[string]string{"Content-Type": ctype}, mp)
	if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "upload.php") ||
		bytes.Contains(raw, []byte("Missing a temporary folder")) {
		t.Errorf("classic upload: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), brief(raw))
	}
	classic := img

	// (2b) The drag-and-drop uploader (plupload) of the same page.
	img = testPNG(t, 4)
	ctype, mp = multipartBody(t, map[string]string{"name": "async-upload.png", "action": "upload-attachment", "_wpnonce": formNonce},
		"async-upload", "async-upload.png", "image/png", img)
	resp, raw = wp.send("POST", "/wp-admin/async-upload.php", map[string]string{"Content-Type": ctype}, mp)
	var async struct {
		Success bool `json:"success"`
		Data    struct {
			ID      int    `json:"id"`
			Message string `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &async); resp.StatusCode != 200 || err != nil || !async.Success {
		t.Errorf("async-upload.php: %d %v %s", resp.StatusCode, err, brief(raw))
	}

	// The uploads are in the media library and on disk.
	for _, up := range []struct {
		search string
		img    []byte
	}{{"classic-upload", classic}, {"async-upload", img}} {
		resp, raw = wp.send("GET", "/wp-json/wp/v2/media?search="+up.search, map[string]string{"X-WP-Nonce": nonce}, nil)
		var list []wpMedia
		if err := json.Unmarshal(raw, &list); resp.StatusCode != 200 || err != nil || len(list) != 1 {
			t.Errorf("media library search %q: %d %v %s", up.search, resp.StatusCode, err, brief(raw))
			continue
		}
		checkMedia(t, wp, root, list[0], up.img, uid)
	}

	checkStateDirs(t, data, site, uid)
	for _, bad := range []string{"Permission denied", "PHP Fatal", "unable to create a temporary file"} {
		if strings.Contains(p.out.String(), bad) {
			t.Errorf("log contains %q:\n%s", bad, grepLines(p.out.String(), bad))
		}
	}
}

const sessionPHP = `<?php
if (!session_start()) { http_response_code(500); echo "session_start failed: ", error_get_last()['message'] ?? ''; exit; }
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
header('Content-Type: application/json');
echo json_encode(['n' => $_SESSION['n'], 'id' => session_id(), 'save_path' => session_save_path()]);
`

const uploadPHP = `<?php
header('Content-Type: application/json');
$f = $_FILES['f'] ?? null;
$out = ['error' => $f ? $f['error'] : -1, 'tmp_dir' => $f ? dirname($f['tmp_name']) : '', 'moved' => false];
if ($f && $f['error'] === UPLOAD_ERR_OK) {
	$out['moved'] = move_uploaded_file($f['tmp_name'], __DIR__ . '/files/' . basename($f['name']));
}
echo json_encode($out);
`

// TestTenantSessionsAsRoot: ephpm as root, a plain PHP site of
// sites_dir: sessions persist in the site's session directory, and a
// file upload lands in the site's tmp directory and can be moved into
// the site.
func TestTenantSessionsAsRoot(t *testing.T) {
	uid, gid := needRootAndPHPUser(t)
	const site = "sess.test"
	sitesDir := filepath.Join(testutil.WorldReadableDir(t), "sites")
	root := filepath.Join(sitesDir, site)
	if err := os.MkdirAll(filepath.Join(root, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"session.php": sessionPHP, "upload.php": uploadPHP} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chownTree(t, root, uid, gid)
	p, data := startTenantNode(t, sitesDir)
	c := newSiteClient(t, p, site)

	type sess struct {
		N        int    `json:"n"`
		ID       string `json:"id"`
		SavePath string `json:"save_path"`
	}
	var got []sess
	for i := 0; i < 2; i++ {
		code, body := c.get("/session.php")
		var s sess
		if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil {
			t.Fatalf("session request %d: %d %v %s", i+1, code, err, brief([]byte(body)))
		}
		got = append(got, s)
	}
	if got[0].N != 1 || got[1].N != 2 || got[0].ID == "" || got[0].ID != got[1].ID {
		t.Errorf("session counter: %+v, want n=1 then n=2 in one session", got)
	}
	sessDir := filepath.Join(data, "state", site, "sessions")
	if got[0].SavePath != sessDir {
		t.Errorf("session.save_path %q, want %q", got[0].SavePath, sessDir)
	}
	if f := filepath.Join(sessDir, "sess_"+got[0].ID); owner(t, f) != uid {
		t.Errorf("session file %s not owned by PHP's user", f)
	}

	content := []byte("an upload for " + site + " at " + time.Now().Format(time.RFC3339Nano))
	ctype, body := multipartBody(t, nil, "f", "note.txt", "text/plain", content)
	resp, raw := c.send("POST", "/upload.php", map[string]string{"Content-Type": ctype}, body)
	var up struct {
		Error  int    `json:"error"`
		TmpDir string `json:"tmp_dir"`
		Moved  bool   `json:"moved"`
	}
	if err := json.Unmarshal(raw, &up); resp.StatusCode != 200 || err != nil {
		t.Fatalf("upload: %d %v %s", resp.StatusCode, err, brief(raw))
	}
	if up.Error != 0 || !up.Moved || up.TmpDir != filepath.Join(data, "state", site, "tmp") {
		t.Errorf("upload: %+v, want error 0 (UPLOAD_ERR_OK), moved, from %s", up, filepath.Join(data, "state", site, "tmp"))
	}
	if b, err := os.ReadFile(filepath.Join(root, "files", "note.txt")); err != nil || !bytes.Equal(b, content) {
		t.Errorf("moved file: %q %v", b, err)
	}
	checkStateDirs(t, data, site, uid)
}
