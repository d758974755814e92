package replication

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ephpm/ephpm"
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
//
// The HTTP front calls the hook on each request's goroutine, for every
// request of the site, concurrently. It blocks for the whole proxied
// request, or for at most WaitApplied while a read waits for the
// client's write.
func (m *Manager) Route(name string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		s := m.site(name)
		if s == nil {
			return false
		}
		if s.cfg.Role == ephpm.RolePrimary {
			// A primary without its lease answers a write at once,
			// before PHP runs (reads are served). Forwarded requests
			// reach this hook too (serveForwarded runs the front).
			return m.isWriteRequest(r) && m.refuseNoLease(s, w)
		}
		if s.cfg.Role != ephpm.RoleReplica {
			return false
		}
		if m.isWriteRequest(r) {
			m.proxy(s, w, r)
			return true
		}
		if c, err := r.Cookie(CookieName); err == nil {
			// A cookie this cluster did not issue for this site, or an
			// expired one, is ignored: it must not hold reads back.
			if next, ok := m.parseFrameCookie(s.cfg.Name, c.Value, time.Now()); ok && s.applied.Load() < next {
				if !m.WaitApplied(r.Context(), name, next) {
					// Not here yet: the primary has it. If the primary
					// cannot be reached, the local copy is better than
					// no answer; the response says it may be stale.
					if s.streamUnreachable() || m.readViaPrimary(s, w, r) {
						w.Header().Set(HdrStale, "1")
						return false
					}
					return true
				}
			}
		}
		return false
	}
}

// isWriteRequest: what a replica sends to the primary (any method but
// GET, HEAD and OPTIONS, and the write paths).
func (m *Manager) isWriteRequest(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions ||
		isWritePath(m.cfg.WritePaths, r.URL.Path)
}

// HdrStale marks a response a replica served from its own copy although
// the client's last write (its ephpm_frame cookie) had not arrived yet,
// because the site's primary could not be reached: the page may not
// show that write.
const HdrStale = "X-Ephpm-Stale"

// DefaultRetryAfter is the Retry-After (in seconds) of the 503 a replica
// answers a write with when the site's primary cannot be reached.
const DefaultRetryAfter = 5

// streamUnreachable tells, without a round trip, that the replica's
// stream has lost its primary: it failed on the network (no answer, not
// a refusal), or no primary is known.
func (s *site) streamUnreachable() bool {
	st := s.status.Load()
	if st == nil || st.state != ReplicaFailed || st.err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(st.err, ErrPrimaryUnknown) || errors.As(st.err, &ne)
}

// readViaPrimary passes a read to the primary as proxy does, except that
// when the primary does not answer at all it writes nothing and returns
// true: the caller serves the read from the local copy.
func (m *Manager) readViaPrimary(s *site, w http.ResponseWriter, r *http.Request) (unreachable bool) {
	body, ok := rewindable(r)
	return m.retryMoving(s, w, r, body, ok, true, m.proxyOnce)
}

var proxies sync.Map // node, kind, site, primary URL → *httputil.ReverseProxy

