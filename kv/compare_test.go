package kv_test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/ephpm/ephpm/kv"
)

// step is one command; a leading "~" sorts an array reply (unordered in
// both servers), "~2" sorts it as pairs.
type step string

func (s step) args() (args []string, pairs int) {
	str := string(s)
	switch {
	case strings.HasPrefix(str, "~2 "):
		pairs, str = 2, str[3:]
	case strings.HasPrefix(str, "~ "):
		pairs, str = 1, str[2:]
	}
	// "_" stands for a space inside an argument, "''" for an empty one.
	for _, a := range strings.Fields(str) {
		if a == "''" {
			a = ""
		}
		args = append(args, strings.ReplaceAll(a, "_", " "))
	}
	return args, pairs
}

// TestCompareWithRedis runs the same commands against a real redis-server
// and the KV store and requires byte-identical replies: subtle semantics
// (TTL edges, integer parsing, WRONGTYPE, error texts) are Redis's own.
func TestCompareWithRedis(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startKV(t, kv.Config{})
	ref := dial(t, redisAddr)
	got := dial(t, srv.Addr().String())

	for _, tc := range compareCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []*client{ref, got} {
				c.Do("SELECT", "0")
				c.Do("FLUSHALL")
			}
			for _, s := range tc.steps {
				args, pairs := s.args()
				want, have := ref.Do(args...), got.Do(args...)
				if pairs > 0 {
					want, have = sortedArray(want, pairs), sortedArray(have, pairs)
				}
				if want != have {
					t.Errorf("%s:\n redis: %q\n ephpm: %q", s, want, have)
				}
			}
		})
	}
}

