/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KubeadmControlPlane: the control plane machines of one cluster, as Cluster API's kubeadm
 * control plane provider manages them. It makes the cluster certificates (CA, etcd CA,
 * front-proxy CA, service account keys) at first need, then creates machines one at a time:
 * the first runs kubeadm init, each next one joins as a control plane only once every
 * existing one is ready, so etcd never has two members joining at once. Scale down removes
 * the oldest machine, one at a time, never below one.
 */
#include "commands.h"
#include "controllers.h"
#include "kubeadm.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_kubeadmcontrolplane, kind_machine, kind_anvilmachinetemplate,
        kind_cluster;

typedef struct Machines {
        Obj *list;         /* OBJ_LIST of Machines owned by this control plane */
        size_t ready, updated, provisioning, deleting;
        const Obj *oldest;
} Machines;

static bool machine_ready(const Obj *machine) {
        return streq_ptr(obj_get_str(machine, "status.phase"), "Running") &&
               obj_get(machine, "status.nodeRef") != NULL;
}

static int collect_machines(Manager *m, const Obj *kcp, Machines *ret) {
        _cleanup_(obj_freep) Obj *sel = obj_new_map();
        if (!sel || obj_set(sel, "matchLabels", obj_new_map()) < 0 ||
            obj_map_set_str(obj_get(sel, "matchLabels"), LABEL_CONTROL_PLANE_NAME, meta_name(kcp)) < 0)
                return -ENOMEM;
        int r = registry_list_all(m->reg, &kind_machine, meta_namespace(kcp), sel, &ret->list);
        if (r < 0)
                return r;
        const char *version = obj_get_str(kcp, "spec.version");
        OBJ_LIST_FOREACH(mc, ret->list, i) {
                if (meta_deleting(mc)) {
                        ret->deleting++;
                        continue;
                }
                if (machine_ready(mc))
                        ret->ready++;
                else
                        ret->provisioning++;
                if (streq_ptr(obj_get_str(mc, "spec.version"), version))
                        ret->updated++;
                const char *ts = obj_get_str(mc, "metadata.creationTimestamp");
                if (!ret->oldest ||
                    strcmp(strempty(ts), strempty(obj_get_str(ret->oldest,
                                                                 "metadata.creationTimestamp"))) < 0)
                        ret->oldest = mc;
        }
        return 0;
}

static int get_infra_template(Manager *m, const Obj *kcp, Obj **ret) {
        const char *name = obj_get_str(kcp, "spec.machineTemplate.infrastructureRef.name");
        const char *ns = obj_get_str(kcp, "spec.machineTemplate.infrastructureRef.namespace");
        if (!name)
                return -ENOENT;
        return registry_get(m->reg, &kind_anvilmachinetemplate, ns ? ns : meta_namespace(kcp),
                            name, ret);
}

static int create_cp_machine(Manager *m, const Obj *kcp, const Obj *cluster, bool first) {
        _cleanup_(obj_freep) Obj *tmpl = NULL;
        int r = get_infra_template(m, kcp, &tmpl);
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *spec = obj_dup(obj_get(kcp, "spec.kubeadmConfigSpec"));
        if (!spec)
                return -ENOMEM;
        if (first) {
                obj_map_del(spec, "joinConfiguration");
                if (!obj_map_get(spec, "initConfiguration") &&
                    (r = obj_map_set(spec, "initConfiguration", obj_new_map())) < 0)
                        return r;
                if (!obj_map_get(spec, "clusterConfiguration") &&
                    (r = obj_map_set(spec, "clusterConfiguration", obj_new_map())) < 0)
                        return r;
        } else {
                obj_map_del(spec, "initConfiguration");
                obj_map_del(spec, "clusterConfiguration");
                Obj *join = obj_map_ensure_map(spec, "joinConfiguration");
                if (!join || !obj_map_ensure_map(join, "controlPlane"))
                        return -ENOMEM;
        }
        _cleanup_(obj_freep) Obj *mspec = obj_new_map();
        if (!mspec || obj_map_set_str(mspec, "version", obj_get_str(kcp, "spec.version")) < 0)
                return -ENOMEM;
        const char *timeouts[] = {"nodeDrainTimeout", "nodeVolumeDetachTimeout",
                                  "nodeDeletionTimeout"};
        for (size_t i = 0; i < ELEMENTSOF(timeouts); i++) {
                const Obj *v = obj_get(obj_get(kcp, "spec.machineTemplate"), timeouts[i]);
                if (v && (r = obj_map_set(mspec, timeouts[i], obj_dup(v))) < 0)
                        return r;
        }
        _cleanup_(obj_freep) Obj *labels =
                obj_dup(obj_get(kcp, "spec.machineTemplate.metadata.labels")) ?: obj_new_map();
        if (!labels || obj_map_set_str(labels, LABEL_CONTROL_PLANE, "") < 0 ||
            obj_map_set_str(labels, LABEL_CONTROL_PLANE_NAME, meta_name(kcp)) < 0)
                return -ENOMEM;
        _cleanup_free_ char *name = NULL;
        r = create_machine_trio(m, kcp, meta_name(cluster), mspec, labels,
                                obj_get(kcp, "spec.machineTemplate.metadata.annotations"), spec,
                                obj_get(tmpl, "spec.template.spec"), &name);
        if (r < 0)
                return r;
        log_info("Control plane %s: created machine %s (%s).", meta_name(kcp), name,
                 first ? "kubeadm init" : "kubeadm join --control-plane");
        return 0;
}

