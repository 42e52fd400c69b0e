/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MachineDeployment: owns MachineSets, one per revision of its machine template, told apart
 * by the machine-template-hash label (a hash of spec.template), as Cluster API does. The
 * current MachineSet is scaled to spec.replicas; older ones are scaled down (the rollout
 * strategy that paces this lives in rollout.c once upgrades land). Status counters and phase
 * are summed over the MachineSets.
 */
#include <sodium.h>

#include "controllers.h"
#include "log.h"
#include "resource.h"

extern const KindInfo kind_machinedeployment, kind_machineset, kind_cluster;

/* A hash of an Obj that does not depend on map key order. */
static void hash_obj(crypto_generichash_state *st, const Obj *o) {
        uint8_t tag = o ? (uint8_t)o->type : 0;
        crypto_generichash_update(st, &tag, 1);
        if (!o)
                return;
        switch (o->type) {
        case OBJ_NULL:
                break;
        case OBJ_BOOL:
                crypto_generichash_update(st, (const uint8_t *)&o->b, sizeof(o->b));
                break;
        case OBJ_INT:
                crypto_generichash_update(st, (const uint8_t *)&o->i, sizeof(o->i));
                break;
        case OBJ_FLOAT:
                crypto_generichash_update(st, (const uint8_t *)&o->f, sizeof(o->f));
                break;
        case OBJ_STR:
                crypto_generichash_update(st, (const uint8_t *)o->str.s, o->str.len + 1);
                break;
        case OBJ_LIST:
                for (size_t i = 0; i < o->list.n; i++)
                        hash_obj(st, o->list.items[i]);
                break;
        case OBJ_MAP: {
                /* keys in sorted order */
                size_t n = o->map.n;
                const ObjEntry **sorted = calloc(n ? n : 1, sizeof(ObjEntry *));
                if (!sorted)
                        return;
                for (size_t i = 0; i < n; i++)
                        sorted[i] = &o->map.entries[i];
                for (size_t i = 1; i < n; i++)
                        for (size_t j = i; j > 0 && strcmp(sorted[j - 1]->key, sorted[j]->key) > 0;
                             j--) {
                                const ObjEntry *t = sorted[j];
                                sorted[j] = sorted[j - 1];
                                sorted[j - 1] = t;
                        }
                for (size_t i = 0; i < n; i++) {
                        crypto_generichash_update(st, (const uint8_t *)sorted[i]->key,
                                                  strlen(sorted[i]->key) + 1);
                        hash_obj(st, sorted[i]->value);
                }
                free(sorted);
                break;
        }
        }
}

/* Ten characters from Kubernetes' "safe" alphabet, like a pod-template-hash. */
static void template_hash(const Obj *tmpl, char out[11]) {
        static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
        crypto_generichash_state st;
        uint8_t h[16];
        crypto_generichash_init(&st, NULL, 0, sizeof(h));
        hash_obj(&st, tmpl);
        crypto_generichash_final(&st, h, sizeof(h));
        for (int i = 0; i < 10; i++)
                out[i] = alphabet[h[i] % (sizeof(alphabet) - 1)];
        out[10] = 0;
}

