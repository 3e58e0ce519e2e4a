/* SPDX-License-Identifier: MIT */
#include "megazord-multi.h"

#include <assert.h>
#include <inttypes.h>

/* A queued call: its arguments only; the request (URL, body, headers, about 1.5 KiB with its
 * call record) is made when it is sent, so a run queuing 10,000 calls holds 10,000 small
 * entries and max_parallel requests. */
typedef struct mcall mcall;
struct mcall {
        mcall *next;
        megazord_op op;
        int64_t robot_id;
        int64_t id;       /* unsubscribe: the subscription */
        usec_t t;         /* subscribe: until; replay: created_since */
        int level;        /* post alarm */
        char *event;      /* subscribe, replay, post alarm */
        char *reference;  /* post alarm */
        megazord_done_func done;
        void *userdata;
        unsigned long epoch; /* the commits before it was queued */
};

/* One request in flight, and the calls for its robot queued behind it meanwhile. */
typedef struct slot {
        azi3_http_transfer t;
        megazord_request req;
        mcall *c; /* NULL: the slot is free */
        mcall *wait_head, *wait_tail;
} slot;

struct megazord_multi {
        megazord *m;
        CURLM *multi;
        slot *slots;
        unsigned max_parallel, n_flight, peak;
        mcall *head, *tail; /* not yet sent, in order */
        megazord_before_send_func before_send;
        void *before_send_userdata;
        unsigned long epoch;  /* commits (BEFORE_SEND calls) so far */
        unsigned since_commit; /* DONEs run since the last commit: writes it has not covered */
};

/* Store writes are committed in batches (SQLite: one WAL commit, with its page writes and
 * locks, for many sessions' transactions instead of one each): at most this many answers'
 * writes wait for a commit while calls keep flowing (10,000 alarms: 64 made 309 commits, each
 * rewriting pages the next one dirtied again; 512 made 39, and the run took 14% less CPU; the
 * lock is held ~25 ms at most, well inside the store's busy timeout) ... */
#define COMMIT_EVERY 512
/* ... and the run never waits on Megazord longer than this with writes uncommitted (their
 * lock held). */
#define COMMIT_IDLE_MSEC 1

static mcall *mcall_free(mcall *c) {
        if (!c)
                return NULL;
        free(c->event);
        free(c->reference);
        free(c);
        return NULL;
}

int megazord_multi_new(megazord *m, unsigned max_parallel, megazord_multi **ret) {
        _cleanup_(megazord_multi_freep) megazord_multi *mm = NULL;

        if (!m || max_parallel == 0 || max_parallel > MEGAZORD_MULTI_MAX_PARALLEL)
                return -EINVAL;
        mm = calloc(1, sizeof(*mm));
        if (!mm)
                return -ENOMEM;
        mm->m = m;
        mm->max_parallel = max_parallel;
        mm->slots = calloc(max_parallel, sizeof(*mm->slots));
        if (!mm->slots)
                return -ENOMEM;
        mm->multi = curl_multi_init();
        if (!mm->multi)
                return -ENOMEM;
        /* as many pooled keep-alive connections as requests in flight, so none is closed and
         * reopened between one call and the next */
        curl_multi_setopt(mm->multi, CURLMOPT_MAXCONNECTS, (long) max_parallel);
        curl_multi_setopt(mm->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) max_parallel);
        *ret = TAKE_PTR(mm);
        return 0;
}

static void drop_list(mcall *c) {
        while (c) {
                mcall *next = c->next;
                mcall_free(c);
                c = next;
        }
}

megazord_multi *megazord_multi_free(megazord_multi *mm) {
        if (!mm)
                return NULL;
        drop_list(mm->head);
        for (unsigned i = 0; mm->slots && i < mm->max_parallel; i++) {
                slot *s = &mm->slots[i];

                if (s->t.curl) {
                        if (s->c && mm->multi)
                                curl_multi_remove_handle(mm->multi, s->t.curl);
                        azi3_http_transfer_done(&s->t);
                        curl_easy_cleanup(s->t.curl);
                }
                megazord_request_done(&s->req);
                mcall_free(s->c);
                drop_list(s->wait_head);
        }
        free(mm->slots);
        if (mm->multi)
                curl_multi_cleanup(mm->multi);
        free(mm);
        return NULL;
}

