package httpd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1 is the plain-HTTP/1.1 connection loop. net/http's server pays, per
// keep-alive request, a background-read goroutine with its deadlines and
// wake-up, an EAGAIN read and a 4 KB write buffer that splits a 10 KB
// response in two writes. Those were most of the gap to nginx on static
// files (docs/benchmarks.md). This loop parses with net/http's own
// http.ReadRequest and calls the same http.Handler; it reads the socket
// only when a request is wanted, and writes each response with one
// write when it fits in 16 KB. TLS (and HTTP/2) stays on net/http.
type h1server struct {
	handler           http.Handler
	maxHeader         int
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	bodyTimeout       time.Duration // each read of a request body; 0: h1BodyIdle
	log               func(msg string, args ...any)

	mu       sync.Mutex
	lns      []net.Listener
	conns    map[*h1conn]struct{}
	shutting atomic.Bool
	idle     chan struct{} // closed and replaced whenever a conn ends
}

// Connection states, as net/http's StateActive and StateIdle.
const (
	h1Idle int32 = iota
	h1Active
)

const (
	h1WriteBuf = 16 << 10 // one write for headers and a body of this size
	// h1Buffered is how much of a body of unknown length is held back to
	// send it with a Content-Length instead of chunked.
	h1Buffered = 8 << 10
	// h1MaxDiscard is the most unread request body discarded to keep a
	// connection alive, as net/http's maxPostHandlerReadBytes.
	h1MaxDiscard = 256 << 10
	// h1BodyIdle bounds the wait for each piece of a request body, unless
	// the server sets bodyTimeout.
	h1BodyIdle = 60 * time.Second
)

func (s *h1server) bodyIdle() time.Duration {
	if s.bodyTimeout > 0 {
		return s.bodyTimeout
	}
	return h1BodyIdle
}

func (s *h1server) serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return nil
	}
	s.lns = append(s.lns, l)
	if s.conns == nil {
		s.conns = map[*h1conn]struct{}{}
		s.idle = make(chan struct{})
	}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE, ECONNABORTED and the like: the listener still
			// works, so back off and go on, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log("http: accept error; retrying", "err", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := &h1conn{srv: s, nc: nc, remote: nc.RemoteAddr().String()}
		c.state.Store(h1Active)
		s.mu.Lock()
		if s.shutting.Load() {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

// shutdown stops accepting, closes idle connections and waits for the
// active ones to finish their request, until ctx ends.
func (s *h1server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for _, l := range s.lns {
		l.Close()
	}
	s.mu.Unlock()
	for {
		s.mu.Lock()
		for c := range s.conns {
			if c.state.Load() == h1Idle {
				c.nc.Close()
			}
		}
		n, idle := len(s.conns), s.idle
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle:
		case <-time.After(50 * time.Millisecond): // a conn gone idle
		}
	}
}

func (s *h1server) remove(c *h1conn) {
	s.mu.Lock()
	delete(s.conns, c)
	close(s.idle)
	s.idle = make(chan struct{})
	s.mu.Unlock()
}

// h1conn is one client connection; its goroutine owns everything but the
// background read, which hands over through bgDone.
type h1conn struct {
	srv    *h1server
	nc     net.Conn
	remote string
	state  atomic.Int32
	br     *bufio.Reader
	more   bool  // the next write is followed by sendfile: MSG_MORE
	remain int64 // bytes the header phase may still read
	head   headScan

	// The background read watches for the client going away while a
	// handler waits (PHP); a byte it reads belongs to the next request.
	bgMu      sync.Mutex
	bgRunning bool
	bgAborted bool
	bgDone    chan struct{}
	hasByte   bool
	byteBuf   [1]byte
	cancel    context.CancelFunc
}

// Read is the bufio.Reader's source: the connection, less the header
// limit, plus the byte a background read took.
func (c *h1conn) Read(p []byte) (int, error) {
	if c.remain <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	if c.hasByte {
		c.hasByte = false
		p[0] = c.byteBuf[0]
		c.remain--
		return 1, nil
	}
	n, err := c.nc.Read(p)
	c.remain -= int64(n)
	c.head.feed(p[:n])
	return n, err
}

