# shellcheck shell=bash
# Helpers shared by scripts/demo.sh and the end-to-end tests: start a coordinator and agents
# (each agent with its own state directory, host root and product UUID; the fake kubeadm and
# kubectl from tests/fakes), wait for conditions, stop everything.

ANVIL_SRC=${ANVIL_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

anvil_need_deps() {
  local p
  for p in libzmq3-dev libmsgpack-dev libyaml-dev libsodium-dev libsystemd-dev libsqlite3-dev \
           libcmocka-dev libssl-dev libjson-c-dev libmicrohttpd-dev uuid-dev cmake python3-yaml \
           systemd-container debootstrap python3-zmq python3-msgpack clang squashfs-tools \
           lintian ipxe sudo; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 0
  done
  return 1
}

anvil_build() { # anvil_build BUILD_DIR [cmake args...]
  local dir=$1; shift
  cmake -S "$ANVIL_SRC" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)" >/dev/null
}

anvil_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# anvil_env_init WORKDIR BUILD_DIR: sets the variables the other helpers use.
anvil_env_init() {
  WORK=$1
  BUILD=$2
  COORD=$BUILD/coordinator/anvil-coordinator
  AGENT=$BUILD/agent/anvil-agent
  CTL=$BUILD/coordinator/anvilctl
  mkdir -p "$WORK"
  export ANVIL_SERVER=$WORK/admin.sock
  export FAKE_K8S_STATE=$WORK/fake-k8s
  mkdir -p "$FAKE_K8S_STATE"
  : "${ANVIL_PORT:=$(anvil_free_port)}"
  : "${ANVIL_METRICS_PORT:=$(anvil_free_port)}"
}

anvilctl() { "$CTL" "$@"; }

anvil_start_coordinator() {
  "$COORD" --listen "tcp://127.0.0.1:$ANVIL_PORT" --admin-socket "$ANVIL_SERVER" \
    --state-dir "$WORK/coordinator" --metrics-listen "127.0.0.1:$ANVIL_METRICS_PORT" \
    --heartbeat-grace "${ANVIL_GRACE:-30s}" "$@" >>"$WORK/coordinator.log" 2>&1 &
  echo $! >"$WORK/coordinator.pid"
  local i
  for i in $(seq 1 100); do
    [ -S "$ANVIL_SERVER" ] && anvilctl info >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$WORK/coordinator.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "coordinator did not start; its log:" >&2
  tail -20 "$WORK/coordinator.log" >&2
  return 1
}

# Kills the coordinator with SIGKILL (a crash) and waits until it is gone for good.
anvil_crash_coordinator() {
  local pid
  pid=$(cat "$WORK/coordinator.pid")
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

anvil_coordinator_key() {
  anvilctl info -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["publicKey"])'
}

# anvil_start_agent NAME TOKEN [extra agent flags...]; ANVIL_AGENT_YAML: more agent.yaml lines.
anvil_start_agent() {
  local name=$1 token=$2; shift 2
  local dir=$WORK/agents/$name n
  mkdir -p "$dir/root"
  n=$(printf '%012d' "$(( $(ls "$WORK/agents" | wc -l) ))")
  [ -f "$dir/uuid" ] || echo "00000000-0000-4000-8000-$n" >"$dir/uuid"
  cat >"$dir/agent.yaml" <<YAML
coordinator: tcp://127.0.0.1:$ANVIL_PORT
coordinator-key: "$(anvil_coordinator_key)"
token: "$token"
state-dir: $dir/state
product-uuid: $(cat "$dir/uuid")
hostname: $name
host-root: $dir/root
kubeadm: $ANVIL_SRC/tests/fakes/kubeadm
kubectl: $ANVIL_SRC/tests/fakes/kubectl
cmdline: /dev/null
heartbeat-interval: ${ANVIL_HEARTBEAT:-2s}
environment:
  - PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  - FAKE_K8S_STATE=$FAKE_K8S_STATE
  - FAKE_NODE_IP=127.0.$(( (10#$n / 250) + 1 )).$(( (10#$n % 250) + 2 ))
${ANVIL_AGENT_EXTRA_YAML:-}
${ANVIL_AGENT_YAML:-}
YAML
  "$AGENT" --config "$dir/agent.yaml" "$@" >>"$dir/agent.log" 2>&1 &
  echo $! >"$dir/agent.pid"
}

anvil_agent_pid() { cat "$WORK/agents/$1/agent.pid"; }

# Restarts agent NAME with the agent.yaml it has (after editing it, or after a crash).
anvil_restart_agent() {
  local dir=$WORK/agents/$1 pid
  shift
  pid=$(cat "$dir/agent.pid")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true  # reaps it (a crashed agent is a zombie until then)
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  "$AGENT" --config "$dir/agent.yaml" "$@" >>"$dir/agent.log" 2>&1 &
  echo $! >"$dir/agent.pid"
}

# anvil_wait SECONDS DESCRIPTION COMMAND...: polls until COMMAND succeeds.
anvil_wait() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "timed out after ${secs}s waiting for: $what" >&2
  return 1
}

anvil_cluster_ready() { # anvil_cluster_ready NAME
  anvilctl get cluster "$1" -o json | /usr/bin/python3 -c '
import json,sys
c=json.load(sys.stdin)
ok=[x for x in c.get("status",{}).get("conditions",[]) if x["type"]=="Ready" and x["status"]=="True"]
sys.exit(0 if ok else 1)'
}

anvil_machines_running() { # anvil_machines_running COUNT: exactly COUNT machines, all Running
  anvilctl get machines -A -o json | /usr/bin/python3 -c '
import json,sys
items=json.load(sys.stdin)["items"]
sys.exit(0 if len(items)==int(sys.argv[1]) and all(m.get("status",{}).get("phase")=="Running" for m in items) else 1)' "$1"
}

anvil_stop_all() {
  local f
  for f in "$WORK"/agents/*/agent.pid "$WORK"/coordinator.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 0.3
  for f in "$WORK"/agents/*/agent.pid "$WORK"/coordinator.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  return 0
}
