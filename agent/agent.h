/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent: one process, one sd-event loop. It owns the link to the coordinator, the
 * persisted state, the step executor (one child process at a time), the heartbeat and node
 * readiness timers, and the signals. Expected load: idle most of its life (a heartbeat every
 * ten seconds), a few dozen steps when provisioning.
 */
#pragma once

#include <systemd/sd-event.h>

#include "agent-config.h"

typedef struct Agent Agent;

/* Takes the contents of config and of src (src may be NULL: then SIGHUP is not handled). */
int agent_new(AgentConfig *config, AgentConfigSource *src, Agent **ret);
Agent *agent_free(Agent *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Agent *, agent_free);
int agent_run(Agent *a);
