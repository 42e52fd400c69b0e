/* SPDX-License-Identifier: Apache-2.0 */
#include <math.h>

#include "obj.h"

static Obj *obj_alloc(ObjType t) {
        Obj *o = calloc(1, sizeof(Obj));
        if (o)
                o->type = t;
        return o;
}

Obj *obj_new_null(void) {
        return obj_alloc(OBJ_NULL);
}

Obj *obj_new_bool(bool b) {
        Obj *o = obj_alloc(OBJ_BOOL);
        if (o)
                o->b = b;
        return o;
}

Obj *obj_new_int(int64_t i) {
        Obj *o = obj_alloc(OBJ_INT);
        if (o)
                o->i = i;
        return o;
}

Obj *obj_new_float(double f) {
        Obj *o = obj_alloc(OBJ_FLOAT);
        if (o)
                o->f = f;
        return o;
}

Obj *obj_new_strn(const char *s, size_t n) {
        Obj *o = obj_alloc(OBJ_STR);
        if (!o)
                return NULL;
        o->str.s = malloc(n + 1);
        if (!o->str.s) {
                free(o);
                return NULL;
        }
        if (n > 0) /* an empty string may come as (NULL, 0), e.g. from msgpack-c */
                memcpy(o->str.s, s, n);
        o->str.s[n] = 0;
        o->str.len = n;
        return o;
}

Obj *obj_new_str(const char *s) {
        return obj_new_strn(s, strlen(s));
}

Obj *obj_new_str_take(char *s) {
        if (!s)
                return NULL;
        Obj *o = obj_alloc(OBJ_STR);
        if (!o) {
                free(s);
                return NULL;
        }
        o->str.s = s;
        o->str.len = strlen(s);
        return o;
}

Obj *obj_new_list(void) {
        return obj_alloc(OBJ_LIST);
}

Obj *obj_new_map(void) {
        return obj_alloc(OBJ_MAP);
}

Obj *obj_free(Obj *o) {
        if (!o)
                return NULL;
        switch (o->type) {
        case OBJ_STR:
                free(o->str.s);
                break;
        case OBJ_LIST:
                for (size_t i = 0; i < o->list.n; i++)
                        obj_free(o->list.items[i]);
                free(o->list.items);
                break;
        case OBJ_MAP:
                for (size_t i = 0; i < o->map.n; i++) {
                        free(o->map.entries[i].key);
                        obj_free(o->map.entries[i].value);
                }
                free(o->map.entries);
                break;
        default:
                break;
        }
        free(o);
        return NULL;
}

const char *obj_type_name(ObjType t) {
        switch (t) {
        case OBJ_NULL:
                return "null";
        case OBJ_BOOL:
                return "boolean";
        case OBJ_INT:
                return "integer";
        case OBJ_FLOAT:
                return "number";
        case OBJ_STR:
                return "string";
        case OBJ_LIST:
                return "list";
        case OBJ_MAP:
                return "object";
        }
        return "unknown";
}

Obj *obj_dup(const Obj *o) {
        if (!o)
                return NULL;
        _cleanup_(obj_freep) Obj *c = NULL;
        switch (o->type) {
        case OBJ_NULL:
                c = obj_new_null();
                break;
        case OBJ_BOOL:
                c = obj_new_bool(o->b);
                break;
        case OBJ_INT:
                c = obj_new_int(o->i);
                break;
        case OBJ_FLOAT:
                c = obj_new_float(o->f);
                break;
        case OBJ_STR:
                c = obj_new_strn(o->str.s, o->str.len);
                break;
        case OBJ_LIST:
                c = obj_new_list();
                if (!c)
                        return NULL;
                for (size_t i = 0; i < o->list.n; i++)
                        if (obj_list_append(c, obj_dup(o->list.items[i])) < 0)
                                return NULL;
                break;
        case OBJ_MAP:
                c = obj_new_map();
                if (!c)
                        return NULL;
                for (size_t i = 0; i < o->map.n; i++) {
                        if (obj_map_set(c, o->map.entries[i].key,
                                        obj_dup(o->map.entries[i].value)) < 0)
                                return NULL;
                        c->map.entries[c->map.n - 1].key_mark = o->map.entries[i].key_mark;
                }
                break;
        }
        if (c)
                c->mark = o->mark;
        return TAKE_PTR(c);
}

