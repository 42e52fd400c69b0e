#!/usr/bin/env bash
# A cluster under systemd: the coordinator in one container, two agents in two more, each
# container in its own network namespace (veth links, 10.200.x.x), all installed as
# packages would be and run by their units. examples/cluster.yaml (one control plane, one
# worker) reaches Ready with the fake kubeadm.
. "$(dirname "$0")/lib.sh"
nspawn_require
T0=$SECONDS
mkdir -p "$NS_WORK/fake-k8s"
for n in c a1 a2; do netns_add "anvt-$NS_ID-$n"; done
# Coordinator side .1, agent side .2 of a /30 per agent.
veth_link "anvt-$NS_ID-c" 10.200.1.1 "anvt-$NS_ID-a1" 10.200.1.2
veth_link "anvt-$NS_ID-c" 10.200.2.1 "anvt-$NS_ID-a2" 10.200.2.2
# The fake Kubernetes "API server" state is shared by the hosts of the cluster.
for n in c a1 a2; do
  nspawn_boot "$n" "anvt-$NS_ID-$n" --bind="$NS_WORK/fake-k8s:/var/lib/fake-k8s"
  nspawn_install "$n"
done
echo "3 containers booted and installed in $((SECONDS - T0))s"

mkdir -p "$(croot c)/etc/anvil"
printf 'listen: tcp://0.0.0.0:7443\nheartbeat-grace: 30s\n' >"$(croot c)/etc/anvil/coordinator.yaml"
nsx c systemctl enable --now anvil-coordinator
CP=$(nsx c anvilctl token create --labels role=control-plane)
W=$(nsx c anvilctl token create --labels role=worker)
KEY=$(nsx c anvilctl info -o json | json 'd["publicKey"]')

i=0
for n in a1 a2; do
  i=$((i + 1))
  fake_units "$n"
  token=$CP
  [ $n = a2 ] && token=$W
  mkdir -p "$(croot $n)/etc/anvil" "$(croot $n)/var/lib/anvil-host/$n"
  cat >"$(croot $n)/etc/anvil/agent.yaml" <<YAML
coordinator: tcp://10.200.$i.1:7443
coordinator-key: "$KEY"
token: "$token"
product-uuid: 00000000-0000-4000-8000-00000000000$i
host-root: /var/lib/anvil-host/$n
kubeadm: /usr/lib/anvil-test/fakes/kubeadm
kubectl: /usr/lib/anvil-test/fakes/kubectl
heartbeat-interval: 2s
YAML
  nsx "$n" systemctl enable --now anvil-agent
done
hosts() { nsx c anvilctl get hosts -o json | json 'len(d["items"])'; }
wait_for 30 "2 hosts enrolled" eq 2 hosts

sed -e 's/replicas: 2/replicas: 1/' "$SRC/examples/cluster.yaml" >"$(croot c)/root/cluster.yaml"
nsx c anvilctl apply -f /root/cluster.yaml >/dev/null
ready() { nsx c anvilctl get cluster demo -o json | json \
  '[c["status"] for c in d["status"].get("conditions",[]) if c["type"]=="Ready"]==["True"]'; }
running() { nsx c anvilctl get machines -A -o json | json \
  'sorted(m["status"].get("phase") for m in d["items"])'; }
wait_for 120 "cluster demo Ready" eq True ready
wait_for 60 "2 machines Running" eq "['Running', 'Running']" running

# Each host ran its own kubeadm (init on the control plane, join on the worker) under its
# unit, and says so in its STATUS and its journal.
nsx c anvilctl get hosts -o json >"$NS_WORK/hosts.json"
/usr/bin/python3 - "$NS_WORK/hosts.json" <<'PY' || fail "hosts"
import json, sys
hosts = {h["metadata"]["name"]: h for h in json.load(open(sys.argv[1]))["items"]}
assert sorted(hosts) == ["a1", "a2"], sorted(hosts)
for n, h in hosts.items():
    st = h["status"]
    assert st["phase"] == "Provisioned" and st["nodeReady"] is True, (n, st.get("phase"))
    assert st["health"]["healthy"] is True, (n, st.get("health"))
    assert st["facts"]["interfaces"], n
print("hosts OK:", {n: h["status"]["nodeName"] for n, h in hosts.items()})
PY
for n in a1 a2; do
  cmd=join
  [ $n = a1 ] && cmd=init
  status_has "$n" anvil-agent "^enrolled as $n, machine .*: provisioned, node $n Ready$" ||
    fail "STATUS of the agent on $n: $(nsx "$n" systemctl show -P StatusText anvil-agent)"
  nsx "$n" journalctl -u anvil-agent -o cat ANVIL_STEP=kubeadm-$cmd | matches '^\[preflight\]' ||
    fail "no kubeadm $cmd output in the journal of $n"
  [ "$(unit_prop "$n" anvil-agent NRestarts)" = 0 ] || fail "the agent on $n restarted"
done
[ "$(unit_prop c anvil-coordinator NRestarts)" = 0 ] || fail "the coordinator restarted"
# STATUS is refreshed every 2 s: give it one round.
wait_for 5 "coordinator STATUS" status_has c anvil-coordinator "^serving 2 hosts (2 connected" ||
  fail "coordinator STATUS: $(nsx c systemctl show -P StatusText anvil-coordinator)"
echo "PASS in $((SECONDS - T0))s"
