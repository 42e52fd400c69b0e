/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite backend of store.h.
 *
 * One table of keys (WITHOUT ROWID, clustered by key so prefix lists are range scans) and a
 * meta table holding the global revision. WAL mode with synchronous=FULL: a COMMIT returns
 * only after the WAL is fsync'd. Writes between commits share one open transaction; each
 * store_txn() is a SAVEPOINT inside it, so a failed compare or error undoes that txn alone.
 */
#include <sqlite3.h>
#include <time.h>

#include "log.h"
#include "store.h"

#define SCHEMA_VERSION 1

typedef struct Watcher {
        StoreWatchFn fn;
        void *userdata;
} Watcher;

typedef struct PendingEvent {
        StoreEventType type;
        char *key;
        void *value, *prev_value;
        size_t size, prev_size;
        int64_t create_rev, mod_rev, version;
        int64_t prev_create_rev, prev_mod_rev, prev_version;
        bool has_prev;
} PendingEvent;

struct Store {
        sqlite3 *db;
        sqlite3_stmt *st_get, *st_put, *st_del, *st_meta_put;
        int64_t revision;           /* including uncommitted writes */
        int64_t committed_revision;
        bool in_tx;
        PendingEvent *pending;
        size_t n_pending, cap_pending;
        Watcher *watchers;
        size_t n_watchers;
        /* open groups: pending count and revision at their start */
        struct {
                size_t n_pending;
                int64_t revision;
        } groups[8];
        unsigned n_groups;
        StoreStats stats;
};

static int sqlite_error(Store *s, int rc, const char *what) {
        log_debug("sqlite %s failed: %s (%d)", what, sqlite3_errmsg(s->db), rc);
        switch (rc) {
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        default:
                return -EIO;
        }
}

static int exec(Store *s, const char *sql) {
        char *err = NULL;
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
                log_debug("sqlite: %s: %s", sql, strna(err));
                sqlite3_free(err);
                return sqlite_error(s, rc, "exec");
        }
        return 0;
}

static void pending_clear(Store *s) {
        for (size_t i = 0; i < s->n_pending; i++) {
                free(s->pending[i].key);
                free(s->pending[i].value);
                free(s->pending[i].prev_value);
        }
        s->n_pending = 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        if (s->in_tx)
                (void)exec(s, "ROLLBACK");
        sqlite3_finalize(s->st_get);
        sqlite3_finalize(s->st_put);
        sqlite3_finalize(s->st_del);
        sqlite3_finalize(s->st_meta_put);
        sqlite3_close_v2(s->db);
        pending_clear(s);
        free(s->pending);
        free(s->watchers);
        free(s);
        return NULL;
}

static int prepare(Store *s, const char *sql, sqlite3_stmt **st) {
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
        return rc == SQLITE_OK ? 0 : sqlite_error(s, rc, "prepare");
}

