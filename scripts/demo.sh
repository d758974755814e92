#!/usr/bin/env bash
# The first command: install what is missing, build, and serve the demo
# site at http://127.0.0.1:8080 (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
mkdir -p bin
go build -o bin/ephpm ./cmd/ephpm
echo "ephpm: serving the demo at http://127.0.0.1:8080"
exec ./bin/ephpm serve --config examples/demo/ephpm.toml
