package replication

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/internal/task"
	"github.com/ephpm/ephpm/mysqlwire"
)

// StatementSession runs forwarded statements on the primary: a MySQL
// session without a client connection (*mysqlwire.Detached). Its methods
// are never called concurrently: Run and InTx on the HTTP handler
// goroutine of a forwarded statement, Close once — on a handler (the
// replica closed its session), on the expiry loop (idle for
// DefaultSessionIdle; it rolls back), or in Manager.Close. Run may
// block for as long as its statement runs (the session's own limits
// bound it); Close must not block for long. None may call back into the
// Manager's session table (a new forwarded statement, Close).
type StatementSession interface {
	// Run runs one statement; the errors its SQL ends with are
	// *ephpm.SQLError (any other error reaches the replica as 1105).
	Run(query string, args []any) (*ephpm.Result, error)
	InTx() bool
	Close()
}

// execRequest is one forwarded statement.
type execRequest struct {
	Site    string    `json:"site"`
	Session string    `json:"session,omitempty"` // "" opens one
	Query   string    `json:"query,omitempty"`
	Args    []execArg `json:"args,omitempty"`
	Close   bool      `json:"close,omitempty"`
}

// execArg is a typed statement argument.
type execArg struct {
	T string `json:"t"` // n(ull) i(nt) u(int) f(loat) s(tring) b(ytes)
	V string `json:"v,omitempty"`
}

type execResponse struct {
	Session string          `json:"session"`
	InTx    bool            `json:"in_tx"`
	Frame   uint64          `json:"frame"` // the primary's log position after the statement
	Result  *ephpm.Result   `json:"result,omitempty"`
	Error   *ephpm.SQLError `json:"error,omitempty"`
	Took    int64           `json:"took_us,omitempty"`
}

// errMisdirected: the node asked is not the site's primary (421); the
// statement ran nowhere.
var errMisdirected = errors.New("not the site's primary")

// errUnreachable: the primary did not answer a forwarded statement at
// all (no connection, or one that went silent: see NewClient). A
// statement sent on a connection that then died may have run there.
var errUnreachable = errors.New("primary unreachable")

// DefaultMoveRetry bounds how long a forwarded statement outside a
// transaction keeps trying while the site's primary is moving (its new
// primary not yet promoted, or this node not yet told).
const DefaultMoveRetry = 3 * time.Second

// MySQL error numbers and states of the errors forwarding answers with
// itself; the statements' own come from the primary's front.
const (
	erUnknownError            = 1105 // ER_UNKNOWN_ERROR
	erOptionPreventsStatement = 1290 // ER_OPTION_PREVENTS_STATEMENT
	erQueryInterrupted        = 1317 // ER_QUERY_INTERRUPTED
	ssUnknown                 = "HY000"
	ssQueryInterrupted        = "70100"
)

func encodeArgs(args []any) []execArg {
	out := make([]execArg, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
			out[i] = execArg{T: "n"}
		case int64:
			out[i] = execArg{T: "i", V: strconv.FormatInt(v, 10)}
		case int:
			out[i] = execArg{T: "i", V: strconv.Itoa(v)}
		case uint64:
			out[i] = execArg{T: "u", V: strconv.FormatUint(v, 10)}
		case float64:
			out[i] = execArg{T: "f", V: strconv.FormatFloat(v, 'g', -1, 64)}
		case bool:
			out[i] = execArg{T: "i", V: map[bool]string{true: "1", false: "0"}[v]}
		case []byte:
			out[i] = execArg{T: "b", V: base64.StdEncoding.EncodeToString(v)}
		case string:
			out[i] = execArg{T: "s", V: v}
		default:
			out[i] = execArg{T: "s", V: fmt.Sprint(v)}
		}
	}
	return out
}

func decodeArgs(in []execArg) ([]any, error) {
	out := make([]any, len(in))
	for i, a := range in {
		var err error
		switch a.T {
		case "n":
		case "i":
			out[i], err = strconv.ParseInt(a.V, 10, 64)
		case "u":
			out[i], err = strconv.ParseUint(a.V, 10, 64)
		case "f":
			out[i], err = strconv.ParseFloat(a.V, 64)
		case "b":
			out[i], err = base64.StdEncoding.DecodeString(a.V)
		case "s":
			out[i] = a.V
		default:
			err = fmt.Errorf("unknown type %q", a.T)
		}
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
	}
	return out, nil
}

