/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <sodium.h>
#include <time.h>
#include <zmq.h>

#include "controllers/controllers.h"
#include "enroll.h"
#include "fanout.h"
#include "hostid.h"
#include "log.h"
#include "metrics.h"
#include "mp.h"
#include "ratelimit.h"
#include "resource.h"
#include "wire.h"

#define TOKEN_ID_LEN     6
#define TOKEN_SECRET_LEN 32
#define TOKEN_ALPHABET   "abcdefghijklmnopqrstuvwxyz0123456789"

/* ---- revoked keys ---- */

/* The store key of a revoked key's record: "_revoked/" + the hex of its fingerprint (Z85 has
 * '/' in its alphabet, hex has not). */
static int revoked_store_key(const char *key_z85, char **ret) {
        char fp[64];
        int r = key_fingerprint(key_z85, fp, sizeof(fp));
        if (r < 0)
                return r;
        *ret = strjoin("_revoked/", startswith(fp, "SHA256:") ? fp + strlen("SHA256:") : fp);
        return *ret ? 0 : -ENOMEM;
}

int revoked_key_get(Manager *m, const char *key_z85, Obj **ret) {
        _cleanup_free_ char *skey = NULL;
        int r = revoked_store_key(key_z85, &skey);
        if (r < 0)
                return r;
        _cleanup_free_ void *buf = NULL;
        size_t size;
        r = store_get(m->store, skey, &buf, &size, NULL);
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *rec = NULL;
        r = mp_decode(buf, size, &rec);
        if (r < 0)
                return r;
        /* A hash collision of the 128-bit prefix is not a revocation of this key. */
        if (!streq_ptr(obj_get_str(rec, "key"), key_z85))
                return -ENOENT;
        if (ret)
                *ret = TAKE_PTR(rec);
        return 0;
}

static int revoked_put(Manager *m, const char *key_z85, const char *host, const char *uuid) {
        _cleanup_free_ char *skey = NULL;
        int r = revoked_store_key(key_z85, &skey);
        if (r < 0)
                return r;
        char fp[64];
        key_fingerprint(key_z85, fp, sizeof(fp));
        _cleanup_(obj_freep) Obj *rec = obj_new_map();
        if (!rec || obj_map_set_str(rec, "key", key_z85) < 0 ||
            obj_map_set_str(rec, "fingerprint", fp) < 0 || obj_map_set_str(rec, "host", host) < 0 ||
            obj_map_set_str(rec, "productUUID", strempty(uuid)) < 0 ||
            obj_map_set_int(rec, "revokedAt", (int64_t)now_usec(CLOCK_REALTIME)) < 0)
                return -ENOMEM;
        _cleanup_free_ char *buf = NULL;
        size_t size;
        r = mp_encode(rec, &buf, &size);
        if (r < 0)
                return r;
        return store_put(m->store, skey, buf, size);
}

typedef struct RevokedListCtx {
        Obj *list;
        const char *uuid; /* only this machine's, when set */
        int64_t latest;   /* the latest revokedAt of that machine */
} RevokedListCtx;

static int revoked_list_cb(const StoreKV *kv, void *userdata) {
        RevokedListCtx *c = userdata;
        _cleanup_(obj_freep) Obj *rec = NULL;
        if (mp_decode(kv->value, kv->size, &rec) < 0)
                return 0;
        if (c->uuid) {
                int64_t at = 0;
                if (streq_ptr(obj_get_str(rec, "productUUID"), c->uuid) &&
                    obj_get_int(rec, "revokedAt", &at) && at > c->latest)
                        c->latest = at;
                return 0;
        }
        return obj_list_append(c->list, TAKE_PTR(rec));
}

