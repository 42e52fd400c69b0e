/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/mp.h: msgpack <-> Obj round trips and the strict, bounded decoder
 * (every byte sequence below comes from the msgpack specification's format table).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/resource.h>

#include "mp.h"
#include "obj.h"

#define DECODE(bytes, ret) mp_decode((bytes), sizeof(bytes), (ret))

static Obj *sample(void) {
        Obj *o = obj_new_map();
        assert_non_null(o);
        assert_int_equal(obj_set_str(o, "kind", "Machine"), 0);
        assert_int_equal(obj_set_int(o, "small", 5), 0);
        assert_int_equal(obj_set_int(o, "neg", -33), 0);
        assert_int_equal(obj_set_int(o, "big", INT64_MAX), 0);
        assert_int_equal(obj_set_int(o, "min", INT64_MIN), 0);
        assert_int_equal(obj_set(o, "pi", obj_new_float(3.14159)), 0);
        assert_int_equal(obj_set_bool(o, "t", true), 0);
        assert_int_equal(obj_set_bool(o, "f", false), 0);
        assert_int_equal(obj_set(o, "nil", obj_new_null()), 0);
        assert_int_equal(obj_set_str(o, "empty", ""), 0);
        assert_int_equal(obj_set_str(o, "utf8", "héllo 日本"), 0);
        assert_int_equal(obj_set_str(o, "spec.template.spec.version", "v1.30.2"), 0);
        assert_int_equal(obj_set(o, "spec.emptyMap", obj_new_map()), 0);
        Obj *l = obj_map_ensure_list(o, "items");
        for (int i = 0; i < 20; i++) {
                Obj *item = obj_new_map();
                assert_int_equal(obj_map_set_int(item, "i", i), 0);
                assert_int_equal(obj_map_set(item, "l", obj_new_list()), 0);
                assert_int_equal(obj_list_append(l, item), 0);
        }
        /* A string longer than 65535 bytes (str32). */
        char *longs = malloc(70000);
        assert_non_null(longs);
        memset(longs, 'z', 69999);
        longs[69999] = 0;
        assert_int_equal(obj_map_set(o, "long", obj_new_str_take(longs)), 0);
        return o;
}

static void test_round_trip_nested(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = sample();
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        assert_int_equal(mp_encode(o, &buf, &size), 0);
        assert_true(size > 70000);
        _cleanup_(obj_freep) Obj *back = NULL;
        assert_int_equal(mp_decode(buf, size, &back), 0);
        assert_true(obj_equal(o, back));
        /* Types survive exactly (obj_equal alone would accept 1 == 1.0). */
        assert_true(obj_is(obj_get(back, "small"), OBJ_INT));
        assert_true(obj_get(back, "min")->i == INT64_MIN);
        assert_true(obj_is(obj_get(back, "pi"), OBJ_FLOAT));
        assert_true(obj_get(back, "pi")->f == 3.14159);
        /* Map order is kept. */
        for (size_t i = 0; i < o->map.n; i++)
                assert_string_equal(o->map.entries[i].key, back->map.entries[i].key);
        /* Decoded nodes carry no source mark. */
        assert_int_equal(back->mark.line, 0);

        /* A scalar top level and an empty map. */
        _cleanup_(obj_freep) Obj *s = obj_new_str("x"), *sb = NULL, *em = obj_new_map(),
                                 *emb = NULL;
        _cleanup_free_ char *b1 = NULL, *b2 = NULL;
        assert_int_equal(mp_encode(s, &b1, &size), 0);
        assert_int_equal(size, 2);
        assert_int_equal(mp_decode(b1, size, &sb), 0);
        assert_true(obj_equal(s, sb));
        assert_int_equal(mp_encode(em, &b2, &size), 0);
        assert_int_equal(size, 1);
        assert_int_equal((uint8_t)b2[0], 0x80);
        assert_int_equal(mp_decode(b2, size, &emb), 0);
        assert_true(obj_is(emb, OBJ_MAP));
}

static void test_decodes_spec_formats(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = NULL;
        /* {"a": [uint8 200, int16 -300, float32 1.5, nil, true, str8 "hi", uint64 7]} */
        static const uint8_t m[] = {0x81, 0xa1, 'a',  0x97, 0xcc, 200,  0xd1, 0xfe, 0xd4, 0xca,
                                    0x3f, 0xc0, 0x00, 0x00, 0xc0, 0xc3, 0xd9, 0x02, 'h',  'i',
                                    0xcf, 0,    0,    0,    0,    0,    0,    0,    7};
        assert_int_equal(DECODE(m, &o), 0);
        const Obj *a = obj_map_get(o, "a");
        assert_int_equal(obj_len(a), 7);
        assert_int_equal(obj_list_get(a, 0)->i, 200);
        assert_true(obj_list_get(a, 1)->i == -300);
        assert_true(obj_is(obj_list_get(a, 2), OBJ_FLOAT) && obj_list_get(a, 2)->f == 1.5);
        assert_true(obj_is(obj_list_get(a, 3), OBJ_NULL));
        assert_true(obj_is(obj_list_get(a, 4), OBJ_BOOL) && obj_list_get(a, 4)->b);
        assert_string_equal(obj_str(obj_list_get(a, 5)), "hi");
        assert_int_equal(obj_list_get(a, 6)->i, 7);
}

static void test_trailing_bytes(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = sample();
        _cleanup_free_ char *buf = NULL;
        size_t size;
        assert_int_equal(mp_encode(o, &buf, &size), 0);
        char *longer = realloc(buf, size + 1);
        assert_non_null(longer);
        buf = longer;
        buf[size] = (char)0xc0;
        Obj *back = NULL;
        assert_int_equal(mp_decode(buf, size + 1, &back), -EBADMSG);
        assert_null(back);
        /* Two complete objects back to back. */
        static const uint8_t two[] = {0x01, 0x02};
        assert_int_equal(DECODE(two, &back), -EBADMSG);
        assert_null(back);
}

static void test_truncated_input(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = sample();
        _cleanup_free_ char *buf = NULL;
        size_t size;
        assert_int_equal(mp_encode(o, &buf, &size), 0);
        /* Every strict prefix is refused (and ASan checks nothing reads past it). */
        for (size_t n = 0; n < size; n += (n < 512 ? 1 : 997)) {
                _cleanup_free_ char *copy = malloc(n ? n : 1);
                memcpy(copy, buf, n);
                Obj *back = NULL;
                int r = mp_decode(copy, n, &back);
                if (r >= 0)
                        fail_msg("prefix of %zu of %zu bytes decoded", n, size);
                assert_null(back);
        }
        Obj *back = NULL;
        assert_int_equal(mp_decode("", 0, &back), -EBADMSG);
        static const uint8_t half_int[] = {0xcd, 0x01};
        assert_int_equal(DECODE(half_int, &back), -EBADMSG);
        static const uint8_t str8_short[] = {0xd9, 0x05, 'a', 'b'};
        assert_int_equal(DECODE(str8_short, &back), -EBADMSG);
        static const uint8_t str_hdr_cut[] = {0xda, 0x00};
        assert_int_equal(DECODE(str_hdr_cut, &back), -EBADMSG);
        assert_null(back);
}

static void test_huge_declared_sizes_fail_without_allocating(void **state) {
        (void)state;
        static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t arr16[] = {0xdc, 0xff, 0xff, 0xc0, 0xc0};
        static const uint8_t nested[] = {0x91, 0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0xc0};
        struct rusage ru0, ru1;
        assert_int_equal(getrusage(RUSAGE_SELF, &ru0), 0);
        for (int rep = 0; rep < 50; rep++) {
                Obj *o = NULL;
                assert_int_equal(DECODE(arr32, &o), -EBADMSG);
                assert_int_equal(DECODE(map32, &o), -EBADMSG);
                assert_int_equal(DECODE(str32, &o), -EBADMSG);
                assert_int_equal(DECODE(arr16, &o), -EBADMSG);
                assert_int_equal(DECODE(nested, &o), -EBADMSG);
                assert_null(o);
        }
        assert_int_equal(getrusage(RUSAGE_SELF, &ru1), 0);
        /* 2^32-1 elements would be ~100 GB in msgpack-c's zone; nothing near that (or even
         * 64 MiB) may have been touched. */
        assert_true(ru1.ru_maxrss - ru0.ru_maxrss < 64 * 1024);
}

static void test_non_string_keys_and_duplicates(void **state) {
        (void)state;
        Obj *o = NULL;
        static const uint8_t int_key[] = {0x81, 0x01, 0x01};
        static const uint8_t nil_key[] = {0x81, 0xc0, 0x01};
        static const uint8_t arr_key[] = {0x81, 0x90, 0x01};
        static const uint8_t empty_key[] = {0x81, 0xa0, 0x01};
        static const uint8_t dup[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
        static const uint8_t nested_dup[] = {0x81, 0xa1, 'x',  0x82, 0xa1,
                                             'k',  0xc0, 0xa1, 'k',  0xc3};
        static const uint8_t distinct[] = {0x82, 0xa1, 'a', 0x01, 0xa2, 'a', 'a', 0x02};
        assert_int_equal(DECODE(int_key, &o), -EBADMSG);
        assert_int_equal(DECODE(nil_key, &o), -EBADMSG);
        assert_int_equal(DECODE(arr_key, &o), -EBADMSG);
        assert_int_equal(DECODE(empty_key, &o), -EBADMSG);
        assert_int_equal(DECODE(dup, &o), -EBADMSG);
        assert_int_equal(DECODE(nested_dup, &o), -EBADMSG);
        assert_null(o);
        assert_int_equal(DECODE(distinct, &o), 0);
        assert_int_equal(obj_len(o), 2);
        o = obj_free(o);

        /* Keys longer than 1024 bytes are refused, 1024 is fine. */
        uint8_t big[1100] = {0x81, 0xda, 0x04, 0x01};
        memset(big + 4, 'k', 1025);
        big[4 + 1025] = 0xc0;
        assert_int_equal(mp_decode(big, 4 + 1025 + 1, &o), -EBADMSG);
        big[3] = 0x00; /* 0x0400 = 1024 */
        big[4 + 1024] = 0xc0;
        assert_int_equal(mp_decode(big, 4 + 1024 + 1, &o), 0);
        assert_int_equal(strlen(o->map.entries[0].key), 1024);
        obj_free(o);
}

static void test_bin_ext_and_reserved_refused(void **state) {
        (void)state;
        Obj *o = NULL;
        static const uint8_t bin8[] = {0xc4, 0x01, 0x00};
        static const uint8_t bin16[] = {0xc5, 0x00, 0x01, 0x00};
        static const uint8_t bin32[] = {0xc6, 0x00, 0x00, 0x00, 0x01, 0x00};
        static const uint8_t ext8[] = {0xc7, 0x01, 0x05, 0x00};
        static const uint8_t fixext1[] = {0xd4, 0x05, 0x00};
        static const uint8_t fixext16[] = {0xd8, 0x05, 0, 0, 0, 0, 0, 0, 0,
                                           0,    0,    0, 0, 0, 0, 0, 0, 0};
        static const uint8_t never_used[] = {0xc1};
        static const uint8_t bin_in_map[] = {0x81, 0xa1, 'b', 0xc4, 0x00};
        static const uint8_t timestamp[] = {0xd6, 0xff, 0x00, 0x00, 0x00, 0x01};
        assert_int_equal(DECODE(bin8, &o), -EBADMSG);
        assert_int_equal(DECODE(bin16, &o), -EBADMSG);
        assert_int_equal(DECODE(bin32, &o), -EBADMSG);
        assert_int_equal(DECODE(ext8, &o), -EBADMSG);
        assert_int_equal(DECODE(fixext1, &o), -EBADMSG);
        assert_int_equal(DECODE(fixext16, &o), -EBADMSG);
        assert_int_equal(DECODE(never_used, &o), -EBADMSG);
        assert_int_equal(DECODE(bin_in_map, &o), -EBADMSG);
        assert_int_equal(DECODE(timestamp, &o), -EBADMSG);
        assert_null(o);
}

static void test_nul_inside_strings(void **state) {
        (void)state;
        Obj *o = NULL;
        static const uint8_t nul_value[] = {0xa3, 'a', 0x00, 'b'};
        static const uint8_t nul_in_map_value[] = {0x81, 0xa1, 'k', 0xa2, 'x', 0x00};
        static const uint8_t nul_key[] = {0x81, 0xa2, 'k', 0x00, 0x01};
        assert_int_equal(DECODE(nul_value, &o), -EBADMSG);
        assert_int_equal(DECODE(nul_in_map_value, &o), -EBADMSG);
        assert_int_equal(DECODE(nul_key, &o), -EBADMSG);
        assert_null(o);
}

static void test_empty_string(void **state) {
        (void)state;
        /* A zero-length string decodes to "" wherever it appears, also where it follows no
         * other string or fixed-size trailer (the one-byte input a0, or 92 01 a0): there
         * msgpack-c leaves via.str.ptr NULL, and convert() must not hand that pointer to
         * memchr()/memcpy() (undefined behaviour, an abort under UBSan). */
        static const uint8_t lone[] = {0xa0};
        static const uint8_t in_list[] = {0x92, 0x01, 0xa0};
        Obj *o = NULL;
        assert_int_equal(DECODE(lone, &o), 0);
        assert_true(obj_is(o, OBJ_STR));
        assert_int_equal(o->str.len, 0);
        o = obj_free(o);
        assert_int_equal(DECODE(in_list, &o), 0);
        assert_string_equal(obj_str(obj_list_get(o, 1)), "");
        obj_free(o);
}

static void test_integer_range(void **state) {
        (void)state;
        Obj *o = NULL;
        static const uint8_t too_big[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
        static const uint8_t max[] = {0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t negfix[] = {0xff};
        assert_int_equal(DECODE(too_big, &o), -ERANGE);
        assert_null(o);
        assert_int_equal(DECODE(max, &o), 0);
        assert_true(o->i == INT64_MAX);
        o = obj_free(o);
        assert_int_equal(DECODE(negfix, &o), 0);
        assert_true(o->i == -1);
        obj_free(o);
}

/* depth nested one-element arrays around a nil. */
static uint8_t *nested_arrays(unsigned depth, size_t *ret_size) {
        uint8_t *b = malloc(depth + 1);
        assert_non_null(b);
        memset(b, 0x91, depth);
        b[depth] = 0xc0;
        *ret_size = depth + 1;
        return b;
}

static void test_depth_limit(void **state) {
        (void)state;
        size_t n;
        Obj *o = NULL;
        /* MP_MAX_DEPTH nested arrays: accepted. */
        _cleanup_free_ uint8_t *ok = nested_arrays(MP_MAX_DEPTH, &n);
        assert_int_equal(mp_decode(ok, n, &o), 0);
        const Obj *cur = o;
        for (unsigned i = 0; i < MP_MAX_DEPTH; i++) {
                assert_true(obj_is(cur, OBJ_LIST));
                cur = obj_list_get(cur, 0);
        }
        assert_true(obj_is(cur, OBJ_NULL));
        o = obj_free(o);
        /* One more: refused before msgpack-c sees it. */
        _cleanup_free_ uint8_t *over = nested_arrays(MP_MAX_DEPTH + 1, &n);
        assert_int_equal(mp_decode(over, n, &o), -E2BIG);
        assert_null(o);
        _cleanup_free_ uint8_t *deep = nested_arrays(100000, &n);
        assert_int_equal(mp_decode(deep, n, &o), -E2BIG);
        assert_null(o);
        /* Maps count as well: {"a": {"a": ... nil}} */
        size_t depth = MP_MAX_DEPTH + 1;
        _cleanup_free_ uint8_t *maps = malloc(depth * 3 + 1);
        for (size_t i = 0; i < depth; i++) {
                maps[i * 3] = 0x81;
                maps[i * 3 + 1] = 0xa1;
                maps[i * 3 + 2] = 'a';
        }
        maps[depth * 3] = 0xc0;
        assert_int_equal(mp_decode(maps, depth * 3 + 1, &o), -E2BIG);
        assert_int_equal(mp_decode(maps + 3, (depth - 1) * 3 + 1, &o), 0);
        obj_free(o);
}

static void test_node_budget(void **state) {
        (void)state;
        /* [nil x 10]: 11 nodes. */
        uint8_t b[11] = {0x9a};
        memset(b + 1, 0xc0, 10);
        Obj *o = NULL;
        assert_int_equal(mp_decode_bounded(b, sizeof(b), 10, &o), -E2BIG);
        assert_null(o);
        assert_int_equal(mp_decode_bounded(b, sizeof(b), 11, &o), 0);
        assert_int_equal(obj_len(o), 10);
        o = obj_free(o);

        /* Map keys count as nodes too: {"a": nil} is 3 nodes. */
        static const uint8_t m[] = {0x81, 0xa1, 'a', 0xc0};
        assert_int_equal(mp_decode_bounded(m, sizeof(m), 2, &o), -E2BIG);
        assert_int_equal(mp_decode_bounded(m, sizeof(m), 3, &o), 0);
        o = obj_free(o);

        /* mp_decode uses MP_MAX_NODES: an array16 of 65535 nils fits, MP_MAX_NODES + 1 nils in
         * an array32 do not. */
        size_t count = MP_MAX_NODES;
        _cleanup_free_ uint8_t *big = malloc(count + 5);
        big[0] = 0xdd;
        big[1] = (uint8_t)(count >> 24);
        big[2] = (uint8_t)(count >> 16);
        big[3] = (uint8_t)(count >> 8);
        big[4] = (uint8_t)count;
        memset(big + 5, 0xc0, count);
        assert_int_equal(mp_decode(big, count + 5, &o), -E2BIG);
        assert_null(o);
        count = MP_MAX_NODES - 1; /* plus the array itself: exactly MP_MAX_NODES */
        big[3] = (uint8_t)(count >> 8);
        big[4] = (uint8_t)count;
        assert_int_equal(mp_decode(big, count + 5, &o), 0);
        assert_int_equal(obj_len(o), count);
        obj_free(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip_nested),
                cmocka_unit_test(test_decodes_spec_formats),
                cmocka_unit_test(test_trailing_bytes),
                cmocka_unit_test(test_truncated_input),
                cmocka_unit_test(test_huge_declared_sizes_fail_without_allocating),
                cmocka_unit_test(test_non_string_keys_and_duplicates),
                cmocka_unit_test(test_bin_ext_and_reserved_refused),
                cmocka_unit_test(test_nul_inside_strings),
                cmocka_unit_test(test_empty_string),
                cmocka_unit_test(test_integer_range),
                cmocka_unit_test(test_depth_limit),
                cmocka_unit_test(test_node_budget),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
