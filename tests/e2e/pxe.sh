#!/usr/bin/env bash
# PXE boot, end to end: a virtual server boots Anvil's image over the network and enrolls.
#
# A network namespace with a bridge holds the provisioning network: dnsmasq (configuration from
# provisioning/pxe-config.sh), an HTTP server for the image, the coordinator. qemu (software
# emulation, serial console to a file) PXE-boots the image from scripts/package.sh and
# provisioning/build-image.sh three times, as the same machine (product UUID and MAC fixed with
# -uuid and -device …,mac=):
#   A. full DHCP, a blank state disk, a one-use token: the Host appears with the VM's product
#      UUID and MAC (the initramfs formats the disk and keeps the agent's key on it);
#   B. power cut, boot again with the same disk and the same, now spent, token: the agent comes
#      back with its key (HELLO, no enrollment): same Host, same key, no refusal;
#   C. proxy DHCP beside another DHCP server, no disk (state in RAM), a fresh token: a new key,
#      the same Host re-keyed, the new token spent.
# Packages and image are cached in $ANVIL_TEST_CACHE (default /var/cache/anvil-test) between
# runs. Runs on its own (tests/e2e/pxe.sh) and under ctest (e2e-pxe). Needs root, qemu, dnsmasq,
# debootstrap and the Debian mirror (scripts/install-deps.sh).
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/pxe-lib.sh"

BOOT_TIMEOUT=${ANVIL_PXE_BOOT_TIMEOUT:-400}
NS=anvil-pxe-$$
SITE_NS=anvil-pxe-site-$$
UUID=4c4c4544-0001-4000-8000-0000a11ce001
MAC=52:54:00:a1:1c:01
IMAGE=$ANVIL_TEST_CACHE/image-$(echo "$SRC" | sha256sum | cut -c1-12)
HTTP=$WORK/http
T0=$SECONDS

for tool in qemu-system-x86_64 dnsmasq debootstrap mksquashfs ip flock; do
  command -v $tool >/dev/null || fail "$tool is missing: run scripts/install-deps.sh"
done
[ "$(id -u)" -eq 0 ] || fail "needs root (network namespaces, debootstrap)"

# Namespaces left by a run that was killed (a ctest timeout sends SIGKILL): their owner's pid
# is in their name.
for ns in $(ip netns list 2>/dev/null | grep -Eo '^anvil-pxe-(site-)?[0-9]+'); do
  kill -0 "${ns##*-}" 2>/dev/null && continue
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
done

vm_pid() { cat "$WORK/qemu.pid" 2>/dev/null || true; }

stop_vm() {
  local pid
  pid=$(vm_pid)
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$WORK/qemu.pid"
}

# Stops what runs in the namespaces (qemu, dnsmasq, the HTTP server, the coordinator) and
# removes them, whatever the outcome; on failure shows the VM's console and dnsmasq's log.
pxe_finish() {
  local rc=$? ns pid
  stop_vm
  for ns in "$NS" "$SITE_NS"; do
    ip netns list 2>/dev/null | grep -qw "$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    for f in "$WORK"/console-*.log; do
      [ -f "$f" ] || continue
      echo "---- $f (tail) ----" >&2
      tail -40 "$f" >&2
    done
    for f in "$WORK"/dnsmasq*.log "$WORK"/qemu-*.err; do
      [ -f "$f" ] || continue
      echo "---- $f (tail) ----" >&2
      tail -20 "$f" >&2
    done
  fi
  (exit $rc)
  e2e_finish
}
trap pxe_finish EXIT

step() { echo "pxe: [$((SECONDS - T0))s] $*"; }

# ---- the packages and the image (cached) ----
step "building the packages"
anvil_test_packages "$WORK/debs" >"$WORK/package.log" 2>&1 ||
  { cat "$WORK/package.log" >&2; fail "scripts/package.sh failed"; }
step "building the image"
mkdir -p "$IMAGE"
touch "$IMAGE"
"$SRC/provisioning/build-image.sh" --out "$IMAGE" --cache "$ANVIL_TEST_CACHE/image-cache" \
  --deb "$(ls "$WORK"/debs/anvil-agent_*.deb)" --kernel cloud-amd64 --fast >"$WORK/image.log" 2>&1 ||
  { cat "$WORK/image.log" >&2; fail "provisioning/build-image.sh failed"; }
sed 's/^/    /' "$WORK/image.log"
mkdir -p "$HTTP"
for f in vmlinuz initrd.img rootfs.squashfs rootfs.squashfs.sha256; do ln -s "$IMAGE/$f" "$HTTP/$f"; done

# ---- the provisioning network: br0 (10.200.0.1/24, fd00:a11::1/64) with the VM's tap ----
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add br0 type bridge
ip -n "$NS" addr add 10.200.0.1/24 dev br0
ip -n "$NS" addr add fd00:a11::1/64 dev br0 nodad
ip -n "$NS" link set br0 up
ip -n "$NS" tuntap add dev tap0 mode tap
ip -n "$NS" link set tap0 master br0 up
# Not a function: a background job of `ip netns exec` is the process itself (ip execs it), so
# $! is its pid.
IN_NS=(ip netns exec "$NS")

