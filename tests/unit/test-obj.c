/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/obj.h: the document tree every resource, config file and wire body is
 * held in. Maps keep insertion order, setters take ownership (also on failure: ASan's leak
 * check would catch a lost value), paths address nested maps and list items.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "obj.h"

/* The keys of a map, comma-separated, in their stored order. */
static void map_keys(const Obj *m, char *buf, size_t bufsz) {
        size_t n = 0;
        buf[0] = 0;
        OBJ_MAP_FOREACH(e, m) {
                int w = snprintf(buf + n, bufsz - n, "%s%s", n ? "," : "", e->key);
                assert_true(w > 0 && (size_t)w < bufsz - n);
                n += (size_t)w;
        }
}

static void test_constructors(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *n = obj_new_null(), *b = obj_new_bool(true),
                                 *i = obj_new_int(-42), *f = obj_new_float(2.5),
                                 *s = obj_new_str("hello"), *sn = obj_new_strn("a\0b", 3),
                                 *st = obj_new_str_take(strdup("taken")), *l = obj_new_list(),
                                 *m = obj_new_map();
        assert_true(obj_is(n, OBJ_NULL));
        assert_true(obj_is(b, OBJ_BOOL) && b->b);
        assert_true(obj_is(i, OBJ_INT) && i->i == -42);
        assert_true(obj_is(f, OBJ_FLOAT) && f->f == 2.5);
        assert_string_equal(obj_str(s), "hello");
        assert_int_equal(s->str.len, 5);
        /* obj_new_strn keeps embedded NUL bytes and counts them. */
        assert_int_equal(sn->str.len, 3);
        assert_memory_equal(sn->str.s, "a\0b", 3);
        assert_string_equal(obj_str(st), "taken");
        assert_int_equal(obj_len(l), 0);
        assert_int_equal(obj_len(m), 0);
        assert_int_equal(obj_len(s), 0);
        assert_null(obj_str(i));
        assert_null(obj_new_str_take(NULL));
        assert_string_equal(obj_type_name(OBJ_MAP), "object");
        assert_string_equal(obj_type_name(OBJ_INT), "integer");
        assert_string_equal(obj_type_name(OBJ_STR), "string");
}

static void test_map_keeps_insertion_order(void **state) {
        (void)state;
        char keys[256];
        _cleanup_(obj_freep) Obj *m = obj_new_map();
        assert_non_null(m);
        const char *order[] = {"zeta", "alpha", "mid", "beta", "omega", "aa"};
        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                assert_int_equal(obj_map_set_int(m, order[i], (int64_t)i), 0);
        map_keys(m, keys, sizeof(keys));
        assert_string_equal(keys, "zeta,alpha,mid,beta,omega,aa");

        /* Replacing a value keeps the key where it was. */
        assert_int_equal(obj_map_set_str(m, "mid", "replaced"), 0);
        map_keys(m, keys, sizeof(keys));
        assert_string_equal(keys, "zeta,alpha,mid,beta,omega,aa");
        assert_int_equal(obj_len(m), 6);
        assert_string_equal(obj_str(obj_map_get(m, "mid")), "replaced");

        /* Deleting in the middle keeps the order of the others. */
        assert_true(obj_map_del(m, "alpha"));
        map_keys(m, keys, sizeof(keys));
        assert_string_equal(keys, "zeta,mid,beta,omega,aa");

        /* A key set again after deletion goes to the end. */
        assert_int_equal(obj_map_set_bool(m, "alpha", false), 0);
        map_keys(m, keys, sizeof(keys));
        assert_string_equal(keys, "zeta,mid,beta,omega,aa,alpha");
}

