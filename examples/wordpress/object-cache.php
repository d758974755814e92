<?php
/**
 * Plugin Name: ephpm KV object cache
 * Description: Persistent WordPress object cache backed by ephpm's built-in
 *              Redis-compatible KV store (phpredis). Copy to wp-content/.
 *
 * Connection settings come from the environment ephpm gives each site:
 * EPHPM_KV_SOCKET (preferred when set), EPHPM_KV_HOST, EPHPM_KV_PORT,
 * EPHPM_KV_USER and EPHPM_KV_PASSWORD. Each site has its own keyspace in
 * ephpm, so wp_cache_flush() empties only this site's cache.
 *
 * If the KV store cannot be reached the cache degrades to a per-request
 * in-memory cache, like WordPress without a drop-in: pages still render.
 */

defined('ABSPATH') || exit;

if (!class_exists('Redis')) {
	// Without phpredis WordPress must fall back to its own cache: returning
	// before defining wp_cache_* makes core load wp-includes/cache.php.
	return;
}

function wp_cache_init() {
	$GLOBALS['wp_object_cache'] = new WP_Object_Cache();
}

function wp_cache_add($key, $data, $group = '', $expire = 0) {
	return $GLOBALS['wp_object_cache']->add($key, $data, $group, (int) $expire);
}

function wp_cache_add_multiple(array $data, $group = '', $expire = 0) {
	return $GLOBALS['wp_object_cache']->add_multiple($data, $group, (int) $expire);
}

function wp_cache_replace($key, $data, $group = '', $expire = 0) {
	return $GLOBALS['wp_object_cache']->replace($key, $data, $group, (int) $expire);
}

function wp_cache_set($key, $data, $group = '', $expire = 0) {
	return $GLOBALS['wp_object_cache']->set($key, $data, $group, (int) $expire);
}

function wp_cache_set_multiple(array $data, $group = '', $expire = 0) {
	return $GLOBALS['wp_object_cache']->set_multiple($data, $group, (int) $expire);
}

function wp_cache_get($key, $group = '', $force = false, &$found = null) {
	return $GLOBALS['wp_object_cache']->get($key, $group, $force, $found);
}

function wp_cache_get_multiple($keys, $group = '', $force = false) {
	return $GLOBALS['wp_object_cache']->get_multiple($keys, $group, $force);
}

function wp_cache_delete($key, $group = '') {
	return $GLOBALS['wp_object_cache']->delete($key, $group);
}

function wp_cache_delete_multiple(array $keys, $group = '') {
	return $GLOBALS['wp_object_cache']->delete_multiple($keys, $group);
}

function wp_cache_incr($key, $offset = 1, $group = '') {
	return $GLOBALS['wp_object_cache']->incr($key, (int) $offset, $group);
}

function wp_cache_decr($key, $offset = 1, $group = '') {
	return $GLOBALS['wp_object_cache']->incr($key, -(int) $offset, $group);
}

function wp_cache_flush() {
	return $GLOBALS['wp_object_cache']->flush();
}

function wp_cache_flush_runtime() {
	return $GLOBALS['wp_object_cache']->flush_runtime();
}

function wp_cache_flush_group($group) {
	return $GLOBALS['wp_object_cache']->flush_group($group);
}

function wp_cache_supports($feature) {
	return in_array($feature, array('add_multiple', 'set_multiple', 'get_multiple', 'delete_multiple', 'flush_runtime', 'flush_group'), true);
}

function wp_cache_close() {
	return true; // connections are reused by phpredis within the worker
}

function wp_cache_add_global_groups($groups) {
	$GLOBALS['wp_object_cache']->add_global_groups($groups);
}

function wp_cache_add_non_persistent_groups($groups) {
	$GLOBALS['wp_object_cache']->add_non_persistent_groups($groups);
}

function wp_cache_switch_to_blog($blog_id) {
	$GLOBALS['wp_object_cache']->switch_to_blog($blog_id);
}

