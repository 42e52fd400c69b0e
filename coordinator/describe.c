/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `anvilctl describe`: for one object, its metadata, owner chain, conditions, spec and
 * status as YAML, and its recent events (kubectl describe's layout); for a cluster, a tree
 * of every object with its Ready condition and the reason when it is not ready (the shape
 * of `clusterctl describe cluster`), plus, for a machine whose host failed a step, the step,
 * exit code and last output lines, and the journalctl command that shows the rest on the
 * host. Columns are as wide as their widest cell, as kubectl's are.
 */
#include <stdarg.h>
#include <time.h>

#include "api.h"
#include "controllers/controllers.h"
#include "fanout.h"
#include "resource.h"
#include "yamlio.h"

extern const KindInfo kind_cluster, kind_anvilcluster, kind_kubeadmcontrolplane, kind_machine,
        kind_machinedeployment, kind_machineset, kind_anvilmachine, kind_host, kind_event;

static const char *since(const char *rfc3339, char buf[static 32]) {
        int64_t t;
        if (!rfc3339 || parse_rfc3339(rfc3339, &t) < 0)
                return "";
        int64_t d = ((int64_t)now_usec(CLOCK_REALTIME) - t) / (int64_t)USEC_PER_SEC;
        if (d < 0)
                d = 0;
        if (d < 120)
                snprintf(buf, 32, "%llds", (long long)d);
        else if (d < 7200)
                snprintf(buf, 32, "%lldm", (long long)(d / 60));
        else if (d < 172800)
                snprintf(buf, 32, "%lldh", (long long)(d / 3600));
        else
                snprintf(buf, 32, "%lldd", (long long)(d / 86400));
        return buf;
}

/* Display width: tree glyphs are several bytes but one column wide. */
static size_t display_width(const char *s) {
        size_t cols = 0;
        for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
                if ((*p & 0xc0) != 0x80)
                        cols++;
        return cols;
}

/* ---- aligned tables ---- */

#define TABLE_MAX_COLS 6

typedef struct TextTable {
        size_t ncols;
        char **cells;    /* rows * ncols */
        char **trailers; /* per row: lines printed below it, unaligned (may be NULL) */
        size_t rows, cap;
} TextTable;

static void text_table_done(TextTable *t) {
        for (size_t i = 0; i < t->rows * t->ncols; i++)
                free(t->cells[i]);
        for (size_t i = 0; i < t->rows; i++)
                free(t->trailers[i]);
        free(t->cells);
        free(t->trailers);
        *t = (TextTable){0};
}

static int text_table_add(TextTable *t, const char *const *cols) {
        if (t->rows == t->cap) {
                size_t nc = t->cap ? t->cap * 2 : 16;
                char **c = realloc(t->cells, nc * t->ncols * sizeof(char *));
                if (!c)
                        return -ENOMEM;
                t->cells = c;
                char **tr = realloc(t->trailers, nc * sizeof(char *));
                if (!tr)
                        return -ENOMEM;
                t->trailers = tr;
                t->cap = nc;
        }
        for (size_t i = 0; i < t->ncols; i++) {
                t->cells[t->rows * t->ncols + i] = strdup(strempty(cols[i]));
                if (!t->cells[t->rows * t->ncols + i]) {
                        for (size_t j = 0; j < i; j++)
                                free(t->cells[t->rows * t->ncols + j]);
                        return -ENOMEM;
                }
        }
        t->trailers[t->rows++] = NULL;
        return 0;
}

/* Appends a line under the last row. */
static void text_table_trailer(TextTable *t, const char *fmt, ...) _printf_(2, 3);
static void text_table_trailer(TextTable *t, const char *fmt, ...) {
        if (t->rows == 0)
                return;
        char *line = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        char **tr = &t->trailers[t->rows - 1];
        char *joined = *tr ? strjoin(*tr, line) : strdup(line);
        free(line);
        if (joined) {
                free(*tr);
                *tr = joined;
        }
}

static void text_table_print(FILE *f, const TextTable *t, const char *indent) {
        size_t width[TABLE_MAX_COLS] = {0};
        for (size_t r = 0; r < t->rows; r++)
                for (size_t c = 0; c < t->ncols; c++) {
                        size_t w = display_width(t->cells[r * t->ncols + c]);
                        if (w > width[c])
                                width[c] = w;
                }
        for (size_t r = 0; r < t->rows; r++) {
                fputs(indent, f);
                /* The last column is not padded, so lines do not end in spaces. */
                size_t last = t->ncols;
                while (last > 1 && !*t->cells[r * t->ncols + last - 1])
                        last--;
                for (size_t c = 0; c < last; c++) {
                        const char *s = t->cells[r * t->ncols + c];
                        fputs(s, f);
                        if (c + 1 < last)
                                for (size_t w = display_width(s); w < width[c] + 2; w++)
                                        fputc(' ', f);
                }
                fputc('\n', f);
                if (t->trailers[r])
                        fputs(t->trailers[r], f);
        }
}

/* ---- describe cluster ---- */

static int tree_row(TextTable *t, const char *prefix, const char *label, const Obj *o) {
        const Obj *ready = condition_get(o, "Ready");
        char label_buf[256], ago[32];
        snprintf(label_buf, sizeof(label_buf), "%s%s", prefix, label);
        const char *status = ready ? strempty(obj_get_str(ready, "status")) : "";
        const char *severity = strempty(obj_get_str(ready, "severity"));
        const char *reason = strempty(obj_get_str(ready, "reason"));
        const char *msg = strempty(obj_get_str(ready, "message"));
        if (streq(status, "True"))
                severity = reason = msg = "";
        const char *cols[] = {label_buf,
                              status,
                              severity,
                              reason,
                              since(obj_get_str(ready, "lastTransitionTime"), ago),
                              msg};
        return text_table_add(t, cols);
}

static int machine_rows(Manager *m, TextTable *t, const char *prefix, const Obj *machines) {
        size_t n = obj_len(machines);
        OBJ_LIST_FOREACH(mc, machines, i) {
                bool last = i + 1 == n;
                char p[128], label[200], cont[128];
                snprintf(p, sizeof(p), "%s%s", prefix, last ? "└─" : "├─");
                snprintf(label, sizeof(label), "Machine/%s", meta_name(mc));
                int r = tree_row(t, p, label, mc);
                if (r < 0)
                        return r;
                snprintf(cont, sizeof(cont), "%s%s", prefix, last ? "    " : "│   ");
                /* The host and, when a step failed, what failed. */
                _cleanup_(obj_freep) Obj *am = NULL, *host = NULL;
                if (registry_get(m->reg, &kind_anvilmachine, meta_namespace(mc), meta_name(mc),
                                 &am) >= 0) {
                        const char *hn = obj_get_str(am, "status.hostRef.name");
                        if (hn)
                                (void)registry_get(m->reg, &kind_host, NULL, hn, &host);
                }
                char hostpart[200] = "", pidpart[300] = "", nodepart[300] = "";
                if (host)
                        snprintf(hostpart, sizeof(hostpart), "  host: %s (%s)", meta_name(host),
                                 strna(obj_get_str(host, "status.phase")));
                if (obj_get_str(mc, "spec.providerID"))
                        snprintf(pidpart, sizeof(pidpart), "  providerID: %s",
                                 obj_get_str(mc, "spec.providerID"));
                if (obj_get_str(mc, "status.nodeRef.name"))
                        snprintf(nodepart, sizeof(nodepart), "  node: %s",
                                 obj_get_str(mc, "status.nodeRef.name"));
                text_table_trailer(t, "%s  phase: %s%s%s%s\n", cont,
                                   strna(obj_get_str(mc, "status.phase")), hostpart, pidpart,
                                   nodepart);
                const Obj *up = condition_get(mc, "InPlaceUpgraded");
                if (up && !condition_is_true(mc, "InPlaceUpgraded"))
                        text_table_trailer(t, "%s  in-place upgrade to %s: %s: %s\n", cont,
                                           strna(obj_get_str(mc, "status.inPlaceUpgrade.version")),
                                           strna(obj_get_str(up, "reason")),
                                           strna(obj_get_str(up, "message")));
                const Obj *err = obj_get(host, "status.lastError");
                if (err && streq_ptr(obj_get_str(host, "status.agentState"), "Failed")) {
                        int64_t code = -1;
                        obj_get_int(err, "exitCode", &code);
                        text_table_trailer(t, "%s  last error: step %s exited %lld: %s\n", cont,
                                           strna(obj_get_str(err, "step")), (long long)code,
                                           strna(obj_get_str(err, "message")));
                        const char *out = obj_get_str(err, "output");
                        if (out) {
                                _cleanup_free_ char *copy = strdup(out);
                                char *save = NULL;
                                for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
                                     l = strtok_r(NULL, "\n", &save))
                                        text_table_trailer(t, "%s    | %s\n", cont, l);
                        }
                        text_table_trailer(t,
                                           "%s  on the host: journalctl -u anvil-agent "
                                           "ANVIL_MACHINE=%s\n",
                                           cont, meta_name(mc));
                }
        }
        return 0;
}

