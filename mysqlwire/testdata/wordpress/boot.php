<?php
// Loads the Debian wordpress package's code against ephpm's MySQL front,
// configured from the EPHPM_DB_* environment (as examples/wordpress's
// wp-config.php does), without the Debian per-host config files.
define('DB_NAME', getenv('EPHPM_DB_NAME'));
define('DB_USER', getenv('EPHPM_DB_USER'));
define('DB_PASSWORD', getenv('EPHPM_DB_PASSWORD'));
define('DB_HOST', getenv('EPHPM_DB_HOST') . ':' . getenv('EPHPM_DB_PORT'));
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
$table_prefix = 'wp_';
define('WP_DEBUG', true);
define('WP_DEBUG_DISPLAY', true);
define('WP_HOME', 'http://example.test');
define('WP_SITEURL', 'http://example.test');
define('AUTOMATIC_UPDATER_DISABLED', true);
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
if (!defined('ABSPATH')) {
    define('ABSPATH', getenv('WP_ROOT') ?: '/usr/share/wordpress/');
}
$_SERVER['HTTP_HOST'] = 'example.test';
$_SERVER['SERVER_NAME'] = 'example.test';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['REQUEST_METHOD'] = 'GET';
error_reporting(E_ALL);
require ABSPATH . 'wp-settings.php';
