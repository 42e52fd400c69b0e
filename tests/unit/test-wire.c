/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of common/wire.h: every message type encodes and decodes on its own socket, and
 * the decoder refuses (whole) any frame with the wrong version, type, direction, shape or size,
 * with a reason that names the type and the field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mp.h"
#include "obj.h"
#include "wire.h"
#include "yamlio.h"

static Obj *yaml(const char *text) {
        Obj *o = NULL;
        YamlError err = {0};
        if (yaml_parse_one(text, strlen(text), &o, &err) < 0)
                fail_msg("bad test YAML at %u:%u: %s", err.line, err.column, err.message);
        return o;
}

typedef struct Case {
        MsgType type;
        MsgChannel channel;
        const char *body;
} Case;

static const Case valid[] = {
        {MSG_ENROLL, CHANNEL_AGENT_TO_COORDINATOR,
         "agentKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID'\n"
         "proof: p\n"
         "facts:\n"
         "  productUUID: 4c4c4544-0042-3510-8058-b4c04f4e3232\n"
         "  hostname: rack1-07\n"
         "  serial: SN123\n"
         "  vendor: Dell Inc.\n"
         "  model: PowerEdge R640\n"
         "  cpu: {model: Xeon Gold, count: 32}\n"
         "  memoryBytes: 274877906944\n"
         "  interfaces:\n"
         "    - {name: eno1, mac: 'aa:bb:cc:dd:ee:ff', addresses: [10.0.0.7/24, 'fe80::1/64']}\n"
         "  disks:\n"
         "    - {name: sda, sizeBytes: 960197124096, rotational: false}\n"
         "  kernel: 6.1.0-18-amd64\n"
         "  os: Debian GNU/Linux 12\n"
         "  agentVersion: 0.1.0\n"},
        {MSG_HELLO, CHANNEL_AGENT_TO_COORDINATOR,
         "generation: 0\nstate: Idle\nstep: {name: kubeadm-join, index: 2, total: 5}\n"
         "facts: {productUUID: u1, hostname: h1}\n"},
        {MSG_ACK, CHANNEL_AGENT_TO_COORDINATOR,
         "generation: 8\nstate: Upgrading\naction: Upgrade\n"},
        {MSG_STATUS, CHANNEL_AGENT_TO_COORDINATOR,
         "generation: 7\nstate: Failed\nstep: {name: kubeadm-init, index: 1, total: 4}\n"
         "message: kubeadm init failed\nexitCode: 1\noutput: \"error: port 6443 in use\\n\"\n"},
        {MSG_REPORT, CHANNEL_AGENT_TO_COORDINATOR,
         "generation: 7\nproviderID: anvil://u1\nnodeName: rack1-07\nnodeReady: true\n"
         "kubeletVersion: v1.30.2\n"},
        {MSG_HEARTBEAT, CHANNEL_AGENT_TO_COORDINATOR,
         "seq: 42\ngeneration: 7\n"
         "health:\n"
         "  healthy: true\n"
         "  load1: 0.25\n"
         "  units:\n"
         "    kubelet.service: {activeState: active, subState: running, result: success,"
         " restarts: 0}\n"},
        {MSG_RESULT, CHANNEL_AGENT_TO_COORDINATOR, "id: cmd-1\nexitCode: -1\noutput: ''\n"},
        {MSG_BYE, CHANNEL_AGENT_TO_COORDINATOR, "reason: Stopping\n"},
        {MSG_ENROLLED, CHANNEL_COORDINATOR_TO_AGENT, "host: rack1-07\n"},
        {MSG_REFUSED, CHANNEL_COORDINATOR_TO_AGENT,
         "reason: TokenExpired\nmessage: the enrollment token has expired\n"},
        {MSG_DESIRED, CHANNEL_COORDINATOR_TO_AGENT,
         "generation: 3\naction: Provision\n"
         "machine: {name: prod-md-0-x7k2p, namespace: default, cluster: prod, role: worker,"
         " version: v1.30.2, providerID: anvil://u1}\n"
         "bootstrap: c2VhbGVkIGJ1bmRsZQ==\n"},
        {MSG_COMMAND, CHANNEL_COORDINATOR_TO_AGENT,
         "id: cmd-1\ncommand: reset\nargs: {force: \"true\"}\n"},
        {MSG_REVOKED, CHANNEL_COORDINATOR_TO_AGENT, "reason: revoked by operator\n"},
        {MSG_API_REQUEST, CHANNEL_ADMIN_REQUEST,
         "op: get\nkind: machines\nnamespace: default\nselector: 'role=worker'\n"
         "labels: {a: b}\nremove: [x]\nallNamespaces: false\nreplicas: 3\n"},
        {MSG_API_RESPONSE, CHANNEL_ADMIN_RESPONSE,
         "ok: true\ncode: OK\nrevision: 12\nmore: false\nproblems: []\n"
         "items: [{kind: Machine, metadata: {name: m1}}, 3, null]\nobject: {any: [thing]}\n"},
};

