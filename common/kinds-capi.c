/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster.x-k8s.io/v1beta1: Cluster, Machine, MachineSet, MachineDeployment,
 * MachineHealthCheck. Field names, JSON casing and required fields follow Cluster API's
 * api/v1beta1 types; defaults and the cross-field checks follow its webhooks (defaulting
 * runs after these checks here, so a check of a defaulted field accepts it absent).
 * What Anvil adds: references must name kinds Anvil serves, so a manifest written for another
 * infrastructure provider fails at apply with the field to change, not later in a controller.
 */
#include "kinds.h"

#define CAPI_GROUP         "cluster.x-k8s.io"
#define LABEL_CLUSTER_NAME "cluster.x-k8s.io/cluster-name"

static const char *const cluster_infra_kinds[] = {"AnvilCluster", NULL};
static const char *const cluster_cp_kinds[] = {"KubeadmControlPlane", NULL};
static const char *const machine_infra_kinds[] = {"AnvilMachine", NULL};
static const char *const machine_bootstrap_kinds[] = {"KubeadmConfig", NULL};
static const char *const template_infra_kinds[] = {"AnvilMachineTemplate", NULL};
static const char *const template_bootstrap_kinds[] = {"KubeadmConfigTemplate", NULL};

static const SchemaField network_ranges_fields[] = {
        {"cidrBlocks", ST_LIST, SF_REQUIRED, .item = ST_STRING, .max = 16,
         .doc = "CIDR ranges, e.g. [\"192.168.0.0/16\"]"},
        SCHEMA_END,
};

static const SchemaField cluster_network_fields[] = {
        {"apiServerPort", ST_INT, .min = 1, .max = 65535,
         .doc = "port the API server binds to on each control plane host (kubeadm's default "
                "6443)"},
        {"services", ST_OBJECT, .fields = network_ranges_fields,
         .doc = "ranges service VIPs are allocated from (kubeadm serviceSubnet)"},
        {"pods", ST_OBJECT, .fields = network_ranges_fields,
         .doc = "ranges pod networks are allocated from (kubeadm podSubnet)"},
        {"serviceDomain", ST_STRING, SF_DNS_NAME,
         .doc = "DNS domain of services (kubeadm dnsDomain), e.g. cluster.local"},
        SCHEMA_END,
};

const SchemaField api_endpoint_fields[] = {
        {"host", ST_STRING, SF_REQUIRED, .max = 253,
         .doc = "host name or IP address the API server is reached at"},
        {"port", ST_INT, SF_REQUIRED, .min = 0, .max = 65535, .doc = "its port"},
        SCHEMA_END,
};

static const SchemaField availability_gate_fields[] = {
        {"conditionType", ST_STRING, SF_REQUIRED | SF_NONEMPTY, .max = 316,
         .doc = "a condition type that must be True too"},
        SCHEMA_END,
};

static const SchemaField cluster_spec[] = {
        {"paused", ST_BOOL,
         .doc = "stops every controller from acting on this cluster and its objects"},
        {"clusterNetwork", ST_OBJECT, .fields = cluster_network_fields,
         .doc = "the cluster's networks; passed to kubeadm"},
        {"controlPlaneEndpoint", ST_OBJECT, .fields = api_endpoint_fields,
         .doc = "the API server endpoint; copied from the AnvilCluster when unset"},
        {"controlPlaneRef", ST_OBJECT, .fields = object_reference_fields,
         .doc = "the KubeadmControlPlane of this cluster"},
        {"infrastructureRef", ST_OBJECT, .fields = object_reference_fields,
         .doc = "the AnvilCluster of this cluster"},
        {"topology", ST_OBJECT, .doc = "refused: ClusterClass topologies are not supported"},
        {"availabilityGates", ST_LIST, .item = ST_OBJECT, .fields = availability_gate_fields,
         .max = 32, .doc = "accepted, not used (v1beta2 conditions)"},
        SCHEMA_END,
};

static const SchemaField failure_domain_fields[] = {
        {"controlPlane", ST_BOOL, .doc = "suitable for control plane machines"},
        {"attributes", ST_STRMAP, .doc = "free-form attributes"},
        SCHEMA_END,
};

