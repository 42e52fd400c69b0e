/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anvilctl: the operator's command line, a short-lived client of the coordinator's admin
 * socket. It sends manifests whole, with their file names (the coordinator parses and
 * validates them, so errors name FILE:LINE:COLUMN), and prints answers the way kubectl and
 * clusterctl print theirs: aligned tables, -o yaml|json|name|wide, -w to follow changes,
 * exit code 0 on success and 1 on any failure. `explain` needs no coordinator: the kind
 * tables are compiled in.
 */
#include <ctype.h>
#include <dirent.h>
#include <getopt.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <zmq.h>

#include "config.h"
#include "explain.h"
#include "fileio.h"
#include "json.h"
#include "kinds.h"
#include "log.h"
#include "schema.h"
#include "wire.h"
#include "yamlio.h"

#define DEFAULT_SERVER "/run/anvil/admin.sock"
/* A watch request is held by the coordinator for up to 20 s; wait a little longer. */
#define WATCH_CALL_TIMEOUT_SEC 40

static const char *arg_server;
static const char *arg_namespace;
static bool arg_all_namespaces;
static const char *arg_selector;
static const char *arg_output;
static int arg_timeout_sec = 30;
static bool arg_timeout_given;
static uint64_t arg_timeout_usec;
static bool arg_watch;
static bool arg_watch_only;
static bool arg_watch_events;
static bool arg_show_labels;
static bool arg_wait;
static bool arg_all;
static bool arg_force; /* delete host: even a claimed one */
static bool arg_recursive;
static bool arg_markdown;
static bool arg_client_only;
static int call_timeout_override_sec;
/* A watch: the connection closing (a coordinator restarting) ends the call at once with
 * -ECONNRESET instead of waiting out the timeout for an answer that was lost with it; and
 * while it resumes, connection failures are quiet (the caller reports the end). */
static bool call_watching;

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
                if (call_watching)
                        return -ENOENT;
                fprintf(stderr,
                        "error: cannot reach the coordinator: %s does not exist (is "
                        "anvil-coordinator running? set --server or ANVIL_SERVER)\n",
                        path);
                return -ENOENT;
        }
        /* ZeroMQ connects in the background and would wait out the timeout on a socket file
         * that a killed coordinator left behind, or that we may not open: ask the kernel
         * first. */
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (path && strlen(path) < sizeof(sa.sun_path)) {
                strcpy(sa.sun_path, path);
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                int q = fd < 0                                                ? 0
                        : connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno
                                                                              : 0;
                if (fd >= 0)
                        close(fd);
                if (q == -ECONNREFUSED && call_watching)
                        return q;
                if (q == -ECONNREFUSED) {
                        fprintf(stderr,
                                "error: cannot reach the coordinator: nothing listens on %s (left "
                                "by a coordinator that stopped? is anvil-coordinator running?)\n",
                                path);
                        return q;
                }
                if (q == -EACCES) {
                        fprintf(stderr,
                                "error: cannot reach the coordinator: permission denied on %s "
                                "(root or members of the group anvil)\n",
                                path);
                        return q;
                }
        }
        int secs = call_timeout_override_sec > 0 ? call_timeout_override_sec : arg_timeout_sec;
        void *ctx = zmq_ctx_new();
        void *sock = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0, timeout = secs * 1000;
        int64_t maxmsg = WIRE_MAX_ADMIN_MESSAGE;
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
        int r = 0;
        char *buf = NULL;
        size_t size;
        void *mon = NULL;
        if (call_watching) {
                /* Disconnections of this socket, as events on a PAIR socket we poll too. */
                char monep[64];
                snprintf(monep, sizeof(monep), "inproc://anvilctl-monitor-%p", sock);
                if (zmq_socket_monitor(sock, monep, ZMQ_EVENT_DISCONNECTED) == 0 &&
                    (mon = zmq_socket(ctx, ZMQ_PAIR)) && zmq_connect(mon, monep) < 0) {
                        zmq_close(mon);
                        mon = NULL;
                }
                if (mon)
                        zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof(zero));
        }
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
        if (mon) {
                zmq_pollitem_t items[] = {{sock, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
                int n = zmq_poll(items, 2, (long)secs * 1000);
                if (n >= 0 && !(items[0].revents & ZMQ_POLLIN) && (items[1].revents & ZMQ_POLLIN)) {
                        r = -ECONNRESET; /* the coordinator went away with our request */
                        goto out;
                }
        }
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, mon ? ZMQ_DONTWAIT : 0) < 0) {
                r = negative_errno();
                zmq_msg_close(&msg);
                if (r == -EAGAIN)
                        fprintf(stderr,
                                "error: no answer from the coordinator at %s within %ds (is it "
                                "running?)\n",
                                ep, secs);
                else
                        fprintf(stderr, "error: %s\n", strerror(-r));
                goto out;
        }
        MsgType type;
        char err[256];
        r = wire_decode(CHANNEL_ADMIN_RESPONSE, zmq_msg_data(&msg), zmq_msg_size(&msg), &type, ret,
                        err, sizeof(err));
        zmq_msg_close(&msg);
        if (r < 0)
                fprintf(stderr, "error: bad answer from the coordinator: %s\n", err);
out:
        free(buf);
        if (mon) {
                zmq_socket_monitor(sock, NULL, 0);
                zmq_close(mon);
        }
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

static void print_failure(const Obj *resp) {
        const Obj *problems = obj_map_get(resp, "problems");
        OBJ_LIST_FOREACH(p, problems, i)
        fprintf(stderr, "%s\n", strempty(obj_str(p)));
        const char *code = obj_get_str(resp, "code");
        fprintf(stderr, "Error%s%s%s: %s\n", code ? " (" : "", strempty(code), code ? ")" : "",
                strna(obj_get_str(resp, "message")));
}

/* Sends req; on failure prints the coordinator's message and problems. */
static int call_ok(Obj *req, Obj **ret) {
        _cleanup_(obj_freep) Obj *resp = NULL;
        int r = call(req, &resp);
        if (r < 0)
                return r;
        if (!obj_get_bool(resp, "ok", false)) {
                print_failure(resp);
                return -EIO;
        }
        if (ret)
                *ret = TAKE_PTR(resp);
        return 0;
}

static const char *resp_code(const Obj *resp) {
        return obj_get_bool(resp, "ok", false) ? NULL : strempty(obj_get_str(resp, "code"));
}

/* "machinedeployment.cluster.x-k8s.io", as kubectl names a resource in its messages. */
static const char *qualified(const KindInfo *k, char buf[static 128]) {
        snprintf(buf, 128, "%s%s%s", k->singular, isempty(k->group) ? "" : ".", k->group);
        return buf;
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
        const char *path; /* into the object; "=name" = computed */
        bool wide;        /* only with -o wide */
} Column;

typedef struct Printer {
        const char *kind;
        Column cols[12];
} Printer;

/* The columns of Cluster API's printer columns (additionalPrinterColumns), plus Anvil's. */
static const Printer printers[] = {
        {"Cluster",
         {{"NAME", "metadata.name"},
          {"PHASE", "status.phase"},
          {"READY", "=ready"},
          {"AGE", "=age"},
          {"ENDPOINT", "=endpoint", true}}},
        {"Machine",
         {{"NAME", "metadata.name"},
          {"CLUSTER", "spec.clusterName"},
          {"NODENAME", "status.nodeRef.name"},
          {"PROVIDERID", "spec.providerID"},
          {"PHASE", "status.phase"},
          {"AGE", "=age"},
          {"VERSION", "spec.version"},
          {"READY", "=ready", true}}},
        {"MachineSet",
         {{"NAME", "metadata.name"},
          {"CLUSTER", "spec.clusterName"},
          {"DESIRED", "spec.replicas", true},
          {"REPLICAS", "status.replicas"},
          {"READY", "status.readyReplicas"},
          {"AVAILABLE", "status.availableReplicas"},
          {"AGE", "=age"},
          {"VERSION", "spec.template.spec.version"}}},
        {"MachineDeployment",
         {{"NAME", "metadata.name"},
          {"CLUSTER", "spec.clusterName"},
          {"DESIRED", "spec.replicas", true},
          {"REPLICAS", "status.replicas"},
          {"READY", "status.readyReplicas"},
          {"UPDATED", "status.updatedReplicas"},
          {"UNAVAILABLE", "status.unavailableReplicas"},
          {"PHASE", "status.phase"},
          {"AGE", "=age"},
          {"VERSION", "spec.template.spec.version"}}},
        {"MachineHealthCheck",
         {{"NAME", "metadata.name"},
          {"CLUSTER", "spec.clusterName"},
          {"EXPECTEDMACHINES", "status.expectedMachines"},
          {"MAXUNHEALTHY", "spec.maxUnhealthy"},
          {"CURRENTHEALTHY", "status.currentHealthy"},
          {"AGE", "=age"}}},
        {"KubeadmControlPlane",
         {{"NAME", "metadata.name"},
          {"CLUSTER", "metadata.labels.cluster"},
          {"INITIALIZED", "status.initialized"},
          {"API SERVER AVAILABLE", "status.ready"},
          {"DESIRED", "spec.replicas", true},
          {"REPLICAS", "status.replicas"},
          {"READY", "status.readyReplicas"},
          {"UPDATED", "status.updatedReplicas"},
          {"UNAVAILABLE", "status.unavailableReplicas"},
          {"AGE", "=age"},
          {"VERSION", "spec.version"}}},
        {"KubeadmConfig",
         {{"NAME", "metadata.name"},
          {"CLUSTER", "metadata.labels.cluster"},
          {"READY", "status.ready"},
          {"DATASECRET", "status.dataSecretName"},
          {"AGE", "=age"}}},
        {"AnvilCluster",
         {{"NAME", "metadata.name"},
          {"CLUSTER", "metadata.labels.cluster"},
          {"READY", "status.ready"},
          {"ENDPOINT", "=endpoint"},
          {"AGE", "=age"}}},
        {"AnvilMachine",
         {{"NAME", "metadata.name"},
          {"CLUSTER", "metadata.labels.cluster"},
          {"HOST", "status.hostRef.name"},
          {"READY", "status.ready"},
          {"PROVIDERID", "spec.providerID"},
          {"AGE", "=age"}}},
        {"Host",
         {{"NAME", "metadata.name"},
          {"PHASE", "status.phase"},
          {"CLAIMED-BY", "=claimed"},
          {"IP", "=ip"},
          {"CPU", "status.facts.cpu.count"},
          {"MEMORY", "=memory"},
          {"LAST-SEEN", "=lastseen"},
          {"PRODUCT-UUID", "status.facts.productUUID", true},
          {"LABELS", "=labels", true}}},
        {"Event",
         {{"LAST SEEN", "=lastts"},
          {"TYPE", "type"},
          {"REASON", "reason"},
          {"OBJECT", "=involved"},
          {"MESSAGE", "message"}}},
        {"Secret",
         {{"NAME", "metadata.name"}, {"TYPE", "type"}, {"DATA", "=datacount"}, {"AGE", "=age"}}},
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
                return asprintf_safe("%s/%s", strempty(obj_get_str(o, "involvedObject.kind")),
                                     strempty(obj_get_str(o, "involvedObject.name")));
        if (streq(what, "datacount"))
                return asprintf_safe("%zu", obj_len(obj_map_get(o, "data")));
        return strdup("");
}

