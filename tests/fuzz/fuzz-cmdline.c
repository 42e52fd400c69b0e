/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel command line (/proc/cmdline), how a PXE-booted host learns its coordinator and
 * token: anvil.* parameters are parsed strictly, everything else is ignored; a bad value is
 * an error message and changes nothing. */
#include "agent-config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        char *text = fuzz_text(data, size);
        AgentConfig c = {0};
        char *err = NULL;
        int r = agent_config_apply_cmdline(&c, text, &err);
        if (r < 0) {
                FUZZ_CHECK(err != NULL);
                FUZZ_CHECK(!c.coordinator && !c.coordinator_key && !c.token && !c.state_dir);
        } else {
                FUZZ_CHECK(err == NULL);
                FUZZ_CHECK(!c.coordinator || strncmp(c.coordinator, "tcp://", 6) == 0);
        }
        free(err);
        agent_config_done(&c);
        free(text);
        return 0;
}