// headScan counts, as a request head is read, the header lines that
// http.ReadRequest folds away. Host: it keeps one and drops the header,
// and a request with two is refused (as net/http's server and nginx do),
// since two servers could each route it by a different one.
// Content-Length and Transfer-Encoding: with both, it frames the body by
// Transfer-Encoding and deletes Content-Length, and RFC 9112 6.1 wants
// the connection closed after the response (a proxy in front may have
// framed it by Content-Length: request smuggling).
type headScan struct {
	on    bool
	col   int   // position in the current line's name; -1 past it, -2 after a CR at a line start
	cand  uint8 // bit i: the line may still be headNames[i]
	lines [len(headNames)]int
}

// Indexes into headNames and headScan.lines.
const (
	headHost = iota
	headContentLength
	headTransferEncoding
)

var headNames = [...]string{"host:", "content-length:", "transfer-encoding:"}

const allHeadNames = 1<<len(headNames) - 1

func (h *headScan) start() { *h = headScan{on: true, col: -1} }

// hosts is the number of Host lines.
func (h *headScan) hosts() int { return h.lines[headHost] }

// ambiguousLength reports a body framed by both Content-Length and
// Transfer-Encoding, or by Transfer-Encoding in HTTP/1.0, which
// http.ReadRequest ignores there (RFC 9112 6.1: faulty framing).
func (h *headScan) ambiguousLength(req *http.Request) bool {
	return h.lines[headTransferEncoding] > 0 && (h.lines[headContentLength] > 0 || !req.ProtoAtLeast(1, 1))
}

func (h *headScan) feed(p []byte) {
	if !h.on {
		return
	}
	for _, b := range p {
		switch {
		case b == '\n':
			if h.col == 0 || h.col == -2 {
				h.on = false // the empty line: the head ends
				return
			}
			h.col, h.cand = 0, allHeadNames
		case h.col == 0 && b == '\r':
			h.col = -2
		case h.col >= 0:
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			for i, name := range headNames {
				if h.cand&(1<<i) == 0 {
					continue
				}
				if name[h.col] != b {
					h.cand &^= 1 << i
				} else if h.col+1 == len(name) {
					h.lines[i]++
					h.cand &^= 1 << i
				}
			}
			h.col++
			if h.cand == 0 {
				h.col = -1
			}
		default:
			h.col = -1
		}
	}
}

// Write is the response buffer's sink. A header that sendfile's body
// follows goes with MSG_MORE, so that the kernel sends them together
// (nginx's tcp_nopush) rather than the header as a segment of its own,
// which costs the client a wake-up.
func (c *h1conn) Write(p []byte) (int, error) {
	if !c.more {
		return c.nc.Write(p)
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return c.nc.Write(p)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	n := 0
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := syscall.SendmsgN(int(fd), p[n:], nil, nil, syscall.MSG_MORE)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				return false // wait until writable
			}
			if err != nil {
				serr = err
				return true
			}
			n += m
		}
		return true
	})
	if err == nil {
		err = serr
	}
	return n, err
}

var errHeaderTooLarge = errors.New("request header too large")

const noLimit = 1<<63 - 1

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1WriteBuf) }}

type watchKey struct{}

