/*
 * The engine: consuming SQEs, link chains, progress rounds, and waiting.
 *
 * An operation is issued once when it is consumed (inline, as the kernel
 * does) and again each time what it waits for becomes ready.  Issuing never
 * blocks: sockets get MSG_DONTWAIT, other fds are polled first.  A progress
 * round issues every ready operation in an order the decision source picks
 * (mostly submission order, sometimes not: the kernel's inline, task-work and
 * io-wq paths reorder completions too).  Rounds run until nothing is ready,
 * all inside enter(), so a submit that returns has done what the kernel
 * would have done inline and nothing waits for a later call.
 *
 * Time is virtual.  When everything pending waits for a timer, the clock
 * jumps to the next deadline (a 10 s timeout completes at once); when some
 * operation waits on a real fd, the sim sleeps in poll() and the clock moves
 * with real time.
 */
#include "internal.h"

#include <assert.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 64 /* progress rounds per enter before giving the caller a turn */

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void op_unlink(struct sim *s, struct sop *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        s->ops_head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        s->ops_tail = op->prev;
    s->nops--;
    if (op->state == S_QUEUED)
        s->nqueued--;
}

#define MAX_SPARE 256 /* retired records kept: a batch of NOPs allocates nothing */

static struct sop *op_new(struct sim *s, const struct io_uring_sqe *sqe)
{
    struct sop *op = s->spare;
    if (op) {
        s->spare = op->next;
        s->nspare--;
        memset(op, 0, sizeof(*op));
    } else if (!(op = calloc(1, sizeof(*op)))) {
        return NULL;
    }
    op->sqe = *sqe;
    op->seq = s->next_seq++;
    op->wait_fd = -1;
    op->skip_success = (sqe->flags & IOSQE_CQE_SKIP_SUCCESS) != 0;
    op->prev = s->ops_tail;
    if (s->ops_tail)
        s->ops_tail->next = op;
    else
        s->ops_head = op;
    s->ops_tail = op;
    s->nops++;
    s->nqueued++; /* state 0: S_QUEUED */
    return op;
}

/* Did a finished operation break its link chain?  As in the kernel: an
 * error, or a read/write that moved fewer bytes than asked. */
static bool link_failed(const struct sop *op, int32_t res)
{
    if (res < 0)
        return true;
    switch (op->sqe.opcode) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READ_FIXED:
    case IORING_OP_WRITE_FIXED:
        return (uint32_t)res < op->sqe.len;
    default:
        return false;
    }
}

static void cancel_chain(struct sim *s, struct sop *op)
{
    while (op) {
        struct sop *next = op->linked ? op->link_next : NULL;
        op->linked = false;
        sim_complete(s, op, -ECANCELED, 0);
        op = next;
    }
}

/* Post the final CQE of op and retire it, then start or cancel its chain. */
void sim_complete(struct sim *s, struct sop *op, int32_t res, uint32_t flags)
{
    if (!op->no_cqe && !(op->skip_success && res >= 0))
        sim_post(s, op, op->sqe.user_data, res, flags & ~IORING_CQE_F_MORE);
    if (op->link_timeout) {
        struct sop *lt = op->link_timeout;
        op->link_timeout = NULL;
        lt->timeout_of = NULL;
        lt->linked = false;
        sim_complete(s, lt, -ECANCELED, 0);
    }
    if (op->timeout_of) { /* a LINK_TIMEOUT that fired: its op is cancelled */
        struct sop *guarded = op->timeout_of;
        guarded->link_timeout = NULL;
        op->timeout_of = NULL;
        sim_complete(s, guarded, -ECANCELED, 0);
    }
    struct sop *next = op->linked ? op->link_next : NULL;
    if (next) {
        if (link_failed(op, res) && !op->hardlink)
            cancel_chain(s, next);
        else
            sim_set_state(s, next, S_QUEUED);
    }
    op_unlink(s, op);
    if (s->nspare < MAX_SPARE) {
        op->next = s->spare;
        s->spare = op;
        s->nspare++;
    } else {
        free(op);
    }
}

