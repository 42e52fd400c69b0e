/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by every Anvil translation unit: cleanup attributes for ownership,
 * ownership hand-over (TAKE_PTR), and errno conversions at library boundaries.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)  __attribute__((cleanup(f)))
#define _unused_      __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_    __attribute__((noreturn))
#define _pure_        __attribute__((pure))
#define _sentinel_    __attribute__((sentinel))
#define _likely_(x)   __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Hands ownership out of a _cleanup_ variable: returns the pointer and clears the variable. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _ptr_ = (p);                                                         \
                (p) = NULL;                                                                        \
                _ptr_;                                                                             \
        })

#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd_ = (fd);                                                                   \
                (fd) = -1;                                                                         \
                _fd_;                                                                              \
        })

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p) {                                                      \
                if (*p)                                                                            \
                        *p = func(*p);                                                             \
        }

static inline void freep(void *p) {
        free(*(void **)p);
        *(void **)p = NULL;
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
        *fd = -1;
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
        *f = NULL;
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void strv_freep(char ***p);

/* Returns -errno for the last libc failure, never 0 (so a caller can rely on r < 0). */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

#define streq(a, b) (strcmp((a), (b)) == 0)

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

/* NULL-terminated string vectors. */
char **strv_free(char **l);
size_t strv_length(char *const *l);
int strv_push(char ***l, char *value); /* takes ownership of value, even on failure */
int strv_extend(char ***l, const char *value);
bool strv_contains(char *const *l, const char *s);

static inline void strv_freep(char ***p) {
        *p = strv_free(*p);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Tiny string helpers: all return NULL on OOM. */
char *strjoin_real(const char *a, ...) _sentinel_;
#define strjoin(a, ...) strjoin_real((a), __VA_ARGS__, NULL)
char *asprintf_safe(const char *fmt, ...) _printf_(1, 2);

/* Monotonic and realtime clocks in microseconds. */
uint64_t now_usec(int clock);
#define USEC_PER_SEC  1000000ULL
#define USEC_PER_MSEC 1000ULL
#define NSEC_PER_USEC 1000ULL
