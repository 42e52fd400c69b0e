# shellcheck shell=bash
# Helpers of the tests that boot a real systemd (systemd-nspawn --boot on the cached Debian
# rootfs of rootfs.sh), install Anvil the way a package would, and look at it with
# systemctl and journalctl from the inside (nsenter).
#
# Every container gets its own network namespace made here (ip netns), so the tests never
# touch the host's network; containers, namespaces and the work directory are removed on
# exit. Set KEEP_NSPAWN=1 to keep the work directory (console logs) of a failed run.
set -euo pipefail
SRC=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${ANVIL_BUILD_DIR:-$SRC/build}
# Made by setup.sh (the ctest fixture): the unpacked rootfs and the staged install.
NSPAWN_DIR=$BUILD/nspawn
NS_WORK=$(mktemp -d "${TMPDIR:-/tmp}/anvil-nspawn.XXXXXX")
NS_ID=$(printf '%04x' $((RANDOM)))
NS_CONTAINERS=()
NS_NETNS=()
declare -A NS_LEADER NS_PID

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Skips (ctest SKIP_RETURN_CODE 77) only when nspawn truly cannot run here.
nspawn_require() {
  local why=""
  if [ "$(id -u)" -ne 0 ]; then
    why="not root"
  elif ! command -v systemd-nspawn >/dev/null || ! command -v nsenter >/dev/null; then
    why="systemd-nspawn or nsenter not installed (scripts/install-deps.sh)"
  elif ! ip netns list >/dev/null 2>&1; then
    why="no network namespaces (ip netns)"
  fi
  if [ -n "$why" ]; then
    echo "SKIP: cannot boot systemd in a container here: $why"
    exit 77
  fi
  [ -f "$NSPAWN_DIR/rootfs" ] && [ -d "$NSPAWN_DIR/stage/usr/sbin" ] ||
    fail "the nspawn fixture did not run (tests/nspawn/setup.sh)"
  NSPAWN_ROOTFS=$(cat "$NSPAWN_DIR/rootfs")
  [ -d "$NSPAWN_ROOTFS/usr/lib/systemd" ] || fail "rootfs $NSPAWN_ROOTFS is incomplete"
}

# netns_add NAME: a fresh network namespace (loopback only until veths are added).
netns_add() {
  ip netns add "$1"
  NS_NETNS+=("$1")
  # The container cannot do this itself: nspawn gives it no CAP_NET_ADMIN in a namespace it
  # did not make.
  ip -n "$1" link set lo up
}

# veth_link NS_A ADDR_A NS_B ADDR_B: a point-to-point link between two namespaces.
NS_LINKS=0
veth_link() {
  NS_LINKS=$((NS_LINKS + 1))
  local a=va$NS_ID$NS_LINKS b=vb$NS_ID$NS_LINKS
  ip link add "$a" type veth peer name "$b"
  ip link set "$a" netns "$1"
  ip link set "$b" netns "$3"
  ip -n "$1" addr add "$2/30" dev "$a"
  ip -n "$3" addr add "$4/30" dev "$b"
  ip -n "$1" link set "$a" up
  ip -n "$3" link set "$b" up
}

# nspawn_boot NAME NETNS [nspawn args...]: boots the rootfs (a volatile overlay: the cached
# tree is never written) and waits until systemd inside says it is up.
nspawn_boot() {
  local name=$1 netns=$2 i leader=""; shift 2
  systemd-nspawn -D "$NSPAWN_ROOTFS" --volatile=overlay --boot --register=no --keep-unit \
    --console=read-only -M "$name" --hostname="$name" \
    --network-namespace-path="/run/netns/$netns" "$@" >"$NS_WORK/$name.console" 2>&1 &
  NS_PID[$name]=$!
  NS_CONTAINERS+=("$name")
  # The leader is nspawn's child once it has become systemd (it starts as nspawn itself).
  for i in $(seq 1 200); do
    for leader in $(ps -o pid= --ppid "${NS_PID[$name]}" 2>/dev/null || true); do
      [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ] && break 2
    done
    kill -0 "${NS_PID[$name]}" 2>/dev/null || break
    leader=""
    sleep 0.05
  done
  [ -n "$leader" ] || { cat "$NS_WORK/$name.console" >&2; fail "container $name did not start"; }
  NS_LEADER[$name]=$leader
  # systemd's private socket appears once PID 1 runs; then wait for boot to finish.
  for i in $(seq 1 300); do
    [ -S "/proc/$leader/root/run/systemd/private" ] && break
    sleep 0.05
  done
  local state
  state=$(timeout 60 nsenter -t "$leader" -a systemctl is-system-running --wait 2>&1 || true)
  case $state in
    running|degraded) ;;
    *) cat "$NS_WORK/$name.console" >&2; fail "systemd in $name did not come up: $state" ;;
  esac
}

