// Package gotune fits Go's runtime to a PHP application server: the
// collector's room while the live heap is small, a soft memory limit, and
// a sysmon that does not sleep deeply between every pair of MySQL
// commands. Measured in docs/benchmarks.md.
package gotune

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"syscall"
	"time"

	"github.com/ephpm/ephpm/internal/task"
)

// ephpm's live heap is usually small (sessions, plans, a few sites'
// catalogs) and it allocates fast on the request path: at Go's default
// GOGC=100 it collects every few MB, and the collections and their
// assists cost about a quarter of a 30-query page's CPU
// (docs/benchmarks.md). So while the live heap is small the collector is
// given a fixed room (gcHeadroom, i.e. GOGC up to maxGCPercent); as the
// heap grows (thousands of open sites, a full KV store) GOGC falls back
// towards 100, where memory per site stays what it was. A soft memory
// limit bounds the total either way.
const (
	gcHeadroom     = 64 << 20
	maxGCPercent   = 400
	minGCPercent   = 100
	minMemoryLimit = 512 << 20
	// gcTuneInterval is how often the live heap is read again.
	gcTuneInterval = time.Second
)

// gcPercentFor is GOGC for a live heap of live bytes.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	return int(min(max(gcHeadroom*100/live, minGCPercent), maxGCPercent))
}

// MemoryLimit is the soft memory limit for a node whose KV store may
// hold kvBytes (0: no KV store): at least minMemoryLimit, else three
// times the store, since its entries are most of the live heap when it
// is full and the collector needs its room above them.
func MemoryLimit(kvBytes int64) int64 { return max(int64(minMemoryLimit), 3*kvBytes) }

// StartGCTuner applies that policy with the soft memory limit limit and
// keeps it, re-reading the live heap every second, until ctx ends; then
// it puts back what it found. The returned func waits for that. When the
// environment sets Go's own knobs (GOGC, GOMEMLIMIT), they win and
// nothing is tuned.
func StartGCTuner(ctx context.Context, limit int64, getenv func(string) string, log *slog.Logger) (wait func()) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		log.Info("go gc from the environment", "GOGC", getenv("GOGC"), "GOMEMLIMIT", getenv("GOMEMLIMIT"))
		return func() {}
	}
	prevLimit := debug.SetMemoryLimit(limit)
	prevPercent := debug.SetGCPercent(maxGCPercent)
	cur := maxGCPercent
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	tune := func(context.Context) {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		live := sample[0].Value.Uint64()
		if p := gcPercentFor(live); p != cur {
			debug.SetGCPercent(p)
			log.Debug("go gc", "gc_percent", p, "live_heap", live)
			cur = p
		}
	}
	tasks := task.NewGroup(ctx)
	tasks.Go(func(ctx context.Context) error {
		defer func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) }()
		return task.Every(ctx, gcTuneInterval, tune)
	})
	return func() { tasks.Wait() }
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

// KeepSysmonAwake re-executes this process (same PID) with sysmonGODEBUG
// and returns only if it cannot; the server then runs as it is.
func KeepSysmonAwake() {
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
