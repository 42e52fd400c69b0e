/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>

#include "commands.h"
#include "exec.h"
#include "json.h"
#include "log.h"
#include "schema.h"
#include "upgrade.h"
#include "yamlio.h"

#define RECENT     16
#define QUEUE_MAX  64
#define OUTPUT_MAX 8192

struct CommandRunner {
        sd_event *event;
        const AgentConfig *c;
        CommandResultFn fn;
        void *userdata;
        Obj *queue;   /* OBJ_LIST of pending COMMAND bodies (with "self") */
        Obj *running; /* the body being run */
        int phase;    /* etcd-remove-member: 0 list, 1 remove; kubeadm-config-update: 0
                       * get, 1 patch */
        Exec *exec;
        Obj *recent[RECENT];
        size_t n_recent;
};

static void run_next(CommandRunner *r);

static bool valid_token(const char *s) {
        if (!s || strlen(s) != 23 || s[6] != '.')
                return false;
        for (int i = 0; i < 23; i++)
                if (i != 6 && !islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]))
                        return false;
        return true;
}

/* ---- kubeadm-config-update ---- */

/* The ClusterConfiguration fields the command may set, as Cluster API's KCP manages them;
 * kubernetesVersion and imageRepository are plain strings, the others JSON texts (null
 * removes the field). */
static const char *const config_fields[] = {"featureGates", "apiServer", "controllerManager",
                                            "scheduler",    "etcd",      NULL};

static bool valid_image_repository(const char *s) {
        if (isempty(s) || strlen(s) > 253)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("./:_-", *p))
                        return false;
        return true;
}

/* A field's JSON text: an object, or null (which json-c reads as no object at all). */
static int parse_field(const char *text, Obj **ret) {
        if (streq(text, "null")) {
                *ret = obj_new_null();
                return *ret ? 0 : -ENOMEM;
        }
        int r = json_parse(text, strlen(text), ret);
        if (r < 0)
                return r;
        return obj_is(*ret, OBJ_MAP) ? 0 : -EBADMSG;
}

static int config_args_check(const Obj *args, char *err, size_t errsz) {
        OBJ_MAP_FOREACH(e, args) {
                bool known = streq(e->key, "kubernetesVersion") || streq(e->key, "imageRepository");
                for (size_t i = 0; !known && config_fields[i]; i++)
                        known = streq(e->key, config_fields[i]);
                if (!known) {
                        snprintf(err, errsz, "unknown argument %s", e->key);
                        return -EINVAL;
                }
        }
        if (!upgrade_version_valid(obj_get_str(args, "kubernetesVersion"))) {
                snprintf(err, errsz, "invalid or missing args.kubernetesVersion");
                return -EINVAL;
        }
        const char *repo = obj_get_str(args, "imageRepository");
        if (repo && !valid_image_repository(repo)) {
                snprintf(err, errsz, "invalid args.imageRepository");
                return -EINVAL;
        }
        for (size_t i = 0; config_fields[i]; i++) {
                const char *text = obj_get_str(args, config_fields[i]);
                _cleanup_(obj_freep) Obj *v = NULL;
                if (text && parse_field(text, &v) < 0) {
                        snprintf(err, errsz, "args.%s is not a JSON object or null",
                                 config_fields[i]);
                        return -EINVAL;
                }
        }
        return 0;
}

int kubeadm_config_patch(const char *configmap_json, const Obj *args, char **ret_patch, char *err,
                         size_t errsz) {
        int r = config_args_check(args, err, errsz);
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *cm = NULL;
        if (json_parse(configmap_json, strlen(configmap_json), &cm) < 0 || !obj_is(cm, OBJ_MAP)) {
                snprintf(err, errsz, "kubectl printed something that is not a ConfigMap");
                return -EBADMSG;
        }
        const char *text = obj_get_str(cm, "data.ClusterConfiguration");
        const char *rv = obj_get_str(cm, "metadata.resourceVersion");
        if (!text || !rv) {
                snprintf(err, errsz, "the kubeadm-config ConfigMap has no %s",
                         text ? "resourceVersion" : "data.ClusterConfiguration");
                return -ENODATA;
        }
        _cleanup_(obj_freep) Obj *cc = NULL;
        YamlError ye;
        if (yaml_parse_one(text, strlen(text), &cc, &ye) < 0 || !obj_is(cc, OBJ_MAP)) {
                snprintf(err, errsz,
                         "the ClusterConfiguration in kubeadm-config is not valid YAML");
                return -EBADMSG;
        }
        _cleanup_(obj_freep) Obj *want = obj_dup(cc);
        if (!want ||
            obj_map_set_str(want, "kubernetesVersion", obj_get_str(args, "kubernetesVersion")) < 0)
                return -ENOMEM;
        const char *repo = obj_get_str(args, "imageRepository");
        if (repo && obj_map_set_str(want, "imageRepository", repo) < 0)
                return -ENOMEM;
        for (size_t i = 0; config_fields[i]; i++) {
                const char *t = obj_get_str(args, config_fields[i]);
                _cleanup_(obj_freep) Obj *v = NULL;
                if (!t)
                        continue;
                if (parse_field(t, &v) < 0)
                        return -EINVAL; /* checked above */
                if (obj_is(v, OBJ_NULL))
                        obj_map_del(want, config_fields[i]);
                else if (obj_map_set(want, config_fields[i], TAKE_PTR(v)) < 0)
                        return -ENOMEM;
        }
        if (obj_equal(cc, want)) {
                *ret_patch = NULL;
                return 0;
        }
        /* A merge patch with the resourceVersion read: if someone changed the ConfigMap since,
         * the API server refuses it (Conflict) and the coordinator asks again. */
        _cleanup_free_ char *yaml = NULL;
        _cleanup_(obj_freep) Obj *patch = obj_new_map();
        if ((r = yaml_emit(want, &yaml)) < 0)
                return r;
        if (!patch || obj_set_str(patch, "metadata.resourceVersion", rv) < 0 ||
            obj_set_str(patch, "data.ClusterConfiguration", yaml) < 0)
                return -ENOMEM;
        r = json_emit(patch, false, ret_patch);
        return r < 0 ? r : 1;
}

