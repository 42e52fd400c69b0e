/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The resource reference, rendered from the kind tables (kinds-*.c) and their .doc strings:
 * `anvilctl explain KIND[.field]` as text, and the whole reference as Markdown (which is
 * docs/resources.md's generated part, so the document cannot drift from what apply takes).
 */
#pragma once

#include <stdio.h>

#include "kinds.h"

/* Explains kind or kind.path.to.field (kubectl explain's syntax); recursive lists every
 * field below it. -ENOENT with a message on stderr-worthy buf when unknown. */
int explain_text(FILE *f, const char *what, bool recursive, char *err, size_t errsz);

/* The reference of every kind and shared type as Markdown. */
void explain_markdown(FILE *f);
