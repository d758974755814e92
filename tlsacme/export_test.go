package tlsacme

import "time"

// Limiter exposes the issuance limiter to the external tests.
type Limiter struct{ l *limiter }

func NewLimiter(rate int, window, bmin, bmax time.Duration) Limiter {
	return Limiter{newLimiter(rate, window, bmin, bmax)}
}

func (l Limiter) Begin(name string, now time.Time) error        { return l.l.begin(name, now) }
func (l Limiter) Fail(name string, now time.Time) time.Duration { return l.l.fail(name, now) }
func (l Limiter) Succeed(name string)                           { l.l.succeed(name) }