// compareCases are command sequences whose replies must equal Redis's.
var compareCases = []struct {
	name  string
	steps []step
}{
	{"set options", []step{
		"SET k v", "GET k", "SET k v2 NX", "SET k v3 XX", "GET k", "SET k v NX XX",
		"SET k v EX 0", "SET k v EX -1", "SET k v EX abc", "SET k v EX 10 PX 100",
		"SET k v KEEPTTL EX 10", "SET k v EX", "SET k v BAD", "SET k v GET", "SET nokey v GET",
		"SET k v EX 9223372036854775807", "SET k v PX 9223372036854775807",
		"SET k v EX 9223372036854775", "SET k v EXAT 1", "GET k", "SET k v2 NX GET", "GET k",
		"SET k v3 XX GET", "GET k", "set k lower", "GET k", "SET k v PXAT 1", "EXISTS k",
		"SET e ''", "GET e", "STRLEN e",
	}},
	{"ttl edges", []step{
		"SET k v", "TTL k", "PTTL k", "TTL missing", "PTTL missing", "EXPIRE k 100", "TTL k",
		"EXPIRE k 100 NX", "EXPIRE k 200 XX", "TTL k", "EXPIRE k 50 GT", "EXPIRE k 50 LT", "TTL k",
		"EXPIRE k 10 NX XX", "EXPIRE k 10 GT LT", "EXPIRE k 10 FOO", "EXPIRE k 10 nx",
		"PERSIST k", "TTL k", "PERSIST k", "PERSIST missing", "EXPIRE k 100 GT", "EXPIRE k 100 LT", "TTL k",
		"EXPIRE k 0", "EXISTS k", "SET k v", "EXPIRE k -5", "GET k", "EXPIRE missing 10",
		"SET k v EX 100", "SET k v2 KEEPTTL", "TTL k", "SET k v3", "TTL k",
		"SETEX k 0 v", "SETEX k -1 v", "SETEX k abc v", "SETEX k 100 v", "TTL k", "PSETEX k 0 v", "PSETEX k 100000 v", "TTL k",
		"EXPIRE k 9223372036854775807", "PEXPIRE k 9223372036854775807", "EXPIRE k abc",
		"EXPIREAT k 1", "EXISTS k", "SET k v", "PEXPIREAT k 1", "EXISTS k",
		"SET k v", "EXPIRE k 100", "INCR n", "EXPIRE n 100", "INCR n", "TTL n", "APPEND n 5", "TTL n",
		"GETSET n 1", "TTL n", "EXPIRE", "TTL", "TTL a b",
	}},
	{"getex", []step{
		"SET k v", "GETEX k", "GETEX k EX 100", "TTL k", "GETEX k PERSIST", "TTL k", "GETEX k EX 0",
		"GETEX k PX 100 PERSIST", "GETEX k NX", "GETEX missing", "GETEX missing EX 10", "GETEX k EXAT 1", "EXISTS k",
		"HSET h f v", "GETEX h",
	}},
	{"integers", []step{
		"SET k abc", "INCR k", "SET k 1.5", "INCR k", "SET k 01", "INCR k", "SET k +1", "INCR k",
		"SET k _1", "INCR k", "SET k ''", "INCR k", "SET k -0", "INCR k",
		"SET k 9223372036854775807", "INCR k", "INCRBY k 1", "INCRBY k -1", "GET k",
		"SET k -9223372036854775808", "DECR k", "DECRBY k 1", "INCRBY k -1",
		"DECRBY k -9223372036854775808", "DECRBY n -9223372036854775808", "INCRBY k abc", "INCRBY k 1.0",
		"INCRBY k 99999999999999999999", "SET n 10", "INCRBY n 5", "DECRBY n 3", "DECR n", "GET n", "INCR newkey", "DECR newkey2",
		"INCR", "INCRBY n",
	}},
	{"incrbyfloat", []step{
		"SET f 10.50", "INCRBYFLOAT f 0.1", "INCRBYFLOAT f -5", "INCRBYFLOAT f 5.0e3", "INCRBYFLOAT f abc",
		"INCRBYFLOAT f inf", "INCRBYFLOAT f nan", "INCRBYFLOAT f _1", "SET g abc", "INCRBYFLOAT g 1",
		"INCRBYFLOAT new 0.1", "INCRBYFLOAT new 0.2", "SET h 3", "INCRBYFLOAT h 1.5", "INCRBYFLOAT h -4.5",
		"INCRBYFLOAT x 1e-5", "INCRBYFLOAT y 3.0000000000000001", "INCRBYFLOAT y 0x10", "INCRBYFLOAT y 1_0",
		"HSET hh f 1", "INCRBYFLOAT hh 1", "INCRBYFLOAT z ''",
	}},
	{"wrongtype", []step{
		"HSET h f v", "GET h", "SET h x GET", "INCR h", "INCRBY h 2", "DECR h", "APPEND h x", "STRLEN h", "GETDEL h",
		"GETSET h x", "SET s v", "HGET s f", "HSET s f v", "HSETNX s f v", "HGETALL s", "HKEYS s", "HVALS s", "HLEN s",
		"HDEL s f", "HEXISTS s f", "HMGET s f", "HINCRBY s f 1", "HINCRBYFLOAT s f 1", "HSTRLEN s f",
		"MGET h s missing", "TYPE h", "TYPE s", "TYPE missing", "SET h x", "TYPE h", "GET h",
	}},
	{"hashes", []step{
		"HSET h a 1 b 2", "HSET h a 3 c 4", "HGET h a", "HMGET h a b zz", "HLEN h", "HEXISTS h a", "HEXISTS h zz",
		"HSETNX h a 9", "HSETNX h d 9", "HDEL h a zz", "~ HKEYS h", "~ HVALS h", "~2 HGETALL h",
		"HINCRBY h b 10", "HINCRBY h new -5", "HINCRBY h c x", "HSET h s str", "HINCRBY h s 1",
		"HSET h big 9223372036854775807", "HINCRBY h big 1", "HINCRBYFLOAT h b 0.5", "HINCRBYFLOAT h s 1",
		"HINCRBYFLOAT h b x", "HSTRLEN h s", "HSTRLEN h zz", "HDEL h a b c d new s big", "EXISTS h",
		"HSET h f", "HMSET h f", "HMSET h f v", "HMSET h f v g", "HGET h f", "HGETALL missing", "HGET missing f",
		"HMGET missing a b", "HLEN missing", "HINCRBY nh f 3", "HINCRBYFLOAT nh g 1.25", "~2 HGETALL nh",
		"HINCRBY x f abc", "EXISTS x", "HDEL nh f g", "EXISTS nh",
	}},
	{"strings and keys", []step{
		"SET a hello", "APPEND a _world", "GET a", "STRLEN a", "STRLEN missing", "APPEND new x", "GETSET a x",
		"GETSET missing v", "GETDEL a", "GETDEL a", "SETNX a 1", "SETNX a 2", "GET a", "MSET a 1 b 2 c 3",
		"MGET a b c d", "MSETNX a 1 x 2", "MSETNX x 1 y 2", "MGET x y", "MSET a", "MSETNX a", "DEL a b missing",
		"UNLINK c x", "EXISTS y y missing", "RENAME y z", "GET z", "RENAME missing q", "RENAME z z", "RENAMENX z z",
		"SET t v EX 100", "RENAME t u", "TTL u", "RENAMENX u z", "RENAMENX u w", "GET w", "DBSIZE",
		"SET x 1", "RENAME w x", "GET x", "TTL x",
	}},
	{"keys patterns", []step{
		"MSET user:1 a user:2 b post:1 c post:22 d u[x] e", "~ KEYS user:*", "~ KEYS *", "KEYS post?1",
		"~ KEYS [up]*", "~ KEYS *:?", "~ KEYS [^u]*", "~ KEYS post:[0-9][0-9]", "~ KEYS u\\[*", "~ KEYS [a-z]???:1",
		"KEYS nomatch*", "~ KEYS *1", "~ KEYS [z-a]*", "SCAN abc", "SCAN 0 COUNT 0", "SCAN 0 COUNT x",
		"SCAN 0 FOO bar", "SCAN 0 MATCH",
	}},
	{"connection and errors", []step{
		"FOO", "FOO a b", "foo a_b", "GET", "GET a b", "SET a", "PING", "PING hi", "PING a b", "ECHO hi", "ECHO",
		"SELECT 16", "SELECT -1", "SELECT x", "SELECT 1", "SET a in1", "DBSIZE", "SELECT 0", "GET a", "SELECT 1",
		"GET a", "FLUSHDB", "SELECT 0", "DBSIZE", "AUTH x", "AUTH default x", "AUTH a b c d", "AUTH nobody x",
		"CLIENT SETNAME foo", "CLIENT GETNAME", "CLIENT SETNAME a_b", "CLIENT GETNAME", "CLIENT FOO",
		"CLIENT SETNAME", "FLUSHDB x", "FLUSHALL x", "HELLO x", "HELLO 4", "HELLO 2 FOO", "DBSIZE", "FLUSHALL", "DBSIZE",
	}},
}

