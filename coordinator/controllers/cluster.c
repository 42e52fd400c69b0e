/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster: ties the infrastructure (AnvilCluster) and the control plane
 * (KubeadmControlPlane) together, as Cluster API's cluster controller does. Phases:
 * Pending -> Provisioning -> Provisioned; Deleting on the way out, where it tears down in
 * order: worker MachineDeployments first, then the control plane, then the infrastructure.
 */
#include "controllers.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_cluster, kind_anvilcluster, kind_kubeadmcontrolplane,
        kind_machinedeployment, kind_machineset, kind_machine;

static int get_ref(Manager *m, const Obj *cluster, const char *path, Obj **ret) {
        const Obj *ref = obj_get(cluster, path);
        const char *kind = obj_get_str(ref, "kind"), *name = obj_get_str(ref, "name");
        if (!kind || !name)
                return -ENOENT;
        const KindInfo *k = kind_lookup(kind);
        if (!k)
                return -EINVAL;
        const char *ns = obj_get_str(ref, "namespace");
        return registry_get(m->reg, k, ns ? ns : meta_namespace(cluster), name, ret);
}

/* Makes the cluster the owner of a referenced object, as Cluster API does. */
static int adopt(Manager *m, const Obj *cluster, Obj *child) {
        _cleanup_(obj_freep) Obj *orig = obj_dup(child);
        if (!orig)
                return -ENOMEM;
        int r = meta_add_owner_ref(child, cluster, false);
        if (r < 0)
                return r;
        if (!meta_label(child, LABEL_CLUSTER_NAME) &&
            (r = meta_set_label(child, LABEL_CLUSTER_NAME, meta_name(cluster))) < 0)
                return r;
        return patch_save(m->reg, orig, child);
}

typedef struct ChildScan {
        Manager *m;
        const char *cluster;
        int control_plane; /* -1 any, 0 workers only, 1 control plane only */
        bool delete_them;
        size_t n;
} ChildScan;

