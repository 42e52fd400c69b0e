# shellcheck shell=bash
# Setup shared by the end-to-end tests: a fresh work directory, the built binaries
# (ANVIL_BUILD_DIR from ctest, else build/), cleanup on exit, and assertions.
set -euo pipefail
SRC=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=scripts/lib.sh
. "$SRC/scripts/lib.sh"
E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/anvil-e2e.XXXXXX")
anvil_env_init "$E2E_WORK" "${ANVIL_BUILD_DIR:-$SRC/build}"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Sanitizer reports in any log fail the test even if the process limped on.
check_logs() {
  local bad
  bad=$(grep -l -E "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" \
        "$WORK"/coordinator.log "$WORK"/agents/*/agent.log 2>/dev/null || true)
  if [ -n "$bad" ]; then
    echo "sanitizer reports in: $bad" >&2
    for f in $bad; do grep -A30 -E "ERROR: |runtime error:" "$f" | head -60 >&2; done
    return 1
  fi
}

e2e_finish() {
  local rc=$?
  anvil_stop_all
  check_logs || rc=1
  if [ $rc -ne 0 ]; then
    echo "---- coordinator.log (tail) ----" >&2
    tail -40 "$WORK/coordinator.log" >&2 2>/dev/null || true
    for f in "$WORK"/agents/*/agent.log; do
      echo "---- $f (tail) ----" >&2
      tail -15 "$f" >&2
    done
  fi
  [ -n "${KEEP_E2E:-}" ] || rm -rf "$E2E_WORK"
  exit $rc
}
trap e2e_finish EXIT

json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
