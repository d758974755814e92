package testutil

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

const testDelay = 40 * time.Millisecond

// udpEcho answers every datagram to its sender, prefixed with the
// sender's address as the echo saw it.
func udpEcho(t *testing.T) (addr string, got chan string) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	got = make(chan string, 100)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
			pc.WriteTo([]byte(from.String()+" "+string(buf[:n])), from)
		}
	}()
	return pc.LocalAddr().String(), got
}

func readUDP(t *testing.T, c net.PacketConn, timeout time.Duration) (string, net.Addr) {
	t.Helper()
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(timeout))
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n]), from
}

func TestDelayUDPProxyRoundTrip(t *testing.T) {
	target, _ := udpEcho(t)
	p := NewDelayUDPProxy(t, target, testDelay)
	pa, _ := net.ResolveUDPAddr("udp", p.Addr)
	var seen []string
	for i := 0; i < 2; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := c.WriteTo([]byte(fmt.Sprint("hello ", i)), pa); err != nil {
			t.Fatal(err)
		}
		msg, from := readUDP(t, c, 10*time.Second)
		if rtt := time.Since(start); rtt < 2*testDelay {
			t.Errorf("round trip %v through a %v one-way proxy", rtt, testDelay)
		}
		if from.String() != p.Addr {
			t.Errorf("reply from %s, want the proxy %s", from, p.Addr)
		}
		src, body, _ := strings.Cut(msg, " ")
		if body != fmt.Sprint("hello ", i) {
			t.Fatalf("echo: %q", msg)
		}
		if src == c.LocalAddr().String() {
			t.Errorf("the target saw the client's own address %s", src)
		}
		seen = append(seen, src)
		// A second datagram from the same source leaves by the same
		// upstream socket.
		c.WriteTo([]byte("again"), pa)
		msg, _ = readUDP(t, c, 10*time.Second)
		if again, _, _ := strings.Cut(msg, " "); again != src {
			t.Errorf("the same source went out by %s then %s", src, again)
		}
	}
	if seen[0] == seen[1] {
		t.Errorf("two sources share the upstream socket %s", seen[0])
	}
	RetryUntil(t, 10*time.Second, func() error { // counted after the send returns
		if p.Forwarded() != 8 {
			return fmt.Errorf("forwarded %d datagrams, want 8", p.Forwarded())
		}
		return nil
	})
}

// TestDelayUDPProxyAdvertised is memberlist's pattern: A pings B's
// proxy, B acks A's proxy (A's advertised address), not the sender.
func TestDelayUDPProxyAdvertised(t *testing.T) {
	a, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pa := NewDelayUDPProxy(t, a.LocalAddr().String(), testDelay)
	pb := NewDelayUDPProxy(t, b.LocalAddr().String(), testDelay)
	pbAddr, _ := net.ResolveUDPAddr("udp", pb.Addr)
	paAddr, _ := net.ResolveUDPAddr("udp", pa.Addr)
	start := time.Now()
	a.WriteTo([]byte("ping"), pbAddr)
	if msg, _ := readUDP(t, b, 10*time.Second); msg != "ping" {
		t.Fatalf("b got %q", msg)
	}
	if d := time.Since(start); d < testDelay {
		t.Errorf("one way took %v, want ≥ %v", d, testDelay)
	}
	b.WriteTo([]byte("ack"), paAddr)
	if msg, _ := readUDP(t, a, 10*time.Second); msg != "ack" {
		t.Fatalf("a got %q", msg)
	}
	if d := time.Since(start); d < 2*testDelay {
		t.Errorf("ping and ack took %v, want ≥ %v", d, 2*testDelay)
	}
}

