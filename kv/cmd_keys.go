package kv

import (
	"math"
	"strconv"
	"strings"
)

func cmdDel(c *conn, args [][]byte) {
	d := c.db
	var n int64
	for _, k := range args[1:] {
		sh := d.shardOf(k)
		sh.mu.Lock()
		if e := d.lookup(sh, k); e != nil {
			d.remove(sh, string(k), e)
			n++
		}
		sh.mu.Unlock()
	}
	c.wr.Int(n)
}

func cmdExists(c *conn, args [][]byte) {
	d := c.db
	var n int64
	for _, k := range args[1:] {
		sh := d.shardOf(k)
		sh.mu.Lock()
		if d.lookupRead(sh, k) != nil {
			n++
		}
		sh.mu.Unlock()
	}
	c.wr.Int(n)
}

// expire implements EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
func (c *conn) expire(args [][]byte, unitMs, abs bool, name string) {
	var nx, xx, gt, lt bool
	for _, o := range args[3:] {
		switch {
		case eq(o, "NX"):
			nx = true
		case eq(o, "XX"):
			xx = true
		case eq(o, "GT"):
			gt = true
		case eq(o, "LT"):
			lt = true
		default:
			c.wr.Error("ERR Unsupported option " + string(o))
			return
		}
	}
	if nx && (xx || gt || lt) {
		c.wr.Error("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if gt && lt {
		c.wr.Error("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := parseInt(args[2])
	if !ok {
		c.wr.Error(errNotInt)
		return
	}
	if !unitMs {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			c.wr.Error(errExpireTime(name))
			return
		}
		when *= 1000
	}
	var base int64
	if !abs {
		base = nowMs()
	}
	if when > math.MaxInt64-base {
		c.wr.Error(errExpireTime(name))
		return
	}
	when += base
	d := c.db
	sh := d.shardOf(args[1])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := d.lookup(sh, args[1])
	if e == nil {
		c.wr.Int(0)
		return
	}
	cur := e.exp
	if (nx && cur != 0) || (xx && cur == 0) || (gt && (cur == 0 || when <= cur)) || (lt && cur != 0 && when >= cur) {
		c.wr.Int(0)
		return
	}
	if when <= nowMs() {
		d.remove(sh, string(args[1]), e)
	} else {
		d.setExp(sh, args[1], e, when)
	}
	c.wr.Int(1)
}

func cmdExpire(c *conn, args [][]byte)    { c.expire(args, false, false, "expire") }
func cmdPExpire(c *conn, args [][]byte)   { c.expire(args, true, false, "pexpire") }
func cmdExpireAt(c *conn, args [][]byte)  { c.expire(args, false, true, "expireat") }
func cmdPExpireAt(c *conn, args [][]byte) { c.expire(args, true, true, "pexpireat") }

func (c *conn) ttl(key []byte, ms bool) {
	d := c.db
	sh := d.shardOf(key)
	sh.mu.Lock()
	e := d.lookupRead(sh, key)
	var exp int64 = -1
	if e != nil {
		exp = e.exp
	}
	sh.mu.Unlock()
	switch {
	case e == nil:
		c.wr.Int(-2)
	case exp == 0:
		c.wr.Int(-1)
	default:
		left := max(exp-nowMs(), 0)
		if !ms {
			left = (left + 500) / 1000
		}
		c.wr.Int(left)
	}
}

func cmdTTL(c *conn, args [][]byte)  { c.ttl(args[1], false) }
func cmdPTTL(c *conn, args [][]byte) { c.ttl(args[1], true) }

func cmdPersist(c *conn, args [][]byte) {
	d := c.db
	sh := d.shardOf(args[1])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := d.lookup(sh, args[1])
	if e == nil || e.exp == 0 {
		c.wr.Int(0)
		return
	}
	d.setExp(sh, args[1], e, 0)
	c.wr.Int(1)
}

func cmdType(c *conn, args [][]byte) {
	d := c.db
	sh := d.shardOf(args[1])
	sh.mu.Lock()
	e := d.lookup(sh, args[1])
	t := "none"
	if e != nil {
		t = e.typeName()
	}
	sh.mu.Unlock()
	c.wr.Simple(t)
}

func cmdKeys(c *conn, args [][]byte) {
	pat := args[1]
	all := len(pat) == 1 && pat[0] == '*'
	var keys []string
	for i := 0; i < numShards; i++ {
		c.db.scanStep(i, -1, func(k string) {
			if all || Match(pat, []byte(k)) {
				keys = append(keys, k)
			}
		})
	}
	c.wr.ArrayLen(len(keys))
	for _, k := range keys {
		c.wr.BulkString(k)
	}
}

// cmdScan walks (shard, part) steps; the cursor is the next step. A key
// present for the whole iteration is returned at least once, as Redis
// promises, because it always falls in the same step.
func cmdScan(c *conn, args [][]byte) {
	cur, err := parseCursor(string(args[1]))
	if err != nil {
		c.wr.Error(errInvalidCurs)
		return
	}
	count := 10
	var pat, typ []byte
	for i := 2; i < len(args); i++ {
		if i+1 >= len(args) {
			c.wr.Error(errSyntax)
			return
		}
		switch {
		case eq(args[i], "MATCH"):
			pat = args[i+1]
		case eq(args[i], "COUNT"):
			n, ok := parseInt(args[i+1])
			if !ok {
				c.wr.Error(errNotInt)
				return
			}
			if n < 1 {
				c.wr.Error(errSyntax)
				return
			}
			count = int(min(n, math.MaxInt32))
		case eq(args[i], "TYPE"):
			typ = args[i+1]
		default:
			c.wr.Error(errSyntax)
			return
		}
		i++
	}
	const steps = numShards * scanParts
	var keys []string
	step := cur
	for step < steps && len(keys) < count {
		c.db.scanStep(int(step/scanParts), int(step%scanParts), func(k string) {
			if pat != nil && !Match(pat, []byte(k)) {
				return
			}
			keys = append(keys, k)
		})
		step++
	}
	if typ != nil {
		keys = c.filterType(keys, string(typ))
	}
	if step >= steps {
		step = 0
	}
	c.wr.ArrayLen(2)
	c.wr.BulkString(strconv.FormatUint(step, 10))
	c.wr.ArrayLen(len(keys))
	for _, k := range keys {
		c.wr.BulkString(k)
	}
}

func (c *conn) filterType(keys []string, typ string) []string {
	out := keys[:0]
	for _, k := range keys {
		sh := c.db.shardOfString(k)
		sh.mu.Lock()
		if e := sh.m[k]; e != nil && eqFold(e.typeName(), typ) {
			out = append(out, k)
		}
		sh.mu.Unlock()
	}
	return out
}

func eqFold(a, b string) bool { return len(a) == len(b) && eq([]byte(b), upperASCII(a)) }

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

func cmdDBSize(c *conn, args [][]byte) {
	n, _ := c.db.counts()
	c.wr.Int(int64(n))
}

func flushMode(c *conn, args [][]byte) bool {
	if len(args) > 2 || (len(args) == 2 && !eq(args[1], "ASYNC") && !eq(args[1], "SYNC")) {
		c.wr.Error(errSyntax)
		return false
	}
	return true
}

func cmdFlushDB(c *conn, args [][]byte) {
	if !flushMode(c, args) {
		return
	}
	c.db.flush()
	c.wr.Simple("OK")
}

// cmdFlushAll empties every database of the client's own keyspace only:
// with sites, one site can never flush another's cache.
func cmdFlushAll(c *conn, args [][]byte) {
	if !flushMode(c, args) {
		return
	}
	c.site.flush()
	c.wr.Simple("OK")
}

func (c *conn) rename(args [][]byte, nx bool) {
	d := c.db
	src, dst := args[1], args[2]
	mask := d.keyMask(args[1:3], 1)
	d.lockMask(mask)
	defer d.unlockMask(mask)
	ssh, dsh := d.shardOf(src), d.shardOf(dst)
	e := d.lookup(ssh, src)
	if e == nil {
		c.wr.Error(errNoSuchKey)
		return
	}
	if string(src) == string(dst) {
		if nx {
			c.wr.Int(0)
		} else {
			c.wr.Simple("OK")
		}
		return
	}
	if old := d.lookup(dsh, dst); old != nil {
		if nx {
			c.wr.Int(0)
			return
		}
		d.remove(dsh, string(dst), old)
	}
	d.remove(ssh, string(src), e)
	d.insert(dsh, string(dst), e)
	if nx {
		c.wr.Int(1)
	} else {
		c.wr.Simple("OK")
	}
}

func cmdRename(c *conn, args [][]byte)   { c.rename(args, false) }
func cmdRenameNX(c *conn, args [][]byte) { c.rename(args, true) }

// parseCursor accepts what C's strtoul does (Redis parses with it): a
// negative cursor wraps around, which here simply means "past the end".
func parseCursor(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		n, err := strconv.ParseInt(s, 10, 64)
		return uint64(n), err
	}
	return strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, 64)
}
