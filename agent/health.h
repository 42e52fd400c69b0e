/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Health: the state of the systemd units that make a node work (kubelet.service,
 * containerd.service and the configured list), read from systemd over the system bus and
 * kept current from its PropertiesChanged signals — never polled. The agent reports the
 * summary with every heartbeat and, through the changed callback, at once when it changes.
 *
 * Without a system bus (no systemd as PID 1: the demo, the plain tests) health is simply not
 * available: health_new() still succeeds, health_summary() returns NULL, and that is logged
 * once. If the bus goes away under a running systemd, Health reconnects every few seconds.
 *
 * Expected load: a handful of units, a few signals per unit state change; nothing at all
 * while the units are steady.
 */
#pragma once

#include <systemd/sd-event.h>

#include "obj.h"

typedef struct Health Health;

/* Called (from a deferred event source, so a burst of signals makes one call) when the
 * summary changed. */
typedef void (*HealthChanged)(Health *h, void *userdata);

/* Called when a restart job finished: error is 0 when systemd's job result is "done",
 * negative otherwise; result is systemd's job result ("done", "failed", "timeout", ...) or
 * the bus error message when the job could not be queued. */
typedef void (*HealthRestartDone)(const char *unit, int error, const char *result, void *userdata);

/* units: NULL-terminated list of unit names (copied). */
int health_new(sd_event *e, char *const *units, HealthChanged changed, void *userdata,
               Health **ret);
Health *health_free(Health *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Health *, health_free);

/* Replaces the watched units (configuration reload). */
int health_set_units(Health *h, char *const *units);

/* True while connected to systemd's bus. */
bool health_available(Health *h);

/* The wire form: {healthy, units: {NAME: {loadState, activeState, subState, result,
 * restarts}}}. healthy is true only when every watched unit is loaded and active (or
 * reloading). NULL when not available or while the first reads are still in flight.
 * The caller owns the result. */
Obj *health_summary(Health *h);

/* Restarts a unit through systemd (Manager.RestartUnit, mode "replace") — how kubelet is
 * restarted after an in-place upgrade. done is called once, when systemd reports the job
 * finished (or at once with an error if it could not be queued); never after health_free().
 * -ENOTCONN when there is no bus. */
int health_restart_unit(Health *h, const char *unit, HealthRestartDone done, void *userdata);

/* The rule behind "healthy", for one unit (exposed for the unit test). */
bool health_unit_ok(const char *load_state, const char *active_state);