int revoked_key_list(Manager *m, Obj **ret) {
        _cleanup_(obj_freep) Obj *list = obj_new_list();
        if (!list)
                return -ENOMEM;
        RevokedListCtx c = {.list = list};
        int r = store_list(m->store, "_revoked/", revoked_list_cb, &c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        return 0;
}

/* When the machine with product UUID uuid last had a key revoked (realtime µs), 0 if never.
 * Revocations are rare (a stolen key, a decommissioned host), so a scan is the index. */
static int revoked_latest_for_uuid(Manager *m, const char *uuid, int64_t *ret) {
        RevokedListCtx c = {.uuid = strempty(uuid)};
        int r = store_list(m->store, "_revoked/", revoked_list_cb, &c);
        if (r < 0)
                return r;
        *ret = c.latest;
        return 0;
}

/* ---- ZAP ---- */

/* Connection refusals and enrollment refusals are what a scanner or a misconfigured fleet
 * produces in bulk: log the first ones of each burst, count the rest. */
static RateLimit zap_log_limit = RATELIMIT_INIT(10 * USEC_PER_SEC, 20);
static RateLimit refuse_log_limit = RATELIMIT_INIT(10 * USEC_PER_SEC, 20);

static int zap_reply(void *sock, const char *req_id, size_t req_id_len, const char *code,
                     const char *text, const char *user) {
        if (zmq_send(sock, "1.0", 3, ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, req_id, req_id_len, ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, code, strlen(code), ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, text, strlen(text), ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, user, strlen(user), ZMQ_SNDMORE) < 0 || zmq_send(sock, "", 0, 0) < 0)
                return negative_errno();
        return 0;
}

static void zap_log_refusal(Manager *m, const char *address, const char *key, const char *why,
                            const char *reason) {
        unsigned suppressed = 0;
        metrics_enroll_failure(m->metrics, reason);
        if (!ratelimit_below(&zap_log_limit, &suppressed))
                return;
        char fp[64] = "?";
        if (key)
                key_fingerprint(key, fp, sizeof(fp));
        log_notice("Refused a connection from %s with key %s: %s.%s", address, fp, why,
                   suppressed ? " (more refusals were not logged)" : "");
}

int zap_on_request(void *zsock, void *userdata) {
        Manager *m = userdata;
        zmq_msg_t frames[8];
        int n = 0, more = 1, r = 0;

        /* Read every frame of the request (never more than we can hold). */
        while (more) {
                zmq_msg_t msg;
                zmq_msg_init(&msg);
                if (zmq_msg_recv(&msg, zsock, ZMQ_DONTWAIT) < 0) {
                        zmq_msg_close(&msg);
                        r = negative_errno();
                        break;
                }
                more = zmq_msg_more(&msg);
                if (n < (int)ELEMENTSOF(frames))
                        frames[n++] = msg;
                else
                        zmq_msg_close(&msg);
        }
        if (r < 0 || n < 6) {
                /* A REP socket must answer before it can read again. */
                if (n >= 2)
                        (void)zap_reply(zsock, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]),
                                        "500", "malformed", "");
                for (int i = 0; i < n; i++)
                        zmq_msg_close(&frames[i]);
                return r < 0 ? r : -EBADMSG;
        }

        const char *req_id = zmq_msg_data(&frames[1]);
        size_t req_id_len = zmq_msg_size(&frames[1]);
        const char *mech = zmq_msg_data(&frames[5]);
        size_t mech_len = zmq_msg_size(&frames[5]);
        char address[64];
        snprintf(address, sizeof(address), "%.*s",
                 (int)(zmq_msg_size(&frames[3]) < 63 ? zmq_msg_size(&frames[3]) : 63),
                 (const char *)zmq_msg_data(&frames[3]));

        if (mech_len != 5 || memcmp(mech, "CURVE", 5) != 0 || n < 7 ||
            zmq_msg_size(&frames[6]) != KEY_RAW_LEN) {
                zap_log_refusal(m, address, NULL, "not a CURVE handshake", "NoCurve");
                r = zap_reply(zsock, req_id, req_id_len, "400", "CURVE required", "");
                goto done;
        }
        char key[KEY_Z85_LEN + 1];
        zmq_z85_encode(key, zmq_msg_data(&frames[6]), KEY_RAW_LEN);

        switch (fanout_key_status(m->fanout, key)) {
        case KEY_REVOKED:
                zap_log_refusal(m, address, key, "the host's key is revoked", "Revoked");
                r = zap_reply(zsock, req_id, req_id_len, "400", "revoked", "");
                break;
        case KEY_ENROLLED:
                r = zap_reply(zsock, req_id, req_id_len, "200", "OK", key);
                break;
        case KEY_UNKNOWN:
                /* Not a host: only the enrollment key of a token we issued gets in, and then
                 * only to send ENROLL (fanout.c drops anything else). Expired and used-up
                 * tokens still get in, so that the agent is told why it is refused. A key
                 * revoked once stays refused after its Host is deleted. */
                r = revoked_key_get(m, key, NULL);
                if (r >= 0) {
                        zap_log_refusal(m, address, key, "the key was revoked", "Revoked");
                        r = zap_reply(zsock, req_id, req_id_len, "400", "revoked", "");
                        break;
                }
                if (r != -ENOENT)
                        log_warning_errno(r, "Failed to look up revoked keys: %m");
                r = token_find_by_key(m, key, NULL, NULL, NULL);
                if (r < 0 && r != -ENOENT)
                        log_warning_errno(r, "Failed to look up enrollment keys: %m");
                if (r >= 0)
                        r = zap_reply(zsock, req_id, req_id_len, "200", "OK", key);
                else {
                        zap_log_refusal(m, address, key,
                                        "neither an enrolled host nor an enrollment token",
                                        "UnknownKey");
                        r = zap_reply(zsock, req_id, req_id_len, "400", "unknown key", "");
                }
                break;
        }
