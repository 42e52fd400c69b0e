/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The schema of /etc/anvil/coordinator.yaml: read by main() at startup and again by the
 * manager on SIGHUP (log-level, heartbeat-grace and resync-period take effect at once; the
 * endpoints, sockets and state directory need a restart).
 */
#include "manager.h"

const SchemaField coordinator_config_schema[] = {
        {"listen", ST_STRING, .doc = "agent endpoint (CURVE), default tcp://0.0.0.0:7443"},
        {"advertise", ST_STRING, .doc = "endpoint agents should use, printed by anvilctl info"},
        {"admin-socket", ST_STRING, .doc = "path of the anvilctl socket"},
        {"state-dir", ST_STRING, .doc = "store, keys; default /var/lib/anvil"},
        {"key-file", ST_STRING},
        {"metrics-listen", ST_STRING, .doc = "ADDR:PORT for Prometheus, \"\" to disable"},
        {"heartbeat-grace", ST_DURATION, .doc = "silence after which a host is Unreachable"},
        {"resync-period", ST_DURATION, .doc = "how often every object is reconciled anyway"},
        {"log-level", ST_STRING,
         .values = (const char *const[]){"debug", "info", "notice", "warning", "err", NULL}},
        SCHEMA_END,
};
