/* SPDX-License-Identifier: Apache-2.0 */
#include <malloc.h>
#include <search.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#include "commands.h"
#include "controllers/controllers.h"
#include "enroll.h"
#include "fanout.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "resource.h"
#include "wire.h"

extern const KindInfo kind_host, kind_secret;

#define RETRY_MIN_USEC (1 * USEC_PER_SEC)
#define RETRY_MAX_USEC (60 * USEC_PER_SEC)
#define TICK_USEC      (1 * USEC_PER_SEC)

typedef struct HostLink {
        char key[KEY_Z85_LEN + 1];
        char *host; /* NULL until enrolled */
        char *uuid; /* the host's product UUID (its machine identity), or NULL */
        uint8_t rid[256];
        size_t rid_len;
        bool connected;
        bool revoked;
        bool dirty;          /* DESIRED to be sent after the current commit */
        int64_t desired_gen; /* Host metadata.generation */
        int64_t acked_gen;   /* what the agent has acknowledged */
        int64_t sent_gen;
        uint64_t sent_at; /* CLOCK_MONOTONIC µs */
        uint64_t retry_usec;
        uint64_t last_seen;    /* 0: not heard from since this coordinator started */
        bool stored_connected; /* the Host's status.connected as loaded from the store */
        int srcfd;             /* the connection's fd, to cut a revoked host off */
        uint64_t peer_tag;     /* hash of that fd's peer address, to know it still is ours */
        uint64_t changed_at;   /* when desired_gen last went up (committed), 0 = unknown */
        bool counted_connected, counted_pending; /* what this link adds to the totals */
        /* The ROUTER lost the peer's route (EHOSTUNREACH on a send: its connection closed).
         * Not the same as not connected: the host stays "connected" until it has been silent
         * for the heartbeat grace, and is marked unreachable then, by the tick, as any
         * silent host — it only stops being sent to until it says something again. */
        bool unroutable;
        /* The encoded DESIRED of desired_gen, built from the committed Host when its change
         * was dispatched (no store read at send time, and a retransmit costs none either);
         * NULL when it must be built at send time (a bootstrap bundle is read from its
         * Secret then) or once acknowledged. */
        char *desired_msg;
        size_t desired_size;
        int64_t desired_msg_gen;
        char desired_action[16]; /* its action (test hooks, logs) */
        /* The store revision of this host's last status write that only raised
         * observedGeneration of an idle, unclaimed host: its watch event wakes nothing
         * (fanout_quiet_write()). 0 = none. */
        int64_t quiet_rev;
} HostLink;

/* A connection to shut down at the next tick: after the REVOKED queued to it had time to
 * leave (libzmq writes from its I/O thread; cutting at once would lose it). */
typedef struct PendingCut {
        int fd;
        uint64_t peer_tag;
} PendingCut;
#define MAX_PENDING_CUTS 1024

struct Fanout {
        Manager *m;
        void *by_key;  /* tsearch: HostLink by key */
        void *by_host; /* tsearch: HostLink by host name */
        void *by_uuid; /* tsearch: HostLink by product UUID (enrollment looks up machines) */
        HostLink **dirty;
        size_t n_dirty, cap_dirty;
        HostLink **quiet; /* links with a quiet_rev written in the open store batch */
        size_t n_quiet, cap_quiet;
        sd_event_source *tick;
        FanoutStats stats;
        RateLimit log_limit; /* lines about bad or unauthorised peer messages */
        PendingCut cuts[MAX_PENDING_CUTS];
        size_t n_cuts;
        /* Kept exact at every change (link_count()), so reading them costs nothing. */
        size_t n_hosts, n_connected, n_pending;
        uint64_t connecting_at; /* last HELLO or ENROLL (a new connection), 0 = none */
        bool small_mmap;        /* malloc's mmap threshold is lowered (connections_arriving) */
};

static int cmp_key(const void *a, const void *b) {
        return strcmp(((const HostLink *)a)->key, ((const HostLink *)b)->key);
}

static int cmp_host(const void *a, const void *b) {
        return strcmp(((const HostLink *)a)->host, ((const HostLink *)b)->host);
}

static HostLink *find_by_key(Fanout *f, const char *key) {
        HostLink probe;
        snprintf(probe.key, sizeof(probe.key), "%s", key);
        void *n = tfind(&probe, &f->by_key, cmp_key);
        return n ? *(HostLink **)n : NULL;
}

static int cmp_uuid(const void *a, const void *b) {
        return strcmp(((const HostLink *)a)->uuid, ((const HostLink *)b)->uuid);
}

static HostLink *find_by_uuid(Fanout *f, const char *uuid) {
        HostLink probe = {.uuid = (char *)uuid};
        void *n = tfind(&probe, &f->by_uuid, cmp_uuid);
        return n ? *(HostLink **)n : NULL;
}

static void drop_desired_msg(HostLink *l) {
        free(l->desired_msg);
        l->desired_msg = NULL;
        l->desired_size = 0;
        l->desired_msg_gen = 0;
}

/* Brings the totals up to date with a link that may have changed: its host, its connection
 * or its generations. Called after every such change. */
static void link_count(Fanout *f, HostLink *l) {
        if (l->desired_msg && l->desired_msg_gen <= l->acked_gen)
                drop_desired_msg(l); /* delivered: no retransmit will need it */
        bool connected = l->host && l->connected;
        /* A revoked host is never sent anything again: not awaited. */
        bool pending = l->host && !l->revoked && l->desired_gen > l->acked_gen;
        if (connected != l->counted_connected) {
                f->n_connected = connected ? f->n_connected + 1 : f->n_connected - 1;
                l->counted_connected = connected;
        }
        if (pending != l->counted_pending) {
                f->n_pending = pending ? f->n_pending + 1 : f->n_pending - 1;
                l->counted_pending = pending;
        }
}

/* Forgets the host of a link (deleted, or its name moved to another key): the key is
 * unknown from now on. */
