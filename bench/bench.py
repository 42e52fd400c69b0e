#!/usr/bin/python3
"""Anvil's benchmark driver (run by bench/run.sh; see docs/performance.md).

Per size N (simulated hosts): the bare ZeroMQ floor (anvil-zmqfloor + anvil-loadgen --floor),
then a real anvil-coordinator with N simulated agents (anvil-loadgen): enrollment, steady
state at 10 s heartbeats (CPU from /proc/PID/stat, RSS), a desired change to every host
(fan-out until every ACK), a coordinator restart (reconnect + resync), and a MachineDeployment
of up to 1,000 replicas (claims + bootstrap data delivered). Then the store benchmark and the
real agent's footprint. Prints a table, writes JSON to bench/results/, and with --baseline
compares against a committed baseline (fails on a regression beyond --ratio).

Times are CLOCK_MONOTONIC (time.monotonic_ns here, now_usec(CLOCK_MONOTONIC) in the C
programs): one clock for every process on the machine.
"""
import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time

import msgpack
import zmq

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def now_usec():
    return time.monotonic_ns() // 1000


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


# Correctness failures (a host that never enrolled, a change not acknowledged everywhere, a
# MachineDeployment not delivered): reported and fail the run whatever the timings.
PROBLEMS = []


def problem(msg):
    log("PROBLEM: " + msg)
    PROBLEMS.append(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def wait_for(what, fn, timeout, interval=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


# ---- processes ----

def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def proc_mem_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[k] = int(v.split()[0])
    # The proportional share: shared library pages divided among every process mapping them.
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


class Coordinator:
    def __init__(self, build, work, env=None):
        self.build, self.work = build, work
        os.makedirs(work, exist_ok=True)
        self.port, self.mport = free_port(), free_port()
        self.sock = os.path.join(work, "admin.sock")
        self.proc = None
        self.env = dict(os.environ, **(env or {}))
        self.zctx = zmq.Context.instance()

    @property
    def endpoint(self):
        return f"tcp://127.0.0.1:{self.port}"

    def start(self):
        t0 = now_usec()
        logf = open(os.path.join(self.work, "coordinator.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "coordinator/anvil-coordinator"), "--listen", self.endpoint,
             "--admin-socket", self.sock, "--state-dir", os.path.join(self.work, "state"),
             "--metrics-listen", f"127.0.0.1:{self.mport}"],
            stdout=logf, stderr=logf, env=self.env)
        wait_for("the coordinator", lambda: os.path.exists(self.sock) and self.try_info(), 120, 0.02)
        self.ready_usec = now_usec() - t0
        return t0

    def try_info(self):
        try:
            r = self.admin({"op": "info"}, timeout=1000)
            self.public_key = r["object"]["publicKey"]
            return True
        except Exception:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(60)
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def admin_many(self, reqs, timeout=600000):
        """Sends every request at once on one connection; returns [(reply, recv_usec)]."""
        s = self.zctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, timeout)
        s.connect("ipc://" + self.sock)
        try:
            for req in reqs:
                s.send(msgpack.packb([1, "API_REQUEST", req]))
            out = []
            for _ in reqs:
                msg = s.recv()
                out.append((msgpack.unpackb(msg, raw=False)[2], now_usec()))
            return out
        finally:
            s.close()

    def admin(self, req, timeout=600000):
        reply = self.admin_many([req], timeout)[0][0]
        if not reply.get("ok"):
            raise RuntimeError(f"{req.get('op')}: {reply.get('message')} {reply.get('problems', '')}")
        return reply

    def apply(self, text, name="bench.yaml"):
        return self.admin({"op": "apply", "file": name, "content": text})

    def token(self, uses, labels):
        r = self.admin({"op": "token-create", "uses": uses, "labels": labels, "ttlSeconds": 86400})
        return r["text"].strip().split()[-1] if r.get("text") else r["object"]["token"]

    def metrics(self):
        import urllib.request
        out = {}
        with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics", timeout=10) as f:
            for line in f.read().decode().splitlines():
                if not line or line.startswith("#"):
                    continue
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def get(self, kind, name, ns=None):
        req = {"op": "get", "kind": kind, "name": name}
        if ns:
            req["namespace"] = ns
        return self.admin(req)["items"][0]


class Fleet:
    """anvil-loadgen processes simulating hosts first..first+n-1."""

    def __init__(self, build, work, endpoint, key, n, token=None, first=0, per_proc=2500,
                 prefix="bench", heartbeat_ms=10000, provision_ms=5000, floor=False):
        self.dir = os.path.join(work, "fleet-" + prefix + ("-floor" if floor else ""))
        os.makedirs(self.dir, exist_ok=True)
        self.procs = []
        self.firsts = []
        i = first
        while i < first + n:
            cnt = min(per_proc, first + n - i)
            cmd = [os.path.join(build, "bench/anvil-loadgen"), "--coordinator", endpoint,
                   "--coordinator-key", key, "--dir", self.dir, "--first", str(i),
                   "--count", str(cnt), "--heartbeat", str(heartbeat_ms),
                   "--provision-delay", str(provision_ms), "--prefix", prefix]
            cmd += ["--floor"] if floor else ["--token", token]
            logf = open(os.path.join(self.dir, f"loadgen-{i}.log"), "ab")
            self.procs.append(subprocess.Popen(cmd, stdout=logf, stderr=logf))
            self.firsts.append(i)
            i += cnt
        self.n = n

    def status(self):
        tot = {}
        for f in self.firsts:
            try:
                with open(os.path.join(self.dir, f"status-{f}.json")) as fh:
                    d = json.load(fh)
            except (OSError, ValueError):
                continue
            for k, v in d.items():
                tot[k] = tot.get(k, 0) + v
        return tot

    def dump(self):
        """The events every process recorded since its last dump."""
        for f in self.firsts:
            try:
                os.unlink(os.path.join(self.dir, f"events-{f}.tsv"))
            except FileNotFoundError:
                pass
        for p in self.procs:
            p.send_signal(signal.SIGUSR1)
        events = []
        for f in self.firsts:
            path = os.path.join(self.dir, f"events-{f}.tsv")
            wait_for("a load generator's events", lambda: os.path.exists(path), 30, 0.02)
            with open(path) as fh:
                for line in fh:
                    parts = line.split()
                    if parts[0] == "D":
                        events.append(("D", int(parts[1]), int(parts[2]), parts[3],
                                       int(parts[4]), int(parts[5])))
                    elif parts[0] == "C":
                        events.append(("C", int(parts[1]), int(parts[2])))
        return events

    def cpu_seconds(self):
        return sum(proc_cpu_seconds(p.pid) for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


# ---- scenarios ----

def steady_state(pid, window, fleet=None):
    """CPU of pid (percent of one core) over window seconds, and its memory at the end."""
    c0, t0 = proc_cpu_seconds(pid), time.monotonic()
    f0 = fleet.cpu_seconds() if fleet else 0
    time.sleep(window)
    c1, t1 = proc_cpu_seconds(pid), time.monotonic()
    out = {"cpuPercent": round(100 * (c1 - c0) / (t1 - t0), 2), "windowSeconds": window}
    if fleet:
        out["loadgenCpuPercent"] = round(100 * (fleet.cpu_seconds() - f0) / (t1 - t0), 1)
    out.update({k: v for k, v in proc_mem_kib(pid).items()})
    out["openFds"] = len(os.listdir(f"/proc/{pid}/fd"))
    out["threads"] = len(os.listdir(f"/proc/{pid}/task"))
    return out


def latency_stats(values_usec):
    ms = [v / 1000 for v in values_usec]
    return {"n": len(ms), "p50Ms": round(pct(ms, 50), 2), "p99Ms": round(pct(ms, 99), 2),
            "maxMs": round(max(ms), 2)} if ms else {"n": 0}


def run_floor(args, n, work):
    log(f"floor: {n} bare CURVE connections")
    fl = subprocess.Popen([os.path.join(args.build, "bench/anvil-zmqfloor"),
                           f"tcp://127.0.0.1:{free_port()}"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, bufsize=1)
    endpoint = fl.args[1]
    key = json.loads(fl.stdout.readline())["publicKey"]
    t0 = time.monotonic()
    fleet = Fleet(args.build, work, endpoint, key, n, per_proc=args.per_proc, floor=True)
    res = {}
    try:
        def peers():
            fl.stdin.write("peers\n")
            return json.loads(fl.stdout.readline())["peers"] >= n
        wait_for("floor connections", peers, 300, 0.2)
        res["connectSeconds"] = round(time.monotonic() - t0, 2)
        time.sleep(args.settle)
        res["steady"] = steady_state(fl.pid, args.window)
        runs = []
        for _ in range(args.runs):
            fleet.dump()
            fl.stdin.write(f"fanout {args.floor_size}\n")
            r = json.loads(fl.stdout.readline())
            ev = [e for e in fleet.dump() if e[0] == "D"]
            lat = latency_stats([e[5] - r["t0"] for e in ev])
            lat["allAckedMs"] = round(r["allUsec"] / 1000, 2)
            runs.append(lat)
            time.sleep(0.5)
        res["fanout"] = summarize_runs(runs)
        res["fanout"]["messageBytes"] = args.floor_size
    finally:
        fleet.stop()
        fl.stdin.close()
        fl.wait(30)
    return res


def summarize_runs(runs, keep_runs=True):
    """The median of each figure over the runs (nested figures too), and the runs."""
    out = {}
    for k, v in runs[0].items():
        if isinstance(v, dict):
            out[k] = summarize_runs([r.get(k, {}) for r in runs], keep_runs=False)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = median([r.get(k) for r in runs])
    if keep_runs:
        out["runs"] = runs
    return out


def hosts_yaml(first, n, paused):
    docs = []
    for i in range(first, first + n):
        docs.append("apiVersion: infrastructure.anvil.dev/v1alpha1\nkind: Host\n"
                    f"metadata:\n  name: bench-{i:05d}\nspec:\n  paused: {'true' if paused else 'false'}\n")
    return "---\n".join(docs)


def fanout_change(co, fleet, n, paused):
    """Pauses (or unpauses) every host: one desired change each. The change is applied in
    files of 1,000 documents (apply's limit is 1,024), sent together; each host's latency is
    from the reply to its file (sent after the commit, just before the fan-out) to its ACK."""
    fleet.dump()
    reqs, batches = [], []
    for first in range(0, n, 1000):
        cnt = min(1000, n - first)
        reqs.append({"op": "apply", "file": f"hosts-{first}.yaml",
                     "content": hosts_yaml(first, cnt, paused)})
        batches.append((first, cnt))
    t_send = now_usec()
    replies = co.admin_many(reqs)
    for r, _ in replies:
        if not r.get("ok"):
            raise RuntimeError(f"apply: {r.get('message')}")
    t_reply = {first: t for (first, _), (_, t) in zip(batches, replies)}

    def all_acked():
        m = co.metrics()
        return m.get("anvil_fanout_pending_acks", 1) == 0 and now_usec()
    t_all = wait_for("every ACK", all_acked, 120, 0.02)
    # Only this change's deliveries (a late one of the run before would count otherwise).
    ev = [e for e in fleet.dump() if e[0] == "D" and e[4] >= t_send]
    hosts = {e[1] for e in ev}
    if len(hosts) != n:
        problem(f"fan-out to {n}: {len(hosts)} hosts acknowledged the change")
    lat = []
    for e in ev:
        first = (e[1] // 1000) * 1000
        lat.append(e[5] - t_reply[first])
    out = latency_stats(lat)
    out["allAckedMs"] = round((t_all - max(t_reply.values())) / 1000, 2)
    out["applyMs"] = round((max(t_reply.values()) - t_send) / 1000, 2)
    out["replySpreadMs"] = round((max(t_reply.values()) - min(t_reply.values())) / 1000, 2)
    return out


def restart(co, fleet, n_total):
    co.stop()
    t0 = co.start()
    ready = co.ready_usec

    def back():
        m = co.metrics()
        return (m.get("anvil_agents_connected", 0) >= n_total and
                m.get("anvil_fanout_pending_acks", 1) == 0 and now_usec())
    t_end = wait_for("every agent back", back, 180, 0.05)
    conns = [e[2] - t0 for e in fleet.dump() if e[0] == "C"]
    # The herd: the most connections made in any 100 ms.
    buckets = {}
    for c in conns:
        buckets[c // 100000] = buckets.get(c // 100000, 0) + 1
    return {"allBackSeconds": round((t_end - t0) / 1e6, 2), "readySeconds": round(ready / 1e6, 2),
            "reconnects": latency_stats(conns),
            "peakReconnectsPer100ms": max(buckets.values()) if buckets else 0}


CLUSTER = """apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: bench, namespace: default}
spec:
  clusterNetwork:
    pods: {cidrBlocks: ["192.168.0.0/16"]}
    services: {cidrBlocks: ["10.96.0.0/12"]}
  controlPlaneRef: {apiVersion: controlplane.cluster.x-k8s.io/v1beta1, kind: KubeadmControlPlane, name: bench-cp}
  infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilCluster, name: bench}
---
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilCluster
metadata: {name: bench, namespace: default}
spec:
  controlPlaneEndpoint: {host: 10.200.0.10, port: 6443}
---
apiVersion: controlplane.cluster.x-k8s.io/v1beta1
kind: KubeadmControlPlane
metadata: {name: bench-cp, namespace: default}
spec:
  replicas: 1
  version: v1.30.2
  machineTemplate:
    infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilMachineTemplate, name: bench-cp}
  kubeadmConfigSpec:
    clusterConfiguration: {}
    initConfiguration: {}
    joinConfiguration: {}
---
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata: {name: bench-cp, namespace: default}
spec:
  template:
    spec:
      hostSelector: {matchLabels: {role: control-plane}}
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata: {name: bench-md, namespace: default}
spec:
  template:
    spec:
      joinConfiguration: {}
---
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata: {name: bench-md, namespace: default}
spec:
  template:
    spec:
      hostSelector: {matchLabels: {role: worker}}
"""

MD = """apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineDeployment
metadata: {name: bench-md, namespace: default}
spec:
  clusterName: bench
  replicas: %d
  selector: {matchLabels: {}}
  template:
    spec:
      clusterName: bench
      version: v1.30.2
      bootstrap:
        configRef: {apiVersion: bootstrap.cluster.x-k8s.io/v1beta1, kind: KubeadmConfigTemplate, name: bench-md}
      infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilMachineTemplate, name: bench-md}
"""


def machine_deployment(co, fleet, replicas):
    t = time.monotonic()
    co.apply(CLUSTER, "cluster.yaml")

    def initialized():
        c = co.get("Cluster", "bench", "default")
        return any(x["type"] == "ControlPlaneInitialized" and x["status"] == "True"
                   for x in c.get("status", {}).get("conditions", []))
    wait_for("the control plane", initialized, 180, 0.25)
    setup = time.monotonic() - t
    fleet.dump()
    t0 = [now_usec()]
    r = co.admin_many([{"op": "apply", "file": "md.yaml", "content": MD % replicas}])[0]
    if not r[0].get("ok"):
        raise RuntimeError(f"apply md: {r[0].get('message')}")
    t0 = r[1]
    got = {}

    def delivered():
        for e in fleet.dump():
            if e[0] == "D" and e[3] == "P":
                got.setdefault(e[1], e[5])
        return len(got) >= replicas
    try:
        wait_for("every machine's bootstrap data", delivered, args_md_timeout, 0.5)
        ok = True
    except TimeoutError:
        ok = False
        problem(f"MachineDeployment of {replicas}: bootstrap data reached {len(got)} hosts")
    lat = [v - t0 for v in got.values()]
    out = {"replicas": replicas, "delivered": len(got), "complete": ok,
           "setupSeconds": round(setup, 1)}
    if lat:
        out["allDeliveredSeconds"] = round(max(lat) / 1e6, 2) if ok else None
        out["p50Seconds"] = round(pct(lat, 50) / 1e6, 2)
    return out


args_md_timeout = 300


class perf:
    """perf record -g of pid while a scenario runs, when --perf names it."""

    def __init__(self, args, name, pid, work):
        self.on = name in args.perf.split(",")
        self.cmd = ["perf", "record", "-g", "-F", "499", "-o",
                    os.path.join(work, f"perf-{name}.data"), "-p", str(pid)]

    def __enter__(self):
        if self.on:
            self.p = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)

    def __exit__(self, *exc):
        if self.on:
            self.p.send_signal(signal.SIGINT)
            self.p.wait(60)


def run_anvil(args, n, work):
    res = {}
    co = Coordinator(args.build, work)
    co.start()
    fleet = cp = None
    try:
        token = co.token(n + 10, {"role": "worker"})
        cp_token = co.token(1, {"role": "control-plane"})
        log(f"anvil: {n} simulated agents enrolling")
        t0 = time.monotonic()
        fleet = Fleet(args.build, work, co.endpoint, co.public_key, n, token=token,
                      per_proc=args.per_proc, provision_ms=args.provision_ms)
        cp = Fleet(args.build, work, co.endpoint, co.public_key, 1, token=cp_token,
                   first=90000, prefix="cp", provision_ms=args.provision_ms)

        def all_in():
            return co.metrics().get("anvil_agents_connected", 0) >= n + 1
        wait_for("every agent enrolled and connected", all_in, 900, 0.25)
        res["enrollSeconds"] = round(time.monotonic() - t0, 2)
        res["enrollPerSecond"] = round(n / res["enrollSeconds"], 0)
        time.sleep(1.2)  # the load generators write their counts every second
        st = fleet.status()
        res["loadgen"] = st
        if st.get("enrolled") != n or st.get("refused", 0) != 0:
            problem(f"{n} simulated agents: {st.get('enrolled')} enrolled, "
                    f"{st.get('refused')} refused")
        skip = set(args.skip.split(","))
        res["phaseSeconds"] = {"enroll": res["enrollSeconds"]}
        phase = [time.monotonic()]

        def done(name):
            t = time.monotonic()
            res["phaseSeconds"][name] = round(t - phase[0], 1)
            phase[0] = t
        if "steady" not in skip:
            log(f"anvil: steady state ({args.settle}s settle, {args.window}s window)")
            time.sleep(args.settle)
            with perf(args, "steady", co.pid, work):
                res["steady"] = steady_state(co.pid, args.window, fleet)
            t = time.monotonic()
            co.metrics()
            res["scrapeMs"] = round((time.monotonic() - t) * 1000, 2)
            done("steady")
        if "fanout" not in skip:
            log("anvil: fan-out")
            runs = []
            with perf(args, "fanout", co.pid, work):
                for i in range(args.runs):
                    runs.append(fanout_change(co, fleet, n, paused=(i % 2 == 0)))
                    time.sleep(1)
            if args.runs % 2 == 1:
                fanout_change(co, fleet, n, paused=False)  # hosts must be claimable below
            res["fanout"] = summarize_runs(runs)
            done("fanout")
        if "restart" not in skip:
            log("anvil: restart")
            runs = []
            for i in range(args.restarts):
                runs.append(restart(co, fleet, n + 1))
                time.sleep(2)
            res["restart"] = summarize_runs(runs)
            res["afterRestart"] = proc_mem_kib(co.pid)
            done("restart")
        if "md" not in skip:
            log(f"anvil: MachineDeployment of {min(n, args.md_replicas)}")
            with perf(args, "md", co.pid, work):
                res["md"] = machine_deployment(co, fleet, min(n, args.md_replicas))
            res["afterMd"] = proc_mem_kib(co.pid)
            done("md")
        m = co.metrics()
        res["storeCommits"] = m.get("anvil_store_commits_total")
        res["storeWrites"] = m.get("anvil_store_writes_total")
    finally:
        for f in (fleet, cp):
            if f:
                f.stop()
        co.stop()
    return res


def run_store(args, work):
    out = {}
    for batch in args.store_batches:
        r = subprocess.run([os.path.join(args.build, "bench/anvil-storebench"), "--dir",
                            os.path.join(work, "store"), "--writes", str(args.store_writes),
                            "--batch", str(batch)], capture_output=True, text=True, check=True)
        out[str(batch)] = json.loads(r.stdout)
    return out


AGENT_YAML = """coordinator: {endpoint}
coordinator-key: "{key}"
token: "{token}"
state-dir: {dir}/state
product-uuid: 00000000-0000-4000-8000-{n:012d}
hostname: footprint
host-root: {dir}/root
kubeadm: {src}/tests/fakes/kubeadm
kubectl: {src}/tests/fakes/kubectl
cmdline: /dev/null
heartbeat-interval: 10s
environment:
  - PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  - FAKE_K8S_STATE={dir}/fake-k8s
  - FAKE_NODE_IP=127.0.0.2
"""


def run_agent(args, work):
    """The real anvil-agent: memory and CPU idle after enrolling, and during a provision."""
    subprocess.run(["rm", "-rf", work], check=True)  # a Host left provisioned by the last run
    co = Coordinator(args.build, work)
    co.start()
    d = os.path.join(work, "agent")
    os.makedirs(os.path.join(d, "root"), exist_ok=True)
    os.makedirs(os.path.join(d, "fake-k8s"), exist_ok=True)
    token = co.token(1, {"role": "control-plane"})
    with open(os.path.join(d, "agent.yaml"), "w") as f:
        f.write(AGENT_YAML.format(endpoint=co.endpoint, key=co.public_key, token=token, dir=d,
                                  src=SRC, n=1))
    env = dict(os.environ, FAKE_K8S_STATE=os.path.join(d, "fake-k8s"), ANVIL_LOG_LEVEL="info")
    logf = open(os.path.join(d, "agent.log"), "ab")
    agent = subprocess.Popen([os.path.join(args.build, "agent/anvil-agent"), "--config",
                              os.path.join(d, "agent.yaml")], stdout=logf, stderr=logf, env=env)
    res = {}
    try:
        wait_for("the agent", lambda: co.metrics().get("anvil_agents_connected", 0) >= 1, 60)
        time.sleep(2)
        res["idle"] = steady_state(agent.pid, args.agent_idle)
        # A provision: the fake kubeadm runs; sample the agent's memory meanwhile.
        co.apply(CLUSTER, "cluster.yaml")
        peak, samples = {}, 0

        def provisioned():
            nonlocal samples
            m = proc_mem_kib(agent.pid)
            samples += 1
            for k, v in m.items():
                peak[k] = max(peak.get(k, 0), v)
            h = co.get("Host", "footprint")
            return h.get("status", {}).get("phase") == "Provisioned"
        c0, t0 = proc_cpu_seconds(agent.pid), time.monotonic()
        wait_for("the agent's provision", provisioned, 180, 0.05)
        res["provision"] = {"peak": peak, "samples": samples,
                            "seconds": round(time.monotonic() - t0, 1),
                            "cpuSeconds": round(proc_cpu_seconds(agent.pid) - c0, 2)}
        time.sleep(2)
        res["afterProvision"] = proc_mem_kib(agent.pid)
        with open(f"/proc/{agent.pid}/status") as f:
            res["threads"] = int([l for l in f if l.startswith("Threads:")][0].split()[1])
    finally:
        agent.terminate()
        agent.wait(30)
        co.stop()
    return res


# ---- report ----

def fmt(v, unit="", nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}{unit}"
    return f"{v}{unit}"


def table(results):
    """The issue's table: one row per size, then the store and the real agent."""
    lines = []
    hdr = ("hosts", "fan-out p50/p99/max ms", "all acked ms", "floor p50/max ms", "CPU %",
           "RSS MiB", "floor MiB", "KiB/host", "restart s", "MD s", "enroll/s")
    lines.append(" | ".join(hdr))
    lines.append(" | ".join("---" for _ in hdr))
    for n, r in sorted(results["sizes"].items(), key=lambda x: int(x[0])):
        a, fl = r.get("anvil", {}), r.get("floor", {})
        rss = a.get("steady", {}).get("VmRSS")
        frss = fl.get("steady", {}).get("VmRSS")
        fo, ff = a.get("fanout", {}), fl.get("fanout", {})
        md = a.get("md", {})
        md_s = md.get("allDeliveredSeconds")
        lines.append(" | ".join([
            str(n), f"{fmt(fo.get('p50Ms'))}/{fmt(fo.get('p99Ms'))}/{fmt(fo.get('maxMs'))}",
            fmt(fo.get("allAckedMs")), f"{fmt(ff.get('p50Ms'))}/{fmt(ff.get('maxMs'))}",
            fmt(a.get("steady", {}).get("cpuPercent"), nd=2),
            fmt(rss / 1024 if rss else None), fmt(frss / 1024 if frss else None),
            fmt(per_host_kib(r), nd=2), fmt(a.get("restart", {}).get("allBackSeconds"), nd=2),
            (f"{fmt(md_s, nd=2)} ({md.get('replicas')})" if md else "-"),
            fmt(a.get("enrollPerSecond"), nd=0)]))
    s = results.get("store")
    if s:
        for b, v in s.items():
            lines.append(f"store, batches of {b}: raw {v['raw']['writesPerSecond']:.0f}/s, "
                         f"object create {v['create']['writesPerSecond']:.0f}/s, "
                         f"status update {v['status']['writesPerSecond']:.0f}/s (fsync'd)")
    ag = results.get("agent")
    if ag and "idle" in ag:
        i, p = ag["idle"], ag.get("provision", {}).get("peak", {})
        lines.append(f"agent idle ({i['windowSeconds']:.0f} s): RssAnon {i['RssAnon'] / 1024:.2f} MiB, "
                     f"VmRSS {i['VmRSS'] / 1024:.2f} MiB, CPU {i['cpuPercent']:.2f}%; "
                     f"peak during a provision: RssAnon {p.get('RssAnon', 0) / 1024:.2f} MiB, "
                     f"VmRSS {p.get('VmRSS', 0) / 1024:.2f} MiB")
    return "\n".join(lines)


def per_host_kib(r):
    """Coordinator RSS above the bare ZeroMQ floor, per host (KiB)."""
    rss = r.get("anvil", {}).get("steady", {}).get("VmRSS")
    frss = r.get("floor", {}).get("steady", {}).get("VmRSS")
    return (rss - frss) / int(r["hosts"]) if rss and frss else None


# Lower is better unless listed in HIGHER. The paths into a result and a floor of
# absolute slack (tiny values on a shared machine jitter by more than any ratio).
CHECKS = [
    ("anvil.steady.cpuPercent", 2.0),
    ("anvil.steady.VmRSS", 8192),
    ("anvil.fanout.p99Ms", 50),
    ("anvil.fanout.allAckedMs", 100),
    ("anvil.restart.allBackSeconds", 2),
    ("anvil.md.allDeliveredSeconds", 2),
    ("anvil.enrollSeconds", 2),
    ("anvil.scrapeMs", 20),
]
HIGHER = [("store.1000.create.writesPerSecond",), ("store.1000.status.writesPerSecond",)]


def dig(d, path):
    for p in path.split("."):
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def strip_runs(d):
    """The figures without each run's own (the medians stay): what a baseline keeps."""
    if isinstance(d, dict):
        return {k: strip_runs(v) for k, v in d.items() if k != "runs"}
    return d


def compare(results, baseline, ratio):
    """Figures worse than ratio x the baseline's. A figure missing from the results (its
    scenario skipped, or failed: that is a PROBLEM already) is not compared."""
    bad = []
    for n, base in baseline["sizes"].items():
        cur = results["sizes"].get(n)
        if not cur:
            continue
        for path, slack in CHECKS:
            b, c = dig(base, path), dig(cur, path)
            if b is None:
                continue
            if c is not None and c > b * ratio + slack:
                bad.append(f"{n} hosts: {path} = {c} (baseline {b}, limit {b * ratio + slack:.2f})")
    for (path,) in HIGHER:
        b, c = dig(baseline, path), dig(results, path)
        if b is not None and c is not None and c < b / ratio:
            bad.append(f"{path} = {c} (baseline {b}, limit {b / ratio:.0f})")
    ab, ac = dig(baseline, "agent.idle.RssAnon"), dig(results, "agent.idle.RssAnon")
    if ab is not None and ac is not None and ac > ab * ratio + 512:
        bad.append(f"agent.idle.RssAnon = {ac} KiB (baseline {ab})")
    return bad


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "memoryMiB": mem // 1024,
            "kernel": platform.release(), "load": os.getloadavg()}


QUICK = {"sizes": "100", "settle": 1, "window": 5, "runs": 2, "restarts": 1, "md_replicas": 50,
         "provision_ms": 500, "store_writes": 10000, "store_batches": "1000", "agent_idle": 5}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--per-proc", type=int, default=2500)
    p.add_argument("--settle", type=float, default=15, help="seconds before the steady window")
    p.add_argument("--window", type=float, default=30, help="steady-state window, seconds")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--md-replicas", type=int, default=1000)
    p.add_argument("--provision-ms", type=int, default=5000)
    p.add_argument("--floor-size", type=int, default=1024)
    p.add_argument("--store-writes", type=int, default=50000)
    p.add_argument("--store-batches", default="100,1000")
    p.add_argument("--agent-idle", type=float, default=60)
    p.add_argument("--skip", default="",
                   help="comma list: floor,anvil,store,agent,steady,fanout,restart,md")
    p.add_argument("--perf", default="", help="comma list of scenarios to record with perf")
    p.add_argument("--out")
    p.add_argument("--baseline")
    p.add_argument("--ratio", type=float, default=3.0)
    p.add_argument("--check", action="store_true",
                   help="exit 1 on a regression beyond --ratio of --baseline (else only report)")
    p.add_argument("--write-baseline", action="store_true",
                   help="store this run's figures as --baseline's for this mode (quick or full)")
    p.add_argument("--quick", action="store_true",
                   help="100 hosts, short windows, few runs: a smoke run (well under a minute)")
    args = p.parse_args()
    if args.quick:
        # Only what was not given explicitly on the command line.
        given = {a.split("=")[0] for a in sys.argv[1:] if a.startswith("--")}
        for k, v in QUICK.items():
            if "--" + k.replace("_", "-") not in given:
                setattr(args, k, v)
    args.store_batches = [int(x) for x in args.store_batches.split(",") if x]
    skip = set(args.skip.split(","))
    os.makedirs(args.work, exist_ok=True)
    results = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "settings": {k: v for k, v in vars(args).items() if k not in ("out", "baseline")},
               "sizes": {}}
    t_all = time.monotonic()

    def scenario(name, fn, *a):
        try:
            return fn(*a)
        except (TimeoutError, RuntimeError, subprocess.CalledProcessError, OSError) as e:
            problem(f"{name}: {e}")
            return {"error": str(e)}
    for n in [int(x) for x in args.sizes.split(",") if x]:
        work = os.path.join(args.work, str(n))
        subprocess.run(["rm", "-rf", work], check=True)
        os.makedirs(work)
        r = {"hosts": n}
        if "floor" not in skip:
            r["floor"] = scenario(f"floor {n}", run_floor, args, n, work)
        if "anvil" not in skip:
            r["anvil"] = scenario(f"anvil {n}", run_anvil, args, n, os.path.join(work, "anvil"))
        r["perHostKiB"] = per_host_kib(r)
        results["sizes"][str(n)] = r
    if "store" not in skip:
        log("store")
        results["store"] = scenario("store", run_store, args, args.work)
    if "agent" not in skip:
        log("agent footprint")
        results["agent"] = scenario("agent", run_agent, args,
                                    os.path.join(args.work, "agent-footprint"))
    results["seconds"] = round(time.monotonic() - t_all, 1)
    results["problems"] = PROBLEMS
    print(table(results))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
        log(f"results in {args.out}")
    rc = 0
    # The baseline file has one section per mode: a quick run is compared with quick figures.
    mode = "quick" if args.quick else "full"
    if args.baseline and args.write_baseline and not PROBLEMS:
        all_modes = {}
        if os.path.exists(args.baseline):
            with open(args.baseline) as f:
                all_modes = json.load(f)
        all_modes[mode] = strip_runs(results)
        with open(args.baseline, "w") as f:
            json.dump(all_modes, f, indent=1, sort_keys=True)
            f.write("\n")
        log(f"baseline ({mode}) written to {args.baseline}")
    elif args.baseline and not os.path.exists(args.baseline):
        print(f"no baseline {args.baseline} to compare with")
    elif args.baseline and mode not in json.load(open(args.baseline)):
        print(f"no {mode} figures in {args.baseline} to compare with")
    elif args.baseline:
        with open(args.baseline) as f:
            baseline = json.load(f)[mode]
        bad = compare(results, baseline, args.ratio)
        if bad:
            print(("REGRESSION" if args.check else "slower") + " than " + args.baseline +
                  f" by more than {args.ratio}x:\n  " + "\n  ".join(bad))
            rc = 1 if args.check else 0
        else:
            print(f"no regression beyond {args.ratio}x of {args.baseline}")
    if PROBLEMS:
        print("FAILED (correctness):\n  " + "\n  ".join(PROBLEMS))
        rc = 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
