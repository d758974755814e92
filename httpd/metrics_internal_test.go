package httpd

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ephpm/ephpm"
)

// TestMetricsNotPublic: /metrics answers a client on loopback (or in
// MetricsAllow) only, unless configured public; the client is the one a
// trusted proxy names, never the proxy; elsewhere /metrics is the site's
// own.
func TestMetricsNotPublic(t *testing.T) {
	site := &Site{Name: "default", Root: t.TempDir(), Fallback: "off"}
	for _, tc := range []struct {
		name, remote, xff, path string
		trusted, allow          []string
		relayedBy               string // a peer node passed the request on
		public                  bool
		want                    int
	}{
		{name: "loopback", remote: "127.0.0.1:5000", path: "/metrics", want: 200},
		{name: "loopback v6", remote: "[::1]:5000", path: "/_ephpm/metrics", want: 200},
		{name: "remote internal path", remote: "203.0.113.5:5000", path: "/_ephpm/metrics", want: 403},
		{name: "remote /metrics is the site's", remote: "203.0.113.5:5000", path: "/metrics", want: 404},
		{name: "forged forwarded-for does not help", remote: "203.0.113.5:5000", xff: "127.0.0.1", path: "/_ephpm/metrics", want: 403},
		// Behind a trusted proxy the client is the one it names.
		{name: "trusted proxy for a remote client", remote: "127.0.0.1:5000", xff: "203.0.113.7", path: "/_ephpm/metrics", trusted: []string{"127.0.0.1"}, want: 403},
		{name: "trusted proxy for a remote client, /metrics", remote: "127.0.0.1:5000", xff: "203.0.113.7", path: "/metrics", trusted: []string{"127.0.0.1"}, want: 404},
		{name: "trusted proxy for a loopback client", remote: "10.1.2.3:5000", xff: "127.0.0.1", path: "/_ephpm/metrics", trusted: []string{"10.0.0.0/8"}, want: 200},
		{name: "trusted proxy itself is no loopback client", remote: "10.1.2.3:5000", path: "/_ephpm/metrics", trusted: []string{"10.0.0.0/8"}, want: 403},
		{name: "allowed network", remote: "192.0.2.9:5000", path: "/metrics", allow: []string{"192.0.2.0/24"}, want: 200},
		{name: "allowed network behind a proxy", remote: "127.0.0.1:5000", xff: "192.0.2.9", path: "/metrics", trusted: []string{"127.0.0.1"}, allow: []string{"192.0.2.0/24"}, want: 200},
		{name: "outside the allowed network", remote: "198.51.100.1:5000", path: "/_ephpm/metrics", allow: []string{"192.0.2.0/24"}, want: 403},
		{name: "relayed by a peer node", remote: "127.0.0.1:5000", path: "/_ephpm/metrics", relayedBy: "tokyo", want: 403},
		{name: "public", remote: "203.0.113.5:5000", path: "/metrics", public: true, want: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Sites: SingleSite{S: site}, TrustedProxies: tc.trusted, MetricsAllow: tc.allow, MetricsPublic: tc.public})
			if err != nil {
				t.Fatal(err)
			}
			s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nothing-here", nil)) // one request counted
			r := httptest.NewRequest("GET", tc.path, nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.relayedBy != "" {
				r = r.WithContext(ephpm.WithClient(r.Context(), ephpm.Client{IP: "127.0.0.1", Via: tc.relayedBy}))
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%s from %s (X-Forwarded-For %q): %d, want %d", tc.path, tc.remote, tc.xff, w.Code, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(w.Body.String(), "ephpm_http_requests_total") {
				t.Errorf("no metrics in the body")
			}
		})
	}
}

func TestMetricsAllowRejectsBadNetworks(t *testing.T) {
	if _, err := New(Config{Sites: SingleSite{S: &Site{Name: "default"}}, MetricsAllow: []string{"10.0.0.0/33"}}); err == nil {
		t.Fatal("a bad CIDR in MetricsAllow was accepted")
	}
}
