/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KubeadmControlPlane: the control plane machines of one cluster, as Cluster API's kubeadm
 * control plane provider manages them. It makes the cluster certificates (CA, etcd CA,
 * front-proxy CA, service account keys) at first need, then creates machines one at a time:
 * the first runs kubeadm init, each next one joins as a control plane only once every
 * existing one is ready, so etcd never has two members joining at once. Scale down removes
 * the oldest machine, one at a time, never below one.
 *
 * Rollout (a new spec.version, kubeadmConfigSpec or infrastructure template, or
 * spec.rolloutAfter passed), one machine at a time, as Cluster API's KCP does:
 *  - with a spare host matching the machine template (and maxSurge 1): scale up first — a
 *    new member joins, then the oldest outdated one is removed (etcd member first);
 *  - without one (or maxSurge 0), from 3 replicas up: scale down first — never below a
 *    majority of the members;
 *  - in place (annotation anvil.dev/upgrade-strategy: InPlace): a new version only is applied
 *    to the machines where they stand, one at a time, the first with kubeadm upgrade apply.
 * A machine is outdated by its version, by the spec hash it was made from (annotation
 * anvil.dev/control-plane-spec-hash), or by being older than a passed rolloutAfter.
 *
 * Remediation: a machine a MachineHealthCheck marked OwnerRemediated=False is removed (etcd
 * member first) and replaced, one at a time, never the last one, and only while the members
 * that stay healthy keep a majority.
 *
 * kube-system/kubeadm-config: `kubeadm join --control-plane` takes the ClusterConfiguration
 * (kubernetesVersion first of all) from that ConfigMap, so before a machine joins, the
 * ConfigMap is brought to the spec — kubernetesVersion and the parts Cluster API's KCP manages
 * (imageRepository, featureGates, apiServer, controllerManager, scheduler, etcd) — by a
 * command on a control plane host; done once per change, recorded in status.kubeadmConfig.
 */
#include "commands.h"
#include "controllers.h"
#include "json.h"
#include "kubeadm.h"
#include "log.h"
#include "resource.h"
#include "wire.h"

extern const KindInfo kind_kubeadmcontrolplane, kind_machine, kind_anvilmachinetemplate,
        kind_cluster, kind_host;

typedef struct Machines {
        Obj *list; /* OBJ_LIST of Machines owned by this control plane */
        size_t ready, updated, provisioning, deleting;
        size_t outdated;   /* to be replaced */
        size_t to_upgrade; /* in place: to be upgraded where they stand */
        size_t upgrading;  /* in an in-place upgrade */
        const Obj *oldest;
        const Obj *oldest_outdated;
        const Obj *oldest_to_upgrade;
        const Obj *upgrade_failed;
        const Obj *remediate;     /* oldest machine marked OwnerRemediated=False */
        const Obj *stale_kubelet; /* a machine whose kubelet runs another version */
        char *lowest_version;
} Machines;

#define machine_ready(m) machine_is_ready(m)

/* Hash of what makes a control plane machine (version aside: it may change in place). */
static void cp_spec_hash(const Obj *kcp, char out[11]) {
        _cleanup_(obj_freep) Obj *o = obj_new_map();
        if (o) {
                obj_map_set(o, "kubeadmConfigSpec",
                            obj_dup(obj_get(kcp, "spec.kubeadmConfigSpec")));
                obj_map_set(o, "infrastructureRef",
                            obj_dup(obj_get(kcp, "spec.machineTemplate.infrastructureRef")));
        }
        object_hash(o, out);
}

static bool older(const Obj *a, const Obj *b) {
        return !b || strcmp(strempty(obj_get_str(a, "metadata.creationTimestamp")),
                            strempty(obj_get_str(b, "metadata.creationTimestamp"))) < 0;
}

