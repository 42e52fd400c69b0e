/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's life: enroll (once), then for each desired generation the coordinator sends:
 * persist it, acknowledge it, build the plan (provision: files, users, ntp, pre-kubeadm
 * commands, kubeadm init|join, post-kubeadm commands, wait for the node; deprovision: kubeadm
 * reset, cleanup; upgrade in place: see upgrade.h) and run it step by step. Every step transition
 * is written to disk (fsync) before it is reported, so a restart resumes at the right step; a
 * kubeadm step interrupted half way is judged by the files kubeadm leaves (it never inits a host
 * twice).
 */
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "agent-metrics.h"
#include "agent.h"
#include "bundle.h"
#include "commands.h"
#include "config.h"
#include "exec.h"
#include "facts.h"
#include "fileio.h"
#include "health.h"
#include "hostid.h"
#include "json.h"
#include "keys.h"
#include "link.h"
#include "log.h"
#include "ntp.h"
#include "state.h"
#include "upgrade.h"
#include "users.h"
#include "wire.h"
#include "yamlio.h"

#define NODE_POLL_FAST_USEC (2 * USEC_PER_SEC)
#define NODE_WAIT_MAX_USEC  (600 * USEC_PER_SEC)
#define ENROLL_RETRY_MIN    (5 * USEC_PER_SEC)
#define ENROLL_RETRY_MAX    (300 * USEC_PER_SEC)
#define ENROLL_ANSWER_USEC  (30 * USEC_PER_SEC) /* no ENROLLED/REFUSED by then: ask again */
#define BYE_LINGER_MSEC     500                 /* how long stopping waits for BYE to leave */
#define RESYNC_SOON_USEC    (1 * USEC_PER_SEC)  /* a dropped message: HELLO again this soon */

typedef enum StepKind {
        STEP_FILES,
        STEP_COMMAND,
        STEP_KUBEADM,
        STEP_RESET,
        STEP_CLEANUP,
        STEP_WAIT_NODE,
        STEP_UPGRADE_CMD,
        STEP_KUBEADM_UPGRADE,
        STEP_RESTART_KUBELET,
        STEP_CHECK_VERSION,
        STEP_USERS,
        STEP_NTP,
} StepKind;

struct Agent {
        AgentConfig c;
        AgentConfigSource src; /* read again on SIGHUP */
        sd_event *event;
        KeyPair keys;
        KeyPair enroll_keys; /* derived from the token: the enrollment connection's key */
        bool have_enroll_keys;
        bool enrolling;   /* the link is the enrollment connection, not the host's */
        bool want_enroll; /* our key was refused: enroll again (we have a token) */
        bool resync;      /* a message was dropped: say HELLO again */
        bool facts_dirty; /* facts changed since the last HELLO/HEARTBEAT that carried them */
        bool auth_failed_logged;
        uint64_t facts_checked;
        sd_event_source *switch_source; /* replaces the link outside its own callbacks */
        char *state_path;
        Obj *state; /* persisted: see state.h */
        Obj *facts;
        Obj *bundle; /* the opened bundle of the current provision plan */
        Link *link;
        AgentMetrics *metrics; /* NULL unless metrics-listen is set */
        Health *health;
        Obj *last_health;   /* the summary last sent */
        char activity[256]; /* what STATUS= says we are doing */
        bool ever_connected;
        Exec *exec;
        CommandRunner *commands;
        UnitRestart *restart; /* the restart-kubelet or ntp step's D-Bus call */
        UsersJob *users;      /* the users step's commands (users.h) */
        uint64_t plan_serial; /* bumped whenever a new plan replaces the old one */
        uint64_t exec_plan;   /* plan_serial the running child (or restart) belongs to */
        uint64_t exec_started;
        sd_event_source *heartbeat_timer, *node_timer, *enroll_timer;
        uint64_t hb_seq, enroll_backoff, node_wait_started;
        bool node_ready; /* last reported */
        bool reported;
        char *kubelet_version;
        Obj *node_conditions; /* last reported: [{type, status, reason, lastTransitionTime}] */
};

/* ---- state accessors ---- */

static Obj *plan(Agent *a) {
        return obj_map_get(a->state, "plan");
}

static const char *plan_state(Agent *a) {
        return obj_get_str(a->state, "plan.state") ?: "Idle";
}

static const char *plan_action(Agent *a) {
        return obj_get_str(a->state, "plan.action") ?: "Idle";
}

/* A plan with steps still to run. */
static bool plan_active(Agent *a) {
        const char *st = plan_state(a);
        return streq(st, "Provisioning") || streq(st, "Deprovisioning") || streq(st, "Upgrading");
}

/* Provision and Upgrade plans both hold a provisioned machine. */
static bool action_holds_machine(const char *action) {
        return streq_ptr(action, "Provision") || streq_ptr(action, "Upgrade");
}

static int64_t applied_generation(Agent *a) {
        int64_t g = 0;
        obj_get_int(a->state, "generation", &g);
        return g;
}

static int save(Agent *a) {
        int r = state_save(a->state_path, a->state);
        if (r < 0)
                return log_error_errno(r, "Failed to persist state to %s: %m", a->state_path);
        agent_metrics_state(a->metrics, plan_state(a), applied_generation(a),
                            obj_get_str(a->state, "host"));
        return 0;
}

/* STATUS= for `systemctl status`: who we are, which machine, what we are doing, e.g.
 * "enrolled as rack1-07, machine prod-md-0-abc: step 3/5: running kubeadm join". */
static void notify_status(Agent *a) {
        const char *host = obj_get_str(a->state, "host");
        const char *machine = obj_get_str(a->state, "desired.machine.name");
        const char *link = link_connected(a->link) ? ""
                           : a->ever_connected     ? " (coordinator unreachable, reconnecting)"
                                                   : " (not connected to the coordinator yet)";
        if (!host)
                (void)sd_notifyf(false, "STATUS=not enrolled yet: %s%s", a->activity, link);
        else if (machine && !streq(plan_state(a), "Idle"))
                (void)sd_notifyf(false, "STATUS=enrolled as %s, machine %s: %s%s", host, machine,
                                 a->activity, link);
        else
                (void)sd_notifyf(false, "STATUS=enrolled as %s: %s%s", host, a->activity, link);
}

static void set_activity(Agent *a, const char *fmt, ...) _printf_(2, 3);
static void set_activity(Agent *a, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->activity, sizeof(a->activity), fmt, ap);
        va_end(ap);
        notify_status(a);
}

#ifdef ANVIL_TEST_HOOKS
/* ANVIL_TEST_CRASH=<step>:<before|after> aborts the agent at that point (fault tests). */
static void test_crash_point(const char *step, const char *when) {
        const char *spec = getenv("ANVIL_TEST_CRASH");
        char want[160];
        snprintf(want, sizeof(want), "%s:%s", step, when);
        if (spec && streq(spec, want)) {
                log_warning("Test hook: crashing %s step %s.", when, step);
                abort();
        }
}
#else
static void test_crash_point(const char *step, const char *when) {
        (void)step;
        (void)when;
}
#endif

/* ---- messages to the coordinator ---- */

static void schedule_resync(Agent *a);

/* Nothing is queued for a coordinator we are not connected to, and a full queue drops the
 * message (see docs/protocol.md): everything the agent says is restated by HELLO, which is
 * sent on every new connection and, after a drop, at the next heartbeat. */
static int send_msg(Agent *a, MsgType t, Obj *body) {
        /* The enrollment connection carries ENROLL and nothing else (the coordinator drops
         * anything more): what a host says waits until it is enrolled, and HELLO restates
         * it then. */
        if (a->enrolling && t != MSG_ENROLL) {
                log_debug("Not sending %s: not enrolled.", msg_type_to_string(t));
                return -ENOTCONN;
        }
        int r = a->link ? link_send(a->link, t, body) : -ENOTCONN;
        if (r < 0) {
                log_debug_errno(r, "Could not queue %s, it is restated later: %m",
                                msg_type_to_string(t));
                if (!a->enrolling && t != MSG_ENROLL)
                        schedule_resync(a);
        }
        return r;
}

static Obj *step_summary(Agent *a) {
        Obj *p = plan(a);
        int64_t total = (int64_t)obj_len(obj_map_get(p, "steps"));
        int64_t idx = 0;
        const char *name = NULL;
        /* A plain loop: `break` inside OBJ_LIST_FOREACH only ends its inner loop, which made
         * this report the last step instead of the failed one. */
        for (int64_t i = 0; i < total && !name; i++) {
                Obj *s = obj_list_get(obj_map_get(p, "steps"), (size_t)i);
                StepStatus st = step_status_from_string(obj_get_str(s, "status"));
                if (st == STEP_RUNNING || st == STEP_FAILED || st == STEP_PENDING) {
                        idx = i + 1;
                        name = obj_get_str(s, "name");
                }
        }
        if (!name && total > 0) {
                idx = total;
                name = obj_get_str(obj_list_get(obj_map_get(p, "steps"), (size_t)total - 1),
                                   "name");
        }
        if (!name)
                return NULL;
        Obj *o = obj_new_map();
        if (o && (obj_map_set_str(o, "name", name) < 0 || obj_map_set_int(o, "index", idx) < 0 ||
                  obj_map_set_int(o, "total", total) < 0))
                o = obj_free(o);
        return o;
}

static void send_heartbeat(Agent *a);

static void send_status(Agent *a, const char *message) {
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        int64_t g = 0;
        obj_get_int(plan(a), "generation", &g);
        if (!b || obj_map_set_int(b, "generation", g) < 0 ||
            obj_map_set_str(b, "state", plan_state(a)) < 0 ||
            obj_map_set_str(b, "action", plan_action(a)) < 0)
                return;
        Obj *step = step_summary(a);
        if (step)
                obj_map_set(b, "step", step);
        const Obj *fail = obj_get(plan(a), "failure");
        if (streq(plan_state(a), "Failed") && fail) {
                obj_map_set(b, "exitCode",
                            obj_dup(obj_map_get(fail, "exitCode")) ?: obj_new_int(-1));
                obj_map_set_str(b, "message", strempty(obj_get_str(fail, "message")));
                const char *out = obj_get_str(fail, "output");
                if (out) {
                        size_t n = strlen(out);
                        obj_map_set_str(b, "output",
                                        n > WIRE_MAX_OUTPUT ? out + n - WIRE_MAX_OUTPUT : out);
                }
        } else if (message)
                obj_map_set_str(b, "message", message);
        send_msg(a, MSG_STATUS, b);
}

/* ACK{generation, state, action}: the plan's state goes with it, so the coordinator never
 * pairs a new generation with the previous plan's state (it would, between this ACK and the
 * STATUS that follows). */
static void send_ack(Agent *a, int64_t generation) {
        _cleanup_(obj_freep) Obj *ack = obj_new_map();
        if (ack && obj_map_set_int(ack, "generation", generation) >= 0 &&
            obj_map_set_str(ack, "state", plan_state(a)) >= 0 &&
            obj_map_set_str(ack, "action", plan_action(a)) >= 0)
                send_msg(a, MSG_ACK, ack);
}

static void send_report(Agent *a) {
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        const char *uuid = obj_get_str(a->facts, "productUUID");
        _cleanup_free_ char *pid = strjoin("anvil://", strempty(uuid));
        const char *node = obj_get_str(plan(a), "nodeName");
        if (!b || !pid || obj_map_set_int(b, "generation", applied_generation(a)) < 0 ||
            obj_map_set_str(b, "providerID", pid) < 0 ||
            obj_map_set_bool(b, "nodeReady", a->node_ready) < 0)
                return;
        if (node)
                obj_map_set_str(b, "nodeName", node);
        if (a->kubelet_version)
                obj_map_set_str(b, "kubeletVersion", a->kubelet_version);
        if (a->node_conditions)
                obj_map_set(b, "nodeConditions", obj_dup(a->node_conditions));
        send_msg(a, MSG_REPORT, b);
        a->reported = true;
}

