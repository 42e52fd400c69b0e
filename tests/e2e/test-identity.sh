#!/usr/bin/env bash
# Identity is the CURVE key, nothing else. Scripted peers (tests/e2e/peer.py: pyzmq, real
# sockets) try what a real agent never does, against a coordinator with one real agent (cp-1)
# whose machine is provisioned:
#  - an unknown key, and cp-1's public key without its secret key, get no connection at all;
#  - a token's enrollment key may only ENROLL: other messages are dropped and logged with its
#    fingerprint; it cannot enroll someone else's key (proof) or take over cp-1's Host;
#  - an enrolled peer gets only its own desired state, never cp-1's, and nothing it sends
#    changes cp-1's Host (status, facts, provider ID);
#  - cp-1's sealed bundle does not open with the other host's key.
. "$(dirname "$0")/common.sh"

anvil_start_coordinator
KEY=$(anvil_coordinator_key)
CP=$(anvilctl token create --labels role=control-plane)
anvil_start_agent cp-1 "$CP"
anvil_wait 30 "cp-1 enrolled" bash -c "$CTL get hosts -o name | grep -q cp-1"
sed 's/replicas: 2/replicas: 0/' "$SRC/examples/cluster.yaml" >"$WORK/one.yaml"
anvilctl apply -f "$WORK/one.yaml" >/dev/null
anvil_wait 60 "cluster demo Ready" anvil_cluster_ready demo

host_view() { # the parts of a Host a peer must not be able to touch
  anvilctl get host "$1" -o json | json '(d["metadata"]["generation"], d["spec"], {k: v for k, v in d["status"].items() if k not in ("lastHeartbeat", "health", "conditions", "connected")})'
}
before=$(host_view cp-1)
PEER_TOKEN=$(anvilctl token create --uses 5 --labels role=peer)

ANVIL_EP="tcp://127.0.0.1:$ANVIL_PORT" ANVIL_KEY="$KEY" PEER_TOKEN="$PEER_TOKEN" \
A_DIR="$WORK/agents/cp-1" WORK="$WORK" PYTHONPATH="$SRC/tests/e2e" ANVIL_BUILD_DIR="$BUILD" \
/usr/bin/python3 - <<'PY' || fail "scripted peers"
import os, time, zmq
import peer as P

ep, key, work, a_dir = os.environ["ANVIL_EP"], os.environ["ANVIL_KEY"], os.environ["WORK"], os.environ["A_DIR"]
a_pub = open(a_dir + "/state/agent.key.pub").read().strip()
a_uuid = open(a_dir + "/uuid").read().strip()

def facts(uuid, name):
    return {"productUUID": uuid, "hostname": name, "agentVersion": "peer"}

# 1. A key nobody enrolled and that is no token's: refused in the handshake.
pub, sec = zmq.curve_keypair()
p = P.Peer(ep, key, pub.decode(), sec.decode())
assert p.handshake() is False, "an unknown key got through the handshake"
assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in p.events, p.events
p.close()
print("unknown key: refused at the handshake")

# 2. cp-1's public key without its secret key: CURVE itself fails.
p = P.Peer(ep, key, a_pub, sec.decode())
assert p.handshake(5) is False, "cp-1's public key alone got through"
p.close()
print("cp-1's public key without its secret: no connection")