int store_open_sqlite(const char *path, Store **ret) {
        _cleanup_(store_freep) Store *s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        int rc = sqlite3_open_v2(path, &s->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc, "open");
        sqlite3_extended_result_codes(s->db, 0);
        sqlite3_busy_timeout(s->db, 5000);

        int r = exec(s, "PRAGMA journal_mode=WAL;"
                        "PRAGMA synchronous=FULL;"
                        "PRAGMA foreign_keys=OFF;"
                        "PRAGMA cache_size=-8192;"
                        "PRAGMA wal_autocheckpoint=4096;"
                        "CREATE TABLE IF NOT EXISTS kv ("
                        "  key TEXT PRIMARY KEY NOT NULL,"
                        "  create_rev INTEGER NOT NULL,"
                        "  mod_rev INTEGER NOT NULL,"
                        "  version INTEGER NOT NULL,"
                        "  value BLOB NOT NULL) WITHOUT ROWID;"
                        "CREATE TABLE IF NOT EXISTS meta ("
                        "  key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;"
                        "INSERT OR IGNORE INTO meta(key, value) VALUES ('revision', 0);"
                        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', 1);");
        if (r < 0)
                return r;

        sqlite3_stmt *st;
        r = prepare(s, "SELECT key, value FROM meta", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *k = (const char *)sqlite3_column_text(st, 0);
                int64_t v = sqlite3_column_int64(st, 1);
                if (streq_ptr(k, "revision"))
                        s->revision = s->committed_revision = v;
                else if (streq_ptr(k, "schema") && v > SCHEMA_VERSION) {
                        sqlite3_finalize(st);
                        return -EPROTONOSUPPORT;
                }
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite_error(s, rc, "read meta");

        if ((r = prepare(s, "SELECT value, create_rev, mod_rev, version FROM kv WHERE key = ?",
                         &s->st_get)) < 0 ||
            (r = prepare(s,
                         "INSERT OR REPLACE INTO kv(key, create_rev, mod_rev, version, value) "
                         "VALUES (?, ?, ?, ?, ?)",
                         &s->st_put)) < 0 ||
            (r = prepare(s, "DELETE FROM kv WHERE key = ?", &s->st_del)) < 0 ||
            (r = prepare(s, "UPDATE meta SET value = ? WHERE key = 'revision'", &s->st_meta_put)) <
                    0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

typedef struct Row {
        bool found;
        void *value;
        size_t size;
        int64_t create_rev, mod_rev, version;
} Row;

static int read_row(Store *s, const char *key, bool want_value, Row *ret) {
        sqlite3_stmt *st = s->st_get;
        *ret = (Row){0};
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
                sqlite3_reset(st);
                return 0;
        }
        if (rc != SQLITE_ROW) {
                int r = sqlite_error(s, rc, "get");
                sqlite3_reset(st);
                return r;
        }
        ret->found = true;
        ret->create_rev = sqlite3_column_int64(st, 1);
        ret->mod_rev = sqlite3_column_int64(st, 2);
        ret->version = sqlite3_column_int64(st, 3);
        if (want_value) {
                const void *b = sqlite3_column_blob(st, 0);
                int n = sqlite3_column_bytes(st, 0);
                ret->value = malloc((size_t)n + 1);
                if (!ret->value) {
                        sqlite3_reset(st);
                        return -ENOMEM;
                }
                if (n > 0)
                        memcpy(ret->value, b, (size_t)n);
                ((char *)ret->value)[n] = 0;
                ret->size = (size_t)n;
        }
        sqlite3_reset(st);
        return 1;
}

int store_get(Store *s, const char *key, void **ret, size_t *ret_size, int64_t *ret_mod_rev) {
        Row row;
        int r = read_row(s, key, ret != NULL, &row);
        if (r < 0)
                return r;
        if (!row.found)
                return -ENOENT;
        if (ret)
                *ret = row.value;
        if (ret_size)
                *ret_size = row.size;
        if (ret_mod_rev)
                *ret_mod_rev = row.mod_rev;
        return 0;
}

int store_list(Store *s, const char *prefix, StoreListFn fn, void *userdata) {
        /* Upper bound of the prefix range: the prefix with its last byte incremented. */
        size_t n = strlen(prefix);
        _cleanup_free_ char *end = malloc(n + 2);
        if (!end)
                return -ENOMEM;
        memcpy(end, prefix, n + 1);
        if (n == 0) {
                end[0] = (char)0x7f;
                end[1] = 0;
        } else
                end[n - 1]++;

        /* A fresh statement: callbacks may call store_get()/store_list() themselves. */
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(s->db,
                                    "SELECT key, value, create_rev, mod_rev, version FROM kv "
                                    "WHERE key >= ?1 AND key < ?2 ORDER BY key",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc, "prepare list");
        sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, end, -1, SQLITE_STATIC);
        int r = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoreKV kv = {
                        .key = (const char *)sqlite3_column_text(st, 0),
                        .value = sqlite3_column_blob(st, 1),
                        .size = (size_t)sqlite3_column_bytes(st, 1),
                        .create_rev = sqlite3_column_int64(st, 2),
                        .mod_rev = sqlite3_column_int64(st, 3),
                        .version = sqlite3_column_int64(st, 4),
                };
                r = fn(&kv, userdata);
                if (r != 0)
                        break;
        }
        if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
                r = sqlite_error(s, rc, "list");
        sqlite3_finalize(st);
        return r;
}

static int begin(Store *s) {
        if (s->in_tx)
                return 0;
        int r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        s->in_tx = true;
        return 0;
}

static int pending_add(Store *s, StoreEventType type, const char *key, const void *value,
                       size_t size, int64_t create_rev, int64_t mod_rev, int64_t version,
                       Row *prev) {
        if (s->n_pending == s->cap_pending) {
                size_t nc = s->cap_pending ? s->cap_pending * 2 : 64;
                PendingEvent *np = realloc(s->pending, nc * sizeof(PendingEvent));
                if (!np)
                        return -ENOMEM;
                s->pending = np;
                s->cap_pending = nc;
        }
        PendingEvent *e = &s->pending[s->n_pending];
        *e = (PendingEvent){.type = type, .create_rev = create_rev, .mod_rev = mod_rev,
                            .version = version};
        e->key = strdup(key);
        if (!e->key)
                return -ENOMEM;
        if (value) {
                e->value = malloc(size + 1);
                if (!e->value) {
                        free(e->key);
                        return -ENOMEM;
                }
                memcpy(e->value, value, size);
                ((char *)e->value)[size] = 0;
                e->size = size;
        }
        if (prev && prev->found) {
                e->has_prev = true;
                e->prev_value = TAKE_PTR(prev->value);
                e->prev_size = prev->size;
                e->prev_create_rev = prev->create_rev;
                e->prev_mod_rev = prev->mod_rev;
                e->prev_version = prev->version;
        }
        s->n_pending++;
        return 0;
}

static int apply_op(Store *s, const StoreOp *op, int64_t rev) {
        Row prev;
        int r = read_row(s, op->key, true, &prev);
        if (r < 0)
                return r;
        if (op->type == STORE_OP_DELETE) {
                if (!prev.found)
                        return 0;
                sqlite3_stmt *st = s->st_del;
                sqlite3_reset(st);
                sqlite3_bind_text(st, 1, op->key, -1, SQLITE_STATIC);
                int rc = sqlite3_step(st);
                sqlite3_reset(st);
                if (rc != SQLITE_DONE) {
                        free(prev.value);
                        return sqlite_error(s, rc, "delete");
                }
                r = pending_add(s, STORE_EVENT_DELETE, op->key, NULL, 0, 0, rev, 0, &prev);
                free(prev.value);
                return r;
        }

        int64_t create_rev = prev.found ? prev.create_rev : rev;
        int64_t version = prev.found ? prev.version + 1 : 1;
        sqlite3_stmt *st = s->st_put;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, op->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, create_rev);
        sqlite3_bind_int64(st, 3, rev);
        sqlite3_bind_int64(st, 4, version);
        sqlite3_bind_blob(st, 5, op->value, (int)op->size, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
                free(prev.value);
                return sqlite_error(s, rc, "put");
        }
        r = pending_add(s, STORE_EVENT_PUT, op->key, op->value, op->size, create_rev, rev,
                        version, &prev);
        free(prev.value);
        return r;
}

