/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hardware facts reported at enrollment and on change: product UUID, serial, vendor and
 * model (DMI), hostname, interfaces with MAC and addresses, CPU model and count, memory,
 * disks (size, rotational), kernel, OS release, agent version. All from /sys, /proc and
 * /etc/os-release under the configured facts-root (tests point it at a fake tree), and the
 * addresses from getifaddrs(). Collected at start and again every facts-interval; a change
 * is reported with the next heartbeat.
 */
#pragma once

#include "agent-config.h"
#include "obj.h"

int facts_collect(const AgentConfig *c, Obj **ret);