void megazord_multi_set_before_send(megazord_multi *mm, megazord_before_send_func func, void *userdata) {
        if (!mm)
                return;
        mm->before_send = func;
        mm->before_send_userdata = func ? userdata : NULL;
}

unsigned megazord_multi_peak(const megazord_multi *mm) {
        return mm ? mm->peak : 0;
}

static int enqueue(megazord_multi *mm, mcall *c) {
        if (!mm || !c->done) {
                mcall_free(c);
                return -EINVAL;
        }
        c->epoch = mm->epoch;
        if (mm->tail)
                mm->tail->next = c;
        else
                mm->head = c;
        mm->tail = c;
        return 0;
}

static int new_call(megazord_op op, int64_t robot_id, const char *event, megazord_done_func done, void *userdata,
                    mcall **ret) {
        mcall *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        *c = (mcall) { .op = op, .robot_id = robot_id, .done = done, .userdata = userdata };
        if (event) {
                c->event = strdup(event);
                if (!c->event) {
                        free(c);
                        return -ENOMEM;
                }
        }
        *ret = c;
        return 0;
}

int megazord_multi_subscribe(megazord_multi *mm, int64_t robot_id, const char *event_name, usec_t until,
                             megazord_done_func done, void *userdata) {
        mcall *c;
        int r = new_call(MEGAZORD_SUBSCRIBE, robot_id, event_name, done, userdata, &c);

        if (r < 0)
                return r;
        c->t = until;
        return enqueue(mm, c);
}

int megazord_multi_unsubscribe(megazord_multi *mm, int64_t robot_id, int64_t subscription_id,
                               megazord_done_func done, void *userdata) {
        mcall *c;
        int r = new_call(MEGAZORD_UNSUBSCRIBE, robot_id, NULL, done, userdata, &c);

        if (r < 0)
                return r;
        c->id = subscription_id;
        return enqueue(mm, c);
}

int megazord_multi_replay(megazord_multi *mm, int64_t robot_id, const char *event_name, usec_t created_since,
                          megazord_done_func done, void *userdata) {
        mcall *c;
        int r = new_call(MEGAZORD_REPLAY, robot_id, event_name, done, userdata, &c);

        if (r < 0)
                return r;
        c->t = created_since;
        return enqueue(mm, c);
}

int megazord_multi_post_alarm(megazord_multi *mm, int64_t robot_id, const char *event_name, int level,
                              const char *reference_id, megazord_done_func done, void *userdata) {
        mcall *c;
        int r = new_call(MEGAZORD_POST_ALARM, robot_id, event_name, done, userdata, &c);

        if (r < 0)
                return r;
        c->level = level;
        if (reference_id) {
                c->reference = strdup(reference_id);
                if (!c->reference) {
                        mcall_free(c);
                        return -ENOMEM;
                }
        }
        return enqueue(mm, c);
}

static int prepare(megazord_multi *mm, const mcall *c, megazord_request *req) {
        switch (c->op) {
        case MEGAZORD_SUBSCRIBE:
                return megazord_prepare_subscribe(mm->m, c->robot_id, c->event, c->t, req);
        case MEGAZORD_UNSUBSCRIBE:
                return megazord_prepare_unsubscribe(mm->m, c->robot_id, c->id, req);
        case MEGAZORD_REPLAY:
                return megazord_prepare_replay(mm->m, c->robot_id, c->event, c->t, req);
        case MEGAZORD_POST_ALARM:
                return megazord_prepare_post_alarm(mm->m, c->robot_id, c->event, c->level, c->reference, req);
        default:
                return -EINVAL;
        }
}

/* Runs C's DONE with the outcome R (and RESP when R is 0) of REQ, then frees C. */
static void complete(megazord_multi *mm, mcall *c, megazord_request *req, int r, const azi3_http_response *resp) {
        megazord_reply reply;

        req->op = c->op;
        req->robot_id = c->robot_id;
        (void) megazord_reply_make(req, r, resp, &reply);
        c->done(mm, &reply, c->userdata);
        megazord_reply_done(&reply);
        mcall_free(c);
}

/* Completes C with error R without sending it. */
static void complete_unsent(megazord_multi *mm, mcall *c, int r, const azi3_call *call) {
        megazord_request req = {};

        if (call)
                req.call = *call;
        if (!req.call.message[0])
                azi3_call_fail(&req.call, r, NULL, 0, "Megazord call for robot %" PRId64 " not sent: %s", c->robot_id,
                               strerror(-r));
        complete(mm, c, &req, r, NULL);
}

