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
        kind_kubeadmconfigtemplate, kind_anvilcluster, kind_anvilmachine, kind_anvilmachinetemplate,
        kind_host, kind_secret, kind_event;

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
        {"apiVersion", ST_STRING, .max = 253, .doc = "API group and version of the referent"},
        {"kind", ST_STRING, .max = 63, .doc = "kind of the referent"},
        {"name", ST_STRING, .max = 253, .doc = "name of the referent"},
        {"namespace", ST_STRING, .max = 63,
         .doc = "namespace of the referent; defaults to the referring object's namespace"},
        {"uid", ST_STRING, .max = 64, .doc = "uid of the referent"},
        {"resourceVersion", ST_STRING, .max = 64, .doc = "accepted, not used"},
        {"fieldPath", ST_STRING, .max = 253, .doc = "accepted, not used"},
        SCHEMA_END,
};

static const char *const selector_operators[] = {"In", "NotIn", "Exists", "DoesNotExist", NULL};

static const SchemaField selector_requirement_fields[] = {
        {"key", ST_STRING, SF_REQUIRED, .check = check_label_key, .doc = "the label key"},
        {"operator", ST_STRING, SF_REQUIRED, .values = selector_operators,
         .doc = "how the key relates to values"},
        {"values", ST_LIST, .item = ST_STRING, .max = 256,
         .doc = "non-empty for In and NotIn, empty for Exists and DoesNotExist"},
        SCHEMA_END,
};

const SchemaField label_selector_fields[] = {
        {"matchLabels", ST_STRMAP, .doc = "labels that must all be present with these values"},
        {"matchExpressions", ST_LIST, .item = ST_OBJECT, .fields = selector_requirement_fields,
         .max = 64, .doc = "requirements that must all hold"},
        SCHEMA_END,
};

static const char *const condition_status[] = {"True", "False", "Unknown", NULL};
static const char *const condition_severity[] = {"Error", "Warning", "Info", "", NULL};

const SchemaField condition_fields[] = {
        {"type", ST_STRING, SF_REQUIRED, .doc = "condition type, e.g. Ready"},
        {"status", ST_STRING, SF_REQUIRED, .values = condition_status,
         .doc = "True, False or Unknown"},
        {"severity", ST_STRING, .values = condition_severity,
         .doc = "how bad a False condition is: Error, Warning or Info"},
        {"lastTransitionTime", ST_TIME, .doc = "when status last changed"},
        {"reason", ST_STRING, .doc = "CamelCase reason for the last transition"},
        {"message", ST_STRING, .doc = "human-readable details"},
        SCHEMA_END,
};

const SchemaField template_metadata_fields[] = {
        {"labels", ST_STRMAP, .doc = "labels given to the objects created from the template"},
        {"annotations", ST_STRMAP,
         .doc = "annotations given to the objects created from the template"},
        SCHEMA_END,
};

static const SchemaField owner_reference_fields[] = {
        {"apiVersion", ST_STRING, SF_REQUIRED, .doc = "API group and version of the owner"},
        {"kind", ST_STRING, SF_REQUIRED, .doc = "kind of the owner"},
        {"name", ST_STRING, SF_REQUIRED, .doc = "name of the owner"},
        {"uid", ST_STRING, SF_REQUIRED, .doc = "uid of the owner"},
        {"controller", ST_BOOL, .doc = "this owner is the managing controller"},
        {"blockOwnerDeletion", ST_BOOL, .doc = "accepted, not used"},
        SCHEMA_END,
};

