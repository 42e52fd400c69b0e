#!/usr/bin/python3
"""Shared state of the fake Kubernetes world used by tests/fakes/kubeadm and kubectl.

The "API server + etcd" of every fake cluster lives under $FAKE_K8S_STATE
(default /var/lib/fake-k8s), shared by all fake hosts of one test:

  lock                      flock(2) target; every mutation holds it exclusively
  invocations.jsonl         one JSON line per kubeadm/kubectl call (argv, rootfs, exit)
  clusters/<host>_<port>.json   one cluster, keyed by its control plane endpoint
  hosts/<rootfs key>.json   what one fake host (one --rootfs) did: node, role, ports...

Files are replaced atomically (temp + fsync + rename).  Small CLI for tests:
  fakek8s.py dump | set-node-ready EP NODE true|false | set-kubelet-version EP NODE V
             | expire-token EP TOKEN_ID | install-packages ROOTFS VERSION | nodes EP | history EP
"""
import base64, contextlib, datetime, fcntl, hashlib, json, os, random, re
import shutil, string, subprocess, sys, tempfile, time, traceback, uuid

import yaml

DEFAULT_CRI = "unix:///var/run/containerd/containerd.sock"
ETCD_IMAGE = {29: "3.5.10-0", 30: "3.5.12-0", 31: "3.5.15-0", 32: "3.5.16-0"}
COREDNS_IMAGE = {29: "v1.11.1", 30: "v1.11.1", 31: "v1.11.3", 32: "v1.11.3"}
PAUSE_IMAGE = {29: "3.9", 30: "3.9", 31: "3.10", 32: "3.10"}


class Fail(Exception):
    """A command failure: message for stderr and the exit code."""

    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.msg, self.code = msg, code


# ---------------------------------------------------------------- small utils
def now():
    return datetime.datetime.now(datetime.timezone.utc)


def ts(t=None):
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def rand(n, alphabet=string.ascii_lowercase + string.digits):
    return "".join(random.SystemRandom().choice(alphabet) for _ in range(n))


def pod_suffix():
    return rand(5, "bcdfghjklmnpqrstvwxz2456789")


def klog(level, where, msg):
    """A klog-formatted line on stderr, as kubeadm/kubectl print warnings."""
    t = datetime.datetime.now()
    sys.stderr.write("%s%s %s %7d %s] %s\n" % (level, t.strftime("%m%d"), t.strftime("%H:%M:%S.%f"),
                                                os.getpid(), where, msg))


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(s):
    """Go time.ParseDuration subset -> seconds (float); raises ValueError."""
    s = str(s).strip()
    if s in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    mult = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    for m in _DUR.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * mult[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError('time: invalid duration "%s"' % s)
    return total


def format_duration(sec):
    """Go time.Duration.String() for whole seconds."""
    sec = int(sec)
    if sec == 0:
        return "0s"
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    if h:
        return "%dh%dm%ds" % (h, m, s)
    if m:
        return "%dm%ds" % (m, s)
    return "%ds" % s


def parse_version(v):
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$", str(v))
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) or ""


def kubeadm_version():
    return os.environ.get("FAKE_KUBEADM_VERSION", "v1.30.2")


def dns1123_subdomain_errors(name):
    rx = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    errs = []
    if len(name) > 253:
        errs.append("must be no more than 253 characters")
    if not re.fullmatch(rx, name):
        errs.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                    "regex used for validation is '%s')" % rx)
    return errs


def split_host_port(ep):
    """net.SplitHostPort: returns (host, port) or raises ValueError with Go's text."""
    if ep.startswith("["):
        m = re.fullmatch(r"\[([^\]]+)\]:(\d*)", ep)
        if not m:
            raise ValueError("address %s: missing port in address" % ep)
        return m.group(1), m.group(2)
    if ep.count(":") == 0:
        raise ValueError("address %s: missing port in address" % ep)
    if ep.count(":") > 1:
        raise ValueError("address %s: too many colons in address" % ep)
    h, p = ep.split(":")
    return h, p


