/* SPDX-License-Identifier: Apache-2.0 */
#include <sodium.h>
#include <time.h>
#include <uuid/uuid.h>

#include "keys.h"
#include "log.h"
#include "mp.h"
#include "registry.h"

struct Registry {
        Store *store;
        uint8_t data_key[DATA_KEY_LEN];
};

int registry_new(Store *store, const uint8_t data_key[32], Registry **ret) {
        Registry *r = calloc(1, sizeof(Registry));
        if (!r)
                return -ENOMEM;
        r->store = store;
        memcpy(r->data_key, data_key, DATA_KEY_LEN);
        *ret = r;
        return 0;
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        sodium_memzero(r->data_key, sizeof(r->data_key));
        free(r);
        return NULL;
}

Store *registry_store(Registry *r) {
        return r->store;
}

char *registry_key(const KindInfo *k, const char *ns, const char *name) {
        return strjoin(k->kind, "/", k->namespaced ? strempty(ns) : "", "/", name);
}

int registry_parse_key(const char *key, char *buf, size_t bufsz, const KindInfo **ret_kind,
                       const char **ret_ns, const char **ret_name) {
        if (strlen(key) >= bufsz)
                return -ENAMETOOLONG;
        strcpy(buf, key);
        char *s1 = strchr(buf, '/');
        if (!s1)
                return -EINVAL;
        char *s2 = strchr(s1 + 1, '/');
        if (!s2)
                return -EINVAL;
        *s1 = *s2 = 0;
        const KindInfo *k = kind_lookup(buf);
        if (!k)
                return -ENOENT;
        *ret_kind = k;
        *ret_ns = s1 + 1;
        *ret_name = s2 + 1;
        return 0;
}

const char *meta_name(const Obj *o) {
        return obj_get_str(o, "metadata.name");
}

const char *meta_namespace(const Obj *o) {
        return obj_get_str(o, "metadata.namespace");
}

const char *meta_uid(const Obj *o) {
        return obj_get_str(o, "metadata.uid");
}

const char *meta_label(const Obj *o, const char *key) {
        return obj_str(obj_map_get(obj_get(o, "metadata.labels"), key));
}

const char *meta_annotation(const Obj *o, const char *key) {
        return obj_str(obj_map_get(obj_get(o, "metadata.annotations"), key));
}

int meta_set_label(Obj *o, const char *key, const char *value) {
        Obj *meta = obj_map_ensure_map(o, "metadata");
        Obj *labels = meta ? obj_map_ensure_map(meta, "labels") : NULL;
        if (!labels)
                return -ENOMEM;
        if (!value)
                return obj_map_del(labels, key) ? 0 : 0;
        return obj_map_set_str(labels, key, value);
}

int meta_set_annotation(Obj *o, const char *key, const char *value) {
        Obj *meta = obj_map_ensure_map(o, "metadata");
        Obj *ann = meta ? obj_map_ensure_map(meta, "annotations") : NULL;
        if (!ann)
                return -ENOMEM;
        if (!value)
                return obj_map_del(ann, key) ? 0 : 0;
        return obj_map_set_str(ann, key, value);
}

bool meta_deleting(const Obj *o) {
        return obj_get_str(o, "metadata.deletionTimestamp") != NULL;
}

int64_t meta_generation(const Obj *o) {
        int64_t g = 0;
        obj_get_int(o, "metadata.generation", &g);
        return g;
}

bool meta_has_finalizer(const Obj *o, const char *f) {
        OBJ_LIST_FOREACH(it, obj_get(o, "metadata.finalizers"), i)
        if (streq_ptr(obj_str(it), f))
                return true;
        return false;
}

int meta_add_finalizer(Obj *o, const char *f) {
        if (meta_has_finalizer(o, f))
                return 0;
        Obj *meta = obj_map_ensure_map(o, "metadata");
        Obj *l = meta ? obj_map_ensure_list(meta, "finalizers") : NULL;
        if (!l)
                return -ENOMEM;
        int r = obj_list_append(l, obj_new_str(f));
        return r < 0 ? r : 1;
}

