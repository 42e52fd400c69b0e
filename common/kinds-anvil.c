/* SPDX-License-Identifier: Apache-2.0 */
/*
 * infrastructure.anvil.dev/v1alpha1: AnvilCluster, AnvilMachine, AnvilMachineTemplate and
 * Host; plus the two core kinds Anvil keeps as Kubernetes does (Secret for bootstrap data and
 * certificates, referenced by name and never inlined; Event for describe).
 */
#include <ctype.h>

#include "keys.h"
#include "kinds.h"

extern const SchemaField api_endpoint_fields[];

#define ANVIL_GROUP       "infrastructure.anvil.dev"
#define ANVIL_API_VERSION "v1alpha1"

static const SchemaField anvilcluster_spec[] = {
        {"controlPlaneEndpoint", ST_OBJECT, .fields = api_endpoint_fields,
         .doc = "the API server endpoint: a VIP or load balancer in front of the control plane "
                "hosts (Anvil provisions neither); copied to the Cluster"},
        SCHEMA_END,
};

static const SchemaField anvilcluster_status[] = {
        {"ready", ST_BOOL, .doc = "the infrastructure is ready (it has an endpoint)"},
        {"failureReason", ST_STRING, .doc = "terminal problem, machine-readable"},
        {"failureMessage", ST_STRING, .doc = "terminal problem, human-readable"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields, .doc = "Ready"},
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
        .doc = "The infrastructure of a Cluster on Anvil (Cluster API's infrastructure cluster): "
               "the control plane endpoint the operator provides.",
};

static const SchemaField anvilmachine_spec_fields[] = {
        {"hostSelector", ST_OBJECT, .fields = label_selector_fields,
         .doc = "which enrolled Hosts this machine may claim, by the Hosts' labels; empty "
                "selects any Available host"},
        {"providerID", ST_STRING, .doc = "anvil://<product-uuid>; set when a Host is claimed"},
        SCHEMA_END,
};

static const SchemaField address_fields[] = {
        {"type", ST_STRING, SF_REQUIRED, .doc = "Hostname or InternalIP"},
        {"address", ST_STRING, SF_REQUIRED, .doc = "the address"},
        SCHEMA_END,
};

static const SchemaField anvilmachine_status[] = {
        {"ready", ST_BOOL, .doc = "the claimed host is provisioned"},
        {"hostRef", ST_OBJECT, .fields = object_reference_fields, .doc = "the claimed Host"},
        {"addresses", ST_LIST, .item = ST_OBJECT, .fields = address_fields,
         .doc = "the host's name and addresses (from its facts)"},
        {"failureReason", ST_STRING, .doc = "terminal problem, machine-readable"},
        {"failureMessage", ST_STRING, .doc = "terminal problem, human-readable"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields,
         .doc = "Ready, HostClaimed, HostProvisioned"},
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
        .doc = "The infrastructure of one Machine (Cluster API's infrastructure machine): it "
               "claims a Host that matches hostSelector and hands it the Machine's bootstrap "
               "data, sealed to the host's key.",
};

static const SchemaField anvilmachine_template_resource[] = {
        {"metadata", ST_OBJECT, .fields = template_metadata_fields,
         .doc = "labels and annotations of the AnvilMachines"},
        {"spec", ST_OBJECT, .fields = anvilmachine_spec_fields, .doc = "their spec"},
        SCHEMA_END,
};

static const SchemaField anvilmachinetemplate_spec[] = {
        {"template", ST_OBJECT, SF_REQUIRED, .fields = anvilmachine_template_resource,
         .doc = "the AnvilMachine of each Machine"},
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
        .doc = "The AnvilMachine of every Machine of a MachineDeployment, MachineSet or "
               "KubeadmControlPlane.",
};

/* ---- Host ---- */

static const char *const host_actions[] = {"Idle", "Provision", "Deprovision", NULL};

static const SchemaField host_machine_fields[] = {
        {"name", ST_STRING, .doc = "Machine name"},
        {"namespace", ST_STRING, .doc = "its namespace"},
        {"cluster", ST_STRING, .doc = "its cluster"},
        {"role", ST_STRING, .values = (const char *const[]){"control-plane", "worker", NULL},
         .doc = "control-plane or worker"},
        {"version", ST_STRING, .doc = "Kubernetes version"},
        {"providerID", ST_STRING, .doc = "provider ID"},
        SCHEMA_END,
};

