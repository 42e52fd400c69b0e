/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <time.h>

#include "schema.h"
#include "yamlio.h"

int problems_add(Problems *p, ObjMark mark, const char *path, const char *fmt, ...) {
        va_list ap;
        Problem *n = realloc(p->items, (p->n + 1) * sizeof(Problem));
        if (!n)
                return -ENOMEM;
        p->items = n;
        char *msg = NULL;
        va_start(ap, fmt);
        int k = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        char *pa = strdup(path ? path : "");
        if (!pa) {
                free(msg);
                return -ENOMEM;
        }
        p->items[p->n++] = (Problem){.mark = mark, .path = pa, .message = msg};
        return 0;
}

void problems_clear(Problems *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->items[i].path);
                free(p->items[i].message);
        }
        free(p->items);
        p->items = NULL;
        p->n = 0;
}

const SchemaField *schema_find(const SchemaField *fields, const char *name) {
        for (const SchemaField *f = fields; f && f->name; f++)
                if (streq(f->name, name))
                        return f;
        return NULL;
}

static char *path_join(const char *base, const char *name) {
        if (isempty(base))
                return strdup(name);
        return strjoin(base, ".", name);
}

static char *path_index(const char *base, size_t i) {
        return asprintf_safe("%s[%zu]", base, i);
}

bool is_dns_label(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                          (c == '-' && i > 0 && i < n - 1);
                if (!ok)
                        return false;
        }
        return true;
}

bool is_dns_subdomain(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (alnum)
                        continue;
                if ((c == '-' || c == '.') && i > 0 && i < n - 1 && s[i - 1] != '.' &&
                    !(c == '.' && s[i - 1] == '-') && !(c == '-' && s[i - 1] == '.'))
                        continue;
                return false;
        }
        return true;
}

const char *check_dns_subdomain(const Obj *v, char *buf, size_t bufsz) {
        (void)buf;
        (void)bufsz;
        if (!is_dns_subdomain(obj_str(v)))
                return "must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most "
                       "253 characters, starting and ending with a letter or digit)";
        return NULL;
}

const char *check_dns_label(const Obj *v, char *buf, size_t bufsz) {
        (void)buf;
        (void)bufsz;
        if (!is_dns_label(obj_str(v)))
                return "must be a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63 "
                       "characters, starting and ending with a letter or digit)";
        return NULL;
}

const char *check_k8s_version(const Obj *v, char *buf, size_t bufsz) {
        const char *s = obj_str(v);
        (void)buf;
        (void)bufsz;
        /* Cluster API's webhooks take "1.30.2" and store "v1.30.2"; so do the defaults. */
        char with_v[80];
        if (s && s[0] != 'v' && strlen(s) < sizeof(with_v) - 1) {
                snprintf(with_v, sizeof(with_v), "v%s", s);
                s = with_v;
        }
        if (!s || parse_k8s_version(s, NULL) < 0)
                return "must be a valid semantic version like \"v1.30.2\"";
        return NULL;
}

const char *check_cidr(const Obj *v, char *buf, size_t bufsz) {
        const char *s = obj_str(v);
        (void)buf;
        (void)bufsz;
        const char *slash = s ? strchr(s, '/') : NULL;
        if (!slash)
                return "must be a CIDR like \"192.168.0.0/16\"";
        char addr[64];
        size_t n = (size_t)(slash - s);
        if (n >= sizeof(addr))
                return "must be a CIDR like \"192.168.0.0/16\"";
        memcpy(addr, s, n);
        addr[n] = 0;
        unsigned char tmp[16];
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (*end || slash[1] == 0)
                return "must be a CIDR like \"192.168.0.0/16\"";
        if (inet_pton(AF_INET, addr, tmp) == 1 && bits >= 0 && bits <= 32)
                return NULL;
        if (inet_pton(AF_INET6, addr, tmp) == 1 && bits >= 0 && bits <= 128)
                return NULL;
        return "must be a CIDR like \"192.168.0.0/16\"";
}

const char *check_percent_or_int(const Obj *v, char *buf, size_t bufsz) {
        (void)buf;
        (void)bufsz;
        if (obj_is(v, OBJ_INT))
                return v->i < 0 ? "must not be negative" : NULL;
        const char *s = obj_str(v);
        size_t n = s ? strlen(s) : 0;
        if (n < 2 || n > 4 || s[n - 1] != '%')
                return "must be an integer or a percentage like \"25%\"";
        for (size_t i = 0; i + 1 < n; i++)
                if (!isdigit((unsigned char)s[i]))
                        return "must be an integer or a percentage like \"25%\"";
        return NULL;
}

