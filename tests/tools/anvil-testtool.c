/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anvil-testtool: the key operations a scripted test peer (tests/e2e, Python with pyzmq)
 * needs and cannot do with pyzmq alone. Not installed; built with the tests.
 *
 *   enroll-key TOKEN                     the token's enrollment key pair: "PUBLIC SECRET"
 *   proof KEYFILE SERVER_KEY CONTEXT     a proof of KEYFILE's secret key (base64)
 *   keypair KEYFILE                      the key pair in KEYFILE: "PUBLIC SECRET"
 *   seal-open KEYFILE < BOX              opens a base64 sealed box with KEYFILE's key pair;
 *                                        exit 1 (and a message) if it is not for that key
 *   seal PUBLIC_KEY < DATA               seals DATA to PUBLIC_KEY (base64)
 */
#include <sodium.h>

#include "fileio.h"
#include "keys.h"
#include "macro.h"

static int usage(void) {
        fprintf(stderr, "usage: anvil-testtool enroll-key TOKEN | proof KEYFILE SERVER_KEY "
                        "CONTEXT | keypair KEYFILE | seal-open KEYFILE < BOX | seal KEY < DATA\n");
        return 2;
}

int main(int argc, char **argv) {
        if (sodium_init() < 0 || argc < 3)
                return usage();
        KeyPair kp;
        int r;
        if (streq(argv[1], "seal") && argc == 3) {
                _cleanup_free_ char *data = NULL, *box = NULL;
                size_t n;
                if (read_file_bounded("/dev/stdin", 16U << 20, &data, &n) < 0 ||
                    seal_to_key(argv[2], data, n, &box) < 0)
                        return 1;
                printf("%s\n", box);
                return 0;
        }
        if (streq(argv[1], "enroll-key") && argc == 3) {
                r = enroll_keypair_from_token(argv[2], &kp);
                if (r < 0)
                        return 1;
                printf("%s %s\n", kp.public_z85, kp.secret_z85);
                return 0;
        }
        r = keypair_load(argv[2], &kp);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[2], strerror(-r));
                return 1;
        }
        if (streq(argv[1], "keypair") && argc == 3) {
                printf("%s %s\n", kp.public_z85, kp.secret_z85);
                return 0;
        }
        if (streq(argv[1], "proof") && argc == 5) {
                char *proof = NULL;
                r = key_proof_make(&kp, argv[3], argv[4], &proof);
                if (r < 0)
                        return 1;
                printf("%s\n", proof);
                free(proof);
                return 0;
        }
        if (streq(argv[1], "seal-open") && argc == 3) {
                _cleanup_free_ char *box = NULL;
                r = read_file_bounded("/dev/stdin", 16U << 20, &box, NULL);
                if (r < 0)
                        return 1;
                box[strcspn(box, "\n")] = 0;
                void *plain = NULL;
                size_t n;
                r = seal_open(&kp, box, &plain, &n);
                if (r < 0) {
                        fprintf(stderr, "seal-open: the box does not open with this key: %s\n",
                                strerror(-r));
                        return 1;
                }
                fwrite(plain, 1, n, stdout);
                free(plain);
                return 0;
        }
        return usage();
}
