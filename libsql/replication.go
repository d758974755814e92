package libsql

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/sqlite"
)

// The v1 embedded-replica protocol: the wal_log.ReplicationLog and
// proxy.Proxy gRPC services, unary calls over gRPC-Web on HTTP/1.1.

// grpc serves one gRPC-Web call.
func (s *Server) grpc(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		writeGRPCWeb(w, nil, &grpcStatus{grpcInvalidArgument, "request body: " + err.Error()})
		return
	}
	msg, err := parseGRPCWebRequest(body)
	if err != nil {
		writeGRPCWeb(w, nil, &grpcStatus{grpcInvalidArgument, err.Error()})
		return
	}
	s.withSite(w, r, grpcAuthError, func(rs *reqSite) {
		if rs.site.Forward != nil {
			// A replica passes the embedded-replica protocol on whole: the
			// log and the write sessions are the primary's.
			rs.site.Forward(w, r, body)
			return
		}
		var (
			out []byte
			st  *grpcStatus
		)
		switch method := r.URL.Path; method {
		case "/wal_log.ReplicationLog/Hello":
			out, st = s.hello(rs.site)
		case "/wal_log.ReplicationLog/BatchLogEntries":
			out, st = s.batchLogEntries(r, rs.site, msg)
		case "/wal_log.ReplicationLog/Snapshot":
			s.snapshot(w, r, rs.site, msg)
			return
		case "/wal_log.ReplicationLog/LogEntries":
			s.logEntries(w, r, rs.site, msg)
			return
		case "/proxy.Proxy/Execute":
			out, st = s.proxyExecute(r.Context(), rs, msg)
		case "/proxy.Proxy/Describe":
			out, st = s.proxyDescribe(r.Context(), rs, msg)
		case "/proxy.Proxy/Disconnect":
			out, st = s.proxyDisconnect(rs, msg)
		default:
			st = &grpcStatus{grpcUnimplemented, "method " + method + " is not implemented"}
		}
		if st != nil {
			writeGRPCWeb(w, nil, st)
			return
		}
		writeGRPCWeb(w, [][]byte{out}, nil)
	})
}

func grpcAuthError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnauthorized):
		writeGRPCWeb(w, nil, &grpcStatus{grpcUnauthenticated, err.Error()})
	case errors.Is(err, ErrNoSite):
		writeGRPCWeb(w, nil, &grpcStatus{grpcFailedPrecondition, "NAMESPACE_DOESNT_EXIST"})
	default:
		writeGRPCWeb(w, nil, &grpcStatus{grpcInternal, err.Error()})
	}
}

var errNotPrimaryStatus = &grpcStatus{grpcInvalidArgument, "not a primary"}

// sessionToken is stateless: a MAC of the site and its log, so that a
// token from before a log reset (or for another site) is refused.
func (s *Server) sessionToken(site *Site) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("session\x00" + site.Name + "\x00" + site.Log.ID()))
	var b [16]byte
	copy(b[:], m.Sum(nil))
	return formatUUID(b)
}

func (s *Server) checkSession(r *http.Request, site *Site) *grpcStatus {
	if site.Log == nil {
		return errNotPrimaryStatus
	}
	if tok := r.Header.Get("x-session-token"); tok == "" || !hmac.Equal([]byte(tok), []byte(s.sessionToken(site))) {
		return &grpcStatus{grpcFailedPrecondition, "NO_HELLO"}
	}
	return nil
}

func (s *Server) hello(site *Site) ([]byte, *grpcStatus) {
	if site.Log == nil {
		return nil, errNotPrimaryStatus
	}
	h := helloResponse{generationID: s.genID, logID: site.Log.ID(), sessionToken: s.sessionToken(site)}
	if n := site.Log.Next(); n > 0 {
		h.current, h.hasCurrent = n-1, true
	}
	return h.marshal(), nil
}