/* Says everything the coordinator may have missed: on every new connection and after a
 * message was dropped. HELLO (generation, state, step, facts), then the plan's STATUS (with
 * its failure, if any) and, once provisioned, the node REPORT. */
static void send_hello(Agent *a) {
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        if (!b || obj_map_set_int(b, "generation", applied_generation(a)) < 0 ||
            obj_map_set_str(b, "state", plan_state(a)) < 0 ||
            obj_map_set_str(b, "action", plan_action(a)) < 0 ||
            obj_map_set(b, "facts", obj_dup(a->facts)) < 0)
                return;
        Obj *step = step_summary(a);
        if (step)
                obj_map_set(b, "step", step);
        a->resync = false;
        if (send_msg(a, MSG_HELLO, b) < 0)
                return;
        a->facts_dirty = false;
        if (plan(a))
                send_status(a, NULL);
        if (streq(plan_state(a), "Provisioned") && a->reported)
                send_report(a);
}

/* ---- plans ---- */

static int add_step(Obj *steps, const char *name) {
        _cleanup_(obj_freep) Obj *s = obj_new_map();
        if (!s || obj_map_set_str(s, "name", name) < 0 ||
            obj_map_set_str(s, "status", step_status_to_string(STEP_PENDING)) < 0)
                return -ENOMEM;
        return obj_list_append(steps, TAKE_PTR(s));
}

/* Step names say what they are; the kind and index are derived from them. */
static int step_kind(const char *name, size_t *ret_index) {
        unsigned idx = 0;
        *ret_index = 0;
        if (streq(name, "write-files"))
                return STEP_FILES;
        if (streq(name, "kubeadm-init") || streq(name, "kubeadm-join"))
                return STEP_KUBEADM;
        if (streq(name, "kubeadm-reset"))
                return STEP_RESET;
        if (streq(name, "wait-node"))
                return STEP_WAIT_NODE;
        if (streq(name, "users"))
                return STEP_USERS;
        if (streq(name, "ntp"))
                return STEP_NTP;
        if (sscanf(name, "pre-kubeadm-%u", &idx) == 1 ||
            sscanf(name, "post-kubeadm-%u", &idx) == 1) {
                *ret_index = idx;
                return STEP_COMMAND;
        }
        if (sscanf(name, "cleanup-%u", &idx) == 1) {
                *ret_index = idx;
                return STEP_CLEANUP;
        }
        if (sscanf(name, "upgrade-commands-%u", &idx) == 1) {
                *ret_index = idx;
                return STEP_UPGRADE_CMD;
        }
        if (streq(name, "kubeadm-upgrade-apply") || streq(name, "kubeadm-upgrade-node"))
                return STEP_KUBEADM_UPGRADE;
        if (streq(name, "restart-kubelet"))
                return STEP_RESTART_KUBELET;
        if (streq(name, "check-version") || streq(name, "verify-version"))
                return STEP_CHECK_VERSION;
        return -EINVAL;
}

static int build_reset_steps(Agent *a, Obj *steps) {
        int r = add_step(steps, "kubeadm-reset");
        for (size_t i = 0; r >= 0 && a->c.cleanup && a->c.cleanup[i]; i++) {
                char n[32];
                snprintf(n, sizeof(n), "cleanup-%zu", i + 1);
                r = add_step(steps, n);
        }
        return r;
}

/* A machine at a Kubernetes version: first make sure the host has it (what the in-place
 * upgrade does with upgrade-commands, done before anything is written): check-version asks
 * the installed kubeadm; if it differs, upgrade-commands-N install the machine's version and
 * verify-version asks again. check-version skips the rest when the version is there. */
static int build_version_steps(Agent *a, const char *version, Obj *steps) {
        if (!version)
                return 0;
        int r = add_step(steps, "check-version");
        char n[48];
        for (size_t i = 0; r >= 0 && a->c.upgrade && a->c.upgrade[i]; i++) {
                snprintf(n, sizeof(n), "upgrade-commands-%zu", i + 1);
                r = add_step(steps, n);
        }
        if (r >= 0 && a->c.upgrade && a->c.upgrade[0])
                r = add_step(steps, "verify-version");
        return r;
}

/* The order of cloud-init's modules: write_files, users_groups, ntp, then runcmd (the
 * commands and kubeadm); see docs/bootstrap.md. */
static int build_provision_steps(const Obj *bundle, Obj *steps) {
        int r = add_step(steps, "write-files");
        char n[64];
        if (r >= 0 && obj_len(obj_map_get(bundle, "users")) > 0)
                r = add_step(steps, "users");
        if (r >= 0 && obj_map_get(bundle, "ntp"))
                r = add_step(steps, "ntp");
        OBJ_LIST_FOREACH(c, obj_map_get(bundle, "preKubeadmCommands"), i) {
                snprintf(n, sizeof(n), "pre-kubeadm-%zu", i + 1);
                if (r >= 0)
                        r = add_step(steps, n);
        }
        snprintf(n, sizeof(n), "kubeadm-%s", obj_get_str(bundle, "kubeadm.command"));
        if (r >= 0)
                r = add_step(steps, n);
        OBJ_LIST_FOREACH(c, obj_map_get(bundle, "postKubeadmCommands"), i) {
                snprintf(n, sizeof(n), "post-kubeadm-%zu", i + 1);
                if (r >= 0)
                        r = add_step(steps, n);
        }
        if (r >= 0)
                r = add_step(steps, "wait-node");
        return r;
}

/* Opens the sealed bundle of the desired state and fills in this host's values. */
static int open_bundle(Agent *a, Obj **ret, char *err, size_t errsz) {
        const char *sealed = obj_get_str(a->state, "desired.bootstrap");
        if (!sealed) {
                snprintf(err, errsz, "the desired state carries no bootstrap data");
                return -ENODATA;
        }
        _cleanup_free_ void *plain = NULL;
        size_t size;
        int r = seal_open(&a->keys, sealed, &plain, &size);
        if (r < 0) {
                snprintf(err, errsz, "the bootstrap data is not sealed for this host's key");
                return r;
        }
        _cleanup_(obj_freep) Obj *b = NULL;
        r = bundle_parse(plain, size, &b, err, errsz);
        sodium_memzero(plain, size);
        if (r < 0)
                return r;
        BundleVars vars = {
                .hostname = obj_get_str(a->facts, "hostname"),
                .uuid = obj_get_str(a->facts, "productUUID"),
                .machine = obj_get_str(b, "machine"),
        };
        Obj *cfg = obj_get(b, "kubeadm.config");
        char *sub = bundle_substitute(cfg->str.s, &vars);
        if (!sub)
                return -ENOMEM;
        sodium_memzero(cfg->str.s, cfg->str.len);
        if ((r = obj_set(b, "kubeadm.config", obj_new_str_take(sub))) < 0)
                return r;
        OBJ_LIST_FOREACH(f, obj_map_get(b, "files"), i) {
                Obj *c = obj_map_get(f, "content");
                if (!obj_is(c, OBJ_STR) || !isempty(obj_get_str(f, "encoding")))
                        continue;
                char *s = bundle_substitute(c->str.s, &vars);
                if (!s)
                        return -ENOMEM;
                sodium_memzero(c->str.s, c->str.len);
                if ((r = obj_map_set(f, "content", obj_new_str_take(s))) < 0)
                        return r;
        }
        *ret = TAKE_PTR(b);
        return 0;
}

/* The node name kubeadm will register: nodeRegistration.name of the rendered config. */
static char *node_name_of(const Obj *bundle, const char *fallback) {
        const char *text = obj_get_str(bundle, "kubeadm.config");
        _cleanup_(obj_freep) Obj *docs = NULL;
        YamlError ye;
        if (text && yaml_parse_documents(text, strlen(text), &docs, &ye) >= 0)
                OBJ_LIST_FOREACH(d, docs, i) {
                        const char *k = obj_get_str(d, "kind");
                        const char *n = obj_get_str(d, "nodeRegistration.name");
                        if (n && (streq_ptr(k, "InitConfiguration") ||
                                  streq_ptr(k, "JoinConfiguration")))
                                return strdup(n);
                }
        return strdup(fallback);
}

/* The fields every line carries from now on; a step sets its own while it runs, so none is
 * left over from an earlier plan (a failed step's name would tag unrelated lines). */
static void set_log_context(Agent *a) {
        log_field_set(LOG_FIELD_STEP, NULL);
        const Obj *m = obj_get(a->state, "desired.machine");
        log_field_set(LOG_FIELD_MACHINE, obj_get_str(m, "name"));
        log_field_set(LOG_FIELD_CLUSTER, obj_get_str(m, "cluster"));
        char g[32];
        snprintf(g, sizeof(g), "%lld", (long long)applied_generation(a));
        log_field_set(LOG_FIELD_GENERATION, applied_generation(a) ? g : NULL);
}

static void plan_fail(Agent *a, const char *step, int code, const char *message,
                      const char *output) {
        Obj *p = plan(a);
        agent_metrics_step_end(a->metrics, step, false);
        obj_map_set_str(p, "state", "Failed");
        _cleanup_(obj_freep) Obj *f = obj_new_map();
        if (f && obj_map_set_str(f, "step", step) >= 0 &&
            obj_map_set_int(f, "exitCode", code) >= 0 &&
            obj_map_set_str(f, "message", message) >= 0) {
                if (output)
                        obj_map_set_str(f, "output", output);
                obj_map_set(p, "failure", TAKE_PTR(f));
        }
        (void)save(a);
        log_event(LOG_ERR, ANVIL_MESSAGE_STEP_FAILED, "Step %s failed (exit code %d): %s", step,
                  code, message);
        set_activity(a, "step %s failed (exit code %d): %s", step, code, message);
        send_status(a, NULL);
        log_field_set(LOG_FIELD_STEP, NULL);
}

static void plan_advance(Agent *a);

static Obj *current_step(Agent *a, size_t *ret_index) {
        OBJ_LIST_FOREACH(s, obj_map_get(plan(a), "steps"), i) {
                StepStatus st = step_status_from_string(obj_get_str(s, "status"));
                if (st != STEP_DONE) {
                        *ret_index = i;
                        return s;
                }
        }
        return NULL;
}

static void step_done(Agent *a, Obj *step) {
        const char *name = obj_get_str(step, "name");
        test_crash_point(name, "after");
        agent_metrics_step_end(a->metrics, name, true);
        obj_map_set_str(step, "status", step_status_to_string(STEP_DONE));
        (void)save(a);
        log_event(LOG_INFO, ANVIL_MESSAGE_STEP_FINISHED, "Step %s finished.", name);
        log_field_set(LOG_FIELD_STEP, NULL);
}

static char **command_env(Agent *a) {
        return agent_config_command_env(&a->c, obj_get_str(a->state, "desired.machine.name"));
}

static bool root_is_slash(Agent *a) {
        return streq(a->c.host_root, "/");
}

static char *host_path(Agent *a, const char *path) {
        return agent_config_host_path(&a->c, path);
}

static void on_exec_done(Exec *x, int code, const char *tail, void *userdata);

static int run_env(Agent *a, char **argv, char **env, uint64_t timeout, bool capture) {
        ExecSpec spec = {.argv = argv,
                         .envp = env,
                         .timeout_usec = timeout,
                         .capture_stdout = capture,
                         .quiet = capture};
        a->exec_plan = a->plan_serial;
        a->exec_started = now_usec(CLOCK_MONOTONIC);
        return exec_start(a->event, &spec, on_exec_done, a, &a->exec);
}

