package kv_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ephpm/ephpm/kv"
)

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  kv.Config
		ok   bool
	}{
		{"loopback", kv.Config{Listen: "127.0.0.1:0"}, true},
		{"localhost", kv.Config{Listen: "localhost:0"}, true},
		{"ipv6 loopback", kv.Config{Listen: "[::1]:0"}, true},
		{"socket only", kv.Config{Socket: "/tmp/x.sock"}, true},
		{"all interfaces refused", kv.Config{Listen: "0.0.0.0:6379"}, false},
		{"empty host refused", kv.Config{Listen: ":6379"}, false},
		{"remote allowed", kv.Config{Listen: "0.0.0.0:0", AllowRemote: true}, true},
		{"nothing to listen on", kv.Config{}, false},
		{"bad eviction", kv.Config{Listen: "127.0.0.1:0", Eviction: "volatile-lru"}, false},
		{"noeviction", kv.Config{Listen: "127.0.0.1:0", Eviction: "noeviction"}, true},
		{"password and auth", kv.Config{Listen: "127.0.0.1:0", Password: "x", Auth: func(u, p string) (string, int64, bool) { return "", 0, false }}, false},
		{"negative memory", kv.Config{Listen: "127.0.0.1:0", MemoryLimit: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kv.New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New(%+v) err = %v, want ok=%v", tc.cfg, err, tc.ok)
			}
		})
	}
}

