package httpd

import (
	"net"
	"net/http"
	"strings"

	"github.com/ephpm/ephpm/config"
)

// RedirectHTTPS sends a plain HTTP request to the same URL over HTTPS.
// ephpm's own endpoints (/_ephpm/health, /ready, /metrics) stay on HTTP
// so load balancers and scrapers keep working.
func RedirectHTTPS(w http.ResponseWriter, r *http.Request, httpsPort string) bool {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/_ephpm/"):
		return false
	case strings.HasPrefix(p, "/.well-known/acme-challenge/"):
		return false // another ACME client's challenge: the site answers it
	}
	host, err := config.NormalizeHost(r.Host)
	if err != nil {
		return false // the front answers a bad Host itself
	}
	if httpsPort != "443" {
		host = net.JoinHostPort(host, httpsPort)
	}
	code := http.StatusMovedPermanently
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = http.StatusPermanentRedirect // keeps the method and body
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
	return true
}
