#!/usr/bin/env bash
# Many sites on one node: RSS per idle site, first-request latency of a
# cold site, and requests/s across all sites round-robin (ephpm vs nginx
# + php-fpm with one regex vhost and $host as root, same pool size).
#
#   bash bench/sites.sh                  # 1,000 sites
#   SITES=10000 bash bench/sites.sh      # the 10k target
set -euo pipefail
cd "$(dirname "$0")/.."
SITES=${SITES:-1000} DURATION=${DURATION:-10} CONNS=${CONNS:-32} WORKERS=${WORKERS:-4} COLD=${COLD:-50}
PORT_OURS=${PORT_OURS:-18380} PORT_NGINX=${PORT_NGINX:-18381} PORT_MYSQL=${PORT_MYSQL:-13480}
W=${BENCH_DIR:-/tmp/ephpm-bench-sites}
FPM_BIN=$(command -v php-fpm8.2 || echo /usr/sbin/php-fpm8.2)

. bench/lib.sh
bench_build

rm -rf "$W" && mkdir -p "$W/sites" "$W/data"
chmod 755 "$W" "$W/sites"
echo "creating $SITES sites" >&2
for i in $(seq 0 $((SITES - 1))); do
  d=$(printf '%s/sites/site%05d.test' "$W" "$i")
  mkdir -p "$d"
  printf '<?php echo "Hello from ", basename(__DIR__);\n' >"$d/index.php"
  cat >"$d/db.php" <<'PHP'
<?php
$db = new mysqli(getenv('EPHPM_DB_HOST'), getenv('EPHPM_DB_USER'), getenv('EPHPM_DB_PASSWORD'), getenv('EPHPM_DB_NAME'), (int)getenv('EPHPM_DB_PORT'));
$db->query('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
echo basename(__DIR__), ' ', $db->query('SELECT COUNT(*) FROM t')->fetch_row()[0];
PHP
done
chmod -R a+rX "$W/sites"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

EPHPM_SERVER__ACCESS_LOG=false EPHPM_PHP__WORKERS=$WORKERS EPHPM_KV__ENABLED=false \
EPHPM_SERVER__SITES_DIR="$W/sites" EPHPM_SERVER__DATA_DIR="$W/data" \
EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN="127.0.0.1:$PORT_MYSQL" EPHPM_DB_SQLITE__IDLE_CLOSE=5s \
  ./bin/ephpm serve --listen "127.0.0.1:$PORT_OURS" >"$W/ephpm.log" 2>&1 & PIDS+=($!)
OURS=$!
wait_up "http://127.0.0.1:$PORT_OURS/" site00000.test
sleep 1
rss0=$(rss_kb "$OURS")

# Cold sites: first request to a site never seen (opens its database).
cold=()
for i in $(seq 1 "$COLD"); do
  host=$(printf 'site%05d.test' $((SITES - i)))
  t=$(curl -s -o /dev/null -w '%{time_total}' -H "Host: $host" "http://127.0.0.1:$PORT_OURS/db.php")
  cold+=("$t")
done
warm=()
for i in $(seq 1 "$COLD"); do
  host=$(printf 'site%05d.test' $((SITES - i)))
  t=$(curl -s -o /dev/null -w '%{time_total}' -H "Host: $host" "http://127.0.0.1:$PORT_OURS/db.php")
  warm+=("$t")
done
pct() { printf '%s\n' "$@" | sort -n | awk -v p="$PCT" '{a[NR]=$1} END {i=int(NR*p/100+0.5); if (i<1) i=1; printf "%.2f", a[i]*1000}'; }

# Touch every site once (page + database), then let them go idle.
echo "touching all $SITES sites" >&2
for i in $(seq 0 $((SITES - 1))); do printf 'site%05d.test\n' "$i"; done |
  xargs -P 8 -I{} curl -s -o /dev/null -H "Host: {}" "http://127.0.0.1:$PORT_OURS/db.php"
rss_busy=$(rss_kb "$OURS")
sleep 12   # > idle_close: every database closes again
rss_idle=$(rss_kb "$OURS")
per_site=$(( (rss_idle - rss0) * 1024 / SITES ))

# nginx + php-fpm peer: one server block, root per Host.
start_fpm "$W/fpm" "$WORKERS"
start_nginx "$W/nginx" "$PORT_NGINX" "$W/sites/\$site" "$W/fpm/php-fpm.sock" '~^(?<site>[a-z0-9.-]+)$'
wait_up "http://127.0.0.1:$PORT_NGINX/" site00000.test

cat >"$W/rr.lua" <<LUA
local n = $SITES
local i = math.random(0, n - 1)
request = function()
  i = (i + 1) % n
  return wrk.format("GET", "/", { Host = string.format("site%05d.test", i) })
end
LUA
timeout 10 wrk -t2 -c"$CONNS" -d2s -s "$W/rr.lua" "http://127.0.0.1:$PORT_OURS/" >/dev/null 2>&1 || true
ours=$(run_wrk "http://127.0.0.1:$PORT_OURS/" -s "$W/rr.lua")
timeout 10 wrk -t2 -c"$CONNS" -d2s -s "$W/rr.lua" "http://127.0.0.1:$PORT_NGINX/" >/dev/null 2>&1 || true
peer=$(run_wrk "http://127.0.0.1:$PORT_NGINX/" -s "$W/rr.lua")

echo
echo "$SITES sites, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $WORKERS php-fpm workers"
echo
echo "| measure | ephpm | nginx + php-fpm |"
echo "|---|---:|---:|"
echo "| RSS at start, after touching all, after idle | $((rss0/1024)) / $((rss_busy/1024)) / $((rss_idle/1024)) MiB | - |"
echo "| RSS per idle site (after idle close) | $((per_site)) bytes | - |"
PCT=50; c50=$(pct "${cold[@]}"); w50=$(pct "${warm[@]}"); PCT=99; c99=$(pct "${cold[@]}"); w99=$(pct "${warm[@]}")
echo "| first request of a cold site (db.php: opens its database, creates a table), p50 / p99 | $c50 / $c99 ms | - |"
echo "| same page, warm, p50 / p99 | $w50 / $w99 ms | - |"
set -- $ours; o_rps=$1 o50=$2 o99=$3 obad=$4
set -- $peer; n_rps=$1 n50=$2 n99=$3 nbad=$4
ratio=$(awk -v a="$o_rps" -v b="$n_rps" 'BEGIN { printf "%.2fx", a/b }')
echo "| hello across $SITES sites round-robin, req/s (ratio) | $o_rps ($ratio) | $n_rps |"
echo "| same, p50 / p99 | $o50 / $o99 | $n50 / $n99 |"
echo "| non-2xx responses | $obad | $nbad |"
