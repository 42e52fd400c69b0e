/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-place upgrade of one Machine, for fleets without spare hosts: the Machine keeps its
 * host and its node, and goes through
 *
 *   Cordon    kubectl cordon NODE            (a command, run by a control plane host)
 *   Drain     kubectl drain NODE ...         (a command; spec.nodeDrainTimeout is honoured)
 *   Upgrade   the host's upgrade plan        (Host spec.upgrade: upgrade-commands, kubeadm
 *                                             upgrade apply|node, kubelet restart, node check)
 *   Uncordon  kubectl uncordon NODE          (a command)
 *   Done
 *
 * or Failed, where it stays (the owner's rollout stops there) until the operator annotates
 * the Machine anvil.dev/retry-upgrade: the host plan then runs again as a new attempt.
 *
 * It starts when spec.version differs from the version the host runs (Host
 * spec.machine.version): owners set spec.version one machine at a time (KubeadmControlPlane)
 * or within maxUnavailable (MachineDeployment). The state lives in status.inPlaceUpgrade
 * {version, from, mode, phase, attempt, startedAt, failure}, so a coordinator restart resumes
 * it: commands are asked again (they are idempotent), the host plan is persisted on the host.
 *
 * mode is "apply" for the first control plane machine of the cluster to reach the new version
 * (kubeadm upgrade apply upgrades the cluster's control plane configuration), "node" for every
 * other machine. Expected load: one pass per machine per upgrade.
 */
#include <time.h>

#include "commands.h"
#include "controllers.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_host, kind_kubeadmcontrolplane, kind_machine;

int k8s_version_cmp(const char *a, const char *b, int *ret) {
        K8sVersion va, vb;
        if (!a || !b || parse_k8s_version(a, &va) < 0 || parse_k8s_version(b, &vb) < 0)
                return -EINVAL;
        int c = va.major != vb.major   ? (va.major < vb.major ? -1 : 1)
                : va.minor != vb.minor ? (va.minor < vb.minor ? -1 : 1)
                : va.patch != vb.patch ? (va.patch < vb.patch ? -1 : 1)
                                       : 0;
        *ret = c;
        return 0;
}

bool machine_upgrading(const Obj *machine) {
        const char *phase = obj_get_str(machine, "status.inPlaceUpgrade.phase");
        return (phase && !streq(phase, "Done")) ||
               meta_annotation(machine, ANNOTATION_UPGRADE_PENDING);
}

int machine_request_upgrade(Manager *m, Obj *machine, const char *version) {
        int r;
        if ((r = obj_set_str(machine, "spec.version", version)) < 0 ||
            (r = meta_set_annotation(machine, ANNOTATION_UPGRADE_PENDING, version)) < 0)
                return r;
        return registry_update(m->reg, machine);
}

bool machine_upgrade_failed(const Obj *machine) {
        return streq_ptr(obj_get_str(machine, "status.inPlaceUpgrade.phase"), "Failed");
}

/* The agent's reported state is about the host's current desired generation: it has
 * acknowledged it, and its last state report is about it too. An ACK is sent before the
 * STATUS of the plan it starts and may be processed first; until then the state is the
 * previous plan's (a failed attempt's "Failed" must not count against its retry). A store
 * written before agentGeneration existed falls back to the ACK alone. */
bool host_agent_current(const Obj *host) {
        int64_t og = 0, ag = 0;
        obj_get_int(host, "status.observedGeneration", &og);
        if (og < meta_generation(host))
                return false;
        return !obj_get_int(host, "status.agentGeneration", &ag) || ag >= meta_generation(host);
}

const char *host_machine_version(const Obj *host) {
        return obj_get_str(host, "spec.machine.version");
}

/* ---- the control plane's version ---- */

typedef struct CpCtx {
        const char *ns, *cluster, *exclude;
        const char *want; /* for choose_mode(): the version looked for */
        char *lowest;
        bool found_want;
        bool upgrading; /* a control plane host is in (or failed) an in-place upgrade */
} CpCtx;

static int cp_cb(Obj *host, void *userdata) {
        CpCtx *c = userdata;
        const Obj *mach = obj_get(host, "spec.machine");
        if (!obj_get(host, "spec.consumerRef") ||
            !streq_ptr(obj_get_str(mach, "cluster"), c->cluster) ||
            !streq_ptr(obj_get_str(mach, "namespace"), c->ns) ||
            !streq_ptr(obj_get_str(mach, "role"), "control-plane"))
                return 0;
        if (c->exclude && streq_ptr(meta_name(host), c->exclude))
                return 0;
        const char *v = obj_get_str(mach, "version");
        if (!v)
                return 0;
        if (obj_get(host, "spec.upgrade") &&
            !(host_agent_current(host) &&
              streq_ptr(obj_get_str(host, "status.agentAction"), "Upgrade") &&
              streq_ptr(obj_get_str(host, "status.agentState"), "Provisioned")))
                c->upgrading = true;
        if (c->want && streq(v, c->want))
                c->found_want = true;
        int cmp;
        if (!c->lowest || (k8s_version_cmp(v, c->lowest, &cmp) >= 0 && cmp < 0)) {
                char *d = strdup(v);
                if (!d)
                        return -ENOMEM;
                free(c->lowest);
                c->lowest = d;
        }
        return 0;
}

int control_plane_version(Manager *m, const char *ns, const char *cluster, char **ret) {
        CpCtx c = {.ns = ns, .cluster = cluster};
        int r = registry_list(m->reg, &kind_host, NULL, cp_cb, &c);
        if (r < 0) {
                free(c.lowest);
                return r;
        }
        if (c.upgrading) {
                free(c.lowest);
                return -EBUSY;
        }
        if (!c.lowest)
                return -ENOENT;
        *ret = c.lowest;
        return 0;
}

/* "apply" when no other control plane host of the cluster runs the target version yet. */
static const char *choose_mode(Manager *m, const Obj *machine, const char *own_host,
                               const char *version) {
        if (!meta_label(machine, LABEL_CONTROL_PLANE))
                return "node";
        CpCtx c = {.ns = meta_namespace(machine),
                   .cluster = obj_get_str(machine, "spec.clusterName"),
                   .exclude = own_host,
                   .want = version};
        int r = registry_list(m->reg, &kind_host, NULL, cp_cb, &c);
        free(c.lowest);
        return r >= 0 && c.found_want ? "node" : "apply";
}

/* ---- the sequence ---- */

static int set_phase(Obj *machine, const char *phase) {
        return obj_set_str(machine, "status.inPlaceUpgrade.phase", phase);
}

typedef enum Chore {
        CHORE_DONE,
        CHORE_WAITING,
        CHORE_FAILED,
} Chore;

/* One cluster command for this machine's node, on a provisioned control plane host. info
 * gets where it runs (pending) or its output (failed). */
static Chore node_command(Manager *m, Obj *machine, const char *command, const char *node,
                          uint64_t timeout_secs, char *info, size_t infosz, int *ret_code) {
        _cleanup_free_ char *cp = NULL;
        *ret_code = 0;
        if (pick_control_plane_host(m, meta_namespace(machine),
                                    obj_get_str(machine, "spec.clusterName"), NULL, &cp) < 0) {
                snprintf(info, infosz, "no provisioned, connected control plane host to run it");
                return CHORE_WAITING;
        }
        const char *version = obj_get_str(machine, "status.inPlaceUpgrade.version");
        int64_t attempt = 0;
        obj_get_int(machine, "status.inPlaceUpgrade.attempt", &attempt);
        char id[160];
        snprintf(id, sizeof(id), "%s-%.40s-%s-%lld", command, strempty(meta_uid(machine)),
                 strempty(version), (long long)attempt);
        _cleanup_free_ char *key = object_key(machine);
        _cleanup_(obj_freep) Obj *args = obj_new_map();
        char secs[32];
        snprintf(secs, sizeof(secs), "%llu", (unsigned long long)timeout_secs);
        if (!key || !args || obj_map_set_str(args, "node", node) < 0 ||
            (streq(command, "drain-node") && obj_map_set_str(args, "timeoutSeconds", secs) < 0))
                return CHORE_WAITING;
        const char *out = NULL;
        switch (command_run(m->commands, id, cp, command, args, key,
                            (timeout_secs + 60) * USEC_PER_SEC, ret_code, &out)) {
        case COMMAND_SUCCEEDED:
                command_forget(m->commands, id);
                return CHORE_DONE;
        case COMMAND_FAILED:
                snprintf(info, infosz, "%s", strna(out));
                command_forget(m->commands, id);
                return CHORE_FAILED;
        default:
                snprintf(info, infosz, "on %s", cp);
                return CHORE_WAITING;
        }
}

static int chore_condition(Obj *machine, const char *reason, const char *verb, const char *node,
                           Chore c, const char *info, int code) {
        if (c == CHORE_FAILED)
                return condition_set(machine, "InPlaceUpgraded", COND_FALSE, reason,
                                     SEVERITY_WARNING, "%s node %s failed (exit %d), retrying: %s",
                                     verb, node, code, info);
        return condition_set(machine, "InPlaceUpgraded", COND_FALSE, reason, SEVERITY_INFO,
                             "%s node %s (%s)", verb, node, info);
}

/* Writes the upgrade into the Host's desired state (once per attempt). */
static int ask_host(Manager *m, const Obj *machine, const char *host_name) {
        _cleanup_(obj_freep) Obj *host = NULL;
        int r = registry_get(m->reg, &kind_host, NULL, host_name, &host);
        if (r < 0)
                return r;
        const char *version = obj_get_str(machine, "status.inPlaceUpgrade.version");
        const char *mode = obj_get_str(machine, "status.inPlaceUpgrade.mode");
        int64_t attempt = 0;
        obj_get_int(machine, "status.inPlaceUpgrade.attempt", &attempt);
        _cleanup_(obj_freep) Obj *up = obj_new_map();
        if (!up || obj_map_set_str(up, "version", version) < 0 ||
            obj_map_set_str(up, "mode", mode) < 0 || obj_map_set_int(up, "attempt", attempt) < 0)
                return -ENOMEM;
        if (obj_equal(obj_get(host, "spec.upgrade"), up) &&
            streq_ptr(host_machine_version(host), version))
                return 0;
        if ((r = obj_set(host, "spec.upgrade", TAKE_PTR(up))) < 0 ||
            (r = obj_set_str(host, "spec.machine.version", version)) < 0)
                return r;
        r = registry_update(m->reg, host);
        if (r < 0)
                return r;
        log_info("Machine %s: host %s asked to upgrade to %s (kubeadm upgrade %s, attempt %lld).",
                 meta_name(machine), host_name, version, mode, (long long)attempt);
        return 0;
}

int machine_inplace_reconcile(Manager *m, Obj *machine, const Obj *host) {
        const char *want = obj_get_str(machine, "spec.version");
        const char *have = host_machine_version(host);
        const char *phase = obj_get_str(machine, "status.inPlaceUpgrade.phase");
        const char *node = obj_get_str(machine, "status.nodeRef.name");
        char ts[32];
        int r;

        if (!phase || streq(phase, "Done")) {
                if (!want || !have || streq(want, have) ||
                    streq_ptr(obj_get_str(machine, "status.inPlaceUpgrade.version"), want)) {
                        /* Nothing to do (any more): an owner's request is answered. */
                        obj_map_del(obj_get(machine, "metadata.annotations"),
                                    ANNOTATION_UPGRADE_PENDING);
                        return 0;
                }
                if (!node || !streq_ptr(obj_get_str(machine, "status.phase"), "Running"))
                        return 0; /* not provisioned yet: nothing to upgrade in place */
                const char *mode = choose_mode(m, machine, meta_name(host), want);
                _cleanup_(obj_freep) Obj *st = obj_new_map();
                if (!st || obj_map_set_str(st, "version", want) < 0 ||
                    obj_map_set_str(st, "from", have) < 0 ||
                    obj_map_set_str(st, "mode", mode) < 0 ||
                    obj_map_set_str(st, "phase", "Cordon") < 0 ||
                    obj_map_set_int(st, "attempt", 0) < 0 ||
                    obj_map_set_str(st, "startedAt", now_rfc3339(ts)) < 0)
                        return -ENOMEM;
                if ((r = obj_set(machine, "status.inPlaceUpgrade", TAKE_PTR(st))) < 0)
                        return r;
                obj_map_del(obj_get(machine, "metadata.annotations"), ANNOTATION_UPGRADE_PENDING);
                log_info("Machine %s: upgrading in place from %s to %s (kubeadm upgrade %s).",
                         meta_name(machine), have, want, mode);
                manager_event(m, machine, "Normal", "InPlaceUpgradeStarted",
                              "Upgrading in place from %s to %s", have, want);
                phase = "Cordon";
        }
        const char *version = obj_get_str(machine, "status.inPlaceUpgrade.version");
        if (!node)
                return condition_set(machine, "InPlaceUpgraded", COND_FALSE, "WaitingForNodeRef",
                                     SEVERITY_WARNING, "the machine has no node to upgrade");

        if (streq(phase, "Failed")) {
                if (!meta_annotation(machine, ANNOTATION_RETRY_UPGRADE))
                        return 0;
                int64_t attempt = 0;
                obj_get_int(machine, "status.inPlaceUpgrade.attempt", &attempt);
                obj_del(machine, "status.inPlaceUpgrade.failure");
                if ((r = obj_set_int(machine, "status.inPlaceUpgrade.attempt", attempt + 1)) < 0 ||
                    (r = set_phase(machine, "Upgrade")) < 0)
                        return r;
                obj_map_del(obj_get(machine, "metadata.annotations"), ANNOTATION_RETRY_UPGRADE);
                log_info("Machine %s: retrying the in-place upgrade to %s (attempt %lld).",
                         meta_name(machine), strna(version), (long long)attempt + 1);
                phase = "Upgrade";
        }

        char info[512];
        int code = 0;
        if (streq(phase, "Cordon")) {
                Chore c = node_command(m, machine, "cordon-node", node, 60, info, sizeof(info),
                                       &code);
                if (c != CHORE_DONE)
                        return chore_condition(machine, "Cordoning", "cordoning", node, c, info,
                                               code);
                if ((r = set_phase(machine, "Drain")) < 0 ||
                    (r = obj_set_str(machine, "status.inPlaceUpgrade.drainStartedAt",
                                     now_rfc3339(ts))) < 0)
                        return r;
                phase = "Drain";
        }
        if (streq(phase, "Drain")) {
                int64_t started = 0;
                (void)parse_rfc3339(obj_get_str(machine, "status.inPlaceUpgrade.drainStartedAt"),
                                    &started);
                uint64_t timeout = duration_field(machine, "spec.nodeDrainTimeout", 0);
                uint64_t elapsed = (uint64_t)((int64_t)now_usec(CLOCK_REALTIME) - started);
                Chore c = CHORE_DONE;
                if (timeout > 0 && elapsed > timeout)
                        log_warning("Machine %s: draining node %s took longer than "
                                    "nodeDrainTimeout; upgrading anyway.",
                                    meta_name(machine), node);
                else
                        c = node_command(m, machine, "drain-node", node,
                                         timeout > 0 ? (timeout - elapsed) / USEC_PER_SEC + 1 : 300,
                                         info, sizeof(info), &code);
                if (c != CHORE_DONE)
                        return chore_condition(machine, "Draining", "draining", node, c, info,
                                               code);
                if ((r = set_phase(machine, "Upgrade")) < 0)
                        return r;
                phase = "Upgrade";
        }
        if (streq(phase, "Upgrade")) {
                r = ask_host(m, machine, meta_name(host));
                if (r < 0)
                        return r;
                /* The host object we were given may predate ask_host(): look at the stored one. */
                _cleanup_(obj_freep) Obj *h = NULL;
                if ((r = registry_get(m->reg, &kind_host, NULL, meta_name(host), &h)) < 0)
                        return r;
                bool current = host_agent_current(h);
                const char *state = obj_get_str(h, "status.agentState");
                const char *action = obj_get_str(h, "status.agentAction");
                if (current && streq_ptr(action, "Upgrade") && streq_ptr(state, "Failed")) {
                        const Obj *err = obj_get(h, "status.lastError");
                        int64_t exit_code = -1;
                        obj_get_int(err, "exitCode", &exit_code);
                        if ((r = set_phase(machine, "Failed")) < 0 ||
                            (r = obj_set(machine, "status.inPlaceUpgrade.failure",
                                         obj_dup(err) ?: obj_new_map())) < 0)
                                return r;
                        log_error("Machine %s: the in-place upgrade to %s failed on host %s at "
                                  "step %s (exit %lld): %s",
                                  meta_name(machine), strna(version), meta_name(h),
                                  strna(obj_get_str(err, "step")), (long long)exit_code,
                                  strna(obj_get_str(err, "message")));
                        manager_event(m, machine, "Warning", "InPlaceUpgradeFailed",
                                      "step %s failed on host %s (exit %lld)",
                                      strna(obj_get_str(err, "step")), meta_name(h),
                                      (long long)exit_code);
                        return condition_set(
                                machine, "InPlaceUpgraded", COND_FALSE, "UpgradeFailed",
                                SEVERITY_ERROR,
                                "step %s failed on host %s (exit %lld): %s; fix it, then "
                                "anvilctl annotate machine %s " ANNOTATION_RETRY_UPGRADE "=1",
                                strna(obj_get_str(err, "step")), meta_name(h), (long long)exit_code,
                                strna(obj_get_str(err, "message")), meta_name(machine));
                }
                if (!(current && streq_ptr(action, "Upgrade") && streq_ptr(state, "Provisioned"))) {
                        const Obj *step = obj_get(h, "status.step");
                        if (current && step && streq_ptr(state, "Upgrading"))
                                return condition_set(
                                        machine, "InPlaceUpgraded", COND_FALSE, "Upgrading",
                                        SEVERITY_INFO, "host %s: step %lld/%lld %s (to %s)",
                                        meta_name(h),
                                        (long long)(obj_get(step, "index")
                                                            ? obj_get(step, "index")->i
                                                            : 0),
                                        (long long)(obj_get(step, "total")
                                                            ? obj_get(step, "total")->i
                                                            : 0),
                                        strna(obj_get_str(step, "name")), strna(version));
                        return condition_set(machine, "InPlaceUpgraded", COND_FALSE, "Upgrading",
                                             SEVERITY_INFO, "waiting for host %s to upgrade to %s",
                                             meta_name(h), strna(version));
                }
                if ((r = set_phase(machine, "Uncordon")) < 0)
                        return r;
                phase = "Uncordon";
        }
        if (streq(phase, "Uncordon")) {
                Chore c = node_command(m, machine, "uncordon-node", node, 60, info, sizeof(info),
                                       &code);
                if (c != CHORE_DONE)
                        return chore_condition(machine, "Uncordoning", "uncordoning", node, c, info,
                                               code);
                if ((r = set_phase(machine, "Done")) < 0 ||
                    (r = obj_set_str(machine, "status.inPlaceUpgrade.finishedAt",
                                     now_rfc3339(ts))) < 0)
                        return r;
                log_info("Machine %s: upgraded in place to %s.", meta_name(machine),
                         strna(version));
                manager_event(m, machine, "Normal", "InPlaceUpgraded", "Upgraded in place to %s",
                              strna(version));
        }
        return condition_set_true(machine, "InPlaceUpgraded");
}
