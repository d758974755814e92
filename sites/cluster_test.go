package sites

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/httpd"
)

func TestCreateFromDirectory(t *testing.T) {
	r, dir := newHookedRegistry(t, func(c *Config) { c.Global.Cluster.Enabled = true })
	conf := []byte("[db.sqlite.replication]\nprimary = \"frankfurt\"\n")
	if err := r.Create("blog.test", conf); err != nil {
		t.Fatal(err)
	}
	// Written by the node, so the node believes it.
	got, err := r.SiteFile("blog.test")
	if err != nil || string(got) != string(conf) {
		t.Fatalf("SiteFile = %q, %v", got, err)
	}
	s, err := r.Get("blog.test")
	if err != nil || s.Err != nil || s.Conf.Replication.Primary != "frankfurt" {
		t.Fatalf("Get = %+v, %v", s, err)
	}
	// Only site.toml: 503 with a clear message, never the fallback.
	_, err = r.Site(httptest.NewRequest("GET", "http://blog.test/", nil))
	var he *httpd.Error
	if !errors.As(err, &he) || he.Status != 503 || !errors.Is(err, ErrNoFiles) || !he.Public {
		t.Fatalf("a site without files: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blog.test", "index.php"), []byte("<?php echo 1;"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.sites["blog.test"].checked.Store(0)
	r.mu.Unlock()
	if _, err := r.Site(httptest.NewRequest("GET", "http://blog.test/", nil)); err != nil {
		t.Fatalf("once its files arrived: %v", err)
	}

	// An operator's site.toml is never replaced.
	if err := r.Create("blog.test", []byte("# other\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.SiteFile("blog.test"); string(got) != string(conf) {
		t.Errorf("site.toml replaced: %q", got)
	}
	// Nor followed through a link the tenant planted.
	if err := os.Mkdir(filepath.Join(dir, "evil.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "outside")
	if err := os.Symlink(target, filepath.Join(dir, "evil.test", "site.toml")); err != nil {
		t.Fatal(err)
	}
	_ = r.Create("evil.test", conf)
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Error("Create wrote through a symlink")
	}
	if err := r.Create("../x", conf); err == nil {
		t.Error("Create accepted ../x")
	}

	// Remove moves the site and its database aside.
	db := r.DefaultDBPath("blog.test")
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	quarantined := db + "-diverged-2-20261207T180000Z.db"
	for _, f := range []string{db, db + "-replica-tail", quarantined} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove("blog.test"); err != nil {
		t.Fatal(err)
	}
	if r.IsSite("blog.test") {
		t.Error("still a site")
	}
	for _, f := range []string{db, db + "-replica-tail", quarantined} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left in place", filepath.Base(f))
		}
		if m, _ := filepath.Glob(filepath.Join(filepath.Dir(db), removedDir, filepath.Base(f)+".blog.test.*")); len(m) != 1 {
			t.Errorf("%s not moved aside: %v", filepath.Base(f), m)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, removedDir))
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "blog.test.blog.test.") {
		t.Errorf("aside: %v", ents)
	}
}
