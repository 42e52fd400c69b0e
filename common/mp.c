/* SPDX-License-Identifier: Apache-2.0 */
#include <math.h>
#include <msgpack.h>

#include "mp.h"

static int pack(msgpack_packer *pk, const Obj *o) {
        int r = 0;
        switch (o ? o->type : OBJ_NULL) {
        case OBJ_NULL:
                r = msgpack_pack_nil(pk);
                break;
        case OBJ_BOOL:
                r = o->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
                break;
        case OBJ_INT:
                r = msgpack_pack_int64(pk, o->i);
                break;
        case OBJ_FLOAT:
                r = msgpack_pack_double(pk, o->f);
                break;
        case OBJ_STR:
                r = msgpack_pack_str_with_body(pk, o->str.s, o->str.len);
                break;
        case OBJ_LIST:
                r = msgpack_pack_array(pk, o->list.n);
                for (size_t i = 0; r == 0 && i < o->list.n; i++)
                        r = pack(pk, o->list.items[i]);
                break;
        case OBJ_MAP:
                r = msgpack_pack_map(pk, o->map.n);
                for (size_t i = 0; r == 0 && i < o->map.n; i++) {
                        const char *k = o->map.entries[i].key;
                        r = msgpack_pack_str_with_body(pk, k, strlen(k));
                        if (r == 0)
                                r = pack(pk, o->map.entries[i].value);
                }
                break;
        }
        return r == 0 ? 0 : -ENOMEM;
}

int mp_encode(const Obj *o, char **ret, size_t *ret_size) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        int r = pack(&pk, o);
        if (r < 0) {
                msgpack_sbuffer_destroy(&sb);
                return r;
        }
        if (!sb.data) {
                /* nothing written cannot happen for a valid Obj, but keep the contract */
                msgpack_sbuffer_destroy(&sb);
                return -EINVAL;
        }
        *ret = sb.data;
        *ret_size = sb.size;
        return 0;
}

/*
 * Header skim: walks the encoded items (not their values) and checks that every declared
 * container fits the bytes that remain and that nesting stays bounded. Format codes are the
 * msgpack specification's.
 */
