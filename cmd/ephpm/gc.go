package main

import (
	"log/slog"
	"runtime/debug"

	"github.com/ephpm/ephpm/config"
)

// ephpm's live heap is small (sessions, plans, the KV store's entries) and
// it allocates fast on the request path: at Go's default GOGC=100 it
// collects every few MB, and the collections and their assists cost a
// third of a 30-query page's CPU (docs/benchmarks.md). So the collector
// is given room (gcPercent), and a soft memory limit keeps that room from
// growing with a full KV store: near the limit the runtime collects as
// often as it must.
const (
	gcPercent      = 400
	minMemoryLimit = 512 << 20
)

// tuneGC applies that policy unless the environment sets Go's own knobs
// (GOGC, GOMEMLIMIT), which then win. It returns what it set (0, 0 when
// nothing).
func tuneGC(cfg *config.Config, getenv func(string) string, log *slog.Logger) (percent int, limit int64) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		log.Info("go gc from the environment", "GOGC", getenv("GOGC"), "GOMEMLIMIT", getenv("GOMEMLIMIT"))
		return 0, 0
	}
	limit = minMemoryLimit
	if cfg.KV.Enabled {
		// The KV store's entries are most of the live heap when it is full;
		// three times its limit leaves the collector its room above them.
		limit = max(limit, 3*int64(cfg.KV.MemoryLimit))
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(limit)
	log.Debug("go gc", "gc_percent", gcPercent, "memory_limit", limit)
	return gcPercent, limit
}
