package replication

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/sqlite"
)

const frameSize = framelog.FrameSize

// Repair by page diff (the sqlite3_rsync way): one full-duplex request,
// POST /_ephpm/repl/v1/repair?site&epoch[&sums_from&sums_to], whose body
// (the replica's messages) and answer (the primary's) use the stream's
// framing:
//
//	primary  B  JSON repairBegin: the log frame F its read transaction
//	            shows (log ID, F, checksum of F-1) and the page count
//	primary  U  u64 checksums of frames sums_from.. (those its log holds)
//	replica  K  u32 its page count, 16-byte hash per block of blockPages
//	primary  D  per block that differs: u32 block, u16 n, n × u64 page hash
//	replica  W  u32 page numbers it lacks, ascending
//	primary  G  pages: u32 page number + the page, pagesPerMsg at most
//	primary  Z  u32 pages sent
//
// The primary pins F by taking the writer just long enough to begin its
// read transaction and read the log's end. Bytes on the wire: the
// changed pages, 8 bytes per page of each block that differs, 16 per
// block, and the page numbers. The replica applies the pages and the
// final size as one local transaction only after the Z checks out.
const (
	msgBegin  = 'B'
	msgSums   = 'U'
	msgBlocks = 'K'
	msgDiff   = 'D'
	msgWant   = 'W'
	msgPages  = 'G'
	msgEnd    = 'Z'

	blockPages  = 64   // 512 bytes of page hashes per block that differs
	maxSums     = 4096 // checksums a replica asks for to find the fork
	pagesPerMsg = 64
	// maxRepairPages bounds a database a repair handles (the hashes are
	// held in memory: 8 bytes a page).
	maxRepairPages = 1 << 30
)

// ReplicaRepairing: the local copy is being repaired by page diff.
const ReplicaRepairing ReplicaState = "repairing"

type repairBegin struct {
	LogID    string `json:"log_id"`
	Next     uint64 `json:"next"`
	Sum      uint64 `json:"sum"`
	SumKnown bool   `json:"sum_known"`
	Pages    uint32 `json:"pages"`
	Epoch    uint64 `json:"epoch,omitempty"`
	SumsFrom uint64 `json:"sums_from"` // the first frame of the U message
}

// pageHash is 8 bytes of SHA-256 over a page (page 1 without the fields
// each pager stamps itself).
func pageHash(no uint32, data []byte) uint64 {
	h := sha256.Sum256(sqlite.NormalizePage1(no, data))
	return binary.LittleEndian.Uint64(h[:8])
}

// hashPages hashes every page of the snapshot: hs[i] is page i+1's.
func hashPages(ctx context.Context, snap *sqlite.PageSnapshot) ([]uint64, error) {
	if snap.Pages() > maxRepairPages {
		return nil, fmt.Errorf("repair: %d pages", snap.Pages())
	}
	hs := make([]uint64, 0, snap.Pages())
	err := snap.Each(ctx, func(no uint32, data []byte) error {
		if no != uint32(len(hs))+1 {
			return fmt.Errorf("repair: page %d where %d was expected", no, len(hs)+1)
		}
		hs = append(hs, pageHash(no, data))
		return nil
	})
	return hs, err
}

// blockHash is 16 bytes of SHA-256 over a block's page count and page
// hashes: a block the other side holds fewer pages of differs.
func blockHash(hs []uint64) [16]byte {
	b := make([]byte, 4, 4+8*len(hs))
	binary.LittleEndian.PutUint32(b, uint32(len(hs)))
	for _, h := range hs {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}

func block(hs []uint64, b int) []uint64 {
	lo := b * blockPages
	if lo >= len(hs) {
		return nil
	}
	return hs[lo:min(lo+blockPages, len(hs))]
}

func appendBlocks(dst []byte, hs []uint64) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(hs)))
	for b := 0; b*blockPages < len(hs); b++ {
		h := blockHash(block(hs, b))
		dst = append(dst, h[:]...)
	}
	return dst
}

var (
	errBadRepair = errors.New("repair: bad message")
	// errNoRepair: the primary has no repair endpoint (an older node):
	// a replica it told need-snapshot bootstraps as before.
	errNoRepair = errors.New("the primary does not repair by page diff")
)