func (c *h1conn) serve() {
	defer c.srv.remove(c)
	defer func() { c.nc.Close() }() // Hijack swaps nc
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			c.srv.log("http: panic serving", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c)
	defer func() {
		if c.br != nil { // nil once hijacked
			c.br.Reset(nil)
			readerPool.Put(c.br)
		}
	}()
	base := context.WithValue(context.Background(), http.LocalAddrContextKey, c.nc.LocalAddr())
	wait := c.srv.readHeaderTimeout // a new connection owes its request soon
	lastPost := false
	for {
		// Wait for the next request without a buffer-sized read per
		// request when the previous one left bytes (pipelining).
		if c.br.Buffered() == 0 && !c.hasByte {
			c.state.Store(h1Idle)
			if c.srv.shutting.Load() {
				return
			}
			c.remain = noLimit
			if wait > 0 {
				c.nc.SetReadDeadline(time.Now().Add(wait))
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
			c.state.Store(h1Active)
		}
		wait = c.srv.idleTimeout
		if lastPost {
			// RFC 9112 2.2: old clients send a CRLF after a POST body.
			peek, _ := c.br.Peek(min(c.br.Buffered(), 4))
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			c.br.Discard(n)
			lastPost = false
			if c.br.Buffered() == 0 && n > 0 {
				continue
			}
		}
		if d := c.srv.readHeaderTimeout; d > 0 {
			c.nc.SetReadDeadline(time.Now().Add(d))
		}
		c.remain = int64(c.srv.maxHeader) + 4096 - int64(c.br.Buffered())
		c.head.start()
		if n := c.br.Buffered(); n > 0 {
			head, _ := c.br.Peek(n)
			c.head.feed(head)
		}
		req, err := http.ReadRequest(c.br)
		c.remain = noLimit
		c.head.on = false
		if err != nil {
			c.badRequest(err)
			return
		}
		if code, msg := checkRequest(req, c.head.hosts()); code != 0 {
			c.reply(code, msg)
			return
		}
		if req.ContentLength != 0 || len(req.TransferEncoding) > 0 {
			c.nc.SetReadDeadline(time.Time{}) // h1body sets one per read
		}
		lastPost = req.Method == http.MethodPost
		if !c.serveOne(base, req, c.head.ambiguousLength(req)) {
			return
		}
	}
}

// checkRequest is what net/http's server checks beyond ReadRequest.
func checkRequest(req *http.Request, hostLines int) (int, string) {
	if req.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported, "unsupported protocol version"
	}
	if req.ProtoAtLeast(1, 1) && hostLines == 0 && req.Method != http.MethodConnect {
		return http.StatusBadRequest, "missing required Host header"
	}
	if hostLines > 1 {
		return http.StatusBadRequest, "too many Host headers"
	}
	if !httpguts.ValidHostHeader(req.Host) {
		return http.StatusBadRequest, "malformed Host header"
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return http.StatusBadRequest, "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return http.StatusBadRequest, "invalid header value"
			}
		}
	}
	if e := req.Header.Get("Expect"); e != "" && !strings.EqualFold(e, "100-continue") {
		return http.StatusExpectationFailed, "unsupported Expect"
	}
	return 0, ""
}

// badRequest answers a request that could not be parsed, as net/http does.
func (c *h1conn) badRequest(err error) {
	switch {
	case errors.Is(err, errHeaderTooLarge):
		c.reply(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		// The client went away.
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
		msg := err.Error()
		if strings.Contains(msg, "unsupported transfer encoding") {
			c.reply(http.StatusNotImplemented, "unsupported Transfer-Encoding")
			return
		}
		// Name the part that is wrong, without echoing the client's bytes.
		for _, m := range badRequestReasons {
			if strings.Contains(msg, m[0]) {
				c.reply(http.StatusBadRequest, m[1])
				return
			}
		}
		c.reply(http.StatusBadRequest, "malformed request")
	}
}

// badRequestReasons maps http.ReadRequest's errors to what we say.
var badRequestReasons = [][2]string{
	{"malformed HTTP request", "malformed request line"},
	{"malformed HTTP version", "malformed HTTP version"},
	{"invalid method", "invalid method"},
	{"MIME header", "malformed header line"},
	{"too many transfer encodings", "more than one Transfer-Encoding"},
	{"multiple Content-Length", "conflicting Content-Length headers"},
	{"Content-Length", "bad Content-Length"},
	{"Trailer", "bad Trailer header"},
}

// reply writes a short error response; the connection closes after it,
// once the client had a moment to read it.
func (c *h1conn) reply(code int, msg string) {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c.nc, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n%d %s: %s\n",
		code, http.StatusText(code), code, http.StatusText(code), msg)
	closeWriteAndWait(c.nc)
}

