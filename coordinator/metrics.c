/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <search.h>
#include <time.h>

#include "fanout.h"
#include "hostpool.h"
#include "log.h"
#include "metrics.h"
#include "prom.h"
#include "wire.h"

/* Every reason coordinator/enroll.c refuses with (docs/protocol.md), and the handshake's. */
static const char *const enroll_reasons[] = {
        "TokenUnknown", "TokenExpired", "TokenExhausted", "BadProof", "BadKey",
        "HostRevoked",  "HostInUse",    "HostConnected",  "KeyInUse", "NameTaken",
        "UnknownKey",   "Revoked",      "NoCurve",        "Other"};

/* Cluster API's Machine phases; the last: none yet (or unknown). */
static const char *const machine_phases[] = {"Pending", "Provisioning", "Provisioned",
                                             "Running", "Deleting",     "Deleted",
                                             "Failed",  "Unknown",      ""};
#define N_MACHINE_PHASES ELEMENTSOF(machine_phases)

#define MAX_KINDS 32

/* Machines of one cluster (namespace/name), counted by phase. Never removed: a cluster's
 * series drop to zero when it goes (and vanish at the next start). */
typedef struct MachineGroup {
        char *ns, *cluster;
        size_t count[N_MACHINE_PHASES];
} MachineGroup;

typedef struct MachineEntry {
        char *key; /* store key */
        unsigned group, phase;
        int64_t since; /* CLOCK_REALTIME µs the machine entered its phase (status.lastUpdated) */
} MachineEntry;

/* A MachineDeployment's or KubeadmControlPlane's replica counts, as its status says. */
typedef struct ReplicaEntry {
        char *key; /* store key: Kind/namespace/name */
        bool kcp;
        int64_t desired, current, updated, ready, available, unavailable;
} ReplicaEntry;

struct Metrics {
        Manager *m;
        PromServer *server;
        PromHistogram reconcile[MAX_KINDS];
        uint64_t reconcile_errors[MAX_KINDS];
        PromHistogram fanout_latency, store_commit;
        uint64_t enroll_failures[ELEMENTSOF(enroll_reasons)];
        uint64_t store_events[MAX_KINDS];
        uint64_t agent_messages[_MSG_TYPE_MAX];
        uint64_t desired_sent;
        void *machines; /* tsearch: MachineEntry by key */
        MachineGroup *groups;
        size_t n_groups;
        void *replicas; /* tsearch: ReplicaEntry by key */
};

/* MachineEntry and ReplicaEntry both begin with their key: one comparison and one insertion
 * serve both trees. */
typedef struct KeyedEntry {
        char *key;
} KeyedEntry;

static int cmp_key(const void *a, const void *b) {
        return strcmp(((const KeyedEntry *)a)->key, ((const KeyedEntry *)b)->key);
}

/* A zeroed entry of size bytes under key, inserted in *root; NULL when out of memory. */
static void *keyed_insert(void **root, size_t size, const char *key) {
        KeyedEntry *e = calloc(1, size);
        if (!e || !(e->key = strdup(key)) || !tsearch(e, root, cmp_key)) {
                if (e)
                        free(e->key);
                free(e);
                return NULL;
        }
        return e;
}

static int kind_index(const char *kind) {
        for (int i = 0; anvil_kinds[i] && i < MAX_KINDS; i++)
                if (streq(anvil_kinds[i]->kind, kind))
                        return i;
        return -1;
}

void metrics_store_event(Metrics *x, const char *kind) {
        int i = x ? kind_index(kind) : -1;
        if (i >= 0)
                x->store_events[i]++;
}

void metrics_desired_sent(Metrics *x, int64_t generation) {
        (void)generation;
        if (x)
                x->desired_sent++;
}

void metrics_ack(Metrics *x, int64_t generation, uint64_t changed_at_usec) {
        (void)generation;
        if (!x || !changed_at_usec)
                return;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now >= changed_at_usec)
                prom_observe(&x->fanout_latency, (double)(now - changed_at_usec) / 1e6);
}

void metrics_agent_message(Metrics *x, int type) {
        if (x && type >= 0 && type < _MSG_TYPE_MAX)
                x->agent_messages[type]++;
}

