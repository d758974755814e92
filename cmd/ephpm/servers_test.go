package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// fakeServer serves until stopped; fail makes it end with an error.
type fakeServer struct {
	stop, fail chan struct{}
	err        error
}

func newFake(err error) *fakeServer {
	return &fakeServer{stop: make(chan struct{}), fail: make(chan struct{}), err: err}
}

func (f *fakeServer) serve() error {
	select {
	case <-f.stop:
		return nil
	case <-f.fail:
		return f.err
	}
}

func (f *fakeServer) shutdown(context.Context) error { close(f.stop); return nil }

func TestServersFirstEndStopsAll(t *testing.T) {
	boom := errors.New("boom")
	a, b := newFake(nil), newFake(boom)
	s := newServers(context.Background())
	s.add(a.serve, a.shutdown)
	s.add(b.serve, b.shutdown)
	close(b.fail)
	select {
	case <-s.done():
	case <-time.After(10 * time.Second):
		t.Fatal("a failed server did not end serving")
	}
	if err := s.shutdown(context.Background()); !errors.Is(err, boom) {
		t.Errorf("shutdown = %v, want the failure", err)
	}
}

func TestServersShutdownCollectsEveryError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newServers(ctx)
	e1, e2 := errors.New("one"), errors.New("two")
	for _, e := range []error{e1, e2} {
		f := newFake(e)
		// Stopping this one makes it fail, as a server can while it stops.
		s.add(f.serve, func(context.Context) error { close(f.fail); return nil })
	}
	closed := newFake(fmt.Errorf("accept: %w", net.ErrClosed))
	s.add(closed.serve, func(context.Context) error { close(closed.fail); return nil })
	cancel() // the signal
	<-s.done()
	err := s.shutdown(context.Background())
	if !errors.Is(err, e1) || !errors.Is(err, e2) {
		t.Errorf("shutdown = %v, want both servers' errors", err)
	}
	if errors.Is(err, net.ErrClosed) {
		t.Errorf("shutdown = %v: a listener closed by shutdown is no error", err)
	}
}
