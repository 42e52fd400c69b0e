/* SPDX-License-Identifier: Apache-2.0 */
#include "keys.h"
#include "mp.h"
#include "wire.h"

/* ---- body schemas, one per message type (docs/protocol.md mirrors these) ---- */

static const char *check_curve_key(const Obj *v, char *buf, size_t bufsz) {
        (void)buf;
        (void)bufsz;
        return key_z85_valid(obj_str(v)) ? NULL : "must be a 40-character Z85 CURVE public key";
}

static const SchemaField cpu_fields[] = {
        {"model", ST_STRING, .max = WIRE_MAX_NAME},
        {"count", ST_INT, .min = 0, .max = 65536},
        SCHEMA_END,
};

static const SchemaField iface_fields[] = {
        {"name", ST_STRING, SF_REQUIRED, .max = 64},
        {"mac", ST_STRING, .max = 64},
        {"addresses", ST_LIST, .item = ST_STRING, .max = 64, .item_max = 64},
        SCHEMA_END,
};

static const SchemaField disk_fields[] = {
        {"name", ST_STRING, SF_REQUIRED, .max = 64},
        {"sizeBytes", ST_INT, .min = 0, .max = INT64_MAX},
        {"rotational", ST_BOOL},
        SCHEMA_END,
};

const SchemaField wire_facts_fields[] = {
        {"productUUID", ST_STRING, SF_REQUIRED | SF_NONEMPTY, .max = 64},
        {"hostname", ST_STRING, SF_REQUIRED, .max = WIRE_MAX_NAME},
        {"serial", ST_STRING, .max = WIRE_MAX_NAME},
        {"vendor", ST_STRING, .max = WIRE_MAX_NAME},
        {"model", ST_STRING, .max = WIRE_MAX_NAME},
        {"cpu", ST_OBJECT, .fields = cpu_fields},
        {"memoryBytes", ST_INT, .min = 0, .max = INT64_MAX},
        {"interfaces", ST_LIST, .item = ST_OBJECT, .fields = iface_fields, .max = 128},
        {"disks", ST_LIST, .item = ST_OBJECT, .fields = disk_fields, .max = 128},
        {"kernel", ST_STRING, .max = WIRE_MAX_NAME},
        {"os", ST_STRING, .max = WIRE_MAX_NAME},
        {"agentVersion", ST_STRING, .max = 64},
        SCHEMA_END,
};

/* The token is not in the message: the connection's CURVE key is derived from it (see
 * enroll_keypair_from_token()), so the handshake already proved it. */
static const SchemaField enroll_fields[] = {
        {"agentKey", ST_STRING, SF_REQUIRED, .max = KEY_Z85_LEN, .check = check_curve_key},
        {"proof", ST_STRING, SF_REQUIRED | SF_NONEMPTY, .max = KEY_PROOF_MAX},
        {"facts", ST_OBJECT, SF_REQUIRED, .fields = wire_facts_fields},
        /* The machine still holds what a Machine left (kubeadm's files, or a plan that did
         * not end in a reset): its Host must be reset before it is handed out. */
        {"needsReset", ST_BOOL},
        SCHEMA_END,
};

static const SchemaField step_fields[] = {
        {"name", ST_STRING, .max = WIRE_MAX_NAME},
        {"index", ST_INT, .min = 0, .max = 10000},
        {"total", ST_INT, .min = 0, .max = 10000},
        SCHEMA_END,
};

static const char *const agent_states[] = {
        "Idle", "Provisioning", "Provisioned", "Failed", "Deprovisioning", "Upgrading", NULL};

/* The kind of the agent's current plan (an in-place upgrade is a plan of its own). */
static const char *const agent_actions[] = {"Idle", "Provision", "Deprovision", "Upgrade", NULL};

static const SchemaField hello_fields[] = {
        {"generation", ST_INT, SF_REQUIRED, .min = 0, .max = INT64_MAX},
        {"state", ST_STRING, SF_REQUIRED, .values = agent_states},
        {"action", ST_STRING, .values = agent_actions},
        {"step", ST_OBJECT, .fields = step_fields},
        {"facts", ST_OBJECT, .fields = wire_facts_fields},
        SCHEMA_END,
};

/* state and action: the plan the acknowledged generation left the agent with, so the
 * coordinator records the acknowledgment and the state it is about in one write. */
static const SchemaField ack_fields[] = {
        {"generation", ST_INT, SF_REQUIRED, .min = 0, .max = INT64_MAX},
        {"state", ST_STRING, .values = agent_states},
        {"action", ST_STRING, .values = agent_actions},
        SCHEMA_END,
};

