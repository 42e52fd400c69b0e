/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MachineDeployment: owns MachineSets, one per revision of its machine template, and moves
 * replicas between them as Cluster API does.
 *
 *  - The current MachineSet is the one whose template matches spec.template in the fields
 *    that call for new machines (spec.version, bootstrap.configRef, infrastructureRef, ...);
 *    the in-place mutable fields (template labels/annotations, node*Timeout, minReadySeconds,
 *    deletePolicy) are copied onto it instead. None matching (or spec.rolloutAfter passed
 *    and the match is older): a new MachineSet, revision = highest + 1, in the annotation
 *    machinedeployment.clusters.x-k8s.io/revision (on the MachineSet and the deployment).
 *  - RollingUpdate: the new set grows within replicas + maxSurge, old sets shrink (oldest
 *    first) while at least replicas - maxUnavailable machines stay available (rollout.c).
 *  - OnDelete: old sets are marked cluster.x-k8s.io/disable-machine-create and shrink only as
 *    the operator deletes their machines; the new set takes what they give up.
 *  - In place (annotation anvil.dev/upgrade-strategy: InPlace, see docs/upgrades.md): a
 *    template change of spec.version only is made on the current set; its machines are
 *    upgraded where they stand (inplace.c), oldest first, within maxUnavailable (at least 1).
 *  - A new version waits for the control plane to run it (a kubelet never newer than its API
 *    server).
 *  - revisionHistoryLimit: once a rollout is complete, old sets without machines beyond the
 *    limit are deleted, oldest revision first.
 *  - spec.paused: replicas follow spec.replicas, nothing rolls.
 *
 * Availability is counted from the Machines (ready for minReadySeconds, not deleting, not in
 * an in-place upgrade), so it never lags behind a MachineSet's status. Expected load: one
 * reconcile per machine state change during a rollout; a few list calls each.
 */
#include <time.h>

#include "controllers.h"
#include "log.h"
#include "resource.h"
#include "rollout.h"

extern const KindInfo kind_machinedeployment, kind_machineset, kind_machine, kind_cluster;

typedef struct SetInfo {
        Obj *ms;      /* borrowed from the list of sets */
        Obj *edit;    /* a copy with this reconcile's changes, written at the end */
        int64_t spec; /* spec.replicas (as edited) */
        int64_t revision;
        int64_t machines; /* not being deleted */
        int64_t deleting;
        int64_t ready, available, updated, upgrading;
        const Obj *failed;        /* a machine whose in-place upgrade failed */
        const Obj *stale_kubelet; /* a machine whose kubelet runs another version */
        const char *created;
} SetInfo;

typedef struct Sets {
        SetInfo *v;
        size_t n;
} Sets;

static void sets_done(Sets *s) {
        for (size_t i = 0; s->v && i < s->n; i++)
                obj_free(s->v[i].edit);
        free(s->v);
}

static int64_t revision_of(const Obj *o) {
        const char *s = meta_annotation(o, ANNOTATION_REVISION);
        return s ? strtoll(s, NULL, 10) : 0;
}

/* The template fields that call for new machines: everything but the in-place mutable ones
 * (and spec.version when it may change in place). */
static Obj *rollout_fields(const Obj *tmpl, bool without_version) {
        Obj *c = obj_dup(obj_map_get(tmpl, "spec")) ?: obj_new_map();
        if (!c)
                return NULL;
        obj_map_del(c, "nodeDrainTimeout");
        obj_map_del(c, "nodeDeletionTimeout");
        obj_map_del(c, "nodeVolumeDetachTimeout");
        if (without_version)
                obj_map_del(c, "version");
        return c;
}

static bool templates_match(const Obj *a, const Obj *b, bool without_version) {
        _cleanup_(obj_freep) Obj *fa = rollout_fields(a, without_version);
        _cleanup_(obj_freep) Obj *fb = rollout_fields(b, without_version);
        return fa && fb && obj_equal(fa, fb);
}

static Obj *edit_of(SetInfo *s) {
        if (!s->edit)
                s->edit = obj_dup(s->ms);
        return s->edit;
}