// TestRedisCLIEveryCommand sends every compared command through redis-cli
// (its stdin mode, one process per case) to redis-server and to the KV
// store, and requires the same printed output.
func TestRedisCLIEveryCommand(t *testing.T) {
	cli := needProgram(t, "redis-cli")
	redisAddr := startRedis(t)
	srv := startKV(t, kv.Config{})
	run := func(addr string, steps []step) string {
		host, port, _ := net.SplitHostPort(addr)
		var in strings.Builder
		in.WriteString("SELECT 0\nFLUSHALL\n")
		for _, s := range steps {
			args, pairs := s.args()
			if pairs > 0 {
				continue // unordered replies print differently
			}
			for i, a := range args {
				if i > 0 {
					in.WriteByte(' ')
				}
				in.WriteString(strconv.Quote(a))
			}
			in.WriteByte('\n')
		}
		out, err := execInput([]byte(in.String()), cli, "-h", host, "-p", port)
		if err != nil {
			t.Fatalf("redis-cli: %v\n%s", err, out)
		}
		return out
	}
	for _, tc := range compareCases {
		t.Run(tc.name, func(t *testing.T) {
			want, got := run(redisAddr, tc.steps), run(srv.Addr().String(), tc.steps)
			if want != got {
				wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
				for i := range wl {
					if i >= len(gl) || wl[i] != gl[i] {
						t.Fatalf("first difference at output line %d:\n redis: %q\n ephpm: %q", i+1, wl[i], gl[min(i, len(gl)-1)])
					}
				}
				t.Fatalf("ephpm printed more:\n%s", got)
			}
			if !strings.Contains(got, "OK") {
				t.Fatalf("suspicious output:\n%s", got)
			}
		})
	}
}
