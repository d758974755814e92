package httpd

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMetricsNotPublic: /metrics answers loopback and trusted proxies
// only, unless configured public; elsewhere /metrics is the site's own.
func TestMetricsNotPublic(t *testing.T) {
	site := &Site{Name: "default", Root: t.TempDir(), Fallback: "off"}
	for _, tc := range []struct {
		name, remote, path string
		trusted            []string
		public             bool
		want               int
	}{
		{"loopback", "127.0.0.1:5000", "/metrics", nil, false, 200},
		{"remote internal path", "203.0.113.5:5000", "/_ephpm/metrics", nil, false, 403},
		{"remote /metrics is the site's", "203.0.113.5:5000", "/metrics", nil, false, 404},
		{"forged forwarded-for does not help", "203.0.113.5:5000", "/_ephpm/metrics", nil, false, 403},
		{"trusted proxy", "10.1.2.3:5000", "/_ephpm/metrics", []string{"10.0.0.0/8"}, false, 200},
		{"public", "203.0.113.5:5000", "/metrics", nil, true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Sites: SingleSite{S: site}, TrustedProxies: tc.trusted, MetricsPublic: tc.public})
			if err != nil {
				t.Fatal(err)
			}
			s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nothing-here", nil)) // one request counted
			r := httptest.NewRequest("GET", tc.path, nil)
			r.RemoteAddr = tc.remote
			r.Header.Set("X-Forwarded-For", "127.0.0.1")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%s from %s: %d, want %d", tc.path, tc.remote, w.Code, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(w.Body.String(), "ephpm_http_requests_total") {
				t.Errorf("no metrics in the body")
			}
		})
	}
}
