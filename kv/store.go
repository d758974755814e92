package kv

import (
	"errors"
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	// numShards per database: enough that two cores rarely contend on one
	// lock, small enough that an idle site's empty databases cost little.
	numShards = 32
	// NumDBs is the number of SELECTable databases per keyspace, as Redis.
	NumDBs = 16
	// entryOverhead approximates what one key costs beyond its bytes: the
	// map slot, the entry struct and allocator rounding.
	entryOverhead = 96
	// fieldOverhead approximates the cost of one hash field beyond its bytes.
	fieldOverhead = 48
	// evictSamples is how many keys eviction samples to pick the least
	// recently used one (Redis's maxmemory-samples).
	evictSamples = 5
	// expireSamples is how many keys with a TTL one active-expiry pass
	// checks per shard (Redis's ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP).
	expireSamples = 20
	// expireInterval is how often the active expiry cycle runs (Redis hz 10).
	expireInterval = 100 * time.Millisecond
	// expireBudget bounds one active expiry cycle, so a flood of expiring
	// keys cannot stall the owning goroutine's other duties.
	expireBudget = 25 * time.Millisecond
)

// errOOM is Redis's reply to a write once maxmemory is reached.
var errOOM = errors.New("OOM command not allowed when used memory > 'maxmemory'.")

// entry is one key's value: a string, or a hash. It is 24 bytes, half of
// the obvious struct {str string; hash map; exp; size; lru}: per small
// key that is a sixth of the memory. p keeps its target alive for the GC.
type entry struct {
	p   unsafe.Pointer // the string's bytes, or the *hashVal when n == hashTag
	n   int32          // string length, or hashTag
	lru uint32
	exp int64 // expiry, unix milliseconds; 0 = none
}

// hashTag marks an entry holding a hash.
const hashTag = -1

// hashVal is a hash value and its accounted size (fields and values).
type hashVal struct {
	m    map[string]string
	size int64
}

func (e *entry) isHash() bool { return e.n == hashTag }

// str is the string value; strings are immutable, so it stays valid after
// the shard lock is released even if the key is overwritten.
func (e *entry) str() string {
	if e.n <= 0 {
		return ""
	}
	return unsafe.String((*byte)(e.p), int(e.n))
}

func (e *entry) setStr(s string) {
	e.p, e.n = unsafe.Pointer(unsafe.StringData(s)), int32(len(s))
}

// hash is the hash value; only valid when isHash.
func (e *entry) hash() *hashVal { return (*hashVal)(e.p) }

func (e *entry) setHash(h *hashVal) { e.p, e.n = unsafe.Pointer(h), hashTag }

// sizeOf is the accounted size of key (of length klen) holding e.
func sizeOf(klen int, e *entry) int64 {
	if e.isHash() {
		return int64(entryOverhead+klen) + e.hash().size
	}
	return stringSize(klen, int(e.n))
}

func (e *entry) typeName() string {
	if e.isHash() {
		return "hash"
	}
	return "string"
}

type shard struct {
	mu  sync.Mutex
	m   map[string]*entry
	ttl map[string]*entry // keys with an expiry, for active expiry sampling
	_   [32]byte          // keep neighbouring locks off one cache line
}

// db is one numbered database of a keyspace.
type db struct {
	site   *site
	st     *store
	shards [numShards]shard
	nttl   atomic.Int64 // keys with a TTL, so expiry skips databases without
}

// site is one keyspace: a site's 16 databases, its quota and its counters.
type site struct {
	name    string
	quota   atomic.Int64 // 0 = none; updated when credentials change
	used    atomic.Int64
	mu      sync.Mutex
	dbs     [NumDBs]atomic.Pointer[db]
	hits    atomic.Int64
	misses  atomic.Int64
	expired atomic.Int64
	evicted atomic.Int64
}

// flush empties every database of the keyspace.
func (s *site) flush() {
	for i := range s.dbs {
		if d := s.dbs[i].Load(); d != nil {
			d.flush()
		}
	}
}