static void unlink_host(Fanout *f, HostLink *l) {
        drop_desired_msg(l);
        l->quiet_rev = 0;
        if (l->host)
                tdelete(l, &f->by_host, cmp_host);
        if (l->uuid)
                tdelete(l, &f->by_uuid, cmp_uuid);
        if (l->host)
                f->n_hosts--;
        free(l->host);
        free(l->uuid);
        l->host = l->uuid = NULL;
        link_count(f, l);
}

static HostLink *find_by_host(Fanout *f, const char *host) {
        HostLink probe = {.host = (char *)host};
        void *n = tfind(&probe, &f->by_host, cmp_host);
        return n ? *(HostLink **)n : NULL;
}

/* Rate-limits the logging of bad peer input: a hostile peer must not flood the journal. */
static bool may_log(Fanout *f) {
        return ratelimit_below(&f->log_limit, NULL);
}

/* The peer address of a socket, hashed (FNV-1a): a remembered fd number may have been
 * closed and reused by another connection; the tag tells. 0 = no peer. */
static uint64_t fd_peer_tag(int fd) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
                return 0;
        uint64_t h = 1469598103934665603ULL;
        const uint8_t *p = (const uint8_t *)&ss;
        for (socklen_t i = 0; i < len; i++)
                h = (h ^ p[i]) * 1099511628211ULL;
        return h ? h : 1;
}

/* Schedules the TCP connection behind fd to be shut down at the next tick. libzmq has no
 * per-peer disconnect on a ROUTER, so the connection is shut down under it; the I/O thread
 * sees the socket close, and a reconnect meets the ZAP handler again. */
static void cut_later(Fanout *f, int fd, uint64_t tag) {
        if (fd < 0 || tag == 0)
                return;
        for (size_t i = 0; i < f->n_cuts; i++)
                if (f->cuts[i].fd == fd && f->cuts[i].peer_tag == tag)
                        return;
        if (f->n_cuts == MAX_PENDING_CUTS) {
                (void)shutdown(fd, SHUT_RDWR); /* no room to wait: cut now */
                return;
        }
        f->cuts[f->n_cuts++] = (PendingCut){fd, tag};
}

static void run_cuts(Fanout *f) {
        for (size_t i = 0; i < f->n_cuts; i++)
                if (fd_peer_tag(f->cuts[i].fd) == f->cuts[i].peer_tag)
                        (void)shutdown(f->cuts[i].fd, SHUT_RDWR);
        f->n_cuts = 0;
}

