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

# Machine names of a MachineDeployment, sorted.
md_machines() {
  anvilctl get machines -l "cluster.x-k8s.io/deployment-name=$1" -o json |
    json '" ".join(sorted(m["metadata"]["name"] for m in d["items"] if not m["metadata"].get("deletionTimestamp")))'
}
# Phase of a host.
host_phase() { anvilctl get host "$1" -o json | json 'd["status"].get("phase","")'; }
# The host a machine holds.
machine_host() { anvilctl get anvilmachine "$1" -o json | json 'd["status"]["hostRef"]["name"]'; }
# Number of fake kubeadm/kubectl calls whose argv contains all the given words.
fake_calls() {
  /usr/bin/python3 - "$FAKE_K8S_STATE/invocations.jsonl" "$@" <<'PY'
import json, sys
words = sys.argv[2:]
n = 0
for l in open(sys.argv[1]):
    c = json.loads(l)
    if all(w in c["argv"] for w in words) and c["exit"] == 0:
        n += 1
print(n)
PY
}
# res_manifest KIND NAME PYTHON_EXPR_ON_d FILE: the object as a manifest an operator would
# apply (no status, no server-set metadata), edited by the expression, written to FILE.
res_manifest() {
  anvilctl get "$1" "$2" -o json | /usr/bin/python3 -c "
import json,sys
d=json.load(sys.stdin)
for k in ('status',): d.pop(k, None)
for k in ('uid','resourceVersion','generation','creationTimestamp','managedFields','ownerReferences','finalizers'): d['metadata'].pop(k, None)
d['metadata'].get('annotations',{}).pop('anvil.dev/last-applied-configuration', None)
$3
json.dump(d, open('$4','w'))"
}
# Change an object with a Python expression on d (the object as JSON), applied whole.
res_set() { # res_set KIND NAME PYTHON_EXPR_ON_d
  res_manifest "$1" "$2" "$3" "$WORK/set-$1-$2.json"
  anvilctl apply -f "$WORK/set-$1-$2.json" >/dev/null
}
# Now, as an RFC 3339 UTC time (for rolloutAfter).
now_rfc3339() { date -u +%Y-%m-%dT%H:%M:%SZ; }
# res_set for a MachineDeployment.
md_set() { # md_set NAME PYTHON_EXPR_ON_d ; e.g. md_set demo-md-0 'd["spec"]["replicas"]=5'
  res_set md "$1" "$2"
}
host_is() { [ "$(host_phase "$1")" = "$2" ]; }
machine_gone() { ! anvilctl get machine "$1" >/dev/null 2>&1; }
hosts_in_phase() { anvilctl get hosts -o json | json "sum(1 for h in d['items'] if h['status'].get('phase')=='$1')"; }
n_hosts_in_phase() { [ "$(hosts_in_phase "$2")" -eq "$1" ]; }
