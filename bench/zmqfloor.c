/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anvil-zmqfloor: the bare ZeroMQ floor the coordinator is measured against (bench/run.sh).
 *
 * One ROUTER with CURVE and a ZAP handler that admits every key, set up with the
 * coordinator's socket options (backlog, queues, TCP keepalive, message size), and nothing
 * else: no store, no protocol. Clients are anvil-loadgen --floor. Its RSS at N connections is
 * the ZeroMQ floor; the coordinator's RSS minus this, over N, is Anvil's own state per host.
 *
 * stdin, one command a line; stdout, one JSON line per answer:
 *   fanout SIZE   send SIZE bytes to every peer and wait for every ack: {"t0": µs, "peers": N,
 *                 "acked": N, "allUsec": µs} (CLOCK_MONOTONIC; peers time their receipt)
 *   peers         {"peers": N}
 * At start it prints {"publicKey": "..."}.
 */
#include <poll.h>
#include <search.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"
#include "macro.h"

typedef struct Peer {
        uint8_t rid[256];
        size_t len;
        bool acked;
} Peer;

static void *peer_tree;
static Peer **peers;
static size_t n_peers, cap_peers;

static int cmp_peer(const void *a, const void *b) {
        const Peer *x = a, *y = b;
        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        return memcmp(x->rid, y->rid, x->len);
}

static Peer *peer_of(const void *rid, size_t len) {
        if (len > sizeof(((Peer *)NULL)->rid))
                return NULL;
        Peer probe = {.len = len};
        memcpy(probe.rid, rid, len);
        void *n = tfind(&probe, &peer_tree, cmp_peer);
        if (n)
                return *(Peer **)n;
        Peer *p = calloc(1, sizeof(Peer));
        if (!p)
                return NULL;
        *p = probe;
        if (n_peers == cap_peers) {
                size_t nc = cap_peers ? cap_peers * 2 : 1024;
                Peer **np = realloc(peers, nc * sizeof(Peer *));
                if (!np) {
                        free(p);
                        return NULL;
                }
                peers = np;
                cap_peers = nc;
        }
        if (!tsearch(p, &peer_tree, cmp_peer)) {
                free(p);
                return NULL;
        }
        peers[n_peers++] = p;
        return p;
}

static void zap_answer(void *zap) {
        zmq_msg_t f[8];
        int n = 0, more = 1;
        while (more && n < 8) {
                zmq_msg_init(&f[n]);
                if (zmq_msg_recv(&f[n], zap, ZMQ_DONTWAIT) < 0) {
                        zmq_msg_close(&f[n]);
                        return;
                }
                more = zmq_msg_more(&f[n]);
                n++;
        }
        char user[KEY_Z85_LEN + 1] = "";
        if (n >= 7 && zmq_msg_size(&f[6]) == KEY_RAW_LEN)
                zmq_z85_encode(user, zmq_msg_data(&f[6]), KEY_RAW_LEN);
        zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(zap, n >= 2 ? zmq_msg_data(&f[1]) : "", n >= 2 ? zmq_msg_size(&f[1]) : 0,
                 ZMQ_SNDMORE);
        zmq_send(zap, "200", 3, ZMQ_SNDMORE);
        zmq_send(zap, "OK", 2, ZMQ_SNDMORE);
        zmq_send(zap, user, strlen(user), ZMQ_SNDMORE);
        zmq_send(zap, "", 0, 0);
        for (int i = 0; i < n; i++)
                zmq_msg_close(&f[i]);
}

