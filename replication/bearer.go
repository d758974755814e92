package replication

import (
	"net/http"
	"strings"
)

// SiteOfBearer returns the site a libSQL client's token names, if the
// token is genuine (made by SiteToken with authToken). The token comes
// as "Authorization: Bearer <token>", or in X-Authorization, which
// libSQL clients use when Authorization is taken by a proxy.
func SiteOfBearer(authToken string, h http.Header) (site string, ok bool) {
	tok := h.Get("Authorization")
	if tok == "" {
		tok = h.Get("X-Authorization")
	}
	tok = strings.TrimSpace(strings.TrimPrefix(tok, "Bearer "))
	return ParseSiteToken(authToken, tok)
}
