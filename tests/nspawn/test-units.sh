#!/usr/bin/env bash
# Both daemons under a real systemd (one container): the installed units verify cleanly and
# reach active with READY=1, STATUS= shows in systemctl status, SIGHUP reloads, a stopped
# kubelet.service reaches the coordinator as unhealthy at once (not at the next heartbeat),
# kubelet is restarted over sd-bus, a machine's step lines are in the journal with their
# fields (and the catalog explains them), a blocked event loop is killed by the watchdog and
# restarted, and a stop is clean.
. "$(dirname "$0")/lib.sh"
nspawn_require
T0=$SECONDS
NS=anvt-$NS_ID-u
netns_add "$NS"
nspawn_boot u "$NS"
nspawn_install u
fake_units u
ROOT=$(croot u)
echo "booted and installed in $((SECONDS - T0))s"

# The installed units, exactly as shipped: systemd-analyze verify says nothing at all.
out=$(nsx u systemd-analyze verify --man=no /usr/lib/systemd/system/anvil-coordinator.service \
        /usr/lib/systemd/system/anvil-agent.service 2>&1) || fail "verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed: $out"
# The exposure scores docs/systemd.md reports, as the running systemd computes them.
nsx u systemd-analyze security --no-pager anvil-coordinator.service anvil-agent.service |
  grep -E "^anvil-" || true
nsx u systemd-analyze security --threshold=15 anvil-coordinator.service >/dev/null ||
  fail "the coordinator's exposure is above 1.5"

# Test timings only (the shipped 30 s watchdog would make the test wait): a short watchdog
# and restart delay. Nothing else of the units changes.
for u in anvil-coordinator anvil-agent; do
  mkdir -p "$ROOT/etc/systemd/system/$u.service.d"
  printf '[Service]\nWatchdogSec=3s\nRestartSec=1s\n' >"$ROOT/etc/systemd/system/$u.service.d/test.conf"
done
nsx u systemctl daemon-reload

# ---- the coordinator ----
# A long grace: the agent's heartbeat below is an hour, so anything it reports in this test
# arrives because something changed, not because a heartbeat was due.
mkdir -p "$ROOT/etc/anvil"
cat >"$ROOT/etc/anvil/coordinator.yaml" <<'YAML'
listen: tcp://127.0.0.1:7443
heartbeat-grace: 1h
YAML
nsx u systemctl start anvil-coordinator # returns once READY=1 arrived (Type=notify)
[ "$(unit_prop u anvil-coordinator ActiveState)" = active ] || fail "coordinator not active"
wait_for 10 "coordinator STATUS" status_has u anvil-coordinator '^serving 0 hosts'
nsx u systemctl status anvil-coordinator --no-pager | matches 'Status: "serving 0 hosts' ||
  fail "systemctl status shows no STATUS line"
# Sandboxed as declared: its own user, no capabilities, / read-only.
pid=$(unit_prop u anvil-coordinator MainPID)
[ "$(nsx u stat -c %U "/proc/$pid")" = anvil ] || fail "coordinator does not run as user anvil"
nsx u grep '^CapEff:.0000000000000000' "/proc/$pid/status" >/dev/null || fail "coordinator has capabilities"

TOKEN=$(nsx u anvilctl token create --labels role=control-plane)
EXPIRED=$(nsx u anvilctl token create --labels role=control-plane --ttl 1s)
KEY=$(nsx u anvilctl info -o json | json 'd["publicKey"]')
sleep 1.1

# ---- the agent ----
mkdir -p "$ROOT/var/lib/anvil-host/u"
cat >"$ROOT/etc/anvil/agent.yaml" <<YAML
coordinator: tcp://127.0.0.1:7443
coordinator-key: "$KEY"
token: "$EXPIRED"
product-uuid: 00000000-0000-4000-8000-0000000000a1
hostname: u
host-root: /var/lib/anvil-host/u
kubeadm: /usr/lib/anvil-test/fakes/kubeadm
kubectl: /usr/lib/anvil-test/fakes/kubectl
heartbeat-interval: 1h
YAML
nsx u systemctl start anvil-agent
[ "$(unit_prop u anvil-agent ActiveState)" = active ] || fail "agent not active"
# An expired token: refused, said so in STATUS; a new token and a reload fix it.
wait_for 10 "agent STATUS 'enrollment refused'" \
  status_has u anvil-agent '^not enrolled yet: enrollment refused: TokenExpired'