// TestMalformedInput: bad framing gets Redis's protocol error and a closed
// connection; huge claimed lengths are never allocated; the server lives on.
func TestMalformedInput(t *testing.T) {
	srv := startKV(t, kv.Config{})
	addr := srv.Addr().String()
	cases := []struct {
		name  string
		input string
		want  string // prefix of the first reply
	}{
		{"bulk length 2^40", "*2\r\n$3\r\nGET\r\n$1099511627776\r\n", "-ERR Protocol error: invalid bulk length"},
		{"512 MB argument", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nxxxx", "-ERR Protocol error: invalid bulk length"},
		{"negative bulk", "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length"},
		{"multibulk 2^40", "*1099511627776\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"bad multibulk", "*x\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"missing dollar", "*1\r\n:3\r\n", "-ERR Protocol error: expected '$', got ':'"},
		{"bulk without crlf", "*1\r\n$3\r\nGETXX", "-ERR Protocol error: invalid bulk length"},
		{"overlong digits", "*1\r\n$99999999999999999999999\r\n", "-ERR Protocol error: invalid bulk length"},
		{"huge inline", strings.Repeat("A", 70<<10), "-ERR Protocol error: too big inline request"},
		{"unterminated length line", "*" + strings.Repeat("1", 70<<10), "-ERR Protocol error: invalid multibulk length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			c := dial(t, addr)
			if _, err := io.WriteString(c.nc, tc.input); err != nil {
				t.Fatal(err)
			}
			line, _ := c.br.ReadString('\n')
			if !strings.HasPrefix(line, tc.want) {
				t.Fatalf("reply %q, want prefix %q", line, tc.want)
			}
			// EOF, or a reset when unread input was pending at close.
			if _, err := c.br.ReadByte(); err == nil {
				t.Fatal("connection not closed after protocol error")
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := int64(after.TotalAlloc) - int64(before.TotalAlloc); grew > 32<<20 {
				t.Fatalf("allocated %d bytes for a claimed length", grew)
			}
			if r := dial(t, addr).Do("PING"); r != "+PONG" {
				t.Fatalf("server not serving after bad input: %q", r)
			}
		})
	}
}

// TestLargeArgumentArrivingSlowly: a claimed bulk that is within limits but
// never fully sent is buffered only as far as bytes arrive.
func TestLargeArgumentArrivingSlowly(t *testing.T) {
	srv := startKV(t, kv.Config{MaxBulkLen: 8 << 20})
	c := dial(t, srv.Addr().String())
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	io.WriteString(c.nc, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8000000\r\n"+strings.Repeat("x", 1000))
	// A second client proves the server is responsive meanwhile.
	if r := dial(t, srv.Addr().String()).Do("PING"); r != "+PONG" {
		t.Fatal(r)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.TotalAlloc) - int64(before.TotalAlloc); grew > 4<<20 {
		t.Fatalf("allocated %d bytes before the argument arrived", grew)
	}
	io.WriteString(c.nc, strings.Repeat("x", 8000000-1000)+"\r\n")
	if r := c.Read(); r != "+OK" {
		t.Fatalf("SET of 8 MB: %q", r)
	}
	if r := c.Do("STRLEN", "k"); r != ":8000000" {
		t.Fatalf("STRLEN: %q", r)
	}
}

// TestPipelining sends 10,000 commands in one write and reads the replies
// in order.
func TestPipelining(t *testing.T) {
	srv := startKV(t, kv.Config{})
	c := dial(t, srv.Addr().String())
	const n = 10000
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		buf.Write(encode("SET", "k"+strconv.Itoa(i), strconv.Itoa(i)))
		buf.Write(encode("INCR", "k"+strconv.Itoa(i)))
	}
	buf.WriteString("PING\r\n") // inline commands mix with multibulk
	go c.nc.Write(buf.Bytes())
	for i := 0; i < n; i++ {
		if r := c.Read(); r != "+OK" {
			t.Fatalf("reply %d: %q", 2*i, r)
		}
		if r := c.Read(); r != ":"+strconv.Itoa(i+1) {
			t.Fatalf("reply %d: %q", 2*i+1, r)
		}
	}
	if r := c.Read(); r != "+PONG" {
		t.Fatalf("inline PING: %q", r)
	}
	if r := c.Do("DBSIZE"); r != ":10000" {
		t.Fatalf("DBSIZE %q", r)
	}
}

func TestUnixSocketAndRedisCLI(t *testing.T) {
	cli := needProgram(t, "redis-cli")
	sock := filepath.Join(t.TempDir(), "kv.sock")
	srv := startKV(t, kv.Config{Listen: "127.0.0.1:0", Socket: sock})
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"set over socket", []string{"-s", sock, "SET", "greeting", "hello world"}, "OK"},
		{"get over tcp", []string{"-p", port, "GET", "greeting"}, "hello world"},
		{"hset", []string{"-s", sock, "HSET", "h", "a", "1", "b", "2"}, "2"},
		{"hgetall", []string{"-s", sock, "HGET", "h", "b"}, "2"},
		{"incr", []string{"-p", port, "INCR", "n"}, "1"},
		{"ttl", []string{"-p", port, "TTL", "n"}, "-1"},
		{"dbsize", []string{"-p", port, "DBSIZE"}, "3"},
		{"keys", []string{"-p", port, "KEYS", "gr*"}, "greeting"},
		{"unknown", []string{"-p", port, "NOPE", "x"}, "ERR unknown command 'NOPE', with args beginning with: 'x'"},
		{"wrongtype", []string{"-p", port, "GET", "h"}, "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{"info keyspace", []string{"-p", port, "INFO", "keyspace"}, "# Keyspace\ndb0:keys=3,expires=0,avg_ttl=0"},
		{"scan", []string{"-p", port, "--scan", "--pattern", "h*"}, "h"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := execOutput(cli, tc.args...)
			if err != nil {
				t.Fatalf("redis-cli %v: %v\n%s", tc.args, err, out)
			}
			if strings.TrimSpace(strings.ReplaceAll(out, "\r", "")) != tc.want {
				t.Fatalf("redis-cli %v = %q, want %q", tc.args, out, tc.want)
			}
		})
	}
	// redis-cli's pipe mode sends raw RESP and checks every reply.
	t.Run("pipe mode", func(t *testing.T) {
		var in bytes.Buffer
		for i := 0; i < 1000; i++ {
			in.Write(encode("SET", fmt.Sprintf("p%d", i), "v"))
		}
		out, err := execInput(in.Bytes(), cli, "-p", port, "--pipe")
		if err != nil || !strings.Contains(out, "errors: 0, replies: 1000") {
			t.Fatalf("--pipe: %v\n%s", err, out)
		}
	})
}

