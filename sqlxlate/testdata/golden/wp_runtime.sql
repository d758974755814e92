CREATE TABLE wp_users (
	ID bigint(20) unsigned NOT NULL auto_increment,
	user_login varchar(60) NOT NULL default '',
	user_pass varchar(255) NOT NULL default '',
	user_nicename varchar(50) NOT NULL default '',
	user_email varchar(100) NOT NULL default '',
	user_url varchar(100) NOT NULL default '',
	user_registered datetime NOT NULL default '0000-00-00 00:00:00',
	user_activation_key varchar(255) NOT NULL default '',
	user_status int(11) NOT NULL default '0',
	display_name varchar(250) NOT NULL default '',
	PRIMARY KEY  (ID),
	KEY user_login_key (user_login),
	KEY user_nicename (user_nicename),
	KEY user_email (user_email)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_usermeta (
	umeta_id bigint(20) unsigned NOT NULL auto_increment,
	user_id bigint(20) unsigned NOT NULL default '0',
	meta_key varchar(255) default NULL,
	meta_value longtext,
	PRIMARY KEY  (umeta_id),
	KEY user_id (user_id),
	KEY meta_key (meta_key(191))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_termmeta (
	meta_id bigint(20) unsigned NOT NULL auto_increment,
	term_id bigint(20) unsigned NOT NULL default '0',
	meta_key varchar(255) default NULL,
	meta_value longtext,
	PRIMARY KEY  (meta_id),
	KEY term_id (term_id),
	KEY meta_key (meta_key(191))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_terms (
 term_id bigint(20) unsigned NOT NULL auto_increment,
 name varchar(200) NOT NULL default '',
 slug varchar(200) NOT NULL default '',
 term_group bigint(10) NOT NULL default 0,
 PRIMARY KEY  (term_id),
 KEY slug (slug(191)),
 KEY name (name(191))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_term_taxonomy (
 term_taxonomy_id bigint(20) unsigned NOT NULL auto_increment,
 term_id bigint(20) unsigned NOT NULL default 0,
 taxonomy varchar(32) NOT NULL default '',
 description longtext NOT NULL,
 parent bigint(20) unsigned NOT NULL default 0,
 count bigint(20) NOT NULL default 0,
 PRIMARY KEY  (term_taxonomy_id),
 UNIQUE KEY term_id_taxonomy (term_id,taxonomy),
 KEY taxonomy (taxonomy)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_term_relationships (
 object_id bigint(20) unsigned NOT NULL default 0,
 term_taxonomy_id bigint(20) unsigned NOT NULL default 0,
 term_order int(11) NOT NULL default 0,
 PRIMARY KEY  (object_id,term_taxonomy_id),
 KEY term_taxonomy_id (term_taxonomy_id)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_commentmeta (
	meta_id bigint(20) unsigned NOT NULL auto_increment,
	comment_id bigint(20) unsigned NOT NULL default '0',
	meta_key varchar(255) default NULL,
	meta_value longtext,
	PRIMARY KEY  (meta_id),
	KEY comment_id (comment_id),
	KEY meta_key (meta_key(191))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_comments (
	comment_ID bigint(20) unsigned NOT NULL auto_increment,
	comment_post_ID bigint(20) unsigned NOT NULL default '0',
	comment_author tinytext NOT NULL,
	comment_author_email varchar(100) NOT NULL default '',
	comment_author_url varchar(200) NOT NULL default '',
	comment_author_IP varchar(100) NOT NULL default '',
	comment_date datetime NOT NULL default '0000-00-00 00:00:00',
	comment_date_gmt datetime NOT NULL default '0000-00-00 00:00:00',
	comment_content text NOT NULL,
	comment_karma int(11) NOT NULL default '0',
	comment_approved varchar(20) NOT NULL default '1',
	comment_agent varchar(255) NOT NULL default '',
	comment_type varchar(20) NOT NULL default 'comment',
	comment_parent bigint(20) unsigned NOT NULL default '0',
	user_id bigint(20) unsigned NOT NULL default '0',
	PRIMARY KEY  (comment_ID),
	KEY comment_post_ID (comment_post_ID),
	KEY comment_approved_date_gmt (comment_approved,comment_date_gmt),
	KEY comment_date_gmt (comment_date_gmt),
	KEY comment_parent (comment_parent),
	KEY comment_author_email (comment_author_email(10))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_links (
	link_id bigint(20) unsigned NOT NULL auto_increment,
	link_url varchar(255) NOT NULL default '',
	link_name varchar(255) NOT NULL default '',
	link_image varchar(255) NOT NULL default '',
	link_target varchar(25) NOT NULL default '',
	link_description varchar(255) NOT NULL default '',
	link_visible varchar(20) NOT NULL default 'Y',
	link_owner bigint(20) unsigned NOT NULL default '1',
	link_rating int(11) NOT NULL default '0',
	link_updated datetime NOT NULL default '0000-00-00 00:00:00',
	link_rel varchar(255) NOT NULL default '',
	link_notes mediumtext NOT NULL,
	link_rss varchar(255) NOT NULL default '',
	PRIMARY KEY  (link_id),
	KEY link_visible (link_visible)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_options (
	option_id bigint(20) unsigned NOT NULL auto_increment,
	option_name varchar(191) NOT NULL default '',
	option_value longtext NOT NULL,
	autoload varchar(20) NOT NULL default 'yes',
	PRIMARY KEY  (option_id),
	UNIQUE KEY option_name (option_name),
	KEY autoload (autoload)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_postmeta (
	meta_id bigint(20) unsigned NOT NULL auto_increment,
	post_id bigint(20) unsigned NOT NULL default '0',
	meta_key varchar(255) default NULL,
	meta_value longtext,
	PRIMARY KEY  (meta_id),
	KEY post_id (post_id),
	KEY meta_key (meta_key(191))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;
CREATE TABLE wp_posts (
	ID bigint(20) unsigned NOT NULL auto_increment,
	post_author bigint(20) unsigned NOT NULL default '0',
	post_date datetime NOT NULL default '0000-00-00 00:00:00',
	post_date_gmt datetime NOT NULL default '0000-00-00 00:00:00',
	post_content longtext NOT NULL,
	post_title text NOT NULL,
	post_excerpt text NOT NULL,
	post_status varchar(20) NOT NULL default 'publish',
	comment_status varchar(20) NOT NULL default 'open',
	ping_status varchar(20) NOT NULL default 'open',
	post_password varchar(255) NOT NULL default '',
	post_name varchar(200) NOT NULL default '',
	to_ping text NOT NULL,
	pinged text NOT NULL,
	post_modified datetime NOT NULL default '0000-00-00 00:00:00',
	post_modified_gmt datetime NOT NULL default '0000-00-00 00:00:00',
	post_content_filtered longtext NOT NULL,
	post_parent bigint(20) unsigned NOT NULL default '0',
	guid varchar(255) NOT NULL default '',
	menu_order int(11) NOT NULL default '0',
	post_type varchar(20) NOT NULL default 'post',
	post_mime_type varchar(100) NOT NULL default '',
	comment_count bigint(20) NOT NULL default '0',
	PRIMARY KEY  (ID),
	KEY post_name (post_name(191)),
	KEY type_status_date (post_type,post_status,post_date,ID),
	KEY post_parent (post_parent),
	KEY post_author (post_author)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci;

-- wpdb::db_connect / set_charset / set_sql_mode
SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_520_ci';
SELECT @@SESSION.sql_mode;
SET SESSION sql_mode='NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION';
SELECT @@SESSION.sql_mode;
SELECT VERSION();
SELECT @@max_allowed_packet;
SHOW VARIABLES LIKE 'max_allowed_packet';
SHOW FULL COLUMNS FROM `wp_options`;
SELECT DATABASE();
-- populate_options
SELECT option_name FROM wp_options WHERE option_name in ( 'siteurl', 'home', 'blogname' );
INSERT INTO wp_options (option_name, option_value, autoload) VALUES ('siteurl', 'http://localhost', 'yes'), ('home', 'http://localhost', 'yes'), ('blogname', 'My Blog', 'yes'), ('cron', 'a:0:{}', 'on'), ('_transient_doing_cron', '1700000000.1', 'off');
INSERT INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES ('blogdescription', 'Just another site', 'auto') ON DUPLICATE KEY UPDATE `option_name` = VALUES(`option_name`), `option_value` = VALUES(`option_value`), `autoload` = VALUES(`autoload`);
-- add_option of an existing option updates it (MySQL: 2 affected, same value: 0)
INSERT INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES ('blogname', 'Renamed Blog', 'yes') ON DUPLICATE KEY UPDATE `option_name` = VALUES(`option_name`), `option_value` = VALUES(`option_value`), `autoload` = VALUES(`autoload`);
INSERT INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES ('blogname', 'Renamed Blog', 'yes') ON DUPLICATE KEY UPDATE `option_name` = VALUES(`option_name`), `option_value` = VALUES(`option_value`), `autoload` = VALUES(`autoload`);
SELECT option_name, option_value FROM wp_options WHERE autoload IN ( 'yes', 'on', 'auto-on', 'auto' );
SELECT option_value FROM wp_options WHERE option_name = 'BlogName' LIMIT 1;
-- update_option: changing and unchanged values
UPDATE `wp_options` SET `option_value` = 'a:1:{i:0;s:3:\"foo\";}' WHERE `option_name` = 'cron';
UPDATE `wp_options` SET `option_value` = 'a:1:{i:0;s:3:\"foo\";}' WHERE `option_name` = 'cron';
SELECT option_value FROM wp_options WHERE option_name = 'cron' LIMIT 1;
SELECT ROW_COUNT();
-- users
INSERT INTO `wp_users` (`user_pass`, `user_nicename`, `user_email`, `user_url`, `user_registered`, `user_activation_key`, `display_name`, `user_login`) VALUES ('$P$Bxyz', 'admin', 'admin@example.com', '', '2024-05-01 10:00:00', '', 'admin', 'admin');
SELECT LAST_INSERT_ID();
INSERT INTO `wp_usermeta` (`user_id`, `meta_key`, `meta_value`) VALUES (1, 'wp_capabilities', 'a:1:{s:13:\"administrator\";b:1;}');
INSERT INTO `wp_usermeta` (`user_id`, `meta_key`, `meta_value`) VALUES (1, 'nickname', 'admin');
SELECT * FROM wp_users WHERE user_login = 'ADMIN' LIMIT 1;
SELECT user_id, meta_key, meta_value FROM wp_usermeta WHERE user_id IN (1) ORDER BY umeta_id ASC;
SELECT COUNT(NULLIF(`meta_value` LIKE '%\"administrator\"%', false)), COUNT(NULLIF(`meta_value` = 'a:0:{}', false)), COUNT(*) FROM wp_usermeta INNER JOIN wp_users ON user_id = ID WHERE meta_key = 'wp_capabilities';
-- terms
INSERT INTO `wp_terms` (`name`, `slug`, `term_group`) VALUES ('Uncategorized', 'uncategorized', 0);
INSERT INTO `wp_term_taxonomy` (`term_id`, `taxonomy`, `description`, `parent`, `count`) VALUES (1, 'category', '', 0, 1);
INSERT INTO `wp_terms` (`name`, `slug`, `term_group`) VALUES ('News', 'news', 0);
INSERT INTO `wp_term_taxonomy` (`term_id`, `taxonomy`, `description`, `parent`, `count`) VALUES (2, 'category', '', 0, 0);
SELECT  t.*, tt.* FROM wp_terms AS t  INNER JOIN wp_term_taxonomy AS tt ON t.term_id = tt.term_id WHERE tt.taxonomy IN ('category') AND t.slug = 'uncategorized' ORDER BY t.name ASC;
-- posts
INSERT INTO `wp_posts` (`post_author`, `post_date`, `post_date_gmt`, `post_content`, `post_content_filtered`, `post_title`, `post_excerpt`, `post_status`, `post_type`, `comment_status`, `ping_status`, `post_password`, `post_name`, `to_ping`, `pinged`, `post_modified`, `post_modified_gmt`, `post_parent`, `menu_order`, `post_mime_type`, `guid`) VALUES (1, '2024-05-01 10:00:00', '2024-05-01 10:00:00', 'Welcome to WordPress. This is your first post.', '', 'Hello world!', '', 'publish', 'post', 'open', 'open', '', 'hello-world', '', '', '2024-05-01 10:00:00', '2024-05-01 10:00:00', 0, 0, '', 'http://localhost/?p=1');
INSERT INTO `wp_posts` (`post_author`, `post_date`, `post_date_gmt`, `post_content`, `post_content_filtered`, `post_title`, `post_excerpt`, `post_status`, `post_type`, `comment_status`, `ping_status`, `post_password`, `post_name`, `to_ping`, `pinged`, `post_modified`, `post_modified_gmt`, `post_parent`, `menu_order`, `post_mime_type`, `guid`) VALUES (1, '2024-06-02 11:00:00', '2024-06-02 11:00:00', 'It''s a \"quoted\" post\\with a backslash and 100% cotton_wool.', '', 'Second Post', '', 'publish', 'post', 'open', 'open', '', 'second-post', '', '', '2024-06-02 11:00:00', '2024-06-02 11:00:00', 0, 0, '', '');
INSERT INTO `wp_posts` (`post_author`, `post_date`, `post_content`, `post_title`, `post_excerpt`, `post_status`, `post_type`, `to_ping`, `pinged`, `post_content_filtered`) VALUES (1, '2024-06-03 09:00:00', 'draft body', 'A draft', '', 'draft', 'post', '', '', '');
UPDATE `wp_posts` SET `guid` = 'http://localhost/?p=2' WHERE `ID` = 2;
INSERT INTO `wp_term_relationships` (`object_id`, `term_taxonomy_id`) VALUES (1, 1);
INSERT INTO `wp_term_relationships` (`object_id`, `term_taxonomy_id`) VALUES (2, 2);
INSERT INTO `wp_postmeta` (`post_id`, `meta_key`, `meta_value`) VALUES (2, '_thumbnail_id', '7');
INSERT INTO `wp_postmeta` (`post_id`, `meta_key`, `meta_value`) VALUES (2, 'views', '42');
SELECT post_name FROM wp_posts WHERE post_name = 'hello-world' AND post_type = 'post' AND ID != 2 LIMIT 1;
SELECT post_date, post_date_gmt, post_status FROM wp_posts WHERE ID = 3;
-- front page (WP_Query) and FOUND_ROWS
SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID FROM wp_posts  WHERE 1=1  AND ((wp_posts.post_type = 'post' AND (wp_posts.post_status = 'publish' OR wp_posts.post_status = 'private')))  ORDER BY wp_posts.post_date DESC LIMIT 0, 1;
SELECT FOUND_ROWS();
SELECT wp_posts.* FROM wp_posts WHERE ID IN (2,1);
SELECT post_id, meta_key, meta_value FROM wp_postmeta WHERE post_id IN (1,2) ORDER BY meta_id ASC;
SELECT t.*, tt.*, tr.object_id FROM wp_terms AS t  INNER JOIN wp_term_taxonomy AS tt ON t.term_id = tt.term_id INNER JOIN wp_term_relationships AS tr ON tr.term_taxonomy_id = tt.term_taxonomy_id WHERE tt.taxonomy IN ('category', 'post_tag', 'post_format') AND tr.object_id IN (1, 2) ORDER BY t.name ASC;
-- search
SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID FROM wp_posts  WHERE 1=1  AND (((wp_posts.post_title LIKE '%COTTON\_wool%') OR (wp_posts.post_excerpt LIKE '%COTTON\_wool%') OR (wp_posts.post_content LIKE '%COTTON\_wool%')))  AND (wp_posts.post_password = '')  AND ((wp_posts.post_type = 'post' AND (wp_posts.post_status = 'publish'))) ORDER BY (CASE WHEN wp_posts.post_title LIKE '%cotton\_wool%' THEN 1 WHEN wp_posts.post_excerpt LIKE '%cotton\_wool%' THEN 4 WHEN wp_posts.post_content LIKE '%cotton\_wool%' THEN 5 ELSE 6 END), wp_posts.post_date DESC LIMIT 0, 10;
SELECT ID FROM wp_posts WHERE post_content LIKE '%100\%%';
SELECT ID FROM wp_posts WHERE post_content LIKE '%100\\%%';
-- category archive
SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID FROM wp_posts  LEFT JOIN wp_term_relationships ON (wp_posts.ID = wp_term_relationships.object_id) WHERE 1=1  AND ( wp_term_relationships.term_taxonomy_id IN (2) ) AND ((wp_posts.post_type = 'post' AND (wp_posts.post_status = 'publish'))) GROUP BY wp_posts.ID ORDER BY wp_posts.post_date DESC LIMIT 0, 10;
-- date archive and wp_get_archives
SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID FROM wp_posts  WHERE 1=1  AND ( ( YEAR( wp_posts.post_date ) = 2024 AND MONTH( wp_posts.post_date ) = 6 ) ) AND ((wp_posts.post_type = 'post' AND (wp_posts.post_status = 'publish'))) ORDER BY wp_posts.post_date DESC LIMIT 0, 10;
SELECT YEAR(post_date) AS `year`, MONTH(post_date) AS `month`, count(ID) as posts FROM wp_posts  WHERE post_type = 'post' AND post_status = 'publish' GROUP BY YEAR(post_date), MONTH(post_date) ORDER BY post_date DESC;
SELECT DISTINCT YEAR( post_date ) AS year, MONTH( post_date ) AS month FROM wp_posts WHERE post_type = 'post' ORDER BY post_date DESC;
-- single post, adjacent posts, meta query
SELECT p.ID FROM wp_posts AS p  WHERE p.post_date < '2024-06-02 11:00:00' AND p.post_type = 'post' AND ( p.post_status = 'publish' OR p.post_status = 'private' ) ORDER BY p.post_date DESC LIMIT 1;
SELECT   wp_posts.ID FROM wp_posts  INNER JOIN wp_postmeta ON ( wp_posts.ID = wp_postmeta.post_id ) WHERE 1=1  AND ( ( wp_postmeta.meta_key = 'views' AND CAST(wp_postmeta.meta_value AS SIGNED) > '10' ) ) AND wp_posts.post_type = 'post' AND ((wp_posts.post_status = 'publish')) GROUP BY wp_posts.ID ORDER BY wp_posts.post_date DESC LIMIT 0, 5;
-- comments
INSERT INTO `wp_comments` (`comment_post_ID`, `comment_author`, `comment_author_email`, `comment_author_url`, `comment_author_IP`, `comment_date`, `comment_date_gmt`, `comment_content`, `comment_karma`, `comment_approved`, `comment_agent`, `comment_type`, `comment_parent`, `user_id`) VALUES (1, 'A WordPress Commenter', 'wapuu@wordpress.example', 'https://wordpress.org/', '127.0.0.1', '2024-05-01 10:05:00', '2024-05-01 10:05:00', 'Hi, this is a comment.', 0, '1', 'curl', 'comment', 0, 0);
SELECT comment_ID FROM wp_comments WHERE comment_post_ID = 1 AND comment_parent = '0' AND comment_approved != 'trash' AND ( comment_author = 'a wordpress commenter' OR comment_author_email = 'x@y' ) AND comment_content = 'Hi, this is a comment.' LIMIT 1;
SELECT comment_date_gmt FROM wp_comments WHERE comment_date_gmt >= '2024-05-01 10:04:00' AND ( comment_author_IP = '127.0.0.1' OR comment_author_email = 'wapuu@wordpress.example' ) ORDER BY comment_date_gmt DESC LIMIT 1;
SELECT SQL_CALC_FOUND_ROWS wp_comments.comment_ID FROM wp_comments  WHERE ( comment_approved = '1' ) AND  comment_post_ID = 1 AND  comment_parent = 0  ORDER BY wp_comments.comment_date_gmt ASC, wp_comments.comment_ID ASC;
SELECT comment_approved, COUNT( * ) AS total FROM wp_comments  GROUP BY comment_approved;
UPDATE wp_posts SET comment_count = 1 WHERE ID = 1;
-- dashboard
SELECT post_status, COUNT( * ) AS num_posts FROM wp_posts WHERE post_type = 'post' GROUP BY post_status;
SELECT COUNT(*) FROM wp_term_relationships, wp_posts WHERE wp_posts.ID = wp_term_relationships.object_id AND post_status IN ('publish') AND post_type IN ('post') AND term_taxonomy_id = 2;
SELECT DISTINCT meta_key FROM wp_postmeta WHERE meta_key NOT BETWEEN '_' AND '_z' HAVING meta_key NOT LIKE '\_%' ORDER BY meta_key LIMIT 30;
SELECT SUM(data_length + index_length) as size FROM information_schema.TABLES WHERE table_schema = 'wordpress' AND table_name LIKE 'wp\_%';
-- transients cleanup (multi-table DELETE)
INSERT INTO wp_options (option_name, option_value, autoload) VALUES ('_transient_timeout_feed', '100', 'off'), ('_transient_feed', 'old', 'off'), ('_transient_timeout_fresh', '9999999999', 'off'), ('_transient_fresh', 'new', 'off');
DELETE a, b FROM wp_options a, wp_options b WHERE a.option_name LIKE '\_transient\_%' AND a.option_name NOT LIKE '\_transient\_timeout\_%' AND b.option_name = CONCAT( '_transient_timeout_', SUBSTRING( a.option_name, 12 ) ) AND b.option_value < 1700000000;
SELECT option_name FROM wp_options WHERE option_name LIKE '\_transient%' ORDER BY option_name;
-- edit and delete the post
UPDATE `wp_posts` SET `post_title` = 'Second Post (edited)', `post_modified` = '2024-06-05 12:00:00' WHERE `ID` = 2;
DELETE FROM `wp_postmeta` WHERE `meta_id` IN( 1,2 );
DELETE FROM `wp_posts` WHERE `ID` = 2;
SELECT ID, post_title FROM wp_posts ORDER BY ID;
-- upgrade.php / dbDelta on an installed site
DESC wp_termmeta;
SHOW INDEXES FROM wp_termmeta;
SHOW INDEX FROM wp_termmeta WHERE Column_name = 'meta_key';
SHOW TABLES LIKE 'wp\_termmeta';
SHOW TABLE STATUS WHERE Name = 'wp_posts';
SHOW COLUMNS FROM wp_posts LIKE 'post_category';
ALTER TABLE wp_usermeta DROP INDEX meta_key, ADD INDEX meta_key(meta_key(191));
ALTER TABLE wp_options MODIFY option_name VARCHAR(191);
ALTER TABLE `wp_comments` ADD INDEX ( `comment_author_email` );
SHOW INDEX FROM wp_comments WHERE Key_name = 'comment_author_email';
DELETE FROM wp_options WHERE option_name REGEXP '^[0-9]+_new_email$';
SELECT option_name, option_value FROM wp_options ORDER BY option_id LIMIT 0, 3;
UPDATE wp_posts SET post_date_gmt = DATE_ADD(post_date, INTERVAL '-1:30' HOUR_MINUTE) WHERE ID = 1;
UPDATE wp_posts SET post_modified_gmt = DATE_ADD(post_modified, INTERVAL '1:30' HOUR_MINUTE) WHERE post_modified != '0000-00-00 00:00:00';
SELECT ID, post_date_gmt, post_modified_gmt FROM wp_posts ORDER BY ID;
SELECT option_value FROM wp_options WHERE option_name = 'blogname';
