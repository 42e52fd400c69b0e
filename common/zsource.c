/* SPDX-License-Identifier: Apache-2.0 */
#include <zmq.h>

#include "zsource.h"

struct ZSource {
        void *zsock;
        ZSourceHandler handler;
        void *userdata;
        unsigned budget;
        sd_event_source *io, *post, *defer;
};

static bool readable(ZSource *s) {
        int events = 0;
        size_t len = sizeof(events);
        if (zmq_getsockopt(s->zsock, ZMQ_EVENTS, &events, &len) < 0)
                return false;
        return events & ZMQ_POLLIN;
}

static void drain(ZSource *s) {
        unsigned n = 0;
        while (readable(s)) {
                if (n++ >= s->budget) {
                        sd_event_source_set_enabled(s->defer, SD_EVENT_ONESHOT);
                        return;
                }
                (void)s->handler(s->zsock, s->userdata);
        }
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        (void)es;
        (void)fd;
        (void)revents;
        drain(userdata);
        return 0;
}

static int on_post(sd_event_source *es, void *userdata) {
        (void)es;
        drain(userdata);
        return 0;
}

void zsource_kick(ZSource *s) {
        if (s)
                drain(s);
}

int zsource_new(sd_event *e, void *zsock, ZSourceHandler handler, void *userdata,
                unsigned budget, ZSource **ret) {
        int fd;
        size_t len = sizeof(fd);
        if (zmq_getsockopt(zsock, ZMQ_FD, &fd, &len) < 0)
                return negative_errno();

        ZSource *s = calloc(1, sizeof(ZSource));
        if (!s)
                return -ENOMEM;
        *s = (ZSource){.zsock = zsock, .handler = handler, .userdata = userdata,
                       .budget = budget ? budget : 1024};
        int r = sd_event_add_io(e, &s->io, fd, EPOLLIN, on_io, s);
        if (r >= 0)
                r = sd_event_add_post(e, &s->post, on_post, s);
        if (r >= 0)
                r = sd_event_add_defer(e, &s->defer, on_post, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->defer, SD_EVENT_OFF);
        if (r < 0) {
                zsource_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

ZSource *zsource_free(ZSource *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->post);
        sd_event_source_disable_unref(s->defer);
        free(s);
        return NULL;
}