# ---------------------------------------------------------------- paths / rootfs
class Root:
    """Maps the paths kubeadm sees (as if chrooted into --rootfs) to real paths."""

    def __init__(self, rootfs):
        self.rootfs = os.path.abspath(rootfs) if rootfs else ""

    def __call__(self, path):
        return self.rootfs + path if self.rootfs else path

    @property
    def name(self):
        return self.rootfs or "/"


def read_text(path):
    with open(path) as f:
        return f.read()


def write_file(path, data, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def dir_nonempty(path):
    return os.path.isdir(path) and bool(os.listdir(path))


def clean_dir(path):
    """kubeadm's CleanDir: remove everything inside, keep the directory."""
    if not os.path.isdir(path):
        return
    for n in os.listdir(path):
        p = os.path.join(path, n)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)


# ---------------------------------------------------------------- PKI via openssl
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"  # the agent's PATH may be minimal


def openssl(args, inp=None):
    r = subprocess.run([OPENSSL] + args, input=inp, capture_output=True)
    if r.returncode != 0:
        raise Fail("openssl %s failed: %s" % (args[0], r.stderr.decode(errors="replace").strip()))
    return r.stdout


def gen_ca(crt, key, cn):
    os.makedirs(os.path.dirname(crt), exist_ok=True)
    openssl(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", crt, "-subj", "/CN=" + cn, "-days", "3650",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign"])
    os.chmod(key, 0o600)


def gen_cert(crt, key, ca_crt, ca_key, cn, orgs=(), sans=(), usage="clientAuth"):
    """A leaf certificate signed by the CA (ECDSA P-256 keys, 1 year)."""
    os.makedirs(os.path.dirname(crt), exist_ok=True)
    subj = "".join("/O=" + o for o in orgs) + "/CN=" + cn
    with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as cnf:
        cnf.write("[req]\ndistinguished_name=dn\n[dn]\n[ext]\nbasicConstraints=critical,CA:FALSE\n"
                  "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n" % usage)
        if sans:
            cnf.write("subjectAltName=%s\n" % ",".join(sans))
    try:
        openssl(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", key, "-out", crt, "-subj", subj, "-days", "365", "-CA", ca_crt,
                 "-CAkey", ca_key, "-config", cnf.name, "-extensions", "ext"])
    finally:
        os.unlink(cnf.name)
    os.chmod(key, 0o600)


def gen_keypair(priv, pub):
    os.makedirs(os.path.dirname(priv), exist_ok=True)
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", priv])
    openssl(["pkey", "-in", priv, "-pubout", "-out", pub])
    os.chmod(priv, 0o600)


def ca_hash(cert_pem):
    """sha256:<hex> of the DER SubjectPublicKeyInfo, as kubeadm's pubkeypin.Hash."""
    pub = openssl(["x509", "-noout", "-pubkey"], cert_pem.encode())
    der = openssl(["pkey", "-pubin", "-outform", "DER"], pub)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def cert_ok(path):
    try:
        openssl(["x509", "-noout", "-in", path])
        return True
    except Fail:
        return False


def verify_cert(cert_pem, ca_pem):
    with tempfile.TemporaryDirectory() as d:
        write_file(d + "/ca", ca_pem)
        write_file(d + "/c", cert_pem)
        r = subprocess.run([OPENSSL, "verify", "-CAfile", d + "/ca", d + "/c"], capture_output=True)
        return r.returncode == 0


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def kubeconfig(server, ca_pem, user, cert_pem=None, key_pem=None, cert_file=None, cluster="kubernetes"):
    u = {}
    if cert_file:
        u = {"client-certificate": cert_file, "client-key": cert_file}
    elif cert_pem:
        u = {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}
    ctx = "%s@%s" % (user, cluster)
    doc = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": ctx,
           "clusters": [{"name": cluster, "cluster": {"certificate-authority-data": b64(ca_pem), "server": server}}],
           "contexts": [{"name": ctx, "context": {"cluster": cluster, "user": user}}],
           "users": [{"name": user, "user": u}]}
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False)


