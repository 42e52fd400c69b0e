/* SPDX-License-Identifier: Apache-2.0 */
/* anvil-agent: read configuration (file, kernel command line, flags), run the Agent. */
#include <ctype.h>
#include <getopt.h>
#include <sodium.h>

#include "agent-config.h"
#include "agent.h"
#include "config.h"
#include "fileio.h"
#include "hostid.h"
#include "log.h"
#include "schema.h"

#define DEFAULT_CONFIG "/etc/anvil/agent.yaml"

static void help(void) {
        printf("anvil-agent — runs kubeadm on this host as the Anvil coordinator asks.\n\n"
               "Usage: anvil-agent [OPTIONS]\n\n"
               "  -c, --config FILE          configuration (default %s)\n"
               "      --coordinator URL      tcp://HOST:PORT of the coordinator\n"
               "      --coordinator-key KEY  its CURVE public key (Z85, from 'anvilctl info')\n"
               "      --token TOKEN          enrollment token ('anvilctl token create')\n"
               "      --state-dir DIR        key and progress (default /var/lib/anvil-agent)\n"
               "      --product-uuid UUID    override the DMI product UUID\n"
               "      --hostname NAME        override the host name\n"
               "      --host-root DIR        filesystem root for kubeadm (default /)\n"
               "      --kubeadm PATH         kubeadm binary (default /usr/bin/kubeadm)\n"
               "      --kubectl PATH         kubectl binary (default /usr/bin/kubectl)\n"
               "      --cmdline PATH         kernel command line (default /proc/cmdline)\n"
               "      --heartbeat DURATION   heartbeat interval (default 10s)\n"
               "      --metrics-listen A:P   serve Prometheus metrics there (default: off)\n"
               "      --log-level LEVEL      debug, info, notice, warning, err\n"
               "  -h, --help                 this help\n"
               "      --version              print the version\n",
               DEFAULT_CONFIG);
}

static int set(char **dst, const char *v) {
        free(*dst);
        *dst = strdup(v);
        return *dst ? 0 : -ENOMEM;
}

/* Host names are compared in lowercase (the agent reports them so, as kubelet names nodes). */
static bool hostname_ok(const char *s) {
        char buf[256];
        if (strlen(s) >= sizeof(buf))
                return false;
        size_t i = 0;
        for (; s[i]; i++)
                buf[i] = (char)tolower((unsigned char)s[i]);
        buf[i] = 0;
        return hostname_valid(buf);
}

