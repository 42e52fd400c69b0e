# shellcheck shell=bash
# Shared by the tests that need Anvil's Debian packages (pxe.sh, test-packages.sh): where
# their cached build artefacts live (outside the source tree, kept between runs) and how the
# packages are built there.
ANVIL_TEST_CACHE=${ANVIL_TEST_CACHE:-/var/cache/anvil-test}

# Each source tree (a CI clone, a worktree) gets its own release build and image in the cache;
# those of trees not tested for three days are removed. The one in use is touched first.
anvil_test_cache_prune() {
  mkdir -p "$ANVIL_TEST_CACHE"
  find "$ANVIL_TEST_CACHE" -mindepth 1 -maxdepth 1 -type d \( -name 'package-build-*' -o -name 'image-*' \) \
    ! -name 'image-cache' -mtime +3 -exec rm -rf {} + 2>/dev/null || true
}

# anvil_test_packages OUTDIR [package.sh args...]: the three .debs of this source tree in
# OUTDIR. The release build lives in the cache (one per source tree, built incrementally); one
# build at a time, since tests run in parallel.
anvil_test_packages() {
  local out=$1 key
  shift
  key=$(echo "$SRC" | sha256sum | cut -c1-12)
  mkdir -p "$ANVIL_TEST_CACHE/package-build-$key" "$out"
  touch "$ANVIL_TEST_CACHE/package-build-$key"
  anvil_test_cache_prune
  flock "$ANVIL_TEST_CACHE/package.lock" \
    "$SRC/scripts/package.sh" --build-dir "$ANVIL_TEST_CACHE/package-build-$key" --out "$out" "$@"
}