bool obj_equal(const Obj *a, const Obj *b) {
        if (!a || !b)
                return a == b;
        if (a->type != b->type) {
                /* 1 and 1.0 are the same number. */
                if (a->type == OBJ_INT && b->type == OBJ_FLOAT)
                        return (double)a->i == b->f;
                if (a->type == OBJ_FLOAT && b->type == OBJ_INT)
                        return a->f == (double)b->i;
                return false;
        }
        switch (a->type) {
        case OBJ_NULL:
                return true;
        case OBJ_BOOL:
                return a->b == b->b;
        case OBJ_INT:
                return a->i == b->i;
        case OBJ_FLOAT:
                return a->f == b->f;
        case OBJ_STR:
                return a->str.len == b->str.len && memcmp(a->str.s, b->str.s, a->str.len) == 0;
        case OBJ_LIST:
                if (a->list.n != b->list.n)
                        return false;
                for (size_t i = 0; i < a->list.n; i++)
                        if (!obj_equal(a->list.items[i], b->list.items[i]))
                                return false;
                return true;
        case OBJ_MAP:
                /* Key order does not matter for equality. */
                if (a->map.n != b->map.n)
                        return false;
                for (size_t i = 0; i < a->map.n; i++) {
                        const Obj *bv = obj_map_get(b, a->map.entries[i].key);
                        if (!bv || !obj_equal(a->map.entries[i].value, bv))
                                return false;
                }
                return true;
        }
        return false;
}

const ObjEntry *obj_map_entry(const Obj *map, const char *key) {
        if (!obj_is(map, OBJ_MAP))
                return NULL;
        for (size_t i = 0; i < map->map.n; i++)
                if (streq(map->map.entries[i].key, key))
                        return &map->map.entries[i];
        return NULL;
}

Obj *obj_map_get(const Obj *map, const char *key) {
        const ObjEntry *e = obj_map_entry(map, key);
        return e ? e->value : NULL;
}

int obj_map_set(Obj *map, const char *key, Obj *value) {
        if (!value)
                return -ENOMEM;
        if (!obj_is(map, OBJ_MAP)) {
                obj_free(value);
                return -EINVAL;
        }
        for (size_t i = 0; i < map->map.n; i++)
                if (streq(map->map.entries[i].key, key)) {
                        obj_free(map->map.entries[i].value);
                        map->map.entries[i].value = value;
                        return 0;
                }
        if (map->map.n == map->map.cap) {
                size_t nc = map->map.cap ? map->map.cap * 2 : 4;
                ObjEntry *ne = realloc(map->map.entries, nc * sizeof(ObjEntry));
                if (!ne) {
                        obj_free(value);
                        return -ENOMEM;
                }
                map->map.entries = ne;
                map->map.cap = nc;
        }
        char *k = strdup(key);
        if (!k) {
                obj_free(value);
                return -ENOMEM;
        }
        map->map.entries[map->map.n++] = (ObjEntry){.key = k, .value = value};
        return 0;
}

int obj_map_set_str(Obj *map, const char *key, const char *value) {
        return obj_map_set(map, key, obj_new_str(value));
}

int obj_map_set_int(Obj *map, const char *key, int64_t value) {
        return obj_map_set(map, key, obj_new_int(value));
}

int obj_map_set_bool(Obj *map, const char *key, bool value) {
        return obj_map_set(map, key, obj_new_bool(value));
}

Obj *obj_map_take(Obj *map, const char *key) {
        if (!obj_is(map, OBJ_MAP))
                return NULL;
        for (size_t i = 0; i < map->map.n; i++)
                if (streq(map->map.entries[i].key, key)) {
                        Obj *v = map->map.entries[i].value;
                        free(map->map.entries[i].key);
                        memmove(map->map.entries + i, map->map.entries + i + 1,
                                (map->map.n - i - 1) * sizeof(ObjEntry));
                        map->map.n--;
                        return v;
                }
        return NULL;
}

bool obj_map_del(Obj *map, const char *key) {
        Obj *v = obj_map_take(map, key);
        if (!v)
                return false;
        obj_free(v);
        return true;
}

static Obj *map_ensure(Obj *map, const char *key, ObjType t) {
        Obj *v = obj_map_get(map, key);
        if (v)
                return v->type == t ? v : NULL;
        if (obj_map_set(map, key, t == OBJ_MAP ? obj_new_map() : obj_new_list()) < 0)
                return NULL;
        return obj_map_get(map, key);
}

Obj *obj_map_ensure_map(Obj *map, const char *key) {
        return map_ensure(map, key, OBJ_MAP);
}

Obj *obj_map_ensure_list(Obj *map, const char *key) {
        return map_ensure(map, key, OBJ_LIST);
}