int store_txn(Store *s, const StoreCmp *cmps, size_t n_cmps, const StoreOp *ops, size_t n_ops,
              int64_t *ret_rev) {
        int r = begin(s);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n_cmps; i++) {
                Row row;
                r = read_row(s, cmps[i].key, false, &row);
                if (r < 0)
                        return r;
                bool ok = cmps[i].target == STORE_CMP_EXISTS
                                  ? row.found == (cmps[i].value != 0)
                                  : (row.found ? row.mod_rev : 0) == cmps[i].value;
                if (!ok)
                        return 0;
        }
        if (n_ops == 0)
                return 1;

        r = exec(s, "SAVEPOINT txn");
        if (r < 0)
                return r;
        size_t pending_before = s->n_pending;
        int64_t rev = s->revision + 1;
        for (size_t i = 0; i < n_ops; i++) {
                if (ops[i].size > INT32_MAX) {
                        r = -EFBIG;
                        break;
                }
                r = apply_op(s, &ops[i], rev);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                (void)exec(s, "ROLLBACK TO txn");
                (void)exec(s, "RELEASE txn");
                /* drop the events of the undone txn */
                while (s->n_pending > pending_before) {
                        PendingEvent *e = &s->pending[--s->n_pending];
                        free(e->key);
                        free(e->value);
                        free(e->prev_value);
                }
                return r;
        }
        r = exec(s, "RELEASE txn");
        if (r < 0)
                return r;
        /* As etcd: only a txn that changed something (deleting absent keys changes nothing)
         * takes a new revision. Each change left exactly one pending event. */
        size_t changed = s->n_pending - pending_before;
        if (changed > 0) {
                s->revision = rev;
                s->stats.writes += changed;
        }
        if (ret_rev)
                *ret_rev = s->revision;
        return 1;
}

