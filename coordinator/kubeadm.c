/* SPDX-License-Identifier: Apache-2.0 */
#include <sodium.h>

#include "bundle.h"
#include "controllers/controllers.h"
#include "kubeadm.h"
#include "log.h"
#include "pki.h"
#include "resource.h"
#include "yamlio.h"

extern const KindInfo kind_secret;

#define KUBEADM_API "kubeadm.k8s.io/v1beta3"
#define TOKEN_TTL   "24h0m0s" /* the init node's own token; joins register theirs */

int secret_get_data(Manager *m, const char *ns, const char *name, const char *key, char **ret) {
        _cleanup_(obj_freep) Obj *s = NULL;
        int r = registry_get(m->reg, &kind_secret, ns, name, &s);
        if (r < 0)
                return r;
        const char *b64 = obj_str(obj_map_get(obj_get(s, "data"), key));
        if (!b64)
                return -ENODATA;
        void *data;
        size_t size;
        r = base64_decode(b64, &data, &size);
        if (r < 0)
                return r;
        *ret = data;
        return 0;
}

int secret_create(Manager *m, const char *ns, const char *name, const char *type,
                  const Obj *owner, const char *cluster, const char *const *keys,
                  const char *const *values, size_t n) {
        _cleanup_(obj_freep) Obj *s = obj_new_map();
        if (!s || obj_map_set_str(s, "kind", "Secret") < 0 ||
            obj_set_str(s, "metadata.name", name) < 0 ||
            obj_set_str(s, "metadata.namespace", ns) < 0 || obj_map_set_str(s, "type", type) < 0)
                return -ENOMEM;
        Obj *data = obj_map_ensure_map(s, "data");
        if (!data)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char *b64;
                int r = base64_encode(values[i], strlen(values[i]), &b64);
                if (r < 0)
                        return r;
                if ((r = obj_map_set(data, keys[i], obj_new_str_take(b64))) < 0)
                        return r;
        }
        int r;
        if (cluster && (r = meta_set_label(s, LABEL_CLUSTER_NAME, cluster)) < 0)
                return r;
        if (owner && (r = meta_add_owner_ref(s, owner, true)) < 0)
                return r;
        r = registry_create(m->reg, s);
        /* Wipe our copy of the plain secret values' encodings. */
        OBJ_MAP_FOREACH(e, data)
        if (obj_is(e->value, OBJ_STR))
                sodium_memzero(e->value->str.s, e->value->str.len);
        return r;
}

static int ensure_ca(Manager *m, const Obj *cluster, const char *suffix, const char *cn,
                     bool keypair_only) {
        _cleanup_free_ char *name = strjoin(meta_name(cluster), "-", suffix);
        if (!name)
                return -ENOMEM;
        _cleanup_(obj_freep) Obj *existing = NULL;
        int r = registry_get(m->reg, &kind_secret, meta_namespace(cluster), name, &existing);
        if (r >= 0)
                return 0;
        if (r != -ENOENT)
                return r;
        PemPair pp = {0};
        r = keypair_only ? pki_make_keypair(&pp) : pki_make_ca(cn, &pp);
        if (r < 0)
                return log_error_errno(r, "Failed to generate %s for cluster %s: %m", suffix,
                                       meta_name(cluster));
        const char *keys[] = {"tls.crt", "tls.key"};
        const char *values[] = {pp.cert, pp.key};
        r = secret_create(m, meta_namespace(cluster), name, "cluster.x-k8s.io/secret", cluster,
                          meta_name(cluster), keys, values, 2);
        pem_pair_done(&pp);
        if (r >= 0)
                log_info("Generated %s for cluster %s.", name, meta_name(cluster));
        return r;
}

int cluster_certificates_ensure(Manager *m, const Obj *cluster) {
        int r;
        if ((r = ensure_ca(m, cluster, SECRET_SUFFIX_CA, "kubernetes", false)) < 0 ||
            (r = ensure_ca(m, cluster, SECRET_SUFFIX_ETCD, "etcd-ca", false)) < 0 ||
            (r = ensure_ca(m, cluster, SECRET_SUFFIX_PROXY, "front-proxy-ca", false)) < 0 ||
            (r = ensure_ca(m, cluster, SECRET_SUFFIX_SA, NULL, true)) < 0)
                return r;

        return 0;
}

