/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bootstrap.cluster.x-k8s.io/v1beta1 (KubeadmConfig, KubeadmConfigTemplate) and
 * controlplane.cluster.x-k8s.io/v1beta1 (KubeadmControlPlane). The embedded kubeadm types
 * (ClusterConfiguration, InitConfiguration, JoinConfiguration) use the field names of Cluster
 * API's bootstrap/kubeadm/api/v1beta1/kubeadm_types.go, which mirror kubeadm's v1beta3.
 * Checks and defaults follow the kubeadmconfig and kubeadmcontrolplane webhooks, including
 * which KubeadmControlPlane fields may change after creation.
 */
#include "bundle.h"
#include "kinds.h"

extern const SchemaField api_endpoint_fields[];
extern const SchemaField machine_spec_fields[];

#define TYPE_META                                                                                  \
        {"apiVersion", ST_STRING, .doc = "ignored; Anvil renders kubeadm.k8s.io/v1beta3"}, {       \
                "kind", ST_STRING, .doc = "ignored"                                                \
        }

static const SchemaField host_path_mount_fields[] = {
        {"name", ST_STRING, SF_REQUIRED, .doc = "volume name in the static pod"},
        {"hostPath", ST_STRING, SF_REQUIRED, .doc = "path on the host"},
        {"mountPath", ST_STRING, SF_REQUIRED, .doc = "path in the pod"},
        {"readOnly", ST_BOOL, .doc = "mount read-only"},
        {"pathType", ST_STRING, .doc = "HostPath type, e.g. DirectoryOrCreate"},
        SCHEMA_END,
};

static const SchemaField env_var_fields[] = {
        {"name", ST_STRING, SF_REQUIRED, .doc = "variable name"},
        {"value", ST_STRING, .doc = "its value"},
        {"valueFrom", ST_OBJECT, .doc = "not supported by kubeadm here; accepted"},
        SCHEMA_END,
};

static const SchemaField control_plane_component_fields[] = {
        {"extraArgs", ST_STRMAP, .doc = "extra command line flags, without the leading --"},
        {"extraVolumes", ST_LIST, .item = ST_OBJECT, .fields = host_path_mount_fields,
         .doc = "extra host paths mounted into the static pod"},
        {"extraEnvs", ST_LIST, .item = ST_OBJECT, .fields = env_var_fields,
         .doc = "extra environment variables of the static pod"},
        SCHEMA_END,
};

static const SchemaField api_server_fields[] = {
        {"extraArgs", ST_STRMAP, .doc = "extra kube-apiserver flags, without the leading --"},
        {"extraVolumes", ST_LIST, .item = ST_OBJECT, .fields = host_path_mount_fields,
         .doc = "extra host paths mounted into the static pod"},
        {"extraEnvs", ST_LIST, .item = ST_OBJECT, .fields = env_var_fields,
         .doc = "extra environment variables of the static pod"},
        {"certSANs", ST_LIST, .item = ST_STRING, .doc = "extra SANs of the serving certificate"},
        {"timeoutForControlPlane", ST_DURATION, .doc = "how long kubeadm waits for the API server"},
        SCHEMA_END,
};

static const SchemaField image_meta_fields[] = {
        {"imageRepository", ST_STRING, .doc = "registry to pull from"},
        {"imageTag", ST_STRING, .doc = "image tag"},
        SCHEMA_END,
};

static const SchemaField local_etcd_fields[] = {
        {"imageRepository", ST_STRING, .doc = "registry to pull etcd from"},
        {"imageTag", ST_STRING, .doc = "etcd image tag"},
        {"dataDir", ST_STRING, .doc = "etcd data directory; kubeadm's default /var/lib/etcd"},
        {"extraArgs", ST_STRMAP, .doc = "extra etcd flags"},
        {"extraEnvs", ST_LIST, .item = ST_OBJECT, .fields = env_var_fields,
         .doc = "extra environment variables"},
        {"serverCertSANs", ST_LIST, .item = ST_STRING, .doc = "extra SANs of the server cert"},
        {"peerCertSANs", ST_LIST, .item = ST_STRING, .doc = "extra SANs of the peer cert"},
        SCHEMA_END,
};

static const SchemaField external_etcd_fields[] = {
        {"endpoints", ST_LIST, SF_REQUIRED | SF_NONEMPTY, .item = ST_STRING,
         .doc = "etcd member URLs"},
        {"caFile", ST_STRING, SF_REQUIRED, .doc = "CA file on the host"},
        {"certFile", ST_STRING, SF_REQUIRED, .doc = "client certificate file on the host"},
        {"keyFile", ST_STRING, SF_REQUIRED, .doc = "client key file on the host"},
        SCHEMA_END,
};

static const SchemaField etcd_fields[] = {
        {"local", ST_OBJECT, .fields = local_etcd_fields,
         .doc = "stacked etcd on the control plane hosts (the default)"},
        {"external", ST_OBJECT, .fields = external_etcd_fields,
         .doc = "an etcd cluster elsewhere; exclusive with local"},
        SCHEMA_END,
};

static const SchemaField networking_fields[] = {
        {"serviceSubnet", ST_STRING, .doc = "defaults to the Cluster's services cidrBlocks"},
        {"podSubnet", ST_STRING, .doc = "defaults to the Cluster's pods cidrBlocks"},
        {"dnsDomain", ST_STRING, .doc = "defaults to the Cluster's serviceDomain"},
        SCHEMA_END,
};

