<?php
// mysqli against ephpm's MySQL front: text protocol, prepared statements
// (bind_param, bind_result, get_result), errors, transactions.
// Prints one JSON object; the Go test compares it.
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$out = [];
$sock = getenv('EPHPM_DB_SOCKET');
if ($sock !== false && $sock !== '') {
    $db = new mysqli('localhost', getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), 0, $sock);
} else {
    $db = new mysqli(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
}
$out['set_charset'] = $db->set_charset('utf8mb4');
$out['server_version'] = $db->server_version;
$db->query("CREATE TABLE items (id BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT, name VARCHAR(200) NOT NULL, qty INT(11), price DOUBLE, created DATETIME, PRIMARY KEY (id), KEY name (name(100))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
$tricky = "O'Brien \\ \"q\" \n 🎉";
$db->query("INSERT INTO items (name, qty, price, created) VALUES ('" . $db->real_escape_string($tricky) . "', 2, 9.5, '2024-01-02 03:04:05')");
$out['insert_id'] = $db->insert_id;
$out['affected'] = $db->affected_rows;

$st = $db->prepare("INSERT INTO items (name, qty, price) VALUES (?, ?, ?)");
$name = "widget"; $qty = 7; $price = 1.25;
$st->bind_param("sid", $name, $qty, $price);
$st->execute();
$out['stmt_insert_id'] = $st->insert_id;
$out['stmt_affected'] = $st->affected_rows;
$name = "gadget"; $qty = 0; $price = 0.5;
$st->execute();
$out['stmt_insert_id2'] = $st->insert_id;
$st->close();

$r = $db->query("SELECT id, name, qty, price, created FROM items ORDER BY id");
$out['text_rows'] = $r->fetch_all(MYSQLI_ASSOC);
$out['escape_roundtrip'] = $out['text_rows'][0]['name'] === $tricky;

$st = $db->prepare("SELECT id, name, qty, price, created FROM items WHERE qty > ? ORDER BY id");
$out['stmt_field_count'] = $st->field_count;
$out['stmt_param_count'] = $st->param_count;
$min = 1;
$st->bind_param("i", $min);
$st->execute();
$st->bind_result($id, $n, $q, $p, $c);
$rows = [];
while ($st->fetch()) {
    $rows[] = [$id, $n, $q, $p, $c];
}
$out['bind_result'] = $rows;
$st->execute();
$out['get_result'] = $st->get_result()->fetch_all(MYSQLI_ASSOC);
$st->close();

$st = $db->prepare("SELECT ? AS echo");
$v = "echoed";
$st->bind_param("s", $v);
$st->execute();
$out['echo'] = $st->get_result()->fetch_row()[0];

try {
    $db->query("INSERT INTO items (id, name) VALUES (1, 'dup')");
    $out['dup'] = 'no error';
} catch (mysqli_sql_exception $e) {
    $out['dup'] = [$e->getCode(), $e->getSqlState()];
}
try {
    $db->query("SELECT * FROM nope");
} catch (mysqli_sql_exception $e) {
    $out['no_table'] = [$e->getCode(), $e->getSqlState()];
}

$db->begin_transaction();
$db->query("UPDATE items SET qty = 100");
$out['in_tx_sum'] = $db->query("SELECT SUM(qty) AS s FROM items")->fetch_row()[0];
$db->rollback();
$out['after_rollback_sum'] = $db->query("SELECT SUM(qty) AS s FROM items")->fetch_row()[0];
$db->autocommit(false);
$db->query("UPDATE items SET qty = qty + 1 WHERE id = 1");
$db->commit();
$db->autocommit(true);
$out['after_commit_qty'] = $db->query("SELECT qty FROM items WHERE id = 1")->fetch_row()[0];

$out['ping'] = $db->ping();
$out['select_db'] = $db->select_db(getenv('EPHPM_DB_NAME'));
try {
    $db->select_db('someone_else');
    $out['select_other_db'] = 'no error';
} catch (mysqli_sql_exception $e) {
    $out['select_other_db'] = $e->getCode();
}

$multi = [];
if ($db->multi_query("SELECT 1 AS a; SELECT 2 AS b")) {
    do {
        if ($res = $db->store_result()) {
            $multi[] = $res->fetch_row()[0];
            $res->free();
        }
    } while ($db->more_results() && $db->next_result());
}
$out['multi'] = $multi;

$db2 = mysqli_init();
$db2->options(MYSQLI_OPT_INT_AND_FLOAT_NATIVE, 1);
$db2->real_connect(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
$out['native'] = $db2->query("SELECT id, qty, price, name FROM items WHERE id = 2")->fetch_row();
$db2->close();

try {
    new mysqli(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), 'wrong', getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
    $out['bad_password'] = 'connected';
} catch (mysqli_sql_exception $e) {
    $out['bad_password'] = $e->getCode();
}
$db->close();
echo json_encode($out), "\n";
