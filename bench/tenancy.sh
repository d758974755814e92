#!/usr/bin/env bash
# What tenant isolation costs on a sites node (shared php-fpm pool):
# OPcache in files (the default with sites: every include passes
# open_basedir) against OPcache in shared memory (php.opcache = "shm",
# where one tenant can include another's cached scripts), side by side in
# one run, same binary, same pool. Optionally a third column: another
# ephpm build (EPHPM_BASE) in its default mode.
#
#   wp-front   the WordPress front page of a site (Debian's WordPress, 10 posts)
#   hello      a one-line PHP page of another site on the same node
#
#   bash bench/tenancy.sh                    # 3 rounds x 10 s
#   ROUNDS=1 DURATION=5 bash bench/tenancy.sh
#   EPHPM_BASE=/tmp/ephpm-old bash bench/tenancy.sh
#
# Run as root (PHP runs as www-data). Only 127.0.0.1 is used.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-8} WORKERS=${WORKERS:-4}
W=${BENCH_DIR:-/tmp/ephpm-bench-tenancy}
EPHPM_BASE=${EPHPM_BASE:-}
WP_SRC=${WP_SRC:-/usr/share/wordpress}
WP_PASS=bench-Passw0rd-1234
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

. bench/lib.sh
bench_build
[ -f "$WP_SRC/wp-settings.php" ] || { echo "WordPress not found in $WP_SRC" >&2; exit 1; }

rm -rf "$W" && mkdir -p "$W/sites/hello.test"
chmod 755 "$W" "$W/sites" "$W/sites/hello.test"
cp -rL "$WP_SRC" "$W/sites/wp.test" 2>/dev/null || true   # Debian ships a few dangling symlinks
rm -rf "$W/sites/wp.test/wp-content/languages" "$W/sites/wp.test/.htaccess"
cp examples/wordpress/wp-config.php "$W/sites/wp.test/wp-config.php"
echo '<?php echo "Hello, World!";' >"$W/sites/hello.test/index.php"
chmod -R a+rX "$W/sites"
# OPcache does not cache files changed in the last 2 s.
find "$W/sites" -type f -exec touch -d '1 hour ago' {} +

