/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster.x-k8s.io/v1beta1: Cluster, Machine, MachineSet, MachineDeployment,
 * MachineHealthCheck. Field names and JSON casing follow Cluster API's api/v1beta1 types;
 * defaults follow its webhooks.
 */
#include "kinds.h"

#define CAPI_GROUP "cluster.x-k8s.io"

static const SchemaField network_ranges_fields[] = {
        {"cidrBlocks", ST_LIST, .item = ST_STRING, .check = NULL, .max = 16},
        SCHEMA_END,
};

static const SchemaField cluster_network_fields[] = {
        {"apiServerPort", ST_INT, .min = 1, .max = 65535},
        {"services", ST_OBJECT, .fields = network_ranges_fields},
        {"pods", ST_OBJECT, .fields = network_ranges_fields},
        {"serviceDomain", ST_STRING, SF_DNS_NAME},
        SCHEMA_END,
};

const SchemaField api_endpoint_fields[] = {
        {"host", ST_STRING, .max = 253},
        {"port", ST_INT, .min = 0, .max = 65535},
        SCHEMA_END,
};

static const SchemaField cluster_spec[] = {
        {"paused", ST_BOOL},
        {"clusterNetwork", ST_OBJECT, .fields = cluster_network_fields},
        {"controlPlaneEndpoint", ST_OBJECT, .fields = api_endpoint_fields},
        {"controlPlaneRef", ST_OBJECT, .fields = object_reference_fields},
        {"infrastructureRef", ST_OBJECT, .fields = object_reference_fields},
        {"topology", ST_OBJECT, .doc = "not supported: ClusterClass topologies"},
        {"availabilityGates", ST_LIST, .item = ST_ANY},
        SCHEMA_END,
};

static const SchemaField failure_domain_fields[] = {
        {"controlPlane", ST_BOOL},
        {"attributes", ST_STRMAP},
        SCHEMA_END,
};

static const SchemaField cluster_status[] = {
        {"failureDomains", ST_MAP, .item = ST_OBJECT, .fields = failure_domain_fields},
        {"failureReason", ST_STRING},
        {"failureMessage", ST_STRING},
        {"phase", ST_STRING},
        {"infrastructureReady", ST_BOOL},
        {"controlPlaneReady", ST_BOOL},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        {"observedGeneration", ST_INT},
        SCHEMA_END,
};

static int cluster_validate(const Obj *doc, Problems *p) {
        int r;
        OBJ_LIST_FOREACH(c, obj_get(doc, "spec.clusterNetwork.pods.cidrBlocks"), i) {
                if (check_cidr(c, NULL, 0)) {
                        char path[96];
                        snprintf(path, sizeof(path), "spec.clusterNetwork.pods.cidrBlocks[%zu]", i);
                        if ((r = problems_add(p, c->mark, path, "%s", check_cidr(c, NULL, 0))) < 0)
                                return r;
                }
        }
        OBJ_LIST_FOREACH(c, obj_get(doc, "spec.clusterNetwork.services.cidrBlocks"), i) {
                if (check_cidr(c, NULL, 0)) {
                        char path[96];
                        snprintf(path, sizeof(path), "spec.clusterNetwork.services.cidrBlocks[%zu]",
                                 i);
                        if ((r = problems_add(p, c->mark, path, "%s", check_cidr(c, NULL, 0))) < 0)
                                return r;
                }
        }
        const Obj *topo = obj_get(doc, "spec.topology");
        if (topo && !obj_is(topo, OBJ_NULL))
                return problems_add(p, topo->mark, "spec.topology",
                                    "ClusterClass topologies are not supported by Anvil; use "
                                    "controlPlaneRef and MachineDeployments");
        return 0;
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
};

/* ---- Machine ---- */

static const SchemaField bootstrap_fields[] = {
        {"configRef", ST_OBJECT, .fields = object_reference_fields},
        {"dataSecretName", ST_STRING, .max = 253},
        SCHEMA_END,
};

const SchemaField machine_spec_fields[] = {
        {"clusterName", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_NONEMPTY, .max = 63},
        {"bootstrap", ST_OBJECT, SF_REQUIRED, .fields = bootstrap_fields},
        {"infrastructureRef", ST_OBJECT, SF_REQUIRED, .fields = object_reference_fields},
        {"version", ST_STRING, .check = check_k8s_version},
        {"providerID", ST_STRING},
        {"failureDomain", ST_STRING},
        {"nodeDrainTimeout", ST_DURATION},
        {"nodeVolumeDetachTimeout", ST_DURATION},
        {"nodeDeletionTimeout", ST_DURATION, .def = "10s"},
        {"readinessGates", ST_LIST, .item = ST_ANY},
        SCHEMA_END,
};