func TestMaxConnections(t *testing.T) {
	srv := startKV(t, kv.Config{MaxConnections: 2})
	addr := srv.Addr().String()
	a, b := dial(t, addr), dial(t, addr)
	for _, c := range []*client{a, b} {
		if r := c.Do("PING"); r != "+PONG" {
			t.Fatal(r)
		}
	}
	if r := dial(t, addr).Read(); r != "-ERR max number of clients reached" {
		t.Fatalf("third client got %q", r)
	}
	a.Do("QUIT")
	waitFor(t, 5*time.Second, "a slot to free", func() bool {
		return dial(t, addr).Do("PING") == "+PONG"
	})
}

// TestPasswordMode: single keyspace with requirepass.
func TestPasswordMode(t *testing.T) {
	srv := startKV(t, kv.Config{Password: "s3cret"})
	c := dial(t, srv.Addr().String())
	steps := []struct{ cmd, want string }{
		{"GET k", "-NOAUTH Authentication required."},
		{"PING", "-NOAUTH Authentication required."},
		{"HELLO 2", "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"},
		{"AUTH wrong", "-WRONGPASS invalid username-password pair or user is disabled."},
		{"AUTH other s3cret", "-WRONGPASS invalid username-password pair or user is disabled."},
		{"AUTH s3cret", "+OK"},
		{"SET k v", "+OK"},
		{"AUTH default s3cret", "+OK"},
		{"GET k", "$v"},
	}
	for _, s := range steps {
		if r := c.Do(strings.Fields(s.cmd)...); r != s.want {
			t.Fatalf("%s = %q, want %q", s.cmd, r, s.want)
		}
	}
	h := dial(t, srv.Addr().String())
	if r := h.Do("HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "me"); !strings.HasPrefix(r, "*[$server, $redis, $version") {
		t.Fatalf("HELLO AUTH: %q", r)
	}
	if r := h.Do("CLIENT", "GETNAME"); r != "$me" {
		t.Fatalf("name after HELLO SETNAME: %q", r)
	}
}

func sites() func(user, pass string) (string, int64, bool) {
	return func(user, pass string) (string, int64, bool) {
		switch {
		case user == "alice" && pass == "pa":
			return "alice.example", 0, true
		case user == "bob" && pass == "pb":
			return "bob.example", 0, true
		}
		return "", 0, false
	}
}

// TestSiteIsolation: a client authenticated as one site sees only that
// site's keys, whatever command it uses.
func TestSiteIsolation(t *testing.T) {
	srv := startKV(t, kv.Config{Auth: sites()})
	addr := srv.Addr().String()
	anon, alice, bob := dial(t, addr), dial(t, addr), dial(t, addr)
	if r := anon.Do("GET", "k"); r != "-NOAUTH Authentication required." {
		t.Fatalf("unauthenticated GET: %q", r)
	}
	if r := anon.Do("AUTH", "alice", "pb"); !strings.HasPrefix(r, "-WRONGPASS") {
		t.Fatalf("wrong password: %q", r)
	}
	if r := alice.Do("AUTH", "alice", "pa"); r != "+OK" {
		t.Fatal(r)
	}
	if r := bob.Do("HELLO", "2", "AUTH", "bob", "pb"); !strings.HasPrefix(r, "*[") {
		t.Fatal(r)
	}
	alice.Do("MSET", "a1", "x", "a2", "y", "shared", "alice")
	alice.Do("SELECT", "3")
	alice.Do("SET", "a-db3", "z")
	alice.Do("SELECT", "0")
	bob.Do("SET", "shared", "bob")
	bob.Do("HSET", "bh", "f", "v")

	steps := []struct {
		c          *client
		cmd, want  string
		sortResult bool
	}{
		{alice, "GET shared", "$alice", false},
		{bob, "GET shared", "$bob", false},
		{bob, "GET a1", "$nil", false},
		{bob, "KEYS *", "*[$bh, $shared]", true},
		{alice, "KEYS *", "*[$a1, $a2, $shared]", true},
		{bob, "SCAN 0 COUNT 1000", "*[$0, *[$bh, $shared]]", false},
		{bob, "DBSIZE", ":2", false},
		{bob, "EXISTS a1 a2", ":0", false},
		{bob, "FLUSHALL", "+OK", false},
		{alice, "DBSIZE", ":3", false},
		{alice, "SELECT 3", "+OK", false},
		{alice, "GET a-db3", "$z", false},
		{bob, "SELECT 3", "+OK", false},
		{bob, "GET a-db3", "$nil", false},
		{alice, "FLUSHDB", "+OK", false},
		{alice, "SELECT 0", "+OK", false},
		{alice, "DBSIZE", ":3", false},
	}
	for _, s := range steps {
		r := s.c.Do(strings.Fields(s.cmd)...)
		if s.sortResult {
			r = sortedArray(r, 1)
		}
		if strings.HasPrefix(s.cmd, "SCAN") {
			r = sortScan(r)
		}
		if r != s.want {
			t.Fatalf("%s = %q, want %q", s.cmd, r, s.want)
		}
	}
	// A removed site's keys are gone and its memory freed.
	bob.Do("SELECT", "0")
	if r := bob.Do("SET", "shared", "bob2"); r != "+OK" {
		t.Fatal(r)
	}
	if r := dial(t, addr).Do("AUTH", "bob", "pb"); r != "+OK" {
		t.Fatal(r)
	}
	srv.DropKeyspace("bob.example")
	fresh := dial(t, addr)
	fresh.Do("AUTH", "bob", "pb")
	if r := fresh.Do("GET", "shared"); r != "$nil" {
		t.Fatalf("after DropKeyspace: %q", r)
	}
	if r := fresh.Do("INFO", "memory"); infoInt(t, strings.TrimPrefix(r, "$"), "used_memory") != 0 {
		t.Fatalf("dropped keyspace memory: %q", r)
	}
	// Re-authenticating switches keyspace.
	if r := alice.Do("AUTH", "bob", "pb"); r != "+OK" {
		t.Fatal(r)
	}
	if r := alice.Do("GET", "a1"); r != "$nil" {
		t.Fatalf("after AUTH as bob: %q", r)
	}
}

func sortScan(r string) string {
	cur, rest, ok := strings.Cut(strings.TrimPrefix(r, "*["), ", ")
	if !ok {
		return r
	}
	return "*[" + cur + ", " + sortedArray(strings.TrimSuffix(rest, "]"), 1) + "]"
}

// TestScanCoversAllKeys: SCAN returns every key exactly as a full walk,
// with cursors across many calls, and honours MATCH.
func TestScanCoversAllKeys(t *testing.T) {
	srv := startKV(t, kv.Config{})
	c := dial(t, srv.Addr().String())
	const n = 5000
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		buf.Write(encode("SET", fmt.Sprintf("key:%d", i), "v"))
	}
	c.nc.Write(buf.Bytes())
	for i := 0; i < n; i++ {
		c.Read()
	}
	seen := map[string]int{}
	cursor, calls := "0", 0
	for {
		calls++
		r, err := scanOnce(c, cursor, "key:1*", "50")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range r.keys {
			seen[k]++
		}
		if cursor = r.cursor; cursor == "0" {
			break
		}
		if calls > 10000 {
			t.Fatal("SCAN does not terminate")
		}
	}
	want := 0
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key:%d", i)
		if strings.HasPrefix(k, "key:1") {
			want++
			if seen[k] != 1 {
				t.Fatalf("%s seen %d times", k, seen[k])
			}
		}
	}
	if len(seen) != want {
		t.Fatalf("SCAN returned %d keys, want %d", len(seen), want)
	}
	if calls < 3 {
		t.Fatalf("SCAN took %d calls: COUNT ignored", calls)
	}
	// Redis parses the cursor with strtoul: -1 is a valid (huge) cursor.
	if r := c.Do("SCAN", "-1"); !strings.HasPrefix(r, "*[$0, ") {
		t.Fatalf("SCAN -1 = %q", r)
	}
}

