/* SPDX-License-Identifier: Apache-2.0 */
/* The coordinator's configuration file (/etc/anvil/coordinator.yaml): parsed, validated and
 * mapped onto the manager's settings, as anvil-coordinator does at start. */
#include "config.h"
#include "coordinator-config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        char *text = fuzz_text(data, size);
        Obj *o = NULL;
        char *errors = NULL;
        int r = config_parse("coordinator.yaml", text, size, coordinator_config_schema, &o,
                             &errors);
        if (r == -EBADMSG)
                FUZZ_CHECK(errors != NULL);
        if (r >= 0) {
                ManagerConfig mc;
                coordinator_config_apply(o, &mc);
                FUZZ_CHECK(mc.listen && mc.state_dir && mc.admin_socket);
                FUZZ_CHECK(mc.heartbeat_grace_usec > 0);
        }
        obj_free(o);
        free(errors);
        free(text);
        return 0;
}
