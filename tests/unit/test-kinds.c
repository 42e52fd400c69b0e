/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/kinds.h: name resolution as kubectl does it, whole-document validation
 * of every kind with Cluster API v1beta1 manifests, and label selectors (matching, kubectl's -l
 * syntax, printing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "kinds.h"
#include "obj.h"
#include "yamlio.h"

static Obj *yaml(const char *text) {
        Obj *o = NULL;
        YamlError err = {0};
        if (yaml_parse_one(text, strlen(text), &o, &err) < 0)
                fail_msg("bad test YAML at %u:%u: %s", err.line, err.column, err.message);
        return o;
}

/* ---- kind names ---- */

static void test_kind_resolve(void **state) {
        (void)state;
        struct {
                const char *name;
                const char *kind;
        } cases[] = {
                {"MachineDeployment", "MachineDeployment"},
                {"machinedeployments", "MachineDeployment"},
                {"machinedeployment", "MachineDeployment"},
                {"md", "MachineDeployment"},
                {"MD", "MachineDeployment"},
                {"MachineDeployments", "MachineDeployment"},
                {"kcp", "KubeadmControlPlane"},
                {"KCP", "KubeadmControlPlane"},
                {"kubeadmcontrolplanes", "KubeadmControlPlane"},
                {"mhc", "MachineHealthCheck"},
                {"Mhc", "MachineHealthCheck"},
                {"machine", "Machine"},
                {"machines", "Machine"},
                {"ma", "Machine"},
                {"ms", "MachineSet"},
                {"cluster", "Cluster"},
                {"cl", "Cluster"},
                {"hosts", "Host"},
                {"ho", "Host"},
                {"secret", "Secret"},
                {"ev", "Event"},
                {"kc", "KubeadmConfig"},
                {"kct", "KubeadmConfigTemplate"},
                {"ac", "AnvilCluster"},
                {"am", "AnvilMachine"},
                {"amt", "AnvilMachineTemplate"},
                {"machines.cluster.x-k8s.io", "Machine"},
                {"md.cluster.x-k8s.io", "MachineDeployment"},
                {"KubeadmControlPlane.controlplane.cluster.x-k8s.io", "KubeadmControlPlane"},
                {"kcp.controlplane.cluster.x-k8s.io", "KubeadmControlPlane"},
                {"hosts.infrastructure.anvil.dev", "Host"},
                {"kubeadmconfigs.bootstrap.cluster.x-k8s.io", "KubeadmConfig"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const KindInfo *k = kind_resolve(cases[i].name);
                if (!k || !streq(k->kind, cases[i].kind))
                        fail_msg("\"%s\" resolved to %s, expected %s", cases[i].name,
                                 k ? k->kind : "nothing", cases[i].kind);
        }
        const char *unknown[] = {
                "",
                "widgets",
                "machinedeploymentz",
                "m",
                "machines.bootstrap.cluster.x-k8s.io", /* wrong group */
                "machines.cluster.x-k8s",              /* partial group */
                "kcp.cluster.x-k8s.io",
                ".cluster.x-k8s.io",
                "hosts.cluster.x-k8s.io",
        };
        for (size_t i = 0; i < ELEMENTSOF(unknown); i++) {
                const KindInfo *k = kind_resolve(unknown[i]);
                if (k)
                        fail_msg("\"%s\" resolved to %s", unknown[i], k->kind);
        }
        char huge[300];
        memset(huge, 'a', sizeof(huge) - 1);
        huge[sizeof(huge) - 1] = 0;
        assert_null(kind_resolve(huge));

        /* kind_lookup is exact. */
        assert_non_null(kind_lookup("Machine"));
        assert_null(kind_lookup("machine"));
        assert_null(kind_lookup("machines"));
        /* Every kind resolves by its own names. */
        for (const KindInfo *const *k = anvil_kinds; *k; k++) {
                assert_ptr_equal(kind_resolve((*k)->kind), *k);
                assert_ptr_equal(kind_resolve((*k)->plural), *k);
                assert_ptr_equal(kind_resolve((*k)->singular), *k);
                assert_ptr_equal(kind_lookup((*k)->kind), *k);
        }
        char buf[128];
        assert_string_equal(kind_api_version(kind_lookup("Machine"), buf, sizeof(buf)),
                            "cluster.x-k8s.io/v1beta1");
        assert_string_equal(kind_api_version(kind_lookup("Secret"), buf, sizeof(buf)), "v1");
        assert_string_equal(kind_api_version(kind_lookup("Host"), buf, sizeof(buf)),
                            "infrastructure.anvil.dev/v1alpha1");
        assert_string_equal(kind_api_version(kind_lookup("KubeadmControlPlane"), buf, sizeof(buf)),
                            "controlplane.cluster.x-k8s.io/v1beta1");
}

/* ---- documents ---- */

#define CAPI  "apiVersion: cluster.x-k8s.io/v1beta1\n"
#define ANVIL "apiVersion: infrastructure.anvil.dev/v1alpha1\n"

static const char cluster_yaml[] = CAPI "kind: Cluster\n"
                                        "metadata:\n"
                                        "  name: prod\n"
                                        "  namespace: default\n"
                                        "  labels: {env: prod}\n"
                                        "spec:\n"
                                        "  clusterNetwork:\n"
                                        "    pods:\n"
                                        "      cidrBlocks: [192.168.0.0/16]\n"
                                        "    services:\n"
                                        "      cidrBlocks: [10.128.0.0/12]\n"
                                        "    serviceDomain: cluster.local\n"
                                        "  controlPlaneRef:\n"
                                        "    apiVersion: controlplane.cluster.x-k8s.io/v1beta1\n"
                                        "    kind: KubeadmControlPlane\n"
                                        "    name: prod-control-plane\n"
                                        "  infrastructureRef:\n"
                                        "    apiVersion: infrastructure.anvil.dev/v1alpha1\n"
                                        "    kind: AnvilCluster\n"
                                        "    name: prod\n";

static const char machine_yaml[] = CAPI
        "kind: Machine\n"
        "metadata: {name: prod-m-1}\n"
        "spec:\n"
        "  clusterName: prod\n"
        "  version: v1.30.2\n"
        "  nodeDrainTimeout: 5m\n"
        "  bootstrap:\n"
        "    configRef: {apiVersion: bootstrap.cluster.x-k8s.io/v1beta1, kind: KubeadmConfig,"
        " name: prod-m-1}\n"
        "  infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilMachine,"
        " name: prod-m-1}\n";

static const char machineset_yaml[] =
        CAPI "kind: MachineSet\n"
             "metadata: {name: prod-ms}\n"
             "spec:\n"
             "  clusterName: prod\n"
             "  replicas: 2\n"
             "  deletePolicy: Oldest\n"
             "  selector:\n"
             "    matchLabels: {pool: a}\n"
             "  template:\n"
             "    metadata:\n"
             "      labels: {pool: a}\n"
             "    spec:\n"
             "      clusterName: prod\n"
             "      version: v1.30.2\n"
             "      bootstrap: {dataSecretName: prod-ms-bootstrap}\n"
             "      infrastructureRef: {kind: AnvilMachineTemplate, name: x}\n";

static const char md_yaml[] = CAPI "kind: MachineDeployment\n"
                                   "metadata:\n"
                                   "  name: prod-md-0\n"
                                   "  namespace: default\n"
                                   "spec:\n"
                                   "  clusterName: prod\n"
                                   "  replicas: 3\n"
                                   "  selector:\n"
                                   "    matchLabels:\n"
                                   "      cluster.x-k8s.io/cluster-name: prod\n"
                                   "  strategy:\n"
                                   "    type: RollingUpdate\n"
                                   "    rollingUpdate: {maxSurge: 1, maxUnavailable: 25%}\n"
                                   "  template:\n"
                                   "    metadata:\n"
                                   "      labels:\n"
                                   "        cluster.x-k8s.io/cluster-name: prod\n"
                                   "        nodepool: nodepool-0\n"
                                   "    spec:\n"
                                   "      clusterName: prod\n"
                                   "      version: v1.30.2\n"
                                   "      bootstrap:\n"
                                   "        configRef:\n"
                                   "          apiVersion: bootstrap.cluster.x-k8s.io/v1beta1\n"
                                   "          kind: KubeadmConfigTemplate\n"
                                   "          name: prod-md-0\n"
                                   "      infrastructureRef:\n"
                                   "        apiVersion: infrastructure.anvil.dev/v1alpha1\n"
                                   "        kind: AnvilMachineTemplate\n"
                                   "        name: prod-md-0\n";

static const char mhc_yaml[] = CAPI "kind: MachineHealthCheck\n"
                                    "metadata: {name: prod-mhc}\n"
                                    "spec:\n"
                                    "  clusterName: prod\n"
                                    "  maxUnhealthy: 40%\n"
                                    "  nodeStartupTimeout: 10m\n"
                                    "  selector:\n"
                                    "    matchLabels: {nodepool: nodepool-0}\n"
                                    "  unhealthyConditions:\n"
                                    "    - type: Ready\n"
                                    "      status: Unknown\n"
                                    "      timeout: 300s\n"
                                    "    - type: Ready\n"
                                    "      status: \"False\"\n"
                                    "      timeout: 300s\n";

static const char kcp_yaml[] =
        "apiVersion: controlplane.cluster.x-k8s.io/v1beta1\n"
        "kind: KubeadmControlPlane\n"
        "metadata:\n"
        "  name: prod-control-plane\n"
        "spec:\n"
        "  replicas: 3\n"
        "  version: v1.30.2\n"
        "  machineTemplate:\n"
        "    infrastructureRef:\n"
        "      apiVersion: infrastructure.anvil.dev/v1alpha1\n"
        "      kind: AnvilMachineTemplate\n"
        "      name: prod-control-plane\n"
        "  kubeadmConfigSpec:\n"
        "    clusterConfiguration:\n"
        "      apiServer:\n"
        "        certSANs: [localhost, 127.0.0.1]\n"
        "      controllerManager:\n"
        "        extraArgs: {enable-hostpath-provisioner: \"true\"}\n"
        "    initConfiguration:\n"
        "      nodeRegistration:\n"
        "        criSocket: unix:///var/run/containerd/containerd.sock\n"
        "        kubeletExtraArgs: {eviction-hard: \"nodefs.available<0%\"}\n"
        "    joinConfiguration:\n"
        "      nodeRegistration:\n"
        "        criSocket: unix:///var/run/containerd/containerd.sock\n"
        "    files:\n"
        "      - path: /etc/kubernetes/audit.yaml\n"
        "        owner: root:root\n"
        "        permissions: \"0600\"\n"
        "        content: |\n"
        "          apiVersion: audit.k8s.io/v1\n"
        "          kind: Policy\n"
        "  rolloutStrategy:\n"
        "    type: RollingUpdate\n"
        "    rollingUpdate: {maxSurge: 1}\n";

static const char kc_yaml[] = "apiVersion: bootstrap.cluster.x-k8s.io/v1beta1\n"
                              "kind: KubeadmConfig\n"
                              "metadata: {name: prod-m-1}\n"
                              "spec:\n"
                              "  joinConfiguration:\n"
                              "    nodeRegistration:\n"
                              "      kubeletExtraArgs: {node-labels: role=worker}\n"
                              "      taints: [{key: dedicated, value: gpu, effect: NoSchedule}]\n"
                              "    discovery:\n"
                              "      bootstrapToken:\n"
                              "        token: abcdef.0123456789abcdef\n"
                              "        apiServerEndpoint: 10.0.0.100:6443\n"
                              "        caCertHashes: ['sha256:00']\n"
                              "  preKubeadmCommands: [echo hi]\n"
                              "  files:\n"
                              "    - path: /etc/motd\n"
                              "      content: hello\n"
                              "    - path: /etc/secret\n"
                              "      contentFrom: {secret: {name: s, key: k}}\n";

static const char kct_yaml[] =
        "apiVersion: bootstrap.cluster.x-k8s.io/v1beta1\n"
        "kind: KubeadmConfigTemplate\n"
        "metadata: {name: prod-md-0}\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      joinConfiguration:\n"
        "        nodeRegistration:\n"
        "          kubeletExtraArgs: {eviction-hard: \"nodefs.available<0%\"}\n";

static const char ac_yaml[] = ANVIL "kind: AnvilCluster\n"
                                    "metadata: {name: prod}\n"
                                    "spec:\n"
                                    "  controlPlaneEndpoint: {host: 10.0.0.100, port: 6443}\n";

static const char am_yaml[] =
        ANVIL "kind: AnvilMachine\n"
              "metadata: {name: prod-m-1}\n"
              "spec:\n"
              "  hostSelector:\n"
              "    matchLabels: {rack: r1}\n"
              "    matchExpressions: [{key: anvil.dev/gpu, operator: DoesNotExist}]\n";

static const char amt_yaml[] = ANVIL "kind: AnvilMachineTemplate\n"
                                     "metadata: {name: prod-md-0}\n"
                                     "spec:\n"
                                     "  template:\n"
                                     "    spec:\n"
                                     "      hostSelector:\n"
                                     "        matchLabels: {role: worker}\n";

static const char host_yaml[] = ANVIL "kind: Host\n"
                                      "metadata:\n"
                                      "  name: rack1-07\n"
                                      "  labels: {rack: r1, anvil.dev/role: worker}\n"
                                      "spec:\n"
                                      "  action: Idle\n"
                                      "  resetRequired: false\n";

/* Namespace-less: namespaced kinds get "default" when stored. */
static const char secret_yaml[] = "apiVersion: v1\n"
                                  "kind: Secret\n"
                                  "metadata: {name: prod-kubeconfig}\n"
                                  "type: cluster.x-k8s.io/secret\n"
                                  "data: {value: aGVsbG8=}\n"
                                  "stringData: {extra: x}\n";

static const char event_yaml[] = "apiVersion: v1\n"
                                 "kind: Event\n"
                                 "metadata: {name: ev1, namespace: default}\n"
                                 "involvedObject: {kind: Machine, name: m1}\n"
                                 "reason: Created\n"
                                 "message: hi\n"
                                 "type: Normal\n"
                                 "count: 1\n";

static const struct {
        const char *kind;
        const char *text;
} valid_docs[] = {
        {"Cluster", cluster_yaml},
        {"Machine", machine_yaml},
        {"MachineSet", machineset_yaml},
        {"MachineDeployment", md_yaml},
        {"MachineHealthCheck", mhc_yaml},
        {"KubeadmControlPlane", kcp_yaml},
        {"KubeadmConfig", kc_yaml},
        {"KubeadmConfigTemplate", kct_yaml},
        {"AnvilCluster", ac_yaml},
        {"AnvilMachine", am_yaml},
        {"AnvilMachineTemplate", amt_yaml},
        {"Host", host_yaml},
        {"Secret", secret_yaml},
        {"Event", event_yaml},
};

static void dump_problems(const Problems *p) {
        for (size_t i = 0; i < p->n; i++)
                print_message("  %u:%u: %s: %s\n", p->items[i].mark.line, p->items[i].mark.column,
                              p->items[i].path, p->items[i].message);
}

static void test_valid_document_of_each_kind(void **state) {
        (void)state;
        size_t n_kinds = 0;
        for (const KindInfo *const *k = anvil_kinds; *k; k++)
                n_kinds++;
        assert_int_equal(n_kinds, ELEMENTSOF(valid_docs));
        for (size_t i = 0; i < ELEMENTSOF(valid_docs); i++) {
                _cleanup_(obj_freep) Obj *doc = yaml(valid_docs[i].text);
                _cleanup_(problems_clearp) Problems p = {0};
                const KindInfo *k = NULL;
                int r = kind_validate_document(doc, &k, &p);
                if (r != 0) {
                        dump_problems(&p);
                        fail_msg("valid %s refused with %d problem(s)", valid_docs[i].kind, r);
                }
                assert_non_null(k);
                assert_string_equal(k->kind, valid_docs[i].kind);
        }
}

/* Validates text; expects a problem at path containing needle; returns the problem's line. */
static unsigned expect_invalid(const char *text, const char *path, const char *needle) {
        _cleanup_(obj_freep) Obj *doc = yaml(text);
        _cleanup_(problems_clearp) Problems p = {0};
        const KindInfo *k = NULL;
        int r = kind_validate_document(doc, &k, &p);
        assert_true(r >= 0);
        assert_int_equal((size_t)r, p.n);
        for (size_t i = 0; i < p.n; i++)
                if (streq(p.items[i].path, path) && (!needle || strstr(p.items[i].message, needle)))
                        return p.items[i].mark.line;
        dump_problems(&p);
        fail_msg("no problem at \"%s\" containing \"%s\"", path, strna(needle));
        return 0;
}

/* The valid document with one line replaced (must exist exactly). */
static char *replace(const char *text, const char *old, const char *new) {
        const char *at = strstr(text, old);
        if (!at)
                fail_msg("test text lacks \"%s\"", old);
        return asprintf_safe("%.*s%s%s", (int)(at - text), text, new, at + strlen(old));
}

static void test_wrong_api_version_and_kind(void **state) {
        (void)state;
        _cleanup_free_ char *v1a4 = replace(machine_yaml, "cluster.x-k8s.io/v1beta1\nkind",
                                            "cluster.x-k8s.io/v1alpha4\nkind");
        assert_int_equal(expect_invalid(v1a4, "apiVersion",
                                        "Machine is served as \"cluster.x-k8s.io/v1beta1\", not "
                                        "\"cluster.x-k8s.io/v1alpha4\""),
                         1);
        /* An Anvil kind under the CAPI group. */
        _cleanup_free_ char *wrong_group =
                replace(host_yaml, "infrastructure.anvil.dev/v1alpha1", "cluster.x-k8s.io/v1beta1");
        expect_invalid(wrong_group, "apiVersion", "served as");
        _cleanup_free_ char *no_api = replace(machine_yaml, CAPI, "");
        expect_invalid(no_api, "apiVersion", "required field is missing");
        _cleanup_free_ char *int_api = replace(machine_yaml, CAPI, "apiVersion: 1\n");
        expect_invalid(int_api, "apiVersion", "expected string");

        /* Unknown kind: named, with the list of known kinds, and no kind returned. */
        _cleanup_free_ char *widget = replace(machine_yaml, "kind: Machine", "kind: Widget");
        _cleanup_(obj_freep) Obj *doc = yaml(widget);
        _cleanup_(problems_clearp) Problems p = {0};
        const KindInfo *k = NULL;
        assert_int_equal(kind_validate_document(doc, &k, &p), 1);
        assert_null(k);
        assert_string_equal(p.items[0].path, "kind");
        assert_non_null(strstr(p.items[0].message, "unknown kind \"Widget\""));
        assert_non_null(strstr(p.items[0].message, "MachineDeployment"));
        assert_int_equal(p.items[0].mark.line, 2);
        /* kind is case-sensitive in manifests. */
        _cleanup_free_ char *lower = replace(machine_yaml, "kind: Machine", "kind: machine");
        expect_invalid(lower, "kind", "unknown kind");
        _cleanup_free_ char *no_kind = replace(machine_yaml, "kind: Machine\n", "");
        expect_invalid(no_kind, "kind", "required field is missing");
        _cleanup_free_ char *list_kind = replace(machine_yaml, "kind: Machine", "kind: [Machine]");
        expect_invalid(list_kind, "kind", "expected string");

        /* Not an object. */
        _cleanup_(obj_freep) Obj *list = yaml("[a]\n");
        _cleanup_(problems_clearp) Problems q = {0};
        assert_int_equal(kind_validate_document(list, NULL, &q), 1);
        assert_non_null(strstr(q.items[0].message, "must be an object"));
}

static void test_metadata_problems(void **state) {
        (void)state;
        _cleanup_free_ char *no_name =
                replace(machine_yaml, "metadata: {name: prod-m-1}", "metadata: {labels: {a: b}}");
        assert_int_equal(expect_invalid(no_name, "metadata.name", "required field is missing"), 3);
        _cleanup_free_ char *gen = replace(machine_yaml, "metadata: {name: prod-m-1}",
                                           "metadata: {generateName: prod-m-}");
        _cleanup_(obj_freep) Obj *gdoc = yaml(gen);
        _cleanup_(problems_clearp) Problems gp = {0};
        assert_int_equal(kind_validate_document(gdoc, NULL, &gp), 0);
        _cleanup_free_ char *no_meta = replace(machine_yaml, "metadata: {name: prod-m-1}\n", "");
        expect_invalid(no_meta, "metadata", "required field is missing");
        _cleanup_free_ char *bad_name = replace(machine_yaml, "name: prod-m-1}", "name: Prod_M}");
        expect_invalid(bad_name, "metadata.name", "RFC 1123 subdomain");
        _cleanup_free_ char *bad_ns =
                replace(machine_yaml, "name: prod-m-1}", "name: m, namespace: a.b}");
        expect_invalid(bad_ns, "metadata.namespace", "RFC 1123 label");
        _cleanup_free_ char *unknown_meta =
                replace(machine_yaml, "name: prod-m-1}", "name: m, colour: blue}");
        expect_invalid(unknown_meta, "metadata.colour", "unknown field");

        /* Label keys and values. */
        _cleanup_free_ char *bad_label = replace(cluster_yaml, "labels: {env: prod}",
                                                 "labels: {env: prod, \"bad key!\": x}");
        assert_int_equal(expect_invalid(bad_label, "metadata.labels.bad key!", "label key name"),
                         6);
        _cleanup_free_ char *bad_prefix =
                replace(cluster_yaml, "labels: {env: prod}", "labels: {Example.COM/x: y}");
        expect_invalid(bad_prefix, "metadata.labels.Example.COM/x", "prefix");
        char labels[128] = "labels: {env: ";
        size_t n = strlen(labels);
        memset(labels + n, 'v', 64);
        strcpy(labels + n + 64, "}");
        _cleanup_free_ char *long_value = replace(cluster_yaml, "labels: {env: prod}", labels);
        expect_invalid(long_value, "metadata.labels.env", "at most 63 characters");
        strcpy(labels + n + 63, "}"); /* 63 is fine */
        _cleanup_free_ char *max_value = replace(cluster_yaml, "labels: {env: prod}", labels);
        _cleanup_(obj_freep) Obj *mdoc = yaml(max_value);
        _cleanup_(problems_clearp) Problems mp = {0};
        assert_int_equal(kind_validate_document(mdoc, NULL, &mp), 0);
        _cleanup_free_ char *int_value =
                replace(cluster_yaml, "labels: {env: prod}", "labels: {replicas: 3}");
        expect_invalid(int_value, "metadata.labels.replicas", "quote the value");
        /* Keys with dots and slashes are fine. */
        _cleanup_free_ char *dotted = replace(cluster_yaml, "labels: {env: prod}",
                                              "labels: {cluster.x-k8s.io/cluster-name: prod}");
        _cleanup_(obj_freep) Obj *ddoc = yaml(dotted);
        _cleanup_(problems_clearp) Problems dp = {0};
        assert_int_equal(kind_validate_document(ddoc, NULL, &dp), 0);
}

static void test_scope(void **state) {
        (void)state;
        /* Host is cluster-scoped: a namespace is an error. */
        _cleanup_free_ char *host_ns = replace(host_yaml, "  name: rack1-07\n",
                                               "  name: rack1-07\n  namespace: default\n");
        assert_int_equal(expect_invalid(host_ns, "metadata.namespace",
                                        "Host is cluster-scoped and takes no namespace"),
                         5);
        /* A namespaced Secret without a namespace is fine (it defaults), with one too. */
        _cleanup_free_ char *secret_ns = replace(secret_yaml, "{name: prod-kubeconfig}",
                                                 "{name: prod-kubeconfig, namespace: team-a}");
        _cleanup_(obj_freep) Obj *sdoc = yaml(secret_ns);
        _cleanup_(problems_clearp) Problems sp = {0};
        assert_int_equal(kind_validate_document(sdoc, NULL, &sp), 0);
        /* Secret data must be strings, and a Secret has no spec. */
        _cleanup_free_ char *secret_int = replace(secret_yaml, "{value: aGVsbG8=}", "{value: 5}");
        expect_invalid(secret_int, "data.value", "expected string");
        _cleanup_free_ char *secret_spec = replace(secret_yaml, "type:", "spec: {a: 1}\ntype:");
        expect_invalid(secret_spec, "spec", "Secret has no spec");
        /* Extras belong only to their kind. */
        _cleanup_free_ char *machine_data =
                replace(machine_yaml, "spec:\n", "data: {a: b}\nspec:\n");
        expect_invalid(machine_data, "data", "unknown field \"data\"");
}

static void test_spec_problems(void **state) {
        (void)state;
        /* Machine without spec: required. */
        _cleanup_(obj_freep) Obj *bare = yaml(CAPI "kind: Machine\nmetadata: {name: m}\n");
        _cleanup_(problems_clearp) Problems bp = {0};
        assert_int_equal(kind_validate_document(bare, NULL, &bp), 1);
        assert_string_equal(bp.items[0].path, "spec");
        /* Cluster: spec is optional. */
        _cleanup_(obj_freep) Obj *bare_cluster = yaml(CAPI "kind: Cluster\nmetadata: {name: c}\n");
        _cleanup_(problems_clearp) Problems bcp = {0};
        assert_int_equal(kind_validate_document(bare_cluster, NULL, &bcp), 0);

        _cleanup_free_ char *no_cluster = replace(machine_yaml, "  clusterName: prod\n", "");
        expect_invalid(no_cluster, "spec.clusterName", "required field is missing");
        _cleanup_free_ char *bad_version = replace(machine_yaml, "v1.30.2", "1.30");
        expect_invalid(bad_version, "spec.version", "expected string");
        _cleanup_free_ char *bad_version2 = replace(machine_yaml, "v1.30.2", "'v1.x.2'");
        expect_invalid(bad_version2, "spec.version", "valid semantic version");
        _cleanup_free_ char *bad_timeout =
                replace(machine_yaml, "nodeDrainTimeout: 5m", "nodeDrainTimeout: 5 minutes");
        expect_invalid(bad_timeout, "spec.nodeDrainTimeout", "invalid duration");
        _cleanup_free_ char *typo = replace(machine_yaml, "infrastructureRef:", "infraRef:");
        expect_invalid(typo, "spec.infraRef", "unknown field");
        _cleanup_free_ char *unknown_top = replace(machine_yaml, "spec:\n", "specs: {}\nspec:\n");
        assert_int_equal(expect_invalid(unknown_top, "specs", "unknown field \"specs\""), 4);
        _cleanup_free_ char *bad_policy = replace(machineset_yaml, "Oldest", "Youngest");
        expect_invalid(bad_policy, "spec.deletePolicy",
                       "must be one of \"Random\", \"Newest\", "
                       "\"Oldest\"");
        _cleanup_free_ char *neg = replace(machineset_yaml, "replicas: 2", "replicas: -1");
        expect_invalid(neg, "spec.replicas", "must be greater than or equal to 0");

        /* Cluster cross-field checks: CIDRs and topology. */
        _cleanup_free_ char *cidr =
                replace(cluster_yaml, "[192.168.0.0/16]", "[192.168.0.0/16, 10.0.0.0/33]");
        assert_int_equal(expect_invalid(cidr, "spec.clusterNetwork.pods.cidrBlocks[1]", "CIDR"),
                         10);
        _cleanup_free_ char *svc = replace(cluster_yaml, "[10.128.0.0/12]", "[nope]");
        expect_invalid(svc, "spec.clusterNetwork.services.cidrBlocks[0]", "CIDR");
        _cleanup_free_ char *topo = replace(cluster_yaml, "  controlPlaneRef:",
                                            "  topology: {class: quick-start}\n  controlPlaneRef:");
        expect_invalid(topo, "spec.topology", "ClusterClass");
        _cleanup_free_ char *port = replace(ac_yaml, "port: 6443", "port: 0");
        expect_invalid(port, "spec.controlPlaneEndpoint.port", "between 1 and 65535");
}

static void test_kcp_rules(void **state) {
        (void)state;
        _cleanup_free_ char *even = replace(kcp_yaml, "replicas: 3", "replicas: 2");
        assert_int_equal(expect_invalid(even, "spec.replicas", "cannot be an even number"), 6);
        _cleanup_free_ char *four = replace(kcp_yaml, "replicas: 3", "replicas: 4");
        expect_invalid(four, "spec.replicas", "even number");
        _cleanup_free_ char *zero = replace(kcp_yaml, "replicas: 3", "replicas: 0");
        expect_invalid(zero, "spec.replicas", "greater than or equal to 1");
        _cleanup_free_ char *five = replace(kcp_yaml, "replicas: 3", "replicas: 5");
        _cleanup_(obj_freep) Obj *doc = yaml(five);
        _cleanup_(problems_clearp) Problems p = {0};
        assert_int_equal(kind_validate_document(doc, NULL, &p), 0);

        _cleanup_free_ char *kv = replace(
                kcp_yaml, "      apiServer:", "      kubernetesVersion: v1.29.0\n      apiServer:");
        expect_invalid(kv, "spec.kubeadmConfigSpec.clusterConfiguration.kubernetesVersion",
                       "set from spec.version");
        _cleanup_free_ char *no_version = replace(kcp_yaml, "  version: v1.30.2\n", "");
        expect_invalid(no_version, "spec.version", "required");
        _cleanup_free_ char *rel = replace(kcp_yaml, "/etc/kubernetes/audit.yaml", "audit.yaml");
        expect_invalid(rel, "spec.kubeadmConfigSpec.files[0].path", "absolute");
        _cleanup_free_ char *dots =
                replace(kcp_yaml, "/etc/kubernetes/audit.yaml", "/etc/../root/x");
        expect_invalid(dots, "spec.kubeadmConfigSpec.files[0].path", "\"..\"");
        _cleanup_free_ char *perm = replace(kcp_yaml, "\"0600\"", "\"0689\"");
        expect_invalid(perm, "spec.kubeadmConfigSpec.files[0].permissions", "octal");
        _cleanup_free_ char *strategy = replace(kcp_yaml, "type: RollingUpdate", "type: OnDelete");
        expect_invalid(strategy, "spec.rolloutStrategy.type", "unsupported value");
}

static void test_kubeadm_config_rules(void **state) {
        (void)state;
        _cleanup_free_ char *both = replace(kc_yaml, "      content: hello\n",
                                            "      content: hello\n"
                                            "      contentFrom: {secret: {name: s, key: k}}\n");
        expect_invalid(both, "spec.files[0]", "only one of content or contentFrom");
        /* init bootstrapTokens must look like kubeadm tokens. */
        _cleanup_(obj_freep) Obj *init =
                yaml("apiVersion: bootstrap.cluster.x-k8s.io/v1beta1\nkind: KubeadmConfig\n"
                     "metadata: {name: x}\n"
                     "spec:\n"
                     "  initConfiguration:\n"
                     "    bootstrapTokens: [{token: ABCDEF.0123456789abcdef}]\n");
        _cleanup_(problems_clearp) Problems p = {0};
        assert_int_equal(kind_validate_document(init, NULL, &p), 1);
        assert_string_equal(p.items[0].path, "spec.initConfiguration.bootstrapTokens[0].token");
        _cleanup_free_ char *taint = replace(kc_yaml, "NoSchedule", "Sometimes");
        expect_invalid(taint, "spec.joinConfiguration.nodeRegistration.taints[0].effect",
                       "unsupported value");
        _cleanup_free_ char *etcd = replace(kct_yaml, "      joinConfiguration:",
                                            "      clusterConfiguration:\n"
                                            "        etcd:\n"
                                            "          local: {dataDir: /var/lib/etcd}\n"
                                            "          external: {endpoints: [a], caFile: c,"
                                            " certFile: c, keyFile: k}\n"
                                            "      joinConfiguration:");
        expect_invalid(etcd, "spec.template.spec.clusterConfiguration.etcd.local",
                       "cannot have both external and local etcd");
}

static void test_node_name_placeholder(void **state) {
        (void)state;
        /* nodeRegistration.name accepts the Cluster API idiom
         * `name: '{{ ds.meta_data.local_hostname }}'` (CAPI's quick-start templates; a
         * placeholder bundle.h documents): the value is a DNS name only after substitution on
         * the host. Unknown placeholders and non-DNS text around them are still refused. */
        _cleanup_free_ char *text =
                replace(kc_yaml, "      kubeletExtraArgs: {node-labels: role=worker}\n",
                        "      name: '{{ ds.meta_data.local_hostname }}'\n"
                        "      kubeletExtraArgs: {node-labels: role=worker}\n");
        _cleanup_(obj_freep) Obj *doc = yaml(text);
        _cleanup_(problems_clearp) Problems p = {0};
        int r = kind_validate_document(doc, NULL, &p);
        if (r != 0)
                dump_problems(&p);
        assert_int_equal(r, 0);
        const char *good[] = {"'{{ ds.meta_data.hostname }}-w'", "'n{{ds.meta_data.name}}'",
                              "plain-name.example"};
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                char line[128];
                snprintf(line, sizeof(line),
                         "      name: %s\n      kubeletExtraArgs: {node-labels: role=worker}\n",
                         good[i]);
                _cleanup_free_ char *t = replace(
                        kc_yaml, "      kubeletExtraArgs: {node-labels: role=worker}\n", line);
                _cleanup_(obj_freep) Obj *d = yaml(t);
                _cleanup_(problems_clearp) Problems q = {0};
                if (kind_validate_document(d, NULL, &q) != 0) {
                        dump_problems(&q);
                        fail_msg("%s refused", good[i]);
                }
        }
        const char *bad[] = {"'{{ ds.meta_data.region }}'", "'{{ ds.meta_data.provider_id }}'",
                             "'{{ ds.meta_data.hostname }}_x'", "'{{ ds.meta_data.hostname'",
                             "Upper"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char line[128];
                snprintf(line, sizeof(line),
                         "      name: %s\n      kubeletExtraArgs: {node-labels: role=worker}\n",
                         bad[i]);
                _cleanup_free_ char *t = replace(
                        kc_yaml, "      kubeletExtraArgs: {node-labels: role=worker}\n", line);
                expect_invalid(t, "spec.joinConfiguration.nodeRegistration.name", "subdomain");
        }
}

static void test_machinedeployment_selector(void **state) {
        (void)state;
        _cleanup_free_ char *mismatch = replace(md_yaml, "        nodepool: nodepool-0\n", "");
        _cleanup_free_ char *other = replace(md_yaml,
                                             "    matchLabels:\n"
                                             "      cluster.x-k8s.io/cluster-name: prod\n",
                                             "    matchLabels:\n"
                                             "      cluster.x-k8s.io/cluster-name: prod\n"
                                             "      tier: gold\n");
        /* Reported at the template's labels, which must carry what the selector asks. */
        expect_invalid(other, "spec.template.metadata.labels", "must match spec.selector");
        /* Removing a label the selector does not use keeps it valid. */
        _cleanup_(obj_freep) Obj *doc = yaml(mismatch);
        _cleanup_(problems_clearp) Problems p = {0};
        assert_int_equal(kind_validate_document(doc, NULL, &p), 0);
        /* An expression selector is checked the same way. */
        _cleanup_free_ char *expr =
                replace(md_yaml,
                        "    matchLabels:\n"
                        "      cluster.x-k8s.io/cluster-name: prod\n",
                        "    matchExpressions:\n"
                        "      - {key: nodepool, operator: In, values: [a, b]}\n");
        expect_invalid(expr, "spec.template.metadata.labels", "must match spec.selector");
        _cleanup_free_ char *bad_op = replace(md_yaml,
                                              "    matchLabels:\n"
                                              "      cluster.x-k8s.io/cluster-name: prod\n",
                                              "    matchExpressions:\n"
                                              "      - {key: nodepool, operator: Equals}\n");
        expect_invalid(bad_op, "spec.selector.matchExpressions[0].operator", "unsupported value");
        _cleanup_free_ char *bad_key = replace(md_yaml,
                                               "    matchLabels:\n"
                                               "      cluster.x-k8s.io/cluster-name: prod\n",
                                               "    matchExpressions:\n"
                                               "      - {key: 'a b', operator: Exists}\n");
        expect_invalid(bad_key, "spec.selector.matchExpressions[0].key", "label key");
        /* The template's clusterName must be the deployment's. */
        _cleanup_free_ char *cn =
                replace(md_yaml, "      clusterName: prod\n", "      clusterName: other\n");
        expect_invalid(cn, "spec.template.spec.clusterName", "must match spec.clusterName");
        /* MachineSet: the same rule. */
        _cleanup_free_ char *ms =
                replace(machineset_yaml, "labels: {pool: a}", "labels: {pool: b}");
        expect_invalid(ms, "spec.template.metadata.labels", "must match spec.selector");
        /* A selector or matchLabels of the wrong type is a schema problem, reported as such
         * (defaulting cannot follow it, and must not fail the whole validation). */
        _cleanup_free_ char *scalar = replace(
                machineset_yaml, "  selector:\n    matchLabels: {pool: a}\n", "  selector: 1\n");
        expect_invalid(scalar, "spec.selector", "expected");
        _cleanup_free_ char *ml_list = replace(md_yaml,
                                               "    matchLabels:\n"
                                               "      cluster.x-k8s.io/cluster-name: prod\n",
                                               "    matchLabels: [a]\n");
        expect_invalid(ml_list, "spec.selector.matchLabels", "expected");
        _cleanup_free_ char *surge = replace(md_yaml, "maxUnavailable: 25%", "maxUnavailable: x");
        expect_invalid(surge, "spec.strategy.rollingUpdate.maxUnavailable", "percentage");
}

static void test_mhc_unhealthy_range(void **state) {
        (void)state;
        /* spec.unhealthyRange follows Cluster API's pattern ^\[[0-9]+-[0-9]+\]$: the documented
         * form "[1-3]" is accepted and "[1-3]]" (trailing text) is refused. */
        _cleanup_free_ char *ok =
                replace(mhc_yaml, "  maxUnhealthy: 40%\n", "  unhealthyRange: \"[1-3]\"\n");
        _cleanup_(obj_freep) Obj *doc = yaml(ok);
        _cleanup_(problems_clearp) Problems p = {0};
        int r = kind_validate_document(doc, NULL, &p);
        if (r)
                dump_problems(&p);
        assert_int_equal(r, 0);
        _cleanup_free_ char *bad =
                replace(mhc_yaml, "  maxUnhealthy: 40%\n", "  unhealthyRange: \"[1-3]]\"\n");
        expect_invalid(bad, "spec.unhealthyRange", "must look like");
        const char *malformed[] = {"[ 1-3]", "[+1-3]", "[1-]", "1-3", "[1-3", "[-1-3]"};
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                char line[64];
                snprintf(line, sizeof(line), "  unhealthyRange: \"%s\"\n", malformed[i]);
                _cleanup_free_ char *m = replace(mhc_yaml, "  maxUnhealthy: 40%\n", line);
                expect_invalid(m, "spec.unhealthyRange", "must look like");
        }
}

