/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The edit behind the agent's kubeadm-config-update command (agent/commands.c,
 * kubeadm_config_patch): from the kubeadm-config ConfigMap kubectl prints and the command's
 * arguments to the merge patch sent back — kubernetesVersion and the managed fields set,
 * null removing one, everything else of the ClusterConfiguration kept, the resourceVersion
 * read as precondition; nothing to send when nothing differs; bad arguments and a broken
 * ConfigMap refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../agent/commands.h" /* the agent's, not the coordinator's commands.h */
#include "json.h"
#include "yamlio.h"

/* The ConfigMap as `kubectl -n kube-system get configmap kubeadm-config -o json` prints it. */
static char *configmap(const char *cluster_configuration) {
        _cleanup_(obj_freep) Obj *cm = obj_new_map();
        assert_non_null(cm);
        assert_int_equal(obj_map_set_str(cm, "apiVersion", "v1"), 0);
        assert_int_equal(obj_map_set_str(cm, "kind", "ConfigMap"), 0);
        assert_int_equal(obj_set_str(cm, "metadata.name", "kubeadm-config"), 0);
        assert_int_equal(obj_set_str(cm, "metadata.namespace", "kube-system"), 0);
        assert_int_equal(obj_set_str(cm, "metadata.resourceVersion", "217"), 0);
        assert_int_equal(obj_set_str(cm, "data.ClusterConfiguration", cluster_configuration), 0);
        char *json = NULL;
        assert_int_equal(json_emit(cm, true, &json), 0);
        return json;
}

static const char CC[] = "apiServer:\n"
                         "  extraArgs:\n"
                         "    audit-log-maxage: \"30\"\n"
                         "  timeoutForControlPlane: 4m0s\n"
                         "apiVersion: kubeadm.k8s.io/v1beta3\n"
                         "certificatesDir: /etc/kubernetes/pki\n"
                         "clusterName: demo\n"
                         "controlPlaneEndpoint: 10.200.0.10:6443\n"
                         "featureGates:\n"
                         "  EtcdLearnerMode: true\n"
                         "kind: ClusterConfiguration\n"
                         "kubernetesVersion: v1.30.2\n"
                         "networking:\n"
                         "  podSubnet: 192.168.0.0/16\n";

static Obj *args(const char *yaml_text) {
        Obj *a = NULL;
        YamlError ye;
        assert_int_equal(yaml_parse_one(yaml_text, strlen(yaml_text), &a, &ye), 0);
        return a;
}

/* The patch's new ClusterConfiguration, parsed; asserts the resourceVersion precondition. */
static Obj *patched(const char *patch) {
        _cleanup_(obj_freep) Obj *p = NULL;
        assert_int_equal(json_parse(patch, strlen(patch), &p), 0);
        assert_string_equal(obj_get_str(p, "metadata.resourceVersion"), "217");
        const char *text = obj_get_str(p, "data.ClusterConfiguration");
        assert_non_null(text);
        Obj *cc = NULL;
        YamlError ye;
        assert_int_equal(yaml_parse_one(text, strlen(text), &cc, &ye), 0);
        return cc;
}

static void test_version_only(void **state) {
        (void)state;
        _cleanup_free_ char *cm = configmap(CC);
        _cleanup_(obj_freep) Obj *a = args("kubernetesVersion: v1.31.0\n");
        _cleanup_free_ char *patch = NULL;
        char err[256] = "";
        assert_int_equal(kubeadm_config_patch(cm, a, &patch, err, sizeof(err)), 1);
        _cleanup_(obj_freep) Obj *cc = patched(patch);
        assert_string_equal(obj_get_str(cc, "kubernetesVersion"), "v1.31.0");
        /* The rest is kept as kubeadm uploaded it. */
        assert_string_equal(obj_get_str(cc, "apiServer.timeoutForControlPlane"), "4m0s");
        assert_string_equal(obj_get_str(cc, "networking.podSubnet"), "192.168.0.0/16");
        assert_true(obj_get_bool(cc, "featureGates.EtcdLearnerMode", false));
        assert_string_equal(obj_get_str(cc, "clusterName"), "demo");

        /* Asked again once the ConfigMap has it: nothing to send. */
        _cleanup_free_ char *again =
                configmap("kind: ClusterConfiguration\nkubernetesVersion: v1.31.0\n");
        char *none = (char *)"x";
        assert_int_equal(kubeadm_config_patch(again, a, &none, err, sizeof(err)), 0);
        assert_null(none);
}

