// Command ephpm is the PHP application server: the composition root
// that wires config, the HTTP front, php-fpm and the embedded services.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ephpm/ephpm"
	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/internal/gotune"
)

const usage = `ephpm — PHP application server for edge hosting

Usage:
  ephpm serve [--config FILE] [--listen ADDR] [--root DIR]
                                 serve PHP sites (no config needed: serves
                                 the current directory on 0.0.0.0:8080)
  ephpm config check [--config FILE]
                                 validate the configuration and exit
  ephpm sites list [--config FILE]
                                 list the sites of sites_dir (name, root,
                                 database, role, status)
  ephpm sites check [--config FILE]
                                 validate every site.toml
  ephpm sites create NAME [--primary NODE] [--config FILE]
                                 cluster: create a site on every node (its
                                 primary: NODE, default this node)
  ephpm sites remove NAME --yes [--config FILE]
                                 cluster: take a site off every node
  ephpm sites move NAME --to NODE [--config FILE]
                                 cluster: move a site's primary while it
                                 takes writes (no acknowledged write lost)
  ephpm cluster status [--json] [--config FILE]
                                 members, the raft directory, every site's
                                 primary, epoch and each node's position
  ephpm cluster remove-node NAME --yes [--config FILE]
                                 take a node gone for good out of the
                                 cluster (its raft vote, its directory entry)
  ephpm db shell [--site NAME] [--config FILE]
                                 SQL prompt (mariadb client) on a site's
                                 database, through the running node
  ephpm db status [--config FILE]
                                 replicated sites of the running node: role,
                                 primary, position, lag, forwarded writes
  ephpm db token --site NAME [--config FILE]
                                 the site's libSQL token (Hrana and embedded
                                 replicas on the replication listener)
  ephpm version                  print the version
  ephpm help                     this text

Every config key can be set with EPHPM_<SECTION>__<KEY>, e.g.
EPHPM_SERVER__LISTEN=127.0.0.1:9000 or EPHPM_PHP__WORKERS=8.
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		gotune.KeepSysmonAwake()
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "ephpm %s\n", ephpm.Version)
		return 0
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "sites":
		if len(args) >= 2 {
			switch args[1] {
			case "create":
				return cmdSitesCreate(args[2:], stdout, stderr)
			case "remove":
				return cmdSitesRemove(args[2:], stdout, stderr)
			case "move":
				return cmdSitesMove(args[2:], stdout, stderr)
			}
		}
		return cmdSites(args[1:], stdout, stderr)
	case "cluster":
		switch {
		case len(args) >= 2 && args[1] == "status":
			return cmdClusterStatus(args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "remove-node":
			return cmdClusterRemoveNode(args[2:], stdout, stderr)
		}
		fmt.Fprintf(stderr, "usage: ephpm cluster status [--json] | remove-node NAME --yes [--config FILE]\n")
		return 2
	case "db":
		if len(args) >= 2 && args[1] == "status" {
			return cmdDBStatus(args[2:], stdout, stderr)
		}
		if len(args) >= 2 && args[1] == "token" {
			return cmdDBToken(args[2:], stdout, stderr)
		}
		if len(args) < 2 || args[1] != "shell" {
			fmt.Fprintf(stderr, "usage: ephpm db shell [--site NAME] [--config FILE] | ephpm db status [--config FILE]\n")
			return 2
		}
		return cmdDBShell(args[2:], stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprintf(stderr, "usage: ephpm config check [--config FILE]\n")
			return 2
		}
		return cmdConfigCheck(args[2:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "ephpm: unknown command %q\n\n%s", args[0], usage)
	return 2
}

type serveFlags struct {
	config, listen, root string
}

func parseServeFlags(name string, args []string, stderr io.Writer) (*serveFlags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "config file (ephpm.toml)")
	fs.StringVar(&f.listen, "listen", "", "HTTP listen address (overrides [server] listen)")
	fs.StringVar(&f.root, "root", "", "document root (overrides [server] document_root)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.config == "" {
		if _, err := os.Stat("ephpm.toml"); err == nil {
			f.config = "ephpm.toml"
		}
	}
	return &f, nil
}

// flagsAndConfig parses a command's flags and loads the config; a
// non-zero code is the exit status when something failed.
func flagsAndConfig(name string, args []string, stderr io.Writer) (*serveFlags, *config.Config, int) {
	f, err := parseServeFlags(name, args, stderr)
	if err != nil {
		return nil, nil, 2
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return f, nil, 1
	}
	return f, cfg, 0
}

// siteFlag takes "--site NAME" out of args.
func siteFlag(args []string) (site string, rest []string) {
	for i := 0; i < len(args); i++ {
		if args[i] == "--site" && i+1 < len(args) {
			site = args[i+1]
			i++
			continue
		}
		rest = append(rest, args[i])
	}
	return site, rest
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) int {
	_, cfg, code := flagsAndConfig("config check", args, stderr)
	if code != 0 {
		return code
	}
	if _, err := findFPM(cfg); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	name := cfg.File
	if name == "" {
		name = "(defaults)"
	}
	fmt.Fprintf(stdout, "%s: ok\n", name)
	return 0
}

func cmdServe(args []string, stdout, stderr io.Writer) int {
	f, err := parseServeFlags("serve", args, stderr)
	if err != nil {
		return 2
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "ephpm: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "ephpm: %v\n", err)
		return 1
	}
	return 0
}