static void test_mhc_rules(void **state) {
        (void)state;
        _cleanup_free_ char *reversed =
                replace(mhc_yaml, "  maxUnhealthy: 40%\n", "  unhealthyRange: \"[3-1]\"\n");
        expect_invalid(reversed, "spec.unhealthyRange", "must look like");
        _cleanup_free_ char *timeout = replace(mhc_yaml, "      timeout: 300s\n    - type",
                                               "      timeout: soon\n    - type");
        expect_invalid(timeout, "spec.unhealthyConditions[0].timeout", "invalid duration");
        _cleanup_free_ char *status = replace(mhc_yaml, "status: Unknown", "status: Maybe");
        expect_invalid(status, "spec.unhealthyConditions[0].status", "unsupported value");
        _cleanup_free_ char *no_sel =
                replace(mhc_yaml, "  selector:\n    matchLabels: {nodepool: nodepool-0}\n", "");
        expect_invalid(no_sel, "spec.selector", "required");
        _cleanup_free_ char *max = replace(mhc_yaml, "40%", "-1");
        expect_invalid(max, "spec.maxUnhealthy", "negative");
}

/* ---- label selectors ---- */

static int matches(const char *selector_yaml, const char *labels_yaml) {
        _cleanup_(obj_freep) Obj *sel = selector_yaml ? yaml(selector_yaml) : NULL;
        _cleanup_(obj_freep) Obj *labels = labels_yaml ? yaml(labels_yaml) : NULL;
        return label_selector_matches(sel, labels);
}

