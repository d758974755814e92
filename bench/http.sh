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

command -v wrk >/dev/null && command -v nginx >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null; }
bash scripts/deps.sh >/dev/null
mkdir -p bin && go build -o bin/ephpm ./cmd/ephpm

rm -rf "$W" && mkdir -p "$W/docroot/static" "$W/nginx/tmp" "$W/fpm" "$W/ours"
chmod 755 "$W" "$W/docroot" "$W/docroot/static"
echo '<?php echo "Hello, World!";' >"$W/docroot/hello.php"
head -c 10240 /dev/urandom | base64 -w 100 | head -c 10240 >"$W/docroot/static/10k.txt"
head -c 204800 /dev/urandom >"$W/docroot/static/200k.bin"
chmod 644 "$W"/docroot/*.php "$W"/docroot/static/*

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0; sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

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
"$FPM_BIN" -F -y "$W/fpm/php-fpm.conf" -d opcache.enable=1 >"$W/fpm/stdout.log" 2>&1 & PIDS+=($!)

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
        listen 127.0.0.1:$PORT_NGINX default_server;
        root $W/docroot;
        index index.php index.html;
        location / { try_files \$uri \$uri/ /index.php?\$args; }
        location ~ \.php\$ {
            try_files \$uri =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$W/fpm/php-fpm.sock;
        }
    }
}
CONF
nginx -p "$W/nginx/" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" -g 'daemon off;' & PIDS+=($!)

EPHPM_SERVER__ACCESS_LOG=false EPHPM_PHP__WORKERS=$WORKERS EPHPM_KV__ENABLED=false EPHPM_DB_SQLITE_PROXY__ENABLED=false \
  ./bin/ephpm serve --listen "127.0.0.1:$PORT_OURS" --root "$W/docroot" \
  >"$W/ours/stdout.log" 2>&1 & PIDS+=($!)
EPHPM_PID=$!
wait_up() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }
wait_up "http://127.0.0.1:$PORT_NGINX/hello.php"
wait_up "http://127.0.0.1:$PORT_OURS/hello.php"

# run_wrk URL -> "rps p50_ms p99_ms"
run_wrk() {
  timeout $((DURATION + 30)) wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency --timeout 5s "$1" 2>&1 | awk '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    /Non-2xx/ {bad=$NF}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    END { printf "%s %.3f %.3f %s\n", rps, ms(p50), ms(p99), (bad==""?0:bad) }'
}

declare -A RES
WORKLOADS=(hello.php static/10k.txt static/200k.bin)
for r in $(seq "$ROUNDS"); do
  for wl in "${WORKLOADS[@]}"; do
    order=(nginx ours); [ $((r % 2)) -eq 0 ] && order=(ours nginx)
    for who in "${order[@]}"; do
      port=$PORT_NGINX; [ "$who" = ours ] && port=$PORT_OURS
      timeout 10 wrk -t2 -c"$CONNS" -d2s "http://127.0.0.1:$port/$wl" >/dev/null 2>&1 || true   # warm-up
      RES[$who,$wl,$r]=$(run_wrk "http://127.0.0.1:$port/$wl")
      echo "round $r $who $wl: ${RES[$who,$wl,$r]}" >&2
    done
  done
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
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