func (s *Server) batchLogEntries(r *http.Request, site *Site, msg []byte) ([]byte, *grpcStatus) {
	if st := s.checkSession(r, site); st != nil {
		return nil, st
	}
	off, err := decodeLogOffset(msg)
	if err != nil {
		return nil, &grpcStatus{grpcInvalidArgument, err.Error()}
	}
	if off.hasFlavor && off.flavor != 0 {
		return nil, &grpcStatus{grpcInvalidArgument, "only the sqlite WAL flavor is served"}
	}
	data, err := site.Log.ReadFrames(nil, off.next, DefaultBatchFrames)
	switch {
	case errors.Is(err, ephpm.ErrNeedSnapshot):
		return nil, &grpcStatus{grpcFailedPrecondition, "NEED_SNAPSHOT"}
	case err != nil:
		s.log.Error("read frames", "site", site.Name, "from", off.next, "err", err)
		return nil, &grpcStatus{grpcInternal, "read frames: " + err.Error()}
	case len(data)%FrameSize != 0:
		return nil, &grpcStatus{grpcInternal, "frame log returned a partial frame"}
	}
	return marshalFrames(data), nil
}

// snapshotFlushPages is how many pages are written between flushes.
const snapshotFlushPages = 256

// snapshot streams the database as frames: every page numbered with the
// snapshot's end frame (the client commits at the highest frame number it
// saw), only the last one carrying size_after so that the whole snapshot
// is one transaction on the replica.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request, site *Site, msg []byte) {
	if st := s.checkSession(r, site); st != nil {
		writeGRPCWeb(w, nil, st)
		return
	}
	if _, err := decodeLogOffset(msg); err != nil {
		writeGRPCWeb(w, nil, &grpcStatus{grpcInvalidArgument, err.Error()})
		return
	}
	snap, err := site.Log.Snapshot(r.Context())
	if err != nil {
		s.log.Error("open snapshot", "site", site.Name, "err", err)
		writeGRPCWeb(w, nil, &grpcStatus{grpcUnavailable, "snapshot not found"})
		return
	}
	defer snap.Close()
	pages := snap.Pages()
	if pages == 0 {
		writeGRPCWeb(w, nil, &grpcStatus{grpcUnavailable, "snapshot not found"})
		return
	}
	w.Header().Set("Content-Type", "application/grpc-web+proto")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	frame := make([]byte, FrameSize)
	var out []byte
	for no := uint32(1); no <= pages; no++ {
		binary.LittleEndian.PutUint64(frame[0:], snap.End())
		binary.LittleEndian.PutUint64(frame[8:], 0) // checksum: not checked by replicas
		binary.LittleEndian.PutUint32(frame[16:], no)
		var after uint32
		if no == pages {
			after = pages
		}
		binary.LittleEndian.PutUint32(frame[20:], after)
		if err := snap.ReadPage(no, frame[24:]); err != nil {
			s.log.Error("read snapshot page", "site", site.Name, "page", no, "err", err)
			w.Write(appendTrailer(out, grpcInternal, "read snapshot: "+err.Error()))
			return
		}
		out = appendDataFrame(out, appendMsg(nil, 1, frame)) // one wal_log.Frame per stream message
		if no%snapshotFlushPages == 0 {
			if _, err := w.Write(out); err != nil {
				return
			}
			out = out[:0]
			rc.Flush()
		}
	}
	w.Write(appendTrailer(out, grpcOK, ""))
}

