/*
 * Private structures of the ringio core.  Nothing outside core/ includes this.
 */
#ifndef RINGIO_CORE_INTERNAL_H
#define RINGIO_CORE_INTERNAL_H

#include "ringio/core.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* user_data of SQEs the core submits for itself (close-time cancels); their
 * CQEs are consumed silently.  Like RINGIO_TOKEN_WAKE, never a valid token:
 * valid tokens have a generation below RINGIO_GEN_LIMIT in the high half. */
#define RINGIO_TOKEN_INTERNAL (UINT64_MAX - 1)
#define RINGIO_GEN_LIMIT 0xfffffff0u

/* Largest provided-buffer ring the kernel accepts. */
#define RINGIO_MAX_BUF_COUNT 32768u
/* Upper bound on one multishot operation's buffer memory. */
#define RINGIO_MAX_BUFRING_BYTES (1ull << 30)

enum op_state { OP_FREE = 0, OP_LIVE = 1 };

/* A provided-buffer ring owned by one multishot receive. */
struct ringio_bufring {
    struct io_uring_buf_ring *br; /* shared with the kernel */
    uint8_t *mem;                 /* buf_count * buf_size bytes of payload */
    unsigned buf_count;           /* power of two */
    unsigned buf_size;
    uint16_t bgid;
    uint16_t tail; /* our copy of br->tail: only the core writes it */
};

struct ringio_op {
    uint32_t gen;       /* generation of the current occupant (>= 1) */
    uint32_t next_free; /* free list link: index + 1, 0 = end (only while FREE) */
    uint8_t state;      /* enum op_state */
    uint8_t opcode;     /* IORING_OP_* */
    bool multishot;     /* legs until a CQE without F_MORE */
    bool zc;            /* zero-copy send: a F_NOTIF CQE may follow */
    bool zc_report;     /* IORING_SEND_ZC_REPORT_USAGE: hold the op CQE for the notif */
    bool op_cqe_seen;   /* zc: operation CQE already delivered */
    bool notif_seen;    /* zc: notification already consumed */
    bool held;          /* zc_report: op CQE held until the notif */
    bool direct;        /* openat into the fixed file table: res is no fd */
    int8_t zc_copied;   /* -1 unknown */
    int32_t held_res;
    uint32_t held_flags;
    uint32_t sequence; /* next multishot leg number */
    struct ringio_owner *owner;
    struct ringio_bufring *bufring;
};

/* FIFO of CQEs drained from the backend but not yet delivered.  Draining the
 * CQ ring eagerly keeps the kernel's overflow backlog short; the FIFO grows
 * as needed so a completion is never dropped. */
struct cqe_fifo {
    struct io_uring_cqe *v;
    unsigned head; /* index of the oldest entry */
    unsigned len;
    unsigned cap;  /* power of two */
};

struct ringio_core {
    struct ringio_backend *b;
    struct ringio_op *ops;
    uint32_t nops;      /* slots in use or on the free list */
    uint32_t cap;       /* allocated slots */
    uint32_t free_head; /* index + 1 of the first free slot, 0 = none */
    unsigned live;      /* ops whose owner is not released */
    struct cqe_fifo fifo;
    enum ringio_submit_mode mode;
    unsigned waiters; /* threads between wait_prepare and wait_finish */
    bool closed;
    struct ringio_stats st;
    uint64_t bgid_used[65536 / 64];
    /* An open link chain (ringio_core_link_begin): its SQEs wait here, not in
     * the SQ, so that link_end can place them contiguously or not at all. */
    bool linking;
    bool link_hard; /* IOSQE_IO_HARDLINK for the open chain */
    unsigned chain_len;
    unsigned chain_cap;
    struct io_uring_sqe *chain;
};

/* optable.c */
int op_alloc(struct ringio_core *c, uint32_t *idx);
void op_unalloc(struct ringio_core *c, uint32_t idx);
struct ringio_op *op_lookup(struct ringio_core *c, uint64_t token);
uint64_t op_token(const struct ringio_core *c, uint32_t idx);
void op_release(struct ringio_core *c, struct ringio_op *op);

/* bufring.c */
int bufring_create(struct ringio_core *c, unsigned buf_size, unsigned buf_count,
                   struct ringio_bufring **out);
void bufring_destroy(struct ringio_core *c, struct ringio_bufring *r);
const void *bufring_data(const struct ringio_bufring *r, unsigned bid);
void bufring_recycle(struct ringio_bufring *r, unsigned bid);

/* Every enter() of the core goes through here, so stats count the system
 * calls.  Atomic: ringio_core_wait_block runs without the ring lock. */
static inline int core_enter(struct ringio_core *c, unsigned to_submit, unsigned min_complete,
                             int64_t timeout_ns, unsigned flags)
{
    __atomic_fetch_add(&c->st.enters, 1, __ATOMIC_RELAXED);
    return c->b->ops->enter(c->b, to_submit, min_complete, timeout_ns, flags);
}

/* submit.c */
int sq_reserve(struct ringio_core *c, unsigned n, bool honour_strict);
int core_push(struct ringio_core *c);
int op_begin(struct ringio_core *c, struct ringio_owner *o, uint8_t opcode, uint64_t *token,
             uint32_t *idx, struct io_uring_sqe **sqe);
int op_commit(struct ringio_core *c, uint32_t idx, struct io_uring_sqe *sqe, uint64_t *token);

/* link.c */
struct io_uring_sqe *link_slot(struct ringio_core *c);
void link_abort_all(struct ringio_core *c);

/* reap.c */
int core_drain(struct ringio_core *c);
int core_discard_event(void *ctx, const struct ringio_event *ev);
int core_post_cqe(struct ringio_core *c, const struct io_uring_cqe *cqe);

#endif
