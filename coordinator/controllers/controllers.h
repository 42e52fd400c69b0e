/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One reconciler per kind (Cluster API's shape): fetch the object, handle pause and
 * deletion, reconcile phase by phase, write status and conditions at the end. Level-
 * triggered and idempotent: running one twice changes nothing the second time.
 *
 * The return convention is the work queue's: < 0 retry with backoff, 0 done, > 0 look again
 * after that many microseconds.
 */
#pragma once

#include "manager.h"

/* Finalizers, as Cluster API names them. */
#define FINALIZER_CLUSTER      "cluster.cluster.x-k8s.io"
#define FINALIZER_MACHINE      "machine.cluster.x-k8s.io"
#define FINALIZER_KCP          "kubeadm.controlplane.cluster.x-k8s.io"
#define FINALIZER_ANVILMACHINE "anvilmachine.infrastructure.anvil.dev"
#define FINALIZER_ANVILCLUSTER "anvilcluster.infrastructure.anvil.dev"

/* Well-known labels and annotations. */
#define LABEL_CLUSTER_NAME        "cluster.x-k8s.io/cluster-name"
#define LABEL_CONTROL_PLANE       "cluster.x-k8s.io/control-plane"
#define LABEL_CONTROL_PLANE_NAME  "cluster.x-k8s.io/control-plane-name"
#define LABEL_DEPLOYMENT_NAME     "cluster.x-k8s.io/deployment-name"
#define LABEL_SET_NAME            "cluster.x-k8s.io/set-name"
#define LABEL_TEMPLATE_HASH       "machine-template-hash"
#define ANNOTATION_PAUSED         "cluster.x-k8s.io/paused"
#define ANNOTATION_DELETE_MACHINE "cluster.x-k8s.io/delete-machine"

#define REQUEUE_SOON  (2 * USEC_PER_SEC)
#define REQUEUE_LATER (30 * USEC_PER_SEC)

int reconcile_cluster(Manager *m, const char *ns, const char *name);
int reconcile_anvilcluster(Manager *m, const char *ns, const char *name);
int reconcile_kcp(Manager *m, const char *ns, const char *name);
int reconcile_machinedeployment(Manager *m, const char *ns, const char *name);
int reconcile_machineset(Manager *m, const char *ns, const char *name);
int reconcile_machine(Manager *m, const char *ns, const char *name);
int reconcile_kubeadmconfig(Manager *m, const char *ns, const char *name);
int reconcile_anvilmachine(Manager *m, const char *ns, const char *name);
int reconcile_host(Manager *m, const char *ns, const char *name);

/* The work queue's handler: dispatches a key to its kind's reconciler. */
int controllers_reconcile(const char *key, void *userdata);
/* Enqueues the reconciles that a committed change of obj concerns: itself, its owners,
 * and the kind-specific dependents (a Host change wakes its Machine, ...). */
void controllers_map_change(Manager *m, const KindInfo *k, const Obj *obj);
/* At startup and periodically: every object of every reconciled kind. */
int controllers_enqueue_all(Manager *m);

/* Shared helpers. */
bool cluster_paused(const Obj *cluster, const Obj *obj);
int get_owner_cluster(Manager *m, const Obj *obj, Obj **ret);
/* The name of the Host a Machine holds (through its AnvilMachine), or NULL. */
char *machine_host_name(Manager *m, const Obj *machine);
/* The object key of obj, for command requesters. */
char *object_key(const Obj *obj);

/* Creates the Machine + KubeadmConfig + AnvilMachine trio for an owner (KCP or
 * MachineSet). */
int create_machine_trio(Manager *m, const Obj *owner, const char *cluster_name,
                        const Obj *machine_template_spec, const Obj *labels, const Obj *annotations,
                        const Obj *kubeadm_config_spec, const Obj *infra_template_spec,
                        char **ret_name);
