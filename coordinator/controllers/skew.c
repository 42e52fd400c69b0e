/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Version skew rules, checked when an update is applied (so a refused change changes
 * nothing and the operator sees why, with the file and line):
 *
 *  - a KubeadmControlPlane moves one minor version at a time (as kubeadm upgrade does, and
 *    as Cluster API's webhook demands); so does an in-place MachineDeployment;
 *  - a kubelet is never newer than its API server: a MachineDeployment's version may not go
 *    above its cluster's KubeadmControlPlane spec.version, and the control plane may not go
 *    below a MachineDeployment's;
 *  - a kubelet at most three minor versions older than the API server: the control plane may
 *    not leave a MachineDeployment further behind.
 *
 * The first rule compares an object with itself (skew_check_update, while a document is
 * applied); the others compare objects with each other and are judged on the state after the
 * whole apply (skew_check_applied, once every document of the file is written in the open
 * store group), so a file may list the MachineDeployment before the KubeadmControlPlane it
 * follows. What the running machines do with a valid version (a MachineDeployment waits until
 * the control plane runs it) is the controllers' business. Expected load: one call of each per
 * applied document of these two kinds.
 */
#include <stdarg.h>

#include "controllers.h"
#include "resource.h"

extern const KindInfo kind_kubeadmcontrolplane, kind_machinedeployment;

static int add(Problems *p, const Obj *at, const char *path, const char *fmt, ...) _printf_(4, 5);
static int add(Problems *p, const Obj *at, const char *path, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return problems_add(p, at ? at->mark : (ObjMark){0}, path, "%s", msg);
}

/* One minor at a time, in either direction. */
static int check_step(const char *from, const char *to, const Obj *at, const char *path,
                      const char *what, Problems *p) {
        K8sVersion a, b;
        if (!from || !to || parse_k8s_version(from, &a) < 0 || parse_k8s_version(to, &b) < 0)
                return 0;
        if (a.major != b.major)
                return add(p, at, path,
                           "cannot change %s from %s to %s: a major version change "
                           "is not supported",
                           what, from, to);
        if (b.minor > a.minor + 1)
                return add(p, at, path,
                           "cannot upgrade %s from %s to %s: Kubernetes upgrades go one minor "
                           "version at a time (v%u.%u first)",
                           what, from, to, a.major, a.minor + 1);
        if (a.minor > b.minor + 1)
                return add(p, at, path,
                           "cannot downgrade %s from %s to %s: at most one minor version at a "
                           "time",
                           what, from, to);
        return 0;
}

typedef struct MdCtx {
        const char *cluster;
        const char *cp_version;
        const Obj *at;
        Problems *p;
        int r;
} MdCtx;

static int md_cb(Obj *md, void *userdata) {
        MdCtx *c = userdata;
        if (!streq_ptr(obj_get_str(md, "spec.clusterName"), c->cluster) || meta_deleting(md))
                return 0;
        const char *v = obj_get_str(md, "spec.template.spec.version");
        K8sVersion w, cp;
        if (!v || parse_k8s_version(v, &w) < 0 || parse_k8s_version(c->cp_version, &cp) < 0)
                return 0;
        int cmp;
        if (k8s_version_cmp(v, c->cp_version, &cmp) >= 0 && cmp > 0)
                c->r = add(c->p, c->at, "spec.version",
                           "cannot set the control plane to %s: MachineDeployment %s runs %s, and "
                           "a kubelet is never newer than its API server",
                           c->cp_version, meta_name(md), v);
        else if (cp.major == w.major && cp.minor > w.minor + 3)
                c->r = add(c->p, c->at, "spec.version",
                           "cannot set the control plane to %s: MachineDeployment %s runs %s, and "
                           "a kubelet may be at most 3 minor versions older than its API server; "
                           "upgrade the workers first",
                           c->cp_version, meta_name(md), v);
        return c->r < 0 ? c->r : 0;
}

typedef struct KcpCtx {
        const char *cluster;
        char *version;
} KcpCtx;

static int kcp_cb(Obj *kcp, void *userdata) {
        KcpCtx *c = userdata;
        if (c->version || meta_deleting(kcp) ||
            !streq_ptr(meta_label(kcp, LABEL_CLUSTER_NAME), c->cluster))
                return 0;
        const char *v = obj_get_str(kcp, "spec.version");
        if (v && !(c->version = strdup(v)))
                return -ENOMEM;
        return 0;
}

/* The version path of a kind, and whether it moves one minor version at a time. */
static const char *version_path(const KindInfo *k, const Obj *o, bool *ret_stepwise) {
        if (k == &kind_kubeadmcontrolplane) {
                *ret_stepwise = true;
                return "spec.version";
        }
        if (k == &kind_machinedeployment) {
                *ret_stepwise =
                        streq_ptr(meta_annotation(o, ANNOTATION_UPGRADE_STRATEGY), "InPlace");
                return "spec.template.spec.version";
        }
        return NULL;
}

int skew_check_update(Manager *m, const KindInfo *k, const Obj *live, const Obj *merged,
                      Problems *p) {
        (void)m;
        bool stepwise = false;
        const char *path = version_path(k, merged, &stepwise);
        const char *from = path ? obj_get_str(live, path) : NULL;
        const char *to = path ? obj_get_str(merged, path) : NULL;
        if (!stepwise || !to || streq_ptr(from, to))
                return 0;
        return check_step(
                from, to, obj_get(merged, path), path,
                k == &kind_kubeadmcontrolplane ? "the control plane" : "the machines in place", p);
}

int skew_check_applied(Manager *m, const KindInfo *k, const Obj *before, const Obj *after,
                       Problems *p) {
        bool stepwise;
        const char *path = version_path(k, after, &stepwise);
        const char *from = path ? obj_get_str(before, path) : NULL;
        const char *to = path ? obj_get_str(after, path) : NULL;
        if (!to || streq_ptr(from, to))
                return 0;
        const Obj *at = obj_get(after, path);
        int r;
        if (k == &kind_kubeadmcontrolplane) {
                const char *cluster = meta_label(after, LABEL_CLUSTER_NAME);
                if (!cluster)
                        return 0;
                MdCtx c = {.cluster = cluster, .cp_version = to, .at = at, .p = p};
                r = registry_list(m->reg, &kind_machinedeployment, meta_namespace(after), md_cb,
                                  &c);
                return r < 0 ? r : c.r;
        }
        KcpCtx c = {.cluster = obj_get_str(after, "spec.clusterName")};
        r = registry_list(m->reg, &kind_kubeadmcontrolplane, meta_namespace(after), kcp_cb, &c);
        _cleanup_free_ char *cpv = c.version;
        if (r < 0)
                return r;
        int cmp;
        if (cpv && k8s_version_cmp(to, cpv, &cmp) >= 0 && cmp > 0)
                return add(p, at, path,
                           "cannot upgrade the machines to %s: the control plane is at %s, and a "
                           "kubelet is never newer than its API server; upgrade the "
                           "KubeadmControlPlane first (or in the same apply)",
                           to, cpv);
        return 0;
}
