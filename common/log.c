/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <sys/uio.h>
/* Without this, sd_journal_sendv() is a macro that adds log.c's own CODE_FILE/LINE/FUNC next
 * to the caller's ones we send: every entry would carry both. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <time.h>

#include "log.h"

static const char *const field_names[_LOG_FIELD_MAX] = {
        [LOG_FIELD_HOST] = "ANVIL_HOST",
        [LOG_FIELD_MACHINE] = "ANVIL_MACHINE",
        [LOG_FIELD_CLUSTER] = "ANVIL_CLUSTER",
        [LOG_FIELD_STEP] = "ANVIL_STEP",
        [LOG_FIELD_GENERATION] = "ANVIL_GENERATION",
};

static const char *const short_names[_LOG_FIELD_MAX] = {
        [LOG_FIELD_HOST] = "host",
        [LOG_FIELD_MACHINE] = "machine",
        [LOG_FIELD_CLUSTER] = "cluster",
        [LOG_FIELD_STEP] = "step",
        [LOG_FIELD_GENERATION] = "generation",
};

static struct {
        char ident[64];
        int max_level;
        bool journal;
        char *fields[_LOG_FIELD_MAX];
} L = {
        .ident = "anvil",
        .max_level = LOG_INFO,
};

void log_setup(const char *ident, LogTarget target) {
        snprintf(L.ident, sizeof(L.ident), "%s", ident);
        switch (target) {
        case LOG_TARGET_JOURNAL:
                L.journal = true;
                break;
        case LOG_TARGET_STDERR:
                L.journal = false;
                break;
        case LOG_TARGET_AUTO:
        default:
                /* Under systemd our stderr is already a journal stream; logging natively keeps the
                 * structured fields. Elsewhere (the demo, tests, no systemd) use stderr. */
                L.journal = access("/run/systemd/journal/socket", W_OK) == 0 &&
                            getenv("JOURNAL_STREAM") != NULL;
                break;
        }
        const char *lvl = getenv("ANVIL_LOG_LEVEL");
        if (lvl) {
                int l = log_level_from_string(lvl);
                if (l >= 0)
                        L.max_level = l;
        }
}

void log_set_max_level(int level) {
        L.max_level = level;
}

int log_get_max_level(void) {
        return L.max_level;
}

const char *log_ident(void) {
        return L.ident;
}

bool log_to_journal(void) {
        return L.journal;
}

int log_level_from_string(const char *s) {
        static const struct {
                const char *name;
                int level;
        } t[] = {
                {"emerg", LOG_EMERG},  {"alert", LOG_ALERT},   {"crit", LOG_CRIT},
                {"err", LOG_ERR},      {"error", LOG_ERR},     {"warning", LOG_WARNING},
                {"warn", LOG_WARNING}, {"notice", LOG_NOTICE}, {"info", LOG_INFO},
                {"debug", LOG_DEBUG},
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (streq(s, t[i].name))
                        return t[i].level;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                            "warning", "notice", "info", "debug"};
        return level >= 0 && level < (int)ELEMENTSOF(names) ? names[level] : "?";
}

void log_field_set(LogField f, const char *value) {
        if (f < 0 || f >= _LOG_FIELD_MAX)
                return;
        free(L.fields[f]);
        L.fields[f] = value ? strdup(value) : NULL;
}

const char *log_field_get(LogField f) {
        if (f < 0 || f >= _LOG_FIELD_MAX)
                return NULL;
        return L.fields[f];
}

LogFieldSaved log_field_push(LogField f, const char *value) {
        LogFieldSaved s = {.field = f, .previous = L.fields[f]};
        L.fields[f] = value ? strdup(value) : NULL;
        return s;
}

void log_field_restore(LogFieldSaved *s) {
        free(L.fields[s->field]);
        L.fields[s->field] = s->previous;
        s->previous = NULL;
}

static const char *level_prefix(int level) {
        switch (level) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
        case LOG_ERR:
                return "error: ";
        case LOG_WARNING:
                return "warning: ";
        case LOG_DEBUG:
                return "debug: ";
        default:
                return "";
        }
}

static void log_to_stderr(int level, const char *msg, const char *const *extra) {
        char ctx[512];
        size_t n = 0;
        ctx[0] = 0;
        for (int f = 0; f < _LOG_FIELD_MAX; f++) {
                if (!L.fields[f] || n >= sizeof(ctx))
                        continue;
                int k = snprintf(ctx + n, sizeof(ctx) - n, "%s%s=%s", n ? " " : "", short_names[f],
                                 L.fields[f]);
                if (k > 0)
                        n += (size_t)k;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        localtime_r(&ts.tv_sec, &tm);
        char stamp[32];
        strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
        (void)extra;
        fprintf(stderr, "%s.%03ld %s[%d]: %s%s%s%s%s\n", stamp, ts.tv_nsec / 1000000, L.ident,
                (int)getpid(), level_prefix(level), msg, n ? " [" : "", ctx, n ? "]" : "");
}

static void log_to_journald(int level, int error, const char *file, int line, const char *func,
                            const char *message_id, const char *const *extra, const char *msg) {
        struct iovec iov[32];
        char *bufs[32];
        int n = 0;

#define ADD(...)                                                                                   \
        do {                                                                                       \
                if (n < (int)ELEMENTSOF(iov)) {                                                    \
                        bufs[n] = asprintf_safe(__VA_ARGS__);                                      \
                        if (bufs[n]) {                                                             \
                                iov[n].iov_base = bufs[n];                                         \
                                iov[n].iov_len = strlen(bufs[n]);                                  \
                                n++;                                                               \
                        }                                                                          \
                }                                                                                  \
        } while (0)

        ADD("MESSAGE=%s", msg);
        ADD("PRIORITY=%d", level);
        ADD("SYSLOG_IDENTIFIER=%s", L.ident);
        ADD("CODE_FILE=%s", file);
        ADD("CODE_LINE=%d", line);
        ADD("CODE_FUNC=%s", func);
        if (error != 0)
                ADD("ERRNO=%d", abs(error));
        if (message_id)
                ADD("MESSAGE_ID=%s", message_id);
        for (int f = 0; f < _LOG_FIELD_MAX; f++)
                if (L.fields[f])
                        ADD("%s=%s", field_names[f], L.fields[f]);
        for (const char *const *e = extra; e && *e; e++)
                ADD("%s", *e);
#undef ADD
        sd_journal_sendv(iov, n);
        for (int i = 0; i < n; i++)
                free(bufs[i]);
}

int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *message_id, const char *const *extra, const char *fmt, va_list ap) {
        int saved = errno;
        char msg[2048];

        if (level > L.max_level)
                return -abs(error);

        /* Make %m print the error we were handed, not whatever errno happens to be. */
        if (error != 0)
                errno = abs(error);
        vsnprintf(msg, sizeof(msg), fmt, ap);

        if (L.journal)
                log_to_journald(level, error, file, line, func, message_id, extra, msg);
        else
                log_to_stderr(level, msg, extra);

        errno = saved;
        return -abs(error);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *message_id, const char *const *extra, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_internalv(level, error, file, line, func, message_id, extra, fmt, ap);
        va_end(ap);
        return r;
}
