package config

import (
	"net"
	"net/url"
	"strings"
)

// DefaultReplicationListen is where other nodes reach this one's
// replication and forwarding endpoint when [replication] is enabled
// without a listen address.
const DefaultReplicationListen = "0.0.0.0:5001"

// DefaultWritePaths are the request paths a replica always sends to the
// site's primary, whatever their method: WordPress's admin, login,
// XML-RPC and cron (WordPress is what ephpm serves first; another
// application sets write_paths, [] for none).
var DefaultWritePaths = []string{"/wp-admin/", "/wp-login.php", "/xmlrpc.php", "/wp-cron.php"}

// NodeReplication is [replication]: this node's replication and
// forwarding endpoint. It is on when listen or auth_token is set.
type NodeReplication struct {
	// Listen is the replication/forwarding HTTP listener (h2c, or h2 with
	// TLS); every request must carry auth_token.
	Listen    string `toml:"listen"`
	AuthToken string `toml:"auth_token"`
	// TLSCert/TLSKey serve the listener over TLS; TLSCA verifies primaries
	// this node connects to (system roots when empty).
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	TLSCA   string `toml:"tls_ca"`
	// Node names this node in logs and forwarded requests (host name by
	// default).
	Node string `toml:"node"`
	// WritePaths always go to a site's primary, whatever the method
	// (DefaultWritePaths unless set).
	WritePaths []string `toml:"write_paths"`
	// WaitApplied bounds how long a replica holds a read for a client's
	// own write to arrive (read-your-writes) before asking the primary.
	WaitApplied Duration `toml:"wait_applied"`
	// CompactFrames is the log length that triggers compaction.
	CompactFrames int `toml:"compact_frames"`
	// Peers are the replication URLs of the other nodes. A site.toml may
	// name only one of them as its primary: the node sends its auth_token
	// to a site's primary, so that address must never come from a file a
	// tenant could write.
	Peers []string `toml:"peers"`
	// Advertise is the URL other nodes of a cluster reach this listener
	// at (default: http(s)://<cluster advertise host>:<listen port>).
	Advertise string `toml:"advertise"`
}

// IsPeer reports whether u is one of the configured peers (a trailing
// slash aside).
func (r NodeReplication) IsPeer(u string) bool {
	u = strings.TrimSuffix(u, "/")
	for _, p := range r.Peers {
		if strings.TrimSuffix(p, "/") == u {
			return true
		}
	}
	return false
}

// Enabled reports whether this node replicates.
func (r NodeReplication) Enabled() bool { return r.Listen != "" || r.AuthToken != "" }

// ReplicationEnabled reports whether this node replicates ([replication], or a
// cluster node, which always does).
func (c *Config) ReplicationEnabled() bool { return c.Replication.Enabled() || c.Cluster.Enabled }

// validateReplication checks [replication].
func (c *Config) validateReplication(bad func(key, format string, args ...any)) {
	r := &c.Replication
	if !r.Enabled() {
		return
	}
	if r.Listen == "" {
		r.Listen = DefaultReplicationListen
	}
	if _, _, err := net.SplitHostPort(r.Listen); err != nil {
		bad("replication.listen", "invalid address %q: want host:port", r.Listen)
	}
	if len(r.AuthToken) < 16 && !(c.Cluster.Enabled && r.AuthToken == "") {
		bad("replication.auth_token", "required, at least 16 characters (replication and forwarding are authenticated)")
	}
	if (r.TLSCert == "") != (r.TLSKey == "") {
		bad("replication.tls_cert", "tls_cert and tls_key go together")
	}
	for _, p := range r.WritePaths {
		if !strings.HasPrefix(p, "/") {
			bad("replication.write_paths", "%q must start with /", p)
		}
	}
	for _, p := range r.Peers {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("replication.peers", "want http(s)://host:port, got %q", p)
		}
	}
	if r.CompactFrames < 0 {
		bad("replication.compact_frames", "must not be negative")
	}
	if r.WaitApplied < 0 {
		bad("replication.wait_applied", "must not be negative")
	}
}
