/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <zmq.h>

#include "fileio.h"
#include "keys.h"
#include "macro.h"
#include "yamlio.h"

void keypair_wipe(KeyPair *kp) {
        sodium_memzero(kp, sizeof(*kp));
}

bool key_z85_valid(const char *z85) {
        uint8_t raw[KEY_RAW_LEN];
        return key_z85_to_raw(z85, raw) == 0;
}

int key_z85_to_raw(const char *z85, uint8_t raw[KEY_RAW_LEN]) {
        if (!z85 || strlen(z85) != KEY_Z85_LEN)
                return -EINVAL;
        if (!zmq_z85_decode(raw, z85))
                return -EINVAL;
        return 0;
}

int key_fingerprint(const char *z85, char *buf, size_t bufsz) {
        uint8_t raw[KEY_RAW_LEN], h[crypto_hash_sha256_BYTES];
        char hex[33];
        int r = key_z85_to_raw(z85, raw);
        if (r < 0)
                return r;
        crypto_hash_sha256(h, raw, sizeof(raw));
        sodium_bin2hex(hex, sizeof(hex), h, 16);
        snprintf(buf, bufsz, "SHA256:%s", hex);
        return 0;
}

int keypair_parse(const char *text, size_t size, KeyPair *ret) {
        _cleanup_(obj_freep) Obj *o = NULL;
        YamlError err;
        if (size > KEY_FILE_MAX)
                return -EBADMSG;
        int r = yaml_parse_one(text, size, &o, &err);
        if (r < 0)
                return -EBADMSG;
        const char *pub = obj_get_str(o, "public-key"), *sec = obj_get_str(o, "secret-key");
        if (!key_z85_valid(pub) || !key_z85_valid(sec))
                return -EBADMSG;
        KeyPair kp;
        snprintf(kp.public_z85, sizeof(kp.public_z85), "%s", pub);
        snprintf(kp.secret_z85, sizeof(kp.secret_z85), "%s", sec);
        /* The public key must belong to the secret key. */
        char derived[KEY_Z85_LEN + 1];
        if (zmq_curve_public(derived, kp.secret_z85) < 0 || !streq(derived, kp.public_z85)) {
                keypair_wipe(&kp);
                return -EBADMSG;
        }
        *ret = kp;
        keypair_wipe(&kp);
        /* wipe the parsed copy of the secret */
        Obj *s = obj_map_get(o, "secret-key");
        if (obj_is(s, OBJ_STR))
                sodium_memzero(s->str.s, s->str.len);
        return 0;
}

int key_file_check(const char *path, mode_t *ret_mode) {
        struct stat st;
        if (stat(path, &st) < 0)
                return negative_errno();
        if (ret_mode)
                *ret_mode = st.st_mode & 07777;
        return (st.st_mode & 077) ? -EPERM : 0;
}

int keypair_load(const char *path, KeyPair *ret) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r = key_file_check(path, NULL);
        if (r < 0)
                return r;
        r = read_file_bounded(path, KEY_FILE_MAX, &text, &size);
        if (r < 0)
                return r;
        r = keypair_parse(text, size, ret);
        sodium_memzero(text, size);
        return r;
}

int keypair_load_or_create(const char *path, KeyPair *ret, bool *ret_created) {
        int r = keypair_load(path, ret);
        if (r != -ENOENT) {
                if (r >= 0 && ret_created)
                        *ret_created = false;
                return r;
        }
        KeyPair kp;
        if (zmq_curve_keypair(kp.public_z85, kp.secret_z85) < 0)
                return negative_errno();
        r = mkdir_parents(path, 0700);
        if (r < 0)
                return r;
        _cleanup_free_ char *pub_path = strjoin(path, ".pub");
        if (!pub_path) {
                keypair_wipe(&kp);
                return -ENOMEM;
        }
        /* The comment names the .pub file. A path with control characters would break the
         * YAML line, and the loader reads at most 4 KiB: such a path is only described. */
        bool plain = strlen(pub_path) <= 1024;
        for (const char *c = pub_path; plain && *c; c++)
                plain = (unsigned char)*c >= 0x20 && *c != 0x7f;
        char text[1280];
        int n = snprintf(text, sizeof(text),
                         "# Anvil CURVE key pair. Keep secret; the public key is also in %s\n"
                         "public-key: \"%s\"\nsecret-key: \"%s\"\n",
                         plain ? pub_path : "the .pub file beside this one", kp.public_z85,
                         kp.secret_z85);
        r = write_file_atomic(path, text, (size_t)n, 0600);
        sodium_memzero(text, sizeof(text));
        if (r < 0) {
                keypair_wipe(&kp);
                return r;
        }
        n = snprintf(text, sizeof(text), "%s\n", kp.public_z85);
        r = write_file_atomic(pub_path, text, (size_t)n, 0644);
        if (r < 0) {
                keypair_wipe(&kp);
                return r;
        }
        *ret = kp;
        keypair_wipe(&kp);
        if (ret_created)
                *ret_created = true;
        return 0;
}