function wp_cache_reset() {
	_deprecated_function(__FUNCTION__, '3.5.0', 'wp_cache_switch_to_blog()');
	$GLOBALS['wp_object_cache']->flush_runtime();
}

class WP_Object_Cache {
	/** @var Redis|null null when the KV store is unreachable */
	private $redis;
	/** @var array runtime cache: full key => value, for this request */
	private $cache = array();
	private $global_groups = array();
	private $non_persistent_groups = array();
	private $blog_prefix = '';
	private $multisite = false;
	private $salt = '';

	public $cache_hits = 0;
	public $cache_misses = 0;
	/** @var int round trips to the KV store in this request */
	public $kv_calls = 0;

	public function __construct() {
		$this->multisite   = function_exists('is_multisite') && is_multisite();
		$this->blog_prefix = $this->multisite ? (int) get_current_blog_id() . ':' : '';
		if (defined('WP_CACHE_KEY_SALT') && WP_CACHE_KEY_SALT) {
			$this->salt = WP_CACHE_KEY_SALT . ':';
		}
		$this->connect();
	}

	private static function env($name) {
		if (isset($_SERVER[$name]) && $_SERVER[$name] !== '') {
			return $_SERVER[$name];
		}
		$v = getenv($name);
		return $v === false ? '' : $v;
	}

	private function connect() {
		$socket = self::env('EPHPM_KV_SOCKET');
		$host   = self::env('EPHPM_KV_HOST') ?: '127.0.0.1';
		$port   = (int) (self::env('EPHPM_KV_PORT') ?: 6379);
		$user   = self::env('EPHPM_KV_USER');
		$pass   = self::env('EPHPM_KV_PASSWORD');
		try {
			$r = new Redis();
			// Persistent connections are reused across requests of one PHP
			// worker; the id keeps sites with different credentials apart.
			$id = 'ephpm:' . md5($user . "\0" . $pass);
			$ok = $socket !== '' ? $r->pconnect($socket, 0, 1.0, $id) : $r->pconnect($host, $port, 1.0, $id);
			if (!$ok) {
				return;
			}
			if ($pass !== '' && !$r->auth($user !== '' ? array($user, $pass) : $pass)) {
				return;
			}
			$this->redis = $r;
		} catch (Exception $e) {
			$this->redis = null;
		}
	}

	/** @return bool whether the KV store is in use */
	public function is_connected() {
		return $this->redis !== null;
	}

	private function key($key, $group) {
		if ($group === '' || $group === null) {
			$group = 'default';
		}
		$prefix = isset($this->global_groups[$group]) ? '' : $this->blog_prefix;
		return $this->salt . $prefix . $group . ':' . $key;
	}

	private function persistent($group) {
		if ($group === '' || $group === null) {
			$group = 'default';
		}
		return $this->redis !== null && !isset($this->non_persistent_groups[$group]);
	}

	private static function valid_key($key) {
		return is_int($key) || (is_string($key) && trim($key) !== '');
	}

	// Integers are stored bare so INCRBY works on them; everything else is
	// serialized, so a string "12" never comes back as int 12.
	private static function encode($v) {
		return is_int($v) ? (string) $v : serialize($v);
	}

	private static function decode($s) {
		if (preg_match('/^-?[0-9]+$/', $s)) {
			return (int) $s;
		}
		return unserialize($s);
	}

	private static function copy($v) {
		return is_object($v) ? clone $v : $v;
	}

	private function call($fn) {
		$this->kv_calls++;
		try {
			return $fn($this->redis);
		} catch (Exception $e) {
			// A lost connection must not break the page: go memory-only.
			$this->redis = null;
			return false;
		}
	}

	private function store($k, $data, $expire, $mode = null) {
		$opts = array();
		if ($mode) {
			$opts[] = $mode;
		}
		if ($expire > 0) {
			$opts['ex'] = $expire;
		}
		$v = self::encode($data);
		return (bool) $this->call(function ($r) use ($k, $v, $opts) {
			return $opts ? $r->set($k, $v, $opts) : $r->set($k, $v);
		});
	}

