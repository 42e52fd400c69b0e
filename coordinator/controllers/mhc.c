/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MachineHealthCheck: judges the Machines its selector picks in its cluster, as Cluster API's
 * MHC controller does, and asks their owners to remediate the unhealthy ones.
 *
 * A Machine is unhealthy when
 *  - it has a failureReason/failureMessage;
 *  - it never got a node within nodeStartupTimeout (counted from its creation, or from the
 *    moment the control plane was initialised if that is later; "0" disables it);
 *  - a node condition of unhealthyConditions has held its status for longer than its timeout.
 *    The conditions are those the host's agent reads from the Node; a host whose agent is not
 *    heard from (Host Unreachable: missed heartbeats) has its node's Ready condition taken as
 *    Unknown since the moment it became unreachable, as Kubernetes' node lifecycle controller
 *    does with a kubelet that stops posting status — `Ready Unknown 5m` covers a dead host;
 *  - a systemd unit the agent reports (status.health.units: kubelet, containerd) is "failed".
 *
 * Unhealthy machines get HealthCheckSucceeded=False; when remediation is allowed also
 * OwnerRemediated=False, and the owner replaces them (MachineSet: delete and recreate;
 * KubeadmControlPlane: one at a time, quorum kept, never the last). Remediation is allowed
 * while the unhealthy count is within maxUnhealthy (int or percentage of the targets, rounded
 * down) or inside unhealthyRange "[min-max]"; otherwise nothing is remediated and the
 * condition RemediationAllowed=False says why, with the counts.
 *
 * No false positives after a coordinator outage: a machine whose host has not been heard
 * from since this coordinator started is not judged at all until the coordinator has been up
 * for the startup grace (heartbeat grace + the agents' longest reconnect interval: the host
 * may simply not have reconnected yet); after that an unreachable host counts from the
 * moment it was marked unreachable, which is never earlier than the end of that grace.
 *
 * Expected load: one reconcile per MHC when a Machine changes and at the next deadline (at
 * most every 10 s); a list of the cluster's machines and a Host read per target each time.
 */
#include <time.h>

#include "controllers.h"
#include "fanout.h"
#include "log.h"
#include "resource.h"
#include "rollout.h"

extern const KindInfo kind_machinehealthcheck, kind_machine, kind_host, kind_cluster;

#define MHC_RESYNC_USEC (10 * USEC_PER_SEC)

typedef struct Verdict {
        bool unhealthy;
        bool unknown; /* not judged (the coordinator has just started) */
        char reason[64];
        char message[512];
} Verdict;

static void keep_earliest(uint64_t *next, int64_t in_usec) {
        uint64_t v = in_usec > 0 ? (uint64_t)in_usec : USEC_PER_SEC;
        if (!*next || v < *next)
                *next = v;
}

/* The node's conditions as the agent reported them, with Ready replaced by Unknown while the
 * host is unreachable. Returns a new list. */
static Obj *node_conditions(const Obj *host) {
        Obj *l = obj_dup(obj_get(host, "status.nodeConditions")) ?: obj_new_list();
        if (!l || obj_get_bool(host, "status.connected", false))
                return l;
        const Obj *c = condition_get(host, "Connected");
        const char *since = obj_get_str(c, "lastTransitionTime");
        _cleanup_(obj_freep) Obj *ready = obj_new_map();
        if (!ready || obj_map_set_str(ready, "type", "Ready") < 0 ||
            obj_map_set_str(ready, "status", "Unknown") < 0 ||
            obj_map_set_str(ready, "reason", "NodeStatusUnknown") < 0 ||
            (since && obj_map_set_str(ready, "lastTransitionTime", since) < 0))
                return obj_free(l);
        for (size_t i = 0; i < l->list.n; i++)
                if (streq_ptr(obj_get_str(l->list.items[i], "type"), "Ready")) {
                        obj_free(l->list.items[i]);
                        l->list.items[i] = TAKE_PTR(ready);
                        return l;
                }
        if (obj_list_append(l, TAKE_PTR(ready)) < 0)
                return obj_free(l);
        return l;
}

