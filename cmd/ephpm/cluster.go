package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	sockaddr "github.com/hashicorp/go-sockaddr"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/cluster"
	"github.com/ephpm/ephpm/placement"
)

// startCluster joins the cluster ([cluster]): gossip, the raft
// directory, and placement, which makes this node's sites follow it.
// Called by startSites once the registry exists and before it starts.
func (n *node) startCluster(ctx context.Context) error {
	cfg := n.cfg
	k := cfg.Cluster
	dd, err := dataDir(cfg)
	if err != nil {
		return err
	}
	repl, err := n.replAdvertise()
	if err != nil {
		return err
	}
	c, err := cluster.New(ctx, cluster.Config{
		Node: cfg.NodeName(), Region: k.Region,
		Bind: k.Bind, RaftBind: k.RaftBind, Advertise: k.Advertise, RaftAdvertise: k.RaftAdvertise,
		Join: k.Join, Secret: k.Secret, DataDir: filepath.Join(dd, "cluster"),
		HTTP: cfg.Server.Listen, Repl: repl, Version: ephpm.Version,
		Logger: n.log.WithGroup("cluster"),
		// Runs on the cluster's own goroutine; placement only takes note.
		OnChange: func() {
			if p := n.place; p != nil {
				p.Changed()
			}
		},
		// Runs on the cluster's notifier goroutine; SetLease only stores.
		OnLease: func(l cluster.LeaseState) { n.repl.SetLease(l.Until, l.Sites) },
	})
	if err != nil {
		return err
	}
	n.defer_(func() {
		if err := c.Close(); err != nil {
			n.log.Warn("leaving the cluster", "err", err)
		}
	})
	n.clu = c
	n.reg.MustRegister(cluster.NewCollector(c))
	p := placement.New(placement.Config{
		Node: cfg.NodeName(), Dir: c, Local: n.sites, Repl: n.repl,
		DBPath: n.sites.DefaultDBPath,
		Token:  cfg.ReplicationToken(), Client: n.replClient,
		Logger: n.log.WithGroup("placement"),
		Leader: c,
	})
	p.Start(ctx)
	n.defer_(func() { p.Close() })
	n.place = p
	return nil
}

// replAdvertise is the URL other nodes reach this node's replication
// listener at: [replication] advertise, else the listen port on the
// cluster's advertised (or bound) host, else this host's private IP.
func (n *node) replAdvertise() (string, error) {
	rc, k := n.cfg.Replication, n.cfg.Cluster
	if rc.Advertise != "" {
		return strings.TrimSuffix(rc.Advertise, "/"), nil
	}
	scheme := "http"
	if rc.TLSCert != "" {
		scheme = "https"
	}
	_, port, err := net.SplitHostPort(rc.Listen)
	if err != nil {
		return "", fmt.Errorf("replication.listen: %w", err)
	}
	host, _, _ := net.SplitHostPort(rc.Listen)
	for _, a := range []string{k.Advertise, k.Bind} {
		if h, _, err := net.SplitHostPort(a); err == nil && host == "" {
			if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
				host = h
			}
		}
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host, err = sockaddr.GetPrivateIP()
		if err != nil || host == "" {
			return "", errors.New("replication: cannot tell which address other nodes reach this one at: set [replication] advertise")
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// ready is the HTTP front's /_ephpm/ready: PHP runs, and on a cluster
// node every site of the directory is served here.
func (n *node) ready() error {
	if err := n.sup.ReadyErr(); err != nil {
		return err
	}
	if n.place != nil {
		return n.place.Ready()
	}
	return nil
}

// replicationHandler adds the cluster's operations to the replication
// listener.
func (n *node) withCluster(h http.Handler) http.Handler {
	if n.place == nil {
		return h
	}
	ops := n.place.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_ephpm/cluster/") {
			ops.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
