/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Declarative field tables that drive validation, defaulting, immutability checks and
 * redaction of Obj trees: for resources (see kinds.c), for wire message bodies (wire.c) and
 * for the daemons' configuration files (config.c). No kind or message has a hand-written
 * parser: each is a table of SchemaField.
 *
 * Validation is strict (unknown fields are errors, as Kubernetes' strict field validation
 * makes them) and reports every problem at once, each with the source mark of the node and
 * a field path such as "spec.template.spec.bootstrap.configRef.name".
 */
#pragma once

#include "obj.h"

typedef enum SchemaType {
        ST_ANY,
        ST_STRING,
        ST_INT,
        ST_BOOL,
        ST_NUMBER,
        ST_OBJECT,        /* .fields, or any map when .fields is NULL */
        ST_LIST,          /* of .item (ST_OBJECT items use .fields) */
        ST_MAP,           /* string keys -> .item values (ST_OBJECT values use .fields) */
        ST_STRMAP,        /* string keys -> string values: labels, annotations, extraArgs */
        ST_INT_OR_STRING, /* maxSurge: 1 or "25%" */
        ST_DURATION,      /* Go duration string: "300s", "10m", "1h30m" */
        ST_TIME,          /* RFC 3339 timestamp */
} SchemaType;

enum {
        SF_REQUIRED = 1 << 0,
        SF_IMMUTABLE = 1 << 1, /* refused when changed on update */
        SF_SECRET = 1 << 2,    /* redacted in output and logs */
        SF_DNS_NAME = 1 << 4,  /* string: DNS-1123 subdomain */
        SF_NONEMPTY = 1 << 5,  /* string/list/map: must not be empty */
};

typedef struct SchemaField SchemaField;

/* A custom check: returns NULL when fine, else a static or buffer message. */
typedef const char *(*SchemaCheck)(const Obj *value, char *buf, size_t bufsz);

struct SchemaField {
        const char *name;
        SchemaType type;
        unsigned flags;
        const SchemaField *fields; /* ST_OBJECT, and ST_LIST/ST_MAP of objects */
        SchemaType item;           /* ST_LIST / ST_MAP item type */
        const char *const *values; /* enum of allowed strings, NULL-terminated */
        const char *def;           /* default, written as a YAML plain scalar */
        int64_t min, max;          /* ints: range; strings: max length; lists/maps: max count */
        int64_t item_max;          /* ST_LIST/ST_MAP string items, ST_STRMAP values: max length */
        SchemaCheck check;
        const char *doc; /* one line for docs/resources.md */
};

/* Table terminator. */
#define SCHEMA_END                                                                                 \
        { .name = NULL }

typedef struct Problem {
        ObjMark mark;
        char *path;
        char *message;
} Problem;

typedef struct Problems {
        Problem *items;
        size_t n;
} Problems;

int problems_add(Problems *p, ObjMark mark, const char *path, const char *fmt, ...) _printf_(4, 5);
void problems_clear(Problems *p);
static inline void problems_clearp(Problems *p) {
        problems_clear(p);
}

/* Validates map o against fields; path is the prefix for messages ("" or "spec"). Returns
 * the number of problems added (0 = valid) or -ENOMEM. */
int schema_validate(const SchemaField *fields, const Obj *o, const char *path, Problems *p);
int schema_validate_value(const SchemaField *f, const Obj *v, const char *path, Problems *p);

/* Fills defaults into o (recursively into present objects and lists of objects). */
int schema_apply_defaults(const SchemaField *fields, Obj *o);

/* Reports changes of SF_IMMUTABLE fields between old and new. */
int schema_check_immutable(const SchemaField *fields, const Obj *old, const Obj *new,
                           const char *path, Problems *p);

/* Replaces SF_SECRET values with "<redacted>". */
void schema_redact(const SchemaField *fields, Obj *o);

/* Drops null-valued fields (so "absent" has one representation). */
void schema_drop_nulls(const SchemaField *fields, Obj *o);

const SchemaField *schema_find(const SchemaField *fields, const char *name);

/* Checks usable from tables. */
const char *check_dns_subdomain(const Obj *v, char *buf, size_t bufsz);
const char *check_dns_label(const Obj *v, char *buf, size_t bufsz);
const char *check_k8s_version(const Obj *v, char *buf, size_t bufsz);
const char *check_cidr(const Obj *v, char *buf, size_t bufsz);
const char *check_percent_or_int(const Obj *v, char *buf, size_t bufsz);
const char *check_label_key(const Obj *v, char *buf, size_t bufsz);

/* Parses a Go duration ("1h30m", "300s", "0"); -EINVAL if malformed. */
int parse_go_duration(const char *s, int64_t *ret_usec);
/* Formats µs as a Go duration without zero parts: "24h", "1m30s", "500ms". */
char *format_go_duration(int64_t usec, char buf[static 32]);
/* Parses RFC 3339 "2006-01-02T15:04:05Z" (and with fractional seconds / offsets). */
int parse_rfc3339(const char *s, int64_t *ret_usec);
/* Formats a realtime µs timestamp as RFC 3339 UTC with second precision. */
char *format_rfc3339(int64_t usec, char buf[static 32]);
bool is_dns_subdomain(const char *s);

typedef struct K8sVersion {
        unsigned major, minor, patch;
} K8sVersion;
/* Parses "v1.30.2" (pre-release/build suffixes allowed); -EINVAL if malformed. */
int parse_k8s_version(const char *s, K8sVersion *ret);
bool is_dns_label(const char *s);
