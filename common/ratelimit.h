/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fixed-window rate limit for log lines about peer input: at most
 * `burst` lines per `interval`, then silence until the window ends, and the next line that
 * gets through says how many were suppressed. A hostile or broken peer must not be able to
 * flood the journal; the first lines of an incident are the ones an operator needs.
 */
#pragma once

#include <time.h>

#include "macro.h"

typedef struct RateLimit {
        uint64_t interval; /* µs */
        unsigned burst;
        uint64_t begin;      /* CLOCK_MONOTONIC start of the current window */
        unsigned n;          /* lines let through in this window */
        unsigned suppressed; /* lines refused since the last one let through */
} RateLimit;

#define RATELIMIT_INIT(interval_usec, burst_n)                                                     \
        { .interval = (interval_usec), .burst = (burst_n) }

/* True if a line may be logged now. *ret_suppressed (may be NULL) gets the number of lines
 * dropped since the last one allowed, so the caller can mention them. */
static inline bool ratelimit_below(RateLimit *rl, unsigned *ret_suppressed) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (rl->begin == 0 || now >= rl->begin + rl->interval) {
                rl->begin = now;
                rl->n = 0;
        }
        if (rl->n >= rl->burst) {
                rl->suppressed++;
                return false;
        }
        rl->n++;
        if (ret_suppressed)
                *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
}
