package kv

import (
	"math"
	"strconv"
)

// lockHashFor locks key's shard and returns it with the hash at key for
// writing, created if absent; ok is false (and WRONGTYPE sent) if key
// holds a string. The caller unlocks sh in every case.
func (c *conn) lockHashFor(key []byte) (sh *shard, e *entry, ok bool) {
	d := c.db
	sh = d.shardOf(key)
	sh.mu.Lock()
	e = d.lookup(sh, key)
	if e == nil {
		e = &entry{}
		e.setHash(&hashVal{m: make(map[string]string)})
		d.insert(sh, string(key), e)
		return sh, e, true
	}
	if !e.isHash() {
		c.wr.Error(errWrongType)
		return sh, nil, false
	}
	return sh, e, true
}

// lockHash locks key's shard and returns it with the fields of the hash
// at key, read (a hit or a miss): nil if there is none. ok is false, and
// WRONGTYPE sent, when key holds a string. The caller unlocks sh in every
// case.
func (c *conn) lockHash(key []byte) (sh *shard, fields map[string]string, ok bool) {
	sh = c.db.shardOf(key)
	sh.mu.Lock()
	e := c.db.lookupRead(sh, key)
	if e == nil {
		return sh, nil, true
	}
	if !e.isHash() {
		c.wr.Error(errWrongType)
		return sh, nil, false
	}
	return sh, e.hash().m, true
}

// hset sets one field and reports whether it is new.
func (d *db) hset(e *entry, f, v []byte) bool {
	old, ok := e.hash().m[string(f)]
	if ok {
		e.hash().m[string(f)] = string(v)
		d.growHash(e, int64(len(v)-len(old)))
		return false
	}
	e.hash().m[string(f)] = string(v)
	d.growHash(e, int64(fieldOverhead+len(f)+len(v)))
	return true
}

// dropIfEmpty deletes a hash key whose last field went, as Redis does.
func (d *db) dropIfEmpty(sh *shard, key []byte, e *entry) {
	if len(e.hash().m) == 0 {
		d.remove(sh, string(key), e)
	}
}

func (c *conn) hsetMany(args [][]byte, name string, replyCount bool) {
	if len(args)%2 != 0 {
		c.wr.Error("ERR wrong number of arguments for '" + name + "' command")
		return
	}
	sh, e, ok := c.lockHashFor(args[1])
	defer sh.mu.Unlock()
	if !ok {
		return
	}
	var n int64
	for i := 2; i < len(args); i += 2 {
		if c.db.hset(e, args[i], args[i+1]) {
			n++
		}
	}
	if replyCount {
		c.wr.Int(n)
	} else {
		c.wr.Simple("OK")
	}
}

func cmdHSet(c *conn, args [][]byte)  { c.hsetMany(args, "hset", true) }
func cmdHMSet(c *conn, args [][]byte) { c.hsetMany(args, "hmset", false) }

func cmdHSetNX(c *conn, args [][]byte) {
	sh, e, ok := c.lockHashFor(args[1])
	defer sh.mu.Unlock()
	if !ok {
		return
	}
	if _, exists := e.hash().m[string(args[2])]; exists {
		c.wr.Int(0)
		return
	}
	c.db.hset(e, args[2], args[3])
	c.wr.Int(1)
}

func cmdHGet(c *conn, args [][]byte) {
	sh, fields, ok := c.lockHash(args[1])
	v, found := fields[string(args[2])]
	sh.mu.Unlock()
	switch {
	case !ok:
	case !found:
		c.wr.Null()
	default:
		c.wr.BulkString(v)
	}
}

func cmdHMGet(c *conn, args [][]byte) {
	sh, fields, ok := c.lockHash(args[1])
	defer sh.mu.Unlock()
	if !ok {
		return
	}
	c.wr.ArrayLen(len(args) - 2)
	for _, f := range args[2:] {
		if v, ok := fields[string(f)]; ok {
			c.wr.BulkString(v)
		} else {
			c.wr.Null()
		}
	}
}

