package task_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/task"
)

func TestGroupCloseCancelsAndWaits(t *testing.T) {
	g := task.NewGroup(context.Background())
	var ended atomic.Int32
	for range 3 {
		g.Go(func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond) // Close must wait for this
			ended.Add(1)
			return nil
		})
	}
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := ended.Load(); got != 3 {
		t.Errorf("Close returned with %d of 3 goroutines ended", got)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestGroupFirstErrorCancelsOthers(t *testing.T) {
	g := task.NewGroup(context.Background())
	boom := errors.New("boom")
	other := errors.New("other")
	g.Go(func(context.Context) error { return boom })
	g.Go(func(ctx context.Context) error {
		<-ctx.Done() // cancelled by the failure, not by Close
		return other
	})
	err := g.Wait()
	if !errors.Is(err, boom) || !errors.Is(err, other) {
		t.Errorf("Wait = %v, want both errors", err)
	}
	if g.Context().Err() == nil {
		t.Error("the group's context is not done after a failure")
	}
}

func TestGroupParentCancel(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	g := task.NewGroup(parent)
	g.Go(func(ctx context.Context) error { <-ctx.Done(); return nil })
	cancel()
	if err := g.Wait(); err != nil {
		t.Errorf("Wait = %v", err)
	}
}

func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- task.Every(ctx, time.Millisecond, func(context.Context) {
			if n.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Every = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if got := n.Load(); got != 3 {
		t.Errorf("f ran %d times after the cancel at 3", got)
	}
}

func TestEveryNotAtOnce(t *testing.T) {
	g := task.NewGroup(context.Background())
	var n atomic.Int32
	g.Every(time.Hour, func(context.Context) { n.Add(1) })
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 0 {
		t.Error("Every called f before the first interval")
	}
}
