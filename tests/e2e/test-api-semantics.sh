#!/usr/bin/env bash
# The Kubernetes API semantics Anvil keeps, through anvilctl against a real coordinator (no
# agents): upstream-style manifests apply cleanly and idempotently, webhook defaults,
# optimistic concurrency, finalizers, garbage collection, label selectors, watch, the paused
# annotation, namespaces, status ignored on apply, exit codes and --help.
. "$(dirname "$0")/common.sh"
anvil_start_coordinator
rev() { anvilctl info -o json | json 'd["revision"]'; }
names() { anvilctl get "$@" -o name | sed 's|.*/||' | sort | tr '\n' ' ' | sed 's/ $//'; }
field() { # field KIND NAME PYEXPR
  anvilctl get "$1" "$2" -o json | json "$3"
}
expect_fail() { # expect_fail REGEX CMD...: exit status 1 and the output matches
  local re=$1; shift
  set +e; out=$("$@" 2>&1); rc=$?; set -e
  [ $rc -eq 1 ] || fail "'$*' exited $rc, want 1: $out"
  echo "$out" | grep -qE -- "$re" || fail "'$*': output does not match /$re/: $out"
}

echo "== upstream quick-start manifests apply cleanly, and again unchanged"
out=$(anvilctl apply -f "$SRC/examples/capi-quickstart.yaml")
[ "$(echo "$out" | grep -c ' created$')" -eq 9 ] || fail "quick-start apply: $out"
out=$(anvilctl apply -f - <"$SRC/examples/capi-quickstart.yaml")
[ "$(echo "$out" | grep -c ' unchanged$')" -eq 9 ] || fail "quick-start re-apply: $out"
mkdir -p "$WORK/dir" && cp "$SRC/examples/cluster.yaml" "$WORK/dir/a.yaml"
anvilctl apply -f "$WORK/dir" | grep -q "cluster.cluster.x-k8s.io/demo created" || fail "apply DIR"

echo "== defaults as Cluster API's webhooks fill them"
assert_eq "$(field md capi-quickstart-md-0 'd["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"]')" \
  capi-quickstart "MachineDeployment cluster-name label"
assert_eq "$(field md capi-quickstart-md-0 'sorted(d["spec"]["selector"]["matchLabels"].items())')" \
  "[('cluster.x-k8s.io/cluster-name', 'capi-quickstart'), ('cluster.x-k8s.io/deployment-name', 'capi-quickstart-md-0')]" \
  "MachineDeployment default selector"
assert_eq "$(field md capi-quickstart-md-0 '(d["spec"]["revisionHistoryLimit"], d["spec"]["progressDeadlineSeconds"], d["spec"]["minReadySeconds"])')" \
  "(1, 600, 0)" "MachineDeployment counters"
assert_eq "$(field kcp capi-quickstart-control-plane 'd["spec"]["machineTemplate"]["infrastructureRef"]["namespace"]')" \
  default "KubeadmControlPlane infrastructureRef namespace"
assert_eq "$(field mhc capi-quickstart-md-0-unhealthy 'd["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"]')" \
  capi-quickstart "MachineHealthCheck cluster-name label"
assert_eq "$(field secret capi-quickstart-audit-policy '(sorted(d["data"]), d["type"], "stringData" in d)')" \
  "(['policy.yaml'], 'Opaque', False)" "Secret stringData folded into data"
field secret capi-quickstart-audit-policy 'd["metadata"]["annotations"]["anvil.dev/last-applied-configuration"]' |
  grep -q "level: Metadata" && fail "a Secret value shows in the last-applied annotation"
cat >"$WORK/unprefixed.yaml" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: Machine
metadata:
  name: loose
spec:
  clusterName: demo
  version: 1.30.2
  bootstrap: {dataSecretName: loose-bootstrap}
  infrastructureRef: {kind: AnvilMachine, name: loose}
YAML
anvilctl apply -f "$WORK/unprefixed.yaml" >/dev/null
assert_eq "$(field machine loose '(d["spec"]["version"], d["spec"]["nodeDeletionTimeout"], d["spec"]["infrastructureRef"]["namespace"])')" \
  "('v1.30.2', '10s', 'default')" "Machine defaults"

echo "== status is never written by apply"
cat >"$WORK/status.yaml" <<'YAML'
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata:
  name: with-status
spec:
  template:
    spec: {}
status:
  phase: Running
