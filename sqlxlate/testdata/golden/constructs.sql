-- DDL: inline keys, prefix lengths, unsigned/display widths, options, backticks
CREATE TABLE `t` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(50) NOT NULL DEFAULT '',
  `score` decimal(10,2) NOT NULL DEFAULT '0.00',
  `created` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `kind` enum('a','b','c') NOT NULL DEFAULT 'a',
  `note` text,
  `bin` varbinary(16) DEFAULT NULL,
  `flag` tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `name` (`name`(20)),
  KEY `kind_created` (`kind`,`created`)
) ENGINE=InnoDB AUTO_INCREMENT=100 DEFAULT CHARSET=utf8mb4 COMMENT='demo table';
SHOW CREATE TABLE t;
-- multi-row insert, LAST_INSERT_ID is the first generated id
INSERT INTO t (name, score, created, kind) VALUES ('alice', 10.5, '2024-01-31 10:00:00', 'a'), ('bob', 7, '2024-02-29 23:59:59', 'b'), ('carol', 12.25, '2023-12-31 00:00:00', 'c');
SELECT id, name, score, created, kind, note, flag FROM t ORDER BY id;
-- omitted NOT NULL columns take MySQL's implicit defaults
INSERT INTO t (name) VALUES ('dave');
SELECT name, score, created, kind, flag FROM t WHERE name = 'dave';
-- case-insensitive = and LIKE on text columns; backslash escapes
SELECT id FROM t WHERE name = 'ALICE';
SELECT id FROM t WHERE name LIKE 'B%';
SELECT 'O\'Brien' AS a, 'tab\there' AS b, 'nl\nx' AS c, 'back\\slash' AS d, "dq\"x" AS e, '100\%' AS f;
-- INSERT IGNORE, REPLACE, unique violation
INSERT IGNORE INTO t (name) VALUES ('alice'), ('erin');
REPLACE INTO t (id, name, score) VALUES (100, 'alice', 99);
SELECT id, name, score FROM t WHERE id = 100;
INSERT INTO t (name) VALUES ('ALICE');
-- ON DUPLICATE KEY UPDATE with VALUES() and the row alias syntax
INSERT INTO t (name, score) VALUES ('bob', 1) ON DUPLICATE KEY UPDATE score = score + VALUES(score);
INSERT INTO t (name, score) VALUES ('bob', 5) AS new ON DUPLICATE KEY UPDATE score = new.score * 2;
SELECT name, score FROM t WHERE name = 'bob';
-- UPDATE affected rows are changed rows; UPDATE/DELETE ORDER BY LIMIT
UPDATE t SET flag = 1 WHERE kind = 'a';
UPDATE t SET flag = 1 WHERE kind = 'a';
UPDATE t SET score = score + 1 ORDER BY score DESC LIMIT 2;
SELECT name, score FROM t ORDER BY score DESC, id;
DELETE FROM t WHERE kind <> 'c' ORDER BY id DESC LIMIT 1;
SELECT name FROM t ORDER BY id;
-- LIMIT offset, count; prepared statement placeholders
SELECT name FROM t ORDER BY id LIMIT 1, 2;
-- args: ["bob", 2]
SELECT name, score FROM t WHERE name = ? OR id = ? ORDER BY id;
-- args: ["frank", "3.5"]
INSERT INTO t (name, score) VALUES (?, ?);
SELECT LAST_INSERT_ID();
-- functions
SELECT CONCAT('a', 1, 'b'), CONCAT('a', NULL), CONCAT_WS('-', 'a', NULL, 'b'), IF(1 > 2, 'yes', 'no'), IFNULL(NULL, 'dflt'), FIELD('b', 'a', 'b', 'c'), GREATEST(3, 7, 5), LEAST(3, 7, 5);
SELECT LOCATE('b', 'abcb'), LOCATE('b', 'abcb', 3), SUBSTRING_INDEX('www.mysql.com', '.', 2), SUBSTRING_INDEX('www.mysql.com', '.', -2), CHAR_LENGTH('héllo'), LENGTH('héllo'), UPPER('abc'), LEFT('abcdef', 2), RIGHT('abcdef', 2), REPLACE('aXbX', 'X', '-'), SUBSTRING('abcdef', 2, 3), SUBSTRING('abcdef', -2), TRIM('  x  ');
SELECT 'abc' REGEXP '^A', 'abc' NOT REGEXP 'z$', 'x' RLIKE '[xy]', CAST('42abc' AS SIGNED), CAST(3.7 AS UNSIGNED), CAST(12 AS CHAR), CAST('2024-05-06 07:08:09' AS DATE), 7 DIV 2, 7 / 2, 7 % 3, MOD(7, 3), ISNULL(NULL), NULL <=> NULL;
SELECT RAND() >= 0 AND RAND() < 1, LENGTH(UUID()), MD5('a'), SHA1('a'), HEX('ab'), HEX(255), FIND_IN_SET('b', 'a,b,c'), LPAD('5', 3, '0'), REPEAT('ab', 3), REVERSE('abc'), FORMAT(1234567.891, 2);
-- dates
SELECT DATE_ADD('2024-01-31', INTERVAL 1 MONTH), DATE_SUB('2024-03-31 10:00:00', INTERVAL 1 MONTH), DATE_ADD('2024-05-01 10:00:00', INTERVAL 90 MINUTE), '2024-05-01' + INTERVAL 1 DAY, '2024-05-01' - INTERVAL 1 YEAR, DATE_ADD('2024-05-01 00:00:00', INTERVAL '1:30' HOUR_MINUTE), ADDDATE('2024-05-01', 10);
SELECT DATE_FORMAT('2024-05-06 07:08:09', '%Y-%m-%d %H:%i:%s %W %M %D %j %a %b %e %l%p'), DATE_FORMAT('2024-01-01', '%U %u %V %v %X %x'), YEAR('2024-05-06'), MONTH('2024-05-06'), DAYOFMONTH('2024-05-06'), DAYOFWEEK('2024-05-06'), WEEKDAY('2024-05-06'), WEEK('2024-05-06'), WEEK('2024-05-06', 1), DAYNAME('2024-05-06'), LAST_DAY('2024-02-10');
SELECT UNIX_TIMESTAMP('1970-01-02 00:00:00') - UNIX_TIMESTAMP('1970-01-01 00:00:00'), FROM_UNIXTIME(86400, '%Y-%m-%d'), DATEDIFF('2024-03-01', '2024-02-01'), TIMESTAMPDIFF(MONTH, '2024-01-31', '2024-03-30'), TIMESTAMPDIFF(DAY, '2024-01-01', '2024-03-01'), EXTRACT(YEAR_MONTH FROM '2024-05-06'), TO_DAYS('2024-01-01'), FROM_DAYS(739251), STR_TO_DATE('06/05/2024', '%d/%m/%Y');
SELECT LENGTH(NOW()), LENGTH(CURDATE()), LENGTH(CURRENT_TIMESTAMP), LENGTH(UTC_TIMESTAMP()), UNIX_TIMESTAMP() > 1700000000;
-- zero dates
SELECT YEAR('0000-00-00 00:00:00'), DATE_ADD('0000-00-00 00:00:00', INTERVAL 1 DAY), UNIX_TIMESTAMP('0000-00-00 00:00:00'), DATE_FORMAT('0000-00-00 00:00:00', '%Y-%m-%d');
SELECT name FROM t WHERE created = '0000-00-00 00:00:00';
-- the SELECT list keeps MySQL's column names
SELECT COUNT(*), count(id) AS n, 1+1, 'lit', NULL, MAX(score) FROM t;
SELECT @@version, @@SESSION.autocommit, @@global.max_allowed_packet, @@character_set_client, DATABASE(), USER(), CONNECTION_ID(), @@time_zone;
-- GROUP_CONCAT, UNION with parenthesised members, derived tables, subqueries
SELECT GROUP_CONCAT(name ORDER BY name SEPARATOR '|') FROM t;
(SELECT name FROM t WHERE kind = 'a' ORDER BY name LIMIT 1) UNION ALL (SELECT name FROM t WHERE kind = 'c' LIMIT 1);
SELECT x.k, x.c FROM (SELECT kind AS k, COUNT(*) AS c FROM t GROUP BY kind) AS x WHERE x.c > 0 ORDER BY x.k;
SELECT name FROM t WHERE id IN (SELECT id FROM t WHERE score > 10) ORDER BY name;
SELECT SQL_NO_CACHE STRAIGHT_JOIN a.name FROM t a USE INDEX (PRIMARY) STRAIGHT_JOIN t b FORCE INDEX (name) ON a.id = b.id WHERE a.id > 0 ORDER BY a.name LIMIT 1 FOR UPDATE;
-- user variables
SET @limit = 2, @who = 'bob';
SET @n := @limit + 1, @s := 'a:=b';
SELECT @s;
SELECT @n;
SELECT @limit, @who, @unset;
SELECT name FROM t WHERE name = @who;
-- transactions and savepoints
START TRANSACTION;
INSERT INTO t (name) VALUES ('tx1');
SAVEPOINT sp1;
INSERT INTO t (name) VALUES ('tx2');
ROLLBACK TO SAVEPOINT sp1;
RELEASE SAVEPOINT sp1;
COMMIT;
BEGIN;
INSERT INTO t (name) VALUES ('tx3');
ROLLBACK;
SELECT name FROM t WHERE name LIKE 'tx%';
SET autocommit = 0;
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED;
LOCK TABLES t WRITE;
UNLOCK TABLES;
-- errors name the construct
SELEC 1;
SELECT * FROM nosuch;
SELECT MATCH (name) AGAINST ('x') FROM t;
SELECT * FROM _ephpm_schema;
SELECT * FROM sqlite_master;
SELECT load_extension('x');
SELECT nosuchcol FROM t;
CREATE TABLE bad (a int) ENGINE=InnoDB PARTITION BY HASH(a) PARTITIONS 2;
