/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of agent/users.h and agent/ntp.h: the sudoers path and key merging, the
 * timesyncd drop-in, and a whole users job run with the system's shadow tools against a
 * scratch host root (useradd --prefix): what it creates, that running it again changes
 * nothing, and that a sudo rule visudo refuses changes nothing at all. The job part needs root
 * (shadow's tools) and is skipped otherwise.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fileio.h"
#include "ntp.h"
#include "users.h"
#include "yamlio.h"

static Obj *yaml(const char *text) {
        Obj *o = NULL;
        YamlError ye;
        if (yaml_parse_one(text, strlen(text), &o, &ye) < 0)
                fail_msg("test YAML: %u:%u: %s", ye.line, ye.column, ye.message);
        return o;
}

static void test_sudoers_path(void **state) {
        (void)state;
        _cleanup_free_ char *a = users_sudoers_path("ops");
        _cleanup_free_ char *b = users_sudoers_path("first.last");
        assert_string_equal(a, "/etc/sudoers.d/ops");
        assert_string_equal(b, "/etc/sudoers.d/first_last");
}

static void test_merge_keys(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *keys = yaml("[ssh-ed25519 AAAA1 a, ssh-rsa BBBB2 b, ssh-ed25519 "
                                              "AAAA1 a, '']");
        _cleanup_free_ char *fresh = users_merge_keys(NULL, keys);
        assert_string_equal(fresh, "ssh-ed25519 AAAA1 a\nssh-rsa BBBB2 b\n");
        /* Keys already there stay where they are; only new ones are added, once. */
        _cleanup_free_ char *merged = users_merge_keys("# mine\nssh-rsa BBBB2 b", keys);
        assert_string_equal(merged, "# mine\nssh-rsa BBBB2 b\nssh-ed25519 AAAA1 a\n");
        _cleanup_free_ char *again = users_merge_keys(merged, keys);
        assert_string_equal(again, merged);
}

static void test_ntp_dropin(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *ntp = yaml("servers: [ntp1.example.org, 10.0.0.1]");
        _cleanup_free_ char *text = ntp_dropin_text(ntp, "m-1");
        assert_non_null(strstr(text, "[Time]\nNTP=ntp1.example.org 10.0.0.1\n"));
        assert_non_null(strstr(text, "machine m-1's KubeadmConfig"));
        _cleanup_(obj_freep) Obj *none = yaml("{}");
        _cleanup_free_ char *empty = ntp_dropin_text(none, "m-1");
        assert_non_null(strstr(empty, "[Time]\n"));
        assert_null(strstr(empty, "NTP="));
}

/* ---- a whole job against a scratch root ---- */

typedef struct Result {
        bool finished;
        int code;
        char message[512];
} Result;

static void on_done(int code, const char *message, const char *tail, void *userdata) {
        Result *res = userdata;
        (void)tail;
        res->finished = true;
        res->code = code;
        snprintf(res->message, sizeof(res->message), "%s", strempty(message));
}

static Result run_job(const char *root, const char *users_yaml) {
        AgentConfig c = {.host_root = (char *)root, .command_timeout_usec = 30 * USEC_PER_SEC};
        char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        _cleanup_(obj_freep) Obj *users = yaml(users_yaml);
        sd_event *e = NULL;
        assert_int_equal(sd_event_new(&e), 0);
        Result res = {0};
        UsersJob *j = NULL;
        char err[512] = "";
        int r = users_job_start(e, &c, users, env, on_done, &res, &j, err, sizeof(err));
        if (r < 0)
                fail_msg("users_job_start: %s", err);
        while (!res.finished)
                assert_true(sd_event_run(e, 30 * USEC_PER_SEC) >= 0);
        users_job_free(j);
        sd_event_unref(e);
        return res;
}

static char *slurp(const char *root, const char *rel) {
        _cleanup_free_ char *p = strjoin(root, rel);
        char *text = NULL;
        if (read_file_bounded(p, 1 << 20, &text, NULL) < 0)
                return NULL;
        return text;
}

static void seed(const char *root) {
        static const struct {
                const char *rel, *text;
                mode_t mode;
        } files[] = {
                {"/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0644},
                {"/etc/group", "root:x:0:\n", 0644},
                {"/etc/shadow", "root:*:19000:0:99999:7:::\n", 0640},
                {"/etc/gshadow", "root:*::\n", 0640},
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = strjoin(root, files[i].rel);
                assert_int_equal(mkdir_parents(p, 0755), 0);
                assert_int_equal(
                        write_file_atomic(p, files[i].text, strlen(files[i].text), files[i].mode),
                        0);
        }
}

static const char users_yaml[] =
        "- name: ops\n"
        "  gecos: Ops Team\n"
        "  groups: [adm, ops-team]\n"
        "  shell: /bin/sh\n"
        "  passwd: $6$8Zq2rS1x$L2oI0yL0pT2Jw7cVnGm0qL0mYvY7b4sQ3wX1c9q8v6r5t4u3w2e1\n"
        "  lockPassword: true\n"
        "  sudo: ALL=(ALL) NOPASSWD:ALL\n"
        "  sshAuthorizedKeys: [ssh-ed25519 AAAAkey1 ops@a, ssh-ed25519 AAAAkey2 ops@b]\n"
        "- name: audit\n"
        "  primaryGroup: auditors\n"
        "  inactive: true\n"
        "  lockPassword: false\n";

static void test_job(void **state) {
        (void)state;
        if (geteuid() != 0)
                skip();
        const char *tmpdir = getenv("TMPDIR");
        _cleanup_free_ char *tmpl = strjoin(tmpdir ? tmpdir : "/tmp", "/anvil-users-XXXXXX");
        assert_non_null(mkdtemp(tmpl));
        seed(tmpl);

        Result res = run_job(tmpl, users_yaml);
        if (res.code != 0)
                fail_msg("users job failed (%d): %s", res.code, res.message);
        _cleanup_free_ char *passwd = slurp(tmpl, "/etc/passwd");
        _cleanup_free_ char *group = slurp(tmpl, "/etc/group");
        _cleanup_free_ char *shadow = slurp(tmpl, "/etc/shadow");
        assert_non_null(strstr(passwd, ":Ops Team:/home/ops:/bin/sh\n"));
        assert_non_null(strstr(group, "\nadm:x:"));
        assert_non_null(strstr(group, "\nops-team:x:"));
        assert_non_null(strstr(group, "\nauditors:x:"));
        /* locked: "!" before the hash; audit: unlocked (no password), expired (field 8 = 1) */
        assert_non_null(strstr(shadow, "\nops:!$6$8Zq2rS1x$"));
        assert_non_null(strstr(shadow, ":1:\n"));
        assert_non_null(strstr(shadow, "\naudit:!:"));
        _cleanup_free_ char *rule = slurp(tmpl, "/etc/sudoers.d/ops");
        assert_non_null(rule);
        assert_non_null(strstr(rule, "\nops ALL=(ALL) NOPASSWD:ALL\n"));
        _cleanup_free_ char *rule_path = strjoin(tmpl, "/etc/sudoers.d/ops");
        _cleanup_free_ char *ssh_path = strjoin(tmpl, "/home/ops/.ssh");
        _cleanup_free_ char *keys_path = strjoin(tmpl, "/home/ops/.ssh/authorized_keys");
        struct stat st, home;
        assert_int_equal(stat(rule_path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0440);
        assert_int_equal(st.st_uid, 0);
        _cleanup_free_ char *home_path = strjoin(tmpl, "/home/ops");
        assert_int_equal(stat(home_path, &home), 0);
        assert_int_equal(stat(ssh_path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(st.st_uid, home.st_uid);
        assert_int_equal(stat(keys_path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, home.st_uid);
        assert_int_equal(st.st_gid, home.st_gid);
        _cleanup_free_ char *keys = slurp(tmpl, "/home/ops/.ssh/authorized_keys");
        assert_string_equal(keys, "ssh-ed25519 AAAAkey1 ops@a\nssh-ed25519 AAAAkey2 ops@b\n");

        /* Again (a step resumed after a crash): nothing fails, nothing doubles. */
        res = run_job(tmpl, users_yaml);
        if (res.code != 0)
                fail_msg("second run failed (%d): %s", res.code, res.message);
        _cleanup_free_ char *passwd2 = slurp(tmpl, "/etc/passwd");
        _cleanup_free_ char *keys2 = slurp(tmpl, "/home/ops/.ssh/authorized_keys");
        assert_string_equal(passwd2, passwd);
        assert_string_equal(keys2, keys);

        /* A rule visudo refuses: the step fails naming it, and changes nothing. */
        if (access("/usr/sbin/visudo", X_OK) == 0) {
                res = run_job(tmpl, "- name: bob\n  sudo: ALL=(ALL NOPASSWD ALL\n");
                assert_int_equal(res.code, 1);
                assert_non_null(strstr(res.message, "visudo -cf"));
                _cleanup_free_ char *passwd3 = slurp(tmpl, "/etc/passwd");
                assert_null(strstr(passwd3, "bob:"));
                _cleanup_free_ char *tmp_rule = strjoin(tmpl, "/etc/sudoers.d/.anvil-bob.new");
                _cleanup_free_ char *bob_rule = strjoin(tmpl, "/etc/sudoers.d/bob");
                assert_int_not_equal(access(tmp_rule, F_OK), 0);
                assert_int_not_equal(access(bob_rule, F_OK), 0);
        }
        _cleanup_free_ char *rm = asprintf_safe("rm -rf '%s'", tmpl);
        assert_int_equal(system(rm), 0);
}

int main(void) {
        /* sd-event's child sources need SIGCHLD blocked. */
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sudoers_path),
                cmocka_unit_test(test_merge_keys),
                cmocka_unit_test(test_ntp_dropin),
                cmocka_unit_test(test_job),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