// serveOne runs the handler for req; false closes the connection, as
// closeAfter asks.
func (c *h1conn) serveOne(base context.Context, req *http.Request, closeAfter bool) (keep bool) {
	ctx, cancel := context.WithCancel(base)
	c.cancel = cancel
	w := &h1resp{c: c, req: req, hdr: make(http.Header), clen: -1}
	w.closeAfter = closeAfter || req.Close || c.srv.shutting.Load()
	if req.Body != nil && req.Body != http.NoBody {
		w.body = &h1body{rc: req.Body, w: w,
			owed: req.ProtoAtLeast(1, 1) && req.Header.Get("Expect") != ""}
		req.Body = w.body
	}
	ctx = context.WithValue(ctx, watchKey{}, w.watch)
	req = req.WithContext(ctx)
	req.RemoteAddr = c.remote
	defer func() {
		cancel()
		if p := recover(); p != nil {
			c.abortBackgroundRead()
			panic(p) // serve logs it and closes the connection
		}
	}()
	c.srv.handler.ServeHTTP(w, req)
	c.abortBackgroundRead()
	if w.hijacked {
		return false
	}
	if err := w.finish(); err != nil {
		return false
	}
	if w.closeAfter {
		if w.body != nil && !w.body.eof.Load() {
			closeWriteAndWait(c.nc)
		}
		return false
	}
	return true
}

// closeWriteAndWait closes the write side and gives the client a moment to
// read the response before unread request bytes make the kernel send RST.
func closeWriteAndWait(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
}

// watch starts the background read once the request body is consumed;
// handlers that wait long (PHP) call it through the request context so
// that a client that goes away cancels their context.
func (w *h1resp) watch() {
	if w.body == nil {
		w.c.startBackgroundRead()
		return
	}
	w.body.watch.Store(true)
	if w.body.eof.Load() && w.body.watch.Swap(false) {
		w.c.startBackgroundRead()
	}
}

// Watch asks the connection to cancel r's context when the client goes
// away. Under net/http it is always so; the lean loop does it on request.
func Watch(r *http.Request) {
	if f, ok := r.Context().Value(watchKey{}).(func()); ok {
		f()
	}
}

func (c *h1conn) startBackgroundRead() {
	if c.br.Buffered() > 0 || c.hasByte {
		return // a pipelined request is already here
	}
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.bgRunning {
		return
	}
	c.bgRunning, c.bgAborted = true, false
	c.bgDone = make(chan struct{})
	// Here, not in the goroutine: an abort's past deadline must win.
	c.nc.SetReadDeadline(time.Time{})
	go c.backgroundRead(c.cancel, c.bgDone)
}

func (c *h1conn) backgroundRead(cancel context.CancelFunc, done chan struct{}) {
	defer close(done)
	n, err := c.nc.Read(c.byteBuf[:])
	if n == 1 {
		c.hasByte = true // the next request's first byte
		return
	}
	c.bgMu.Lock()
	aborted := c.bgAborted
	c.bgMu.Unlock()
	if err != nil && !aborted {
		cancel() // the client went away
	}
}

func (c *h1conn) abortBackgroundRead() {
	c.bgMu.Lock()
	if !c.bgRunning {
		c.bgMu.Unlock()
		return
	}
	c.bgAborted = true
	done := c.bgDone
	c.bgMu.Unlock()
	c.nc.SetReadDeadline(time.Unix(1, 0))
	<-done
	c.bgMu.Lock()
	c.bgRunning = false
	c.bgMu.Unlock()
	c.nc.SetReadDeadline(time.Time{})
}

// h1body is the request body: it sends 100 Continue on the first read,
// bounds the wait for each read (nginx's client_body_timeout), and
// remembers whether the handler read it all. PHP's body is read by the
// FastCGI client's goroutine while the handler may write, hence the lock
// and the atomics.
type h1body struct {
	rc     io.ReadCloser
	w      *h1resp
	mu     sync.Mutex  // the 100 Continue against the response header
	owed   bool        // 100-continue still owed (under mu)
	rmu    sync.Mutex  // held by each read of rc, and by the discard
	eof    atomic.Bool // read to the end
	broken atomic.Bool // a read failed: the rest of the body is unknown
	watch  atomic.Bool // start the background read at EOF
	err    error
}