// parseBlocks reads a K message: the replica's page count and its block
// hashes (one per block of that many pages).
func parseBlocks(p []byte) (pages uint32, hashes [][16]byte, err error) {
	if len(p) < 4 || (len(p)-4)%16 != 0 {
		return 0, nil, fmt.Errorf("%w: blocks of %d bytes", errBadRepair, len(p))
	}
	pages = binary.LittleEndian.Uint32(p)
	n := (len(p) - 4) / 16
	if uint64(n) != (uint64(pages)+blockPages-1)/blockPages {
		return 0, nil, fmt.Errorf("%w: %d block hashes for %d pages", errBadRepair, n, pages)
	}
	hashes = make([][16]byte, n)
	for i := range hashes {
		hashes[i] = [16]byte(p[4+16*i:])
	}
	return pages, hashes, nil
}

// diffBlock is a block that differs and the primary's hashes of its
// pages.
type diffBlock struct {
	index  uint32
	hashes []uint64
}

// parseDiff reads a D message for a database of pages pages.
func parseDiff(p []byte, pages uint32) ([]diffBlock, error) {
	var out []diffBlock
	last := int64(-1)
	for len(p) > 0 {
		if len(p) < 6 {
			return nil, fmt.Errorf("%w: diff truncated", errBadRepair)
		}
		idx, n := binary.LittleEndian.Uint32(p), int(binary.LittleEndian.Uint16(p[4:]))
		p = p[6:]
		first := uint64(idx) * blockPages
		if int64(idx) <= last || n == 0 || n > blockPages || first+uint64(n) > uint64(pages) || len(p) < 8*n {
			return nil, fmt.Errorf("%w: diff block %d of %d pages", errBadRepair, idx, n)
		}
		last = int64(idx)
		d := diffBlock{index: idx, hashes: make([]uint64, n)}
		for i := range d.hashes {
			d.hashes[i] = binary.LittleEndian.Uint64(p[8*i:])
		}
		p = p[8*n:]
		out = append(out, d)
	}
	return out, nil
}

// parseWant reads a W message: ascending page numbers in 1..pages.
func parseWant(p []byte, pages uint32) ([]uint32, error) {
	if len(p)%4 != 0 {
		return nil, fmt.Errorf("%w: want of %d bytes", errBadRepair, len(p))
	}
	out := make([]uint32, len(p)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(p[4*i:])
		if out[i] == 0 || out[i] > pages || i > 0 && out[i] <= out[i-1] {
			return nil, fmt.Errorf("%w: page %d wanted (of %d, after %d)", errBadRepair, out[i], pages, max(i-1, 0))
		}
	}
	return out, nil
}

// parsePages reads a G message.
func parsePages(p []byte) ([]sqlite.Page, error) {
	const rec = 4 + sqlite.PageSize
	if len(p) == 0 || len(p)%rec != 0 {
		return nil, fmt.Errorf("%w: pages of %d bytes", errBadRepair, len(p))
	}
	out := make([]sqlite.Page, len(p)/rec)
	for i := range out {
		r := p[i*rec:]
		out[i] = sqlite.Page{No: binary.LittleEndian.Uint32(r), Data: r[4:rec:rec]}
	}
	return out, nil
}