type scanReply struct {
	cursor string
	keys   []string
}

func scanOnce(c *client, cursor, match, count string) (scanReply, error) {
	c.nc.Write(encode("SCAN", cursor, "MATCH", match, "COUNT", count))
	br := c.br
	// *2 $cursor *n ...
	line, err := br.ReadString('\n')
	if err != nil || line != "*2\r\n" {
		return scanReply{}, fmt.Errorf("scan header %q %v", line, err)
	}
	cur, err := readReply(br)
	if err != nil {
		return scanReply{}, err
	}
	line, _ = br.ReadString('\n')
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	r := scanReply{cursor: strings.TrimPrefix(cur, "$")}
	for i := 0; i < n; i++ {
		k, err := readReply(br)
		if err != nil {
			return r, err
		}
		r.keys = append(r.keys, strings.TrimPrefix(k, "$"))
	}
	return r, nil
}

// TestActiveExpiry: keys nobody touches again still leave memory.
func TestActiveExpiry(t *testing.T) {
	srv := startKV(t, kv.Config{})
	c := dial(t, srv.Addr().String())
	var buf bytes.Buffer
	for i := 0; i < 2000; i++ {
		buf.Write(encode("SET", fmt.Sprintf("tmp:%d", i), strings.Repeat("x", 100), "PX", "50"))
	}
	buf.Write(encode("SET", "keep", "v"))
	c.nc.Write(buf.Bytes())
	for i := 0; i < 2001; i++ {
		c.Read()
	}
	waitFor(t, 10*time.Second, "active expiry", func() bool {
		info := strings.TrimPrefix(c.Do("INFO"), "$")
		return infoInt(t, info, "expired_keys") == 2000 && c.Do("DBSIZE") == ":1"
	})
	info := strings.TrimPrefix(c.Do("INFO", "memory"), "$")
	if used := infoInt(t, info, "used_memory"); used > 1000 {
		t.Fatalf("used_memory %d after expiry", used)
	}
}