YAML
anvilctl apply -f "$WORK/status.yaml" >/dev/null
assert_eq "$(field kct with-status '"status" in d')" False "status of an applied object"

echo "== optimistic concurrency: an apply with a stale resourceVersion is a conflict"
anvilctl get kct capi-quickstart-md-0 -o yaml >"$WORK/kct-v1.yaml"
sed 's/eviction-hard: .*/eviction-hard: memory.available<5%/' "$WORK/kct-v1.yaml" >"$WORK/kct-v2.yaml"
anvilctl apply -f "$WORK/kct-v2.yaml" | grep -q "configured" || fail "apply at the current resourceVersion"
before=$(rev)
expect_fail "metadata.resourceVersion: the object has been modified" anvilctl apply -f "$WORK/kct-v1.yaml"
assert_eq "$(rev)" "$before" "store revision after a conflict"
assert_eq "$(field kct capi-quickstart-md-0 'd["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"]["eviction-hard"]')" \
  "memory.available<5%" "the newer write survives"

echo "== a List from get -o yaml|json applies back: each item, from its own line"
anvilctl get kct -o yaml >"$WORK/kct-list.yaml"
grep -q '^kind: List' "$WORK/kct-list.yaml" || fail "get kct -o yaml is not a List"
sed 's/eviction-hard: .*/eviction-hard: memory.available<7%/' "$WORK/kct-list.yaml" >"$WORK/kct-list2.yaml"
anvilctl apply -f "$WORK/kct-list2.yaml" >"$WORK/list-apply.out" || fail "apply of a List: $(cat "$WORK/list-apply.out")"
grep -q 'kubeadmconfigtemplate.bootstrap.cluster.x-k8s.io/capi-quickstart-md-0 configured' "$WORK/list-apply.out" ||
  fail "apply of a List: $(cat "$WORK/list-apply.out")"
assert_eq "$(field kct capi-quickstart-md-0 'd["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"]["eviction-hard"]')" \
  "memory.available<7%" "the List's item applied"
anvilctl get kct -o json | anvilctl apply -f - | grep -q 'unchanged' || fail "apply of a JSON List"
printf 'apiVersion: v1\nkind: List\nitems: {}\n' >"$WORK/bad-list.yaml"
before=$(rev)
expect_fail 'bad-list.yaml:1:1: List: items: a List needs a list of objects' anvilctl apply -f "$WORK/bad-list.yaml"
assert_eq "$(rev)" "$before" "store revision after a bad List"

echo "== generateName: a new object each apply, its name printed"
cat >"$WORK/gen.yaml" <<'YAML'
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata:
  generateName: gen-
spec:
  template:
    spec: {}
YAML
g1=$(anvilctl apply -f "$WORK/gen.yaml") || fail "apply with generateName"
g2=$(anvilctl apply -f "$WORK/gen.yaml") || fail "apply with generateName (2)"
n1=$(sed -n 's|^anvilmachinetemplate.infrastructure.anvil.dev/\(gen-[a-z0-9]*\) created$|\1|p' <<<"$g1")
n2=$(sed -n 's|^anvilmachinetemplate.infrastructure.anvil.dev/\(gen-[a-z0-9]*\) created$|\1|p' <<<"$g2")
[ -n "$n1" ] && [ -n "$n2" ] && [ "$n1" != "$n2" ] || fail "generateName: $g1 / $g2"
anvilctl get amt "$n1" -o name >/dev/null || fail "the printed name $n1 does not exist"

echo "== generation moves with spec only"
g1=$(field kct capi-quickstart-md-0 'd["metadata"]["generation"]')
anvilctl label kct capi-quickstart-md-0 team=platform >/dev/null
assert_eq "$(field kct capi-quickstart-md-0 'd["metadata"]["generation"]')" "$g1" "generation after a label change"

echo "== template labels and annotations reach existing machines in place, without a rollout"
MDSEL=cluster.x-k8s.io/deployment-name=capi-quickstart-md-0
anvil_wait 10 "machines of capi-quickstart-md-0" bash -c "[ -n \"\$($CTL get machines -l $MDSEL -o name)\" ]"
sets_before=$(names ms -l $MDSEL)
n_machines=$(names machines -l $MDSEL | wc -w)
md_set capi-quickstart-md-0 't=d["spec"]["template"].setdefault("metadata",{}); t.setdefault("labels",{})["pool"]="blue"; t.setdefault("annotations",{})["note"]="n1"'
propagated() { [ "$(names machines -l "$MDSEL,pool=blue" | wc -w)" -eq "$n_machines" ]; }
anvil_wait 10 "pool=blue on all $n_machines machines" propagated
m1=$(names machines -l $MDSEL | cut -d' ' -f1)
assert_eq "$(field machine "$m1" 'd["metadata"]["annotations"]["note"]')" n1 "template annotation on a machine"
assert_eq "$(names ms -l $MDSEL)" "$sets_before" "MachineSets after a template label change (no rollout)"

