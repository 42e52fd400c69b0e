/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fan-out: the coordinator's side of every agent connection, and the hot path.
 *
 * Per enrolled host it keeps a small HostLink (key, routing id, generations, timers; ~200
 * bytes) indexed by CURVE key and by host name. The agent's identity is always the key ZAP
 * authenticated (the message's User-Id), never a field of the message.
 *
 * Delivery converges by generation: a Host's desired state is its spec, versioned by
 * metadata.generation. When it changes (a committed watch event) the fan-out sends DESIRED
 * to that host alone, and re-sends with exponential backoff until the agent ACKs that
 * generation; on reconnect the agent's HELLO says what it has, and the fan-out re-sends if
 * it is behind. Duplicates and stale ACKs are ignored: the agent applies a generation once.
 *
 * Agent reports (ACK, STATUS, REPORT) become Host status writes; heartbeats only touch
 * memory (last seen), so 10,000 hosts at 10 s cost no disk writes. A Host not heard from
 * within the grace period is marked disconnected (phase Unreachable).
 */
#pragma once

#include "manager.h"
#include "wire.h"

int fanout_new(Manager *m, Fanout **ret);
Fanout *fanout_free(Fanout *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Fanout *, fanout_free);

/* Loads a Host from the store (at startup). */
int fanout_load_host(Fanout *f, const Obj *host);
/* The agent ROUTER's message handler (a ZSourceHandler). */
int fanout_on_router(void *zsock, void *userdata);
/* Sends what the last commit calls for (called by the commit step, after the commit). */
void fanout_flush(Fanout *f);
/* A committed change to a Host (obj NULL when deleted; name always given). */
void fanout_host_changed(Fanout *f, const char *name, const Obj *host);

typedef enum KeyStatus {
        KEY_UNKNOWN,
        KEY_ENROLLED,
        KEY_REVOKED,
} KeyStatus;
KeyStatus fanout_key_status(Fanout *f, const char *key_z85);
/* Registers/unregisters a key -> host mapping (enrollment, revocation, deletion). */
int fanout_link_host(Fanout *f, const char *key_z85, const char *host);
/* Records the product UUID of the host of key (enrollment looks machines up by it). */
int fanout_link_uuid(Fanout *f, const char *key_z85, const char *uuid);
/* The name of the host with that product UUID / key, NULL if none. Borrowed. */
const char *fanout_host_by_uuid(Fanout *f, const char *uuid);
const char *fanout_host_by_key(Fanout *f, const char *key_z85);
/* Counts as hearing from the host of key now (its enrollment): if its agent does not come
 * back with its own key within the grace period, the host is marked unreachable. */
void fanout_host_heard(Fanout *f, const char *key_z85);

/* Sends a message to a host's live connection: -ENOTCONN when it has none (the caller's
 * level-triggered retry covers it), -EAGAIN when its queue is full. */
int fanout_send(Fanout *f, const char *host, MsgType type, const Obj *body);

/* For describe/metrics. */
typedef struct FanoutStats {
        size_t hosts, connected, pending_acks;
        uint64_t desired_sent, acks, messages_in, messages_dropped;
} FanoutStats;
void fanout_get_stats(Fanout *f, FanoutStats *ret);
bool fanout_host_connected(Fanout *f, const char *host);
/* Monotonic µs of the last message from host, 0 if never (since start). */
uint64_t fanout_host_last_seen(Fanout *f, const char *host);

/* How long an agent may take to come back after the coordinator restarted: its heartbeat
 * grace, plus the agents' longest reconnect interval (agent/link.c: 30 s), during which their
 * link retries in silence. Until then a host not heard from since the start is not judged
 * (not marked Unreachable, not counted unhealthy). */
#define AGENT_RECONNECT_MAX_USEC (30 * USEC_PER_SEC)
uint64_t fanout_startup_grace_usec(Fanout *f);
