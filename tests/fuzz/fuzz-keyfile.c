/* SPDX-License-Identifier: Apache-2.0 */
/* Key files (coordinator.key, agent.key): both keys must be valid Z85 and belong together,
 * or the file is refused and never overwritten. */
#include <sodium.h>
#include <zmq.h>

#include "fuzz.h"
#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        char *text = fuzz_text(data, size);
        KeyPair kp;
        if (keypair_parse(text, size, &kp) == 0) {
                char derived[KEY_Z85_LEN + 1];
                FUZZ_CHECK(zmq_curve_public(derived, kp.secret_z85) == 0);
                FUZZ_CHECK(strcmp(derived, kp.public_z85) == 0);
                keypair_wipe(&kp);
        }
        free(text);
        return 0;
}
