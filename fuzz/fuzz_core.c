/*
 * fuzz_core: the ringio core against the scriptable fake backend
 * (tests/c/fake_backend.c), driven by a program decoded from the input.
 *
 * The input is a 2-byte header (SQ/CQ sizes, cancel policy, submit mode) and
 * then a sequence of actions, one opcode byte each followed by its operand
 * bytes (fuzz/README.md has the table; fuzz/make_seeds.py writes programs).
 * Running out of bytes ends the program; the core is then closed with a zero
 * timeout and freed.
 *
 * Actions: every ringio_submit_*; mode changes; ringio_core_submit, wake,
 * wait, reap (with a deliver callback that refuses on request); "kernel"
 * actions on the fake (complete a pending SQE with legitimate or arbitrary
 * res/flags, multishot-recv legs into the provided buffers, zero-copy op CQEs
 * and notifications in either order, raw CQEs with live/stale/reserved/garbage
 * user_data, duplicates, bursts that overflow the CQ); backend knobs
 * (refuse_consume, enter_busy_count, busy_on_backlog, cancel policy, buffer
 * ring registration failure, -EINTR or -EIO from enter, auto NOP); bad arguments;
 * closing early.
 *
 * The oracle is a reference model of the core's completion normalisation
 * (written from core.h and docs/architecture.md).  The backend is wrapped so
 * that every CQE the core drains (advance()) is copied into the model's FIFO
 * in order; each delivered event must be exactly the one the model predicts
 * for the next CQE, and each owner release must be explained by a CQE the
 * model processed (or happen inside close).  On top of that (all checked with
 * __builtin_trap via CHECK):
 *  - every owner is released exactly once (the owner record is heap memory
 *    freed in release, so a second release or a later touch is an ASan
 *    use-after-free); no event after release; a final event is followed by
 *    the release before the reap returns; failed submits release nothing;
 *  - multishot: sequence from first_sequence, +1 per consumed leg, more ==
 *    !final; provided-buffer data only for in-range F_BUFFER legs, pointing
 *    at that buffer, data_len == res <= buf_size, readable (memcpy), and for
 *    legs written by the fake the bytes written (a buffer recycled before its
 *    event was consumed would show other bytes);
 *  - stats (inflight, delivered, completed, stale_cqes, submitted) match;
 *  - every SQE the core prepares equals the SQE liburing would prepare for
 *    the same call, checked in the SQ right after submit and again in the
 *    fake's log (user_data = token, consumed once, in submission order);
 *  - backpressure: -EBUSY only with a full SQ, STRICT never enters, NOW leaves
 *    nothing staged;
 *  - a reap that returns fewer than max events left nothing in the CQ, the
 *    overflow backlog or its FIFO;
 *  - close releases everything, returns the number of forced releases, and
 *    in a clean run forces exactly the operations the fake cannot cancel;
 *    descriptors from accept/socket completions are closed by the core iff
 *    nobody saw them, never when delivered;
 *  - the fake's own bookkeeping: no leaked or bad buffer-ring registration,
 *    no advance() past the CQ, no bad recycled buffer, nothing unpublished.
 */
#include "fake_backend.h"
#include "harness_common.h"
#include "ringio/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef RINGIO_FUZZ_REPLAY
#define FUZZ_ENTRY ringio_fuzz_core_one
#else
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif
int FUZZ_ENTRY(const uint8_t *data, size_t size);

/* core/internal.h: user_data of the core's own close-time cancels. */
#define TOKEN_INTERNAL (UINT64_MAX - 1)

#define MAX_SLOTS 512  /* successful submissions per input */
#define MAX_FDS 24     /* real descriptors handed out as accept/socket results */
#define MAX_BUFS 32    /* largest buf_count the harness asks for */
#define MAX_BUFSZ 256  /* largest buf_size the harness asks for */
#define FAKE_FD0 900   /* ops get fds 900..907: not real, the core passes them through */

/* ---- actions --------------------------------------------------------------- */

enum action {
    A_NOP, A_TIMEOUT, A_CANCEL, A_POLL, A_RECV, A_RECV_MS, A_SEND, A_SEND_ZC,
    A_RECVMSG, A_SENDMSG, A_SENDMSG_ZC, A_ACCEPT, A_ACCEPT_MS, A_CONNECT, A_SHUTDOWN,
    A_CLOSE, A_SOCKET, A_MODE, A_SUBMIT, A_WAKE, A_REAP, A_KCOMPLETE, A_KRECV, A_KZC,
    A_RAW, A_DUP, A_KNOB, A_BURST, A_WAIT, A_WAITER, A_MISC, A_KFLUSH, A_BADARGS,
    A_CLOSE_EARLY, A_COUNT
};

static const char *const action_names[A_COUNT] = {
    "nop", "timeout", "cancel", "poll", "recv", "recv_multishot", "send", "send_zc",
    "recvmsg", "sendmsg", "sendmsg_zc", "accept", "accept_multishot", "connect", "shutdown",
    "close", "socket", "mode", "submit", "wake", "reap", "k_complete", "k_recv", "k_zc",
    "raw_cqe", "dup_cqe", "knob", "burst", "wait", "waiter", "misc", "k_flush", "bad_args",
    "close_early",
};

/* ---- harness state ----------------------------------------------------------- */

#define HO_MAGIC 0x4f574e52u

/* The owner record: heap memory, freed in release.  It also holds everything
 * the "kernel" may touch, as the extension's Completion object does. */
struct howner {
    struct ringio_owner base; /* first, as core.h asks */
    uint32_t magic;
    uint32_t slot;
    unsigned char buf[64];
    struct iovec iov;
    struct msghdr msg;
    struct sockaddr_in addr;
    socklen_t addrlen;
    struct __kernel_timespec ts;
};

/* The model's copy of the core's per-operation normalisation state. */
struct mstate {
    bool zc, zc_report, multishot;
    bool op_cqe_seen, notif_seen, held;
    bool dead; /* the model has processed the CQE that releases it */
    int8_t zc_copied;
    int32_t held_res;
    uint32_t held_flags;
    uint32_t seq;
};

struct bidrec {
    bool valid;       /* written by the fake, event not consumed yet */
    uint32_t serial;  /* pattern seed */
    uint32_t n;       /* bytes written */
};

struct slot {
    struct howner *ho; /* NULL once released */
    uint64_t token;
    uint8_t opcode;
    unsigned order; /* submission order */
    bool released;
    bool release_due; /* the model says the core releases it now */
    bool tainted;     /* got a CQE no kernel would post: relax content checks */
    bool sqe_logged;
    bool internal_cancel;
    struct mstate m;
    struct io_uring_sqe sqe; /* what liburing would have prepared */
    /* multishot recv */
    unsigned buf_size, buf_count;
    uint16_t bgid;
    uintptr_t bid_addr[MAX_BUFS];
    struct bidrec bid[MAX_BUFS];
    /* zero-copy kernel model */
    bool k_op_posted, k_op_more, k_notif_posted;
};

enum fd_state { FD_POSTED = 1, FD_DELIVERED, FD_CORE_CLOSES, FD_STALE };

struct hfd {
    int fd;
    uint8_t state;
    uint64_t ud; /* the CQE it was posted in */
};

static struct {
    struct fuzz_run run; /* input, step, action, trace */

    struct fake_record rec;
    struct fake_backend *fb; /* NULL once the core destroyed it */
    struct ringio_core *c;
    struct ringio_backend_ops wops;
    const struct ringio_backend_ops *fops;
    struct io_uring_cqe *peeked[256];
    unsigned npeeked;
    unsigned eintr_count;
    unsigned eio_count; /* enter() fails hard (-EIO) this many times */
    bool destroyed;
    bool closing; /* inside ringio_core_close */
    bool closed;
    enum ringio_submit_mode mode;
    unsigned waiters;
    bool waiter_held; /* A_WAITER's registration */

    struct slot *slots;
    unsigned nslots;
    unsigned live;   /* owners not released */
    unsigned forced; /* releases in close without a final CQE */

    struct hfd fds[MAX_FDS];
    unsigned nfds;

    /* The model's FIFO: CQEs drained by the core, not yet processed. */
    struct io_uring_cqe *mq;
    size_t mq_head, mq_len, mq_cap;

    uint64_t drained, delivered, stale;
    size_t log_seen;
    unsigned last_order;
    unsigned wakes, wakes_logged;
    bool run_tainted;
    uint32_t serial;

    /* the reap in progress */
    bool in_reap, in_callback;
    unsigned reap_calls, reap_accepted;
    int refuse_at;
    bool refuse_wakes;
    int refuse_val;
    bool refused;

    struct {
        bool valid;
        uint64_t ud;
        int32_t res;
        uint32_t flags;
    } last_post;

    unsigned char scratch[MAX_BUFSZ * 2];
} H;

/* ---- failure reporting and input ------------------------------------------------ */

#define FUZZ_RUN (H.run) /* for CHECK, CHECKF, TRACE (harness_common.h) */

static uint8_t u8(void)
{
    return fuzz_u8(&H.run);
}

static int pick_fd(uint8_t b)
{
    return b == 0xff ? -1 : FAKE_FD0 + (b & 7);
}

static uint32_t pick_seq(uint8_t b)
{
    /* small values, and values that wrap around UINT32_MAX */
    return b < 0xc0 ? b : UINT32_MAX - (uint32_t)(0xff - b);
}

static int32_t pick_res(uint8_t b)
{
    static const int32_t table[16] = {
        0, 1, 7, 64, 4096, INT32_MAX, -EAGAIN, -ECANCELED,
        -ENOBUFS, -ECONNRESET, -EINVAL, -ETIME, -EPIPE, INT32_MIN, 3, 128,
    };
    if (b < 16)
        return table[b];
    return (int32_t)(int8_t)b * 3;
}

