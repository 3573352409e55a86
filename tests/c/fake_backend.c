/*
 * Scriptable in-memory backend for the core's C tests (see fake_backend.h).
 * Models the parts of io_uring the core relies on: SQ head/tail publication,
 * consumption by enter(), CQ ring + NODROP overflow backlog, provided-buffer
 * rings with a private kernel head, -EBUSY from enter().
 */
#include "fake_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "fake_backend: out of memory\n");
        abort();
    }
    return q;
}

static unsigned round_pow2(unsigned v)
{
    unsigned p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* ---- record -------------------------------------------------------------- */

void fake_record_init(struct fake_record *r)
{
    memset(r, 0, sizeof(*r));
}

void fake_record_free(struct fake_record *r)
{
    free(r->log);
    memset(r, 0, sizeof(*r));
}

const struct io_uring_sqe *fake_log_find(const struct fake_record *r, uint64_t user_data)
{
    for (size_t i = r->log_len; i-- > 0;)
        if (r->log[i].user_data == user_data)
            return &r->log[i];
    return NULL;
}

size_t fake_log_count_op(const struct fake_record *r, uint8_t opcode)
{
    size_t n = 0;
    for (size_t i = 0; i < r->log_len; i++)
        n += r->log[i].opcode == opcode;
    return n;
}

static void log_sqe(struct fake_record *r, const struct io_uring_sqe *sqe)
{
    if (r->log_len == r->log_cap) {
        r->log_cap = r->log_cap ? r->log_cap * 2 : 64;
        r->log = xrealloc(r->log, r->log_cap * sizeof(*r->log));
    }
    r->log[r->log_len++] = *sqe;
}

void fake_config_default(struct fake_config *cfg, struct fake_record *rec)
{
    cfg->sq_entries = 8;
    cfg->cq_entries = 16;
    cfg->features = IORING_FEAT_NODROP;
    cfg->rec = rec;
}

static struct fake_backend *FB(struct ringio_backend *b)
{
    return (struct fake_backend *)b;
}

/* ---- CQ ------------------------------------------------------------------ */

static unsigned cq_ready(const struct fake_backend *fb)
{
    return fb->cq_tail - fb->cq_head;
}

static void cq_push_ring(struct fake_backend *fb, const struct io_uring_cqe *cqe)
{
    struct io_uring_cqe *dst = &fb->cqes[fb->cq_tail & fb->cq_mask];
    dst->user_data = cqe->user_data;
    dst->res = cqe->res;
    dst->flags = cqe->flags;
    fb->cq_tail++;
}

void fake_post_cqe(struct fake_backend *fb, uint64_t user_data, int32_t res, uint32_t flags)
{
    struct io_uring_cqe cqe;
    memset(&cqe, 0, sizeof(cqe));
    cqe.user_data = user_data;
    cqe.res = res;
    cqe.flags = flags;
    fb->rec->cqes_posted++;
    /* While a backlog exists, new CQEs join it so the order is kept. */
    if (fb->backlog_len == 0 && cq_ready(fb) < fb->base.cq_entries) {
        cq_push_ring(fb, &cqe);
        return;
    }
    fb->rec->cqes_overflowed++;
    if (fb->backlog_head + fb->backlog_len == fb->backlog_cap) {
        if (fb->backlog_head > 0) {
            memmove(fb->backlog, fb->backlog + fb->backlog_head,
                    fb->backlog_len * sizeof(*fb->backlog));
            fb->backlog_head = 0;
        }
        if (fb->backlog_len == fb->backlog_cap) {
            fb->backlog_cap = fb->backlog_cap ? fb->backlog_cap * 2 : 64;
            fb->backlog = xrealloc(fb->backlog, fb->backlog_cap * sizeof(*fb->backlog));
        }
    }
    struct io_uring_cqe *dst = &fb->backlog[fb->backlog_head + fb->backlog_len];
    dst->user_data = cqe.user_data;
    dst->res = cqe.res;
    dst->flags = cqe.flags;
    fb->backlog_len++;
}

/* Move as much of the backlog into the ring as fits.  Returns true when
 * something moved. */
static bool flush_backlog(struct fake_backend *fb)
{
    bool moved = false;
    while (fb->backlog_len > 0 && cq_ready(fb) < fb->base.cq_entries) {
        cq_push_ring(fb, &fb->backlog[fb->backlog_head]);
        fb->backlog_head++;
        fb->backlog_len--;
        moved = true;
    }
    if (fb->backlog_len == 0)
        fb->backlog_head = 0;
    if (moved)
        fb->rec->backlog_flushes++;
    return moved;
}

/* ---- pending list ---------------------------------------------------------- */

static void pending_add(struct fake_backend *fb, const struct io_uring_sqe *sqe)
{
    if (fb->pending_len == fb->pending_cap) {
        fb->pending_cap = fb->pending_cap ? fb->pending_cap * 2 : 32;
        fb->pending = xrealloc(fb->pending, fb->pending_cap * sizeof(*fb->pending));
    }
    fb->pending[fb->pending_len].sqe = *sqe;
    fb->pending[fb->pending_len].zc_op_done = false;
    fb->pending_len++;
}

static void pending_remove_at(struct fake_backend *fb, size_t i)
{
    memmove(&fb->pending[i], &fb->pending[i + 1],
            (fb->pending_len - i - 1) * sizeof(*fb->pending));
    fb->pending_len--;
}

static ptrdiff_t pending_index(const struct fake_backend *fb, uint64_t user_data)
{
    for (size_t i = 0; i < fb->pending_len; i++)
        if (fb->pending[i].sqe.user_data == user_data)
            return (ptrdiff_t)i;
    return -1;
}

size_t fake_pending_count(const struct fake_backend *fb)
{
    return fb->pending_len;
}

const struct io_uring_sqe *fake_pending_find(const struct fake_backend *fb, uint64_t user_data)
{
    ptrdiff_t i = pending_index(fb, user_data);
    return i < 0 ? NULL : &fb->pending[i].sqe;
}

int fake_complete(struct fake_backend *fb, uint64_t user_data, int32_t res, uint32_t flags)
{
    ptrdiff_t i = pending_index(fb, user_data);
    fake_post_cqe(fb, user_data, res, flags);
    if (i < 0)
        return -ENOENT;
    struct fake_pending *p = &fb->pending[i];
    if (!(flags & IORING_CQE_F_MORE))
        pending_remove_at(fb, (size_t)i);
    else if (p->sqe.opcode == IORING_OP_SEND_ZC || p->sqe.opcode == IORING_OP_SENDMSG_ZC)
        p->zc_op_done = true;
    return 0;
}

/* ---- policy ---------------------------------------------------------------- */

static bool cancel_matches(const struct io_uring_sqe *cancel, const struct fake_pending *fp)
{
    const struct io_uring_sqe *p = &fp->sqe;
    unsigned fl = cancel->cancel_flags;
    if (p->opcode == IORING_OP_ASYNC_CANCEL || fp->zc_op_done)
        return false; /* cancels are not targets; a sent zc only awaits its notif */
    if (fl & IORING_ASYNC_CANCEL_ANY)
        return true;
    if (fl & IORING_ASYNC_CANCEL_FD)
        return p->fd == cancel->fd;
    return p->user_data == cancel->addr;
}

static void answer_cancel(struct fake_backend *fb, const struct io_uring_sqe *sqe)
{
    bool all = sqe->cancel_flags & (IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
    int n = 0;
    for (size_t i = 0; i < fb->pending_len;) {
        if (cancel_matches(sqe, &fb->pending[i])) {
            fake_post_cqe(fb, fb->pending[i].sqe.user_data, -ECANCELED, 0);
            pending_remove_at(fb, i);
            n++;
            if (!all)
                break;
        } else {
            i++;
        }
    }
    fake_post_cqe(fb, sqe->user_data, n > 0 ? (all ? n : 0) : -ENOENT, 0);
}

static void answer_deferred_cancels(struct fake_backend *fb)
{
    for (size_t i = 0; i < fb->pending_len;) {
        if (fb->pending[i].sqe.opcode == IORING_OP_ASYNC_CANCEL) {
            struct io_uring_sqe cancel = fb->pending[i].sqe;
            pending_remove_at(fb, i);
            answer_cancel(fb, &cancel);
            i = 0; /* answer_cancel() removed targets: rescan */
        } else {
            i++;
        }
    }
}

static void consume_one(struct fake_backend *fb, const struct io_uring_sqe *sqe)
{
    log_sqe(fb->rec, sqe);
    fb->rec->consumed++;
    if (fb->hook && fb->hook(fb->hook_ctx, fb, sqe))
        return;
    if (sqe->opcode == IORING_OP_NOP && fb->auto_nop) {
        fake_post_cqe(fb, sqe->user_data, 0, 0);
        return;
    }
    if (sqe->opcode == IORING_OP_ASYNC_CANCEL && fb->cancel_policy == FAKE_CANCEL_ANSWER) {
        answer_cancel(fb, sqe);
        return;
    }
    pending_add(fb, sqe);
}

/* ---- ops ------------------------------------------------------------------- */

static struct io_uring_sqe *fake_get_sqe(struct ringio_backend *b)
{
    struct fake_backend *fb = FB(b);
    if (fb->sqe_tail - fb->sq_head >= b->sq_entries) {
        fb->rec->get_sqe_null++;
        return NULL;
    }
    struct io_uring_sqe *sqe = &fb->sqes[fb->sqe_tail & fb->sq_mask];
    fb->sqe_tail++;
    /* Poison: the caller's prep must set every field. */
    memset(sqe, 0xA5, sizeof(*sqe));
    return sqe;
}

static unsigned fake_sq_space_left(struct ringio_backend *b)
{
    struct fake_backend *fb = FB(b);
    return b->sq_entries - (fb->sqe_tail - fb->sq_head);
}

static unsigned fake_flush(struct ringio_backend *b)
{
    struct fake_backend *fb = FB(b);
    fb->rec->flushes++;
    fb->sq_tail = fb->sqe_tail;
    return fb->sq_tail - fb->sq_head;
}

static int fake_enter(struct ringio_backend *b, unsigned to_submit, unsigned min_complete,
                      int64_t timeout_ns, unsigned flags)
{
    struct fake_backend *fb = FB(b);
    struct fake_record *rec = fb->rec;
    rec->enters++;
    if (flags & RINGIO_ENTER_GETEVENTS)
        rec->enters_getevents++;
    if (to_submit > 0)
        rec->enters_submitting++;

    if (fb->enter_busy_count > 0) {
        fb->enter_busy_count--;
        rec->busy_returned++;
        return -EBUSY;
    }
    if (to_submit > 0 && fb->busy_on_backlog && fb->backlog_len > 0) {
        flush_backlog(fb);
        if (fb->backlog_len > 0) {
            rec->busy_returned++;
            return -EBUSY;
        }
    }

    unsigned consumed = 0;
    if (!fb->refuse_consume) {
        while (consumed < to_submit && fb->sq_head != fb->sq_tail) {
            /* Copy first: the slot is free for get_sqe() once head moves,
             * and consume_one() may post CQEs but never hands out SQEs. */
            struct io_uring_sqe copy = fb->sqes[fb->sq_head & fb->sq_mask];
            fb->sq_head++;
            consumed++;
            consume_one(fb, &copy);
        }
    }

    if (flags & RINGIO_ENTER_GETEVENTS) {
        flush_backlog(fb);
        if (fb->cancel_policy == FAKE_CANCEL_DEFERRED && min_complete > 0 &&
            cq_ready(fb) < min_complete)
            answer_deferred_cancels(fb);
        if (consumed > 0)
            return (int)consumed; /* like io_uring_enter: submitted count wins */
        if (cq_ready(fb) >= min_complete)
            return 0;
        /* Nothing will ever arrive without the test's help: never sleep. */
        if (timeout_ns < 0)
            rec->would_block++;
        rec->etime_returned++;
        return -ETIME;
    }
    return (int)consumed;
}

static unsigned fake_peek_cqes(struct ringio_backend *b, struct io_uring_cqe **cqes, unsigned max)
{
    struct fake_backend *fb = FB(b);
    unsigned n = cq_ready(fb);
    if (n > max)
        n = max;
    for (unsigned i = 0; i < n; i++)
        cqes[i] = &fb->cqes[(fb->cq_head + i) & fb->cq_mask];
    return n;
}

static void fake_advance(struct ringio_backend *b, unsigned n)
{
    struct fake_backend *fb = FB(b);
    unsigned ready = cq_ready(fb);
    if (n > ready) {
        fb->rec->advance_errors++;
        n = ready;
    }
    /* Scribble over consumed entries: the core must not read them later. */
    for (unsigned i = 0; i < n; i++)
        memset(&fb->cqes[(fb->cq_head + i) & fb->cq_mask], 0x5A, sizeof(struct io_uring_cqe));
    fb->cq_head += n;
    fb->rec->cqes_advanced += n;
}

static bool fake_cq_overflow_pending(struct ringio_backend *b)
{
    return FB(b)->backlog_len > 0;
}

static int fake_register_buf_ring(struct ringio_backend *b, unsigned entries, unsigned bgid,
                                  struct io_uring_buf_ring **out)
{
    struct fake_backend *fb = FB(b);
    if (fb->register_error)
        return fb->register_error;
    if (entries == 0 || entries > 32768 || (entries & (entries - 1)) || bgid > 0xffff)
        return -EINVAL;
    struct fake_bufring *slot = NULL;
    for (unsigned i = 0; i < FAKE_MAX_BUFRINGS; i++) {
        if (fb->bufrings[i].live && fb->bufrings[i].bgid == bgid)
            return -EEXIST;
        if (!fb->bufrings[i].live && !slot)
            slot = &fb->bufrings[i];
    }
    if (!slot)
        return -ENOMEM;
    size_t bytes = (size_t)entries * sizeof(struct io_uring_buf);
    bytes = (bytes + 4095) & ~(size_t)4095;
    struct io_uring_buf_ring *br = aligned_alloc(4096, bytes);
    if (!br)
        return -ENOMEM;
    memset(br, 0, bytes);
    slot->br = br;
    slot->entries = entries;
    slot->bgid = bgid;
    slot->head = 0;
    slot->live = true;
    fb->rec->bufrings_registered++;
    fb->rec->bufrings_live++;
    *out = br;
    return 0;
}

static int fake_unregister_buf_ring(struct ringio_backend *b, struct io_uring_buf_ring *br,
                                    unsigned entries, unsigned bgid)
{
    struct fake_backend *fb = FB(b);
    for (unsigned i = 0; i < FAKE_MAX_BUFRINGS; i++) {
        struct fake_bufring *r = &fb->bufrings[i];
        if (r->live && r->br == br) {
            if (r->entries != entries || r->bgid != bgid) {
                fb->rec->bad_unregisters++;
                return -EINVAL;
            }
            free(r->br);
            memset(r, 0, sizeof(*r));
            fb->rec->bufrings_unregistered++;
            fb->rec->bufrings_live--;
            return 0;
        }
    }
    fb->rec->bad_unregisters++;
    return -EINVAL;
}

static int fake_probe_opcodes(struct ringio_backend *b, uint8_t *supported, unsigned n)
{
    (void)b;
    for (unsigned i = 0; i < n; i++)
        supported[i] = i < IORING_OP_LAST;
    return IORING_OP_LAST;
}

static void fake_destroy(struct ringio_backend *b)
{
    struct fake_backend *fb = FB(b);
    struct fake_record *rec = fb->rec;
    rec->destroys++;
    rec->bufrings_live_at_destroy = 0;
    for (unsigned i = 0; i < FAKE_MAX_BUFRINGS; i++) {
        if (fb->bufrings[i].live) {
            rec->bufrings_live_at_destroy++;
            free(fb->bufrings[i].br);
        }
    }
    rec->pending_at_destroy = (unsigned)fb->pending_len;
    rec->unpublished_at_destroy = fb->sqe_tail - fb->sq_tail;
    free(fb->sqes);
    free(fb->cqes);
    free(fb->backlog);
    free(fb->pending);
    free(fb);
}

static const struct ringio_backend_ops fake_ops = {
    .name = "fake",
    .get_sqe = fake_get_sqe,
    .sq_space_left = fake_sq_space_left,
    .flush = fake_flush,
    .enter = fake_enter,
    .peek_cqes = fake_peek_cqes,
    .advance = fake_advance,
    .cq_overflow_pending = fake_cq_overflow_pending,
    .register_buf_ring = fake_register_buf_ring,
    .unregister_buf_ring = fake_unregister_buf_ring,
    .probe_opcodes = fake_probe_opcodes,
    .destroy = fake_destroy,
};

int fake_backend_new(const struct fake_config *cfg, struct fake_backend **out)
{
    if (!cfg || !cfg->rec || !out || cfg->sq_entries == 0 || cfg->sq_entries > 32768)
        return -EINVAL;
    unsigned sq = round_pow2(cfg->sq_entries);
    unsigned cq = round_pow2(cfg->cq_entries ? cfg->cq_entries : 2 * sq);
    if (cq < sq)
        return -EINVAL; /* the kernel wants cq >= sq */
    struct fake_backend *fb = calloc(1, sizeof(*fb));
    if (!fb)
        return -ENOMEM;
    fb->sqes = calloc(sq, sizeof(*fb->sqes));
    fb->cqes = calloc(cq, sizeof(*fb->cqes));
    if (!fb->sqes || !fb->cqes) {
        free(fb->sqes);
        free(fb->cqes);
        free(fb);
        return -ENOMEM;
    }
    fb->base.ops = &fake_ops;
    fb->base.fd = -1;
    fb->base.features = cfg->features;
    fb->base.sq_entries = sq;
    fb->base.cq_entries = cq;
    fb->base.setup_flags = 0;
    fb->rec = cfg->rec;
    fb->sq_mask = sq - 1;
    fb->cq_mask = cq - 1;
    fb->auto_nop = true;
    fb->cancel_policy = FAKE_CANCEL_ANSWER;
    *out = fb;
    return 0;
}

/* ---- provided buffers -------------------------------------------------------- */

struct fake_bufring *fake_bufring_find(struct fake_backend *fb, unsigned bgid)
{
    for (unsigned i = 0; i < FAKE_MAX_BUFRINGS; i++)
        if (fb->bufrings[i].live && fb->bufrings[i].bgid == bgid)
            return &fb->bufrings[i];
    return NULL;
}

uint16_t fake_bufring_tail(const struct fake_bufring *r)
{
    if (!r->live || !r->br)
        return 0; /* unregistered meanwhile: tests may still hold the pointer */
    /* The application publishes tail with a release store. */
    return __atomic_load_n(&r->br->tail, __ATOMIC_ACQUIRE);
}

unsigned fake_bufring_available(const struct fake_bufring *r)
{
    return (uint16_t)(fake_bufring_tail(r) - r->head);
}

int fake_recv_into(struct fake_backend *fb, uint64_t user_data, const void *data, uint32_t len,
                   bool more)
{
    ptrdiff_t pi = pending_index(fb, user_data);
    if (pi < 0)
        return -ENOENT;
    const struct io_uring_sqe *sqe = &fb->pending[pi].sqe;
    if (!(sqe->flags & IOSQE_BUFFER_SELECT))
        return -EINVAL;
    struct fake_bufring *r = fake_bufring_find(fb, sqe->buf_group);
    if (!r || fake_bufring_available(r) == 0) {
        fake_post_cqe(fb, user_data, -ENOBUFS, 0);
        pending_remove_at(fb, (size_t)pi);
        return -ENOBUFS;
    }
    const struct io_uring_buf *buf = &r->br->bufs[r->head & (r->entries - 1)];
    r->head++;
    if (buf->addr == 0 || buf->len == 0) {
        fb->rec->bad_buf_recycles++;
        return -EINVAL;
    }
    uint32_t n = len < buf->len ? len : buf->len;
    memcpy((void *)(uintptr_t)buf->addr, data, n);
    uint32_t flags = IORING_CQE_F_BUFFER | ((uint32_t)buf->bid << IORING_CQE_BUFFER_SHIFT);
    if (more)
        flags |= IORING_CQE_F_MORE;
    fake_post_cqe(fb, user_data, (int32_t)n, flags);
    if (!more)
        pending_remove_at(fb, (size_t)pi);
    return buf->bid;
}

/* ---- introspection ----------------------------------------------------------- */

unsigned fake_sq_published(const struct fake_backend *fb)
{
    return fb->sq_tail - fb->sq_head;
}

unsigned fake_sq_unpublished(const struct fake_backend *fb)
{
    return fb->sqe_tail - fb->sq_tail;
}

unsigned fake_cq_ready(const struct fake_backend *fb)
{
    return cq_ready(fb);
}

size_t fake_cq_backlog(const struct fake_backend *fb)
{
    return fb->backlog_len;
}
