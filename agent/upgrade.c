/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-place upgrade plan's pieces (see upgrade.h): its steps, the kubeadm argument vector,
 * the environment of the operator's upgrade commands, and the kubelet restart through
 * systemd's D-Bus API. Expected load: one upgrade per host per Kubernetes release.
 */
#include <ctype.h>
#include <systemd/sd-bus.h>

#include "log.h"
#include "schema.h"
#include "upgrade.h"

bool upgrade_version_valid(const char *v) {
        if (!v || strlen(v) > 64 || parse_k8s_version(v, NULL) < 0)
                return false;
        for (const char *p = v; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr(".+-", *p))
                        return false;
        return true;
}

bool upgrade_versions_match(const char *have, const char *want) {
        K8sVersion a, b;
        if (!have || !want || parse_k8s_version(have, &a) < 0 || parse_k8s_version(want, &b) < 0)
                return false;
        const char *sa = strpbrk(have, "-+"), *sb = strpbrk(want, "-+");
        bool pre_a = sa && *sa == '-', pre_b = sb && *sb == '-';
        return a.major == b.major && a.minor == b.minor && a.patch == b.patch && pre_a == pre_b;
}

static int add_step(Obj *steps, const char *name) {
        _cleanup_(obj_freep) Obj *s = obj_new_map();
        if (!s || obj_map_set_str(s, "name", name) < 0 ||
            obj_map_set_str(s, "status", "pending") < 0)
                return -ENOMEM;
        return obj_list_append(steps, TAKE_PTR(s));
}

int upgrade_build_steps(const AgentConfig *c, const char *mode, Obj *steps) {
        int r = 0;
        char n[48];
        for (size_t i = 0; r >= 0 && c->upgrade && c->upgrade[i]; i++) {
                snprintf(n, sizeof(n), "upgrade-commands-%zu", i + 1);
                r = add_step(steps, n);
        }
        if (r >= 0)
                r = add_step(steps, streq(mode, "apply") ? "kubeadm-upgrade-apply"
                                                         : "kubeadm-upgrade-node");
        if (r >= 0)
                r = add_step(steps, "restart-kubelet");
        if (r >= 0)
                r = add_step(steps, "wait-node");
        return r;
}

int upgrade_kubeadm_argv(const AgentConfig *c, const char *mode, const char *version, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;
        int r;
        if ((r = strv_extend(&argv, c->kubeadm)) < 0 || (r = strv_extend(&argv, "upgrade")) < 0)
                return r;
        if (streq(mode, "apply")) {
                if (!upgrade_version_valid(version))
                        return -EINVAL;
                if ((r = strv_extend(&argv, "apply")) < 0 ||
                    (r = strv_extend(&argv, version)) < 0 || (r = strv_extend(&argv, "-y")) < 0)
                        return r;
        } else if ((r = strv_extend(&argv, "node")) < 0)
                return r;
        if (!streq(c->host_root, "/") && ((r = strv_extend(&argv, "--rootfs")) < 0 ||
                                          (r = strv_extend(&argv, c->host_root)) < 0))
                return r;
        *ret = TAKE_PTR(argv);
        return 0;
}

char **upgrade_command_env(const AgentConfig *c, const char *machine, const char *version,
                           const char *mode) {
        _cleanup_strv_free_ char **env = agent_config_command_env(c, machine);
        _cleanup_free_ char *v = strjoin("ANVIL_KUBERNETES_VERSION=", strempty(version));
        _cleanup_free_ char *md = strjoin("ANVIL_UPGRADE_MODE=", strempty(mode));
        if (!env || !v || !md || strv_extend(&env, v) < 0 || strv_extend(&env, md) < 0)
                return NULL;
        return TAKE_PTR(env);
}

/* ---- kubelet restart over D-Bus ---- */

struct UnitRestart {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *subscribe_slot, *restart_slot, *match_slot;
        sd_event_source *timeout, *finish;
        char *unit;
        char *job;  /* the RestartUnit job's object path, once the reply came */
        int result; /* final result, delivered from the defer source */
        char *message;
        bool finished;
        UnitRestartDone done;
        void *userdata;
};

