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
 * A Running Machine whose spec.version moves away from what its host runs is upgraded in
 * place (inplace.c); it stays Running meanwhile, with the InPlaceUpgraded condition.
 */
#include <time.h>

#include "commands.h"
#include "controllers.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_machine, kind_kubeadmconfig, kind_anvilmachine, kind_host;

static int get_ref(Manager *m, const Obj *machine, const char *path, const KindInfo *k, Obj **ret) {
        const char *name = obj_get_str(machine, path);
        if (!name)
                return -ENOENT;
        return registry_get(m->reg, k, meta_namespace(machine), name, ret);
}

/*
 * As Cluster API's Machine controller does with the objects a Machine references: the
 * Machine becomes their controller, and they get its cluster-name label. A MachineSet's or
 * control plane's machine made them so already; a standalone Machine's were applied by the
 * operator and wait for this (the KubeadmConfig and the AnvilMachine act only for their
 * owner Machine). -EBUSY when another controller holds obj (Cluster API refuses too).
 */
static int adopt(Manager *m, const Obj *machine, Obj *obj) {
        const Obj *ctrl = meta_controller_ref(obj);
        if (ctrl && !streq_ptr(obj_get_str(ctrl, "uid"), meta_uid(machine)))
                return -EBUSY;
        const char *cluster = obj_get_str(machine, "spec.clusterName");
        if (ctrl && (!cluster || streq_ptr(meta_label(obj, LABEL_CLUSTER_NAME), cluster)))
                return 0;
        _cleanup_(obj_freep) Obj *orig = obj_dup(obj);
        if (!orig)
                return -ENOMEM;
        int r = meta_set_controller_ref(obj, machine);
        if (r >= 0 && cluster)
                r = meta_set_label(obj, LABEL_CLUSTER_NAME, cluster);
        if (r < 0)
                return r;
        log_info("Machine %s: controls %s %s now.", meta_name(machine), obj_get_str(obj, "kind"),
                 meta_name(obj));
        r = patch_save(m->reg, orig, obj);
        return r < 0 ? r : 0;
}

/* KubeletUpToDate: the node's kubelet runs spec.version (Anvil's: see
 * machine_kubelet_matches()). */
static void kubelet_condition(Obj *machine, const char *node) {
        const char *want = obj_get_str(machine, "spec.version");
        const char *have = obj_get_str(machine, "status.nodeInfo.kubeletVersion");
        if (!want || !have)
                return;
        if (machine_kubelet_matches(machine))
                condition_set_true(machine, "KubeletUpToDate");
        else if (machine_upgrading(machine))
                condition_set(machine, "KubeletUpToDate", COND_FALSE, "UpgradingInPlace",
                              SEVERITY_INFO, "the kubelet runs %s; upgrading in place to %s", have,
                              want);
        else
                condition_set(machine, "KubeletUpToDate", COND_FALSE, "KubeletVersionMismatch",
                              SEVERITY_WARNING,
                              "node %s reports kubelet %s, but spec.version is %s: the host runs "
                              "other Kubernetes packages (upgrade-commands in its agent.yaml "
                              "install the machine's version)",
                              strna(node), have, want);
}

/* adopt(), or a condition saying why not. Returns < 0 on errors to retry, 0 when obj is
 * the machine's, 1 when it is someone else's (the condition says so). */
static int adopt_or_say(Manager *m, Obj *machine, Obj *obj, const char *condition) {
        int r = adopt(m, machine, obj);
        if (r != -EBUSY)
                return r;
        const Obj *ctrl = meta_controller_ref(obj);
        condition_set(machine, condition, COND_FALSE, "ControlledByAnother", SEVERITY_ERROR,
                      "%s %s is controlled by %s %s, not by this machine", obj_get_str(obj, "kind"),
                      meta_name(obj), strna(obj_get_str(ctrl, "kind")),
                      strna(obj_get_str(ctrl, "name")));
        return 1;
}

