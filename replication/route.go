package replication

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CookieName carries, to a client that wrote through a replica, the
// primary's log position after its write: the replica serving its next
// read waits until it has applied that far.
const CookieName = "ephpm_frame"

// hdrAuth authenticates a forwarded request between nodes; Authorization
// belongs to the client (a site's own HTTP auth).
const hdrAuth = "X-Ephpm-Auth"

// Route returns the HTTP front's hook for a site: on a replica, a write
// request goes whole to the primary (one round trip for the whole PHP
// request instead of one per statement), and a read from a client whose
// own write has not arrived yet waits for it, bounded, or goes to the
// primary too. It returns true when it has answered the request.
func (m *Manager) Route(name string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		s := m.site(name)
		if s == nil || s.cfg.Role != RoleReplica {
			return false
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions ||
			isWritePath(m.cfg.WritePaths, r.URL.Path) {
			m.proxy(s, w, r)
			return true
		}
		if c, err := r.Cookie(CookieName); err == nil {
			if next, err := strconv.ParseUint(c.Value, 10, 64); err == nil && s.applied.Load() < next {
				if !m.WaitApplied(r.Context(), name, next) {
					m.proxy(s, w, r)
					return true
				}
			}
		}
		return false
	}
}

var proxies sync.Map // primary URL → *httputil.ReverseProxy

func (m *Manager) proxy(s *site, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.fwdRequests.Add(1)
	defer func() { s.fwdNanos.Add(int64(time.Since(start))) }()
	key := m.cfg.Node + "\x00" + s.cfg.PrimaryURL
	if p, ok := proxies.Load(key); ok {
		p.(*httputil.ReverseProxy).ServeHTTP(w, r)
		return
	}
	target, err := url.Parse(s.cfg.PrimaryURL)
	if err != nil {
		http.Error(w, "bad primary URL", http.StatusBadGateway)
		return
	}
	rp := &httputil.ReverseProxy{
		Transport: m.client.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			for k := range pr.Out.Header {
				if strings.HasPrefix(k, "X-Ephpm-") {
					pr.Out.Header.Del(k) // never trust a client's
				}
			}
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(hdrAuth, "Bearer "+m.cfg.Token)
			pr.Out.Header.Set(hdrForwarded, m.cfg.Node)
			pr.Out.Header.Set(hdrClientAddr, pr.In.RemoteAddr)
			if pr.In.TLS != nil {
				pr.Out.Header.Set(hdrProto, "https")
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if f := resp.Header.Get(hdrFrame); f != "" {
				resp.Header.Del(hdrFrame)
				resp.Header.Add("Set-Cookie", (&http.Cookie{
					Name: CookieName, Value: f, Path: "/", HttpOnly: true, MaxAge: 300, SameSite: http.SameSiteLaxMode,
				}).String())
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.fwdErrors.Add(1)
			m.log.Error("forwarding a request to the primary failed", "site", s.cfg.Name, "primary", s.cfg.PrimaryURL, "err", err)
			http.Error(w, "the site's primary node is unreachable", http.StatusBadGateway)
		},
		FlushInterval: -1,
	}
	proxies.Store(key, rp)
	rp.ServeHTTP(w, r)
}