const SchemaField metadata_fields[] = {
        {"name", ST_STRING, SF_DNS_NAME,
         .doc = "object name (RFC 1123 subdomain); required unless generateName is given"},
        {"generateName", ST_STRING, .max = 200, .doc = "prefix of a generated name (create only)"},
        {"namespace", ST_STRING, .check = check_dns_label,
         .doc = "namespace (RFC 1123 label); defaults to \"default\"; none for cluster-scoped "
                "kinds"},
        {"labels", ST_STRMAP, .doc = "labels: keys [prefix/]name, values up to 63 characters"},
        {"annotations", ST_STRMAP, .doc = "annotations (free-form strings)"},
        {"uid", ST_STRING, .doc = "set by the coordinator; ignored on apply"},
        {"resourceVersion", ST_STRING,
         .doc = "set by the coordinator; when given on apply, the apply only succeeds if the "
                "object is still at this version (optimistic concurrency)"},
        {"generation", ST_INT, .doc = "set by the coordinator: bumped on every spec change"},
        {"creationTimestamp", ST_TIME, .doc = "set by the coordinator"},
        {"deletionTimestamp", ST_TIME,
         .doc = "set by the coordinator when the object is deleted while it has finalizers"},
        {"deletionGracePeriodSeconds", ST_INT, .doc = "ignored"},
        {"ownerReferences", ST_LIST, .item = ST_OBJECT, .fields = owner_reference_fields,
         .doc = "owners; an object is garbage-collected when its owners are gone"},
        {"finalizers", ST_LIST, .item = ST_STRING, .max = 64,
         .doc = "while any is present a deleted object stays, marked with deletionTimestamp"},
        SCHEMA_END,
};

extern const SchemaField api_endpoint_fields[], machine_spec_fields[], kubeadm_config_spec_fields[],
        cluster_configuration_fields[], init_configuration_fields[], join_configuration_fields[],
        node_registration_fields[];

const SchemaTypeName anvil_schema_types[] = {
        {"ObjectMeta", metadata_fields, "Every object's metadata, as in Kubernetes."},
        {"ObjectReference", object_reference_fields, "A reference to another object."},
        {"LabelSelector", label_selector_fields,
         "Selects objects by their labels; an empty selector selects everything."},
        {"Condition", condition_fields,
         "One observation of an object's state (Cluster API's "
         "v1beta1 condition)."},
        {"TemplateMetadata", template_metadata_fields,
         "Labels and annotations for the objects created from a template."},
        {"APIEndpoint", api_endpoint_fields, "A reachable Kubernetes API server endpoint."},
        {"MachineSpec", machine_spec_fields,
         "The spec of a Machine, also the template of MachineSets and MachineDeployments."},
        {"KubeadmConfigSpec", kubeadm_config_spec_fields,
         "How kubeadm initialises or joins a node, plus files and commands around it."},
        {"ClusterConfiguration", cluster_configuration_fields,
         "kubeadm's ClusterConfiguration (kubeadm.k8s.io/v1beta3 fields)."},
        {"InitConfiguration", init_configuration_fields, "kubeadm's InitConfiguration."},
        {"JoinConfiguration", join_configuration_fields, "kubeadm's JoinConfiguration."},
        {"NodeRegistrationOptions", node_registration_fields,
         "How kubeadm registers the node (init and join)."},
        {NULL, NULL, NULL},
};

const char *schema_type_name(const SchemaField *fields) {
        for (const SchemaTypeName *t = anvil_schema_types; t->name; t++)
                if (t->fields == fields)
                        return t->name;
        return NULL;
}

const char *check_label_value(const Obj *v, char *buf, size_t bufsz) {
        const char *s = obj_str(v);
        (void)buf;
        (void)bufsz;
        if (!s)
                return "must be a string";
        size_t n = strlen(s);
        if (n > 63)
                return "label value must be at most 63 characters";
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!isalnum((unsigned char)c) &&
                    !((c == '-' || c == '_' || c == '.') && i > 0 && i < n - 1))
                        return "label value must be empty or alphanumeric, '-', '_' or '.', "
                               "starting and ending with an alphanumeric character";
        }
        return NULL;
}

const char *doc_namespace(const Obj *doc) {
        const char *ns = obj_get_str(doc, "metadata.namespace");
        return ns ? ns : "default";
}

int default_version_prefix(Obj *doc, const char *path) {
        const char *v = obj_get_str(doc, path);
        if (!v || v[0] == 'v')
                return 0;
        _cleanup_free_ char *nv = strjoin("v", v);
        if (!nv)
                return -ENOMEM;
        return obj_set_str(doc, path, nv);
}

int default_ref_namespace(Obj *doc, const char *path) {
        Obj *ref = obj_get(doc, path);
        if (!obj_is(ref, OBJ_MAP) || obj_map_get(ref, "namespace"))
                return 0;
        return obj_map_set_str(ref, "namespace", doc_namespace(doc));
}