static const MsgChannel all_channels[] = {CHANNEL_AGENT_TO_COORDINATOR,
                                          CHANNEL_COORDINATOR_TO_AGENT, CHANNEL_ADMIN_REQUEST,
                                          CHANNEL_ADMIN_RESPONSE};

/* Encodes body as type, decodes on channel; returns the decoder's result and its reason. */
static int roundtrip(MsgType type, const Obj *body, MsgChannel channel, Obj **ret_body, char *err,
                     size_t errsz) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        assert_int_equal(wire_encode(type, body, &buf, &size), 0);
        MsgType got = _MSG_TYPE_INVALID;
        Obj *out = NULL;
        err[0] = 0;
        int r = wire_decode(channel, buf, size, &got, &out, err, errsz);
        if (r >= 0) {
                assert_int_equal(got, type);
                assert_non_null(out);
                *ret_body = out;
        } else
                assert_null(out);
        return r;
}

/* Decodes body (YAML) as type on the type's own channel, expecting a refusal that names the
 * type and mentions each of the needles. */
static void expect_refused(MsgType type, MsgChannel channel, const char *body_yaml,
                           const char *needle1, const char *needle2) {
        _cleanup_(obj_freep) Obj *body = yaml(body_yaml);
        char err[512];
        Obj *out = NULL;
        int r = roundtrip(type, body, channel, &out, err, sizeof(err));
        if (r != -EBADMSG) {
                obj_free(out);
                fail_msg("%s body accepted (r=%d):\n%s", msg_type_to_string(type), r, body_yaml);
        }
        if (!strstr(err, msg_type_to_string(type)) || (needle1 && !strstr(err, needle1)) ||
            (needle2 && !strstr(err, needle2)))
                fail_msg("reason \"%s\" does not name %s / %s / %s", err, msg_type_to_string(type),
                         strna(needle1), strna(needle2));
}

static void test_type_names(void **state) {
        (void)state;
        for (int t = 0; t < _MSG_TYPE_MAX; t++) {
                const char *name = msg_type_to_string((MsgType)t);
                assert_non_null(name);
                assert_int_equal(msg_type_from_string(name), t);
                assert_non_null(msg_type_schema((MsgType)t));
        }
        assert_string_equal(msg_type_to_string(MSG_DESIRED), "DESIRED");
        assert_int_equal(msg_type_from_string("desired"), _MSG_TYPE_INVALID);
        assert_int_equal(msg_type_from_string(""), _MSG_TYPE_INVALID);
        assert_null(msg_type_to_string(_MSG_TYPE_MAX));
        assert_null(msg_type_to_string(_MSG_TYPE_INVALID));
        assert_null(msg_type_schema(_MSG_TYPE_MAX));
        char *buf = NULL;
        size_t size;
        assert_int_equal(wire_encode(_MSG_TYPE_MAX, NULL, &buf, &size), -EINVAL);
        assert_null(buf);
}

