#!/usr/bin/env bash
# In-place upgrade v1.30.2 -> v1.31.0 of 1 control plane + 3 workers with no spare host
# (annotation anvil.dev/upgrade-strategy: InPlace, workers maxUnavailable 2):
#  - a minor version skip and workers newer than the control plane are refused at apply;
#  - the control plane goes first (kubeadm upgrade apply, once), then the workers (kubeadm
#    upgrade node), each after the agent's upgrade-commands installed the new packages;
#  - never more than maxUnavailable nodes cordoned at once (the fake API server's history);
#  - a failing package step stops the rollout and shows where (rollout status, describe);
#    after the fix, anvil.dev/retry-upgrade resumes it;
#  - an agent killed right after kubeadm upgrade node resumes its persisted plan;
#  - at the end every node runs v1.31.0 (as the fake records), on the same machines and hosts.
. "$(dirname "$0")/common.sh"
export ANVIL_HEARTBEAT=1s
export ANVIL_AGENT_YAML="upgrade-commands:
  - 'test ! -e \"\$ANVIL_HOST_ROOT/fail-upgrade\" || { echo \"package mirror unreachable\" >&2; exit 3; }'
  - '/usr/bin/python3 $SRC/tests/fakes/fakek8s.py install-packages \"\$ANVIL_HOST_ROOT\" \"\$ANVIL_KUBERNETES_VERSION\"'
