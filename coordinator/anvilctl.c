/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anvilctl: the operator's command line, a short-lived client of the coordinator's admin
 * socket. It sends manifests whole, with their file names (the coordinator parses and
 * validates them, so errors name FILE:LINE:COLUMN), and prints answers the way kubectl and
 * clusterctl print theirs: aligned tables, -o yaml|json|name|wide, exit code 0 or 1.
 */
#include <dirent.h>
#include <getopt.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#include "fileio.h"
#include "json.h"
#include "kinds.h"
#include "log.h"
#include "schema.h"
#include "wire.h"
#include "yamlio.h"

#define DEFAULT_SERVER "/run/anvil/admin.sock"

static const char *arg_server;
static const char *arg_namespace;
static bool arg_all_namespaces;
static const char *arg_selector;
static const char *arg_output;
static int arg_timeout_sec = 30;

/* ---- talking to the coordinator ---- */

static char *server_endpoint(void) {
        const char *s = arg_server ? arg_server : getenv("ANVIL_SERVER");
        if (isempty(s))
                s = DEFAULT_SERVER;
        if (strstr(s, "://"))
                return strdup(s);
        return strjoin("ipc://", s);
}

static int call(Obj *req, Obj **ret) {
        _cleanup_free_ char *ep = server_endpoint();
        if (!ep)
                return log_oom();
        const char *path = startswith(ep, "ipc://") ? ep + 6 : NULL;
        if (path && access(path, F_OK) < 0) {
                fprintf(stderr,
                        "error: cannot reach the coordinator: %s does not exist (is "
                        "anvil-coordinator running? set --server or ANVIL_SERVER)\n",
                        path);
                return -ENOENT;
        }
        void *ctx = zmq_ctx_new();
        void *sock = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0, timeout = arg_timeout_sec * 1000;
        int64_t maxmsg = WIRE_MAX_ADMIN_MESSAGE;
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
        int r = 0;
        char *buf = NULL;
        size_t size;
        if (zmq_connect(sock, ep) < 0) {
                r = negative_errno();
                fprintf(stderr, "error: invalid server address %s: %s\n", ep, strerror(-r));
                goto out;
        }
        r = wire_encode(MSG_API_REQUEST, req, &buf, &size);
        if (r < 0)
                goto out;
        if (zmq_send(sock, buf, size, 0) < 0) {
                r = negative_errno();
                fprintf(stderr, "error: cannot send to the coordinator: %s\n", strerror(-r));
                goto out;
        }
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, 0) < 0) {
                r = negative_errno();
                zmq_msg_close(&msg);
                if (r == -EAGAIN)
                        fprintf(stderr,
                                "error: no answer from the coordinator at %s within %ds (is it "
                                "running?)\n",
                                ep, arg_timeout_sec);
                else
                        fprintf(stderr, "error: %s\n", strerror(-r));
                goto out;
        }
        MsgType type;
        char err[256];
        r = wire_decode(CHANNEL_ADMIN_RESPONSE, zmq_msg_data(&msg), zmq_msg_size(&msg), &type,
                        ret, err, sizeof(err));
        zmq_msg_close(&msg);
        if (r < 0)
                fprintf(stderr, "error: bad answer from the coordinator: %s\n", err);
out:
        free(buf);
        zmq_close(sock);
        zmq_ctx_term(ctx);
        return r;
}

static Obj *request(const char *op) {
        Obj *req = obj_new_map();
        if (req && obj_map_set_str(req, "op", op) < 0)
                req = obj_free(req);
        if (req && arg_namespace && obj_map_set_str(req, "namespace", arg_namespace) < 0)
                req = obj_free(req);
        if (req && arg_all_namespaces && obj_map_set_bool(req, "allNamespaces", true) < 0)
                req = obj_free(req);
        return req;
}

/* Sends req; on failure prints the coordinator's message and problems. */
static int call_ok(Obj *req, Obj **ret) {
        _cleanup_(obj_freep) Obj *resp = NULL;
        int r = call(req, &resp);
        if (r < 0)
                return r;
        if (!obj_get_bool(resp, "ok", false)) {
                const Obj *problems = obj_map_get(resp, "problems");
                OBJ_LIST_FOREACH(p, problems, i)
                fprintf(stderr, "%s\n", strempty(obj_str(p)));
                const char *code = obj_get_str(resp, "code");
                fprintf(stderr, "Error%s%s%s: %s\n", code ? " (" : "", strempty(code),
                        code ? ")" : "", strna(obj_get_str(resp, "message")));
                return -EIO;
        }
        if (ret)
                *ret = TAKE_PTR(resp);
        return 0;
}

/* ---- output ---- */

static const char *age(const char *ts, char buf[static 32]) {
        int64_t t;
        if (!ts || parse_rfc3339(ts, &t) < 0)
                return "<unknown>";
        int64_t d = ((int64_t)now_usec(CLOCK_REALTIME) - t) / (int64_t)USEC_PER_SEC;
        if (d < 0)
                d = 0;
        if (d < 120)
                snprintf(buf, 32, "%llds", (long long)d);
        else if (d < 3 * 3600)
                snprintf(buf, 32, "%lldm", (long long)(d / 60));
        else if (d < 48 * 3600)
                snprintf(buf, 32, "%lldh", (long long)(d / 3600));
        else
                snprintf(buf, 32, "%lldd", (long long)(d / 86400));
        return buf;
}

typedef struct Column {
        const char *header;
        const char *path;  /* into the object; NULL = computed by name */
        bool wide;         /* only with -o wide */
} Column;

typedef struct Printer {
        const char *kind;
        Column cols[12];
} Printer;