/* Where an owner's rollout is, when it is not done. */
static void rollout_row(TextTable *t, const char *prefix, const Obj *o, const char *type) {
        const Obj *c = condition_get(o, type);
        if (c && !condition_is_true(o, type))
                text_table_trailer(t, "%s  rollout: %s: %s\n", prefix,
                                   strna(obj_get_str(c, "reason")),
                                   strna(obj_get_str(c, "message")));
}

static int list_machines(Manager *m, const char *ns, const char *label, const char *value,
                         Obj **ret) {
        _cleanup_(obj_freep) Obj *sel = obj_new_map();
        if (!sel || obj_set(sel, "matchLabels", obj_new_map()) < 0 ||
            obj_map_set_str(obj_get(sel, "matchLabels"), label, value) < 0)
                return -ENOMEM;
        return registry_list_all(m->reg, &kind_machine, ns, sel, ret);
}

int describe_cluster(Manager *m, const char *ns, const char *name, char **ret) {
        _cleanup_(obj_freep) Obj *cluster = NULL;
        int r = registry_get(m->reg, &kind_cluster, ns, name, &cluster);
        if (r < 0)
                return r;
        _cleanup_(text_table_done) TextTable t = {.ncols = 6};
        const char *header[] = {"NAME", "READY", "SEVERITY", "REASON", "SINCE", "MESSAGE"};
        char label[256];
        if ((r = text_table_add(&t, header)) < 0)
                return r;
        /* Paused shows in the tree: nothing below moves until it is lifted. */
        snprintf(label, sizeof(label), "Cluster/%s%s", name,
                 cluster_paused(cluster, NULL) ? " (paused)" : "");
        if ((r = tree_row(&t, "", label, cluster)) < 0)
                return r;

        _cleanup_(obj_freep) Obj *infra = NULL, *kcp = NULL, *mds = NULL;
        const char *iname = obj_get_str(cluster, "spec.infrastructureRef.name");
        if (iname && registry_get(m->reg, &kind_anvilcluster, ns, iname, &infra) >= 0) {
                snprintf(label, sizeof(label), "ClusterInfrastructure - AnvilCluster/%s", iname);
                if ((r = tree_row(&t, "├─", label, infra)) < 0)
                        return r;
        }
        const char *cname = obj_get_str(cluster, "spec.controlPlaneRef.name");
        if (cname && registry_get(m->reg, &kind_kubeadmcontrolplane, ns, cname, &kcp) >= 0) {
                snprintf(label, sizeof(label), "ControlPlane - KubeadmControlPlane/%s", cname);
                if ((r = tree_row(&t, "├─", label, kcp)) < 0)
                        return r;
                rollout_row(&t, "│ ", kcp, "MachinesSpecUpToDate");
                _cleanup_(obj_freep) Obj *cpm = NULL;
                if (list_machines(m, ns, LABEL_CONTROL_PLANE_NAME, cname, &cpm) >= 0 &&
                    (r = machine_rows(m, &t, "│ ", cpm)) < 0)
                        return r;
        }
        _cleanup_(obj_freep) Obj *sel = obj_new_map();
        if (sel && obj_set(sel, "matchLabels", obj_new_map()) >= 0 &&
            obj_map_set_str(obj_get(sel, "matchLabels"), LABEL_CLUSTER_NAME, name) >= 0)
                (void)registry_list_all(m->reg, &kind_machinedeployment, ns, sel, &mds);
        const char *workers[] = {"└─Workers", "", "", "", "", ""};
        if ((r = text_table_add(&t, workers)) < 0)
                return r;
        size_t n = obj_len(mds);
        OBJ_LIST_FOREACH(md, mds, i) {
                bool last = i + 1 == n;
                snprintf(label, sizeof(label), "MachineDeployment/%s%s", meta_name(md),
                         meta_annotation(md, ANNOTATION_PAUSED) ||
                                         obj_get_bool(md, "spec.paused", false)
                                 ? " (paused)"
                                 : "");
                if ((r = tree_row(&t, last ? "  └─" : "  ├─", label, md)) < 0)
                        return r;
                rollout_row(&t, last ? "    " : "  │ ", md, "MachinesUpToDate");
                _cleanup_(obj_freep) Obj *wm = NULL;
                if (list_machines(m, ns, LABEL_DEPLOYMENT_NAME, meta_name(md), &wm) >= 0 &&
                    (r = machine_rows(m, &t, last ? "    " : "  │ ", wm)) < 0)
                        return r;
        }

        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        text_table_print(f, &t, "");
        int64_t port = 0;
        obj_get_int(cluster, "spec.controlPlaneEndpoint.port", &port);
        fprintf(f, "\nPhase: %s   Control plane endpoint: %s:%lld\n",
                strna(obj_get_str(cluster, "status.phase")),
                strna(obj_get_str(cluster, "spec.controlPlaneEndpoint.host")), (long long)port);
        fclose(f);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

/* ---- describe KIND NAME ---- */

typedef struct EventCtx {
        const char *uid;
        TextTable *t;
} EventCtx;

static int event_cb(Obj *ev, void *userdata) {
        EventCtx *c = userdata;
        if (!streq_ptr(obj_get_str(ev, "involvedObject.uid"), c->uid))
                return 0;
        char ago[32], count[24];
        int64_t n = 1;
        obj_get_int(ev, "count", &n);
        snprintf(count, sizeof(count), "%lld", (long long)n);
        const char *cols[] = {strna(obj_get_str(ev, "type")), strna(obj_get_str(ev, "reason")),
                              since(obj_get_str(ev, "lastTimestamp"), ago), count,
                              strna(obj_get_str(ev, "message"))};
        return text_table_add(c->t, cols);
}

/* "key=value" lines under a "Title:" column, or <none>. */
static void print_map(FILE *f, const char *title, const Obj *map, const char *skip) {
        bool any = false;
        OBJ_MAP_FOREACH(e, map) {
                if (skip && streq(e->key, skip))
                        continue;
                fprintf(f, "%-14s%s=%s\n", any ? "" : title, e->key, strempty(obj_str(e->value)));
                any = true;
        }
        if (!any)
                fprintf(f, "%-14s<none>\n", title);
}

/* The host of a Machine or AnvilMachine (through the AnvilMachine's hostRef), if any. */
static Obj *host_of(Manager *m, const KindInfo *k, const char *ns, const Obj *o) {
        _cleanup_(obj_freep) Obj *am = NULL;
        const Obj *src = o;
        if (streq(k->kind, "Machine")) {
                if (registry_get(m->reg, &kind_anvilmachine, ns,
                                 strempty(obj_get_str(o, "spec.infrastructureRef.name")), &am) < 0)
                        return NULL;
                src = am;
        }
        Obj *host = NULL;
        const char *hn = obj_get_str(src, "status.hostRef.name");
        if (hn && registry_get(m->reg, &kind_host, NULL, hn, &host) < 0)
                return NULL;
        return host;
}

/* A failed step on the host, as an operator needs it first: which step, its exit code and
 * message, the last lines it printed, and where the rest is. */
static void print_step_failure(FILE *f, const Obj *host, const char *machine) {
        const Obj *err = obj_get(host, "status.lastError");
        if (!err)
                return;
        int64_t code = -1;
        obj_get_int(err, "exitCode", &code);
        bool failed = streq_ptr(obj_get_str(host, "status.agentState"), "Failed");
        fprintf(f, "%s step %s on host %s exited %lld: %s\n",
                failed ? "Failed:      " : "Last error:  ", strna(obj_get_str(err, "step")),
                meta_name(host), (long long)code, strna(obj_get_str(err, "message")));
        const char *out = obj_get_str(err, "output");
        if (out) {
                fprintf(f, "  Last output lines:\n");
                _cleanup_free_ char *copy = strdup(out);
                char *save = NULL;
                for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
                     l = strtok_r(NULL, "\n", &save))
                        fprintf(f, "    | %s\n", l);
        }
        fprintf(f,
                "  The whole output, on the host: journalctl -u anvil-agent ANVIL_MACHINE=%s%s%s\n",
                strna(machine), obj_get_str(err, "step") ? " ANVIL_STEP=" : "",
                strempty(obj_get_str(err, "step")));
}