static int collect_machines(Manager *m, const Obj *kcp, Machines *ret) {
        _cleanup_(obj_freep) Obj *sel = obj_new_map();
        if (!sel || obj_set(sel, "matchLabels", obj_new_map()) < 0 ||
            obj_map_set_str(obj_get(sel, "matchLabels"), LABEL_CONTROL_PLANE_NAME, meta_name(kcp)) <
                    0)
                return -ENOMEM;
        int r = registry_list_all(m->reg, &kind_machine, meta_namespace(kcp), sel, &ret->list);
        if (r < 0)
                return r;
        const char *version = obj_get_str(kcp, "spec.version");
        bool in_place = streq_ptr(meta_annotation(kcp, ANNOTATION_UPGRADE_STRATEGY), "InPlace");
        char hash[11];
        cp_spec_hash(kcp, hash);
        int64_t now = (int64_t)now_usec(CLOCK_REALTIME), after = 0;
        bool after_due =
                parse_rfc3339(obj_get_str(kcp, "spec.rolloutAfter"), &after) >= 0 && after <= now;
        OBJ_LIST_FOREACH(mc, ret->list, i) {
                if (meta_deleting(mc)) {
                        ret->deleting++;
                        continue;
                }
                /* A machine in an in-place upgrade is not "provisioning": its node is there. */
                if (machine_ready(mc) || machine_upgrading(mc))
                        ret->ready++;
                else
                        ret->provisioning++;
                const char *mh = meta_annotation(mc, ANNOTATION_CP_SPEC_HASH);
                int64_t created = 0;
                bool version_ok = streq_ptr(obj_get_str(mc, "spec.version"), version);
                bool outdated = (mh && !streq(mh, hash)) ||
                                (after_due &&
                                 parse_rfc3339(obj_get_str(mc, "metadata.creationTimestamp"),
                                               &created) >= 0 &&
                                 created < after) ||
                                (!version_ok && !in_place);
                if (outdated) {
                        ret->outdated++;
                        if (older(mc, ret->oldest_outdated))
                                ret->oldest_outdated = mc;
                } else if (!version_ok) {
                        ret->to_upgrade++;
                        if (older(mc, ret->oldest_to_upgrade))
                                ret->oldest_to_upgrade = mc;
                }
                if (machine_upgrading(mc))
                        ret->upgrading++;
                if (machine_upgrade_failed(mc))
                        ret->upgrade_failed = mc;
                if (!outdated && version_ok && !machine_upgrading(mc)) {
                        if (machine_kubelet_matches(mc))
                                ret->updated++;
                        else
                                ret->stale_kubelet = mc;
                }
                const Obj *rc = condition_get(mc, "OwnerRemediated");
                if (rc && streq_ptr(obj_get_str(rc, "status"), COND_FALSE) &&
                    older(mc, ret->remediate))
                        ret->remediate = mc;
                const char *v = obj_get_str(mc, "spec.version");
                int c;
                if (v && (!ret->lowest_version ||
                          (k8s_version_cmp(v, ret->lowest_version, &c) >= 0 && c < 0))) {
                        free(ret->lowest_version);
                        ret->lowest_version = strdup(v);
                }
                if (older(mc, ret->oldest))
                        ret->oldest = mc;
        }
        return 0;
}

typedef struct SpareCtx {
        const Obj *selector;
        size_t n;
} SpareCtx;

static int spare_cb(Obj *host, void *userdata) {
        SpareCtx *c = userdata;
        if (!obj_get(host, "spec.consumerRef") &&
            !obj_get_bool(host, "spec.resetRequired", false) &&
            !obj_get_bool(host, "spec.paused", false) &&
            streq_ptr(obj_get_str(host, "status.phase"), "Available") &&
            label_selector_matches(c->selector, obj_get(host, "metadata.labels")) == 1)
                c->n++;
        return 0;
}

static int get_infra_template(Manager *m, const Obj *kcp, Obj **ret) {
        const char *name = obj_get_str(kcp, "spec.machineTemplate.infrastructureRef.name");
        const char *ns = obj_get_str(kcp, "spec.machineTemplate.infrastructureRef.namespace");
        if (!name)
                return -ENOENT;
        return registry_get(m->reg, &kind_anvilmachinetemplate, ns ? ns : meta_namespace(kcp), name,
                            ret);
}