int store_group_begin(Store *s) {
        if (s->n_groups >= ELEMENTSOF(s->groups))
                return -EBUSY;
        int r = begin(s);
        if (r < 0)
                return r;
        char sql[32];
        snprintf(sql, sizeof(sql), "SAVEPOINT g%u", s->n_groups);
        r = exec(s, sql);
        if (r < 0)
                return r;
        s->groups[s->n_groups].n_pending = s->n_pending;
        s->groups[s->n_groups].revision = s->revision;
        s->n_groups++;
        return 0;
}

int store_group_end(Store *s, bool commit) {
        if (s->n_groups == 0)
                return -EINVAL;
        unsigned g = --s->n_groups;
        char sql[64];
        if (!commit) {
                snprintf(sql, sizeof(sql), "ROLLBACK TO g%u", g);
                (void)exec(s, sql);
                while (s->n_pending > s->groups[g].n_pending) {
                        PendingEvent *e = &s->pending[--s->n_pending];
                        free(e->key);
                        free(e->value);
                        free(e->prev_value);
                }
                s->revision = s->groups[g].revision;
        }
        snprintf(sql, sizeof(sql), "RELEASE g%u", g);
        return exec(s, sql);
}

int store_put(Store *s, const char *key, const void *value, size_t size) {
        StoreOp op = {.type = STORE_OP_PUT, .key = key, .value = value, .size = size};
        int r = store_txn(s, NULL, 0, &op, 1, NULL);
        return r < 0 ? r : 0;
}

int store_delete(Store *s, const char *key) {
        StoreOp op = {.type = STORE_OP_DELETE, .key = key};
        int r = store_txn(s, NULL, 0, &op, 1, NULL);
        return r < 0 ? r : 0;
}

bool store_dirty(Store *s) {
        return s->in_tx;
}

int64_t store_revision(Store *s) {
        return s->revision;
}

int store_commit(Store *s) {
        if (!s->in_tx)
                return 0;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);

        sqlite3_stmt *st = s->st_meta_put;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, s->revision);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        int r = rc == SQLITE_DONE ? exec(s, "COMMIT") : sqlite_error(s, rc, "revision");
        if (r < 0) {
                /* Nothing of this batch is durable: forget it, including its events. */
                (void)exec(s, "ROLLBACK");
                s->in_tx = false;
                s->revision = s->committed_revision;
                pending_clear(s);
                return r;
        }
        s->in_tx = false;
        s->committed_revision = s->revision;

        uint64_t dt = now_usec(CLOCK_MONOTONIC) - t0;
        s->stats.commits++;
        s->stats.commit_usec_total += dt;
        if (dt > s->stats.commit_usec_max)
                s->stats.commit_usec_max = dt;

        /* Dispatch after durability. Watchers may write (that opens the next batch), so the
         * pending list is detached first. */
        PendingEvent *events = s->pending;
        size_t n = s->n_pending;
        s->pending = NULL;
        s->n_pending = s->cap_pending = 0;
        for (size_t i = 0; i < n; i++) {
                PendingEvent *e = &events[i];
                StoreEvent ev = {
                        .type = e->type,
                        .kv = {.key = e->key, .value = e->value, .size = e->size,
                               .create_rev = e->create_rev, .mod_rev = e->mod_rev,
                               .version = e->version},
                };
                if (e->has_prev)
                        ev.prev = (StoreKV){.key = e->key, .value = e->prev_value,
                                            .size = e->prev_size, .create_rev = e->prev_create_rev,
                                            .mod_rev = e->prev_mod_rev,
                                            .version = e->prev_version};
                for (size_t w = 0; w < s->n_watchers; w++)
                        s->watchers[w].fn(&ev, s->watchers[w].userdata);
        }
        for (size_t i = 0; i < n; i++) {
                free(events[i].key);
                free(events[i].value);
                free(events[i].prev_value);
        }
        free(events);
        return 0;
}

int store_watch(Store *s, StoreWatchFn fn, void *userdata) {
        Watcher *nw = realloc(s->watchers, (s->n_watchers + 1) * sizeof(Watcher));
        if (!nw)
                return -ENOMEM;
        s->watchers = nw;
        s->watchers[s->n_watchers++] = (Watcher){fn, userdata};
        return 0;
}

void store_get_stats(Store *s, StoreStats *ret) {
        *ret = s->stats;
}
