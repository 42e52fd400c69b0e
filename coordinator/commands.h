/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Commands: work the coordinator asks one agent to do for the cluster as a whole — register
 * a join token, drain or delete a node, remove an etcd member — run by a control plane
 * host's agent with the cluster's admin kubeconfig, because the coordinator itself never
 * talks to a workload cluster's API server.
 *
 * Level-triggered like everything else: a controller calls command_run() on every reconcile
 * with a stable id and gets the state; the first call sends COMMAND, later calls return
 * PENDING until the agent's RESULT arrives (the requesting object is then re-queued), then
 * SUCCEEDED or FAILED with the exit code and output. The table is in memory only: after a
 * coordinator restart the controller asks again and the agent runs the command again, so
 * every command is idempotent on the agent side (deleting a deleted node succeeds, etc.).
 * A command with no answer within its timeout is sent again.
 *
 * Expected load: a handful per machine lifecycle event; a rollout of 1,000 machines has at
 * most a few hundred in flight.
 */
#pragma once

#include "manager.h"

typedef enum CommandState {
        COMMAND_PENDING,
        COMMAND_SUCCEEDED,
        COMMAND_FAILED,
} CommandState;

typedef struct Commands Commands;

int commands_new(Manager *m, Commands **ret);
Commands *commands_free(Commands *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Commands *, commands_free);

/*
 * Asks host to run command (one of the agent's allow-list: token-create, drain-node,
 * delete-node, etcd-remove-member, cordon-node, uncordon-node) with args (a string map),
 * on behalf of the object with key requester (re-queued when the result arrives).
 * timeout_usec: how long the agent may take before it is asked again.
 * Returns the state; for SUCCEEDED/FAILED, *ret_output (borrowed, may be NULL) and
 * *ret_exit are set.
 */
CommandState command_run(Commands *c, const char *id, const char *host, const char *command,
                         const Obj *args, const char *requester, uint64_t timeout_usec,
                         int *ret_exit, const char **ret_output);
/* Forgets a finished command (so the same id can run again). */
void command_forget(Commands *c, const char *id);
/* A RESULT from host (the authenticated one). */
void commands_on_result(Commands *c, const char *host, const Obj *body);

/* Picks a connected, provisioned control plane host of cluster ns/name to run cluster
 * commands, other than exclude_host (may be NULL). -ENOENT if none. */
int pick_control_plane_host(Manager *m, const char *ns, const char *cluster,
                            const char *exclude_host, char **ret);
