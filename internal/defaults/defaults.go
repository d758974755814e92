// Package defaults fills in a component's unset tunables. The Configs of
// ephpm's components treat a zero or negative count, size or duration as
// unset: the component's Default* constant applies.
package defaults

// Tunable is a count, a size or a duration.
type Tunable interface {
	~int | ~int32 | ~int64
}

// Positive returns v, or def when v is zero or negative.
func Positive[T Tunable](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
