package lazypool_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephpm/ephpm/internal/lazypool"
)

// counter is a value that knows whether it was closed.
type counter struct {
	key    string
	closed atomic.Bool
}

type recorder struct {
	opens  atomic.Int32
	mu     sync.Mutex
	closes []string // "key:reason"
}

func (r *recorder) config(idle time.Duration) lazypool.Config[*counter] {
	return lazypool.Config[*counter]{
		Idle: idle, Interval: time.Millisecond,
		Close: func(key string, c *counter, why lazypool.Reason) error {
			if c.closed.Swap(true) {
				panic("closed twice: " + key)
			}
			r.mu.Lock()
			r.closes = append(r.closes, key+":"+why.String())
			r.mu.Unlock()
			return nil
		},
	}
}

func (r *recorder) open(_ context.Context, key string) (*counter, error) {
	r.opens.Add(1)
	return &counter{key: key}, nil
}

func (r *recorder) closed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.closes...)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func closeNothing(string, int, lazypool.Reason) error { return nil }

func TestShareAndReapIdle(t *testing.T) {
	var r recorder
	p := lazypool.New(r.config(20 * time.Millisecond))
	defer p.Close()
	ctx := context.Background()
	a1, rel1, err := p.Acquire(ctx, "a", r.open)
	if err != nil {
		t.Fatal(err)
	}
	a2, rel2, _ := p.Acquire(ctx, "a", r.open)
	b, relb, _ := p.Acquire(ctx, "b", r.open)
	if a1 != a2 || a1 == b {
		t.Fatal("one key must give one value, two keys two")
	}
	if got := r.opens.Load(); got != 2 {
		t.Errorf("Open ran %d times, want 2", got)
	}
	rel1()
	rel1() // idempotent: must not release a2's hold
	relb()
	waitFor(t, "b reaped", func() bool { return p.Len() == 1 })
	if !b.closed.Load() || a1.closed.Load() {
		t.Fatalf("closed: a=%v b=%v, want only b", a1.closed.Load(), b.closed.Load())
	}
	if v, ok := p.Peek("a"); !ok || v != a1 {
		t.Error("Peek does not see the held value")
	}
	if _, ok := p.Peek("b"); ok {
		t.Error("Peek sees a reaped value")
	}
	rel2()
	waitFor(t, "a reaped", func() bool { return p.Len() == 0 })
	if got := r.closed(); len(got) != 2 || got[0] != "b:idle" || got[1] != "a:idle" {
		t.Errorf("closes %v, want [b:idle a:idle]", got)
	}
	// A reaped key opens again.
	b2, relb2, err := p.Acquire(ctx, "b", r.open)
	if err != nil || b2 == b {
		t.Fatalf("reopen: %v (same value: %v)", err, b2 == b)
	}
	relb2()
}

func TestConcurrentAcquireOpensOnce(t *testing.T) {
	var opens atomic.Int32
	gate := make(chan struct{})
	open := func(context.Context, string) (int, error) {
		<-gate
		return int(opens.Add(1)), nil
	}
	p := lazypool.New(lazypool.Config[int]{Idle: time.Hour, Close: closeNothing})
	defer p.Close()
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, rel, err := p.Acquire(context.Background(), "k", open)
			if err != nil {
				t.Error(err)
				return
			}
			defer rel()
			got[i] = v
		}()
	}
	waitFor(t, "the opener to start", func() bool { return p.Len() == 1 })
	close(gate)
	wg.Wait()
	if opens.Load() != 1 {
		t.Errorf("Open ran %d times for one key", opens.Load())
	}
	for _, v := range got {
		if v != 1 {
			t.Errorf("got %v, want every Acquire to get the one value", got)
			break
		}
	}
}

func TestOpenErrorNotKept(t *testing.T) {
	fail := errors.New("boom")
	var calls atomic.Int32
	open := func(context.Context, string) (int, error) {
		if calls.Add(1) == 1 {
			return 0, fail
		}
		return 7, nil
	}
	p := lazypool.New(lazypool.Config[int]{Idle: time.Hour, Close: closeNothing})
	defer p.Close()
	if _, _, err := p.Acquire(context.Background(), "k", open); !errors.Is(err, fail) {
		t.Fatalf("first Acquire: %v, want the Open error", err)
	}
	if p.Len() != 0 {
		t.Error("a failed Open is kept")
	}
	v, rel, err := p.Acquire(context.Background(), "k", open)
	if err != nil || v != 7 {
		t.Fatalf("retry: %v %v", v, err)
	}
	rel()
}

func TestWaiterContext(t *testing.T) {
	gate := make(chan struct{})
	open := func(context.Context, string) (int, error) { <-gate; return 1, nil }
	p := lazypool.New(lazypool.Config[int]{Idle: time.Hour, Close: closeNothing})
	defer p.Close()
	opened := make(chan error, 1)
	go func() {
		_, rel, err := p.Acquire(context.Background(), "k", open)
		if err == nil {
			rel()
		}
		opened <- err
	}()
	waitFor(t, "the opener to start", func() bool { return p.Len() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.Acquire(ctx, "k", open); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter with a cancelled context: %v", err)
	}
	close(gate)
	if err := <-opened; err != nil {
		t.Errorf("the opener failed with the waiter: %v", err)
	}
}

func TestCloseClosesEverything(t *testing.T) {
	var r recorder
	cfg := r.config(time.Hour)
	cfg.Close = func(key string, c *counter, why lazypool.Reason) error {
		c.closed.Store(true)
		return fmt.Errorf("close %s: %s", key, why)
	}
	p := lazypool.New(cfg)
	held, _, _ := p.Acquire(context.Background(), "held", r.open)
	free, rel, _ := p.Acquire(context.Background(), "free", r.open)
	rel()
	err := p.Close()
	if !held.closed.Load() || !free.closed.Load() {
		t.Error("Close left a value open")
	}
	if err == nil || !strings.Contains(err.Error(), "close held: closing") || !strings.Contains(err.Error(), "close free: closing") {
		t.Errorf("Close = %v, want both Close errors", err)
	}
	if _, _, err := p.Acquire(context.Background(), "x", r.open); !errors.Is(err, lazypool.ErrClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
