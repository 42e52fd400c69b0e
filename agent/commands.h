/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of coordinator COMMANDs: cluster-wide chores a control plane host runs
 * with the cluster's admin kubeconfig. Only an allow-list of commands exists, each with
 * validated arguments and a fixed argument vector (never a shell):
 *
 *   token-create        kubeadm token create TOKEN --ttl D --description S
 *   drain-node          kubectl drain NODE --ignore-daemonsets --delete-emptydir-data --force
 *   delete-node         kubectl delete node NODE --ignore-not-found
 *   cordon-node         kubectl cordon NODE
 *   uncordon-node       kubectl uncordon NODE
 *   etcd-remove-member  kubectl exec etcd-SELF -- etcdctl member list, then member remove ID
 *
 * Each is idempotent (a gone node or member is success), so the coordinator may ask again
 * after a restart of either side. One command runs at a time, beside the step plan; a
 * duplicate of a running or recently finished id is answered from memory.
 */
#pragma once

#include <systemd/sd-event.h>

#include "agent-config.h"
#include "obj.h"

typedef struct CommandRunner CommandRunner;

/* Called with a RESULT body {id, exitCode, output}. */
typedef void (*CommandResultFn)(const Obj *result, void *userdata);

int command_runner_new(sd_event *e, const AgentConfig *config, CommandResultFn fn,
                       void *userdata, CommandRunner **ret);
CommandRunner *command_runner_free(CommandRunner *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(CommandRunner *, command_runner_free);

/* A COMMAND body {id, command, args}. self_node: this host's node name (for etcd). */
void command_runner_submit(CommandRunner *r, const Obj *body, const char *self_node);