/*
 * Removes one control plane machine without losing etcd quorum: its etcd member is removed
 * first, by another control plane host (etcdctl member remove through kubectl exec), and
 * only then is the Machine deleted (drain, host reset, node deletion follow in the Machine
 * controller). One at a time: the caller only gets here when every other member is ready.
 */
static int scale_down(Manager *m, Obj *kcp, const Obj *victim) {
        const char *node = obj_get_str(victim, "status.nodeRef.name");
        _cleanup_free_ char *victim_host = machine_host_name(m, victim);
        if (node) {
                _cleanup_free_ char *cp = NULL;
                int r = pick_control_plane_host(m, meta_namespace(kcp),
                                                meta_label(kcp, LABEL_CLUSTER_NAME), victim_host,
                                                &cp);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r >= 0) {
                        _cleanup_free_ char *id = strjoin("etcd-remove-", meta_uid(victim));
                        _cleanup_free_ char *key = object_key(kcp);
                        _cleanup_(obj_freep) Obj *args = obj_new_map();
                        if (!id || !key || !args || obj_map_set_str(args, "node", node) < 0)
                                return -ENOMEM;
                        int code = 0;
                        const char *out = NULL;
                        CommandState cs = command_run(m->commands, id, cp, "etcd-remove-member",
                                                      args, key, 60 * USEC_PER_SEC, &code, &out);
                        if (cs == COMMAND_PENDING) {
                                condition_set(kcp, "Resized", COND_FALSE, "RemovingEtcdMember",
                                              SEVERITY_INFO,
                                              "removing the etcd member of %s (on %s) before "
                                              "deleting it",
                                              meta_name(victim), cp);
                                return 0;
                        }
                        if (cs == COMMAND_FAILED) {
                                command_forget(m->commands, id);
                                condition_set(kcp, "Resized", COND_FALSE, "EtcdMemberRemovalFailed",
                                              SEVERITY_WARNING,
                                              "removing the etcd member of %s failed (exit %d): "
                                              "%s",
                                              meta_name(victim), code, strna(out));
                                return 0;
                        }
                        log_info("Control plane %s: etcd member %s removed.", meta_name(kcp), node);
                }
        }
        log_info("Control plane %s: scaling down, deleting %s.", meta_name(kcp),
                 meta_name(victim));
        int r = registry_delete(m->reg, &kind_machine, meta_namespace(victim), meta_name(victim),
                                meta_uid(victim));
        return r == -ENOENT ? 0 : r;
}

