/*
 * A scriptable in-memory backend for the core's C tests.
 *
 * It implements struct ringio_backend_ops without a kernel:
 *  - SQ: sq_entries slots; get_sqe() hands out slots (poisoned with 0xA5, so a
 *    prep that forgets to zero a field shows up), flush() publishes them,
 *    enter() consumes published SQEs, copies each into the record's log and
 *    applies the policy (NOP: CQE res 0 at once; ASYNC_CANCEL: answer or hold;
 *    everything else: held in a pending list the test completes by hand).
 *  - CQ: a ring of cq_entries CQEs plus the kernel's overflow backlog
 *    (IORING_FEAT_NODROP semantics: never drop; while a backlog exists new CQEs
 *    join it, to keep order; enter(GETEVENTS) moves it into the ring).
 *  - provided-buffer rings live in aligned_alloc'd memory; the test can
 *    "receive" into them with fake_recv_into().
 *
 * Everything a test wants to look at after the core destroyed the backend
 * (SQE log, counters) lives in a caller-owned struct fake_record.
 */
#ifndef RINGIO_TEST_FAKE_BACKEND_H
#define RINGIO_TEST_FAKE_BACKEND_H

#include "ringio/backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Caller-owned; survives the backend's destroy(). */
struct fake_record {
    struct io_uring_sqe *log; /* every SQE consumed by enter(), in order */
    size_t log_len, log_cap;

    unsigned enters;            /* enter() calls */
    unsigned enters_getevents;  /* ... with RINGIO_ENTER_GETEVENTS */
    unsigned enters_submitting; /* ... with to_submit > 0 */
    unsigned busy_returned;     /* -EBUSY returned (enter_busy_count / busy_on_backlog) */
    unsigned etime_returned;    /* -ETIME returned (nothing to wait for) */
    unsigned would_block;       /* a GETEVENTS enter with no timeout found nothing */
    unsigned consumed;          /* SQEs consumed in total */
    unsigned cqes_posted;       /* CQEs posted (ring or backlog) */
    unsigned cqes_overflowed;   /* CQEs that went to the backlog */
    unsigned backlog_flushes;   /* enter() calls that moved backlog CQEs into the ring */
    unsigned cqes_advanced;     /* CQEs consumed via advance() */
    unsigned advance_errors;    /* advance() past what was available */
    unsigned flushes;           /* flush() calls */
    unsigned get_sqe_null;      /* get_sqe() refusals (SQ full) */

    unsigned bufrings_registered;   /* successful register_buf_ring() calls */
    unsigned bufrings_unregistered; /* successful unregister_buf_ring() calls */
    unsigned bufrings_live;         /* registered and not unregistered */
    unsigned bad_unregisters;       /* unregister of an unknown ring / wrong size or bgid */
    unsigned bad_buf_recycles;      /* buf ring entries with bid/len/addr not seen before */

    unsigned destroys;
    /* Snapshot taken by destroy(). */
    unsigned bufrings_live_at_destroy;
    unsigned pending_at_destroy;
    unsigned unpublished_at_destroy; /* SQEs handed out but never flushed */
};

void fake_record_init(struct fake_record *r);
void fake_record_free(struct fake_record *r);
/* Last logged SQE with this user_data (NULL: none). */
const struct io_uring_sqe *fake_log_find(const struct fake_record *r, uint64_t user_data);
/* Number of logged SQEs with this opcode. */
size_t fake_log_count_op(const struct fake_record *r, uint8_t opcode);

enum fake_cancel_policy {
    /* ASYNC_CANCEL: the targets leave the pending list with a -ECANCELED CQE
     * (no F_MORE) and the cancel gets res = number cancelled (1 for a single
     * target) or -ENOENT. */
    FAKE_CANCEL_ANSWER = 0,
    /* ASYNC_CANCEL is held in the pending list: never answered. */
    FAKE_CANCEL_HOLD = 1,
    /* Answered as with FAKE_CANCEL_ANSWER, but only once somebody waits:
     * by an enter(GETEVENTS, min_complete > 0) that finds too few CQEs
     * (the kernel cancels asynchronously). */
    FAKE_CANCEL_DEFERRED = 2,
};

struct fake_config {
    unsigned sq_entries; /* rounded up to a power of two */
    unsigned cq_entries; /* 0: 2 x sq_entries; rounded up to a power of two */
    unsigned features;   /* IORING_FEAT_* */
    struct fake_record *rec; /* required */
};

/* sq 8, cq 16, IORING_FEAT_NODROP. */
void fake_config_default(struct fake_config *cfg, struct fake_record *rec);