done:
        for (int i = 0; i < n; i++)
                zmq_msg_close(&frames[i]);
        return r;
}

/* ---- tokens ---- */

static bool token_id_valid(const char *id) {
        if (strlen(id) != TOKEN_ID_LEN)
                return false;
        for (const char *p = id; *p; p++)
                if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p))
                        return false;
        return true;
}

int token_create(Manager *m, const TokenSpec *spec, char **ret) {
        char id[TOKEN_ID_LEN + 1], secret[TOKEN_SECRET_LEN + 1];
        random_string(TOKEN_ALPHABET, TOKEN_ID_LEN, id);
        random_string(TOKEN_ALPHABET, TOKEN_SECRET_LEN, secret);
        _cleanup_free_ char *token = strjoin(id, ".", secret);
        sodium_memzero(secret, sizeof(secret));
        if (!token)
                return -ENOMEM;
        /* Only the public half of the token's enrollment key is kept: it identifies the
         * token at the handshake and cannot be turned back into the token. */
        KeyPair ek;
        int r = enroll_keypair_from_token(token, &ek);
        if (r < 0) {
                sodium_memzero(token, strlen(token));
                return r;
        }
        char enroll_key[KEY_Z85_LEN + 1];
        memcpy(enroll_key, ek.public_z85, sizeof(enroll_key));
        keypair_wipe(&ek);

        _cleanup_(obj_freep) Obj *rec = obj_new_map();
        int64_t now = (int64_t)now_usec(CLOCK_REALTIME);
        if (!rec || obj_map_set_str(rec, "enrollKey", enroll_key) < 0 ||
            obj_map_set_int(rec, "created", now) < 0 ||
            obj_map_set_int(rec, "expires", spec->ttl_usec ? now + (int64_t)spec->ttl_usec : 0) <
                    0 ||
            obj_map_set_int(rec, "usesLeft", spec->uses > 0 ? spec->uses : -1) < 0 ||
            obj_map_set_str(rec, "description", strempty(spec->description)) < 0 ||
            obj_map_set(rec, "labels", spec->labels ? obj_dup(spec->labels) : obj_new_map()) < 0) {
                sodium_memzero(token, strlen(token));
                return -ENOMEM;
        }
        _cleanup_free_ char *buf = NULL;
        size_t size;
        r = mp_encode(rec, &buf, &size);
        _cleanup_free_ char *key = r >= 0 ? strjoin("_token/", id) : NULL;
        if (r >= 0 && !key)
                r = -ENOMEM;
        if (r >= 0) {
                StoreCmp cmp = {.key = key, .target = STORE_CMP_EXISTS, .value = 0};
                StoreOp op = {.type = STORE_OP_PUT, .key = key, .value = buf, .size = size};
                r = store_txn(m->store, &cmp, 1, &op, 1, NULL);
                if (r == 0)
                        r = -EEXIST; /* an id collision: 36^6, the caller may retry */
        }
        if (r < 0) {
                sodium_memzero(token, strlen(token));
                return r;
        }
        *ret = TAKE_PTR(token);
        return 0;
}

typedef struct FindTokenCtx {
        const char *key;
        char id[TOKEN_ID_LEN + 1];
        Obj *rec;
        int64_t rev;
} FindTokenCtx;

