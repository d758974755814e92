package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/config"
)

func TestReplicationConfig(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Replication.Enabled() {
		t.Fatal("replication on without configuration")
	}
	c, err = config.Load(write(t, "[replication]\nauth_token = \"0123456789abcdef-secret\"\nwait_applied = \"500ms\"\nwrite_paths = [\"/admin/\"]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Replication
	if !r.Enabled() || r.Listen != config.DefaultReplicationListen || r.WaitApplied.D() != 500*time.Millisecond || r.WritePaths[0] != "/admin/" {
		t.Fatalf("replication = %+v", r)
	}
	// The environment names it too.
	c, err = config.Load("", []string{"EPHPM_REPLICATION__LISTEN=127.0.0.1:5999", "EPHPM_REPLICATION__AUTH_TOKEN=0123456789abcdef-env"})
	if err != nil || c.Replication.Listen != "127.0.0.1:5999" {
		t.Fatalf("env: %v %+v", err, c.Replication)
	}
}

func TestReplicationConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, toml, want string }{
		{"no token", "[replication]\nlisten = \"0.0.0.0:5001\"\n", "ephpm.toml: replication.auth_token: required"},
		{"short token", "[replication]\nauth_token = \"short\"\n", ":2: replication.auth_token: required, at least 16"},
		{"bad listen", "[replication]\nauth_token = \"0123456789abcdef\"\nlisten = \"nowhere\"\n", ":3: replication.listen: invalid address"},
		{"cert without key", "[replication]\nauth_token = \"0123456789abcdef\"\ntls_cert = \"c.pem\"\n", ":3: replication.tls_cert: tls_cert and tls_key go together"},
		{"relative write path", "[replication]\nauth_token = \"0123456789abcdef\"\nwrite_paths = [\"admin\"]\n", ":3: replication.write_paths:"},
		{"unknown key", "[replication]\nauth_token = \"0123456789abcdef\"\nlistn = \"x\"\n", ":3: replication.listn: unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(write(t, tc.toml), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want …%s…", err, tc.want)
			}
		})
	}
}

// write_paths defaults to WordPress's; [] sends no path to the primary
// by its name alone.
func TestReplicationWritePaths(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       []string
	}{
		{"default", "[replication]\nauth_token = \"0123456789abcdef\"\n", config.DefaultWritePaths},
		{"none", "[replication]\nauth_token = \"0123456789abcdef\"\nwrite_paths = []\n", []string{}},
		{"own", "[replication]\nauth_token = \"0123456789abcdef\"\nwrite_paths = [\"/admin/\"]\n", []string{"/admin/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(write(t, tc.toml), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Replication.WritePaths; !slices.Equal(got, tc.want) || got == nil {
				t.Errorf("write_paths = %#v, want %#v", got, tc.want)
			}
		})
	}
	if want := []string{"/wp-admin/", "/wp-login.php", "/xmlrpc.php", "/wp-cron.php"}; !slices.Equal(config.DefaultWritePaths, want) {
		t.Errorf("DefaultWritePaths = %q, want %q", config.DefaultWritePaths, want)
	}
}
