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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/framelog"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/libsql"
	"github.com/ephpm/ephpm/replication"
	"github.com/ephpm/ephpm/sqlite"
)

// newReplication creates the node's replication manager ([replication])
// over n.pool and makes it the pool's hooks.
func (n *node) newReplication() error {
	rc := n.cfg.Replication
	name := n.cfg.NodeName()
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
	rcfg := replication.Config{
		Node: name, Token: n.cfg.ReplicationToken(), Pool: n.pool, Client: client,
		CompactFrames: rc.CompactFrames, WritePaths: rc.WritePaths, WaitApplied: rc.WaitApplied.D(),
		OpenSession: n.openSession,
		SiteOf:      n.siteOf,
		Reconfirm:   n.reconfirm,
		Logger:      n.log.WithGroup("replication"),
		// A cluster site's primary writes only under this node's lease
		// (startCluster passes it on).
		Leases: n.cfg.Cluster.Enabled,
	}
	if n.cfg.KV.Enabled {
		rcfg.OnApply = n.flushKeyspace
	}
	m, err := replication.New(rcfg)
	if err != nil {
		return err
	}
	n.defer_(func() { m.Close() })
	if err := n.pool.SetHooks(m); err != nil {
		return err
	}
	if client == nil {
		client = replication.NewClient(nil)
	}
	n.repl, n.replClient = m, client
	n.reg.MustRegister(replication.NewCollector(m))
	n.reg.MustRegister(replication.NewRejoinCollector(m))
	return nil
}

var _ sqlite.PoolHooks = (*replication.Manager)(nil)

// The node's replication hooks: replication calls them only once the
// registry reports the replicated sites or the replication listener
// serves, both after startSites built what they reach (see startSites).

// siteOf is replication's SiteOf: the site serving a Host header.
func (n *node) siteOf(host string) (string, bool) { return n.sites.SiteOf(host) }

// openSession is replication's OpenSession: a MySQL session on a site
// this node is primary for, to run the statements replicas forward.
func (n *node) openSession(ctx context.Context, site string) (replication.StatementSession, error) {
	if !n.cfg.DB.SQLite.Proxy.Enabled {
		return nil, errors.New("the MySQL front is disabled")
	}
	acct, err := n.dir.Lookup(ctx, site)
	if err != nil || acct == nil {
		return nil, fmt.Errorf("site %s: no database account (%v)", site, err)
	}
	return n.mysql.Detached(acct), nil
}

// reconfirm is replication's Reconfirm: on a cluster node, the
// directory says whether this node is still a fenced site's primary.
func (n *node) reconfirm(ctx context.Context, site string) (bool, error) {
	if n.place == nil {
		return false, errors.New("no cluster: a fence is released by hand")
	}
	return n.place.Reconfirm(ctx, site)
}

// flushKeyspace is replication's OnApply (with the KV store): a replica's
// database changed under the site's cached objects.
func (n *node) flushKeyspace(site string) { n.kvs.FlushKeyspace(site) }

// serveReplication listens for the replication endpoint: node-to-node
// streams, forwarded statements and requests (handed to front), libSQL
// clients. serve runs it until stop.
func (n *node) serveReplication(front *httpd.Server) (serve func() error, stop func(context.Context) error, err error) {
	rc := n.cfg.Replication
	ln, err := net.Listen("tcp", rc.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("replication listen: %w", err)
	}
	srv := &http.Server{
		Handler:           n.withCluster(n.repl.Handler(front, n.libsqlHandler())),
		ReadHeaderTimeout: 10 * time.Second,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 10000},
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
	n.log.Info("replication listening", "addr", ln.Addr().String(), "tls", rc.TLSCert != "")
	serve = func() error {
		var err error
		if rc.TLSCert != "" {
			err = srv.ServeTLS(ln, rc.TLSCert, rc.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	}
	stop = func(context.Context) error {
		// Streams never end on their own: give forwarded requests a moment.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		srv.Close()
		return nil
	}
	return serve, stop, nil
}

var _ prometheus.Collector = (*replication.Collector)(nil)

// libsqlHandler serves libSQL's clients (Hrana, embedded replicas) on
// the replication listener; a client names its site with its token
// (`ephpm db token --site NAME`).
func (n *node) libsqlHandler() http.Handler {
	token := n.cfg.ReplicationToken()
	key := hmac.New(sha256.New, []byte(token))
	key.Write([]byte("libsql batons"))
	srv := libsql.NewServer(libsql.Config{
		Key:              key.Sum(nil),
		Logger:           n.log.WithGroup("libsql"),
		StatementTimeout: n.cfg.DB.SQLite.StatementTimeout.D(),
		MaxResultSize:    int(n.cfg.DB.SQLite.MaxResultSize),
		Resolve: func(ctx context.Context, r *http.Request) (*libsql.Site, error) {
			name, ok := replication.SiteOfBearer(token, r.Header)
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
			site := &libsql.Site{Name: name, DB: db, Release: release, Forward: n.repl.LibsqlForward(name, r),
				Reforward: func() func(http.ResponseWriter, *http.Request, []byte) { return n.repl.LibsqlReforward(name, r) }}
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