static int skim(const uint8_t *p, size_t n, size_t *pos, unsigned depth, size_t *nodes,
                size_t max_nodes) {
        if (depth > MP_MAX_DEPTH || ++*nodes > max_nodes)
                return -E2BIG;
        if (*pos >= n)
                return -EBADMSG;
        uint8_t c = p[(*pos)++];
        uint64_t count = 0, skip = 0;
        bool is_map = false, is_container = false;

#define NEED(k)                                                                                    \
        do {                                                                                       \
                if (n - *pos < (k))                                                                \
                        return -EBADMSG;                                                           \
        } while (0)
#define BE(k)                                                                                      \
        ({                                                                                         \
                uint64_t _v = 0;                                                                   \
                NEED(k);                                                                           \
                for (int _i = 0; _i < (k); _i++)                                                   \
                        _v = (_v << 8) | p[*pos + _i];                                             \
                *pos += (k);                                                                       \
                _v;                                                                                \
        })

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
                return 0;
        if ((c & 0xf0) == 0x80) {
                count = c & 0x0f;
                is_map = is_container = true;
        } else if ((c & 0xf0) == 0x90) {
                count = c & 0x0f;
                is_container = true;
        } else if ((c & 0xe0) == 0xa0) {
                skip = c & 0x1f;
        } else {
                /* One line per format code, like the specification's table. */
                /* clang-format off */
                switch (c) {
                case 0xcc:
                case 0xd0:
                        skip = 1;
                        break;
                case 0xcd:
                case 0xd1:
                        skip = 2;
                        break;
                case 0xca:
                case 0xce:
                case 0xd2:
                        skip = 4;
                        break;
                case 0xcb:
                case 0xcf:
                case 0xd3:
                        skip = 8;
                        break;
                case 0xd9:
                        skip = BE(1);
                        break;
                case 0xda:
                        skip = BE(2);
                        break;
                case 0xdb:
                        skip = BE(4);
                        break;
                case 0xdc:
                        count = BE(2);
                        is_container = true;
                        break;
                case 0xdd:
                        count = BE(4);
                        is_container = true;
                        break;
                case 0xde:
                        count = BE(2);
                        is_map = is_container = true;
                        break;
                case 0xdf:
                        count = BE(4);
                        is_map = is_container = true;
                        break;
                default:
                        /* bin 8/16/32, ext, fixext, and the never-used 0xc1 */
                        return -EBADMSG;
                }
                /* clang-format on */
        }
#undef BE
        if (!is_container) {
                NEED(skip);
                *pos += skip;
                return 0;
        }
#undef NEED
        uint64_t items = is_map ? count * 2 : count;
        if (items > n - *pos) /* every item takes at least one byte */
                return -EBADMSG;
        for (uint64_t i = 0; i < items; i++) {
                int r = skim(p, n, pos, depth + 1, nodes, max_nodes);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int convert(const msgpack_object *m, Obj **ret) {
        _cleanup_(obj_freep) Obj *o = NULL;
        switch (m->type) {
        case MSGPACK_OBJECT_NIL:
                o = obj_new_null();
                break;
        case MSGPACK_OBJECT_BOOLEAN:
                o = obj_new_bool(m->via.boolean);
                break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                if (m->via.u64 > INT64_MAX)
                        return -ERANGE;
                o = obj_new_int((int64_t)m->via.u64);
                break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                o = obj_new_int(m->via.i64);
                break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                /* NaN and the infinities mean nothing in any of our messages, and JSON and
                 * Kubernetes have no such numbers. */
                if (!isfinite(m->via.f64))
                        return -EBADMSG;
                o = obj_new_float(m->via.f64);
                break;
        case MSGPACK_OBJECT_STR:
                /* msgpack-c may leave ptr NULL for a zero-length string: never touch it then. */
                if (m->via.str.size == 0) {
                        o = obj_new_str("");
                        break;
                }
                if (memchr(m->via.str.ptr, 0, m->via.str.size))
                        return -EBADMSG;
                o = obj_new_strn(m->via.str.ptr, m->via.str.size);
                break;
        case MSGPACK_OBJECT_ARRAY:
                o = obj_new_list();
                for (uint32_t i = 0; o && i < m->via.array.size; i++) {
                        Obj *item = NULL;
                        int r = convert(&m->via.array.ptr[i], &item);
                        if (r < 0)
                                return r;
                        r = obj_list_append(o, item);
                        if (r < 0)
                                return r;
                }
                break;
        case MSGPACK_OBJECT_MAP:
                o = obj_new_map();
                for (uint32_t i = 0; o && i < m->via.map.size; i++) {
                        const msgpack_object_kv *kv = &m->via.map.ptr[i];
                        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size == 0 ||
                            kv->key.via.str.size > 1024 ||
                            memchr(kv->key.via.str.ptr, 0, kv->key.via.str.size))
                                return -EBADMSG;
                        char key[1025];
                        memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
                        key[kv->key.via.str.size] = 0;
                        if (obj_map_get(o, key))
                                return -EBADMSG; /* duplicate key */
                        Obj *v = NULL;
                        int r = convert(&kv->val, &v);
                        if (r < 0)
                                return r;
                        r = obj_map_set(o, key, v);
                        if (r < 0)
                                return r;
                }
                break;
        default:
                return -EBADMSG;
        }
        if (!o)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int mp_decode(const void *buf, size_t size, Obj **ret) {
        return mp_decode_bounded(buf, size, MP_MAX_NODES, ret);
}

int mp_decode_bounded(const void *buf, size_t size, size_t max_nodes, Obj **ret) {
        size_t pos = 0, nodes = 0;
        int r = skim(buf, size, &pos, 0, &nodes, max_nodes);
        if (r < 0)
                return r == -E2BIG ? -E2BIG : -EBADMSG;
        if (pos != size)
                return -EBADMSG; /* trailing bytes */

        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        msgpack_unpack_return ur = msgpack_unpack_next(&u, buf, size, &off);
        if (ur != MSGPACK_UNPACK_SUCCESS || off != size) {
                msgpack_unpacked_destroy(&u);
                return ur == MSGPACK_UNPACK_NOMEM_ERROR ? -ENOMEM : -EBADMSG;
        }
        r = convert(&u.data, ret);
        msgpack_unpacked_destroy(&u);
        return r;
}