static int scan_child(Obj *o, void *userdata) {
        ChildScan *c = userdata;
        if (!streq_ptr(obj_get_str(o, "spec.clusterName"), c->cluster) &&
            !streq_ptr(meta_label(o, LABEL_CLUSTER_NAME), c->cluster))
                return 0;
        bool cp = meta_label(o, LABEL_CONTROL_PLANE) != NULL;
        if ((c->control_plane == 0 && cp) || (c->control_plane == 1 && !cp))
                return 0;
        c->n++;
        if (c->delete_them && !meta_deleting(o)) {
                const KindInfo *k = kind_lookup(obj_get_str(o, "kind"));
                int r = registry_delete(c->m->reg, k, meta_namespace(o), meta_name(o), meta_uid(o));
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

static int scan(Manager *m, const KindInfo *k, const Obj *cluster, int control_plane, bool del,
                size_t *ret) {
        ChildScan c = {.m = m, .cluster = meta_name(cluster), .control_plane = control_plane,
                       .delete_them = del};
        int r = registry_list(m->reg, k, meta_namespace(cluster), scan_child, &c);
        if (r < 0)
                return r;
        *ret = c.n;
        return 0;
}

/* Ordered teardown: workers, then the control plane, then the infrastructure; the
 * finalizer goes when nothing is left, so `delete cluster --wait` ends when every host is
 * back in the pool. */
static int reconcile_delete(Manager *m, Obj *cluster, const Obj *orig) {
        size_t mds = 0, mss = 0, workers = 0, cps = 0;
        int r;
        if ((r = obj_set_str(cluster, "status.phase", "Deleting")) < 0)
                return r;
        if ((r = scan(m, &kind_machinedeployment, cluster, -1, true, &mds)) < 0 ||
            (r = scan(m, &kind_machineset, cluster, -1, true, &mss)) < 0 ||
            (r = scan(m, &kind_machine, cluster, 0, true, &workers)) < 0)
                return r;
        const char *waiting = NULL;
        if (mds + mss + workers > 0)
                waiting = "worker machines";
        _cleanup_(obj_freep) Obj *kcp = NULL;
        bool kcp_exists = get_ref(m, cluster, "spec.controlPlaneRef", &kcp) >= 0;
        if (!waiting) {
                if (kcp_exists && !meta_deleting(kcp)) {
                        r = registry_delete(m->reg, &kind_kubeadmcontrolplane, meta_namespace(kcp),
                                            meta_name(kcp), meta_uid(kcp));
                        if (r < 0 && r != -ENOENT)
                                return r;
                }
                if ((r = scan(m, &kind_machine, cluster, 1, !kcp_exists, &cps)) < 0)
                        return r;
                if (kcp_exists || cps > 0)
                        waiting = "control plane machines";
        }
        _cleanup_(obj_freep) Obj *infra = NULL;
        bool infra_exists = get_ref(m, cluster, "spec.infrastructureRef", &infra) >= 0;
        if (!waiting && infra_exists) {
                if (!meta_deleting(infra)) {
                        r = registry_delete(m->reg, &kind_anvilcluster, meta_namespace(infra),
                                            meta_name(infra), meta_uid(infra));
                        if (r < 0 && r != -ENOENT)
                                return r;
                }
                waiting = "infrastructure";
        }
        if (!waiting) {
                meta_remove_finalizer(cluster, FINALIZER_CLUSTER);
                log_info("Cluster %s deleted: every machine released.", meta_name(cluster));
        } else
                condition_set(cluster, "Ready", COND_FALSE, "Deleting", SEVERITY_INFO,
                              "deleting: waiting for %s (%zu workers, %zu control plane)", waiting,
                              workers, cps);
        r = patch_save(m->reg, orig, cluster);
        return r < 0 ? r : (waiting ? (int)REQUEUE_SOON : 0);
}

int reconcile_cluster(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *cluster = NULL;
        int r = registry_get(m->reg, &kind_cluster, ns, name, &cluster);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        LOG_FIELD_SCOPE(LOG_FIELD_CLUSTER, name);
        _cleanup_(obj_freep) Obj *orig = obj_dup(cluster);
        if (!orig)
                return -ENOMEM;

        if (meta_deleting(cluster))
                return reconcile_delete(m, cluster, orig);
        if (cluster_paused(cluster, NULL))
                return 0;
        if ((r = meta_add_finalizer(cluster, FINALIZER_CLUSTER)) < 0)
                return r;

        /* Infrastructure. */
        bool infra_ready = false;
        _cleanup_(obj_freep) Obj *infra = NULL;
        r = get_ref(m, cluster, "spec.infrastructureRef", &infra);
        if (r >= 0) {
                if ((r = adopt(m, cluster, infra)) < 0)
                        return r;
                infra_ready = obj_get_bool(infra, "status.ready", false);
                /* The endpoint comes from the infrastructure when the Cluster has none. */
                const char *host = obj_get_str(infra, "spec.controlPlaneEndpoint.host");
                int64_t port = 0;
                obj_get_int(infra, "spec.controlPlaneEndpoint.port", &port);
                if (host && !obj_get_str(cluster, "spec.controlPlaneEndpoint.host")) {
                        if ((r = obj_set_str(cluster, "spec.controlPlaneEndpoint.host", host)) < 0 ||
                            (r = obj_set_int(cluster, "spec.controlPlaneEndpoint.port",
                                             port ? port : 6443)) < 0)
                                return r;
                }
                if (infra_ready)
                        condition_set_true(cluster, "InfrastructureReady");
                else
                        condition_set(cluster, "InfrastructureReady", COND_FALSE,
                                      strna(condition_reason(infra, "Ready")), SEVERITY_INFO,
                                      "%s",
                                      strna(condition_message(infra, "Ready")));
        } else if (r == -ENOENT && obj_get(cluster, "spec.infrastructureRef")) {
                condition_set(cluster, "InfrastructureReady", COND_FALSE, "WaitingForInfrastructure",
                              SEVERITY_INFO, "%s %s does not exist yet",
                              strna(obj_get_str(cluster, "spec.infrastructureRef.kind")),
                              strna(obj_get_str(cluster, "spec.infrastructureRef.name")));
        } else if (r == -ENOENT) {
                infra_ready = true; /* no infrastructure object: nothing to wait for */
        } else
                return r;
        if ((r = obj_set_bool(cluster, "status.infrastructureReady", infra_ready)) < 0)
                return r;

        /* Control plane. */
        bool cp_ready = false, cp_init = false;
        _cleanup_(obj_freep) Obj *kcp = NULL;
        r = get_ref(m, cluster, "spec.controlPlaneRef", &kcp);
        if (r >= 0) {
                if ((r = adopt(m, cluster, kcp)) < 0)
                        return r;
                cp_ready = obj_get_bool(kcp, "status.ready", false);
                cp_init = obj_get_bool(kcp, "status.initialized", false);
                if (cp_ready)
                        condition_set_true(cluster, "ControlPlaneReady");
                else
                        condition_set(cluster, "ControlPlaneReady", COND_FALSE,
                                      condition_reason(kcp, "Ready") ?: "WaitingForControlPlane",
                                      SEVERITY_INFO, "%s",
                                      condition_message(kcp, "Ready") ?: "control plane not ready");
        } else if (r == -ENOENT)
                condition_set(cluster, "ControlPlaneReady", COND_FALSE, "WaitingForControlPlane",
                              SEVERITY_INFO, "%s", "the control plane object does not exist yet");
        else
                return r;
        if (cp_init || condition_is_true(cluster, "ControlPlaneInitialized"))
                condition_set_true(cluster, "ControlPlaneInitialized");
        else
                condition_set(cluster, "ControlPlaneInitialized", COND_FALSE,
                              "WaitingForControlPlaneProviderInitialized", SEVERITY_INFO,
                              "waiting for the first control plane machine to run kubeadm init");
        if ((r = obj_set_bool(cluster, "status.controlPlaneReady", cp_ready)) < 0)
                return r;

        const char *phase = "Pending";
        if (obj_get(cluster, "spec.infrastructureRef") || obj_get(cluster, "spec.controlPlaneRef"))
                phase = "Provisioning";
        if (infra_ready && obj_get_str(cluster, "spec.controlPlaneEndpoint.host"))
                phase = "Provisioned";
        if ((r = obj_set_str(cluster, "status.phase", phase)) < 0)
                return r;
        if (infra_ready && cp_ready)
                condition_set_true(cluster, "Ready");
        else
                condition_set(cluster, "Ready", COND_FALSE,
                              !infra_ready ? "InfrastructureNotReady" : "ControlPlaneNotReady",
                              SEVERITY_INFO, "%s",
                              !infra_ready ? "infrastructure is not ready"
                                           : "control plane is not ready");
        if ((r = obj_set_int(cluster, "status.observedGeneration", meta_generation(cluster))) < 0)
                return r;

        bool was_ready = condition_is_true(orig, "Ready");
        r = patch_save(m->reg, orig, cluster);
        if (r > 0 && !was_ready && condition_is_true(cluster, "Ready"))
                manager_event(m, cluster, "Normal", "ClusterReady", "Cluster %s is ready", name);
        return r < 0 ? r : 0;
}