struct fake_bufring {
    struct io_uring_buf_ring *br;
    unsigned entries;
    unsigned bgid;
    uint16_t head; /* the kernel's private consumer index */
    bool live;
};

#define FAKE_MAX_BUFRINGS 64

/* An SQE the fake holds until the test completes it. */
struct fake_pending {
    struct io_uring_sqe sqe;
    bool zc_op_done; /* zero-copy send whose op CQE (F_MORE) was posted: only
                      * the notification is left, a cancel no longer finds it */
};

struct fake_backend;
/* Return true when the SQE was handled (the default policy is skipped). */
typedef bool (*fake_hook_fn)(void *ctx, struct fake_backend *fb, const struct io_uring_sqe *sqe);

struct fake_backend {
    struct ringio_backend base; /* must stay first */
    struct fake_record *rec;

    /* ---- knobs, set freely by tests ---- */
    bool refuse_consume;       /* enter() consumes no SQE (returns 0) */
    unsigned enter_busy_count; /* next N enter() calls return -EBUSY first */
    bool busy_on_backlog;      /* like 5.x kernels: a submitting enter() with an
                                * overflow backlog flushes it and returns -EBUSY
                                * if some is left */
    bool auto_nop;             /* NOP -> CQE res 0 at once (default true) */
    enum fake_cancel_policy cancel_policy;
    int register_error;        /* != 0: register_buf_ring() fails with it */
    fake_hook_fn hook;         /* consulted first for every consumed SQE */
    void *hook_ctx;

    /* ---- SQ ---- */
    struct io_uring_sqe *sqes;
    unsigned sq_mask;
    unsigned sq_head;  /* consumed by the "kernel" */
    unsigned sq_tail;  /* published */
    unsigned sqe_tail; /* handed out */

    /* ---- CQ ---- */
    struct io_uring_cqe *cqes;
    unsigned cq_mask;
    unsigned cq_head, cq_tail;
    struct io_uring_cqe *backlog; /* FIFO, [backlog_head, backlog_len) */
    size_t backlog_head, backlog_len, backlog_cap;

    /* ---- in-flight SQEs the test completes explicitly ---- */
    struct fake_pending *pending;
    size_t pending_len, pending_cap;

    struct fake_bufring bufrings[FAKE_MAX_BUFRINGS];
};

int fake_backend_new(const struct fake_config *cfg, struct fake_backend **out);

/* Post a CQE exactly as given (ring, or backlog when full). */
void fake_post_cqe(struct fake_backend *fb, uint64_t user_data, int32_t res, uint32_t flags);
/* Post a CQE; without F_MORE the pending SQE with that user_data (if any)
 * leaves the pending list (a zero-copy op CQE with F_MORE marks it as waiting
 * for its notification only).  Returns 0 if it was pending, -ENOENT otherwise
 * (the CQE is posted anyway: stale tokens are legitimate test input). */
int fake_complete(struct fake_backend *fb, uint64_t user_data, int32_t res, uint32_t flags);
/* Multishot-recv leg for the pending SQE user_data: take the next buffer of
 * its group (sqe->buf_group), copy data into it and post
 * res=len, F_BUFFER | bid << 16 | (more ? F_MORE : 0).  If the group has no
 * buffer left, post -ENOBUFS without F_MORE (and end the op), as the kernel
 * does.  Returns the bid used, or -ENOBUFS, or -ENOENT/-EINVAL on misuse. */
int fake_recv_into(struct fake_backend *fb, uint64_t user_data, const void *data, uint32_t len,
                   bool more);

size_t fake_pending_count(const struct fake_backend *fb);
const struct io_uring_sqe *fake_pending_find(const struct fake_backend *fb, uint64_t user_data);
/* SQEs published and not consumed / handed out and not published. */
unsigned fake_sq_published(const struct fake_backend *fb);
unsigned fake_sq_unpublished(const struct fake_backend *fb);
/* CQEs in the ring / in the backlog. */
unsigned fake_cq_ready(const struct fake_backend *fb);
size_t fake_cq_backlog(const struct fake_backend *fb);
/* Registered (live) buffer ring of group bgid, or NULL.  The pointer stays
 * valid (slot reused, live == false) after the core unregisters the ring. */
struct fake_bufring *fake_bufring_find(struct fake_backend *fb, unsigned bgid);
/* Buffers the kernel could still pick in that ring (tail - head). */
unsigned fake_bufring_available(const struct fake_bufring *r);
uint16_t fake_bufring_tail(const struct fake_bufring *r);

#endif