const char *check_label_key(const Obj *v, char *buf, size_t bufsz) {
        const char *s = obj_str(v);
        (void)buf;
        (void)bufsz;
        if (!s)
                return "must be a string";
        const char *slash = strrchr(s, '/');
        const char *name = slash ? slash + 1 : s;
        if (slash) {
                char prefix[254];
                size_t n = (size_t)(slash - s);
                if (n == 0 || n > 253)
                        return "label key prefix must be a DNS subdomain";
                memcpy(prefix, s, n);
                prefix[n] = 0;
                if (!is_dns_subdomain(prefix))
                        return "label key prefix must be a DNS subdomain";
        }
        size_t n = strlen(name);
        if (n == 0 || n > 63)
                return "label key name must be 1-63 characters";
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                bool alnum = isalnum((unsigned char)c);
                if (!alnum && !((c == '-' || c == '_' || c == '.') && i > 0 && i < n - 1))
                        return "label key name must be alphanumeric, '-', '_' or '.', starting "
                               "and ending with an alphanumeric character";
        }
        return NULL;
}

char *format_go_duration(int64_t usec, char buf[static 32]) {
        /* Largest units first, as Go's Duration.String() writes "1h30m0s"; zero parts are
         * left out so the limits in messages read "1s" and "24h". */
        if (usec == 0)
                return strcpy(buf, "0s");
        uint64_t u = usec < 0 ? (uint64_t)0 - (uint64_t)usec : (uint64_t)usec;
        size_t n = 0;
        if (usec < 0)
                buf[n++] = '-';
        buf[n] = 0;
        uint64_t h = u / (3600 * USEC_PER_SEC), m = u / (60 * USEC_PER_SEC) % 60,
                 sec = u / USEC_PER_SEC % 60, sub = u % USEC_PER_SEC;
        if (h)
                n += (size_t)snprintf(buf + n, 32 - n, "%lluh", (unsigned long long)h);
        if (m)
                n += (size_t)snprintf(buf + n, 32 - n, "%llum", (unsigned long long)m);
        if (sec)
                n += (size_t)snprintf(buf + n, 32 - n, "%llus", (unsigned long long)sec);
        if (sub % 1000 == 0 && sub)
                (void)snprintf(buf + n, 32 - n, "%llums", (unsigned long long)(sub / 1000));
        else if (sub)
                (void)snprintf(buf + n, 32 - n, "%lluus", (unsigned long long)sub);
        return buf;
}

/* Go's time.ParseDuration grammar: [-+]?([0-9]*(\.[0-9]*)?unit)+ or "0", with at least one
 * digit per number and a unit from the table. Accumulated in integer nanoseconds as Go does
 * (so "1.001s" is exactly 1001000 µs) and truncated to µs at the end; the total must fit an
 * int64 of nanoseconds (about 2562047h), as Go's Duration. */