func TestDelayUDPProxyPause(t *testing.T) {
	target, got := udpEcho(t)
	p := NewDelayUDPProxy(t, target, testDelay)
	pa, _ := net.ResolveUDPAddr("udp", p.Addr)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Pause()
	c.WriteTo([]byte("lost"), pa)
	// Resume once the proxy has seen (and dropped) it.
	RetryUntil(t, 10*time.Second, func() error {
		if p.Dropped() < 1 {
			return fmt.Errorf("not dropped yet")
		}
		return nil
	})
	p.Resume()
	c.WriteTo([]byte("kept"), pa)
	if msg := <-got; msg != "kept" {
		t.Fatalf("the target got %q first, want the datagram sent after Resume", msg)
	}
	if msg, _ := readUDP(t, c, 10*time.Second); !strings.HasSuffix(msg, " kept") {
		t.Fatalf("reply %q", msg)
	}
	// Cut: the next datagram leaves by a new upstream socket.
	first, _ := readSrc(t, c, pa)
	p.Cut()
	second, _ := readSrc(t, c, pa)
	if first == second {
		t.Errorf("after Cut the same upstream socket %s", first)
	}
}

func readSrc(t *testing.T, c net.PacketConn, pa net.Addr) (string, string) {
	c.WriteTo([]byte("x"), pa)
	msg, _ := readUDP(t, c, 10*time.Second)
	src, body, _ := strings.Cut(msg, " ")
	return src, body
}

// TestDelayUDPProxyTargetDown: datagrams to a port nobody listens on are
// lost, and the proxy forwards again when the target comes back.
func TestDelayUDPProxyTargetDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := pc.LocalAddr().String()
	pc.Close()
	p := NewDelayUDPProxy(t, target, testDelay)
	pa, _ := net.ResolveUDPAddr("udp", p.Addr)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		c.WriteTo([]byte("into the void"), pa)
	}
	RetryUntil(t, 10*time.Second, func() error {
		if p.Forwarded()+p.Dropped() < 3 {
			return fmt.Errorf("not sent yet")
		}
		return nil
	})
	back, err := net.ListenPacket("udp", target)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	defer back.Close()
	RetryUntil(t, 10*time.Second, func() error {
		c.WriteTo([]byte("back"), pa)
		buf := make([]byte, 100)
		back.SetReadDeadline(time.Now().Add(4 * testDelay))
		for {
			n, _, err := back.ReadFrom(buf)
			if err != nil {
				return err
			}
			if string(buf[:n]) == "back" {
				return nil
			}
		}
	})
}

func TestDelayProxyPause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p := NewDelayProxy(t, ln.Addr().String(), testDelay)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte("one"))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "one" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	if rtt := time.Since(start); rtt < 2*testDelay {
		t.Errorf("round trip %v through a %v one-way proxy", rtt, testDelay)
	}
	p.Pause()
	c.Write([]byte("two"))
	c.SetReadDeadline(time.Now().Add(10 * testDelay))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("read %q while paused", buf[:n])
	}
	// A connection opened while paused is accepted, its bytes held.
	c2, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte("new"))
	p.Resume()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "two" {
		t.Fatalf("after resume: %q %v", buf, err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "new" {
		t.Fatalf("connection opened while paused: %q %v", buf, err)
	}
	if p.Accepted() != 2 {
		t.Errorf("accepted %d, want 2", p.Accepted())
	}
	// Cut closes; the next connection works.
	p.Cut()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a cut connection still reads")
	}
	c3, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.Write([]byte("3rd"))
	c3.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c3, buf); err != nil || string(buf) != "3rd" {
		t.Fatalf("after cut: %q %v", buf, err)
	}
}

func TestGossipProxySharesPort(t *testing.T) {
	target := FreeTCPUDPPort(t)
	g := NewDelayGossipProxy(t, target, testDelay)
	if g.TCP.Addr != g.UDP.Addr || g.Addr != g.TCP.Addr {
		t.Fatalf("TCP %s and UDP %s differ", g.TCP.Addr, g.UDP.Addr)
	}
}

