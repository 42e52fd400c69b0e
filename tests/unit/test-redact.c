/* SPDX-License-Identifier: Apache-2.0 */
/* redact_secrets(): what kubeadm prints that must not reach the journal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "redact.h"

static void check(const char *in, const char *want) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", in);
        size_t n = redact_secrets(buf, strlen(buf));
        buf[n] = 0;
        assert_string_equal(buf, want);
}

static void test_bootstrap_token(void **state) {
        (void)state;
        check("[bootstrap-token] Using token: 46t9pa.qb7kuzjugz52v095",
              "[bootstrap-token] Using token: 46t9pa.<redacted>");
        check("  kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef \\",
              "  kubeadm join 10.0.0.1:6443 --token abcdef.<redacted> \\");
        check("--token=abcdef.0123456789abcdef", "--token=abcdef.<redacted>");
}

static void test_enrollment_token(void **state) {
        (void)state;
        check("anvil.token=k2j4x9.0123456789abcdefghijklmnopqrstuv quiet",
              "anvil.token=k2j4x9.<redacted> quiet");
}

static void test_certificate_key(void **state) {
        (void)state;
        check("--certificate-key 6dece1c107932643d90f9ad0ecf3ff66da019480fed8551e82ab0a536767f319",
              "--certificate-key <redacted>");
        /* a CA certificate hash is public and stays */
        check("--discovery-token-ca-cert-hash "
              "sha256:6dece1c107932643d90f9ad0ecf3ff66da019480fed8551e82ab0a536767f319",
              "--discovery-token-ca-cert-hash "
              "sha256:6dece1c107932643d90f9ad0ecf3ff66da019480fed8551e82ab0a536767f319");
}

static void test_password_hash(void **state) {
        (void)state;
        /* /etc/shadow lines, locked or not: the whole hash goes, the user stays. */
        check("ops:!$6$rounds=5000$0F5nPzFQ$Vh7gE2.Uo1nR8sQ/3qLbq0x1:20000:0:99999:7:::",
              "ops:!<redacted>:20000:0:99999:7:::");
        check("audit:$y$j9T$Jf9vHBlbXu4jz5/7D8Z1m/$C0t0qVjM0s1yWq8fRaT3C4UeCcW2a9kP6Qe1s2m3n5"
              ":20000::::::1:",
              "audit:<redacted>:20000::::::1:");
        check("hash=$2b$12$abcdefghijklmnopqrstuv end", "hash=<redacted> end");
        /* Shell variables and prices are not hashes. */
        check("echo $HOME $PATH costs $5 and $6$ too", "echo $HOME $PATH costs $5 and $6$ too");
        check("$6$short$x", "$6$short$x");
}

static void test_leaves_the_rest(void **state) {
        (void)state;
        check("", "");
        check("[kubelet-check] Initial timeout of 40s passed.",
              "[kubelet-check] Initial timeout of 40s passed.");
        check("node.kubernetes.io abcdef.short 1.2.3.4 v1.30.2",
              "node.kubernetes.io abcdef.short 1.2.3.4 v1.30.2");
        /* 63 and 65 hex digits are not a certificate key */
        check("6dece1c107932643d90f9ad0ecf3ff66da019480fed8551e82ab0a536767f31",
              "6dece1c107932643d90f9ad0ecf3ff66da019480fed8551e82ab0a536767f31");
        check("6dece1c107932643d90f9ad0ecf3ff66da019480fed8551e82ab0a536767f3199",
              "6dece1c107932643d90f9ad0ecf3ff66da019480fed8551e82ab0a536767f3199");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bootstrap_token),
                cmocka_unit_test(test_enrollment_token),
                cmocka_unit_test(test_certificate_key),
                cmocka_unit_test(test_password_hash),
                cmocka_unit_test(test_leaves_the_rest),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
