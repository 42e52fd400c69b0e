/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Link: the agent's one connection to the coordinator. A DEALER socket with CURVE (our key
 * pair, the coordinator's public key), watched from the event loop; a socket monitor tells
 * when a handshake succeeds (each new connection, including after a coordinator restart:
 * the agent then says HELLO and is resynced) and when the coordinator refused our key.
 * libzmq reconnects by itself; the first reconnect interval is randomised per agent so
 * 10,000 agents do not return in one burst.
 */
#pragma once

#include <systemd/sd-event.h>

#include "keys.h"
#include "obj.h"
#include "wire.h"

typedef struct Link Link;

typedef struct LinkCallbacks {
        void (*connected)(void *userdata);
        void (*disconnected)(void *userdata);
        void (*auth_failed)(void *userdata);
        void (*message)(MsgType type, const Obj *body, void *userdata);
} LinkCallbacks;

/* Sets a DEALER up as the agent's link to the coordinator: CURVE with keys and the
 * coordinator's public key, queues and the jittered reconnect backoff above. The load
 * generator (bench/) configures its simulated agents' sockets with it too. */
int link_socket_configure(void *sock, const char *server_key, const KeyPair *keys);
/* The body of ENROLL: host_keys' public key, the proof that we hold its secret half (over the
 * enrollment key of the connection), and the facts. */
int link_enroll_body(const KeyPair *host_keys, const char *server_key, const char *enroll_public,
                     const Obj *facts, Obj **ret);

int link_new(sd_event *e, const char *endpoint, const char *server_key, const KeyPair *keys,
             const LinkCallbacks *cb, void *userdata, Link **ret);
Link *link_free(Link *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Link *, link_free);
/* Queues a message; -EAGAIN when the queue is full (the caller's state is resent later). */
int link_send(Link *l, MsgType type, const Obj *body);
bool link_connected(Link *l);
/* Queues a last message and lets it leave when the link is freed: the socket lingers up to
 * linger_ms for it (it lingers 0 otherwise). */
int link_send_last(Link *l, MsgType type, const Obj *body, int linger_ms);