int base64_encode(const void *data, size_t size, char **ret) {
        size_t n = sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL);
        char *b = malloc(n);
        if (!b)
                return -ENOMEM;
        sodium_bin2base64(b, n, data, size, sodium_base64_VARIANT_ORIGINAL);
        *ret = b;
        return 0;
}

int base64_decode(const char *b64, void **ret, size_t *ret_size) {
        size_t len = strlen(b64);
        size_t max = len / 4 * 3 + 3;
        uint8_t *b = malloc(max + 1);
        size_t out = 0;
        if (!b)
                return -ENOMEM;
        if (sodium_base642bin(b, max, b64, len, "\n\r ", &out, NULL,
                              sodium_base64_VARIANT_ORIGINAL) < 0) {
                free(b);
                return -EBADMSG;
        }
        b[out] = 0; /* convenient for text payloads; not counted */
        *ret = b;
        *ret_size = out;
        return 0;
}

int seal_to_key(const char *public_z85, const void *data, size_t size, char **ret_b64) {
        uint8_t pk[KEY_RAW_LEN];
        int r = key_z85_to_raw(public_z85, pk);
        if (r < 0)
                return r;
        size_t clen = size + crypto_box_SEALBYTES;
        _cleanup_free_ uint8_t *c = malloc(clen);
        if (!c)
                return -ENOMEM;
        if (crypto_box_seal(c, data, size, pk) != 0)
                return -EIO;
        return base64_encode(c, clen, ret_b64);
}

int seal_open(const KeyPair *kp, const char *b64, void **ret, size_t *ret_size) {
        uint8_t pk[KEY_RAW_LEN], sk[KEY_RAW_LEN];
        _cleanup_free_ void *c = NULL;
        size_t clen;
        int r = base64_decode(b64, &c, &clen);
        if (r < 0)
                return r;
        if (clen < crypto_box_SEALBYTES)
                return -EBADMSG;
        if (key_z85_to_raw(kp->public_z85, pk) < 0 || key_z85_to_raw(kp->secret_z85, sk) < 0)
                return -EINVAL;
        size_t mlen = clen - crypto_box_SEALBYTES;
        uint8_t *m = malloc(mlen + 1);
        if (!m) {
                sodium_memzero(sk, sizeof(sk));
                return -ENOMEM;
        }
        r = crypto_box_seal_open(m, c, clen, pk, sk);
        sodium_memzero(sk, sizeof(sk));
        if (r != 0) {
                free(m);
                return -EBADMSG;
        }
        m[mlen] = 0;
        *ret = m;
        *ret_size = mlen;
        return 0;
}

int data_key_load_or_create(const char *path, uint8_t key[DATA_KEY_LEN]) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r = key_file_check(path, NULL);
        if (r == -EPERM)
                return r;
        r = read_file_bounded(path, 256, &text, &size);
        if (r == -ENOENT) {
                uint8_t k[DATA_KEY_LEN];
                char hex[DATA_KEY_LEN * 2 + 2];
                randombytes_buf(k, sizeof(k));
                sodium_bin2hex(hex, sizeof(hex), k, sizeof(k));
                strcat(hex, "\n");
                r = mkdir_parents(path, 0700);
                if (r >= 0)
                        r = write_file_atomic(path, hex, strlen(hex), 0600);
                sodium_memzero(hex, sizeof(hex));
                if (r < 0) {
                        sodium_memzero(k, sizeof(k));
                        return r;
                }
                memcpy(key, k, DATA_KEY_LEN);
                sodium_memzero(k, sizeof(k));
                return 1;
        }
        if (r < 0)
                return r;
        size_t out = 0;
        if (sodium_hex2bin(key, DATA_KEY_LEN, text, size, "\n\r ", &out, NULL) < 0 ||
            out != DATA_KEY_LEN)
                r = -EBADMSG;
        sodium_memzero(text, size);
        return r < 0 ? r : 0;
}

int data_encrypt(const uint8_t key[DATA_KEY_LEN], const void *plain, size_t size, void **ret,
                 size_t *ret_size) {
        size_t n = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + size;
        uint8_t *b = malloc(n);
        if (!b)
                return -ENOMEM;
        randombytes_buf(b, crypto_secretbox_NONCEBYTES);
        crypto_secretbox_easy(b + crypto_secretbox_NONCEBYTES, plain, size, b, key);
        *ret = b;
        *ret_size = n;
        return 0;
}

