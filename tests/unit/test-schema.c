/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/schema.h: table-driven validation (every problem with its path and
 * source mark), the value parsers and checks the tables use, defaulting, immutability,
 * redaction and null dropping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "obj.h"
#include "schema.h"
#include "yamlio.h"

static Obj *yaml(const char *text) {
        Obj *o = NULL;
        YamlError err = {0};
        if (yaml_parse_one(text, strlen(text), &o, &err) < 0)
                fail_msg("bad test YAML at %u:%u: %s", err.line, err.column, err.message);
        return o;
}

static const char *const colors[] = {"red", "green", NULL};

static const SchemaField file_fields[] = {
        {"path", ST_STRING, SF_REQUIRED, .max = 10},
        {"mode", ST_INT, .min = 0, .max = 0777},
        {"secret", ST_STRING, SF_SECRET},
        {"owner", ST_STRING, .def = "root"},
        SCHEMA_END,
};

static const SchemaField inner_fields[] = {
        {"id", ST_STRING, SF_IMMUTABLE}, {"note", ST_STRING}, {"key", ST_STRING, SF_SECRET},
        {"level", ST_INT, .def = "3"},   SCHEMA_END,
};

static const SchemaField spec_fields[] = {
        {"name", ST_STRING, SF_REQUIRED | SF_IMMUTABLE | SF_DNS_NAME},
        {"files", ST_LIST, .item = ST_OBJECT, .fields = file_fields, .max = 5},
        {"color", ST_STRING, .values = colors},
        {"count", ST_INT, .min = 1, .max = 10},
        {"ratio", ST_NUMBER},
        {"enabled", ST_BOOL},
        {"labels", ST_STRMAP},
        {"tags", ST_LIST, .item = ST_STRING, .max = 3},
        {"timeout", ST_DURATION},
        {"when", ST_TIME},
        {"surge", ST_INT_OR_STRING, .check = check_percent_or_int},
        {"password", ST_STRING, SF_SECRET},
        {"secrets", ST_STRMAP, SF_SECRET},
        {"policy", ST_STRING, .def = "Random"},
        {"replicas", ST_INT, .def = "1"},
        {"paused", ST_BOOL, .def = "false"},
        {"inner", ST_OBJECT, .fields = inner_fields},
        {"byName", ST_MAP, .item = ST_OBJECT, .fields = inner_fields},
        {"anything", ST_ANY},
        {"free", ST_OBJECT},
        {"nonempty", ST_LIST, SF_NONEMPTY, .item = ST_STRING},
        {"word", ST_STRING, SF_NONEMPTY, .max = 8},
        {"version", ST_STRING, .check = check_k8s_version},
        SCHEMA_END,
};

/* Validates YAML text against spec_fields with the "spec" prefix. */
static int validate(const char *text, Problems *p) {
        _cleanup_(obj_freep) Obj *o = yaml(text);
        int r = schema_validate(spec_fields, o, "spec", p);
        assert_true(r >= 0);
        assert_int_equal((size_t)r, p->n);
        return r;
}

static const Problem *find_problem(const Problems *p, const char *path) {
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->items[i].path, path))
                        return &p->items[i];
        return NULL;
}

/* Asserts there is a problem at path whose message contains needle. */
static const Problem *expect_problem(const Problems *p, const char *path, const char *needle) {
        const Problem *pr = find_problem(p, path);
        if (!pr) {
                for (size_t i = 0; i < p->n; i++)
                        print_message("  have: %s: %s\n", p->items[i].path, p->items[i].message);
                fail_msg("no problem at %s", path);
        }
        if (needle && !strstr(pr->message, needle))
                fail_msg("%s: \"%s\" does not contain \"%s\"", path, pr->message, needle);
        return pr;
}

static void test_valid_document(void **state) {
        (void)state;
        _cleanup_(problems_clearp) Problems p = {0};
        assert_int_equal(validate("name: web-1\n"
                                  "files: [{path: /etc/a, mode: 420}, {path: /b}]\n"
                                  "color: green\n"
                                  "count: 10\n"
                                  "ratio: 0.5\n"
                                  "enabled: true\n"
                                  "labels: {app.kubernetes.io/name: web, tier: '1'}\n"
                                  "tags: [a, b, c]\n"
                                  "timeout: 1h30m\n"
                                  "when: 2024-01-02T15:04:05Z\n"
                                  "surge: 25%\n"
                                  "inner: {id: x, note: y}\n"
                                  "byName: {one: {id: a}, two: {note: b}}\n"
                                  "anything: [1, {x: y}]\n"
                                  "free: {whatever: [1, 2]}\n"
                                  "nonempty: [x]\n"
                                  "word: abc\n"
                                  "version: v1.30.2\n",
                                  &p),
                         0);
        /* Nulls are absent fields, and ratio accepts ints. */
        assert_int_equal(validate("name: a\ncolor: null\nfiles:\nratio: 3\n", &p), 0);
}

