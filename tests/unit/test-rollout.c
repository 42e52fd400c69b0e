/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rollout arithmetic (coordinator/controllers/rollout.c): rounding of maxSurge/maxUnavailable
 * as Cluster API rounds them, and a whole rolling update simulated step by step — the
 * deployment's decisions, an idealised MachineSet controller, machines that take a few steps
 * to become available — checking at every step that availability never drops below
 * replicas - maxUnavailable, that no more than replicas + maxSurge machines are asked for, and
 * that the rollout finishes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "controllers/rollout.h"

static void test_scaled_values(void **state) {
        (void)state;
        int64_t v;
        _cleanup_(obj_freep) Obj *pct = obj_new_str("25%"), *num = obj_new_int(2),
                                 *bad = obj_new_str("25"), *neg = obj_new_int(-1);
        assert_int_equal(rollout_scaled_value(pct, 10, true, 0, &v), 0);
        assert_int_equal(v, 3); /* 2.5 rounds up */
        assert_int_equal(rollout_scaled_value(pct, 10, false, 0, &v), 0);
        assert_int_equal(v, 2); /* and down */
        assert_int_equal(rollout_scaled_value(num, 10, true, 0, &v), 0);
        assert_int_equal(v, 2);
        assert_int_equal(rollout_scaled_value(NULL, 10, true, 7, &v), 0);
        assert_int_equal(v, 7);
        assert_int_equal(rollout_scaled_value(bad, 10, true, 0, &v), -EINVAL);
        assert_int_equal(rollout_scaled_value(neg, 10, true, 0, &v), -EINVAL);
}

static Obj *md_with(const char *surge, const char *unavailable) {
        Obj *md = obj_new_map();
        assert_non_null(md);
        if (surge)
                assert_true(obj_set(md, "spec.strategy.rollingUpdate.maxSurge",
                                    surge[strlen(surge) - 1] == '%'
                                            ? obj_new_str(surge)
                                            : obj_new_int(atoi(surge))) >= 0);
        if (unavailable)
                assert_true(obj_set(md, "spec.strategy.rollingUpdate.maxUnavailable",
                                    unavailable[strlen(unavailable) - 1] == '%'
                                            ? obj_new_str(unavailable)
                                            : obj_new_int(atoi(unavailable))) >= 0);
        return md;
}

static void test_limits(void **state) {
        (void)state;
        RolloutLimits l;
        _cleanup_(obj_freep) Obj *def = md_with(NULL, NULL);
        assert_int_equal(rollout_limits(def, 3, &l), 0);
        assert_int_equal(l.max_surge, 1);
        assert_int_equal(l.max_unavailable, 0);
        /* both resolve to 0: a rollout could never move, so one may be unavailable */
        _cleanup_(obj_freep) Obj *zero = md_with("0%", "10%");
        assert_int_equal(rollout_limits(zero, 3, &l), 0);
        assert_int_equal(l.max_surge, 0);
        assert_int_equal(l.max_unavailable, 1);
        _cleanup_(obj_freep) Obj *pct = md_with("25%", "25%");
        assert_int_equal(rollout_limits(pct, 5, &l), 0);
        assert_int_equal(l.max_surge, 2);
        assert_int_equal(l.max_unavailable, 1);
}

static void test_new_replicas(void **state) {
        (void)state;
        /* 3 replicas, surge 1: the new set may add one while the old keeps 3 */
        assert_int_equal(rollout_new_replicas(false, 3, 1, 3, 0), 1);
        assert_int_equal(rollout_new_replicas(false, 3, 1, 4, 1), 1);
        assert_int_equal(rollout_new_replicas(false, 3, 1, 3, 1), 2);
        /* OnDelete: only what the old sets gave up */
        assert_int_equal(rollout_new_replicas(true, 3, 1, 3, 0), 0);
        assert_int_equal(rollout_new_replicas(true, 3, 1, 2, 0), 1);
}

/* ---- a simulated rollout ---- */

#define MAXM 64

typedef struct Sim {
        int64_t spec[2];  /* [0] old set, [1] new set */
        int age[2][MAXM]; /* per machine: steps since creation */
        int n[2];
        int ready_after;
} Sim;

static int64_t sim_available(const Sim *s, int set) {
        int64_t a = 0;
        for (int i = 0; i < s->n[set]; i++)
                if (s->age[set][i] >= s->ready_after)
                        a++;
        return a;
}

/* The MachineSet controller: create or delete (not-yet-available machines first). */
static void sim_machinesets(Sim *s) {
        for (int set = 0; set < 2; set++) {
                while (s->n[set] < s->spec[set])
                        s->age[set][s->n[set]++] = 0;
                while (s->n[set] > s->spec[set]) {
                        int victim = s->n[set] - 1;
                        for (int i = 0; i < s->n[set]; i++)
                                if (s->age[set][i] < s->ready_after)
                                        victim = i;
                        s->age[set][victim] = s->age[set][--s->n[set]];
                }
        }
}

static void simulate(int64_t replicas, const char *surge, const char *unavailable,
                     int ready_after) {
        _cleanup_(obj_freep) Obj *md = md_with(surge, unavailable);
        RolloutLimits l;
        assert_int_equal(rollout_limits(md, replicas, &l), 0);
        Sim s = {.spec = {replicas, 0}, .n = {(int)replicas, 0}, .ready_after = ready_after};
        for (int i = 0; i < replicas; i++)
                s.age[0][i] = ready_after;
        int step;
        for (step = 0; step < 200; step++) {
                /* the deployment: grow the new set, then shrink the old one */
                s.spec[1] = rollout_new_replicas(false, replicas, l.max_surge,
                                                 s.spec[0] + s.spec[1], s.spec[1]);
                assert_true(s.spec[0] + s.spec[1] <= replicas + l.max_surge);
                RolloutSet old = {.spec_replicas = s.spec[0],
                                  .available = sim_available(&s, 0) < s.spec[0]
                                                       ? sim_available(&s, 0)
                                                       : s.spec[0]};
                int64_t avail_new =
                        sim_available(&s, 1) < s.spec[1] ? sim_available(&s, 1) : s.spec[1];
                rollout_scale_down_old(&old, 1, replicas, l.max_unavailable, s.spec[1], avail_new);
                s.spec[0] = old.new_replicas;
                sim_machinesets(&s);
                assert_true(sim_available(&s, 0) + sim_available(&s, 1) >=
                            replicas - l.max_unavailable);
                for (int set = 0; set < 2; set++)
                        for (int i = 0; i < s.n[set]; i++)
                                s.age[set][i]++;
                if (s.spec[0] == 0 && s.n[0] == 0 && sim_available(&s, 1) == replicas)
                        break;
        }
        assert_true(step < 200);
        assert_int_equal(s.spec[1], replicas);
}

static void test_rollouts(void **state) {
        (void)state;
        simulate(3, "1", "0", 2);
        simulate(3, "0", "1", 2);
        simulate(6, "3", "1", 3);
        simulate(6, "25%", "25%", 1);
        simulate(5, "0%", "0%", 2); /* both 0 resolve to unavailable 1 */
        simulate(10, "100%", "0", 4);
        simulate(1, "1", "0", 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scaled_values),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_new_replicas),
                cmocka_unit_test(test_rollouts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
