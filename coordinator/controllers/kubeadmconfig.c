/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KubeadmConfig: renders a Machine's bootstrap data, as Cluster API's kubeadm bootstrap
 * provider does. It waits for the cluster infrastructure; the first control plane machine
 * gets an init configuration; every other machine waits until the control plane is
 * initialised and then gets a join configuration (with the CA pin, and the CA material for
 * control plane joins). The bundle lands in a Secret named like the config, referenced by
 * status.dataSecretName; condition DataSecretAvailable says where it stands.
 */
#include <sodium.h>

#include "commands.h"
#include "controllers.h"
#include "kubeadm.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_kubeadmconfig, kind_machine, kind_secret;

static int get_owner_machine(Manager *m, const Obj *config, Obj **ret) {
        OBJ_LIST_FOREACH(ref, obj_get(config, "metadata.ownerReferences"), i) {
                if (!streq_ptr(obj_get_str(ref, "kind"), "Machine"))
                        continue;
                return registry_get(m->reg, &kind_machine, meta_namespace(config),
                                    strempty(obj_get_str(ref, "name")), ret);
        }
        return -ENOENT;
}

static int waiting(Manager *m, Obj *config, const Obj *orig, const char *reason, const char *msg) {
        condition_set(config, "DataSecretAvailable", COND_FALSE, reason, SEVERITY_INFO, "%s", msg);
        condition_set(config, "Ready", COND_FALSE, reason, SEVERITY_INFO, "%s", msg);
        int r = patch_save(m->reg, orig, config);
        return r < 0 ? r : 0;
}

