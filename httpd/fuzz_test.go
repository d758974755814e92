package httpd

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckPath: whatever request target passes the path rules stays
// inside the document root and names no dotfile.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/index.php", "/a/../b", "/%2e%2e/x", "/a%2fb", "/.env", "/.well-known/acme-challenge/x",
		"/uploads/x.jpg/y.php", "/a\\b", "/%00", "/wp-content/themes/x/style.css?ver=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{URL: u, RequestURI: target}
		if checkPath(r) != nil {
			return
		}
		p := r.URL.Path
		root := "/srv/site"
		if full := filepath.Clean(root + p); full != root && !strings.HasPrefix(full, root+"/") {
			t.Fatalf("%q escapes the root: %s", target, full)
		}
		if strings.ContainsAny(p, "\x00\\") {
			t.Fatalf("%q: NUL or backslash passed", target)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || (strings.HasPrefix(seg, ".") && seg != ".well-known") {
				t.Fatalf("%q: segment %q passed", target, seg)
			}
		}
		if script, info, ok := splitPHP(p); ok && (!strings.HasSuffix(script, ".php") || !strings.HasPrefix(p, script) || script+info != p) {
			t.Fatalf("splitPHP(%q) = %q, %q", p, script, info)
		}
	})
}
