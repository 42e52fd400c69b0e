/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rollout arithmetic (see rollout.h). Pure functions: no store, no clock. Expected load: a
 * few calls per MachineDeployment reconcile.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "rollout.h"

int rollout_scaled_value(const Obj *v, int64_t total, bool round_up, int64_t def, int64_t *ret) {
        if (!v) {
                *ret = def;
                return 0;
        }
        if (obj_is(v, OBJ_INT)) {
                if (v->i < 0)
                        return -EINVAL;
                *ret = v->i;
                return 0;
        }
        const char *s = obj_str(v);
        size_t n = s ? strlen(s) : 0;
        if (n < 2 || n > 4 || s[n - 1] != '%')
                return -EINVAL;
        int64_t pct = 0;
        for (size_t i = 0; i + 1 < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return -EINVAL;
                pct = pct * 10 + (s[i] - '0');
        }
        int64_t scaled = pct * total;
        *ret = round_up ? (scaled + 99) / 100 : scaled / 100;
        return 0;
}

int rollout_limits(const Obj *md, int64_t replicas, RolloutLimits *ret) {
        const Obj *ru = obj_get(md, "spec.strategy.rollingUpdate");
        RolloutLimits l;
        int r = rollout_scaled_value(obj_map_get(ru, "maxSurge"), replicas, true, 1, &l.max_surge);
        if (r < 0)
                return r;
        r = rollout_scaled_value(obj_map_get(ru, "maxUnavailable"), replicas, false, 0,
                                 &l.max_unavailable);
        if (r < 0)
                return r;
        if (l.max_surge == 0 && l.max_unavailable == 0)
                l.max_unavailable = 1;
        if (l.max_unavailable > replicas)
                l.max_unavailable = replicas;
        *ret = l;
        return 0;
}

static int64_t min64(int64_t a, int64_t b) {
        return a < b ? a : b;
}

int64_t rollout_new_replicas(bool on_delete, int64_t replicas, int64_t max_surge,
                             int64_t all_spec_replicas, int64_t new_spec_replicas) {
        int64_t max_total = on_delete ? replicas : replicas + max_surge;
        if (all_spec_replicas >= max_total)
                return new_spec_replicas;
        int64_t up = min64(max_total - all_spec_replicas, replicas - new_spec_replicas);
        return new_spec_replicas + (up > 0 ? up : 0);
}

int64_t rollout_scale_down_old(RolloutSet *old, size_t n_old, int64_t replicas,
                               int64_t max_unavailable, int64_t new_spec_replicas,
                               int64_t new_available) {
        int64_t old_spec = 0, old_available = 0;
        for (size_t i = 0; i < n_old; i++) {
                old[i].new_replicas = old[i].spec_replicas;
                old_spec += old[i].spec_replicas;
                old_available += old[i].available;
        }
        if (old_spec == 0)
                return 0;
        int64_t all_spec = old_spec + new_spec_replicas;
        int64_t min_available = replicas - max_unavailable;
        int64_t new_unavailable = new_spec_replicas - new_available;
        int64_t max_scaled_down = all_spec - min_available - new_unavailable;
        if (max_scaled_down <= 0)
                return 0;

        /* Unavailable machines of old sets first: removing them costs no availability. */
        int64_t cleaned = 0;
        for (size_t i = 0; i < n_old && cleaned < max_scaled_down; i++) {
                int64_t unhealthy = old[i].spec_replicas - old[i].available;
                if (old[i].spec_replicas == 0 || unhealthy <= 0)
                        continue;
                int64_t d = min64(max_scaled_down - cleaned, unhealthy);
                old[i].new_replicas -= d;
                cleaned += d;
        }

        /* Then as far as availability allows. */
        int64_t available = old_available + new_available;
        if (available <= min_available)
                return cleaned;
        int64_t budget = available - min_available, scaled = 0;
        for (size_t i = 0; i < n_old && scaled < budget; i++) {
                if (old[i].new_replicas == 0)
                        continue;
                int64_t d = min64(old[i].new_replicas, budget - scaled);
                old[i].new_replicas -= d;
                scaled += d;
        }
        return cleaned + scaled;
}
