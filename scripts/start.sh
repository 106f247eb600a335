#!/usr/bin/env bash
# npm start: set up what is missing, build, mount krsifs at ./mountpoint (foreground).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# the flag: lib/daemon-node.ts
exec node --max-semi-space-size=1 dist/lib/cli.js mount ./mountpoint "$@"
