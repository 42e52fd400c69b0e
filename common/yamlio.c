/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <yaml.h>

#include "yamlio.h"

typedef struct Anchor {
        char *name;
        const Obj *node; /* borrowed from the tree being built */
} Anchor;

typedef struct Parser {
        yaml_parser_t p;
        YamlError *err;
        size_t nodes; /* nodes made so far, aliases expanded (YAML_MAX_NODES) */
        size_t bytes; /* their size: one per node plus string and key bytes (YAML_MAX_BYTES) */
        Anchor *anchors;
        size_t n_anchors;
} Parser;

static int fail(Parser *ps, const yaml_mark_t *m, const char *fmt, ...) _printf_(3, 4);
static int fail(Parser *ps, const yaml_mark_t *m, const char *fmt, ...) {
        if (ps->err) {
                va_list ap;
                ps->err->line = m ? (uint32_t)m->line + 1 : 0;
                ps->err->column = m ? (uint32_t)m->column + 1 : 0;
                va_start(ap, fmt);
                vsnprintf(ps->err->message, sizeof(ps->err->message), fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static int next_event(Parser *ps, yaml_event_t *ev) {
        if (!yaml_parser_parse(&ps->p, ev)) {
                if (ps->p.error == YAML_MEMORY_ERROR)
                        return -ENOMEM;
                yaml_mark_t m = ps->p.problem_mark;
                return fail(ps, &m, "%s%s%s", ps->p.problem ? ps->p.problem : "syntax error",
                            ps->p.context ? " " : "", ps->p.context ? ps->p.context : "");
        }
        return 0;
}

/* Skips the decimal digits at s[*i] (up to n); returns how many there were. */
static size_t skip_digits(const char *s, size_t n, size_t *i) {
        size_t start = *i;
        while (*i < n && s[*i] >= '0' && s[*i] <= '9')
                (*i)++;
        return *i - start;
}

/* The core schema's integer: [-+]?[0-9]+ */
static bool is_core_decimal(const char *s, size_t n) {
        size_t i = 0;
        if (i < n && (s[i] == '-' || s[i] == '+'))
                i++;
        return skip_digits(s, n, &i) > 0 && i == n;
}

/* The core schema's 0o[0-7]+ and 0x[0-9a-fA-F]+: no sign, no blanks, nothing else. */
static int core_radix(const char *s, size_t n) {
        if (n < 3 || s[0] != '0' || (s[1] != 'o' && s[1] != 'x'))
                return 0;
        const char *set = s[1] == 'o' ? "01234567" : "0123456789abcdefABCDEF";
        for (size_t i = 2; i < n; i++)
                if (!strchr(set, s[i]))
                        return 0;
        return s[1] == 'o' ? 8 : 16;
}

/* The core schema's float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_core_float(const char *s, size_t n) {
        size_t i = 0;
        if (i < n && (s[i] == '-' || s[i] == '+'))
                i++;
        if (i < n && s[i] == '.') {
                i++;
                if (skip_digits(s, n, &i) == 0)
                        return false;
        } else {
                if (skip_digits(s, n, &i) == 0)
                        return false;
                if (i < n && s[i] == '.') {
                        i++;
                        skip_digits(s, n, &i);
                }
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < n && (s[i] == '-' || s[i] == '+'))
                        i++;
                if (skip_digits(s, n, &i) == 0)
                        return false;
        }
        return i == n;
}

static bool is_one_of(const char *s, size_t n, const char *const *words) {
        for (; *words; words++)
                if (strlen(*words) == n && memcmp(s, *words, n) == 0)
                        return true;
        return false;
}

Obj *yaml_resolve_plain(const char *s, size_t len) {
        static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
        static const char *const trues[] = {"true", "True", "TRUE", NULL};
        static const char *const falses[] = {"false", "False", "FALSE", NULL};

        if (len == 0 || is_one_of(s, len, nulls))
                return obj_new_null();
        if (is_one_of(s, len, trues))
                return obj_new_bool(true);
        if (is_one_of(s, len, falses))
                return obj_new_bool(false);
        /* ".inf" and ".nan" stay strings: JSON, and so Kubernetes, has no such numbers (a
         * number field given one is refused by its schema), and msgpack/JSON output refuses
         * non-finite numbers. */

        /* Numbers are matched on the text first (an embedded NUL never matches), then
         * converted from a NUL-terminated copy. Out of range, they stay strings. */
        int base = core_radix(s, len);
        bool decimal = !base && is_core_decimal(s, len);
        if (base || decimal || is_core_float(s, len)) {
                _cleanup_free_ char *t = strndup(s, len);
                if (!t)
                        return NULL;
                char *end;
                errno = 0;
                if (base || decimal) {
                        long long v = base ? strtoll(t + 2, &end, base) : strtoll(t, &end, 10);
                        if (errno == 0 && *end == 0)
                                return obj_new_int(v);
                } else {
                        /* Underflow (ERANGE with a tiny result) is still the number. */
                        double d = strtod(t, &end);
                        if (*end == 0 && isfinite(d))
                                return obj_new_float(d);
                }
        }
        return obj_new_strn(s, len);
}

static Obj *resolve_scalar(const yaml_event_t *ev) {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        const char *tag = (const char *)ev->data.scalar.tag;

        if (tag) {
                if (streq(tag, YAML_STR_TAG))
                        return obj_new_strn(v, len);
                /* Any other explicit tag: resolve the text as a plain scalar would. */
                return yaml_resolve_plain(v, len);
        }
        if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return obj_new_strn(v, len);
        return yaml_resolve_plain(v, len);
}

static void set_mark(Obj *o, const yaml_mark_t *m) {
        o->mark.line = (uint32_t)m->line + 1;
        o->mark.column = (uint32_t)m->column + 1;
}

static int remember_anchor(Parser *ps, const yaml_char_t *anchor, const Obj *node) {
        if (!anchor)
                return 0;
        if (ps->n_anchors >= 1024)
                return -E2BIG;
        Anchor *na = realloc(ps->anchors, (ps->n_anchors + 1) * sizeof(Anchor));
        if (!na)
                return -ENOMEM;
        ps->anchors = na;
        ps->anchors[ps->n_anchors].name = strdup((const char *)anchor);
        if (!ps->anchors[ps->n_anchors].name)
                return -ENOMEM;
        ps->anchors[ps->n_anchors++].node = node;
        return 0;
}

/* What copying o costs against the parser's budgets: its nodes, its bytes (as Parser.bytes
 * counts them) and its height (0 for a scalar). The walk is paid for by the budget it
 * consumes: an alias that fits adds at least as many nodes as the walk visits. */
static void measure(const Obj *o, size_t *nodes, size_t *bytes, unsigned *height) {
        *nodes += 1;
        *bytes += 1;
        unsigned h = 0;
        if (obj_is(o, OBJ_STR))
                *bytes += o->str.len;
        else if (obj_is(o, OBJ_LIST))
                for (size_t i = 0; i < o->list.n; i++) {
                        unsigned sub = 0;
                        measure(o->list.items[i], nodes, bytes, &sub);
                        if (sub + 1 > h)
                                h = sub + 1;
                }
        else if (obj_is(o, OBJ_MAP))
                for (size_t i = 0; i < o->map.n; i++) {
                        unsigned sub = 0;
                        *bytes += strlen(o->map.entries[i].key);
                        measure(o->map.entries[i].value, nodes, bytes, &sub);
                        if (sub + 1 > h)
                                h = sub + 1;
                }
        *height = h;
}

static int parse_node(Parser *ps, yaml_event_t *ev, unsigned depth, Obj **ret);

static int parse_collection(Parser *ps, yaml_event_t *start, unsigned depth, Obj **ret) {
        bool is_map = start->type == YAML_MAPPING_START_EVENT;
        _cleanup_(obj_freep) Obj *o = is_map ? obj_new_map() : obj_new_list();
        if (!o)
                return -ENOMEM;
        set_mark(o, &start->start_mark);
        int r = remember_anchor(
                ps, is_map ? start->data.mapping_start.anchor : start->data.sequence_start.anchor,
                o);
        if (r < 0)
                return r;

        for (;;) {
                yaml_event_t ev;
                r = next_event(ps, &ev);
                if (r < 0)
                        return r;
                if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
                        yaml_event_delete(&ev);
                        break;
                }
                if (!is_map) {
                        Obj *item = NULL;
                        r = parse_node(ps, &ev, depth + 1, &item);
                        yaml_event_delete(&ev);
                        if (r < 0)
                                return r;
                        r = obj_list_append(o, item);
                        if (r < 0)
                                return r;
                        continue;
                }

                /* A map key: only scalars are accepted as keys (as in JSON/Kubernetes). */
                if (ev.type != YAML_SCALAR_EVENT) {
                        r = fail(ps, &ev.start_mark, "map keys must be strings");
                        yaml_event_delete(&ev);
                        return r;
                }
                if (ev.data.scalar.length > 1024) {
                        r = fail(ps, &ev.start_mark, "map key too long");
                        yaml_event_delete(&ev);
                        return r;
                }
                if (memchr(ev.data.scalar.value, 0, ev.data.scalar.length)) {
                        r = fail(ps, &ev.start_mark, "map key contains a NUL byte");
                        yaml_event_delete(&ev);
                        return r;
                }
                _cleanup_free_ char *key =
                        strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
                yaml_mark_t key_mark = ev.start_mark;
                yaml_event_delete(&ev);
                if (!key)
                        return -ENOMEM;
                if (obj_map_get(o, key))
                        return fail(ps, &key_mark, "duplicate key \"%s\"", key);
                ps->bytes += strlen(key);

                r = next_event(ps, &ev);
                if (r < 0)
                        return r;
                Obj *value = NULL;
                r = parse_node(ps, &ev, depth + 1, &value);
                yaml_event_delete(&ev);
                if (r < 0)
                        return r;
                r = obj_map_set(o, key, value);
                if (r < 0)
                        return r;
                o->map.entries[o->map.n - 1].key_mark =
                        (ObjMark){(uint32_t)key_mark.line + 1, (uint32_t)key_mark.column + 1};
        }
        *ret = TAKE_PTR(o);
        return 0;
}

static int parse_node(Parser *ps, yaml_event_t *ev, unsigned depth, Obj **ret) {
        if (depth > YAML_MAX_DEPTH)
                return fail(ps, &ev->start_mark, "nesting deeper than %d levels", YAML_MAX_DEPTH);
        if (++ps->nodes > YAML_MAX_NODES)
                return fail(ps, &ev->start_mark, "document has more than %d nodes",
                            YAML_MAX_NODES);
        if (++ps->bytes > YAML_MAX_BYTES)
                return fail(ps, &ev->start_mark, "document is larger than %u bytes",
                            YAML_MAX_BYTES);

        switch (ev->type) {
        case YAML_SCALAR_EVENT: {
                if (ev->data.scalar.length > YAML_MAX_STRING)
                        return fail(ps, &ev->start_mark, "string longer than %u bytes",
                                    YAML_MAX_STRING);
                ps->bytes += ev->data.scalar.length;
                if (ps->bytes > YAML_MAX_BYTES)
                        return fail(ps, &ev->start_mark, "document is larger than %u bytes",
                                    YAML_MAX_BYTES);
                Obj *o = resolve_scalar(ev);
                if (!o)
                        return -ENOMEM;
                set_mark(o, &ev->start_mark);
                int r = remember_anchor(ps, ev->data.scalar.anchor, o);
                if (r < 0) {
                        obj_free(o);
                        return r;
                }
                *ret = o;
                return 0;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
                return parse_collection(ps, ev, depth, ret);
        case YAML_ALIAS_EVENT: {
                const char *name = (const char *)ev->data.alias.anchor;
                for (size_t i = ps->n_anchors; i > 0; i--)
                        if (streq(ps->anchors[i - 1].name, name)) {
                                /* The alias node itself was counted above; its copy
                                 * replaces it. Every bound holds for the expanded tree. */
                                size_t n = 0, b = 0;
                                unsigned h = 0;
                                measure(ps->anchors[i - 1].node, &n, &b, &h);
                                ps->nodes--;
                                ps->bytes--;
                                if (depth + h > YAML_MAX_DEPTH)
                                        return fail(ps, &ev->start_mark,
                                                    "alias expands deeper than %d levels",
                                                    YAML_MAX_DEPTH);
                                if (ps->nodes + n > YAML_MAX_NODES)
                                        return fail(ps, &ev->start_mark,
                                                    "alias expands past %d nodes",
                                                    YAML_MAX_NODES);
                                if (ps->bytes + b > YAML_MAX_BYTES)
                                        return fail(ps, &ev->start_mark,
                                                    "alias expands past %u bytes", YAML_MAX_BYTES);
                                ps->nodes += n;
                                ps->bytes += b;
                                Obj *o = obj_dup(ps->anchors[i - 1].node);
                                if (!o)
                                        return -ENOMEM;
                                *ret = o;
                                return 0;
                        }
                return fail(ps, &ev->start_mark, "unknown alias \"%s\"", name);
        }
        default:
                return fail(ps, &ev->start_mark, "unexpected YAML event");
        }
}

static void parser_done(Parser *ps) {
        for (size_t i = 0; i < ps->n_anchors; i++)
                free(ps->anchors[i].name);
        free(ps->anchors);
        ps->anchors = NULL;
        ps->n_anchors = 0;
        yaml_parser_delete(&ps->p);
}

int yaml_parse_documents(const char *buf, size_t size, Obj **ret, YamlError *err) {
        Parser ps = {.err = err};
        if (err)
                *err = (YamlError){0};
        if (!yaml_parser_initialize(&ps.p))
                return -ENOMEM;
        yaml_parser_set_input_string(&ps.p, (const unsigned char *)buf, size);

        _cleanup_(obj_freep) Obj *docs = obj_new_list();
        int r = docs ? 0 : -ENOMEM;
        bool in_doc = false;
        while (r >= 0) {
                yaml_event_t ev;
                r = next_event(&ps, &ev);
                if (r < 0)
                        break;
                yaml_event_type_t t = ev.type;
                if (t == YAML_STREAM_END_EVENT) {
                        yaml_event_delete(&ev);
                        break;
                }
                if (t == YAML_DOCUMENT_START_EVENT) {
                        in_doc = true;
                        /* Anchors do not cross documents. */
                        for (size_t i = 0; i < ps.n_anchors; i++)
                                free(ps.anchors[i].name);
                        ps.n_anchors = 0;
                } else if (t == YAML_DOCUMENT_END_EVENT) {
                        in_doc = false;
                } else if (in_doc && t != YAML_STREAM_START_EVENT) {
                        Obj *doc = NULL;
                        r = parse_node(&ps, &ev, 0, &doc);
                        if (r >= 0 && obj_len(docs) >= YAML_MAX_DOCUMENTS) {
                                obj_free(doc);
                                r = fail(&ps, &ev.start_mark, "more than %d documents",
                                         YAML_MAX_DOCUMENTS);
                        } else if (r >= 0 && !obj_is(doc, OBJ_NULL))
                                r = obj_list_append(docs, doc);
                        else
                                obj_free(doc);
                }
                yaml_event_delete(&ev);
        }
        parser_done(&ps);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(docs);
        return 0;
}

int yaml_parse_one(const char *buf, size_t size, Obj **ret, YamlError *err) {
        _cleanup_(obj_freep) Obj *docs = NULL;
        int r = yaml_parse_documents(buf, size, &docs, err);
        if (r < 0)
                return r;
        if (obj_len(docs) > 1) {
                if (err) {
                        Obj *second = obj_list_get(docs, 1);
                        err->line = second->mark.line;
                        err->column = second->mark.column;
                        snprintf(err->message, sizeof(err->message), "expected a single document");
                }
                return -EBADMSG;
        }
        if (obj_len(docs) == 1) {
                *ret = docs->list.items[0];
                docs->list.n = 0;
        } else {
                *ret = obj_new_map();
                if (!*ret)
                        return -ENOMEM;
        }
        return 0;
}

/* ---- emitting ---- */

typedef struct Buf {
        char *data;
        size_t len, cap;
} Buf;

static int buf_write(void *data, unsigned char *buffer, size_t size) {
        Buf *b = data;
        if (b->len + size + 1 > b->cap) {
                size_t nc = b->cap ? b->cap * 2 : 1024;
                while (nc < b->len + size + 1)
                        nc *= 2;
                char *nd = realloc(b->data, nc);
                if (!nd)
                        return 0;
                b->data = nd;
                b->cap = nc;
        }
        memcpy(b->data + b->len, buffer, size);
        b->len += size;
        b->data[b->len] = 0;
        return 1;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, size_t len, yaml_scalar_style_t style) {
        yaml_event_t ev;
        if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, 1, 1, style))
                return -ENOMEM;
        return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
}