#define MAX_COLUMNS 16

/* A table as kubectl prints one: columns three spaces apart, the last one unpadded. */
typedef struct Table {
        Column cols[MAX_COLUMNS];
        size_t ncols;
        size_t width[MAX_COLUMNS];
        const char *name_prefix; /* "machine.cluster.x-k8s.io/" when several kinds print */
} Table;

static void table_init(Table *t, const KindInfo *k, bool wide, bool with_ns) {
        const Printer *p = &default_printer;
        for (size_t i = 0; i < ELEMENTSOF(printers); i++)
                if (streq(printers[i].kind, k->kind))
                        p = &printers[i];
        *t = (Table){0};
        if (arg_watch_events)
                t->cols[t->ncols++] = (Column){"EVENT", "=event"};
        if (with_ns)
                t->cols[t->ncols++] = (Column){"NAMESPACE", "metadata.namespace"};
        for (size_t c = 0; c < ELEMENTSOF(p->cols) && p->cols[c].header; c++)
                if (!p->cols[c].wide || wide)
                        t->cols[t->ncols++] = p->cols[c];
        if (arg_show_labels)
                t->cols[t->ncols++] = (Column){"LABELS", "=labels"};
        for (size_t c = 0; c < t->ncols; c++)
                t->width[c] = strlen(t->cols[c].header);
        if (arg_watch_events)
                t->width[0] = strlen("MODIFIED");
}

static char *table_cell(const Table *t, size_t c, const Obj *o, const char *event) {
        if (streq(t->cols[c].path, "=event"))
                return strdup(strempty(event));
        if (t->name_prefix && streq(t->cols[c].path, "metadata.name"))
                return strjoin(t->name_prefix, strempty(obj_get_str(o, "metadata.name")));
        return cell(o, t->cols[c].path);
}

static void table_measure(Table *t, const Obj *items) {
        OBJ_LIST_FOREACH(o, items, i)
        for (size_t c = 0; c < t->ncols; c++) {
                _cleanup_free_ char *s = table_cell(t, c, o, "ADDED");
                size_t l = strlen(strempty(s));
                if (l > t->width[c])
                        t->width[c] = l;
        }
}

static void table_line(const Table *t, char **cells) {
        for (size_t c = 0; c < t->ncols; c++)
                printf("%-*s%s", c + 1 < t->ncols ? (int)t->width[c] : 0, strempty(cells[c]),
                       c + 1 < t->ncols ? "   " : "\n");
}

static void table_header(const Table *t) {
        char *cells[MAX_COLUMNS];
        for (size_t c = 0; c < t->ncols; c++)
                cells[c] = (char *)t->cols[c].header;
        table_line(t, cells);
}

static void table_row(const Table *t, const Obj *o, const char *event) {
        char *cells[MAX_COLUMNS];
        for (size_t c = 0; c < t->ncols; c++)
                cells[c] = table_cell(t, c, o, event);
        table_line(t, cells);
        for (size_t c = 0; c < t->ncols; c++)
                free(cells[c]);
}

static bool output_is(const char *o) {
        return streq(arg_output ? arg_output : "", o);
}

static int check_output_format(void) {
        const char *o = arg_output ? arg_output : "";
        if (isempty(o) || streq(o, "wide") || streq(o, "yaml") || streq(o, "json") ||
            streq(o, "name"))
                return 0;
        fprintf(stderr, "error: unknown output format '%s' (yaml, json, name, wide)\n", o);
        return -EINVAL;
}

/* Extra words after a command are refused: ignoring them would hide a typo (a flag
 * without its dashes, a name meant for another command). */
static int refuse_extra(const char *cmd, int argc, char **argv, int allowed) {
        if (argc <= allowed)
                return 0;
        fprintf(stderr,
                "error: unexpected argument '%s' for 'anvilctl %s'\n"
                "Run 'anvilctl %.*s --help' for usage.\n",
                argv[allowed], cmd, (int)strcspn(cmd, " "), cmd);
        return -EINVAL;
}

/* -o for a command that prints no objects, or a format it does not print, is refused rather
 * than ignored. formats: NULL-terminated; NULL = -o is not supported at all. */
static int output_allowed(const char *cmd, const char *const *formats) {
        if (!arg_output)
                return 0;
        for (const char *const *f = formats; f && *f; f++)
                if (streq(*f, arg_output))
                        return 0;
        if (!formats) {
                fprintf(stderr, "error: -o/--output is not supported by 'anvilctl %s'\n", cmd);
                return -EINVAL;
        }
        char list[128] = "";
        for (const char *const *f = formats; *f; f++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                         f == formats ? "" : ", ", *f);
        fprintf(stderr, "error: -o %s is not supported by 'anvilctl %s' (%s)\n", arg_output, cmd,
                list);
        return -EINVAL;
}

/* One object in a structured format (-o yaml|json|name); yaml documents are separated. */
static int print_object(const KindInfo *k, const Obj *o, bool first) {
        if (output_is("name")) {
                char q[128];
                printf("%s/%s\n", qualified(k, q), strempty(obj_get_str(o, "metadata.name")));
                return 0;
        }
        _cleanup_free_ char *text = NULL;
        int r = output_is("yaml") ? yaml_emit(o, &text) : json_emit(o, true, &text);
        if (r < 0)
                return r;
        if (output_is("yaml") && !first)
                fputs("---\n", stdout);
        fputs(text, stdout);
        if (output_is("json"))
                putchar('\n');
        return 0;
}

static int print_items(const KindInfo *k, Obj *items, const char *name, Table *ret_table) {
        if (output_is("yaml") || output_is("json")) {
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
                int r = output_is("yaml") ? yaml_emit(out, &text) : json_emit(out, true, &text);
                if (r < 0)
                        return r;
                fputs(text, stdout);
                if (output_is("json"))
                        putchar('\n');
                return 0;
        }
        if (output_is("name")) {
                OBJ_LIST_FOREACH(it, items, i)
                print_object(k, it, i == 0);
                return 0;
        }
        Table t;
        table_init(&t, k, output_is("wide"), arg_all_namespaces && k->namespaced);
        table_measure(&t, items);
        if (ret_table)
                *ret_table = t;
        if (obj_len(items) == 0) {
                if (arg_watch)
                        return 0;
                if (arg_all_namespaces || !k->namespaced)
                        fprintf(stderr, "No resources found\n");
                else
                        fprintf(stderr, "No resources found in %s namespace.\n",
                                arg_namespace ? arg_namespace : "default");
                return 0;
        }
        table_header(&t);
        OBJ_LIST_FOREACH(o, items, i)
        table_row(&t, o, "ADDED");
        return 0;
}

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

/* ---- apply --wait ---- */

static Obj *get_object(const KindInfo *k, const char *name) {
        _cleanup_(obj_freep) Obj *req = request("get"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0 || call(req, &resp) < 0)
                return NULL;
        return obj_dup(obj_list_get(obj_map_get(resp, "items"), 0));
}

static Obj *list_objects(const KindInfo *k, const char *selector) {
        _cleanup_(obj_freep) Obj *req = request("get"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            (selector && obj_map_set_str(req, "selector", selector) < 0) || call(req, &resp) < 0)
                return NULL;
        return obj_map_take(resp, "items");
}

static const char *ready_message(const Obj *o) {
        OBJ_LIST_FOREACH(c, obj_get(o, "status.conditions"), i)
        if (streq_ptr(obj_get_str(c, "type"), "Ready"))
                return obj_get_str(c, "message") ?: obj_get_str(c, "reason");
        return NULL;
}

static bool condition_true(const Obj *o, const char *type) {
        OBJ_LIST_FOREACH(c, obj_get(o, "status.conditions"), i)
        if (streq_ptr(obj_get_str(c, "type"), type))
                return streq_ptr(obj_get_str(c, "status"), "True");
        return false;
}

