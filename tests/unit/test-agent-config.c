/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of agent/agent-config.h: the kernel command line a PXE-booted host learns its
 * coordinator from (strict: an unknown anvil.* parameter or a bad value changes nothing),
 * agent.yaml, and the defaults.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <zmq.h>

#include "agent-config.h"
#include "yamlio.h"

typedef struct Keys {
        char pub[41];
        char sec[41];
} Keys;

static int setup(void **state) {
        Keys *k = calloc(1, sizeof(Keys));
        if (!k || zmq_curve_keypair(k->pub, k->sec) < 0) {
                free(k);
                return -1;
        }
        *state = k;
        return 0;
}

static int teardown(void **state) {
        free(*state);
        return 0;
}

static void test_cmdline_values(void **state) {
        Keys *k = *state;
        _cleanup_free_ char *line =
                asprintf_safe("BOOT_IMAGE=/vmlinuz-6.1.0 root=/dev/nfs ip=dhcp quiet "
                              "anvil.coordinator=tcp://h:1 anvil.coordinator_key=%s anvil.token=x "
                              "console=ttyS0,115200n8\n",
                              k->pub);
        AgentConfig c = {0};
        char *err = NULL;
        assert_int_equal(agent_config_apply_cmdline(&c, line, &err), 0);
        assert_null(err);
        assert_string_equal(c.coordinator, "tcp://h:1");
        assert_string_equal(c.coordinator_key, k->pub);
        assert_string_equal(c.token, "x");
        assert_null(c.state_dir);
        /* Other fields are not touched. */
        assert_null(c.kubeadm);
        assert_null(c.hostname);
        agent_config_done(&c);
        assert_null(c.coordinator);
}

static void test_cmdline_quoted_and_overrides(void **state) {
        Keys *k = *state;
        AgentConfig c = {0};
        c.token = strdup("from-yaml");
        c.coordinator = strdup("tcp://yaml:9");
        char *err = NULL;
        _cleanup_free_ char *line =
                asprintf_safe("anvil.token=\"a b  c\" anvil.coordinator=\"tcp://10.0.0.1:7000\" "
                              "anvil.state_dir=/run/anvil\tanvil.coordinator_key=\"%s\"",
                              k->pub);
        assert_int_equal(agent_config_apply_cmdline(&c, line, &err), 0);
        assert_null(err);
        assert_string_equal(c.token, "a b  c");
        assert_string_equal(c.coordinator, "tcp://10.0.0.1:7000");
        assert_string_equal(c.state_dir, "/run/anvil");
        assert_string_equal(c.coordinator_key, k->pub);
        /* The last occurrence wins. */
        assert_int_equal(agent_config_apply_cmdline(&c, "anvil.token=one anvil.token=two", &err),
                         0);
        assert_string_equal(c.token, "two");
        /* Quotes around a whole non-anvil word do not confuse the split. */
        assert_int_equal(
                agent_config_apply_cmdline(&c, "dyndbg=\"file x.c +p\" anvil.token=three", &err),
                0);
        assert_string_equal(c.token, "three");
        assert_string_equal(c.coordinator, "tcp://10.0.0.1:7000");
        /* A whole word in quotes, as the kernel allows ("param=value with spaces"). */
        assert_int_equal(agent_config_apply_cmdline(
                                 &c, "quiet \"anvil.token=a b\" \"anvil.state_dir=/x y\"", &err),
                         0);
        assert_null(err);
        assert_string_equal(c.token, "a b");
        assert_string_equal(c.state_dir, "/x y");
        agent_config_done(&c);
}

static void test_cmdline_ignores_other_words(void **state) {
        (void)state;
        AgentConfig c = {0};
        char *err = NULL;
        const char *lines[] = {
                "",
                "   \n",
                "quiet splash",
                "anvil=1 anvilx.token=2 ranvil.token=3 ANVIL.token=4 xanvil.foo=5",
                "root=/dev/sda1 init=/sbin/init",
        };
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                assert_int_equal(agent_config_apply_cmdline(&c, lines[i], &err), 0);
                assert_null(err);
        }
        assert_null(c.coordinator);
        assert_null(c.coordinator_key);
        assert_null(c.token);
        assert_null(c.state_dir);
        agent_config_done(&c);
}

/* Applies line to a config holding known values; expects -EINVAL, an error containing needle,
 * and no change to the config. */
