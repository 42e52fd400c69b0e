/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `anvilctl describe`: for one object, its spec and status as YAML, its conditions, owner
 * chain and recent events; for a cluster, a tree of every object with its ready state and
 * the reason when it is not ready (the shape of `clusterctl describe cluster`), plus, for a
 * machine whose host failed a step, the step, exit code and last output lines, and the
 * journalctl command that shows the rest on the host.
 */
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

/* Pads to a display width: tree glyphs are several bytes but one column wide. */
static void put_padded(FILE *f, const char *s, int width) {
        int cols = 0;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        cols++;
        fputs(s, f);
        for (; cols < width; cols++)
                fputc(' ', f);
}

static void row(FILE *f, const char *prefix, const char *label, const Obj *o) {
        const Obj *ready = condition_get(o, "Ready");
        char label_buf[160], ago[32];
        snprintf(label_buf, sizeof(label_buf), "%s%s", prefix, label);
        const char *status = ready ? strempty(obj_get_str(ready, "status")) : "";
        const char *severity = strempty(obj_get_str(ready, "severity"));
        const char *reason = strempty(obj_get_str(ready, "reason"));
        const char *msg = strempty(obj_get_str(ready, "message"));
        if (streq(status, "True"))
                severity = reason = msg = "";
        put_padded(f, label_buf, 58);
        fprintf(f, " %-6s %-8s %-30s %-5s %s\n", status, severity, reason,
                since(obj_get_str(ready, "lastTransitionTime"), ago), msg);
}

static void machine_rows(Manager *m, FILE *f, const char *prefix, const Obj *machines) {
        size_t n = obj_len(machines);
        OBJ_LIST_FOREACH(mc, machines, i) {
                bool last = i + 1 == n;
                char p[128], label[200];
                snprintf(p, sizeof(p), "%s%s", prefix, last ? "└─" : "├─");
                snprintf(label, sizeof(label), "Machine/%s", meta_name(mc));
                row(f, p, label, mc);
                char cont[128];
                snprintf(cont, sizeof(cont), "%s%s", prefix, last ? "    " : "│   ");
                /* The host and, when a step failed, what failed. */
                _cleanup_(obj_freep) Obj *am = NULL, *host = NULL;
                if (registry_get(m->reg, &kind_anvilmachine, meta_namespace(mc), meta_name(mc),
                                 &am) >= 0) {
                        const char *hn = obj_get_str(am, "status.hostRef.name");
                        if (hn)
                                (void)registry_get(m->reg, &kind_host, NULL, hn, &host);
                }
                fprintf(f, "%s  phase: %s", cont, strna(obj_get_str(mc, "status.phase")));
                if (host)
                        fprintf(f, "  host: %s (%s)", meta_name(host),
                                strna(obj_get_str(host, "status.phase")));
                if (obj_get_str(mc, "spec.providerID"))
                        fprintf(f, "  providerID: %s", obj_get_str(mc, "spec.providerID"));
                if (obj_get_str(mc, "status.nodeRef.name"))
                        fprintf(f, "  node: %s", obj_get_str(mc, "status.nodeRef.name"));
                fprintf(f, "\n");
                const Obj *up = condition_get(mc, "InPlaceUpgraded");
                if (up && !condition_is_true(mc, "InPlaceUpgraded"))
                        fprintf(f, "%s  in-place upgrade to %s: %s: %s\n", cont,
                                strna(obj_get_str(mc, "status.inPlaceUpgrade.version")),
                                strna(obj_get_str(up, "reason")),
                                strna(obj_get_str(up, "message")));
                const Obj *err = obj_get(host, "status.lastError");
                if (err && streq_ptr(obj_get_str(host, "status.agentState"), "Failed")) {
                        int64_t code = -1;
                        obj_get_int(err, "exitCode", &code);
                        fprintf(f, "%s  last error: step %s exited %lld: %s\n", cont,
                                strna(obj_get_str(err, "step")), (long long)code,
                                strna(obj_get_str(err, "message")));
                        const char *out = obj_get_str(err, "output");
                        if (out) {
                                _cleanup_free_ char *copy = strdup(out);
                                char *save = NULL;
                                for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
                                     l = strtok_r(NULL, "\n", &save))
                                        fprintf(f, "%s    | %s\n", cont, l);
                        }
                        fprintf(f, "%s  on the host: journalctl -u anvil-agent ANVIL_MACHINE=%s\n",
                                cont, meta_name(mc));
                }
        }
}