static const SchemaField secret_ref_fields[] = {
        {"name", ST_STRING, .doc = "Secret name"},
        {"namespace", ST_STRING, .doc = "its namespace"},
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
         .doc = "the Machine that claimed this host (set by Anvil)"},
        {"action", ST_STRING, .values = host_actions,
         .doc = "what the agent must do: Idle, Provision or Deprovision (set by Anvil)"},
        {"machine", ST_OBJECT, .fields = host_machine_fields,
         .doc = "summary of the desired Machine sent to the agent (set by Anvil)"},
        {"bootstrapSecretRef", ST_OBJECT, .fields = secret_ref_fields,
         .doc = "the bootstrap bundle sealed to this host's key (set by Anvil)"},
        {"upgrade", ST_OBJECT, .fields = host_upgrade_fields,
         .doc = "an in-place upgrade of the provisioned machine (kubeadm upgrade apply|node)"},
        {"resetRequired", ST_BOOL,
         .doc = "the host must run kubeadm reset before it is handed out again"},
        {"paused", ST_BOOL, .doc = "keeps the host out of the pool: no machine claims it"},
        SCHEMA_END,
};

static const SchemaField host_status[] = {
        {"phase", ST_STRING,
         .doc = "Available, Claimed, Provisioning, Provisioned, Upgrading, Failed, Deprovisioning, "
                "Unreachable or Revoked"},
        {"agentKey", ST_STRING, .doc = "the agent's CURVE public key (Z85)"},
        {"fingerprint", ST_STRING, .doc = "fingerprint of the agent key"},
        {"enrolledAt", ST_TIME, .doc = "when the host enrolled"},
        {"enrolledWith", ST_STRING, .doc = "the id of the enrollment token it used"},
        {"previousFingerprint", ST_STRING,
         .doc = "the fingerprint of the key the host had before it enrolled again with a new "
                "one"},
        {"facts", ST_OBJECT,
         .doc = "what the agent reported: productUUID, hostname, serial, vendor, model, cpu, "
                "memoryBytes, interfaces, disks, kernel, os, agentVersion"},
        {"claimedBy", ST_OBJECT, .fields = object_reference_fields,
         .doc = "the Machine using the host, if any"},
        {"lastHeartbeat", ST_TIME, .doc = "when the agent was last heard from"},
        {"connected", ST_BOOL, .doc = "heard from within the heartbeat grace period"},
        {"observedGeneration", ST_INT, .doc = "the spec generation the agent has acknowledged"},
        {"providerID", ST_STRING, .doc = "provider ID reported by the agent"},
        {"nodeName", ST_STRING, .doc = "Node name reported by the agent"},
        {"nodeReady", ST_BOOL, .doc = "the node is Ready"},
        {"kubeletVersion", ST_STRING, .doc = "kubelet version"},
        {"step", ST_OBJECT, .doc = "the bootstrap step the agent is at"},
        {"lastError", ST_OBJECT, .doc = "the last failed step: step, exitCode, message, output"},
        {"health", ST_OBJECT, .doc = "unit states from the last heartbeat"},
        {"agentState", ST_STRING,
         .doc = "Idle, Provisioning, Provisioned, Upgrading, Failed or Deprovisioning"},
        {"agentAction", ST_STRING, .doc = "the action of the plan the agent is running"},
        {"agentGeneration", ST_INT,
         .doc = "the desired generation agentState and agentAction are about (an ACK may "
                "arrive before the state of the plan it started)"},
        {"nodeConditions", ST_LIST, .item = ST_OBJECT,
         .doc = "the Node's conditions as the agent last read them"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields, .doc = "Connected"},
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
        .doc = "One enrolled server, created when its agent enrolls with a token; cluster-scoped. "
               "Label hosts (anvilctl label host NAME role=worker) so AnvilMachines can select "
               "them.",
};

/* ---- core/v1 Secret and Event ---- */

static const char *check_secret_key(const char *k) {
        size_t n = strlen(k);
        if (n == 0 || n > 253)
                return "must be 1-253 characters";
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)k[i]) && k[i] != '-' && k[i] != '_' && k[i] != '.')
                        return "must consist of alphanumeric characters, '-', '_' or '.'";
        return NULL;
}