static const Printer printers[] = {
        {"Cluster", {{"NAME", "metadata.name"}, {"PHASE", "status.phase"}, {"READY", "=ready"},
                     {"AGE", "=age"}, {"ENDPOINT", "=endpoint", true}}},
        {"Machine",
         {{"NAME", "metadata.name"}, {"CLUSTER", "spec.clusterName"},
          {"NODENAME", "status.nodeRef.name"}, {"PROVIDERID", "spec.providerID"},
          {"PHASE", "status.phase"}, {"AGE", "=age"}, {"VERSION", "spec.version"},
          {"READY", "=ready", true}}},
        {"MachineSet",
         {{"NAME", "metadata.name"}, {"CLUSTER", "spec.clusterName"},
          {"REPLICAS", "status.replicas"}, {"READY", "status.readyReplicas"},
          {"AVAILABLE", "status.availableReplicas"}, {"AGE", "=age"},
          {"VERSION", "spec.template.spec.version"}}},
        {"MachineDeployment",
         {{"NAME", "metadata.name"}, {"CLUSTER", "spec.clusterName"},
          {"REPLICAS", "status.replicas"}, {"READY", "status.readyReplicas"},
          {"UPDATED", "status.updatedReplicas"}, {"UNAVAILABLE", "status.unavailableReplicas"},
          {"PHASE", "status.phase"}, {"AGE", "=age"}, {"VERSION", "spec.template.spec.version"}}},
        {"KubeadmControlPlane",
         {{"NAME", "metadata.name"}, {"CLUSTER", "metadata.labels.cluster"},
          {"INITIALIZED", "status.initialized"}, {"API SERVER AVAILABLE", "status.ready"},
          {"REPLICAS", "status.replicas"}, {"READY", "status.readyReplicas"},
          {"UPDATED", "status.updatedReplicas"}, {"UNAVAILABLE", "status.unavailableReplicas"},
          {"AGE", "=age"}, {"VERSION", "spec.version"}}},
        {"Host",
         {{"NAME", "metadata.name"}, {"PHASE", "status.phase"}, {"CLAIMED-BY", "=claimed"},
          {"IP", "=ip"}, {"CPU", "status.facts.cpu.count"}, {"MEMORY", "=memory"},
          {"LAST-SEEN", "=lastseen"}, {"PRODUCT-UUID", "status.facts.productUUID", true},
          {"LABELS", "=labels", true}}},
        {"AnvilMachine",
         {{"NAME", "metadata.name"}, {"CLUSTER", "metadata.labels.cluster"},
          {"HOST", "status.hostRef.name"}, {"READY", "status.ready"},
          {"PROVIDERID", "spec.providerID"}, {"AGE", "=age"}}},
        {"KubeadmConfig",
         {{"NAME", "metadata.name"}, {"CLUSTER", "metadata.labels.cluster"},
          {"READY", "status.ready"}, {"DATASECRET", "status.dataSecretName"}, {"AGE", "=age"}}},
        {"Event",
         {{"LAST SEEN", "=lastts"}, {"TYPE", "type"}, {"REASON", "reason"},
          {"OBJECT", "=involved"}, {"MESSAGE", "message"}}},
        {"Secret", {{"NAME", "metadata.name"}, {"TYPE", "type"}, {"DATA", "=datacount"},
                    {"AGE", "=age"}}},
};

static const Printer default_printer = {"", {{"NAME", "metadata.name"}, {"AGE", "=age"}}};

static char *human_bytes(int64_t b) {
        const char *u[] = {"B", "Ki", "Mi", "Gi", "Ti"};
        double v = (double)b;
        int i = 0;
        while (v >= 1024 && i < 4) {
                v /= 1024;
                i++;
        }
        return asprintf_safe(i >= 3 ? "%.0f%s" : "%.1f%s", v, u[i]);
}

static char *cell(const Obj *o, const char *path) {
        char buf[64];
        if (path[0] != '=') {
                /* "metadata.labels.cluster" is the cluster-name label */
                if (streq(path, "metadata.labels.cluster"))
                        return strdup(strempty(obj_str(obj_map_get(
                                obj_get(o, "metadata.labels"), "cluster.x-k8s.io/cluster-name"))));
                const Obj *v = obj_get(o, path);
                if (!v)
                        return strdup("");
                switch (v->type) {
                case OBJ_STR:
                        return strdup(v->str.s);
                case OBJ_INT:
                        return asprintf_safe("%lld", (long long)v->i);
                case OBJ_BOOL:
                        return strdup(v->b ? "true" : "false");
                default:
                        return strdup("");
                }
        }
        const char *what = path + 1;
        if (streq(what, "age"))
                return strdup(age(obj_get_str(o, "metadata.creationTimestamp"), buf));
        if (streq(what, "lastts"))
                return strdup(age(obj_get_str(o, "lastTimestamp"), buf));
        if (streq(what, "lastseen")) {
                const char *t = obj_get_str(o, "status.lastHeartbeat");
                return strdup(t ? age(t, buf) : "never");
        }
        if (streq(what, "ready")) {
                OBJ_LIST_FOREACH(c, obj_get(o, "status.conditions"), i)
                if (streq_ptr(obj_get_str(c, "type"), "Ready"))
                        return strdup(strempty(obj_get_str(c, "status")));
                return strdup("");
        }
        if (streq(what, "endpoint")) {
                const char *h = obj_get_str(o, "spec.controlPlaneEndpoint.host");
                int64_t p = 0;
                obj_get_int(o, "spec.controlPlaneEndpoint.port", &p);
                return h ? asprintf_safe("%s:%lld", h, (long long)p) : strdup("");
        }
        if (streq(what, "claimed")) {
                const char *n = obj_get_str(o, "spec.consumerRef.name");
                return strdup(n ? n : "");
        }
        if (streq(what, "memory")) {
                int64_t b;
                return obj_get_int(o, "status.facts.memoryBytes", &b) ? human_bytes(b) : strdup("");
        }
        if (streq(what, "ip")) {
                OBJ_LIST_FOREACH(iface, obj_get(o, "status.facts.interfaces"), i)
                OBJ_LIST_FOREACH(a, obj_map_get(iface, "addresses"), j) {
                        const char *s = obj_str(a);
                        if (s && strchr(s, '.') && !startswith(s, "127."))
                                return strdup(s);
                }
                return strdup("");
        }
        if (streq(what, "labels")) {
                char lb[512] = "";
                size_t n = 0;
                OBJ_MAP_FOREACH(e, obj_get(o, "metadata.labels")) {
                        int w = snprintf(lb + n, sizeof(lb) - n, "%s%s=%s", n ? "," : "", e->key,
                                         strempty(obj_str(e->value)));
                        if (w > 0 && (size_t)w < sizeof(lb) - n)
                                n += (size_t)w;
                }
                return strdup(n ? lb : "<none>");
        }
        if (streq(what, "involved"))
                return asprintf_safe("%s/%s",
                                     strempty(obj_get_str(o, "involvedObject.kind")),
                                     strempty(obj_get_str(o, "involvedObject.name")));
        if (streq(what, "datacount"))
                return asprintf_safe("%zu", obj_len(obj_map_get(o, "data")));
        return strdup("");
}

