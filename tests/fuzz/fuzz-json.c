/* SPDX-License-Identifier: Apache-2.0 */
/* JSON as the agent reads it from `kubectl get node -o json` (a child process's output):
 * strict, bounded in depth; what parses emits and parses again to the same value. */
#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        char *text = fuzz_text(data, size);
        Obj *o = NULL;
        if (json_parse(text, size, &o) == 0) {
                char *out = NULL;
                FUZZ_CHECK(json_emit(o, false, &out) == 0);
                Obj *again = NULL;
                FUZZ_CHECK(json_parse(out, strlen(out), &again) == 0);
                FUZZ_CHECK(obj_equal(o, again));
                obj_free(again);
                free(out);
                obj_free(o);
        }
        free(text);
        return 0;
}