static void test_managed_fields(void **state) {
        (void)state;
        _cleanup_free_ char *cm = configmap(CC);
        /* As Cluster API's KCP: apiServer, controllerManager, scheduler replaced whole,
         * featureGates reset (null removes it), imageRepository set. */
        _cleanup_(obj_freep) Obj *a =
                args("kubernetesVersion: v1.31.0\n"
                     "imageRepository: registry.example.com/k8s\n"
                     "apiServer: '{\"extraArgs\": {\"v\": \"2\"}, \"certSANs\": "
                     "[\"api.example.com\"]}'\n"
                     "controllerManager: '{\"extraArgs\": {\"bind-address\": \"0.0.0.0\"}}'\n"
                     "scheduler: '{}'\n"
                     "featureGates: 'null'\n");
        _cleanup_free_ char *patch = NULL;
        char err[256] = "";
        int r = kubeadm_config_patch(cm, a, &patch, err, sizeof(err));
        assert_string_equal(err, "");
        assert_int_equal(r, 1);
        _cleanup_(obj_freep) Obj *cc = patched(patch);
        assert_string_equal(obj_get_str(cc, "imageRepository"), "registry.example.com/k8s");
        assert_string_equal(obj_get_str(cc, "apiServer.extraArgs.v"), "2");
        assert_null(obj_get(cc, "apiServer.extraArgs.audit-log-maxage"));
        assert_null(obj_get(cc, "apiServer.timeoutForControlPlane"));
        assert_string_equal(obj_get_str(cc, "apiServer.certSANs[0]"), "api.example.com");
        assert_string_equal(obj_get_str(cc, "controllerManager.extraArgs.bind-address"), "0.0.0.0");
        assert_true(obj_is(obj_get(cc, "scheduler"), OBJ_MAP));
        assert_null(obj_get(cc, "featureGates"));
        /* The ConfigMap's own version: nothing to do. */
        _cleanup_(obj_freep) Obj *b = args("kubernetesVersion: v1.30.2\n");
        _cleanup_free_ char *p2 = NULL;
        assert_int_equal(kubeadm_config_patch(cm, b, &p2, err, sizeof(err)), 0);
}

static void test_refusals(void **state) {
        (void)state;
        _cleanup_free_ char *cm = configmap(CC);
        char *patch = NULL;
        char err[256] = "";
        static const struct {
                const char *args, *message;
        } bad[] = {
                {"imageRepository: x\n", "invalid or missing args.kubernetesVersion"},
                {"kubernetesVersion: 'v1.31.0; rm -rf /'\n",
                 "invalid or missing args.kubernetesVersion"},
                {"kubernetesVersion: v1.31.0\nimageRepository: 'a b'\n",
                 "invalid args.imageRepository"},
                {"kubernetesVersion: v1.31.0\napiServer: '[1]'\n",
                 "args.apiServer is not a JSON object or null"},
                {"kubernetesVersion: v1.31.0\netcd: '{'\n",
                 "args.etcd is not a JSON object or null"},
                {"kubernetesVersion: v1.31.0\nnetworking: '{}'\n", "unknown argument networking"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                _cleanup_(obj_freep) Obj *a = args(bad[i].args);
                assert_int_equal(kubeadm_config_patch(cm, a, &patch, err, sizeof(err)), -EINVAL);
                assert_string_equal(err, bad[i].message);
        }
        _cleanup_(obj_freep) Obj *a = args("kubernetesVersion: v1.31.0\n");
        assert_true(kubeadm_config_patch("not json", a, &patch, err, sizeof(err)) < 0);
        assert_string_equal(err, "kubectl printed something that is not a ConfigMap");
        _cleanup_free_ char *broken = configmap("kind: [unclosed\n");
        assert_int_equal(kubeadm_config_patch(broken, a, &patch, err, sizeof(err)), -EBADMSG);
        assert_string_equal(err, "the ClusterConfiguration in kubeadm-config is not valid YAML");
        assert_int_equal(kubeadm_config_patch("{\"data\": {}}", a, &patch, err, sizeof(err)),
                         -ENODATA);
        assert_null(patch);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_version_only),
                cmocka_unit_test(test_managed_fields),
                cmocka_unit_test(test_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
