/* SPDX-License-Identifier: Apache-2.0 */
#include <time.h>
#include <zmq.h>

#include "api.h"
#include "log.h"
#include "watch.h"
#include "wire.h"

typedef enum WatchEventType {
        WATCH_ADDED,
        WATCH_MODIFIED,
        WATCH_DELETED,
} WatchEventType;

static const char *const event_type_names[] = {"ADDED", "MODIFIED", "DELETED"};

/* One committed change: the object as it was after it (before it, for a deletion). */
typedef struct WatchEvent {
        int64_t rev;
        WatchEventType type;
        char *key;
        void *value;
        size_t size;
} WatchEvent;

typedef struct Parked {
        uint8_t rid[256];
        size_t rid_len;
        const KindInfo *kind;
        char *ns;   /* NULL: every namespace */
        char *name; /* NULL: every object */
        Obj *selector;
        int64_t revision;
        uint64_t deadline; /* CLOCK_MONOTONIC */
} Parked;

struct WatchHub {
        Manager *m;
        WatchEvent *ring; /* WATCH_HISTORY slots, oldest at head */
        size_t head, n;
        size_t bytes;
        int64_t floor; /* every change after this revision is in the ring */
        int64_t last;  /* newest revision seen */
        Parked *parked;
        size_t n_parked;
        sd_event_source *serve_source, *timer;
};

static void event_clear(WatchEvent *e) {
        free(e->key);
        free(e->value);
        *e = (WatchEvent){0};
}

static void parked_clear(Parked *p) {
        free(p->ns);
        free(p->name);
        obj_free(p->selector);
        *p = (Parked){0};
}

WatchHub *watch_hub_free(WatchHub *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n; i++)
                event_clear(&h->ring[(h->head + i) % WATCH_HISTORY]);
        free(h->ring);
        for (size_t i = 0; i < h->n_parked; i++)
                parked_clear(&h->parked[i]);
        free(h->parked);
        sd_event_source_disable_unref(h->serve_source);
        sd_event_source_disable_unref(h->timer);
        free(h);
        return NULL;
}

int64_t watch_hub_floor(WatchHub *h) {
        return h->floor;
}

static void evict_oldest(WatchHub *h) {
        WatchEvent *e = &h->ring[h->head];
        if (e->rev > h->floor)
                h->floor = e->rev;
        h->bytes -= e->size;
        event_clear(e);
        h->head = (h->head + 1) % WATCH_HISTORY;
        h->n--;
}

static void on_store_event(const StoreEvent *ev, void *userdata) {
        WatchHub *h = userdata;
        if (ev->kv.key[0] == '_')
                return; /* internal records (tokens, GC) are not objects */
        const StoreKV *kv = ev->type == STORE_EVENT_PUT ? &ev->kv : &ev->prev;
        int64_t rev = ev->kv.mod_rev > 0 ? ev->kv.mod_rev : store_revision(h->m->store);
        if (rev > h->last)
                h->last = rev;
        if (!kv->value)
                return;
        WatchEvent e = {
                .rev = rev,
                .type = ev->type == STORE_EVENT_DELETE ? WATCH_DELETED
                        : ev->prev.value               ? WATCH_MODIFIED
                                                       : WATCH_ADDED,
                .key = strdup(kv->key),
                .value = malloc(kv->size ? kv->size : 1),
                .size = kv->size,
        };
        if (!e.key || !e.value) {
                /* A gap in the history: watchers from before it must list again. */
                event_clear(&e);
                h->floor = rev;
                return;
        }
        memcpy(e.value, kv->value, kv->size);
        while (h->n > 0 && (h->n == WATCH_HISTORY || h->bytes + e.size > WATCH_HISTORY_BYTES))
                evict_oldest(h);
        h->ring[(h->head + h->n) % WATCH_HISTORY] = e;
        h->n++;
        h->bytes += e.size;
        if (h->n_parked > 0)
                sd_event_source_set_enabled(h->serve_source, SD_EVENT_ONESHOT);
}

typedef struct Filter {
        const KindInfo *kind;
        const char *ns;
        const char *name;
        const Obj *selector;
} Filter;

