#!/usr/bin/env bash
# npm run vm -- [options] [-- COMMAND...]: build, then boot the BPF LSM VM and
# run COMMAND in it (see `krsifs vm --help`). Build output goes to stderr so
# stdout is the command's alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >&2
exec node dist/lib/vm/cli-entry.js "$@"