static void expect_refused(const Keys *k, const char *line, const char *needle) {
        AgentConfig c = {0};
        c.coordinator = strdup("tcp://before:1");
        c.coordinator_key = strdup(k->pub);
        c.token = strdup("before");
        char *err = NULL;
        int r = agent_config_apply_cmdline(&c, line, &err);
        if (r != -EINVAL)
                fail_msg("\"%s\": r=%d (err %s)", line, r, strna(err));
        if (!err || !strstr(err, needle))
                fail_msg("\"%s\": error \"%s\" does not contain \"%s\"", line, strna(err), needle);
        free(err);
        assert_string_equal(c.coordinator, "tcp://before:1");
        assert_string_equal(c.coordinator_key, k->pub);
        assert_string_equal(c.token, "before");
        assert_null(c.state_dir);
        agent_config_done(&c);
}

static void test_cmdline_errors_change_nothing(void **state) {
        Keys *k = *state;
        /* Unknown anvil.* parameters are named, even after valid ones. */
        expect_refused(k, "anvil.foo=1", "'anvil.foo'");
        expect_refused(k, "anvil.token=new anvil.coordinator=tcp://new:2 anvil.foo=bar",
                       "unknown parameter 'anvil.foo'");
        expect_refused(k, "anvil.tokens=x", "'anvil.tokens'");
        expect_refused(k, "anvil.=x", "unknown parameter");
        expect_refused(k, "anvil.coordinatorkey=x", "'anvil.coordinatorkey'");
        /* Bad keys. */
        expect_refused(k, "anvil.coordinator_key=abc", "anvil.coordinator_key");
        expect_refused(k, "anvil.coordinator_key=abc", "40-character Z85");
        char bad[41];
        memcpy(bad, k->pub, 41);
        bad[3] = '~'; /* not Z85 */
        _cleanup_free_ char *bad_key =
                asprintf_safe("anvil.token=new anvil.coordinator_key=%s", bad);
        expect_refused(k, bad_key, "Z85");
        _cleanup_free_ char *long_key = asprintf_safe("anvil.coordinator_key=%sA", k->pub);
        expect_refused(k, long_key, "Z85");
        /* Bad coordinator address. */
        expect_refused(k, "anvil.coordinator=http://h:1", "tcp://HOST:PORT");
        expect_refused(k, "anvil.coordinator=h:1", "tcp://");
        /* Missing or malformed values. */
        expect_refused(k, "anvil.token", "anvil.token needs a value");
        expect_refused(k, "anvil.token=", "needs a value");
        expect_refused(k, "anvil.token=\"\"", "bad value for anvil.token");
        expect_refused(k, "anvil.token=a\"b", "bad value");
        expect_refused(k, "anvil.token=\"unterminated value", "bad value");
        expect_refused(k, "\"anvil.token=unterminated word", "bad value for anvil.token");
        expect_refused(k, "\"anvil.token=\"", "needs a value");
        expect_refused(k, "\"anvil.tokens=x\"", "unknown parameter 'anvil.tokens'");
        _cleanup_free_ char *huge = malloc(4200);
        strcpy(huge, "anvil.token=");
        memset(huge + 12, 't', 4097);
        huge[12 + 4097] = 0;
        expect_refused(k, huge, "bad value");
}

static void test_cmdline_too_long(void **state) {
        (void)state;
        size_t n = 65537;
        _cleanup_free_ char *line = malloc(n + 1);
        memset(line, 'x', n);
        line[n] = 0;
        AgentConfig c = {0};
        char *err = NULL;
        assert_int_equal(agent_config_apply_cmdline(&c, line, &err), -E2BIG);
        assert_non_null(err);
        assert_non_null(strstr(err, "64 KiB"));
        free(err);
        agent_config_done(&c);
}

