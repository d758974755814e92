<?php
header('Content-Type: application/json');
$keys = ['SCRIPT_FILENAME','SCRIPT_NAME','PATH_INFO','REQUEST_URI','QUERY_STRING','DOCUMENT_ROOT','DOCUMENT_URI','SERVER_NAME','SERVER_PORT','SERVER_PROTOCOL','REQUEST_METHOD','HTTPS','REMOTE_ADDR','CONTENT_TYPE','CONTENT_LENGTH','HTTP_HOST','HTTP_X_CUSTOM','HTTP_PROXY','GATEWAY_INTERFACE','SERVER_SOFTWARE','REQUEST_SCHEME'];
$out = [];
foreach ($keys as $k) { $out[$k] = $_SERVER[$k] ?? null; }
$out['getenv_custom'] = getenv('HTTP_X_CUSTOM');
echo json_encode($out);