static int run(Agent *a, char **argv, uint64_t timeout, bool capture) {
        _cleanup_strv_free_ char **env = command_env(a);
        if (!env)
                return -ENOMEM;
        return run_env(a, argv, env, timeout, capture);
}

/* Writes the bundle's files and the kubeadm configuration under the host root. */
static int write_files(Agent *a, char *err, size_t errsz) {
        OBJ_LIST_FOREACH(f, obj_map_get(a->bundle, "files"), i) {
                const char *path = obj_get_str(f, "path");
                const char *enc = obj_get_str(f, "encoding");
                const char *content = strempty(obj_get_str(f, "content"));
                _cleanup_free_ char *full = host_path(a, path);
                _cleanup_free_ void *decoded = NULL;
                size_t size = strlen(content);
                const void *data = content;
                if (!full)
                        return -ENOMEM;
                if (streq_ptr(enc, "base64")) {
                        if (base64_decode(content, &decoded, &size) < 0) {
                                snprintf(err, errsz, "%s: content is not valid base64", path);
                                return -EBADMSG;
                        }
                        data = decoded;
                } else if (!isempty(enc)) {
                        snprintf(err, errsz, "%s: encoding %s is not supported yet", path, enc);
                        return -EOPNOTSUPP;
                }
                mode_t mode = 0644;
                const char *perm = obj_get_str(f, "permissions");
                if (perm)
                        mode = (mode_t)strtoul(perm, NULL, 8) & 07777;
                int r = mkdir_parents(full, 0755);
                if (r < 0) {
                        snprintf(err, errsz, "%s: cannot create its directory: %s", path,
                                 strerror(-r));
                        return r;
                }
                if (obj_get_bool(f, "append", false)) {
                        FILE *fp = fopen(full, "ae");
                        if (!fp || fwrite(data, 1, size, fp) != size || fflush(fp) != 0 ||
                            fsync(fileno(fp)) < 0) {
                                r = negative_errno();
                                if (fp)
                                        fclose(fp);
                                snprintf(err, errsz, "%s: %s", path, strerror(-r));
                                return r;
                        }
                        fclose(fp);
                } else if ((r = write_file_atomic(full, data, size, mode)) < 0) {
                        snprintf(err, errsz, "%s: %s", path, strerror(-r));
                        return r;
                }
                if (decoded)
                        sodium_memzero(decoded, size);
                const char *owner = obj_get_str(f, "owner");
                if (owner && !streq(owner, "root:root") && !streq(owner, "root")) {
                        char user[128] = "", group[128] = "";
                        sscanf(owner, "%127[^:]:%127s", user, group);
                        struct passwd *pw = getpwnam(user);
                        struct group *gr = *group ? getgrnam(group) : NULL;
                        if (!pw || (*group && !gr)) {
                                snprintf(err, errsz, "%s: owner %s does not exist on this host",
                                         path, owner);
                                return -ENOENT;
                        }
                        if (chown(full, pw->pw_uid, gr ? gr->gr_gid : pw->pw_gid) < 0) {
                                r = negative_errno();
                                snprintf(err, errsz, "%s: chown %s: %s", path, owner, strerror(-r));
                                return r;
                        }
                }
                log_info("Wrote %s (%zu bytes, mode %04o).", path, size, (unsigned)mode);
        }
        const char *cfg = obj_get_str(a->bundle, "kubeadm.config");
        _cleanup_free_ char *cpath = host_path(a, obj_get_str(a->bundle, "kubeadm.configPath"));
        if (!cpath)
                return -ENOMEM;
        int r = mkdir_parents(cpath, 0755);
        if (r >= 0)
                r = write_file_atomic(cpath, cfg, strlen(cfg), 0600);
        if (r < 0) {
                snprintf(err, errsz, "%s: %s", obj_get_str(a->bundle, "kubeadm.configPath"),
                         strerror(-r));
                return r;
        }
        log_info("Wrote the kubeadm configuration %s.",
                 obj_get_str(a->bundle, "kubeadm.configPath"));
        return 0;
}

/* Did an interrupted kubeadm step complete? kubeadm's own files tell. */
static bool kubeadm_completed(Agent *a, const char *command) {
        const char *need_init[] = {"/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf",
                                   "/etc/kubernetes/manifests/kube-apiserver.yaml", NULL};
        const char *need_join[] = {"/etc/kubernetes/kubelet.conf", NULL};
        const char **need = streq(command, "init") ? need_init : need_join;
        for (const char **p = need; *p; p++) {
                _cleanup_free_ char *full = host_path(a, *p);
                if (!full || access(full, F_OK) < 0)
                        return false;
        }
        return true;
}

static bool kubeadm_touched(Agent *a) {
        const char *any[] = {"/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf",
                             "/etc/kubernetes/manifests/kube-apiserver.yaml", NULL};
        for (const char **p = any; *p; p++) {
                _cleanup_free_ char *full = host_path(a, *p);
                if (full && access(full, F_OK) == 0)
                        return true;
        }
        return false;
}

static int argv_push(char ***argv, const char *s) {
        return strv_extend(argv, s);
}

