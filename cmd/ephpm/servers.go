package main

import (
	"context"
	"errors"
	"net"
	"sync/atomic"

	"github.com/ephpm/ephpm/internal/task"
)

// servers are the node's listeners (HTTP, HTTPS, replication), each
// serving in one task.Group until shutdown. The first to return — an
// error, or nil before shutdown — ends serving for all; shutdown stops
// every one and returns every one's error.
type servers struct {
	ctx      context.Context // done: the parent ended or a server returned
	end      context.CancelFunc
	tasks    *task.Group
	stops    []func(context.Context) error
	stopping atomic.Bool
}

func newServers(parent context.Context) *servers {
	ctx, end := context.WithCancel(parent)
	return &servers{ctx: ctx, end: end, tasks: task.NewGroup(context.Background())}
}

// add runs serve until stop, called by shutdown, makes it return.
func (s *servers) add(serve func() error, stop func(context.Context) error) {
	s.stops = append(s.stops, stop)
	s.tasks.Go(func(context.Context) error {
		defer s.end()
		err := serve()
		if s.stopping.Load() && errors.Is(err, net.ErrClosed) {
			// Its listener was closed by shutdown before the server
			// could register for a graceful stop: that is the stop.
			err = nil
		}
		return err
	})
}

// done is closed when serving should end: the parent context ended or a
// server returned.
func (s *servers) done() <-chan struct{} { return s.ctx.Done() }

// shutdown stops the servers in the order they were added, each given
// ctx (the drain deadline), waits for them, and returns their errors and
// their stops'.
func (s *servers) shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.end()
	var errs []error
	for _, stop := range s.stops {
		errs = append(errs, stop(ctx))
	}
	errs = append(errs, s.tasks.Wait())
	return errors.Join(errs...)
}