/* Available hosts a new control plane machine could claim. */
static size_t spare_hosts(Manager *m, const Obj *kcp) {
        _cleanup_(obj_freep) Obj *tmpl = NULL;
        if (get_infra_template(m, kcp, &tmpl) < 0)
                return 0;
        SpareCtx c = {.selector = obj_get(tmpl, "spec.template.spec.hostSelector")};
        if (registry_list(m->reg, &kind_host, NULL, spare_cb, &c) < 0)
                return 0;
        return c.n;
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
        char hash[11];
        cp_spec_hash(kcp, hash);
        _cleanup_(obj_freep) Obj *annotations =
                obj_dup(obj_get(kcp, "spec.machineTemplate.metadata.annotations")) ?: obj_new_map();
        if (!annotations || obj_map_set_str(annotations, ANNOTATION_CP_SPEC_HASH, hash) < 0)
                return -ENOMEM;
        _cleanup_free_ char *name = NULL;
        r = create_machine_trio(m, kcp, meta_name(cluster), mspec, labels, annotations, spec,
                                obj_get(tmpl, "spec.template.spec"), &name);
        if (r < 0)
                return r;
        log_info("Control plane %s: created machine %s (%s).", meta_name(kcp), name,
                 first ? "kubeadm init" : "kubeadm join --control-plane");
        return 0;
}

/* The kubeadm-config-update arguments for kcp's spec, as Cluster API's KCP mutates the
 * ConfigMap before a rollout: the version always; with a clusterConfiguration, the image
 * repository (when set), the feature gates, the API server, controller manager and scheduler
 * (each replaced whole; null/{} when absent) and etcd (when set). */
