/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Machine: follows its bootstrap config and its infrastructure machine, as Cluster API's
 * machine controller does, and moves through the upstream phases:
 *   Pending      neither bootstrap data nor infrastructure yet
 *   Provisioning bootstrap data ready, the host is being provisioned
 *   Provisioned  the host finished kubeadm and reported its providerID
 *   Running      the Node exists and is Ready (nodeRef set)
 *   Deleting     on the way out: the host is reset and returned to the pool first
 *   Failed       a step failed on the host; describe shows which and why
 */
#include <time.h>

#include "controllers.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_machine, kind_kubeadmconfig, kind_anvilmachine, kind_host;

static int get_ref(Manager *m, const Obj *machine, const char *path, const KindInfo *k,
                   Obj **ret) {
        const char *name = obj_get_str(machine, path);
        if (!name)
                return -ENOENT;
        return registry_get(m->reg, k, meta_namespace(machine), name, ret);
}

static int reconcile_delete(Manager *m, Obj *machine, const Obj *orig) {
        int r;
        if ((r = obj_set_str(machine, "status.phase", "Deleting")) < 0)
                return r;
        condition_set(machine, "Ready", COND_FALSE, "Deleting", SEVERITY_INFO,
                      "resetting the host and returning it to the pool");
        /* The infrastructure machine resets and releases the host; only then do we go. */
        _cleanup_(obj_freep) Obj *am = NULL;
        r = get_ref(m, machine, "spec.infrastructureRef.name", &kind_anvilmachine, &am);
        if (r >= 0 && !meta_deleting(am))
                r = registry_delete(m->reg, &kind_anvilmachine, meta_namespace(am), meta_name(am),
                                    meta_uid(am));
        if (r < 0 && r != -ENOENT)
                return r;
        bool infra_gone = r == -ENOENT;
        _cleanup_(obj_freep) Obj *config = NULL;
        r = get_ref(m, machine, "spec.bootstrap.configRef.name", &kind_kubeadmconfig, &config);
        if (r >= 0 && infra_gone)
                r = registry_delete(m->reg, &kind_kubeadmconfig, meta_namespace(config),
                                    meta_name(config), meta_uid(config));
        if (r < 0 && r != -ENOENT)
                return r;
        if (infra_gone) {
                meta_remove_finalizer(machine, FINALIZER_MACHINE);
                log_event(LOG_INFO, ANVIL_MESSAGE_MACHINE_DELETED,
                          "Machine %s deleted; its host is back in the pool.",
                          meta_name(machine));
        }
        r = patch_save(m->reg, orig, machine);
        return r < 0 ? r : (infra_gone ? 0 : (int)REQUEUE_SOON);
}