/* A zero-copy send finished: the operation CQE says F_MORE, the
 * notification follows later (always a copy here: ZC_COPIED is reported). */
void sim_zc_finish(struct sim *s, struct sop *op, int32_t res)
{
    sim_post(s, op, op->sqe.user_data, res, IORING_CQE_F_MORE);
    int32_t usage = (op->sqe.ioprio & IORING_SEND_ZC_REPORT_USAGE)
                        ? (int32_t)IORING_NOTIF_USAGE_ZC_COPIED
                        : 0;
    sim_queue_notif(s, op, usage, res < 0);
    op->no_cqe = true;
    sim_complete(s, op, res, 0);
}

/* Install fd in the fixed table as the op's file_index asks.  Returns the
 * CQE result: 0, the allocated slot, or -errno (fd closed on failure). */
int sim_install_fixed(struct sim *s, const struct sop *op, int fd)
{
    uint32_t fi = op->sqe.file_index;
    unsigned slot;
    if (fi == IORING_FILE_INDEX_ALLOC) {
        for (slot = 0; slot < s->nfiles && s->files[slot] >= 0; slot++)
            ;
        if (slot == s->nfiles) {
            close(fd);
            return -ENFILE;
        }
    } else {
        slot = fi - 1;
        if (slot >= s->nfiles) {
            close(fd);
            return -EINVAL;
        }
        if (s->files[slot] >= 0)
            close(s->files[slot]);
    }
    s->files[slot] = fd;
    return fi == IORING_FILE_INDEX_ALLOC ? (int)slot : 0;
}

void sim_wait_fd(struct sim *s, struct sop *op, int fd, short events)
{
    sim_set_state(s, op, S_WAIT_FD);
    op->wait_fd = fd;
    op->wait_events = events;
}

int sim_resolve_fd(struct sim *s, const struct sop *op, int *fd)
{
    if (!(op->sqe.flags & IOSQE_FIXED_FILE)) {
        *fd = op->sqe.fd;
        return 0;
    }
    if (op->sqe.fd < 0 || (unsigned)op->sqe.fd >= s->nfiles || s->files[op->sqe.fd] < 0)
        return -EBADF;
    *fd = s->files[op->sqe.fd];
    return 0;
}

/* ---- consuming SQEs --------------------------------------------------- */

static unsigned consume(struct sim *s, unsigned to_submit)
{
    unsigned n = 0;
    struct sop *chain = NULL; /* the op the next SQE links to */
    while (n < to_submit && s->sq_head != s->sq_tail) {
        unsigned slot = s->sq_head & s->sq_mask;
        struct sop *op = op_new(s, &s->sqes[slot]);
        if (!op)
            break; /* the SQE stays in the SQ: the caller sees fewer consumed */
        op->tag = s->sq_tag[slot];
        op->tagged = s->sq_tagged[slot];
        s->sq_tagged[slot] = 0;
        s->sq_head++;
        n++;
        sim_set_state(s, op, S_QUEUED);
        if (chain && op->sqe.opcode == IORING_OP_LINK_TIMEOUT && !chain->link_timeout) {
            chain->link_timeout = op;
            op->timeout_of = chain;
            sim_set_state(s, op, S_LINKED); /* armed when the guarded op starts */
            if (!(op->sqe.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)))
                chain = NULL;
            continue;
        }
        if (chain) {
            chain->linked = true;
            chain->link_next = op;
            sim_set_state(s, op, S_LINKED);
        }
        chain = (op->sqe.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)) ? op : NULL;
        op->hardlink = (op->sqe.flags & IOSQE_IO_HARDLINK) != 0;
    }
    return n;
}

/* ---- progress --------------------------------------------------------- */