static int set_replicas(SetInfo *s, int64_t n) {
        if (s->spec == n)
                return 0;
        Obj *e = edit_of(s);
        if (!e)
                return -ENOMEM;
        s->spec = n;
        return obj_set_int(e, "spec.replicas", n);
}

static int set_annotation(SetInfo *s, const char *key, const char *value) {
        if (streq_ptr(meta_annotation(s->edit ? s->edit : s->ms, key), value))
                return 0;
        Obj *e = edit_of(s);
        if (!e)
                return -ENOMEM;
        if (value)
                return meta_set_annotation(e, key, value);
        obj_map_del(obj_get(e, "metadata.annotations"), key);
        return 0;
}

/* The fields Cluster API changes on an existing MachineSet instead of rolling. */
static int sync_mutable_fields(SetInfo *s, const Obj *md) {
        Obj *e = edit_of(s);
        if (!e)
                return -ENOMEM;
        int64_t mrs = 0;
        obj_get_int(md, "spec.minReadySeconds", &mrs);
        const char *dp = obj_get_str(md, "spec.strategy.rollingUpdate.deletePolicy");
        int r;
        if ((r = obj_set_int(e, "spec.minReadySeconds", mrs)) < 0 ||
            (r = obj_set_str(e, "spec.deletePolicy", dp ? dp : "Random")) < 0)
                return r;
        const char *fields[] = {"nodeDrainTimeout", "nodeDeletionTimeout",
                                "nodeVolumeDetachTimeout"};
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const Obj *v = obj_get(obj_get(md, "spec.template.spec"), fields[i]);
                Obj *ts = obj_get(e, "spec.template.spec");
                if (v)
                        r = obj_map_set(ts, fields[i], obj_dup(v));
                else
                        obj_map_del(ts, fields[i]);
                if (r < 0)
                        return r;
        }
        /* Template labels and annotations, keeping the set's own hash label. */
        const char *hash = meta_label(s->ms, LABEL_TEMPLATE_HASH);
        _cleanup_(obj_freep) Obj *labels =
                obj_dup(obj_get(md, "spec.template.metadata.labels")) ?: obj_new_map();
        if (!labels || (hash && obj_map_set_str(labels, LABEL_TEMPLATE_HASH, hash) < 0))
                return -ENOMEM;
        if ((r = obj_set(e, "spec.template.metadata.labels", TAKE_PTR(labels))) < 0)
                return r;
        const Obj *ann = obj_get(md, "spec.template.metadata.annotations");
        if (ann)
                r = obj_set(e, "spec.template.metadata.annotations", obj_dup(ann));
        else
                obj_del(e, "spec.template.metadata.annotations");
        return r;
}