/* CQE flag bits from the low nibble of b, bid from the next byte. */
static uint32_t pick_raw_flags(uint8_t b)
{
    uint32_t f = 0;
    if (b & 1)
        f |= IORING_CQE_F_BUFFER;
    if (b & 2)
        f |= IORING_CQE_F_MORE;
    if (b & 4)
        f |= IORING_CQE_F_SOCK_NONEMPTY;
    if (b & 8)
        f |= IORING_CQE_F_NOTIF;
    if (b & 16)
        f |= (uint32_t)(b >> 5) << 4; /* unknown bits: kept raw */
    uint8_t bid = u8();
    return f | ((uint32_t)bid << IORING_CQE_BUFFER_SHIFT);
}

/* ---- slots and model ----------------------------------------------------------- */

static struct slot *slot_by_token(uint64_t token)
{
    for (unsigned i = 0; i < H.nslots; i++)
        if (H.slots[i].token == token)
            return &H.slots[i];
    return NULL;
}

/* The slot the core should find for this user_data (op_lookup). */
static int model_live(uint64_t ud)
{
    for (unsigned i = 0; i < H.nslots; i++)
        if (H.slots[i].token == ud && !H.slots[i].m.dead)
            return (int)i;
    return -1;
}

static bool is_fd_op(uint8_t opcode)
{
    return opcode == IORING_OP_ACCEPT || opcode == IORING_OP_SOCKET;
}

static void mq_push(const struct io_uring_cqe *cqe)
{
    if (H.mq_head + H.mq_len == H.mq_cap) {
        if (H.mq_head > 0) {
            memmove(H.mq, H.mq + H.mq_head, H.mq_len * sizeof(*H.mq));
            H.mq_head = 0;
        }
        if (H.mq_len == H.mq_cap) {
            H.mq_cap = H.mq_cap ? H.mq_cap * 2 : 256;
            H.mq = realloc(H.mq, H.mq_cap * sizeof(*H.mq));
            if (!H.mq)
                abort();
        }
    }
    H.mq[H.mq_head + H.mq_len] = *cqe;
    H.mq_len++;
}

static const struct io_uring_cqe *mq_peek(void)
{
    return H.mq_len ? &H.mq[H.mq_head] : NULL;
}

static void mq_pop(void)
{
    H.mq_head++;
    H.mq_len--;
    if (H.mq_len == 0)
        H.mq_head = 0;
}

struct outcome {
    bool event;   /* the core hands an event to the deliver callback */
    bool release; /* ... and releases the owner once it is consumed (or silently) */
    bool stale, internal;
    bool data_expected;
    unsigned bid;
    bool has_buf;
    int slot;
    struct ringio_event ev;
    struct mstate after; /* the slot's state once the CQE is consumed */
};

/* What the core does with this CQE, from the documented semantics. */
static void model_eval(const struct io_uring_cqe *cqe, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->slot = -1;
    struct ringio_event *ev = &o->ev;
    ev->token = cqe->user_data;
    ev->res = cqe->res;
    ev->flags = cqe->flags;
    ev->zc_copied = -1;
    if (cqe->user_data == RINGIO_TOKEN_WAKE) {
        o->event = true;
        ev->wake = true;
        ev->final = true;
        ev->opcode = IORING_OP_NOP;
        return;
    }
    if (cqe->user_data == TOKEN_INTERNAL) {
        o->internal = true;
        return;
    }
    int si = model_live(cqe->user_data);
    if (si < 0) {
        o->stale = true;
        return;
    }
    struct slot *s = &H.slots[si];
    struct mstate m = s->m;
    o->slot = si;
    ev->owner = s->ho ? &s->ho->base : NULL;
    ev->opcode = s->opcode;
    if (m.zc) {
        /* Zero-copy: the op CQE is the event; F_NOTIF only ends ownership.
         * With REPORT_USAGE the op CQE waits for the notification. */
        if (cqe->flags & IORING_CQE_F_NOTIF) {
            m.notif_seen = true;
            if (m.zc_report)
                m.zc_copied = (cqe->res & (int32_t)IORING_NOTIF_USAGE_ZC_COPIED) ? 1 : 0;
            if (m.held) {
                o->event = true;
                ev->res = m.held_res;
                ev->flags = m.held_flags;
                ev->final = true;
                ev->zc_copied = m.zc_copied;
                o->release = true;
            } else if (m.op_cqe_seen) {
                o->release = true;
            }
        } else {
            bool notif_follows = (cqe->flags & IORING_CQE_F_MORE) && !m.notif_seen;
            if (notif_follows && m.zc_report) {
                m.held = true;
                m.held_res = cqe->res;
                m.held_flags = cqe->flags;
            } else {
                o->event = true;
                ev->final = !notif_follows;
                ev->zc_copied = m.zc_copied;
                m.op_cqe_seen = true;
                o->release = ev->final;
            }
        }
    } else if (m.multishot) {
        bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
        o->event = true;
        ev->sequence = m.seq;
        ev->more = more;
        ev->final = !more;
        if (s->buf_count) {
            unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
            if ((cqe->flags & IORING_CQE_F_BUFFER) && bid < s->buf_count) {
                o->has_buf = true;
                o->bid = bid;
                if (cqe->res > 0 && (uint32_t)cqe->res <= s->buf_size) {
                    o->data_expected = true;
                    ev->data = (const void *)s->bid_addr[bid];
                    ev->data_len = (uint32_t)cqe->res;
                }
            }
        }
        m.seq++;
        o->release = !more;
    } else {
        o->event = true;
        ev->final = true;
        o->release = true;
    }
    if (o->release)
        m.dead = true;
    o->after = m;
}

static struct hfd *fd_find(int fd, uint64_t ud)
{
    for (unsigned i = 0; i < H.nfds; i++)
        if (H.fds[i].fd == fd && H.fds[i].ud == ud && H.fds[i].state == FD_POSTED)
            return &H.fds[i];
    return NULL;
}

/* The core has processed this CQE (the event, if any, was consumed: by the
 * harness's callback, or by the core's discard at close). */
static void model_commit(const struct io_uring_cqe *cqe, const struct outcome *o, bool discard)
{
    if (o->stale) {
        H.stale++;
        struct hfd *f = cqe->res >= 0 ? fd_find(cqe->res, cqe->user_data) : NULL;
        if (f)
            f->state = FD_STALE;
        return;
    }
    if (o->internal)
        return;
    if (o->event)
        H.delivered++;
    if (o->slot < 0)
        return;
    struct slot *s = &H.slots[o->slot];
    s->m = o->after;
    if (o->release)
        s->release_due = true;
    if (o->event && is_fd_op(s->opcode) && o->ev.res >= 0) {
        struct hfd *f = fd_find(o->ev.res, cqe->user_data);
        CHECKF(f != NULL, "event res %d of an accept/socket op is no fd the harness posted",
               o->ev.res);
        f->state = discard ? FD_CORE_CLOSES : FD_DELIVERED;
    }
    if (o->has_buf)
        s->bid[o->bid].valid = false; /* consumed: the core recycles it */
}

/* Process CQEs at the model's head that produce no event (or any, in close). */
static void model_advance(bool all, struct slot *until)
{
    while (H.mq_len > 0 && !(until && until->release_due)) {
        struct outcome oc;
        model_eval(mq_peek(), &oc);
        if (oc.event && !all)
            return;
        model_commit(mq_peek(), &oc, all);
        mq_pop();
    }
}

/* ---- owner release ----------------------------------------------------------------- */

static void on_release(struct ringio_owner *o)
{
    CHECKF(o != NULL, "release(NULL)");
    struct howner *ho = (struct howner *)o;
    CHECKF(ho->magic == HO_MAGIC, "release of a record that is no live owner");
    CHECK(ho->slot < H.nslots);
    struct slot *s = &H.slots[ho->slot];
    CHECKF(s->ho == ho && !s->released, "owner released twice (token %#llx)",
           (unsigned long long)s->token);
    CHECKF(!H.in_callback, "owner released while its event is still being delivered");
    /* The core may have processed CQEs that produce no event (a notification,
     * say) that the model has not looked at yet. */
    if (!s->release_due)
        model_advance(H.closing, s);
    if (!s->release_due) {
        CHECKF(H.closing,
               "owner released without a final CQE (token %#llx opcode %u): not in close",
               (unsigned long long)s->token, s->opcode);
        H.forced++;
    }
    s->release_due = false;
    s->released = true;
    s->m.dead = true;
    ho->magic = 0;
    free(ho);
    s->ho = NULL;
    CHECK(H.live > 0);
    H.live--;
}

/* ---- the deliver callback ---------------------------------------------------------------- */

static void check_event(const struct ringio_event *ev, const struct outcome *oc)
{
    const struct ringio_event *x = &oc->ev;
    CHECKF(ev->wake == x->wake && ev->token == x->token && ev->owner == x->owner,
           "event for token %#llx (owner %p wake %d), model expects token %#llx (owner %p "
           "wake %d)",
           (unsigned long long)ev->token, (void *)ev->owner, ev->wake,
           (unsigned long long)x->token, (void *)x->owner, x->wake);
    CHECKF(x->wake || x->owner != NULL, "event for an owner already released");
    CHECKF(ev->res == x->res && ev->flags == x->flags,
           "token %#llx: res %d flags %#x, expected res %d flags %#x",
           (unsigned long long)ev->token, ev->res, ev->flags, x->res, x->flags);
    CHECKF(ev->opcode == x->opcode, "opcode %u, expected %u", ev->opcode, x->opcode);
    CHECKF(ev->sequence == x->sequence, "token %#llx: sequence %u, expected %u",
           (unsigned long long)ev->token, ev->sequence, x->sequence);
    CHECKF(ev->more == x->more && ev->final == x->final,
           "token %#llx: more %d final %d, expected more %d final %d",
           (unsigned long long)ev->token, ev->more, ev->final, x->more, x->final);
    CHECKF(!(ev->final && ev->more), "an event both final and more");
    CHECKF(ev->zc_copied == x->zc_copied, "zc_copied %d, expected %d", ev->zc_copied,
           x->zc_copied);
    CHECKF((ev->data != NULL) == oc->data_expected,
           "token %#llx flags %#x res %d: data %p, expected %s", (unsigned long long)ev->token,
           ev->flags, ev->res, ev->data, oc->data_expected ? "data" : "none");
    CHECKF(ev->data_len == x->data_len, "data_len %u, expected %u", ev->data_len, x->data_len);
    if (ev->data) {
        const struct slot *s = &H.slots[oc->slot];
        CHECKF(ev->data == x->data, "data %p is not buffer %u (%p)", ev->data, oc->bid, x->data);
        CHECK(ev->data_len <= s->buf_size && ev->data_len <= sizeof(H.scratch));
        memcpy(H.scratch, ev->data, ev->data_len); /* ASan: readable */
        const struct bidrec *b = &s->bid[oc->bid];
        if (!s->tainted) {
            /* Only the fake wrote into this slot's buffers: the bytes must be
             * the ones it wrote for this leg. */
            CHECKF(b->valid, "leg shows buffer %u, which the kernel never filled", oc->bid);
            CHECK(b->n == ev->data_len);
            for (uint32_t i = 0; i < b->n; i++)
                CHECKF(H.scratch[i] == fuzz_pat(b->serial, i),
                       "buffer %u byte %u changed before its event was consumed", oc->bid, i);
        }
    }
}

