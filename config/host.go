package config

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// MaxHostLen is the longest host name accepted (RFC 1035).
const MaxHostLen = 253

var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule(), idna.StrictDomainName(true))

// NormalizeHost turns a Host header into a site name: lower-cased,
// port and trailing dot removed, IDN as punycode. Anything that is not
// a valid host name is an error, so it never reaches the file system.
func NormalizeHost(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty host")
	}
	if len(h) > MaxHostLen+7 {
		return "", errors.New("host too long")
	}
	if strings.HasPrefix(h, "[") { // IPv6 literal
		return "", fmt.Errorf("invalid host %q: IP literal", h)
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		port := h[i+1:]
		for _, c := range port {
			if c < '0' || c > '9' {
				return "", fmt.Errorf("invalid host %q", h)
			}
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	ascii := true
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		p, err := idnaProfile.ToASCII(h)
		if err != nil {
			return "", fmt.Errorf("invalid host %q: %v", h, err)
		}
		h = p
	}
	h = strings.ToLower(h)
	if h == "" || len(h) > MaxHostLen {
		return "", fmt.Errorf("invalid host length %d", len(h))
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("invalid host %q: bad label", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0 && i < len(label)-1)
			if !ok {
				return "", fmt.Errorf("invalid host %q", h)
			}
		}
	}
	return h, nil
}