static int create_machineset(Manager *m, const Obj *md, int64_t replicas, int64_t revision,
                             char **ret_name) {
        const char *ns = meta_namespace(md);
        _cleanup_(obj_freep) Obj *fields = rollout_fields(obj_get(md, "spec.template"), false);
        if (!fields)
                return -ENOMEM;
        char hash[11], id[32];
        object_hash(fields, hash);
        _cleanup_free_ char *name = asprintf_safe("%.52s-%s", meta_name(md), hash);
        if (!name)
                return -ENOMEM;
        snprintf(id, sizeof(id), "%s", hash);
        _cleanup_(obj_freep) Obj *existing = NULL;
        int r = registry_get(m->reg, &kind_machineset, ns, name, &existing);
        if (r >= 0) {
                /* The same template again (rolloutAfter, or a rollback after its set was
                 * pruned while it still exists being deleted): a distinct name. */
                char suffix[6];
                random_string("bcdfghjklmnpqrstvwxz2456789", 5, suffix);
                free(name);
                name = asprintf_safe("%.46s-%s-%s", meta_name(md), hash, suffix);
                snprintf(id, sizeof(id), "%s-%s", hash, suffix);
                if (!name)
                        return -ENOMEM;
        } else if (r != -ENOENT)
                return r;

        _cleanup_(obj_freep) Obj *ms = obj_new_map();
        if (!ms || obj_map_set_str(ms, "kind", "MachineSet") < 0 ||
            obj_set_str(ms, "metadata.name", name) < 0 ||
            obj_set_str(ms, "metadata.namespace", ns) < 0)
                return -ENOMEM;
        const char *cluster = obj_get_str(md, "spec.clusterName");
        char rev[32];
        snprintf(rev, sizeof(rev), "%lld", (long long)revision);
        if ((r = meta_set_label(ms, LABEL_CLUSTER_NAME, cluster)) < 0 ||
            (r = meta_set_label(ms, LABEL_DEPLOYMENT_NAME, meta_name(md))) < 0 ||
            (r = meta_set_label(ms, LABEL_TEMPLATE_HASH, id)) < 0 ||
            (r = meta_set_annotation(ms, ANNOTATION_REVISION, rev)) < 0 ||
            (r = meta_add_owner_ref(ms, md, true)) < 0)
                return r;
        _cleanup_(obj_freep) Obj *spec = obj_new_map();
        if (!spec || obj_map_set_str(spec, "clusterName", cluster) < 0 ||
            obj_map_set_int(spec, "replicas", replicas) < 0 ||
            obj_map_set(spec, "template", obj_dup(obj_get(md, "spec.template"))) < 0 ||
            obj_map_set(spec, "selector", obj_dup(obj_get(md, "spec.selector")) ?: obj_new_map()) <
                    0)
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
                                 id)) < 0)
                return r;
        /* Machines carry their deployment's name, as Cluster API's controller labels them. */
        if ((r = obj_map_set_str(obj_get(spec, "template.metadata.labels"), LABEL_DEPLOYMENT_NAME,
                                 meta_name(md))) < 0)
                return r;
        Obj *ml = obj_map_ensure_map(obj_map_get(spec, "selector"), "matchLabels");
        if (!ml || obj_map_set_str(ml, LABEL_TEMPLATE_HASH, id) < 0)
                return -ENOMEM;
        if ((r = obj_map_set(ms, "spec", TAKE_PTR(spec))) < 0)
                return r;
        r = registry_create(m->reg, ms);
        if (r < 0)
                return r;
        log_info("MachineDeployment %s: created MachineSet %s (revision %lld, %lld replicas).",
                 meta_name(md), name, (long long)revision, (long long)replicas);
        manager_event(m, md, "Normal", "SuccessfulCreate", "Created MachineSet %s", name);
        if (ret_name)
                *ret_name = TAKE_PTR(name);
        return 0;
}

/* Counts the machines of each set (by controller reference). */
static void count_machines(SetInfo *sets, size_t n, const Obj *machines, int64_t min_ready) {
        OBJ_LIST_FOREACH(mc, machines, i) {
                const Obj *ctrl = meta_controller_ref(mc);
                for (size_t k = 0; ctrl && k < n; k++) {
                        if (!streq_ptr(obj_get_str(ctrl, "uid"), meta_uid(sets[k].ms)))
                                continue;
                        SetInfo *s = &sets[k];
                        if (meta_deleting(mc)) {
                                s->deleting++;
                                break;
                        }
                        s->machines++;
                        if (machine_is_ready(mc))
                                s->ready++;
                        if (machine_is_available(mc, min_ready))
                                s->available++;
                        if (machine_upgrading(mc))
                                s->upgrading++;
                        if (machine_upgrade_failed(mc) && !s->failed)
                                s->failed = mc;
                        const char *tv = obj_get_str(s->ms, "spec.template.spec.version");
                        if (!machine_upgrading(mc) &&
                            streq_ptr(obj_get_str(mc, "spec.version"), tv)) {
                                if (machine_kubelet_matches(mc))
                                        s->updated++;
                                else if (!s->stale_kubelet)
                                        s->stale_kubelet = mc;
                        }
                        break;
                }
        }
}

static int cmp_sets_oldest_first(const void *a, const void *b) {
        const SetInfo *x = a, *y = b;
        if (x->revision != y->revision)
                return x->revision < y->revision ? -1 : 1;
        return strcmp(strempty(x->created), strempty(y->created));
}

