package sites

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ephpm/ephpm/config"
	"github.com/ephpm/ephpm/httpd"
)

// newHookedRegistry is newTestRegistry with hooks set by with.
func newHookedRegistry(t *testing.T, with func(*Config)) (*Registry, string) {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "sites")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	g := config.New()
	g.Replication.AuthToken = "0123456789abcdef0123"
	g.Replication.Peers = []string{"http://primary.example:5001"}
	cfg := Config{
		Global: g, Dir: dir, StateDir: filepath.Join(base, "state"), DBDir: filepath.Join(base, "db"),
		Secret: []byte("0123456789abcdef0123"),
		PHP:    func(*Site) (httpd.PHP, error) { return nil, nil }, Logger: slog.New(slog.DiscardHandler),
	}
	with(&cfg)
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

// reports collects what OnReplicated is told.
type reports struct {
	mu   sync.Mutex
	got  [][]Replicated
	busy bool // a call is running: calls must never overlap
	t    *testing.T
}

func (rp *reports) add(list []Replicated) {
	rp.mu.Lock()
	if rp.busy {
		rp.t.Error("OnReplicated calls overlap")
	}
	rp.busy = true
	rp.got = append(rp.got, list)
	rp.mu.Unlock()
	time.Sleep(time.Millisecond)
	rp.mu.Lock()
	rp.busy = false
	rp.mu.Unlock()
}

func (rp *reports) last() ([]Replicated, int) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.got) == 0 {
		return nil, 0
	}
	return rp.got[len(rp.got)-1], len(rp.got)
}

func names(list []Replicated) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.Name+":"+string(s.Role))
	}
	slices.Sort(out)
	return out
}

func TestOnReplicated(t *testing.T) {
	rp := &reports{t: t}
	r, dir := newHookedRegistry(t, func(c *Config) { c.OnReplicated = rp.add })
	site(t, dir, "primary.test", "[db.sqlite.replication]\nrole = \"primary\"\n")
	site(t, dir, "replica.test", "[db.sqlite.replication]\nrole = \"replica\"\nprimary_grpc_url = \"http://primary.example:5001\"\n")
	site(t, dir, "local.test", "")
	site(t, dir, "broken.test", "[db.sqlite.replication]\nrole = \"leader\"\n")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The first report is made before Start returns.
	list, n := rp.last()
	if n != 1 {
		t.Fatalf("%d reports after Start, want 1", n)
	}
	if got, want := names(list), []string{"primary.test:primary", "replica.test:replica"}; !slices.Equal(got, want) {
		t.Errorf("reported %v, want %v", got, want)
	}
	for _, s := range list {
		own, _ := r.Get(s.Name)
		if s.DBPath != own.DBPath {
			t.Errorf("%s: DBPath %q, want the site's %q", s.Name, s.DBPath, own.DBPath)
		}
		if s.Name == "replica.test" && s.PrimaryURL != "http://primary.example:5001" {
			t.Errorf("replica's PrimaryURL %q", s.PrimaryURL)
		}
	}
	// A site.toml that gains a role is reported within the interval.
	if err := os.WriteFile(filepath.Join(dir, "local.test", SiteFile), []byte("[db.sqlite.replication]\nrole = \"primary\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4*DefaultReplicatedInterval + 5*time.Second)
	for {
		if list, _ := rp.last(); slices.Contains(names(list), "local.test:primary") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("local.test's new role not reported: %v", names(list))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waits for the reporting goroutine: nothing is reported after.
	_, before := rp.last()
	time.Sleep(DefaultReplicatedInterval + 500*time.Millisecond)
	if _, after := rp.last(); after != before {
		t.Errorf("%d reports after Close", after-before)
	}
}

func TestOnRemove(t *testing.T) {
	removed := make(chan string, 4)
	r, dir := newHookedRegistry(t, func(c *Config) { c.OnRemove = func(name string) { removed <- name } })
	site(t, dir, "gone.test", "")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.RemoveAll(filepath.Join(dir, "gone.test")); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-removed:
		if name != "gone.test" {
			t.Errorf("OnRemove(%q), want gone.test", name)
		}
	case <-time.After(4*DefaultScanInterval + 5*time.Second):
		t.Fatal("OnRemove not called for a deleted site")
	}
}

func TestSiteOf(t *testing.T) {
	r, dir := newTestRegistry(t)
	site(t, dir, "alice.test", "[server]\naliases = [\"www.alice.test\"]\n")
	site(t, dir, "broken.test", "[php]\nnot_a_key = 1\n")
	r.scan()
	for _, tc := range []struct {
		host, want string
		ok         bool
	}{
		{"alice.test", "alice.test", true},
		{"WWW.Alice.test:8080", "alice.test", true}, // normalized, alias
		{"broken.test", "broken.test", true},        // broken is still a site
		{"nobody.test", "", false},
		{"bad host", "", false},
	} {
		got, ok := r.SiteOf(tc.host)
		if got != tc.want || ok != tc.ok {
			t.Errorf("SiteOf(%q) = %q, %v; want %q, %v", tc.host, got, ok, tc.want, tc.ok)
		}
	}
}
