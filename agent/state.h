/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's persisted progress, one YAML file in the state directory, rewritten atomically
 * (temp, fsync, rename, fsync dir) at every transition: enrolled host name, the last
 * acknowledged desired generation with its action and sealed bundle, and the plan — each
 * step's status — so a restart at any moment resumes where it stopped and never runs
 * kubeadm init twice.
 */
#pragma once

#include "obj.h"
#include "schema.h"

typedef enum StepStatus {
        STEP_PENDING,
        STEP_RUNNING,
        STEP_DONE,
        STEP_FAILED,
} StepStatus;

const char *step_status_to_string(StepStatus s);
StepStatus step_status_from_string(const char *s);

/* Loads path; a missing file gives an empty state. A malformed one is -EBADMSG with err set:
 * the agent refuses to guess (guessing could repeat kubeadm init). */
int state_load(const char *path, Obj **ret, char *err, size_t errsz);
/* The same on text already read (path names it in messages); also the fuzz target's entry. */
int state_parse(const char *path, const char *text, size_t size, Obj **ret, char *err,
                size_t errsz);
#define STATE_MAX_SIZE (8U << 20)
int state_save(const char *path, const Obj *state);

extern const SchemaField agent_state_schema[];