// store holds every keyspace and enforces the node-wide memory limit.
type store struct {
	limit   int64
	noEvict bool
	seed    maphash.Seed
	used    atomic.Int64
	mu      sync.RWMutex
	sites   map[string]*site
	expired atomic.Int64
	evicted atomic.Int64
}

func newStore(limit int64, noEvict bool) *store {
	return &store{limit: limit, noEvict: noEvict, seed: maphash.MakeSeed(), sites: make(map[string]*site)}
}

// lruClock is the access time in milliseconds, truncated: only differences
// matter, and uint32 subtraction handles the wrap every 49 days.
func lruClock() uint32 { return uint32(nowMs()) }

// clockMs caches the time in milliseconds. Reading the clock cost ~8% of
// CPU under redis-benchmark on a VM, so it is read once per socket read
// (tickClock) rather than per command, as Redis caches it per event-loop
// turn; commands of one batch share a time, which TTLs cannot tell apart.
var clockMs atomic.Int64

// tickClock refreshes the cached time; called after every socket read and
// by the background goroutine.
func tickClock() { clockMs.Store(time.Now().UnixMilli()) }

// nowMs is the cached time in unix milliseconds.
func nowMs() int64 {
	if n := clockMs.Load(); n != 0 {
		return n
	}
	tickClock()
	return clockMs.Load()
}

// site returns the keyspace called name, creating it on first use.
func (st *store) site(name string, quota int64) *site {
	st.mu.RLock()
	s := st.sites[name]
	st.mu.RUnlock()
	if s != nil {
		if s.quota.Load() != quota {
			s.quota.Store(quota)
		}
		return s
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if s = st.sites[name]; s == nil {
		s = &site{name: name}
		s.quota.Store(quota)
		st.sites[name] = s
	}
	return s
}

// db returns database i of s, creating it lazily so idle sites cost little.
func (st *store) db(s *site, i int) *db {
	if d := s.dbs[i].Load(); d != nil {
		return d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dbs[i].Load(); d != nil {
		return d
	}
	d := &db{site: s, st: st}
	s.dbs[i].Store(d)
	return d
}

func (st *store) account(s *site, delta int64) {
	if delta != 0 {
		s.used.Add(delta)
		st.used.Add(delta)
	}
}

// reserve makes room before a command that may grow memory: it evicts
// approximately-LRU keys, or fails with errOOM under noeviction. Callers
// hold no shard lock.
func (st *store) reserve(s *site) error {
	for i := 0; i < 64; i++ {
		nodeOver := st.limit > 0 && st.used.Load() > st.limit
		quota := s.quota.Load()
		siteOver := quota > 0 && s.used.Load() > quota
		if !nodeOver && !siteOver {
			return nil
		}
		if st.noEvict {
			return errOOM
		}
		victim := s
		if !siteOver {
			victim = st.pickVictim(s)
		}
		if !st.evictOne(victim) && (victim == s || !st.evictOne(s)) {
			return errOOM
		}
	}
	return nil
}

// pickVictim chooses the biggest of a few random keyspaces (and the writer's
// own), so one site's burst does not evict a quiet site's whole cache.
func (st *store) pickVictim(s *site) *site {
	best := s
	n := 0
	st.mu.RLock()
	for _, o := range st.sites {
		if o.used.Load() > best.used.Load() {
			best = o
		}
		if n++; n >= evictSamples {
			break
		}
	}
	st.mu.RUnlock()
	return best
}

// evictOne removes the least recently used of a few sampled keys of s.
func (st *store) evictOne(s *site) bool {
	var (
		bestD   *db
		bestKey string
		bestE   *entry
		bestAge uint32 // copied under its shard's lock: e.lru changes under it
	)
	now := lruClock()
	start := rand.IntN(NumDBs)
	for i := 0; i < NumDBs && bestE == nil; i++ {
		d := s.dbs[(start+i)%NumDBs].Load()
		if d == nil {
			continue
		}
		for j := 0; j < evictSamples; j++ {
			sh := &d.shards[rand.IntN(numShards)]
			sh.mu.Lock()
			for k, e := range sh.m { // map iteration starts at random
				if age := now - e.lru; bestE == nil || age > bestAge {
					bestD, bestKey, bestE, bestAge = d, k, e, age
				}
				break
			}
			sh.mu.Unlock()
		}
		if bestE == nil {
			// Sparse database: look at every shard once.
			for j := range d.shards {
				sh := &d.shards[j]
				sh.mu.Lock()
				for k, e := range sh.m {
					bestD, bestKey, bestE = d, k, e
					break
				}
				sh.mu.Unlock()
				if bestE != nil {
					break
				}
			}
		}
	}
	if bestE == nil {
		return false
	}
	sh := bestD.shardOfString(bestKey)
	sh.mu.Lock()
	if sh.m[bestKey] == bestE {
		bestD.remove(sh, bestKey, bestE)
		s.evicted.Add(1)
		st.evicted.Add(1)
	}
	sh.mu.Unlock()
	return true
}

// expireCycle actively removes expired keys by sampling, like Redis's
// active expire cycle, so idle expired keys do not hold memory.
func (st *store) expireCycle() {
	deadline := time.Now().Add(expireBudget)
	st.mu.RLock()
	sites := make([]*site, 0, len(st.sites))
	for _, s := range st.sites {
		sites = append(sites, s)
	}
	st.mu.RUnlock()
	for _, s := range sites {
		for i := range s.dbs {
			d := s.dbs[i].Load()
			if d == nil || d.nttl.Load() == 0 {
				continue
			}
			for j := range d.shards {
				for d.expireShard(&d.shards[j]) && time.Now().Before(deadline) {
				}
				if time.Now().After(deadline) {
					return
				}
			}
		}
	}
}

// expireShard samples keys with a TTL in sh and deletes the expired ones.
// It reports whether enough were expired that another pass is worthwhile.
func (d *db) expireShard(sh *shard) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.ttl) == 0 {
		return false
	}
	now := nowMs()
	n, expired := 0, 0
	for k, e := range sh.ttl {
		if e.exp <= now {
			d.remove(sh, k, e)
			d.site.expired.Add(1)
			d.st.expired.Add(1)
			expired++
		}
		if n++; n >= expireSamples {
			break
		}
	}
	return expired > expireSamples/4
}