echo "== finalizers hold a deleted object until they are removed"
cat >"$WORK/held.yaml" <<'YAML'
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata:
  name: held
  finalizers: [example.com/hold]
spec:
  template:
    spec: {}
YAML
anvilctl apply -f "$WORK/held.yaml" >/dev/null
anvilctl delete kct held | grep -q 'kubeadmconfigtemplate.bootstrap.cluster.x-k8s.io "held" deleted' || fail "delete output"
field kct held 'd["metadata"]["deletionTimestamp"]' >/dev/null || fail "no deletionTimestamp on a held object"
anvilctl describe kct held | grep -q "Deletion Timestamp:" || fail "describe does not show the deletion"
expect_fail "timed out waiting for the condition on kubeadmconfigtemplates/held" \
  anvilctl delete kct held --wait --timeout 2s
sed -i '/finalizers/d' "$WORK/held.yaml"
anvilctl apply -f "$WORK/held.yaml" >/dev/null
expect_fail 'kubeadmconfigtemplate "held" not found' anvilctl get kct held

echo "== garbage collection: deleting a MachineDeployment takes its MachineSets and Machines"
anvil_wait 20 "3 worker machines" bash -c "[ \$($CTL get machines -l cluster.x-k8s.io/deployment-name=capi-quickstart-md-0 -o name | wc -l) -eq 3 ]"
ms=$(names ms -l cluster.x-k8s.io/deployment-name=capi-quickstart-md-0)
[ -n "$ms" ] || fail "no MachineSet"
anvilctl delete md capi-quickstart-md-0 --wait --timeout 20s >/dev/null
for k in machinesets machines kubeadmconfigs anvilmachines; do
  anvil_wait 20 "$k of the deployment gone" bash -c \
    "[ -z \"\$($CTL get $k -l cluster.x-k8s.io/deployment-name=capi-quickstart-md-0 -o name)\" ]"
done
anvilctl get ms "$ms" >/dev/null 2>&1 && fail "MachineSet $ms survived its deployment"
[ -n "$(names machines -l cluster.x-k8s.io/control-plane-name=capi-quickstart-control-plane)" ] ||
  fail "the control plane machine went too"

echo "== label selectors: =, !=, in, notin, exists, does not exist"
for t in a:web:r1 b:db:r2 c:web: d::r3; do
  IFS=: read -r n tier rack <<<"$t"
  {
    echo "apiVersion: infrastructure.anvil.dev/v1alpha1"
    echo "kind: AnvilMachineTemplate"
    echo "metadata:"
    echo "  name: sel-$n"
    echo "  labels:"
    echo "    group: sel"
    [ -n "$tier" ] && echo "    tier: $tier"
    [ -n "$rack" ] && echo "    rack: $rack"
    echo "spec: {template: {spec: {}}}"
  } >"$WORK/sel-$n.yaml"
  anvilctl apply -f "$WORK/sel-$n.yaml" >/dev/null
done
assert_eq "$(names amt -l group=sel,tier=web)" "sel-a sel-c" "tier=web"
assert_eq "$(names amt -l group=sel,tier!=web)" "sel-b sel-d" "tier!=web"
assert_eq "$(names amt -l 'group=sel,tier in (web,db)')" "sel-a sel-b sel-c" "tier in (web,db)"
assert_eq "$(names amt -l 'group=sel,tier notin (web)')" "sel-b sel-d" "tier notin (web)"
assert_eq "$(names amt -l group=sel,rack)" "sel-a sel-b sel-d" "rack exists"
assert_eq "$(names amt -l 'group=sel,!rack')" "sel-c" "rack does not exist"
assert_eq "$(names amt -l 'group=sel,tier,!rack,tier notin (db)')" "sel-c" "combined"
expect_fail 'invalid label selector' anvilctl get amt -l 'tier in web'
# matchExpressions in a manifest: the selector must select the template's labels.
cat >"$WORK/md-expr.yaml" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineDeployment
metadata:
  name: md-expr