static void print_table(const KindInfo *k, const Obj *items, bool wide, bool with_ns) {
        const Printer *p = &default_printer;
        for (size_t i = 0; i < ELEMENTSOF(printers); i++)
                if (streq(printers[i].kind, k->kind))
                        p = &printers[i];
        size_t ncols = 0, rows = obj_len(items);
        Column cols[13];
        if (with_ns)
                cols[ncols++] = (Column){"NAMESPACE", "metadata.namespace"};
        for (size_t c = 0; c < ELEMENTSOF(p->cols) && p->cols[c].header; c++)
                if (!p->cols[c].wide || wide)
                        cols[ncols++] = p->cols[c];
        char ***cells = calloc(rows ? rows : 1, sizeof(char **));
        size_t width[13] = {0};
        for (size_t c = 0; c < ncols; c++)
                width[c] = strlen(cols[c].header);
        OBJ_LIST_FOREACH(o, items, r) {
                cells[r] = calloc(ncols, sizeof(char *));
                for (size_t c = 0; c < ncols; c++) {
                        cells[r][c] = cell(o, cols[c].path);
                        size_t l = strlen(strempty(cells[r][c]));
                        if (l > width[c])
                                width[c] = l;
                }
        }
        for (size_t c = 0; c < ncols; c++)
                printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, cols[c].header,
                       c + 1 < ncols ? "   " : "\n");
        for (size_t r = 0; r < rows; r++) {
                for (size_t c = 0; c < ncols; c++) {
                        printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, strempty(cells[r][c]),
                               c + 1 < ncols ? "   " : "\n");
                        free(cells[r][c]);
                }
                free(cells[r]);
        }
        free(cells);
}

/* ---- commands ---- */

static int read_manifest(const char *path, char **ret, size_t *ret_size) {
        if (streq(path, "-")) {
                char *buf = NULL;
                size_t len = 0, cap = 0;
                for (;;) {
                        if (len + 4096 + 1 > cap) {
                                cap = cap ? cap * 2 : 65536;
                                if (cap > WIRE_MAX_ADMIN_MESSAGE) {
                                        free(buf);
                                        return -EFBIG;
                                }
                                char *n = realloc(buf, cap);
                                if (!n) {
                                        free(buf);
                                        return -ENOMEM;
                                }
                                buf = n;
                        }
                        size_t k = fread(buf + len, 1, 4096, stdin);
                        len += k;
                        if (k == 0)
                                break;
                }
                buf[len] = 0;
                *ret = buf;
                *ret_size = len;
                return 0;
        }
        return read_file_bounded(path, WIRE_MAX_ADMIN_MESSAGE - 4096, ret, ret_size);
}

static int apply_one_file(const char *path) {
        _cleanup_free_ char *content = NULL;
        size_t size;
        int r = read_manifest(path, &content, &size);
        if (r < 0) {
                fprintf(stderr, "error: %s: %s\n", path, strerror(-r));
                return r;
        }
        if (memchr(content, 0, size)) {
                fprintf(stderr, "error: %s: binary data is not a manifest\n", path);
                return -EBADMSG;
        }
        _cleanup_(obj_freep) Obj *req = request("apply");
        if (!req || obj_map_set_str(req, "file", streq(path, "-") ? "<stdin>" : path) < 0 ||
            obj_map_set_str(req, "content", content) < 0)
                return log_oom();
        _cleanup_(obj_freep) Obj *resp = NULL;
        r = call_ok(req, &resp);
        if (r < 0)
                return r;
        fputs(strempty(obj_get_str(resp, "text")), stdout);
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int apply_path(const char *path) {
        struct stat st;
        if (!streq(path, "-") && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                /* kubectl: every .yaml/.yml/.json file of the directory, in name order. */
                DIR *d = opendir(path);
                if (!d) {
                        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
                        return -errno;
                }
                _cleanup_strv_free_ char **names = NULL;
                struct dirent *de;
                while ((de = readdir(d))) {
                        const char *n = de->d_name;
                        size_t l = strlen(n);
                        if ((l > 5 && streq(n + l - 5, ".yaml")) || (l > 4 && streq(n + l - 4, ".yml")) ||
                            (l > 5 && streq(n + l - 5, ".json")))
                                strv_extend(&names, n);
                }
                closedir(d);
                size_t n = strv_length(names);
                if (n == 0) {
                        fprintf(stderr, "error: no manifests (.yaml, .yml, .json) in %s\n", path);
                        return -ENOENT;
                }
                qsort(names, n, sizeof(char *), cmp_str);
                int result = 0;
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *full = strjoin(path, "/", names[i]);
                        int r = apply_one_file(full);
                        if (r < 0)
                                result = r;
                }
                return result;
        }
        return apply_one_file(path);
}