// serveRepair is the primary's side of a repair.
func (m *Manager) serveRepair(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("site")
	ctx := r.Context()
	l, db, release, err := m.primaryLog(ctx, name)
	if err != nil {
		m.refuse(w, name, err)
		return
	}
	defer release()
	s := m.site(name)
	if s == nil {
		m.refuse(w, name, errors.New("site gone"))
		return
	}
	if err := m.checkEpoch(ctx, s, parseEpoch(q.Get("epoch"))); err != nil {
		http.Error(w, refusalWord(err), http.StatusConflict)
		return
	}
	// Pin: with the writer held no commit is between the read
	// transaction's snapshot and the log's end.
	var (
		snap  *sqlite.PageSnapshot
		begin repairBegin
	)
	err = db.WithWriter(ctx, func() error {
		var err error
		if snap, err = sqlite.OpenPageSnapshot(ctx, db.Path()); err != nil {
			return err
		}
		begin.LogID, begin.Next = l.ID(), l.Next()
		begin.Sum, begin.SumKnown, err = l.SumBefore(begin.Next)
		return err
	})
	if err != nil {
		if snap != nil {
			snap.Close() // only read
		}
		m.log.Error("repair: pin the database", "site", name, "err", err)
		http.Error(w, "site unavailable", http.StatusServiceUnavailable)
		return
	}
	defer snap.Close() // only read
	begin.Pages, begin.Epoch = snap.Pages(), s.epoch.Load()
	var sums []byte
	if from, err1 := strconv.ParseUint(q.Get("sums_from"), 10, 64); err1 == nil {
		to, _ := strconv.ParseUint(q.Get("sums_to"), 10, 64)
		from = max(from, l.Start())
		to = min(to, begin.Next, from+maxSums)
		begin.SumsFrom = from
		for f := from; f < to; f++ {
			sum, ok, err := l.SumBefore(f + 1)
			if err != nil || !ok {
				break // what the log holds (a compaction may have passed)
			}
			sums = binary.LittleEndian.AppendUint64(sums, sum)
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/2 is; HTTP/1 needs asking
	w.Header().Set("Content-Type", "application/x-ephpm-repair")
	w.WriteHeader(http.StatusOK)
	hello, _ := json.Marshal(begin)
	if err := errors.Join(writeMsg(w, msgBegin, hello), writeMsg(w, msgSums, sums), rc.Flush()); err != nil {
		return
	}
	if err := m.repairPages(ctx, w, rc, r.Body, snap); err != nil {
		m.log.Warn("repair ended", "site", name, "err", err)
		_ = writeMsg(w, msgError, []byte(err.Error())) // the replica may be gone
	}
}

// repairPages answers the replica's block hashes and sends the pages it
// lacks.
func (m *Manager) repairPages(ctx context.Context, w io.Writer, rc *http.ResponseController, body io.Reader, snap *sqlite.PageSnapshot) error {
	hs, err := hashPages(ctx, snap)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(body, 64<<10)
	typ, msg, err := readMsgOf(br, nil, repairTypes)
	if err != nil {
		return err
	}
	if typ != msgBlocks {
		return fmt.Errorf("%w: %q where block hashes were expected", errBadRepair, typ)
	}
	_, theirs, err := parseBlocks(msg)
	if err != nil {
		return err
	}
	var diff []byte
	for b := 0; b*blockPages < len(hs); b++ {
		ours := block(hs, b)
		if b < len(theirs) && theirs[b] == blockHash(ours) {
			continue
		}
		diff = binary.LittleEndian.AppendUint32(diff, uint32(b))
		diff = binary.LittleEndian.AppendUint16(diff, uint16(len(ours)))
		for _, h := range ours {
			diff = binary.LittleEndian.AppendUint64(diff, h)
		}
	}
	if err := errors.Join(writeMsg(w, msgDiff, diff), rc.Flush()); err != nil {
		return err
	}
	typ, msg, err = readMsgOf(br, msg, repairTypes)
	if err != nil {
		return err
	}
	if typ != msgWant {
		return fmt.Errorf("%w: %q where wanted pages were expected", errBadRepair, typ)
	}
	want, err := parseWant(msg, snap.Pages())
	if err != nil {
		return err
	}
	buf := make([]byte, 0, pagesPerMsg*(4+sqlite.PageSize))
	for i, no := range want {
		data, err := snap.Page(ctx, no)
		if err != nil {
			return err
		}
		buf = binary.LittleEndian.AppendUint32(buf, no)
		buf = append(buf, data...)
		if (i+1)%pagesPerMsg == 0 || i == len(want)-1 {
			if err := errors.Join(writeMsg(w, msgPages, buf), rc.Flush()); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	var end [4]byte
	binary.LittleEndian.PutUint32(end[:], uint32(len(want)))
	return errors.Join(writeMsg(w, msgEnd, end[:]), rc.Flush())
}

// counter counts the bytes through a reader or writer.
type counter struct {
	r io.Reader
	w io.Writer
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// RepairStats says what a repair moved.
type RepairStats struct {
	Pages      uint32 // pages copied
	DBPages    uint32 // the primary's database size
	Sent, Recv int64  // bytes of the request body and of the answer
}

// hasPages reports whether the local copy has a database to diff: more
// than the lone page 1 of the empty database a new replica's pool
// creates (that node bootstraps from a snapshot instead). Its WAL
// counts: a replica's recent pages may all be there.
func (s *site) hasPages() (bool, error) {
	var size [2]int64
	for i, p := range []string{s.cfg.DBPath, s.cfg.DBPath + "-wal"} {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		size[i] = st.Size()
	}
	return size[0] > sqlite.PageSize || size[1] > 32, nil
}

// repair makes the local copy the primary's database as of a frame F by
// copying only the pages that differ, in one local transaction, and
// moves the position to (log ID, F, checksum of F-1). A copy whose
// history diverged (why is errDiverged, or the position is a replaced
// primary's own) is quarantined first. On failure the copy is as it was
// (the transaction did not commit) and the position says a repair is
// owed (Repairing), so the next attempt repairs without a new quarantine.
func (s *site) repair(ctx context.Context, pf *posFile, pos *position, why error) error {
	log := s.m.log.With("site", s.cfg.Name)
	keep := !pos.Repairing && (errors.Is(why, errDiverged) || pos.ExPrimary)
	s.setState(ReplicaRepairing)
	select {
	case s.m.boots <- struct{}{}:
		defer func() { <-s.m.boots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	q := url.Values{"site": {s.cfg.Name}, "epoch": {strconv.FormatUint(s.epoch.Load(), 10)}}
	var mine []byte // our records before pos.Next, to find the fork
	if keep && pos.LogID != "" && pos.Next > 0 {
		tail, err := readTail(s.cfg.DBPath, pos.LogID, pos.Next)
		if err != nil {
			log.Warn("repair: the tail cannot be read; the fork frame will be unknown", "err", err)
		}
		if n := uint64(len(tail) / frameSize); n > 0 {
			mine = tail
			from := pos.Next - n
			if n > maxSums {
				mine = tail[len(tail)-maxSums*frameSize:]
				from = pos.Next - maxSums
			}
			q.Set("sums_from", strconv.FormatUint(from, 10))
			q.Set("sums_to", strconv.FormatUint(pos.Next, 10))
		}
	}
	pr, pw := io.Pipe()
	defer pr.Close()
	sent := &counter{w: pw}
	u := strings.TrimRight(s.cfg.PrimaryURL, "/") + "/_ephpm/repl/v1/repair?" + q.Encode()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, pr)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.m.cfg.Token)
	req.Header.Set(hdrNode, s.m.cfg.Node)
	req.Header.Set("Content-Type", "application/x-ephpm-repair")
	resp, err := s.m.client.Do(req)
	if err != nil {
		s.disconnected()
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		word, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return refusalErr(strings.TrimSpace(string(word)))
	}
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		return errNoRepair
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("repair: primary answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	recv := &counter{r: resp.Body}
	br := bufio.NewReaderSize(recv, 256<<10)
	next := func(want byte) ([]byte, error) {
		typ, msg, err := readMsgOf(br, nil, repairTypes)
		switch {
		case err != nil:
			return nil, fmt.Errorf("repair: %w", err)
		case typ == msgError:
			return nil, fmt.Errorf("repair: the primary failed: %s", msg)
		case typ != want:
			return nil, fmt.Errorf("%w: %q where %q was expected", errBadRepair, typ, want)
		}
		return msg, nil
	}
	msg, err := next(msgBegin)
	if err != nil {
		return err
	}
	var b repairBegin
	if err := json.Unmarshal(msg, &b); err != nil || len(b.LogID) != 36 || b.Pages == 0 || b.Pages > maxRepairPages {
		return fmt.Errorf("%w: begin %q (%v)", errBadRepair, msg, err)
	}
	if err := s.checkPrimaryEpoch(b.Epoch); err != nil {
		return err
	}
	theirSums, err := next(msgSums)
	if err != nil {
		return err
	}
	if keep {
		// Before anything changes: keep what we had.
		path, err := s.quarantine(ctx)
		if err != nil {
			return err
		}
		fork, known := forkFrame(mine, pos.Next, b.SumsFrom, theirSums, b.Next)
		args := []any{"copy", path, "last_frame", int64(pos.Next) - 1, "primary_next", b.Next, "why", refusalWord(why)}
		if known {
			args = append(args, "fork_frame", fork, "diverged_frames", pos.Next-fork)
		} else {
			args = append(args, "fork_frame", "unknown")
		}
		log.Warn("replica history diverged from the primary's: local copy quarantined, repairing by page diff", args...)
		pos.Repairing = true
		if err := pf.write(*pos); err != nil {
			return err
		}
	}
	// Our hashes, from a read transaction on our own copy (nothing else
	// writes it: this goroutine applies).
	var ours []uint64
	if ok, err := s.hasPages(); err != nil {
		return err
	} else if ok {
		snap, err := sqlite.OpenPageSnapshot(ctx, s.cfg.DBPath)
		if err != nil {
			return err
		}
		ours, err = hashPages(ctx, snap)
		snap.Close() // only read
		if err != nil {
			return err
		}
	}
	if err := writeMsg(sent, msgBlocks, appendBlocks(nil, ours)); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if msg, err = next(msgDiff); err != nil {
		return err
	}
	diff, err := parseDiff(msg, b.Pages)
	if err != nil {
		return err
	}
	var want []byte
	var wanted []uint32
	for _, d := range diff {
		for i, h := range d.hashes {
			no := d.index*blockPages + uint32(i) + 1
			if int(no) > len(ours) || ours[no-1] != h {
				want = binary.LittleEndian.AppendUint32(want, no)
				wanted = append(wanted, no)
			}
		}
	}
	if err := writeMsg(sent, msgWant, want); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	// The pages, as they arrive, into one local transaction that
	// commits only once the end checks out.
	pos.Repairing = true
	if err := pf.write(*pos); err != nil {
		return err
	}
	db, release, err := s.m.cfg.Pool.Acquire(ctx, s.cfg.DBPath)
	if err != nil {
		return err
	}
	var batch []sqlite.Page
	got := 0
	err = db.ApplyPagesFunc(ctx, b.Pages, func() (sqlite.Page, bool, error) {
		for len(batch) == 0 {
			typ, msg, err := readMsgOf(br, nil, repairTypes)
			if err != nil {
				return sqlite.Page{}, false, fmt.Errorf("repair: %w", err)
			}
			switch typ {
			case msgPages:
				if batch, err = parsePages(msg); err != nil {
					return sqlite.Page{}, false, err
				}
			case msgEnd:
				if len(msg) != 4 || int(binary.LittleEndian.Uint32(msg)) != got || got != len(wanted) {
					return sqlite.Page{}, false, fmt.Errorf("%w: end after %d of %d pages", errBadRepair, got, len(wanted))
				}
				return sqlite.Page{}, false, nil
			case msgError:
				return sqlite.Page{}, false, fmt.Errorf("repair: the primary failed: %s", msg)
			default:
				return sqlite.Page{}, false, fmt.Errorf("%w: %q among pages", errBadRepair, typ)
			}
		}
		p := batch[0]
		batch = batch[1:]
		if got >= len(wanted) || p.No != wanted[got] {
			return sqlite.Page{}, false, fmt.Errorf("%w: page %d not asked for", errBadRepair, p.No)
		}
		got++
		return p, true, nil
	})
	release()
	st := RepairStats{Pages: uint32(got), DBPages: b.Pages, Sent: sent.n, Recv: recv.n}
	s.m.rejoin.add(s.cfg.Name, 0, uint64(st.Sent+st.Recv))
	if err != nil {
		return fmt.Errorf("repair: apply: %w", err)
	}
	*pos = position{LogID: b.LogID, Next: b.Next, Sum: b.Sum, SumKnown: b.SumKnown}
	if err := pf.restart(*pos); err != nil {
		return err
	}
	if err := pf.sync(); err != nil {
		return err
	}
	s.logID.Store(b.LogID)
	s.known.Store(max(s.known.Load(), b.Next))
	s.applyDone(b.Next)
	s.m.rejoin.setLast(s.cfg.Name, st)
	log.Info("replica repaired by page diff", "next", b.Next, "pages_copied", st.Pages, "db_pages", st.DBPages,
		"bytes", st.Sent+st.Recv, "page_bytes", int64(st.Pages)*sqlite.PageSize)
	return nil
}

// forkFrame finds the first frame where our records (mine, ending at
// next) and the primary's checksums (from first) differ; known is false
// when they share no frame to compare.
func forkFrame(mine []byte, next, first uint64, theirs []byte, primaryNext uint64) (fork uint64, known bool) {
	n := uint64(len(mine) / frameSize)
	start := next - n
	compared := false
	for i := 0; i+8 <= len(theirs); i += 8 {
		f := first + uint64(i/8)
		if f < start || f >= next {
			continue
		}
		compared = true
		ourSum := binary.LittleEndian.Uint64(mine[(f-start)*frameSize+8:])
		if ourSum != binary.LittleEndian.Uint64(theirs[i:]) {
			return f, true
		}
	}
	if !compared {
		return 0, false
	}
	// Equal as far as both go: the primary's log ends first.
	return min(primaryNext, next), true
}
