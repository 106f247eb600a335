#!/usr/bin/env bash
# Install whatever is missing, and nothing else: Debian packages with apt-get,
# node modules with npm ci. A second run does nothing.
#   setup.sh        what building and mounting need
#   setup.sh test   that, plus what the VM suite needs (QEMU, busybox, cpio)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(clang llvm make g++ python3 libbpf-dev bpftool libelf-dev zlib1g-dev libfuse3-dev util-linux kmod)
if [ "${1:-}" = test ] || [ "${1:-}" = vm ]; then
  # systemd: systemd-analyze verify checks the shipped unit (test/fs/service.test.ts);
  # mmdebstrap: the Debian root the unit boots in under real systemd (test/vm/systemd.test.ts)
  pkgs+=(qemu-system-x86 busybox-static cpio systemd mmdebstrap)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules does not match the lockfile. --ignore-scripts: none
# of our dependencies needs an install script, and npm would otherwise try to
# build our own addon before the Debian headers it needs are known to be there.
stamp=node_modules/.krsifs-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: npm ci" >&2
  npm ci --ignore-scripts --no-audit --no-fund >/dev/null
  echo "$want" > "$stamp"
fi