def read_kubeconfig(path):
    """-> dict(server, ca_pem, cert_pem, token) of the current context; raises Fail."""
    try:
        kc = yaml.safe_load(read_text(path)) or {}
    except (OSError, yaml.YAMLError) as e:
        raise Fail("error loading config file \"%s\": %s" % (path, e))
    ctxs = {c.get("name"): c.get("context", {}) for c in kc.get("contexts") or []}
    ctx = ctxs.get(kc.get("current-context"), {})
    cl = {c.get("name"): c.get("cluster", {}) for c in kc.get("clusters") or []}.get(ctx.get("cluster"), {})
    us = {u.get("name"): u.get("user", {}) for u in kc.get("users") or []}.get(ctx.get("user"), {})

    def data(d, k):
        if d.get(k + "-data"):
            return base64.b64decode(d[k + "-data"]).decode()
        if d.get(k):
            # Fake-only convenience: a kubeconfig at DIR/etc/kubernetes/x.conf (a --rootfs host) refers to files
            # as that host sees them, so absolute paths missing on / are looked up under DIR too.
            m = re.match(r"^(.+)/etc/kubernetes/[^/]+$", os.path.abspath(path))
            for cand in [d[k]] + ([m.group(1) + d[k]] if m and d[k].startswith("/") else []):
                try:
                    return read_text(cand)
                except OSError:
                    pass
        return None
    if not cl.get("server"):
        raise Fail("invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER "
                   "environment variable")
    return {"server": cl["server"], "ca_pem": data(cl, "certificate-authority"),
            "cert_pem": data(us, "client-certificate"), "token": us.get("token")}


def server_endpoint(server):
    m = re.match(r"^https?://([^/]+)", server)
    ep = m.group(1) if m else server
    return ep if ":" in ep.split("]")[-1] else ep + (":443" if server.startswith("https") else ":80")


# ---------------------------------------------------------------- state store
def state_dir():
    return os.environ.get("FAKE_K8S_STATE") or "/var/lib/fake-k8s"


@contextlib.contextmanager
def locked():
    d = state_dir()
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, "lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def atomic_write_json(path, obj):
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def cluster_path(ep):
    return os.path.join(state_dir(), "clusters", re.sub(r"[:/]", "_", ep) + ".json")


def load_cluster(ep):
    return _load(cluster_path(ep))


def all_clusters():
    d = os.path.join(state_dir(), "clusters")
    out = []
    for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if n.endswith(".json"):
            c = _load(os.path.join(d, n))
            if c:
                out.append(c)
    return out


HISTORY_MAX = 5000


def cluster_snapshot(c):
    """What tests assert over time: etcd members, cordoned nodes, kubelet versions, Ready nodes."""
    nodes = c.get("nodes", {})
    return {"etcdMembers": sorted(m["name"] for m in c.get("etcdMembers", [])),
            "cordoned": sorted(n for n, o in nodes.items() if o["spec"].get("unschedulable")),
            "ready": sorted(n for n, o in nodes.items() if node_ready(o)),
            "kubeletVersions": {n: o["status"]["nodeInfo"]["kubeletVersion"] for n, o in sorted(nodes.items())}}


def save_cluster(c):
    """Every write of a cluster goes through here, under the lock: it also appends to the
    cluster's history (fake-only) whenever what tests look at over time changed, so a test can
    check a property at every moment instead of sampling it."""
    c["resourceVersion"] = c.get("resourceVersion", 0) + 1
    snap = cluster_snapshot(c)
    hist = c.setdefault("history", [])
    last = {k: v for k, v in hist[-1].items() if k != "time"} if hist else None
    if snap != last:
        hist.append(dict(snap, time=round(time.time(), 3)))
        del hist[:-HISTORY_MAX]
    atomic_write_json(cluster_path(c["endpoint"]), c)


def find_cluster(ep):
    """The cluster served at host:port: its control plane endpoint or any API server's address."""
    c = load_cluster(ep)
    if c:
        return c
    for c in all_clusters():
        for a in c.get("apiServers", {}).values():
            if "%s:%s" % (a["advertiseAddress"], a["bindPort"]) == ep:
                return c
    return None


def serving(c):
    return bool(c and c.get("apiServers"))


