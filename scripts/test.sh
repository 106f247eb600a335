#!/usr/bin/env bash
# npm test: set up what is missing, build, run every suite: the host suites
# (core, kernel layer, FUSE, filesystem, VM runner), then the VM suites on
# real BPF LSM kernels under QEMU: e2e, persistence, policies and the
# catalogue on each of Debian's 6.1 and 6.12, hardening on one of them.
#   npm test                          both kernels
#   npm test -- --kernel 6.12         the VM suites on 6.12 only (repeatable; or
#                                     KRSIFS_TEST_KERNELS=6.1,6.12; a full
#                                     linux-image-...-cloud-amd64 name works too)
# Other arguments go to both tap runs.
set -euo pipefail
cd "$(dirname "$0")/.."
kernels=()
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernels+=("${2:?--kernel needs 6.1, 6.12 or a package name}"); shift 2 ;;
    --kernel=*) kernels+=("${1#--kernel=}"); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ ${#kernels[@]} -gt 0 ]; then
  KRSIFS_TEST_KERNELS=$(IFS=,; echo "${kernels[*]}")
  export KRSIFS_TEST_KERNELS
fi
bash scripts/setup.sh test
bash scripts/build.sh
echo "test: host suites" >&2
npx --no-install tap "${args[@]}" dist/test/core dist/test/kernel dist/test/fuse dist/test/fs dist/test/vm-runner/host.test.js
echo "test: VM suites on ${KRSIFS_TEST_KERNELS:-6.1,6.12} (Debian's cloud kernels with BPF LSM, under QEMU); hardening on ${KRSIFS_HARDENING_KERNEL:-6.1}" >&2
# A VM suite file boots one guest per kernel, each bounded by its own timeout
# (runInVm); tap's 300 s per file would cut a two-kernel suite on a busy machine.
npx --no-install tap --jobs 1 --timeout 1800 "${args[@]}" dist/test/vm-runner/boot.test.js dist/test/vm
