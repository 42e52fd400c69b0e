/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AnvilMachine: the bare-metal infrastructure machine. It claims one Available Host that
 * matches its hostSelector (the claim is a single store write preconditioned on the Host's
 * resourceVersion, so two machines can never hold one host), seals the Machine's bootstrap
 * data to that host's key, and asks the host to provision (Host spec: action, machine,
 * bootstrap reference; the fan-out delivers it). It is ready when the host reports the
 * provisioned generation. On deletion it asks the host to reset (kubeadm reset, cleanup) and
 * releases it to the pool only once the agent confirms it.
 */
#include <sodium.h>
#include <time.h>

#include "controllers.h"
#include "hostpool.h"
#include "kubeadm.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_anvilmachine, kind_machine, kind_host, kind_secret;

/* The host to claim: one already claimed by this Machine (a crash between our writes), or
 * the first claimable host by name matching selector. The host pool (hostpool.h) names the
 * candidates from memory; each is read again from the store, which holds this batch's
 * uncommitted claims too, and a candidate taken meanwhile is skipped. *ret_host NULL: none. */
static int find_host(Manager *m, const Obj *selector, const char *uid, Obj **ret_host,
                     bool *ret_mine, size_t *ret_available) {
        for (unsigned attempt = 0; attempt < 256; attempt++) {
                _cleanup_free_ char *mine = NULL, *best = NULL;
                int r = hostpool_find(m->pool, selector, uid, &mine, &best, ret_available);
                if (r < 0)
                        return r;
                _cleanup_(obj_freep) Obj *host = NULL;
                if (mine) {
                        r = registry_get(m->reg, &kind_host, NULL, mine, &host);
                        if (r < 0 && r != -ENOENT)
                                return r;
                        if (host && streq_ptr(obj_get_str(host, "spec.consumerRef.uid"), uid)) {
                                *ret_host = TAKE_PTR(host);
                                *ret_mine = true;
                                return 0;
                        }
                        host = obj_free(host);
                }
                if (!best) {
                        *ret_host = NULL;
                        return 0;
                }
                r = registry_get(m->reg, &kind_host, NULL, best, &host);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (host && host_claimable(host)) {
                        *ret_host = TAKE_PTR(host);
                        *ret_mine = false;
                        return 0;
                }
                hostpool_claimed(m->pool, best); /* taken in this batch: look further */
        }
        return -EBUSY;
}

static Obj *consumer_ref(const Obj *machine) {
        return object_ref(machine);
}

static int release_host(Manager *m, Obj *host) {
        obj_map_del(obj_map_get(host, "spec"), "consumerRef");
        obj_map_del(obj_map_get(host, "spec"), "machine");
        obj_map_del(obj_map_get(host, "spec"), "bootstrapSecretRef");
        obj_map_del(obj_map_get(host, "spec"), "upgrade");
        /* A host released without its reset keeps being asked to reset. */
        int r = obj_set_str(host, "spec.action",
                            obj_get_bool(host, "spec.resetRequired", false) ? "Deprovision"
                                                                            : "Idle");
        if (r < 0)
                return r;
        return registry_update(m->reg, host);
}

