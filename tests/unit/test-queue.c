/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of coordinator/queue.h driven by a real sd-event loop: deduplication, delayed
 * keys, retry with exponential backoff, and re-processing of keys added while being handled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "queue.h"

#define MAX_CALLS 400

typedef struct Call {
        char key[32];
        uint64_t at; /* CLOCK_MONOTONIC µs */
} Call;

typedef struct Ctx {
        sd_event *e;
        Queue *q;
        Call calls[MAX_CALLS];
        size_t n;
        /* Behaviour of the handler. */
        int fail_times;        /* fail this many calls of key "fail" */
        int requeue_usec;      /* "requeue" returns this once */
        int readd_during;      /* add the key again this many times while handling it */
        const char *add_other; /* add this key while handling the first call */
} Ctx;

static int handler(const char *key, void *userdata) {
        Ctx *c = userdata;
        assert_true(c->n < MAX_CALLS);
        Call *call = &c->calls[c->n++];
        snprintf(call->key, sizeof(call->key), "%s", key);
        call->at = now_usec(CLOCK_MONOTONIC);
        if (c->readd_during > 0) {
                int n = c->readd_during;
                c->readd_during = 0;
                for (int i = 0; i < n; i++)
                        assert_int_equal(queue_add(c->q, key), 0);
                /* Not ready while it is being processed. */
                assert_int_equal(queue_length(c->q), 0);
        }
        if (c->add_other) {
                const char *o = c->add_other;
                c->add_other = NULL;
                assert_int_equal(queue_add(c->q, o), 0);
        }
        if (streq(key, "fail") && c->fail_times > 0) {
                c->fail_times--;
                return -EIO;
        }
        if (streq(key, "requeue") && c->requeue_usec > 0) {
                int r = c->requeue_usec;
                c->requeue_usec = 0;
                return r;
        }
        return 0;
}

static int setup(void **state) {
        Ctx *c = calloc(1, sizeof(Ctx));
        if (!c || sd_event_new(&c->e) < 0 || queue_new(c->e, handler, c, &c->q) < 0)
                return -1;
        *state = c;
        return 0;
}

static int teardown(void **state) {
        Ctx *c = *state;
        c->q = queue_free(c->q);
        c->e = sd_event_unref(c->e);
        free(c);
        return 0;
}

/* Runs the loop until the queue has nothing ready or scheduled (or the deadline passes). */
static void run_until_idle(Ctx *c, uint64_t max_usec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + max_usec;
        while (queue_length(c->q) > 0 || queue_delayed(c->q) > 0) {
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        fail_msg("queue not idle after %llu ms: %zu ready, %zu delayed",
                                 (unsigned long long)(max_usec / 1000), queue_length(c->q),
                                 queue_delayed(c->q));
                assert_true(sd_event_run(c->e, 100 * USEC_PER_MSEC) >= 0);
        }
        /* Drain anything dispatched in the same iteration. */
        while (sd_event_run(c->e, 0) > 0)
                ;
}

static size_t count(const Ctx *c, const char *key) {
        size_t n = 0;
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->calls[i].key, key))
                        n++;
        return n;
}

static void test_dedup(void **state) {
        Ctx *c = *state;
        for (int i = 0; i < 100; i++)
                assert_int_equal(queue_add(c->q, "Machine/default/m1"), 0);
        assert_int_equal(queue_add(c->q, "Machine/default/m2"), 0);
        for (int i = 0; i < 10; i++)
                assert_int_equal(queue_add(c->q, "Machine/default/m1"), 0);
        assert_int_equal(queue_length(c->q), 2);
        assert_int_equal(queue_delayed(c->q), 0);
        /* Nothing runs until the loop does. */
        assert_int_equal(c->n, 0);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(c->n, 2);
        /* FIFO. */
        assert_string_equal(c->calls[0].key, "Machine/default/m1");
        assert_string_equal(c->calls[1].key, "Machine/default/m2");
        /* Once handled, the key can be queued again. */
        assert_int_equal(queue_add(c->q, "Machine/default/m1"), 0);
        assert_int_equal(queue_length(c->q), 1);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(count(c, "Machine/default/m1"), 2);
}