static slot *slot_of_robot(megazord_multi *mm, int64_t robot_id) {
        for (unsigned i = 0; i < mm->max_parallel; i++)
                if (mm->slots[i].c && mm->slots[i].c->robot_id == robot_id)
                        return &mm->slots[i];
        return NULL;
}

static slot *slot_free(megazord_multi *mm) {
        for (unsigned i = 0; i < mm->max_parallel; i++)
                if (!mm->slots[i].c)
                        return &mm->slots[i];
        return NULL;
}

/* Starts C in S. Returns 0, or an error after which C is still the caller's. */
static int start(megazord_multi *mm, slot *s, mcall *c) {
        CURLMcode mc;
        int r;

        if (!s->t.curl) {
                s->t.curl = curl_easy_init();
                if (!s->t.curl)
                        return -ENOMEM;
        }
        r = prepare(mm, c, &s->req);
        if (r >= 0)
                r = azi3_http_transfer_setup(&s->t, &s->req.http, s->req.label, &s->req.call);
        if (r >= 0) {
                curl_easy_setopt(s->t.curl, CURLOPT_PRIVATE, s);
                mc = curl_multi_add_handle(mm->multi, s->t.curl);
                if (mc != CURLM_OK)
                        r = azi3_call_fail(&s->req.call, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, NULL, 0,
                                           "%s: cannot be started: %s", s->req.label, curl_multi_strerror(mc));
        }
        if (r < 0)
                return r;
        s->c = c;
        mm->n_flight++;
        mm->peak = MAX(mm->peak, mm->n_flight);
        return 0;
}

static void fail_uncommitted(megazord_multi *mm, unsigned long epoch, int r);

/* Commits the store writes made so far (BEFORE_SEND). When that fails, the calls queued since
 * the last commit were decided on lost writes: they complete unsent with the error (those
 * queued before it go on: what decided them is committed). */
static int commit(megazord_multi *mm) {
        unsigned long epoch = mm->epoch;
        int r;

        if (!mm->before_send)
                return 0;
        r = mm->before_send(mm, mm->before_send_userdata);
        mm->epoch++;
        mm->since_commit = 0;
        if (r < 0)
                fail_uncommitted(mm, epoch, r);
        return r;
}

/* Whether C changes Megazord on writes not yet committed: a call that changes Megazord (all
 * but a replay, which only reads) leaves after the writes that decided it are committed, an
 * alarm's claim before its post. */
static bool waits_for_commit(const megazord_multi *mm, const mcall *c) {
        return mm->before_send && c->op != MEGAZORD_REPLAY && c->epoch == mm->epoch;
}

/* Sends queued calls while there is room; a call whose robot has one in flight waits behind it
 * (only once committed, so the calls waiting behind a robot never wait for a commit). A call
 * that waits for a commit gets it at once when at most half the slots are busy, else when
 * more answers came (their writes share the commit). */
static void fill(megazord_multi *mm) {
        while (mm->head && mm->n_flight < mm->max_parallel) {
                mcall *c = mm->head;
                slot *s;
                int r;

                if (waits_for_commit(mm, c)) {
                        if (mm->n_flight > mm->max_parallel / 2)
                                return;
                        (void) commit(mm);
                        continue; /* on failure the posts it was for completed unsent; their DONEs may queue more */
                }
                mm->head = c->next;
                if (!mm->head)
                        mm->tail = NULL;
                c->next = NULL;

                s = slot_of_robot(mm, c->robot_id);
                if (s) {
                        if (s->wait_tail)
                                s->wait_tail->next = c;
                        else
                                s->wait_head = c;
                        s->wait_tail = c;
                        continue;
                }
                s = slot_free(mm);
                assert(s);
                r = start(mm, s, c);
                if (r < 0) {
                        azi3_call call = s->req.call;

                        megazord_request_done(&s->req);
                        complete_unsent(mm, c, r, &call);
                }
        }
}

/* Frees slot S after its transfer ended and puts the calls that waited for its robot back at
 * the front of the queue, in their order. Returns the call it held. */
static mcall *slot_release(megazord_multi *mm, slot *s) {
        mcall *c = s->c;

        s->c = NULL;
        mm->n_flight--;
        if (s->wait_head) {
                s->wait_tail->next = mm->head;
                if (!mm->head)
                        mm->tail = s->wait_tail;
                mm->head = s->wait_head;
                s->wait_head = s->wait_tail = NULL;
        }
        return c;
}

