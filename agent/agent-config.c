/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>

#include "agent-config.h"
#include "config.h"
#include "fileio.h"
#include "hostid.h"
#include "keys.h"
#include "log.h"
#include "schema.h"

#define DAY_USEC (24 * 3600 * USEC_PER_SEC)

const SchemaField agent_config_schema[] = {
        {"coordinator", ST_STRING, .max = 512, .check = check_connect_endpoint,
         .doc = "tcp://HOST:PORT of the coordinator"},
        {"coordinator-key", ST_STRING, .max = 64, .doc = "its public key (anvilctl info)"},
        {"token", ST_STRING, SF_SECRET, .max = 128, .doc = "enrollment token"},
        {"state-dir", ST_STRING, .max = 4096},
        {"product-uuid", ST_STRING, .max = 64},
        {"hostname", ST_STRING, .max = 253},
        {"host-root", ST_STRING, .max = 4096},
        {"kubeadm", ST_STRING, .max = 4096},
        {"kubectl", ST_STRING, .max = 4096},
        {"cmdline", ST_STRING, .max = 4096},
        {"environment", ST_LIST, .item = ST_STRING, .max = 256},
        {"cleanup-commands", ST_LIST, .item = ST_STRING, .max = 256},
        {"upgrade-commands", ST_LIST, .item = ST_STRING, .max = 256,
         .doc = "shell lines that install kubeadm/kubelet $ANVIL_KUBERNETES_VERSION (in-place)"},
        {"units", ST_LIST, .item = ST_STRING, .max = 64},
        {"facts-root", ST_STRING, .max = 4096, .doc = "read facts under this root (tests)"},
        /* Durations are bounded: zero would spin or time out at once. */
        {"heartbeat-interval", ST_DURATION, .min = USEC_PER_SEC / 10, .max = DAY_USEC},
        {"facts-interval", ST_DURATION, .min = USEC_PER_SEC, .max = DAY_USEC,
         .doc = "how often facts are collected again (60s)"},
        {"command-timeout", ST_DURATION, .min = USEC_PER_SEC, .max = DAY_USEC},
        {"kubeadm-timeout", ST_DURATION, .min = USEC_PER_SEC, .max = DAY_USEC},
        {"node-check-interval", ST_DURATION, .min = USEC_PER_SEC / 10, .max = DAY_USEC,
         .doc = "how often the Node is read (default 30s)"},
        {"metrics-listen", ST_STRING, .max = 64, .check = check_addr_port_or_empty,
         .doc = "IPv4ADDR:PORT of a Prometheus endpoint (default: none)"},
        {"log-level", ST_STRING,
         .values = (const char *const[]){"debug", "info", "notice", "warning", "err", NULL}},
        SCHEMA_END,
};

void agent_config_done(AgentConfig *c) {
        free(c->coordinator);
        free(c->coordinator_key);
        if (c->token)
                explicit_bzero(c->token, strlen(c->token));
        free(c->token);
        free(c->state_dir);
        free(c->product_uuid);
        free(c->hostname);
        free(c->host_root);
        free(c->kubeadm);
        free(c->kubectl);
        free(c->cmdline_path);
        free(c->facts_root);
        strv_free(c->environment);
        strv_free(c->cleanup);
        strv_free(c->upgrade);
        strv_free(c->units);
        free(c->metrics_listen);
        *c = (AgentConfig){0};
}

static int set_str(char **dst, const char *v) {
        if (!v)
                return 0;
        char *n = strdup(v);
        if (!n)
                return -ENOMEM;
        free(*dst);
        *dst = n;
        return 0;
}

static int set_list(char ***dst, const Obj *l) {
        if (!l)
                return 0;
        _cleanup_strv_free_ char **v = NULL;
        OBJ_LIST_FOREACH(it, l, i) {
                int r = strv_extend(&v, obj_str(it));
                if (r < 0)
                        return r;
        }
        if (!v && (v = calloc(1, sizeof(char *))) == NULL)
                return -ENOMEM;
        strv_free(*dst);
        *dst = TAKE_PTR(v);
        return 0;
}

