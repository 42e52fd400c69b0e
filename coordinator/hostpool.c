/* SPDX-License-Identifier: Apache-2.0 */
#include <search.h>

#include "hostpool.h"
#include "kinds.h"
#include "registry.h"

static const char *const phases[] = {
        "Available", "Claimed", "Provisioning",   "Provisioned",
        "Upgrading", "Failed",  "Deprovisioning", "Unreachable",
        "Revoked",   ""}; /* the last: none (yet), or one we do not know */
#define N_PHASES ELEMENTSOF(phases)

typedef struct PoolHost {
        char *name;
        Obj *labels;            /* metadata.labels, NULL if none */
        char *consumer_uid;     /* spec.consumerRef.uid */
        char *control_plane_of; /* "ns/cluster" while its machine is a control plane one */
        unsigned phase;         /* index into phases */
        bool claimable;         /* as committed */
        uint64_t claimed_in;    /* the batch it was claimed in (p->batch: this one) */
} PoolHost;

struct HostPool {
        void *by_name; /* tsearch: PoolHost, in name order */
        void *waiting; /* tsearch: char * store keys of AnvilMachines without a host */
        size_t n_hosts, n_waiting;
        size_t phase_count[N_PHASES];
        uint64_t batch; /* starts at 1: claimed_in 0 is never this batch */
};

static int cmp_host(const void *a, const void *b) {
        return strcmp(((const PoolHost *)a)->name, ((const PoolHost *)b)->name);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(a, b);
}

int hostpool_new(HostPool **ret) {
        HostPool *p = calloc(1, sizeof(HostPool));
        if (!p)
                return -ENOMEM;
        p->batch = 1;
        *ret = p;
        return 0;
}

static void host_free(void *x) {
        PoolHost *h = x;
        free(h->name);
        obj_free(h->labels);
        free(h->consumer_uid);
        free(h->control_plane_of);
        free(h);
}

HostPool *hostpool_free(HostPool *p) {
        if (!p)
                return NULL;
        tdestroy(p->by_name, host_free);
        tdestroy(p->waiting, free);
        free(p);
        return NULL;
}

bool host_claimable(const Obj *host) {
        return !obj_get(host, "spec.consumerRef") &&
               !obj_get_bool(host, "spec.resetRequired", false) &&
               !obj_get_bool(host, "spec.paused", false) &&
               streq_ptr(obj_get_str(host, "status.phase"), "Available");
}

static PoolHost *find(HostPool *p, const char *name) {
        PoolHost probe = {.name = (char *)name};
        void *n = tfind(&probe, &p->by_name, cmp_host);
        return n ? *(PoolHost **)n : NULL;
}

static unsigned phase_index(const char *phase) {
        for (unsigned i = 0; i + 1 < N_PHASES; i++)
                if (streq_ptr(phases[i], phase))
                        return i;
        return N_PHASES - 1;
}

static int set_str(char **dst, const char *v) {
        if (streq_ptr(*dst, v))
                return 0;
        char *n = v ? strdup(v) : NULL;
        if (v && !n)
                return -ENOMEM;
        free(*dst);
        *dst = n;
        return 0;
}

bool hostpool_host_changed(HostPool *p, const char *name, const Obj *host) {
        PoolHost *h = find(p, name);
        if (!host) {
                if (h) {
                        tdelete(h, &p->by_name, cmp_host);
                        p->phase_count[h->phase]--;
                        p->n_hosts--;
                        host_free(h);
                }
                return false;
        }
        if (!h) {
                h = calloc(1, sizeof(PoolHost));
                if (!h || !(h->name = strdup(name)) || !tsearch(h, &p->by_name, cmp_host)) {
                        if (h)
                                free(h->name);
                        free(h);
                        return false; /* out of memory: the resync finds it later */
                }
                h->phase = N_PHASES - 1;
                p->phase_count[h->phase]++;
                p->n_hosts++;
        }
        unsigned phase = phase_index(obj_get_str(host, "status.phase"));
        p->phase_count[h->phase]--;
        p->phase_count[phase]++;
        h->phase = phase;

        bool was = h->claimable;
        const Obj *labels = obj_get(host, "metadata.labels");
        bool relabelled = !obj_equal(labels, h->labels);
        if (relabelled) {
                obj_free(h->labels);
                h->labels = labels ? obj_dup(labels) : NULL;
        }
        (void)set_str(&h->consumer_uid, obj_get_str(host, "spec.consumerRef.uid"));
        char cp[512] = "";
        if (streq_ptr(obj_get_str(host, "spec.machine.role"), "control-plane"))
                snprintf(cp, sizeof(cp), "%s/%s",
                         strempty(obj_get_str(host, "spec.machine.namespace")),
                         strempty(obj_get_str(host, "spec.machine.cluster")));
        (void)set_str(&h->control_plane_of, cp[0] ? cp : NULL);
        h->claimable = host_claimable(host);
        return h->claimable && (!was || relabelled);
}

