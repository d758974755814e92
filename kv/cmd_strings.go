package kv

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Redis's reply texts, byte for byte, because clients and tests match them.
const (
	errWrongType   = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNotInt      = "ERR value is not an integer or out of range"
	errNotFloat    = "ERR value is not a valid float"
	errSyntax      = "ERR syntax error"
	errOverflow    = "ERR increment or decrement would overflow"
	errNaN         = "ERR increment would produce NaN or Infinity"
	errNoSuchKey   = "ERR no such key"
	errHashNotInt  = "ERR hash value is not an integer"
	errHashNotFlt  = "ERR hash value is not a float"
	errInvalidCurs = "ERR invalid cursor"
)

func errExpireTime(cmd string) string { return "ERR invalid expire time in '" + cmd + "' command" }

// parseInt parses like Redis's string2ll: optional '-', no '+', no leading
// zeros, no spaces, within int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	i := 0
	if b[0] == '-' {
		neg = true
		i = 1
		if len(b) == 1 {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' || len(b)-i > 19 {
		return 0, false
	}
	var v uint64 // at most 19 digits: cannot overflow
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// parseLongDouble parses like Redis's string2ld (strtold): Redis adds
// floats in 80-bit long double, so a 64-bit-mantissa big.Float gives the
// same digits (0.1 + 0.2 is "0.3" there, not 0.30000000000000004).
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) > 5*1024 || b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r' || b[0] == '\v' || b[0] == '\f' {
		return nil, false
	}
	s := string(b)
	if l := strings.ToLower(s); (strings.HasPrefix(l, "0x") || strings.HasPrefix(l, "-0x") || strings.HasPrefix(l, "+0x")) && !strings.Contains(l, "p") {
		s += "p0" // strtold takes hex without an exponent; Go needs one
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return nil, false
	}
	if math.IsNaN(f) || strings.Contains(s, "_") {
		return nil, false
	}
	if math.IsInf(f, 0) && err == nil {
		return new(big.Float).SetInf(f < 0), true
	}
	bf, _, perr := big.ParseFloat(s, 0, 64, big.ToNearestEven)
	if perr != nil {
		return nil, false
	}
	return bf, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// formatLongDouble formats like Redis's ld2string(LD_STR_HUMAN): "%.17Lf"
// with trailing zeros removed.
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// addFloat adds incr to the float in cur; msg is the error reply, if any.
func addFloat(cur string, exists bool, incr []byte, notFloat string) (string, string) {
	var base *big.Float
	if exists {
		var ok bool
		if base, ok = parseLongDouble([]byte(cur)); !ok {
			return "", notFloat
		}
	} else {
		base = new(big.Float).SetPrec(64)
	}
	inc, ok := parseLongDouble(incr)
	if !ok {
		return "", errNotFloat
	}
	if base.IsInf() || inc.IsInf() {
		return "", errNaN
	}
	sum := new(big.Float).SetPrec(64).SetMode(big.ToNearestEven).Add(base, inc)
	// Beyond long double's range strtold and the x87 unit give inf.
	if exp := sum.MantExp(nil); exp > 16384 {
		return "", errNaN
	}
	return formatLongDouble(sum), ""
}

// setOpts is the parsed option list of SET and GETEX.
type setOpts struct {
	nx, xx, get, keepTTL, persist bool
	exp                           int64 // absolute ms, 0 = none
	absolute                      bool  // EXAT/PXAT given
}

// parseSetOpts parses SET/GETEX options in Redis's order and rules.
// It returns the error reply, or "".
func parseSetOpts(args [][]byte, isSet bool, cmd string) (setOpts, string) {
	var o setOpts
	var (
		expArg       []byte
		unitMs, abs  bool
		ex, px       bool
		exat, pxat   bool
		haveExpireOp = func() bool { return ex || px || exat || pxat }
	)
	for j := 0; j < len(args); j++ {
		opt := args[j]
		var next []byte
		if j+1 < len(args) {
			next = args[j+1]
		}
		switch {
		case isSet && eq(opt, "NX") && !o.xx:
			o.nx = true
		case isSet && eq(opt, "XX") && !o.nx:
			o.xx = true
		case isSet && eq(opt, "GET"):
			o.get = true
		case isSet && eq(opt, "KEEPTTL") && !haveExpireOp():
			o.keepTTL = true
		case !isSet && eq(opt, "PERSIST") && !haveExpireOp():
			o.persist = true
		case eq(opt, "EX") && !o.keepTTL && !o.persist && !exat && !px && !pxat && next != nil:
			ex, expArg, unitMs, abs = true, next, false, false
			j++
		case eq(opt, "PX") && !o.keepTTL && !o.persist && !ex && !exat && !pxat && next != nil:
			px, expArg, unitMs, abs = true, next, true, false
			j++
		case eq(opt, "EXAT") && !o.keepTTL && !o.persist && !ex && !px && !pxat && next != nil:
			exat, expArg, unitMs, abs = true, next, false, true
			j++
		case eq(opt, "PXAT") && !o.keepTTL && !o.persist && !ex && !exat && !px && next != nil:
			pxat, expArg, unitMs, abs = true, next, true, true
			j++
		default:
			return o, errSyntax
		}
	}
	if expArg != nil {
		ms, msg := expireMillis(expArg, unitMs, abs, cmd)
		if msg != "" {
			return o, msg
		}
		o.exp, o.absolute = ms, abs
	}
	return o, ""
}

