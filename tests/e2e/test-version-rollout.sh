#!/usr/bin/env bash
# A Kubernetes version rolled out by machine replacement (v1.30.2 -> v1.31.0), the control
# plane with a spare host (scale up first) and the workers with one (maxSurge 1), on hosts
# whose image carries v1.30.2 packages:
#  - before the new control plane machine joins, the coordinator has a control plane host
#    update kube-system/kubeadm-config (kubernetesVersion), once — kubeadm join
#    --control-plane takes the version from there — so the new member's static pods, the
#    cluster's version and every kubelet end at v1.31.0 (as the fake cluster records);
#  - each new host installs the machine's version first (check-version, the agent's
#    upgrade-commands, verify-version), before kubeadm runs;
#  - a coordinator restart afterwards does not update the ConfigMap again;
#  - a later in-place upgrade to v1.32.0 works (kubeadm upgrade apply finds v1.31.0);
#  - a host without upgrade-commands asked for another version fails its first step and says
#    which versions and which setting; a Machine whose kubelet reports another version than
#    spec.version is not counted as up to date, and the rollout says why.
. "$(dirname "$0")/common.sh"
export ANVIL_HEARTBEAT=1s
INSTALL="upgrade-commands:
  - '/usr/bin/python3 $SRC/tests/fakes/fakek8s.py install-packages \"\$ANVIL_HOST_ROOT\" \"\$ANVIL_KUBERNETES_VERSION\"'
node-check-interval: 1s"
FAKE="/usr/bin/python3 $SRC/tests/fakes/fakek8s.py"
EP=10.200.0.10:6443
KCP=demo-control-plane
MD=demo-md-0
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
SPARE=$(anvilctl token create --labels role=spare)
for h in cp-1 cp-2; do ANVIL_AGENT_YAML=$INSTALL anvil_start_agent $h "$CP"; done
for h in worker-1 worker-2; do ANVIL_AGENT_YAML=$INSTALL anvil_start_agent $h "$W"; done
# worker-3 has no upgrade-commands: it can only run what its image carries (kept out of the
# pool until the end).
ANVIL_AGENT_YAML="node-check-interval: 1s" anvil_start_agent worker-3 "$SPARE"
anvil_wait 30 "5 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 5 ]"
# The hosts' image: kubeadm and kubelet v1.30.2.
for h in cp-1 cp-2 worker-1 worker-2 worker-3; do $FAKE install-packages "$WORK/agents/$h/root" v1.30.2 >/dev/null; done
sed 's/^  replicas: 2$/  replicas: 1/' "$SRC/examples/cluster.yaml" >"$WORK/cluster.yaml"
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 120 "2 machines Running" anvil_machines_running 2
kubelets() { $FAKE nodes $EP | json '" ".join(sorted(n + "=" + v["kubeletVersion"] for n, v in d.items()))'; }
cluster_version() { $FAKE dump | json "d['clusters']['$EP']['kubernetesVersion']"; }
configmap_version() {
  /usr/bin/python3 "$SRC/tests/fakes/kubectl" --kubeconfig "$WORK/agents/$1/root/etc/kubernetes/admin.conf" \
    -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' |
    /usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["kubernetesVersion"])'
}
assert_eq "$(cluster_version)" v1.30.2 "cluster version before"
old_cp=$(machine_host "$(anvilctl get machines -l cluster.x-k8s.io/control-plane-name=$KCP -o name | cut -d/ -f2)")

# ---- the upgrade, by replacement: control plane and workers in one apply
/usr/bin/python3 - "$WORK/cluster.yaml" "$WORK/upgrade.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d["kind"] in ("KubeadmControlPlane", "MachineDeployment")]
for d in docs:
    if d["kind"] == "KubeadmControlPlane":
        d["spec"]["version"] = "v1.31.0"
    else:
        d["spec"]["template"]["spec"]["version"] = "v1.31.0"
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
anvilctl apply -f "$WORK/upgrade.yaml" >/dev/null
timeout 180 "$CTL" rollout status kcp $KCP >"$WORK/kcp-status.txt" || fail "control plane rollout: $(cat "$WORK/kcp-status.txt")"
new_cp=$([ "$old_cp" = cp-1 ] && echo cp-2 || echo cp-1)
grep -q "image: registry.k8s.io/kube-apiserver:v1.31.0" "$WORK/agents/$new_cp/root/etc/kubernetes/manifests/kube-apiserver.yaml" ||
  fail "the new control plane host runs $(grep image: "$WORK/agents/$new_cp/root/etc/kubernetes/manifests/kube-apiserver.yaml")"
assert_eq "$(cluster_version)" v1.31.0 "the fake cluster's kubeadm-config kubernetesVersion"
assert_eq "$(configmap_version "$new_cp")" v1.31.0 "kubeadm-config as kubectl reads it"
assert_eq "$(fake_calls patch configmap kubeadm-config)" 1 "kubeadm-config updates"
assert_eq "$(anvilctl get kcp $KCP -o json | json 'd["status"]["kubeadmConfig"]["kubernetesVersion"]')" v1.31.0 "status.kubeadmConfig"
# The new host installed v1.31.0 before kubeadm ran, and told us which steps it ran.
$FAKE dump | json "d['hosts']['$WORK/agents/$new_cp/root']['packages']['kubelet']" | grep -qx v1.31.0 ||
  fail "$new_cp did not install v1.31.0"