static void finish(megazord_multi *mm, CURL *easy, CURLcode code) {
        _cleanup_(azi3_http_response_done) azi3_http_response resp = {};
        megazord_request req;
        char *priv = NULL;
        slot *s;
        mcall *c;
        int r;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        s = (slot *) priv;
        assert(s && s->c);
        curl_multi_remove_handle(mm->multi, easy);
        r = azi3_http_transfer_finish(&s->t, &s->req.http, code, s->req.label, &s->req.call, &resp);
        req = s->req;
        s->req = (megazord_request) {};
        c = slot_release(mm, s);
        complete(mm, c, &req, r, &resp);
        megazord_request_done(&req);
}

/* Every call in the queue, not sent, completes with R. */
/* Every queued call that changes Megazord and was queued after commit EPOCH completes with R,
 * unsent, in order (taken out first: their DONEs may queue again). A replay only reads, so it
 * goes on. */
static void fail_uncommitted(megazord_multi *mm, unsigned long epoch, int r) {
        mcall *failed = NULL, **failed_tail = &failed, **p = &mm->head;

        mm->tail = NULL;
        while (*p) {
                mcall *c = *p;

                if (c->op != MEGAZORD_REPLAY && c->epoch == epoch) {
                        *p = c->next;
                        c->next = NULL;
                        *failed_tail = c;
                        failed_tail = &c->next;
                        continue;
                }
                mm->tail = c;
                p = &c->next;
        }
        while (failed) {
                mcall *next = failed->next;

                failed->next = NULL;
                complete_unsent(mm, failed, r, NULL);
                failed = next;
        }
}

/* The multi handle broke: every call, in flight or queued, completes with R. */
static int fail_all(megazord_multi *mm, int r, CURLMcode mc) {
        for (unsigned i = 0; i < mm->max_parallel; i++) {
                slot *s = &mm->slots[i];
                megazord_request req;
                mcall *c;

                if (!s->c)
                        continue;
                curl_multi_remove_handle(mm->multi, s->t.curl);
                azi3_http_transfer_done(&s->t);
                req = s->req;
                s->req = (megazord_request) {};
                c = slot_release(mm, s);
                azi3_call_fail(&req.call, r, NULL, 0, "%s: not completed, libcurl's multi handle failed: %s", req.label,
                               curl_multi_strerror(mc));
                complete(mm, c, &req, r, NULL);
                megazord_request_done(&req);
        }
        while (mm->head) {
                mcall *c = mm->head;

                mm->head = c->next;
                if (!mm->head)
                        mm->tail = NULL;
                complete_unsent(mm, c, r, NULL);
        }
        return r;
}

int megazord_multi_run(megazord_multi *mm) {
        CURLMcode mc;
        CURLMsg *msg;
        int running, left;

        if (!mm)
                return -EINVAL;
        mm->since_commit = 1; /* the caller may have written before */
        for (;;) {
                bool ended = false;

                fill(mm);
                if (mm->n_flight == 0 && !mm->head)
                        break;

                mc = curl_multi_perform(mm->multi, &running);
                if (mc != CURLM_OK)
                        return fail_all(mm, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, mc);
                while ((msg = curl_multi_info_read(mm->multi, &left)))
                        if (msg->msg == CURLMSG_DONE) {
                                finish(mm, msg->easy_handle, msg->data.result);
                                mm->since_commit++;
                                ended = true;
                        }
                if (mm->since_commit >= COMMIT_EVERY)
                        (void) commit(mm);
                if (!ended && running > 0) {
                        int n = 0;

                        /* wait for a socket or curl's next timer; a wait longer than a moment
                         * does not hold uncommitted writes */
                        if (mm->before_send && mm->since_commit > 0) {
                                mc = curl_multi_poll(mm->multi, NULL, 0, COMMIT_IDLE_MSEC, &n);
                                if (mc != CURLM_OK)
                                        return fail_all(mm, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, mc);
                                if (n > 0)
                                        continue;
                                (void) commit(mm);
                        }
                        mc = curl_multi_poll(mm->multi, NULL, 0, 1000, NULL);
                        if (mc != CURLM_OK)
                                return fail_all(mm, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, mc);
                }
        }
        return 0;
}
