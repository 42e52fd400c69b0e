/* SPDX-License-Identifier: Apache-2.0 */
#include "bundle.h"
#include "yamlio.h"

static const SchemaField kubeadm_fields[] = {
        {"command", ST_STRING, SF_REQUIRED, .values = (const char *const[]){"init", "join", NULL}},
        {"configPath", ST_STRING, SF_REQUIRED, .max = 4096},
        {"config", ST_STRING, SF_REQUIRED | SF_SECRET, .max = 1 << 20},
        {"ignorePreflightErrors", ST_LIST, .item = ST_STRING, .max = 64},
        {"verbosity", ST_INT, .min = 0, .max = 10}, /* kubeadm --v */
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

/* ---- checks of what goes into argv and account files ---- */

static bool is_ascii_alpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ascii_digit(char c) {
        return c >= '0' && c <= '9';
}

const char *bundle_account_name_problem(const char *s) {
        static const char msg[] = "must be an account name: a letter or \"_\", then letters, "
                                  "digits, \".\", \"_\" or \"-\", at most 32 characters";
        size_t n = strlen(s);
        if (n == 0 || n > 32 || !(is_ascii_alpha(s[0]) || s[0] == '_'))
                return msg;
        for (size_t i = 1; i < n; i++)
                if (!is_ascii_alpha(s[i]) && !is_ascii_digit(s[i]) && !strchr("._-", s[i]))
                        return msg;
        return NULL;
}

const char *bundle_group_list_problem(const char *s) {
        const char *p = s;
        do {
                size_t len = strcspn(p, ",");
                char name[64];
                const char *b = p, *e = p + len;
                while (b < e && *b == ' ')
                        b++;
                while (e > b && e[-1] == ' ')
                        e--;
                if ((size_t)(e - b) >= sizeof(name))
                        return "must be group names separated by commas, each at most 32 "
                               "characters";
                memcpy(name, b, (size_t)(e - b));
                name[e - b] = 0;
                if (bundle_account_name_problem(name))
                        return "must be group names separated by commas (e.g. \"adm, docker\"), "
                               "each a letter or \"_\", then letters, digits, \".\", \"_\" or "
                               "\"-\"";
                p += len;
        } while (*p++ == ',');
        return NULL;
}

const char *bundle_line_problem(const char *s) {
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return "must be one line (no newline or other control character)";
        return NULL;
}

const char *bundle_account_field_problem(const char *s) {
        if (strchr(s, ':'))
                return "must not contain \":\" (it separates the fields of /etc/passwd and "
                       "/etc/shadow)";
        return bundle_line_problem(s);
}

const char *bundle_account_path_problem(const char *s) {
        if (s[0] != '/' || strstr(s, "/../") || (strlen(s) >= 3 && streq(s + strlen(s) - 3, "/..")))
                return "must be an absolute path without \"..\"";
        return bundle_account_field_problem(s);
}

const char *bundle_ntp_server_problem(const char *s) {
        if (!*s)
                return "must not be empty";
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#')
                        return "must be a host name or address, without spaces";
        return NULL;
}

#define STRING_CHECK(name, problem)                                                                \
        const char *name(const Obj *v, char *buf, size_t bufsz) {                                  \
                (void)buf;                                                                         \
                (void)bufsz;                                                                       \
                return obj_is(v, OBJ_STR) ? problem(v->str.s) : NULL;                              \
        }

STRING_CHECK(bundle_check_account_name, bundle_account_name_problem)
STRING_CHECK(bundle_check_group_list, bundle_group_list_problem)
STRING_CHECK(bundle_check_line, bundle_line_problem)
STRING_CHECK(bundle_check_account_field, bundle_account_field_problem)
STRING_CHECK(bundle_check_account_path, bundle_account_path_problem)
STRING_CHECK(bundle_check_ntp_server, bundle_ntp_server_problem)

/* A list whose string items must each pass problem: the first bad one is named. */
static const char *list_problem(const Obj *v, char *buf, size_t bufsz,
                                const char *(*problem)(const char *)) {
        OBJ_LIST_FOREACH(it, v, i) {
                const char *msg = obj_is(it, OBJ_STR) ? problem(it->str.s) : NULL;
                if (msg) {
                        snprintf(buf, bufsz, "item %zu: %s", i, msg);
                        return buf;
                }
        }
        return NULL;
}

static const char *check_group_names(const Obj *v, char *buf, size_t bufsz) {
        return list_problem(v, buf, bufsz, bundle_account_name_problem);
}

static const char *check_lines(const Obj *v, char *buf, size_t bufsz) {
        return list_problem(v, buf, bufsz, bundle_line_problem);
}

static const char *check_ntp_servers(const Obj *v, char *buf, size_t bufsz) {
        return list_problem(v, buf, bufsz, bundle_ntp_server_problem);
}

/* A KubeadmConfig user as the agent applies it (agent/users.h): groups already split into a
 * list, lockPassword always explicit, the password hash resolved from its Secret. */
static const SchemaField user_fields[] = {
        {"name", ST_STRING, SF_REQUIRED, .check = bundle_check_account_name},
        {"gecos", ST_STRING, .max = 256, .check = bundle_check_account_field},
        {"homeDir", ST_STRING, .max = 256, .check = bundle_check_account_path},
        {"shell", ST_STRING, .max = 256, .check = bundle_check_account_path},
        {"primaryGroup", ST_STRING, .check = bundle_check_account_name},
        {"groups", ST_LIST, .item = ST_STRING, .max = 64, .check = check_group_names},
        {"passwd", ST_STRING, SF_SECRET, .max = 256, .check = bundle_check_account_field},
        {"lockPassword", ST_BOOL},
        {"inactive", ST_BOOL},
        {"sudo", ST_STRING, .max = 256, .check = bundle_check_line},
        {"sshAuthorizedKeys", ST_LIST, .item = ST_STRING, .max = 100, .item_max = 2048,
         .check = check_lines},
        SCHEMA_END,
};

/* Present only when NTP is to be configured (the KubeadmConfig's ntp.enabled is not false). */
static const SchemaField ntp_fields[] = {
        {"servers", ST_LIST, .item = ST_STRING, .max = 100, .item_max = 512,
         .check = check_ntp_servers},
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
        {"users", ST_LIST, .item = ST_OBJECT, .fields = user_fields, .max = 256},
        {"ntp", ST_OBJECT, .fields = ntp_fields},
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