static void test_each_type_round_trips_on_its_channel(void **state) {
        (void)state;
        assert_int_equal(ELEMENTSOF(valid), _MSG_TYPE_MAX);
        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                _cleanup_(obj_freep) Obj *body = yaml(valid[i].body);
                _cleanup_(obj_freep) Obj *out = NULL;
                char err[256];
                int r = roundtrip(valid[i].type, body, valid[i].channel, &out, err, sizeof(err));
                if (r < 0)
                        fail_msg("%s refused: %d %s", msg_type_to_string(valid[i].type), r, err);
                assert_true(obj_equal(body, out));
        }
        /* An older agent's ACK: the generation alone. */
        _cleanup_(obj_freep) Obj *body = yaml("generation: 7\n"), *out = NULL;
        char err[256];
        assert_int_equal(
                roundtrip(MSG_ACK, body, CHANNEL_AGENT_TO_COORDINATOR, &out, err, sizeof(err)), 0);
}

static void test_each_type_refused_on_other_channels(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                _cleanup_(obj_freep) Obj *body = yaml(valid[i].body);
                for (size_t c = 0; c < ELEMENTSOF(all_channels); c++) {
                        if (all_channels[c] == valid[i].channel)
                                continue;
                        char err[256];
                        Obj *out = NULL;
                        int r = roundtrip(valid[i].type, body, all_channels[c], &out, err,
                                          sizeof(err));
                        if (r != -EBADMSG) {
                                obj_free(out);
                                fail_msg("%s accepted on channel %zu",
                                         msg_type_to_string(valid[i].type), c);
                        }
                        assert_non_null(strstr(err, msg_type_to_string(valid[i].type)));
                        assert_non_null(strstr(err, "unexpected message type"));
                }
        }
}

static void test_null_body_is_empty_map(void **state) {
        (void)state;
        char err[256];
        _cleanup_(obj_freep) Obj *out = NULL;
        assert_int_equal(
                roundtrip(MSG_REVOKED, NULL, CHANNEL_COORDINATOR_TO_AGENT, &out, err, sizeof(err)),
                0);
        assert_true(obj_is(out, OBJ_MAP));
        assert_int_equal(obj_len(out), 0);
        /* A type with required fields cannot be sent empty. */
        Obj *o = NULL;
        assert_int_equal(
                roundtrip(MSG_ACK, NULL, CHANNEL_AGENT_TO_COORDINATOR, &o, err, sizeof(err)),
                -EBADMSG);
        assert_non_null(strstr(err, "ACK: generation: required field is missing"));
}

static void test_wrong_version(void **state) {
        (void)state;
        int64_t versions[] = {0, 2, -1, WIRE_VERSION + 100};
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                _cleanup_(obj_freep) Obj *env = obj_new_list();
                assert_int_equal(obj_list_append(env, obj_new_int(versions[i])), 0);
                assert_int_equal(obj_list_append(env, obj_new_str("ACK")), 0);
                assert_int_equal(obj_list_append(env, yaml("generation: 1\n")), 0);
                _cleanup_free_ char *buf = NULL;
                size_t size;
                assert_int_equal(mp_encode(env, &buf, &size), 0);
                MsgType t = _MSG_TYPE_INVALID;
                Obj *out = NULL;
                char err[256] = "";
                assert_int_equal(wire_decode(CHANNEL_AGENT_TO_COORDINATOR, buf, size, &t, &out, err,
                                             sizeof(err)),
                                 -EPROTONOSUPPORT);
                assert_null(out);
                assert_int_equal(t, _MSG_TYPE_INVALID); /* untouched */
                char want[64];
                snprintf(want, sizeof(want), "protocol version %lld", (long long)versions[i]);
                assert_non_null(strstr(err, want));
        }
}

static int decode_env(MsgChannel ch, const Obj *env, char *err, size_t errsz) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        assert_int_equal(mp_encode(env, &buf, &size), 0);
        MsgType t;
        Obj *out = NULL;
        int r = wire_decode(ch, buf, size, &t, &out, err, errsz);
        obj_free(out);
        return r;
}