// TestEvictionUnderWriteFlood: allkeys-lru keeps memory under the limit,
// counts evictions in INFO and /metrics, and prefers cold keys.
func TestEvictionUnderWriteFlood(t *testing.T) {
	reg := prometheus.NewRegistry()
	const limit = 4 << 20
	srv := startKV(t, kv.Config{MemoryLimit: limit, Registerer: reg})
	c := dial(t, srv.Addr().String())
	val := strings.Repeat("v", 1000)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// 64 MB of writes into a 4 MB cache.
	for batch := 0; batch < 64; batch++ {
		var buf bytes.Buffer
		for i := 0; i < 1000; i++ {
			buf.Write(encode("SET", fmt.Sprintf("k:%d:%d", batch, i), val))
			if i%100 == 0 {
				// A key read all the time should survive as a hot key.
				buf.Write(encode("SET", "hot", "1", "NX"))
				buf.Write(encode("GET", "hot"))
			}
		}
		c.nc.Write(buf.Bytes())
		for i := 0; i < 1000; i++ {
			if r := c.Read(); r != "+OK" {
				t.Fatalf("SET under pressure: %q", r)
			}
			if i%100 == 0 {
				c.Read()
				if r := c.Read(); r != "$1" {
					t.Fatalf("hot key evicted: %q", r)
				}
			}
		}
	}
	info := strings.TrimPrefix(c.Do("INFO"), "$")
	used := infoInt(t, info, "used_memory")
	evicted := infoInt(t, info, "evicted_keys")
	if used > limit+4096 {
		t.Fatalf("used_memory %d over limit %d", used, limit)
	}
	if evicted < 50000 {
		t.Fatalf("evicted_keys %d, want most of 64000", evicted)
	}
	if infoInt(t, info, "maxmemory") != limit {
		t.Fatalf("maxmemory %q", infoField(info, "maxmemory"))
	}
	if r := c.Do("GET", "hot"); r != "$1" {
		t.Fatalf("hot key evicted: %q", r)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 4*limit {
		t.Fatalf("heap grew %d bytes for a %d byte cache", grew, limit)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	metrics := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if m.Counter != nil {
			metrics[mf.GetName()] = m.Counter.GetValue()
		} else if m.Gauge != nil {
			metrics[mf.GetName()] = m.Gauge.GetValue()
		}
	}
	if metrics["ephpm_kv_evicted_keys_total"] != float64(evicted) {
		t.Fatalf("metric evicted %v, INFO %d", metrics["ephpm_kv_evicted_keys_total"], evicted)
	}
	if m := metrics["ephpm_kv_memory_used_bytes"]; m != float64(used) || m == 0 {
		t.Fatalf("metric memory %v, INFO %d", m, used)
	}
}

func TestNoEviction(t *testing.T) {
	srv := startKV(t, kv.Config{MemoryLimit: 1 << 20, Eviction: "noeviction"})
	c := dial(t, srv.Addr().String())
	val := strings.Repeat("v", 1000)
	var oom string
	i := 0
	for ; i < 5000; i++ {
		if r := c.Do("SET", fmt.Sprintf("k%d", i), val); r != "+OK" {
			oom = r
			break
		}
	}
	if oom != "-OOM command not allowed when used memory > 'maxmemory'." {
		t.Fatalf("after %d writes: %q", i, oom)
	}
	if r := c.Do("GET", "k0"); r != "$"+val {
		t.Fatal("reads must still work when full")
	}
	if r := c.Do("HSET", "h", "f", "v"); !strings.HasPrefix(r, "-OOM") {
		t.Fatalf("HSET when full: %q", r)
	}
	for j := 0; j < 10; j++ {
		c.Do("DEL", fmt.Sprintf("k%d", j))
	}
	if r := c.Do("SET", "again", "v"); r != "+OK" {
		t.Fatalf("SET after DEL freed memory: %q", r)
	}
}

// TestSiteQuota: one site's quota evicts that site's keys, not another's.
func TestSiteQuota(t *testing.T) {
	srv := startKV(t, kv.Config{Auth: func(user, pass string) (string, int64, bool) {
		if user == "small" {
			return "small", 256 << 10, true
		}
		return "big", 0, true
	}})
	small, big := dial(t, srv.Addr().String()), dial(t, srv.Addr().String())
	small.Do("AUTH", "small", "x")
	big.Do("AUTH", "big", "x")
	val := strings.Repeat("v", 1000)
	for i := 0; i < 100; i++ {
		big.Do("SET", fmt.Sprintf("b%d", i), val)
	}
	for i := 0; i < 2000; i++ {
		small.Do("SET", fmt.Sprintf("s%d", i), val)
	}
	info := strings.TrimPrefix(small.Do("INFO"), "$")
	if used := infoInt(t, info, "used_memory"); used > 256<<10+2048 {
		t.Fatalf("small site uses %d over its quota", used)
	}
	if infoInt(t, info, "evicted_keys") == 0 {
		t.Fatal("no evictions counted for the site over quota")
	}
	if r := big.Do("DBSIZE"); r != ":100" {
		t.Fatalf("other site lost keys: %s", r)
	}
}

func TestCloseEndsConnectionsAndContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := kv.New(kv.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cancel()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	// Closed either way: EOF if the server had accepted it, a reset if
	// it was still in the listen queue when the listener closed.
	if _, err := bufio.NewReader(nc).ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection still open after ctx cancel: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		t.Fatal("still listening after Close")
	}
}