// logEntries streams frames from the offset on and then each new
// transaction as it is logged (a long poll without end: push latency for
// replicas that keep the call open), until the client or the server goes.
func (s *Server) logEntries(w http.ResponseWriter, r *http.Request, site *Site, msg []byte) {
	if st := s.checkSession(r, site); st != nil {
		writeGRPCWeb(w, nil, st)
		return
	}
	off, err := decodeLogOffset(msg)
	if err != nil || off.hasFlavor && off.flavor != 0 {
		writeGRPCWeb(w, nil, &grpcStatus{grpcInvalidArgument, "bad log offset"})
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.loops.Context(), cancel)
	defer stop()
	w.Header().Set("Content-Type", "application/grpc-web+proto")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	next := off.next
	var buf, out []byte
	for {
		buf, err = site.Log.ReadFrames(buf[:0], next, DefaultBatchFrames)
		switch {
		case errors.Is(err, ephpm.ErrNeedSnapshot):
			w.Write(appendTrailer(nil, grpcFailedPrecondition, "NEED_SNAPSHOT"))
			return
		case err != nil:
			w.Write(appendTrailer(nil, grpcInternal, "read frames: "+err.Error()))
			return
		}
		out = out[:0]
		for len(buf) >= FrameSize {
			out = appendDataFrame(out, appendMsg(nil, 1, buf[:FrameSize]))
			next = binary.LittleEndian.Uint64(buf) + 1
			buf = buf[FrameSize:]
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return
			}
			rc.Flush()
			continue
		}
		if err := site.Log.Wait(ctx, next); err != nil {
			if s.loops.Context().Err() != nil {
				w.Write(appendTrailer(nil, grpcUnavailable, "server shutting down"))
			}
			return
		}
	}
}

// proxySession is an embedded replica's write session (its client_id).
type proxySession struct {
	mu       sync.Mutex
	key      string
	siteName string
	sess     session
	lastUsed time.Time
	idle     time.Duration
	done     bool
}

func (p *proxySession) closeLocked(ctx context.Context) {
	p.sess.close(ctx)
	p.done = true
}

func (p *proxySession) tryExpire(ctx context.Context, now time.Time) bool {
	if !p.mu.TryLock() {
		return false
	}
	defer p.mu.Unlock()
	if !p.done && now.Sub(p.lastUsed) > p.idle {
		p.closeLocked(ctx)
	}
	return p.done
}

func (p *proxySession) isDead() bool {
	if !p.mu.TryLock() {
		return false
	}
	defer p.mu.Unlock()
	return p.done
}

// proxySessionFor returns the locked session of a client, creating it.
func (s *Server) proxySessionFor(site *Site, clientID string) (*proxySession, *grpcStatus) {
	key := site.Name + "\x00" + clientID
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, &grpcStatus{grpcUnavailable, "server closed"}
		}
		p := s.proxies[key]
		if p == nil {
			if len(s.proxies) >= s.cfg.MaxProxySessions {
				s.mu.Unlock()
				return nil, &grpcStatus{grpcUnavailable, "too many write sessions"}
			}
			p = &proxySession{key: key, siteName: site.Name, idle: s.cfg.ProxyIdle, lastUsed: time.Now(), sess: s.newSession()}
			s.proxies[key] = p
			s.startReaperLocked()
		}
		s.mu.Unlock()
		p.mu.Lock()
		if !p.done {
			return p, nil
		}
		p.mu.Unlock() // expired meanwhile: make a new one
		s.mu.Lock()
		if s.proxies[key] == p {
			delete(s.proxies, key)
		}
		s.mu.Unlock()
	}
}

// finishProxy ends a call: a session outside a transaction holds nothing
// and is dropped at once.
func (s *Server) finishProxy(ctx context.Context, p *proxySession, rs *reqSite) {
	p.sess.endRequest(ctx, rs)
	p.lastUsed = time.Now()
	if p.sess.autocommit() {
		p.closeLocked(ctx)
	}
	done := p.done
	p.mu.Unlock()
	if done {
		s.mu.Lock()
		if s.proxies[p.key] == p {
			delete(s.proxies, p.key)
		}
		s.mu.Unlock()
	}
}