static void test_bad_envelopes(void **state) {
        (void)state;
        char err[256];
        /* Not msgpack. */
        MsgType t;
        Obj *out = NULL;
        assert_int_equal(wire_decode(CHANNEL_AGENT_TO_COORDINATOR, "\xc1garbage", 8, &t, &out, err,
                                     sizeof(err)),
                         -EBADMSG);
        assert_non_null(strstr(err, "msgpack"));
        assert_int_equal(
                wire_decode(CHANNEL_AGENT_TO_COORDINATOR, "", 0, &t, &out, err, sizeof(err)),
                -EBADMSG);
        assert_null(out);

        const char *shapes[] = {
                "{version: 1, type: ACK}\n",      /* a map, not a list */
                "[1, ACK]\n",                     /* two items */
                "[1, ACK, {generation: 1}, x]\n", /* four items */
                "['1', ACK, {generation: 1}]\n",  /* version as a string */
                "[1.0, ACK, {generation: 1}]\n",  /* version as a float */
                "[1, 5, {generation: 1}]\n",      /* type as an int */
                "[1, ACK, [generation, 1]]\n",    /* body as a list */
                "[1, ACK, null]\n",               /* body null */
        };
        for (size_t i = 0; i < ELEMENTSOF(shapes); i++) {
                _cleanup_(obj_freep) Obj *env = yaml(shapes[i]);
                if (decode_env(CHANNEL_AGENT_TO_COORDINATOR, env, err, sizeof(err)) != -EBADMSG)
                        fail_msg("envelope accepted: %s", shapes[i]);
                assert_non_null(strstr(err, "envelope"));
        }

        /* Unknown type names. */
        /* (The empty type name is in test_empty_type_name.) */
        const char *types[] = {"BOGUS", "ack", "ACK ", "API_REQUEST\n", "ENROLLX"};
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                _cleanup_(obj_freep) Obj *env = obj_new_list();
                assert_int_equal(obj_list_append(env, obj_new_int(WIRE_VERSION)), 0);
                assert_int_equal(obj_list_append(env, obj_new_str(types[i])), 0);
                assert_int_equal(obj_list_append(env, obj_new_map()), 0);
                assert_int_equal(decode_env(CHANNEL_AGENT_TO_COORDINATOR, env, err, sizeof(err)),
                                 -EBADMSG);
                assert_non_null(strstr(err, "unexpected message type"));
                char quoted[32];
                snprintf(quoted, sizeof(quoted), "\"%s\"", types[i]);
                assert_non_null(strstr(err, quoted));
        }
        _cleanup_(obj_freep) Obj *bogus = yaml("[1, BOGUS, {}]\n");
        assert_int_equal(decode_env(CHANNEL_ADMIN_REQUEST, bogus, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "\"BOGUS\""));
}

static void test_empty_type_name(void **state) {
        (void)state;
        /* The frame [1, "", {}] (hex 93 01 a0 80), which any agent can send, is refused as an
         * unexpected message type. msgpack-c hands out a NULL pointer for that empty string
         * (see test-mp.c test_empty_string); decoding it must neither crash nor hit undefined
         * behaviour under the ASan+UBSan build. */
        static const uint8_t frame[] = {0x93, 0x01, 0xa0, 0x80};
        char err[256];
        MsgType t;
        Obj *out = NULL;
        assert_int_equal(wire_decode(CHANNEL_AGENT_TO_COORDINATOR, frame, sizeof(frame), &t, &out,
                                     err, sizeof(err)),
                         -EBADMSG);
        assert_non_null(strstr(err, "unexpected message type \"\""));
}

static void test_coordinator_type_on_agent_channel(void **state) {
        (void)state;
        /* An agent must not be able to send what only the coordinator sends. */
        const MsgType down[] = {MSG_ENROLLED, MSG_REFUSED,      MSG_DESIRED,    MSG_COMMAND,
                                MSG_REVOKED,  MSG_API_RESPONSE, MSG_API_REQUEST};
        for (size_t i = 0; i < ELEMENTSOF(down); i++) {
                const Case *c = NULL;
                for (size_t j = 0; j < ELEMENTSOF(valid); j++)
                        if (valid[j].type == down[i])
                                c = &valid[j];
                assert_non_null(c);
                _cleanup_(obj_freep) Obj *body = yaml(c->body);
                char err[256];
                Obj *out = NULL;
                assert_int_equal(roundtrip(down[i], body, CHANNEL_AGENT_TO_COORDINATOR, &out, err,
                                           sizeof(err)),
                                 -EBADMSG);
                assert_non_null(strstr(err, msg_type_to_string(down[i])));
        }
}