static int on_deliver(void *ctx, const struct ringio_event *ev)
{
    CHECK(ctx == &H);
    CHECKF(H.in_reap && !H.closing, "deliver callback outside ringio_core_reap");
    CHECK(ev != NULL);
    H.reap_calls++;
    struct outcome oc;
    for (;;) {
        CHECKF(H.mq_len > 0, "event (token %#llx) delivered, but every drained CQE is processed",
               (unsigned long long)ev->token);
        model_eval(mq_peek(), &oc);
        if (oc.event)
            break;
        model_commit(mq_peek(), &oc, false);
        mq_pop();
    }
    H.in_callback = true;
    check_event(ev, &oc);
    H.in_callback = false;
    TRACE("    event token=%#llx res=%d flags=%#x seq=%u more=%d final=%d zc=%d data=%u%s\n",
          (unsigned long long)ev->token, ev->res, ev->flags, ev->sequence, ev->more, ev->final,
          ev->zc_copied, ev->data_len, ev->wake ? " wake" : "");
    if ((int)(H.reap_calls - 1) == H.refuse_at || (H.refuse_wakes && ev->wake)) {
        H.refused = true;
        TRACE("    refused -> %d\n", H.refuse_val);
        return H.refuse_val;
    }
    model_commit(mq_peek(), &oc, false);
    mq_pop();
    H.reap_accepted++;
    return 0;
}

/* ---- backend wrapper -------------------------------------------------------------------- */

static unsigned w_peek(struct ringio_backend *b, struct io_uring_cqe **cqes, unsigned max)
{
    CHECK(max <= 256);
    unsigned n = H.fops->peek_cqes(b, cqes, max);
    CHECK(n <= max);
    for (unsigned i = 0; i < n; i++)
        H.peeked[i] = cqes[i];
    H.npeeked = n;
    return n;
}

static void w_advance(struct ringio_backend *b, unsigned n)
{
    CHECKF(n <= H.npeeked, "advance(%u) after peeking %u", n, H.npeeked);
    for (unsigned i = 0; i < n; i++)
        mq_push(H.peeked[i]);
    H.drained += n;
    H.npeeked = 0;
    H.fops->advance(b, n);
}

static int w_enter(struct ringio_backend *b, unsigned to_submit, unsigned min_complete,
                   int64_t timeout_ns, unsigned flags)
{
    if (H.eintr_count > 0) {
        H.eintr_count--;
        return -EINTR;
    }
    if (H.eio_count > 0) {
        H.eio_count--;
        return -EIO;
    }
    return H.fops->enter(b, to_submit, min_complete, timeout_ns, flags);
}

static struct io_uring_sqe *w_get_sqe(struct ringio_backend *b)
{
    return H.fops->get_sqe(b);
}
static unsigned w_space(struct ringio_backend *b)
{
    return H.fops->sq_space_left(b);
}
static unsigned w_flush(struct ringio_backend *b)
{
    return H.fops->flush(b);
}
static bool w_overflow(struct ringio_backend *b)
{
    return H.fops->cq_overflow_pending(b);
}
static int w_reg(struct ringio_backend *b, unsigned entries, unsigned bgid,
                 struct io_uring_buf_ring **out)
{
    return H.fops->register_buf_ring(b, entries, bgid, out);
}
static int w_unreg(struct ringio_backend *b, struct io_uring_buf_ring *br, unsigned entries,
                   unsigned bgid)
{
    int rc = H.fops->unregister_buf_ring(b, br, entries, bgid);
    CHECKF(rc == 0, "unregister_buf_ring(bgid %u, %u entries) failed: %d", bgid, entries, rc);
    return rc;
}
static int w_probe(struct ringio_backend *b, uint8_t *supported, unsigned n)
{
    return H.fops->probe_opcodes(b, supported, n);
}
static void w_destroy(struct ringio_backend *b)
{
    CHECKF(!H.destroyed, "backend destroyed twice");
    CHECKF(H.closing, "backend destroyed outside close");
    H.destroyed = true;
    H.fops->destroy(b);
    H.fb = NULL;
}

/* ---- the fake "kernel" ---------------------------------------------------------------- */

static ptrdiff_t kpending_index(uint64_t ud)
{
    for (size_t i = 0; i < H.fb->pending_len; i++)
        if (H.fb->pending[i].sqe.user_data == ud)
            return (ptrdiff_t)i;
    return -1;
}

/* fake_complete() keeps a F_MORE zero-copy CQE pending; the zc model here
 * decides itself when the kernel is done with an SQE. */
static void kpending_remove(uint64_t ud)
{
    ptrdiff_t i = kpending_index(ud);
    if (i < 0)
        return;
    struct fake_backend *fb = H.fb;
    memmove(&fb->pending[i], &fb->pending[i + 1],
            (fb->pending_len - (size_t)i - 1) * sizeof(*fb->pending));
    fb->pending_len--;
}

static void note_post(uint64_t ud, int32_t res, uint32_t flags)
{
    H.last_post.valid = true;
    H.last_post.ud = ud;
    H.last_post.res = res;
    H.last_post.flags = flags;
    TRACE("    post ud=%#llx res=%d flags=%#x\n", (unsigned long long)ud, res, flags);
}

/* A non-negative result for an accept/socket token must be a real fd the
 * harness made: the core closes such fds at close time. */
static int32_t fix_res(uint64_t ud, int32_t res)
{
    struct slot *s = slot_by_token(ud);
    if (!s || !is_fd_op(s->opcode) || res < 0)
        return res;
    if (H.nfds == MAX_FDS)
        return -EMFILE;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -EMFILE;
    H.fds[H.nfds].fd = fd;
    H.fds[H.nfds].state = FD_POSTED;
    H.fds[H.nfds].ud = ud;
    H.nfds++;
    return fd;
}

static void taint(uint64_t ud)
{
    struct slot *s = slot_by_token(ud);
    if (s && !s->released) {
        s->tainted = true;
        H.run_tainted = true;
    }
}

static bool is_zc_sqe(const struct io_uring_sqe *sqe)
{
    return sqe->opcode == IORING_OP_SEND_ZC || sqe->opcode == IORING_OP_SENDMSG_ZC;
}

static bool is_multishot_sqe(const struct io_uring_sqe *sqe)
{
    if (sqe->opcode == IORING_OP_POLL_ADD)
        return (sqe->len & IORING_POLL_ADD_MULTI) != 0;
    if (sqe->opcode == IORING_OP_ACCEPT)
        return (sqe->ioprio & IORING_ACCEPT_MULTISHOT) != 0;
    if (sqe->opcode == IORING_OP_RECV)
        return (sqe->ioprio & IORING_RECV_MULTISHOT) != 0;
    return false;
}

/* Zero-copy send as the kernel does it: an op CQE (F_MORE when a notification
 * follows) and a F_NOTIF notification, possibly notification first. */
static void kzc(uint64_t ud, uint8_t what, int32_t res)
{
    struct slot *s = slot_by_token(ud);
    if (!s || kpending_index(ud) < 0)
        return;
    int32_t nres = (what & 4) ? (int32_t)IORING_NOTIF_USAGE_ZC_COPIED : 0;
    if (!s->k_op_posted) {
        if ((what & 1) && !s->k_notif_posted) {
            fake_post_cqe(H.fb, ud, nres, IORING_CQE_F_NOTIF);
            note_post(ud, nres, IORING_CQE_F_NOTIF);
            s->k_notif_posted = true;
            return;
        }
        bool more = (what & 2) || s->k_notif_posted;
        uint32_t flags = more ? IORING_CQE_F_MORE : 0;
        fake_post_cqe(H.fb, ud, res, flags);
        note_post(ud, res, flags);
        s->k_op_posted = true;
        s->k_op_more = more;
        if (!more || s->k_notif_posted) {
            kpending_remove(ud);
        } else {
            ptrdiff_t i = kpending_index(ud);
            H.fb->pending[i].zc_op_done = true; /* only the notification is left */
        }
    } else if (s->k_op_more && !s->k_notif_posted) {
        fake_post_cqe(H.fb, ud, nres, IORING_CQE_F_NOTIF);
        note_post(ud, nres, IORING_CQE_F_NOTIF);
        s->k_notif_posted = true;
        kpending_remove(ud);
    }
}

/* Complete the pending SQE at index i the way a kernel could. */
static void kcomplete_legit(size_t i, int32_t res, uint8_t fsel)
{
    struct io_uring_sqe sqe = H.fb->pending[i].sqe;
    uint64_t ud = sqe.user_data;
    if (is_zc_sqe(&sqe)) {
        kzc(ud, fsel, res);
        return;
    }
    uint32_t flags = 0;
    if (sqe.opcode == IORING_OP_RECV && (sqe.flags & IOSQE_BUFFER_SELECT)) {
        /* no-buffer termination (EOF or error); legs come from k_recv */
        if (res > 0)
            res = 0;
    } else if (is_multishot_sqe(&sqe)) {
        if (fsel & 1)
            flags = IORING_CQE_F_MORE;
        if (flags && res < 0)
            res = res == INT32_MIN ? 0 : -res; /* a live leg carries a result */
    } else if (fsel & 2) {
        flags = IORING_CQE_F_SOCK_NONEMPTY;
    }
    res = fix_res(ud, res);
    if ((flags & IORING_CQE_F_MORE) && res < 0)
        flags = 0; /* out of fds: terminate instead */
    fake_complete(H.fb, ud, res, flags);
    note_post(ud, res, flags);
}