nsx u journalctl -u anvil-agent -o cat MESSAGE_ID=6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c66 |
  matches "Enrollment refused: TokenExpired" || fail "no enroll-refused event in the journal"
sed -i "s/^token: .*/token: \"$TOKEN\"/" "$ROOT/etc/anvil/agent.yaml"
nsx u systemctl reload anvil-agent
wait_for 20 "host u enrolled" nsx u anvilctl get host u -o name
wait_for 10 "agent STATUS 'enrolled as u'" status_has u anvil-agent '^enrolled as u: idle$'
nsx u systemctl status anvil-agent --no-pager | matches 'Status: "enrolled as u: idle"' ||
  fail "systemctl status shows no STATUS line"
journal_has u anvil-agent "Watching 2 units over the system bus" ||
  fail "the agent does not watch its units over sd-bus"

# ---- health: reported when it changes ----
health() { nsx u anvilctl get host u -o json | json "$1"; }
wait_for 10 "host u healthy" eq True health 'd["status"].get("health",{}).get("healthy")'
[ "$(health 'd["status"]["health"]["units"]["kubelet.service"]["subState"]')" = running ] ||
  fail "kubelet.service not reported running"
t=$(date +%s%N)
nsx u systemctl stop kubelet.service
wait_for 10 "kubelet.service inactive on the coordinator" eq "(False, 'inactive')" health \
  'd["status"]["health"]["healthy"], d["status"]["health"]["units"]["kubelet.service"]["activeState"]'
echo "stopped kubelet.service reached the coordinator in $((($(date +%s%N) - t) / 1000000)) ms"
journal_has u anvil-agent "Reporting this host unhealthy: kubelet.service loaded/inactive/dead" ||
  fail "the agent did not log why the host is unhealthy"
nsx u systemctl start kubelet.service
wait_for 10 "host u healthy again" eq True health 'd["status"]["health"]["healthy"]'

# ---- kubelet restarted through sd-bus (health_restart_unit, via the test hook) ----
old=$(unit_prop u kubelet.service MainPID)
nsx u systemctl kill -s USR1 --kill-who=main anvil-agent
wait_for 10 "kubelet restart job done" \
  journal_has u anvil-agent 'restart of kubelet.service finished: done (0)'
new=$(unit_prop u kubelet.service MainPID)
[ "$new" != "$old" ] && [ "$new" != 0 ] || fail "kubelet.service was not restarted ($old -> $new)"

# ---- reload (SIGHUP): RELOADING=1 ... READY=1, new settings applied, bad files refused ----
echo "log-level: debug" >>"$ROOT/etc/anvil/agent.yaml"
nsx u systemctl reload anvil-agent
wait_for 10 "agent reloaded" journal_has u anvil-agent 'Reloaded /etc/anvil/agent.yaml: log level debug'
echo "log-level: loud" >>"$ROOT/etc/anvil/coordinator.yaml"
nsx u systemctl reload anvil-coordinator
wait_for 10 "bad coordinator.yaml refused" \
  journal_has u anvil-coordinator 'Not reloading: /etc/anvil/coordinator.yaml is invalid'
journal_has u anvil-coordinator "coordinator.yaml:3:12: log-level" ||
  fail "the reload error does not name file, line and field"
sed -i 's/^log-level: loud$/log-level: debug/' "$ROOT/etc/anvil/coordinator.yaml"
nsx u systemctl reload anvil-coordinator
wait_for 10 "coordinator reloaded" \
  journal_has u anvil-coordinator 'Reloaded /etc/anvil/coordinator.yaml: log level debug'
for u in anvil-coordinator anvil-agent; do
  wait_for 10 "$u active after reload" eq active unit_prop u $u ActiveState
  [ "$(unit_prop u $u NRestarts)" = 0 ] || fail "$u restarted on reload"
done

# ---- a machine: its step lines in the journal, with their fields ----
sed -e 's/replicas: 2/replicas: 0/' "$SRC/examples/cluster.yaml" >"$ROOT/root/cluster.yaml"
nsx u anvilctl apply -f /root/cluster.yaml >/dev/null
ready() { nsx u anvilctl get cluster demo -o json | json \
  '[c["status"] for c in d["status"].get("conditions",[]) if c["type"]=="Ready"]==["True"]'; }
