#!/usr/bin/env bash
# docs/resources.md lists exactly what the kind tables accept: its generated part must be
# what `anvilctl explain --markdown` prints now.
set -euo pipefail
SRC=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bash "$SRC/scripts/gen-resources-doc.sh" --check "${ANVIL_BUILD_DIR:-$SRC/build}"
