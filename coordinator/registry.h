/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry: resources on top of the store, with the Kubernetes API server's metadata
 * semantics. It is the only code that encodes objects into the store.
 *
 *  - uid (libuuid), creationTimestamp and generation 1 on create; generateName;
 *  - resourceVersion is the key's mod_rev, never stored in the body; updates are
 *    preconditioned on it (a stale one fails with -ESTALE: a conflict);
 *  - generation is bumped when, and only when, spec changes;
 *  - update() keeps the stored status, update_status() changes only status (the status
 *    subresource), so apply never writes status and controllers never clobber spec;
 *  - delete of an object with finalizers sets deletionTimestamp; the object goes away when
 *    its last finalizer is removed by an update;
 *  - Secrets are sealed with the data key before they reach the store (encryption at rest).
 */
#pragma once

#include <stdint.h>

#include "kinds.h"
#include "obj.h"
#include "store.h"

typedef struct Registry Registry;

int registry_new(Store *store, const uint8_t data_key[32], Registry **ret);
Registry *registry_free(Registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);
Store *registry_store(Registry *r);

/* "Kind/namespace/name"; cluster-scoped kinds have an empty namespace. */
char *registry_key(const KindInfo *k, const char *ns, const char *name);
/* Splits a key; returned pointers point into buf. */
int registry_parse_key(const char *key, char *buf, size_t bufsz, const KindInfo **ret_kind,
                       const char **ret_ns, const char **ret_name);

/* Decodes a stored value of key (decrypting Secrets); sets metadata.resourceVersion. */
int registry_decode(Registry *r, const StoreKV *kv, Obj **ret);

int registry_get(Registry *r, const KindInfo *k, const char *ns, const char *name, Obj **ret);

/* fn gets each object (borrowed, valid during the call); non-zero stops. ns NULL = all. */
typedef int (*RegistryListFn)(Obj *obj, void *userdata);
int registry_list(Registry *r, const KindInfo *k, const char *ns, RegistryListFn fn,
                  void *userdata);
/* Collects into an OBJ_LIST (caller owns), optionally filtered by a label selector. */
int registry_list_all(Registry *r, const KindInfo *k, const char *ns, const Obj *selector,
                      Obj **ret);

/* Creates obj (kind from obj). Fills metadata; returns -EEXIST if present. On success obj
 * holds the stored metadata (uid, resourceVersion...). */
int registry_create(Registry *r, Obj *obj);
/* Updates metadata and spec (and top-level extras); keeps status. Precondition: obj's
 * metadata.resourceVersion (-ESTALE on mismatch, -ENOENT if gone). Refreshes obj's metadata.
 * If the object is being deleted and has no finalizers left, deletes it (returns 1). */
int registry_update(Registry *r, Obj *obj);
/* Replaces status only; same precondition. */
int registry_update_status(Registry *r, Obj *obj);
/* Writes obj as it is: an object read with registry_get() whose status alone the caller then
 * changed (the status subresource without reading it again, for the fan-out's per-message
 * writes). Same precondition (-ESTALE when the object moved since it was read); refreshes
 * obj's resourceVersion and returns the store revision of the write. */
int64_t registry_update_status_as_read(Registry *r, Obj *obj);
/* Deletes or, with finalizers, marks for deletion. Returns 1 when marked, 0 when removed,
 * -ENOENT when absent. If uid is given it must match (-ESTALE otherwise). */
int registry_delete(Registry *r, const KindInfo *k, const char *ns, const char *name,
                    const char *uid);

/* Small metadata helpers used by controllers. */
const char *meta_name(const Obj *o);
const char *meta_namespace(const Obj *o);
const char *meta_uid(const Obj *o);
const char *meta_label(const Obj *o, const char *key);
const char *meta_annotation(const Obj *o, const char *key);
int meta_set_label(Obj *o, const char *key, const char *value);
int meta_set_annotation(Obj *o, const char *key, const char *value);
bool meta_deleting(const Obj *o);
int64_t meta_generation(const Obj *o);
bool meta_has_finalizer(const Obj *o, const char *f);
int meta_add_finalizer(Obj *o, const char *f);    /* 1 if added */
int meta_remove_finalizer(Obj *o, const char *f); /* 1 if removed */
/* The controller owner reference, if any. */
const Obj *meta_controller_ref(const Obj *o);
bool meta_owned_by(const Obj *o, const Obj *owner);
/* Sets (or replaces) the controller owner reference to owner. */
int meta_set_controller_ref(Obj *o, const Obj *owner);
int meta_add_owner_ref(Obj *o, const Obj *owner, bool controller);
/* An ObjectReference (apiVersion, kind, name, namespace, uid) to o. */
Obj *object_ref(const Obj *o);
