#!/usr/bin/env bash
# HTTP benchmark: ephpm vs nginx + php-fpm, side by side in one run, on
# loopback with wrk. Same php-fpm pool size (pm=static), OPcache on, no
# access logs on either side. Prints req/s, p50/p99 and ephpm/nginx.
#
#   bash bench/http.sh                 # 3 rounds x 10 s per workload
#   ROUNDS=1 DURATION=5 bash bench/http.sh
#   EPHPM_BASE=/tmp/ephpm-old bash bench/http.sh   # another ephpm build as a
#                                                  # third column, same run
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-32} WORKERS=${WORKERS:-4}
PORT_OURS=${PORT_OURS:-18180} PORT_NGINX=${PORT_NGINX:-18181} PORT_BASE=${PORT_BASE:-18182}
EPHPM_BASE=${EPHPM_BASE:-}
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

start_ours() { # name port binary
  mkdir -p "$W/$1"
  EPHPM_SERVER__ACCESS_LOG=false EPHPM_PHP__WORKERS=$WORKERS EPHPM_KV__ENABLED=false EPHPM_DB_SQLITE_PROXY__ENABLED=false \
  EPHPM_SERVER__DATA_DIR="$W/$1/data" EPHPM_SERVER__RUNTIME_DIR="$W/$1/run" \
    "$3" serve --listen "127.0.0.1:$2" --root "$W/docroot" \
    >"$W/$1/stdout.log" 2>&1 & PIDS+=($!)
}
start_ours ours "$PORT_OURS" ./bin/ephpm
EPHPM_PID=$!
WHO=(nginx ours)
if [ -n "$EPHPM_BASE" ]; then start_ours base "$PORT_BASE" "$EPHPM_BASE"; WHO=(nginx ours base); fi
wait_up "http://127.0.0.1:$PORT_NGINX/hello.php"
wait_up "http://127.0.0.1:$PORT_OURS/hello.php"
[ -z "$EPHPM_BASE" ] || wait_up "http://127.0.0.1:$PORT_BASE/hello.php"

declare -A RES
WORKLOADS=(hello.php static/10k.txt static/200k.bin)
for r in $(seq "$ROUNDS"); do
  for wl in "${WORKLOADS[@]}"; do
    order=("${WHO[@]}"); [ $((r % 2)) -eq 0 ] && order=($(printf '%s\n' "${WHO[@]}" | tac))
    for who in "${order[@]}"; do
      case $who in nginx) port=$PORT_NGINX ;; ours) port=$PORT_OURS ;; base) port=$PORT_BASE ;; esac
      timeout 10 wrk -t2 -c"$CONNS" -d2s "http://127.0.0.1:$port/$wl" >/dev/null 2>&1 || true   # warm-up
      set -- $(run_wrk "http://127.0.0.1:$port/$wl")
      RES[$who,$wl,$r]="$1 $(to_ms "$2") $(to_ms "$3") $4"
      echo "round $r $who $wl: ${RES[$who,$wl,$r]}" >&2
    done
  done
done

# ratio of one round's two columns, then the median over rounds: each
# round measures the columns back to back, so the host's drift between
# rounds cancels.
ratio_of() { # who1 who2 workload
  for r in $(seq "$ROUNDS"); do
    awk -v a="$(echo "${RES[$1,$3,$r]}" | awk '{print $1}')" -v b="$(echo "${RES[$2,$3,$r]}" | awk '{print $1}')" 'BEGIN { printf "%.3f\n", a/b }'
  done
}
fmt_ratio() { printf '%.2fx (%s)' "$(median)" "$(ratio_of "$@" | paste -sd' ' | sed 's/ /, /g')"; }

echo
echo "ephpm $(./bin/ephpm version | awk '{print $2}') vs nginx $(nginx -v 2>&1 | sed 's/.*\///') + php-fpm ($WORKERS workers, pm=static, OPcache on)${EPHPM_BASE:+; base = $EPHPM_BASE}"
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), wrk -t2 -c$CONNS -d${DURATION}s, median of $ROUNDS; ratios: median of per-round ratios (each round's)"
echo
printf '| %-16s | %12s | %12s | %-28s | %18s | %18s |' workload "ephpm req/s" "nginx req/s" "ephpm / nginx" "ephpm p50/p99 ms" "nginx p50/p99 ms"
[ -z "$EPHPM_BASE" ] && echo || printf ' %12s | %-28s |\n' "base req/s" "ephpm / base"
printf '|%s|%s|%s|%s|%s|%s|' ------------------ -------------- -------------- ------------------------------ -------------------- --------------------
[ -z "$EPHPM_BASE" ] && echo || printf '%s|%s|\n' -------------- ------------------------------
for wl in "${WORKLOADS[@]}"; do
  for who in "${WHO[@]}"; do
    rps=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $1}'; done | median)
    p50=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $2}'; done | median)
    p99=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $3}'; done | median)
    eval "${who}_rps=$rps ${who}_lat='$p50 / $p99'"
  done
  printf '| %-16s | %12.0f | %12.0f | %-28s | %18s | %18s |' "$wl" "$ours_rps" "$nginx_rps" \
    "$(ratio_of ours nginx "$wl" | fmt_ratio ours nginx "$wl")" "$ours_lat" "$nginx_lat"
  [ -z "$EPHPM_BASE" ] && echo || printf ' %12.0f | %-28s |\n' "$base_rps" "$(ratio_of ours base "$wl" | fmt_ratio ours base "$wl")"
done
