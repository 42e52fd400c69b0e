/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/bundle.h: the bootstrap bundle an agent receives (strict parsing: the
 * agent writes files and runs commands from it) and the placeholder substitution it applies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bundle.h"
#include "macro.h"
#include "obj.h"

static const char valid[] = "apiVersion: anvil.dev/v1alpha1\n"
                            "kind: BootstrapBundle\n"
                            "machine: prod-md-0-x7k2p\n"
                            "cluster: prod\n"
                            "role: worker\n"
                            "version: v1.30.2\n"
                            "kubeadm:\n"
                            "  command: join\n"
                            "  configPath: /run/kubeadm/kubeadm-join-config.yaml\n"
                            "  config: |\n"
                            "    apiVersion: kubeadm.k8s.io/v1beta3\n"
                            "    kind: JoinConfiguration\n"
                            "    nodeRegistration:\n"
                            "      name: '{{ ds.meta_data.local_hostname }}'\n"
                            "  ignorePreflightErrors: [Swap]\n"
                            "files:\n"
                            "  - path: /etc/kubernetes/pki/ca.crt\n"
                            "    content: \"-----BEGIN CERTIFICATE-----\\n\"\n"
                            "    permissions: \"0644\"\n"
                            "    owner: root:root\n"
                            "  - path: /etc/motd\n"
                            "    content: aGVsbG8=\n"
                            "    encoding: base64\n"
                            "    append: true\n"
                            "preKubeadmCommands: [\"swapoff -a\"]\n"
                            "postKubeadmCommands: []\n";

/* The valid bundle with one piece of text replaced. */
static char *replace(const char *old, const char *new) {
        const char *at = strstr(valid, old);
        if (!at)
                fail_msg("test text lacks \"%s\"", old);
        return asprintf_safe("%.*s%s%s", (int)(at - valid), valid, new, at + strlen(old));
}

static void expect_refused(const char *text, const char *needle) {
        char err[256] = "";
        Obj *o = NULL;
        int r = bundle_parse(text, strlen(text), &o, err, sizeof(err));
        if (r != -EBADMSG) {
                obj_free(o);
                fail_msg("bundle accepted (r=%d), expected an error naming \"%s\"", r, needle);
        }
        assert_null(o);
        if (!strstr(err, needle))
                fail_msg("error \"%s\" does not name \"%s\"", err, needle);
}

static void test_parse_valid(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *o = NULL;
        char err[256] = "";
        assert_int_equal(bundle_parse(valid, strlen(valid), &o, err, sizeof(err)), 0);
        assert_string_equal(obj_get_str(o, "machine"), "prod-md-0-x7k2p");
        assert_string_equal(obj_get_str(o, "role"), "worker");
        assert_string_equal(obj_get_str(o, "kubeadm.command"), "join");
        assert_non_null(strstr(obj_get_str(o, "kubeadm.config"), "JoinConfiguration"));
        assert_int_equal(obj_len(obj_get(o, "files")), 2);
        assert_string_equal(obj_get_str(o, "files[1].encoding"), "base64");
        assert_true(obj_get_bool(o, "files[1].append", false));
        /* Minimal: only the required fields. */
        const char *minimal = "apiVersion: anvil.dev/v1alpha1\nkind: BootstrapBundle\n"
                              "machine: m\ncluster: c\nrole: control-plane\n"
                              "kubeadm: {command: init, configPath: /run/k.yaml, config: x}\n";
        _cleanup_(obj_freep) Obj *m = NULL;
        assert_int_equal(bundle_parse(minimal, strlen(minimal), &m, err, sizeof(err)), 0);
        assert_string_equal(obj_get_str(m, "role"), "control-plane");
}

