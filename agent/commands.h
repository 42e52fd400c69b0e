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
 *   kubeadm-config-update
 *                       kubectl -n kube-system get configmap kubeadm-config -o json, then (only
 *                       when something differs) kubectl patch ... --type merge with the new
 *                       ClusterConfiguration and the resourceVersion read (a conflict fails)
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

int command_runner_new(sd_event *e, const AgentConfig *config, CommandResultFn fn, void *userdata,
                       CommandRunner **ret);
CommandRunner *command_runner_free(CommandRunner *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(CommandRunner *, command_runner_free);

/* A COMMAND body {id, command, args}. self_node: this host's node name (for etcd). */
void command_runner_submit(CommandRunner *r, const Obj *body, const char *self_node);

/*
 * kubeadm-config-update's edit: from the kubeadm-config ConfigMap as `kubectl get -o json`
 * prints it and the command's args (kubernetesVersion; imageRepository; featureGates,
 * apiServer, controllerManager, scheduler, etcd as JSON texts, null removing the field), the
 * JSON merge patch to send — the new ClusterConfiguration YAML and the resourceVersion read.
 * Returns 1 with *ret_patch, 0 when nothing differs (*ret_patch NULL), < 0 with err set.
 */
int kubeadm_config_patch(const char *configmap_json, const Obj *args, char **ret_patch, char *err,
                         size_t errsz);