static int reconcile_delete(Manager *m, Obj *am, const Obj *orig) {
        const char *hn = obj_get_str(am, "status.hostRef.name");
        int r;
        _cleanup_(obj_freep) Obj *host = NULL;
        if (hn) {
                r = registry_get(m->reg, &kind_host, NULL, hn, &host);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        if (host && streq_ptr(obj_get_str(host, "spec.consumerRef.name"), meta_name(am))) {
                LOG_FIELD_SCOPE(LOG_FIELD_HOST, hn);
                const char *action = obj_get_str(host, "spec.action");
                /* An unreachable host is not waited for beyond the Machine's
                 * nodeDeletionTimeout: it is released marked resetRequired, and is not handed
                 * out again until it comes back and has reset (see host.c). */
                if (!obj_get_bool(host, "status.connected", false) &&
                    (streq_ptr(action, "Provision") || streq_ptr(action, "Deprovision"))) {
                        uint64_t timeout = 10 * USEC_PER_SEC;
                        const Obj *ctrl = meta_controller_ref(am);
                        _cleanup_(obj_freep) Obj *machine = NULL;
                        if (ctrl &&
                            registry_get(m->reg, &kind_machine, meta_namespace(am),
                                         strempty(obj_get_str(ctrl, "name")), &machine) >= 0)
                                timeout = duration_field(machine, "spec.nodeDeletionTimeout",
                                                         timeout);
                        int64_t since = 0;
                        (void)parse_rfc3339(obj_get_str(am, "metadata.deletionTimestamp"), &since);
                        if ((int64_t)now_usec(CLOCK_REALTIME) - since >= (int64_t)timeout) {
                                log_warning("Host %s is unreachable: releasing it from machine %s; "
                                            "it will be reset when it comes back.",
                                            hn, meta_name(am));
                                if ((r = obj_set_bool(host, "spec.resetRequired", true)) < 0)
                                        return r;
                                r = release_host(m, host);
                                if (r < 0)
                                        return r;
                                goto released;
                        }
                        condition_set(am, "Ready", COND_FALSE, "HostUnreachable", SEVERITY_WARNING,
                                      "host %s is unreachable; waiting up to nodeDeletionTimeout",
                                      hn);
                        r = patch_save(m->reg, orig, am);
                        return r < 0 ? r : (int)REQUEUE_SOON;
                }
                bool never_provisioned =
                        !streq_ptr(action, "Provision") && !streq_ptr(action, "Deprovision");
                if (never_provisioned) {
                        /* Claimed but nothing ran on it: release at once. */
                        r = release_host(m, host);
                        if (r < 0)
                                return r;
                } else if (!streq_ptr(action, "Deprovision")) {
                        if ((r = obj_set_str(host, "spec.action", "Deprovision")) < 0)
                                return r;
                        r = registry_update(m->reg, host);
                        if (r < 0)
                                return r;
                        log_info("Host %s: resetting (machine %s deleted).", hn, meta_name(am));
                        condition_set(am, "Ready", COND_FALSE, "Deprovisioning", SEVERITY_INFO,
                                      "resetting host %s", hn);
                        r = patch_save(m->reg, orig, am);
                        return r < 0 ? r : (int)REQUEUE_SOON;
                } else if (host_agent_current(host) &&
                           streq_ptr(obj_get_str(host, "status.agentState"), "Idle")) {
                        /* Reset. The old Node goes before the host is handed out again: the
                         * next machine on this host registers a Node of the same name, which
                         * the old machine's node deletion would otherwise remove. */
                        const Obj *ctrl = meta_controller_ref(am);
                        _cleanup_(obj_freep) Obj *machine = NULL;
                        if (ctrl &&
                            registry_get(m->reg, &kind_machine, meta_namespace(am),
                                         strempty(obj_get_str(ctrl, "name")), &machine) >= 0 &&
                            obj_get(machine, "status.nodeRef") &&
                            !obj_get_bool(machine, "status.deletion.nodeDeleted", false)) {
                                if ((r = obj_set_bool(am, "status.hostReset", true)) < 0)
                                        return r;
                                condition_set(am, "Ready", COND_FALSE, "WaitingForNodeDeletion",
                                              SEVERITY_INFO,
                                              "host %s is reset; releasing it once node %s is "
                                              "deleted",
                                              hn, obj_get_str(machine, "status.nodeRef.name"));
                                r = patch_save(m->reg, orig, am);
                                return r < 0 ? r : (int)REQUEUE_SOON;
                        }
                        log_event(LOG_INFO, ANVIL_MESSAGE_HOST_RELEASED,
                                  "Host %s reset; back in the pool.", hn);
                        r = release_host(m, host);
                        if (r < 0)
                                return r;
                } else {
                        condition_set(am, "Ready", COND_FALSE, "Deprovisioning", SEVERITY_INFO,
                                      "waiting for host %s to finish its reset", hn);
                        r = patch_save(m->reg, orig, am);
                        return r < 0 ? r : (int)REQUEUE_SOON;
                }
        }
released:;
        _cleanup_free_ char *sealed = strjoin(meta_name(am), "-sealed");
        if (!sealed)
                return -ENOMEM;
        r = registry_delete(m->reg, &kind_secret, meta_namespace(am), sealed, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        meta_remove_finalizer(am, FINALIZER_ANVILMACHINE);
        r = patch_save(m->reg, orig, am);
        return r < 0 ? r : 0;
}

/* Seals the Machine's bootstrap data to the host and points the host at it. */
static int deliver(Manager *m, Obj *am, const Obj *machine, Obj *host) {
        const char *data_secret = obj_get_str(machine, "spec.bootstrap.dataSecretName");
        const char *ns = meta_namespace(am);
        _cleanup_free_ char *sealed_name = strjoin(meta_name(am), "-sealed");
        if (!sealed_name)
                return -ENOMEM;
        int r;
        if (streq_ptr(obj_get_str(host, "spec.action"), "Provision") &&
            streq_ptr(obj_get_str(host, "spec.bootstrapSecretRef.name"), sealed_name))
                return 0; /* delivered already */

        _cleanup_(obj_freep) Obj *existing = NULL;
        r = registry_get(m->reg, &kind_secret, ns, sealed_name, &existing);
        if (r == -ENOENT) {
                _cleanup_free_ char *bundle = NULL;
                r = secret_get_data(m, ns, data_secret, "value", &bundle);
                if (r < 0)
                        return r;
                _cleanup_free_ char *box = NULL;
                r = seal_to_key(obj_get_str(host, "status.agentKey"), bundle, strlen(bundle), &box);
                sodium_memzero(bundle, strlen(bundle));
                if (r < 0)
                        return r;
                /* The box is already base64: store it as the Secret's data value as is. */
                _cleanup_(obj_freep) Obj *s = obj_new_map();
                if (!s || obj_map_set_str(s, "kind", "Secret") < 0 ||
                    obj_set_str(s, "metadata.name", sealed_name) < 0 ||
                    obj_set_str(s, "metadata.namespace", ns) < 0 ||
                    obj_map_set_str(s, "type", "anvil.dev/sealed-bootstrap") < 0 ||
                    obj_set_str(s, "data.bundle", box) < 0 || obj_set_str(s, "data.host", "") < 0)
                        return -ENOMEM;
                obj_map_del(obj_get(s, "data"), "host");
                if ((r = meta_set_annotation(s, "anvil.dev/sealed-for", meta_name(host))) < 0 ||
                    (r = meta_add_owner_ref(s, am, true)) < 0)
                        return r;
                r = registry_create(m->reg, s);
                if (r < 0)
                        return r;
        } else if (r < 0)
                return r;

        _cleanup_(obj_freep) Obj *summary = obj_new_map();
        bool cp = meta_label(machine, LABEL_CONTROL_PLANE) != NULL;
        if (!summary || obj_map_set_str(summary, "name", meta_name(machine)) < 0 ||
            obj_map_set_str(summary, "namespace", ns) < 0 ||
            obj_map_set_str(summary, "cluster",
                            strempty(obj_get_str(machine, "spec.clusterName"))) < 0 ||
            obj_map_set_str(summary, "role", cp ? "control-plane" : "worker") < 0 ||
            obj_map_set_str(summary, "providerID", strempty(obj_get_str(am, "spec.providerID"))) <
                    0)
                return -ENOMEM;
        const char *version = obj_get_str(machine, "spec.version");
        if (version && (r = obj_map_set_str(summary, "version", version)) < 0)
                return r;
        if ((r = obj_set(host, "spec.machine", TAKE_PTR(summary))) < 0 ||
            (r = obj_set_str(host, "spec.bootstrapSecretRef.name", sealed_name)) < 0 ||
            (r = obj_set_str(host, "spec.bootstrapSecretRef.namespace", ns)) < 0 ||
            (r = obj_set_str(host, "spec.action", "Provision")) < 0)
                return r;
        r = registry_update(m->reg, host);
        if (r < 0)
                return r;
        log_info("Host %s: bootstrap data for machine %s sealed and sent (generation %lld).",
                 meta_name(host), meta_name(machine), (long long)meta_generation(host));
        return 0;
}

static int addresses_from_facts(const Obj *host, Obj **ret) {
        _cleanup_(obj_freep) Obj *l = obj_new_list();
        if (!l)
                return -ENOMEM;
        const char *hn = obj_get_str(host, "status.facts.hostname");
        if (hn) {
                _cleanup_(obj_freep) Obj *a = obj_new_map();
                if (!a || obj_map_set_str(a, "type", "Hostname") < 0 ||
                    obj_map_set_str(a, "address", hn) < 0 || obj_list_append(l, TAKE_PTR(a)) < 0)
                        return -ENOMEM;
        }
        OBJ_LIST_FOREACH(iface, obj_get(host, "status.facts.interfaces"), i){OBJ_LIST_FOREACH(
                addr, obj_map_get(iface, "addresses"), j){const char *s = obj_str(addr);
        if (!s || startswith(s, "127.") || startswith(s, "::1") || startswith(s, "fe80"))
                continue;
        char ip[64];
        snprintf(ip, sizeof(ip), "%s", s);
        char *slash = strchr(ip, '/');
        if (slash)
                *slash = 0;
        _cleanup_(obj_freep) Obj *a = obj_new_map();
        if (!a || obj_map_set_str(a, "type", "InternalIP") < 0 ||
            obj_map_set_str(a, "address", ip) < 0 || obj_list_append(l, TAKE_PTR(a)) < 0)
                return -ENOMEM;
}
}
*ret = TAKE_PTR(l);
return 0;
}

int reconcile_anvilmachine(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *am = NULL;
        int r = registry_get(m->reg, &kind_anvilmachine, ns, name, &am);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        LOG_FIELD_SCOPE(LOG_FIELD_MACHINE, name);
        _cleanup_(obj_freep) Obj *orig = obj_dup(am);
        if (!orig)
                return -ENOMEM;
        if (meta_deleting(am))
                return reconcile_delete(m, am, orig);

        /* Wait for the owner Machine, as infrastructure providers do. */
        _cleanup_(obj_freep) Obj *machine = NULL;
        const Obj *ctrl = meta_controller_ref(am);
        if (!ctrl || !streq_ptr(obj_get_str(ctrl, "kind"), "Machine"))
                return 0;
        r = registry_get(m->reg, &kind_machine, ns, strempty(obj_get_str(ctrl, "name")), &machine);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *cluster = NULL;
        if (get_owner_cluster(m, machine, &cluster) >= 0 && cluster_paused(cluster, am))
                return 0;
        if ((r = meta_add_finalizer(am, FINALIZER_ANVILMACHINE)) < 0)
                return r;

        /* Claim. */
        _cleanup_(obj_freep) Obj *host = NULL;
        const char *hn = obj_get_str(am, "status.hostRef.name");
        if (hn) {
                r = registry_get(m->reg, &kind_host, NULL, hn, &host);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (host &&
                    !streq_ptr(obj_get_str(host, "spec.consumerRef.uid"), meta_uid(machine))) {
                        obj_free(host);
                        host = NULL; /* someone released it: claim again */
                }
        }
        if (!host) {
                _cleanup_(obj_freep) Obj *best = NULL;
                bool mine = false;
                size_t available = 0;
                r = find_host(m, obj_get(am, "spec.hostSelector"), meta_uid(machine), &best, &mine,
                              &available);
                if (r < 0)
                        return r;
                if (best && mine)
                        host = TAKE_PTR(best);
                else if (best) {
                        if ((r = obj_set(best, "spec.consumerRef", consumer_ref(machine))) < 0 ||
                            (r = obj_set_str(best, "spec.action", "Idle")) < 0)
                                return r;
                        r = registry_update(m->reg, best);
                        if (r == -ESTALE)
                                return r; /* lost a race for it: retry, another host */
                        if (r < 0)
                                return r;
                        hostpool_claimed(m->pool, meta_name(best));
                        log_info("Machine %s claimed host %s.", meta_name(machine),
                                 meta_name(best));
                        manager_event(m, machine, "Normal", "HostClaimed", "Claimed host %s",
                                      meta_name(best));
                        host = TAKE_PTR(best);
                } else {
                        _cleanup_free_ char *sel =
                                label_selector_to_string(obj_get(am, "spec.hostSelector"));
                        condition_set(am, "HostClaimed", COND_FALSE, "WaitingForHost",
                                      SEVERITY_WARNING,
                                      "no Available host matches %s (%zu available)",
                                      isempty(sel) ? "(any)" : sel, available);
                        condition_set(am, "Ready", COND_FALSE, "WaitingForHost", SEVERITY_WARNING,
                                      "no Available host matches %s (%zu available)",
                                      isempty(sel) ? "(any)" : sel, available);
                        if ((r = obj_set_bool(am, "status.ready", false)) < 0)
                                return r;
                        r = patch_save(m->reg, orig, am);
                        return r < 0 ? r : 0;
                }
        }
        LOG_FIELD_SCOPE(LOG_FIELD_HOST, meta_name(host));
        condition_set_true(am, "HostClaimed");
        _cleanup_(obj_freep) Obj *ref = object_ref(host);
        if (!ref || (r = obj_set(am, "status.hostRef", TAKE_PTR(ref))) < 0)
                return -ENOMEM;
        const char *uuid = obj_get_str(host, "status.facts.productUUID");
        _cleanup_free_ char *pid = uuid ? strjoin("anvil://", uuid) : NULL;
        if (pid && (r = obj_set_str(am, "spec.providerID", pid)) < 0)
                return r;
        _cleanup_(obj_freep) Obj *addrs = NULL;
        if ((r = addresses_from_facts(host, &addrs)) < 0 ||
            (r = obj_set(am, "status.addresses", TAKE_PTR(addrs))) < 0)
                return r;

        /* Deliver the bootstrap data once the Machine has it. */
        if (obj_get_str(machine, "spec.bootstrap.dataSecretName")) {
                r = deliver(m, am, machine, host);
                if (r < 0)
                        return r;
        }

        /* Ready: the host provisioned the generation we asked for. An in-place upgrade (or
         * its failure) does not take the infrastructure away: the machine stays ready, and
         * the Machine's InPlaceUpgraded condition tells how the upgrade goes. */
        const char *state = obj_get_str(host, "status.agentState");
        bool current = host_agent_current(host);
        bool upgrading = obj_get(host, "spec.upgrade") &&
                         (streq_ptr(state, "Upgrading") ||
                          (streq_ptr(state, "Failed") &&
                           streq_ptr(obj_get_str(host, "status.agentAction"), "Upgrade")));
        bool ready = streq_ptr(obj_get_str(host, "spec.action"), "Provision") &&
                     (streq_ptr(state, "Provisioned") || upgrading) &&
                     (current || obj_get_bool(am, "status.ready", false));
        if ((r = obj_set_bool(am, "status.ready", ready)) < 0)
                return r;
        if (ready)
                condition_set_true(am, "Ready");
        else if (current && streq_ptr(state, "Failed")) {
                const Obj *err = obj_get(host, "status.lastError");
                condition_set(
                        am, "Ready", COND_FALSE, "ProvisioningFailed", SEVERITY_ERROR,
                        "step %s failed on host %s (exit %lld): %s",
                        strna(obj_get_str(err, "step")), meta_name(host),
                        (long long)(obj_get(err, "exitCode") ? obj_get(err, "exitCode")->i : -1),
                        strna(obj_get_str(err, "message")));
        } else if (!obj_get_str(machine, "spec.bootstrap.dataSecretName"))
                condition_set(am, "Ready", COND_FALSE, "WaitingForBootstrapData", SEVERITY_INFO,
                              "host %s claimed; waiting for bootstrap data", meta_name(host));
        else if (!obj_get_bool(host, "status.connected", false))
                condition_set(am, "Ready", COND_FALSE, "HostUnreachable", SEVERITY_WARNING,
                              "host %s is not connected", meta_name(host));
        else {
                const Obj *step = obj_get(host, "status.step");
                if (step)
                        condition_set(
                                am, "Ready", COND_FALSE, "Provisioning", SEVERITY_INFO,
                                "host %s: step %lld/%lld %s", meta_name(host),
                                (long long)(obj_get(step, "index") ? obj_get(step, "index")->i : 0),
                                (long long)(obj_get(step, "total") ? obj_get(step, "total")->i : 0),
                                strna(obj_get_str(step, "name")));
                else
                        condition_set(am, "Ready", COND_FALSE, "Provisioning", SEVERITY_INFO,
                                      "host %s is provisioning", meta_name(host));
        }
        r = patch_save(m->reg, orig, am);
        return r < 0 ? r : 0;
}