static void test_add_after_ordering(void **state) {
        Ctx *c = *state;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(queue_add_after(c->q, "c", 90 * USEC_PER_MSEC), 0);
        assert_int_equal(queue_add_after(c->q, "a", 30 * USEC_PER_MSEC), 0);
        assert_int_equal(queue_add_after(c->q, "b", 60 * USEC_PER_MSEC), 0);
        assert_int_equal(queue_add_after(c->q, "now", 0), 0); /* 0 = add */
        assert_int_equal(queue_length(c->q), 1);
        assert_int_equal(queue_delayed(c->q), 3);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(c->n, 4);
        assert_string_equal(c->calls[0].key, "now");
        assert_string_equal(c->calls[1].key, "a");
        assert_string_equal(c->calls[2].key, "b");
        assert_string_equal(c->calls[3].key, "c");
        /* None ran early. */
        assert_true(c->calls[1].at - t0 >= 30 * USEC_PER_MSEC);
        assert_true(c->calls[2].at - t0 >= 60 * USEC_PER_MSEC);
        assert_true(c->calls[3].at - t0 >= 90 * USEC_PER_MSEC);
        assert_int_equal(queue_delayed(c->q), 0);
}

static void test_earlier_add_wins(void **state) {
        Ctx *c = *state;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        /* A later schedule does not postpone an earlier one... */
        assert_int_equal(queue_add_after(c->q, "k", 40 * USEC_PER_MSEC), 0);
        assert_int_equal(queue_add_after(c->q, "k", 10 * USEC_PER_SEC), 0);
        assert_int_equal(queue_delayed(c->q), 1);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(count(c, "k"), 1);
        assert_true(c->calls[0].at - t0 < 5 * USEC_PER_SEC);
        /* ...an earlier one advances it... */
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(queue_add_after(c->q, "k", 10 * USEC_PER_SEC), 0);
        assert_int_equal(queue_add_after(c->q, "k", 20 * USEC_PER_MSEC), 0);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(count(c, "k"), 2);
        assert_true(c->calls[1].at - t0 < 5 * USEC_PER_SEC);
        /* ...and a plain add makes a scheduled key ready at once. */
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(queue_add_after(c->q, "k", 10 * USEC_PER_SEC), 0);
        assert_int_equal(queue_delayed(c->q), 1);
        assert_int_equal(queue_add(c->q, "k"), 0);
        assert_int_equal(queue_delayed(c->q), 0);
        assert_int_equal(queue_length(c->q), 1);
        /* A ready key ignores add_after. */
        assert_int_equal(queue_add_after(c->q, "k", 10 * USEC_PER_SEC), 0);
        assert_int_equal(queue_delayed(c->q), 0);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(count(c, "k"), 3);
        assert_true(c->calls[2].at - t0 < USEC_PER_SEC);
}

static void test_failure_retried_with_backoff(void **state) {
        Ctx *c = *state;
        c->fail_times = 4;
        assert_int_equal(queue_add(c->q, "fail"), 0);
        assert_int_equal(queue_add(c->q, "ok"), 0);
        run_until_idle(c, 10 * USEC_PER_SEC);
        /* Four failures, then success; the healthy key was not held up. */
        assert_int_equal(count(c, "fail"), 5);
        assert_int_equal(count(c, "ok"), 1);
        assert_string_equal(c->calls[0].key, "fail");
        assert_string_equal(c->calls[1].key, "ok");
        /* Backoff doubles from 5 ms: gaps of at least 5, 10, 20, 40 ms. */
        uint64_t prev = 0, want = 5 * USEC_PER_MSEC;
        size_t seen = 0;
        for (size_t i = 0; i < c->n; i++) {
                if (!streq(c->calls[i].key, "fail"))
                        continue;
                if (seen > 0) {
                        uint64_t gap = c->calls[i].at - prev;
                        if (gap < want)
                                fail_msg("retry %zu after %llu µs, expected >= %llu", seen,
                                         (unsigned long long)gap, (unsigned long long)want);
                        want *= 2;
                }
                prev = c->calls[i].at;
                seen++;
        }
        /* Success forgets the key and its backoff: the next failure starts at 5 ms again. */
        assert_int_equal(queue_length(c->q), 0);
        assert_int_equal(queue_delayed(c->q), 0);
        c->fail_times = 1;
        size_t before = c->n;
        assert_int_equal(queue_add(c->q, "fail"), 0);
        run_until_idle(c, 10 * USEC_PER_SEC);
        assert_int_equal(c->n, before + 2);
        uint64_t gap = c->calls[before + 1].at - c->calls[before].at;
        assert_true(gap >= 5 * USEC_PER_MSEC);
        assert_true(gap < 70 * USEC_PER_MSEC); /* a remembered backoff would be 80 ms */
}

