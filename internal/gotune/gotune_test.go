package gotune

import (
	"context"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"testing"
)

func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, maxGCPercent},
		{4 << 20, maxGCPercent},  // a few sites: the full room
		{16 << 20, maxGCPercent}, // 64 MB of room is 4x
		{32 << 20, 200},
		{64 << 20, minGCPercent},
		{2 << 30, minGCPercent}, // never below Go's default
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MB) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}

func TestGCTuner(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	for _, tc := range []struct {
		name        string
		limit       int64
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"defaults (128 MB of KV)", MemoryLimit(128 << 20), nil, maxGCPercent, minMemoryLimit},
		{"kv off", MemoryLimit(0), nil, maxGCPercent, minMemoryLimit},
		{"big kv store", MemoryLimit(1 << 30), nil, maxGCPercent, 3 << 30},
		{"GOGC set", MemoryLimit(0), map[string]string{"GOGC": "50"}, 100, oldLimit},
		{"GOMEMLIMIT set", MemoryLimit(0), map[string]string{"GOMEMLIMIT": "1GiB"}, 100, oldLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(oldLimit)
			ctx, cancel := context.WithCancel(context.Background())
			wait := StartGCTuner(ctx, tc.limit, env(tc.env), quiet)
			// Read without changing: set the same value back at once.
			p := debug.SetGCPercent(-1)
			debug.SetGCPercent(p)
			if p != tc.wantPercent {
				t.Errorf("GC percent = %d, want %d", p, tc.wantPercent)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit = %d, want %d", got, tc.wantLimit)
			}
			cancel()
			wait()
			// Stopped: what was there before is back.
			if got := debug.SetGCPercent(-1); got != 100 {
				t.Errorf("GC percent after stop = %d, want 100", got)
			}
			debug.SetGCPercent(100)
			if got := debug.SetMemoryLimit(-1); got != oldLimit {
				t.Errorf("memory limit after stop = %d, want %d", got, oldLimit)
			}
		})
	}
}

func TestSysmonEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string // nil: no re-exec
	}{
		{"no GODEBUG", []string{"A=1"}, []string{"A=1", "GODEBUG=" + sysmonGODEBUG}},
		{"other settings kept", []string{"GODEBUG=http2client=0", "B=2"}, []string{"B=2", "GODEBUG=http2client=0," + sysmonGODEBUG}},
		{"empty GODEBUG", []string{"GODEBUG="}, []string{"GODEBUG=" + sysmonGODEBUG}},
		{"already set by us", []string{"GODEBUG=" + sysmonGODEBUG}, nil},
		{"user's own schedtrace", []string{"GODEBUG=gctrace=1,schedtrace=1000"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sysmonEnv(tc.in)
			if !slices.Equal(got, tc.want) {
				t.Errorf("sysmonEnv(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