/*
 * Cluster API's order of deletion: drain the node (honouring nodeDrainTimeout), release the
 * infrastructure (here: reset the host and return it to the pool), delete the Node, drop the
 * finalizer. The Node goes last because a kubelet still running would register it again.
 * Draining and node deletion run on another control plane host of the cluster (a command);
 * they are skipped when the cluster itself is being deleted or no such host is left.
 */
typedef enum ChoreResult {
        CHORE_DONE,
        CHORE_WAITING,
} ChoreResult;

static ChoreResult drain(Manager *m, Obj *machine, const char *node, const char *own_host) {
        if (condition_is_true(machine, "DrainingSucceeded") ||
            streq_ptr(condition_reason(machine, "DrainingSucceeded"), "NodeDrainTimeoutExceeded"))
                return CHORE_DONE;
        char ts[32];
        if (!obj_get_str(machine, "status.deletion.nodeDrainStartTime"))
                (void)obj_set_str(machine, "status.deletion.nodeDrainStartTime", now_rfc3339(ts));
        int64_t started = 0;
        (void)parse_rfc3339(obj_get_str(machine, "status.deletion.nodeDrainStartTime"), &started);
        uint64_t timeout = duration_field(machine, "spec.nodeDrainTimeout", 0);
        uint64_t elapsed = (uint64_t)((int64_t)now_usec(CLOCK_REALTIME) - started);
        if (timeout > 0 && elapsed > timeout) {
                log_warning("Machine %s: draining node %s took longer than nodeDrainTimeout, "
                            "deleting it anyway.",
                            meta_name(machine), node);
                condition_set(machine, "DrainingSucceeded", COND_FALSE, "NodeDrainTimeoutExceeded",
                              SEVERITY_WARNING, "drain of node %s exceeded nodeDrainTimeout", node);
                return CHORE_DONE;
        }
        _cleanup_free_ char *cp = NULL;
        if (pick_control_plane_host(m, meta_namespace(machine),
                                    obj_get_str(machine, "spec.clusterName"), own_host, &cp) < 0) {
                log_info("Machine %s: no other control plane host can drain node %s; skipping "
                         "the drain.",
                         meta_name(machine), node);
                condition_set_true(machine, "DrainingSucceeded");
                return CHORE_DONE;
        }
        _cleanup_free_ char *id = strjoin("drain-", meta_uid(machine));
        _cleanup_free_ char *key = object_key(machine);
        _cleanup_(obj_freep) Obj *args = obj_new_map();
        char secs[32];
        snprintf(secs, sizeof(secs), "%llu",
                 (unsigned long long)(timeout > 0 ? (timeout - (elapsed < timeout ? elapsed : 0)) /
                                                                    USEC_PER_SEC +
                                                            1
                                                  : 300));
        if (!id || !key || !args || obj_map_set_str(args, "node", node) < 0 ||
            obj_map_set_str(args, "timeoutSeconds", secs) < 0)
                return CHORE_WAITING;
        int code = 0;
        const char *out = NULL;
        switch (command_run(m->commands, id, cp, "drain-node", args, key,
                            (strtoull(secs, NULL, 10) + 60) * USEC_PER_SEC, &code, &out)) {
        case COMMAND_SUCCEEDED:
                log_info("Machine %s: node %s drained.", meta_name(machine), node);
                condition_set_true(machine, "DrainingSucceeded");
                return CHORE_DONE;
        case COMMAND_FAILED:
                command_forget(m->commands, id);
                condition_set(machine, "DrainingSucceeded", COND_FALSE, "DrainingFailed",
                              SEVERITY_WARNING, "draining node %s failed (exit %d), retrying: %s",
                              node, code, strna(out));
                return CHORE_WAITING;
        default:
                condition_set(machine, "DrainingSucceeded", COND_FALSE, "Draining", SEVERITY_INFO,
                              "draining node %s (on %s)", node, cp);
                return CHORE_WAITING;
        }
}