int parse_go_duration(const char *s, int64_t *ret_usec) {
        static const struct {
                const char *unit;
                uint64_t nsec;
        } units[] = {
                {"ns", 1},
                {"us", 1000},
                {"µs", 1000}, /* U+00B5 micro sign */
                {"μs", 1000}, /* U+03BC Greek mu */
                {"ms", 1000000},
                {"s", 1000000000},
                {"m", 60ULL * 1000000000},
                {"h", 3600ULL * 1000000000},
        };
        const uint64_t limit = (uint64_t)INT64_MAX + 1; /* |INT64_MIN| */
        const char *p = s;
        bool neg = false;
        uint64_t total = 0;

        if (!s)
                return -EINVAL;
        if (*p == '-' || *p == '+') {
                neg = *p == '-';
                p++;
        }
        if (streq(p, "0")) {
                *ret_usec = 0;
                return 0;
        }
        if (!*p)
                return -EINVAL;
        while (*p) {
                uint64_t whole = 0, frac = 0, scale = 1;
                bool pre = false, post = false;

                for (; *p >= '0' && *p <= '9'; p++) {
                        if (whole > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        whole = whole * 10 + (uint64_t)(*p - '0');
                        pre = true;
                }
                if (*p == '.') {
                        p++;
                        for (; *p >= '0' && *p <= '9'; p++) {
                                post = true;
                                /* Digits past the 18th are far below a nanosecond of any
                                 * unit: dropped, as Go drops them. */
                                if (scale >= 1000000000000000000ULL)
                                        continue;
                                frac = frac * 10 + (uint64_t)(*p - '0');
                                scale *= 10;
                        }
                }
                if (!pre && !post)
                        return -EINVAL;
                size_t ulen = 0;
                while (p[ulen] && p[ulen] != '.' && !(p[ulen] >= '0' && p[ulen] <= '9'))
                        ulen++;
                uint64_t mult = 0;
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (strlen(units[i].unit) == ulen && strncmp(p, units[i].unit, ulen) == 0)
                                mult = units[i].nsec;
                if (mult == 0)
                        return -EINVAL; /* missing or unknown unit */
                p += ulen;
                if (whole > limit / mult)
                        return -ERANGE;
                uint64_t v = whole * mult;
                /* frac < scale <= 10^18 and mult <= 3.6e12: the product needs 128 bits. */
                v += (uint64_t)((unsigned __int128)frac * mult / scale);
                if (v > limit || total > limit - v)
                        return -ERANGE;
                total += v;
        }
        int64_t ns;
        if (total == limit) {
                if (!neg)
                        return -ERANGE;
                ns = INT64_MIN;
        } else
                ns = neg ? -(int64_t)total : (int64_t)total;
        *ret_usec = ns / (int64_t)NSEC_PER_USEC;
        return 0;
}

/* Reads exactly n ASCII digits at s into *ret, refusing anything outside [lo, hi]. */
static bool fixed_digits(const char *s, size_t n, int lo, int hi, int *ret) {
        int v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        if (v < lo || v > hi)
                return false;
        *ret = v;
        return true;
}

static int days_in_month(int year, int month) {
        static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 date-time, checked as strictly as Go's time.Parse(time.RFC3339) that Kubernetes
 * uses: fixed-width zero-padded fields, a day that exists in its month, seconds 0-59, at
 * least one digit after '.', and a "Z" or "±hh:mm" offset within ±23:59. RFC 3339 allows a
 * lowercase 't' and 'z', so they are accepted too. Every read stays inside the string: each
 * fixed field is checked digit by digit, so a short string stops at its NUL. */
int parse_rfc3339(const char *s, int64_t *ret_usec) {
        int year, month, day, hour, min, sec;

        if (!s)
                return -EINVAL;
        if (!fixed_digits(s, 4, 0, 9999, &year) || s[4] != '-' ||
            !fixed_digits(s + 5, 2, 1, 12, &month) || s[7] != '-' ||
            !fixed_digits(s + 8, 2, 1, days_in_month(year, month), &day) ||
            (s[10] != 'T' && s[10] != 't') || !fixed_digits(s + 11, 2, 0, 23, &hour) ||
            s[13] != ':' || !fixed_digits(s + 14, 2, 0, 59, &min) || s[16] != ':' ||
            !fixed_digits(s + 17, 2, 0, 59, &sec))
                return -EINVAL;
        const char *p = s + 19;
        int64_t frac = 0;
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                int digits = 0;
                for (; *p >= '0' && *p <= '9'; p++)
                        if (digits < 6) {
                                frac = frac * 10 + (*p - '0');
                                digits++;
                        }
                for (; digits < 6; digits++)
                        frac *= 10;
        }
        int64_t offset = 0;
        if ((*p == 'Z' || *p == 'z') && p[1] == 0)
                offset = 0;
        else if (*p == '+' || *p == '-') {
                int oh, om;
                if (!fixed_digits(p + 1, 2, 0, 23, &oh) || p[3] != ':' ||
                    !fixed_digits(p + 4, 2, 0, 59, &om) || p[6] != 0)
                        return -EINVAL;
                offset = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        } else
                return -EINVAL;

        struct tm tm = {
                .tm_year = year - 1900,
                .tm_mon = month - 1,
                .tm_mday = day,
                .tm_hour = hour,
                .tm_min = min,
                .tm_sec = sec,
        };
        /* The fields are all in range, so this cannot fail with a 64-bit time_t (and -1 is
         * the valid 1969-12-31T23:59:59Z). */
        time_t t = timegm(&tm);
        *ret_usec = ((int64_t)t - offset) * (int64_t)USEC_PER_SEC + frac;
        return 0;
}

char *format_rfc3339(int64_t usec, char buf[static 32]) {
        time_t t = (time_t)(usec / (int64_t)USEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
}

int parse_k8s_version(const char *s, K8sVersion *ret) {
        K8sVersion v = {0};
        unsigned *parts[3] = {&v.major, &v.minor, &v.patch};
        const char *p = s;
        if (*p++ != 'v')
                return -EINVAL;
        for (int i = 0; i < 3; i++) {
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                if (*p == '0' && isdigit((unsigned char)p[1]))
                        return -EINVAL; /* no leading zeros, as semver says */
                unsigned long x = 0;
                while (isdigit((unsigned char)*p)) {
                        x = x * 10 + (unsigned)(*p++ - '0');
                        if (x > 100000)
                                return -ERANGE;
                }
                *parts[i] = (unsigned)x;
                if (i < 2 && *p++ != '.')
                        return -EINVAL;
        }
        if (*p && *p != '-' && *p != '+')
                return -EINVAL;
        if (ret)
                *ret = v;
        return 0;
}

static const char *type_name(SchemaType t) {
        switch (t) {
        case ST_ANY:
                return "any value";
        case ST_STRING:
        case ST_DURATION:
        case ST_TIME:
                return "string";
        case ST_INT:
                return "integer";
        case ST_BOOL:
                return "boolean";
        case ST_NUMBER:
                return "number";
        case ST_OBJECT:
        case ST_MAP:
        case ST_STRMAP:
                return "object";
        case ST_LIST:
                return "list";
        case ST_INT_OR_STRING:
                return "integer or string";
        }
        return "?";
}

static int mismatch(Problems *p, const Obj *v, const char *path, SchemaType want) {
        /* YAML hands an integer too big for 64 bits over as a string: say what is wrong. */
        if ((want == ST_INT || want == ST_INT_OR_STRING || want == ST_NUMBER) &&
            v->type == OBJ_STR) {
                const char *s = v->str.s;
                size_t i = (*s == '-' || *s == '+') ? 1 : 0;
                bool digits = s[i] != 0;
                for (; s[i] && digits; i++)
                        digits = isdigit((unsigned char)s[i]);
                errno = 0;
                if (digits && (strtoll(s, NULL, 10), errno == ERANGE))
                        return problems_add(p, v->mark, path,
                                            "integer out of range (%s); at most %lld", s,
                                            (long long)INT64_MAX);
        }
        /* "0" or "30" parse as integers: say what a duration looks like. */
        if (want == ST_DURATION)
                return problems_add(p, v->mark, path,
                                    "expected a duration such as \"10s\" or \"1m\", got %s",
                                    obj_type_name(v->type));
        return problems_add(p, v->mark, path, "expected %s, got %s", type_name(want),
                            obj_type_name(v->type));
}

static int validate_item(const SchemaField *f, SchemaType t, const Obj *v, const char *path,
                         Problems *p);

static int validate_string(const SchemaField *f, const Obj *v, const char *path, Problems *p) {
        if (f->max > 0 && (int64_t)v->str.len > f->max)
                return problems_add(p, v->mark, path, "must be at most %lld characters",
                                    (long long)f->max);
        if (memchr(v->str.s, 0, v->str.len))
                return problems_add(p, v->mark, path, "must not contain NUL bytes");
        if ((f->flags & SF_NONEMPTY) && v->str.len == 0)
                return problems_add(p, v->mark, path, "must not be empty");
        if ((f->flags & SF_DNS_NAME) && !is_dns_subdomain(v->str.s))
                return problems_add(p, v->mark, path, "%s", check_dns_subdomain(v, NULL, 0));
        if (f->values) {
                for (const char *const *e = f->values; *e; e++)
                        if (streq(*e, v->str.s))
                                return 0;
                char allowed[512] = "";
                size_t n = 0;
                for (const char *const *e = f->values; *e && n < sizeof(allowed); e++) {
                        int k = snprintf(allowed + n, sizeof(allowed) - n, "%s\"%s\"",
                                         n ? ", " : "", *e);
                        if (k > 0)
                                n += (size_t)k;
                }
                return problems_add(p, v->mark, path, "unsupported value \"%s\": must be one of %s",
                                    v->str.s, allowed);
        }
        return 0;
}

/* The field an item of list or map f is checked against: f's item fields and enum, none of
 * the container's own constraints (required, non-empty, count, check); .item_max bounds a
 * string item's length. */
static SchemaField item_field(const SchemaField *f) {
        SchemaField itemf = *f;
        itemf.flags &= ~(unsigned)(SF_REQUIRED | SF_NONEMPTY);
        itemf.min = 0;
        itemf.max = f->item_max;
        itemf.item_max = 0;
        itemf.check = NULL;
        /* A list of lists is of strings (mounts: [][]string, as explain says): one item type
         * cannot describe both levels. */
        if (f->item == ST_LIST)
                itemf.item = ST_STRING;
        return itemf;
}

static int validate_item(const SchemaField *f, SchemaType t, const Obj *v, const char *path,
                         Problems *p) {
        int r;
        switch (t) {
        case ST_ANY:
                return 0;
        case ST_STRING:
                if (!obj_is(v, OBJ_STR))
                        return mismatch(p, v, path, t);
                r = validate_string(f, v, path, p);
                if (r != 0)
                        return r;
                break;
        case ST_DURATION: {
                int64_t us;
                if (!obj_is(v, OBJ_STR))
                        return mismatch(p, v, path, t);
                if (parse_go_duration(v->str.s, &us) < 0 || us < 0)
                        return problems_add(p, v->mark, path,
                                            "invalid duration \"%s\": use a form like \"300s\", "
                                            "\"10m\" or \"1h30m\"",
                                            v->str.s);
                /* .min/.max bound a duration in µs (a zero interval makes no sense). */
                if ((f->min && us < f->min) || (f->max && us > f->max)) {
                        char lo[32], hi[32];
                        format_go_duration(f->min, lo);
                        if (!f->max)
                                return problems_add(p, v->mark, path,
                                                    "must be at least %s, not \"%s\"", lo,
                                                    v->str.s);
                        return problems_add(p, v->mark, path,
                                            "must be between %s and %s, not \"%s\"", lo,
                                            format_go_duration(f->max, hi), v->str.s);
                }
                break;
        }
        case ST_TIME: {
                int64_t us;
                if (!obj_is(v, OBJ_STR))
                        return mismatch(p, v, path, t);
                if (parse_rfc3339(v->str.s, &us) < 0)
                        return problems_add(p, v->mark, path,
                                            "invalid time \"%s\": use RFC 3339, e.g. "
                                            "\"2024-01-02T15:04:05Z\"",
                                            v->str.s);
                break;
        }
        case ST_INT:
                if (!obj_is(v, OBJ_INT))
                        return mismatch(p, v, path, t);
                if ((f->min || f->max) && (v->i < f->min || v->i > f->max)) {
                        /* The upper bound of an int32 field is a type limit, not advice. */
                        if (f->max >= INT32_MAX && v->i < f->min)
                                return problems_add(p, v->mark, path,
                                                    "must be greater than or equal to %lld",
                                                    (long long)f->min);
                        return problems_add(p, v->mark, path, "must be between %lld and %lld",
                                            (long long)f->min, (long long)f->max);
                }
                break;
        case ST_NUMBER:
                if (!obj_is(v, OBJ_INT) && !obj_is(v, OBJ_FLOAT))
                        return mismatch(p, v, path, t);
                break;
        case ST_BOOL:
                if (!obj_is(v, OBJ_BOOL))
                        return mismatch(p, v, path, t);
                break;
        case ST_INT_OR_STRING:
                if (!obj_is(v, OBJ_INT) && !obj_is(v, OBJ_STR))
                        return mismatch(p, v, path, t);
                break;
        case ST_OBJECT:
                if (!obj_is(v, OBJ_MAP))
                        return mismatch(p, v, path, t);
                if (f->fields) {
                        r = schema_validate(f->fields, v, path, p);
                        if (r < 0)
                                return r;
                        /* A custom check may rely on the shape the fields describe: it only
                         * sees an object that passed them. */
                        if (r > 0)
                                return 0;
                }
                break;
        case ST_STRMAP:
                if (!obj_is(v, OBJ_MAP))
                        return mismatch(p, v, path, t);
                if (f->max > 0 && (int64_t)v->map.n > f->max)
                        return problems_add(p, v->mark, path, "must have at most %lld entries",
                                            (long long)f->max);
                OBJ_MAP_FOREACH(e, v) {
                        _cleanup_free_ char *sub = path_join(path, e->key);
                        if (!sub)
                                return -ENOMEM;
                        if (!obj_is(e->value, OBJ_STR))
                                r = problems_add(p, e->value->mark, sub,
                                                 "expected string, got %s (quote the value)",
                                                 obj_type_name(e->value->type));
                        else if (f->item_max > 0 && (int64_t)e->value->str.len > f->item_max)
                                r = problems_add(p, e->value->mark, sub,
                                                 "must be at most %lld characters",
                                                 (long long)f->item_max);
                        else
                                r = 0;
                        if (r < 0)
                                return r;
                }
                break;
        case ST_LIST:
                if (!obj_is(v, OBJ_LIST))
                        return mismatch(p, v, path, t);
                if (f->max > 0 && (int64_t)v->list.n > f->max)
                        return problems_add(p, v->mark, path, "must have at most %lld items",
                                            (long long)f->max);
                OBJ_LIST_FOREACH(it, v, i) {
                        _cleanup_free_ char *sub = path_index(path, i);
                        if (!sub)
                                return -ENOMEM;
                        SchemaField itemf = item_field(f);
                        r = validate_item(&itemf, f->item, it, sub, p);
                        if (r < 0)
                                return r;
                }
                break;
        case ST_MAP:
                if (!obj_is(v, OBJ_MAP))
                        return mismatch(p, v, path, t);
                if (f->max > 0 && (int64_t)v->map.n > f->max)
                        return problems_add(p, v->mark, path, "must have at most %lld entries",
                                            (long long)f->max);
                OBJ_MAP_FOREACH(e, v) {
                        _cleanup_free_ char *sub = path_join(path, e->key);
                        if (!sub)
                                return -ENOMEM;
                        SchemaField itemf = item_field(f);
                        r = validate_item(&itemf, f->item, e->value, sub, p);
                        if (r < 0)
                                return r;
                }
                break;
        }
        if ((f->flags & SF_NONEMPTY) && (obj_is(v, OBJ_LIST) || obj_is(v, OBJ_MAP)) &&
            obj_len(v) == 0)
                return problems_add(p, v->mark, path, "must not be empty");
        if (f->check) {
                char buf[256];
                const char *msg = f->check(v, buf, sizeof(buf));
                if (msg)
                        return problems_add(p, v->mark, path, "%s", msg);
        }
        return 0;
}

int schema_validate_value(const SchemaField *f, const Obj *v, const char *path, Problems *p) {
        size_t before = p->n;
        int r = validate_item(f, f->type, v, path, p);
        if (r < 0)
                return r;
        return (int)(p->n - before);
}

int schema_validate(const SchemaField *fields, const Obj *o, const char *path, Problems *p) {
        size_t before = p->n;
        int r;

        if (!obj_is(o, OBJ_MAP)) {
                r = problems_add(p, o ? o->mark : (ObjMark){0}, path, "expected object, got %s",
                                 o ? obj_type_name(o->type) : "nothing");
                return r < 0 ? r : 1;
        }
        OBJ_MAP_FOREACH(e, o) {
                const SchemaField *f = schema_find(fields, e->key);
                _cleanup_free_ char *sub = path_join(path, e->key);
                if (!sub)
                        return -ENOMEM;
                if (!f) {
                        r = problems_add(p, e->key_mark.line ? e->key_mark : e->value->mark, sub,
                                         "unknown field \"%s\"", e->key);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* A null field is an absent field, as in Kubernetes ("labels:" with nothing). */
                if (obj_is(e->value, OBJ_NULL))
                        continue;
                r = validate_item(f, f->type, e->value, sub, p);
                if (r < 0)
                        return r;
        }
        for (const SchemaField *f = fields; f && f->name; f++) {
                if (!(f->flags & SF_REQUIRED))
                        continue;
                const Obj *v = obj_map_get(o, f->name);
                if (v && !obj_is(v, OBJ_NULL))
                        continue;
                _cleanup_free_ char *sub = path_join(path, f->name);
                if (!sub)
                        return -ENOMEM;
                r = problems_add(p, v ? v->mark : o->mark, sub, "required field is missing");
                if (r < 0)
                        return r;
        }
        return (int)(p->n - before);
}

int schema_apply_defaults(const SchemaField *fields, Obj *o) {
        if (!obj_is(o, OBJ_MAP))
                return 0;
        for (const SchemaField *f = fields; f && f->name; f++) {
                Obj *v = obj_map_get(o, f->name);
                if (!v && f->def) {
                        int r = obj_map_set(o, f->name, yaml_resolve_plain(f->def, strlen(f->def)));
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!v || !f->fields)
                        continue;
                if (f->type == ST_OBJECT) {
                        int r = schema_apply_defaults(f->fields, v);
                        if (r < 0)
                                return r;
                } else if (f->type == ST_LIST && f->item == ST_OBJECT) {
                        OBJ_LIST_FOREACH(it, v, i) {
                                int r = schema_apply_defaults(f->fields, it);
                                if (r < 0)
                                        return r;
                        }
                } else if (f->type == ST_MAP && f->item == ST_OBJECT) {
                        OBJ_MAP_FOREACH(e, v) {
                                int r = schema_apply_defaults(f->fields, e->value);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

/* new may be absent (NULL) when its parent object was removed: every immutable field old
 * had below it is then reported at `at`, the nearest node new still has. */
static int check_immutable(const SchemaField *fields, const Obj *old, const Obj *new, ObjMark at,
                           const char *path, Problems *p) {
        if (!obj_is(old, OBJ_MAP))
                return 0;
        if (!obj_is(new, OBJ_MAP))
                new = NULL;
        for (const SchemaField *f = fields; f && f->name; f++) {
                const Obj *ov = obj_map_get(old, f->name);
                const Obj *nv = new ? obj_map_get(new, f->name) : NULL;
                _cleanup_free_ char *sub = path_join(path, f->name);
                if (!sub)
                        return -ENOMEM;
                if (f->flags & SF_IMMUTABLE) {
                        if (ov && !obj_equal(ov, nv)) {
                                /* Say what it was: the fix is usually to put that back. */
                                char was[96] = "";
                                if (obj_is(ov, OBJ_STR))
                                        snprintf(was, sizeof(was), " (it is \"%.80s\")", ov->str.s);
                                else if (obj_is(ov, OBJ_INT))
                                        snprintf(was, sizeof(was), " (it is %lld)",
                                                 (long long)ov->i);
                                int r = problems_add(p, nv ? nv->mark : at, sub,
                                                     "field is immutable%s", was);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (f->type == ST_OBJECT && f->fields) {
                        int r = check_immutable(f->fields, ov, nv, nv ? nv->mark : at, sub, p);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int schema_check_immutable(const SchemaField *fields, const Obj *old, const Obj *new,
                           const char *path, Problems *p) {
        if (!obj_is(old, OBJ_MAP) || !obj_is(new, OBJ_MAP))
                return 0;
        size_t before = p->n;
        int r = check_immutable(fields, old, new, new->mark, path, p);
        if (r < 0)
                return r;
        return (int)(p->n - before);
}

void schema_redact(const SchemaField *fields, Obj *o) {
        if (!obj_is(o, OBJ_MAP))
                return;
        for (const SchemaField *f = fields; f && f->name; f++) {
                Obj *v = obj_map_get(o, f->name);
                if (!v)
                        continue;
                if (f->flags & SF_SECRET) {
                        if (f->type == ST_STRMAP || f->type == ST_MAP) {
                                for (size_t i = 0; obj_is(v, OBJ_MAP) && i < v->map.n; i++) {
                                        obj_free(v->map.entries[i].value);
                                        v->map.entries[i].value = obj_new_str("<redacted>");
                                }
                        } else
                                obj_map_set_str(o, f->name, "<redacted>");
                        continue;
                }
                if (!f->fields)
                        continue;
                if (f->type == ST_OBJECT)
                        schema_redact(f->fields, v);
                else if (f->type == ST_LIST && f->item == ST_OBJECT) {
                        OBJ_LIST_FOREACH(it, v, i)
                        schema_redact(f->fields, it);
                } else if (f->type == ST_MAP && f->item == ST_OBJECT) {
                        OBJ_MAP_FOREACH(e, v)
                        schema_redact(f->fields, e->value);
                }
        }
}

void schema_drop_nulls(const SchemaField *fields, Obj *o) {
        if (!obj_is(o, OBJ_MAP))
                return;
        for (const SchemaField *f = fields; f && f->name; f++) {
                Obj *v = obj_map_get(o, f->name);
                if (!v)
                        continue;
                if (obj_is(v, OBJ_NULL)) {
                        obj_map_del(o, f->name);
                        continue;
                }
                if (f->type == ST_OBJECT && f->fields)
                        schema_drop_nulls(f->fields, v);
                else if (f->type == ST_LIST && f->item == ST_OBJECT && f->fields) {
                        OBJ_LIST_FOREACH(it, v, i)
                        schema_drop_nulls(f->fields, it);
                }
        }
}
