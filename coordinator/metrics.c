/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <time.h>

#include "fanout.h"
#include "log.h"
#include "metrics.h"

extern const KindInfo kind_host, kind_machine;

#define N_BUCKETS 12
static const double latency_buckets[N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1,    2.5,   10};

typedef struct Histogram {
        uint64_t counts[N_BUCKETS + 1];
        uint64_t count;
        double sum;
} Histogram;

/* Every reason coordinator/enroll.c refuses with (docs/protocol.md), and the handshake's. */
static const char *const enroll_reasons[] = {
        "TokenUnknown", "TokenExpired", "TokenExhausted", "BadProof", "BadKey",
        "HostRevoked",  "HostInUse",    "HostConnected",  "KeyInUse", "NameTaken",
        "Revoked",      "NoCurve",      "Other"};

#define MAX_KINDS 32

struct Metrics {
        Manager *m;
        struct MHD_Daemon *httpd;
        sd_event_source *io, *timer;
        Histogram reconcile[MAX_KINDS];
        uint64_t reconcile_errors[MAX_KINDS];
        Histogram fanout_latency;
        uint64_t enroll_failures[ELEMENTSOF(enroll_reasons)];
        uint64_t store_events[MAX_KINDS];
        uint64_t desired_sent;
};

static void observe(Histogram *h, double v) {
        for (int i = 0; i < N_BUCKETS; i++)
                if (v <= latency_buckets[i])
                        h->counts[i]++;
        h->counts[N_BUCKETS]++;
        h->count++;
        h->sum += v;
}

static int kind_index(const char *kind) {
        for (int i = 0; anvil_kinds[i] && i < MAX_KINDS; i++)
                if (streq(anvil_kinds[i]->kind, kind))
                        return i;
        return -1;
}

void metrics_store_event(Metrics *x, const char *kind) {
        int i = x ? kind_index(kind) : -1;
        if (i >= 0)
                x->store_events[i]++;
}

void metrics_desired_sent(Metrics *x, int64_t generation) {
        (void)generation;
        if (x)
                x->desired_sent++;
}

void metrics_ack(Metrics *x, int64_t generation, uint64_t sent_at_usec) {
        (void)generation;
        if (!x || !sent_at_usec)
                return;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now >= sent_at_usec)
                observe(&x->fanout_latency, (double)(now - sent_at_usec) / 1e6);
}

void metrics_enroll_failure(Metrics *x, const char *reason) {
        if (!x)
                return;
        size_t i;
        for (i = 0; i + 1 < ELEMENTSOF(enroll_reasons); i++)
                if (streq(enroll_reasons[i], reason))
                        break;
        x->enroll_failures[i]++;
}

void metrics_reconcile(Metrics *x, const char *kind, uint64_t usec, int result) {
        int i = x ? kind_index(kind) : -1;
        if (i < 0)
                return;
        observe(&x->reconcile[i], (double)usec / 1e6);
        if (result < 0)
                x->reconcile_errors[i]++;
}

static void emit_histogram(FILE *f, const char *name, const char *labels, const Histogram *h) {
        for (int i = 0; i < N_BUCKETS; i++)
                fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "",
                        latency_buckets[i], (unsigned long long)h->counts[i]);
        fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
                (unsigned long long)h->counts[N_BUCKETS]);
        fprintf(f, "%s_sum{%s} %.6f\n", name, labels, h->sum);
        fprintf(f, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

typedef struct PhaseCount {
        char key[160];
        uint64_t n;
} PhaseCount;

typedef struct CountCtx {
        PhaseCount items[256];
        size_t n;
        bool per_cluster;
} CountCtx;

static int count_cb(Obj *o, void *userdata) {
        CountCtx *c = userdata;
        char key[160];
        const char *phase = obj_get_str(o, "status.phase");
        if (c->per_cluster)
                snprintf(key, sizeof(key), "cluster=\"%s\",phase=\"%s\"",
                         strempty(obj_get_str(o, "spec.clusterName")), phase ? phase : "Unknown");
        else
                snprintf(key, sizeof(key), "phase=\"%s\"", phase ? phase : "Unknown");
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->items[i].key, key)) {
                        c->items[i].n++;
                        return 0;
                }
        if (c->n < ELEMENTSOF(c->items)) {
                snprintf(c->items[c->n].key, sizeof(c->items[c->n].key), "%s", key);
                c->items[c->n++].n = 1;
        }
        return 0;
}

