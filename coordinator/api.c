/* SPDX-License-Identifier: Apache-2.0 */
#include <time.h>
#include <zmq.h>

#include <sodium.h>

#include "api.h"
#include "config.h"
#include "controllers/controllers.h"
#include "enroll.h"
#include "fanout.h"
#include "json.h"
#include "log.h"
#include "resource.h"
#include "watch.h"
#include "wire.h"
#include "yamlio.h"

extern const KindInfo kind_host, kind_secret, kind_machinedeployment, kind_machineset,
        kind_kubeadmcontrolplane;

static int resp_fail(Obj *resp, const char *code, const char *fmt, ...) _printf_(3, 4);
static int resp_fail(Obj *resp, const char *code, const char *fmt, ...) {
        va_list ap;
        char *msg = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        int r = obj_map_set_bool(resp, "ok", false);
        if (r >= 0)
                r = obj_map_set_str(resp, "code", code);
        if (r >= 0)
                r = obj_map_set(resp, "message", obj_new_str_take(msg));
        else
                free(msg);
        return r;
}

static int resp_ok(Obj *resp, const char *message) {
        int r = obj_map_set_bool(resp, "ok", true);
        if (r >= 0 && message)
                r = obj_map_set_str(resp, "message", message);
        return r;
}

static const char *errno_code(int r) {
        switch (r) {
        case -ENOENT:
                return "NotFound";
        case -EEXIST:
                return "AlreadyExists";
        case -ESTALE:
                return "Conflict";
        case -EINVAL:
        case -EBADMSG:
                return "Invalid";
        default:
                return "InternalError";
        }
}

/* ---- apply ---- */

/* kubectl apply's three-way merge on maps: keys in desired are set (maps recursively),
 * keys that were applied last time and are gone from desired are removed, keys nobody
 * applied (set by controllers or defaults) stay. Lists are replaced whole. */
