package replication

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/ephpm/ephpm"
)

// hdrLibsqlVia marks a libSQL client's request that a replica passed on to
// the site's primary; a request that carries it is never passed on again,
// so two nodes that both think the other is primary cannot loop.
const hdrLibsqlVia = "X-Ephpm-Libsql-Via"

// LibsqlForward returns, on a node that replicates the site, what passes
// a libSQL client's request (body already read) on to the site's primary
// and copies the answer back, streaming. The client's own per-site token
// goes with it: every node accepts it. It returns nil on the primary, for
// an unreplicated site, and for a request a replica already passed on.
// The libSQL server calls what it returns on the request's goroutine;
// it blocks for the whole proxied request.
func (m *Manager) LibsqlForward(name string, r *http.Request) func(w http.ResponseWriter, r *http.Request, body []byte) {
	s := m.site(name)
	if s == nil || s.cfg.Role != ephpm.RoleReplica || s.cfg.PrimaryURL == "" || r.Header.Get(hdrLibsqlVia) != "" {
		return nil
	}
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		m.viaPrimary(s, "libsql", w, r, func(target *url.URL) *httputil.ReverseProxy {
			return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set(hdrLibsqlVia, m.cfg.Node)
			}}
		})
	}
}