int metrics_render(Metrics *x, char **ret) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return -ENOMEM;
        Manager *m = x->m;
        FanoutStats fs = {0};
        if (m->fanout)
                fanout_get_stats(m->fanout, &fs);

        fprintf(f, "# HELP anvil_hosts Enrolled hosts by phase.\n# TYPE anvil_hosts gauge\n");
        CountCtx hc = {0};
        (void)registry_list(m->reg, &kind_host, NULL, count_cb, &hc);
        for (size_t i = 0; i < hc.n; i++)
                fprintf(f, "anvil_hosts{%s} %llu\n", hc.items[i].key,
                        (unsigned long long)hc.items[i].n);

        fprintf(f, "# HELP anvil_machines Machines by cluster and phase.\n"
                   "# TYPE anvil_machines gauge\n");
        CountCtx mc = {.per_cluster = true};
        (void)registry_list(m->reg, &kind_machine, NULL, count_cb, &mc);
        for (size_t i = 0; i < mc.n; i++)
                fprintf(f, "anvil_machines{%s} %llu\n", mc.items[i].key,
                        (unsigned long long)mc.items[i].n);

        fprintf(f,
                "# HELP anvil_agents_connected Agents with a live connection.\n"
                "# TYPE anvil_agents_connected gauge\nanvil_agents_connected %zu\n",
                fs.connected);
        fprintf(f,
                "# HELP anvil_fanout_pending_acks Hosts whose desired generation is not yet "
                "acknowledged.\n# TYPE anvil_fanout_pending_acks gauge\n"
                "anvil_fanout_pending_acks %zu\n",
                fs.pending_acks);
        fprintf(f,
                "# HELP anvil_fanout_desired_sent_total DESIRED messages sent.\n"
                "# TYPE anvil_fanout_desired_sent_total counter\n"
                "anvil_fanout_desired_sent_total %llu\n",
                (unsigned long long)x->desired_sent);
        fprintf(f,
                "# HELP anvil_agent_messages_total Messages received from agents.\n"
                "# TYPE anvil_agent_messages_total counter\n"
                "anvil_agent_messages_total %llu\n",
                (unsigned long long)fs.messages_in);
        fprintf(f,
                "# HELP anvil_agent_messages_dropped_total Agent messages dropped as invalid "
                "or unauthorised.\n# TYPE anvil_agent_messages_dropped_total counter\n"
                "anvil_agent_messages_dropped_total %llu\n",
                (unsigned long long)fs.messages_dropped);
        fprintf(f, "# HELP anvil_fanout_ack_latency_seconds Time from sending a desired "
                   "generation to its acknowledgement.\n"
                   "# TYPE anvil_fanout_ack_latency_seconds histogram\n");
        emit_histogram(f, "anvil_fanout_ack_latency_seconds", "", &x->fanout_latency);

        fprintf(f, "# HELP anvil_enroll_failures_total Refused enrollments by reason.\n"
                   "# TYPE anvil_enroll_failures_total counter\n");
        for (size_t i = 0; i < ELEMENTSOF(enroll_reasons); i++)
                fprintf(f, "anvil_enroll_failures_total{reason=\"%s\"} %llu\n", enroll_reasons[i],
                        (unsigned long long)x->enroll_failures[i]);

        fprintf(f, "# HELP anvil_reconcile_duration_seconds Reconcile duration per controller.\n"
                   "# TYPE anvil_reconcile_duration_seconds histogram\n");
        for (int i = 0; anvil_kinds[i] && i < MAX_KINDS; i++) {
                if (x->reconcile[i].count == 0)
                        continue;
                char labels[96];
                snprintf(labels, sizeof(labels), "controller=\"%s\"", anvil_kinds[i]->singular);
                emit_histogram(f, "anvil_reconcile_duration_seconds", labels, &x->reconcile[i]);
        }
        fprintf(f, "# HELP anvil_reconcile_errors_total Failed reconciles per controller.\n"
                   "# TYPE anvil_reconcile_errors_total counter\n");
        for (int i = 0; anvil_kinds[i] && i < MAX_KINDS; i++)
                if (x->reconcile[i].count)
                        fprintf(f, "anvil_reconcile_errors_total{controller=\"%s\"} %llu\n",
                                anvil_kinds[i]->singular,
                                (unsigned long long)x->reconcile_errors[i]);

        StoreStats ss;
        store_get_stats(m->store, &ss);
        fprintf(f,
                "# HELP anvil_store_commits_total Durable (fsync'd) store commits.\n"
                "# TYPE anvil_store_commits_total counter\nanvil_store_commits_total %llu\n",
                (unsigned long long)ss.commits);
        fprintf(f,
                "# HELP anvil_store_writes_total Object writes.\n"
                "# TYPE anvil_store_writes_total counter\nanvil_store_writes_total %llu\n",
                (unsigned long long)ss.writes);
        fprintf(f,
                "# HELP anvil_store_commit_seconds_total Time spent committing.\n"
                "# TYPE anvil_store_commit_seconds_total counter\n"
                "anvil_store_commit_seconds_total %.6f\n",
                (double)ss.commit_usec_total / 1e6);
        fprintf(f,
                "# HELP anvil_store_revision Current store revision.\n"
                "# TYPE anvil_store_revision gauge\nanvil_store_revision %lld\n",
                (long long)store_revision(m->store));
        fprintf(f,
                "# HELP anvil_workqueue_depth Keys waiting to be reconciled.\n"
                "# TYPE anvil_workqueue_depth gauge\nanvil_workqueue_depth %zu\n",
                m->queue ? queue_length(m->queue) : 0);
        fclose(f);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
        Metrics *x = cls;
        (void)version;
        (void)upload;
        (void)upload_size;
        (void)con_cls;
        struct MHD_Response *resp;
        enum MHD_Result ret;
        if (!streq(method, "GET") && !streq(method, "HEAD")) {
                static const char msg[] = "method not allowed\n";
                resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
                                                       MHD_RESPMEM_PERSISTENT);
                ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
                MHD_destroy_response(resp);
                return ret;
        }
        if (!streq(url, "/metrics")) {
                static const char msg[] = "anvil-coordinator: metrics are at /metrics\n";
                resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
                                                       MHD_RESPMEM_PERSISTENT);
                ret = MHD_queue_response(c, MHD_HTTP_NOT_FOUND, resp);
                MHD_destroy_response(resp);
                return ret;
        }
        char *text = NULL;
        if (metrics_render(x, &text) < 0)
                return MHD_NO;
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ret;
}

