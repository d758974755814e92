package fastcgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Record types (FastCGI 1.0, section 8).
const (
	typeBeginRequest    uint8 = 1
	typeAbortRequest    uint8 = 2
	typeEndRequest      uint8 = 3
	typeParams          uint8 = 4
	typeStdin           uint8 = 5
	typeStdout          uint8 = 6
	typeStderr          uint8 = 7
	typeData            uint8 = 8
	typeGetValues       uint8 = 9
	typeGetValuesResult uint8 = 10
	typeUnknownType     uint8 = 11
)

const (
	version1      = 1
	roleResponder = 1
	flagKeepConn  = 1
	headerLen     = 8
	// maxContent is the largest content a record can carry (16-bit length).
	maxContent = 65535
	// requestID is fixed: one request at a time per connection (no multiplexing;
	// php-fpm does not support it anyway).
	requestID = 1
)

// Protocol status values of FCGI_END_REQUEST.
const (
	statusRequestComplete = 0
	statusCantMpxConn     = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3
)

// Errors returned for malformed or unexpected responses.
var (
	// ErrProtocol is wrapped by every error caused by bytes from the
	// FastCGI server that violate the protocol.
	ErrProtocol = errors.New("fastcgi: protocol error")
	// ErrHeaderTooLarge is returned when the CGI header block of a response
	// exceeds MaxHeaderBytes.
	ErrHeaderTooLarge = errors.New("fastcgi: response header block too large")
	// ErrOverloaded is returned when the server ended the request with
	// FCGI_OVERLOADED.
	ErrOverloaded = errors.New("fastcgi: server overloaded")
	// ErrParamTooLarge is returned when one name-value pair does not fit in a
	// single PARAMS record (php-fpm parses each record on its own).
	ErrParamTooLarge = errors.New("fastcgi: param too large")
)

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// putHeader writes a record header into b[0:8].
func putHeader(b []byte, typ uint8, contentLen int) {
	b[0] = version1
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:], requestID)
	binary.BigEndian.PutUint16(b[4:], uint16(contentLen))
	b[6] = 0 // padding: optional, php-fpm accepts unpadded records
	b[7] = 0
}

// appendPairLen appends a FastCGI name-value length (1 byte below 128, else
// 4 bytes with the high bit set).
func appendPairLen(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return append(b, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
}

func pairLen(p Param) int {
	n := len(p.Name) + len(p.Value) + 2
	if len(p.Name) >= 128 {
		n += 3
	}
	if len(p.Value) >= 128 {
		n += 3
	}
	return n
}

// appendRequest appends BEGIN_REQUEST, the PARAMS stream (each record
// holding whole pairs, because php-fpm parses every record on its own), the
// empty PARAMS record and, when noBody, the empty STDIN record: the whole
// request head goes out in one write.
func appendRequest(b []byte, params []Param, noBody bool) ([]byte, error) {
	var begin [headerLen + 8]byte
	putHeader(begin[:], typeBeginRequest, 8)
	binary.BigEndian.PutUint16(begin[8:], roleResponder)
	begin[10] = flagKeepConn
	b = append(b, begin[:]...)

	recStart := -1 // offset of the open PARAMS record header
	for _, p := range params {
		n := pairLen(p)
		if n > maxContent {
			return b, fmt.Errorf("%w: %q is %d bytes", ErrParamTooLarge, p.Name, n)
		}
		if recStart >= 0 && len(b)-recStart-headerLen+n > maxContent {
			putHeader(b[recStart:], typeParams, len(b)-recStart-headerLen)
			recStart = -1
		}
		if recStart < 0 {
			recStart = len(b)
			b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
		}
		b = appendPairLen(b, len(p.Name))
		b = appendPairLen(b, len(p.Value))
		b = append(b, p.Name...)
		b = append(b, p.Value...)
	}
	if recStart >= 0 {
		putHeader(b[recStart:], typeParams, len(b)-recStart-headerLen)
	}
	var empty [headerLen]byte
	putHeader(empty[:], typeParams, 0)
	b = append(b, empty[:]...)
	if noBody {
		putHeader(empty[:], typeStdin, 0)
		b = append(b, empty[:]...)
	}
	return b, nil
}

// recordReader reads the records of one response. It never allocates: record
// content is consumed in place from the bufio.Reader or copied to the
// caller's buffer.
type recordReader struct {
	r         *bufio.Reader
	typ       uint8
	remaining int // unread content bytes of the current record
	padding   int // padding bytes after the content
	hdr       [headerLen]byte
	gotBytes  bool // any byte of the response was read (no retry after this)
}

func (rr *recordReader) reset(r *bufio.Reader) {
	*rr = recordReader{r: r}
}

// next skips what is left of the current record and reads the next header.
func (rr *recordReader) next() error {
	if n := rr.remaining + rr.padding; n > 0 {
		if _, err := rr.r.Discard(n); err != nil {
			return truncated(err)
		}
		rr.remaining, rr.padding = 0, 0
	}
	n, err := io.ReadFull(rr.r, rr.hdr[:])
	if n > 0 {
		rr.gotBytes = true
	}
	if err != nil {
		if n == 0 && err == io.EOF {
			return io.EOF
		}
		return truncated(err)
	}
	h := rr.hdr[:]
	if h[0] != version1 {
		return protoErr("bad version %d", h[0])
	}
	typ := h[1]
	id := binary.BigEndian.Uint16(h[2:])
	clen := int(binary.BigEndian.Uint16(h[4:]))
	switch typ {
	case typeStdout, typeStderr, typeEndRequest:
	default:
		return protoErr("unexpected record type %d", typ)
	}
	if id != requestID {
		return protoErr("request id %d, want %d", id, requestID)
	}
	if typ == typeEndRequest && clen != 8 {
		return protoErr("END_REQUEST content length %d, want 8", clen)
	}
	rr.typ, rr.remaining, rr.padding = typ, clen, int(h[6])
	return nil
}

// read copies content of the current record into p.
func (rr *recordReader) read(p []byte) (int, error) {
	if len(p) > rr.remaining {
		p = p[:rr.remaining]
	}
	n, err := io.ReadFull(rr.r, p)
	rr.remaining -= n
	if err != nil {
		return n, truncated(err)
	}
	return n, nil
}

// endRequest reads the 8-byte END_REQUEST body and checks protocolStatus.
func (rr *recordReader) endRequest() error {
	var b [8]byte
	if _, err := rr.read(b[:]); err != nil {
		return err
	}
	switch b[4] {
	case statusRequestComplete:
		return nil
	case statusOverloaded:
		return ErrOverloaded
	case statusCantMpxConn:
		return protoErr("server cannot multiplex connections")
	case statusUnknownRole:
		return protoErr("server does not know the responder role")
	default:
		return protoErr("unknown protocol status %d", b[4])
	}
}

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated record: %w", ErrProtocol, io.ErrUnexpectedEOF)
	}
	return err
}