"${IN_NS[@]}" "$COORD" --listen tcp://10.200.0.1:7443 --admin-socket "$ANVIL_SERVER" \
  --state-dir "$WORK/coordinator" --metrics-listen "" >>"$WORK/coordinator.log" 2>&1 &
echo $! >"$WORK/coordinator.pid"
anvil_wait 20 "coordinator up" anvilctl info
"${IN_NS[@]}" python3 -m http.server 8080 --bind 10.200.0.1 --directory "$HTTP" >"$WORK/http.log" 2>&1 &

# start_dnsmasq NAME CONF: dnsmasq in the namespace, in the foreground of a background job.
start_dnsmasq() {
  "${IN_NS[@]}" dnsmasq --keep-in-foreground --conf-file="$2" --user=root --log-dhcp \
    --log-facility="$WORK/dnsmasq-$1.log" --dhcp-leasefile="$WORK/dnsmasq-$1.leases" \
    --pid-file="$WORK/dnsmasq-$1.pid" &
  echo $! >"$WORK/dnsmasq-$1.job"
  anvil_wait 10 "dnsmasq $1 up" test -s "$WORK/dnsmasq-$1.pid"
}
stop_dnsmasq() {
  kill "$(cat "$WORK/dnsmasq-$1.job")" 2>/dev/null || true
  wait "$(cat "$WORK/dnsmasq-$1.job")" 2>/dev/null || true
}

# pxe_config MODE-ARGS... : the configuration an operator would write, for this network.
pxe_config() {
  "$SRC/provisioning/pxe-config.sh" --interface br0 --http-url http://10.200.0.1:8080 \
    --http-root "$HTTP" --ipv6-ra --extra-args "console=ttyS0,115200n8" \
    --dnsmasq-conf "$WORK/dnsmasq.conf" --tftp-root "$WORK/tftp" "$@" >/dev/null
}

# SeaBIOS copies the text screen, so iPXE's messages too, to the serial port at this I/O
# address (0x3f8, little-endian) when the fw_cfg file etc/sercon-port says so.
printf '\xf8\x03' >"$WORK/sercon-port"

# boot_vm NAME [qemu args...]: PXE-boots the VM in the background.
boot_vm() {
  local name=$1
  shift
  "${IN_NS[@]}" qemu-system-x86_64 -accel tcg -m 1024 -display none -vga none -no-reboot -boot n \
    -uuid "$UUID" -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
    -device "virtio-net-pci,netdev=n0,mac=$MAC" -serial "file:$WORK/console-$name.log" \
    -fw_cfg "name=etc/sercon-port,file=$WORK/sercon-port" \
    -monitor none "$@" 2>"$WORK/qemu-$name.err" &
  echo $! >"$WORK/qemu.pid"
  VM_START=$SECONDS
}

# wait_vm SECONDS WHAT COMMAND...: like anvil_wait, but gives up at once if the VM stopped
# (iPXE reboots, and so exits qemu, when the boot fails).
wait_vm() {
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$(vm_pid)" 2>/dev/null || fail "the VM stopped while waiting for: $what"
    sleep 1
  done
  fail "timed out after ${secs}s waiting for: $what"
}

hosts_json() { anvilctl get hosts -o json; }

# The one Host, as "name fingerprint": only when it has the VM's product UUID and MAC and is
# connected.
the_host() {
  hosts_json | /usr/bin/python3 -c '
import json, sys
uuid, mac = sys.argv[1], sys.argv[2]
items = json.load(sys.stdin)["items"]
if len(items) != 1:
    sys.exit(1)
h = items[0]
st = h.get("status", {})
f = st.get("facts", {})
macs = [i.get("mac", "").lower() for i in f.get("interfaces", [])]
if f.get("productUUID", "").lower() != uuid or mac not in macs or not st.get("connected"):
    sys.exit(1)
print(h["metadata"]["name"], st["fingerprint"])' "$UUID" "$MAC"
}

uses_left() { anvilctl token list | awk -v id="${1%%.*}" '$1 == id { print $3 }'; }
hellos() { grep -c "Agent of $NAME connected" "$WORK/coordinator.log" || true; }
hellos_more_than() { [ "$(hellos)" -gt "$1" ]; }

# ---- A: full DHCP, blank state disk, one-use token ----
T1=$(anvilctl token create --uses 1 --pxe)
T1_ARGS=$(echo "$T1" | tail -1)
pxe_config --dhcp-range 10.200.0.100,10.200.0.199,1h --kernel-args "$T1_ARGS" \
  --state-disk /dev/vda
