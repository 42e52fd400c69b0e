/* SPDX-License-Identifier: Apache-2.0 */
/* msgpack decoding (mp_decode), the layer under every wire message and stored object: bounded
 * in depth, nodes and allocation; what decodes re-encodes to the same value. */
#include "fuzz.h"
#include "mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        Obj *o = NULL;
        if (mp_decode(data, size, &o) < 0)
                return 0;
        char *buf = NULL;
        size_t n = 0;
        FUZZ_CHECK(mp_encode(o, &buf, &n) == 0);
        Obj *o2 = NULL;
        FUZZ_CHECK(mp_decode(buf, n, &o2) == 0);
        FUZZ_CHECK(obj_equal(o, o2));
        free(buf);
        obj_free(o);
        obj_free(o2);
        return 0;
}
