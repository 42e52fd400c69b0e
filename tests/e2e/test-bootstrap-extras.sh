#!/usr/bin/env bash
# A KubeadmConfig's users, ntp and verbosity applied on the hosts, as cloud-init would apply
# them for Cluster API: each agent's fake host root (seeded with the account files a real
# host has; useradd --prefix edits them) ends up with the users, groups, locked or unlocked
# password hashes, expiry, sudoers.d rule (content, 0440) and authorized_keys (content, 0600,
# owned by the user), the timesyncd drop-in (only where ntp is enabled), and kubeadm ran with
# --v=N. One worker already has the user (adjusted, not re-created); one crashes right after
# its users step and runs it again on restart; a sudo rule visudo refuses fails its machine
# at step "users" with visudo's message and creates nothing. Password hashes never reach a
# log. Bad input at apply is table-tested in bad-manifests/users-ntp-disks.yaml.
. "$(dirname "$0")/common.sh"

# The account files useradd --prefix needs, as on a minimal Debian host.
seed_root() {
  local e=$WORK/agents/$1/root/etc
  mkdir -p "$e"
  printf 'root:x:0:0:root:/root:/bin/bash\n' >"$e/passwd"
  printf 'root:x:0:\nadm:x:4:\n' >"$e/group"
  printf 'root:*:19000:0:99999:7:::\n' >"$e/shadow"
  printf 'root:*::\nadm:*::\n' >"$e/gshadow"
  chmod 640 "$e/shadow" "$e/gshadow"
}

HASH_OPS=$(openssl passwd -6 -salt opsopsop 'ops secret')
HASH_AUDIT=$(openssl passwd -6 -salt auditaud 'audit secret')
KEY1="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsKeyOne ops@laptop"
KEY2="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsKeyTwo ops@ci"

anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
BAD=$(anvilctl token create --labels role=bad)
# (Each root is seeded just before its agent starts: agents are numbered by directory.)
seed_root cp-1
anvil_start_agent cp-1 "$CP"
# w-1 has an "ops" of its own already (another GECOS and shell, an unlocked password).
seed_root w-1
printf 'ops:x:1500:1500:Old Ops:/home/ops:/bin/sh\n' >>"$WORK/agents/w-1/root/etc/passwd"
printf 'ops:x:1500:\n' >>"$WORK/agents/w-1/root/etc/group"
printf 'ops:!::\n' >>"$WORK/agents/w-1/root/etc/gshadow"
printf 'ops:%s:19000:0:99999:7:::\n' "$(openssl passwd -6 -salt oldoldol old)" >>"$WORK/agents/w-1/root/etc/shadow"
anvil_start_agent w-1 "$W"
seed_root w-2
ANVIL_TEST_CRASH=users:after ASAN_OPTIONS="${ASAN_OPTIONS:-}:handle_abort=0" anvil_start_agent w-2 "$W"
seed_root w-bad
anvil_start_agent w-bad "$BAD"

cat >"$WORK/cluster.yaml" <<YAML
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: demo}
spec:
  clusterNetwork:
    pods: {cidrBlocks: ["192.168.0.0/16"]}
    services: {cidrBlocks: ["10.96.0.0/12"]}
  controlPlaneRef: {apiVersion: controlplane.cluster.x-k8s.io/v1beta1, kind: KubeadmControlPlane, name: demo-control-plane}
  infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilCluster, name: demo}
---
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilCluster
metadata: {name: demo}
spec:
  controlPlaneEndpoint: {host: 10.200.0.10, port: 6443}
---
apiVersion: controlplane.cluster.x-k8s.io/v1beta1
kind: KubeadmControlPlane
metadata: {name: demo-control-plane}
spec:
  replicas: 1
  version: v1.30.2
  machineTemplate:
    infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilMachineTemplate, name: cp}
  kubeadmConfigSpec:
    verbosity: 3
    ntp: {enabled: false, servers: [ignored.example.org]}
    users:
      - name: admin-cp
        sudo: ALL=(ALL) ALL
        sshAuthorizedKeys: ["$KEY1"]