static ChoreResult delete_node(Manager *m, Obj *machine, const char *node) {
        if (obj_get_bool(machine, "status.deletion.nodeDeleted", false))
                return CHORE_DONE;
        _cleanup_free_ char *cp = NULL;
        if (pick_control_plane_host(m, meta_namespace(machine),
                                    obj_get_str(machine, "spec.clusterName"), NULL, &cp) < 0) {
                /* Nobody left to ask: the cluster is going away. */
                (void)obj_set_bool(machine, "status.deletion.nodeDeleted", true);
                return CHORE_DONE;
        }
        _cleanup_free_ char *id = strjoin("delnode-", meta_uid(machine));
        _cleanup_free_ char *key = object_key(machine);
        _cleanup_(obj_freep) Obj *args = obj_new_map();
        if (!id || !key || !args || obj_map_set_str(args, "node", node) < 0)
                return CHORE_WAITING;
        int code = 0;
        const char *out = NULL;
        switch (command_run(m->commands, id, cp, "delete-node", args, key, 60 * USEC_PER_SEC, &code,
                            &out)) {
        case COMMAND_SUCCEEDED:
                log_info("Machine %s: node %s deleted.", meta_name(machine), node);
                (void)obj_set_bool(machine, "status.deletion.nodeDeleted", true);
                return CHORE_DONE;
        case COMMAND_FAILED:
                command_forget(m->commands, id);
                log_warning("Machine %s: deleting node %s failed (exit %d), retrying: %s",
                            meta_name(machine), node, code, strna(out));
                return CHORE_WAITING;
        default:
                return CHORE_WAITING;
        }
}

