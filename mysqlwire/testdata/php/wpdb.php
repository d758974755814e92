<?php
// The statements WordPress's wpdb sends during install and page views,
// through mysqli's text protocol as wpdb does. Prints one JSON object.
mysqli_report(MYSQLI_REPORT_OFF);
$db = mysqli_init();
$db->real_connect(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), null, (int)getenv('EPHPM_DB_PORT'));
$out = [];
$errs = [];
function q($sql) {
    global $db, $errs;
    $r = $db->query($sql);
    if ($r === false) {
        $errs[] = $db->errno . ' ' . $db->error . ' :: ' . $sql;
    }
    return $r;
}
function rows($sql) {
    $r = q($sql);
    return $r instanceof mysqli_result ? $r->fetch_all(MYSQLI_ASSOC) : null;
}
$out['select_db'] = $db->select_db(getenv('EPHPM_DB_NAME'));
$db->set_charset('utf8mb4');
q("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_520_ci'");
$out['sql_mode'] = rows("SELECT @@SESSION.sql_mode")[0]['@@SESSION.sql_mode'] ?? null;
q("SET SESSION sql_mode='NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'");
$out['sql_mode_after'] = rows("SELECT @@SESSION.sql_mode")[0]['@@SESSION.sql_mode'] ?? null;
$out['version'] = rows("SELECT VERSION() AS v")[0]['v'] ?? null;

q("CREATE TABLE wp_options (
  option_id bigint(20) unsigned NOT NULL auto_increment,
  option_name varchar(191) NOT NULL default '',
  option_value longtext NOT NULL,
  autoload varchar(20) NOT NULL default 'yes',
  PRIMARY KEY  (option_id),
  UNIQUE KEY option_name (option_name),
  KEY autoload (autoload)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci");
q("CREATE TABLE wp_posts (
  ID bigint(20) unsigned NOT NULL auto_increment,
  post_author bigint(20) unsigned NOT NULL default '0',
  post_date datetime NOT NULL default '0000-00-00 00:00:00',
  post_content longtext NOT NULL,
  post_title text NOT NULL,
  post_status varchar(20) NOT NULL default 'publish',
  post_name varchar(200) NOT NULL default '',
  post_type varchar(20) NOT NULL default 'post',
  comment_count bigint(20) NOT NULL default '0',
  PRIMARY KEY  (ID),
  KEY post_name (post_name(191)),
  KEY type_status_date (post_type,post_status,post_date,ID)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci");
$out['show_tables'] = array_map(fn($r) => array_values($r)[0], rows("SHOW TABLES LIKE 'wp\\_%'") ?? []);
$cols = rows("SHOW FULL COLUMNS FROM `wp_posts`") ?? [];
$out['columns'] = array_map(fn($r) => [$r['Field'], $r['Type'], $r['Null'], $r['Key']], array_slice($cols, 0, 3));
$out['describe_count'] = count(rows("DESCRIBE wp_options") ?? []);

q("INSERT INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES ('siteurl', 'http://example.test', 'yes') ON DUPLICATE KEY UPDATE `option_name` = VALUES(`option_name`), `option_value` = VALUES(`option_value`), `autoload` = VALUES(`autoload`)");
$out['options_insert'] = [$db->insert_id, $db->affected_rows];
q("INSERT INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES ('siteurl', 'http://changed.test', 'yes') ON DUPLICATE KEY UPDATE `option_name` = VALUES(`option_name`), `option_value` = VALUES(`option_value`), `autoload` = VALUES(`autoload`)");
$out['options_upsert'] = $db->affected_rows;
q("INSERT IGNORE INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES ('siteurl', 'ignored', 'yes')");
$out['insert_ignore'] = $db->affected_rows;
$out['siteurl'] = rows("SELECT option_value FROM wp_options WHERE option_name = 'siteurl' LIMIT 1")[0]['option_value'] ?? null;
$out['case_insensitive'] = count(rows("SELECT option_id FROM wp_options WHERE option_name = 'SITEURL'") ?? []);

for ($i = 1; $i <= 12; $i++) {
    q(sprintf("INSERT INTO `wp_posts` (`post_author`, `post_date`, `post_content`, `post_title`, `post_name`) VALUES (1, '2024-01-%02d 10:00:00', 'Body %d', 'Post %d', 'post-%d')", $i, $i, $i, $i));
}
$out['last_post_id'] = $db->insert_id;
$page = rows("SELECT SQL_CALC_FOUND_ROWS wp_posts.ID FROM wp_posts WHERE 1=1 AND wp_posts.post_type = 'post' AND (wp_posts.post_status = 'publish') ORDER BY wp_posts.post_date DESC LIMIT 0, 10") ?? [];
$out['page_ids'] = array_map(fn($r) => $r['ID'], array_slice($page, 0, 3));
$out['found_rows'] = rows("SELECT FOUND_ROWS()")[0]['FOUND_ROWS()'] ?? null;
$out['search'] = count(rows("SELECT ID FROM wp_posts WHERE post_title LIKE '%post 1%' ESCAPE '\\\\'") ?? []);
$out['date_fn'] = rows("SELECT YEAR(post_date) AS y, MONTH(post_date) AS m, DATE_FORMAT(post_date, '%Y/%m/%d') AS d FROM wp_posts WHERE ID = 3")[0] ?? null;
$out['date_add'] = rows("SELECT DATE_ADD('2024-01-31 00:00:00', INTERVAL 1 DAY) AS d")[0]['d'] ?? null;
$out['update_limit'] = (q("UPDATE wp_posts SET comment_count = comment_count + 1 WHERE post_type = 'post' ORDER BY ID LIMIT 2") !== false) ? $db->affected_rows : null;
$out['update_same'] = (q("UPDATE wp_posts SET post_status = 'publish' WHERE ID = 1") !== false) ? $db->affected_rows : null;
$out['delete'] = (q("DELETE FROM wp_posts WHERE ID > 10") !== false) ? $db->affected_rows : null;
$out['count'] = rows("SELECT COUNT(*) FROM wp_posts")[0]['COUNT(*)'] ?? null;
$out['unknown_column'] = ($db->query("SELECT nope FROM wp_posts") === false) ? [$db->errno, $db->sqlstate] : 0;
$out['errors'] = $errs;
echo json_encode($out), "\n";
