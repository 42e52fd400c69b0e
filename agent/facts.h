/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hardware facts reported at enrollment and on change: product UUID, serial, vendor and
 * model (DMI), hostname, interfaces with MAC and addresses, CPU model and count, memory,
 * disks (size, rotational), kernel, OS release, agent version. All from /sys and /proc;
 * sysfs_root lets tests point at a fake tree.
 */
#pragma once

#include "agent-config.h"
#include "obj.h"

int facts_collect(const AgentConfig *c, Obj **ret);