static void test_required_unknown_and_type_problems(void **state) {
        (void)state;
        _cleanup_(problems_clearp) Problems p = {0};
        const char *text = "files:\n"                /* 1 */
                           "  - path: /a\n"          /* 2 */
                           "  - path: /b\n"          /* 3 */
                           "  - mode: 8\n"           /* 4: files[2].path missing */
                           "    extra: 1\n"          /* 5: unknown */
                           "count: \"3\"\n"          /* 6: type */
                           "labels: {a: 1, b: ok}\n" /* 7: STRMAP value */
                           "bogus: true\n"           /* 8: unknown */
                           "enabled: yes\n"          /* 9: string, not bool */
                           "inner: [1]\n"            /* 10: list, not object */
                           "ratio: '1.5'\n"          /* 11 */
                           "surge: true\n"           /* 12 */
                           "tags: [a, 2]\n";         /* 13 */
        int n = validate(text, &p);
        /* name (required) missing, at the root map's mark. */
        const Problem *pr = expect_problem(&p, "spec.name", "required field is missing");
        assert_int_equal(pr->mark.line, 1);
        pr = expect_problem(&p, "spec.files[2].path", "required field is missing");
        assert_int_equal(pr->mark.line, 4); /* the item map */
        assert_int_equal(pr->mark.column, 5);
        pr = expect_problem(&p, "spec.files[2].extra", "unknown field \"extra\"");
        assert_int_equal(pr->mark.line, 5);
        assert_int_equal(pr->mark.column, 5); /* the key, not the value */
        pr = expect_problem(&p, "spec.count", "expected integer, got string");
        assert_int_equal(pr->mark.line, 6);
        assert_int_equal(pr->mark.column, 8);
        pr = expect_problem(&p, "spec.labels.a", "expected string, got integer (quote the value)");
        assert_int_equal(pr->mark.line, 7);
        assert_null(find_problem(&p, "spec.labels.b"));
        expect_problem(&p, "spec.bogus", "unknown field \"bogus\"");
        expect_problem(&p, "spec.enabled", "expected boolean, got string");
        expect_problem(&p, "spec.inner", "expected object, got list");
        expect_problem(&p, "spec.ratio", "expected number, got string");
        expect_problem(&p, "spec.surge", "expected integer or string, got boolean");
        expect_problem(&p, "spec.tags[1]", "expected string, got integer");
        assert_int_equal(n, 11);

        /* Not a map at all. */
        _cleanup_(problems_clearp) Problems q = {0};
        _cleanup_(obj_freep) Obj *list = yaml("[1]\n");
        assert_int_equal(schema_validate(spec_fields, list, "spec", &q), 1);
        expect_problem(&q, "spec", "expected object, got list");
        assert_int_equal(schema_validate(spec_fields, NULL, "", &q), 1);
        assert_non_null(strstr(q.items[1].message, "got nothing"));
        /* The prefix is optional. */
        _cleanup_(problems_clearp) Problems r = {0};
        _cleanup_(obj_freep) Obj *o = yaml("name: a\nx: 1\n");
        assert_int_equal(schema_validate(spec_fields, o, "", &r), 1);
        expect_problem(&r, "x", "unknown field");
        /* An integer past 64 bits (YAML leaves it a string) is out of range, not a string. */
        _cleanup_(problems_clearp) Problems big = {0};
        _cleanup_(obj_freep) Obj *b = yaml("name: a\ncount: 99999999999999999999\n");
        assert_int_equal(schema_validate(spec_fields, b, "spec", &big), 1);
        expect_problem(&big, "spec.count",
                       "integer out of range (99999999999999999999); at most 9223372036854775807");
}

static void test_enums_ranges_lengths(void **state) {
        (void)state;
        _cleanup_(problems_clearp) Problems p = {0};
        validate("name: a\n"
                 "color: purple\n"
                 "count: 0\n"
                 "files: [{path: /a/very/long/path, mode: 512}]\n"
                 "tags: [a, b, c, d]\n"
                 "word: ''\n"
                 "nonempty: []\n",
                 &p);
        expect_problem(&p, "spec.color",
                       "unsupported value \"purple\": must be one of \"red\", "
                       "\"green\"");
        expect_problem(&p, "spec.count", "must be between 1 and 10");
        expect_problem(&p, "spec.files[0].path", "must be at most 10 characters");
        expect_problem(&p, "spec.files[0].mode", "must be between 0 and 511");
        expect_problem(&p, "spec.tags", "must have at most 3 items");
        expect_problem(&p, "spec.word", "must not be empty");
        expect_problem(&p, "spec.nonempty", "must not be empty");
        assert_int_equal(p.n, 7);

        _cleanup_(problems_clearp) Problems q = {0};
        validate("name: a\ncount: 11\nword: abcdefghi\n", &q);
        expect_problem(&q, "spec.count", "between");
        expect_problem(&q, "spec.word", "at most 8");
        _cleanup_(problems_clearp) Problems ok = {0};
        assert_int_equal(validate("name: a\ncount: 1\nword: abcdefgh\ncolor: red\n", &ok), 0);

        /* List length: six files. */
        _cleanup_(problems_clearp) Problems l = {0};
        validate("name: a\nfiles: [{path: /1}, {path: /2}, {path: /3}, {path: /4}, {path: /5},"
                 " {path: /6}]\n",
                 &l);
        expect_problem(&l, "spec.files", "must have at most 5 items");

        /* DNS names, durations, times, checks. */
        _cleanup_(problems_clearp) Problems d = {0};
        validate("name: Web_1\ntimeout: '10'\nwhen: yesterday\nsurge: '25'\nversion: '1.30'\n", &d);
        expect_problem(&d, "spec.name", "RFC 1123 subdomain");
        expect_problem(&d, "spec.timeout", "invalid duration \"10\"");
        expect_problem(&d, "spec.when", "invalid time \"yesterday\"");
        expect_problem(&d, "spec.surge", "percentage");
        expect_problem(&d, "spec.version", "valid semantic version");
        /* A negative duration is refused for ST_DURATION. */
        _cleanup_(problems_clearp) Problems neg = {0};
        validate("name: a\ntimeout: -5s\n", &neg);
        expect_problem(&neg, "spec.timeout", "invalid duration");
}

