/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "prom.h"

const double prom_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5,   1,      2.5,   5,    10,    30,   60};
const size_t prom_latency_buckets_n = ELEMENTSOF(prom_latency_buckets);

void prom_histogram_init(PromHistogram *h, const double *bounds, size_t n_bounds) {
        assert(n_bounds <= PROM_MAX_BUCKETS);
        *h = (PromHistogram){.bounds = bounds, .n_bounds = n_bounds};
}

void prom_observe(PromHistogram *h, double v) {
        size_t i = 0;
        while (i < h->n_bounds && v > h->bounds[i])
                i++;
        h->counts[i]++;
        h->count++;
        h->sum += v;
}

void prom_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_name(FILE *f, const char *name, const char *suffix, const char *labels,
                     const char *extra) {
        fprintf(f, "%s%s", name, suffix);
        bool any = !isempty(labels) || !isempty(extra);
        if (any)
                fprintf(f, "{%s%s%s}", strempty(labels),
                        !isempty(labels) && !isempty(extra) ? "," : "", strempty(extra));
}

void prom_sample(FILE *f, const char *name, const char *labels, double value) {
        put_name(f, name, "", labels, NULL);
        if (isnan(value))
                fputs(" NaN\n", f);
        else if (isinf(value))
                fputs(value > 0 ? " +Inf\n" : " -Inf\n", f);
        else
                fprintf(f, " %.10g\n", value);
}

void prom_sample_u64(FILE *f, const char *name, const char *labels, uint64_t value) {
        put_name(f, name, "", labels, NULL);
        fprintf(f, " %llu\n", (unsigned long long)value);
}

void prom_histogram(FILE *f, const char *name, const char *labels, const PromHistogram *h) {
        uint64_t cumulative = 0;
        char le[64];
        for (size_t i = 0; i < h->n_bounds; i++) {
                cumulative += h->counts[i];
                snprintf(le, sizeof(le), "le=\"%g\"", h->bounds[i]);
                put_name(f, name, "_bucket", labels, le);
                fprintf(f, " %llu\n", (unsigned long long)cumulative);
        }
        cumulative += h->counts[h->n_bounds];
        put_name(f, name, "_bucket", labels, "le=\"+Inf\"");
        fprintf(f, " %llu\n", (unsigned long long)cumulative);
        put_name(f, name, "_sum", labels, NULL);
        fprintf(f, " %.9g\n", h->sum);
        put_name(f, name, "_count", labels, NULL);
        fprintf(f, " %llu\n", (unsigned long long)h->count);
}

const char *prom_escape(const char *value, char *buf, size_t size) {
        size_t n = 0;
        for (const char *p = strempty(value); *p && n + 3 < size; p++) {
                if (*p == '\\' || *p == '"') {
                        buf[n++] = '\\';
                        buf[n++] = *p;
                } else if (*p == '\n') {
                        buf[n++] = '\\';
                        buf[n++] = 'n';
                } else
                        buf[n++] = *p;
        }
        if (size > 0)
                buf[n < size ? n : size - 1] = 0;
        return buf;
}

/* ---- process metrics, from /proc/self ---- */

static size_t count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return 0;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n > 0 ? n - 1 : 0; /* not the directory's own fd */
}

static uint64_t boot_time(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/stat", "re");
        char line[256];
        unsigned long long t = 0;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "btime %llu", &t) == 1)
                        break;
        return t;
}

