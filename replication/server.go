package replication

import (
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/framelog"
)

// Headers between nodes.
const (
	hdrNode       = "X-Ephpm-Node"        // the calling node's name
	hdrForwarded  = "X-Ephpm-Forwarded"   // a whole client request proxied from a replica
	hdrClientAddr = "X-Ephpm-Client-Addr" // the client's address, on forwarded requests
	hdrProto      = "X-Ephpm-Proto"       // "https" when the client used TLS, else "http"
	hdrServerPort = "X-Ephpm-Server-Port" // the port the client reached (SERVER_PORT)
	hdrFrame      = "X-Ephpm-Frame"       // the primary's log position after a forwarded request
	hdrLogID      = "X-Ephpm-Log-Id"
	hdrSnapEnd    = "X-Ephpm-Snapshot-End"
	hdrSnapPages  = "X-Ephpm-Snapshot-Pages"
	hdrSnapSum    = "X-Ephpm-Snapshot-Sum" // checksum of the snapshot's last frame
)

// Handler serves the replication listener: the node-to-node endpoints
// under /_ephpm/repl/, whole requests forwarded by replicas (handed to
// front), and everything else to public (the libSQL protocols, which
// authenticate with their own per-site tokens); public may be nil.
func (m *Manager) Handler(front, public http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ephpm/repl/v1/stream", m.auth(m.serveStream))
	mux.HandleFunc("GET /_ephpm/repl/v1/snapshot", m.auth(m.serveSnapshot))
	mux.HandleFunc("POST /_ephpm/repl/v1/repair", m.auth(m.serveRepair))
	mux.HandleFunc("POST /_ephpm/repl/v1/exec", m.auth(m.serveExec))
	mux.HandleFunc("POST /_ephpm/repl/v1/fence", m.auth(m.serveFence))
	mux.HandleFunc("POST /_ephpm/repl/v1/unfence", m.auth(m.serveUnfence))
	mux.HandleFunc("POST /_ephpm/repl/v1/ack", m.auth(m.serveAck)) // sync = "replica" (syncack.go; h-write)
	mux.HandleFunc("GET /_ephpm/repl/v1/ping", m.auth(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /_ephpm/repl/v1/status", m.auth(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		list := m.Status()
		if r.URL.Query().Get("quarantined") == "1" {
			// Lists each site's database directory: for the operator's
			// status, not for the frequent polls of placement.
			for i := range list {
				list[i].Quarantined = m.Quarantined(list[i].Site)
			}
		}
		_ = json.NewEncoder(w).Encode(list)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_ephpm/repl/") {
			mux.ServeHTTP(w, r)
			return
		}
		if r.Header.Get(hdrForwarded) != "" {
			m.authBy(hdrAuth, func(w http.ResponseWriter, r *http.Request) { m.serveForwarded(front, w, r) })(w, r)
			return
		}
		if public != nil {
			public.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

// auth admits requests that carry the node token.
func (m *Manager) auth(h http.HandlerFunc) http.HandlerFunc { return m.authBy("Authorization", h) }

func (m *Manager) authBy(header string, h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + m.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get(header))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			m.log.Warn("replication request refused: bad or missing token", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="ephpm replication"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// serveStream sends a site's frames from ?from= as they are committed,
// until the replica goes away.
func (m *Manager) serveStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("site")
	from, err := strconv.ParseUint(q.Get("from"), 10, 64)
	if err != nil {
		http.Error(w, "bad from", http.StatusBadRequest)
		return
	}
	l, _, release, err := m.primaryLog(r.Context(), name)
	if err != nil {
		m.refuse(w, name, err)
		return
	}
	id, start, next := l.ID(), l.Start(), l.Next()
	var rejoin error
	if q.Get("rejoin") == "1" {
		// A replica that names its last frame by checksum: see
		// checkRejoin (it understands diverged and need-repair).
		sum, serr := strconv.ParseUint(q.Get("sum"), 10, 64)
		rejoin = checkRejoin(l, q.Get("log_id"), from, sum, serr == nil, q.Get("has_pages") == "1")
	}
	release()
	// A replica that knows a newer epoch: this node was replaced.
	if err := m.checkEpoch(r.Context(), m.site(name), parseEpoch(q.Get("epoch"))); err != nil {
		http.Error(w, refusalWord(err), http.StatusConflict)
		return
	}
	switch want := q.Get("log_id"); {
	case q.Get("rejoin") == "1":
		if rejoin != nil {
			if !errors.Is(rejoin, errDiverged) && !errors.Is(rejoin, errNeedRepair) {
				m.log.Error("replication stream: check the replica's position", "site", name, "err", rejoin)
				http.Error(w, "site unavailable", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, refusalWord(rejoin), http.StatusConflict)
			return
		}
	case want != "" && want != id:
		http.Error(w, refusalWord(errLogReset), http.StatusConflict)
		return
	case from > next:
		http.Error(w, refusalWord(errAhead), http.StatusConflict)
		return
	case from < start:
		http.Error(w, refusalWord(ephpm.ErrNeedSnapshot), http.StatusConflict)
		return
	}
	s := m.site(name)
	if s == nil {
		m.refuse(w, name, ephpm.ErrNotPrimary)
		return
	}
	w.Header().Set("Content-Type", "application/x-ephpm-frames")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	hello, _ := json.Marshal(helloMsg{LogID: id, Start: start, Next: next, Epoch: s.epoch.Load()})
	if writeMsg(w, msgHello, hello) != nil || rc.Flush() != nil {
		return
	}
	ctx := r.Context()
	var buf []byte
	for {
		// Wait (without holding the database) until the log has frames
		// past from, or say we are alive.
		s.wakeMu.Lock()
		wake := s.wake
		s.wakeMu.Unlock()
		if s.known.Load() <= from {
			t := time.NewTimer(DefaultPing)
			select {
			case <-wake:
				t.Stop()
				continue
			case <-t.C:
				var p [24]byte
				binary.BigEndian.PutUint64(p[:], uint64(time.Now().UnixNano()))
				binary.BigEndian.PutUint64(p[8:], s.known.Load())
				binary.BigEndian.PutUint64(p[16:], s.epoch.Load())
				if writeMsg(w, msgPing, p[:]) != nil || rc.Flush() != nil {
					return
				}
				continue
			case <-s.retired:
				// SetSites replaced the site (a demotion): the replica
				// reconnects to whoever serves it now.
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		l, _, release, err := m.primaryLog(ctx, name)
		if err != nil {
			m.log.Warn("replication stream: site unavailable", "site", name, "err", err)
			return
		}
		if l.ID() != id {
			release()
			_ = writeMsg(w, msgError, []byte(refusalWord(errLogReset))) // the stream ends either way
			return
		}
		// A fresh buffer per batch: idle streams hold no memory.
		buf, err = l.ReadFramesPartial(make([]byte, 8, 8+framelog.FrameSize), from, DefaultBatchFrames)
		release()
		if errors.Is(err, ephpm.ErrNeedSnapshot) {
			// Compaction overtook this replica.
			_ = writeMsg(w, msgError, []byte(refusalWord(err))) // the stream ends either way
			return
		}
		if err != nil {
			m.log.Error("replication stream: read log", "site", name, "err", err)
			return
		}
		n := (len(buf) - 8) / framelog.FrameSize
		if n == 0 {
			// Nothing past from after all (a log reopened shorter):
			// wait for the next append rather than spin.
			select {
			case <-wake:
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return
			}
			continue
		}
		binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
		if writeMsg(w, msgFrames, buf) != nil || rc.Flush() != nil {
			return
		}
		from += uint64(n)
	}
}

func (m *Manager) refuse(w http.ResponseWriter, name string, err error) {
	if errors.Is(err, ephpm.ErrNotPrimary) {
		http.Error(w, "this node is not the primary for "+name, http.StatusMisdirectedRequest)
		return
	}
	m.log.Error("replication: site unavailable", "site", name, "err", err)
	http.Error(w, "site unavailable", http.StatusServiceUnavailable)
}

// serveSnapshot sends the site's snapshot: the pages as of a frame.
func (m *Manager) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("site")
	l, _, release, err := m.primaryLog(r.Context(), name)
	if err != nil {
		m.refuse(w, name, err)
		return
	}
	defer release()
	snap, err := l.Snapshot(r.Context())
	if err != nil {
		http.Error(w, "no snapshot: stream from frame 0", http.StatusNotFound)
		return
	}
	defer snap.Close()
	w.Header().Set(hdrLogID, snap.ID())
	w.Header().Set(hdrSnapEnd, strconv.FormatUint(snap.End(), 10))
	w.Header().Set(hdrSnapPages, strconv.FormatUint(uint64(snap.Pages()), 10))
	if sum, ok := snap.Sum(); ok {
		w.Header().Set(hdrSnapSum, strconv.FormatUint(sum, 10))
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(int64(snap.Pages())*4096, 10))
	if _, err := io.Copy(w, snap.Reader()); err != nil {
		m.log.Warn("snapshot send failed", "site", name, "err", err)
	}
}

// serveForwarded runs a request a replica proxied whole, as if the client
// had sent it here; the response says how far the site's log is after it,
// so the replica can make the client's next read wait for it. Only here,
// behind the peer's token, are the client's address and scheme taken
// from the request's headers (the replica's trusted-proxy processing):
// the front gets them in the request's context and believes them.
func (m *Manager) serveForwarded(front http.Handler, w http.ResponseWriter, r *http.Request) {
	c := forwardedClient(r)
	theirs := parseEpoch(r.Header.Get(hdrEpoch))
	r.RemoteAddr = net.JoinHostPort(c.IP, c.Port)
	if c.HTTPS && r.TLS == nil {
		r.TLS = &tls.ConnectionState{}
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Ephpm-") {
			r.Header.Del(k)
		}
	}
	host := r.Host
	// Only a primary runs a forwarded request: a replica passing it on
	// could send it round in a loop.
	if m.siteRole(host) != ephpm.RolePrimary {
		http.Error(w, "this node is not the primary for "+host, http.StatusMisdirectedRequest)
		return
	}
	// A replica that knows a newer epoch: this node was replaced; the
	// request does not run here (421: the replica sends it again to the
	// primary of the moment).
	if s := m.site(m.siteName(host)); s != nil {
		if err := m.checkEpoch(r.Context(), s, theirs); err != nil {
			m.refuseStale(w, s, err)
			return
		}
	}
	fw := &frameWriter{ResponseWriter: w, m: m, host: host}
	front.ServeHTTP(fw, r.WithContext(ephpm.WithClient(r.Context(), c)))
}

// forwardedClient reads the client a replica names on a forwarded
// request; what is missing or malformed falls back to the replica (the
// peer) and plain HTTP.
func forwardedClient(r *http.Request) ephpm.Client {
	c := ephpm.Client{Via: r.Header.Get(hdrForwarded)}
	c.IP, c.Port, _ = net.SplitHostPort(r.RemoteAddr)
	if h, p, err := net.SplitHostPort(r.Header.Get(hdrClientAddr)); err == nil && net.ParseIP(h) != nil && isPort(p) {
		c.IP, c.Port = h, p
	}
	c.HTTPS = r.Header.Get(hdrProto) == "https"
	if p := r.Header.Get(hdrServerPort); p != "" && isPort(p) {
		c.ServerPort = p
	}
	return c
}

// isPort: "" or a decimal TCP port.
func isPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n > 0
}

// frameWriter stamps the site's log position on the response headers.
type frameWriter struct {
	http.ResponseWriter
	m     *Manager
	host  string
	wrote bool
}

func (f *frameWriter) stamp() {
	if f.wrote {
		return
	}
	f.wrote = true
	if next, ok := f.m.logNext(f.host); ok {
		f.Header().Set(hdrFrame, strconv.FormatUint(next, 10))
	}
	if s := f.m.site(f.m.siteName(f.host)); s != nil {
		f.Header().Set(hdrEpoch, strconv.FormatUint(s.epoch.Load(), 10))
	}
}

func (f *frameWriter) WriteHeader(code int) { f.stamp(); f.ResponseWriter.WriteHeader(code) }
func (f *frameWriter) Write(b []byte) (int, error) {
	f.stamp()
	return f.ResponseWriter.Write(b)
}
func (f *frameWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// siteRole is this node's role for the site serving host.
func (m *Manager) siteRole(host string) ephpm.Role {
	if s := m.site(m.siteName(host)); s != nil {
		return s.cfg.Role
	}
	return ""
}

func (m *Manager) siteName(host string) string {
	name := strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = strings.ToLower(h)
	}
	if m.cfg.SiteOf != nil {
		if n, ok := m.cfg.SiteOf(host); ok {
			name = n
		}
	}
	return name
}

// logNext is the primary log position of the site serving host. A
// request forwarded here ran on this node as primary; if the site was
// demoted while it ran (a change of primary), its later writes went to
// the new primary statement by statement, and frame numbers go on in the
// same log: the position is then the highest of the demoted log's end,
// the new primary's as last heard and what forwarded statements reached
// — never below the request's writes (a higher one only makes a read
// wait a little longer).
func (m *Manager) logNext(host string) (uint64, bool) {
	s := m.site(m.siteName(host))
	if s != nil && s.cfg.Role == ephpm.RoleReplica {
		next := max(s.known.Load(), s.applied.Load(), s.fwdFrame.Load())
		return next, next > 0
	}
	if s == nil || s.cfg.Role != ephpm.RolePrimary {
		return 0, false
	}
	if id, _ := s.logID.Load().(string); id == "" {
		return 0, false // no log yet: nothing written through it
	}
	return s.known.Load(), true
}
