#!/usr/bin/env bash
# Bootstrap done properly: the admin kubeconfig verifies against the cluster CA; a failing
# preKubeadmCommand surfaces in describe with the command's output; a malformed
# KubeadmConfigTemplate is refused at apply with file:line:field.
. "$(dirname "$0")/common.sh"
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent cp-1 "$CP"
anvil_start_agent worker-1 "$W"
anvil_start_agent worker-2 "$W"

# A worker template whose pre-kubeadm command fails, loudly.
sed -e 's/^      joinConfiguration:/      preKubeadmCommands:\n        - echo "checking disks"; echo "no disk matches \/dev\/nvme9" >\&2; exit 3\n      joinConfiguration:/' \
  "$SRC/examples/cluster.yaml" >"$WORK/cluster.yaml"
grep -q nvme9 "$WORK/cluster.yaml" || fail "test setup: sed did not insert the command"
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 120 "cluster Ready" anvil_cluster_ready demo

# kubeconfig: signed by the cluster CA, for kubernetes-admin in system:masters.
anvilctl get kubeconfig demo >"$WORK/kubeconfig"
/usr/bin/python3 - "$WORK" <<'PY' || fail "kubeconfig contents"
import base64, sys, yaml
w = sys.argv[1]
k = yaml.safe_load(open(w + "/kubeconfig"))
assert k["clusters"][0]["cluster"]["server"] == "https://10.200.0.10:6443", k["clusters"][0]
open(w + "/ca.crt", "wb").write(base64.b64decode(k["clusters"][0]["cluster"]["certificate-authority-data"]))
open(w + "/admin.crt", "wb").write(base64.b64decode(k["users"][0]["user"]["client-certificate-data"]))
PY
openssl verify -CAfile "$WORK/ca.crt" "$WORK/admin.crt" || fail "admin certificate does not verify against the CA"
subj=$(openssl x509 -in "$WORK/admin.crt" -noout -subject)
grep -q "O = system:masters" <<<"$subj" && grep -q "CN = kubernetes-admin" <<<"$subj" || fail "subject: $subj"
# The CA in the kubeconfig is the one kubeadm used on the control plane host.
cmp -s "$WORK/ca.crt" "$WORK/agents/cp-1/root/etc/kubernetes/pki/ca.crt" || fail "kubeconfig CA differs from the host's"
echo "ok: kubeconfig verifies ($subj)"

# The failing worker: Machine Failed, describe shows step, exit code and output.
anvil_wait 60 "a failed worker machine" bash -c "$CTL get machines -o json | grep -q '\"phase\": \"Failed\"'"
m=$(anvilctl get machines -o json | json '[x["metadata"]["name"] for x in d["items"] if x["status"].get("phase")=="Failed"][0]')
out=$(anvilctl describe cluster demo)
grep -q "last error: step pre-kubeadm-1 exited 3" <<<"$out" || fail "describe lacks the failed step: $out"
grep -q "no disk matches /dev/nvme9" <<<"$out" || fail "describe lacks the command output: $out"
grep -q "journalctl -u anvil-agent ANVIL_MACHINE=$m" <<<"$out" || fail "describe lacks the journalctl hint"
anvilctl get machine "$m" -o json | json 'd["status"]["failureReason"]' | grep -q BootstrapFailed || fail "failureReason"
# describe machine (and its host) says the same: step, exit code, last output lines, journalctl.
for what in "machine $m" "host $(anvilctl get machine "$m" -o json | json 'd["status"]["nodeRef"]["name"]' 2>/dev/null ||
    anvilctl get am "$m" -o json | json 'd["status"]["hostRef"]["name"]')"; do
  out=$(anvilctl describe $what)
  grep -q "^Failed: *step pre-kubeadm-1 on host .* exited 3" <<<"$out" || fail "describe $what lacks the failed step: $out"
  grep -q "^    | .*no disk matches /dev/nvme9" <<<"$out" || fail "describe $what lacks the output lines: $out"
  grep -q "journalctl -u anvil-agent ANVIL_MACHINE=$m ANVIL_STEP=pre-kubeadm-1" <<<"$out" ||
    fail "describe $what lacks the journalctl line: $out"
done
echo "ok: failed pre-kubeadm command surfaced"

# A malformed KubeadmConfigTemplate is refused with file:line:field.
cat >"$WORK/bad-kct.yaml" <<'YAML'
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata:
  name: broken
spec:
  template:
    spec:
      files:
        - path: etc/relative
          content: x
          permissions: "999"
      joinConfiguration:
        nodeRegistration:
          taints:
            - key: a
              effect: Sometimes
YAML
set +e; out=$(anvilctl apply -f "$WORK/bad-kct.yaml" 2>&1); rc=$?; set -e
[ $rc -ne 0 ] || fail "malformed KubeadmConfigTemplate accepted"
grep -q "bad-kct.yaml:9:17: KubeadmConfigTemplate/broken: spec.template.spec.files\[0\].path: must be an absolute path" <<<"$out" || fail "$out"
grep -q "bad-kct.yaml:11:24: .*files\[0\].permissions: must be an octal mode" <<<"$out" || fail "$out"
grep -q "bad-kct.yaml:16:23: .*taints\[0\].effect: unsupported value \"Sometimes\"" <<<"$out" || fail "$out"
echo PASS