const SchemaField cluster_configuration_fields[] = {
        TYPE_META,
        {"etcd", ST_OBJECT, .fields = etcd_fields, .doc = "etcd: local (stacked) or external"},
        {"networking", ST_OBJECT, .fields = networking_fields,
         .doc = "the cluster's networks; defaults from the Cluster's clusterNetwork"},
        {"kubernetesVersion", ST_STRING, .doc = "set from the Machine's version"},
        {"controlPlaneEndpoint", ST_STRING, .doc = "set from the Cluster's controlPlaneEndpoint"},
        {"apiServer", ST_OBJECT, .fields = api_server_fields, .doc = "kube-apiserver settings"},
        {"controllerManager", ST_OBJECT, .fields = control_plane_component_fields,
         .doc = "kube-controller-manager settings"},
        {"scheduler", ST_OBJECT, .fields = control_plane_component_fields,
         .doc = "kube-scheduler settings"},
        {"dns", ST_OBJECT, .fields = image_meta_fields, .doc = "CoreDNS image"},
        {"certificatesDir", ST_STRING, .doc = "kubeadm's default /etc/kubernetes/pki"},
        {"imageRepository", ST_STRING, .doc = "registry of the control plane images"},
        {"featureGates", ST_MAP, .item = ST_BOOL, .doc = "kubeadm feature gates"},
        {"clusterName", ST_STRING, .doc = "set from the Cluster's name"},
        SCHEMA_END,
};

static const char *const taint_effects[] = {"NoSchedule", "PreferNoSchedule", "NoExecute", NULL};

static const SchemaField taint_fields[] = {
        {"key", ST_STRING, SF_REQUIRED, .doc = "taint key"},
        {"value", ST_STRING, .doc = "taint value"},
        {"effect", ST_STRING, SF_REQUIRED, .values = taint_effects, .doc = "taint effect"},
        {"timeAdded", ST_TIME, .doc = "when added"},
        SCHEMA_END,
};

/* A node name is a DNS subdomain, or becomes one on the host: Cluster API's templates write
 * '{{ ds.meta_data.local_hostname }}' (bundle.h lists the placeholders the agent fills in).
 * A value with placeholders is checked with each filled in by a one-letter stand-in, so only
 * known placeholders with DNS characters around them pass. */
static const char *check_node_name(const Obj *v, char *buf, size_t bufsz) {
        static const BundleVars stand_in = {.hostname = "a", .uuid = "a", .machine = "a"};
        const char *s = obj_str(v);
        (void)buf;
        (void)bufsz;
        if (s && strstr(s, "{{")) {
                _cleanup_free_ char *filled = bundle_substitute(s, &stand_in);
                if (filled && is_dns_subdomain(filled))
                        return NULL;
                return "must be a lowercase RFC 1123 subdomain, or one made of placeholders "
                       "such as \"{{ ds.meta_data.local_hostname }}\" and DNS characters";
        }
        return check_dns_subdomain(v, buf, bufsz);
}

const SchemaField node_registration_fields[] = {
        {"name", ST_STRING, .max = 253, .check = check_node_name,
         .doc = "node name, or a placeholder like {{ ds.meta_data.local_hostname }}; defaults to "
                "the host name"},
        {"criSocket", ST_STRING,
         .doc = "CRI socket, e.g. unix:///var/run/containerd/containerd.sock"},
        {"taints", ST_LIST, .item = ST_OBJECT, .fields = taint_fields,
         .doc = "taints to register with; [] for none"},
        {"kubeletExtraArgs", ST_STRMAP, .doc = "extra kubelet flags, without the leading --"},
        {"ignorePreflightErrors", ST_LIST, .item = ST_STRING,
         .doc = "preflight checks to ignore, e.g. Swap"},
        {"imagePullPolicy", ST_STRING,
         .values = (const char *const[]){"Always", "IfNotPresent", "Never", NULL},
         .doc = "image pull policy of kubeadm"},
        {"imagePullSerial", ST_BOOL, .doc = "pull images one at a time"},
        SCHEMA_END,
};

static const char *check_bootstrap_token(const Obj *v, char *buf, size_t bufsz) {
        const char *s = obj_str(v);
        (void)buf;
        (void)bufsz;
        if (!s || strlen(s) != 23 || s[6] != '.')
                return "must match [a-z0-9]{6}.[a-z0-9]{16}";
        for (int i = 0; i < 23; i++) {
                if (i == 6)
                        continue;
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
                        return "must match [a-z0-9]{6}.[a-z0-9]{16}";
        }
        return NULL;
}

static const SchemaField bootstrap_token_fields[] = {
        {"token", ST_STRING, SF_REQUIRED | SF_SECRET, .check = check_bootstrap_token,
         .doc = "abcdef.0123456789abcdef"},
        {"description", ST_STRING, .doc = "why the token exists"},
        {"ttl", ST_DURATION, .doc = "lifetime; kubeadm's default 24h"},
        {"expires", ST_TIME, .doc = "expiry; exclusive with ttl"},
        {"usages", ST_LIST, .item = ST_STRING, .doc = "token usages"},
        {"groups", ST_LIST, .item = ST_STRING, .doc = "extra groups"},
        SCHEMA_END,
};

static const SchemaField patches_fields[] = {
        {"directory", ST_STRING, .doc = "directory of kubeadm patch files on the host"},
        SCHEMA_END,
};

static const SchemaField local_api_endpoint_fields[] = {
        {"advertiseAddress", ST_STRING, .doc = "address this API server advertises"},
        {"bindPort", ST_INT, .min = 0, .max = 65535, .doc = "port it binds; default 6443"},
        SCHEMA_END,
};

const SchemaField init_configuration_fields[] = {
        TYPE_META,
        {"bootstrapTokens", ST_LIST, .item = ST_OBJECT, .fields = bootstrap_token_fields,
         .doc = "tokens to create; Anvil adds the cluster's join token"},
        {"nodeRegistration", ST_OBJECT, .fields = node_registration_fields,
         .doc = "how the first control plane node registers"},
        {"localAPIEndpoint", ST_OBJECT, .fields = local_api_endpoint_fields,
         .doc = "this node's API server endpoint"},
        {"skipPhases", ST_LIST, .item = ST_STRING, .doc = "kubeadm init phases to skip"},
        {"patches", ST_OBJECT, .fields = patches_fields, .doc = "kubeadm patches"},
        SCHEMA_END,
};

static const SchemaField bootstrap_token_discovery_fields[] = {
        {"token", ST_STRING, SF_REQUIRED | SF_SECRET, .doc = "the join token"},
        {"apiServerEndpoint", ST_STRING, .doc = "where to fetch cluster information"},
        {"caCertHashes", ST_LIST, .item = ST_STRING,
         .doc = "CA public key pins (sha256:...); Anvil adds the cluster CA's"},
        {"unsafeSkipCAVerification", ST_BOOL, .doc = "join without a CA pin"},
        SCHEMA_END,
};

