package ephpm

import (
	"context"
	"net"
)

// Client is who an HTTP request comes from, as the node that accepted it
// from the network believes: the address after [server] trusted_proxies
// (the original client, not the proxy), the scheme it used, and the port
// it reached. PHP sees it as REMOTE_ADDR, REMOTE_PORT, HTTPS,
// REQUEST_SCHEME and SERVER_PORT, and the access log records it.
//
// The HTTP front works it out for a request it accepted itself; a
// request a replica passes whole to the site's primary carries the
// replica's Client, which the primary believes only on a request
// authenticated as coming from a cluster peer.
type Client struct {
	IP         string // the client's IP address
	Port       string // its source port; "" when unknown (behind a proxy)
	HTTPS      bool   // the client used TLS (to us or to a trusted proxy)
	ServerPort string // the port of the listener that accepted the request
	Via        string // the peer node that passed the request on; "" when it came straight from the client
}

// Addr is the client's address for logs: "ip:port", or the IP alone
// when the port is unknown.
func (c Client) Addr() string {
	if c.Port == "" {
		return c.IP
	}
	return net.JoinHostPort(c.IP, c.Port)
}

type clientKey struct{}

// WithClient returns ctx carrying c. Only code that has established who
// the client is may call it: the HTTP front, and the replication
// listener for an authenticated peer's forwarded request.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, &c)
}

// ClientOf returns the Client a context carries, if any.
func ClientOf(ctx context.Context) (Client, bool) {
	if c, ok := ctx.Value(clientKey{}).(*Client); ok {
		return *c, true
	}
	return Client{}, false
}