# ---------------------------------------------------------------- kube-system/kubeadm-config
def _rendered_cluster_configuration(c):
    """The ClusterConfiguration `kubeadm init` uploads (upload-config phase), from the cluster."""
    cc = {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
          "clusterName": c.get("clusterName") or "kubernetes",
          "controlPlaneEndpoint": c.get("controlPlaneEndpoint") or "",
          "certificatesDir": c.get("certificatesDir") or "/etc/kubernetes/pki",
          "imageRepository": c.get("imageRepository") or "registry.k8s.io",
          "kubernetesVersion": c["kubernetesVersion"],
          "networking": {"dnsDomain": c.get("dnsDomain") or "cluster.local",
                         "serviceSubnet": c.get("serviceSubnet") or "10.96.0.0/12"},
          "apiServer": {"timeoutForControlPlane": "4m0s"}, "controllerManager": {}, "scheduler": {},
          "dns": {}}
    if c.get("podSubnet"):
        cc["networking"]["podSubnet"] = c["podSubnet"]
    if c.get("etcdLocal", True):
        cc["etcd"] = {"local": {"dataDir": c.get("etcdDataDir") or "/var/lib/etcd"}}
    else:
        cc["etcd"] = {"external": {"endpoints": c.get("etcdEndpoints") or []}}
    for key, field in (("apiServerExtraArgs", "apiServer"), ("controllerManagerExtraArgs", "controllerManager"),
                       ("schedulerExtraArgs", "scheduler")):
        if c.get(key):
            cc[field]["extraArgs"] = c[key]
    if c.get("etcdExtraArgs") and "local" in cc["etcd"]:
        cc["etcd"]["local"]["extraArgs"] = c["etcdExtraArgs"]
    return cc


def kubeadm_config_map(c):
    """kube-system/kubeadm-config as the API server returns it: what was last written to it (by
    kubeadm init, upgrade apply, or a kubectl patch/replace), else what init uploaded."""
    stored = c.get("kubeadmConfig") or {}
    data = stored.get("data") or {"ClusterConfiguration": yaml.safe_dump(_rendered_cluster_configuration(c),
                                                                         sort_keys=True)}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kubeadm-config", "namespace": "kube-system",
                         "uid": stored.get("uid") or str(uuid.uuid5(uuid.NAMESPACE_URL, c["endpoint"] + "/kubeadm-config")),
                         "resourceVersion": str(stored.get("resourceVersion", 1)),
                         "creationTimestamp": c.get("createdAt") or ts()},
            "data": dict(data)}


def write_kubeadm_config(c, data):
    """A write of the ConfigMap's data (the API server takes any strings). What kubeadm reads from
    it — join the kubernetesVersion, image repository and control plane settings, upgrade the
    version — follows ClusterConfiguration; one that does not decode makes them fail as kubeadm
    fails (clusterConfigurationError)."""
    old = c.get("kubeadmConfig") or {}
    c["kubeadmConfig"] = {"resourceVersion": old.get("resourceVersion", 1) + 1, "data": dict(data)}
    c.pop("clusterConfigurationError", None)
    try:
        cc = yaml.safe_load(data.get("ClusterConfiguration") or "")
        if not isinstance(cc, dict):
            raise ValueError("no ClusterConfiguration in the ConfigMap")
        if cc.get("kind") != "ClusterConfiguration" or not str(cc.get("apiVersion", "")).startswith("kubeadm.k8s.io/"):
            raise ValueError("the ClusterConfiguration has no kind ClusterConfiguration / apiVersion "
                             "kubeadm.k8s.io/v1beta3")
        v = str(cc.get("kubernetesVersion") or "")
        if not parse_version(v):
            raise ValueError('couldn\'t parse Kubernetes version "%s"' % v)
    except (yaml.YAMLError, ValueError) as e:
        c["clusterConfigurationError"] = "failed to decode cluster configuration data: %s" % e
        return
    c["kubernetesVersion"] = v if v.startswith("v") else "v" + v
    c["imageRepository"] = cc.get("imageRepository") or "registry.k8s.io"
    c["certificatesDir"] = cc.get("certificatesDir") or "/etc/kubernetes/pki"
    for key, field in (("apiServerExtraArgs", "apiServer"), ("controllerManagerExtraArgs", "controllerManager"),
                       ("schedulerExtraArgs", "scheduler")):
        c[key] = (cc.get(field) or {}).get("extraArgs")
    c["etcdExtraArgs"] = ((cc.get("etcd") or {}).get("local") or {}).get("extraArgs")