/* ---- checks --------------------------------------------------------------------------- */

static void check_stats(void)
{
    struct ringio_stats st;
    ringio_core_stats(H.c, &st);
    CHECKF(st.inflight == H.live, "stats.inflight %u, harness counts %u unreleased", st.inflight,
           H.live);
    CHECK(ringio_core_inflight(H.c) == H.live);
    CHECKF(st.delivered == H.delivered, "stats.delivered %llu, model %llu",
           (unsigned long long)st.delivered, (unsigned long long)H.delivered);
    CHECKF(st.stale_cqes == H.stale, "stats.stale_cqes %llu, model %llu",
           (unsigned long long)st.stale_cqes, (unsigned long long)H.stale);
    CHECKF(st.completed == H.drained, "stats.completed %llu, drained %llu",
           (unsigned long long)st.completed, (unsigned long long)H.drained);
    CHECKF(st.submitted == H.rec.consumed, "stats.submitted %llu, backend consumed %u",
           (unsigned long long)st.submitted, H.rec.consumed);
    CHECK(ringio_core_closed(H.c) == H.closed);
}

static void check_sqe(const struct io_uring_sqe *got, const struct io_uring_sqe *want,
                      const char *where)
{
    if (memcmp(got, want, sizeof(*got)) == 0)
        return;
    const uint8_t *g = (const uint8_t *)got, *w = (const uint8_t *)want;
    unsigned off = 0;
    while (off < sizeof(*got) && g[off] == w[off])
        off++;
    fuzz_fail(&H.run, __LINE__, "SQE differs from the liburing encoding",
              "%s: opcode %u user_data %#llx: first differing byte at offset %u (got %#x, want "
              "%#x)",
              where, want->opcode, (unsigned long long)want->user_data, off, g[off], w[off]);
}

/* New entries of the fake's SQE log: each is a known SQE, consumed once, in order. */
static void check_log(void)
{
    for (; H.log_seen < H.rec.log_len; H.log_seen++) {
        const struct io_uring_sqe *sqe = &H.rec.log[H.log_seen];
        struct io_uring_sqe want;
        if (sqe->user_data == RINGIO_TOKEN_WAKE) {
            fuzz_expect_base(&want, IORING_OP_NOP);
            want.user_data = RINGIO_TOKEN_WAKE;
            check_sqe(sqe, &want, "consumed wake");
            H.wakes_logged++;
            CHECKF(H.wakes_logged <= H.wakes, "more wake SQEs consumed than wakes submitted");
            continue;
        }
        if (sqe->user_data == TOKEN_INTERNAL) {
            struct slot *s = slot_by_token(sqe->addr);
            CHECKF(s != NULL, "internal cancel of unknown token %#llx",
                   (unsigned long long)sqe->addr);
            CHECKF(!s->internal_cancel, "two close-time cancels for one token");
            s->internal_cancel = true;
            fuzz_expect_base(&want, IORING_OP_ASYNC_CANCEL);
            want.addr = s->token;
            want.user_data = TOKEN_INTERNAL;
            check_sqe(sqe, &want, "consumed internal cancel");
            continue;
        }
        struct slot *s = slot_by_token(sqe->user_data);
        CHECKF(s != NULL, "consumed SQE with unknown user_data %#llx (opcode %u)",
               (unsigned long long)sqe->user_data, sqe->opcode);
        CHECKF(!s->sqe_logged, "SQE of token %#llx consumed twice",
               (unsigned long long)s->token);
        CHECKF(s->order > H.last_order || H.last_order == 0,
               "SQEs consumed out of submission order");
        H.last_order = s->order;
        s->sqe_logged = true;
        check_sqe(sqe, &s->sqe, "consumed");
    }
}

/* ---- submissions --------------------------------------------------------------------------- */

struct pre {
    unsigned sqe_tail, enters, bufrings_live, space, consumed;
    bool knobs_clean;
};

static struct howner *owner_new(void)
{
    struct howner *ho = calloc(1, sizeof(*ho));
    if (!ho)
        abort();
    ho->base.release = on_release;
    ho->magic = HO_MAGIC;
    ho->slot = H.nslots;
    return ho;
}

static bool knobs_clean(void)
{
    return H.fb && !H.fb->refuse_consume && H.fb->enter_busy_count == 0 &&
           !H.fb->busy_on_backlog && H.eintr_count == 0 && H.eio_count == 0;
}

static void pre_submit(struct pre *p)
{
    memset(p, 0, sizeof(*p));
    if (H.fb) {
        p->sqe_tail = H.fb->sqe_tail;
        p->space = H.fb->base.sq_entries - (H.fb->sqe_tail - H.fb->sq_head);
    }
    p->enters = H.rec.enters;
    p->bufrings_live = H.rec.bufrings_live;
    p->consumed = H.rec.consumed;
    p->knobs_clean = knobs_clean();
}

static void verify_bufring(struct slot *s)
{
    struct fake_bufring *r = fake_bufring_find(H.fb, s->bgid);
    CHECKF(r != NULL, "no buffer ring registered for bgid %u", s->bgid);
    CHECK(r->entries == s->buf_count);
    CHECKF(fake_bufring_available(r) == s->buf_count, "a new ring offers %u of %u buffers",
           fake_bufring_available(r), s->buf_count);
    bool seen[MAX_BUFS] = {false};
    for (unsigned i = 0; i < s->buf_count; i++) {
        const struct io_uring_buf *b = &r->br->bufs[i];
        CHECK(b->bid < s->buf_count && !seen[b->bid]);
        seen[b->bid] = true;
        CHECK(b->len == s->buf_size && b->addr != 0);
        s->bid_addr[b->bid] = (uintptr_t)b->addr;
        memset((void *)(uintptr_t)b->addr, 0xCD, b->len); /* ASan: writable, big enough */
    }
    for (unsigned i = 0; i < s->buf_count; i++)
        for (unsigned j = 0; j < i; j++)
            CHECKF(s->bid_addr[i] + s->buf_size <= s->bid_addr[j] ||
                       s->bid_addr[j] + s->buf_size <= s->bid_addr[i],
                   "provided buffers %u and %u overlap", i, j);
    for (unsigned i = 0; i < H.nslots; i++) {
        struct slot *o = &H.slots[i];
        CHECKF(o == s || o->released || !o->buf_count || o->bgid != s->bgid,
               "bgid %u used by two live multishot receives", s->bgid);
    }
}

/* After a ringio_submit_* call: account for it and check what it did. */
static void post_submit(struct howner *ho, struct io_uring_sqe *want, int rc, uint64_t token,
                        const struct pre *p, unsigned buf_size, unsigned buf_count,
                        bool may_enomem)
{
    TRACE("    -> rc=%d token=%#llx\n", rc, (unsigned long long)token);
    if (rc < 0) {
        free(ho); /* still ours: the core must not have kept it */
        if (H.closed) {
            CHECKF(rc == -EBADF, "submit on a closed core returned %d", rc);
            return;
        }
        CHECKF(rc == -EBUSY || (may_enomem && (rc == -ENOMEM || rc == -ENOSPC)),
               "submit failed with %d", rc);
        CHECKF(H.fb->sqe_tail == p->sqe_tail, "a refused submit took an SQE");
        CHECKF(H.rec.bufrings_live == p->bufrings_live, "a refused submit left a buffer ring");
        if (rc == -EBUSY) {
            CHECKF(H.fb->base.sq_entries - (H.fb->sqe_tail - H.fb->sq_head) == 0,
                   "-EBUSY with room in the SQ");
            CHECKF(p->space == 0, "-EBUSY although the SQ had room");
            if (H.mode == RINGIO_SUBMIT_STRICT && H.waiters == 0)
                CHECKF(H.rec.enters == p->enters, "STRICT entered the kernel on a full SQ");
        }
        return;
    }
    CHECKF(rc == 0, "submit returned %d", rc);
    CHECKF(!H.closed, "submit succeeded on a closed core");
    CHECKF(H.nslots < MAX_SLOTS, "slot table full");
    CHECKF(token != 0 && token != RINGIO_TOKEN_WAKE && token != TOKEN_INTERNAL &&
               (token >> 32) != 0,
           "bad token %#llx", (unsigned long long)token);
    struct slot *dup = slot_by_token(token);
    CHECKF(dup == NULL, "token %#llx handed out twice", (unsigned long long)token);
    CHECKF(H.fb->sqe_tail == p->sqe_tail + 1, "a submit took %u SQEs",
           H.fb->sqe_tail - p->sqe_tail);
    if (p->space == 0 && H.mode == RINGIO_SUBMIT_STRICT && H.waiters == 0)
        fuzz_fail(&H.run, __LINE__, "STRICT accepted a submit on a full SQ", NULL);
    if (H.mode == RINGIO_SUBMIT_STRICT && H.waiters == 0)
        CHECKF(H.rec.enters == p->enters, "STRICT entered the kernel in a submit");
    if ((H.mode == RINGIO_SUBMIT_NOW || H.waiters > 0) && p->knobs_clean)
        CHECKF(fake_sq_published(H.fb) == 0 && fake_sq_unpublished(H.fb) == 0,
               "NOW (or a waiter) left %u published and %u unpublished SQEs",
               fake_sq_published(H.fb), fake_sq_unpublished(H.fb));

    struct slot *s = &H.slots[H.nslots];
    memset(s, 0, sizeof(*s));
    s->ho = ho;
    s->token = token;
    s->opcode = want->opcode;
    s->order = H.nslots + 1;
    s->m.zc_copied = -1;
    s->buf_size = buf_size;
    s->buf_count = buf_count;
    want->user_data = token;
    /* The SQE as the core wrote it, still in the SQ slot. */
    const struct io_uring_sqe *got = &H.fb->sqes[(H.fb->sqe_tail - 1) & H.fb->sq_mask];
    if (buf_count) {
        s->bgid = got->buf_group;
        want->buf_group = got->buf_group;
    }
    s->sqe = *want;
    H.nslots++;
    H.live++;
    check_sqe(got, want, "prepared");
    if (buf_count)
        verify_bufring(s);
}

