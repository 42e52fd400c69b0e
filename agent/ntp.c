/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ntp step's file (see ntp.h). Expected load: once per machine.
 */
#include "fileio.h"
#include "log.h"
#include "ntp.h"

char *ntp_dropin_text(const Obj *ntp, const char *machine) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        fprintf(f,
                "# Written by anvil-agent from the ntp of machine %s's KubeadmConfig.\n"
                "# See timesyncd.conf(5).\n"
                "[Time]\n",
                strna(machine));
        const Obj *servers = obj_map_get(ntp, "servers");
        if (obj_len(servers) > 0) {
                fputs("NTP=", f);
                OBJ_LIST_FOREACH(s, servers, i) {
                        fprintf(f, "%s%s", i ? " " : "", strempty(obj_str(s)));
                }
                fputc('\n', f);
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

int ntp_write_dropin(const AgentConfig *c, const Obj *ntp, const char *machine, char *err,
                     size_t errsz) {
        _cleanup_free_ char *text = ntp_dropin_text(ntp, machine);
        _cleanup_free_ char *path = agent_config_host_path(c, NTP_DROPIN);
        if (!text || !path)
                return -ENOMEM;
        int r = mkdir_parents(path, 0755);
        if (r >= 0)
                r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0) {
                snprintf(err, errsz, "%s: %s", NTP_DROPIN, strerror(-r));
                return r;
        }
        log_info("Wrote %s: %zu NTP servers.", NTP_DROPIN, obj_len(obj_map_get(ntp, "servers")));
        return 0;
}
