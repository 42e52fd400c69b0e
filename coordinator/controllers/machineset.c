/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MachineSet: keeps spec.replicas Machines that match its selector, as Cluster API's
 * MachineSet controller does. Each new Machine gets a KubeadmConfig rendered from the
 * template's KubeadmConfigTemplate and an AnvilMachine from its AnvilMachineTemplate. Scale
 * down picks victims the upstream way: machines annotated cluster.x-k8s.io/delete-machine
 * first, then unhealthy ones, then by deletePolicy (Random, Newest, Oldest).
 *
 * Remediation: a Machine a MachineHealthCheck marked OwnerRemediated=False is deleted (and,
 * its replacement created as for any missing replica). A MachineSet annotated
 * cluster.x-k8s.io/disable-machine-create (an old revision of an OnDelete deployment) never
 * creates machines: only the operator's deletions move replicas to the new revision.
 */
#include <sodium.h>
#include <time.h>

#include "controllers.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_machineset, kind_machine, kind_kubeadmconfigtemplate,
        kind_anvilmachinetemplate;

#define machine_ready(m)        machine_is_ready(m)
#define machine_available(m, s) machine_is_available(m, s)

/* Lower is deleted first. */
static int delete_priority(const Obj *machine) {
        if (meta_annotation(machine, ANNOTATION_DELETE_MACHINE))
                return 0;
        if (obj_get_str(machine, "status.failureReason") ||
            obj_get_str(machine, "status.failureMessage") ||
            (condition_get(machine, "HealthCheckSucceeded") &&
             !condition_is_true(machine, "HealthCheckSucceeded")))
                return 1;
        if (!machine_ready(machine))
                return 2;
        return 3;
}

static const char *policy;

static int cmp_victims(const void *a, const void *b) {
        const Obj *ma = *(Obj *const *)a, *mb = *(Obj *const *)b;
        int pa = delete_priority(ma), pb = delete_priority(mb);
        if (pa != pb)
                return pa - pb;
        const char *ta = strempty(obj_get_str(ma, "metadata.creationTimestamp"));
        const char *tb = strempty(obj_get_str(mb, "metadata.creationTimestamp"));
        int c = strcmp(ta, tb);
        if (c == 0)
                c = strcmp(strempty(meta_name(ma)), strempty(meta_name(mb)));
        if (streq_ptr(policy, "Newest"))
                return -c;
        if (streq_ptr(policy, "Oldest"))
                return c;
        return 0; /* Random: shuffled before sorting, kept stable by this order */
}

static int get_template_spec(Manager *m, const KindInfo *k, const Obj *ref, const char *ns,
                             Obj **ret) {
        const char *name = obj_get_str(ref, "name");
        if (!name)
                return -ENOENT;
        const char *rns = obj_get_str(ref, "namespace");
        _cleanup_(obj_freep) Obj *t = NULL;
        int r = registry_get(m->reg, k, rns ? rns : ns, name, &t);
        if (r < 0)
                return r;
        *ret = obj_map_take(obj_get(t, "spec.template"), "spec");
        if (!*ret)
                *ret = obj_new_map();
        return *ret ? 0 : -ENOMEM;
}

/* Cluster API (v1.4 on) propagates the template's labels and annotations to the set's
 * existing Machines in place, without a rollout: a MachineHealthCheck selecting on a
 * changed label covers them at once. A key that left the template stays on the Machines
 * (nothing here records who set a key; upstream knows through server-side apply).
 * Returns the number of machines updated, or -ESTALE when one changed meanwhile. */
static int propagate_template_metadata(Manager *m, const Obj *ms, Obj *mine) {
        const Obj *tl = obj_get(ms, "spec.template.metadata.labels");
        const Obj *ta = obj_get(ms, "spec.template.metadata.annotations");
        int updated = 0, r;
        OBJ_LIST_FOREACH(mc, mine, i) {
                bool changed = false;
                OBJ_MAP_FOREACH(e, tl) {
                        if (!obj_str(e->value) ||
                            streq_ptr(meta_label(mc, e->key), obj_str(e->value)))
                                continue;
                        if ((r = meta_set_label(mc, e->key, obj_str(e->value))) < 0)
                                return r;
                        changed = true;
                }
                OBJ_MAP_FOREACH(e, ta) {
                        if (!obj_str(e->value) ||
                            streq_ptr(meta_annotation(mc, e->key), obj_str(e->value)))
                                continue;
                        if ((r = meta_set_annotation(mc, e->key, obj_str(e->value))) < 0)
                                return r;
                        changed = true;
                }
                if (!changed)
                        continue;
                r = registry_update(m->reg, mc);
                if (r < 0)
                        return r; /* -ESTALE: the next reconcile sees the new version */
                updated++;
        }
        return updated;
}

