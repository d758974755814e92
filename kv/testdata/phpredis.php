<?php
// Exercises every KV command through phpredis. Run against redis-server and
// ephpm's KV store: the printed lines must be identical.
// Usage: php phpredis.php host port [user pass]
[$_, $host, $port] = $argv;
$r = new Redis();
if (!$r->connect($host, (int)$port, 2.0)) { fwrite(STDERR, "connect failed\n"); exit(1); }
if (isset($argv[4])) { if (!$r->auth([$argv[3], $argv[4]])) { fwrite(STDERR, "auth failed\n"); exit(1); } }
$r->flushAll();
$n = 0;
function out($label, $v) { global $n; $n++; echo $label, ' ', json_encode($v), "\n"; }
function sorted($a) { if (is_array($a)) { sort($a); } return $a; }
function ksorted($a) { if (is_array($a)) { ksort($a); } return $a; }
function err($r, $f) { try { $v = $f(); return [$v, $r->getLastError()]; } catch (Throwable $e) { return ['exception', $e->getMessage()]; } finally { $r->clearLastError(); } }

out('ping', $r->ping());
out('echo', $r->echo('hello'));
out('set', $r->set('s', 'v'));
out('get', $r->get('s'));
out('get missing', $r->get('missing'));
out('set nx', $r->set('s', 'v2', ['nx']));
out('set xx ex', $r->set('s', 'v3', ['xx', 'ex' => 100]));
out('ttl', $r->ttl('s'));
out('set px', $r->set('p', 'v', ['px' => 100000]));
out('pttl>0', $r->pttl('p') > 90000);
out('set keepttl', $r->rawCommand('SET', 's', 'v4', 'KEEPTTL'));
out('ttl kept', $r->ttl('s'));
out('set get', $r->rawCommand('SET', 's', 'v5', 'GET'));
out('set exat', $r->rawCommand('SET', 'e', 'v', 'EXAT', (string)(time() + 1000)));
out('ttl exat', $r->ttl('e') > 990);
out('setex', $r->setex('x', 50, 'v'));
out('psetex', $r->psetex('y', 50000, 'v'));
out('ttl setex', $r->ttl('x'));
out('setnx', $r->setnx('x', 'other'));
out('setnx new', $r->setnx('z', 'zz'));
out('getdel', $r->rawCommand('GETDEL', 'z'));
out('getdel gone', $r->rawCommand('GETDEL', 'z'));
out('getex', $r->rawCommand('GETEX', 'x', 'PERSIST'));
out('ttl persisted', $r->ttl('x'));
out('getex ex', $r->rawCommand('GETEX', 'x', 'EX', '70'));
out('ttl getex', $r->ttl('x'));
out('mset', $r->mSet(['a' => '1', 'b' => '2', 'c' => '3']));
out('mget', $r->mGet(['a', 'b', 'missing', 'c']));
out('msetnx', $r->msetnx(['a' => '9', 'new' => '9']));
out('msetnx ok', $r->msetnx(['n1' => '1', 'n2' => '2']));
out('incr', $r->incr('a'));
out('incrby', $r->incrBy('a', 10));
out('incrbyfloat', $r->incrByFloat('a', 0.5));
out('decr', $r->decr('b'));
out('decrby', $r->decrBy('b', 5));
out('incr err', err($r, fn() => $r->incr('s')));
out('append', $r->append('s', '-more'));
out('strlen', $r->strlen('s'));
out('getset', $r->getSet('s', 'fresh'));
out('ttl after getset', $r->ttl('s'));
out('del', $r->del('a', 'b', 'missing'));
out('unlink', $r->unlink('c'));
out('exists', $r->exists('n1', 'n2', 'missing'));
out('expire', $r->expire('n1', 100));
out('pexpire', $r->pExpire('n2', 100000));
out('expireat', $r->expireAt('new', time() + 200));
out('ttl expireat', $r->ttl('new') >= 199);
out('persist', $r->persist('n1'));
out('ttl missing', $r->ttl('missing'));
out('pttl no ttl', $r->pttl('s'));
out('type string', $r->type('s'));
out('rename', $r->rename('n1', 'renamed'));
out('get renamed', $r->get('renamed'));
out('hset', $r->hSet('h', 'f1', 'v1'));
out('hsetnx', $r->hSetNx('h', 'f1', 'x'));
out('hmset', $r->hMSet('h', ['f2' => 'v2', 'f3' => '3']));
out('hget', $r->hGet('h', 'f2'));
out('hmget', $r->hMGet('h', ['f1', 'nope', 'f3']));
out('hgetall', ksorted($r->hGetAll('h')));
out('hkeys', sorted($r->hKeys('h')));
out('hvals', sorted($r->hVals('h')));
out('hlen', $r->hLen('h'));
out('hexists', $r->hExists('h', 'f1'));
out('hincrby', $r->hIncrBy('h', 'f3', 4));
out('hdel', $r->hDel('h', 'f1', 'nope'));
out('type hash', $r->type('h'));
out('wrongtype', err($r, fn() => $r->get('h')));
out('keys', sorted($r->keys('*')));
out('keys pattern', sorted($r->keys('n*')));
$it = null; $all = [];
$r->setOption(Redis::OPT_SCAN, Redis::SCAN_RETRY);
while (($ks = $r->scan($it, '*', 2)) !== false) { foreach ($ks as $k) { $all[] = $k; } }
out('scan', sorted(array_values(array_unique($all))));
out('dbsize', $r->dbSize());
out('select', $r->select(2));
out('dbsize db2', $r->dbSize());
out('set db2', $r->set('only2', 'x'));
out('flushdb', $r->flushDB());
out('select 0', $r->select(0));
out('client setname', $r->client('setname', 'wp'));
out('client getname', $r->client('getname'));
out('client id', is_int($r->client('id')));
out('time', count($r->time()));
$info = $r->info();
out('info fields', [isset($info['used_memory']), isset($info['maxmemory']), isset($info['keyspace_hits']), isset($info['evicted_keys']), isset($info['expired_keys']), isset($info['keyspace_misses']), isset($info['redis_version'])]);
// avg_ttl is Redis's sampled estimate: not comparable.
out('info keyspace', array_map(fn($v) => preg_replace('/,avg_ttl=\d+/', '', $v), $r->info('keyspace')));
out('unknown', err($r, fn() => $r->rawCommand('NOPE', 'a')));
out('command count>0', $r->rawCommand('COMMAND', 'COUNT') > 40);
// Pipelining and MULTI-free batching, as object caches do.
$p = $r->pipeline();
for ($i = 0; $i < 100; $i++) { $p->set("pipe:$i", $i); $p->get("pipe:$i"); }
$res = $p->exec();
out('pipeline', [count($res), $res[199]]);
out('flushall', $r->flushAll());
out('dbsize after', $r->dbSize());
out('quit', $r->close());
echo "done $n\n";
