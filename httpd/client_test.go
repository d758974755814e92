package httpd_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/httpd"
)

// TestRouteHookSeesTheClient: a site's Route hook (a replica passing a
// write to the primary) gets the client as trusted proxies name it and
// the scheme it used, not the proxy's.
func TestRouteHookSeesTheClient(t *testing.T) {
	var got []ephpm.Client
	e := start(t, func(c *httpd.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
		site := *c.Sites.(httpd.SingleSite).S
		site.Route = func(w http.ResponseWriter, r *http.Request) bool {
			cl, _ := ephpm.ClientOf(r.Context())
			got = append(got, cl)
			return false
		}
		c.Sites = httpd.SingleSite{S: &site}
	})
	_, port, _ := net.SplitHostPort(e.addr)
	e.get(t, "/env.php", "X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https")
	e.get(t, "/env.php")
	want := []ephpm.Client{
		{IP: "203.0.113.7", HTTPS: true, ServerPort: port},
		{IP: "127.0.0.1", ServerPort: port},
	}
	if len(got) != 2 || got[0] != want[0] || got[1].IP != want[1].IP || got[1].Port == "" || got[1].HTTPS || got[1].ServerPort != port {
		t.Fatalf("Route saw %+v, want %+v", got, want)
	}
}

// TestRelayedClientReachesPHP: a request whose context names its client
// (the replication listener does so for a peer's forwarded request) runs
// PHP with that client's address, scheme and port; the X-Forwarded-*
// headers it carries are not consulted, even from a trusted address.
func TestRelayedClientReachesPHP(t *testing.T) {
	var cfg httpd.Config
	e := start(t, func(c *httpd.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
		cfg = *c
	})
	front, err := httpd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	relayed := ephpm.Client{IP: "203.0.113.7", Port: "5555", HTTPS: true, ServerPort: "8443", Via: "tokyo"}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		front.ServeHTTP(w, r.WithContext(ephpm.WithClient(r.Context(), relayed)))
	}))
	defer ts.Close()
	e.url = ts.URL
	_, body := e.get(t, "/env.php", "X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "http")
	m := decode(t, body)
	for k, v := range map[string]any{"REMOTE_ADDR": "203.0.113.7", "HTTPS": "on", "REQUEST_SCHEME": "https", "SERVER_PORT": "8443"} {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
}
