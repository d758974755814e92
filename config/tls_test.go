package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephpm/ephpm/config"
)

// selfSigned writes a certificate and key for example.com into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.com"},
		DNSNames: []string{"example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestTLSDefaults(t *testing.T) {
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.TLS.Enabled() {
		t.Fatal("TLS on without configuration")
	}
	sites := t.TempDir()
	c, err = config.Load(write(t, "[server]\nsites_dir = \""+sites+"\"\n[server.tls]\nemail = \"ops@example.com\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tl := &c.Server.TLS
	if !tl.Enabled() {
		t.Fatal("a [server.tls] key did not turn TLS on")
	}
	c, err = config.Load(write(t, "[server]\nsites_dir = \""+sites+"\"\n[server.tls]\nacme = true\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tl = &c.Server.TLS
	if !tl.Enabled() || !tl.UseACME() || !tl.IsOnDemand() || tl.ListenAddr() != "0.0.0.0:443" || tl.Directory() != config.LetsEncryptProduction {
		t.Fatalf("defaults: enabled=%v acme=%v ondemand=%v listen=%s ca=%s", tl.Enabled(), tl.UseACME(), tl.IsOnDemand(), tl.ListenAddr(), tl.Directory())
	}
	tl.Staging = true
	if tl.Directory() != config.LetsEncryptStaging {
		t.Fatalf("staging directory = %s", tl.Directory())
	}
}

func TestTLSValues(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	for _, tc := range []struct {
		name, body string
		env        []string
		check      func(t *testing.T, tl *config.TLS)
	}{
		{"acme with domains", `[server.tls]
listen = "127.0.0.1:8443"
email = "ops@example.com"
ca = "https://127.0.0.1:14000/dir"
ca_root = "` + certFile + `"
domains = ["example.com", "www.example.com"]
redirect_http = true
storage = "/tmp/certs"
`, nil, func(t *testing.T, tl *config.TLS) {
			if !tl.UseACME() || tl.Directory() != "https://127.0.0.1:14000/dir" || !tl.RedirectHTTP || len(tl.Domains) != 2 || tl.Storage != "/tmp/certs" {
				t.Errorf("got %+v", tl)
			}
			if p, err := tl.RootPool(); err != nil || p == nil {
				t.Errorf("RootPool: %v", err)
			}
		}},
		{"manual cert", "[server.tls]\nlisten = \"127.0.0.1:8443\"\ncert = \"" + certFile + "\"\nkey = \"" + keyFile + "\"\n", nil,
			func(t *testing.T, tl *config.TLS) {
				if tl.UseACME() {
					t.Error("manual cert still uses ACME")
				}
			}},
		{"on_demand off with env", "[server.tls]\ndomains = [\"example.com\"]\n", []string{"EPHPM_SERVER_TLS__ON_DEMAND=false", "EPHPM_SERVER_TLS__LISTEN=127.0.0.1:9443"},
			func(t *testing.T, tl *config.TLS) {
				if tl.IsOnDemand() || tl.ListenAddr() != "127.0.0.1:9443" {
					t.Errorf("got ondemand=%v listen=%s", tl.IsOnDemand(), tl.ListenAddr())
				}
			}},
		{"idn domain", "[server.tls]\ndomains = [\"bücher.example\"]\n", nil, func(t *testing.T, tl *config.TLS) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(write(t, tc.body), tc.env)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &c.Server.TLS)
		})
	}
}

func TestTLSErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	garbage := filepath.Join(dir, "garbage.pem")
	_ = os.WriteFile(garbage, []byte("not a certificate"), 0o644)
	sites := t.TempDir()
	withSites := "[server]\nsites_dir = \"" + sites + "\"\n"
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"bad listen", withSites + "[server.tls]\nlisten = \"443\"\n", []string{"ephpm.toml:4", "server.tls.listen", "host:port"}},
		{"same port as http", "[server]\nlisten = \"0.0.0.0:8080\"\nsites_dir = \"" + sites + "\"\n[server.tls]\nlisten = \"127.0.0.1:8080\"\n", []string{"server.tls.listen", "own ports"}},
		{"cert without key", "[server.tls]\ncert = \"" + certFile + "\"\n", []string{"ephpm.toml:2", "server.tls.cert", "needs key"}},
		{"missing cert file", "[server.tls]\ncert = \"/nonexistent.pem\"\nkey = \"" + keyFile + "\"\n", []string{"ephpm.toml:2", "server.tls.cert", "not a readable file"}},
		{"cert and key mismatch", "[server.tls]\ncert = \"" + certFile + "\"\nkey = \"" + garbage + "\"\n", []string{"server.tls.cert", "cannot load"}},
		{"acme off without cert", withSites + "[server.tls]\nacme = false\n", []string{"ephpm.toml:4", "server.tls.acme"}},
		{"acme and cert", "[server.tls]\nacme = true\ncert = \"" + certFile + "\"\nkey = \"" + keyFile + "\"\ndomains=[\"a.example\"]\n", []string{"server.tls.cert", "choose one"}},
		{"bad email", withSites + "[server.tls]\nacme = true\n\nemail = \"nobody\"\n", []string{"ephpm.toml:6", "server.tls.email"}},
		{"http ca", withSites + "[server.tls]\nca = \"http://ca.example/dir\"\n", []string{"ephpm.toml:4", "server.tls.ca", "https://"}},
		{"ca and staging", withSites + "[server.tls]\nca = \"https://ca.example/dir\"\nstaging = true\n", []string{"server.tls.staging", "choose one"}},
		{"bad ca_root", withSites + "[server.tls]\nca_root = \"" + garbage + "\"\n", []string{"ephpm.toml:4", "server.tls.ca_root", "no PEM"}},
		{"missing ca_root", withSites + "[server.tls]\nca_root = \"/nonexistent/root.pem\"\n", []string{"server.tls.ca_root"}},
		{"wildcard domain", withSites + "[server.tls]\ndomains = [\"*.example.com\"]\n", []string{"ephpm.toml:4", "server.tls.domains"}},
		{"domain with port", withSites + "[server.tls]\ndomains = [\"example.com:443\"]\n", []string{"server.tls.domains"}},
		{"ip domain", withSites + "[server.tls]\ndomains = [\"10.0.0.1\"]\n", []string{"server.tls.domains"}},
		{"single site without domains", "[server.tls]\nacme = true\n", []string{"server.tls.domains", "without sites_dir"}},
		{"not on demand without domains", withSites + "[server.tls]\non_demand = false\n", []string{"server.tls.domains", "on_demand = false"}},
		{"unknown key", "[server.tls]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n", []string{"ephpm.toml:3", "unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(write(t, tc.body), nil)
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
