package config

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"strings"
)

// Defaults for [server.tls].
const (
	// DefaultTLSListen is where HTTPS listens once [server.tls] is used.
	DefaultTLSListen = "0.0.0.0:443"
	// LetsEncryptProduction is the default ACME directory.
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	// LetsEncryptStaging is the directory used with staging = true.
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// TLS is [server.tls]: HTTPS and ACME. HTTPS is on as soon as any key
// of the section is set. Certificates come from ACME (the default) or
// from cert/key.
type TLS struct {
	Listen string `toml:"listen"`
	// ACME issues certificates from an ACME CA; unset means "yes unless
	// cert/key are given".
	ACME  *bool  `toml:"acme"`
	Email string `toml:"email"`
	// CA is the ACME directory URL (default Let's Encrypt production).
	CA      string `toml:"ca"`
	Staging bool   `toml:"staging"`
	// Storage holds certificates and the ACME account (default
	// <data_dir>/certs).
	Storage string `toml:"storage"`
	// OnDemand issues a certificate on the first handshake for a site
	// name; unset means yes.
	OnDemand *bool `toml:"on_demand"`
	// Domains are names certified besides the sites (the only ones in
	// single-site mode).
	Domains      []string `toml:"domains"`
	RedirectHTTP bool     `toml:"redirect_http"`
	// CARoot is a PEM file (or PEM text) of the TLS root of a private
	// ACME CA's directory server, e.g. a test CA.
	CARoot string `toml:"ca_root"`
	Cert   string `toml:"cert"`
	Key    string `toml:"key"`
}

// Enabled reports whether HTTPS is configured.
func (t *TLS) Enabled() bool {
	return t.Listen != "" || t.ACME != nil || t.Email != "" || t.CA != "" || t.Staging || t.Storage != "" ||
		t.OnDemand != nil || len(t.Domains) > 0 || t.RedirectHTTP || t.CARoot != "" || t.Cert != "" || t.Key != ""
}

// ListenAddr is the HTTPS listen address.
func (t *TLS) ListenAddr() string {
	if t.Listen == "" {
		return DefaultTLSListen
	}
	return t.Listen
}

// UseACME reports whether certificates come from an ACME CA.
func (t *TLS) UseACME() bool {
	if t.ACME != nil {
		return *t.ACME
	}
	return t.Cert == ""
}

// IsOnDemand reports whether certificates are issued during handshakes.
func (t *TLS) IsOnDemand() bool { return t.OnDemand == nil || *t.OnDemand }

// Directory is the ACME directory URL to use.
func (t *TLS) Directory() string {
	switch {
	case t.CA != "":
		return t.CA
	case t.Staging:
		return LetsEncryptStaging
	}
	return LetsEncryptProduction
}

// RootPool reads ca_root (a file name or PEM text) into a pool; nil
// when unset.
func (t *TLS) RootPool() (*x509.CertPool, error) {
	if t.CARoot == "" {
		return nil, nil
	}
	data := []byte(t.CARoot)
	if !strings.Contains(t.CARoot, "-----BEGIN") {
		b, err := os.ReadFile(t.CARoot)
		if err != nil {
			return nil, err
		}
		data = b
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errNoPEM
	}
	return pool, nil
}

type tlsError string

func (e tlsError) Error() string { return string(e) }

const errNoPEM = tlsError("no PEM certificate found")

// validateTLS checks [server.tls].
func (c *Config) validateTLS(bad func(key, format string, args ...any)) {
	t := &c.Server.TLS
	if !t.Enabled() {
		return
	}
	if _, _, err := net.SplitHostPort(t.ListenAddr()); err != nil {
		bad("server.tls.listen", "invalid address %q: want host:port", t.Listen)
	} else if sameAddr(t.ListenAddr(), c.Server.Listen) {
		bad("server.tls.listen", "%q is also server.listen: HTTP and HTTPS need their own ports", t.Listen)
	}
	switch {
	case t.Cert != "" && t.Key == "":
		bad("server.tls.cert", "needs key too: set both or neither")
	case t.Cert == "" && t.Key != "":
		bad("server.tls.key", "needs cert too: set both or neither")
	}
	for _, f := range []struct{ key, path string }{{"server.tls.cert", t.Cert}, {"server.tls.key", t.Key}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil || st.IsDir() {
			bad(f.key, "%q is not a readable file", f.path)
		}
	}
	if t.Cert != "" && t.Key != "" {
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			bad("server.tls.cert", "cannot load the certificate and key: %v", err)
		}
	}
	for _, d := range t.Domains {
		n, err := NormalizeHost(d)
		if err != nil || strings.Contains(d, ":") || net.ParseIP(n) != nil {
			bad("server.tls.domains", "%q is not a host name (no ports, IPs or wildcards)", d)
		}
	}
	if !t.UseACME() {
		if t.Cert == "" {
			bad("server.tls.acme", "HTTPS needs certificates: acme = true, or cert and key")
		}
		return
	}
	if t.ACME != nil && t.Cert != "" {
		bad("server.tls.cert", "acme = true and a manual cert: choose one")
	}
	if t.Email != "" && (!strings.Contains(t.Email, "@") || strings.ContainsAny(t.Email, " \t\r\n<>")) {
		bad("server.tls.email", "%q is not an e-mail address", t.Email)
	}
	if t.CA != "" {
		u, err := url.Parse(t.CA)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			bad("server.tls.ca", "%q is not an https:// ACME directory URL", t.CA)
		}
		if t.Staging {
			bad("server.tls.staging", "staging = true and a ca URL: choose one")
		}
	}
	if t.CARoot != "" {
		if _, err := t.RootPool(); err != nil {
			bad("server.tls.ca_root", "%v", err)
		}
	}
	switch {
	case !t.IsOnDemand() && len(t.Domains) == 0:
		bad("server.tls.domains", "on_demand = false needs the names to certify in domains")
	case c.Server.SitesDir == "" && len(t.Domains) == 0:
		bad("server.tls.domains", "without sites_dir, ACME certifies only the names listed here: set at least one")
	}
}

// sameAddr reports whether two listen addresses take the same port on
// an overlapping address.
func sameAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}
