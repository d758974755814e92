<?php
// Front controller: pretty permalinks land here.
header('Content-Type: application/json');
echo json_encode(['front' => true, 'uri' => $_SERVER['REQUEST_URI'], 'script' => $_SERVER['SCRIPT_NAME'], 'query' => $_SERVER['QUERY_STRING'], 'get' => $_GET]);
