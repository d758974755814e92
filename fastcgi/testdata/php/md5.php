<?php
$h = hash_init('md5');
$n = 0;
$f = fopen('php://input', 'rb');
while (!feof($f)) {
    $b = fread($f, 65536);
    $n += strlen($b);
    hash_update($h, $b);
}
echo $n, ' ', hash_final($h);
