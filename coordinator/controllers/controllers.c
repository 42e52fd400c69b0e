/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dispatch of queued keys to the reconciler of their kind, the mapping from a committed
 * change to the reconciles it concerns, and the helpers several reconcilers share.
 */
#include <sodium.h>
#include <time.h>

#include "controllers.h"
#include "log.h"
#include "metrics.h"
#include "resource.h"

extern const KindInfo kind_cluster, kind_machine, kind_machineset, kind_machinedeployment,
        kind_kubeadmcontrolplane, kind_kubeadmconfig, kind_anvilcluster, kind_anvilmachine,
        kind_host, kind_kubeadmconfigtemplate, kind_anvilmachinetemplate, kind_machinehealthcheck;

static const struct {
        const KindInfo *kind;
        int (*reconcile)(Manager *m, const char *ns, const char *name);
} reconcilers[] = {
        {&kind_cluster, reconcile_cluster},
        {&kind_anvilcluster, reconcile_anvilcluster},
        {&kind_kubeadmcontrolplane, reconcile_kcp},
        {&kind_machinedeployment, reconcile_machinedeployment},
        {&kind_machineset, reconcile_machineset},
        {&kind_machine, reconcile_machine},
        {&kind_kubeadmconfig, reconcile_kubeadmconfig},
        {&kind_anvilmachine, reconcile_anvilmachine},
        {&kind_host, reconcile_host},
        {&kind_machinehealthcheck, reconcile_mhc},
};

/* Garbage collection: the dependents of a deleted object go too (background cascading
 * deletion, as Kubernetes' garbage collector does). Keys look like "_gc/<ns>/<uid>". As in
 * Kubernetes, a dependent that still has another owner (a template two clusters share)
 * stays: only the reference to the deleted owner is removed from it. */
typedef struct GcCtx {
        Manager *m;
        const char *uid;
        size_t n;
} GcCtx;

/* The owner ref names exists (same uid: not a namesake made since) and is not being deleted
 * (two clusters deleted together must not each leave the shared template to the other). */
static bool owner_exists(Manager *m, const Obj *ref, const char *ns) {
        const KindInfo *k = kind_lookup(strempty(obj_get_str(ref, "kind")));
        const char *name = obj_get_str(ref, "name");
        _cleanup_(obj_freep) Obj *o = NULL;
        if (!k || !name || registry_get(m->reg, k, k->namespaced ? ns : "", name, &o) < 0)
                return false;
        return streq_ptr(meta_uid(o), obj_get_str(ref, "uid")) && !meta_deleting(o);
}

static int gc_cb(Obj *o, void *userdata) {
        GcCtx *c = userdata;
        Obj *refs = obj_get(o, "metadata.ownerReferences");
        bool mine = false, others = false;
        OBJ_LIST_FOREACH(ref, refs, i) {
                if (streq_ptr(obj_get_str(ref, "uid"), c->uid))
                        mine = true;
                else if (!others && owner_exists(c->m, ref, meta_namespace(o)))
                        others = true;
        }
        const KindInfo *k = kind_lookup(strempty(obj_get_str(o, "kind")));
        if (!mine || !k || meta_deleting(o))
                return 0;
        int r;
        if (others) {
                for (size_t i = obj_len(refs); i > 0; i--)
                        if (streq_ptr(obj_get_str(obj_list_get(refs, i - 1), "uid"), c->uid)) {
                                char path[64];
                                snprintf(path, sizeof(path), "metadata.ownerReferences[%zu]",
                                         i - 1);
                                obj_del(o, path);
                        }
                r = registry_update(c->m->reg, o);
        } else
                r = registry_delete(c->m->reg, k, k->namespaced ? meta_namespace(o) : "",
                                    meta_name(o), meta_uid(o));
        if (r < 0 && r != -ENOENT && r != -ESTALE)
                return r;
        c->n++;
        return 0;
}

static int collect_garbage(Manager *m, const char *ns, const char *uid) {
        GcCtx c = {.m = m, .uid = uid};
        for (const KindInfo *const *k = anvil_kinds; *k; k++) {
                int r = registry_list(m->reg, *k, (*k)->namespaced ? ns : NULL, gc_cb, &c);
                if (r < 0)
                        return r;
        }
        if (c.n)
                log_debug("Garbage collector: deleted %zu dependents of %s.", c.n, uid);
        return 0;
}