int reconcile_machine(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *machine = NULL;
        int r = registry_get(m->reg, &kind_machine, ns, name, &machine);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        LOG_FIELD_SCOPE(LOG_FIELD_MACHINE, name);
        LOG_FIELD_SCOPE(LOG_FIELD_CLUSTER, obj_get_str(machine, "spec.clusterName"));
        _cleanup_(obj_freep) Obj *orig = obj_dup(machine);
        if (!orig)
                return -ENOMEM;
        if (meta_deleting(machine))
                return reconcile_delete(m, machine, orig);

        _cleanup_(obj_freep) Obj *cluster = NULL;
        r = get_owner_cluster(m, machine, &cluster);
        if (r < 0 && r != -ENOENT)
                return r;
        if (cluster_paused(cluster, machine))
                return 0;
        if ((r = meta_add_finalizer(machine, FINALIZER_MACHINE)) < 0 ||
            (r = meta_set_label(machine, LABEL_CLUSTER_NAME,
                                obj_get_str(machine, "spec.clusterName"))) < 0)
                return r;

        /* Bootstrap. */
        bool bootstrap_ready = obj_get_str(machine, "spec.bootstrap.dataSecretName") != NULL;
        _cleanup_(obj_freep) Obj *config = NULL;
        r = get_ref(m, machine, "spec.bootstrap.configRef.name", &kind_kubeadmconfig, &config);
        if (r >= 0) {
                if (obj_get_bool(config, "status.ready", false) &&
                    obj_get_str(config, "status.dataSecretName")) {
                        bootstrap_ready = true;
                        if ((r = obj_set_str(machine, "spec.bootstrap.dataSecretName",
                                             obj_get_str(config, "status.dataSecretName"))) < 0)
                                return r;
                }
        } else if (r != -ENOENT)
                return r;
        if (bootstrap_ready)
                condition_set_true(machine, "BootstrapReady");
        else
                condition_set(machine, "BootstrapReady", COND_FALSE,
                              condition_reason(config, "DataSecretAvailable") ?: "WaitingForBootstrapData",
                              SEVERITY_INFO, "%s",
                              condition_message(config, "DataSecretAvailable") ?: "waiting for the bootstrap config");

        /* Infrastructure and the host behind it. */
        bool infra_ready = false, failed = false;
        _cleanup_(obj_freep) Obj *am = NULL, *host = NULL;
        r = get_ref(m, machine, "spec.infrastructureRef.name", &kind_anvilmachine, &am);
        if (r >= 0) {
                infra_ready = obj_get_bool(am, "status.ready", false);
                const char *pid = obj_get_str(am, "spec.providerID");
                if (pid && (r = obj_set_str(machine, "spec.providerID", pid)) < 0)
                        return r;
                const Obj *addrs = obj_get(am, "status.addresses");
                if (addrs && (r = obj_set(machine, "status.addresses", obj_dup(addrs))) < 0)
                        return r;
                const char *hn = obj_get_str(am, "status.hostRef.name");
                if (hn && registry_get(m->reg, &kind_host, NULL, hn, &host) < 0)
                        host = NULL;
                if (infra_ready)
                        condition_set_true(machine, "InfrastructureReady");
                else
                        condition_set(machine, "InfrastructureReady", COND_FALSE,
                                      condition_reason(am, "Ready") ?: "WaitingForInfrastructure",
                                      streq_ptr(condition_reason(am, "Ready"), "ProvisioningFailed")
                                              ? SEVERITY_ERROR
                                              : SEVERITY_INFO,
                                      "%s", condition_message(am, "Ready") ?: "waiting for a host");
                failed = streq_ptr(condition_reason(am, "Ready"), "ProvisioningFailed");
        } else if (r != -ENOENT)
                return r;

        if (failed) {
                if ((r = obj_set_str(machine, "status.failureReason", "BootstrapFailed")) < 0 ||
                    (r = obj_set_str(machine, "status.failureMessage",
                                     strna(condition_message(am, "Ready")))) < 0)
                        return r;
        } else {
                obj_del(machine, "status.failureReason");
                obj_del(machine, "status.failureMessage");
        }

        /* The node: the agent reports its name and readiness for our providerID. */
        const char *provider = obj_get_str(machine, "spec.providerID");
        bool node = host && infra_ready && obj_get_str(host, "status.nodeName") &&
                    streq_ptr(obj_get_str(host, "status.providerID"), provider);
        if (node) {
                _cleanup_(obj_freep) Obj *ref = obj_new_map();
                if (!ref || obj_map_set_str(ref, "apiVersion", "v1") < 0 ||
                    obj_map_set_str(ref, "kind", "Node") < 0 ||
                    obj_map_set_str(ref, "name", obj_get_str(host, "status.nodeName")) < 0)
                        return -ENOMEM;
                if ((r = obj_set(machine, "status.nodeRef", TAKE_PTR(ref))) < 0)
                        return r;
                const char *kv = obj_get_str(host, "status.kubeletVersion");
                if (kv && (r = obj_set_str(machine, "status.nodeInfo.kubeletVersion", kv)) < 0)
                        return r;
                if (obj_get_bool(host, "status.nodeReady", false))
                        condition_set_true(machine, "NodeHealthy");
                else
                        condition_set(machine, "NodeHealthy", COND_FALSE, "NodeConditionsFailed",
                                      SEVERITY_WARNING, "node %s is not Ready",
                                      obj_get_str(host, "status.nodeName"));
        } else
                condition_set(machine, "NodeHealthy", COND_FALSE, "WaitingForNodeRef",
                              SEVERITY_INFO, "waiting for the node to register");

        const char *phase = "Pending";
        if (bootstrap_ready)
                phase = "Provisioning";
        if (infra_ready && provider)
                phase = "Provisioned";
        if (obj_get(machine, "status.nodeRef"))
                phase = "Running";
        if (failed)
                phase = "Failed";
        if ((r = obj_set_bool(machine, "status.bootstrapReady", bootstrap_ready)) < 0 ||
            (r = obj_set_bool(machine, "status.infrastructureReady", infra_ready)) < 0 ||
            (r = obj_set_str(machine, "status.phase", phase)) < 0 ||
            (r = obj_set_int(machine, "status.observedGeneration", meta_generation(machine))) < 0)
                return r;
        if (bootstrap_ready && infra_ready && condition_is_true(machine, "NodeHealthy"))
                condition_set_true(machine, "Ready");
        else {
                const char *why = !bootstrap_ready ? "BootstrapReady"
                                  : !infra_ready   ? "InfrastructureReady"
                                                   : "NodeHealthy";
                const char *severity = failed ? SEVERITY_ERROR : SEVERITY_INFO;
                condition_set(machine, "Ready", COND_FALSE, condition_reason(machine, why),
                              severity, "%s", strempty(condition_message(machine, why)));
        }
        const char *old_phase = obj_get_str(orig, "status.phase");
        if (!streq_ptr(old_phase, phase)) {
                char ts[32];
                if ((r = obj_set_str(machine, "status.lastUpdated", now_rfc3339(ts))) < 0)
                        return r;
                log_info("Machine %s: %s -> %s.", name, strna(old_phase), phase);
                manager_event(m, machine, failed ? "Warning" : "Normal", phase,
                              "Machine is %s", phase);
        }
        r = patch_save(m->reg, orig, machine);
        return r < 0 ? r : 0;
}