def set_kubeadm_config_version(c, version):
    """kubeadm upgrade apply uploads the new kubernetesVersion (its upload-config phase)."""
    c["kubernetesVersion"] = version
    if c.get("kubeadmConfig"):
        cc = yaml.safe_load(c["kubeadmConfig"]["data"]["ClusterConfiguration"])
        cc["kubernetesVersion"] = version
        write_kubeadm_config(c, dict(c["kubeadmConfig"]["data"], ClusterConfiguration=yaml.safe_dump(cc, sort_keys=True)))


def host_path(rootfs):
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", rootfs.strip("/")) or "_root"
    return os.path.join(state_dir(), "hosts", key + ".json")


def load_host(rootfs):
    return _load(host_path(rootfs)) or {"rootfs": rootfs, "state": "clean", "listening": [], "history": []}


def save_host(h):
    atomic_write_json(host_path(h["rootfs"]), h)


def host_packages(rootfs):
    """The kubeadm/kubelet versions installed on a fake host (`fakek8s.py install-packages`), or {}."""
    return load_host(os.path.abspath(rootfs) if rootfs and rootfs != "/" else "/").get("packages") or {}


def log_invocation(tool, argv, rootfs, code, started):
    rec = {"tool": tool, "argv": argv, "rootfs": rootfs, "time": ts(started), "exit": code,
           "duration": round(time.time() - started.timestamp(), 3), "pid": os.getpid()}
    d = state_dir()
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, "invocations.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(rec, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def run_main(tool, main, argv):
    """Run a fake command: print Fail to stderr, log the invocation, exit with its code."""
    # Go programs write unbuffered: a reader of both pipes sees stdout and stderr in the
    # order they were written (the preflight lines before the error), as with the real tools.
    sys.stdout.reconfigure(line_buffering=True)
    started, code = now(), 0
    rootfs = ""
    for i, a in enumerate(argv):
        if a == "--rootfs" and i + 1 < len(argv):
            rootfs = argv[i + 1]
        elif a.startswith("--rootfs="):
            rootfs = a.split("=", 1)[1]
    rootfs = os.path.abspath(rootfs) if rootfs else "/"
    try:
        code = main(argv) or 0
    except Fail as e:
        if e.msg:
            sys.stderr.write(e.msg if e.msg.endswith("\n") else e.msg + "\n")
        code = e.code
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except Exception:  # a bug in the fake: say so loudly, still log the call
        sys.stderr.write("fake-k8s internal error in %s %s:\n%s" % (tool, " ".join(argv), traceback.format_exc()))
        code = 1
    sys.stdout.flush()
    try:
        log_invocation(tool, argv, rootfs, code, started)
    except OSError:
        pass
    sys.exit(code)


# ---------------------------------------------------------------- flag parsing (pflag-like)
def parse_flags(argv, spec, shorts=None, interspersed=True):
    """spec: name -> 'bool'|'str'|'list'.  Returns (values, set_names_in_order, positional, after_dashdash).
    Raises Fail with pflag's messages (exit 1)."""
    shorts = shorts or {}
    vals, seen, pos, rest = {}, [], [], []
    i = 0

    def setv(name, v):
        kind = spec[name]
        if kind == "bool":
            if v is None:
                v = "true"
            if v.lower() not in ("true", "false", "1", "0", "t", "f"):
                raise Fail('invalid argument "%s" for "--%s" flag: strconv.ParseBool: parsing "%s": invalid '
                           'syntax' % (v, name, v))
            vals[name] = v.lower() in ("true", "1", "t")
        elif kind == "list":
            vals.setdefault(name, []).extend(x for x in v.split(",") if x != "")
        else:
            if name == "v" and not re.fullmatch(r"[+-]?[0-9]+", v):
                # klog's verbosity is a Level (int32): pflag reports strconv's error.
                raise Fail('invalid argument "%s" for "-v, --v" flag: strconv.ParseInt: parsing "%s": '
                           'invalid syntax' % (v, v))
            vals[name] = v
        if name not in seen:
            seen.append(name)
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest = argv[i + 1:]
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, v = a[2:].partition("=")
            if name not in spec:
                raise Fail("unknown flag: --%s" % name)
            if not eq and spec[name] != "bool":
                if i + 1 >= len(argv):
                    raise Fail("flag needs an argument: --%s" % name)
                i += 1
                v = argv[i]
            setv(name, v if eq else (None if spec[name] == "bool" else v))
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                c = a[j]
                if c not in shorts:
                    raise Fail("unknown shorthand flag: '%s' in %s" % (c, a))
                name = shorts[c]
                if spec[name] == "bool":
                    if j + 1 < len(a) and a[j + 1] == "=":
                        setv(name, a[j + 2:])
                        break
                    setv(name, None)
                    j += 1
                    continue
                v = a[j + 1:].lstrip("=") if j + 1 < len(a) else None
                if v is None:
                    if i + 1 >= len(argv):
                        raise Fail("flag needs an argument: '%s' in %s" % (c, a))
                    i += 1
                    v = argv[i]
                setv(name, v)
                break
        else:
            pos.append(a)
            if not interspersed:
                rest = argv[i + 1:]
                break
        i += 1
    return vals, seen, pos, rest


