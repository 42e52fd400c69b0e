/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/yamlio.h: YAML 1.2 core scalar resolution, source marks, multi-document
 * streams, strictness (duplicate keys, depth, alias expansion) and emit -> parse round trips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sys/resource.h>
#include <time.h>

#include "obj.h"
#include "yamlio.h"

static Obj *parse_one_ok(const char *text) {
        Obj *o = NULL;
        YamlError err = {0};
        int r = yaml_parse_one(text, strlen(text), &o, &err);
        if (r < 0)
                fail_msg("parse failed: %d at %u:%u: %s", r, err.line, err.column, err.message);
        assert_non_null(o);
        return o;
}

static int parse_one_err(const char *text, YamlError *err) {
        Obj *o = NULL;
        int r = yaml_parse_one(text, strlen(text), &o, err);
        assert_true(r < 0);
        assert_null(o);
        return r;
}

static void test_scalars_resolve_core_schema(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = parse_one_ok("n1: null\n"
                                                   "n2: ~\n"
                                                   "n3:\n"
                                                   "n4: NULL\n"
                                                   "t1: true\n"
                                                   "t2: True\n"
                                                   "f1: false\n"
                                                   "f2: FALSE\n"
                                                   "i1: 42\n"
                                                   "i2: -7\n"
                                                   "i3: +3\n"
                                                   "i4: 0x1F\n"
                                                   "i5: 0o17\n"
                                                   "i6: 9223372036854775807\n"
                                                   "fl1: 1.5\n"
                                                   "fl2: -0.25\n"
                                                   "fl3: 1e3\n"
                                                   "fl4: .5\n"
                                                   "fl5: .inf\n"
                                                   "fl6: -.inf\n"
                                                   "fl7: .nan\n"
                                                   "s1: \"1\"\n"
                                                   "s2: 'true'\n"
                                                   "s3: \"null\"\n"
                                                   "s4: yes\n"
                                                   "s5: no\n"
                                                   "s6: on\n"
                                                   "s7: hello world\n"
                                                   "s8: 1.2.3\n"
                                                   "s9: 0x\n"
                                                   "s10: 99999999999999999999\n"
                                                   "s11: !!str 12\n"
                                                   "s12: |\n  block 1\n"
                                                   "s13: 12abc\n"
                                                   "s14: ''\n"
                                                   "s15: 1_000\n");
        const char *nulls[] = {"n1", "n2", "n3", "n4"};
        for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
                assert_true(obj_is(obj_map_get(o, nulls[i]), OBJ_NULL));
        assert_true(obj_is(obj_get(o, "t1"), OBJ_BOOL) && obj_get(o, "t1")->b);
        assert_true(obj_is(obj_get(o, "t2"), OBJ_BOOL) && obj_get(o, "t2")->b);
        assert_true(obj_is(obj_get(o, "f1"), OBJ_BOOL) && !obj_get(o, "f1")->b);
        assert_true(obj_is(obj_get(o, "f2"), OBJ_BOOL) && !obj_get(o, "f2")->b);

        struct {
                const char *key;
                int64_t value;
        } ints[] = {{"i1", 42}, {"i2", -7}, {"i3", 3}, {"i4", 31}, {"i5", 15}, {"i6", INT64_MAX}};
        for (size_t i = 0; i < ELEMENTSOF(ints); i++) {
                const Obj *v = obj_get(o, ints[i].key);
                assert_true(obj_is(v, OBJ_INT));
                assert_true(v->i == ints[i].value);
        }
        struct {
                const char *key;
                double value;
        } floats[] = {{"fl1", 1.5}, {"fl2", -0.25}, {"fl3", 1000.0}, {"fl4", 0.5}};
        for (size_t i = 0; i < ELEMENTSOF(floats); i++) {
                const Obj *v = obj_get(o, floats[i].key);
                assert_true(obj_is(v, OBJ_FLOAT));
                assert_true(v->f == floats[i].value);
        }
        /* .inf and .nan stay strings: Kubernetes (JSON) has no such numbers. */
        assert_string_equal(obj_get_str(o, "fl5"), ".inf");
        assert_string_equal(obj_get_str(o, "fl6"), "-.inf");
        assert_string_equal(obj_get_str(o, "fl7"), ".nan");

        struct {
                const char *key;
                const char *value;
        } strs[] = {{"s1", "1"},     {"s2", "true"},       {"s3", "null"},
                    {"s4", "yes"}, /* YAML 1.1 booleans are strings */
                    {"s5", "no"},    {"s6", "on"},         {"s7", "hello world"},
                    {"s8", "1.2.3"}, {"s9", "0x"},         {"s10", "99999999999999999999"},
                    {"s11", "12"},   {"s12", "block 1\n"}, {"s13", "12abc"},
                    {"s14", ""},     {"s15", "1_000"}};
        for (size_t i = 0; i < ELEMENTSOF(strs); i++) {
                const Obj *v = obj_get(o, strs[i].key);
                if (!obj_is(v, OBJ_STR))
                        fail_msg("%s: expected a string, got %s", strs[i].key,
                                 v ? obj_type_name(v->type) : "nothing");
                assert_string_equal(v->str.s, strs[i].value);
        }
}

