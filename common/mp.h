/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgpack <-> Obj, on top of msgpack-c.
 *
 * Decoding is strict and bounded: one complete object that uses the whole buffer, nesting at
 * most MP_MAX_DEPTH, at most MP_MAX_NODES nodes, map keys must be strings, no ext types, and
 * binary strings are refused (Anvil's wire carries text; sealed data travels base64).
 *
 * msgpack-c allocates a container's declared size before reading its elements, so a 5-byte
 * input can ask it for gigabytes. mp_decode() therefore first skims the container headers and
 * refuses any container that declares more elements than bytes remain, before handing the
 * buffer to msgpack-c.
 */
#pragma once

#include "obj.h"

#define MP_MAX_DEPTH 32
#define MP_MAX_NODES 200000

int mp_encode(const Obj *o, char **ret, size_t *ret_size);
int mp_decode(const void *buf, size_t size, Obj **ret);
/* With an explicit node budget (admin responses carry whole lists). */
int mp_decode_bounded(const void *buf, size_t size, size_t max_nodes, Obj **ret);
