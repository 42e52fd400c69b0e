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
#define ANNOTATION_REVISION       "machinedeployment.clusters.x-k8s.io/revision"
#define ANNOTATION_DISABLE_CREATE "cluster.x-k8s.io/disable-machine-create"
/* Anvil: retry a failed in-place upgrade of this Machine (any value; removed when taken). */
#define ANNOTATION_RETRY_UPGRADE "anvil.dev/retry-upgrade"
/* Anvil: set with spec.version by an owner that asks for an in-place upgrade; removed by the
 * Machine controller when the upgrade starts (so nobody counts it as up to date meanwhile). */
#define ANNOTATION_UPGRADE_PENDING "anvil.dev/in-place-upgrade-to"
/* Anvil: hash of the control plane spec a control plane Machine was made from. */
#define ANNOTATION_CP_SPEC_HASH "anvil.dev/control-plane-spec-hash"

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
int reconcile_mhc(Manager *m, const char *ns, const char *name);

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
/* Makes cluster an owner (not the controller) of the template ref names (a kind ending in
 * "Template", in ref's namespace or ns), as Cluster API's MachineDeployment, MachineSet and
 * KubeadmControlPlane controllers do: the template then goes with the last cluster using it.
 * A template that does not exist is left to the caller to report. */
int cluster_own_template(Manager *m, const Obj *cluster, const Obj *ref, const char *ns);
/* The name of the Host a Machine holds (through its AnvilMachine), or NULL. */
char *machine_host_name(Manager *m, const Obj *machine);
/* The object key of obj, for command requesters. */
char *object_key(const Obj *obj);

/* Ten characters that name a revision: a hash of o that does not depend on map key order. */
void object_hash(const Obj *o, char out[11]);

/* A Machine whose node is there and Ready (Running, nodeRef, NodeHealthy). */
bool machine_is_ready(const Obj *machine);
/* The kubelet of the Machine's node runs spec.version (or either is not known yet). Cluster
 * API takes this for granted (its machine images carry the version); Anvil's hosts are
 * reused, so a Machine whose kubelet reports another version is not counted as up to date. */
bool machine_kubelet_matches(const Obj *machine);
/* Ready for min_ready_seconds, and not cordoned for an in-place upgrade. */
bool machine_is_available(const Obj *machine, int64_t min_ready_seconds);
/* Compares two Kubernetes versions by major.minor.patch; -EINVAL if either is malformed. */
int k8s_version_cmp(const char *a, const char *b, int *ret);

/* ---- in-place upgrades (inplace.c) ---- */

/* The Machine is in an in-place upgrade (asked for, cordoned, upgrading, or failed and
 * waiting). */
bool machine_upgrading(const Obj *machine);
/* Asks for the in-place upgrade of machine to version (spec.version and the pending
 * annotation, one write). */
int machine_request_upgrade(Manager *m, Obj *machine, const char *version);
bool machine_upgrade_failed(const Obj *machine);
/* The version the Machine's host runs: what it was provisioned with or last upgraded to. */
const char *host_machine_version(const Obj *host);
bool host_agent_current(const Obj *host);
/*
 * Drives the in-place upgrade of a provisioned Machine whose spec.version differs from what
 * its host runs (an owner set it: KubeadmControlPlane one at a time, MachineDeployment within
 * maxUnavailable): cordon, drain, the host's upgrade plan, uncordon. Progress is in
 * status.inPlaceUpgrade and the InPlaceUpgraded condition. machine is edited in place (the
 * caller saves it).
 */
int machine_inplace_reconcile(Manager *m, Obj *machine, const Obj *host);
/* The lowest version the control plane machines of cluster ns/name run (their hosts' version);
 * -ENOENT when the cluster has no control plane machine, -EBUSY while one of them is in an
 * in-place upgrade (or stopped in a failed one). */
int control_plane_version(Manager *m, const char *ns, const char *cluster, char **ret);
/* For api.c: version skew rules on an update of a KubeadmControlPlane or MachineDeployment.
 * skew_check_update: no minor version skipped (live → merged, one document). Adds problems. */
int skew_check_update(Manager *m, const KindInfo *k, const Obj *live, const Obj *merged,
                      Problems *p);
/* skew_check_applied: no kubelet newer than the control plane, nor more than three minor
 * versions older — before → after, once every document of the apply is written (in the open
 * store group), so it sees the other documents' objects as the apply leaves them. */
int skew_check_applied(Manager *m, const KindInfo *k, const Obj *before, const Obj *after,
                       Problems *p);

/* Creates the Machine + KubeadmConfig + AnvilMachine trio for an owner (KCP or
 * MachineSet). */
int create_machine_trio(Manager *m, const Obj *owner, const char *cluster_name,
                        const Obj *machine_template_spec, const Obj *labels, const Obj *annotations,
                        const Obj *kubeadm_config_spec, const Obj *infra_template_spec,
                        char **ret_name);
