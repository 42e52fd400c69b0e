/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of coordinator/store.h with the SQLite backend on real files (a fresh mkdtemp()
 * directory per test): etcd-like revisions and transactions, commit-then-notify watches,
 * rollback groups, and durability across reopen and across a crash (a child process that
 * dies without committing or closing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "store.h"

typedef struct Fixture {
        char dir[64];
        char path[96];
        Store *s;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        if (!f)
                return -1;
        strcpy(f->dir, "/tmp/anvil-test-store-XXXXXX");
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
        if (store_open_sqlite(f->path, &f->s) < 0) {
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int teardown(void **state) {
        Fixture *f = *state;
        f->s = store_free(f->s);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static void reopen(Fixture *f) {
        f->s = store_free(f->s);
        assert_int_equal(store_open_sqlite(f->path, &f->s), 0);
}

static void put(Store *s, const char *key, const char *value) {
        assert_int_equal(store_put(s, key, value, strlen(value)), 0);
}

/* The value of key as a string, or NULL when absent. Caller frees. */
static char *get(Store *s, const char *key, int64_t *ret_mod_rev) {
        void *v = NULL;
        size_t n = 0;
        int r = store_get(s, key, &v, &n, ret_mod_rev);
        if (r == -ENOENT)
                return NULL;
        assert_int_equal(r, 0);
        assert_int_equal(strlen(v), n);
        return v;
}

typedef struct Row {
        char key[64];
        char value[64];
        int64_t create_rev, mod_rev, version;
} Row;

typedef struct Rows {
        Row rows[32];
        size_t n;
        size_t stop_after; /* 0 = never */
} Rows;

static int collect(const StoreKV *kv, void *userdata) {
        Rows *rs = userdata;
        assert_true(rs->n < ELEMENTSOF(rs->rows));
        Row *r = &rs->rows[rs->n++];
        snprintf(r->key, sizeof(r->key), "%s", kv->key);
        snprintf(r->value, sizeof(r->value), "%.*s", (int)kv->size, (const char *)kv->value);
        r->create_rev = kv->create_rev;
        r->mod_rev = kv->mod_rev;
        r->version = kv->version;
        if (rs->stop_after && rs->n == rs->stop_after)
                return 7;
        return 0;
}

static Row row_of(Store *s, const char *key) {
        Rows rs = {0};
        assert_int_equal(store_list(s, key, collect, &rs), 0);
        for (size_t i = 0; i < rs.n; i++)
                if (streq(rs.rows[i].key, key))
                        return rs.rows[i];
        fail_msg("no row %s", key);
        return (Row){0};
}

static void test_put_get(void **state) {
        Fixture *f = *state;
        assert_int_equal(store_revision(f->s), 0);
        assert_false(store_dirty(f->s));
        put(f->s, "Machine/default/a", "v1");
        assert_true(store_dirty(f->s));
        int64_t rev = 0;
        _cleanup_free_ char *v = get(f->s, "Machine/default/a", &rev);
        assert_string_equal(v, "v1");
        assert_int_equal(rev, 1);
        assert_int_equal(store_revision(f->s), 1);
        /* Absent key. */
        void *out = (void *)0x1;
        assert_int_equal(store_get(f->s, "Machine/default/zz", &out, NULL, NULL), -ENOENT);
        assert_ptr_equal(out, (void *)0x1); /* untouched */
        /* Only the revision. */
        assert_int_equal(store_get(f->s, "Machine/default/a", NULL, NULL, &rev), 0);
        assert_int_equal(rev, 1);
        /* Binary values keep their NUL bytes; an empty value is a value. */
        const char bin[] = {'a', 0, 'b', 0, (char)0xff};
        assert_int_equal(store_put(f->s, "bin", bin, sizeof(bin)), 0);
        _cleanup_free_ void *b = NULL;
        size_t n = 0;
        assert_int_equal(store_get(f->s, "bin", &b, &n, NULL), 0);
        assert_int_equal(n, sizeof(bin));
        assert_memory_equal(b, bin, sizeof(bin));
        assert_int_equal(((char *)b)[n], 0);
        assert_int_equal(store_put(f->s, "empty", "", 0), 0);
        _cleanup_free_ char *e = get(f->s, "empty", NULL);
        assert_string_equal(e, "");
        /* Overwrite and delete. */
        put(f->s, "Machine/default/a", "v2");
        _cleanup_free_ char *v2 = get(f->s, "Machine/default/a", &rev);
        assert_string_equal(v2, "v2");
        assert_int_equal(rev, 4);
        assert_int_equal(store_delete(f->s, "Machine/default/a"), 0);
        assert_null(get(f->s, "Machine/default/a", NULL));
        assert_int_equal(store_revision(f->s), 5);
}

static void test_list_by_prefix_in_key_order(void **state) {
        Fixture *f = *state;
        const char *keys[] = {
                "Machine/default/b", "MachineSet/default/x", "Machine/kube/c",      "Host//h1",
                "Machine/default/a", "_token/abc",           "Machine/default/a-1", "Machin/x"};
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                put(f->s, keys[i], keys[i]);

        Rows rs = {0};
        assert_int_equal(store_list(f->s, "Machine/", collect, &rs), 0);
        assert_int_equal(rs.n, 4);
        assert_string_equal(rs.rows[0].key, "Machine/default/a");
        assert_string_equal(rs.rows[1].key, "Machine/default/a-1");
        assert_string_equal(rs.rows[2].key, "Machine/default/b");
        assert_string_equal(rs.rows[3].key, "Machine/kube/c");
        assert_string_equal(rs.rows[3].value, "Machine/kube/c");

        Rows ns = {0};
        assert_int_equal(store_list(f->s, "Machine/default/", collect, &ns), 0);
        assert_int_equal(ns.n, 3);

        /* Everything, sorted bytewise. */
        Rows all = {0};
        assert_int_equal(store_list(f->s, "", collect, &all), 0);
        assert_int_equal(all.n, ELEMENTSOF(keys));
        for (size_t i = 1; i < all.n; i++)
                assert_true(strcmp(all.rows[i - 1].key, all.rows[i].key) < 0);

        Rows none = {0};
        assert_int_equal(store_list(f->s, "Nothing/", collect, &none), 0);
        assert_int_equal(none.n, 0);

        /* A non-zero return stops the iteration and is returned. */
        Rows two = {.stop_after = 2};
        assert_int_equal(store_list(f->s, "Machine/", collect, &two), 7);
        assert_int_equal(two.n, 2);
}

static int list_and_get(const StoreKV *kv, void *userdata) {
        Store *s = userdata;
        _cleanup_free_ char *v = get(s, kv->key, NULL);
        assert_non_null(v);
        assert_memory_equal(v, kv->value, kv->size);
        return 0;
}

static void test_list_callback_may_read(void **state) {
        Fixture *f = *state;
        put(f->s, "a/1", "x");
        put(f->s, "a/2", "y");
        assert_int_equal(store_list(f->s, "a/", list_and_get, f->s), 0);
}

static void test_txn_compares_all_or_nothing(void **state) {
        Fixture *f = *state;
        put(f->s, "k", "v1");
        int64_t r1 = store_revision(f->s);

        /* Compare on mod_rev holds: both ops apply at one new revision. */
        StoreCmp cmp = {.key = "k", .target = STORE_CMP_MOD_REV, .value = r1};
        StoreOp ops[] = {
                {.type = STORE_OP_PUT, .key = "k", .value = "v2", .size = 2},
                {.type = STORE_OP_PUT, .key = "j", .value = "j1", .size = 2},
        };
        int64_t rev = 0;
        assert_int_equal(store_txn(f->s, &cmp, 1, ops, 2, &rev), 1);
        assert_int_equal(rev, r1 + 1);
        int64_t mk, mj;
        _cleanup_free_ char *k = get(f->s, "k", &mk), *j = get(f->s, "j", &mj);
        assert_string_equal(k, "v2");
        assert_string_equal(j, "j1");
        assert_int_equal(mk, rev);
        assert_int_equal(mj, rev);

        /* The same compare is now stale: nothing applies, the revision stays. */
        StoreOp ops2[] = {
                {.type = STORE_OP_PUT, .key = "j", .value = "j2", .size = 2},
                {.type = STORE_OP_PUT, .key = "new", .value = "n", .size = 1},
                {.type = STORE_OP_DELETE, .key = "k"},
        };
        int64_t untouched = -5;
        assert_int_equal(store_txn(f->s, &cmp, 1, ops2, 3, &untouched), 0);
        assert_int_equal(untouched, -5);
        assert_int_equal(store_revision(f->s), rev);
        _cleanup_free_ char *j_after = get(f->s, "j", NULL), *k_after = get(f->s, "k", NULL);
        assert_string_equal(j_after, "j1");
        assert_string_equal(k_after, "v2");
        assert_null(get(f->s, "new", NULL));

        /* Several compares: one failing stops everything. */
        StoreCmp cmps[] = {
                {.key = "k", .target = STORE_CMP_EXISTS, .value = 1},
                {.key = "j", .target = STORE_CMP_MOD_REV, .value = mj},
                {.key = "absent", .target = STORE_CMP_EXISTS, .value = 1},
        };
        assert_int_equal(store_txn(f->s, cmps, 3, ops2, 3, NULL), 0);
        assert_null(get(f->s, "new", NULL));
        cmps[2].value = 0; /* "absent" must not exist: true */
        assert_int_equal(store_txn(f->s, cmps, 3, ops2, 3, &rev), 1);
        _cleanup_free_ char *n = get(f->s, "new", NULL);
        assert_string_equal(n, "n");
        assert_null(get(f->s, "k", NULL));

        /* Create-if-absent: mod_rev == 0 means "does not exist". */
        StoreCmp absent = {.key = "once", .target = STORE_CMP_MOD_REV, .value = 0};
        StoreOp create = {.type = STORE_OP_PUT, .key = "once", .value = "1", .size = 1};
        assert_int_equal(store_txn(f->s, &absent, 1, &create, 1, NULL), 1);
        assert_int_equal(store_txn(f->s, &absent, 1, &create, 1, NULL), 0);
        StoreCmp exists_not = {.key = "once", .target = STORE_CMP_EXISTS, .value = 0};
        assert_int_equal(store_txn(f->s, &exists_not, 1, &create, 1, NULL), 0);
}

static void test_txn_error_rolls_back_whole_txn(void **state) {
        Fixture *f = *state;
        put(f->s, "keep", "1");
        assert_int_equal(store_commit(f->s), 0);
        int64_t rev0 = store_revision(f->s);
        /* The second op is too large (checked before it is applied): the first is undone. */
        StoreOp ops[] = {
                {.type = STORE_OP_PUT, .key = "x", .value = "x", .size = 1},
                {.type = STORE_OP_DELETE, .key = "keep"},
                {.type = STORE_OP_PUT, .key = "y", .value = "y", .size = (size_t)INT32_MAX + 1},
        };
        assert_int_equal(store_txn(f->s, NULL, 0, ops, 3, NULL), -EFBIG);
        assert_null(get(f->s, "x", NULL));
        _cleanup_free_ char *keep = get(f->s, "keep", NULL);
        assert_string_equal(keep, "1");
        assert_int_equal(store_revision(f->s), rev0);
        /* The store stays usable and the failed txn left no events behind (see the watch
         * test for delivery; here: the next commit works). */
        put(f->s, "z", "z");
        assert_int_equal(store_commit(f->s), 0);
        reopen(f);
        assert_null(get(f->s, "x", NULL));
        _cleanup_free_ char *z = get(f->s, "z", NULL);
        assert_string_equal(z, "z");
}

static void test_revision_once_per_txn(void **state) {
        Fixture *f = *state;
        int64_t r0 = store_revision(f->s);
        StoreOp ops[] = {
                {.type = STORE_OP_PUT, .key = "a", .value = "1", .size = 1},
                {.type = STORE_OP_PUT, .key = "b", .value = "2", .size = 1},
                {.type = STORE_OP_PUT, .key = "c", .value = "3", .size = 1},
        };
        int64_t rev;
        assert_int_equal(store_txn(f->s, NULL, 0, ops, 3, &rev), 1);
        assert_int_equal(rev, r0 + 1);
        assert_int_equal(store_revision(f->s), r0 + 1);
        /* A txn without ops (a pure check) does not bump. */
        StoreCmp c = {.key = "a", .target = STORE_CMP_EXISTS, .value = 1};
        assert_int_equal(store_txn(f->s, &c, 1, NULL, 0, NULL), 1);
        assert_int_equal(store_revision(f->s), r0 + 1);
        /* Ten single puts: ten revisions. */
        for (int i = 0; i < 10; i++)
                put(f->s, "a", "x");
        assert_int_equal(store_revision(f->s), r0 + 11);
        StoreStats st;
        store_get_stats(f->s, &st);
        assert_int_equal(st.writes, 13);
        assert_int_equal(st.commits, 0);
        assert_int_equal(store_commit(f->s), 0);
        store_get_stats(f->s, &st);
        assert_int_equal(st.commits, 1);
        /* Committing with nothing pending is a no-op. */
        assert_int_equal(store_commit(f->s), 0);
        store_get_stats(f->s, &st);
        assert_int_equal(st.commits, 1);
}

static void test_delete_absent_does_not_bump_revision(void **state) {
        /* A txn whose ops change nothing (store_delete() of a key that does not exist) takes
         * no new revision and counts no write, as etcd, whose Txn the header says this
         * mirrors: watchers never see revision gaps for writes that did not happen. */
        Fixture *f = *state;
        put(f->s, "a", "1");
        int64_t r0 = store_revision(f->s);
        StoreStats st;
        store_get_stats(f->s, &st);
        uint64_t w0 = st.writes;
        assert_int_equal(store_delete(f->s, "never-existed"), 0);
        assert_int_equal(store_revision(f->s), r0);
        store_get_stats(f->s, &st);
        assert_int_equal(st.writes, w0);
        /* The txn still succeeds and reports the current revision. */
        StoreOp ops[] = {{.type = STORE_OP_DELETE, .key = "x"},
                         {.type = STORE_OP_DELETE, .key = "y"}};
        int64_t rev = -1;
        assert_int_equal(store_txn(f->s, NULL, 0, ops, ELEMENTSOF(ops), &rev), 1);
        assert_int_equal(rev, r0);
        /* A txn with one real change among no-ops takes exactly one new revision. */
        StoreOp mixed[] = {{.type = STORE_OP_DELETE, .key = "x"},
                           {.type = STORE_OP_DELETE, .key = "a"}};
        assert_int_equal(store_txn(f->s, NULL, 0, mixed, ELEMENTSOF(mixed), &rev), 1);
        assert_int_equal(rev, r0 + 1);
        assert_int_equal(store_revision(f->s), r0 + 1);
}

static void test_create_rev_and_version(void **state) {
        Fixture *f = *state;
        put(f->s, "other", "o"); /* rev 1 */
        put(f->s, "k", "a");     /* rev 2 */
        Row r = row_of(f->s, "k");
        assert_int_equal(r.create_rev, 2);
        assert_int_equal(r.mod_rev, 2);
        assert_int_equal(r.version, 1);
        put(f->s, "k", "b"); /* rev 3 */
        put(f->s, "k", "c"); /* rev 4 */
        r = row_of(f->s, "k");
        assert_int_equal(r.create_rev, 2);
        assert_int_equal(r.mod_rev, 4);
        assert_int_equal(r.version, 3);
        assert_string_equal(r.value, "c");
        /* Delete and recreate: a new life. */
        assert_int_equal(store_delete(f->s, "k"), 0); /* rev 5 */
        put(f->s, "k", "d");                          /* rev 6 */
        r = row_of(f->s, "k");
        assert_int_equal(r.create_rev, 6);
        assert_int_equal(r.mod_rev, 6);
        assert_int_equal(r.version, 1);
        /* The other key was not touched. */
        r = row_of(f->s, "other");
        assert_int_equal(r.mod_rev, 1);
        assert_int_equal(r.version, 1);
        /* Kept across commit and reopen. */
        assert_int_equal(store_commit(f->s), 0);
        reopen(f);
        r = row_of(f->s, "k");
        assert_int_equal(r.create_rev, 6);
        assert_int_equal(r.version, 1);
}

/* ---- watches ---- */

typedef struct Event {
        StoreEventType type;
        char key[32];
        char value[32];
        char prev[32];
        bool has_prev;
        int64_t mod_rev, create_rev, version, prev_mod_rev;
} Event;

typedef struct Watch {
        Event ev[32];
        size_t n;
        Store *s; /* set: the watcher writes "echo/<key>" for each PUT of "w/..." */
} Watch;

static void on_event(const StoreEvent *e, void *userdata) {
        Watch *w = userdata;
        assert_true(w->n < ELEMENTSOF(w->ev));
        Event *ev = &w->ev[w->n++];
        ev->type = e->type;
        snprintf(ev->key, sizeof(ev->key), "%s", e->kv.key);
        if (e->kv.value)
                snprintf(ev->value, sizeof(ev->value), "%.*s", (int)e->kv.size,
                         (const char *)e->kv.value);
        ev->has_prev = e->prev.key != NULL;
        if (ev->has_prev)
                snprintf(ev->prev, sizeof(ev->prev), "%.*s", (int)e->prev.size,
                         (const char *)e->prev.value);
        ev->mod_rev = e->kv.mod_rev;
        ev->create_rev = e->kv.create_rev;
        ev->version = e->kv.version;
        ev->prev_mod_rev = e->prev.mod_rev;
        if (w->s && e->type == STORE_EVENT_PUT && startswith(e->kv.key, "w/")) {
                char key[64];
                snprintf(key, sizeof(key), "echo/%s", e->kv.key);
                put(w->s, key, "echo");
        }
}

static void test_watch_after_commit_in_order_with_prev(void **state) {
        Fixture *f = *state;
        Watch w = {0}, w2 = {0};
        assert_int_equal(store_watch(f->s, on_event, &w), 0);
        assert_int_equal(store_watch(f->s, on_event, &w2), 0);
        put(f->s, "a", "1");                          /* rev 1 */
        put(f->s, "a", "2");                          /* rev 2 */
        assert_int_equal(store_delete(f->s, "a"), 0); /* rev 3 */
        put(f->s, "b", "x");                          /* rev 4 */
        /* Nothing is delivered before the commit. */
        assert_int_equal(w.n, 0);
        assert_true(store_dirty(f->s));
        assert_int_equal(store_commit(f->s), 0);
        assert_false(store_dirty(f->s));
        assert_int_equal(w.n, 4);
        assert_int_equal(w2.n, 4);

        assert_int_equal(w.ev[0].type, STORE_EVENT_PUT);
        assert_string_equal(w.ev[0].key, "a");
        assert_string_equal(w.ev[0].value, "1");
        assert_false(w.ev[0].has_prev);
        assert_int_equal(w.ev[0].mod_rev, 1);
        assert_int_equal(w.ev[0].create_rev, 1);
        assert_int_equal(w.ev[0].version, 1);

        assert_int_equal(w.ev[1].type, STORE_EVENT_PUT);
        assert_string_equal(w.ev[1].value, "2");
        assert_true(w.ev[1].has_prev);
        assert_string_equal(w.ev[1].prev, "1");
        assert_int_equal(w.ev[1].prev_mod_rev, 1);
        assert_int_equal(w.ev[1].mod_rev, 2);
        assert_int_equal(w.ev[1].version, 2);

        assert_int_equal(w.ev[2].type, STORE_EVENT_DELETE);
        assert_string_equal(w.ev[2].key, "a");
        assert_true(w.ev[2].has_prev);
        assert_string_equal(w.ev[2].prev, "2");
        assert_int_equal(w.ev[2].mod_rev, 3);

        assert_int_equal(w.ev[3].type, STORE_EVENT_PUT);
        assert_string_equal(w.ev[3].key, "b");
        assert_int_equal(w.ev[3].mod_rev, 4);

        /* Both watchers saw the same thing. */
        for (size_t i = 0; i < 4; i++) {
                assert_string_equal(w.ev[i].key, w2.ev[i].key);
                assert_int_equal(w.ev[i].mod_rev, w2.ev[i].mod_rev);
        }
        /* An empty commit delivers nothing new. */
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(w.n, 4);
        /* A failed compare produces no event. */
        StoreCmp c = {.key = "b", .target = STORE_CMP_MOD_REV, .value = 1};
        StoreOp op = {.type = STORE_OP_PUT, .key = "b", .value = "y", .size = 1};
        assert_int_equal(store_txn(f->s, &c, 1, &op, 1, NULL), 0);
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(w.n, 4);
}

static void test_watcher_writes_go_to_next_commit(void **state) {
        Fixture *f = *state;
        Watch w = {.s = f->s};
        assert_int_equal(store_watch(f->s, on_event, &w), 0);
        put(f->s, "w/1", "x");
        assert_int_equal(store_commit(f->s), 0);
        /* Only the committed event; the watcher's own write is pending. */
        assert_int_equal(w.n, 1);
        assert_string_equal(w.ev[0].key, "w/1");
        assert_true(store_dirty(f->s));
        _cleanup_free_ char *echo = get(f->s, "echo/w/1", NULL);
        assert_string_equal(echo, "echo");
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(w.n, 2);
        assert_string_equal(w.ev[1].key, "echo/w/1");
        assert_int_equal(w.ev[1].mod_rev, 2);
}

static void test_txn_error_drops_its_events(void **state) {
        Fixture *f = *state;
        Watch w = {0};
        assert_int_equal(store_watch(f->s, on_event, &w), 0);
        put(f->s, "before", "1");
        StoreOp ops[] = {
                {.type = STORE_OP_PUT, .key = "x", .value = "x", .size = 1},
                {.type = STORE_OP_PUT, .key = "y", .value = "y", .size = (size_t)INT32_MAX + 1},
        };
        assert_int_equal(store_txn(f->s, NULL, 0, ops, 2, NULL), -EFBIG);
        put(f->s, "after", "2");
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(w.n, 2);
        assert_string_equal(w.ev[0].key, "before");
        assert_string_equal(w.ev[1].key, "after");
        assert_int_equal(w.ev[1].mod_rev, w.ev[0].mod_rev + 1);
}

/* ---- groups ---- */

static void test_group_rollback(void **state) {
        Fixture *f = *state;
        Watch w = {0};
        assert_int_equal(store_watch(f->s, on_event, &w), 0);
        put(f->s, "x", "1");
        int64_t rev = store_revision(f->s);

        assert_int_equal(store_group_begin(f->s), 0);
        put(f->s, "y", "2");
        assert_int_equal(store_delete(f->s, "x"), 0);
        put(f->s, "x2", "3");
        /* Inside the group the writes are visible. */
        _cleanup_free_ char *y = get(f->s, "y", NULL);
        assert_string_equal(y, "2");
        assert_null(get(f->s, "x", NULL));
        assert_int_equal(store_group_end(f->s, false), 0);

        /* Undone: data, revision, events. */
        assert_null(get(f->s, "y", NULL));
        assert_null(get(f->s, "x2", NULL));
        _cleanup_free_ char *x = get(f->s, "x", NULL);
        assert_string_equal(x, "1");
        assert_int_equal(store_revision(f->s), rev);
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(w.n, 1);
        assert_string_equal(w.ev[0].key, "x");
        /* The next write reuses the revision the rolled-back group had taken. */
        put(f->s, "z", "4");
        assert_int_equal(store_revision(f->s), rev + 1);
        reopen(f);
        assert_null(get(f->s, "y", NULL));
        _cleanup_free_ char *x_again = get(f->s, "x", NULL);
        assert_string_equal(x_again, "1");
        assert_null(get(f->s, "z", NULL)); /* never committed */
}

static void test_group_commit_and_nesting(void **state) {
        Fixture *f = *state;
        Watch w = {0};
        assert_int_equal(store_watch(f->s, on_event, &w), 0);
        /* Outer kept, inner rolled back. */
        assert_int_equal(store_group_begin(f->s), 0);
        put(f->s, "a", "1");
        assert_int_equal(store_group_begin(f->s), 0);
        put(f->s, "b", "2");
        assert_int_equal(store_group_end(f->s, false), 0);
        put(f->s, "c", "3");
        assert_int_equal(store_group_end(f->s, true), 0);
        _cleanup_free_ char *a = get(f->s, "a", NULL);
        assert_string_equal(a, "1");
        assert_null(get(f->s, "b", NULL));
        int64_t mod_c;
        _cleanup_free_ char *c = get(f->s, "c", &mod_c);
        assert_string_equal(c, "3");
        assert_int_equal(mod_c, 2); /* b's revision was given back */

        /* Inner kept, outer rolled back: everything goes. */
        assert_int_equal(store_group_begin(f->s), 0);
        put(f->s, "d", "4");
        assert_int_equal(store_group_begin(f->s), 0);
        put(f->s, "e", "5");
        assert_int_equal(store_group_end(f->s, true), 0);
        assert_int_equal(store_group_end(f->s, false), 0);
        assert_null(get(f->s, "d", NULL));
        assert_null(get(f->s, "e", NULL));
        assert_int_equal(store_revision(f->s), 2);

        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(w.n, 2);
        assert_string_equal(w.ev[0].key, "a");
        assert_string_equal(w.ev[1].key, "c");

        /* Unbalanced end, and the nesting limit. */
        assert_int_equal(store_group_end(f->s, true), -EINVAL);
        int depth = 0;
        int r;
        while ((r = store_group_begin(f->s)) == 0)
                depth++;
        assert_int_equal(r, -EBUSY);
        assert_int_equal(depth, 8);
        while (depth-- > 0)
                assert_int_equal(store_group_end(f->s, false), 0);
        assert_int_equal(store_commit(f->s), 0);
}

/* ---- durability ---- */

static void test_reopen_keeps_committed(void **state) {
        Fixture *f = *state;
        put(f->s, "Host//h1", "one");
        put(f->s, "Host//h2", "two");
        assert_int_equal(store_delete(f->s, "Host//h2"), 0);
        assert_int_equal(store_commit(f->s), 0);
        int64_t rev = store_revision(f->s);
        reopen(f);
        assert_int_equal(store_revision(f->s), rev);
        _cleanup_free_ char *h1 = get(f->s, "Host//h1", NULL);
        assert_string_equal(h1, "one");
        assert_null(get(f->s, "Host//h2", NULL));
        /* Revisions continue where they were. */
        put(f->s, "Host//h3", "three");
        assert_int_equal(store_revision(f->s), rev + 1);
}

static void test_uncommitted_lost_on_free(void **state) {
        Fixture *f = *state;
        put(f->s, "durable", "1");
        assert_int_equal(store_commit(f->s), 0);
        int64_t rev = store_revision(f->s);
        put(f->s, "volatile", "2");
        put(f->s, "durable", "changed");
        assert_true(store_dirty(f->s));
        /* store_free() rolls the open batch back; it does not commit it. */
        reopen(f);
        assert_null(get(f->s, "volatile", NULL));
        _cleanup_free_ char *d = get(f->s, "durable", NULL);
        assert_string_equal(d, "1");
        assert_int_equal(store_revision(f->s), rev);
        assert_false(store_dirty(f->s));
}

static void test_crash_keeps_only_committed(void **state) {
        Fixture *f = *state;
        /* The child writes through its own connection and dies without closing anything. */
        f->s = store_free(f->s);
        for (int how = 0; how < 2; how++) {
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        Store *s = NULL;
                        if (store_open_sqlite(f->path, &s) < 0)
                                _exit(10);
                        char key[32];
                        snprintf(key, sizeof(key), "durable%d", how);
                        if (store_put(s, key, "yes", 3) < 0 || store_commit(s) < 0)
                                _exit(11);
                        snprintf(key, sizeof(key), "lost%d", how);
                        if (store_put(s, key, "no", 2) < 0)
                                _exit(12);
                        if (store_put(s, "durable0", "overwritten", 11) < 0)
                                _exit(13);
                        if (how == 0)
                                _exit(0); /* no store_free, no commit */
                        raise(SIGKILL);
                        _exit(14);
                }
                int status = 0;
                assert_int_equal(waitpid(pid, &status, 0), pid);
                if (how == 0)
                        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                else
                        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        }
        assert_int_equal(store_open_sqlite(f->path, &f->s), 0);
        _cleanup_free_ char *d0 = get(f->s, "durable0", NULL), *d1 = get(f->s, "durable1", NULL);
        assert_string_equal(d0, "yes");
        assert_string_equal(d1, "yes");
        assert_null(get(f->s, "lost0", NULL));
        assert_null(get(f->s, "lost1", NULL));
        assert_int_equal(store_revision(f->s), 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_by_prefix_in_key_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_callback_may_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_compares_all_or_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_error_rolls_back_whole_txn, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_revision_once_per_txn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delete_absent_does_not_bump_revision, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_create_rev_and_version, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_after_commit_in_order_with_prev, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_watcher_writes_go_to_next_commit, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_txn_error_drops_its_events, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_rollback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_commit_and_nesting, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_keeps_committed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_uncommitted_lost_on_free, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_keeps_only_committed, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
