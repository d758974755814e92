// Package fastcgi is a FastCGI client (responder role) with a bounded pool
// of kept-alive connections, made for talking to php-fpm. See DESIGN.md.
package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultMaxConns matches phpfpm.DefaultWorkers: php-fpm pins a worker to
	// a kept-alive connection, so more connections than workers would only
	// queue in the listen backlog (see DESIGN.md).
	DefaultMaxConns = 4
	// DefaultDialTimeout bounds connecting to the socket; a local unix
	// socket that does not accept within this time is not coming back soon.
	DefaultDialTimeout = 2 * time.Second
	// MaxHeaderBytes caps the CGI header block of a response (nginx's
	// default fastcgi buffer is far smaller; 1 MB leaves room for fat cookies).
	MaxHeaderBytes = 1 << 20
	// MaxStderrBytes is how much of PHP's FCGI_STDERR output is kept per
	// request; the rest is discarded.
	MaxStderrBytes = 4 << 10
	// readBufSize is the bufio size per connection: one full record.
	readBufSize = 64 << 10
	// stdinGrace is how long Close waits for the STDIN writer's last write
	// after a clean END_REQUEST before giving up on the connection.
	stdinGrace = 100 * time.Millisecond
	// stdinChunk is the largest STDIN record we send.
	stdinChunk = maxContent
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("fastcgi: client closed")

// Config configures a Client. Zero fields get defaults in NewClient.
type Config struct {
	Network, Address string // e.g. "unix", "/run/ephpm/php-fpm.sock"
	// MaxConns bounds connections in use at once; Do blocks (respecting its
	// ctx) while all are busy. Keep it <= php-fpm's pm.max_children.
	MaxConns int
	// MaxIdle bounds kept-alive idle connections (default MaxConns).
	MaxIdle     int
	DialTimeout time.Duration
	// Dial replaces net.Dialer.DialContext (tests count dials with it).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Param is one CGI variable. A slice of them keeps order and is cheap to build.
type Param struct{ Name, Value string }

// Response is a FastCGI response whose CGI headers have been parsed.
type Response struct {
	// Status from the Status CGI header; 302 if Location and no Status; else 200.
	Status int
	Header http.Header
	// Body streams the rest of stdout. Close must be called: it releases the
	// pool slot, and returns the connection to the pool only if the request
	// ended cleanly.
	Body io.ReadCloser
	// Stderr returns what PHP sent on FCGI_STDERR (first MaxStderrBytes),
	// complete once Body has been drained.
	Stderr func() string
}

// Client is safe for concurrent use.
type Client struct {
	cfg  Config
	sem  chan struct{} // one token per connection in use
	mu   sync.Mutex
	idle []*conn
	done bool

	stdinBufs sync.Pool
}

// NewClient returns a client; it dials lazily.
func NewClient(cfg Config) *Client {
	if cfg.Network == "" {
		cfg.Network = "unix"
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxIdle <= 0 || cfg.MaxIdle > cfg.MaxConns {
		cfg.MaxIdle = cfg.MaxConns
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Dial == nil {
		d := &net.Dialer{}
		cfg.Dial = d.DialContext
	}
	c := &Client{cfg: cfg, sem: make(chan struct{}, cfg.MaxConns)}
	c.stdinBufs.New = func() any { b := make([]byte, headerLen+stdinChunk); return &b }
	return c
}

// Stats reports connections in use and idle connections.
func (c *Client) Stats() (busy, idle int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sem), len(c.idle)
}

// Close closes idle connections and makes Do fail; connections in use are
// closed when their Body is closed.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.done = nil, true
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
	}
	return nil
}

// conn is one connection with its reusable buffers.
type conn struct {
	nc   net.Conn
	br   *bufio.Reader
	rr   recordReader
	wbuf []byte // request head
	hbuf []byte // response header block + first body bytes
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	nc, err := c.cfg.Dial(dctx, c.cfg.Network, c.cfg.Address)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fastcgi: dial %s: %w", c.cfg.Address, ctx.Err())
		}
		return nil, fmt.Errorf("fastcgi: dial %s: %w", c.cfg.Address, err)
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, readBufSize)}, nil
}