void metrics_enroll_failure(Metrics *x, const char *reason) {
        if (!x)
                return;
        size_t i;
        for (i = 0; i + 1 < ELEMENTSOF(enroll_reasons); i++)
                if (streq(enroll_reasons[i], reason))
                        break;
        x->enroll_failures[i]++;
}

void metrics_reconcile(Metrics *x, const char *kind, uint64_t usec, int result) {
        int i = x ? kind_index(kind) : -1;
        if (i < 0)
                return;
        prom_observe(&x->reconcile[i], (double)usec / 1e6);
        if (result < 0)
                x->reconcile_errors[i]++;
}

void metrics_store_commit(Metrics *x, uint64_t usec) {
        if (x)
                prom_observe(&x->store_commit, (double)usec / 1e6);
}

/* ---- Machines by cluster and phase, MachineDeployments' and control planes' replicas ---- */

static unsigned machine_group(Metrics *x, const char *ns, const char *cluster) {
        for (size_t i = 0; i < x->n_groups; i++)
                if (streq(x->groups[i].ns, ns) && streq(x->groups[i].cluster, cluster))
                        return (unsigned)i;
        MachineGroup *n = realloc(x->groups, (x->n_groups + 1) * sizeof(MachineGroup));
        if (!n)
                return UINT_MAX;
        x->groups = n;
        MachineGroup *g = &x->groups[x->n_groups];
        *g = (MachineGroup){.ns = strdup(ns), .cluster = strdup(cluster)};
        if (!g->ns || !g->cluster) {
                free(g->ns);
                free(g->cluster);
                return UINT_MAX;
        }
        return (unsigned)x->n_groups++;
}

static void machine_changed(Metrics *x, const char *key, const Obj *machine) {
        MachineEntry probe = {.key = (char *)key};
        void *node = tfind(&probe, &x->machines, cmp_key);
        MachineEntry *e = node ? *(MachineEntry **)node : NULL;
        if (e) {
                x->groups[e->group].count[e->phase]--;
                if (!machine) {
                        tdelete(e, &x->machines, cmp_key);
                        free(e->key);
                        free(e);
                        return;
                }
        } else if (!machine)
                return;
        unsigned g = machine_group(x, strempty(meta_namespace(machine)),
                                   strempty(obj_get_str(machine, "spec.clusterName")));
        if (g == UINT_MAX)
                return; /* out of memory: this machine is not counted */
        if (!e && !(e = keyed_insert(&x->machines, sizeof(MachineEntry), key)))
                return;
        const char *phase = obj_get_str(machine, "status.phase");
        unsigned p = N_MACHINE_PHASES - 1;
        for (unsigned i = 0; phase && i + 1 < N_MACHINE_PHASES; i++)
                if (streq(machine_phases[i], phase)) {
                        p = i;
                        break;
                }
        int64_t since = 0;
        if (parse_rfc3339(obj_get_str(machine, "status.lastUpdated"), &since) < 0 || since <= 0)
                since = (int64_t)now_usec(CLOCK_REALTIME);
        e->group = g;
        e->phase = p;
        e->since = since;
        x->groups[g].count[p]++;
}

static void replicas_changed(Metrics *x, const char *key, bool kcp, const Obj *o) {
        ReplicaEntry probe = {.key = (char *)key};
        void *node = tfind(&probe, &x->replicas, cmp_key);
        ReplicaEntry *e = node ? *(ReplicaEntry **)node : NULL;
        if (!o) {
                if (e) {
                        tdelete(e, &x->replicas, cmp_key);
                        free(e->key);
                        free(e);
                }
                return;
        }
        if (!e && !(e = keyed_insert(&x->replicas, sizeof(ReplicaEntry), key)))
                return;
        e->kcp = kcp;
        e->desired = 1;
        obj_get_int(o, "spec.replicas", &e->desired);
        e->current = e->updated = e->ready = e->available = e->unavailable = 0;
        obj_get_int(o, "status.replicas", &e->current);
        obj_get_int(o, "status.updatedReplicas", &e->updated);
        obj_get_int(o, "status.readyReplicas", &e->ready);
        obj_get_int(o, "status.availableReplicas", &e->available);
        obj_get_int(o, "status.unavailableReplicas", &e->unavailable);
}

