/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include "exec.h"
#include "log.h"
#include "redact.h"

#define LINE_MAX_LEN    4096
#define CAPTURE_MAX     (1U << 20)
#define KILL_GRACE_USEC (10 * USEC_PER_SEC)

typedef struct Stream {
        Exec *x;
        int fd;
        sd_event_source *src;
        const char *name; /* "stdout" / "stderr" */
        char buf[LINE_MAX_LEN];
        size_t len;
        bool eof;
} Stream;

struct Exec {
        sd_event *event;
        pid_t pid;
        sd_event_source *child, *timer;
        Stream out, err;
        ExecDone done;
        void *userdata;
        bool exited, timed_out, quiet, capture;
        int status;
        char tail[EXEC_TAIL_MAX];
        size_t tail_len;
        char *captured;
        size_t captured_len;
};

static void tail_add(Exec *x, const char *line, size_t n) {
        /* Keep the last EXEC_TAIL_MAX bytes of whole lines. */
        if (n + 1 > EXEC_TAIL_MAX)
                n = EXEC_TAIL_MAX - 1;
        while (x->tail_len + n + 1 > EXEC_TAIL_MAX) {
                char *nl = memchr(x->tail, '\n', x->tail_len);
                size_t drop = nl ? (size_t)(nl - x->tail) + 1 : x->tail_len;
                memmove(x->tail, x->tail + drop, x->tail_len - drop);
                x->tail_len -= drop;
        }
        memcpy(x->tail + x->tail_len, line, n);
        x->tail_len += n;
        x->tail[x->tail_len++] = '\n';
}

static void emit_line(Stream *s, char *line, size_t n) {
        Exec *x = s->x;
        /* kubeadm prints its join token and certificate key: neither reaches the journal,
         * nor the output tail that goes to the coordinator. */
        n = redact_secrets(line, n);
        char field[32];
        snprintf(field, sizeof(field), "ANVIL_STREAM=%s", s->name);
        const char *extra[] = {field, NULL};
        log_with_fields(x->quiet ? LOG_DEBUG : LOG_INFO, extra, "%.*s", (int)n, line);
        tail_add(x, line, n);
}

static void finish(Exec *x) {
        if (!x->exited || !x->out.eof || !x->err.eof || !x->done)
                return;
        /* flush partial lines */
        if (x->out.len)
                emit_line(&x->out, x->out.buf, x->out.len);
        if (x->err.len)
                emit_line(&x->err, x->err.buf, x->err.len);
        x->out.len = x->err.len = 0;
        if (x->tail_len > 0 && x->tail[x->tail_len - 1] == '\n')
                x->tail_len--;
        x->tail[x->tail_len] = 0;
        int code = x->timed_out ? -ETIMEDOUT : x->status;
        ExecDone done = x->done;
        x->done = NULL;
        done(x, code, x->tail, x->userdata);
}

static int on_output(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Stream *s = userdata;
        Exec *x = s->x;
        (void)es;
        (void)revents;
        for (;;) {
                char chunk[4096];
                ssize_t k = read(fd, chunk, sizeof(chunk));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        k = 0;
                }
                if (k == 0) {
                        s->eof = true;
                        sd_event_source_set_enabled(s->src, SD_EVENT_OFF);
                        finish(x);
                        return 0;
                }
                if (x->capture && s == &x->out && x->captured_len + (size_t)k <= CAPTURE_MAX) {
                        char *n = realloc(x->captured, x->captured_len + (size_t)k + 1);
                        if (n) {
                                memcpy(n + x->captured_len, chunk, (size_t)k);
                                x->captured = n;
                                x->captured_len += (size_t)k;
                                x->captured[x->captured_len] = 0;
                        }
                }
                for (ssize_t i = 0; i < k; i++) {
                        char ch = chunk[i];
                        if (ch == '\n' || s->len == sizeof(s->buf)) {
                                emit_line(s, s->buf, s->len);
                                s->len = 0;
                                if (ch == '\n')
                                        continue;
                        }
                        s->buf[s->len++] = ch == '\r' ? ' ' : ch;
                }
        }
}

