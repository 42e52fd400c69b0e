/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's progress file (state-dir/state.yaml): a damaged file must be refused with a
 * message, never half-read; what loads saves and loads again to the same state. */
#include "fuzz.h"
#include "state.h"
#include "yamlio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        char *text = fuzz_text(data, size);
        Obj *o = NULL;
        char err[512] = "";
        int r = state_parse("state.yaml", text, size, &o, err, sizeof(err));
        if (r == -EBADMSG)
                FUZZ_CHECK(err[0] != 0);
        if (r >= 0) {
                char *out = NULL;
                FUZZ_CHECK(yaml_emit(o, &out) == 0);
                Obj *again = NULL;
                FUZZ_CHECK(state_parse("state.yaml", out, strlen(out), &again, err, sizeof(err)) ==
                           0);
                FUZZ_CHECK(obj_equal(o, again));
                obj_free(again);
                free(out);
        }
        obj_free(o);
        free(text);
        return 0;
}