static void finish(CommandRunner *r, int code, const char *output) {
        _cleanup_(obj_freep) Obj *res = obj_new_map();
        const char *id = obj_get_str(r->running, "id");
        if (res && obj_map_set_str(res, "id", strempty(id)) >= 0 &&
            obj_map_set_int(res, "exitCode", code) >= 0) {
                if (output) {
                        size_t n = strlen(output);
                        obj_map_set_str(res, "output",
                                        n > OUTPUT_MAX ? output + n - OUTPUT_MAX : output);
                }
                if (code == 0)
                        log_info("Command %s (%s) succeeded.",
                                 strna(obj_get_str(r->running, "command")), strna(id));
                else
                        log_warning("Command %s (%s) failed with exit code %d.",
                                    strna(obj_get_str(r->running, "command")), strna(id), code);
                r->fn(res, r->userdata);
                /* Remember it for duplicates. */
                obj_free(r->recent[r->n_recent % RECENT]);
                r->recent[r->n_recent % RECENT] = TAKE_PTR(res);
                r->n_recent++;
        }
        r->running = obj_free(r->running);
        r->phase = 0;
        run_next(r);
}

static int start(CommandRunner *r, char **argv, uint64_t timeout, bool capture);
static int start_etcdctl(CommandRunner *r, const char *kubeconfig, const char *verb, const char *id,
                         bool capture);

static void on_done(Exec *x, int code, const char *tail, void *userdata) {
        CommandRunner *r = userdata;
        _cleanup_free_ char *out = strdup(exec_stdout(x));
        _cleanup_free_ char *t = strdup(strempty(tail));
        r->exec = exec_free(r->exec);
        const char *cmd = obj_get_str(r->running, "command");
        const char *node = obj_get_str(r->running, "args.node");

        if (streq_ptr(cmd, "kubeadm-config-update")) {
                /* A missing ConfigMap is a failure here, not "already done". */
                if (r->phase == 0 && code == 0) {
                        char err[256];
                        _cleanup_free_ char *patch = NULL;
                        int k = kubeadm_config_patch(strempty(out), obj_map_get(r->running, "args"),
                                                     &patch, err, sizeof(err));
                        if (k < 0) {
                                finish(r, 1, err);
                                return;
                        }
                        if (k == 0) {
                                log_info("kubeadm-config already has what was asked for.");
                                finish(r, 0, "kubeadm-config is up to date");
                                return;
                        }
                        r->phase = 1;
                        _cleanup_free_ char *kc =
                                agent_config_host_path(r->c, "/etc/kubernetes/admin.conf");
                        char *argv[] = {
                                r->c->kubectl, "--kubeconfig", kc,          "-n",
                                "kube-system", "patch",        "configmap", "kubeadm-config",
                                "--type",      "merge",        "-p",        patch,
                                NULL};
                        log_info("Updating kube-system/kubeadm-config: kubernetesVersion %s.",
                                 strna(obj_get_str(r->running, "args.kubernetesVersion")));
                        if (start(r, argv, 60 * USEC_PER_SEC, false) < 0)
                                finish(r, -1, "could not run kubectl");
                        return;
                }
                finish(r, code, t);
                return;
        }

        /* Idempotence: what is already gone counts as done. */
        if (code != 0 && t &&
            (strstr(t, "NotFound") || strstr(t, "not found") || strstr(t, "already exists")))
                code = 0;

        if (streq_ptr(cmd, "etcd-remove-member") && r->phase == 0 && code == 0) {
                /* `member list` lines: ID, status, name, peer URLs, client URLs, learner */
                char id[32] = "";
                char *save = NULL;
                for (char *line = out ? strtok_r(out, "\n", &save) : NULL; line;
                     line = strtok_r(NULL, "\n", &save)) {
                        char mid[32], status[32], name[256];
                        if (sscanf(line, " %31[^,], %31[^,], %255[^,],", mid, status, name) == 3 &&
                            streq(name, strempty(node))) {
                                snprintf(id, sizeof(id), "%s", mid);
                                break;
                        }
                }
                if (!*id) {
                        log_info("etcd has no member named %s: nothing to remove.", strna(node));
                        finish(r, 0, "no such member");
                        return;
                }
                for (char *p = id; *p; p++)
                        if (!isxdigit((unsigned char)*p)) {
                                finish(r, 1, "etcdctl printed an unexpected member id");
                                return;
                        }
                r->phase = 1;
                _cleanup_free_ char *kc =
                        agent_config_host_path(r->c, "/etc/kubernetes/admin.conf");
                log_info("Removing etcd member %s (%s).", id, strna(node));
                if (!kc || start_etcdctl(r, kc, "remove", id, false) < 0)
                        finish(r, -1, "could not run kubectl");
                return;
        }
        finish(r, code, t);
}

