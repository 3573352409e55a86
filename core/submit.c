/*
 * Submission: SQ reservation, backpressure and entering the kernel.
 *
 * Invariant: an operation is either entirely in the SQ (slot allocated, SQE
 * prepared, user_data = token) or not at all.  Everything that can fail is
 * done before the SQE is written, so a refused submit leaves no trace and
 * its owner still belongs to the caller.
 */
#include "internal.h"

/* Publish prepared SQEs and hand them to the kernel.  -EBUSY/-EAGAIN mean the
 * kernel wants completions reaped first (CQ overflow backlog): drain the CQ
 * into the core's FIFO, which frees the kernel's side, and try again. */
int core_push(struct ringio_core *c)
{
    const struct ringio_backend_ops *ops = c->b->ops;
    unsigned pending = ops->flush(c->b);
    int busy = 0;
    while (pending) {
        int rc = core_enter(c, pending, 0, -1, 0);
        if (rc >= 0) {
            __atomic_fetch_add(&c->st.submitted, (uint64_t)rc, __ATOMIC_RELAXED);
            return rc;
        }
        /* Both retries are bounded: a backend that keeps failing must not
         * spin us forever; the SQEs stay staged for the next enter. */
        if (rc == -EINTR && busy++ < 64)
            continue;
        if ((rc == -EBUSY || rc == -EAGAIN) && busy++ < 64) {
            c->st.busy_retries++;
            int d = core_drain(c);
            if (d < 0)
                return d;
            continue;
        }
        return rc;
    }
    return 0;
}

/* Make room for n SQEs: flush once if the SQ is full, then give up with
 * -EBUSY (backpressure).  In strict batch mode the caller asked us never to
 * enter the kernel early, so a full SQ fails at once. */
int sq_reserve(struct ringio_core *c, unsigned n, bool honour_strict)
{
    const struct ringio_backend_ops *ops = c->b->ops;
    if (ops->sq_space_left(c->b) >= n)
        return 0;
    if (honour_strict && c->mode == RINGIO_SUBMIT_STRICT && c->waiters == 0)
        return -EBUSY;
    c->st.sq_full_flushes++;
    (void)core_push(c); /* an error here surfaces as "still full" below */
    return ops->sq_space_left(c->b) >= n ? 0 : -EBUSY;
}

int op_begin(struct ringio_core *c, struct ringio_owner *o, uint8_t opcode, uint64_t *token,
             uint32_t *idx, struct io_uring_sqe **sqe)
{
    if (!o || !token)
        return -EINVAL;
    if (c->closed)
        return -EBADF;
    int rc = op_alloc(c, idx);
    if (rc < 0)
        return rc;
    if (c->linking) {
        /* Held back in the core until link_end places the whole chain. */
        *sqe = link_slot(c);
        if (*sqe == NULL) {
            op_unalloc(c, *idx);
            return -EBUSY;
        }
    } else {
        rc = sq_reserve(c, 1, true);
        if (rc < 0) {
            op_unalloc(c, *idx);
            return rc;
        }
        /* Cannot fail: sq_reserve just saw a free slot and we hold the lock. */
        *sqe = c->b->ops->get_sqe(c->b);
    }
    memset(*sqe, 0, sizeof(**sqe));
    (*sqe)->opcode = opcode;
    (*sqe)->fd = -1;
    struct ringio_op *op = &c->ops[*idx];
    op->opcode = opcode;
    op->owner = o;
    return 0;
}

/* The SQE is fully prepared: it now belongs to the kernel side. */
int op_commit(struct ringio_core *c, uint32_t idx, struct io_uring_sqe *sqe, uint64_t *token)
{
    *token = op_token(c, idx);
    sqe->user_data = *token;
    c->live++;
    if (c->linking)
        return 0; /* annotated and submitted by link_end */
    if (c->b->ops->annotate)
        c->b->ops->annotate(c->b, *token, c->ops[idx].owner->tag);
    /* A thread blocked in wait would otherwise never see staged work. */
    if (c->mode == RINGIO_SUBMIT_NOW || c->waiters > 0)
        (void)core_push(c); /* a refused enter leaves the SQE staged, not lost */
    return 0;
}

enum ringio_submit_mode ringio_core_set_mode(struct ringio_core *c, enum ringio_submit_mode m)
{
    enum ringio_submit_mode old = c->mode;
    c->mode = m;
    return old;
}

int ringio_core_submit(struct ringio_core *c)
{
    if (c->closed)
        return -EBADF;
    return core_push(c);
}

unsigned ringio_core_staged(struct ringio_core *c)
{
    return c->closed ? 0 : c->b->ops->flush(c->b);
}

int ringio_core_wake(struct ringio_core *c)
{
    if (c->closed)
        return -EBADF;
    int rc = sq_reserve(c, 1, false);
    if (rc < 0)
        return rc;
    struct io_uring_sqe *sqe = c->b->ops->get_sqe(c->b);
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = IORING_OP_NOP;
    sqe->fd = -1;
    sqe->user_data = RINGIO_TOKEN_WAKE;
    rc = core_push(c);
    return rc < 0 ? rc : 0;
}