static const SchemaField secret_extra[] = {
        {"type", ST_STRING, .max = 253,
         .doc = "defaults to Opaque; cluster.x-k8s.io/secret for bootstrap data"},
        {"data", ST_STRMAP, SF_SECRET, .doc = "base64-encoded values"},
        {"stringData", ST_STRMAP, SF_SECRET,
         .doc = "plain values, merged into data on write and never read back"},
        {"immutable", ST_BOOL, .doc = "data can no longer change"},
        SCHEMA_END,
};

static int secret_validate(const Obj *doc, Problems *p) {
        const char *maps[] = {"data", "stringData"};
        int r;
        for (size_t i = 0; i < ELEMENTSOF(maps); i++)
                OBJ_MAP_FOREACH(e, obj_map_get(doc, maps[i])) {
                        const char *msg = check_secret_key(e->key);
                        _cleanup_free_ void *raw = NULL;
                        size_t n;
                        if (!msg && i == 0 &&
                            base64_decode(strempty(obj_str(e->value)), &raw, &n) < 0)
                                msg = "must be base64 (use stringData for plain text)";
                        if (!msg)
                                continue;
                        _cleanup_free_ char *path = strjoin(maps[i], ".", e->key);
                        if (!path)
                                return -ENOMEM;
                        if ((r = problems_add(p, e->key_mark, path, "%s", msg)) < 0)
                                return r;
                }
        return 0;
}

/* As the API server writes a Secret: stringData folded into data, type Opaque by default. */
static int secret_defaults(Obj *doc) {
        int r;
        if (!obj_map_get(doc, "type") && (r = obj_map_set_str(doc, "type", "Opaque")) < 0)
                return r;
        _cleanup_(obj_freep) Obj *sd = obj_map_take(doc, "stringData");
        if (obj_len(sd) == 0)
                return 0;
        const Obj *have = obj_map_get(doc, "data");
        if (have && !obj_is(have, OBJ_MAP))
                return -EINVAL; /* the schema reports it; checked as written */
        Obj *data = obj_map_ensure_map(doc, "data");
        if (!data)
                return -ENOMEM;
        OBJ_MAP_FOREACH(e, sd) {
                const char *v = strempty(obj_str(e->value));
                char *b64;
                if ((r = base64_encode(v, strlen(v), &b64)) < 0)
                        return r;
                if ((r = obj_map_set(data, e->key, obj_new_str_take(b64))) < 0)
                        return r;
        }
        return 0;
}

static int secret_validate_update(const Obj *old, const Obj *new, Problems *p) {
        if (!obj_get_bool(old, "immutable", false))
                return 0;
        if (!obj_equal(obj_map_get(old, "data"), obj_map_get(new, "data")))
                return problems_add(p, new->mark, "data",
                                    "field is immutable when `immutable` is set");
        if (!obj_get_bool(new, "immutable", false))
                return problems_add(p, new->mark, "immutable",
                                    "field is immutable when `immutable` is set");
        return 0;
}

const KindInfo kind_secret = {
        .group = "",
        .version = "v1",
        .kind = "Secret",
        .plural = "secrets",
        .singular = "secret",
        .namespaced = true,
        .encrypt_at_rest = true,
        .extra = secret_extra,
        .validate = secret_validate,
        .defaults = secret_defaults,
        .validate_update = secret_validate_update,
        .doc = "Bootstrap data, certificates and anything a KubeadmConfig's files take "
               "contentFrom, as in Kubernetes. Sealed with the coordinator's data key at rest; "
               "values are redacted by get and describe.",
};

static const SchemaField event_extra[] = {
        {"involvedObject", ST_OBJECT, .fields = object_reference_fields,
         .doc = "the object the event is about"},
        {"reason", ST_STRING, .doc = "CamelCase reason"},
        {"message", ST_STRING, .doc = "what happened"},
        {"type", ST_STRING, .doc = "Normal or Warning"},
        {"count", ST_INT, .doc = "how often it happened"},
        {"firstTimestamp", ST_TIME, .doc = "first time"},
        {"lastTimestamp", ST_TIME, .doc = "last time"},
        {"source", ST_OBJECT, .doc = "component that recorded it"},
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
        .doc = "Something a controller did or saw, recorded per object and reason with a count "
               "(shown by describe). Written by the coordinator.",
};
