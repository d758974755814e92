package httpd

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzClient: whatever X-Forwarded-For and X-Forwarded-Proto a request
// carries, the client is the peer unless the peer is a trusted proxy, and
// behind one it is an address the header names (or the proxy itself).
func FuzzClient(f *testing.F) {
	s, err := New(Config{Sites: SingleSite{S: &Site{Name: "default", Root: f.TempDir()}}, TrustedProxies: []string{"10.0.0.0/8", "::1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("10.1.2.3:4000", "203.0.113.7, 10.0.0.9", "https")
	f.Add("198.51.100.1:5000", "127.0.0.1", "https")
	f.Add("[::1]:80", "2001:db8::1,::1", "HTTPS")
	f.Add("10.0.0.1:1", ",,, ,x", "")
	f.Fuzz(func(t *testing.T, remote, xff, proto string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("X-Forwarded-Proto", proto)
		c := s.client(r)
		peer, _ := splitHostPort(remote)
		pip := net.ParseIP(peer)
		if pip == nil || !s.trustedIP(pip) {
			if c.IP != peer || c.HTTPS {
				t.Fatalf("untrusted peer %q: believed %+v", remote, c)
			}
			return
		}
		if c.IP != peer && !strings.Contains(xff, c.IP) {
			t.Fatalf("client %q is neither the proxy %q nor in %q", c.IP, peer, xff)
		}
		if c.IP != peer && net.ParseIP(c.IP) == nil {
			t.Fatalf("client %q is not an address", c.IP)
		}
	})
}
