/* SPDX-License-Identifier: Apache-2.0 */
#include <search.h>
#include <time.h>

#include "commands.h"
#include "controllers/controllers.h"
#include "fanout.h"
#include "hostpool.h"
#include "log.h"

typedef struct Command {
        char *id;
        char *host;
        char *command;
        char *requester;
        Obj *args;
        CommandState state;
        int exit_code;
        char *output;
        uint64_t sent_at; /* CLOCK_MONOTONIC µs, 0 = not sent yet */
        uint64_t timeout;
} Command;

struct Commands {
        Manager *m;
        void *by_id; /* tsearch */
};

static int cmp(const void *a, const void *b) {
        return strcmp(((const Command *)a)->id, ((const Command *)b)->id);
}

static Command *find(Commands *c, const char *id) {
        Command probe = {.id = (char *)id};
        void *n = tfind(&probe, &c->by_id, cmp);
        return n ? *(Command **)n : NULL;
}

static void command_free(void *p) {
        Command *x = p;
        free(x->id);
        free(x->host);
        free(x->command);
        free(x->requester);
        free(x->output);
        obj_free(x->args);
        free(x);
}

int commands_new(Manager *m, Commands **ret) {
        Commands *c = calloc(1, sizeof(Commands));
        if (!c)
                return -ENOMEM;
        c->m = m;
        *ret = c;
        return 0;
}

Commands *commands_free(Commands *c) {
        if (!c)
                return NULL;
        tdestroy(c->by_id, command_free);
        free(c);
        return NULL;
}

void command_forget(Commands *c, const char *id) {
        Command *x = find(c, id);
        if (!x)
                return;
        tdelete(x, &c->by_id, cmp);
        command_free(x);
}

static int send(Commands *c, Command *x) {
        _cleanup_(obj_freep) Obj *body = obj_new_map();
        if (!body || obj_map_set_str(body, "id", x->id) < 0 ||
            obj_map_set_str(body, "command", x->command) < 0 ||
            obj_map_set(body, "args", obj_dup(x->args)) < 0)
                return -ENOMEM;
        int r = fanout_send(c->m->fanout, x->host, MSG_COMMAND, body);
        if (r < 0)
                return r;
        x->sent_at = now_usec(CLOCK_MONOTONIC);
        log_info("Asked host %s to run %s (%s).", x->host, x->command, x->id);
        return 0;
}

CommandState command_run(Commands *c, const char *id, const char *host, const char *command,
                         const Obj *args, const char *requester, uint64_t timeout_usec,
                         int *ret_exit, const char **ret_output) {
        Command *x = find(c, id);
        if (x && !streq(x->host, host)) {
                /* The caller moved the work to another host: start over there. */
                command_forget(c, id);
                x = NULL;
        }
        if (!x) {
                x = calloc(1, sizeof(Command));
                if (!x)
                        return COMMAND_PENDING;
                x->id = strdup(id);
                x->host = strdup(host);
                x->command = strdup(command);
                x->requester = strdup(requester);
                x->args = args ? obj_dup(args) : obj_new_map();
                x->timeout = timeout_usec;
                if (!x->id || !x->host || !x->command || !x->requester || !x->args ||
                    !tsearch(x, &c->by_id, cmp)) {
                        command_free(x);
                        return COMMAND_PENDING;
                }
        }
        if (x->state != COMMAND_PENDING) {
                if (ret_exit)
                        *ret_exit = x->exit_code;
                if (ret_output)
                        *ret_output = x->output;
                return x->state;
        }
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (!x->sent_at || now > x->sent_at + x->timeout) {
                int r = send(c, x);
                if (r < 0)
                        log_debug_errno(r, "Cannot send %s to %s yet: %m", command, host);
        }
        /* Look again when it should have answered at the latest. */
        char buf[512];
        const KindInfo *k;
        const char *ns, *name;
        if (registry_parse_key(requester, buf, sizeof(buf), &k, &ns, &name) >= 0)
                (void)manager_enqueue_after(c->m, k->kind, ns, name, x->timeout + USEC_PER_SEC);
        return COMMAND_PENDING;
}

void commands_on_result(Commands *c, const char *host, const Obj *body) {
        const char *id = obj_get_str(body, "id");
        Command *x = id ? find(c, id) : NULL;
        if (!x || !streq(x->host, host) || x->state != COMMAND_PENDING) {
                log_debug("Ignoring a result for command %s from %s.", strna(id), host);
                return;
        }
        int64_t code = -1;
        obj_get_int(body, "exitCode", &code);
        x->exit_code = (int)code;
        x->state = code == 0 ? COMMAND_SUCCEEDED : COMMAND_FAILED;
        const char *out = obj_get_str(body, "output");
        free(x->output);
        x->output = out ? strdup(out) : NULL;
        if (code == 0)
                log_info("Host %s ran %s (%s).", host, x->command, x->id);
        else
                log_warning("Host %s failed to run %s (%s): exit %lld: %s", host, x->command, x->id,
                            (long long)code, strna(out));
        char buf[512];
        const KindInfo *k;
        const char *ns, *name;
        if (registry_parse_key(x->requester, buf, sizeof(buf), &k, &ns, &name) >= 0)
                (void)manager_enqueue(c->m, k->kind, ns, name);
}

static bool host_connected(const char *name, void *userdata) {
        Manager *m = userdata;
        return fanout_host_connected(m->fanout, name);
}

int pick_control_plane_host(Manager *m, const char *ns, const char *cluster,
                            const char *exclude_host, char **ret) {
        /* From the host pool: a walk of every Host in the store per join was the cost of a
         * MachineDeployment's scale-up. */
        return hostpool_control_plane(m->pool, ns, cluster, exclude_host, host_connected, m, ret);
}