/* Decodes e into an output object when it passes the filter; NULL (and 0) otherwise. */
static int event_object(WatchHub *h, const WatchEvent *e, const Filter *f, Obj **ret) {
        char buf[512];
        const KindInfo *k;
        const char *ns, *name;
        *ret = NULL;
        if (registry_parse_key(e->key, buf, sizeof(buf), &k, &ns, &name) < 0 || k != f->kind)
                return 0;
        if (f->kind->namespaced && f->ns && !streq(ns, f->ns))
                return 0;
        if (f->name && !streq(name, f->name))
                return 0;
        StoreKV kv = {.key = e->key, .value = e->value, .size = e->size, .mod_rev = e->rev};
        _cleanup_(obj_freep) Obj *o = NULL;
        int r = registry_decode(h->m->reg, &kv, &o);
        if (r < 0) {
                log_debug_errno(r, "Watch: skipping undecodable %s: %m", e->key);
                return 0;
        }
        if (f->selector && label_selector_matches(f->selector, obj_get(o, "metadata.labels")) != 1)
                return 0;
        api_prepare_output(h->m, f->kind, o);
        *ret = TAKE_PTR(o);
        return 1;
}

/* The changes after since that pass f, into items; returns the revision the client has
 * seen all changes up to (less than h->last when the answer was cut at its size bound). */
