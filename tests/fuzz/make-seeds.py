#!/usr/bin/python3
"""Writes the msgpack seeds of the wire and mp corpora (tests/fuzz/corpus/{wire,mp}/seed-*).

One valid message of every type on its channel (the wire target's first byte picks the
channel: 0 agent->coordinator, 1 coordinator->agent, 2 admin request, 3 admin response), and a
few near misses. Run it again after changing a message schema; files found by fuzzing are
named otherwise and kept.
"""
import os
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"  # any valid Z85 key (40 characters)
FACTS = {
    "productUUID": "4c4c4544-0042-3510-8051-b7c04f4e4d32",
    "hostname": "rack1-07",
    "serial": "7B5QRK2",
    "vendor": "Dell Inc.",
    "model": "PowerEdge R640",
    "cpu": {"model": "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", "count": 64},
    "memoryBytes": 412316860416,
    "interfaces": [{"name": "eno1", "mac": "24:6e:96:00:00:01",
                    "addresses": ["10.0.0.7", "fe80::266e:96ff:fe00:1"]}],
    "disks": [{"name": "sda", "sizeBytes": 480103981056, "rotational": False},
              {"name": "sdb", "sizeBytes": 4000787030016, "rotational": True}],
    "kernel": "6.1.0-18-amd64",
    "os": "Debian GNU/Linux 12 (bookworm)",
    "agentVersion": "0.1.0",
}
STEP = {"name": "kubeadm-join", "index": 3, "total": 5}
MESSAGES = {
    0: [
        ("ENROLL", {"agentKey": KEY, "proof": "A" * 100, "facts": FACTS}),
        ("HELLO", {"generation": 3, "state": "Provisioning", "step": STEP, "facts": FACTS}),
        ("ACK", {"generation": 3, "state": "Provisioning", "action": "Provision"}),
        ("STATUS", {"generation": 3, "state": "Failed", "step": STEP, "message": "exit 1",
                    "exitCode": 1, "output": "error execution phase preflight\n"}),
        ("REPORT", {"generation": 3, "providerID": "anvil://4c4c4544", "nodeName": "rack1-07",
                    "nodeReady": True, "kubeletVersion": "v1.30.2"}),
        ("HEARTBEAT", {"seq": 12, "generation": 3, "health": {
            "healthy": True, "load1": 0.25,
            "units": {"kubelet.service": {"activeState": "active", "subState": "running",
                                          "result": "success", "restarts": 0}}},
            "facts": FACTS}),
        ("RESULT", {"id": "c1", "exitCode": 127, "output": "not supported"}),
        ("ENROLL", {"agentKey": KEY, "proof": "A" * 100, "facts": FACTS, "needsReset": True}),
        ("BYE", {"reason": "Stopping"}),
    ],
    1: [
        ("ENROLLED", {"host": "rack1-07"}),
        ("REFUSED", {"reason": "TokenExpired", "message": "enrollment token abcdef has expired"}),
        ("DESIRED", {"generation": 4, "action": "Provision",
                     "machine": {"name": "demo-md-0-x", "namespace": "default", "cluster": "demo",
                                 "role": "worker", "version": "v1.30.2",
                                 "providerID": "anvil://4c4c4544"},
                     "bootstrap": "c2VhbGVk" * 8}),
        ("DESIRED", {"generation": 5, "action": "Deprovision"}),
        ("COMMAND", {"id": "c1", "command": "reboot", "args": {"delay": "5s"}}),
        ("REVOKED", {"reason": "revoked by the operator"}),
    ],
    2: [
        ("API_REQUEST", {"op": "apply", "file": "cluster.yaml",
                         "content": "apiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\n"}),
        ("API_REQUEST", {"op": "get", "kind": "hosts", "selector": "role in (worker),!gpu"}),
        ("API_REQUEST", {"op": "token-create", "ttlSeconds": 86400, "uses": 3,
                         "labels": {"role": "worker"}, "description": "rack 1"}),
        ("API_REQUEST", {"op": "label", "kind": "host", "name": "rack1-07",
                         "labels": {"zone": "a"}, "overwrite": True, "remove": ["old"]}),
    ],
    3: [
        ("API_RESPONSE", {"ok": True, "items": [{"kind": "Host", "metadata": {"name": "h"}}],
                          "revision": 42, "more": False}),
        ("API_RESPONSE", {"ok": False, "code": "Invalid", "message": "1 problem",
                          "problems": ["f.yaml:3:5: spec.replicas: must be >= 0"]}),
    ],
}
NEAR_MISSES = [
    (0, [2, "ACK", {"generation": 1}]),                      # another protocol version
    (0, [1, "DESIRED", {"generation": 1, "action": "Idle"}]),  # wrong direction
    (0, [1, "ACK", {"generation": 1, "host": "other"}]),     # a field no schema has
    (1, [1, "DESIRED", {"generation": 0, "action": "Idle"}]),  # out of range
    (2, [1, "API_REQUEST", {"op": "rm -rf"}]),               # not an op
]


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    wire = os.path.join(HERE, "corpus", "wire")
    mp = os.path.join(HERE, "corpus", "mp")
    n = 0
    for ch, msgs in MESSAGES.items():
        for t, body in msgs:
            env = msgpack.packb([1, t, body], use_bin_type=True)
            write(wire, f"seed-{ch}-{t.lower()}-{n}", bytes([ch]) + env)
            write(mp, f"seed-{t.lower()}-{n}", env)
            n += 1
    for ch, env in NEAR_MISSES:
        write(wire, f"seed-{ch}-miss-{n}", bytes([ch]) + msgpack.packb(env, use_bin_type=True))
        n += 1
    write(mp, "seed-scalars", msgpack.packb([None, True, -1, 2**63 - 1, -2**63, 1.5, "x" * 40,
                                              {"a": [{}, []]}], use_bin_type=True))
    print(f"wrote {n} wire seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