grep -q "anvil_state=/dev/vda" "$HTTP/boot.ipxe" || fail "boot.ipxe lacks anvil_state="
start_dnsmasq full "$WORK/dnsmasq.conf"
# The TFTP leg that real PXE firmware takes (qemu's NIC ROM is iPXE already, so it skips it).
"${IN_NS[@]}" curl -sf -o "$WORK/undionly.kpxe" tftp://10.200.0.1/undionly.kpxe ||
  fail "dnsmasq does not serve undionly.kpxe over TFTP"
cmp -s "$WORK/undionly.kpxe" /usr/lib/ipxe/undionly.kpxe || fail "TFTP served a different undionly.kpxe"
truncate -s 64M "$WORK/state.img"
step "boot A: full DHCP, blank state disk, token ${T1%%.*}"
boot_vm A -drive "file=$WORK/state.img,if=virtio,format=raw"
wait_vm "$BOOT_TIMEOUT" "the Host with product UUID $UUID and MAC $MAC" the_host
read -r NAME FP_A < <(the_host)
step "boot A: Host $NAME enrolled after $((SECONDS - VM_START))s (key $FP_A)"
assert_eq "$(uses_left "$T1")" 0 "uses left of token ${T1%%.*} after boot A"
grep -q "anvil: agent state on /dev/vda" "$WORK/console-A.log" ||
  fail "boot A: the initramfs did not put the agent's state on /dev/vda"
anvil_wait 20 "boot A: the agent's HELLO" hellos_more_than 0
HELLOS_A=$(hellos)

# ---- B: power cut, same disk, the spent token: the key persisted, no new token needed ----
stop_vm
step "boot B: same disk, token ${T1%%.*} already spent"
boot_vm B -drive "file=$WORK/state.img,if=virtio,format=raw"
wait_vm "$BOOT_TIMEOUT" "the agent's HELLO after the reboot" hellos_more_than "$HELLOS_A"
step "boot B: $NAME back after $((SECONDS - VM_START))s"
read -r NAME_B FP_B < <(the_host) || fail "boot B: not exactly one connected Host with the VM's UUID and MAC"
assert_eq "$NAME_B $FP_B" "$NAME $FP_A" "boot B: the Host and its key"
if grep -q "Refused enrollment" "$WORK/coordinator.log"; then
  fail "boot B: the agent tried to enroll again: $(grep "Refused enrollment" "$WORK/coordinator.log")"
fi
grep -q "anvil: agent state on /dev/vda" "$WORK/console-B.log" || fail "boot B: state disk not used"
if grep -q "making an ext4 file system" "$WORK/console-B.log"; then
  fail "boot B: the state disk was formatted again"
fi

# ---- C: proxy DHCP beside the site's DHCP server, no disk, a fresh token ----
stop_vm
stop_dnsmasq full
# The site's own DHCP server, in a namespace of its own on the same bridge.
ip netns add "$SITE_NS"
ip link add site0 netns "$SITE_NS" type veth peer name site-br netns "$NS"
ip -n "$NS" link set site-br master br0 up
ip -n "$SITE_NS" addr add 10.200.0.2/24 dev site0
ip -n "$SITE_NS" link set site0 up
ip netns exec "$SITE_NS" dnsmasq --keep-in-foreground --port=0 --interface=site0 \
  --bind-interfaces --dhcp-range=10.200.0.50,10.200.0.99,1h --user=root \
  --dhcp-leasefile="$WORK/dnsmasq-site.leases" --log-facility="$WORK/dnsmasq-site.log" \
  --log-dhcp --pid-file="$WORK/dnsmasq-site.pid" &
anvil_wait 10 "site dnsmasq up" test -s "$WORK/dnsmasq-site.pid"
T2=$(anvilctl token create --uses 1 --pxe)
pxe_config --proxy 10.200.0.0 --kernel-args "$(echo "$T2" | tail -1)"
grep -q "anvil_state=" "$HTTP/boot.ipxe" && fail "boot.ipxe still has anvil_state="
start_dnsmasq proxy "$WORK/dnsmasq.conf"
step "boot C: proxy DHCP, no state disk, token ${T2%%.*}"
boot_vm C
rekeyed() { read -r n fp < <(the_host) && [ "$n" = "$NAME" ] && [ "$fp" != "$FP_A" ]; }
wait_vm "$BOOT_TIMEOUT" "the Host re-keyed with token ${T2%%.*}" rekeyed
read -r NAME_C FP_C < <(the_host)
step "boot C: $NAME_C re-enrolled after $((SECONDS - VM_START))s (key $FP_C)"
assert_eq "$(uses_left "$T2")" 0 "uses left of token ${T2%%.*} after boot C"
grep -q "DHCPACK.*$MAC" "$WORK/dnsmasq-site.log" || fail "boot C: the site's DHCP server gave no address"
grep -q "proxy" "$WORK/dnsmasq-proxy.log" || fail "boot C: the Anvil dnsmasq did not answer as a proxy"
stop_vm
step "PASS"
echo PASS