static void test_map_of_objects_paths(void **state) {
        (void)state;
        _cleanup_(problems_clearp) Problems p = {0};
        validate("name: a\nbyName: {one: {id: 1}, two.x/y: {bad: 2}, three: 4}\n", &p);
        expect_problem(&p, "spec.byName.one.id", "expected string, got integer");
        expect_problem(&p, "spec.byName.two.x/y.bad", "unknown field");
        expect_problem(&p, "spec.byName.three", "expected object, got integer");
}

static void test_validate_value(void **state) {
        (void)state;
        static const SchemaField f = {"port", ST_INT, .min = 1, .max = 65535};
        _cleanup_(problems_clearp) Problems p = {0};
        _cleanup_(obj_freep) Obj *ok = obj_new_int(443), *zero = obj_new_int(0),
                                 *str = obj_new_str("443");
        assert_int_equal(schema_validate_value(&f, ok, "port", &p), 0);
        assert_int_equal(schema_validate_value(&f, zero, "port", &p), 1);
        assert_int_equal(schema_validate_value(&f, str, "x.port", &p), 1);
        assert_string_equal(p.items[1].path, "x.port");
        /* min == max == 0 means "no range". */
        static const SchemaField any_int = {"n", ST_INT};
        _cleanup_(obj_freep) Obj *neg = obj_new_int(-5);
        assert_int_equal(schema_validate_value(&any_int, neg, "n", &p), 0);
        assert_ptr_equal(schema_find(spec_fields, "color"), &spec_fields[2]);
        assert_null(schema_find(spec_fields, "nope"));
        assert_null(schema_find(NULL, "color"));
}

static void test_map_count_limits(void **state) {
        (void)state;
        /* .max is the entry count of ST_MAP and ST_STRMAP as of ST_LIST (schema.h: "lists/maps:
         * max count"): a {"m", ST_STRMAP, .max = 2} field with 3 entries is refused. Every
         * bounded map in the tables relies on it, e.g. wire COMMAND.args (64), HEARTBEAT
         * health.units (64), API_REQUEST labels/annotations (256). */
        static const SchemaField t[] = {
                {"m", ST_STRMAP, .max = 2},
                {"o", ST_MAP, .item = ST_INT, .max = 2},
                SCHEMA_END,
        };
        _cleanup_(problems_clearp) Problems p = {0};
        _cleanup_(obj_freep) Obj *o = yaml("m: {a: x, b: y, c: z}\no: {a: 1, b: 2, c: 3}\n");
        assert_int_equal(schema_validate(t, o, "", &p), 2);
        expect_problem(&p, "m", "at most 2");
        expect_problem(&p, "o", "at most 2");
}

static void test_item_length_limits(void **state) {
        (void)state;
        /* .item_max bounds the length of each string item of a list or map and each value of
         * a string map; .max stays the count. */
        static const SchemaField t[] = {
                {"l", ST_LIST, .item = ST_STRING, .max = 3, .item_max = 2},
                {"m", ST_MAP, .item = ST_STRING, .item_max = 2},
                {"s", ST_STRMAP, .max = 3, .item_max = 2},
                SCHEMA_END,
        };
        _cleanup_(problems_clearp) Problems p = {0};
        _cleanup_(obj_freep) Obj *ok = yaml("l: [ab, c]\nm: {k: ab}\ns: {a: xy, b: ''}\n");
        assert_int_equal(schema_validate(t, ok, "", &p), 0);
        _cleanup_(obj_freep) Obj *bad = yaml("l: [ab, abc]\nm: {k: abc}\ns: {a: xyz, b: 1}\n");
        assert_int_equal(schema_validate(t, bad, "", &p), 4);
        expect_problem(&p, "l[1]", "at most 2 characters");
        expect_problem(&p, "m.k", "at most 2 characters");
        expect_problem(&p, "s.a", "at most 2 characters");
        expect_problem(&p, "s.b", "expected string, got integer");
}

