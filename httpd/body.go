package httpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Defaults for reading request bodies; see DESIGN.md, "Request bodies".
const (
	// DefaultBodyBufferSize is the largest body held in memory; a larger
	// one goes to an unlinked temp file (nginx's client_body_buffer_size,
	// which is 16 KB there: WordPress' block editor and admin-ajax posts
	// are often larger, and a pooled buffer costs no allocation).
	DefaultBodyBufferSize = 64 << 10
	// DefaultBodyReadTimeout bounds the wait for each read of a body
	// (nginx's client_body_timeout).
	DefaultBodyReadTimeout = 60 * time.Second
	// DefaultBodyMinRate is the slowest average a body may arrive at, in
	// bytes per second, once DefaultBodyRateGrace has passed: the whole
	// body must have arrived by start + grace + size/rate (Apache's
	// mod_reqtimeout, body=...,MinRate=500, works the same way).
	DefaultBodyMinRate = 1 << 10
	// DefaultBodyRateGrace is the time a body has before the minimum
	// rate counts (a slow start, a TCP window opening).
	DefaultBodyRateGrace = 10 * time.Second
)

// deadlineSlack is how stale the read deadline may get before it is set
// again: each set costs a timer update (a message to the connection's
// goroutine under HTTP/2), and a deadline that is early by less than
// this does not matter.
const deadlineSlack = 100 * time.Millisecond

// memBody is a pooled in-memory request body.
type memBody struct {
	buf []byte  // len = the server's body buffer size
	one [1]byte // for the read past a full buf
	rd  bytes.Reader
}

// reqBody is a request body read to its end, in memory or in an unlinked
// temp file; PHP reads it from there and never waits on the client.
type reqBody struct {
	s   *Server
	mem *memBody
	f   *os.File
	n   int64
}

// reader is what PHP gets; nil for no body.
func (b *reqBody) reader() io.Reader {
	switch {
	case b.mem != nil:
		return &b.mem.rd
	case b.f != nil:
		return b.f
	}
	return nil
}

// release returns the buffer or closes the file, once PHP is done with it
// (after the FastCGI response body is closed).
func (b *reqBody) release() {
	if b.mem != nil {
		b.mem.rd.Reset(nil)
		b.s.bodyPool.Put(b.mem)
		b.mem = nil
	}
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
}

// readDeadliner is the part of http.ResponseController that a body
// read needs, found on the ResponseWriter without allocating one.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

