package main

import (
	"context"
	"net/http"

	"github.com/ephpm/ephpm/httpd"
)

// tlsFront prepares HTTPS from [server.tls]. intercept runs before every
// request on the HTTP listener (ACME challenges, redirect); serveTLS starts
// the TLS listener and sends its end to errc. Both are nil when TLS is off.
func (n *node) tlsFront(ctx context.Context) (
	intercept func(http.ResponseWriter, *http.Request) bool,
	serveTLS func(front *httpd.Server, errc chan<- error) error,
	err error,
) {
	return nil, nil, nil
}
