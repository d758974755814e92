package tlsacme

import (
	"errors"
	"sync"
	"time"
)

// ErrBackoff refuses an issuance for a name whose last one failed
// recently.
var ErrBackoff = errors.New("tlsacme: name is backing off after a failed issuance")

// ErrRateLimited refuses an issuance over the node's global limit.
var ErrRateLimited = errors.New("tlsacme: global issuance rate limit reached")

// limiter is the per-name backoff and the global issuance window.
type limiter struct {
	rate       int
	window     time.Duration
	backoffMin time.Duration
	backoffMax time.Duration

	mu     sync.Mutex
	starts []time.Time // issuance attempts inside the window, oldest first
	failed map[string]*failure
}

type failure struct {
	count int
	next  time.Time // no attempt before this
	last  time.Time
}

func newLimiter(rate int, window, bmin, bmax time.Duration) *limiter {
	return &limiter{rate: rate, window: window, backoffMin: bmin, backoffMax: bmax, failed: map[string]*failure{}}
}

// blocked reports whether name is inside its backoff at now.
func (l *limiter) blocked(name string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.failed[name]
	return f != nil && now.Before(f.next)
}

// begin admits an issuance attempt for name at now, or says why not.
func (l *limiter) begin(name string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.failed[name]; f != nil && now.Before(f.next) {
		return ErrBackoff
	}
	cut := 0
	for cut < len(l.starts) && now.Sub(l.starts[cut]) >= l.window {
		cut++
	}
	l.starts = l.starts[cut:]
	if l.rate > 0 && len(l.starts) >= l.rate {
		return ErrRateLimited
	}
	l.starts = append(l.starts, now)
	return nil
}

// fail records a failed issuance: the name waits backoffMin, doubling
// with each further failure up to backoffMax.
func (l *limiter) fail(name string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.failed[name]
	if f == nil {
		f = &failure{}
		l.failed[name] = f
	}
	f.count++
	d := l.backoffMin
	for i := 1; i < f.count && d < l.backoffMax; i++ {
		d *= 2
	}
	if d > l.backoffMax {
		d = l.backoffMax
	}
	f.next, f.last = now.Add(d), now
	// Forget names that stopped failing long ago, so the map stays small.
	for n, o := range l.failed {
		if now.Sub(o.last) > 2*l.backoffMax && now.After(o.next) {
			delete(l.failed, n)
		}
	}
	return d
}

// succeed clears a name's backoff.
func (l *limiter) succeed(name string) {
	l.mu.Lock()
	delete(l.failed, name)
	l.mu.Unlock()
}