func (b *h1body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	b.mu.Lock()
	if b.owed {
		b.owed = false
		if _, err := io.WriteString(b.w.c.nc, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			b.err = err
			b.mu.Unlock()
			return 0, err
		}
	}
	b.mu.Unlock()
	if b.w.c.br.Buffered() == 0 && !b.w.readDeadline.Load() {
		b.w.c.nc.SetReadDeadline(time.Now().Add(b.w.c.srv.bodyIdle()))
	}
	b.rmu.Lock()
	n, err := b.rc.Read(p)
	b.rmu.Unlock()
	if err != nil && err != io.EOF {
		// A timeout or bad chunking: where the body ends is unknown now.
		b.broken.Store(true)
	}
	if err == io.EOF && !b.eof.Swap(true) && b.watch.Swap(false) {
		b.w.c.startBackgroundRead()
	}
	return n, err
}

// cancelContinue is called as the response header goes out: a 100 must
// never follow it. It reports whether a 100 was owed.
func (b *h1body) cancelContinue() bool {
	b.mu.Lock()
	owed := b.owed
	b.owed = false
	b.mu.Unlock()
	return owed
}

func (b *h1body) Close() error {
	b.err = http.ErrBodyReadAfterClose
	return nil
}

// h1resp is the http.ResponseWriter of the lean loop.
type h1resp struct {
	c     *h1conn
	req   *http.Request
	hdr   http.Header
	bw    *bufio.Writer // from writerPool once the header is sent
	buf   []byte        // body held back while its length may still be set
	sniff []byte        // the first write, for Content-Type, if buf is empty

	body        *h1body
	status      int
	wroteHeader bool
	headerSent  bool
	chunked     bool
	noBody      bool  // HEAD, 204, 304: the body is dropped
	clen        int64 // declared Content-Length, or -1
	written     int64
	closeAfter  bool
	hijacked    bool
	// readDeadline: the handler sets the read deadline (a body read
	// paced by the PHP handler), so the body's reads leave it alone.
	readDeadline atomic.Bool
	ended        bool // finished: the handler returned
	err          error
}

func (w *h1resp) Header() http.Header { return w.hdr }

func (w *h1resp) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if v := w.hdr.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.clen = n
		} else {
			w.hdr.Del("Content-Length")
		}
	}
}

// informational sends a 1xx (103 Early Hints) ahead of the response.
func (w *h1resp) informational(code int) {
	if w.err != nil || w.headerSent || !w.req.ProtoAtLeast(1, 1) {
		return // HTTP/1.0 knows no 1xx (RFC 9110 15.2)
	}
	if code == http.StatusContinue && (w.body == nil || !w.body.cancelContinue()) {
		return // not asked for, or sent already
	}
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(w.c)
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	_ = w.hdr.Write(bw)
	bw.WriteString("\r\n")
	w.err = bw.Flush()
	bw.Reset(nil)
	writerPool.Put(bw)
}

func (w *h1resp) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.ended {
		return 0, errAfterEnd
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.clen >= 0 && w.written+int64(len(p)) > w.clen {
		return 0, http.ErrContentLength
	}
	if !w.headerSent && w.clen < 0 && len(w.buf)+len(p) <= h1Buffered {
		w.buf = append(w.buf, p...)
		w.written += int64(len(p))
		return len(p), nil
	}
	if !w.headerSent {
		w.sniff = p
		if err := w.sendHeader(false); err != nil {
			return 0, err
		}
	}
	w.written += int64(len(p))
	return len(p), w.writeBody(p)
}

func (w *h1resp) writeBody(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.noBody || len(p) == 0 {
		return nil
	}
	if w.chunked {
		w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		w.bw.WriteString("\r\n")
	}
	if _, err := w.bw.Write(p); err != nil {
		w.err = err
		return err
	}
	if w.chunked {
		w.bw.WriteString("\r\n")
	}
	return nil
}

