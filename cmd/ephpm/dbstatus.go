package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/replication"
)

// cmdDBStatus prints every replicated site of the running node: role,
// primary, position and lag, read from its replication listener.
func cmdDBStatus(args []string, stdout, stderr io.Writer) int {
	_, cfg, code := flagsAndConfig("db status", args, stderr)
	if code != 0 {
		return code
	}
	if !cfg.ReplicationEnabled() {
		fmt.Fprintln(stderr, "ephpm: replication is not configured ([replication] listen / auth_token)")
		return 1
	}
	req, _ := http.NewRequest("GET", localRepl(cfg)+"/_ephpm/repl/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+cfg.ReplicationToken())
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "ephpm: is the node running? %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ephpm: replication status: %s\n", resp.Status)
		return 1
	}
	var list []replication.Status
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		fmt.Fprintf(stderr, "ephpm: replication status: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tROLE\tPRIMARY\tPOSITION\tLAG (FRAMES)\tLAG (MS)\tFORWARDED (STMT/REQ)\tSTATE")
	for _, s := range list {
		primary := s.Primary
		if s.Role == ephpm.RolePrimary {
			primary = "(this node)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%d/%d\t%s\n", s.Site, s.Role, primary, s.Position,
			s.LagFrames, s.LagMillis, s.ForwardedStatements, s.ForwardedRequests, s.State)
	}
	tw.Flush()
	return 0
}

// cmdDBToken prints the libSQL bearer token of a site: what
// @libsql/client (authToken) or an embedded replica (syncUrl + authToken)
// presents at the replication listener.
func cmdDBToken(args []string, stdout, stderr io.Writer) int {
	site, rest := siteFlag(args)
	if site == "" {
		fmt.Fprintln(stderr, "usage: ephpm db token --site NAME [--config FILE]")
		return 2
	}
	_, cfg, code := flagsAndConfig("db token", rest, stderr)
	if code != 0 {
		return code
	}
	if !cfg.ReplicationEnabled() {
		fmt.Fprintln(stderr, "ephpm: [replication] auth_token is not set")
		return 1
	}
	name, err := config.NormalizeHost(site)
	if err != nil {
		fmt.Fprintf(stderr, "ephpm: --site: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, replication.SiteToken(cfg.ReplicationToken(), name))
	return 0
}
