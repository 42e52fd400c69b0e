/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <malloc.h>
#include <sodium.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <zmq.h>

#include "api.h"
#include "commands.h"
#include "config.h"
#include "controllers/controllers.h"
#include "coordinator-config.h"
#include "enroll.h"
#include "fanout.h"
#include "fileio.h"
#include "hostpool.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "watch.h"
#include "wire.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

extern const KindInfo kind_host, kind_anvilmachine, kind_machine, kind_machinedeployment,
        kind_kubeadmcontrolplane;

void manager_config_done(ManagerConfig *c) {
        free(c->listen);
        free(c->advertise);
        free(c->admin_socket);
        free(c->state_dir);
        free(c->key_file);
        free(c->metrics_listen);
        free(c->config_path);
        *c = (ManagerConfig){0};
}

static void outbox_clear(Manager *m) {
        for (size_t i = 0; i < m->n_outbox; i++)
                free(m->outbox[i].data);
        m->n_outbox = 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        outbox_clear(m);
        free(m->outbox);
        m->router_src = zsource_free(m->router_src);
        m->zap_src = zsource_free(m->zap_src);
        m->admin_src = zsource_free(m->admin_src);
        m->queue = queue_free(m->queue);
        m->fanout = fanout_free(m->fanout);
        m->pool = hostpool_free(m->pool);
        m->commands = commands_free(m->commands);
        m->metrics = metrics_free(m->metrics);
        sd_event_source_disable_unref(m->commit_source);
        sd_event_source_disable_unref(m->resync_timer);
        sd_event_source_disable_unref(m->status_timer);
        if (m->store)
                (void)store_commit(m->store);
        m->reg = registry_free(m->reg);
        m->store = store_free(m->store);
        m->watch = watch_hub_free(m->watch); /* after the last commit's events */
        if (m->router)
                zmq_close(m->router);
        if (m->admin)
                zmq_close(m->admin);
        if (m->zap)
                zmq_close(m->zap);
        if (m->zctx)
                zmq_ctx_term(m->zctx);
        if (m->config.admin_socket)
                unlink(m->config.admin_socket);
        sd_event_unref(m->event);
        keypair_wipe(&m->keys);
        manager_config_done(&m->config);
        free(m);
        return NULL;
}

int manager_send_after_commit(Manager *m, void *sock, const void *rid, size_t rid_len, char *data,
                              size_t size) {
        if (rid_len > sizeof(m->outbox[0].rid)) {
                free(data);
                return -EINVAL;
        }
        if (m->n_outbox == m->cap_outbox) {
                size_t nc = m->cap_outbox ? m->cap_outbox * 2 : 64;
                OutMsg *n = realloc(m->outbox, nc * sizeof(OutMsg));
                if (!n) {
                        free(data);
                        return -ENOMEM;
                }
                m->outbox = n;
                m->cap_outbox = nc;
        }
        OutMsg *o = &m->outbox[m->n_outbox++];
        o->sock = sock;
        memcpy(o->rid, rid, rid_len);
        o->rid_len = rid_len;
        o->data = data;
        o->size = size;
        sd_event_source_set_enabled(m->commit_source, SD_EVENT_ON);
        return 0;
}