static int reconcile_delete(Manager *m, Obj *machine, const Obj *orig) {
        int r;
        if ((r = obj_set_str(machine, "status.phase", "Deleting")) < 0)
                return r;
        condition_set(machine, "Ready", COND_FALSE, "Deleting", SEVERITY_INFO,
                      "deleting: drain, reset the host, delete the node");
        _cleanup_(obj_freep) Obj *cluster = NULL;
        r = get_owner_cluster(m, machine, &cluster);
        if (r < 0 && r != -ENOENT)
                return r;
        bool cluster_going = !cluster || meta_deleting(cluster);
        const char *node = obj_get_str(machine, "status.nodeRef.name");
        _cleanup_free_ char *own_host = machine_host_name(m, machine);

        /* 1. drain */
        if (node && !cluster_going && drain(m, machine, node, own_host) == CHORE_WAITING) {
                r = patch_save(m->reg, orig, machine);
                return r < 0 ? r : (int)REQUEUE_SOON;
        }

        /* 2. reset and release the host: the AnvilMachine does it; once the host is reset
         * it waits for the Node to go (3.) before it hands the host out again */
        _cleanup_(obj_freep) Obj *am = NULL;
        r = get_ref(m, machine, "spec.infrastructureRef.name", &kind_anvilmachine, &am);
        if (r >= 0 && !meta_deleting(am))
                r = registry_delete(m->reg, &kind_anvilmachine, meta_namespace(am), meta_name(am),
                                    meta_uid(am));
        if (r < 0 && r != -ENOENT)
                return r;
        if (r != -ENOENT) {
                if (obj_get_bool(am, "status.hostReset", false) && node) {
                        if (cluster_going)
                                (void)obj_set_bool(machine, "status.deletion.nodeDeleted", true);
                        else
                                (void)delete_node(m, machine, node);
                }
                condition_set(machine, "InfrastructureReady", COND_FALSE, "Deleting", SEVERITY_INFO,
                              "resetting the host");
                r = patch_save(m->reg, orig, machine);
                return r < 0 ? r : (int)REQUEUE_SOON;
        }

        /* 3. the Node */
        if (node && !cluster_going && delete_node(m, machine, node) == CHORE_WAITING) {
                r = patch_save(m->reg, orig, machine);
                return r < 0 ? r : (int)REQUEUE_SOON;
        }

        /* 4. the bootstrap config, and we are done */
        _cleanup_(obj_freep) Obj *config = NULL;
        r = get_ref(m, machine, "spec.bootstrap.configRef.name", &kind_kubeadmconfig, &config);
        if (r >= 0)
                r = registry_delete(m->reg, &kind_kubeadmconfig, meta_namespace(config),
                                    meta_name(config), meta_uid(config));
        if (r < 0 && r != -ENOENT)
                return r;
        meta_remove_finalizer(machine, FINALIZER_MACHINE);
        log_event(LOG_INFO, ANVIL_MESSAGE_MACHINE_DELETED,
                  "Machine %s deleted; its host is back in the pool.", meta_name(machine));
        _cleanup_free_ char *id1 = strjoin("drain-", strempty(meta_uid(machine)));
        _cleanup_free_ char *id2 = strjoin("delnode-", strempty(meta_uid(machine)));
        if (id1)
                command_forget(m->commands, id1);
        if (id2)
                command_forget(m->commands, id2);
        r = patch_save(m->reg, orig, machine);
        return r < 0 ? r : 0;
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
        if (r >= 0 && (r = adopt_or_say(m, machine, config, "BootstrapReady")) < 0)
                return r;
        if (r < 0 && r != -ENOENT)
                return r;
        bool config_foreign = r == 1;
        if (r == 0 && obj_get_bool(config, "status.ready", false) &&
            obj_get_str(config, "status.dataSecretName")) {
                bootstrap_ready = true;
                if ((r = obj_set_str(machine, "spec.bootstrap.dataSecretName",
                                     obj_get_str(config, "status.dataSecretName"))) < 0)
                        return r;
        }
        if (bootstrap_ready)
                condition_set_true(machine, "BootstrapReady");
        else if (!config_foreign)
                condition_set(machine, "BootstrapReady", COND_FALSE,
                              condition_reason(config, "DataSecretAvailable")
                                      ?: "WaitingForBootstrapData",
                              SEVERITY_INFO, "%s",
                              condition_message(config, "DataSecretAvailable")
                                      ?: "waiting for the bootstrap config");

        /* Infrastructure and the host behind it. */
        bool infra_ready = false, failed = false;
        _cleanup_(obj_freep) Obj *am = NULL, *host = NULL;
        r = get_ref(m, machine, "spec.infrastructureRef.name", &kind_anvilmachine, &am);
        if (r >= 0 && (r = adopt_or_say(m, machine, am, "InfrastructureReady")) < 0)
                return r;
        if (r == 1)
                am = obj_free(am); /* not ours: as if it did not exist */
        else if (r >= 0) {
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
                kubelet_condition(machine, obj_get_str(host, "status.nodeName"));
                /* A revoked host's last report may say Ready, but nothing manages the node
                 * any more (and MachineHealthCheck sees its host unreachable). */
                if (streq_ptr(obj_get_str(host, "status.phase"), "Revoked"))
                        condition_set(machine, "NodeHealthy", COND_FALSE, "HostRevoked",
                                      SEVERITY_ERROR,
                                      "host %s is revoked: its agent is cut off and node %s is "
                                      "no longer managed; delete this machine to replace it",
                                      meta_name(host), obj_get_str(host, "status.nodeName"));
                else if (obj_get_bool(host, "status.nodeReady", false))
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
        /* In-place upgrade, when an owner moved spec.version (or one is under way). */
        int result = 0;
        if (host && !failed && streq(phase, "Running")) {
                r = machine_inplace_reconcile(m, machine, host);
                if (r < 0)
                        return r;
                if (machine_upgrading(machine) && !machine_upgrade_failed(machine))
                        result = (int)REQUEUE_SOON;
        }
        const char *old_phase = obj_get_str(orig, "status.phase");
        if (!streq_ptr(old_phase, phase)) {
                char ts[32];
                if ((r = obj_set_str(machine, "status.lastUpdated", now_rfc3339(ts))) < 0)
                        return r;
                log_info("Machine %s: %s -> %s.", name, strna(old_phase), phase);
                manager_event(m, machine, failed ? "Warning" : "Normal", phase, "Machine is %s",
                              phase);
        }
        r = patch_save(m->reg, orig, machine);
        return r < 0 ? r : result;
}
