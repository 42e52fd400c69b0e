/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anvil-loadgen: many simulated agents in one process, for bench/run.sh.
 *
 * Each simulated agent is a real DEALER socket configured exactly as the agent's link
 * (link_socket_configure(): CURVE, queues, jittered reconnect backoff) speaking the real
 * protocol to a real anvil-coordinator: it enrolls with the token's derived key pair and
 * ENROLL{agentKey, proof, facts} (link_enroll_body(), the agent's own code), then connects
 * with its own key, says HELLO on every new connection, sends HEARTBEATs (the first at a
 * random point of the interval, as the agent does), ACKs every DESIRED (re-ACKs what it has
 * for a stale one), reports a provision plan as STATUS Provisioning then, after
 * --provision-delay, STATUS Provisioned and REPORT, and answers COMMAND with RESULT 0. It does
 * not run kubeadm and does not open the sealed bundle (--open-bundle does, to cost what an
 * agent pays).
 *
 * One sd-event loop and one libzmq I/O thread for all of them: every socket's ZMQ_FD is an
 * io source; one 50 ms tick drives heartbeats, retries and simulated plan steps. A new
 * connection is seen as the socket becoming writable (with ZMQ_IMMEDIATE a DEALER has an
 * outgoing pipe only while a handshake-complete connection exists): no socket monitor, so a
 * simulated agent costs two fds (its mailbox and its TCP connection) instead of four.
 *
 * --floor speaks no Anvil protocol: raw frames to bench's anvil-zmqfloor (a bare CURVE
 * ROUTER), to measure ZeroMQ's own cost side by side: "hello" on connect, a 64-byte frame
 * every heartbeat interval, an 8-byte ack for every frame received.
 *
 * Output: every second <dir>/status-<first>.json (counts); on SIGUSR1 the events since the
 * last dump go to <dir>/events-<first>.tsv (written atomically): "D index generation action
 * recv_usec ack_usec" per DESIRED received and "C index usec" per host connection made,
 * times in CLOCK_MONOTONIC µs (the same clock in every process on the machine).
 *
 * Expected load: up to ~5,000 simulated agents per process (2 fds each; the hard fd limit
 * here is 20,000); bench/run.sh starts one process per 2,500.
 */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <zmq.h>

#include "agent-config.h"
#include "facts.h"
#include "fileio.h"
#include "keys.h"
#include "link.h"
#include "log.h"
#include "wire.h"

#define TICK_USEC          (50 * USEC_PER_MSEC)
#define ENROLL_RETRY_USEC  (5 * USEC_PER_SEC)
#define ENROLL_ANSWER_USEC (30 * USEC_PER_SEC)

typedef struct Loadgen Loadgen;

typedef enum PlanState {
        PLAN_IDLE,
        PLAN_PROVISIONING,
        PLAN_PROVISIONED,
        PLAN_DEPROVISIONING,
} PlanState;

static const char *const plan_state_names[] = {"Idle", "Provisioning", "Provisioned",
                                               "Deprovisioning"};

typedef struct Sim {
        Loadgen *lg;
        unsigned index; /* global: the host is bench-<index> */
        KeyPair keys;
        void *sock;
        sd_event_source *io;
        bool enrolling; /* the socket is the enrollment connection */
        bool connected; /* a handshake-complete connection exists */
        bool queued;    /* on the check list */
        bool resync;    /* a send failed: HELLO again at the next tick */
        bool enrolled;
        int64_t generation; /* applied */
        char action[16];    /* of the plan */
        PlanState state;
        uint64_t hb_seq, next_hb, step_done_at, enroll_at;
} Sim;

typedef struct Event {
        unsigned index;
        char type; /* 'D' desired, 'C' connected */
        char action;
        int64_t generation;
        uint64_t t1, t2;
} Event;