// TestGossipProxyMemberlist: three memberlist nodes that bind loopback
// ports and advertise their proxies converge, and their traffic crosses
// the proxies; a node behind a paused proxy is declared dead and comes
// back when it resumes.
func TestGossipProxyMemberlist(t *testing.T) {
	const n = 3
	var (
		lists   []*memberlist.Memberlist
		proxies []*GossipProxy
	)
	logs := &lockedBuf{}
	for i := 0; i < n; i++ {
		bind := FreeTCPUDPPort(t)
		g := NewDelayGossipProxy(t, bind, testDelay)
		proxies = append(proxies, g)
		cfg := memberlist.DefaultLANConfig()
		cfg.Name = fmt.Sprint("node", i)
		cfg.BindAddr = "127.0.0.1"
		cfg.BindPort = PortOf(bind)
		cfg.AdvertiseAddr = "127.0.0.1"
		cfg.AdvertisePort = PortOf(g.Addr)
		cfg.ProbeInterval = 200 * time.Millisecond
		cfg.ProbeTimeout = 150 * time.Millisecond
		cfg.GossipInterval = 50 * time.Millisecond
		cfg.SuspicionMult = 2
		cfg.PushPullInterval = time.Second
		cfg.SecretKey = []byte("0123456789abcdef")
		cfg.LogOutput = logs
		ml, err := memberlist.Create(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ml.Shutdown() })
		lists = append(lists, ml)
	}
	for i := 1; i < n; i++ {
		if _, err := lists[i].Join([]string{proxies[0].Addr}); err != nil {
			t.Fatalf("join: %v\n%s", err, logs)
		}
	}
	alive := func(ml *memberlist.Memberlist) int {
		k := 0
		for _, m := range ml.Members() {
			if m.State == memberlist.StateAlive {
				k++
			}
		}
		return k
	}
	RetryUntil(t, 30*time.Second, func() error {
		for i, ml := range lists {
			if a := alive(ml); a != n {
				return fmt.Errorf("node%d sees %d alive", i, a)
			}
			for _, m := range ml.Members() {
				if want := proxies[nameIndex(m.Name)].Addr; m.Address() != want {
					return fmt.Errorf("node%d knows %s at %s, want its proxy %s", i, m.Name, m.Address(), want)
				}
			}
		}
		return nil
	})
	// Probes and acks cross the UDP proxies; push/pull the TCP ones.
	RetryUntil(t, 30*time.Second, func() error {
		for i, g := range proxies {
			if g.UDP.Forwarded() == 0 || g.TCP.Accepted() == 0 {
				return fmt.Errorf("proxy %d: %d datagrams, %d connections", i, g.UDP.Forwarded(), g.TCP.Accepted())
			}
		}
		return nil
	})
	proxies[2].Pause()
	RetryUntil(t, 60*time.Second, func() error {
		for i := 0; i < 2; i++ {
			if a := alive(lists[i]); a != n-1 {
				return fmt.Errorf("node%d sees %d alive with node2 cut off", i, a)
			}
		}
		return nil
	})
	proxies[2].Resume()
	// memberlist does not heal a partition by itself once every peer is
	// marked dead (its gossip to the dead stops after GossipToTheDeadTime),
	// so, as the cluster's join loop does, a node left alone joins again.
	RetryUntil(t, 60*time.Second, func() error {
		for i, ml := range lists {
			if alive(ml) == 1 {
				ml.Join([]string{proxies[(i+1)%n].Addr})
			}
		}
		for i, ml := range lists {
			if a := alive(ml); a != n {
				return fmt.Errorf("node%d sees %d alive after the partition healed", i, a)
			}
		}
		return nil
	})
}