static const char *always_fails(const Obj *v, char *buf, size_t bufsz) {
        (void)v;
        snprintf(buf, bufsz, "custom check ran");
        return buf;
}

static void test_object_check_and_nonempty(void **state) {
        (void)state;
        /* An ST_OBJECT field with .fields still gets its own .check and SF_NONEMPTY after its
         * fields are validated, as ST_OBJECT without .fields and every other type do. */
        static const SchemaField sub[] = {{"a", ST_INT}, SCHEMA_END};
        static const SchemaField t[] = {
                {"checked", ST_OBJECT, .fields = sub, .check = always_fails},
                {"nonempty", ST_OBJECT, SF_NONEMPTY, .fields = sub},
                SCHEMA_END,
        };
        _cleanup_(problems_clearp) Problems p = {0};
        _cleanup_(obj_freep) Obj *o = yaml("checked: {a: 1}\nnonempty: {}\n");
        assert_int_equal(schema_validate(t, o, "", &p), 2);
        expect_problem(&p, "checked", "custom check ran");
        expect_problem(&p, "nonempty", "must not be empty");
}

static void test_checks_without_fields_apply(void **state) {
        (void)state;
        /* The same checks on an ST_OBJECT without .fields and
         * on a string runs. */
        static const SchemaField t[] = {
                {"checked", ST_OBJECT, .check = always_fails},
                {"s", ST_STRING, .check = always_fails},
                {"nonempty", ST_OBJECT, SF_NONEMPTY},
                SCHEMA_END,
        };
        _cleanup_(problems_clearp) Problems p = {0};
        _cleanup_(obj_freep) Obj *o = yaml("checked: {a: 1}\ns: x\nnonempty: {}\n");
        assert_int_equal(schema_validate(t, o, "", &p), 3);
        expect_problem(&p, "checked", "custom check ran");
        expect_problem(&p, "s", "custom check ran");
        expect_problem(&p, "nonempty", "must not be empty");
}

static void test_go_durations(void **state) {
        (void)state;
        struct {
                const char *s;
                int64_t usec;
        } good[] = {
                {"0", 0},
                {"1h30m", 5400 * USEC_PER_SEC},
                {"300s", 300 * USEC_PER_SEC},
                {"1.5h", 5400 * USEC_PER_SEC},
                {"10ms", 10 * USEC_PER_MSEC},
                {"2h45m30.5s", (2 * 3600 + 45 * 60 + 30) * USEC_PER_SEC + 500 * USEC_PER_MSEC},
                {"1us", 1},
                {"1µs", 1},
                {"1000ns", 1},
                {"1m1ms", 60 * USEC_PER_SEC + USEC_PER_MSEC},
                {"-1m", -60 * (int64_t)USEC_PER_SEC},
                {"+2s", 2 * USEC_PER_SEC},
                {".5s", 500 * USEC_PER_MSEC},
                {"10m", 600 * USEC_PER_SEC},
                {"24h", 86400 * USEC_PER_SEC},
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                int64_t us = -12345;
                int r = parse_go_duration(good[i].s, &us);
                if (r < 0 || us != good[i].usec)
                        fail_msg("\"%s\": r=%d usec=%lld, expected %lld", good[i].s, r,
                                 (long long)us, (long long)good[i].usec);
        }
        const char *bad[] = {"10", "h",  "",      "1h 30m", " 1s", "1s ",    "1x", "1hh",
                             "-",  "s1", "1..5s", "1d",     ".s",  "1h-30m", "1S", "one"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int64_t us = -12345;
                int r = parse_go_duration(bad[i], &us);
                if (r != -EINVAL)
                        fail_msg("\"%s\" accepted (r=%d, %lld)", bad[i], r, (long long)us);
                assert_int_equal(us, -12345); /* untouched */
        }
        int64_t us;
        assert_int_equal(parse_go_duration(NULL, &us), -EINVAL);
        assert_int_equal(parse_go_duration("3000000h", &us), -ERANGE);
}

static void test_go_duration_exactness(void **state) {
        (void)state;
        /* parse_go_duration() accumulates in integer nanoseconds as Go does: "1.001s" is exactly
         * 1001000 µs (a double sum truncates it to 1000999). Numbers are Go's decimal syntax
         * only: C float forms time.ParseDuration refuses ("1e3s", "0x10s") are refused. */
        int64_t us = 0;
        assert_int_equal(parse_go_duration("1.001s", &us), 0);
        assert_int_equal(us, 1001000);
        assert_int_equal(parse_go_duration("1e3s", &us), -EINVAL);
        assert_int_equal(parse_go_duration("0x10s", &us), -EINVAL);
        /* More of Go's grammar: a number may end in '.', "-0" is zero, the Greek mu spells
         * micro too, and the total must fit Go's Duration (int64 nanoseconds). */
        assert_int_equal(parse_go_duration("1.s", &us), 0);
        assert_int_equal(us, 1000000);
        assert_int_equal(parse_go_duration("-0", &us), 0);
        assert_int_equal(us, 0);
        assert_int_equal(parse_go_duration("3\xce\xbcs", &us), 0);
        assert_int_equal(us, 3);
        assert_int_equal(parse_go_duration("0.0000001s", &us), 0);
        assert_int_equal(us, 0);
        assert_int_equal(parse_go_duration("2562047h", &us), 0);
        assert_int_equal(us, 2562047LL * 3600 * 1000000);
        assert_int_equal(parse_go_duration("2562048h", &us), -ERANGE);
}