func (s *Server) proxyExecute(ctx context.Context, rs *reqSite, msg []byte) ([]byte, *grpcStatus) {
	req, err := decodeProgramReq(msg)
	if err != nil {
		return nil, &grpcStatus{grpcInvalidArgument, err.Error()}
	}
	p, st := s.proxySessionFor(rs.site, req.clientID)
	if st != nil {
		return nil, st
	}
	res := make([]*execResult, len(req.steps))
	errs := make([]*sqlError, len(req.steps))
	ran := make([]bool, len(req.steps))
	for i, step := range req.steps {
		ok, e := evalPCond(step.cond, i, errs, ran, p.sess.autocommit(), 0)
		if e != nil {
			errs[i], ran[i] = e, true
			continue
		}
		if !ok {
			continue
		}
		ran[i] = true
		res[i], errs[i] = s.proxyStep(ctx, &p.sess, rs.site.DB, &step.query)
	}
	inTx := !p.sess.autocommit()
	s.finishProxy(context.WithoutCancel(ctx), p, rs)
	var frame uint64
	has := false
	if rs.site.Log != nil {
		if n := rs.site.Log.Next(); n > 0 {
			frame, has = n-1, true
		}
	}
	return marshalExecuteResults(res, errs, inTx, frame, has), nil
}

func (s *Server) proxyStep(ctx context.Context, sess *session, db *sqlite.DB, q *pQuery) (*execResult, *sqlError) {
	one, err := parseOne(q.stmt)
	if err != nil {
		return nil, toSQLError(err)
	}
	args, err := bindArgs(one, q.pos, q.names, q.named)
	if err != nil {
		return nil, toSQLError(err)
	}
	res, err := sess.exec(ctx, db, one, args, !q.skipRows)
	if err != nil {
		return nil, toSQLError(err)
	}
	return res, nil
}

func evalPCond(c *pCond, i int, errs []*sqlError, ran []bool, autocommit bool, depth int) (bool, *sqlError) {
	if c == nil {
		return true, nil
	}
	if depth > maxCondDepth {
		return false, &sqlError{code: "SQLITE_ERROR", msg: "condition nested too deeply"}
	}
	switch c.kind {
	case 1, 2:
		if c.step < 0 || c.step >= int64(i) {
			return false, &sqlError{code: "SQLITE_ERROR", msg: "condition refers to a step not before this one"}
		}
		k := c.step
		if c.kind == 1 {
			return ran[k] && errs[k] == nil, nil
		}
		return ran[k] && errs[k] != nil, nil
	case 3:
		if len(c.conds) != 1 {
			return false, &sqlError{code: "SQLITE_ERROR", msg: "not condition without operand"}
		}
		v, e := evalPCond(&c.conds[0], i, errs, ran, autocommit, depth+1)
		return !v && e == nil, e
	case 4, 5:
		for j := range c.conds {
			v, e := evalPCond(&c.conds[j], i, errs, ran, autocommit, depth+1)
			if e != nil {
				return false, e
			}
			if c.kind == 4 && !v {
				return false, nil
			}
			if c.kind == 5 && v {
				return true, nil
			}
		}
		return c.kind == 4, nil
	case 6:
		return autocommit, nil
	}
	return false, &sqlError{code: "SQLITE_ERROR", msg: "unknown condition"}
}

func (s *Server) proxyDescribe(ctx context.Context, rs *reqSite, msg []byte) ([]byte, *grpcStatus) {
	_, stmt, err := decodeDescribeRequest(msg)
	if err != nil {
		return nil, &grpcStatus{grpcInvalidArgument, err.Error()}
	}
	d, e := describe(ctx, rs.site, stmt)
	return marshalDescribeResult(d, e), nil
}

func (s *Server) proxyDisconnect(rs *reqSite, msg []byte) ([]byte, *grpcStatus) {
	clientID, _, err := decodeDescribeRequest(msg) // DisconnectMessage{1 client_id}
	if err != nil {
		return nil, &grpcStatus{grpcInvalidArgument, err.Error()}
	}
	key := rs.site.Name + "\x00" + strings.Clone(clientID)
	s.mu.Lock()
	p := s.proxies[key]
	delete(s.proxies, key)
	s.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		p.closeLocked(context.Background())
		p.mu.Unlock()
	}
	return nil, nil
}