struct Loadgen {
        sd_event *event;
        void *zctx;
        Sim *sims;
        unsigned first, count;
        const char *endpoint, *server_key, *dir, *prefix;
        KeyPair enroll_keys;
        Obj *facts; /* template: productUUID and hostname are set per host */
        uint64_t heartbeat_usec, provision_usec;
        bool floor, open_bundle;
        Sim **check;
        size_t n_check;
        Event *events;
        size_t n_events, cap_events;
        struct {
                uint64_t enrolled, connected, connects, disconnects, hellos, heartbeats, desired,
                        stale_desired, acks, commands, refused, revoked, send_failed, msgs_in;
        } st;
};

static uint64_t now(void) {
        return now_usec(CLOCK_MONOTONIC);
}

static void record(Loadgen *lg, Event ev) {
        if (lg->n_events == lg->cap_events) {
                size_t nc = lg->cap_events ? lg->cap_events * 2 : 4096;
                Event *n = realloc(lg->events, nc * sizeof(Event));
                if (!n)
                        return;
                lg->events = n;
                lg->cap_events = nc;
        }
        lg->events[lg->n_events++] = ev;
}

static void queue_check(Sim *s) {
        if (s->queued || !s->sock)
                return;
        s->queued = true;
        s->lg->check[s->lg->n_check++] = s;
}

static int send_raw(Sim *s, const void *buf, size_t size) {
        if (zmq_send(s->sock, buf, size, ZMQ_DONTWAIT) < 0) {
                s->lg->st.send_failed++;
                s->resync = !s->enrolling;
                return negative_errno();
        }
        /* A send can swallow the fd's edge: look at the socket again after this round. */
        queue_check(s);
        return 0;
}

static int send_msg(Sim *s, MsgType type, const Obj *body) {
        char *buf;
        size_t size;
        int r = wire_encode(type, body, &buf, &size);
        if (r < 0)
                return r;
        r = send_raw(s, buf, size);
        free(buf);
        return r;
}

static Obj *sim_facts(Sim *s) {
        char uuid[40], name[64];
        snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012u", s->index);
        snprintf(name, sizeof(name), "%s-%05u", s->lg->prefix, s->index);
        Obj *f = obj_dup(s->lg->facts);
        if (!f || obj_map_set_str(f, "productUUID", uuid) < 0 ||
            obj_map_set_str(f, "hostname", name) < 0)
                return obj_free(f);
        return f;
}

/* ---- messages as the agent sends them ---- */

static void send_enroll(Sim *s) {
        _cleanup_(obj_freep) Obj *facts = sim_facts(s);
        _cleanup_(obj_freep) Obj *body = NULL;
        if (!facts || link_enroll_body(&s->keys, s->lg->server_key, s->lg->enroll_keys.public_z85,
                                       facts, &body) < 0)
                return;
        s->enroll_at = now() + ENROLL_ANSWER_USEC;
        (void)send_msg(s, MSG_ENROLL, body);
}

static Obj *step_of(Sim *s) {
        _cleanup_(obj_freep) Obj *step = obj_new_map();
        bool done = s->state == PLAN_PROVISIONED || s->state == PLAN_IDLE;
        const char *name = s->state == PLAN_DEPROVISIONING ? "kubeadm-reset"
                           : done                          ? "wait-node"
                                                           : "kubeadm-join";
        if (!step || obj_map_set_str(step, "name", name) < 0 ||
            obj_map_set_int(step, "index", done ? 5 : 3) < 0 ||
            obj_map_set_int(step, "total", 5) < 0)
                return NULL;
        return TAKE_PTR(step);
}

static void send_status(Sim *s) {
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        if (!b || obj_map_set_int(b, "generation", s->generation) < 0 ||
            obj_map_set_str(b, "state", plan_state_names[s->state]) < 0 ||
            obj_map_set_str(b, "action", s->action) < 0 ||
            (!streq(s->action, "Idle") && obj_map_set(b, "step", step_of(s)) < 0))
                return;
        (void)send_msg(s, MSG_STATUS, b);
}