// viaPrimary serves r from the site's primary through a reverse proxy
// built once per site and kind; build sets how the request is rewritten.
// Failures count in the site's forward errors and answer 503 with
// Retry-After (or, for a proxyTry marked local, nothing: see
// readViaPrimary).
func (m *Manager) viaPrimary(s *site, kind string, w http.ResponseWriter, r *http.Request, build func(target *url.URL) *httputil.ReverseProxy) {
	start := time.Now()
	s.fwdRequests.Add(1)
	defer func() { s.fwdNanos.Add(int64(time.Since(start))) }()
	name, primary := s.cfg.Name, s.cfg.PrimaryURL
	key := m.cfg.Node + "\x00" + kind + "\x00" + name + "\x00" + primary
	p, ok := proxies.Load(key)
	if !ok {
		target, err := url.Parse(primary)
		if err != nil {
			http.Error(w, "bad primary URL", http.StatusBadGateway)
			return
		}
		rp := build(target)
		rp.Transport = m.client.Transport
		rp.FlushInterval = -1 // PHP's flush(), libSQL's log stream
		rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			if try, _ := r.Context().Value(proxyTryKey{}).(*proxyTry); try != nil && errors.Is(err, errMisdirected) {
				try.misdirected = true // proxy tries again; nothing was written to w
				return
			}
			if cur := m.site(name); cur != nil {
				cur.fwdErrors.Add(1)
			}
			m.log.Error("passing a request to the primary failed", "site", name, "kind", kind, "primary", primary, "err", err)
			if try, _ := r.Context().Value(proxyTryKey{}).(*proxyTry); try != nil && try.local {
				try.unreachable = true // the caller serves it here; nothing was written to w
				return
			}
			// No answer from the primary (NewClient bounds the wait): a
			// write cannot be served anywhere else for now.
			w.Header().Set("Retry-After", strconv.Itoa(DefaultRetryAfter))
			http.Error(w, "site "+name+": primary unreachable, try again shortly", http.StatusServiceUnavailable)
		}
		p, _ = proxies.LoadOrStore(key, rp)
	}
	p.(*httputil.ReverseProxy).ServeHTTP(w, r)
}

// DefaultRetryBody is the largest request body proxy keeps in memory so
// that it can send a request again after a 421 during a change of
// primary; a larger body (an upload) streams once, and a 421 reaches the
// client.
const DefaultRetryBody = 1 << 20

// proxyTry is one attempt of proxy, carried in the outgoing request's
// context to the (shared) reverse proxy's hooks.
type proxyTry struct {
	retry       bool // a 421 may be retried: do not answer it
	misdirected bool // the node asked was not the primary; nothing written
	local       bool // a primary that does not answer: do not answer it either
	unreachable bool // it did not (local); nothing written
}

type proxyTryKey struct{}

// retryable421 is a reverse proxy's ModifyResponse for retryMoving: a
// 421 the attempt may retry goes to ErrorHandler, which leaves the
// client's response alone.
func retryable421(resp *http.Response) error {
	if try, _ := resp.Request.Context().Value(proxyTryKey{}).(*proxyTry); try != nil &&
		try.retry && resp.StatusCode == http.StatusMisdirectedRequest {
		return errMisdirected
	}
	return nil
}

// rewindable reads r's body into memory if it is at most
// DefaultRetryBody, so that each attempt can send it from the start; ok
// is false when it cannot (r.Body then still yields the whole body,
// once).
func rewindable(r *http.Request) (body func() io.ReadCloser, ok bool) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return func() io.ReadCloser { return http.NoBody }, true
	}
	if r.GetBody != nil {
		return func() io.ReadCloser {
			b, err := r.GetBody()
			if err != nil {
				return io.NopCloser(errReader{err})
			}
			return b
		}, true
	}
	if r.ContentLength > DefaultRetryBody {
		return nil, false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, DefaultRetryBody+1))
	if err != nil || len(buf) > DefaultRetryBody {
		// Hand on what was read and the rest (and the read's error):
		// the request goes once, as it would have without the buffer.
		rest := io.Reader(r.Body)
		if err != nil {
			rest = errReader{err}
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), rest), r.Body}
		return nil, false
	}
	r.ContentLength = int64(len(buf))
	return func() io.ReadCloser { return io.NopCloser(bytes.NewReader(buf)) }, true
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// proxy passes a client's request whole to the site's primary, with who
// the client is (address and scheme as the HTTP front worked them out
// behind trusted proxies), and turns the primary's log position after
// it into the read-your-writes cookie. During a change of primary the
// node asked may not be the primary (yet): its 421 ran nothing, so a
// request whose body can be sent again goes again, to the site's
// primary of the moment, for up to DefaultMoveRetry, as forwarded
// statements do. (Should this node become the primary meanwhile, the
// client gets the 421: the front's request no longer has its body.)
func (m *Manager) proxy(s *site, w http.ResponseWriter, r *http.Request) {
	body, ok := rewindable(r)
	m.retryMoving(s, w, r, body, ok, false, m.proxyOnce)
}

