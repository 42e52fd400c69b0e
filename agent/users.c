/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The users step (see users.h): the command list is made from the bundle's users and the
 * host's account files when the step starts, run one command at a time with exec.c, and
 * followed by the installation of the checked sudo rules and the SSH keys. Invariant: nothing
 * is installed in /etc/sudoers.d before visudo accepted it, and temporary rule files never
 * outlive the job.
 */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "exec.h"
#include "fileio.h"
#include "log.h"
#include "users.h"

#define DEFAULT_PATH  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define KEYS_FILE_MAX (1U << 20)
#define SUDOERS_D     "/etc/sudoers.d"

typedef struct Command {
        char **argv;
        char *shown; /* what the journal says runs: the argv without the password hash */
} Command;

struct UsersJob {
        sd_event *event;
        const AgentConfig *c; /* borrowed: the agent's, which outlives the job */
        char **env;
        Obj *users;
        Command *cmds;
        size_t n_cmds, next;
        char **sudo_tmp;   /* checked (or to be checked) rules, host paths */
        char **sudo_final; /* where each one goes, host paths */
        char **sudo_shown; /* the same as seen on the host */
        Exec *exec;
        sd_event_source *kick; /* starts the job from the event loop */
        UsersDone done;
        void *userdata;
};

static void remove_tmp_rules(UsersJob *j) {
        for (size_t i = 0; j->sudo_tmp && j->sudo_tmp[i]; i++)
                (void)unlink(j->sudo_tmp[i]);
        j->sudo_tmp = strv_free(j->sudo_tmp);
}

UsersJob *users_job_free(UsersJob *j) {
        if (!j)
                return NULL;
        j->exec = exec_free(j->exec);
        remove_tmp_rules(j);
        sd_event_source_disable_unref(j->kick);
        for (size_t i = 0; i < j->n_cmds; i++) {
                strv_free(j->cmds[i].argv);
                free(j->cmds[i].shown);
        }
        free(j->cmds);
        strv_free(j->sudo_final);
        strv_free(j->sudo_shown);
        strv_free(j->env);
        obj_free(j->users);
        sd_event_unref(j->event);
        free(j);
        return NULL;
}

char *users_sudoers_path(const char *name) {
        char *p = strjoin(SUDOERS_D "/", name);
        for (char *s = p ? p + strlen(SUDOERS_D "/") : NULL; s && *s; s++)
                if (*s == '.')
                        *s = '_';
        return p;
}