static int print_items(const KindInfo *k, Obj *items, const char *name) {
        const char *o = arg_output ? arg_output : "";
        if (streq(o, "yaml") || streq(o, "json")) {
                _cleanup_free_ char *text = NULL;
                Obj *out = items;
                _cleanup_(obj_freep) Obj *list = NULL;
                if (name && obj_len(items) == 1)
                        out = obj_list_get(items, 0);
                else {
                        list = obj_new_map();
                        if (!list || obj_map_set_str(list, "apiVersion", "v1") < 0 ||
                            obj_map_set_str(list, "kind", "List") < 0 ||
                            obj_map_set(list, "items", obj_dup(items)) < 0)
                                return log_oom();
                        out = list;
                }
                int r = streq(o, "yaml") ? yaml_emit(out, &text) : json_emit(out, true, &text);
                if (r < 0)
                        return r;
                fputs(text, stdout);
                if (streq(o, "json"))
                        putchar('\n');
                return 0;
        }
        if (streq(o, "name")) {
                OBJ_LIST_FOREACH(it, items, i)
                printf("%s%s%s/%s\n", k->singular, isempty(k->group) ? "" : ".", k->group,
                       strempty(obj_get_str(it, "metadata.name")));
                return 0;
        }
        if (!isempty(o) && !streq(o, "wide")) {
                fprintf(stderr, "error: unknown output format '%s' (yaml, json, name, wide)\n", o);
                return -EINVAL;
        }
        if (obj_len(items) == 0) {
                if (arg_all_namespaces || !k->namespaced)
                        fprintf(stderr, "No resources found\n");
                else
                        fprintf(stderr, "No resources found in %s namespace.\n",
                                arg_namespace ? arg_namespace : "default");
                return 0;
        }
        print_table(k, items, streq(o, "wide"), arg_all_namespaces && k->namespaced);
        return 0;
}

static const KindInfo *resolve_kind(const char *name) {
        const KindInfo *k = kind_resolve(name);
        if (!k)
                fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", name);
        return k;
}

static int cmd_get(int argc, char **argv) {
        if (argc < 1) {
                fprintf(stderr, "error: you must specify the type of resource to get\n"
                                "Usage: anvilctl get KIND [NAME] [-n NS | -A] [-l SELECTOR] "
                                "[-o wide|yaml|json|name]\n");
                return -EINVAL;
        }
        if (streq(argv[0], "kubeconfig")) {
                if (argc != 2) {
                        fprintf(stderr, "Usage: anvilctl get kubeconfig CLUSTER\n");
                        return -EINVAL;
                }
                _cleanup_(obj_freep) Obj *req = request("kubeconfig"), *resp = NULL;
                if (!req || obj_map_set_str(req, "name", argv[1]) < 0)
                        return log_oom();
                int r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                fputs(strempty(obj_get_str(resp, "text")), stdout);
                return 0;
        }
        /* kubectl accepts "kind/name" too */
        char kindbuf[128];
        const char *kind = argv[0], *name = argc > 1 ? argv[1] : NULL;
        const char *slash = strchr(kind, '/');
        if (slash && (size_t)(slash - kind) < sizeof(kindbuf)) {
                memcpy(kindbuf, kind, (size_t)(slash - kind));
                kindbuf[slash - kind] = 0;
                name = slash + 1;
                kind = kindbuf;
        }
        if (argc > 2) {
                fprintf(stderr, "error: get takes one name (got %d arguments)\n", argc - 1);
                return -EINVAL;
        }
        const KindInfo *k = resolve_kind(kind);
        if (!k)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *req = request("get"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            (name && obj_map_set_str(req, "name", name) < 0) ||
            (arg_selector && obj_map_set_str(req, "selector", arg_selector) < 0))
                return log_oom();
        int r = call_ok(req, &resp);
        if (r < 0)
                return r;
        Obj *items = obj_map_get(resp, "items");
        return print_items(k, items, name);
}

static int cmd_describe(int argc, char **argv) {
        char kindbuf[128];
        const char *kind = argc > 0 ? argv[0] : NULL, *name = argc > 1 ? argv[1] : NULL;
        if (kind && strchr(kind, '/')) {
                const char *slash = strchr(kind, '/');
                snprintf(kindbuf, sizeof(kindbuf), "%.*s", (int)(slash - kind), kind);
                name = slash + 1;
                kind = kindbuf;
        }
        if (!kind || !name) {
                fprintf(stderr, "Usage: anvilctl describe KIND NAME\n");
                return -EINVAL;
        }
        const KindInfo *k = resolve_kind(kind);
        if (!k)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *req = request("describe"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0)
                return log_oom();
        int r = call_ok(req, &resp);
        if (r < 0)
                return r;
        fputs(strempty(obj_get_str(resp, "text")), stdout);
        return 0;
}

static int cmd_delete_one(const char *kind, const char *name) {
        const KindInfo *k = resolve_kind(kind);
        if (!k)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *req = request("delete"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0)
                return log_oom();
        int r = call_ok(req, &resp);
        if (r < 0)
                return r;
        printf("%s\n", strempty(obj_get_str(resp, "message")));
        return 0;
}

static int cmd_delete(int argc, char **argv, const char *file) {
        if (file) {
                _cleanup_free_ char *content = NULL;
                size_t size;
                int r = read_manifest(file, &content, &size);
                if (r < 0) {
                        fprintf(stderr, "error: %s: %s\n", file, strerror(-r));
                        return r;
                }
                _cleanup_(obj_freep) Obj *docs = NULL;
                YamlError ye;
                r = yaml_parse_documents(content, size, &docs, &ye);
                if (r < 0) {
                        fprintf(stderr, "%s:%u:%u: %s\n", file, ye.line, ye.column, ye.message);
                        return r;
                }
                int result = 0;
                /* Reverse order, as kubectl deletes. */
                for (size_t i = obj_len(docs); i > 0; i--) {
                        const Obj *d = obj_list_get(docs, i - 1);
                        const char *kind = obj_get_str(d, "kind"), *name = obj_get_str(d, "metadata.name");
                        if (!kind || !name)
                                continue;
                        const char *ns = obj_get_str(d, "metadata.namespace");
                        const char *saved = arg_namespace;
                        if (ns)
                                arg_namespace = ns;
                        r = cmd_delete_one(kind, name);
                        arg_namespace = saved;
                        if (r < 0)
                                result = r;
                }
                return result;
        }
        if (argc == 1 && strchr(argv[0], '/')) {
                char kind[128];
                const char *slash = strchr(argv[0], '/');
                snprintf(kind, sizeof(kind), "%.*s", (int)(slash - argv[0]), argv[0]);
                return cmd_delete_one(kind, slash + 1);
        }
        if (argc < 2) {
                fprintf(stderr, "Usage: anvilctl delete KIND NAME... | anvilctl delete -f FILE\n");
                return -EINVAL;
        }
        int result = 0;
        for (int i = 1; i < argc; i++) {
                int r = cmd_delete_one(argv[0], argv[i]);
                if (r < 0)
                        result = r;
        }
        return result;
}

