/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bootstrap.cluster.x-k8s.io/v1beta1 (KubeadmConfig, KubeadmConfigTemplate) and
 * controlplane.cluster.x-k8s.io/v1beta1 (KubeadmControlPlane). The embedded kubeadm types
 * (ClusterConfiguration, InitConfiguration, JoinConfiguration) use the field names of Cluster
 * API's bootstrap/kubeadm/api/v1beta1/kubeadm_types.go, which mirror kubeadm's v1beta3.
 */
#include "kinds.h"

extern const SchemaField api_endpoint_fields[];
extern const SchemaField machine_spec_fields[];

static const SchemaField type_meta[] = {
        {"apiVersion", ST_STRING},
        {"kind", ST_STRING},
        SCHEMA_END,
};
#define TYPE_META {"apiVersion", ST_STRING}, {"kind", ST_STRING}

static const SchemaField host_path_mount_fields[] = {
        {"name", ST_STRING, SF_REQUIRED},
        {"hostPath", ST_STRING, SF_REQUIRED},
        {"mountPath", ST_STRING, SF_REQUIRED},
        {"readOnly", ST_BOOL},
        {"pathType", ST_STRING},
        SCHEMA_END,
};

static const SchemaField control_plane_component_fields[] = {
        {"extraArgs", ST_STRMAP},
        {"extraVolumes", ST_LIST, .item = ST_OBJECT, .fields = host_path_mount_fields},
        {"extraEnvs", ST_LIST, .item = ST_ANY},
        SCHEMA_END,
};

static const SchemaField api_server_fields[] = {
        {"extraArgs", ST_STRMAP},
        {"extraVolumes", ST_LIST, .item = ST_OBJECT, .fields = host_path_mount_fields},
        {"extraEnvs", ST_LIST, .item = ST_ANY},
        {"certSANs", ST_LIST, .item = ST_STRING},
        {"timeoutForControlPlane", ST_DURATION},
        SCHEMA_END,
};

static const SchemaField image_meta_fields[] = {
        {"imageRepository", ST_STRING},
        {"imageTag", ST_STRING},
        SCHEMA_END,
};

static const SchemaField local_etcd_fields[] = {
        {"imageRepository", ST_STRING},
        {"imageTag", ST_STRING},
        {"dataDir", ST_STRING},
        {"extraArgs", ST_STRMAP},
        {"extraEnvs", ST_LIST, .item = ST_ANY},
        {"serverCertSANs", ST_LIST, .item = ST_STRING},
        {"peerCertSANs", ST_LIST, .item = ST_STRING},
        SCHEMA_END,
};

static const SchemaField external_etcd_fields[] = {
        {"endpoints", ST_LIST, SF_REQUIRED, .item = ST_STRING},
        {"caFile", ST_STRING, SF_REQUIRED},
        {"certFile", ST_STRING, SF_REQUIRED},
        {"keyFile", ST_STRING, SF_REQUIRED},
        SCHEMA_END,
};

static const SchemaField etcd_fields[] = {
        {"local", ST_OBJECT, .fields = local_etcd_fields},
        {"external", ST_OBJECT, .fields = external_etcd_fields},
        SCHEMA_END,
};

static const SchemaField networking_fields[] = {
        {"serviceSubnet", ST_STRING},
        {"podSubnet", ST_STRING},
        {"dnsDomain", ST_STRING},
        SCHEMA_END,
};

static const SchemaField cluster_configuration_fields[] = {
        TYPE_META,
        {"etcd", ST_OBJECT, .fields = etcd_fields},
        {"networking", ST_OBJECT, .fields = networking_fields},
        {"kubernetesVersion", ST_STRING},
        {"controlPlaneEndpoint", ST_STRING},
        {"apiServer", ST_OBJECT, .fields = api_server_fields},
        {"controllerManager", ST_OBJECT, .fields = control_plane_component_fields},
        {"scheduler", ST_OBJECT, .fields = control_plane_component_fields},
        {"dns", ST_OBJECT, .fields = image_meta_fields},
        {"certificatesDir", ST_STRING},
        {"imageRepository", ST_STRING},
        {"featureGates", ST_MAP, .item = ST_BOOL},
        {"clusterName", ST_STRING},
        SCHEMA_END,
};

static const char *const taint_effects[] = {"NoSchedule", "PreferNoSchedule", "NoExecute", NULL};

