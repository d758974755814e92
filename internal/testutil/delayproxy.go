package testutil

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DelayProxy is a TCP proxy on loopback that delays every byte by a fixed
// one-way latency in each direction, without limiting throughput: the
// "network between regions" of multi-node tests (this machine has no
// netem).
type DelayProxy struct {
	Addr   string // where to connect
	target string
	delay  time.Duration
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	// resume is open while the proxy is paused, nil otherwise.
	resume chan struct{}
	// held: the directions held for a source IP (Hold); changed is
	// closed and replaced when held changes.
	held     map[string]Direction
	changed  chan struct{}
	accepted atomic.Int64
	bytes    atomic.Int64
}

// NewDelayProxy forwards connections on a new loopback port to target.
func NewDelayProxy(tb testing.TB, target string, oneWay time.Duration) *DelayProxy {
	tb.Helper()
	p, err := ListenDelayProxy(tb, "127.0.0.1:0", target, oneWay)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// ListenDelayProxy is NewDelayProxy on a given address (a port shared
// with a DelayUDPProxy, say); it fails when the address is taken.
func ListenDelayProxy(tb testing.TB, addr, target string, oneWay time.Duration) (*DelayProxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &DelayProxy{Addr: ln.Addr().String(), target: target, delay: oneWay, ln: ln, conns: map[net.Conn]bool{},
		held: map[string]Direction{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p, nil
}

func (p *DelayProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, u) {
			return
		}
		p.accepted.Add(1)
		src := hostOf(c.RemoteAddr())
		p.wg.Add(2)
		go p.pipe(u, c, src, ToTarget)
		go p.pipe(c, u, src, FromTarget)
	}
}

func (p *DelayProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

type chunk struct {
	at   time.Time
	data []byte
}

// gate blocks while the proxy is paused, or the direction dir of the
// client srcIP's connections is held.
func (p *DelayProxy) gate(srcIP string, dir Direction) {
	for {
		p.mu.Lock()
		ch := p.resume
		changed := p.changed
		held := !p.closed && p.held[srcIP]&dir != 0
		p.mu.Unlock()
		switch {
		case ch != nil:
			<-ch
		case held:
			<-changed
		default:
			return
		}
	}
}

// Direction is one way, or both, of a proxied link.
type Direction uint8

const (
	// ToTarget is what a client sends to the proxy's target.
	ToTarget Direction = 1 << iota
	// FromTarget is what the target sends back to a client.
	FromTarget
	Both = ToTarget | FromTarget
)

// Hold holds (true) or releases (false) the bytes of the connections
// whose client has IP srcIP, in the directions dir: a partition between
// that client's host and the target, one way or both, that heals with
// nothing lost (TCP would retransmit). Other clients are not affected.
func (p *DelayProxy) Hold(srcIP string, dir Direction, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.held[srcIP] |= dir
	} else {
		p.held[srcIP] &^= dir
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// hostOf is the IP of a network address.
func hostOf(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// pipe copies src to dst, each chunk leaving delay after it arrived.
func (p *DelayProxy) pipe(dst, src net.Conn, client string, dir Direction) {
	defer p.wg.Done()
	q := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			p.gate(client, dir)
			if _, err := dst.Write(c.data); err != nil {
				src.Close()
				for range q {
				}
				return
			}
			p.bytes.Add(int64(len(c.data)))
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{at: time.Now().Add(p.delay), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			break
		}
	}
	close(q)
	<-done
}

// Cut closes every open connection (a network failure); new connections
// still work.
func (p *DelayProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Pause stops forwarding bytes in both directions without closing
// anything (a partition that heals): connections are still accepted,
// what is sent is held until Resume.
func (p *DelayProxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume == nil && !p.closed {
		p.resume = make(chan struct{})
	}
}

// Resume forwards again, the held bytes first.
func (p *DelayProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
}

// Accepted is how many connections the proxy has forwarded.
func (p *DelayProxy) Accepted() int64 { return p.accepted.Load() }

// Bytes is how many bytes the proxy has delivered, both directions.
func (p *DelayProxy) Bytes() int64 { return p.bytes.Load() }

// Close stops the proxy and its connections.
func (p *DelayProxy) Close() {
	p.mu.Lock()
	p.closed = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	p.Resume()
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