func nameIndex(name string) int {
	var i int
	fmt.Sscanf(name, "node%d", &i)
	return i
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDelayProxyHold: one client's link is held one way, then both ways;
// another client (another source IP) is never affected, and nothing is
// lost when the hold ends.
func TestDelayProxyHold(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 3)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						c.Close()
						return
					}
					got <- string(buf)
					c.Write(buf)
				}
			}()
		}
	}()
	p := NewDelayProxy(t, ln.Addr().String(), testDelay)
	dialFrom := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dialFrom("127.0.0.2"), dialFrom("127.0.0.3")
	echo := func(c net.Conn, msg string, want bool) {
		t.Helper()
		buf := make([]byte, 3)
		c.SetReadDeadline(time.Now().Add(8 * testDelay))
		_, err := io.ReadFull(c, buf)
		if want && (err != nil || string(buf) != msg) {
			t.Fatalf("echo of %q: %q %v", msg, buf, err)
		}
		if !want && err == nil {
			t.Fatalf("echo of %q came through a held link", msg)
		}
	}
	// Only the answers to a are held: the target still gets a's bytes.
	p.Hold("127.0.0.2", FromTarget, true)
	a.Write([]byte("a01"))
	if m := <-got; m != "a01" {
		t.Fatalf("target got %q", m)
	}
	echo(a, "a01", false)
	b.Write([]byte("b01"))
	<-got
	echo(b, "b01", true)
	// Both ways: the target gets nothing from a.
	p.Hold("127.0.0.2", ToTarget, true)
	a.Write([]byte("a02"))
	select {
	case m := <-got:
		t.Fatalf("target got %q through a held link", m)
	case <-time.After(8 * testDelay):
	}
	p.Hold("127.0.0.2", Both, false)
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "a01a02" {
		t.Fatalf("after the hold: %q %v", buf, err)
	}
}

// TestDelayUDPProxyHold: datagrams of one source are dropped one way.
func TestDelayUDPProxyHold(t *testing.T) {
	target, got := udpEcho(t)
	p := NewDelayUDPProxy(t, target, testDelay)
	pa, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	to, _ := net.ResolveUDPAddr("udp", p.Addr)
	p.Hold("127.0.0.2", FromTarget, true)
	pa.WriteTo([]byte("x"), to)
	if m := <-got; m != "x" {
		t.Fatalf("target got %q", m)
	}
	buf := make([]byte, 100)
	pa.SetReadDeadline(time.Now().Add(8 * testDelay))
	if _, _, err := pa.ReadFrom(buf); err == nil {
		t.Fatal("an answer came through a held way")
	}
	p.Hold("127.0.0.2", FromTarget, false)
	p.Hold("127.0.0.2", ToTarget, true)
	pa.WriteTo([]byte("y"), to)
	select {
	case m := <-got:
		t.Fatalf("target got %q through a held way", m)
	case <-time.After(8 * testDelay):
	}
	p.Hold("127.0.0.2", ToTarget, false)
	pa.WriteTo([]byte("z"), to)
	if msg, _ := readUDP(t, pa, 5*time.Second); !strings.HasSuffix(msg, " z") {
		t.Fatalf("after the hold: %q", msg)
	}
}

// TestNetLabHold: two processes in namespaces of their own reach a proxy
// here from their own IPs, and holding one's link leaves the other's.
func TestNetLabHold(t *testing.T) {
	if why := NetLabUsable(); why != "" {
		t.Skip(why)
	}
	NeedProgram(t, "python3")
	lab := NewNetLab(t, 2)
	ln, err := net.Listen("tcp", lab.Node(0).Gateway+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.Write([]byte("hi\n")); c.Close() }()
		}
	}()
	// The proxy listens on node 1's gateway: node 0 reaches it through
	// its own default route.
	px, err := ListenDelayProxy(t, lab.Node(1).Gateway+":0", ln.Addr().String(), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	get := func(i int) (string, error) {
		script := fmt.Sprintf("import socket\ns=socket.create_connection(('%s',%d),timeout=1)\ns.settimeout(1)\nprint(s.recv(10).decode().strip(), s.getsockname()[0])", lab.Node(1).Gateway, PortOf(px.Addr))
		out, err := lab.Command(i, "python3", "-c", script).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for i := 0; i < 2; i++ {
		out, err := get(i)
		if err != nil || out != "hi "+lab.Node(i).IP {
			t.Fatalf("node %d: %q %v", i, out, err)
		}
	}
	px.Hold(lab.Node(0).IP, FromTarget, true)
	if out, err := get(0); err == nil {
		t.Fatalf("node 0 read %q through a held link", out)
	}
	if out, err := get(1); err != nil || out != "hi "+lab.Node(1).IP {
		t.Fatalf("node 1 with node 0 held: %q %v", out, err)
	}
}