static void test_finish_defaults(void **state) {
        (void)state;
        AgentConfig c = {0};
        assert_int_equal(agent_config_finish(&c), 0);
        assert_string_equal(c.state_dir, "/var/lib/anvil-agent");
        assert_string_equal(c.host_root, "/");
        assert_string_equal(c.kubeadm, "/usr/bin/kubeadm");
        assert_string_equal(c.kubectl, "/usr/bin/kubectl");
        assert_int_equal(strv_length(c.environment), 1);
        assert_true(startswith(c.environment[0], "PATH=/usr/local/sbin:"));
        assert_int_equal(strv_length(c.units), 2);
        assert_true(strv_contains(c.units, "kubelet.service"));
        assert_true(strv_contains(c.units, "containerd.service"));
        assert_true(c.heartbeat_usec == 10 * USEC_PER_SEC);
        assert_true(c.command_timeout_usec == 600 * USEC_PER_SEC);
        assert_true(c.kubeadm_timeout_usec == 900 * USEC_PER_SEC);
        /* Nothing that must come from the operator is invented. */
        assert_null(c.coordinator);
        assert_null(c.coordinator_key);
        assert_null(c.token);
        /* Idempotent. */
        assert_int_equal(agent_config_finish(&c), 0);
        assert_int_equal(strv_length(c.units), 2);
        agent_config_done(&c);

        /* Set values are kept. */
        AgentConfig s = {0};
        s.state_dir = strdup("/srv/anvil");
        s.kubeadm = strdup("/opt/fake/kubeadm");
        s.heartbeat_usec = 3 * USEC_PER_SEC;
        assert_int_equal(strv_extend(&s.units, "crio.service"), 0);
        assert_int_equal(agent_config_finish(&s), 0);
        assert_string_equal(s.state_dir, "/srv/anvil");
        assert_string_equal(s.kubeadm, "/opt/fake/kubeadm");
        assert_true(s.heartbeat_usec == 3 * USEC_PER_SEC);
        assert_int_equal(strv_length(s.units), 1);
        assert_string_equal(s.units[0], "crio.service");
        assert_string_equal(s.kubectl, "/usr/bin/kubectl");
        agent_config_done(&s);
}

static void test_yaml_then_cmdline_then_finish(void **state) {
        Keys *k = *state;
        const char *text = "coordinator: tcp://yaml:5555\n"
                           "token: yaml-token\n"
                           "state-dir: /var/lib/x\n"
                           "hostname: rack1-07\n"
                           "kubeadm: /opt/kubeadm\n"
                           "environment: [HTTP_PROXY=http://proxy:3128]\n"
                           "units: []\n"
                           "heartbeat-interval: 2s\n"
                           "command-timeout: 1m\n"
                           "kubeadm-timeout: bogus\n";
        _cleanup_(obj_freep) Obj *o = NULL;
        assert_int_equal(yaml_parse_one(text, strlen(text), &o, NULL), 0);
        AgentConfig c = {0};
        assert_int_equal(agent_config_apply_yaml(&c, o), 0);
        assert_string_equal(c.coordinator, "tcp://yaml:5555");
        assert_string_equal(c.hostname, "rack1-07");
        assert_true(c.heartbeat_usec == 2 * USEC_PER_SEC);
        assert_true(c.command_timeout_usec == 60 * USEC_PER_SEC);
        assert_true(c.kubeadm_timeout_usec == 0); /* invalid: left for the default */
        /* An empty list is a choice, not "unset". */
        assert_non_null(c.units);
        assert_int_equal(strv_length(c.units), 0);

        _cleanup_free_ char *line = asprintf_safe("anvil.coordinator=tcp://cmdline:6000 "
                                                  "anvil.coordinator_key=%s",
                                                  k->pub);
        char *err = NULL;
        assert_int_equal(agent_config_apply_cmdline(&c, line, &err), 0);
        assert_string_equal(c.coordinator, "tcp://cmdline:6000");
        assert_string_equal(c.token, "yaml-token"); /* not on the command line: kept */

        assert_int_equal(agent_config_finish(&c), 0);
        assert_string_equal(c.state_dir, "/var/lib/x");
        assert_string_equal(c.kubeadm, "/opt/kubeadm");
        assert_string_equal(c.kubectl, "/usr/bin/kubectl");
        assert_int_equal(strv_length(c.units), 0);
        assert_int_equal(strv_length(c.environment), 1);
        assert_string_equal(c.environment[0], "HTTP_PROXY=http://proxy:3128");
        assert_true(c.kubeadm_timeout_usec == 900 * USEC_PER_SEC);
        agent_config_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_cmdline_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cmdline_quoted_and_overrides, setup, teardown),
                cmocka_unit_test(test_cmdline_ignores_other_words),
                cmocka_unit_test_setup_teardown(test_cmdline_errors_change_nothing, setup,
                                                teardown),
                cmocka_unit_test(test_cmdline_too_long),
                cmocka_unit_test(test_finish_defaults),
                cmocka_unit_test_setup_teardown(test_yaml_then_cmdline_then_finish, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
