//go:build linux

package kv

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop serves connections from epoll, the way Redis does: one
// read per readiness event, every complete command executed, one write.
// Compared with a goroutine per connection it saves, per request, the read
// that returns EAGAIN and the park/unpark through the Go scheduler, which
// were a quarter of the CPU under redis-benchmark.

// loopConn is the event-loop state of a conn.
type loopConn struct {
	fd      int
	lp      *loop
	woff    int   // bytes of the reply buffer already written
	waitOut bool  // registered for EPOLLOUT, not reading, until drained
	authBy  int64 // Unix ns by which it must authenticate; 0 = no deadline (under lp.mu)
}

type loop struct {
	s     *Server
	epfd  int
	efd   int // eventfd that wakes the loop for Close
	mu    sync.Mutex
	conns map[int]*conn
	// pending are the connections with an auth deadline (under mu);
	// npending counts them so the loop need not lock to know there are
	// none. While there are some it wakes every sweepEvery to close
	// those past their deadline.
	pending  map[*conn]struct{}
	npending atomic.Int32
}

// errWouldBlock is a read on a non-blocking socket with nothing to read.
var errWouldBlock = errors.New("would block")

type fdReader struct{ fd *int }

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := rawRead(*r.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// The loop's sockets are non-blocking, so their reads and writes, and an
// epoll_wait with a zero timeout, cannot block: they go straight to the
// kernel without telling the scheduler (entersyscall/exitsyscall cost
// ~15% of the CPU per request).

func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// pollNow is epoll_wait with a zero timeout.
func pollNow(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// startLoops creates cfg.Loops loops; each holds an OS thread in
// epoll_wait.
func (s *Server) startLoops() error {
	for i := 0; i < s.cfg.Loops; i++ {
		l, err := newLoop(s)
		if err != nil {
			for _, o := range s.loops {
				o.closeFDs()
			}
			s.loops = nil
			return err
		}
		s.loops = append(s.loops, l)
	}
	for _, l := range s.loops {
		s.wg.Add(1)
		go l.run()
	}
	return nil
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	return &loop{s: s, epfd: epfd, efd: efd, conns: make(map[int]*conn), pending: make(map[*conn]struct{})}, nil
}

func (l *loop) closeFDs() {
	unix.Close(l.epfd)
	unix.Close(l.efd)
}

// wake makes the loop check whether the server is closing.
func (l *loop) wake() {
	var one = [8]byte{1}
	unix.Write(l.efd, one[:])
}

// handOff moves an accepted connection to a loop: the socket is dup'ed out
// of Go's poller, which then lets go of its own descriptor.
func (s *Server) handOff(nc net.Conn) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return errors.New("connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(f uintptr) { fd, derr = unix.Dup(int(f)) }); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	raddr := nc.RemoteAddr().String()
	nc.Close()
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	c := s.initConn(nil, nil, raddr)
	c.fd = fd
	c.rd.rd = fdReader{fd: &c.fd}
	l := s.loops[int(c.id)%len(s.loops)]
	c.lp = l
	first := false
	l.mu.Lock()
	l.conns[fd] = c
	if !c.authed && s.cfg.AuthTimeout > 0 {
		c.authBy = time.Now().Add(s.cfg.AuthTimeout).UnixNano()
		l.pending[c] = struct{}{}
		first = l.npending.Add(1) == 1
	}
	l.mu.Unlock()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		l.closeConn(c)
		return err
	}
	if first {
		l.wake() // it may be waiting with no timeout: start sweeping
	}
	return nil
}

// sweepEvery is how often a loop with unauthenticated connections checks
// their deadlines: a connection is closed at most this late.
func (l *loop) sweepEvery() time.Duration {
	return min(max(l.s.cfg.AuthTimeout/4, 10*time.Millisecond), time.Second)
}

// sweep closes the connections past their auth deadline.
func (l *loop) sweep(now int64) {
	var late []*conn
	l.mu.Lock()
	for c := range l.pending {
		if now >= c.authBy {
			late = append(late, c)
		}
	}
	l.mu.Unlock()
	for _, c := range late {
		l.s.log.Debug("kv: closed a connection that did not authenticate in time", "conn", c.id, "remote", c.raddr)
		l.closeConn(c)
	}
}

// loopLoggedIn drops the connection's auth deadline (loop goroutine).
func (c *conn) loopLoggedIn() {
	if c.lp == nil {
		return
	}
	l := c.lp
	l.mu.Lock()
	l.dropPending(c)
	l.mu.Unlock()
}

// dropPending forgets c's auth deadline; l.mu held.
func (l *loop) dropPending(c *conn) {
	if c.authBy != 0 {
		c.authBy = 0
		delete(l.pending, c)
		l.npending.Add(-1)
	}
}

func (l *loop) run() {
	defer l.s.wg.Done()
	defer l.shutdown()
	events := make([]unix.EpollEvent, 128)
	var nextSweep int64
	for {
		if l.npending.Load() > 0 {
			if now := time.Now().UnixNano(); now >= nextSweep {
				l.sweep(now)
				nextSweep = now + int64(l.sweepEvery())
			}
		}
		// Under load events are usually ready: poll without blocking
		// first, and block (telling the scheduler) only when idle —
		// until the next sweep if connections await their AUTH.
		n, err := pollNow(l.epfd, events)
		if err == nil && n == 0 {
			wait := -1
			if l.npending.Load() > 0 {
				wait = int(max(time.Duration(nextSweep-time.Now().UnixNano()), time.Millisecond) / time.Millisecond)
			}
			n, err = unix.EpollWait(l.epfd, events, wait)
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			l.s.log.Error("kv epoll_wait", "err", err)
			return
		}
		for i := 0; i < n; i++ {
			ev := &events[i]
			fd := int(ev.Fd)
			if fd == l.efd {
				var buf [8]byte
				unix.Read(l.efd, buf[:])
				if l.s.stopping.Load() {
					return
				}
				continue
			}
			l.mu.Lock()
			c := l.conns[fd]
			l.mu.Unlock()
			if c != nil {
				l.handle(c, ev.Events)
			}
		}
	}
}

func (l *loop) handle(c *conn, events uint32) {
	if c.waitOut {
		if events&unix.EPOLLOUT != 0 {
			l.flush(c)
		} else if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			// Reported even when not asked for, and level-triggered: a
			// dead peer must be closed, not spun on.
			l.closeConn(c)
			return
		}
		if c.fd < 0 || c.waitOut {
			return
		}
		// Drained: run the commands that were read but held back.
		l.serve(c)
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	if err := c.rd.fill(); err != nil {
		if err != errWouldBlock {
			l.closeConn(c)
		}
		return
	}
	l.serve(c)
}

// maxPendingReplies is how many reply bytes a connection may pile up
// before its remaining buffered commands wait for the client to read, so a
// client pipelining GETs of big values without reading cannot make the
// server buffer all the replies.
const maxPendingReplies = 1 << 20

// serve executes buffered commands and writes their replies.
func (l *loop) serve(c *conn) {
	for {
		full := false
		for !c.quit {
			if len(c.wr.Bytes()) >= maxPendingReplies {
				full = true
				break
			}
			args, err := c.rd.next()
			if err == errIncomplete {
				break
			}
			if err != nil {
				var pe *ProtocolError
				if errors.As(err, &pe) {
					c.wr.Error("ERR " + pe.Error())
				}
				c.quit = true
				break
			}
			c.exec(args)
		}
		l.flush(c)
		if !full || c.fd < 0 || c.waitOut {
			return
		}
	}
}

// flush writes pending replies; what the socket does not take now waits
// for EPOLLOUT, and the connection reads nothing more until it is sent.
func (l *loop) flush(c *conn) {
	out := c.wr.Bytes()
	for c.woff < len(out) {
		n, err := rawWrite(c.fd, out[c.woff:])
		if n > 0 {
			c.woff += n
		}
		switch {
		case err == nil || err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if !c.waitOut {
				c.waitOut = true
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(c.fd)})
			}
			return
		default:
			l.closeConn(c)
			return
		}
	}
	c.wr.Reset()
	c.woff = 0
	if c.quit {
		l.closeConn(c)
		return
	}
	if c.waitOut {
		c.waitOut = false
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)})
		// Commands may have arrived while writes were pending; level
		// triggering reports them on the next wait.
	}
}

func (l *loop) closeConn(c *conn) {
	if c.fd < 0 {
		return
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.mu.Lock()
	delete(l.conns, c.fd)
	l.dropPending(c)
	l.mu.Unlock()
	unix.Close(c.fd)
	c.fd = -1
	l.s.nconns.Add(-1)
}

// shutdown closes every connection of the loop. The loop's own fds are
// closed by Server.Close once every goroutine is gone, so wake can never
// write to a descriptor number the process has reused.
func (l *loop) shutdown() {
	l.mu.Lock()
	conns := make([]*conn, 0, len(l.conns))
	for _, c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		l.closeConn(c)
	}
}
