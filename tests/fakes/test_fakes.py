#!/usr/bin/python3
"""Tests of the kubeadm/kubectl fakes, driven as subprocesses exactly as the agent runs them
(clean environment, --rootfs per fake host, shared FAKE_K8S_STATE).

Run: /usr/bin/python3 tests/fakes/test_fakes.py
"""
import hashlib, json, os, shutil, subprocess, tempfile, threading, unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
KUBEADM, KUBECTL, FAKEK8S = (os.path.join(HERE, n) for n in ("kubeadm", "kubectl", "fakek8s.py"))
EP = "cp.prod.example:6443"
TOKEN = "abcdef.0123456789abcdef"

INIT_CFG = """\
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
bootstrapTokens:
- token: {token}
  ttl: 2h
nodeRegistration:
  name: {name}
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
    provider-id: anvil://{uuid}
    node-labels: anvil.dev/pool=cp
localAPIEndpoint:
  advertiseAddress: {ip}
  bindPort: 6443
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: {version}
controlPlaneEndpoint: {ep}
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
"""

JOIN_CFG = """\
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
discovery:
  bootstrapToken:
    token: {token}
    apiServerEndpoint: {ep}
    caCertHashes: [{hashes}]
nodeRegistration:
  name: {name}
  kubeletExtraArgs:
    provider-id: anvil://{uuid}
{extra}"""


def spki_hash(cert_path):
    pub = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", cert_path], capture_output=True, check=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub.stdout, capture_output=True,
                         check=True)
    return "sha256:" + hashlib.sha256(der.stdout).hexdigest()


class FakeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fakek8s-test-")
        self.state = os.path.join(self.tmp, "state")
        self.env = {"PATH": "/usr/bin:/bin", "FAKE_K8S_STATE": self.state, "HOME": self.tmp}

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers
    def run_tool(self, tool, *args, env=None, stdin=None):
        e = dict(self.env, **(env or {}))
        return subprocess.run([tool] + list(args), env=e, input=stdin or "", capture_output=True, text=True,
                              timeout=60)

    def kubeadm(self, *args, **kw):
        return self.run_tool(KUBEADM, *args, **kw)

    def kubectl(self, *args, **kw):
        return self.run_tool(KUBECTL, *args, **kw)

    def ok(self, r):
        self.assertEqual(r.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr))
        return r

    def host(self, name):
        root = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(root, "run/kubeadm"), exist_ok=True)
        return root

    def write(self, root, rel, text):
        with open(os.path.join(root, rel.lstrip("/")), "w") as f:
            f.write(text)

    def cluster(self, ep=EP):
        with open(os.path.join(self.state, "clusters", ep.replace(":", "_") + ".json")) as f:
            return json.load(f)

    def init(self, name="cp-0", ip="10.200.0.10", version="v1.30.2", extra_args=(), cfg=None, env=None):
        root = self.host(name)
        self.write(root, "/run/kubeadm/kubeadm.yaml", cfg or INIT_CFG.format(
            token=TOKEN, name=name, uuid="uuid-" + name, ip=ip, version=version, ep=EP))
        r = self.kubeadm("init", "--config", "/run/kubeadm/kubeadm.yaml", "--rootfs", root, *extra_args, env=env)
        return root, r

    def join(self, name, hashes=None, token=TOKEN, extra="", env=None, args=()):
        root = self.host(name)
        if hashes is None:
            hashes = [self.cluster()["caHash"]]
        self.write(root, "/run/kubeadm/kubeadm-join-config.yaml", JOIN_CFG.format(
            token=token, ep=EP, hashes=", ".join('"%s"' % h for h in hashes), name=name, uuid="uuid-" + name,
            extra=extra))
        r = self.kubeadm("join", "--config", "/run/kubeadm/kubeadm-join-config.yaml", "--rootfs", root, *args, env=env)
        return root, r

    def admin(self, root):
        return ["--kubeconfig", os.path.join(root, "etc/kubernetes/admin.conf")]

    def invocations(self):
        with open(os.path.join(self.state, "invocations.jsonl")) as f:
            return [json.loads(line) for line in f]