static int parse_kv_list(const char *s, Obj **ret) {
        _cleanup_(obj_freep) Obj *m = obj_new_map();
        _cleanup_free_ char *copy = strdup(s);
        if (!m || !copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(t, '=');
                if (!eq || eq == t) {
                        fprintf(stderr, "error: '%s' is not key=value\n", t);
                        return -EINVAL;
                }
                *eq = 0;
                if (obj_map_set_str(m, t, eq + 1) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

static int cmd_label(int argc, char **argv, bool annotate, bool overwrite) {
        if (argc < 3) {
                fprintf(stderr, "Usage: anvilctl %s KIND NAME key=value... (key- removes)\n",
                        annotate ? "annotate" : "label");
                return -EINVAL;
        }
        const KindInfo *k = resolve_kind(argv[0]);
        if (!k)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *req = request(annotate ? "annotate" : "label"), *resp = NULL;
        _cleanup_(obj_freep) Obj *changes = obj_new_map(), *remove = obj_new_list();
        if (!req || !changes || !remove || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", argv[1]) < 0 ||
            obj_map_set_bool(req, "overwrite", overwrite) < 0)
                return log_oom();
        for (int i = 2; i < argc; i++) {
                size_t l = strlen(argv[i]);
                char *eq = strchr(argv[i], '=');
                if (!eq && l > 1 && argv[i][l - 1] == '-') {
                        argv[i][l - 1] = 0;
                        if (obj_list_append(remove, obj_new_str(argv[i])) < 0)
                                return log_oom();
                        continue;
                }
                if (!eq || eq == argv[i]) {
                        fprintf(stderr, "error: '%s' is not key=value or key-\n", argv[i]);
                        return -EINVAL;
                }
                *eq = 0;
                if (obj_map_set_str(changes, argv[i], eq + 1) < 0)
                        return log_oom();
        }
        if (obj_map_set(req, annotate ? "annotations" : "labels", TAKE_PTR(changes)) < 0 ||
            obj_map_set(req, "remove", TAKE_PTR(remove)) < 0)
                return log_oom();
        int r = call_ok(req, &resp);
        if (r < 0)
                return r;
        printf("%s\n", strempty(obj_get_str(resp, "message")));
        return 0;
}

static int cmd_scale(int argc, char **argv, int64_t replicas) {
        if (argc != 2 || replicas < 0) {
                fprintf(stderr, "Usage: anvilctl scale KIND NAME --replicas N\n");
                return -EINVAL;
        }
        const KindInfo *k = resolve_kind(argv[0]);
        if (!k)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *req = request("scale"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", argv[1]) < 0 ||
            obj_map_set_int(req, "replicas", replicas) < 0)
                return log_oom();
        int r = call_ok(req, &resp);
        if (r < 0)
                return r;
        printf("%s\n", strempty(obj_get_str(resp, "message")));
        return 0;
}

static int cmd_info(void) {
        _cleanup_(obj_freep) Obj *req = request("info"), *resp = NULL;
        if (!req)
                return log_oom();
        int r = call_ok(req, &resp);
        if (r < 0)
                return r;
        const Obj *o = obj_map_get(resp, "object");
        if (arg_output && (streq(arg_output, "json") || streq(arg_output, "yaml"))) {
                _cleanup_free_ char *text = NULL;
                r = streq(arg_output, "json") ? json_emit(o, true, &text) : yaml_emit(o, &text);
                if (r < 0)
                        return r;
                printf("%s%s", text, streq(arg_output, "json") ? "\n" : "");
                return 0;
        }
        printf("Coordinator:     %s\n", strna(obj_get_str(o, "endpoint")));
        printf("Public key:      %s\n", strna(obj_get_str(o, "publicKey")));
        printf("Key fingerprint: %s\n", strna(obj_get_str(o, "fingerprint")));
        printf("Version:         %s\n", strna(obj_get_str(o, "version")));
        int64_t v;
        if (obj_get_int(o, "hosts", &v))
                printf("Hosts:           %lld enrolled", (long long)v);
        if (obj_get_int(o, "connected", &v))
                printf(", %lld connected", (long long)v);
        printf("\n");
        if (obj_get_int(o, "revision", &v))
                printf("Store revision:  %lld\n", (long long)v);
        return 0;
}

static int cmd_token(int argc, char **argv, const char *ttl, int64_t uses, const char *labels,
                     const char *description, bool agent_args, bool pxe) {
        if (argc < 1) {
                fprintf(stderr, "Usage: anvilctl token create|list|delete\n");
                return -EINVAL;
        }
        int r;
        if (streq(argv[0], "create")) {
                int64_t ttl_us = 24LL * 3600 * USEC_PER_SEC;
                if (ttl && (parse_go_duration(ttl, &ttl_us) < 0 || ttl_us < 0)) {
                        fprintf(stderr, "error: --ttl: invalid duration '%s' (e.g. 24h, 30m, 0 "
                                        "for never)\n",
                                ttl);
                        return -EINVAL;
                }
                _cleanup_(obj_freep) Obj *req = request("token-create"), *resp = NULL;
                if (!req || obj_map_set_int(req, "ttlSeconds", ttl_us / (int64_t)USEC_PER_SEC) < 0 ||
                    obj_map_set_int(req, "uses", uses) < 0 ||
                    (description && obj_map_set_str(req, "description", description) < 0))
                        return log_oom();
                if (labels) {
                        Obj *l = NULL;
                        if ((r = parse_kv_list(labels, &l)) < 0)
                                return r;
                        if (obj_map_set(req, "labels", l) < 0)
                                return log_oom();
                }
                r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                const char *token = obj_get_str(resp, "text");
                const Obj *info = obj_map_get(resp, "object");
                printf("%s\n", strna(token));
                if (agent_args)
                        printf("anvil-agent --coordinator %s --coordinator-key '%s' --token %s\n",
                               strna(obj_get_str(info, "endpoint")),
                               strna(obj_get_str(info, "publicKey")), strna(token));
                if (pxe)
                        printf("anvil.coordinator=%s anvil.coordinator_key=%s anvil.token=%s\n",
                               strna(obj_get_str(info, "endpoint")),
                               strna(obj_get_str(info, "publicKey")), strna(token));
                return 0;
        }
        if (streq(argv[0], "list")) {
                _cleanup_(obj_freep) Obj *req = request("token-list"), *resp = NULL;
                if (!req)
                        return log_oom();
                r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                const Obj *items = obj_map_get(resp, "items");
                if (obj_len(items) == 0) {
                        fprintf(stderr, "No tokens.\n");
                        return 0;
                }
                printf("%-8s %-22s %-10s %-30s %s\n", "ID", "EXPIRES", "USES-LEFT", "LABELS",
                       "DESCRIPTION");
                OBJ_LIST_FOREACH(t, items, i) {
                        int64_t exp = 0, left = -1;
                        obj_get_int(t, "expires", &exp);
                        obj_get_int(t, "usesLeft", &left);
                        char ts[32] = "never", uses_s[24] = "unlimited", lb[256] = "";
                        if (exp > 0) {
                                format_rfc3339(exp, ts);
                                if (exp < (int64_t)now_usec(CLOCK_REALTIME))
                                        strcat(ts, " (expired)");
                        }
                        if (left >= 0)
                                snprintf(uses_s, sizeof(uses_s), "%lld", (long long)left);
                        size_t n = 0;
                        OBJ_MAP_FOREACH(e, obj_map_get(t, "labels")) {
                                int w = snprintf(lb + n, sizeof(lb) - n, "%s%s=%s", n ? "," : "",
                                                 e->key, strempty(obj_str(e->value)));
                                if (w > 0 && (size_t)w < sizeof(lb) - n)
                                        n += (size_t)w;
                        }
                        printf("%-8s %-22s %-10s %-30s %s\n", strna(obj_get_str(t, "id")), ts,
                               uses_s, n ? lb : "<none>", strempty(obj_get_str(t, "description")));
                }
                return 0;
        }
        if (streq(argv[0], "delete") && argc == 2) {
                _cleanup_(obj_freep) Obj *req = request("token-delete"), *resp = NULL;
                /* Accept the whole token too: only its id is used. */
                char id[16];
                snprintf(id, sizeof(id), "%.6s", argv[1]);
                if (!req || obj_map_set_str(req, "name", id) < 0)
                        return log_oom();
                r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                printf("%s\n", strempty(obj_get_str(resp, "message")));
                return 0;
        }
        fprintf(stderr, "Usage: anvilctl token create [--ttl 24h] [--uses N] [--labels k=v,...] "
                        "[--description TEXT] [--agent-args] [--pxe] | token list | token delete "
                        "ID\n");
        return -EINVAL;
}

static int cmd_host(int argc, char **argv) {
        if (argc == 2 && streq(argv[0], "revoke")) {
                _cleanup_(obj_freep) Obj *req = request("host-revoke"), *resp = NULL;
                if (!req || obj_map_set_str(req, "name", argv[1]) < 0)
                        return log_oom();
                int r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                printf("%s\n", strempty(obj_get_str(resp, "message")));
                return 0;
        }
        if (argc == 2 && streq(argv[0], "delete"))
                return cmd_delete_one("host", argv[1]);
        fprintf(stderr, "Usage: anvilctl host revoke NAME | anvilctl host delete NAME\n");
        return -EINVAL;
}

/* ---- rollout ---- */

static int get_one(const char *kind, const char *name, Obj **ret) {
        _cleanup_(obj_freep) Obj *req = request("get"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0)
                return log_oom();
        int r = call_ok(req, &resp);
        if (r < 0)
                return r;
        Obj *o = obj_list_get(obj_map_get(resp, "items"), 0);
        if (!o)
                return -ENOENT;
        *ret = obj_dup(o);
        return *ret ? 0 : log_oom();
}

/* One line of where a rollout is, the way kubectl rollout status says it. Returns 1 when it
 * is complete, 0 while it goes on, -EIO when it stopped on a failure or is paused. */
static int rollout_line(const KindInfo *k, const Obj *o, char *buf, size_t bufsz) {
        const char *name = obj_get_str(o, "metadata.name");
        bool md = streq(k->kind, "MachineDeployment");
        int64_t gen = 0, og = 0, replicas = 1, updated = 0, have = 0, available = 0;
        obj_get_int(o, "metadata.generation", &gen);
        obj_get_int(o, "status.observedGeneration", &og);
        obj_get_int(o, "spec.replicas", &replicas);
        obj_get_int(o, "status.updatedReplicas", &updated);
        obj_get_int(o, "status.replicas", &have);
        obj_get_int(o, md ? "status.availableReplicas" : "status.readyReplicas", &available);
        const char *ctype = md ? "MachinesUpToDate" : "MachinesSpecUpToDate";
        const Obj *cond = NULL;
        OBJ_LIST_FOREACH(c, obj_get(o, "status.conditions"), i)
        if (streq_ptr(obj_get_str(c, "type"), ctype))
                cond = c;
        const char *reason = obj_get_str(cond, "reason");
        const char *message = obj_get_str(cond, "message");
        if (og < gen) {
                snprintf(buf, bufsz, "Waiting for %s spec update to be observed...", k->singular);
                return 0;
        }
        if (streq_ptr(reason, "InPlaceUpgradeFailed")) {
                snprintf(buf, bufsz, "error: %s \"%s\" rollout failed: %s", k->singular, name,
                         strna(message));
                return -EIO;
        }
        if (md && obj_get_bool(o, "spec.paused", false) && streq_ptr(reason, "Paused")) {
                snprintf(buf, bufsz, "error: %s \"%s\" is paused (spec.paused: true): %s",
                         k->singular, name, strna(message));
                return -EIO;
        }
        bool extra = reason && !streq(reason, "RollingUpdateInProgress") &&
                     !streq(reason, "RollingUpdate") && !streq(reason, "UpgradingInPlace");
        if (updated < replicas) {
                snprintf(buf, bufsz,
                         "Waiting for %s \"%s\" rollout to finish: %lld out of %lld new replicas "
                         "have been updated...%s%s%s",
                         k->singular, name, (long long)updated, (long long)replicas,
                         extra ? " (" : "", extra ? strna(message) : "", extra ? ")" : "");
                return 0;
        }
        if (have > updated) {
                snprintf(buf, bufsz,
                         "Waiting for %s \"%s\" rollout to finish: %lld old replicas are pending "
                         "termination...",
                         k->singular, name, (long long)(have - updated));
                return 0;
        }
        if (available < updated) {
                snprintf(buf, bufsz,
                         "Waiting for %s \"%s\" rollout to finish: %lld of %lld updated replicas "
                         "are available...",
                         k->singular, name, (long long)available, (long long)updated);
                return 0;
        }
        snprintf(buf, bufsz, "%s \"%s\" successfully rolled out", k->singular, name);
        return 1;
}

#define REVISION_ANNOTATION "machinedeployment.clusters.x-k8s.io/revision"

static long long revision_of(const Obj *o) {
        const char *s =
                obj_str(obj_map_get(obj_get(o, "metadata.annotations"), REVISION_ANNOTATION));
        return s ? strtoll(s, NULL, 10) : 0;
}

static int cmp_revision(const void *a, const void *b) {
        long long x = revision_of(*(Obj *const *)a), y = revision_of(*(Obj *const *)b);
        return x < y ? -1 : x > y;
}

/* anvilctl rollout status md|kcp NAME (waits, as kubectl does) | rollout history md NAME */
static int cmd_rollout(int argc, char **argv) {
        if (argc != 3 || (!streq(argv[0], "status") && !streq(argv[0], "history"))) {
                fprintf(stderr, "Usage: anvilctl rollout status md|kcp NAME\n"
                                "       anvilctl rollout history md NAME\n");
                return -EINVAL;
        }
        const KindInfo *k = resolve_kind(argv[1]);
        if (!k)
                return -EINVAL;
        bool md = streq(k->kind, "MachineDeployment");
        if (!md && (!streq(k->kind, "KubeadmControlPlane") || streq(argv[0], "history"))) {
                fprintf(stderr, "error: rollout %s works on %s\n", argv[0],
                        streq(argv[0], "history") ? "machinedeployments"
                                                  : "machinedeployments and kubeadmcontrolplanes");
                return -EINVAL;
        }
        const char *name = argv[2];
        if (streq(argv[0], "history")) {
                _cleanup_(obj_freep) Obj *o = NULL;
                int r = get_one(k->kind, name, &o);
                if (r < 0)
                        return r;
                _cleanup_(obj_freep) Obj *req = request("get"), *resp = NULL;
                _cleanup_free_ char *sel = strjoin("cluster.x-k8s.io/deployment-name=", name);
                if (!req || !sel || obj_map_set_str(req, "kind", "MachineSet") < 0 ||
                    obj_map_set_str(req, "selector", sel) < 0)
                        return log_oom();
                if ((r = call_ok(req, &resp)) < 0)
                        return r;
                Obj *items = obj_map_get(resp, "items");
                if (obj_len(items) > 1)
                        qsort(items->list.items, obj_len(items), sizeof(Obj *), cmp_revision);
                long long cur = revision_of(o);
                printf("machinedeployment/%s\n%-9s %-40s %-10s %-9s %-6s %s\n", name, "REVISION",
                       "MACHINESET", "VERSION", "REPLICAS", "READY", "CURRENT");
                OBJ_LIST_FOREACH(ms, items, i) {
                        int64_t want = 0, ready = 0;
                        obj_get_int(ms, "spec.replicas", &want);
                        obj_get_int(ms, "status.readyReplicas", &ready);
                        printf("%-9lld %-40s %-10s %-9lld %-6lld %s\n", revision_of(ms),
                               strna(obj_get_str(ms, "metadata.name")),
                               strna(obj_get_str(ms, "spec.template.spec.version")),
                               (long long)want, (long long)ready,
                               revision_of(ms) == cur ? "*" : "");
                }
                return 0;
        }
        char last[1024] = "";
        for (;;) {
                _cleanup_(obj_freep) Obj *o = NULL;
                int r = get_one(k->kind, name, &o);
                if (r < 0)
                        return r;
                char line[1024];
                int done = rollout_line(k, o, line, sizeof(line));
                if (!streq(line, last)) {
                        fprintf(done < 0 ? stderr : stdout, "%s\n", line);
                        fflush(stdout);
                        snprintf(last, sizeof(last), "%s", line);
                }
                if (done != 0)
                        return done < 0 ? done : 0;
                sleep(1);
        }
}

static void help(void) {
        printf("anvilctl — operate Anvil, bare-metal Kubernetes lifecycle management.\n\n"
               "Usage: anvilctl [GLOBAL OPTIONS] COMMAND [ARGS]\n\n"
               "Commands:\n"
               "  apply -f FILE|DIR|-            create or update objects from manifests\n"
               "  get KIND [NAME]                list or show objects (-o wide|yaml|json|name)\n"
               "  get kubeconfig CLUSTER         an admin kubeconfig for a cluster\n"
               "  describe KIND NAME             details, conditions, events; a cluster as a "
               "tree\n"
               "  delete KIND NAME | -f FILE     delete objects\n"
               "  scale KIND NAME --replicas N   scale a machinedeployment, machineset or kcp\n"
               "  rollout status|history md NAME where a rollout is (status waits); revisions\n"
               "  label KIND NAME k=v ... [k-]   set or remove labels (--overwrite)\n"
               "  annotate KIND NAME k=v ...     set or remove annotations\n"
               "  token create|list|delete       enrollment tokens\n"
               "  host revoke|delete NAME        cut a host off / forget it\n"
               "  info                           the coordinator's endpoint and public key\n"
               "  version                        client and server versions\n\n"
               "Global options:\n"
               "  -s, --server ADDR     admin socket (default $ANVIL_SERVER or %s)\n"
               "  -n, --namespace NS    namespace (default \"default\")\n"
               "  -A, --all-namespaces  list across namespaces\n"
               "  -l, --selector SEL    label selector (k=v,k!=v,k in (a,b),!k)\n"
               "  -o, --output FORMAT   wide, yaml, json, name\n"
               "      --timeout SEC     how long to wait for the coordinator (default 30)\n"
               "  -h, --help            this help\n\n"
               "Kinds accept kubectl's names: clusters (cl), machines (ma), machinesets (ms),\n"
               "machinedeployments (md), kubeadmcontrolplanes (kcp), machinehealthchecks "
               "(mhc),\nkubeadmconfigs, kubeadmconfigtemplates, anvilclusters, anvilmachines,\n"
               "anvilmachinetemplates, hosts, secrets, events.\n",
               DEFAULT_SERVER);
}

int main(int argc, char **argv) {
        enum {
                ARG_TIMEOUT = 0x100,
                ARG_REPLICAS,
                ARG_TTL,
                ARG_USES,
                ARG_LABELS,
                ARG_DESCRIPTION,
                ARG_AGENT_ARGS,
                ARG_PXE,
                ARG_OVERWRITE,
                ARG_VERSION,
        };
        static const struct option options[] = {
                {"server", required_argument, NULL, 's'},
                {"namespace", required_argument, NULL, 'n'},
                {"all-namespaces", no_argument, NULL, 'A'},
                {"selector", required_argument, NULL, 'l'},
                {"output", required_argument, NULL, 'o'},
                {"filename", required_argument, NULL, 'f'},
                {"timeout", required_argument, NULL, ARG_TIMEOUT},
                {"replicas", required_argument, NULL, ARG_REPLICAS},
                {"ttl", required_argument, NULL, ARG_TTL},
                {"uses", required_argument, NULL, ARG_USES},
                {"labels", required_argument, NULL, ARG_LABELS},
                {"description", required_argument, NULL, ARG_DESCRIPTION},
                {"agent-args", no_argument, NULL, ARG_AGENT_ARGS},
                {"pxe", no_argument, NULL, ARG_PXE},
                {"overwrite", no_argument, NULL, ARG_OVERWRITE},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        const char *file = NULL, *ttl = NULL, *labels = NULL, *description = NULL;
        int64_t replicas = -1, uses = 0;
        bool agent_args = false, pxe = false, overwrite = false;
        int c;
        log_setup("anvilctl", LOG_TARGET_STDERR);
        log_set_max_level(LOG_WARNING);
        while ((c = getopt_long(argc, argv, "s:n:Al:o:f:h", options, NULL)) >= 0) {
                char *end;
                switch (c) {
                case 's':
                        arg_server = optarg;
                        break;
                case 'n':
                        arg_namespace = optarg;
                        break;
                case 'A':
                        arg_all_namespaces = true;
                        break;
                case 'l':
                        arg_selector = optarg;
                        break;
                case 'o':
                        arg_output = optarg;
                        break;
                case 'f':
                        file = optarg;
                        break;
                case ARG_TIMEOUT:
                        arg_timeout_sec = (int)strtol(optarg, &end, 10);
                        if (*end || arg_timeout_sec <= 0) {
                                fprintf(stderr, "error: --timeout: not a positive number: %s\n",
                                        optarg);
                                return 1;
                        }
                        break;
                case ARG_REPLICAS:
                        replicas = strtoll(optarg, &end, 10);
                        if (*end || replicas < 0) {
                                fprintf(stderr, "error: --replicas: not a number >= 0: %s\n",
                                        optarg);
                                return 1;
                        }
                        break;
                case ARG_TTL:
                        ttl = optarg;
                        break;
                case ARG_USES:
                        uses = strtoll(optarg, &end, 10);
                        if (*end || uses < 0) {
                                fprintf(stderr, "error: --uses: not a number >= 0: %s\n", optarg);
                                return 1;
                        }
                        break;
                case ARG_LABELS:
                        labels = optarg;
                        break;
                case ARG_DESCRIPTION:
                        description = optarg;
                        break;
                case ARG_AGENT_ARGS:
                        agent_args = true;
                        break;
                case ARG_PXE:
                        pxe = true;
                        break;
                case ARG_OVERWRITE:
                        overwrite = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("anvilctl %s\n", ANVIL_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Run 'anvilctl --help' for usage.\n");
                        return 1;
                }
        }
        if (optind >= argc) {
                help();
                return 1;
        }
        const char *cmd = argv[optind];
        int n = argc - optind - 1;
        char **rest = argv + optind + 1;
        int r;
        if (streq(cmd, "apply")) {
                if (!file || n > 0) {
                        fprintf(stderr, "Usage: anvilctl apply -f FILE|DIR|-\n");
                        return 1;
                }
                r = apply_path(file);
        } else if (streq(cmd, "get"))
                r = cmd_get(n, rest);
        else if (streq(cmd, "describe"))
                r = cmd_describe(n, rest);
        else if (streq(cmd, "delete"))
                r = cmd_delete(n, rest, file);
        else if (streq(cmd, "scale"))
                r = cmd_scale(n, rest, replicas);
        else if (streq(cmd, "label"))
                r = cmd_label(n, rest, false, overwrite);
        else if (streq(cmd, "annotate"))
                r = cmd_label(n, rest, true, overwrite);
        else if (streq(cmd, "token"))
                r = cmd_token(n, rest, ttl, uses, labels, description, agent_args, pxe);
        else if (streq(cmd, "host"))
                r = cmd_host(n, rest);
        else if (streq(cmd, "rollout"))
                r = cmd_rollout(n, rest);
        else if (streq(cmd, "info"))
                r = cmd_info();
        else if (streq(cmd, "version")) {
                printf("Client Version: %s\n", ANVIL_VERSION);
                _cleanup_(obj_freep) Obj *req = request("version"), *resp = NULL;
                r = req ? call_ok(req, &resp) : -ENOMEM;
                if (r >= 0)
                        printf("Server Version: %s\n",
                               strna(obj_get_str(obj_map_get(resp, "object"), "version")));
        } else {
                fprintf(stderr, "error: unknown command \"%s\"\nRun 'anvilctl --help' for usage.\n",
                        cmd);
                return 1;
        }
        return r < 0 ? 1 : 0;
}