static void test_rfc3339(void **state) {
        (void)state;
        const int64_t base = 1704207845LL * (int64_t)USEC_PER_SEC; /* 2024-01-02T15:04:05Z */
        struct {
                const char *s;
                int64_t usec;
        } good[] = {
                {"2024-01-02T15:04:05Z", base},
                {"2024-01-02T15:04:05z", base},
                {"2024-01-02T16:04:05+01:00", base},
                {"2024-01-02T09:34:05-05:30", base},
                {"2024-01-02T15:04:05.5Z", base + 500000},
                {"2024-01-02T15:04:05.000001Z", base + 1},
                {"2024-01-02T15:04:05.123456789Z", base + 123456},
                {"2024-01-02T16:04:05.25+01:00", base + 250000},
                {"1970-01-01T00:00:00Z", 0},
                {"2024-02-29T00:00:00Z", 1709164800LL * (int64_t)USEC_PER_SEC},
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                int64_t us = -1;
                int r = parse_rfc3339(good[i].s, &us);
                if (r < 0 || us != good[i].usec)
                        fail_msg("\"%s\": r=%d usec=%lld, expected %lld", good[i].s, r,
                                 (long long)us, (long long)good[i].usec);
        }
        const char *bad[] = {
                "2024-01-02 15:04:05Z",
                "2024-01-02T15:04:05",
                "2024-01-02",
                "2024-01-02T15:04:05+0100",
                "2024-01-02T15:04:05Zjunk",
                "yesterday",
                "",
                "2024-13-02T15:04:05Z",
                "2024-01-02T25:04:05Z",
                "2024-01-02T15:04:05 Z",
                "2024-01-02T15:04:05+01:00x",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                /* Heap copies, so ASan sees any read past the end. */
                _cleanup_free_ char *s = strdup(bad[i]);
                int64_t us = -1;
                int r = parse_rfc3339(s, &us);
                if (r != -EINVAL)
                        fail_msg("\"%s\" accepted (%lld)", bad[i], (long long)us);
        }
        int64_t us;
        assert_int_equal(parse_rfc3339(NULL, &us), -EINVAL);

        /* format_rfc3339 round trip (second precision). */
        char buf[32];
        assert_string_equal(format_rfc3339(base + 999999, buf), "2024-01-02T15:04:05Z");
        assert_int_equal(parse_rfc3339(buf, &us), 0);
        assert_true(us == base);
}

static void test_rfc3339_short_offset(void **state) {
        (void)state;
        /* An offset with a one-digit hour or minute ("+5:30", "+1:1") is shorter than "+hh:mm":
         * parse_rfc3339() refuses it without reading past the end of the string (the inputs
         * are heap copies, so ASan would see an over-read). Reachable from any ST_TIME field of
         * a manifest, e.g. MachineDeployment spec.rolloutAfter. */
        const char *inputs[] = {"2024-01-02T15:04:05+5:30", "2024-01-02T15:04:05+1:1"};
        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                _cleanup_free_ char *s = strdup(inputs[i]);
                int64_t us;
                assert_int_equal(parse_rfc3339(s, &us), -EINVAL);
        }
}

static void test_rfc3339_strict(void **state) {
        (void)state;
        /* parse_rfc3339() refuses what RFC 3339 (and Kubernetes) refuse: a day that does not
         * exist in its month ("2023-02-30", which timegm would normalise to March 2), a '.'
         * without fraction digits, an offset out of range ("+99:99"), and fields that are not
         * zero-padded to their width ("2024-1-2T3:4:5Z"). */
        const char *bad[] = {"2023-02-30T00:00:00Z", "2024-01-02T15:04:05.Z",
                             "2024-01-02T15:04:05+99:99", "2024-1-2T3:4:5Z"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int64_t us;
                if (parse_rfc3339(bad[i], &us) != -EINVAL)
                        fail_msg("\"%s\" accepted", bad[i]);
        }
}

