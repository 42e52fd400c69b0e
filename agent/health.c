/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Health: watched units over sd-bus. Invariants: everything is asynchronous (the agent's one
 * loop never waits on the bus); a unit's state is only what systemd last said (GetAll after
 * LoadUnit, then PropertiesChanged; again after every daemon-reload); the summary is only
 * offered once every unit has been read, so the coordinator never sees a half-read host as
 * unhealthy. See health.h for the contract.
 *
 * Why Subscribe(): systemd emits unit PropertiesChanged and JobRemoved only while at least
 * one client has subscribed. Why LoadUnit rather than computing the object path: it resolves
 * aliases to the unit's real object, and a unit that is not installed still gets a path
 * (LoadState "not-found") that starts emitting signals once it is.
 */
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "health.h"
#include "log.h"

#define SD_DEST        "org.freedesktop.systemd1"
#define SD_PATH        "/org/freedesktop/systemd1"
#define SD_MANAGER     "org.freedesktop.systemd1.Manager"
#define SD_UNIT        "org.freedesktop.systemd1.Unit"
#define SD_SERVICE     "org.freedesktop.systemd1.Service"
#define RECONNECT_USEC (5 * USEC_PER_SEC)

typedef struct Unit {
        Health *h;
        char *name;
        char *path; /* object path from LoadUnit */
        sd_bus_slot *load_call, *unit_call, *service_call, *match;
        char load_state[32];   /* "loaded", "not-found", "masked", "error" ... */
        char active_state[32]; /* "active", "failed", "activating" ... */
        char sub_state[32];    /* "running", "dead", "auto-restart" ... */
        char result[32];       /* services only: "success", "exit-code", "watchdog" ... */
        uint32_t restarts;     /* services only: NRestarts (automatic restarts) */
        bool known;            /* the Unit interface was read at least once */
        bool is_service;
} Unit;

typedef struct RestartJob {
        struct RestartJob *next;
        Health *h;
        char *unit;
        char *job; /* job object path, once queued */
        sd_bus_slot *call;
        HealthRestartDone done;
        void *userdata;
} RestartJob;

struct Health {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *disconnected, *reloading, *job_removed, *subscribe;
        Unit *units;
        size_t n_units;
        RestartJob *jobs;
        sd_event_source *defer; /* coalesces change notifications */
        sd_event_source *retry; /* reconnect after the bus went away */
        HealthChanged changed;
        void *userdata;
        bool logged_unavailable;
};

bool health_unit_ok(const char *load_state, const char *active_state) {
        return streq_ptr(load_state, "loaded") &&
               (streq_ptr(active_state, "active") || streq_ptr(active_state, "reloading"));
}

static bool endswith_service(const char *name) {
        size_t n = strlen(name);
        return n > 8 && streq(name + n - 8, ".service");
}

static void notify_changed(Health *h) {
        if (h->defer)
                (void)sd_event_source_set_enabled(h->defer, SD_EVENT_ONESHOT);
}

static bool set_state(char *dst, size_t size, const char *v) {
        if (streq(dst, strempty(v)))
                return false;
        snprintf(dst, size, "%s", strempty(v));
        return true;
}
#define SET_STATE(dst, v) set_state((dst), sizeof(dst), (v))

/* ---- restarts ---- */