int meta_remove_finalizer(Obj *o, const char *f) {
        Obj *l = obj_get(o, "metadata.finalizers");
        OBJ_LIST_FOREACH(it, l, i) {
                if (streq_ptr(obj_str(it), f)) {
                        obj_free(it);
                        memmove(l->list.items + i, l->list.items + i + 1,
                                (l->list.n - i - 1) * sizeof(Obj *));
                        l->list.n--;
                        return 1;
                }
        }
        return 0;
}

const Obj *meta_controller_ref(const Obj *o) {
        OBJ_LIST_FOREACH(ref, obj_get(o, "metadata.ownerReferences"), i)
        if (obj_get_bool(ref, "controller", false))
                return ref;
        return NULL;
}

bool meta_owned_by(const Obj *o, const Obj *owner) {
        const char *uid = meta_uid(owner);
        OBJ_LIST_FOREACH(ref, obj_get(o, "metadata.ownerReferences"), i)
        if (uid && streq_ptr(obj_get_str(ref, "uid"), uid))
                return true;
        return false;
}

static Obj *owner_ref_new(const Obj *owner, bool controller) {
        _cleanup_(obj_freep) Obj *ref = obj_new_map();
        if (!ref ||
            obj_map_set_str(ref, "apiVersion", strempty(obj_get_str(owner, "apiVersion"))) < 0 ||
            obj_map_set_str(ref, "kind", strempty(obj_get_str(owner, "kind"))) < 0 ||
            obj_map_set_str(ref, "name", strempty(meta_name(owner))) < 0 ||
            obj_map_set_str(ref, "uid", strempty(meta_uid(owner))) < 0)
                return NULL;
        if (controller && (obj_map_set_bool(ref, "controller", true) < 0 ||
                           obj_map_set_bool(ref, "blockOwnerDeletion", true) < 0))
                return NULL;
        return TAKE_PTR(ref);
}

int meta_add_owner_ref(Obj *o, const Obj *owner, bool controller) {
        if (meta_owned_by(o, owner))
                return 0;
        Obj *meta = obj_map_ensure_map(o, "metadata");
        Obj *l = meta ? obj_map_ensure_list(meta, "ownerReferences") : NULL;
        if (!l)
                return -ENOMEM;
        int r = obj_list_append(l, owner_ref_new(owner, controller));
        return r < 0 ? r : 1;
}

int meta_set_controller_ref(Obj *o, const Obj *owner) {
        Obj *l = obj_get(o, "metadata.ownerReferences");
        Obj *mine = NULL;
        bool changed = false;
        /* An object has at most one controller: every other reference loses the flag, also
         * when the owner's reference already exists and is only promoted. */
        OBJ_LIST_FOREACH(ref, l, i) {
                if (!mine && streq_ptr(obj_get_str(ref, "uid"), meta_uid(owner))) {
                        mine = ref;
                        continue;
                }
                if (obj_get_bool(ref, "controller", false)) {
                        obj_map_del(ref, "controller");
                        changed = true;
                }
        }
        if (!mine)
                return meta_add_owner_ref(o, owner, true);
        if (!obj_get_bool(mine, "controller", false)) {
                int r = obj_map_set_bool(mine, "controller", true);
                if (r < 0)
                        return r;
                changed = true;
        }
        return changed;
}

Obj *object_ref(const Obj *o) {
        _cleanup_(obj_freep) Obj *ref = obj_new_map();
        if (!ref ||
            obj_map_set_str(ref, "apiVersion", strempty(obj_get_str(o, "apiVersion"))) < 0 ||
            obj_map_set_str(ref, "kind", strempty(obj_get_str(o, "kind"))) < 0 ||
            obj_map_set_str(ref, "name", strempty(meta_name(o))) < 0)
                return NULL;
        if (meta_namespace(o) && obj_map_set_str(ref, "namespace", meta_namespace(o)) < 0)
                return NULL;
        if (meta_uid(o) && obj_map_set_str(ref, "uid", meta_uid(o)) < 0)
                return NULL;
        return TAKE_PTR(ref);
}

/* ---- encoding ---- */

