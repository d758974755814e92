package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Cluster defaults.
const (
	// DefaultClusterBind is where gossip (UDP and TCP) listens.
	DefaultClusterBind = "0.0.0.0:7946"
	// MinClusterSecret is the shortest [cluster] secret accepted.
	MinClusterSecret = 16
	// MaxVoters is how many nodes of `join` vote in the directory's raft
	// group; the others follow as non-voters.
	MaxVoters = 5
)

// Cluster is [cluster]: gossip membership and the replicated directory
// of sites and their primaries.
type Cluster struct {
	Enabled bool `toml:"enabled"`
	// Bind is the gossip address (UDP and TCP); the directory's raft
	// traffic listens on RaftBind (the next port by default).
	Bind     string `toml:"bind"`
	RaftBind string `toml:"raft_bind"`
	// Advertise and RaftAdvertise are what other nodes dial when this
	// node sits behind NAT (default: the bind addresses).
	Advertise     string `toml:"advertise"`
	RaftAdvertise string `toml:"raft_advertise"`
	// Join are seed gossip addresses (host names resolved, retried until
	// one answers; a node may list itself). The first MaxVoters of them
	// are the directory's voters.
	Join []string `toml:"join"`
	// Secret encrypts and authenticates gossip, raft and (unless
	// [replication] auth_token is set) node-to-node replication.
	Secret string `toml:"secret"`
	// Node names this node (default: [replication] node, else the host
	// name); Region is a free label shown in status.
	Node   string `toml:"node"`
	Region string `toml:"region"`
}

// NodeName is this node's name: [cluster] node, [replication] node, or
// the host name.
func (c *Config) NodeName() string {
	if c.Cluster.Node != "" {
		return c.Cluster.Node
	}
	if c.Replication.Node != "" {
		return c.Replication.Node
	}
	h, _ := os.Hostname()
	return h
}

// ReplicationToken is the token every node-to-node request carries:
// [replication] auth_token, or one derived from [cluster] secret.
func (c *Config) ReplicationToken() string {
	if c.Replication.AuthToken != "" || !c.Cluster.Enabled {
		return c.Replication.AuthToken
	}
	return DeriveKey(c.Cluster.Secret, "replication token")
}

// DeriveKey is a hex key for one purpose, derived from a secret.
func DeriveKey(secret, purpose string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("ephpm " + purpose))
	return hex.EncodeToString(m.Sum(nil))
}

// nextPort is addr's host with port+1 ("" when addr is bad).
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p >= 65535 {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

// validateCluster checks [cluster] and fills its defaults; a cluster
// node replicates, so [replication] is switched on with it.
func (c *Config) validateCluster(bad func(key, format string, args ...any)) {
	k := &c.Cluster
	if !k.Enabled {
		return
	}
	if k.Bind == "" {
		k.Bind = DefaultClusterBind
	}
	if _, _, err := net.SplitHostPort(k.Bind); err != nil {
		bad("cluster.bind", "invalid address %q: want host:port", k.Bind)
	}
	if k.RaftBind == "" {
		k.RaftBind = nextPort(k.Bind)
	}
	if _, _, err := net.SplitHostPort(k.RaftBind); err != nil {
		bad("cluster.raft_bind", "invalid address %q: want host:port", k.RaftBind)
	}
	if k.Advertise != "" {
		if _, _, err := net.SplitHostPort(k.Advertise); err != nil {
			bad("cluster.advertise", "invalid address %q: want host:port", k.Advertise)
		}
		if k.RaftAdvertise == "" {
			k.RaftAdvertise = nextPort(k.Advertise)
		}
	}
	if k.RaftAdvertise != "" {
		if _, _, err := net.SplitHostPort(k.RaftAdvertise); err != nil {
			bad("cluster.raft_advertise", "invalid address %q: want host:port", k.RaftAdvertise)
		}
	}
	if len(k.Secret) < MinClusterSecret {
		bad("cluster.secret", "required, at least %d characters (gossip, the directory and replication are encrypted and authenticated with it)", MinClusterSecret)
	}
	for _, j := range k.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad("cluster.join", "invalid address %q: want host:port", j)
		}
	}
	if len(k.Join) == 0 {
		bad("cluster.join", "required: the seed nodes (the first %d are the directory's voters; a node may list itself)", MaxVoters)
	}
	if n := c.NodeName(); n == "" || strings.ContainsAny(n, " \t\n/\\\x00") || len(n) > 64 {
		bad("cluster.node", "invalid node name %q", n)
	}
	if c.Replication.Node != "" && k.Node != "" && c.Replication.Node != k.Node {
		bad("cluster.node", "differs from [replication] node %q: a node has one name", c.Replication.Node)
	}
	r := &c.Replication
	if r.Listen == "" {
		r.Listen = DefaultReplicationListen
	}
	if r.Advertise != "" {
		u, err := url.Parse(r.Advertise)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("replication.advertise", "want http(s)://host:port, got %q", r.Advertise)
		}
	}
}