static void job_finish(Health *h, RestartJob *j, int error, const char *result) {
        for (RestartJob **p = &h->jobs; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        HealthRestartDone done = j->done;
        void *ud = j->userdata;
        _cleanup_free_ char *unit = TAKE_PTR(j->unit);
        sd_bus_slot_unref(j->call);
        free(j->job);
        free(j);
        if (done)
                done(unit, error, result, ud);
}

static int on_restart_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        RestartJob *j = userdata;
        (void)ret_error;
        j->call = sd_bus_slot_unref(j->call);
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e) {
                log_warning("systemd refused to restart %s: %s", j->unit, e->message);
                job_finish(j->h, j, -sd_bus_error_get_errno(e) ?: -EIO, e->message);
                return 0;
        }
        const char *path;
        int r = sd_bus_message_read(m, "o", &path);
        if (r < 0 || !(j->job = strdup(path))) {
                job_finish(j->h, j, r < 0 ? r : -ENOMEM, "bad reply to RestartUnit");
                return 0;
        }
        log_debug("Restart of %s queued as %s.", j->unit, j->job);
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Health *h = userdata;
        (void)ret_error;
        uint32_t id;
        const char *path, *unit, *result;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        for (RestartJob *j = h->jobs; j; j = j->next)
                if (j->job && streq(j->job, path)) {
                        bool ok = streq(result, "done");
                        log_full(ok ? LOG_INFO : LOG_WARNING, "Restart of %s finished: %s.", unit,
                                 result);
                        job_finish(h, j, ok ? 0 : -EIO, result);
                        break;
                }
        return 0;
}

int health_restart_unit(Health *h, const char *unit, HealthRestartDone done, void *userdata) {
        if (!h->bus)
                return -ENOTCONN;
        RestartJob *j = calloc(1, sizeof(RestartJob));
        if (!j || !(j->unit = strdup(unit))) {
                free(j);
                return -ENOMEM;
        }
        j->h = h;
        j->done = done;
        j->userdata = userdata;
        int r = sd_bus_call_method_async(h->bus, &j->call, SD_DEST, SD_PATH, SD_MANAGER,
                                         "RestartUnit", on_restart_reply, j, "ss", unit, "replace");
        if (r < 0) {
                free(j->unit);
                free(j);
                return r;
        }
        j->next = h->jobs;
        h->jobs = j;
        log_info("Restarting %s through systemd.", unit);
        return 0;
}

/* ---- unit state ---- */

