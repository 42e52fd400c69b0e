/* SPDX-License-Identifier: Apache-2.0 */
/*
 * infrastructure.anvil.dev/v1alpha1: AnvilCluster, AnvilMachine, AnvilMachineTemplate and
 * Host; plus the two core kinds Anvil keeps as Kubernetes does (Secret for bootstrap data and
 * certificates, referenced by name and never inlined; Event for describe).
 */
#include "kinds.h"

extern const SchemaField api_endpoint_fields[];

#define ANVIL_GROUP   "infrastructure.anvil.dev"
#define ANVIL_API_VERSION "v1alpha1"

static const SchemaField anvilcluster_spec[] = {
        {"controlPlaneEndpoint", ST_OBJECT, .fields = api_endpoint_fields,
         .doc = "the API server endpoint (a VIP or load balancer in front of the control plane)"},
        SCHEMA_END,
};

static const SchemaField anvilcluster_status[] = {
        {"ready", ST_BOOL},
        {"failureReason", ST_STRING},
        {"failureMessage", ST_STRING},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        SCHEMA_END,
};

static int anvilcluster_validate(const Obj *doc, Problems *p) {
        const Obj *ep = obj_get(doc, "spec.controlPlaneEndpoint");
        int64_t port;
        if (ep && obj_get_int(ep, "port", &port) && port == 0)
                return problems_add(p, obj_get(ep, "port")->mark, "spec.controlPlaneEndpoint.port",
                                    "must be between 1 and 65535");
        return 0;
}

const KindInfo kind_anvilcluster = {
        .group = ANVIL_GROUP,
        .version = ANVIL_API_VERSION,
        .kind = "AnvilCluster",
        .plural = "anvilclusters",
        .singular = "anvilcluster",
        .short_names = (const char *const[]){"ac", NULL},
        .namespaced = true,
        .spec = anvilcluster_spec,
        .status = anvilcluster_status,
        .validate = anvilcluster_validate,
};

const SchemaField anvilmachine_spec_fields[] = {
        {"hostSelector", ST_OBJECT, .fields = label_selector_fields,
         .doc = "which enrolled Hosts this machine may claim (by Host labels)"},
        {"providerID", ST_STRING, .doc = "anvil://<product-uuid>, set when a Host is claimed"},
        SCHEMA_END,
};

static const SchemaField address_fields[] = {
        {"type", ST_STRING, SF_REQUIRED},
        {"address", ST_STRING, SF_REQUIRED},
        SCHEMA_END,
};

static const SchemaField anvilmachine_status[] = {
        {"ready", ST_BOOL},
        {"hostRef", ST_OBJECT, .fields = object_reference_fields},
        {"addresses", ST_LIST, .item = ST_OBJECT, .fields = address_fields},
        {"failureReason", ST_STRING},
        {"failureMessage", ST_STRING},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        {"hostReset", ST_BOOL, .doc = "the host is reset; it is released once the Node is deleted"},
        SCHEMA_END,
};

const KindInfo kind_anvilmachine = {
        .group = ANVIL_GROUP,
        .version = ANVIL_API_VERSION,
        .kind = "AnvilMachine",
        .plural = "anvilmachines",
        .singular = "anvilmachine",
        .short_names = (const char *const[]){"am", NULL},
        .namespaced = true,
        .spec = anvilmachine_spec_fields,
        .status = anvilmachine_status,
};

static const SchemaField anvilmachine_template_resource[] = {
        {"metadata", ST_OBJECT, .fields = template_metadata_fields},
        {"spec", ST_OBJECT, .fields = anvilmachine_spec_fields},
        SCHEMA_END,
};

static const SchemaField anvilmachinetemplate_spec[] = {
        {"template", ST_OBJECT, SF_REQUIRED, .fields = anvilmachine_template_resource},
        SCHEMA_END,
};

const KindInfo kind_anvilmachinetemplate = {
        .group = ANVIL_GROUP,
        .version = ANVIL_API_VERSION,
        .kind = "AnvilMachineTemplate",
        .plural = "anvilmachinetemplates",
        .singular = "anvilmachinetemplate",
        .short_names = (const char *const[]){"amt", NULL},
        .namespaced = true,
        .spec_required = true,
        .spec = anvilmachinetemplate_spec,
};

/* ---- Host ---- */