static int encode(Registry *r, const KindInfo *k, Obj *obj, void **ret, size_t *ret_size) {
        /* resourceVersion is derived from the store's mod_rev: never stored. */
        Obj *meta = obj_map_get(obj, "metadata");
        Obj *rv = obj_map_take(meta, "resourceVersion");
        char *buf = NULL;
        size_t size = 0;
        int q = mp_encode(obj, &buf, &size);
        if (rv)
                obj_map_set(meta, "resourceVersion", rv);
        if (q < 0)
                return q;
        if (!k->encrypt_at_rest) {
                *ret = buf;
                *ret_size = size;
                return 0;
        }
        q = data_encrypt(r->data_key, buf, size, ret, ret_size);
        sodium_memzero(buf, size);
        free(buf);
        return q;
}

static int set_resource_version(Obj *obj, int64_t rev) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)rev);
        Obj *meta = obj_map_ensure_map(obj, "metadata");
        return meta ? obj_map_set_str(meta, "resourceVersion", buf) : -ENOMEM;
}

int registry_decode(Registry *r, const StoreKV *kv, Obj **ret) {
        char buf[512];
        const KindInfo *k;
        const char *ns, *name;
        int q = registry_parse_key(kv->key, buf, sizeof(buf), &k, &ns, &name);
        if (q < 0)
                return q;
        _cleanup_(obj_freep) Obj *o = NULL;
        if (k->encrypt_at_rest) {
                _cleanup_free_ void *plain = NULL;
                size_t n = 0;
                q = data_decrypt(r->data_key, kv->value, kv->size, &plain, &n);
                if (q < 0)
                        return q;
                q = mp_decode(plain, n, &o);
                sodium_memzero(plain, n);
        } else
                q = mp_decode(kv->value, kv->size, &o);
        if (q < 0)
                return q;
        q = set_resource_version(o, kv->mod_rev);
        if (q < 0)
                return q;
        *ret = TAKE_PTR(o);
        return 0;
}

int registry_get(Registry *r, const KindInfo *k, const char *ns, const char *name, Obj **ret) {
        _cleanup_free_ char *key = registry_key(k, ns, name);
        if (!key)
                return -ENOMEM;
        _cleanup_free_ void *value = NULL;
        size_t size;
        int64_t rev;
        int q = store_get(r->store, key, &value, &size, &rev);
        if (q < 0)
                return q;
        StoreKV kv = {.key = key, .value = value, .size = size, .mod_rev = rev};
        return registry_decode(r, &kv, ret);
}

typedef struct ListCtx {
        Registry *r;
        RegistryListFn fn;
        void *userdata;
} ListCtx;

static int list_cb(const StoreKV *kv, void *userdata) {
        ListCtx *c = userdata;
        _cleanup_(obj_freep) Obj *o = NULL;
        int q = registry_decode(c->r, kv, &o);
        if (q < 0) {
                log_warning_errno(q, "Skipping undecodable object %s: %m", kv->key);
                return 0;
        }
        return c->fn(o, c->userdata);
}

int registry_list(Registry *r, const KindInfo *k, const char *ns, RegistryListFn fn,
                  void *userdata) {
        _cleanup_free_ char *prefix = ns || !k->namespaced
                                              ? strjoin(k->kind, "/", k->namespaced ? ns : "", "/")
                                              : strjoin(k->kind, "/");
        if (!prefix)
                return -ENOMEM;
        ListCtx c = {r, fn, userdata};
        return store_list(r->store, prefix, list_cb, &c);
}

typedef struct CollectCtx {
        Obj *list;
        const Obj *selector;
} CollectCtx;

static int collect_cb(Obj *o, void *userdata) {
        CollectCtx *c = userdata;
        if (c->selector && label_selector_matches(c->selector, obj_get(o, "metadata.labels")) != 1)
                return 0;
        return obj_list_append(c->list, obj_dup(o)) < 0 ? -ENOMEM : 0;
}

int registry_list_all(Registry *r, const KindInfo *k, const char *ns, const Obj *selector,
                      Obj **ret) {
        _cleanup_(obj_freep) Obj *list = obj_new_list();
        if (!list)
                return -ENOMEM;
        CollectCtx c = {list, selector};
        int q = registry_list(r, k, ns, collect_cb, &c);
        if (q < 0)
                return q;
        *ret = TAKE_PTR(list);
        return 0;
}

