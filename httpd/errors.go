package httpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Error is a handler error that carries the HTTP status to answer with.
// One place (Server.fail) turns errors into responses and log lines.
type Error struct {
	Status int
	Msg    string // for the log; clients get the status text only
	Err    error
	// Public: the client gets Msg too (a message meant for it, that
	// says nothing of the node's internals).
	Public bool
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Msg, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

func statusErr(status int, msg string) *Error { return &Error{Status: status, Msg: msg} }

// errStatus picks the status for an error from a handler.
func errStatus(err error) int {
	var he *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.Status
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return 499 // client went away, as nginx logs it
	}
	return http.StatusBadGateway
}

// fail answers a request whose handler returned err. If the response
// has already started, the connection is aborted instead.
func (s *Server) fail(w *respWriter, r *http.Request, site string, err error) {
	status := errStatus(err)
	level := slog.LevelWarn
	if status < 500 || status == 499 {
		level = slog.LevelDebug
	}
	s.log.Log(r.Context(), level, "request failed", "site", site, "method", r.Method, "uri", r.RequestURI, "status", status, "err", err)
	if w.wroteHeader {
		panic(http.ErrAbortHandler)
	}
	if status == 499 {
		w.status = status
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	var he *Error
	if errors.As(err, &he) && he.Public {
		fmt.Fprintf(w, "%d %s: %s\n", status, http.StatusText(status), he.Msg)
		return
	}
	fmt.Fprintf(w, "%d %s\n", status, http.StatusText(status))
}
