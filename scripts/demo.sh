#!/usr/bin/env bash
# The Anvil demo: one coordinator and a few agents on this machine bring a Kubernetes cluster
# (kubeadm faked, see tests/fakes) to Ready, driven by examples/cluster.yaml.
#
#   scripts/demo.sh                     run, show progress, print the result, stop everything
#   scripts/demo.sh --keep              leave it running and print how to use anvilctl on it
#   scripts/demo.sh --down              stop what a --keep run left
#   --control-planes C --workers W      how many agents (labelled role=control-plane / worker)
#   --no-apply                          start them without applying the example
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$SRC/scripts/lib.sh"
STATE_FILE=${TMPDIR:-/tmp}/anvil-demo.current

KEEP=0 APPLY=1 CPS=1 WORKERS=2 TIMEOUT=180
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --keep) KEEP=1 ;;
    --no-apply) APPLY=0 ;;
    --control-planes) CPS=${2:?--control-planes needs a number}; shift ;;
    --workers) WORKERS=${2:?--workers needs a number}; shift ;;
    --timeout) TIMEOUT=${2:?}; shift ;;
    --down)
      if [ ! -f "$STATE_FILE" ]; then echo "demo: nothing to stop (no $STATE_FILE)"; exit 0; fi
      WORK=$(cat "$STATE_FILE")
      anvil_stop_all
      rm -rf "$WORK" "$STATE_FILE"
      echo "demo: stopped and removed $WORK"
      exit 0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ $CPS =~ ^[0-9]+$ && $WORKERS =~ ^[0-9]+$ ]] || { echo "demo: counts must be numbers" >&2; exit 2; }

if anvil_need_deps; then
  echo "demo: installing dependencies"
  "$SRC/scripts/install-deps.sh"
fi
echo "demo: building"
anvil_build "$SRC/build"

if [ -f "$STATE_FILE" ] && [ -d "$(cat "$STATE_FILE")" ]; then
  echo "demo: a kept demo is still running in $(cat "$STATE_FILE"); stop it with $0 --down" >&2
  exit 1
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/anvil-demo.XXXXXX")
anvil_env_init "$WORK" "$SRC/build"
cleanup() {
  if [ "$KEEP" = 0 ]; then
    anvil_stop_all
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

echo "demo: starting the coordinator in $WORK"
anvil_start_coordinator
CP_TOKEN=$(anvilctl token create --labels role=control-plane --ttl 1h --description "demo control plane")
W_TOKEN=$(anvilctl token create --labels role=worker --ttl 1h --description "demo workers")
for i in $(seq 1 "$CPS"); do anvil_start_agent "cp-$i" "$CP_TOKEN"; done
for i in $(seq 1 "$WORKERS"); do anvil_start_agent "worker-$i" "$W_TOKEN"; done
echo "demo: started $CPS control plane and $WORKERS worker agents"
anvil_wait 30 "agents to enroll" bash -c "[ \$($CTL get hosts -o name | wc -l) -ge $((CPS + WORKERS)) ]"
anvilctl get hosts

if [ "$APPLY" = 1 ]; then
  echo
  echo "demo: anvilctl apply -f examples/cluster.yaml"
  anvilctl apply -f "$SRC/examples/cluster.yaml"
  echo
  end=$((SECONDS + TIMEOUT))
  last=""
  expected=$((1 + 2)) # the example: one control plane machine, two workers
  while ! { anvil_cluster_ready demo && anvil_machines_running $expected; }; do
    if [ $SECONDS -ge $end ]; then
      echo "demo: the cluster did not become Ready in ${TIMEOUT}s" >&2
      anvilctl describe cluster demo >&2 || true
      exit 1
    fi
    line=$(anvilctl get machines -o json 2>/dev/null | /usr/bin/python3 -c '
import json,sys
items=json.load(sys.stdin).get("items",[])
phases={}
for m in items: phases[m.get("status",{}).get("phase","Pending")]=phases.get(m.get("status",{}).get("phase","Pending"),0)+1
print("machines: " + (", ".join("%d %s"%(n,p) for p,n in sorted(phases.items())) or "none yet"))' || true)
    [ "$line" != "$last" ] && echo "demo: $line" && last=$line
    sleep 1
  done
  echo "demo: cluster demo is Ready, all $expected machines Running"
  echo
  echo "\$ anvilctl get machines"
  anvilctl get machines
  echo
  echo "\$ anvilctl describe cluster demo"
  anvilctl describe cluster demo
fi

if [ "$KEEP" = 1 ]; then
  echo "$WORK" >"$STATE_FILE"
  echo
  echo "demo: left running. Use it with:"
  echo "  export ANVIL_SERVER=$ANVIL_SERVER PATH=$(dirname "$CTL"):\$PATH"
  echo "  anvilctl get hosts"
  echo "Logs are in $WORK (coordinator.log, agents/*/agent.log). Stop it with: $0 --down"
fi