static const SchemaField file_discovery_fields[] = {
        {"kubeConfigPath", ST_STRING, SF_REQUIRED, .doc = "path or URL of a kubeconfig"},
        {"kubeConfig", ST_OBJECT, .doc = "a kubeconfig generated from these fields"},
        SCHEMA_END,
};

static const SchemaField discovery_fields[] = {
        {"bootstrapToken", ST_OBJECT, .fields = bootstrap_token_discovery_fields,
         .doc = "token discovery; filled in by Anvil"},
        {"file", ST_OBJECT, .fields = file_discovery_fields, .doc = "file discovery"},
        {"tlsBootstrapToken", ST_STRING, SF_SECRET, .doc = "token for TLS bootstrap"},
        {"timeout", ST_DURATION, .doc = "discovery timeout"},
        SCHEMA_END,
};

static const SchemaField join_control_plane_fields[] = {
        {"localAPIEndpoint", ST_OBJECT, .fields = local_api_endpoint_fields,
         .doc = "this node's API server endpoint"},
        SCHEMA_END,
};

const SchemaField join_configuration_fields[] = {
        TYPE_META,
        {"nodeRegistration", ST_OBJECT, .fields = node_registration_fields,
         .doc = "how a joining node registers"},
        {"caCertPath", ST_STRING, .doc = "kubeadm's default /etc/kubernetes/pki/ca.crt"},
        {"discovery", ST_OBJECT, .fields = discovery_fields,
         .doc = "how the node finds the cluster; filled in by Anvil"},
        {"controlPlane", ST_OBJECT, .fields = join_control_plane_fields,
         .doc = "set for control plane joins (by Anvil)"},
        {"skipPhases", ST_LIST, .item = ST_STRING, .doc = "kubeadm join phases to skip"},
        {"patches", ST_OBJECT, .fields = patches_fields, .doc = "kubeadm patches"},
        SCHEMA_END,
};

static const char *const file_encodings[] = {"base64", "gzip", "gzip+base64", NULL};

static const SchemaField secret_key_ref_fields[] = {
        {"name", ST_STRING, SF_REQUIRED | SF_NONEMPTY, .doc = "a Secret in the config's namespace"},
        {"key", ST_STRING, SF_REQUIRED | SF_NONEMPTY, .doc = "the key in its data"},
        SCHEMA_END,
};

static const SchemaField file_source_fields[] = {
        {"secret", ST_OBJECT, SF_REQUIRED, .fields = secret_key_ref_fields,
         .doc = "the Secret key holding the content"},
        SCHEMA_END,
};

static const char *check_permissions(const Obj *v, char *buf, size_t bufsz) {
        const char *s = obj_str(v);
        (void)buf;
        (void)bufsz;
        size_t n = s ? strlen(s) : 0;
        if (n < 3 || n > 4)
                return "must be an octal mode like \"0644\"";
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '7')
                        return "must be an octal mode like \"0644\"";
        return NULL;
}

static const char *check_abs_path(const Obj *v, char *buf, size_t bufsz) {
        const char *s = obj_str(v);
        (void)buf;
        (void)bufsz;
        if (!s || s[0] != '/')
                return "must be an absolute path";
        if (strstr(s, "/../") || (strlen(s) >= 3 && streq(s + strlen(s) - 3, "/..")))
                return "must not contain \"..\"";
        return NULL;
}

static const SchemaField file_fields[] = {
        {"path", ST_STRING, SF_REQUIRED, .max = 4096, .check = check_abs_path,
         .doc = "absolute path on the host; unique among the files"},
        {"owner", ST_STRING, .doc = "user:group, e.g. root:root"},
        {"permissions", ST_STRING, .check = check_permissions, .doc = "octal mode, e.g. \"0640\""},
        {"encoding", ST_STRING, .values = file_encodings, .doc = "how content is encoded"},
        {"append", ST_BOOL, .doc = "append instead of replacing"},
        {"content", ST_STRING, .max = 1 << 20, .doc = "the content; exclusive with contentFrom"},
        {"contentFrom", ST_OBJECT, .fields = file_source_fields,
         .doc = "content from a Secret key; exclusive with content"},
        SCHEMA_END,
};

/* Applied by the agent's users step as cloud-init's users_groups module applies them (see
 * docs/bootstrap.md); the checks keep every value a single field of /etc/passwd, a single
 * argument of useradd and a single sudoers line. */
static const SchemaField user_fields[] = {
        {"name", ST_STRING, SF_REQUIRED, .check = bundle_check_account_name,
         .doc = "user name: a letter or _, then letters, digits, ., _ or - (at most 32); an "
                "existing user is adjusted (groups, password, lock, sudo, keys)"},
        {"gecos", ST_STRING, .max = 256, .check = bundle_check_account_field,
         .doc = "GECOS (full name, ...); new users only"},
        {"groups", ST_STRING, .max = 256, .check = bundle_check_group_list,
         .doc = "supplementary groups, comma-separated; missing ones are created (groupadd)"},
        {"homeDir", ST_STRING, .max = 256, .check = bundle_check_account_path,
         .doc = "home directory, created; new users only (default /home/<name>)"},
        {"inactive", ST_BOOL,
         .doc = "true expires the account (usermod --expiredate 1): no login at all"},
        {"shell", ST_STRING, .max = 256, .check = bundle_check_account_path,
         .doc = "login shell; new users only"},
        {"passwd", ST_STRING, SF_SECRET, .max = 256, .check = bundle_check_account_field,
         .doc = "hashed password (crypt(3), e.g. $6$...); exclusive with passwdFrom"},
        {"passwdFrom", ST_OBJECT, .fields = file_source_fields,
         .doc = "hashed password from a Secret key; exclusive with passwd"},
        {"primaryGroup", ST_STRING, .max = 256, .check = bundle_check_account_name,
         .doc = "primary group, created when missing; new users only"},
        {"lockPassword", ST_BOOL,
         .doc = "lock the password (usermod --lock; the default is true, as in cloud-init): "
                "false leaves password login possible"},
        {"sudo", ST_STRING, .max = 256, .check = bundle_check_line,
         .doc = "sudoers rule, e.g. ALL=(ALL) NOPASSWD:ALL: written as \"<name> <rule>\" to "
                "/etc/sudoers.d/<name> (0440), checked with visudo -c first"},
        {"sshAuthorizedKeys", ST_LIST, .item = ST_STRING, .max = 100, .item_max = 2048,
         .doc = "SSH public keys added to ~/.ssh/authorized_keys (0600, owned by the user)"},
        SCHEMA_END,
};

