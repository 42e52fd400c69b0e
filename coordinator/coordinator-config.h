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
