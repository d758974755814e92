<?php
// ephpm demo: a guestbook on the embedded database (SQLite behind the
// MySQL wire protocol), reached with PHP's own unmodified mysqli.
declare(strict_types=1);

function db(): ?mysqli {
    $host = getenv('EPHPM_DB_HOST');
    if ($host === false || $host === '') {
        return null;
    }
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    $db = new mysqli($host, getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'),
        getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
    $db->set_charset('utf8mb4');
    $db->query('CREATE TABLE IF NOT EXISTS guestbook (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(80) NOT NULL,
        message TEXT NOT NULL,
        created_at DATETIME NOT NULL,
        KEY created_at (created_at)
    ) DEFAULT CHARSET=utf8mb4');
    return $db;
}

$error = null;
$entries = [];
try {
    $db = db();
    if ($db && $_SERVER['REQUEST_METHOD'] === 'POST') {
        $name = trim((string)($_POST['name'] ?? ''));
        $msg = trim((string)($_POST['message'] ?? ''));
        if ($name !== '' && $msg !== '') {
            $st = $db->prepare('INSERT INTO guestbook (name, message, created_at) VALUES (?, ?, NOW())');
            $st->bind_param('ss', $name, $msg);
            $st->execute();
        }
        header('Location: /', true, 303);
        exit;
    }
    if ($db) {
        $res = $db->query('SELECT id, name, message, created_at FROM guestbook ORDER BY id DESC LIMIT 20');
        $entries = $res->fetch_all(MYSQLI_ASSOC);
    }
} catch (Throwable $e) {
    $error = $e->getMessage();
}
$h = fn($s) => htmlspecialchars((string)$s, ENT_QUOTES);
?><!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ephpm demo</title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<main>
<h1>ephpm is serving PHP <?= $h(PHP_VERSION) ?></h1>
<p>This page ran in php-fpm supervised by ephpm (<?= $h($_SERVER['SERVER_SOFTWARE'] ?? '') ?>).
<?php if (isset($db) && $db): ?>
Its guestbook lives in the embedded SQLite database, reached over the MySQL protocol
(server <?= $h($db->server_info) ?>).
<?php else: ?>
The embedded database is not enabled on this server.
<?php endif ?></p>
<?php if ($error): ?><p class="error">Database error: <?= $h($error) ?></p><?php endif ?>
<form method="post" action="/">
  <input name="name" placeholder="Your name" maxlength="80" required>
  <input name="message" placeholder="Say hello" required>
  <button>Sign</button>
</form>
<ul>
<?php foreach ($entries as $e): ?>
  <li><strong><?= $h($e['name']) ?></strong> <?= $h($e['message']) ?> <small><?= $h($e['created_at']) ?></small></li>
<?php endforeach ?>
</ul>
<p><a href="/info.php">Request details</a> · <a href="/_ephpm/health">health</a> · <a href="/metrics">metrics</a></p>
</main>
</body>
</html>
