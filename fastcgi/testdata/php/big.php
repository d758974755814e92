<?php
$n = (int)($_GET['mb'] ?? 20);
$chunk = str_repeat('0123456789abcdef', 4096); // 64 KB
for ($i = 0; $i < $n * 16; $i++) {
    echo $chunk;
}
