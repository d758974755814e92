package kv

import (
	"crypto/subtle"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// redisVersion is what INFO and HELLO report; clients gate features on it,
// and ephpm implements the Redis 7.0 behaviour of the commands it has.
const redisVersion = "7.0.15"

const (
	flagWrite = 1 << iota
	flagDenyOOM
	flagNoAuth
	flagReadOnly
	flagFast
)

type command struct {
	lname string
	arity int // Redis convention: n = exactly n, -n = at least n
	flags int
	first int // key positions for COMMAND INFO
	last  int
	step  int
	fn    func(*conn, [][]byte)
}

var commandTable map[string]*command

func init() {
	const (
		w  = flagWrite | flagDenyOOM
		wo = flagWrite // writes that never grow memory
		r  = flagReadOnly
	)
	add := func(name string, arity, flags, first, last, step int, fn func(*conn, [][]byte)) {
		commandTable[strings.ToUpper(name)] = &command{lname: name, arity: arity, flags: flags, first: first, last: last, step: step, fn: fn}
	}
	commandTable = make(map[string]*command)
	add("get", 2, r|flagFast, 1, 1, 1, cmdGet)
	add("set", -3, w, 1, 1, 1, cmdSet)
	add("setex", 4, w, 1, 1, 1, cmdSetEx)
	add("psetex", 4, w, 1, 1, 1, cmdPSetEx)
	add("setnx", 3, w|flagFast, 1, 1, 1, cmdSetNX)
	add("getdel", 2, wo|flagFast, 1, 1, 1, cmdGetDel)
	add("getex", -2, wo|flagFast, 1, 1, 1, cmdGetEx)
	add("getset", 3, w|flagFast, 1, 1, 1, cmdGetSet)
	add("mget", -2, r|flagFast, 1, -1, 1, cmdMGet)
	add("mset", -3, w, 1, -1, 2, cmdMSet)
	add("msetnx", -3, w, 1, -1, 2, cmdMSetNX)
	add("incr", 2, w|flagFast, 1, 1, 1, cmdIncr)
	add("incrby", 3, w|flagFast, 1, 1, 1, cmdIncrBy)
	add("incrbyfloat", 3, w|flagFast, 1, 1, 1, cmdIncrByFloat)
	add("decr", 2, w|flagFast, 1, 1, 1, cmdDecr)
	add("decrby", 3, w|flagFast, 1, 1, 1, cmdDecrBy)
	add("append", 3, w, 1, 1, 1, cmdAppend)
	add("strlen", 2, r|flagFast, 1, 1, 1, cmdStrLen)
	add("del", -2, wo, 1, -1, 1, cmdDel)
	add("unlink", -2, wo|flagFast, 1, -1, 1, cmdDel)
	add("exists", -2, r|flagFast, 1, -1, 1, cmdExists)
	add("expire", -3, wo|flagFast, 1, 1, 1, cmdExpire)
	add("pexpire", -3, wo|flagFast, 1, 1, 1, cmdPExpire)
	add("expireat", -3, wo|flagFast, 1, 1, 1, cmdExpireAt)
	add("pexpireat", -3, wo|flagFast, 1, 1, 1, cmdPExpireAt)
	add("ttl", 2, r|flagFast, 1, 1, 1, cmdTTL)
	add("pttl", 2, r|flagFast, 1, 1, 1, cmdPTTL)
	add("persist", 2, wo|flagFast, 1, 1, 1, cmdPersist)
	add("type", 2, r|flagFast, 1, 1, 1, cmdType)
	add("keys", 2, r, 0, 0, 0, cmdKeys)
	add("scan", -2, r, 0, 0, 0, cmdScan)
	add("dbsize", 1, r|flagFast, 0, 0, 0, cmdDBSize)
	add("flushdb", -1, wo, 0, 0, 0, cmdFlushDB)
	add("flushall", -1, wo, 0, 0, 0, cmdFlushAll)
	add("rename", 3, wo, 1, 2, 1, cmdRename)
	add("renamenx", 3, wo|flagFast, 1, 2, 1, cmdRenameNX)
	add("hset", -4, w|flagFast, 1, 1, 1, cmdHSet)
	add("hsetnx", 4, w|flagFast, 1, 1, 1, cmdHSetNX)
	add("hget", 3, r|flagFast, 1, 1, 1, cmdHGet)
	add("hmset", -4, w|flagFast, 1, 1, 1, cmdHMSet)
	add("hmget", -3, r|flagFast, 1, 1, 1, cmdHMGet)
	add("hdel", -3, wo|flagFast, 1, 1, 1, cmdHDel)
	add("hgetall", 2, r, 1, 1, 1, cmdHGetAll)
	add("hkeys", 2, r, 1, 1, 1, cmdHKeys)
	add("hvals", 2, r, 1, 1, 1, cmdHVals)
	add("hlen", 2, r|flagFast, 1, 1, 1, cmdHLen)
	add("hexists", 3, r|flagFast, 1, 1, 1, cmdHExists)
	add("hstrlen", 3, r|flagFast, 1, 1, 1, cmdHStrLen)
	add("hincrby", 4, w|flagFast, 1, 1, 1, cmdHIncrBy)
	add("hincrbyfloat", 4, w|flagFast, 1, 1, 1, cmdHIncrByFloat)
	add("ping", -1, flagFast, 0, 0, 0, cmdPing)
	add("echo", 2, flagFast, 0, 0, 0, cmdEcho)
	add("select", 2, flagFast, 0, 0, 0, cmdSelect)
	add("auth", -2, flagNoAuth|flagFast, 0, 0, 0, cmdAuth)
	add("hello", -1, flagNoAuth|flagFast, 0, 0, 0, cmdHello)
	add("quit", -1, flagNoAuth|flagFast, 0, 0, 0, cmdQuit)
	add("command", -1, 0, 0, 0, 0, cmdCommand)
	add("client", -2, 0, 0, 0, 0, cmdClient)
	add("info", -1, 0, 0, 0, 0, cmdInfo)
	add("time", 1, flagFast, 0, 0, 0, cmdTime)
	add("config", -2, 0, 0, 0, 0, cmdConfig)
}

// cmdConfig answers CONFIG GET for the few parameters tools read
// (redis-benchmark asks for save and appendonly); settings come from
// ephpm's own config, so CONFIG SET is refused.
func cmdConfig(c *conn, args [][]byte) {
	if !eq(args[1], "GET") {
		c.wr.Error(sanitize("ERR CONFIG " + string(args[1]) + " is not supported by ephpm; use ephpm.toml [kv]"))
		return
	}
	if len(args) < 3 {
		c.wr.Error("ERR wrong number of arguments for 'config|get' command")
		return
	}
	params := []struct{ k, v string }{
		{"appendonly", "no"},
		{"databases", strconv.Itoa(NumDBs)},
		{"maxclients", strconv.Itoa(c.s.cfg.MaxConnections)},
		{"maxmemory", strconv.FormatInt(c.s.st.limit, 10)},
		{"maxmemory-policy", c.s.cfg.Eviction},
		{"save", ""},
	}
	var out []string
	for _, p := range params {
		for _, pat := range args[2:] {
			if Match([]byte(strings.ToLower(string(pat))), []byte(p.k)) {
				out = append(out, p.k, p.v)
				break
			}
		}
	}
	c.wr.ArrayLen(len(out))
	for _, s := range out {
		c.wr.BulkString(s)
	}
}

func cmdPing(c *conn, args [][]byte) {
	switch len(args) {
	case 1:
		c.wr.Simple("PONG")
	case 2:
		c.wr.Bulk(args[1])
	default:
		c.wr.Error("ERR wrong number of arguments for 'ping' command")
	}
}

func cmdEcho(c *conn, args [][]byte) { c.wr.Bulk(args[1]) }

func cmdSelect(c *conn, args [][]byte) {
	n, ok := parseInt(args[1])
	if !ok {
		c.wr.Error(errNotInt)
		return
	}
	if n < 0 || n >= NumDBs {
		c.wr.Error("ERR DB index is out of range")
		return
	}
	c.dbi = int(n)
	c.db = c.s.st.db(c.site, c.dbi)
	c.wr.Simple("OK")
}

const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

// authenticate checks credentials and binds the connection to a keyspace;
// it returns the error reply or "".
func (c *conn) authenticate(user, pass []byte, userGiven bool) string {
	cfg := &c.s.cfg
	if cfg.Auth != nil {
		u := "default"
		if userGiven {
			u = string(user)
		}
		name, quota, ok := cfg.Auth(u, string(pass))
		if !ok {
			return errWrongPass
		}
		c.setSite(c.s.st.site(name, quota))
		if !c.authed {
			c.loggedIn()
		}
		c.authed, c.user = true, u
		return ""
	}
	if cfg.Password == "" {
		if !userGiven {
			return "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
		}
		if string(user) != "default" {
			return errWrongPass
		}
		return ""
	}
	if (userGiven && string(user) != "default") || subtle.ConstantTimeCompare(pass, []byte(cfg.Password)) != 1 {
		return errWrongPass
	}
	if !c.authed {
		c.loggedIn()
	}
	c.authed, c.user = true, "default"
	return ""
}

func cmdAuth(c *conn, args [][]byte) {
	if len(args) > 3 {
		c.wr.Error(errSyntax)
		return
	}
	var msg string
	if len(args) == 2 {
		msg = c.authenticate(nil, args[1], false)
	} else {
		msg = c.authenticate(args[1], args[2], true)
	}
	if msg != "" {
		c.wr.Error(msg)
		return
	}
	c.wr.Simple("OK")
}

func cmdHello(c *conn, args [][]byte) {
	if len(args) >= 2 {
		ver, ok := parseInt(args[1])
		if !ok {
			c.wr.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		// RESP3 is not implemented: clients fall back to RESP2 on NOPROTO.
		if ver != 2 {
			c.wr.Error("NOPROTO unsupported protocol version")
			return
		}
	}
	var setName []byte
	authed := false
	for i := 2; i < len(args); i++ {
		switch {
		case eq(args[i], "AUTH") && i+2 < len(args):
			if msg := c.authenticate(args[i+1], args[i+2], true); msg != "" {
				c.wr.Error(msg)
				return
			}
			authed = true
			i += 2
		case eq(args[i], "SETNAME") && i+1 < len(args):
			setName = args[i+1]
			i++
		default:
			c.wr.Error("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return
		}
	}
	if !c.authed && !authed {
		c.wr.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName != nil {
		if !validClientName(setName) {
			c.wr.Error(errClientName)
			return
		}
		c.name = string(setName)
	}
	c.wr.ArrayLen(14)
	c.wr.BulkString("server")
	c.wr.BulkString("redis")
	c.wr.BulkString("version")
	c.wr.BulkString(redisVersion)
	c.wr.BulkString("proto")
	c.wr.Int(2)
	c.wr.BulkString("id")
	c.wr.Int(c.id)
	c.wr.BulkString("mode")
	c.wr.BulkString("standalone")
	c.wr.BulkString("role")
	c.wr.BulkString("master")
	c.wr.BulkString("modules")
	c.wr.ArrayLen(0)
}

func cmdQuit(c *conn, args [][]byte) {
	c.wr.Simple("OK")
	c.quit = true
}

const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

func validClientName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func cmdClient(c *conn, args [][]byte) {
	sub := args[1]
	wrongArgs := func(name string) {
		c.wr.Error("ERR wrong number of arguments for 'client|" + name + "' command")
	}
	switch {
	case eq(sub, "SETNAME"):
		if len(args) != 3 {
			wrongArgs("setname")
			return
		}
		if !validClientName(args[2]) {
			c.wr.Error(errClientName)
			return
		}
		c.name = string(args[2])
		c.wr.Simple("OK")
	case eq(sub, "GETNAME"):
		if len(args) != 2 {
			wrongArgs("getname")
			return
		}
		if c.name == "" {
			c.wr.Null()
			return
		}
		c.wr.BulkString(c.name)
	case eq(sub, "ID"):
		if len(args) != 2 {
			wrongArgs("id")
			return
		}
		c.wr.Int(c.id)
	case eq(sub, "SETINFO"):
		if len(args) != 4 {
			wrongArgs("setinfo")
			return
		}
		c.wr.Simple("OK")
	case eq(sub, "INFO"):
		c.wr.BulkString(c.clientLine())
	default:
		c.wr.Error(sanitize("ERR unknown subcommand '" + string(sub) + "'. Try CLIENT HELP."))
	}
}

func (c *conn) clientLine() string {
	return fmt.Sprintf("id=%d addr=%s name=%s db=%d user=%s\n", c.id, c.raddr, c.name, c.dbi, c.user)
}

func cmdTime(c *conn, args [][]byte) {
	now := time.Now()
	c.wr.ArrayLen(2)
	c.wr.BulkString(strconv.FormatInt(now.Unix(), 10))
	c.wr.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

func cmdCommand(c *conn, args [][]byte) {
	if len(args) == 1 {
		names := sortedCommands()
		c.wr.ArrayLen(len(names))
		for _, n := range names {
			c.commandInfo(commandTable[n])
		}
		return
	}
	sub := args[1]
	switch {
	case eq(sub, "COUNT"):
		c.wr.Int(int64(len(commandTable)))
	case eq(sub, "DOCS"):
		// redis-cli asks for docs only for hints; none is a valid answer.
		c.wr.ArrayLen(0)
	case eq(sub, "LIST"):
		names := sortedCommands()
		c.wr.ArrayLen(len(names))
		for _, n := range names {
			c.wr.BulkString(commandTable[n].lname)
		}
	case eq(sub, "INFO"):
		c.wr.ArrayLen(len(args) - 2)
		for _, a := range args[2:] {
			if cmd := commandTable[upperASCII(string(a))]; cmd != nil {
				c.commandInfo(cmd)
			} else {
				c.wr.NullArray()
			}
		}
	default:
		c.wr.Error(sanitize("ERR unknown subcommand '" + string(sub) + "'. Try COMMAND HELP."))
	}
}

func sortedCommands() []string {
	names := make([]string, 0, len(commandTable))
	for n := range commandTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// commandInfo writes one COMMAND entry in Redis 7's RESP2 shape.
func (c *conn) commandInfo(cmd *command) {
	c.wr.ArrayLen(10)
	c.wr.BulkString(cmd.lname)
	c.wr.Int(int64(cmd.arity))
	var flags []string
	if cmd.flags&flagWrite != 0 {
		flags = append(flags, "write")
	}
	if cmd.flags&flagReadOnly != 0 {
		flags = append(flags, "readonly")
	}
	if cmd.flags&flagDenyOOM != 0 {
		flags = append(flags, "denyoom")
	}
	if cmd.flags&flagFast != 0 {
		flags = append(flags, "fast")
	}
	if cmd.flags&flagNoAuth != 0 {
		flags = append(flags, "no_auth")
	}
	c.wr.ArrayLen(len(flags))
	for _, f := range flags {
		c.wr.Simple(f)
	}
	c.wr.Int(int64(cmd.first))
	c.wr.Int(int64(cmd.last))
	c.wr.Int(int64(cmd.step))
	for i := 0; i < 4; i++ { // ACL categories, tips, key specs, subcommands
		c.wr.ArrayLen(0)
	}
}

// cmdInfo reports the client's own keyspace: with sites, memory, hits and
// keys are the site's, so one site learns nothing about another.
func cmdInfo(c *conn, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	show := func(s string) bool { return all || want[s] }
	var b strings.Builder
	section := func(name string) {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
	}
	field := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	s := c.s
	st := s.st
	site := c.site
	if show("server") {
		section("Server")
		field("redis_version", redisVersion)
		field("redis_mode", "standalone")
		field("ephpm_kv", 1)
		field("os", runtime.GOOS)
		field("arch_bits", strconv.IntSize)
		field("process_id", os.Getpid())
		if addr := s.Addr(); addr != nil {
			if _, port, err := splitPort(addr.String()); err == nil {
				field("tcp_port", port)
			}
		}
		up := time.Since(s.started)
		field("uptime_in_seconds", int64(up.Seconds()))
		field("uptime_in_days", int64(up.Hours()/24))
	}
	if show("clients") {
		section("Clients")
		field("connected_clients", s.nconns.Load())
		field("maxclients", s.cfg.MaxConnections)
	}
	if show("memory") {
		section("Memory")
		used := site.used.Load()
		limit := st.limit
		if q := site.quota.Load(); q > 0 && (limit == 0 || q < limit) {
			limit = q
		}
		field("used_memory", used)
		field("used_memory_human", humanBytes(used))
		field("maxmemory", limit)
		field("maxmemory_human", humanBytes(limit))
		field("maxmemory_policy", s.cfg.Eviction)
		if site.name == defaultKeyspace {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			field("used_memory_rss", ms.Sys-ms.HeapReleased)
		}
	}
	if show("stats") {
		section("Stats")
		field("total_connections_received", s.connsTotal.Load())
		field("total_commands_processed", s.commands.Load())
		field("rejected_connections", s.rejected.Load())
		field("expired_keys", site.expired.Load())
		field("evicted_keys", site.evicted.Load())
		field("keyspace_hits", site.hits.Load())
		field("keyspace_misses", site.misses.Load())
	}
	if show("keyspace") {
		section("Keyspace")
		for i := range site.dbs {
			d := site.dbs[i].Load()
			if d == nil {
				continue
			}
			if keys, expires := d.counts(); keys > 0 {
				fmt.Fprintf(&b, "db%d:keys=%d,expires=%d,avg_ttl=0\r\n", i, keys, expires)
			}
		}
	}
	c.wr.BulkString(b.String())
}

func splitPort(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port in %q", addr)
	}
	return addr[:i], addr[i+1:], nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