// retryMoving runs once (a reverse proxy to s's primary that leaves a
// retryable 421 to it, see proxyTry) until it was not refused with a
// 421, for up to DefaultMoveRetry, each time with the body from the
// start and the site's primary of the moment. ok false: once only.
// local: a primary that does not answer is left to the caller, and
// unreachable says so (nothing was written to w).
func (m *Manager) retryMoving(s *site, w http.ResponseWriter, r *http.Request, body func() io.ReadCloser, ok, local bool, once func(s *site, w http.ResponseWriter, r *http.Request)) (unreachable bool) {
	start := time.Now()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		try := &proxyTry{retry: ok && time.Since(start) < DefaultMoveRetry, local: local}
		rr := r.WithContext(context.WithValue(r.Context(), proxyTryKey{}, try))
		if ok {
			rr.Body = body()
		}
		once(s, w, rr)
		if try.unreachable {
			return true
		}
		if !try.misdirected {
			return false
		}
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			http.Error(w, "the site's primary is moving", http.StatusMisdirectedRequest)
			return false
		}
		if cur := m.site(s.cfg.Name); cur != nil && cur.cfg.Role == ephpm.RoleReplica && cur.cfg.PrimaryURL != "" {
			s = cur
		}
	}
}

// proxyOnce is one attempt of proxy.
func (m *Manager) proxyOnce(s *site, w http.ResponseWriter, r *http.Request) {
	name := s.cfg.Name
	m.viaPrimary(s, "http", w, r, func(target *url.URL) *httputil.ReverseProxy {
		return &httputil.ReverseProxy{
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
				if cur := m.site(name); cur != nil {
					pr.Out.Header.Set(hdrEpoch, strconv.FormatUint(cur.epoch.Load(), 10))
				}
				c := clientOf(pr.In)
				pr.Out.Header.Set(hdrClientAddr, net.JoinHostPort(c.IP, c.Port))
				proto := "http"
				if c.HTTPS {
					proto = "https"
				}
				pr.Out.Header.Set(hdrProto, proto)
				if c.ServerPort != "" {
					pr.Out.Header.Set(hdrServerPort, c.ServerPort)
				}
			},
			ModifyResponse: func(resp *http.Response) error {
				if err := retryable421(resp); err != nil {
					return err
				}
				got := parseEpoch(resp.Header.Get(hdrEpoch))
				resp.Header.Del(hdrEpoch)
				if sent := parseEpoch(resp.Request.Header.Get(hdrEpoch)); resp.StatusCode != http.StatusMisdirectedRequest && newerEpoch(sent, got) {
					// Cannot happen with a primary that checks epochs (it
					// refuses before running): the request may have run
					// there, so it is answered as it is, and logged.
					m.log.Error("a forwarded request was answered by a primary at an older epoch", "site", name, "sent", sent, "answered", got)
				}
				f := resp.Header.Get(hdrFrame)
				if f == "" {
					return nil
				}
				resp.Header.Del(hdrFrame)
				frame, err := strconv.ParseUint(f, 10, 64)
				if err != nil {
					return nil
				}
				ck := &http.Cookie{
					Name: CookieName, Value: m.frameCookie(name, frame, time.Now().Add(DefaultFrameCookieAge)),
					Path: "/", HttpOnly: true, MaxAge: int(DefaultFrameCookieAge / time.Second), SameSite: http.SameSiteLaxMode,
					Secure: clientOf(resp.Request).HTTPS,
				}
				resp.Header.Add("Set-Cookie", ck.String())
				return nil
			},
		}
	})
}

// clientOf is who sent r as the HTTP front believes (behind trusted
// proxies); without the front (a bare handler), the peer itself.
func clientOf(r *http.Request) ephpm.Client {
	if c, ok := ephpm.ClientOf(r.Context()); ok {
		return c
	}
	c := ephpm.Client{IP: r.RemoteAddr, HTTPS: r.TLS != nil}
	if h, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		c.IP, c.Port = h, p
	}
	return c
}
