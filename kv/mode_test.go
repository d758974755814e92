package kv_test

import (
	"testing"

	"github.com/ephpm/ephpm/kv"
)

// TestGoroutineMode runs the I/O-sensitive tests again with a goroutine
// per connection, the path used where there is no event loop.
func TestGoroutineMode(t *testing.T) {
	kv.SetForceGoroutines(true)
	defer kv.SetForceGoroutines(false)
	for name, fn := range map[string]func(*testing.T){
		"compare":       TestCompareWithRedis,
		"malformed":     TestMalformedInput,
		"slow argument": TestLargeArgumentArrivingSlowly,
		"pipelining":    TestPipelining,
		"max conns":     TestMaxConnections,
		"close":         TestCloseEndsConnectionsAndContext,
		"isolation":     TestSiteIsolation,
		"concurrent":    TestConcurrentClientsAcrossLoops,
	} {
		t.Run(name, fn)
	}
}
