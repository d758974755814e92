package kv

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// conn is one client connection. One goroutine at a time (its event loop,
// or its own goroutine) parses, executes and replies in order, so
// pipelining needs no extra work.
type conn struct {
	s     *Server
	nc    net.Conn // goroutine mode
	raddr string
	loopConn
	rd     *Reader
	wr     *Writer
	id     int64
	name   string
	authed bool
	user   string
	site   *site
	dbi    int
	db     *db
	quit   bool
	upper  []byte // scratch for the upper-cased command name
}

// newConn prepares a connection served by its own goroutine.
func (s *Server) newConn(nc net.Conn) *conn {
	c := s.initConn(nc, nc, nc.RemoteAddr().String())
	c.nc = nc
	if !c.authed && s.cfg.AuthTimeout > 0 {
		// Lifted by loggedIn; past it the next read fails and serve ends.
		_ = nc.SetReadDeadline(time.Now().Add(s.cfg.AuthTimeout))
	}
	// Replies are flushed exactly when the next read would block: a
	// pipeline's replies leave together, a lone command's at once.
	c.rd.beforeRead = c.wr.Flush
	return c
}

// initConn sets up what both serving modes share; w may be nil (event
// loop: replies accumulate until the loop writes them).
func (s *Server) initConn(r io.Reader, w io.Writer, raddr string) *conn {
	c := &conn{s: s, raddr: raddr, id: s.nextID.Add(1), upper: make([]byte, 0, 32)}
	c.rd = NewReader(r, s.cfg.MaxBulkLen, s.cfg.MaxQueryBuffer)
	c.wr = NewWriter(w, writeBufferSize)
	c.rd.afterRead = tickClock
	if s.cfg.Auth == nil && s.cfg.Password == "" {
		c.authed = true
		c.user = "default"
	}
	if s.cfg.Auth == nil {
		c.setSite(s.st.site(defaultKeyspace, 0))
	}
	return c
}

// loggedIn lifts the auth deadline of a connection that has just
// authenticated: from now on it may idle.
func (c *conn) loggedIn() {
	if c.s.cfg.AuthTimeout <= 0 {
		return
	}
	if c.nc != nil {
		_ = c.nc.SetReadDeadline(time.Time{})
		return
	}
	c.loopLoggedIn()
}

func (c *conn) setSite(st *site) {
	c.site = st
	c.dbi = 0
	c.db = c.s.st.db(st, 0)
}

func (c *conn) serve() {
	defer c.s.wg.Done()
	defer c.s.dropConn(c)
	defer c.nc.Close()
	for !c.quit {
		args, err := c.rd.ReadCommand()
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				c.wr.Error("ERR " + pe.Error())
				c.wr.Flush()
			} else if errors.Is(err, os.ErrDeadlineExceeded) && !c.authed {
				c.s.log.Debug("kv: closed a connection that did not authenticate in time", "conn", c.id, "remote", c.raddr)
			} else if err != io.EOF && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("kv read", "conn", c.id, "err", err)
			}
			return
		}
		c.exec(args)
	}
	c.wr.Flush()
}

// exec runs one command and writes its reply into the buffer.
func (c *conn) exec(args [][]byte) {
	c.s.commands.Add(1)
	name := args[0]
	up := c.upper[:0]
	for _, b := range name {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		up = append(up, b)
	}
	c.upper = up
	cmd := commandTable[string(up)]
	if cmd == nil {
		c.unknownCommand(args)
		return
	}
	if (cmd.arity > 0 && len(args) != cmd.arity) || len(args) < -cmd.arity {
		c.wr.Error("ERR wrong number of arguments for '" + cmd.lname + "' command")
		return
	}
	if !c.authed && cmd.flags&flagNoAuth == 0 {
		c.wr.Error("NOAUTH Authentication required.")
		return
	}
	if cmd.flags&flagDenyOOM != 0 {
		if err := c.s.st.reserve(c.site); err != nil {
			c.wr.Error(err.Error())
			return
		}
	}
	cmd.fn(c, args)
}

// unknownCommand replies with Redis's exact text, quoting up to 128 bytes
// of arguments.
func (c *conn) unknownCommand(args [][]byte) {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		n := min(len(a), 128-b.Len())
		b.WriteByte('\'')
		b.Write(a[:n])
		b.WriteString("' ")
	}
	name := args[0]
	if len(name) > 128 {
		name = name[:128]
	}
	c.wr.Error(sanitize("ERR unknown command '" + string(name) + "', with args beginning with: " + b.String()))
}

// sanitize keeps an error reply on one line, as Redis does.
func sanitize(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	return s
}