func cmdHDel(c *conn, args [][]byte) {
	sh := c.db.shardOf(args[1])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := c.db.lookup(sh, args[1])
	if e == nil {
		c.wr.Int(0)
		return
	}
	if !e.isHash() {
		c.wr.Error(errWrongType)
		return
	}
	var n int64
	for _, f := range args[2:] {
		if v, ok := e.hash().m[string(f)]; ok {
			delete(e.hash().m, string(f))
			c.db.growHash(e, -int64(fieldOverhead+len(f)+len(v)))
			n++
		}
	}
	c.db.dropIfEmpty(sh, args[1], e)
	c.wr.Int(n)
}

// hashWalk replies with the fields and/or values of the hash at key.
func (c *conn) hashWalk(key []byte, fields, values bool) {
	sh, m, ok := c.lockHash(key)
	defer sh.mu.Unlock()
	if !ok {
		return
	}
	n := len(m)
	if fields && values {
		n *= 2
	}
	c.wr.ArrayLen(n)
	for f, v := range m {
		if fields {
			c.wr.BulkString(f)
		}
		if values {
			c.wr.BulkString(v)
		}
	}
}

func cmdHGetAll(c *conn, args [][]byte) { c.hashWalk(args[1], true, true) }
func cmdHKeys(c *conn, args [][]byte)   { c.hashWalk(args[1], true, false) }
func cmdHVals(c *conn, args [][]byte)   { c.hashWalk(args[1], false, true) }

func cmdHLen(c *conn, args [][]byte) {
	sh, fields, ok := c.lockHash(args[1])
	defer sh.mu.Unlock()
	if ok {
		c.wr.Int(int64(len(fields)))
	}
}

func cmdHExists(c *conn, args [][]byte) {
	sh, fields, ok := c.lockHash(args[1])
	defer sh.mu.Unlock()
	if !ok {
		return
	}
	if _, found := fields[string(args[2])]; found {
		c.wr.Int(1)
	} else {
		c.wr.Int(0)
	}
}

func cmdHStrLen(c *conn, args [][]byte) {
	sh, fields, ok := c.lockHash(args[1])
	defer sh.mu.Unlock()
	if ok {
		c.wr.Int(int64(len(fields[string(args[2])])))
	}
}

func cmdHIncrBy(c *conn, args [][]byte) {
	by, ok := parseInt(args[3])
	if !ok {
		c.wr.Error(errNotInt)
		return
	}
	sh, e, ok := c.lockHashFor(args[1])
	defer sh.mu.Unlock()
	if !ok {
		return
	}
	var cur int64
	if v, exists := e.hash().m[string(args[2])]; exists {
		if cur, ok = parseInt([]byte(v)); !ok {
			c.wr.Error(errHashNotInt)
			c.db.dropIfEmpty(sh, args[1], e)
			return
		}
	}
	if (by < 0 && cur < 0 && by < math.MinInt64-cur) || (by > 0 && cur > 0 && by > math.MaxInt64-cur) {
		c.wr.Error(errOverflow)
		c.db.dropIfEmpty(sh, args[1], e)
		return
	}
	cur += by
	c.db.hset(e, args[2], strconv.AppendInt(nil, cur, 10))
	c.wr.Int(cur)
}

func cmdHIncrByFloat(c *conn, args [][]byte) {
	if _, ok := parseLongDouble(args[3]); !ok {
		c.wr.Error(errNotFloat)
		return
	}
	sh, e, ok := c.lockHashFor(args[1])
	defer sh.mu.Unlock()
	if !ok {
		return
	}
	cur, exists := e.hash().m[string(args[2])]
	res, msg := addFloat(cur, exists, args[3], errHashNotFlt)
	if msg != "" {
		c.wr.Error(msg)
		c.db.dropIfEmpty(sh, args[1], e)
		return
	}
	c.db.hset(e, args[2], []byte(res))
	c.wr.BulkString(res)
}
