package kv_test

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/kv"
)

const dropIn = "../examples/wordpress/object-cache.php"

// runStub runs one phase of testdata/wp_stub.php (the drop-in under a stub
// of WordPress) with the EPHPM_KV_* environment a site would get.
func runStub(t *testing.T, php string, env []string, phase string) map[string]any {
	t.Helper()
	cmd := exec.Command(php, "testdata/wp_stub.php", dropIn, phase)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("phase %s: %v\n%s", phase, err, out)
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("phase %s output %q: %v", phase, out, err)
	}
	if res["connected"] != true {
		t.Fatalf("phase %s: drop-in did not connect: %s", phase, out)
	}
	return res
}

// TestWordPressDropIn: the object cache persists between page views (the
// second view makes no database queries), keeps non-persistent groups out
// of the KV store, separates blogs of a multisite, and stays in the site's
// own keyspace.
func TestWordPressDropIn(t *testing.T) {
	php := needPHPRedis(t)
	sock := filepath.Join(t.TempDir(), "kv.sock")
	srv := startKV(t, kv.Config{Listen: "127.0.0.1:0", Socket: sock, Auth: sites()})
	host, port, _ := net.SplitHostPort(srv.Addr().String())
	env := strings.Join(srv.PHPEnv("alice", "pa"), " ")
	if want := "EPHPM_KV_HOST=127.0.0.1 EPHPM_KV_PORT=" + port + " EPHPM_KV_SOCKET=" + sock + " EPHPM_KV_USER=alice EPHPM_KV_PASSWORD=pa"; env != want {
		t.Fatalf("PHPEnv = %q, want %q", env, want)
	}
	cases := []struct {
		name string
		env  []string
	}{
		{"tcp", []string{"EPHPM_KV_HOST=" + host, "EPHPM_KV_PORT=" + port, "EPHPM_KV_SOCKET=", "EPHPM_KV_USER=alice", "EPHPM_KV_PASSWORD=pa"}},
		// What cmd/ephpm hands PHP: the socket wins when set.
		{"unix socket via PHPEnv", srv.PHPEnv("alice", "pa")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alice := dial(t, srv.Addr().String())
			alice.Do("AUTH", "alice", "pa")
			alice.Do("FLUSHALL")

			first := runStub(t, php, tc.env, "first")
			second := runStub(t, php, tc.env, "second")
			if first["queries"].(float64) != 8 || first["title"] != "Hello world" {
				t.Fatalf("first view: %v", first)
			}
			if second["queries"].(float64) != 0 {
				t.Fatalf("second view still queried the database: %v", second)
			}
			if second["misses"].(float64) != 0 || second["hits"].(float64) < 8 {
				t.Fatalf("second view hits/misses: %v", second)
			}
			if second["counts_in_request"].(float64) != 7 {
				t.Fatalf("non-persistent group unusable within a request: %v", second)
			}
			checks := runStub(t, php, tc.env, "checks")["checks"].(map[string]any)
			if len(checks) != 21 {
				t.Fatalf("ran %d checks, want 21: %v", len(checks), checks)
			}
			for name, ok := range checks {
				if ok != true {
					t.Errorf("check %s failed", name)
				}
			}
			keys := sortedArray(alice.Do("KEYS", "*"), 1)
			for _, want := range []string{"$1:options:siteurl", "$2:options:siteurl", "$users:admin", "$1:posts:42"} {
				if !strings.Contains(keys, want) {
					t.Errorf("KV keys %s lack %s", keys, want)
				}
			}
			if strings.Contains(keys, "counts") {
				t.Errorf("non-persistent group stored in KV: %s", keys)
			}
			bob := dial(t, srv.Addr().String())
			bob.Do("AUTH", "bob", "pb")
			if r := bob.Do("DBSIZE"); r != ":0" {
				t.Fatalf("another site sees %s keys", r)
			}
			flushed := runStub(t, php, tc.env, "flush")
			if flushed["flush"] != true || flushed["after_flush"] != false {
				t.Fatalf("wp_cache_flush: %v", flushed)
			}
			if r := alice.Do("DBSIZE"); r != ":0" {
				t.Fatalf("after wp_cache_flush DBSIZE %s", r)
			}
		})
	}
}
