package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/config"
)

// The edge document's node configuration, as a new user writes it.
const edgeNode = `[cluster]
enabled = true
bind = "0.0.0.0:7946"
join = ["frankfurt:7946", "tokyo:7946", "saopaulo:7946"]
secret = "a-long-random-cluster-secret"
node = "frankfurt"
`

func TestClusterConfig(t *testing.T) {
	c, err := config.Load(write(t, edgeNode), nil)
	if err != nil {
		t.Fatal(err)
	}
	k := c.Cluster
	if k.RaftBind != "0.0.0.0:7947" || c.Replication.Listen != config.DefaultReplicationListen || !c.ReplicationEnabled() {
		t.Errorf("defaults: raft %q, replication %q", k.RaftBind, c.Replication.Listen)
	}
	// No auth_token: one derived from the secret, the same on every node.
	if tok := c.ReplicationToken(); len(tok) < 16 || tok != config.DeriveKey(k.Secret, "replication token") {
		t.Errorf("token %q", tok)
	}
	if c.NodeName() != "frankfurt" {
		t.Errorf("node %q", c.NodeName())
	}
	// Advertise behind NAT: raft follows on the next port.
	c, err = config.Load(write(t, edgeNode+"advertise = \"203.0.113.7:17946\"\n"), nil)
	if err != nil || c.Cluster.RaftAdvertise != "203.0.113.7:17947" {
		t.Errorf("advertise: %q, %v", c.Cluster.RaftAdvertise, err)
	}
	// The environment overlay reaches every key.
	c, err = config.Load(write(t, edgeNode), []string{`EPHPM_CLUSTER__JOIN=["127.0.0.1:1"]`, "EPHPM_CLUSTER__RAFT_BIND=127.0.0.1:9", "EPHPM_REPLICATION__ADVERTISE=http://127.0.0.1:5"})
	if err != nil || c.Cluster.Join[0] != "127.0.0.1:1" || c.Cluster.RaftBind != "127.0.0.1:9" || c.Replication.Advertise != "http://127.0.0.1:5" {
		t.Errorf("env: %+v %v", c.Cluster, err)
	}

	for _, tc := range []struct{ name, body, want string }{
		{"no secret", strings.Replace(edgeNode, "secret = \"a-long-random-cluster-secret\"\n", "", 1), "cluster.secret"},
		{"short secret", strings.Replace(edgeNode, "a-long-random-cluster-secret", "short", 1), "at least 16"},
		{"no join", strings.Replace(edgeNode, `join = ["frankfurt:7946", "tokyo:7946", "saopaulo:7946"]`, "", 1), "cluster.join"},
		{"bad join", strings.Replace(edgeNode, `"tokyo:7946"`, `"tokyo"`, 1), "cluster.join"},
		{"bad node", strings.Replace(edgeNode, `node = "frankfurt"`, `node = "a b"`, 1), "cluster.node"},
		{"two names", edgeNode + "[replication]\nnode = \"tokyo\"\n", "one name"},
		{"bad advertise url", edgeNode + "[replication]\nadvertise = \"tokyo:5001\"\n", "replication.advertise"},
		{"unknown key", edgeNode + "bootstrap = true\n", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(write(t, tc.body), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSitePrimaryByNode(t *testing.T) {
	node, err := config.Load(write(t, edgeNode), nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := node.ParseSite("blog.test", filepath.Join(dir, "site.toml"), dir, []byte("[db.sqlite.replication]\nprimary = \"tokyo\"\n"))
	if err != nil || s.Replication.Primary != "tokyo" || s.Replication.Role != "" {
		t.Fatalf("cluster form: %+v, %v", s, err)
	}
	s, err = node.ParseSite("blog.test", filepath.Join(dir, "site.toml"), dir, []byte(`[db.sqlite.replication]
primary = "tokyo"
candidates = ["tokyo", "frankfurt"]
failover = "manual"
failback = false
sync = "replica"
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Replication; r.AutoFailover() || r.FailsBack() || !r.Candidate("frankfurt") || r.Candidate("saopaulo") || r.Sync != config.SyncReplica {
		t.Errorf("failover settings: %+v", r)
	}
	s, _ = node.ParseSite("blog.test", filepath.Join(dir, "site.toml"), dir, []byte("[db.sqlite.replication]\nprimary = \"tokyo\"\n"))
	if r := s.Replication; !r.AutoFailover() || !r.FailsBack() || !r.Candidate("saopaulo") || r.Sync != "" {
		t.Errorf("failover defaults: %+v", r)
	}
	for _, tc := range []struct {
		name string
		g    *config.Config
		body string
		want string
	}{
		{"bad failover", node, "[db.sqlite.replication]\nprimary = \"tokyo\"\nfailover = \"yes\"\n", "db.sqlite.replication.failover"},
		{"bad sync", node, "[db.sqlite.replication]\nprimary = \"tokyo\"\nsync = \"all\"\n", "db.sqlite.replication.sync"},
		{"bad candidate", node, "[db.sqlite.replication]\nprimary = \"tokyo\"\ncandidates = [\"a b\"]\n", "invalid node name"},
		{"candidates without cluster form", node, "[db.sqlite.replication]\ncandidates = [\"tokyo\"]\n", "is for a site whose primary is a cluster node"},
		{"without a cluster", plain, "[db.sqlite.replication]\nprimary = \"tokyo\"\n", "needs [cluster]"},
		{"mixed forms", node, "[db.sqlite.replication]\nprimary = \"tokyo\"\nrole = \"replica\"\n", "do not mix"},
		{"bad node", node, "[db.sqlite.replication]\nprimary = \"../x\"\n", "invalid node name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.g.ParseSite("blog.test", filepath.Join(dir, "site.toml"), dir, []byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