static void test_resolve_plain_direct(void **state) {
        (void)state;
        struct {
                const char *text;
                ObjType type;
        } cases[] = {
                {"", OBJ_NULL},      {"~", OBJ_NULL},    {"null", OBJ_NULL},   {"true", OBJ_BOOL},
                {"FALSE", OBJ_BOOL}, {"0", OBJ_INT},     {"-0", OBJ_INT},      {"007", OBJ_INT},
                {"0x10", OBJ_INT},   {"1.0", OBJ_FLOAT}, {"-1e-3", OBJ_FLOAT}, {"1.", OBJ_FLOAT},
                {"tRUE", OBJ_STR},   {"nulls", OBJ_STR}, {"e5", OBJ_STR},      {"-", OBJ_STR},
                {"1e", OBJ_STR},     {"0xZZ", OBJ_STR},  {".", OBJ_STR},       {"1e999", OBJ_STR},
                {"abc", OBJ_STR},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(obj_freep) Obj *v =
                        yaml_resolve_plain(cases[i].text, strlen(cases[i].text));
                assert_non_null(v);
                if (v->type != cases[i].type)
                        fail_msg("\"%s\" resolved as %s, expected %s", cases[i].text,
                                 obj_type_name(v->type), obj_type_name(cases[i].type));
        }
        /* Text with an embedded NUL is never a number. */
        _cleanup_(obj_freep) Obj *nul = yaml_resolve_plain("12\0003", 4);
        assert_true(obj_is(nul, OBJ_STR));
        assert_int_equal(nul->str.len, 4);
}

static void test_resolve_plain_core_edge_cases(void **state) {
        (void)state;
        /* yaml_resolve_plain() follows the YAML 1.2 core schema's regular expressions exactly:
         *  - hex and octal are 0x[0-9a-fA-F]+ and 0o[0-7]+: no sign, blank or second prefix
         *    after "0x"/"0o" ("0x-1", "0x 1", "0x0x1", "0o-7" are strings, although strtoll()
         *    would take them);
         *  - floats are [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, so "-.5" and
         *    "+.5" are -0.5 and 0.5 like ".5". */
        const char *strings[] = {"0x-1", "0x 1", "0x0x1", "0o-7", "0x+1"};
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                _cleanup_(obj_freep) Obj *v = yaml_resolve_plain(strings[i], strlen(strings[i]));
                if (!obj_is(v, OBJ_STR))
                        fail_msg("\"%s\" resolved as %s, expected string", strings[i],
                                 obj_type_name(v->type));
        }
        _cleanup_(obj_freep) Obj *neg = yaml_resolve_plain("-.5", 3);
        assert_true(obj_is(neg, OBJ_FLOAT));
        assert_true(neg->f == -0.5);
        _cleanup_(obj_freep) Obj *pos = yaml_resolve_plain("+.5", 3);
        assert_true(obj_is(pos, OBJ_FLOAT));
        assert_true(pos->f == 0.5);
        /* The prefixed forms and every spelling of infinity the core schema lists. */
        _cleanup_(obj_freep) Obj *oct = yaml_resolve_plain("0o17", 4);
        _cleanup_(obj_freep) Obj *hex = yaml_resolve_plain("0x1F", 4);
        _cleanup_(obj_freep) Obj *inf = yaml_resolve_plain("+.INF", 5);
        _cleanup_(obj_freep) Obj *exp = yaml_resolve_plain("1E3", 3);
        assert_true(obj_is(oct, OBJ_INT) && oct->i == 15);
        assert_true(obj_is(hex, OBJ_INT) && hex->i == 31);
        assert_true(obj_is(inf, OBJ_STR));
        assert_true(obj_is(exp, OBJ_FLOAT) && exp->f == 1000.0);
}

