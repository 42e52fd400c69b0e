/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes-style Events: one Event object per (object, reason), its count and
 * lastTimestamp bumped when it repeats, so `anvilctl describe` can show what happened
 * recently without the store filling with copies. Events are owned by their object and go
 * with it.
 */
#include <stdarg.h>
#include <time.h>

#include "log.h"
#include "manager.h"
#include "resource.h"

extern const KindInfo kind_event;

void manager_event(Manager *m, const Obj *obj, const char *type, const char *reason,
                   const char *fmt, ...) {
        char message[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);

        const char *ns = meta_namespace(obj) ? meta_namespace(obj) : "default";
        char name[300];
        snprintf(name, sizeof(name), "%.200s.%.40s", strempty(meta_name(obj)), reason);
        for (char *p = name; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        char ts[32];
        now_rfc3339(ts);

        _cleanup_(obj_freep) Obj *ev = NULL;
        int r = registry_get(m->reg, &kind_event, ns, name, &ev);
        if (r >= 0) {
                int64_t count = 1;
                obj_get_int(ev, "count", &count);
                if (obj_map_set_int(ev, "count", count + 1) < 0 ||
                    obj_map_set_str(ev, "lastTimestamp", ts) < 0 ||
                    obj_map_set_str(ev, "message", message) < 0 ||
                    obj_map_set_str(ev, "type", type) < 0)
                        return;
                r = registry_update(m->reg, ev);
        } else if (r == -ENOENT) {
                ev = obj_new_map();
                _cleanup_(obj_freep) Obj *ref = object_ref(obj);
                if (!ev || !ref || obj_map_set_str(ev, "kind", "Event") < 0 ||
                    obj_set_str(ev, "metadata.name", name) < 0 ||
                    obj_set_str(ev, "metadata.namespace", ns) < 0 ||
                    obj_map_set(ev, "involvedObject", TAKE_PTR(ref)) < 0 ||
                    obj_map_set_str(ev, "reason", reason) < 0 ||
                    obj_map_set_str(ev, "message", message) < 0 ||
                    obj_map_set_str(ev, "type", type) < 0 || obj_map_set_int(ev, "count", 1) < 0 ||
                    obj_map_set_str(ev, "firstTimestamp", ts) < 0 ||
                    obj_map_set_str(ev, "lastTimestamp", ts) < 0 ||
                    obj_set_str(ev, "source.component", "anvil-coordinator") < 0)
                        return;
                if (meta_uid(obj) && meta_add_owner_ref(ev, obj, false) < 0)
                        return;
                r = registry_create(m->reg, ev);
        }
        if (r < 0)
                log_debug_errno(r, "Failed to record event %s: %m", name);
}
