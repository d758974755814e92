<?php
header('Content-Type: application/json');
$files = [];
foreach ($_FILES as $name => $f) {
    $files[$name] = ['name' => $f['name'], 'size' => $f['size'], 'error' => $f['error'], 'md5' => $f['error'] === 0 ? md5_file($f['tmp_name']) : null];
}
$raw = file_get_contents('php://input');
echo json_encode(['method' => $_SERVER['REQUEST_METHOD'], 'post' => $_POST, 'files' => $files, 'raw_md5' => md5($raw), 'raw_len' => strlen($raw), 'get' => $_GET]);
