CREATE TABLE wp_links (
 link_id bigint(20) unsigned NOT NULL auto_increment,
 link_url varchar(255) NOT NULL default '',
 link_name varchar(255) NOT NULL default '',
 link_visible varchar(20) NOT NULL default 'Y',
 link_rating int(11) NOT NULL default '0',
 PRIMARY KEY  (link_id),
 KEY link_visible (link_visible)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
INSERT INTO wp_links (link_url, link_name) VALUES ('http://a', 'A'), ('http://b', 'B'), ('http://c', 'C');
DELETE FROM wp_links WHERE link_id = 3;
-- add column at the end: cheap ALTER
ALTER TABLE wp_links ADD COLUMN link_notes mediumtext NOT NULL;
-- add column FIRST/AFTER, change and modify: table rebuild, data kept
ALTER TABLE wp_links ADD link_owner bigint(20) unsigned NOT NULL default '1' AFTER link_url;
ALTER TABLE wp_links CHANGE link_name link_title varchar(191) NOT NULL default '';
ALTER TABLE wp_links MODIFY link_rating bigint(20) NOT NULL default '5';
DESCRIBE wp_links;
SELECT * FROM wp_links ORDER BY link_id;
-- AUTO_INCREMENT high-water mark survives the rebuild (3 was deleted)
INSERT INTO wp_links (link_url) VALUES ('http://d');
SELECT link_id, link_url, link_rating FROM wp_links ORDER BY link_id;
-- indexes
ALTER TABLE wp_links ADD INDEX link_owner (link_owner), ADD UNIQUE KEY link_url (link_url(100));
CREATE INDEX link_title ON wp_links (link_title(50));
SHOW INDEX FROM wp_links;
ALTER TABLE wp_links DROP INDEX link_visible;
DROP INDEX link_title ON wp_links;
ALTER TABLE wp_links RENAME INDEX link_owner TO owner_idx;
ALTER TABLE wp_links ADD INDEX owner_idx (link_owner);
INSERT INTO wp_links (link_url) VALUES ('http://a');
-- drop and rename columns
ALTER TABLE wp_links DROP COLUMN link_notes;
ALTER TABLE wp_links RENAME COLUMN link_title TO link_label;
ALTER TABLE wp_links ALTER COLUMN link_visible SET DEFAULT 'N';
ALTER TABLE wp_links ENGINE=InnoDB, CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER TABLE wp_links ADD COLUMN link_x int, ALGORITHM=INPLACE, LOCK=NONE;
SHOW CREATE TABLE wp_links;
SELECT * FROM wp_links ORDER BY link_id;
ALTER TABLE wp_links DROP COLUMN nosuch;
-- rename, truncate, drop, temporary tables
RENAME TABLE wp_links TO wp_links2;
ALTER TABLE wp_links2 RENAME TO wp_links3;
SHOW TABLES;
TRUNCATE TABLE wp_links3;
INSERT INTO wp_links3 (link_url) VALUES ('http://after-truncate');
SELECT link_id, link_url FROM wp_links3;
CREATE TEMPORARY TABLE tmp_ids (id int NOT NULL, KEY id (id));
INSERT INTO tmp_ids VALUES (1), (2);
SELECT COUNT(*) FROM tmp_ids;
DROP TEMPORARY TABLE tmp_ids;
CREATE TABLE copy LIKE wp_links3;
DESCRIBE copy;
DROP TABLE IF EXISTS copy, wp_links3, nosuch;
SHOW TABLES;
DROP TABLE nosuch;
CREATE TABLE kv (k varchar(64) NOT NULL PRIMARY KEY, v longblob, hits int unsigned NOT NULL DEFAULT 0, ts timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP);
INSERT INTO kv (k, v) VALUES ('a', x'00ff'), ('b', 'text');
SELECT k, HEX(v), hits, LENGTH(ts) FROM kv ORDER BY k;
SHOW FULL COLUMNS FROM kv;
UPDATE kv SET hits = hits + 1 WHERE k = 'a';
UPDATE kv SET ts = '2000-01-01 00:00:00' WHERE k = 'b';
SELECT k, hits, ts = '2000-01-01 00:00:00', LENGTH(ts) FROM kv ORDER BY k;
ALTER TABLE kv ADD COLUMN extra int NOT NULL DEFAULT 3 FIRST;
UPDATE kv SET hits = 5 WHERE k = 'b';
SELECT k, hits, extra, ts = '2000-01-01 00:00:00' FROM kv ORDER BY k;