static int emit_string(yaml_emitter_t *e, const char *s, size_t len) {
        yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
        if (memchr(s, '\n', len))
                style = YAML_LITERAL_SCALAR_STYLE;
        else {
                _cleanup_(obj_freep) Obj *probe = yaml_resolve_plain(s, len);
                if (!probe)
                        return -ENOMEM;
                if (probe->type != OBJ_STR)
                        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        }
        return emit_scalar(e, s, len, style);
}

static int emit_obj(yaml_emitter_t *e, const Obj *o) {
        yaml_event_t ev;
        char tmp[64];
        switch (o ? o->type : OBJ_NULL) {
        case OBJ_NULL:
                return emit_scalar(e, "null", 4, YAML_PLAIN_SCALAR_STYLE);
        case OBJ_BOOL:
                return emit_scalar(e, o->b ? "true" : "false", o->b ? 4 : 5,
                                   YAML_PLAIN_SCALAR_STYLE);
        case OBJ_INT:
                snprintf(tmp, sizeof(tmp), "%lld", (long long)o->i);
                return emit_scalar(e, tmp, strlen(tmp), YAML_PLAIN_SCALAR_STYLE);
        case OBJ_FLOAT:
                if (isnan(o->f))
                        snprintf(tmp, sizeof(tmp), ".nan");
                else if (isinf(o->f))
                        snprintf(tmp, sizeof(tmp), o->f > 0 ? ".inf" : "-.inf");
                else {
                        snprintf(tmp, sizeof(tmp), "%.17g", o->f);
                        if (!strpbrk(tmp, ".eE"))
                                strcat(tmp, ".0");
                }
                return emit_scalar(e, tmp, strlen(tmp), YAML_PLAIN_SCALAR_STYLE);
        case OBJ_STR:
                return emit_string(e, o->str.s, o->str.len);
        case OBJ_LIST:
                if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                          o->list.n ? YAML_BLOCK_SEQUENCE_STYLE
                                                                    : YAML_FLOW_SEQUENCE_STYLE))
                        return -ENOMEM;
                if (!yaml_emitter_emit(e, &ev))
                        return -EIO;
                for (size_t i = 0; i < o->list.n; i++) {
                        int r = emit_obj(e, o->list.items[i]);
                        if (r < 0)
                                return r;
                }
                yaml_sequence_end_event_initialize(&ev);
                return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
        case OBJ_MAP:
                if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                         o->map.n ? YAML_BLOCK_MAPPING_STYLE
                                                                  : YAML_FLOW_MAPPING_STYLE))
                        return -ENOMEM;
                if (!yaml_emitter_emit(e, &ev))
                        return -EIO;
                for (size_t i = 0; i < o->map.n; i++) {
                        int r = emit_string(e, o->map.entries[i].key,
                                            strlen(o->map.entries[i].key));
                        if (r < 0)
                                return r;
                        r = emit_obj(e, o->map.entries[i].value);
                        if (r < 0)
                                return r;
                }
                yaml_mapping_end_event_initialize(&ev);
                return yaml_emitter_emit(e, &ev) ? 0 : -EIO;
        }
        return -EINVAL;
}