static int on_httpd_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Metrics *x = userdata;
        (void)s;
        (void)fd;
        (void)revents;
        MHD_run(x->httpd);
        return 0;
}

static int on_httpd_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Metrics *x = userdata;
        MHD_run(x->httpd);
        sd_event_source_set_time(s, usec + USEC_PER_SEC);
        return 0;
}

int metrics_new(Manager *m, Metrics **ret) {
        Metrics *x = calloc(1, sizeof(Metrics));
        if (!x)
                return log_oom();
        x->m = m;
        *ret = x;
        return 0;
}

int metrics_start(Metrics *x, const char *listen) {
        if (isempty(listen))
                return 0;
        char host[64];
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof(host))
                return log_error_errno(-EINVAL, "Invalid --metrics-listen '%s': use ADDR:PORT.",
                                       listen);
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = 0;
        char *end;
        long port = strtol(colon + 1, &end, 10);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                return log_error_errno(-EINVAL, "Invalid --metrics-listen '%s': use IPv4ADDR:PORT.",
                                       listen);
        sa.sin_port = htons((uint16_t)port);
        x->httpd = MHD_start_daemon(MHD_USE_EPOLL, (uint16_t)port, NULL, NULL, on_http, x,
                                    MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT,
                                    (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                    MHD_OPTION_END);
        if (!x->httpd)
                return log_error_errno(-EADDRINUSE, "Failed to serve metrics on %s.", listen);
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(x->httpd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return log_error_errno(-EIO, "libmicrohttpd gave no epoll fd.");
        int r = sd_event_add_io(x->m->event, &x->io, info->epoll_fd, EPOLLIN, on_httpd_io, x);
        if (r >= 0)
                r = sd_event_add_time_relative(x->m->event, &x->timer, CLOCK_MONOTONIC,
                                               USEC_PER_SEC, USEC_PER_SEC, on_httpd_timer, x);
        if (r >= 0)
                r = sd_event_source_set_enabled(x->timer, SD_EVENT_ON);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the metrics socket: %m");
        log_info("Serving metrics on http://%s/metrics.", listen);
        return 0;
}

Metrics *metrics_free(Metrics *x) {
        if (!x)
                return NULL;
        sd_event_source_disable_unref(x->io);
        sd_event_source_disable_unref(x->timer);
        if (x->httpd)
                MHD_stop_daemon(x->httpd);
        free(x);
        return NULL;
}