func (d *db) shardOf(key []byte) *shard {
	return &d.shards[maphash.Bytes(d.st.seed, key)&(numShards-1)]
}

func (d *db) shardOfString(key string) *shard {
	return &d.shards[maphash.String(d.st.seed, key)&(numShards-1)]
}

func (d *db) shardIndex(key []byte) int {
	return int(maphash.Bytes(d.st.seed, key) & (numShards - 1))
}

// lockMask locks the shards in mask in index order, so multi-key commands
// are atomic and cannot deadlock each other.
func (d *db) lockMask(mask uint32) {
	for m := mask; m != 0; m &= m - 1 {
		d.shards[bits.TrailingZeros32(m)].mu.Lock()
	}
}

func (d *db) unlockMask(mask uint32) {
	for m := mask; m != 0; m &= m - 1 {
		d.shards[bits.TrailingZeros32(m)].mu.Unlock()
	}
}

// lookup returns the live entry for key, expiring it lazily. sh is locked.
func (d *db) lookup(sh *shard, key []byte) *entry {
	e := sh.m[string(key)]
	if e == nil {
		return nil
	}
	now := nowMs()
	if e.exp != 0 && e.exp <= now {
		d.remove(sh, string(key), e)
		d.site.expired.Add(1)
		d.st.expired.Add(1)
		return nil
	}
	e.lru = uint32(now)
	return e
}

// lookupRead is lookup that also counts keyspace hits and misses.
func (d *db) lookupRead(sh *shard, key []byte) *entry {
	e := d.lookup(sh, key)
	if e == nil {
		d.site.misses.Add(1)
	} else {
		d.site.hits.Add(1)
	}
	return e
}