static void test_map_set_replace_take_del(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *m = obj_new_map();
        assert_int_equal(obj_map_set_int(m, "a", 1), 0);
        assert_int_equal(obj_map_set_str(m, "b", "two"), 0);
        assert_int_equal(obj_map_get(m, "a")->i, 1);
        assert_null(obj_map_get(m, "missing"));
        assert_null(obj_map_entry(m, "missing"));
        assert_string_equal(obj_map_entry(m, "b")->key, "b");

        /* Replace frees the old value (ASan would report a leak otherwise). */
        assert_int_equal(obj_map_set(m, "a", obj_new_list()), 0);
        assert_true(obj_is(obj_map_get(m, "a"), OBJ_LIST));
        assert_int_equal(obj_len(m), 2);

        /* Take detaches: the caller owns the value and the key is gone. */
        Obj *taken = obj_map_take(m, "b");
        assert_non_null(taken);
        assert_string_equal(obj_str(taken), "two");
        obj_free(taken);
        assert_null(obj_map_get(m, "b"));
        assert_int_equal(obj_len(m), 1);
        assert_null(obj_map_take(m, "b"));

        assert_true(obj_map_del(m, "a"));
        assert_false(obj_map_del(m, "a"));
        assert_int_equal(obj_len(m), 0);

        /* ensure_map / ensure_list create when absent, return the existing one, and refuse a
         * type clash. */
        Obj *sub = obj_map_ensure_map(m, "sub");
        assert_non_null(sub);
        assert_ptr_equal(obj_map_ensure_map(m, "sub"), sub);
        assert_null(obj_map_ensure_list(m, "sub"));
        Obj *l = obj_map_ensure_list(m, "list");
        assert_non_null(l);
        assert_true(obj_is(l, OBJ_LIST));
        assert_null(obj_map_ensure_map(m, "list"));
}

static void test_setters_take_ownership_on_failure(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *list = obj_new_list(), *map = obj_new_map();
        /* Wrong container type: the value is freed (a leak would fail under ASan). */
        assert_int_equal(obj_map_set(list, "k", obj_new_str("leak?")), -EINVAL);
        assert_int_equal(obj_list_append(map, obj_new_str("leak?")), -EINVAL);
        assert_int_equal(obj_map_set(NULL, "k", obj_new_int(1)), -EINVAL);
        /* A NULL value (failed allocation upstream) is reported as -ENOMEM. */
        assert_int_equal(obj_map_set(map, "k", NULL), -ENOMEM);
        assert_int_equal(obj_list_append(list, NULL), -ENOMEM);
        assert_int_equal(obj_set(map, "a.b", NULL), -ENOMEM);
        /* obj_set with a malformed path frees the value too. */
        assert_int_equal(obj_set(map, "", obj_new_int(1)), -EINVAL);
        assert_int_equal(obj_set(map, "[0]", obj_new_int(1)), -ENOENT);
        assert_int_equal(obj_len(map), 0);
        assert_int_equal(obj_len(list), 0);
        _cleanup_(obj_freep) Obj *other = obj_new_map();
        assert_int_equal(obj_set(other, "a..b", obj_new_int(1)), -EINVAL);
        assert_null(obj_get(other, "a.b"));
}

static void test_lists(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *l = obj_new_list();
        for (int i = 0; i < 100; i++)
                assert_int_equal(obj_list_append(l, obj_new_int(i)), 0);
        assert_int_equal(obj_len(l), 100);
        for (int i = 0; i < 100; i++)
                assert_int_equal(obj_list_get(l, (size_t)i)->i, i);
        assert_null(obj_list_get(l, 100));
        size_t count = 0;
        int64_t sum = 0;
        OBJ_LIST_FOREACH(it, l, idx) {
                assert_int_equal(it->i, (int64_t)idx);
                sum += it->i;
                count++;
        }
        assert_int_equal(count, 100);
        assert_int_equal(sum, 4950);
        /* Iterating a non-list does nothing. */
        _cleanup_(obj_freep) Obj *s = obj_new_str("x");
        OBJ_LIST_FOREACH(it, s, idx) {
                (void)it;
                fail_msg("iterated a string");
        }
        OBJ_MAP_FOREACH(e, s) {
                (void)e;
                fail_msg("iterated a string as a map");
        }
}