void hostpool_machine_waiting(HostPool *p, const char *key, bool waiting) {
        void *n = tfind(key, &p->waiting, cmp_str);
        if (waiting && !n) {
                char *k = strdup(key);
                if (k && tsearch(k, &p->waiting, cmp_str))
                        p->n_waiting++;
                else
                        free(k);
        } else if (!waiting && n) {
                char *k = *(char **)n;
                tdelete(key, &p->waiting, cmp_str);
                free(k);
                p->n_waiting--;
        }
}

typedef struct WaitingCtx {
        void (*fn)(const char *key, void *userdata);
        void *userdata;
} WaitingCtx;

static void waiting_visit(const void *node, VISIT which, void *closure) {
        if (which != postorder && which != leaf)
                return;
        WaitingCtx *c = closure;
        c->fn(*(char *const *)node, c->userdata);
}

void hostpool_foreach_waiting(HostPool *p, void (*fn)(const char *key, void *userdata),
                              void *userdata) {
        /* fn may enqueue, never change the set: the walk is safe. */
        WaitingCtx c = {fn, userdata};
        twalk_r(p->waiting, waiting_visit, &c);
}

typedef struct FindCtx {
        HostPool *p;
        const Obj *selector;
        const char *uid;
        PoolHost *mine, *best;
        size_t available;
} FindCtx;

static void find_visit(const void *node, VISIT which, void *closure) {
        if (which != postorder && which != leaf)
                return;
        FindCtx *c = closure;
        PoolHost *h = *(PoolHost *const *)node;
        if (c->uid && streq_ptr(h->consumer_uid, c->uid))
                c->mine = h;
        if (!h->claimable || h->claimed_in == c->p->batch)
                return;
        c->available++;
        /* In name order: the first match is the one. */
        if (!c->best && label_selector_matches(c->selector, h->labels) == 1)
                c->best = h;
}

int hostpool_find(HostPool *p, const Obj *selector, const char *consumer_uid, char **ret_mine,
                  char **ret_best, size_t *ret_available) {
        FindCtx c = {.p = p, .selector = selector, .uid = consumer_uid};
        twalk_r(p->by_name, find_visit, &c);
        _cleanup_free_ char *mine = c.mine ? strdup(c.mine->name) : NULL;
        _cleanup_free_ char *best = c.best ? strdup(c.best->name) : NULL;
        if ((c.mine && !mine) || (c.best && !best))
                return -ENOMEM;
        *ret_mine = TAKE_PTR(mine);
        *ret_best = TAKE_PTR(best);
        *ret_available = c.available;
        return 0;
}

void hostpool_claimed(HostPool *p, const char *name) {
        PoolHost *h = find(p, name);
        if (h)
                h->claimed_in = p->batch;
}

void hostpool_batch_done(HostPool *p) {
        p->batch++;
}

typedef struct ControlPlaneCtx {
        const char *want, *exclude;
        bool (*usable)(const char *name, void *userdata);
        void *userdata;
        PoolHost *found;
} ControlPlaneCtx;

static void control_plane_visit(const void *node, VISIT which, void *closure) {
        if (which != postorder && which != leaf)
                return;
        ControlPlaneCtx *c = closure;
        PoolHost *h = *(PoolHost *const *)node;
        if (c->found || !streq_ptr(h->control_plane_of, c->want) ||
            !streq(phases[h->phase], "Provisioned") || streq_ptr(h->name, c->exclude))
                return;
        if (!c->usable || c->usable(h->name, c->userdata))
                c->found = h;
}

int hostpool_control_plane(HostPool *p, const char *ns, const char *cluster, const char *exclude,
                           bool (*usable)(const char *name, void *userdata), void *userdata,
                           char **ret) {
        char want[512];
        snprintf(want, sizeof(want), "%s/%s", strempty(ns), strempty(cluster));
        ControlPlaneCtx c = {want, exclude, usable, userdata, NULL};
        twalk_r(p->by_name, control_plane_visit, &c);
        if (!c.found)
                return -ENOENT;
        char *name = strdup(c.found->name);
        if (!name)
                return -ENOMEM;
        *ret = name;
        return 0;
}

void hostpool_phases(HostPool *p, void (*fn)(const char *phase, size_t n, void *userdata),
                     void *userdata) {
        for (size_t i = 0; i < N_PHASES; i++)
                fn(phases[i], p->phase_count[i], userdata);
}

size_t hostpool_size(HostPool *p) {
        return p->n_hosts;
}