static void test_missing_required_field(void **state) {
        (void)state;
        expect_refused(MSG_HELLO, CHANNEL_AGENT_TO_COORDINATOR, "state: Idle\n", "generation",
                       "required field is missing");
        expect_refused(MSG_ENROLL, CHANNEL_AGENT_TO_COORDINATOR,
                       "agentKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID'\nproof: p\n"
                       "facts: {hostname: h}\n",
                       "facts.productUUID", "required");
        expect_refused(MSG_ENROLL, CHANNEL_AGENT_TO_COORDINATOR,
                       "agentKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID'\nproof: p\n"
                       "facts: {productUUID: u, hostname: h, interfaces: [{name: a}, "
                       "{mac: m}]}\n",
                       "facts.interfaces[1].name", "required");
        expect_refused(MSG_DESIRED, CHANNEL_COORDINATOR_TO_AGENT, "generation: 1\n", "action",
                       "required");
        expect_refused(MSG_API_RESPONSE, CHANNEL_ADMIN_RESPONSE, "message: hi\n", "ok", "required");
        /* null is absent. */
        expect_refused(MSG_ACK, CHANNEL_AGENT_TO_COORDINATOR, "generation: null\n", "generation",
                       "required");
}

static void test_wrong_field_type(void **state) {
        (void)state;
        expect_refused(MSG_ACK, CHANNEL_AGENT_TO_COORDINATOR, "generation: '5'\n",
                       "ACK: generation: expected integer, got string", NULL);
        expect_refused(MSG_ACK, CHANNEL_AGENT_TO_COORDINATOR, "generation: 5.5\n", "generation",
                       "expected integer, got number");
        expect_refused(MSG_ACK, CHANNEL_AGENT_TO_COORDINATOR, "generation: 5\nstate: Sleeping\n",
                       "state", NULL);
        expect_refused(MSG_ACK, CHANNEL_AGENT_TO_COORDINATOR, "generation: 5\naction: 3\n",
                       "action", NULL);
        expect_refused(MSG_REPORT, CHANNEL_AGENT_TO_COORDINATOR,
                       "generation: 1\nnodeReady: 'yes'\n", "nodeReady", "expected boolean");
        expect_refused(MSG_HELLO, CHANNEL_AGENT_TO_COORDINATOR,
                       "generation: 1\nstate: Idle\nstep: [a]\n", "step", "expected object");
        expect_refused(MSG_HEARTBEAT, CHANNEL_AGENT_TO_COORDINATOR,
                       "health: {units: {kubelet.service: {restarts: many}}}\n",
                       "health.units.kubelet.service.restarts", "expected integer");
        expect_refused(MSG_COMMAND, CHANNEL_COORDINATOR_TO_AGENT,
                       "id: c\ncommand: reset\nargs: {force: true}\n", "args.force",
                       "expected string");
        expect_refused(MSG_API_REQUEST, CHANNEL_ADMIN_REQUEST, "op: get\nremove: [1]\n",
                       "remove[0]", "expected string");
        /* Enum and range violations. */
        expect_refused(MSG_HELLO, CHANNEL_AGENT_TO_COORDINATOR, "generation: 1\nstate: Sleeping\n",
                       "state", "unsupported value \"Sleeping\"");
        expect_refused(MSG_DESIRED, CHANNEL_COORDINATOR_TO_AGENT, "generation: 0\naction: Idle\n",
                       "generation", "must be greater than or equal to 1");
        expect_refused(MSG_STATUS, CHANNEL_AGENT_TO_COORDINATOR,
                       "generation: 1\nstate: Idle\nexitCode: 5000\n", "exitCode",
                       "must be between -1000 and 1000");
        expect_refused(MSG_API_REQUEST, CHANNEL_ADMIN_REQUEST, "op: rm -rf\n", "op",
                       "unsupported value");
        expect_refused(MSG_ENROLL, CHANNEL_AGENT_TO_COORDINATOR,
                       "agentKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID'\nproof: ''\n"
                       "facts: {productUUID: u, hostname: h}\n",
                       "proof", "must not be empty");
}