static void test_k8s_version(void **state) {
        (void)state;
        K8sVersion v = {0};
        assert_int_equal(parse_k8s_version("v1.30.2", &v), 0);
        assert_int_equal(v.major, 1);
        assert_int_equal(v.minor, 30);
        assert_int_equal(v.patch, 2);
        assert_int_equal(parse_k8s_version("v1.29.0-rc.1+build.5", &v), 0);
        assert_int_equal(v.minor, 29);
        assert_int_equal(v.patch, 0);
        assert_int_equal(parse_k8s_version("v0.0.0", NULL), 0);
        const char *bad[] = {"1.30.2",  "v1.30",    "v1",     "v1.30.x", "v01.2.3",
                             "v1.02.3", "v1.2.3.4", "",       "v",       "v1..2",
                             "V1.2.3",  "v1.2.3_4", "v-1.2.3"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                K8sVersion keep = {7, 7, 7};
                if (parse_k8s_version(bad[i], &keep) >= 0)
                        fail_msg("\"%s\" accepted", bad[i]);
                assert_int_equal(keep.major, 7); /* untouched */
        }
        assert_int_equal(parse_k8s_version("v1.999999.0", &v), -ERANGE);
}

static void check_ok(SchemaCheck c, Obj *v) {
        char buf[256];
        const char *msg = c(v, buf, sizeof(buf));
        if (msg)
                fail_msg("refused: %s", msg);
        obj_free(v);
}

static void check_bad(SchemaCheck c, Obj *v) {
        char buf[256];
        const char *msg = c(v, buf, sizeof(buf));
        if (!msg)
                fail_msg("accepted %s \"%s\"", obj_type_name(v->type), strempty(obj_str(v)));
        obj_free(v);
}