/* Reads an a{sv} of one interface's properties; returns whether anything we keep changed. */
static int read_properties(Unit *u, sd_bus_message *m, bool service, bool *changed) {
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *s;
                if ((r = sd_bus_message_read(m, "s", &name)) < 0)
                        return r;
                char *dst = NULL;
                size_t size = 0;
                if (!service && streq(name, "LoadState"))
                        dst = u->load_state, size = sizeof(u->load_state);
                else if (!service && streq(name, "ActiveState"))
                        dst = u->active_state, size = sizeof(u->active_state);
                else if (!service && streq(name, "SubState"))
                        dst = u->sub_state, size = sizeof(u->sub_state);
                else if (service && streq(name, "Result"))
                        dst = u->result, size = sizeof(u->result);
                if (dst) {
                        if ((r = sd_bus_message_read(m, "v", "s", &s)) < 0)
                                return r;
                        *changed |= set_state(dst, size, s);
                } else if (service && streq(name, "NRestarts")) {
                        uint32_t n;
                        if ((r = sd_bus_message_read(m, "v", "u", &n)) < 0)
                                return r;
                        *changed |= n != u->restarts;
                        u->restarts = n;
                } else if ((r = sd_bus_message_skip(m, "v")) < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int on_get_all(sd_bus_message *m, void *userdata, bool service) {
        Unit *u = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (service)
                u->service_call = sd_bus_slot_unref(u->service_call);
        else
                u->unit_call = sd_bus_slot_unref(u->unit_call);
        if (e) {
                /* Not a service (a .mount, a .socket): it has no Service interface. */
                log_debug("Reading %s of %s failed: %s", service ? "Service" : "Unit", u->name,
                          e->message);
                return 0;
        }
        bool changed = !service && !u->known;
        int r = read_properties(u, m, service, &changed);
        if (r < 0) {
                log_warning_errno(r, "Cannot parse the properties of %s, ignoring: %m", u->name);
                return 0;
        }
        if (service)
                u->is_service = true;
        else
                u->known = true;
        if (changed)
                notify_changed(u->h);
        return 0;
}

static int on_unit_props(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        (void)ret_error;
        return on_get_all(m, userdata, false);
}

static int on_service_props(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        (void)ret_error;
        return on_get_all(m, userdata, true);
}

static void read_unit(Unit *u) {
        sd_bus *bus = u->h->bus;
        u->unit_call = sd_bus_slot_unref(u->unit_call);
        u->service_call = sd_bus_slot_unref(u->service_call);
        int r = sd_bus_call_method_async(bus, &u->unit_call, SD_DEST, u->path,
                                         "org.freedesktop.DBus.Properties", "GetAll", on_unit_props,
                                         u, "s", SD_UNIT);
        if (r >= 0 && endswith_service(u->name))
                r = sd_bus_call_method_async(bus, &u->service_call, SD_DEST, u->path,
                                             "org.freedesktop.DBus.Properties", "GetAll",
                                             on_service_props, u, "s", SD_SERVICE);
        if (r < 0)
                log_warning_errno(r, "Cannot read the state of %s: %m", u->name);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Unit *u = userdata;
        (void)ret_error;
        const char *iface;
        if (sd_bus_message_read(m, "s", &iface) < 0)
                return 0;
        bool service = streq(iface, SD_SERVICE);
        if (!service && !streq(iface, SD_UNIT))
                return 0;
        bool changed = false;
        int r = read_properties(u, m, service, &changed);
        if (r < 0) {
                log_debug_errno(r, "Cannot parse PropertiesChanged of %s, re-reading: %m", u->name);
                read_unit(u);
                return 0;
        }
        /* Properties systemd only invalidates are fetched again. */
        const char *inv;
        bool refetch = false;
        if (sd_bus_message_enter_container(m, 'a', "s") > 0) {
                while (sd_bus_message_read(m, "s", &inv) > 0)
                        refetch |= streq(inv, "ActiveState") || streq(inv, "SubState") ||
                                   streq(inv, "LoadState") || streq(inv, "Result") ||
                                   streq(inv, "NRestarts");
                (void)sd_bus_message_exit_container(m);
        }
        if (refetch)
                read_unit(u);
        if (changed) {
                log_debug("%s is now %s/%s (result %s, %u restarts).", u->name, u->active_state,
                          u->sub_state, u->result, u->restarts);
                notify_changed(u->h);
        }
        return 0;
}

static int on_load_unit(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Unit *u = userdata;
        (void)ret_error;
        u->load_call = sd_bus_slot_unref(u->load_call);
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e) {
                /* An invalid unit name in the configuration: say so, and count it unhealthy. */
                log_warning("Cannot watch unit %s: %s", u->name, e->message);
                SET_STATE(u->load_state, "error");
                u->known = true;
                notify_changed(u->h);
                return 0;
        }
        const char *path;
        int r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return 0;
        if (!streq_ptr(u->path, path)) {
                char *p = strdup(path);
                if (!p)
                        return 0;
                free(u->path);
                u->path = p;
                u->match = sd_bus_slot_unref(u->match);
                r = sd_bus_match_signal_async(u->h->bus, &u->match, SD_DEST, u->path,
                                              "org.freedesktop.DBus.Properties",
                                              "PropertiesChanged", on_properties_changed, NULL, u);
                if (r < 0)
                        log_warning_errno(r, "Cannot subscribe to changes of %s: %m", u->name);
        }
        read_unit(u);
        return 0;
}

static void watch_unit(Unit *u) {
        u->load_call = sd_bus_slot_unref(u->load_call);
        int r = sd_bus_call_method_async(u->h->bus, &u->load_call, SD_DEST, SD_PATH, SD_MANAGER,
                                         "LoadUnit", on_load_unit, u, "s", u->name);
        if (r < 0)
                log_warning_errno(r, "Cannot look up unit %s: %m", u->name);
}

static void unit_forget(Unit *u) {
        u->load_call = sd_bus_slot_unref(u->load_call);
        u->unit_call = sd_bus_slot_unref(u->unit_call);
        u->service_call = sd_bus_slot_unref(u->service_call);
        u->match = sd_bus_slot_unref(u->match);
        free(u->path);
        u->path = NULL;
        u->known = false;
}

static void units_free(Health *h) {
        for (size_t i = 0; i < h->n_units; i++) {
                unit_forget(&h->units[i]);
                free(h->units[i].name);
        }
        free(h->units);
        h->units = NULL;
        h->n_units = 0;
}

/* ---- the bus ---- */

static void disconnect(Health *h) {
        for (size_t i = 0; i < h->n_units; i++)
                unit_forget(&h->units[i]);
        while (h->jobs)
                job_finish(h, h->jobs, -ECONNRESET, "the bus connection was lost");
        h->disconnected = sd_bus_slot_unref(h->disconnected);
        h->reloading = sd_bus_slot_unref(h->reloading);
        h->job_removed = sd_bus_slot_unref(h->job_removed);
        h->subscribe = sd_bus_slot_unref(h->subscribe);
        if (h->bus) {
                (void)sd_bus_detach_event(h->bus);
                h->bus = sd_bus_flush_close_unref(h->bus);
        }
}

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata);

