/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `anvilctl get kubeconfig CLUSTER`: an admin kubeconfig with a fresh client certificate
 * for kubernetes-admin in system:masters, signed by the cluster CA the coordinator holds,
 * pointing at the control plane endpoint (what clusterctl get kubeconfig gives).
 */
#include <sodium.h>

#include "api.h"
#include "keys.h"
#include "kubeadm.h"
#include "pki.h"
#include "registry.h"
#include "yamlio.h"

extern const KindInfo kind_cluster;

#define ADMIN_CERT_DAYS 365

int kubeconfig_for_cluster(Manager *m, const char *ns, const char *name, char **ret,
                           char **ret_error) {
        _cleanup_(obj_freep) Obj *cluster = NULL;
        int r = registry_get(m->reg, &kind_cluster, ns, name, &cluster);
        if (r == -ENOENT) {
                *ret_error = asprintf_safe("cluster \"%s\" not found in namespace %s", name, ns);
                return r;
        }
        if (r < 0)
                return r;
        const char *host = obj_get_str(cluster, "spec.controlPlaneEndpoint.host");
        int64_t port = 6443;
        obj_get_int(cluster, "spec.controlPlaneEndpoint.port", &port);
        if (!host) {
                *ret_error = asprintf_safe("cluster \"%s\" has no control plane endpoint yet", name);
                return -EAGAIN;
        }
        _cleanup_free_ char *ca_name = strjoin(name, "-ca");
        if (!ca_name)
                return -ENOMEM;
        PemPair ca = {0};
        r = secret_get_data(m, ns, ca_name, "tls.crt", &ca.cert);
        if (r >= 0)
                r = secret_get_data(m, ns, ca_name, "tls.key", &ca.key);
        if (r == -ENOENT || r == -ENODATA) {
                pem_pair_done(&ca);
                *ret_error = asprintf_safe("cluster \"%s\" has no certificate authority yet (the "
                                           "control plane has not started)",
                                           name);
                return -EAGAIN;
        }
        if (r < 0) {
                pem_pair_done(&ca);
                return r;
        }
        PemPair client = {0};
        r = pki_make_client_cert(&ca, "kubernetes-admin", "system:masters", ADMIN_CERT_DAYS,
                                 &client);
        if (r < 0) {
                pem_pair_done(&ca);
                return r;
        }
        _cleanup_free_ char *ca_b64 = NULL, *crt_b64 = NULL, *key_b64 = NULL;
        r = base64_encode(ca.cert, strlen(ca.cert), &ca_b64);
        if (r >= 0)
                r = base64_encode(client.cert, strlen(client.cert), &crt_b64);
        if (r >= 0)
                r = base64_encode(client.key, strlen(client.key), &key_b64);
        pem_pair_done(&ca);
        pem_pair_done(&client);
        if (r < 0)
                return r;
        char server[300], user[96], context[200];
        snprintf(server, sizeof(server), "https://%s:%lld", host, (long long)port);
        snprintf(user, sizeof(user), "%s-admin", name);
        snprintf(context, sizeof(context), "%s-admin@%s", name, name);

        /* Built as an Obj and emitted by libyaml: nothing hand-quoted. */
        _cleanup_(obj_freep) Obj *kc = obj_new_map();
        _cleanup_(obj_freep) Obj *cl = obj_new_map(), *us = obj_new_map(), *cx = obj_new_map();
        if (!kc || !cl || !us || !cx || obj_map_set_str(kc, "apiVersion", "v1") < 0 ||
            obj_map_set_str(kc, "kind", "Config") < 0 ||
            obj_map_set_str(cl, "name", name) < 0 ||
            obj_set_str(cl, "cluster.certificate-authority-data", ca_b64) < 0 ||
            obj_set_str(cl, "cluster.server", server) < 0 || obj_map_set_str(us, "name", user) < 0 ||
            obj_set_str(us, "user.client-certificate-data", crt_b64) < 0 ||
            obj_set_str(us, "user.client-key-data", key_b64) < 0 ||
            obj_map_set_str(cx, "name", context) < 0 ||
            obj_set_str(cx, "context.cluster", name) < 0 ||
            obj_set_str(cx, "context.user", user) < 0)
                return -ENOMEM;
        Obj *l;
        if (!(l = obj_map_ensure_list(kc, "clusters")) || obj_list_append(l, TAKE_PTR(cl)) < 0 ||
            !(l = obj_map_ensure_list(kc, "contexts")) || obj_list_append(l, TAKE_PTR(cx)) < 0 ||
            obj_map_set_str(kc, "current-context", context) < 0 ||
            obj_map_set(kc, "preferences", obj_new_map()) < 0 ||
            !(l = obj_map_ensure_list(kc, "users")) || obj_list_append(l, TAKE_PTR(us)) < 0)
                return -ENOMEM;
        r = yaml_emit(kc, ret);
        sodium_memzero(key_b64, strlen(key_b64));
        Obj *k = obj_get(kc, "users[0].user.client-key-data");
        if (obj_is(k, OBJ_STR))
                sodium_memzero(k->str.s, k->str.len);
        return r;
}