func TestInfoCounters(t *testing.T) {
	srv := startKV(t, kv.Config{MemoryLimit: 1 << 30})
	c := dial(t, srv.Addr().String())
	c.Do("SET", "a", "1")
	c.Do("GET", "a")
	c.Do("GET", "a")
	c.Do("GET", "missing")
	c.Do("SET", "t", "1", "PX", "1")
	waitFor(t, 5*time.Second, "t to expire", func() bool { return c.Do("GET", "t") == "$nil" })
	info := strings.TrimPrefix(c.Do("INFO"), "$")
	for _, f := range []struct {
		name string
		min  int64
	}{{"keyspace_hits", 2}, {"keyspace_misses", 2}, {"expired_keys", 1}, {"used_memory", 1}, {"maxmemory", 1 << 30}, {"evicted_keys", 0}, {"connected_clients", 1}, {"total_commands_processed", 6}} {
		if v := infoInt(t, info, f.name); v < f.min {
			t.Errorf("%s = %d, want >= %d", f.name, v, f.min)
		}
	}
	for _, s := range []string{"# Server", "# Memory", "# Stats", "# Keyspace", "redis_version:", "db0:keys=1,expires=0"} {
		if !strings.Contains(info, s) {
			t.Errorf("INFO lacks %q", s)
		}
	}
	if r := c.Do("INFO", "memory"); strings.Contains(r, "# Stats") || !strings.Contains(r, "# Memory") {
		t.Errorf("INFO memory = %q", r)
	}
}

