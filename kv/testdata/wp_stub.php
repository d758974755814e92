<?php
// Loads examples/wordpress/object-cache.php with a stub of the few
// WordPress functions it calls, and plays page views against it.
// Usage: php wp_stub.php <drop-in path> <phase>; prints one JSON object.
define('ABSPATH', __DIR__ . '/');
$GLOBALS['blog_id'] = 1;
function is_multisite() { return true; }
function get_current_blog_id() { return $GLOBALS['blog_id']; }
function wp_suspend_cache_addition() { return false; }
function _deprecated_function() {}

require $argv[1];
$phase = $argv[2];
wp_cache_init();
wp_cache_add_global_groups(array('users', 'site-options'));
wp_cache_add_non_persistent_groups(array('counts', 'plugins'));
$queries = 0;

// get_option() the way WordPress does it: cache first, database on a miss.
function get_option_stub($name) {
	global $queries;
	$v = wp_cache_get($name, 'options', false, $found);
	if (!$found) {
		$queries++; // one SELECT against the database
		$v = array('name' => $name, 'autoload' => 'yes', 'n' => strlen($name));
		wp_cache_set($name, $v, 'options');
	}
	return $v;
}

function page_view() {
	foreach (array('siteurl', 'home', 'blogname', 'template', 'stylesheet', 'active_plugins', 'permalink_structure', 'siteurl') as $o) {
		get_option_stub($o);
	}
	$post = wp_cache_get(42, 'posts', false, $found);
	if (!$found) {
		$GLOBALS['queries']++;
		$post = new stdClass();
		$post->ID = 42;
		$post->post_title = 'Hello world';
		wp_cache_add(42, $post, 'posts');
	}
	wp_cache_set('post-42', 7, 'counts'); // non-persistent
	return $post;
}

$out = array('phase' => $phase, 'connected' => $GLOBALS['wp_object_cache']->is_connected());
switch ($phase) {
case 'first':
case 'second':
	$post = page_view();
	$out['title'] = $post->post_title;
	$out['queries'] = $queries;
	$out['hits'] = $GLOBALS['wp_object_cache']->cache_hits;
	$out['misses'] = $GLOBALS['wp_object_cache']->cache_misses;
	$out['kv_calls'] = $GLOBALS['wp_object_cache']->kv_calls;
	if ($phase === 'first') {
		wp_cache_set('admin', array('id' => 1), 'users');
		wp_cache_set('counter', 10, 'stats');
		wp_cache_set('str12', '12', 'stats');
		wp_cache_set('ttl', 'x', 'stats', 100);
	}
	// Non-persistent data never outlives the request.
	$out['counts_in_request'] = wp_cache_get('post-42', 'counts');
	break;
case 'checks':
	$c = array();
	$c['nonpersistent_gone'] = wp_cache_get('post-42', 'counts', false, $f) === false && $f === false;
	$c['int_stays_int'] = wp_cache_get('counter', 'stats') === 10;
	$c['string_stays_string'] = wp_cache_get('str12', 'stats') === '12';
	$c['incr'] = wp_cache_incr('counter', 5, 'stats') === 15;
	$c['decr_floor'] = wp_cache_decr('counter', 100, 'stats') === 0;
	$c['incr_missing'] = wp_cache_incr('nope', 1, 'stats') === false;
	$c['incr_non_numeric'] = wp_cache_set('word', 'abc', 'stats') && wp_cache_incr('word', 2, 'stats') === 2;
	$c['add_existing'] = wp_cache_add('counter', 1, 'stats') === false;
	$c['add_new'] = wp_cache_add('fresh', 'v', 'stats') === true;
	$c['replace_missing'] = wp_cache_replace('absent', 'v', 'stats') === false;
	$c['replace_existing'] = wp_cache_replace('fresh', 'v2', 'stats') === true && wp_cache_get('fresh', 'stats', true) === 'v2';
	$m = wp_cache_get_multiple(array('siteurl', 'home', 'missing-option'), 'options');
	$c['get_multiple'] = is_array($m['siteurl']) && $m['home']['name'] === 'home' && $m['missing-option'] === false;
	wp_cache_flush_runtime();
	$m = wp_cache_get_multiple(array('siteurl', 'blogname', 'nope'), 'options');
	$c['get_multiple_from_kv'] = $m['blogname']['name'] === 'blogname' && $m['nope'] === false;
	$sm = wp_cache_set_multiple(array('a' => 1, 'b' => array(2)), 'multi');
	wp_cache_flush_runtime();
	$c['set_multiple'] = $sm === array('a' => true, 'b' => true) && wp_cache_get('b', 'multi') === array(2);
	$c['delete'] = wp_cache_delete('a', 'multi') === true && wp_cache_get('a', 'multi', true) === false;
	$c['object_copy'] = (function () {
		$o = wp_cache_get(42, 'posts');
		$o->post_title = 'changed';
		return wp_cache_get(42, 'posts')->post_title === 'Hello world';
	})();
	// Multisite: blog 2 has its own options but shares global groups.
	wp_cache_switch_to_blog(2);
	$c['blog2_isolated'] = wp_cache_get('siteurl', 'options', true, $f) === false && $f === false;
	$c['global_group_shared'] = wp_cache_get('admin', 'users', true) === array('id' => 1);
	wp_cache_set('siteurl', 'blog2', 'options');
	wp_cache_switch_to_blog(1);
	$c['blog1_kept'] = wp_cache_get('siteurl', 'options', true)['name'] === 'siteurl';
	$c['flush_group'] = wp_cache_flush_group('stats') && wp_cache_get('fresh', 'stats', true) === false
		&& wp_cache_get('siteurl', 'options', true) !== false;
	$c['supports'] = wp_cache_supports('get_multiple') && wp_cache_supports('flush_group') && !wp_cache_supports('nope');
	$out['checks'] = $c;
	break;
case 'flush':
	$out['flush'] = wp_cache_flush();
	$out['after_flush'] = wp_cache_get('siteurl', 'options', true);
	break;
}
echo json_encode($out), "\n";