void prom_process_metrics(FILE *f) {
        _cleanup_fclose_ FILE *st = fopen("/proc/self/stat", "re");
        char buf[1024];
        unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
        long long rss = 0;
        if (st && fgets(buf, sizeof(buf), st)) {
                /* After the command name in parentheses: fields 3 onwards. */
                const char *p = strrchr(buf, ')');
                if (p)
                        (void)sscanf(
                                p + 2,
                                "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
                                "%*d %*d %*d %*d %llu %llu %lld",
                                &utime, &stime, &start, &vsize, &rss);
        }
        long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        struct rlimit rl = {0};
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        prom_family(f, "process_cpu_seconds_total", "counter",
                    "Total user and system CPU time spent in seconds.");
        prom_sample(f, "process_cpu_seconds_total", NULL, (double)(utime + stime) / (double)tick);
        prom_family(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        prom_sample_u64(f, "process_resident_memory_bytes", NULL, (uint64_t)rss * (uint64_t)page);
        prom_family(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        prom_sample_u64(f, "process_virtual_memory_bytes", NULL, vsize);
        prom_family(f, "process_open_fds", "gauge", "Number of open file descriptors.");
        prom_sample_u64(f, "process_open_fds", NULL, count_fds());
        prom_family(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        prom_sample_u64(f, "process_max_fds", NULL, (uint64_t)rl.rlim_cur);
        prom_family(f, "process_start_time_seconds", "gauge",
                    "Start time of the process since unix epoch in seconds.");
        prom_sample(f, "process_start_time_seconds", NULL,
                    (double)boot_time() + (double)start / (double)tick);
}

/* ---- the HTTP endpoint ---- */

/* libmicrohttpd is opened when an endpoint starts, not linked: Debian's brings GnuTLS and nine
 * more libraries with it (~2.4 MiB resident, ~180 KiB of it private, measured on an idle
 * agent), which an agent without --metrics-listen, the default, would carry for nothing
 * (docs/performance.md). The soname is the one of every libmicrohttpd since 0.9.x; the
 * packages depend on it by name (packaging/debian/). Opened once, never closed. */
#define MHD_SONAME "libmicrohttpd.so.12"

static struct {
        bool loaded;
        __typeof__(MHD_start_daemon) *start_daemon;
        __typeof__(MHD_stop_daemon) *stop_daemon;
        __typeof__(MHD_get_daemon_info) *get_daemon_info;
        __typeof__(MHD_run) *run;
        __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
        __typeof__(MHD_add_response_header) *add_response_header;
        __typeof__(MHD_queue_response) *queue_response;
        __typeof__(MHD_destroy_response) *destroy_response;
} mhd;

static int mhd_load(void) {
        if (mhd.loaded)
                return 0;
        void *dl = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                log_debug("Cannot open %s: %s", MHD_SONAME, dlerror());
                return -ELIBACC;
        }
        const struct {
                const char *name;
                void **fn;
        } syms[] = {
                {"MHD_start_daemon", (void **)&mhd.start_daemon},
                {"MHD_stop_daemon", (void **)&mhd.stop_daemon},
                {"MHD_get_daemon_info", (void **)&mhd.get_daemon_info},
                {"MHD_run", (void **)&mhd.run},
                {"MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer},
                {"MHD_add_response_header", (void **)&mhd.add_response_header},
                {"MHD_queue_response", (void **)&mhd.queue_response},
                {"MHD_destroy_response", (void **)&mhd.destroy_response},
        };
        for (size_t i = 0; i < ELEMENTSOF(syms); i++)
                if (!(*syms[i].fn = dlsym(dl, syms[i].name))) {
                        log_debug("%s has no %s: %s", MHD_SONAME, syms[i].name, dlerror());
                        dlclose(dl);
                        return -ELIBBAD;
                }
        mhd.loaded = true;
        return 0;
}

struct PromServer {
        struct MHD_Daemon *httpd;
        sd_event_source *io, *timer;
        PromRenderFn render;
        void *userdata;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text) {
        struct MHD_Response *resp =
                mhd.create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        enum MHD_Result ret = mhd.queue_response(c, status, resp);
        mhd.destroy_response(resp);
        return ret;
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
        PromServer *s = cls;
        (void)version;
        (void)upload;
        (void)upload_size;
        (void)con_cls;
        if (!streq(method, "GET") && !streq(method, "HEAD"))
                return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        if (!streq(url, "/metrics"))
                return reply(c, MHD_HTTP_NOT_FOUND, "metrics are at /metrics\n");
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return MHD_NO;
        int r = s->render(f, s->userdata);
        if (fclose(f) != 0 || r < 0 || !text) {
                free(text);
                return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render the metrics\n");
        }
        struct MHD_Response *resp =
                mhd.create_response_from_buffer(size, text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return MHD_NO;
        }
        mhd.add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        enum MHD_Result ret = mhd.queue_response(c, MHD_HTTP_OK, resp);
        mhd.destroy_response(resp);
        return ret;
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        PromServer *s = userdata;
        (void)es;
        (void)fd;
        (void)revents;
        mhd.run(s->httpd);
        return 0;
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        PromServer *s = userdata;
        mhd.run(s->httpd);
        sd_event_source_set_time(es, usec + USEC_PER_SEC);
        return 0;
}

int prom_server_start(sd_event *e, const char *listen, PromRenderFn render, void *userdata,
                      PromServer **ret) {
        char host[64];
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof(host))
                return -EINVAL;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = 0;
        char *end;
        errno = 0;
        long port = strtol(colon + 1, &end, 10);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        if (errno || end == colon + 1 || *end || port < 0 || port > 65535 ||
            inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                return -EINVAL;
        sa.sin_port = htons((uint16_t)port);

        int r = mhd_load();
        if (r < 0)
                return r;
        _cleanup_(prom_server_freep) PromServer *s = calloc(1, sizeof(PromServer));
        if (!s)
                return -ENOMEM;
        s->render = render;
        s->userdata = userdata;
        s->httpd = mhd.start_daemon(MHD_USE_EPOLL, (uint16_t)port, NULL, NULL, on_http, s,
                                    MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT,
                                    (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                    MHD_OPTION_END);
        if (!s->httpd)
                return -EADDRINUSE;
        const union MHD_DaemonInfo *info = mhd.get_daemon_info(s->httpd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return -EIO;
        r = sd_event_add_io(e, &s->io, info->epoll_fd, EPOLLIN, on_io, s);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &s->timer, CLOCK_MONOTONIC, USEC_PER_SEC,
                                               USEC_PER_SEC, on_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->timer, SD_EVENT_ON);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

PromServer *prom_server_free(PromServer *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->timer);
        if (s->httpd)
                mhd.stop_daemon(s->httpd);
        free(s);
        return NULL;
}