/* Poll (without sleeping) every fd an op waits on; ready ops become queued. */
static void check_fds(struct sim *s)
{
    struct pollfd stack[64], *pfd = stack;
    unsigned n = 0;
    for (struct sop *op = s->ops_head; op; op = op->next)
        n += op->state == S_WAIT_FD;
    if (n == 0)
        return;
    if (n > 64 && !(pfd = malloc(n * sizeof(*pfd))))
        return;
    unsigned i = 0;
    for (struct sop *op = s->ops_head; op; op = op->next)
        if (op->state == S_WAIT_FD)
            pfd[i++] = (struct pollfd){.fd = op->wait_fd, .events = op->wait_events};
    if (poll(pfd, n, 0) > 0) {
        i = 0;
        for (struct sop *op = s->ops_head; op; op = op->next)
            if (op->state == S_WAIT_FD && pfd[i++].revents)
                sim_set_state(s, op, S_QUEUED);
    }
    if (pfd != stack)
        free(pfd);
}

static void check_timers(struct sim *s)
{
    for (struct sop *op = s->ops_head; op; op = op->next) {
        if (op->state != S_WAIT_TIMER)
            continue;
        bool due = op->deadline <= s->vnow;
        if (op->count_target && s->cqes_posted - op->count_base >= op->count_target)
            due = true;
        if (due)
            sim_set_state(s, op, S_QUEUED);
    }
}

/* The next op to run.  First issues go in submission order, as the kernel
 * issues SQEs inline in order (so two sends on one socket keep their
 * order); ops that waited (an fd became ready, a timer expired) or were
 * punted with IOSQE_ASYNC run in an order the decision source picks: the
 * kernel's wakeups and io-wq workers give no order either. */
static struct sop *next_ready(struct sim *s)
{
    if (s->nqueued == 0)
        return NULL; /* most calls: the one that ends a round */
    unsigned nready = 0;
    for (struct sop *op = s->ops_head; op; op = op->next) {
        if (op->state != S_QUEUED)
            continue;
        if (!op->started && !(op->sqe.flags & IOSQE_ASYNC))
            return op;
        nready++;
    }
    if (nready == 0)
        return NULL;
    unsigned k = 0;
    if (nready > 1 && sim_decide(s, D_ORDER, 2) == 0)
        k = sim_decide(s, D_ORDER, nready);
    for (struct sop *op = s->ops_head; op; op = op->next)
        if (op->state == S_QUEUED && k-- == 0)
            return op;
    return NULL;
}

#ifndef NDEBUG
/* The invariant behind next_ready()'s early return (checked where asserts
 * are compiled in: the C tests and the fuzzers). */
static bool nqueued_consistent(const struct sim *s)
{
    unsigned n = 0;
    for (const struct sop *op = s->ops_head; op; op = op->next)
        n += op->state == S_QUEUED;
    return n == s->nqueued;
}
#endif

static bool round_once(struct sim *s)
{
    check_timers(s);
    check_fds(s);
    bool progress = false;
    struct sop *op;
    while ((op = next_ready(s)) != NULL) {
        progress = true;
        sim_set_state(s, op, S_WAIT_TIMER); /* not queued while it runs */
        op->deadline = INT64_MAX;
        (void)sim_issue(s, op);
    }
    assert(nqueued_consistent(s));
    bool had_notifs = s->notifs != NULL;
    sim_tick_notifs(s, false);
    return progress || had_notifs;
}

static void run_rounds(struct sim *s)
{
    for (int i = 0; i < MAX_ROUNDS; i++)
        if (!round_once(s))
            break;
}

/* ---- waiting ---------------------------------------------------------- */

static int64_t next_deadline(const struct sim *s)
{
    int64_t d = INT64_MAX;
    for (const struct sop *op = s->ops_head; op; op = op->next)
        if (op->state == S_WAIT_TIMER && op->deadline < d)
            d = op->deadline;
    return d;
}

