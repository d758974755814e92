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
	resume   chan struct{}
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
	p := &DelayProxy{Addr: ln.Addr().String(), target: target, delay: oneWay, ln: ln, conns: map[net.Conn]bool{}}
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
		p.wg.Add(2)
		go p.pipe(u, c)
		go p.pipe(c, u)
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

// gate blocks while the proxy is paused.
func (p *DelayProxy) gate() {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// pipe copies src to dst, each chunk leaving delay after it arrived.
func (p *DelayProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	q := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			p.gate()
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
	p.mu.Unlock()
	p.Resume()
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
