/*
 * Producing CQEs: the CQ ring, the overflow backlog, scripted holds, delayed
 * zero-copy notifications, and the notify fd.
 *
 * Kernel semantics kept here:
 * - once a CQE went to the overflow backlog, every later CQE goes there too
 *   (order is preserved); enter(GETEVENTS) moves the backlog into the ring as
 *   space allows; IORING_SQ_CQ_OVERFLOW is "backlog not empty";
 * - a multishot leg that cannot be posted into the ring ends the operation:
 *   the leg is posted (to the backlog) without F_MORE (engine.c decides).
 */
#include "internal.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

unsigned sim_cq_ready(const struct sim *s)
{
    return s->cq_tail - s->cq_head;
}

bool sim_cq_full(const struct sim *s)
{
    return s->ovf_head != NULL || sim_cq_ready(s) > s->cq_mask;
}

static void append(struct pend_cqe **head, struct pend_cqe *p)
{
    p->next = NULL;
    while (*head)
        head = &(*head)->next;
    *head = p;
}

/* Into the ring, or the backlog.  The backlog never drops: if even its node
 * cannot be allocated we abort, as losing a CQE would corrupt every owner. */
static void cq_push(struct sim *s, const struct io_uring_cqe *cqe)
{
    s->cqes_posted++;
    s->cqe_hash = fnv_bytes(s->cqe_hash, cqe, sizeof(*cqe));
    if (!sim_cq_full(s)) {
        s->cqes[s->cq_tail & s->cq_mask] = *cqe;
        __atomic_store_n(&s->cq_tail, s->cq_tail + 1, __ATOMIC_RELEASE);
        return;
    }
    struct pend_cqe *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    p->cqe = *cqe;
    if (s->ovf_tail)
        s->ovf_tail->next = p;
    else
        s->ovf_head = p;
    s->ovf_tail = p;
    s->ovf_len++;
    s->overflowed++;
}

void sim_flush_overflow(struct sim *s)
{
    while (s->ovf_head && sim_cq_ready(s) <= s->cq_mask) {
        struct pend_cqe *p = s->ovf_head;
        s->ovf_head = p->next;
        if (!s->ovf_head)
            s->ovf_tail = NULL;
        s->ovf_len--;
        s->cqes[s->cq_tail & s->cq_mask] = p->cqe;
        __atomic_store_n(&s->cq_tail, s->cq_tail + 1, __ATOMIC_RELEASE);
        free(p);
    }
}

struct rule *sim_rule(struct sim *s, uint64_t tag, bool create)
{
    for (struct rule *r = s->rules; r; r = r->next)
        if (r->tag == tag)
            return r;
    if (!create)
        return NULL;
    struct rule *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->tag = tag;
    r->next = s->rules;
    s->rules = r;
    return r;
}

static bool held_by_rule(struct sim *s, uint64_t tag, bool tagged, const struct io_uring_cqe *cqe)
{
    if (!tagged || !s->rules)
        return false;
    struct rule *r = sim_rule(s, tag, false);
    if (!r || !r->hold)
        return false;
    if (r->notif_only && !(cqe->flags & IORING_CQE_F_NOTIF))
        return false;
    struct pend_cqe *p = calloc(1, sizeof(*p));
    if (!p)
        return false; /* cannot hold: post it rather than lose it */
    p->cqe = *cqe;
    p->tag = tag;
    p->tagged = true;
    append(&s->held, p);
    return true;
}

void sim_post(struct sim *s, const struct sop *op, uint64_t user_data, int32_t res, uint32_t flags)
{
    struct io_uring_cqe cqe = {.user_data = user_data, .res = res, .flags = flags};
    if (op && !op->unheld && held_by_rule(s, op->tag, op->tagged, &cqe))
        return;
    cq_push(s, &cqe);
}

/* Post (past any hold) and remove every entry of *list whose user_data
 * (by_tag: whose tag) is key, in order.  Returns how many. */
static unsigned post_matching(struct sim *s, struct pend_cqe **list, bool by_tag, uint64_t key)
{
    unsigned n = 0;
    while (*list) {
        struct pend_cqe *p = *list;
        if ((by_tag ? p->tag : p->cqe.user_data) != key) {
            list = &p->next;
            continue;
        }
        *list = p->next;
        cq_push(s, &p->cqe);
        free(p);
        n++;
    }
    return n;
}

/* A cancel aimed at this user_data: post every CQE held for it, and its
 * pending zero-copy notifications now, past any hold (the operation is
 * over for the user; the notification may be all the core still waits for). */
unsigned sim_release_user_data(struct sim *s, uint64_t user_data)
{
    return post_matching(s, &s->notifs, false, user_data) +
           post_matching(s, &s->held, false, user_data);
}

int ringio_sim_release(struct ringio_backend *b, uint64_t tag)
{
    if (!ringio_sim_is(b))
        return -EINVAL;
    struct sim *s = (struct sim *)b;
    pthread_mutex_lock(&s->mu);
    struct rule *r = sim_rule(s, tag, false);
    if (r)
        r->hold = false;
    int n = (int)post_matching(s, &s->held, true, tag);
    sim_notify_update(s);
    pthread_mutex_unlock(&s->mu);
    if (n > 0 && s->wake_fd >= 0 && s->sleepers) {
        uint64_t one = 1;
        (void)!write(s->wake_fd, &one, sizeof(one));
    }
    return n;
}

/* ---- zero-copy notifications ---------------------------------------- */