int describe_object(Manager *m, const KindInfo *k, const char *ns, const char *name, char **ret) {
        _cleanup_(obj_freep) Obj *o = NULL;
        int r = registry_get(m->reg, k, k->namespaced ? ns : "", name, &o);
        if (r < 0)
                return r;
        api_prepare_output(m, k, o);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        char apiv[128];
        fprintf(f, "%-14s%s\n", "Name:", name);
        if (k->namespaced)
                fprintf(f, "%-14s%s\n", "Namespace:", ns);
        print_map(f, "Labels:", obj_get(o, "metadata.labels"), NULL);
        print_map(f, "Annotations:", obj_get(o, "metadata.annotations"), LAST_APPLIED_ANNOTATION);
        fprintf(f, "%-14s%s\n", "API Version:", kind_api_version(k, apiv, sizeof(apiv)));
        fprintf(f, "%-14s%s\n", "Kind:", k->kind);
        fprintf(f, "Metadata:\n");
        const Obj *meta = obj_map_get(o, "metadata");
        fprintf(f, "  %-22s%s\n",
                "Creation Timestamp:", strna(obj_get_str(meta, "creationTimestamp")));
        if (obj_get_str(meta, "deletionTimestamp"))
                fprintf(f, "  %-22s%s\n",
                        "Deletion Timestamp:", obj_get_str(meta, "deletionTimestamp"));
        int64_t gen = 0;
        if (obj_get_int(meta, "generation", &gen))
                fprintf(f, "  %-22s%lld\n", "Generation:", (long long)gen);
        fprintf(f, "  %-22s%s\n", "Resource Version:", strna(obj_get_str(meta, "resourceVersion")));
        fprintf(f, "  %-22s%s\n", "UID:", strna(obj_get_str(meta, "uid")));
        OBJ_LIST_FOREACH(fin, obj_map_get(meta, "finalizers"), i)
        fprintf(f, "  %-22s%s\n", i == 0 ? "Finalizers:" : "", strempty(obj_str(fin)));
        OBJ_LIST_FOREACH(ref, obj_map_get(meta, "ownerReferences"), i)
        fprintf(f, "  %-22s%s/%s%s\n", i == 0 ? "Owner References:" : "",
                strna(obj_get_str(ref, "kind")), strna(obj_get_str(ref, "name")),
                obj_get_bool(ref, "controller", false) ? " (controller)" : "");

        /* Owner chain up to the root, through controller references. */
        const Obj *ref = meta_controller_ref(o);
        _cleanup_(obj_freep) Obj *cur = NULL;
        int depth = 0;
        while (ref && depth++ < 8) {
                const KindInfo *ok = kind_lookup(strempty(obj_get_str(ref, "kind")));
                fprintf(f, "%-15s%s/%s\n", depth == 1 ? "Controlled By:" : "",
                        strna(obj_get_str(ref, "kind")), strna(obj_get_str(ref, "name")));
                if (!ok)
                        break;
                _cleanup_(obj_freep) Obj *next = NULL;
                if (registry_get(m->reg, ok, ok->namespaced ? ns : "",
                                 strempty(obj_get_str(ref, "name")), &next) < 0)
                        break;
                obj_free(cur);
                cur = TAKE_PTR(next);
                ref = meta_controller_ref(cur);
        }
        if (streq(k->kind, "Machine")) /* failed machines (no providerID yet) need it most */
                fprintf(f, "%-14sjournalctl -u anvil-agent ANVIL_MACHINE=%s\n",
                        "On its host:", name);

        const Obj *conds = obj_get(o, "status.conditions");
        if (obj_len(conds)) {
                _cleanup_(text_table_done) TextTable ct = {.ncols = 6};
                const char *hdr[] = {"Type", "Status", "Severity", "Reason", "Since", "Message"};
                if ((r = text_table_add(&ct, hdr)) < 0) {
                        fclose(f);
                        free(text);
                        return r;
                }
                OBJ_LIST_FOREACH(c, conds, i) {
                        char ago[32];
                        const char *cols[] = {strna(obj_get_str(c, "type")),
                                              strna(obj_get_str(c, "status")),
                                              strempty(obj_get_str(c, "severity")),
                                              strempty(obj_get_str(c, "reason")),
                                              since(obj_get_str(c, "lastTransitionTime"), ago),
                                              strempty(obj_get_str(c, "message"))};
                        if ((r = text_table_add(&ct, cols)) < 0)
                                break;
                }
                fprintf(f, "Conditions:\n");
                text_table_print(f, &ct, "  ");
        }
        Obj *st = obj_map_get(o, "status");
        obj_map_del(st, "conditions");
        if (streq(k->kind, "Host"))
                print_step_failure(f, o, obj_get_str(o, "spec.consumerRef.name"));
        else if (streq(k->kind, "Machine") || streq(k->kind, "AnvilMachine")) {
                _cleanup_(obj_freep) Obj *host = host_of(m, k, ns, o);
                if (host && streq_ptr(obj_get_str(host, "spec.consumerRef.name"), name))
                        print_step_failure(f, host, name);
                /* Its conditions may still say Ready: the node runs, but nobody manages it. */
                if (host && streq_ptr(obj_get_str(host, "status.phase"), "Revoked"))
                        fprintf(f,
                                "%-14shost %s is Revoked: its agent is cut off and nothing is "
                                "delivered to it any more; delete this machine to replace it\n",
                                "Warning:", meta_name(host));
        }
        _cleanup_(obj_freep) Obj *body = obj_new_map();
        if (body) {
                if (obj_map_get(o, "spec"))
                        obj_map_set(body, "Spec", obj_map_take(o, "spec"));
                if (obj_len(st))
                        obj_map_set(body, "Status", obj_map_take(o, "status"));
                for (const SchemaField *fl = k->extra; fl && fl->name; fl++)
                        if (obj_map_get(o, fl->name))
                                obj_map_set(body, fl->name, obj_map_take(o, fl->name));
                _cleanup_free_ char *yaml = NULL;
                if (obj_len(body) && yaml_emit(body, &yaml) >= 0)
                        fprintf(f, "%s", yaml);
        }
        _cleanup_(text_table_done) TextTable et = {.ncols = 5};
        const char *ehdr[] = {"Type", "Reason", "Age", "Count", "Message"};
        EventCtx ec = {.uid = meta_uid(o), .t = &et};
        if (text_table_add(&et, ehdr) >= 0)
                (void)registry_list(m->reg, &kind_event, k->namespaced ? ns : "default", event_cb,
                                    &ec);
        if (et.rows <= 1)
                fprintf(f, "%-14s<none>\n", "Events:");
        else {
                fprintf(f, "Events:\n");
                text_table_print(f, &et, "  ");
        }
        fclose(f);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}