static int kubeadm_argv(Agent *a, const char *sub, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;
        int r;
        if ((r = argv_push(&argv, a->c.kubeadm)) < 0 || (r = argv_push(&argv, sub)) < 0)
                return r;
        if (streq(sub, "reset"))
                r = argv_push(&argv, "-f");
        else {
                if ((r = argv_push(&argv, "--config")) >= 0)
                        r = argv_push(&argv, obj_get_str(a->bundle, "kubeadm.configPath"));
                const Obj *ign = obj_get(a->bundle, "kubeadm.ignorePreflightErrors");
                int64_t v;
                if (r >= 0 && obj_get_int(a->bundle, "kubeadm.verbosity", &v)) {
                        char flag[32];
                        snprintf(flag, sizeof(flag), "--v=%lld", (long long)v);
                        r = argv_push(&argv, flag);
                }
                if (r >= 0 && obj_len(ign) > 0) {
                        char buf[1024] = "--ignore-preflight-errors=";
                        OBJ_LIST_FOREACH(e, ign, i) {
                                if (i)
                                        strncat(buf, ",", sizeof(buf) - strlen(buf) - 1);
                                strncat(buf, strempty(obj_str(e)), sizeof(buf) - strlen(buf) - 1);
                        }
                        r = argv_push(&argv, buf);
                }
        }
        if (r >= 0 && !root_is_slash(a)) {
                /* kubeadm's own way to work on another root (it chroots there). */
                if ((r = argv_push(&argv, "--rootfs")) >= 0)
                        r = argv_push(&argv, a->c.host_root);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(argv);
        return 0;
}

static int start_node_check(Agent *a) {
        const char *node = obj_get_str(plan(a), "nodeName");
        _cleanup_free_ char *kubeconfig = host_path(a, "/etc/kubernetes/kubelet.conf");
        if (!node || !kubeconfig)
                return -EINVAL;
        char *argv[] = {a->c.kubectl, "--kubeconfig", kubeconfig, "get", "node",
                        (char *)node, "-o",           "json",     NULL};
        return run(a, argv, 30 * USEC_PER_SEC, true);
}

static const char *upgrade_version(Agent *a);

/* The STATUS= line of a starting step. */
static void describe_step(Agent *a, int kind, const char *name, size_t index, size_t total) {
        switch (kind) {
        case STEP_FILES:
                set_activity(a, "step %zu/%zu: writing files", index + 1, total);
                break;
        case STEP_KUBEADM:
                set_activity(a, "step %zu/%zu: running kubeadm %s", index + 1, total,
                             strna(obj_get_str(a->bundle, "kubeadm.command")));
                break;
        case STEP_RESET:
                set_activity(a, "step %zu/%zu: running kubeadm reset", index + 1, total);
                break;
        case STEP_WAIT_NODE:
                set_activity(a, "step %zu/%zu: waiting for node %s to be Ready", index + 1, total,
                             strna(obj_get_str(plan(a), "nodeName")));
                break;
        case STEP_KUBEADM_UPGRADE:
                set_activity(a, "step %zu/%zu: running kubeadm upgrade to %s", index + 1, total,
                             strna(upgrade_version(a)));
                break;
        case STEP_RESTART_KUBELET:
                set_activity(a, "step %zu/%zu: restarting the kubelet", index + 1, total);
                break;
        case STEP_CHECK_VERSION:
                set_activity(a, "step %zu/%zu: checking that Kubernetes %s is installed", index + 1,
                             total, strna(upgrade_version(a)));
                break;
        case STEP_USERS:
                set_activity(a, "step %zu/%zu: creating users", index + 1, total);
                break;
        case STEP_NTP:
                set_activity(a, "step %zu/%zu: configuring NTP", index + 1, total);
                break;
        default:
                set_activity(a, "step %zu/%zu: running %s", index + 1, total, name);
                break;
        }
}

static void on_restart_done(int r, const char *message, void *userdata);
static void on_users_done(int code, const char *message, const char *tail, void *userdata);

/* Restarts unit through systemd as step. Without a system bus nothing here runs units (a
 * container, a test root): that is logged at level with hint, and the plan goes on. */
static void step_restart_unit(Agent *a, Obj *step, const char *unit, int level, const char *hint) {
        a->restart = unit_restart_free(a->restart);
        a->exec_plan = a->plan_serial;
        a->exec_started = now_usec(CLOCK_MONOTONIC);
        int r = unit_restart_start(a->event, unit, a->c.command_timeout_usec, on_restart_done, a,
                                   &a->restart);
        if (r < 0) {
                log_full_errno(level, r,
                               "Cannot restart %s through systemd (no system bus?): %m. %s", unit,
                               hint);
                step_done(a, step);
                plan_advance(a);
                return;
        }
        log_info("Asked systemd to restart %s.", unit);
}

/* The version and mode of the current upgrade plan; in a provision plan, the machine's
 * version and "provision" (for its upgrade-commands). */
static const char *upgrade_version(Agent *a) {
        if (!streq(plan_action(a), "Upgrade"))
                return obj_get_str(plan(a), "version");
        return obj_get_str(plan(a), "upgrade.version");
}

static const char *upgrade_mode(Agent *a) {
        if (!streq(plan_action(a), "Upgrade"))
                return "provision";
        return obj_get_str(plan(a), "upgrade.mode") ?: "node";
}

/* check-version found want installed: the install steps after it are not needed. */
static void skip_install_steps(Agent *a, size_t index) {
        OBJ_LIST_FOREACH(s, obj_map_get(plan(a), "steps"), i) {
                size_t sub;
                int kind = step_kind(strempty(obj_get_str(s, "name")), &sub);
                if (i <= index)
                        continue;
                if (kind != STEP_UPGRADE_CMD && kind != STEP_CHECK_VERSION)
                        break;
                obj_map_set_str(s, "status", step_status_to_string(STEP_DONE));
                obj_map_set_bool(s, "skipped", true);
        }
}

/* What check-version / verify-version make of `kubeadm version -o short`. */
static void version_checked(Agent *a, Obj *step, size_t index, int code, const char *out,
                            const char *tail) {
        const char *name = obj_get_str(step, "name");
        const char *want = upgrade_version(a);
        char have[72] = "", msg[512];
        bool installs =
                index + 1 < obj_len(obj_map_get(plan(a), "steps")) &&
                startswith(strempty(obj_get_str(
                                   obj_list_get(obj_map_get(plan(a), "steps"), index + 1), "name")),
                           "upgrade-commands-");
        if (code != 0 && (!installs || streq(name, "verify-version"))) {
                plan_fail(a, name, code, "kubeadm version failed: is kubeadm installed?", tail);
                return;
        }
        if (code == 0)
                sscanf(strempty(out), " %71s", have);
        if (code != 0)
                /* A host without kubeadm yet: the upgrade-commands install it. */
                log_info("kubeadm version failed (exit %d): installing Kubernetes %s with the "
                         "upgrade-commands.",
                         code, strna(want));
        else if (upgrade_versions_match(have, want)) {
                log_info("kubeadm %s is installed, as machine %s wants.", have,
                         strna(obj_get_str(a->state, "desired.machine.name")));
                skip_install_steps(a, index);
        } else if (streq(name, "verify-version")) {
                snprintf(msg, sizeof(msg),
                         "upgrade-commands ran, but kubeadm reports %s, not %s: check the "
                         "upgrade-commands in agent.yaml",
                         *have ? have : "nothing", strna(want));
                plan_fail(a, name, 1, msg, out);
                return;
        } else if (!installs) {
                snprintf(msg, sizeof(msg),
                         "this host has kubeadm %s, the machine wants %s, and agent.yaml sets no "
                         "upgrade-commands to install it: install %s on the host or set "
                         "upgrade-commands",
                         *have ? have : "(unknown)", strna(want), strna(want));
                plan_fail(a, name, 1, msg, out);
                return;
        } else
                log_info("kubeadm %s is installed, machine %s wants %s: installing it with the "
                         "upgrade-commands.",
                         have, strna(obj_get_str(a->state, "desired.machine.name")), strna(want));
        step_done(a, step);
        plan_advance(a);
}

static void step_start(Agent *a, Obj *step, size_t index) {
        const char *name = obj_get_str(step, "name");
        size_t sub;
        int kind = step_kind(name, &sub);
        char err[512] = "";
        int r = 0;
        size_t total = obj_len(obj_map_get(plan(a), "steps"));

        bool resumed = step_status_from_string(obj_get_str(step, "status")) == STEP_RUNNING;
        log_field_set(LOG_FIELD_STEP, name);
        agent_metrics_step_begin(a->metrics, name);
        if (kind == STEP_KUBEADM && resumed) {
                const char *cmd = obj_get_str(a->bundle, "kubeadm.command");
                if (kubeadm_completed(a, cmd)) {
                        log_notice("kubeadm %s was interrupted but its files are all there: "
                                   "treating it as done, not running it again.",
                                   cmd);
                        step_done(a, step);
                        plan_advance(a);
                        return;
                }
        }
        if (!resumed) {
                obj_map_set_str(step, "status", step_status_to_string(STEP_RUNNING));
                if (save(a) < 0)
                        return; /* nothing runs that is not on disk first */
                log_event(LOG_INFO, ANVIL_MESSAGE_STEP_STARTED, "Step %zu/%zu %s started.",
                          index + 1, total, name);
                describe_step(a, kind, name, index, total);
                send_status(a, NULL);
                test_crash_point(name, "before");
        } else if (kind != STEP_WAIT_NODE)
                log_event(LOG_INFO, ANVIL_MESSAGE_STEP_STARTED,
                          "Step %zu/%zu %s resumed after a restart.", index + 1, total, name);

        switch (kind) {
        case STEP_FILES:
                r = write_files(a, err, sizeof(err));
                if (r < 0) {
                        plan_fail(a, name, -1, err, NULL);
                        return;
                }
                step_done(a, step);
                plan_advance(a);
                return;
        case STEP_COMMAND:
        case STEP_CLEANUP: {
                const char *list = kind == STEP_CLEANUP       ? NULL
                                   : startswith(name, "pre-") ? "preKubeadmCommands"
                                                              : "postKubeadmCommands";
                const char *cmd =
                        list ? obj_str(obj_list_get(obj_map_get(a->bundle, list), sub - 1))
                             : (sub >= 1 && sub <= strv_length(a->c.cleanup) ? a->c.cleanup[sub - 1]
                                                                             : NULL);
                if (!cmd) {
                        plan_fail(a, name, -1, "the command is missing from the plan", NULL);
                        return;
                }
                log_info("Running: %s", cmd);
                char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
                r = run(a, argv, a->c.command_timeout_usec, false);
                break;
        }
        case STEP_KUBEADM: {
                const char *cmd = obj_get_str(a->bundle, "kubeadm.command");
                if (resumed && kubeadm_touched(a)) {
                        /* Half done: start clean rather than fight kubeadm's preflight. */
                        log_notice("kubeadm %s was interrupted half way: running kubeadm reset "
                                   "first.",
                                   cmd);
                        _cleanup_strv_free_ char **argv = NULL;
                        r = kubeadm_argv(a, "reset", &argv);
                        if (r >= 0) {
                                obj_map_set_str(step, "status",
                                                step_status_to_string(STEP_PENDING));
                                (void)save(a);
                                r = run(a, argv, a->c.kubeadm_timeout_usec, false);
                                obj_map_set_bool(step, "resetFirst", true);
                        }
                        break;
                }
                _cleanup_strv_free_ char **argv = NULL;
                r = kubeadm_argv(a, cmd, &argv);
                if (r >= 0) {
                        char vflag[32] = "";
                        int64_t v;
                        if (obj_get_int(a->bundle, "kubeadm.verbosity", &v))
                                snprintf(vflag, sizeof(vflag), " --v=%lld", (long long)v);
                        log_info("Running: %s %s --config %s%s%s%s", a->c.kubeadm, cmd,
                                 obj_get_str(a->bundle, "kubeadm.configPath"), vflag,
                                 root_is_slash(a) ? "" : " --rootfs ",
                                 root_is_slash(a) ? "" : a->c.host_root);
                        r = run(a, argv, a->c.kubeadm_timeout_usec, false);
                }
                break;
        }
        case STEP_RESET: {
                _cleanup_strv_free_ char **argv = NULL;
                r = kubeadm_argv(a, "reset", &argv);
                if (r >= 0)
                        r = run(a, argv, a->c.kubeadm_timeout_usec, false);
                break;
        }
        case STEP_WAIT_NODE:
                if (!a->node_wait_started)
                        a->node_wait_started = now_usec(CLOCK_MONOTONIC);
                r = start_node_check(a);
                break;
        case STEP_UPGRADE_CMD: {
                const char *cmd =
                        sub >= 1 && sub <= strv_length(a->c.upgrade) ? a->c.upgrade[sub - 1] : NULL;
                if (!cmd) {
                        plan_fail(a, name, -1,
                                  "the command is missing from upgrade-commands in agent.yaml",
                                  NULL);
                        return;
                }
                _cleanup_strv_free_ char **env =
                        upgrade_command_env(&a->c, obj_get_str(a->state, "desired.machine.name"),
                                            upgrade_version(a), upgrade_mode(a));
                if (!env) {
                        r = -ENOMEM;
                        break;
                }
                log_info("Running: %s (ANVIL_KUBERNETES_VERSION=%s)", cmd,
                         strna(upgrade_version(a)));
                char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
                r = run_env(a, argv, env, a->c.command_timeout_usec, false);
                break;
        }
        case STEP_CHECK_VERSION: {
                if (!upgrade_version_valid(upgrade_version(a))) {
                        plan_fail(a, name, -1, "the machine's version is not a valid version",
                                  NULL);
                        return;
                }
                char *argv[] = {a->c.kubeadm,
                                "version",
                                "-o",
                                "short",
                                root_is_slash(a) ? NULL : "--rootfs",
                                a->c.host_root,
                                NULL};
                r = run(a, argv, a->c.command_timeout_usec, true);
                break;
        }
        case STEP_KUBEADM_UPGRADE: {
                _cleanup_strv_free_ char **argv = NULL;
                r = upgrade_kubeadm_argv(&a->c, upgrade_mode(a), upgrade_version(a), &argv);
                if (r >= 0) {
                        log_info("Running: kubeadm upgrade %s%s%s", upgrade_mode(a),
                                 streq(upgrade_mode(a), "apply") ? " " : "",
                                 streq(upgrade_mode(a), "apply") ? upgrade_version(a) : "");
                        r = run(a, argv, a->c.kubeadm_timeout_usec, false);
                }
                break;
        }
        case STEP_RESTART_KUBELET:
                /* Without a system bus, say so loudly: the node check that follows tells
                 * whether the kubelet came back at the new version. */
                step_restart_unit(a, step, UPGRADE_KUBELET_UNIT, LOG_ERR,
                                  "Restart the kubelet by other means; going on to check the "
                                  "node.");
                return;
        case STEP_USERS: {
                _cleanup_strv_free_ char **env = command_env(a);
                a->users = users_job_free(a->users);
                a->exec_plan = a->plan_serial;
                a->exec_started = now_usec(CLOCK_MONOTONIC);
                r = env ? users_job_start(a->event, &a->c, obj_map_get(a->bundle, "users"), env,
                                          on_users_done, a, &a->users, err, sizeof(err))
                        : -ENOMEM;
                if (r < 0)
                        plan_fail(a, name, -1, *err ? err : strerror(-r), NULL);
                return;
        }
        case STEP_NTP:
                r = ntp_write_dropin(&a->c, obj_map_get(a->bundle, "ntp"),
                                     obj_get_str(a->bundle, "machine"), err, sizeof(err));
                if (r < 0) {
                        plan_fail(a, name, -1, err, NULL);
                        return;
                }
                if (!root_is_slash(a)) {
                        /* A test root or a chroot: this system's timesyncd does not read it. */
                        log_notice("The host root is %s, not /: %s is written there, %s is not "
                                   "restarted.",
                                   a->c.host_root, NTP_DROPIN, NTP_UNIT);
                        step_done(a, step);
                        plan_advance(a);
                        return;
                }
                step_restart_unit(a, step, NTP_UNIT, LOG_NOTICE,
                                  "The new servers are used when it next starts.");
                return;
        default:
                plan_fail(a, name, -1, "unknown step in the saved plan", NULL);
                return;
        }
        if (r < 0) {
                snprintf(err, sizeof(err), "could not start: %s", strerror(-r));
                plan_fail(a, name, r, err, NULL);
        }
}

/* Parses kubectl's Node JSON: Ready condition, kubelet version, and the conditions (type,
 * status, reason, lastTransitionTime: what a MachineHealthCheck judges) into *conditions. */
static int parse_node(const char *json, bool *ready, char **version, Obj **conditions) {
        _cleanup_(obj_freep) Obj *n = NULL;
        int r = json_parse(json, strlen(json), &n);
        if (r < 0)
                return r;
        _cleanup_(obj_freep) Obj *conds = obj_new_list();
        if (!conds)
                return -ENOMEM;
        *ready = false;
        OBJ_LIST_FOREACH(c, obj_get(n, "status.conditions"), i) {
                const char *type = obj_get_str(c, "type"), *status = obj_get_str(c, "status");
                if (!type || !status)
                        continue;
                if (streq(type, "Ready"))
                        *ready = streq(status, "True");
                if (obj_len(conds) >= 32)
                        continue;
                _cleanup_(obj_freep) Obj *x = obj_new_map();
                if (!x || obj_map_set_str(x, "type", type) < 0 ||
                    obj_map_set_str(x, "status", status) < 0)
                        return -ENOMEM;
                const char *reason = obj_get_str(c, "reason");
                const char *ltt = obj_get_str(c, "lastTransitionTime");
                if ((reason && strlen(reason) < 256 && obj_map_set_str(x, "reason", reason) < 0) ||
                    (ltt && strlen(ltt) < 64 &&
                     obj_map_set_str(x, "lastTransitionTime", ltt) < 0) ||
                    obj_list_append(conds, TAKE_PTR(x)) < 0)
                        return -ENOMEM;
        }
        const char *v = obj_get_str(n, "status.nodeInfo.kubeletVersion");
        free(*version);
        *version = v ? strdup(v) : NULL;
        obj_free(*conditions);
        *conditions = TAKE_PTR(conds);
        return 0;
}

static int on_node_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void schedule_node_check(Agent *a, uint64_t delay) {
        if (!a->node_timer)
                (void)sd_event_add_time_relative(a->event, &a->node_timer, CLOCK_MONOTONIC, delay,
                                                 USEC_PER_SEC, on_node_timer, a);
        else {
                sd_event_source_set_time_relative(a->node_timer, delay);
                sd_event_source_set_enabled(a->node_timer, SD_EVENT_ONESHOT);
        }
}

static void on_exec_done(Exec *x, int code, const char *tail_in, void *userdata) {
        Agent *a = userdata;
        _cleanup_free_ char *out = x ? strdup(exec_stdout(x)) : NULL;
        /* tail_in lives in the Exec: keep a copy before it goes. */
        _cleanup_free_ char *tail = tail_in ? strdup(tail_in) : NULL;
        a->exec = exec_free(a->exec);
        if (a->exec_plan != a->plan_serial ||
            (!plan_active(a) && !streq(plan_state(a), "Provisioned"))) {
                log_info("A command of an older plan finished (exit %d); moving on.", code);
                plan_advance(a);
                return;
        }
        if (streq(plan_state(a), "Provisioned")) {
                /* A periodic node check. */
                bool ready = false;
                _cleanup_(obj_freep) Obj *conds = NULL;
                /* A kubelet replaced by another version is news too (KubeletUpToDate). */
                _cleanup_free_ char *was = a->kubelet_version ? strdup(a->kubelet_version) : NULL;
                if (code == 0 &&
                    parse_node(out ? out : "", &ready, &a->kubelet_version, &conds) >= 0) {
                        bool changed = !obj_equal(conds, a->node_conditions) ||
                                       !streq_ptr(was, a->kubelet_version);
                        if (ready != a->node_ready || !a->reported || changed) {
                                if (ready != a->node_ready || !a->reported)
                                        log_info("Node %s is %s.",
                                                 strna(obj_get_str(plan(a), "nodeName")),
                                                 ready ? "Ready" : "not Ready");
                                a->node_ready = ready;
                                obj_free(a->node_conditions);
                                a->node_conditions = TAKE_PTR(conds);
                                send_report(a);
                        }
                } else if (a->node_ready) {
                        a->node_ready = false;
                        log_warning("Node check failed (exit %d): %s", code, strna(tail));
                        send_report(a);
                }
                schedule_node_check(a, a->c.node_check_usec);
                return;
        }
        size_t index;
        Obj *step = current_step(a, &index);
        if (!step)
                return;
        const char *name = obj_get_str(step, "name");
        size_t sub;
        int kind = step_kind(name, &sub);
        uint64_t took = (now_usec(CLOCK_MONOTONIC) - a->exec_started) / USEC_PER_MSEC;

        if (obj_get_bool(step, "resetFirst", false)) {
                /* That was the cleanup before re-running an interrupted kubeadm step. */
                obj_map_del(step, "resetFirst");
                if (code != 0) {
                        plan_fail(a, name, code, "kubeadm reset before the retry failed", tail);
                        return;
                }
                plan_advance(a);
                return;
        }
        if (kind == STEP_CHECK_VERSION) {
                version_checked(a, step, index, code, out, tail);
                return;
        }
        if (kind == STEP_WAIT_NODE) {
                bool ready = false;
                const char *want = streq(plan_action(a), "Upgrade") ? upgrade_version(a) : NULL;
                _cleanup_(obj_freep) Obj *conds = NULL;
                if (code == 0 &&
                    parse_node(out ? out : "", &ready, &a->kubelet_version, &conds) >= 0 && ready &&
                    (!want || upgrade_versions_match(a->kubelet_version, want))) {
                        a->node_ready = true;
                        obj_free(a->node_conditions);
                        a->node_conditions = TAKE_PTR(conds);
                        step_done(a, step);
                        plan_advance(a);
                        return;
                }
                if (now_usec(CLOCK_MONOTONIC) - a->node_wait_started > NODE_WAIT_MAX_USEC) {
                        char msg[256];
                        if (ready && want)
                                snprintf(msg, sizeof(msg),
                                         "the node is Ready but its kubelet reports %s, not %s "
                                         "(did the upgrade-commands install the new kubelet?)",
                                         strna(a->kubelet_version), want);
                        else
                                snprintf(msg, sizeof(msg), "the node did not become Ready in time");
                        plan_fail(a, name, code, msg, tail);
                        return;
                }
                schedule_node_check(a, NODE_POLL_FAST_USEC);
                return;
        }
        if (code != 0) {
                char msg[256];
                if (code == -ETIMEDOUT)
                        snprintf(msg, sizeof(msg), "%s timed out", name);
                else
                        snprintf(msg, sizeof(msg), "%s exited with status %d after %llu ms", name,
                                 code, (unsigned long long)took);
                plan_fail(a, name, code == -ETIMEDOUT ? -1 : code, msg, tail);
                return;
        }
        log_info("%s succeeded in %llu ms.", name, (unsigned long long)took);
        step_done(a, step);
        plan_advance(a);
}

/* The step a finished restart or users job belonged to; NULL (the plan moved on) when a new
 * plan replaced that one meanwhile. */
static Obj *finished_step(Agent *a) {
        if (a->exec_plan != a->plan_serial || !plan_active(a)) {
                plan_advance(a);
                return NULL;
        }
        size_t index;
        return current_step(a, &index);
}

static void on_restart_done(int r, const char *message, void *userdata) {
        Agent *a = userdata;
        _cleanup_free_ char *msg = message ? strdup(message) : NULL;
        a->restart = unit_restart_free(a->restart);
        Obj *step = finished_step(a);
        if (!step)
                return;
        size_t sub;
        bool ntp = step_kind(obj_get_str(step, "name"), &sub) == STEP_NTP;
        const char *unit = ntp ? NTP_UNIT : UPGRADE_KUBELET_UNIT;
        if (r == -ENOENT && ntp)
                /* NoSuchUnit: cloud-init would install a client; Anvil leaves packages to the
                 * image. */
                log_warning("%s is not installed: %s is written, but nothing reads it.", unit,
                            NTP_DROPIN);
        else if (r < 0) {
                plan_fail(a, obj_get_str(step, "name"), -1,
                          msg ? msg : "systemd could not restart the unit", NULL);
                return;
        } else
                log_info("systemd restarted %s.", unit);
        step_done(a, step);
        plan_advance(a);
}

static void on_users_done(int code, const char *message, const char *tail, void *userdata) {
        Agent *a = userdata;
        _cleanup_free_ char *msg = message ? strdup(message) : NULL;
        _cleanup_free_ char *out = tail ? strdup(tail) : NULL;
        a->users = users_job_free(a->users);
        Obj *step = finished_step(a);
        if (!step)
                return;
        if (code != 0) {
                plan_fail(a, obj_get_str(step, "name"), code, msg ? msg : "the users step failed",
                          out);
                return;
        }
        log_info("users succeeded in %llu ms.",
                 (unsigned long long)((now_usec(CLOCK_MONOTONIC) - a->exec_started) /
                                      USEC_PER_MSEC));
        step_done(a, step);
        plan_advance(a);
}

static int on_node_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        (void)s;
        (void)usec;
        if (a->exec || a->restart || a->users)
                return 0;
        if (streq(plan_state(a), "Provisioned")) {
                if (start_node_check(a) < 0)
                        schedule_node_check(a, a->c.node_check_usec);
                return 0;
        }
        plan_advance(a);
        return 0;
}

