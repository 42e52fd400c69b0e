/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AnvilCluster: the bare-metal "infrastructure" of a cluster. There is nothing to create (no
 * load balancer, no network): it is ready once it knows the control plane endpoint, which
 * the operator provides (a VIP or an external load balancer in front of the API servers).
 */
#include "controllers.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_anvilcluster, kind_cluster;

/* The Cluster whose infrastructureRef names ac (a paused Cluster has not adopted it yet, so
 * neither an owner reference nor the cluster-name label can be relied on). NULL if none. */
static int referring_cluster(Manager *m, const Obj *ac, Obj **ret) {
        _cleanup_(obj_freep) Obj *all = NULL;
        *ret = NULL;
        int r = registry_list_all(m->reg, &kind_cluster, meta_namespace(ac), NULL, &all);
        if (r < 0)
                return r;
        OBJ_LIST_FOREACH(c, all, i) {
                const Obj *ref = obj_get(c, "spec.infrastructureRef");
                if (streq_ptr(obj_get_str(ref, "kind"), "AnvilCluster") &&
                    streq_ptr(obj_get_str(ref, "name"), meta_name(ac))) {
                        *ret = obj_dup(c);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return 0;
}

int reconcile_anvilcluster(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *ac = NULL;
        int r = registry_get(m->reg, &kind_anvilcluster, ns, name, &ac);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *orig = obj_dup(ac);
        if (!orig)
                return -ENOMEM;
        if (meta_deleting(ac)) {
                meta_remove_finalizer(ac, FINALIZER_ANVILCLUSTER);
                r = patch_save(m->reg, orig, ac);
                return r < 0 ? r : 0;
        }
        /* Paused (the Cluster's spec.paused or a paused annotation): left as it is, as
         * Cluster API's infrastructure providers do; a deletion still completes. */
        _cleanup_(obj_freep) Obj *cluster = NULL;
        if ((r = referring_cluster(m, ac, &cluster)) < 0)
                return r;
        if (cluster_paused(cluster, ac))
                return 0;
        bool ready = obj_get_str(ac, "spec.controlPlaneEndpoint.host") != NULL;
        if ((r = obj_set_bool(ac, "status.ready", ready)) < 0)
                return r;
        if (ready)
                condition_set_true(ac, "Ready");
        else
                condition_set(ac, "Ready", COND_FALSE, "WaitingForControlPlaneEndpoint",
                              SEVERITY_WARNING, "%s",
                              "set spec.controlPlaneEndpoint (a VIP or load balancer for the API "
                              "servers)");
        r = patch_save(m->reg, orig, ac);
        return r < 0 ? r : 0;
}