/* {spec: {files: [{path: /a}, {path: /b}, {path: /c, mode: 420}], replicas: 3}} */
static Obj *make_doc(void) {
        Obj *doc = obj_new_map();
        assert_non_null(doc);
        Obj *spec = obj_map_ensure_map(doc, "spec");
        Obj *files = obj_map_ensure_list(spec, "files");
        const char *paths[] = {"/a", "/b", "/c"};
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                Obj *f = obj_new_map();
                assert_int_equal(obj_map_set_str(f, "path", paths[i]), 0);
                if (i == 2)
                        assert_int_equal(obj_map_set_int(f, "mode", 420), 0);
                assert_int_equal(obj_list_append(files, f), 0);
        }
        assert_int_equal(obj_map_set_int(spec, "replicas", 3), 0);
        return doc;
}

static void test_paths_get(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *doc = make_doc();
        assert_string_equal(obj_get_str(doc, "spec.files[0].path"), "/a");
        assert_string_equal(obj_get_str(doc, "spec.files[2].path"), "/c");
        int64_t v = 0;
        assert_true(obj_get_int(doc, "spec.files[2].mode", &v));
        assert_int_equal(v, 420);
        assert_true(obj_get_int(doc, "spec.replicas", &v));
        assert_int_equal(v, 3);
        assert_true(obj_is(obj_get(doc, "spec.files"), OBJ_LIST));
        assert_true(obj_is(obj_get(doc, "spec.files[1]"), OBJ_MAP));
        /* The empty path is the object itself. */
        assert_ptr_equal(obj_get(doc, ""), doc);

        /* Absent, out of range, mistyped and malformed paths give NULL. */
        assert_null(obj_get(doc, "spec.files[3].path"));
        assert_null(obj_get(doc, "spec.files[-1]"));
        assert_null(obj_get(doc, "spec.files[x]"));
        assert_null(obj_get(doc, "spec.files[1"));
        assert_null(obj_get(doc, "spec.nothere.path"));
        assert_null(obj_get(doc, "spec.replicas.deeper"));
        assert_null(obj_get(doc, "spec[0]"));         /* index into a map */
        assert_null(obj_get(doc, "spec.files.path")); /* key into a list */
        assert_null(obj_get(doc, "spec..replicas"));
        assert_null(obj_get_str(doc, "spec.replicas")); /* not a string */
        assert_false(obj_get_int(doc, "spec.files[0].path", &v));
        assert_null(obj_get(NULL, "spec"));

        /* obj_get_int accepts integral floats, refuses fractional ones. */
        assert_int_equal(obj_set(doc, "spec.f", obj_new_float(7.0)), 0);
        assert_true(obj_get_int(doc, "spec.f", &v));
        assert_int_equal(v, 7);
        assert_int_equal(obj_set(doc, "spec.f", obj_new_float(7.5)), 0);
        v = 99;
        assert_false(obj_get_int(doc, "spec.f", &v));
        assert_int_equal(v, 99); /* untouched on failure */

        /* obj_get_bool falls back to the default unless the value is a boolean. */
        assert_int_equal(obj_set_bool(doc, "spec.paused", false), 0);
        assert_false(obj_get_bool(doc, "spec.paused", true));
        assert_true(obj_get_bool(doc, "spec.absent", true));
        assert_false(obj_get_bool(doc, "spec.replicas", false));
}

static void test_paths_set_and_del(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *doc = make_doc();
        /* Intermediate maps are created. */
        assert_int_equal(obj_set_str(doc, "spec.template.spec.version", "v1.30.2"), 0);
        assert_string_equal(obj_get_str(doc, "spec.template.spec.version"), "v1.30.2");
        assert_true(obj_is(obj_get(doc, "spec.template"), OBJ_MAP));
        /* Setting into a list item and replacing a whole item, from the list itself (through
         * a key, see test_set_through_list). */
        Obj *files = obj_get(doc, "spec.files");
        assert_int_equal(obj_set_str(files, "[1].path", "/b2"), 0);
        assert_string_equal(obj_get_str(doc, "spec.files[1].path"), "/b2");
        assert_int_equal(obj_set_int(files, "[0]", 5), 0);
        int64_t v;
        assert_true(obj_get_int(doc, "spec.files[0]", &v));
        assert_int_equal(v, 5);
        assert_int_equal(obj_len(files), 3);
        /* Out of range index: -ENOENT, nothing appended. */
        assert_int_equal(obj_set_str(files, "[3].path", "/d"), -ENOENT);
        assert_int_equal(obj_len(files), 3);
        /* A path through a non-map value is refused and nothing is replaced. */
        assert_int_equal(obj_set_int(doc, "spec.replicas.x", 1), -EINVAL);
        assert_true(obj_get_int(doc, "spec.replicas", &v));
        assert_int_equal(v, 3);

        /* obj_del with a dotted path. */
        assert_true(obj_del(doc, "spec.template.spec.version"));
        assert_null(obj_get(doc, "spec.template.spec.version"));
        assert_non_null(obj_get(doc, "spec.template.spec"));
        assert_false(obj_del(doc, "spec.template.spec.version"));
        assert_true(obj_del(doc, "spec.files[2].mode"));
        assert_null(obj_get(doc, "spec.files[2].mode"));
        assert_true(obj_del(doc, "spec"));
        assert_int_equal(obj_len(doc), 0);
        assert_false(obj_del(doc, "nothing.here"));
}

