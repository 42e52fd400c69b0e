/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A ZeroMQ socket as an sd-event source.
 *
 * ZMQ_FD is edge-like: it signals that the socket's state may have changed, and after any
 * zmq_send()/zmq_recv() on the socket pending input may exist without a new signal. So the
 * socket is drained (ZMQ_EVENTS & ZMQ_POLLIN) on three occasions: when the fd fires, after
 * every loop iteration that dispatched anything (a post source), and, when a drain stopped
 * at its per-iteration budget to stay fair to the other sources, from a deferred source on
 * the next iteration.
 */
#pragma once

#include <systemd/sd-event.h>

typedef struct ZSource ZSource;

/* Called once per readable message; must consume exactly one message (all its frames) with
 * ZMQ_DONTWAIT. A negative return is logged by the caller's handler, not here; the drain
 * continues with the next message. */
typedef int (*ZSourceHandler)(void *zsock, void *userdata);

int zsource_new(sd_event *e, void *zsock, ZSourceHandler handler, void *userdata,
                unsigned budget, ZSource **ret);
ZSource *zsource_free(ZSource *s);
/* Drain now (e.g. right after sending on the socket). */
void zsource_kick(ZSource *s);

#include "macro.h"
DEFINE_TRIVIAL_CLEANUP_FUNC(ZSource *, zsource_free);
