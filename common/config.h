/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading YAML configuration files against a schema table, with every problem reported as
 * FILE:LINE:COLUMN: field: message (the same form manifests use).
 */
#pragma once

#include "obj.h"
#include "schema.h"

/* Parses and validates path. A missing file is -ENOENT (callers decide whether that is
 * fine). On -EBADMSG, *ret_errors holds the formatted problems (one per line). */
int config_load(const char *path, const SchemaField *schema, Obj **ret, char **ret_errors);
/* The same on text already read (path names it in messages); also the fuzz target's entry. */
int config_parse(const char *path, const char *text, size_t size, const SchemaField *schema,
                 Obj **ret, char **ret_errors);
#define CONFIG_MAX_SIZE (1U << 20)

/* Formats problems as "FILE:LINE:COLUMN: [prefix: ]path: message\n" lines. */
char *problems_format(const char *file, const char *prefix, const Problems *p);

/* Value helpers with defaults. */
const char *config_str(const Obj *c, const char *key, const char *def);
uint64_t config_duration(const Obj *c, const char *key, uint64_t def_usec);
