#!/usr/bin/env bash
# Two MachineDeployments scaling up at once over the same pool of hosts (plus a coordinator
# SIGKILL in the middle of the claims): every host is claimed by at most one Machine, every
# claimed host's Machine points back at it, and the spare machines wait with a reason.
. "$(dirname "$0")/common.sh"
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent cp-1 "$CP"
for i in 1 2 3 4 5; do anvil_start_agent worker-$i "$W"; done
anvil_wait 30 "6 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 6 ]"
/usr/bin/python3 - "$SRC/examples/cluster.yaml" >"$WORK/two-mds.yaml" <<'PY'
import sys, yaml, copy
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
out = []
for d in docs:
    if d["kind"] == "MachineDeployment":
        d["spec"]["replicas"] = 4
        e = copy.deepcopy(d)
        e["metadata"]["name"] = "demo-md-1"
        out += [d, e]
    else:
        out.append(d)
yaml.safe_dump_all(out, sys.stdout)
PY
anvilctl apply -f "$WORK/two-mds.yaml" >/dev/null   # 8 workers wanted, 5 hosts
sleep 0.5
anvil_crash_coordinator
anvil_start_coordinator
anvil_wait 120 "6 machines Running" bash -c "[ \$($CTL get machines -o json | grep -c '\"phase\": \"Running\"') -eq 6 ]"
sleep 2
anvilctl get hosts -o json >"$WORK/hosts.json"
anvilctl get anvilmachines -o json >"$WORK/ams.json"
/usr/bin/python3 - "$WORK" <<'PY' || fail "claims are inconsistent"
import json, sys
w = sys.argv[1]
hosts = json.load(open(w + "/hosts.json"))["items"]
ams = json.load(open(w + "/ams.json"))["items"]
claims = [h["spec"]["consumerRef"]["name"] for h in hosts if h["spec"].get("consumerRef")]
assert len(claims) == len(set(claims)) == 6, claims
by_am = {a["metadata"]["name"]: a for a in ams}
for h in hosts:
    c = h["spec"].get("consumerRef")
    if c:
        assert by_am[c["name"]]["status"]["hostRef"]["name"] == h["metadata"]["name"], (h["metadata"]["name"], c)
waiting = [a for a in ams if not a["status"].get("hostRef")]
assert len(waiting) == 3, [a["metadata"]["name"] for a in waiting]
for a in waiting:
    r = [c for c in a["status"]["conditions"] if c["type"] == "HostClaimed"][0]
    assert r["reason"] == "WaitingForHost" and "no Available host matches role=worker" in r["message"], r
print("claims OK:", len(claims), "claimed,", len(waiting), "waiting")
PY
echo PASS