static int reconcile_kcp_delete(Manager *m, Obj *kcp, const Obj *orig, Machines *ms) {
        int r;
        OBJ_LIST_FOREACH(mc, ms->list, i) {
                if (meta_deleting(mc))
                        continue;
                r = registry_delete(m->reg, &kind_machine, meta_namespace(mc), meta_name(mc),
                                    meta_uid(mc));
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        if (obj_len(ms->list) == 0)
                meta_remove_finalizer(kcp, FINALIZER_KCP);
        r = patch_save(m->reg, orig, kcp);
        return r < 0 ? r : (obj_len(ms->list) ? (int)REQUEUE_SOON : 0);
}

int reconcile_kcp(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *kcp = NULL;
        int r = registry_get(m->reg, &kind_kubeadmcontrolplane, ns, name, &kcp);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *orig = obj_dup(kcp);
        if (!orig)
                return -ENOMEM;
        Machines ms = {0};
        r = collect_machines(m, kcp, &ms);
        _cleanup_(obj_freep) Obj *machines = ms.list;
        if (r < 0)
                return r;
        if (meta_deleting(kcp))
                return reconcile_kcp_delete(m, kcp, orig, &ms);

        /* Wait for the Cluster to adopt us (it sets the owner reference and label). */
        _cleanup_(obj_freep) Obj *cluster = NULL;
        r = get_owner_cluster(m, kcp, &cluster);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        LOG_FIELD_SCOPE(LOG_FIELD_CLUSTER, meta_name(cluster));
        if (cluster_paused(cluster, kcp))
                return 0;
        if ((r = meta_add_finalizer(kcp, FINALIZER_KCP)) < 0)
                return r;

        int64_t replicas = 1;
        obj_get_int(kcp, "spec.replicas", &replicas);
        bool initialized = obj_get_bool(kcp, "status.initialized", false);

        if (!obj_get_bool(cluster, "status.infrastructureReady", false)) {
                condition_set(kcp, "Available", COND_FALSE, "WaitingForInfrastructure",
                              SEVERITY_INFO, "waiting for the cluster infrastructure");
        } else {
                r = cluster_certificates_ensure(m, cluster);
                if (r < 0)
                        return r;
                condition_set_true(kcp, "CertificatesAvailable");

                size_t live = obj_len(machines) - ms.deleting;
                if ((int64_t)live < replicas) {
                        /* One at a time: a new member only when every existing one is ready
                         * (etcd quorum), and joins only after the first has initialised. */
                        if (ms.provisioning == 0 && ms.deleting == 0 &&
                            (live == 0 || initialized)) {
                                r = create_cp_machine(m, kcp, cluster, live == 0);
                                if (r == -ENOENT)
                                        condition_set(kcp, "MachinesCreated", COND_FALSE,
                                                      "InfrastructureTemplateNotFound",
                                                      SEVERITY_ERROR,
                                                      "AnvilMachineTemplate %s not found",
                                                      strna(obj_get_str(
                                                              kcp, "spec.machineTemplate."
                                                                   "infrastructureRef.name")));
                                else if (r < 0)
                                        return r;
                                else
                                        condition_set_true(kcp, "MachinesCreated");
                        }
                        condition_set(kcp, "Resized", COND_FALSE, "ScalingUp", SEVERITY_WARNING,
                                      "scaling up control plane to %lld replicas (actual %zu)",
                                      (long long)replicas, live);
                } else if ((int64_t)live > replicas) {
                        condition_set(kcp, "Resized", COND_FALSE, "ScalingDown", SEVERITY_WARNING,
                                      "scaling down control plane to %lld replicas (actual %zu)",
                                      (long long)replicas, live);
                        if (ms.provisioning == 0 && ms.deleting == 0 && ms.oldest && live > 1) {
                                r = scale_down(m, kcp, ms.oldest);
                                if (r < 0)
                                        return r;
                        }
                } else
                        condition_set_true(kcp, "Resized");
        }

        /* The cluster is initialised once the first control plane machine has a node. */
        if (!initialized && ms.ready > 0)
                initialized = true;
        char selector[256];
        snprintf(selector, sizeof(selector), "%s,%s=%s", LABEL_CONTROL_PLANE,
                 LABEL_CONTROL_PLANE_NAME, name);
        if ((r = obj_set_int(kcp, "status.replicas", (int64_t)obj_len(machines))) < 0 ||
            (r = obj_set_int(kcp, "status.readyReplicas", (int64_t)ms.ready)) < 0 ||
            (r = obj_set_int(kcp, "status.updatedReplicas", (int64_t)ms.updated)) < 0 ||
            (r = obj_set_int(kcp, "status.unavailableReplicas",
                             (int64_t)(obj_len(machines) - ms.ready))) < 0 ||
            (r = obj_set_bool(kcp, "status.initialized", initialized)) < 0 ||
            (r = obj_set_bool(kcp, "status.ready", ms.ready > 0)) < 0 ||
            (r = obj_set_str(kcp, "status.selector", selector)) < 0 ||
            (r = obj_set_int(kcp, "status.observedGeneration", meta_generation(kcp))) < 0)
                return r;
        if (ms.updated > 0 && (r = obj_set_str(kcp, "status.version",
                                               obj_get_str(kcp, "spec.version"))) < 0)
                return r;
        if (ms.ready > 0 && ms.ready == obj_len(machines))
                condition_set_true(kcp, "MachinesReady");
        else
                condition_set(kcp, "MachinesReady", COND_FALSE, "WaitingForMachines",
                              SEVERITY_INFO, "%zu of %zu machines ready", ms.ready,
                              obj_len(machines));
        if (initialized && ms.ready > 0) {
                condition_set_true(kcp, "Available");
                condition_set_true(kcp, "Ready");
        } else {
                condition_set(kcp, "Available", COND_FALSE, "WaitingForKubeadmInit", SEVERITY_INFO,
                              "waiting for the first control plane machine to initialise");
                condition_set(kcp, "Ready", COND_FALSE, "WaitingForKubeadmInit", SEVERITY_INFO,
                              "waiting for the first control plane machine to initialise");
        }
        r = patch_save(m->reg, orig, kcp);
        return r < 0 ? r : 0;
}