int data_decrypt(const uint8_t key[DATA_KEY_LEN], const void *box, size_t size, void **ret,
                 size_t *ret_size) {
        const uint8_t *b = box;
        if (size < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
                return -EBADMSG;
        size_t n = size - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
        uint8_t *m = malloc(n + 1);
        if (!m)
                return -ENOMEM;
        if (crypto_secretbox_open_easy(m, b + crypto_secretbox_NONCEBYTES,
                                       size - crypto_secretbox_NONCEBYTES, b, key) != 0) {
                free(m);
                return -EBADMSG;
        }
        *ret = m;
        *ret_size = n;
        return 0;
}

int random_string(const char *alphabet, size_t n, char *buf) {
        size_t k = strlen(alphabet);
        if (k == 0 || k > 256)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                buf[i] = alphabet[randombytes_uniform((uint32_t)k)];
        buf[n] = 0;
        return 0;
}

int token_hash(const char *token, char hex[65]) {
        uint8_t h[32];
        crypto_generichash(h, sizeof(h), (const uint8_t *)token, strlen(token), NULL, 0);
        sodium_bin2hex(hex, 65, h, sizeof(h));
        return 0;
}

#define ENROLL_KEY_CONTEXT "anvil enrollment key v1"
#define PROOF_CONTEXT      "anvil key proof v1:"

int enroll_keypair_from_token(const char *token, KeyPair *ret) {
        uint8_t seed[crypto_box_SEEDBYTES], pk[crypto_box_PUBLICKEYBYTES],
                sk[crypto_box_SECRETKEYBYTES];
        if (isempty(token))
                return -EINVAL;
        crypto_generichash(seed, sizeof(seed), (const uint8_t *)token, strlen(token),
                           (const uint8_t *)ENROLL_KEY_CONTEXT, strlen(ENROLL_KEY_CONTEXT));
        int r = crypto_box_seed_keypair(pk, sk, seed) == 0 ? 0 : -EIO;
        sodium_memzero(seed, sizeof(seed));
        if (r >= 0 && (!zmq_z85_encode(ret->public_z85, pk, sizeof(pk)) ||
                       !zmq_z85_encode(ret->secret_z85, sk, sizeof(sk))))
                r = -EIO;
        sodium_memzero(sk, sizeof(sk));
        return r;
}

int key_proof_make(const KeyPair *kp, const char *server_public_z85, const char *context,
                   char **ret_b64) {
        uint8_t spk[KEY_RAW_LEN], sk[KEY_RAW_LEN];
        _cleanup_free_ char *msg = strjoin(PROOF_CONTEXT, context);
        if (!msg)
                return -ENOMEM;
        size_t mlen = strlen(msg);
        size_t n = crypto_box_NONCEBYTES + crypto_box_MACBYTES + mlen;
        _cleanup_free_ uint8_t *b = malloc(n);
        if (!b)
                return -ENOMEM;
        if (key_z85_to_raw(server_public_z85, spk) < 0 || key_z85_to_raw(kp->secret_z85, sk) < 0)
                return -EINVAL;
        randombytes_buf(b, crypto_box_NONCEBYTES);
        int r = crypto_box_easy(b + crypto_box_NONCEBYTES, (const uint8_t *)msg, mlen, b, spk, sk);
        sodium_memzero(sk, sizeof(sk));
        if (r != 0)
                return -EIO;
        return base64_encode(b, n, ret_b64);
}

int key_proof_check(const KeyPair *server, const char *client_public_z85, const char *context,
                    const char *b64) {
        uint8_t cpk[KEY_RAW_LEN], sk[KEY_RAW_LEN];
        _cleanup_free_ void *box = NULL;
        size_t size;
        if (!b64 || strlen(b64) > KEY_PROOF_MAX)
                return -EPERM;
        if (key_z85_to_raw(client_public_z85, cpk) < 0)
                return -EPERM;
        if (base64_decode(b64, &box, &size) < 0 ||
            size < crypto_box_NONCEBYTES + crypto_box_MACBYTES)
                return -EPERM;
        _cleanup_free_ char *want = strjoin(PROOF_CONTEXT, context);
        if (!want)
                return -ENOMEM;
        size_t mlen = size - crypto_box_NONCEBYTES - crypto_box_MACBYTES;
        if (mlen != strlen(want))
                return -EPERM;
        _cleanup_free_ uint8_t *m = malloc(mlen + 1);
        if (!m)
                return -ENOMEM;
        if (key_z85_to_raw(server->secret_z85, sk) < 0)
                return -EINVAL;
        const uint8_t *b = box;
        int r = crypto_box_open_easy(m, b + crypto_box_NONCEBYTES, size - crypto_box_NONCEBYTES, b,
                                     cpk, sk);
        sodium_memzero(sk, sizeof(sk));
        if (r != 0 || memcmp(m, want, mlen) != 0)
                return -EPERM;
        return 0;
}
