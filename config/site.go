package config

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ephpm/ephpm"
)

// SiteFile is a site's site.toml: overrides of the global settings for
// that site only. Anything not set falls through to ephpm.toml.
type SiteFile struct {
	PHP    SitePHP    `toml:"php"`
	Server SiteServer `toml:"server"`
	DB     SiteDB     `toml:"db"`
	KV     SiteKV     `toml:"kv"`
}

// SiteKV is [kv] in site.toml.
type SiteKV struct {
	// MemoryLimit is the site's quota in the node's KV store (0: none).
	MemoryLimit Size `toml:"memory_limit"`
}

// SitePHP is [php] in site.toml.
type SitePHP struct {
	MemoryLimit      Size              `toml:"memory_limit"`
	MaxExecutionTime Duration          `toml:"max_execution_time"`
	IniOverrides     map[string]string `toml:"ini_overrides"`
	// DisableFunctions replaces the multi-tenant default list; it needs
	// a pool of the site's own (php-fpm applies it per pool).
	DisableFunctions []string `toml:"disable_functions"`
	// RunAs is the Unix user of the site's own pool (isolation = "pool", as root).
	RunAs string `toml:"run_as"`
}

// SiteServer is [server] in site.toml.
type SiteServer struct {
	IndexFiles []string `toml:"index_files"`
	Fallback   string   `toml:"fallback"`
	Aliases    []string `toml:"aliases"`
	Static     Static   `toml:"static"`
}

// SiteDB is [db] in site.toml.
type SiteDB struct {
	SQLite SiteSQLite `toml:"sqlite"`
}

// SiteSQLite is [db.sqlite] in site.toml.
type SiteSQLite struct {
	Path        string      `toml:"path"`
	Replication Replication `toml:"replication"`
}

// Replication is [db.sqlite.replication]: the site's role.
type Replication struct {
	Role           ephpm.Role `toml:"role"` // primary, replica or "" (local)
	PrimaryGRPCURL string     `toml:"primary_grpc_url"`
	// Primary names the site's primary node in a cluster: the same file
	// on every node (that node is primary, the others replicate). It is
	// the primary the site is created with; `ephpm sites move` changes it
	// in the cluster's directory, which wins from then on.
	Primary string `toml:"primary"`
	// Candidates are the nodes that may become the site's primary by
	// failover (empty: every node). Cluster form only.
	Candidates []string `toml:"candidates"`
	// Failover is "auto" (default: the directory promotes a replica when
	// the primary's lease lapsed) or "manual" (only `ephpm sites move`).
	Failover string `toml:"failover"`
	// Failback moves the site back to Primary by a planned hand-over
	// once that node is back and caught up (default true).
	Failback *bool `toml:"failback"`
	// Sync is "local" (default: acknowledged once on the primary) or
	// "replica" (acknowledged once another node has it durably).
	Sync string `toml:"sync"`
}

// Failover modes.
const (
	FailoverAuto   = "auto"
	FailoverManual = "manual"
)

// Sync modes.
const (
	SyncLocal   = "local"
	SyncReplica = "replica"
)

// AutoFailover reports whether the directory may promote a replica.
func (r Replication) AutoFailover() bool { return r.Failover != FailoverManual }

// FailsBack reports whether the site returns to Primary when it can.
func (r Replication) FailsBack() bool { return r.Failback == nil || *r.Failback }

// Candidate reports whether node may become the primary by failover.
func (r Replication) Candidate(node string) bool {
	return len(r.Candidates) == 0 || slices.Contains(r.Candidates, node)
}

// Site is one site's effective settings: globals with site.toml on top.
type Site struct {
	Name             string
	IndexFiles       []string
	Fallback         string
	Aliases          []string
	CacheControl     string
	MemoryLimit      Size
	MaxExecutionTime Duration
	IniOverrides     map[string]string
	DisableFunctions []string // nil: the node's multi-tenant default
	RunAs            string
	DBPath           string // "" = the default under [db.sqlite] dir
	Replication      Replication
	KVQuota          int64 // bytes; 0 = only the node-wide limit
}

// LoadSite merges path (a site.toml, may not exist) over the globals.
// Errors name the site, file, line and key. It trusts the file: a node
// serving tenants reads it with sites.ReadSiteFile, which refuses a file
// the tenant could have written, and hands the bytes to ParseSite.
func (c *Config) LoadSite(name, path string) (*Site, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		data = nil
	} else if err != nil {
		return nil, fmt.Errorf("site %s: %w", name, err)
	}
	return c.ParseSite(name, path, filepath.Dir(path), data)
}