static int collect(WatchHub *h, const Filter *f, int64_t since, Obj *items, int64_t *ret_rev) {
        size_t start = h->n;
        while (start > 0 && h->ring[(h->head + start - 1) % WATCH_HISTORY].rev > since)
                start--;
        size_t bytes = 0;
        *ret_rev = h->last > since ? h->last : since;
        for (size_t i = start; i < h->n; i++) {
                const WatchEvent *e = &h->ring[(h->head + i) % WATCH_HISTORY];
                /* Keep an answer well inside the admin message bound; cut at a revision. */
                if (bytes > WIRE_MAX_ADMIN_MESSAGE / 4 && i > start &&
                    e->rev != h->ring[(h->head + i - 1) % WATCH_HISTORY].rev) {
                        *ret_rev = h->ring[(h->head + i - 1) % WATCH_HISTORY].rev;
                        break;
                }
                _cleanup_(obj_freep) Obj *o = NULL;
                int r = event_object(h, e, f, &o);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                bytes += e->size * 2;
                _cleanup_(obj_freep) Obj *item = obj_new_map();
                if (!item || obj_map_set_str(item, "type", event_type_names[e->type]) < 0 ||
                    obj_map_set(item, "object", TAKE_PTR(o)) < 0 ||
                    obj_list_append(items, TAKE_PTR(item)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int answer(Obj *resp, Obj *items, int64_t rev) {
        int r = obj_map_set_bool(resp, "ok", true);
        if (r >= 0)
                r = obj_map_set(resp, "items", items);
        else
                obj_free(items);
        if (r >= 0)
                r = obj_map_set_int(resp, "revision", rev);
        return r;
}

static int send_resp(WatchHub *h, const Parked *p, Obj *resp) {
        char *buf;
        size_t size;
        int r = wire_encode(MSG_API_RESPONSE, resp, &buf, &size);
        if (r < 0)
                return r;
        return manager_send_after_commit(h->m, h->m->admin, p->rid, p->rid_len, buf, size);
}

static void drop_parked(WatchHub *h, size_t i) {
        parked_clear(&h->parked[i]);
        h->parked[i] = h->parked[--h->n_parked];
        if (h->n_parked == 0)
                sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
}

/* Answers the parked requests that have news (or, with expire, whose hold time is over). */
static void serve(WatchHub *h, bool expire) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        for (size_t i = 0; i < h->n_parked;) {
                Parked *p = &h->parked[i];
                Filter f = {p->kind, p->ns, p->name, p->selector};
                _cleanup_(obj_freep) Obj *items = obj_new_list(), *resp = obj_new_map();
                int64_t rev;
                int r = items && resp ? 0 : -ENOMEM;
                if (r >= 0 && p->revision < h->floor) {
                        /* The history moved past it while it waited. */
                        r = obj_map_set_bool(resp, "ok", false);
                        if (r >= 0)
                                r = obj_map_set_str(resp, "code", "Expired");
                        if (r >= 0)
                                r = obj_map_set_str(resp, "message", "too old resource version");
                } else if (r >= 0) {
                        r = collect(h, &f, p->revision, items, &rev);
                        if (r >= 0 && obj_len(items) == 0 && !(expire && now >= p->deadline)) {
                                i++;
                                continue;
                        }
                        if (r >= 0)
                                r = answer(resp, TAKE_PTR(items), rev);
                }
                if (r >= 0)
                        r = send_resp(h, p, resp);
                if (r < 0)
                        log_warning_errno(r, "Failed to answer a watch, dropping it: %m");
                drop_parked(h, i);
        }
}

static int on_serve(sd_event_source *s, void *userdata) {
        (void)s;
        serve(userdata, false);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        WatchHub *h = userdata;
        serve(h, true);
        if (h->n_parked > 0) {
                sd_event_source_set_time(s, usec + USEC_PER_SEC);
                sd_event_source_set_enabled(s, SD_EVENT_ON);
        }
        return 0;
}

int watch_hub_new(Manager *m, WatchHub **ret) {
        WatchHub *h = calloc(1, sizeof(WatchHub));
        if (!h)
                return -ENOMEM;
        h->m = m;
        h->ring = calloc(WATCH_HISTORY, sizeof(WatchEvent));
        h->floor = h->last = store_revision(m->store);
        int r = h->ring ? 0 : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_defer(m->event, &h->serve_source, on_serve, h);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->serve_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &h->timer, CLOCK_MONOTONIC, USEC_PER_SEC,
                                               100 * USEC_PER_MSEC, on_timer, h);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
        if (r >= 0)
                r = store_watch(m->store, on_store_event, h);
        if (r < 0) {
                watch_hub_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

static int fail(Obj *resp, const char *code, const char *msg) {
        int r = obj_map_set_bool(resp, "ok", false);
        if (r >= 0)
                r = obj_map_set_str(resp, "code", code);
        if (r >= 0)
                r = obj_map_set_str(resp, "message", msg);
        return r;
}

int watch_hub_request(WatchHub *h, const void *rid, size_t rid_len, const Obj *req, Obj *resp,
                      bool *parked) {
        *parked = false;
        const KindInfo *k = kind_resolve(strempty(obj_get_str(req, "kind")));
        if (!k)
                return fail(resp, "NotFound", "the server doesn't have this resource type");
        int64_t since;
        if (!obj_get_int(req, "revision", &since))
                return fail(resp, "Invalid", "watch needs the revision to start after");
        if (since < h->floor)
                return fail(resp, "Expired", "too old resource version");
        const char *ns = obj_get_str(req, "namespace");
        if (obj_get_bool(req, "allNamespaces", false) || !k->namespaced)
                ns = NULL;
        else if (!ns)
                ns = "default";
        _cleanup_(obj_freep) Obj *selector = NULL;
        const char *sel = obj_get_str(req, "selector");
        if (sel && label_selector_parse(sel, &selector) < 0)
                return fail(resp, "Invalid", "invalid label selector");
        Filter f = {k, ns, obj_get_str(req, "name"), selector};
        /* The client may want its answer sooner (delete --wait with a deadline). */
        uint64_t hold = WATCH_HOLD_USEC;
        int64_t secs;
        if (obj_get_int(req, "timeoutSeconds", &secs) && (uint64_t)secs * USEC_PER_SEC < hold)
                hold = (uint64_t)secs * USEC_PER_SEC;

        _cleanup_(obj_freep) Obj *items = obj_new_list();
        if (!items)
                return -ENOMEM;
        int64_t rev;
        int r = collect(h, &f, since, items, &rev);
        if (r < 0)
                return r;
        if (obj_len(items) > 0 || h->n_parked >= WATCH_MAX_PARKED || rid_len > 256)
                return answer(resp, TAKE_PTR(items), rev);

        Parked *np = realloc(h->parked, (h->n_parked + 1) * sizeof(Parked));
        if (!np)
                return -ENOMEM;
        h->parked = np;
        Parked *p = &h->parked[h->n_parked];
        *p = (Parked){
                .rid_len = rid_len,
                .kind = k,
                .ns = ns ? strdup(ns) : NULL,
                .name = f.name ? strdup(f.name) : NULL,
                .selector = TAKE_PTR(selector),
                .revision = since,
                .deadline = now_usec(CLOCK_MONOTONIC) + hold,
        };
        memcpy(p->rid, rid, rid_len);
        if ((ns && !p->ns) || (f.name && !p->name)) {
                parked_clear(p);
                return -ENOMEM;
        }
        if (h->n_parked++ == 0) {
                sd_event_source_set_time_relative(h->timer, USEC_PER_SEC);
                sd_event_source_set_enabled(h->timer, SD_EVENT_ON);
        }
        *parked = true;
        return 0;
}