static const SchemaField node_ref_fields[] = {
        {"apiVersion", ST_STRING}, {"kind", ST_STRING}, {"name", ST_STRING},
        {"uid", ST_STRING},        {"namespace", ST_STRING},
        SCHEMA_END,
};

static const SchemaField address_fields[] = {
        {"type", ST_STRING, SF_REQUIRED},
        {"address", ST_STRING, SF_REQUIRED},
        SCHEMA_END,
};

static const SchemaField machine_status[] = {
        {"nodeRef", ST_OBJECT, .fields = node_ref_fields},
        {"nodeInfo", ST_OBJECT},
        {"lastUpdated", ST_TIME},
        {"failureReason", ST_STRING},
        {"failureMessage", ST_STRING},
        {"addresses", ST_LIST, .item = ST_OBJECT, .fields = address_fields},
        {"phase", ST_STRING},
        {"certificatesExpiryDate", ST_TIME},
        {"bootstrapReady", ST_BOOL},
        {"infrastructureReady", ST_BOOL},
        {"observedGeneration", ST_INT},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        {"deletion", ST_OBJECT},
        {"inPlaceUpgrade", ST_OBJECT, .doc = "Anvil: progress of an in-place upgrade"},
        SCHEMA_END,
};

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
};

/* ---- MachineSet / MachineDeployment ---- */

const SchemaField machine_template_fields[] = {
        {"metadata", ST_OBJECT, .fields = template_metadata_fields},
        {"spec", ST_OBJECT, SF_REQUIRED, .fields = machine_spec_fields},
        SCHEMA_END,
};

static const char *const delete_policies[] = {"Random", "Newest", "Oldest", NULL};

static const SchemaField machineset_spec[] = {
        {"clusterName", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_NONEMPTY, .max = 63},
        {"replicas", ST_INT, .min = 0, .max = 100000},
        {"minReadySeconds", ST_INT, .min = 0, .max = 86400 * 365},
        {"deletePolicy", ST_STRING, .values = delete_policies},
        {"selector", ST_OBJECT, SF_REQUIRED, .fields = label_selector_fields},
        {"template", ST_OBJECT, .fields = machine_template_fields},
        SCHEMA_END,
};

static const SchemaField machineset_status[] = {
        {"selector", ST_STRING},
        {"replicas", ST_INT},
        {"fullyLabeledReplicas", ST_INT},
        {"readyReplicas", ST_INT},
        {"availableReplicas", ST_INT},
        {"observedGeneration", ST_INT},
        {"failureReason", ST_STRING},
        {"failureMessage", ST_STRING},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        SCHEMA_END,
};

/* The selector must select the template's labels, or the owner would never see its own
 * machines (Cluster API's webhook refuses this too). */
static int check_selector_matches_template(const Obj *doc, Problems *p) {
        const Obj *sel = obj_get(doc, "spec.selector");
        const Obj *labels = obj_get(doc, "spec.template.metadata.labels");
        if (!sel)
                return 0;
        int m = label_selector_matches(sel, labels);
        if (m == 0)
                return problems_add(p, sel->mark, "spec.selector",
                                    "selector does not match template labels "
                                    "(spec.template.metadata.labels)");
        return 0;
}

static int machineset_validate(const Obj *doc, Problems *p) {
        int r = check_selector_matches_template(doc, p);
        if (r < 0)
                return r;
        const char *cn = obj_get_str(doc, "spec.clusterName");
        const char *tcn = obj_get_str(doc, "spec.template.spec.clusterName");
        if (cn && tcn && !streq(cn, tcn))
                return problems_add(p, obj_get(doc, "spec.template.spec.clusterName")->mark,
                                    "spec.template.spec.clusterName",
                                    "must match spec.clusterName (\"%s\")", cn);
        return 0;
}

static int add_cluster_name_label(Obj *doc, const char *path) {
        /* Cluster API's webhooks label templates with the cluster name. */
        const char *cn = obj_get_str(doc, "spec.clusterName");
        if (!cn)
                return 0;
        Obj *labels = obj_get(doc, path);
        if (!labels) {
                int r = obj_set(doc, path, obj_new_map());
                if (r < 0)
                        return r;
                labels = obj_get(doc, path);
        }
        if (!obj_map_get(labels, "cluster.x-k8s.io/cluster-name"))
                return obj_map_set_str(labels, "cluster.x-k8s.io/cluster-name", cn);
        return 0;
}

