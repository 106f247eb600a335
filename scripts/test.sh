#!/usr/bin/env bash
# npm test: set up what is missing, build, run every suite: the host suites
# (kernel layer, FUSE, filesystem), then the VM suite on a real BPF LSM kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/build.sh
echo "test: host suites" >&2
npx --no-install tap dist/test/kernel dist/test/fuse dist/test/core dist/test/fs "$@"
echo "test: VM suite" >&2
npx --no-install tap --jobs 1 dist/test/vm
