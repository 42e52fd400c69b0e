#!/usr/bin/env bash
# Bad manifests, table-driven: every tests/e2e/bad-manifests/CASE.yaml is applied and must
# fail with exit status 1, print exactly CASE.err (every problem as FILE:LINE:COLUMN:
# KIND/NAME: field.path: message, then the summary), and change nothing in the store (the
# store revision, which every write bumps, stays where it was). CASE.setup.yaml, when
# present, is applied first and must succeed (changes to live objects: immutable fields,
# conflicts). A "# args: ..." first line passes extra anvilctl arguments.
#
# UPDATE_GOLDEN=1 rewrites the .err files from the current output (review the diff!).
. "$(dirname "$0")/common.sh"
CASES=$SRC/tests/e2e/bad-manifests
anvil_start_coordinator

rev() { anvilctl info -o json | json 'd["revision"]'; }
# Controllers may still be reacting to a setup; wait until nothing has been written for 1 s.
quiet() {
  local a b
  for _ in $(seq 1 40); do
    a=$(rev); sleep 1; b=$(rev)
    [ "$a" = "$b" ] && return 0
  done
  fail "the store did not settle"
}

n=0
for f in "$CASES"/*.yaml; do
  case $f in *.setup.yaml) continue ;; esac
  name=$(basename "$f" .yaml)
  if [ -f "$CASES/$name.setup.yaml" ]; then
    (cd "$CASES" && anvilctl apply -f "$name.setup.yaml" >/dev/null) || fail "$name: setup failed"
    quiet
  fi
  args=$(sed -n '1s/^# args: \([^(]*\).*/\1/p' "$f")
  before=$(rev)
  set +e
  # shellcheck disable=SC2086
  out=$(cd "$CASES" && "$CTL" $args apply -f "$name.yaml" 2>&1 >/dev/null)
  rc=$?
  set -e
  # The live resourceVersion of a conflict depends on what ran before.
  out=$(printf '%s\n' "$out" | sed -E 's/resourceVersion [0-9]+, yours/resourceVersion N, yours/')
  [ $rc -eq 1 ] || fail "$name: exit status $rc, want 1; output: $out"
  if [ -n "${UPDATE_GOLDEN:-}" ]; then
    printf '%s\n' "$out" >"$CASES/$name.err"
  else
    diff -u "$CASES/$name.err" <(printf '%s\n' "$out") || fail "$name: output differs from $name.err"
  fi
  after=$(rev)
  assert_eq "$after" "$before" "$name: store revision after the failed apply"
  echo "ok: $name: $(printf '%s\n' "$out" | head -1)"
  n=$((n + 1))
done
[ $n -ge 15 ] || fail "only $n cases ran"

# Nothing of a failed file was created, not even its valid documents.
anvilctl get cluster would-be-created >/dev/null 2>&1 && fail "a document of a failed apply was stored"
anvilctl get anvilcluster dup >/dev/null 2>&1 && fail "a duplicated document was stored"
# A value too long to quote whole (100 KB, past a problem line's 64 KiB): the error is cut,
# says so, and anvilctl still prints it (its decoder refuses longer lines).
python3 - "$WORK/huge.yaml" <<'PY'
import sys
v = "é" + "x" * 100000
open(sys.argv[1], "w").write(f"""apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineSet
metadata:
  name: ms-huge
spec:
  clusterName: c
  deletePolicy: "{v}"
  selector: {{}}
  template:
    spec:
      clusterName: c
      bootstrap: {{dataSecretName: x}}
      infrastructureRef: {{apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilMachine, name: x}}
""")
PY
before=$(rev)
if anvilctl apply -f "$WORK/huge.yaml" >"$WORK/huge.out" 2>&1; then fail "huge: applied"; fi
grep -q 'huge.yaml:7:17: MachineSet/ms-huge: spec.deletePolicy: unsupported value "éxxx.* … (truncated)$' \
  "$WORK/huge.out" || fail "huge: $(head -c 300 "$WORK/huge.out")"
[ "$(wc -c <"$WORK/huge.out")" -lt 70000 ] || fail "huge: the problem line was not cut"
assert_eq "$(rev)" "$before" "huge: store revision"
echo "ok: huge: the problem line is cut at 64 KiB"
echo "PASS ($n cases)"