static void test_added_while_processing(void **state) {
        Ctx *c = *state;
        /* Added (three times) while being handled: handled exactly once more. */
        c->readd_during = 3;
        assert_int_equal(queue_add(c->q, "k"), 0);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(count(c, "k"), 2);
        /* Another key added from a handler is processed in the same run. */
        c->add_other = "other";
        assert_int_equal(queue_add(c->q, "first"), 0);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(count(c, "first"), 1);
        assert_int_equal(count(c, "other"), 1);
        /* A key that fails but was added again while being handled is retried at once (the
         * new change), not after its backoff. */
        c->fail_times = 1;
        c->readd_during = 1;
        assert_int_equal(queue_add(c->q, "fail"), 0);
        assert_int_equal(queue_run_ready(c->q), 2);
        assert_int_equal(count(c, "fail"), 2);
        assert_int_equal(queue_delayed(c->q), 0);
        /* A plain add also cuts a backoff short. */
        c->fail_times = 1;
        assert_int_equal(queue_add(c->q, "fail"), 0);
        assert_int_equal(queue_run_ready(c->q), 1);
        assert_int_equal(queue_delayed(c->q), 1); /* backing off */
        assert_int_equal(queue_length(c->q), 0);
        assert_int_equal(queue_add(c->q, "fail"), 0);
        assert_int_equal(queue_delayed(c->q), 0);
        assert_int_equal(queue_run_ready(c->q), 1);
        assert_int_equal(count(c, "fail"), 4);
}

static void test_requeue_after(void **state) {
        Ctx *c = *state;
        c->requeue_usec = 30 * USEC_PER_MSEC;
        assert_int_equal(queue_add(c->q, "requeue"), 0);
        assert_int_equal(queue_run_ready(c->q), 1);
        assert_int_equal(count(c, "requeue"), 1);
        assert_int_equal(queue_delayed(c->q), 1);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(count(c, "requeue"), 2);
        assert_true(c->calls[1].at - c->calls[0].at >= 30 * USEC_PER_MSEC);
}

static void test_run_ready_and_batches(void **state) {
        Ctx *c = *state;
        assert_int_equal(queue_run_ready(c->q), 0);
        /* Without the loop. */
        for (int i = 0; i < 40; i++) {
                char k[16];
                snprintf(k, sizeof(k), "r%d", i);
                assert_int_equal(queue_add(c->q, k), 0);
        }
        assert_int_equal(queue_run_ready(c->q), 40);
        assert_int_equal(queue_length(c->q), 0);
        /* More than one batch (256 per dispatch) through the loop. */
        size_t before = c->n;
        for (int i = 0; i < 300; i++) {
                char k[16];
                snprintf(k, sizeof(k), "k%d", i);
                assert_int_equal(queue_add(c->q, k), 0);
        }
        assert_int_equal(queue_length(c->q), 300);
        assert_true(sd_event_run(c->e, 100 * USEC_PER_MSEC) > 0);
        assert_int_equal(c->n - before, 256);
        run_until_idle(c, 5 * USEC_PER_SEC);
        assert_int_equal(c->n - before, 300);
        assert_string_equal(c->calls[c->n - 1].key, "k299");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
                cmocka_unit_test_setup_teardown(test_add_after_ordering, setup, teardown),
                cmocka_unit_test_setup_teardown(test_earlier_add_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failure_retried_with_backoff, setup, teardown),
                cmocka_unit_test_setup_teardown(test_added_while_processing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_requeue_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_ready_and_batches, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