static int merge3(Obj *live, const Obj *last, const Obj *desired) {
        int r;
        OBJ_MAP_FOREACH(e, desired) {
                Obj *lv = obj_map_get(live, e->key);
                if (obj_is(lv, OBJ_MAP) && obj_is(e->value, OBJ_MAP)) {
                        r = merge3(lv, obj_map_get(last, e->key), e->value);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = obj_map_set(live, e->key, obj_dup(e->value));
                if (r < 0)
                        return r;
        }
        OBJ_MAP_FOREACH(e, last) {
                if (!obj_map_get(desired, e->key))
                        obj_map_del(live, e->key);
        }
        return 0;
}

static char *doc_label(const Obj *doc) {
        const char *kind = obj_get_str(doc, "kind");
        const char *name = obj_get_str(doc, "metadata.name");
        return asprintf_safe("%s/%s", kind ? kind : "?", name ? name : "?");
}

/* One problem line, within what API_RESPONSE allows (anvilctl's decoder refuses more): a
 * message quoting a huge value is cut, at a character boundary, and says so; past the line
 * limit one last line counts the rest. */
static int append_problem_line(Obj *lines, const char *line) {
        static const char cut[] = " … (truncated)";
        size_t n = obj_len(lines);
        if (n >= WIRE_MAX_PROBLEMS)
                return 0;
        if (n == WIRE_MAX_PROBLEMS - 1)
                return obj_list_append(lines, obj_new_str("… more problems not shown"));
        size_t len = strlen(line);
        if (len < WIRE_MAX_PROBLEM)
                return obj_list_append(lines, obj_new_str(line));
        size_t keep = WIRE_MAX_PROBLEM - sizeof(cut);
        while (keep > 0 && ((unsigned char)line[keep] & 0xC0) == 0x80)
                keep--; /* not inside a UTF-8 sequence */
        return obj_list_append(lines,
                               obj_new_str_take(asprintf_safe("%.*s%s", (int)keep, line, cut)));
}

static int add_problem_lines(Obj *lines, const char *file, const char *label, const Problems *p) {
        _cleanup_free_ char *text = problems_format(file, label, p);
        if (!text)
                return -ENOMEM;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                int r = append_problem_line(lines, line);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const SchemaField *kind_field_table(const KindInfo *k, const char *top) {
        if (streq(top, "spec"))
                return k->spec;
        return NULL;
}

/* The source position of path in the manifest, or of its nearest ancestor that is there (a
 * removed field points at the map it was removed from). */
static ObjMark mark_in_doc(const Obj *doc, const char *path) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", path);
        for (;;) {
                const Obj *o = obj_get(doc, buf);
                if (o && o->mark.line)
                        return o->mark;
                char *dot = strrchr(buf, '.');
                if (!dot)
                        break;
                *dot = 0;
        }
        return doc->mark;
}

/* Prepares a manifest document for storing: no status, no nulls, no server fields. */
static int normalise(const KindInfo *k, Obj *doc) {
        obj_map_del(doc, "status");
        Obj *meta = obj_map_get(doc, "metadata");
        schema_drop_nulls(metadata_fields, meta);
        const char *server_owned[] = {"uid", "generation", "creationTimestamp", "deletionTimestamp",
                                      "deletionGracePeriodSeconds"};
        for (size_t i = 0; i < ELEMENTSOF(server_owned); i++)
                obj_map_del(meta, server_owned[i]);
        Obj *spec = obj_map_get(doc, "spec");
        if (obj_is(spec, OBJ_NULL))
                obj_map_del(doc, "spec");
        else if (spec && k->spec)
                schema_drop_nulls(k->spec, spec);
        for (const SchemaField *f = k->extra; f && f->name; f++)
                if (obj_is(obj_map_get(doc, f->name), OBJ_NULL))
                        obj_map_del(doc, f->name);
        if (k->namespaced && !obj_get_str(meta, "namespace")) {
                int r = obj_map_set_str(meta, "namespace", "default");
                if (r < 0)
                        return r;
        }
        return 0;
}

static int apply_defaults(const KindInfo *k, Obj *doc) {
        int r = 0;
        Obj *spec = obj_map_get(doc, "spec");
        if (spec && k->spec)
                r = schema_apply_defaults(k->spec, spec);
        if (r >= 0 && k->defaults)
                r = k->defaults(doc);
        return r;
}

/* Applies one validated document. *ret_action gets "created", "configured", "unchanged";
 * *ret_name the object's name when the document had only generateName, else NULL;
 * *ret_before the object as it was, for an update (checked again after the whole apply). */
static int apply_one(Manager *m, const KindInfo *k, const Obj *doc_in, Problems *p,
                     const char **ret_action, char **ret_name, Obj **ret_before) {
        _cleanup_(obj_freep) Obj *doc = obj_dup(doc_in);
        if (!doc)
                return -ENOMEM;
        int r = normalise(k, doc);
        if (r < 0)
                return r;
        const char *ns = k->namespaced ? meta_namespace(doc) : "";
        const char *name = meta_name(doc);

        /* The configuration as the operator wrote it, for the next three-way merge. */
        _cleanup_(obj_freep) Obj *applied = obj_dup(doc);
        if (!applied)
                return -ENOMEM;
        obj_del(applied, "metadata.resourceVersion");
        Obj *aa = obj_get(applied, "metadata.annotations");
        obj_map_del(aa, LAST_APPLIED_ANNOTATION);
        /* The annotation is shown by get and is not encrypted at rest: secret values are
         * kept out of it (the merge only needs to know which keys were applied). */
        schema_redact(k->extra, applied);
        if (k->spec)
                schema_redact(k->spec, obj_map_get(applied, "spec"));
        _cleanup_free_ char *applied_json = NULL;
        r = json_emit(applied, false, &applied_json);
        if (r < 0)
                return r;

        /* Events are the coordinator's record of what happened: nobody else writes them. */
        if (streq(k->kind, "Event"))
                return problems_add(p, doc_in->mark, "kind",
                                    "Events are written by the coordinator, not applied") < 0
                               ? -ENOMEM
                               : -EINVAL;
        _cleanup_(obj_freep) Obj *live = NULL;
        r = name ? registry_get(m->reg, k, ns, name, &live) : -ENOENT;
        if (r == -ENOENT && streq(k->kind, "Host"))
                /* A Host is a server that proved its key with a token; apply may only change
                 * an enrolled one (labels, spec.paused). */
                return problems_add(p, mark_in_doc(doc_in, "metadata.name"), "metadata.name",
                                    "no Host \"%s\": Hosts are created when a server enrolls "
                                    "('anvilctl token create', then start its agent), not by "
                                    "apply",
                                    strna(name)) < 0
                               ? -ENOMEM
                               : -EINVAL;
        if (r == -ENOENT) {
                r = apply_defaults(k, doc);
                if (r < 0)
                        return r;
                if ((r = meta_set_annotation(doc, LAST_APPLIED_ANNOTATION, applied_json)) < 0)
                        return r;
                obj_del(doc, "metadata.resourceVersion");
                r = registry_create(m->reg, doc);
                if (r < 0)
                        return r;
                *ret_action = "created";
                if (!name && !(*ret_name = strdup(strempty(meta_name(doc)))))
                        return -ENOMEM;
                return 0;
        }
        if (r < 0)
                return r;

        /* Optimistic concurrency: a resourceVersion in the manifest is a precondition. */
        const char *want_rv = obj_get_str(doc, "metadata.resourceVersion");
        if (want_rv && !streq_ptr(want_rv, obj_get_str(live, "metadata.resourceVersion"))) {
                const Obj *rv = obj_get(doc_in, "metadata.resourceVersion");
                return problems_add(p, rv->mark, "metadata.resourceVersion",
                                    "the object has been modified (resourceVersion %s, yours "
                                    "is %s); get it again and reapply",
                                    strna(obj_get_str(live, "metadata.resourceVersion")),
                                    want_rv) < 0
                               ? -ENOMEM
                               : -ESTALE;
        }

        _cleanup_(obj_freep) Obj *last = NULL;
        const char *last_json = meta_annotation(live, LAST_APPLIED_ANNOTATION);
        if (last_json && json_parse(last_json, strlen(last_json), &last) < 0)
                last = NULL;
        /* A manifest without labels or annotations removes only the ones it applied last
         * time: keys set by `anvilctl label/annotate` or by controllers (a paused annotation)
         * stay, as kubectl keeps them in the annotations map its own annotation holds open. */
        static const char *const meta_maps[] = {"labels", "annotations"};
        for (size_t i = 0; i < ELEMENTSOF(meta_maps); i++) {
                const char *key = meta_maps[i];
                Obj *dm = obj_map_get(doc, "metadata");
                if (obj_is(dm, OBJ_MAP) && !obj_map_get(dm, key) &&
                    obj_is(obj_get(obj_map_get(last, "metadata"), key), OBJ_MAP) &&
                    (r = obj_map_set(dm, key, obj_new_map())) < 0)
                        return r;
        }
        _cleanup_(obj_freep) Obj *merged = obj_dup(live);
        if (!merged)
                return -ENOMEM;
        /* Merge everything but status and the server-owned metadata. */
        OBJ_MAP_FOREACH(e, doc) {
                if (streq(e->key, "apiVersion") || streq(e->key, "kind"))
                        continue;
                Obj *target = obj_map_get(merged, e->key);
                if (obj_is(target, OBJ_MAP) && obj_is(e->value, OBJ_MAP)) {
                        r = merge3(target, obj_map_get(last, e->key), e->value);
                } else
                        r = obj_map_set(merged, e->key, obj_dup(e->value));
                if (r < 0)
                        return r;
        }
        OBJ_MAP_FOREACH(e, last) {
                if (!streq(e->key, "metadata") && !streq(e->key, "status") &&
                    !obj_map_get(doc, e->key))
                        obj_map_del(merged, e->key);
        }
        r = apply_defaults(k, merged);
        if (r < 0)
                return r;
        r = meta_set_annotation(merged, LAST_APPLIED_ANNOTATION, applied_json);
        if (r < 0)
                return r;

        size_t before = p->n;
        /* As the API server: an object on its way out takes no new finalizers (else nothing
         * could ever be sure a deletion ends). */
        const Obj *live_fin = obj_get(live, "metadata.finalizers");
        if (obj_get_str(live, "metadata.deletionTimestamp"))
                OBJ_LIST_FOREACH(f, obj_get(merged, "metadata.finalizers"), i) {
                        bool had = false;
                        OBJ_LIST_FOREACH(g, live_fin, j) had = had || obj_equal(f, g);
                        if (!had && (r = problems_add(p, (ObjMark){0}, "metadata.finalizers",
                                                      "no new finalizers can be added while "
                                                      "the object is being deleted (%s)",
                                                      strna(obj_str(f)))) < 0)
                                return r;
                }
        r = schema_check_immutable(kind_field_table(k, "spec"), obj_map_get(live, "spec"),
                                   obj_map_get(merged, "spec"), "spec", p);
        if (r >= 0 && k->validate_update)
                r = k->validate_update(live, merged, p);
        if (r < 0)
                return r;
        /* Upgrades: one minor version at a time (the rules between objects: check_skew()). */
        r = skew_check_update(m, k, live, merged, p);
        if (r < 0)
                return r;
        if (p->n > before) {
                /* Point the errors at the manifest's lines, not the merged copy's. */
                for (size_t i = before; i < p->n; i++)
                        p->items[i].mark = mark_in_doc(doc_in, p->items[i].path);
                return -EINVAL;
        }

        if (obj_equal(live, merged)) {
                *ret_action = "unchanged";
                return 0;
        }
        r = registry_update(m->reg, merged);
        if (r < 0)
                return r;
        *ret_action = "configured";
        *ret_before = TAKE_PTR(live);
        return 0;
}

/* Upgrades: no kubelet newer than its API server (nor too old) — judged on the state after the
 * whole apply (the store group holds every document's write), so the order of the documents
 * in the file does not matter. */
static int check_skew(Manager *m, const KindInfo *k, const Obj *doc_in, const Obj *before,
                      Problems *p) {
        _cleanup_(obj_freep) Obj *after = NULL;
        int r = registry_get(m->reg, k, meta_namespace(before), meta_name(before), &after);
        if (r == -ENOENT)
                return 0; /* the apply removed it (its last finalizer): nothing to compare */
        if (r < 0)
                return r;
        size_t n = p->n;
        r = skew_check_applied(m, k, before, after, p);
        if (r < 0)
                return r;
        for (size_t i = n; i < p->n; i++)
                p->items[i].mark = mark_in_doc(doc_in, p->items[i].path);
        return p->n > n ? -EINVAL : 0;
}

/* Adds the problems doc got (those after the first `before` of p) to lines, and remembers
 * the first failure and its document. Returns r, or the error adding them. */
/* "FILE:LINE:COLUMN: …" lines in the order of the file (pass 1 and pass 2 found them
 * separately); a line of another shape (the "more problems" line) stays last. */
typedef struct ProblemLine {
        unsigned line, column;
        size_t index;
        Obj *text;
} ProblemLine;

static int cmp_problem_line(const void *a, const void *b) {
        const ProblemLine *x = a, *y = b;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->column != y->column)
                return x->column < y->column ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

static void sort_problem_lines(const char *file, Obj *lines) {
        size_t n = obj_len(lines), prefix = strlen(file) + 1;
        if (n < 2 || !obj_is(lines, OBJ_LIST))
                return;
        _cleanup_free_ ProblemLine *v = calloc(n, sizeof(ProblemLine));
        if (!v)
                return; /* unsorted is still correct */
        for (size_t i = 0; i < n; i++) {
                const char *t = obj_str(lines->list.items[i]);
                v[i] = (ProblemLine){UINT_MAX, UINT_MAX, i, lines->list.items[i]};
                if (t && strlen(t) > prefix && startswith(t, file) && t[prefix - 1] == ':')
                        (void)sscanf(t + prefix, "%u:%u:", &v[i].line, &v[i].column);
        }
        qsort(v, n, sizeof(ProblemLine), cmp_problem_line);
        for (size_t i = 0; i < n; i++)
                lines->list.items[i] = v[i].text;
}

static int note_result(Obj *lines, const char *file, const Obj *doc, const Problems *p,
                       size_t before, int r, int *failed, char **fail_label) {
        if (p->n > before) {
                _cleanup_free_ char *label = doc_label(doc);
                Problems sub = {.items = p->items + before, .n = p->n - before};
                int q = add_problem_lines(lines, file, label, &sub);
                if (q < 0)
                        r = q;
        }
        if (r < 0 && !*failed) {
                *failed = r;
                *fail_label = doc_label(doc);
        }
        return r;
}

int api_apply(Manager *m, const char *file, const char *content, Obj *resp) {
        return api_apply_in(m, file, content, NULL, resp);
}

/* `apply -n NS`: documents without a namespace go to NS; one naming another is an error, as
 * kubectl makes it. Cluster-scoped kinds are left alone. */
static int apply_namespace(Obj *doc, const char *ns, Problems *p) {
        const KindInfo *k = kind_lookup(strempty(obj_get_str(doc, "kind")));
        Obj *meta = obj_map_get(doc, "metadata");
        if (!ns || !k || !k->namespaced || !obj_is(meta, OBJ_MAP))
                return 0;
        const Obj *have = obj_map_get(meta, "namespace");
        if (!obj_str(have))
                return obj_map_set_str(meta, "namespace", ns);
        if (streq(obj_str(have), ns))
                return 0;
        return problems_add(p, have->mark, "metadata.namespace",
                            "the namespace from the provided object \"%s\" does not match the "
                            "namespace \"%s\" given with --namespace",
                            obj_str(have), ns);
}

/* A "kind: List" document (what `get -o yaml|json` prints for several objects, as kubectl
 * accepts it) stands for its items: they replace it in docs, in place, each with its own
 * source position. A List that is not one (no items, other fields, a List inside) is a
 * problem line, and docs is left alone. */
static int expand_lists(const char *file, Obj **docs, Obj *lines) {
        bool any = false;
        OBJ_LIST_FOREACH(doc, *docs, i)
        any |= streq_ptr(obj_get_str(doc, "kind"), "List");
        if (!any)
                return 0;
        _cleanup_(obj_freep) Obj *out = obj_new_list();
        if (!out)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; r >= 0 && i < obj_len(*docs); i++) {
                Obj *doc = obj_list_get(*docs, i);
                if (!streq_ptr(obj_get_str(doc, "kind"), "List")) {
                        r = obj_list_append(out, obj_dup(doc));
                        continue;
                }
                const char *bad = NULL;
                const Obj *items = obj_map_get(doc, "items");
                if (!streq_ptr(obj_get_str(doc, "apiVersion"), "v1"))
                        bad = "apiVersion: a List must be \"v1\"";
                else if (!items || items->type != OBJ_LIST)
                        bad = "items: a List needs a list of objects";
                OBJ_MAP_FOREACH(e, doc)
                if (!bad && !streq(e->key, "apiVersion") && !streq(e->key, "kind") &&
                    !streq(e->key, "items") && !streq(e->key, "metadata"))
                        bad = "unknown field in a List (apiVersion, kind, metadata, items)";
                OBJ_LIST_FOREACH(it, items, j)
                if (!bad && (it->type != OBJ_MAP || streq_ptr(obj_get_str(it, "kind"), "List")))
                        bad = "items: every item must be an object, and not a List";
                if (bad) {
                        _cleanup_free_ char *line = asprintf_safe(
                                "%s:%u:%u: List: %s", file, doc->mark.line, doc->mark.column, bad);
                        r = line ? append_problem_line(lines, line) : -ENOMEM;
                        continue;
                }
                OBJ_LIST_FOREACH(it, items, j)
                if (r >= 0)
                        r = obj_list_append(out, obj_dup(it));
        }
        if (r < 0)
                return r;
        if (obj_len(lines) > 0)
                return 0;
        obj_free(*docs);
        *docs = TAKE_PTR(out);
        return 0;
}

