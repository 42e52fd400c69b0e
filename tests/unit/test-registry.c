/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of coordinator/registry.h on a real SQLite store: Kubernetes API server metadata
 * semantics (uid, generation, resourceVersion preconditions, status subresource, finalizers)
 * and encryption at rest of Secrets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>

#include "keys.h"
#include "registry.h"
#include "store.h"
#include "yamlio.h"

typedef struct Fixture {
        char dir[64];
        char path[96];
        uint8_t key[32];
        Store *s;
        Registry *r;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        if (!f)
                return -1;
        strcpy(f->dir, "/tmp/anvil-test-registry-XXXXXX");
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
        randombytes_buf(f->key, sizeof(f->key));
        if (store_open_sqlite(f->path, &f->s) < 0 || registry_new(f->s, f->key, &f->r) < 0) {
                store_free(f->s);
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int teardown(void **state) {
        Fixture *f = *state;
        f->r = registry_free(f->r);
        f->s = store_free(f->s);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static Obj *yaml(const char *text) {
        Obj *o = NULL;
        YamlError err = {0};
        if (yaml_parse_one(text, strlen(text), &o, &err) < 0)
                fail_msg("bad test YAML at %u:%u: %s", err.line, err.column, err.message);
        return o;
}

static const char machine_yaml[] = "kind: Machine\n"
                                   "metadata:\n"
                                   "  name: m1\n"
                                   "  labels: {pool: a}\n"
                                   "spec:\n"
                                   "  clusterName: prod\n"
                                   "  version: v1.30.2\n"
                                   "  bootstrap: {dataSecretName: m1-bootstrap}\n"
                                   "  infrastructureRef: {kind: AnvilMachine, name: m1}\n";

static const KindInfo *K(const char *kind) {
        const KindInfo *k = kind_lookup(kind);
        assert_non_null(k);
        return k;
}

static Obj *create(Fixture *f, const char *text) {
        Obj *o = yaml(text);
        int r = registry_create(f->r, o);
        if (r < 0)
                fail_msg("create failed: %d", r);
        return o;
}

static Obj *fetch(Fixture *f, const char *kind, const char *ns, const char *name) {
        Obj *o = NULL;
        int r = registry_get(f->r, K(kind), ns, name, &o);
        if (r < 0)
                fail_msg("get %s %s/%s: %d", kind, strna(ns), name, r);
        return o;
}

static int64_t rv_of(const Obj *o) {
        const char *s = obj_get_str(o, "metadata.resourceVersion");
        assert_non_null(s);
        return strtoll(s, NULL, 10);
}

static void test_keys(void **state) {
        (void)state;
        _cleanup_free_ char *k1 = registry_key(K("Machine"), "default", "m1");
        assert_string_equal(k1, "Machine/default/m1");
        _cleanup_free_ char *k2 = registry_key(K("Host"), "ignored", "rack1-07");
        assert_string_equal(k2, "Host//rack1-07");
        char buf[128];
        const KindInfo *k;
        const char *ns, *name;
        assert_int_equal(
                registry_parse_key("MachineSet/team-a/ms1", buf, sizeof(buf), &k, &ns, &name), 0);
        assert_string_equal(k->kind, "MachineSet");
        assert_string_equal(ns, "team-a");
        assert_string_equal(name, "ms1");
        assert_int_equal(registry_parse_key("Host//h", buf, sizeof(buf), &k, &ns, &name), 0);
        assert_string_equal(ns, "");
        assert_int_equal(registry_parse_key("Widget/a/b", buf, sizeof(buf), &k, &ns, &name),
                         -ENOENT);
        assert_int_equal(registry_parse_key("Machine/a", buf, sizeof(buf), &k, &ns, &name),
                         -EINVAL);
        assert_int_equal(registry_parse_key("_token/abc", buf, sizeof(buf), &k, &ns, &name),
                         -EINVAL);
        assert_int_equal(registry_parse_key("Machine/default/m", buf, 8, &k, &ns, &name),
                         -ENAMETOOLONG);
}

static void test_create_fills_metadata(void **state) {
        Fixture *f = *state;
        int64_t before = (int64_t)now_usec(CLOCK_REALTIME);
        _cleanup_(obj_freep) Obj *o = create(f, machine_yaml);
        /* The caller's object now carries the stored metadata. */
        assert_string_equal(obj_get_str(o, "apiVersion"), "cluster.x-k8s.io/v1beta1");
        assert_string_equal(obj_get_str(o, "metadata.namespace"), "default");
        const char *uid = obj_get_str(o, "metadata.uid");
        assert_non_null(uid);
        assert_int_equal(strlen(uid), 36);
        assert_int_equal(uid[14], '4'); /* random (version 4) UUID */
        int64_t gen = 0;
        assert_true(obj_get_int(o, "metadata.generation", &gen));
        assert_int_equal(gen, 1);
        int64_t ts = 0;
        assert_int_equal(parse_rfc3339(obj_get_str(o, "metadata.creationTimestamp"), &ts), 0);
        assert_true(ts >= before - (int64_t)USEC_PER_SEC);
        assert_true(ts <= (int64_t)now_usec(CLOCK_REALTIME) + (int64_t)USEC_PER_SEC);
        assert_int_equal(rv_of(o), store_revision(f->s));

        /* What was stored reads back the same. */
        _cleanup_(obj_freep) Obj *got = fetch(f, "Machine", "default", "m1");
        assert_true(obj_equal(got, o));

        /* Another object gets another uid. */
        _cleanup_(obj_freep) Obj *o2 = yaml(machine_yaml);
        assert_int_equal(obj_set_str(o2, "metadata.name", "m2"), 0);
        assert_int_equal(registry_create(f->r, o2), 0);
        assert_string_not_equal(meta_uid(o2), uid);
        assert_true(rv_of(o2) > rv_of(o));

        /* Same name again: -EEXIST, nothing changed. */
        int64_t rev = store_revision(f->s);
        _cleanup_(obj_freep) Obj *dup = yaml(machine_yaml);
        assert_int_equal(registry_create(f->r, dup), -EEXIST);
        assert_int_equal(store_revision(f->s), rev);
        _cleanup_(obj_freep) Obj *still = fetch(f, "Machine", "default", "m1");
        assert_string_equal(meta_uid(still), uid);

        /* Server fields in the input are replaced, not trusted. */
        _cleanup_(obj_freep) Obj *forged = yaml(machine_yaml);
        assert_int_equal(obj_set_str(forged, "metadata.name", "m3"), 0);
        assert_int_equal(obj_set_str(forged, "metadata.uid", "forged"), 0);
        assert_int_equal(obj_set_int(forged, "metadata.generation", 99), 0);
        assert_int_equal(obj_set_str(forged, "metadata.resourceVersion", "12345"), 0);
        assert_int_equal(obj_set_str(forged, "metadata.deletionTimestamp", "2020-01-01T00:00:00Z"),
                         0);
        assert_int_equal(registry_create(f->r, forged), 0);
        assert_string_not_equal(meta_uid(forged), "forged");
        assert_int_equal(meta_generation(forged), 1);
        assert_false(meta_deleting(forged));
        assert_int_equal(rv_of(forged), store_revision(f->s));

        /* Namespaces: given ones are kept; cluster-scoped kinds have none. */
        _cleanup_(obj_freep) Obj *team = yaml(machine_yaml);
        assert_int_equal(obj_set_str(team, "metadata.namespace", "team-a"), 0);
        assert_int_equal(registry_create(f->r, team), 0);
        _cleanup_(obj_freep) Obj *team_got = fetch(f, "Machine", "team-a", "m1");
        assert_string_equal(meta_uid(team_got), meta_uid(team));
        _cleanup_(obj_freep) Obj *host =
                create(f, "kind: Host\nmetadata: {name: h1, namespace: x}\n"
                          "spec: {action: Idle}\n");
        assert_null(obj_get(host, "metadata.namespace"));
        assert_string_equal(obj_get_str(host, "apiVersion"), "infrastructure.anvil.dev/v1alpha1");
        _cleanup_(obj_freep) Obj *host_got = fetch(f, "Host", NULL, "h1");
        assert_string_equal(meta_name(host_got), "h1");
        _cleanup_free_ void *raw = NULL;
        assert_int_equal(store_get(f->s, "Host//h1", &raw, NULL, NULL), 0);
}

static void test_create_refusals(void **state) {
        Fixture *f = *state;
        _cleanup_(obj_freep) Obj *noname = yaml("kind: Machine\nmetadata: {}\nspec: {}\n");
        assert_int_equal(registry_create(f->r, noname), -EINVAL);
        _cleanup_(obj_freep) Obj *nokind = yaml("metadata: {name: x}\n");
        assert_int_equal(registry_create(f->r, nokind), -EINVAL);
        _cleanup_(obj_freep) Obj *widget = yaml("kind: Widget\nmetadata: {name: x}\n");
        assert_int_equal(registry_create(f->r, widget), -EINVAL);
        assert_int_equal(store_revision(f->s), 0);
}

static void test_generate_name(void **state) {
        Fixture *f = *state;
        char seen[5][64];
        for (int i = 0; i < 5; i++) {
                _cleanup_(obj_freep) Obj *o = create(f, "kind: Machine\n"
                                                        "metadata: {generateName: prod-md-0-}\n"
                                                        "spec: {clusterName: prod}\n");
                const char *name = meta_name(o);
                assert_non_null(name);
                assert_true(startswith(name, "prod-md-0-"));
                assert_int_equal(strlen(name), strlen("prod-md-0-") + 5);
                assert_int_equal(strspn(name + 10, "bcdfghjklmnpqrstvwxz2456789"), 5);
                assert_true(is_dns_subdomain(name));
                for (int j = 0; j < i; j++)
                        assert_string_not_equal(seen[j], name);
                snprintf(seen[i], sizeof(seen[i]), "%s", name);
                _cleanup_(obj_freep) Obj *got = fetch(f, "Machine", "default", name);
                assert_string_equal(meta_uid(got), meta_uid(o));
        }
        /* A given name wins over generateName. */
        _cleanup_(obj_freep) Obj *o = create(f, "kind: Machine\n"
                                                "metadata: {name: fixed, generateName: gen-}\n");
        assert_string_equal(meta_name(o), "fixed");
}

static void test_update_preconditions(void **state) {
        Fixture *f = *state;
        _cleanup_(obj_freep) Obj *o = create(f, machine_yaml);
        _cleanup_(obj_freep) Obj *a = fetch(f, "Machine", "default", "m1");
        _cleanup_(obj_freep) Obj *b = fetch(f, "Machine", "default", "m1");
        int64_t rv0 = rv_of(a);

        /* The first writer wins... */
        assert_int_equal(meta_set_label(a, "writer", "a"), 0);
        assert_int_equal(registry_update(f->r, a), 0);
        assert_true(rv_of(a) > rv0);
        /* ...the second one holds a stale resourceVersion. */
        assert_int_equal(meta_set_label(b, "writer", "b"), 0);
        int64_t rev = store_revision(f->s);
        assert_int_equal(registry_update(f->r, b), -ESTALE);
        assert_int_equal(registry_update_status(f->r, b), -ESTALE);
        assert_int_equal(store_revision(f->s), rev);
        _cleanup_(obj_freep) Obj *now = fetch(f, "Machine", "default", "m1");
        assert_string_equal(meta_label(now, "writer"), "a");
        assert_int_equal(rv_of(now), rv_of(a));

        /* No resourceVersion, a malformed one, an object that is gone. */
        assert_true(obj_del(b, "metadata.resourceVersion"));
        assert_int_equal(registry_update(f->r, b), -EINVAL);
        assert_int_equal(obj_set_str(b, "metadata.resourceVersion", "12abc"), 0);
        assert_int_equal(registry_update(f->r, b), -EINVAL);
        _cleanup_(obj_freep) Obj *ghost = yaml(machine_yaml);
        assert_int_equal(obj_set_str(ghost, "metadata.name", "ghost"), 0);
        assert_int_equal(obj_set_str(ghost, "metadata.namespace", "default"), 0);
        assert_int_equal(obj_set_str(ghost, "metadata.resourceVersion", "1"), 0);
        assert_int_equal(registry_update(f->r, ghost), -ENOENT);
        (void)o;
}

static void test_generation_bumps_only_on_spec_change(void **state) {
        Fixture *f = *state;
        _cleanup_(obj_freep) Obj *o = create(f, machine_yaml);
        assert_int_equal(meta_generation(o), 1);
        /* Metadata change: same generation, new resourceVersion. */
        int64_t rv = rv_of(o);
        assert_int_equal(meta_set_annotation(o, "note", "hi"), 0);
        assert_int_equal(registry_update(f->r, o), 0);
        assert_int_equal(meta_generation(o), 1);
        assert_true(rv_of(o) > rv);
        /* Spec change: generation 2. */
        assert_int_equal(obj_set_str(o, "spec.version", "v1.31.0"), 0);
        assert_int_equal(registry_update(f->r, o), 0);
        assert_int_equal(meta_generation(o), 2);
        /* The same spec again: no bump. */
        assert_int_equal(registry_update(f->r, o), 0);
        assert_int_equal(meta_generation(o), 2);
        /* Only key order changed: equal, no bump. */
        Obj *spec = obj_map_take(o, "spec");
        Obj *reordered = obj_new_map();
        for (size_t i = spec->map.n; i > 0; i--)
                assert_int_equal(obj_map_set(reordered, spec->map.entries[i - 1].key,
                                             obj_dup(spec->map.entries[i - 1].value)),
                                 0);
        obj_free(spec);
        assert_int_equal(obj_map_set(o, "spec", reordered), 0);
        assert_int_equal(registry_update(f->r, o), 0);
        assert_int_equal(meta_generation(o), 2);
        /* A status change never bumps it. */
        assert_int_equal(obj_set_str(o, "status.phase", "Running"), 0);
        assert_int_equal(registry_update_status(f->r, o), 0);
        assert_int_equal(meta_generation(o), 2);
        /* The client cannot set it either. */
        assert_int_equal(obj_set_int(o, "metadata.generation", 40), 0);
        assert_int_equal(obj_set_str(o, "metadata.uid", "other"), 0);
        assert_int_equal(obj_set_str(o, "metadata.creationTimestamp", "2000-01-01T00:00:00Z"), 0);
        assert_int_equal(registry_update(f->r, o), 0);
        _cleanup_(obj_freep) Obj *got = fetch(f, "Machine", "default", "m1");
        assert_int_equal(meta_generation(got), 2);
        assert_string_not_equal(meta_uid(got), "other");
        assert_string_not_equal(obj_get_str(got, "metadata.creationTimestamp"),
                                "2000-01-01T00:00:00Z");
        /* ...and the caller's copy was refreshed with the stored metadata. */
        assert_int_equal(meta_generation(o), 2);
        assert_string_equal(meta_uid(o), meta_uid(got));
}

static void test_status_subresource(void **state) {
        Fixture *f = *state;
        _cleanup_(obj_freep) Obj *o = create(f, machine_yaml);
        /* update_status changes status only; a spec change riding along is ignored. */
        assert_int_equal(obj_set_str(o, "status.phase", "Provisioning"), 0);
        assert_int_equal(obj_set_str(o, "spec.version", "v9.9.9"), 0);
        assert_int_equal(meta_set_label(o, "sneaky", "yes"), 0);
        assert_int_equal(registry_update_status(f->r, o), 0);
        _cleanup_(obj_freep) Obj *got = fetch(f, "Machine", "default", "m1");
        assert_string_equal(obj_get_str(got, "status.phase"), "Provisioning");
        assert_string_equal(obj_get_str(got, "spec.version"), "v1.30.2");
        assert_null(meta_label(got, "sneaky"));
        assert_int_equal(meta_generation(got), 1);

        /* update keeps the stored status, whatever the caller sends. */
        assert_int_equal(obj_set_str(got, "status.phase", "Deleted"), 0);
        assert_int_equal(obj_set_str(got, "spec.version", "v1.31.0"), 0);
        assert_int_equal(registry_update(f->r, got), 0);
        _cleanup_(obj_freep) Obj *after = fetch(f, "Machine", "default", "m1");
        assert_string_equal(obj_get_str(after, "status.phase"), "Provisioning");
        assert_string_equal(obj_get_str(after, "spec.version"), "v1.31.0");
        /* An update without status does not erase it either. */
        assert_true(obj_map_del(after, "status"));
        assert_int_equal(registry_update(f->r, after), 0);
        _cleanup_(obj_freep) Obj *kept = fetch(f, "Machine", "default", "m1");
        assert_string_equal(obj_get_str(kept, "status.phase"), "Provisioning");
        /* update_status without status clears it. */
        assert_true(obj_map_del(kept, "status"));
        assert_int_equal(registry_update_status(f->r, kept), 0);
        _cleanup_(obj_freep) Obj *cleared = fetch(f, "Machine", "default", "m1");
        assert_null(obj_get(cleared, "status"));
        assert_string_equal(obj_get_str(cleared, "spec.version"), "v1.31.0");
}

static void test_delete(void **state) {
        Fixture *f = *state;
        _cleanup_(obj_freep) Obj *o = create(f, machine_yaml);
        /* Wrong uid: a different object by the same name. */
        assert_int_equal(registry_delete(f->r, K("Machine"), "default", "m1", "not-the-uid"),
                         -ESTALE);
        _cleanup_(obj_freep) Obj *still = fetch(f, "Machine", "default", "m1");
        /* No finalizers: gone at once. */
        assert_int_equal(registry_delete(f->r, K("Machine"), "default", "m1", meta_uid(o)), 0);
        Obj *gone = NULL;
        assert_int_equal(registry_get(f->r, K("Machine"), "default", "m1", &gone), -ENOENT);
        assert_int_equal(registry_delete(f->r, K("Machine"), "default", "m1", NULL), -ENOENT);
        /* Cluster-scoped. */
        _cleanup_(obj_freep) Obj *h = create(f, "kind: Host\nmetadata: {name: h1}\n");
        assert_int_equal(registry_delete(f->r, K("Host"), NULL, "h1", NULL), 0);
        assert_int_equal(registry_get(f->r, K("Host"), NULL, "h1", &gone), -ENOENT);
        assert_null(gone);
}

static void test_finalizers(void **state) {
        Fixture *f = *state;
        _cleanup_(obj_freep) Obj *o = yaml(machine_yaml);
        assert_int_equal(meta_add_finalizer(o, "machine.cluster.x-k8s.io"), 1);
        assert_int_equal(meta_add_finalizer(o, "machine.cluster.x-k8s.io"), 0);
        assert_int_equal(meta_add_finalizer(o, "anvil.dev/host-reset"), 1);
        assert_int_equal(registry_create(f->r, o), 0);

        /* Delete marks it. */
        assert_int_equal(registry_delete(f->r, K("Machine"), "default", "m1", NULL), 1);
        _cleanup_(obj_freep) Obj *d = fetch(f, "Machine", "default", "m1");
        assert_true(meta_deleting(d));
        int64_t ts;
        assert_int_equal(parse_rfc3339(obj_get_str(d, "metadata.deletionTimestamp"), &ts), 0);
        /* Deleting again changes nothing. */
        int64_t rev = store_revision(f->s);
        assert_int_equal(registry_delete(f->r, K("Machine"), "default", "m1", NULL), 1);
        assert_int_equal(store_revision(f->s), rev);
        /* An update cannot take deletionTimestamp away. */
        assert_true(obj_del(d, "metadata.deletionTimestamp"));
        assert_int_equal(registry_update(f->r, d), 0);
        assert_true(meta_deleting(d));
        /* Removing one finalizer: still there. */
        assert_int_equal(meta_remove_finalizer(d, "machine.cluster.x-k8s.io"), 1);
        assert_int_equal(meta_remove_finalizer(d, "machine.cluster.x-k8s.io"), 0);
        assert_int_equal(registry_update(f->r, d), 0);
        _cleanup_(obj_freep) Obj *d2 = fetch(f, "Machine", "default", "m1");
        assert_true(meta_has_finalizer(d2, "anvil.dev/host-reset"));
        assert_false(meta_has_finalizer(d2, "machine.cluster.x-k8s.io"));
        /* Removing the last one by update deletes the object (returns 1). */
        assert_int_equal(meta_remove_finalizer(d2, "anvil.dev/host-reset"), 1);
        assert_int_equal(registry_update(f->r, d2), 1);
        Obj *gone = NULL;
        assert_int_equal(registry_get(f->r, K("Machine"), "default", "m1", &gone), -ENOENT);
        /* A finalizer-free update of a live object does not delete it. */
        _cleanup_(obj_freep) Obj *live = create(f, machine_yaml);
        assert_int_equal(registry_update(f->r, live), 0);
        _cleanup_(obj_freep) Obj *alive = fetch(f, "Machine", "default", "m1");
        assert_false(meta_deleting(alive));
}

typedef struct Find {
        const char *needle;
        bool found;
} Find;

static int raw_contains(const StoreKV *kv, void *userdata) {
        Find *fd = userdata;
        if (memmem(kv->value, kv->size, fd->needle, strlen(fd->needle)))
                fd->found = true;
        return 0;
}

static bool store_contains(Store *s, const char *needle) {
        Find fd = {.needle = needle};
        assert_int_equal(store_list(s, "", raw_contains, &fd), 0);
        return fd.found;
}

static void test_secrets_encrypted_at_rest(void **state) {
        Fixture *f = *state;
        _cleanup_(obj_freep) Obj *sec = create(f, "apiVersion: v1\nkind: Secret\n"
                                                  "metadata: {name: prod-ca}\n"
                                                  "type: cluster.x-k8s.io/secret\n"
                                                  "stringData: {tls.key: PLAINTEXT-CA-KEY-0123}\n"
                                                  "data: {token: c2VjcmV0LXRva2VuLTk4NzY=}\n");
        /* A Machine is stored as plain msgpack: its strings are visible... */
        _cleanup_(obj_freep) Obj *m = create(f, machine_yaml);
        assert_true(store_contains(f->s, "m1-bootstrap"));
        /* ...the Secret's are not, not even its name or type. */
        assert_false(store_contains(f->s, "PLAINTEXT-CA-KEY-0123"));
        assert_false(store_contains(f->s, "c2VjcmV0LXRva2VuLTk4NzY="));
        assert_false(store_contains(f->s, "cluster.x-k8s.io/secret"));
        _cleanup_free_ void *raw = NULL;
        size_t n = 0;
        assert_int_equal(store_get(f->s, "Secret/default/prod-ca", &raw, &n, NULL), 0);
        assert_null(memmem(raw, n, "prod-ca", 7));
        /* And it reads back through the registry. */
        _cleanup_(obj_freep) Obj *got = fetch(f, "Secret", "default", "prod-ca");
        assert_string_equal(obj_str(obj_map_get(obj_get(got, "stringData"), "tls.key")),
                            "PLAINTEXT-CA-KEY-0123");
        assert_string_equal(meta_uid(got), meta_uid(sec));
        /* Updates stay encrypted. */
        assert_int_equal(obj_map_set_str(obj_get(got, "stringData"), "tls.key", "SECOND-SECRET"),
                         0);
        assert_int_equal(registry_update(f->r, got), 0);
        assert_false(store_contains(f->s, "SECOND-SECRET"));
        _cleanup_(obj_freep) Obj *again = fetch(f, "Secret", "default", "prod-ca");
        assert_string_equal(obj_str(obj_map_get(obj_get(again, "stringData"), "tls.key")),
                            "SECOND-SECRET");

        /* Another data key cannot read it (and does not crash trying). */
        uint8_t other[32];
        randombytes_buf(other, sizeof(other));
        _cleanup_(registry_freep) Registry *r2 = NULL;
        assert_int_equal(registry_new(f->s, other, &r2), 0);
        Obj *o = NULL;
        assert_int_equal(registry_get(r2, K("Secret"), "default", "prod-ca", &o), -EBADMSG);
        assert_null(o);
        /* Listing with the wrong key skips the undecodable object. */
        _cleanup_(obj_freep) Obj *list = NULL;
        assert_int_equal(registry_list_all(r2, K("Secret"), NULL, NULL, &list), 0);
        assert_int_equal(obj_len(list), 0);
        (void)m;
}

static void test_list(void **state) {
        Fixture *f = *state;
        const char *names[] = {"c", "a", "b"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_(obj_freep) Obj *o = yaml(machine_yaml);
                assert_int_equal(obj_set_str(o, "metadata.name", names[i]), 0);
                assert_int_equal(meta_set_label(o, "pool", i == 1 ? "b" : "a"), 0);
                assert_int_equal(registry_create(f->r, o), 0);
        }
        _cleanup_(obj_freep) Obj *other_ns = yaml(machine_yaml);
        assert_int_equal(obj_set_str(other_ns, "metadata.namespace", "team-a"), 0);
        assert_int_equal(registry_create(f->r, other_ns), 0);
        _cleanup_(obj_freep) Obj *ms = yaml("kind: MachineSet\nmetadata: {name: a}\n");
        assert_int_equal(registry_create(f->r, ms), 0);

        _cleanup_(obj_freep) Obj *all = NULL;
        assert_int_equal(registry_list_all(f->r, K("Machine"), NULL, NULL, &all), 0);
        assert_int_equal(obj_len(all), 4);
        _cleanup_(obj_freep) Obj *def = NULL;
        assert_int_equal(registry_list_all(f->r, K("Machine"), "default", NULL, &def), 0);
        assert_int_equal(obj_len(def), 3);
        /* In key order, each with its resourceVersion. */
        assert_string_equal(meta_name(obj_list_get(def, 0)), "a");
        assert_string_equal(meta_name(obj_list_get(def, 1)), "b");
        assert_string_equal(meta_name(obj_list_get(def, 2)), "c");
        assert_non_null(obj_get_str(obj_list_get(def, 0), "metadata.resourceVersion"));

        _cleanup_(obj_freep) Obj *sel = yaml("matchLabels: {pool: b}\n");
        _cleanup_(obj_freep) Obj *pool_b = NULL;
        assert_int_equal(registry_list_all(f->r, K("Machine"), NULL, sel, &pool_b), 0);
        assert_int_equal(obj_len(pool_b), 1);
        assert_string_equal(meta_name(obj_list_get(pool_b, 0)), "a");
        _cleanup_(obj_freep) Obj *none = NULL;
        assert_int_equal(registry_list_all(f->r, K("Machine"), "nowhere", NULL, &none), 0);
        assert_int_equal(obj_len(none), 0);
}

static int count_controllers(const Obj *o) {
        int n = 0;
        OBJ_LIST_FOREACH(r, obj_get(o, "metadata.ownerReferences"), i)
        if (obj_get_bool(r, "controller", false))
                n++;
        return n;
}

static void test_controller_ref_promotion(void **state) {
        (void)state;
        /* meta_set_controller_ref() promoting an existing plain owner reference clears the
         * controller flag of the current controller: an object has at most one controller
         * reference (the API server refuses two: "Only one reference can have Controller set
         * to true"), and meta_controller_ref() then names the new one. */
        _cleanup_(obj_freep) Obj *a = yaml("kind: MachineSet\nmetadata: {name: a, uid: u-a}\n");
        _cleanup_(obj_freep) Obj *b = yaml("kind: MachineSet\nmetadata: {name: b, uid: u-b}\n");
        _cleanup_(obj_freep) Obj *o = yaml("kind: Machine\nmetadata: {name: m}\n");
        assert_int_equal(meta_add_owner_ref(o, b, false), 1);
        assert_int_equal(meta_set_controller_ref(o, a), 1);
        assert_int_equal(meta_set_controller_ref(o, b), 1);
        assert_int_equal(count_controllers(o), 1);
        assert_string_equal(obj_get_str(meta_controller_ref(o), "uid"), "u-b");
        /* Setting the same controller again changes nothing. */
        assert_int_equal(meta_set_controller_ref(o, b), 0);
        assert_int_equal(count_controllers(o), 1);
        assert_int_equal(obj_len(obj_get(o, "metadata.ownerReferences")), 2);
}

static void test_meta_helpers(void **state) {
        (void)state;
        _cleanup_(obj_freep) Obj *owner =
                yaml("apiVersion: cluster.x-k8s.io/v1beta1\n"
                     "kind: MachineSet\n"
                     "metadata: {name: ms, namespace: default, uid: u-ms}\n");
        _cleanup_(obj_freep) Obj *other = yaml("apiVersion: cluster.x-k8s.io/v1beta1\n"
                                               "kind: MachineDeployment\n"
                                               "metadata: {name: md, uid: u-md}\n");
        _cleanup_(obj_freep) Obj *o = yaml("kind: Machine\nmetadata: {name: m}\n");
        assert_null(meta_controller_ref(o));
        assert_int_equal(meta_add_owner_ref(o, other, false), 1);
        assert_int_equal(meta_add_owner_ref(o, other, false), 0);
        assert_true(meta_owned_by(o, other));
        assert_false(meta_owned_by(o, owner));
        assert_null(meta_controller_ref(o));
        assert_int_equal(meta_set_controller_ref(o, owner), 1);
        const Obj *ref = meta_controller_ref(o);
        assert_non_null(ref);
        assert_string_equal(obj_get_str(ref, "uid"), "u-ms");
        assert_string_equal(obj_get_str(ref, "kind"), "MachineSet");
        assert_true(obj_get_bool(ref, "blockOwnerDeletion", false));
        assert_int_equal(meta_set_controller_ref(o, owner), 0);
        /* Switching to a new owner: the old controller reference loses its flag. */
        _cleanup_(obj_freep) Obj *third = yaml("kind: KubeadmControlPlane\n"
                                               "metadata: {name: kcp, uid: u-kcp}\n");
        assert_int_equal(meta_set_controller_ref(o, third), 1);
        assert_int_equal(count_controllers(o), 1);
        assert_string_equal(obj_get_str(meta_controller_ref(o), "uid"), "u-kcp");
        assert_int_equal(obj_len(obj_get(o, "metadata.ownerReferences")), 3);

        _cleanup_(obj_freep) Obj *ref2 = object_ref(owner);
        assert_string_equal(obj_get_str(ref2, "namespace"), "default");
        assert_string_equal(obj_get_str(ref2, "uid"), "u-ms");
        assert_string_equal(obj_get_str(ref2, "name"), "ms");

        assert_int_equal(meta_set_label(o, "cluster.x-k8s.io/cluster-name", "prod"), 0);
        assert_string_equal(meta_label(o, "cluster.x-k8s.io/cluster-name"), "prod");
        assert_int_equal(meta_set_label(o, "cluster.x-k8s.io/cluster-name", NULL), 0);
        assert_null(meta_label(o, "cluster.x-k8s.io/cluster-name"));
        assert_int_equal(meta_set_annotation(o, "a.b/c", "d"), 0);
        assert_string_equal(meta_annotation(o, "a.b/c"), "d");
        assert_int_equal(meta_generation(o), 0);
        assert_false(meta_deleting(o));
}

int main(void) {
        if (sodium_init() < 0)
                return 1;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys),
                cmocka_unit_test_setup_teardown(test_create_fills_metadata, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_generate_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_preconditions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_generation_bumps_only_on_spec_change, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_status_subresource, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_finalizers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_secrets_encrypted_at_rest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list, setup, teardown),
                cmocka_unit_test(test_meta_helpers),
                cmocka_unit_test(test_controller_ref_promotion),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
