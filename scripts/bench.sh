#!/usr/bin/env bash
# npm run bench: set up what is missing, build, build the benchmark's own
# pieces (the C loader baseline, one-program BPF objects to fill a hook), then
# boot the BPF LSM VM once and run every benchmark (bench/run.ts). Prints a
# table; the JSON goes to .cache/bench/. Extra arguments go to bench/run.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/build.sh

# build.sh made the C loader (build/bench/loader), the baseline

echo "bench: one-program objects (bpf/obj/bench/bench_NN.o)" >&2
mkdir -p bpf/obj/bench
src=bpf/fixtures/bench_noops.bpf.c
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
for n in $(seq -w 0 47); do
  out=bpf/obj/bench/bench_$n.o
  [ "$out" -nt "$src" ] || echo "$n"
done | xargs -r -P "$(nproc)" -I{} \
  clang -g -O2 -Wall -target bpf -D__TARGET_ARCH_"$arch" -Ibpf/obj -Ibpf -DBENCH_ONE={} -c "$src" -o bpf/obj/bench/bench_{}.o

exec node dist/bench/run.js "$@"
