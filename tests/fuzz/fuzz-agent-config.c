/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's configuration file (/etc/anvil/agent.yaml): parsed and validated against its
 * schema, then applied and completed with defaults, as anvil-agent does at start. */
#include "agent-config.h"
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_setup();
        char *text = fuzz_text(data, size);
        Obj *o = NULL;
        char *errors = NULL;
        int r = config_parse("agent.yaml", text, size, agent_config_schema, &o, &errors);
        if (r == -EBADMSG)
                FUZZ_CHECK(errors != NULL);
        if (r >= 0) {
                AgentConfig c = {0};
                FUZZ_CHECK(agent_config_apply_yaml(&c, o) >= 0);
                FUZZ_CHECK(agent_config_finish(&c) >= 0);
                FUZZ_CHECK(c.state_dir && c.heartbeat_usec > 0);
                agent_config_done(&c);
        }
        obj_free(o);
        free(errors);
        free(text);
        return 0;
}
