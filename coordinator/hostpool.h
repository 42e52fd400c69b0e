/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host pool: what the controllers ask of all Hosts at once, kept in memory.
 *
 * Claiming a host (AnvilMachine), finding a control plane host for a command, waking the
 * machines that wait for a host, and counting hosts by phase (metrics) all used to read and
 * decode every Host from the store; with 10,000 hosts and a 1,000-replica MachineDeployment
 * that was ten million decodes. The pool keeps, per Host, the little those questions need
 * (labels, consumer uid, phase, control plane membership), updated from committed store
 * events (manager.c) and loaded at startup, plus the set of AnvilMachines waiting for a
 * host. About 200 bytes per host plus its labels.
 *
 * The pool answers from committed state; a claimer always re-reads the Host from the store
 * (which includes this batch's uncommitted writes) and checks host_claimable() before it
 * writes, so a stale answer costs a retry, never a double claim (the claim is also
 * preconditioned on the Host's resourceVersion). hostpool_claimed() keeps a host claimed in
 * the batch being committed from being offered again until the commit tells the pool what
 * became of it (hostpool_batch_done(), after every commit, successful or not).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "obj.h"

typedef struct HostPool HostPool;

int hostpool_new(HostPool **ret);
HostPool *hostpool_free(HostPool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(HostPool *, hostpool_free);

/* Whether a Host may be claimed: Available, no consumer, not paused, no reset pending. */
bool host_claimable(const Obj *host);

/* A committed Host (host NULL: deleted). Returns true when machines waiting for a host
 * should look again: it became claimable, or its labels changed while claimable. */
bool hostpool_host_changed(HostPool *p, const char *name, const Obj *host);
/* A committed AnvilMachine, by its store key: waiting for a host (no hostRef yet, not being
 * deleted) or not (also when deleted). */
void hostpool_machine_waiting(HostPool *p, const char *key, bool waiting);
/* Calls fn with the store key of every waiting AnvilMachine. */
void hostpool_foreach_waiting(HostPool *p, void (*fn)(const char *key, void *userdata),
                              void *userdata);

/* The host already claimed by consumer_uid, if any (*ret_mine), and the first claimable host
 * by name whose labels match selector (*ret_best); both malloc'd or NULL. *ret_available
 * counts the claimable hosts. */
int hostpool_find(HostPool *p, const Obj *selector, const char *consumer_uid, char **ret_mine,
                  char **ret_best, size_t *ret_available);
/* name was claimed (or found taken) in the current batch: not offered again until then. */
void hostpool_claimed(HostPool *p, const char *name);
void hostpool_batch_done(HostPool *p);

/* The first host by name (other than exclude) provisioned as a control plane machine of
 * cluster ns/name for which usable(name) holds; -ENOENT if none. */
int hostpool_control_plane(HostPool *p, const char *ns, const char *cluster, const char *exclude,
                           bool (*usable)(const char *name, void *userdata), void *userdata,
                           char **ret);

/* Hosts by phase, for the metrics ("" for a host without one yet). */
void hostpool_phases(HostPool *p, void (*fn)(const char *phase, size_t n, void *userdata),
                     void *userdata);
size_t hostpool_size(HostPool *p);
