package loop_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/loop"
)

// Close cancels every loop and returns only when all have ended; Go
// after Close starts nothing.
func TestGroupCloseWaits(t *testing.T) {
	g := loop.NewGroup()
	var running, ended atomic.Int32
	for range 3 {
		if !g.Go(func(ctx context.Context) {
			running.Add(1)
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond) // still running when cancelled
			ended.Add(1)
		}) {
			t.Fatal("Go refused before Close")
		}
	}
	g.Close()
	if got := ended.Load(); got != 3 {
		t.Fatalf("Close returned with %d of 3 loops ended", got)
	}
	if g.Go(func(context.Context) { t.Error("ran after Close") }) {
		t.Fatal("Go accepted after Close")
	}
	g.Close() // again: nothing to do
	if g.Context().Err() == nil {
		t.Fatal("context not cancelled")
	}
}

func TestEvery(t *testing.T) {
	t.Run("until fn says stop", func(t *testing.T) {
		var n int
		loop.Every(context.Background(), time.Millisecond, func(time.Time) bool {
			n++
			return n < 3
		})
		if n != 3 {
			t.Fatalf("fn ran %d times, want 3", n)
		}
	})
	t.Run("until ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			loop.Every(ctx, time.Millisecond, func(time.Time) bool { n.Add(1); return true })
		}()
		for n.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Every did not return after cancel")
		}
	})
}