static void judge(Manager *m, const Obj *mhc, const Obj *cluster, const Obj *machine,
                  const Obj *host, uint64_t *next, Verdict *v) {
        int64_t now = (int64_t)now_usec(CLOCK_REALTIME);
        *v = (Verdict){0};
        if (obj_get_str(machine, "status.failureReason") ||
            obj_get_str(machine, "status.failureMessage")) {
                v->unhealthy = true;
                snprintf(v->reason, sizeof(v->reason), "MachineHasFailure");
                snprintf(v->message, sizeof(v->message), "%s: %s",
                         strna(obj_get_str(machine, "status.failureReason")),
                         strna(obj_get_str(machine, "status.failureMessage")));
                return;
        }
        /* Just started, and this host not heard from yet: no verdict. */
        uint64_t mono = now_usec(CLOCK_MONOTONIC);
        uint64_t grace = fanout_startup_grace_usec(m->fanout);
        if (host && fanout_host_last_seen(m->fanout, meta_name(host)) == 0 &&
            mono < m->started_usec + grace) {
                v->unknown = true;
                keep_earliest(next,
                              (int64_t)(m->started_usec + grace - mono) + (int64_t)USEC_PER_SEC);
                return;
        }

        const char *node = obj_get_str(machine, "status.nodeRef.name");
        if (!node) {
                uint64_t timeout =
                        duration_field(mhc, "spec.nodeStartupTimeout", 600 * USEC_PER_SEC);
                const Obj *cpi = condition_get(cluster, "ControlPlaneInitialized");
                if (timeout == 0 || !streq_ptr(obj_get_str(cpi, "status"), COND_TRUE))
                        return;
                int64_t start = 0, t;
                (void)parse_rfc3339(obj_get_str(machine, "metadata.creationTimestamp"), &start);
                if (parse_rfc3339(obj_get_str(cpi, "lastTransitionTime"), &t) >= 0 && t > start)
                        start = t;
                int64_t left = start + (int64_t)timeout - now;
                if (left <= 0) {
                        v->unhealthy = true;
                        snprintf(v->reason, sizeof(v->reason), "NodeStartupTimeout");
                        snprintf(v->message, sizeof(v->message),
                                 "the machine has no node after nodeStartupTimeout (%s)",
                                 strna(obj_get_str(mhc, "spec.nodeStartupTimeout")));
                } else
                        keep_earliest(next, left);
                return;
        }

        _cleanup_(obj_freep) Obj *conds = node_conditions(host);
        OBJ_LIST_FOREACH(uc, obj_get(mhc, "spec.unhealthyConditions"), i) {
                const char *type = obj_get_str(uc, "type"), *status = obj_get_str(uc, "status");
                uint64_t timeout = duration_field(uc, "timeout", 0);
                OBJ_LIST_FOREACH(nc, conds, j) {
                        if (!streq_ptr(obj_get_str(nc, "type"), type) ||
                            !streq_ptr(obj_get_str(nc, "status"), status))
                                continue;
                        int64_t since;
                        if (parse_rfc3339(obj_get_str(nc, "lastTransitionTime"), &since) < 0)
                                since = now;
                        int64_t left = since + (int64_t)timeout - now;
                        if (left <= 0) {
                                v->unhealthy = true;
                                snprintf(v->reason, sizeof(v->reason), "UnhealthyNode");
                                snprintf(v->message, sizeof(v->message),
                                         "condition %s on node %s has been %s for more than %s%s",
                                         type, node, status, strna(obj_get_str(uc, "timeout")),
                                         host && !obj_get_bool(host, "status.connected", false)
                                                 ? " (the host's agent is not heard from)"
                                                 : "");
                                return;
                        }
                        keep_earliest(next, left);
                }
        }

        const Obj *units = obj_get(host, "status.health.units");
        OBJ_MAP_FOREACH(u, units) {
                if (streq_ptr(obj_get_str(u->value, "activeState"), "failed")) {
                        v->unhealthy = true;
                        snprintf(v->reason, sizeof(v->reason), "UnitFailed");
                        snprintf(v->message, sizeof(v->message),
                                 "%s on host %s is failed (result %s)", u->key, meta_name(host),
                                 strna(obj_get_str(u->value, "result")));
                        return;
                }
        }
}