/* Appends the progress of one applied object to f; returns whether it is ready. */
static bool progress_of(const KindInfo *k, const char *name, FILE *f) {
        _cleanup_(obj_freep) Obj *o = get_object(k, name);
        if (!o) {
                fprintf(f, "  %s/%s: not found\n", k->singular, name);
                return false;
        }
        int64_t want = 1, ready = 0;
        obj_get_int(o, "spec.replicas", &want);
        obj_get_int(o, "status.readyReplicas", &ready);
        bool ok;
        char sel[300];
        if (streq(k->kind, "Cluster")) {
                ok = condition_true(o, "Ready");
                snprintf(sel, sizeof(sel), "cluster.x-k8s.io/cluster-name=%s", name);
        } else if (streq(k->kind, "MachineDeployment") || streq(k->kind, "MachineSet")) {
                int64_t rep = 0;
                obj_get_int(o, "status.replicas", &rep);
                ok = ready >= want && rep == want;
                fprintf(f, "  %s/%s: %lld of %lld machines ready\n", k->singular, name,
                        (long long)ready, (long long)want);
                snprintf(sel, sizeof(sel), "cluster.x-k8s.io/deployment-name=%s", name);
        } else if (streq(k->kind, "KubeadmControlPlane")) {
                ok = ready >= want && obj_get_bool(o, "status.initialized", false);
                fprintf(f, "  %s/%s: %lld of %lld control plane machines ready\n", k->singular,
                        name, (long long)ready, (long long)want);
                snprintf(sel, sizeof(sel), "cluster.x-k8s.io/control-plane-name=%s", name);
        } else if (streq(k->kind, "Machine"))
                return streq_ptr(obj_get_str(o, "status.phase"), "Running");
        else
                return true; /* templates, configs, secrets: there is nothing to wait for */
        if (streq(k->kind, "Cluster")) {
                if (!ok)
                        fprintf(f, "  cluster/%s: %s\n", name,
                                ready_message(o) ?: "not reconciled yet");
                return ok;
        }
        /* The machines behind it that are not there yet, and where each stands. */
        extern const KindInfo kind_machine;
        _cleanup_(obj_freep) Obj *machines = list_objects(&kind_machine, sel);
        OBJ_LIST_FOREACH(mc, machines, i) {
                const char *phase = obj_get_str(mc, "status.phase");
                if (streq_ptr(phase, "Running"))
                        continue;
                const char *msg = ready_message(mc);
                fprintf(f, "    machine/%s: %s%s%s\n", strna(obj_get_str(mc, "metadata.name")),
                        strna(phase), msg ? ": " : "", strempty(msg));
        }
        return ok;
}

/* apply --wait: until every applied object is ready, printing progress as it changes. */
static int wait_applied(const char *applied) {
        uint64_t timeout = arg_timeout_given ? arg_timeout_usec : 15 * 60 * USEC_PER_SEC;
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;
        _cleanup_free_ char *last = NULL;
        for (;;) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                if (!f)
                        return log_oom();
                bool all = true;
                _cleanup_free_ char *copy = strdup(applied);
                char *save = NULL;
                for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
                     line = strtok_r(NULL, "\n", &save)) {
                        /* "machinedeployment.cluster.x-k8s.io/demo-md-0 created" */
                        char *slash = strchr(line, '/'), *sp = strrchr(line, ' ');
                        if (!slash || !sp || sp < slash)
                                continue;
                        *slash = *sp = 0;
                        const KindInfo *k = kind_resolve(line);
                        if (k && !progress_of(k, slash + 1, f))
                                all = false;
                }
                fclose(f);
                if (all) {
                        printf("all applied objects are ready\n");
                        return 0;
                }
                if (!streq_ptr(text, last)) {
                        printf("waiting (%s):\n%s", "Ctrl-C stops waiting, not the rollout",
                               strempty(text));
                        fflush(stdout);
                        free(last);
                        last = TAKE_PTR(text);
                }
                if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                        fprintf(stderr,
                                "error: timed out after %llus waiting for the applied "
                                "objects to be ready\n",
                                (unsigned long long)(timeout / USEC_PER_SEC));
                        return -ETIMEDOUT;
                }
                usleep(1000 * 1000);
        }
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
        fflush(stdout);
        return arg_wait ? wait_applied(strempty(obj_get_str(resp, "text"))) : 0;
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
                        if ((l > 5 && streq(n + l - 5, ".yaml")) ||
                            (l > 4 && streq(n + l - 4, ".yml")) ||
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

/* ---- commands ---- */

static const KindInfo *resolve_kind(const char *name) {
        const KindInfo *k = kind_resolve(name);
        if (!k)
                fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", name);
        return k;
}

/* "kind/name" or "kind name": kubectl takes both. */
static void split_kind_name(int argc, char **argv, char kindbuf[static 128], const char **kind,
                            const char **name) {
        *kind = argc > 0 ? argv[0] : NULL;
        *name = argc > 1 ? argv[1] : NULL;
        const char *slash = *kind ? strchr(*kind, '/') : NULL;
        if (slash) {
                snprintf(kindbuf, 128, "%.*s", (int)(slash - *kind), *kind);
                *name = slash + 1;
                *kind = kindbuf;
        }
}

/* The objects of a kind (or the one named). With missing_ok, a name that is not there is
 * -ENOENT, quietly (get KIND,KIND NAME looks in every kind). */
static int list_ex(const KindInfo *k, const char *name, bool missing_ok, Obj **ret_items,
                   int64_t *ret_rev) {
        _cleanup_(obj_freep) Obj *req = request("get"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            (name && obj_map_set_str(req, "name", name) < 0) ||
            (arg_selector && obj_map_set_str(req, "selector", arg_selector) < 0))
                return log_oom();
        int r = call(req, &resp);
        if (r < 0)
                return r;
        if (missing_ok && streq_ptr(resp_code(resp), "NotFound"))
                return -ENOENT;
        if (!obj_get_bool(resp, "ok", false)) {
                print_failure(resp);
                return -EIO;
        }
        *ret_rev = 0;
        obj_get_int(resp, "revision", ret_rev);
        *ret_items = obj_map_take(resp, "items");
        return *ret_items ? 0 : -EBADMSG;
}

static int list(const KindInfo *k, const char *name, Obj **ret_items, int64_t *ret_rev) {
        return list_ex(k, name, false, ret_items, ret_rev);
}

/* One watch round trip: the changes after *rev (possibly none), *rev advanced. -ESTALE when
 * the coordinator no longer has them (list again). */
static int watch_once(const KindInfo *k, const char *name, int64_t *rev, uint64_t deadline,
                      Obj **ret_items) {
        _cleanup_(obj_freep) Obj *req = request("watch"), *resp = NULL;
        if (deadline) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                int64_t left = now < deadline ? (int64_t)((deadline - now) / USEC_PER_SEC) : 0;
                if (req && obj_map_set_int(req, "timeoutSeconds", left < 1 ? 1 : left) < 0)
                        return log_oom();
        }
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            (name && obj_map_set_str(req, "name", name) < 0) ||
            (arg_selector && obj_map_set_str(req, "selector", arg_selector) < 0) ||
            obj_map_set_int(req, "revision", *rev) < 0)
                return log_oom();
        call_timeout_override_sec = WATCH_CALL_TIMEOUT_SEC;
        call_watching = true;
        int r = call(req, &resp);
        call_watching = false;
        call_timeout_override_sec = 0;
        if (r < 0)
                return r;
        if (streq_ptr(resp_code(resp), "Expired"))
                return -ESTALE;
        if (resp_code(resp)) {
                print_failure(resp);
                return -EIO;
        }
        obj_get_int(resp, "revision", rev);
        *ret_items = obj_map_take(resp, "items");
        return 0;
}

/* Follows changes as kubectl get -w does: one row (or document) per change, until killed. */
static int watch_loop(const KindInfo *k, const char *name, int64_t rev, Table *t, bool first) {
        uint64_t gone_since = 0;
        for (;;) {
                _cleanup_(obj_freep) Obj *items = NULL;
                int r = watch_once(k, name, &rev, 0, &items);
                if (r == -ECONNRESET || r == -ECONNREFUSED || r == -ENOENT) {
                        /* The coordinator restarted (or is restarting): the store kept the
                         * revisions, so the watch resumes where it was once it answers; up to
                         * --timeout, as a reflector retries, then the watch ends. */
                        uint64_t now = now_usec(CLOCK_MONOTONIC);
                        if (!gone_since)
                                gone_since = now;
                        if (now - gone_since > (uint64_t)arg_timeout_sec * USEC_PER_SEC) {
                                _cleanup_free_ char *ep = server_endpoint();
                                fprintf(stderr,
                                        "error: the watch ended: the coordinator at %s went "
                                        "away and did not come back within %ds (--timeout)\n",
                                        strna(ep), arg_timeout_sec);
                                return r;
                        }
                        usleep(r == -ECONNRESET ? 100 * 1000 : 500 * 1000);
                        continue;
                }
                gone_since = 0;
                if (r == -ESTALE) {
                        /* Too far behind: list again and go on from there, as a reflector does. */
                        _cleanup_(obj_freep) Obj *all = NULL;
                        r = list(k, name, &all, &rev);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r < 0)
                        return r;
                OBJ_LIST_FOREACH(it, items, i) {
                        const Obj *o = obj_map_get(it, "object");
                        const char *type = obj_get_str(it, "type");
                        if (t) {
                                if (first)
                                        table_header(t);
                                table_row(t, o, type);
                        } else if ((r = print_object(k, o, first)) < 0)
                                return r;
                        first = false;
                }
                fflush(stdout);
        }
}