# ---------------------------------------------------------------- API objects
def node_ready(node):
    for c in node.get("status", {}).get("conditions", []):
        if c["type"] == "Ready":
            return c["status"] == "True"
    return False


def set_ready(node, status, reason, message):
    t = ts()
    for c in node["status"]["conditions"]:
        if c["type"] == "Ready":
            if c["status"] != status:
                c["lastTransitionTime"] = t
            c.update(status=status, reason=reason, message=message, lastHeartbeatTime=t)


def new_node(name, labels, taints, provider_id, ip, kubelet_version, cri_socket):
    t = ts()
    cond = [{"type": ty, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": t,
             "lastTransitionTime": t} for ty, r, m in (
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "KubeletReady", "kubelet is posting ready status"))]
    cond[-1]["status"] = "True"
    spec = {}
    if provider_id:
        spec["providerID"] = provider_id
    if taints:
        spec["taints"] = taints
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": t, "labels": labels,
                         "annotations": {"kubeadm.alpha.kubernetes.io/cri-socket": cri_socket,
                                         "node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "conditions": cond,
                       "nodeInfo": {"architecture": "amd64", "bootID": str(uuid.uuid4()),
                                    "containerRuntimeVersion": "containerd://1.7.13",
                                    "kernelVersion": os.uname().release, "kubeProxyVersion": kubelet_version,
                                    "kubeletVersion": kubelet_version, "machineID": uuid.uuid4().hex,
                                    "operatingSystem": "linux", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "systemUUID": str(uuid.uuid4())}}}


def new_pod(ns, name, node, owner_kind=None, owner_name=None, empty_dir=False, mirror=False):
    meta = {"name": name, "namespace": ns, "uid": str(uuid.uuid4()), "creationTimestamp": ts()}
    if owner_kind:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
                                    "controller": True, "uid": str(uuid.uuid4())}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": uuid.uuid4().hex, "kubernetes.io/config.source": "file"}
    vols = [{"name": "scratch", "emptyDir": {}}] if empty_dir else []
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "volumes": vols, "containers": [{"name": name.split("-")[0], "image": "x"}]},
            "status": {"phase": "Running"}}


def add_node_pods(c, node, control_plane):
    """Fake workload: kube-proxy (DaemonSet) everywhere, mirror pods on control planes, coredns on the
    first node, FAKE_PODS_PER_NODE (default 2) ReplicaSet pods with emptyDir on workers."""
    pods = c.setdefault("pods", {})

    def add(p):
        pods["%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"])] = p
    add(new_pod("kube-system", "kube-proxy-" + pod_suffix(), node, "DaemonSet", "kube-proxy"))
    if control_plane:
        for comp in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            if comp == "etcd" and not c.get("etcdLocal", True):
                continue
            add(new_pod("kube-system", "%s-%s" % (comp, node), node, mirror=True))
        if not any(k.startswith("kube-system/coredns-") for k in pods):
            for _ in range(2):
                add(new_pod("kube-system", "coredns-7db6d8ff4d-" + pod_suffix(), node, "ReplicaSet",
                            "coredns-7db6d8ff4d"))
    else:
        for _ in range(int(os.environ.get("FAKE_PODS_PER_NODE", "2"))):
            add(new_pod("default", "app-6d8b9c7f4-" + pod_suffix(), node, "ReplicaSet", "app-6d8b9c7f4",
                        empty_dir=True))