// TestIdleConnectionsHoldNoBuffers: PHP workers keep persistent
// connections open; an idle one must not pin read or reply buffers.
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	srv := startKV(t, kv.Config{})
	const n = 400
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	buf := make([]byte, 7)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "PING\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "+PONG\r\n" {
			t.Fatalf("PING %d: %q %v", i, buf, err)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Client and server sides both live in this process; 32 KB of buffers
	// per connection would be 12.8 MB.
	if per := (int64(after.HeapInuse) - int64(before.HeapInuse)) / n; per > 8<<10 {
		t.Fatalf("%d bytes of heap per idle connection", per)
	}
}

// TestConcurrentClientsAcrossLoops: clients spread over several event
// loops update one counter and their own keys; nothing is lost.
func TestConcurrentClientsAcrossLoops(t *testing.T) {
	srv := startKV(t, kv.Config{Loops: 3})
	const clients, n = 8, 500
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		go func(i int) {
			nc, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			var buf bytes.Buffer
			for j := 0; j < n; j++ {
				buf.Write(encode("INCR", "counter"))
				buf.Write(encode("HINCRBY", "h", "f", "2"))
				buf.Write(encode("SET", fmt.Sprintf("c%d:%d", i, j), strconv.Itoa(j)))
			}
			go nc.Write(buf.Bytes())
			br := bufio.NewReader(nc)
			for j := 0; j < 3*n; j++ {
				if r, err := readReply(br); err != nil || strings.HasPrefix(r, "-") {
					errs <- fmt.Errorf("client %d reply %d: %q %v", i, j, r, err)
					return
				}
			}
			errs <- nil
		}(i)
	}
	for i := 0; i < clients; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, srv.Addr().String())
	if r := c.Do("GET", "counter"); r != "$"+strconv.Itoa(clients*n) {
		t.Fatalf("counter = %q, want %d", r, clients*n)
	}
	if r := c.Do("HGET", "h", "f"); r != "$"+strconv.Itoa(2*clients*n) {
		t.Fatalf("hash counter = %q", r)
	}
	if r := c.Do("DBSIZE"); r != ":"+strconv.Itoa(clients*n+2) {
		t.Fatalf("DBSIZE = %q", r)
	}
}

