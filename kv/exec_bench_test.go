package kv

import (
	"strings"
	"testing"
)

// BenchmarkExec runs commands through conn.exec, without the network: the
// cost of a command handler (lookup, shard lock, reply).
func BenchmarkExec(b *testing.B) {
	s, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	c := s.initConn(nil, nil, "bench")
	tickClock()
	for _, setup := range []string{
		"SET str hello-world",
		"HSET h f1 v1 f2 v2 f3 v3 f4 v4",
	} {
		run(c, setup)
	}
	c.wr.Reset()
	for _, cmd := range []string{
		"GET str", "GET missing", "STRLEN str", "MGET str missing str",
		"HGET h f2", "HLEN h", "HEXISTS h f3", "HSTRLEN h f1", "HMGET h f1 nope f4", "HGETALL h",
		"SET k v", "SETEX k 100 v", "HSET h f1 v1", "HINCRBY h n 1",
	} {
		args := split(cmd)
		b.Run(strings.ReplaceAll(cmd, " ", "_"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.exec(args)
				c.wr.buf = c.wr.buf[:0]
			}
		})
	}
}

func split(cmd string) [][]byte {
	var args [][]byte
	for _, f := range strings.Fields(cmd) {
		args = append(args, []byte(f))
	}
	return args
}

func run(c *conn, cmd string) { c.exec(split(cmd)) }