static int find_token_cb(const StoreKV *kv, void *userdata) {
        FindTokenCtx *c = userdata;
        _cleanup_(obj_freep) Obj *rec = NULL;
        if (mp_decode(kv->value, kv->size, &rec) < 0)
                return 0;
        if (!streq_ptr(obj_get_str(rec, "enrollKey"), c->key))
                return 0;
        snprintf(c->id, sizeof(c->id), "%s", kv->key + strlen("_token/"));
        c->rec = TAKE_PTR(rec);
        c->rev = kv->mod_rev;
        return 1;
}

/* Tokens are few (one per batch of hosts), so a scan is the index. */
int token_find_by_key(Manager *m, const char *enroll_key, char *ret_id, Obj **ret_rec,
                      int64_t *ret_rev) {
        FindTokenCtx c = {.key = enroll_key};
        int r = store_list(m->store, "_token/", find_token_cb, &c);
        _cleanup_(obj_freep) Obj *rec = c.rec;
        if (r < 0)
                return r;
        if (!rec)
                return -ENOENT;
        if (ret_id)
                memcpy(ret_id, c.id, sizeof(c.id));
        if (ret_rec)
                *ret_rec = TAKE_PTR(rec);
        if (ret_rev)
                *ret_rev = c.rev;
        return 0;
}

typedef struct TokenListCtx {
        Obj *list;
} TokenListCtx;

static int token_list_cb(const StoreKV *kv, void *userdata) {
        TokenListCtx *c = userdata;
        _cleanup_(obj_freep) Obj *rec = NULL;
        if (mp_decode(kv->value, kv->size, &rec) < 0)
                return 0;
        obj_map_del(rec, "enrollKey");
        int r = obj_map_set_str(rec, "id", kv->key + strlen("_token/"));
        if (r < 0)
                return r;
        return obj_list_append(c->list, TAKE_PTR(rec));
}