int controllers_reconcile(const char *key, void *userdata) {
        Manager *m = userdata;
        char buf[512];
        if (startswith(key, "_gc/")) {
                const char *ns = key + 4, *slash = strchr(ns, '/');
                if (!slash || (size_t)(slash - ns) >= sizeof(buf))
                        return 0;
                memcpy(buf, ns, (size_t)(slash - ns));
                buf[slash - ns] = 0;
                return collect_garbage(m, buf, slash + 1);
        }
        const KindInfo *k;
        const char *ns, *name;
        if (registry_parse_key(key, buf, sizeof(buf), &k, &ns, &name) < 0)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(reconcilers); i++) {
                if (reconcilers[i].kind != k)
                        continue;
                uint64_t t0 = now_usec(CLOCK_MONOTONIC);
                int r = reconcilers[i].reconcile(m, ns, name);
                metrics_reconcile(m->metrics, k->kind, now_usec(CLOCK_MONOTONIC) - t0, r);
                if (r == -ESTALE) {
                        /* Someone wrote the object since we read it: look again, soon. */
                        log_debug("Conflict reconciling %s, retrying.", key);
                        return -ESTALE;
                }
                if (r < 0)
                        log_warning_errno(r, "Reconciling %s failed, will retry: %m", key);
                return r;
        }
        return 0;
}

static void enqueue_ref(Manager *m, const Obj *ref, const char *default_ns) {
        const char *kind = obj_get_str(ref, "kind");
        const char *name = obj_get_str(ref, "name");
        if (!kind || !name)
                return;
        const KindInfo *k = kind_lookup(kind);
        if (!k)
                return;
        const char *ns = obj_get_str(ref, "namespace");
        (void)manager_enqueue(m, k->kind, k->namespaced ? (ns ? ns : default_ns) : "", name);
}

typedef struct EnqueueCtx {
        Manager *m;
        const char *cluster;
        bool only_waiting;
} EnqueueCtx;

static int enqueue_by_cluster(Obj *o, void *userdata) {
        EnqueueCtx *c = userdata;
        if (!streq_ptr(meta_label(o, LABEL_CLUSTER_NAME), c->cluster) &&
            !streq_ptr(obj_get_str(o, "spec.clusterName"), c->cluster))
                return 0;
        (void)manager_enqueue(c->m, obj_get_str(o, "kind"), meta_namespace(o), meta_name(o));
        return 0;
}