int kubeadm_config_token(Manager *m, const Obj *config, char **ret) {
        _cleanup_free_ char *name = strjoin(meta_name(config), "-token");
        if (!name)
                return -ENOMEM;
        int r = secret_get_data(m, meta_namespace(config), name, "token", ret);
        if (r != -ENOENT)
                return r;
        /* kubeadm's token format: [a-z0-9]{6}.[a-z0-9]{16}; one per machine's join. */
        char id[7], secret[17], token[24];
        random_string("abcdefghijklmnopqrstuvwxyz0123456789", 6, id);
        random_string("abcdefghijklmnopqrstuvwxyz0123456789", 16, secret);
        snprintf(token, sizeof(token), "%s.%s", id, secret);
        const char *keys[] = {"token"};
        const char *values[] = {token};
        r = secret_create(m, meta_namespace(config), name, "bootstrap.kubernetes.io/token", config,
                          meta_label(config, "cluster.x-k8s.io/cluster-name"), keys, values, 1);
        if (r >= 0) {
                *ret = strdup(token);
                if (!*ret)
                        r = -ENOMEM;
        }
        sodium_memzero(token, sizeof(token));
        sodium_memzero(secret, sizeof(secret));
        return r;
}

/* ---- rendering ---- */

/* The data of a {secret: {name, key}} reference (files' contentFrom, users' passwdFrom): a
 * Secret in the config's namespace, as Cluster API resolves them. */
static int secret_ref_data(Manager *m, const Obj *config, const Obj *ref, char **ret) {
        return secret_get_data(m, meta_namespace(config), strempty(obj_get_str(ref, "secret.name")),
                               strempty(obj_get_str(ref, "secret.key")), ret);
}

static int add_file(Obj *files, const char *path, const char *content, const char *perm) {
        _cleanup_(obj_freep) Obj *f = obj_new_map();
        if (!f || obj_map_set_str(f, "path", path) < 0 ||
            obj_map_set_str(f, "content", content) < 0 || obj_map_set_str(f, "owner", "root:root") < 0 ||
            obj_map_set_str(f, "permissions", perm) < 0)
                return -ENOMEM;
        return obj_list_append(files, TAKE_PTR(f));
}

/* The CA material kubeadm expects on a control plane host (Cluster API ships it the same
 * way: the first control plane signs everything from it, the others join with it). */
static int add_ca_files(Manager *m, const Obj *cluster, Obj *files) {
        static const struct {
                const char *suffix, *crt, *key;
        } cas[] = {
                {SECRET_SUFFIX_CA, "/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.key"},
                {SECRET_SUFFIX_ETCD, "/etc/kubernetes/pki/etcd/ca.crt",
                 "/etc/kubernetes/pki/etcd/ca.key"},
                {SECRET_SUFFIX_PROXY, "/etc/kubernetes/pki/front-proxy-ca.crt",
                 "/etc/kubernetes/pki/front-proxy-ca.key"},
                {SECRET_SUFFIX_SA, "/etc/kubernetes/pki/sa.pub", "/etc/kubernetes/pki/sa.key"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cas); i++) {
                _cleanup_free_ char *name = strjoin(meta_name(cluster), "-", cas[i].suffix);
                _cleanup_free_ char *crt = NULL, *key = NULL;
                if (!name)
                        return -ENOMEM;
                int r = secret_get_data(m, meta_namespace(cluster), name, "tls.crt", &crt);
                if (r >= 0)
                        r = secret_get_data(m, meta_namespace(cluster), name, "tls.key", &key);
                if (r < 0)
                        return r;
                r = add_file(files, cas[i].crt, crt, "0640");
                if (r >= 0)
                        r = add_file(files, cas[i].key, key, "0600");
                sodium_memzero(key, strlen(key));
                if (r < 0)
                        return r;
        }
        return 0;
}