int token_list(Manager *m, Obj **ret) {
        _cleanup_(obj_freep) Obj *list = obj_new_list();
        if (!list)
                return -ENOMEM;
        TokenListCtx c = {list};
        int r = store_list(m->store, "_token/", token_list_cb, &c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        return 0;
}

int token_delete(Manager *m, const char *id) {
        if (!token_id_valid(id))
                return -EINVAL;
        _cleanup_free_ char *key = strjoin("_token/", id);
        if (!key)
                return -ENOMEM;
        StoreCmp cmp = {.key = key, .target = STORE_CMP_EXISTS, .value = 1};
        StoreOp op = {.type = STORE_OP_DELETE, .key = key};
        int r = store_txn(m->store, &cmp, 1, &op, 1, NULL);
        if (r < 0)
                return r;
        return r == 0 ? -ENOENT : 0;
}

/* ---- enrollment ---- */

typedef struct Refusal {
        Manager *m;
        const void *rid;
        size_t rid_len;
        const char *fp;      /* fingerprint of the key being enrolled */
        const char *address; /* the peer's IP address */
} Refusal;

static int refuse(const Refusal *ctx, const char *reason, const char *fmt, ...) _printf_(3, 4);
static int refuse(const Refusal *ctx, const char *reason, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        unsigned suppressed = 0;
        if (ratelimit_below(&refuse_log_limit, &suppressed))
                log_event(LOG_NOTICE, ANVIL_MESSAGE_ENROLLMENT_REFUSED,
                          "Refused the enrollment of key %s from %s: %s: %s%s", ctx->fp,
                          ctx->address, reason, msg,
                          suppressed ? " (more refusals were not logged)" : "");
        metrics_enroll_failure(ctx->m->metrics, reason);
        _cleanup_(obj_freep) Obj *body = obj_new_map();
        if (!body || obj_map_set_str(body, "reason", reason) < 0 ||
            obj_map_set_str(body, "message", msg) < 0)
                return -ENOMEM;
        char *buf;
        size_t size;
        int r = wire_encode(MSG_REFUSED, body, &buf, &size);
        if (r < 0)
                return r;
        return manager_send_after_commit(ctx->m, ctx->m->router, ctx->rid, ctx->rid_len, buf, size);
}

static int reply_enrolled(Manager *m, const void *rid, size_t rid_len, const char *host) {
        _cleanup_(obj_freep) Obj *body = obj_new_map();
        if (!body || obj_map_set_str(body, "host", host) < 0)
                return -ENOMEM;
        char *buf;
        size_t size;
        int r = wire_encode(MSG_ENROLLED, body, &buf, &size);
        if (r < 0)
                return r;
        return manager_send_after_commit(m, m->router, rid, rid_len, buf, size);
}

/* A DNS-label host name from the reported hostname; "host-<uuid prefix>" otherwise. */
static void host_name_from_facts(const Obj *facts, char *buf, size_t bufsz) {
        const char *hn = strempty(obj_get_str(facts, "hostname"));
        size_t n = 0;
        for (const char *p = hn; *p && *p != '.' && n + 1 < bufsz && n < 63; p++) {
                char ch = (char)tolower((unsigned char)*p);
                if (isalnum((unsigned char)ch) || ch == '-')
                        buf[n++] = ch;
        }
        buf[n] = 0;
        while (n > 0 && buf[n - 1] == '-')
                buf[--n] = 0;
        if (n == 0 || buf[0] == '-') {
                const char *uuid = strempty(obj_get_str(facts, "productUUID"));
                char u[9];
                size_t k = 0;
                for (const char *p = uuid; *p && k < 8; p++)
                        if (isalnum((unsigned char)*p))
                                u[k++] = (char)tolower((unsigned char)*p);
                u[k] = 0;
                snprintf(buf, bufsz, "host-%s", u);
        }
}

/* The Host of a machine (by product UUID) or of a key: the fan-out's indexes say which,
 * so enrolling 10,000 hosts does not scan 10,000 Hosts each time. */
static int find_host(Manager *m, const char *uuid, const char *key, Obj **ret) {
        extern const KindInfo kind_host;
        const char *name =
                uuid ? fanout_host_by_uuid(m->fanout, uuid) : fanout_host_by_key(m->fanout, key);
        *ret = NULL;
        if (!name)
                return 0;
        int r = registry_get(m->reg, &kind_host, NULL, name, ret);
        return r == -ENOENT ? 0 : r;
}

int enroll_handle(Manager *m, const char *enroll_key, const char *address, const void *rid,
                  size_t rid_len, const Obj *body) {
        extern const KindInfo kind_host;
        const char *agent_key = obj_get_str(body, "agentKey");
        const Obj *facts = obj_map_get(body, "facts");
        const char *uuid = obj_get_str(facts, "productUUID");
        char fp[64] = "?";
        key_fingerprint(agent_key, fp, sizeof(fp));
        Refusal ctx = {m, rid, rid_len, fp, strempty(address)};
        int r;

        /* Which token: the one whose enrollment key this connection authenticated with. */
        char id[TOKEN_ID_LEN + 1] = "";
        _cleanup_(obj_freep) Obj *rec = NULL;
        int64_t rec_rev = 0;
        r = token_find_by_key(m, enroll_key, id, &rec, &rec_rev);
        if (r == -ENOENT)
                return refuse(&ctx, "TokenUnknown",
                              "the coordinator does not know this enrollment token (deleted?); "
                              "create one with 'anvilctl token create'");
        if (r < 0)
                return r;

        /* The key being enrolled must be the sender's: the proof is a box from its secret
         * key to ours over this connection's enrollment key. */
        if (key_proof_check(&m->keys, agent_key, enroll_key, obj_get_str(body, "proof")) < 0)
                return refuse(&ctx, "BadProof",
                              "the proof of possession of the agent key does not verify");
        if (streq(agent_key, enroll_key))
                return refuse(&ctx, "BadKey", "the agent key must not be the token's key");

        /* What the Host and its node will be named after must be a name: nothing is
         * created or changed for facts that are not. */
        const char *hostname = obj_get_str(facts, "hostname");
        if (!product_uuid_valid(uuid, true))
                return refuse(&ctx, "InvalidFacts",
                              "productUUID \"%.64s\" is not a lowercase UUID "
                              "(8-4-4-4-12 hex digits)",
                              strempty(uuid));
        if (hostname && !hostname_valid(hostname))
                return refuse(&ctx, "InvalidFacts",
                              "hostname \"%.64s\" is not a valid DNS-1123 subdomain (lowercase "
                              "letters, digits, '-' and '.', as Kubernetes node names)",
                              hostname);

        /* A revoked key stays revoked, also after its Host was deleted. */
        _cleanup_(obj_freep) Obj *revoked = NULL;
        r = revoked_key_get(m, agent_key, &revoked);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0)
                return refuse(&ctx, "KeyRevoked",
                              "this agent key (%s) was revoked (host %s); it is refused for "
                              "good: remove the agent's key file (agent.key in its state "
                              "directory; a new one is made at the next start) and enroll "
                              "with a token created after the revocation",
                              fp, strna(obj_get_str(revoked, "host")));

        switch (fanout_key_status(m->fanout, agent_key)) {
        case KEY_REVOKED: {
                _cleanup_(obj_freep) Obj *h = NULL;
                r = find_host(m, NULL, agent_key, &h);
                if (r < 0)
                        return r;
                return refuse(&ctx, "HostRevoked",
                              "this agent key (%s) is host %s's, which is revoked; to enroll "
                              "the machine again, delete the host ('anvilctl host delete %s'), "
                              "give the agent a new key and a token created after the "
                              "revocation",
                              fp, h ? meta_name(h) : "?", h ? meta_name(h) : "NAME");
        }
        case KEY_ENROLLED: {
                /* Enrolled already and asking again (it lost our answer): answer again and
                 * spend nothing, if it is the same machine. */
                _cleanup_(obj_freep) Obj *h = NULL;
                r = find_host(m, NULL, agent_key, &h);
                if (r < 0)
                        return r;
                if (h && streq_ptr(obj_get_str(h, "status.facts.productUUID"), uuid))
                        return reply_enrolled(m, rid, rid_len, meta_name(h));
                return refuse(&ctx, "KeyInUse",
                              "this agent key (%s) is enrolled as another host (%s)", fp,
                              h ? meta_name(h) : "?");
        }
        case KEY_UNKNOWN:
                break;
        }

        /* One machine, one Host. A machine that comes back with another key (a diskless host
         * after a reboot, a reinstalled one) is re-keyed with a valid token — but only a
         * Host that holds nothing: not claimed (no bootstrap data is sealed to it, no node
         * runs there), not revoked, and not connected with its old key right now (the live
         * agent wins; whoever enrolls with its UUID then gets a refusal). Its labels become
         * the token's, exactly as for a new machine, so a token never obtains more than a
         * made-up machine would. */
        _cleanup_(obj_freep) Obj *host = NULL;
        r = find_host(m, uuid, NULL, &host);
        if (r < 0)
                return r;
        if (host) {
                if (streq_ptr(obj_get_str(host, "status.phase"), "Revoked"))
                        return refuse(&ctx, "HostRevoked",
                                      "host %s (product UUID %s) is revoked; delete it "
                                      "('anvilctl host delete %s') before enrolling it again, "
                                      "with a token created after the revocation",
                                      meta_name(host), uuid, meta_name(host));
                if (obj_get(host, "spec.consumerRef"))
                        return refuse(&ctx, "HostInUse",
                                      "host %s (product UUID %s) is claimed by %s %s; release "
                                      "it before enrolling it with a new key ('anvilctl delete "
                                      "machine', or 'anvilctl host delete %s')",
                                      meta_name(host), uuid,
                                      strna(obj_get_str(host, "spec.consumerRef.kind")),
                                      strna(obj_get_str(host, "spec.consumerRef.name")),
                                      meta_name(host));
                if (fanout_host_connected(m->fanout, meta_name(host)))
                        return refuse(&ctx, "HostConnected",
                                      "host %s (product UUID %s) is connected with its "
                                      "enrolled key %s; a second machine with the same "
                                      "product UUID cannot enroll",
                                      meta_name(host), uuid,
                                      strna(obj_get_str(host, "status.fingerprint")));
        }
        /* A machine whose key was revoked comes back only with a token made after that:
         * a token that was on the machine (or with whoever stole its key) when it was
         * revoked does not undo the revocation. */
        int64_t revoked_at = 0, created = 0;
        r = revoked_latest_for_uuid(m, uuid, &revoked_at);
        if (r < 0)
                return r;
        obj_get_int(rec, "created", &created);
        if (revoked_at > 0 && created <= revoked_at) {
                char ts[32];
                return refuse(&ctx, "TokenPredatesRevocation",
                              "a key of this machine (product UUID %s) was revoked at %s, and "
                              "enrollment token %s was created before that; enroll it with a "
                              "new token ('anvilctl token create')",
                              uuid, format_rfc3339(revoked_at, ts), id);
        }
        int64_t expires = 0, uses = -1;
        obj_get_int(rec, "expires", &expires);
        obj_get_int(rec, "usesLeft", &uses);
        if (expires > 0 && expires < (int64_t)now_usec(CLOCK_REALTIME))
                return refuse(&ctx, "TokenExpired",
                              "enrollment token %s has expired; create a new one with "
                              "'anvilctl token create'",
                              id);
        if (uses == 0)
                return refuse(&ctx, "TokenExhausted",
                              "enrollment token %s has no uses left; create a new one with "
                              "'anvilctl token create'",
                              id);

        bool rekey = host != NULL;
        _cleanup_free_ char *old_fp = NULL;
        if (rekey) {
                old_fp = strdup(strempty(obj_get_str(host, "status.fingerprint")));
                if (!old_fp || obj_set_str(host, "status.previousFingerprint", old_fp) < 0)
                        return -ENOMEM;
                /* What the old key's agent reported is not this agent's. */
                Obj *st = obj_map_get(host, "status");
                static const char *const stale[] = {
                        "agentState", "agentAction",    "agentGeneration", "step",
                        "lastError",  "health",         "providerID",      "nodeName",
                        "nodeReady",  "kubeletVersion", "nodeConditions"};
                for (size_t i = 0; i < ELEMENTSOF(stale); i++)
                        obj_map_del(st, stale[i]);
        } else {
                char name[64];
                host_name_from_facts(facts, name, sizeof(name));
                _cleanup_(obj_freep) Obj *existing = NULL;
                if (registry_get(m->reg, &kind_host, NULL, name, &existing) >= 0) {
                        /* Same hostname, other machine: disambiguate with the UUID. */
                        char alt[64];
                        char u[9] = "";
                        size_t k = 0;
                        for (const char *p = strempty(uuid); *p && k < 8; p++)
                                if (isalnum((unsigned char)*p))
                                        u[k++] = (char)tolower((unsigned char)*p);
                        u[k] = 0;
                        snprintf(alt, sizeof(alt), "%.54s-%s", name, u);
                        snprintf(name, sizeof(name), "%s", alt);
                        existing = obj_free(existing);
                        if (registry_get(m->reg, &kind_host, NULL, name, &existing) >= 0)
                                return refuse(&ctx, "NameTaken",
                                              "no free host name for hostname %s (product UUID "
                                              "%s)",
                                              strna(obj_get_str(facts, "hostname")), uuid);
                }
                host = obj_new_map();
                if (!host || obj_map_set_str(host, "kind", "Host") < 0 ||
                    obj_set_str(host, "metadata.name", name) < 0 ||
                    obj_set_str(host, "spec.action", "Idle") < 0 ||
                    obj_set_str(host, "status.phase", "Available") < 0)
                        return -ENOMEM;
        }
        /* The agent's disk says the machine is not clean (a Host deleted with --force while
         * it held a node, or whose reset failed): reset before it is handed out, exactly as
         * a host released while unreachable (the Host controller clears it once the agent
         * is idle at the reset's generation). Never handed out in between: the Host is
         * created so, not fixed up later. */
        bool needs_reset = obj_get_bool(body, "needsReset", false);
        if (needs_reset && (obj_set_bool(host, "spec.resetRequired", true) < 0 ||
                            obj_set_str(host, "spec.action", "Deprovision") < 0 ||
                            obj_set_str(host, "status.phase", "Deprovisioning") < 0))
                return -ENOMEM;
        /* The new key's identity, on a new Host or on the re-keyed one: labels from the
         * token, delivery from generation 0. */
        char ts[32];
        if (obj_set(host, "metadata.labels", obj_dup(obj_map_get(rec, "labels")) ?: obj_new_map()) <
                    0 ||
            obj_set_str(host, "status.agentKey", agent_key) < 0 ||
            obj_set_str(host, "status.fingerprint", fp) < 0 ||
            obj_set_str(host, "status.enrolledAt", now_rfc3339(ts)) < 0 ||
            obj_set_str(host, "status.enrolledWith", id) < 0 ||
            obj_set_bool(host, "status.connected", true) < 0 ||
            obj_set_int(host, "status.observedGeneration", 0) < 0 ||
            obj_set(host, "status.facts", obj_dup(facts)) < 0)
                return -ENOMEM;
        /* Create the Host and spend one use together (all or nothing), the use
         * preconditioned on the record we read: two enrollments racing for the last use
         * cannot both win. */
        r = store_group_begin(m->store);
        if (r < 0)
                return r;
        if (rekey) {
                /* Labels (metadata) then status, each preconditioned on what was read. */
                _cleanup_(obj_freep) Obj *status = obj_dup(obj_map_get(host, "status"));
                r = status ? registry_update(m->reg, host) : -ENOMEM;
                if (r >= 0 && (r = obj_map_set(host, "status", TAKE_PTR(status))) >= 0)
                        r = registry_update_status(m->reg, host);
        } else
                r = registry_create(m->reg, host);
        if (r >= 0 && uses > 0) {
                _cleanup_free_ char *buf = NULL, *tkey = strjoin("_token/", id);
                size_t size;
                if (!tkey)
                        r = -ENOMEM;
                if (r >= 0)
                        r = obj_map_set_int(rec, "usesLeft", uses - 1);
                if (r >= 0)
                        r = mp_encode(rec, &buf, &size);
                if (r >= 0) {
                        StoreCmp cmp = {.key = tkey, .target = STORE_CMP_MOD_REV, .value = rec_rev};
                        StoreOp op = {
                                .type = STORE_OP_PUT, .key = tkey, .value = buf, .size = size};
                        r = store_txn(m->store, &cmp, 1, &op, 1, NULL);
                        if (r == 0)
                                r = -ESTALE;
                }
        }
        int q = store_group_end(m->store, r >= 0);
        if (r < 0)
                return r;
        if (q < 0)
                return q;

        r = fanout_link_host(m->fanout, agent_key, meta_name(host));
        if (r >= 0)
                r = fanout_link_uuid(m->fanout, agent_key, uuid);
        if (r < 0)
                return r;
        fanout_host_heard(m->fanout, agent_key);
        LOG_FIELD_SCOPE(LOG_FIELD_HOST, meta_name(host));
        const char *reset_note = needs_reset ? " It still holds a machine's installation: it is "
                                               "reset before it is handed out."
                                             : "";
        if (rekey)
                log_event(LOG_NOTICE, ANVIL_MESSAGE_HOST_ENROLLED,
                          "Host %s enrolled again from %s with a new key (product UUID %s, key "
                          "%s, was %s, token %s); its labels are now the token's.%s",
                          meta_name(host), strempty(address), uuid, fp, strna(old_fp), id,
                          reset_note);
        else
                log_event(LOG_NOTICE, ANVIL_MESSAGE_HOST_ENROLLED,
                          "Host %s enrolled from %s (product UUID %s, key %s, token %s).%s",
                          meta_name(host), strempty(address), uuid, fp, id, reset_note);
        return reply_enrolled(m, rid, rid_len, meta_name(host));
}

