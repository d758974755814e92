package libsql

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
)

// stream is a Hrana stream: a session plus its stored SQL texts, reached
// through batons. Requests on one stream are serialised by mu.
type stream struct {
	mu       sync.Mutex
	id       uint64
	seq      uint64 // the sequence number the next baton must carry
	siteName string
	sess     session
	sqls     map[int32]string
	lastUsed time.Time
	idle     time.Duration
	done     bool // closed or expired: batons for it are refused
}

func (st *stream) closeLocked(ctx context.Context) {
	st.sess.close(ctx)
	st.sqls = nil
	st.done = true
}

func (st *stream) tryExpire(ctx context.Context, now time.Time) bool {
	if !st.mu.TryLock() {
		return false // a request is running on it
	}
	defer st.mu.Unlock()
	if !st.done && now.Sub(st.lastUsed) > st.idle {
		st.closeLocked(ctx)
	}
	return st.done
}

func (st *stream) isDead() bool {
	if !st.mu.TryLock() {
		return false
	}
	defer st.mu.Unlock()
	return st.done
}

// errStreamExpired is answered as 400 {code: STREAM_EXPIRED}.
var errStreamExpired = errors.New("the stream has expired due to inactivity")

// openStream returns the locked stream a baton names, or a new one.
func (s *Server) openStream(baton *string, siteName string) (*stream, error) {
	if baton == nil || *baton == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return nil, errors.New("server closed")
		}
		if len(s.streams) >= s.cfg.MaxStreams {
			return nil, errTooManyStreams
		}
		// Random, not counted: a replica tells its own batons from its
		// primary's (same key, derived from the cluster token) by the id.
		id := mrand.Uint64()
		for s.streams[id] != nil || id == 0 {
			id = mrand.Uint64()
		}
		st := &stream{id: id, siteName: siteName, idle: s.cfg.StreamIdle, lastUsed: time.Now(), sess: s.newSession()}
		st.mu.Lock()
		s.streams[st.id] = st
		s.startReaperLocked()
		return st, nil
	}
	id, seq, err := s.decodeBaton(*baton)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	if st == nil {
		return nil, errStreamExpired // our baton (HMAC), stream gone
	}
	st.mu.Lock()
	switch {
	case st.done:
		st.mu.Unlock()
		return nil, errStreamExpired
	case st.seq != seq || st.siteName != siteName:
		st.mu.Unlock()
		return nil, errBadBaton
	}
	return st, nil
}

var errTooManyStreams = errors.New("too many open streams")

func streamError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errStreamExpired):
		jsonError(w, http.StatusBadRequest, err.Error(), "STREAM_EXPIRED")
	case errors.Is(err, errTooManyStreams):
		jsonError(w, http.StatusServiceUnavailable, err.Error(), "TOO_MANY_STREAMS")
	default:
		httpError(w, http.StatusBadRequest, err.Error())
	}
}

// finishStream ends a request on a locked stream: it keeps the site open
// if a transaction goes on, and returns the next baton (nil once closed).
func (s *Server) finishStream(ctx context.Context, st *stream, rs *reqSite) *string {
	st.sess.endRequest(ctx, rs)
	st.lastUsed = time.Now()
	if st.done {
		st.mu.Unlock()
		s.mu.Lock()
		delete(s.streams, st.id)
		s.mu.Unlock()
		return nil
	}
	st.seq++
	b := s.encodeBaton(st.id, st.seq)
	st.mu.Unlock()
	return &b
}

func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "request body: "+err.Error())
		return nil, false
	}
	if err := json.Unmarshal(body, v); err != nil {
		httpError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return nil, false
	}
	return body, true
}

// reforward passes a request on to the site's new primary when it may
// run again there (session.movable: a write refused because the primary
// moved, nothing written here) and the site says where (Site.Reforward).
// This node's stream ends (it holds nothing: the request began outside a
// transaction); what the request's reads answered here is dropped. It
// reports whether it answered the request; if not, st is still the
// caller's to finish.
func (s *Server) reforward(ctx context.Context, st *stream, rs *reqSite, w http.ResponseWriter, r *http.Request, body []byte) bool {
	if !st.sess.movable() || rs.site.Reforward == nil {
		return false
	}
	fwd := rs.site.Reforward()
	if fwd == nil {
		return false
	}
	st.closeLocked(context.WithoutCancel(ctx))
	s.finishStream(context.WithoutCancel(ctx), st, rs)
	fwd(w, r, withoutBaton(body))
	return true
}

