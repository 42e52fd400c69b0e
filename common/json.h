/* SPDX-License-Identifier: Apache-2.0 */
/* JSON <-> Obj with json-c: `-o json` output, and the agent reading `kubectl -o json`. */
#pragma once

#include "obj.h"

#define JSON_MAX_DEPTH 64

/* pretty: two-space indentation as kubectl prints. */
int json_emit(const Obj *o, bool pretty, char **ret);
/* Strict: one value, bounded depth, nothing after it. -EBADMSG on malformed input. */
int json_parse(const char *text, size_t size, Obj **ret);
