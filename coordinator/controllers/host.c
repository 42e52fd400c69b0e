/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host: derives the phase an operator sees in `anvilctl get hosts` from what the Host is
 * asked to do (spec) and what its agent last said (status):
 *   Available      enrolled, idle, not claimed
 *   Claimed        claimed by a Machine, waiting for its bootstrap data
 *   Provisioning   running the bootstrap steps
 *   Provisioned    the steps of the current generation are done
 *   Upgrading      running an in-place upgrade of its machine (kubeadm upgrade)
 *   Failed         a step failed (status.lastError); the machine's owner decides what next
 *   Deprovisioning resetting (kubeadm reset, cleanup) before going back to the pool
 *   Unreachable    not heard from within the heartbeat grace period
 *   Revoked        its key is refused (set by `anvilctl host revoke`, kept as is)
 */
#include "controllers.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_host;

static const char *compute_phase(const Obj *host) {
        const char *cur = obj_get_str(host, "status.phase");
        if (streq_ptr(cur, "Revoked"))
                return "Revoked";
        if (!obj_get_bool(host, "status.connected", false))
                return "Unreachable";
        const char *action = obj_get_str(host, "spec.action");
        const char *state = obj_get_str(host, "status.agentState");
        bool current = host_agent_current(host);
        if (streq_ptr(action, "Deprovision"))
                return "Deprovisioning";
        if (obj_get(host, "spec.consumerRef")) {
                if (!streq_ptr(action, "Provision"))
                        return "Claimed";
                if (current && streq_ptr(state, "Provisioned"))
                        return "Provisioned";
                if (current && streq_ptr(state, "Upgrading"))
                        return "Upgrading";
                if (current && streq_ptr(state, "Failed"))
                        return "Failed"; /* a step failed: status.lastError says which */
                return "Provisioning";
        }
        if (obj_get_bool(host, "spec.resetRequired", false))
                return "Deprovisioning";
        if (state && !streq(state, "Idle") && current)
                return "Deprovisioning"; /* released, but the agent has not reset yet */
        return "Available";
}

int reconcile_host(Manager *m, const char *ns, const char *name) {
        (void)ns;
        _cleanup_(obj_freep) Obj *host = NULL;
        int r = registry_get(m->reg, &kind_host, NULL, name, &host);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *orig = obj_dup(host);
        if (!orig)
                return -ENOMEM;
        /* A host released while unreachable: once it is back and has reset (the agent is
         * idle at the current generation), it returns to the pool. */
        if (obj_get_bool(host, "spec.resetRequired", false) && !obj_get(host, "spec.consumerRef")) {
                if (!streq_ptr(obj_get_str(host, "spec.action"), "Deprovision")) {
                        if ((r = obj_set_str(host, "spec.action", "Deprovision")) < 0)
                                return r;
                } else if (obj_get_bool(host, "status.connected", false) &&
                           host_agent_current(host) &&
                           streq_ptr(obj_get_str(host, "status.agentState"), "Idle")) {
                        log_event(LOG_INFO, ANVIL_MESSAGE_HOST_RELEASED,
                                  "Host %s reset after it came back; back in the pool.", name);
                        obj_map_del(obj_map_get(host, "spec"), "resetRequired");
                        if ((r = obj_set_str(host, "spec.action", "Idle")) < 0)
                                return r;
                }
        }
        const char *phase = compute_phase(host);
        const char *old = obj_get_str(host, "status.phase");
        if (!streq_ptr(old, phase)) {
                LOG_FIELD_SCOPE(LOG_FIELD_HOST, name);
                log_info("Host %s: %s -> %s.", name, strna(old), phase);
                if ((r = obj_set_str(host, "status.phase", phase)) < 0)
                        return r;
        }
        /* status.claimedBy mirrors spec.consumerRef, so status alone tells who uses it. */
        const Obj *consumer = obj_get(host, "spec.consumerRef");
        if (consumer && !obj_equal(consumer, obj_get(host, "status.claimedBy"))) {
                if ((r = obj_set(host, "status.claimedBy", obj_dup(consumer))) < 0)
                        return r;
        } else if (!consumer)
                obj_del(host, "status.claimedBy");
        if (obj_get_bool(host, "status.connected", false))
                condition_set_true(host, "Connected");
        else
                condition_set(host, "Connected", COND_FALSE, "HeartbeatMissed", SEVERITY_WARNING,
                              "the agent has not been heard from within the grace period");
        r = patch_save(m->reg, orig, host);
        return r < 0 ? r : 0;
}
