/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kind registry, metadata schema, generic document validation and label selectors.
 * The spec/status tables of each kind live in kinds-capi.c (cluster.x-k8s.io),
 * kinds-kubeadm.c (bootstrap and control plane) and kinds-anvil.c (Anvil's own and Secret).
 */
#include <ctype.h>
#include <strings.h>

#include "kinds.h"

extern const KindInfo kind_cluster, kind_machine, kind_machineset, kind_machinedeployment,
        kind_machinehealthcheck, kind_kubeadmcontrolplane, kind_kubeadmconfig,
        kind_kubeadmconfigtemplate, kind_anvilcluster, kind_anvilmachine,
        kind_anvilmachinetemplate, kind_host, kind_secret, kind_event;

const KindInfo *const anvil_kinds[] = {
        &kind_cluster,
        &kind_machine,
        &kind_machineset,
        &kind_machinedeployment,
        &kind_machinehealthcheck,
        &kind_kubeadmcontrolplane,
        &kind_kubeadmconfig,
        &kind_kubeadmconfigtemplate,
        &kind_anvilcluster,
        &kind_anvilmachine,
        &kind_anvilmachinetemplate,
        &kind_host,
        &kind_secret,
        &kind_event,
        NULL,
};

const SchemaField object_reference_fields[] = {
        {"apiVersion", ST_STRING, .max = 253},
        {"kind", ST_STRING, .max = 63},
        {"name", ST_STRING, .max = 253},
        {"namespace", ST_STRING, .max = 63},
        {"uid", ST_STRING, .max = 64},
        {"resourceVersion", ST_STRING, .max = 64},
        {"fieldPath", ST_STRING, .max = 253},
        SCHEMA_END,
};

static const char *const selector_operators[] = {"In", "NotIn", "Exists", "DoesNotExist", NULL};

static const SchemaField selector_requirement_fields[] = {
        {"key", ST_STRING, SF_REQUIRED, .check = check_label_key},
        {"operator", ST_STRING, SF_REQUIRED, .values = selector_operators},
        {"values", ST_LIST, .item = ST_STRING, .max = 256},
        SCHEMA_END,
};

const SchemaField label_selector_fields[] = {
        {"matchLabels", ST_STRMAP},
        {"matchExpressions", ST_LIST, .item = ST_OBJECT, .fields = selector_requirement_fields,
         .max = 64},
        SCHEMA_END,
};

static const char *const condition_status[] = {"True", "False", "Unknown", NULL};
static const char *const condition_severity[] = {"Error", "Warning", "Info", "", NULL};

const SchemaField condition_fields[] = {
        {"type", ST_STRING, SF_REQUIRED},
        {"status", ST_STRING, SF_REQUIRED, .values = condition_status},
        {"severity", ST_STRING, .values = condition_severity},
        {"lastTransitionTime", ST_TIME},
        {"reason", ST_STRING},
        {"message", ST_STRING},
        SCHEMA_END,
};

const SchemaField template_metadata_fields[] = {
        {"labels", ST_STRMAP},
        {"annotations", ST_STRMAP},
        SCHEMA_END,
};

static const SchemaField owner_reference_fields[] = {
        {"apiVersion", ST_STRING, SF_REQUIRED},
        {"kind", ST_STRING, SF_REQUIRED},
        {"name", ST_STRING, SF_REQUIRED},
        {"uid", ST_STRING, SF_REQUIRED},
        {"controller", ST_BOOL},
        {"blockOwnerDeletion", ST_BOOL},
        SCHEMA_END,
};

const SchemaField metadata_fields[] = {
        {"name", ST_STRING, SF_DNS_NAME, .doc = "object name (RFC 1123 subdomain)"},
        {"generateName", ST_STRING, .max = 200},
        {"namespace", ST_STRING, .check = check_dns_label},
        {"labels", ST_STRMAP},
        {"annotations", ST_STRMAP},
        {"uid", ST_STRING},
        {"resourceVersion", ST_STRING},
        {"generation", ST_INT},
        {"creationTimestamp", ST_TIME},
        {"deletionTimestamp", ST_TIME},
        {"deletionGracePeriodSeconds", ST_INT},
        {"ownerReferences", ST_LIST, .item = ST_OBJECT, .fields = owner_reference_fields},
        {"finalizers", ST_LIST, .item = ST_STRING, .max = 64},
        SCHEMA_END,
};

const KindInfo *kind_lookup(const char *kind) {
        for (const KindInfo *const *k = anvil_kinds; *k; k++)
                if (streq((*k)->kind, kind))
                        return *k;
        return NULL;
}

const KindInfo *kind_resolve(const char *name) {
        char base[128];
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        if (n == 0 || n >= sizeof(base))
                return NULL;
        memcpy(base, name, n);
        base[n] = 0;
        for (const KindInfo *const *k = anvil_kinds; *k; k++) {
                const KindInfo *ki = *k;
                if (dot && !streq(dot + 1, ki->group))
                        continue;
                if (strcasecmp(base, ki->kind) == 0 || strcasecmp(base, ki->plural) == 0 ||
                    strcasecmp(base, ki->singular) == 0)
                        return ki;
                for (const char *const *s = ki->short_names; s && *s; s++)
                        if (strcasecmp(base, *s) == 0)
                                return ki;
        }
        return NULL;
}

const char *kind_api_version(const KindInfo *k, char *buf, size_t bufsz) {
        if (isempty(k->group))
                snprintf(buf, bufsz, "%s", k->version);
        else
                snprintf(buf, bufsz, "%s/%s", k->group, k->version);
        return buf;
}

static const SchemaField top_fields_base[] = {
        {"apiVersion", ST_STRING, SF_REQUIRED},
        {"kind", ST_STRING, SF_REQUIRED},
        {"metadata", ST_OBJECT, SF_REQUIRED, .fields = metadata_fields},
        {"spec", ST_OBJECT},
        {"status", ST_OBJECT},
        SCHEMA_END,
};

static ObjMark mark_of(const Obj *doc, const char *key) {
        const ObjEntry *e = obj_map_entry(doc, key);
        if (e)
                return e->value->mark;
        return doc ? doc->mark : (ObjMark){0};
}

int kind_validate_document(const Obj *doc, const KindInfo **ret_kind, Problems *p) {
        size_t before = p->n;
        int r;

        if (!obj_is(doc, OBJ_MAP)) {
                r = problems_add(p, doc ? doc->mark : (ObjMark){0}, "",
                                 "a manifest document must be an object with apiVersion and kind");
                return r < 0 ? r : 1;
        }
        const char *kind = obj_get_str(doc, "kind");
        const char *api = obj_get_str(doc, "apiVersion");
        if (!obj_map_get(doc, "kind") || !kind)
                return (r = problems_add(p, mark_of(doc, "kind"), "kind",
                                         obj_map_get(doc, "kind") ? "expected string"
                                                                  : "required field is missing")) < 0
                               ? r
                               : 1;
        const KindInfo *k = kind_lookup(kind);
        if (!k) {
                char known[512] = "";
                size_t n = 0;
                for (const KindInfo *const *i = anvil_kinds; *i && n < sizeof(known); i++) {
                        int w = snprintf(known + n, sizeof(known) - n, "%s%s", n ? ", " : "",
                                         (*i)->kind);
                        if (w > 0)
                                n += (size_t)w;
                }
                r = problems_add(p, mark_of(doc, "kind"), "kind",
                                 "unknown kind \"%s\" (known kinds: %s)", kind, known);
                return r < 0 ? r : 1;
        }
        char want[128];
        kind_api_version(k, want, sizeof(want));
        if (!api) {
                r = problems_add(p, mark_of(doc, "apiVersion"), "apiVersion",
                                 obj_map_get(doc, "apiVersion") ? "expected string"
                                                                : "required field is missing");
                if (r < 0)
                        return r;
        } else if (!streq(api, want)) {
                r = problems_add(p, mark_of(doc, "apiVersion"), "apiVersion",
                                 "%s is served as \"%s\", not \"%s\"", k->kind, want, api);
                if (r < 0)
                        return r;
        }

        /* Top level: the common fields plus the kind's extras. */
        OBJ_MAP_FOREACH(e, doc) {
                if (schema_find(top_fields_base, e->key) || schema_find(k->extra, e->key))
                        continue;
                r = problems_add(p, e->key_mark, e->key, "unknown field \"%s\"", e->key);
                if (r < 0)
                        return r;
        }

        const Obj *meta = obj_map_get(doc, "metadata");
        if (!meta || obj_is(meta, OBJ_NULL)) {
                r = problems_add(p, doc->mark, "metadata", "required field is missing");
                if (r < 0)
                        return r;
        } else {
                r = schema_validate(metadata_fields, meta, "metadata", p);
                if (r < 0)
                        return r;
                if (obj_is(meta, OBJ_MAP) && !obj_get_str(meta, "name") &&
                    !obj_get_str(meta, "generateName")) {
                        r = problems_add(p, meta->mark, "metadata.name",
                                         "required field is missing");
                        if (r < 0)
                                return r;
                }
                const Obj *labels = obj_map_get(meta, "labels");
                OBJ_MAP_FOREACH(e, labels) {
                        _cleanup_(obj_freep) Obj *key = obj_new_str(e->key);
                        if (!key)
                                return -ENOMEM;
                        const char *msg = check_label_key(key, NULL, 0);
                        const char *val = obj_str(e->value);
                        if (!msg && val && strlen(val) > 63)
                                msg = "label value must be at most 63 characters";
                        if (msg) {
                                _cleanup_free_ char *path = strjoin("metadata.labels.", e->key);
                                if (!path)
                                        return -ENOMEM;
                                r = problems_add(p, e->key_mark, path, "%s", msg);
                                if (r < 0)
                                        return r;
                        }
                }
                if (!k->namespaced && obj_get_str(meta, "namespace")) {
                        r = problems_add(p, obj_get(meta, "namespace")->mark, "metadata.namespace",
                                         "%s is cluster-scoped and takes no namespace", k->kind);
                        if (r < 0)
                                return r;
                }
        }

        const Obj *spec = obj_map_get(doc, "spec");
        if (spec && !obj_is(spec, OBJ_NULL)) {
                r = k->spec ? schema_validate(k->spec, spec, "spec", p)
                            : problems_add(p, spec->mark, "spec", "%s has no spec", k->kind);
                if (r < 0)
                        return r;
        } else if (k->spec_required) {
                r = problems_add(p, doc->mark, "spec", "required field is missing");
                if (r < 0)
                        return r;
        }
        for (const SchemaField *f = k->extra; f && f->name; f++) {
                const Obj *v = obj_map_get(doc, f->name);
                if (v && !obj_is(v, OBJ_NULL)) {
                        r = schema_validate_value(f, v, f->name, p);
                        if (r < 0)
                                return r;
                }
        }
        if (k->validate && p->n == before) {
                r = k->validate(doc, p);
                if (r < 0)
                        return r;
        }
        if (ret_kind)
                *ret_kind = k;
        return (int)(p->n - before);
}

/* ---- label selectors ---- */

static bool values_contain(const Obj *values, const char *v) {
        OBJ_LIST_FOREACH(it, values, i)
        if (streq_ptr(obj_str(it), v))
                return true;
        return false;
}

int label_selector_matches(const Obj *selector, const Obj *labels) {
        if (!selector || obj_is(selector, OBJ_NULL))
                return 1;
        if (!obj_is(selector, OBJ_MAP))
                return -EINVAL;
        OBJ_MAP_FOREACH(e, obj_map_get(selector, "matchLabels")) {
                const char *have = obj_str(obj_map_get(labels, e->key));
                if (!have || !streq_ptr(have, obj_str(e->value)))
                        return 0;
        }
        OBJ_LIST_FOREACH(req, obj_map_get(selector, "matchExpressions"), i) {
                const char *key = obj_get_str(req, "key");
                const char *op = obj_get_str(req, "operator");
                const Obj *values = obj_map_get(req, "values");
                if (!key || !op)
                        return -EINVAL;
                const char *have = obj_str(obj_map_get(labels, key));
                if (streq(op, "In")) {
                        if (!have || !values_contain(values, have))
                                return 0;
                } else if (streq(op, "NotIn")) {
                        if (have && values_contain(values, have))
                                return 0;
                } else if (streq(op, "Exists")) {
                        if (!have)
                                return 0;
                } else if (streq(op, "DoesNotExist")) {
                        if (have)
                                return 0;
                } else
                        return -EINVAL;
        }
        return 1;
}

static char *trim(char *s) {
        while (isspace((unsigned char)*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = 0;
        return s;
}

static int add_requirement(Obj *exprs, const char *key, const char *op, char *values) {
        _cleanup_(obj_freep) Obj *req = obj_new_map();
        if (!req || obj_map_set_str(req, "key", key) < 0 || obj_map_set_str(req, "operator", op) < 0)
                return -ENOMEM;
        if (values) {
                Obj *vl = obj_map_ensure_list(req, "values");
                if (!vl)
                        return -ENOMEM;
                char *save = NULL;
                for (char *t = strtok_r(values, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        t = trim(t);
                        if (!*t)
                                return -EINVAL;
                        if (obj_list_append(vl, obj_new_str(t)) < 0)
                                return -ENOMEM;
                }
        }
        return obj_list_append(exprs, TAKE_PTR(req));
}

int label_selector_parse(const char *s, Obj **ret) {
        _cleanup_(obj_freep) Obj *sel = obj_new_map();
        _cleanup_free_ char *copy = strdup(s);
        if (!sel || !copy)
                return -ENOMEM;
        Obj *ml = obj_map_ensure_map(sel, "matchLabels");
        Obj *ex = obj_map_ensure_list(sel, "matchExpressions");
        if (!ml || !ex)
                return -ENOMEM;

        /* Split on commas that are not inside parentheses. */
        char *p = copy;
        while (*p) {
                char *start = p;
                int depth = 0;
                while (*p && (depth > 0 || *p != ',')) {
                        if (*p == '(')
                                depth++;
                        else if (*p == ')')
                                depth--;
                        p++;
                }
                if (*p)
                        *p++ = 0;
                char *term = trim(start);
                if (!*term)
                        return -EINVAL;
                int r;
                char *op;
                if (term[0] == '!') {
                        r = add_requirement(ex, trim(term + 1), "DoesNotExist", NULL);
                } else if ((op = strstr(term, "!="))) {
                        *op = 0;
                        char *val = trim(op + 2);
                        r = add_requirement(ex, trim(term), "NotIn", val);
                } else if ((op = strstr(term, " notin "))) {
                        *op = 0;
                        char *v = trim(op + 7);
                        size_t n = strlen(v);
                        if (n < 2 || v[0] != '(' || v[n - 1] != ')')
                                return -EINVAL;
                        v[n - 1] = 0;
                        r = add_requirement(ex, trim(term), "NotIn", v + 1);
                } else if ((op = strstr(term, " in "))) {
                        *op = 0;
                        char *v = trim(op + 4);
                        size_t n = strlen(v);
                        if (n < 2 || v[0] != '(' || v[n - 1] != ')')
                                return -EINVAL;
                        v[n - 1] = 0;
                        r = add_requirement(ex, trim(term), "In", v + 1);
                } else if ((op = strchr(term, '='))) {
                        *op = 0;
                        char *val = op[1] == '=' ? op + 2 : op + 1;
                        r = obj_map_set_str(ml, trim(term), trim(val));
                } else {
                        r = add_requirement(ex, term, "Exists", NULL);
                }
                if (r < 0)
                        return r;
        }
        /* Keys must be valid label keys. */
        OBJ_MAP_FOREACH(e, ml) {
                _cleanup_(obj_freep) Obj *k = obj_new_str(e->key);
                if (!k || check_label_key(k, NULL, 0))
                        return k ? -EINVAL : -ENOMEM;
        }
        OBJ_LIST_FOREACH(req, ex, i) {
                if (check_label_key(obj_map_get(req, "key"), NULL, 0))
                        return -EINVAL;
        }
        *ret = TAKE_PTR(sel);
        return 0;
}

char *label_selector_to_string(const Obj *selector) {
        char buf[1024];
        size_t n = 0;
        buf[0] = 0;
#define APPEND(...)                                                                                \
        do {                                                                                       \
                if (n < sizeof(buf)) {                                                             \
                        int w = snprintf(buf + n, sizeof(buf) - n, __VA_ARGS__);                   \
                        if (w > 0)                                                                 \
                                n += (size_t)w;                                                    \
                }                                                                                  \
        } while (0)
        OBJ_MAP_FOREACH(e, obj_map_get(selector, "matchLabels"))
        APPEND("%s%s=%s", n ? "," : "", e->key, strempty(obj_str(e->value)));
        OBJ_LIST_FOREACH(req, obj_map_get(selector, "matchExpressions"), i) {
                const char *key = strempty(obj_get_str(req, "key"));
                const char *op = strempty(obj_get_str(req, "operator"));
                if (streq(op, "Exists"))
                        APPEND("%s%s", n ? "," : "", key);
                else if (streq(op, "DoesNotExist"))
                        APPEND("%s!%s", n ? "," : "", key);
                else {
                        APPEND("%s%s %s (", n ? "," : "", key, streq(op, "In") ? "in" : "notin");
                        OBJ_LIST_FOREACH(v, obj_map_get(req, "values"), j)
                        APPEND("%s%s", j ? "," : "", strempty(obj_str(v)));
                        APPEND(")");
                }
        }
#undef APPEND
        return strdup(buf);
}

int kind_check_upgrade_strategy(const Obj *doc, Problems *p) {
        const Obj *v =
                obj_map_get(obj_get(doc, "metadata.annotations"), ANNOTATION_UPGRADE_STRATEGY);
        const char *s = obj_str(v);
        if (!v || streq_ptr(s, "InPlace") || streq_ptr(s, "Replace"))
                return 0;
        return problems_add(p, v->mark, "metadata.annotations[" ANNOTATION_UPGRADE_STRATEGY "]",
                            "must be \"InPlace\" (kubeadm upgrade where the machines stand) or "
                            "\"Replace\" (rolling replacement, the default)");
}