int reconcile_machineset(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *ms = NULL;
        int r = registry_get(m->reg, &kind_machineset, ns, name, &ms);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *orig = obj_dup(ms);
        if (!orig)
                return -ENOMEM;
        const char *cluster_name = obj_get_str(ms, "spec.clusterName");
        LOG_FIELD_SCOPE(LOG_FIELD_CLUSTER, cluster_name);

        /* Our machines: selected, and controlled by us. */
        _cleanup_(obj_freep) Obj *all = NULL;
        r = registry_list_all(m->reg, &kind_machine, ns, obj_get(ms, "spec.selector"), &all);
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *mine = obj_new_list();
        if (!mine)
                return -ENOMEM;
        size_t live = 0, ready = 0, available = 0, deleting = 0;
        int64_t min_ready = 0;
        obj_get_int(ms, "spec.minReadySeconds", &min_ready);
        OBJ_LIST_FOREACH(mc, all, i) {
                const Obj *ctrl = meta_controller_ref(mc);
                if (!ctrl || !streq_ptr(obj_get_str(ctrl, "uid"), meta_uid(ms)))
                        continue;
                if (meta_deleting(mc)) {
                        deleting++;
                        continue;
                }
                live++;
                if (machine_ready(mc))
                        ready++;
                if (machine_available(mc, min_ready))
                        available++;
                if ((r = obj_list_append(mine, obj_dup(mc))) < 0)
                        return r;
        }

        if (meta_deleting(ms)) {
                OBJ_LIST_FOREACH(mc, mine, i)
                (void)registry_delete(m->reg, &kind_machine, ns, meta_name(mc), meta_uid(mc));
                return live + deleting ? (int)REQUEUE_SOON : 0;
        }

        _cleanup_(obj_freep) Obj *cluster = NULL;
        r = get_owner_cluster(m, ms, &cluster);
        if (r < 0 && r != -ENOENT)
                return r;
        if (cluster_paused(cluster, ms))
                return 0;
        const Obj *tspec = obj_get(ms, "spec.template.spec");
        if ((r = cluster_own_template(m, cluster, obj_get(tspec, "bootstrap.configRef"), ns)) < 0 ||
            (r = cluster_own_template(m, cluster, obj_get(tspec, "infrastructureRef"), ns)) < 0)
                return r;

        /* Remediation asked for by a MachineHealthCheck: delete, then replace. */
        _cleanup_(obj_freep) Obj *kept = obj_new_list();
        if (!kept)
                return -ENOMEM;
        OBJ_LIST_FOREACH(mc, mine, i) {
                const Obj *c = condition_get(mc, "OwnerRemediated");
                if (!c || !streq_ptr(obj_get_str(c, "status"), COND_FALSE)) {
                        if ((r = obj_list_append(kept, obj_dup(mc))) < 0)
                                return r;
                        continue;
                }
                log_info("MachineSet %s: remediating unhealthy machine %s (deleting it).", name,
                         meta_name(mc));
                manager_event(m, ms, "Normal", "MachineRemediated", "Deleted unhealthy machine %s",
                              meta_name(mc));
                r = registry_delete(m->reg, &kind_machine, ns, meta_name(mc), meta_uid(mc));
                if (r < 0 && r != -ENOENT)
                        return r;
                if (machine_ready(mc))
                        ready--;
                if (machine_available(mc, min_ready))
                        available--;
                live--;
                deleting++;
        }
        obj_free(mine);
        mine = TAKE_PTR(kept);
        r = propagate_template_metadata(m, ms, mine);
        if (r == -ESTALE || r == -ENOENT)
                return (int)REQUEUE_SOON;
        if (r < 0)
                return r;
        if (r > 0)
                log_info("MachineSet %s: template labels and annotations propagated to %d "
                         "machine(s).",
                         name, r);

        int64_t replicas = 1;
        obj_get_int(ms, "spec.replicas", &replicas);
        int result = 0;
        if ((int64_t)live < replicas && cluster && meta_annotation(ms, ANNOTATION_DISABLE_CREATE)) {
                condition_set(ms, "MachinesCreated", COND_FALSE, "MachineCreationDisabled",
                              SEVERITY_INFO,
                              "an old revision of an OnDelete deployment: machines are not "
                              "replaced here");
        } else if ((int64_t)live < replicas && cluster) {
                _cleanup_(obj_freep) Obj *bootstrap = NULL, *infra = NULL;
                r = get_template_spec(m, &kind_kubeadmconfigtemplate,
                                      obj_get(tspec, "bootstrap.configRef"), ns, &bootstrap);
                int ri = get_template_spec(m, &kind_anvilmachinetemplate,
                                           obj_get(tspec, "infrastructureRef"), ns, &infra);
                if (r == -ENOENT || ri == -ENOENT) {
                        condition_set(
                                ms, "MachinesCreated", COND_FALSE, "TemplateNotFound",
                                SEVERITY_ERROR, "%s %s not found",
                                r == -ENOENT ? "KubeadmConfigTemplate" : "AnvilMachineTemplate",
                                strna(obj_get_str(tspec, r == -ENOENT ? "bootstrap.configRef.name"
                                                                      : "infrastructureRef.name")));
                } else if (r < 0 || ri < 0)
                        return r < 0 ? r : ri;
                else {
                        _cleanup_(obj_freep) Obj *labels =
                                obj_dup(obj_get(ms, "spec.template.metadata.labels"))
                                        ?: obj_new_map();
                        if (!labels || obj_map_set_str(labels, LABEL_SET_NAME, name) < 0)
                                return -ENOMEM;
                        _cleanup_(obj_freep) Obj *mspec = obj_dup(tspec);
                        if (!mspec)
                                return -ENOMEM;
                        for (int64_t i = (int64_t)live; i < replicas; i++) {
                                r = create_machine_trio(
                                        m, ms, cluster_name, mspec, labels,
                                        obj_get(ms, "spec.template.metadata.annotations"),
                                        bootstrap, infra, NULL);
                                if (r < 0)
                                        return r;
                        }
                        log_info("MachineSet %s: created %lld machine(s).", name,
                                 (long long)(replicas - (int64_t)live));
                        condition_set_true(ms, "MachinesCreated");
                }
        } else if ((int64_t)live > replicas) {
                /* Victims in upstream order. */
                size_t n = obj_len(mine);
                Obj **v = mine->list.items;
                policy = obj_get_str(ms, "spec.deletePolicy");
                if (!policy || streq(policy, "Random"))
                        for (size_t i = n; i > 1; i--) {
                                size_t j = randombytes_uniform((uint32_t)i);
                                Obj *t = v[i - 1];
                                v[i - 1] = v[j];
                                v[j] = t;
                        }
                qsort(v, n, sizeof(Obj *), cmp_victims);
                size_t excess = live - (size_t)replicas;
                for (size_t i = 0; i < excess; i++) {
                        log_info("MachineSet %s: scaling down, deleting machine %s.", name,
                                 meta_name(v[i]));
                        r = registry_delete(m->reg, &kind_machine, ns, meta_name(v[i]),
                                            meta_uid(v[i]));
                        if (r < 0 && r != -ENOENT)
                                return r;
                        manager_event(m, ms, "Normal", "SuccessfulDelete", "Deleted machine %s",
                                      meta_name(v[i]));
                }
                policy = NULL;
        }

        _cleanup_free_ char *sel = label_selector_to_string(obj_get(ms, "spec.selector"));
        if ((r = obj_set_int(ms, "status.replicas", (int64_t)live)) < 0 ||
            (r = obj_set_int(ms, "status.fullyLabeledReplicas", (int64_t)live)) < 0 ||
            (r = obj_set_int(ms, "status.readyReplicas", (int64_t)ready)) < 0 ||
            (r = obj_set_int(ms, "status.availableReplicas", (int64_t)available)) < 0 ||
            (r = obj_set_int(ms, "status.observedGeneration", meta_generation(ms))) < 0 ||
            (r = obj_set_str(ms, "status.selector", strempty(sel))) < 0)
                return r;
        if ((int64_t)ready == replicas)
                condition_set_true(ms, "Ready");
        else
                condition_set(ms, "Ready", COND_FALSE, "WaitingForMachines", SEVERITY_INFO,
                              "%zu of %lld machines ready", ready, (long long)replicas);
        r = patch_save(m->reg, orig, ms);
        if (r < 0)
                return r;
        /* minReadySeconds: look again when the youngest ready machine becomes available. */
        if (min_ready > 0 && available < ready)
                result = (int)(USEC_PER_SEC * (uint64_t)(min_ready < 60 ? min_ready : 60));
        return result;
}