static const SchemaField cluster_status[] = {
        {"failureDomains", ST_MAP, .item = ST_OBJECT, .fields = failure_domain_fields,
         .doc = "failure domains (none on Anvil)"},
        {"failureReason", ST_STRING, .doc = "terminal problem, machine-readable"},
        {"failureMessage", ST_STRING, .doc = "terminal problem, human-readable"},
        {"phase", ST_STRING, .doc = "Pending, Provisioning, Provisioned, Deleting or Failed"},
        {"infrastructureReady", ST_BOOL, .doc = "the AnvilCluster is ready"},
        {"controlPlaneReady", ST_BOOL, .doc = "the control plane became ready"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields,
         .doc = "Ready, InfrastructureReady, ControlPlaneInitialized, ControlPlaneReady"},
        {"observedGeneration", ST_INT, .doc = "the generation last reconciled"},
        {"v1beta2", ST_OBJECT, .doc = "not written by Anvil"},
        SCHEMA_END,
};

static int check_cidrs(const Obj *doc, const char *path, Problems *p) {
        return check_items(obj_get(doc, path), path, check_cidr, p);
}

static int cluster_validate(const Obj *doc, Problems *p) {
        int r;
        if ((r = check_cidrs(doc, "spec.clusterNetwork.pods.cidrBlocks", p)) < 0 ||
            (r = check_cidrs(doc, "spec.clusterNetwork.services.cidrBlocks", p)) < 0 ||
            (r = check_ref(doc, "spec.infrastructureRef", cluster_infra_kinds, p)) < 0 ||
            (r = check_ref(doc, "spec.controlPlaneRef", cluster_cp_kinds, p)) < 0)
                return r;
        const Obj *topo = obj_get(doc, "spec.topology");
        if (topo && !obj_is(topo, OBJ_NULL))
                return problems_add(p, topo->mark, "spec.topology",
                                    "ClusterClass topologies are not supported by Anvil; use "
                                    "controlPlaneRef and MachineDeployments");
        return 0;
}

/* As Cluster API's webhook: a reference may change (a migration) but not go away, which
 * would orphan the control plane or the infrastructure the Cluster was built on. */