/* Tells a peer why, then cuts it off: REVOKED now, the TCP shutdown at the next tick. */
static void send_revoked(Fanout *f, const void *rid, size_t rid_len, const char *reason) {
        _cleanup_(obj_freep) Obj *body = obj_new_map();
        char *buf;
        size_t size;
        if (!body || obj_map_set_str(body, "reason", reason) < 0 ||
            wire_encode(MSG_REVOKED, body, &buf, &size) < 0)
                return;
        if (zmq_send(f->m->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
                (void)zmq_send(f->m->router, buf, size, ZMQ_DONTWAIT);
        free(buf);
}

static void cut_link(Fanout *f, HostLink *l, const char *reason) {
        if (l->rid_len > 0)
                send_revoked(f, l->rid, l->rid_len, reason);
        cut_later(f, l->srcfd, l->peer_tag);
        l->srcfd = -1;
        l->peer_tag = 0;
        l->connected = false;
        link_count(f, l);
}

static void mark_dirty(Fanout *f, HostLink *l) {
        if (l->dirty)
                return;
        if (f->n_dirty == f->cap_dirty) {
                size_t nc = f->cap_dirty ? f->cap_dirty * 2 : 256;
                HostLink **n = realloc(f->dirty, nc * sizeof(HostLink *));
                if (!n)
                        return; /* the retransmit tick will catch up */
                f->dirty = n;
                f->cap_dirty = nc;
        }
        f->dirty[f->n_dirty++] = l;
        l->dirty = true;
}

int fanout_link_host(Fanout *f, const char *key, const char *host) {
        HostLink *l = find_by_key(f, key);
        if (!host) {
                if (l)
                        unlink_host(f, l);
                return 0;
        }
        /* A host name moves to a new key on re-enrollment. */
        HostLink *old = find_by_host(f, host);
        if (old && old != l)
                unlink_host(f, old);
        if (!l) {
                l = calloc(1, sizeof(HostLink));
                if (!l)
                        return -ENOMEM;
                snprintf(l->key, sizeof(l->key), "%s", key);
                l->srcfd = -1;
                if (!tsearch(l, &f->by_key, cmp_key)) {
                        free(l);
                        return -ENOMEM;
                }
        }
        if (l->host && streq(l->host, host))
                return 0;
        unlink_host(f, l);
        /* A new Host (the key enrolled again after a deletion): its generations start
         * again, nothing of the old one's delivery state applies. */
        l->desired_gen = l->acked_gen = l->sent_gen = 0;
        l->retry_usec = l->sent_at = 0;
        l->revoked = false;
        l->changed_at = 0;
        l->host = strdup(host);
        if (!l->host)
                return -ENOMEM;
        if (!tsearch(l, &f->by_host, cmp_host)) {
                free(l->host);
                l->host = NULL;
                return -ENOMEM;
        }
        f->n_hosts++;
        link_count(f, l);
        return 0;
}

int fanout_link_uuid(Fanout *f, const char *key, const char *uuid) {
        HostLink *l = find_by_key(f, key);
        if (!l || !l->host || isempty(uuid) || streq_ptr(l->uuid, uuid))
                return 0;
        if (l->uuid) {
                tdelete(l, &f->by_uuid, cmp_uuid);
                free(l->uuid);
                l->uuid = NULL;
        }
        HostLink *other = find_by_uuid(f, uuid);
        if (other) { /* cannot happen through enrollment; the newest Host wins */
                tdelete(other, &f->by_uuid, cmp_uuid);
                free(other->uuid);
                other->uuid = NULL;
        }
        l->uuid = strdup(uuid);
        if (!l->uuid || !tsearch(l, &f->by_uuid, cmp_uuid)) {
                free(l->uuid);
                l->uuid = NULL;
                return -ENOMEM;
        }
        return 0;
}

const char *fanout_host_by_uuid(Fanout *f, const char *uuid) {
        HostLink *l = uuid ? find_by_uuid(f, uuid) : NULL;
        return l ? l->host : NULL;
}

const char *fanout_host_by_key(Fanout *f, const char *key) {
        HostLink *l = find_by_key(f, key);
        return l ? l->host : NULL;
}

void fanout_host_heard(Fanout *f, const char *key) {
        HostLink *l = find_by_key(f, key);
        if (!l)
                return;
        l->connected = true;
        l->last_seen = now_usec(CLOCK_MONOTONIC);
        link_count(f, l);
}

KeyStatus fanout_key_status(Fanout *f, const char *key) {
        HostLink *l = find_by_key(f, key);
        if (!l || !l->host)
                return KEY_UNKNOWN;
        return l->revoked ? KEY_REVOKED : KEY_ENROLLED;
}

bool fanout_host_connected(Fanout *f, const char *host) {
        HostLink *l = find_by_host(f, host);
        return l && l->connected;
}

uint64_t fanout_startup_grace_usec(Fanout *f) {
        return f->m->config.heartbeat_grace_usec + AGENT_RECONNECT_MAX_USEC;
}

uint64_t fanout_host_last_seen(Fanout *f, const char *host) {
        HostLink *l = find_by_host(f, host);
        return l ? l->last_seen : 0;
}

static void cache_desired(HostLink *l, const Obj *host);

static void apply_host(Fanout *f, HostLink *l, const Obj *host) {
        int64_t og = 0;
        obj_get_int(host, "status.observedGeneration", &og);
        int64_t gen = meta_generation(host);
        if (gen > l->desired_gen)
                l->changed_at = now_usec(CLOCK_MONOTONIC);
        l->desired_gen = gen;
        if (og > l->acked_gen)
                l->acked_gen = og;
        bool revoked = streq_ptr(obj_get_str(host, "status.phase"), "Revoked");
        if (revoked && !l->revoked) {
                l->revoked = true;
                cut_link(f, l, "revoked by the operator");
        }
        if (l->connected && l->desired_gen > l->acked_gen) {
                cache_desired(l, host);
                if (l->desired_gen != l->sent_gen)
                        mark_dirty(f, l);
        }
        link_count(f, l);
}

void fanout_host_changed(Fanout *f, const char *name, const Obj *host) {
        if (!host) {
                HostLink *l = find_by_host(f, name);
                if (l) {
                        /* Deleted: the key is unknown from now on and must enroll again
                         * with a token; its connection goes too. */
                        cut_link(f, l, "deleted by the operator");
                        unlink_host(f, l);
                        l->revoked = false;
                }
                return;
        }
        const char *key = obj_get_str(host, "status.agentKey");
        if (!key)
                return;
        if (fanout_link_host(f, key, name) < 0 ||
            fanout_link_uuid(f, key, obj_get_str(host, "status.facts.productUUID")) < 0)
                return;
        HostLink *l = find_by_key(f, key);
        if (l)
                apply_host(f, l, host);
}

int fanout_load_host(Fanout *f, const Obj *host) {
        const char *key = obj_get_str(host, "status.agentKey");
        if (!key || !meta_name(host))
                return 0;
        int r = fanout_link_host(f, key, meta_name(host));
        if (r >= 0)
                r = fanout_link_uuid(f, key, obj_get_str(host, "status.facts.productUUID"));
        if (r < 0)
                return r;
        HostLink *l = find_by_key(f, key);
        /* Remembered so that a host which never comes back after a coordinator restart is
         * still marked unreachable, once the grace period has passed since the start. */
        l->stored_connected = obj_get_bool(host, "status.connected", false);
        apply_host(f, l, host);
        l->changed_at = 0; /* since before this coordinator started: unknown */
        return 0;
}

/* ---- malloc while connections arrive ---- */

/* libzmq allocates per connection four 16 KiB pipe chunks (queues to the socket and to the
 * ZAP handler) and writes a page or two of each. Taken from fresh pages the rest costs no
 * memory; taken from memory closed connections freed — the enrollment connection each agent
 * of a wave closes just before its own connection opens — it is resident: 10,000 hosts
 * enrolled held 539 MiB against 426 MiB for the same connections after a restart, with the
 * same bytes in use (malloc_stats()). While connections arrive, allocations of 12 KiB and
 * more are served by mmap(): fresh pages, unmapped when freed. Not always: libzmq's decoder
 * also takes an 18 KiB buffer for nearly every batch it reads, and a map, an unmap and five
 * page faults per message cost fan-out latency and CPU at 10,000 hosts (docs/performance.md).
 * So the threshold is lowered at a HELLO or ENROLL and put back 30 s after the last one.
 * MALLOC_MMAP_THRESHOLD_ in the environment leaves malloc alone. */
#define SMALL_MMAP_THRESHOLD   (12 * 1024)
#define DEFAULT_MMAP_THRESHOLD (128 * 1024) /* glibc's initial value */
#define CONNECTING_USEC        (30 * USEC_PER_SEC)

static void connections_arriving(Fanout *f) {
        f->connecting_at = now_usec(CLOCK_MONOTONIC);
        if (f->small_mmap || getenv("MALLOC_MMAP_THRESHOLD_"))
                return;
        if (mallopt(M_MMAP_THRESHOLD, SMALL_MMAP_THRESHOLD) == 1)
                f->small_mmap = true;
}

static void connections_settled(Fanout *f, uint64_t now) {
        if (!f->small_mmap || now < f->connecting_at + CONNECTING_USEC)
                return;
        (void)mallopt(M_MMAP_THRESHOLD, DEFAULT_MMAP_THRESHOLD);
        f->small_mmap = false;
}

/* ---- sending ---- */

static int send_encoded(Fanout *f, HostLink *l, const char *buf, size_t size) {
        if (zmq_send(f->m->router, l->rid, l->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(f->m->router, buf, size, ZMQ_DONTWAIT) < 0) {
                int r = negative_errno();
                if (r == -EHOSTUNREACH)
                        l->unroutable = true;
                return r;
        }
        return 0;
}

static int send_to(Fanout *f, HostLink *l, MsgType type, const Obj *body) {
        char *buf;
        size_t size;
        int r = wire_encode(type, body, &buf, &size);
        if (r < 0)
                return r;
        r = send_encoded(f, l, buf, size);
        free(buf);
        return r;
}

int fanout_send(Fanout *f, const char *host, MsgType type, const Obj *body) {
        HostLink *l = find_by_host(f, host);
        if (!l || !l->connected || l->unroutable || l->revoked)
                return -ENOTCONN;
        return send_to(f, l, type, body);
}

/* Whether a Host's DESIRED carries a bootstrap bundle (read from its Secret). */
static bool needs_bootstrap(const Obj *host) {
        return obj_get_str(host, "spec.bootstrapSecretRef.name") &&
               streq_ptr(obj_get_str(host, "spec.action"), "Provision");
}

/* The DESIRED body of host's generation; reads the bootstrap Secret when there is one. */
static int desired_body(Fanout *f, const Obj *host, Obj **ret) {
        int r;
        _cleanup_(obj_freep) Obj *body = obj_new_map();
        int64_t gen = meta_generation(host);
        const char *action = obj_get_str(host, "spec.action");
        if (!body || obj_map_set_int(body, "generation", gen) < 0 ||
            obj_map_set_str(body, "action", action ? action : "Idle") < 0)
                return -ENOMEM;
        const Obj *machine = obj_get(host, "spec.machine");
        if (machine && (r = obj_map_set(body, "machine", obj_dup(machine))) < 0)
                return r;
        const Obj *upgrade = obj_get(host, "spec.upgrade");
        if (upgrade && streq_ptr(action, "Provision") &&
            (r = obj_map_set(body, "upgrade", obj_dup(upgrade))) < 0)
                return r;
        const char *sname = obj_get_str(host, "spec.bootstrapSecretRef.name");
        const char *sns = obj_get_str(host, "spec.bootstrapSecretRef.namespace");
        if (sname && streq_ptr(action, "Provision")) {
                _cleanup_(obj_freep) Obj *secret = NULL;
                r = registry_get(f->m->reg, &kind_secret, sns ? sns : "default", sname, &secret);
                if (r < 0)
                        return r; /* not there yet: the retry tick comes back */
                const char *bundle = obj_get_str(secret, "data.bundle");
                if (!bundle)
                        return -ENODATA;
                if ((r = obj_map_set_str(body, "bootstrap", bundle)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(body);
        return 0;
}

/* Encodes the DESIRED of host's generation into l's cache when it needs nothing but the
 * committed Host at hand (no bootstrap bundle, which stays in its Secret and is read when
 * sent): sending it then costs no store read and no decoding. Its size is that of the
 * Host's spec (a few hundred bytes), kept only until the agent acknowledges it. */
static void cache_desired(HostLink *l, const Obj *host) {
        int64_t gen = meta_generation(host);
        if (l->desired_msg && l->desired_msg_gen == gen)
                return;
        drop_desired_msg(l);
        if (gen <= l->acked_gen || needs_bootstrap(host))
                return;
        _cleanup_(obj_freep) Obj *body = NULL;
        if (desired_body(NULL, host, &body) < 0 ||
            wire_encode(MSG_DESIRED, body, &l->desired_msg, &l->desired_size) < 0) {
                l->desired_msg = NULL; /* built at send time instead */
                return;
        }
        l->desired_msg_gen = gen;
        snprintf(l->desired_action, sizeof(l->desired_action), "%s",
                 strempty(obj_get_str(body, "action")));
}

#ifdef ANVIL_TEST_HOOKS
/* Fault tests (tests/e2e): ANVIL_TEST_CRASH=desired-sent:<action> aborts right after the
 * first DESIRED with that action is handed to libzmq (it may or may not have left);
 * ANVIL_TEST_CRASH=ack-received:<action> aborts when the ACK of such a generation arrives,
 * before it is recorded. ANVIL_TEST_DUPLICATE_DESIRED=1 sends every DESIRED twice. */
static void test_crash_point(const char *point, const char *action) {
        const char *spec = getenv("ANVIL_TEST_CRASH");
        char want[128];
        snprintf(want, sizeof(want), "%s:%s", point, strempty(action));
        if (spec && streq(spec, want)) {
                log_warning("Test hook: crashing at %s.", want);
                abort();
        }
}
static bool test_duplicate_desired(void) {
        return streq_ptr(getenv("ANVIL_TEST_DUPLICATE_DESIRED"), "1");
}
#else
static void test_crash_point(const char *point, const char *action) {
        (void)point;
        (void)action;
}
static bool test_duplicate_desired(void) {
        return false;
}
#endif

static void send_desired(Fanout *f, HostLink *l) {
        /* No route yet (enrolled, its own connection not seen yet): its HELLO will ask. */
        if (!l->host || !l->connected || l->unroutable || l->revoked || l->rid_len == 0)
                return;
        int r;
        bool bundle = false;
        if (!l->desired_msg || l->desired_msg_gen != l->desired_gen) {
                /* Not cached (a bootstrap bundle, or loaded at startup): from the store. */
                _cleanup_(obj_freep) Obj *host = NULL;
                _cleanup_(obj_freep) Obj *body = NULL;
                r = registry_get(f->m->reg, &kind_host, NULL, l->host, &host);
                if (r >= 0)
                        r = desired_body(f, host, &body);
                if (r < 0) {
                        log_debug_errno(r, "Cannot build desired state of host %s yet: %m",
                                        l->host);
                        return;
                }
                drop_desired_msg(l);
                r = wire_encode(MSG_DESIRED, body, &l->desired_msg, &l->desired_size);
                if (r < 0) {
                        l->desired_msg = NULL;
                        return;
                }
                l->desired_msg_gen = meta_generation(host);
                bundle = obj_map_get(body, "bootstrap") != NULL;
                snprintf(l->desired_action, sizeof(l->desired_action), "%s",
                         strempty(obj_get_str(body, "action")));
        }
        int64_t gen = l->desired_msg_gen;
        if (gen <= l->acked_gen) {
                drop_desired_msg(l);
                return;
        }
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (l->sent_gen == gen) {
                l->retry_usec = l->retry_usec ? l->retry_usec * 2 : RETRY_MIN_USEC;
                if (l->retry_usec > RETRY_MAX_USEC)
                        l->retry_usec = RETRY_MAX_USEC;
        } else
                l->retry_usec = RETRY_MIN_USEC;
        l->sent_gen = gen;
        l->sent_at = now;
        r = send_encoded(f, l, l->desired_msg, l->desired_size);
        if (r >= 0 && test_duplicate_desired())
                r = send_encoded(f, l, l->desired_msg, l->desired_size);
        if (r >= 0)
                test_crash_point("desired-sent", l->desired_action);
        LOG_FIELD_SCOPE(LOG_FIELD_HOST, l->host);
        if (r < 0 && r != -EAGAIN)
                log_debug_errno(r, "Could not send generation %lld to %s now, will retry: %m",
                                (long long)gen, l->host);
        else {
                f->stats.desired_sent++;
                metrics_desired_sent(f->m->metrics, gen);
                log_debug("Sent generation %lld to %s.", (long long)gen, l->host);
        }
        /* A bundle is not kept: it is large, and its Secret is the truth. */
        if (bundle)
                drop_desired_msg(l);
}

/* After every commit: send what the committed changes call for. */
void fanout_flush(Fanout *f) {
        for (size_t i = 0; i < f->n_dirty; i++) {
                HostLink *l = f->dirty[i];
                l->dirty = false;
                send_desired(f, l);
        }
        f->n_dirty = 0;
}

/* ---- receiving ---- */

typedef int (*StatusEdit)(Obj *host, const Obj *body, void *userdata);

/* Read-modify-write of a Host's status (an edit touches nothing else); writes only when
 * something changed. Returns the store revision written, 0 when nothing was. */
static int64_t edit_host_status_rev(Fanout *f, const char *name, StatusEdit edit, const Obj *body,
                                    void *userdata) {
        _cleanup_(obj_freep) Obj *host = NULL;
        int r = registry_get(f->m->reg, &kind_host, NULL, name, &host);
        if (r < 0)
                return r;
        const Obj *st = obj_map_get(host, "status");
        _cleanup_(obj_freep) Obj *orig = st ? obj_dup(st) : NULL;
        if (st && !orig)
                return -ENOMEM;
        r = edit(host, body, userdata);
        if (r < 0)
                return r;
        if (obj_equal(orig, obj_map_get(host, "status")))
                return 0;
        /* Read just now, in this same turn of the loop: written as it is, the revision it
         * was read at is the precondition. */
        return registry_update_status_as_read(f->m->reg, host);
}

static int edit_host_status(Fanout *f, const char *name, StatusEdit edit, const Obj *body,
                            void *userdata) {
        int64_t rev = edit_host_status_rev(f, name, edit, body, userdata);
        return rev < 0 ? (int)rev : 0;
}

static int set_if(Obj *host, const char *path, const Obj *v) {
        if (!v)
                return 0;
        return obj_set(host, path, obj_dup(v));
}

/* Facts an agent reports after enrolling, if they are about the same machine: the product
 * UUID is the Host's identity and never changes (a host claiming another's UUID would
 * confuse every lookup by UUID). NULL if there are none to take. */
static const Obj *same_machine_facts(const Obj *host, const Obj *body) {
        const Obj *facts = obj_map_get(body, "facts");
        if (!facts)
                return NULL;
        const char *have = obj_get_str(host, "status.facts.productUUID");
        const char *said = obj_get_str(facts, "productUUID");
        if (have && !streq_ptr(have, said)) {
                log_warning("Host %s reported facts of product UUID %s, but it enrolled as %s: "
                            "ignoring them.",
                            meta_name(host), strna(said), have);
                return NULL;
        }
        return facts;
}

static int edit_connected(Obj *host, const Obj *body, void *userdata) {
        (void)body;
        return obj_set_bool(host, "status.connected", *(bool *)userdata);
}

static int edit_hello(Obj *host, const Obj *body, void *userdata) {
        (void)userdata;
        int r;
        int64_t g = 0, og = 0;
        obj_get_int(body, "generation", &g);
        obj_get_int(host, "status.observedGeneration", &og);
        if (g > og && g <= meta_generation(host) &&
            (r = obj_set_int(host, "status.observedGeneration", g)) < 0)
                return r;
        if ((r = obj_set_bool(host, "status.connected", true)) < 0 ||
            (obj_map_get(body, "state") &&
             (r = obj_set_int(host, "status.agentGeneration", g)) < 0) ||
            (r = set_if(host, "status.agentState", obj_map_get(body, "state"))) < 0 ||
            (r = set_if(host, "status.agentAction", obj_map_get(body, "action"))) < 0 ||
            (r = set_if(host, "status.facts", same_machine_facts(host, body))) < 0)
                return r;
        if (obj_map_get(body, "step"))
                r = obj_set(host, "status.step", obj_dup(obj_map_get(body, "step")));
        return r;
}

/* Whether a Host's status.observedGeneration matters to no controller: unclaimed, idle, not
 * to be reset. The Host controller's phase (Available, Unreachable or Revoked) does not look
 * at it then, and no Machine or AnvilMachine follows the Host. */
static bool observed_generation_unused(const Obj *host) {
        const char *action = obj_get_str(host, "spec.action");
        const char *state = obj_get_str(host, "status.agentState");
        return !obj_get(host, "spec.consumerRef") &&
               !obj_get_bool(host, "spec.resetRequired", false) &&
               (!action || streq(action, "Idle")) && (!state || streq(state, "Idle"));
}

static int edit_ack(Obj *host, const Obj *body, void *userdata) {
        bool *quiet = userdata;
        int64_t g = 0, og = 0;
        obj_get_int(body, "generation", &g);
        obj_get_int(host, "status.observedGeneration", &og);
        /* Stale or duplicate ACKs change nothing; an ACK from the future is a lie. */
        if (g <= og || g > meta_generation(host))
                return 0;
        int r = obj_set_int(host, "status.observedGeneration", g);
        /* The state of the plan this generation left the agent with, in the same write (an
         * older agent sends it only in the STATUS that follows). */
        if (r >= 0 && obj_map_get(body, "state") &&
            ((r = obj_set_int(host, "status.agentGeneration", g)) < 0 ||
             (r = set_if(host, "status.agentState", obj_map_get(body, "state"))) < 0 ||
             (r = set_if(host, "status.agentAction", obj_map_get(body, "action"))) < 0))
                return r;
        *quiet = observed_generation_unused(host);
        return r;
}

/* Remembers that the status write at rev only raised observedGeneration where nobody looks
 * at it, for fanout_quiet_write(); for the open store batch only. */
static void mark_quiet(Fanout *f, HostLink *l, int64_t rev) {
        if (f->n_quiet == f->cap_quiet) {
                size_t nc = f->cap_quiet ? f->cap_quiet * 2 : 256;
                HostLink **n = realloc(f->quiet, nc * sizeof(HostLink *));
                if (!n)
                        return; /* its event is then dispatched as any other */
                f->quiet = n;
                f->cap_quiet = nc;
        }
        f->quiet[f->n_quiet++] = l;
        l->quiet_rev = rev;
}

bool fanout_quiet_write(Fanout *f, const char *name, int64_t rev) {
        HostLink *l = find_by_host(f, name);
        return l && l->quiet_rev > 0 && l->quiet_rev == rev;
}

void fanout_batch_done(Fanout *f) {
        for (size_t i = 0; i < f->n_quiet; i++)
                f->quiet[i]->quiet_rev = 0;
        f->n_quiet = 0;
}

static int edit_status(Obj *host, const Obj *body, void *userdata) {
        (void)userdata;
        int64_t g = 0;
        obj_get_int(body, "generation", &g);
        if (g != meta_generation(host))
                return 0; /* about an older desired state: of no interest now */
        const char *state = obj_get_str(body, "state");
        int r = obj_set_str(host, "status.agentState", state);
        if (r < 0 || (r = obj_set_int(host, "status.agentGeneration", g)) < 0)
                return r;
        if ((r = set_if(host, "status.agentAction", obj_map_get(body, "action"))) < 0)
                return r;
        if (obj_map_get(body, "step") &&
            (r = obj_set(host, "status.step", obj_dup(obj_map_get(body, "step")))) < 0)
                return r;
        if (streq_ptr(state, "Failed")) {
                _cleanup_(obj_freep) Obj *err = obj_new_map();
                if (!err)
                        return -ENOMEM;
                if ((r = set_if(err, "step", obj_get(body, "step.name"))) < 0 ||
                    (r = set_if(err, "exitCode", obj_map_get(body, "exitCode"))) < 0 ||
                    (r = set_if(err, "message", obj_map_get(body, "message"))) < 0 ||
                    (r = set_if(err, "output", obj_map_get(body, "output"))) < 0)
                        return r;
                char ts[32];
                if ((r = obj_map_set_str(err, "time", now_rfc3339(ts))) < 0)
                        return r;
                return obj_set(host, "status.lastError", TAKE_PTR(err));
        }
        if (streq_ptr(state, "Provisioning") || streq_ptr(state, "Idle") ||
            streq_ptr(state, "Upgrading"))
                obj_del(host, "status.lastError");
        return 0;
}

static int edit_report(Obj *host, const Obj *body, void *userdata) {
        (void)userdata;
        int r;
        int64_t g = 0;
        obj_get_int(body, "generation", &g);
        if (g != meta_generation(host))
                return 0; /* about an older desired state (a reset may be under way) */
        /* A host can only speak for its own node: the provider ID is its product UUID's. */
        const char *pid = obj_get_str(body, "providerID");
        _cleanup_free_ char *want =
                strjoin("anvil://", strempty(obj_get_str(host, "status.facts.productUUID")));
        if (!want)
                return -ENOMEM;
        if (pid && !streq(pid, want)) {
                log_warning("Host %s reported provider ID %s, not its own (%s): ignoring the "
                            "report.",
                            meta_name(host), pid, want);
                return 0;
        }
        if ((r = set_if(host, "status.providerID", obj_map_get(body, "providerID"))) < 0 ||
            (r = set_if(host, "status.nodeName", obj_map_get(body, "nodeName"))) < 0 ||
            (r = set_if(host, "status.nodeReady", obj_map_get(body, "nodeReady"))) < 0 ||
            (r = set_if(host, "status.kubeletVersion", obj_map_get(body, "kubeletVersion"))) < 0 ||
            (r = set_if(host, "status.nodeConditions", obj_map_get(body, "nodeConditions"))) < 0)
                return r;
        return 0;
}

static int edit_health(Obj *host, const Obj *body, void *userdata) {
        (void)userdata;
        int r = set_if(host, "status.health", obj_map_get(body, "health"));
        if (r >= 0)
                r = set_if(host, "status.facts", same_machine_facts(host, body));
        return r;
}

static void dispatch(Fanout *f, HostLink *l, MsgType type, const Obj *body) {
        int r = 0;
        LOG_FIELD_SCOPE(LOG_FIELD_HOST, l->host);
        if (type == MSG_BYE) {
                /* A clean stop: disconnected now, not after the grace; nothing is sent to it
                 * until it speaks again (its HELLO), and a machine that comes back with a
                 * new key is not refused as connected. */
                l->connected = false;
                l->rid_len = 0;
                l->srcfd = -1;
                l->peer_tag = 0;
                link_count(f, l);
                log_info("Agent of %s is stopping (%s): marking it disconnected.", l->host,
                         strna(obj_get_str(body, "reason")));
                bool no = false;
                r = edit_host_status(f, l->host, edit_connected, NULL, &no);
                if (r < 0 && r != -ENOENT)
                        log_warning_errno(r, "Failed to mark %s disconnected: %m", l->host);
                return;
        }
        bool was_connected = l->connected;
        l->connected = true;
        l->last_seen = now_usec(CLOCK_MONOTONIC);

        switch (type) {
        case MSG_HELLO: {
                int64_t g = 0;
                obj_get_int(body, "generation", &g);
                if (g > l->acked_gen && g <= l->desired_gen)
                        l->acked_gen = g;
                /* The agent may have lost a generation we thought it had (a restore): trust
                 * what it says it has, and resend. */
                if (g < l->acked_gen)
                        l->acked_gen = g;
                l->sent_gen = 0;
                log_info("Agent of %s connected: has generation %lld, wants %lld, state %s.",
                         l->host, (long long)g, (long long)l->desired_gen,
                         strna(obj_get_str(body, "state")));
                r = edit_host_status(f, l->host, edit_hello, body, NULL);
                if (l->desired_gen > l->acked_gen)
                        mark_dirty(f, l);
                break;
        }
        case MSG_ACK: {
                int64_t g = 0;
                obj_get_int(body, "generation", &g);
                f->stats.acks++;
#ifdef ANVIL_TEST_HOOKS
                if (getenv("ANVIL_TEST_CRASH") && g > l->acked_gen) {
                        _cleanup_(obj_freep) Obj *h = NULL;
                        if (registry_get(f->m->reg, &kind_host, NULL, l->host, &h) >= 0 &&
                            meta_generation(h) == g)
                                test_crash_point("ack-received", obj_get_str(h, "spec.action"));
                }
#endif
                if (g > l->acked_gen && g <= l->desired_gen) {
                        l->acked_gen = g;
                        metrics_ack(f->m->metrics, g, l->changed_at);
                        bool quiet = false;
                        int64_t rev = edit_host_status_rev(f, l->host, edit_ack, body, &quiet);
                        if (rev > 0 && quiet)
                                mark_quiet(f, l, rev);
                        r = rev < 0 ? (int)rev : 0;
                }
                break;
        }
        case MSG_STATUS:
                r = edit_host_status(f, l->host, edit_status, body, NULL);
                break;
        case MSG_REPORT:
                r = edit_host_status(f, l->host, edit_report, body, NULL);
                break;
        case MSG_HEARTBEAT: {
                int64_t g = 0;
                if (obj_get_int(body, "generation", &g) && g < l->desired_gen && g >= 0 &&
                    l->sent_gen != l->desired_gen)
                        mark_dirty(f, l);
                if (!was_connected) {
                        bool yes = true;
                        r = edit_host_status(f, l->host, edit_connected, body, &yes);
                }
                /* Health and facts (sent when they changed) are written only when they
                 * differ from the stored ones (edit_host_status compares). */
                if (r >= 0 && (obj_map_get(body, "health") || obj_map_get(body, "facts")))
                        r = edit_host_status(f, l->host, edit_health, body, NULL);
                break;
        }
        case MSG_RESULT:
                commands_on_result(f->m->commands, l->host, body);
                break;
        default:
                break;
        }
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Failed to record %s from %s: %m", msg_type_to_string(type),
                                  l->host);
        link_count(f, l);
}

/* Logs, rate-limited, a message dropped from peer key at address. */
static void log_dropped(Fanout *f, const char *key, const char *address, const char *what,
                        const char *why) {
        f->stats.messages_dropped++;
        if (!may_log(f))
                return;
        char fp[64] = "?";
        if (key)
                key_fingerprint(key, fp, sizeof(fp));
        HostLink *l = key ? find_by_key(f, key) : NULL;
        log_warning("Dropped %s from %s (key %s, host %s): %s.", what, strempty(address), fp,
                    l && l->host ? l->host : "none", why);
}

int fanout_on_router(void *zsock, void *userdata) {
        Fanout *f = userdata;
        zmq_msg_t rid, body;
        /* Before the first goto: a jump past a cleanup variable's initialisation would run
         * its cleanup on garbage. */
        _cleanup_(obj_freep) Obj *obj = NULL;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        int r = 0;

        if (zmq_msg_recv(&rid, zsock, ZMQ_DONTWAIT) < 0) {
                r = negative_errno();
                goto out;
        }
        if (!zmq_msg_more(&rid)) {
                r = -EBADMSG;
                goto out;
        }
        if (zmq_msg_recv(&body, zsock, ZMQ_DONTWAIT) < 0) {
                r = negative_errno();
                goto out;
        }
        const char *key = zmq_msg_gets(&body, "User-Id");
        const char *address = zmq_msg_gets(&body, "Peer-Address");
        if (zmq_msg_more(&body)) {
                /* More frames than our protocol has: drop them all. */
                zmq_msg_t extra;
                do {
                        zmq_msg_init(&extra);
                        if (zmq_msg_recv(&extra, zsock, ZMQ_DONTWAIT) < 0) {
                                zmq_msg_close(&extra);
                                break;
                        }
                        r = zmq_msg_more(&extra);
                        zmq_msg_close(&extra);
                } while (r);
                log_dropped(f, key_z85_valid(key) ? key : NULL, address, "a multi-frame message",
                            "the protocol has one frame per message");
                r = -EBADMSG;
                goto out;
        }
        f->stats.messages_in++;

        /* Every message carries the key ZAP authenticated; it is the only identity there is. */
        if (!key || !key_z85_valid(key)) {
                log_dropped(f, NULL, address, "a message", "no authenticated key");
                r = -EPERM;
                goto out;
        }
        MsgType type;
        char err[256];
        r = wire_decode(CHANNEL_AGENT_TO_COORDINATOR, zmq_msg_data(&body), zmq_msg_size(&body),
                        &type, &obj, err, sizeof(err));
        if (r < 0) {
                log_dropped(f, key, address, "a message", err);
                goto out;
        }
        metrics_agent_message(f->m->metrics, type);
        if (type == MSG_HELLO || type == MSG_ENROLL)
                connections_arriving(f);
        const char *tname = msg_type_to_string(type);
        int srcfd = zmq_msg_get(&body, ZMQ_SRCFD);
        HostLink *l = find_by_key(f, key);

        if (l && l->host && l->revoked) {
                /* A connection of a revoked key that is still open (made before the
                 * revocation, e.g. with a copy of the key): tell it and cut it. */
                log_dropped(f, key, address, tname, "the host is revoked; closing the connection");
                send_revoked(f, zmq_msg_data(&rid), zmq_msg_size(&rid), "revoked by the operator");
                cut_later(f, srcfd, fd_peer_tag(srcfd));
                r = -EPERM;
                goto out;
        }
        if (!l || !l->host) {
                /* Not a host: a token's enrollment key may send ENROLL, and nothing else. */
                if (type == MSG_ENROLL) {
                        r = enroll_handle(f->m, key, address, zmq_msg_data(&rid),
                                          zmq_msg_size(&rid), obj);
                        if (r < 0)
                                log_warning_errno(r, "Failed to handle an enrollment: %m");
                        goto out;
                }
                bool token_key = token_find_by_key(f->m, key, NULL, NULL, NULL) >= 0;
                log_dropped(f, key, address, tname,
                            token_key ? "an enrollment connection may only send ENROLL"
                                      : "the key is not enrolled (the host was deleted); "
                                        "closing the connection");
                if (!token_key) {
                        send_revoked(f, zmq_msg_data(&rid), zmq_msg_size(&rid),
                                     "not enrolled (deleted by the operator)");
                        cut_later(f, srcfd, fd_peer_tag(srcfd));
                }
                r = -EPERM;
                goto out;
        }
        if (type == MSG_ENROLL) {
                log_dropped(f, key, address, tname, "the key is enrolled already");
                r = -EPERM;
                goto out;
        }
        if (zmq_msg_size(&rid) <= sizeof(l->rid)) {
                memcpy(l->rid, zmq_msg_data(&rid), zmq_msg_size(&rid));
                l->rid_len = zmq_msg_size(&rid);
                l->unroutable = false;
        }
        /* The latest connection is the one to cut on revocation (a getpeername() per
         * message: the fd number may have been reused by a reconnect). */
        l->srcfd = srcfd;
        l->peer_tag = fd_peer_tag(srcfd);
        dispatch(f, l, type, obj);
out:
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        return r;
}

/* ---- the tick: retransmits and liveness ---- */

typedef struct TickCtx {
        Fanout *f;
        uint64_t now;
        HostLink **lost;
        size_t n_lost, cap_lost;
} TickCtx;

static void tick_visit(const void *node, VISIT which, void *closure) {
        if (which != postorder && which != leaf)
                return;
        HostLink *l = *(HostLink *const *)node;
        TickCtx *c = closure;
        if (!l->host)
                return;
        uint64_t grace = c->f->m->config.heartbeat_grace_usec;
        /* Connected in memory and silent for the grace period; or, after a restart of the
         * coordinator, stored as connected and not heard from within the startup grace
         * (its status would otherwise say "connected" forever). */
        bool silent = l->connected && c->now > l->last_seen + grace;
        bool never_back = !l->connected && l->last_seen == 0 && l->stored_connected &&
                          c->now > c->f->m->started_usec + fanout_startup_grace_usec(c->f);
        if (silent || never_back) {
                if (c->n_lost == c->cap_lost) {
                        size_t nc = c->cap_lost ? c->cap_lost * 2 : 16;
                        HostLink **n = realloc(c->lost, nc * sizeof(HostLink *));
                        if (!n)
                                return;
                        c->lost = n;
                        c->cap_lost = nc;
                }
                c->lost[c->n_lost++] = l;
                return;
        }
        if (l->connected && !l->unroutable && l->desired_gen > l->acked_gen &&
            (l->sent_gen != l->desired_gen || c->now >= l->sent_at + l->retry_usec))
                mark_dirty(c->f, l);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Fanout *f = userdata;
        TickCtx c = {.f = f, .now = now_usec(CLOCK_MONOTONIC)};
        run_cuts(f);
        connections_settled(f, c.now);
        twalk_r(f->by_key, tick_visit, &c);
        for (size_t i = 0; i < c.n_lost; i++) {
                HostLink *l = c.lost[i];
                l->connected = false;
                l->stored_connected = false;
                link_count(f, l);
                LOG_FIELD_SCOPE(LOG_FIELD_HOST, l->host);
                if (l->last_seen)
                        log_warning("Host %s has not been heard from for %llus: marking it "
                                    "unreachable.",
                                    l->host,
                                    (unsigned long long)((c.now - l->last_seen) / USEC_PER_SEC));
                else
                        log_warning("Host %s has not been heard from since this coordinator "
                                    "started: marking it unreachable.",
                                    l->host);
                bool no = false;
                int r = edit_host_status(f, l->host, edit_connected, NULL, &no);
                if (r < 0 && r != -ENOENT)
                        log_warning_errno(r, "Failed to mark %s unreachable: %m", l->host);
        }
        free(c.lost);
        /* Anything marked dirty is sent by the commit step this iteration triggers. */
        sd_event_source_set_enabled(f->m->commit_source, SD_EVENT_ON);
        sd_event_source_set_time(s, usec + TICK_USEC);
        return 0;
}

int fanout_new(Manager *m, Fanout **ret) {
        Fanout *f = calloc(1, sizeof(Fanout));
        if (!f)
                return -ENOMEM;
        f->m = m;
        f->log_limit = (RateLimit)RATELIMIT_INIT(10 * USEC_PER_SEC, 20);
        int r = sd_event_add_time_relative(m->event, &f->tick, CLOCK_MONOTONIC, TICK_USEC,
                                           100 * USEC_PER_MSEC, on_tick, f);
        if (r < 0) {
                free(f);
                return r;
        }
        sd_event_source_set_enabled(f->tick, SD_EVENT_ON);
        *ret = f;
        return 0;
}

static void free_link(void *p) {
        HostLink *l = p;
        free(l->desired_msg);
        free(l->host);
        free(l->uuid);
        free(l);
}

static void noop(void *p) {
        (void)p;
}

Fanout *fanout_free(Fanout *f) {
        if (!f)
                return NULL;
        sd_event_source_disable_unref(f->tick);
        tdestroy(f->by_host, noop);
        tdestroy(f->by_uuid, noop);
        tdestroy(f->by_key, free_link);
        free(f->dirty);
        free(f->quiet);
        free(f);
        return NULL;
}

void fanout_get_stats(Fanout *f, FanoutStats *ret) {
        *ret = f->stats;
        ret->hosts = f->n_hosts;
        ret->connected = f->n_connected;
        ret->pending_acks = f->n_pending;
}
