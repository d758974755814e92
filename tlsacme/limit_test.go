package tlsacme_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ephpm/ephpm/tlsacme"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		op   string // begin, fail, ok
		name string
		at   time.Duration
		want error         // for begin
		wait time.Duration // for fail
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"backoff doubles to the cap", []step{
			{op: "begin", name: "a", want: nil},
			{op: "fail", name: "a", wait: time.Minute},
			{op: "begin", name: "a", at: 59 * time.Second, want: tlsacme.ErrBackoff},
			{op: "begin", name: "b", at: 59 * time.Second, want: nil},
			{op: "begin", name: "a", at: time.Minute, want: nil},
			{op: "fail", name: "a", at: time.Minute, wait: 2 * time.Minute},
			{op: "fail", name: "a", at: time.Minute, wait: 4 * time.Minute},
			{op: "fail", name: "a", at: time.Minute, wait: 5 * time.Minute},
			{op: "fail", name: "a", at: time.Minute, wait: 5 * time.Minute},
		}},
		{"success clears the backoff", []step{
			{op: "fail", name: "a", wait: time.Minute},
			{op: "ok", name: "a"},
			{op: "begin", name: "a", at: time.Second, want: nil},
			{op: "fail", name: "a", at: time.Second, wait: time.Minute},
		}},
		{"global window", []step{
			{op: "begin", name: "a", want: nil},
			{op: "begin", name: "b", at: time.Second, want: nil},
			{op: "begin", name: "c", at: 2 * time.Second, want: nil},
			{op: "begin", name: "d", at: 3 * time.Second, want: tlsacme.ErrRateLimited},
			{op: "begin", name: "d", at: 10 * time.Second, want: nil},
			{op: "begin", name: "e", at: 10 * time.Second, want: tlsacme.ErrRateLimited},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tlsacme.NewLimiter(3, 10*time.Second, time.Minute, 5*time.Minute)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch s.op {
				case "begin":
					if err := l.Begin(s.name, now); !errors.Is(err, s.want) {
						t.Fatalf("step %d: begin %s = %v, want %v", i, s.name, err, s.want)
					}
				case "fail":
					if got := l.Fail(s.name, now); got != s.wait {
						t.Fatalf("step %d: fail %s wait = %v, want %v", i, s.name, got, s.wait)
					}
				case "ok":
					l.Succeed(s.name)
				}
			}
		})
	}
}
