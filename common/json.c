/* SPDX-License-Identifier: Apache-2.0 */
#include <json-c/json.h>
#include <math.h>

#include "json.h"

static json_object *to_json(const Obj *o) {
        switch (o ? o->type : OBJ_NULL) {
        case OBJ_NULL:
                return NULL;
        case OBJ_BOOL:
                return json_object_new_boolean(o->b);
        case OBJ_INT:
                return json_object_new_int64(o->i);
        case OBJ_FLOAT:
                return json_object_new_double(o->f);
        case OBJ_STR:
                return json_object_new_string_len(o->str.s, (int)o->str.len);
        case OBJ_LIST: {
                json_object *a = json_object_new_array_ext((int)o->list.n);
                for (size_t i = 0; a && i < o->list.n; i++)
                        json_object_array_add(a, to_json(o->list.items[i]));
                return a;
        }
        case OBJ_MAP: {
                json_object *m = json_object_new_object();
                for (size_t i = 0; m && i < o->map.n; i++)
                        json_object_object_add(m, o->map.entries[i].key,
                                               to_json(o->map.entries[i].value));
                return m;
        }
        }
        return NULL;
}

int json_emit(const Obj *o, bool pretty, char **ret) {
        json_object *j = to_json(o);
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
                    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : 0);
        const char *s = j ? json_object_to_json_string_ext(j, flags) : "null";
        char *copy = s ? strdup(s) : NULL;
        json_object_put(j);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

static int from_json(json_object *j, Obj **ret) {
        _cleanup_(obj_freep) Obj *o = NULL;
        switch (json_object_get_type(j)) {
        case json_type_null:
                o = obj_new_null();
                break;
        case json_type_boolean:
                o = obj_new_bool(json_object_get_boolean(j));
                break;
        case json_type_int:
                o = obj_new_int(json_object_get_int64(j));
                break;
        case json_type_double:
                if (!isfinite(json_object_get_double(j)))
                        return -EBADMSG; /* "NaN", "Infinity": not JSON */
                o = obj_new_float(json_object_get_double(j));
                break;
        case json_type_string:
                o = obj_new_strn(json_object_get_string(j), (size_t)json_object_get_string_len(j));
                break;
        case json_type_array: {
                o = obj_new_list();
                size_t n = json_object_array_length(j);
                for (size_t i = 0; o && i < n; i++) {
                        Obj *item = NULL;
                        int r = from_json(json_object_array_get_idx(j, i), &item);
                        if (r < 0)
                                return r;
                        if ((r = obj_list_append(o, item)) < 0)
                                return r;
                }
                break;
        }
        case json_type_object: {
                o = obj_new_map();
                json_object_object_foreach(j, key, val) {
                        if (!o)
                                break;
                        Obj *v = NULL;
                        int r = from_json(val, &v);
                        if (r < 0)
                                return r;
                        if ((r = obj_map_set(o, key, v)) < 0)
                                return r;
                }
                break;
        }
        }
        if (!o)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int json_parse(const char *text, size_t size, Obj **ret) {
        if (size >= INT32_MAX)
                return -EBADMSG;
        /* The terminating NUL is passed too: it tells the tokener the input ends, or a number
         * at the very end ("2") would stay incomplete. */
        _cleanup_free_ char *copy = malloc(size + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, text, size);
        copy[size] = 0;
        json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object *j = json_tokener_parse_ex(tok, copy, (int)size + 1);
        enum json_tokener_error err = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (err != json_tokener_success || !j) {
                json_object_put(j);
                return -EBADMSG;
        }
        /* Only whitespace may follow the value. */
        for (size_t i = used; i < size; i++)
                if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t') {
                        json_object_put(j);
                        return -EBADMSG;
                }
        int r = from_json(j, ret);
        json_object_put(j);
        return r;
}