spec:
  clusterName: nowhere
  replicas: 0
  selector:
    matchExpressions:
    - {key: pool, operator: In, values: [a, b]}
    - {key: tier, operator: NotIn, values: [db]}
    - {key: zone, operator: Exists}
    - {key: legacy, operator: DoesNotExist}
  template:
    metadata:
      labels: {pool: a, tier: web, zone: z1}
    spec:
      clusterName: nowhere
      bootstrap: {dataSecretName: x}
      infrastructureRef: {kind: AnvilMachineTemplate, name: x}
YAML
anvilctl apply -f "$WORK/md-expr.yaml" | grep -q created || fail "a matching matchExpressions selector"
for change in 's/pool: a,/pool: c,/' 's/tier: web,/tier: db,/' 's/, zone: z1//' 's/zone: z1/zone: z1, legacy: "y"/'; do
  sed "$change; s/name: md-expr/name: md-expr-bad/" "$WORK/md-expr.yaml" >"$WORK/md-expr-bad.yaml"
  expect_fail "spec.template.metadata.labels: must match spec.selector" anvilctl apply -f "$WORK/md-expr-bad.yaml"
done

echo "== watch: get -w prints each change, and deletions"
anvilctl get amt -l group=sel -w --output-watch-events >"$WORK/watch.out" 2>&1 &
watch_pid=$!
anvil_wait 10 "the watch lists" grep -q "^ADDED *sel-a " "$WORK/watch.out"
anvilctl label amt sel-a color=blue >/dev/null
anvilctl label amt sel-d color=red >/dev/null
anvilctl delete amt sel-b >/dev/null
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null # other kinds: not shown
anvil_wait 10 "MODIFIED sel-a" grep -q "^MODIFIED *sel-a " "$WORK/watch.out"
anvil_wait 10 "DELETED sel-b" grep -q "^DELETED *sel-b " "$WORK/watch.out"
kill "$watch_pid"; wait "$watch_pid" 2>/dev/null || true
grep -q "demo" "$WORK/watch.out" && fail "the watch showed objects it does not select"
head -1 "$WORK/watch.out" | grep -q "^EVENT *NAME *AGE$" || fail "watch header: $(head -1 "$WORK/watch.out")"

echo "== label and annotate speak kubectl"
assert_eq "$(anvilctl label amt sel-c color=green)" "anvilmachinetemplate.infrastructure.anvil.dev/sel-c labeled" "label"
expect_fail "already has a value \(green\), and --overwrite is false" anvilctl label amt sel-c color=red
assert_eq "$(anvilctl label amt sel-c color=red --overwrite)" "anvilmachinetemplate.infrastructure.anvil.dev/sel-c labeled" "label --overwrite"
assert_eq "$(anvilctl label amt sel-c color-)" "anvilmachinetemplate.infrastructure.anvil.dev/sel-c unlabeled" "unlabel"
assert_eq "$(anvilctl label amt sel-c color-)" "anvilmachinetemplate.infrastructure.anvil.dev/sel-c not labeled" "unlabel again"
expect_fail 'invalid label key' anvilctl label amt sel-c "bad key=x"
expect_fail 'invalid label value' anvilctl label amt sel-c "ok=has spaces"
assert_eq "$(anvilctl annotate amt sel-c note=hello)" "anvilmachinetemplate.infrastructure.anvil.dev/sel-c annotated" "annotate"
assert_eq "$(field amt sel-c 'd["metadata"]["annotations"]["note"]')" hello "annotation stored"

echo "== a manifest without labels or annotations removes only what it applied"
cat >"$WORK/mm.yaml" <<'YAML'
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata:
  name: mm
  labels: {applied: "1"}
  annotations: {applied-note: "1"}
spec:
  template:
    spec: {}
YAML
anvilctl apply -f "$WORK/mm.yaml" >/dev/null
anvilctl label amt mm byhand=yes >/dev/null
anvilctl annotate amt mm cluster.x-k8s.io/paused=true >/dev/null
sed -i '/labels:\|annotations:/d' "$WORK/mm.yaml"
anvilctl apply -f "$WORK/mm.yaml" >/dev/null
assert_eq "$(field amt mm 'sorted(d["metadata"].get("labels",{}))')" "['byhand']" "labels after a re-apply without labels"
assert_eq "$(field amt mm '[k for k in sorted(d["metadata"]["annotations"]) if "last-applied" not in k]')" \
  "['cluster.x-k8s.io/paused']" "annotations after a re-apply without annotations"