static char *endpoint_of(const Obj *cluster) {
        const char *host = obj_get_str(cluster, "spec.controlPlaneEndpoint.host");
        int64_t port = 6443;
        obj_get_int(cluster, "spec.controlPlaneEndpoint.port", &port);
        if (!host)
                return NULL;
        return asprintf_safe("%s:%lld", host, (long long)port);
}

static char *join_cidrs(const Obj *list) {
        char buf[1024] = "";
        size_t n = 0;
        OBJ_LIST_FOREACH(c, list, i) {
                int w = snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "", strempty(obj_str(c)));
                if (w > 0 && (size_t)w < sizeof(buf) - n)
                        n += (size_t)w;
        }
        return n ? strdup(buf) : NULL;
}

/* nodeRegistration with Anvil's name and provider ID, keeping what the operator set. */
static int node_registration(Obj *nr) {
        int r;
        if (!obj_map_get(nr, "name") &&
            (r = obj_map_set_str(nr, "name", "{{ ds.meta_data.local_hostname }}")) < 0)
                return r;
        Obj *args = obj_map_ensure_map(nr, "kubeletExtraArgs");
        if (!args)
                return -ENOMEM;
        if (!obj_map_get(args, "provider-id") &&
            (r = obj_map_set_str(args, "provider-id", "anvil://{{ ds.meta_data.uuid }}")) < 0)
                return r;
        return 0;
}

static int render_init(const Obj *config, const Obj *machine, const Obj *cluster,
                       const char *token, Obj *docs) {
        int r;
        _cleanup_(obj_freep) Obj *cc = obj_dup(obj_get(config, "spec.clusterConfiguration"))
                                               ?: obj_new_map();
        _cleanup_(obj_freep) Obj *ic = obj_dup(obj_get(config, "spec.initConfiguration"))
                                               ?: obj_new_map();
        _cleanup_free_ char *ep = endpoint_of(cluster);
        _cleanup_free_ char *pods = join_cidrs(obj_get(cluster, "spec.clusterNetwork.pods.cidrBlocks"));
        _cleanup_free_ char *svcs = join_cidrs(
                obj_get(cluster, "spec.clusterNetwork.services.cidrBlocks"));
        if (!cc || !ic || !ep)
                return -ENOMEM;
        /* What Cluster API fills in from the Cluster and Machine. */
        if ((r = obj_map_set_str(cc, "apiVersion", KUBEADM_API)) < 0 ||
            (r = obj_map_set_str(cc, "kind", "ClusterConfiguration")) < 0 ||
            (r = obj_map_set_str(cc, "clusterName", meta_name(cluster))) < 0 ||
            (r = obj_map_set_str(cc, "controlPlaneEndpoint", ep)) < 0)
                return r;
        const char *version = obj_get_str(machine, "spec.version");
        if (version && (r = obj_map_set_str(cc, "kubernetesVersion", version)) < 0)
                return r;
        Obj *net = obj_map_ensure_map(cc, "networking");
        if (!net)
                return -ENOMEM;
        if (pods && !obj_map_get(net, "podSubnet") && (r = obj_map_set_str(net, "podSubnet", pods)) < 0)
                return r;
        if (svcs && !obj_map_get(net, "serviceSubnet") &&
            (r = obj_map_set_str(net, "serviceSubnet", svcs)) < 0)
                return r;
        const char *domain = obj_get_str(cluster, "spec.clusterNetwork.serviceDomain");
        if (domain && !obj_map_get(net, "dnsDomain") &&
            (r = obj_map_set_str(net, "dnsDomain", domain)) < 0)
                return r;

        if ((r = obj_map_set_str(ic, "apiVersion", KUBEADM_API)) < 0 ||
            (r = obj_map_set_str(ic, "kind", "InitConfiguration")) < 0)
                return r;
        Obj *tokens = obj_map_ensure_list(ic, "bootstrapTokens");
        if (!tokens)
                return -ENOMEM;
        _cleanup_(obj_freep) Obj *t = obj_new_map();
        if (!t || obj_map_set_str(t, "token", token) < 0 || obj_map_set_str(t, "ttl", TOKEN_TTL) < 0 ||
            obj_map_set_str(t, "description", "created by Anvil for joining nodes") < 0)
                return -ENOMEM;
        Obj *groups = obj_map_ensure_list(t, "groups");
        Obj *usages = obj_map_ensure_list(t, "usages");
        if (!groups || !usages ||
            obj_list_append(groups, obj_new_str("system:bootstrappers:kubeadm:default-node-token")) <
                    0 ||
            obj_list_append(usages, obj_new_str("signing")) < 0 ||
            obj_list_append(usages, obj_new_str("authentication")) < 0)
                return -ENOMEM;
        if ((r = obj_list_append(tokens, TAKE_PTR(t))) < 0)
                return r;
        Obj *nr = obj_map_ensure_map(ic, "nodeRegistration");
        if (!nr || (r = node_registration(nr)) < 0)
                return nr ? r : -ENOMEM;
        int64_t port = 0;
        if (obj_get_int(cluster, "spec.clusterNetwork.apiServerPort", &port) &&
            !obj_get(ic, "localAPIEndpoint.bindPort") &&
            (r = obj_set_int(ic, "localAPIEndpoint.bindPort", port)) < 0)
                return r;
        if ((r = obj_list_append(docs, TAKE_PTR(cc))) < 0)
                return r;
        return obj_list_append(docs, TAKE_PTR(ic));
}