static void send_report(Sim *s) {
        char pid[64], node[64];
        snprintf(pid, sizeof(pid), "anvil://00000000-0000-4000-8000-%012u", s->index);
        snprintf(node, sizeof(node), "%s-%05u", s->lg->prefix, s->index);
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        if (!b || obj_map_set_int(b, "generation", s->generation) < 0 ||
            obj_map_set_str(b, "providerID", pid) < 0 || obj_map_set_str(b, "nodeName", node) < 0 ||
            obj_map_set_bool(b, "nodeReady", true) < 0 ||
            obj_map_set_str(b, "kubeletVersion", "v1.30.2") < 0)
                return;
        (void)send_msg(s, MSG_REPORT, b);
}

static Obj *health(void) {
        /* What an agent watching kubelet and containerd under systemd sends. */
        _cleanup_(obj_freep) Obj *h = obj_new_map();
        if (!h || obj_map_set_bool(h, "healthy", true) < 0)
                return NULL;
        Obj *units = obj_map_ensure_map(h, "units");
        static const char *const names[] = {"containerd.service", "kubelet.service"};
        for (size_t i = 0; units && i < ELEMENTSOF(names); i++) {
                Obj *u = obj_map_ensure_map(units, names[i]);
                if (!u || obj_map_set_str(u, "loadState", "loaded") < 0 ||
                    obj_map_set_str(u, "activeState", "active") < 0 ||
                    obj_map_set_str(u, "subState", "running") < 0 ||
                    obj_map_set_str(u, "result", "success") < 0 ||
                    obj_map_set_int(u, "restarts", 0) < 0)
                        return NULL;
        }
        return units ? TAKE_PTR(h) : NULL;
}

static void send_heartbeat(Sim *s) {
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        if (!b || obj_map_set_int(b, "seq", (int64_t)++s->hb_seq) < 0 ||
            obj_map_set_int(b, "generation", s->generation) < 0 ||
            obj_map_set(b, "health", health()) < 0)
                return;
        if (send_msg(s, MSG_HEARTBEAT, b) >= 0)
                s->lg->st.heartbeats++;
}

static void send_hello(Sim *s) {
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        if (!b || obj_map_set_int(b, "generation", s->generation) < 0 ||
            obj_map_set_str(b, "state", plan_state_names[s->state]) < 0 ||
            obj_map_set_str(b, "action", s->action) < 0 ||
            obj_map_set(b, "facts", sim_facts(s)) < 0)
                return;
        s->resync = false;
        if (send_msg(s, MSG_HELLO, b) < 0)
                return;
        s->lg->st.hellos++;
        if (!streq(s->action, "Idle"))
                send_status(s);
        if (s->state == PLAN_PROVISIONED)
                send_report(s);
}

static void send_floor_frame(Sim *s, const char *what, size_t size) {
        char buf[64] = "";
        snprintf(buf, sizeof(buf), "%s", what);
        (void)send_raw(s, buf, size < sizeof(buf) ? size : sizeof(buf));
}

/* ---- sockets ---- */

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata);

static void sim_close(Sim *s) {
        s->io = sd_event_source_disable_unref(s->io);
        if (s->sock)
                zmq_close(s->sock);
        s->sock = NULL;
        if (s->connected)
                s->lg->st.connected--;
        s->connected = false;
}