static const char *const host_actions[] = {"Idle", "Provision", "Deprovision", NULL};

static const SchemaField host_machine_fields[] = {
        {"name", ST_STRING},
        {"namespace", ST_STRING},
        {"cluster", ST_STRING},
        {"role", ST_STRING, .values = (const char *const[]){"control-plane", "worker", NULL}},
        {"version", ST_STRING},
        {"providerID", ST_STRING},
        SCHEMA_END,
};

static const SchemaField secret_ref_fields[] = {
        {"name", ST_STRING},
        {"namespace", ST_STRING},
        SCHEMA_END,
};

static const SchemaField host_upgrade_fields[] = {
        {"version", ST_STRING, .check = check_k8s_version},
        {"mode", ST_STRING, .values = (const char *const[]){"apply", "node", NULL}},
        {"attempt", ST_INT, .min = 0},
        SCHEMA_END,
};

static const SchemaField host_spec[] = {
        {"consumerRef", ST_OBJECT, .fields = object_reference_fields,
         .doc = "the Machine that claimed this host"},
        {"action", ST_STRING, .values = host_actions,
         .doc = "what the agent must do: Idle, Provision or Deprovision (reset)"},
        {"machine", ST_OBJECT, .fields = host_machine_fields,
         .doc = "summary of the desired Machine sent to the agent"},
        {"bootstrapSecretRef", ST_OBJECT, .fields = secret_ref_fields,
         .doc = "the bootstrap bundle sealed to this host's key"},
        {"upgrade", ST_OBJECT, .fields = host_upgrade_fields,
         .doc = "an in-place upgrade of the provisioned machine (kubeadm upgrade apply|node)"},
        {"resetRequired", ST_BOOL,
         .doc = "the host must run kubeadm reset before it is handed out again"},
        {"paused", ST_BOOL},
        SCHEMA_END,
};

static const SchemaField host_status[] = {
        {"phase", ST_STRING},
        {"agentKey", ST_STRING},
        {"fingerprint", ST_STRING},
        {"enrolledAt", ST_TIME},
        {"facts", ST_OBJECT},
        {"lastHeartbeat", ST_TIME},
        {"connected", ST_BOOL},
        {"observedGeneration", ST_INT},
        {"providerID", ST_STRING},
        {"nodeName", ST_STRING},
        {"nodeReady", ST_BOOL},
        {"kubeletVersion", ST_STRING},
        {"step", ST_OBJECT},
        {"lastError", ST_OBJECT},
        {"health", ST_OBJECT},
        {"agentState", ST_STRING},
        {"agentAction", ST_STRING},
        {"nodeConditions", ST_LIST, .item = ST_OBJECT},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        SCHEMA_END,
};

const KindInfo kind_host = {
        .group = ANVIL_GROUP,
        .version = ANVIL_API_VERSION,
        .kind = "Host",
        .plural = "hosts",
        .singular = "host",
        .short_names = (const char *const[]){"ho", NULL},
        .namespaced = false,
        .spec = host_spec,
        .status = host_status,
};

/* ---- core/v1 Secret and Event ---- */

static const SchemaField secret_extra[] = {
        {"type", ST_STRING},
        {"data", ST_STRMAP, SF_SECRET, .doc = "base64 values"},
        {"stringData", ST_STRMAP, SF_SECRET},
        {"immutable", ST_BOOL},
        SCHEMA_END,
};

const KindInfo kind_secret = {
        .group = "",
        .version = "v1",
        .kind = "Secret",
        .plural = "secrets",
        .singular = "secret",
        .namespaced = true,
        .encrypt_at_rest = true,
        .extra = secret_extra,
};

static const SchemaField event_extra[] = {
        {"involvedObject", ST_OBJECT, .fields = object_reference_fields},
        {"reason", ST_STRING},
        {"message", ST_STRING},
        {"type", ST_STRING},
        {"count", ST_INT},
        {"firstTimestamp", ST_TIME},
        {"lastTimestamp", ST_TIME},
        {"source", ST_OBJECT},
        SCHEMA_END,
};

const KindInfo kind_event = {
        .group = "",
        .version = "v1",
        .kind = "Event",
        .plural = "events",
        .singular = "event",
        .short_names = (const char *const[]){"ev", NULL},
        .namespaced = true,
        .extra = event_extra,
};