static void test_selector_matches(void **state) {
        (void)state;
        const char *labels = "{cluster.x-k8s.io/cluster-name: prod, "
                             "node-role.kubernetes.io/control-plane: '', rack: r1}";
        /* matchLabels with dotted/slashed keys. */
        assert_int_equal(matches("matchLabels: {cluster.x-k8s.io/cluster-name: prod}", labels), 1);
        assert_int_equal(matches("matchLabels: {cluster.x-k8s.io/cluster-name: dev}", labels), 0);
        assert_int_equal(matches("matchLabels: {cluster.x-k8s.io/other: prod}", labels), 0);
        assert_int_equal(
                matches("matchLabels: {rack: r1, cluster.x-k8s.io/cluster-name: prod}", labels), 1);
        assert_int_equal(
                matches("matchLabels: {rack: r1, cluster.x-k8s.io/cluster-name: x}", labels), 0);
        /* An empty label value is a value. */
        assert_int_equal(
                matches("matchLabels: {node-role.kubernetes.io/control-plane: ''}", labels), 1);
        /* In / NotIn / Exists / DoesNotExist. */
        const char *in = "matchExpressions: [{key: rack, operator: In, values: [r1, r2]}]";
        assert_int_equal(matches(in, labels), 1);
        assert_int_equal(matches(in, "{rack: r3}"), 0);
        assert_int_equal(matches(in, "{}"), 0);
        const char *notin = "matchExpressions: [{key: cluster.x-k8s.io/cluster-name, "
                            "operator: NotIn, values: [dev, test]}]";
        assert_int_equal(matches(notin, labels), 1);
        assert_int_equal(matches(notin, "{cluster.x-k8s.io/cluster-name: dev}"), 0);
        assert_int_equal(matches(notin, "{}"), 1); /* absent is "not in" */
        const char *exists = "matchExpressions: [{key: node-role.kubernetes.io/control-plane, "
                             "operator: Exists}]";
        assert_int_equal(matches(exists, labels), 1);
        assert_int_equal(matches(exists, "{rack: r1}"), 0);
        const char *dne = "matchExpressions: [{key: anvil.dev/gpu, operator: DoesNotExist}]";
        assert_int_equal(matches(dne, labels), 1);
        assert_int_equal(matches(dne, "{anvil.dev/gpu: 'true'}"), 0);
        assert_int_equal(matches(dne, NULL), 1);
        /* Everything is ANDed. */
        const char *all = "matchLabels: {rack: r1}\n"
                          "matchExpressions:\n"
                          "  - {key: cluster.x-k8s.io/cluster-name, operator: In, values: [prod]}\n"
                          "  - {key: anvil.dev/gpu, operator: DoesNotExist}\n";
        assert_int_equal(matches(all, labels), 1);
        assert_int_equal(matches(all, "{rack: r1, cluster.x-k8s.io/cluster-name: prod, "
                                      "anvil.dev/gpu: x}"),
                         0);
        assert_int_equal(matches(all, "{rack: r2, cluster.x-k8s.io/cluster-name: prod}"), 0);
        /* Empty or missing selectors match everything. */
        assert_int_equal(matches("{}", labels), 1);
        assert_int_equal(matches("{}", NULL), 1);
        assert_int_equal(matches(NULL, labels), 1);
        assert_int_equal(matches("matchLabels: {}\nmatchExpressions: []", "{}"), 1);
        _cleanup_(obj_freep) Obj *null_sel = obj_new_null();
        assert_int_equal(label_selector_matches(null_sel, NULL), 1);
        /* No labels at all. */
        assert_int_equal(matches("matchLabels: {rack: r1}", NULL), 0);
        /* Malformed selectors. */
        assert_int_equal(matches("matchExpressions: [{key: a, operator: Equals}]", "{a: b}"),
                         -EINVAL);
        assert_int_equal(matches("matchExpressions: [{operator: Exists}]", "{a: b}"), -EINVAL);
        assert_int_equal(matches("matchExpressions: [{key: a}]", "{a: b}"), -EINVAL);
        assert_int_equal(matches("[a]", "{a: b}"), -EINVAL);
}

