package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Command RPC: after the channel byte 'C', the follower writes one frame
// (4-byte big-endian length, then that many bytes of JSON: a command) and
// the leader answers with one frame (a reply). One RPC per connection.
const (
	// MaxCommandFrame bounds a request (a command carries a site.toml).
	MaxCommandFrame = MaxSiteConfig + 64<<10
	// MaxReplyFrame bounds a reply (it may carry the site).
	MaxReplyFrame = MaxSiteConfig + 64<<10
	// DefaultRPCTimeout bounds one command RPC (dial, apply, reply).
	DefaultRPCTimeout = 10 * time.Second
	// DefaultCommandIdle closes a kept-alive command connection that
	// carried nothing for this long.
	DefaultCommandIdle = 90 * time.Second
	// forwardAttempts bounds the retries of a forwarded write while the
	// leader changes.
	forwardAttempts = 8
)

// ErrFrameTooLarge: a frame longer than its limit.
var ErrFrameTooLarge = errors.New("cluster: frame too large")

// reply is the leader's answer to a command.
type reply struct {
	Index   uint64    `json:"index,omitempty"` // raft index of the entry
	Site    *SiteInfo `json:"site,omitempty"`
	Code    string    `json:"code,omitempty"` // errorCodes; "" = success
	Message string    `json:"message,omitempty"`
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// readFrame reads one frame of at most max bytes.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read frame: %w", err)
	}
	return b, nil
}

// decodeCommand reads and checks one command frame: the decoder of
// network bytes on the leader (FuzzCommandFrame).
func decodeCommand(r io.Reader) (command, error) {
	b, err := readFrame(r, MaxCommandFrame)
	if err != nil {
		return command{}, err
	}
	var cmd command
	if err := json.Unmarshal(b, &cmd); err != nil {
		return command{}, fmt.Errorf("%w: command: %v", ErrInvalid, err)
	}
	if err := cmd.validate(); err != nil {
		return command{}, err
	}
	return cmd, nil
}

// decodeReply reads one reply frame (the follower's side).
func decodeReply(r io.Reader) (reply, error) {
	b, err := readFrame(r, MaxReplyFrame)
	if err != nil {
		return reply{}, err
	}
	var rep reply
	if err := json.Unmarshal(b, &rep); err != nil {
		return reply{}, fmt.Errorf("%w: reply: %v", ErrInvalid, err)
	}
	return rep, nil
}

// validate checks what the proposer can check before the log does.
func (cmd command) validate() error {
	switch cmd.Op {
	case OpRegisterNode:
		if cmd.Node == nil {
			return fmt.Errorf("%w: register_node without node", ErrInvalid)
		}
		return ValidNodeName(cmd.Node.Name)
	case OpCreateSite:
		if len(cmd.Config) > MaxSiteConfig {
			return fmt.Errorf("%w: site config of %d bytes (limit %d)", ErrInvalid, len(cmd.Config), MaxSiteConfig)
		}
		if err := ValidSiteName(cmd.Site); err != nil {
			return err
		}
		return ValidNodeName(cmd.Primary)
	case OpRemoveSite:
		return ValidSiteName(cmd.Site)
	case OpReadIndex:
		return nil
	case OpRemoveNode:
		if cmd.Node == nil {
			return fmt.Errorf("%w: remove_node without node", ErrInvalid)
		}
		return ValidNodeName(cmd.Node.Name)
	case OpSetPrimary:
		if err := ValidSiteName(cmd.Site); err != nil {
			return err
		}
		return ValidNodeName(cmd.Primary)
	case OpRenewLease:
		if cmd.Node == nil {
			return fmt.Errorf("%w: renew_lease without node", ErrInvalid)
		}
		return ValidNodeName(cmd.Node.Name)
	case OpFailover:
		if err := ValidSiteName(cmd.Site); err != nil {
			return err
		}
		if err := ValidNodeName(cmd.From); err != nil {
			return err
		}
		return ValidNodeName(cmd.Primary)
	default:
		return fmt.Errorf("%w: unknown op %q", ErrInvalid, cmd.Op)
	}
}

// serveCommand answers the command RPCs of one kept-alive connection
// on the leader, one after another, until the caller hangs up, it is
// idle for DefaultCommandIdle or ctx (the mux's) ends. It runs on the
// mux's goroutine of that connection and blocks while each entry is
// applied.
func (c *Cluster) serveCommand(ctx context.Context, conn net.Conn) {
	br := bufio.NewReader(conn)
	for ctx.Err() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(DefaultCommandIdle))
		if _, err := br.Peek(1); err != nil {
			return // hung up or idle
		}
		_ = conn.SetDeadline(time.Now().Add(DefaultRPCTimeout))
		var rep reply
		cmd, err := decodeCommand(br)
		if err == nil {
			ctx, cancel := context.WithTimeout(ctx, DefaultRPCTimeout)
			var res applyResult
			var idx uint64
			res, idx, err = c.applyLocal(ctx, cmd)
			cancel()
			if err == nil {
				err = res.Err
			}
			rep.Index = idx
			if res.Site.Name != "" {
				s := res.Site
				rep.Site = &s
			}
		} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return // the caller went away
		}
		// A frame we could not read leaves the stream out of step.
		bad := err != nil && rep.Index == 0 && rep.Site == nil && cmd.Op == ""
		if errors.Is(err, ErrClosed) {
			// This leader is shutting down: the follower should find the next.
			err = fmt.Errorf("%w: %v", errNotLeader, err)
		}
		if err != nil {
			rep.Code, rep.Message = codeOf(err), err.Error()
		}
		if err := writeFrame(conn, rep); err != nil {
			c.log.Debug("command reply", "remote", conn.RemoteAddr().String(), "err", err)
			return
		}
		if bad {
			return
		}
	}
}