static void schedule_reconnect(Health *h, uint64_t delay) {
        if (!h->retry) {
                if (sd_event_add_time_relative(h->event, &h->retry, CLOCK_MONOTONIC, delay,
                                               USEC_PER_SEC / 10, on_reconnect, h) < 0)
                        return;
        } else
                (void)sd_event_source_set_time_relative(h->retry, delay);
        (void)sd_event_source_set_enabled(h->retry, SD_EVENT_ONESHOT);
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Health *h = userdata;
        (void)m;
        (void)ret_error;
        log_warning("Lost the connection to the system bus: unit health is unknown until it "
                    "is back.");
        notify_changed(h);
        /* Torn down from the timer, not from inside the bus's own dispatch. */
        schedule_reconnect(h, 0);
        return 0;
}

static int on_reloading(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Health *h = userdata;
        (void)ret_error;
        int active;
        if (sd_bus_message_read(m, "b", &active) < 0 || active)
                return 0;
        /* After a daemon-reload units may have appeared, gone or changed: read them again. */
        for (size_t i = 0; i < h->n_units; i++)
                watch_unit(&h->units[i]);
        return 0;
}

static int on_subscribed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Health *h = userdata;
        (void)ret_error;
        h->subscribe = sd_bus_slot_unref(h->subscribe);
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e)
                log_warning("systemd refused Subscribe (%s): unit changes may arrive late.",
                            e->message);
        return 0;
}

static int connect_bus(Health *h) {
        int r = sd_bus_open_system(&h->bus);
        if (r < 0)
                return r;
        (void)sd_bus_set_description(h->bus, "systemd-health");
        if ((r = sd_bus_attach_event(h->bus, h->event, SD_EVENT_PRIORITY_NORMAL)) < 0 ||
            (r = sd_bus_match_signal(h->bus, &h->disconnected, "org.freedesktop.DBus.Local",
                                     "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                     "Disconnected", on_disconnected, h)) < 0 ||
            (r = sd_bus_match_signal_async(h->bus, &h->reloading, SD_DEST, SD_PATH, SD_MANAGER,
                                           "Reloading", on_reloading, NULL, h)) < 0 ||
            (r = sd_bus_match_signal_async(h->bus, &h->job_removed, SD_DEST, SD_PATH, SD_MANAGER,
                                           "JobRemoved", on_job_removed, NULL, h)) < 0 ||
            (r = sd_bus_call_method_async(h->bus, &h->subscribe, SD_DEST, SD_PATH, SD_MANAGER,
                                          "Subscribe", on_subscribed, h, NULL)) < 0) {
                disconnect(h);
                return r;
        }
        for (size_t i = 0; i < h->n_units; i++)
                watch_unit(&h->units[i]);
        return 0;
}

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata) {
        Health *h = userdata;
        (void)s;
        (void)usec;
        disconnect(h);
        int r = connect_bus(h);
        if (r < 0) {
                log_debug_errno(r, "System bus still unreachable: %m");
                schedule_reconnect(h, RECONNECT_USEC);
                return 0;
        }
        log_info("Connected to the system bus again: watching %zu units.", h->n_units);
        return 0;
}

static int on_defer(sd_event_source *s, void *userdata) {
        Health *h = userdata;
        (void)s;
        if (h->changed)
                h->changed(h, h->userdata);
        return 0;
}

/* ---- the object ---- */

int health_set_units(Health *h, char *const *units) {
        size_t n = strv_length(units);
        Unit *nu = calloc(n ? n : 1, sizeof(Unit));
        if (!nu)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                nu[i].h = h;
                nu[i].name = strdup(units[i]);
                if (!nu[i].name) {
                        while (i-- > 0)
                                free(nu[i].name);
                        free(nu);
                        return -ENOMEM;
                }
        }
        units_free(h);
        h->units = nu;
        h->n_units = n;
        if (h->bus)
                for (size_t i = 0; i < n; i++)
                        watch_unit(&h->units[i]);
        notify_changed(h);
        return 0;
}

