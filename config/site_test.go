package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/config"
)

func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice-blog.com", "alice-blog.com"},
		{"Alice-Blog.COM", "alice-blog.com"},
		{"alice-blog.com:8080", "alice-blog.com"},
		{"alice-blog.com.", "alice-blog.com"},
		{"alice-blog.com.:443", "alice-blog.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"localhost", "localhost"},
		{"127.0.0.1:8080", "127.0.0.1"},
	} {
		got, err := config.NormalizeHost(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "..", "../etc", "%2e%2e", "a/b", "a\\b", "a\x00b", "-a.com", "a-.com", "a..b",
		"[::1]:80", "a.com:80x", "a_b.com", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 130) + "com", " a.com"} {
		if got, err := config.NormalizeHost(in); err == nil {
			t.Errorf("NormalizeHost(%q) = %q, want an error", in, got)
		}
	}
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"alice.com", "ALICE.com:80", "bücher.de.", "../x", "a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := config.NormalizeHost(in)
		if err != nil {
			return
		}
		if strings.ContainsAny(got, "/\\\x00:") || strings.Contains(got, "..") || got == "" || got != strings.ToLower(got) {
			t.Fatalf("NormalizeHost(%q) = %q: not a safe directory name", in, got)
		}
		if again, err := config.NormalizeHost(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}

func TestLoadSite(t *testing.T) {
	g := config.New()
	g.PHP.IniOverrides = map[string]string{"display_errors": "Off"}
	g.Replication.Peers = []string{"http://frankfurt:5001/"}
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "site.toml")
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	s, err := g.LoadSite("a.com", filepath.Join(dir, "missing.toml"))
	if err != nil || s.MemoryLimit != g.PHP.MemoryLimit || s.Fallback != g.Server.Fallback {
		t.Fatalf("no site.toml: %+v %v", s, err)
	}
	s, err = g.LoadSite("a.com", write(`
[php]
memory_limit = "256M"
ini_overrides = { "max_input_vars" = "5000" }
[server]
index_files = ["index.html"]
fallback = "off"
aliases = ["www.a.com"]
[server.static]
cache_control = "no-store"
[db.sqlite.replication]
role = "replica"
primary_grpc_url = "http://frankfurt:5001"
[kv]
memory_limit = "8MB"
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryLimit.PHPString() != "256M" || s.IniOverrides["max_input_vars"] != "5000" || s.IniOverrides["display_errors"] != "Off" ||
		s.IndexFiles[0] != "index.html" || s.Fallback != "off" || s.Aliases[0] != "www.a.com" || s.CacheControl != "no-store" ||
		s.Replication.Role != "replica" || s.Replication.PrimaryGRPCURL != "http://frankfurt:5001" || s.KVQuota != 8<<20 {
		t.Errorf("merged: %+v", s)
	}
	s, err = g.LoadSite("a.com", write("[php]\nini_overrides = { auto_prepend_file = \"waf/boot.php\" }\n"))
	if err != nil || s.IniOverrides["auto_prepend_file"] != filepath.Join(dir, "waf/boot.php") {
		t.Errorf("auto_prepend_file inside the site: %v %+v", err, s)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"unknown key", "[php]\nmemroy = 1\n", "site a.com: " + filepath.Join(dir, "site.toml") + ":2: php.memroy: unknown key"},
		{"bad role", "[db.sqlite.replication]\n\nrole = \"boss\"\n", "site.toml:3: db.sqlite.replication.role"},
		{"bad url", "[db.sqlite.replication]\nrole = \"replica\"\nprimary_grpc_url = \"frankfurt\"\n", "site.toml:3: db.sqlite.replication.primary_grpc_url"},
		{"bad alias", "[server]\naliases = [\"a/b\"]\n", "site.toml:2: server.aliases"},
		{"isolation key", "[php]\nini_overrides = { open_basedir = \"/\" }\n", "open_basedir may not be set by a site"},
		{"ffi", "[php]\nini_overrides = { \"ffi.enable\" = \"true\" }\n", "ffi.enable may not be set by a site"},
		{"url include", "[php]\nini_overrides = { allow_url_include = \"1\" }\n", "allow_url_include may not be set"},
		{"extension", "[php]\nini_overrides = { extension = \"/tmp/x.so\" }\n", "extension may not be set"},
		{"CR injects a directive", "[php]\nini_overrides = { html_errors = \"1\\ropen_basedir=/\" }\n", "control character"},
		{"prepend data url", "[php]\nini_overrides = { auto_prepend_file = \"data://text/plain;base64,PD9waHA=\" }\n", "must be a file of the site"},
		{"prepend outside", "[php]\nini_overrides = { auto_prepend_file = \"../bob/wp-config.php\" }\n", "outside the site's directory"},
		{"primary not a peer", "[db.sqlite.replication]\nrole = \"replica\"\nprimary_grpc_url = \"http://127.0.0.1:9999\"\n", "not one of this node's [replication] peers"},
		{"bad size", "[php]\nmemory_limit = \"lots\"\n", "site.toml:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.LoadSite("a.com", write(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzParseSite: whatever a site.toml says, what ParseSite accepts sets
// only directives a site may set, with values that stay one directive,
// and names only a listed peer as its primary.
func FuzzParseSite(f *testing.F) {
	g := config.New()
	g.Replication.Peers = []string{"http://frankfurt:5001"}
	f.Add("[php]\nini_overrides = { max_input_vars = \"5000\" }\n")
	f.Add("[php]\nini_overrides = { auto_prepend_file = \"../x.php\", \"ffi.enable\" = \"1\" }\n")
	f.Add("[db.sqlite.replication]\nrole = \"replica\"\nprimary_grpc_url = \"http://frankfurt:5001/\"\n")
	f.Add("[server]\naliases = [\"www.a.com\", \"a.com.\"]\n")
	f.Fuzz(func(t *testing.T, body string) {
		s, err := g.ParseSite("a.com", "/s/a.com/site.toml", "/s/a.com", []byte(body))
		if err != nil {
			return
		}
		for k, v := range s.IniOverrides {
			if !config.SiteINIAllowed(k) {
				t.Fatalf("accepted directive %q", k)
			}
			if !config.ValidINIValue(v) {
				t.Fatalf("accepted value %q for %s", v, k)
			}
			if (k == "auto_prepend_file" || k == "auto_append_file") && v != "" && v != "none" && !strings.HasPrefix(v, "/s/a.com/") {
				t.Fatalf("%s %q outside the site", k, v)
			}
		}
		if u := s.Replication.PrimaryGRPCURL; u != "" && !g.Replication.IsPeer(u) {
			t.Fatalf("primary %q is no peer", u)
		}
	})
}