static int machineset_defaults(Obj *doc) {
        int r = add_cluster_name_label(doc, "spec.template.metadata.labels");
        if (r < 0)
                return r;
        if (!obj_get(doc, "spec.replicas") && (r = obj_set_int(doc, "spec.replicas", 1)) < 0)
                return r;
        if (!obj_get(doc, "spec.deletePolicy") &&
            (r = obj_set_str(doc, "spec.deletePolicy", "Random")) < 0)
                return r;
        const char *cn = obj_get_str(doc, "spec.clusterName");
        if (cn && obj_get(doc, "spec.template.spec") &&
            !obj_get(doc, "spec.template.spec.clusterName"))
                return obj_set_str(doc, "spec.template.spec.clusterName", cn);
        return 0;
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
};

static const char *const md_strategy_types[] = {"RollingUpdate", "OnDelete", NULL};

static const SchemaField rolling_update_fields[] = {
        {"maxUnavailable", ST_INT_OR_STRING, .check = check_percent_or_int},
        {"maxSurge", ST_INT_OR_STRING, .check = check_percent_or_int},
        {"deletePolicy", ST_STRING, .values = delete_policies},
        SCHEMA_END,
};

static const SchemaField md_strategy_fields[] = {
        {"type", ST_STRING, .values = md_strategy_types},
        {"rollingUpdate", ST_OBJECT, .fields = rolling_update_fields},
        SCHEMA_END,
};

static const SchemaField md_spec[] = {
        {"clusterName", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_NONEMPTY, .max = 63},
        {"replicas", ST_INT, .min = 0, .max = 100000},
        {"rolloutAfter", ST_TIME},
        {"selector", ST_OBJECT, .fields = label_selector_fields},
        {"template", ST_OBJECT, SF_REQUIRED, .fields = machine_template_fields},
        {"strategy", ST_OBJECT, .fields = md_strategy_fields},
        {"minReadySeconds", ST_INT, .min = 0, .max = 86400 * 365},
        {"revisionHistoryLimit", ST_INT, .min = 0, .max = 1000},
        {"paused", ST_BOOL},
        {"progressDeadlineSeconds", ST_INT, .min = 0},
        SCHEMA_END,
};

static const SchemaField md_status[] = {
        {"observedGeneration", ST_INT},
        {"selector", ST_STRING},
        {"replicas", ST_INT},
        {"updatedReplicas", ST_INT},
        {"readyReplicas", ST_INT},
        {"availableReplicas", ST_INT},
        {"unavailableReplicas", ST_INT},
        {"phase", ST_STRING},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        SCHEMA_END,
};

/* An int-or-percent that is zero: 0 or "0%". */
static bool int_or_percent_zero(const Obj *v, int64_t def) {
        if (!v)
                return def == 0;
        if (obj_is(v, OBJ_INT))
                return v->i == 0;
        const char *s = obj_str(v);
        return s && strspn(s, "0") + 1 == strlen(s) && s[strlen(s) - 1] == '%';
}

static int md_validate(const Obj *doc, Problems *p) {
        int r = machineset_validate(doc, p);
        if (r < 0)
                return r;
        if ((r = kind_check_upgrade_strategy(doc, p)) < 0)
                return r;
        const char *type = obj_get_str(doc, "spec.strategy.type");
        const Obj *ru = obj_get(doc, "spec.strategy.rollingUpdate");
        /* Defaults as Cluster API's webhook sets them: maxSurge 1, maxUnavailable 0. */
        if ((!type || streq(type, "RollingUpdate")) &&
            int_or_percent_zero(obj_map_get(ru, "maxSurge"), 1) &&
            int_or_percent_zero(obj_map_get(ru, "maxUnavailable"), 0)) {
                const Obj *at = obj_map_get(ru, "maxSurge") ?: obj_map_get(ru, "maxUnavailable") ?: ru;
                if (!at)
                        at = doc;
                return problems_add(p, at->mark, "spec.strategy.rollingUpdate",
                                    "maxSurge and maxUnavailable cannot both be 0: no machine "
                                    "could ever be replaced");
        }
        return 0;
}

