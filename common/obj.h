/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Obj: the generic document tree every resource, config file and wire message body is held
 * in (map / list / string / int / float / bool / null), like a decoded JSON value.
 *
 * Each node remembers where it came from (line and column of a YAML source, 0 when it was
 * built in code or decoded from msgpack), so validation errors name FILE:LINE:COLUMN.
 * Maps keep insertion order (manifests print back the way they were written) and are small
 * (a resource's map has a handful of keys), so lookup is a linear scan.
 *
 * Ownership: a tree is owned by its root; obj_free() frees the whole tree. Setters take
 * ownership of the value they are given, also on failure.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum ObjType {
        OBJ_NULL,
        OBJ_BOOL,
        OBJ_INT,
        OBJ_FLOAT,
        OBJ_STR,
        OBJ_LIST,
        OBJ_MAP,
} ObjType;

typedef struct Obj Obj;

typedef struct ObjMark {
        uint32_t line; /* 1-based; 0 = unknown */
        uint32_t column;
} ObjMark;

typedef struct ObjEntry {
        char *key;
        ObjMark key_mark;
        Obj *value;
} ObjEntry;

struct Obj {
        ObjType type;
        ObjMark mark;
        union {
                bool b;
                int64_t i;
                double f;
                struct {
                        char *s;
                        size_t len;
                } str;
                struct {
                        Obj **items;
                        size_t n, cap;
                } list;
                struct {
                        ObjEntry *entries;
                        size_t n, cap;
                } map;
        };
};

Obj *obj_new_null(void);
Obj *obj_new_bool(bool b);
Obj *obj_new_int(int64_t i);
Obj *obj_new_float(double f);
Obj *obj_new_str(const char *s);
Obj *obj_new_strn(const char *s, size_t n);
Obj *obj_new_str_take(char *s); /* takes ownership of s (frees it on failure) */
Obj *obj_new_list(void);
Obj *obj_new_map(void);

Obj *obj_free(Obj *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(Obj *, obj_free);

Obj *obj_dup(const Obj *o);
bool obj_equal(const Obj *a, const Obj *b);
const char *obj_type_name(ObjType t);

/* Maps. */
Obj *obj_map_get(const Obj *map, const char *key); /* borrowed, NULL if absent or not a map */
const ObjEntry *obj_map_entry(const Obj *map, const char *key);
int obj_map_set(Obj *map, const char *key, Obj *value); /* replaces; takes value */
int obj_map_set_str(Obj *map, const char *key, const char *value);
int obj_map_set_int(Obj *map, const char *key, int64_t value);
int obj_map_set_bool(Obj *map, const char *key, bool value);
Obj *obj_map_take(Obj *map, const char *key); /* detaches and returns the value */
bool obj_map_del(Obj *map, const char *key);
/* Returns the map at key, creating an empty one when absent (NULL on OOM or type clash). */
Obj *obj_map_ensure_map(Obj *map, const char *key);
Obj *obj_map_ensure_list(Obj *map, const char *key);

/* Lists. */
int obj_list_append(Obj *list, Obj *value); /* takes value */
Obj *obj_list_get(const Obj *list, size_t i);
size_t obj_len(const Obj *o); /* entries of a map, items of a list, 0 otherwise */

/*
 * Paths: dot-separated keys with [N] for list items, e.g. "spec.template.spec.version" or
 * "spec.files[2].path". Lookups return borrowed pointers (NULL when absent or mistyped).
 */
Obj *obj_get(const Obj *o, const char *path);
const char *obj_get_str(const Obj *o, const char *path);
bool obj_get_int(const Obj *o, const char *path, int64_t *ret);
bool obj_get_bool(const Obj *o, const char *path, bool def);
/* Sets value at path, creating missing intermediate maps; takes value. On failure nothing is
 * changed: -EINVAL for a malformed path or one through a non-map, -ENOENT for a list item that
 * does not exist (lists are never grown or created). */
int obj_set(Obj *o, const char *path, Obj *value);
int obj_set_str(Obj *o, const char *path, const char *value);
int obj_set_int(Obj *o, const char *path, int64_t value);
int obj_set_bool(Obj *o, const char *path, bool value);
/* Deletes the map entry or list item (later items move up) at path; false if absent. */
bool obj_del(Obj *o, const char *path);

static inline bool obj_is(const Obj *o, ObjType t) {
        return o && o->type == t;
}
static inline const char *obj_str(const Obj *o) {
        return obj_is(o, OBJ_STR) ? o->str.s : NULL;
}

#define OBJ_MAP_FOREACH(e, m)                                                                      \
        for (const ObjEntry *e = obj_is((m), OBJ_MAP) ? (m)->map.entries : NULL;                   \
             e && e < (m)->map.entries + (m)->map.n; e++)
/* A loop over a list's items in which `break` and `continue` work as in any loop: the flag
 * carries a break of the inner one-item loop out to the outer loop. */
#define OBJ_LIST_FOREACH(it, l, idx)                                                               \
        for (size_t idx = 0, _go_##idx = 1; _go_##idx && obj_is((l), OBJ_LIST) && idx < (l)->list.n; \
             _go_##idx = !_go_##idx, idx++)                                                        \
                for (Obj *it = (l)->list.items[idx]; _go_##idx && ((void)it, 1);                \
                     _go_##idx = !_go_##idx)
