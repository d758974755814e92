package httpd_test

import (
	"net/http/httptest"
	"testing"

	"github.com/ephpm/ephpm/httpd"
)

func TestRedirectHTTPS(t *testing.T) {
	for _, tc := range []struct {
		method, host, target, port string
		code                       int
		location                   string
	}{
		{"GET", "alice-blog.example", "/a.php?x=1&y=%2F", "443", 301, "https://alice-blog.example/a.php?x=1&y=%2F"},
		{"GET", "Alice-Blog.example:8080", "/", "8443", 301, "https://alice-blog.example:8443/"},
		{"POST", "alice-blog.example", "/wp-login.php", "443", 308, "https://alice-blog.example/wp-login.php"},
		{"GET", "alice-blog.example", "/_ephpm/ready", "443", 0, ""},
		{"GET", "alice-blog.example", "/.well-known/acme-challenge/x", "443", 0, ""},
		{"GET", "bad host!", "/", "443", 0, ""},
	} {
		r := httptest.NewRequest(tc.method, "http://x"+tc.target, nil)
		r.Host = tc.host
		w := httptest.NewRecorder()
		done := httpd.RedirectHTTPS(w, r, tc.port)
		if !done {
			if tc.code != 0 {
				t.Errorf("%s %s: not redirected", tc.host, tc.target)
			}
			continue
		}
		if w.Code != tc.code || w.Header().Get("Location") != tc.location {
			t.Errorf("%s %s: %d %q, want %d %q", tc.host, tc.target, w.Code, w.Header().Get("Location"), tc.code, tc.location)
		}
	}
}