static void test_missing_fields(void **state) {
        (void)state;
        const struct {
                const char *old, *new, *field;
        } cases[] = {
                {"machine: prod-md-0-x7k2p\n", "", "machine"},
                {"cluster: prod\n", "", "cluster"},
                {"role: worker\n", "", "role"},
                {"kind: BootstrapBundle\n", "", "kind"},
                {"apiVersion: anvil.dev/v1alpha1\n", "", "apiVersion"},
                {"  command: join\n", "", "kubeadm.command"},
                {"  configPath: /run/kubeadm/kubeadm-join-config.yaml\n", "", "kubeadm.configPath"},
                {"  - path: /etc/motd\n", "  - owner: x\n", "files[1].path"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = replace(cases[i].old, cases[i].new);
                expect_refused(text, cases[i].field);
        }
        /* The whole kubeadm section. */
        const char *no_kubeadm = "apiVersion: anvil.dev/v1alpha1\nkind: BootstrapBundle\n"
                                 "machine: m\ncluster: c\nrole: worker\n";
        expect_refused(no_kubeadm, "kubeadm: required field is missing");
        /* The error carries the line and column of the problem. */
        _cleanup_free_ char *text = replace("  - path: /etc/motd\n", "  - owner: x\n");
        char err[256];
        Obj *o = NULL;
        assert_int_equal(bundle_parse(text, strlen(text), &o, err, sizeof(err)), -EBADMSG);
        assert_true(startswith(err, "bundle:21:"));
}

static void test_wrong_types_and_values(void **state) {
        (void)state;
        _cleanup_free_ char *role = replace("role: worker", "role: etcd");
        expect_refused(role, "role");
        _cleanup_free_ char *cmd = replace("command: join", "command: reset");
        expect_refused(cmd, "kubeadm.command");
        _cleanup_free_ char *enc = replace("encoding: base64", "encoding: rot13");
        expect_refused(enc, "files[1].encoding");
        _cleanup_free_ char *typ = replace("append: true", "append: 'yes'");
        expect_refused(typ, "files[1].append");
        _cleanup_free_ char *unknown = replace("role: worker\n", "role: worker\nshell: rm -rf /\n");
        expect_refused(unknown, "shell");
        _cleanup_free_ char *cmds = replace("[\"swapoff -a\"]", "[[swapoff]]");
        expect_refused(cmds, "preKubeadmCommands[0]");
        _cleanup_free_ char *empty_path = replace("path: /etc/motd", "path: ''");
        expect_refused(empty_path, "files[1].path");
        /* Not YAML, or not one document. */
        expect_refused("kind: [\n", "bundle:");
        _cleanup_free_ char *two = asprintf_safe("%s---\na: 1\n", valid);
        expect_refused(two, "single document");
}

static void test_wrong_kind_and_version(void **state) {
        (void)state;
        _cleanup_free_ char *kind = replace("kind: BootstrapBundle", "kind: Secret");
        expect_refused(kind, "not a anvil.dev/v1alpha1 BootstrapBundle");
        _cleanup_free_ char *api = replace("apiVersion: anvil.dev/v1alpha1", "apiVersion: v1");
        expect_refused(api, "BootstrapBundle");
}

static void test_paths(void **state) {
        (void)state;
        const char *bad_files[] = {
                "etc/motd", "./etc/motd", "../etc/motd", "/etc/../root/.ssh/authorized_keys",
                "/..",      "/etc/..",    "motd",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_files); i++) {
                _cleanup_free_ char *repl = asprintf_safe("path: %s", bad_files[i]);
                _cleanup_free_ char *text = replace("path: /etc/motd", repl);
                expect_refused(text, "files[1].path: must be absolute without \"..\"");
        }
        /* ".." inside a name is not a parent reference. */
        const char *ok_files[] = {"/etc/motd..bak", "/etc/..hidden", "/a/b..c/d"};
        for (size_t i = 0; i < ELEMENTSOF(ok_files); i++) {
                _cleanup_free_ char *repl = asprintf_safe("path: %s", ok_files[i]);
                _cleanup_free_ char *text = replace("path: /etc/motd", repl);
                _cleanup_(obj_freep) Obj *o = NULL;
                char err[256];
                if (bundle_parse(text, strlen(text), &o, err, sizeof(err)) < 0)
                        fail_msg("%s refused: %s", ok_files[i], err);
        }
        const char *bad_config[] = {"run/kubeadm.yaml", "/run/../etc/kubeadm.yaml", "/run/..",
                                    "kubeadm.yaml"};
        for (size_t i = 0; i < ELEMENTSOF(bad_config); i++) {
                _cleanup_free_ char *repl = asprintf_safe("configPath: %s", bad_config[i]);
                _cleanup_free_ char *text =
                        replace("configPath: /run/kubeadm/kubeadm-join-config.yaml", repl);
                expect_refused(text, "kubeadm.configPath");
        }
}

/* users, ntp and kubeadm.verbosity: what the agent puts into useradd's argv, /etc/passwd,
 * sudoers and timesyncd.conf must be single, harmless values. */
static const char extras[] = "users:\n"
                             "  - name: ops\n"
                             "    gecos: Ops Team, Room 7\n"
                             "    groups: [adm, docker]\n"
                             "    homeDir: /srv/ops\n"
                             "    shell: /bin/bash\n"
                             "    primaryGroup: ops\n"
                             "    passwd: $6$salt$hash\n"
                             "    lockPassword: true\n"
                             "    sudo: ALL=(ALL) NOPASSWD:ALL\n"
                             "    sshAuthorizedKeys: [ssh-ed25519 AAAA ops@example]\n"
                             "  - name: first.last\n"
                             "    inactive: true\n"
                             "ntp:\n"
                             "  servers: [ntp1.example.org, 10.0.0.1]\n";