/* The upgrade the coordinator asks for (desired.upgrade) is not the one the current plan
 * is or was: a new version, or a new attempt after a failure. */
static bool upgrade_wanted(Agent *a) {
        const Obj *want = obj_get(a->state, "desired.upgrade");
        if (!want)
                return false;
        const Obj *have = streq(plan_action(a), "Upgrade") ? obj_map_get(plan(a), "upgrade") : NULL;
        return !obj_equal(want, have);
}

/* Replaces the plan of a provisioned machine with an in-place upgrade plan (upgrade.h). The
 * node name and machine carry over; nothing else of the old plan is needed. */
static int start_upgrade_plan(Agent *a, int64_t generation) {
        const Obj *want = obj_get(a->state, "desired.upgrade");
        const char *version = obj_get_str(want, "version");
        const char *mode = obj_get_str(want, "mode");
        const char *node = obj_get_str(plan(a), "nodeName");
        _cleanup_(obj_freep) Obj *p = obj_new_map();
        Obj *steps = p ? obj_map_ensure_list(p, "steps") : NULL;
        if (!steps)
                return -ENOMEM;
        int r;
        if ((r = obj_map_set_int(p, "generation", generation)) < 0 ||
            (r = obj_map_set_str(p, "action", "Upgrade")) < 0 ||
            (r = obj_map_set_str(p, "state", "Upgrading")) < 0 ||
            (r = obj_map_set(p, "upgrade", obj_dup(want))) < 0)
                return r;
        const char *machine = obj_get_str(plan(a), "machine");
        if (machine && (r = obj_map_set_str(p, "machine", machine)) < 0)
                return r;
        if (node && (r = obj_map_set_str(p, "nodeName", node)) < 0)
                return r;
        bool ok = node && upgrade_version_valid(version) && mode;
        if (ok)
                r = upgrade_build_steps(&a->c, mode, steps);
        if (r < 0)
                return r;
        obj_map_set(a->state, "plan", TAKE_PTR(p));
        a->plan_serial++;
        a->node_wait_started = 0;
        if (!ok) {
                plan_fail(a, "plan-upgrade", -1,
                          !node ? "this host has no node to upgrade"
                                : "the desired upgrade has no valid version or mode",
                          NULL);
                return 0;
        }
        log_notice("Upgrading machine %s in place to %s (kubeadm upgrade %s).",
                   strna(obj_get_str(a->state, "desired.machine.name")), version, mode);
        return 0;
}

static void plan_complete(Agent *a) {
        Obj *p = plan(a);
        const char *action = obj_get_str(p, "action");
        log_field_set(LOG_FIELD_STEP, NULL);
        if (action_holds_machine(action)) {
                bool upgraded = streq_ptr(action, "Upgrade");
                obj_map_set_str(p, "state", "Provisioned");
                (void)save(a);
                if (upgraded)
                        log_notice("Machine %s is upgraded to %s: node %s is %s.",
                                   strna(obj_get_str(a->state, "desired.machine.name")),
                                   strna(upgrade_version(a)), strna(obj_get_str(p, "nodeName")),
                                   a->node_ready ? "Ready" : "not Ready");
                else
                        log_notice("Machine %s is provisioned: node %s is %s.",
                                   strna(obj_get_str(a->state, "desired.machine.name")),
                                   strna(obj_get_str(p, "nodeName")),
                                   a->node_ready ? "Ready" : "not Ready");
                set_activity(a, "%s, node %s %s", upgraded ? "upgraded" : "provisioned",
                             strna(obj_get_str(p, "nodeName")),
                             a->node_ready ? "Ready" : "not Ready yet");
                send_status(a, NULL);
                send_report(a);
                if (!upgraded && upgrade_wanted(a)) {
                        /* Asked to upgrade while still provisioning: now is the time. */
                        int64_t g = applied_generation(a);
                        if (start_upgrade_plan(a, g) >= 0 && save(a) >= 0) {
                                send_status(a, NULL);
                                plan_advance(a);
                                return;
                        }
                }
                schedule_node_check(a, a->c.node_check_usec);
        } else {
                obj_map_set_str(p, "state", "Idle");
                (void)save(a);
                log_event(LOG_NOTICE, ANVIL_MESSAGE_HOST_RESET, "Host reset: back to idle.");
                set_activity(a, "idle");
                send_status(a, NULL);
                log_field_set(LOG_FIELD_MACHINE, NULL);
                log_field_set(LOG_FIELD_CLUSTER, NULL);
        }
}