static void test_unknown_field(void **state) {
        (void)state;
        expect_refused(MSG_ACK, CHANNEL_AGENT_TO_COORDINATOR, "generation: 1\nsender: evil\n",
                       "sender", "unknown field");
        expect_refused(MSG_DESIRED, CHANNEL_COORDINATOR_TO_AGENT,
                       "generation: 1\naction: Idle\nmachine: {name: m, hostKey: x}\n",
                       "machine.hostKey", "unknown field");
        expect_refused(MSG_HEARTBEAT, CHANNEL_AGENT_TO_COORDINATOR,
                       "health: {units: {a: {activeState: x, pid: 1}}}\n", "health.units.a.pid",
                       "unknown field");
        /* BYE is strict too: a known reason, nothing else (not a host name to spoof). */
        expect_refused(MSG_BYE, CHANNEL_AGENT_TO_COORDINATOR, "reason: Stopping\nhost: other\n",
                       "host", "unknown field");
        expect_refused(MSG_BYE, CHANNEL_AGENT_TO_COORDINATOR, "reason: Crashed\n", "reason", "");
        expect_refused(MSG_BYE, CHANNEL_AGENT_TO_COORDINATOR, "{}\n", "reason", "");
        expect_refused(MSG_ENROLL, CHANNEL_AGENT_TO_COORDINATOR,
                       "agentKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID'\nproof: p\n"
                       "facts: {productUUID: u, hostname: h}\nneedsReset: 'yes'\n",
                       "needsReset", "");
}

static void test_oversize_strings_and_lists(void **state) {
        (void)state;
        char name[WIRE_MAX_NAME + 2];
        memset(name, 'h', WIRE_MAX_NAME + 1);
        name[WIRE_MAX_NAME + 1] = 0;
        _cleanup_(obj_freep) Obj *body =
                yaml("agentKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID'\nproof: p\n"
                     "facts: {productUUID: u}\n");
        assert_int_equal(obj_set_str(body, "facts.hostname", name), 0);
        char err[256];
        Obj *out = NULL;
        assert_int_equal(
                roundtrip(MSG_ENROLL, body, CHANNEL_AGENT_TO_COORDINATOR, &out, err, sizeof(err)),
                -EBADMSG);
        assert_non_null(strstr(err, "ENROLL: facts.hostname: must be at most 253 characters"));
        /* Exactly the limit is fine. */
        name[WIRE_MAX_NAME] = 0;
        assert_int_equal(obj_set_str(body, "facts.hostname", name), 0);
        assert_int_equal(
                roundtrip(MSG_ENROLL, body, CHANNEL_AGENT_TO_COORDINATOR, &out, err, sizeof(err)),
                0);
        out = obj_free(out);

        /* Output beyond WIRE_MAX_OUTPUT. */
        _cleanup_(obj_freep) Obj *st = yaml("generation: 1\nstate: Failed\n");
        _cleanup_free_ char *big = malloc(WIRE_MAX_OUTPUT + 2);
        memset(big, 'o', WIRE_MAX_OUTPUT + 1);
        big[WIRE_MAX_OUTPUT + 1] = 0;
        assert_int_equal(obj_map_set_str(st, "output", big), 0);
        assert_int_equal(
                roundtrip(MSG_STATUS, st, CHANNEL_AGENT_TO_COORDINATOR, &out, err, sizeof(err)),
                -EBADMSG);
        assert_non_null(strstr(err, "STATUS: output: must be at most"));

        /* A list beyond its count limit (interfaces: 128). */
        _cleanup_(obj_freep) Obj *en =
                yaml("agentKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID'\nproof: p\n"
                     "facts: {productUUID: u, hostname: h}\n");
        Obj *ifs = obj_map_ensure_list(obj_map_get(en, "facts"), "interfaces");
        for (int i = 0; i < 129; i++) {
                Obj *it = obj_new_map();
                assert_int_equal(obj_map_set_str(it, "name", "eth"), 0);
                assert_int_equal(obj_list_append(ifs, it), 0);
        }
        assert_int_equal(
                roundtrip(MSG_ENROLL, en, CHANNEL_AGENT_TO_COORDINATOR, &out, err, sizeof(err)),
                -EBADMSG);
        assert_non_null(strstr(err, "facts.interfaces: must have at most 128 items"));
        /* Several problems: the first is named, the rest summarised. */
        expect_refused(MSG_ACK, CHANNEL_AGENT_TO_COORDINATOR, "a: 1\nb: 2\n", "(and more)", NULL);
}