static const SchemaField status_fields[] = {
        {"generation", ST_INT, SF_REQUIRED, .min = 0, .max = INT64_MAX},
        {"state", ST_STRING, SF_REQUIRED, .values = agent_states},
        {"action", ST_STRING, .values = agent_actions},
        {"step", ST_OBJECT, .fields = step_fields},
        {"message", ST_STRING, .max = WIRE_MAX_TEXT},
        {"exitCode", ST_INT, .min = -1000, .max = 1000},
        {"output", ST_STRING, .max = WIRE_MAX_OUTPUT},
        SCHEMA_END,
};

/* A Node condition as the agent read it from the API server (lastTransitionTime is the
 * cluster's RFC 3339 time). */
static const SchemaField node_condition_fields[] = {
        {"type", ST_STRING, SF_REQUIRED, .max = 128},
        {"status", ST_STRING, SF_REQUIRED, .max = 16},
        {"reason", ST_STRING, .max = 256},
        {"lastTransitionTime", ST_STRING, .max = 64},
        SCHEMA_END,
};

static const SchemaField report_fields[] = {
        {"generation", ST_INT, SF_REQUIRED, .min = 0, .max = INT64_MAX},
        {"providerID", ST_STRING, .max = WIRE_MAX_NAME},
        {"nodeName", ST_STRING, .max = WIRE_MAX_NAME},
        {"nodeReady", ST_BOOL},
        {"kubeletVersion", ST_STRING, .max = 64},
        {"nodeConditions", ST_LIST, .item = ST_OBJECT, .fields = node_condition_fields, .max = 32},
        SCHEMA_END,
};

static const SchemaField unit_state_fields[] = {
        {"loadState", ST_STRING, .max = 32},
        {"activeState", ST_STRING, .max = 32},
        {"subState", ST_STRING, .max = 32},
        {"result", ST_STRING, .max = 32},
        {"restarts", ST_INT, .min = 0, .max = INT32_MAX},
        SCHEMA_END,
};

static const SchemaField health_fields[] = {
        {"healthy", ST_BOOL},
        {"units", ST_MAP, .item = ST_OBJECT, .fields = unit_state_fields, .max = 64},
        {"load1", ST_NUMBER},
        SCHEMA_END,
};

static const SchemaField heartbeat_fields[] = {
        {"seq", ST_INT, .min = 0, .max = INT64_MAX},
        {"generation", ST_INT, .min = 0, .max = INT64_MAX},
        {"health", ST_OBJECT, .fields = health_fields},
        {"facts", ST_OBJECT, .fields = wire_facts_fields}, /* only when they changed */
        SCHEMA_END,
};

static const SchemaField result_fields[] = {
        {"id", ST_STRING, SF_REQUIRED, .max = 64},
        {"exitCode", ST_INT, SF_REQUIRED, .min = -1000, .max = 1000},
        {"output", ST_STRING, .max = WIRE_MAX_OUTPUT},
        SCHEMA_END,
};

/* The agent is stopping (SIGTERM): the coordinator marks it disconnected at once instead of
 * after the heartbeat grace. */
static const char *const bye_reasons[] = {"Stopping", NULL};
static const SchemaField bye_fields[] = {
        {"reason", ST_STRING, SF_REQUIRED, .values = bye_reasons},
        SCHEMA_END,
};

static const SchemaField enrolled_fields[] = {
        {"host", ST_STRING, SF_REQUIRED, .max = WIRE_MAX_NAME},
        SCHEMA_END,
};

static const SchemaField refused_fields[] = {
        {"reason", ST_STRING, SF_REQUIRED, .max = 64},
        {"message", ST_STRING, .max = WIRE_MAX_TEXT},
        SCHEMA_END,
};

static const char *const desired_actions[] = {"Idle", "Provision", "Deprovision", NULL};

static const SchemaField desired_machine_fields[] = {
        {"name", ST_STRING, .max = WIRE_MAX_NAME},
        {"namespace", ST_STRING, .max = 63},
        {"cluster", ST_STRING, .max = 63},
        {"role", ST_STRING, .max = 32},
        {"version", ST_STRING, .max = 64},
        {"providerID", ST_STRING, .max = WIRE_MAX_NAME},
        SCHEMA_END,
};

static const char *const upgrade_modes[] = {"apply", "node", NULL};

/* An in-place upgrade of the provisioned machine: kubeadm upgrade apply (the first control
 * plane host) or node (every other), after the host's upgrade-commands. attempt goes up when
 * the operator retries a failed one. */
static const SchemaField desired_upgrade_fields[] = {
        {"version", ST_STRING, SF_REQUIRED, .max = 64, .check = check_k8s_version},
        {"mode", ST_STRING, SF_REQUIRED, .values = upgrade_modes},
        {"attempt", ST_INT, .min = 0, .max = 1000000},
        SCHEMA_END,
};

