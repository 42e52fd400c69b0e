/* SPDX-License-Identifier: Apache-2.0 */
/* anvil-coordinator: parse configuration, make the Manager, run its loop. */
#include <getopt.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "coordinator-config.h"
#include "log.h"
#include "manager.h"

#define DEFAULT_CONFIG "/etc/anvil/coordinator.yaml"

static void help(void) {
        printf("anvil-coordinator — holds the desired state of clusters and machines and\n"
               "publishes each host's desired Machine to its agent.\n\n"
               "Usage: anvil-coordinator [OPTIONS]\n\n"
               "  -c, --config FILE         configuration file (default %s)\n"
               "  -l, --listen ENDPOINT     agent endpoint, e.g. tcp://0.0.0.0:7443\n"
               "      --advertise ENDPOINT  endpoint agents use to reach us (anvilctl info)\n"
               "  -s, --admin-socket PATH   anvilctl socket (default /run/anvil/admin.sock)\n"
               "  -d, --state-dir DIR       store and keys (default /var/lib/anvil)\n"
               "      --metrics-listen A:P  Prometheus endpoint (default 127.0.0.1:9450,\n"
               "                            \"\" disables)\n"
               "      --heartbeat-grace D   1s to 24h (default 30s)\n"
               "      --log-level LEVEL     debug, info, notice, warning, err\n"
               "  -h, --help                this help\n"
               "      --version             print the version\n",
               DEFAULT_CONFIG);
}

int main(int argc, char **argv) {
        enum { ARG_ADVERTISE = 0x100, ARG_METRICS, ARG_GRACE, ARG_LOGLEVEL, ARG_VERSION };
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"listen", required_argument, NULL, 'l'},
                {"advertise", required_argument, NULL, ARG_ADVERTISE},
                {"admin-socket", required_argument, NULL, 's'},
                {"state-dir", required_argument, NULL, 'd'},
                {"metrics-listen", required_argument, NULL, ARG_METRICS},
                {"heartbeat-grace", required_argument, NULL, ARG_GRACE},
                {"log-level", required_argument, NULL, ARG_LOGLEVEL},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        const char *config_path = NULL, *listen = NULL, *advertise = NULL, *admin = NULL,
                   *state = NULL, *metrics = NULL, *grace = NULL, *level = NULL;
        int c;

        log_setup("anvil-coordinator", LOG_TARGET_AUTO);
        while ((c = getopt_long(argc, argv, "c:l:s:d:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'l':
                        listen = optarg;
                        break;
                case ARG_ADVERTISE:
                        advertise = optarg;
                        break;
                case 's':
                        admin = optarg;
                        break;
                case 'd':
                        state = optarg;
                        break;
                case ARG_METRICS:
                        metrics = optarg;
                        break;
                case ARG_GRACE:
                        grace = optarg;
                        break;
                case ARG_LOGLEVEL:
                        level = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("anvil-coordinator %s\n", ANVIL_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'anvil-coordinator --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "anvil-coordinator: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        /* Flags are checked before the file is read and before anything is created. */
        char why[256];
        const char *bad = NULL, *msg = NULL;
        if (listen && (msg = endpoint_check(listen, ENDPOINT_BIND, why, sizeof(why))))
                bad = "--listen";
        else if (advertise &&
                 (msg = endpoint_check(advertise, ENDPOINT_ADVERTISE, why, sizeof(why))))
                bad = "--advertise";
        else if (!isempty(metrics) && (msg = addr_port_check(metrics, why, sizeof(why))))
                bad = "--metrics-listen";
        if (bad) {
                fprintf(stderr, "anvil-coordinator: %s: %s\n", bad, msg);
                return 2;
        }
        if (sodium_init() < 0) {
                log_error("Failed to initialise libsodium.");
                return 1;
        }

        _cleanup_(obj_freep) Obj *cfg = NULL;
        const char *path = config_path ? config_path : DEFAULT_CONFIG;
        _cleanup_free_ char *errors = NULL;
        int r = config_load(path, coordinator_config_schema, &cfg, &errors);
        if (r == -ENOENT && !config_path)
                cfg = obj_new_map();
        else if (r == -EBADMSG) {
                fprintf(stderr, "%s", strempty(errors));
                log_error("Invalid configuration in %s, refusing to start.", path);
                return 1;
        } else if (r < 0) {
                log_error_errno(r, "Failed to read configuration %s: %m", path);
                return 1;
        }

        ManagerConfig mc;
        coordinator_config_apply(cfg, &mc);
        if (coordinator_config_remember_startup(cfg) < 0)
                return log_oom(), 1;
        if (listen)
                mc.listen = (char *)listen;
        if (advertise)
                mc.advertise = (char *)advertise;
        if (admin)
                mc.admin_socket = (char *)admin;
        if (state)
                mc.state_dir = (char *)state;
        if (metrics)
                mc.metrics_listen = (char *)metrics;
        mc.config_path = (char *)path;
        mc.config_path_given = config_path != NULL;
        mc.grace_from_flag = grace != NULL;
        mc.level_from_flag = level != NULL;
        if (grace) {
                int64_t us;
                if (parse_go_duration(grace, &us) < 0 || us < (int64_t)USEC_PER_SEC ||
                    us > 24 * 3600 * (int64_t)USEC_PER_SEC) {
                        fprintf(stderr,
                                "anvil-coordinator: --heartbeat-grace: must be a duration "
                                "between 1s and 24h, not '%s'\n",
                                grace);
                        return 2;
                }
                mc.heartbeat_grace_usec = (uint64_t)us;
        }
        level = level ? level : config_str(cfg, "log-level", NULL);
        if (level) {
                int l = log_level_from_string(level);
                if (l < 0) {
                        fprintf(stderr, "anvil-coordinator: --log-level: unknown level '%s'\n",
                                level);
                        return 2;
                }
                log_set_max_level(l);
        }

        _cleanup_(manager_freep) Manager *m = NULL;
        r = manager_new(&mc, &m);
        if (r < 0)
                return 1;
        r = manager_run(m);
        return r < 0 ? 1 : 0;
}