int agent_config_apply_yaml(AgentConfig *c, const Obj *o) {
        int r;
        int64_t us;
        if ((r = set_str(&c->coordinator, obj_get_str(o, "coordinator"))) < 0 ||
            (r = set_str(&c->coordinator_key, obj_get_str(o, "coordinator-key"))) < 0 ||
            (r = set_str(&c->token, obj_get_str(o, "token"))) < 0 ||
            (r = set_str(&c->state_dir, obj_get_str(o, "state-dir"))) < 0 ||
            (r = set_str(&c->product_uuid, obj_get_str(o, "product-uuid"))) < 0 ||
            (r = set_str(&c->hostname, obj_get_str(o, "hostname"))) < 0 ||
            (r = set_str(&c->host_root, obj_get_str(o, "host-root"))) < 0 ||
            (r = set_str(&c->kubeadm, obj_get_str(o, "kubeadm"))) < 0 ||
            (r = set_str(&c->kubectl, obj_get_str(o, "kubectl"))) < 0 ||
            (r = set_str(&c->cmdline_path, obj_get_str(o, "cmdline"))) < 0 ||
            (r = set_str(&c->facts_root, obj_get_str(o, "facts-root"))) < 0 ||
            (r = set_str(&c->metrics_listen, obj_get_str(o, "metrics-listen"))) < 0 ||
            (r = set_list(&c->environment, obj_map_get(o, "environment"))) < 0 ||
            (r = set_list(&c->cleanup, obj_map_get(o, "cleanup-commands"))) < 0 ||
            (r = set_list(&c->upgrade, obj_map_get(o, "upgrade-commands"))) < 0 ||
            (r = set_list(&c->units, obj_map_get(o, "units"))) < 0)
                return r;
        if (parse_go_duration(obj_get_str(o, "heartbeat-interval"), &us) >= 0 && us > 0)
                c->heartbeat_usec = (uint64_t)us;
        if (parse_go_duration(obj_get_str(o, "facts-interval"), &us) >= 0 && us > 0)
                c->facts_interval_usec = (uint64_t)us;
        if (parse_go_duration(obj_get_str(o, "command-timeout"), &us) >= 0 && us > 0)
                c->command_timeout_usec = (uint64_t)us;
        if (parse_go_duration(obj_get_str(o, "kubeadm-timeout"), &us) >= 0 && us > 0)
                c->kubeadm_timeout_usec = (uint64_t)us;
        const char *level = obj_get_str(o, "log-level");
        if (level && log_level_from_string(level) >= 0) {
                c->log_level = log_level_from_string(level);
                c->has_log_level = true;
        }
        if (parse_go_duration(obj_get_str(o, "node-check-interval"), &us) >= 0 && us > 0)
                c->node_check_usec = (uint64_t)us;
        return 0;
}

/* Kernel command line words are separated by spaces. As the kernel's own parser allows, a
 * value may be double-quoted (param="a b") and so may a whole word ("param=a b"). */