static void outbox_flush(Manager *m) {
        for (size_t i = 0; i < m->n_outbox; i++) {
                OutMsg *o = &m->outbox[i];
                if (zmq_send(o->sock, o->rid, o->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                    zmq_send(o->sock, o->data, o->size, ZMQ_DONTWAIT) < 0)
                        log_debug_errno(negative_errno(), "Dropping reply to a gone peer: %m");
        }
        outbox_clear(m);
        zsource_kick(m->router_src);
        zsource_kick(m->admin_src);
}

/* The commit step: once per loop iteration in which anything ran. */
static int on_commit(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        (void)s;
        if (store_dirty(m->store)) {
                uint64_t t0 = now_usec(CLOCK_MONOTONIC);
                int r = store_commit(m->store);
                metrics_store_commit(m->metrics, now_usec(CLOCK_MONOTONIC) - t0);
                /* The pool learnt from the commit's events what became of this batch's
                 * claims; after a failed commit they are undone. */
                hostpool_batch_done(m->pool);
                fanout_batch_done(m->fanout);
                if (r < 0) {
                        /* Nothing of the batch is durable: tell no one anything about it. */
                        log_error_errno(r,
                                        "Failed to commit to the store, dropping %zu replies: %m",
                                        m->n_outbox);
                        outbox_clear(m);
                        m->commit_error = r;
                        return 0;
                }
                m->commit_error = 0;
        }
        if (m->n_outbox > 0)
                outbox_flush(m);
        fanout_flush(m->fanout);
        return 0;
}

int manager_enqueue(Manager *m, const char *kind, const char *ns, const char *name) {
        _cleanup_free_ char *key = strjoin(kind, "/", strempty(ns), "/", name);
        if (!key)
                return -ENOMEM;
        return queue_add(m->queue, key);
}

int manager_enqueue_after(Manager *m, const char *kind, const char *ns, const char *name,
                          uint64_t usec) {
        _cleanup_free_ char *key = strjoin(kind, "/", strempty(ns), "/", name);
        if (!key)
                return -ENOMEM;
        return queue_add_after(m->queue, key, usec);
}

static void enqueue_key(const char *key, void *userdata) {
        Manager *m = userdata;
        (void)queue_add(m->queue, key);
}

/* The in-memory indexes follow every committed object (and are loaded at startup). */
static void index_object(Manager *m, const KindInfo *k, const char *key, const char *name,
                         const Obj *obj) {
        if (streq(k->kind, "Host")) {
                /* A host that became free (or changed labels) may be what machines wait for. */
                if (hostpool_host_changed(m->pool, name, obj))
                        hostpool_foreach_waiting(m->pool, enqueue_key, m);
        } else if (streq(k->kind, "AnvilMachine"))
                hostpool_machine_waiting(m->pool, key,
                                         obj && !obj_get(obj, "status.hostRef") &&
                                                 !meta_deleting(obj));
        metrics_object_changed(m->metrics, k, key, obj);
}

static void on_store_event(const StoreEvent *ev, void *userdata) {
        Manager *m = userdata;
        if (ev->kv.key[0] == '_')
                return; /* internal records (tokens) */
        char buf[512];
        const KindInfo *k;
        const char *ns, *name;
        if (registry_parse_key(ev->kv.key, buf, sizeof(buf), &k, &ns, &name) < 0)
                return;

        /* An ACK's observedGeneration on an idle Host changes nothing anyone follows: not
         * decoded, no reconcile (at 10,000 hosts, one per host of every fan-out). */
        if (ev->type == STORE_EVENT_PUT && k == &kind_host &&
            fanout_quiet_write(m->fanout, name, ev->kv.mod_rev)) {
                metrics_store_event(m->metrics, k->kind);
                return;
        }
        const StoreKV *kv = ev->type == STORE_EVENT_PUT ? &ev->kv : &ev->prev;
        _cleanup_(obj_freep) Obj *obj = NULL;
        if (kv->value && registry_decode(m->reg, kv, &obj) < 0)
                obj = NULL;

        if (streq(k->kind, "Host"))
                fanout_host_changed(m->fanout, name, ev->type == STORE_EVENT_PUT ? obj : NULL);
        index_object(m, k, ev->kv.key, name, ev->type == STORE_EVENT_PUT ? obj : NULL);
        if (obj)
                controllers_map_change(m, k, obj);
        else
                (void)manager_enqueue(m, k->kind, ns, name);
        if (ev->type == STORE_EVENT_DELETE && meta_uid(obj)) {
                _cleanup_free_ char *gc =
                        strjoin("_gc/", k->namespaced ? ns : "", "/", meta_uid(obj));
                if (gc)
                        (void)queue_add(m->queue, gc);
        }
        metrics_store_event(m->metrics, k->kind);
}

static int on_resync(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        /* Level-triggered safety net: look at everything now and then. */
        (void)controllers_enqueue_all(m);
        sd_event_source_set_time(s, usec + m->config.resync_usec);
        sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

/* STATUS= for `systemctl status`, sent when it changes: what is served, and trouble. */
static void notify_status(Manager *m, const char *override) {
        char buf[sizeof(m->status)];
        if (override)
                snprintf(buf, sizeof(buf), "%s", override);
        else {
                FanoutStats st;
                fanout_get_stats(m->fanout, &st);
                int n = snprintf(buf, sizeof(buf),
                                 "serving %zu host%s (%zu connected, %zu awaiting an ack) on %s, "
                                 "store revision %lld",
                                 st.hosts, st.hosts == 1 ? "" : "s", st.connected, st.pending_acks,
                                 m->config.listen, (long long)store_revision(m->store));
                if (m->commit_error && n > 0 && (size_t)n < sizeof(buf))
                        snprintf(buf + n, sizeof(buf) - (size_t)n,
                                 "; STORE COMMITS FAILING: %s (nothing is acknowledged)",
                                 strerror(-m->commit_error));
        }
        if (streq(buf, m->status))
                return;
        memcpy(m->status, buf, sizeof(buf));
        (void)sd_notifyf(false, "STATUS=%s", buf);
}

/* Gives the free pages malloc keeps back to the kernel, every 30 s. libzmq's I/O thread
 * allocates ~40 KB per connection from its own malloc arena, and glibc returns a thread
 * arena's free memory only from its top: when connections close (hosts reconnecting after a
 * network cut, a wave of enrollment connections) the holes stay resident. Measured: 2,000
 * hosts gone, the coordinator stayed at 137 MB; malloc_trim() (MADV_DONTNEED on the free
 * pages) brought it to 33 MB. It takes about 1 ms at 10,000 connected hosts. */
static void trim_memory(void) {
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        int released = malloc_trim(0);
        log_debug("malloc_trim: %s, %llu µs.", released ? "released memory" : "nothing to release",
                  (unsigned long long)(now_usec(CLOCK_MONOTONIC) - t0));
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        static unsigned ticks;
        if (m->serving)
                notify_status(m, NULL);
        if (++ticks % 15 == 0)
                trim_memory();
        sd_event_source_set_time(s, usec + 2 * USEC_PER_SEC);
        return 0;
}

static int default_log_level(void) {
        const char *env = getenv("ANVIL_LOG_LEVEL");
        int l = env ? log_level_from_string(env) : -EINVAL;
        return l >= 0 ? l : LOG_INFO;
}

/* SIGHUP: read coordinator.yaml again. log-level, heartbeat-grace and resync-period take
 * effect now (flags given at startup keep winning); a bad file changes nothing. Then every
 * object is reconciled once. */
static void reload(Manager *m) {
        (void)sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu",
                         (unsigned long long)now_usec(CLOCK_MONOTONIC));
        notify_status(m, "reloading the configuration");
        _cleanup_(obj_freep) Obj *cfg = NULL;
        _cleanup_free_ char *errors = NULL;
        const char *path = m->config.config_path;
        int r = path ? config_load(path, coordinator_config_schema, &cfg, &errors) : -ENOENT;
        if (r == -ENOENT && !m->config.config_path_given)
                r = (cfg = obj_new_map()) ? 0 : -ENOMEM;
        if (r == -EBADMSG) {
                _cleanup_free_ char *line = config_errors_one_line(errors);
                log_error("Not reloading: %s is invalid, the running configuration stays: %s", path,
                          strna(line));
        } else if (r < 0)
                log_error_errno(r, "Not reloading: cannot read %s: %m", strna(path));
        else {
                const char *level = obj_get_str(cfg, "log-level");
                int l = default_log_level();
                if (!m->config.level_from_flag) {
                        if (level)
                                l = log_level_from_string(level);
                        log_set_max_level(l);
                }
                if (!m->config.grace_from_flag)
                        m->config.heartbeat_grace_usec =
                                config_duration(cfg, "heartbeat-grace", 30 * USEC_PER_SEC);
                uint64_t resync = config_duration(cfg, "resync-period", 600 * USEC_PER_SEC);
                if (resync != m->config.resync_usec) {
                        m->config.resync_usec = resync;
                        if (!m->resync_timer && resync > 0)
                                (void)sd_event_add_time_relative(m->event, &m->resync_timer,
                                                                 CLOCK_MONOTONIC, resync,
                                                                 USEC_PER_SEC, on_resync, m);
                        else if (m->resync_timer) {
                                (void)sd_event_source_set_time_relative(m->resync_timer, resync);
                                (void)sd_event_source_set_enabled(
                                        m->resync_timer, resync ? SD_EVENT_ON : SD_EVENT_OFF);
                        }
                }
                _cleanup_free_ char *restart = coordinator_config_restart_changes(cfg);
                if (restart)
                        log_warning("Reload of %s: %s changed and takes effect only after "
                                    "'systemctl restart anvil-coordinator'.",
                                    strna(path), restart);
                log_info("Reloaded %s: log level %s, heartbeat grace %llus, resync every %llus; "
                         "re-checking every object.",
                         strna(path), log_level_to_string(log_get_max_level()),
                         (unsigned long long)(m->config.heartbeat_grace_usec / USEC_PER_SEC),
                         (unsigned long long)(m->config.resync_usec / USEC_PER_SEC));
                (void)controllers_enqueue_all(m);
        }
        (void)sd_notify(false, "READY=1");
        m->status[0] = 0;
        notify_status(m, NULL);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        if (si->ssi_signo == SIGHUP) {
                reload(m);
                return 0;
        }
        log_info("Received %s, shutting down.", strsignal((int)si->ssi_signo));
        (void)sd_notify(false, "STOPPING=1");
        notify_status(m, "shutting down");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

#ifdef ANVIL_TEST_HOOKS
/* SIGUSR2 blocks the event loop for good, so a test can watch systemd's watchdog kill the
 * coordinator and restart it. */
static int on_test_hang(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void)s;
        (void)si;
        (void)userdata;
        log_warning("Test hook: blocking the event loop until the watchdog kills us.");
        for (;;)
                sleep(3600);
        return 0;
}
#endif

static int setup_sockets(Manager *m) {
        int r, one = 1, zero = 0, backlog = 4096;
        m->zctx = zmq_ctx_new();
        if (!m->zctx)
                return negative_errno();
        zmq_ctx_set(m->zctx, ZMQ_BLOCKY, 0);

        /* ZAP first: a CURVE server with no handler would accept anyone. */
        m->zap = zmq_socket(m->zctx, ZMQ_REP);
        if (!m->zap || zmq_bind(m->zap, ZAP_ENDPOINT) < 0)
                return log_error_errno(negative_errno(), "Failed to bind the ZAP handler: %m");

        /* libzmq numbers a ROUTER's connections from rand(), unseeded: predictable. A peer
         * that takes the number of a future connection as its own routing id makes libzmq
         * abort when that connection arrives (it asserts the id is new). Seeding makes the
         * numbers unguessable; only peers ZAP admits can try (docs/security.md). */
        srand(randombytes_random());
        m->router = zmq_socket(m->zctx, ZMQ_ROUTER);
        if (!m->router)
                return negative_errno();
        int64_t maxmsg = WIRE_MAX_AGENT_MESSAGE;
        /* Per-peer queues of 1000 messages each way (docs/protocol.md, "Queues"): a full
         * send queue makes zmq_send fail with EAGAIN (ROUTER_MANDATORY), never block. */
        int hwm = 1000;
        /* No ZMTP heartbeats of our own (the agents send theirs, and we answer them): libzmq
         * 4.3 cancels a connection's heartbeat timeout timer on every message it receives by
         * scanning all of its I/O thread's timers, which at 10,000 connections cost ~40% of
         * a core. A peer that vanished without a FIN is found by TCP keepalive instead (about
         * a minute; the host is marked unreachable by the heartbeat grace before that). */
        int ka_idle = 30, ka_intvl = 10, ka_cnt = 3;
        if (zmq_setsockopt(m->router, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_CURVE_SECRETKEY, m->keys.secret_z85, KEY_Z85_LEN + 1) <
                    0 ||
            zmq_setsockopt(m->router, ZMQ_ZAP_DOMAIN, "anvil", 5) < 0 ||
            zmq_setsockopt(m->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_BACKLOG, &backlog, sizeof(backlog)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_TCP_KEEPALIVE, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_TCP_KEEPALIVE_IDLE, &ka_idle, sizeof(ka_idle)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_TCP_KEEPALIVE_INTVL, &ka_intvl, sizeof(ka_intvl)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_TCP_KEEPALIVE_CNT, &ka_cnt, sizeof(ka_cnt)) < 0 ||
            zmq_setsockopt(m->router, ZMQ_LINGER, &zero, sizeof(zero)) < 0)
                return log_error_errno(negative_errno(),
                                       "Failed to configure the agent socket: %m");
        if (zmq_bind(m->router, m->config.listen) < 0)
                return log_error_errno(negative_errno(), "Failed to listen on %s: %m",
                                       m->config.listen);

        /* The admin socket: local only, guarded by its file mode. */
        r = mkdir_parents(m->config.admin_socket, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory of %s: %m",
                                       m->config.admin_socket);
        m->admin = zmq_socket(m->zctx, ZMQ_ROUTER);
        if (!m->admin)
                return negative_errno();
        maxmsg = WIRE_MAX_ADMIN_MESSAGE;
        if (zmq_setsockopt(m->admin, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
            zmq_setsockopt(m->admin, ZMQ_LINGER, &zero, sizeof(zero)) < 0)
                return negative_errno();
        _cleanup_free_ char *ep = strjoin("ipc://", m->config.admin_socket);
        if (!ep)
                return -ENOMEM;
        mode_t old = umask(0117);
        r = zmq_bind(m->admin, ep);
        umask(old);
        if (r < 0)
                return log_error_errno(negative_errno(), "Failed to bind the admin socket %s: %m",
                                       m->config.admin_socket);
        if (chmod(m->config.admin_socket, 0660) < 0)
                log_warning_errno(negative_errno(), "Failed to set the mode of %s, ignoring: %m",
                                  m->config.admin_socket);

        if ((r = zsource_new(m->event, m->zap, zap_on_request, m, 1024, &m->zap_src)) < 0 ||
            (r = zsource_new(m->event, m->router, fanout_on_router, m->fanout, 1024,
                             &m->router_src)) < 0 ||
            (r = zsource_new(m->event, m->admin, api_on_request, m, 64, &m->admin_src)) < 0)
                return log_error_errno(r, "Failed to watch sockets: %m");
        return 0;
}

/* A secret key file that group or others may read is refused, as ssh does (keys.h). */
static int log_key_file_mode(const char *path) {
        mode_t mode = 0;
        (void)key_file_check(path, &mode);
        return log_error_errno(-EPERM,
                               "Key file %s has mode %04o: group or others may read it. "
                               "Refusing to use an unprotected private key; fix with: chmod "
                               "600 %s",
                               path, (unsigned)mode, path);
}

static int load_cb(Obj *o, void *userdata) {
        Manager *m = userdata;
        const KindInfo *k = kind_lookup(strempty(obj_get_str(o, "kind")));
        _cleanup_free_ char *key = k ? registry_key(k, meta_namespace(o), meta_name(o)) : NULL;
        if (!key)
                return k ? -ENOMEM : 0;
        if (k == &kind_host) {
                int r = fanout_load_host(m->fanout, o);
                if (r < 0)
                        return r;
        }
        index_object(m, k, key, meta_name(o), o);
        return 0;
}

/* Every object the in-memory indexes follow, once: into the fan-out, the host pool and the
 * metrics. */
static int load_indexes(Manager *m) {
        const KindInfo *const kinds[] = {&kind_host, &kind_anvilmachine, &kind_machine,
                                         &kind_machinedeployment, &kind_kubeadmcontrolplane};
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                int r = registry_list(m->reg, kinds[i], NULL, load_cb, m);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int lock_state_dir(Manager *m) {
        _cleanup_free_ char *path = strjoin(m->config.state_dir, "/coordinator.lock");
        if (!path)
                return -ENOMEM;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Failed to open %s: %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = negative_errno();
                close(fd);
                return log_error_errno(r, "Another coordinator is using %s (lock %s is held): %m",
                                       m->config.state_dir, path);
        }
        /* Kept open (and locked) for the life of the process. */
        return 0;
}

int manager_new(const ManagerConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));
        if (!m)
                return log_oom();
        m->config = *config;
        m->config.listen = strdup(config->listen);
        m->config.advertise = strdup(config->advertise ? config->advertise : config->listen);
        m->config.admin_socket = strdup(config->admin_socket);
        m->config.state_dir = strdup(config->state_dir);
        m->config.key_file = config->key_file ? strdup(config->key_file)
                                              : strjoin(config->state_dir, "/coordinator.key");
        m->config.metrics_listen = strdup(strempty(config->metrics_listen));
        m->config.config_path = config->config_path ? strdup(config->config_path) : NULL;
        if (!m->config.listen || !m->config.advertise || !m->config.admin_socket ||
            !m->config.state_dir || !m->config.key_file || !m->config.metrics_listen ||
            (config->config_path && !m->config.config_path))
                return log_oom();
        m->started_usec = now_usec(CLOCK_MONOTONIC);

        int r = mkdir_p(m->config.state_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m",
                                       m->config.state_dir);
        r = lock_state_dir(m);
        if (r < 0)
                return r;

        bool created = false;
        r = keypair_load_or_create(m->config.key_file, &m->keys, &created);
        if (r == -EPERM)
                return log_key_file_mode(m->config.key_file);
        if (r == -EBADMSG)
                return log_error_errno(r, "Key file %s is malformed; refusing to replace it: %m",
                                       m->config.key_file);
        if (r < 0)
                return log_error_errno(r, "Failed to load key pair %s: %m", m->config.key_file);
        if (created)
                log_notice("Created a new coordinator key pair in %s (public key %s).",
                           m->config.key_file, m->keys.public_z85);

        uint8_t data_key[DATA_KEY_LEN];
        _cleanup_free_ char *dk_path = strjoin(m->config.state_dir, "/data.key");
        if (!dk_path)
                return log_oom();
        r = data_key_load_or_create(dk_path, data_key);
        if (r == -EPERM)
                return log_key_file_mode(dk_path);
        if (r < 0)
                return log_error_errno(r, "Failed to load the data key %s: %m", dk_path);

        _cleanup_free_ char *db = strjoin(m->config.state_dir, "/store.db");
        if (!db)
                return log_oom();
        r = store_open_sqlite(db, &m->store);
        if (r < 0)
                return log_error_errno(r, "Failed to open store %s: %m", db);
        r = registry_new(m->store, data_key, &m->reg);
        sodium_memzero(data_key, sizeof(data_key));
        if (r < 0)
                return log_oom();
        r = store_watch(m->store, on_store_event, m);
        if (r < 0)
                return log_oom();

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        (void)sd_event_set_watchdog(m->event, true);

        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
#ifdef ANVIL_TEST_HOOKS
        sigaddset(&ss, SIGUSR2);
#endif
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m)) < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
#ifdef ANVIL_TEST_HOOKS
        if ((r = sd_event_add_signal(m->event, NULL, SIGUSR2, on_test_hang, m)) < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
#endif
        r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC,
                                       2 * USEC_PER_SEC, USEC_PER_SEC / 2, on_status_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->status_timer, SD_EVENT_ON);
        if (r < 0)
                return log_error_errno(r, "Failed to add the status timer: %m");

        r = queue_new(m->event, controllers_reconcile, m, &m->queue);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the work queue: %m");
        r = fanout_new(m, &m->fanout);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the fan-out: %m");
        r = hostpool_new(&m->pool);
        if (r < 0)
                return log_oom();
        r = commands_new(m, &m->commands);
        if (r < 0)
                return log_oom();
        r = metrics_new(m, &m->metrics);
        if (r < 0)
                return r;
        r = watch_hub_new(m, &m->watch);
        if (r < 0)
                return log_error_errno(r, "Failed to set up watches: %m");

        r = sd_event_add_post(m->event, &m->commit_source, on_commit, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the commit step: %m");
        /* Normal priority on purpose: a post source at idle priority would starve behind
         * busy sockets, and acknowledgements would wait for a quiet moment. */

        if (m->config.resync_usec > 0) {
                r = sd_event_add_time_relative(m->event, &m->resync_timer, CLOCK_MONOTONIC,
                                               m->config.resync_usec, USEC_PER_SEC, on_resync, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the resync timer: %m");
        }

        r = load_indexes(m);
        if (r < 0)
                return log_error_errno(r, "Failed to load hosts from the store: %m");
        r = setup_sockets(m);
        if (r < 0)
                return r;
        r = metrics_start(m->metrics, m->config.metrics_listen);
        if (r < 0)
                return r;
        r = controllers_enqueue_all(m);
        if (r < 0)
                return log_error_errno(r, "Failed to queue the initial reconciles: %m");

        *ret = TAKE_PTR(m);
        return 0;
}

int manager_run(Manager *m) {
        log_info("Serving agents on %s (key %s), admin socket %s, store revision %lld.",
                 m->config.listen, m->keys.public_z85, m->config.admin_socket,
                 (long long)store_revision(m->store));
        /* Every socket is bound, the store open and the first reconciles queued: serving. */
        m->serving = true;
        (void)sd_notify(false, "READY=1");
        notify_status(m, NULL);
        int r = sd_event_loop(m->event);
        /* Whatever the last iteration wrote becomes durable before we go. */
        int q = store_commit(m->store);
        if (q < 0)
                log_error_errno(q, "Failed to commit the last batch on exit: %m");
        return r;
}
