package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/ephpm/ephpm/cluster"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/placement"
)

// The cluster commands talk to the running node through its
// replication listener, with the node token.

// localRepl is the running node's replication listener, as a URL.
func localRepl(cfg *config.Config) string {
	host, port, _ := net.SplitHostPort(cfg.Replication.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.Replication.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// callNode makes one request to the running node and decodes its JSON
// answer into out; an error answer becomes the error.
func callNode(cfg *config.Config, method, path string, body, out any, timeout time.Duration) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, localRepl(cfg)+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.ReplicationToken())
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return fmt.Errorf("is the node running? %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// clusterConfig loads the configuration of a cluster command.
func clusterConfig(name string, args []string, stderr io.Writer) (*config.Config, int) {
	_, cfg, code := flagsAndConfig(name, args, stderr)
	if code != 0 {
		return nil, code
	}
	if !cfg.Cluster.Enabled {
		fmt.Fprintln(stderr, "ephpm: this node is not in a cluster ([cluster] enabled = true)")
		return nil, 1
	}
	return cfg, 0
}

// takeFlag takes "--name VALUE" (or a bare "--name" when value is
// false) out of args.
func takeFlag(args []string, name string, value bool) (val string, found bool, rest []string) {
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == name && value && i+1 < len(args):
			val, found = args[i+1], true
			i++
		case args[i] == name && !value:
			found = true
		case value && strings.HasPrefix(args[i], name+"="):
			val, found = strings.TrimPrefix(args[i], name+"="), true
		default:
			rest = append(rest, args[i])
		}
	}
	return val, found, rest
}