int agent_config_apply_cmdline(AgentConfig *c, const char *cmdline, char **ret_error) {
        static const char *const keys[] = {"anvil.coordinator", "anvil.coordinator_key",
                                           "anvil.token", "anvil.state_dir"};
        char *vals[ELEMENTSOF(keys)] = {};
        const char *p = cmdline;
        int r = 0;
        if (strlen(cmdline) > 65536) {
                *ret_error = strdup("kernel command line longer than 64 KiB");
                return -E2BIG;
        }
        while (*p && r >= 0) {
                while (isspace((unsigned char)*p))
                        p++;
                if (!*p)
                        break;
                const char *start = p;
                bool quoted = false;
                while (*p && (quoted || !isspace((unsigned char)*p))) {
                        if (*p == '"')
                                quoted = !quoted;
                        p++;
                }
                const char *end = p;
                bool unterminated = false;
                if (*start == '"') {
                        /* A quoted word: the parameter is inside the quotes. */
                        start++;
                        if (end > start && end[-1] == '"')
                                end--;
                        else
                                unterminated = true;
                }
                size_t n = (size_t)(end - start);
                if (n < 6 || strncmp(start, "anvil.", 6) != 0)
                        continue;
                const char *eq = memchr(start, '=', n);
                size_t klen = eq ? (size_t)(eq - start) : n;
                size_t k;
                for (k = 0; k < ELEMENTSOF(keys); k++)
                        if (strlen(keys[k]) == klen && strncmp(keys[k], start, klen) == 0)
                                break;
                if (k == ELEMENTSOF(keys)) {
                        *ret_error = asprintf_safe("kernel command line: unknown parameter '%.*s'",
                                                   (int)klen, start);
                        r = -EINVAL;
                        break;
                }
                if (!eq || eq + 1 == end) {
                        *ret_error =
                                asprintf_safe("kernel command line: %s needs a value", keys[k]);
                        r = -EINVAL;
                        break;
                }
                const char *v = eq + 1;
                size_t vlen = (size_t)(end - v);
                if (unterminated) {
                        *ret_error = asprintf_safe("kernel command line: bad value for %s "
                                                   "(unterminated quote)",
                                                   keys[k]);
                        r = -EINVAL;
                        break;
                }
                if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                        v++;
                        vlen -= 2;
                }
                if (vlen == 0 || vlen > 4096 || memchr(v, '"', vlen)) {
                        *ret_error =
                                asprintf_safe("kernel command line: bad value for %s", keys[k]);
                        r = -EINVAL;
                        break;
                }
                free(vals[k]);
                vals[k] = strndup(v, vlen);
                if (!vals[k])
                        r = -ENOMEM;
        }
        if (r >= 0 && vals[1] && !key_z85_valid(vals[1])) {
                *ret_error = strdup("kernel command line: anvil.coordinator_key is not a "
                                    "40-character Z85 key");
                r = -EINVAL;
        }
        char why[256];
        const char *msg;
        if (r >= 0 && vals[0] &&
            (msg = endpoint_check(vals[0], ENDPOINT_CONNECT, why, sizeof(why)))) {
                *ret_error = asprintf_safe("kernel command line: anvil.coordinator: %s", msg);
                r = -EINVAL;
        }
        if (r >= 0) {
                char **dst[] = {&c->coordinator, &c->coordinator_key, &c->token, &c->state_dir};
                for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                        if (vals[k]) {
                                free(*dst[k]);
                                *dst[k] = TAKE_PTR(vals[k]);
                        }
        }
        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                if (vals[k])
                        explicit_bzero(vals[k], strlen(vals[k]));
                free(vals[k]);
        }
        return r;
}

