/*
 * Linked chains (IOSQE_IO_LINK).
 *
 * The kernel runs the SQEs of a chain one after the other and completes the
 * rest of the chain with -ECANCELED when one fails.  A chain must sit
 * contiguously in the SQ and be consumed by one io_uring_enter: a chain whose
 * last SQE still carries IOSQE_IO_LINK at the end of a submission is cut
 * there.  So while a chain is open its SQEs are prepared in core memory
 * (link_slot), and link_end reserves room for all of them at once and copies
 * them in, or places none.
 *
 * Invariant: every op of an open chain is allocated and live (op_commit ran)
 * with its SQE in c->chain[0..chain_len); nothing of it is in the SQ.
 */
#include "internal.h"

#include <stdlib.h>

struct io_uring_sqe *link_slot(struct ringio_core *c)
{
    /* A chain longer than the SQ could never be placed in one piece. */
    if (c->chain_len >= c->b->sq_entries)
        return NULL;
    if (c->chain_len == c->chain_cap) {
        unsigned ncap = c->chain_cap ? c->chain_cap * 2 : 8;
        struct io_uring_sqe *n = realloc(c->chain, (size_t)ncap * sizeof(*n));
        if (!n)
            return NULL;
        c->chain = n;
        c->chain_cap = ncap;
    }
    return &c->chain[c->chain_len++];
}

/* The kernel's verdict on the rest of a failed chain, for a chain that never
 * reached it: one -ECANCELED completion per operation, through the FIFO. */
void link_abort_all(struct ringio_core *c)
{
    for (unsigned i = 0; i < c->chain_len; i++) {
        struct io_uring_cqe cqe = {.user_data = c->chain[i].user_data, .res = -ECANCELED};
        if (core_post_cqe(c, &cqe) < 0) {
            /* Out of memory for the FIFO: release the owner directly. */
            struct ringio_op *op = op_lookup(c, cqe.user_data);
            if (op)
                op_release(c, op);
        }
    }
    c->chain_len = 0;
}

int ringio_core_link_begin(struct ringio_core *c, bool hard)
{
    if (c->closed)
        return -EBADF;
    if (c->linking)
        return -EBUSY;
    c->linking = true;
    c->link_hard = hard;
    c->chain_len = 0;
    return 0;
}

bool ringio_core_linking(const struct ringio_core *c)
{
    return c->linking;
}

int ringio_core_link_end(struct ringio_core *c, bool abort)
{
    if (!c->linking)
        return -EINVAL;
    c->linking = false;
    unsigned n = c->chain_len;
    if (n == 0)
        return 0;
    if (abort || c->closed) {
        link_abort_all(c);
        return abort ? 0 : -EBADF;
    }
    /* Flushing what was staged before the chain is fine: it is not part of
     * it.  In strict batch mode a full SQ fails the chain instead. */
    int rc = sq_reserve(c, n, true);
    if (rc < 0) {
        link_abort_all(c);
        return rc;
    }
    const struct ringio_backend_ops *ops = c->b->ops;
    for (unsigned i = 0; i < n; i++) {
        /* Cannot fail: sq_reserve saw n free slots and we hold the lock. */
        struct io_uring_sqe *sqe = ops->get_sqe(c->b);
        *sqe = c->chain[i];
        uint8_t link = c->link_hard ? IOSQE_IO_HARDLINK : IOSQE_IO_LINK;
        sqe->flags &= (uint8_t)~(IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
        if (i + 1 < n)
            sqe->flags |= link;
        if (ops->annotate) {
            const struct ringio_op *op = op_lookup(c, sqe->user_data);
            ops->annotate(c->b, sqe->user_data, op && op->owner ? op->owner->tag : 0);
        }
    }
    c->chain_len = 0;
    if (c->mode == RINGIO_SUBMIT_NOW || c->waiters > 0)
        (void)core_push(c); /* a refused enter leaves the chain staged, whole */
    return (int)n;
}