static void plan_advance(Agent *a) {
        if (a->exec || a->restart || a->users)
                return;
        if (!plan_active(a))
                return;
        if (streq_ptr(obj_get_str(plan(a), "action"), "Provision") && !a->bundle) {
                char err[512];
                int r = open_bundle(a, &a->bundle, err, sizeof(err));
                if (r < 0) {
                        plan_fail(a, "open-bundle", r, err, NULL);
                        return;
                }
        }
        size_t index;
        Obj *step = current_step(a, &index);
        if (!step) {
                plan_complete(a);
                return;
        }
        step_start(a, step, index);
}

/* A new desired generation: persist, acknowledge, (re)plan. */
static void handle_desired(Agent *a, const Obj *body) {
        int64_t g = 0;
        obj_get_int(body, "generation", &g);
        const char *action = obj_get_str(body, "action");
        int64_t have = applied_generation(a);
        if (g <= have) {
                /* A duplicate or a replay: never applied twice. Re-acknowledge what we have. */
                send_ack(a, have);
                log_debug("Ignoring generation %lld: already at %lld.", (long long)g,
                          (long long)have);
                return;
        }

        _cleanup_(obj_freep) Obj *desired = obj_new_map();
        if (!desired || obj_map_set_str(desired, "action", action) < 0)
                return;
        if (obj_map_get(body, "machine"))
                obj_map_set(desired, "machine", obj_dup(obj_map_get(body, "machine")));
        if (obj_map_get(body, "bootstrap"))
                obj_map_set(desired, "bootstrap", obj_dup(obj_map_get(body, "bootstrap")));
        if (obj_map_get(body, "upgrade"))
                obj_map_set(desired, "upgrade", obj_dup(obj_map_get(body, "upgrade")));
        const char *old_bundle = obj_get_str(a->state, "desired.bootstrap");
        bool same_bundle = streq_ptr(old_bundle, obj_get_str(body, "bootstrap"));
        const char *old_machine = obj_get_str(a->state, "desired.machine.name");
        const char *new_machine = obj_get_str(body, "machine.name");
        bool same_machine = streq_ptr(old_machine, new_machine);
        const char *st = plan_state(a);
        const char *old_action = obj_get_str(plan(a), "action");

        /* Decide the plan before we overwrite anything. */
        enum { KEEP, PROVISION, RESET_THEN_PROVISION, DEPROVISION, IDLE, UPGRADE } next = KEEP;
        bool holds = action_holds_machine(old_action);
        if (streq_ptr(action, "Provision")) {
                if (holds && same_machine && same_bundle) {
                        /* The same machine: carry on (or stay done/failed), unless a new
                         * in-place upgrade is asked for (decided below, on the new desired). */
                        if (streq(st, "Provisioned") ||
                            (streq_ptr(old_action, "Upgrade") &&
                             (streq(st, "Failed") || streq(st, "Upgrading"))))
                                next = UPGRADE;
                } else if (holds && (streq(st, "Provisioned") || streq(st, "Failed") ||
                                     streq(st, "Provisioning") || streq(st, "Upgrading")))
                        next = RESET_THEN_PROVISION;
                else
                        next = PROVISION;
        } else if (streq_ptr(action, "Deprovision")) {
                if (!(streq_ptr(old_action, "Deprovision") && streq(st, "Idle")) &&
                    !(streq_ptr(old_action, "Deprovision") && streq(st, "Deprovisioning")))
                        next = DEPROVISION;
        } else {
                if (streq(st, "Provisioned") || streq(st, "Provisioning") || streq(st, "Upgrading"))
                        log_warning("Told to be idle while holding machine %s: keeping it until "
                                    "the coordinator asks for a reset.",
                                    strna(old_machine));
                else
                        next = IDLE;
        }

        obj_map_set(a->state, "desired", TAKE_PTR(desired));
        obj_map_set_int(a->state, "generation", g);
        if (next == UPGRADE && !upgrade_wanted(a))
                next = KEEP;
        if (next == UPGRADE) {
                if (start_upgrade_plan(a, g) < 0)
                        return;
        } else if (next != KEEP) {
                a->bundle = obj_free(a->bundle);
                a->reported = false;
                a->node_ready = false;
                a->node_wait_started = 0;
                _cleanup_(obj_freep) Obj *p = obj_new_map();
                Obj *steps = p ? obj_map_ensure_list(p, "steps") : NULL;
                if (!steps)
                        return;
                const char *pstate = next == IDLE          ? "Idle"
                                     : next == DEPROVISION ? "Deprovisioning"
                                                           : "Provisioning";
                obj_map_set_int(p, "generation", g);
                obj_map_set_str(p, "action", next == IDLE ? "Idle" : action);
                obj_map_set_str(p, "state", pstate);
                if (new_machine)
                        obj_map_set_str(p, "machine", new_machine);
                int r = 0;
                if (next == DEPROVISION || next == RESET_THEN_PROVISION)
                        r = build_reset_steps(a, steps);
                if (r >= 0 && (next == PROVISION || next == RESET_THEN_PROVISION)) {
                        char err[512];
                        obj_map_set(a->state, "plan", TAKE_PTR(p));
                        r = open_bundle(a, &a->bundle, err, sizeof(err));
                        p = obj_map_take(a->state, "plan");
                        steps = obj_map_get(p, "steps");
                        const char *version = obj_get_str(a->state, "desired.machine.version");
                        if (r >= 0 && version) {
                                /* Kept with the plan: a later desired version is an upgrade. */
                                obj_map_set_str(p, "version", version);
                                r = build_version_steps(a, version, steps);
                        }
                        if (r >= 0) {
                                r = build_provision_steps(a->bundle, steps);
                                _cleanup_free_ char *node =
                                        node_name_of(a->bundle, obj_get_str(a->facts, "hostname"));
                                if (node)
                                        obj_map_set_str(p, "nodeName", node);
                        } else {
                                /* Keep the failure visible: the plan fails at once. */
                                obj_map_set_str(p, "state", "Failed");
                                _cleanup_(obj_freep) Obj *f = obj_new_map();
                                if (f && obj_map_set_str(f, "step", "open-bundle") >= 0 &&
                                    obj_map_set_int(f, "exitCode", -1) >= 0 &&
                                    obj_map_set_str(f, "message", err) >= 0)
                                        obj_map_set(p, "failure", TAKE_PTR(f));
                                log_event(LOG_ERR, ANVIL_MESSAGE_STEP_FAILED,
                                          "Cannot use the bootstrap data of generation %lld: %s",
                                          (long long)g, err);
                                r = 0;
                        }
                }
                if (r < 0)
                        return;
                obj_map_set(a->state, "plan", TAKE_PTR(p));
                a->plan_serial++;
        } else if (plan(a))
                obj_map_set_int(plan(a), "generation", g);

        /* On disk before we say anything. */
        if (save(a) < 0)
                return;
        {
                char point[64]; /* "desired-Provision:after": after persisting, before the ACK */
                snprintf(point, sizeof(point), "desired-%s", strempty(action));
                test_crash_point(point, "after");
        }
        set_log_context(a);
        log_event(LOG_INFO, ANVIL_MESSAGE_DESIRED, "Applied desired generation %lld: %s%s%s.",
                  (long long)g, strna(action), new_machine ? " machine " : "",
                  strempty(new_machine));
        send_ack(a, g);
        send_status(a, NULL);
        if (streq(plan_state(a), "Provisioned"))
                send_report(a);
        plan_advance(a);
}

/* ---- the link ---- */

/* The agent has one connection at a time: the enrollment connection (its CURVE key derived
 * from the token, only ENROLL may be sent on it) until the coordinator says ENROLLED, then
 * the host's own (its key pair in state-dir). If the coordinator refuses the host's key
 * (revoked, or the Host was deleted), an agent that has a token enrolls again; the answer
 * says why it cannot, if it cannot. */
static int link_start(Agent *a);

static int on_switch(sd_event_source *s, void *userdata) {
        Agent *a = userdata;
        (void)s;
        int r = link_start(a);
        if (r < 0)
                return sd_event_exit(a->event, r);
        return 0;
}

/* Replaces the link from the event loop, never from inside one of its callbacks. */
static void schedule_link_switch(Agent *a) {
        if (!a->switch_source)
                (void)sd_event_add_defer(a->event, &a->switch_source, on_switch, a);
        sd_event_source_set_enabled(a->switch_source, SD_EVENT_ONESHOT);
}

static void arm_enroll_timer(Agent *a, uint64_t usec);

static void send_enroll(Agent *a) {
        _cleanup_(obj_freep) Obj *b = NULL;
        int r = link_enroll_body(&a->keys, a->c.coordinator_key, a->enroll_keys.public_z85,
                                 a->facts, &b);
        if (r < 0) {
                log_error_errno(r, "Failed to make the proof of this host's key: %m");
                return;
        }
        /* The disk is the truth about the machine: a Host deleted while it held a machine
         * (or whose reset failed) comes back needing a reset, not as a clean host. */
        bool needs_reset = !streq(plan_state(a), "Idle") || kubeadm_touched(a);
        if (needs_reset && obj_map_set_bool(b, "needsReset", true) < 0)
                return;
        char fp[64];
        key_fingerprint(a->keys.public_z85, fp, sizeof(fp));
        log_info("Enrolling with the coordinator (product UUID %s, key %s%s).",
                 strna(obj_get_str(a->facts, "productUUID")), fp,
                 needs_reset ? "; this host needs a reset first" : "");
        /* If neither ENROLLED nor REFUSED comes back (lost, or our send was dropped), ask
         * again: enrolling twice is answered, not applied, twice. */
        arm_enroll_timer(a, send_msg(a, MSG_ENROLL, b) < 0 ? RESYNC_SOON_USEC : ENROLL_ANSWER_USEC);
}

static void on_connected(void *userdata) {
        Agent *a = userdata;
        agent_metrics_link(a->metrics, true);
        a->ever_connected = true;
        a->auth_failed_logged = false;
        if (a->enrolling)
                send_enroll(a);
        else {
                send_hello(a);
                send_heartbeat(a); /* health may have changed while we were away */
        }
        notify_status(a);
}

static void on_disconnected(void *userdata) {
        Agent *a = userdata;
        agent_metrics_link(a->metrics, false);
        notify_status(a);
}

static void on_auth_failed(void *userdata) {
        Agent *a = userdata;
        /* libzmq retries by itself with backoff: say it once per episode. */
        bool first = !a->auth_failed_logged;
        a->auth_failed_logged = true;
        if (a->enrolling) {
                if (first)
                        log_error("Enrollment refused: TokenUnknown: the coordinator does not know "
                                  "this enrollment token (mistyped, deleted, or for another "
                                  "coordinator); create one with 'anvilctl token create'.");
                set_activity(a, "enrollment refused: TokenUnknown");
                return;
        }
        if (first)
                log_error("The coordinator refused this host's key: the host was revoked or "
                          "deleted, or this machine enrolled again with another key.%s",
                          a->c.token ? " Enrolling again with the configured token."
                                     : " Enroll it again with a new token (anvil.token=, "
                                       "--token or token: in the configuration).");
        set_activity(a, "the coordinator refused this host's key (revoked, deleted or re-keyed)");
        if (a->c.token) {
                a->want_enroll = true;
                schedule_link_switch(a);
        }
}

static int on_enroll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        (void)s;
        (void)usec;
        if (a->enrolling && link_connected(a->link))
                send_enroll(a);
        return 0;
}

static void arm_enroll_timer(Agent *a, uint64_t usec) {
        if (!a->enroll_timer)
                (void)sd_event_add_time_relative(a->event, &a->enroll_timer, CLOCK_MONOTONIC, usec,
                                                 USEC_PER_SEC / 4, on_enroll_timer, a);
        else {
                sd_event_source_set_time_relative(a->enroll_timer, usec);
                sd_event_source_set_enabled(a->enroll_timer, SD_EVENT_ONESHOT);
        }
}

