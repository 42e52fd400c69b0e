/* SPDX-License-Identifier: Apache-2.0 */
/* Token enrollment keys, proofs of possession, sealed boxes (common/keys.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "keys.h"

static void new_keypair(KeyPair *kp) {
        assert_int_equal(zmq_curve_keypair(kp->public_z85, kp->secret_z85), 0);
}

static void test_enroll_key(void **state) {
        (void)state;
        KeyPair a, b, c;
        assert_int_equal(enroll_keypair_from_token("abcdef.0123456789abcdefghijklmnopqrstuv", &a),
                         0);
        assert_int_equal(enroll_keypair_from_token("abcdef.0123456789abcdefghijklmnopqrstuv", &b),
                         0);
        assert_int_equal(enroll_keypair_from_token("abcdef.0123456789abcdefghijklmnopqrstuw", &c),
                         0);
        /* deterministic, different per token, a real CURVE key pair */
        assert_string_equal(a.public_z85, b.public_z85);
        assert_string_not_equal(a.public_z85, c.public_z85);
        char derived[KEY_Z85_LEN + 1];
        assert_int_equal(zmq_curve_public(derived, a.secret_z85), 0);
        assert_string_equal(derived, a.public_z85);
        assert_int_equal(enroll_keypair_from_token("", &a), -EINVAL);
}

static void test_proof(void **state) {
        (void)state;
        KeyPair server, agent, other;
        new_keypair(&server);
        new_keypair(&agent);
        new_keypair(&other);
        char *proof = NULL;
        assert_int_equal(key_proof_make(&agent, server.public_z85, "ctx-1", &proof), 0);
        assert_int_equal(key_proof_check(&server, agent.public_z85, "ctx-1", proof), 0);
        /* another context, another claimed key, another server: refused */
        assert_int_equal(key_proof_check(&server, agent.public_z85, "ctx-2", proof), -EPERM);
        assert_int_equal(key_proof_check(&server, other.public_z85, "ctx-1", proof), -EPERM);
        assert_int_equal(key_proof_check(&other, agent.public_z85, "ctx-1", proof), -EPERM);
        /* altered */
        proof[10] = proof[10] == 'A' ? 'B' : 'A';
        assert_int_equal(key_proof_check(&server, agent.public_z85, "ctx-1", proof), -EPERM);
        assert_int_equal(key_proof_check(&server, agent.public_z85, "ctx-1", "not base64!"),
                         -EPERM);
        assert_int_equal(key_proof_check(&server, agent.public_z85, "ctx-1", ""), -EPERM);
        free(proof);
}

static void test_seal(void **state) {
        (void)state;
        KeyPair host, other;
        new_keypair(&host);
        new_keypair(&other);
        char *box = NULL;
        assert_int_equal(seal_to_key(host.public_z85, "bundle", 6, &box), 0);
        void *plain = NULL;
        size_t n = 0;
        assert_int_equal(seal_open(&other, box, &plain, &n), -EBADMSG);
        assert_null(plain);
        assert_int_equal(seal_open(&host, box, &plain, &n), 0);
        assert_int_equal(n, 6);
        assert_memory_equal(plain, "bundle", 6);
        free(plain);
        free(box);
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_enroll_key),
                cmocka_unit_test(test_proof),
                cmocka_unit_test(test_seal),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