static int render_join(Manager *m, const Obj *config, const Obj *cluster, const char *token,
                       bool control_plane, Obj *docs) {
        (void)m;
        int r;
        _cleanup_(obj_freep) Obj *jc = obj_dup(obj_get(config, "spec.joinConfiguration"))
                                               ?: obj_new_map();
        _cleanup_free_ char *ep = endpoint_of(cluster);
        if (!jc || !ep)
                return -ENOMEM;
        _cleanup_free_ char *ca = NULL;
        _cleanup_free_ char *ca_name = strjoin(meta_name(cluster), "-", SECRET_SUFFIX_CA);
        if (!ca_name)
                return -ENOMEM;
        r = secret_get_data(m, meta_namespace(cluster), ca_name, "tls.crt", &ca);
        if (r < 0)
                return r;
        char hash[80];
        if ((r = pki_ca_cert_hash(ca, hash, sizeof(hash))) < 0)
                return r;
        if ((r = obj_map_set_str(jc, "apiVersion", KUBEADM_API)) < 0 ||
            (r = obj_map_set_str(jc, "kind", "JoinConfiguration")) < 0)
                return r;
        Obj *bt = obj_map_ensure_map(obj_map_ensure_map(jc, "discovery") ?: jc, "bootstrapToken");
        if (!bt)
                return -ENOMEM;
        if (!obj_map_get(bt, "apiServerEndpoint") &&
            (r = obj_map_set_str(bt, "apiServerEndpoint", ep)) < 0)
                return r;
        if (!obj_map_get(bt, "token") && (r = obj_map_set_str(bt, "token", token)) < 0)
                return r;
        if (!obj_map_get(bt, "caCertHashes") && !obj_get_bool(bt, "unsafeSkipCAVerification", false)) {
                Obj *hl = obj_map_ensure_list(bt, "caCertHashes");
                if (!hl || obj_list_append(hl, obj_new_str(hash)) < 0)
                        return -ENOMEM;
        }
        Obj *nr = obj_map_ensure_map(jc, "nodeRegistration");
        if (!nr || (r = node_registration(nr)) < 0)
                return nr ? r : -ENOMEM;
        if (control_plane && !obj_map_ensure_map(jc, "controlPlane"))
                return -ENOMEM;
        if (!control_plane)
                obj_map_del(jc, "controlPlane");
        return obj_list_append(docs, TAKE_PTR(jc));
}