class InitTest(FakeTest):
    def test_init_writes_files_and_registers_cluster(self):
        root, r = self.init()
        self.ok(r)
        self.assertIn("Your Kubernetes control-plane has initialized successfully!", r.stdout)
        for rel in ["etc/kubernetes/%s.conf" % n for n in ("admin", "super-admin", "kubelet", "controller-manager",
                                                           "scheduler")] + \
                   ["etc/kubernetes/manifests/%s.yaml" % n for n in ("etcd", "kube-apiserver", "kube-controller-manager",
                                                                     "kube-scheduler")] + \
                   ["etc/kubernetes/pki/%s.%s" % (n, e) for n in ("ca", "apiserver", "apiserver-kubelet-client",
                                                                  "apiserver-etcd-client", "front-proxy-ca",
                                                                  "front-proxy-client", "etcd/ca", "etcd/server",
                                                                  "etcd/peer", "etcd/healthcheck-client")
                    for e in ("crt", "key")] + \
                   ["etc/kubernetes/pki/sa.key", "etc/kubernetes/pki/sa.pub", "var/lib/kubelet/config.yaml",
                    "var/lib/kubelet/kubeadm-flags.env", "var/lib/etcd/member/snap/db"]:
            self.assertTrue(os.path.isfile(os.path.join(root, rel)), rel)
        c = self.cluster()
        ca = os.path.join(root, "etc/kubernetes/pki/ca.crt")
        self.assertEqual(c["caHash"], spki_hash(ca))
        self.assertIn("kubeadm join %s --token %s \\\n\t--discovery-token-ca-cert-hash %s" % (EP, TOKEN, c["caHash"]),
                      r.stdout)
        with open(os.path.join(root, "etc/kubernetes/admin.conf")) as f:
            admin = f.read()
        self.assertIn("server: https://%s" % EP, admin)
        with open(os.path.join(root, "var/lib/kubelet/kubeadm-flags.env")) as f:
            self.assertEqual(f.read(), 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/'
                                       'containerd.sock --node-labels=anvil.dev/pool=cp --provider-id=anvil://uuid-cp-0"\n')
        node = c["nodes"]["cp-0"]
        self.assertEqual(node["spec"]["providerID"], "anvil://uuid-cp-0")
        self.assertEqual(node["status"]["nodeInfo"]["kubeletVersion"], "v1.30.2")
        self.assertIn("node-role.kubernetes.io/control-plane", node["metadata"]["labels"])
        self.assertEqual(node["metadata"]["labels"]["anvil.dev/pool"], "cp")
        self.assertEqual(node["spec"]["taints"][0]["key"], "node-role.kubernetes.io/control-plane")
        self.assertEqual([m["name"] for m in c["etcdMembers"]], ["cp-0"])
        self.assertEqual(c["etcdMembers"][0]["peerURL"], "https://10.200.0.10:2380")
        self.assertIsNotNone(c["tokens"]["abcdef"]["expires"])
        # the written admin.conf works with kubectl
        self.assertIn("cp-0", self.ok(self.kubectl(*self.admin(root), "get", "nodes")).stdout)

    def test_init_uses_ca_placed_by_caller(self):
        root = self.host("cp-0")
        pki = os.path.join(root, "etc/kubernetes/pki")
        os.makedirs(pki)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", pki + "/ca.key", "-out",
                        pki + "/ca.crt", "-subj", "/CN=kubernetes", "-days", "10",
                        "-addext", "basicConstraints=critical,CA:TRUE"], check=True, capture_output=True)
        want = spki_hash(pki + "/ca.crt")
        _, r = self.init()
        self.ok(r)
        self.assertIn("[certs] Using existing ca certificate authority", r.stdout)
        self.assertEqual(self.cluster()["caHash"], want)
        self.assertIn(want, r.stdout)
        verify = subprocess.run(["openssl", "verify", "-CAfile", pki + "/ca.crt", pki + "/apiserver.crt"],
                                capture_output=True, text=True)
        self.assertEqual(verify.returncode, 0, verify.stderr)

    def test_second_init_refused_by_preflight(self):
        root, r = self.init()
        self.ok(r)
        _, r = self.init()
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("error execution phase preflight: [preflight] Some fatal errors occurred:\n"),
                        r.stderr)
        for line in ("\t[ERROR Port-6443]: Port 6443 is in use\n",
                     "\t[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]: "
                     "/etc/kubernetes/manifests/kube-apiserver.yaml already exists\n",
                     "\t[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty\n",
                     "[preflight] If you know what you are doing, you can make a check non-fatal with "
                     "`--ignore-preflight-errors=...`\n",
                     "To see the stack trace of this error execute with --v=5 or higher\n"):
            self.assertIn(line, r.stderr)
        self.assertEqual(r.stdout.splitlines()[-1], "[preflight] Running pre-flight checks")
        # named and 'all' ignores turn the errors into warnings
        names = ["Port-6443", "Port-10259", "Port-10257", "Port-10250", "Port-2379", "Port-2380",
                 "DirAvailable--var-lib-etcd"] + ["FileAvailable--etc-kubernetes-manifests-%s.yaml" % n for n in
                                                  ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")]
        _, r = self.init(extra_args=["--ignore-preflight-errors=" + ",".join(names[:-1])])
        self.assertEqual(r.returncode, 1)
        self.assertIn("[ERROR FileAvailable--etc-kubernetes-manifests-etcd.yaml]", r.stderr)
        self.assertIn("[WARNING Port-6443]: Port 6443 is in use", r.stderr)
        _, r = self.init(extra_args=["--ignore-preflight-errors=all"])
        self.ok(r)
        self.assertEqual(sum(1 for i in self.invocations() if i["argv"][0] == "init"), 4)

    def test_bad_bootstrap_token_in_init_config(self):
        root = self.host("cp-0")
        cfg = INIT_CFG.format(token="ABC.def", name="cp-0", uuid="u", ip="10.0.0.1", version="v1.30.2", ep=EP)
        _, r = self.init(cfg=cfg)
        # BootstrapTokenString.UnmarshalJSON fails while decoding: a plain error (exit 1), not a validation one.
        self.assertEqual(r.returncode, 1)
        self.assertIn('the bootstrap token "ABC.def" was not of the form "^([a-z0-9]{6})\\.([a-z0-9]{16})$"', r.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "etc/kubernetes/admin.conf")))
        self.assertFalse(os.path.exists(os.path.join(self.state, "clusters")))

    def test_validation_errors_exit_3(self):
        cfg = INIT_CFG.format(token=TOKEN, name="Bad_Name", uuid="u", ip="10.0.0.1", version="v1.30.2",
                              ep="cp.example:99999").replace("10.244.0.0/16", "10.244.0.0/33")
        root, r = self.init(cfg=cfg)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertTrue(r.stderr.startswith("["), r.stderr)
        self.assertIn('nodeRegistration.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain', r.stderr)
        self.assertIn('networking.podSubnet: Invalid value: "10.244.0.0/33": couldn\'t parse subnet', r.stderr)
        self.assertIn('controlPlaneEndpoint: Invalid value: "cp.example:99999": endpoint is not valid', r.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "etc/kubernetes/manifests")))
        cfg = INIT_CFG.format(token=TOKEN, name="cp-0", uuid="u", ip="10.0.0.1", version="v1.30", ep=EP)
        _, r = self.init(cfg=cfg)
        self.assertEqual(r.returncode, 1)
        self.assertIn('version "v1.30" doesn\'t match patterns for neither semantic version nor labels', r.stderr)
        _, r = self.init(cfg=cfg.replace("v1.30", "1.30"))  # a YAML float, as real kubeadm's decoder sees it
        self.assertEqual(r.returncode, 1)
        self.assertIn("json: cannot unmarshal number into Go struct field ClusterConfiguration.kubernetesVersion of "
                      "type string", r.stderr)

    def test_mixing_config_and_flags(self):
        root, r = self.init(extra_args=["--token", TOKEN])
        self.assertEqual(r.returncode, 1)
        self.assertIn("can not mix '--config' with arguments [token]", r.stderr)
        _, r = self.init(extra_args=["--token", TOKEN, "--cri-socket", "unix:///x.sock"])
        self.assertIn("can not mix '--config' with arguments [cri-socket token]", r.stderr)
        _, r = self.init(extra_args=["--bogus"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown flag: --bogus", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "etc/kubernetes")))
        # allowed companions of --config
        _, r = self.init(extra_args=["--v=5", "--skip-phases=addon/kube-proxy", "--upload-certs", "--dry-run"])
        self.ok(r)
        self.assertFalse(os.path.exists(os.path.join(self.state, "clusters")))

    def test_verbosity_flag(self):
        # --v takes klog's Level, an integer: anything else is pflag's parse error (exit 1).
        root, r = self.init(extra_args=["--v=high"])
        self.assertEqual(r.returncode, 1)
        self.assertIn('invalid argument "high" for "-v, --v" flag: strconv.ParseInt', r.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "etc/kubernetes")))
        _, r = self.init(extra_args=["--v", "5"])
        self.ok(r)
        _, r = self.join("w-1", args=["--v=3"])
        self.ok(r)
        self.assertIn("--v=3", self.invocations()[-1]["argv"])

    def test_config_decoding(self):
        base = INIT_CFG.format(token=TOKEN, name="cp-0", uuid="u", ip="10.0.0.1", version="v1.30.2", ep=EP)
        _, r = self.init(cfg=base + "foo: bar\n")
        self.ok(r)
        self.assertRegex(r.stderr, r'W\d{4} [\d:.]+ +\d+ \S+\] error unmarshaling configuration schema.GroupVersionKind'
                                   r'\{Group:"kubeadm.k8s.io", Version:"v1beta3", Kind:"ClusterConfiguration"\}: '
                                   r'strict decoding error: unknown field "foo"')
        shutil.rmtree(self.tmp)
        _, r = self.init(cfg=base + "foo: bar\n", env={"FAKE_KUBEADM_STRICT": "1"})
        self.assertEqual(r.returncode, 3)
        _, r = self.init(cfg=base + "networking: [\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("error converting YAML to JSON: yaml: line", r.stderr)
        _, r = self.init(cfg=base.replace("kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration",
                                          "kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration"))
        self.assertEqual(r.returncode, 1)
        self.assertIn('your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta2" (kind: '
                      '"ClusterConfiguration")', r.stderr)
        _, r = self.init(cfg=base + "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
                                    "cgroupDriver: systemd\n---\napiVersion: example.com/v1\nkind: Thing\n")
        self.ok(r)
        self.assertIn("Ignored configuration document with GroupVersionKind example.com/v1, Kind=Thing", r.stderr)
        _, r = self.init(cfg=base.replace("  bindPort: 6443", '  bindPort: "6443"'), extra_args=["--dry-run"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("json: cannot unmarshal string into Go struct field APIEndpoint.localAPIEndpoint.bindPort of "
                      "type int32", r.stderr)

    def test_version(self):
        self.assertEqual(self.ok(self.kubeadm("version", "-o", "short")).stdout, "v1.30.2\n")
        r = self.ok(self.kubeadm("version", "-o", "short", env={"FAKE_KUBEADM_VERSION": "v1.29.6"}))
        self.assertEqual(r.stdout, "v1.29.6\n")
        self.assertIn('GitVersion:"v1.30.2"', self.ok(self.kubeadm("version")).stdout)


class JoinTest(FakeTest):
    def setUp(self):
        super().setUp()
        self.cp0, r = self.init()
        self.ok(r)

    def test_worker_join(self):
        root, r = self.join("w-1")
        self.ok(r)
        self.assertIn("This node has joined the cluster:", r.stdout)
        c = self.cluster()
        node = c["nodes"]["w-1"]
        self.assertEqual(node["spec"]["providerID"], "anvil://uuid-w-1")
        self.assertEqual(node["status"]["nodeInfo"]["kubeletVersion"], "v1.30.2")
        self.assertEqual([x["status"] for x in node["status"]["conditions"] if x["type"] == "Ready"], ["True"])
        self.assertNotIn("node-role.kubernetes.io/control-plane", node["metadata"]["labels"])
        for rel in ("etc/kubernetes/kubelet.conf", "etc/kubernetes/pki/ca.crt", "var/lib/kubelet/config.yaml",
                    "var/lib/kubelet/kubeadm-flags.env"):
            self.assertTrue(os.path.isfile(os.path.join(root, rel)), rel)
        self.assertFalse(os.path.exists(os.path.join(root, "etc/kubernetes/bootstrap-kubelet.conf")))
        self.assertFalse(os.path.exists(os.path.join(root, "etc/kubernetes/manifests/kube-apiserver.yaml")))
        self.assertEqual(spki_hash(os.path.join(root, "etc/kubernetes/pki/ca.crt")), c["caHash"])
        self.assertEqual(len(c["etcdMembers"]), 1)
        # the kubelet's kubeconfig authenticates against the fake API server
        self.assertIn("w-1", self.ok(self.kubectl("--kubeconfig", os.path.join(root, "etc/kubernetes/kubelet.conf"),
                                                  "get", "nodes")).stdout)
        # joining again on the same host fails the general preflight checks
        _, r = self.join("w-1")
        self.assertEqual(r.returncode, 1)
        for name in ("FileAvailable--etc-kubernetes-kubelet.conf", "FileAvailable--etc-kubernetes-pki-ca.crt",
                     "Port-10250"):
            self.assertIn("[ERROR %s]" % name, r.stderr)

    def test_join_refusals(self):
        _, r = self.join("w-1", hashes=["sha256:" + "0" * 64])
        self.assertEqual(r.returncode, 1)
        self.assertIn('error execution phase preflight: couldn\'t validate the identity of the API Server: cluster CA '
                      'found in cluster-info ConfigMap is invalid: none of the public keys "%s" are pinned'
                      % self.cluster()["caHash"], r.stderr)
        _, r = self.join("w-2", token="zzzzzz.0123456789abcdef")
        self.assertEqual(r.returncode, 1)
        self.assertIn('could not find a JWS signature in the cluster-info ConfigMap for token ID "zzzzzz"', r.stderr)
        _, r = self.join("w-3", token="abcdef.aaaaaaaaaaaaaaaa")
        self.assertIn("failed to verify JWS signature of received cluster info object", r.stderr)
        self.ok(self.run_tool(FAKEK8S, "expire-token", EP, "abcdef"))
        _, r = self.join("w-4")
        self.assertEqual(r.returncode, 1)
        self.assertIn("couldn't validate the identity of the API Server", r.stderr)
        self.assertIn('for token ID "abcdef"', r.stderr)
        _, r = self.join("w-5", hashes=[])
        self.assertEqual(r.returncode, 3)
        self.assertIn("discovery.bootstrapToken.caCertHashes: Invalid value: \"\": using token-based discovery without "
                      "caCertHashes can be unsafe", r.stderr)
        _, r = self.join("w-6", token="bad")
        self.assertEqual(r.returncode, 3)
        self.assertIn('discovery.bootstrapToken.token: Invalid value: "bad": the bootstrap token is invalid', r.stderr)
        self.assertEqual(sorted(self.cluster()["nodes"]), ["cp-0"])

    def test_join_without_cluster(self):
        root = self.host("w-1")
        self.write(root, "/run/kubeadm/j.yaml", JOIN_CFG.format(token=TOKEN, ep="10.9.9.9:6443", hashes='"sha256:%s"'
                                                                % ("1" * 64), name="w-1", uuid="x", extra=""))
        r = self.kubeadm("join", "--config", "/run/kubeadm/j.yaml", "--rootfs", root)
        self.assertEqual(r.returncode, 1)
        self.assertIn('dial tcp 10.9.9.9:6443: connect: connection refused', r.stderr)

    def test_token_create_and_join_with_it(self):
        r = self.ok(self.kubeadm("token", "create", "--ttl", "1h", "--print-join-command", "--rootfs", self.cp0))
        line = r.stdout.strip().split()
        self.assertEqual(line[:3], ["kubeadm", "join", EP])
        tok, h = line[line.index("--token") + 1], line[line.index("--discovery-token-ca-cert-hash") + 1]
        self.assertEqual(h, self.cluster()["caHash"])
        self.assertIn(tok, self.ok(self.kubeadm("token", "list", "--rootfs", self.cp0)).stdout)
        self.ok(self.join("w-1", token=tok)[1])
        # the flag form of join works too
        root = self.host("w-2")
        self.ok(self.kubeadm("join", EP, "--token", tok, "--discovery-token-ca-cert-hash", h, "--node-name", "w-2",
                             "--rootfs", root))
        self.assertIn('bootstrap token "%s" deleted' % tok[:6],
                      self.ok(self.kubeadm("token", "delete", tok, "--rootfs", self.cp0)).stdout)
        self.assertEqual(self.join("w-3", token=tok)[1].returncode, 1)

    def test_control_plane_join(self):
        cp_extra = "controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.200.0.11\n    bindPort: 6443\n"
        root, r = self.join("cp-1", extra=cp_extra)
        self.assertEqual(r.returncode, 1)
        self.assertIn("One or more conditions for hosting a new control plane instance is not satisfied.", r.stderr)
        self.assertIn("failure loading certificate for CA: couldn't load the certificate file /etc/kubernetes/pki/ca.crt",
                      r.stderr)
        self.assertIn("failure loading key for service account", r.stderr)
        self.assertEqual(len(self.cluster()["etcdMembers"]), 1)
        # the caller ships the shared CA files (as Cluster API does)
        for f in ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key", "etcd/ca.crt",
                  "etcd/ca.key"):
            os.makedirs(os.path.dirname(os.path.join(root, "etc/kubernetes/pki", f)), exist_ok=True)
            shutil.copy(os.path.join(self.cp0, "etc/kubernetes/pki", f), os.path.join(root, "etc/kubernetes/pki", f))
        root, r = self.join("cp-1", extra=cp_extra)
        self.ok(r)
        self.assertIn("This node has joined the cluster and a new control plane instance was created:", r.stdout)
        c = self.cluster()
        self.assertEqual([m["name"] for m in c["etcdMembers"]], ["cp-0", "cp-1"])
        self.assertEqual(c["etcdMembers"][1]["peerURL"], "https://10.200.0.11:2380")
        self.assertIn("node-role.kubernetes.io/control-plane", c["nodes"]["cp-1"]["metadata"]["labels"])
        for rel in ("etc/kubernetes/admin.conf", "etc/kubernetes/manifests/etcd.yaml",
                    "etc/kubernetes/manifests/kube-apiserver.yaml", "etc/kubernetes/pki/apiserver.crt"):
            self.assertTrue(os.path.isfile(os.path.join(root, rel)), rel)
        out = self.ok(self.kubectl(*self.admin(root), "-n", "kube-system", "exec", "etcd-cp-0", "--", "etcdctl",
                                   "--endpoints=https://127.0.0.1:2379", "member", "list")).stdout
        self.assertEqual(len(out.splitlines()), 2)
        self.assertRegex(out, r"(?m)^[0-9a-f]+, started, cp-1, https://10.200.0.11:2380, https://10.200.0.11:2379, false$")

    def test_control_plane_join_with_certificate_key(self):
        key = "f" * 64
        _, r = self.join("cp-1", extra="controlPlane:\n  certificateKey: %s\n" % key)
        self.assertEqual(r.returncode, 1)  # no certs uploaded yet
        self.assertIn('Secret "kubeadm-certs" was not found', r.stderr)
        r = self.ok(self.kubeadm("init", "phase", "upload-certs", "--upload-certs", "--certificate-key", key,
                                 "--rootfs", self.cp0))
        self.assertEqual(r.stdout.splitlines()[-1], key)
        _, r = self.join("cp-2", extra="controlPlane:\n  certificateKey: %s\n" % ("e" * 64))
        self.assertIn("cipher: message authentication failed", r.stderr)
        _, r = self.join("cp-3", extra="controlPlane:\n  certificateKey: %s\n" % key)
        self.ok(r)
        self.assertEqual(len(self.cluster()["etcdMembers"]), 2)


class ResetTest(FakeTest):
    def setUp(self):
        super().setUp()
        self.cp0, r = self.init(env={"FAKE_PODS_PER_NODE": "1"})
        self.ok(r)
        r = self.ok(self.kubeadm("init", "phase", "upload-certs", "--upload-certs", "--rootfs", self.cp0))
        self.key = r.stdout.splitlines()[-1]
        self.cp1, r = self.join("cp-1", extra="controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.200.0.11\n"
                                              "  certificateKey: %s\n" % self.key)
        self.ok(r)

    def test_reset_control_plane(self):
        r = self.kubeadm("reset", "--rootfs", self.cp1, stdin="n\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("[reset] Are you sure you want to proceed? [y/N]: ", r.stdout)
        self.assertIn("aborted reset operation", r.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.cp1, "etc/kubernetes/admin.conf")))
        r = self.ok(self.kubeadm("reset", "-f", "--rootfs", self.cp1, "--cleanup-tmp-dir"))
        self.assertIn("[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet "
                      "/etc/kubernetes/pki /etc/kubernetes/tmp]", r.stdout)
        self.assertIn("[reset] Deleting files: [/etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf "
                      "/etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf "
                      "/etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf]", r.stdout)
        self.assertIn("[reset] Deleted contents of the etcd data directory: /var/lib/etcd", r.stdout)
        self.assertIn("The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d",
                      r.stdout)
        for rel in ("etc/kubernetes/admin.conf", "etc/kubernetes/kubelet.conf"):
            self.assertFalse(os.path.exists(os.path.join(self.cp1, rel)), rel)
        for d in ("etc/kubernetes/manifests", "etc/kubernetes/pki", "var/lib/kubelet", "var/lib/etcd"):
            self.assertEqual(os.listdir(os.path.join(self.cp1, d)), [], d)
        c = self.cluster()
        self.assertEqual([m["name"] for m in c["etcdMembers"]], ["cp-0"])
        self.assertIn("cp-1", c["nodes"])  # reset does not delete the Node object
        self.assertEqual([x["status"] for x in c["nodes"]["cp-1"]["status"]["conditions"] if x["type"] == "Ready"],
                         ["Unknown"])
        self.assertNotIn("cp-1", c["apiServers"])
        # the host is clean again: a new join passes preflight, and the stale NotReady Node is taken over
        _, r = self.join("cp-1", extra="controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.200.0.11\n"
                                       "  certificateKey: %s\n" % self.key)
        self.ok(r)

    def test_reset_worker_keeps_node(self):
        w, r = self.join("w-1")
        self.ok(r)
        r = self.ok(self.kubeadm("reset", "--force", "--rootfs", w))
        self.assertIn("Unable to fetch the kubeadm-config ConfigMap from cluster", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(w, "etc/kubernetes/kubelet.conf")))
        self.assertIn("w-1", self.cluster()["nodes"])
        self.assertEqual(len(self.cluster()["etcdMembers"]), 2)

    def test_last_control_plane_reset_stops_cluster(self):
        self.ok(self.kubeadm("reset", "-f", "--rootfs", self.cp1))
        kc = os.path.join(self.tmp, "admin.conf")
        shutil.copy(os.path.join(self.cp0, "etc/kubernetes/admin.conf"), kc)
        self.ok(self.kubeadm("reset", "-f", "--rootfs", self.cp0))
        r = self.kubectl("--kubeconfig", kc, "get", "nodes")
        self.assertEqual(r.returncode, 1)
        self.assertIn("The connection to the server %s was refused - did you specify the right host or port?" % EP,
                      r.stderr)
        _, r = self.join("w-9")
        self.assertIn("connection refused", r.stderr)