grep -q "Step 1/.* check-version started" "$WORK/agents/$new_cp/agent.log" || fail "$new_cp: no check-version step"
grep -q "upgrade-commands-1 finished" "$WORK/agents/$new_cp/agent.log" || fail "$new_cp: no install step"
echo "ok: control plane replaced at v1.31.0, kubeadm-config updated once before the join"

timeout 180 "$CTL" rollout status md $MD >"$WORK/md-status.txt" || fail "worker rollout: $(cat "$WORK/md-status.txt")"
anvil_wait 60 "2 machines Running" anvil_machines_running 2
anvil_wait 30 "every kubelet at v1.31.0" bash -c "! $FAKE nodes $EP | grep -q v1.30.2"
for mname in $(anvilctl get machines -o name | cut -d/ -f2); do
  m=$(anvilctl get machine "$mname" -o json)
  assert_eq "$(json 'd["status"]["nodeInfo"]["kubeletVersion"]' <<<"$m")" v1.31.0 "$mname kubelet"
  assert_eq "$(json '[c["status"] for c in d["status"]["conditions"] if c["type"] == "KubeletUpToDate"][0]' <<<"$m")" True "$mname KubeletUpToDate"
done
echo "ok: workers replaced at v1.31.0: kubelets $(kubelets)"

# ---- a coordinator restart neither skips nor repeats the ConfigMap update
gets=$(fake_calls get configmap kubeadm-config)
anvil_crash_coordinator
anvil_start_coordinator
sleep 3
anvilctl get kcp $KCP -o json | json 'd["status"]["conditions"]' | grep -q "'MachinesSpecUpToDate', 'status': 'True'" ||
  fail "control plane not up to date after the restart: $(anvilctl get kcp $KCP -o json | json 'd["status"]["conditions"]')"
assert_eq "$(fake_calls get configmap kubeadm-config)" "$gets" "kubeadm-config looked at again after the restart"
assert_eq "$(fake_calls patch configmap kubeadm-config)" 1 "kubeadm-config updates after the restart"
echo "ok: nothing asked again after a coordinator restart"

# ---- in place to v1.32.0: kubeadm upgrade apply finds the cluster at v1.31.0
res_set kcp $KCP "d['metadata'].setdefault('annotations', {})['anvil.dev/upgrade-strategy']='InPlace'; d['spec']['version']='v1.32.0'"
timeout 180 "$CTL" rollout status kcp $KCP >"$WORK/kcp-status2.txt" || fail "in-place upgrade: $(cat "$WORK/kcp-status2.txt")"
assert_eq "$(cluster_version)" v1.32.0 "cluster version after the in-place upgrade"
echo "ok: then in place to v1.32.0"

# ---- a host without upgrade-commands and a kubelet at another version
# The workers the rollout freed leave the pool: worker-3 is the only one the scale-up can take.
for h in worker-1 worker-2; do
  if host_is $h Available; then anvilctl label host $h role=retired --overwrite >/dev/null; fi
done
anvilctl label host worker-3 role=worker --overwrite >/dev/null
anvilctl scale md $MD --replicas 2 >/dev/null
failed_step_is() { [ "$(anvilctl get host "$1" -o json | json 'd["status"].get("lastError", {}).get("step", "")')" = "$2" ]; }
updated_is() { [ "$(anvilctl get md $MD -o json | json 'd["status"]["updatedReplicas"]')" = "$1" ]; }
anvil_wait 60 "worker-3's provisioning failed" failed_step_is worker-3 check-version
err=$(anvilctl get host worker-3 -o json | json 'd["status"]["lastError"]["message"]')
grep -q "this host has kubeadm v1.30.2, the machine wants v1.31.0, and agent.yaml sets no upgrade-commands" <<<"$err" ||
  fail "worker-3's failure: $err"
[ "$(fake_calls join --rootfs "$WORK/agents/worker-3/root")" -eq 0 ] || fail "worker-3 ran kubeadm join anyway"
echo "ok: a host without upgrade-commands refuses another version: $err"
anvilctl scale md $MD --replicas 1 >/dev/null
anvil_wait 60 "1 worker" bash -c "[ \$($CTL get machines -l cluster.x-k8s.io/deployment-name=$MD -o name | wc -l) -eq 1 ]"
# A kubelet that reports another version than its Machine's: not up to date, and said so.
w=$(md_machines $MD)
node=$(anvilctl get machine "$w" -o json | json 'd["status"]["nodeRef"]["name"]')
$FAKE set-kubelet-version $EP "$node" v1.30.2
anvil_wait 30 "the deployment not up to date" updated_is 0
cond=$(anvilctl get md $MD -o json | json '[c for c in d["status"]["conditions"] if c["type"] == "MachinesUpToDate"][0]')
grep -q "'reason': 'KubeletVersionMismatch'" <<<"$cond" || fail "MachinesUpToDate: $cond"
grep -q "reports kubelet v1.30.2, but spec.version is v1.31.0" <<<"$cond" || fail "MachinesUpToDate: $cond"
if timeout 5 "$CTL" rollout status md $MD >"$WORK/md-status2.txt"; then fail "rollout status says done: $(cat "$WORK/md-status2.txt")"; fi
grep -q "KubeletVersionMismatch\|reports kubelet v1.30.2" "$WORK/md-status2.txt" || fail "rollout status: $(cat "$WORK/md-status2.txt")"
$FAKE set-kubelet-version $EP "$node" v1.31.0
anvil_wait 30 "up to date again" updated_is 1
echo PASS