// ReadFrom keeps sendfile for static files: the header goes out, then
// the kernel copies the file.
func (w *h1resp) ReadFrom(src io.Reader) (int64, error) {
	if w.ended {
		return 0, errAfterEnd
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.hijacked || w.clen < 0 || w.req.Method == http.MethodHead || !bodyAllowed(w.status) {
		return io.Copy(writerOnly{w}, src)
	}
	if !w.headerSent {
		if err := w.sendHeader(false); err != nil {
			return 0, err
		}
	}
	if w.bw.Buffered() > 0 { // the header
		w.c.more = w.written < w.clen // never hold it back with no body to follow
		err := w.bw.Flush()
		w.c.more = false
		if err != nil {
			w.err = err
			return 0, err
		}
	}
	// net.TCPConn's ReadFrom sends an *os.File, or an io.LimitedReader of
	// one (io.CopyN), with sendfile; a second LimitedReader around it would
	// hide the file.
	left := w.clen - w.written
	lr, ok := src.(*io.LimitedReader)
	own := !ok || lr.N > left
	if own {
		lr = &io.LimitedReader{R: src, N: left}
	}
	n, err := io.Copy(w.c.nc, lr)
	w.written += n
	if err != nil {
		w.err = err
		return n, err
	}
	if own && lr.N == 0 {
		var one [1]byte
		if m, _ := src.Read(one[:]); m > 0 {
			return n, http.ErrContentLength // more than declared, as net/http
		}
	}
	return n, nil
}

type writerOnly struct{ io.Writer }

func (w *h1resp) Flush() {
	if w.hijacked || w.ended {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		if w.sendHeader(false) != nil {
			return
		}
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
}

// FlushError is what http.ResponseController.Flush calls.
func (w *h1resp) FlushError() error {
	w.Flush()
	return w.err
}

func (w *h1resp) SetReadDeadline(t time.Time) error {
	w.readDeadline.Store(true)
	return w.c.nc.SetReadDeadline(t)
}

func (w *h1resp) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }
func (w *h1resp) EnableFullDuplex() error            { return nil }

// Hijack hands the connection to the handler (WebSocket proxying). A
// header already written (101 Switching Protocols) goes out first, as is.
func (w *h1resp) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked || w.ended {
		return nil, nil, http.ErrHijacked
	}
	w.c.abortBackgroundRead()
	nc := w.c.nc
	switch {
	case w.headerSent:
		if w.err == nil {
			w.err = w.bw.Flush()
		}
	case w.wroteHeader:
		var b strings.Builder
		fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", w.status, http.StatusText(w.status))
		_ = w.hdr.Write(&b)
		b.WriteString("\r\n")
		_, w.err = io.WriteString(nc, b.String())
	}
	if w.err != nil {
		return nil, nil, w.err
	}
	if w.body != nil {
		w.body.cancelContinue()
		w.body.err = http.ErrHijacked // the connection's bytes are the handler's now
	}
	w.hijacked = true
	w.c.srv.remove(w.c)
	// The reader still holds what the client sent past the request, and
	// the byte a background read took.
	br := w.c.br
	w.c.br = nil
	nc.SetDeadline(time.Time{}) // the header timeout is not the handler's
	w.c.nc = hijackedConn{nc}
	return nc, bufio.NewReadWriter(br, bufio.NewWriter(nc)), nil
}

// hijackedConn stands in for a conn that belongs to a handler now: the
// loop's deferred Close must not close it.
type hijackedConn struct{ net.Conn }

