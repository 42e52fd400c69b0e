#!/usr/bin/env bash
# The ctest fixture of the nspawn tests: the cached Debian rootfs (rootfs.sh) and a staged
# install of Anvil for inside the containers, in $ANVIL_BUILD_DIR/nspawn/.
#
# The binaries inside are a separate RelWithDebInfo build without sanitizers, installed with
# `cmake --install` (so the install rules are tested too): the units' sandbox
# (SystemCallFilter, MemoryDenyWriteExecute) is what is under test, and ASan's runtime does
# not belong under it (LeakSanitizer needs ptrace at exit, which the filter refuses). The
# same code runs under ASan+UBSan in the other end-to-end tests.
set -euo pipefail
SRC=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${ANVIL_BUILD_DIR:-$SRC/build}
OUT=$BUILD/nspawn
if [ "$(id -u)" -ne 0 ] || ! command -v systemd-nspawn >/dev/null; then
  echo "SKIP: systemd-nspawn cannot run here (not root, or systemd-container not installed)"
  exit 77
fi
mkdir -p "$OUT"
t0=$SECONDS
"$SRC/tests/nspawn/rootfs.sh" >"$OUT/rootfs.tmp"
mv "$OUT/rootfs.tmp" "$OUT/rootfs"
t1=$SECONDS
cmake -S "$SRC" -B "$OUT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANVIL_SANITIZE=OFF \
  -DANVIL_BUILD_TESTS=OFF -DANVIL_TEST_HOOKS=ON -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$OUT/build" -j"$(nproc)" >/dev/null
rm -rf "$OUT/stage"
DESTDIR=$OUT/stage cmake --install "$OUT/build" >/dev/null
echo "nspawn fixture: rootfs $(cat "$OUT/rootfs") in $((t1 - t0))s, build and install in $((SECONDS - t1))s"
