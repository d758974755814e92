package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ephpm/ephpm/internal/task"
)

// startPprof serves Go's profiler on addr (EPHPM_PPROF=127.0.0.1:6060),
// for finding where the time goes in benchmarks. Off by default. A
// failure to serve is logged, not fatal; stop closes the server and
// waits for it.
func startPprof(addr string, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	tasks := task.NewGroup(context.Background())
	tasks.Go(func(context.Context) error {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof", "err", err)
		}
		return nil
	})
	return func() {
		srv.Close()
		tasks.Close()
	}
}
