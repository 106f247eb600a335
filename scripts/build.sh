#!/usr/bin/env bash
# Build everything: TypeScript (tsc), the addon (node-gyp against Debian's
# libbpf and libfuse3), the BPF objects (make, clang). Each step skips what is
# up to date. A lock keeps two builds in one checkout from clobbering each other.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
exec 9>.cache/build.lock
flock 9

step() { printf 'build: %s\n' "$*" >&2; }

step "bpf objects (make -C bpf)"
make -s -C bpf

step "addon (node-gyp)"
# binding.gyp lists addon/*.cc when configured: configure again when that list changes
sources=$(ls -1 addon/*.cc binding.gyp | tr '\n' ' ')
if [ ! -f build/Makefile ] || [ "$(cat build/.krsifs-sources 2>/dev/null)" != "$sources" ]; then
  npx --no-install node-gyp configure >/dev/null 2>.cache/node-gyp.log || { cat .cache/node-gyp.log >&2; exit 1; }
  echo "$sources" > build/.krsifs-sources
fi
npx --no-install node-gyp build >/dev/null 2>.cache/node-gyp.log || { cat .cache/node-gyp.log >&2; exit 1; }

step "typescript (tsc)"
npx --no-install tsc -p .
chmod +x dist/lib/cli.js 2>/dev/null || true
