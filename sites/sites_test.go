package sites

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/httpd"
)

func timeNowPlus() time.Time { return time.Now().Add(time.Minute) }

func newTestRegistry(t *testing.T) (*Registry, string) {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "sites")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	g := config.New()
	r, err := New(Config{
		Global: g, Dir: dir, StateDir: filepath.Join(base, "state"), DBDir: filepath.Join(base, "db"),
		Secret: []byte("0123456789abcdef0123"), PHPDefaults: map[string]string{"max_input_vars": "1000", "default_charset": "UTF-8"},
		PHP: func(*Site) (httpd.PHP, error) { return nil, nil }, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

func site(t *testing.T, dir, name, toml string) string {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if toml != "" {
		if err := os.WriteFile(filepath.Join(d, SiteFile), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestReadSiteFile(t *testing.T) {
	dir := t.TempDir()
	if data, err := ReadSiteFile(dir); data != nil || err != nil {
		t.Fatalf("no file: %q %v", data, err)
	}
	p := filepath.Join(dir, SiteFile)
	os.WriteFile(p, []byte("[php]\n"), 0o644)
	if data, err := ReadSiteFile(dir); string(data) != "[php]\n" || err != nil {
		t.Fatalf("operator's file: %q %v", data, err)
	}
	os.Chmod(p, 0o664)
	if _, err := ReadSiteFile(dir); !errors.Is(err, ErrUntrustedSiteFile) {
		t.Errorf("group-writable: %v", err)
	}
	os.Chmod(p, 0o644)
	if err := os.Link(p, filepath.Join(dir, "other")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSiteFile(dir); !errors.Is(err, ErrUntrustedSiteFile) {
		t.Errorf("hard link: %v", err)
	}
	os.Remove(filepath.Join(dir, "other"))
	os.Rename(p, filepath.Join(dir, "real"))
	os.Symlink(filepath.Join(dir, "real"), p)
	if _, err := ReadSiteFile(dir); !errors.Is(err, ErrUntrustedSiteFile) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlink: %v", err)
	}
	os.Remove(p)
	os.WriteFile(p, []byte("x"), 0o644)
	if os.Geteuid() == 0 {
		os.Chown(p, 33, 33) // www-data, as PHP would leave it
		if _, err := ReadSiteFile(dir); !errors.Is(err, ErrUntrustedSiteFile) || !strings.Contains(err.Error(), "owned by uid 33") {
			t.Errorf("owned by the PHP user: %v", err)
		}
	}
}

func TestMkdirBeneath(t *testing.T) {
	root := t.TempDir()
	if p, err := MkdirBeneath(root, "a/b/c", 0o700, -1, -1); err != nil || p != filepath.Join(root, "a/b/c") {
		t.Fatalf("%q %v", p, err)
	}
	if st, err := os.Stat(filepath.Join(root, "a/b/c")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("made: %v %v", st, err)
	}
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(root, "a/link"))
	for _, rel := range []string{"a/link", "a/link/x", "../x", "a/./b", "a//b"} {
		if _, err := MkdirBeneath(root, rel, 0o700, -1, -1); err == nil {
			t.Errorf("%s: no error", rel)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("made something through the symlink: %v", ents)
	}
	if os.Geteuid() == 0 {
		// A tenant's symlink in place of its tmp dir must not make ephpm
		// chown what it points at.
		victim := filepath.Join(outside, "victim")
		os.Mkdir(victim, 0o755)
		os.MkdirAll(filepath.Join(root, "site"), 0o700)
		os.Symlink(victim, filepath.Join(root, "site/tmp"))
		if _, err := MkdirBeneath(root, "site/tmp", 0o700, 33, 33); !errors.Is(err, ErrOutside) {
			t.Errorf("symlinked tmp: %v", err)
		}
		if st, _ := os.Stat(victim); st.Mode().Perm() != 0o755 {
			t.Errorf("victim's mode changed: %v", st.Mode())
		}
	}
}

func TestResolveFileBeneath(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "d"), 0o700)
	os.WriteFile(filepath.Join(root, "d/x.db"), nil, 0o600)
	for _, rel := range []string{"x.db", "d/x.db", "new/y.db"} {
		if p, err := ResolveFileBeneath(root, rel); err != nil || p != filepath.Join(root, rel) {
			t.Errorf("%s: %q %v", rel, p, err)
		}
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "bob.db"), nil, 0o600)
	os.Symlink(other, filepath.Join(root, "link"))
	os.Symlink(filepath.Join(other, "bob.db"), filepath.Join(root, "d/bob.db"))
	for _, rel := range []string{"link/bob.db", "d/bob.db", "../x.db", "d/../../x.db"} {
		if _, err := ResolveFileBeneath(root, rel); err == nil {
			t.Errorf("%s: no error", rel)
		}
	}
}

func TestAliases(t *testing.T) {
	r, dir := newTestRegistry(t)
	site(t, dir, "alice.test", "[server]\naliases = [\"bob.test\", \"shared.test\", \"www.alice.test\"]\n")
	site(t, dir, "bob.test", "[server]\naliases = [\"shared.test\"]\n")
	r.scan()
	if s, err := r.Get("www.alice.test"); err != nil || s.Name != "alice.test" {
		t.Errorf("own alias: %v %v", s, err)
	}
	if s, err := r.Get("bob.test"); err != nil || s.Name != "bob.test" {
		t.Errorf("another site's name: %v %v", s, err)
	}
	if _, err := r.Get("shared.test"); !errors.Is(err, ErrNoSite) {
		t.Errorf("alias claimed twice: %v", err)
	}
	if len(r.refused) != 2 {
		t.Errorf("refused: %v", r.refused)
	}
	// A tenant-written site.toml (not trusted) gives no aliases.
	p := filepath.Join(dir, "alice.test", SiteFile)
	os.Chmod(p, 0o666)
	os.Chtimes(p, timeNowPlus(), timeNowPlus())
	r.scan()
	if _, err := r.Get("www.alice.test"); !errors.Is(err, ErrNoSite) {
		t.Errorf("alias from an untrusted site.toml: %v", err)
	}
}

func TestAdminValueComplete(t *testing.T) {
	r, dir := newTestRegistry(t)
	site(t, dir, "alice.test", "[php]\nini_overrides = { max_input_vars = \"5000\" }\n")
	site(t, dir, "bob.test", "")
	a, err := r.Get("alice.test")
	if err != nil || a.Err != nil {
		t.Fatal(err, a.Err)
	}
	b, _ := r.Get("bob.test")
	av, bv := a.HTTP.Params[0].Value, b.HTTP.Params[0].Value
	if !strings.Contains(av, "max_input_vars=5000\n") || !strings.Contains(bv, "max_input_vars=1000\n") {
		t.Errorf("alice %q\nbob %q", av, bv)
	}
	// Both carry every key either sets, so a worker keeps neither's.
	keys := func(v string) (ks []string) {
		for _, l := range strings.Split(strings.TrimSpace(v), "\n") {
			k, _, _ := strings.Cut(l, "=")
			ks = append(ks, k)
		}
		return ks
	}
	if strings.Join(keys(av), ",") != strings.Join(keys(bv), ",") {
		t.Errorf("different key sets:\n%v\n%v", keys(av), keys(bv))
	}
	if !strings.Contains(bv, "open_basedir="+b.Dir+"/:"+b.StateDir+"/\n") {
		t.Errorf("bob's open_basedir: %q", bv)
	}
	if st, err := os.Stat(filepath.Dir(a.StateDir)); err != nil || st.Mode().Perm() != 0o711 {
		t.Errorf("state root must be traverse-only: %v %v", st, err)
	}
}

func TestSiteUnavailableWhenRefused(t *testing.T) {
	r, dir := newTestRegistry(t)
	d := site(t, dir, "alice.test", "[php]\nmemory_limit = \"64M\"\n")
	os.Chmod(filepath.Join(d, SiteFile), 0o646)
	req, _ := http.NewRequest("GET", "http://alice.test/", nil)
	_, err := r.Site(req)
	if err == nil || !strings.Contains(err.Error(), "site configuration is broken") {
		t.Fatalf("untrusted site.toml served: %v", err)
	}
}
