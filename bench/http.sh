#!/usr/bin/env bash
# HTTP benchmark: ephpm vs nginx + php-fpm, side by side in one run, on
# loopback with wrk. Same php-fpm pool size (pm=static), OPcache on, no
# access logs on either side. Prints req/s, p50/p99 and ephpm/nginx.
#
#   bash bench/http.sh                 # 3 rounds x 10 s per workload
#   ROUNDS=1 DURATION=5 bash bench/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-32} WORKERS=${WORKERS:-4}
PORT_OURS=${PORT_OURS:-18180} PORT_NGINX=${PORT_NGINX:-18181}
W=${BENCH_DIR:-/tmp/ephpm-bench}
FPM_BIN=$(command -v php-fpm8.2 || echo /usr/sbin/php-fpm8.2)

. bench/lib.sh
bench_build

rm -rf "$W" && mkdir -p "$W/docroot/static" "$W/ours"
chmod 755 "$W" "$W/docroot" "$W/docroot/static"
echo '<?php echo "Hello, World!";' >"$W/docroot/hello.php"
head -c 10240 /dev/urandom | base64 -w 100 | head -c 10240 >"$W/docroot/static/10k.txt"
head -c 204800 /dev/urandom >"$W/docroot/static/200k.bin"
chmod 644 "$W"/docroot/*.php "$W"/docroot/static/*

start_fpm "$W/fpm" "$WORKERS"
start_nginx "$W/nginx" "$PORT_NGINX" "$W/docroot" "$W/fpm/php-fpm.sock"

EPHPM_SERVER__ACCESS_LOG=false EPHPM_PHP__WORKERS=$WORKERS EPHPM_KV__ENABLED=false EPHPM_DB_SQLITE_PROXY__ENABLED=false \
  ./bin/ephpm serve --listen "127.0.0.1:$PORT_OURS" --root "$W/docroot" \
  >"$W/ours/stdout.log" 2>&1 & PIDS+=($!)
EPHPM_PID=$!
wait_up "http://127.0.0.1:$PORT_NGINX/hello.php"
wait_up "http://127.0.0.1:$PORT_OURS/hello.php"

declare -A RES
WORKLOADS=(hello.php static/10k.txt static/200k.bin)
for r in $(seq "$ROUNDS"); do
  for wl in "${WORKLOADS[@]}"; do
    order=(nginx ours); [ $((r % 2)) -eq 0 ] && order=(ours nginx)
    for who in "${order[@]}"; do
      port=$PORT_NGINX; [ "$who" = ours ] && port=$PORT_OURS
      timeout 10 wrk -t2 -c"$CONNS" -d2s "http://127.0.0.1:$port/$wl" >/dev/null 2>&1 || true   # warm-up
      set -- $(run_wrk "http://127.0.0.1:$port/$wl")
      RES[$who,$wl,$r]="$1 $(to_ms "$2") $(to_ms "$3") $4"
      echo "round $r $who $wl: ${RES[$who,$wl,$r]}" >&2
    done
  done
done

echo
echo "ephpm $(./bin/ephpm version | awk '{print $2}') vs nginx $(nginx -v 2>&1 | sed 's/.*\///') + php-fpm ($WORKERS workers, pm=static, OPcache on)"
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), wrk -t2 -c$CONNS -d${DURATION}s, median of $ROUNDS"
echo
printf '| %-16s | %12s | %12s | %8s | %18s | %18s |\n' workload "ephpm req/s" "nginx req/s" ratio "ephpm p50/p99 ms" "nginx p50/p99 ms"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------ -------------- -------------- ---------- -------------------- --------------------
for wl in "${WORKLOADS[@]}"; do
  for who in ours nginx; do
    rps=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $1}'; done | median)
    p50=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $2}'; done | median)
    p99=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $3}'; done | median)
    eval "${who}_rps=$rps ${who}_lat='$p50 / $p99'"
  done
  ratio=$(awk -v a="$ours_rps" -v b="$nginx_rps" 'BEGIN { printf "%.2fx", a/b }')
  printf '| %-16s | %12.0f | %12.0f | %8s | %18s | %18s |\n' "$wl" "$ours_rps" "$nginx_rps" "$ratio" "$ours_lat" "$nginx_lat"
done