// cmdClusterStatus prints the members and every site of the cluster.
func cmdClusterStatus(args []string, stdout, stderr io.Writer) int {
	_, asJSON, args := takeFlag(args, "--json", false)
	cfg, code := clusterConfig("cluster status", args, stderr)
	if code != 0 {
		return code
	}
	var st placement.Status
	if err := callNode(cfg, "GET", placement.PathStatus, nil, &st, 15*time.Second); err != nil {
		fmt.Fprintf(stderr, "ephpm: cluster status: %v\n", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return 0
	}
	ready := "ready"
	if !st.Ready {
		ready = "not ready: " + st.NotReady
	}
	fmt.Fprintf(stdout, "node %s (%s), leader %s, term %d, commit index %d; %s\n\n", st.Node, st.RaftState, st.Leader, st.Term, st.CommitIndex, ready)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tREGION\tSTATE\tRAFT\tLEASE\tGOSSIP\tREPLICATION\tHTTP\tVERSION")
	for _, m := range st.Members {
		state := string(m.State)
		if m.Error != "" {
			state += " (status: " + m.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Region, state, dash(m.RaftRole), leaseOf(st.Leases, m.Name), m.Gossip, m.Repl, m.HTTP, m.Version)
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tPRIMARY\tEPOCH\tNODE\tROLE\tPOSITION\tLAG (FRAMES)\tLAG (MS)\tSTATE")
	for _, s := range st.Sites {
		nodes := make([]string, 0, len(s.Nodes))
		for n := range s.Nodes {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		if len(nodes) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t-\t-\t-\t-\t-\t%s\n", s.Name, s.Primary, s.Epoch, s.State)
		}
		for i, n := range nodes {
			ns := s.Nodes[n]
			name, primary, epoch := s.Name, s.Primary, fmt.Sprint(s.Epoch)
			if i > 0 {
				name, primary, epoch = "", "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.0f\t%s\n", name, primary, epoch, n, ns.Role, ns.Position, ns.LagFrames, ns.LagMillis, ns.State)
		}
	}
	tw.Flush()
	for _, s := range st.Sites {
		if s.Failovers > 0 {
			f := s.LastFailover
			fmt.Fprintf(stdout, "\n%s: %d failover(s); the last from %s to %s (epoch %d) at %s",
				s.Name, s.Failovers, f.From, f.To, f.Epoch, f.Time.Format(time.RFC3339))
		}
		nodes := slices.Sorted(maps.Keys(s.Nodes))
		for _, n := range nodes {
			for _, q := range s.Nodes[n].Quarantined {
				fmt.Fprintf(stdout, "\n%s: diverged writes quarantined on %s: %s", s.Name, n, q)
			}
		}
	}
	fmt.Fprintln(stdout)
	return 0
}

// leaseOf shows a node's lease: lapsed/held as the leader judges it,
// else when it was last renewed.
func leaseOf(leases []cluster.NodeLease, node string) string {
	for _, l := range leases {
		if l.Node != node {
			continue
		}
		switch {
		case l.Index == 0:
			return "none"
		case l.Lapsed != nil && *l.Lapsed:
			return "lapsed"
		case l.Lapsed != nil:
			return "held"
		default:
			return "renewed " + l.Renewed.Format("15:04:05")
		}
	}
	return "-"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cmdSitesCreate registers a site in the cluster; every node creates it.
func cmdSitesCreate(args []string, stdout, stderr io.Writer) int {
	primary, _, args := takeFlag(args, "--primary", true)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: ephpm sites create NAME [--primary NODE] [--config FILE]")
		return 2
	}
	name := args[0]
	cfg, code := clusterConfig("sites create", args[1:], stderr)
	if code != 0 {
		return code
	}
	var out struct {
		Name    string
		Primary string
		Epoch   uint64
	}
	if err := callNode(cfg, "POST", placement.PathSites, placement.CreateRequest{Name: name, Primary: primary}, &out, 30*time.Second); err != nil {
		fmt.Fprintf(stderr, "ephpm: sites create %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "site %s created, primary %s (every node creates it and bootstraps its database)\n", out.Name, out.Primary)
	return 0
}

// cmdSitesRemove removes a site from every node, once confirmed.
func cmdSitesRemove(args []string, stdout, stderr io.Writer) int {
	return confirmedDelete("sites remove", placement.PathSites, args, stdout, stderr,
		"takes %s off EVERY node of the cluster (its directory and database move to .ephpm-removed/ on each)",
		"site %s removed from the cluster")
}

// cmdClusterRemoveNode takes a node that is gone for good out of the
// cluster (raft's voters, the nodes table), once confirmed.
func cmdClusterRemoveNode(args []string, stdout, stderr io.Writer) int {
	return confirmedDelete("cluster remove-node", placement.PathNodes, args, stdout, stderr,
		"takes node %s out of the cluster for good (it must be stopped and the primary of no site)",
		"node %s removed from the cluster")
}

// confirmedDelete runs `ephpm <cmd> NAME --yes`: without --yes it says
// what would happen (warning, with the name) and does nothing.
func confirmedDelete(cmd, path string, args []string, stdout, stderr io.Writer, warning, done string) int {
	_, yes, args := takeFlag(args, "--yes", false)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "usage: ephpm %s NAME --yes [--config FILE]\n", cmd)
		return 2
	}
	name := args[0]
	cfg, code := clusterConfig(cmd, args[1:], stderr)
	if code != 0 {
		return code
	}
	if !yes {
		fmt.Fprintf(stderr, "ephpm: this "+warning+"; run again with --yes\n", name)
		return 1
	}
	if err := callNode(cfg, "DELETE", path+"/"+name, nil, nil, 30*time.Second); err != nil {
		fmt.Fprintf(stderr, "ephpm: %s %s: %v\n", cmd, name, err)
		return 1
	}
	fmt.Fprintf(stdout, done+"\n", name)
	return 0
}

// cmdSitesMove moves a site's primary to another node.
func cmdSitesMove(args []string, stdout, stderr io.Writer) int {
	to, _, args := takeFlag(args, "--to", true)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || to == "" {
		fmt.Fprintln(stderr, "usage: ephpm sites move NAME --to NODE [--config FILE]")
		return 2
	}
	name := args[0]
	cfg, code := clusterConfig("sites move", args[1:], stderr)
	if code != 0 {
		return code
	}
	var res placement.MoveResult
	if err := callNode(cfg, "POST", placement.PathSites+"/"+name+"/move", placement.MoveRequest{To: to}, &res, placement.DefaultMoveTimeout+5*time.Second); err != nil {
		fmt.Fprintf(stderr, "ephpm: sites move %s: %v\n", name, err)
		return 1
	}
	if res.NoChange {
		fmt.Fprintf(stdout, "site %s: %s is already its primary\n", name, to)
		return 0
	}
	fmt.Fprintf(stdout, "site %s moved from %s to %s (epoch %d): writes paused %.0f ms, %.0f ms in all\n", name, res.From, res.To, res.Epoch, res.PauseMs, res.TotalMs)
	return 0
}