// put returns a healthy connection to the idle list and releases its slot.
func (c *Client) put(cn *conn) {
	c.mu.Lock()
	if !c.done && len(c.idle) < c.cfg.MaxIdle {
		if cap(cn.hbuf) > 2*readBufSize {
			cn.hbuf = nil // don't keep a huge header buffer around
		}
		c.idle = append(c.idle, cn)
		cn = nil
	}
	c.mu.Unlock()
	if cn != nil {
		cn.nc.Close()
	}
	<-c.sem
}

// drop closes a connection that is not reusable and releases its slot.
func (c *Client) drop(cn *conn) {
	cn.nc.Close()
	<-c.sem
}

// Do runs one request. params are the CGI variables; body (may be nil) is
// streamed as STDIN and must match CONTENT_LENGTH. Do returns once the
// response headers are parsed; the caller must Close Response.Body.
func (c *Client) Do(ctx context.Context, params []Param, body io.Reader) (*Response, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("fastcgi: wait for connection: %w", ctx.Err())
	}
	var tracked *trackedReader
	if body != nil {
		tracked = &trackedReader{r: body}
	}
	for attempt := 0; ; attempt++ {
		// The retry dials: after a php-fpm restart every idle conn is dead.
		cn, reused, err := c.get(ctx, attempt > 0)
		if err != nil {
			<-c.sem
			return nil, err
		}
		resp, retry, err := c.roundTrip(ctx, cn, params, tracked)
		if err == nil {
			return resp, nil
		}
		cn.nc.Close()
		// A kept-alive connection that php-fpm closed (restart,
		// pm.max_requests) fails before any byte of the response: try once
		// more on a new connection if the body was not touched.
		if retry && reused && attempt == 0 && ctx.Err() == nil && (tracked == nil || !tracked.touched.Load()) {
			continue
		}
		<-c.sem
		return nil, err
	}
}

// get takes an idle connection or dials one; the caller holds a slot.
func (c *Client) get(ctx context.Context, fresh bool) (*conn, bool, error) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return nil, false, ErrClosed
	}
	if n := len(c.idle); n > 0 && !fresh {
		cn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return cn, true, nil
	}
	c.mu.Unlock()
	cn, err := c.dial(ctx)
	return cn, false, err
}

// roundTrip sends the request and reads the header block. On error the
// caller closes cn; retry reports whether nothing was received.
func (c *Client) roundTrip(ctx context.Context, cn *conn, params []Param, body *trackedReader) (*Response, bool, error) {
	// One allocation holds the body state and the Response.
	rb := &respBody{c: c, cn: cn, ctx: ctx}
	if ctx.Done() != nil {
		// Interrupt blocked reads/writes when ctx ends, also while the
		// caller reads the body later.
		rb.stop = context.AfterFunc(ctx, func() {
			rb.aborted.Store(true)
			cn.nc.SetDeadline(time.Unix(1, 0))
		})
	}
	ctxErr := func(op string, err error) error {
		if rb.aborted.Load() || ctx.Err() != nil {
			return fmt.Errorf("fastcgi: %s: %w", op, ctx.Err())
		}
		return fmt.Errorf("fastcgi: %s: %w", op, err)
	}
	fail := func(retry bool, err error) (*Response, bool, error) {
		if rb.stop != nil {
			rb.stop()
		}
		return nil, retry, err
	}

	var err error
	cn.wbuf, err = appendRequest(cn.wbuf[:0], params, body == nil)
	if err != nil {
		return fail(false, err)
	}
	if _, err := cn.nc.Write(cn.wbuf); err != nil {
		return fail(true, ctxErr("write request", err))
	}

	if body != nil {
		rb.stdin = make(chan error, 1)
		go func() { rb.stdin <- c.writeStdin(cn.nc, body) }()
	}
	cn.rr.reset(cn.br)

	status, hdr, err := rb.readHeaders()
	if err != nil {
		retry := !cn.rr.gotBytes
		if err == io.EOF && cn.rr.gotBytes {
			err = fmt.Errorf("%w: connection closed before END_REQUEST: %w", ErrProtocol, io.ErrUnexpectedEOF)
		}
		rb.waitStdin(true)
		if rb.stdinErr != nil && !errors.Is(rb.stdinErr, errConnWrite) {
			err = rb.stdinErr // the request body failed: report that
		} else if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrHeaderTooLarge) && !errors.Is(err, ErrOverloaded) {
			err = ctxErr("read response headers", err)
		}
		return fail(retry, err)
	}
	rb.resp = Response{Status: status, Header: hdr, Body: rb, Stderr: rb.stderrString}
	return &rb.resp, false, nil
}