// insert adds a new key (which must not exist) to sh.
func (d *db) insert(sh *shard, key string, e *entry) {
	if sh.m == nil {
		sh.m = make(map[string]*entry)
	}
	e.lru = lruClock()
	sh.m[key] = e
	if e.exp != 0 {
		d.addTTL(sh, key, e)
	}
	d.st.account(d.site, sizeOf(len(key), e))
}

func (d *db) addTTL(sh *shard, key string, e *entry) {
	if sh.ttl == nil {
		sh.ttl = make(map[string]*entry)
	}
	if _, ok := sh.ttl[key]; !ok {
		sh.ttl[key] = e
		d.nttl.Add(1)
	}
}

func (d *db) dropTTL(sh *shard, key string) {
	if _, ok := sh.ttl[key]; ok {
		delete(sh.ttl, key)
		d.nttl.Add(-1)
	}
}

// setExp changes e's expiry, keeping the TTL index in step.
func (d *db) setExp(sh *shard, key []byte, e *entry, exp int64) {
	if exp == 0 && e.exp != 0 {
		d.dropTTL(sh, string(key))
	} else if exp != 0 && e.exp == 0 {
		e.exp = exp
		d.addTTL(sh, string(key), e)
	}
	e.exp = exp
}

// remove deletes key from sh. sh is locked.
func (d *db) remove(sh *shard, key string, e *entry) {
	delete(sh.m, key)
	if e.exp != 0 {
		d.dropTTL(sh, key)
	}
	d.st.account(d.site, -sizeOf(len(key), e))
}

// growHash re-accounts e after a hash field changed by delta bytes.
func (d *db) growHash(e *entry, delta int64) {
	e.hash().size += delta
	d.st.account(d.site, delta)
}

// replaceStr sets e's string value, re-accounting it.
func (d *db) replaceStr(key []byte, e *entry, val string) {
	before := sizeOf(len(key), e)
	e.setStr(val)
	d.st.account(d.site, sizeOf(len(key), e)-before)
}

func stringSize(klen, vlen int) int64 { return int64(entryOverhead + klen + vlen) }

// setString stores val under key, replacing any value, with expiry exp
// (0 = none). keepTTL keeps an existing key's expiry. sh is locked.
func (d *db) setString(sh *shard, key []byte, val []byte, exp int64, keepTTL bool) {
	if e := sh.m[string(key)]; e != nil {
		if e.exp != 0 && e.exp <= nowMs() {
			keepTTL = false // an expired key's TTL is not kept
		}
		d.replaceStr(key, e, string(val))
		if !keepTTL {
			d.setExp(sh, key, e, exp)
		}
		e.lru = lruClock()
		return
	}
	e := &entry{exp: exp}
	e.setStr(string(val))
	d.insert(sh, string(key), e)
}

// flush removes every key of d and returns how many there were.
func (d *db) flush() int {
	n := 0
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		var size int64
		for k, e := range sh.m {
			size += sizeOf(len(k), e)
		}
		n += len(sh.m)
		d.nttl.Add(-int64(len(sh.ttl)))
		sh.m, sh.ttl = nil, nil
		d.st.account(d.site, -size)
		sh.mu.Unlock()
	}
	return n
}

// counts returns the number of keys and of keys with a TTL.
func (d *db) counts() (keys, expires int) {
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		keys += len(sh.m)
		expires += len(sh.ttl)
		sh.mu.Unlock()
	}
	return keys, expires
}

// scan calls fn for every live key in shard i whose secondary hash bucket
// is part, so SCAN can resume between calls without a stable map order.
func (d *db) scanStep(i, part int, fn func(key string)) {
	sh := &d.shards[i]
	now := nowMs()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k, e := range sh.m {
		if e.exp != 0 && e.exp <= now {
			continue
		}
		if part >= 0 && int(maphash.String(d.st.seed, k)>>56)%scanParts != part {
			continue
		}
		fn(k)
	}
}

// scanParts splits each shard into buckets so one SCAN step returns a
// bounded slice of a big shard.
const scanParts = 16