static const SchemaField desired_fields[] = {
        {"generation", ST_INT, SF_REQUIRED, .min = 1, .max = INT64_MAX},
        {"action", ST_STRING, SF_REQUIRED, .values = desired_actions},
        {"machine", ST_OBJECT, .fields = desired_machine_fields},
        {"bootstrap", ST_STRING, SF_SECRET, .max = WIRE_MAX_BUNDLE},
        {"upgrade", ST_OBJECT, .fields = desired_upgrade_fields},
        SCHEMA_END,
};

static const SchemaField command_fields[] = {
        {"id", ST_STRING, SF_REQUIRED, .max = 64},
        {"command", ST_STRING, SF_REQUIRED, .max = 64},
        /* kubeadm-config-update carries parts of a ClusterConfiguration as JSON texts */
        {"args", ST_STRMAP, .max = 64, .item_max = WIRE_MAX_TEXT},
        SCHEMA_END,
};

static const SchemaField revoked_fields[] = {
        {"reason", ST_STRING, .max = WIRE_MAX_TEXT},
        SCHEMA_END,
};

static const char *const api_ops[] = {
        "apply",      "get",   "delete",       "describe",     "scale",        "label",
        "annotate",   "info",  "token-create", "token-list",   "token-delete", "host-revoke",
        "kubeconfig", "watch", "version",      "host-revoked", NULL,
};

static const SchemaField api_request_fields[] = {
        {"op", ST_STRING, SF_REQUIRED, .values = api_ops},
        {"kind", ST_STRING, .max = 128},
        {"name", ST_STRING, .max = WIRE_MAX_NAME},
        {"namespace", ST_STRING, .max = 63},
        {"allNamespaces", ST_BOOL},
        {"selector", ST_STRING, .max = WIRE_MAX_TEXT},
        {"file", ST_STRING, .max = 4096},
        {"content", ST_STRING, .max = WIRE_MAX_ADMIN_MESSAGE},
        {"replicas", ST_INT, .min = 0, .max = 100000},
        {"labels", ST_STRMAP, .max = 256, .item_max = WIRE_MAX_NAME},
        {"annotations", ST_STRMAP, .max = 256, .item_max = WIRE_MAX_ANNOTATION},
        {"overwrite", ST_BOOL},
        {"remove", ST_LIST, .item = ST_STRING, .max = 256, .item_max = WIRE_MAX_LABEL_KEY},
        {"ttlSeconds", ST_INT, .min = 0, .max = 366LL * 86400},
        {"uses", ST_INT, .min = 0, .max = 1000000},
        {"description", ST_STRING, .max = 1024},
        {"revision", ST_INT, .min = 0, .max = INT64_MAX},
        {"timeoutSeconds", ST_INT, .min = 1, .max = 3600},
        {"showSecrets", ST_BOOL},
        {"force", ST_BOOL},
        SCHEMA_END,
};

static const SchemaField api_response_fields[] = {
        {"ok", ST_BOOL, SF_REQUIRED},
        {"code", ST_STRING, .max = 64},
        {"message", ST_STRING, .max = WIRE_MAX_ADMIN_MESSAGE},
        {"problems", ST_LIST, .item = ST_STRING, .max = WIRE_MAX_PROBLEMS,
         .item_max = WIRE_MAX_PROBLEM},
        {"items", ST_LIST, .item = ST_ANY},
        {"object", ST_ANY},
        {"text", ST_STRING, .max = WIRE_MAX_ADMIN_MESSAGE},
        {"revision", ST_INT},
        {"more", ST_BOOL},
        SCHEMA_END,
};

static const struct {
        const char *name;
        MsgChannel channel;
        const SchemaField *schema;
} msg_types[_MSG_TYPE_MAX] = {
        [MSG_ENROLL] = {"ENROLL", CHANNEL_AGENT_TO_COORDINATOR, enroll_fields},
        [MSG_HELLO] = {"HELLO", CHANNEL_AGENT_TO_COORDINATOR, hello_fields},
        [MSG_ACK] = {"ACK", CHANNEL_AGENT_TO_COORDINATOR, ack_fields},
        [MSG_STATUS] = {"STATUS", CHANNEL_AGENT_TO_COORDINATOR, status_fields},
        [MSG_REPORT] = {"REPORT", CHANNEL_AGENT_TO_COORDINATOR, report_fields},
        [MSG_HEARTBEAT] = {"HEARTBEAT", CHANNEL_AGENT_TO_COORDINATOR, heartbeat_fields},
        [MSG_RESULT] = {"RESULT", CHANNEL_AGENT_TO_COORDINATOR, result_fields},
        [MSG_BYE] = {"BYE", CHANNEL_AGENT_TO_COORDINATOR, bye_fields},
        [MSG_ENROLLED] = {"ENROLLED", CHANNEL_COORDINATOR_TO_AGENT, enrolled_fields},
        [MSG_REFUSED] = {"REFUSED", CHANNEL_COORDINATOR_TO_AGENT, refused_fields},
        [MSG_DESIRED] = {"DESIRED", CHANNEL_COORDINATOR_TO_AGENT, desired_fields},
        [MSG_COMMAND] = {"COMMAND", CHANNEL_COORDINATOR_TO_AGENT, command_fields},
        [MSG_REVOKED] = {"REVOKED", CHANNEL_COORDINATOR_TO_AGENT, revoked_fields},
        [MSG_API_REQUEST] = {"API_REQUEST", CHANNEL_ADMIN_REQUEST, api_request_fields},
        [MSG_API_RESPONSE] = {"API_RESPONSE", CHANNEL_ADMIN_RESPONSE, api_response_fields},
};

