/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML <-> Obj on top of libyaml.
 *
 * Parsing keeps the line and column of every node (and of every map key), so validation can
 * name FILE:LINE:COLUMN. Plain scalars resolve as YAML 1.2's core schema (null, true/false,
 * integers, floats); quoted and block scalars are always strings. Parsing is bounded: nesting
 * depth, node count and size (aliases included and measured as expanded, so "billion
 * laughs" inputs, with short or long strings, stop early) and string length, and duplicate map keys
 * are an error, as Kubernetes' strict decoding makes them.
 *
 * Emitting writes block style in insertion order and quotes strings that would otherwise read
 * back as another type ("true", "1", "").
 */
#pragma once

#include "obj.h"

#define YAML_MAX_DEPTH      64
#define YAML_MAX_NODES      500000
#define YAML_MAX_STRING     (1U << 20)
/* Bytes of a parsed stream, aliases expanded: one per node plus string and key bytes. Never
 * more than the text itself without aliases, so twice the largest admin message. */
#define YAML_MAX_BYTES      (32U << 20)
#define YAML_MAX_DOCUMENTS  1024

typedef struct YamlError {
        uint32_t line;
        uint32_t column;
        char message[256];
} YamlError;

/* Parses every document of a stream into a list (an OBJ_LIST of the documents; empty
 * documents are skipped). On -EBADMSG, err says where and why. */
int yaml_parse_documents(const char *buf, size_t size, Obj **ret, YamlError *err);

/* Parses exactly one document (an empty stream gives an empty map). */
int yaml_parse_one(const char *buf, size_t size, Obj **ret, YamlError *err);

/* Emits one document (no "---" marker) or, with several, a stream separated by "---". */
int yaml_emit(const Obj *o, char **ret);
int yaml_emit_documents(const Obj *list, char **ret);

/* Resolves a plain scalar as YAML 1.2 core schema would: for the emitter's quoting and for
 * command-line values. */
Obj *yaml_resolve_plain(const char *s, size_t len);
