package replication

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/ephpm/ephpm/framelog"
)

// SiteToken is the bearer token a libSQL client uses for one site:
// "<site>.<mac>", the MAC keyed with the cluster's auth_token so every
// node accepts it and it names exactly one site.
func SiteToken(authToken, site string) string {
	return site + "." + siteMAC(authToken, site)
}

func siteMAC(authToken, site string) string {
	m := hmac.New(sha256.New, []byte(authToken))
	m.Write([]byte("libsql\x00" + site))
	return hex.EncodeToString(m.Sum(nil))[:40]
}

// ParseSiteToken returns the site a token was made for, if it is genuine.
func ParseSiteToken(authToken, token string) (string, bool) {
	i := strings.LastIndexByte(token, '.')
	if i <= 0 {
		return "", false
	}
	site, mac := token[:i], token[i+1:]
	return site, hmac.Equal([]byte(mac), []byte(siteMAC(authToken, site)))
}

// PrimaryLog returns the frame log of a site this node is primary for,
// opening its database; release ends the use.
func (m *Manager) PrimaryLog(ctx context.Context, name string) (*framelog.Log, func(), error) {
	l, _, release, err := m.primaryLog(ctx, name)
	return l, release, err
}
