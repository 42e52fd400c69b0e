/* SPDX-License-Identifier: Apache-2.0 */
#include "bundle.h"
#include "yamlio.h"

static const SchemaField kubeadm_fields[] = {
        {"command", ST_STRING, SF_REQUIRED, .values = (const char *const[]){"init", "join", NULL}},
        {"configPath", ST_STRING, SF_REQUIRED, .max = 4096},
        {"config", ST_STRING, SF_REQUIRED | SF_SECRET, .max = 1 << 20},
        {"ignorePreflightErrors", ST_LIST, .item = ST_STRING, .max = 64},
        SCHEMA_END,
};

static const SchemaField file_fields[] = {
        {"path", ST_STRING, SF_REQUIRED | SF_NONEMPTY, .max = 4096},
        {"content", ST_STRING, SF_SECRET, .max = 1 << 20},
        {"encoding", ST_STRING,
         .values = (const char *const[]){"", "base64", "gzip", "gzip+base64", NULL}},
        {"owner", ST_STRING, .max = 128},
        {"permissions", ST_STRING, .max = 8},
        {"append", ST_BOOL},
        SCHEMA_END,
};

const SchemaField bundle_fields[] = {
        {"apiVersion", ST_STRING, SF_REQUIRED},
        {"kind", ST_STRING, SF_REQUIRED},
        {"machine", ST_STRING, SF_REQUIRED, .max = 253},
        {"cluster", ST_STRING, SF_REQUIRED, .max = 63},
        {"role", ST_STRING, SF_REQUIRED,
         .values = (const char *const[]){"control-plane", "worker", NULL}},
        {"version", ST_STRING, .max = 64},
        {"kubeadm", ST_OBJECT, SF_REQUIRED, .fields = kubeadm_fields},
        {"files", ST_LIST, .item = ST_OBJECT, .fields = file_fields, .max = 512},
        {"preKubeadmCommands", ST_LIST, .item = ST_STRING, .max = 256},
        {"postKubeadmCommands", ST_LIST, .item = ST_STRING, .max = 256},
        SCHEMA_END,
};

int bundle_parse(const char *text, size_t size, Obj **ret, char *err, size_t errsz) {
        if (size > BUNDLE_MAX_SIZE) {
                snprintf(err, errsz, "bundle of %zu bytes is larger than %u", size,
                         BUNDLE_MAX_SIZE);
                return -EMSGSIZE;
        }
        _cleanup_(obj_freep) Obj *o = NULL;
        YamlError ye;
        int r = yaml_parse_one(text, size, &o, &ye);
        if (r == -EBADMSG) {
                snprintf(err, errsz, "bundle:%u:%u: %s", ye.line, ye.column, ye.message);
                return r;
        }
        if (r < 0)
                return r;
        _cleanup_(problems_clearp) Problems p = {0};
        r = schema_validate(bundle_fields, o, "", &p);
        if (r < 0)
                return r;
        if (r > 0) {
                snprintf(err, errsz, "bundle:%u:%u: %s: %s", p.items[0].mark.line,
                         p.items[0].mark.column, p.items[0].path, p.items[0].message);
                return -EBADMSG;
        }
        if (!streq(obj_get_str(o, "apiVersion"), BUNDLE_API_VERSION) ||
            !streq(obj_get_str(o, "kind"), BUNDLE_KIND)) {
                snprintf(err, errsz, "not a %s %s", BUNDLE_API_VERSION, BUNDLE_KIND);
                return -EBADMSG;
        }
        OBJ_LIST_FOREACH(f, obj_map_get(o, "files"), i) {
                const char *path = obj_get_str(f, "path");
                if (path[0] != '/' || strstr(path, "/../") ||
                    (strlen(path) >= 3 && streq(path + strlen(path) - 3, "/.."))) {
                        snprintf(err, errsz, "files[%zu].path: must be absolute without \"..\"",
                                 i);
                        return -EBADMSG;
                }
        }
        const char *cp = obj_get_str(o, "kubeadm.configPath");
        if (cp[0] != '/' || strstr(cp, "..")) {
                snprintf(err, errsz, "kubeadm.configPath: must be absolute without \"..\"");
                return -EBADMSG;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

static const char *lookup_var(const char *name, size_t len, const BundleVars *v) {
        static const struct {
                const char *name;
                int which; /* 0 hostname, 1 uuid, 2 provider id, 3 machine */
        } vars[] = {
                {"ds.meta_data.local_hostname", 0}, {"ds.meta_data.hostname", 0},
                {"ds.meta_data.uuid", 1},           {"ds.meta_data.instance_id", 1},
                {"ds.meta_data.provider_id", 2},    {"ds.meta_data.name", 3},
        };
        static char provider_id[128];
        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                if (strlen(vars[i].name) != len || strncmp(vars[i].name, name, len) != 0)
                        continue;
                /* A value not known (yet) leaves its placeholder in place: never a
                 * half-made value such as the provider ID "anvil://". */
                switch (vars[i].which) {
                case 0:
                        return isempty(v->hostname) ? NULL : v->hostname;
                case 1:
                        return isempty(v->uuid) ? NULL : v->uuid;
                case 2:
                        if (isempty(v->uuid))
                                return NULL;
                        snprintf(provider_id, sizeof(provider_id), "anvil://%s", v->uuid);
                        return provider_id;
                default:
                        return isempty(v->machine) ? NULL : v->machine;
                }
        }
        return NULL;
}

char *bundle_substitute(const char *text, const BundleVars *vars) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        const char *p = text;
        while (*p) {
                const char *open = strstr(p, "{{");
                if (!open) {
                        fputs(p, f);
                        break;
                }
                const char *close = strstr(open + 2, "}}");
                if (!close) {
                        fputs(p, f);
                        break;
                }
                fwrite(p, 1, (size_t)(open - p), f);
                const char *s = open + 2, *e = close;
                while (s < e && *s == ' ')
                        s++;
                while (e > s && e[-1] == ' ')
                        e--;
                const char *val = lookup_var(s, (size_t)(e - s), vars);
                if (val)
                        fputs(val, f);
                else
                        fwrite(open, 1, (size_t)(close + 2 - open), f);
                p = close + 2;
        }
        fclose(f);
        return out;
}