---
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata: {name: cp}
spec: {template: {spec: {hostSelector: {matchLabels: {role: control-plane}}}}}
---
apiVersion: v1
kind: Secret
metadata: {name: ops-password}
stringData:
  hash: |
    $HASH_OPS
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineDeployment
metadata: {name: demo-md-0}
spec:
  clusterName: demo
  replicas: 2
  selector: {matchLabels: {}}
  template:
    spec:
      clusterName: demo
      version: v1.30.2
      bootstrap: {configRef: {apiVersion: bootstrap.cluster.x-k8s.io/v1beta1, kind: KubeadmConfigTemplate, name: workers}}
      infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilMachineTemplate, name: workers}
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata: {name: workers}
spec:
  template:
    spec:
      verbosity: 5
      ntp:
        servers: [ntp1.example.org, 10.0.0.1]
      users:
        - name: ops
          gecos: Operations
          groups: "adm, kube-ops"
          shell: /bin/bash
          passwdFrom: {secret: {name: ops-password, key: hash}}
          sudo: ALL=(ALL) NOPASSWD:ALL
          sshAuthorizedKeys: ["$KEY1", "$KEY2"]
        - name: audit
          passwd: "$HASH_AUDIT"
          lockPassword: false
          primaryGroup: auditors
          inactive: true
      joinConfiguration:
        nodeRegistration: {criSocket: unix:///var/run/containerd/containerd.sock}
---
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata: {name: workers}
spec: {template: {spec: {hostSelector: {matchLabels: {role: worker}}}}}
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineDeployment
metadata: {name: demo-bad}
spec:
  clusterName: demo
  replicas: 1
  selector: {matchLabels: {}}
  template:
    spec:
      clusterName: demo
      version: v1.30.2
      bootstrap: {configRef: {apiVersion: bootstrap.cluster.x-k8s.io/v1beta1, kind: KubeadmConfigTemplate, name: bad-sudo}}
      infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilMachineTemplate, name: bad}
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata: {name: bad-sudo}
spec:
  template:
    spec:
      users:
        - name: careless
          sudo: ALL=(ALL NOPASSWD ALL
---
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata: {name: bad}
spec: {template: {spec: {hostSelector: {matchLabels: {role: bad}}}}}
YAML
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null

# w-2 dies right after its users step, before recording it: it runs the step again.
anvil_wait 90 "w-2 crashing after its users step" \
  grep -q "Test hook: crashing after step users" "$WORK/agents/w-2/agent.log"
anvil_restart_agent w-2
anvil_wait 120 "cluster Ready" anvil_cluster_ready demo
running() { # running MD COUNT
  anvilctl get machines -l "cluster.x-k8s.io/deployment-name=$1" -o json |
    json "sum(1 for m in d['items'] if m.get('status',{}).get('phase')=='Running')" | grep -qx "$2"
}
anvil_wait 120 "both workers Running" running demo-md-0 2
grep -q "Step .* users resumed after a restart" "$WORK/agents/w-2/agent.log" || fail "w-2 did not resume its users step"
echo "ok: cluster Ready; w-2 resumed its users step"

# ---- what each worker's root holds ----
field() { # field FILE NAME N: the Nth (1-based) ':' field of NAME's line
  awk -F: -v n="$2" -v f="$3" '$1 == n { print $f }' "$1"
}
for w in w-1 w-2; do
  R=$WORK/agents/$w/root
  [ "$(grep -c '^ops:' "$R/etc/passwd")" = 1 ] || fail "$w: ops is not in /etc/passwd exactly once"
  uid=$(field "$R/etc/passwd" ops 3); gid=$(field "$R/etc/passwd" ops 4)
  home=$(field "$R/etc/passwd" ops 6)
  # supplementary groups: adm existed, kube-ops was created
  grep -Eq '^adm:x:4:(.*,)?ops(,|$)' "$R/etc/group" || fail "$w: ops not in adm: $(grep ^adm: "$R/etc/group")"
  grep -Eq '^kube-ops:x:[0-9]+:(.*,)?ops(,|$)' "$R/etc/group" || fail "$w: kube-ops missing or without ops"
  # password from the Secret, locked ("!" before it); audit's unlocked and expired
  assert_eq "$(field "$R/etc/shadow" ops 2)" "!$HASH_OPS" "$w: ops's shadow password"
  assert_eq "$(field "$R/etc/shadow" audit 2)" "$HASH_AUDIT" "$w: audit's shadow password"
  assert_eq "$(field "$R/etc/shadow" audit 8)" 1 "$w: audit's expiry"
  agid=$(awk -F: '$1 == "auditors" { print $3 }' "$R/etc/group")
  [ -n "$agid" ] || fail "$w: group auditors was not created"
  assert_eq "$(field "$R/etc/passwd" audit 4)" "$agid" "$w: audit's primary group"
  # sudo: a rule for ops only, 0440, root's; no temporary files left
  grep -qx 'ops ALL=(ALL) NOPASSWD:ALL' "$R/etc/sudoers.d/ops" || fail "$w: sudoers.d/ops: $(cat "$R/etc/sudoers.d/ops")"
  assert_eq "$(stat -c %a:%u "$R/etc/sudoers.d/ops")" 440:0 "$w: sudoers.d/ops mode and owner"
  [ ! -e "$R/etc/sudoers.d/audit" ] || fail "$w: a sudo rule for audit"
  [ -z "$(ls -A "$R/etc/sudoers.d" | grep -v '^ops$')" ] || fail "$w: sudoers.d holds $(ls -A "$R/etc/sudoers.d")"
  # keys: exactly the two, once each; 0700/0600, the user's
  printf '%s\n%s\n' "$KEY1" "$KEY2" | cmp -s - "$R$home/.ssh/authorized_keys" ||
    fail "$w: authorized_keys: $(cat "$R$home/.ssh/authorized_keys")"
  assert_eq "$(stat -c %a:%u:%g "$R$home/.ssh")" "700:$uid:$gid" "$w: ~ops/.ssh"
  assert_eq "$(stat -c %a:%u:%g "$R$home/.ssh/authorized_keys")" "600:$uid:$gid" "$w: authorized_keys"
  # ntp: the drop-in, not restarted (the host root is not /)
  grep -qx 'NTP=ntp1.example.org 10.0.0.1' "$R/etc/systemd/timesyncd.conf.d/anvil.conf" ||
    fail "$w: timesyncd drop-in: $(cat "$R/etc/systemd/timesyncd.conf.d/anvil.conf" 2>&1)"
  grep -q "systemd-timesyncd.service is not restarted" "$WORK/agents/$w/agent.log" || fail "$w: no word on timesyncd"
  # kubeadm join --v=5 on this root
  /usr/bin/python3 - "$FAKE_K8S_STATE/invocations.jsonl" "$R" <<'PY' || fail "$w: kubeadm join without --v=5"
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
ok = [c for c in calls if c["argv"][:1] == ["join"] and "--v=5" in c["argv"] and sys.argv[2] in c["argv"]]
sys.exit(0 if ok and ok[-1]["exit"] == 0 else 1)
PY
  # the plan: the version check, then cloud-init's module order
  steps=$(/usr/bin/python3 -c 'import sys, yaml; print(" ".join(s["name"] for s in yaml.safe_load(open(sys.argv[1]))["plan"]["steps"]))' \
          "$WORK/agents/$w/state/state.yaml")
  assert_eq "$steps" "check-version write-files users ntp kubeadm-join wait-node" "$w: plan steps"
done
# w-1's own ops was adjusted, not replaced: its GECOS, shell and uid stay.
assert_eq "$(field "$WORK/agents/w-1/root/etc/passwd" ops 5)" "Old Ops" "w-1: ops's GECOS"
assert_eq "$(field "$WORK/agents/w-1/root/etc/passwd" ops 7)" /bin/sh "w-1: ops's shell"
assert_eq "$(field "$WORK/agents/w-1/root/etc/passwd" ops 3)" 1500 "w-1: ops's uid"
grep -q "User ops exists: adjusting it" "$WORK/agents/w-1/agent.log" || fail "w-1: no 'adjusting' log"
# w-2 created its ops as asked.
assert_eq "$(field "$WORK/agents/w-2/root/etc/passwd" ops 5)" Operations "w-2: ops's GECOS"
assert_eq "$(field "$WORK/agents/w-2/root/etc/passwd" ops 7)" /bin/bash "w-2: ops's shell"
echo "ok: workers: users, groups, passwords, sudo, keys, ntp, --v=5"

# The control plane: its own user, kubeadm init --v=3, ntp disabled (no drop-in, no step).
R=$WORK/agents/cp-1/root
grep -q '^admin-cp:' "$R/etc/passwd" || fail "cp-1: no admin-cp"
grep -qx 'admin-cp ALL=(ALL) ALL' "$R/etc/sudoers.d/admin-cp" || fail "cp-1: sudo rule"
[ ! -e "$R/etc/systemd/timesyncd.conf.d/anvil.conf" ] || fail "cp-1: ntp.enabled false but a drop-in"
assert_eq "$(fake_calls init --v=3)" 1 "kubeadm init --v=3"
echo "ok: control plane: user, kubeadm init --v=3, no ntp"

# A rule visudo refuses: the machine fails at users with visudo's words; nothing created.
anvil_wait 60 "the bad machine Failed" bash -c \
  "$CTL get machines -l cluster.x-k8s.io/deployment-name=demo-bad -o json | grep -q '\"phase\": \"Failed\"'"
out=$(anvilctl describe cluster demo)
grep -q "last error: step users exited 1: /.*/visudo -cf .*anvil-careless.new exited with status 1" <<<"$out" || fail "describe: $out"
grep -q "syntax error" <<<"$out" || fail "describe lacks visudo's output: $out"
! grep -q '^careless:' "$WORK/agents/w-bad/root/etc/passwd" || fail "w-bad: careless was created"
[ -z "$(ls -A "$WORK/agents/w-bad/root/etc/sudoers.d")" ] || fail "w-bad: sudoers.d not empty"
echo "ok: a bad sudo rule fails the users step and changes nothing"

# The hashes are in no log, and get prints them redacted.
for h in "$HASH_OPS" "$HASH_AUDIT"; do
  ! grep -rqF -- "${h#\$6\$}" "$WORK/coordinator.log" "$WORK"/agents/*/agent.log || fail "a password hash is in a log"
done
anvilctl get kct workers -o yaml | grep -q 'passwd: <redacted>' || fail "get kct does not redact passwd"
! anvilctl get kct workers -o yaml | grep -qF -- "${HASH_AUDIT#\$6\$}" || fail "get kct shows the hash"
echo PASS