static void test_marks_on_nodes_and_keys(void **state) {
        (void)state;
        const char *text = "# comment\n"
                           "apiVersion: v1\n"
                           "spec:\n"
                           "  replicas: 3\n"
                           "  list: [a, bb]\n"
                           "  items:\n"
                           "    - name: x\n"
                           "      value: \"q\"\n";
        _cleanup_(obj_freep) Obj *o = parse_one_ok(text);
        /* The root map starts at its first key. */
        assert_int_equal(o->mark.line, 2);
        assert_int_equal(o->mark.column, 1);

        const ObjEntry *e = obj_map_entry(o, "apiVersion");
        assert_int_equal(e->key_mark.line, 2);
        assert_int_equal(e->key_mark.column, 1);
        assert_int_equal(e->value->mark.line, 2);
        assert_int_equal(e->value->mark.column, 13);

        const Obj *spec = obj_map_get(o, "spec");
        e = obj_map_entry(spec, "replicas");
        assert_int_equal(e->key_mark.line, 4);
        assert_int_equal(e->key_mark.column, 3);
        assert_int_equal(e->value->mark.line, 4);
        assert_int_equal(e->value->mark.column, 13);

        const Obj *list = obj_map_get(spec, "list");
        assert_int_equal(list->mark.line, 5);
        assert_int_equal(list->mark.column, 9);
        assert_int_equal(obj_list_get(list, 0)->mark.column, 10);
        assert_int_equal(obj_list_get(list, 1)->mark.line, 5);
        assert_int_equal(obj_list_get(list, 1)->mark.column, 13);

        const Obj *item = obj_get(o, "spec.items[0]");
        assert_int_equal(item->mark.line, 7);
        assert_int_equal(item->mark.column, 7);
        e = obj_map_entry(item, "value");
        assert_int_equal(e->key_mark.line, 8);
        assert_int_equal(e->key_mark.column, 7);
        /* A quoted scalar's mark is its opening quote. */
        assert_int_equal(e->value->mark.line, 8);
        assert_int_equal(e->value->mark.column, 14);
}

static void test_multi_document_stream(void **state) {
        (void)state;
        const char *text = "---\n"
                           "a: 1\n"
                           "---\n"
                           "---\n"
                           "# only a comment\n"
                           "---\n"
                           "b: 2\n"
                           "...\n"
                           "--- ~\n"
                           "---\n"
                           "- x\n";
        _cleanup_(obj_freep) Obj *docs = NULL;
        YamlError err;
        assert_int_equal(yaml_parse_documents(text, strlen(text), &docs, &err), 0);
        assert_true(obj_is(docs, OBJ_LIST));
        assert_int_equal(obj_len(docs), 3);
        int64_t v;
        assert_true(obj_get_int(obj_list_get(docs, 0), "a", &v) && v == 1);
        assert_true(obj_get_int(obj_list_get(docs, 1), "b", &v) && v == 2);
        assert_int_equal(obj_list_get(docs, 1)->mark.line, 7);
        assert_true(obj_is(obj_list_get(docs, 2), OBJ_LIST));

        /* An empty stream and a comment-only stream have no documents. */
        _cleanup_(obj_freep) Obj *none = NULL, *comment = NULL;
        assert_int_equal(yaml_parse_documents("", 0, &none, NULL), 0);
        assert_int_equal(obj_len(none), 0);
        assert_int_equal(yaml_parse_documents("# nothing\n", 10, &comment, NULL), 0);
        assert_int_equal(obj_len(comment), 0);

        /* Anchors do not cross documents. */
        const char *cross = "a: &x 1\n---\nb: *x\n";
        _cleanup_(obj_freep) Obj *bad = NULL;
        assert_int_equal(yaml_parse_documents(cross, strlen(cross), &bad, &err), -EBADMSG);
        assert_null(bad);
        assert_non_null(strstr(err.message, "unknown alias"));
        assert_int_equal(err.line, 3);
}

