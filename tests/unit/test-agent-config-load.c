/* SPDX-License-Identifier: Apache-2.0 */
/* agent_config_load(): file, kernel command line, flags, defaults — the same at startup and
 * on SIGHUP, and a bad file changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <syslog.h>

#include "agent-config.h"
#include "fileio.h"

static char dir[] = "/tmp/anvil-test-config.XXXXXX";

static char *write_tmp(const char *name, const char *text) {
        char *p = strjoin(dir, "/", name);
        assert_non_null(p);
        assert_int_equal(write_file_atomic(p, text, strlen(text), 0600), 0);
        return p;
}

static int setup(void **state) {
        (void)state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        (void)state;
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        return system(cmd);
}

static void test_file_cmdline_flags(void **state) {
        (void)state;
        _cleanup_(agent_config_source_done) AgentConfigSource src = {0};
        src.path = write_tmp("agent.yaml", "coordinator: tcp://10.0.0.1:7443\n"
                                           "log-level: debug\n"
                                           "heartbeat-interval: 30s\n"
                                           "units: [kubelet.service, crio.service]\n");
        _cleanup_free_ char *cmdline =
                write_tmp("cmdline", "quiet anvil.token=abcdef.0123456789abcdef\n");
        src.flags.cmdline_path = strdup(cmdline);
        src.flags.heartbeat_usec = 5 * USEC_PER_SEC; /* --heartbeat 5s wins over the file */
        AgentConfig c = {0};
        _cleanup_free_ char *err = NULL;
        assert_int_equal(agent_config_load(&src, &c, &err), 0);
        assert_string_equal(c.coordinator, "tcp://10.0.0.1:7443");
        assert_string_equal(c.token, "abcdef.0123456789abcdef");
        assert_true(c.has_log_level);
        assert_int_equal(c.log_level, LOG_DEBUG);
        assert_int_equal(c.heartbeat_usec, 5 * USEC_PER_SEC);
        assert_int_equal(strv_length(c.units), 2);
        assert_string_equal(c.units[1], "crio.service");
        assert_string_equal(c.state_dir, "/var/lib/anvil-agent"); /* a default */
        agent_config_done(&c);

        /* --log-level wins over the file, and the default units apply without a list. */
        free(src.path);
        src.path = write_tmp("agent2.yaml", "log-level: debug\n");
        src.flags.log_level = LOG_WARNING;
        src.flags.has_log_level = true;
        assert_int_equal(agent_config_load(&src, &c, &err), 0);
        assert_int_equal(c.log_level, LOG_WARNING);
        assert_int_equal(strv_length(c.units), 2);
        assert_string_equal(c.units[0], "kubelet.service");
        assert_string_equal(c.units[1], "containerd.service");
        agent_config_done(&c);
}

static void test_bad_file_changes_nothing(void **state) {
        (void)state;
        _cleanup_(agent_config_source_done) AgentConfigSource src = {0};
        src.path = write_tmp("bad.yaml", "coordinator: tcp://10.0.0.1:7443\nlog-level: loud\n");
        src.flags.cmdline_path = strdup("/dev/null");
        AgentConfig c = {.heartbeat_usec = 42};
        _cleanup_free_ char *err = NULL;
        assert_int_equal(agent_config_load(&src, &c, &err), -EBADMSG);
        assert_non_null(err);
        assert_non_null(strstr(err, "bad.yaml:2:12: log-level"));
        assert_int_equal(c.heartbeat_usec, 42); /* untouched */
        assert_null(c.coordinator);

        /* A missing file is fine unless it was named with --config. */
        free(src.path);
        src.path = strjoin(dir, "/missing.yaml");
        assert_int_equal(agent_config_load(&src, &c, &err), 0);
        agent_config_done(&c);
        src.path_given = true;
        free(err);
        err = NULL;
        assert_int_equal(agent_config_load(&src, &c, &err), -ENOENT);
        assert_non_null(strstr(err, "missing.yaml"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file_cmdline_flags),
                cmocka_unit_test(test_bad_file_changes_nothing),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
