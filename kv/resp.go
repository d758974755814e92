package kv

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// ProtocolError is a malformed request. The server replies with Redis's
// "ERR Protocol error: ..." text and closes the connection, as Redis does,
// because the stream can no longer be framed.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// errIncomplete means the buffer holds only part of a command.
var errIncomplete = errors.New("incomplete command")

const (
	// readChunk is the size of each read from the socket and the initial
	// buffer; big enough that a pipeline of small commands needs one read.
	readChunk = 16 << 10
	// maxInline is Redis's PROTO_INLINE_MAX_SIZE: an inline command or a
	// length line longer than this is an error, not a reason to buffer more.
	maxInline = 64 << 10
)

// Reader parses RESP requests (multibulk arrays and inline commands) from a
// stream. Arguments returned by ReadCommand point into an internal buffer and
// stay valid only until the next call: no per-argument allocation.
//
// The buffer grows only as bytes actually arrive, so a client claiming a
// huge length cannot make the server allocate it.
type Reader struct {
	rd       io.Reader
	buf      []byte
	r, w     int // unread bytes are buf[r:w]
	maxBulk  int
	maxQuery int

	// Parse state of a partially received multibulk, so a command that
	// arrives in many reads is not re-parsed from the start each time.
	// Offsets are relative to r.
	nargs int      // declared argument count, -1 = not yet read
	pos   int      // next byte to parse
	offs  [][2]int // start/end of each parsed argument
	args  [][]byte // reused result slice

	// beforeRead, if set, runs before each blocking read (the server
	// flushes its replies there).
	beforeRead func() error
	// afterRead, if set, runs after each read that returned bytes.
	afterRead func()
}

// NewReader returns a Reader that rejects bulk arguments longer than maxBulk
// and commands whose buffered size would exceed maxQuery bytes.
func NewReader(rd io.Reader, maxBulk, maxQuery int) *Reader {
	return &Reader{rd: rd, maxBulk: maxBulk, maxQuery: maxQuery, nargs: -1}
}

// Buffered reports whether unparsed bytes remain; the server flushes its
// replies only when it does not, which batches pipelined replies.
func (p *Reader) Buffered() bool { return p.w > p.r }

// ReadCommand returns the next command's arguments. An empty multibulk or
// empty inline line is skipped, as Redis does. The error is io.EOF on a clean
// end of stream, a *ProtocolError for malformed input, or a read error.
func (p *Reader) ReadCommand() ([][]byte, error) {
	for {
		args, err := p.parse()
		if err == nil {
			if len(args) == 0 {
				continue
			}
			return args, nil
		}
		if err != errIncomplete {
			return nil, err
		}
		if err := p.fill(); err != nil {
			return nil, err
		}
	}
}

// next parses the next buffered command, skipping empty ones; errIncomplete
// means more bytes must be read first.
func (p *Reader) next() ([][]byte, error) {
	for {
		args, err := p.parse()
		if err != nil || len(args) > 0 {
			return args, err
		}
	}
}

