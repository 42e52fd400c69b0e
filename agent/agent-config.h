/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's configuration: /etc/anvil/agent.yaml, then the kernel command line
 * (anvil.coordinator=, anvil.coordinator_key=, anvil.token= — how a PXE-booted host learns
 * them), then command-line flags, each overriding the one before.
 */
#pragma once

#include <stdint.h>

#include "macro.h"
#include "obj.h"
#include "schema.h"

typedef struct AgentConfig {
        char *coordinator;     /* tcp://HOST:PORT */
        char *coordinator_key; /* Z85 public key */
        char *token;           /* enrollment token (only needed until enrolled) */
        char *state_dir;       /* keys, progress */
        char *product_uuid;    /* override of /sys/class/dmi/id/product_uuid */
        char *hostname;        /* override of gethostname() */
        char *host_root;       /* the filesystem kubeadm works on; "/" on a real host */
        char *kubeadm;         /* path of kubeadm */
        char *kubectl;         /* path of kubectl */
        char *cmdline_path;    /* /proc/cmdline (tests point it elsewhere) */
        char *facts_root;      /* where /sys, /proc and /etc are read for facts ("" = /) */
        char **environment;    /* KEY=VALUE given to every command */
        char **cleanup;        /* shell lines run after kubeadm reset */
        /* Shell lines that install the new kubeadm/kubelet for an in-place upgrade. */
        char **upgrade;
        char **units;         /* systemd units whose health is reported */
        char *metrics_listen; /* ADDR:PORT of the Prometheus endpoint, NULL = none */
        uint64_t heartbeat_usec;
        uint64_t facts_interval_usec; /* how often facts are collected again */
        uint64_t command_timeout_usec;
        uint64_t kubeadm_timeout_usec;
        /* How often a provisioned host reads its Node (node-check-interval). */
        uint64_t node_check_usec;
        int log_level; /* valid when has_log_level */
        bool has_log_level;
} AgentConfig;

/* Where the configuration comes from; kept by the agent so SIGHUP can read it again. */
typedef struct AgentConfigSource {
        char *path;        /* the configuration file */
        bool path_given;   /* named with --config: then a missing file is an error */
        AgentConfig flags; /* command-line values: they win over the file and cmdline */
} AgentConfigSource;

void agent_config_source_done(AgentConfigSource *s);

void agent_config_done(AgentConfig *c);

/* Schema of agent.yaml (also used by its fuzz target). */
extern const SchemaField agent_config_schema[];

/* Applies a parsed agent.yaml onto c. */
int agent_config_apply_yaml(AgentConfig *c, const Obj *o);

/* Parses a kernel command line; sets the anvil.* values found. Unknown anvil.* keys and
 * malformed values are reported through ret_error (and change nothing). */
int agent_config_apply_cmdline(AgentConfig *c, const char *cmdline, char **ret_error);

/* The environment every command gets: the configured one plus ANVIL_HOST_ROOT and
 * ANVIL_MACHINE (machine may be NULL). NULL on OOM. */
char **agent_config_command_env(const AgentConfig *c, const char *machine);
/* Path p (absolute) as seen from here: under host_root unless it is "/". */
char *agent_config_host_path(const AgentConfig *c, const char *p);

/* Fills defaults for anything unset. */
int agent_config_finish(AgentConfig *c);

/* The whole configuration: the file, then the kernel command line, then the flags, then
 * defaults. On failure *ret_error says what is wrong (file:line:column for the file) and ret
 * is untouched. Used at startup and again on SIGHUP. */
int agent_config_load(const AgentConfigSource *src, AgentConfig *ret, char **ret_error);