/* One message from a peer: a hello, a heartbeat or an ack. Returns 1 for an ack. */
static int receive(void *router) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        int r = 0;
        if (zmq_msg_recv(&rid, router, ZMQ_DONTWAIT) >= 0 &&
            zmq_msg_recv(&body, router, ZMQ_DONTWAIT) >= 0) {
                Peer *p = peer_of(zmq_msg_data(&rid), zmq_msg_size(&rid));
                if (p && zmq_msg_size(&body) >= 3 && memcmp(zmq_msg_data(&body), "ack", 3) == 0 &&
                    !p->acked) {
                        p->acked = true;
                        r = 1;
                }
        }
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        return r;
}

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: anvil-zmqfloor tcp://ADDR:PORT\n");
                return 2;
        }
        char pub[KEY_Z85_LEN + 1], sec[KEY_Z85_LEN + 1];
        void *ctx = zmq_ctx_new();
        if (!ctx || zmq_curve_keypair(pub, sec) < 0)
                return 1;
        zmq_ctx_set(ctx, ZMQ_BLOCKY, 0);
        void *zap = zmq_socket(ctx, ZMQ_REP);
        if (!zap || zmq_bind(zap, "inproc://zeromq.zap.01") < 0)
                return 1;
        void *router = zmq_socket(ctx, ZMQ_ROUTER);
        /* The coordinator's options (coordinator/manager.c). */
        int one = 1, zero = 0, backlog = 4096, hwm = 1000, ka_idle = 30, ka_intvl = 10, ka_cnt = 3;
        int64_t maxmsg = 4 << 20;
        if (!router || zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, sec, KEY_Z85_LEN + 1) < 0 ||
            zmq_setsockopt(router, ZMQ_ZAP_DOMAIN, "anvil", 5) < 0 ||
            zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(router, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(router, ZMQ_BACKLOG, &backlog, sizeof(backlog)) < 0 ||
            zmq_setsockopt(router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
            zmq_setsockopt(router, ZMQ_TCP_KEEPALIVE, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(router, ZMQ_TCP_KEEPALIVE_IDLE, &ka_idle, sizeof(ka_idle)) < 0 ||
            zmq_setsockopt(router, ZMQ_TCP_KEEPALIVE_INTVL, &ka_intvl, sizeof(ka_intvl)) < 0 ||
            zmq_setsockopt(router, ZMQ_TCP_KEEPALIVE_CNT, &ka_cnt, sizeof(ka_cnt)) < 0 ||
            zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
            zmq_bind(router, argv[1]) < 0) {
                fprintf(stderr, "anvil-zmqfloor: cannot listen on %s: %s\n", argv[1],
                        zmq_strerror(zmq_errno()));
                return 1;
        }
        printf("{\"publicKey\": \"%s\"}\n", pub);
        fflush(stdout);

        bool fanning = false;
        uint64_t t0 = 0;
        size_t acked = 0;
        char line[256];
        size_t line_len = 0;
        for (;;) {
                zmq_pollitem_t items[] = {
                        {router, 0, ZMQ_POLLIN, 0},
                        {zap, 0, ZMQ_POLLIN, 0},
                        {NULL, STDIN_FILENO, ZMQ_POLLIN, 0},
                };
                if (zmq_poll(items, 3, fanning ? 100 : 1000) < 0 && zmq_errno() != EINTR)
                        return 1;
                for (;;) {
                        int ev = 0;
                        size_t len = sizeof(ev);
                        zmq_getsockopt(zap, ZMQ_EVENTS, &ev, &len);
                        if (!(ev & ZMQ_POLLIN))
                                break;
                        zap_answer(zap);
                }
                for (;;) {
                        int ev = 0;
                        size_t len = sizeof(ev);
                        zmq_getsockopt(router, ZMQ_EVENTS, &ev, &len);
                        if (!(ev & ZMQ_POLLIN))
                                break;
                        acked += (size_t)receive(router);
                }
                if (fanning &&
                    (acked >= n_peers || now_usec(CLOCK_MONOTONIC) > t0 + 30 * USEC_PER_SEC)) {
                        printf("{\"t0\": %llu, \"peers\": %zu, \"acked\": %zu, \"allUsec\": "
                               "%llu}\n",
                               (unsigned long long)t0, n_peers, acked,
                               (unsigned long long)(now_usec(CLOCK_MONOTONIC) - t0));
                        fflush(stdout);
                        fanning = false;
                }
                if (!(items[2].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) /* EOF is POLLERR */
                        continue;
                ssize_t k = read(STDIN_FILENO, line + line_len, sizeof(line) - 1 - line_len);
                if (k <= 0)
                        break; /* stdin closed: done */
                line_len += (size_t)k;
                line[line_len] = 0;
                char *nl;
                while ((nl = strchr(line, '\n'))) {
                        *nl = 0;
                        unsigned size;
                        if (sscanf(line, "fanout %u", &size) == 1 && size > 0 &&
                            size <= (1u << 20)) {
                                char *buf = calloc(1, size);
                                if (!buf)
                                        return 1;
                                acked = 0;
                                for (size_t i = 0; i < n_peers; i++)
                                        peers[i]->acked = false;
                                t0 = now_usec(CLOCK_MONOTONIC);
                                for (size_t i = 0; i < n_peers; i++)
                                        if (zmq_send(router, peers[i]->rid, peers[i]->len,
                                                     ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
                                                zmq_send(router, buf, size, ZMQ_DONTWAIT);
                                free(buf);
                                fanning = true;
                        } else if (streq(line, "peers")) {
                                printf("{\"peers\": %zu}\n", n_peers);
                                fflush(stdout);
                        }
                        line_len -= (size_t)(nl + 1 - line);
                        memmove(line, nl + 1, line_len + 1);
                }
        }
        zmq_close(router);
        zmq_close(zap);
        zmq_ctx_term(ctx);
        return 0;
}
