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

# A fresh clone has neither the Debian packages nor node_modules: set up what
# is missing first (a second run of setup does nothing).
bash scripts/setup.sh

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

step "C loader (build/bench/loader: the bench's baseline, the VM interop suite's fd hand-over)"
mkdir -p build/bench
if [ ! build/bench/loader -nt bench/loader.c ]; then
  # static when Debian's libbpf.a, libelf.a and libz.a link; the guest has the shared libraries anyway
  cc -O2 -Wall -static bench/loader.c -lbpf -lelf -lz -o build/bench/loader.tmp 2>/dev/null ||
    cc -O2 -Wall bench/loader.c -lbpf -lelf -lz -o build/bench/loader.tmp
  mv build/bench/loader.tmp build/bench/loader
fi

step "memprobe (the VM signals suite's tracer and victim, next to its guest script in dist/)"
# dist/ goes into the VM image whole (lib/vm/image.ts); static: the guest has no libc of its own
mkdir -p dist/test/vm/fixtures
if [ ! dist/test/vm/fixtures/memprobe -nt test/vm/fixtures/memprobe.c ]; then
  cc -O2 -Wall -static test/vm/fixtures/memprobe.c -o dist/test/vm/fixtures/memprobe.tmp
  mv dist/test/vm/fixtures/memprobe.tmp dist/test/vm/fixtures/memprobe
fi

step "typescript (tsc)"
npx --no-install tsc -p .
chmod +x dist/lib/cli.js 2>/dev/null || true