/* maxUnhealthy / unhealthyRange: may the owners remediate n unhealthy of total? */
static bool remediation_allowed(const Obj *mhc, int64_t total, int64_t unhealthy,
                                int64_t *ret_allowed_more, char *limit, size_t limitsz) {
        const char *range = obj_get_str(mhc, "spec.unhealthyRange");
        unsigned lo, hi;
        if (range && sscanf(range, "[%u-%u]", &lo, &hi) == 2) {
                snprintf(limit, limitsz, "unhealthyRange: %s", range);
                bool ok = unhealthy >= (int64_t)lo && unhealthy <= (int64_t)hi;
                *ret_allowed_more = ok ? (int64_t)hi - unhealthy : 0;
                return ok;
        }
        const Obj *mu = obj_get(mhc, "spec.maxUnhealthy");
        int64_t max = total;
        if (rollout_scaled_value(mu, total, false, total, &max) < 0)
                max = total;
        if (obj_is(mu, OBJ_INT))
                snprintf(limit, limitsz, "maxUnhealthy: %lld", (long long)mu->i);
        else
                snprintf(limit, limitsz, "maxUnhealthy: %s", obj_str(mu) ?: "100%");
        *ret_allowed_more = max - unhealthy > 0 ? max - unhealthy : 0;
        return unhealthy <= max;
}

typedef struct Target {
        Obj *machine; /* borrowed */
        Verdict v;
} Target;