static int64_t parse_rv(const Obj *obj) {
        const char *s = obj_get_str(obj, "metadata.resourceVersion");
        if (!s)
                return -1;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end || v < 0)
                return -1;
        return v;
}

static int put(Registry *r, const KindInfo *k, const char *key, Obj *obj, int64_t expect_rev) {
        _cleanup_free_ void *value = NULL;
        size_t size;
        int q = encode(r, k, obj, &value, &size);
        if (q < 0)
                return q;
        StoreCmp cmp = {.key = key, .target = STORE_CMP_MOD_REV, .value = expect_rev};
        StoreOp op = {.type = STORE_OP_PUT, .key = key, .value = value, .size = size};
        int64_t rev;
        q = store_txn(r->store, &cmp, 1, &op, 1, &rev);
        if (q < 0)
                return q;
        if (q == 0)
                return expect_rev == 0 ? -EEXIST : -ESTALE;
        return set_resource_version(obj, rev);
}

static const char gen_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

int registry_create(Registry *r, Obj *obj) {
        const KindInfo *k = kind_lookup(strempty(obj_get_str(obj, "kind")));
        if (!k)
                return -EINVAL;
        char apiv[128];
        int q = obj_map_set_str(obj, "apiVersion", kind_api_version(k, apiv, sizeof(apiv)));
        if (q < 0)
                return q;
        Obj *meta = obj_map_ensure_map(obj, "metadata");
        if (!meta)
                return -ENOMEM;
        if (k->namespaced && !meta_namespace(obj) &&
            (q = obj_map_set_str(meta, "namespace", "default")) < 0)
                return q;
        if (!k->namespaced)
                obj_map_del(meta, "namespace");

        if (!meta_name(obj)) {
                const char *gen = obj_get_str(meta, "generateName");
                if (!gen)
                        return -EINVAL;
                char suffix[6];
                random_string(gen_alphabet, 5, suffix);
                _cleanup_free_ char *name = strjoin(gen, suffix);
                if (!name || (q = obj_map_set_str(meta, "name", name)) < 0)
                        return -ENOMEM;
        }
        uuid_t u;
        char uid[37], ts[32];
        uuid_generate_random(u);
        uuid_unparse_lower(u, uid);
        if ((q = obj_map_set_str(meta, "uid", uid)) < 0 ||
            (q = obj_map_set_str(meta, "creationTimestamp",
                                 format_rfc3339((int64_t)now_usec(CLOCK_REALTIME), ts))) < 0 ||
            (q = obj_map_set_int(meta, "generation", 1)) < 0)
                return q;
        obj_map_del(meta, "deletionTimestamp");
        obj_map_del(meta, "resourceVersion");

        _cleanup_free_ char *key = registry_key(k, meta_namespace(obj), meta_name(obj));
        if (!key)
                return -ENOMEM;
        return put(r, k, key, obj, 0);
}

static int delete_key(Registry *r, const char *key, int64_t expect_rev) {
        StoreCmp cmp = {.key = key, .target = STORE_CMP_MOD_REV, .value = expect_rev};
        StoreOp op = {.type = STORE_OP_DELETE, .key = key};
        int q = store_txn(r->store, &cmp, 1, &op, 1, NULL);
        if (q < 0)
                return q;
        return q == 0 ? -ESTALE : 0;
}