void metrics_object_changed(Metrics *x, const KindInfo *k, const char *key, const Obj *obj) {
        if (!x)
                return;
        if (streq(k->kind, "Machine"))
                machine_changed(x, key, obj);
        else if (streq(k->kind, "MachineDeployment") || streq(k->kind, "KubeadmControlPlane"))
                replicas_changed(x, key, streq(k->kind, "KubeadmControlPlane"), obj);
}

/* ---- rendering ---- */

typedef struct RenderCtx {
        FILE *f;
        const char *name;
        /* oldest machine per group and phase */
        int64_t *oldest;
} RenderCtx;

static void host_phase(const char *phase, size_t n, void *userdata) {
        RenderCtx *c = userdata;
        char labels[96];
        snprintf(labels, sizeof(labels), "phase=\"%s\"", isempty(phase) ? "None" : phase);
        prom_sample_u64(c->f, "anvil_hosts", labels, n);
}

static void oldest_visit(const void *node, VISIT which, void *closure) {
        if (which != postorder && which != leaf)
                return;
        RenderCtx *c = closure;
        const MachineEntry *e = *(MachineEntry *const *)node;
        int64_t *o = &c->oldest[e->group * N_MACHINE_PHASES + e->phase];
        if (*o == 0 || e->since < *o)
                *o = e->since;
}

static void replica_visit(const void *node, VISIT which, void *closure) {
        if (which != postorder && which != leaf)
                return;
        RenderCtx *c = closure;
        const ReplicaEntry *e = *(ReplicaEntry *const *)node;
        bool kcp = streq(c->name, "anvil_kubeadmcontrolplane_replicas");
        if (e->kcp != kcp)
                return;
        /* key: Kind/namespace/name */
        const char *ns = strchr(e->key, '/');
        const char *name = ns ? strchr(ns + 1, '/') : NULL;
        if (!ns || !name)
                return;
        const struct {
                const char *state;
                int64_t v;
        } states[] = {{"desired", e->desired},     {"current", e->current},
                      {"updated", e->updated},     {"ready", e->ready},
                      {"available", e->available}, {"unavailable", e->unavailable}};
        char esc[320], labels[512];
        for (size_t i = 0; i < ELEMENTSOF(states); i++) {
                if (kcp && streq(states[i].state, "available"))
                        continue; /* a control plane has no availableReplicas */
                snprintf(labels, sizeof(labels), "namespace=\"%.*s\",name=\"%s\",state=\"%s\"",
                         (int)(name - ns - 1), ns + 1, prom_escape(name + 1, esc, sizeof(esc)),
                         states[i].state);
                prom_sample(c->f, c->name, labels, (double)states[i].v);
        }
}

/* The labels of a machine group's phase: namespace, cluster, phase. */
static void group_labels(const Metrics *x, size_t g, size_t p, char *buf, size_t size) {
        char ns[160], cluster[160];
        snprintf(buf, size, "namespace=\"%s\",cluster=\"%s\",phase=\"%s\"",
                 prom_escape(x->groups[g].ns, ns, sizeof(ns)),
                 prom_escape(x->groups[g].cluster, cluster, sizeof(cluster)),
                 isempty(machine_phases[p]) ? "None" : machine_phases[p]);
}

