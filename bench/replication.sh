#!/usr/bin/env bash
# Replication benchmarks (issue 5): lag at 100 write tx/s with 50 ms one
# way between nodes, live and catch-up throughput, the primary's commit
# cost with and without the frame log, a replica's apply cost, and a
# 10-write PHP request on a replica 250 ms (round trip) from its primary:
# request routing vs statement forwarding vs running on the primary.
# Latency between nodes comes from a delaying TCP proxy in user space.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test >/dev/null
echo "== replication (go test -bench, in-process primary and replica)"
go test ./replication -run '^$' -bench 'Lag|Throughput|CatchUp|Commit|Apply' -benchtime 1x -count 1 | grep -E '^Benchmark'
go test ./replication -run '^$' -bench 'Commit|Apply' -benchtime 3000x -count 1 | grep -E '^Benchmark'
echo "== a write request on a replica (real ephpm processes, php-fpm, 125 ms each way)"
go test ./cmd/ephpm -run '^$' -bench BenchmarkReplicaWriteRequest -benchtime 10x -count 1 | grep -E '^Benchmark'