def pods_on(c, node):
    return sorted((k for k, p in c.get("pods", {}).items() if p["spec"]["nodeName"] == node))


def new_member_id():
    return "%x" % random.SystemRandom().randrange(1 << 60, 1 << 64)


# ---------------------------------------------------------------- test CLI
def _cli(argv):
    usage = ("usage: fakek8s.py dump | set-node-ready EP NODE true|false | set-kubelet-version EP NODE V"
             " | expire-token EP TOKEN_ID | install-packages ROOTFS VERSION | nodes EP | history EP")
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    cmd = argv[0]
    if cmd == "dump":
        out = {"stateDir": state_dir(), "clusters": {c["endpoint"]: c for c in all_clusters()}, "hosts": {}}
        hd = os.path.join(state_dir(), "hosts")
        for n in sorted(os.listdir(hd)) if os.path.isdir(hd) else []:
            h = _load(os.path.join(hd, n))
            if h:
                out["hosts"][h["rootfs"]] = h
        json.dump(out, sys.stdout, indent=1, sort_keys=True)
        print()
        return 0
    if cmd == "install-packages" and len(argv) == 3:
        # Stands in for `apt-get install kubeadm=V kubelet=V` on one host: the fake kubeadm run
        # with --rootfs ROOTFS then is version V, and the kubelet it starts reports V.
        v = argv[2] if argv[2].startswith("v") else "v" + argv[2]
        if not parse_version(v):
            print("install-packages: not a version: %s" % argv[2], file=sys.stderr)
            return 2
        root = os.path.abspath(argv[1])
        if not os.path.isdir(root):
            print("install-packages: %s: no such directory" % argv[1], file=sys.stderr)
            return 1
        with locked():
            h = load_host(root)
            h["packages"] = {"kubeadm": v, "kubelet": v}
            h.setdefault("history", []).append({"time": ts(), "op": "install-packages " + v})
            save_host(h)
        print("Setting up kubeadm (%s-1.1) ...\nSetting up kubelet (%s-1.1) ..." % (v[1:], v[1:]))
        return 0
    if cmd in ("nodes", "history") and len(argv) == 2:
        c = find_cluster(argv[1])
        if not c:
            print("no cluster at %s" % argv[1], file=sys.stderr)
            return 1
        if cmd == "history":
            json.dump(c.get("history", []), sys.stdout)
        else:
            json.dump({n: {"ready": node_ready(o), "unschedulable": bool(o["spec"].get("unschedulable")),
                           "kubeletVersion": o["status"]["nodeInfo"]["kubeletVersion"]}
                       for n, o in sorted(c.get("nodes", {}).items())}, sys.stdout, sort_keys=True)
        print()
        return 0
    if len(argv) == {"set-node-ready": 4, "set-kubelet-version": 4, "expire-token": 3}.get(cmd):
        with locked():
            c = find_cluster(argv[1])
            if not c:
                print("no cluster at %s" % argv[1], file=sys.stderr)
                return 1
            if cmd == "expire-token":
                tid = argv[2].split(".")[0]
                if tid not in c.get("tokens", {}):
                    print("no token %s" % tid, file=sys.stderr)
                    return 1
                c["tokens"][tid]["expires"] = ts(now() - datetime.timedelta(seconds=1))
            else:
                # NODE may be a comma-separated list: all change in one write, at one time.
                names = argv[2].split(",")
                missing = [n for n in names if n not in c.get("nodes", {})]
                if missing:
                    print('nodes "%s" not found' % missing[0], file=sys.stderr)
                    return 1
                if cmd == "set-node-ready" and argv[3] not in ("true", "false"):
                    print(usage, file=sys.stderr)
                    return 2
                for n in names:
                    node = c["nodes"][n]
                    if cmd == "set-kubelet-version":
                        node["status"]["nodeInfo"]["kubeletVersion"] = argv[3]
                    elif argv[3] == "true":
                        set_ready(node, "True", "KubeletReady", "kubelet is posting ready status")
                    else:
                        set_ready(node, "False", "KubeletNotReady", "fake-k8s: marked NotReady by a test")
            save_cluster(c)
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
