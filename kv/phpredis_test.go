package kv_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/kv"
)

// needPHPRedis returns the php binary if the phpredis extension is loaded.
func needPHPRedis(t *testing.T) string {
	t.Helper()
	php := needProgram(t, "php")
	out, err := exec.Command(php, "-r", "echo extension_loaded('redis') ? 'yes' : 'no';").Output()
	if err != nil || string(out) != "yes" {
		if os.Getenv("EPHPM_REQUIRE_ALL") != "" {
			t.Fatalf("php has no redis extension (apt-get install php8.2-redis)")
		}
		t.Skip("php has no redis extension")
	}
	return php
}

// TestPHPRedis runs one PHP script through phpredis against a real
// redis-server and against the KV store; every printed result must match.
func TestPHPRedis(t *testing.T) {
	php := needPHPRedis(t)
	cases := []struct {
		name       string
		redisExtra []string
		cfg        kv.Config
		auth       []string
	}{
		{"single keyspace", nil, kv.Config{}, nil},
		{"site credentials", []string{"--user", "alice", "on", ">pa", "~*", "&*", "+@all"},
			kv.Config{Auth: sites()}, []string{"alice", "pa"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			redisAddr := startRedis(t, tc.redisExtra...)
			srv := startKV(t, tc.cfg)
			run := func(addr string) string {
				host, port, _ := net.SplitHostPort(addr)
				args := append([]string{"testdata/phpredis.php", host, port}, tc.auth...)
				out, err := exec.Command(php, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("php against %s: %v\n%s", addr, err, out)
				}
				return string(out)
			}
			want, got := run(redisAddr), run(srv.Addr().String())
			wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
			for i := range wl {
				if i >= len(gl) || wl[i] != gl[i] {
					g := "<missing>"
					if i < len(gl) {
						g = gl[i]
					}
					t.Errorf("line %d:\n redis: %s\n ephpm: %s", i+1, wl[i], g)
				}
			}
			for _, must := range []string{`get "v"`, `hgetall {"f1":"v1","f2":"v2","f3":"3"}`, `pipeline [200,"99"]`, "done 88"} {
				if !strings.Contains(got, must) {
					t.Errorf("output lacks %q", must)
				}
			}
		})
	}
}