int reconcile_mhc(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *mhc = NULL;
        int r = registry_get(m->reg, &kind_machinehealthcheck, ns, name, &mhc);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (meta_deleting(mhc))
                return 0;
        _cleanup_(obj_freep) Obj *orig = obj_dup(mhc);
        if (!orig)
                return -ENOMEM;
        const char *cluster_name = obj_get_str(mhc, "spec.clusterName");
        LOG_FIELD_SCOPE(LOG_FIELD_CLUSTER, cluster_name);
        _cleanup_(obj_freep) Obj *cluster = NULL;
        r = registry_get(m->reg, &kind_cluster, ns, strempty(cluster_name), &cluster);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (cluster_paused(cluster, mhc) || meta_deleting(cluster))
                return 0;
        if ((r = meta_add_owner_ref(mhc, cluster, false)) < 0 ||
            (r = meta_set_label(mhc, LABEL_CLUSTER_NAME, cluster_name)) < 0)
                return r;

        _cleanup_(obj_freep) Obj *all = NULL;
        r = registry_list_all(m->reg, &kind_machine, ns, obj_get(mhc, "spec.selector"), &all);
        if (r < 0)
                return r;
        _cleanup_free_ Target *targets = calloc(obj_len(all) + 1, sizeof(Target));
        if (!targets)
                return -ENOMEM;
        size_t n = 0;
        int64_t unhealthy = 0;
        uint64_t next = 0;
        _cleanup_(obj_freep) Obj *names = obj_new_list();
        if (!names)
                return -ENOMEM;
        OBJ_LIST_FOREACH(mc, all, i) {
                if (meta_deleting(mc) ||
                    !streq_ptr(obj_get_str(mc, "spec.clusterName"), cluster_name))
                        continue;
                Target *t = &targets[n++];
                t->machine = mc;
                _cleanup_free_ char *hn = machine_host_name(m, mc);
                _cleanup_(obj_freep) Obj *host = NULL;
                if (hn && registry_get(m->reg, &kind_host, NULL, hn, &host) < 0)
                        host = NULL;
                judge(m, mhc, cluster, mc, host, &next, &t->v);
                if (t->v.unhealthy)
                        unhealthy++;
                if ((r = obj_list_append(names, obj_new_str(meta_name(mc)))) < 0)
                        return r;
        }

        int64_t more = 0;
        char limit[128];
        bool allowed = remediation_allowed(mhc, (int64_t)n, unhealthy, &more, limit, sizeof(limit));
        for (size_t i = 0; i < n; i++) {
                Target *t = &targets[i];
                if (t->v.unknown)
                        continue;
                _cleanup_(obj_freep) Obj *before = obj_dup(t->machine);
                Obj *mc = t->machine;
                if (!before)
                        return -ENOMEM;
                if (!t->v.unhealthy) {
                        condition_set_true(mc, "HealthCheckSucceeded");
                        /* Recovered before its owner acted: nothing to remediate any more. */
                        Obj *conds = obj_get(mc, "status.conditions");
                        for (size_t k = 0; conds && k < conds->list.n; k++)
                                if (streq_ptr(obj_get_str(conds->list.items[k], "type"),
                                              "OwnerRemediated")) {
                                        obj_free(conds->list.items[k]);
                                        memmove(conds->list.items + k, conds->list.items + k + 1,
                                                (conds->list.n - k - 1) * sizeof(Obj *));
                                        conds->list.n--;
                                        break;
                                }
                } else {
                        if (condition_is_true(mc, "HealthCheckSucceeded") ||
                            !condition_get(mc, "HealthCheckSucceeded"))
                                log_warning("Machine %s is unhealthy (%s): %s.", meta_name(mc),
                                            t->v.reason, t->v.message);
                        condition_set(mc, "HealthCheckSucceeded", COND_FALSE, t->v.reason,
                                      SEVERITY_WARNING, "%s", t->v.message);
                        if (allowed && !condition_get(mc, "OwnerRemediated")) {
                                log_info("MachineHealthCheck %s: asking the owner of %s to "
                                         "remediate it.",
                                         name, meta_name(mc));
                                manager_event(m, mc, "Normal", "MachineMarkedUnhealthy",
                                              "Machine marked unhealthy by MachineHealthCheck "
                                              "%s: %s",
                                              name, t->v.message);
                                condition_set(mc, "OwnerRemediated", COND_FALSE,
                                              "WaitingForRemediation", SEVERITY_WARNING,
                                              "the owner will remediate the machine");
                        }
                }
                r = patch_save(m->reg, before, mc);
                if (r < 0)
                        return r;
        }

        if ((r = obj_set_int(mhc, "status.expectedMachines", (int64_t)n)) < 0 ||
            (r = obj_set_int(mhc, "status.currentHealthy", (int64_t)n - unhealthy)) < 0 ||
            (r = obj_set_int(mhc, "status.remediationsAllowed", more)) < 0 ||
            (r = obj_set(mhc, "status.targets", TAKE_PTR(names))) < 0 ||
            (r = obj_set_int(mhc, "status.observedGeneration", meta_generation(mhc))) < 0)
                return r;
        if (allowed)
                condition_set_true(mhc, "RemediationAllowed");
        else {
                /* Upstream's quirk kept: with no unhealthy machine below an unhealthyRange's
                 * minimum the condition is False too, but nothing is being held back. */
                if (unhealthy > 0 && (condition_is_true(mhc, "RemediationAllowed") ||
                                      !condition_get(mhc, "RemediationAllowed")))
                        log_warning("MachineHealthCheck %s: %lld of %zu machines are unhealthy, "
                                    "more than %s allows: remediating none.",
                                    name, (long long)unhealthy, n, limit);
                condition_set(mhc, "RemediationAllowed", COND_FALSE, "TooManyUnhealthy",
                              SEVERITY_WARNING,
                              "Remediation is not allowed, the number of not started or unhealthy "
                              "machines exceeds %s (total: %zu, unhealthy: %lld)",
                              limit, n, (long long)unhealthy);
        }
        r = patch_save(m->reg, orig, mhc);
        if (r < 0)
                return r;
        return (int)(next && next < MHC_RESYNC_USEC ? next : MHC_RESYNC_USEC);
}