const char *msg_type_to_string(MsgType t) {
        if (t < 0 || t >= _MSG_TYPE_MAX)
                return NULL;
        return msg_types[t].name;
}

MsgType msg_type_from_string(const char *s) {
        for (int t = 0; t < _MSG_TYPE_MAX; t++)
                if (streq(msg_types[t].name, s))
                        return (MsgType)t;
        return _MSG_TYPE_INVALID;
}

const SchemaField *msg_type_schema(MsgType t) {
        if (t < 0 || t >= _MSG_TYPE_MAX)
                return NULL;
        return msg_types[t].schema;
}

int wire_encode(MsgType type, const Obj *body, char **ret, size_t *ret_size) {
        if (type < 0 || type >= _MSG_TYPE_MAX)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *env = obj_new_list();
        if (!env || obj_list_append(env, obj_new_int(WIRE_VERSION)) < 0 ||
            obj_list_append(env, obj_new_str(msg_types[type].name)) < 0)
                return -ENOMEM;
        /* Borrow the body into the envelope without copying it: the list already has room
         * for a third item (obj_list_append allocates 4 slots at first), so placing it cannot
         * fail and the body is never freed by us. */
        Obj empty = {.type = OBJ_MAP};
        if (env->list.cap < 3)
                return -ENOMEM;
        env->list.items[2] = body ? (Obj *)body : &empty;
        env->list.n = 3;
        int r = mp_encode(env, ret, ret_size);
        env->list.n = 2; /* hand the borrowed body back */
        return r;
}

int wire_decode(MsgChannel channel, const void *buf, size_t size, MsgType *ret_type, Obj **ret_body,
                char *err, size_t errsz) {
        size_t max = channel == CHANNEL_ADMIN_REQUEST || channel == CHANNEL_ADMIN_RESPONSE
                             ? WIRE_MAX_ADMIN_MESSAGE
                             : WIRE_MAX_AGENT_MESSAGE;
        if (size > max) {
                snprintf(err, errsz, "message of %zu bytes exceeds the limit of %zu", size, max);
                return -EMSGSIZE;
        }
        _cleanup_(obj_freep) Obj *env = NULL;
        /* An admin message may be a list of every object; everything else stays small. */
        int r = mp_decode_bounded(buf, size, max == WIRE_MAX_ADMIN_MESSAGE ? size : MP_MAX_NODES,
                                  &env);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(err, errsz, "not a valid msgpack envelope");
                return -EBADMSG;
        }
        if (!obj_is(env, OBJ_LIST) || env->list.n != 3 || !obj_is(env->list.items[0], OBJ_INT) ||
            !obj_is(env->list.items[1], OBJ_STR) || !obj_is(env->list.items[2], OBJ_MAP)) {
                snprintf(err, errsz, "envelope must be [version, type, {body}]");
                return -EBADMSG;
        }
        if (env->list.items[0]->i != WIRE_VERSION) {
                snprintf(err, errsz, "protocol version %lld is not supported (this side speaks %d)",
                         (long long)env->list.items[0]->i, WIRE_VERSION);
                return -EPROTONOSUPPORT;
        }
        const char *tname = env->list.items[1]->str.s;
        MsgType t = msg_type_from_string(tname);
        if (t < 0 || msg_types[t].channel != channel) {
                snprintf(err, errsz, "unexpected message type \"%.64s\" on this socket", tname);
                return -EBADMSG;
        }
        Obj *body = env->list.items[2];
        _cleanup_(problems_clearp) Problems p = {0};
        r = schema_validate(msg_types[t].schema, body, "", &p);
        if (r < 0)
                return r;
        if (r > 0) {
                snprintf(err, errsz, "%s: %s: %s%s", tname,
                         isempty(p.items[0].path) ? "body" : p.items[0].path, p.items[0].message,
                         p.n > 1 ? " (and more)" : "");
                return -EBADMSG;
        }
        *ret_type = t;
        *ret_body = body;
        env->list.n = 2; /* the body now belongs to the caller */
        return 0;
}
