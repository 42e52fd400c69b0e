/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The schema of /etc/anvil/coordinator.yaml: read by main() at startup and again by the
 * manager on SIGHUP (log-level, heartbeat-grace and resync-period take effect at once; the
 * endpoints, sockets and state directory need a restart).
 */
#include "config.h"
#include "coordinator-config.h"
#include "manager.h"

const SchemaField coordinator_config_schema[] = {
        {"listen", ST_STRING, .max = 512,
         .doc = "agent endpoint (CURVE), default tcp://0.0.0.0:7443"},
        {"advertise", ST_STRING, .max = 512,
         .doc = "endpoint agents should use, printed by anvilctl info"},
        {"admin-socket", ST_STRING, .max = 108, .doc = "path of the anvilctl socket"},
        {"state-dir", ST_STRING, .max = 4096, .doc = "store, keys; default /var/lib/anvil"},
        {"key-file", ST_STRING, .max = 4096},
        {"metrics-listen", ST_STRING, .max = 512,
         .doc = "ADDR:PORT for Prometheus, \"\" to disable"},
        {"heartbeat-grace", ST_DURATION, .doc = "silence after which a host is Unreachable"},
        {"resync-period", ST_DURATION, .doc = "how often every object is reconciled anyway"},
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
        if (mc->heartbeat_grace_usec == 0) /* "0s" would make every host unreachable */
                mc->heartbeat_grace_usec = 30 * USEC_PER_SEC;
}
