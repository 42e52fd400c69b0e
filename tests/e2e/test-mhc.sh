#!/usr/bin/env bash
# MachineHealthCheck on real agents (1 control plane host, 5 workers + 1 spare; heartbeat
# grace 3 s; unhealthy after 5 s of Ready False or Unknown; maxUnhealthy 40%):
#  - 3 of 5 nodes NotReady: nothing is remediated, RemediationAllowed=False says why;
#  - the only control plane machine NotReady: its KubeadmControlPlane never removes it;
#  - two agents marked unreachable, the coordinator killed before their timeout and restarted
#    long after it (the agents back meanwhile): no remediation;
#  - a worker's agent killed: after the grace and the timeout the machine is marked, deleted
#    by its MachineSet and replaced on the spare host; the dead host is not handed out again.
. "$(dirname "$0")/common.sh"
export ANVIL_HEARTBEAT=1s ANVIL_GRACE=3s
export ANVIL_AGENT_YAML="node-check-interval: 1s"
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent cp-1 "$CP"
for i in 1 2 3 4 5 6; do anvil_start_agent worker-$i "$W"; done
anvil_wait 30 "7 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 7 ]"
sed 's/replicas: 2/replicas: 5/' "$SRC/examples/cluster.yaml" >"$WORK/cluster.yaml"
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 120 "6 machines Running" anvil_machines_running 6
cat >"$WORK/mhc.yaml" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineHealthCheck
metadata:
  name: demo-workers
  namespace: default
spec:
  clusterName: demo
  maxUnhealthy: 40%
  selector:
    matchLabels:
      cluster.x-k8s.io/deployment-name: demo-md-0
  unhealthyConditions:
    - type: Ready
      status: Unknown
      timeout: 5s
    - type: Ready
      status: "False"
      timeout: 5s
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineHealthCheck
metadata:
  name: demo-control-plane
  namespace: default
spec:
  clusterName: demo
  selector:
    matchLabels:
      cluster.x-k8s.io/control-plane: ""
  unhealthyConditions:
    - type: Ready
      status: "False"
      timeout: 2s
YAML
anvilctl apply -f "$WORK/mhc.yaml" >/dev/null
MD=demo-md-0
EP=10.200.0.10:6443
FAKE="/usr/bin/python3 $SRC/tests/fakes/fakek8s.py"
mhc() { anvilctl get mhc demo-workers -o json | json "$1"; }
allowed() { mhc '([c["status"] for c in d["status"].get("conditions",[]) if c["type"]=="RemediationAllowed"] + [""])[0]'; }
healthy_is() { [ "$(mhc 'd["status"].get("currentHealthy")')" = "$1" ]; }
allowed_is() { [ "$(allowed)" = "$1" ]; }
anvil_wait 30 "the health check sees 5 healthy machines" healthy_is 5
assert_eq "$(mhc 'd["status"]["expectedMachines"]')" 5 "expectedMachines"
machines=$(md_machines $MD)
nodes=$(anvilctl get machines -l cluster.x-k8s.io/deployment-name=$MD -o json | json '" ".join(sorted(m["status"]["nodeRef"]["name"] for m in d["items"]))')
no_remediation() {
  anvilctl get machines -o json | /usr/bin/python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
bad = [m["metadata"]["name"] for m in items if m["metadata"].get("deletionTimestamp") or
       any(c["type"] == "OwnerRemediated" for c in m["status"].get("conditions", []))]
assert not bad, "remediation of %s" % bad'
}

# ---- 3 of 5 unhealthy with maxUnhealthy 40% (2): nothing is remediated, and it says why
read -r n1 n2 n3 _ <<<"$nodes"
$FAKE set-node-ready $EP "$n1,$n2,$n3" false
anvil_wait 30 "RemediationAllowed False" allowed_is False
msg=$(mhc '[c["reason"] + ": " + c["message"] for c in d["status"]["conditions"] if c["type"]=="RemediationAllowed"][0]')
echo "$msg"
grep -q "TooManyUnhealthy: .*exceeds maxUnhealthy: 40% (total: 5, unhealthy: 3)" <<<"$msg" || fail "condition: $msg"
assert_eq "$(mhc 'd["status"]["currentHealthy"]')" 2 "currentHealthy"
assert_eq "$(mhc 'd["status"]["remediationsAllowed"]')" 0 "remediationsAllowed"
sleep 3
no_remediation || fail "remediated beyond maxUnhealthy"
assert_eq "$(md_machines $MD)" "$machines" "machines with 3 of 5 unhealthy"
# The nodes recover one by one: with 40% the last two would be remediated on the way (2 of 5
# is within the limit), so nothing may be remediated while they do.
res_set mhc demo-workers "d['spec']['maxUnhealthy']=0"
$FAKE set-node-ready $EP "$n1,$n2,$n3" true
anvil_wait 30 "all healthy again" healthy_is 5
res_set mhc demo-workers "d['spec']['maxUnhealthy']='40%'"
anvil_wait 30 "RemediationAllowed True again" allowed_is True
no_remediation || fail "remediated while recovering"
assert_eq "$(md_machines $MD)" "$machines" "machines after recovering"
echo "ok: maxUnhealthy stopped remediation"