// expireMillis converts a SET-style expire argument (which must be > 0) to
// absolute unix milliseconds, with Redis's overflow checks.
func expireMillis(arg []byte, unitMs, abs bool, cmd string) (int64, string) {
	n, ok := parseInt(arg)
	if !ok {
		return 0, errNotInt
	}
	if n <= 0 || (!unitMs && n > math.MaxInt64/1000) {
		return 0, errExpireTime(cmd)
	}
	if !unitMs {
		n *= 1000
	}
	if !abs {
		now := nowMs()
		if n > math.MaxInt64-now {
			return 0, errExpireTime(cmd)
		}
		n += now
	}
	return n, ""
}

// eq compares a command argument with an upper-case keyword.
func eq(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// lockString locks key's shard and returns it with the string at key,
// read (a hit or a miss): nil if there is none. ok is false, and
// WRONGTYPE sent, when key holds a hash. The caller unlocks sh in every
// case.
func (c *conn) lockString(key []byte) (sh *shard, e *entry, ok bool) {
	sh = c.db.shardOf(key)
	sh.mu.Lock()
	e = c.db.lookupRead(sh, key)
	if e != nil && e.isHash() {
		c.wr.Error(errWrongType)
		return sh, nil, false
	}
	return sh, e, true
}

func cmdGet(c *conn, args [][]byte) {
	sh, e, ok := c.lockString(args[1])
	var v string
	if e != nil {
		v = e.str() // strings are immutable: safe to write after unlocking
	}
	sh.mu.Unlock()
	switch {
	case !ok:
	case e == nil:
		c.wr.Null()
	default:
		c.wr.BulkString(v)
	}
}

func cmdSet(c *conn, args [][]byte) {
	o, msg := parseSetOpts(args[3:], true, "set")
	if msg != "" {
		c.wr.Error(msg)
		return
	}
	c.set(args[1], args[2], o)
}

// set implements SET and its variants once options are parsed.
func (c *conn) set(key, val []byte, o setOpts) {
	d := c.db
	sh := d.shardOf(key)
	sh.mu.Lock()
	e := d.lookup(sh, key)
	var old string
	if o.get && e != nil {
		if e.isHash() {
			sh.mu.Unlock()
			c.wr.Error(errWrongType)
			return
		}
		old = e.str()
	}
	if (o.nx && e != nil) || (o.xx && e == nil) {
		sh.mu.Unlock()
		if o.get && e != nil {
			c.wr.BulkString(old)
		} else {
			c.wr.Null()
		}
		return
	}
	d.setString(sh, key, val, o.exp, o.keepTTL)
	sh.mu.Unlock()
	switch {
	case !o.get:
		c.wr.Simple("OK")
	case e != nil:
		c.wr.BulkString(old)
	default:
		c.wr.Null()
	}
}

// setEx implements SETEX and PSETEX.
func (c *conn) setEx(args [][]byte, unitMs bool, name string) {
	ms, msg := expireMillis(args[2], unitMs, false, name)
	if msg != "" {
		c.wr.Error(msg)
		return
	}
	c.set(args[1], args[3], setOpts{exp: ms})
}

func cmdSetEx(c *conn, args [][]byte)  { c.setEx(args, false, "setex") }
func cmdPSetEx(c *conn, args [][]byte) { c.setEx(args, true, "psetex") }

func cmdSetNX(c *conn, args [][]byte) {
	d := c.db
	sh := d.shardOf(args[1])
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if d.lookup(sh, args[1]) != nil {
		c.wr.Int(0)
		return
	}
	d.setString(sh, args[1], args[2], 0, false)
	c.wr.Int(1)
}

func cmdGetDel(c *conn, args [][]byte) {
	sh, e, ok := c.lockString(args[1])
	defer sh.mu.Unlock()
	switch {
	case !ok:
	case e == nil:
		c.wr.Null()
	default:
		c.db.remove(sh, string(args[1]), e)
		c.wr.BulkString(e.str())
	}
}

func cmdGetEx(c *conn, args [][]byte) {
	o, msg := parseSetOpts(args[2:], false, "getex")
	if msg != "" {
		c.wr.Error(msg)
		return
	}
	d := c.db
	sh, e, ok := c.lockString(args[1])
	defer sh.mu.Unlock()
	switch {
	case !ok:
		return
	case e == nil:
		c.wr.Null()
		return
	}
	c.wr.BulkString(e.str())
	switch {
	case o.absolute && o.exp <= nowMs():
		d.remove(sh, string(args[1]), e)
	case o.exp != 0:
		d.setExp(sh, args[1], e, o.exp)
	case o.persist:
		d.setExp(sh, args[1], e, 0)
	}
}

func cmdGetSet(c *conn, args [][]byte) {
	c.set(args[1], args[2], setOpts{get: true})
}

func cmdMGet(c *conn, args [][]byte) {
	d := c.db
	c.wr.ArrayLen(len(args) - 1)
	for _, k := range args[1:] {
		sh := d.shardOf(k)
		sh.mu.Lock()
		e := d.lookupRead(sh, k)
		if e == nil || e.isHash() {
			sh.mu.Unlock()
			c.wr.Null()
			continue
		}
		v := e.str()
		sh.mu.Unlock()
		c.wr.BulkString(v)
	}
}

// keyMask returns the set of shards holding the given keys.
func (d *db) keyMask(keys [][]byte, step int) uint32 {
	var m uint32
	for i := 0; i < len(keys); i += step {
		m |= 1 << d.shardIndex(keys[i])
	}
	return m
}

func cmdMSet(c *conn, args [][]byte) {
	if len(args)%2 != 1 {
		c.wr.Error("ERR wrong number of arguments for 'mset' command")
		return
	}
	d := c.db
	mask := d.keyMask(args[1:], 2)
	d.lockMask(mask)
	for i := 1; i < len(args); i += 2 {
		d.setString(d.shardOf(args[i]), args[i], args[i+1], 0, false)
	}
	d.unlockMask(mask)
	c.wr.Simple("OK")
}

func cmdMSetNX(c *conn, args [][]byte) {
	if len(args)%2 != 1 {
		c.wr.Error("ERR wrong number of arguments for 'msetnx' command")
		return
	}
	d := c.db
	mask := d.keyMask(args[1:], 2)
	d.lockMask(mask)
	defer d.unlockMask(mask)
	for i := 1; i < len(args); i += 2 {
		if d.lookup(d.shardOf(args[i]), args[i]) != nil {
			c.wr.Int(0)
			return
		}
	}
	for i := 1; i < len(args); i += 2 {
		d.setString(d.shardOf(args[i]), args[i], args[i+1], 0, false)
	}
	c.wr.Int(1)
}

// incr adds by to the integer at key, keeping its TTL.
func (c *conn) incr(key []byte, by int64) {
	d := c.db
	sh := d.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := d.lookup(sh, key)
	var cur int64
	if e != nil {
		if e.isHash() {
			c.wr.Error(errWrongType)
			return
		}
		v, ok := parseInt([]byte(e.str()))
		if !ok {
			c.wr.Error(errNotInt)
			return
		}
		cur = v
	}
	if (by < 0 && cur < 0 && by < math.MinInt64-cur) || (by > 0 && cur > 0 && by > math.MaxInt64-cur) {
		c.wr.Error(errOverflow)
		return
	}
	cur += by
	var nb [20]byte
	s := strconv.AppendInt(nb[:0], cur, 10)
	d.setString(sh, key, s, 0, true)
	c.wr.Int(cur)
}

func cmdIncr(c *conn, args [][]byte) { c.incr(args[1], 1) }
func cmdDecr(c *conn, args [][]byte) { c.incr(args[1], -1) }

func cmdIncrBy(c *conn, args [][]byte) {
	n, ok := parseInt(args[2])
	if !ok {
		c.wr.Error(errNotInt)
		return
	}
	c.incr(args[1], n)
}

func cmdDecrBy(c *conn, args [][]byte) {
	n, ok := parseInt(args[2])
	if !ok {
		c.wr.Error(errNotInt)
		return
	}
	if n == math.MinInt64 {
		c.wr.Error("ERR decrement would overflow")
		return
	}
	c.incr(args[1], -n)
}

func cmdIncrByFloat(c *conn, args [][]byte) {
	d := c.db
	key := args[1]
	sh := d.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := d.lookup(sh, key)
	if e != nil && e.isHash() {
		c.wr.Error(errWrongType)
		return
	}
	var cur string
	if e != nil {
		cur = e.str()
	}
	res, msg := addFloat(cur, e != nil, args[2], errNotFloat)
	if msg != "" {
		c.wr.Error(msg)
		return
	}
	d.setString(sh, key, []byte(res), 0, true)
	c.wr.BulkString(res)
}

func cmdAppend(c *conn, args [][]byte) {
	d := c.db
	key := args[1]
	sh := d.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := d.lookup(sh, key)
	if e == nil {
		d.setString(sh, key, args[2], 0, false)
		c.wr.Int(int64(len(args[2])))
		return
	}
	if e.isHash() {
		c.wr.Error(errWrongType)
		return
	}
	if int64(e.n)+int64(len(args[2])) > int64(c.s.cfg.MaxBulkLen) {
		c.wr.Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
		return
	}
	d.replaceStr(key, e, e.str()+string(args[2]))
	c.wr.Int(int64(e.n))
}

func cmdStrLen(c *conn, args [][]byte) {
	sh, e, ok := c.lockString(args[1])
	defer sh.mu.Unlock()
	switch {
	case !ok:
	case e == nil:
		c.wr.Int(0)
	default:
		c.wr.Int(int64(len(e.str())))
	}
}