static int render(FILE *f, void *userdata) {
        Metrics *x = userdata;
        Manager *m = x->m;
        FanoutStats fs = {0};
        if (m->fanout)
                fanout_get_stats(m->fanout, &fs);
        RenderCtx c = {.f = f};
        char labels[512];

        prom_family(f, "anvil_build_info", "gauge", "The coordinator's version (always 1).");
        prom_sample(f, "anvil_build_info", "version=\"" ANVIL_VERSION "\"", 1);

        prom_family(f, "anvil_hosts", "gauge", "Enrolled hosts by phase.");
        if (m->pool)
                hostpool_phases(m->pool, host_phase, &c);
        prom_family(f, "anvil_agents_connected", "gauge",
                    "Hosts whose agent has a live connection (heard from within the grace).");
        prom_sample_u64(f, "anvil_agents_connected", NULL, fs.connected);

        prom_family(f, "anvil_machines", "gauge", "Machines by namespace, cluster and phase.");
        for (size_t g = 0; g < x->n_groups; g++)
                for (size_t p = 0; p < N_MACHINE_PHASES; p++) {
                        if (!x->groups[g].count[p] && isempty(machine_phases[p]))
                                continue;
                        group_labels(x, g, p, labels, sizeof(labels));
                        prom_sample_u64(f, "anvil_machines", labels, x->groups[g].count[p]);
                }
        prom_family(f, "anvil_machines_oldest_in_phase_seconds", "gauge",
                    "How long the machine longest in a phase has been in it, by namespace, "
                    "cluster and phase (no sample when no machine is in the phase).");
        _cleanup_free_ int64_t *oldest =
                calloc(x->n_groups * N_MACHINE_PHASES + 1, sizeof(int64_t));
        if (oldest) {
                c.oldest = oldest;
                twalk_r(x->machines, oldest_visit, &c);
                int64_t now = (int64_t)now_usec(CLOCK_REALTIME);
                for (size_t g = 0; g < x->n_groups; g++)
                        for (size_t p = 0; p < N_MACHINE_PHASES; p++) {
                                int64_t since = oldest[g * N_MACHINE_PHASES + p];
                                if (!since || !x->groups[g].count[p])
                                        continue;
                                group_labels(x, g, p, labels, sizeof(labels));
                                prom_sample(f, "anvil_machines_oldest_in_phase_seconds", labels,
                                            now > since ? (double)(now - since) / 1e6 : 0);
                        }
        }
        prom_family(f, "anvil_machinedeployment_replicas", "gauge",
                    "A MachineDeployment's machines: desired (spec), current, updated, ready, "
                    "available, unavailable (status).");
        c.name = "anvil_machinedeployment_replicas";
        twalk_r(x->replicas, replica_visit, &c);
        prom_family(f, "anvil_kubeadmcontrolplane_replicas", "gauge",
                    "A KubeadmControlPlane's machines: desired (spec), current, updated, ready, "
                    "unavailable (status).");
        c.name = "anvil_kubeadmcontrolplane_replicas";
        twalk_r(x->replicas, replica_visit, &c);

        prom_family(f, "anvil_fanout_pending_acks", "gauge",
                    "Hosts whose current desired generation their agent has not acknowledged.");
        prom_sample_u64(f, "anvil_fanout_pending_acks", NULL, fs.pending_acks);
        prom_family(f, "anvil_fanout_desired_sent_total", "counter",
                    "DESIRED messages sent (first sends, resends and resyncs).");
        prom_sample_u64(f, "anvil_fanout_desired_sent_total", NULL, x->desired_sent);
        prom_family(f, "anvil_fanout_ack_latency_seconds", "histogram",
                    "Time from the commit of a Host's new desired generation to its agent's "
                    "acknowledgement.");
        prom_histogram(f, "anvil_fanout_ack_latency_seconds", NULL, &x->fanout_latency);
        prom_family(f, "anvil_agent_messages_total", "counter",
                    "Valid messages received from agents, by type.");
        for (int t = MSG_ENROLL; t <= MSG_RESULT; t++) {
                snprintf(labels, sizeof(labels), "type=\"%s\"", msg_type_to_string((MsgType)t));
                prom_sample_u64(f, "anvil_agent_messages_total", labels, x->agent_messages[t]);
        }
        prom_family(f, "anvil_agent_messages_dropped_total", "counter",
                    "Agent messages dropped as malformed or unauthorised.");
        prom_sample_u64(f, "anvil_agent_messages_dropped_total", NULL, fs.messages_dropped);

        prom_family(f, "anvil_enroll_failures_total", "counter",
                    "Refused enrollments and connections, by reason.");
        for (size_t i = 0; i < ELEMENTSOF(enroll_reasons); i++) {
                snprintf(labels, sizeof(labels), "reason=\"%s\"", enroll_reasons[i]);
                prom_sample_u64(f, "anvil_enroll_failures_total", labels, x->enroll_failures[i]);
        }

        prom_family(f, "anvil_reconcile_duration_seconds", "histogram",
                    "Reconcile duration per controller.");
        for (int i = 0; anvil_kinds[i] && i < MAX_KINDS; i++) {
                if (x->reconcile[i].count == 0)
                        continue;
                snprintf(labels, sizeof(labels), "controller=\"%s\"", anvil_kinds[i]->singular);
                prom_histogram(f, "anvil_reconcile_duration_seconds", labels, &x->reconcile[i]);
        }
        prom_family(f, "anvil_reconcile_errors_total", "counter",
                    "Failed reconciles per controller (retried with backoff).");
        for (int i = 0; anvil_kinds[i] && i < MAX_KINDS; i++)
                if (x->reconcile[i].count) {
                        snprintf(labels, sizeof(labels), "controller=\"%s\"",
                                 anvil_kinds[i]->singular);
                        prom_sample_u64(f, "anvil_reconcile_errors_total", labels,
                                        x->reconcile_errors[i]);
                }
        prom_family(f, "anvil_workqueue_depth", "gauge", "Keys waiting to be reconciled.");
        prom_sample_u64(f, "anvil_workqueue_depth", NULL, m->queue ? queue_length(m->queue) : 0);

        StoreStats ss = {0};
        if (m->store)
                store_get_stats(m->store, &ss);
        prom_family(f, "anvil_store_commit_duration_seconds", "histogram",
                    "Duration of each durable (fsync'd) commit of a batch of store writes.");
        prom_histogram(f, "anvil_store_commit_duration_seconds", NULL, &x->store_commit);
        prom_family(f, "anvil_store_commits_total", "counter", "Durable store commits.");
        prom_sample_u64(f, "anvil_store_commits_total", NULL, ss.commits);
        prom_family(f, "anvil_store_writes_total", "counter", "Object writes (puts and deletes).");
        prom_sample_u64(f, "anvil_store_writes_total", NULL, ss.writes);
        prom_family(f, "anvil_store_events_total", "counter",
                    "Committed changes by kind (what the controllers were woken for).");
        for (int i = 0; anvil_kinds[i] && i < MAX_KINDS; i++)
                if (x->store_events[i]) {
                        snprintf(labels, sizeof(labels), "kind=\"%s\"", anvil_kinds[i]->kind);
                        prom_sample_u64(f, "anvil_store_events_total", labels, x->store_events[i]);
                }
        prom_family(f, "anvil_store_revision", "gauge", "The store's current revision.");
        prom_sample(f, "anvil_store_revision", NULL,
                    (double)(m->store ? store_revision(m->store) : 0));
        prom_process_metrics(f);
        return 0;
}