static int kubeadm_config_args(const Obj *kcp, Obj **ret) {
        _cleanup_(obj_freep) Obj *args = obj_new_map();
        if (!args ||
            obj_map_set_str(args, "kubernetesVersion", obj_get_str(kcp, "spec.version")) < 0)
                return -ENOMEM;
        const Obj *cc = obj_get(kcp, "spec.kubeadmConfigSpec.clusterConfiguration");
        static const struct {
                const char *field, *absent;
        } parts[] = {
                {"featureGates", "null"}, {"apiServer", "{}"}, {"controllerManager", "{}"},
                {"scheduler", "{}"},      {"etcd", NULL},
        };
        const char *repo = obj_get_str(cc, "imageRepository");
        if (!isempty(repo) && obj_map_set_str(args, "imageRepository", repo) < 0)
                return -ENOMEM;
        for (size_t i = 0; cc && i < ELEMENTSOF(parts); i++) {
                const Obj *v = obj_map_get(cc, parts[i].field);
                _cleanup_free_ char *json = NULL;
                if (v) {
                        int r = json_emit(v, false, &json);
                        if (r < 0)
                                return r;
                }
                const char *text = json ? json : parts[i].absent;
                if (text && obj_map_set_str(args, parts[i].field, text) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(args);
        return 0;
}

/*
 * Brings kube-system/kubeadm-config to kcp's spec before a machine joins (a command on a
 * control plane host). Idempotent on the agent (it changes the ConfigMap only when it
 * differs) and recorded in status.kubeadmConfig when done, so a coordinator restart neither
 * skips it nor does harm by asking again. Returns 1 when the ConfigMap is known to match, 0
 * while waiting (the condition `cond` says why), < 0 on errors.
 */
static int sync_kubeadm_config(Manager *m, Obj *kcp, const char *cluster, const char *cond) {
        _cleanup_(obj_freep) Obj *args = NULL;
        int r = kubeadm_config_args(kcp, &args);
        if (r < 0)
                return r;
        char hash[11];
        object_hash(args, hash);
        const char *version = obj_get_str(kcp, "spec.version");
        if (streq_ptr(obj_get_str(kcp, "status.kubeadmConfig.hash"), hash))
                return 1;
        OBJ_MAP_FOREACH(e, args) {
                if (strlen(strempty(obj_str(e->value))) <= WIRE_MAX_TEXT)
                        continue;
                condition_set(kcp, cond, COND_FALSE, "KubeadmConfigUpdateFailed", SEVERITY_ERROR,
                              "clusterConfiguration.%s is too large to send (more than %d bytes "
                              "as JSON)",
                              e->key, WIRE_MAX_TEXT);
                return 0;
        }
        _cleanup_free_ char *cp = NULL;
        r = pick_control_plane_host(m, meta_namespace(kcp), cluster, NULL, &cp);
        if (r == -ENOENT) {
                condition_set(kcp, cond, COND_FALSE, "UpdatingKubeadmConfig", SEVERITY_INFO,
                              "waiting for a connected control plane host to update "
                              "kube-system/kubeadm-config to %s before a machine joins",
                              strna(version));
                return 0;
        }
        if (r < 0)
                return r;
        char id[64];
        snprintf(id, sizeof(id), "kubeadm-config-%.36s-%s", strempty(meta_uid(kcp)), hash);
        _cleanup_free_ char *key = object_key(kcp);
        if (!key)
                return -ENOMEM;
        int code = 0;
        const char *out = NULL;
        CommandState cs = command_run(m->commands, id, cp, "kubeadm-config-update", args, key,
                                      90 * USEC_PER_SEC, &code, &out);
        if (cs == COMMAND_PENDING) {
                condition_set(kcp, cond, COND_FALSE, "UpdatingKubeadmConfig", SEVERITY_INFO,
                              "updating kube-system/kubeadm-config to %s (on %s) before a "
                              "machine joins",
                              strna(version), cp);
                return 0;
        }
        command_forget(m->commands, id);
        if (cs == COMMAND_FAILED) {
                condition_set(kcp, cond, COND_FALSE, "KubeadmConfigUpdateFailed", SEVERITY_WARNING,
                              "updating kube-system/kubeadm-config to %s on %s failed (exit %d), "
                              "retrying: %s",
                              strna(version), cp, code, strna(out));
                return 0;
        }
        log_info("Control plane %s: kube-system/kubeadm-config is at %s now.", meta_name(kcp),
                 strna(version));
        if ((r = obj_set_str(kcp, "status.kubeadmConfig.kubernetesVersion", version)) < 0 ||
            (r = obj_set_str(kcp, "status.kubeadmConfig.hash", hash)) < 0)
                return r;
        return 1;
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
        log_info("Control plane %s: scaling down, deleting %s.", meta_name(kcp), meta_name(victim));
        int r = registry_delete(m->reg, &kind_machine, meta_namespace(victim), meta_name(victim),
                                meta_uid(victim));
        return r == -ENOENT ? 0 : r;
}

/*
 * With the replica count right: remediation first (one at a time, never the last member, and
 * only while the healthy members left keep a majority), then the rollout.
 */
static int rollout_and_remediate(Manager *m, Obj *kcp, const Obj *cluster, Machines *ms,
                                 size_t live, int64_t replicas, bool settled) {
        int r;
        if (ms->remediate) {
                const Obj *victim = ms->remediate;
                /* Members healthy apart from the victim, and what a majority of the rest is. */
                size_t healthy_others = 0;
                OBJ_LIST_FOREACH(mc, ms->list, i) {
                        const Obj *rc = condition_get(mc, "OwnerRemediated");
                        if (mc != victim && !meta_deleting(mc) && machine_ready(mc) &&
                            !(rc && streq_ptr(obj_get_str(rc, "status"), COND_FALSE)))
                                healthy_others++;
                }
                size_t majority = (live - 1) / 2 + 1;
                if (live <= 1)
                        condition_set(kcp, "Remediation", COND_FALSE, "CannotRemediateLastMachine",
                                      SEVERITY_WARNING,
                                      "machine %s is unhealthy, but it is the only control plane "
                                      "machine: it is not removed",
                                      meta_name(victim));
                else if (!settled)
                        condition_set(kcp, "Remediation", COND_FALSE, "WaitingForOtherMachines",
                                      SEVERITY_INFO,
                                      "machine %s is unhealthy; waiting for the other machines to "
                                      "settle (one remediation at a time)",
                                      meta_name(victim));
                else if (healthy_others < majority)
                        condition_set(kcp, "Remediation", COND_FALSE, "EtcdQuorumAtRisk",
                                      SEVERITY_WARNING,
                                      "machine %s is unhealthy, but removing it would leave %zu "
                                      "healthy of %zu members, fewer than a majority (%zu)",
                                      meta_name(victim), healthy_others, live - 1, majority);
                else {
                        log_info("Control plane %s: remediating unhealthy machine %s.",
                                 meta_name(kcp), meta_name(victim));
                        condition_set(kcp, "Remediation", COND_FALSE, "Remediating", SEVERITY_INFO,
                                      "removing unhealthy machine %s (its etcd member first); it "
                                      "is then replaced",
                                      meta_name(victim));
                        char ts[32];
                        if ((r = obj_set_str(kcp, "status.lastRemediation.machine",
                                             meta_name(victim))) < 0 ||
                            (r = obj_set_str(kcp, "status.lastRemediation.timestamp",
                                             now_rfc3339(ts))) < 0)
                                return r;
                        return scale_down(m, kcp, victim);
                }
                return 0;
        }
        condition_set_true(kcp, "Remediation");

        if (ms->outdated > 0) {
                int64_t surge = 1;
                const Obj *sv = obj_get(kcp, "spec.rolloutStrategy.rollingUpdate.maxSurge");
                if (obj_is(sv, OBJ_INT))
                        surge = sv->i;
                size_t spare = surge > 0 ? spare_hosts(m, kcp) : 0;
                if (!settled)
                        condition_set(kcp, "MachinesSpecUpToDate", COND_FALSE, "RollingUpdate",
                                      SEVERITY_INFO,
                                      "rolling out: %zu machine(s) to replace, waiting for the "
                                      "others to settle",
                                      ms->outdated);
                else if (spare > 0) {
                        r = sync_kubeadm_config(m, kcp, meta_name(cluster), "MachinesSpecUpToDate");
                        if (r <= 0)
                                return r;
                        log_info("Control plane %s: rolling out, scaling up first (%zu spare "
                                 "host(s)).",
                                 meta_name(kcp), spare);
                        r = create_cp_machine(m, kcp, cluster, false);
                        if (r < 0)
                                return r;
                        condition_set(kcp, "MachinesSpecUpToDate", COND_FALSE, "RollingUpdate",
                                      SEVERITY_INFO,
                                      "rolling out: %zu machine(s) to replace; a new one joins "
                                      "before an old one leaves",
                                      ms->outdated);
                } else if (replicas >= 3) {
                        log_info("Control plane %s: rolling out without a spare host: removing "
                                 "%s first.",
                                 meta_name(kcp), meta_name(ms->oldest_outdated));
                        condition_set(kcp, "MachinesSpecUpToDate", COND_FALSE, "RollingUpdate",
                                      SEVERITY_INFO,
                                      "rolling out: %zu machine(s) to replace; no spare host, so "
                                      "an old one leaves before a new one joins",
                                      ms->outdated);
                        return scale_down(m, kcp, ms->oldest_outdated);
                } else
                        condition_set(kcp, "MachinesSpecUpToDate", COND_FALSE,
                                      "WaitingForSpareHost", SEVERITY_WARNING,
                                      "%zu machine(s) to replace, but no Available host matches "
                                      "the machine template, and removing one first needs 3 "
                                      "replicas: add a host, or upgrade in place "
                                      "(annotation " ANNOTATION_UPGRADE_STRATEGY "=InPlace)",
                                      ms->outdated);
                return 0;
        }
        if (ms->to_upgrade > 0 || ms->upgrading > 0) {
                if (ms->upgrade_failed) {
                        condition_set(
                                kcp, "MachinesSpecUpToDate", COND_FALSE, "InPlaceUpgradeFailed",
                                SEVERITY_ERROR, "the upgrade stopped: machine %s: %s",
                                meta_name(ms->upgrade_failed),
                                strna(condition_message(ms->upgrade_failed, "InPlaceUpgraded")));
                        return 0;
                }
                if (ms->upgrading == 0 && settled && ms->oldest_to_upgrade) {
                        const char *version = obj_get_str(kcp, "spec.version");
                        _cleanup_(obj_freep) Obj *mc = obj_dup(ms->oldest_to_upgrade);
                        if (!mc)
                                return -ENOMEM;
                        log_info("Control plane %s: upgrading machine %s in place to %s.",
                                 meta_name(kcp), meta_name(mc), version);
                        r = machine_request_upgrade(m, mc, version);
                        if (r < 0)
                                return r;
                }
                condition_set(kcp, "MachinesSpecUpToDate", COND_FALSE, "UpgradingInPlace",
                              SEVERITY_INFO,
                              "upgrading in place, one machine at a time: %zu of "
                              "%zu up to date",
                              ms->updated, live);
                return 0;
        }
        if (ms->stale_kubelet)
                condition_set(kcp, "MachinesSpecUpToDate", COND_FALSE, "KubeletVersionMismatch",
                              SEVERITY_WARNING, "machine %s: %s", meta_name(ms->stale_kubelet),
                              strna(condition_message(ms->stale_kubelet, "KubeletUpToDate")));
        else
                condition_set_true(kcp, "MachinesSpecUpToDate");
        return 0;
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
        _cleanup_free_ char *lowest_version = ms.lowest_version;
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
        r = cluster_own_template(m, cluster, obj_get(kcp, "spec.machineTemplate.infrastructureRef"),
                                 ns);
        if (r < 0)
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
                bool settled = ms.provisioning == 0 && ms.deleting == 0;
                if ((int64_t)live < replicas) {
                        /* One at a time: a new member only when every existing one is ready
                         * (etcd quorum), and joins only after the first has initialised. */
                        if (settled && live > 0 && initialized) {
                                /* A join: kubeadm-config first. */
                                r = sync_kubeadm_config(m, kcp, meta_name(cluster),
                                                        "MachinesCreated");
                                if (r < 0)
                                        return r;
                                settled = r > 0;
                        }
                        if (settled && (live == 0 || initialized)) {
                                r = create_cp_machine(m, kcp, cluster, live == 0);
                                if (r == -ENOENT)
                                        condition_set(
                                                kcp, "MachinesCreated", COND_FALSE,
                                                "InfrastructureTemplateNotFound", SEVERITY_ERROR,
                                                "AnvilMachineTemplate %s not found",
                                                strna(obj_get_str(kcp, "spec.machineTemplate."
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
                        /* A rollout's surplus member goes first: the oldest outdated one. */
                        const Obj *victim = ms.oldest_outdated ?: ms.oldest;
                        if (settled && victim && live > 1) {
                                r = scale_down(m, kcp, victim);
                                if (r < 0)
                                        return r;
                        }
                } else {
                        condition_set_true(kcp, "Resized");
                        r = rollout_and_remediate(m, kcp, cluster, &ms, live, replicas, settled);
                        if (r < 0)
                                return r;
                }
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
        /* The lowest version a control plane machine runs or is asked to run, as Cluster API
         * reports it. */
        if (lowest_version && (r = obj_set_str(kcp, "status.version", lowest_version)) < 0)
                return r;
        if (ms.ready > 0 && ms.ready == obj_len(machines))
                condition_set_true(kcp, "MachinesReady");
        else
                condition_set(kcp, "MachinesReady", COND_FALSE, "WaitingForMachines", SEVERITY_INFO,
                              "%zu of %zu machines ready", ms.ready, obj_len(machines));
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