int main(int argc, char **argv) {
        enum {
                ARG_COORD = 0x100,
                ARG_KEY,
                ARG_TOKEN,
                ARG_STATE,
                ARG_UUID,
                ARG_HOSTNAME,
                ARG_ROOT,
                ARG_KUBEADM,
                ARG_KUBECTL,
                ARG_CMDLINE,
                ARG_HEARTBEAT,
                ARG_METRICS,
                ARG_LOGLEVEL,
                ARG_VERSION,
        };
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"coordinator", required_argument, NULL, ARG_COORD},
                {"coordinator-key", required_argument, NULL, ARG_KEY},
                {"token", required_argument, NULL, ARG_TOKEN},
                {"state-dir", required_argument, NULL, ARG_STATE},
                {"product-uuid", required_argument, NULL, ARG_UUID},
                {"hostname", required_argument, NULL, ARG_HOSTNAME},
                {"host-root", required_argument, NULL, ARG_ROOT},
                {"kubeadm", required_argument, NULL, ARG_KUBEADM},
                {"kubectl", required_argument, NULL, ARG_KUBECTL},
                {"cmdline", required_argument, NULL, ARG_CMDLINE},
                {"heartbeat", required_argument, NULL, ARG_HEARTBEAT},
                {"metrics-listen", required_argument, NULL, ARG_METRICS},
                {"log-level", required_argument, NULL, ARG_LOGLEVEL},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        _cleanup_(agent_config_source_done) AgentConfigSource src = {0};
        const char *config_path = NULL, *level = NULL, *heartbeat = NULL;
        int c, r;

        log_setup("anvil-agent", LOG_TARGET_AUTO);
        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case ARG_COORD:
                        r = set(&src.flags.coordinator, optarg);
                        break;
                case ARG_KEY:
                        r = set(&src.flags.coordinator_key, optarg);
                        break;
                case ARG_TOKEN:
                        r = set(&src.flags.token, optarg);
                        break;
                case ARG_STATE:
                        r = set(&src.flags.state_dir, optarg);
                        break;
                case ARG_UUID:
                        if (!product_uuid_valid(optarg, false)) {
                                fprintf(stderr,
                                        "anvil-agent: --product-uuid: '%s' is not a UUID "
                                        "(8-4-4-4-12 hex digits)\n",
                                        optarg);
                                return 2;
                        }
                        r = set(&src.flags.product_uuid, optarg);
                        break;
                case ARG_HOSTNAME:
                        if (!hostname_ok(optarg)) {
                                fprintf(stderr,
                                        "anvil-agent: --hostname: '%s' is not a valid DNS-1123 "
                                        "subdomain (letters, digits, '-' and '.', as Kubernetes "
                                        "node names)\n",
                                        optarg);
                                return 2;
                        }
                        r = set(&src.flags.hostname, optarg);
                        break;
                case ARG_ROOT:
                        r = set(&src.flags.host_root, optarg);
                        break;
                case ARG_KUBEADM:
                        r = set(&src.flags.kubeadm, optarg);
                        break;
                case ARG_KUBECTL:
                        r = set(&src.flags.kubectl, optarg);
                        break;
                case ARG_CMDLINE:
                        r = set(&src.flags.cmdline_path, optarg);
                        break;
                case ARG_HEARTBEAT:
                        heartbeat = optarg;
                        break;
                case ARG_METRICS:
                        r = set(&src.flags.metrics_listen, optarg);
                        break;
                case ARG_LOGLEVEL:
                        level = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("anvil-agent %s\n", ANVIL_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'anvil-agent --help'.\n");
                        return 2;
                }
                if (r < 0)
                        return 1;
        }
        if (optind < argc) {
                fprintf(stderr, "anvil-agent: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (level) {
                int l = log_level_from_string(level);
                if (l < 0) {
                        fprintf(stderr, "anvil-agent: --log-level: unknown level '%s'\n", level);
                        return 2;
                }
                src.flags.log_level = l;
                src.flags.has_log_level = true;
        }
        if (heartbeat) {
                int64_t us;
                if (parse_go_duration(heartbeat, &us) < 0 || us < (int64_t)USEC_PER_SEC / 10 ||
                    us > 24 * 3600 * (int64_t)USEC_PER_SEC) {
                        fprintf(stderr,
                                "anvil-agent: --heartbeat: must be a duration between 100ms "
                                "and 24h, not '%s'\n",
                                heartbeat);
                        return 2;
                }
                src.flags.heartbeat_usec = (uint64_t)us;
        }
        if (sodium_init() < 0)
                return 1;

        /* The file, the kernel command line, the flags: kept for SIGHUP. */
        src.path = strdup(config_path ? config_path : DEFAULT_CONFIG);
        src.path_given = config_path != NULL;
        if (!src.path)
                return 1;
        AgentConfig cfg = {0};
        _cleanup_free_ char *error = NULL;
        r = agent_config_load(&src, &cfg, &error);
        if (r < 0) {
                if (r == -EBADMSG)
                        fprintf(stderr, "%s", strempty(error));
                log_error("Invalid configuration, refusing to start: %s", r == -EBADMSG ? src.path
                                                                          : error       ? error
                                                                                  : strerror(-r));
                return 1;
        }
        if (cfg.has_log_level)
                log_set_max_level(cfg.log_level);

        _cleanup_(agent_freep) Agent *a = NULL;
        r = agent_new(&cfg, &src, &a);
        agent_config_done(&cfg);
        if (r < 0)
                return 1;
        r = agent_run(a);
        return r < 0 ? 1 : 0;
}
