<?php
// Streams N MiB without holding them: chunk of 64 KiB repeated.
header('Content-Type: application/octet-stream');
$chunk = str_repeat('0123456789abcdef', 4096);
$n = (int)($_GET['mb'] ?? 1) * 16;
for ($i = 0; $i < $n; $i++) { echo $chunk; }
