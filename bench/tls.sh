#!/usr/bin/env bash
# HTTPS benchmark: ephpm vs nginx + php-fpm, both with the same static
# ECDSA P-256 certificate (certmagic's default key type), side by side in
# one run, on loopback with wrk. Same php-fpm pool size (pm=static),
# OPcache on, no access logs on either side.
#
#   handshakes: a new TLS connection per request (Connection: close) for
#               a 13-byte static file: full handshakes per second
#   hello.php:  keep-alive HTTPS requests to PHP
#
#   bash bench/tls.sh                  # 3 rounds x 10 s per workload
#   ROUNDS=1 DURATION=5 bash bench/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-32} WORKERS=${WORKERS:-4}
PORT_OURS=${PORT_OURS:-18190} PORT_OURS_TLS=${PORT_OURS_TLS:-18193} PORT_NGINX=${PORT_NGINX:-18191}
W=${BENCH_DIR:-/tmp/ephpm-bench-tls}
FPM_BIN=$(command -v php-fpm8.2 || echo /usr/sbin/php-fpm8.2)

. bench/lib.sh
bench_build

rm -rf "$W" && mkdir -p "$W/docroot" "$W/ours" "$W/nginx/tmp" "$W/tls"
chmod 755 "$W" "$W/docroot"
echo '<?php echo "Hello, World!";' >"$W/docroot/hello.php"
printf 'Hello, World!' >"$W/docroot/tiny.txt"
chmod 644 "$W"/docroot/*
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.example \
  -addext "subjectAltName=DNS:bench.example,IP:127.0.0.1" -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" 2>/dev/null

start_fpm "$W/fpm" "$WORKERS"

# nginx: the same front as bench/http.sh, on TLS (HTTP/2 on, wrk speaks HTTP/1.1).
start_nginx "$W/nginx" "$PORT_NGINX" "$W/docroot" "$W/fpm/php-fpm.sock" _ "ssl http2" \
  "ssl_certificate $W/tls/cert.pem; ssl_certificate_key $W/tls/key.pem; ssl_protocols TLSv1.2 TLSv1.3;"

EPHPM_SERVER__ACCESS_LOG=false EPHPM_PHP__WORKERS=$WORKERS EPHPM_KV__ENABLED=false EPHPM_DB_SQLITE_PROXY__ENABLED=false \
  EPHPM_SERVER_TLS__LISTEN="127.0.0.1:$PORT_OURS_TLS" EPHPM_SERVER_TLS__CERT="$W/tls/cert.pem" EPHPM_SERVER_TLS__KEY="$W/tls/key.pem" \
  ./bin/ephpm serve --listen "127.0.0.1:$PORT_OURS" --root "$W/docroot" \
  >"$W/ours/stdout.log" 2>&1 & PIDS+=($!)

# wait_tls URL: until an HTTPS URL answers 2xx (20 s at most).
wait_tls() {
  for _ in $(seq 200); do curl -fksS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "not up: $1" >&2; exit 1
}
wait_tls "https://127.0.0.1:$PORT_NGINX/hello.php"
wait_tls "https://127.0.0.1:$PORT_OURS_TLS/hello.php"

# What each side negotiates with an OpenSSL client like wrk's.
for who in nginx ours; do
  port=$PORT_NGINX; [ "$who" = ours ] && port=$PORT_OURS_TLS
  echo "$who: $(echo | openssl s_client -connect "127.0.0.1:$port" 2>/dev/null |
    awk '/^New, /{v=$2" "$5} /Negotiated TLS1.3 group|Server Temp Key|^Peer Temp Key/{g=$0} END{print v"; "g}')" >&2
done

declare -A RES
WORKLOADS=(handshakes hello.php)
for r in $(seq "$ROUNDS"); do
  for wl in "${WORKLOADS[@]}"; do
    order=(nginx ours); [ $((r % 2)) -eq 0 ] && order=(ours nginx)
    for who in "${order[@]}"; do
      port=$PORT_NGINX; [ "$who" = ours ] && port=$PORT_OURS_TLS
      path=$wl args=()
      [ "$wl" = handshakes ] && path=tiny.txt args=(-H "Connection: close")
      url="https://127.0.0.1:$port/$path"
      timeout 10 wrk -t2 -c"$CONNS" -d2s "${args[@]}" "$url" >/dev/null 2>&1 || true   # warm-up
      set -- $(run_wrk "$url" "${args[@]}")
      RES[$who,$wl,$r]="$1 $(to_ms "$2") $(to_ms "$3") $4"
      echo "round $r $who $wl: ${RES[$who,$wl,$r]}" >&2
    done
  done
done

echo
echo "ephpm $(./bin/ephpm version | awk '{print $2}') vs nginx $(nginx -v 2>&1 | sed 's/.*\///') + php-fpm ($WORKERS workers, pm=static, OPcache on), HTTPS, static ECDSA P-256 cert, $(openssl version | awk '{print $1" "$2}') client"
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), wrk -t2 -c$CONNS -d${DURATION}s, median of $ROUNDS"
echo
printf '| %-22s | %12s | %12s | %8s | %18s | %18s |\n' workload "ephpm req/s" "nginx req/s" ratio "ephpm p50/p99 ms" "nginx p50/p99 ms"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------------ -------------- -------------- ---------- -------------------- --------------------
for wl in "${WORKLOADS[@]}"; do
  for who in ours nginx; do
    rps=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $1}'; done | median)
    p50=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $2}'; done | median)
    p99=$(for r in $(seq "$ROUNDS"); do echo "${RES[$who,$wl,$r]}" | awk '{print $3}'; done | median)
    eval "${who}_rps=$rps ${who}_lat='$p50 / $p99'"
  done
  ratio=$(awk -v a="$ours_rps" -v b="$nginx_rps" 'BEGIN { printf "%.2fx", a/b }')
  label=$wl; [ "$wl" = handshakes ] && label="handshakes (new conn)"; [ "$wl" = hello.php ] && label="hello.php (keep-alive)"
  printf '| %-22s | %12.0f | %12.0f | %8s | %18s | %18s |\n' "$label" "$ours_rps" "$nginx_rps" "$ratio" "$ours_lat" "$nginx_lat"
done
