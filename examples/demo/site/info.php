<?php
header('Content-Type: text/plain; charset=utf-8');
foreach (['SERVER_SOFTWARE', 'REQUEST_URI', 'SCRIPT_NAME', 'PATH_INFO', 'REMOTE_ADDR', 'HTTP_HOST', 'HTTP_USER_AGENT'] as $k) {
    printf("%-16s %s\n", $k, $_SERVER[$k] ?? '');
}
printf("%-16s %s\n", 'memory_limit', ini_get('memory_limit'));
printf("%-16s %s\n", 'opcache', function_exists('opcache_get_status') && @opcache_get_status(false) ? 'on' : 'off');