static int emit_stream(const Obj *const *docs, size_t n, char **ret) {
        yaml_emitter_t e;
        yaml_event_t ev;
        Buf b = {0};
        int r = 0;

        if (!yaml_emitter_initialize(&e))
                return -ENOMEM;
        yaml_emitter_set_output(&e, buf_write, &b);
        yaml_emitter_set_unicode(&e, 1);
        yaml_emitter_set_width(&e, -1);
        yaml_emitter_set_indent(&e, 2);

        yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
        if (!yaml_emitter_emit(&e, &ev))
                r = -EIO;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, n == 1 || i == 0);
                if (!yaml_emitter_emit(&e, &ev)) {
                        r = -EIO;
                        break;
                }
                r = emit_obj(&e, docs[i]);
                if (r < 0)
                        break;
                yaml_document_end_event_initialize(&ev, 1);
                if (!yaml_emitter_emit(&e, &ev))
                        r = -EIO;
        }
        if (r >= 0) {
                yaml_stream_end_event_initialize(&ev);
                if (!yaml_emitter_emit(&e, &ev))
                        r = -EIO;
        }
        yaml_emitter_delete(&e);
        if (r < 0) {
                free(b.data);
                return r;
        }
        if (!b.data) {
                b.data = strdup("");
                if (!b.data)
                        return -ENOMEM;
        }
        *ret = b.data;
        return 0;
}

int yaml_emit(const Obj *o, char **ret) {
        return emit_stream(&o, 1, ret);
}

int yaml_emit_documents(const Obj *list, char **ret) {
        if (!obj_is(list, OBJ_LIST))
                return -EINVAL;
        return emit_stream((const Obj *const *)list->list.items, list->list.n, ret);
}