static void set_model(struct slot *s, bool zc, bool report, bool multishot, uint32_t first_seq)
{
    s->m.zc = zc;
    s->m.zc_report = report;
    s->m.multishot = multishot;
    s->m.seq = first_seq;
}

static struct slot *last_slot_if(int rc)
{
    return rc == 0 ? &H.slots[H.nslots - 1] : NULL;
}

static void act_submit(int a)
{
    if (H.nslots >= MAX_SLOTS) {
        H.run.eof = true; /* plenty: end the program */
        return;
    }
    struct howner *ho = owner_new();
    struct io_uring_sqe want;
    uint64_t token = 0;
    struct pre p;
    int rc;
    unsigned bs = 0, bc = 0;
    bool zc = false, report = false, ms = false, may_enomem = false;
    uint32_t seq = 0;

    switch (a) {
    case A_NOP:
        fuzz_expect_base(&want, IORING_OP_NOP);
        pre_submit(&p);
        rc = ringio_submit_nop(H.c, &ho->base, &token);
        break;
    case A_TIMEOUT: {
        unsigned count = u8() & 3;
        static const unsigned tflags[4] = {0, IORING_TIMEOUT_ABS, IORING_TIMEOUT_BOOTTIME,
                                           IORING_TIMEOUT_ETIME_SUCCESS};
        unsigned fl = tflags[u8() & 3];
        ho->ts.tv_sec = 0;
        ho->ts.tv_nsec = 1000;
        fuzz_expect_base(&want, IORING_OP_TIMEOUT);
        want.addr = (uintptr_t)&ho->ts;
        want.len = 1;
        want.off = count;
        want.timeout_flags = fl;
        pre_submit(&p);
        rc = ringio_submit_timeout(H.c, &ho->base, &ho->ts, count, fl, &token);
        break;
    }
    case A_CANCEL: {
        uint8_t sel = u8(), arg = u8();
        static const unsigned cflags[4] = {0, IORING_ASYNC_CANCEL_ALL, IORING_ASYNC_CANCEL_ANY,
                                           IORING_ASYNC_CANCEL_FD};
        unsigned fl = cflags[u8() & 3];
        uint64_t target = ((uint64_t)arg << 8) | 7; /* gen 0: never valid */
        if (H.nslots && (sel & 3) < 2) {
            /* 0: a live operation (if any), 1: any earlier one (often stale) */
            unsigned n = 0;
            for (unsigned i = 0; i < H.nslots; i++)
                n += (sel & 3) == 1 || !H.slots[i].released;
            if (n) {
                unsigned k = arg % n;
                for (unsigned i = 0; i < H.nslots; i++) {
                    if ((sel & 3) == 0 && H.slots[i].released)
                        continue;
                    if (k-- == 0) {
                        target = H.slots[i].token;
                        break;
                    }
                }
            }
        } else if ((sel & 3) == 3) {
            target = RINGIO_TOKEN_WAKE;
        }
        fuzz_expect_base(&want, IORING_OP_ASYNC_CANCEL);
        want.addr = target;
        want.cancel_flags = fl;
        pre_submit(&p);
        rc = ringio_submit_cancel(H.c, &ho->base, target, fl, &token);
        break;
    }
    case A_POLL: {
        int fd = pick_fd(u8());
        static const unsigned masks[4] = {POLLIN, POLLOUT, POLLIN | POLLOUT | POLLERR, 0};
        unsigned mask = masks[u8() & 3];
        uint8_t m = u8();
        ms = m & 1;
        seq = pick_seq(u8());
        fuzz_expect_base(&want, IORING_OP_POLL_ADD);
        want.fd = fd;
        want.poll32_events = mask;
        if (ms)
            want.len = IORING_POLL_ADD_MULTI;
        pre_submit(&p);
        rc = ringio_submit_poll(H.c, &ho->base, fd, mask, ms, seq, &token);
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_RECV: {
        int fd = pick_fd(u8());
        size_t len = u8() % (sizeof(ho->buf) + 1);
        int fl = (u8() & 1) ? MSG_WAITALL : 0;
        fuzz_expect_base(&want, IORING_OP_RECV);
        want.fd = fd;
        want.addr = (uintptr_t)ho->buf;
        want.len = (uint32_t)len;
        want.msg_flags = (uint32_t)fl;
        pre_submit(&p);
        rc = ringio_submit_recv(H.c, &ho->base, fd, ho->buf, len, fl, &token);
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_RECV_MS: {
        int fd = pick_fd(u8());
        static const unsigned sizes[8] = {1, 2, 3, 8, 16, 64, 100, 256};
        static const unsigned counts[8] = {1, 2, 4, 8, 16, 32, 4, 1};
        bs = sizes[u8() & 7];
        bc = counts[u8() & 7];
        seq = pick_seq(u8());
        ms = true;
        may_enomem = true;
        fuzz_expect_base(&want, IORING_OP_RECV);
        want.fd = fd;
        want.ioprio = IORING_RECV_MULTISHOT;
        want.flags = IOSQE_BUFFER_SELECT;
        pre_submit(&p);
        rc = ringio_submit_recv_multishot(H.c, &ho->base, fd, bs, bc, 0, seq, &token);
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_SEND:
    case A_SEND_ZC: {
        int fd = pick_fd(u8());
        size_t len = u8() % (sizeof(ho->buf) + 1);
        uint8_t z = u8();
        int fl = (z & 8) ? MSG_NOSIGNAL : 0;
        unsigned zcf = 0;
        if (a == A_SEND_ZC) {
            zc = true;
            if (z & 1)
                zcf |= IORING_SEND_ZC_REPORT_USAGE;
            if (z & 2)
                zcf |= IORING_RECVSEND_POLL_FIRST;
            report = (zcf & IORING_SEND_ZC_REPORT_USAGE) != 0;
        }
        fuzz_expect_base(&want, zc ? IORING_OP_SEND_ZC : IORING_OP_SEND);
        want.fd = fd;
        want.addr = (uintptr_t)ho->buf;
        want.len = (uint32_t)len;
        want.msg_flags = (uint32_t)fl;
        want.ioprio = (uint16_t)zcf;
        pre_submit(&p);
        if (zc)
            rc = ringio_submit_send_zc(H.c, &ho->base, fd, ho->buf, len, fl, zcf, &token);
        else
            rc = ringio_submit_send(H.c, &ho->base, fd, ho->buf, len, fl, &token);
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_RECVMSG:
    case A_SENDMSG:
    case A_SENDMSG_ZC: {
        int fd = pick_fd(u8());
        uint8_t z = u8();
        unsigned zcf = 0;
        ho->iov.iov_base = ho->buf;
        ho->iov.iov_len = sizeof(ho->buf);
        ho->msg.msg_iov = &ho->iov;
        ho->msg.msg_iovlen = 1;
        uint8_t op = a == A_RECVMSG ? IORING_OP_RECVMSG
                     : a == A_SENDMSG ? IORING_OP_SENDMSG
                                      : IORING_OP_SENDMSG_ZC;
        if (a == A_SENDMSG_ZC) {
            zc = true;
            if (z & 1)
                zcf |= IORING_SEND_ZC_REPORT_USAGE;
            report = (z & 1) != 0;
        }
        fuzz_expect_base(&want, op);
        want.fd = fd;
        want.addr = (uintptr_t)&ho->msg;
        want.len = 1;
        want.ioprio = (uint16_t)zcf;
        pre_submit(&p);
        if (a == A_RECVMSG)
            rc = ringio_submit_recvmsg(H.c, &ho->base, fd, &ho->msg, 0, &token);
        else if (a == A_SENDMSG)
            rc = ringio_submit_sendmsg(H.c, &ho->base, fd, &ho->msg, 0, &token);
        else
            rc = ringio_submit_sendmsg_zc(H.c, &ho->base, fd, &ho->msg, 0, zcf, &token);
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_ACCEPT:
    case A_ACCEPT_MS: {
        int fd = pick_fd(u8());
        uint8_t w = u8();
        int fl = (w & 2) ? SOCK_CLOEXEC : 0;
        fuzz_expect_base(&want, IORING_OP_ACCEPT);
        want.fd = fd;
        want.accept_flags = (uint32_t)fl;
        if (a == A_ACCEPT_MS) {
            ms = true;
            seq = pick_seq(u8());
            want.ioprio = IORING_ACCEPT_MULTISHOT;
            pre_submit(&p);
            rc = ringio_submit_accept_multishot(H.c, &ho->base, fd, fl, seq, &token);
        } else if (w & 1) {
            ho->addrlen = sizeof(ho->addr);
            want.addr = (uintptr_t)&ho->addr;
            want.off = (uintptr_t)&ho->addrlen;
            pre_submit(&p);
            rc = ringio_submit_accept(H.c, &ho->base, fd, (struct sockaddr *)&ho->addr,
                                      &ho->addrlen, fl, &token);
        } else {
            pre_submit(&p);
            rc = ringio_submit_accept(H.c, &ho->base, fd, NULL, NULL, fl, &token);
        }
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_CONNECT: {
        int fd = pick_fd(u8());
        ho->addr.sin_family = AF_INET;
        ho->addr.sin_port = htons(9);
        ho->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fuzz_expect_base(&want, IORING_OP_CONNECT);
        want.fd = fd;
        want.addr = (uintptr_t)&ho->addr;
        want.off = sizeof(ho->addr);
        pre_submit(&p);
        rc = ringio_submit_connect(H.c, &ho->base, fd, (struct sockaddr *)&ho->addr,
                                   sizeof(ho->addr), &token);
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_SHUTDOWN: {
        int fd = pick_fd(u8());
        int how = u8() % 3;
        fuzz_expect_base(&want, IORING_OP_SHUTDOWN);
        want.fd = fd;
        want.len = (uint32_t)how;
        pre_submit(&p);
        rc = ringio_submit_shutdown(H.c, &ho->base, fd, how, &token);
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_CLOSE: {
        int fd = pick_fd(u8());
        fuzz_expect_base(&want, IORING_OP_CLOSE);
        want.fd = fd;
        pre_submit(&p);
        rc = ringio_submit_close(H.c, &ho->base, fd, &token);
        if (fd < 0) {
            CHECK(rc == -EBADF);
            free(ho);
            return;
        }
        break;
    }
    case A_SOCKET: {
        static const int domains[4] = {AF_INET, AF_INET6, AF_UNIX, AF_INET};
        uint8_t d = u8();
        int domain = domains[d & 3];
        int type = (d & 4) ? SOCK_DGRAM : SOCK_STREAM;
        fuzz_expect_base(&want, IORING_OP_SOCKET);
        want.fd = domain;
        want.off = (uint64_t)type;
        want.len = 0;
        pre_submit(&p);
        rc = ringio_submit_socket(H.c, &ho->base, domain, type, 0, &token);
        break;
    }
    default:
        abort();
    }
    TRACE("  submit %s\n", action_names[a]);
    post_submit(ho, &want, rc, token, &p, bs, bc, may_enomem);
    struct slot *s = last_slot_if(rc);
    if (s)
        set_model(s, zc, report, ms, seq);
}

/* ---- other actions ---------------------------------------------------------------------------- */

static void act_reap(void)
{
    static const unsigned maxes[8] = {0, 1, 2, 3, 4, 8, 64, UINT_MAX};
    uint8_t mb = u8(), rb = u8(), vb = u8();
    unsigned max = maxes[mb & 7];
    static const int vals[4] = {1, 42, -EINTR, -1};
    H.refuse_at = rb < 0xf0 ? (int)(rb & 15) : -1;
    if (rb & 0x10)
        H.refuse_at = -1;
    H.refuse_wakes = (vb & 4) != 0;
    H.refuse_val = vals[vb & 3];
    H.refused = false;
    H.reap_calls = H.reap_accepted = 0;
    /* with enter() refusing or failing, a drain may legitimately give up on the backlog */
    bool knobs0 = H.fb && H.fb->enter_busy_count == 0 && H.eio_count == 0;
    TRACE("  reap max=%u refuse_at=%d wakes=%d val=%d\n", max, H.refuse_at, H.refuse_wakes,
          H.refuse_val);
    H.in_reap = true;
    int r = ringio_core_reap(H.c, max, on_deliver, &H);
    H.in_reap = false;
    TRACE("    -> %d (accepted %u)\n", r, H.reap_accepted);
    if (H.closed) {
        CHECKF(r == -EBADF, "reap on a closed core returned %d", r);
        CHECK(H.reap_calls == 0);
        return;
    }
    if (H.refused) {
        CHECKF(r == H.refuse_val, "reap returned %d after the callback refused with %d", r,
               H.refuse_val);
    } else if (r == -EIO) {
        /* the drain failed (injected) with nothing queued: nothing delivered */
        CHECKF(H.reap_accepted == 0 && H.mq_len == 0,
               "reap failed with %d after consuming %u events, %zu CQEs queued", r,
               H.reap_accepted, H.mq_len);
    } else {
        CHECKF(r >= 0 && (unsigned)r == H.reap_accepted,
               "reap returned %d, the callback consumed %u", r, H.reap_accepted);
        CHECK((unsigned)r <= max);
        if ((unsigned)r < max) {
            /* Fewer than max: everything drained was processed, and nothing
             * that was left produces an event. */
            while (H.mq_len > 0) {
                struct outcome oc;
                model_eval(mq_peek(), &oc);
                CHECKF(!oc.event,
                       "reap returned %d < max %u but left an event (token %#llx) queued", r,
                       max, (unsigned long long)oc.ev.token);
                model_commit(mq_peek(), &oc, false);
                mq_pop();
            }
            if (knobs0 && H.fb)
                CHECKF(fake_cq_ready(H.fb) == 0 && fake_cq_backlog(H.fb) == 0,
                       "reap returned %d < max %u with %u CQEs in the ring and %zu in the "
                       "backlog",
                       r, max, fake_cq_ready(H.fb), fake_cq_backlog(H.fb));
        }
    }
    for (unsigned i = 0; i < H.nslots; i++)
        CHECKF(!H.slots[i].release_due,
               "token %#llx: final event consumed but owner not released by the reap",
               (unsigned long long)H.slots[i].token);
}

static void act_kcomplete(void)
{
    uint8_t pick = u8(), rs = u8(), fs = u8();
    if (!H.fb || H.fb->pending_len == 0)
        return;
    size_t i = pick % H.fb->pending_len;
    uint64_t ud = H.fb->pending[i].sqe.user_data;
    int32_t res = pick_res(rs);
    TRACE("  k_complete pending[%zu] ud=%#llx op=%u\n", i, (unsigned long long)ud,
          H.fb->pending[i].sqe.opcode);
    if (fs & 0x80) {
        /* anything at all: arbitrary flags, bids, results */
        uint32_t flags = pick_raw_flags(fs);
        res = fix_res(ud, res);
        taint(ud);
        fake_complete(H.fb, ud, res, flags);
        note_post(ud, res, flags);
        return;
    }
    kcomplete_legit(i, res, fs);
}

static void act_krecv(void)
{
    uint8_t pick = u8(), lb = u8(), mb = u8();
    if (!H.fb)
        return;
    size_t idx[64], n = 0;
    for (size_t i = 0; i < H.fb->pending_len && n < 64; i++)
        if (H.fb->pending[i].sqe.flags & IOSQE_BUFFER_SELECT)
            idx[n++] = i;
    if (n == 0)
        return;
    const struct io_uring_sqe *sqe = &H.fb->pending[idx[pick % n]].sqe;
    uint64_t ud = sqe->user_data;
    uint16_t bgid = sqe->buf_group;
    uint32_t len = lb;
    bool more = !(mb & 1);
    /* Which buffer will the fake take, and whose ring is it? */
    struct fake_bufring *r = fake_bufring_find(H.fb, bgid);
    struct slot *owner = NULL;
    for (unsigned i = 0; i < H.nslots; i++)
        if (!H.slots[i].released && H.slots[i].buf_count && H.slots[i].bgid == bgid)
            owner = &H.slots[i];
    uint32_t serial = ++H.serial;
    for (uint32_t i = 0; i < len && i < sizeof(H.scratch); i++)
        H.scratch[i] = fuzz_pat(serial, i);
    TRACE("  k_recv ud=%#llx len=%u more=%d\n", (unsigned long long)ud, len, more);
    int avail = r ? (int)fake_bufring_available(r) : 0;
    uint32_t elen = 0;
    if (avail > 0)
        elen = r->br->bufs[r->head & (r->entries - 1)].len;
    int bid = fake_recv_into(H.fb, ud, H.scratch, len, more);
    CHECKF(bid != -EINVAL, "the fake found a bad buffer in ring %u", bgid);
    if (bid >= 0) {
        CHECK(avail > 0);
        uint32_t got = len < elen ? len : elen;
        note_post(ud, (int32_t)got, IORING_CQE_F_BUFFER | ((uint32_t)bid << 16) |
                                        (more ? IORING_CQE_F_MORE : 0));
        if (owner && owner->token == ud) {
            CHECKF((unsigned)bid < owner->buf_count, "ring %u handed out bid %d", bgid, bid);
            struct bidrec *b = &owner->bid[bid];
            CHECKF(!b->valid || owner->tainted,
                   "the kernel took buffer %d again before its event was consumed", bid);
            b->valid = true;
            b->serial = serial;
            b->n = got;
        }
    } else {
        note_post(ud, -ENOBUFS, 0);
    }
}

static void act_kzc(void)
{
    uint8_t pick = u8(), what = u8(), rs = u8();
    if (!H.fb)
        return;
    size_t idx[64], n = 0;
    for (size_t i = 0; i < H.fb->pending_len && n < 64; i++)
        if (is_zc_sqe(&H.fb->pending[i].sqe))
            idx[n++] = i;
    if (n == 0)
        return;
    uint64_t ud = H.fb->pending[idx[pick % n]].sqe.user_data;
    TRACE("  k_zc ud=%#llx what=%#x\n", (unsigned long long)ud, what);
    kzc(ud, what, pick_res(rs));
}

static void act_raw(void)
{
    uint8_t sel = u8(), arg = u8(), rs = u8(), fs = u8();
    uint32_t flags = pick_raw_flags(fs);
    if (!H.fb)
        return;
    uint64_t ud;
    bool live_target = false;
    switch (sel % 6) {
    case 0:
    case 1: {
        /* 0: a live operation's token, 1: a released one's (stale) */
        unsigned n = 0;
        for (unsigned i = 0; i < H.nslots; i++)
            n += H.slots[i].released == (sel % 6 == 1);
        if (n == 0) {
            ud = (uint64_t)arg;
            break;
        }
        unsigned k = arg % n;
        ud = 0;
        for (unsigned i = 0; i < H.nslots; i++) {
            if (H.slots[i].released != (sel % 6 == 1))
                continue;
            if (k-- == 0) {
                ud = H.slots[i].token;
                break;
            }
        }
        live_target = sel % 6 == 0;
        break;
    }
    case 2:
        ud = RINGIO_TOKEN_WAKE;
        break;
    case 3:
        ud = TOKEN_INTERNAL;
        break;
    case 4:
        ud = (uint64_t)arg * 0x10001u; /* generation 0: never a token */
        break;
    default:
        ud = (1ull << 32) | (0x40000000u + arg); /* a slot index never allocated */
        break;
    }
    int32_t res = fix_res(ud, pick_res(rs));
    if (live_target)
        taint(ud);
    TRACE("  raw ud=%#llx res=%d flags=%#x\n", (unsigned long long)ud, res, flags);
    fake_post_cqe(H.fb, ud, res, flags);
    note_post(ud, res, flags);
}

static void act_dup(void)
{
    if (!H.fb || !H.last_post.valid)
        return;
    uint64_t ud = H.last_post.ud;
    int32_t res = H.last_post.res;
    struct slot *s = slot_by_token(ud);
    if (s && is_fd_op(s->opcode) && res >= 0)
        res = -EINVAL; /* never the same fd twice */
    taint(ud);
    TRACE("  dup ud=%#llx res=%d flags=%#x\n", (unsigned long long)ud, res, H.last_post.flags);
    fake_post_cqe(H.fb, ud, res, H.last_post.flags);
}

static void act_knob(void)
{
    uint8_t which = u8(), v = u8();
    if (!H.fb)
        return;
    TRACE("  knob %u = %u\n", which % 8, v);
    switch (which % 8) {
    case 0:
        H.fb->refuse_consume = v & 1;
        break;
    case 1:
        H.fb->enter_busy_count = v % 24;
        break;
    case 2:
        H.fb->busy_on_backlog = v & 1;
        break;
    case 3:
        H.fb->cancel_policy = (enum fake_cancel_policy)(v % 3);
        break;
    case 4:
        H.fb->register_error = (v & 1) ? -ENOMEM : 0;
        break;
    case 5:
        H.eintr_count = v % 4;
        break;
    case 7:
        H.eio_count = v % 4;
        break;
    default:
        H.fb->auto_nop = !(v & 1);
        break;
    }
}

static void act_kflush(void)
{
    uint8_t rs = u8();
    if (!H.fb)
        return;
    /* Complete every pending SQE once, as a kernel tearing down would. */
    size_t n = H.fb->pending_len;
    uint64_t *uds = malloc((n ? n : 1) * sizeof(*uds));
    if (!uds)
        abort();
    for (size_t i = 0; i < n; i++)
        uds[i] = H.fb->pending[i].sqe.user_data;
    TRACE("  k_flush %zu pending\n", n);
    for (size_t k = 0; k < n; k++) {
        ptrdiff_t i = kpending_index(uds[k]);
        if (i < 0)
            continue;
        kcomplete_legit((size_t)i, pick_res(rs), 2 /* op CQE without F_MORE, or the notif */);
    }
    free(uds);
}

static void act_burst(void)
{
    uint8_t nb = u8(), kind = u8();
    unsigned n = (nb & 63) + 1;
    TRACE("  burst %u kind %u\n", n, kind % 3);
    switch (kind % 3) {
    case 0:
        for (unsigned i = 0; i < n && H.nslots < MAX_SLOTS; i++) {
            struct howner *ho = owner_new();
            struct io_uring_sqe want;
            fuzz_expect_base(&want, IORING_OP_NOP);
            struct pre p;
            uint64_t token = 0;
            pre_submit(&p);
            int rc = ringio_submit_nop(H.c, &ho->base, &token);
            post_submit(ho, &want, rc, token, &p, 0, 0, false);
            if (rc < 0)
                break;
        }
        break;
    case 1:
        if (!H.fb)
            return;
        for (unsigned i = 0; i < n; i++) {
            uint64_t ud = ((uint64_t)i << 8) | 3; /* generation 0: stale */
            fake_post_cqe(H.fb, ud, (int32_t)i, 0);
        }
        break;
    default:
        if (!H.fb)
            return;
        for (unsigned i = 0; i < n && H.fb->pending_len > 0; i++)
            kcomplete_legit(0, 0, 0);
        break;
    }
}

static void act_wait(void)
{
    uint8_t mc = u8(), tb = u8();
    unsigned min_complete = mc % 3;
    int64_t timeout = (tb & 1) ? 0 : (tb & 2) ? -1 : 1000;
    TRACE("  wait min=%u timeout=%lld\n", min_complete, (long long)timeout);
    unsigned to_submit = ringio_core_wait_prepare(H.c);
    H.waiters++;
    if (H.closed)
        CHECK(to_submit == 0);
    int r = ringio_core_wait_block(H.c, to_submit, min_complete, timeout);
    ringio_core_wait_finish(H.c);
    H.waiters--;
    if (H.closed)
        CHECKF(r == -EBADF, "wait on a closed core returned %d", r);
    else
        CHECKF(r == 0 || r == -ETIME || r == -EINTR || r == -EIO, "wait_block returned %d", r);
}

static void act_waiter(void)
{
    if (!H.waiter_held) {
        (void)ringio_core_wait_prepare(H.c);
        H.waiter_held = true;
        H.waiters++;
    } else {
        ringio_core_wait_finish(H.c);
        H.waiter_held = false;
        H.waiters--;
    }
    TRACE("  waiter %s\n", H.waiter_held ? "registered" : "gone");
}

static void act_misc(void)
{
    uint8_t w = u8();
    switch (w % 5) {
    case 4:
        CHECK(ringio_core_backend(H.c) == (H.closed ? NULL : &H.fb->base));
        break;
    case 0: {
        bool r = ringio_core_ready(H.c);
        if (H.closed)
            CHECK(!r);
        else
            CHECKF(r == (H.mq_len > 0 || fake_cq_ready(H.fb) > 0 || fake_cq_backlog(H.fb) > 0),
                   "ready() says %d", r);
        break;
    }
    case 1: {
        unsigned n = ringio_core_staged(H.c);
        if (H.closed)
            CHECK(n == 0);
        else
            CHECKF(n == fake_sq_published(H.fb) && fake_sq_unpublished(H.fb) == 0,
                   "staged() says %u, the fake has %u published, %u unpublished", n,
                   fake_sq_published(H.fb), fake_sq_unpublished(H.fb));
        break;
    }
    case 2: {
        uint8_t sup[80];
        int r = ringio_core_probe_opcodes(H.c, sup, sizeof(sup));
        if (H.closed)
            CHECK(r == -EBADF);
        else
            CHECK(r == IORING_OP_LAST);
        break;
    }
    default: {
        enum ringio_submit_mode m = (enum ringio_submit_mode)(u8() % 3);
        enum ringio_submit_mode old = ringio_core_set_mode(H.c, m);
        CHECK(old == H.mode);
        H.mode = m;
        break;
    }
    }
}

static int bad_cb(void *ctx, const struct ringio_event *ev)
{
    (void)ctx;
    (void)ev;
    fuzz_fail(&H.run, __LINE__, "callback of a refused reap ran", NULL);
}

static void act_badargs(void)
{
    uint8_t w = u8();
    struct howner *ho = owner_new();
    uint64_t token = 0;
    struct pre p;
    pre_submit(&p);
    unsigned live0 = H.live;
    int rc, want = -EINVAL;
    struct __kernel_timespec ts = {0, 1000000000};
    switch (w % 16) {
    case 0:
        if (w & 16)
            rc = ringio_submit_recv_multishot(H.c, NULL, FAKE_FD0, 16, 4, 0, 0, &token);
        else
            rc = ringio_submit_nop(H.c, NULL, &token);
        break;
    case 1:
        rc = ringio_submit_nop(H.c, &ho->base, NULL);
        break;
    case 2:
        rc = ringio_submit_recv(H.c, &ho->base, -1, ho->buf, 4, 0, &token);
        want = -EBADF;
        break;
    case 3:
        rc = ringio_submit_recv_multishot(H.c, &ho->base, FAKE_FD0, 16, 3, 0, 0, &token);
        break;
    case 4:
        rc = ringio_submit_recv_multishot(H.c, &ho->base, FAKE_FD0, 0, 4, 0, 0, &token);
        break;
    case 5:
        rc = ringio_submit_recv_multishot(H.c, &ho->base, FAKE_FD0, 16, 65536, 0, 0, &token);
        break;
    case 6:
        rc = ringio_submit_recv_multishot(H.c, &ho->base, FAKE_FD0, 1u << 20, 2048, 0, 0,
                                          &token);
        break;
    case 7:
        rc = ringio_submit_send(H.c, &ho->base, FAKE_FD0, ho->buf, (size_t)UINT32_MAX + 1, 0,
                                &token);
        break;
    case 8:
        rc = ringio_submit_recv(H.c, &ho->base, FAKE_FD0, NULL, 5, 0, &token);
        break;
    case 9:
        rc = ringio_submit_timeout(H.c, &ho->base, (w & 16) ? NULL : &ts, 0, 0, &token);
        break;
    case 10:
        rc = ringio_submit_sendmsg(H.c, &ho->base, FAKE_FD0, NULL, 0, &token);
        break;
    case 11:
        rc = ringio_submit_accept(H.c, &ho->base, FAKE_FD0, (struct sockaddr *)&ho->addr, NULL,
                                  0, &token);
        break;
    case 12:
        rc = ringio_submit_connect(H.c, &ho->base, FAKE_FD0, NULL, 0, &token);
        break;
    case 13:
        rc = ringio_submit_shutdown(H.c, &ho->base, FAKE_FD0, -1, &token);
        break;
    case 14:
        rc = ringio_submit_socket(H.c, &ho->base, -1, SOCK_STREAM, 0, &token);
        break;
    default:
        if (w & 16) {
            rc = ringio_submit_send_zc(H.c, &ho->base, FAKE_FD0, ho->buf, 4, 0, 0x10000,
                                       &token);
        } else {
            rc = ringio_core_reap(H.c, 4, NULL, NULL);
            (void)bad_cb;
        }
        break;
    }
    TRACE("  bad_args %u -> %d\n", w % 16, rc);
    if (H.closed)
        CHECKF(rc < 0, "bad arguments accepted by a closed core");
    else
        CHECKF(rc == want, "bad arguments (case %u) returned %d, expected %d", w % 16, rc, want);
    CHECK(H.live == live0);
    if (H.fb) {
        CHECKF(H.fb->sqe_tail == p.sqe_tail, "a refused call took an SQE");
        CHECK(H.rec.bufrings_live == p.bufrings_live);
        CHECK(H.rec.enters == p.enters);
    }
    free(ho);
}

/* ---- close ------------------------------------------------------------------------------------- */

static void fds_settle(void)
{
    for (unsigned i = 0; i < H.nfds; i++) {
        struct hfd *f = &H.fds[i];
        if (f->fd < 0)
            continue;
        errno = 0;
        bool open_now = fcntl(f->fd, F_GETFD) != -1;
        switch (f->state) {
        case FD_CORE_CLOSES:
            CHECKF(!open_now && errno == EBADF,
                   "fd %d from a completion nobody saw was not closed by close", f->fd);
            break;
        case FD_DELIVERED:
            CHECKF(open_now, "fd %d delivered to the user was closed by the core", f->fd);
            close(f->fd);
            break;
        default: /* never drained, or stale: the core never saw it as a result */
            CHECKF(open_now, "fd %d the core never received was closed", f->fd);
            close(f->fd);
            break;
        }
        f->fd = -1;
    }
}

static void do_close(int64_t timeout)
{
    if (H.closed) {
        int r = ringio_core_close(H.c, timeout);
        CHECKF(r == 0, "second close returned %d", r);
        return;
    }
    /* A clean run (every CQE one a kernel could post, knobs quiet, cancels
     * answered): close forces exactly what the fake cannot cancel, i.e. a
     * zero-copy send waiting for its notification, and held cancels. */
    bool clean = !H.run_tainted && knobs_clean() && H.fb->cancel_policy == FAKE_CANCEL_ANSWER;
    unsigned expect_forced = 0;
    for (unsigned i = 0; clean && i < H.nslots; i++) {
        struct slot *s = &H.slots[i];
        if (s->released)
            continue;
        ptrdiff_t k = kpending_index(s->token);
        if (k >= 0 && (H.fb->pending[k].zc_op_done ||
                       H.fb->pending[k].sqe.opcode == IORING_OP_ASYNC_CANCEL))
            expect_forced++;
    }
    unsigned live0 = H.live;
    TRACE("  close timeout=%lld live=%u clean=%d expect_forced=%u\n", (long long)timeout, live0,
          clean, expect_forced);
    H.forced = 0;
    H.closing = true;
    int r = ringio_core_close(H.c, timeout);
    H.closing = false;
    H.closed = true;
    TRACE("    -> forced %d\n", r);
    CHECKF(H.destroyed && H.rec.destroys == 1, "close did not destroy the backend once");
    if (live0 > 0)
        model_advance(true, NULL); /* close reaped everything that was drained */
    while (H.mq_len > 0) {
        /* Nothing was live: close dropped these without looking. */
        struct outcome oc;
        model_eval(mq_peek(), &oc);
        CHECK(oc.slot < 0 || !is_fd_op(H.slots[oc.slot].opcode) || oc.ev.res < 0);
        mq_pop();
    }
    CHECKF(H.live == 0, "%u owner(s) not released by close", H.live);
    CHECKF(r >= 0 && (unsigned)r == H.forced,
           "close returned %d, %u owner(s) were released without a final CQE", r, H.forced);
    if (clean)
        CHECKF(H.forced == expect_forced,
               "clean run: close forced %u release(s), the fake could not cancel %u", H.forced,
               expect_forced);
    CHECK(H.rec.bufrings_live_at_destroy == 0);
    CHECK(H.rec.bad_unregisters == 0);
    CHECK(H.rec.advance_errors == 0);
    CHECK(H.rec.bad_buf_recycles == 0);
    /* A live operation's SQE is always published by close's cancels; an
     * unpublished one is left only when a CQE no kernel would post (one for an
     * SQE still in the SQ) released its operation early. */
    if (!H.run_tainted)
        CHECKF(H.rec.unpublished_at_destroy == 0, "%u SQEs prepared but never published",
               H.rec.unpublished_at_destroy);
    for (unsigned i = 0; i < H.nslots; i++)
        CHECK(H.slots[i].released && !H.slots[i].release_due);
    fds_settle();
}

/* ---- driver ------------------------------------------------------------------------------------------ */

static void after_step(void)
{
    check_log();
    check_stats();
    if (H.fb) {
        CHECK(H.rec.advance_errors == 0);
        CHECK(H.rec.bad_unregisters == 0);
        CHECK(H.rec.bad_buf_recycles == 0);
    }
}

static bool setup(void)
{
    uint8_t h0 = u8(), h1 = u8();
    static const unsigned sqs[8] = {1, 2, 4, 8, 16, 4, 8, 2};
    struct fake_config cfg;
    fake_record_init(&H.rec);
    fake_config_default(&cfg, &H.rec);
    cfg.sq_entries = sqs[h0 & 7];
    cfg.cq_entries = cfg.sq_entries << ((h0 >> 3) & 3);
    if (fake_backend_new(&cfg, &H.fb) < 0)
        return false;
    H.fb->cancel_policy = (enum fake_cancel_policy)(((h0 >> 5) & 3) % 3);
    H.fb->busy_on_backlog = (h0 >> 7) & 1;
    /* Interpose on the backend so the model sees every CQE the core drains. */
    H.fops = H.fb->base.ops;
    H.wops = *H.fops;
    H.wops.name = "fuzz-wrapped-fake";
    H.wops.get_sqe = w_get_sqe;
    H.wops.sq_space_left = w_space;
    H.wops.flush = w_flush;
    H.wops.enter = w_enter;
    H.wops.peek_cqes = w_peek;
    H.wops.advance = w_advance;
    H.wops.cq_overflow_pending = w_overflow;
    H.wops.register_buf_ring = w_reg;
    H.wops.unregister_buf_ring = w_unreg;
    H.wops.probe_opcodes = w_probe;
    H.wops.destroy = w_destroy;
    H.fb->base.ops = &H.wops;
    if (ringio_core_new(&H.fb->base, &H.c) < 0) {
        H.fops->destroy(&H.fb->base);
        return false;
    }
    H.mode = (enum ringio_submit_mode)(h1 % 3);
    ringio_core_set_mode(H.c, H.mode);
    TRACE("setup sq=%u cq=%u policy=%d busy_on_backlog=%d mode=%d\n", H.fb->base.sq_entries,
          H.fb->base.cq_entries, H.fb->cancel_policy, H.fb->busy_on_backlog, H.mode);
    return true;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    static struct slot *slots;
    if (!slots) {
        slots = malloc(MAX_SLOTS * sizeof(*slots));
        if (!slots)
            abort();
    }
    memset(&H, 0, sizeof(H));
    H.slots = slots;
    fuzz_run_start(&H.run, "fuzz_core", action_names, A_COUNT, data, size);
    H.refuse_at = -1;
    for (unsigned i = 0; i < MAX_FDS; i++)
        H.fds[i].fd = -1;
    if (size < 2 || !setup()) {
        fake_record_free(&H.rec);
        return 0;
    }
    for (H.run.step = 1;; H.run.step++) {
        uint8_t op = u8();
        if (H.run.eof)
            break;
        H.run.action = op % A_COUNT;
        TRACE("#%u %s\n", H.run.step, action_names[H.run.action]);
        switch (H.run.action) {
        case A_MODE: {
            enum ringio_submit_mode m = (enum ringio_submit_mode)(u8() % 3);
            enum ringio_submit_mode old = ringio_core_set_mode(H.c, m);
            CHECK(old == H.mode);
            H.mode = m;
            break;
        }
        case A_SUBMIT: {
            unsigned c0 = H.rec.consumed;
            bool clean = knobs_clean();
            int r = ringio_core_submit(H.c);
            TRACE("    -> %d\n", r);
            if (H.closed) {
                CHECK(r == -EBADF);
            } else {
                CHECKF(r < 0 || (unsigned)r == H.rec.consumed - c0,
                       "submit() says %d, the fake consumed %u", r, H.rec.consumed - c0);
                if (clean)
                    CHECKF(r >= 0 && fake_sq_published(H.fb) == 0 &&
                               fake_sq_unpublished(H.fb) == 0,
                           "submit() (%d) left SQEs staged", r);
            }
            break;
        }
        case A_WAKE: {
            struct pre p;
            pre_submit(&p);
            int r = ringio_core_wake(H.c);
            TRACE("    -> %d\n", r);
            if (H.closed) {
                CHECK(r == -EBADF);
            } else if (H.fb->sqe_tail == p.sqe_tail + 1) {
                /* the wake SQE was prepared (entering may still have failed) */
                CHECKF(r == 0 || r == -EBUSY || r == -EAGAIN || r == -EIO, "wake returned %d", r);
                struct io_uring_sqe want;
                fuzz_expect_base(&want, IORING_OP_NOP);
                want.user_data = RINGIO_TOKEN_WAKE;
                check_sqe(&H.fb->sqes[(H.fb->sqe_tail - 1) & H.fb->sq_mask], &want,
                          "prepared wake");
                H.wakes++;
            } else {
                CHECKF(r == -EBUSY && p.space == 0, "wake failed with %d", r);
            }
            break;
        }
        case A_REAP:
            act_reap();
            break;
        case A_KCOMPLETE:
            act_kcomplete();
            break;
        case A_KRECV:
            act_krecv();
            break;
        case A_KZC:
            act_kzc();
            break;
        case A_RAW:
            act_raw();
            break;
        case A_DUP:
            act_dup();
            break;
        case A_KNOB:
            act_knob();
            break;
        case A_BURST:
            act_burst();
            break;
        case A_WAIT:
            act_wait();
            break;
        case A_WAITER:
            act_waiter();
            break;
        case A_MISC:
            act_misc();
            break;
        case A_KFLUSH:
            act_kflush();
            break;
        case A_BADARGS:
            act_badargs();
            break;
        case A_CLOSE_EARLY:
            do_close((u8() & 1) ? 100 * 1000 : 0);
            break;
        default:
            act_submit(H.run.action);
            break;
        }
        after_step();
        if (H.run.eof)
            break;
    }
    H.run.action = A_CLOSE_EARLY;
    do_close(0);
    after_step();
    ringio_core_free(H.c);
    fake_record_free(&H.rec);
    free(H.mq);
    H.mq = NULL;
    return 0;
}
