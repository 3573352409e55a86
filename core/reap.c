/*
 * Reaping: drain CQEs from the backend and normalise them into events.
 *
 * What the user sees: one event per one-shot operation; numbered legs for
 * multishot operations (more == false on the last); the operation CQE of a
 * zero-copy send, while its F_NOTIF CQE is consumed here and only ends the
 * buffer's ownership.  Provided buffers are shown to the deliver callback
 * and recycled as soon as it returns.
 */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>

/* ---- the CQE FIFO ---------------------------------------------------- */

static int fifo_push(struct cqe_fifo *f, const struct io_uring_cqe *cqe)
{
    if (f->len == f->cap) {
        unsigned ncap = f->cap ? f->cap * 2 : 256;
        if (ncap < f->cap)
            return -ENOMEM;
        struct io_uring_cqe *v = malloc((size_t)ncap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        /* Unwrap the old contents to the front of the new array. */
        for (unsigned i = 0; i < f->len; i++)
            v[i] = f->v[(f->head + i) & (f->cap - 1)];
        free(f->v);
        f->v = v;
        f->head = 0;
        f->cap = ncap;
    }
    f->v[(f->head + f->len) & (f->cap - 1)] = *cqe;
    f->len++;
    return 0;
}

/* A CQE the core makes up (a chain that never reached the kernel): it is
 * delivered like one drained from the backend. */
int core_post_cqe(struct ringio_core *c, const struct io_uring_cqe *cqe)
{
    return fifo_push(&c->fifo, cqe);
}

static void fifo_pop(struct cqe_fifo *f)
{
    f->head = (f->head + 1) & (f->cap - 1);
    f->len--;
}

/* ---- draining -------------------------------------------------------- */

/* Move every available CQE into the FIFO, pulling the kernel's overflow
 * backlog (IORING_SQ_CQ_OVERFLOW) into the CQ ring as it empties, so no
 * completion is ever lost however small the CQ is. */
int core_drain(struct ringio_core *c)
{
    const struct ringio_backend_ops *ops = c->b->ops;
    unsigned idle_flushes = 0;
    for (;;) {
        struct io_uring_cqe *v[64];
        unsigned n = ops->peek_cqes(c->b, v, 64);
        if (n == 0) {
            /* The backlog moves into the ring only on enter(GETEVENTS);
             * min_complete 0 makes that a non-blocking call.  Bound the
             * loop only against a backend that keeps the flag up while
             * moving nothing: flushes that made progress do not count. */
            if (!ops->cq_overflow_pending(c->b) || idle_flushes++ >= 16)
                return 0;
            c->st.overflow_flushes++;
            int rc = core_enter(c, 0, 0, -1, RINGIO_ENTER_GETEVENTS);
            if (rc < 0 && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
                return rc;
            continue;
        }
        unsigned i;
        int rc = 0;
        for (i = 0; i < n && rc == 0; i++)
            rc = fifo_push(&c->fifo, v[i]);
        if (rc < 0)
            i--; /* the failed one stays in the CQ ring */
        ops->advance(c->b, i);
        c->st.completed += i;
        idle_flushes = 0;
        if (rc < 0)
            return rc;
    }
}

/* ---- normalisation --------------------------------------------------- */

/* The callback must not call back into this core (core.h), but a slot
 * pointer is re-derived from its index after every callback anyway: if the
 * op table were reallocated meanwhile, a held pointer would dangle. */
static int deliver(struct ringio_core *c, ringio_deliver_fn fn, void *ctx,
                   const struct ringio_event *ev, bool *delivered)
{
    int rc = fn(ctx, ev);
    if (rc == 0) {
        *delivered = true;
        c->st.delivered++;
    }
    return rc;
}

static int process_zc(struct ringio_core *c, uint32_t idx, const struct io_uring_cqe *cqe,
                      struct ringio_event *ev, ringio_deliver_fn fn, void *ctx, bool *delivered)
{
    struct ringio_op *op = &c->ops[idx];
    if (cqe->flags & IORING_CQE_F_NOTIF) {
        /* Notification: the kernel no longer touches the buffer. */
        bool was_seen = op->notif_seen;
        op->notif_seen = true;
        if (op->zc_report)
            op->zc_copied = (cqe->res & (int32_t)IORING_NOTIF_USAGE_ZC_COPIED) ? 1 : 0;
        if (op->held) {
            ev->res = op->held_res;
            ev->flags = op->held_flags;
            ev->final = true;
            ev->zc_copied = op->zc_copied;
            int rc = deliver(c, fn, ctx, ev, delivered);
            op = &c->ops[idx];
            if (rc != 0) {
                op->notif_seen = was_seen; /* replayed on the next reap */
                return rc;
            }
            op_release(c, op);
        } else if (op->op_cqe_seen) {
            op_release(c, op);
        }
        /* else: notification before the operation CQE; remember it. */
        return 0;
    }
    /* The operation CQE.  F_MORE says a notification will follow. */
    bool notif_follows = (cqe->flags & IORING_CQE_F_MORE) && !op->notif_seen;
    if (notif_follows && op->zc_report) {
        op->held = true;
        op->held_res = cqe->res;
        op->held_flags = cqe->flags;
        return 0;
    }
    ev->final = !notif_follows;
    ev->zc_copied = op->zc_copied;
    int rc = deliver(c, fn, ctx, ev, delivered);
    if (rc != 0)
        return rc;
    op = &c->ops[idx];
    op->op_cqe_seen = true;
    if (ev->final)
        op_release(c, op);
    return 0;
}

static int process_leg(struct ringio_core *c, uint32_t idx, const struct io_uring_cqe *cqe,
                       struct ringio_event *ev, ringio_deliver_fn fn, void *ctx, bool *delivered)
{
    struct ringio_op *op = &c->ops[idx];
    struct ringio_bufring *r = op->bufring;
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    bool has_buf = false;
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    ev->sequence = op->sequence;
    ev->more = more;
    ev->final = !more;
    if (r && (cqe->flags & IORING_CQE_F_BUFFER) && bid < r->buf_count) {
        has_buf = true;
        /* A length beyond the buffer would be a backend bug: show no data. */
        if (cqe->res > 0 && (uint32_t)cqe->res <= r->buf_size) {
            ev->data = bufring_data(r, bid);
            ev->data_len = (uint32_t)cqe->res;
        }
    }
    int rc = deliver(c, fn, ctx, ev, delivered);
    if (rc != 0)
        return rc;
    op = &c->ops[idx];
    op->sequence++;
    if (!more)
        op_release(c, op); /* destroys the buffer ring too */
    else if (has_buf)
        bufring_recycle(r, bid);
    return 0;
}

static int process(struct ringio_core *c, const struct io_uring_cqe *cqe, ringio_deliver_fn fn,
                   void *ctx, bool *delivered)
{
    struct ringio_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.token = cqe->user_data;
    ev.res = cqe->res;
    ev.flags = cqe->flags;
    ev.zc_copied = -1;

    if (cqe->user_data == RINGIO_TOKEN_WAKE) {
        ev.wake = true;
        ev.final = true;
        ev.opcode = IORING_OP_NOP;
        return deliver(c, fn, ctx, &ev, delivered);
    }
    if (cqe->user_data == RINGIO_TOKEN_INTERNAL)
        return 0;
    struct ringio_op *op = op_lookup(c, cqe->user_data);
    if (!op) {
        c->st.stale_cqes++; /* a bug somewhere: report, never crash */
        return 0;
    }
    uint32_t idx = (uint32_t)(op - c->ops);
    ev.owner = op->owner;
    ev.opcode = op->opcode;
    if (op->zc)
        return process_zc(c, idx, cqe, &ev, fn, ctx, delivered);
    if (op->multishot)
        return process_leg(c, idx, cqe, &ev, fn, ctx, delivered);
    ev.final = true;
    int rc = deliver(c, fn, ctx, &ev, delivered);
    if (rc == 0)
        op_release(c, &c->ops[idx]);
    return rc;
}

int ringio_core_reap(struct ringio_core *c, unsigned max, ringio_deliver_fn fn, void *ctx)
{
    if (!fn)
        return -EINVAL;
    if (c->closed)
        return -EBADF;
    int rc = core_drain(c);
    if (rc < 0 && c->fifo.len == 0)
        return rc;
    unsigned delivered = 0;
    bool refilled = false;
    while (delivered < max) {
        if (c->fifo.len == 0) {
            /* Pick up what arrived while we were delivering, once. */
            if (refilled || core_drain(c) < 0 || c->fifo.len == 0)
                break;
            refilled = true;
        }
        struct io_uring_cqe cqe = c->fifo.v[c->fifo.head];
        bool d = false;
        rc = process(c, &cqe, fn, ctx, &d);
        if (rc != 0)
            return rc; /* the CQE stays at the head of the FIFO */
        fifo_pop(&c->fifo);
        delivered += d;
    }
    return (int)delivered;
}

bool ringio_core_ready(struct ringio_core *c)
{
    if (c->closed)
        return false;
    if (c->fifo.len)
        return true;
    struct io_uring_cqe *v[1];
    return c->b->ops->peek_cqes(c->b, v, 1) > 0 || c->b->ops->cq_overflow_pending(c->b);
}

/* ---- waiting --------------------------------------------------------- */

unsigned ringio_core_wait_prepare(struct ringio_core *c)
{
    c->waiters++;
    return c->closed ? 0 : c->b->ops->flush(c->b);
}

int ringio_core_wait_block(struct ringio_core *c, unsigned to_submit, unsigned min_complete,
                           int64_t timeout_ns)
{
    /* Runs without the ring lock: touch only the backend's enter(), which is
     * a plain syscall.  The caller keeps the core open while it waits. */
    struct ringio_backend *b = c->b;
    if (!b)
        return -EBADF;
    int rc = core_enter(c, to_submit, min_complete, timeout_ns, RINGIO_ENTER_GETEVENTS);
    if (rc >= 0) {
        __atomic_fetch_add(&c->st.submitted, (uint64_t)rc, __ATOMIC_RELAXED);
        return 0;
    }
    if (rc == -EBUSY || rc == -EAGAIN)
        return 0; /* completions are waiting to be reaped first */
    return rc;
}

void ringio_core_wait_finish(struct ringio_core *c)
{
    if (c->waiters)
        c->waiters--;
}

/* Used by close (ctx: the core): deliver nothing to anyone, but never leak
 * an fd that an accept, socket or openat operation created into a completion
 * nobody will see.  An openat into the fixed file table (op->direct) returns
 * a slot index or 0, not an fd: the table goes away with the ring. */
int core_discard_event(void *ctx, const struct ringio_event *ev)
{
    struct ringio_core *c = ctx;
    if (ev->res < 0 || ev->wake)
        return 0;
    if (ev->opcode == IORING_OP_ACCEPT || ev->opcode == IORING_OP_SOCKET) {
        close(ev->res);
    } else if (ev->opcode == IORING_OP_OPENAT) {
        const struct ringio_op *op = c ? op_lookup(c, ev->token) : NULL;
        if (op && !op->direct)
            close(ev->res);
    }
    return 0;
}
