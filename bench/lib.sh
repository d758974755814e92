# shellcheck shell=bash
# Shared by the bench scripts: processes they start (stopped by PID on
# exit), the php-fpm + nginx peer, and a wrk runner.

PIDS=()
bench_cleanup() {
  local p alive
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0; sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
trap bench_cleanup EXIT

# bench_build: the ephpm binary, and the peers' packages.
bench_build() {
  command -v wrk >/dev/null && command -v nginx >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null; }
  bash scripts/deps.sh >/dev/null
  mkdir -p bin && go build -o bin/ephpm ./cmd/ephpm
}

# wait_up URL [HOST]: until URL answers 2xx (20 s at most).
wait_up() {
  for _ in $(seq 200); do
    curl -fsS -o /dev/null -H "Host: ${2:-localhost}" "$1" 2>/dev/null && return 0; sleep 0.1
  done
  echo "not up: $1" >&2; exit 1
}

# start_fpm DIR WORKERS: the peer's php-fpm pool (pm=static, OPcache on)
# on DIR/php-fpm.sock.
start_fpm() {
  local d=$1 workers=$2
  mkdir -p "$d"
  cat >"$d/php-fpm.conf" <<CONF
[global]
pid = $d/php-fpm.pid
error_log = $d/error.log
daemonize = no
[bench]
user = www-data
group = www-data
listen = $d/php-fpm.sock
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
listen.backlog = 511
pm = static
pm.max_children = $workers
pm.max_requests = 0
CONF
  "${FPM_BIN:-/usr/sbin/php-fpm8.2}" -F -y "$d/php-fpm.conf" -d opcache.enable=1 >"$d/stdout.log" 2>&1 &
  PIDS+=($!)
}

# start_nginx DIR PORT ROOT FPM_SOCK [SERVER_NAME]: nginx as the usual
# php-fpm front (try_files $uri $uri/ /index.php?$args; no access log).
# Optional: $6 more listen parameters ("ssl http2"), $7 more server lines.
start_nginx() {
  local d=$1 port=$2 root=$3 sock=$4 name=${5:-_} listen_opts=${6:-} server_extra=${7:-}
  mkdir -p "$d/tmp"
  cat >"$d/nginx.conf" <<CONF
user www-data;
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_timeout 65; keepalive_requests 100000;
    client_body_temp_path $d/tmp/body; proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi; uwsgi_temp_path $d/tmp/uwsgi; scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$port $listen_opts default_server;
        server_name $name;
        $server_extra
        root $root;
        index index.php index.html;
        location / { try_files \$uri \$uri/ /index.php?\$args; }
        location ~ \.php\$ {
            try_files \$uri =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$sock;
        }
    }
}
CONF
  nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' &
  PIDS+=($!)
}

# run_wrk URL [wrk args...] -> "req/s p50 p99 non2xx" (latencies as wrk prints them)
run_wrk() {
  local url=$1; shift
  timeout $((DURATION + 30)) wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency --timeout 5s "$@" "$url" 2>&1 | awk '
    /Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
    END { printf "%s %s %s %s\n", rps, p50, p99, (bad==""?0:bad) }'
}

# to_ms 1.23ms|456us|1.1s -> milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print v }'
}

# median: of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
