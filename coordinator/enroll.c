/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <sodium.h>
#include <time.h>
#include <zmq.h>

#include "controllers/controllers.h"
#include "enroll.h"
#include "fanout.h"
#include "log.h"
#include "metrics.h"
#include "mp.h"
#include "resource.h"
#include "wire.h"

#define TOKEN_ID_LEN     6
#define TOKEN_SECRET_LEN 32
#define TOKEN_ALPHABET   "abcdefghijklmnopqrstuvwxyz0123456789"

/* ---- ZAP ---- */

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
                for (int i = 0; i < n; i++)
                        zmq_msg_close(&frames[i]);
                /* A REP socket must answer before it can read again. */
                if (n >= 2)
                        (void)zap_reply(zsock, zmq_msg_data(&frames[1]), 0, "500", "malformed", "");
                return r < 0 ? r : -EBADMSG;
        }

        const char *req_id = zmq_msg_data(&frames[1]);
        size_t req_id_len = zmq_msg_size(&frames[1]);
        const char *mech = zmq_msg_data(&frames[5]);
        size_t mech_len = zmq_msg_size(&frames[5]);
        char address[64];
        snprintf(address, sizeof(address), "%.*s", (int)zmq_msg_size(&frames[3]),
                 (const char *)zmq_msg_data(&frames[3]));

        if (mech_len != 5 || memcmp(mech, "CURVE", 5) != 0 || n < 7 ||
            zmq_msg_size(&frames[6]) != KEY_RAW_LEN) {
                r = zap_reply(zsock, req_id, req_id_len, "400", "CURVE required", "");
                metrics_enroll_failure(m->metrics, "NoCurve");
                goto done;
        }
        char key[KEY_Z85_LEN + 1];
        zmq_z85_encode(key, zmq_msg_data(&frames[6]), KEY_RAW_LEN);

        switch (fanout_key_status(m->fanout, key)) {
        case KEY_REVOKED:
                log_notice("Refused a connection from %s: key %.8s… is revoked.", address, key);
                metrics_enroll_failure(m->metrics, "Revoked");
                r = zap_reply(zsock, req_id, req_id_len, "400", "revoked", "");
                break;
        case KEY_ENROLLED:
        case KEY_UNKNOWN:
                /* Unknown keys get in to enroll, and may do nothing else (fanout.c). */
                r = zap_reply(zsock, req_id, req_id_len, "200", "OK", key);
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
        char hash[65];
        token_hash(token, hash);

        _cleanup_(obj_freep) Obj *rec = obj_new_map();
        int64_t now = (int64_t)now_usec(CLOCK_REALTIME);
        if (!rec || obj_map_set_str(rec, "hash", hash) < 0 ||
            obj_map_set_int(rec, "created", now) < 0 ||
            obj_map_set_int(rec, "expires", spec->ttl_usec ? now + (int64_t)spec->ttl_usec : 0) <
                    0 ||
            obj_map_set_int(rec, "usesLeft", spec->uses > 0 ? spec->uses : -1) < 0 ||
            obj_map_set_str(rec, "description", strempty(spec->description)) < 0 ||
            obj_map_set(rec, "labels", spec->labels ? obj_dup(spec->labels) : obj_new_map()) < 0)
                return -ENOMEM;
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r = mp_encode(rec, &buf, &size);
        if (r < 0)
                return r;
        _cleanup_free_ char *key = strjoin("_token/", id);
        if (!key)
                return -ENOMEM;
        StoreCmp cmp = {.key = key, .target = STORE_CMP_EXISTS, .value = 0};
        StoreOp op = {.type = STORE_OP_PUT, .key = key, .value = buf, .size = size};
        r = store_txn(m->store, &cmp, 1, &op, 1, NULL);
        if (r < 0)
                return r;
        if (r == 0)
                return -EEXIST; /* an id collision: 36^6, the caller may retry */
        *ret = TAKE_PTR(token);
        return 0;
}

static int load_token(Manager *m, const char *id, Obj **ret, int64_t *ret_rev) {
        _cleanup_free_ char *key = strjoin("_token/", id);
        if (!key)
                return -ENOMEM;
        _cleanup_free_ void *buf = NULL;
        size_t size;
        int r = store_get(m->store, key, &buf, &size, ret_rev);
        if (r < 0)
                return r;
        return mp_decode(buf, size, ret);
}