	public function add($key, $data, $group = '', $expire = 0) {
		if (!self::valid_key($key) || (function_exists('wp_suspend_cache_addition') && wp_suspend_cache_addition())) {
			return false;
		}
		$k = $this->key($key, $group);
		if (array_key_exists($k, $this->cache)) {
			return false;
		}
		if ($this->persistent($group)) {
			if (!$this->store($k, $data, $expire, 'nx')) {
				return false;
			}
		}
		$this->cache[$k] = self::copy($data);
		return true;
	}

	public function add_multiple(array $data, $group = '', $expire = 0) {
		$out = array();
		foreach ($data as $key => $value) {
			$out[$key] = $this->add($key, $value, $group, $expire);
		}
		return $out;
	}

	public function replace($key, $data, $group = '', $expire = 0) {
		if (!self::valid_key($key)) {
			return false;
		}
		$k = $this->key($key, $group);
		if ($this->persistent($group)) {
			if (!$this->store($k, $data, $expire, 'xx')) {
				return false;
			}
		} elseif (!array_key_exists($k, $this->cache)) {
			return false;
		}
		$this->cache[$k] = self::copy($data);
		return true;
	}

	public function set($key, $data, $group = '', $expire = 0) {
		if (!self::valid_key($key)) {
			return false;
		}
		$k = $this->key($key, $group);
		$this->cache[$k] = self::copy($data);
		if ($this->persistent($group)) {
			return $this->store($k, $data, $expire);
		}
		return true;
	}

	public function set_multiple(array $data, $group = '', $expire = 0) {
		$out = array();
		if (!$this->persistent($group) || $expire > 0) {
			foreach ($data as $key => $value) {
				$out[$key] = $this->set($key, $value, $group, $expire);
			}
			return $out;
		}
		$batch = array();
		foreach ($data as $key => $value) {
			if (!self::valid_key($key)) {
				$out[$key] = false;
				continue;
			}
			$k = $this->key($key, $group);
			$this->cache[$k] = self::copy($value);
			$batch[$k] = self::encode($value);
			$out[$key] = true;
		}
		if ($batch && !$this->call(function ($r) use ($batch) { return $r->mSet($batch); })) {
			foreach ($out as $key => $_) {
				$out[$key] = false;
			}
		}
		return $out;
	}

	public function get($key, $group = '', $force = false, &$found = null) {
		$found = false;
		if (!self::valid_key($key)) {
			return false;
		}
		$k = $this->key($key, $group);
		if (!$force && array_key_exists($k, $this->cache)) {
			$found = true;
			$this->cache_hits++;
			return self::copy($this->cache[$k]);
		}
		if (!$this->persistent($group)) {
			$this->cache_misses++;
			return false;
		}
		$raw = $this->call(function ($r) use ($k) { return $r->get($k); });
		if ($raw === false) {
			$this->cache_misses++;
			return false;
		}
		$found = true;
		$this->cache_hits++;
		$value = self::decode($raw);
		$this->cache[$k] = $value;
		return self::copy($value);
	}

	public function get_multiple($keys, $group = '', $force = false) {
		$out = array();
		$fetch = array();
		foreach ($keys as $key) {
			if (!self::valid_key($key)) {
				$out[$key] = false;
				continue;
			}
			$k = $this->key($key, $group);
			if (!$force && array_key_exists($k, $this->cache)) {
				$this->cache_hits++;
				$out[$key] = self::copy($this->cache[$k]);
			} elseif ($this->persistent($group)) {
				$fetch[$key] = $k;
				$out[$key] = false;
			} else {
				$this->cache_misses++;
				$out[$key] = false;
			}
		}
		if ($fetch) {
			// One MGET round trip for every key not in the runtime cache.
			$vals = $this->call(function ($r) use ($fetch) { return $r->mGet(array_values($fetch)); });
			$i = 0;
			foreach ($fetch as $key => $k) {
				$raw = is_array($vals) ? $vals[$i++] : false;
				if ($raw === false) {
					$this->cache_misses++;
					continue;
				}
				$this->cache_hits++;
				$value = self::decode($raw);
				$this->cache[$k] = $value;
				$out[$key] = self::copy($value);
			}
		}
		return $out;
	}