// ParseSite merges data (the contents of path, nil when there is none)
// over the globals for the site whose document root is dir.
func (c *Config) ParseSite(name, path, dir string, data []byte) (*Site, error) {
	s := &Site{
		Name:             name,
		IndexFiles:       c.Server.IndexFiles,
		Fallback:         c.Server.Fallback,
		CacheControl:     c.Server.Static.CacheControl,
		MemoryLimit:      c.PHP.MemoryLimit,
		MaxExecutionTime: c.PHP.MaxExecutionTime,
		IniOverrides:     c.PHP.IniOverrides,
	}
	if data == nil {
		return s, nil
	}
	var f SiteFile
	if err := DecodeStrict(path, data, &f); err != nil {
		return nil, fmt.Errorf("site %s: %w", name, err)
	}
	lines := KeyLines(data)
	var errs []string
	bad := func(key, format string, args ...any) {
		where := path
		if l, ok := lines[key]; ok {
			where = fmt.Sprintf("%s:%d", path, l)
		}
		errs = append(errs, fmt.Sprintf("site %s: %s: %s: %s", name, where, key, fmt.Sprintf(format, args...)))
	}
	if f.PHP.MemoryLimit != 0 {
		if f.PHP.MemoryLimit < 2<<20 {
			bad("php.memory_limit", "must be at least 2M")
		}
		s.MemoryLimit = f.PHP.MemoryLimit
	}
	if f.PHP.MaxExecutionTime != 0 {
		s.MaxExecutionTime = f.PHP.MaxExecutionTime
	}
	if len(f.PHP.IniOverrides) > 0 {
		merged := map[string]string{}
		for k, v := range c.PHP.IniOverrides {
			merged[k] = v
		}
		for _, k := range slices.Sorted(maps.Keys(f.PHP.IniOverrides)) {
			v, err := checkSiteINI(k, f.PHP.IniOverrides[k], dir)
			if err != nil {
				bad("php.ini_overrides", "%v", err)
				continue
			}
			merged[k] = v
		}
		s.IniOverrides = merged
	}
	if f.PHP.DisableFunctions != nil {
		s.DisableFunctions = f.PHP.DisableFunctions
	}
	s.RunAs = f.PHP.RunAs
	if f.Server.IndexFiles != nil {
		s.IndexFiles = f.Server.IndexFiles
	}
	if _, ok := lines["server.fallback"]; ok {
		s.Fallback = f.Server.Fallback
		if fb := s.Fallback; fb != "" && fb != "off" && !strings.HasPrefix(fb, "/") {
			bad("server.fallback", "must start with / or be \"off\"")
		}
	}
	for _, a := range f.Server.Aliases {
		if _, err := NormalizeHost(a); err != nil {
			bad("server.aliases", "%v", err)
		}
	}
	s.Aliases = f.Server.Aliases
	if _, ok := lines["server.static.cache_control"]; ok {
		s.CacheControl = f.Server.Static.CacheControl
	}
	s.DBPath = f.DB.SQLite.Path
	s.KVQuota = int64(f.KV.MemoryLimit)
	r := f.DB.SQLite.Replication
	if r.Primary != "" {
		switch {
		case !c.Cluster.Enabled:
			bad("db.sqlite.replication.primary", "names a cluster node: needs [cluster] in ephpm.toml (without a cluster, use role + primary_grpc_url)")
		case r.Role != "" || r.PrimaryGRPCURL != "":
			bad("db.sqlite.replication.primary", "the cluster form (primary = NODE) and the static form (role, primary_grpc_url) do not mix")
		case strings.ContainsAny(r.Primary, " \t\n/\\\x00") || len(r.Primary) > 64:
			bad("db.sqlite.replication.primary", "invalid node name %q", r.Primary)
		}
	}
	clusterOnly := func(key string) {
		if r.Primary == "" {
			bad("db.sqlite.replication."+key, "is for a site whose primary is a cluster node (primary = NODE)")
		}
	}
	if len(r.Candidates) > 0 {
		clusterOnly("candidates")
		for _, n := range r.Candidates {
			if n == "" || strings.ContainsAny(n, " \t\n/\\\x00") || len(n) > 64 {
				bad("db.sqlite.replication.candidates", "invalid node name %q", n)
			}
		}
	}
	switch r.Failover {
	case "", FailoverAuto, FailoverManual:
		if r.Failover != "" {
			clusterOnly("failover")
		}
	default:
		bad("db.sqlite.replication.failover", "must be %q or %q, got %q", FailoverAuto, FailoverManual, r.Failover)
	}
	if r.Failback != nil {
		clusterOnly("failback")
	}
	switch r.Sync {
	case "", SyncLocal, SyncReplica:
	default:
		bad("db.sqlite.replication.sync", "must be %q or %q, got %q", SyncLocal, SyncReplica, r.Sync)
	}
	switch r.Role {
	case "", ephpm.RolePrimary:
		if r.PrimaryGRPCURL != "" {
			bad("db.sqlite.replication.primary_grpc_url", "only a replica names its primary")
		}
	case ephpm.RoleReplica:
		if r.PrimaryGRPCURL != "" {
			u, err := url.Parse(r.PrimaryGRPCURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("db.sqlite.replication.primary_grpc_url", "want http(s)://host:port, got %q", r.PrimaryGRPCURL)
			} else if !c.Replication.IsPeer(r.PrimaryGRPCURL) {
				// The node sends its cluster token to a site's primary:
				// only to an address the operator listed in ephpm.toml.
				bad("db.sqlite.replication.primary_grpc_url", "%q is not one of this node's [replication] peers", r.PrimaryGRPCURL)
			}
		}
	default:
		bad("db.sqlite.replication.role", "must be %q or %q, got %q", ephpm.RolePrimary, ephpm.RoleReplica, r.Role)
	}
	s.Replication = r
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return s, nil
}