// fill reads more bytes, compacting or growing the buffer first.
func (p *Reader) fill() error {
	if p.buf == nil {
		p.buf = getChunk()
	}
	if p.r > 0 && (p.r == p.w || p.w == len(p.buf)) {
		n := copy(p.buf, p.buf[p.r:p.w])
		p.r, p.w = 0, n
	}
	if p.w == len(p.buf) {
		if len(p.buf) >= p.maxQuery {
			return &ProtocolError{Msg: "query buffer limit reached"}
		}
		size := 2 * len(p.buf)
		if size > p.maxQuery {
			size = p.maxQuery
		}
		nb := make([]byte, size)
		copy(nb, p.buf[:p.w])
		p.buf = nb
	}
	if p.beforeRead != nil {
		if err := p.beforeRead(); err != nil {
			return err
		}
	}
	n, err := p.rd.Read(p.buf[p.w:])
	p.w += n
	if n > 0 {
		if p.afterRead != nil {
			p.afterRead()
		}
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if err == io.EOF && p.w > p.r {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// parse tries to parse one command from buf[r:w].
func (p *Reader) parse() ([][]byte, error) {
	if p.r == p.w {
		// Nothing buffered: give the buffer back, so an idle connection
		// holds none and one big command does not pin a big one.
		if p.buf != nil {
			putChunk(p.buf)
			p.buf = nil
		}
		p.r, p.w = 0, 0
		return nil, errIncomplete
	}
	if p.nargs < 0 && p.buf[p.r] != '*' {
		return p.parseInline()
	}
	data := p.buf[p.r:p.w]
	if p.nargs < 0 {
		n, next, err := readLenLine(data, 0)
		if err != nil {
			if err == errIncomplete {
				return nil, err
			}
			return nil, &ProtocolError{Msg: "invalid multibulk length"}
		}
		if n > int64(DefaultMaxArgs) {
			return nil, &ProtocolError{Msg: "invalid multibulk length"}
		}
		if n <= 0 {
			p.r += next
			return nil, nil
		}
		p.nargs, p.pos = int(n), next
		p.offs = p.offs[:0]
	}
	for len(p.offs) < p.nargs {
		if p.pos >= len(data) {
			return nil, errIncomplete
		}
		if data[p.pos] != '$' {
			return nil, &ProtocolError{Msg: fmt.Sprintf("expected '$', got '%c'", data[p.pos])}
		}
		n, next, err := readLenLine(data, p.pos)
		if err != nil {
			if err == errIncomplete {
				return nil, err
			}
			return nil, &ProtocolError{Msg: "invalid bulk length"}
		}
		if n < 0 || n > int64(p.maxBulk) {
			return nil, &ProtocolError{Msg: "invalid bulk length"}
		}
		end := next + int(n)
		if end+2 > len(data) {
			return nil, errIncomplete
		}
		if data[end] != '\r' || data[end+1] != '\n' {
			return nil, &ProtocolError{Msg: "invalid bulk length"}
		}
		p.offs = append(p.offs, [2]int{next, end})
		p.pos = end + 2
	}
	args := p.args[:0]
	for _, o := range p.offs {
		args = append(args, data[o[0]:o[1]:o[1]])
	}
	p.args = args
	p.r += p.pos
	p.nargs, p.pos = -1, 0
	return args, nil
}

// readLenLine parses "<c><int>\r\n" at data[at:], returning the integer and
// the offset after the line.
func readLenLine(data []byte, at int) (int64, int, error) {
	var n int64
	i := at + 1
	neg := false
	if i < len(data) && data[i] == '-' {
		neg = true
		i++
	}
	start := i
	for ; i < len(data); i++ {
		c := data[i]
		if c == '\r' {
			break
		}
		if c < '0' || c > '9' || i-start >= 18 {
			return 0, 0, errors.New("bad length")
		}
		n = n*10 + int64(c-'0')
	}
	if i+1 >= len(data) {
		if len(data)-at > maxInline {
			return 0, 0, errors.New("line too long")
		}
		return 0, 0, errIncomplete
	}
	if data[i+1] != '\n' || i == start {
		return 0, 0, errors.New("bad length")
	}
	if neg {
		n = -n
	}
	return n, i + 2, nil
}

// parseInline parses a space-separated command line (telnet style).
func (p *Reader) parseInline() ([][]byte, error) {
	data := p.buf[p.r:p.w]
	nl := -1
	for i, c := range data {
		if c == '\n' {
			nl = i
			break
		}
	}
	if nl < 0 {
		if len(data) > maxInline {
			return nil, &ProtocolError{Msg: "too big inline request"}
		}
		return nil, errIncomplete
	}
	line := data[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args := p.args[:0]
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		args = append(args, line[i:j:j])
		i = j
	}
	p.args = args
	p.r += nl + 1
	return args, nil
}

// chunks recycles read and reply buffers between connections: with
// thousands of mostly idle clients (PHP workers' persistent connections)
// only the busy ones hold buffers.
var chunks = sync.Pool{New: func() any { return new([readChunk]byte) }}

func getChunk() []byte { return chunks.Get().(*[readChunk]byte)[:] }

func putChunk(b []byte) {
	if cap(b) == readChunk {
		chunks.Put((*[readChunk]byte)(b[:readChunk]))
	}
}

// Writer encodes RESP2 replies into a buffer. With a destination, the
// buffer is written out when it passes its size and on Flush; without one
// (event-loop mode) it only grows, and the owner drains Bytes.
type Writer struct {
	dst   io.Writer
	buf   []byte
	limit int
	err   error
}

// NewWriter returns a Writer that flushes to w once size bytes are
// buffered; w may be nil.
func NewWriter(w io.Writer, size int) *Writer {
	return &Writer{dst: w, limit: size}
}

// Flush sends buffered replies to the destination.
func (w *Writer) Flush() error {
	if w.dst == nil || len(w.buf) == 0 || w.err != nil {
		return w.err
	}
	_, w.err = w.dst.Write(w.buf)
	w.buf = w.buf[:0]
	return w.err
}

// Bytes returns the buffered replies (event-loop mode).
func (w *Writer) Bytes() []byte { return w.buf }

// Reset drops the buffered replies and gives the buffer back.
func (w *Writer) Reset() {
	if w.buf != nil {
		putChunk(w.buf)
		w.buf = nil
	}
}

// start makes sure there is a buffer to append to.
func (w *Writer) start() {
	if w.buf == nil {
		w.buf = getChunk()[:0]
	}
}

func (w *Writer) grew() {
	if w.dst != nil && len(w.buf) >= w.limit {
		w.Flush()
	}
}

// Simple writes a status reply ("+OK").
func (w *Writer) Simple(s string) {
	w.start()
	w.buf = append(w.buf, '+')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
	w.grew()
}

// Error writes an error reply; msg starts with its code ("ERR ...").
func (w *Writer) Error(msg string) {
	w.start()
	w.buf = append(w.buf, '-')
	w.buf = append(w.buf, msg...)
	w.buf = append(w.buf, '\r', '\n')
	w.grew()
}

// Int writes an integer reply.
func (w *Writer) Int(n int64) { w.prefixed(':', n); w.grew() }

// ArrayLen starts an array of n elements.
func (w *Writer) ArrayLen(n int) { w.prefixed('*', int64(n)); w.grew() }

// Null writes a null bulk string.
func (w *Writer) Null() { w.start(); w.buf = append(w.buf, "$-1\r\n"...); w.grew() }

// NullArray writes a null array.
func (w *Writer) NullArray() { w.start(); w.buf = append(w.buf, "*-1\r\n"...); w.grew() }

// Bulk writes a bulk string.
func (w *Writer) Bulk(b []byte) {
	w.start()
	w.prefixed('$', int64(len(b)))
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, '\r', '\n')
	w.grew()
}

// BulkString writes a bulk string.
func (w *Writer) BulkString(s string) {
	w.start()
	w.prefixed('$', int64(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
	w.grew()
}

func (w *Writer) prefixed(c byte, n int64) {
	w.start()
	w.buf = append(w.buf, c)
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, '\r', '\n')
}
