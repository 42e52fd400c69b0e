/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's configuration file, /etc/anvil/coordinator.yaml: its schema (unknown keys
 * and wrong types are errors naming FILE:LINE:COLUMN) and its mapping onto ManagerConfig,
 * with the defaults. Command-line flags override what this fills in (main.c).
 */
#pragma once

#include "manager.h"
#include "schema.h"

extern const SchemaField coordinator_config_schema[];

/* Fills mc from a validated configuration (NULL = all defaults). Strings are borrowed from
 * cfg or static: mc must not outlive cfg, and nothing in mc is to be freed. */
void coordinator_config_apply(const Obj *cfg, ManagerConfig *mc);

/* Keeps a copy of the file read at startup (NULL: there was none). */
int coordinator_config_remember_startup(const Obj *cfg);
/* The restart-only settings (listen, advertise, admin-socket, state-dir, key-file,
 * metrics-listen) whose value in new differs from the file at startup, comma-separated;
 * NULL when none did (or on OOM: a warning is all that is lost). */
char *coordinator_config_restart_changes(const Obj *new);