void controllers_map_change(Manager *m, const KindInfo *k, const Obj *obj) {
        const char *ns = meta_namespace(obj);
        const char *name = meta_name(obj);
        if (!name)
                return;
        (void)manager_enqueue(m, k->kind, k->namespaced ? ns : "", name);

        /* Owners hear about their dependents. */
        OBJ_LIST_FOREACH(ref, obj_get(obj, "metadata.ownerReferences"), i)
        enqueue_ref(m, ref, ns);

        if (k == &kind_host) {
                /* The Machine (and its AnvilMachine, same name) that claimed it. */
                const Obj *consumer = obj_get(obj, "spec.consumerRef");
                /* (A host that became free wakes the machines waiting for one: manager.c,
                 * from the host pool.) */
                if (consumer) {
                        enqueue_ref(m, consumer, "default");
                        const char *cname = obj_get_str(consumer, "name");
                        const char *cns = obj_get_str(consumer, "namespace");
                        if (cname)
                                (void)manager_enqueue(m, "AnvilMachine", cns ? cns : "default",
                                                      cname);
                }
        } else if (k == &kind_machine) {
                const char *cluster = obj_get_str(obj, "spec.clusterName");
                if (cluster)
                        (void)manager_enqueue(m, "Cluster", ns, cluster);
                /* Its deployment counts machines itself (availability, a finished rollout). */
                const char *md = meta_label(obj, LABEL_DEPLOYMENT_NAME);
                if (md)
                        (void)manager_enqueue(m, "MachineDeployment", ns, md);
                /* A control plane machine's version decides whether workers may follow. */
                if (cluster && meta_label(obj, LABEL_CONTROL_PLANE)) {
                        EnqueueCtx mdc = {.m = m, .cluster = cluster};
                        (void)registry_list(m->reg, &kind_machinedeployment, ns, enqueue_by_cluster,
                                            &mdc);
                }
                /* Health checks of its cluster judge it again. */
                EnqueueCtx c = {.m = m, .cluster = cluster};
                if (cluster)
                        (void)registry_list(m->reg, &kind_machinehealthcheck, ns,
                                            enqueue_by_cluster, &c);
                enqueue_ref(m, obj_get(obj, "spec.bootstrap.configRef"), ns);
                enqueue_ref(m, obj_get(obj, "spec.infrastructureRef"), ns);
        } else if (k == &kind_cluster) {
                enqueue_ref(m, obj_get(obj, "spec.infrastructureRef"), ns);
                enqueue_ref(m, obj_get(obj, "spec.controlPlaneRef"), ns);
                /* Bootstrap configs and deployments wait on cluster state (infrastructure
                 * ready, control plane initialized). */
                EnqueueCtx c = {.m = m, .cluster = name};
                (void)registry_list(m->reg, &kind_kubeadmconfig, ns, enqueue_by_cluster, &c);
                (void)registry_list(m->reg, &kind_machinedeployment, ns, enqueue_by_cluster, &c);
                (void)registry_list(m->reg, &kind_machine, ns, enqueue_by_cluster, &c);
        } else if (k == &kind_anvilcluster || k == &kind_kubeadmcontrolplane) {
                const char *cluster = meta_label(obj, LABEL_CLUSTER_NAME);
                if (cluster)
                        (void)manager_enqueue(m, "Cluster", ns, cluster);
        } else if (k == &kind_kubeadmconfigtemplate || k == &kind_anvilmachinetemplate) {
                /* Templates are read by MachineSets/Deployments of their cluster. */
                EnqueueCtx c = {.m = m, .cluster = meta_label(obj, LABEL_CLUSTER_NAME)};
                if (c.cluster)
                        (void)registry_list(m->reg, &kind_machinedeployment, ns, enqueue_by_cluster,
                                            &c);
        }
}

static int enqueue_cb(Obj *o, void *userdata) {
        Manager *m = userdata;
        const KindInfo *k = kind_lookup(strempty(obj_get_str(o, "kind")));
        if (k)
                (void)manager_enqueue(m, k->kind, k->namespaced ? meta_namespace(o) : "",
                                      meta_name(o));
        return 0;
}