/* Categories, as CRDs declare them for kubectl: "cluster-api" holds every Cluster API kind
 * (infrastructure and bootstrap providers' included); "all" what an operator looks at
 * first — the objects with a lifecycle, and the hosts. */
static const char *const category_cluster_api[] = {"Cluster",
                                                   "AnvilCluster",
                                                   "KubeadmControlPlane",
                                                   "MachineDeployment",
                                                   "MachineSet",
                                                   "Machine",
                                                   "MachineHealthCheck",
                                                   "KubeadmConfig",
                                                   "KubeadmConfigTemplate",
                                                   "AnvilMachine",
                                                   "AnvilMachineTemplate",
                                                   NULL};
static const char *const category_all[] = {"Cluster",
                                           "AnvilCluster",
                                           "KubeadmControlPlane",
                                           "MachineDeployment",
                                           "MachineSet",
                                           "Machine",
                                           "MachineHealthCheck",
                                           "AnvilMachine",
                                           "Host",
                                           NULL};

/* get KIND,KIND... or get CATEGORY: each kind's table in turn with kind-qualified names
 * (as kubectl prints several kinds), one List for -o yaml|json. A kind with nothing to show
 * is left out. */
static int cmd_get_multi(const char *spec, const char *name) {
        const KindInfo *kinds[64];
        size_t n = 0;
        const char *const *cat = streq(spec, "all")           ? category_all
                                 : streq(spec, "cluster-api") ? category_cluster_api
                                                              : NULL;
        if (cat)
                for (; *cat && n < ELEMENTSOF(kinds); cat++)
                        kinds[n++] = kind_resolve(*cat);
        else {
                _cleanup_free_ char *copy = strdup(spec);
                if (!copy)
                        return log_oom();
                char *save = NULL;
                for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                        const KindInfo *k = resolve_kind(w);
                        if (!k)
                                return -EINVAL;
                        bool dup = false;
                        for (size_t i = 0; i < n; i++)
                                dup |= kinds[i] == k;
                        if (!dup && n < ELEMENTSOF(kinds))
                                kinds[n++] = k;
                }
                if (n == 0) {
                        fprintf(stderr, "error: no resource type in \"%s\"\n", spec);
                        return -EINVAL;
                }
        }
        int r = check_output_format();
        if (r < 0)
                return r;
        bool structured = output_is("yaml") || output_is("json");
        _cleanup_(obj_freep) Obj *all = structured ? obj_new_list() : NULL;
        if (structured && !all)
                return log_oom();
        bool printed = false;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(obj_freep) Obj *items = NULL;
                int64_t rev = 0;
                r = list_ex(kinds[i], name, true, &items, &rev);
                if (r == -ENOENT)
                        continue; /* that name is not of every kind */
                if (r < 0)
                        return r;
                if (obj_len(items) == 0)
                        continue;
                if (structured) {
                        OBJ_LIST_FOREACH(o, items, j)
                        if (obj_list_append(all, obj_dup(o)) < 0)
                                return log_oom();
                        continue;
                }
                if (output_is("name")) {
                        OBJ_LIST_FOREACH(o, items, j)
                        print_object(kinds[i], o, false);
                        printed = true;
                        continue;
                }
                char q[128], prefix[160];
                snprintf(prefix, sizeof(prefix), "%s/", qualified(kinds[i], q));
                Table t;
                table_init(&t, kinds[i], output_is("wide"),
                           arg_all_namespaces && kinds[i]->namespaced);
                t.name_prefix = prefix;
                table_measure(&t, items);
                if (printed)
                        putchar('\n');
                table_header(&t);
                OBJ_LIST_FOREACH(o, items, j)
                table_row(&t, o, "ADDED");
                printed = true;
        }
        if (structured)
                return print_items(kinds[0], all, NULL, NULL);
        if (!printed) {
                if (name)
                        fprintf(stderr, "Error from server (NotFound): \"%s\" not found\n", name);
                else if (arg_all_namespaces)
                        fprintf(stderr, "No resources found\n");
                else
                        fprintf(stderr, "No resources found in %s namespace.\n",
                                arg_namespace ? arg_namespace : "default");
                return name ? -ENOENT : 0;
        }
        return 0;
}

static int cmd_get(int argc, char **argv) {
        if (argc < 1) {
                fprintf(stderr, "error: you must specify the type of resource to get\n"
                                "Run 'anvilctl get --help' for usage.\n");
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
        char kindbuf[128];
        const char *kind, *name;
        split_kind_name(argc, argv, kindbuf, &kind, &name);
        if (argc > 2 || (argc > 1 && strchr(argv[0], '/'))) {
                fprintf(stderr, "error: get takes one name (got %d arguments)\n", argc - 1);
                return -EINVAL;
        }
        if (strchr(kind, ',') || streq(kind, "all") || streq(kind, "cluster-api")) {
                if (arg_watch || arg_watch_only) {
                        fprintf(stderr, "error: you may only watch one resource type at a time\n");
                        return -EINVAL;
                }
                return cmd_get_multi(kind, name);
        }
        const KindInfo *k = resolve_kind(kind);
        if (!k)
                return -EINVAL;
        int r = check_output_format();
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *items = NULL;
        int64_t rev = 0;
        r = list(k, name, &items, &rev);
        if (r < 0)
                return r;
        if (!arg_watch && !arg_watch_only)
                return print_items(k, items, name, NULL);

        /* -w: the current state first (unless --watch-only), then every change. */
        bool structured = output_is("yaml") || output_is("json") || output_is("name");
        Table t;
        bool first = true;
        if (structured) {
                OBJ_LIST_FOREACH(o, items, i)
                if (!arg_watch_only && (r = print_object(k, o, first)) >= 0)
                        first = false;
        } else {
                table_init(&t, k, output_is("wide"), arg_all_namespaces && k->namespaced);
                table_measure(&t, items);
                if (!arg_watch_only && obj_len(items) > 0) {
                        table_header(&t);
                        OBJ_LIST_FOREACH(o, items, i)
                        table_row(&t, o, "ADDED");
                        first = false;
                }
        }
        fflush(stdout);
        return watch_loop(k, name, rev, structured ? NULL : &t, first);
}

static int cmd_describe(int argc, char **argv) {
        char kindbuf[128];
        const char *kind, *name;
        split_kind_name(argc, argv, kindbuf, &kind, &name);
        if (!kind || !name) {
                fprintf(stderr, "error: describe needs a kind and a name\n"
                                "Run 'anvilctl describe --help' for usage.\n");
                return -EINVAL;
        }
        int r = refuse_extra("describe", argc, argv, strchr(argv[0], '/') ? 1 : 2);
        if (r < 0)
                return r;
        const KindInfo *k = resolve_kind(kind);
        if (!k)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *req = request("describe"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0)
                return log_oom();
        r = call_ok(req, &resp);
        if (r < 0)
                return r;
        fputs(strempty(obj_get_str(resp, "text")), stdout);
        return 0;
}

/* Waits until kind/name is gone (its finalizers done), as kubectl delete --wait does. */
static int wait_deleted(const KindInfo *k, const char *name) {
        _cleanup_free_ char *last = NULL;
        uint64_t deadline = arg_timeout_given ? now_usec(CLOCK_MONOTONIC) + arg_timeout_usec : 0;
        _cleanup_(obj_freep) Obj *req = request("get"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0)
                return log_oom();
        int r = call(req, &resp);
        if (r < 0)
                return r;
        if (streq_ptr(resp_code(resp), "NotFound"))
                return 0;
        if (resp_code(resp)) {
                print_failure(resp);
                return -EIO;
        }
        int64_t rev = 0;
        obj_get_int(resp, "revision", &rev);
        for (;;) {
                if (deadline && now_usec(CLOCK_MONOTONIC) >= deadline) {
                        fprintf(stderr, "error: timed out waiting for the condition on %s/%s\n",
                                k->plural, name);
                        return -ETIMEDOUT;
                }
                _cleanup_(obj_freep) Obj *items = NULL;
                r = watch_once(k, name, &rev, deadline, &items);
                if (r == -ESTALE) {
                        _cleanup_(obj_freep) Obj *again = request("get"), *ar = NULL;
                        if (!again || obj_map_set_str(again, "kind", k->kind) < 0 ||
                            obj_map_set_str(again, "name", name) < 0)
                                return log_oom();
                        if ((r = call(again, &ar)) < 0)
                                return r;
                        if (streq_ptr(resp_code(ar), "NotFound"))
                                return 0;
                        obj_get_int(ar, "revision", &rev);
                        continue;
                }
                if (r < 0)
                        return r;
                OBJ_LIST_FOREACH(it, items, i) {
                        if (streq_ptr(obj_get_str(it, "type"), "DELETED"))
                                return 0;
                        /* Say what it is waiting for ("deleting: waiting for worker
                         * machines"), once per change. */
                        const char *msg = ready_message(obj_map_get(it, "object"));
                        if (msg && !streq_ptr(msg, last)) {
                                printf("%s/%s: %s\n", k->singular, name, msg);
                                fflush(stdout);
                                free(last);
                                last = strdup(msg);
                        }
                }
        }
}

static int cmd_delete_one(const KindInfo *k, const char *name) {
        _cleanup_(obj_freep) Obj *req = request("delete"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0 ||
            (arg_force && obj_map_set_bool(req, "force", true) < 0))
                return log_oom();
        int r = call_ok(req, &resp);
        if (r < 0)
                return r;
        printf("%s\n", strempty(obj_get_str(resp, "message")));
        fflush(stdout);
        return arg_wait ? wait_deleted(k, name) : 0;
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
                        const char *kind = obj_get_str(d, "kind"),
                                   *name = obj_get_str(d, "metadata.name");
                        if (!kind || !name) {
                                fprintf(stderr,
                                        "%s:%u:%u: a document without kind or "
                                        "metadata.name, skipped\n",
                                        file, d->mark.line, d->mark.column);
                                result = -EINVAL;
                                continue;
                        }
                        const KindInfo *k = resolve_kind(kind);
                        if (!k) {
                                result = -EINVAL;
                                continue;
                        }
                        const char *ns = obj_get_str(d, "metadata.namespace");
                        const char *saved = arg_namespace;
                        if (ns)
                                arg_namespace = ns;
                        r = cmd_delete_one(k, name);
                        arg_namespace = saved;
                        if (r < 0)
                                result = r;
                }
                return result;
        }
        char kindbuf[128];
        const char *kind, *name;
        split_kind_name(argc, argv, kindbuf, &kind, &name);
        if (!kind) {
                fprintf(stderr, "error: delete needs KIND NAME..., KIND -l SELECTOR, KIND --all or "
                                "-f FILE\nRun 'anvilctl delete --help' for usage.\n");
                return -EINVAL;
        }
        const KindInfo *k = resolve_kind(kind);
        if (!k)
                return -EINVAL;
        if (!name && (arg_selector || arg_all)) {
                _cleanup_(obj_freep) Obj *items = NULL;
                int64_t rev;
                int r = list(k, NULL, &items, &rev);
                if (r < 0)
                        return r;
                if (obj_len(items) == 0)
                        fprintf(stderr, "No resources found\n");
                int result = 0;
                OBJ_LIST_FOREACH(o, items, i) {
                        const char *saved = arg_namespace;
                        arg_namespace = obj_get_str(o, "metadata.namespace");
                        r = cmd_delete_one(k, strempty(obj_get_str(o, "metadata.name")));
                        arg_namespace = saved;
                        if (r < 0)
                                result = r;
                }
                return result;
        }
        if (!name) {
                fprintf(stderr, "error: resource(s) were provided, but no name was specified\n"
                                "Run 'anvilctl delete --help' for usage.\n");
                return -EINVAL;
        }
        int result = 0;
        for (int i = strchr(argv[0], '/') ? 0 : 1; i < argc; i++) {
                const char *n = i == 0 ? name : argv[i];
                int r = cmd_delete_one(k, n);
                if (r < 0)
                        result = r;
        }
        return result;
}