static void test_parse_one(void **state) {
        (void)state;
        YamlError err;
        /* Two documents: an error pointing at the second. */
        assert_int_equal(parse_one_err("a: 1\n---\nb: 2\n", &err), -EBADMSG);
        assert_int_equal(err.line, 3);
        assert_non_null(strstr(err.message, "single document"));
        /* Empty stream: an empty map. */
        _cleanup_(obj_freep) Obj *empty = parse_one_ok("");
        assert_true(obj_is(empty, OBJ_MAP));
        assert_int_equal(obj_len(empty), 0);
        _cleanup_(obj_freep) Obj *scalar = parse_one_ok("--- hello\n");
        assert_string_equal(obj_str(scalar), "hello");
        /* Empty documents around one real document are fine. */
        _cleanup_(obj_freep) Obj *one = parse_one_ok("---\n---\nk: v\n---\n");
        assert_string_equal(obj_get_str(one, "k"), "v");
}

static void test_syntax_errors_have_positions(void **state) {
        (void)state;
        YamlError err;
        assert_int_equal(parse_one_err("a: 1\nb: [1, 2\nc: 3\n", &err), -EBADMSG);
        assert_true(err.line >= 2);
        assert_true(err.column >= 1);
        assert_true(strlen(err.message) > 0);

        assert_int_equal(parse_one_err("a: 1\n  b: 2\n", &err), -EBADMSG);
        assert_int_equal(err.line, 2);

        /* Non-scalar keys are refused. */
        assert_int_equal(parse_one_err("? [a, b]\n: c\n", &err), -EBADMSG);
        assert_non_null(strstr(err.message, "map keys must be strings"));
        assert_int_equal(err.line, 1);

        /* An unknown alias. */
        assert_int_equal(parse_one_err("a: *nope\n", &err), -EBADMSG);
        assert_non_null(strstr(err.message, "nope"));

        /* Keys longer than 1024 bytes (an explicit "? " key: libyaml itself refuses simple
         * keys that long). */
        char key[1100];
        memcpy(key, "? ", 2);
        memset(key + 2, 'k', 1050);
        strcpy(key + 1052, "\n: 1\n");
        assert_int_equal(parse_one_err(key, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "too long"));
        key[2 + 1024] = 0;
        strcat(key, "\n: 1\n");
        _cleanup_(obj_freep) Obj *k1024 = parse_one_ok(key);
        assert_int_equal(strlen(k1024->map.entries[0].key), 1024);

        /* A NULL err is allowed. */
        Obj *o = NULL;
        assert_int_equal(yaml_parse_one("[", 1, &o, NULL), -EBADMSG);
        assert_null(o);
}

static void test_duplicate_keys_rejected(void **state) {
        (void)state;
        YamlError err;
        assert_int_equal(parse_one_err("a: 1\n"
                                       "b:\n"
                                       "  c: 1\n"
                                       "  d: 2\n"
                                       "  c: 3\n",
                                       &err),
                         -EBADMSG);
        assert_int_equal(err.line, 5);
        assert_int_equal(err.column, 3);
        assert_non_null(strstr(err.message, "duplicate key"));
        assert_non_null(strstr(err.message, "\"c\""));

        /* Quoting does not make a key different. */
        assert_int_equal(parse_one_err("x: 1\n\"x\": 2\n", &err), -EBADMSG);
        assert_int_equal(err.line, 2);
        assert_int_equal(err.column, 1);
        /* Flow maps too. */
        assert_int_equal(parse_one_err("{a: 1, a: 2}", &err), -EBADMSG);
        assert_int_equal(err.line, 1);
        assert_int_equal(err.column, 8);
        /* The same key in different maps is fine. */
        _cleanup_(obj_freep) Obj *o = parse_one_ok("a: {k: 1}\nb: {k: 2}\n");
        assert_int_equal(obj_len(o), 2);
}

static char *nested_lists(unsigned depth) {
        char *s = malloc(depth * 2 + 2);
        assert_non_null(s);
        memset(s, '[', depth);
        s[depth] = '1';
        memset(s + depth + 1, ']', depth);
        s[depth * 2 + 1] = 0;
        return s;
}