static void test_selector_parse(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *sel = NULL;
        assert_int_equal(label_selector_parse("a=b,c!=d,e in (x,y),!f,g", &sel), 0);
        _cleanup_(obj_freep) Obj *want = yaml("matchLabels: {a: b}\n"
                                              "matchExpressions:\n"
                                              "  - {key: c, operator: NotIn, values: [d]}\n"
                                              "  - {key: e, operator: In, values: [x, y]}\n"
                                              "  - {key: f, operator: DoesNotExist}\n"
                                              "  - {key: g, operator: Exists}\n");
        assert_true(obj_equal(sel, want));
        /* ...and it behaves. */
        _cleanup_(obj_freep) Obj *l1 = yaml("{a: b, c: z, e: y, g: '1'}");
        _cleanup_(obj_freep) Obj *l2 = yaml("{a: b, c: d, e: y, g: '1'}");
        _cleanup_(obj_freep) Obj *l3 = yaml("{a: b, e: x, f: '', g: '1'}");
        _cleanup_(obj_freep) Obj *l4 = yaml("{a: b, e: x}");
        assert_int_equal(label_selector_matches(sel, l1), 1);
        assert_int_equal(label_selector_matches(sel, l2), 0);
        assert_int_equal(label_selector_matches(sel, l3), 0);
        assert_int_equal(label_selector_matches(sel, l4), 0);

        /* Spacing, "==", notin, keys with prefixes. */
        _cleanup_(obj_freep) Obj *s2 = NULL;
        assert_int_equal(label_selector_parse(" cluster.x-k8s.io/cluster-name == prod , "
                                              "tier notin ( db , cache ) ,  ! anvil.dev/gpu ",
                                              &s2),
                         0);
        _cleanup_(obj_freep) Obj *want2 =
                yaml("matchLabels: {cluster.x-k8s.io/cluster-name: prod}\n"
                     "matchExpressions:\n"
                     "  - {key: tier, operator: NotIn, values: [db, cache]}\n"
                     "  - {key: anvil.dev/gpu, operator: DoesNotExist}\n");
        assert_true(obj_equal(s2, want2));
        /* The empty selector selects everything. */
        _cleanup_(obj_freep) Obj *s3 = NULL;
        assert_int_equal(label_selector_parse("", &s3), 0);
        assert_int_equal(label_selector_matches(s3, l1), 1);

        const char *bad[] = {
                ",",    "a=b,,c", "a in (x",    "a in x",    "bad key=1",
                "!",    "a b",    "e in (x,,y", ",a=b",      "a in (x, ,y)",
                "-a=b", "a/b/c",  "Bad_/x=1",   "a notin x",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Obj *o = NULL;
                int r = label_selector_parse(bad[i], &o);
                if (r != -EINVAL) {
                        obj_free(o);
                        fail_msg("\"%s\" parsed (r=%d)", bad[i], r);
                }
                assert_null(o);
        }
}

