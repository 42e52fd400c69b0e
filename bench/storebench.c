/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anvil-storebench: durable write throughput of the coordinator's store (bench/run.sh).
 *
 * Against the real SQLite store (coordinator/store-sqlite.c) in a fresh directory, as the
 * coordinator uses it: writes land in the open transaction and become durable at
 * store_commit() (WAL, synchronous=FULL: an fsync per commit), one commit per batch, as the
 * manager's commit step does once per loop iteration. Three phases, each timed from the
 * first write to the last commit returning:
 *   raw      store_put() of 1 KiB values under new keys
 *   create   registry_create() of Host objects like an enrolled host's (msgpack encoding,
 *            metadata, uid), then commit
 *   status   registry_get() + registry_update_status() of those Hosts (a read-modify-write
 *            with the resourceVersion precondition: what an ACK costs the fan-out)
 * Prints one JSON object: writes, seconds and writes per second of each phase.
 */
#include <getopt.h>
#include <sodium.h>
#include <time.h>

#include "fileio.h"
#include "registry.h"
#include "store.h"

extern const KindInfo kind_host;

typedef struct Phase {
        const char *name;
        size_t writes;
        double seconds;
} Phase;

static double seconds_since(uint64_t t0) {
        return (double)(now_usec(CLOCK_MONOTONIC) - t0) / 1e6;
}

static Obj *host_object(size_t i) {
        char name[64], uuid[64];
        snprintf(name, sizeof(name), "bench-%06zu", i);
        snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012zu", i);
        Obj *h = obj_new_map();
        if (!h || obj_map_set_str(h, "kind", "Host") < 0 ||
            obj_map_set_str(h, "apiVersion", "infrastructure.anvil.dev/v1alpha1") < 0 ||
            obj_set_str(h, "metadata.name", name) < 0 ||
            obj_set_str(h, "metadata.labels.role", "worker") < 0 ||
            obj_set_str(h, "spec.action", "Idle") < 0 ||
            obj_set_str(h, "status.phase", "Available") < 0 ||
            obj_set_str(h, "status.agentKey", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7") < 0 ||
            obj_set_str(h, "status.fingerprint", "SHA256:0123456789abcdef0123456789abcdef") < 0 ||
            obj_set_bool(h, "status.connected", true) < 0 ||
            obj_set_int(h, "status.observedGeneration", 1) < 0 ||
            obj_set_str(h, "status.facts.productUUID", uuid) < 0 ||
            obj_set_str(h, "status.facts.hostname", name) < 0 ||
            obj_set_str(h, "status.facts.vendor", "Bench Systems") < 0 ||
            obj_set_str(h, "status.facts.model", "B-1000") < 0 ||
            obj_set_str(h, "status.facts.kernel", "6.1.0-18-amd64") < 0 ||
            obj_set_str(h, "status.facts.os", "Debian GNU/Linux 12 (bookworm)") < 0 ||
            obj_set_int(h, "status.facts.memoryBytes", 137438953472) < 0 ||
            obj_set_int(h, "status.facts.cpu.count", 64) < 0 ||
            obj_set_str(h, "status.facts.cpu.model", "AMD EPYC 7543 32-Core Processor") < 0)
                return obj_free(h);
        return h;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"dir", required_argument, NULL, 'd'},
                {"writes", required_argument, NULL, 'n'},
                {"batch", required_argument, NULL, 'b'},
                {},
        };
        const char *dir = NULL;
        size_t n = 50000, batch = 1000;
        int c;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        dir = optarg;
                        break;
                case 'n':
                        n = strtoull(optarg, NULL, 10);
                        break;
                case 'b':
                        batch = strtoull(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        if (!dir || n == 0 || batch == 0) {
                fprintf(stderr, "usage: anvil-storebench --dir DIR [--writes N] [--batch N]\n");
                return 2;
        }
        if (sodium_init() < 0 || mkdir_p(dir, 0700) < 0)
                return 1;
        _cleanup_free_ char *path = strjoin(dir, "/store.db");
        if (!path)
                return 1;
        (void)unlink(path);
        _cleanup_free_ char *wal = strjoin(path, "-wal");
        if (wal)
                (void)unlink(wal);
        _cleanup_(store_freep) Store *s = NULL;
        int r = store_open_sqlite(path, &s);
        if (r < 0) {
                fprintf(stderr, "cannot open %s: %s\n", path, strerror(-r));
                return 1;
        }
        uint8_t key[32] = {0};
        _cleanup_(registry_freep) Registry *reg = NULL;
        if (registry_new(s, key, &reg) < 0)
                return 1;
        Phase phases[3] = {{"raw"}, {"create"}, {"status"}};

        /* raw puts */
        char value[1024];
        randombytes_buf(value, sizeof(value));
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < n; i++) {
                char k[64];
                snprintf(k, sizeof(k), "_bench/%08zu", i);
                if ((r = store_put(s, k, value, sizeof(value))) < 0 ||
                    ((i + 1) % batch == 0 && (r = store_commit(s)) < 0))
                        goto fail;
        }
        if ((r = store_commit(s)) < 0)
                goto fail;
        phases[0].writes = n;
        phases[0].seconds = seconds_since(t0);

        /* object creates */
        t0 = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(obj_freep) Obj *h = host_object(i);
                if (!h) {
                        r = -ENOMEM;
                        goto fail;
                }
                if ((r = registry_create(reg, h)) < 0 ||
                    ((i + 1) % batch == 0 && (r = store_commit(s)) < 0))
                        goto fail;
        }
        if ((r = store_commit(s)) < 0)
                goto fail;
        phases[1].writes = n;
        phases[1].seconds = seconds_since(t0);

        /* status read-modify-writes */
        t0 = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < n; i++) {
                char name[64];
                snprintf(name, sizeof(name), "bench-%06zu", i);
                _cleanup_(obj_freep) Obj *h = NULL;
                if ((r = registry_get(reg, &kind_host, NULL, name, &h)) < 0 ||
                    (r = obj_set_int(h, "status.observedGeneration", 2)) < 0 ||
                    (r = registry_update_status(reg, h)) < 0 ||
                    ((i + 1) % batch == 0 && (r = store_commit(s)) < 0))
                        goto fail;
        }
        if ((r = store_commit(s)) < 0)
                goto fail;
        phases[2].writes = n;
        phases[2].seconds = seconds_since(t0);

        StoreStats st;
        store_get_stats(s, &st);
        printf("{\"batch\": %zu, \"commits\": %llu", batch, (unsigned long long)st.commits);
        for (size_t i = 0; i < ELEMENTSOF(phases); i++)
                printf(", \"%s\": {\"writes\": %zu, \"seconds\": %.3f, \"writesPerSecond\": %.0f}",
                       phases[i].name, phases[i].writes, phases[i].seconds,
                       (double)phases[i].writes / phases[i].seconds);
        printf("}\n");
        return 0;
fail:
        fprintf(stderr, "store benchmark failed: %s\n", strerror(-r));
        return 1;
}
