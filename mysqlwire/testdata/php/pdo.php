<?php
// pdo_mysql against ephpm's MySQL front, with emulated prepares on or off
// (argv[1] = "emulate" | "native"). Prints one JSON object.
$emulate = ($argv[1] ?? 'native') === 'emulate';
$dsn = sprintf('mysql:host=%s;port=%s;dbname=%s;charset=utf8mb4', getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_PORT'), getenv('EPHPM_DB_NAME'));
$pdo = new PDO($dsn, getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), [
    PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
    PDO::ATTR_EMULATE_PREPARES => $emulate,
]);
$out = [];
$t = $emulate ? 'pe' : 'pn';
$pdo->exec("CREATE TABLE $t (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100), qty INT, price DOUBLE, created DATETIME)");
$st = $pdo->prepare("INSERT INTO $t (name, qty, price, created) VALUES (?, ?, ?, ?)");
$st->execute(['alpha', 3, 2.5, '2024-05-06 07:08:09']);
$out['last_insert_id'] = $pdo->lastInsertId();
$out['row_count'] = $st->rowCount();
$st = $pdo->prepare("INSERT INTO $t (name, qty, price) VALUES (:name, :qty, :price)");
$st->execute([':name' => "beta's", ':qty' => 4, ':price' => 0.25]);
$out['last_insert_id2'] = $pdo->lastInsertId();
$out['update_count'] = $pdo->exec("UPDATE $t SET qty = qty + 1");

$st = $pdo->prepare("SELECT id, name, qty, price, created FROM $t WHERE qty >= ? ORDER BY id");
$st->execute([4]);
$out['rows'] = $st->fetchAll(PDO::FETCH_ASSOC);
$out['column_count'] = $st->columnCount();
$st = $pdo->prepare("SELECT name FROM $t WHERE name = :n");
$st->bindValue(':n', "beta's", PDO::PARAM_STR);
$st->execute();
$out['named'] = $st->fetchColumn();
$out['query'] = $pdo->query("SELECT COUNT(*) AS c FROM $t")->fetchColumn();

try {
    $pdo->exec("INSERT INTO $t (id, name) VALUES (1, 'dup')");
    $out['dup'] = 'no error';
} catch (PDOException $e) {
    $out['dup'] = [$e->getCode(), $e->errorInfo[1]];
}
try {
    $pdo->query("SELECT * FROM missing_table");
} catch (PDOException $e) {
    $out['no_table'] = [$e->getCode(), $e->errorInfo[1]];
}
$pdo->beginTransaction();
$pdo->exec("DELETE FROM $t");
$out['in_tx'] = $pdo->inTransaction();
$pdo->rollBack();
$out['after_rollback'] = (int)$pdo->query("SELECT COUNT(*) FROM $t")->fetchColumn();
echo json_encode($out), "\n";
