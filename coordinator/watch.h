/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The watch hub behind `anvilctl get -w`: a bounded in-memory history of committed changes
 * (a ring of store events, each with the object's encoded bytes) and the admin requests
 * waiting for the next matching change (long polls).
 *
 * A client lists (get answers with the store revision), then asks "watch KIND since revision
 * R"; the hub answers at once with the matching changes after R, or parks the request until
 * one is committed or the hold time passes (then answers with none, and the client asks
 * again). A client whose R is older than the history kept is told "Expired" and lists again,
 * as with a Kubernetes watch that gets 410 Gone. Everything runs on the coordinator's one
 * thread: the store watch callback appends, a deferred event source answers parked
 * requests after the commit that made the change visible.
 *
 * Expected load: a handful of operators' watches (at most WATCH_MAX_PARKED parked at once);
 * the history holds the last WATCH_HISTORY changes or WATCH_HISTORY_BYTES of objects,
 * whichever is smaller — seconds to minutes of a large rollout.
 */
#pragma once

#include "manager.h"

#define WATCH_HISTORY       8192
#define WATCH_HISTORY_BYTES (32U << 20)
#define WATCH_MAX_PARKED    256
#define WATCH_HOLD_USEC     (20 * USEC_PER_SEC)

typedef struct WatchHub WatchHub;

int watch_hub_new(Manager *m, WatchHub **ret);
WatchHub *watch_hub_free(WatchHub *h);

/* Handles an admin "watch" request from peer rid. Either fills resp (answered now, *parked
 * false) or keeps the request and answers it later itself (*parked true, resp untouched). */
int watch_hub_request(WatchHub *h, const void *rid, size_t rid_len, const Obj *req, Obj *resp,
                      bool *parked);

/* Oldest revision a watch may still start from (changes after it are all kept). */
int64_t watch_hub_floor(WatchHub *h);
