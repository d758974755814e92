<?php
header('Content-Type: application/json');
echo json_encode([
    'method' => $_SERVER['REQUEST_METHOD'],
    'query' => $_SERVER['QUERY_STRING'],
    'get' => $_GET,
    'post' => $_POST,
    'long' => strlen($_SERVER['HTTP_X_LONG'] ?? ''),
    'many' => count(array_filter(array_keys($_SERVER), fn($k) => str_starts_with($k, 'HTTP_X_MANY_'))),
]);