static void on_message(MsgType type, const Obj *body, void *userdata) {
        Agent *a = userdata;
        agent_metrics_contact(a->metrics);
        if (a->enrolling != (type == MSG_ENROLLED || type == MSG_REFUSED)) {
                log_warning("Ignoring %s on the %s connection.", msg_type_to_string(type),
                            a->enrolling ? "enrollment" : "host's");
                return;
        }
        switch (type) {
        case MSG_ENROLLED: {
                const char *host = obj_get_str(body, "host");
                obj_map_set_str(a->state, "host", host);
                obj_map_set_str(a->state, "coordinator", a->c.coordinator);
                /* Generations count the changes of one Host object; a new enrollment is a
                 * new Host, whose generations start again. What we hold (the plan) stays. */
                obj_map_set_int(a->state, "generation", 0);
                if (save(a) < 0)
                        return;
                log_field_set(LOG_FIELD_HOST, host);
                set_log_context(a);
                log_event(LOG_NOTICE, ANVIL_MESSAGE_ENROLLED, "Enrolled as host %s.", host);
                set_activity(a, "idle");
                a->enroll_backoff = 0;
                a->want_enroll = false;
                if (a->enroll_timer)
                        sd_event_source_set_enabled(a->enroll_timer, SD_EVENT_OFF);
                schedule_link_switch(a);
                break;
        }
        case MSG_REFUSED: {
                a->enroll_backoff = a->enroll_backoff ? a->enroll_backoff * 2 : ENROLL_RETRY_MIN;
                if (a->enroll_backoff > ENROLL_RETRY_MAX)
                        a->enroll_backoff = ENROLL_RETRY_MAX;
                log_event(LOG_ERR, ANVIL_MESSAGE_ENROLL_REFUSED,
                          "Enrollment refused: %s: %s (retrying in %llus)",
                          strna(obj_get_str(body, "reason")), strna(obj_get_str(body, "message")),
                          (unsigned long long)(a->enroll_backoff / USEC_PER_SEC));
                set_activity(a, "enrollment refused: %s (retrying in %llus)",
                             strna(obj_get_str(body, "reason")),
                             (unsigned long long)(a->enroll_backoff / USEC_PER_SEC));
                arm_enroll_timer(a, a->enroll_backoff);
                break;
        }
        case MSG_DESIRED:
                handle_desired(a, body);
                break;
        case MSG_REVOKED:
                log_error("The coordinator cut this host off: %s.",
                          strna(obj_get_str(body, "reason")));
                set_activity(a, "revoked by the coordinator: %s",
                             strna(obj_get_str(body, "reason")));
                break;
        case MSG_COMMAND:
                command_runner_submit(a->commands, body,
                                      streq(plan_state(a), "Provisioned")
                                              ? obj_get_str(plan(a), "nodeName")
                                              : NULL);
                break;
        default:
                break;
        }
}

static void on_command_result(const Obj *result, void *userdata) {
        Agent *a = userdata;
        send_msg(a, MSG_RESULT, (Obj *)result);
}

static int link_start(Agent *a) {
        a->link = link_free(a->link);
        a->enrolling = a->want_enroll || !obj_get_str(a->state, "host");
        a->auth_failed_logged = false;
        if (a->enrolling && !a->have_enroll_keys) {
                if (!a->c.token)
                        return log_error_errno(-ENOKEY,
                                               "This host is not enrolled and has no enrollment "
                                               "token: set token in /etc/anvil/agent.yaml, "
                                               "--token, or anvil.token= on the kernel command "
                                               "line.");
                int r = enroll_keypair_from_token(a->c.token, &a->enroll_keys);
                if (r < 0)
                        return log_error_errno(r, "Failed to derive the enrollment key: %m");
                a->have_enroll_keys = true;
        }
        LinkCallbacks cb = {.connected = on_connected,
                            .disconnected = on_disconnected,
                            .auth_failed = on_auth_failed,
                            .message = on_message};
        int r = link_new(a->event, a->c.coordinator, a->c.coordinator_key,
                         a->enrolling ? &a->enroll_keys : &a->keys, &cb, a, &a->link);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the coordinator link: %m");
        log_debug("Connecting to %s %s.", a->c.coordinator,
                  a->enrolling ? "to enroll" : "as this host");
        return 0;
}

/* ---- heartbeats: liveness, health, facts when they change ---- */

/* Facts are collected again every facts-interval; a change is sent with the next heartbeat
 * (and is in every HELLO). */
static void refresh_facts(Agent *a) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (a->facts_checked && now < a->facts_checked + a->c.facts_interval_usec)
                return;
        a->facts_checked = now;
        _cleanup_(obj_freep) Obj *facts = NULL;
        int r = facts_collect(&a->c, &facts);
        if (r < 0) {
                log_debug_errno(r, "Failed to collect facts again, keeping the old ones: %m");
                return;
        }
        if (obj_equal(facts, a->facts))
                return;
        log_info("Hardware facts changed; reporting them.");
        obj_free(a->facts);
        a->facts = TAKE_PTR(facts);
        a->facts_dirty = true;
}

/* A heartbeat: liveness, the applied generation, the units' health under systemd, and the
 * facts when they changed; after a dropped message, a HELLO instead (it restates all). */
static void send_heartbeat(Agent *a) {
        if (a->enrolling || !a->link || !link_connected(a->link) || !obj_get_str(a->state, "host"))
                return;
        refresh_facts(a);
        if (a->resync) {
                send_hello(a);
                return;
        }
        _cleanup_(obj_freep) Obj *b = obj_new_map();
        if (!b || obj_map_set_int(b, "seq", (int64_t)++a->hb_seq) < 0 ||
            obj_map_set_int(b, "generation", applied_generation(a)) < 0)
                return;
        /* Under systemd the watched units' states; without it, whether the plan failed. No
         * load average: it changes every time, and a changed health is a store write. */
        Obj *health = a->last_health ? obj_dup(a->last_health) : obj_new_map();
        if (!health ||
            (!a->last_health &&
             obj_map_set_bool(health, "healthy", !streq(plan_state(a), "Failed")) < 0) ||
            obj_map_set(b, "health", health) < 0)
                return;
        if (a->facts_dirty && obj_map_set(b, "facts", obj_dup(a->facts)) < 0)
                return;
        if (send_msg(a, MSG_HEARTBEAT, b) >= 0) {
                a->facts_dirty = false;
                agent_metrics_heartbeat(a->metrics);
        }
}

static void schedule_resync(Agent *a) {
        if (a->resync)
                return;
        a->resync = true;
        if (a->heartbeat_timer)
                sd_event_source_set_time_relative(a->heartbeat_timer, RESYNC_SOON_USEC);
}

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        (void)usec;
        sd_event_source_set_time_relative(s, a->c.heartbeat_usec);
        send_heartbeat(a);
        return 0;
}

/* A watched unit changed: tell the coordinator now, not at the next heartbeat. */
static void on_health_changed(Health *h, void *userdata) {
        Agent *a = userdata;
        _cleanup_(obj_freep) Obj *now = health_summary(h);
        if (!now || obj_equal(now, a->last_health))
                return;
        bool was = obj_get_bool(a->last_health, "healthy", true);
        bool is = obj_get_bool(now, "healthy", false);
        if (!is) {
                /* Name what is wrong, once per change. */
                char why[512] = "";
                size_t n = 0;
                const Obj *units = obj_map_get(now, "units");
                for (size_t i = 0; i < obj_len(units) && n < sizeof(why); i++) {
                        const ObjEntry *e = &units->map.entries[i];
                        if (health_unit_ok(obj_get_str(e->value, "loadState"),
                                           obj_get_str(e->value, "activeState")))
                                continue;
                        int k = snprintf(why + n, sizeof(why) - n, "%s%s %s/%s/%s", n ? ", " : "",
                                         e->key, strna(obj_get_str(e->value, "loadState")),
                                         strna(obj_get_str(e->value, "activeState")),
                                         strna(obj_get_str(e->value, "subState")));
                        if (k > 0)
                                n += (size_t)k;
                }
                log_warning("Reporting this host unhealthy: %s.", why);
        } else if (!was)
                log_info("All watched units are active again: reporting this host healthy.");
        obj_free(a->last_health);
        a->last_health = TAKE_PTR(now);
        send_heartbeat(a);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Agent *a = userdata;
        log_info("Received %s, stopping.", strsignal((int)si->ssi_signo));
        /* Say goodbye, so that the coordinator stops counting on this host at once rather
         * than after the heartbeat grace (a crash still takes the grace). */
        if (!a->enrolling && a->link && link_connected(a->link)) {
                _cleanup_(obj_freep) Obj *b = obj_new_map();
                if (b && obj_map_set_str(b, "reason", "Stopping") >= 0 &&
                    link_send_last(a->link, MSG_BYE, b, BYE_LINGER_MSEC) >= 0)
                        log_debug("Told the coordinator this host is stopping.");
        }
        (void)sd_notify(false, "STOPPING=1");
        set_activity(a, "stopping");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static bool strv_equal(char *const *x, char *const *y) {
        size_t n = strv_length(x);
        if (n != strv_length(y))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(x[i], y[i]))
                        return false;
        return true;
}

static void swap_str(char **a, char **b) {
        char *t = *a;
        *a = *b;
        *b = t;
}

/* A reload cannot change who this agent is or where it lives: say which changed settings
 * wait for a restart, rather than leave the operator thinking they apply. */
static void warn_restart_only(Agent *a, const AgentConfig *n) {
        static const struct {
                const char *name;
                size_t off;
        } keys[] = {
                {"coordinator", offsetof(AgentConfig, coordinator)},
                {"coordinator-key", offsetof(AgentConfig, coordinator_key)},
                {"state-dir", offsetof(AgentConfig, state_dir)},
                {"host-root", offsetof(AgentConfig, host_root)},
                {"product-uuid", offsetof(AgentConfig, product_uuid)},
                {"hostname", offsetof(AgentConfig, hostname)},
        };
        char changed[256] = "";
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *was = *(char *const *)((const char *)&a->c + keys[i].off),
                           *now = *(char *const *)((const char *)n + keys[i].off);
                if (!streq_ptr(was, now))
                        snprintf(changed + strlen(changed), sizeof(changed) - strlen(changed),
                                 "%s%s", changed[0] ? ", " : "", keys[i].name);
        }
        if (!strv_equal(a->c.cleanup, n->cleanup))
                snprintf(changed + strlen(changed), sizeof(changed) - strlen(changed), "%s%s",
                         changed[0] ? ", " : "", "cleanup-commands");
        if (changed[0])
                log_warning("Reload of %s: %s changed and takes effect only after 'systemctl "
                            "restart anvil-agent'.",
                            a->src.path, changed);
}

/* SIGHUP: read the configuration again and apply what can change while running: log level,
 * heartbeat interval, watched units, environment, kubeadm/kubectl paths, timeouts, and the
 * enrollment token. Identity (coordinator, its key, state directory, host root, product
 * UUID, host name) and the cleanup commands need a restart. A bad file changes nothing. */
