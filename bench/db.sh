#!/usr/bin/env bash
# Database benchmark: ephpm (embedded database over the MySQL protocol) vs
# nginx + php-fpm + MariaDB vs nginx + php-fpm + pdo_sqlite, side by side
# in one run, on loopback with wrk. Every stack runs the same PHP with the
# same pool (pm=static, $WORKERS workers, OPcache on); ephpm supervises a
# php-fpm of its own. Starts everything itself (including a private
# MariaDB with its own datadir, socket and port, never the system service)
# and stops what it started, by PID, on exit.
#
#   q30       a page doing 30 primary-key SELECTs (mysqli prepared
#             statements, or PDO for SQLite) on a 10,000-row posts table,
#             new connection + set_charset per request as WordPress does
#   wp-front  the WordPress front page (Debian's WordPress, 10 posts)
#
#   bash bench/db.sh                          # 3 rounds x 10 s per column
#   ROUNDS=1 DURATION=3 bash bench/db.sh      # quick check
#   EPHPM_BIN=/path/to/ephpm bash bench/db.sh # skip the build
#   HOLD=600 ROUNDS=1 bash bench/db.sh        # keep the stacks up 10 min after the checks
#   WORKLOADS=q30 bash bench/db.sh            # measure only q30 (setup is unchanged)
#   EPHPM_BASE=/tmp/ephpm-old bash bench/db.sh  # also run q30 on another ephpm build
#                                             # (column "base"): a before/after in one run
#   OURS_ENV="GOMAXPROCS=1" BASE_ENV="GOMAXPROCS=2" EPHPM_BASE=bin/ephpm bash bench/db.sh
#                                             # extra environment for each ephpm
#
# Run as root (installs Debian packages, runs MariaDB as mysql and PHP as
# www-data). Only 127.0.0.1 is used.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-32} CONNS_WP=${CONNS_WP:-8} WORKERS=${WORKERS:-4} ROWS=${ROWS:-10000}
PORT_OURS_Q=${PORT_OURS_Q:-18280} PORT_OURS_WP=${PORT_OURS_WP:-18281}
PORT_NGINX_Q=${PORT_NGINX_Q:-18282} PORT_NGINX_WP=${PORT_NGINX_WP:-18283}
MYSQL_OURS_Q=${MYSQL_OURS_Q:-18284} MYSQL_OURS_WP=${MYSQL_OURS_WP:-18285}
MARIADB_PORT=${MARIADB_PORT:-13306}
PORT_BASE_Q=${PORT_BASE_Q:-18286} MYSQL_BASE_Q=${MYSQL_BASE_Q:-18287} EPHPM_BASE=${EPHPM_BASE:-}
W=${BENCH_DIR:-/tmp/ephpm-bench-db}
WP_SRC=${WP_SRC:-/usr/share/wordpress}
WP_PASS='bench horse battery'
T0=$(date +%s) LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