static void test_depth_limit(void **state) {
        (void)state;
        YamlError err;
        /* YAML_MAX_DEPTH nested lists: the scalar sits at depth YAML_MAX_DEPTH, allowed. */
        _cleanup_free_ char *ok = nested_lists(YAML_MAX_DEPTH);
        _cleanup_(obj_freep) Obj *o = parse_one_ok(ok);
        const Obj *cur = o;
        for (unsigned i = 0; i < YAML_MAX_DEPTH; i++) {
                assert_true(obj_is(cur, OBJ_LIST));
                cur = obj_list_get(cur, 0);
        }
        assert_true(obj_is(cur, OBJ_INT));

        _cleanup_free_ char *over = nested_lists(YAML_MAX_DEPTH + 1);
        assert_int_equal(parse_one_err(over, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "nesting"));
        assert_int_equal(err.line, 1);

        _cleanup_free_ char *deep = nested_lists(10000);
        assert_int_equal(parse_one_err(deep, &err), -EBADMSG);
}

static void test_alias_depth(void **state) {
        (void)state;
        /* The nesting limit holds for the tree an alias expands to, not only where the alias
         * appears: an anchor 60 levels deep referenced 20 levels down would be an 80-level
         * tree (YAML_MAX_DEPTH is 64), and chains of such aliases thousands of levels. */
        char text[512];
        size_t n = (size_t)snprintf(text, sizeof(text), "a: &x ");
        for (int i = 0; i < 60; i++)
                text[n++] = '[';
        text[n++] = '1';
        for (int i = 0; i < 60; i++)
                text[n++] = ']';
        n += (size_t)snprintf(text + n, sizeof(text) - n, "\nb: ");
        for (int i = 0; i < 20; i++)
                text[n++] = '[';
        n += (size_t)snprintf(text + n, sizeof(text) - n, "*x");
        for (int i = 0; i < 20; i++)
                text[n++] = ']';
        text[n] = 0;
        YamlError err;
        assert_int_equal(parse_one_err(text, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "deeper"));
}

static void test_aliases_expand(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = parse_one_ok("base: &b {x: 1, y: [a, b]}\n"
                                                   "copy: *b\n"
                                                   "s: &s hello\n"
                                                   "t: *s\n");
        assert_true(obj_equal(obj_map_get(o, "base"), obj_map_get(o, "copy")));
        /* A copy, not a shared node (obj_free of both must not double free). */
        assert_ptr_not_equal(obj_map_get(o, "base"), obj_map_get(o, "copy"));
        assert_string_equal(obj_get_str(o, "t"), "hello");
        /* YAML merge keys are not special: "<<" is an ordinary key. */
        _cleanup_(obj_freep) Obj *m = parse_one_ok("a: &a {x: 1}\nb:\n  <<: *a\n");
        assert_non_null(obj_get(m, "b.<<"));
        assert_null(obj_get(m, "b.x"));
}