static int update_common(Registry *r, Obj *obj, bool status_only) {
        const KindInfo *k = kind_lookup(strempty(obj_get_str(obj, "kind")));
        if (!k)
                return -EINVAL;
        const char *ns = k->namespaced ? meta_namespace(obj) : "";
        const char *name = meta_name(obj);
        if (!name)
                return -EINVAL;
        int64_t rev = parse_rv(obj);
        if (rev <= 0)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *live = NULL;
        int q = registry_get(r, k, ns, name, &live);
        if (q < 0)
                return q;
        if (parse_rv(live) != rev)
                return -ESTALE;

        _cleanup_(obj_freep) Obj *next = NULL;
        if (status_only) {
                /* Take the live object and replace its status. */
                next = TAKE_PTR(live);
                Obj *st = obj_map_get(obj, "status");
                if (st) {
                        if ((q = obj_map_set(next, "status", obj_dup(st))) < 0)
                                return q;
                } else
                        obj_map_del(next, "status");
        } else {
                next = obj_dup(obj);
                if (!next)
                        return -ENOMEM;
                /* Keep live status, and the metadata the server owns. */
                Obj *lst = obj_map_take(live, "status");
                obj_map_del(next, "status");
                if (lst && (q = obj_map_set(next, "status", lst)) < 0)
                        return q;
                Obj *nmeta = obj_map_ensure_map(next, "metadata");
                const char *keep[] = {"uid", "creationTimestamp", "generation", "deletionTimestamp",
                                      "namespace"};
                for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
                        const Obj *lv = obj_get(obj_map_get(live, "metadata"), keep[i]);
                        if (lv)
                                q = obj_map_set(nmeta, keep[i], obj_dup(lv));
                        else
                                obj_map_del(nmeta, keep[i]);
                        if (q < 0)
                                return q;
                }
                if (!obj_equal(obj_map_get(live, "spec"), obj_map_get(next, "spec"))) {
                        int64_t g = meta_generation(live);
                        if ((q = obj_map_set_int(nmeta, "generation", g + 1)) < 0)
                                return q;
                }
                /* A deleting object whose last finalizer is gone is removed. */
                if (meta_deleting(next) && obj_len(obj_get(next, "metadata.finalizers")) == 0) {
                        _cleanup_free_ char *key = registry_key(k, ns, name);
                        if (!key)
                                return -ENOMEM;
                        q = delete_key(r, key, rev);
                        return q < 0 ? q : 1;
                }
        }

        _cleanup_free_ char *key = registry_key(k, ns, name);
        if (!key)
                return -ENOMEM;
        q = put(r, k, key, next, rev);
        if (q < 0)
                return q;
        /* Hand the stored metadata back to the caller. */
        Obj *meta = obj_map_get(next, "metadata");
        q = obj_map_set(obj, "metadata", obj_dup(meta));
        if (q < 0)
                return q;
        return 0;
}

int registry_update(Registry *r, Obj *obj) {
        return update_common(r, obj, false);
}

int registry_update_status(Registry *r, Obj *obj) {
        return update_common(r, obj, true);
}

int64_t registry_update_status_as_read(Registry *r, Obj *obj) {
        const KindInfo *k = kind_lookup(strempty(obj_get_str(obj, "kind")));
        if (!k)
                return -EINVAL;
        const char *name = meta_name(obj);
        int64_t rev = parse_rv(obj);
        if (!name || rev <= 0)
                return -EINVAL;
        _cleanup_free_ char *key = registry_key(k, k->namespaced ? meta_namespace(obj) : "", name);
        if (!key)
                return -ENOMEM;
        /* The caller read obj at rev: the compare in put() is the whole precondition, and
         * nothing but its status differs from what is stored. */
        int q = put(r, k, key, obj, rev);
        if (q < 0)
                return q;
        return parse_rv(obj);
}

int registry_delete(Registry *r, const KindInfo *k, const char *ns, const char *name,
                    const char *uid) {
        _cleanup_(obj_freep) Obj *live = NULL;
        int q = registry_get(r, k, ns, name, &live);
        if (q < 0)
                return q;
        if (uid && !streq_ptr(meta_uid(live), uid))
                return -ESTALE;
        int64_t rev = parse_rv(live);
        _cleanup_free_ char *key = registry_key(k, k->namespaced ? ns : "", name);
        if (!key)
                return -ENOMEM;
        if (obj_len(obj_get(live, "metadata.finalizers")) == 0)
                return delete_key(r, key, rev);
        if (meta_deleting(live))
                return 1;
        char ts[32];
        q = obj_set_str(live, "metadata.deletionTimestamp",
                        format_rfc3339((int64_t)now_usec(CLOCK_REALTIME), ts));
        if (q < 0)
                return q;
        q = put(r, k, key, live, rev);
        return q < 0 ? q : 1;
}
