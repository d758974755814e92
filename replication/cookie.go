package replication

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// DefaultFrameCookieAge is how long a read-your-writes cookie is good
// for: a client's reads wait for its write only this long after it.
const DefaultFrameCookieAge = 5 * time.Minute

// frameMACLen is the MAC's length in bytes: 96 bits, 16 characters.
const frameMACLen = 12

// The ephpm_frame cookie is "<frame>.<expiry>.<mac>": the primary's log
// position after the client's write, the Unix second it expires (both
// base 36), and a MAC over them and the site's name keyed from the
// cluster's auth_token. Every node of the cluster can check it; a client
// can neither make one up (to hold a replica's reads back) nor carry one
// from another site or past its expiry.

// frameKey derives the cookie's MAC key from the cluster's auth token.
func frameKey(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("ephpm_frame cookie"))
	return m.Sum(nil)
}

func (m *Manager) frameMAC(site, body string) string {
	h := hmac.New(sha256.New, m.frameKey)
	h.Write([]byte(site))
	h.Write([]byte{0})
	h.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:frameMACLen])
}

// frameCookie is the cookie value for a client that wrote to site up to
// frame, good until expires.
func (m *Manager) frameCookie(site string, frame uint64, expires time.Time) string {
	body := strconv.FormatUint(frame, 36) + "." + strconv.FormatInt(expires.Unix(), 36)
	return body + "." + m.frameMAC(site, body)
}

// parseFrameCookie returns the frame a cookie for site names, if it was
// issued by this cluster for this site and has not expired.
func (m *Manager) parseFrameCookie(site, v string, now time.Time) (uint64, bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 || len(v)-i-1 != base64.RawURLEncoding.EncodedLen(frameMACLen) {
		return 0, false
	}
	body, mac := v[:i], v[i+1:]
	if !hmac.Equal([]byte(mac), []byte(m.frameMAC(site, body))) {
		return 0, false
	}
	f, e, ok := strings.Cut(body, ".")
	if !ok {
		return 0, false
	}
	frame, err1 := strconv.ParseUint(f, 36, 64)
	exp, err2 := strconv.ParseInt(e, 36, 64)
	if err1 != nil || err2 != nil || now.Unix() >= exp {
		return 0, false
	}
	return frame, true
}
