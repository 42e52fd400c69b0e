/* SPDX-License-Identifier: Apache-2.0 */
/* Health without systemd (the plain test machines): it must stay quiet and harmless. The
 * bus side is tested under a real systemd in tests/nspawn/test-units.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <systemd/sd-daemon.h>

#include "health.h"

static void test_unit_ok(void **state) {
        (void)state;
        assert_true(health_unit_ok("loaded", "active"));
        assert_true(health_unit_ok("loaded", "reloading"));
        assert_false(health_unit_ok("loaded", "activating")); /* e.g. auto-restart loops */
        assert_false(health_unit_ok("loaded", "inactive"));
        assert_false(health_unit_ok("loaded", "failed"));
        assert_false(health_unit_ok("not-found", "inactive"));
        assert_false(health_unit_ok("masked", "active"));
        assert_false(health_unit_ok(NULL, "active"));
        assert_false(health_unit_ok("loaded", NULL));
}

static int changes;
static void on_changed(Health *h, void *userdata) {
        (void)h;
        (void)userdata;
        changes++;
}

static void test_without_systemd(void **state) {
        (void)state;
        if (sd_booted() > 0)
                skip(); /* this machine runs systemd: the nspawn tests cover it */
        sd_event *e = NULL;
        assert_int_equal(sd_event_new(&e), 0);
        char *units[] = {"kubelet.service", "containerd.service", NULL};
        Health *h = NULL;
        assert_int_equal(health_new(e, units, on_changed, NULL, &h), 0);
        assert_non_null(h);
        assert_false(health_available(h));
        assert_null(health_summary(h));
        assert_int_equal(health_restart_unit(h, "kubelet.service", NULL, NULL), -ENOTCONN);
        char *more[] = {"kubelet.service", "containerd.service", "etcd.service", NULL};
        assert_int_equal(health_set_units(h, more), 0);
        /* Nothing is there to report: the changed callback may run, the summary stays NULL
         * and no timer keeps the loop busy. */
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(e, 0) >= 0);
        assert_null(health_summary(h));
        h = health_free(h);
        assert_null(h);
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unit_ok),
                cmocka_unit_test(test_without_systemd),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
