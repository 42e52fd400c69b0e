/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/keys.h: CURVE key pair files, sealed boxes, encryption at rest, token
 * hashing and random strings. Files live in a fresh mkdtemp() directory per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <ftw.h>
#include <sodium.h>
#include <sys/stat.h>
#include <zmq.h>

#include "fileio.h"
#include "keys.h"
#include "macro.h"

typedef struct Dir {
        char path[64];
} Dir;

static int setup(void **state) {
        Dir *d = calloc(1, sizeof(Dir));
        if (!d)
                return -1;
        strcpy(d->path, "/tmp/anvil-test-keys-XXXXXX");
        if (!mkdtemp(d->path)) {
                free(d);
                return -1;
        }
        *state = d;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int teardown(void **state) {
        Dir *d = *state;
        nftw(d->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(d);
        return 0;
}

static char *in_dir(void **state, const char *name) {
        Dir *d = *state;
        char *p = asprintf_safe("%s/%s", d->path, name);
        assert_non_null(p);
        return p;
}

static char *slurp(const char *path) {
        char *text = NULL;
        assert_int_equal(read_file_bounded(path, 1 << 20, &text, NULL), 0);
        return text;
}

static void write_text(const char *path, const char *text) {
        assert_int_equal(write_file_atomic(path, text, strlen(text), 0600), 0);
}

static mode_t mode_of(const char *path) {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        return st.st_mode & 07777;
}

static void test_keypair_create_and_reload(void **state) {
        _cleanup_free_ char *path = in_dir(state, "state/sub/agent.key");
        _cleanup_free_ char *pub_path = in_dir(state, "state/sub/agent.key.pub");
        KeyPair kp = {0}, again = {0};
        bool created = false;
        assert_int_equal(keypair_load_or_create(path, &kp, &created), 0);
        assert_true(created);
        assert_int_equal(strlen(kp.public_z85), KEY_Z85_LEN);
        assert_int_equal(strlen(kp.secret_z85), KEY_Z85_LEN);
        assert_true(key_z85_valid(kp.public_z85));
        assert_true(key_z85_valid(kp.secret_z85));
        /* The public key belongs to the secret key. */
        char derived[KEY_Z85_LEN + 1];
        assert_int_equal(zmq_curve_public(derived, kp.secret_z85), 0);
        assert_string_equal(derived, kp.public_z85);
        /* 0600 key file (its parent directories were created), 0644 .pub with the key. */
        assert_int_equal(mode_of(path), 0600);
        assert_int_equal(mode_of(pub_path), 0644);
        _cleanup_free_ char *pub = slurp(pub_path);
        char want[KEY_Z85_LEN + 2];
        snprintf(want, sizeof(want), "%s\n", kp.public_z85);
        assert_string_equal(pub, want);
        _cleanup_free_ char *text = slurp(path);
        assert_non_null(strstr(text, kp.secret_z85));
        /* Its comment names the real .pub path. */
        _cleanup_free_ char *comment = asprintf_safe("the public key is also in %s\n", pub_path);
        assert_non_null(strstr(text, comment));

        /* The second start loads the same key and writes nothing. */
        struct stat st0, st1;
        assert_int_equal(stat(path, &st0), 0);
        created = true;
        assert_int_equal(keypair_load_or_create(path, &again, &created), 0);
        assert_false(created);
        assert_string_equal(again.public_z85, kp.public_z85);
        assert_string_equal(again.secret_z85, kp.secret_z85);
        assert_int_equal(stat(path, &st1), 0);
        assert_int_equal(st0.st_ino, st1.st_ino);
        KeyPair loaded = {0};
        assert_int_equal(keypair_load(path, &loaded), 0);
        assert_string_equal(loaded.secret_z85, kp.secret_z85);
        /* NULL ret_created is allowed. */
        assert_int_equal(keypair_load_or_create(path, &loaded, NULL), 0);

        /* Two fresh files give two different keys. */
        _cleanup_free_ char *other = in_dir(state, "other.key");
        KeyPair kp2 = {0};
        assert_int_equal(keypair_load_or_create(other, &kp2, NULL), 0);
        assert_string_not_equal(kp2.secret_z85, kp.secret_z85);

        keypair_wipe(&kp);
        assert_int_equal(kp.secret_z85[0], 0);
        assert_int_equal(kp.public_z85[0], 0);
        keypair_wipe(&again);
        keypair_wipe(&loaded);
        keypair_wipe(&kp2);
}

static void test_keypair_malformed_not_overwritten(void **state) {
        _cleanup_free_ char *path = in_dir(state, "agent.key");
        char a_pub[41], a_sec[41], b_pub[41], b_sec[41];
        assert_int_equal(zmq_curve_keypair(a_pub, a_sec), 0);
        assert_int_equal(zmq_curve_keypair(b_pub, b_sec), 0);
        _cleanup_free_ char *mismatched =
                asprintf_safe("public-key: \"%s\"\nsecret-key: \"%s\"\n", b_pub, a_sec);
        _cleanup_free_ char *short_key =
                asprintf_safe("public-key: \"%.39s\"\nsecret-key: \"%s\"\n", a_pub, a_sec);
        _cleanup_free_ char *no_public = asprintf_safe("secret-key: \"%s\"\n", a_sec);
        const char *bad[] = {
                "garbage: [\n", /* not YAML */
                "just text\n",  /* not a map */
                "",             /* empty */
                "public-key: 1\nsecret-key: 2\n",
                "public-key: \"\"\nsecret-key: \"\"\n",
                mismatched, /* public key of another pair */
                short_key,
                no_public,
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                write_text(path, bad[i]);
                KeyPair kp;
                memset(&kp, 'X', sizeof(kp));
                bool created = true;
                int r = keypair_load_or_create(path, &kp, &created);
                if (r != -EBADMSG)
                        fail_msg("malformed key file %zu: r=%d", i, r);
                /* Nothing overwritten, outputs untouched. */
                _cleanup_free_ char *after = slurp(path);
                assert_string_equal(after, bad[i]);
                assert_true(created);
                assert_int_equal(kp.public_z85[0], 'X');
        }
        /* A good file written by hand loads. */
        /* (Z85 has neither quote character nor backslash, so both quotings are safe.) */
        _cleanup_free_ char *good =
                asprintf_safe("# by hand\npublic-key: \"%s\"\nsecret-key: '%s'\n", a_pub, a_sec);
        write_text(path, good);
        KeyPair kp = {0};
        assert_int_equal(keypair_load_or_create(path, &kp, NULL), 0);
        assert_string_equal(kp.public_z85, a_pub);
        keypair_wipe(&kp);
        /* Missing file: keypair_load does not create. */
        _cleanup_free_ char *missing = in_dir(state, "missing.key");
        assert_int_equal(keypair_load(missing, &kp), -ENOENT);
        assert_int_equal(access(missing, F_OK), -1);
}

static void test_z85_and_fingerprint(void **state) {
        (void)state;
        char pub[41], sec[41];
        assert_int_equal(zmq_curve_keypair(pub, sec), 0);
        assert_true(key_z85_valid(pub));
        assert_false(key_z85_valid(NULL));
        assert_false(key_z85_valid(""));
        char shortk[41];
        memcpy(shortk, pub, 39);
        shortk[39] = 0;
        assert_false(key_z85_valid(shortk));
        char bad[41];
        memcpy(bad, pub, 41);
        bad[5] = '"'; /* not in the Z85 alphabet */
        assert_false(key_z85_valid(bad));
        uint8_t raw[KEY_RAW_LEN];
        assert_int_equal(key_z85_to_raw(pub, raw), 0);
        char back[41];
        assert_non_null(zmq_z85_encode(back, raw, sizeof(raw)));
        assert_string_equal(back, pub);

        char fp1[80], fp2[80], fp3[80];
        assert_int_equal(key_fingerprint(pub, fp1, sizeof(fp1)), 0);
        assert_int_equal(key_fingerprint(pub, fp2, sizeof(fp2)), 0);
        assert_string_equal(fp1, fp2);
        assert_true(startswith(fp1, "SHA256:"));
        assert_int_equal(strlen(fp1), 7 + 32);
        for (const char *c = fp1 + 7; *c; c++)
                assert_non_null(strchr("0123456789abcdef", *c));
        /* It is SHA-256 of the raw key, first 16 bytes. */
        uint8_t h[crypto_hash_sha256_BYTES];
        char hex[33];
        crypto_hash_sha256(h, raw, sizeof(raw));
        sodium_bin2hex(hex, sizeof(hex), h, 16);
        assert_string_equal(fp1 + 7, hex);
        assert_int_equal(key_fingerprint(sec, fp3, sizeof(fp3)), 0);
        assert_string_not_equal(fp1, fp3);
        assert_int_equal(key_fingerprint("nope", fp3, sizeof(fp3)), -EINVAL);
}

static void test_seal_round_trip(void **state) {
        (void)state;
        KeyPair kp, other;
        assert_int_equal(zmq_curve_keypair(kp.public_z85, kp.secret_z85), 0);
        assert_int_equal(zmq_curve_keypair(other.public_z85, other.secret_z85), 0);
        /* Binary data with NUL bytes, and an empty message. */
        uint8_t data[1000];
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 7);
        _cleanup_free_ char *box = NULL;
        assert_int_equal(seal_to_key(kp.public_z85, data, sizeof(data), &box), 0);
        /* Base64 text. */
        for (const char *c = box; *c; c++)
                assert_true(isalnum((unsigned char)*c) || *c == '+' || *c == '/' || *c == '=');
        _cleanup_free_ void *plain = NULL;
        size_t n = 0;
        assert_int_equal(seal_open(&kp, box, &plain, &n), 0);
        assert_int_equal(n, sizeof(data));
        assert_memory_equal(plain, data, sizeof(data));
        assert_int_equal(((uint8_t *)plain)[n], 0); /* NUL-terminated for text payloads */

        /* Sealing twice gives different boxes (ephemeral keys). */
        _cleanup_free_ char *box2 = NULL;
        assert_int_equal(seal_to_key(kp.public_z85, data, sizeof(data), &box2), 0);
        assert_string_not_equal(box, box2);

        _cleanup_free_ char *empty = NULL;
        assert_int_equal(seal_to_key(kp.public_z85, "", 0, &empty), 0);
        _cleanup_free_ void *eplain = NULL;
        assert_int_equal(seal_open(&kp, empty, &eplain, &n), 0);
        assert_int_equal(n, 0);

        /* Not for us. */
        void *out = NULL;
        assert_int_equal(seal_open(&other, box, &out, &n), -EBADMSG);
        assert_null(out);
        /* Bad recipient key. */
        char *b = NULL;
        assert_int_equal(seal_to_key("short", data, 10, &b), -EINVAL);
        assert_null(b);
        keypair_wipe(&kp);
        keypair_wipe(&other);
}

static void test_seal_tampered(void **state) {
        (void)state;
        KeyPair kp;
        assert_int_equal(zmq_curve_keypair(kp.public_z85, kp.secret_z85), 0);
        const char *msg = "kubeadm join --token abcdef.0123456789abcdef";
        _cleanup_free_ char *box = NULL;
        assert_int_equal(seal_to_key(kp.public_z85, msg, strlen(msg), &box), 0);
        size_t len = strlen(box);
        /* Flip one character (to another base64 character) at several places: the ephemeral
         * key, the MAC and the ciphertext. */
        size_t positions[] = {0, 10, 40, 50, len / 2, len - 5};
        for (size_t i = 0; i < ELEMENTSOF(positions); i++) {
                _cleanup_free_ char *t = strdup(box);
                size_t at = positions[i];
                t[at] = t[at] == 'A' ? 'B' : 'A';
                void *out = NULL;
                size_t n;
                int r = seal_open(&kp, t, &out, &n);
                if (r != -EBADMSG) {
                        free(out);
                        fail_msg("tampered box (position %zu) opened: r=%d", at, r);
                }
        }
        /* Truncated, empty, not base64. */
        void *out = NULL;
        size_t n;
        _cleanup_free_ char *cut = strndup(box, len - 8);
        assert_int_equal(seal_open(&kp, cut, &out, &n), -EBADMSG);
        assert_int_equal(seal_open(&kp, "", &out, &n), -EBADMSG);
        assert_int_equal(seal_open(&kp, "AAAA", &out, &n), -EBADMSG); /* shorter than SEALBYTES */
        assert_int_equal(seal_open(&kp, "!!!not base64!!!", &out, &n), -EBADMSG);
        assert_null(out);
        /* Base64 with line breaks (as an operator might paste it) still opens. */
        _cleanup_free_ char *wrapped = malloc(len + len / 20 + 2);
        size_t w = 0;
        for (size_t i = 0; i < len; i++) {
                wrapped[w++] = box[i];
                if (i % 20 == 19)
                        wrapped[w++] = '\n';
        }
        wrapped[w] = 0;
        assert_int_equal(seal_open(&kp, wrapped, &out, &n), 0);
        assert_int_equal(n, strlen(msg));
        assert_memory_equal(out, msg, n);
        free(out);
        keypair_wipe(&kp);
}

static void test_data_key(void **state) {
        _cleanup_free_ char *path = in_dir(state, "coordinator/data.key");
        uint8_t k1[DATA_KEY_LEN], k2[DATA_KEY_LEN];
        assert_int_equal(data_key_load_or_create(path, k1), 1);
        assert_int_equal(mode_of(path), 0600);
        assert_int_equal(data_key_load_or_create(path, k2), 0);
        assert_memory_equal(k1, k2, DATA_KEY_LEN);
        /* Hex text on disk. */
        _cleanup_free_ char *text = slurp(path);
        assert_int_equal(strlen(text), DATA_KEY_LEN * 2 + 1);
        /* Malformed: refused, not replaced. */
        write_text(path, "zz\n");
        assert_int_equal(data_key_load_or_create(path, k2), -EBADMSG);
        _cleanup_free_ char *after = slurp(path);
        assert_string_equal(after, "zz\n");
        write_text(path, "00112233\n"); /* too short */
        assert_int_equal(data_key_load_or_create(path, k2), -EBADMSG);
}

/* Secret key files group or others may read are refused (as ssh does), not used silently
 * and not replaced. */
static void test_key_file_mode(void **state) {
        _cleanup_free_ char *kpath = in_dir(state, "agent.key");
        _cleanup_free_ char *dpath = in_dir(state, "data.key");
        KeyPair kp;
        uint8_t k[DATA_KEY_LEN];
        mode_t mode = 0;
        assert_int_equal(keypair_load_or_create(kpath, &kp, NULL), 0);
        assert_int_equal(data_key_load_or_create(dpath, k), 1);
        assert_int_equal(key_file_check(kpath, &mode), 0);
        assert_int_equal(mode, 0600);
        static const mode_t bad[] = {0644, 0640, 0604, 0660, 0606};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(chmod(kpath, bad[i]), 0);
                assert_int_equal(chmod(dpath, bad[i]), 0);
                _cleanup_free_ char *before = slurp(kpath);
                assert_int_equal(keypair_load(kpath, &kp), -EPERM);
                assert_int_equal(keypair_load_or_create(kpath, &kp, NULL), -EPERM);
                assert_int_equal(data_key_load_or_create(dpath, k), -EPERM);
                assert_int_equal(key_file_check(kpath, &mode), -EPERM);
                assert_int_equal(mode, bad[i]);
                _cleanup_free_ char *after = slurp(kpath);
                assert_string_equal(before, after);
        }
        /* Owner-only modes are fine. */
        assert_int_equal(chmod(kpath, 0400), 0);
        assert_int_equal(chmod(dpath, 0400), 0);
        assert_int_equal(keypair_load(kpath, &kp), 0);
        assert_int_equal(data_key_load_or_create(dpath, k), 0);
        keypair_wipe(&kp);
}