// cmdPool keeps idle command connections to leaders: a write from a
// follower then costs one round trip to the leader plus raft's commit,
// not a TCP and a TLS handshake more (at 125 ms between regions, half a
// second).
type cmdPool struct {
	mu     sync.Mutex
	idle   map[string][]net.Conn
	closed bool
}

// maxIdleCommandConns per leader address.
const maxIdleCommandConns = 4

func (p *cmdPool) get(addr string) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[addr]
	if len(l) == 0 {
		return nil
	}
	c := l[len(l)-1]
	p.idle[addr] = l[:len(l)-1]
	return c
}

func (p *cmdPool) put(addr string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[addr]) >= maxIdleCommandConns {
		c.Close()
		return
	}
	if p.idle == nil {
		p.idle = map[string][]net.Conn{}
	}
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *cmdPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, l := range p.idle {
		for _, c := range l {
			c.Close()
		}
	}
	p.idle = nil
}

// forward sends cmd to the leader, retrying a bounded number of times
// while there is none or it changes. A command that reached a leader
// which then lost leadership may or may not have been applied; retrying
// it is safe because every command is idempotent or checked (a second
// create_site answers ErrSiteExists, a second set_primary
// ErrEpochChanged).
func (c *Cluster) forward(ctx context.Context, cmd command) (applyResult, uint64, error) {
	wait := 20 * time.Millisecond
	var last error = ErrNoLeader
	for range forwardAttempts {
		if c.closed.Load() {
			return applyResult{}, 0, ErrClosed
		}
		addr, id := c.raft.LeaderWithID()
		switch {
		case id == "":
			last = ErrNoLeader
		case string(id) == c.cfg.Node:
			// became leader meanwhile
			res, idx, err := c.applyLocal(ctx, cmd)
			if !errors.Is(err, errNotLeader) {
				return res, idx, err
			}
			last = err
		default:
			res, idx, err := c.callLeader(ctx, c.raftAddrOf(string(id), string(addr)), cmd)
			if err == nil || !retryable(err) {
				return res, idx, err
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return applyResult{}, 0, fmt.Errorf("%w: %v", ErrNoLeader, last)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
	if !errors.Is(last, ErrNoLeader) {
		last = fmt.Errorf("%w: %v", ErrNoLeader, last)
	}
	return applyResult{}, 0, last
}

// retryable: no leader yet, a leader that moved, or one we could not
// reach; not an answer of the directory.
func retryable(err error) bool {
	var re *rpcError
	return errors.Is(err, errNotLeader) || errors.Is(err, ErrNoLeader) || errors.As(err, &re)
}

// rpcError is a failure of the transport, not an answer.
type rpcError struct {
	err    error
	unsent bool // the leader cannot have read the command
}

func (e *rpcError) Error() string { return e.err.Error() }
func (e *rpcError) Unwrap() error { return e.err }

func (c *Cluster) callLeader(ctx context.Context, addr string, cmd command) (applyResult, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultRPCTimeout)
	defer cancel()
	// A kept-alive connection first; one the leader closed while idle
	// fails before the command is read, so the retry below is safe.
	for attempt := 0; ; attempt++ {
		conn := c.cmdConns.get(addr)
		fresh := conn == nil
		if fresh {
			var err error
			if conn, err = c.mux.dial(ctx, addr, chanCommand, DefaultRPCTimeout); err != nil {
				return applyResult{}, 0, &rpcError{err: err}
			}
			c.cmdDials.Add(1)
		}
		res, idx, err := c.roundTrip(ctx, conn, addr, cmd)
		var re *rpcError
		if errors.As(err, &re) {
			conn.Close()
			if !fresh && attempt < maxIdleCommandConns && re.unsent {
				continue
			}
			return res, idx, err
		}
		c.cmdConns.put(addr, conn)
		return res, idx, err
	}
}

// roundTrip sends one command on conn and reads its reply.
func (c *Cluster) roundTrip(ctx context.Context, conn net.Conn, addr string, cmd command) (applyResult, uint64, error) {
	// The deadline is the caller's; closing on ctx ends a read sooner.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := writeFrame(conn, cmd); err != nil {
		return applyResult{}, 0, &rpcError{err: fmt.Errorf("send command to %s: %w", addr, err), unsent: true}
	}
	rep, err := decodeReply(bufio.NewReader(conn))
	if err != nil {
		// An idle connection the leader had closed answers EOF at once:
		// the command was never read.
		return applyResult{}, 0, &rpcError{err: fmt.Errorf("command reply from %s: %w", addr, err), unsent: errors.Is(err, io.EOF)}
	}
	_ = conn.SetDeadline(time.Time{})
	res := applyResult{Err: errorOf(rep.Code, rep.Message)}
	if rep.Site != nil {
		res.Site = *rep.Site
	}
	if res.Err != nil && (errors.Is(res.Err, errNotLeader) || errors.Is(res.Err, ErrNoLeader)) {
		return applyResult{}, 0, res.Err
	}
	return res, rep.Index, nil
}