static const SchemaField taint_fields[] = {
        {"key", ST_STRING, SF_REQUIRED},
        {"value", ST_STRING},
        {"effect", ST_STRING, SF_REQUIRED, .values = taint_effects},
        {"timeAdded", ST_TIME},
        SCHEMA_END,
};

static const SchemaField node_registration_fields[] = {
        {"name", ST_STRING, SF_DNS_NAME},
        {"criSocket", ST_STRING},
        {"taints", ST_LIST, .item = ST_OBJECT, .fields = taint_fields},
        {"kubeletExtraArgs", ST_STRMAP},
        {"ignorePreflightErrors", ST_LIST, .item = ST_STRING},
        {"imagePullPolicy", ST_STRING,
         .values = (const char *const[]){"Always", "IfNotPresent", "Never", NULL}},
        {"imagePullSerial", ST_BOOL},
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
        {"token", ST_STRING, SF_REQUIRED | SF_SECRET, .check = check_bootstrap_token},
        {"description", ST_STRING},
        {"ttl", ST_DURATION},
        {"expires", ST_TIME},
        {"usages", ST_LIST, .item = ST_STRING},
        {"groups", ST_LIST, .item = ST_STRING},
        SCHEMA_END,
};

static const SchemaField patches_fields[] = {
        {"directory", ST_STRING},
        SCHEMA_END,
};

static const SchemaField init_configuration_fields[] = {
        TYPE_META,
        {"bootstrapTokens", ST_LIST, .item = ST_OBJECT, .fields = bootstrap_token_fields},
        {"nodeRegistration", ST_OBJECT, .fields = node_registration_fields},
        {"localAPIEndpoint", ST_OBJECT,
         .fields = (const SchemaField[]){{"advertiseAddress", ST_STRING},
                                         {"bindPort", ST_INT, .min = 0, .max = 65535},
                                         SCHEMA_END}},
        {"skipPhases", ST_LIST, .item = ST_STRING},
        {"patches", ST_OBJECT, .fields = patches_fields},
        SCHEMA_END,
};

static const SchemaField bootstrap_token_discovery_fields[] = {
        {"token", ST_STRING, SF_SECRET},
        {"apiServerEndpoint", ST_STRING},
        {"caCertHashes", ST_LIST, .item = ST_STRING},
        {"unsafeSkipCAVerification", ST_BOOL},
        SCHEMA_END,
};

static const SchemaField file_discovery_fields[] = {
        {"kubeConfigPath", ST_STRING, SF_REQUIRED},
        {"kubeConfig", ST_OBJECT},
        SCHEMA_END,
};

static const SchemaField discovery_fields[] = {
        {"bootstrapToken", ST_OBJECT, .fields = bootstrap_token_discovery_fields},
        {"file", ST_OBJECT, .fields = file_discovery_fields},
        {"tlsBootstrapToken", ST_STRING, SF_SECRET},
        {"timeout", ST_DURATION},
        SCHEMA_END,
};

static const SchemaField join_control_plane_fields[] = {
        {"localAPIEndpoint", ST_OBJECT,
         .fields = (const SchemaField[]){{"advertiseAddress", ST_STRING},
                                         {"bindPort", ST_INT, .min = 0, .max = 65535},
                                         SCHEMA_END}},
        SCHEMA_END,
};

static const SchemaField join_configuration_fields[] = {
        TYPE_META,
        {"nodeRegistration", ST_OBJECT, .fields = node_registration_fields},
        {"caCertPath", ST_STRING},
        {"discovery", ST_OBJECT, .fields = discovery_fields},
        {"controlPlane", ST_OBJECT, .fields = join_control_plane_fields},
        {"skipPhases", ST_LIST, .item = ST_STRING},
        {"patches", ST_OBJECT, .fields = patches_fields},
        SCHEMA_END,
};

static const char *const file_encodings[] = {"base64", "gzip", "gzip+base64", NULL};

static const SchemaField secret_key_ref_fields[] = {
        {"name", ST_STRING, SF_REQUIRED},
        {"key", ST_STRING, SF_REQUIRED},
        SCHEMA_END,
};

static const SchemaField file_source_fields[] = {
        {"secret", ST_OBJECT, SF_REQUIRED, .fields = secret_key_ref_fields},
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
        {"path", ST_STRING, SF_REQUIRED, .max = 4096, .check = check_abs_path},
        {"owner", ST_STRING},
        {"permissions", ST_STRING, .check = check_permissions},
        {"encoding", ST_STRING, .values = file_encodings},
        {"append", ST_BOOL},
        {"content", ST_STRING, .max = 1 << 20},
        {"contentFrom", ST_OBJECT, .fields = file_source_fields},
        SCHEMA_END,
};