static void test_data_encrypt_round_trip_and_tamper(void **state) {
        (void)state;
        uint8_t key[DATA_KEY_LEN], wrong[DATA_KEY_LEN];
        randombytes_buf(key, sizeof(key));
        randombytes_buf(wrong, sizeof(wrong));
        const char *secret = "stringData: {password: hunter2}";
        size_t len = strlen(secret);
        _cleanup_free_ void *box = NULL, *box2 = NULL;
        size_t n = 0, n2 = 0;
        assert_int_equal(data_encrypt(key, secret, len, &box, &n), 0);
        assert_int_equal(n, crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len);
        assert_null(memmem(box, n, "hunter2", 7));
        /* A fresh nonce every time. */
        assert_int_equal(data_encrypt(key, secret, len, &box2, &n2), 0);
        assert_int_equal(n, n2);
        assert_memory_not_equal(box, box2, crypto_secretbox_NONCEBYTES);

        _cleanup_free_ void *plain = NULL;
        size_t pn = 0;
        assert_int_equal(data_decrypt(key, box, n, &plain, &pn), 0);
        assert_int_equal(pn, len);
        assert_memory_equal(plain, secret, len);

        /* Every single-bit change anywhere is detected: nonce, MAC, ciphertext. */
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ uint8_t *t = malloc(n);
                memcpy(t, box, n);
                t[i] ^= (uint8_t)(1u << (i % 8));
                void *out = NULL;
                size_t on;
                if (data_decrypt(key, t, n, &out, &on) != -EBADMSG) {
                        free(out);
                        fail_msg("byte %zu changed and still decrypted", i);
                }
        }
        void *out = NULL;
        size_t on;
        assert_int_equal(data_decrypt(wrong, box, n, &out, &on), -EBADMSG);
        assert_int_equal(data_decrypt(key, box, n - 1, &out, &on), -EBADMSG);
        assert_int_equal(data_decrypt(key, box, crypto_secretbox_NONCEBYTES, &out, &on), -EBADMSG);
        assert_int_equal(data_decrypt(key, box, 0, &out, &on), -EBADMSG);
        assert_null(out);

        /* Empty plaintext. */
        _cleanup_free_ void *ebox = NULL, *eplain = NULL;
        assert_int_equal(data_encrypt(key, "", 0, &ebox, &n), 0);
        assert_int_equal(data_decrypt(key, ebox, n, &eplain, &pn), 0);
        assert_int_equal(pn, 0);
}

