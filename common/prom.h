/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus metrics for both daemons: histograms, the text exposition format (0.0.4), and
 * the HTTP endpoint.
 *
 * The endpoint is libmicrohttpd without a thread of its own: its epoll fd is an io source
 * of the daemon's sd-event loop (plus a 1 s timer for its connection timeouts), so a scrape
 * runs between two events of the loop and reads the daemon's state without locks. A render
 * callback writes the whole text; it should read counters kept up to date as things happen,
 * never walk the store. At most 16 concurrent connections, 10 s idle timeout.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "macro.h"

#define PROM_MAX_BUCKETS 16

/* Latencies from 1 ms to 60 s: reconciles, acknowledgements, agent steps. */
extern const double prom_latency_buckets[];
extern const size_t prom_latency_buckets_n;

typedef struct PromHistogram {
        const double *bounds;                  /* upper bounds, ascending; +Inf is implied */
        size_t n_bounds;                       /* ≤ PROM_MAX_BUCKETS */
        uint64_t counts[PROM_MAX_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
        uint64_t count;
        double sum;
} PromHistogram;

void prom_histogram_init(PromHistogram *h, const double *bounds, size_t n_bounds);
void prom_observe(PromHistogram *h, double v);

/* "# HELP" and "# TYPE" lines of a metric family (type: counter, gauge, histogram). */
void prom_family(FILE *f, const char *name, const char *type, const char *help);
/* One sample; labels is NULL or the inside of the braces, already escaped ("a=\"b\""). */
void prom_sample(FILE *f, const char *name, const char *labels, double value);
void prom_sample_u64(FILE *f, const char *name, const char *labels, uint64_t value);
/* name_bucket (cumulative, with le), name_sum, name_count. */
void prom_histogram(FILE *f, const char *name, const char *labels, const PromHistogram *h);
/* A label value escaped for the text format (\\, \", \n), into buf (truncated to size). */
const char *prom_escape(const char *value, char *buf, size_t size);

/* Standard process metrics: process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds. */
void prom_process_metrics(FILE *f);

typedef int (*PromRenderFn)(FILE *f, void *userdata);
typedef struct PromServer PromServer;

/* Serves GET /metrics on listen ("IPV4ADDR:PORT") from e. -EINVAL for a malformed address,
 * -EADDRINUSE when it cannot listen there. */
int prom_server_start(sd_event *e, const char *listen, PromRenderFn render, void *userdata,
                      PromServer **ret);
PromServer *prom_server_free(PromServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(PromServer *, prom_server_free);
