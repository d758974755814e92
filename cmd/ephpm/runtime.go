package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/ephpm/ephpm/config"
)

// ephpm's live heap is small (sessions, plans, the KV store's entries) and
// it allocates fast on the request path: at Go's default GOGC=100 it
// collects every few MB, and the collections and their assists cost about
// a quarter of a 30-query page's CPU (docs/benchmarks.md). So the collector
// is given room (gcPercent), and a soft memory limit keeps that room from
// growing with a full KV store: near the limit the runtime collects as
// often as it must.
const (
	gcPercent      = 400
	minMemoryLimit = 512 << 20
)

// tuneGC applies that policy unless the environment sets Go's own knobs
// (GOGC, GOMEMLIMIT), which then win.
func tuneGC(cfg *config.Config, getenv func(string) string, log *slog.Logger) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		log.Info("go gc from the environment", "GOGC", getenv("GOGC"), "GOMEMLIMIT", getenv("GOMEMLIMIT"))
		return
	}
	limit := int64(minMemoryLimit)
	if cfg.KV.Enabled {
		// The KV store's entries are most of the live heap when it is full;
		// three times its limit leaves the collector its room above them.
		limit = max(limit, 3*int64(cfg.KV.MemoryLimit))
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(limit)
	log.Debug("go gc", "gc_percent", gcPercent, "memory_limit", limit)
}

// Go's sysmon thread sleeps deeply whenever every P is idle, and the next
// system call wakes it, after which it polls every 20 µs until all is idle
// again. A PHP server is idle between nearly every pair of MySQL commands
// (PHP computes in between), so each command paid a futex wake-up, a run
// of 20 µs sleeps and a futex sleep: context switches that on a VM cost
// more than the command (a fifth of ephpm's CPU on a WordPress page, and
// they slowed PHP too). With schedtrace set, sysmon never sleeps deeply
// and backs off to one wake-up per 10 ms; the largest interval means the
// trace itself prints one line to stderr every 24.8 days of the host's
// uptime (so at start on a host up longer). GODEBUG is read only at
// start, so `ephpm serve` re-executes itself once with it set. q30 gained
// 38 % over the same build without it (docs/benchmarks.md).
const sysmonGODEBUG = "schedtrace=2147483647"

// sysmonEnv returns the environment to re-execute with, or nil when
// GODEBUG already says what it wants about schedtrace.
func sysmonEnv(environ []string) []string {
	cur := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			cur = v
		}
	}
	for _, s := range strings.Split(cur, ",") {
		if strings.HasPrefix(s, "schedtrace=") {
			return nil
		}
	}
	gd := sysmonGODEBUG
	if cur != "" {
		gd = cur + "," + sysmonGODEBUG
	}
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return append(env, "GODEBUG="+gd)
}

// keepSysmonAwake re-executes this process (same PID) with sysmonGODEBUG
// and returns only if it cannot; the server then runs as it is.
func keepSysmonAwake() {
	env := sysmonEnv(os.Environ())
	if env == nil {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	err = syscall.Exec(exe, os.Args, env)
	fmt.Fprintf(os.Stderr, "ephpm: re-exec with GODEBUG=%s failed, going on without: %v\n", sysmonGODEBUG, err)
}
