<?php
/**
 * wp-config.php for WordPress on ephpm: copy it into a stock WordPress
 * tree; nothing else is needed. The database is the site's embedded
 * SQLite database, which WordPress reaches over the MySQL protocol with
 * its own mysqli; ephpm passes each site its own credentials as
 * EPHPM_DB_* variables (and EPHPM_KV_* for the object cache).
 */

$ephpm = static function (string $name, string $default = ''): string {
	$v = getenv($name);
	return ($v === false || $v === '') ? $default : $v;
};

define('DB_NAME', $ephpm('EPHPM_DB_NAME', 'wordpress'));
define('DB_USER', $ephpm('EPHPM_DB_USER', 'wordpress'));
define('DB_PASSWORD', $ephpm('EPHPM_DB_PASSWORD'));
// The unix socket when ephpm offers one (no TCP per query), else TCP.
define('DB_HOST', $ephpm('EPHPM_DB_SOCKET') !== ''
	? 'localhost:' . $ephpm('EPHPM_DB_SOCKET')
	: $ephpm('EPHPM_DB_HOST', '127.0.0.1') . ':' . $ephpm('EPHPM_DB_PORT', '3306'));
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');

// Keys and salts: per site and stable, derived from the site's own
// database secret (set EPHPM_WP_SALT to choose your own).
$ephpm_salt = $ephpm('EPHPM_WP_SALT', DB_PASSWORD . '|' . DB_NAME);
foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
	'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as $ephpm_key) {
	define($ephpm_key, hash('sha256', $ephpm_key . '|' . $ephpm_salt));
}
unset($ephpm_salt, $ephpm_key);

$table_prefix = 'wp_';

// Behind ephpm's HTTPS (or a trusted proxy) PHP sees HTTPS=on already.
define('WP_DEBUG', (bool) $ephpm('EPHPM_WP_DEBUG'));
define('WP_DEBUG_LOG', false);
define('WP_DEBUG_DISPLAY', false);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('DISABLE_WP_CRON', (bool) $ephpm('EPHPM_WP_DISABLE_CRON'));

if (!defined('ABSPATH')) {
	define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