UnitRestart *unit_restart_free(UnitRestart *u) {
        if (!u)
                return NULL;
        sd_bus_slot_unref(u->subscribe_slot);
        sd_bus_slot_unref(u->restart_slot);
        sd_bus_slot_unref(u->match_slot);
        sd_event_source_disable_unref(u->timeout);
        sd_event_source_disable_unref(u->finish);
        sd_bus_flush_close_unref(u->bus);
        sd_event_unref(u->event);
        free(u->unit);
        free(u->job);
        free(u->message);
        free(u);
        return NULL;
}

static int on_finish(sd_event_source *s, void *userdata) {
        UnitRestart *u = userdata;
        (void)s;
        /* done may free u: nothing of u is touched afterwards. */
        u->done(u->result, u->message, u->userdata);
        return 0;
}

/* Records the outcome once and hands it over from a clean stack (not from inside a bus
 * callback, since done may free the bus). */
static void finish(UnitRestart *u, int r, const char *fmt, ...) _printf_(3, 4);
static void finish(UnitRestart *u, int r, const char *fmt, ...) {
        if (u->finished)
                return;
        u->finished = true;
        u->result = r;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(&u->message, fmt, ap) < 0)
                        u->message = NULL;
                va_end(ap);
        }
        if (sd_event_add_defer(u->event, &u->finish, on_finish, u) < 0)
                u->done(u->result, u->message, u->userdata); /* no other way to say it */
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitRestart *u = userdata;
        uint32_t id;
        const char *path, *unit, *result;
        (void)ret_error;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (!u->job || !streq(path, u->job))
                return 0;
        if (streq(result, "done"))
                finish(u, 0, NULL);
        else
                finish(u, -EIO, "the restart job of %s finished with result \"%s\"", u->unit,
                       result);
        return 0;
}

static int on_restart_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitRestart *u = userdata;
        (void)ret_error;
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);
                finish(u, -sd_bus_message_get_errno(m) ?: -EIO, "RestartUnit(%s) failed: %s: %s",
                       u->unit, strna(e ? e->name : NULL), strna(e ? e->message : NULL));
                return 0;
        }
        const char *path;
        if (sd_bus_message_read(m, "o", &path) < 0 || !(u->job = strdup(path))) {
                finish(u, -EBADMSG, "RestartUnit(%s) answered something unexpected", u->unit);
                return 0;
        }
        log_debug("systemd queued job %s to restart %s.", u->job, u->unit);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        UnitRestart *u = userdata;
        (void)s;
        (void)usec;
        finish(u, -ETIMEDOUT, "systemd did not finish restarting %s in time", u->unit);
        return 0;
}

int unit_restart_start(sd_event *e, const char *unit, uint64_t timeout_usec, UnitRestartDone done,
                       void *userdata, UnitRestart **ret) {
        _cleanup_(unit_restart_freep) UnitRestart *u = calloc(1, sizeof(UnitRestart));
        if (!u)
                return -ENOMEM;
        u->event = sd_event_ref(e);
        u->done = done;
        u->userdata = userdata;
        u->unit = strdup(unit);
        if (!u->unit)
                return -ENOMEM;
        int r = sd_bus_open_system(&u->bus);
        if (r < 0)
                return r;
        if ((r = sd_bus_attach_event(u->bus, e, SD_EVENT_PRIORITY_NORMAL)) < 0)
                return r;
        /* systemd sends JobRemoved only to subscribed clients; match before asking, so the
         * signal cannot slip past us. */
        r = sd_bus_match_signal_async(
                u->bus, &u->match_slot, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, NULL, u);
        if (r >= 0)
                r = sd_bus_call_method_async(u->bus, &u->subscribe_slot, "org.freedesktop.systemd1",
                                             "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", "Subscribe", NULL,
                                             NULL, NULL);
        if (r >= 0)
                r = sd_bus_call_method_async(u->bus, &u->restart_slot, "org.freedesktop.systemd1",
                                             "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", "RestartUnit",
                                             on_restart_reply, u, "ss", unit, "replace");
        if (r >= 0)
                r = sd_event_add_time_relative(e, &u->timeout, CLOCK_MONOTONIC, timeout_usec,
                                               USEC_PER_SEC, on_timeout, u);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(u);
        return 0;
}
