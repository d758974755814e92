package testutil

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// DelayUDPProxy is DelayProxy for datagrams: what is sent to Addr
// reaches target a fixed one-way delay later, from an upstream socket of
// the proxy's own for each source, and what target answers to that
// socket reaches the source the same delay later. Gossip (memberlist)
// pings a node's advertised address and acks the pinger's advertised
// address: with one proxy in front of each node, every hop is delayed.
// Datagrams are dropped, never held, while the proxy is paused (a
// partition) or its queue is full (a congested link).
type DelayUDPProxy struct {
	Addr   string
	target *net.UDPAddr
	delay  time.Duration
	pc     *net.UDPConn
	q      chan datagram
	wg     sync.WaitGroup // read and replies: the queue's senders
	dwg    sync.WaitGroup // deliver

	mu       sync.Mutex
	sessions map[string]*udpSession
	paused   bool
	closed   bool
	held     map[string]Direction // by source IP (Hold)

	forwarded atomic.Int64 // datagrams delivered, both directions
	dropped   atomic.Int64
}

type udpSession struct {
	src  *net.UDPAddr
	up   *net.UDPConn
	last atomic.Int64 // unix nanoseconds of the last datagram
}

type datagram struct {
	at   time.Time
	data []byte
	up   *net.UDPConn // to target through this socket, or
	to   *net.UDPAddr // back to this source through the proxy's socket
	src  string       // the source's IP, either way
}

// udpIdle is how long a source's upstream socket outlives its last
// datagram.
const udpIdle = 2 * time.Minute

// NewDelayUDPProxy forwards datagrams on a new loopback port to target.
func NewDelayUDPProxy(tb testing.TB, target string, oneWay time.Duration) *DelayUDPProxy {
	tb.Helper()
	p, err := ListenDelayUDPProxy(tb, "127.0.0.1:0", target, oneWay)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// ListenDelayUDPProxy is NewDelayUDPProxy on a given address; it fails
// when the address is taken.
func ListenDelayUDPProxy(tb testing.TB, addr, target string, oneWay time.Duration) (*DelayUDPProxy, error) {
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, err
	}
	la, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	p := &DelayUDPProxy{Addr: pc.LocalAddr().String(), target: ta, delay: oneWay, pc: pc,
		q: make(chan datagram, 16384), sessions: map[string]*udpSession{}, held: map[string]Direction{}}
	p.wg.Add(1)
	go p.read()
	p.dwg.Add(1)
	go p.deliver()
	tb.Cleanup(p.Close)
	return p, nil
}

// read takes datagrams from sources.
func (p *DelayUDPProxy) read() {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	lastSweep := time.Now()
	for {
		n, src, err := p.pc.ReadFromUDP(buf)
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		now := time.Now()
		if now.Sub(lastSweep) > udpIdle/4 {
			p.sweep(now)
			lastSweep = now
		}
		s := p.session(src)
		if s == nil {
			return
		}
		s.last.Store(now.UnixNano())
		p.enqueue(datagram{at: now.Add(p.delay), data: append([]byte(nil), buf[:n]...), up: s.up, src: src.IP.String()})
	}
}

// session is src's upstream socket, opened on its first datagram (nil
// once the proxy is closed).
func (p *DelayUDPProxy) session(src *net.UDPAddr) *udpSession {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if s := p.sessions[src.String()]; s != nil {
		return s
	}
	up, err := net.DialUDP("udp", nil, p.target)
	if err != nil {
		return nil
	}
	s := &udpSession{src: src, up: up}
	p.sessions[src.String()] = s
	p.wg.Add(1)
	go p.replies(s)
	return s
}

// replies takes what target sends to src's upstream socket.
func (p *DelayUDPProxy) replies(s *udpSession) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.up.Read(buf)
		if err != nil {
			// ECONNREFUSED answers an earlier datagram to a port nobody
			// listens on (the node is down): the socket stays usable.
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return
		}
		s.last.Store(time.Now().UnixNano())
		p.enqueue(datagram{at: time.Now().Add(p.delay), data: append([]byte(nil), buf[:n]...), to: s.src, src: s.src.IP.String()})
	}
}

func (p *DelayUDPProxy) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.sessions {
		if now.Sub(time.Unix(0, s.last.Load())) > udpIdle {
			s.up.Close()
			delete(p.sessions, k)
		}
	}
}

// blocked reports whether d is dropped now: paused, or its way held.
func (p *DelayUDPProxy) blocked(d datagram) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	dir := ToTarget
	if d.up == nil {
		dir = FromTarget
	}
	return p.paused || p.held[d.src]&dir != 0
}

// Hold drops (true) or forwards again (false) the datagrams between the
// source srcIP and the target in the directions dir.
func (p *DelayUDPProxy) Hold(srcIP string, dir Direction, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.held[srcIP] |= dir
	} else {
		p.held[srcIP] &^= dir
	}
}

func (p *DelayUDPProxy) enqueue(d datagram) {
	if p.blocked(d) {
		p.dropped.Add(1)
		return
	}
	select {
	case p.q <- d:
	default:
		p.dropped.Add(1)
	}
}

// deliver sends each datagram when its delay is over: the delay is the
// same for all, so the queue is in delivery order.
func (p *DelayUDPProxy) deliver() {
	defer p.dwg.Done()
	for d := range p.q {
		if w := time.Until(d.at); w > 0 {
			time.Sleep(w)
		}
		if p.blocked(d) {
			p.dropped.Add(1)
			continue
		}
		var err error
		if d.up != nil {
			_, err = d.up.Write(d.data)
		} else {
			_, err = p.pc.WriteToUDP(d.data, d.to)
		}
		if err == nil {
			p.forwarded.Add(1)
		} else {
			p.dropped.Add(1)
		}
	}
}

// Pause drops every datagram until Resume (a partition).
func (p *DelayUDPProxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

// Resume forwards datagrams again.
func (p *DelayUDPProxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// Cut closes the upstream sockets: target sees new source ports.
func (p *DelayUDPProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.sessions {
		s.up.Close()
		delete(p.sessions, k)
	}
}

// Forwarded is how many datagrams were delivered, both directions.
func (p *DelayUDPProxy) Forwarded() int64 { return p.forwarded.Load() }

// Dropped is how many datagrams were dropped (paused, queue full, send
// error).
func (p *DelayUDPProxy) Dropped() int64 { return p.dropped.Load() }

// Close stops the proxy.
func (p *DelayUDPProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.pc.Close()
	p.Cut()
	p.wg.Wait() // no one sends to the queue any more
	close(p.q)
	p.dwg.Wait()
}
