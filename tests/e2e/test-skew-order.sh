#!/usr/bin/env bash
# Version skew at apply is judged on the state after the whole apply (all or nothing), so the
# order of the documents in a file does not matter: a MachineDeployment listed before the
# KubeadmControlPlane it follows may move to the control plane's new version. What stays
# refused — workers newer than the control plane after the apply, a minor version skipped —
# names the document's file and line and changes nothing. No hosts are needed: only the
# stored objects are compared.
. "$(dirname "$0")/common.sh"
anvil_start_coordinator
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null
# The Cluster adopts the control plane (label cluster-name), which the check follows.
anvil_wait 20 "the control plane adopted" bash -c \
  "$CTL get kcp demo-control-plane -o json | grep -q '\"cluster.x-k8s.io/cluster-name\": \"demo\"'"
rev() { anvilctl info -o json | json 'd["revision"]'; }
versions() {
  echo "$(anvilctl get kcp demo-control-plane -o json | json 'd["spec"]["version"]')" \
    "$(anvilctl get md demo-md-0 -o json | json 'd["spec"]["template"]["spec"]["version"]')"
}
# upgrade_file FILE MD_VERSION KCP_VERSION: the MachineDeployment first, then the control
# plane (either may be empty: that document is left out).
upgrade_file() {
  /usr/bin/python3 - "$SRC/examples/cluster.yaml" "$@" <<'PY'
import sys, yaml
src, out, mdv, kcpv = sys.argv[1:]
docs = {d["kind"]: d for d in yaml.safe_load_all(open(src))}
md, kcp = docs["MachineDeployment"], docs["KubeadmControlPlane"]
md["spec"]["template"]["spec"]["version"] = mdv
kcp["spec"]["version"] = kcpv
yaml.safe_dump_all([d for d, v in ((md, mdv), (kcp, kcpv)) if v], open(out, "w"), sort_keys=False)
PY
}

# ---- the MachineDeployment before the control plane, both to v1.31.0: accepted
upgrade_file "$WORK/up.yaml" v1.31.0 v1.31.0
head -3 "$WORK/up.yaml" | grep -q "kind: MachineDeployment" || fail "the file does not list the MachineDeployment first"
anvilctl apply -f "$WORK/up.yaml" >"$WORK/out.txt" 2>&1 || fail "MachineDeployment-first upgrade refused: $(cat "$WORK/out.txt")"
assert_eq "$(versions)" "v1.31.0 v1.31.0" "versions after the MachineDeployment-first apply"
echo "ok: a MachineDeployment listed before its control plane follows it in one apply"

# ---- workers newer than the control plane after the apply: refused, at the document's line
before=$(rev)
upgrade_file "$WORK/ahead.yaml" v1.32.0 ""
if anvilctl apply -f "$WORK/ahead.yaml" >"$WORK/out.txt" 2>&1; then fail "workers ahead of the control plane accepted"; fi
grep -Eq "ahead.yaml:[0-9]+:[0-9]+: MachineDeployment/demo-md-0: spec.template.spec.version: cannot upgrade the machines to v1.32.0: the control plane is at v1.31.0" \
  "$WORK/out.txt" || fail "refusal: $(cat "$WORK/out.txt")"
assert_eq "$(rev)" "$before" "store revision after the refused apply"
# Also when the control plane's document in the same file goes elsewhere (down to v1.30.2).
upgrade_file "$WORK/apart.yaml" v1.31.0 v1.30.2
if anvilctl apply -f "$WORK/apart.yaml" >"$WORK/out.txt" 2>&1; then fail "control plane below its workers accepted"; fi
grep -q "KubeadmControlPlane/demo-control-plane: spec.version: cannot set the control plane to v1.30.2: MachineDeployment demo-md-0 runs v1.31.0" \
  "$WORK/out.txt" || fail "refusal: $(cat "$WORK/out.txt")"
grep -q "nothing applied" "$WORK/out.txt" || fail "no summary: $(cat "$WORK/out.txt")"
assert_eq "$(rev)" "$before" "store revision after the second refused apply"
assert_eq "$(versions)" "v1.31.0 v1.31.0" "versions after the refusals"
echo "ok: workers newer than the control plane after the apply are refused, nothing changed"

# ---- a skipped minor version stays refused whatever the order
upgrade_file "$WORK/skip.yaml" v1.33.0 v1.33.0
if anvilctl apply -f "$WORK/skip.yaml" >"$WORK/out.txt" 2>&1; then fail "a skipped minor version accepted"; fi
grep -q "Kubernetes upgrades go one minor version at a time (v1.32 first)" "$WORK/out.txt" ||
  fail "skip refusal: $(cat "$WORK/out.txt")"
assert_eq "$(versions)" "v1.31.0 v1.31.0" "versions after the skip"
# And the control plane first, as before, still works.
/usr/bin/python3 - "$WORK/up.yaml" "$WORK/up2.yaml" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
for d in docs:
    d["spec"].get("template", {}).get("spec", {}).update({"version": "v1.32.0"}) if d["kind"] == "MachineDeployment" else d["spec"].update({"version": "v1.32.0"})
yaml.safe_dump_all(list(reversed(docs)), open(sys.argv[2], "w"), sort_keys=False)
PY
echo "ok: a skipped minor version is refused"
anvilctl apply -f "$WORK/up2.yaml" >"$WORK/out.txt" 2>&1 || fail "control-plane-first upgrade refused: $(cat "$WORK/out.txt")"
assert_eq "$(versions)" "v1.32.0 v1.32.0" "versions after the control-plane-first apply"
echo PASS
