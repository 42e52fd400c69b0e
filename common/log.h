/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging for both daemons and anvilctl.
 *
 * When journald is reachable every line goes there natively with structured fields:
 * PRIORITY, CODE_FILE/LINE/FUNC, ERRNO, SYSLOG_IDENTIFIER, MESSAGE_ID for key events, and the
 * Anvil context fields (ANVIL_HOST, ANVIL_MACHINE, ANVIL_CLUSTER, ANVIL_STEP,
 * ANVIL_GENERATION) that are set at that moment. Otherwise (no systemd as PID 1, the demo,
 * tests) lines go to stderr with the context fields appended, so nothing is lost.
 *
 * The context is process-global: both daemons are single-threaded event loops, so a
 * LOG_FIELD_SCOPE() around a reconcile or a step is exact.
 *
 * Following systemd: the log_*_errno() helpers return the negative error they were given, so
 * `return log_error_errno(r, "...: %m");` logs once and propagates. %m prints strerror(-r).
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

typedef enum LogField {
        LOG_FIELD_HOST,
        LOG_FIELD_MACHINE,
        LOG_FIELD_CLUSTER,
        LOG_FIELD_STEP,
        LOG_FIELD_GENERATION,
        _LOG_FIELD_MAX,
} LogField;

typedef enum LogTarget {
        LOG_TARGET_AUTO, /* journald if its socket exists, else stderr */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
} LogTarget;

/* Stable MESSAGE_IDs for the events an operator searches for. One ID is logged by one
 * daemon and explained in its catalog (units/anvil-agent.catalog,
 * units/anvil-coordinator.catalog): journald merges catalog entries that share an ID. */
#define ANVIL_MESSAGE_ENROLLED        "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c60"
#define ANVIL_MESSAGE_STEP_STARTED    "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c61"
#define ANVIL_MESSAGE_STEP_FINISHED   "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c62"
#define ANVIL_MESSAGE_STEP_FAILED     "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c63"
#define ANVIL_MESSAGE_MACHINE_DELETED "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c64"
#define ANVIL_MESSAGE_HOST_RESET      "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c65"
#define ANVIL_MESSAGE_ENROLL_REFUSED  "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c66"
#define ANVIL_MESSAGE_DESIRED         "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c67"
/* The coordinator's side of enrollment and reset. */
#define ANVIL_MESSAGE_HOST_ENROLLED      "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c68"
#define ANVIL_MESSAGE_ENROLLMENT_REFUSED "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c69"
#define ANVIL_MESSAGE_HOST_RELEASED      "6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c6a"

void log_setup(const char *ident, LogTarget target);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);   /* -EINVAL if unknown */
const char *log_level_to_string(int level); /* "debug", "info", ... */
const char *log_ident(void);
bool log_to_journal(void);

/* Context fields. Values are copied. NULL clears. */
void log_field_set(LogField f, const char *value);
const char *log_field_get(LogField f);

/* A scoped override: restores the previous value when the scope ends. */
typedef struct LogFieldSaved {
        LogField field;
        char *previous;
} LogFieldSaved;
LogFieldSaved log_field_push(LogField f, const char *value);
void log_field_restore(LogFieldSaved *s);
#define LOG_CONCAT_(a, b) a##b
#define LOG_CONCAT(a, b)  LOG_CONCAT_(a, b)
#define LOG_FIELD_SCOPE(f, v)                                                                      \
        _cleanup_(log_field_restore) _unused_ LogFieldSaved LOG_CONCAT(_logscope_, __LINE__) =     \
                log_field_push((f), (v))

/* extra: NULL-terminated "KEY=value" strings added to this one line (may be NULL). */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *message_id, const char *const *extra, const char *fmt, ...)
        _printf_(8, 9);
int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *message_id, const char *const *extra, const char *fmt, va_list ap)
        _printf_(8, 0);

#define log_full_errno(level, error, ...)                                                          \
        ({                                                                                         \
                int _l = (level), _e = (error);                                                    \
                (log_get_max_level() >= _l) ? log_internal(_l, _e, __FILE__, __LINE__, __func__,   \
                                                           NULL, NULL, __VA_ARGS__)                \
                                            : -abs(_e);                                            \
        })
#define log_full(level, ...) (void)log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_notice_errno(e, ...)  log_full_errno(LOG_NOTICE, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, (e), __VA_ARGS__)

/* A key event with a MESSAGE_ID (always logged at the given level). */
#define log_event(level, id, ...)                                                                  \
        (void)log_internal((level), 0, __FILE__, __LINE__, __func__, (id), NULL, __VA_ARGS__)

/* A line with extra one-off fields, e.g. a child's output line with ANVIL_STREAM=stderr. */
#define log_with_fields(level, extra, ...)                                                         \
        (void)log_internal((level), 0, __FILE__, __LINE__, __func__, NULL, (extra), __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")