func findReadDeadliner(w http.ResponseWriter) readDeadliner {
	for range 8 {
		if d, ok := w.(readDeadliner); ok {
			return d
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// pacer reads a body under the read timeout and the minimum rate, by
// moving the connection's read deadline before each read.
type pacer struct {
	dl      readDeadliner // nil: the connection cannot say (tests' recorders)
	src     io.Reader
	start   time.Time
	idle    time.Duration
	grace   time.Duration
	rate    int64
	n       int64
	set     time.Time // the deadline last set
	timeout bool      // a read hit the deadline
}

func (p *pacer) read(b []byte) (int, error) {
	if p.dl != nil {
		now := time.Now()
		d := now.Add(p.idle)
		credit := time.Duration(p.n/p.rate)*time.Second + time.Duration(p.n%p.rate)*time.Second/time.Duration(p.rate)
		if rd := p.start.Add(p.grace + credit); rd.Before(d) {
			d = rd
		}
		if p.set.IsZero() || d.Sub(p.set) >= deadlineSlack {
			if p.dl.SetReadDeadline(d) != nil {
				p.dl = nil // not supported: read without
			}
			p.set = d
		}
	}
	n, err := p.src.Read(b)
	p.n += int64(n)
	if err != nil && err != io.EOF && isTimeout(err) {
		p.timeout = true
	}
	return n, err
}

// done clears the deadline of a body read to its end: under net/http a
// background read that watches for the client going away while PHP runs
// would otherwise hit it and cancel the request.
func (p *pacer) done() {
	if p.dl != nil && !p.set.IsZero() {
		_ = p.dl.SetReadDeadline(time.Time{})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// readBody reads r's body to its end before PHP gets a worker: a body of
// up to the buffer size into a pooled buffer, a larger one into an
// unlinked temp file. A body over the size limit is 413; one that stalls
// or falls under the minimum rate is 408; either way the connection
// closes after the answer.
func (s *Server) readBody(rb *reqBody, w *respWriter, r *http.Request) (err error) {
	rb.s = s
	cl := r.ContentLength
	if r.Body == nil || r.Body == http.NoBody || cl == 0 {
		return nil
	}
	defer func() {
		if err != nil {
			rb.release()
			if r.ProtoMajor == 1 {
				// What is left of the body is not read: do not parse it
				// as the next request.
				w.Header().Set("Connection", "close")
			}
		}
	}()
	if cl > s.maxBody {
		return statusErr(http.StatusRequestEntityTooLarge, "request body too large")
	}
	p := pacer{dl: findReadDeadliner(w), src: r.Body, start: time.Now(),
		idle: s.bodyTimeout, grace: s.bodyGrace, rate: s.bodyMinRate}
	if cl > int64(s.bodyBufSize) {
		err = s.spool(rb, &p, nil, nil, true)
	} else {
		err = s.readMem(rb, &p, cl)
	}
	if err != nil {
		if p.timeout {
			return &Error{Status: http.StatusRequestTimeout, Msg: fmt.Sprintf("request body too slow (%d bytes in %v)", p.n, time.Since(p.start).Round(time.Millisecond)), Err: err}
		}
		return err
	}
	p.done()
	return nil
}

// readMem reads a body of at most the buffer size (cl < 0: unknown)
// into a pooled buffer; a chunked body that overflows it moves to a file.
func (s *Server) readMem(rb *reqBody, p *pacer, cl int64) error {
	mem := s.bodyPool.Get().(*memBody)
	rb.mem = mem
	buf := mem.buf
	if cl > 0 {
		buf = buf[:cl]
	}
	n := 0
	for {
		if n == len(buf) {
			// Full: one more read tells the end of the body from a body
			// too big for memory.
			m, err := p.read(mem.one[:])
			switch {
			case m == 0 && err == io.EOF: // the end: out of the loop below
			case err != nil && err != io.EOF:
				return bodyErr(err)
			case m == 0:
				continue
			case cl >= 0: // net/http's and the lean loop's bodies stop at the length
				return statusErr(http.StatusBadRequest, "request body longer than its Content-Length")
			default:
				rb.mem = nil
				err = s.spool(rb, p, buf[:n], mem.one[:m], err != io.EOF)
				s.bodyPool.Put(mem)
				return err
			}
			break
		}
		m, err := p.read(buf[n:])
		n += m
		if int64(n) > s.maxBody {
			return statusErr(http.StatusRequestEntityTooLarge, "request body too large")
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return bodyErr(err)
		}
	}
	mem.rd.Reset(buf[:n])
	rb.n = int64(n)
	return nil
}

// spool writes head and tail, the part of the body already read, and the
// rest if there is more, to an unlinked temp file.
func (s *Server) spool(rb *reqBody, p *pacer, head, tail []byte, more bool) error {
	f, err := os.CreateTemp(s.tmpDir, "body-*")
	if err != nil {
		return fmt.Errorf("spool request body: %w", err)
	}
	_ = os.Remove(f.Name())
	rb.f = f
	n := int64(len(head) + len(tail))
	if n > s.maxBody {
		return statusErr(http.StatusRequestEntityTooLarge, "request body too large")
	}
	for _, b := range [2][]byte{head, tail} {
		if len(b) == 0 {
			continue
		}
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("spool request body: %w", err)
		}
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for more {
		m, rerr := p.read(buf)
		if m > 0 {
			n += int64(m)
			if n > s.maxBody {
				return statusErr(http.StatusRequestEntityTooLarge, "request body too large")
			}
			if _, err := f.Write(buf[:m]); err != nil {
				return fmt.Errorf("spool request body: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return bodyErr(rerr)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool request body: %w", err)
	}
	rb.n = n
	return nil
}

// bodyErr is a failed read of the client's body: 400 (malformed chunks,
// a client that went away mid-body); readBody makes a timeout 408.
func bodyErr(err error) error {
	return &Error{Status: http.StatusBadRequest, Msg: "read request body", Err: err}
}
