package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/config"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ephpm.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "0.0.0.0:8080" || c.Server.Fallback != "/index.php?$query_string" {
		t.Fatalf("defaults: %+v", c.Server)
	}
	if c.PHP.Workers < 1 || c.PHP.MemoryLimit.PHPString() != "128M" {
		t.Fatalf("php defaults: %+v", c.PHP)
	}
	if r := c.Server.Request; r.BodyBufferSize != 64<<10 || r.BodyReadTimeout.D() != time.Minute || r.BodyMinRate != 1<<10 || r.BodyRateGrace.D() != 10*time.Second {
		t.Fatalf("request body defaults: %+v", r)
	}
}

func TestLoadValues(t *testing.T) {
	dir := t.TempDir()
	p := write(t, `
[server]
listen = "127.0.0.1:9000"
document_root = "`+dir+`"
index_files = ["index.php"]
[server.static]
cache_control = "public, max-age=60"
[server.request]
max_body_size = "10MB"
body_buffer_size = "16K"
body_read_timeout = "30s"
body_min_rate = 512
body_rate_grace = 5
[server.timeouts]
request = "5s"
shutdown = 3
[php]
workers = 3
memory_limit = "64M"
max_execution_time = 10
ini_overrides = { "display_errors" = "On" }
`)
	c, err := config.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "127.0.0.1:9000" || c.Server.Static.CacheControl != "public, max-age=60" {
		t.Errorf("server = %+v", c.Server)
	}
	if c.Server.Request.MaxBodySize != 10<<20 || c.Server.Timeouts.Request.D() != 5*time.Second || c.Server.Timeouts.Shutdown.D() != 3*time.Second {
		t.Errorf("sizes/timeouts = %+v %+v", c.Server.Request, c.Server.Timeouts)
	}
	if r := c.Server.Request; r.BodyBufferSize != 16<<10 || r.BodyReadTimeout.D() != 30*time.Second || r.BodyMinRate != 512 || r.BodyRateGrace.D() != 5*time.Second {
		t.Errorf("body settings = %+v", r)
	}
	if c.PHP.Workers != 3 || c.PHP.MemoryLimit.PHPString() != "64M" || c.PHP.MaxExecutionTime.D() != 10*time.Second || c.PHP.IniOverrides["display_errors"] != "On" {
		t.Errorf("php = %+v", c.PHP)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		env        []string
		want       []string // substrings of the error
	}{
		{"unknown key", "[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n", nil, []string{"ephpm.toml:3", "server.listen_port", "unknown key"}},
		{"unknown section", "\n[sever]\nlisten = \"x\"\n", nil, []string{"ephpm.toml:2", "sever", "unknown key"}},
		{"wrong type", "[php]\n\nworkers = \"many\"\n", nil, []string{"ephpm.toml:3", "php.workers"}},
		{"bad duration", "[server.timeouts]\nrequest = \"soon\"\n", nil, []string{"ephpm.toml:2", "invalid duration"}},
		{"bad size", "[server.request]\nmax_body_size = \"12 parsecs\"\n", nil, []string{"ephpm.toml:2", "invalid size"}},
		{"bad listen", "[server]\nlisten = \"nowhere\"\n", nil, []string{"ephpm.toml:2", "server.listen", "host:port"}},
		{"body buffer zero", "[server.request]\nbody_buffer_size = 0\n", nil, []string{"ephpm.toml:2", "server.request.body_buffer_size"}},
		{"body buffer huge", "[server.request]\nbody_buffer_size = \"1G\"\n", nil, []string{"ephpm.toml:2", "server.request.body_buffer_size", "64MB"}},
		{"body read timeout zero", "[server.request]\nbody_read_timeout = \"0s\"\n", nil, []string{"ephpm.toml:2", "server.request.body_read_timeout"}},
		{"body min rate zero", "[server.request]\nbody_min_rate = 0\n", nil, []string{"ephpm.toml:2", "server.request.body_min_rate"}},
		{"body min rate bad", "[server.request]\nbody_min_rate = \"fast\"\n", nil, []string{"ephpm.toml:2", "invalid size"}},
		{"body grace zero", "[server.request]\nbody_rate_grace = 0\n", nil, []string{"ephpm.toml:2", "server.request.body_rate_grace"}},
		{"env body grace bad", "", []string{"EPHPM_SERVER_REQUEST__BODY_RATE_GRACE=soon"}, []string{"env EPHPM_SERVER_REQUEST__BODY_RATE_GRACE", "server.request.body_rate_grace"}},
		{"workers range", "[php]\nworkers = 0\n", nil, []string{"ephpm.toml:2", "php.workers"}},
		{"kv not loopback", "[kv]\nlisten = \"0.0.0.0:6379\"\n", nil, []string{"ephpm.toml:2", "kv.listen", "loopback"}},
		{"mysql not loopback", "[db.sqlite.proxy]\nmysql_listen = \"10.0.0.1:3306\"\n", nil, []string{"ephpm.toml:2", "mysql_listen", "loopback"}},
		{"missing root", "[server]\ndocument_root = \"/nonexistent/x\"\n", nil, []string{"ephpm.toml:2", "not a directory"}},
		{"toml syntax", "[server\nlisten = 1\n", nil, []string{"ephpm.toml:1"}},
		{"env unknown key", "", []string{"EPHPM_SERVER__LISTN=1"}, []string{"env EPHPM_SERVER__LISTN", "unknown key"}},
		{"env bad value", "", []string{"EPHPM_PHP__WORKERS=lots"}, []string{"env EPHPM_PHP__WORKERS", "php.workers"}},
		{"env invalid after overlay", "", []string{"EPHPM_SERVER__LISTEN=nope"}, []string{"env EPHPM_SERVER__LISTEN", "server.listen"}},
		{"no statement time limit", "[db.sqlite]\nstatement_timeout = 0\n", nil, []string{"ephpm.toml:2", "db.sqlite.statement_timeout", "positive"}},
		{"env no statement time limit", "", []string{"EPHPM_DB_SQLITE__STATEMENT_TIMEOUT=0s"}, []string{"env EPHPM_DB_SQLITE__STATEMENT_TIMEOUT", "db.sqlite.statement_timeout"}},
		{"negative statement time limit", "[db.sqlite]\nstatement_timeout = \"-1s\"\n", nil, []string{"ephpm.toml:2", "invalid duration"}},
		{"value size too small", "[db.sqlite]\nmax_value_size = \"4K\"\n", nil, []string{"ephpm.toml:2", "db.sqlite.max_value_size"}},
		{"value size over SQLite's", "[db.sqlite]\nmax_value_size = \"2G\"\n", nil, []string{"db.sqlite.max_value_size"}},
		{"result size too small", "[db.sqlite]\nmax_result_size = 1000\n", nil, []string{"db.sqlite.max_result_size"}},
		{"memory limit under the values", "[db.sqlite]\nmax_value_size = \"64MB\"\nmemory_limit = \"128MB\"\n", nil, []string{"ephpm.toml:3", "db.sqlite.memory_limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(write(t, tc.body), tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	p := write(t, "[server]\nlisten = \"127.0.0.1:1\"\n")
	c, err := config.Load(p, []string{
		"EPHPM_SERVER__LISTEN=127.0.0.1:2",
		"EPHPM_SERVER_STATIC__CACHE_CONTROL=no-cache",
		"EPHPM_SERVER__TIMEOUTS__REQUEST=7s",
		"EPHPM_PHP__WORKERS=5",
		"EPHPM_SERVER_REQUEST__BODY_BUFFER_SIZE=8KB",
		"EPHPM_SERVER__REQUEST__BODY_MIN_RATE=2K",
		"EPHPM_SERVER_REQUEST__BODY_READ_TIMEOUT=15s",
		"EPHPM_SERVER_REQUEST__BODY_RATE_GRACE=3",
		`EPHPM_SERVER__INDEX_FILES=["a.php","b.html"]`,
		"EPHPM_DB_HOST=ignored-not-a-config-key",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "127.0.0.1:2" || c.Server.Static.CacheControl != "no-cache" || c.Server.Timeouts.Request.D() != 7*time.Second || c.PHP.Workers != 5 {
		t.Fatalf("overrides not applied: %+v %+v", c.Server, c.PHP)
	}
	if r := c.Server.Request; r.BodyBufferSize != 8<<10 || r.BodyMinRate != 2<<10 || r.BodyReadTimeout.D() != 15*time.Second || r.BodyRateGrace.D() != 3*time.Second {
		t.Fatalf("body overrides not applied: %+v", r)
	}
	if strings.Join(c.Server.IndexFiles, ",") != "a.php,b.html" {
		t.Fatalf("index files = %v", c.Server.IndexFiles)
	}
}

// TestSQLiteLimits: the statements' bounds, their defaults and overrides.
func TestSQLiteLimits(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	q := c.DB.SQLite
	if q.StatementTimeout.D() != 25*time.Second || q.MaxValueSize != 16<<20 || q.MaxResultSize != 128<<20 || q.MemoryLimit != 512<<20 {
		t.Errorf("defaults: %+v", q)
	}
	// Shorter than PHP's own limit, so that PHP sees the error.
	if q.StatementTimeout >= c.PHP.MaxExecutionTime {
		t.Errorf("statement_timeout %v is not shorter than max_execution_time %v", q.StatementTimeout, c.PHP.MaxExecutionTime)
	}
	p := write(t, "[db.sqlite]\nstatement_timeout = \"2s\"\nmax_value_size = \"64MB\"\nmax_result_size = \"32MB\"\nmemory_limit = \"1GB\"\n")
	c, err = config.Load(p, []string{"EPHPM_DB_SQLITE__STATEMENT_TIMEOUT=3"})
	if err != nil {
		t.Fatal(err)
	}
	q = c.DB.SQLite
	if q.StatementTimeout.D() != 3*time.Second || q.MaxValueSize != 64<<20 || q.MaxResultSize != 32<<20 || q.MemoryLimit != 1<<30 {
		t.Errorf("values: %+v", q)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "1K": 1024, "128MB": 128 << 20, "1gib": 1 << 30, " 2 M ": 2 << 20} {
		got, err := config.ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "1Q", "99999999999999T"} {
		if _, err := config.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
}

// TestSampleConfigs loads every sample config shipped in the repo.
func TestSampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.toml")
	files2, _ := filepath.Glob("../examples/*/*.toml")
	files = append(files, files2...)
	sites, _ := filepath.Glob("../examples/*/sites/*/site.toml")
	for _, f := range sites {
		t.Run(f, func(t *testing.T) {
			// A site.toml is read against its node's ephpm.toml (the
			// peers it may name as primary).
			g := config.New()
			if node := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(f))), "ephpm.toml"); fileExists(node) {
				data, _ := os.ReadFile(node)
				if err := config.DecodeStrict(node, data, g); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := g.LoadSite(filepath.Base(filepath.Dir(f)), f); err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(files)+len(sites) < 3 {
		t.Fatalf("found only %d sample configs", len(files)+len(sites))
	}
	for _, f := range files {
		if filepath.Base(f) == "site.toml" {
			continue
		}
		t.Run(f, func(t *testing.T) {
			c := config.New()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := config.DecodeStrict(f, data, c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("[server]\nlisten = \"127.0.0.1:1\"\n")
	f.Add("[php]\nworkers = 4\nmemory_limit = \"64M\"\nmax_execution_time = 30\n")
	f.Add("[server.timeouts]\nrequest = \"1m\"\n[[x]]\na=1")
	f.Add("a.b.c = [1, {x = 2}]")
	f.Fuzz(func(t *testing.T, body string) {
		c := config.New()
		err := config.DecodeStrict("f.toml", []byte(body), c)
		if err != nil && !strings.HasPrefix(err.Error(), "f.toml") {
			t.Fatalf("error without position: %v", err)
		}
		_ = config.KeyLines([]byte(body))
	})
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
