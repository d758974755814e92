package replication

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/sqlite"
)

// The stream from a primary to a replica is a sequence of messages:
// a type byte, a big-endian u32 payload length, the payload.
const (
	msgHello  = 'H' // JSON helloMsg
	msgFrames = 'F' // u64 primary send time (unix ns), then whole transactions of framelog records
	msgPing   = 'P' // u64 primary send time, u64 the primary's Next, u64 its epoch (missing: 0)
	msgError  = 'E' // text: why the stream ends (a word of refusals: "need-snapshot")

	// maxMessage bounds a message a replica accepts (a batch of frames is
	// at most DefaultBatchFrames plus the rest of one transaction).
	maxMessage = 256 << 20
)

type helloMsg struct {
	LogID string `json:"log_id"`
	Start uint64 `json:"start"`
	Next  uint64 `json:"next"`
	// Epoch is the primary's epoch of the site (0, or missing: unknown).
	Epoch uint64 `json:"epoch,omitempty"`
}

func writeMsg(w io.Writer, typ byte, payload ...[]byte) error {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(n))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	for _, p := range payload {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// readMsg reads one message of the stream into buf (grown as needed).
func readMsg(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	return readMsgOf(r, buf, streamTypes)
}

// The message types each exchange accepts.
const (
	streamTypes = string(msgHello) + string(msgFrames) + string(msgPing) + string(msgError)
	repairTypes = string(msgBegin) + string(msgSums) + string(msgBlocks) + string(msgDiff) +
		string(msgWant) + string(msgPages) + string(msgEnd) + string(msgError)
)

// readMsgOf reads one message whose type is one of types.
func readMsgOf(r io.Reader, buf []byte, types string) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, buf, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxMessage {
		return 0, buf, fmt.Errorf("replication stream: message of %d bytes", n)
	}
	// Grow as the bytes arrive, so a lying length costs no memory.
	buf = buf[:0]
	for remaining := int(n); remaining > 0; {
		chunk := min(remaining, 1<<20)
		buf = slices.Grow(buf, chunk)
		start := len(buf)
		buf = buf[:start+chunk]
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			return 0, buf, fmt.Errorf("replication stream: truncated message: %w", err)
		}
		remaining -= chunk
	}
	if strings.IndexByte(types, h[0]) < 0 {
		return 0, buf, fmt.Errorf("replication stream: unknown message type %q", h[0])
	}
	return h[0], buf, nil
}

// txBatch is one or more whole primary transactions merged into the page
// images a replica applies at once.
type txBatch struct {
	first, last uint64 // frame numbers
	size        uint32 // database size after the last transaction
	pages       map[uint32][]byte
	txs         int
	sum         uint64   // rolling checksum of frame last (the position's)
	pending     bool     // the last transaction continues in the next message
	recs        [][]byte // the records as received (for the replica's tail)
}

var errBadFrames = errors.New("replication stream: bad frames")

// parseFrames checks records (numbering from want) and merges them into
// b; a transaction may continue in the next message (b.pending). It
// returns the next expected frame number.
func parseFrames(b *txBatch, recs []byte, want uint64) (uint64, error) {
	if len(recs) == 0 || len(recs)%framelog.FrameSize != 0 {
		return want, fmt.Errorf("%w: %d bytes is not a whole number of frames", errBadFrames, len(recs))
	}
	if b.pages == nil {
		b.pages = map[uint32][]byte{}
		b.first = want
	}
	var pending bool
	for off := 0; off < len(recs); off += framelog.FrameSize {
		r := recs[off : off+framelog.FrameSize]
		no := binary.LittleEndian.Uint64(r)
		if no != want {
			return want, fmt.Errorf("%w: frame %d where %d was expected", errBadFrames, no, want)
		}
		pgno, size := binary.LittleEndian.Uint32(r[16:]), binary.LittleEndian.Uint32(r[20:])
		if pgno == 0 {
			return want, fmt.Errorf("%w: frame %d has page 0", errBadFrames, no)
		}
		b.pages[pgno] = r[24:]
		want++
		pending = size == 0
		if size != 0 {
			b.size = size
			b.last = no
			b.sum = binary.LittleEndian.Uint64(r[8:])
			b.txs++
		}
	}
	b.pending = pending
	b.recs = append(b.recs, recs)
	return want, nil
}

// sorted returns the batch's pages in ascending order, without pages past
// the final size.
func (b *txBatch) sorted() []sqlite.Page {
	out := make([]sqlite.Page, 0, len(b.pages))
	for no, data := range b.pages {
		if no <= b.size {
			out = append(out, sqlite.Page{No: no, Data: data})
		}
	}
	slices.SortFunc(out, func(a, b sqlite.Page) int { return cmp.Compare(a.No, b.No) })
	return out
}