int default_cluster_name_label(Obj *doc, const char *labels_path) {
        const char *cn = obj_get_str(doc, "spec.clusterName");
        if (!cn)
                return 0;
        /* Paths split at dots, so the label key is set on the map, not through obj_set. */
        Obj *labels = obj_get(doc, labels_path);
        if (!labels) {
                int r = obj_set(doc, labels_path, obj_new_map());
                if (r < 0)
                        return r;
                labels = obj_get(doc, labels_path);
        }
        if (!obj_is(labels, OBJ_MAP))
                return 0;
        return obj_map_set_str(labels, "cluster.x-k8s.io/cluster-name", cn);
}

int check_items(const Obj *list, const char *path, SchemaCheck check, Problems *p) {
        OBJ_LIST_FOREACH(it, list, i) {
                char buf[256];
                const char *msg = obj_is(it, OBJ_STR) ? check(it, buf, sizeof(buf)) : NULL;
                if (!msg)
                        continue;
                char sub[192];
                snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
                int r = problems_add(p, it->mark, sub, "%s", msg);
                if (r < 0)
                        return r;
        }
        return 0;
}

int check_ref(const Obj *doc, const char *path, const char *const *kinds, Problems *p) {
        const Obj *ref = obj_get(doc, path);
        int r;
        if (!obj_is(ref, OBJ_MAP))
                return 0;
        _cleanup_free_ char *kpath = strjoin(path, ".kind"), *npath = strjoin(path, ".name"),
                            *apath = strjoin(path, ".apiVersion"),
                            *nspath = strjoin(path, ".namespace");
        if (!kpath || !npath || !apath || !nspath)
                return -ENOMEM;
        const char *kind = obj_get_str(ref, "kind");
        if (!obj_map_get(ref, "kind")) {
                if ((r = problems_add(p, ref->mark, kpath, "required field is missing")) < 0)
                        return r;
        } else if (kind) {
                bool ok = false;
                char allowed[256] = "";
                size_t n = 0;
                for (const char *const *k = kinds; *k; k++) {
                        ok = ok || streq(*k, kind);
                        int w = snprintf(allowed + n, sizeof(allowed) - n, "%s\"%s\"",
                                         n ? ", " : "", *k);
                        if (w > 0 && (size_t)w < sizeof(allowed) - n)
                                n += (size_t)w;
                }
                if (!ok && (r = problems_add(p, obj_map_get(ref, "kind")->mark, kpath,
                                             "unsupported kind \"%s\": Anvil serves %s here", kind,
                                             allowed)) < 0)
                        return r;
                const KindInfo *k = ok ? kind_lookup(kind) : NULL;
                const char *api = obj_get_str(ref, "apiVersion");
                char want[128];
                if (k && api && !streq(api, kind_api_version(k, want, sizeof(want))) &&
                    (r = problems_add(p, obj_map_get(ref, "apiVersion")->mark, apath,
                                      "%s is served as \"%s\", not \"%s\"", kind, want, api)) < 0)
                        return r;
        }
        if (!obj_map_get(ref, "name") &&
            (r = problems_add(p, ref->mark, npath, "required field is missing")) < 0)
                return r;
        const char *ns = obj_get_str(ref, "namespace");
        if (ns && !streq(ns, doc_namespace(doc)) &&
            (r = problems_add(p, obj_map_get(ref, "namespace")->mark, nspath,
                              "must match metadata.namespace (\"%s\")", doc_namespace(doc))) < 0)
                return r;
        return 0;
}

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
                                                                  : "required field is missing")) <
                                       0
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
                        ObjMark at = e->key_mark;
                        if (!msg && obj_is(e->value, OBJ_STR)) {
                                msg = check_label_value(e->value, NULL, 0);
                                at = e->value->mark;
                        }
                        if (msg) {
                                _cleanup_free_ char *path = strjoin("metadata.labels.", e->key);
                                if (!path)
                                        return -ENOMEM;
                                r = problems_add(p, at, path, "%s", msg);
                                if (r < 0)
                                        return r;
                        }
                }
                /* As the API server: an object has at most one managing controller. */
                size_t controllers = 0;
                OBJ_LIST_FOREACH(ref, obj_map_get(meta, "ownerReferences"), i) {
                        const Obj *c = obj_map_get(ref, "controller");
                        if (!obj_get_bool(ref, "controller", false) || ++controllers < 2)
                                continue;
                        _cleanup_free_ char *path =
                                asprintf_safe("metadata.ownerReferences[%zu].controller", i);
                        if (!path)
                                return -ENOMEM;
                        r = problems_add(p, c->mark, path,
                                         "only one reference can have controller set to true");
                        if (r < 0)
                                return r;
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
        /* The cross-field checks run even when fields were already found wrong: every
         * problem of a file is reported at once (they skip values of the wrong type). They see
         * the document as it will be stored: defaulted first, as Cluster API's mutating
         * webhooks run before its validating ones. */
        if (k->validate) {
                _cleanup_(obj_freep) Obj *defaulted = obj_dup(doc);
                if (!defaulted)
                        return -ENOMEM;
                /* Nulls mean absent (as apply normalises them away); a document whose shape
                 * defaulting cannot follow is checked as written. */
                Obj *dspec = obj_map_get(defaulted, "spec");
                if (obj_is(dspec, OBJ_MAP) && k->spec) {
                        schema_drop_nulls(k->spec, dspec);
                        r = schema_apply_defaults(k->spec, dspec);
                        if (r == -ENOMEM)
                                return r;
                }
                schema_drop_nulls(metadata_fields, obj_map_get(defaulted, "metadata"));
                if (k->defaults && (r = k->defaults(defaulted)) == -ENOMEM)
                        return r;
                r = k->validate(r < 0 ? doc : defaulted, p);
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

/* Adds {key, op, values}. values is NULL (Exists, DoesNotExist), a single value (set = false:
 * "!=", which may be empty) or the text inside "( )" (set = true): comma-separated, none of
 * them empty and at least one, as kubectl's -l requires. */
static int add_requirement(Obj *exprs, const char *key, const char *op, char *values, bool set) {
        _cleanup_(obj_freep) Obj *req = obj_new_map();
        if (!req || obj_map_set_str(req, "key", key) < 0 ||
            obj_map_set_str(req, "operator", op) < 0)
                return -ENOMEM;
        if (values) {
                Obj *vl = obj_map_ensure_list(req, "values");
                if (!vl)
                        return -ENOMEM;
                for (char *t = values;;) {
                        char *comma = set ? strchr(t, ',') : NULL;
                        if (comma)
                                *comma = 0;
                        char *v = trim(t);
                        if (set && !*v)
                                return -EINVAL;
                        if (obj_list_append(vl, obj_new_str(v)) < 0)
                                return -ENOMEM;
                        if (!comma)
                                break;
                        t = comma + 1;
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
                        r = add_requirement(ex, trim(term + 1), "DoesNotExist", NULL, false);
                } else if ((op = strstr(term, "!="))) {
                        *op = 0;
                        char *val = trim(op + 2);
                        r = add_requirement(ex, trim(term), "NotIn", val, false);
                } else if ((op = strstr(term, " notin "))) {
                        *op = 0;
                        char *v = trim(op + 7);
                        size_t n = strlen(v);
                        if (n < 2 || v[0] != '(' || v[n - 1] != ')')
                                return -EINVAL;
                        v[n - 1] = 0;
                        r = add_requirement(ex, trim(term), "NotIn", v + 1, true);
                } else if ((op = strstr(term, " in "))) {
                        *op = 0;
                        char *v = trim(op + 4);
                        size_t n = strlen(v);
                        if (n < 2 || v[0] != '(' || v[n - 1] != ')')
                                return -EINVAL;
                        v[n - 1] = 0;
                        r = add_requirement(ex, trim(term), "In", v + 1, true);
                } else if ((op = strchr(term, '='))) {
                        *op = 0;
                        char *key = trim(term), *val = trim(op[1] == '=' ? op + 2 : op + 1);
                        /* Requirements are ANDed: a second "key=value" for the same key is
                         * one more requirement (In), never a replacement of the first. */
                        const char *had = obj_str(obj_map_get(ml, key));
                        if (!had)
                                r = obj_map_set_str(ml, key, val);
                        else if (!streq(had, val))
                                r = add_requirement(ex, key, "In", val, false);
                        else
                                r = 0;
                } else {
                        r = add_requirement(ex, term, "Exists", NULL, false);
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