wait_for 60 "cluster demo Ready" eq True ready
M=$(nsx u anvilctl get machines -A -o json | json 'd["items"][0]["metadata"]["name"]')
wait_for 20 "agent STATUS 'provisioned'" \
  status_has u anvil-agent "^enrolled as u, machine $M: provisioned, node u Ready$"
nsx u journalctl ANVIL_MACHINE="$M" -o json --no-pager >"$NS_WORK/machine.json"
/usr/bin/python3 - "$NS_WORK/machine.json" "$M" <<'PY' || fail "journal entries of machine $M"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
m = sys.argv[2]
assert lines, "no entries"
assert all(e["ANVIL_MACHINE"] == m for e in lines)
steps = {e.get("ANVIL_STEP") for e in lines}
for s in ("write-files", "pre-kubeadm-1", "kubeadm-init", "wait-node"):
    assert s in steps, (s, steps)
out = [e for e in lines if e.get("ANVIL_STREAM")]
assert any(e["ANVIL_STEP"] == "pre-kubeadm-1" and e["MESSAGE"] == "preparing u for kubeadm" for e in out), "echo output"
assert any(e["ANVIL_STEP"] == "kubeadm-init" and "[init] Using Kubernetes version" in e["MESSAGE"] for e in out), "kubeadm output"
for e in lines:
    if e.get("_SYSTEMD_UNIT") == "anvil-agent.service":
        assert e.get("CODE_FILE", "").endswith(".c") and int(e["CODE_LINE"]) > 0 and e.get("CODE_FUNC"), e
        assert e["ANVIL_HOST"] == "u" and e["SYSLOG_IDENTIFIER"] == "anvil-agent", e
ids = {e.get("MESSAGE_ID") for e in lines}
for i in ("6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c61", "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c62",
          "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c67"):
    assert i in ids, ("MESSAGE_ID", i)
print("journal: %d entries for %s, steps %s, %d output lines" % (len(lines), m, sorted(s for s in steps if s), len(out)))
PY
# The catalog explains the key events (journalctl -x).
nsx u journalctl -x --no-pager ANVIL_MACHINE="$M" ANVIL_STEP=kubeadm-init \
  MESSAGE_ID=6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c62 | matches "Subject: Step kubeadm-init of machine $M finished" ||
  fail "journalctl -x shows no catalog text"
# anvilctl describe names the command that shows this.
nsx u anvilctl describe machine "$M" | matches "journalctl -u anvil-agent ANVIL_MACHINE=$M" ||
  fail "describe machine does not print the journalctl command"

# ---- the watchdog: a blocked loop is killed (Result=watchdog) and restarted ----
restarts_state() { echo "$(unit_prop u "$1" NRestarts) $(unit_prop u "$1" ActiveState)"; }
for u in anvil-agent anvil-coordinator; do
  pid=$(unit_prop u $u MainPID)
  t=$(date +%s%N)
  nsx u systemctl kill -s USR2 --kill-who=main $u
  wait_for 20 "$u killed by the watchdog" \
    journal_has u $u "$u.service: Failed with result 'watchdog'"
  wait_for 20 "$u restarted" eq "1 active" restarts_state $u
  [ "$(unit_prop u $u MainPID)" != "$pid" ] || fail "$u has the same PID after the watchdog"
  echo "$u: blocked, killed by the watchdog, active again after $((($(date +%s%N) - t) / 1000000)) ms"
  nsx u journalctl -u $u -o cat --no-pager | grep -E "Watchdog timeout|Test hook: blocking|Killing process|Failed with result" |
    sed 's/^/  journal: /' || true
done
# Back to work after the restarts: the agent reconnects and reports health again.
nsx u systemctl stop containerd.service
wait_for 20 "containerd.service inactive on the coordinator" eq inactive health \
  'd["status"]["health"]["units"]["containerd.service"]["activeState"]'

# ---- a clean stop: STOPPING=1, exit 0 ----
for u in anvil-agent anvil-coordinator; do
  nsx u systemctl stop $u
  [ "$(unit_prop u $u Result)" = success ] || fail "$u did not stop cleanly"
done
echo "PASS in $((SECONDS - T0))s"