int agent_config_finish(AgentConfig *c) {
        int r;
        if ((!c->state_dir && (r = set_str(&c->state_dir, "/var/lib/anvil-agent")) < 0) ||
            (!c->host_root && (r = set_str(&c->host_root, "/")) < 0) ||
            (!c->kubeadm && (r = set_str(&c->kubeadm, "/usr/bin/kubeadm")) < 0) ||
            (!c->kubectl && (r = set_str(&c->kubectl, "/usr/bin/kubectl")) < 0) ||
            (!c->facts_root && (r = set_str(&c->facts_root, "")) < 0))
                return -ENOMEM;
        if (!c->environment) {
                r = strv_extend(
                        &c->environment,
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
                if (r < 0)
                        return r;
        }
        if (!c->units) {
                if ((r = strv_extend(&c->units, "kubelet.service")) < 0 ||
                    (r = strv_extend(&c->units, "containerd.service")) < 0)
                        return r;
        }
        if (!c->heartbeat_usec)
                c->heartbeat_usec = 10 * USEC_PER_SEC;
        if (!c->facts_interval_usec)
                c->facts_interval_usec = 60 * USEC_PER_SEC;
        if (!c->command_timeout_usec)
                c->command_timeout_usec = 600 * USEC_PER_SEC;
        if (!c->kubeadm_timeout_usec)
                c->kubeadm_timeout_usec = 900 * USEC_PER_SEC;
        if (!c->node_check_usec)
                c->node_check_usec = 30 * USEC_PER_SEC;
        return 0;
}

char **agent_config_command_env(const AgentConfig *c, const char *machine) {
        _cleanup_strv_free_ char **env = NULL;
        for (char **e = c->environment; e && *e; e++)
                if (strv_extend(&env, *e) < 0)
                        return NULL;
        char buf[4200];
        snprintf(buf, sizeof(buf), "ANVIL_HOST_ROOT=%s", c->host_root);
        if (strv_extend(&env, buf) < 0)
                return NULL;
        snprintf(buf, sizeof(buf), "ANVIL_MACHINE=%s", strempty(machine));
        if (strv_extend(&env, buf) < 0)
                return NULL;
        return TAKE_PTR(env);
}

char *agent_config_host_path(const AgentConfig *c, const char *p) {
        if (streq(c->host_root, "/"))
                return strdup(p);
        return strjoin(c->host_root, p);
}

void agent_config_source_done(AgentConfigSource *s) {
        free(s->path);
        agent_config_done(&s->flags);
        *s = (AgentConfigSource){0};
}

static int dup_list(char ***dst, char **src) {
        if (!src)
                return 0;
        _cleanup_strv_free_ char **v = NULL;
        for (char **p = src; *p; p++)
                if (strv_extend(&v, *p) < 0)
                        return -ENOMEM;
        if (!v && !(v = calloc(1, sizeof(char *))))
                return -ENOMEM;
        strv_free(*dst);
        *dst = TAKE_PTR(v);
        return 0;
}

/* The machine's identity in the file: a UUID and a DNS-1123 name (the Host, its node and its
 * provider ID are named after them), refused with the file, line and field otherwise. */
static int check_identity(const char *path, const Obj *file, char **ret_error) {
        const Obj *u = obj_map_get(file, "product-uuid");
        const Obj *h = obj_map_get(file, "hostname");
        _cleanup_free_ char *lower = h && obj_str(h) ? strdup(obj_str(h)) : NULL;
        for (char *p = lower; p && *p; p++)
                *p = (char)tolower((unsigned char)*p);
        if (u && obj_str(u) && !product_uuid_valid(obj_str(u), false)) {
                *ret_error = asprintf_safe("%s:%u:%u: product-uuid: '%s' is not a UUID "
                                           "(8-4-4-4-12 hex digits)\n",
                                           path, u->mark.line, u->mark.column, obj_str(u));
                return -EBADMSG;
        }
        if (h && obj_str(h) && !hostname_valid(lower)) {
                *ret_error = asprintf_safe("%s:%u:%u: hostname: '%s' is not a valid DNS-1123 "
                                           "subdomain (letters, digits, '-' and '.', as "
                                           "Kubernetes node names)\n",
                                           path, h->mark.line, h->mark.column, obj_str(h));
                return -EBADMSG;
        }
        return 0;
}

/* environment: each item KEY=VALUE with a shell-usable KEY; reported as FILE:LINE:COLUMN
 * like the schema's problems (a list item's check needs its own mark). */
static int check_environment(const char *path, const Obj *file, char **ret_error) {
        _cleanup_(problems_clearp) Problems p = {0};
        OBJ_LIST_FOREACH(it, obj_map_get(file, "environment"), i) {
                const char *e = strempty(obj_str(it));
                size_t k = strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_");
                if (k > 0 && e[k] == '=' && !isdigit((unsigned char)e[0]))
                        continue;
                char field[48];
                snprintf(field, sizeof(field), "environment[%zu]", i);
                if (problems_add(&p, it->mark, field,
                                 "must be KEY=VALUE with KEY made of letters, digits and _, "
                                 "not '%.64s'",
                                 e) < 0)
                        return -ENOMEM;
        }
        if (p.n == 0)
                return 0;
        *ret_error = problems_format(path, NULL, &p);
        return -EBADMSG;
}

int agent_config_load(const AgentConfigSource *src, AgentConfig *ret, char **ret_error) {
        _cleanup_(agent_config_done) AgentConfig c = {0};
        int r;

        /* 1. the configuration file */
        _cleanup_(obj_freep) Obj *file = NULL;
        _cleanup_free_ char *errors = NULL;
        r = config_load(src->path, agent_config_schema, &file, &errors);
        if (r == -EBADMSG) {
                *ret_error = TAKE_PTR(errors);
                return r;
        }
        if (r < 0 && !(r == -ENOENT && !src->path_given)) {
                *ret_error = asprintf_safe("cannot read %s: %s", src->path, strerror(-r));
                return r;
        }
        if (file && (r = check_identity(src->path, file, ret_error)) < 0)
                return r;
        if (file && (r = check_environment(src->path, file, ret_error)) < 0)
                return r;
        if (file && (r = agent_config_apply_yaml(&c, file)) < 0)
                return r;

        /* 2. the kernel command line (how a PXE-booted host is told) */
        const char *cmdline_path = src->flags.cmdline_path ? src->flags.cmdline_path
                                   : c.cmdline_path        ? c.cmdline_path
                                                           : "/proc/cmdline";
        _cleanup_free_ char *cmdline = NULL;
        if (read_file_bounded(cmdline_path, 65536, &cmdline, NULL) >= 0) {
                _cleanup_free_ char *err = NULL;
                r = agent_config_apply_cmdline(&c, cmdline, &err);
                if (r < 0) {
                        *ret_error = asprintf_safe("%s (%s)", strna(err), cmdline_path);
                        return r;
                }
        }

        /* 3. flags */
        const AgentConfig *f = &src->flags;
        char **dst[] = {&c.coordinator,  &c.coordinator_key, &c.token,         &c.state_dir,
                        &c.product_uuid, &c.hostname,        &c.host_root,     &c.kubeadm,
                        &c.kubectl,      &c.cmdline_path,    &c.metrics_listen};
        char *const *from[] = {&f->coordinator,  &f->coordinator_key, &f->token,
                               &f->state_dir,    &f->product_uuid,    &f->hostname,
                               &f->host_root,    &f->kubeadm,         &f->kubectl,
                               &f->cmdline_path, &f->metrics_listen};
        for (size_t i = 0; i < ELEMENTSOF(dst); i++)
                if (*from[i] && (r = set_str(dst[i], *from[i])) < 0)
                        return r;
        if ((r = dup_list(&c.units, f->units)) < 0)
                return r;
        if (f->heartbeat_usec)
                c.heartbeat_usec = f->heartbeat_usec;
        if (f->has_log_level) {
                c.log_level = f->log_level;
                c.has_log_level = true;
        }

        /* 4. defaults, and what only makes sense whole */
        if ((r = agent_config_finish(&c)) < 0)
                return r;
        /* The file and the kernel command line were checked where they were read: what is
         * left to check came from a flag. */
        char why[256];
        const char *msg;
        if (f->coordinator &&
            (msg = endpoint_check(f->coordinator, ENDPOINT_CONNECT, why, sizeof(why)))) {
                *ret_error = asprintf_safe("--coordinator: %s", msg);
                return -EINVAL;
        }
        if (f->metrics_listen && *f->metrics_listen &&
            (msg = addr_port_check(f->metrics_listen, why, sizeof(why)))) {
                *ret_error = asprintf_safe("--metrics-listen: %s", msg);
                return -EINVAL;
        }
        *ret = c;
        c = (AgentConfig){0};
        return 0;
}