int api_apply_in(Manager *m, const char *file, const char *content, const char *ns, Obj *resp) {
        _cleanup_(obj_freep) Obj *docs = NULL;
        YamlError yerr;
        int r = yaml_parse_documents(content, strlen(content), &docs, &yerr);
        if (r == -EBADMSG) {
                _cleanup_(obj_freep) Obj *lines = obj_new_list();
                _cleanup_free_ char *line =
                        asprintf_safe("%s:%u:%u: %s", file, yerr.line, yerr.column, yerr.message);
                if (!lines || !line || append_problem_line(lines, line) < 0)
                        return -ENOMEM;
                r = resp_fail(resp, "Invalid", "%s is not valid YAML", file);
                if (r >= 0)
                        r = obj_map_set(resp, "problems", TAKE_PTR(lines));
                return r;
        }
        if (r < 0)
                return r;
        /* Pass 1: validate every document; report everything at once. */
        _cleanup_(obj_freep) Obj *lines = obj_new_list();
        if (!lines)
                return -ENOMEM;
        if ((r = expand_lists(file, &docs, lines)) < 0)
                return r;
        if (obj_len(lines) > 0) {
                r = resp_fail(resp, "Invalid", "%s: %zu problem%s, nothing applied", file,
                              obj_len(lines), obj_len(lines) == 1 ? "" : "s");
                return r < 0 ? r : obj_map_set(resp, "problems", TAKE_PTR(lines));
        }
        if (obj_len(docs) == 0)
                return resp_fail(resp, "Invalid", "%s: no objects to apply", file);
        const KindInfo **kinds = calloc(obj_len(docs), sizeof(KindInfo *));
        if (!kinds)
                return -ENOMEM;
        OBJ_LIST_FOREACH(doc, docs, i) {
                _cleanup_(problems_clearp) Problems p = {0};
                r = apply_namespace(doc, ns, &p);
                if (r >= 0)
                        r = kind_validate_document(doc, &kinds[i], &p);
                if (r < 0)
                        break;
                _cleanup_free_ char *label = doc_label(doc);
                if (p.n > 0 && (r = add_problem_lines(lines, file, label, &p)) < 0)
                        break;
                if (p.n > 0)
                        kinds[i] = NULL; /* not checked against the store (pass 2) */
        }
        /* The same object twice in one apply is almost always a copy-paste error. */
        for (size_t i = 0; r >= 0 && obj_len(lines) == 0 && i < obj_len(docs); i++)
                for (size_t j = 0; j < i; j++) {
                        const Obj *a = obj_list_get(docs, i), *b = obj_list_get(docs, j);
                        if (kinds[i] == kinds[j] && streq_ptr(meta_name(a), meta_name(b)) &&
                            meta_name(a) &&
                            streq_ptr(meta_namespace(a) ?: "default",
                                      meta_namespace(b) ?: "default")) {
                                _cleanup_free_ char *label = doc_label(a);
                                _cleanup_free_ char *line = asprintf_safe(
                                        "%s:%u:%u: %s: metadata.name: duplicate of the document "
                                        "at line %u",
                                        file, a->mark.line, a->mark.column, label, b->mark.line);
                                r = line ? append_problem_line(lines, line) : -ENOMEM;
                        }
                }
        if (r < 0) {
                free(kinds);
                return r;
        }
        /* With problems already, pass 2 still checks the valid documents against the store
         * (immutable fields, update rules, skew), in a group that is always rolled back: the
         * operator gets every problem of the file at once, not a second round after fixing
         * the first. */
        bool dry = obj_len(lines) > 0;

        /* Pass 2: all documents or none. */
        r = store_group_begin(m->store);
        if (r < 0) {
                free(kinds);
                return r;
        }
        _cleanup_(obj_freep) Obj *results = obj_new_list();
        /* Each document's object as it was before (null when created), for pass 3. */
        _cleanup_(obj_freep) Obj *befores = obj_new_list();
        _cleanup_(problems_clearp) Problems p = {0};
        int failed = results && befores ? 0 : -ENOMEM;
        _cleanup_free_ char *fail_label = NULL;
        OBJ_LIST_FOREACH(doc, docs, i) {
                if (failed == -ENOMEM)
                        break;
                if (!kinds[i]) { /* refused in pass 1 */
                        if (obj_list_append(befores, obj_new_null()) < 0)
                                failed = -ENOMEM;
                        continue;
                }
                const char *action = NULL;
                _cleanup_free_ char *generated = NULL;
                size_t before = p.n;
                Obj *was = NULL;
                r = apply_one(m, kinds[i], doc, &p, &action, &generated, &was);
                if (obj_list_append(befores, was ? was : obj_new_null()) < 0) {
                        failed = -ENOMEM;
                        break;
                }
                if (note_result(lines, file, doc, &p, before, r, &failed, &fail_label) < 0)
                        continue;
                const KindInfo *k = kinds[i];
                _cleanup_free_ char *line =
                        asprintf_safe("%s%s%s/%s %s", k->singular, isempty(k->group) ? "" : ".",
                                      k->group, generated ?: strempty(meta_name(doc)), action);
                if (!line || obj_list_append(results, obj_new_str(line)) < 0) {
                        failed = -ENOMEM;
                        break;
                }
        }
        /* Pass 3: version skew on the state after the whole apply — the store group holds
         * every document's write — so the order of the documents does not matter. */
        bool applied = failed == 0;
        OBJ_LIST_FOREACH(doc, docs, i) {
                const Obj *was = obj_list_get(befores, i);
                if (!applied || !kinds[i] || !obj_is(was, OBJ_MAP))
                        continue;
                size_t before = p.n;
                r = check_skew(m, kinds[i], doc, was, &p);
                if (note_result(lines, file, doc, &p, before, r, &failed, &fail_label) == -ENOMEM)
                        break;
        }
        free(kinds);
        (void)store_group_end(m->store, failed == 0 && !dry);
        if (dry && failed != -ENOMEM) {
                sort_problem_lines(file, lines);
                r = resp_fail(resp, "Invalid", "%s: %zu problem%s, nothing applied", file,
                              obj_len(lines), obj_len(lines) == 1 ? "" : "s");
                if (r >= 0)
                        r = obj_map_set(resp, "problems", TAKE_PTR(lines));
                return r;
        }
        if (failed) {
                if (failed == -ENOMEM)
                        return failed;
                r = resp_fail(resp, obj_len(lines) ? "Invalid" : errno_code(failed),
                              "%s: %s: %s; nothing applied", file, strna(fail_label),
                              failed == -ESTALE   ? "conflict"
                              : failed == -EINVAL ? "invalid change"
                                                  : strerror(-failed));
                if (r >= 0 && obj_len(lines))
                        r = obj_map_set(resp, "problems", TAKE_PTR(lines));
                return r;
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        OBJ_LIST_FOREACH(l, results, i)
        fprintf(f, "%s\n", obj_str(l));
        fclose(f);
        r = resp_ok(resp, NULL);
        if (r >= 0)
                r = obj_map_set_str(resp, "text", text ? text : "");
        return r;
}

/* ---- get / delete / scale / label ---- */

static void overlay_host(Manager *m, Obj *host) {
        uint64_t seen = fanout_host_last_seen(m->fanout, meta_name(host));
        if (!seen)
                return;
        uint64_t now_mono = now_usec(CLOCK_MONOTONIC);
        uint64_t ago = now_mono > seen ? now_mono - seen : 0;
        char ts[32];
        obj_set_str(host, "status.lastHeartbeat",
                    format_rfc3339((int64_t)(now_usec(CLOCK_REALTIME) - ago), ts));
        obj_set_bool(host, "status.connected", fanout_host_connected(m->fanout, meta_name(host)));
}

static void redact(const KindInfo *k, Obj *o) {
        schema_redact(k->extra, o);
        if (k->spec)
                schema_redact(k->spec, obj_map_get(o, "spec"));
}

static void prepare_output(Manager *m, const KindInfo *k, Obj *o, bool show_secrets) {
        if (streq(k->kind, "Host"))
                overlay_host(m, o);
        if (show_secrets)
                return;
        redact(k, o);
        /* The last applied configuration holds what was applied, secrets included. */
        const char *last = meta_annotation(o, LAST_APPLIED_ANNOTATION);
        _cleanup_(obj_freep) Obj *lo = NULL;
        _cleanup_free_ char *text = NULL;
        if (!last || json_parse(last, strlen(last), &lo) < 0)
                return;
        redact(k, lo);
        if (json_emit(lo, false, &text) >= 0)
                (void)meta_set_annotation(o, LAST_APPLIED_ANNOTATION, text);
}

void api_prepare_output(Manager *m, const KindInfo *k, Obj *o) {
        prepare_output(m, k, o, false);
}

static int api_get(Manager *m, const Obj *req, Obj *resp) {
        const KindInfo *k = kind_resolve(strempty(obj_get_str(req, "kind")));
        if (!k)
                return resp_fail(resp, "NotFound", "the server doesn't have a resource type \"%s\"",
                                 strempty(obj_get_str(req, "kind")));
        const char *name = obj_get_str(req, "name");
        const char *ns = obj_get_str(req, "namespace");
        bool all = obj_get_bool(req, "allNamespaces", false);
        if (!ns)
                ns = "default";
        int r;
        if (name) {
                _cleanup_(obj_freep) Obj *o = NULL;
                r = registry_get(m->reg, k, k->namespaced ? ns : "", name, &o);
                if (r == -ENOENT)
                        return resp_fail(resp, "NotFound", "%s \"%s\" not found", k->singular,
                                         name);
                if (r < 0)
                        return r;
                prepare_output(m, k, o, false);
                _cleanup_(obj_freep) Obj *items = obj_new_list();
                if (!items || obj_list_append(items, TAKE_PTR(o)) < 0)
                        return -ENOMEM;
                r = resp_ok(resp, NULL);
                if (r >= 0)
                        r = obj_map_set(resp, "items", TAKE_PTR(items));
                /* Where a watch of this object starts. */
                return r < 0 ? r : obj_map_set_int(resp, "revision", store_revision(m->store));
        }
        _cleanup_(obj_freep) Obj *selector = NULL;
        const char *sel = obj_get_str(req, "selector");
        if (sel && label_selector_parse(sel, &selector) < 0)
                return resp_fail(resp, "Invalid", "invalid label selector \"%s\"", sel);
        _cleanup_(obj_freep) Obj *items = NULL;
        r = registry_list_all(m->reg, k, all || !k->namespaced ? NULL : ns, selector, &items);
        if (r < 0)
                return r;
        OBJ_LIST_FOREACH(o, items, i)
        prepare_output(m, k, o, false);
        r = resp_ok(resp, NULL);
        if (r >= 0)
                r = obj_map_set(resp, "items", TAKE_PTR(items));
        if (r >= 0)
                r = obj_map_set_int(resp, "revision", store_revision(m->store));
        return r;
}

static int api_delete(Manager *m, const Obj *req, Obj *resp) {
        const KindInfo *k = kind_resolve(strempty(obj_get_str(req, "kind")));
        const char *name = obj_get_str(req, "name");
        if (!k)
                return resp_fail(resp, "NotFound", "the server doesn't have a resource type \"%s\"",
                                 strempty(obj_get_str(req, "kind")));
        if (!name)
                return resp_fail(resp, "Invalid", "a name is required");
        const char *ns = obj_get_str(req, "namespace");
        int r;
        if (k == &kind_host && !obj_get_bool(req, "force", false)) {
                /* A claimed Host carries a Machine's node: forgetting it would leave the
                 * Machine without its host and the node unmanaged. The Machine's deletion
                 * resets and releases it; --force is for a host that is gone for good. */
                _cleanup_(obj_freep) Obj *h = NULL;
                r = registry_get(m->reg, k, "", name, &h);
                if (r >= 0 && obj_get(h, "spec.consumerRef"))
                        return resp_fail(
                                resp, "Conflict",
                                "host \"%s\" is claimed by %s %s/%s; delete its Machine first "
                                "(the host is reset and released), or use --force to forget a "
                                "host that is gone for good",
                                name, strna(obj_get_str(h, "spec.consumerRef.kind")),
                                strna(obj_get_str(h, "spec.consumerRef.namespace")),
                                strna(obj_get_str(h, "spec.consumerRef.name")));
        }
        r = registry_delete(m->reg, k, k->namespaced ? (ns ? ns : "default") : "", name, NULL);
        if (r == -ENOENT)
                return resp_fail(resp, "NotFound", "%s \"%s\" not found", k->singular, name);
        if (r < 0)
                return r;
        _cleanup_free_ char *msg = asprintf_safe("%s%s%s \"%s\" deleted", k->singular,
                                                 isempty(k->group) ? "" : ".", k->group, name);
        return resp_ok(resp, msg);
}

static int api_scale(Manager *m, const Obj *req, Obj *resp) {
        const KindInfo *k = kind_resolve(strempty(obj_get_str(req, "kind")));
        const char *name = obj_get_str(req, "name");
        int64_t replicas;
        if (!k || (k != &kind_machinedeployment && k != &kind_machineset &&
                   k != &kind_kubeadmcontrolplane))
                return resp_fail(resp, "Invalid",
                                 "scale works on machinedeployments, machinesets and "
                                 "kubeadmcontrolplanes");
        if (!name || !obj_get_int(req, "replicas", &replicas))
                return resp_fail(resp, "Invalid", "scale needs a name and --replicas");
        const char *ns = obj_get_str(req, "namespace");
        _cleanup_(obj_freep) Obj *o = NULL;
        int r = registry_get(m->reg, k, ns ? ns : "default", name, &o);
        if (r == -ENOENT)
                return resp_fail(resp, "NotFound", "%s \"%s\" not found", k->singular, name);
        if (r < 0)
                return r;
        if (k == &kind_kubeadmcontrolplane && replicas % 2 == 0)
                return resp_fail(resp, "Invalid",
                                 "kubeadmcontrolplane replicas must be odd (etcd quorum): %lld",
                                 (long long)replicas);
        if ((r = obj_set_int(o, "spec.replicas", replicas)) < 0)
                return r;
        r = registry_update(m->reg, o);
        if (r < 0)
                return r == -ESTALE ? resp_fail(resp, "Conflict", "conflict, try again") : r;
        _cleanup_free_ char *msg = asprintf_safe("%s%s%s/%s scaled", k->singular,
                                                 isempty(k->group) ? "" : ".", k->group, name);
        return resp_ok(resp, msg);
}

static int api_label(Manager *m, const Obj *req, Obj *resp, bool annotate) {
        const KindInfo *k = kind_resolve(strempty(obj_get_str(req, "kind")));
        const char *name = obj_get_str(req, "name");
        if (!k || !name)
                return resp_fail(resp, "Invalid", "a known kind and a name are required");
        const char *ns = obj_get_str(req, "namespace");
        _cleanup_(obj_freep) Obj *o = NULL;
        int r = registry_get(m->reg, k, k->namespaced ? (ns ? ns : "default") : "", name, &o);
        if (r == -ENOENT)
                return resp_fail(resp, "NotFound", "%s \"%s\" not found", k->singular, name);
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *orig = obj_dup(o);
        if (!orig)
                return -ENOMEM;
        const Obj *changes = obj_map_get(req, annotate ? "annotations" : "labels");
        bool overwrite = obj_get_bool(req, "overwrite", false);
        OBJ_MAP_FOREACH(e, changes) {
                const char *v = obj_str(e->value);
                const char *cur = annotate ? meta_annotation(o, e->key) : meta_label(o, e->key);
                _cleanup_(obj_freep) Obj *kk = obj_new_str(e->key);
                if (!kk)
                        return -ENOMEM;
                const char *msg = check_label_key(kk, NULL, 0);
                if (msg)
                        return resp_fail(resp, "Invalid", "invalid %s key \"%s\": %s",
                                         annotate ? "annotation" : "label", e->key, msg);
                if (!annotate && (msg = check_label_value(e->value, NULL, 0)))
                        return resp_fail(resp, "Invalid", "invalid label value \"%s\" of %s: %s",
                                         strempty(v), e->key, msg);
                if (cur && v && !overwrite && !streq(cur, v))
                        return resp_fail(resp, "Invalid",
                                         "'%s' already has a value (%s), and --overwrite is false",
                                         e->key, cur);
                r = annotate ? meta_set_annotation(o, e->key, v) : meta_set_label(o, e->key, v);
                if (r < 0)
                        return r;
        }
        OBJ_LIST_FOREACH(key, obj_map_get(req, "remove"), i) {
                r = annotate ? meta_set_annotation(o, obj_str(key), NULL)
                             : meta_set_label(o, obj_str(key), NULL);
                if (r < 0)
                        return r;
        }
        /* kubectl's words: labeled, unlabeled (only removals), not labeled (no change). */
        bool changed = !obj_equal(obj_get(orig, "metadata"), obj_get(o, "metadata"));
        const char *verb = !changed                ? (annotate ? "not annotated" : "not labeled")
                           : obj_len(changes) == 0 ? (annotate ? "annotated" : "unlabeled")
                                                   : (annotate ? "annotated" : "labeled");
        if (changed) {
                r = registry_update(m->reg, o);
                if (r < 0)
                        return r == -ESTALE ? resp_fail(resp, "Conflict", "conflict, try again")
                                            : r;
        }
        _cleanup_free_ char *msg = asprintf_safe(
                "%s%s%s/%s %s", k->singular, isempty(k->group) ? "" : ".", k->group, name, verb);
        return resp_ok(resp, msg);
}

static int api_info(Manager *m, Obj *resp) {
        _cleanup_(obj_freep) Obj *o = obj_new_map();
        char fp[64];
        key_fingerprint(m->keys.public_z85, fp, sizeof(fp));
        FanoutStats fs;
        fanout_get_stats(m->fanout, &fs);
        if (!o || obj_map_set_str(o, "endpoint", m->config.advertise) < 0 ||
            obj_map_set_str(o, "listen", m->config.listen) < 0 ||
            obj_map_set_str(o, "publicKey", m->keys.public_z85) < 0 ||
            obj_map_set_str(o, "fingerprint", fp) < 0 ||
            obj_map_set_str(o, "version", ANVIL_VERSION) < 0 ||
            obj_map_set_int(o, "revision", store_revision(m->store)) < 0 ||
            obj_map_set_int(o, "hosts", (int64_t)fs.hosts) < 0 ||
            obj_map_set_int(o, "connected", (int64_t)fs.connected) < 0 ||
            obj_map_set_str(o, "stateDir", m->config.state_dir) < 0)
                return -ENOMEM;
        int r = resp_ok(resp, NULL);
        return r < 0 ? r : obj_map_set(resp, "object", TAKE_PTR(o));
}

/* A reply with the items of an internal list (tokens, revoked keys). */
static int resp_list(Manager *m, int (*list)(Manager *m, Obj **ret), Obj *resp) {
        _cleanup_(obj_freep) Obj *items = NULL;
        int r = list(m, &items);
        if (r < 0)
                return r;
        r = resp_ok(resp, NULL);
        return r < 0 ? r : obj_map_set(resp, "items", TAKE_PTR(items));
}

static int api_token_create(Manager *m, const Obj *req, Obj *resp) {
        int64_t ttl = 24 * 3600, uses = 0;
        obj_get_int(req, "ttlSeconds", &ttl);
        obj_get_int(req, "uses", &uses);
        const Obj *labels = obj_map_get(req, "labels");
        OBJ_MAP_FOREACH(e, labels) {
                _cleanup_(obj_freep) Obj *kk = obj_new_str(e->key);
                if (kk && check_label_key(kk, NULL, 0))
                        return resp_fail(resp, "Invalid", "invalid label key \"%s\": %s", e->key,
                                         check_label_key(kk, NULL, 0));
                if (strlen(strempty(obj_str(e->value))) > 63)
                        return resp_fail(resp, "Invalid", "label value of %s is too long", e->key);
        }
        TokenSpec spec = {.ttl_usec = (uint64_t)ttl * USEC_PER_SEC,
                          .uses = uses,
                          .labels = labels,
                          .description = obj_get_str(req, "description")};
        _cleanup_free_ char *token = NULL;
        int r;
        for (int tries = 0; tries < 3; tries++) {
                r = token_create(m, &spec, &token);
                if (r != -EEXIST)
                        break;
        }
        if (r < 0)
                return r;
        log_info("Created enrollment token %.6s (ttl %llds, uses %lld).", token, (long long)ttl,
                 (long long)uses);
        r = resp_ok(resp, NULL);
        if (r >= 0)
                r = obj_map_set_str(resp, "text", token);
        if (r >= 0)
                r = api_info(m, resp);
        sodium_memzero(token, strlen(token));
        return r;
}

static int handle(Manager *m, const Obj *req, Obj *resp) {
        const char *op = obj_get_str(req, "op");
        int r;
        if (streq(op, "apply")) {
                const char *content = obj_get_str(req, "content");
                if (!content)
                        return resp_fail(resp, "Invalid", "apply needs content");
                return api_apply_in(m, obj_get_str(req, "file") ?: "-", content,
                                    obj_get_str(req, "namespace"), resp);
        }
        if (streq(op, "get"))
                return api_get(m, req, resp);
        if (streq(op, "delete"))
                return api_delete(m, req, resp);
        if (streq(op, "scale"))
                return api_scale(m, req, resp);
        if (streq(op, "label"))
                return api_label(m, req, resp, false);
        if (streq(op, "annotate"))
                return api_label(m, req, resp, true);
        if (streq(op, "info") || streq(op, "version"))
                return api_info(m, resp);
        if (streq(op, "describe")) {
                const KindInfo *k = kind_resolve(strempty(obj_get_str(req, "kind")));
                const char *name = obj_get_str(req, "name");
                const char *ns = obj_get_str(req, "namespace") ?: "default";
                if (!k)
                        return resp_fail(resp, "NotFound",
                                         "the server doesn't have a resource type \"%s\"",
                                         strempty(obj_get_str(req, "kind")));
                if (!name)
                        return resp_fail(resp, "Invalid", "describe needs a name");
                _cleanup_free_ char *text = NULL;
                r = streq(k->kind, "Cluster") ? describe_cluster(m, ns, name, &text)
                                              : describe_object(m, k, ns, name, &text);
                if (r == -ENOENT)
                        return resp_fail(resp, "NotFound", "%s \"%s\" not found", k->singular,
                                         name);
                if (r < 0)
                        return r;
                r = resp_ok(resp, NULL);
                return r < 0 ? r : obj_map_set_str(resp, "text", text);
        }
        if (streq(op, "token-create"))
                return api_token_create(m, req, resp);
        if (streq(op, "token-list"))
                return resp_list(m, token_list, resp);
        if (streq(op, "token-delete")) {
                const char *id = obj_get_str(req, "name");
                r = id ? token_delete(m, id) : -EINVAL;
                if (r == -ENOENT || r == -EINVAL)
                        return resp_fail(resp, "NotFound", "token \"%s\" not found", strna(id));
                if (r < 0)
                        return r;
                _cleanup_free_ char *msg = asprintf_safe("token \"%s\" deleted", id);
                return resp_ok(resp, msg);
        }
        if (streq(op, "host-revoke")) {
                _cleanup_free_ char *err = NULL;
                const char *name = obj_get_str(req, "name");
                if (!name)
                        return resp_fail(resp, "Invalid", "host revoke needs a host name");
                r = host_revoke(m, name, &err);
                if (r == -ENOENT)
                        return resp_fail(resp, "NotFound", "%s", strna(err));
                if (r < 0)
                        return r;
                _cleanup_free_ char *msg = asprintf_safe("host/%s revoked", name);
                return resp_ok(resp, msg);
        }
        if (streq(op, "host-revoked"))
                return resp_list(m, revoked_key_list, resp);
        if (streq(op, "kubeconfig")) {
                _cleanup_free_ char *text = NULL, *err = NULL;
                const char *name = obj_get_str(req, "name");
                const char *ns = obj_get_str(req, "namespace") ?: "default";
                if (!name)
                        return resp_fail(resp, "Invalid", "get kubeconfig needs a cluster name");
                r = kubeconfig_for_cluster(m, ns, name, &text, &err);
                if (r < 0 && err)
                        return resp_fail(resp, r == -ENOENT ? "NotFound" : "NotReady", "%s", err);
                if (r < 0)
                        return r;
                r = resp_ok(resp, NULL);
                return r < 0 ? r : obj_map_set_str(resp, "text", text);
        }
        return resp_fail(resp, "Invalid", "operation \"%s\" is not supported", op);
}

int api_on_request(void *zsock, void *userdata) {
        Manager *m = userdata;
        zmq_msg_t rid, body;
        _cleanup_(obj_freep) Obj *resp = NULL;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        int r = 0;
        if (zmq_msg_recv(&rid, zsock, ZMQ_DONTWAIT) < 0) {
                r = negative_errno();
                goto out;
        }
        if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, zsock, ZMQ_DONTWAIT) < 0) {
                r = -EBADMSG;
                goto out;
        }
        while (zmq_msg_more(&body)) {
                /* extra frames: not ours; drain and refuse */
                zmq_msg_close(&body);
                zmq_msg_init(&body);
                if (zmq_msg_recv(&body, zsock, ZMQ_DONTWAIT) < 0)
                        break;
                r = -EBADMSG;
        }

        resp = obj_new_map();
        if (!resp) {
                r = -ENOMEM;
                goto out;
        }
        if (r == 0) {
                MsgType type;
                _cleanup_(obj_freep) Obj *req = NULL;
                char err[256];
                r = wire_decode(CHANNEL_ADMIN_REQUEST, zmq_msg_data(&body), zmq_msg_size(&body),
                                &type, &req, err, sizeof(err));
                if (r < 0) {
                        log_warning("Refused an admin request: %s", err);
                        r = resp_fail(resp, "BadRequest", "bad request: %s", err);
                } else if (streq_ptr(obj_get_str(req, "op"), "watch")) {
                        /* A long poll: answered now, or later by the watch hub itself. */
                        bool parked = false;
                        r = watch_hub_request(m->watch, zmq_msg_data(&rid), zmq_msg_size(&rid), req,
                                              resp, &parked);
                        if (r >= 0 && parked)
                                goto out;
                        if (r < 0) {
                                obj_free(resp);
                                resp = obj_new_map();
                                r = resp ? resp_fail(resp, errno_code(r), "%s", strerror(-r))
                                         : -ENOMEM;
                        }
                } else {
                        log_debug("Admin request: %s", strna(obj_get_str(req, "op")));
                        r = handle(m, req, resp);
                        if (r < 0) {
                                log_error_errno(r, "Admin request %s failed: %m",
                                                strna(obj_get_str(req, "op")));
                                obj_free(resp);
                                resp = obj_new_map();
                                r = resp ? resp_fail(resp, errno_code(r), "%s", strerror(-r))
                                         : -ENOMEM;
                        }
                }
        } else
                r = resp_fail(resp, "BadRequest", "bad request: unexpected frames");
        if (r >= 0) {
                char *buf;
                size_t size;
                r = wire_encode(MSG_API_RESPONSE, resp, &buf, &size);
                if (r >= 0)
                        r = manager_send_after_commit(m, zsock, zmq_msg_data(&rid),
                                                      zmq_msg_size(&rid), buf, size);
        }
out:
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        return r;
}
