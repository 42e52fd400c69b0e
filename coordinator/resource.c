/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <time.h>

#include "resource.h"
#include "schema.h"

const char *now_rfc3339(char buf[static 32]) {
        return format_rfc3339((int64_t)now_usec(CLOCK_REALTIME), buf);
}

uint64_t duration_field(const Obj *o, const char *path, uint64_t def_usec) {
        int64_t us;
        const char *s = obj_get_str(o, path);
        if (!s || parse_go_duration(s, &us) < 0 || us < 0)
                return def_usec;
        return (uint64_t)us;
}

const Obj *condition_get(const Obj *obj, const char *type) {
        OBJ_LIST_FOREACH(c, obj_get(obj, "status.conditions"), i)
        if (streq_ptr(obj_get_str(c, "type"), type))
                return c;
        return NULL;
}

bool condition_is_true(const Obj *obj, const char *type) {
        return streq_ptr(obj_get_str(condition_get(obj, type), "status"), COND_TRUE);
}

const char *condition_reason(const Obj *obj, const char *type) {
        return obj_get_str(condition_get(obj, type), "reason");
}

const char *condition_message(const Obj *obj, const char *type) {
        return obj_get_str(condition_get(obj, type), "message");
}

static int condition_rank(const char *type) {
        return streq_ptr(type, "Ready") ? 0 : 1;
}

static int cmp_conditions(const void *a, const void *b) {
        const char *ta = strempty(obj_get_str(*(Obj *const *)a, "type"));
        const char *tb = strempty(obj_get_str(*(Obj *const *)b, "type"));
        int ra = condition_rank(ta), rb = condition_rank(tb);
        if (ra != rb)
                return ra - rb;
        return strcmp(ta, tb);
}

int condition_set(Obj *obj, const char *type, const char *status, const char *reason,
                  const char *severity, const char *fmt, ...) {
        Obj *st = obj_map_ensure_map(obj, "status");
        Obj *list = st ? obj_map_ensure_list(st, "conditions") : NULL;
        if (!list)
                return -ENOMEM;
        _cleanup_free_ char *message = NULL;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(&message, fmt, ap) < 0)
                        message = NULL;
                va_end(ap);
                if (!message)
                        return -ENOMEM;
        }
        Obj *c = (Obj *)condition_get(obj, type);
        char ts[32];
        const char *prev_time = NULL;
        if (c && streq_ptr(obj_get_str(c, "status"), status))
                prev_time = obj_get_str(c, "lastTransitionTime");
        _cleanup_(obj_freep) Obj *n = obj_new_map();
        if (!n || obj_map_set_str(n, "type", type) < 0 || obj_map_set_str(n, "status", status) < 0)
                return -ENOMEM;
        if (severity && obj_map_set_str(n, "severity", severity) < 0)
                return -ENOMEM;
        if (obj_map_set_str(n, "lastTransitionTime", prev_time ? prev_time : now_rfc3339(ts)) < 0)
                return -ENOMEM;
        if (reason && obj_map_set_str(n, "reason", reason) < 0)
                return -ENOMEM;
        if (message && obj_map_set_str(n, "message", message) < 0)
                return -ENOMEM;
        if (c) {
                OBJ_LIST_FOREACH(it, list, i) {
                        if (it == c) {
                                obj_free(it);
                                list->list.items[i] = TAKE_PTR(n);
                                break;
                        }
                }
        } else {
                int r = obj_list_append(list, TAKE_PTR(n));
                if (r < 0)
                        return r;
        }
        qsort(list->list.items, list->list.n, sizeof(Obj *), cmp_conditions);
        return 0;
}

int condition_set_true(Obj *obj, const char *type) {
        return condition_set(obj, type, COND_TRUE, NULL, NULL, NULL);
}

static bool same_except_status(const Obj *a, const Obj *b) {
        if (!obj_is(a, OBJ_MAP) || !obj_is(b, OBJ_MAP))
                return false;
        OBJ_MAP_FOREACH(e, a) {
                if (streq(e->key, "status"))
                        continue;
                if (!obj_equal(e->value, obj_map_get(b, e->key)))
                        return false;
        }
        OBJ_MAP_FOREACH(e, b) {
                if (streq(e->key, "status"))
                        continue;
                if (!obj_map_get(a, e->key))
                        return false;
        }
        return true;
}

int patch_save(Registry *reg, const Obj *orig, Obj *obj) {
        bool main_changed = !same_except_status(orig, obj);
        bool status_changed = !obj_equal(obj_map_get(orig, "status"), obj_map_get(obj, "status"));
        int r;
        if (main_changed) {
                r = registry_update(reg, obj);
                if (r < 0)
                        return r;
                if (r == 1)
                        return 1; /* deleted: last finalizer gone */
        }
        if (status_changed) {
                r = registry_update_status(reg, obj);
                if (r < 0)
                        return r;
        }
        return main_changed || status_changed;
}
