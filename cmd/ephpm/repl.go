package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/libsql"
	"github.com/ephpm/ephpm/replication"
)

// newReplication creates the node's replication manager ([replication]).
func (n *node) newReplication() error {
	rc := n.cfg.Replication
	name := rc.Node
	if name == "" {
		name, _ = os.Hostname()
	}
	var client *http.Client
	if rc.TLSCA != "" {
		pem, err := os.ReadFile(rc.TLSCA)
		if err != nil {
			return fmt.Errorf("replication.tls_ca: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("replication.tls_ca: %s holds no certificate", rc.TLSCA)
		}
		client = replication.NewClient(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}})
	}
	m, err := replication.New(replication.Config{
		Node: name, Token: rc.AuthToken, Pool: n.pool, Client: client,
		CompactFrames: rc.CompactFrames, WritePaths: rc.WritePaths, WaitApplied: rc.WaitApplied.D(),
		OnApply: func(site string) {
			if n.kvs != nil {
				n.kvs.FlushKeyspace(site)
			}
		},
		OpenSession: func(ctx context.Context, site string) (replication.StatementSession, error) {
			if n.mysql == nil {
				return nil, errors.New("the MySQL front is disabled")
			}
			acct, err := n.dir.Lookup(ctx, site)
			if err != nil || acct == nil {
				return nil, fmt.Errorf("site %s: no database account (%v)", site, err)
			}
			return n.mysql.Detached(acct), nil
		},
		SiteOf: func(host string) (string, bool) {
			h, err := config.NormalizeHost(host)
			if err != nil || n.sites == nil {
				return "", false
			}
			s, err := n.sites.Get(h)
			if err != nil {
				return "", false
			}
			return s.Name, true
		},
		Logger: n.log.WithGroup("replication"),
	})
	if err != nil {
		return err
	}
	n.repl = m
	n.dir.Forward = m.Forwarder
	n.defer_(func() { m.Close() })
	n.reg.MustRegister(replication.NewCollector(m))
	return nil
}

// syncReplicatedSites tells the manager which sites replicate, now and
// whenever a site.toml changes.
func (n *node) syncReplicatedSites(ctx context.Context) {
	sync := func() {
		list, err := n.sites.List()
		if err != nil {
			n.log.Warn("replication: cannot list sites", "err", err)
			return
		}
		var out []replication.SiteConfig
		for _, s := range list {
			if s.Err != nil || s.Conf == nil || s.Conf.Replication.Role == "" {
				continue
			}
			out = append(out, replication.SiteConfig{
				Name: s.Name, DBPath: s.DBPath, Role: s.Conf.Replication.Role,
				PrimaryURL: s.Conf.Replication.PrimaryGRPCURL,
			})
		}
		n.repl.SetSites(out)
	}
	sync()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sync()
			}
		}
	}()
	n.defer_(func() { cancel(); <-done })
}

// serveReplication starts the replication listener: node-to-node streams,
// forwarded statements and requests (handed to front).
func (n *node) serveReplication(front *httpd.Server, errc chan<- error) error {
	rc := n.cfg.Replication
	ln, err := net.Listen("tcp", rc.Listen)
	if err != nil {
		return fmt.Errorf("replication listen: %w", err)
	}
	srv := &http.Server{
		Handler:           n.repl.Handler(front, n.libsqlHandler()),
		ReadHeaderTimeout: 10 * time.Second,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 10000},
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
	n.log.Info("replication listening", "addr", ln.Addr().String(), "tls", rc.TLSCert != "")
	go func() {
		var err error
		if rc.TLSCert != "" {
			err = srv.ServeTLS(ln, rc.TLSCert, rc.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	n.defer_(func() {
		// Streams never end on their own: give forwarded requests a moment.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		srv.Close()
	})
	return nil
}

var _ prometheus.Collector = (*replication.Collector)(nil)

// libsqlHandler serves libSQL's clients (Hrana, embedded replicas) on
// the replication listener; a client names its site with its token
// (`ephpm db token --site NAME`).
func (n *node) libsqlHandler() http.Handler {
	rc := n.cfg.Replication
	key := hmac.New(sha256.New, []byte(rc.AuthToken))
	key.Write([]byte("libsql batons"))
	srv := libsql.NewServer(libsql.Config{
		Key:              key.Sum(nil),
		Logger:           n.log.WithGroup("libsql"),
		StatementTimeout: n.cfg.DB.SQLite.StatementTimeout.D(),
		MaxResultSize:    int(n.cfg.DB.SQLite.MaxResultSize),
		Resolve: func(ctx context.Context, r *http.Request) (*libsql.Site, error) {
			tok := r.Header.Get("Authorization")
			if tok == "" {
				tok = r.Header.Get("X-Authorization")
			}
			tok = strings.TrimSpace(strings.TrimPrefix(tok, "Bearer "))
			name, ok := replication.ParseSiteToken(rc.AuthToken, tok)
			if !ok {
				return nil, libsql.ErrUnauthorized
			}
			s, err := n.sites.Get(name)
			if err != nil || s.Err != nil {
				return nil, fmt.Errorf("%w: %s", libsql.ErrNoSite, name)
			}
			db, release, err := n.pool.Acquire(ctx, s.DBPath)
			if err != nil {
				return nil, err
			}
			site := &libsql.Site{Name: name, DB: db, Release: release, Forward: n.repl.LibsqlForward(name, r)}
			if n.repl.Role(name) == ephpm.RolePrimary {
				l, lrelease, err := n.repl.PrimaryLog(ctx, name)
				if err != nil {
					release()
					return nil, err
				}
				site.Log = libsqlLog{l}
				site.Release = func() { lrelease(); release() }
			}
			return site, nil
		},
	})
	n.defer_(func() { srv.Close() })
	return srv
}

// libsqlLog adapts a frame log to libsql.Log (its Snapshot returns the
// concrete type).
type libsqlLog struct{ *framelog.Log }

func (l libsqlLog) Snapshot(ctx context.Context) (libsql.Snapshot, error) {
	s, err := l.Log.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}