static int sim_open(Sim *s, bool enrolling) {
        Loadgen *lg = s->lg;
        sim_close(s);
        s->enrolling = enrolling;
        s->sock = zmq_socket(lg->zctx, ZMQ_DEALER);
        if (!s->sock)
                return log_error_errno(negative_errno(), "Failed to make a socket: %m");
        int r = link_socket_configure(s->sock, lg->server_key,
                                      enrolling ? &lg->enroll_keys : &s->keys);
        if (r < 0)
                return log_error_errno(r, "Failed to configure a socket: %m");
        int fd;
        size_t len = sizeof(fd);
        if (zmq_getsockopt(s->sock, ZMQ_FD, &fd, &len) < 0)
                return negative_errno();
        r = sd_event_add_io(lg->event, &s->io, fd, EPOLLIN, on_io, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch a socket: %m");
        if (zmq_connect(s->sock, lg->endpoint) < 0)
                return log_error_errno(negative_errno(), "Failed to connect to %s: %m",
                                       lg->endpoint);
        return 0;
}

static void on_connected(Sim *s) {
        Loadgen *lg = s->lg;
        lg->st.connected++;
        if (lg->floor) {
                send_floor_frame(s, "hello", 8);
                return;
        }
        if (s->enrolling) {
                send_enroll(s);
                return;
        }
        lg->st.connects++;
        record(lg, (Event){.index = s->index, .type = 'C', .t1 = now()});
        send_hello(s);
        send_heartbeat(s);
}

static void handle_desired(Sim *s, const Obj *body) {
        Loadgen *lg = s->lg;
        int64_t g = 0;
        obj_get_int(body, "generation", &g);
        const char *action = strempty(obj_get_str(body, "action"));
        uint64_t t_recv = now();
        _cleanup_(obj_freep) Obj *ack = obj_new_map();
        if (g <= s->generation) {
                /* A retransmit or a replay: re-acknowledge what we have. */
                lg->st.stale_desired++;
                if (ack && obj_map_set_int(ack, "generation", s->generation) >= 0)
                        (void)send_msg(s, MSG_ACK, ack);
                return;
        }
        lg->st.desired++;
        if (lg->open_bundle && obj_get_str(body, "bootstrap")) {
                void *plain = NULL;
                size_t size;
                if (seal_open(&s->keys, obj_get_str(body, "bootstrap"), &plain, &size) < 0)
                        log_warning("Host %u: cannot open its bootstrap bundle.", s->index);
                free(plain);
        }
        s->generation = g;
        bool had = s->state == PLAN_PROVISIONED || s->state == PLAN_PROVISIONING;
        if (streq(action, "Provision")) {
                if (!had) {
                        s->state = PLAN_PROVISIONING;
                        s->step_done_at = now() + lg->provision_usec;
                }
        } else if (streq(action, "Deprovision")) {
                s->state = PLAN_DEPROVISIONING;
                s->step_done_at = now() + lg->provision_usec / 2;
        } else if (!had)
                s->state = PLAN_IDLE;
        if (!(streq(action, "Idle") && had)) /* an agent keeps a machine it holds */
                snprintf(s->action, sizeof(s->action), "%s", action);
        if (ack && obj_map_set_int(ack, "generation", g) >= 0 && send_msg(s, MSG_ACK, ack) >= 0)
                lg->st.acks++;
        record(lg, (Event){.index = s->index,
                           .type = 'D',
                           .action = action[0] ? action[0] : '?',
                           .generation = g,
                           .t1 = t_recv,
                           .t2 = now()});
        send_status(s);
        if (s->state == PLAN_PROVISIONED)
                send_report(s);
}

static void handle(Sim *s, MsgType type, const Obj *body) {
        Loadgen *lg = s->lg;
        switch (type) {
        case MSG_ENROLLED:
                if (!s->enrolling)
                        break;
                s->enrolled = true;
                lg->st.enrolled++;
                /* The host's own connection, as the agent switches after ENROLLED. */
                (void)sim_open(s, false);
                break;
        case MSG_REFUSED:
                lg->st.refused++;
                log_warning("Host %u: enrollment refused: %s: %s", s->index,
                            strna(obj_get_str(body, "reason")),
                            strna(obj_get_str(body, "message")));
                s->enroll_at = now() + ENROLL_RETRY_USEC;
                break;
        case MSG_DESIRED:
                handle_desired(s, body);
                break;
        case MSG_COMMAND: {
                lg->st.commands++;
                _cleanup_(obj_freep) Obj *b = obj_new_map();
                if (b && obj_map_set_str(b, "id", strempty(obj_get_str(body, "id"))) >= 0 &&
                    obj_map_set_int(b, "exitCode", 0) >= 0 && obj_map_set_str(b, "output", "") >= 0)
                        (void)send_msg(s, MSG_RESULT, b);
                break;
        }
        case MSG_REVOKED:
                lg->st.revoked++;
                break;
        default:
                break;
        }
}

static void receive(Sim *s) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&msg);
                return;
        }
        s->lg->st.msgs_in++;
        if (s->lg->floor) {
                uint64_t t = now();
                record(s->lg,
                       (Event){.index = s->index, .type = 'D', .action = 'F', .t1 = t, .t2 = t});
                zmq_msg_close(&msg);
                send_floor_frame(s, "ack", 8);
                return;
        }
        MsgType type;
        _cleanup_(obj_freep) Obj *body = NULL;
        char err[256];
        int r = wire_decode(CHANNEL_COORDINATOR_TO_AGENT, zmq_msg_data(&msg), zmq_msg_size(&msg),
                            &type, &body, err, sizeof(err));
        zmq_msg_close(&msg);
        if (r < 0) {
                log_warning("Host %u: dropped a message: %s", s->index, err);
                return;
        }
        handle(s, type, body);
}