/* Where an owner's rollout is, when it is not done. */
static void rollout_row(FILE *f, const char *prefix, const Obj *o, const char *type) {
        const Obj *c = condition_get(o, type);
        if (c && !condition_is_true(o, type))
                fprintf(f, "%s  rollout: %s: %s\n", prefix, strna(obj_get_str(c, "reason")),
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
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "%-58s %-6s %-8s %-30s %-5s %s\n", "NAME", "READY", "SEVERITY", "REASON",
                "SINCE", "MESSAGE");
        char label[200];
        snprintf(label, sizeof(label), "Cluster/%s", name);
        row(f, "", label, cluster);

        _cleanup_(obj_freep) Obj *infra = NULL, *kcp = NULL, *mds = NULL;
        const char *iname = obj_get_str(cluster, "spec.infrastructureRef.name");
        if (iname && registry_get(m->reg, &kind_anvilcluster, ns, iname, &infra) >= 0) {
                snprintf(label, sizeof(label), "ClusterInfrastructure - AnvilCluster/%s", iname);
                row(f, "├─", label, infra);
        }
        const char *cname = obj_get_str(cluster, "spec.controlPlaneRef.name");
        if (cname && registry_get(m->reg, &kind_kubeadmcontrolplane, ns, cname, &kcp) >= 0) {
                snprintf(label, sizeof(label), "ControlPlane - KubeadmControlPlane/%s", cname);
                row(f, "├─", label, kcp);
                rollout_row(f, "│ ", kcp, "MachinesSpecUpToDate");
                _cleanup_(obj_freep) Obj *cpm = NULL;
                if (list_machines(m, ns, LABEL_CONTROL_PLANE_NAME, cname, &cpm) >= 0)
                        machine_rows(m, f, "│ ", cpm);
        }
        _cleanup_(obj_freep) Obj *sel = obj_new_map();
        if (sel && obj_set(sel, "matchLabels", obj_new_map()) >= 0 &&
            obj_map_set_str(obj_get(sel, "matchLabels"), LABEL_CLUSTER_NAME, name) >= 0)
                (void)registry_list_all(m->reg, &kind_machinedeployment, ns, sel, &mds);
        fprintf(f, "└─Workers\n");
        size_t n = obj_len(mds);
        OBJ_LIST_FOREACH(md, mds, i) {
                bool last = i + 1 == n;
                snprintf(label, sizeof(label), "MachineDeployment/%s", meta_name(md));
                row(f, last ? "  └─" : "  ├─", label, md);
                rollout_row(f, last ? "    " : "  │ ", md, "MachinesUpToDate");
                _cleanup_(obj_freep) Obj *wm = NULL;
                if (list_machines(m, ns, LABEL_DEPLOYMENT_NAME, meta_name(md), &wm) >= 0)
                        machine_rows(m, f, last ? "    " : "  │ ", wm);
        }
        const char *phase = obj_get_str(cluster, "status.phase");
        fprintf(f, "\nPhase: %s   Control plane endpoint: %s:%lld\n", strna(phase),
                strna(obj_get_str(cluster, "spec.controlPlaneEndpoint.host")),
                (long long)(obj_get(cluster, "spec.controlPlaneEndpoint.port")
                                    ? obj_get(cluster, "spec.controlPlaneEndpoint.port")->i
                                    : 0));
        fclose(f);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

typedef struct EventCtx {
        const char *uid;
        FILE *f;
        size_t n;
} EventCtx;

static int event_cb(Obj *ev, void *userdata) {
        EventCtx *c = userdata;
        if (!streq_ptr(obj_get_str(ev, "involvedObject.uid"), c->uid))
                return 0;
        char ago[32];
        if (c->n++ == 0)
                fprintf(c->f, "Events:\n  %-8s %-20s %-6s %-6s %s\n", "Type", "Reason", "Age",
                        "Count", "Message");
        fprintf(c->f, "  %-8s %-20s %-6s %-6lld %s\n", strna(obj_get_str(ev, "type")),
                strna(obj_get_str(ev, "reason")), since(obj_get_str(ev, "lastTimestamp"), ago),
                (long long)(obj_get(ev, "count") ? obj_get(ev, "count")->i : 1),
                strna(obj_get_str(ev, "message")));
        return 0;
}

int describe_object(Manager *m, const KindInfo *k, const char *ns, const char *name,
                    char **ret) {
        _cleanup_(obj_freep) Obj *o = NULL;
        int r = registry_get(m->reg, k, k->namespaced ? ns : "", name, &o);
        if (r < 0)
                return r;
        schema_redact(k->extra, o);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "Name:         %s\n", name);
        if (k->namespaced)
                fprintf(f, "Namespace:    %s\n", ns);
        fprintf(f, "Kind:         %s\n", k->kind);
        char apiv[128];
        fprintf(f, "API Version:  %s\n", kind_api_version(k, apiv, sizeof(apiv)));
        OBJ_MAP_FOREACH(e, obj_get(o, "metadata.labels"))
        fprintf(f, "%s%s=%s\n", e == obj_get(o, "metadata.labels")->map.entries ? "Labels:       "
                                                                                 : "              ",
                e->key, strempty(obj_str(e->value)));
        /* Owner chain up to the root. */
        const Obj *ref = meta_controller_ref(o);
        _cleanup_(obj_freep) Obj *cur = NULL;
        int depth = 0;
        while (ref && depth++ < 8) {
                const KindInfo *ok = kind_lookup(strempty(obj_get_str(ref, "kind")));
                fprintf(f, "%s%s/%s\n", depth == 1 ? "Controlled By: " : "               ",
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
        if (streq(k->kind, "Machine") && obj_get_str(o, "spec.providerID"))
                fprintf(f, "On its host:  journalctl -u anvil-agent ANVIL_MACHINE=%s\n", name);

        const Obj *conds = obj_get(o, "status.conditions");
        if (obj_len(conds)) {
                char ago[32];
                fprintf(f, "Conditions:\n  %-26s %-7s %-8s %-30s %-6s %s\n", "Type", "Status",
                        "Severity", "Reason", "Since", "Message");
                OBJ_LIST_FOREACH(c, conds, i)
                fprintf(f, "  %-26s %-7s %-8s %-30s %-6s %s\n", strna(obj_get_str(c, "type")),
                        strna(obj_get_str(c, "status")), strempty(obj_get_str(c, "severity")),
                        strempty(obj_get_str(c, "reason")),
                        since(obj_get_str(c, "lastTransitionTime"), ago),
                        strempty(obj_get_str(c, "message")));
        }
        Obj *st = obj_map_get(o, "status");
        obj_map_del(st, "conditions");
        if (streq(k->kind, "Host") && obj_get(o, "status.lastError")) {
                const Obj *err = obj_get(o, "status.lastError");
                fprintf(f, "Last error:   step %s exit %lld: %s\n", strna(obj_get_str(err, "step")),
                        (long long)(obj_get(err, "exitCode") ? obj_get(err, "exitCode")->i : -1),
                        strna(obj_get_str(err, "message")));
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
        EventCtx ec = {.uid = meta_uid(o), .f = f};
        (void)registry_list(m->reg, &kind_event, k->namespaced ? ns : "default", event_cb, &ec);
        if (ec.n == 0)
                fprintf(f, "Events:       <none>\n");
        fclose(f);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}