static int create_machineset(Manager *m, const Obj *md, const char *hash, int64_t replicas) {
        const char *ns = meta_namespace(md);
        _cleanup_(obj_freep) Obj *ms = obj_new_map();
        _cleanup_free_ char *name = asprintf_safe("%.52s-%s", meta_name(md), hash);
        if (!ms || !name || obj_map_set_str(ms, "kind", "MachineSet") < 0 ||
            obj_set_str(ms, "metadata.name", name) < 0 || obj_set_str(ms, "metadata.namespace", ns) < 0)
                return -ENOMEM;
        const char *cluster = obj_get_str(md, "spec.clusterName");
        int r;
        if ((r = meta_set_label(ms, LABEL_CLUSTER_NAME, cluster)) < 0 ||
            (r = meta_set_label(ms, LABEL_DEPLOYMENT_NAME, meta_name(md))) < 0 ||
            (r = meta_set_label(ms, LABEL_TEMPLATE_HASH, hash)) < 0 ||
            (r = meta_add_owner_ref(ms, md, true)) < 0)
                return r;
        _cleanup_(obj_freep) Obj *spec = obj_new_map();
        if (!spec || obj_map_set_str(spec, "clusterName", cluster) < 0 ||
            obj_map_set_int(spec, "replicas", replicas) < 0 ||
            obj_map_set(spec, "template", obj_dup(obj_get(md, "spec.template"))) < 0 ||
            obj_map_set(spec, "selector", obj_dup(obj_get(md, "spec.selector")) ?: obj_new_map()) < 0)
                return -ENOMEM;
        int64_t mrs = 0;
        if (obj_get_int(md, "spec.minReadySeconds", &mrs) &&
            (r = obj_map_set_int(spec, "minReadySeconds", mrs)) < 0)
                return r;
        const char *dp = obj_get_str(md, "spec.strategy.rollingUpdate.deletePolicy");
        if ((r = obj_map_set_str(spec, "deletePolicy", dp ? dp : "Random")) < 0)
                return r;
        /* The hash label on the template and in the selector keeps revisions apart. */
        if ((r = obj_set(spec, "template.metadata.labels",
                         obj_dup(obj_get(spec, "template.metadata.labels")) ?: obj_new_map())) < 0)
                return r;
        if ((r = obj_map_set_str(obj_get(spec, "template.metadata.labels"), LABEL_TEMPLATE_HASH,
                                 hash)) < 0)
                return r;
        /* Machines carry their deployment's name, as Cluster API's controller labels them. */
        if ((r = obj_map_set_str(obj_get(spec, "template.metadata.labels"), LABEL_DEPLOYMENT_NAME,
                                 meta_name(md))) < 0)
                return r;
        Obj *ml = obj_map_ensure_map(obj_map_get(spec, "selector"), "matchLabels");
        if (!ml || obj_map_set_str(ml, LABEL_TEMPLATE_HASH, hash) < 0)
                return -ENOMEM;
        if ((r = obj_map_set(ms, "spec", TAKE_PTR(spec))) < 0)
                return r;
        r = registry_create(m->reg, ms);
        if (r < 0)
                return r;
        log_info("MachineDeployment %s: created MachineSet %s.", meta_name(md), name);
        manager_event(m, md, "Normal", "SuccessfulCreate", "Created MachineSet %s", name);
        return 0;
}