/* Looks at a socket: a connection made or lost, then every message waiting. */
static void sim_check(Sim *s) {
        for (unsigned n = 0; s->sock && n < 256; n++) {
                int ev = 0;
                size_t len = sizeof(ev);
                if (zmq_getsockopt(s->sock, ZMQ_EVENTS, &ev, &len) < 0)
                        return;
                bool out = ev & ZMQ_POLLOUT;
                if (out && !s->connected) {
                        s->connected = true;
                        on_connected(s);
                        continue; /* the socket may have changed (enrollment done) */
                }
                if (!out && s->connected) {
                        s->connected = false;
                        s->lg->st.connected--;
                        s->lg->st.disconnects++;
                }
                if (!(ev & ZMQ_POLLIN))
                        return;
                receive(s);
        }
        queue_check(s); /* more than a round's worth: later */
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        (void)es;
        (void)fd;
        (void)revents;
        sim_check(userdata);
        return 0;
}

/* After every iteration: the sockets we sent on (their fd edge may be gone). */
static int on_post(sd_event_source *es, void *userdata) {
        Loadgen *lg = userdata;
        (void)es;
        for (int round = 0; round < 8 && lg->n_check > 0; round++) {
                size_t n = lg->n_check;
                Sim **list = malloc(n * sizeof(Sim *));
                if (!list)
                        return 0;
                memcpy(list, lg->check, n * sizeof(Sim *));
                lg->n_check = 0;
                for (size_t i = 0; i < n; i++)
                        list[i]->queued = false;
                for (size_t i = 0; i < n; i++)
                        sim_check(list[i]);
                free(list);
        }
        return 0;
}

/* ---- time ---- */

static int on_tick(sd_event_source *es, uint64_t usec, void *userdata) {
        Loadgen *lg = userdata;
        uint64_t t = now();
        for (unsigned i = 0; i < lg->count; i++) {
                Sim *s = &lg->sims[i];
                if (!s->connected)
                        continue;
                if (s->enrolling) {
                        if (s->enroll_at && t >= s->enroll_at)
                                send_enroll(s);
                        continue;
                }
                if (s->resync && !lg->floor)
                        send_hello(s);
                if (s->step_done_at && t >= s->step_done_at) {
                        s->step_done_at = 0;
                        s->state = s->state == PLAN_DEPROVISIONING ? PLAN_IDLE : PLAN_PROVISIONED;
                        send_status(s);
                        if (s->state == PLAN_PROVISIONED)
                                send_report(s);
                }
                if (t >= s->next_hb) {
                        s->next_hb = t + lg->heartbeat_usec;
                        if (lg->floor)
                                send_floor_frame(s, "heartbeat", 64);
                        else
                                send_heartbeat(s);
                }
        }
        sd_event_source_set_time(es, usec + TICK_USEC);
        return 0;
}