int reconcile_kubeadmconfig(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *config = NULL;
        int r = registry_get(m->reg, &kind_kubeadmconfig, ns, name, &config);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *orig = obj_dup(config);
        if (!orig)
                return -ENOMEM;
        if (meta_deleting(config))
                return 0;

        /* Already rendered: the data is immutable for the machine's life, as upstream. */
        const char *secret = obj_get_str(config, "status.dataSecretName");
        if (obj_get_bool(config, "status.ready", false) && secret) {
                _cleanup_(obj_freep) Obj *s = NULL;
                r = registry_get(m->reg, &kind_secret, ns, secret, &s);
                if (r >= 0)
                        return 0;
                if (r != -ENOENT)
                        return r;
                /* The Secret vanished: render again below. */
        }

        _cleanup_(obj_freep) Obj *machine = NULL;
        r = get_owner_machine(m, config, &machine);
        if (r == -ENOENT)
                return waiting(m, config, orig, "WaitingForMachine",
                               "waiting for the owner Machine");
        if (r < 0)
                return r;
        LOG_FIELD_SCOPE(LOG_FIELD_MACHINE, meta_name(machine));
        _cleanup_(obj_freep) Obj *cluster = NULL;
        r = get_owner_cluster(m, machine, &cluster);
        if (r == -ENOENT)
                return waiting(m, config, orig, "WaitingForCluster", "the Cluster does not exist");
        if (r < 0)
                return r;
        if (cluster_paused(cluster, config))
                return 0;
        if (!obj_get_bool(cluster, "status.infrastructureReady", false))
                return waiting(m, config, orig, "WaitingForClusterInfrastructure",
                               "waiting for the cluster infrastructure to be ready");
        if (!obj_get_str(cluster, "spec.controlPlaneEndpoint.host"))
                return waiting(m, config, orig, "WaitingForControlPlaneEndpoint",
                               "the cluster has no control plane endpoint yet");

        bool cp = meta_label(machine, LABEL_CONTROL_PLANE) != NULL;
        bool initialized = condition_is_true(cluster, "ControlPlaneInitialized");
        bool has_init = obj_get(config, "spec.initConfiguration") ||
                        (obj_get(config, "spec.clusterConfiguration") &&
                         !obj_get(config, "spec.joinConfiguration"));
        BootstrapRole role;
        if (cp && has_init && !initialized)
                role = BOOTSTRAP_INIT;
        else if (!initialized)
                return waiting(m, config, orig, "WaitingForControlPlaneAvailable",
                               "waiting for the control plane to be initialized");
        else if (cp || obj_get(config, "spec.joinConfiguration.controlPlane"))
                role = BOOTSTRAP_JOIN_CONTROL_PLANE;
        else
                role = BOOTSTRAP_JOIN_WORKER;

        r = cluster_certificates_ensure(m, cluster);
        if (r < 0)
                return r;
        _cleanup_free_ char *token = NULL;
        r = kubeadm_config_token(m, config, &token);
        if (r < 0)
                return r;
        if (role != BOOTSTRAP_INIT) {
                /* A join token must exist in the cluster before anyone uses it: a running
                 * control plane host registers it (kubeadm token create). */
                _cleanup_free_ char *cphost = NULL;
                r = pick_control_plane_host(m, ns, meta_name(cluster), NULL, &cphost);
                if (r == -ENOENT) {
                        sodium_memzero(token, strlen(token));
                        return waiting(m, config, orig, "WaitingForControlPlaneHost",
                                       "no connected control plane host can register the join "
                                       "token yet");
                }
                if (r < 0)
                        return r;
                _cleanup_(obj_freep) Obj *args = obj_new_map();
                _cleanup_free_ char *id = strjoin("token-", meta_uid(config));
                _cleanup_free_ char *key = registry_key(&kind_kubeadmconfig, ns, name);
                if (!args || !id || !key || obj_map_set_str(args, "token", token) < 0 ||
                    obj_map_set_str(args, "ttl", JOIN_TOKEN_TTL) < 0)
                        return -ENOMEM;
                int code = 0;
                const char *out = NULL;
                CommandState cs = command_run(m->commands, id, cphost, "token-create", args, key,
                                              60 * USEC_PER_SEC, &code, &out);
                Obj *t = obj_map_get(args, "token");
                sodium_memzero(t->str.s, t->str.len);
                if (cs == COMMAND_PENDING) {
                        sodium_memzero(token, strlen(token));
                        _cleanup_free_ char *msg = asprintf_safe(
                                "registering this machine's join token on %s", cphost);
                        return waiting(m, config, orig, "WaitingForJoinToken", strna(msg));
                }
                if (cs == COMMAND_FAILED) {
                        sodium_memzero(token, strlen(token));
                        command_forget(m->commands, id);
                        condition_set(config, "DataSecretAvailable", COND_FALSE,
                                      "JoinTokenFailed", SEVERITY_WARNING,
                                      "kubeadm token create on %s failed (exit %d): %s", cphost, code,
                                      strna(out));
                        (void)patch_save(m->reg, orig, config);
                        return (int)(10 * USEC_PER_SEC);
                }
        }
        _cleanup_free_ char *bundle = NULL;
        r = kubeadm_render_bundle(m, config, machine, cluster, role, token, &bundle);
        sodium_memzero(token, strlen(token));
        if (r == -ENOENT || r == -ENODATA)
                return waiting(m, config, orig, "WaitingForClusterCertificates",
                               "the cluster certificates are not there yet");
        if (r < 0) {
                condition_set(config, "DataSecretAvailable", COND_FALSE,
                              "DataSecretGenerationFailed", SEVERITY_ERROR,
                              "rendering the bootstrap data failed: %s",
                              r == -EOPNOTSUPP ? "diskSetup and mounts are not supported (do "
                                                 "them in preKubeadmCommands)"
                              : r == -EBADMSG  ? "a users[].passwdFrom Secret does not hold a "
                                                 "password hash (one line without \":\")"
                                               : strerror(-r));
                (void)patch_save(m->reg, orig, config);
                return r;
        }

        /* Replace a stale Secret (none, normally). */
        (void)registry_delete(m->reg, &kind_secret, ns, name, NULL);
        const char *keys[] = {"value", "format"};
        const char *values[] = {bundle, "anvil-bundle"};
        r = secret_create(m, ns, name, "cluster.x-k8s.io/secret", config, meta_name(cluster), keys,
                          values, 2);
        sodium_memzero(bundle, strlen(bundle));
        if (r < 0)
                return r;
        if ((r = obj_set_str(config, "status.dataSecretName", name)) < 0 ||
            (r = obj_set_bool(config, "status.ready", true)) < 0 ||
            (r = obj_set_int(config, "status.observedGeneration", meta_generation(config))) < 0)
                return r;
        condition_set_true(config, "DataSecretAvailable");
        condition_set_true(config, "Ready");
        log_info("Bootstrap data for machine %s ready (%s).", meta_name(machine),
                 role == BOOTSTRAP_INIT                 ? "kubeadm init"
                 : role == BOOTSTRAP_JOIN_CONTROL_PLANE ? "kubeadm join --control-plane"
                                                        : "kubeadm join");
        r = patch_save(m->reg, orig, config);
        return r < 0 ? r : 0;
}