int reconcile_machinedeployment(Manager *m, const char *ns, const char *name) {
        _cleanup_(obj_freep) Obj *md = NULL;
        int r = registry_get(m->reg, &kind_machinedeployment, ns, name, &md);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *orig = obj_dup(md);
        if (!orig)
                return -ENOMEM;
        const char *cluster_name = obj_get_str(md, "spec.clusterName");
        LOG_FIELD_SCOPE(LOG_FIELD_CLUSTER, cluster_name);

        _cleanup_(obj_freep) Obj *sets = NULL;
        _cleanup_(obj_freep) Obj *sel = obj_new_map();
        if (!sel || obj_set(sel, "matchLabels", obj_new_map()) < 0 ||
            obj_map_set_str(obj_get(sel, "matchLabels"), LABEL_DEPLOYMENT_NAME, name) < 0)
                return -ENOMEM;
        r = registry_list_all(m->reg, &kind_machineset, ns, sel, &sets);
        if (r < 0)
                return r;

        if (meta_deleting(md)) {
                OBJ_LIST_FOREACH(ms, sets, i)
                if (!meta_deleting(ms))
                        (void)registry_delete(m->reg, &kind_machineset, ns, meta_name(ms),
                                              meta_uid(ms));
                return obj_len(sets) ? (int)REQUEUE_SOON : 0;
        }

        _cleanup_(obj_freep) Obj *cluster = NULL;
        r = registry_get(m->reg, &kind_cluster, ns, strempty(cluster_name), &cluster);
        if (r < 0 && r != -ENOENT)
                return r;
        if (cluster) {
                if ((r = meta_add_owner_ref(md, cluster, false)) < 0 ||
                    (r = meta_set_label(md, LABEL_CLUSTER_NAME, cluster_name)) < 0)
                        return r;
        }
        if (cluster_paused(cluster, md) || obj_get_bool(md, "spec.paused", false)) {
                r = patch_save(m->reg, orig, md);
                return r < 0 ? r : 0;
        }

        char hash[11];
        template_hash(obj_get(md, "spec.template"), hash);
        int64_t replicas = 1;
        obj_get_int(md, "spec.replicas", &replicas);

        const Obj *current = NULL;
        OBJ_LIST_FOREACH(ms, sets, i)
        if (streq_ptr(meta_label(ms, LABEL_TEMPLATE_HASH), hash) && !meta_deleting(ms))
                current = ms;
        if (!current && cluster) {
                r = create_machineset(m, md, hash, replicas);
                if (r < 0 && r != -EEXIST)
                        return r;
        } else if (current) {
                /* Keep the current MachineSet in step: replicas, and the fields Cluster API
                 * propagates without a new revision (deletePolicy, minReadySeconds). */
                int64_t cur = -1, mrs = 0;
                obj_get_int(current, "spec.replicas", &cur);
                obj_get_int(md, "spec.minReadySeconds", &mrs);
                const char *dp = obj_get_str(md, "spec.strategy.rollingUpdate.deletePolicy");
                _cleanup_(obj_freep) Obj *c = obj_dup(current);
                if (!c || (r = obj_set_int(c, "spec.replicas", replicas)) < 0 ||
                    (r = obj_set_int(c, "spec.minReadySeconds", mrs)) < 0 ||
                    (r = obj_set_str(c, "spec.deletePolicy", dp ? dp : "Random")) < 0)
                        return -ENOMEM;
                if (!obj_equal(obj_map_get(c, "spec"), obj_map_get(current, "spec"))) {
                        r = registry_update(m->reg, c);
                        if (r < 0)
                                return r;
                        if (cur != replicas)
                                log_info("MachineDeployment %s: scaling MachineSet %s from %lld "
                                         "to %lld.",
                                         name, meta_name(current), (long long)cur,
                                         (long long)replicas);
                }
        }
        /* Older revisions go away (paced by the rollout strategy when it lands). */
        OBJ_LIST_FOREACH(ms, sets, i) {
                if (ms == current || meta_deleting(ms))
                        continue;
                int64_t cur = 0;
                obj_get_int(ms, "spec.replicas", &cur);
                if (cur > 0) {
                        _cleanup_(obj_freep) Obj *c = obj_dup(ms);
                        if (!c || (r = obj_set_int(c, "spec.replicas", 0)) < 0)
                                return -ENOMEM;
                        if ((r = registry_update(m->reg, c)) < 0)
                                return r;
                }
        }

        int64_t st_replicas = 0, st_ready = 0, st_avail = 0, st_updated = 0;
        OBJ_LIST_FOREACH(ms, sets, i) {
                int64_t v;
                if (obj_get_int(ms, "status.replicas", &v))
                        st_replicas += v;
                if (obj_get_int(ms, "status.readyReplicas", &v))
                        st_ready += v;
                if (obj_get_int(ms, "status.availableReplicas", &v))
                        st_avail += v;
                if (ms == current && obj_get_int(ms, "status.replicas", &v))
                        st_updated = v;
        }
        const char *phase = "Running";
        if (st_replicas < replicas)
                phase = "ScalingUp";
        else if (st_replicas > replicas)
                phase = "ScalingDown";
        else if (st_ready < replicas)
                phase = "ScalingUp";
        int64_t unavailable = replicas - st_avail;
        _cleanup_free_ char *selstr = label_selector_to_string(obj_get(md, "spec.selector"));
        if ((r = obj_set_int(md, "status.replicas", st_replicas)) < 0 ||
            (r = obj_set_int(md, "status.readyReplicas", st_ready)) < 0 ||
            (r = obj_set_int(md, "status.availableReplicas", st_avail)) < 0 ||
            (r = obj_set_int(md, "status.updatedReplicas", st_updated)) < 0 ||
            (r = obj_set_int(md, "status.unavailableReplicas", unavailable > 0 ? unavailable : 0)) <
                    0 ||
            (r = obj_set_str(md, "status.phase", phase)) < 0 ||
            (r = obj_set_str(md, "status.selector", strempty(selstr))) < 0 ||
            (r = obj_set_int(md, "status.observedGeneration", meta_generation(md))) < 0)
                return r;
        if (st_avail >= replicas)
                condition_set_true(md, "Available");
        else
                condition_set(md, "Available", COND_FALSE, "WaitingForAvailableMachines",
                              SEVERITY_WARNING, "minimum availability requires %lld replicas, "
                                                "current %lld available",
                              (long long)replicas, (long long)st_avail);
        if (st_ready >= replicas && st_replicas == replicas)
                condition_set_true(md, "Ready");
        else
                condition_set(md, "Ready", COND_FALSE, "WaitingForMachines", SEVERITY_INFO,
                              "%lld of %lld machines ready", (long long)st_ready,
                              (long long)replicas);
        r = patch_save(m->reg, orig, md);
        return r < 0 ? r : 0;
}
