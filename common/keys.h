/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key material: CURVE key pairs (ZeroMQ's Z85 text form), sealed boxes to a host's key,
 * the store's data key for encryption at rest, and token hashing. All crypto is libsodium's
 * or libzmq's; secrets are wiped with sodium_memzero when freed.
 *
 * A CURVE key pair is also a Curve25519 crypto_box key pair, so the agent's transport key
 * is the key its bootstrap bundle is sealed to: one identity, nothing else to distribute.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#define KEY_Z85_LEN  40 /* characters, without NUL */
#define KEY_RAW_LEN  32
#define DATA_KEY_LEN 32
#define KEY_FILE_MAX 4096

typedef struct KeyPair {
        char public_z85[KEY_Z85_LEN + 1];
        char secret_z85[KEY_Z85_LEN + 1];
} KeyPair;

/*
 * Loads the key pair from path, or makes a new one and writes it (mode 0600, atomically) when
 * the file does not exist. Also writes path + ".pub" (0644) holding the public key, for
 * distribution. -EBADMSG if the file exists but is malformed (nothing is overwritten).
 */
int keypair_load_or_create(const char *path, KeyPair *ret, bool *ret_created);
/*
 * Secret key files must be private to their owner, as ssh insists for its private keys: a
 * file group or others may access was exposed, and using it silently would hide that.
 * keypair_load(), keypair_load_or_create() and data_key_load_or_create() return -EPERM for
 * such a file (nothing is read); key_file_check() says so too, with the file's mode.
 */
int key_file_check(const char *path, mode_t *ret_mode);
int keypair_load(const char *path, KeyPair *ret);
/* Parses the text of a key file: -EBADMSG unless both keys are valid and belong together. */
int keypair_parse(const char *text, size_t size, KeyPair *ret);
void keypair_wipe(KeyPair *kp);

bool key_z85_valid(const char *z85);
int key_z85_to_raw(const char *z85, uint8_t raw[KEY_RAW_LEN]);
/* "SHA256:" + first 16 bytes of SHA-256(raw key) in hex: short, stable, for display. */
int key_fingerprint(const char *z85, char *buf, size_t bufsz);

/* Seals data to the holder of public_z85 (crypto_box_seal); returns base64 text. */
int seal_to_key(const char *public_z85, const void *data, size_t size, char **ret_b64);
/* Opens a base64 sealed box with our key pair. -EBADMSG if it is not for us or was altered. */
int seal_open(const KeyPair *kp, const char *b64, void **ret, size_t *ret_size);

/*
 * The key pair an agent enrolls with: derived from the enrollment token (the token, hashed
 * with a fixed context, is the seed of a Curve25519 key pair). The coordinator keeps only the
 * public half, so its ZAP handler can tell during the CURVE handshake whether a connection
 * holds a valid token, before a single message is read, and the token itself never crosses
 * the wire. Knowing the public half does not reveal the token.
 */
int enroll_keypair_from_token(const char *token, KeyPair *ret);

/*
 * Proof of possession of a secret key: a box from kp's secret key to server_public_z85 over
 * a context string (the enrollment key of the connection), with a random nonce; base64.
 * key_proof_check() opens it with the server's secret key and client_public_z85 and compares
 * the context: -EPERM if the proof does not verify.
 */
int key_proof_make(const KeyPair *kp, const char *server_public_z85, const char *context,
                   char **ret_b64);
int key_proof_check(const KeyPair *server, const char *client_public_z85, const char *context,
                    const char *b64);
#define KEY_PROOF_MAX 256 /* characters of base64 */

/* The data key: 32 random bytes in a 0600 file, created when absent. */
int data_key_load_or_create(const char *path, uint8_t key[DATA_KEY_LEN]);
/* Authenticated encryption at rest: nonce || secretbox(plain). */
int data_encrypt(const uint8_t key[DATA_KEY_LEN], const void *plain, size_t size, void **ret,
                 size_t *ret_size);
int data_decrypt(const uint8_t key[DATA_KEY_LEN], const void *box, size_t size, void **ret,
                 size_t *ret_size);

/* Random URL-safe token text of n characters from alphabet (e.g. [a-z0-9]). */
int random_string(const char *alphabet, size_t n, char *buf);
/* Hex of a keyed-nothing BLAKE2b-256 of s: how tokens are stored. */
int token_hash(const char *token, char hex[65]);

int base64_encode(const void *data, size_t size, char **ret);
int base64_decode(const char *b64, void **ret, size_t *ret_size);