// errConnWrite marks a failed write of STDIN to the connection (as opposed
// to a failed read of the request body).
var errConnWrite = errors.New("write stdin")

// writeStdin streams body as STDIN records in its own goroutine, so that a
// script writing a large response before reading its input cannot
// deadlock us.
func (c *Client) writeStdin(w net.Conn, body io.Reader) error {
	bp := c.stdinBufs.Get().(*[]byte)
	defer c.stdinBufs.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf[headerLen:])
		if n > 0 {
			putHeader(buf, typeStdin, n)
			if _, err := w.Write(buf[:headerLen+n]); err != nil {
				return fmt.Errorf("fastcgi: %w: %w", errConnWrite, err)
			}
		}
		if rerr == io.EOF {
			putHeader(buf, typeStdin, 0)
			if _, err := w.Write(buf[:headerLen]); err != nil {
				return fmt.Errorf("fastcgi: %w: %w", errConnWrite, err)
			}
			return nil
		}
		if rerr != nil {
			// php-fpm would wait for the rest of STDIN forever: abort the
			// request by closing the connection, which also wakes the reader.
			w.Close()
			return fmt.Errorf("fastcgi: read request body: %w", rerr)
		}
	}
}

type trackedReader struct {
	r       io.Reader
	touched atomic.Bool
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.touched.Store(true)
	}
	return n, err
}

// respBody streams STDOUT after the header block.
type respBody struct {
	c       *Client
	cn      *conn
	ctx     context.Context
	stop    func() bool
	aborted atomic.Bool
	resp    Response

	pending []byte // body bytes read together with the headers
	ended   bool   // END_REQUEST seen and valid
	err     error  // sticky read error
	closed  bool

	stdin    chan error // nil when there is no body
	stdinErr error
	stdinOK  bool

	stderrMu sync.Mutex
	stderr   []byte
}

// readHeaders reads STDOUT until the CGI header block is complete.
func (rb *respBody) readHeaders() (int, http.Header, error) {
	cn := rb.cn
	hb := cn.hbuf[:0]
	for {
		if err := cn.rr.next(); err != nil {
			cn.hbuf = hb
			return 0, nil, err
		}
		switch cn.rr.typ {
		case typeStderr:
			if err := rb.readStderr(); err != nil {
				return 0, nil, err
			}
			continue
		case typeEndRequest:
			if err := cn.rr.endRequest(); err != nil {
				return 0, nil, err
			}
			rb.ended = true
			cn.hbuf = hb
			// Output ended without a blank line: take it all as headers,
			// but a response with no output at all is an error.
			if len(hb) == 0 {
				return 0, nil, protoErr("empty response")
			}
			st, h, err := parseHeaders(hb)
			return st, h, err
		}
		// STDOUT: append this record's content.
		n := cn.rr.remaining
		if len(hb)+n > MaxHeaderBytes+maxContent {
			return 0, nil, ErrHeaderTooLarge
		}
		old := len(hb)
		hb = grow(hb, n)
		if _, err := cn.rr.read(hb[old : old+n]); err != nil {
			return 0, nil, err
		}
		hb = hb[:old+n]
		end := headerEnd(hb, old-3)
		if end < 0 {
			if len(hb) > MaxHeaderBytes {
				return 0, nil, ErrHeaderTooLarge
			}
			continue
		}
		if end > MaxHeaderBytes {
			return 0, nil, ErrHeaderTooLarge
		}
		cn.hbuf = hb
		st, h, err := parseHeaders(hb[:end])
		if err != nil {
			return 0, nil, err
		}
		rb.pending = hb[end:]
		return st, h, nil
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, max(2*cap(b), len(b)+n, 4096))
	copy(nb, b)
	return nb
}

func (rb *respBody) readStderr() error {
	rr := &rb.cn.rr
	rb.stderrMu.Lock()
	defer rb.stderrMu.Unlock()
	if room := MaxStderrBytes - len(rb.stderr); room > 0 && rr.remaining > 0 {
		n := min(room, rr.remaining)
		old := len(rb.stderr)
		rb.stderr = append(rb.stderr, make([]byte, n)...)
		if _, err := rr.read(rb.stderr[old : old+n]); err != nil {
			return err
		}
	}
	return nil // next() discards the rest
}