int controllers_enqueue_all(Manager *m) {
        for (size_t i = 0; i < ELEMENTSOF(reconcilers); i++) {
                int r = registry_list(m->reg, reconcilers[i].kind, NULL, enqueue_cb, m);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- shared helpers ---- */

bool cluster_paused(const Obj *cluster, const Obj *obj) {
        if (obj_get_bool(cluster, "spec.paused", false))
                return true;
        if (cluster && meta_annotation(cluster, ANNOTATION_PAUSED))
                return true;
        return obj && meta_annotation(obj, ANNOTATION_PAUSED) != NULL;
}

int get_owner_cluster(Manager *m, const Obj *obj, Obj **ret) {
        const char *name = meta_label(obj, LABEL_CLUSTER_NAME);
        if (!name)
                name = obj_get_str(obj, "spec.clusterName");
        if (!name)
                return -ENOENT;
        return registry_get(m->reg, &kind_cluster, meta_namespace(obj), name, ret);
}

int cluster_own_template(Manager *m, const Obj *cluster, const Obj *ref, const char *ns) {
        const char *kind = obj_get_str(ref, "kind");
        const char *name = obj_get_str(ref, "name");
        size_t kl = kind ? strlen(kind) : 0;
        if (!cluster || !name || kl < 8 || !streq(kind + kl - 8, "Template"))
                return 0;
        const KindInfo *k = kind_lookup(kind);
        if (!k)
                return 0;
        const char *rns = obj_get_str(ref, "namespace");
        _cleanup_(obj_freep) Obj *t = NULL;
        int r = registry_get(m->reg, k, rns ? rns : ns, name, &t);
        if (r == -ENOENT || (r >= 0 && meta_owned_by(t, cluster)))
                return 0; /* a missing template is reported where it is used */
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *orig = obj_dup(t);
        if (!orig)
                return -ENOMEM;
        if ((r = meta_add_owner_ref(t, cluster, false)) < 0)
                return r;
        log_debug("%s %s: owned by Cluster %s now.", kind, name, meta_name(cluster));
        return patch_save(m->reg, orig, t);
}

char *machine_host_name(Manager *m, const Obj *machine) {
        const char *am_name = obj_get_str(machine, "spec.infrastructureRef.name");
        _cleanup_(obj_freep) Obj *am = NULL;
        if (!am_name ||
            registry_get(m->reg, &kind_anvilmachine, meta_namespace(machine), am_name, &am) < 0)
                return NULL;
        const char *h = obj_get_str(am, "status.hostRef.name");
        return h ? strdup(h) : NULL;
}

bool machine_is_ready(const Obj *machine) {
        return obj_get(machine, "status.nodeRef") != NULL &&
               streq_ptr(obj_get_str(machine, "status.phase"), "Running") &&
               condition_is_true(machine, "NodeHealthy");
}

bool machine_kubelet_matches(const Obj *machine) {
        const char *want = obj_get_str(machine, "spec.version");
        const char *have = obj_get_str(machine, "status.nodeInfo.kubeletVersion");
        int c;
        return !want || !have || (k8s_version_cmp(want, have, &c) >= 0 && c == 0);
}

bool machine_is_available(const Obj *machine, int64_t min_ready_seconds) {
        if (!machine_is_ready(machine) || meta_deleting(machine) || machine_upgrading(machine))
                return false;
        if (min_ready_seconds <= 0)
                return true;
        const Obj *c = condition_get(machine, "Ready");
        int64_t since;
        if (!c || parse_rfc3339(obj_get_str(c, "lastTransitionTime"), &since) < 0)
                return false;
        return (int64_t)now_usec(CLOCK_REALTIME) - since >=
               min_ready_seconds * (int64_t)USEC_PER_SEC;
}

char *object_key(const Obj *obj) {
        const KindInfo *k = kind_lookup(strempty(obj_get_str(obj, "kind")));
        if (!k || !meta_name(obj))
                return NULL;
        return registry_key(k, meta_namespace(obj), meta_name(obj));
}

static int set_labels_and_annotations(Obj *o, const Obj *labels, const Obj *annotations) {
        int r;
        OBJ_MAP_FOREACH(e, labels)
        if ((r = meta_set_label(o, e->key, obj_str(e->value))) < 0)
                return r;
        OBJ_MAP_FOREACH(e, annotations)
        if ((r = meta_set_annotation(o, e->key, obj_str(e->value))) < 0)
                return r;
        return 0;
}

static Obj *ref_to(const char *api_version, const char *kind, const char *name, const char *ns) {
        _cleanup_(obj_freep) Obj *ref = obj_new_map();
        if (!ref || obj_map_set_str(ref, "apiVersion", api_version) < 0 ||
            obj_map_set_str(ref, "kind", kind) < 0 || obj_map_set_str(ref, "name", name) < 0 ||
            obj_map_set_str(ref, "namespace", ns) < 0)
                return NULL;
        return TAKE_PTR(ref);
}

int create_machine_trio(Manager *m, const Obj *owner, const char *cluster_name,
                        const Obj *machine_template_spec, const Obj *labels, const Obj *annotations,
                        const Obj *kubeadm_config_spec, const Obj *infra_template_spec,
                        char **ret_name) {
        static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
        const char *ns = meta_namespace(owner);
        char suffix[6], name[256];
        int r;

        /* Names like Cluster API's: <owner>-<5 random>. Retry a collision. */
        for (int attempt = 0;; attempt++) {
                random_string(alphabet, 5, suffix);
                snprintf(name, sizeof(name), "%.56s-%s", meta_name(owner), suffix);
                _cleanup_(obj_freep) Obj *existing = NULL;
                r = registry_get(m->reg, &kind_machine, ns, name, &existing);
                if (r == -ENOENT)
                        break;
                if (r < 0)
                        return r;
                if (attempt > 8)
                        return -EEXIST;
        }

        /* The Machine first: it owns the other two. */
        _cleanup_(obj_freep) Obj *machine = obj_new_map();
        if (!machine || obj_map_set_str(machine, "kind", "Machine") < 0 ||
            obj_set_str(machine, "metadata.name", name) < 0 ||
            obj_set_str(machine, "metadata.namespace", ns) < 0)
                return -ENOMEM;
        if ((r = set_labels_and_annotations(machine, labels, annotations)) < 0 ||
            (r = meta_set_label(machine, LABEL_CLUSTER_NAME, cluster_name)) < 0 ||
            (r = meta_add_owner_ref(machine, owner, true)) < 0 ||
            (r = meta_add_finalizer(machine, FINALIZER_MACHINE)) < 0)
                return r;
        _cleanup_(obj_freep) Obj *spec =
                machine_template_spec ? obj_dup(machine_template_spec) : obj_new_map();
        if (!spec || obj_map_set_str(spec, "clusterName", cluster_name) < 0 ||
            obj_map_set(spec, "bootstrap", obj_new_map()) < 0 ||
            obj_set(spec, "bootstrap.configRef",
                    ref_to("bootstrap.cluster.x-k8s.io/v1beta1", "KubeadmConfig", name, ns)) < 0 ||
            obj_map_set(spec, "infrastructureRef",
                        ref_to("infrastructure.anvil.dev/v1alpha1", "AnvilMachine", name, ns)) < 0)
                return -ENOMEM;
        if ((r = obj_map_set(machine, "spec", TAKE_PTR(spec))) < 0)
                return r;
        char ts[32];
        if ((r = obj_set_str(machine, "status.phase", "Pending")) < 0 ||
            (r = obj_set_str(machine, "status.lastUpdated", now_rfc3339(ts))) < 0)
                return r;
        r = registry_create(m->reg, machine);
        if (r < 0)
                return r;

        _cleanup_(obj_freep) Obj *config = obj_new_map();
        if (!config || obj_map_set_str(config, "kind", "KubeadmConfig") < 0 ||
            obj_set_str(config, "metadata.name", name) < 0 ||
            obj_set_str(config, "metadata.namespace", ns) < 0 ||
            obj_map_set(config, "spec",
                        kubeadm_config_spec ? obj_dup(kubeadm_config_spec) : obj_new_map()) < 0)
                return -ENOMEM;
        if ((r = set_labels_and_annotations(config, labels, NULL)) < 0 ||
            (r = meta_set_label(config, LABEL_CLUSTER_NAME, cluster_name)) < 0 ||
            (r = meta_add_owner_ref(config, machine, true)) < 0)
                return r;
        r = registry_create(m->reg, config);
        if (r < 0)
                return r;

        _cleanup_(obj_freep) Obj *infra = obj_new_map();
        if (!infra || obj_map_set_str(infra, "kind", "AnvilMachine") < 0 ||
            obj_set_str(infra, "metadata.name", name) < 0 ||
            obj_set_str(infra, "metadata.namespace", ns) < 0 ||
            obj_map_set(infra, "spec",
                        infra_template_spec ? obj_dup(infra_template_spec) : obj_new_map()) < 0)
                return -ENOMEM;
        if ((r = set_labels_and_annotations(infra, labels, NULL)) < 0 ||
            (r = meta_set_label(infra, LABEL_CLUSTER_NAME, cluster_name)) < 0 ||
            (r = meta_add_owner_ref(infra, machine, true)) < 0 ||
            (r = meta_add_finalizer(infra, FINALIZER_ANVILMACHINE)) < 0)
                return r;
        r = registry_create(m->reg, infra);
        if (r < 0)
                return r;

        manager_event(m, owner, "Normal", "SuccessfulCreate", "Created machine %s", name);
        if (ret_name) {
                *ret_name = strdup(name);
                if (!*ret_name)
                        return -ENOMEM;
        }
        return 0;
}

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
void object_hash(const Obj *tmpl, char out[11]) {
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
