/* SPDX-License-Identifier: Apache-2.0 */
/* coordinator.yaml: semantic errors (endpoints, durations) are reported as FILE:LINE:COLUMN:
 * field like syntax errors; what needs a restart is found on reload; the endpoint checks the
 * flags and anvilctl share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"
#include "coordinator-config.h"

static void expect_errors(const char *text, const char *want) {
        _cleanup_(obj_freep) Obj *o = NULL;
        _cleanup_free_ char *errors = NULL;
        assert_int_equal(config_parse("coordinator.yaml", text, strlen(text),
                                      coordinator_config_schema, &o, &errors),
                         -EBADMSG);
        assert_null(o);
        assert_string_equal(errors, want);
}

static void test_semantic_errors(void **state) {
        (void)state;
        expect_errors("listen: 127.0.0.1:7443\n",
                      "coordinator.yaml:1:9: listen: must be tcp://HOST:PORT, not "
                      "'127.0.0.1:7443'\n");
        expect_errors("listen: ipc:///tmp/x\n",
                      "coordinator.yaml:1:9: listen: must be tcp://HOST:PORT (agents connect "
                      "over TCP with CURVE), not 'ipc:///tmp/x'\n");
        expect_errors("advertise: tcp://0.0.0.0:7443\n",
                      "coordinator.yaml:1:12: advertise: a wildcard address cannot be "
                      "advertised: give the name or address agents reach this coordinator at, "
                      "not 'tcp://0.0.0.0:7443'\n");
        expect_errors("advertise: foo\n",
                      "coordinator.yaml:1:12: advertise: must be tcp://HOST:PORT, not 'foo'\n");
        expect_errors("metrics-listen: nonsense\n",
                      "coordinator.yaml:1:17: metrics-listen: must be IPv4ADDR:PORT (e.g. "
                      "127.0.0.1:9450), or \"\" to disable, not 'nonsense'\n");
        expect_errors("heartbeat-grace: 0s\nresync-period: 0s\n",
                      "coordinator.yaml:1:18: heartbeat-grace: must be between 1s and 24h, not "
                      "\"0s\"\n"
                      "coordinator.yaml:2:16: resync-period: must be between 1s and 24h, not "
                      "\"0s\"\n");
        expect_errors("heartbeat-grace: 30\n",
                      "coordinator.yaml:1:18: heartbeat-grace: expected a duration such as "
                      "\"10s\" or \"1m\", got integer\n");
}

static void test_good_file(void **state) {
        (void)state;
        const char *text = "listen: tcp://*:7443\nadvertise: tcp://[2001:db8::1]:7443\n"
                           "metrics-listen: \"\"\nheartbeat-grace: 1m30s\n";
        _cleanup_(obj_freep) Obj *o = NULL;
        _cleanup_free_ char *errors = NULL;
        assert_int_equal(
                config_parse("c.yaml", text, strlen(text), coordinator_config_schema, &o, &errors),
                0);
        ManagerConfig mc;
        coordinator_config_apply(o, &mc);
        assert_string_equal(mc.listen, "tcp://*:7443");
        assert_int_equal(mc.heartbeat_grace_usec, 90 * USEC_PER_SEC);
        assert_int_equal(mc.resync_usec, 600 * USEC_PER_SEC);
}

static void test_restart_changes(void **state) {
        (void)state;
        const char *a = "listen: tcp://0.0.0.0:7443\nlog-level: info\n";
        const char *b = "listen: tcp://0.0.0.0:7444\nlog-level: debug\nstate-dir: /srv/anvil\n";
        _cleanup_(obj_freep) Obj *oa = NULL, *ob = NULL;
        assert_int_equal(config_parse("a", a, strlen(a), coordinator_config_schema, &oa, NULL), 0);
        assert_int_equal(config_parse("b", b, strlen(b), coordinator_config_schema, &ob, NULL), 0);
        assert_int_equal(coordinator_config_remember_startup(oa), 0);
        _cleanup_free_ char *none = coordinator_config_restart_changes(oa);
        assert_null(none);
        _cleanup_free_ char *changed = coordinator_config_restart_changes(ob);
        assert_string_equal(changed, "listen, state-dir");
}

static void test_endpoints(void **state) {
        (void)state;
        char buf[256];
        assert_null(endpoint_check("tcp://10.0.0.1:7443", ENDPOINT_CONNECT, buf, sizeof(buf)));
        assert_null(endpoint_check("tcp://coord.example:1", ENDPOINT_ADVERTISE, buf, sizeof(buf)));
        assert_null(endpoint_check("tcp://*:7443", ENDPOINT_BIND, buf, sizeof(buf)));
        assert_non_null(endpoint_check("tcp://*:7443", ENDPOINT_ADVERTISE, buf, sizeof(buf)));
        assert_non_null(endpoint_check("tcp://h:0", ENDPOINT_BIND, buf, sizeof(buf)));
        assert_non_null(endpoint_check("tcp://h:65536", ENDPOINT_BIND, buf, sizeof(buf)));
        assert_non_null(endpoint_check("tcp://:7443", ENDPOINT_BIND, buf, sizeof(buf)));
        assert_non_null(endpoint_check("tcp://::1:7443", ENDPOINT_BIND, buf, sizeof(buf)));
        assert_null(addr_port_check("127.0.0.1:9450", buf, sizeof(buf)));
        assert_non_null(addr_port_check("localhost:9450", buf, sizeof(buf)));
        assert_true(endpoint_is_local("tcp://0.0.0.0:7443"));
        assert_true(endpoint_is_local("tcp://127.0.0.1:7443"));
        assert_true(endpoint_is_local("tcp://[::1]:7443"));
        assert_false(endpoint_is_local("tcp://10.1.2.3:7443"));
        _cleanup_free_ char *line = config_errors_one_line("a:1:1: x\na:2:1: y\n");
        assert_string_equal(line, "a:1:1: x; a:2:1: y");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_semantic_errors),
                cmocka_unit_test(test_good_file),
                cmocka_unit_test(test_restart_changes),
                cmocka_unit_test(test_endpoints),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