static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Agent *a = userdata;
        (void)s;
        (void)si;
        (void)sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu",
                         (unsigned long long)now_usec(CLOCK_MONOTONIC));
        char saved[sizeof(a->activity)];
        memcpy(saved, a->activity, sizeof(saved));
        set_activity(a, "reloading %s", a->src.path);

        _cleanup_(agent_config_done) AgentConfig n = {0};
        _cleanup_free_ char *error = NULL;
        int r = agent_config_load(&a->src, &n, &error);
        if (r < 0) {
                _cleanup_free_ char *line = error ? config_errors_one_line(error) : NULL;
                log_error_errno(r, "Not reloading, the running configuration stays: %s",
                                line ? line : strerror(-r));
        } else {
                warn_restart_only(a, &n);
                int level = LOG_INFO;
                const char *env = getenv("ANVIL_LOG_LEVEL");
                if (n.has_log_level)
                        level = n.log_level;
                else if (env && log_level_from_string(env) >= 0)
                        level = log_level_from_string(env);
                log_set_max_level(level);
                if (n.heartbeat_usec != a->c.heartbeat_usec) {
                        a->c.heartbeat_usec = n.heartbeat_usec;
                        (void)sd_event_source_set_time_relative(a->heartbeat_timer,
                                                                n.heartbeat_usec);
                }
                if (!strv_equal(n.units, a->c.units)) {
                        char **t = a->c.units;
                        a->c.units = n.units;
                        n.units = t;
                        if (a->health && (r = health_set_units(a->health, a->c.units)) < 0)
                                log_warning_errno(r, "Cannot watch the new units: %m");
                }
                char **e = a->c.environment;
                a->c.environment = n.environment;
                n.environment = e;
                swap_str(&a->c.kubeadm, &n.kubeadm);
                swap_str(&a->c.kubectl, &n.kubectl);
                /* A new enrollment token is tried at once (it only matters until enrolled). */
                bool new_token = !streq_ptr(n.token, a->c.token);
                swap_str(&a->c.token, &n.token);
                if (new_token && (a->enrolling || a->want_enroll)) {
                        /* The enrollment key is derived from the token: connect again with the
                         * new one. */
                        a->enroll_backoff = 0;
                        a->have_enroll_keys = false;
                        keypair_wipe(&a->enroll_keys);
                        schedule_link_switch(a);
                }
                a->c.command_timeout_usec = n.command_timeout_usec;
                a->c.kubeadm_timeout_usec = n.kubeadm_timeout_usec;
                log_info("Reloaded %s: log level %s, heartbeat every %llums, %zu watched units, "
                         "kubeadm %s.",
                         a->src.path, log_level_to_string(level),
                         (unsigned long long)(a->c.heartbeat_usec / USEC_PER_MSEC),
                         strv_length(a->c.units), a->c.kubeadm);
        }
        memcpy(a->activity, saved, sizeof(saved));
        (void)sd_notify(false, "READY=1");
        notify_status(a);
        return 0;
}

#ifdef ANVIL_TEST_HOOKS
/* SIGUSR2 blocks the event loop for good, so a test can watch systemd's watchdog kill the
 * agent and restart it. */
static int on_test_hang(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void)s;
        (void)si;
        (void)userdata;
        log_warning("Test hook: blocking the event loop until the watchdog kills us.");
        for (;;)
                sleep(3600);
        return 0;
}

static void on_test_restarted(const char *unit, int error, const char *result, void *userdata) {
        (void)userdata;
        log_notice("Test hook: restart of %s finished: %s (%d).", unit, result, error);
}

/* SIGUSR1 restarts the first watched unit through health_restart_unit(). */
static int on_test_restart(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Agent *a = userdata;
        (void)s;
        (void)si;
        if (!a->c.units || !a->c.units[0])
                return 0;
        int r = health_restart_unit(a->health, a->c.units[0], on_test_restarted, a);
        if (r < 0)
                log_warning_errno(r, "Test hook: cannot restart %s: %m", a->c.units[0]);
        return 0;
}
#endif

/* ---- setup ---- */

Agent *agent_free(Agent *a) {
        if (!a)
                return NULL;
        a->exec = exec_free(a->exec);
        a->restart = unit_restart_free(a->restart);
        a->users = users_job_free(a->users);
        a->commands = command_runner_free(a->commands);
        a->health = health_free(a->health);
        a->last_health = obj_free(a->last_health);
        a->link = link_free(a->link);
        a->metrics = agent_metrics_free(a->metrics);
        sd_event_source_disable_unref(a->heartbeat_timer);
        sd_event_source_disable_unref(a->node_timer);
        sd_event_source_disable_unref(a->enroll_timer);
        sd_event_source_disable_unref(a->switch_source);
        obj_free(a->state);
        obj_free(a->facts);
        obj_free(a->bundle);
        obj_free(a->node_conditions);
        free(a->state_path);
        free(a->kubelet_version);
        keypair_wipe(&a->keys);
        keypair_wipe(&a->enroll_keys);
        agent_config_done(&a->c);
        agent_config_source_done(&a->src);
        sd_event_unref(a->event);
        free(a);
        return NULL;
}

int agent_new(AgentConfig *config, AgentConfigSource *src, Agent **ret) {
        _cleanup_(agent_freep) Agent *a = calloc(1, sizeof(Agent));
        if (!a)
                return log_oom();
        a->c = *config;
        *config = (AgentConfig){0};
        if (src) {
                a->src = *src;
                *src = (AgentConfigSource){0};
        }
        int r;

        if (!a->c.coordinator || !a->c.coordinator_key)
                return log_error_errno(-EINVAL,
                                       "No coordinator configured: set coordinator and "
                                       "coordinator-key in /etc/anvil/agent.yaml, pass "
                                       "--coordinator/--coordinator-key, or anvil.coordinator= "
                                       "and anvil.coordinator_key= on the kernel command line.");
        if (!key_z85_valid(a->c.coordinator_key))
                return log_error_errno(-EINVAL, "coordinator-key is not a 40-character Z85 CURVE "
                                                "public key (see 'anvilctl info').");
        r = mkdir_p(a->c.state_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m",
                                       a->c.state_dir);
        _cleanup_free_ char *key_path = strjoin(a->c.state_dir, "/agent.key");
        a->state_path = strjoin(a->c.state_dir, "/state.yaml");
        if (!key_path || !a->state_path)
                return log_oom();
        bool created;
        r = keypair_load_or_create(key_path, &a->keys, &created);
        if (r == -EPERM) {
                mode_t mode = 0;
                (void)key_file_check(key_path, &mode);
                return log_error_errno(r,
                                       "Key file %s has mode %04o: group or others may read "
                                       "it. Refusing to use an unprotected private key; fix "
                                       "with: chmod 600 %s",
                                       key_path, (unsigned)mode, key_path);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to load the agent key %s: %m", key_path);
        if (created)
                log_info("Created this host's key pair in %s.", key_path);

        char err[512];
        r = state_load(a->state_path, &a->state, err, sizeof(err));
        if (r == -EBADMSG)
                return log_error_errno(r,
                                       "Refusing to start with a damaged state file: %s. "
                                       "Inspect it; remove it only if this host is not in "
                                       "use (it will then enroll again).",
                                       err);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", a->state_path);
        r = facts_collect(&a->c, &a->facts);
        if (r == -ENODATA)
                return log_error_errno(r, "Cannot read /sys/class/dmi/id/product_uuid (run as "
                                          "root, or set product-uuid for hosts with broken DMI "
                                          "data).");
        if (r < 0)
                return log_error_errno(r, "Failed to collect hardware facts: %m");
        /* Configured values were checked with the configuration; these come from the
         * machine (DMI, gethostname()), and name the Host and its node. */
        const char *uuid = obj_get_str(a->facts, "productUUID");
        if (!product_uuid_valid(uuid, true))
                return log_error_errno(-EINVAL,
                                       "The product UUID '%s' (from "
                                       "/sys/class/dmi/id/product_uuid) is not a UUID: set "
                                       "product-uuid in the configuration or --product-uuid.",
                                       strna(uuid));
        const char *hn = obj_get_str(a->facts, "hostname");
        if (!hostname_valid(hn))
                return log_error_errno(-EINVAL,
                                       "The host name '%s' is not a valid DNS-1123 subdomain "
                                       "(lowercase letters, digits, '-' and '.', as Kubernetes "
                                       "node names): set hostname in the configuration or "
                                       "--hostname.",
                                       strna(hn));
        log_field_set(LOG_FIELD_HOST, obj_get_str(a->state, "host"));
        set_log_context(a);

        r = sd_event_default(&a->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        (void)sd_event_set_watchdog(a->event, true);
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
#ifdef ANVIL_TEST_HOOKS
        sigaddset(&ss, SIGUSR1);
        sigaddset(&ss, SIGUSR2);
#endif
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(a->event, NULL, SIGTERM, on_signal, a)) < 0 ||
            (r = sd_event_add_signal(a->event, NULL, SIGINT, on_signal, a)) < 0 ||
            (a->src.path && (r = sd_event_add_signal(a->event, NULL, SIGHUP, on_reload, a)) < 0))
                return log_error_errno(r, "Failed to watch signals: %m");
#ifdef ANVIL_TEST_HOOKS
        if ((r = sd_event_add_signal(a->event, NULL, SIGUSR1, on_test_restart, a)) < 0 ||
            (r = sd_event_add_signal(a->event, NULL, SIGUSR2, on_test_hang, a)) < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
#endif

        r = command_runner_new(a->event, &a->c, on_command_result, a, &a->commands);
        if (r < 0)
                return log_oom();

        if (a->c.metrics_listen) {
                r = agent_metrics_new(a->event, a->c.metrics_listen, &a->metrics);
                if (r == -EINVAL)
                        return log_error_errno(r, "Invalid metrics-listen '%s': use IPv4ADDR:PORT.",
                                               a->c.metrics_listen);
                if (r < 0)
                        return log_error_errno(r, "Failed to serve metrics on %s: %m",
                                               a->c.metrics_listen);
                agent_metrics_state(a->metrics, plan_state(a), applied_generation(a),
                                    obj_get_str(a->state, "host"));
                log_info("Serving metrics on http://%s/metrics.", a->c.metrics_listen);
        }

        r = link_start(a);
        if (r < 0)
                return r;

        /* First heartbeat at a random point of the interval: no herd. */
        uint64_t first = a->c.heartbeat_usec / 2 +
                         randombytes_uniform((uint32_t)(a->c.heartbeat_usec / USEC_PER_MSEC)) *
                                 USEC_PER_MSEC;
        r = sd_event_add_time_relative(a->event, &a->heartbeat_timer, CLOCK_MONOTONIC, first,
                                       USEC_PER_SEC / 4, on_heartbeat, a);
        if (r >= 0)
                r = sd_event_source_set_enabled(a->heartbeat_timer, SD_EVENT_ON);
        if (r < 0)
                return log_error_errno(r, "Failed to add the heartbeat timer: %m");

        r = health_new(a->event, a->c.units, on_health_changed, a, &a->health);
        if (r < 0)
                return log_error_errno(r, "Failed to set up unit health: %m");
        *ret = TAKE_PTR(a);
        return 0;
}

int agent_run(Agent *a) {
        const char *host = obj_get_str(a->state, "host");
        log_info("Agent %s starting: coordinator %s, state %s, host root %s.", ANVIL_VERSION,
                 a->c.coordinator, a->c.state_dir, a->c.host_root);
        /* Ready once the loop runs: the agent serves its host even while the coordinator is
         * away (waiting for it here would fail the start of every agent in an outage). */
        (void)sd_notify(false, "READY=1");
        if (!host)
                set_activity(a, "connecting to %s to enroll", a->c.coordinator);
        else if (streq(plan_state(a), "Provisioned"))
                set_activity(a, "provisioned, node %s", strna(obj_get_str(plan(a), "nodeName")));
        else if (streq(plan_state(a), "Failed"))
                set_activity(a, "step %s failed", strna(obj_get_str(plan(a), "failure.step")));
        else
                set_activity(a, "%s", streq(plan_state(a), "Idle") ? "idle" : "resuming");
        /* Resume an interrupted plan. */
        if (plan_active(a))
                plan_advance(a);
        else if (streq(plan_state(a), "Provisioned"))
                schedule_node_check(a, NODE_POLL_FAST_USEC);
        return sd_event_loop(a->event);
}
