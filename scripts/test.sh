#!/usr/bin/env bash
# npm test: set up what is missing, build, run every suite: the host suites
# (core, kernel layer, FUSE, filesystem, VM runner), then the VM suites on a
# real BPF LSM kernel under QEMU. Extra arguments go to both tap runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/build.sh
echo "test: host suites" >&2
npx --no-install tap "$@" dist/test/core dist/test/kernel dist/test/fuse dist/test/fs dist/test/vm-runner/host.test.js
echo "test: VM suites (Debian's kernel with BPF LSM, under QEMU)" >&2
npx --no-install tap --jobs 1 "$@" dist/test/vm-runner/boot.test.js dist/test/vm
