package kv

// SetForceGoroutines lets tests run the goroutine-per-connection path on
// platforms that have the event loop.
func SetForceGoroutines(on bool) { forceGoroutines = on }