node-check-interval: 1s"
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent cp-1 "$CP"
anvil_start_agent worker-1 "$W"
anvil_start_agent worker-2 "$W"
ANVIL_TEST_CRASH=kubeadm-upgrade-node:after anvil_start_agent worker-3 "$W"
anvil_wait 30 "4 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 4 ]"
/usr/bin/python3 - "$SRC/examples/cluster.yaml" "$WORK/cluster.yaml" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
for d in docs:
    if d["kind"] in ("KubeadmControlPlane", "MachineDeployment"):
        d["metadata"].setdefault("annotations", {})["anvil.dev/upgrade-strategy"] = "InPlace"
    if d["kind"] == "MachineDeployment":
        d["spec"]["replicas"] = 3
        d["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 2}}
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 120 "4 machines Running" anvil_machines_running 4
KCP=demo-control-plane
MD=demo-md-0
EP=10.200.0.10:6443
FAKE="/usr/bin/python3 $SRC/tests/fakes/fakek8s.py"
placement() {
  anvilctl get anvilmachines -o json | json '" ".join(sorted(m["metadata"]["name"] + "@" + m["status"]["hostRef"]["name"] for m in d["items"]))'
}
before=$(placement)

# ---- version skew, refused at apply, nothing changed
res_set kcp $KCP "d['spec']['version']='v1.32.0'" 2>"$WORK/err.txt" && fail "a minor version skip was accepted"
grep -q "one minor version at a time (v1.31 first)" "$WORK/err.txt" || fail "skip refusal: $(cat "$WORK/err.txt")"
grep -Eq "set-kcp-$KCP.json:[0-9]+:[0-9]+" "$WORK/err.txt" || fail "the refusal names no file and line: $(cat "$WORK/err.txt")"
md_set $MD "d['spec']['template']['spec']['version']='v1.31.0'" 2>"$WORK/err.txt" && fail "workers newer than the control plane were accepted"
grep -q "a kubelet is never newer than its API server" "$WORK/err.txt" || fail "kubelet skew refusal: $(cat "$WORK/err.txt")"
assert_eq "$(anvilctl get kcp $KCP -o json | json 'd["spec"]["version"]')" v1.30.2 "control plane version after refusals"
echo "ok: version skew refused"

# ---- the upgrade: control plane and workers in one apply, worker-2's package step failing
touch "$WORK/agents/worker-2/root/fail-upgrade"
anvilctl get kcp $KCP -o json >"$WORK/kcp.json"
anvilctl get md $MD -o json >"$WORK/md.json"
/usr/bin/python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
out = []
for f in ("kcp", "md"):
    d = json.load(open("%s/%s.json" % (w, f)))
    d.pop("status", None)
    for k in ("uid", "resourceVersion", "generation", "creationTimestamp", "ownerReferences", "finalizers"):
        d["metadata"].pop(k, None)
    d["metadata"].get("annotations", {}).pop("anvil.dev/last-applied-configuration", None)
    if f == "kcp":
        d["spec"]["version"] = "v1.31.0"
    else:
        d["spec"]["template"]["spec"]["version"] = "v1.31.0"
    out.append(json.dumps(d))
open("%s/upgrade.yaml" % w, "w").write("\n---\n".join(out) + "\n")
PY
t0=$(date +%s.%N)
anvilctl apply -f "$WORK/upgrade.yaml" >/dev/null
timeout 120 "$CTL" rollout status kcp $KCP >"$WORK/kcp-status.txt" || fail "control plane upgrade: $(cat "$WORK/kcp-status.txt")"
echo "ok: control plane upgraded in place"

restart_crashed_worker3() {
  local pid
  pid=$(anvil_agent_pid worker-3)
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    echo "worker-3's agent died (test hook); restarting it"
    anvil_start_agent worker-3 "$W"
  fi
}
md_reason() { anvilctl get md $MD -o json | json '[c.get("reason","") for c in d["status"].get("conditions",[]) if c["type"]=="MachinesUpToDate"][0]'; }
for _ in $(seq 1 240); do
  restart_crashed_worker3
  [ "$(md_reason)" = InPlaceUpgradeFailed ] && break
  sleep 0.5
done
[ "$(md_reason)" = InPlaceUpgradeFailed ] || fail "the failing package step did not stop the rollout"
tfail=$(date -u +%Y-%m-%dT%H:%M:%SZ)
restart_crashed_worker3
"$CTL" rollout status md $MD 2>"$WORK/failed.txt" && fail "rollout status succeeded on a failed rollout"
grep -q 'rollout failed: .*step upgrade-commands-1 failed on host worker-2 (exit 3)' "$WORK/failed.txt" ||
  fail "rollout status: $(cat "$WORK/failed.txt")"
anvilctl describe cluster demo >"$WORK/describe.txt"
grep -q "last error: step upgrade-commands-1 exited 3" "$WORK/describe.txt" || fail "describe: $(cat "$WORK/describe.txt")"
grep -q "package mirror unreachable" "$WORK/describe.txt" || fail "describe shows no output"
grep -q "rollout: InPlaceUpgradeFailed: the rollout stopped: machine" "$WORK/describe.txt" ||
  fail "describe shows no stopped rollout: $(cat "$WORK/describe.txt")"
sleep 3
# Stopped: no machine started its upgrade after the failure.
anvilctl get machines -o json | /usr/bin/python3 -c '
import json, sys
late = [m["metadata"]["name"] for m in json.load(sys.stdin)["items"]
        if m["status"].get("inPlaceUpgrade", {}).get("startedAt", "") > sys.argv[1]]
assert not late, "started after the failure: %s" % late' "$tfail" || fail "the rollout went on after a failure"
echo "ok: the failure stopped the rollout and shows where"

# ---- fix it and retry
rm -f "$WORK/agents/worker-2/root/fail-upgrade"
failed=$(anvilctl get machines -o json | json '[m["metadata"]["name"] for m in d["items"] if m["status"].get("inPlaceUpgrade",{}).get("phase")=="Failed"][0]')
anvilctl annotate machine "$failed" anvil.dev/retry-upgrade=1 >/dev/null
for _ in $(seq 1 360); do
  restart_crashed_worker3
  timeout 1 "$CTL" rollout status md $MD >/dev/null 2>&1 && break
  sleep 0.5
done
timeout 5 "$CTL" rollout status md $MD >"$WORK/md-status.txt" || fail "worker upgrade: $(cat "$WORK/md-status.txt")"
grep -q "successfully rolled out" "$WORK/md-status.txt" || fail "rollout status: $(cat "$WORK/md-status.txt")"

# ---- every node at the new version, as the fakes record, on the same machines and hosts
$FAKE nodes $EP | /usr/bin/python3 -c '
import json, sys
nodes = json.load(sys.stdin)
assert sorted(nodes) == ["cp-1", "worker-1", "worker-2", "worker-3"], nodes
bad = {n: v for n, v in nodes.items() if v["kubeletVersion"] != "v1.31.0" or v["unschedulable"] or not v["ready"]}
assert not bad, bad' || fail "nodes after the upgrade"
assert_eq "$($FAKE dump | json 'list(d["clusters"].values())[0]["kubernetesVersion"]')" v1.31.0 "cluster version"
assert_eq "$(placement)" "$before" "machines and hosts (nothing was replaced)"
assert_eq "$(anvilctl get kcp $KCP -o json | json 'd["status"]["version"]')" v1.31.0 "KubeadmControlPlane status.version"
assert_eq "$(anvilctl get md $MD -o json | json 'd["status"]["updatedReplicas"]')" 3 "updatedReplicas"
# Never more than maxUnavailable (2) nodes cordoned at once; the control plane alone first.
$FAKE history $EP | /usr/bin/python3 -c '
import json, sys
t0 = float(sys.argv[1])
hist = [h for h in json.load(sys.stdin) if h["time"] >= t0]
most = max(len(h["cordoned"]) for h in hist)
assert most <= 2, "%d nodes cordoned at once" % most
assert any(h["cordoned"] == ["cp-1"] for h in hist), "the control plane was never cordoned"
assert all(h["cordoned"] == ["cp-1"] for h in hist if "cp-1" in h["cordoned"]), "workers cordoned with the control plane"
print("nodes cordoned at once: at most %d" % most)' "$t0" || fail "cordoned nodes"
# kubeadm: apply once on the control plane, before any upgrade node; every worker once or more.
/usr/bin/python3 - "$FAKE_K8S_STATE/invocations.jsonl" <<'PY' || fail "kubeadm upgrade calls"
import json, sys, datetime
calls = [json.loads(l) for l in open(sys.argv[1])]
t = lambda c: datetime.datetime.fromisoformat(c["time"].replace("Z", "+00:00")).timestamp()
apply = [c for c in calls if c["tool"] == "kubeadm" and c["argv"][:2] == ["upgrade", "apply"] and c["exit"] == 0]
node = [c for c in calls if c["tool"] == "kubeadm" and c["argv"][:2] == ["upgrade", "node"] and c["exit"] == 0]
assert len(apply) == 1 and apply[0]["rootfs"].endswith("/cp-1/root"), apply
assert "v1.31.0" in apply[0]["argv"], apply
assert all(t(n) >= t(apply[0]) + apply[0]["duration"] - 1 for n in node), "a worker upgraded before the control plane"
roots = sorted({n["rootfs"].split("/")[-2] for n in node})
assert roots == ["worker-1", "worker-2", "worker-3"], roots
crashed = [n for n in node if n["rootfs"].endswith("/worker-3/root")]
assert len(crashed) == 2, "worker-3 ran kubeadm upgrade node %d times (once, then again after its crash)" % len(crashed)
print("kubeadm upgrade apply once, upgrade node on", roots)
PY
grep -q "Test hook: crashing after step kubeadm-upgrade-node" "$WORK/agents/worker-3/agent.log" || fail "worker-3 never crashed"
grep -q "kubeadm-upgrade-node resumed after a restart" "$WORK/agents/worker-3/agent.log" || fail "worker-3 did not resume its plan"
echo PASS