echo "== several -f: each applied (and deleted) in order; a bad one fails the command"
printf 'apiVersion: infrastructure.anvil.dev/v1alpha1\nkind: AnvilMachineTemplate\nmetadata: {name: f1}\nspec: {template: {spec: {}}}\n' >"$WORK/f1.yaml"
printf 'apiVersion: infrastructure.anvil.dev/v1alpha1\nkind: AnvilMachineTemplate\nmetadata: {name: f2}\nspec: {template: {spec: {}}}\n' >"$WORK/f2.yaml"
printf 'apiVersion: infrastructure.anvil.dev/v1alpha1\nkind: AnvilMachineTemplate\nmetadata: {name: f3}\nspec: {template: {nope: 1}}\n' >"$WORK/f3.yaml"
expect_fail "f3.yaml:4:.*nope" anvilctl apply -f "$WORK/f1.yaml" -f "$WORK/f3.yaml" -f "$WORK/f2.yaml"
assert_eq "$(names amt | tr ' ' '\n' | grep -c '^f[0-9]$')" 2 "templates from two good files of three"
anvilctl delete -f "$WORK/f1.yaml" -f "$WORK/f2.yaml" >/dev/null
expect_fail 'not found' anvilctl get amt f1
expect_fail 'not found' anvilctl get amt f2

echo "== what apply may not do: create a Host or an Event, two controllers, finalizers on the way out"
printf 'apiVersion: infrastructure.anvil.dev/v1alpha1\nkind: Host\nmetadata:\n  name: forged\nspec: {}\n' >"$WORK/host.yaml"
expect_fail 'host.yaml:4:.*Hosts are created when a server enrolls' anvilctl apply -f "$WORK/host.yaml"
expect_fail 'not found' anvilctl get host forged
printf 'apiVersion: v1\nkind: Event\nmetadata: {name: forged}\nreason: X\nmessage: forged\n' >"$WORK/event.yaml"
expect_fail 'Events are written by the coordinator' anvilctl apply -f "$WORK/event.yaml"
cat >"$WORK/owners.yaml" <<'YAML'
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata:
  name: owners
  ownerReferences:
  - {apiVersion: cluster.x-k8s.io/v1beta1, kind: Cluster, name: a, uid: 11111111-1111-4111-8111-111111111111, controller: true}
  - {apiVersion: cluster.x-k8s.io/v1beta1, kind: Cluster, name: b, uid: 22222222-2222-4222-8222-222222222222, controller: true}
spec: {template: {spec: {}}}
YAML
expect_fail 'owners.yaml:7:.*ownerReferences\[1\].controller.*only one reference' anvilctl apply -f "$WORK/owners.yaml"
cat >"$WORK/fin.yaml" <<'YAML'
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachineTemplate
metadata:
  name: fin
  finalizers: [example.com/a]
spec: {template: {spec: {}}}
YAML
anvilctl apply -f "$WORK/fin.yaml" >/dev/null
anvilctl delete amt fin >/dev/null
sed -i 's|\[example.com/a\]|[example.com/a, example.com/b]|' "$WORK/fin.yaml"
expect_fail 'no new finalizers can be added while the object is being deleted' anvilctl apply -f "$WORK/fin.yaml"
assert_eq "$(field amt fin 'd["metadata"]["finalizers"]')" "['example.com/a']" "finalizers of an object being deleted"
sed -i 's|\[example.com/a, example.com/b\]|[]|' "$WORK/fin.yaml"
anvilctl apply -f "$WORK/fin.yaml" >/dev/null
expect_fail 'not found' anvilctl get amt fin

echo "== every problem of a file at once: schema problems and changes the store refuses"
res_manifest cluster capi-quickstart 'del d["spec"]["infrastructureRef"]' "$WORK/noinfra.json"
{ printf 'apiVersion: infrastructure.anvil.dev/v1alpha1\nkind: AnvilMachineTemplate\nmetadata: {name: two-phase}\nspec: {template: {nope: 1}}\n---\n'
  cat "$WORK/noinfra.json"; } >"$WORK/two-phase.yaml"
set +e; out=$(anvilctl apply -f "$WORK/two-phase.yaml" 2>&1); rc=$?; set -e
[ $rc -eq 1 ] || fail "two-phase apply exited $rc"
echo "$out" | grep -q "two-phase.yaml:4:.*AnvilMachineTemplate/two-phase: spec.template.nope" || fail "schema problem missing: $out"
echo "$out" | grep -q "two-phase.yaml:6:.*Cluster/capi-quickstart: spec.infrastructureRef: cannot be removed once set" ||
  fail "the store's refusal is missing: $out"
