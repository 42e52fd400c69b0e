/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who may talk to the coordinator, and how a new host becomes one of them.
 *
 * ZAP (RFC 27) is served on inproc://zeromq.zap.01 from the main loop: a CURVE client whose
 * key belongs to an enrolled host is accepted; a revoked key is refused; an unknown key is
 * accepted only to enroll (the fan-out drops anything but ENROLL from it). The ZAP User-Id is
 * the client's public key in Z85, so every message carries its authenticated identity.
 *
 * Enrollment tokens are "<id>.<secret>" ([a-z0-9]{6}.[a-z0-9]{32}). An agent enrolls over a
 * connection whose CURVE key pair is derived from its token (enroll_keypair_from_token()),
 * so the store keeps only that key's public half under _token/<id>, with the expiry,
 * remaining uses, labels (which become the Host's labels) and description. ZAP lets in
 * enrolled host keys and token keys, nothing else; a token key may only send ENROLL, which
 * names the agent's own key and proves it holds its secret half. A token is shown once, at
 * creation, and never crosses the wire again.
 */
#pragma once

#include "manager.h"

int zap_on_request(void *zsock, void *userdata);

typedef struct TokenSpec {
        uint64_t ttl_usec; /* 0 = never expires */
        int64_t uses;      /* 0 = unlimited */
        const Obj *labels; /* string map, may be NULL */
        const char *description;
} TokenSpec;

/* Creates a token; *ret is the full token text (caller frees, wipes). */
int token_create(Manager *m, const TokenSpec *spec, char **ret);
/* OBJ_LIST of {id, description, expires, usesLeft, labels}; never the secret. */
int token_list(Manager *m, Obj **ret);
int token_delete(Manager *m, const char *id);

/* Finds the token whose enrollment key is enroll_key: -ENOENT if none. ret_id (7 bytes) gets
 * its id. Any ret_ may be NULL. */
int token_find_by_key(Manager *m, const char *enroll_key, char *ret_id, Obj **ret_rec,
                      int64_t *ret_rev);

/* Handles ENROLL received over a connection authenticated with enroll_key (a token's key)
 * from address. Creates the Host; replies ENROLLED or REFUSED through the outbox. */
int enroll_handle(Manager *m, const char *enroll_key, const char *address, const void *rid,
                  size_t rid_len, const Obj *body);

/* Revokes a host: its key is refused from now on and its connections are closed. The key is
 * recorded under _revoked/<fingerprint hex> ({key, fingerprint, host, productUUID,
 * revokedAt}), kept when the Host is deleted: the key stays refused (ZAP and ENROLL), and
 * the machine enrolls again only with a new key and a token created after revokedAt. */
int host_revoke(Manager *m, const char *host, char **ret_error);

/* The record of a revoked key: -ENOENT if the key was never revoked. ret may be NULL. */
int revoked_key_get(Manager *m, const char *key_z85, Obj **ret);
/* OBJ_LIST of every revoked key's record. */
int revoked_key_list(Manager *m, Obj **ret);