static unsigned waiting_fds(const struct sim *s)
{
    unsigned n = 0;
    for (const struct sop *op = s->ops_head; op; op = op->next)
        n += op->state == S_WAIT_FD;
    return n;
}

/* Sleep (without the lock) until an fd an op waits on is ready, another
 * thread pokes wake_fd, or timeout_ms passes. */
static int sleep_on_fds(struct sim *s, int timeout_ms)
{
    unsigned n = waiting_fds(s) + 1;
    struct pollfd *pfd = calloc(n, sizeof(*pfd));
    if (!pfd)
        return -ENOMEM;
    unsigned i = 0;
    pfd[i++] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
    for (struct sop *op = s->ops_head; op; op = op->next)
        if (op->state == S_WAIT_FD)
            pfd[i++] = (struct pollfd){.fd = op->wait_fd, .events = op->wait_events};
    s->sleepers++;
    pthread_mutex_unlock(&s->mu);
    int64_t t0 = real_ns();
    int rc = poll(pfd, n, timeout_ms) < 0 ? -errno : 0;
    int64_t slept = real_ns() - t0;
    pthread_mutex_lock(&s->mu);
    s->sleepers--;
    s->vnow += slept;
    if (pfd[0].revents) {
        uint64_t v;
        (void)!read(s->wake_fd, &v, sizeof(v));
    }
    free(pfd);
    return rc == -EINTR ? rc : 0; /* a signal: return to the caller, as enter(2) does */
}

static void poke_sleepers(struct sim *s)
{
    if (s->sleepers) {
        uint64_t one = 1;
        (void)!write(s->wake_fd, &one, sizeof(one));
    }
}

/* Wait until min_complete CQEs are in the ring.  Returns 0, -ETIME or -EINTR. */
static int wait_for(struct sim *s, unsigned min_complete, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : s->vnow + timeout_ns;
    for (;;) {
        sim_flush_overflow(s);
        if (sim_cq_ready(s) >= min_complete)
            return 0;
        run_rounds(s);
        sim_flush_overflow(s);
        if (sim_cq_ready(s) >= min_complete)
            return 0;
        if (s->notifs) { /* late notifications: let them land, no sleeping */
            sim_tick_notifs(s, waiting_fds(s) == 0 && next_deadline(s) == INT64_MAX);
            continue;
        }
        if (s->vnow >= deadline)
            return -ETIME;
        int64_t timer = next_deadline(s);
        if (waiting_fds(s) == 0 && timer != INT64_MAX) {
            /* Only timers pending: jump the virtual clock. */
            s->vnow = timer < deadline ? timer : deadline;
            continue;
        }
        int64_t until = timer < deadline ? timer : deadline;
        int timeout_ms = -1;
        if (until != INT64_MAX) {
            int64_t left = until - s->vnow;
            int64_t ms = left <= 0 ? 0 : (left + 999999) / 1000000;
            timeout_ms = ms > 1000000000 ? 1000000000 : (int)ms;
        }
        int rc = sleep_on_fds(s, timeout_ms);
        if (rc < 0)
            return rc;
    }
}

int sim_enter(struct ringio_backend *b, unsigned to_submit, unsigned min_complete,
              int64_t timeout_ns, unsigned flags)
{
    struct sim *s = (struct sim *)b;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (to_submit && s->ovf_head && sim_fault(s, RINGIO_SIM_ENTER_BUSY)) {
        rc = -EBUSY; /* older kernels: reap the backlog first */
        goto out;
    }
    unsigned consumed = consume(s, to_submit);
    run_rounds(s);
    if (flags & RINGIO_ENTER_GETEVENTS) {
        sim_flush_overflow(s);
        if (min_complete) {
            int w = wait_for(s, min_complete, timeout_ns);
            if (w < 0 && consumed == 0)
                rc = w;
        }
    }
    if (rc == 0)
        rc = (int)consumed;
out:
    sim_notify_update(s);
    if (to_submit || sim_cq_ready(s))
        poke_sleepers(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}