int metrics_render(Metrics *x, char **ret) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return -ENOMEM;
        int r = render(f, x);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(out);
                return r;
        }
        *ret = out;
        return 0;
}

int metrics_new(Manager *m, Metrics **ret) {
        Metrics *x = calloc(1, sizeof(Metrics));
        if (!x)
                return log_oom();
        x->m = m;
        for (size_t i = 0; i < MAX_KINDS; i++)
                prom_histogram_init(&x->reconcile[i], prom_latency_buckets, prom_latency_buckets_n);
        prom_histogram_init(&x->fanout_latency, prom_latency_buckets, prom_latency_buckets_n);
        prom_histogram_init(&x->store_commit, prom_latency_buckets, prom_latency_buckets_n);
        *ret = x;
        return 0;
}

int metrics_start(Metrics *x, const char *listen) {
        if (isempty(listen))
                return 0;
        int r = prom_server_start(x->m->event, listen, render, x, &x->server);
        if (r == -EINVAL)
                return log_error_errno(r, "Invalid --metrics-listen '%s': use IPv4ADDR:PORT.",
                                       listen);
        if (r < 0)
                return log_error_errno(r, "Failed to serve metrics on %s: %m", listen);
        log_info("Serving metrics on http://%s/metrics.", listen);
        return 0;
}

static void keyed_entry_free(void *p) {
        KeyedEntry *e = p;
        free(e->key);
        free(e);
}

Metrics *metrics_free(Metrics *x) {
        if (!x)
                return NULL;
        x->server = prom_server_free(x->server);
        tdestroy(x->machines, keyed_entry_free);
        tdestroy(x->replicas, keyed_entry_free);
        for (size_t i = 0; i < x->n_groups; i++) {
                free(x->groups[i].ns);
                free(x->groups[i].cluster);
        }
        free(x->groups);
        free(x);
        return NULL;
}