void sim_queue_notif(struct sim *s, const struct sop *op, int32_t res, bool errored)
{
    struct pend_cqe *p = calloc(1, sizeof(*p));
    if (!p)
        abort(); /* the core holds the buffer until this CQE: it must come */
    p->cqe.user_data = op->sqe.user_data;
    p->cqe.res = res;
    p->cqe.flags = IORING_CQE_F_NOTIF;
    p->tag = op->tag;
    p->tagged = op->tagged;
    /* Faithful: the skb is freed soon, the notification lands within a
     * couple of rounds.  Faults stretch that. */
    p->delay = sim_decide(s, D_NOTIF_DELAY, 3);
    if (sim_fault(s, RINGIO_SIM_NOTIF_DELAY))
        p->delay += 3 + sim_decide(s, D_NOTIF_DELAY, 16);
    if (errored && sim_fault(s, RINGIO_SIM_NOTIF_AFTER_ERROR))
        p->delay += 5 + sim_decide(s, D_NOTIF_DELAY, 24);
    append(&s->notifs, p);
}

static void post_notif(struct sim *s, struct pend_cqe *p)
{
    if (!held_by_rule(s, p->tag, p->tagged, &p->cqe))
        cq_push(s, &p->cqe);
    free(p);
}

/* One progress round: age every notification and post the due ones, in
 * order, or (fault) in a shuffled order.  drain: post all of them now. */
void sim_tick_notifs(struct sim *s, bool drain)
{
    unsigned due = 0;
    for (struct pend_cqe *p = s->notifs; p; p = p->next) {
        if (drain)
            p->delay = 0;
        else if (p->delay)
            p->delay--;
        due += p->delay == 0;
    }
    bool shuffle = due > 1 && sim_fault(s, RINGIO_SIM_NOTIF_REORDER);
    while (due) {
        uint32_t pick = shuffle ? sim_decide(s, D_NOTIF_PICK, due) : 0;
        struct pend_cqe **pp = &s->notifs;
        for (;;) {
            if ((*pp)->delay == 0 && pick-- == 0)
                break;
            pp = &(*pp)->next;
        }
        struct pend_cqe *p = *pp;
        *pp = p->next;
        post_notif(s, p);
        due--;
    }
}

/* ---- notify fd -------------------------------------------------------- */

/* Desired registrations: the union of events per fd some operation waits on. */
static unsigned ep_desired(struct sim *s, struct epoll_event *out, unsigned max)
{
    unsigned n = 0;
    for (struct sop *op = s->ops_head; op; op = op->next) {
        if (op->state != S_WAIT_FD)
            continue;
        unsigned i = 0;
        while (i < n && out[i].data.fd != op->wait_fd)
            i++;
        if (i == n) {
            if (n == max)
                break; /* more than we track: enter() still polls them all */
            out[n].data.fd = op->wait_fd;
            out[n++].events = 0;
        }
        out[i].events |= (uint32_t)op->wait_events;
    }
    return n;
}

static int ep_find(const struct sim *s, int fd)
{
    for (unsigned i = 0; i < s->nepreg; i++)
        if (s->epreg[i].fd == fd)
            return (int)i;
    return -1;
}

/* Make the epoll set equal to the desired set (level-triggered). */
static void ep_sync(struct sim *s)
{
    enum { MAX = 256 };
    struct epoll_event want[MAX];
    unsigned n = ep_desired(s, want, MAX);
    for (unsigned i = 0; i < s->nepreg;) {
        unsigned j = 0;
        while (j < n && want[j].data.fd != s->epreg[i].fd)
            j++;
        if (j == n) {
            (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->epreg[i].fd, NULL);
            s->epreg[i] = s->epreg[--s->nepreg];
        } else {
            i++;
        }
    }
    if (n > s->epcap) {
        void *v = realloc(s->epreg, MAX * sizeof(*s->epreg));
        if (!v)
            return;
        s->epreg = v;
        s->epcap = MAX;
    }
    for (unsigned j = 0; j < n; j++) {
        int i = ep_find(s, want[j].data.fd);
        if (i >= 0 && s->epreg[i].ev == (short)want[j].events)
            continue;
        int rc = epoll_ctl(s->epfd, i >= 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, want[j].data.fd,
                           &want[j]);
        if (rc < 0 && i < 0 && errno == EEXIST)
            rc = epoll_ctl(s->epfd, EPOLL_CTL_MOD, want[j].data.fd, &want[j]);
        if (rc < 0)
            continue; /* a closed fd: enter()'s attempt reports it */
        if (i < 0) {
            i = (int)s->nepreg++;
            s->epreg[i].fd = want[j].data.fd;
        }
        s->epreg[i].ev = (short)want[j].events;
    }
}

/* Keep b->fd (an epoll fd) readable exactly when calling enter() would make
 * progress: CQEs or backlog waiting, internal work pending, or an fd some
 * operation waits on being ready.  Level-triggered, like the ring fd. */
void sim_notify_update(struct sim *s)
{
    if (s->epfd < 0 || !s->notify_on)
        return;
    bool want = sim_cq_ready(s) > 0 || s->ovf_head || s->notifs;
    for (struct sop *op = s->ops_head; op && !want; op = op->next)
        want = op->state == S_QUEUED;
    if (want != s->cq_evt_set) {
        uint64_t v = 1;
        if (want)
            (void)!write(s->cq_evt, &v, sizeof(v));
        else
            (void)!read(s->cq_evt, &v, sizeof(v));
        s->cq_evt_set = want;
    }
    ep_sync(s);
}