# ---- the only control plane machine: never remediated
$FAKE set-node-ready $EP cp-1 false
kcp_reason() { anvilctl get kcp demo-control-plane -o json | json '([c["reason"] for c in d["status"].get("conditions",[]) if c["type"]=="Remediation" and c["status"]=="False"] + [""])[0]'; }
kcp_reason_is() { [ "$(kcp_reason)" = "$1" ]; }
anvil_wait 30 "KCP refuses to remediate its last machine" kcp_reason_is CannotRemediateLastMachine ||
  fail "KCP Remediation: $(kcp_reason)"
sleep 2
[ "$(anvilctl get machines -l cluster.x-k8s.io/control-plane-name=demo-control-plane -o json | json 'len([m for m in d["items"] if not m["metadata"].get("deletionTimestamp")])')" = 1 ] ||
  fail "the last control plane machine went"
$FAKE set-node-ready $EP cp-1 true
anvil_wait 30 "KCP remediation clear" kcp_reason_is ""
echo "ok: the last control plane machine is never remediated"

# ---- a coordinator outage: two agents fall silent long enough to be marked unreachable,
# the coordinator dies before their timeout, they come back while it is down, and it
# restarts long after the timeout. Their stored state says "unreachable for more than the
# timeout", yet nothing is remediated: a host not heard from since the coordinator started
# is not judged until it had the time to reconnect.
read -r h1 h2 _ <<<"$(for mc in $machines; do machine_host "$mc"; done | xargs)"
kill -STOP "$(anvil_agent_pid "$h1")" "$(anvil_agent_pid "$h2")"
both_unreachable() { host_is "$h1" Unreachable && host_is "$h2" Unreachable; }
anvil_wait 30 "$h1 and $h2 unreachable" both_unreachable
anvil_crash_coordinator
kill -CONT "$(anvil_agent_pid "$h1")" "$(anvil_agent_pid "$h2")"
sleep 7
anvil_start_coordinator
sleep 10
no_remediation || fail "remediation after a coordinator restart"
assert_eq "$(md_machines $MD)" "$machines" "machines after the coordinator restart"
anvil_wait 30 "all healthy after the restart" healthy_is 5
echo "ok: no remediation after a coordinator restart"

# ---- a dead agent: remediated after the timeout, replaced on the spare host
victim=$(awk '{print $1}' <<<"$machines")
vhost=$(machine_host "$victim")
spare=$(anvilctl get hosts -o json | json '[h["metadata"]["name"] for h in d["items"] if h["status"].get("phase")=="Available"][0]')
kill -9 "$(anvil_agent_pid "$vhost")"
replaced() { machine_gone "$victim" && anvil_machines_running 6; }
anvil_wait 90 "$victim remediated and replaced" replaced
new=$(comm -13 <(tr ' ' '\n' <<<"$machines") <(md_machines $MD | tr ' ' '\n') | xargs)
[ "$(wc -w <<<"$new")" -eq 1 ] || fail "expected one replacement, got: $new"
assert_eq "$(machine_host "$new")" "$spare" "the replacement's host"
host_is "$vhost" Unreachable || fail "the dead host is $(host_phase "$vhost")"
assert_eq "$(anvilctl get host "$vhost" -o json | json 'd["spec"].get("resetRequired", False)')" True "the dead host must reset before reuse"
# Marked unhealthy only after the timeout (5 s) since the host became unreachable.
/usr/bin/python3 - "$WORK/coordinator.log" "$vhost" "$victim" <<'PY' || fail "remediated before the timeout"
import re, sys
log = open(sys.argv[1]).read().splitlines()
t = lambda l: sum(float(x) * m for x, m in zip(l[:12].split(":"), (3600, 60, 1)))
lost = [t(l) for l in log if "Host %s has not been heard from" % sys.argv[2] in l]
marked = [t(l) for l in log if "Machine %s is unhealthy" % sys.argv[3] in l]
assert lost and marked, (lost, marked)
assert marked[-1] - lost[-1] >= 4.5, "marked %.1fs after the host was lost" % (marked[-1] - lost[-1])
print("marked unhealthy %.1fs after its host was lost" % (marked[-1] - lost[-1]))
PY
anvil_wait 30 "5 healthy again" healthy_is 5
echo PASS