# 3. A token's enrollment key: in, but it may only ENROLL.
tpub, tsec = P.enroll_keypair(os.environ["PEER_TOKEN"])
t = P.Peer(ep, key, tpub, tsec)
assert t.handshake(), "the token's enrollment key was refused"
t.send("HELLO", {"generation": 0, "state": "Idle", "facts": facts(a_uuid, "cp-1")})
t.send("ACK", {"generation": 1})
t.send("STATUS", {"generation": 1, "state": "Failed", "message": "from the token key"})
got = t.recv_all(1.5)
assert got == [], f"the enrollment connection got answers to non-ENROLL messages: {got}"
# Enrolling cp-1's key needs cp-1's secret key (the proof is made with another one).
b_keyfile = work + "/peer-b.key"
b_pub, b_sec = P.new_keyfile(b_keyfile)
bad_proof = P.proof(b_keyfile, key, tpub)
t.send("ENROLL", {"agentKey": a_pub, "proof": bad_proof, "facts": facts("00000000-0000-4000-8000-0000000000bb", "peer-b")})
r = t.recv_type("REFUSED")
assert r and r["reason"] == "BadProof", r
# Its own key, but cp-1's product UUID: cp-1's Host is not taken over.
good_proof = P.proof(b_keyfile, key, tpub)
t.send("ENROLL", {"agentKey": b_pub, "proof": good_proof, "facts": facts(a_uuid, "cp-1")})
r = t.recv_type("REFUSED")
assert r and r["reason"] == "HostInUse", r
# Its own key and machine: enrolled.
t.send("ENROLL", {"agentKey": b_pub, "proof": good_proof, "facts": facts("00000000-0000-4000-8000-0000000000bb", "peer-b")})
r = t.recv_type("ENROLLED")
assert r and r["host"] == "peer-b", r
t.close()
print("token key: only ENROLL answered; BadProof, HostInUse, then enrolled as peer-b")

# 4. peer-b with its own key: its own desired state only; it cannot act on cp-1.
b = P.Peer(ep, key, b_pub, b_sec)
assert b.handshake(), "peer-b's enrolled key was refused"
b.send("HELLO", {"generation": 0, "state": "Idle", "facts": facts("00000000-0000-4000-8000-0000000000bb", "peer-b")})
msgs = b.recv_all(3.0)
desired = [m for t_, m in msgs if t_ == "DESIRED"]
assert desired, f"peer-b got no desired state: {msgs}"
for m in desired:
    assert m["action"] == "Idle" and "machine" not in m and "bootstrap" not in m, m
    b.send("ACK", {"generation": m["generation"]})
assert all("cp-1" not in repr(m) and "demo-control-plane" not in repr(m) for _, m in msgs), msgs
# Everything it can say about cp-1's machine: STATUS, REPORT, a lying ACK, facts with cp-1's UUID.
b.send("STATUS", {"generation": 1, "state": "Failed", "message": "claims to be cp-1",
                  "exitCode": 1})
b.send("REPORT", {"generation": desired[-1]["generation"], "providerID": "anvil://" + a_uuid,
                  "nodeName": "cp-1", "nodeReady": False})
b.send("ACK", {"generation": 1 << 40})
b.send("HEARTBEAT", {"seq": 1, "generation": 0, "facts": facts(a_uuid, "cp-1")})
b.send("HELLO", {"generation": 0, "state": "Idle", "facts": facts(a_uuid, "cp-1")})
later = b.recv_all(2.0)
assert all("cp-1" not in repr(m) and "bootstrap" not in m for _, m in later), later
b.close()
print("peer-b: got only its own (Idle) desired state; sent cp-1's identity everywhere")
PY

after=$(host_view cp-1)
assert_eq "$after" "$before" "cp-1's Host after the peers"
anvilctl get host peer-b -o json >"$WORK/peer-b.json"
/usr/bin/python3 - "$WORK/peer-b.json" <<'PY' || fail "peer-b's Host"
import json, sys
h = json.load(open(sys.argv[1]))
st = h["status"]
assert st["facts"]["productUUID"] == "00000000-0000-4000-8000-0000000000bb", st["facts"]
assert "providerID" not in st and "nodeName" not in st, st
assert st.get("observedGeneration", 0) <= h["metadata"]["generation"], st
assert h["metadata"]["labels"] == {"role": "peer"}, h["metadata"]["labels"]
print("peer-b's Host kept its own UUID, no provider ID of cp-1, labels from its token")
PY
grep -q "Refused a connection from 127.0.0.1 with key SHA256:[0-9a-f]*: neither an enrolled host nor an enrollment token" "$WORK/coordinator.log" ||
  fail "the unknown key's refusal is not logged with its fingerprint"
