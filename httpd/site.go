package httpd

import (
	"context"
	"io"
	"net/http"

	"github.com/ephpm/ephpm/fastcgi"
)

// PHP runs PHP scripts. fastcgi.Client implements it; an embedded
// runtime can too, without the front changing.
type PHP interface {
	Do(ctx context.Context, params []fastcgi.Param, body io.Reader) (*fastcgi.Response, error)
}

var _ PHP = (*fastcgi.Client)(nil)

// Site is one served document tree with its settings.
type Site struct {
	Name         string   // "default" or the site's domain; a metrics label
	Root         string   // absolute document root
	IndexFiles   []string // tried in order for a directory
	Fallback     string   // "/index.php?$query_string"; "" = 404
	CacheControl string   // for static files; "" = none
	PHP          PHP
	// Params are extra CGI variables for every PHP request of the site
	// (EPHPM_DB_*, open_basedir via PHP_ADMIN_VALUE, ...).
	Params []fastcgi.Param
	// Route, if set, may answer a request before the site serves it (a
	// replica sends writes to the site's primary); true means answered.
	Route func(w http.ResponseWriter, r *http.Request) bool
}

// SiteResolver maps a request to its site. It returns an *Error for a
// request that must not be served (bad Host: 400, no site: 404).
type SiteResolver interface {
	Site(r *http.Request) (*Site, error)
}

// SingleSite serves every request from one site.
type SingleSite struct{ S *Site }

// Site implements SiteResolver.
func (s SingleSite) Site(*http.Request) (*Site, error) { return s.S, nil }