static int md_defaults(Obj *doc) {
        int r;
        const char *md = obj_get_str(doc, "metadata.name");
        const char *cn = obj_get_str(doc, "spec.clusterName");
        if (!obj_get(doc, "spec.replicas") && (r = obj_set_int(doc, "spec.replicas", 1)) < 0)
                return r;
        if (!obj_get(doc, "spec.revisionHistoryLimit") &&
            (r = obj_set_int(doc, "spec.revisionHistoryLimit", 1)) < 0)
                return r;
        if (!obj_get(doc, "spec.progressDeadlineSeconds") &&
            (r = obj_set_int(doc, "spec.progressDeadlineSeconds", 600)) < 0)
                return r;
        if (!obj_get(doc, "spec.minReadySeconds") &&
            (r = obj_set_int(doc, "spec.minReadySeconds", 0)) < 0)
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
                if (!obj_get(doc, "spec.strategy.rollingUpdate.deletePolicy") &&
                    (r = obj_set_str(doc, "spec.strategy.rollingUpdate.deletePolicy", "Random")) <
                            0)
                        return r;
        }
        /* Cluster API's webhook: the deployment-name label on the template, and a selector
         * from it when none is given. */
        if ((r = add_cluster_name_label(doc, "spec.template.metadata.labels")) < 0)
                return r;
        Obj *tlabels = obj_get(doc, "spec.template.metadata.labels");
        if (md && tlabels && !obj_map_get(tlabels, "cluster.x-k8s.io/deployment-name") &&
            (r = obj_map_set_str(tlabels, "cluster.x-k8s.io/deployment-name", md)) < 0)
                return r;
        if (obj_len(obj_get(doc, "spec.selector.matchLabels")) == 0 &&
            obj_len(obj_get(doc, "spec.selector.matchExpressions")) == 0) {
                if (cn && (r = obj_set(doc, "spec.selector.matchLabels", obj_new_map())) < 0)
                        return r;
                Obj *ml = obj_get(doc, "spec.selector.matchLabels");
                if (cn && (r = obj_map_set_str(ml, "cluster.x-k8s.io/cluster-name", cn)) < 0)
                        return r;
                if (md && ml && (r = obj_map_set_str(ml, "cluster.x-k8s.io/deployment-name", md)) < 0)
                        return r;
        }
        if (cn && !obj_get(doc, "spec.template.spec.clusterName"))
                return obj_set_str(doc, "spec.template.spec.clusterName", cn);
        return 0;
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
};

/* ---- MachineHealthCheck ---- */

static const SchemaField unhealthy_condition_fields[] = {
        {"type", ST_STRING, SF_REQUIRED | SF_NONEMPTY},
        {"status", ST_STRING, SF_REQUIRED, .values = (const char *const[]){"True", "False",
                                                                            "Unknown", NULL}},
        {"timeout", ST_DURATION, SF_REQUIRED},
        SCHEMA_END,
};

static const char *check_unhealthy_range(const Obj *v, char *buf, size_t bufsz) {
        unsigned a, b;
        char end;
        (void)buf;
        (void)bufsz;
        if (sscanf(obj_str(v), "[%u-%u]%c", &a, &b, &end) != 3 || end != ']' || a > b)
                return "must look like \"[1-3]\" (min-max unhealthy machines)";
        return NULL;
}

static const SchemaField mhc_spec[] = {
        {"clusterName", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_NONEMPTY},
        {"selector", ST_OBJECT, SF_REQUIRED, .fields = label_selector_fields},
        {"unhealthyConditions", ST_LIST, .item = ST_OBJECT, .fields = unhealthy_condition_fields},
        {"maxUnhealthy", ST_INT_OR_STRING, .check = check_percent_or_int},
        {"unhealthyRange", ST_STRING, .check = check_unhealthy_range},
        {"nodeStartupTimeout", ST_DURATION},
        {"remediationTemplate", ST_OBJECT, .fields = object_reference_fields},
        SCHEMA_END,
};

static const SchemaField mhc_status[] = {
        {"expectedMachines", ST_INT},
        {"currentHealthy", ST_INT},
        {"remediationsAllowed", ST_INT},
        {"observedGeneration", ST_INT},
        {"targets", ST_LIST, .item = ST_STRING},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        SCHEMA_END,
};

static int mhc_defaults(Obj *doc) {
        int r;
        if (!obj_get(doc, "spec.maxUnhealthy") &&
            (r = obj_set_str(doc, "spec.maxUnhealthy", "100%")) < 0)
                return r;
        if (!obj_get(doc, "spec.nodeStartupTimeout") &&
            (r = obj_set_str(doc, "spec.nodeStartupTimeout", "10m")) < 0)
                return r;
        return 0;
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
        .defaults = mhc_defaults,
};