static void test_check_cidr(void **state) {
        (void)state;
        const char *good[] = {"10.0.0.0/8", "192.168.0.0/16", "0.0.0.0/0",     "10.1.2.3/32",
                              "fd00::/8",   "::/0",           "2001:db8::/128"};
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                check_ok(check_cidr, obj_new_str(good[i]));
        const char *bad[] = {
                "10.0.0.0",
                "10.0.0.0/33",
                "::/129",
                "10.0.0.0/",
                "abc/8",
                "10.0.0.0/8x",
                "10.0.0/8",
                "10.0.0.0/-1",
                "/8",
                "",
                "1.2.3.4.5/8",
                "0123456789012345678901234567890123456789012345678901234567890123456789/8"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                check_bad(check_cidr, obj_new_str(bad[i]));
        check_bad(check_cidr, obj_new_int(8));
}

static void test_check_percent_or_int(void **state) {
        (void)state;
        check_ok(check_percent_or_int, obj_new_int(0));
        check_ok(check_percent_or_int, obj_new_int(5));
        check_ok(check_percent_or_int, obj_new_str("25%"));
        check_ok(check_percent_or_int, obj_new_str("0%"));
        check_ok(check_percent_or_int, obj_new_str("100%"));
        check_bad(check_percent_or_int, obj_new_int(-1));
        const char *bad[] = {"25", "%", "a%", "1000%", "-5%", "2.5%", "", "25 %", "%25"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                check_bad(check_percent_or_int, obj_new_str(bad[i]));
        check_bad(check_percent_or_int, obj_new_bool(true));
}

static void test_dns_and_label_keys(void **state) {
        (void)state;
        assert_true(is_dns_subdomain("a"));
        assert_true(is_dns_subdomain("web-1.example.com"));
        assert_false(is_dns_subdomain(""));
        assert_false(is_dns_subdomain("-a"));
        assert_false(is_dns_subdomain("a-"));
        assert_false(is_dns_subdomain("a..b"));
        assert_false(is_dns_subdomain("a.-b"));
        assert_false(is_dns_subdomain("a-.b"));
        assert_false(is_dns_subdomain("A"));
        assert_false(is_dns_subdomain("a_b"));
        char long_name[300];
        memset(long_name, 'a', 254);
        long_name[254] = 0;
        assert_false(is_dns_subdomain(long_name));
        long_name[253] = 0;
        assert_true(is_dns_subdomain(long_name));
        assert_true(is_dns_label("default"));
        assert_false(is_dns_label("a.b"));
        long_name[64] = 0;
        assert_false(is_dns_label(long_name));
        long_name[63] = 0;
        assert_true(is_dns_label(long_name));

        check_ok(check_label_key, obj_new_str("app"));
        check_ok(check_label_key, obj_new_str("cluster.x-k8s.io/cluster-name"));
        check_ok(check_label_key, obj_new_str("A_b.c-D"));
        check_bad(check_label_key, obj_new_str(""));
        check_bad(check_label_key, obj_new_str("/name"));
        check_bad(check_label_key, obj_new_str("Bad_Prefix/name"));
        check_bad(check_label_key, obj_new_str("a/b/c"));
        check_bad(check_label_key, obj_new_str("prefix/"));
        check_bad(check_label_key, obj_new_str("-start"));
        check_bad(check_label_key, obj_new_str("end."));
        check_bad(check_label_key, obj_new_str("has space"));
        check_bad(check_label_key, obj_new_int(1));
        char name[80];
        memset(name, 'n', 64);
        name[64] = 0;
        check_bad(check_label_key, obj_new_str(name));
        check_ok(check_dns_label, obj_new_str("ns-1"));
        check_bad(check_dns_label, obj_new_str("ns.1"));
        check_ok(check_dns_subdomain, obj_new_str("ns.1"));
        check_ok(check_k8s_version, obj_new_str("v1.30.0"));
        check_bad(check_k8s_version, obj_new_int(1));
}

static void test_defaults(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = yaml("name: a\n"
                                           "policy: Oldest\n"
                                           "files: [{path: /a}, {path: /b, owner: me}]\n"
                                           "inner: {id: x}\n"
                                           "byName: {k: {id: y, level: 9}}\n");
        assert_int_equal(schema_apply_defaults(spec_fields, o), 0);
        /* Typed as a plain scalar would be. */
        assert_true(obj_is(obj_get(o, "replicas"), OBJ_INT));
        assert_int_equal(obj_get(o, "replicas")->i, 1);
        assert_true(obj_is(obj_get(o, "paused"), OBJ_BOOL));
        assert_false(obj_get(o, "paused")->b);
        /* Present values are kept. */
        assert_string_equal(obj_get_str(o, "policy"), "Oldest");
        /* Into lists of objects, objects and maps of objects. */
        assert_string_equal(obj_get_str(o, "files[0].owner"), "root");
        assert_string_equal(obj_get_str(o, "files[1].owner"), "me");
        assert_int_equal(obj_get(o, "inner.level")->i, 3);
        assert_int_equal(obj_map_get(obj_map_get(obj_map_get(o, "byName"), "k"), "level")->i, 9);
        /* Fields without a default stay absent; the result validates. */
        assert_null(obj_get(o, "color"));
        _cleanup_(problems_clearp) Problems p = {0};
        assert_int_equal(schema_validate(spec_fields, o, "", &p), 0);
        /* Idempotent. */
        _cleanup_(obj_freep) Obj *again = obj_dup(o);
        assert_int_equal(schema_apply_defaults(spec_fields, again), 0);
        assert_true(obj_equal(o, again));

        /* An explicit null is not defaulted: callers drop nulls first (api.c and config.c
         * call schema_drop_nulls() before schema_apply_defaults()). */
        _cleanup_(obj_freep) Obj *n = yaml("name: a\npolicy: null\n");
        assert_int_equal(schema_apply_defaults(spec_fields, n), 0);
        assert_true(obj_is(obj_get(n, "policy"), OBJ_NULL));
        schema_drop_nulls(spec_fields, n);
        assert_int_equal(schema_apply_defaults(spec_fields, n), 0);
        assert_string_equal(obj_get_str(n, "policy"), "Random");
        /* Not a map: nothing to do. */
        _cleanup_(obj_freep) Obj *l = obj_new_list();
        assert_int_equal(schema_apply_defaults(spec_fields, l), 0);
        assert_int_equal(obj_len(l), 0);
}

static void test_immutability(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *old = yaml("name: a\ncolor: red\ninner: {id: x, note: 1}\n");
        _cleanup_(problems_clearp) Problems p = {0};
        /* Changing mutable fields is fine. */
        _cleanup_(obj_freep) Obj *same = yaml("name: a\ncolor: green\ninner: {id: x, note: 2}\n");
        assert_int_equal(schema_check_immutable(spec_fields, old, same, "spec", &p), 0);
        /* Changing, or removing, an immutable field is not. */
        _cleanup_(obj_freep) Obj *changed = yaml("name: b\ncolor: red\ninner: {id: y}\n");
        assert_int_equal(schema_check_immutable(spec_fields, old, changed, "spec", &p), 2);
        const Problem *pr = expect_problem(&p, "spec.name", "field is immutable");
        assert_int_equal(pr->mark.line, 1);
        assert_int_equal(pr->mark.column, 7);
        expect_problem(&p, "spec.inner.id", "field is immutable");
        problems_clear(&p);
        _cleanup_(obj_freep) Obj *removed = yaml("color: red\ninner: {note: 1}\n");
        assert_int_equal(schema_check_immutable(spec_fields, old, removed, "", &p), 2);
        expect_problem(&p, "name", "immutable");
        expect_problem(&p, "inner.id", "immutable");
        problems_clear(&p);
        /* Setting an immutable field that was absent is allowed (first write). */
        _cleanup_(obj_freep) Obj *before = yaml("color: red\n");
        _cleanup_(obj_freep) Obj *after = yaml("name: a\ncolor: red\n");
        assert_int_equal(schema_check_immutable(spec_fields, before, after, "", &p), 0);
        /* Equal by value (1 == 1.0) is not a change. */
        static const SchemaField nums[] = {{"n", ST_NUMBER, SF_IMMUTABLE}, SCHEMA_END};
        _cleanup_(obj_freep) Obj *i = yaml("n: 1\n"), *f = yaml("n: 1.0\n");
        assert_int_equal(schema_check_immutable(nums, i, f, "", &p), 0);
}

static void test_immutable_under_removed_parent(void **state) {
        (void)state;
        /* Removing the parent object ("inner") of an immutable field ("id") is a change of that
         * field, reported like removing a top-level immutable field. */
        _cleanup_(obj_freep) Obj *old = yaml("name: a\ninner: {id: x}\n");
        _cleanup_(obj_freep) Obj *new = yaml("name: a\n");
        _cleanup_(problems_clearp) Problems p = {0};
        assert_int_equal(schema_check_immutable(spec_fields, old, new, "spec", &p), 1);
        expect_problem(&p, "spec.inner.id", "immutable");
}

static void test_redaction(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = yaml("name: a\n"
                                           "password: hunter2\n"
                                           "secrets: {db: pw1, api: pw2}\n"
                                           "files: [{path: /a, secret: s3cr3t}, {path: /b}]\n"
                                           "inner: {key: k1, note: visible}\n"
                                           "byName: {x: {key: k2}}\n");
        schema_redact(spec_fields, o);
        _cleanup_free_ char *text = NULL;
        assert_int_equal(yaml_emit(o, &text), 0);
        const char *secrets[] = {"hunter2", "pw1", "pw2", "s3cr3t", "k1", "k2"};
        for (size_t i = 0; i < ELEMENTSOF(secrets); i++)
                if (strstr(text, secrets[i]))
                        fail_msg("\"%s\" survived redaction:\n%s", secrets[i], text);
        assert_string_equal(obj_get_str(o, "password"), "<redacted>");
        /* Map keys stay, values go. */
        assert_string_equal(obj_str(obj_map_get(obj_get(o, "secrets"), "db")), "<redacted>");
        assert_string_equal(obj_str(obj_map_get(obj_get(o, "secrets"), "api")), "<redacted>");
        assert_string_equal(obj_get_str(o, "files[0].secret"), "<redacted>");
        assert_null(obj_get(o, "files[1].secret")); /* absent stays absent */
        assert_string_equal(obj_get_str(o, "inner.note"), "visible");
        assert_string_equal(obj_get_str(o, "name"), "a");
        assert_string_equal(obj_get_str(o, "files[0].path"), "/a");
}

static void test_drop_nulls(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = yaml("name: a\n"
                                           "color: null\n"
                                           "labels: ~\n"
                                           "inner: {id: null, note: n}\n"
                                           "files: [{path: /a, owner: null}]\n"
                                           "unknown: null\n"
                                           "anything: {x: null}\n");
        schema_drop_nulls(spec_fields, o);
        assert_null(obj_map_get(o, "color"));
        assert_null(obj_map_get(o, "labels"));
        assert_null(obj_get(o, "inner.id"));
        assert_string_equal(obj_get_str(o, "inner.note"), "n");
        assert_null(obj_get(o, "files[0].owner"));
        assert_string_equal(obj_get_str(o, "files[0].path"), "/a");
        /* Only fields the schema knows are touched (unknown ones are validation's business),
         * and ST_ANY values are left as they are. */
        assert_true(obj_is(obj_map_get(o, "unknown"), OBJ_NULL));
        assert_true(obj_is(obj_get(o, "anything.x"), OBJ_NULL));
        assert_string_equal(obj_get_str(o, "name"), "a");
}

static void test_problems_add_and_clear(void **state) {
        (void)state;
        Problems p = {0};
        for (int i = 0; i < 100; i++)
                assert_int_equal(problems_add(&p, (ObjMark){(uint32_t)i, 1}, i % 2 ? "x" : NULL,
                                              "problem %d", i),
                                 0);
        assert_int_equal(p.n, 100);
        assert_string_equal(p.items[99].message, "problem 99");
        assert_string_equal(p.items[99].path, "x");
        assert_string_equal(p.items[98].path, "");
        assert_int_equal(p.items[42].mark.line, 42);
        problems_clear(&p);
        assert_int_equal(p.n, 0);
        assert_null(p.items);
        problems_clear(&p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_document),
                cmocka_unit_test(test_required_unknown_and_type_problems),
                cmocka_unit_test(test_enums_ranges_lengths),
                cmocka_unit_test(test_map_of_objects_paths),
                cmocka_unit_test(test_validate_value),
                cmocka_unit_test(test_map_count_limits),
                cmocka_unit_test(test_item_length_limits),
                cmocka_unit_test(test_object_check_and_nonempty),
                cmocka_unit_test(test_checks_without_fields_apply),
                cmocka_unit_test(test_go_durations),
                cmocka_unit_test(test_go_duration_exactness),
                cmocka_unit_test(test_rfc3339),
                cmocka_unit_test(test_rfc3339_short_offset),
                cmocka_unit_test(test_rfc3339_strict),
                cmocka_unit_test(test_k8s_version),
                cmocka_unit_test(test_check_cidr),
                cmocka_unit_test(test_check_percent_or_int),
                cmocka_unit_test(test_dns_and_label_keys),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_immutability),
                cmocka_unit_test(test_immutable_under_removed_parent),
                cmocka_unit_test(test_redaction),
                cmocka_unit_test(test_drop_nulls),
                cmocka_unit_test(test_problems_add_and_clear),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
