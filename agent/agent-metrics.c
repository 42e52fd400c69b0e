/* SPDX-License-Identifier: Apache-2.0 */
#include <time.h>

#include "agent-metrics.h"
#include "prom.h"

/* Steps take seconds to many minutes (kubeadm init, waiting for the node). */
static const double step_buckets[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};

static const char *const plan_states[] = {"Idle",   "Provisioning",   "Provisioned",
                                          "Failed", "Deprovisioning", "Upgrading"};

/* Step names without their index ("pre-kubeadm-2" is "pre-kubeadm"): a bounded label. */
#define MAX_STEP_KINDS 16

typedef struct StepTimes {
        char name[48];
        PromHistogram ok, failed;
} StepTimes;

struct AgentMetrics {
        PromServer *server;
        bool connected, enrolled;
        uint64_t connections, heartbeats, messages;
        int64_t last_contact; /* CLOCK_REALTIME µs, 0 = never */
        int64_t generation;
        char state[32];
        char timed_step[256]; /* the step being timed, and since when (CLOCK_MONOTONIC) */
        uint64_t step_started;
        StepTimes steps[MAX_STEP_KINDS];
        size_t n_steps;
};

static void step_kind(const char *step, char *buf, size_t size) {
        snprintf(buf, size, "%s", step);
        char *dash = strrchr(buf, '-');
        if (dash && dash[1] && strspn(dash + 1, "0123456789") == strlen(dash + 1))
                *dash = 0;
}

void agent_metrics_step_begin(AgentMetrics *x, const char *step) {
        if (!x || !step || streq(x->timed_step, step))
                return;
        snprintf(x->timed_step, sizeof(x->timed_step), "%s", step);
        x->step_started = now_usec(CLOCK_MONOTONIC);
}

void agent_metrics_step_end(AgentMetrics *x, const char *step, bool ok) {
        if (!x || !step || !streq(x->timed_step, step))
                return;
        double secs = (double)(now_usec(CLOCK_MONOTONIC) - x->step_started) / 1e6;
        x->timed_step[0] = 0;
        char kind[48];
        step_kind(step, kind, sizeof(kind));
        StepTimes *t = NULL;
        for (size_t i = 0; i < x->n_steps && !t; i++)
                if (streq(x->steps[i].name, kind))
                        t = &x->steps[i];
        if (!t) {
                if (x->n_steps == MAX_STEP_KINDS)
                        return;
                t = &x->steps[x->n_steps++];
                snprintf(t->name, sizeof(t->name), "%s", kind);
                prom_histogram_init(&t->ok, step_buckets, ELEMENTSOF(step_buckets));
                prom_histogram_init(&t->failed, step_buckets, ELEMENTSOF(step_buckets));
        }
        prom_observe(ok ? &t->ok : &t->failed, secs);
}

void agent_metrics_heartbeat(AgentMetrics *x) {
        if (!x)
                return;
        x->heartbeats++;
        /* Handed to a live connection, which ZMTP heartbeats prove alive within 30 s. */
        x->last_contact = (int64_t)now_usec(CLOCK_REALTIME);
}

void agent_metrics_link(AgentMetrics *x, bool up) {
        if (!x)
                return;
        x->connected = up;
        if (up) {
                x->connections++;
                x->last_contact = (int64_t)now_usec(CLOCK_REALTIME);
        }
}

void agent_metrics_contact(AgentMetrics *x) {
        if (!x)
                return;
        x->messages++;
        x->last_contact = (int64_t)now_usec(CLOCK_REALTIME);
}

void agent_metrics_state(AgentMetrics *x, const char *state, int64_t generation, bool enrolled) {
        if (!x)
                return;
        snprintf(x->state, sizeof(x->state), "%s", strempty(state));
        x->generation = generation;
        x->enrolled = enrolled;
}

static int render(FILE *f, void *userdata) {
        AgentMetrics *x = userdata;
        char labels[128];
        prom_family(f, "anvil_agent_build_info", "gauge", "The agent's version (always 1).");
        prom_sample(f, "anvil_agent_build_info", "version=\"" ANVIL_VERSION "\"", 1);
        prom_family(f, "anvil_agent_enrolled", "gauge", "1 once this host is enrolled.");
        prom_sample(f, "anvil_agent_enrolled", NULL, x->enrolled);
        prom_family(f, "anvil_agent_connected", "gauge",
                    "1 while the link to the coordinator is up (CURVE handshake done).");
        prom_sample(f, "anvil_agent_connected", NULL, x->connected);
        prom_family(f, "anvil_agent_connections_total", "counter",
                    "Connections made to the coordinator (enrollment and host connections).");
        prom_sample_u64(f, "anvil_agent_connections_total", NULL, x->connections);
        prom_family(f, "anvil_agent_reconnects_total", "counter",
                    "Connections made after the first one.");
        prom_sample_u64(f, "anvil_agent_reconnects_total", NULL,
                        x->connections ? x->connections - 1 : 0);
        prom_family(f, "anvil_agent_heartbeats_sent_total", "counter",
                    "HEARTBEAT messages handed to a live connection.");
        prom_sample_u64(f, "anvil_agent_heartbeats_sent_total", NULL, x->heartbeats);
        prom_family(f, "anvil_agent_messages_received_total", "counter",
                    "Valid messages received from the coordinator.");
        prom_sample_u64(f, "anvil_agent_messages_received_total", NULL, x->messages);
        prom_family(f, "anvil_agent_last_contact_timestamp_seconds", "gauge",
                    "When the coordinator was last reached: a handshake, a message from it, or "
                    "a heartbeat sent on a live connection (Unix time; 0 = never).");
        prom_sample(f, "anvil_agent_last_contact_timestamp_seconds", NULL,
                    (double)x->last_contact / 1e6);
        prom_family(f, "anvil_agent_generation", "gauge",
                    "The desired generation this host has applied.");
        prom_sample(f, "anvil_agent_generation", NULL, (double)x->generation);
        prom_family(f, "anvil_agent_plan_state", "gauge",
                    "The plan's state: 1 for the current one, 0 for the others.");
        for (size_t i = 0; i < ELEMENTSOF(plan_states); i++) {
                snprintf(labels, sizeof(labels), "state=\"%s\"", plan_states[i]);
                prom_sample(f, "anvil_agent_plan_state", labels,
                            streq(x->state, plan_states[i]) ? 1 : 0);
        }
        prom_family(f, "anvil_agent_step_duration_seconds", "histogram",
                    "How long plan steps took, by step (without its index) and result.");
        for (size_t i = 0; i < x->n_steps; i++) {
                snprintf(labels, sizeof(labels), "step=\"%s\",result=\"succeeded\"",
                         x->steps[i].name);
                prom_histogram(f, "anvil_agent_step_duration_seconds", labels, &x->steps[i].ok);
                snprintf(labels, sizeof(labels), "step=\"%s\",result=\"failed\"", x->steps[i].name);
                prom_histogram(f, "anvil_agent_step_duration_seconds", labels, &x->steps[i].failed);
        }
        prom_process_metrics(f);
        return 0;
}

int agent_metrics_new(sd_event *e, const char *listen, AgentMetrics **ret) {
        _cleanup_(agent_metrics_freep) AgentMetrics *x = calloc(1, sizeof(AgentMetrics));
        if (!x)
                return -ENOMEM;
        int r = prom_server_start(e, listen, render, x, &x->server);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(x);
        return 0;
}

AgentMetrics *agent_metrics_free(AgentMetrics *x) {
        if (!x)
                return NULL;
        prom_server_free(x->server);
        free(x);
        return NULL;
}