static void test_users_ntp_verbosity(void **state) {
        (void)state;
        _cleanup_free_ char *text = asprintf_safe("%s%s", valid, extras);
        _cleanup_free_ char *v = replace("  ignorePreflightErrors: [Swap]\n",
                                         "  ignorePreflightErrors: [Swap]\n  verbosity: 5\n");
        _cleanup_free_ char *with_v = asprintf_safe("%s%s", v, extras);
        _cleanup_(obj_freep) Obj *o = NULL;
        char err[256] = "";
        assert_int_equal(bundle_parse(with_v, strlen(with_v), &o, err, sizeof(err)), 0);
        assert_string_equal(obj_get_str(o, "users[0].groups[1]"), "docker");
        assert_string_equal(obj_get_str(o, "users[1].name"), "first.last");
        assert_string_equal(obj_get_str(o, "ntp.servers[1]"), "10.0.0.1");
        int64_t verbosity = 0;
        assert_true(obj_get_int(o, "kubeadm.verbosity", &verbosity));
        assert_int_equal(verbosity, 5);

        const struct {
                const char *old, *new, *field;
        } cases[] = {
                {"  - name: ops\n", "  - uid: 7\n", "users[0].uid"},
                {"  - name: ops\n", "  - inactive: false\n", "users[0].name: required"},
                {"name: ops", "name: -ops", "users[0].name: must be an account name"},
                {"name: ops", "name: 'o:ps'", "users[0].name"},
                {"name: first.last", "name: abcdefghijklmnopqrstuvwxyz0123456", "users[1].name"},
                {"gecos: Ops Team, Room 7", "gecos: 'a:b'", "users[0].gecos: must not contain"},
                {"homeDir: /srv/ops", "homeDir: srv/ops", "users[0].homeDir: must be an absolute"},
                {"shell: /bin/bash", "shell: /bin/../bash", "users[0].shell"},
                {"groups: [adm, docker]", "groups: [adm, 'doc ker']", "users[0].groups: item 1"},
                {"primaryGroup: ops", "primaryGroup: 'o ps'", "users[0].primaryGroup"},
                {"passwd: $6$salt$hash", "passwd: \"a\\nb\"", "users[0].passwd: must be one line"},
                {"sudo: ALL=(ALL) NOPASSWD:ALL", "sudo: \"ALL=(ALL) ALL\\nops ALL=(ALL) ALL\"",
                 "users[0].sudo: must be one line"},
                {"[ssh-ed25519 AAAA ops@example]", "[ok, \"a\\nb\"]",
                 "users[0].sshAuthorizedKeys: item 1: must be one line"},
                {"10.0.0.1]", "'10.0.0.1 x']", "ntp.servers: item 1"},
                {"lockPassword: true", "lockPassword: 'no'", "users[0].lockPassword"},
                {"ntp:\n", "ntp:\n  enabled: true\n", "ntp.enabled"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *at = strstr(text, cases[i].old);
                if (!at)
                        fail_msg("test text lacks \"%s\"", cases[i].old);
                _cleanup_free_ char *bad = asprintf_safe("%.*s%s%s", (int)(at - text), text,
                                                         cases[i].new, at + strlen(cases[i].old));
                expect_refused(bad, cases[i].field);
        }
        _cleanup_free_ char *v11 = replace("  ignorePreflightErrors: [Swap]\n",
                                           "  ignorePreflightErrors: [Swap]\n  verbosity: 11\n");
        expect_refused(v11, "kubeadm.verbosity");
}

static void test_account_checks(void **state) {
        (void)state;
        const char *names_ok[] = {"ops", "_svc", "first.last", "a-b_c", "A1"};
        for (size_t i = 0; i < ELEMENTSOF(names_ok); i++)
                assert_null(bundle_account_name_problem(names_ok[i]));
        const char *names_bad[] = {"",     "1ops", "-ops",
                                   ".ops", "o ps", "o:ps",
                                   "o/ps", "op$",  "abcdefghijklmnopqrstuvwxyz0123456"};
        for (size_t i = 0; i < ELEMENTSOF(names_bad); i++)
                if (!bundle_account_name_problem(names_bad[i]))
                        fail_msg("account name \"%s\" accepted", names_bad[i]);
        assert_null(bundle_group_list_problem("adm"));
        assert_null(bundle_group_list_problem("adm, docker,sudo"));
        assert_non_null(bundle_group_list_problem(""));
        assert_non_null(bundle_group_list_problem("adm,,docker"));
        assert_non_null(bundle_group_list_problem("adm,"));
        assert_non_null(bundle_group_list_problem("adm docker"));
        assert_null(bundle_ntp_server_problem("time.example.org"));
        assert_non_null(bundle_ntp_server_problem(""));
        assert_non_null(bundle_ntp_server_problem("a#b"));
        assert_null(bundle_account_path_problem("/home/ops"));
        assert_non_null(bundle_account_path_problem("/home/o:ps"));
}

static void test_size_limit(void **state) {
        (void)state;
        size_t n = BUNDLE_MAX_SIZE + 1;
        _cleanup_free_ char *big = malloc(n);
        assert_non_null(big);
        memset(big, ' ', n);
        char err[256] = "";
        Obj *o = NULL;
        assert_int_equal(bundle_parse(big, n, &o, err, sizeof(err)), -EMSGSIZE);
        assert_null(o);
        assert_non_null(strstr(err, "larger than"));
}

static void test_substitute(void **state) {
        (void)state;
        BundleVars v = {.hostname = "rack1-07",
                        .uuid = "4c4c4544-0042-3510-8058-b4c04f4e3232",
                        .machine = "prod-md-0-x7k2p"};
        struct {
                const char *in, *out;
        } cases[] = {
                {"name: '{{ ds.meta_data.local_hostname }}'", "name: 'rack1-07'"},
                {"name: {{ds.meta_data.local_hostname}}", "name: rack1-07"},
                {"{{   ds.meta_data.hostname  }}", "rack1-07"},
                {"id={{ ds.meta_data.uuid }}", "id=4c4c4544-0042-3510-8058-b4c04f4e3232"},
                {"{{ ds.meta_data.instance_id }}", "4c4c4544-0042-3510-8058-b4c04f4e3232"},
                {"providerID: {{ ds.meta_data.provider_id }}",
                 "providerID: anvil://4c4c4544-0042-3510-8058-b4c04f4e3232"},
                {"machine {{ ds.meta_data.name }}.", "machine prod-md-0-x7k2p."},
                {"{{ds.meta_data.local_hostname}}-{{ds.meta_data.name}}",
                 "rack1-07-prod-md-0-x7k2p"},
                /* Unknown placeholders and near misses stay as they are. */
                {"{{ ds.meta_data.region }}", "{{ ds.meta_data.region }}"},
                {"{{ DS.META_DATA.UUID }}", "{{ DS.META_DATA.UUID }}"},
                {"{{ ds.meta_data.uuid_x }}", "{{ ds.meta_data.uuid_x }}"},
                {"{{ ds.meta_data.local_hostname", "{{ ds.meta_data.local_hostname"},
                {"{{}}", "{{}}"},
                {"a {{ b }} c {{ ds.meta_data.name }}", "a {{ b }} c prod-md-0-x7k2p"},
                {"no placeholders\nat all\n", "no placeholders\nat all\n"},
                {"", ""},
                {"}} {{", "}} {{"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = bundle_substitute(cases[i].in, &v);
                assert_non_null(out);
                if (!streq(out, cases[i].out))
                        fail_msg("\"%s\" -> \"%s\", expected \"%s\"", cases[i].in, out,
                                 cases[i].out);
        }
        /* A value that is not known yet leaves the placeholder in place. */
        BundleVars none = {0};
        _cleanup_free_ char *out = bundle_substitute("{{ ds.meta_data.local_hostname }}", &none);
        assert_string_equal(out, "{{ ds.meta_data.local_hostname }}");
        _cleanup_free_ char *uuid = bundle_substitute("{{ ds.meta_data.uuid }}", &none);
        assert_string_equal(uuid, "{{ ds.meta_data.uuid }}");
}

static void test_substitute_provider_id_without_uuid(void **state) {
        (void)state;
        /* Without a UUID, {{ ds.meta_data.provider_id }} is left in place like every other
         * placeholder whose value is unknown, never turned into the invalid provider ID
         * "anvil://" (the kubelet would register with it and the Machine never match its
         * node). */
        BundleVars none = {.hostname = "h"};
        _cleanup_free_ char *pid = bundle_substitute("{{ ds.meta_data.provider_id }}", &none);
        assert_string_equal(pid, "{{ ds.meta_data.provider_id }}");
        BundleVars empty = {.hostname = "h", .uuid = ""};
        _cleanup_free_ char *pid2 = bundle_substitute("{{ ds.meta_data.provider_id }}", &empty);
        assert_string_equal(pid2, "{{ ds.meta_data.provider_id }}");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_missing_fields),
                cmocka_unit_test(test_wrong_types_and_values),
                cmocka_unit_test(test_wrong_kind_and_version),
                cmocka_unit_test(test_paths),
                cmocka_unit_test(test_users_ntp_verbosity),
                cmocka_unit_test(test_account_checks),
                cmocka_unit_test(test_size_limit),
                cmocka_unit_test(test_substitute),
                cmocka_unit_test(test_substitute_provider_id_without_uuid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
