<?php
// Talks to ephpm's KV with phpredis, using only what ephpm tells PHP.
$r = new Redis();
if (($_GET['via'] ?? 'tcp') === 'socket') {
    $r->connect(getenv('EPHPM_KV_SOCKET'));
} else {
    $r->connect(getenv('EPHPM_KV_HOST'), (int)getenv('EPHPM_KV_PORT'));
}
if (getenv('EPHPM_KV_PASSWORD') !== '') {
    $r->auth(getenv('EPHPM_KV_PASSWORD'));
}
echo $r->incr('hits');