int obj_list_append(Obj *list, Obj *value) {
        if (!value)
                return -ENOMEM;
        if (!obj_is(list, OBJ_LIST)) {
                obj_free(value);
                return -EINVAL;
        }
        if (list->list.n == list->list.cap) {
                size_t nc = list->list.cap ? list->list.cap * 2 : 4;
                Obj **ni = realloc(list->list.items, nc * sizeof(Obj *));
                if (!ni) {
                        obj_free(value);
                        return -ENOMEM;
                }
                list->list.items = ni;
                list->list.cap = nc;
        }
        list->list.items[list->list.n++] = value;
        return 0;
}

Obj *obj_list_get(const Obj *list, size_t i) {
        if (!obj_is(list, OBJ_LIST) || i >= list->list.n)
                return NULL;
        return list->list.items[i];
}

size_t obj_len(const Obj *o) {
        if (obj_is(o, OBJ_MAP))
                return o->map.n;
        if (obj_is(o, OBJ_LIST))
                return o->list.n;
        return 0;
}

/* Splits the next path component: a key (up to '.' or '[') or an index "[N]". */
static const char *path_next(const char *p, char *key, size_t keysz, long *index) {
        *index = -1;
        if (*p == '[') {
                char *end;
                long v = strtol(p + 1, &end, 10);
                if (end == p + 1 || *end != ']' || v < 0)
                        return NULL;
                *index = v;
                p = end + 1;
        } else {
                size_t n = strcspn(p, ".[");
                if (n == 0 || n >= keysz)
                        return NULL;
                memcpy(key, p, n);
                key[n] = 0;
                p += n;
        }
        if (*p == '.')
                p++;
        return p;
}

Obj *obj_get(const Obj *o, const char *path) {
        char key[256];
        long idx;
        const Obj *cur = o;
        const char *p = path;
        while (cur && *p) {
                p = path_next(p, key, sizeof(key), &idx);
                if (!p)
                        return NULL;
                cur = idx >= 0 ? obj_list_get(cur, (size_t)idx) : obj_map_get(cur, key);
        }
        return (Obj *)cur;
}

const char *obj_get_str(const Obj *o, const char *path) {
        return obj_str(obj_get(o, path));
}

bool obj_get_int(const Obj *o, const char *path, int64_t *ret) {
        const Obj *v = obj_get(o, path);
        if (obj_is(v, OBJ_INT)) {
                *ret = v->i;
                return true;
        }
        if (obj_is(v, OBJ_FLOAT) && v->f == floor(v->f) && fabs(v->f) < 9e15) {
                *ret = (int64_t)v->f;
                return true;
        }
        return false;
}

bool obj_get_bool(const Obj *o, const char *path, bool def) {
        const Obj *v = obj_get(o, path);
        return obj_is(v, OBJ_BOOL) ? v->b : def;
}

int obj_set(Obj *o, const char *path, Obj *value) {
        char key[256];
        long idx;
        Obj *cur = o;
        const char *p = path;
        if (!value)
                return -ENOMEM;
        for (;;) {
                p = path_next(p, key, sizeof(key), &idx);
                if (!p) {
                        obj_free(value);
                        return -EINVAL;
                }
                bool last = *p == 0;
                if (idx >= 0) {
                        Obj *item = obj_list_get(cur, (size_t)idx);
                        if (!item) {
                                obj_free(value);
                                return -ENOENT;
                        }
                        if (last) {
                                obj_free(cur->list.items[idx]);
                                cur->list.items[idx] = value;
                                return 0;
                        }
                        cur = item;
                        continue;
                }
                if (last)
                        return obj_map_set(cur, key, value);
                Obj *next = obj_map_ensure_map(cur, key);
                if (!next) {
                        obj_free(value);
                        return -EINVAL;
                }
                cur = next;
        }
}

int obj_set_str(Obj *o, const char *path, const char *value) {
        return obj_set(o, path, obj_new_str(value));
}

int obj_set_int(Obj *o, const char *path, int64_t value) {
        return obj_set(o, path, obj_new_int(value));
}

int obj_set_bool(Obj *o, const char *path, bool value) {
        return obj_set(o, path, obj_new_bool(value));
}

bool obj_del(Obj *o, const char *path) {
        const char *dot = strrchr(path, '.');
        if (!dot)
                return obj_map_del(o, path);
        char parent[512];
        size_t n = (size_t)(dot - path);
        if (n >= sizeof(parent))
                return false;
        memcpy(parent, path, n);
        parent[n] = 0;
        return obj_map_del(obj_get(o, parent), dot + 1);
}
