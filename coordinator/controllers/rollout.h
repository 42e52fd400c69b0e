/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The arithmetic of a MachineDeployment rollout, as Cluster API (and Kubernetes' Deployment
 * controller before it) does it, kept free of the store so it can be tested alone:
 *
 *  - maxSurge / maxUnavailable are ints or percentages of spec.replicas; maxSurge rounds up,
 *    maxUnavailable rounds down; when both come out 0, maxUnavailable is 1 (a rollout must be
 *    able to move);
 *  - the new MachineSet grows while the sum of every MachineSet's spec.replicas stays within
 *    replicas + maxSurge (OnDelete: within replicas);
 *  - old MachineSets shrink, oldest first, while the available machines stay at least
 *    replicas - maxUnavailable: first by their unavailable machines (they add nothing), then
 *    by what availability allows.
 *
 * "Available" is counted from the Machines themselves (ready for minReadySeconds, not being
 * deleted, not in an in-place upgrade), per MachineSet capped at its spec.replicas, so a
 * MachineSet that was told to shrink but has not yet deleted a machine is never counted
 * twice.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "obj.h"

/* An int-or-percent against total; def when v is NULL. -EINVAL when v is malformed. */
int rollout_scaled_value(const Obj *v, int64_t total, bool round_up, int64_t def, int64_t *ret);

typedef struct RolloutLimits {
        int64_t max_surge;
        int64_t max_unavailable;
} RolloutLimits;

/* From spec.strategy.rollingUpdate of a MachineDeployment (defaults 1 and 0). */
int rollout_limits(const Obj *md, int64_t replicas, RolloutLimits *ret);

/* spec.replicas for the new MachineSet, given the sum of all MachineSets' spec.replicas. */
int64_t rollout_new_replicas(bool on_delete, int64_t replicas, int64_t max_surge,
                             int64_t all_spec_replicas, int64_t new_spec_replicas);

typedef struct RolloutSet {
        int64_t spec_replicas; /* in */
        int64_t available;     /* in: available machines, at most spec_replicas */
        int64_t new_replicas;  /* out */
} RolloutSet;

/*
 * Scale-down of the old MachineSets (old[], oldest first) for a rolling update. Fills
 * new_replicas of each; returns how many replicas went in total.
 */
int64_t rollout_scale_down_old(RolloutSet *old, size_t n_old, int64_t replicas,
                               int64_t max_unavailable, int64_t new_spec_replicas,
                               int64_t new_available);