static void test_set_through_list(void **state) {
        (void)state;
        /* obj_set() reaches a list item through a key ("spec.files[1].path"), as obj.h
         * documents for every path function, not only from the list itself ("[1].path"). */
        _cleanup_(obj_freep) Obj *doc = make_doc();
        assert_int_equal(obj_set_str(doc, "spec.files[1].path", "/b2"), 0);
        assert_string_equal(obj_get_str(doc, "spec.files[1].path"), "/b2");
        assert_int_equal(obj_set_int(doc, "spec.files[0]", 5), 0);
        assert_true(obj_is(obj_get(doc, "spec.files[0]"), OBJ_INT));
        assert_int_equal(obj_set_str(doc, "spec.files[3].path", "/d"), -ENOENT);
}

static void test_del_list_item(void **state) {
        (void)state;
        /* obj_del() deletes a list item named by an index ("spec.files[1]"; the items after it
         * move up) and a key after an index ("spec.files[0].path"). */
        _cleanup_(obj_freep) Obj *doc = make_doc();
        assert_true(obj_del(doc, "spec.files[1]"));
        assert_int_equal(obj_len(obj_get(doc, "spec.files")), 2);
        assert_string_equal(obj_get_str(doc, "spec.files[1].path"), "/c");
        assert_true(obj_del(doc, "spec.files[0].path"));
        assert_null(obj_get(doc, "spec.files[0].path"));
        assert_false(obj_del(doc, "spec.files[2]"));
        assert_true(obj_del(doc, "spec.files[1]"));
        assert_true(obj_del(doc, "spec.files[0]"));
        assert_int_equal(obj_len(obj_get(doc, "spec.files")), 0);
}

static void test_set_failure_changes_nothing(void **state) {
        (void)state;
        /* obj_set() checks the whole path before it creates any intermediate map: a failed
         * call ("a[0]" without "a": -ENOENT; "b..c": -EINVAL) leaves the document as it was. */
        _cleanup_(obj_freep) Obj *doc = obj_new_map();
        assert_int_equal(obj_set_int(doc, "a[0]", 1), -ENOENT);
        assert_int_equal(obj_len(doc), 0);
        assert_int_equal(obj_set_int(doc, "b..c", 1), -EINVAL);
        assert_int_equal(obj_len(doc), 0);
        assert_int_equal(obj_set_int(doc, "a.b[0].c", 1), -ENOENT);
        assert_int_equal(obj_len(doc), 0);
        /* A good path creates every missing map at once. */
        assert_int_equal(obj_set_int(doc, "a.b.c", 1), 0);
        int64_t v = 0;
        assert_true(obj_get_int(doc, "a.b.c", &v));
        assert_int_equal(v, 1);
        assert_int_equal(obj_set_int(doc, "a.x.y", 2), 0);
        assert_int_equal(obj_len(obj_get(doc, "a")), 2);
}