static int write_atomic(const char *path, const char *text, size_t size) {
        _cleanup_free_ char *tmp = strjoin(path, ".tmp");
        if (!tmp)
                return -ENOMEM;
        FILE *f = fopen(tmp, "we");
        if (!f)
                return negative_errno();
        fwrite(text, 1, size, f);
        if (fclose(f) != 0 || rename(tmp, path) < 0)
                return negative_errno();
        return 0;
}

static int on_status(sd_event_source *es, uint64_t usec, void *userdata) {
        Loadgen *lg = userdata;
        char text[1024], path[512];
        int n = snprintf(text, sizeof(text),
                         "{\"count\": %u, \"enrolled\": %llu, \"connected\": %llu, "
                         "\"connects\": %llu, \"disconnects\": %llu, \"hellos\": %llu, "
                         "\"heartbeats\": %llu, \"desired\": %llu, \"staleDesired\": %llu, "
                         "\"acks\": %llu, \"commands\": %llu, \"refused\": %llu, \"revoked\": "
                         "%llu, \"sendFailed\": %llu, \"messagesIn\": %llu}\n",
                         lg->count, (unsigned long long)lg->st.enrolled,
                         (unsigned long long)lg->st.connected, (unsigned long long)lg->st.connects,
                         (unsigned long long)lg->st.disconnects, (unsigned long long)lg->st.hellos,
                         (unsigned long long)lg->st.heartbeats, (unsigned long long)lg->st.desired,
                         (unsigned long long)lg->st.stale_desired, (unsigned long long)lg->st.acks,
                         (unsigned long long)lg->st.commands, (unsigned long long)lg->st.refused,
                         (unsigned long long)lg->st.revoked, (unsigned long long)lg->st.send_failed,
                         (unsigned long long)lg->st.msgs_in);
        snprintf(path, sizeof(path), "%s/status-%u.json", lg->dir, lg->first);
        (void)write_atomic(path, text, (size_t)n);
        sd_event_source_set_time(es, usec + USEC_PER_SEC);
        return 0;
}

static int on_dump(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        Loadgen *lg = userdata;
        (void)es;
        (void)si;
        char *text = NULL, path[512];
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return 0;
        for (size_t i = 0; i < lg->n_events; i++) {
                Event *e = &lg->events[i];
                if (e->type == 'D')
                        fprintf(f, "D %u %lld %c %llu %llu\n", e->index, (long long)e->generation,
                                e->action, (unsigned long long)e->t1, (unsigned long long)e->t2);
                else
                        fprintf(f, "C %u %llu\n", e->index, (unsigned long long)e->t1);
        }
        fclose(f);
        lg->n_events = 0;
        snprintf(path, sizeof(path), "%s/events-%u.tsv", lg->dir, lg->first);
        int r = write_atomic(path, strempty(text), size);
        if (r < 0)
                log_error_errno(r, "Failed to write %s: %m", path);
        free(text);
        return 0;
}

static int on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        (void)si;
        (void)userdata;
        return sd_event_exit(sd_event_source_get_event(es), 0);
}

/* ---- setup ---- */

/* The hosts' key pairs, cached in <dir>/keys-<first>-<count> so that repeated runs keep
 * their identities (a restarted load generator is the same fleet). */