static void test_map_count_limits(void **state) {
        (void)state;
        /* ST_MAP and ST_STRMAP fields enforce their .max count, as wire.h promises for oversize
         * lists and maps: COMMAND.args (.max = 64) with 65 entries and HEARTBEAT.health.units
         * (.max = 64) with 65 units are refused. The rule itself is tested in test-schema.c. */
        _cleanup_(obj_freep) Obj *cmd = yaml("id: c\ncommand: reset\n");
        Obj *args = obj_map_ensure_map(cmd, "args");
        for (int i = 0; i < 65; i++) {
                char k[16];
                snprintf(k, sizeof(k), "k%d", i);
                assert_int_equal(obj_map_set_str(args, k, "v"), 0);
        }
        char err[256];
        Obj *out = NULL;
        int r = roundtrip(MSG_COMMAND, cmd, CHANNEL_COORDINATOR_TO_AGENT, &out, err, sizeof(err));
        obj_free(out);
        assert_int_equal(r, -EBADMSG);
        assert_non_null(strstr(err, "args"));

        _cleanup_(obj_freep) Obj *hb = yaml("seq: 1\n");
        Obj *units = obj_map_ensure_map(obj_map_ensure_map(hb, "health"), "units");
        for (int i = 0; i < 65; i++) {
                char k[32];
                snprintf(k, sizeof(k), "u%d.service", i);
                assert_int_equal(obj_map_set(units, k, obj_new_map()), 0);
        }
        out = NULL;
        r = roundtrip(MSG_HEARTBEAT, hb, CHANNEL_AGENT_TO_COORDINATOR, &out, err, sizeof(err));
        obj_free(out);
        assert_int_equal(r, -EBADMSG);
}

static void test_item_length_limits(void **state) {
        (void)state;
        /* String items of lists and values of string maps have a length bound too
         * (.item_max): a COMMAND arg value or an interface address cannot be arbitrarily long. */
        char big[WIRE_MAX_TEXT + 2];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        _cleanup_free_ char *cmd =
                asprintf_safe("id: c\ncommand: drain-node\nargs: {node: %s}\n", big);
        expect_refused(MSG_COMMAND, CHANNEL_COORDINATOR_TO_AGENT, cmd, "args.node",
                       "at most 4096 characters");
        _cleanup_free_ char *en =
                asprintf_safe("agentKey: 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID'\nproof: p\n"
                              "facts: {productUUID: u, hostname: h, interfaces: [{name: eth0, "
                              "addresses: [10.0.0.1/24, %s]}]}\n",
                              big);
        expect_refused(MSG_ENROLL, CHANNEL_AGENT_TO_COORDINATOR, en,
                       "facts.interfaces[0].addresses[1]", "at most 64 characters");
        /* At the bound is fine. */
        big[WIRE_MAX_TEXT] = 0;
        _cleanup_free_ char *ok =
                asprintf_safe("id: c\ncommand: drain-node\nargs: {node: %s}\n", big);
        _cleanup_(obj_freep) Obj *body = yaml(ok);
        Obj *out = NULL;
        char err[256];
        assert_int_equal(
                roundtrip(MSG_COMMAND, body, CHANNEL_COORDINATOR_TO_AGENT, &out, err, sizeof(err)),
                0);
        obj_free(out);
}