static void test_dotted_keys(void **state) {
        (void)state;
        /* Label and annotation keys contain dots and slashes. They are reachable with
         * obj_map_get() on the labels map, but NOT through a path: obj_get() splits at every
         * '.', so "metadata.labels.cluster.x-k8s.io/cluster-name" means
         * labels -> "cluster" -> "x-k8s" -> "io/cluster-name". Callers must go to the map and
         * use obj_map_get (as meta_label() does). */
        _cleanup_(obj_freep) Obj *doc = obj_new_map();
        Obj *labels = obj_map_ensure_map(obj_map_ensure_map(doc, "metadata"), "labels");
        assert_non_null(labels);
        assert_int_equal(obj_map_set_str(labels, "cluster.x-k8s.io/cluster-name", "prod"), 0);
        assert_int_equal(obj_map_set_str(labels, "plain", "yes"), 0);

        assert_string_equal(obj_str(obj_map_get(labels, "cluster.x-k8s.io/cluster-name")), "prod");
        assert_string_equal(obj_str(obj_map_get(obj_get(doc, "metadata.labels"),
                                                "cluster.x-k8s.io/cluster-name")),
                            "prod");
        assert_null(obj_get(doc, "metadata.labels.cluster.x-k8s.io/cluster-name"));
        assert_string_equal(obj_get_str(doc, "metadata.labels.plain"), "yes");

        /* The same splitting applies to obj_set: a dotted key becomes nested maps. */
        _cleanup_(obj_freep) Obj *o = obj_new_map();
        assert_int_equal(obj_set_str(o, "a.b", "v"), 0);
        assert_null(obj_map_get(o, "a.b"));
        assert_true(obj_is(obj_map_get(o, "a"), OBJ_MAP));
        assert_string_equal(obj_str(obj_map_get(obj_map_get(o, "a"), "b")), "v");
        /* obj_map_set takes the key verbatim. */
        assert_int_equal(obj_map_set_str(o, "a.b", "flat"), 0);
        assert_string_equal(obj_str(obj_map_get(o, "a.b")), "flat");
        assert_string_equal(obj_get_str(o, "a.b"), "v");
}

static void test_equal(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *a = obj_new_map(), *b = obj_new_map();
        assert_int_equal(obj_map_set_int(a, "x", 1), 0);
        assert_int_equal(obj_map_set_str(a, "y", "s"), 0);
        assert_int_equal(obj_map_set(a, "z", obj_new_list()), 0);
        assert_int_equal(obj_list_append(obj_map_get(a, "z"), obj_new_bool(true)), 0);
        /* b: same content, other key order, 1.0 instead of 1. */
        assert_int_equal(obj_map_set(b, "z", obj_new_list()), 0);
        assert_int_equal(obj_list_append(obj_map_get(b, "z"), obj_new_bool(true)), 0);
        assert_int_equal(obj_map_set_str(b, "y", "s"), 0);
        assert_int_equal(obj_map_set(b, "x", obj_new_float(1.0)), 0);
        assert_true(obj_equal(a, b));
        assert_true(obj_equal(b, a));

        /* Each difference is seen. */
        assert_int_equal(obj_map_set(b, "x", obj_new_float(1.5)), 0);
        assert_false(obj_equal(a, b));
        assert_int_equal(obj_map_set(b, "x", obj_new_str("1")), 0);
        assert_false(obj_equal(a, b));
        assert_int_equal(obj_map_set_int(b, "x", 1), 0);
        assert_true(obj_equal(a, b));
        assert_int_equal(obj_map_set_int(b, "extra", 0), 0);
        assert_false(obj_equal(a, b));
        assert_false(obj_equal(b, a));
        assert_true(obj_map_del(b, "extra"));
        assert_int_equal(obj_list_append(obj_map_get(b, "z"), obj_new_null()), 0);
        assert_false(obj_equal(a, b));

        /* Lists are ordered. */
        _cleanup_(obj_freep) Obj *l1 = obj_new_list(), *l2 = obj_new_list();
        assert_int_equal(obj_list_append(l1, obj_new_int(1)), 0);
        assert_int_equal(obj_list_append(l1, obj_new_int(2)), 0);
        assert_int_equal(obj_list_append(l2, obj_new_int(2)), 0);
        assert_int_equal(obj_list_append(l2, obj_new_int(1)), 0);
        assert_false(obj_equal(l1, l2));

        /* Scalars and NULL. */
        _cleanup_(obj_freep) Obj *n1 = obj_new_null(), *n2 = obj_new_null(),
                                 *t = obj_new_bool(true), *f = obj_new_bool(false),
                                 *s1 = obj_new_strn("a\0b", 3), *s2 = obj_new_strn("a\0c", 3),
                                 *i2 = obj_new_int(2), *f2 = obj_new_float(2.0);
        assert_true(obj_equal(n1, n2));
        assert_false(obj_equal(t, f));
        assert_false(obj_equal(n1, f));
        assert_false(obj_equal(s1, s2)); /* compared by length, not as C strings */
        assert_true(obj_equal(i2, f2));
        assert_true(obj_equal(f2, i2));
        assert_true(obj_equal(NULL, NULL));
        assert_false(obj_equal(n1, NULL));
        assert_false(obj_equal(NULL, n1));
}

