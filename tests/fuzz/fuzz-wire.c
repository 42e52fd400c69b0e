/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire envelope and every message type's body schema: wire_decode() on each channel
 * (the first input byte picks it). A message that decodes must re-encode to bytes that decode
 * to the same value: what the coordinator acts on is exactly what was sent.
 */
#include "fuzz.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        if (size < 1)
                return 0;
        static const MsgChannel channels[] = {CHANNEL_AGENT_TO_COORDINATOR,
                                              CHANNEL_COORDINATOR_TO_AGENT, CHANNEL_ADMIN_REQUEST,
                                              CHANNEL_ADMIN_RESPONSE};
        MsgChannel ch = channels[data[0] % 4];
        MsgType type;
        Obj *body = NULL;
        char err[256];
        int r = wire_decode(ch, data + 1, size - 1, &type, &body, err, sizeof(err));
        if (r < 0) {
                FUZZ_CHECK(body == NULL);
                FUZZ_CHECK(err[0] != 0 || r == -ENOMEM);
                return 0;
        }
        char *buf = NULL;
        size_t n = 0;
        FUZZ_CHECK(wire_encode(type, body, &buf, &n) == 0);
        MsgType type2;
        Obj *body2 = NULL;
        FUZZ_CHECK(wire_decode(ch, buf, n, &type2, &body2, err, sizeof(err)) == 0);
        FUZZ_CHECK(type2 == type);
        FUZZ_CHECK(obj_equal(body, body2));
        free(buf);
        obj_free(body);
        obj_free(body2);
        return 0;
}