static const SchemaField user_fields[] = {
        {"name", ST_STRING, SF_REQUIRED},
        {"gecos", ST_STRING},
        {"groups", ST_STRING},
        {"homeDir", ST_STRING},
        {"inactive", ST_BOOL},
        {"shell", ST_STRING},
        {"passwd", ST_STRING, SF_SECRET},
        {"passwdFrom", ST_OBJECT},
        {"primaryGroup", ST_STRING},
        {"lockPassword", ST_BOOL},
        {"sudo", ST_STRING},
        {"sshAuthorizedKeys", ST_LIST, .item = ST_STRING},
        SCHEMA_END,
};

static const SchemaField ntp_fields[] = {
        {"servers", ST_LIST, .item = ST_STRING},
        {"enabled", ST_BOOL},
        SCHEMA_END,
};

const SchemaField kubeadm_config_spec_fields[] = {
        {"clusterConfiguration", ST_OBJECT, .fields = cluster_configuration_fields},
        {"initConfiguration", ST_OBJECT, .fields = init_configuration_fields},
        {"joinConfiguration", ST_OBJECT, .fields = join_configuration_fields},
        {"files", ST_LIST, .item = ST_OBJECT, .fields = file_fields, .max = 256},
        {"diskSetup", ST_OBJECT},
        {"mounts", ST_LIST, .item = ST_LIST},
        {"preKubeadmCommands", ST_LIST, .item = ST_STRING, .max = 256},
        {"postKubeadmCommands", ST_LIST, .item = ST_STRING, .max = 256},
        {"users", ST_LIST, .item = ST_OBJECT, .fields = user_fields},
        {"ntp", ST_OBJECT, .fields = ntp_fields},
        {"format", ST_STRING, .values = (const char *const[]){"cloud-config", "ignition", NULL}},
        {"verbosity", ST_INT, .min = 0, .max = 10},
        {"useExperimentalRetryJoin", ST_BOOL},
        {"ignition", ST_OBJECT},
        SCHEMA_END,
};

static int kubeadm_config_spec_validate(const Obj *spec, const char *path, Problems *p) {
        int r;
        const Obj *files = obj_map_get(spec, "files");
        OBJ_LIST_FOREACH(f, files, i) {
                bool content = obj_map_get(f, "content") != NULL;
                bool from = obj_map_get(f, "contentFrom") != NULL;
                if (content && from) {
                        char fp[128];
                        snprintf(fp, sizeof(fp), "%s.files[%zu].contentFrom", path, i);
                        r = problems_add(p, obj_map_get(f, "contentFrom")->mark, fp,
                                         "content and contentFrom are mutually exclusive");
                        if (r < 0)
                                return r;
                }
        }
        const Obj *etcd = obj_get(spec, "clusterConfiguration.etcd");
        if (obj_map_get(etcd, "local") && obj_map_get(etcd, "external")) {
                char fp[128];
                snprintf(fp, sizeof(fp), "%s.clusterConfiguration.etcd", path);
                r = problems_add(p, etcd->mark, fp, "local and external are mutually exclusive");
                if (r < 0)
                        return r;
        }
        return 0;
}

static const SchemaField kubeadm_config_status[] = {
        {"ready", ST_BOOL},
        {"dataSecretName", ST_STRING},
        {"failureReason", ST_STRING},
        {"failureMessage", ST_STRING},
        {"observedGeneration", ST_INT},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        SCHEMA_END,
};

static int kubeadm_config_validate(const Obj *doc, Problems *p) {
        return kubeadm_config_spec_validate(obj_get(doc, "spec"), "spec", p);
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
};

static const SchemaField kubeadm_config_template_resource_fields[] = {
        {"metadata", ST_OBJECT, .fields = template_metadata_fields},
        {"spec", ST_OBJECT, .fields = kubeadm_config_spec_fields},
        SCHEMA_END,
};

static const SchemaField kubeadm_config_template_spec[] = {
        {"template", ST_OBJECT, SF_REQUIRED, .fields = kubeadm_config_template_resource_fields},
        SCHEMA_END,
};

static int kubeadm_config_template_validate(const Obj *doc, Problems *p) {
        return kubeadm_config_spec_validate(obj_get(doc, "spec.template.spec"),
                                            "spec.template.spec", p);
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
};