static void test_selector_parse_set_semantics(void **state) {
        (void)state;
        /* label_selector_parse() follows kubectl's -l semantics: the value set of in/notin must
         * not be empty ("a in ()") nor hold an empty value ("x in (a,,b)"), and requirements
         * are ANDed, so "a=b,a=c" keeps both (the second as an In requirement) and matches
         * nothing rather than only a=c. */
        Obj *o = NULL;
        assert_int_equal(label_selector_parse("a in ()", &o), -EINVAL);
        assert_int_equal(label_selector_parse("x in (a,,b)", &o), -EINVAL);
        _cleanup_(obj_freep) Obj *sel = NULL;
        assert_int_equal(label_selector_parse("a=b,a=c", &sel), 0);
        _cleanup_(obj_freep) Obj *l = yaml("{a: c}");
        assert_int_equal(label_selector_matches(sel, l), 0);
        _cleanup_(obj_freep) Obj *lb = yaml("{a: b}");
        assert_int_equal(label_selector_matches(sel, lb), 0);
        /* The same requirement twice is just that requirement; "!=" and "=" take one value,
         * which may be empty. */
        _cleanup_(obj_freep) Obj *same = NULL;
        assert_int_equal(label_selector_parse("a=b,a==b", &same), 0);
        assert_int_equal(label_selector_matches(same, lb), 1);
        _cleanup_(obj_freep) Obj *ne = NULL;
        assert_int_equal(label_selector_parse("a!=", &ne), 0);
        assert_int_equal(label_selector_matches(ne, lb), 1);
        _cleanup_(obj_freep) Obj *lempty = yaml("{a: ''}");
        assert_int_equal(label_selector_matches(ne, lempty), 0);
        assert_int_equal(label_selector_parse("a notin ()", &o), -EINVAL);
        assert_null(o);
}