grep -q "Dropped HELLO from 127.0.0.1 (key SHA256:[0-9a-f]*, host none): an enrollment connection may only send ENROLL" "$WORK/coordinator.log" ||
  fail "the token key's HELLO is not logged as dropped"
grep -q "reported facts of product UUID $(cat "$WORK/agents/cp-1/uuid"), but it enrolled as 00000000-0000-4000-8000-0000000000bb" "$WORK/coordinator.log" ||
  fail "peer-b's facts with cp-1's UUID were not refused"

# 5. cp-1's bootstrap bundle, sealed to cp-1's key: opens with cp-1's key only.
/usr/bin/python3 -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["desired"]["bootstrap"])' \
  "$WORK/agents/cp-1/state/state.yaml" >"$WORK/box"
"$BUILD/tests/anvil-testtool" seal-open "$WORK/agents/cp-1/state/agent.key" <"$WORK/box" \
  >"$WORK/bundle.yaml" || fail "cp-1 cannot open its own bundle"
grep -q "kind: BootstrapBundle" "$WORK/bundle.yaml" || fail "cp-1's bundle is not a bundle"
if "$BUILD/tests/anvil-testtool" seal-open "$WORK/peer-b.key" <"$WORK/box" >/dev/null 2>&1; then
  fail "cp-1's bundle opened with peer-b's key"
fi
echo "sealed bundle: opens with cp-1's key, not with peer-b's"

# kubeadm init printed its bootstrap token (the join command): redacted before the journal;
# Secrets and bootstrap configuration are redacted in get -o yaml.
grep -q "Using token: [a-z0-9]\{6\}\.<redacted>" "$WORK/agents/cp-1/agent.log" ||
  fail "kubeadm's token line is not in the agent log, redacted"
if grep -Eq "[a-z0-9]{6}\.[a-z0-9]{16}([^a-z0-9]|$)" "$WORK/agents/cp-1/agent.log" "$WORK/coordinator.log"; then
  fail "a bootstrap token reached a log: $(grep -Eo "[a-z0-9]{6}\.[a-z0-9]{16}" "$WORK/agents/cp-1/agent.log" | head -3)"
fi
cat >"$WORK/kc.yaml" <<'YAML'
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfig
metadata:
  name: secret-check
spec:
  joinConfiguration:
    discovery:
      bootstrapToken:
        apiServerEndpoint: 10.0.0.1:6443
        token: abcdef.0123456789abcdef
        unsafeSkipCAVerification: true
---
apiVersion: v1
kind: Secret
metadata:
  name: secret-check
stringData:
  password: s3cr3t-value-xyz
data:
  key: czNjcjN0LWRhdGEteHl6
YAML
anvilctl apply -f "$WORK/kc.yaml" >/dev/null || fail "apply a KubeadmConfig with a token"
anvilctl describe kubeadmconfig secret-check >"$WORK/secrets.yaml"
grep -q "token: <redacted>" "$WORK/secrets.yaml" || fail "describe does not redact the token"
anvilctl get secrets -A -o yaml >>"$WORK/secrets.yaml"
anvilctl get kubeadmconfigs -A -o yaml >>"$WORK/secrets.yaml"
anvilctl get hosts -o yaml >>"$WORK/secrets.yaml"
grep -q "<redacted>" "$WORK/secrets.yaml" || fail "get -o yaml redacts nothing"
anvilctl describe secret secret-check >>"$WORK/secrets.yaml"
if grep -rqE "s3cr3t-value-xyz|czNjcjN0LWRhdGEteHl6|s3cr3t-data-xyz" "$WORK/secrets.yaml" \
    "$WORK/coordinator.log" "$WORK/coordinator/"store.db*; then
  fail "a Secret's data is in get/describe output, the log or the store in clear"
fi
if grep -Eq "BEGIN (RSA |EC )?PRIVATE KEY|[a-z0-9]{6}\.[a-z0-9]{16}([^a-z0-9]|$)|LS0tLS1CRUdJTi" "$WORK/secrets.yaml"; then
  fail "get -o yaml shows a secret"
fi
echo "no bootstrap token or key in logs or in get -o yaml"
echo PASS