declare -A PORT=([file]=18480 [shm]=18481 [base]=18482) MYSQL=([file]=18483 [shm]=18484 [base]=18485)
start_ours() { # name binary [env...]
  local name=$1 bin=$2; shift 2
  mkdir -p "$W/$name"
  env "$@" EPHPM_PHP__WORKERS="$WORKERS" EPHPM_SERVER__ACCESS_LOG=false EPHPM_KV__ENABLED=false \
    EPHPM_SERVER__SITES_DIR="$W/sites" EPHPM_SERVER__DATA_DIR="$W/$name/data" EPHPM_SERVER__RUNTIME_DIR="$W/$name/run" \
    EPHPM_DB_SQLITE_PROXY__ENABLED=true EPHPM_DB_SQLITE_PROXY__MYSQL_LISTEN="127.0.0.1:${MYSQL[$name]}" EPHPM_WP_DISABLE_CRON=1 \
    "$bin" serve --listen "127.0.0.1:${PORT[$name]}" >"$W/$name/stdout.log" 2>&1 &
  PIDS+=($!) PIDOF[$name]=$!
}
declare -A PIDOF
# CPU (user+system) of ephpm and its php-fpm, per request: steadier than
# req/s when other work shares the machine.
tree() { local c; echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
ticks() { local p; for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null || true; done | awk '{ sub(/.*\) /, ""); t += $12 + $13 } END { print t + 0 }'; }
HZ=$(getconf CLK_TCK)
WHO=(file shm)
start_ours file ./bin/ephpm
start_ours shm ./bin/ephpm EPHPM_PHP__OPCACHE=shm
if [ -n "$EPHPM_BASE" ]; then start_ours base "$EPHPM_BASE"; WHO+=(base); fi
for who in "${WHO[@]}"; do wait_up "http://127.0.0.1:${PORT[$who]}/" hello.test; done

wp_setup() { # port: install, then 10 posts over XML-RPC
  local base="http://127.0.0.1:$1" out i body
  out=$(curl -sS -m 120 -H 'Host: wp.test' "$base/wp-admin/install.php?step=2" --data-urlencode 'weblog_title=Bench Blog' \
    -d user_name=admin --data-urlencode "admin_password=$WP_PASS" --data-urlencode "admin_password2=$WP_PASS" \
    -d pw_weak=1 --data-urlencode admin_email=admin@example.com -d blog_public=0 -d language=)
  grep -q 'Success!' <<<"$out" || { echo "$out" | tail -c 2000 >&2; echo "install on $1 failed" >&2; exit 1; }
  for i in $(seq 1 10); do
    body="Post number $i of the bench. $(printf 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. %.0s' $(seq 8))"
    out=$(curl -sS -m 60 -H 'Host: wp.test' -H 'Content-Type: text/xml' "$base/xmlrpc.php" --data-binary @- <<XML
<?xml version="1.0"?><methodCall><methodName>wp.newPost</methodName><params>
<param><value><string>1</string></value></param><param><value><string>admin</string></value></param>
<param><value><string>$WP_PASS</string></value></param><param><value><struct>
<member><name>post_title</name><value><string>Bench post $i</string></value></member>
<member><name>post_content</name><value><string>&lt;p&gt;$body&lt;/p&gt;</string></value></member>
<member><name>post_status</name><value><string>publish</string></value></member>
</struct></value></param></params></methodCall>
XML
)
    grep -q '<fault>' <<<"$out" && { echo "$out" >&2; exit 1; }
  done
  curl -fsS -m 60 -o "$W/check.out" -H 'Host: wp.test' "$base/"
  grep -q 'Bench post 10' "$W/check.out" || { echo "front page of $1 lacks the posts" >&2; exit 1; }
}
for who in "${WHO[@]}"; do wp_setup "${PORT[$who]}"; done
# The file cache really is in use (and shared memory is not) in the default.
[ -n "$(find "$W/file/run/opcache" -name 'wp-settings.php.bin' 2>/dev/null)" ] || { echo "no OPcache file cache in the default mode" >&2; exit 1; }

declare -A RES
WORKLOADS=(wp-front hello)
for r in $(seq "$ROUNDS"); do
  for wl in "${WORKLOADS[@]}"; do
    host=wp.test; [ "$wl" = hello ] && host=hello.test
    order=("${WHO[@]}"); [ $((r % 2)) -eq 0 ] && order=($(printf '%s\n' "${WHO[@]}" | tac))
    for who in "${order[@]}"; do
      url="http://127.0.0.1:${PORT[$who]}/"
      timeout 10 wrk -t2 -c"$CONNS" -d2s -H "Host: $host" "$url" >/dev/null 2>&1 || true   # warm-up
      mapfile -t pids < <(tree "${PIDOF[$who]}")
      t0=$(ticks "${pids[@]}")
      set -- $(run_wrk "$url" -H "Host: $host")
      t1=$(ticks "${pids[@]}")
      cpu=$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v rps="$1" -v d="$DURATION" 'BEGIN { printf "%.3f", (rps > 0 ? t * 1000 / hz / (rps * d) : 0) }')
      RES[$who,$wl,$r]="$1 $(to_ms "$2") $(to_ms "$3") $4 $cpu"
      echo "round $r $who $wl: ${RES[$who,$wl,$r]}" >&2
    done
  done
done

echo
echo "tenancy bench: $(nproc) cores, $WORKERS PHP workers, $CONNS connections, ${DURATION}s x $ROUNDS rounds, $(date -u +%Y-%m-%d)"
printf '%-9s %-6s %10s %9s %9s %7s %11s\n' workload who req/s p50_ms p99_ms errors cpu_ms/req
for wl in "${WORKLOADS[@]}"; do
  for who in "${WHO[@]}"; do
    rps=$(for r in $(seq "$ROUNDS"); do set -- ${RES[$who,$wl,$r]}; echo "$1"; done | median)
    p50=$(for r in $(seq "$ROUNDS"); do set -- ${RES[$who,$wl,$r]}; echo "$2"; done | median)
    p99=$(for r in $(seq "$ROUNDS"); do set -- ${RES[$who,$wl,$r]}; echo "$3"; done | median)
    err=$(for r in $(seq "$ROUNDS"); do set -- ${RES[$who,$wl,$r]}; echo "$4"; done | median)
    cpu=$(for r in $(seq "$ROUNDS"); do set -- ${RES[$who,$wl,$r]}; echo "$5"; done | median)
    printf '%-9s %-6s %10s %9s %9s %7s %11s\n' "$wl" "$who" "$rps" "$p50" "$p99" "$err" "$cpu"
  done
  ratio=$(for r in $(seq "$ROUNDS"); do set -- ${RES[file,$wl,$r]}; a=$1; set -- ${RES[shm,$wl,$r]}; awk -v a="$a" -v b="$1" 'BEGIN{printf "%.3f\n", a/b}'; done | median)
  echo "  $wl file/shm = ${ratio}x req/s (median of per-round ratios)"
done
