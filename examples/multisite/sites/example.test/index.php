<?php
// A site of its own: its own database and cache, and only its own files.
$db = new mysqli(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'),
    getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
$db->query('CREATE TABLE IF NOT EXISTS visits (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, at DATETIME)');
$db->query('INSERT INTO visits (at) VALUES (NOW())');
$n = $db->query('SELECT COUNT(*) FROM visits')->fetch_row()[0];
header('Content-Type: text/plain');
echo "site ", $_SERVER['HTTP_HOST'], " (database ", getenv('EPHPM_DB_NAME'), "): visit #$n\n";