func (rb *respBody) stderrString() string {
	rb.stderrMu.Lock()
	defer rb.stderrMu.Unlock()
	return string(rb.stderr)
}

func (rb *respBody) Read(p []byte) (int, error) {
	if len(rb.pending) > 0 {
		n := copy(p, rb.pending)
		rb.pending = rb.pending[n:]
		return n, nil
	}
	if rb.err != nil {
		return 0, rb.err
	}
	if rb.ended {
		return 0, io.EOF
	}
	if rb.closed {
		return 0, errors.New("fastcgi: read on closed body")
	}
	if len(p) == 0 {
		return 0, nil
	}
	rr := &rb.cn.rr
	for {
		if rr.typ == typeStdout && rr.remaining > 0 {
			n, err := rr.read(p)
			if err != nil {
				rb.fail(err)
			}
			return n, rb.err
		}
		if err := rr.next(); err != nil {
			return 0, rb.fail(err)
		}
		switch rr.typ {
		case typeStderr:
			if err := rb.readStderr(); err != nil {
				return 0, rb.fail(err)
			}
		case typeEndRequest:
			if err := rr.endRequest(); err != nil {
				return 0, rb.fail(err)
			}
			rb.ended = true
			return 0, io.EOF
		}
	}
}

// Buffered reports how many response bytes can be read without waiting
// on php-fpm. The HTTP front flushes to its client when it is 0, so that
// flush() in PHP reaches the browser at once.
func (rb *respBody) Buffered() int {
	if len(rb.pending) > 0 {
		return len(rb.pending)
	}
	if rb.ended || rb.err != nil || rb.closed {
		return 0
	}
	return rb.cn.rr.r.Buffered()
}

func (rb *respBody) fail(err error) error {
	if rb.stdin != nil {
		select {
		case serr := <-rb.stdin:
			rb.stdinErr, rb.stdinOK = serr, serr == nil
			rb.stdin = nil
		default:
		}
	}
	switch {
	case rb.stdinErr != nil && !errors.Is(rb.stdinErr, errConnWrite):
		rb.err = rb.stdinErr // the request body failed: report that
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrOverloaded):
		rb.err = err
	case err == io.EOF:
		rb.err = fmt.Errorf("%w: connection closed before END_REQUEST: %w", ErrProtocol, io.ErrUnexpectedEOF)
	case rb.aborted.Load() || rb.ctx.Err() != nil:
		rb.err = fmt.Errorf("fastcgi: read response body: %w", rb.ctx.Err())
	default:
		rb.err = fmt.Errorf("fastcgi: read response body: %w", err)
	}
	return rb.err
}

// waitStdin waits for the STDIN writer; with force it first closes the
// connection so a blocked writer returns.
func (rb *respBody) waitStdin(force bool) {
	if rb.stdin == nil {
		return
	}
	if force {
		select {
		case err := <-rb.stdin:
			rb.stdinErr, rb.stdinOK = err, err == nil
			rb.stdin = nil
			return
		default:
		}
		rb.cn.nc.Close()
	}
	err := <-rb.stdin
	rb.stdinErr, rb.stdinOK = err, err == nil
	rb.stdin = nil
}

// Close releases the connection: back to the pool if the request ended
// cleanly and nothing else is pending on it, else closed.
func (rb *respBody) Close() error {
	if rb.closed {
		return nil
	}
	rb.closed = true
	reusable := rb.ended && rb.err == nil
	if rb.stop != nil && !rb.stop() {
		reusable = false // the deadline was poisoned by ctx
	}
	if rb.stdin != nil {
		if reusable {
			// php-fpm drains STDIN before it ends a request, so the writer
			// is at most finishing its last write: give it a moment
			// instead of throwing the connection away.
			rb.cn.nc.SetWriteDeadline(time.Now().Add(stdinGrace))
			rb.waitStdin(false)
			rb.cn.nc.SetWriteDeadline(time.Time{})
		} else {
			rb.waitStdin(true)
		}
		if !rb.stdinOK {
			reusable = false
		}
	}
	if reusable {
		rb.c.put(rb.cn)
	} else {
		rb.c.drop(rb.cn)
	}
	return nil
}