typedef struct TokenListCtx {
        Obj *list;
} TokenListCtx;

static int token_list_cb(const StoreKV *kv, void *userdata) {
        TokenListCtx *c = userdata;
        _cleanup_(obj_freep) Obj *rec = NULL;
        if (mp_decode(kv->value, kv->size, &rec) < 0)
                return 0;
        obj_map_del(rec, "hash");
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

static int refuse(Manager *m, const void *rid, size_t rid_len, const char *reason,
                  const char *fmt, ...) _printf_(5, 6);
static int refuse(Manager *m, const void *rid, size_t rid_len, const char *reason,
                  const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_event(LOG_NOTICE, ANVIL_MESSAGE_ENROLL_REFUSED, "Refused enrollment: %s: %s", reason,
                  msg);
        metrics_enroll_failure(m->metrics, reason);
        _cleanup_(obj_freep) Obj *body = obj_new_map();
        if (!body || obj_map_set_str(body, "reason", reason) < 0 ||
            obj_map_set_str(body, "message", msg) < 0)
                return -ENOMEM;
        char *buf;
        size_t size;
        int r = wire_encode(MSG_REFUSED, body, &buf, &size);
        if (r < 0)
                return r;
        return manager_send_after_commit(m, m->router, rid, rid_len, buf, size);
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

typedef struct FindCtx {
        const char *uuid;
        Obj *found;
} FindCtx;

static int find_by_uuid(Obj *host, void *userdata) {
        FindCtx *c = userdata;
        if (streq_ptr(obj_get_str(host, "status.facts.productUUID"), c->uuid)) {
                c->found = obj_dup(host);
                return 1;
        }
        return 0;
}

int enroll_handle(Manager *m, const char *key_z85, const void *rid, size_t rid_len,
                  const Obj *body) {
        extern const KindInfo kind_host;
        const char *token = obj_get_str(body, "token");
        const Obj *facts = obj_map_get(body, "facts");
        const char *uuid = obj_get_str(facts, "productUUID");
        char fp[64];
        key_fingerprint(key_z85, fp, sizeof(fp));

        /* An enrolled key asking again (it lost our answer): answer again, spend nothing. */
        if (fanout_key_status(m->fanout, key_z85) == KEY_ENROLLED) {
                FindCtx c = {.uuid = uuid};
                int r = registry_list(m->reg, &kind_host, NULL, find_by_uuid, &c);
                _cleanup_(obj_freep) Obj *h = c.found;
                if (r >= 0 && h && streq_ptr(obj_get_str(h, "status.agentKey"), key_z85))
                        return reply_enrolled(m, rid, rid_len, meta_name(h));
        }

        const char *dot = token ? strchr(token, '.') : NULL;
        char id[TOKEN_ID_LEN + 1] = "";
        if (dot && dot - token == TOKEN_ID_LEN) {
                memcpy(id, token, TOKEN_ID_LEN);
                id[TOKEN_ID_LEN] = 0;
        }
        if (!token_id_valid(id))
                return refuse(m, rid, rid_len, "TokenUnknown", "the token is not a valid Anvil "
                                                               "enrollment token");
        _cleanup_(obj_freep) Obj *rec = NULL;
        int64_t rec_rev = 0;
        int r = load_token(m, id, &rec, &rec_rev);
        char hash[65];
        token_hash(token, hash);
        const char *want = obj_get_str(rec, "hash");
        if (r < 0 || !want || strlen(want) != 64 || sodium_memcmp(want, hash, 64) != 0)
                return refuse(m, rid, rid_len, "TokenUnknown",
                              "no such enrollment token (key %s)", fp);
        int64_t expires = 0, uses = -1;
        obj_get_int(rec, "expires", &expires);
        obj_get_int(rec, "usesLeft", &uses);
        if (expires > 0 && expires < (int64_t)now_usec(CLOCK_REALTIME))
                return refuse(m, rid, rid_len, "TokenExpired",
                              "enrollment token %s has expired; create a new one with "
                              "'anvilctl token create'",
                              id);
        if (uses == 0)
                return refuse(m, rid, rid_len, "TokenExhausted",
                              "enrollment token %s has no uses left", id);

        /* Same machine, new key (reinstalled or diskless): re-key its Host, but never one
         * that is in use — a stolen token must not take over a running node. */
        FindCtx c = {.uuid = uuid};
        r = registry_list(m->reg, &kind_host, NULL, find_by_uuid, &c);
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *host = c.found;
        char ts[32];
        if (host) {
                if (obj_get(host, "spec.consumerRef") &&
                    !streq_ptr(obj_get_str(host, "status.phase"), "Revoked"))
                        return refuse(m, rid, rid_len, "HostInUse",
                                      "host %s (product UUID %s) is claimed by a machine; "
                                      "release it before enrolling it with a new key",
                                      meta_name(host), uuid);
                if (streq_ptr(obj_get_str(host, "status.phase"), "Revoked"))
                        return refuse(m, rid, rid_len, "HostRevoked",
                                      "host %s is revoked; delete it ('anvilctl delete host "
                                      "%s') before enrolling it again",
                                      meta_name(host), meta_name(host));
                const char *old_key = obj_get_str(host, "status.agentKey");
                if (old_key)
                        (void)fanout_link_host(m->fanout, old_key, NULL);
                if ((r = obj_set_str(host, "status.agentKey", key_z85)) < 0 ||
                    (r = obj_set_str(host, "status.fingerprint", fp)) < 0 ||
                    (r = obj_set(host, "status.facts", obj_dup(facts))) < 0 ||
                    (r = obj_set_str(host, "status.enrolledAt", now_rfc3339(ts))) < 0)
                        return r;
                r = registry_update_status(m->reg, host);
                if (r < 0)
                        return r;
                log_notice("Host %s re-enrolled with a new key %s.", meta_name(host), fp);
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
                }
                host = obj_new_map();
                if (!host || obj_map_set_str(host, "kind", "Host") < 0 ||
                    obj_set_str(host, "metadata.name", name) < 0 ||
                    obj_set(host, "metadata.labels",
                            obj_dup(obj_map_get(rec, "labels")) ?: obj_new_map()) < 0 ||
                    obj_set_str(host, "spec.action", "Idle") < 0 ||
                    obj_set_str(host, "status.phase", "Available") < 0 ||
                    obj_set_str(host, "status.agentKey", key_z85) < 0 ||
                    obj_set_str(host, "status.fingerprint", fp) < 0 ||
                    obj_set_str(host, "status.enrolledAt", now_rfc3339(ts)) < 0 ||
                    obj_set_bool(host, "status.connected", true) < 0 ||
                    obj_set_int(host, "status.observedGeneration", 0) < 0 ||
                    obj_set(host, "status.facts", obj_dup(facts)) < 0)
                        return -ENOMEM;
                r = registry_create(m->reg, host);
                if (r < 0)
                        return r;
        }

        /* Spend one use. */
        if (uses > 0) {
                if ((r = obj_map_set_int(rec, "usesLeft", uses - 1)) < 0)
                        return r;
                _cleanup_free_ char *buf = NULL;
                size_t size;
                if ((r = mp_encode(rec, &buf, &size)) < 0)
                        return r;
                _cleanup_free_ char *tkey = strjoin("_token/", id);
                if (!tkey)
                        return -ENOMEM;
                StoreCmp cmp = {.key = tkey, .target = STORE_CMP_MOD_REV, .value = rec_rev};
                StoreOp op = {.type = STORE_OP_PUT, .key = tkey, .value = buf, .size = size};
                if ((r = store_txn(m->store, &cmp, 1, &op, 1, NULL)) <= 0)
                        return r < 0 ? r : -ESTALE;
        }

        r = fanout_link_host(m->fanout, key_z85, meta_name(host));
        if (r < 0)
                return r;
        LOG_FIELD_SCOPE(LOG_FIELD_HOST, meta_name(host));
        log_event(LOG_NOTICE, ANVIL_MESSAGE_ENROLLED,
                  "Host %s enrolled (product UUID %s, key %s, token %s).", meta_name(host), uuid,
                  fp, id);
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
        if ((r = obj_set_str(host, "status.phase", "Revoked")) < 0 ||
            (r = obj_set_bool(host, "status.connected", false)) < 0)
                return r;
        r = registry_update_status(m->reg, host);
        if (r < 0)
                return r;
        log_notice("Host %s revoked: its key %s is refused from now on.", name,
                   strna(obj_get_str(host, "status.fingerprint")));
        return 0;
}