field cluster capi-quickstart 'd["spec"]["infrastructureRef"]["name"]' >/dev/null
expect_fail 'not found' anvilctl get amt two-phase

echo "== a Cluster's references may not be removed"
res_manifest cluster capi-quickstart 'del d["spec"]["controlPlaneRef"]' "$WORK/noref.json"
expect_fail 'spec.controlPlaneRef: cannot be removed once set' anvilctl apply -f "$WORK/noref.json"
field cluster capi-quickstart 'd["spec"]["controlPlaneRef"]["name"]' >/dev/null

echo "== the paused annotation stops the controllers"
sed 's/name: demo$/name: paused/; s/name: demo-/name: paused-/; s/clusterName: demo/clusterName: paused/; s/  namespace: default/  namespace: default\n  annotations: {cluster.x-k8s.io\/paused: "true"}/' \
  "$SRC/examples/cluster.yaml" | awk '/^kind: Cluster$/{c=1} {print} ' >"$WORK/paused.yaml"
/usr/bin/python3 - "$WORK/paused.yaml" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
for d in docs:
    if d["kind"] != "Cluster":
        d["metadata"].pop("annotations", None)
yaml.safe_dump_all(docs, open(sys.argv[1], "w"), sort_keys=False)
PY
anvilctl apply -f "$WORK/paused.yaml" >/dev/null
sleep 1
[ -z "$(names ms -l cluster.x-k8s.io/deployment-name=paused-md-0)" ] || fail "a paused cluster's deployment got a MachineSet"
assert_eq "$(field anvilcluster paused 'd.get("status",{}).get("ready")')" None "a paused cluster's AnvilCluster reconciled"
anvilctl describe cluster paused | grep -q "^Cluster/paused (paused)" || fail "describe cluster does not say paused"
anvilctl annotate cluster paused cluster.x-k8s.io/paused- >/dev/null
anvil_wait 10 "MachineSet after unpausing" bash -c "[ -n \"\$($CTL get ms -l cluster.x-k8s.io/deployment-name=paused-md-0 -o name)\" ]"
anvil_wait 10 "AnvilCluster ready after unpausing" bash -c "$CTL get anvilcluster paused -o json | grep -q '\"ready\": true'"

echo "== namespaces: default, -n, -A"
anvilctl apply -n team-a -f "$WORK/sel-a.yaml" | grep -q created || fail "apply -n"
assert_eq "$(anvilctl get amt sel-a -n team-a -o json | json 'd["metadata"]["namespace"]')" team-a "namespace from -n"
anvilctl get amt -A | head -1 | grep -q "^NAMESPACE *NAME" || fail "get -A has no NAMESPACE column"
anvilctl get amt | head -1 | grep -q "^NAME" || fail "get without -A shows a NAMESPACE column"
[ "$(anvilctl get amt -A -o name | grep -c '/sel-a$')" -eq 2 ] || fail "sel-a in two namespaces"

echo "== scale"
assert_eq "$(anvilctl scale md md-expr --replicas 2)" "machinedeployment.cluster.x-k8s.io/md-expr scaled" "scale"
assert_eq "$(field md md-expr 'd["spec"]["replicas"]')" 2 "scaled replicas"
expect_fail "replicas must be odd" anvilctl scale kcp capi-quickstart-control-plane --replicas 2

echo "== exit codes, --help, explain"
expect_fail 'doesn.t have a resource type "widgets"' anvilctl get widgets
expect_fail 'not found' anvilctl describe machine nope
expect_fail 'unknown command' anvilctl frobnicate
for c in apply get describe delete rollout scale label annotate explain token host info version; do
  out=$(anvilctl "$c" --help) || fail "$c --help exited non-zero"
  echo "$out" | grep -q "^Usage: anvilctl $c" || fail "$c --help: $out"
done
ANVIL_SERVER=/nonexistent anvilctl explain md.spec.strategy.rollingUpdate.maxSurge | grep -q "int-or-string" ||
  fail "explain (offline)"
ANVIL_SERVER=/nonexistent anvilctl version --client | grep -q "^Client Version:" || fail "version --client"
expect_fail 'cannot reach the coordinator' env ANVIL_SERVER=/nonexistent "$CTL" get md
echo PASS