static int on_child(sd_event_source *es, const siginfo_t *si, void *userdata) {
        Exec *x = userdata;
        (void)es;
        x->exited = true;
        if (si->si_code == CLD_EXITED)
                x->status = si->si_status;
        else
                x->status = 128 + si->si_status;
        sd_event_source_set_enabled(x->timer, SD_EVENT_OFF);
        finish(x);
        return 0;
}

static int on_timeout(sd_event_source *es, uint64_t usec, void *userdata) {
        Exec *x = userdata;
        if (x->exited)
                return 0;
        if (!x->timed_out) {
                x->timed_out = true;
                log_warning("Command (pid %d) timed out, sending SIGTERM.", (int)x->pid);
                (void)kill(-x->pid, SIGTERM);
                sd_event_source_set_time(es, usec + KILL_GRACE_USEC);
                sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
        } else {
                log_warning("Command (pid %d) ignored SIGTERM, sending SIGKILL.", (int)x->pid);
                (void)kill(-x->pid, SIGKILL);
        }
        return 0;
}

static int setup_stream(Exec *x, Stream *s, int fd, const char *name) {
        s->x = x;
        s->fd = fd;
        s->name = name;
        return sd_event_add_io(x->event, &s->src, fd, EPOLLIN, on_output, s);
}

int exec_start(sd_event *e, const ExecSpec *spec, ExecDone done, void *userdata, Exec **ret) {
        _cleanup_(exec_freep) Exec *x = calloc(1, sizeof(Exec));
        if (!x)
                return -ENOMEM;
        x->event = sd_event_ref(e);
        x->out.fd = x->err.fd = -1;
        x->quiet = spec->quiet;
        x->capture = spec->capture_stdout;
        int out[2], err[2];
        if (pipe2(out, O_CLOEXEC | O_NONBLOCK) < 0)
                return negative_errno();
        if (pipe2(err, O_CLOEXEC | O_NONBLOCK) < 0) {
                int r = negative_errno();
                close(out[0]);
                close(out[1]);
                return r;
        }
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETSIGDEF);
        pid_t pid;
        int r = posix_spawn(&pid, spec->argv[0], &fa, &attr, spec->argv, spec->envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        close(out[1]);
        close(err[1]);
        if (r != 0) {
                close(out[0]);
                close(err[0]);
                return -r;
        }
        x->pid = pid;
        x->done = done;
        x->userdata = userdata;
        if ((r = setup_stream(x, &x->out, out[0], "stdout")) < 0 ||
            (r = setup_stream(x, &x->err, err[0], "stderr")) < 0 ||
            (r = sd_event_add_child(e, &x->child, pid, WEXITED, on_child, x)) < 0)
                return r;
        if (spec->timeout_usec > 0) {
                r = sd_event_add_time_relative(e, &x->timer, CLOCK_MONOTONIC, spec->timeout_usec,
                                               USEC_PER_SEC, on_timeout, x);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(x);
        return 0;
}

Exec *exec_free(Exec *x) {
        if (!x)
                return NULL;
        if (x->pid > 0 && !x->exited) {
                (void)kill(-x->pid, SIGKILL);
                (void)waitpid(x->pid, NULL, 0);
        }
        sd_event_source_disable_unref(x->child);
        sd_event_source_disable_unref(x->timer);
        sd_event_source_disable_unref(x->out.src);
        sd_event_source_disable_unref(x->err.src);
        if (x->out.fd >= 0)
                close(x->out.fd);
        if (x->err.fd >= 0)
                close(x->err.fd);
        free(x->captured);
        sd_event_unref(x->event);
        free(x);
        return NULL;
}

const char *exec_stdout(Exec *x) {
        return x->captured ? x->captured : "";
}

pid_t exec_pid(Exec *x) {
        return x->pid;
}
