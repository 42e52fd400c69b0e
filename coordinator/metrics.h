/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus metrics of the coordinator (docs/observability.md lists them), served from the
 * coordinator's own event loop by common/prom.c. Everything is kept up to date as it
 * happens — counters and histograms on the hot paths, per-object gauges (machines by phase,
 * deployments' replicas) from committed store events, hosts by phase from the host pool —
 * so a scrape reads memory and never the store (about a millisecond at 10,000 hosts).
 */
#pragma once

#include "manager.h"

int metrics_new(Manager *m, Metrics **ret);
Metrics *metrics_free(Metrics *x);
/* listen "ADDR:PORT"; "" disables. */
int metrics_start(Metrics *x, const char *listen);

void metrics_store_event(Metrics *x, const char *kind);
/* A committed object (obj NULL: deleted), and at startup every stored one. */
void metrics_object_changed(Metrics *x, const KindInfo *k, const char *key, const Obj *obj);
void metrics_desired_sent(Metrics *x, int64_t generation);
/* An ACK of generation; changed_at_usec: when it was committed (CLOCK_MONOTONIC), 0 unknown. */
void metrics_ack(Metrics *x, int64_t generation, uint64_t changed_at_usec);
void metrics_agent_message(Metrics *x, int type);
void metrics_enroll_failure(Metrics *x, const char *reason);
void metrics_reconcile(Metrics *x, const char *kind, uint64_t usec, int result);
void metrics_store_commit(Metrics *x, uint64_t usec);
/* Renders the exposition text (for tests). */
int metrics_render(Metrics *x, char **ret);
