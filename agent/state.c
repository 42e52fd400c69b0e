/* SPDX-License-Identifier: Apache-2.0 */
#include "fileio.h"
#include "schema.h"
#include "state.h"
#include "yamlio.h"

static const char *const step_status_names[] = {"pending", "running", "done", "failed", NULL};

const char *step_status_to_string(StepStatus s) {
        return s >= 0 && s <= STEP_FAILED ? step_status_names[s] : "pending";
}

StepStatus step_status_from_string(const char *s) {
        for (int i = 0; step_status_names[i]; i++)
                if (streq_ptr(s, step_status_names[i]))
                        return (StepStatus)i;
        return STEP_PENDING;
}

static const SchemaField step_fields[] = {
        {"name", ST_STRING, SF_REQUIRED, .max = 128},
        {"status", ST_STRING, SF_REQUIRED, .values = step_status_names},
        {"exitCode", ST_INT},
        {"resetFirst", ST_BOOL}, /* a kubeadm step: kubeadm reset runs before it */
        {"skipped", ST_BOOL},    /* done without running: not needed */
        SCHEMA_END,
};

static const SchemaField failure_fields[] = {
        {"step", ST_STRING},   {"exitCode", ST_INT}, {"message", ST_STRING},
        {"output", ST_STRING}, SCHEMA_END,
};

static const SchemaField plan_fields[] = {
        {"generation", ST_INT, SF_REQUIRED, .min = 0, .max = INT64_MAX},
        {"action", ST_STRING, SF_REQUIRED},
        {"state", ST_STRING, SF_REQUIRED},
        {"machine", ST_STRING},
        {"steps", ST_LIST, .item = ST_OBJECT, .fields = step_fields, .max = 1024},
        {"nodeName", ST_STRING},
        {"version", ST_STRING, .max = 64}, /* a provision plan's Kubernetes version */
        {"upgrade", ST_OBJECT},
        {"failure", ST_OBJECT, .fields = failure_fields},
        SCHEMA_END,
};

static const SchemaField desired_fields[] = {
        {"action", ST_STRING},
        {"machine", ST_OBJECT},
        {"bootstrap", ST_STRING, SF_SECRET},
        {"upgrade", ST_OBJECT},
        SCHEMA_END,
};

const SchemaField agent_state_schema[] = {
        {"host", ST_STRING, .max = 253},
        {"coordinator", ST_STRING},
        {"generation", ST_INT, .min = 0, .max = INT64_MAX},
        {"desired", ST_OBJECT, .fields = desired_fields},
        {"plan", ST_OBJECT, .fields = plan_fields},
        {"provisioned", ST_OBJECT},
        SCHEMA_END,
};

int state_load(const char *path, Obj **ret, char *err, size_t errsz) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r = read_file_bounded(path, STATE_MAX_SIZE, &text, &size);
        if (r == -ENOENT) {
                *ret = obj_new_map();
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0) {
                snprintf(err, errsz, "%s: %s", path, strerror(-r));
                return r;
        }
        return state_parse(path, text, size, ret, err, errsz);
}

int state_parse(const char *path, const char *text, size_t size, Obj **ret, char *err,
                size_t errsz) {
        int r;
        if (size > STATE_MAX_SIZE) {
                snprintf(err, errsz, "%s: larger than %u bytes", path, STATE_MAX_SIZE);
                return -EBADMSG;
        }
        _cleanup_(obj_freep) Obj *o = NULL;
        YamlError ye;
        r = yaml_parse_one(text, size, &o, &ye);
        if (r == -EBADMSG) {
                snprintf(err, errsz, "%s:%u:%u: %s", path, ye.line, ye.column, ye.message);
                return r;
        }
        if (r < 0)
                return r;
        _cleanup_(problems_clearp) Problems p = {0};
        r = schema_validate(agent_state_schema, o, "", &p);
        if (r < 0)
                return r;
        if (r > 0) {
                snprintf(err, errsz, "%s:%u:%u: %s: %s", path, p.items[0].mark.line,
                         p.items[0].mark.column, p.items[0].path, p.items[0].message);
                return -EBADMSG;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

int state_save(const char *path, const Obj *state) {
        _cleanup_free_ char *text = NULL;
        int r = yaml_emit(state, &text);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0600);
}