/* Is line (without its newline) one of text's lines? */
static bool has_line(const char *text, size_t n, const char *line) {
        size_t len = strlen(line);
        for (const char *p = text; p && p < text + n;) {
                const char *nl = memchr(p, '\n', (size_t)(text + n - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(text + n - p);
                if (l == len && memcmp(p, line, len) == 0)
                        return true;
                if (!nl)
                        break;
                p = nl + 1;
        }
        return false;
}

char *users_merge_keys(const char *existing, const Obj *keys) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        if (!isempty(existing)) {
                fputs(existing, f);
                if (existing[strlen(existing) - 1] != '\n')
                        fputc('\n', f);
        }
        OBJ_LIST_FOREACH(k, keys, i) {
                const char *key = obj_str(k);
                if (isempty(key) || fflush(f) != 0 || has_line(out, len, key))
                        continue;
                fprintf(f, "%s\n", key);
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

/* The first executable name in the PATH of env (or the usual one). */
static char *find_program(char **env, const char *name) {
        const char *path = DEFAULT_PATH;
        for (size_t i = 0; env && env[i]; i++)
                if (startswith(env[i], "PATH="))
                        path = env[i] + 5;
        for (const char *p = path; *p;) {
                size_t len = strcspn(p, ":");
                _cleanup_free_ char *cand = asprintf_safe("%.*s/%s", (int)len, p, name);
                if (len > 0 && cand && access(cand, X_OK) == 0)
                        return TAKE_PTR(cand);
                p += len;
                if (*p)
                        p++;
        }
        return NULL;
}

/* A user of the host: with host root "/" as NSS sees it (as useradd does), else from the
 * root's /etc/passwd. -ENOENT when there is none. */
static int lookup_user(const AgentConfig *c, const char *name, uid_t *ret_uid, gid_t *ret_gid,
                       char **ret_home) {
        struct passwd *pw = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        if (streq(c->host_root, "/"))
                pw = getpwnam(name);
        else {
                _cleanup_free_ char *path = agent_config_host_path(c, "/etc/passwd");
                if (!path)
                        return -ENOMEM;
                f = fopen(path, "re");
                if (!f)
                        return negative_errno();
                while ((pw = fgetpwent(f)) && !streq(pw->pw_name, name))
                        ;
        }
        if (!pw)
                return -ENOENT;
        if (ret_home && !(*ret_home = strdup(pw->pw_dir)))
                return -ENOMEM;
        if (ret_uid)
                *ret_uid = pw->pw_uid;
        if (ret_gid)
                *ret_gid = pw->pw_gid;
        return 0;
}

static bool group_exists(const AgentConfig *c, const char *name) {
        if (streq(c->host_root, "/"))
                return getgrnam(name) != NULL;
        _cleanup_free_ char *path = agent_config_host_path(c, "/etc/group");
        _cleanup_fclose_ FILE *f = path ? fopen(path, "re") : NULL;
        struct group *gr;
        while (f && (gr = fgetgrent(f)))
                if (streq(gr->gr_name, name))
                        return true;
        return false;
}

/* words joined by sep. NULL on OOM. */
static char *join(char *const *words, const char *sep) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; words && words[i]; i++)
                fprintf(f, "%s%s", i ? sep : "", words[i]);
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

/* Appends a command; takes argv (NULL: out of memory). shown defaults to argv joined by
 * spaces. */
static int add_command(UsersJob *j, char **argv, const char *shown) {
        _cleanup_strv_free_ char **a = argv;
        _cleanup_free_ char *s = a ? (shown ? strdup(shown) : join(a, " ")) : NULL;
        Command *n = s ? realloc(j->cmds, (j->n_cmds + 1) * sizeof(Command)) : NULL;
        if (!n)
                return -ENOMEM;
        j->cmds = n;
        j->cmds[j->n_cmds++] = (Command){.argv = TAKE_PTR(a), .shown = TAKE_PTR(s)};
        return 0;
}

/* [program, --prefix ROOT] (shadow's tools, with prefix: no --prefix when the host root is
 * "/"), then the NULL-terminated words. NULL on OOM. */
static char **command_argv(UsersJob *j, bool prefix, const char *program, ...) _sentinel_;
static char **command_argv(UsersJob *j, bool prefix, const char *program, ...) {
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_extend(&argv, program) < 0)
                return NULL;
        if (prefix && !streq(j->c->host_root, "/") &&
            (strv_extend(&argv, "--prefix") < 0 || strv_extend(&argv, j->c->host_root) < 0))
                return NULL;
        va_list ap;
        va_start(ap, program);
        for (const char *w; (w = va_arg(ap, const char *));)
                if (strv_extend(&argv, w) < 0) {
                        va_end(ap);
                        return NULL;
                }
        va_end(ap);
        return TAKE_PTR(argv);
}
#define shadow_argv(j, program, ...) command_argv((j), true, (program), __VA_ARGS__)

/* Step 1: every rule in a temporary file, and a visudo -cf of it when visudo exists. */
static int plan_sudo(UsersJob *j, const char *visudo, char *err, size_t errsz) {
        OBJ_LIST_FOREACH(u, j->users, i) {
                const char *name = obj_get_str(u, "name"), *rule = obj_get_str(u, "sudo");
                if (!rule)
                        continue;
                _cleanup_free_ char *shown = users_sudoers_path(name);
                _cleanup_free_ char *tmp_rel = asprintf_safe(SUDOERS_D "/.anvil-%s.new", name);
                _cleanup_free_ char *final = shown ? agent_config_host_path(j->c, shown) : NULL;
                _cleanup_free_ char *tmp = tmp_rel ? agent_config_host_path(j->c, tmp_rel) : NULL;
                _cleanup_free_ char *text = asprintf_safe(
                        "# Written by anvil-agent: the sudo rule of user %s in the machine's "
                        "KubeadmConfig.\n%s %s\n",
                        name, name, rule);
                if (!final || !tmp || !text)
                        return -ENOMEM;
                int r;
                _cleanup_free_ char *dir = agent_config_host_path(j->c, SUDOERS_D);
                if (!dir)
                        return -ENOMEM;
                if ((r = mkdir_p(dir, 0755)) < 0 ||
                    (r = write_file_atomic(tmp, text, strlen(text), 0440)) < 0) {
                        snprintf(err, errsz, "users[%zu].sudo: cannot write %s: %s", i, tmp_rel,
                                 strerror(-r));
                        return r;
                }
                if (strv_extend(&j->sudo_tmp, tmp) < 0 || strv_extend(&j->sudo_final, final) < 0 ||
                    strv_extend(&j->sudo_shown, shown) < 0)
                        return -ENOMEM;
                if (!visudo) {
                        log_warning("visudo is not installed here (no sudo): the sudo rule of %s "
                                    "goes to %s unchecked.",
                                    name, shown);
                        continue;
                }
                if ((r = add_command(j, command_argv(j, false, visudo, "-cf", tmp, NULL), NULL)) <
                    0)
                        return r;
        }
        return 0;
}

/* Steps 2 to 4 for one user. made_groups and seen_users carry what earlier commands of this
 * job create, which the account files do not show yet. */
static int plan_user(UsersJob *j, const Obj *u, const char *useradd, const char *usermod,
                     const char *groupadd, char ***made_groups, char ***seen_users) {
        const char *name = obj_get_str(u, "name");
        const char *primary = obj_get_str(u, "primaryGroup");
        _cleanup_strv_free_ char **groups = NULL;
        int r;
        OBJ_LIST_FOREACH(g, obj_map_get(u, "groups"), i) {
                if (obj_str(g) && (r = strv_extend(&groups, obj_str(g))) < 0)
                        return r;
        }
        for (size_t i = 0; i <= strv_length(groups); i++) {
                const char *g = i < strv_length(groups) ? groups[i] : primary;
                if (!g || strv_contains(*made_groups, g) || group_exists(j->c, g))
                        continue;
                if ((r = add_command(j, shadow_argv(j, groupadd, g, NULL), NULL)) < 0 ||
                    (r = strv_extend(made_groups, g)) < 0)
                        return r;
        }
        _cleanup_free_ char *glist = groups ? join(groups, ",") : NULL;
        if (groups && !glist)
                return -ENOMEM;
        bool exists =
                strv_contains(*seen_users, name) || lookup_user(j->c, name, NULL, NULL, NULL) == 0;
        if (!exists) {
                _cleanup_strv_free_ char **argv = shadow_argv(j, useradd, "--create-home", NULL);
                static const struct {
                        const char *field, *flag;
                } opts[] = {{"gecos", "--comment"},
                            {"homeDir", "--home-dir"},
                            {"shell", "--shell"},
                            {"primaryGroup", "--gid"}};
                if (!argv)
                        return -ENOMEM;
                for (size_t i = 0; i < ELEMENTSOF(opts); i++) {
                        const char *v = obj_get_str(u, opts[i].field);
                        if (v &&
                            (strv_extend(&argv, opts[i].flag) < 0 || strv_extend(&argv, v) < 0))
                                return -ENOMEM;
                }
                if (glist && (strv_extend(&argv, "--groups") < 0 || strv_extend(&argv, glist) < 0))
                        return -ENOMEM;
                if (strv_extend(&argv, name) < 0)
                        return -ENOMEM;
                if ((r = add_command(j, TAKE_PTR(argv), NULL)) < 0)
                        return r;
        } else {
                log_info("User %s exists: adjusting it (groups, password, lock, sudo, keys), "
                         "leaving its other attributes alone.",
                         name);
                if (glist &&
                    (r = add_command(
                             j, shadow_argv(j, usermod, "--append", "--groups", glist, name, NULL),
                             NULL)) < 0)
                        return r;
        }
        if ((r = strv_extend(seen_users, name)) < 0)
                return r;
        const char *hash = obj_get_str(u, "passwd");
        if (hash) {
                _cleanup_free_ char *shown =
                        asprintf_safe("%s%s%s --password <redacted> %s", usermod,
                                      streq(j->c->host_root, "/") ? "" : " --prefix ",
                                      streq(j->c->host_root, "/") ? "" : j->c->host_root, name);
                if (!shown ||
                    (r = add_command(j, shadow_argv(j, usermod, "--password", hash, name, NULL),
                                     shown)) < 0)
                        return shown ? r : -ENOMEM;
        }
        bool lock = obj_get_bool(u, "lockPassword", true);
        bool inactive = obj_get_bool(u, "inactive", false);
        if (lock || inactive) {
                /* usermod --lock adds "!" only when it is not there yet: again is harmless. */
                char **argv = shadow_argv(j, usermod, NULL);
                if (!argv || (lock && strv_extend(&argv, "--lock") < 0) ||
                    (inactive &&
                     (strv_extend(&argv, "--expiredate") < 0 || strv_extend(&argv, "1") < 0)) ||
                    strv_extend(&argv, name) < 0) {
                        strv_free(argv);
                        return -ENOMEM;
                }
                if ((r = add_command(j, argv, NULL)) < 0)
                        return r;
        }
        return 0;
}

static int plan(UsersJob *j, char *err, size_t errsz) {
        _cleanup_free_ char *useradd = find_program(j->env, "useradd");
        _cleanup_free_ char *usermod = find_program(j->env, "usermod");
        _cleanup_free_ char *groupadd = find_program(j->env, "groupadd");
        _cleanup_free_ char *visudo = find_program(j->env, "visudo");
        if (!useradd || !usermod || !groupadd) {
                snprintf(err, errsz,
                         "%s is not in PATH (install the passwd package, or set PATH in the "
                         "agent's environment)",
                         !useradd   ? "useradd"
                         : !usermod ? "usermod"
                                    : "groupadd");
                return -ENOENT;
        }
        int r = plan_sudo(j, visudo, err, errsz);
        if (r < 0) {
                if (!*err)
                        snprintf(err, errsz, "%s", strerror(-r));
                return r;
        }
        _cleanup_strv_free_ char **made_groups = NULL, **seen_users = NULL;
        OBJ_LIST_FOREACH(u, j->users, i) {
                r = plan_user(j, u, useradd, usermod, groupadd, &made_groups, &seen_users);
                if (r < 0) {
                        snprintf(err, errsz, "users[%zu]: %s", i, strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* Step 5, keys: ~/.ssh and authorized_keys through a directory fd opened without following
 * symlinks, so an existing user's ~/.ssh cannot point the writes elsewhere. */
static int add_keys(UsersJob *j, const char *name, const Obj *keys, char *err, size_t errsz) {
        uid_t uid;
        gid_t gid;
        _cleanup_free_ char *home = NULL;
        int r = lookup_user(j->c, name, &uid, &gid, &home);
        if (r < 0) {
                snprintf(err, errsz, "user %s: not found in /etc/passwd: %s", name, strerror(-r));
                return r;
        }
        _cleanup_free_ char *rel = strjoin(home, "/.ssh");
        _cleanup_free_ char *dir = rel ? agent_config_host_path(j->c, rel) : NULL;
        if (!dir)
                return -ENOMEM;
        if ((r = mkdir_parents(dir, 0755)) < 0 || (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
                r = r < 0 ? r : negative_errno();
                snprintf(err, errsz, "user %s: cannot create %s: %s", name, rel, strerror(-r));
                return r;
        }
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || fchown(dfd, uid, gid) < 0 || fchmod(dfd, 0700) < 0) {
                r = negative_errno();
                snprintf(err, errsz, "user %s: %s is not a directory of its own: %s", name, rel,
                         strerror(-r));
                return r;
        }
        _cleanup_free_ char *old = NULL;
        _cleanup_close_ int ofd =
                openat(dfd, "authorized_keys", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (ofd >= 0) {
                _cleanup_fclose_ FILE *f = fdopen(TAKE_FD(ofd), "r");
                struct stat st;
                size_t n = 0;
                if (!f || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
                    (size_t)st.st_size > KEYS_FILE_MAX || !(old = calloc(1, st.st_size + 1)) ||
                    (n = fread(old, 1, (size_t)st.st_size, f)) != (size_t)st.st_size) {
                        snprintf(err, errsz,
                                 "user %s: %s/authorized_keys is not a regular file "
                                 "of at most 1 MiB",
                                 name, rel);
                        return -EINVAL;
                }
        } else if (errno != ENOENT) {
                r = negative_errno();
                snprintf(err, errsz, "user %s: %s/authorized_keys: %s", name, rel, strerror(-r));
                return r;
        }
        _cleanup_free_ char *text = users_merge_keys(old, keys);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        _cleanup_close_ int fd =
                openat(dfd, ".authorized_keys.anvil-new",
                       O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || (size_t)write(fd, text, len) != len || fchown(fd, uid, gid) < 0 ||
            fchmod(fd, 0600) < 0 || fsync(fd) < 0 ||
            renameat(dfd, ".authorized_keys.anvil-new", dfd, "authorized_keys") < 0 ||
            fsync(dfd) < 0) {
                r = negative_errno();
                (void)unlinkat(dfd, ".authorized_keys.anvil-new", 0);
                snprintf(err, errsz, "user %s: cannot write %s/authorized_keys: %s", name, rel,
                         strerror(-r));
                return r;
        }
        size_t lines = 0;
        for (const char *p = text; *p; p++)
                lines += *p == '\n';
        log_info("Wrote %s/authorized_keys of %s: %zu keys given, %zu lines in the file.", rel,
                 name, obj_len(keys), lines);
        return 0;
}

/* Step 5: what the commands prepared, installed. */
static int install(UsersJob *j, char *err, size_t errsz) {
        for (size_t i = 0; j->sudo_tmp && j->sudo_tmp[i]; i++) {
                if (rename(j->sudo_tmp[i], j->sudo_final[i]) < 0) {
                        int r = negative_errno();
                        snprintf(err, errsz, "cannot install %s: %s", j->sudo_shown[i],
                                 strerror(-r));
                        return r;
                }
                (void)fsync_directory_of(j->sudo_final[i]);
                log_info("Installed the sudo rule %s.", j->sudo_shown[i]);
        }
        j->sudo_tmp = strv_free(j->sudo_tmp);
        OBJ_LIST_FOREACH(u, j->users, i) {
                const Obj *keys = obj_map_get(u, "sshAuthorizedKeys");
                int r = obj_len(keys) ? add_keys(j, obj_get_str(u, "name"), keys, err, errsz) : 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Ends the job with a failure: temporary rules go, done is told (and may free j). */
static void fail(UsersJob *j, int code, const char *tail, const char *fmt, ...) _printf_(4, 5);
static void fail(UsersJob *j, int code, const char *tail, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        remove_tmp_rules(j);
        j->done(code, msg, tail, j->userdata);
}

static void on_exec_done(Exec *x, int code, const char *tail, void *userdata);

static void advance(UsersJob *j) {
        if (j->next < j->n_cmds) {
                Command *cmd = &j->cmds[j->next];
                ExecSpec spec = {.argv = cmd->argv,
                                 .envp = j->env,
                                 .timeout_usec = j->c->command_timeout_usec};
                log_info("Running: %s", cmd->shown);
                int r = exec_start(j->event, &spec, on_exec_done, j, &j->exec);
                if (r < 0)
                        fail(j, -1, NULL, "%s could not start: %s", cmd->shown, strerror(-r));
                return;
        }
        char err[512] = "";
        int r = install(j, err, sizeof(err));
        if (r < 0) {
                fail(j, -1, NULL, "%s", *err ? err : strerror(-r));
                return;
        }
        j->done(0, NULL, NULL, j->userdata);
}

static void on_exec_done(Exec *x, int code, const char *tail, void *userdata) {
        UsersJob *j = userdata;
        (void)x;
        /* tail lives in the Exec: keep a copy before it goes. */
        _cleanup_free_ char *t = tail ? strdup(tail) : NULL;
        j->exec = exec_free(j->exec);
        if (code != 0) {
                const char *shown = j->cmds[j->next].shown;
                if (code == -ETIMEDOUT)
                        fail(j, -1, t, "%s timed out", shown);
                else
                        fail(j, code, t, "%s exited with status %d", shown, code);
                return;
        }
        j->next++;
        advance(j);
}

static int on_kick(sd_event_source *s, void *userdata) {
        UsersJob *j = userdata;
        (void)s;
        advance(j);
        return 0;
}

int users_job_start(sd_event *e, const AgentConfig *c, const Obj *users, char **env, UsersDone done,
                    void *userdata, UsersJob **ret, char *err, size_t errsz) {
        _cleanup_(users_job_freep) UsersJob *j = calloc(1, sizeof(UsersJob));
        if (!j)
                return -ENOMEM;
        j->event = sd_event_ref(e);
        j->c = c;
        j->done = done;
        j->userdata = userdata;
        j->users = obj_dup(users);
        for (size_t i = 0; env && env[i]; i++)
                if (strv_extend(&j->env, env[i]) < 0)
                        return -ENOMEM;
        if (!j->users)
                return -ENOMEM;
        int r = plan(j, err, errsz);
        if (r < 0)
                return r;
        r = sd_event_add_defer(e, &j->kick, on_kick, j);
        if (r < 0) {
                snprintf(err, errsz, "cannot schedule the step: %s", strerror(-r));
                return r;
        }
        log_info("Applying %zu users: %zu commands.", obj_len(users), j->n_cmds);
        *ret = TAKE_PTR(j);
        return 0;
}