class KubectlTest(FakeTest):
    def setUp(self):
        super().setUp()
        self.cp0, r = self.init()
        self.ok(r)
        self.ok(self.join("w-1")[1])
        self.ok(self.join("w-2")[1])
        self.kc = self.admin(self.cp0)

    def test_get_node_json(self):
        n = json.loads(self.ok(self.kubectl(*self.kc, "get", "node", "w-1", "-o", "json")).stdout)
        self.assertEqual(n["kind"], "Node")
        self.assertEqual(n["metadata"]["name"], "w-1")
        self.assertEqual(n["spec"]["providerID"], "anvil://uuid-w-1")
        self.assertNotIn("unschedulable", n["spec"])
        self.assertEqual(n["status"]["nodeInfo"]["kubeletVersion"], "v1.30.2")
        self.assertIn({"type": "Hostname", "address": "w-1"}, n["status"]["addresses"])
        lst = json.loads(self.ok(self.kubectl(*self.kc, "get", "nodes", "-o", "json")).stdout)
        self.assertEqual([i["metadata"]["name"] for i in lst["items"]], ["cp-0", "w-1", "w-2"])
        r = self.kubectl(*self.kc, "get", "node", "nope", "-o", "json")
        self.assertEqual((r.returncode, r.stderr), (1, 'Error from server (NotFound): nodes "nope" not found\n'))
        r = self.ok(self.kubectl(*self.kc, "get", "node", "w-1", "-o",
                                 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'))
        self.assertEqual(r.stdout, "True")

    def test_cordon_drain_delete(self):
        self.assertEqual(self.ok(self.kubectl(*self.kc, "cordon", "w-1")).stdout, "node/w-1 cordoned\n")
        n = json.loads(self.ok(self.kubectl(*self.kc, "get", "node", "w-1", "-o", "json")).stdout)
        self.assertTrue(n["spec"]["unschedulable"])
        self.assertIn("Ready,SchedulingDisabled", self.ok(self.kubectl(*self.kc, "get", "nodes")).stdout)
        self.assertEqual(self.ok(self.kubectl(*self.kc, "uncordon", "w-1")).stdout, "node/w-1 uncordoned\n")
        before = [k for k, p in self.cluster()["pods"].items() if p["spec"]["nodeName"] == "w-1"
                  and k.startswith("default/")]
        self.assertEqual(len(before), 2)
        r = self.kubectl(*self.kc, "drain", "w-1", "--timeout=300s")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)", r.stderr)
        r = self.ok(self.kubectl(*self.kc, "drain", "w-1", "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                                 "--timeout=300s", "--grace-period", "30"))
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "node/w-1 already cordoned")
        self.assertEqual(lines[-1], "node/w-1 drained")
        for k in before:
            self.assertIn("evicting pod %s" % k, lines)
            self.assertIn("pod/%s evicted" % k.split("/")[1], lines)
        pods = self.cluster()["pods"]
        self.assertFalse(any(p["spec"]["nodeName"] == "w-1" and p["metadata"]["namespace"] == "default"
                             for p in pods.values()))
        self.assertEqual(sum(1 for p in pods.values() if p["spec"]["nodeName"] == "w-2"
                             and p["metadata"]["namespace"] == "default"), 4)  # rescheduled
        r = self.kubectl(*self.kc, "drain", "w-2", "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                         "--timeout=300s", env={"FAKE_DRAIN_FAIL": "w-2"})
        self.assertEqual(r.returncode, 1)
        self.assertIn('error: unable to drain node "w-2" due to error: error when evicting pods/', r.stderr)
        self.assertIn("global timeout reached: 5m0s", r.stderr)
        self.assertEqual(self.ok(self.kubectl(*self.kc, "delete", "node", "w-1")).stdout, 'node "w-1" deleted\n')
        r = self.kubectl(*self.kc, "get", "node", "w-1")
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("w-1", self.cluster()["nodes"])

    def test_wait(self):
        self.assertEqual(self.ok(self.kubectl(*self.kc, "wait", "--for=condition=Ready", "node/w-1",
                                              "--timeout=120s")).stdout, "node/w-1 condition met\n")
        self.ok(self.run_tool(FAKEK8S, "set-node-ready", EP, "w-1", "false"))
        r = self.kubectl(*self.kc, "wait", "--for=condition=Ready", "node/w-1", "--timeout=1s")
        self.assertEqual((r.returncode, r.stderr), (1, "error: timed out waiting for the condition on nodes/w-1\n"))
        self.assertIn("NotReady", self.ok(self.kubectl(*self.kc, "get", "nodes")).stdout)
        # a readiness flip while waiting is seen
        t = threading.Timer(0.5, lambda: self.run_tool(FAKEK8S, "set-node-ready", EP, "w-1", "true"))
        t.start()
        self.ok(self.kubectl(*self.kc, "wait", "--for=condition=Ready", "node/w-1", "--timeout=10s"))
        t.join()

    def test_etcd_member_remove(self):
        cp1 = self.host("cp-1")
        shutil.copytree(os.path.join(self.cp0, "etc/kubernetes/pki"), os.path.join(cp1, "etc/kubernetes/pki"))
        for f in os.listdir(os.path.join(cp1, "etc/kubernetes/pki")):
            if f.startswith(("apiserver", "front-proxy-client")):
                os.unlink(os.path.join(cp1, "etc/kubernetes/pki", f))
        self.ok(self.join("cp-1", extra="controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.200.0.11\n")[1])
        ex = [*self.kc, "-n", "kube-system", "exec", "etcd-cp-0", "--", "etcdctl", "--cacert",
              "/etc/kubernetes/pki/etcd/ca.crt", "--cert", "/etc/kubernetes/pki/etcd/peer.crt", "--key",
              "/etc/kubernetes/pki/etcd/peer.key"]
        out = self.ok(self.kubectl(*ex, "member", "list")).stdout.splitlines()
        mid = [line.split(",")[0] for line in out if ", cp-1, " in line][0]
        r = self.ok(self.kubectl(*ex, "member", "remove", mid))
        self.assertRegex(r.stdout, r"^Member +%s removed from cluster +[0-9a-f]+\n$" % mid)
        self.assertEqual([m["name"] for m in self.cluster()["etcdMembers"]], ["cp-0"])
        r = self.kubectl(*ex, "member", "remove", mid)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Error: etcdserver: member not found", r.stderr)
        self.assertIn("command terminated with exit code 1", r.stderr)
        r = self.kubectl(*self.kc, "-n", "kube-system", "exec", "etcd-nope", "--", "etcdctl", "member", "list")
        self.assertIn('pods "etcd-nope" not found', r.stderr)

    def test_connection_and_auth_failures(self):
        r = self.kubectl("--kubeconfig", os.path.join(self.tmp, "missing.conf"), "get", "nodes")
        self.assertEqual(r.returncode, 1)
        with open(os.path.join(self.cp0, "etc/kubernetes/admin.conf")) as f:
            admin = f.read()
        bad = os.path.join(self.tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write(admin.replace(EP, "10.1.2.3:6443"))
        r = self.kubectl("--kubeconfig", bad, "get", "node", "w-1", "-o", "json")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.endswith("The connection to the server 10.1.2.3:6443 was refused - did you specify "
                                          "the right host or port?\n"), r.stderr)
        self.assertEqual(r.stdout, "")
        other = self.host("other")  # a kubeconfig from another cluster's CA
        self.write(other, "/run/kubeadm/kubeadm.yaml", INIT_CFG.format(token=TOKEN, name="o", uuid="o", ip="10.0.0.9",
                                                                       version="v1.30.2", ep="other.example:6443"))
        self.ok(self.kubeadm("init", "--config", "/run/kubeadm/kubeadm.yaml", "--rootfs", other))
        with open(os.path.join(other, "etc/kubernetes/admin.conf")) as f:
            foreign = f.read().replace("other.example:6443", EP)
        with open(bad, "w") as f:
            f.write(foreign)
        r = self.kubectl("--kubeconfig", bad, "get", "nodes")
        self.assertIn("x509: certificate signed by unknown authority", r.stderr)

    def test_invocations_are_logged(self):
        self.ok(self.kubectl(*self.kc, "get", "nodes"))
        inv = self.invocations()
        self.assertEqual([i["argv"][0] for i in inv if i["tool"] == "kubeadm"], ["init", "join", "join"])
        self.assertEqual([i["rootfs"] for i in inv if i["tool"] == "kubeadm"],
                         [self.cp0, os.path.join(self.tmp, "w-1"), os.path.join(self.tmp, "w-2")])
        self.assertTrue(all(i["exit"] == 0 for i in inv))
        self.assertEqual(inv[-1]["tool"], "kubectl")


class UpgradeTest(FakeTest):
    def test_upgrade_rules_and_apply(self):
        env29 = {"FAKE_KUBEADM_VERSION": "v1.29.6"}
        cp0, r = self.init(version="v1.29.6", env=env29)
        self.ok(r)
        w1, r = self.join("w-1", env=env29)
        self.ok(r)
        env31 = {"FAKE_KUBEADM_VERSION": "v1.31.0"}
        r = self.kubeadm("upgrade", "apply", "v1.31.0", "-y", "--rootfs", cp0, env=env31)
        self.assertEqual(r.returncode, 1)
        self.assertIn("[upgrade/version] FATAL: the --version argument is invalid due to these fatal errors:\n\n\t- "
                      'Specified version to upgrade to "v1.31.0" is too high; kubeadm can upgrade only 1 minor version '
                      "at a time\n", r.stderr)
        self.assertIn("Please fix the misalignments highlighted above and try upgrading again", r.stderr)
        env30 = {"FAKE_KUBEADM_VERSION": "v1.30.2"}
        r = self.kubeadm("upgrade", "apply", "v1.30.3", "-y", "--rootfs", cp0, env=env30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Can be bypassed if you pass the --force flag", r.stderr)
        self.assertIn('upgrade/versions] kubeadm version: v1.30.2',
                      self.ok(self.kubeadm("upgrade", "plan", "--rootfs", cp0, env=env30)).stdout)
        r = self.ok(self.kubeadm("upgrade", "apply", "v1.30.2", "-y", "--rootfs", cp0, env=env30))
        self.assertIn('[upgrade/successful] SUCCESS! Your cluster was upgraded to "v1.30.2". Enjoy!', r.stdout)
        c = self.cluster()
        self.assertEqual(c["kubernetesVersion"], "v1.30.2")
        with open(os.path.join(cp0, "etc/kubernetes/manifests/kube-apiserver.yaml")) as f:
            self.assertIn("registry.k8s.io/kube-apiserver:v1.30.2", f.read())
        self.assertEqual(c["nodes"]["w-1"]["status"]["nodeInfo"]["kubeletVersion"], "v1.29.6")
        r = self.ok(self.kubeadm("upgrade", "node", "--rootfs", w1, env=env30))
        self.assertIn("[upgrade] The configuration for this node was successfully updated!", r.stdout)
        self.assertEqual(self.cluster()["nodes"]["w-1"]["status"]["nodeInfo"]["kubeletVersion"], "v1.30.2")
        with open(os.path.join(self.state, "hosts", w1.strip("/").replace("/", "_") + ".json")) as f:
            self.assertEqual(json.load(f)["kubeletConfigVersion"], "v1.30.2")


    def test_installed_packages_decide_versions(self):
        cp0, r = self.init(version="v1.30.2")
        self.ok(r)
        w1, r = self.join("w-1")
        self.ok(r)
        # kubeadm v1.30 cannot go to v1.31: the package step must come first.
        r = self.kubeadm("upgrade", "apply", "v1.31.0", "-y", "--rootfs", cp0)
        self.assertEqual(r.returncode, 1)
        self.assertIn("at least one minor release higher than the kubeadm minor release", r.stderr)
        r = self.ok(self.run_tool(FAKEK8S, "install-packages", cp0, "v1.31.0"))
        self.assertIn("Setting up kubelet (1.31.0-1.1)", r.stdout)
        self.assertEqual(self.ok(self.kubeadm("version", "-o", "short", "--rootfs", cp0)).stdout, "v1.31.0\n")
        self.assertEqual(self.ok(self.kubeadm("version", "-o", "short", "--rootfs", w1)).stdout, "v1.30.2\n")
        self.ok(self.kubeadm("upgrade", "apply", "v1.31.0", "-y", "--rootfs", cp0))
        self.assertEqual(self.cluster()["kubernetesVersion"], "v1.31.0")
        self.assertEqual(self.cluster()["nodes"]["cp-0"]["status"]["nodeInfo"]["kubeletVersion"], "v1.31.0")
        # A worker that upgrades without new packages keeps its old kubelet.
        self.ok(self.run_tool(FAKEK8S, "install-packages", w1, "v1.30.2"))
        self.ok(self.kubeadm("upgrade", "node", "--rootfs", w1))
        nodes = json.loads(self.ok(self.run_tool(FAKEK8S, "nodes", EP)).stdout)
        self.assertEqual(nodes["w-1"]["kubeletVersion"], "v1.30.2")
        self.ok(self.run_tool(FAKEK8S, "install-packages", w1, "1.31.0"))
        self.ok(self.kubeadm("upgrade", "node", "--rootfs", w1))
        nodes = json.loads(self.ok(self.run_tool(FAKEK8S, "nodes", EP)).stdout)
        self.assertEqual({n: v["kubeletVersion"] for n, v in nodes.items()}, {"cp-0": "v1.31.0", "w-1": "v1.31.0"})
        r = self.run_tool(FAKEK8S, "install-packages", w1, "latest")
        self.assertEqual(r.returncode, 2)

    def test_kubeadm_config_map(self):
        cp0, r = self.init(version="v1.30.2")
        self.ok(r)
        kc = self.admin(cp0)
        # Not in the default namespace; in kube-system, what init uploaded.
        r = self.kubectl(*kc, "get", "configmap", "kubeadm-config")
        self.assertEqual(r.returncode, 1)
        self.assertIn('Error from server (NotFound): configmaps "kubeadm-config" not found', r.stderr)
        cm = json.loads(self.ok(self.kubectl(*kc, "-n", "kube-system", "get", "cm", "kubeadm-config", "-o",
                                             "json")).stdout)
        cc = yaml.safe_load(cm["data"]["ClusterConfiguration"])
        self.assertEqual((cc["kind"], cc["kubernetesVersion"], cc["controlPlaneEndpoint"]),
                         ("ClusterConfiguration", "v1.30.2", EP))
        rv = cm["metadata"]["resourceVersion"]
        # A merge patch with a stale resourceVersion is a conflict and changes nothing.
        cc["kubernetesVersion"] = "v1.31.0"
        patch = json.dumps({"metadata": {"resourceVersion": "999"},
                            "data": {"ClusterConfiguration": yaml.safe_dump(cc)}})
        r = self.kubectl(*kc, "-n", "kube-system", "patch", "configmap", "kubeadm-config", "--type", "merge",
                         "-p", patch)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Error from server (Conflict): Operation cannot be fulfilled on configmaps", r.stderr)
        self.assertEqual(self.cluster()["kubernetesVersion"], "v1.30.2")
        patch = json.dumps({"metadata": {"resourceVersion": rv}, "data": {"ClusterConfiguration": yaml.safe_dump(cc)}})
        r = self.ok(self.kubectl(*kc, "-n", "kube-system", "patch", "configmap", "kubeadm-config", "--type", "merge",
                                 "-p", patch))
        self.assertEqual(r.stdout, "configmap/kubeadm-config patched\n")
        r = self.ok(self.kubectl(*kc, "-n", "kube-system", "patch", "cm", "kubeadm-config", "-p",
                                 json.dumps({"data": {"ClusterConfiguration": yaml.safe_dump(cc)}})))
        self.assertEqual(r.stdout, "configmap/kubeadm-config patched (no change)\n")
        # kubeadm join --control-plane takes kubernetesVersion from it: the new member's static
        # pods are v1.31.0, its kubelet the host's installed one (warned about: kubeadm is v1.30).
        self.ok(self.run_tool(FAKEK8S, "install-packages", self.host("cp-1"), "v1.30.2"))
        for f in ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key", "etcd/ca.crt",
                  "etcd/ca.key"):
            os.makedirs(os.path.dirname(os.path.join(self.tmp, "cp-1/etc/kubernetes/pki", f)), exist_ok=True)
            shutil.copy(os.path.join(cp0, "etc/kubernetes/pki", f), os.path.join(self.tmp, "cp-1/etc/kubernetes/pki", f))
        cp1, r = self.join("cp-1", extra="controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.200.0.11\n")
        self.ok(r)
        self.assertIn("[WARNING KubernetesVersion]: Kubernetes version is greater than kubeadm version", r.stderr)
        with open(os.path.join(cp1, "etc/kubernetes/manifests/kube-apiserver.yaml")) as f:
            self.assertIn("image: registry.k8s.io/kube-apiserver:v1.31.0", f.read())
        self.assertEqual(self.cluster()["nodes"]["cp-1"]["status"]["nodeInfo"]["kubeletVersion"], "v1.30.2")
        # replace -f with the object as read; upgrade apply writes the version back to it.
        cm = json.loads(self.ok(self.kubectl(*kc, "-n", "kube-system", "get", "cm", "kubeadm-config", "-o",
                                             "json")).stdout)
        cc = yaml.safe_load(cm["data"]["ClusterConfiguration"])
        cc["kubernetesVersion"] = "v1.30.2"
        cc["imageRepository"] = "registry.example.com"
        cm["data"]["ClusterConfiguration"] = yaml.safe_dump(cc)
        self.write(cp0, "/cm.json", json.dumps(cm))
        r = self.ok(self.kubectl(*kc, "replace", "-f", os.path.join(cp0, "cm.json")))
        self.assertEqual(r.stdout, "configmap/kubeadm-config replaced\n")
        r = self.kubectl(*kc, "replace", "-f", os.path.join(cp0, "cm.json"))  # its resourceVersion is old now
        self.assertEqual(r.returncode, 1)
        self.assertIn("(Conflict)", r.stderr)
        self.assertEqual((self.cluster()["kubernetesVersion"], self.cluster()["imageRepository"]),
                         ("v1.30.2", "registry.example.com"))
        self.ok(self.run_tool(FAKEK8S, "install-packages", cp0, "v1.31.0"))
        self.ok(self.kubeadm("upgrade", "apply", "v1.31.0", "-y", "--rootfs", cp0))
        cm = json.loads(self.ok(self.kubectl(*kc, "-n", "kube-system", "get", "cm", "kubeadm-config", "-o",
                                             "json")).stdout)
        cc = yaml.safe_load(cm["data"]["ClusterConfiguration"])
        self.assertEqual((cc["kubernetesVersion"], cc["imageRepository"]), ("v1.31.0", "registry.example.com"))
        # A ClusterConfiguration that does not decode: stored (a ConfigMap holds any string),
        # but kubeadm join fails reading it.
        self.ok(self.kubectl(*kc, "-n", "kube-system", "patch", "cm", "kubeadm-config", "-p",
                             json.dumps({"data": {"ClusterConfiguration": "kind: [broken"}})))
        _, r = self.join("w-1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unable to fetch the kubeadm-config ConfigMap: failed to decode cluster configuration data",
                      r.stderr)

    def test_history_records_cordons_and_members(self):
        cp0, r = self.init()
        self.ok(r)
        self.ok(self.join("w-1")[1])
        self.ok(self.kubectl("cordon", "w-1", *self.admin(cp0)))
        self.ok(self.kubectl("uncordon", "w-1", *self.admin(cp0)))
        self.ok(self.join("w-2")[1])
        self.ok(self.run_tool(FAKEK8S, "set-node-ready", EP, "w-1,w-2", "false"))
        nodes = self.cluster()["nodes"]
        conds = [[c for c in nodes[n]["status"]["conditions"] if c["type"] == "Ready"][0] for n in ("w-1", "w-2")]
        self.assertEqual([c["status"] for c in conds], ["False", "False"])
        self.assertEqual(conds[0]["lastTransitionTime"], conds[1]["lastTransitionTime"])
        self.assertEqual(self.run_tool(FAKEK8S, "set-node-ready", EP, "w-1,nope", "true").returncode, 1)
        self.ok(self.run_tool(FAKEK8S, "set-node-ready", EP, "w-1,w-2", "true"))
        hist = json.loads(self.ok(self.run_tool(FAKEK8S, "history", EP)).stdout)
        self.assertEqual(hist[0]["etcdMembers"], ["cp-0"])
        cordoned = [h["cordoned"] for h in hist]
        self.assertEqual(cordoned[cordoned.index(["w-1"]) + 1], [])
        self.assertEqual([h["ready"] for h in hist[-2:]], [["cp-0"], ["cp-0", "w-1", "w-2"]])
        self.assertTrue(all(a["time"] <= b["time"] for a, b in zip(hist, hist[1:])))
        self.assertEqual(self.run_tool(FAKEK8S, "history", "nowhere:1").returncode, 1)


class ConcurrencyTest(FakeTest):
    def test_parallel_joins(self):
        _, r = self.init()
        self.ok(r)
        h = self.cluster()["caHash"]
        roots = []
        for i in range(6):
            root = self.host("w-%d" % i)
            self.write(root, "/run/kubeadm/j.yaml", JOIN_CFG.format(token=TOKEN, ep=EP, hashes='"%s"' % h,
                                                                    name="w-%d" % i, uuid=str(i), extra=""))
            roots.append(root)
        procs = [subprocess.Popen([KUBEADM, "join", "--config", "/run/kubeadm/j.yaml", "--rootfs", root], env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for root in roots]
        for p in procs:
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(sorted(self.cluster()["nodes"]), ["cp-0"] + ["w-%d" % i for i in range(6)])
        dump = json.loads(self.ok(self.run_tool(FAKEK8S, "dump")).stdout)
        self.assertEqual(len(dump["hosts"]), 7)
        self.assertEqual(sum(1 for i in self.invocations() if i["argv"][0] == "join"), 6)


if __name__ == "__main__":
    unittest.main(verbosity=2)
