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
	case OpSetPrimary:
		if err := ValidSiteName(cmd.Site); err != nil {
			return err
		}
		return ValidNodeName(cmd.Primary)
	default:
		return fmt.Errorf("%w: unknown op %q", ErrInvalid, cmd.Op)
	}
}

// serveCommand answers one command RPC on the leader. It runs on the
// mux's goroutine of that connection and blocks until the entry is
// applied, the RPC deadline passes or ctx (the mux's) ends.
func (c *Cluster) serveCommand(ctx context.Context, conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(DefaultRPCTimeout))
	br := bufio.NewReader(conn)
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
	if errors.Is(err, ErrClosed) {
		// This leader is shutting down: the follower should find the next.
		err = fmt.Errorf("%w: %v", errNotLeader, err)
	}
	if err != nil {
		rep.Code, rep.Message = codeOf(err), err.Error()
	}
	if err := writeFrame(conn, rep); err != nil {
		c.log.Debug("command reply", "remote", conn.RemoteAddr().String(), "err", err)
	}
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
type rpcError struct{ err error }

func (e *rpcError) Error() string { return e.err.Error() }
func (e *rpcError) Unwrap() error { return e.err }

func (c *Cluster) callLeader(ctx context.Context, addr string, cmd command) (applyResult, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultRPCTimeout)
	defer cancel()
	conn, err := c.mux.dial(ctx, addr, chanCommand, DefaultRPCTimeout)
	if err != nil {
		return applyResult{}, 0, &rpcError{err}
	}
	defer conn.Close()
	// The deadline is the caller's; closing on ctx ends a read sooner.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := writeFrame(conn, cmd); err != nil {
		return applyResult{}, 0, &rpcError{fmt.Errorf("send command to %s: %w", addr, err)}
	}
	rep, err := decodeReply(bufio.NewReader(conn))
	if err != nil {
		return applyResult{}, 0, &rpcError{fmt.Errorf("command reply from %s: %w", addr, err)}
	}
	res := applyResult{Err: errorOf(rep.Code, rep.Message)}
	if rep.Site != nil {
		res.Site = *rep.Site
	}
	if res.Err != nil && (errors.Is(res.Err, errNotLeader) || errors.Is(res.Err, ErrNoLeader)) {
		return applyResult{}, 0, res.Err
	}
	return res, rep.Index, nil
}
