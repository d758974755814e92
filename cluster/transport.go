package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Labels of the keys derived from Config.Secret: distinct, so that the
// gossip key and the raft key never coincide.
const (
	labelGossip = "ephpm cluster gossip key v1"
	labelRaft   = "ephpm cluster raft key v1"
)

// MinSecret is the shortest accepted Config.Secret.
const MinSecret = 16

// Channel bytes: the first byte a dialler writes after the TLS handshake.
const (
	chanRaft    byte = 'R' // a raft RPC stream (NetworkTransport)
	chanCommand byte = 'C' // one command RPC to the leader
)

// DefaultHandshakeTimeout bounds the TLS handshake and the channel byte
// of an accepted connection (a silent peer must not hold a goroutine).
const DefaultHandshakeTimeout = 10 * time.Second

func deriveKey(secret, label string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(label))
	return m.Sum(nil)
}

// raftTLS is the TLS configuration of the raft port: both ends present
// a certificate whose ed25519 key is derived from the secret, and each
// accepts exactly that public key and nothing else (no CA: knowing the
// secret is the authentication).
func raftTLS(secret string) (*tls.Config, error) {
	key := ed25519.NewKeyFromSeed(deriveKey(secret, labelRaft))
	pub := key.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ephpm-cluster"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("raft certificate: %w", err)
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("cluster: peer sent no certificate")
		}
		c, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("cluster: peer certificate: %w", err)
		}
		k, ok := c.PublicKey.(ed25519.PublicKey)
		if !ok || !bytes.Equal(k, pub) {
			return errors.New("cluster: peer certificate is not keyed from the cluster secret")
		}
		return nil
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS13,
		// No CA and no names: VerifyPeerCertificate checks the key itself.
		InsecureSkipVerify:    true,
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: verify,
		ServerName:            "ephpm-cluster",
	}, nil
}

// mux owns the raft listener: it runs the TLS handshake of every
// accepted connection, reads the channel byte, and hands raft streams to
// the StreamLayer's Accept and command RPCs to handle. It owns the
// goroutine of each connection until it is handed over (raft streams)
// or answered (commands); close ends them and waits.
type mux struct {
	ln        net.Listener
	tls       *tls.Config
	advertise net.Addr
	handle    func(ctx context.Context, conn net.Conn) // command RPCs; may block until ctx is done
	log       logf

	raftc  chan net.Conn
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

type logf func(msg string, args ...any)

func newMux(ln net.Listener, tc *tls.Config, advertise net.Addr, log logf) *mux {
	ctx, cancel := context.WithCancel(context.Background())
	return &mux{ln: ln, tls: tc, advertise: advertise, log: log,
		raftc: make(chan net.Conn), ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
}

// start runs the accept loop; handle must be set before.
func (m *mux) start() {
	m.wg.Add(1)
	go m.acceptLoop()
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if m.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off (bounded) and try again, as
			// net/http does, rather than lose the raft port for good.
			m.log("raft listener accept", "err", err)
			select {
			case <-time.After(backoff):
			case <-m.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if !m.track(c) {
			return
		}
		m.wg.Add(1)
		go m.serve(c)
	}
}

func (m *mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		c.Close()
		return false
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *mux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

func (m *mux) serve(raw net.Conn) {
	defer m.wg.Done()
	tc := tls.Server(raw, m.tls)
	_ = raw.SetDeadline(time.Now().Add(DefaultHandshakeTimeout))
	var ch [1]byte
	if err := tc.HandshakeContext(m.ctx); err != nil {
		m.log("raft port: handshake refused", "remote", raw.RemoteAddr().String(), "err", err)
		m.untrack(raw)
		raw.Close()
		return
	}
	if _, err := tc.Read(ch[:]); err != nil {
		m.untrack(raw)
		tc.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	switch ch[0] {
	case chanRaft:
		// Raft owns the stream from here and closes it; it stays tracked
		// so that close ends raft's reader of a peer that never hangs up.
		select {
		case m.raftc <- &trackedConn{Conn: tc, m: m, raw: raw}:
		case <-m.ctx.Done():
			m.untrack(raw)
			tc.Close()
		}
	case chanCommand:
		m.handle(m.ctx, tc)
		m.untrack(raw)
		tc.Close()
	default:
		m.log("raft port: unknown channel", "remote", raw.RemoteAddr().String(), "byte", ch[0])
		m.untrack(raw)
		tc.Close()
	}
}

// trackedConn untracks itself when raft closes it.
type trackedConn struct {
	net.Conn
	m    *mux
	raw  net.Conn
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.m.untrack(c.raw) })
	return c.Conn.Close()
}

// dial connects to a raft port, runs the handshake (both ends check the
// key) and selects the channel.
func (m *mux) dial(ctx context.Context, addr string, channel byte, timeout time.Duration) (net.Conn, error) {
	return dialChannel(ctx, m.tls, addr, channel, timeout)
}

func dialChannel(ctx context.Context, tc *tls.Config, addr string, channel byte, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: tc}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial raft port %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{channel}); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial raft port %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// close stops accepting, closes every connection not yet handed over,
// and waits for the mux's goroutines. It may be called more than once.
func (m *mux) close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	m.cancel()
	err := m.ln.Close()
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// streamLayer is the raft.StreamLayer over the mux: Accept returns the
// raft channel's connections, Dial opens one.
type streamLayer struct{ m *mux }

var _ raft.StreamLayer = streamLayer{}

func (s streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raftc:
		return c, nil
	case <-s.m.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close is called by raft's NetworkTransport at shutdown.
func (s streamLayer) Close() error { return s.m.close() }

// Addr is the advertised raft address: raft uses it as this node's own.
func (s streamLayer) Addr() net.Addr { return s.m.advertise }

func (s streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.m.dial(s.m.ctx, string(address), chanRaft, timeout)
}
