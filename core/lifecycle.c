/*
 * Core lifecycle: creation, close with operations in flight, accessors.
 */
#include "internal.h"

#include <stdlib.h>
#include <time.h>

int ringio_core_new(struct ringio_backend *b, struct ringio_core **out)
{
    if (!b || !out)
        return -EINVAL;
    struct ringio_core *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->b = b;
    c->mode = RINGIO_SUBMIT_NOW;
    *out = c;
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Ask the kernel to cancel every live operation, one cancel SQE per token
 * (works on every kernel, unlike IORING_ASYNC_CANCEL_ANY).  Cancels carry
 * the internal token, so their own CQEs are dropped silently. */
static void cancel_all(struct ringio_core *c)
{
    for (uint32_t i = 0; i < c->nops; i++) {
        if (c->ops[i].state != OP_LIVE)
            continue;
        if (sq_reserve(c, 1, false) < 0)
            break; /* the bounded wait and the final teardown still apply */
        struct io_uring_sqe *sqe = c->b->ops->get_sqe(c->b);
        memset(sqe, 0, sizeof(*sqe));
        sqe->opcode = IORING_OP_ASYNC_CANCEL;
        sqe->fd = -1;
        sqe->addr = op_token(c, i);
        sqe->user_data = RINGIO_TOKEN_INTERNAL;
    }
    (void)core_push(c);
}

/* Reap (and discard) until nothing is live or the deadline passes. */
static void reap_until(struct ringio_core *c, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
    while (c->live > 0) {
        if (ringio_core_reap(c, UINT32_MAX, core_discard_event, c) < 0)
            return;
        if (c->live == 0)
            return;
        int64_t left = -1;
        if (deadline >= 0) {
            left = deadline - now_ns();
            if (left <= 0)
                return;
        }
        int rc = core_enter(c, 0, 1, left, RINGIO_ENTER_GETEVENTS);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
            return;
    }
}

int ringio_core_close(struct ringio_core *c, int64_t timeout_ns)
{
    if (!c || c->closed)
        return 0;
    if (c->linking)
        (void)ringio_core_link_end(c, true); /* its ops complete -ECANCELED */
    if (c->live > 0) {
        cancel_all(c);
        reap_until(c, timeout_ns);
    }
    /* Whatever is still live had no final CQE within the bound.  Unregister
     * its buffer rings while the backend exists, tear the ring down (the
     * kernel cancels the rest), then release the owners: exactly once. */
    for (uint32_t i = 0; i < c->nops; i++) {
        struct ringio_op *op = &c->ops[i];
        if (op->state == OP_LIVE && op->bufring) {
            bufring_destroy(c, op->bufring);
            op->bufring = NULL;
        }
    }
    c->b->ops->destroy(c->b);
    c->b = NULL;
    c->closed = true;
    int forced = 0;
    for (uint32_t i = 0; i < c->nops; i++) {
        if (c->ops[i].state == OP_LIVE) {
            op_release(c, &c->ops[i]);
            forced++;
        }
    }
    free(c->fifo.v);
    c->fifo.v = NULL;
    free(c->chain);
    c->chain = NULL;
    c->chain_len = c->chain_cap = 0;
    c->fifo.len = c->fifo.cap = c->fifo.head = 0;
    return forced;
}

void ringio_core_free(struct ringio_core *c)
{
    if (!c)
        return;
    ringio_core_close(c, 0);
    free(c->ops);
    free(c);
}

bool ringio_core_closed(const struct ringio_core *c)
{
    return c->closed;
}

const struct ringio_backend *ringio_core_backend(const struct ringio_core *c)
{
    return c->b;
}

void ringio_core_stats(const struct ringio_core *c, struct ringio_stats *out)
{
    *out = c->st;
    out->submitted = __atomic_load_n(&c->st.submitted, __ATOMIC_RELAXED);
    out->enters = __atomic_load_n(&c->st.enters, __ATOMIC_RELAXED);
    out->inflight = c->live;
}

unsigned ringio_core_inflight(const struct ringio_core *c)
{
    return c->live;
}

int ringio_core_probe_opcodes(struct ringio_core *c, uint8_t *supported, unsigned n)
{
    if (c->closed)
        return -EBADF;
    return c->b->ops->probe_opcodes(c->b, supported, n);
}
