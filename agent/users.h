/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The users step of a provision plan: the KubeadmConfig's users (the bundle's "users", see
 * common/bundle.c), applied the way cloud-init's users_groups module applies them for Cluster
 * API, with the host's own shadow tools, in this order:
 *
 *   1. each sudo rule is written to a temporary file beside its place in /etc/sudoers.d (a
 *      name with a "." in it, which sudo skips) and checked with `visudo -cf`, before any
 *      account changes: a rule visudo refuses changes nothing else;
 *   2. missing groups (supplementary and primary) are created: groupadd NAME;
 *   3. a new user: useradd --create-home [--comment] [--home-dir] [--shell] [--gid] [--groups]
 *      NAME; an existing one (made by hand, or by this step before the agent crashed):
 *      usermod --append --groups only (cloud-init leaves an existing user's other
 *      attributes alone, and so does this step);
 *   4. usermod --password HASH (the hash never logged), then usermod --lock unless
 *      lockPassword is false, with --expiredate 1 when inactive;
 *   5. the rules are renamed to /etc/sudoers.d/<name> ("." in the name becomes "_"; mode
 *      0440) and the keys added to ~/.ssh/authorized_keys (directory 0700, file 0600, both
 *      owned by the user as /etc/passwd says; keys already there stay, as cloud-init merges).
 *
 * Every shadow command gets --prefix HOST_ROOT when the agent's host root is not "/" (it then
 * edits HOST_ROOT/etc/passwd, group, shadow and gshadow). Running the step again is safe:
 * what exists is adjusted, nothing is created twice, so a step resumed after a crash
 * finishes. Commands run one at a time as children of the event loop (exec.c: output in the
 * journal with the step's fields, secrets redacted), each with the command timeout. Expected
 * load: a handful of users, once per machine.
 */
#pragma once

#include <systemd/sd-event.h>

#include "agent-config.h"
#include "obj.h"

typedef struct UsersJob UsersJob;

/* code: 0 on success, else the failing command's exit status, or -1 when no command failed
 * (a file could not be written, a program is missing); message says what failed; tail is the
 * failing command's last output lines (or NULL). Called from the event loop, never from inside
 * users_job_start(); the callee may free the job. */
typedef void (*UsersDone)(int code, const char *message, const char *tail, void *userdata);

/* Starts applying users (a list of bundle users) with environment env (copied). c must
 * outlive the job. On failure to start, err says why and nothing has changed. */
int users_job_start(sd_event *e, const AgentConfig *c, const Obj *users, char **env, UsersDone done,
                    void *userdata, UsersJob **ret, char *err, size_t errsz);
/* Stops a running command (SIGKILL) without calling done; removes temporary files. */
UsersJob *users_job_free(UsersJob *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(UsersJob *, users_job_free);

/* The sudoers.d file of user name: /etc/sudoers.d/<name> with "." made "_" (sudo ignores
 * files whose names contain a "."). NULL on OOM. */
char *users_sudoers_path(const char *name);
/* authorized_keys text: existing (may be NULL) plus every key of keys (a list of strings)
 * not already one of its lines, each on its own line. NULL on OOM. */
char *users_merge_keys(const char *existing, const Obj *keys);
