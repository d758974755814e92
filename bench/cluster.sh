#!/usr/bin/env bash
# Cluster benchmarks (issue 14), real ephpm processes on loopback, every
# node behind delaying proxies (gossip UDP+TCP, raft, replication) so
# every pair of nodes sees a round trip of twice the one-way delay:
#   - failure detection at 125 ms one way: a node killed with SIGKILL,
#     the time until both others mark it dead (KILLS runs)
#   - hand-over pause of `sites move` under ~100 writes/s through a
#     third region, 125 ms one way: p50/p99 of the pause each move
#     reports (MOVES moves, frankfurt <-> tokyo)
#   - join time: a 4th node with only [cluster] joins a cluster of 200
#     sites (50 ms one way), until it streams them all and is ready
#   - failover (issue 15) at 125 ms one way: the primary killed with
#     SIGKILL, the time until writes through both other regions work
#     again (FAILOVERS runs, p50/p99)
#   - commit latency of one write request on the primary with
#     sync = "local" and sync = "replica", 50 and 125 ms one way
# Figures only: nothing here fails on timing.
#
#   bash bench/cluster.sh               # all three
#   ONLY=Move MOVES=5 bash bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${KILLS:-3} MOVES=${MOVES:-20} FAILOVERS=${FAILOVERS:-20} COMMITS=${COMMITS:-50} ONLY=${ONLY:-}
bash scripts/deps.sh --test >/dev/null
run() { # NAME BENCHTIME
  [ -n "$ONLY" ] && [[ "$1" != *"$ONLY"* ]] && return 0
  echo "== $1 (${2}x)"
  go test ./cmd/ephpm -run '^$' -bench "^Benchmark${1}\$" -benchtime "${2}x" -count 1 -timeout 60m \
    | grep -E '^(Benchmark|--- FAIL|FAIL|\s+cluster)' || true
}
run ClusterFailureDetection "$KILLS"
run ClusterMove "$MOVES"
run ClusterJoin200 1
run ClusterFailover "$FAILOVERS"
run ClusterCommitSync "$COMMITS"
