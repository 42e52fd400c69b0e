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

/* Loads text as agent.yaml and expects it refused with exactly want (the whole message). */
static void expect_refused(const char *text, int want_r, const char *want) {
        _cleanup_(agent_config_source_done) AgentConfigSource src = {0};
        src.path = write_tmp("sem.yaml", text);
        src.flags.cmdline_path = strdup("/dev/null");
        AgentConfig c = {.heartbeat_usec = 42};
        _cleanup_free_ char *err = NULL;
        assert_int_equal(agent_config_load(&src, &c, &err), want_r);
        assert_non_null(err);
        /* The path is the temporary directory's: drop it from every line. */
        char *out = err, *q = err;
        size_t dl = strlen(dir) + 1;
        while (*out) {
                if (strncmp(out, dir, dl - 1) == 0 && out[dl - 1] == '/')
                        out += dl;
                while (*out && (*q++ = *out++) != '\n')
                        ;
        }
        *q = 0;
        assert_string_equal(err, want);
        assert_int_equal(c.heartbeat_usec, 42); /* untouched */
}

/* Semantic errors carry FILE:LINE:COLUMN: field, as syntax errors do. */
static void test_semantic_errors_name_the_line(void **state) {
        (void)state;
        expect_refused("log-level: info\ncoordinator: 127.0.0.1:7443\n", -EBADMSG,
                       "sem.yaml:2:14: coordinator: must be tcp://HOST:PORT, not "
                       "'127.0.0.1:7443'\n");
        expect_refused("coordinator: tcp://10.0.0.1:http\n", -EBADMSG,
                       "sem.yaml:1:14: coordinator: the port must be a number from 1 to 65535, "
                       "not 'tcp://10.0.0.1:http'\n");
        expect_refused("coordinator: tcp://0.0.0.0:7443\n", -EBADMSG,
                       "sem.yaml:1:14: coordinator: a wildcard address cannot be connected to: "
                       "give the coordinator's name or address, not 'tcp://0.0.0.0:7443'\n");
        expect_refused("environment:\n  - A=1\n  - NOEQUALS\n  - \"=x\"\n", -EBADMSG,
                       "sem.yaml:3:5: environment[1]: must be KEY=VALUE with KEY made of "
                       "letters, digits and _, not 'NOEQUALS'\n"
                       "sem.yaml:4:5: environment[2]: must be KEY=VALUE with KEY made of "
                       "letters, digits and _, not '=x'\n");
        expect_refused("heartbeat-interval: 0s\n", -EBADMSG,
                       "sem.yaml:1:21: heartbeat-interval: must be between 100ms and 24h, not "
                       "\"0s\"\n");
        expect_refused("command-timeout: 0s\nkubeadm-timeout: 48h\n", -EBADMSG,
                       "sem.yaml:1:18: command-timeout: must be between 1s and 24h, not \"0s\"\n"
                       "sem.yaml:2:18: kubeadm-timeout: must be between 1s and 24h, not "
                       "\"48h\"\n");
        expect_refused("heartbeat-interval: 0\n", -EBADMSG,
                       "sem.yaml:1:21: heartbeat-interval: expected a duration such as \"10s\" "
                       "or \"1m\", got integer\n");
}

/* A value from a flag names the flag; from the kernel command line, the parameter. */
static void test_flag_and_cmdline_named(void **state) {
        (void)state;
        _cleanup_(agent_config_source_done) AgentConfigSource src = {0};
        src.path = strjoin(dir, "/none.yaml");
        src.flags.cmdline_path = write_tmp("cmdline2", "quiet anvil.coordinator=10.0.0.1:7443\n");
        AgentConfig c = {0};
        _cleanup_free_ char *err = NULL;
        assert_int_equal(agent_config_load(&src, &c, &err), -EINVAL);
        assert_non_null(strstr(err, "kernel command line: anvil.coordinator: must be "
                                    "tcp://HOST:PORT, not '10.0.0.1:7443' ("));
        free(err);
        err = NULL;
        free(src.flags.cmdline_path);
        src.flags.cmdline_path = strdup("/dev/null");
        src.flags.coordinator = strdup("10.0.0.1:7443");
        assert_int_equal(agent_config_load(&src, &c, &err), -EINVAL);
        assert_string_equal(err, "--coordinator: must be tcp://HOST:PORT, not '10.0.0.1:7443'");
        assert_null(c.coordinator);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file_cmdline_flags),
                cmocka_unit_test(test_bad_file_changes_nothing),
                cmocka_unit_test(test_semantic_errors_name_the_line),
                cmocka_unit_test(test_flag_and_cmdline_named),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
