#!/usr/bin/env bash
# The floor under any database reached over a socket: CPU per round trip
# of a bare C ping-pong between two processes over a unix socketpair
# (64-byte request, 1,200-byte reply: a q30 point SELECT's sizes), with
# the two processes free to run anywhere and pinned to one CPU. A PHP
# page doing N queries over the MySQL protocol pays at least N times this
# on top of what in-process pdo_sqlite pays (docs/benchmarks.md, q30).
#
#   bash bench/ipc-floor.sh          # 100,000 round trips, each mode twice
set -euo pipefail
N=${N:-100000}
command -v gcc >/dev/null || { apt-get install -y -qq gcc >/dev/null; }
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
cat >"$d/pp.c" <<'C'
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double secs(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }
int main(int argc, char **argv) {
  int n = atoi(argv[1]), pin = argc > 2, sv[2];
  char buf[2048] = {0};
  struct timespec t0, t1;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) { perror("socketpair"); return 1; }
  if (pin) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(0, &s); sched_setaffinity(0, sizeof s, &s); }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t p = fork();
  if (p == 0) {
    for (int i = 0; i < n; i++) { if (read(sv[1], buf, 64) <= 0) break; if (write(sv[1], buf, 1200) != 1200) break; }
    _exit(0);
  }
  for (int i = 0; i < n; i++) {
    if (write(sv[0], buf, 64) != 64) return 1;
    for (int got = 0; got < 1200;) { ssize_t r = read(sv[0], buf, sizeof buf); if (r <= 0) return 1; got += r; }
  }
  waitpid(p, 0, 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  struct rusage a, c;
  getrusage(RUSAGE_SELF, &a); getrusage(RUSAGE_CHILDREN, &c);
  double cpu = secs(a.ru_utime) + secs(a.ru_stime) + secs(c.ru_utime) + secs(c.ru_stime);
  double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("%-9s %6.1f us wall, %6.1f us CPU (both processes) per round trip\n", pin ? "one CPU" : "any CPU", wall / n * 1e6, cpu / n * 1e6);
  return 0;
}
C
gcc -O2 -o "$d/pp" "$d/pp.c"
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg), $N round trips"
for i in 1 2; do "$d/pp" "$N"; "$d/pp" "$N" pin; done
