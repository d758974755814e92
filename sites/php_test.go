package sites

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ephpm/ephpm/fastcgi"
)

func TestSharedPHPRefusesOwnPoolSettings(t *testing.T) {
	r, dir := newTestRegistry(t)
	shared := fastcgi.NewClient(fastcgi.Config{Network: "unix", Address: "/nonexistent"})
	defer shared.Close()
	pick := SharedPHP(shared)
	for _, tc := range []struct {
		name, toml string
		refused    bool
	}{
		{"plain.test", "", false},
		{"disable.test", "[php]\ndisable_functions = [\"exec\"]\n", true},
		{"runas.test", "[php]\nrun_as = \"nobody\"\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site(t, dir, tc.name, tc.toml)
			s, err := r.Get(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			php, err := pick(s)
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), "pool of its own") {
					t.Errorf("picked %v, %v; want refused", php, err)
				}
				return
			}
			if err != nil || php != shared {
				t.Errorf("got %v, %v; want the shared pool", php, err)
			}
		})
	}
}

func TestPoolSpec(t *testing.T) {
	r, dir := newTestRegistry(t)
	g := r.cfg.Global
	g.PHP.DisableFunctions = []string{"exec", "system"}
	g.PHP.User = "www-data"
	site(t, dir, "own.test", "[php]\nmemory_limit = \"96M\"\nmax_execution_time = 12\ndisable_functions = [\"mail\"]\n"+
		"ini_overrides = { \"default_charset\" = \"latin1\" }\n")
	site(t, dir, "node.test", "")
	own, err := r.Get("own.test")
	if err != nil || own.Err != nil {
		t.Fatal(err, own.Err)
	}
	spec, err := PoolSpec(g, own)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"open_basedir":      own.Dir + "/:" + own.StateDir + "/",
		"session.save_path": filepath.Join(own.StateDir, "sessions"),
		"upload_tmp_dir":    filepath.Join(own.StateDir, "tmp"),
		"sys_temp_dir":      filepath.Join(own.StateDir, "tmp"),
		"disable_functions": "mail", // the site's list replaces the node's
		"default_charset":   "latin1",
	}
	for k, v := range want {
		if spec.INI[k] != v {
			t.Errorf("ini %s = %q, want %q", k, spec.INI[k], v)
		}
	}
	if spec.MemoryLimit != "96M" || spec.MaxExecutionTime.Seconds() != 12 || spec.User != "www-data" {
		t.Errorf("limits %q %v, user %q", spec.MemoryLimit, spec.MaxExecutionTime, spec.User)
	}
	node, _ := r.Get("node.test")
	spec, err = PoolSpec(g, node)
	if err != nil {
		t.Fatal(err)
	}
	if spec.INI["disable_functions"] != "exec,system" {
		t.Errorf("disable_functions %q, want the node's", spec.INI["disable_functions"])
	}
}

// Regression: run_as gives the site's state dirs to its user without
// following a link the site's PHP put in their place.
func TestPoolSpecRunAsRefusesSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("run_as chowns only as root")
	}
	r, dir := newTestRegistry(t)
	site(t, dir, "runas.test", "[php]\nrun_as = \"nobody\"\n")
	s, err := r.Get("runas.test")
	if err != nil || s.Err != nil {
		t.Fatal(err, s.Err)
	}
	if _, err := PoolSpec(r.cfg.Global, s); err != nil {
		t.Fatalf("run_as nobody: %v", err)
	}
	st, err := os.Stat(filepath.Join(s.StateDir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := statUID(st); uid == 0 {
		t.Error("tmp is still root's after run_as")
	}
	victim := t.TempDir()
	tmp := filepath.Join(s.StateDir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, tmp); err != nil {
		t.Fatal(err)
	}
	if _, err := PoolSpec(r.cfg.Global, s); err == nil {
		t.Error("run_as followed a symlink in place of the site's tmp")
	}
	st, _ = os.Stat(victim)
	if statUID(st) != 0 {
		t.Error("the link's target was chowned")
	}
}

func statUID(st os.FileInfo) uint32 { return st.Sys().(*syscall.Stat_t).Uid }