static void test_dup_keeps_marks_and_is_deep(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *doc = make_doc();
        doc->mark = (ObjMark){1, 1};
        Obj *spec = obj_map_get(doc, "spec");
        spec->mark = (ObjMark){2, 3};
        doc->map.entries[0].key_mark = (ObjMark){1, 7};
        Obj *path = obj_get(doc, "spec.files[2].path");
        path->mark = (ObjMark){9, 15};
        obj_get(doc, "spec.files[2]")->map.entries[0].key_mark = (ObjMark){9, 9};
        obj_get(doc, "spec.files")->mark = (ObjMark){5, 4};

        _cleanup_(obj_freep) Obj *c = obj_dup(doc);
        assert_non_null(c);
        assert_ptr_not_equal(c, doc);
        assert_true(obj_equal(c, doc));
        assert_int_equal(c->mark.line, 1);
        assert_int_equal(c->map.entries[0].key_mark.line, 1);
        assert_int_equal(c->map.entries[0].key_mark.column, 7);
        assert_int_equal(obj_map_get(c, "spec")->mark.line, 2);
        assert_int_equal(obj_map_get(c, "spec")->mark.column, 3);
        assert_int_equal(obj_get(c, "spec.files")->mark.line, 5);
        assert_int_equal(obj_get(c, "spec.files")->mark.column, 4);
        assert_int_equal(obj_get(c, "spec.files[2].path")->mark.line, 9);
        assert_int_equal(obj_get(c, "spec.files[2].path")->mark.column, 15);
        assert_int_equal(obj_get(c, "spec.files[2]")->map.entries[0].key_mark.column, 9);

        /* Deep: changing the copy leaves the original alone. */
        assert_ptr_not_equal(obj_get(c, "spec.files[2].path"), path);
        assert_int_equal(obj_map_set_str(obj_get(c, "spec.files[2]"), "path", "/changed"), 0);
        assert_string_equal(obj_get_str(doc, "spec.files[2].path"), "/c");
        assert_false(obj_equal(c, doc));

        /* Scalars and NULL. */
        assert_null(obj_dup(NULL));
        _cleanup_(obj_freep) Obj *s = obj_new_strn("x\0y", 3);
        s->mark = (ObjMark){4, 2};
        _cleanup_(obj_freep) Obj *sc = obj_dup(s);
        assert_int_equal(sc->str.len, 3);
        assert_memory_equal(sc->str.s, "x\0y", 3);
        assert_int_equal(sc->mark.line, 4);
        assert_int_equal(sc->mark.column, 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_constructors),
                cmocka_unit_test(test_map_keeps_insertion_order),
                cmocka_unit_test(test_map_set_replace_take_del),
                cmocka_unit_test(test_setters_take_ownership_on_failure),
                cmocka_unit_test(test_lists),
                cmocka_unit_test(test_paths_get),
                cmocka_unit_test(test_paths_set_and_del),
                cmocka_unit_test(test_set_through_list),
                cmocka_unit_test(test_del_list_item),
                cmocka_unit_test(test_set_failure_changes_nothing),
                cmocka_unit_test(test_dotted_keys),
                cmocka_unit_test(test_equal),
                cmocka_unit_test(test_dup_keeps_marks_and_is_deep),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