# nsx NAME COMMAND...: runs a command inside the container (all its namespaces).
nsx() {
  local name=$1; shift
  nsenter -t "${NS_LEADER[$name]}" -a -- "$@"
}

# croot NAME: the container's root directory, writable from the host (the overlay).
croot() { echo "/proc/${NS_LEADER[$1]}/root"; }

# nspawn_install NAME: what a package would do: files, the anvil user, the catalog, reload.
nspawn_install() {
  local name=$1 root
  root=$(croot "$name")
  cp -a "$NSPAWN_DIR/stage/." "$root/"
  mkdir -p "$root/usr/lib/anvil-test"
  cp -a "$SRC/tests/fakes" "$root/usr/lib/anvil-test/"
  nsx "$name" systemd-sysusers >/dev/null 2>&1 || fail "systemd-sysusers failed in $name"
  nsx "$name" journalctl --update-catalog
  nsx "$name" systemctl daemon-reload
}

# fake_units NAME: kubelet.service and containerd.service stand-ins the agent can watch.
fake_units() {
  local root u
  root=$(croot "$1")
  for u in kubelet containerd; do
    printf '[Unit]\nDescription=fake %s (Anvil tests)\n[Service]\nExecStart=/bin/sleep infinity\n' \
      "$u" >"$root/etc/systemd/system/$u.service"
  done
  nsx "$1" systemctl daemon-reload
  nsx "$1" systemctl start kubelet.service containerd.service
}

# matches PATTERN: stdin has a line matching the regular expression. Reads all of it (grep -q
# would stop early, and the writer's SIGPIPE would fail the pipeline under pipefail).
matches() { grep -e "$1" >/dev/null; }

# journal_has NAME UNIT PATTERN: a line of UNIT's journal matches.
journal_has() { nsx "$1" journalctl --no-pager -o cat -u "$2" | matches "$3"; }

# status_has NAME UNIT PATTERN: the unit's STATUS= text matches.
status_has() { nsx "$1" systemctl show -P StatusText "$2" | matches "$3"; }

# unit_prop NAME UNIT PROPERTY: one property's value.
unit_prop() { nsx "$1" systemctl show -P "$3" "$2"; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.1 s.
wait_for() {
  local secs=$1 what=$2 end; shift 2
  end=$(($(date +%s%N) + secs * 1000000000))
  while [ "$(date +%s%N)" -lt "$end" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "timed out after ${secs}s waiting for: $what"
}

# eq VALUE COMMAND...: the command prints exactly VALUE (for wait_for).
eq() {
  local want=$1; shift
  [ "$("$@" 2>/dev/null)" = "$want" ]
}

json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

nspawn_dump() {
  local name
  for name in "${NS_CONTAINERS[@]}"; do
    [ -n "${NS_LEADER[$name]:-}" ] || continue
    echo "---- $name: journal of the anvil units (tail) ----" >&2
    nsx "$name" journalctl --no-pager -n 40 -u anvil-coordinator -u anvil-agent >&2 2>&1 || true
  done
}

nspawn_cleanup() {
  local rc=$? name pid i
  [ $rc -eq 0 ] || [ $rc -eq 77 ] || nspawn_dump
  for name in "${NS_CONTAINERS[@]}"; do
    kill -TERM "${NS_PID[$name]}" 2>/dev/null || true # nspawn turns this into a poweroff
  done
  for name in "${NS_CONTAINERS[@]}"; do
    pid=${NS_PID[$name]}
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      # Killing the container's PID 1 ends its whole PID namespace.
      for i in ${NS_LEADER[$name]:-} $(ps -o pid= --ppid "$pid" 2>/dev/null || true); do
        kill -KILL "$i" 2>/dev/null || true
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  for name in "${NS_NETNS[@]}"; do
    ip netns delete "$name" 2>/dev/null || true
  done
  if [ $rc -ne 0 ] && [ -n "${KEEP_NSPAWN:-}" ]; then
    echo "kept $NS_WORK" >&2
  else
    rm -rf "$NS_WORK"
  fi
  exit $rc
}
trap nspawn_cleanup EXIT
