/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Controller helpers in Cluster API's shape: conditions (v1beta1 Condition with severity,
 * lastTransitionTime moved only on a status change, sorted Ready-first), and the patch
 * helper that writes an object back only where it changed (metadata/spec via update,
 * status via the status subresource), so a reconcile that changes nothing writes nothing.
 */
#pragma once

#include "obj.h"
#include "registry.h"

#define COND_TRUE    "True"
#define COND_FALSE   "False"
#define COND_UNKNOWN "Unknown"

#define SEVERITY_ERROR   "Error"
#define SEVERITY_WARNING "Warning"
#define SEVERITY_INFO    "Info"

/* Sets condition type on obj's status.conditions. reason/severity/message may be NULL
 * (a True condition carries none, as in Cluster API). */
int condition_set(Obj *obj, const char *type, const char *status, const char *reason,
                  const char *severity, const char *fmt, ...) _printf_(6, 7);
int condition_set_true(Obj *obj, const char *type);
const Obj *condition_get(const Obj *obj, const char *type);
bool condition_is_true(const Obj *obj, const char *type);
const char *condition_reason(const Obj *obj, const char *type);
const char *condition_message(const Obj *obj, const char *type);

/* Writes obj back if it differs from orig (the object as read). Returns 1 if anything was
 * written, 0 if unchanged, -ESTALE on conflict (the caller's reconcile is simply retried). */
int patch_save(Registry *reg, const Obj *orig, Obj *obj);

/* Current time as RFC 3339. */
const char *now_rfc3339(char buf[static 32]);

/* Parses a Kubernetes duration field, returning def when absent. */
uint64_t duration_field(const Obj *o, const char *path, uint64_t def_usec);
