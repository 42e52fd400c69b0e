/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's top-level object: it owns the sd-event loop and everything served from
 * it — the agent ROUTER (TCP, CURVE), the ZAP handler (inproc), the admin ROUTER (ipc), the
 * store, the work queue and its controllers, and the fan-out to agents. One thread, no locks.
 *
 * One loop iteration: sockets and timers are dispatched (each may write to the store and
 * queue replies in the outbox), the work queue runs a batch of reconciles, then the commit
 * step (a post source) makes the iteration's writes durable, feeds their watch events to
 * the queue and the fan-out, and only then sends the outbox. Nothing is ever said to a peer
 * that a crash could take back.
 */
#pragma once

#include <systemd/sd-event.h>

#include "keys.h"
#include "obj.h"
#include "queue.h"
#include "registry.h"
#include "schema.h"
#include "store.h"
#include "zsource.h"

typedef struct Fanout Fanout;
typedef struct HostPool HostPool;
typedef struct Commands Commands;
typedef struct Metrics Metrics;
typedef struct WatchHub WatchHub;

typedef struct ManagerConfig {
        char *listen;         /* agent endpoint, tcp://ADDR:PORT */
        char *advertise;      /* what agents should connect to (anvilctl info) */
        char *admin_socket;   /* path of the ipc admin socket */
        char *state_dir;      /* store, keys */
        char *key_file;       /* CURVE key pair */
        char *metrics_listen; /* ADDR:PORT or "" to disable */
        uint64_t heartbeat_grace_usec;
        uint64_t resync_usec;
        int log_level;
        char *config_path;                     /* read again on SIGHUP */
        bool config_path_given;                /* --config: a missing file is an error */
        bool grace_from_flag, level_from_flag; /* flags keep winning over the file on reload */
} ManagerConfig;

/* The schema of coordinator.yaml (coordinator-config.c). */
extern const SchemaField coordinator_config_schema[];

typedef struct OutMsg {
        void *sock;
        uint8_t rid[256];
        size_t rid_len;
        char *data;
        size_t size;
} OutMsg;

typedef struct Manager {
        sd_event *event;
        sd_event_source *commit_source, *resync_timer, *watchdog_timer, *status_timer;
        ManagerConfig config;
        KeyPair keys;

        void *zctx;
        void *router; /* agents */
        void *zap;    /* ZAP handler */
        void *admin;  /* anvilctl */
        ZSource *router_src, *zap_src, *admin_src;

        Store *store;
        Registry *reg;
        Queue *queue;
        Fanout *fanout;
        HostPool *pool; /* what controllers ask of all Hosts at once */
        Commands *commands;
        Metrics *metrics;
        WatchHub *watch; /* anvilctl get -w */

        OutMsg *outbox;
        size_t n_outbox, cap_outbox;

        uint64_t started_usec; /* CLOCK_MONOTONIC */
        bool serving;
        int commit_error; /* the last commit's error, 0 once one succeeds again */
        char status[512]; /* the last STATUS= sent, to send only changes */
} Manager;

int manager_new(const ManagerConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_run(Manager *m);

/* Queues a message to a ROUTER peer, sent after the current batch is committed. Takes data. */
int manager_send_after_commit(Manager *m, void *sock, const void *rid, size_t rid_len, char *data,
                              size_t size);

/* Enqueue a reconcile for an object. */
int manager_enqueue(Manager *m, const char *kind, const char *ns, const char *name);
int manager_enqueue_after(Manager *m, const char *kind, const char *ns, const char *name,
                          uint64_t usec);
/* Records a Kubernetes-style Event for obj (reason CamelCase, type Normal/Warning). */
void manager_event(Manager *m, const Obj *obj, const char *type, const char *reason,
                   const char *fmt, ...) _printf_(5, 6);

void manager_config_done(ManagerConfig *c);
