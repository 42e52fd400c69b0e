/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The schema of /etc/anvil/coordinator.yaml: read by main() at startup and again by the
 * manager on SIGHUP (log-level, heartbeat-grace and resync-period take effect at once; the
 * endpoints, sockets and state directory need a restart). Endpoints and durations are
 * checked here, in the table, so a bad value is reported as FILE:LINE:COLUMN: field before
 * anything is created.
 */
#include "config.h"
#include "coordinator-config.h"
#include "manager.h"

const SchemaField coordinator_config_schema[] = {
        {"listen", ST_STRING, .max = 512, .check = check_listen_endpoint,
         .doc = "agent endpoint (CURVE), default tcp://0.0.0.0:7443"},
        {"advertise", ST_STRING, .max = 512, .check = check_advertise_endpoint,
         .doc = "endpoint agents should use, printed by anvilctl info"},
        {"admin-socket", ST_STRING, .max = 108, .doc = "path of the anvilctl socket"},
        {"state-dir", ST_STRING, .max = 4096, .doc = "store, keys; default /var/lib/anvil"},
        {"key-file", ST_STRING, .max = 4096},
        {"metrics-listen", ST_STRING, .max = 512, .check = check_addr_port_or_empty,
         .doc = "ADDR:PORT for Prometheus, \"\" to disable"},
        {"heartbeat-grace", ST_DURATION, .min = USEC_PER_SEC, .max = 24 * 3600 * USEC_PER_SEC,
         .doc = "silence after which a host is Unreachable"},
        {"resync-period", ST_DURATION, .min = USEC_PER_SEC, .max = 24 * 3600 * USEC_PER_SEC,
         .doc = "how often every object is reconciled anyway"},
        {"log-level", ST_STRING,
         .values = (const char *const[]){"debug", "info", "notice", "warning", "err", NULL}},
        SCHEMA_END,
};

void coordinator_config_apply(const Obj *cfg, ManagerConfig *mc) {
        *mc = (ManagerConfig){
                .listen = (char *)config_str(cfg, "listen", "tcp://0.0.0.0:7443"),
                .advertise = (char *)config_str(cfg, "advertise", NULL),
                .admin_socket = (char *)config_str(cfg, "admin-socket", "/run/anvil/admin.sock"),
                .state_dir = (char *)config_str(cfg, "state-dir", "/var/lib/anvil"),
                .key_file = (char *)config_str(cfg, "key-file", NULL),
                .metrics_listen = (char *)config_str(cfg, "metrics-listen", "127.0.0.1:9450"),
                .heartbeat_grace_usec = config_duration(cfg, "heartbeat-grace", 30 * USEC_PER_SEC),
                .resync_usec = config_duration(cfg, "resync-period", 600 * USEC_PER_SEC),
        };
}

/* The settings only a restart applies. */
static const char *const restart_keys[] = {"listen",    "advertise", "admin-socket",
                                           "state-dir", "key-file",  "metrics-listen"};

/* The file as it was at startup: what a reload compares against. One coordinator per
 * process, so one copy; it lives as long as the process. */
static Obj *startup_file;

int coordinator_config_remember_startup(const Obj *cfg) {
        obj_free(startup_file);
        startup_file = cfg ? obj_dup(cfg) : obj_new_map();
        return startup_file ? 0 : -ENOMEM;
}

char *coordinator_config_restart_changes(const Obj *new) {
        char *out = NULL;
        for (size_t i = 0; i < ELEMENTSOF(restart_keys); i++) {
                const char *a = config_str(startup_file, restart_keys[i], NULL),
                           *b = config_str(new, restart_keys[i], NULL);
                if (streq_ptr(a, b))
                        continue;
                char *n = out ? strjoin(out, ", ", restart_keys[i]) : strdup(restart_keys[i]);
                free(out);
                if (!n)
                        return NULL;
                out = n;
        }
        return out;
}
