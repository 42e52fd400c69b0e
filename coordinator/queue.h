/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A keyed work queue driven by sd-event, like client-go's rate-limited workqueue:
 *
 *  - a key is queued at most once however often it is added (dedup), so a burst of changes
 *    to one object costs one reconcile;
 *  - add_after() schedules a key for later (requeue-after, error backoff); an earlier
 *    add wins over a later one;
 *  - failures back off per key exponentially (5 ms doubling to 5 min), forgotten on success;
 *  - processing happens from a deferred event source in batches, so sockets and timers are
 *    served between batches.
 *
 * Expected load: a rollout of 10,000 machines puts ~50,000 keys through in a minute.
 */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Queue Queue;

/* Processes one key: < 0 = failed (requeue with backoff), 0 = done, > 0 = requeue after that
 * many microseconds. */
typedef int (*QueueHandler)(const char *key, void *userdata);

int queue_new(sd_event *e, QueueHandler handler, void *userdata, Queue **ret);
Queue *queue_free(Queue *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(Queue *, queue_free);

int queue_add(Queue *q, const char *key);
int queue_add_after(Queue *q, const char *key, uint64_t usec);
size_t queue_length(Queue *q);    /* ready keys */
size_t queue_delayed(Queue *q);   /* scheduled for later */
/* Runs until no key is ready (tests, and shutdown). */
int queue_run_ready(Queue *q);
