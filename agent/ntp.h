/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ntp step of a provision plan: the KubeadmConfig's ntp (the bundle's "ntp", present only
 * when ntp.enabled is not false), applied as cloud-init's ntp module applies it when the
 * client is systemd-timesyncd: a drop-in NTP_DROPIN saying NTP= the servers, then a restart
 * of systemd-timesyncd through systemd (agent.c, with upgrade.h's UnitRestart), so the
 * servers are used at once. Without servers the drop-in names none and timesyncd keeps its
 * own (on Debian its FallbackNTP is the distribution's pool, as cloud-init's default pools
 * are). Writing the file again is harmless, so a resumed step simply runs again.
 */
#pragma once

#include "agent-config.h"
#include "obj.h"

#define NTP_UNIT   "systemd-timesyncd.service"
#define NTP_DROPIN "/etc/systemd/timesyncd.conf.d/anvil.conf"

/* The drop-in's text for ntp (the bundle's ntp object). NULL on OOM. */
char *ntp_dropin_text(const Obj *ntp, const char *machine);
/* Writes NTP_DROPIN under the host root (0644, atomically). On failure err says why. */
int ntp_write_dropin(const AgentConfig *c, const Obj *ntp, const char *machine, char *err,
                     size_t errsz);