/* k=v,k2=v2 for flag (--labels): an empty entry or a key given twice is a mistake, not
 * something to guess about. */
static int parse_kv_list(const char *flag, const char *s, Obj **ret) {
        _cleanup_(obj_freep) Obj *m = obj_new_map();
        _cleanup_free_ char *copy = strdup(s);
        if (!m || !copy)
                return -ENOMEM;
        char *p = copy;
        for (;;) {
                char *t = strsep(&p, ",");
                if (!t)
                        break;
                if (isempty(t)) {
                        fprintf(stderr,
                                "error: %s: empty entry in '%s' (a leading, trailing or doubled "
                                "comma)\n",
                                flag, s);
                        return -EINVAL;
                }
                char *eq = strchr(t, '=');
                if (!eq || eq == t) {
                        fprintf(stderr, "error: %s: '%s' is not key=value\n", flag, t);
                        return -EINVAL;
                }
                *eq = 0;
                if (obj_map_get(m, t)) {
                        fprintf(stderr, "error: %s: key '%s' is given twice\n", flag, t);
                        return -EINVAL;
                }
                if (obj_map_set_str(m, t, eq + 1) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

static int cmd_label(int argc, char **argv, bool annotate, bool overwrite) {
        const char *what = annotate ? "annotate" : "label";
        char kindbuf[128];
        const char *kind, *name;
        split_kind_name(argc, argv, kindbuf, &kind, &name);
        int first = argc > 0 && strchr(argv[0], '/') ? 1 : 2;
        if (!kind || !name || argc <= first) {
                fprintf(stderr,
                        "error: %s needs KIND NAME and at least one key=value or key-\n"
                        "Run 'anvilctl %s --help' for usage.\n",
                        what, what);
                return -EINVAL;
        }
        const KindInfo *k = resolve_kind(kind);
        if (!k)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *req = request(what), *resp = NULL;
        _cleanup_(obj_freep) Obj *changes = obj_new_map(), *remove = obj_new_list();
        if (!req || !changes || !remove || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0 ||
            obj_map_set_bool(req, "overwrite", overwrite) < 0)
                return log_oom();
        for (int i = first; i < argc; i++) {
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
        char kindbuf[128];
        const char *kind, *name;
        split_kind_name(argc, argv, kindbuf, &kind, &name);
        if (!kind || !name || replicas < 0) {
                fprintf(stderr, "error: scale needs KIND NAME --replicas N\n"
                                "Run 'anvilctl scale --help' for usage.\n");
                return -EINVAL;
        }
        int r = refuse_extra("scale", argc, argv, strchr(argv[0], '/') ? 1 : 2);
        if (r < 0)
                return r;
        const KindInfo *k = resolve_kind(kind);
        if (!k)
                return -EINVAL;
        _cleanup_(obj_freep) Obj *req = request("scale"), *resp = NULL;
        if (!req || obj_map_set_str(req, "kind", k->kind) < 0 ||
            obj_map_set_str(req, "name", name) < 0 ||
            obj_map_set_int(req, "replicas", replicas) < 0)
                return log_oom();
        r = call_ok(req, &resp);
        if (r < 0)
                return r;
        printf("%s\n", strempty(obj_get_str(resp, "message")));
        return 0;
}

static int cmd_explain(int argc, char **argv) {
        if (arg_markdown) {
                explain_markdown(stdout);
                return 0;
        }
        if (argc != 1) {
                fprintf(stderr, "error: explain needs one KIND or KIND.field.path\n"
                                "Run 'anvilctl explain --help' for usage.\n");
                return -EINVAL;
        }
        char err[256];
        int r = explain_text(stdout, argv[0], arg_recursive, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "error: %s\n", err);
        return r;
}

/* The endpoint agents are told must be reachable from them. A wildcard address (the
 * packaged default listen: tcp://0.0.0.0:7443 without advertise:) never is; a loopback one
 * is for agents on the coordinator's own machine (a demo, a test, a single node), but never
 * for a server that PXE-boots (for_pxe). */
static void warn_local_endpoint(const char *endpoint, bool for_pxe) {
        if (!endpoint || !endpoint_is_local(endpoint))
                return;
        bool wildcard = endpoint_is_wildcard(endpoint);
        if (!wildcard && !for_pxe)
                return;
        fprintf(stderr,
                "warning: the coordinator's agent endpoint %s is a %s address that other hosts "
                "cannot use: set 'advertise: tcp://HOST:PORT' in /etc/anvil/coordinator.yaml and "
                "run 'systemctl restart anvil-coordinator'\n",
                endpoint, wildcard ? "wildcard" : "loopback");
}

static int cmd_version(int argc, char **argv) {
        int r = refuse_extra("version", argc, argv, 0);
        if (r < 0 || (r = output_allowed("version", NULL)) < 0)
                return r;
        printf("Client Version: %s\n", ANVIL_VERSION);
        if (arg_client_only)
                return 0;
        _cleanup_(obj_freep) Obj *req = request("version"), *resp = NULL;
        r = req ? call_ok(req, &resp) : -ENOMEM;
        if (r < 0)
                return r;
        printf("Server Version: %s\n", strna(obj_get_str(obj_map_get(resp, "object"), "version")));
        return 0;
}

/* o as JSON or YAML when -o asks for it: 1 if printed, 0 if a table is wanted. */
static int print_structured(const Obj *o) {
        if (!output_is("json") && !output_is("yaml"))
                return 0;
        _cleanup_free_ char *text = NULL;
        int r = output_is("json") ? json_emit(o, true, &text) : yaml_emit(o, &text);
        if (r < 0)
                return r;
        printf("%s%s", text, output_is("json") ? "\n" : "");
        return 1;
}

static int cmd_info(int argc, char **argv) {
        int r = refuse_extra("info", argc, argv, 0);
        if (r < 0 || (r = output_allowed("info", (const char *const[]){"json", "yaml", NULL})) < 0)
                return r;
        _cleanup_(obj_freep) Obj *req = request("info"), *resp = NULL;
        if (!req)
                return log_oom();
        r = call_ok(req, &resp);
        if (r < 0)
                return r;
        const Obj *o = obj_map_get(resp, "object");
        warn_local_endpoint(obj_get_str(o, "endpoint"), false);
        r = print_structured(o);
        if (r != 0)
                return r < 0 ? r : 0;
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

/* The limits the coordinator enforces on token-create, checked here so the message names
 * the flag. */
#define TOKEN_TTL_MAX_SEC     (366LL * 86400)
#define TOKEN_USES_MAX        1000000LL
#define TOKEN_DESCRIPTION_MAX 1024

static int64_t arg_token_uses; /* --uses, checked when parsed */

static int parse_ttl(const char *ttl, int64_t *ret_sec) {
        int64_t us = 24LL * 3600 * USEC_PER_SEC;
        int r = ttl ? parse_go_duration(ttl, &us) : 0;
        if (r == -ERANGE || (r >= 0 && us > TOKEN_TTL_MAX_SEC * (int64_t)USEC_PER_SEC)) {
                fprintf(stderr,
                        "error: --ttl: must be at most 8784h (366 days), or 0 for never, "
                        "not '%s'\n",
                        ttl);
                return -EINVAL;
        }
        if (r < 0 || us < 0) {
                fprintf(stderr,
                        "error: --ttl: invalid duration '%s' (e.g. 24h, 30m, 0 for never)\n", ttl);
                return -EINVAL;
        }
        /* Under a second would round to 0, which means never. */
        if (us > 0 && us < (int64_t)USEC_PER_SEC) {
                fprintf(stderr, "error: --ttl: must be at least 1s, or 0 for never, not '%s'\n",
                        ttl);
                return -EINVAL;
        }
        *ret_sec = us / (int64_t)USEC_PER_SEC;
        return 0;
}

static int check_description(const char *d) {
        if (strlen(d) > TOKEN_DESCRIPTION_MAX) {
                fprintf(stderr, "error: --description: at most %d characters\n",
                        TOKEN_DESCRIPTION_MAX);
                return -EINVAL;
        }
        /* One line: it is a cell of 'token list'. */
        for (const char *p = d; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                        fprintf(stderr,
                                "error: --description: control characters (newline, tab, ...) "
                                "are not allowed\n");
                        return -EINVAL;
                }
        return 0;
}

/* token list -o json|yaml: the tokens as data, times in RFC 3339, null for never/unlimited. */
static int print_tokens_structured(const Obj *items) {
        _cleanup_(obj_freep) Obj *out = obj_new_map(), *list = obj_new_list();
        if (!out || !list || obj_map_set_str(out, "kind", "TokenList") < 0)
                return log_oom();
        OBJ_LIST_FOREACH(t, items, i) {
                _cleanup_(obj_freep) Obj *o = obj_new_map();
                int64_t exp = 0, left = -1;
                obj_get_int(t, "expires", &exp);
                obj_get_int(t, "usesLeft", &left);
                char ts[32];
                const Obj *labels = obj_map_get(t, "labels");
                Obj *lc = labels ? obj_dup(labels) : obj_new_map();
                if (!o || obj_map_set_str(o, "id", strempty(obj_get_str(t, "id"))) < 0 ||
                    obj_map_set_str(o, "description", strempty(obj_get_str(t, "description"))) <
                            0 ||
                    obj_map_set(o, "labels", lc) < 0 ||
                    obj_map_set(o, "expires",
                                exp > 0 ? obj_new_str(format_rfc3339(exp, ts)) : obj_new_null()) <
                            0 ||
                    obj_map_set_bool(o, "expired",
                                     exp > 0 && exp < (int64_t)now_usec(CLOCK_REALTIME)) < 0 ||
                    obj_map_set(o, "usesLeft", left >= 0 ? obj_new_int(left) : obj_new_null()) <
                            0 ||
                    obj_list_append(list, TAKE_PTR(o)) < 0)
                        return log_oom();
        }
        if (obj_map_set(out, "items", TAKE_PTR(list)) < 0)
                return log_oom();
        _cleanup_free_ char *text = NULL;
        int r = output_is("json") ? json_emit(out, true, &text) : yaml_emit(out, &text);
        if (r < 0)
                return r;
        printf("%s%s", text, output_is("json") ? "\n" : "");
        return 0;
}

static int cmd_token(int argc, char **argv, const char *ttl, const char *labels,
                     const char *description, bool agent_args, bool pxe) {
        if (argc < 1) {
                fprintf(stderr, "error: token needs create, list or delete\n"
                                "Run 'anvilctl token --help' for usage.\n");
                return -EINVAL;
        }
        int r;
        if (streq(argv[0], "create")) {
                int64_t ttl_sec;
                if ((r = refuse_extra("token create", argc, argv, 1)) < 0 ||
                    (r = output_allowed("token create", NULL)) < 0 ||
                    (r = parse_ttl(ttl, &ttl_sec)) < 0 ||
                    (description && (r = check_description(description)) < 0))
                        return r;
                _cleanup_(obj_freep) Obj *req = request("token-create"), *resp = NULL;
                if (!req || obj_map_set_int(req, "ttlSeconds", ttl_sec) < 0 ||
                    obj_map_set_int(req, "uses", arg_token_uses) < 0 ||
                    (description && obj_map_set_str(req, "description", description) < 0))
                        return log_oom();
                if (labels) {
                        Obj *l = NULL;
                        if ((r = parse_kv_list("--labels", labels, &l)) < 0)
                                return r;
                        if (obj_map_set(req, "labels", l) < 0)
                                return log_oom();
                }
                r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                const char *token = obj_get_str(resp, "text");
                const Obj *info = obj_map_get(resp, "object");
                if (agent_args || pxe)
                        warn_local_endpoint(obj_get_str(info, "endpoint"), pxe);
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
                if ((r = refuse_extra("token list", argc, argv, 1)) < 0 ||
                    (r = output_allowed("token list", (const char *const[]){"json", "yaml", "name",
                                                                            "wide", NULL})) < 0)
                        return r;
                _cleanup_(obj_freep) Obj *req = request("token-list"), *resp = NULL;
                if (!req)
                        return log_oom();
                r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                const Obj *items = obj_map_get(resp, "items");
                if (output_is("json") || output_is("yaml"))
                        return print_tokens_structured(items);
                if (output_is("name")) {
                        OBJ_LIST_FOREACH(t, items, i)
                        printf("token/%s\n", strna(obj_get_str(t, "id")));
                        return 0;
                }
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
                        /* Descriptions made before control characters were refused: one
                         * line per token all the same. */
                        _cleanup_free_ char *d = strdup(strempty(obj_get_str(t, "description")));
                        for (char *c = d; c && *c; c++)
                                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                                        *c = ' ';
                        printf("%-8s %-22s %-10s %-30s %s\n", strna(obj_get_str(t, "id")), ts,
                               uses_s, n ? lb : "<none>", strempty(d));
                }
                return 0;
        }
        if (streq(argv[0], "delete")) {
                if (argc < 2) {
                        fprintf(stderr, "error: token delete needs a token ID\n"
                                        "Run 'anvilctl token --help' for usage.\n");
                        return -EINVAL;
                }
                if ((r = refuse_extra("token delete", argc, argv, 2)) < 0 ||
                    (r = output_allowed("token delete", NULL)) < 0)
                        return r;
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
        fprintf(stderr,
                "error: unknown token command '%s' (create, list, delete)\n"
                "Run 'anvilctl token --help' for usage.\n",
                argv[0]);
        return -EINVAL;
}

static int cmd_host(int argc, char **argv) {
        int r;
        if (argc >= 1 && (streq(argv[0], "revoke") || streq(argv[0], "delete"))) {
                if (argc < 2) {
                        fprintf(stderr,
                                "error: host %s needs a host name\n"
                                "Run 'anvilctl host --help' for usage.\n",
                                argv[0]);
                        return -EINVAL;
                }
                if ((r = refuse_extra(streq(argv[0], "revoke") ? "host revoke" : "host delete",
                                      argc, argv, 2)) < 0 ||
                    (r = output_allowed("host", NULL)) < 0)
                        return r;
        }
        if (argc == 2 && streq(argv[0], "revoke")) {
                _cleanup_(obj_freep) Obj *req = request("host-revoke"), *resp = NULL;
                if (!req || obj_map_set_str(req, "name", argv[1]) < 0)
                        return log_oom();
                r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                printf("%s\n", strempty(obj_get_str(resp, "message")));
                return 0;
        }
        if (argc == 2 && streq(argv[0], "delete"))
                return cmd_delete_one(kind_resolve("host"), argv[1]);
        if (argc >= 1 && streq(argv[0], "revoked")) {
                /* The keys refused for good: they outlive their Hosts. */
                if ((r = refuse_extra("host revoked", argc, argv, 1)) < 0 ||
                    (r = output_allowed("host revoked",
                                        (const char *const[]){"json", "yaml", NULL})) < 0)
                        return r;
                _cleanup_(obj_freep) Obj *req = request("host-revoked"), *resp = NULL;
                if (!req)
                        return log_oom();
                r = call_ok(req, &resp);
                if (r < 0)
                        return r;
                Obj *items = obj_map_get(resp, "items");
                OBJ_LIST_FOREACH(t, items, i)
                obj_map_del(t, "key");
                r = print_structured(items);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (obj_len(items) == 0) {
                        fprintf(stderr, "No revoked keys.\n");
                        return 0;
                }
                printf("%-40s %-20s %-36s %s\n", "FINGERPRINT", "HOST", "PRODUCT-UUID", "REVOKED");
                OBJ_LIST_FOREACH(t, items, i) {
                        int64_t at = 0;
                        char ts[32] = "?";
                        if (obj_get_int(t, "revokedAt", &at))
                                format_rfc3339(at, ts);
                        printf("%-40s %-20s %-36s %s\n", strna(obj_get_str(t, "fingerprint")),
                               strna(obj_get_str(t, "host")), strna(obj_get_str(t, "productUUID")),
                               ts);
                }
                return 0;
        }
        fprintf(stderr, "Usage: anvilctl host revoke NAME | host delete NAME [--force] | host "
                        "revoked [-o json|yaml]\n");
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
        uint64_t deadline = arg_timeout_given ? now_usec(CLOCK_MONOTONIC) + arg_timeout_usec : 0;
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
                if (deadline && now_usec(CLOCK_MONOTONIC) >= deadline) {
                        fprintf(stderr, "error: timed out waiting for the rollout of %s/%s\n",
                                k->plural, name);
                        return -ETIMEDOUT;
                }
                sleep(1);
        }
}

/* ---- help ---- */

typedef struct Command {
        const char *name;
        const char *usage;
        const char *summary;
        const char *details; /* what it does, its own flags, examples */
} Command;

static const Command commands[] = {
        {"apply", "apply -f FILE|DIR|- [--wait]", "create or update objects from manifests",
         "Creates the objects of the manifest, or updates them with a three-way merge against\n"
         "the configuration applied last time (kept in the annotation\n"
         "anvil.dev/last-applied-configuration): fields you remove from the manifest are\n"
         "removed, fields set by controllers stay. All documents of one file are validated\n"
         "first and applied together or not at all; every problem is reported as\n"
         "FILE:LINE:COLUMN: KIND/NAME: field.path: message. status is never applied.\n"
         "A metadata.resourceVersion in the manifest makes the update conditional: it fails\n"
         "with a conflict if the object changed since. A `kind: List` (what get -o yaml|json\n"
         "prints for several objects) applies its items.\n\n"
         "Options:\n"
         "  -f, --filename FILE   a manifest, a directory of .yaml/.yml/.json files (in name\n"
         "                        order, one apply each), or - for standard input;\n"
         "                        several -f are applied in the order given\n"
         "      --wait            then wait until the applied objects are ready (clusters\n"
         "                        Ready, deployments and control planes with every machine\n"
         "                        ready), printing each machine's phase and current step\n"
         "                        as it changes; --timeout bounds it (default 15m)\n\n"
         "Examples:\n"
         "  anvilctl apply -f cluster.yaml\n"
         "  anvilctl get md demo-md-0 -o yaml | sed 's/replicas: 2/replicas: 3/' | anvilctl apply "
         "-f -\n"},
        {"get", "get KIND [NAME] [-n NS | -A] [-l SELECTOR] [-o FORMAT] [-w]",
         "list objects, or show one",
         "Prints a table (the columns of Cluster API's printer columns), or the objects.\n"
         "KIND is a kind, plural, singular or short name: cluster/cl, machine/ma,\n"
         "machineset/ms, machinedeployment/md, kubeadmcontrolplane/kcp,\n"
         "machinehealthcheck/mhc, kubeadmconfig/kc, kubeadmconfigtemplate/kct,\n"
         "anvilcluster/ac, anvilmachine/am, anvilmachinetemplate/amt, host/ho, secret,\n"
         "event/ev. KIND/NAME works too. Secret values are redacted. Several kinds at once:\n"
         "KIND,KIND... (get md,ms), or a category: cluster-api (every Cluster API kind)\n"
         "or all (clusters, control planes, deployments, sets, machines, health checks,\n"
         "anvilmachines, hosts).\n\n"
         "Options:\n"
         "  -o, --output FORMAT     wide, yaml, json or name\n"
         "  -l, --selector SEL      label selector: k=v, k!=v, k in (a,b), k notin (a,b),\n"
         "                          k (exists), !k (does not exist), comma-separated\n"
         "  -w, --watch             after the list, print every change until interrupted\n"
         "      --watch-only        print changes only\n"
         "      --output-watch-events  add an EVENT column (ADDED, MODIFIED, DELETED)\n"
         "      --show-labels       add a LABELS column\n\n"
         "  get kubeconfig CLUSTER  prints an admin kubeconfig of the cluster\n\n"
         "Examples:\n"
         "  anvilctl get machines -A\n"
         "  anvilctl get hosts -l 'role in (worker),!maintenance' -o wide\n"
         "  anvilctl get md -w\n"},
        {"describe", "describe KIND NAME", "show an object in detail; a cluster as a tree",
         "Prints the object's metadata, owner chain, conditions, spec and status, and its\n"
         "recent events. `describe cluster NAME` prints the cluster as a tree of its\n"
         "infrastructure, control plane, deployments and machines with their Ready condition,\n"
         "reason and message, and for a machine whose host failed a step, the step, its exit\n"
         "code and last output lines (as clusterctl describe cluster does).\n"},
        {"delete", "delete KIND NAME... | KIND -l SEL | KIND --all | -f FILE [--wait]",
         "delete objects",
         "Deletes objects. An object with finalizers is marked (metadata.deletionTimestamp) and\n"
         "goes away once its controllers have removed them; objects it owns are deleted after\n"
         "it (garbage collection).\n\n"
         "Options:\n"
         "  -f, --filename FILE   the objects of a manifest, in reverse order (several -f:\n"
         "                        each file in the order given)\n"
         "  -l, --selector SEL    the objects of KIND matching a label selector\n"
         "      --all             every object of KIND in the namespace\n"
         "      --wait            wait until each object is gone (bounded by --timeout)\n"
         "      --force           delete a host even while a machine claims it (a host\n"
         "                        that is gone for good; otherwise delete the machine)\n"},
        {"rollout", "rollout status md|kcp NAME | rollout history md NAME",
         "follow a rollout; list revisions",
         "`rollout status` prints where the rollout of a MachineDeployment or\n"
         "KubeadmControlPlane stands and waits until it completes (exit 0), fails or is\n"
         "paused (exit 1), as kubectl rollout status does; --timeout bounds the wait.\n"
         "`rollout history md NAME` lists the revisions (MachineSets) with their\n"
         "machine-template-hash and replicas.\n"},
        {"scale", "scale KIND NAME --replicas N",
         "set the replicas of a machinedeployment, machineset or kubeadmcontrolplane",
         "Options:\n"
         "      --replicas N      the new number of replicas (odd for a kubeadmcontrolplane)\n"},
        {"label", "label KIND NAME KEY=VALUE... [KEY-]... [--overwrite]", "set or remove labels",
         "KEY=VALUE sets a label, KEY- removes it. Changing a label that has another value\n"
         "needs --overwrite. Label hosts so that AnvilMachines' hostSelector can pick them:\n"
         "  anvilctl label host rack1-07 role=worker\n"},
        {"annotate", "annotate KIND NAME KEY=VALUE... [KEY-]... [--overwrite]",
         "set or remove annotations",
         "KEY=VALUE sets an annotation, KEY- removes it; --overwrite to change one.\n"
         "  anvilctl annotate cluster demo cluster.x-k8s.io/paused=true   # pause a cluster\n"},
        {"explain", "explain KIND[.FIELD...] [--recursive]",
         "document a kind or field (works without a coordinator)",
         "Prints the fields Anvil accepts with their types, constraints and descriptions.\n\n"
         "Options:\n"
         "      --recursive       every field below, without descriptions\n"
         "      --markdown        the whole reference as Markdown (docs/resources.md)\n\n"
         "Examples:\n"
         "  anvilctl explain machinedeployment.spec.strategy\n"},
        {"token", "token create|list|delete", "enrollment tokens for new hosts",
         "  token create [--ttl 24h] [--uses N] [--labels k=v,...] [--description TEXT]\n"
         "               [--agent-args] [--pxe]   a new token (printed once)\n"
         "  token list [-o json|yaml|name|wide]   tokens, without their secrets\n"
         "  token delete ID                       revoke a token (its first 6 characters)\n\n"
         "Options of token create:\n"
         "      --ttl DUR         how long the token can be used: 1s to 8784h (366 days),\n"
         "                        or 0 for a token that never expires (default 24h)\n"
         "      --uses N          how many hosts may enroll with it: 1 to 1000000, or 0\n"
         "                        for unlimited (default 0)\n"
         "      --labels k=v,...  labels every host enrolled with it gets (each key once)\n"
         "      --description T   a note shown by token list (one line, at most 1024\n"
         "                        characters)\n"
         "      --agent-args      also print the anvil-agent flags that use the token\n"
         "      --pxe             also print the kernel command line parameters\n"
         "The endpoint printed by --agent-args and --pxe is the coordinator's advertise:\n"
         "setting; a warning says when it is a wildcard or loopback address.\n\n"
         "A host enrolling with the token gets the token's labels.\n"},
        {"host", "host revoke|delete NAME [--force] | host revoked", "cut a host off, or forget it",
         "  host revoke NAME   refuse the host's key from now on (its Host stays, Revoked);\n"
         "                     the key stays refused after the host is deleted\n"
         "  host delete NAME   remove the Host object; refused while a machine claims the\n"
         "                     host unless --force (delete the machine instead: its host\n"
         "                     is reset and released)\n"
         "  host revoked       the revoked keys: fingerprint, host, product UUID, when\n\n"
         "A machine whose key was revoked enrolls again only with a new key and a token\n"
         "created after the revocation.\n"},
        {"info", "info [-o json|yaml]", "the coordinator's endpoint, key and counts", ""},
        {"version", "version [--client]", "client and server versions",
         "Options:\n"
         "      --client          the client version only (no coordinator needed)\n"},
        {"help", "help [COMMAND]", "help on a command", ""},
};

static const char global_options[] =
        "Global options:\n"
        "  -s, --server ADDR     admin socket (default $ANVIL_SERVER or " DEFAULT_SERVER ")\n"
        "  -n, --namespace NS    namespace (default \"default\")\n"
        "  -A, --all-namespaces  list across namespaces\n"
        "      --timeout DUR     how long to wait for the coordinator (default 30s), and with\n"
        "                        --wait for the deletion; 30, 30s, 5m\n"
        "  -h, --help            help (anvilctl COMMAND --help for a command)\n";

static const Command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static void help_command(const Command *c) {
        /* The summary is a list entry in the overview; here it is a sentence. */
        printf("%c%s.\n\nUsage: anvilctl %s\n\n%s%s%s", toupper((unsigned char)c->summary[0]),
               c->summary + 1, c->usage, c->details, isempty(c->details) ? "" : "\n",
               global_options);
}

static void help(void) {
        printf("anvilctl — operate Anvil, bare-metal Kubernetes lifecycle management.\n\n"
               "Usage: anvilctl [GLOBAL OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-10s %s\n", commands[i].name, commands[i].summary);
        printf("\n%s\nRun 'anvilctl COMMAND --help' for a command's options. Exit status: 0 on "
               "success, 1 on any failure.\n",
               global_options);
}

/* --timeout takes seconds (kubectl's old habit) or a duration. */
/* After a bad option: the help of the command it was given to, if one was named. */
static void help_hint(int argc, char **argv) {
        for (int i = 1; i < argc; i++)
                if (find_command(argv[i]) && !streq(argv[i], "help")) {
                        fprintf(stderr, "Run 'anvilctl %s --help' for usage.\n", argv[i]);
                        return;
                }
        fprintf(stderr, "Run 'anvilctl --help' for usage.\n");
}

static int parse_timeout(const char *s) {
        char *end;
        long v = strtol(s, &end, 10);
        int64_t us;
        if (*end == 0 && v > 0)
                us = (int64_t)v * (int64_t)USEC_PER_SEC;
        else if (parse_go_duration(s, &us) < 0 || us <= 0)
                return -EINVAL;
        arg_timeout_usec = (uint64_t)us;
        arg_timeout_sec = (int)((us + (int64_t)USEC_PER_SEC - 1) / (int64_t)USEC_PER_SEC);
        arg_timeout_given = true;
        return 0;
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
                ARG_WATCH_ONLY,
                ARG_WATCH_EVENTS,
                ARG_SHOW_LABELS,
                ARG_WAIT,
                ARG_FORCE,
                ARG_ALL,
                ARG_RECURSIVE,
                ARG_MARKDOWN,
                ARG_CLIENT,
        };
        static const struct option options[] = {
                {"server", required_argument, NULL, 's'},
                {"namespace", required_argument, NULL, 'n'},
                {"all-namespaces", no_argument, NULL, 'A'},
                {"selector", required_argument, NULL, 'l'},
                {"output", required_argument, NULL, 'o'},
                {"filename", required_argument, NULL, 'f'},
                {"watch", no_argument, NULL, 'w'},
                {"watch-only", no_argument, NULL, ARG_WATCH_ONLY},
                {"output-watch-events", no_argument, NULL, ARG_WATCH_EVENTS},
                {"show-labels", no_argument, NULL, ARG_SHOW_LABELS},
                {"timeout", required_argument, NULL, ARG_TIMEOUT},
                {"replicas", required_argument, NULL, ARG_REPLICAS},
                {"ttl", required_argument, NULL, ARG_TTL},
                {"uses", required_argument, NULL, ARG_USES},
                {"labels", required_argument, NULL, ARG_LABELS},
                {"description", required_argument, NULL, ARG_DESCRIPTION},
                {"agent-args", no_argument, NULL, ARG_AGENT_ARGS},
                {"pxe", no_argument, NULL, ARG_PXE},
                {"overwrite", no_argument, NULL, ARG_OVERWRITE},
                {"wait", optional_argument, NULL, ARG_WAIT},
                {"all", no_argument, NULL, ARG_ALL},
                {"force", no_argument, NULL, ARG_FORCE},
                {"recursive", no_argument, NULL, ARG_RECURSIVE},
                {"markdown", no_argument, NULL, ARG_MARKDOWN},
                {"client", no_argument, NULL, ARG_CLIENT},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        /* -f may be given several times: each is applied (or deleted) in order, as kubectl. */
        _cleanup_strv_free_ char **files = NULL;
        const char *file = NULL, *ttl = NULL, *labels = NULL, *description = NULL;
        int64_t replicas = -1;
        bool agent_args = false, pxe = false, overwrite = false, want_help = false;
        int c;
        log_setup("anvilctl", LOG_TARGET_STDERR);
        log_set_max_level(LOG_WARNING);
        /* getopt's messages start with argv[0]: the name, not the path it was run by. */
        argv[0] = program_invocation_short_name;
        while ((c = getopt_long(argc, argv, "s:n:Al:o:f:wh", options, NULL)) >= 0) {
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
                        if (strv_extend(&files, optarg) < 0)
                                return log_oom(), 1;
                        file = files[0];
                        break;
                case 'w':
                        arg_watch = true;
                        break;
                case ARG_WATCH_ONLY:
                        arg_watch_only = true;
                        break;
                case ARG_WATCH_EVENTS:
                        arg_watch_events = true;
                        break;
                case ARG_SHOW_LABELS:
                        arg_show_labels = true;
                        break;
                case ARG_TIMEOUT:
                        if (parse_timeout(optarg) < 0) {
                                fprintf(stderr,
                                        "error: --timeout: not a positive number of seconds or "
                                        "a duration like 30s: %s\n",
                                        optarg);
                                return 1;
                        }
                        break;
                case ARG_REPLICAS:
                        errno = 0;
                        replicas = strtoll(optarg, &end, 10);
                        if (!isdigit((unsigned char)optarg[0]) || *end || errno ||
                            replicas > INT32_MAX) {
                                fprintf(stderr, "error: --replicas: not a number >= 0: %s\n",
                                        optarg);
                                return 1;
                        }
                        break;
                case ARG_TTL:
                        ttl = optarg;
                        break;
                case ARG_USES:
                        errno = 0;
                        arg_token_uses = strtoll(optarg, &end, 10);
                        if (!isdigit((unsigned char)optarg[0]) || *end || errno ||
                            arg_token_uses > TOKEN_USES_MAX) {
                                fprintf(stderr,
                                        "error: --uses: must be a number from 0 (unlimited) to "
                                        "%lld, not '%s'\n",
                                        TOKEN_USES_MAX, optarg);
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
                case ARG_FORCE:
                        arg_force = true;
                        break;
                case ARG_WAIT:
                        if (!optarg || streq(optarg, "true"))
                                arg_wait = true;
                        else if (streq(optarg, "false"))
                                arg_wait = false;
                        else {
                                fprintf(stderr, "error: --wait: true or false, not %s\n", optarg);
                                return 1;
                        }
                        break;
                case ARG_ALL:
                        arg_all = true;
                        break;
                case ARG_RECURSIVE:
                        arg_recursive = true;
                        break;
                case ARG_MARKDOWN:
                        arg_markdown = true;
                        break;
                case ARG_CLIENT:
                        arg_client_only = true;
                        break;
                case 'h':
                        want_help = true;
                        break;
                case ARG_VERSION:
                        printf("anvilctl %s\n", ANVIL_VERSION);
                        return 0;
                default:
                        /* getopt said what was wrong; point to the command's own help. */
                        help_hint(argc, argv);
                        return 1;
                }
        }
        const char *cmd = optind < argc ? argv[optind] : NULL;
        int n = argc - optind - 1;
        char **rest = argv + optind + 1;
        if (cmd && streq(cmd, "help")) {
                const Command *hc = n > 0 ? find_command(rest[0]) : NULL;
                if (n > 0 && !hc) {
                        fprintf(stderr, "error: unknown command \"%s\"\n", rest[0]);
                        return 1;
                }
                if (hc)
                        help_command(hc);
                else
                        help();
                return 0;
        }
        if (want_help) {
                const Command *hc = cmd ? find_command(cmd) : NULL;
                if (cmd && !hc) {
                        fprintf(stderr, "error: unknown command \"%s\"\n", cmd);
                        return 1;
                }
                if (hc)
                        help_command(hc);
                else
                        help();
                return 0;
        }
        if (!cmd) {
                help();
                return 1;
        }
        int r;
        static const char *const no_output[] = {"apply", "describe", "delete",  "scale",
                                                "label", "annotate", "explain", "rollout"};
        for (size_t i = 0; i < ELEMENTSOF(no_output); i++)
                if (streq(cmd, no_output[i]) && output_allowed(cmd, NULL) < 0)
                        return 1;
        if (streq(cmd, "apply")) {
                if (!file || n > 0) {
                        fprintf(stderr, "error: apply needs -f FILE|DIR|- and no other "
                                        "arguments\nRun 'anvilctl apply --help' for usage.\n");
                        return 1;
                }
                r = 0;
                for (char **f = files; *f; f++) {
                        int q = apply_path(*f);
                        if (q < 0)
                                r = q;
                }
        } else if (streq(cmd, "get"))
                r = cmd_get(n, rest);
        else if (streq(cmd, "describe"))
                r = cmd_describe(n, rest);
        else if (streq(cmd, "delete") && strv_length(files) > 1) {
                r = 0;
                for (char **f = files; *f; f++) {
                        int q = cmd_delete(n, rest, *f);
                        if (q < 0)
                                r = q;
                }
        } else if (streq(cmd, "delete"))
                r = cmd_delete(n, rest, file);
        else if (streq(cmd, "scale"))
                r = cmd_scale(n, rest, replicas);
        else if (streq(cmd, "label"))
                r = cmd_label(n, rest, false, overwrite);
        else if (streq(cmd, "annotate"))
                r = cmd_label(n, rest, true, overwrite);
        else if (streq(cmd, "explain"))
                r = cmd_explain(n, rest);
        else if (streq(cmd, "token"))
                r = cmd_token(n, rest, ttl, labels, description, agent_args, pxe);
        else if (streq(cmd, "host"))
                r = cmd_host(n, rest);
        else if (streq(cmd, "rollout"))
                r = cmd_rollout(n, rest);
        else if (streq(cmd, "info"))
                r = cmd_info(n, rest);
        else if (streq(cmd, "version"))
                r = cmd_version(n, rest);
        else {
                fprintf(stderr, "error: unknown command \"%s\"\nRun 'anvilctl --help' for usage.\n",
                        cmd);
                return 1;
        }
        return r < 0 ? 1 : 0;
}
