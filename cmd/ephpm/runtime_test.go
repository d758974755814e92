package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"testing"

	"github.com/ephpm/ephpm/config"
)

func TestTuneGC(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	kvOff := config.New()
	kvOff.KV.Enabled = false
	bigKV := config.New()
	bigKV.KV.MemoryLimit = 1 << 30

	for _, tc := range []struct {
		name        string
		cfg         *config.Config
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"defaults", config.New(), nil, gcPercent, minMemoryLimit},
		{"kv off", kvOff, nil, gcPercent, minMemoryLimit},
		{"big kv store", bigKV, nil, gcPercent, 3 << 30},
		{"GOGC set", config.New(), map[string]string{"GOGC": "50"}, 100, oldLimit},
		{"GOMEMLIMIT set", config.New(), map[string]string{"GOMEMLIMIT": "1GiB"}, 100, oldLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(oldLimit)
			tuneGC(tc.cfg, env(tc.env), quiet)
			if got := debug.SetGCPercent(100); got != tc.wantPercent {
				t.Errorf("GC percent = %d, want %d", got, tc.wantPercent)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit = %d, want %d", got, tc.wantLimit)
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