// sessions are the primary's forwarded sessions, by id.
type sessions struct {
	m  *Manager
	mu sync.Mutex
	by map[string]*fwdServerSession
	// closed: Manager.Close closed every session; a new one is refused.
	closed bool
}

// fwdServerSession is one forwarded session; mu serializes every call of
// ss, so that none runs concurrently with another or after Close.
type fwdServerSession struct {
	mu     sync.Mutex
	site   string
	ss     StatementSession
	used   time.Time
	closed bool
}

// closeLocked closes the session once; the caller holds mu.
func (fs *fwdServerSession) closeLocked() {
	if !fs.closed {
		fs.closed = true
		fs.ss.Close()
	}
}

// newSessions returns the session table and starts, in the manager's
// loops, the expiry of idle sessions.
func newSessions(m *Manager) *sessions {
	s := &sessions{m: m, by: map[string]*fwdServerSession{}}
	m.loops.Go(func(ctx context.Context) error {
		return task.Every(ctx, DefaultSessionIdle/6, func(context.Context) {
			s.expire(time.Now().Add(-DefaultSessionIdle))
		})
	})
	return s
}

func (s *sessions) expire(cutoff time.Time) {
	var old []*fwdServerSession
	s.mu.Lock()
	for id, fs := range s.by {
		if fs.mu.TryLock() {
			if fs.used.Before(cutoff) {
				delete(s.by, id)
				old = append(old, fs)
			}
			fs.mu.Unlock()
		}
	}
	s.mu.Unlock()
	for _, fs := range old {
		s.m.log.Info("forwarded session idle: rolled back and closed", "site", fs.site)
		fs.mu.Lock()
		fs.closeLocked()
		fs.mu.Unlock()
	}
}

// closeSite closes the site's forwarded sessions (waiting for a
// statement running in one): an open transaction is rolled back and
// gives up the writer, and its client's next statement is told so. A
// fence calls it: a forwarded transaction left open must not hold a
// move up until the lock wait times out.
func (s *sessions) closeSite(site string) int {
	var of []*fwdServerSession
	s.mu.Lock()
	for id, fs := range s.by {
		if fs.site == site {
			delete(s.by, id)
			of = append(of, fs)
		}
	}
	s.mu.Unlock()
	for _, fs := range of {
		fs.mu.Lock()
		fs.closeLocked()
		fs.mu.Unlock()
	}
	return len(of)
}

// closeAll closes every session (waiting for a statement running in
// one) and refuses new ones.
func (s *sessions) closeAll() {
	s.mu.Lock()
	all := s.by
	s.by = map[string]*fwdServerSession{}
	s.closed = true
	s.mu.Unlock()
	for _, fs := range all {
		fs.mu.Lock()
		fs.closeLocked()
		fs.mu.Unlock()
	}
}