static int load_keys(Loadgen *lg) {
        char path[512];
        snprintf(path, sizeof(path), "%s/keys-%u-%u", lg->dir, lg->first, lg->count);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (f) {
                for (unsigned i = 0; i < lg->count; i++) {
                        KeyPair *k = &lg->sims[i].keys;
                        if (fscanf(f, "%40s %40s", k->public_z85, k->secret_z85) != 2)
                                return log_error_errno(-EBADMSG, "%s is damaged.", path);
                }
                return 0;
        }
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        if (!m)
                return -ENOMEM;
        for (unsigned i = 0; i < lg->count; i++) {
                KeyPair *k = &lg->sims[i].keys;
                if (zmq_curve_keypair(k->public_z85, k->secret_z85) < 0) {
                        fclose(m);
                        return negative_errno();
                }
                fprintf(m, "%s %s\n", k->public_z85, k->secret_z85);
        }
        fclose(m);
        return write_atomic(path, text, size);
}

static void help(void) {
        printf("anvil-loadgen — simulated agents for bench/run.sh.\n\n"
               "  --coordinator URL       tcp://HOST:PORT\n"
               "  --coordinator-key KEY   its public key\n"
               "  --token TOKEN           enrollment token (not with --floor)\n"
               "  --dir DIR               status, events and cached keys\n"
               "  --first N --count N     the hosts bench-<first> .. bench-<first+count-1>\n"
               "  --heartbeat MS          heartbeat interval (default 10000)\n"
               "  --provision-delay MS    a simulated provision plan's length (default 5000)\n"
               "  --prefix NAME           host name prefix (default bench)\n"
               "  --open-bundle           open every sealed bundle, as an agent does\n"
               "  --floor                 raw frames to anvil-zmqfloor, no Anvil protocol\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"coordinator", required_argument, NULL, 'c'},
                {"coordinator-key", required_argument, NULL, 'k'},
                {"token", required_argument, NULL, 't'},
                {"dir", required_argument, NULL, 'd'},
                {"first", required_argument, NULL, 'f'},
                {"count", required_argument, NULL, 'n'},
                {"heartbeat", required_argument, NULL, 'b'},
                {"provision-delay", required_argument, NULL, 'p'},
                {"prefix", required_argument, NULL, 'x'},
                {"open-bundle", no_argument, NULL, 'o'},
                {"floor", no_argument, NULL, 'F'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        Loadgen lg = {.heartbeat_usec = 10 * USEC_PER_SEC,
                      .provision_usec = 5 * USEC_PER_SEC,
                      .prefix = "bench"};
        const char *token = NULL;
        int c;
        log_setup("anvil-loadgen", LOG_TARGET_STDERR);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        lg.endpoint = optarg;
                        break;
                case 'k':
                        lg.server_key = optarg;
                        break;
                case 't':
                        token = optarg;
                        break;
                case 'd':
                        lg.dir = optarg;
                        break;
                case 'f':
                        lg.first = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'n':
                        lg.count = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'b':
                        lg.heartbeat_usec = strtoull(optarg, NULL, 10) * USEC_PER_MSEC;
                        break;
                case 'p':
                        lg.provision_usec = strtoull(optarg, NULL, 10) * USEC_PER_MSEC;
                        break;
                case 'x':
                        lg.prefix = optarg;
                        break;
                case 'o':
                        lg.open_bundle = true;
                        break;
                case 'F':
                        lg.floor = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        if (!lg.endpoint || !lg.server_key || !key_z85_valid(lg.server_key) || !lg.dir ||
            lg.count == 0 || lg.heartbeat_usec == 0 || (!lg.floor && !token)) {
                fprintf(stderr, "anvil-loadgen: --coordinator, a valid --coordinator-key, --dir, "
                                "--count, and --token (unless --floor) are required.\n");
                return 2;
        }
        if (sodium_init() < 0)
                return 1;
        int r = mkdir_p(lg.dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", lg.dir), 1;
        if (token && (r = enroll_keypair_from_token(token, &lg.enroll_keys)) < 0)
                return log_error_errno(r, "Failed to derive the enrollment key: %m"), 1;

        /* This machine's facts, as the agent collects them, as every host's template. */
        AgentConfig cfg = {0};
        if (agent_config_finish(&cfg) < 0)
                return 1;
        free(cfg.product_uuid);
        cfg.product_uuid = strdup("00000000-0000-4000-8000-000000000000");
        r = facts_collect(&cfg, &lg.facts);
        agent_config_done(&cfg);
        if (r < 0)
                return log_error_errno(r, "Failed to collect facts: %m"), 1;

        lg.sims = calloc(lg.count, sizeof(Sim));
        lg.check = calloc(lg.count, sizeof(Sim *));
        if (!lg.sims || !lg.check)
                return log_oom(), 1;
        if ((r = load_keys(&lg)) < 0)
                return log_error_errno(r, "Failed to make the hosts' keys: %m"), 1;

        lg.zctx = zmq_ctx_new();
        if (!lg.zctx)
                return 1;
        zmq_ctx_set(lg.zctx, ZMQ_IO_THREADS, 1);
        zmq_ctx_set(lg.zctx, ZMQ_BLOCKY, 0);
        /* Closed sockets are reaped by the I/O thread later: room for both while enrolling. */
        zmq_ctx_set(lg.zctx, ZMQ_MAX_SOCKETS, 2 * (int)lg.count + 64);

        sd_event *e = NULL;
        if (sd_event_default(&e) < 0)
                return 1;
        lg.event = e;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGUSR1);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        sd_event_source *tick = NULL, *status = NULL, *post = NULL;
        if (sd_event_add_signal(e, NULL, SIGTERM, on_signal, &lg) < 0 ||
            sd_event_add_signal(e, NULL, SIGINT, on_signal, &lg) < 0 ||
            sd_event_add_signal(e, NULL, SIGUSR1, on_dump, &lg) < 0 ||
            sd_event_add_time_relative(e, &tick, CLOCK_MONOTONIC, TICK_USEC, TICK_USEC / 5, on_tick,
                                       &lg) < 0 ||
            sd_event_add_time_relative(e, &status, CLOCK_MONOTONIC, USEC_PER_SEC,
                                       USEC_PER_MSEC * 50, on_status, &lg) < 0 ||
            sd_event_add_post(e, &post, on_post, &lg) < 0)
                return log_error("Failed to set up the event loop."), 1;
        sd_event_source_set_enabled(tick, SD_EVENT_ON);
        sd_event_source_set_enabled(status, SD_EVENT_ON);

        uint64_t t = now();
        for (unsigned i = 0; i < lg.count; i++) {
                Sim *s = &lg.sims[i];
                s->lg = &lg;
                s->index = lg.first + i;
                snprintf(s->action, sizeof(s->action), "Idle");
                /* The first heartbeat at a random point between 0.5 and 1.5 intervals. */
                s->next_hb = t + lg.heartbeat_usec / 2 +
                             randombytes_uniform((uint32_t)(lg.heartbeat_usec / USEC_PER_MSEC)) *
                                     USEC_PER_MSEC;
                if (sim_open(s, !lg.floor) < 0)
                        return 1;
        }
        log_info("%u simulated agents (%u..%u) connecting to %s.", lg.count, lg.first,
                 lg.first + lg.count - 1, lg.endpoint);
        r = sd_event_loop(e);
        for (unsigned i = 0; i < lg.count; i++)
                sim_close(&lg.sims[i]);
        sodium_memzero(lg.sims, lg.count * sizeof(Sim));
        free(lg.sims);
        free(lg.check);
        free(lg.events);
        obj_free(lg.facts);
        sd_event_source_disable_unref(tick);
        sd_event_source_disable_unref(status);
        sd_event_source_disable_unref(post);
        sd_event_unref(e);
        zmq_ctx_term(lg.zctx);
        keypair_wipe(&lg.enroll_keys);
        return r < 0 ? 1 : 0;
}