func (hijackedConn) Close() error { return nil }

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// sendHeader decides the framing and writes the status line and header
// into the write buffer; final says the handler has returned, so a held
// body's length is known.
func (w *h1resp) sendHeader(final bool) error {
	if w.ended {
		return errAfterEnd
	}
	w.headerSent = true
	h := w.hdr
	req := w.req
	isHead := req.Method == http.MethodHead
	allowed := bodyAllowed(w.status)
	w.noBody = isHead || !allowed
	if httpguts.HeaderValuesContainsToken(h["Connection"], "close") || w.c.srv.shutting.Load() {
		w.closeAfter = true // before the unread body is settled: no need to read it then
	}
	if b := w.body; b != nil {
		owed := b.cancelContinue()
		switch {
		case b.eof.Load():
		case owed:
			w.closeAfter = true // the client holds the body back for a 100 that will not come
		default:
			w.settleBody()
		}
	}

	// The framing is the loop's: what the handler set after WriteHeader
	// or as Transfer-Encoding does not count.
	delete(h, "Transfer-Encoding")
	switch {
	case !allowed:
		delete(h, "Content-Length")
		w.clen = -1
		if w.status == http.StatusNotModified {
			delete(h, "Content-Type")
		}
	case w.clen >= 0:
		h["Content-Length"] = []string{strconv.FormatInt(w.clen, 10)}
	case final && (!isHead || w.written > 0):
		w.clen = w.written
		h["Content-Length"] = []string{strconv.FormatInt(w.clen, 10)}
	case isHead:
		delete(h, "Content-Length")
	case req.ProtoAtLeast(1, 1):
		delete(h, "Content-Length")
		w.chunked = true
		h["Transfer-Encoding"] = []string{"chunked"}
	default:
		delete(h, "Content-Length")
		w.closeAfter = true // HTTP/1.0: the end of the body is the close
	}
	first := w.buf
	if len(first) == 0 {
		first = w.sniff
	}
	w.sniff = nil
	if _, ok := h["Content-Type"]; !ok && allowed && len(first) > 0 && !isHead && len(h["Content-Encoding"]) == 0 {
		h["Content-Type"] = []string{http.DetectContentType(first)}
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
	}
	if w.closeAfter {
		h["Connection"] = []string{"close"}
	} else if !req.ProtoAtLeast(1, 1) {
		h["Connection"] = []string{"keep-alive"}
	}
	w.bw = writerPool.Get().(*bufio.Writer)
	w.bw.Reset(w.c)
	bw := w.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(w.status))
	bw.WriteByte(' ')
	if t := http.StatusText(w.status); t != "" {
		bw.WriteString(t)
	} else {
		bw.WriteString("status code " + strconv.Itoa(w.status))
	}
	bw.WriteString("\r\n")
	if err := h.Write(bw); err != nil {
		w.err = err
		return err
	}
	bw.WriteString("\r\n")
	if len(w.buf) > 0 {
		buf := w.buf
		w.buf = nil
		return w.writeBody(buf)
	}
	return nil
}

// settleBody decides, before the header goes out so that it can say
// Connection: close, what becomes of a request body the handler has not
// read to the end: up to 256 KB are read and dropped, as net/http does.
// A read in flight (PHP's body streaming to FastCGI while the response
// starts) is left alone, and the connection closes after the response.
func (w *h1resp) settleBody() {
	b := w.body
	switch {
	case w.closeAfter:
	case b.err != nil, b.broken.Load():
		w.closeAfter = true // closed early or failed: how much is left is unknown
	case !b.rmu.TryLock():
		w.closeAfter = true
	default:
		defer b.rmu.Unlock()
		w.c.nc.SetReadDeadline(time.Now().Add(w.c.srv.bodyIdle()))
		n, err := io.CopyN(io.Discard, b.rc, h1MaxDiscard+1)
		if err == io.EOF && n <= h1MaxDiscard {
			b.eof.Store(true)
		} else {
			w.closeAfter = true
		}
	}
}

var errAfterEnd = errors.New("http: write after the handler returned")

// finish ends the response after the handler returned and decides
// whether the connection can serve another request.
func (w *h1resp) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		if err := w.sendHeader(true); err != nil {
			return err
		}
	}
	defer func() {
		w.bw.Reset(nil)
		writerPool.Put(w.bw)
		w.bw = nil
		w.ended = true
	}()
	if w.chunked && w.err == nil {
		w.bw.WriteString("0\r\n\r\n")
	}
	if w.clen >= 0 && w.written < w.clen && !w.noBody {
		w.closeAfter = true // the client waits for bytes that will not come
	}
	if b := w.body; b != nil && !b.eof.Load() {
		w.closeAfter = true // read after the header went out, not to the end
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}