static int start(CommandRunner *r, char **argv, uint64_t timeout, bool capture) {
        _cleanup_strv_free_ char **env = agent_config_command_env(r->c, NULL);
        if (!env)
                return -ENOMEM;
        ExecSpec spec = {
                .argv = argv, .envp = env, .timeout_usec = timeout, .capture_stdout = capture};
        return exec_start(r->event, &spec, on_done, r, &r->exec);
}

/* etcdctl against this control plane host's etcd member, through kubectl exec into its
 * static pod (a host needs no etcdctl of its own): "member list", or "member remove ID". */
static int start_etcdctl(CommandRunner *r, const char *kubeconfig, const char *verb, const char *id,
                         bool capture) {
        _cleanup_free_ char *pod = strjoin("etcd-", strempty(obj_get_str(r->running, "self")));
        if (!pod)
                return -ENOMEM;
        char *argv[] = {r->c->kubectl,
                        "--kubeconfig",
                        (char *)kubeconfig,
                        "-n",
                        "kube-system",
                        "exec",
                        pod,
                        "--",
                        "etcdctl",
                        "--endpoints=https://127.0.0.1:2379",
                        "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
                        "--cert=/etc/kubernetes/pki/etcd/peer.crt",
                        "--key=/etc/kubernetes/pki/etcd/peer.key",
                        "member",
                        (char *)verb,
                        (char *)id, /* NULL for list: the end */
                        NULL};
        return start(r, argv, 60 * USEC_PER_SEC, capture);
}

