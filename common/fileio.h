/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Durable file I/O. Everything Anvil persists (agent progress, keys, config written by the
 * agent) goes through write_file_atomic(): temp file, fsync, rename, fsync of the directory,
 * so a crash leaves either the old or the new content, never a torn file.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Reads a whole file, refusing files larger than max bytes (-EFBIG). Adds a NUL terminator
 * that is not counted in *ret_size. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_size);

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* mkdir -p with the given mode for created directories. */
int mkdir_p(const char *path, mode_t mode);

/* Creates all parent directories of path. */
int mkdir_parents(const char *path, mode_t mode);

int fsync_directory_of(const char *path);