static int cluster_validate_update(const Obj *old, const Obj *new, Problems *p) {
        static const char *const refs[] = {"spec.controlPlaneRef", "spec.infrastructureRef"};
        for (size_t i = 0; i < ELEMENTSOF(refs); i++) {
                const Obj *was = obj_get(old, refs[i]), *now = obj_get(new, refs[i]);
                if (!obj_is(was, OBJ_MAP) || obj_is(now, OBJ_MAP))
                        continue;
                int r = problems_add(p, new->mark, refs[i], "cannot be removed once set");
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cluster_defaults(Obj *doc) {
        int r = default_ref_namespace(doc, "spec.infrastructureRef");
        return r < 0 ? r : default_ref_namespace(doc, "spec.controlPlaneRef");
}

const KindInfo kind_cluster = {
        .group = CAPI_GROUP,
        .version = "v1beta1",
        .kind = "Cluster",
        .plural = "clusters",
        .singular = "cluster",
        .short_names = (const char *const[]){"cl", NULL},
        .namespaced = true,
        .spec = cluster_spec,
        .status = cluster_status,
        .validate = cluster_validate,
        .validate_update = cluster_validate_update,
        .defaults = cluster_defaults,
        .doc = "A Kubernetes cluster: its network, its control plane (a KubeadmControlPlane) and "
               "its infrastructure (an AnvilCluster). Workers are MachineDeployments that name "
               "the cluster in spec.clusterName.",
};

/* ---- Machine ---- */

static const SchemaField bootstrap_fields[] = {
        {"configRef", ST_OBJECT, .fields = object_reference_fields,
         .doc = "the KubeadmConfig (KubeadmConfigTemplate in templates) that renders the "
                "bootstrap data"},
        {"dataSecretName", ST_STRING, .max = 253,
         .doc = "a Secret holding ready bootstrap data (key \"value\"); set by the bootstrap "
                "controller when configRef is used"},
        SCHEMA_END,
};

static const SchemaField readiness_gate_fields[] = {
        {"conditionType", ST_STRING, SF_REQUIRED | SF_NONEMPTY, .max = 316,
         .doc = "a condition type that must be True too"},
        SCHEMA_END,
};

const SchemaField machine_spec_fields[] = {
        {"clusterName", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_NONEMPTY, .max = 63,
         .doc = "the Cluster this machine belongs to"},
        {"bootstrap", ST_OBJECT, SF_REQUIRED, .fields = bootstrap_fields,
         .doc = "where the bootstrap data comes from: configRef or dataSecretName"},
        {"infrastructureRef", ST_OBJECT, SF_REQUIRED, .fields = object_reference_fields,
         .doc = "the AnvilMachine (AnvilMachineTemplate in templates) that picks a host"},
        {"version", ST_STRING, .check = check_k8s_version,
         .doc = "Kubernetes version of the node; \"1.30.2\" is stored as \"v1.30.2\""},
        {"providerID", ST_STRING, .doc = "anvil://<product-uuid>; set once a host is provisioned"},
        {"failureDomain", ST_STRING, .doc = "accepted, not used (Anvil has no failure domains)"},
        {"nodeDrainTimeout", ST_DURATION,
         .doc = "how long to drain the node before deletion; 0 means no limit"},
        {"nodeVolumeDetachTimeout", ST_DURATION, .doc = "accepted, not used"},
        {"nodeDeletionTimeout", ST_DURATION,
         .doc = "how long to try deleting the Node; defaults to 10s on Machines"},
        {"readinessGates", ST_LIST, .item = ST_OBJECT, .fields = readiness_gate_fields, .max = 32,
         .doc = "accepted, not used (v1beta2 conditions)"},
        SCHEMA_END,
};

static const SchemaField node_ref_fields[] = {
        {"apiVersion", ST_STRING},
        {"kind", ST_STRING},
        {"name", ST_STRING, .doc = "node name"},
        {"uid", ST_STRING},
        {"namespace", ST_STRING},
        SCHEMA_END,
};

static const SchemaField address_fields[] = {
        {"type", ST_STRING, SF_REQUIRED, .doc = "Hostname, InternalIP, ExternalIP, ..."},
        {"address", ST_STRING, SF_REQUIRED, .doc = "the address"},
        SCHEMA_END,
};

static const SchemaField machine_status[] = {
        {"nodeRef", ST_OBJECT, .fields = node_ref_fields, .doc = "the Node of this machine"},
        {"nodeInfo", ST_OBJECT, .doc = "the node's system info (kubelet version, ...)"},
        {"lastUpdated", ST_TIME, .doc = "when the phase last changed"},
        {"failureReason", ST_STRING, .doc = "terminal problem, machine-readable"},
        {"failureMessage", ST_STRING, .doc = "terminal problem, human-readable"},
        {"addresses", ST_LIST, .item = ST_OBJECT, .fields = address_fields,
         .doc = "addresses, copied from the AnvilMachine"},
        {"phase", ST_STRING,
         .doc = "Pending, Provisioning, Provisioned, Running, Deleting, Deleted or Failed"},
        {"certificatesExpiryDate", ST_TIME, .doc = "not written by Anvil"},
        {"bootstrapReady", ST_BOOL, .doc = "the bootstrap data is ready"},
        {"infrastructureReady", ST_BOOL, .doc = "the AnvilMachine is ready"},
        {"observedGeneration", ST_INT, .doc = "the generation last reconciled"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields,
         .doc = "Ready, BootstrapReady, InfrastructureReady, NodeHealthy, KubeletUpToDate"},
        {"deletion", ST_OBJECT, .doc = "not written by Anvil"},
        {"inPlaceUpgrade", ST_OBJECT, .doc = "Anvil: progress of an in-place upgrade"},
        SCHEMA_END,
};

/* The checks of a MachineSpec (a Machine's, or a template's at prefix "spec.template.spec"),
 * as Cluster API's machine webhook makes them plus the kinds Anvil serves. */
static int machine_spec_validate(const Obj *doc, const char *prefix, bool tmpl, Problems *p) {
        char path[128];
        int r;
        snprintf(path, sizeof(path), "%s.bootstrap", prefix);
        const Obj *b = obj_get(doc, path);
        if (obj_is(b, OBJ_MAP) && !obj_map_get(b, "configRef") &&
            !obj_map_get(b, "dataSecretName")) {
                r = problems_add(p, b->mark, path,
                                 "expected either %s.bootstrap.dataSecretName or "
                                 "%s.bootstrap.configRef to be populated",
                                 prefix, prefix);
                if (r < 0)
                        return r;
        }
        snprintf(path, sizeof(path), "%s.bootstrap.configRef", prefix);
        if ((r = check_ref(doc, path, tmpl ? template_bootstrap_kinds : machine_bootstrap_kinds,
                           p)) < 0)
                return r;
        snprintf(path, sizeof(path), "%s.infrastructureRef", prefix);
        return check_ref(doc, path, tmpl ? template_infra_kinds : machine_infra_kinds, p);
}

static int machine_validate(const Obj *doc, Problems *p) {
        return machine_spec_validate(doc, "spec", false, p);
}

static int machine_defaults(Obj *doc) {
        int r;
        if ((r = default_cluster_name_label(doc, "metadata.labels")) < 0 ||
            (r = default_ref_namespace(doc, "spec.bootstrap.configRef")) < 0 ||
            (r = default_ref_namespace(doc, "spec.infrastructureRef")) < 0 ||
            (r = default_version_prefix(doc, "spec.version")) < 0)
                return r;
        if (!obj_get(doc, "spec.nodeDeletionTimeout"))
                return obj_set_str(doc, "spec.nodeDeletionTimeout", "10s");
        return 0;
}

const KindInfo kind_machine = {
        .group = CAPI_GROUP,
        .version = "v1beta1",
        .kind = "Machine",
        .plural = "machines",
        .singular = "machine",
        .short_names = (const char *const[]){"ma", NULL},
        .namespaced = true,
        .spec_required = true,
        .spec = machine_spec_fields,
        .status = machine_status,
        .validate = machine_validate,
        .defaults = machine_defaults,
        .doc = "One node of a cluster. Usually created by a MachineSet or the "
               "KubeadmControlPlane, each with its KubeadmConfig and AnvilMachine; the "
               "AnvilMachine claims a Host.",
};

/* ---- MachineSet / MachineDeployment ---- */

static const SchemaField machine_template_fields[] = {
        {"metadata", ST_OBJECT, .fields = template_metadata_fields,
         .doc = "labels and annotations of the Machines"},
        {"spec", ST_OBJECT, SF_REQUIRED, .fields = machine_spec_fields,
         .doc = "the Machines' spec; its refs name templates"},
        SCHEMA_END,
};

static const char *const delete_policies[] = {"Random", "Newest", "Oldest", NULL};

static const SchemaField naming_strategy_fields[] = {
        {"template", ST_STRING, .max = 256,
         .doc = "accepted, not used: Machines are named <owner>-<5 random characters>"},
        SCHEMA_END,
};

static const SchemaField machineset_spec[] = {
        {"clusterName", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_NONEMPTY, .max = 63,
         .doc = "the Cluster this set belongs to"},
        {"replicas", ST_INT, .min = 0, .max = INT32_MAX, .doc = "how many Machines; defaults to 1"},
        {"minReadySeconds", ST_INT, .min = 0, .max = INT32_MAX,
         .doc = "how long a Machine's node must be ready to count as available"},
        {"deletePolicy", ST_STRING, .values = delete_policies,
         .doc = "which Machines go first on scale down; defaults to Random"},
        {"selector", ST_OBJECT, .fields = label_selector_fields,
         .doc = "the Machines of this set; must match the template's labels; defaults to the "
                "set-name label"},
        {"template", ST_OBJECT, .fields = machine_template_fields,
         .doc = "what each Machine looks like"},
        {"machineNamingStrategy", ST_OBJECT, .fields = naming_strategy_fields,
         .doc = "how Machines are named"},
        SCHEMA_END,
};

static const SchemaField machineset_status[] = {
        {"selector", ST_STRING, .doc = "spec.selector in -l syntax"},
        {"replicas", ST_INT, .doc = "Machines that exist"},
        {"fullyLabeledReplicas", ST_INT, .doc = "Machines whose labels match the template's"},
        {"readyReplicas", ST_INT, .doc = "Machines whose node is ready"},
        {"availableReplicas", ST_INT, .doc = "ready for at least minReadySeconds"},
        {"observedGeneration", ST_INT, .doc = "the generation last reconciled"},
        {"failureReason", ST_STRING, .doc = "terminal problem, machine-readable"},
        {"failureMessage", ST_STRING, .doc = "terminal problem, human-readable"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields,
         .doc = "Ready, MachinesCreated, MachinesReady, Resized"},
        SCHEMA_END,
};

/* The selector must select the template's labels, or the owner would never see its own
 * machines (Cluster API's webhook refuses this too, at the template's labels). */
static int check_selector_matches_template(const Obj *doc, Problems *p) {
        const Obj *sel = obj_get(doc, "spec.selector");
        const Obj *labels = obj_get(doc, "spec.template.metadata.labels");
        if (!sel || !obj_get(doc, "spec.template"))
                return 0;
        if (label_selector_matches(sel, labels) != 0)
                return 0;
        _cleanup_free_ char *s = label_selector_to_string(sel);
        const Obj *at = labels ? labels : obj_get(doc, "spec.template");
        return problems_add(p, at->mark, "spec.template.metadata.labels",
                            "must match spec.selector \"%s\"", strempty(s));
}

static int machineset_validate(const Obj *doc, Problems *p) {
        int r = check_selector_matches_template(doc, p);
        if (r < 0)
                return r;
        const char *cn = obj_get_str(doc, "spec.clusterName");
        const char *tcn = obj_get_str(doc, "spec.template.spec.clusterName");
        if (cn && tcn && !streq(cn, tcn) &&
            (r = problems_add(p, obj_get(doc, "spec.template.spec.clusterName")->mark,
                              "spec.template.spec.clusterName",
                              "must match spec.clusterName (\"%s\")", cn)) < 0)
                return r;
        if (obj_get(doc, "spec.template.spec") &&
            (r = machine_spec_validate(doc, "spec.template.spec", true, p)) < 0)
                return r;
        return 0;
}

/* Selector and template labels as Cluster API's MachineSet and MachineDeployment webhooks
 * default them: an empty selector selects the object's own name label; both carry the
 * cluster-name label. */
static int default_selector(Obj *doc, const char *name_label, bool cluster_in_selector) {
        const char *name = obj_get_str(doc, "metadata.name");
        const char *cn = obj_get_str(doc, "spec.clusterName");
        int r;
        Obj *spec = obj_map_get(doc, "spec");
        if (!obj_is(spec, OBJ_MAP))
                return 0;
        /* A selector or matchLabels of the wrong type is the schema's problem to report;
         * -EINVAL tells the caller to check the document as written. */
        const Obj *have = obj_map_get(spec, "selector");
        if (have && !obj_is(have, OBJ_MAP))
                return -EINVAL;
        if (have && obj_map_get(have, "matchLabels") &&
            !obj_is(obj_map_get(have, "matchLabels"), OBJ_MAP))
                return -EINVAL;
        Obj *sel = obj_map_ensure_map(spec, "selector");
        Obj *ml = sel ? obj_map_ensure_map(sel, "matchLabels") : NULL;
        if (!ml)
                return -ENOMEM;
        Obj *tmpl = obj_map_get(spec, "template");
        Obj *tmeta = obj_is(tmpl, OBJ_MAP) ? obj_map_ensure_map(tmpl, "metadata") : NULL;
        Obj *tl = tmeta ? obj_map_ensure_map(tmeta, "labels") : NULL;
        if (obj_len(ml) == 0 && obj_len(obj_map_get(sel, "matchExpressions")) == 0 && name) {
                if ((r = obj_map_set_str(ml, name_label, name)) < 0 ||
                    (tl && (r = obj_map_set_str(tl, name_label, name)) < 0))
                        return r;
        }
        if (cn && cluster_in_selector && (r = obj_map_set_str(ml, LABEL_CLUSTER_NAME, cn)) < 0)
                return r;
        if (cn && tl && (r = obj_map_set_str(tl, LABEL_CLUSTER_NAME, cn)) < 0)
                return r;
        return 0;
}

static int machineset_defaults(Obj *doc) {
        int r;
        if ((r = default_cluster_name_label(doc, "metadata.labels")) < 0)
                return r;
        if (!obj_get(doc, "spec.replicas") && (r = obj_set_int(doc, "spec.replicas", 1)) < 0)
                return r;
        if (!obj_get(doc, "spec.deletePolicy") &&
            (r = obj_set_str(doc, "spec.deletePolicy", "Random")) < 0)
                return r;
        if ((r = default_selector(doc, "cluster.x-k8s.io/set-name", false)) < 0)
                return r;
        return default_version_prefix(doc, "spec.template.spec.version");
}

const KindInfo kind_machineset = {
        .group = CAPI_GROUP,
        .version = "v1beta1",
        .kind = "MachineSet",
        .plural = "machinesets",
        .singular = "machineset",
        .short_names = (const char *const[]){"ms", NULL},
        .namespaced = true,
        .spec_required = true,
        .spec = machineset_spec,
        .status = machineset_status,
        .validate = machineset_validate,
        .defaults = machineset_defaults,
        .doc = "A number of identical Machines. Usually owned by a MachineDeployment, one per "
               "revision of its template.",
};

static const char *const md_strategy_types[] = {"RollingUpdate", "OnDelete", NULL};

static const SchemaField rolling_update_fields[] = {
        {"maxUnavailable", ST_INT_OR_STRING, .check = check_percent_or_int,
         .doc = "Machines that may be unavailable during a rollout, a number or a percentage; "
                "defaults to 0"},
        {"maxSurge", ST_INT_OR_STRING, .check = check_percent_or_int,
         .doc = "Machines above replicas during a rollout, a number or a percentage; defaults "
                "to 1"},
        {"deletePolicy", ST_STRING, .values = delete_policies,
         .doc = "the deletePolicy of the MachineSets; Random when unset"},
        SCHEMA_END,
};

static const SchemaField md_remediation_fields[] = {
        {"maxInFlight", ST_INT_OR_STRING, .check = check_percent_or_int,
         .doc = "Machines remediated at once (accepted, not used)"},
        SCHEMA_END,
};

static const SchemaField md_strategy_fields[] = {
        {"type", ST_STRING, .values = md_strategy_types,
         .doc = "RollingUpdate (default), or OnDelete: a template change replaces only the "
                "Machines the operator deletes"},
        {"rollingUpdate", ST_OBJECT, .fields = rolling_update_fields,
         .doc = "parameters of a RollingUpdate"},
        {"remediation", ST_OBJECT, .fields = md_remediation_fields,
         .doc = "how MachineHealthCheck remediation is paced"},
        SCHEMA_END,
};

static const SchemaField md_spec[] = {
        {"clusterName", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_NONEMPTY, .max = 63,
         .doc = "the Cluster this deployment belongs to"},
        {"replicas", ST_INT, .min = 0, .max = INT32_MAX, .doc = "how many Machines; defaults to 1"},
        {"rolloutAfter", ST_TIME,
         .doc = "once this time has passed, Machines created before it are rolled out"},
        {"selector", ST_OBJECT, .fields = label_selector_fields,
         .doc = "the Machines of this deployment; must match the template's labels; defaults "
                "to the deployment-name and cluster-name labels"},
        {"template", ST_OBJECT, SF_REQUIRED, .fields = machine_template_fields,
         .doc = "what each Machine looks like; a change rolls out a new MachineSet"},
        {"strategy", ST_OBJECT, .fields = md_strategy_fields,
         .doc = "how Machines are replaced when the template changes"},
        {"minReadySeconds", ST_INT, .min = 0, .max = INT32_MAX,
         .doc = "how long a node must be ready to count as available; defaults to 0"},
        {"revisionHistoryLimit", ST_INT, .min = 0, .max = INT32_MAX,
         .doc = "old MachineSets without Machines to keep once a rollout is complete; "
                "defaults to 1"},
        {"paused", ST_BOOL, .doc = "stops the controller from acting on this deployment"},
        {"progressDeadlineSeconds", ST_INT, .min = 0, .max = INT32_MAX,
         .doc = "defaults to 600 (accepted, not used yet)"},
        {"machineNamingStrategy", ST_OBJECT, .fields = naming_strategy_fields,
         .doc = "how Machines are named"},
        SCHEMA_END,
};

static const SchemaField md_status[] = {
        {"observedGeneration", ST_INT, .doc = "the generation last reconciled"},
        {"selector", ST_STRING, .doc = "spec.selector in -l syntax"},
        {"replicas", ST_INT, .doc = "Machines that exist"},
        {"updatedReplicas", ST_INT, .doc = "Machines of the current template"},
        {"readyReplicas", ST_INT, .doc = "Machines whose node is ready"},
        {"availableReplicas", ST_INT, .doc = "ready for at least minReadySeconds"},
        {"unavailableReplicas", ST_INT, .doc = "replicas still missing to be fully available"},
        {"phase", ST_STRING, .doc = "ScalingUp, ScalingDown, Running, Failed or Unknown"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields,
         .doc = "Ready, Available"},
        SCHEMA_END,
};

static bool is_zero_int_or_string(const Obj *v) {
        return (obj_is(v, OBJ_INT) && v->i == 0) ||
               (obj_str(v) && (streq(obj_str(v), "0%") || streq(obj_str(v), "00%")));
}

static int md_validate(const Obj *doc, Problems *p) {
        int r = machineset_validate(doc, p);
        if (r < 0)
                return r;
        if ((r = kind_check_upgrade_strategy(doc, p)) < 0)
                return r;
        /* The name is a label value on every Machine of the deployment. */
        const Obj *name = obj_get(doc, "metadata.name");
        const char *msg = obj_is(name, OBJ_STR) ? check_label_value(name, NULL, 0) : NULL;
        if (msg && (r = problems_add(p, name->mark, "metadata.name",
                                     "%s (the name is a label value on its Machines)", msg)) < 0)
                return r;
        const Obj *ms = obj_get(doc, "spec.strategy.rollingUpdate.maxSurge");
        const Obj *mu = obj_get(doc, "spec.strategy.rollingUpdate.maxUnavailable");
        /* Both default to a non-zero surge; only both set to 0 can never make progress. */
        if (ms && mu && is_zero_int_or_string(ms) && is_zero_int_or_string(mu))
                return problems_add(p, mu->mark, "spec.strategy.rollingUpdate.maxUnavailable",
                                    "may not be 0 when maxSurge is 0");
        return 0;
}

static int md_defaults(Obj *doc) {
        int r;
        if ((r = default_cluster_name_label(doc, "metadata.labels")) < 0)
                return r;
        if (!obj_get(doc, "spec.replicas") && (r = obj_set_int(doc, "spec.replicas", 1)) < 0)
                return r;
        if (!obj_get(doc, "spec.minReadySeconds") &&
            (r = obj_set_int(doc, "spec.minReadySeconds", 0)) < 0)
                return r;
        if (!obj_get(doc, "spec.revisionHistoryLimit") &&
            (r = obj_set_int(doc, "spec.revisionHistoryLimit", 1)) < 0)
                return r;
        if (!obj_get(doc, "spec.progressDeadlineSeconds") &&
            (r = obj_set_int(doc, "spec.progressDeadlineSeconds", 600)) < 0)
                return r;
        if (!obj_get(doc, "spec.strategy.type") &&
            (r = obj_set_str(doc, "spec.strategy.type", "RollingUpdate")) < 0)
                return r;
        if (streq_ptr(obj_get_str(doc, "spec.strategy.type"), "RollingUpdate")) {
                if (!obj_get(doc, "spec.strategy.rollingUpdate.maxSurge") &&
                    (r = obj_set_int(doc, "spec.strategy.rollingUpdate.maxSurge", 1)) < 0)
                        return r;
                if (!obj_get(doc, "spec.strategy.rollingUpdate.maxUnavailable") &&
                    (r = obj_set_int(doc, "spec.strategy.rollingUpdate.maxUnavailable", 0)) < 0)
                        return r;
        }
        if ((r = default_selector(doc, "cluster.x-k8s.io/deployment-name", true)) < 0)
                return r;
        return default_version_prefix(doc, "spec.template.spec.version");
}

const KindInfo kind_machinedeployment = {
        .group = CAPI_GROUP,
        .version = "v1beta1",
        .kind = "MachineDeployment",
        .plural = "machinedeployments",
        .singular = "machinedeployment",
        .short_names = (const char *const[]){"md", NULL},
        .namespaced = true,
        .spec_required = true,
        .spec = md_spec,
        .status = md_status,
        .validate = md_validate,
        .defaults = md_defaults,
        .doc = "A scalable group of worker Machines with rolling updates: each revision of "
               "spec.template gets a MachineSet, the old ones are scaled down.",
};

/* ---- MachineHealthCheck ---- */

static const SchemaField unhealthy_condition_fields[] = {
        {"type", ST_STRING, SF_REQUIRED | SF_NONEMPTY, .doc = "a Node condition type, e.g. Ready"},
        {"status", ST_STRING, SF_REQUIRED,
         .values = (const char *const[]){"True", "False", "Unknown", NULL},
         .doc = "the status that counts as unhealthy"},
        {"timeout", ST_DURATION, SF_REQUIRED, .doc = "for how long"},
        SCHEMA_END,
};

/* Reads the decimal number at *p (at most 9 digits, so it fits); false if there is none. */
static bool range_number(const char **p, unsigned long *ret) {
        size_t n = 0;
        unsigned long v = 0;
        for (; (*p)[n] >= '0' && (*p)[n] <= '9'; n++) {
                if (n == 9)
                        return false;
                v = v * 10 + (unsigned long)((*p)[n] - '0');
        }
        *p += n;
        *ret = v;
        return n > 0;
}

/* Cluster API's pattern ^\[[0-9]+-[0-9]+\]$, with min <= max. */
static const char *check_unhealthy_range(const Obj *v, char *buf, size_t bufsz) {
        const char *p = obj_str(v);
        unsigned long a, b;
        (void)buf;
        (void)bufsz;
        if (!p || *p++ != '[' || !range_number(&p, &a) || *p++ != '-' || !range_number(&p, &b) ||
            *p++ != ']' || *p || a > b)
                return "must look like \"[1-3]\" (min-max unhealthy machines)";
        return NULL;
}

static const SchemaField mhc_spec[] = {
        {"clusterName", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_NONEMPTY, .max = 63,
         .doc = "the Cluster whose Machines are checked"},
        {"selector", ST_OBJECT, SF_REQUIRED, .fields = label_selector_fields,
         .doc = "which Machines; must not be empty"},
        {"unhealthyConditions", ST_LIST, .item = ST_OBJECT, .fields = unhealthy_condition_fields,
         .doc = "Node conditions that make a Machine unhealthy; at least one"},
        {"maxUnhealthy", ST_INT_OR_STRING, .check = check_percent_or_int,
         .doc = "no remediation above this many unhealthy Machines; defaults to 100%"},
        {"unhealthyRange", ST_STRING, .check = check_unhealthy_range,
         .doc = "remediate only within this range of unhealthy Machines, e.g. [1-3]"},
        {"nodeStartupTimeout", ST_DURATION,
         .doc = "how long a Machine may take to get a Node; at least 30s, 0 disables; defaults "
                "to 10m"},
        {"remediationTemplate", ST_OBJECT, .fields = object_reference_fields,
         .doc = "external remediation (accepted, not used)"},
        SCHEMA_END,
};

static const SchemaField mhc_status[] = {
        {"expectedMachines", ST_INT, .doc = "Machines selected"},
        {"currentHealthy", ST_INT, .doc = "healthy Machines"},
        {"remediationsAllowed", ST_INT, .doc = "remediations allowed now"},
        {"observedGeneration", ST_INT, .doc = "the generation last reconciled"},
        {"targets", ST_LIST, .item = ST_STRING, .doc = "names of the selected Machines"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields, .doc = "conditions"},
        SCHEMA_END,
};

static int mhc_validate(const Obj *doc, Problems *p) {
        int r;
        const Obj *sel = obj_get(doc, "spec.selector");
        const Obj *spec = obj_get(doc, "spec");
        if (!obj_is(spec, OBJ_MAP))
                return 0;
        if (obj_is(sel, OBJ_MAP) && obj_len(obj_map_get(sel, "matchLabels")) == 0 &&
            obj_len(obj_map_get(sel, "matchExpressions")) == 0 &&
            (r = problems_add(p, sel->mark, "spec.selector", "selector must not be empty")) < 0)
                return r;
        const char *cn = obj_get_str(doc, "spec.clusterName");
        const Obj *scn = obj_map_get(obj_map_get(sel, "matchLabels"), LABEL_CLUSTER_NAME);
        if (cn && obj_str(scn) && !streq(obj_str(scn), cn) &&
            (r = problems_add(p, scn->mark, "spec.selector",
                              "cannot specify a cluster selector other than the one specified "
                              "by spec.clusterName")) < 0)
                return r;
        const Obj *nst = obj_get(doc, "spec.nodeStartupTimeout");
        int64_t us;
        if (obj_str(nst) && parse_go_duration(obj_str(nst), &us) >= 0 && us != 0 &&
            us < 30 * (int64_t)USEC_PER_SEC &&
            (r = problems_add(p, nst->mark, "spec.nodeStartupTimeout", "must be at least 30s")) < 0)
                return r;
        const Obj *uc = obj_get(doc, "spec.unhealthyConditions");
        if (obj_len(uc) == 0 && (!uc || obj_is(uc, OBJ_LIST)) &&
            (r = problems_add(p, uc ? uc->mark : spec->mark, "spec.unhealthyConditions",
                              "must have at least one entry")) < 0)
                return r;
        const char *rns = obj_get_str(doc, "spec.remediationTemplate.namespace");
        if (rns && !streq(rns, doc_namespace(doc)))
                return problems_add(p, obj_get(doc, "spec.remediationTemplate.namespace")->mark,
                                    "spec.remediationTemplate.namespace",
                                    "must match metadata.namespace (\"%s\")", doc_namespace(doc));
        return 0;
}

static int mhc_defaults(Obj *doc) {
        int r;
        if ((r = default_cluster_name_label(doc, "metadata.labels")) < 0)
                return r;
        if (!obj_get(doc, "spec.maxUnhealthy") &&
            (r = obj_set_str(doc, "spec.maxUnhealthy", "100%")) < 0)
                return r;
        if (!obj_get(doc, "spec.nodeStartupTimeout") &&
            (r = obj_set_str(doc, "spec.nodeStartupTimeout", "10m0s")) < 0)
                return r;
        return default_ref_namespace(doc, "spec.remediationTemplate");
}

const KindInfo kind_machinehealthcheck = {
        .group = CAPI_GROUP,
        .version = "v1beta1",
        .kind = "MachineHealthCheck",
        .plural = "machinehealthchecks",
        .singular = "machinehealthcheck",
        .short_names = (const char *const[]){"mhc", NULL},
        .namespaced = true,
        .spec_required = true,
        .spec = mhc_spec,
        .status = mhc_status,
        .validate = mhc_validate,
        .defaults = mhc_defaults,
        .doc = "When Machines count as unhealthy. Accepted and stored; Anvil does not remediate "
               "yet.",
};