static const SchemaField ntp_fields[] = {
        {"servers", ST_LIST, .item = ST_STRING, .max = 100, .item_max = 512,
         .doc = "NTP servers: NTP= of /etc/systemd/timesyncd.conf.d/anvil.conf"},
        {"enabled", ST_BOOL,
         .doc = "false: NTP is left alone (as cloud-init's ntp module skips itself); default "
                "true"},
        SCHEMA_END,
};

static const SchemaField partition_fields[] = {
        {"device", ST_STRING, SF_REQUIRED, .doc = "device name"},
        {"layout", ST_BOOL, SF_REQUIRED, .doc = "one partition for the whole device"},
        {"overwrite", ST_BOOL, .doc = "overwrite existing partitions"},
        {"tableType", ST_STRING, .values = (const char *const[]){"mbr", "gpt", NULL},
         .doc = "partition table type"},
        SCHEMA_END,
};

static const SchemaField filesystem_fields[] = {
        {"device", ST_STRING, SF_REQUIRED, .doc = "device name"},
        {"filesystem", ST_STRING, SF_REQUIRED, .doc = "file system type"},
        {"label", ST_STRING, SF_REQUIRED, .doc = "file system label"},
        {"partition", ST_STRING, .doc = "partition: auto, any, none or a number"},
        {"overwrite", ST_BOOL, .doc = "overwrite an existing file system"},
        {"replaceFS", ST_STRING, .doc = "file system to replace"},
        {"extraOpts", ST_LIST, .item = ST_STRING, .doc = "extra mkfs options"},
        SCHEMA_END,
};

static const SchemaField disk_setup_fields[] = {
        {"partitions", ST_LIST, .item = ST_OBJECT, .fields = partition_fields,
         .doc = "partitions to create"},
        {"filesystems", ST_LIST, .item = ST_OBJECT, .fields = filesystem_fields,
         .doc = "file systems to create"},
        SCHEMA_END,
};

const SchemaField kubeadm_config_spec_fields[] = {
        {"clusterConfiguration", ST_OBJECT, .fields = cluster_configuration_fields,
         .doc = "kubeadm ClusterConfiguration (init)"},
        {"initConfiguration", ST_OBJECT, .fields = init_configuration_fields,
         .doc = "kubeadm InitConfiguration (the first control plane node)"},
        {"joinConfiguration", ST_OBJECT, .fields = join_configuration_fields,
         .doc = "kubeadm JoinConfiguration (every other node)"},
        {"files", ST_LIST, .item = ST_OBJECT, .fields = file_fields, .max = 256,
         .doc = "files the agent writes before kubeadm runs"},
        {"diskSetup", ST_OBJECT, .fields = disk_setup_fields,
         .doc = "refused: partition and format disks in preKubeadmCommands (see "
                "docs/bootstrap.md)"},
        {"mounts", ST_LIST, .item = ST_LIST,
         .doc = "refused: mount in preKubeadmCommands (see docs/bootstrap.md)"},
        {"preKubeadmCommands", ST_LIST, .item = ST_STRING, .max = 256,
         .doc = "shell commands run before kubeadm, in order"},
        {"postKubeadmCommands", ST_LIST, .item = ST_STRING, .max = 256,
         .doc = "shell commands run after kubeadm, in order"},
        {"users", ST_LIST, .item = ST_OBJECT, .fields = user_fields,
         .doc = "users the agent creates or adjusts after writing the files, before the "
                "commands"},
        {"ntp", ST_OBJECT, .fields = ntp_fields,
         .doc = "time servers for systemd-timesyncd, set after the users"},
        {"format", ST_STRING, .values = (const char *const[]){"cloud-config", "ignition", NULL},
         .doc = "cloud-config (the default); ignition is refused: the agent applies the data"},
        {"verbosity", ST_INT, .min = 0, .max = 10,
         .doc = "kubeadm's log level: --v=N on kubeadm init and join"},
        {"useExperimentalRetryJoin", ST_BOOL, .doc = "accepted; the agent retries on its own"},
        {"ignition", ST_OBJECT, .doc = "refused: Ignition is not supported"},
        SCHEMA_END,
};

/* What the tables cannot say about users, ntp, diskSetup and mounts. */
static int validate_users_ntp(const Obj *spec, const char *path, Problems *p) {
        char fp[192];
        int r;
        OBJ_LIST_FOREACH(u, obj_map_get(spec, "users"), i) {
                const Obj *from = obj_map_get(u, "passwdFrom");
                if (from && obj_map_get(u, "passwd")) {
                        snprintf(fp, sizeof(fp), "%s.users[%zu]", path, i);
                        if ((r = problems_add(p, from->mark, fp,
                                              "only one of passwd or passwdFrom can be set")) < 0)
                                return r;
                }
                snprintf(fp, sizeof(fp), "%s.users[%zu].sshAuthorizedKeys", path, i);
                if ((r = check_items(obj_map_get(u, "sshAuthorizedKeys"), fp, bundle_check_line,
                                     p)) < 0)
                        return r;
        }
        snprintf(fp, sizeof(fp), "%s.ntp.servers", path);
        if ((r = check_items(obj_get(spec, "ntp.servers"), fp, bundle_check_ntp_server, p)) < 0)
                return r;
        /* Partitioning and formatting a bare-metal host's disks is destructive and cloud-init's
         * rules for it are intricate; Anvil's agent does not do it, and says so at apply
         * rather than accept what it would ignore. */
        static const char *const refused[] = {"diskSetup", "mounts"};
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                const Obj *v = obj_map_get(spec, refused[i]);
                if (!v)
                        continue;
                snprintf(fp, sizeof(fp), "%s.%s", path, refused[i]);
                r = problems_add(p, v->mark, fp,
                                 "is not supported: Anvil's agent does not partition, format or "
                                 "mount disks; do it in preKubeadmCommands (e.g. mkfs, an "
                                 "/etc/fstab line and mount -a)");
                if (r < 0)
                        return r;
        }
        return 0;
}