/* A version the control plane does not run yet must wait (kubelet never newer than the API
 * server). Returns true when the version may roll out; sets *why otherwise. */
static bool control_plane_allows(Manager *m, const Obj *md, const char *version, char *why,
                                 size_t whysz) {
        _cleanup_free_ char *cpv = NULL;
        if (!version)
                return true;
        int r = control_plane_version(m, meta_namespace(md), obj_get_str(md, "spec.clusterName"),
                                      &cpv);
        if (r == -EBUSY) {
                snprintf(why, whysz, "waiting for the control plane's in-place upgrade to finish");
                return false;
        }
        if (r < 0)
                return true; /* no control plane machines here: nothing to compare with */
        int c;
        if (k8s_version_cmp(version, cpv, &c) < 0 || c <= 0)
                return true;
        snprintf(why, whysz,
                 "waiting for the control plane to run %s (it runs %s): a kubelet is "
                 "never newer than its API server",
                 version, cpv);
        return false;
}

/* In place: start the upgrade of outdated machines of the current set, oldest first, while
 * the available machines stay at least replicas - maxUnavailable. */
static int pace_in_place(Manager *m, const Obj *md, SetInfo *cur, const Obj *machines,
                         int64_t replicas, int64_t max_unavailable, int64_t available) {
        const char *version = obj_get_str(cur->ms, "spec.template.spec.version");
        if (!version || cur->failed)
                return 0;
        if (max_unavailable < 1)
                max_unavailable = 1; /* in place there is no surge: one at a time at least */
        int64_t slots = max_unavailable - (replicas - available);
        if (slots <= 0)
                return 0;
        /* Oldest first: collect the candidates, then start as many as there are slots. */
        _cleanup_(obj_freep) Obj *todo = obj_new_list();
        if (!todo)
                return -ENOMEM;
        OBJ_LIST_FOREACH(mc, machines, i) {
                const Obj *ctrl = meta_controller_ref(mc);
                if (!ctrl || !streq_ptr(obj_get_str(ctrl, "uid"), meta_uid(cur->ms)) ||
                    meta_deleting(mc) || machine_upgrading(mc) ||
                    streq_ptr(obj_get_str(mc, "spec.version"), version))
                        continue;
                int r = obj_list_append(todo, obj_dup(mc));
                if (r < 0)
                        return r;
        }
        for (int64_t started = 0; started < slots && obj_len(todo) > 0; started++) {
                size_t best = 0;
                for (size_t i = 1; i < obj_len(todo); i++)
                        if (strcmp(strempty(obj_get_str(obj_list_get(todo, i),
                                                        "metadata.creationTimestamp")),
                                   strempty(obj_get_str(obj_list_get(todo, best),
                                                        "metadata.creationTimestamp"))) < 0)
                                best = i;
                Obj *mc = obj_list_get(todo, best);
                if (!obj_get_str(mc, "metadata.creationTimestamp"))
                        break;
                int r = machine_request_upgrade(m, mc, version);
                if (r < 0)
                        return r;
                log_info("MachineDeployment %s: upgrading machine %s in place to %s.",
                         meta_name(md), meta_name(mc), version);
                /* taken: never picked again in this loop */
                obj_map_del(obj_get(mc, "metadata"), "creationTimestamp");
        }
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

        _cleanup_(obj_freep) Obj *list = NULL, *machines = NULL;
        _cleanup_(obj_freep) Obj *sel = obj_new_map();
        if (!sel || obj_set(sel, "matchLabels", obj_new_map()) < 0 ||
            obj_map_set_str(obj_get(sel, "matchLabels"), LABEL_DEPLOYMENT_NAME, name) < 0)
                return -ENOMEM;
        if ((r = registry_list_all(m->reg, &kind_machineset, ns, sel, &list)) < 0 ||
            (r = registry_list_all(m->reg, &kind_machine, ns, sel, &machines)) < 0)
                return r;

        if (meta_deleting(md)) {
                OBJ_LIST_FOREACH(ms, list, i)
                if (!meta_deleting(ms))
                        (void)registry_delete(m->reg, &kind_machineset, ns, meta_name(ms),
                                              meta_uid(ms));
                return obj_len(list) ? (int)REQUEUE_SOON : 0;
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
        if (cluster_paused(cluster, md)) {
                r = patch_save(m->reg, orig, md);
                return r < 0 ? r : 0;
        }
        /* The templates go with the cluster. */
        const Obj *tspec = obj_get(md, "spec.template.spec");
        if ((r = cluster_own_template(m, cluster, obj_get(tspec, "bootstrap.configRef"), ns)) < 0 ||
            (r = cluster_own_template(m, cluster, obj_get(tspec, "infrastructureRef"), ns)) < 0)
                return r;

        int64_t replicas = 1, min_ready = 0;
        obj_get_int(md, "spec.replicas", &replicas);
        obj_get_int(md, "spec.minReadySeconds", &min_ready);
        RolloutLimits lim;
        if (rollout_limits(md, replicas, &lim) < 0)
                lim = (RolloutLimits){.max_surge = 1, .max_unavailable = 0};
        const char *strategy = obj_get_str(md, "spec.strategy.type") ?: "RollingUpdate";
        bool on_delete = streq(strategy, "OnDelete");
        bool in_place = streq_ptr(meta_annotation(md, ANNOTATION_UPGRADE_STRATEGY), "InPlace");
        bool paused = obj_get_bool(md, "spec.paused", false);
        const Obj *tmpl = obj_get(md, "spec.template");
        const char *version = obj_get_str(tmpl, "spec.version");
        int64_t now = (int64_t)now_usec(CLOCK_REALTIME), rollout_after = 0;
        bool has_rollout_after =
                parse_rfc3339(obj_get_str(md, "spec.rolloutAfter"), &rollout_after) >= 0;
        int result = 0;
        if (has_rollout_after && rollout_after > now)
                result = (int)((uint64_t)(rollout_after - now) < 600 * USEC_PER_SEC
                                       ? (uint64_t)(rollout_after - now) + USEC_PER_SEC
                                       : 600 * USEC_PER_SEC);

        /* The sets, oldest revision first. */
        _cleanup_(sets_done) Sets all_sets = {.v = calloc(obj_len(list) + 1, sizeof(SetInfo))};
        SetInfo *sets = all_sets.v;
        if (!sets)
                return -ENOMEM;
        size_t n = 0;
        OBJ_LIST_FOREACH(ms, list, i) {
                if (meta_deleting(ms))
                        continue;
                all_sets.n = n + 1;
                SetInfo *s = &sets[n++];
                s->ms = ms;
                obj_get_int(ms, "spec.replicas", &s->spec);
                s->revision = revision_of(ms);
                s->created = obj_get_str(ms, "metadata.creationTimestamp");
        }
        qsort(sets, n, sizeof(SetInfo), cmp_sets_oldest_first);
        count_machines(sets, n, machines, min_ready);
        int64_t max_rev = 0;
        for (size_t i = 0; i < n; i++)
                if (sets[i].revision > max_rev)
                        max_rev = sets[i].revision;

        /* The current set: the newest whose template matches. */
        SetInfo *cur = NULL;
        for (size_t i = n; i > 0; i--) {
                SetInfo *s = &sets[i - 1];
                if (!templates_match(tmpl, obj_get(s->ms, "spec.template"), false))
                        continue;
                int64_t created = 0;
                if (has_rollout_after && rollout_after <= now &&
                    parse_rfc3339(s->created, &created) >= 0 && created < rollout_after)
                        continue; /* rolloutAfter reached: made before it, so replaced */
                cur = s;
                break;
        }

        char why[512] = "";
        bool cp_ok = control_plane_allows(m, md, version, why, sizeof(why));
        bool created_new = false;
        if (!cur && !paused && cluster && cp_ok) {
                /* In place: the one active set differs from the template in version only. */
                SetInfo *cand = NULL;
                size_t active = 0;
                for (size_t i = 0; i < n; i++)
                        if (sets[i].spec > 0 || sets[i].machines > 0) {
                                active++;
                                cand = &sets[i];
                        }
                if (in_place && active == 1 &&
                    templates_match(tmpl, obj_get(cand->ms, "spec.template"), true)) {
                        Obj *e = edit_of(cand);
                        if (!e)
                                return -ENOMEM;
                        if (!version)
                                obj_del(e, "spec.template.spec.version");
                        else if ((r = obj_set_str(e, "spec.template.spec.version", version)) < 0)
                                return r;
                        log_info("MachineDeployment %s: upgrading in place: MachineSet %s moves "
                                 "to %s.",
                                 name, meta_name(cand->ms), strna(version));
                        manager_event(m, md, "Normal", "InPlaceUpgrade",
                                      "Upgrading MachineSet %s in place to %s", meta_name(cand->ms),
                                      strna(version));
                        cur = cand;
                } else {
                        if (in_place && active > 0)
                                log_info("MachineDeployment %s: the template changed in more than "
                                         "spec.version; replacing machines instead of upgrading "
                                         "them in place.",
                                         name);
                        int64_t all = 0;
                        for (size_t i = 0; i < n; i++)
                                all += sets[i].spec;
                        int64_t first =
                                rollout_new_replicas(on_delete, replicas, lim.max_surge, all, 0);
                        if (n == 0)
                                first = replicas; /* a new deployment: nothing to replace */
                        r = create_machineset(m, md, first, max_rev + 1, NULL);
                        if (r < 0 && r != -EEXIST)
                                return r;
                        created_new = true;
                }
        }

        if (cur) {
                /* Its revision is the highest (a rollback to an old template bumps it). */
                int64_t max_old = 0;
                for (size_t i = 0; i < n; i++)
                        if (&sets[i] != cur && sets[i].revision > max_old)
                                max_old = sets[i].revision;
                if (cur->revision <= max_old) {
                        char rev[32];
                        snprintf(rev, sizeof(rev), "%lld", (long long)max_old + 1);
                        if ((r = set_annotation(cur, ANNOTATION_REVISION, rev)) < 0)
                                return r;
                        cur->revision = max_old + 1;
                }
                if ((r = sync_mutable_fields(cur, md)) < 0 ||
                    (r = set_annotation(cur, ANNOTATION_DISABLE_CREATE, NULL)) < 0)
                        return r;
                if ((r = meta_set_annotation(md, ANNOTATION_REVISION,
                                             meta_annotation(cur->edit ? cur->edit : cur->ms,
                                                             ANNOTATION_REVISION))) < 0)
                        return r;
        }

        int64_t all_spec = 0, old_available = 0;
        for (size_t i = 0; i < n; i++) {
                all_spec += sets[i].spec;
                if (&sets[i] != cur)
                        old_available +=
                                sets[i].available < sets[i].spec ? sets[i].available : sets[i].spec;
        }

        if (paused || !cur) {
                /* No rollout: replicas follow spec.replicas on the newest active set (or come
                 * off the oldest ones). */
                SetInfo *target = cur;
                for (size_t i = n; !target && i > 0; i--)
                        if (sets[i - 1].spec > 0)
                                target = &sets[i - 1];
                if (target && !created_new) {
                        int64_t diff = replicas - all_spec;
                        if (diff > 0)
                                r = set_replicas(target, target->spec + diff);
                        for (size_t i = 0; r >= 0 && diff < 0 && i < n; i++) {
                                int64_t d = sets[i].spec < -diff ? sets[i].spec : -diff;
                                r = set_replicas(&sets[i], sets[i].spec - d);
                                diff += d;
                        }
                        if (r < 0)
                                return r;
                }
        } else if (on_delete) {
                /* The new set never above replicas; old sets give up exactly the machines the
                 * operator deleted, and (a scale down) the excess, oldest first. */
                if (cur->spec > replicas && (r = set_replicas(cur, replicas)) < 0)
                        return r;
                int64_t total = 0;
                for (size_t i = 0; i < n; i++) {
                        SetInfo *s = &sets[i];
                        if (s != cur && s->spec > 0) {
                                if ((r = set_annotation(s, ANNOTATION_DISABLE_CREATE, "true")) < 0)
                                        return r;
                                if (s->machines < s->spec && (r = set_replicas(s, s->machines)) < 0)
                                        return r;
                        }
                        total += s->spec;
                }
                int64_t excess = total - replicas;
                for (size_t i = 0; i < n && excess > 0; i++) {
                        SetInfo *s = &sets[i];
                        if (s == cur || s->spec == 0)
                                continue;
                        int64_t d = s->spec < excess ? s->spec : excess;
                        if ((r = set_replicas(s, s->spec - d)) < 0)
                                return r;
                        excess -= d;
                }
                all_spec = 0;
                for (size_t i = 0; i < n; i++)
                        all_spec += sets[i].spec;
                if ((r = set_replicas(cur, rollout_new_replicas(true, replicas, 0, all_spec,
                                                                cur->spec))) < 0)
                        return r;
        } else {
                /* RollingUpdate (and the replica count of an in-place deployment). */
                if (cur->spec > replicas)
                        r = set_replicas(cur, replicas);
                else
                        r = set_replicas(cur, rollout_new_replicas(false, replicas, lim.max_surge,
                                                                   all_spec, cur->spec));
                if (r < 0)
                        return r;
                size_t n_old = 0;
                RolloutSet old[n ? n : 1];
                SetInfo *old_of[n ? n : 1];
                for (size_t i = 0; i < n; i++) {
                        if (&sets[i] == cur)
                                continue;
                        old_of[n_old] = &sets[i];
                        old[n_old++] = (RolloutSet){.spec_replicas = sets[i].spec,
                                                    .available = sets[i].available < sets[i].spec
                                                                         ? sets[i].available
                                                                         : sets[i].spec};
                }
                int64_t cur_avail = cur->available < cur->spec ? cur->available : cur->spec;
                if (rollout_scale_down_old(old, n_old, replicas, lim.max_unavailable, cur->spec,
                                           cur_avail) > 0)
                        for (size_t i = 0; i < n_old; i++)
                                if ((r = set_replicas(old_of[i], old[i].new_replicas)) < 0)
                                        return r;
                /* In place, once the set carries the new version (the write of it wakes us). */
                if (in_place && cp_ok &&
                    streq_ptr(obj_get_str(cur->ms, "spec.template.spec.version"), version) &&
                    (r = pace_in_place(m, md, cur, machines, replicas, lim.max_unavailable,
                                       cur_avail + old_available)) < 0)
                        return r;
        }

        /* Write what changed. */
        for (size_t i = 0; i < n; i++) {
                SetInfo *s = &sets[i];
                if (!s->edit || obj_equal(s->edit, s->ms))
                        continue;
                int64_t before = 0;
                obj_get_int(s->ms, "spec.replicas", &before);
                if ((r = registry_update(m->reg, s->edit)) < 0)
                        return r;
                if (before != s->spec)
                        log_info("MachineDeployment %s: MachineSet %s %lld -> %lld replicas.", name,
                                 meta_name(s->ms), (long long)before, (long long)s->spec);
        }

        /* revisionHistoryLimit, once the rollout is complete. */
        int64_t st_replicas = 0, st_ready = 0, st_avail = 0, old_left = 0;
        for (size_t i = 0; i < n; i++) {
                st_replicas += sets[i].machines;
                st_ready += sets[i].ready;
                st_avail += sets[i].available;
                if (&sets[i] != cur)
                        old_left += sets[i].spec + sets[i].machines + sets[i].deleting;
        }
        int64_t updated = cur ? cur->updated : 0;
        bool complete = cur && old_left == 0 && updated == replicas && cur->machines == replicas;
        if (complete) {
                int64_t limit = 1;
                obj_get_int(md, "spec.revisionHistoryLimit", &limit);
                int64_t old_sets = (int64_t)n - 1;
                for (size_t i = 0; i < n && old_sets > limit; i++) {
                        if (&sets[i] == cur)
                                continue;
                        log_info("MachineDeployment %s: deleting old MachineSet %s (revision "
                                 "%lld, beyond revisionHistoryLimit %lld).",
                                 name, meta_name(sets[i].ms), (long long)sets[i].revision,
                                 (long long)limit);
                        r = registry_delete(m->reg, &kind_machineset, ns, meta_name(sets[i].ms),
                                            meta_uid(sets[i].ms));
                        if (r < 0 && r != -ENOENT)
                                return r;
                        old_sets--;
                }
        }

        /* Status, summed over the sets. */
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
            (r = obj_set_int(md, "status.updatedReplicas", updated)) < 0 ||
            (r = obj_set_int(md, "status.unavailableReplicas", unavailable > 0 ? unavailable : 0)) <
                    0 ||
            (r = obj_set_str(md, "status.phase", phase)) < 0 ||
            (r = obj_set_str(md, "status.selector", strempty(selstr))) < 0 ||
            (r = obj_set_int(md, "status.observedGeneration", meta_generation(md))) < 0)
                return r;
        if (st_avail >= replicas - lim.max_unavailable)
                condition_set_true(md, "Available");
        else
                condition_set(md, "Available", COND_FALSE, "WaitingForAvailableMachines",
                              SEVERITY_WARNING,
                              "minimum availability requires %lld replicas, "
                              "current %lld available",
                              (long long)(replicas - lim.max_unavailable), (long long)st_avail);
        if (st_ready >= replicas && st_replicas == replicas)
                condition_set_true(md, "Ready");
        else
                condition_set(md, "Ready", COND_FALSE, "WaitingForMachines", SEVERITY_INFO,
                              "%lld of %lld machines ready", (long long)st_ready,
                              (long long)replicas);
        /* Where the rollout is: what `anvilctl rollout status` prints and describe shows. */
        if (cur && cur->failed) {
                const Obj *f = cur->failed;
                condition_set(md, "MachinesUpToDate", COND_FALSE, "InPlaceUpgradeFailed",
                              SEVERITY_ERROR, "the rollout stopped: machine %s: %s", meta_name(f),
                              strna(condition_message(f, "InPlaceUpgraded")));
        } else if (!cp_ok && (!cur || cur->updated < replicas))
                condition_set(md, "MachinesUpToDate", COND_FALSE, "WaitingForControlPlane",
                              SEVERITY_INFO, "%s", why);
        else if (paused && !complete)
                condition_set(md, "MachinesUpToDate", COND_FALSE, "Paused", SEVERITY_INFO,
                              "the deployment is paused (%lld of %lld machines up to date)",
                              (long long)updated, (long long)replicas);
        else if (complete)
                condition_set_true(md, "MachinesUpToDate");
        else if (cur && cur->stale_kubelet)
                condition_set(md, "MachinesUpToDate", COND_FALSE, "KubeletVersionMismatch",
                              SEVERITY_WARNING, "machine %s: %s", meta_name(cur->stale_kubelet),
                              strna(condition_message(cur->stale_kubelet, "KubeletUpToDate")));
        else if (on_delete && old_left > 0)
                condition_set(md, "MachinesUpToDate", COND_FALSE, "WaitingForMachineDeletion",
                              SEVERITY_INFO,
                              "OnDelete: %lld of %lld machines up to date; delete old machines "
                              "to replace them",
                              (long long)updated, (long long)replicas);
        else
                condition_set(md, "MachinesUpToDate", COND_FALSE,
                              in_place && cur && cur->upgrading ? "UpgradingInPlace"
                                                                : "RollingUpdateInProgress",
                              SEVERITY_INFO, "%lld of %lld machines up to date, %lld available",
                              (long long)updated, (long long)replicas, (long long)st_avail);
        r = patch_save(m->reg, orig, md);
        if (r < 0)
                return r;
        if (cur && cur->upgrading && !cur->failed && (!result || result > (int)REQUEUE_SOON))
                result = (int)REQUEUE_SOON;
        /* Waiting for the control plane: its machines' changes wake us, and so does this. */
        if (!cp_ok && (!result || result > (int)REQUEUE_LATER))
                result = (int)REQUEUE_LATER;
        return result;
}