// serveExec runs one forwarded statement in its session.
func (m *Manager) serveExec(w http.ResponseWriter, r *http.Request) {
	var req execRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	s := m.site(req.Site)
	if s == nil || s.cfg.Role != ephpm.RolePrimary {
		http.Error(w, "this node is not the primary for "+req.Site, http.StatusMisdirectedRequest)
		return
	}
	m.sessions.mu.Lock()
	fs := m.sessions.by[req.Session]
	m.sessions.mu.Unlock()
	if req.Close {
		if fs != nil {
			m.sessions.mu.Lock()
			delete(m.sessions.by, req.Session)
			m.sessions.mu.Unlock()
			fs.mu.Lock()
			fs.closeLocked()
			fs.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// A forwarder that knows a newer epoch: this node was replaced, and
	// nothing runs here (nor while that fence stands).
	if err := m.checkEpoch(r.Context(), s, parseEpoch(r.Header.Get(hdrEpoch))); err != nil {
		m.refuseStale(w, s, err)
		return
	}
	w.Header().Set(hdrEpoch, strconv.FormatUint(s.epoch.Load(), 10))
	if fs == nil && req.Session != "" {
		writeExpired(w, req.Session)
		return
	}
	if fs == nil {
		if m.cfg.OpenSession == nil {
			http.Error(w, "statement forwarding is not enabled", http.StatusNotImplemented)
			return
		}
		ss, err := m.cfg.OpenSession(r.Context(), req.Site)
		if err != nil {
			m.refuse(w, req.Site, err)
			return
		}
		var id [16]byte
		_, _ = rand.Read(id[:])
		req.Session = hex.EncodeToString(id[:])
		fs = &fwdServerSession{site: req.Site, ss: ss}
		m.sessions.mu.Lock()
		closed := m.sessions.closed
		if !closed {
			m.sessions.by[req.Session] = fs
		}
		m.sessions.mu.Unlock()
		if closed {
			ss.Close()
			http.Error(w, "this node is shutting down", http.StatusServiceUnavailable)
			return
		}
	}
	args, err := decodeArgs(req.Args)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fs.mu.Lock()
	if fs.closed {
		// Expired (or the node closing) while this request waited.
		fs.mu.Unlock()
		writeExpired(w, req.Session)
		return
	}
	start := time.Now()
	res, err := fs.ss.Run(req.Query, args)
	inTx := fs.ss.InTx()
	fs.used = time.Now()
	fs.mu.Unlock()
	resp := execResponse{Session: req.Session, InTx: inTx, Took: time.Since(start).Microseconds(), Result: res}
	resp.Frame, _ = m.logNext(req.Site)
	if err != nil {
		resp.Error = &ephpm.SQLError{Code: erUnknownError, State: ssUnknown, Message: err.Error()}
		var se *ephpm.SQLError
		if errors.As(err, &se) {
			resp.Error = se
		}
	}
	writeExec(w, resp)
}

// writeExpired answers a statement for a session that is gone: its
// transaction was rolled back, and the client must know.
func writeExpired(w http.ResponseWriter, session string) {
	writeExec(w, execResponse{Session: session, Error: &ephpm.SQLError{
		Code: erQueryInterrupted, State: ssQueryInterrupted,
		Message: "forwarded session expired on the primary; its transaction was rolled back"}})
}

func writeExec(w http.ResponseWriter, resp execResponse) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// Forwarder returns the statement forwarder of a replica site, for the
// MySQL front (see mysqlwire.Forwarder for who calls it and how). Its
// sessions' Exec blocks for one round trip to the primary (the MySQL
// statement's context does not end when the client leaves; a primary
// that stops answering is noticed by the HTTP/2 connection's pings
// within DefaultPeerPingIdle + DefaultPeerPingTimeout, and the client
// gets a 1105 "primary unreachable" naming the site);
// Close sends the primary one last request (at most 5 s).
func (m *Manager) Forwarder(name string) mysqlwire.Forwarder {
	return forwarder{m: m, name: name}
}

type forwarder struct {
	m    *Manager
	name string
}

func (f forwarder) Open() mysqlwire.ForwardSession { return &fwdClient{m: f.m, name: f.name} }

// fwdClient is a replica connection's session on the primary.
type fwdClient struct {
	m       *Manager
	name    string
	id      string
	primary string // the PrimaryURL id belongs to
	inTx    bool
	frame   uint64
}

func (c *fwdClient) InTx() bool { return c.inTx }

func (c *fwdClient) Wait(ctx context.Context) bool {
	if c.frame == 0 {
		return true
	}
	return c.m.WaitApplied(ctx, c.name, c.frame)
}

func (c *fwdClient) Exec(ctx context.Context, query string, args []any) (*ephpm.Result, error) {
	s := c.m.site(c.name)
	if s != nil && s.cfg.Role == ephpm.RolePrimary {
		// Promoted while the statement came in: it runs here.
		return nil, fmt.Errorf("site %s: %w", c.name, mysqlwire.ErrPrimaryHere)
	}
	if s == nil || s.cfg.Role != ephpm.RoleReplica {
		return nil, &ephpm.SQLError{Code: erOptionPreventsStatement, State: ssUnknown,
			Message: fmt.Sprintf("site %s has no primary to forward to", c.name)}
	}
	if c.id != "" && c.primary != s.cfg.PrimaryURL {
		// The primary moved: the session there is gone with it.
		wasTx := c.inTx
		c.id, c.inTx = "", false // frame numbers go on across the move
		if wasTx {
			return nil, &ephpm.SQLError{Code: erQueryInterrupted, State: ssQueryInterrupted,
				Message: "the site's primary moved during the transaction; it was rolled back"}
		}
		return nil, fmt.Errorf("forward to %s: %w", s.cfg.PrimaryURL, mysqlwire.ErrPrimaryChanged)
	}
	start := time.Now()
	resp, err := c.post(ctx, s, execRequest{Site: c.name, Session: c.id, Query: query, Args: encodeArgs(args)})
	// During a change of primary the new one may not know it is yet
	// (SetSites reaches nodes one by one): a 421 ran nothing, so outside
	// a transaction the statement waits a little and goes again, to the
	// primary of the moment.
	for wait := 10 * time.Millisecond; errors.Is(err, errMisdirected) && !c.inTx && time.Since(start) < DefaultMoveRetry; wait = min(2*wait, 200*time.Millisecond) {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if cur := c.m.site(c.name); cur != nil && cur.cfg.Role == ephpm.RoleReplica {
			s = cur
		}
		if c.id != "" && c.primary != s.cfg.PrimaryURL {
			c.id = ""
		}
		resp, err = c.post(ctx, s, execRequest{Site: c.name, Session: c.id, Query: query, Args: encodeArgs(args)})
	}
	s.fwdStatements.Add(1)
	s.fwdNanos.Add(int64(time.Since(start)))
	if err != nil {
		s.fwdErrors.Add(1)
		c.inTx = false
		if errors.Is(err, errUnreachable) {
			return nil, &ephpm.SQLError{Code: erUnknownError, State: ssUnknown,
				Message: fmt.Sprintf("site %s: primary unreachable, the write cannot be forwarded (%v)", c.name, err)}
		}
		return nil, &ephpm.SQLError{Code: erUnknownError, State: ssUnknown,
			Message: fmt.Sprintf("forwarding the write to the primary failed: %v", err)}
	}
	c.id, c.inTx, c.primary = resp.Session, resp.InTx, s.cfg.PrimaryURL
	if resp.Frame > c.frame {
		c.frame = resp.Frame
	}
	for f := s.fwdFrame.Load(); resp.Frame > f && !s.fwdFrame.CompareAndSwap(f, resp.Frame); f = s.fwdFrame.Load() {
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	return resp.Result, nil
}

func (c *fwdClient) post(ctx context.Context, s *site, body execRequest) (*execResponse, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	u := strings.TrimRight(s.cfg.PrimaryURL, "/") + "/_ephpm/repl/v1/exec"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.m.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hdrNode, c.m.cfg.Node)
	sent := s.epoch.Load()
	req.Header.Set(hdrEpoch, strconv.FormatUint(sent, 10))
	resp, err := c.m.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			// No answer at all: the connection failed or went silent
			// (NewClient's dial timeout and pings bound the wait).
			err = fmt.Errorf("%w: %w", errUnreachable, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	if got := parseEpoch(resp.Header.Get(hdrEpoch)); resp.StatusCode == http.StatusOK && newerEpoch(sent, got) {
		// A primary older than the epoch this request carried would have
		// refused it before running it (checkEpoch): this one did not
		// check. The statement may have run: it is not sent again.
		return nil, fmt.Errorf("the primary answered at epoch %d, older than this node's %d; the statement may have run there: %w", got, sent, ErrStaleEpoch)
	}
	if resp.StatusCode == http.StatusNoContent {
		return &execResponse{}, nil
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		err := fmt.Errorf("primary answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
		if resp.StatusCode == http.StatusMisdirectedRequest {
			err = fmt.Errorf("%w: %w", errMisdirected, err)
		}
		return nil, err
	}
	var out execResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *fwdClient) Close() {
	if c.id == "" {
		return
	}
	s := c.m.site(c.name)
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.post(ctx, s, execRequest{Site: c.name, Session: c.id, Close: true})
	c.id = ""
}