	public function delete($key, $group = '') {
		if (!self::valid_key($key)) {
			return false;
		}
		$k = $this->key($key, $group);
		$had = array_key_exists($k, $this->cache);
		unset($this->cache[$k]);
		if ($this->persistent($group)) {
			return (bool) $this->call(function ($r) use ($k) { return $r->del($k); });
		}
		return $had;
	}

	public function delete_multiple(array $keys, $group = '') {
		$out = array();
		foreach ($keys as $key) {
			$out[$key] = $this->delete($key, $group);
		}
		return $out;
	}

	public function incr($key, $offset = 1, $group = '') {
		if (!self::valid_key($key)) {
			return false;
		}
		$k = $this->key($key, $group);
		if (!$this->persistent($group)) {
			if (!array_key_exists($k, $this->cache)) {
				return false;
			}
			$v = is_numeric($this->cache[$k]) ? (int) $this->cache[$k] : 0;
			return $this->cache[$k] = max(0, $v + $offset);
		}
		$cur = $this->get($key, $group, true, $found);
		if (!$found) {
			return false;
		}
		if (is_int($cur)) {
			// Atomic across PHP workers when the value is a bare integer.
			$v = $this->call(function ($r) use ($k, $offset) { return $r->incrBy($k, $offset); });
			if ($v !== false && $v >= 0) {
				return $this->cache[$k] = $v;
			}
		}
		// WordPress semantics: non-numbers count as 0, never below 0.
		$v = max(0, (is_numeric($cur) ? (int) $cur : 0) + $offset);
		$ttl = $this->call(function ($r) use ($k) { return $r->ttl($k); });
		$this->store($k, $v, $ttl > 0 ? $ttl : 0);
		return $this->cache[$k] = $v;
	}

	public function flush() {
		$this->cache = array();
		if ($this->redis === null) {
			return true;
		}
		// ephpm gives every site its own keyspace, so this empties only
		// this site's cache.
		return (bool) $this->call(function ($r) { return $r->flushDB(); });
	}

	public function flush_runtime() {
		$this->cache = array();
		return true;
	}

	public function flush_group($group) {
		$match = $this->salt . (isset($this->global_groups[$group]) ? '' : $this->blog_prefix) . $group . ':';
		foreach (array_keys($this->cache) as $k) {
			if (strpos($k, $match) === 0) {
				unset($this->cache[$k]);
			}
		}
		if (!$this->persistent($group)) {
			return true;
		}
		$pattern = addcslashes($match, '*?[]\\') . '*';
		return (bool) $this->call(function ($r) use ($pattern) {
			$it = null;
			$r->setOption(Redis::OPT_SCAN, Redis::SCAN_RETRY);
			while (($keys = $r->scan($it, $pattern, 500)) !== false) {
				if ($keys) {
					$r->del($keys);
				}
			}
			return true;
		});
	}

	public function add_global_groups($groups) {
		foreach ((array) $groups as $g) {
			$this->global_groups[$g] = true;
		}
	}

	public function add_non_persistent_groups($groups) {
		foreach ((array) $groups as $g) {
			$this->non_persistent_groups[$g] = true;
		}
	}

	public function switch_to_blog($blog_id) {
		$this->blog_prefix = $this->multisite ? (int) $blog_id . ':' : '';
	}

	public function stats() {
		echo '<p><strong>Cache Hits:</strong> ' . (int) $this->cache_hits . '<br />';
		echo '<strong>Cache Misses:</strong> ' . (int) $this->cache_misses . '<br />';
		echo '<strong>KV calls:</strong> ' . (int) $this->kv_calls . '</p>';
	}
}