int health_new(sd_event *e, char *const *units, HealthChanged changed, void *userdata,
               Health **ret) {
        _cleanup_(health_freep) Health *h = calloc(1, sizeof(Health));
        if (!h)
                return -ENOMEM;
        h->event = sd_event_ref(e);
        h->changed = changed;
        h->userdata = userdata;
        int r = sd_event_add_defer(e, &h->defer, on_defer, h);
        if (r < 0)
                return r;
        /* Idle priority: a burst of signals (ActiveState, then SubState, then Result) is read
         * whole before anyone is told. */
        (void)sd_event_source_set_priority(h->defer, SD_EVENT_PRIORITY_IDLE);
        (void)sd_event_source_set_enabled(h->defer, SD_EVENT_OFF);
        if ((r = health_set_units(h, units)) < 0)
                return r;
        /* No systemd as PID 1 (the demo, the plain tests): nothing to watch, ever — even if
         * some system bus happens to exist. */
        r = sd_booted() > 0 ? connect_bus(h) : -ENOMEDIUM;
        if (r == -ENOMEDIUM)
                log_info("Not running under systemd: unit health is not reported.");
        else if (r < 0) {
                /* Under systemd the bus may just not be up yet: keep trying. */
                log_info_errno(r, "No system bus (%m): unit health is not reported until it is "
                                  "reachable.");
                schedule_reconnect(h, RECONNECT_USEC);
        } else
                log_info("Watching %zu units over the system bus.", h->n_units);
        *ret = TAKE_PTR(h);
        return 0;
}

Health *health_free(Health *h) {
        if (!h)
                return NULL;
        /* Restart callbacks are not called: their owner is going away too. */
        for (RestartJob *j = h->jobs; j; j = j->next)
                j->done = NULL;
        disconnect(h);
        units_free(h);
        sd_event_source_disable_unref(h->defer);
        sd_event_source_disable_unref(h->retry);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

bool health_available(Health *h) {
        return h && h->bus;
}

Obj *health_summary(Health *h) {
        if (!health_available(h) || h->n_units == 0)
                return NULL;
        for (size_t i = 0; i < h->n_units; i++)
                if (!h->units[i].known)
                        return NULL;
        _cleanup_(obj_freep) Obj *o = obj_new_map();
        Obj *units = o ? obj_map_ensure_map(o, "units") : NULL;
        if (!units)
                return NULL;
        bool healthy = true;
        for (size_t i = 0; i < h->n_units; i++) {
                Unit *u = &h->units[i];
                _cleanup_(obj_freep) Obj *s = obj_new_map();
                if (!s || obj_map_set_str(s, "loadState", u->load_state) < 0 ||
                    obj_map_set_str(s, "activeState", u->active_state) < 0 ||
                    obj_map_set_str(s, "subState", u->sub_state) < 0)
                        return NULL;
                if (u->is_service && (obj_map_set_str(s, "result", u->result) < 0 ||
                                      obj_map_set_int(s, "restarts", u->restarts) < 0))
                        return NULL;
                if (obj_map_set(units, u->name, TAKE_PTR(s)) < 0)
                        return NULL;
                healthy &= health_unit_ok(u->load_state, u->active_state);
        }
        if (obj_map_set_bool(o, "healthy", healthy) < 0)
                return NULL;
        return TAKE_PTR(o);
}
