package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/httpd"
	"github.com/ephpm/ephpm/sites"
)

// offlineRegistry reads sites_dir without serving: for `ephpm sites`
// and `ephpm db shell`.
func offlineRegistry(f *serveFlags) (*config.Config, *sites.Registry, error) {
	cfg, err := loadConfig(f)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Server.SitesDir == "" {
		return cfg, nil, fmt.Errorf("no [server] sites_dir configured")
	}
	n := &node{cfg: cfg, log: discardLogger()}
	r, err := n.newRegistryWith(func(*sites.Site) (httpd.PHP, error) { return nil, nil })
	return cfg, r, err
}

func cmdSites(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "check") {
		fmt.Fprintf(stderr, "usage: ephpm sites list|check [--config FILE]\n")
		return 2
	}
	f, err := parseServeFlags("sites "+args[0], args[1:], stderr)
	if err != nil {
		return 2
	}
	_, r, err := offlineRegistry(f)
	if err != nil {
		fmt.Fprintf(stderr, "ephpm: %v\n", err)
		return 1
	}
	list, err := r.List()
	if err != nil {
		fmt.Fprintf(stderr, "ephpm: %v\n", err)
		return 1
	}
	bad := 0
	if args[0] == "check" {
		for _, s := range list {
			if s.Err != nil {
				bad++
				fmt.Fprintf(stderr, "%v\n", s.Err)
			}
		}
		fmt.Fprintf(stdout, "%d sites, %d with errors\n", len(list), bad)
		if bad > 0 {
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROOT\tDATABASE\tROLE\tSTATUS")
	for _, s := range list {
		status, role, db := "ok", "local", s.DBPath
		if s.Err != nil {
			status = "error: " + firstLine(s.Err.Error())
		} else if s.Conf.Replication.Role != "" {
			role = string(s.Conf.Replication.Role)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Dir, db, role, status)
	}
	tw.Flush()
	return 0
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}

// cmdDBShell opens the mariadb client on a site's database, through the
// running node's MySQL front.
func cmdDBShell(args []string, stdout, stderr io.Writer) int {
	site, rest := siteFlag(args)
	f, err := parseServeFlags("db shell", rest, stderr)
	if err != nil {
		return 2
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "ephpm: %v\n", err)
		return 1
	}
	host, port, err := splitAddr(cfg.DB.SQLite.Proxy.MySQLListen)
	if err != nil {
		fmt.Fprintf(stderr, "ephpm: %v\n", err)
		return 1
	}
	user, pass, db := cfg.DB.SQLite.Proxy.User, cfg.DB.SQLite.Proxy.Password, cfg.DB.SQLite.Proxy.Database
	if site != "" {
		_, r, err := offlineRegistry(f)
		if err != nil {
			fmt.Fprintf(stderr, "ephpm: %v\n", err)
			return 1
		}
		name, err := config.NormalizeHost(site)
		if err != nil {
			fmt.Fprintf(stderr, "ephpm: %v\n", err)
			return 1
		}
		s, err := r.Get(name)
		if err != nil || s.Err != nil {
			fmt.Fprintf(stderr, "ephpm: site %s: %v\n", name, firstErr(err, s))
			return 1
		}
		user, pass, db = s.DBUser, s.DBPassword, s.DBName
	} else if pass == "" {
		dd, err := dataDir(cfg)
		if err == nil {
			pass, err = secret(filepath.Join(dd, "mysql-password"))
		}
		if err != nil {
			fmt.Fprintf(stderr, "ephpm: %v\n", err)
			return 1
		}
	}
	client, err := exec.LookPath("mariadb")
	if err != nil {
		if client, err = exec.LookPath("mysql"); err != nil {
			fmt.Fprintf(stderr, "ephpm: the mariadb (or mysql) client is needed: apt-get install mariadb-client\n")
			return 1
		}
	}
	cmd := exec.Command(client, "--protocol=TCP", "-h", host, "-P", port, "-u", user, db)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+pass)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(stderr, "ephpm: %v\n", err)
		return 1
	}
	return 0
}

func firstErr(err error, s *sites.Site) error {
	if err != nil {
		return err
	}
	return s.Err
}