static int kubeadm_config_spec_validate(const Obj *spec, const char *path, Problems *p) {
        int r;
        const Obj *files = obj_map_get(spec, "files");
        OBJ_LIST_FOREACH(f, files, i) {
                char fp[160];
                const Obj *from = obj_map_get(f, "contentFrom");
                if (obj_map_get(f, "content") && from) {
                        snprintf(fp, sizeof(fp), "%s.files[%zu]", path, i);
                        r = problems_add(p, from->mark, fp,
                                         "only one of content or contentFrom may be specified "
                                         "for a single file");
                        if (r < 0)
                                return r;
                }
                const char *fpath = obj_get_str(f, "path");
                for (size_t j = 0; fpath && j < i; j++) {
                        if (!streq_ptr(obj_get_str(obj_list_get(files, j), "path"), fpath))
                                continue;
                        snprintf(fp, sizeof(fp), "%s.files[%zu].path", path, i);
                        r = problems_add(p, obj_map_get(f, "path")->mark, fp,
                                         "path property must be unique among all files (also "
                                         "files[%zu])",
                                         j);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        if ((r = validate_users_ntp(spec, path, p)) < 0)
                return r;
        const Obj *etcd = obj_get(spec, "clusterConfiguration.etcd");
        if (obj_map_get(etcd, "local") && obj_map_get(etcd, "external")) {
                char fp[160];
                snprintf(fp, sizeof(fp), "%s.clusterConfiguration.etcd.local", path);
                r = problems_add(p, obj_map_get(etcd, "local")->mark, fp,
                                 "cannot have both external and local etcd");
                if (r < 0)
                        return r;
        }
        const Obj *fmt = obj_map_get(spec, "format");
        if (streq_ptr(obj_str(fmt), "ignition")) {
                char fp[160];
                snprintf(fp, sizeof(fp), "%s.format", path);
                r = problems_add(p, fmt->mark, fp,
                                 "Ignition is not supported: Anvil's agent applies the bootstrap "
                                 "data itself; remove format or use \"cloud-config\"");
                if (r < 0)
                        return r;
        }
        const Obj *ign = obj_map_get(spec, "ignition");
        if (ign) {
                char fp[160];
                snprintf(fp, sizeof(fp), "%s.ignition", path);
                r = problems_add(p, ign->mark, fp, "Ignition is not supported by Anvil");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Cluster API's bootstrap webhook defaults the format. */
static int kubeadm_config_spec_defaults(Obj *doc, const char *path) {
        Obj *spec = obj_get(doc, path);
        if (!obj_is(spec, OBJ_MAP) || obj_map_get(spec, "format"))
                return 0;
        return obj_map_set_str(spec, "format", "cloud-config");
}

static const SchemaField kubeadm_config_status[] = {
        {"ready", ST_BOOL, .doc = "the bootstrap data is in dataSecretName"},
        {"dataSecretName", ST_STRING, .doc = "the Secret with the bootstrap data"},
        {"failureReason", ST_STRING, .doc = "terminal problem, machine-readable"},
        {"failureMessage", ST_STRING, .doc = "terminal problem, human-readable"},
        {"observedGeneration", ST_INT, .doc = "the generation last reconciled"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields,
         .doc = "Ready, DataSecretAvailable"},
        SCHEMA_END,
};

static int kubeadm_config_validate(const Obj *doc, Problems *p) {
        return kubeadm_config_spec_validate(obj_get(doc, "spec"), "spec", p);
}

static int kubeadm_config_defaults(Obj *doc) {
        return kubeadm_config_spec_defaults(doc, "spec");
}

const KindInfo kind_kubeadmconfig = {
        .group = "bootstrap.cluster.x-k8s.io",
        .version = "v1beta1",
        .kind = "KubeadmConfig",
        .plural = "kubeadmconfigs",
        .singular = "kubeadmconfig",
        .short_names = (const char *const[]){"kc", NULL},
        .namespaced = true,
        .spec = kubeadm_config_spec_fields,
        .status = kubeadm_config_status,
        .validate = kubeadm_config_validate,
        .defaults = kubeadm_config_defaults,
        .doc = "How one Machine is bootstrapped with kubeadm. Usually created from a "
               "KubeadmConfigTemplate or by the KubeadmControlPlane; its rendered bootstrap data "
               "goes into a Secret named in status.dataSecretName, never into the Machine.",
};

static const SchemaField kubeadm_config_template_resource_fields[] = {
        {"metadata", ST_OBJECT, .fields = template_metadata_fields,
         .doc = "labels and annotations of the KubeadmConfigs"},
        {"spec", ST_OBJECT, .fields = kubeadm_config_spec_fields, .doc = "their spec"},
        SCHEMA_END,
};

static const SchemaField kubeadm_config_template_spec[] = {
        {"template", ST_OBJECT, SF_REQUIRED, .fields = kubeadm_config_template_resource_fields,
         .doc = "the KubeadmConfig of each Machine"},
        SCHEMA_END,
};

static int kubeadm_config_template_validate(const Obj *doc, Problems *p) {
        return kubeadm_config_spec_validate(obj_get(doc, "spec.template.spec"),
                                            "spec.template.spec", p);
}

static int kubeadm_config_template_defaults(Obj *doc) {
        return kubeadm_config_spec_defaults(doc, "spec.template.spec");
}

const KindInfo kind_kubeadmconfigtemplate = {
        .group = "bootstrap.cluster.x-k8s.io",
        .version = "v1beta1",
        .kind = "KubeadmConfigTemplate",
        .plural = "kubeadmconfigtemplates",
        .singular = "kubeadmconfigtemplate",
        .short_names = (const char *const[]){"kct", NULL},
        .namespaced = true,
        .spec_required = true,
        .spec = kubeadm_config_template_spec,
        .validate = kubeadm_config_template_validate,
        .defaults = kubeadm_config_template_defaults,
        .doc = "The KubeadmConfig of every Machine of a MachineDeployment or MachineSet.",
};

/* ---- KubeadmControlPlane ---- */

static const SchemaField kcp_machine_template_fields[] = {
        {"metadata", ST_OBJECT, .fields = template_metadata_fields,
         .doc = "labels and annotations of the control plane Machines"},
        {"infrastructureRef", ST_OBJECT, SF_REQUIRED, .fields = object_reference_fields,
         .doc = "the AnvilMachineTemplate of the control plane Machines"},
        {"nodeDrainTimeout", ST_DURATION, .doc = "as in MachineSpec"},
        {"nodeVolumeDetachTimeout", ST_DURATION, .doc = "as in MachineSpec"},
        {"nodeDeletionTimeout", ST_DURATION, .doc = "as in MachineSpec"},
        {"readinessGates", ST_LIST, .item = ST_ANY, .doc = "accepted, not used"},
        SCHEMA_END,
};

static const SchemaField kcp_rolling_update_fields[] = {
        {"maxSurge", ST_INT_OR_STRING, .check = check_percent_or_int,
         .doc = "1 (the default: add a new machine, then remove an old one) or 0 (remove "
                "first; needs at least 3 replicas)"},
        SCHEMA_END,
};

static const SchemaField kcp_rollout_strategy_fields[] = {
        {"type", ST_STRING, .values = (const char *const[]){"RollingUpdate", NULL},
         .doc = "RollingUpdate, the only one"},
        {"rollingUpdate", ST_OBJECT, .fields = kcp_rolling_update_fields, .doc = "its parameters"},
        SCHEMA_END,
};

static const SchemaField kcp_remediation_fields[] = {
        {"maxRetry", ST_INT, .min = 0, .max = INT32_MAX, .doc = "accepted, not used yet"},
        {"retryPeriod", ST_DURATION, .doc = "accepted, not used yet"},
        {"minHealthyPeriod", ST_DURATION, .doc = "accepted, not used yet"},
        SCHEMA_END,
};

static const SchemaField kcp_rollout_before_fields[] = {
        {"certificatesExpiryDays", ST_INT, .min = 7, .max = INT32_MAX,
         .doc = "accepted, not used yet"},
        SCHEMA_END,
};

static const SchemaField machine_naming_strategy_fields[] = {
        {"template", ST_STRING, .doc = "accepted, not used: names are <owner>-<random>"},
        SCHEMA_END,
};

static const SchemaField kcp_spec[] = {
        {"replicas", ST_INT, .min = 1, .max = INT32_MAX,
         .doc = "control plane Machines; odd with stacked etcd; defaults to 1"},
        {"version", ST_STRING, SF_REQUIRED, .check = check_k8s_version,
         .doc = "Kubernetes version; upgrades go one minor version at a time"},
        {"machineTemplate", ST_OBJECT, SF_REQUIRED, .fields = kcp_machine_template_fields,
         .doc = "how control plane Machines look"},
        {"kubeadmConfigSpec", ST_OBJECT, SF_REQUIRED, .fields = kubeadm_config_spec_fields,
         .doc = "the kubeadm configuration of the control plane"},
        {"rolloutBefore", ST_OBJECT, .fields = kcp_rollout_before_fields,
         .doc = "roll out before certificates expire"},
        {"rolloutAfter", ST_TIME,
         .doc = "once this time has passed, control plane Machines created before it are "
                "rolled out"},
        {"rolloutStrategy", ST_OBJECT, .fields = kcp_rollout_strategy_fields,
         .doc = "how Machines are replaced; defaults to RollingUpdate with maxSurge 1"},
        {"remediationStrategy", ST_OBJECT, .fields = kcp_remediation_fields,
         .doc = "how unhealthy control plane Machines are remediated"},
        {"machineNamingStrategy", ST_OBJECT, .fields = machine_naming_strategy_fields,
         .doc = "how Machines are named"},
        SCHEMA_END,
};

static const SchemaField last_remediation_fields[] = {
        {"machine", ST_STRING},
        {"timestamp", ST_TIME},
        {"retryCount", ST_INT},
        SCHEMA_END,
};

static const SchemaField kcp_kubeadm_config_fields[] = {
        {"kubernetesVersion", ST_STRING, .doc = "the kubernetesVersion it was set to"},
        {"hash", ST_STRING, .doc = "a hash of everything that was set"},
        SCHEMA_END,
};

static const SchemaField kcp_status[] = {
        {"selector", ST_STRING, .doc = "the Machines' selector in -l syntax"},
        {"replicas", ST_INT, .doc = "control plane Machines that exist"},
        {"version", ST_STRING, .doc = "the lowest Kubernetes version among them"},
        {"updatedReplicas", ST_INT, .doc = "Machines of the current spec"},
        {"readyReplicas", ST_INT, .doc = "Machines whose node is ready"},
        {"unavailableReplicas", ST_INT, .doc = "replicas still missing"},
        {"initialized", ST_BOOL, .doc = "kubeadm init has succeeded"},
        {"ready", ST_BOOL, .doc = "the API server answers"},
        {"failureReason", ST_STRING, .doc = "terminal problem, machine-readable"},
        {"failureMessage", ST_STRING, .doc = "terminal problem, human-readable"},
        {"observedGeneration", ST_INT, .doc = "the generation last reconciled"},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields,
         .doc = "Ready, Available, CertificatesAvailable, MachinesReady, Resized"},
        {"lastRemediation", ST_OBJECT, .fields = last_remediation_fields,
         .doc = "not written by Anvil"},
        {"kubeadmConfig", ST_OBJECT, .fields = kcp_kubeadm_config_fields,
         .doc = "Anvil: what the workload cluster's kube-system/kubeadm-config was last brought "
                "to before a machine joined (kubernetesVersion and the managed parts of "
                "ClusterConfiguration)"},
        SCHEMA_END,
};

static bool kcp_external_etcd(const Obj *doc) {
        return obj_get(doc, "spec.kubeadmConfigSpec.clusterConfiguration.etcd.external") != NULL;
}

static int kcp_validate(const Obj *doc, Problems *p) {
        int64_t replicas = 1;
        int r;
        bool have_replicas = obj_get_int(doc, "spec.replicas", &replicas);
        if (have_replicas && replicas % 2 == 0 && !kcp_external_etcd(doc)) {
                r = problems_add(p, obj_get(doc, "spec.replicas")->mark, "spec.replicas",
                                 "cannot be an even number when etcd is stacked (etcd needs a "
                                 "majority: 1, 3, 5, ...)");
                if (r < 0)
                        return r;
        }
        const Obj *cc = obj_get(doc, "spec.kubeadmConfigSpec.clusterConfiguration");
        if (obj_map_get(cc, "kubernetesVersion")) {
                r = problems_add(p, obj_map_get(cc, "kubernetesVersion")->mark,
                                 "spec.kubeadmConfigSpec.clusterConfiguration.kubernetesVersion",
                                 "is set from spec.version; remove it");
                if (r < 0)
                        return r;
        }
        if ((r = kind_check_upgrade_strategy(doc, p)) < 0)
                return r;
        static const char *const kinds[] = {"AnvilMachineTemplate", NULL};
        if ((r = check_ref(doc, "spec.machineTemplate.infrastructureRef", kinds, p)) < 0)
                return r;
        const Obj *ms = obj_get(doc, "spec.rolloutStrategy.rollingUpdate.maxSurge");
        if (ms) {
                r = 0;
                bool one = obj_is(ms, OBJ_INT) && ms->i == 1;
                bool zero = obj_is(ms, OBJ_INT) && ms->i == 0;
                if (!one && !zero)
                        r = problems_add(p, ms->mark, "spec.rolloutStrategy.rollingUpdate.maxSurge",
                                         "value must be 1 or 0");
                else if (zero && replicas < 3)
                        r = problems_add(p, ms->mark, "spec.rolloutStrategy.rollingUpdate",
                                         "when KubeadmControlPlane is configured to scale-in, "
                                         "replica count needs to be at least 3");
                if (r < 0)
                        return r;
        }
        return kubeadm_config_spec_validate(obj_get(doc, "spec.kubeadmConfigSpec"),
                                            "spec.kubeadmConfigSpec", p);
}

/* What Cluster API's kubeadmcontrolplane webhook lets change after creation; every other
 * difference under spec is refused with "cannot be modified". A trailing ".*" admits
 * everything below. Lists are compared whole, as a JSON merge patch does. */
static const char *const kcp_mutable_paths[] = {
        "metadata.*",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.local.imageRepository",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.local.imageTag",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.local.extraArgs",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.local.extraArgs.*",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.local.extraEnvs",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.local.dataDir",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.local.peerCertSANs",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.local.serverCertSANs",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.external.endpoints",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.external.caFile",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.external.certFile",
        "spec.kubeadmConfigSpec.clusterConfiguration.etcd.external.keyFile",
        "spec.kubeadmConfigSpec.clusterConfiguration.dns.imageRepository",
        "spec.kubeadmConfigSpec.clusterConfiguration.dns.imageTag",
        "spec.kubeadmConfigSpec.clusterConfiguration.imageRepository",
        "spec.kubeadmConfigSpec.clusterConfiguration.featureGates",
        "spec.kubeadmConfigSpec.clusterConfiguration.featureGates.*",
        "spec.kubeadmConfigSpec.clusterConfiguration.apiServer",
        "spec.kubeadmConfigSpec.clusterConfiguration.apiServer.*",
        "spec.kubeadmConfigSpec.clusterConfiguration.controllerManager",
        "spec.kubeadmConfigSpec.clusterConfiguration.controllerManager.*",
        "spec.kubeadmConfigSpec.clusterConfiguration.scheduler",
        "spec.kubeadmConfigSpec.clusterConfiguration.scheduler.*",
        "spec.kubeadmConfigSpec.initConfiguration.nodeRegistration",
        "spec.kubeadmConfigSpec.initConfiguration.nodeRegistration.*",
        "spec.kubeadmConfigSpec.initConfiguration.patches",
        "spec.kubeadmConfigSpec.initConfiguration.patches.directory",
        "spec.kubeadmConfigSpec.initConfiguration.skipPhases",
        "spec.kubeadmConfigSpec.initConfiguration.bootstrapTokens",
        "spec.kubeadmConfigSpec.initConfiguration.localAPIEndpoint",
        "spec.kubeadmConfigSpec.initConfiguration.localAPIEndpoint.*",
        "spec.kubeadmConfigSpec.joinConfiguration.nodeRegistration",
        "spec.kubeadmConfigSpec.joinConfiguration.nodeRegistration.*",
        "spec.kubeadmConfigSpec.joinConfiguration.patches",
        "spec.kubeadmConfigSpec.joinConfiguration.patches.directory",
        "spec.kubeadmConfigSpec.joinConfiguration.skipPhases",
        "spec.kubeadmConfigSpec.joinConfiguration.caCertPath",
        "spec.kubeadmConfigSpec.joinConfiguration.controlPlane",
        "spec.kubeadmConfigSpec.joinConfiguration.controlPlane.*",
        "spec.kubeadmConfigSpec.joinConfiguration.discovery",
        "spec.kubeadmConfigSpec.joinConfiguration.discovery.*",
        "spec.kubeadmConfigSpec.preKubeadmCommands",
        "spec.kubeadmConfigSpec.postKubeadmCommands",
        "spec.kubeadmConfigSpec.files",
        "spec.kubeadmConfigSpec.verbosity",
        "spec.kubeadmConfigSpec.users",
        "spec.kubeadmConfigSpec.ntp",
        "spec.kubeadmConfigSpec.ntp.*",
        "spec.kubeadmConfigSpec.ignition",
        "spec.kubeadmConfigSpec.ignition.*",
        "spec.kubeadmConfigSpec.diskSetup",
        "spec.kubeadmConfigSpec.diskSetup.*",
        "spec.kubeadmConfigSpec.format",
        "spec.kubeadmConfigSpec.mounts",
        "spec.kubeadmConfigSpec.useExperimentalRetryJoin",
        "spec.machineTemplate.metadata",
        "spec.machineTemplate.metadata.*",
        "spec.machineTemplate.infrastructureRef.apiVersion",
        "spec.machineTemplate.infrastructureRef.name",
        "spec.machineTemplate.infrastructureRef.kind",
        "spec.machineTemplate.nodeDrainTimeout",
        "spec.machineTemplate.nodeVolumeDetachTimeout",
        "spec.machineTemplate.nodeDeletionTimeout",
        "spec.machineTemplate.readinessGates",
        "spec.replicas",
        "spec.version",
        "spec.remediationStrategy",
        "spec.remediationStrategy.*",
        "spec.machineNamingStrategy",
        "spec.machineNamingStrategy.*",
        "spec.rolloutAfter",
        "spec.rolloutBefore",
        "spec.rolloutBefore.*",
        "spec.rolloutStrategy",
        "spec.rolloutStrategy.*",
        NULL,
};

/* Does the dotted path match pattern (components, "*" admits the rest)? The same rule as the
 * webhook's: a path shorter than the pattern does not match. */
static bool path_allowed(const char *pattern, const char *path) {
        for (;;) {
                if (streq(pattern, "*"))
                        return true;
                size_t pl = strcspn(pattern, "."), ql = strcspn(path, ".");
                if (pl != ql || strncmp(pattern, path, pl) != 0)
                        return false;
                pattern += pl;
                path += ql;
                if (!*path)
                        return !*pattern;
                if (!*pattern)
                        return false;
                pattern++;
                path++;
        }
}

/* Walks two maps like a JSON merge patch: the changed leaves (and removed keys) of a and b,
 * each reported once, and those not admitted by allowed become problems. */
static int diff_paths(const Obj *a, const Obj *b, const char *prefix, const char *const *allowed,
                      Problems *p) {
        int r;
        OBJ_MAP_FOREACH(e, b) {
                const Obj *av = obj_map_get(a, e->key);
                _cleanup_free_ char *sub = strjoin(prefix, ".", e->key);
                if (!sub)
                        return -ENOMEM;
                if (obj_equal(av, e->value))
                        continue;
                if (obj_is(e->value, OBJ_MAP) && (!av || obj_is(av, OBJ_MAP))) {
                        if ((r = diff_paths(av, e->value, sub, allowed, p)) < 0)
                                return r;
                        continue;
                }
                bool ok = false;
                for (const char *const *q = allowed; *q && !ok; q++)
                        ok = path_allowed(*q, sub);
                if (!ok && (r = problems_add(p, e->value->mark, sub, "cannot be modified")) < 0)
                        return r;
        }
        OBJ_MAP_FOREACH(e, a) {
                if (obj_map_get(b, e->key))
                        continue;
                _cleanup_free_ char *sub = strjoin(prefix, ".", e->key);
                if (!sub)
                        return -ENOMEM;
                bool ok = false;
                for (const char *const *q = allowed; *q && !ok; q++)
                        ok = path_allowed(*q, sub);
                if (!ok && (r = problems_add(p, b ? b->mark : e->value->mark, sub,
                                             "cannot be modified (removed)")) < 0)
                        return r;
        }
        return 0;
}

static int kcp_validate_update(const Obj *old, const Obj *new, Problems *p) {
        int r = diff_paths(obj_map_get(old, "spec"), obj_map_get(new, "spec"), "spec",
                           kcp_mutable_paths, p);
        if (r < 0)
                return r;
        /* The version's skew rules (one minor at a time, against the cluster's
         * MachineDeployments) need the other objects: coordinator/controllers/skew.c. */
        bool old_ext = kcp_external_etcd(old), new_ext = kcp_external_etcd(new);
        if (old_ext != new_ext)
                return problems_add(p, new->mark,
                                    new_ext ? "spec.kubeadmConfigSpec.clusterConfiguration.etcd."
                                              "external"
                                            : "spec.kubeadmConfigSpec.clusterConfiguration.etcd."
                                              "local",
                                    "cannot change between external and local etcd");
        return 0;
}

static int kcp_defaults(Obj *doc) {
        int r;
        if (!obj_get(doc, "spec.replicas") && (r = obj_set_int(doc, "spec.replicas", 1)) < 0)
                return r;
        if ((r = default_ref_namespace(doc, "spec.machineTemplate.infrastructureRef")) < 0 ||
            (r = default_version_prefix(doc, "spec.version")) < 0 ||
            (r = kubeadm_config_spec_defaults(doc, "spec.kubeadmConfigSpec")) < 0)
                return r;
        if (!obj_get(doc, "spec.rolloutStrategy.type") &&
            (r = obj_set_str(doc, "spec.rolloutStrategy.type", "RollingUpdate")) < 0)
                return r;
        if (!obj_get(doc, "spec.rolloutStrategy.rollingUpdate.maxSurge") &&
            (r = obj_set_int(doc, "spec.rolloutStrategy.rollingUpdate.maxSurge", 1)) < 0)
                return r;
        return 0;
}

const KindInfo kind_kubeadmcontrolplane = {
        .group = "controlplane.cluster.x-k8s.io",
        .version = "v1beta1",
        .kind = "KubeadmControlPlane",
        .plural = "kubeadmcontrolplanes",
        .singular = "kubeadmcontrolplane",
        .short_names = (const char *const[]){"kcp", NULL},
        .namespaced = true,
        .spec_required = true,
        .spec = kcp_spec,
        .status = kcp_status,
        .validate = kcp_validate,
        .defaults = kcp_defaults,
        .validate_update = kcp_validate_update,
        .doc = "The control plane of a cluster: replicas Machines running the API server, "
               "controller manager, scheduler and stacked etcd, created one at a time (the "
               "first runs kubeadm init, the others kubeadm join).",
};