static void test_token_hash(void **state) {
        (void)state;
        char h1[65], h2[65], h3[65];
        /* BLAKE2b-256 test vectors (unkeyed). */
        assert_int_equal(token_hash("", h1), 0);
        assert_string_equal(h1, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
        assert_int_equal(token_hash("abc", h1), 0);
        assert_string_equal(h1, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
        /* Stable, and distinct for distinct tokens. */
        assert_int_equal(token_hash("abcdef.0123456789abcdef", h2), 0);
        assert_int_equal(token_hash("abcdef.0123456789abcdef", h3), 0);
        assert_string_equal(h2, h3);
        assert_int_equal(token_hash("abcdef.0123456789abcdeg", h3), 0);
        assert_string_not_equal(h2, h3);
        assert_int_equal(strlen(h2), 64);
}

static void test_random_string(void **state) {
        (void)state;
        const char *alphabet = "bcdfghjklmnpqrstvwxz2456789";
        char a[65], b[65];
        assert_int_equal(random_string(alphabet, 64, a), 0);
        assert_int_equal(random_string(alphabet, 64, b), 0);
        assert_int_equal(strlen(a), 64);
        assert_int_equal(strspn(a, alphabet), 64);
        assert_string_not_equal(a, b);
        /* Every character of a two-letter alphabet shows up in 1000 draws. */
        char big[1001];
        assert_int_equal(random_string("xy", 1000, big), 0);
        assert_int_equal(strspn(big, "xy"), 1000);
        assert_non_null(strchr(big, 'x'));
        assert_non_null(strchr(big, 'y'));
        /* A one-letter alphabet, zero length. */
        char one[8];
        assert_int_equal(random_string("q", 7, one), 0);
        assert_string_equal(one, "qqqqqqq");
        char none[1] = {'z'};
        assert_int_equal(random_string("ab", 0, none), 0);
        assert_string_equal(none, "");
        assert_int_equal(random_string("", 4, one), -EINVAL);
}

static void test_base64(void **state) {
        (void)state;
        const uint8_t data[] = {0x00, 0xff, 0x10, 'h', 'i'};
        _cleanup_free_ char *b64 = NULL;
        assert_int_equal(base64_encode(data, sizeof(data), &b64), 0);
        assert_string_equal(b64, "AP8QaGk=");
        _cleanup_free_ void *back = NULL;
        size_t n;
        assert_int_equal(base64_decode(b64, &back, &n), 0);
        assert_int_equal(n, sizeof(data));
        assert_memory_equal(back, data, n);
        void *out = NULL;
        assert_int_equal(base64_decode("AP8Q*Gk=", &out, &n), -EBADMSG);
        assert_null(out);
        _cleanup_free_ char *e = NULL;
        assert_int_equal(base64_encode("", 0, &e), 0);
        assert_string_equal(e, "");
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_keypair_create_and_reload, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keypair_malformed_not_overwritten, setup,
                                                teardown),
                cmocka_unit_test(test_z85_and_fingerprint),
                cmocka_unit_test(test_seal_round_trip),
                cmocka_unit_test(test_seal_tampered),
                cmocka_unit_test_setup_teardown(test_data_key, setup, teardown),
                cmocka_unit_test_setup_teardown(test_key_file_mode, setup, teardown),
                cmocka_unit_test(test_data_encrypt_round_trip_and_tamper),
                cmocka_unit_test(test_token_hash),
                cmocka_unit_test(test_random_string),
                cmocka_unit_test(test_base64),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
