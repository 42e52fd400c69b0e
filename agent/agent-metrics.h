/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's own Prometheus metrics (--metrics-listen / metrics-listen in agent.yaml, off
 * by default): link state, reconnects, heartbeats sent, the last contact with the
 * coordinator, the plan's state and generation, and how long each step took. Served by
 * common/prom.c from the agent's event loop. When metrics are off nothing is allocated and
 * every call below is a no-op on NULL, so the idle agent pays nothing for them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct AgentMetrics AgentMetrics;

/* -EINVAL for a malformed listen address, -EADDRINUSE when it cannot listen there. */
int agent_metrics_new(sd_event *e, const char *listen, AgentMetrics **ret);
AgentMetrics *agent_metrics_free(AgentMetrics *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentMetrics *, agent_metrics_free);

/* A step starts (again, after a restart or a node poll: timed from its first start). */
void agent_metrics_step_begin(AgentMetrics *x, const char *step);
void agent_metrics_step_end(AgentMetrics *x, const char *step, bool ok);
void agent_metrics_heartbeat(AgentMetrics *x);
/* The link came up (a CURVE handshake succeeded) or went down. */
void agent_metrics_link(AgentMetrics *x, bool up);
/* A message from the coordinator arrived. */
void agent_metrics_contact(AgentMetrics *x);
/* What is on disk now: the plan's state, the applied generation, enrolled. */
void agent_metrics_state(AgentMetrics *x, const char *state, int64_t generation, bool enrolled);
