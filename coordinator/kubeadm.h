/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What Cluster API's kubeadm bootstrap provider does, coordinator side: the cluster's
 * certificate Secrets, the join token, and the rendering of a KubeadmConfig into the
 * bootstrap bundle (kubeadm.k8s.io/v1beta3 InitConfiguration + ClusterConfiguration, or a
 * JoinConfiguration; the CA material for control plane hosts; the operator's files and
 * commands).
 */
#pragma once

#include "manager.h"

/* Secret names, as Cluster API names them. */
#define SECRET_SUFFIX_CA     "ca"
#define SECRET_SUFFIX_ETCD   "etcd"
#define SECRET_SUFFIX_PROXY  "proxy"
#define SECRET_SUFFIX_SA     "sa"
#define SECRET_SUFFIX_TOKEN  "bootstrap-token"

/* Creates the CA, etcd CA, front-proxy CA, service account and join token Secrets of a
 * cluster when they do not exist yet. */
int cluster_certificates_ensure(Manager *m, const Obj *cluster);

/* Reads data[key] of Secret ns/name, base64-decoded (NUL-terminated). */
int secret_get_data(Manager *m, const char *ns, const char *name, const char *key, char **ret);
/* Creates a Secret with the given plain data (base64-encoded here), owned by owner. */
int secret_create(Manager *m, const char *ns, const char *name, const char *type,
                  const Obj *owner, const char *cluster, const char *const *keys,
                  const char *const *values, size_t n);

typedef enum BootstrapRole {
        BOOTSTRAP_INIT,
        BOOTSTRAP_JOIN_CONTROL_PLANE,
        BOOTSTRAP_JOIN_WORKER,
} BootstrapRole;

/* Renders the bundle for machine from config (a KubeadmConfig) in cluster. */
int kubeadm_render_bundle(Manager *m, const Obj *config, const Obj *machine,
                          const Obj *cluster, BootstrapRole role, char **ret);