static double elapsed_sec(const struct timespec *t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static long maxrss_kib(void) {
        struct rusage ru;
        assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
        return ru.ru_maxrss;
}

/* lol0: &l0 "<strsize bytes>", then levels of ten aliases of the level below. */
static char *laughs(size_t strsize, int levels, size_t *ret_len) {
        size_t cap = strsize + 64 + (size_t)levels * 128;
        char *b = malloc(cap);
        assert_non_null(b);
        size_t n = (size_t)snprintf(b, cap, "l0: &l0 \"");
        memset(b + n, 'x', strsize);
        n += strsize;
        n += (size_t)snprintf(b + n, cap - n, "\"\n");
        for (int l = 1; l <= levels; l++) {
                n += (size_t)snprintf(b + n, cap - n, "l%d: &l%d [", l, l);
                for (int i = 0; i < 10; i++)
                        n += (size_t)snprintf(b + n, cap - n, "%s*l%d", i ? "," : "", l - 1);
                n += (size_t)snprintf(b + n, cap - n, "]\n");
        }
        assert_true(n < cap);
        *ret_len = n;
        return b;
}

static void test_billion_laughs_fails_fast(void **state) {
        (void)state;
        /* The classic: 9 levels of 10 aliases, 10^9 "lol" strings if expanded. */
        size_t len;
        _cleanup_free_ char *text = laughs(3, 9, &len);
        long rss0 = maxrss_kib();
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        Obj *o = NULL;
        YamlError err = {0};
        int r = yaml_parse_one(text, len, &o, &err);
        double dt = elapsed_sec(&t0);
        assert_int_equal(r, -EBADMSG);
        assert_null(o);
        assert_non_null(strstr(err.message, "alias"));
        assert_true(err.line >= 2);
        /* Bounded by YAML_MAX_NODES: well under a second of work and far from gigabytes
         * (generous limits: ASan's allocator overhead is included). */
        assert_true(dt < 10.0);
        assert_true(maxrss_kib() - rss0 < 1024 * 1024);

        /* The node budget counts expanded aliases, not source lines. */
        _cleanup_free_ char *small = laughs(3, 4, &len); /* 11111 nodes */
        _cleanup_(obj_freep) Obj *ok = NULL;
        assert_int_equal(yaml_parse_one(small, len, &ok, &err), 0);
        assert_int_equal(obj_len(obj_map_get(ok, "l4")), 10);
        assert_string_equal(obj_str(obj_get(ok, "l4[9][9][9][9]")), "xxx");
}

static void test_alias_string_amplification(void **state) {
        (void)state;
        /* The alias bound counts bytes as well as nodes. An anchored 100 KB string behind four
         * levels of ten aliases is only 11,111 nodes (far below YAML_MAX_NODES) but would
         * expand to 10,000 copies of the string, 1 GB from a 100 KB document: refused
         * (-EBADMSG) before the copies are made. */
        size_t len;
        _cleanup_free_ char *text = laughs(100000, 4, &len);
        Obj *o = NULL;
        YamlError err = {0};
        int r = yaml_parse_one(text, len, &o, &err);
        obj_free(o);
        assert_int_equal(r, -EBADMSG);
        assert_non_null(strstr(err.message, "bytes"));
}

static void test_string_length_limit(void **state) {
        (void)state;
        size_t n = YAML_MAX_STRING + 1;
        _cleanup_free_ char *text = malloc(n + 8);
        assert_non_null(text);
        memcpy(text, "a: ", 3);
        memset(text + 3, 'x', n);
        strcpy(text + 3 + n, "\n");
        YamlError err;
        assert_int_equal(parse_one_err(text, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "longer than"));
}

static void roundtrip(const Obj *o) {
        _cleanup_free_ char *text = NULL;
        assert_int_equal(yaml_emit(o, &text), 0);
        assert_non_null(text);
        _cleanup_(obj_freep) Obj *back = NULL;
        YamlError err = {0};
        int r = yaml_parse_one(text, strlen(text), &back, &err);
        if (r < 0)
                fail_msg("re-parse failed (%s at %u:%u) of:\n%s", err.message, err.line, err.column,
                         text);
        if (!obj_equal(o, back))
                fail_msg("round trip changed the document:\n%s", text);
}

static void test_emit_parse_round_trip(void **state) {
        (void)state;
        const char *tricky[] = {
                "true",
                "false",
                "True",
                "1",
                "-1",
                "0x10",
                "0o7",
                "1.5",
                "1e3",
                ".inf",
                ".nan",
                "",
                "null",
                "~",
                "NULL",
                "yes",
                "no",
                "a: b",
                "a:b",
                "- item",
                "#comment",
                "x #y",
                "key: [1]",
                "{a}",
                "[a]",
                "*alias",
                "&anchor",
                "!tag",
                "%dir",
                "@at",
                "`tick",
                "'single'",
                "\"double\"",
                " leading",
                "trailing ",
                "tab\there",
                "back\\slash",
                "héllo wörld",
                "日本語 ✓",
                "emoji 🚀",
                "line1\nline2",
                "ends with newline\n",
                "\n",
                "a\n\nb\n\n",
                "  indented\nfirst line",
                "---",
                "...",
                "? q",
                ": c",
                "|",
                ">",
                "-",
                "0",
                "-.5",
                "1_000",
                "0x-1",
                "12:30",
                "2024-01-02",
                "\x01 control",
                "\xc2\xa0nbsp",
        };
        _cleanup_(obj_freep) Obj *m = obj_new_map();
        _cleanup_(obj_freep) Obj *keys = obj_new_map();
        for (size_t i = 0; i < ELEMENTSOF(tricky); i++) {
                char k[16];
                snprintf(k, sizeof(k), "k%zu", i);
                assert_int_equal(obj_map_set_str(m, k, tricky[i]), 0);
                /* Each string alone, and as a key. */
                _cleanup_(obj_freep) Obj *s = obj_new_str(tricky[i]);
                roundtrip(s);
                if (!strchr(tricky[i], '\n'))
                        assert_int_equal(obj_map_set_int(keys, tricky[i], (int64_t)i), 0);
        }
        roundtrip(m);
        roundtrip(keys);

        /* Every type, nested, with empty containers. */
        _cleanup_(obj_freep) Obj *doc = obj_new_map();
        assert_int_equal(obj_set_int(doc, "i", -9007199254740993LL), 0);
        assert_int_equal(obj_set(doc, "f", obj_new_float(0.1)), 0);
        assert_int_equal(obj_set(doc, "f2", obj_new_float(1e300)), 0);
        assert_int_equal(obj_set(doc, "f3", obj_new_float(-2.0)), 0);
        assert_int_equal(obj_set_bool(doc, "b", false), 0);
        assert_int_equal(obj_set(doc, "n", obj_new_null()), 0);
        assert_int_equal(obj_set(doc, "el", obj_new_list()), 0);
        assert_int_equal(obj_set(doc, "em", obj_new_map()), 0);
        assert_int_equal(obj_set_str(doc, "deep.er.est", "v"), 0);
        Obj *l = obj_map_ensure_list(doc, "list");
        assert_int_equal(obj_list_append(l, obj_new_map()), 0);
        assert_int_equal(obj_list_append(l, obj_new_list()), 0);
        assert_int_equal(obj_list_append(l, obj_new_str("true")), 0);
        assert_int_equal(obj_set_str(obj_list_get(l, 0), "k", "multi\nline"), 0);
        roundtrip(doc);

        /* The emitted text keeps insertion order and quotes what must be quoted. */
        _cleanup_free_ char *text = NULL;
        _cleanup_(obj_freep) Obj *small = obj_new_map();
        assert_int_equal(obj_map_set_str(small, "z", "true"), 0);
        assert_int_equal(obj_map_set_str(small, "a", "1"), 0);
        assert_int_equal(obj_map_set_str(small, "m", "plain"), 0);
        assert_int_equal(obj_map_set_int(small, "n", 1), 0);
        assert_int_equal(yaml_emit(small, &text), 0);
        assert_string_equal(text, "z: \"true\"\na: \"1\"\nm: plain\nn: 1\n");
}

static void test_emit_documents(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *docs = obj_new_list();
        for (int i = 0; i < 3; i++) {
                Obj *d = obj_new_map();
                assert_int_equal(obj_map_set_int(d, "n", i), 0);
                assert_int_equal(obj_list_append(docs, d), 0);
        }
        _cleanup_free_ char *text = NULL;
        assert_int_equal(yaml_emit_documents(docs, &text), 0);
        assert_non_null(strstr(text, "---"));
        _cleanup_(obj_freep) Obj *back = NULL;
        assert_int_equal(yaml_parse_documents(text, strlen(text), &back, NULL), 0);
        assert_true(obj_equal(docs, back));

        _cleanup_(obj_freep) Obj *notlist = obj_new_map();
        char *out = NULL;
        assert_int_equal(yaml_emit_documents(notlist, &out), -EINVAL);
        assert_null(out);
        _cleanup_(obj_freep) Obj *empty = obj_new_list();
        _cleanup_free_ char *none = NULL;
        assert_int_equal(yaml_emit_documents(empty, &none), 0);
        _cleanup_(obj_freep) Obj *back_none = NULL;
        assert_int_equal(yaml_parse_documents(none, strlen(none), &back_none, NULL), 0);
        assert_int_equal(obj_len(back_none), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scalars_resolve_core_schema),
                cmocka_unit_test(test_resolve_plain_direct),
                cmocka_unit_test(test_resolve_plain_core_edge_cases),
                cmocka_unit_test(test_marks_on_nodes_and_keys),
                cmocka_unit_test(test_multi_document_stream),
                cmocka_unit_test(test_parse_one),
                cmocka_unit_test(test_syntax_errors_have_positions),
                cmocka_unit_test(test_duplicate_keys_rejected),
                cmocka_unit_test(test_depth_limit),
                cmocka_unit_test(test_alias_depth),
                cmocka_unit_test(test_aliases_expand),
                cmocka_unit_test(test_billion_laughs_fails_fast),
                cmocka_unit_test(test_alias_string_amplification),
                cmocka_unit_test(test_string_length_limit),
                cmocka_unit_test(test_emit_parse_round_trip),
                cmocka_unit_test(test_emit_documents),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
