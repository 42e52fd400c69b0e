/* SPDX-License-Identifier: Apache-2.0 */
#include <search.h>
#include <time.h>

#include "log.h"
#include "queue.h"

#define BATCH 256
#define BACKOFF_MIN_USEC (5 * USEC_PER_MSEC)
#define BACKOFF_MAX_USEC (300 * USEC_PER_SEC)

/* One entry per known key: in the ready FIFO, scheduled, or only remembering a backoff. */
typedef struct Item {
        char *key;
        bool ready;         /* in the FIFO */
        bool processing;    /* being handled right now */
        bool dirty;         /* added again while processing */
        uint64_t due;       /* CLOCK_MONOTONIC µs when scheduled, 0 = not scheduled */
        uint64_t backoff;   /* next failure delay */
        struct Item *next;  /* FIFO link */
} Item;

struct Queue {
        sd_event *event;
        sd_event_source *defer, *timer;
        QueueHandler handler;
        void *userdata;
        void *items;        /* tsearch tree of Item by key */
        Item *head, *tail;  /* ready FIFO */
        size_t n_ready, n_delayed;
        uint64_t timer_due;
};

static int item_cmp(const void *a, const void *b) {
        return strcmp(((const Item *)a)->key, ((const Item *)b)->key);
}

static Item *lookup(Queue *q, const char *key, bool create) {
        Item probe = {.key = (char *)key};
        void *found = tfind(&probe, &q->items, item_cmp);
        if (found)
                return *(Item **)found;
        if (!create)
                return NULL;
        Item *it = calloc(1, sizeof(Item));
        if (!it)
                return NULL;
        it->key = strdup(key);
        if (!it->key || !tsearch(it, &q->items, item_cmp)) {
                free(it->key);
                free(it);
                return NULL;
        }
        return it;
}

static void forget(Queue *q, Item *it) {
        tdelete(it, &q->items, item_cmp);
        free(it->key);
        free(it);
}

static void push_ready(Queue *q, Item *it) {
        if (it->due) {
                it->due = 0;
                q->n_delayed--;
        }
        it->ready = true;
        it->next = NULL;
        if (q->tail)
                q->tail->next = it;
        else
                q->head = it;
        q->tail = it;
        q->n_ready++;
        sd_event_source_set_enabled(q->defer, SD_EVENT_ON);
}

int queue_add(Queue *q, const char *key) {
        Item *it = lookup(q, key, true);
        if (!it)
                return -ENOMEM;
        if (it->processing) {
                it->dirty = true;
                return 0;
        }
        if (it->ready)
                return 0;
        push_ready(q, it);
        return 0;
}

static void arm_timer(Queue *q, uint64_t due) {
        if (q->timer_due && q->timer_due <= due)
                return;
        q->timer_due = due;
        sd_event_source_set_time(q->timer, due);
        sd_event_source_set_enabled(q->timer, SD_EVENT_ONESHOT);
}

int queue_add_after(Queue *q, const char *key, uint64_t usec) {
        if (usec == 0)
                return queue_add(q, key);
        Item *it = lookup(q, key, true);
        if (!it)
                return -ENOMEM;
        if (it->ready)
                return 0;
        uint64_t due = now_usec(CLOCK_MONOTONIC) + usec;
        if (it->due && it->due <= due)
                return 0;
        if (!it->due)
                q->n_delayed++;
        it->due = due;
        arm_timer(q, due);
        return 0;
}

/* Moves due items to the ready FIFO and re-arms for the next one. */
typedef struct DueCtx {
        Queue *q;
        uint64_t now, next;
        Item **due;
        size_t n, cap;
} DueCtx;

static void collect_due(const void *node, VISIT which, void *closure) {
        if (which != postorder && which != leaf)
                return;
        Item *it = *(Item *const *)node;
        DueCtx *c = closure;
        if (!it->due || it->processing)
                return;
        if (it->due <= c->now) {
                if (c->n == c->cap) {
                        size_t nc = c->cap ? c->cap * 2 : 64;
                        Item **nd = realloc(c->due, nc * sizeof(Item *));
                        if (!nd)
                                return;
                        c->due = nd;
                        c->cap = nc;
                }
                c->due[c->n++] = it;
        } else if (!c->next || it->due < c->next)
                c->next = it->due;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Queue *q = userdata;
        (void)s;
        (void)usec;
        q->timer_due = 0;
        DueCtx c = {.q = q, .now = now_usec(CLOCK_MONOTONIC)};
        twalk_r(q->items, collect_due, &c);
        for (size_t i = 0; i < c.n; i++)
                push_ready(q, c.due[i]);
        free(c.due);
        if (c.next)
                arm_timer(q, c.next);
        return 0;
}

static int process_one(Queue *q) {
        Item *it = q->head;
        if (!it)
                return 0;
        q->head = it->next;
        if (!q->head)
                q->tail = NULL;
        q->n_ready--;
        it->ready = false;
        it->processing = true;
        it->dirty = false;

        int r = q->handler(it->key, q->userdata);

        it->processing = false;
        if (r < 0) {
                uint64_t b = it->backoff ? it->backoff : BACKOFF_MIN_USEC;
                it->backoff = b * 2 > BACKOFF_MAX_USEC ? BACKOFF_MAX_USEC : b * 2;
                if (it->dirty)
                        push_ready(q, it);
                else
                        queue_add_after(q, it->key, b);
                return 1;
        }
        it->backoff = 0;
        if (it->dirty) {
                push_ready(q, it);
                return 1;
        }
        if (r > 0) {
                queue_add_after(q, it->key, (uint64_t)r);
                return 1;
        }
        if (!it->due)
                forget(q, it);
        return 1;
}

static int on_defer(sd_event_source *s, void *userdata) {
        Queue *q = userdata;
        for (int i = 0; i < BATCH && q->head; i++)
                process_one(q);
        if (!q->head)
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

int queue_run_ready(Queue *q) {
        int n = 0;
        while (q->head)
                n += process_one(q);
        return n;
}

int queue_new(sd_event *e, QueueHandler handler, void *userdata, Queue **ret) {
        Queue *q = calloc(1, sizeof(Queue));
        if (!q)
                return -ENOMEM;
        q->event = sd_event_ref(e);
        q->handler = handler;
        q->userdata = userdata;
        int r = sd_event_add_defer(e, &q->defer, on_defer, q);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->defer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(e, &q->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_timer, q);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->timer, SD_EVENT_OFF);
        if (r < 0) {
                queue_free(q);
                return r;
        }
        *ret = q;
        return 0;
}

static void free_item(void *p) {
        Item *it = p;
        free(it->key);
        free(it);
}

Queue *queue_free(Queue *q) {
        if (!q)
                return NULL;
        sd_event_source_disable_unref(q->defer);
        sd_event_source_disable_unref(q->timer);
        tdestroy(q->items, free_item);
        sd_event_unref(q->event);
        free(q);
        return NULL;
}

size_t queue_length(Queue *q) {
        return q->n_ready;
}

size_t queue_delayed(Queue *q) {
        return q->n_delayed;
}
