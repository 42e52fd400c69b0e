/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exec: one child process (kubeadm, kubectl or an operator's command) run from the agent's
 * event loop. posix_spawn with a clean environment, stdin from /dev/null, its own session
 * (so a timeout kills the whole process group), stdout and stderr read line by line into
 * the journal with the step's fields (and ANVIL_STREAM), the last lines kept for the
 * coordinator, a timeout (SIGTERM, then SIGKILL ten seconds later). No shell unless the
 * caller asks for one (an operator's command line, as cloud-init runs them).
 */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"

#define EXEC_TAIL_MAX 4096

typedef struct Exec Exec;

/* exit_code: the process's exit status, 128+N if killed by signal N, -ETIMEDOUT on timeout,
 * or a negative errno when it could not be started. tail: the last lines of output. */
typedef void (*ExecDone)(Exec *e, int exit_code, const char *tail, void *userdata);

typedef struct ExecSpec {
        char **argv;
        char **envp;
        uint64_t timeout_usec;
        bool quiet;          /* log output lines at debug level (polling commands) */
        bool capture_stdout; /* keep the whole stdout (bounded) for the caller */
} ExecSpec;

int exec_start(sd_event *e, const ExecSpec *spec, ExecDone done, void *userdata, Exec **ret);
/* Kills a running child (SIGKILL to its group) without calling done. */
Exec *exec_free(Exec *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(Exec *, exec_free);
/* stdout when capture_stdout was set (valid until exec_free). */
const char *exec_stdout(Exec *x);
pid_t exec_pid(Exec *x);
