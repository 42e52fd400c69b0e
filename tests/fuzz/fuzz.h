/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the fuzz targets (one decoder of untrusted bytes each). A target is built two
 * ways: with clang's libFuzzer (-DANVIL_FUZZ=ON, scripts/fuzz.sh) to search for crashes, and
 * with replay-main.c into the normal (ASan) test build, where ctest replays its corpus
 * (tests/fuzz/corpus/<target>/) as a regression test.
 *
 * FUZZ_CHECK() is for invariants the decoders promise (a decoded message re-encodes and
 * decodes to the same value): a violation aborts, which both builds report as a failure.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
                                #cond);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* Decoders run quietly: only what a decoder logs at debug would show, and nothing should. */
static inline void fuzz_setup(void) {
        static int done;
        if (!done) {
                log_setup("fuzz", LOG_TARGET_STDERR);
                log_set_max_level(LOG_ERR);
                done = 1;
        }
}

/* A NUL-terminated copy of the input (text decoders take C strings). */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                abort();
        if (size)
                memcpy(s, data, size);
        s[size] = 0;
        return s;
}
