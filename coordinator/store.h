/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store: an etcd-shaped key/value interface, so that the embedded SQLite backend (one
 * coordinator) and a future etcd backend (several coordinators with leader election) are
 * two implementations of one contract.
 *
 *  - keys are "Kind/namespace/name" ("Host//rack1-07" for cluster-scoped kinds) and a few
 *    internal prefixes ("_token/<hash>");
 *  - every successful write bumps one global revision; each key keeps create_rev, mod_rev
 *    and a version counter, as etcd does; mod_rev is the object's resourceVersion;
 *  - store_txn() applies compares and operations atomically (all or nothing), exactly
 *    etcd's Txn(If(...).Then(...));
 *  - writes are group-committed: they land in an open transaction, visible to readers of
 *    this store at once, and become durable at store_commit(), which fsyncs (SQLite WAL with
 *    synchronous=FULL) before it returns. Nothing may be acknowledged to anyone (admin
 *    reply, agent message) before the commit that holds it; the manager commits once per
 *    event loop iteration and only then sends;
 *  - watchers see events only after they are committed, in revision order, so controllers
 *    never act on state a crash could take back.
 *
 * Expected load: 10,000 hosts, each with a Host, Machine, AnvilMachine, KubeadmConfig and
 * two Secrets; bursts of ~10,000 writes in a rollout; heartbeats do not write.
 */
#pragma once

#include <stdint.h>

#include "macro.h"

typedef struct Store Store;

typedef struct StoreKV {
        const char *key;
        const void *value;
        size_t size;
        int64_t create_rev;
        int64_t mod_rev;
        int64_t version;
} StoreKV;

typedef enum StoreCmpTarget {
        STORE_CMP_MOD_REV,  /* mod_rev == value (0 = key absent) */
        STORE_CMP_EXISTS,   /* value != 0: key must exist; 0: must not */
} StoreCmpTarget;

typedef struct StoreCmp {
        const char *key;
        StoreCmpTarget target;
        int64_t value;
} StoreCmp;

typedef enum StoreOpType {
        STORE_OP_PUT,
        STORE_OP_DELETE,
} StoreOpType;

typedef struct StoreOp {
        StoreOpType type;
        const char *key;
        const void *value;
        size_t size;
} StoreOp;

typedef enum StoreEventType {
        STORE_EVENT_PUT,
        STORE_EVENT_DELETE,
} StoreEventType;

typedef struct StoreEvent {
        StoreEventType type;
        StoreKV kv;        /* the new value (PUT) */
        StoreKV prev;      /* the previous value (DELETE always; PUT when it existed) */
} StoreEvent;

/* Called after commit, once per event, in revision order. Values are borrowed. */
typedef void (*StoreWatchFn)(const StoreEvent *ev, void *userdata);
typedef int (*StoreListFn)(const StoreKV *kv, void *userdata);

typedef struct StoreStats {
        uint64_t commits;
        uint64_t writes;
        uint64_t commit_usec_total;
        uint64_t commit_usec_max;
} StoreStats;

/* Opens (creating when absent) the SQLite store at path. */
int store_open_sqlite(const char *path, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* Copies the value out: *ret is malloc'd (NUL-terminated beyond size). -ENOENT if absent. */
int store_get(Store *s, const char *key, void **ret, size_t *ret_size, int64_t *ret_mod_rev);
/* Iterates keys with the prefix in key order; stops early when fn returns non-zero (which is
 * returned). */
int store_list(Store *s, const char *prefix, StoreListFn fn, void *userdata);
/* Returns 1 when the compares held and the ops were applied, 0 when a compare failed
 * (nothing applied), <0 on error. *ret_rev gets the revision after the txn when applied: a
 * new one if it changed anything, else the current one (deleting absent keys changes
 * nothing, as in etcd). */
int store_txn(Store *s, const StoreCmp *cmps, size_t n_cmps, const StoreOp *ops, size_t n_ops,
              int64_t *ret_rev);
/* Makes all writes since the last commit durable, then dispatches their watch events. */
int store_commit(Store *s);
bool store_dirty(Store *s);
int64_t store_revision(Store *s);
int store_watch(Store *s, StoreWatchFn fn, void *userdata);
void store_get_stats(Store *s, StoreStats *ret);

/* Nested all-or-nothing groups of txns (an apply of several documents): a group that is
 * rolled back undoes its txns and their pending watch events. */
int store_group_begin(Store *s);
int store_group_end(Store *s, bool commit);

/* Convenience: put/delete without compares. */
int store_put(Store *s, const char *key, const void *value, size_t size);
int store_delete(Store *s, const char *key);
