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
		// During a change of primary the node asked may not be the
		// primary yet: its 421 (LibsqlReforward) ran nothing, so the
		// request goes again, as a proxied HTTP request does.
		r.ContentLength = int64(len(body))
		m.retryMoving(s, w, r, func() io.ReadCloser { return io.NopCloser(bytes.NewReader(body)) }, true, false,
			func(s *site, w http.ResponseWriter, r *http.Request) {
				m.viaPrimary(s, "libsql", w, r, func(target *url.URL) *httputil.ReverseProxy {
					return &httputil.ReverseProxy{
						Rewrite: func(pr *httputil.ProxyRequest) {
							pr.SetURL(target)
							pr.Out.Header.Set(hdrLibsqlVia, m.cfg.Node)
						},
						ModifyResponse: retryable421,
					}
				})
			})
	}
}

// LibsqlReforward returns what libsql.Site.Reforward gives: on a node
// that was the site's primary until a write of the request met the
// demotion, what passes the request on to the new primary
// (LibsqlForward); for a request another node passed on here (this node
// not, or not yet, the primary), a 421, so that node sends it again to
// the primary of the moment; nil when the site is primary here after all.
func (m *Manager) LibsqlReforward(name string, r *http.Request) func(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get(hdrLibsqlVia) != "" {
		return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			http.Error(w, "this node is not the primary for "+name, http.StatusMisdirectedRequest)
		}
	}
	return m.LibsqlForward(name, r)
}
