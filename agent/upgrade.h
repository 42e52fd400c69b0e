/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-place upgrade plan of a provisioned host (plan action "Upgrade", state "Upgrading"):
 *
 *   upgrade-commands-N      each `upgrade-commands:` line of agent.yaml (/bin/sh -c), with
 *                           ANVIL_KUBERNETES_VERSION and ANVIL_UPGRADE_MODE in the environment:
 *                           the operator's way to install the new kubeadm/kubelet packages
 *   kubeadm-upgrade-apply   kubeadm upgrade apply vX.Y.Z -y   (the first control plane host)
 *   kubeadm-upgrade-node    kubeadm upgrade node              (every other host)
 *   restart-kubelet         systemd restarts kubelet.service (D-Bus RestartUnit, job awaited)
 *   wait-node               the Node is Ready and its kubelet reports vX.Y.Z
 *
 * Cordon, drain and uncordon are not steps of this plan: the coordinator has them run by a
 * control plane host (commands), around it. Each step is persisted like a provisioning step;
 * every one may run again after a crash (package installs and kubeadm upgrade are idempotent).
 */
#pragma once

#include <systemd/sd-event.h>

#include "agent-config.h"
#include "obj.h"

#define UPGRADE_KUBELET_UNIT "kubelet.service"

/* A version safe to put in argv and the environment: vMAJOR.MINOR.PATCH[-pre][+build] with
 * only [A-Za-z0-9.+-]. */
bool upgrade_version_valid(const char *v);
/* Appends the plan's steps (names as above) to steps. mode: "apply" or "node". */
int upgrade_build_steps(const AgentConfig *c, const char *mode, Obj *steps);
/* kubeadm upgrade apply VERSION -y | kubeadm upgrade node, with --rootfs when the host root is
 * not "/". */
int upgrade_kubeadm_argv(const AgentConfig *c, const char *mode, const char *version, char ***ret);
/* The environment of an upgrade command: the agent's, plus ANVIL_KUBERNETES_VERSION and
 * ANVIL_UPGRADE_MODE. NULL on OOM. */
char **upgrade_command_env(const AgentConfig *c, const char *machine, const char *version,
                           const char *mode);
/* Same major.minor.patch ("v1.31.0" matches "v1.31.0-rc.1+abc" is false: pre-release counts). */
bool upgrade_versions_match(const char *have, const char *want);

/*
 * Restart of a systemd unit through the system bus: Subscribe, RestartUnit(unit, "replace"),
 * then wait for the job's JobRemoved signal; done gets 0 when the job result is "done", else
 * a negative errno and a message. Returns -ENOENT (or another negative errno) at once when
 * there is no system bus to talk to — the caller decides what that means. Unlike
 * health_restart_unit() (agent/health.c) it needs no unit watcher (an agent may watch no
 * units), has its own timeout and survives a configuration reload; merging the two into one
 * bus client is left for later.
 */
typedef struct UnitRestart UnitRestart;
typedef void (*UnitRestartDone)(int r, const char *message, void *userdata);
int unit_restart_start(sd_event *e, const char *unit, uint64_t timeout_usec, UnitRestartDone done,
                       void *userdata, UnitRestart **ret);
UnitRestart *unit_restart_free(UnitRestart *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(UnitRestart *, unit_restart_free);