/* ---- KubeadmControlPlane ---- */

static const SchemaField kcp_machine_template_fields[] = {
        {"metadata", ST_OBJECT, .fields = template_metadata_fields},
        {"infrastructureRef", ST_OBJECT, SF_REQUIRED, .fields = object_reference_fields},
        {"nodeDrainTimeout", ST_DURATION},
        {"nodeVolumeDetachTimeout", ST_DURATION},
        {"nodeDeletionTimeout", ST_DURATION},
        SCHEMA_END,
};

static const SchemaField kcp_rolling_update_fields[] = {
        {"maxSurge", ST_INT_OR_STRING, .check = check_percent_or_int},
        SCHEMA_END,
};

static const SchemaField kcp_rollout_strategy_fields[] = {
        {"type", ST_STRING, .values = (const char *const[]){"RollingUpdate", NULL}},
        {"rollingUpdate", ST_OBJECT, .fields = kcp_rolling_update_fields},
        SCHEMA_END,
};

static const SchemaField kcp_remediation_fields[] = {
        {"maxRetry", ST_INT, .min = 0, .max = 1000},
        {"retryPeriod", ST_DURATION},
        {"minHealthyPeriod", ST_DURATION},
        SCHEMA_END,
};

static const SchemaField kcp_spec[] = {
        {"replicas", ST_INT, .min = 0, .max = 15},
        {"version", ST_STRING, SF_REQUIRED, .check = check_k8s_version},
        {"machineTemplate", ST_OBJECT, SF_REQUIRED, .fields = kcp_machine_template_fields},
        {"kubeadmConfigSpec", ST_OBJECT, SF_REQUIRED, .fields = kubeadm_config_spec_fields},
        {"rolloutBefore", ST_OBJECT,
         .fields = (const SchemaField[]){{"certificatesExpiryDays", ST_INT, .min = 7},
                                         SCHEMA_END}},
        {"rolloutAfter", ST_TIME},
        {"rolloutStrategy", ST_OBJECT, .fields = kcp_rollout_strategy_fields},
        {"remediationStrategy", ST_OBJECT, .fields = kcp_remediation_fields},
        SCHEMA_END,
};

static const SchemaField kcp_status[] = {
        {"selector", ST_STRING},
        {"replicas", ST_INT},
        {"version", ST_STRING},
        {"updatedReplicas", ST_INT},
        {"readyReplicas", ST_INT},
        {"unavailableReplicas", ST_INT},
        {"initialized", ST_BOOL},
        {"ready", ST_BOOL},
        {"failureReason", ST_STRING},
        {"failureMessage", ST_STRING},
        {"observedGeneration", ST_INT},
        {"conditions", ST_LIST, .item = ST_OBJECT, .fields = condition_fields},
        {"lastRemediation", ST_OBJECT},
        SCHEMA_END,
};

static int kcp_validate(const Obj *doc, Problems *p) {
        int64_t replicas;
        int r;
        if (obj_get_int(doc, "spec.replicas", &replicas) && replicas % 2 == 0) {
                r = problems_add(p, obj_get(doc, "spec.replicas")->mark, "spec.replicas",
                                 "must be an odd number (etcd needs a majority: 1, 3, 5, ...)");
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
        /* Cluster API's webhook: replacing with maxSurge 0 removes a member first, which a
         * control plane of one (or two) cannot survive. */
        const Obj *surge = obj_get(doc, "spec.rolloutStrategy.rollingUpdate.maxSurge");
        int64_t n = 1;
        obj_get_int(doc, "spec.replicas", &n);
        if (surge && obj_is(surge, OBJ_INT) && surge->i == 0 && n < 3) {
                r = problems_add(p, surge->mark, "spec.rolloutStrategy.rollingUpdate.maxSurge",
                                 "0 needs at least 3 replicas (a rollout removes a member before "
                                 "adding one)");
                if (r < 0)
                        return r;
        }
        return kubeadm_config_spec_validate(obj_get(doc, "spec.kubeadmConfigSpec"),
                                            "spec.kubeadmConfigSpec", p);
}

static int kcp_defaults(Obj *doc) {
        int r;
        if (!obj_get(doc, "spec.replicas") && (r = obj_set_int(doc, "spec.replicas", 1)) < 0)
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
};

const SchemaField *const kubeadm_type_meta = type_meta;