// TestConcurrentEviction: writers on several loops evict each other's
// keys while readers touch them; run under -race in CI.
func TestConcurrentEviction(t *testing.T) {
	const limit = 512 << 10
	srv := startKV(t, kv.Config{Loops: 3, MemoryLimit: limit})
	const clients, n = 4, 2000
	errs := make(chan error, clients)
	val := strings.Repeat("x", 500)
	for i := 0; i < clients; i++ {
		go func(i int) {
			nc, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			var buf bytes.Buffer
			for j := 0; j < n; j++ {
				buf.Write(encode("SET", fmt.Sprintf("k%d", (i*n+j)%3000), val))
				buf.Write(encode("GET", fmt.Sprintf("k%d", j%3000)))
			}
			go nc.Write(buf.Bytes())
			br := bufio.NewReader(nc)
			for j := 0; j < 2*n; j++ {
				if r, err := readReply(br); err != nil || strings.HasPrefix(r, "-") {
					errs <- fmt.Errorf("client %d reply %d: %.40q %v", i, j, r, err)
					return
				}
			}
			errs <- nil
		}(i)
	}
	for i := 0; i < clients; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	info := strings.TrimPrefix(dial(t, srv.Addr().String()).Do("INFO"), "$")
	if used := infoInt(t, info, "used_memory"); used > limit+4096 {
		t.Fatalf("used_memory %d over %d", used, limit)
	}
	if infoInt(t, info, "evicted_keys") == 0 {
		t.Fatal("no evictions")
	}
}

// TestSlowReaderBoundsReplies: a client that pipelines GETs of a big value
// and does not read makes the server stop, not buffer every reply.
func TestSlowReaderBoundsReplies(t *testing.T) {
	srv := startKV(t, kv.Config{})
	c := dial(t, srv.Addr().String())
	big := strings.Repeat("b", 100<<10)
	if r := c.Do("SET", "big", big); r != "+OK" {
		t.Fatal(r)
	}
	const n = 2000 // 200 MB of replies
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		buf.Write(encode("GET", "big"))
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go c.nc.Write(buf.Bytes())
	var peak uint64
	// Sample the heap for a while: nothing to wait for, the server must
	// simply never grow much.
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	if grew := int64(peak) - int64(before.HeapInuse); grew > 32<<20 {
		t.Fatalf("heap grew %d MB while the client was not reading", grew>>20)
	}
	for i := 0; i < n; i++ {
		if r := c.Read(); len(r) != len(big)+1 {
			t.Fatalf("reply %d: %d bytes", i, len(r))
		}
	}
}

// TestAppendStopsAtMaxBulkLen: APPEND cannot build a value bigger than one
// argument may be, as Redis's proto-max-bulk-len check.
func TestAppendStopsAtMaxBulkLen(t *testing.T) {
	srv := startKV(t, kv.Config{MaxBulkLen: 1 << 10})
	c := dial(t, srv.Addr().String())
	chunk := strings.Repeat("a", 600)
	if r := c.Do("APPEND", "k", chunk); r != ":600" {
		t.Fatal(r)
	}
	if r := c.Do("APPEND", "k", chunk); r != "-ERR string exceeds maximum allowed size (proto-max-bulk-len)" {
		t.Fatalf("APPEND past the limit: %q", r)
	}
	if r := c.Do("STRLEN", "k"); r != ":600" {
		t.Fatalf("value changed by a refused APPEND: %q", r)
	}
	if _, err := kv.New(kv.Config{Listen: "127.0.0.1:0", MaxBulkLen: 4 << 30}); err == nil {
		t.Fatal("MaxBulkLen of 4 GB accepted")
	}
}
