#!/usr/bin/env bash
# Installs what ephpm needs to build, run and test, idempotently:
# Debian packages (only those missing) and Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME_PKGS=(php8.2-fpm php8.2-cli php8.2-mysql php8.2-sqlite3 php8.2-curl php8.2-xml
  php8.2-mbstring php8.2-gd php8.2-zip php8.2-intl)
# nginx-light is listed so that it, not apache2, satisfies wordpress's
# web-server dependency.
TEST_PKGS=(php8.2-redis redis-server redis-tools mariadb-client curl nginx-light
  wordpress wordpress-theme-twentytwentythree bsdutils pebble nodejs openssl)

want=("${RUNTIME_PKGS[@]}")
if [ "${1:-}" = "--test" ]; then want+=("${TEST_PKGS[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # Debian would start the services it installs (php-fpm, redis, nginx
  # on their default ports); ephpm and the tests run their own.
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ $added_policy = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
  for svc in php8.2-fpm redis-server nginx apache2; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi
command -v go >/dev/null || { echo "deps: Go is required (https://go.dev/dl)"; exit 1; }
go mod download