/* "adm, docker" -> ["adm", "docker"]: cloud-init splits and strips the same way. */
static int split_groups(const char *s, Obj **ret) {
        _cleanup_(obj_freep) Obj *l = obj_new_list();
        if (!l)
                return -ENOMEM;
        for (const char *p = s;;) {
                size_t len = strcspn(p, ",");
                const char *b = p, *e = p + len;
                while (b < e && *b == ' ')
                        b++;
                while (e > b && e[-1] == ' ')
                        e--;
                if (e > b && obj_list_append(l, obj_new_strn(b, (size_t)(e - b))) < 0)
                        return -ENOMEM;
                p += len;
                if (!*p++)
                        break;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* The users as the agent applies them (common/bundle.c): groups as a list, lockPassword
 * explicit (cloud-init's default is true), the password hash resolved from passwdFrom the way
 * files' contentFrom is, its trailing newline dropped (a Secret made with echo has one;
 * cloud-config YAML drops it the same way). */
static int render_users(Manager *m, const Obj *config, Obj *b) {
        const Obj *users = obj_get(config, "spec.users");
        if (obj_len(users) == 0)
                return 0;
        Obj *out = obj_map_ensure_list(b, "users");
        if (!out)
                return -ENOMEM;
        OBJ_LIST_FOREACH(u, users, i) {
                _cleanup_(obj_freep) Obj *x = obj_dup(u);
                if (!x)
                        return -ENOMEM;
                obj_map_del(x, "passwdFrom");
                obj_map_del(x, "groups");
                int r;
                const char *groups = obj_get_str(u, "groups");
                if (groups) {
                        Obj *l = NULL;
                        if ((r = split_groups(groups, &l)) < 0 ||
                            (r = obj_map_set(x, "groups", l)) < 0)
                                return r;
                }
                if ((r = obj_map_set_bool(x, "lockPassword",
                                          obj_get_bool(u, "lockPassword", true))) < 0)
                        return r;
                if (obj_map_get(u, "passwdFrom")) {
                        _cleanup_free_ char *hash = NULL;
                        r = secret_ref_data(m, config, obj_map_get(u, "passwdFrom"), &hash);
                        if (r < 0)
                                return r;
                        size_t n = strlen(hash);
                        while (n > 0 && strchr("\r\n ", hash[n - 1]))
                                hash[--n] = 0;
                        /* What apply checks of an inline passwd, checked here. */
                        r = bundle_account_field_problem(hash) || n == 0
                                    ? -EBADMSG
                                    : obj_map_set_str(x, "passwd", hash);
                        sodium_memzero(hash, n);
                        if (r < 0)
                                return r;
                }
                if ((r = obj_list_append(out, TAKE_PTR(x))) < 0)
                        return r;
        }
        return 0;
}

/* ntp, unless disabled (cloud-init's ntp module does nothing when enabled is false). */
static int render_ntp(const Obj *config, Obj *b) {
        const Obj *ntp = obj_get(config, "spec.ntp");
        if (!obj_is(ntp, OBJ_MAP) || !obj_get_bool(ntp, "enabled", true))
                return 0;
        Obj *out = obj_map_ensure_map(b, "ntp");
        if (!out)
                return -ENOMEM;
        const Obj *servers = obj_map_get(ntp, "servers");
        return servers ? obj_map_set(out, "servers", obj_dup(servers)) : 0;
}

int kubeadm_render_bundle(Manager *m, const Obj *config, const Obj *machine,
                          const Obj *cluster, BootstrapRole role, const char *token, char **ret) {
        int r;
        /* Refused at apply; a config stored before that was refused is not rendered either,
         * so nothing it asks for is silently ignored. */
        if (obj_get(config, "spec.diskSetup") || obj_get(config, "spec.mounts"))
                return -EOPNOTSUPP;
        _cleanup_(obj_freep) Obj *docs = obj_new_list();
        if (!docs)
                return -ENOMEM;
        if (role == BOOTSTRAP_INIT)
                r = render_init(config, machine, cluster, token, docs);
        else
                r = render_join(m, config, cluster, token, role == BOOTSTRAP_JOIN_CONTROL_PLANE,
                                docs);
        if (r < 0)
                return r;
        _cleanup_free_ char *kubeadm_yaml = NULL;
        r = yaml_emit_documents(docs, &kubeadm_yaml);
        if (r < 0)
                return r;

        _cleanup_(obj_freep) Obj *b = obj_new_map();
        if (!b || obj_map_set_str(b, "apiVersion", BUNDLE_API_VERSION) < 0 ||
            obj_map_set_str(b, "kind", BUNDLE_KIND) < 0 ||
            obj_map_set_str(b, "machine", meta_name(machine)) < 0 ||
            obj_map_set_str(b, "cluster", meta_name(cluster)) < 0 ||
            obj_map_set_str(b, "role", role == BOOTSTRAP_JOIN_WORKER ? "worker" : "control-plane") <
                    0)
                return -ENOMEM;
        const char *version = obj_get_str(machine, "spec.version");
        if (version && (r = obj_map_set_str(b, "version", version)) < 0)
                return r;
        Obj *kb = obj_map_ensure_map(b, "kubeadm");
        if (!kb || obj_map_set_str(kb, "command", role == BOOTSTRAP_INIT ? "init" : "join") < 0 ||
            obj_map_set_str(kb, "configPath", role == BOOTSTRAP_INIT
                                                      ? "/run/kubeadm/kubeadm.yaml"
                                                      : "/run/kubeadm/kubeadm-join-config.yaml") <
                    0 ||
            obj_map_set_str(kb, "config", kubeadm_yaml) < 0)
                return -ENOMEM;
        int64_t verbosity;
        if (obj_get_int(config, "spec.verbosity", &verbosity) &&
            (r = obj_map_set_int(kb, "verbosity", verbosity)) < 0)
                return r;
        sodium_memzero(kubeadm_yaml, strlen(kubeadm_yaml));

        Obj *files = obj_map_ensure_list(b, "files");
        if (!files)
                return -ENOMEM;
        if (role != BOOTSTRAP_JOIN_WORKER && (r = add_ca_files(m, cluster, files)) < 0)
                return r;
        OBJ_LIST_FOREACH(f, obj_get(config, "spec.files"), i) {
                if (obj_map_get(f, "contentFrom")) {
                        /* Content from a Secret in the same namespace, as Cluster API does. */
                        _cleanup_free_ char *data = NULL;
                        r = secret_ref_data(m, config, obj_map_get(f, "contentFrom"), &data);
                        if (r < 0)
                                return r;
                        _cleanup_(obj_freep) Obj *copy = obj_dup(f);
                        if (!copy)
                                return -ENOMEM;
                        obj_map_del(copy, "contentFrom");
                        if ((r = obj_map_set_str(copy, "content", data)) < 0)
                                return r;
                        sodium_memzero(data, strlen(data));
                        if ((r = obj_list_append(files, TAKE_PTR(copy))) < 0)
                                return r;
                        continue;
                }
                if ((r = obj_list_append(files, obj_dup(f))) < 0)
                        return r;
        }
        const char *lists[] = {"preKubeadmCommands", "postKubeadmCommands"};
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                const Obj *l = obj_get(obj_map_get(config, "spec"), lists[i]);
                if (l && (r = obj_map_set(b, lists[i], obj_dup(l))) < 0)
                        return r;
        }
        r = render_users(m, config, b);
        if (r >= 0)
                r = render_ntp(config, b);
        if (r >= 0)
                r = yaml_emit(b, ret);
        /* Wipe the tree's copies of keys and tokens. */
        OBJ_LIST_FOREACH(f, files, i) {
                Obj *c = obj_map_get(f, "content");
                if (obj_is(c, OBJ_STR))
                        sodium_memzero(c->str.s, c->str.len);
        }
        OBJ_LIST_FOREACH(u, obj_map_get(b, "users"), i) {
                Obj *c = obj_map_get(u, "passwd");
                if (obj_is(c, OBJ_STR))
                        sodium_memzero(c->str.s, c->str.len);
        }
        Obj *kc = obj_get(b, "kubeadm.config");
        if (obj_is(kc, OBJ_STR))
                sodium_memzero(kc->str.s, kc->str.len);
        return r;
}