int host_revoke(Manager *m, const char *name, char **ret_error) {
        extern const KindInfo kind_host;
        _cleanup_(obj_freep) Obj *host = NULL;
        int r = registry_get(m->reg, &kind_host, NULL, name, &host);
        if (r == -ENOENT) {
                *ret_error = asprintf_safe("host \"%s\" not found", name);
                return r;
        }
        if (r < 0)
                return r;
        const char *key = obj_get_str(host, "status.agentKey");
        if (streq_ptr(obj_get_str(host, "status.phase"), "Revoked") &&
            (!key || revoked_key_get(m, key, NULL) >= 0))
                return 0; /* (a host revoked before keys were recorded gets its record) */
        if ((r = obj_set_str(host, "status.phase", "Revoked")) < 0 ||
            (r = obj_set_bool(host, "status.connected", false)) < 0)
                return r;
        /* The key's record outlives the Host: deleting a revoked host must not make its key
         * (or an old token on the machine) good again. Both writes or neither. */
        r = store_group_begin(m->store);
        if (r < 0)
                return r;
        r = registry_update_status(m->reg, host);
        if (r >= 0 && key)
                r = revoked_put(m, key, name, obj_get_str(host, "status.facts.productUUID"));
        int q = store_group_end(m->store, r >= 0);
        if (r < 0)
                return r;
        if (q < 0)
                return q;
        log_notice("Host %s revoked: its key %s is refused from now on and its connections are "
                   "closed.",
                   name, strna(obj_get_str(host, "status.fingerprint")));
        return 0;
}
