/* SPDX-License-Identifier: Apache-2.0 */
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
