/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus metrics of the coordinator, in the text exposition format, served by
 * libmicrohttpd from the coordinator's own event loop (MHD's epoll fd is an sd-event source;
 * no thread). Counters are updated in place on the hot paths; gauges that need a walk
 * (hosts by phase, machines by phase) are computed at scrape time.
 */
#pragma once

#include "manager.h"

int metrics_new(Manager *m, Metrics **ret);
Metrics *metrics_free(Metrics *x);
/* listen "ADDR:PORT"; "" disables. */
int metrics_start(Metrics *x, const char *listen);

void metrics_store_event(Metrics *x, const char *kind);
void metrics_desired_sent(Metrics *x, int64_t generation);
void metrics_ack(Metrics *x, int64_t generation, uint64_t sent_at_usec);
void metrics_enroll_failure(Metrics *x, const char *reason);
void metrics_reconcile(Metrics *x, const char *kind, uint64_t usec, int result);
/* Renders the exposition text (for the HTTP handler and tests). */
int metrics_render(Metrics *x, char **ret);