static void run_next(CommandRunner *r) {
        if (r->exec || r->running || obj_len(r->queue) == 0)
                return;
        r->running = r->queue->list.items[0];
        memmove(r->queue->list.items, r->queue->list.items + 1,
                (r->queue->list.n - 1) * sizeof(Obj *));
        r->queue->list.n--;

        const char *cmd = obj_get_str(r->running, "command");
        const Obj *args = obj_map_get(r->running, "args");
        const char *node = obj_get_str(args, "node");
        _cleanup_free_ char *admin = agent_config_host_path(r->c, "/etc/kubernetes/admin.conf");
        int r2 = -EINVAL;
        char timeout_arg[64];
        log_info("Running command %s (%s)%s%s.", strna(cmd), strna(obj_get_str(r->running, "id")),
                 node ? " for node " : "", strempty(node));

        bool needs_node =
                !streq_ptr(cmd, "token-create") && !streq_ptr(cmd, "kubeadm-config-update");
        if (needs_node && (!node || !is_dns_subdomain(node))) {
                finish(r, 2, "invalid or missing args.node");
                return;
        }
        if (streq_ptr(cmd, "token-create")) {
                const char *token = obj_get_str(args, "token");
                const char *ttl = obj_get_str(args, "ttl");
                int64_t us;
                if (!valid_token(token) || !ttl || parse_go_duration(ttl, &us) < 0) {
                        finish(r, 2, "invalid token or ttl");
                        return;
                }
                _cleanup_strv_free_ char **argv = NULL;
                if (strv_extend(&argv, r->c->kubeadm) >= 0 && strv_extend(&argv, "token") >= 0 &&
                    strv_extend(&argv, "create") >= 0 && strv_extend(&argv, token) >= 0 &&
                    strv_extend(&argv, "--ttl") >= 0 && strv_extend(&argv, ttl) >= 0 &&
                    strv_extend(&argv, "--description") >= 0 &&
                    strv_extend(&argv, "created by Anvil for one node join") >= 0 &&
                    strv_extend(&argv, "--kubeconfig") >= 0 &&
                    strv_extend(&argv, "/etc/kubernetes/admin.conf") >= 0 &&
                    (streq(r->c->host_root, "/") || (strv_extend(&argv, "--rootfs") >= 0 &&
                                                     strv_extend(&argv, r->c->host_root) >= 0)))
                        r2 = start(r, argv, 60 * USEC_PER_SEC, false);
                else
                        r2 = -ENOMEM;
        } else if (streq_ptr(cmd, "drain-node")) {
                int64_t secs = 300;
                const char *t = obj_get_str(args, "timeoutSeconds");
                if (t)
                        secs = strtoll(t, NULL, 10);
                if (secs <= 0 || secs > 86400)
                        secs = 300;
                snprintf(timeout_arg, sizeof(timeout_arg), "--timeout=%llds", (long long)secs);
                char *argv[] = {r->c->kubectl,
                                "--kubeconfig",
                                admin,
                                "drain",
                                (char *)node,
                                "--ignore-daemonsets",
                                "--delete-emptydir-data",
                                "--force",
                                timeout_arg,
                                NULL};
                r2 = start(r, argv, (uint64_t)(secs + 30) * USEC_PER_SEC, false);
        } else if (streq_ptr(cmd, "delete-node")) {
                char *argv[] = {r->c->kubectl, "--kubeconfig",       admin, "delete", "node",
                                (char *)node,  "--ignore-not-found", NULL};
                r2 = start(r, argv, 60 * USEC_PER_SEC, false);
        } else if (streq_ptr(cmd, "cordon-node") || streq_ptr(cmd, "uncordon-node")) {
                char *argv[] = {r->c->kubectl, "--kubeconfig",
                                admin,         streq(cmd, "cordon-node") ? "cordon" : "uncordon",
                                (char *)node,  NULL};
                r2 = start(r, argv, 60 * USEC_PER_SEC, false);
        } else if (streq_ptr(cmd, "kubeadm-config-update")) {
                char err[256];
                if (config_args_check(args, err, sizeof(err)) < 0) {
                        finish(r, 2, err);
                        return;
                }
                char *argv[] = {r->c->kubectl, "--kubeconfig", admin,       "-n",
                                "kube-system", "get",          "configmap", "kubeadm-config",
                                "-o",          "json",         NULL};
                r->phase = 0;
                r2 = start(r, argv, 60 * USEC_PER_SEC, true);
        } else if (streq_ptr(cmd, "etcd-remove-member")) {
                const char *self = obj_get_str(r->running, "self");
                if (!self) {
                        finish(r, 2, "this host has no node: it cannot reach etcd");
                        return;
                }
                r->phase = 0;
                r2 = start_etcdctl(r, admin, "list", NULL, true);
        } else {
                finish(r, 127, "unknown command");
                return;
        }
        if (r2 < 0)
                finish(r, -1, "could not start the command");
}

void command_runner_submit(CommandRunner *r, const Obj *body, const char *self_node) {
        const char *id = obj_get_str(body, "id");
        if (r->running && streq_ptr(obj_get_str(r->running, "id"), id))
                return; /* already running: its RESULT will come */
        OBJ_LIST_FOREACH(q, r->queue, i)
        if (streq_ptr(obj_get_str(q, "id"), id))
                return;
        for (size_t i = 0; i < RECENT; i++)
                if (r->recent[i] && streq_ptr(obj_get_str(r->recent[i], "id"), id)) {
                        r->fn(r->recent[i], r->userdata);
                        return;
                }
        if (obj_len(r->queue) >= QUEUE_MAX) {
                log_warning("Dropping command %s: %d commands are waiting already.", strna(id),
                            QUEUE_MAX);
                return;
        }
        _cleanup_(obj_freep) Obj *copy = obj_dup(body);
        if (!copy || (self_node && obj_map_set_str(copy, "self", self_node) < 0) ||
            obj_list_append(r->queue, TAKE_PTR(copy)) < 0)
                return;
        run_next(r);
}

int command_runner_new(sd_event *e, const AgentConfig *config, CommandResultFn fn, void *userdata,
                       CommandRunner **ret) {
        CommandRunner *r = calloc(1, sizeof(CommandRunner));
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(e);
        r->c = config;
        r->fn = fn;
        r->userdata = userdata;
        r->queue = obj_new_list();
        if (!r->queue) {
                command_runner_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

CommandRunner *command_runner_free(CommandRunner *r) {
        if (!r)
                return NULL;
        exec_free(r->exec);
        obj_free(r->queue);
        obj_free(r->running);
        for (size_t i = 0; i < RECENT; i++)
                obj_free(r->recent[i]);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}
