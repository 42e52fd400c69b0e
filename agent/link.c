/* SPDX-License-Identifier: Apache-2.0 */
#include <sodium.h>
#include <zmq.h>

#include "link.h"
#include "log.h"
#include "zsource.h"

struct Link {
        void *ctx, *sock, *monitor;
        ZSource *sock_src, *mon_src;
        LinkCallbacks cb;
        void *userdata;
        bool connected;
        char endpoint[512];
};

static int on_message(void *zsock, void *userdata) {
        Link *l = userdata;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        int r = 0;
        if (zmq_msg_recv(&msg, zsock, ZMQ_DONTWAIT) < 0) {
                r = negative_errno();
                zmq_msg_close(&msg);
                return r;
        }
        if (zmq_msg_more(&msg)) {
                /* Our protocol is one frame per message: drop the rest. */
                do {
                        zmq_msg_close(&msg);
                        zmq_msg_init(&msg);
                        if (zmq_msg_recv(&msg, zsock, ZMQ_DONTWAIT) < 0)
                                break;
                } while (zmq_msg_more(&msg));
                zmq_msg_close(&msg);
                log_warning("Dropped a multi-frame message from the coordinator.");
                return -EBADMSG;
        }
        MsgType type;
        _cleanup_(obj_freep) Obj *body = NULL;
        char err[256];
        r = wire_decode(CHANNEL_COORDINATOR_TO_AGENT, zmq_msg_data(&msg), zmq_msg_size(&msg), &type,
                        &body, err, sizeof(err));
        zmq_msg_close(&msg);
        if (r < 0) {
                log_warning("Dropped a message from the coordinator: %s", err);
                return r;
        }
        l->cb.message(type, body, l->userdata);
        return 0;
}

static int on_monitor(void *zsock, void *userdata) {
        Link *l = userdata;
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        zmq_msg_init(&addr);
        if (zmq_msg_recv(&ev, zsock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&ev);
                return negative_errno();
        }
        if (zmq_msg_more(&ev))
                (void)zmq_msg_recv(&addr, zsock, ZMQ_DONTWAIT);
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
                memcpy(&event, zmq_msg_data(&ev), 2);
                memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
        switch (event) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
                l->connected = true;
                log_info("Connected to the coordinator at %s.", l->endpoint);
                l->cb.connected(l->userdata);
                break;
        case ZMQ_EVENT_DISCONNECTED:
                if (l->connected) {
                        l->connected = false;
                        log_warning("Lost the connection to the coordinator; reconnecting.");
                        l->cb.disconnected(l->userdata);
                }
                break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                /* The caller says what it means: it knows which key it offered. */
                log_debug("The coordinator refused our key (ZAP status %u).", value);
                l->cb.auth_failed(l->userdata);
                break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                log_error("CURVE handshake with %s failed: check coordinator-key (it must be the "
                          "public key printed by 'anvilctl info').",
                          l->endpoint);
                break;
        default:
                break;
        }
        return 0;
}

int link_socket_configure(void *sock, const char *server_key, const KeyPair *keys) {
        /* IMMEDIATE: nothing is queued while there is no connection (a send fails with
         * EAGAIN instead); what we would have said is restated by HELLO on connecting. */
        int zero = 0, one = 1, hwm = 1000, hb = 10000, hbt = 30000;
        /* 0.5-1.5 s first reconnect, then doubling to 30 s: a jittered backoff. */
        int ivl = 500 + (int)randombytes_uniform(1000), ivl_max = 30000;
        int64_t maxmsg = WIRE_MAX_AGENT_MESSAGE;
        if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_key, KEY_Z85_LEN + 1) < 0 ||
            zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, keys->public_z85, KEY_Z85_LEN + 1) < 0 ||
            zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, keys->secret_z85, KEY_Z85_LEN + 1) < 0 ||
            zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
            zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0 ||
            zmq_setsockopt(sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) < 0 ||
            zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &hb, sizeof(hb)) < 0 ||
            zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &hbt, sizeof(hbt)) < 0 ||
            zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0)
                return negative_errno();
        return 0;
}

int link_enroll_body(const KeyPair *host_keys, const char *server_key, const char *enroll_public,
                     const Obj *facts, Obj **ret) {
        _cleanup_free_ char *proof = NULL;
        int r = key_proof_make(host_keys, server_key, enroll_public, &proof);
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        if (!b || obj_map_set_str(b, "agentKey", host_keys->public_z85) < 0 ||
            obj_map_set_str(b, "proof", proof) < 0 || obj_map_set(b, "facts", obj_dup(facts)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(b);
        return 0;
}

int link_new(sd_event *e, const char *endpoint, const char *server_key, const KeyPair *keys,
             const LinkCallbacks *cb, void *userdata, Link **ret) {
        _cleanup_(link_freep) Link *l = calloc(1, sizeof(Link));
        if (!l)
                return -ENOMEM;
        l->cb = *cb;
        l->userdata = userdata;
        snprintf(l->endpoint, sizeof(l->endpoint), "%s", endpoint);
        l->ctx = zmq_ctx_new();
        if (!l->ctx)
                return negative_errno();
        zmq_ctx_set(l->ctx, ZMQ_IO_THREADS, 1);
        zmq_ctx_set(l->ctx, ZMQ_BLOCKY, 0);
        l->sock = zmq_socket(l->ctx, ZMQ_DEALER);
        if (!l->sock)
                return negative_errno();
        int r = link_socket_configure(l->sock, server_key, keys);
        if (r < 0)
                return r;

        char mon[64];
        snprintf(mon, sizeof(mon), "inproc://anvil-link-monitor-%p", (void *)l);
        if (zmq_socket_monitor(l->sock, mon,
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) < 0)
                return negative_errno();
        l->monitor = zmq_socket(l->ctx, ZMQ_PAIR);
        if (!l->monitor || zmq_connect(l->monitor, mon) < 0)
                return negative_errno();
        r = zsource_new(e, l->monitor, on_monitor, l, 64, &l->mon_src);
        if (r < 0)
                return r;
        r = zsource_new(e, l->sock, on_message, l, 64, &l->sock_src);
        if (r < 0)
                return r;
        if (zmq_connect(l->sock, endpoint) < 0)
                return log_error_errno(negative_errno(), "Invalid coordinator endpoint '%s': %m",
                                       endpoint);
        *ret = TAKE_PTR(l);
        return 0;
}

Link *link_free(Link *l) {
        if (!l)
                return NULL;
        zsource_free(l->sock_src);
        zsource_free(l->mon_src);
        if (l->sock) {
                zmq_socket_monitor(l->sock, NULL, 0);
                zmq_close(l->sock);
        }
        if (l->monitor)
                zmq_close(l->monitor);
        if (l->ctx)
                zmq_ctx_term(l->ctx);
        free(l);
        return NULL;
}

int link_send(Link *l, MsgType type, const Obj *body) {
        char *buf;
        size_t size;
        int r = wire_encode(type, body, &buf, &size);
        if (r < 0)
                return r;
        r = zmq_send(l->sock, buf, size, ZMQ_DONTWAIT) < 0 ? negative_errno() : 0;
        free(buf);
        /* Sending can swallow the fd's edge; the socket's post source drains it after this
         * iteration (see zsource.h), so no kick here: it would recurse into handlers. */
        return r;
}

int link_send_last(Link *l, MsgType type, const Obj *body, int linger_ms) {
        if (zmq_setsockopt(l->sock, ZMQ_LINGER, &linger_ms, sizeof(linger_ms)) < 0)
                return negative_errno();
        return link_send(l, type, body);
}

bool link_connected(Link *l) {
        return l->connected;
}
