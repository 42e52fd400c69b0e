/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <ctype.h>

#include "config.h"
#include "fileio.h"
#include "yamlio.h"

char *problems_format(const char *file, const char *prefix, const Problems *p) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; i < p->n; i++) {
                const Problem *pr = &p->items[i];
                fprintf(f, "%s:%u:%u: ", file, pr->mark.line, pr->mark.column);
                if (prefix)
                        fprintf(f, "%s: ", prefix);
                if (!isempty(pr->path))
                        fprintf(f, "%s: ", pr->path);
                fprintf(f, "%s\n", pr->message);
        }
        fclose(f);
        return out;
}

int config_load(const char *path, const SchemaField *schema, Obj **ret, char **ret_errors) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r = read_file_bounded(path, CONFIG_MAX_SIZE, &text, &size);
        if (r < 0)
                return r;
        return config_parse(path, text, size, schema, ret, ret_errors);
}

int config_parse(const char *path, const char *text, size_t size, const SchemaField *schema,
                 Obj **ret, char **ret_errors) {
        int r;
        if (size > CONFIG_MAX_SIZE)
                return -EFBIG;
        _cleanup_(obj_freep) Obj *o = NULL;
        YamlError err;
        r = yaml_parse_one(text, size, &o, &err);
        if (r == -EBADMSG) {
                if (ret_errors)
                        *ret_errors = asprintf_safe("%s:%u:%u: %s\n", path, err.line, err.column,
                                                    err.message);
                return r;
        }
        if (r < 0)
                return r;
        _cleanup_(problems_clearp) Problems p = {0};
        r = schema_validate(schema, o, "", &p);
        if (r < 0)
                return r;
        if (r > 0) {
                if (ret_errors)
                        *ret_errors = problems_format(path, NULL, &p);
                return -EBADMSG;
        }
        schema_drop_nulls(schema, o);
        r = schema_apply_defaults(schema, o);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

const char *config_str(const Obj *c, const char *key, const char *def) {
        const char *s = obj_str(obj_map_get(c, key));
        return s ? s : def;
}

uint64_t config_duration(const Obj *c, const char *key, uint64_t def_usec) {
        int64_t us;
        const char *s = obj_str(obj_map_get(c, key));
        if (!s || parse_go_duration(s, &us) < 0 || us < 0)
                return def_usec;
        return (uint64_t)us;
}

/* Splits "tcp://HOST:PORT": NULL when well-formed (host copied to host[], port to *port),
 * else what is wrong. An IPv6 host is written in brackets, as ZeroMQ wants it. */
static const char *endpoint_split(const char *s, char host[static 256], unsigned *port) {
        if (!startswith(s, "tcp://"))
                return "must be tcp://HOST:PORT";
        const char *rest = s + strlen("tcp://");
        const char *colon = strrchr(rest, ':');
        if (!colon || colon == rest)
                return "must be tcp://HOST:PORT";
        size_t hl = (size_t)(colon - rest);
        if (hl >= 256)
                return "host name too long";
        memcpy(host, rest, hl);
        host[hl] = 0;
        if (host[0] == '[' ? host[hl - 1] != ']' || hl < 3 : strchr(host, ':') != NULL)
                return "must be tcp://HOST:PORT (an IPv6 address in brackets: tcp://[::1]:7443)";
        char *end;
        errno = 0;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (!isdigit((unsigned char)colon[1]) || *end || errno || p < 1 || p > 65535)
                return "the port must be a number from 1 to 65535";
        *port = (unsigned)p;
        return NULL;
}

static bool host_is_wildcard(const char *h) {
        return streq(h, "*") || streq(h, "0.0.0.0") || streq(h, "[::]") || streq(h, "[::0]");
}

const char *endpoint_check(const char *s, EndpointUse use, char *buf, size_t bufsz) {
        char host[256];
        unsigned port;
        const char *why = endpoint_split(s, host, &port);
        if (why && startswith(s, "ipc://") && use == ENDPOINT_BIND)
                why = "must be tcp://HOST:PORT (agents connect over TCP with CURVE)";
        if (!why && use != ENDPOINT_BIND && host_is_wildcard(host))
                why = use == ENDPOINT_ADVERTISE
                              ? "a wildcard address cannot be advertised: give the name or "
                                "address agents reach this coordinator at"
                              : "a wildcard address cannot be connected to: give the "
                                "coordinator's name or address";
        if (!why)
                return NULL;
        snprintf(buf, bufsz, "%s, not '%.128s'", why, s);
        return buf;
}

bool endpoint_is_wildcard(const char *s) {
        char host[256];
        unsigned port;
        return !endpoint_split(s, host, &port) && host_is_wildcard(host);
}

bool endpoint_is_local(const char *s) {
        char host[256];
        unsigned port;
        if (endpoint_split(s, host, &port))
                return false;
        return host_is_wildcard(host) || startswith(host, "127.") || streq(host, "localhost") ||
               streq(host, "[::1]");
}

const char *addr_port_check(const char *s, char *buf, size_t bufsz) {
        const char *colon = strrchr(s, ':');
        char host[64];
        struct in_addr a;
        char *end;
        if (colon && (size_t)(colon - s) < sizeof(host)) {
                memcpy(host, s, (size_t)(colon - s));
                host[colon - s] = 0;
                errno = 0;
                unsigned long p = strtoul(colon + 1, &end, 10);
                if (inet_pton(AF_INET, host, &a) == 1 && isdigit((unsigned char)colon[1]) &&
                    !*end && !errno && p <= 65535)
                        return NULL;
        }
        snprintf(buf, bufsz,
                 "must be IPv4ADDR:PORT (e.g. 127.0.0.1:9450), or \"\" to disable, not '%.128s'",
                 s);
        return buf;
}

static const char *check_endpoint_obj(const Obj *v, EndpointUse use, char *buf, size_t bufsz) {
        return obj_str(v) ? endpoint_check(obj_str(v), use, buf, bufsz) : NULL;
}

const char *check_listen_endpoint(const Obj *v, char *buf, size_t bufsz) {
        return check_endpoint_obj(v, ENDPOINT_BIND, buf, bufsz);
}

const char *check_connect_endpoint(const Obj *v, char *buf, size_t bufsz) {
        return check_endpoint_obj(v, ENDPOINT_CONNECT, buf, bufsz);
}

const char *check_advertise_endpoint(const Obj *v, char *buf, size_t bufsz) {
        return check_endpoint_obj(v, ENDPOINT_ADVERTISE, buf, bufsz);
}

const char *check_addr_port_or_empty(const Obj *v, char *buf, size_t bufsz) {
        const char *s = obj_str(v);
        return isempty(s) ? NULL : addr_port_check(s, buf, bufsz);
}

char *config_errors_one_line(const char *errors) {
        /* A log message is one line: journald and the stderr "[host=…]" suffix expect it. */
        size_t n = 0;
        for (const char *p = strempty(errors); *p; p++)
                n += *p == '\n' ? 2 : 1;
        char *out = malloc(n + 1), *q = out;
        if (!out)
                return NULL;
        for (const char *p = strempty(errors); *p; p++)
                if (*p != '\n')
                        *q++ = *p;
                else if (p[1]) {
                        *q++ = ';';
                        *q++ = ' ';
                }
        *q = 0;
        return out;
}
