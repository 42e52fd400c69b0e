#!/usr/bin/env bash
# Regenerates the reference part of docs/resources.md (between the BEGIN/END GENERATED
# markers) from the kind tables, through `anvilctl explain --markdown`. With --check, fails
# instead when the file is out of date (ctest runs that: tests/e2e/test-resources-doc.sh).
# Usage: scripts/gen-resources-doc.sh [--check] [BUILD_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
check=
[ "${1:-}" = "--check" ] && { check=1; shift; }
BUILD=${1:-$SRC/build}
CTL=$BUILD/coordinator/anvilctl
DOC=$SRC/docs/resources.md
[ -x "$CTL" ] || { echo "no $CTL: build first" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.gen"' EXIT
ANVIL_SERVER=/nonexistent "$CTL" explain --markdown >"$tmp.gen"
awk -v gen="$tmp.gen" '
  /<!-- BEGIN GENERATED/ { print; while ((getline line < gen) > 0) print line; skip = 1; next }
  /<!-- END GENERATED/ { skip = 0 }
  !skip { print }
' "$DOC" >"$tmp"
grep -q "BEGIN GENERATED" "$tmp" || { echo "$DOC has no BEGIN GENERATED marker" >&2; exit 1; }
if [ -n "$check" ]; then
  if ! diff -u "$DOC" "$tmp"; then
    echo "docs/resources.md is out of date: run scripts/gen-resources-doc.sh" >&2
    exit 1
  fi
  echo "docs/resources.md is up to date"
else
  cp "$tmp" "$DOC"
fi
