package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/tlsacme"
)

// tlsFront prepares HTTPS from [server.tls]. intercept runs before every
// request on the HTTP listener (ACME challenges, redirect); serveTLS
// listens and returns the server (serve runs it until stop; front's
// Shutdown drains its requests). Both are nil when TLS is off.
func (n *node) tlsFront(ctx context.Context) (
	intercept func(http.ResponseWriter, *http.Request) bool,
	serveTLS func(front *httpd.Server) (serve func() error, stop func(context.Context) error, err error),
	err error,
) {
	t := &n.cfg.Server.TLS
	if !t.Enabled() {
		return nil, nil, nil
	}
	addr := t.ListenAddr()
	var tlsCfg *tls.Config
	var challenge func(http.ResponseWriter, *http.Request) bool
	if t.UseACME() {
		m, err := n.startACME(ctx, addr)
		if err != nil {
			return nil, nil, err
		}
		tlsCfg, challenge = m.TLSConfig(), m.HandleHTTPChallenge
	} else {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("server.tls: load cert: %w", err)
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}, Certificates: []tls.Certificate{cert}}
	}
	_, httpsPort, _ := net.SplitHostPort(addr)
	intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.TLS != nil {
			return false
		}
		// ACME first: a challenge is never redirected nor routed to a site.
		if challenge != nil && challenge(w, r) {
			return true
		}
		if !t.RedirectHTTP {
			return false
		}
		if c, ok := ephpm.ClientOf(r.Context()); ok && c.HTTPS {
			return false // HTTPS ended at a trusted proxy: no redirect loop
		}
		return httpd.RedirectHTTPS(w, r, httpsPort)
	}
	serveTLS = func(front *httpd.Server) (func() error, func(context.Context) error, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen tls: %w", err)
		}
		n.log.Info("serving https", "https", ln.Addr().String(), "acme", t.UseACME(), "on_demand", t.UseACME() && t.IsOnDemand(),
			"redirect_http", t.RedirectHTTP)
		serve := func() error { return front.ServeTLS(ln, tlsCfg) }
		// After front's Shutdown (which stops ServeTLS): only a listener
		// not yet served when shutdown began is still open.
		stop := func(context.Context) error { ln.Close(); return nil }
		return serve, stop, nil
	}
	return intercept, serveTLS, nil
}

// startACME sets up certmagic. Nothing here contacts the CA, so an
// unreachable CA never delays startup.
func (n *node) startACME(ctx context.Context, addr string) (*tlsacme.Manager, error) {
	t := &n.cfg.Server.TLS
	storage := t.Storage
	if storage == "" {
		d, err := dataDir(n.cfg)
		if err != nil {
			return nil, err
		}
		storage = filepath.Join(d, "certs")
	}
	roots, err := t.RootPool()
	if err != nil {
		return nil, fmt.Errorf("server.tls.ca_root: %w", err)
	}
	domains := make([]string, 0, len(t.Domains))
	for _, d := range t.Domains {
		h, err := config.NormalizeHost(d)
		if err != nil {
			return nil, fmt.Errorf("server.tls.domains: %w", err)
		}
		domains = append(domains, h)
	}
	var allow func(context.Context, string) error
	if n.sites != nil {
		// A site directory or an alias from a site.toml; a site whose
		// site.toml is broken is still a site.
		allow = func(_ context.Context, name string) error {
			_, err := n.sites.Get(name)
			return err
		}
	}
	m, err := tlsacme.New(tlsacme.Config{
		Directory: t.Directory(), Email: t.Email, Roots: roots, Storage: storage,
		Domains: domains, OnDemand: t.IsOnDemand(), Allow: allow,
		HTTPAddr: n.cfg.Server.Listen, TLSAddr: addr,
		Registerer: n.reg, Logger: n.log.WithGroup("tls"),
	})
	if err != nil {
		return nil, err
	}
	n.defer_(func() { m.Close() })
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	return m, nil
}