log() { echo "db.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (installs packages, runs MariaDB as mysql and PHP as www-data)"

# ------------------------------------------------------------------ packages
PKGS=(mariadb-server mariadb-client nginx-light wrk php8.2-fpm php8.2-cli php8.2-opcache
  php8.2-sqlite3 php8.2-mysql php8.2-xml php8.2-mbstring wordpress curl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  # Debian's postinst would start nginx/php-fpm/mariadb on their default
  # ports; policy-rc.d exit 101 forbids that (kept if one already exists).
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  ok=1
  timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq || true
  timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/tmp/ephpm-bench-db-apt.log 2>&1 || ok=0
  [ $added_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $ok = 1 ] || die "apt-get install failed, see /tmp/ephpm-bench-db-apt.log"
fi
FPM_BIN=$(command -v php-fpm8.2 || echo /usr/sbin/php-fpm8.2)
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
[ -f "$WP_SRC/wp-settings.php" ] || die "WordPress not found in $WP_SRC"

if [ -n "${EPHPM_BIN:-}" ]; then
  EPHPM=$EPHPM_BIN
else
  mkdir -p bin && timeout 600 go build -o bin/ephpm ./cmd/ephpm || die "go build failed"
  EPHPM=./bin/ephpm
fi

# Refuse to run over someone else's server on one of our ports.
for port in $PORT_OURS_Q $PORT_OURS_WP $PORT_BASE_Q $MYSQL_BASE_Q $PORT_NGINX_Q $PORT_NGINX_WP $MYSQL_OURS_Q $MYSQL_OURS_WP $MARIADB_PORT; do
  if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then die "port $port is in use"; fi
done

# ------------------------------------------------------------------ processes
PIDS=() NAMES=()
cleanup() {
  local i j p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do   # bounded: MariaDB flushes on TERM
    p=${PIDS[$i]}
    for j in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      log "${NAMES[$i]} (pid $p) still running 10 s after SIGTERM: SIGKILL"; kill -KILL "$p" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
}
declare -A PIDOF
# start_bg NAME CMD...: start CMD in the background, stopped on exit.
start_bg() { local name=$1; shift; "$@" & PIDS+=($!) NAMES+=("$name"); PIDOF[$name]=$!; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESC CMD...: retry CMD for up to 30 s.
wait_for() {
  local desc=$1 i; shift
  for i in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "$desc did not come up"
}

rm -rf "$W" && mkdir -p "$W"/{q30,data,fpm,nginx/tmp,mariadb/run,ours-q,ours-wp}
chmod 755 "$W" "$W/q30" "$W/data"

# ------------------------------------------------------------------ pages
# Deterministic rows, the same in every database (as bench/lib setup).
cat >"$W/rows.php" <<'PHP'
<?php
function bench_rows(int $n): Generator {
    mt_srand(42);
    $words = explode(' ', 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat');
    $w = count($words) - 1;
    for ($id = 1; $id <= $n; $id++) {
        $t = []; for ($i = 0; $i < 6; $i++) $t[] = $words[mt_rand(0, $w)];
        $b = []; for ($i = 0; $i < 150; $i++) $b[] = $words[mt_rand(0, $w)];
        $title = ucfirst(implode(' ', $t)) . " #$id";
        yield [$id, $title, strtolower(str_replace([' ', '#'], ['-', ''], $title)), implode(' ', $b), 1700000000 + $id * 60];
    }
}
// php rows.php sqlite FILE ROWS | php rows.php mysql HOST PORT SOCKET USER PASSWORD DB ROWS
$a = $argv;
if ($a[1] === 'sqlite') {
    $db = new PDO('sqlite:' . $a[2], null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $db->exec('CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL, slug TEXT NOT NULL, body TEXT NOT NULL, created INTEGER NOT NULL)');
    $db->beginTransaction();
    $st = $db->prepare('INSERT INTO posts VALUES (?,?,?,?,?)');
    foreach (bench_rows((int) $a[3]) as $r) $st->execute($r);
    $db->commit();
    echo $db->query('SELECT count(*) FROM posts')->fetchColumn(), "\n";
} else {
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    $db = new mysqli($a[2], $a[5], $a[6], $a[7], (int) $a[3], $a[4] === '' ? null : $a[4]);
    $db->set_charset('utf8mb4');
    $db->query('CREATE TABLE posts (id INT UNSIGNED NOT NULL PRIMARY KEY, title VARCHAR(255) NOT NULL, slug VARCHAR(255) NOT NULL, body TEXT NOT NULL, created INT NOT NULL) DEFAULT CHARSET=utf8mb4');
    $db->begin_transaction();
    $st = $db->prepare('INSERT INTO posts (id, title, slug, body, created) VALUES (?,?,?,?,?)');
    foreach (bench_rows((int) $a[8]) as $r) { $st->bind_param('isssi', ...$r); $st->execute(); }
    $db->commit();
    echo $db->query('SELECT count(*) FROM posts')->fetch_row()[0], "\n";
}
PHP

# One mysqli page for ephpm and for nginx + php-fpm + MariaDB: both pass
# the connection as EPHPM_DB_* (ephpm itself; nginx as fastcgi_param).
# Each row is checked against the id asked for, so rows=30 means 30 right rows.
cat >"$W/q30/q30.php" <<'PHP'
<?php
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$db = new mysqli('localhost', getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), 0, getenv('EPHPM_DB_SOCKET'));
$db->set_charset('utf8mb4');
$st = $db->prepare('SELECT id, title, slug, body, created FROM posts WHERE id = ?');
$id = 0; $n = 0; $bytes = 0; $items = '';
$st->bind_param('i', $id);
for ($i = 0; $i < 30; $i++) {
    $id = mt_rand(1, ROWS);
    $st->execute();
    $row = $st->get_result()->fetch_assoc();
    if ($row && (int) $row['id'] === $id && str_ends_with($row['title'], "#$id")) {
        $n++; $bytes += strlen($row['body']);
        $items .= '<li><a href="/' . htmlspecialchars($row['slug']) . '">' . htmlspecialchars($row['title']) . '</a></li>';
    }
}
$st->close(); $db->close();
echo "<!doctype html><html><body><ul>$items</ul><p>rows=$n bytes=$bytes</p></body></html>\n";
PHP
cat >"$W/q30/sqlite30.php" <<'PHP'
<?php
$db = new PDO('sqlite:' . SQLITE_DB, null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$st = $db->prepare('SELECT id, title, slug, body, created FROM posts WHERE id = ?');
$n = 0; $bytes = 0; $items = '';
for ($i = 0; $i < 30; $i++) {
    $id = mt_rand(1, ROWS);
    $st->execute([$id]);
    $row = $st->fetch(PDO::FETCH_ASSOC);
    $st->closeCursor();
    if ($row && (int) $row['id'] === $id && str_ends_with($row['title'], "#$id")) {
        $n++; $bytes += strlen($row['body']);
        $items .= '<li><a href="/' . htmlspecialchars($row['slug']) . '">' . htmlspecialchars($row['title']) . '</a></li>';
    }
}
echo "<!doctype html><html><body><ul>$items</ul><p>rows=$n bytes=$bytes</p></body></html>\n";
PHP
sed -i "s|ROWS|$ROWS|g; s|SQLITE_DB|'$W/data/bench.sqlite'|g" "$W/q30/q30.php" "$W/q30/sqlite30.php"
cat >"$W/q30/check.php" <<'PHP'
<?php
$o = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
printf("php=%s opcache=%s\n", PHP_VERSION, ($o && $o['opcache_enabled']) ? 'on' : 'off');
PHP
chmod 644 "$W"/q30/*.php

log "SQLite: $ROWS rows"
[ "$(php "$W/rows.php" sqlite "$W/data/bench.sqlite" "$ROWS")" = "$ROWS" ] || die "sqlite load"
chown -R www-data:www-data "$W/data"

# WordPress: Debian's tree with symlinks resolved, minus translations.
log "copying WordPress from $WP_SRC"
cp -rL "$WP_SRC" "$W/wp-src" 2>/dev/null || true   # Debian ships a few dangling symlinks
rm -rf "$W/wp-src/wp-content/languages" "$W/wp-src/wp-config.php" "$W/wp-src/.htaccess"
[ -f "$W/wp-src/wp-settings.php" ] || die "WordPress copy failed"
cp -a "$W/wp-src" "$W/wp-ours" && cp -a "$W/wp-src" "$W/wp-nginx"
cp examples/wordpress/wp-config.php "$W/wp-ours/wp-config.php"
cat >"$W/wp-nginx/wp-config.php" <<PHP
<?php
// WordPress on the private MariaDB, over its unix socket (DB_HOST localhost).
define('DB_NAME', 'wordpress');
define('DB_USER', 'wp');
define('DB_PASSWORD', 'wp');
define('DB_HOST', 'localhost:$W/mariadb/run/mysqld.sock');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
	'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as \$k) {
	define(\$k, hash('sha256', \$k . '|bench'));
}
\$table_prefix = 'wp_';
define('WP_DEBUG', false);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('DISABLE_WP_CRON', true);
if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');
require_once ABSPATH . 'wp-settings.php';
PHP
chmod -R a+rX "$W/wp-ours" "$W/wp-nginx"
rm -rf "$W/wp-src"

# ------------------------------------------------------------------ MariaDB
log "MariaDB: private instance on 127.0.0.1:$MARIADB_PORT"
MSOCK=$W/mariadb/run/mysqld.sock
mkdir -p "$W/mariadb/data" && chown -R mysql:mysql "$W/mariadb" && chmod 755 "$W/mariadb" "$W/mariadb/run"
timeout 120 mariadb-install-db --no-defaults --user=mysql --datadir="$W/mariadb/data" \
  --auth-root-authentication-method=socket --skip-test-db >"$W/mariadb/install.log" 2>&1 \
  || die "mariadb-install-db failed, see $W/mariadb/install.log"
start_bg mariadbd "$MARIADBD" --no-defaults --user=mysql --datadir="$W/mariadb/data" \
  --socket="$MSOCK" --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
  --pid-file="$W/mariadb/run/mariadbd.pid" --log-error="$W/mariadb/error.log" \
  --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=128M \
  --max-connections=200 --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
  >"$W/mariadb/stdout.log" 2>&1
mcli() { timeout 60 mariadb --no-defaults --socket="$MSOCK" -uroot "$@"; }
wait_for "MariaDB (see $W/mariadb/error.log)" mcli -e 'SELECT 1'
mcli -e "CREATE DATABASE bench; CREATE DATABASE wordpress;
  CREATE USER 'bench'@'localhost' IDENTIFIED BY 'bench'; GRANT ALL ON bench.* TO 'bench'@'localhost';
  CREATE USER 'wp'@'localhost' IDENTIFIED BY 'wp'; GRANT ALL ON wordpress.* TO 'wp'@'localhost';"
log "MariaDB: $ROWS rows"
[ "$(timeout 300 php "$W/rows.php" mysql localhost 0 "$MSOCK" bench bench bench "$ROWS")" = "$ROWS" ] || die "mariadb load"

# ------------------------------------------------------------------ php-fpm + nginx
cat >"$W/fpm/php-fpm.conf" <<CONF
[global]
pid = $W/fpm/php-fpm.pid
error_log = $W/fpm/error.log
daemonize = no
[bench]
user = www-data
group = www-data
listen = $W/fpm/php-fpm.sock
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
listen.backlog = 511
pm = static
pm.max_children = $WORKERS
pm.max_requests = 0
CONF
start_bg php-fpm "$FPM_BIN" -F -y "$W/fpm/php-fpm.conf" -d opcache.enable=1 >"$W/fpm/stdout.log" 2>&1

php_loc() { # nginx PHP location; $1: extra fastcgi_param lines
  cat <<CONF
        location / { try_files \$uri \$uri/ /index.php?\$args; }
        location ~ \.php\$ {
            try_files \$uri =404;
            include /etc/nginx/fastcgi_params;
            # Debian's fastcgi_params sends \$host, which drops the port: WordPress
            # on a port other than 80 would record and redirect to the wrong URL.
            fastcgi_param HTTP_HOST \$http_host;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            $1
            fastcgi_pass unix:$W/fpm/php-fpm.sock;
        }
CONF
}
cat >"$W/nginx/nginx.conf" <<CONF
user www-data;
worker_processes auto;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_timeout 65; keepalive_requests 100000;
    client_body_temp_path $W/nginx/tmp/body; proxy_temp_path $W/nginx/tmp/proxy;
    fastcgi_temp_path $W/nginx/tmp/fastcgi; uwsgi_temp_path $W/nginx/tmp/uwsgi; scgi_temp_path $W/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT_NGINX_Q default_server;
        root $W/q30;
        index index.php;
$(php_loc "fastcgi_param EPHPM_DB_SOCKET $MSOCK; fastcgi_param EPHPM_DB_USER bench; fastcgi_param EPHPM_DB_PASSWORD bench; fastcgi_param EPHPM_DB_NAME bench;")
    }
    server {
        listen 127.0.0.1:$PORT_NGINX_WP;
        root $W/wp-nginx;
        index index.php;
$(php_loc "")
    }
}
CONF
start_bg nginx nginx -p "$W/nginx/" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" -g 'daemon off;'

# ------------------------------------------------------------------ ephpm
start_ours() { # name port mysql_port docroot [binary [env]]
  mkdir -p "$W/$1/data"
  local -a extra; read -ra extra <<<"${6-${OURS_ENV:-}}"
  start_bg "ephpm $1" env "${extra[@]}" EPHPM_PHP__WORKERS="$WORKERS" EPHPM_SERVER__ACCESS_LOG=false EPHPM_KV__ENABLED=false \
    EPHPM_SERVER__DATA_DIR="$W/$1/data" EPHPM_DB_SQLITE_PROXY__ENABLED=true \
    EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN="127.0.0.1:$3" EPHPM_WP_DISABLE_CRON=1 \
    "${5:-$EPHPM}" serve --listen "127.0.0.1:$2" --root "$4" >"$W/$1/stdout.log" 2>&1
}
start_ours ours-q "$PORT_OURS_Q" "$MYSQL_OURS_Q" "$W/q30"
start_ours ours-wp "$PORT_OURS_WP" "$MYSQL_OURS_WP" "$W/wp-ours"

up() { curl -fsS -m 5 -o /dev/null "$1"; }
wait_for nginx up "http://127.0.0.1:$PORT_NGINX_Q/check.php"
wait_for "ephpm (see $W/ours-q/stdout.log)" up "http://127.0.0.1:$PORT_OURS_Q/check.php"
wait_for "ephpm (see $W/ours-wp/stdout.log)" up "http://127.0.0.1:$PORT_OURS_WP/wp-admin/install.php"
wait_for "ephpm's MySQL port" timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MYSQL_OURS_Q"
log "ephpm: $ROWS rows over its MySQL port"
[ "$(timeout 300 php "$W/rows.php" mysql 127.0.0.1 "$MYSQL_OURS_Q" '' ephpm "$(cat "$W/ours-q/data/mysql-password")" ephpm "$ROWS")" = "$ROWS" ] \
  || die "ephpm load (see $W/ours-q/stdout.log)"
if [ -n "$EPHPM_BASE" ]; then
  start_ours ours-base "$PORT_BASE_Q" "$MYSQL_BASE_Q" "$W/q30" "$EPHPM_BASE" "${BASE_ENV:-}"
  wait_for "ephpm base (see $W/ours-base/stdout.log)" up "http://127.0.0.1:$PORT_BASE_Q/check.php"
  wait_for "ephpm base's MySQL port" timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MYSQL_BASE_Q"
  [ "$(timeout 300 php "$W/rows.php" mysql 127.0.0.1 "$MYSQL_BASE_Q" '' ephpm "$(cat "$W/ours-base/data/mysql-password")" ephpm "$ROWS")" = "$ROWS" ] \
    || die "ephpm base load (see $W/ours-base/stdout.log)"
fi

# ------------------------------------------------------------------ WordPress content
wp_setup() { # base_url: install, then 10 posts over XML-RPC
  local base=$1 out i
  curl -fsS -m 60 -o /dev/null "$base/wp-admin/install.php" || die "$base install page"
  out=$(curl -sS -m 120 "$base/wp-admin/install.php?step=2" --data-urlencode 'weblog_title=Bench Blog' \
    -d user_name=admin --data-urlencode "admin_password=$WP_PASS" --data-urlencode "admin_password2=$WP_PASS" \
    -d pw_weak=1 --data-urlencode admin_email=admin@example.com -d blog_public=0 -d language=)
  grep -q 'Success!' <<<"$out" || { echo "$out" | tail -c 2000 >&2; die "$base install"; }
  for i in $(seq 1 10); do
    body="Post number $i of the bench. $(printf 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. %.0s' $(seq 8))"
    out=$(curl -sS -m 60 -H 'Content-Type: text/xml' "$base/xmlrpc.php" --data-binary @- <<XML
<?xml version="1.0"?><methodCall><methodName>wp.newPost</methodName><params>
<param><value><string>1</string></value></param><param><value><string>admin</string></value></param>
<param><value><string>$WP_PASS</string></value></param><param><value><struct>
<member><name>post_title</name><value><string>Bench post $i</string></value></member>
<member><name>post_content</name><value><string>&lt;p&gt;$body&lt;/p&gt;&lt;p&gt;$body&lt;/p&gt;</string></value></member>
<member><name>post_status</name><value><string>publish</string></value></member>
</struct></value></param></params></methodCall>
XML
)
    grep -q '<string>[0-9]*</string>' <<<"$out" && ! grep -q '<fault>' <<<"$out" || { echo "$out" >&2; die "$base wp.newPost $i"; }
  done
}
log "WordPress: install + 10 posts (ephpm, nginx)"
wp_setup "http://127.0.0.1:$PORT_OURS_WP"
wp_setup "http://127.0.0.1:$PORT_NGINX_WP"
# The installer may leave the two sites configured differently (it sets
# pretty permalinks only where its loopback request succeeds). Pin both to
# the same settings so the front pages do the same work; rewrite_rules is
# rebuilt on the next request.
wp_same() { # base_url: SQL for that site
  echo "UPDATE wp_options SET option_value = '$1' WHERE option_name IN ('home', 'siteurl');
    UPDATE wp_options SET option_value = '/%year%/%monthnum%/%day%/%postname%/' WHERE option_name = 'permalink_structure';
    DELETE FROM wp_options WHERE option_name IN ('rewrite_rules', 'https_detection_errors');"
}
wp_same "http://127.0.0.1:$PORT_NGINX_WP" | mcli wordpress || die "nginx WordPress settings"
wp_same "http://127.0.0.1:$PORT_OURS_WP" | timeout 60 mariadb --no-defaults -h127.0.0.1 -P"$MYSQL_OURS_WP" -uephpm \
  -p"$(cat "$W/ours-wp/data/mysql-password")" ephpm || die "ephpm WordPress settings"
for u in "http://127.0.0.1:$PORT_OURS_WP/" "http://127.0.0.1:$PORT_NGINX_WP/"; do   # rebuild rewrite_rules
  curl -fsS -m 60 -o /dev/null "$u" || die "$u after the settings"
done

# ------------------------------------------------------------------ correctness
declare -A URL=(
  [q30,ours]="http://127.0.0.1:$PORT_OURS_Q/q30.php"
  [q30,mariadb]="http://127.0.0.1:$PORT_NGINX_Q/q30.php"
  [q30,sqlite]="http://127.0.0.1:$PORT_NGINX_Q/sqlite30.php"
  [wp-front,ours]="http://127.0.0.1:$PORT_OURS_WP/"
  [wp-front,mariadb]="http://127.0.0.1:$PORT_NGINX_WP/"
)
COLS_q30="ours mariadb sqlite" COLS_wp_front="ours mariadb"
if [ -n "$EPHPM_BASE" ]; then URL[q30,base]="http://127.0.0.1:$PORT_BASE_Q/q30.php" COLS_q30="ours base mariadb sqlite"; fi
for k in "${!URL[@]}"; do
  code=$(curl -sS -m 30 -o "$W/check.out" -w '%{http_code}' "${URL[$k]}" || echo 000)
  case $k in
    q30,*) grep -q 'rows=30 ' "$W/check.out" && [ "$code" = 200 ] || { head -c 2000 "$W/check.out" >&2; die "$k: want 200 and rows=30, got $code"; } ;;
    wp-front,*) grep -q 'Bench post 10' "$W/check.out" && grep -q 'Bench post 1<' "$W/check.out" && [ "$code" = 200 ] \
      || { head -c 2000 "$W/check.out" >&2; die "$k: want 200 and the bench posts, got $code"; } ;;
  esac
done
for u in "http://127.0.0.1:$PORT_OURS_Q/check.php" "http://127.0.0.1:$PORT_NGINX_Q/check.php"; do
  curl -fsS -m 10 "$u" | grep -q 'opcache=on' || die "OPcache off at $u"
done
log "all columns answer correctly; setup took $(( $(date +%s) - T0 )) s"
if [ "${HOLD:-0}" -gt 0 ]; then   # keep the stacks up to poke at them
  for k in "${!URL[@]}"; do log "  $k ${URL[$k]}"; done
  log "holding ${HOLD} s"; start_bg hold sleep "$HOLD"; wait "${PIDOF[hold]}" || true   # a signal ends it (cleanup kills the sleep)
fi

# ------------------------------------------------------------------ measure
# run_wrk URL CONNS -> "rps p50_ms p99_ms errors requests"
run_wrk() {
  timeout $((DURATION + 30)) wrk -t2 -c"$2" -d"${DURATION}s" --latency --timeout 10s "$1" 2>&1 | awk '
    /Requests\/sec/ {rps=$2}
    /requests in/ {n=$1}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    /Non-2xx/ {bad+=$NF}
    /Socket errors/ {gsub(",", ""); bad+=$4+$6+$8+$10}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    END { if (rps == "") rps = 0; printf "%s %.3f %.3f %d %d\n", rps, ms(p50), ms(p99), bad, n }'
}
# CPU (user+system) of every process of a stack, to put the req/s of a
# shared machine in perspective: ms of CPU per request, all processes.
tree() { local c; echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
stack_pids() { # workload who
  case $1,$2 in
    q30,ours) tree "${PIDOF[ephpm ours-q]}" ;;
    q30,base) tree "${PIDOF[ephpm ours-base]}" ;;
    wp-front,ours) tree "${PIDOF[ephpm ours-wp]}" ;;
    *,mariadb) tree "${PIDOF[nginx]}"; tree "${PIDOF[php-fpm]}"; echo "${PIDOF[mariadbd]}" ;;
    *,sqlite) tree "${PIDOF[nginx]}"; tree "${PIDOF[php-fpm]}" ;;
  esac
}
php_pids() { # workload who: the stack's php-fpm processes only
  case $1,$2 in
    q30,ours) tree "${PIDOF[ephpm ours-q]}" | tail -n +2 ;;
    q30,base) tree "${PIDOF[ephpm ours-base]}" | tail -n +2 ;;
    wp-front,ours) tree "${PIDOF[ephpm ours-wp]}" | tail -n +2 ;;
    *) tree "${PIDOF[php-fpm]}" ;;
  esac
}
ticks() { local p; for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null || true; done | awk '{ sub(/.*\) /, ""); t += $12 + $13 } END { print t + 0 }'; }
HZ=$(getconf CLK_TCK)
declare -A RES
read -ra WORKLOADS <<<"${WORKLOADS:-q30 wp-front}"
for r in $(seq "$ROUNDS"); do
  for wl in "${WORKLOADS[@]}"; do
    v=COLS_${wl//-/_}; read -ra cols <<<"${!v}"
    [ $((r % 2)) -eq 0 ] && cols=($(printf '%s\n' "${cols[@]}" | tac))   # alternate order
    c=$CONNS; [ "$wl" = wp-front ] && c=$CONNS_WP
    for who in "${cols[@]}"; do
      timeout 15 wrk -t2 -c"$c" -d2s --timeout 10s "${URL[$wl,$who]}" >/dev/null 2>&1 || true   # warm-up
      mapfile -t pids < <(stack_pids "$wl" "$who")
      mapfile -t ppids < <(php_pids "$wl" "$who")
      t0=$(ticks "${pids[@]}") p0=$(ticks "${ppids[@]}")
      out=$(run_wrk "${URL[$wl,$who]}" "$c")
      t1=$(ticks "${pids[@]}") p1=$(ticks "${ppids[@]}")
      n=$(echo "$out" | awk '{print $5}')
      RES[$wl,$who,$r]="$out $(awk -v d=$((t1 - t0)) -v p=$((p1 - p0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.2f %.2f", (n > 0 ? d * 1000 / hz / n : 0), (n > 0 ? p * 1000 / hz / n : 0) }')"
      log "round $r $wl $who: ${RES[$wl,$who,$r]}  (rps p50 p99 errors requests cpu_ms/req php_ms/req)"
    done
  done
done

# ------------------------------------------------------------------ report
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
med() { local r; for r in $(seq "$ROUNDS"); do echo "${RES[$1,$2,$r]}" | awk -v f="$3" '{print $f}'; done | median; }
declare -A NAME=([ours]="ephpm (embedded DB)" [mariadb]="nginx+fpm+MariaDB" [sqlite]="nginx+fpm+pdo_sqlite" [base]="ephpm (base build)")
declare -A TARGET=([q30,mariadb]=1.0 [q30,sqlite]=0.7 [wp-front,mariadb]=1.0 [q30,base]=1.0)
echo
echo "ephpm $("$EPHPM" version 2>/dev/null | awk '{print $2}') vs nginx $(nginx -v 2>&1 | sed 's/.*\///') + php-fpm $(php -r 'echo PHP_VERSION;') ($WORKERS workers, pm=static, OPcache on), MariaDB $(mcli -N -e 'SELECT VERSION()' | cut -d- -f1)"
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $LOAD0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end, wrk -t2 -c$CONNS (wp-front -c$CONNS_WP) -d${DURATION}s, median of $ROUNDS"
echo
printf '| %-8s | %-22s | %9s | %8s | %8s | %6s | %11s | %11s | %-24s |\n' workload stack "req/s" "p50 ms" "p99 ms" errors "CPU ms/req" "PHP ms/req" "ephpm / this"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ---------- ------------------------ ----------- ---------- ---------- -------- ------------- ------------- --------------------------
PERROUND=()
for wl in "${WORKLOADS[@]}"; do
  v=COLS_${wl//-/_}; read -ra cols <<<"${!v}"
  for who in "${cols[@]}"; do
    rps=$(med "$wl" "$who" 1) p50=$(med "$wl" "$who" 2) p99=$(med "$wl" "$who" 3) cpu=$(med "$wl" "$who" 6) phpcpu=$(med "$wl" "$who" 7)
    errs=$(for r in $(seq "$ROUNDS"); do echo "${RES[$wl,$who,$r]}" | awk '{print $4}'; done | awk '{s+=$1} END {print s+0}')
    ratio=""
    if [ "$who" != ours ]; then
      t=${TARGET[$wl,$who]}
      # Each round measures the columns back to back (in alternating
      # order), so a round's ratio is fair even when the machine's speed
      # drifts between rounds; the median of those ratios is the figure.
      rr=$(for r in $(seq "$ROUNDS"); do
        awk -v a="$(echo "${RES[$wl,ours,$r]}" | awk '{print $1}')" -v b="$(echo "${RES[$wl,$who,$r]}" | awk '{print $1}')" \
          'BEGIN { printf "%.2f\n", (b > 0 ? a/b : 0) }'
      done)
      PERROUND+=("$wl vs ${NAME[$who]}: $(echo $rr)")
      ratio=$(echo "$rr" | median | awk -v t="$t" '{ printf "%.2fx (target %.1fx %s)", $1, t, ($1 >= t ? "met" : "MISSED") }')
    fi
    printf '| %-8s | %-22s | %9.0f | %8.2f | %8.2f | %6s | %11.2f | %11.2f | %-24s |\n' "$wl" "${NAME[$who]}" "$rps" "$p50" "$p99" "$errs" "$cpu" "$phpcpu" "$ratio"
  done
done
echo
echo "ephpm / this, round by round: ${PERROUND[0]}"
for x in "${PERROUND[@]:1}"; do echo "  $x"; done
echo
echo "ephpm / this: the median over rounds of ephpm's req/s over that stack's in the same round. CPU ms/req: user+system CPU of all the stack's"
echo "processes (ephpm + its php-fpm; nginx + php-fpm + mariadbd) per request: steadier than req/s"
echo "when other work shares the machine. PHP ms/req: the php-fpm processes' share of it. Run took $(( $(date +%s) - T0 )) s (plus ~20 s to stop)."
