#!/usr/bin/env bash
# Benchmarks ephpm's KV store against redis-server on loopback with
# redis-benchmark (Debian redis-tools): GET/SET/INCR/MSET with and without
# pipelining (-P 16), then memory for 1 M small keys. Prints a table with
# ratios (ephpm / redis). The KV is ephpm's own (`ephpm serve` with only
# the KV store and a 1-worker PHP pool; the database front is off);
# KV=standalone uses kv/cmd/kvbench-server, the same store alone.
#
# Usage: bench/kv/run.sh            (N=200000 requests, P=16)
#        N=1000000 bench/kv/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-100000}
NP=${NP:-$((N * 10))}         # pipelined runs are ~10x faster: more requests
REPS=${REPS:-3}               # best of REPS interleaved runs: a shared machine only slows runs down
KEYS=${KEYS:-1000000}
CLIENTS=${CLIENTS:-50}
for p in redis-server redis-benchmark redis-cli go awk; do
	command -v "$p" >/dev/null || { echo "missing $p (apt-get install -y redis-server redis-tools)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/kvbench-server" ./kv/cmd/kvbench-server
go build -o "$work/ephpm" ./cmd/ephpm

# A random high port nobody answers on.
freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		redis-cli -p "$p" ping >/dev/null 2>&1 || { echo "$p"; return; }
	done
}
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
RPORT=$(freeport)
EPORT=$(freeport)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
pids+=($!); RPID=$!
if [ "${KV:-ephpm}" = standalone ]; then
	"$work/kvbench-server" -listen "127.0.0.1:$EPORT" 2>"$work/ephpm.log" &
else
	mkdir -p "$work/www" && chmod 755 "$work" "$work/www"
	EPHPM_KV__LISTEN="127.0.0.1:$EPORT" EPHPM_KV__MEMORY_LIMIT=4GB EPHPM_DB_SQLITE_PROXY__ENABLED=false \
	EPHPM_SERVER__ACCESS_LOG=false EPHPM_PHP__WORKERS=1 EPHPM_SERVER__RUNTIME_DIR="$work/run" \
		"$work/ephpm" serve --listen "127.0.0.1:$(freeport)" --root "$work/www" >"$work/ephpm.log" 2>&1 &
fi
pids+=($!); EPID=$!
for port in "$RPORT" "$EPORT"; do
	for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

# rps TEST PORT [extra args]: requests per second from redis-benchmark's CSV.
rps() {
	local t=$1 port=$2; shift 2
	redis-benchmark -p "$port" -c "$CLIENTS" -t "$t" --csv "$@" 2>/dev/null |
		awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}'
}

echo "# KV benchmark $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# redis $(redis-server --version | awk '{print $3}'), -c $CLIENTS, -n $N (pipelined -n $NP), best of $REPS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# cpu PID: user+system CPU time of a process, in clock ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
printf '| %-12s | %10s | %10s | %6s | %13s | %13s |\n' test "redis rps" "ephpm rps" ratio "redis CPU/req" "ephpm CPU/req"
printf '|%s|%s|%s|%s|%s|%s|\n' -------------- ------------ ------------ -------- --------------- ---------------
for pipe in 1 16; do
	n=$N; [ "$pipe" -gt 1 ] && n=$NP
	for t in get set incr mset; do
		# Interleaved so a noisy neighbour hurts both sides alike; the
		# servers' CPU time per request is the steadier comparison.
		r=0 e=0 rc=0 ec=0
		for _ in $(seq "$REPS"); do
			c0=$(cpu "$RPID")
			r=$(best "$r" "$(rps "$t" "$RPORT" -n "$n" -P "$pipe")")
			c1=$(cpu "$RPID")
			rc=$((rc + c1 - c0))
			c0=$(cpu "$EPID")
			e=$(best "$e" "$(rps "$t" "$EPORT" -n "$n" -P "$pipe")")
			c1=$(cpu "$EPID")
			ec=$((ec + c1 - c0))
		done
		label=$(echo "$t" | tr a-z A-Z); [ "$pipe" -gt 1 ] && label="$label -P $pipe"
		printf '| %-12s | %10.0f | %10.0f | %5.2fx | %10.2f us | %10.2f us |\n' "$label" "$r" "$e" "$(calc "$e / $r")" \
			"$(calc "$rc * 1000000 / $HZ / ($n * $REPS)")" "$(calc "$ec * 1000000 / $HZ / ($n * $REPS)")"
	done
done

# Memory for KEYS small keys ("key:N" -> "xxx"), loaded with redis-cli --pipe.
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$1/status"; }
gen() { awk -v n="$KEYS" 'BEGIN { for (i = 0; i < n; i++) { k = "key:" i; printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nxxx\r\n", length(k), k } }'; }
redis-cli -p "$RPORT" flushall >/dev/null
redis-cli -p "$EPORT" flushall >/dev/null
r0=$(rss "$RPID"); e0=$(rss "$EPID")
gen | redis-cli -p "$RPORT" --pipe >/dev/null
gen | redis-cli -p "$EPORT" --pipe >/dev/null
r1=$(rss "$RPID"); e1=$(rss "$EPID")
ru=$(redis-cli -p "$RPORT" info memory | awk -F: '/^used_memory:/ {print $2+0}')
eu=$(redis-cli -p "$EPORT" info memory | awk -F: '/^used_memory:/ {print $2+0}')
echo
echo "# memory for $KEYS small keys (RSS growth; used_memory is each server's own estimate)"
printf '| %-12s | %12s | %12s | %6s |\n' "" redis ephpm ratio
printf '|%s|%s|%s|%s|\n' -------------- -------------- -------------- --------
printf '| %-12s | %10.1fMB | %10.1fMB | %5.2fx |\n' "RSS growth" "$(calc "($r1-$r0)/1048576")" "$(calc "($e1-$e0)/1048576")" "$(calc "($e1-$e0)/($r1-$r0)")"
printf '| %-12s | %10.1fB | %10.1fB | %5.2fx |\n' "per key" "$(calc "($r1-$r0)/$KEYS")" "$(calc "($e1-$e0)/$KEYS")" "$(calc "($e1-$e0)/($r1-$r0)")"
printf '| %-12s | %10.1fMB | %10.1fMB | %6s |\n' "used_memory" "$(calc "$ru/1048576")" "$(calc "$eu/1048576")" ""