static void test_oversize_frame(void **state) {
        (void)state;
        char err[256];
        MsgType t;
        Obj *out = NULL;
        /* The size check comes first: the bytes need not even be msgpack. */
        size_t n = WIRE_MAX_AGENT_MESSAGE + 1;
        _cleanup_free_ char *junk = calloc(1, n);
        assert_non_null(junk);
        assert_int_equal(
                wire_decode(CHANNEL_AGENT_TO_COORDINATOR, junk, n, &t, &out, err, sizeof(err)),
                -EMSGSIZE);
        assert_non_null(strstr(err, "exceeds"));
        assert_int_equal(
                wire_decode(CHANNEL_COORDINATOR_TO_AGENT, junk, n, &t, &out, err, sizeof(err)),
                -EMSGSIZE);
        assert_null(out);

        /* A 5 MiB manifest: too big for the agent link, fine on the admin socket. */
        _cleanup_(obj_freep) Obj *req = yaml("op: apply\n");
        size_t clen = 5U << 20;
        char *content = malloc(clen + 1);
        assert_non_null(content);
        memset(content, 'y', clen);
        content[clen] = 0;
        assert_int_equal(obj_map_set(req, "content", obj_new_str_take(content)), 0);
        _cleanup_free_ char *buf = NULL;
        size_t size;
        assert_int_equal(wire_encode(MSG_API_REQUEST, req, &buf, &size), 0);
        assert_true(size > WIRE_MAX_AGENT_MESSAGE);
        assert_int_equal(
                wire_decode(CHANNEL_AGENT_TO_COORDINATOR, buf, size, &t, &out, err, sizeof(err)),
                -EMSGSIZE);
        assert_int_equal(wire_decode(CHANNEL_ADMIN_REQUEST, buf, size, &t, &out, err, sizeof(err)),
                         0);
        assert_int_equal(t, MSG_API_REQUEST);
        assert_int_equal(strlen(obj_get_str(out, "content")), clen);
        out = obj_free(out);

        /* Beyond the admin limit. */
        size_t big = WIRE_MAX_ADMIN_MESSAGE + 1;
        _cleanup_free_ char *huge = calloc(1, big);
        assert_non_null(huge);
        assert_int_equal(wire_decode(CHANNEL_ADMIN_REQUEST, huge, big, &t, &out, err, sizeof(err)),
                         -EMSGSIZE);
        assert_int_equal(wire_decode(CHANNEL_ADMIN_RESPONSE, huge, big, &t, &out, err, sizeof(err)),
                         -EMSGSIZE);
}

static void test_admin_response_node_budget(void **state) {
        (void)state;
        /* Admin responses carry whole lists: more nodes than MP_MAX_NODES are fine there. */
        _cleanup_(obj_freep) Obj *resp = yaml("ok: true\n");
        Obj *items = obj_map_ensure_list(resp, "items");
        for (int i = 0; i < MP_MAX_NODES + 10; i++)
                assert_int_equal(obj_list_append(items, obj_new_int(i)), 0);
        char err[256];
        _cleanup_(obj_freep) Obj *out = NULL;
        assert_int_equal(
                roundtrip(MSG_API_RESPONSE, resp, CHANNEL_ADMIN_RESPONSE, &out, err, sizeof(err)),
                0);
        assert_int_equal(obj_len(obj_map_get(out, "items")), MP_MAX_NODES + 10);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_type_names),
                cmocka_unit_test(test_each_type_round_trips_on_its_channel),
                cmocka_unit_test(test_each_type_refused_on_other_channels),
                cmocka_unit_test(test_null_body_is_empty_map),
                cmocka_unit_test(test_wrong_version),
                cmocka_unit_test(test_bad_envelopes),
                cmocka_unit_test(test_empty_type_name),
                cmocka_unit_test(test_coordinator_type_on_agent_channel),
                cmocka_unit_test(test_missing_required_field),
                cmocka_unit_test(test_wrong_field_type),
                cmocka_unit_test(test_unknown_field),
                cmocka_unit_test(test_oversize_strings_and_lists),
                cmocka_unit_test(test_map_count_limits),
                cmocka_unit_test(test_item_length_limits),
                cmocka_unit_test(test_oversize_frame),
                cmocka_unit_test(test_admin_response_node_budget),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