// withoutBaton is a request's body with its baton set to null (the
// stream it named stays on this node), or as it is when it has none.
func withoutBaton(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	if b, ok := m["baton"]; !ok || string(b) == "null" {
		return body
	}
	m["baton"] = json.RawMessage("null")
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return b
}

// handOver ends this node's stream when a request that continues it goes
// to the primary (a client that read here and now writes), and takes the
// baton out of the request: the primary opens a stream of its own, whose
// baton the client follows from then on.
func (s *Server) handOver(baton *string, siteName string, body []byte) []byte {
	if baton == nil || *baton == "" {
		return body
	}
	id, _, err := s.decodeBaton(*baton)
	if err != nil {
		return body
	}
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	if st == nil || st.siteName != siteName {
		return body
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	m["baton"] = json.RawMessage("null")
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	st.mu.Lock()
	st.closeLocked(context.Background())
	st.mu.Unlock()
	return b
}

// forPrimary reports whether a replica must pass a request on to the
// site's primary: it continues a stream the primary holds (a baton this
// node does not know), or it may write (a statement the lexer does not
// call a read, BEGIN included). Reads outside a transaction stay here.
func (s *Server) forPrimary(baton *string, reqs []streamReq, batch *hBatch) bool {
	if baton != nil && *baton != "" {
		id, _, err := s.decodeBaton(*baton)
		s.mu.Lock()
		_, local := s.streams[id]
		s.mu.Unlock()
		if err != nil || !local {
			return true
		}
	}
	writes := func(sql *string) bool {
		if sql == nil {
			return false
		}
		sts, err := splitSQL(*sql)
		if err != nil {
			return false // this node answers with the syntax error
		}
		for _, st := range sts {
			if st.kind != kindRead {
				return true
			}
		}
		return false
	}
	batchWrites := func(b *hBatch) bool {
		if b == nil {
			return false
		}
		for i := range b.Steps {
			if writes(b.Steps[i].Stmt.SQL) {
				return true
			}
		}
		return false
	}
	for i := range reqs {
		q := &reqs[i]
		switch {
		case q.Stmt != nil && writes(q.Stmt.SQL), writes(q.SQL), batchWrites(q.Batch):
			return true
		}
	}
	return batchWrites(batch)
}

// pipeline serves POST /v2/pipeline and /v3/pipeline.
func (s *Server) pipeline(w http.ResponseWriter, r *http.Request, rs *reqSite) {
	var req pipelineReq
	body, ok := s.readJSON(w, r, &req)
	if !ok {
		return
	}
	if rs.site.Forward != nil && s.forPrimary(req.Baton, req.Requests, nil) {
		rs.site.Forward(w, r, s.handOver(req.Baton, rs.site.Name, body))
		return
	}
	st, err := s.openStream(req.Baton, rs.site.Name)
	if err != nil {
		streamError(w, err)
		return
	}
	ctx := r.Context()
	outside := st.sess.beginRequest()
	out := []byte(`{"results":[`)
	for i := range req.Requests {
		if i > 0 {
			out = append(out, ',')
		}
		out = s.streamRequest(ctx, out, st, rs, &req.Requests[i])
	}
	if outside && s.reforward(ctx, st, rs, w, r, body) {
		return
	}
	baton := s.finishStream(context.WithoutCancel(ctx), st, rs)
	out = append(out, `],"base_url":null,"baton":`...)
	if baton == nil {
		out = append(out, "null"...)
	} else {
		out = appendJSONString(out, *baton)
	}
	out = append(out, '}')
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// streamRequest runs one request and appends its StreamResult.
func (s *Server) streamRequest(ctx context.Context, out []byte, st *stream, rs *reqSite, req *streamReq) []byte {
	okResp := func(body string) []byte {
		out = append(out, `{"type":"ok","response":{"type":"`...)
		out = append(out, req.Type...)
		out = append(out, '"')
		out = append(out, body...)
		return append(out, "}}"...)
	}
	fail := func(e *sqlError) []byte {
		out = append(out, `{"type":"error","error":`...)
		out = appendError(out, e)
		return append(out, '}')
	}
	if st.done {
		return fail(&sqlError{code: "STREAM_CLOSED", msg: "the stream is closed"})
	}
	db := rs.site.DB
	switch req.Type {
	case "close":
		st.closeLocked(ctx)
		return okResp("")
	case "execute":
		if req.Stmt == nil {
			return fail(&sqlError{code: "PROTO_ERROR", msg: "execute without stmt"})
		}
		res, e := s.execStmt(ctx, st, rs, req.Stmt)
		if e != nil {
			return fail(e)
		}
		return okResp(`,"result":` + string(appendStmtResult(nil, res, replIndex(rs.site))))
	case "batch":
		if req.Batch == nil {
			return fail(&sqlError{code: "PROTO_ERROR", msg: "batch without batch"})
		}
		res, errs := s.runBatch(ctx, st, rs, req.Batch, nil)
		b := []byte(`,"result":{"step_results":[`)
		for i, r := range res {
			if i > 0 {
				b = append(b, ',')
			}
			if r == nil {
				b = append(b, "null"...)
			} else {
				b = appendStmtResult(b, r, replIndex(rs.site))
			}
		}
		b = append(b, `],"step_errors":[`...)
		for i, e := range errs {
			if i > 0 {
				b = append(b, ',')
			}
			if e == nil {
				b = append(b, "null"...)
			} else {
				b = appendError(b, e)
			}
		}
		b = append(b, ']')
		b = appendReplIndex(b, replIndex(rs.site))
		b = append(b, '}')
		return okResp(string(b))
	case "sequence":
		text, e := st.sqlText(req.SQL, req.SQLID)
		if e != nil {
			return fail(e)
		}
		sts, err := splitSQL(text)
		if err != nil {
			return fail(&sqlError{code: "SQL_PARSE_ERROR", msg: err.Error()})
		}
		for _, one := range sts {
			if _, err := st.sess.exec(ctx, db, one, nil, false); err != nil {
				return fail(toSQLError(err))
			}
		}
		return okResp("")
	case "describe":
		text, e := st.sqlText(req.SQL, req.SQLID)
		if e != nil {
			return fail(e)
		}
		d, e := describe(ctx, rs.site, text)
		if e != nil {
			return fail(e)
		}
		b := []byte(`,"result":{"params":[`)
		for i, p := range d.stmt.params {
			if i > 0 {
				b = append(b, ',')
			}
			if p == "" {
				b = append(b, `{"name":null}`...)
			} else {
				b = append(b, `{"name":`...)
				b = append(appendJSONString(b, p), '}')
			}
		}
		b = append(b, `],"cols":`...)
		b = appendCols(b, d.cols)
		b = append(b, `,"is_explain":`...)
		b = strconv.AppendBool(b, d.stmt.explain)
		b = append(b, `,"is_readonly":`...)
		b = strconv.AppendBool(b, d.stmt.isReadOnly())
		b = append(b, '}')
		return okResp(string(b))
	case "store_sql":
		if req.SQLID == nil || req.SQL == nil {
			return fail(&sqlError{code: "PROTO_ERROR", msg: "store_sql needs sql_id and sql"})
		}
		if len(*req.SQL) > DefaultMaxSQLLen {
			return fail(&sqlError{code: "SQL_TOO_LONG", msg: "SQL text is too long"})
		}
		if st.sqls == nil {
			st.sqls = map[int32]string{}
		}
		if _, ok := st.sqls[*req.SQLID]; !ok && len(st.sqls) >= DefaultMaxSQLs {
			return fail(&sqlError{code: "SQL_STORE_TOO_MANY", msg: "too many stored SQL texts"})
		}
		st.sqls[*req.SQLID] = *req.SQL
		return okResp("")
	case "close_sql":
		if req.SQLID != nil {
			delete(st.sqls, *req.SQLID)
		}
		return okResp("")
	case "get_autocommit":
		return okResp(`,"is_autocommit":` + strconv.FormatBool(st.sess.autocommit()))
	}
	return fail(&sqlError{code: "PROTO_ERROR", msg: fmt.Sprintf("unknown request type %q", req.Type)})
}

// replIndex is the primary's last frame number (sqld's replication_index).
func replIndex(site *Site) *uint64 {
	if site.Log == nil {
		return nil
	}
	n := site.Log.Next()
	if n == 0 {
		return nil
	}
	n--
	return &n
}

func (st *stream) sqlText(text *string, id *int32) (string, *sqlError) {
	switch {
	case text != nil && id != nil:
		return "", &sqlError{code: "PROTO_ERROR", msg: "both sql and sql_id given"}
	case text != nil:
		return *text, nil
	case id != nil:
		t, ok := st.sqls[*id]
		if !ok {
			return "", &sqlError{code: "SQL_NOT_FOUND", msg: fmt.Sprintf("SQL text %d not found", *id)}
		}
		return t, nil
	}
	return "", &sqlError{code: "PROTO_ERROR", msg: "neither sql nor sql_id given"}
}

func (s *Server) execStmt(ctx context.Context, st *stream, rs *reqSite, hs *hStmt) (*execResult, *sqlError) {
	text, e := st.sqlText(hs.SQL, hs.SQLID)
	if e != nil {
		return nil, e
	}
	one, err := parseOne(text)
	if err != nil {
		return nil, toSQLError(err)
	}
	pos := make([]any, len(hs.Args))
	for i, a := range hs.Args {
		pos[i] = a.v
	}
	names := make([]string, len(hs.NamedArgs))
	vals := make([]any, len(hs.NamedArgs))
	for i, a := range hs.NamedArgs {
		names[i], vals[i] = a.Name, a.Value.v
	}
	args, err := bindArgs(one, pos, names, vals)
	if err != nil {
		return nil, toSQLError(err)
	}
	want := hs.WantRows == nil || *hs.WantRows
	res, err := st.sess.exec(ctx, rs.site.DB, one, args, want)
	if err != nil {
		return nil, toSQLError(err)
	}
	return res, nil
}

// runBatch runs a batch's steps under their conditions; a skipped step has
// neither a result nor an error. each, if set, sees every step as it ends.
func (s *Server) runBatch(ctx context.Context, st *stream, rs *reqSite, b *hBatch, each func(i int, r *execResult, e *sqlError)) ([]*execResult, []*sqlError) {
	res := make([]*execResult, len(b.Steps))
	errs := make([]*sqlError, len(b.Steps))
	ran := make([]bool, len(b.Steps))
	for i, step := range b.Steps {
		ok, err := evalCond(step.Condition, i, res, errs, ran, st.sess.autocommit())
		if err != nil {
			errs[i] = err
			ran[i] = true
		} else if ok {
			res[i], errs[i] = s.execStmt(ctx, st, rs, &b.Steps[i].Stmt)
			ran[i] = true
		}
		if each != nil && ran[i] {
			each(i, res[i], errs[i])
		}
	}
	return res, errs
}

// evalCond evaluates a batch condition against the steps before step i.
func evalCond(c *batchCond, i int, res []*execResult, errs []*sqlError, ran []bool, autocommit bool) (bool, *sqlError) {
	if c == nil {
		return true, nil
	}
	var depth func(c *batchCond, d int) (bool, *sqlError)
	depth = func(c *batchCond, d int) (bool, *sqlError) {
		if d > 100 {
			return false, &sqlError{code: "PROTO_ERROR", msg: "condition nested too deeply"}
		}
		switch c.Type {
		case "ok", "error":
			if c.Step == nil || *c.Step < 0 || *c.Step >= i {
				return false, &sqlError{code: "PROTO_ERROR", msg: "condition refers to a step not before this one"}
			}
			k := *c.Step
			if c.Type == "ok" {
				return ran[k] && errs[k] == nil, nil
			}
			return ran[k] && errs[k] != nil, nil
		case "not":
			if c.Cond == nil {
				return false, &sqlError{code: "PROTO_ERROR", msg: "not without cond"}
			}
			v, e := depth(c.Cond, d+1)
			return !v && e == nil, e
		case "and", "or":
			for j := range c.Conds {
				v, e := depth(&c.Conds[j], d+1)
				if e != nil {
					return false, e
				}
				if c.Type == "and" && !v {
					return false, nil
				}
				if c.Type == "or" && v {
					return true, nil
				}
			}
			return c.Type == "and", nil
		case "is_autocommit":
			return autocommit, nil
		}
		return false, &sqlError{code: "PROTO_ERROR", msg: fmt.Sprintf("unknown condition %q", c.Type)}
	}
	return depth(c, 0)
}

// cursor serves POST /v3/cursor: the batch's results as JSON lines.
func (s *Server) cursor(w http.ResponseWriter, r *http.Request, rs *reqSite) {
	var req cursorReq
	body, ok := s.readJSON(w, r, &req)
	if !ok {
		return
	}
	if req.Batch == nil {
		httpError(w, http.StatusBadRequest, "cursor without batch")
		return
	}
	if rs.site.Forward != nil && s.forPrimary(req.Baton, nil, req.Batch) {
		rs.site.Forward(w, r, s.handOver(req.Baton, rs.site.Name, body))
		return
	}
	st, err := s.openStream(req.Baton, rs.site.Name)
	if err != nil {
		streamError(w, err)
		return
	}
	ctx := r.Context()
	outside := st.sess.beginRequest()
	// Results are gathered first: the baton line leads the body, and the
	// stream must be finished (its next baton known) before writing it.
	var buf []byte
	lines := [][]byte{}
	s.runBatch(ctx, st, rs, req.Batch, func(i int, res *execResult, e *sqlError) {
		if e != nil {
			buf = append([]byte(`{"type":"step_error","step":`), strconv.Itoa(i)...)
			buf = append(buf, `,"error":`...)
			buf = appendError(buf, e)
			lines = append(lines, append(buf, '}'))
			return
		}
		buf = append([]byte(`{"type":"step_begin","step":`), strconv.Itoa(i)...)
		buf = append(buf, `,"cols":`...)
		buf = appendCols(buf, res.cols)
		lines = append(lines, append(buf, '}'))
		for _, row := range res.rows {
			b := []byte(`{"type":"row","row":[`)
			for j, v := range row {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendValue(b, v)
			}
			lines = append(lines, append(b, "]}"...))
		}
		b := []byte(`{"type":"step_end","affected_row_count":`)
		b = strconv.AppendInt(b, res.affected, 10)
		b = append(b, `,"last_insert_rowid":`...)
		if res.hasLastID {
			b = append(b, '"')
			b = strconv.AppendInt(b, res.lastID, 10)
			b = append(b, '"')
		} else {
			b = append(b, "null"...)
		}
		lines = append(lines, append(b, '}'))
	})
	if outside && s.reforward(ctx, st, rs, w, r, body) {
		return
	}
	if ri := replIndex(rs.site); ri != nil {
		lines = append(lines, []byte(`{"type":"replication_index","replication_index":"`+strconv.FormatUint(*ri, 10)+`"}`))
	}
	baton := s.finishStream(context.WithoutCancel(ctx), st, rs)
	w.Header().Set("Content-Type", "text/plain")
	bw := bufio.NewWriter(w)
	head := []byte(`{"baton":`)
	if baton == nil {
		head = append(head, "null"...)
	} else {
		head = appendJSONString(head, *baton)
	}
	head = append(head, `,"base_url":null}`...)
	bw.Write(head)
	bw.WriteByte('\n')
	for _, l := range lines {
		bw.Write(l)
		bw.WriteByte('\n')
	}
	bw.Flush()
}

// description is a describe answer.
type description struct {
	stmt sqlStmt
	cols []column
}

// describe prepares text on a reader connection (never executing it) to
// learn its columns; parameters and kind come from the lexer.
func describe(ctx context.Context, site *Site, text string) (*description, *sqlError) {
	one, err := parseOne(text)
	if err != nil {
		return nil, toSQLError(err)
	}
	conn, err := site.DB.Reader().Conn(ctx)
	if err != nil {
		return nil, toSQLError(err)
	}
	defer conn.Close()
	var info []msqlite.ColumnInfo
	err = conn.Raw(func(dc any) error {
		ci, ok := dc.(interface {
			ColumnInfo(query string) ([]msqlite.ColumnInfo, error)
		})
		if !ok {
			return errors.New("driver cannot describe statements")
		}
		var err error
		info, err = ci.ColumnInfo(one.text)
		return err
	})
	if err != nil {
		return nil, toSQLError(err)
	}
	d := &description{stmt: one}
	for _, c := range info {
		d.cols = append(d.cols, column{name: c.Name, decltype: c.DeclType})
	}
	return d, nil
}