static void test_selector_to_string(void **state) {
        (void)state;
        const char *text = "a=b,c!=d,e in (x,y),!f,g";
        _cleanup_(obj_freep) Obj *sel = NULL;
        assert_int_equal(label_selector_parse(text, &sel), 0);
        _cleanup_free_ char *s = label_selector_to_string(sel);
        /* != is printed as its set form. */
        assert_string_equal(s, "a=b,c notin (d),e in (x,y),!f,g");
        /* Parsing the printed form gives the same selector. */
        _cleanup_(obj_freep) Obj *again = NULL;
        assert_int_equal(label_selector_parse(s, &again), 0);
        assert_true(obj_equal(sel, again));

        _cleanup_(obj_freep) Obj *y = yaml("matchLabels: {cluster.x-k8s.io/cluster-name: prod, "
                                           "role: worker}\n"
                                           "matchExpressions: [{key: rack, operator: In, values:"
                                           " [r1, r2]}]\n");
        _cleanup_free_ char *ys = label_selector_to_string(y);
        assert_string_equal(ys, "cluster.x-k8s.io/cluster-name=prod,role=worker,rack in (r1,r2)");
        _cleanup_(obj_freep) Obj *empty = obj_new_map();
        _cleanup_free_ char *es = label_selector_to_string(empty);
        assert_string_equal(es, "");
        _cleanup_free_ char *ns = label_selector_to_string(NULL);
        assert_string_equal(ns, "");
        /* A selector longer than the internal buffer is truncated, not overflowed. */
        _cleanup_(obj_freep) Obj *big = obj_new_map();
        Obj *ml = obj_map_ensure_map(big, "matchLabels");
        for (int i = 0; i < 200; i++) {
                char k[16];
                snprintf(k, sizeof(k), "key%03d", i);
                assert_int_equal(obj_map_set_str(ml, k, "value"), 0);
        }
        _cleanup_free_ char *bs = label_selector_to_string(big);
        assert_non_null(bs);
        assert_true(strlen(bs) < 1024);
        assert_true(startswith(bs, "key000=value,key001=value"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kind_resolve),
                cmocka_unit_test(test_valid_document_of_each_kind),
                cmocka_unit_test(test_wrong_api_version_and_kind),
                cmocka_unit_test(test_metadata_problems),
                cmocka_unit_test(test_scope),
                cmocka_unit_test(test_spec_problems),
                cmocka_unit_test(test_kcp_rules),
                cmocka_unit_test(test_kubeadm_config_rules),
                cmocka_unit_test(test_node_name_placeholder),
                cmocka_unit_test(test_machinedeployment_selector),
                cmocka_unit_test(test_mhc_unhealthy_range),
                cmocka_unit_test(test_mhc_rules),
                cmocka_unit_test(test_selector_matches),
                cmocka_unit_test(test_selector_parse),
                cmocka_unit_test(test_selector_parse_set_semantics),
                cmocka_unit_test(test_selector_to_string),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
