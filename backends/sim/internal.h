/*
 * Private structures of the simulated kernel.  Nothing outside backends/sim
 * includes this.
 *
 * Locking: the core calls every backend function but enter() with its ring
 * lock held, and enter() concurrently with at most one locked caller.  The
 * sim therefore takes its own mutex in every entry point; enter() drops it
 * only while it sleeps in poll(), and anyone who changes what a sleeper
 * waits for (new SQEs, new CQEs) writes the wake eventfd.
 */
#ifndef RINGIO_SIM_INTERNAL_H
#define RINGIO_SIM_INTERNAL_H

#include "ringio/sim.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Decision sites (not fault sites: every choice has one, faithful or not).
 * The site is recorded with each decision so a replay that drifts is caught. */
enum sim_site {
    D_FAULT_ENABLE = 1, /* per fault site, at creation */
    D_FAULT_FIRE,
    D_ORDER,         /* which ready operation runs next */
    D_SHORT_LEN,     /* how short a short transfer is */
    D_ERRNO,         /* which injected errno */
    D_NOTIF_DELAY,   /* steps a notification waits */
    D_NOTIF_PICK,    /* which pending notification is posted next */
    D_CANCEL_RACE,   /* a ready target: does the completion or the cancel win */
    D_LEG_YIELD,     /* a multishot op stops after this leg for now */
};

enum sop_state {
    S_QUEUED = 0, /* consumed, runs at the next progress round */
    S_LINKED,     /* waits for its predecessor in a link chain */
    S_WAIT_FD,    /* waits for wait_events on wait_fd */
    S_WAIT_TIMER, /* waits for the virtual clock to reach deadline */
};

struct sop {
    struct sop *next, *prev; /* the list of live operations, in submission order */
    struct io_uring_sqe sqe; /* our copy: the SQ slot is reused at once */
    uint64_t seq;
    uint64_t tag;
    bool tagged;
    uint8_t state;
    bool multishot;
    bool linked;          /* IOSQE_IO_LINK or HARDLINK: link_next waits for us */
    bool hardlink;
    bool connecting;      /* CONNECT in progress: poll for POLLOUT then SO_ERROR */
    bool skip_success;    /* IOSQE_CQE_SKIP_SUCCESS */
    struct sop *link_next;
    struct sop *link_timeout; /* a LINK_TIMEOUT armed for this op */
    struct sop *timeout_of;   /* for a LINK_TIMEOUT: the op it guards */
    int wait_fd;
    short wait_events;
    int64_t deadline;      /* S_WAIT_TIMER, virtual ns */
    uint32_t count_target; /* TIMEOUT with a completion count */
    uint64_t count_base;
    uint32_t legs;
    uint32_t done;        /* MSG_WAITALL: bytes moved so far */
    bool started;         /* preflight ran (first issue) */
    bool no_cqe;          /* the final CQE was already posted (zero-copy) */
    bool unheld;          /* cancelled: scripted holds no longer apply */
};

#define SQE_FLAGS_KNOWN_MASK                                                             \
    (IOSQE_FIXED_FILE | IOSQE_IO_DRAIN | IOSQE_IO_LINK | IOSQE_IO_HARDLINK | IOSQE_ASYNC | \
     IOSQE_BUFFER_SELECT | IOSQE_CQE_SKIP_SUCCESS)

#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/* A CQE produced but not yet in the CQ ring (held by a rule, or a delayed
 * zero-copy notification). */
struct pend_cqe {
    struct pend_cqe *next;
    struct io_uring_cqe cqe;
    uint64_t tag;
    bool tagged;
    uint32_t delay; /* notifications: progress rounds left */
};

struct rule {
    struct rule *next;
    uint64_t tag;
    bool hold, notif_only, force;
    int32_t res;
};

struct buf_ring {
    struct buf_ring *next;
    struct io_uring_buf_ring *br;
    size_t map_len;
    unsigned entries;
    unsigned bgid;
    uint16_t head; /* the kernel's private consumer index */
};

struct sim {
    struct ringio_backend base; /* first */
    pthread_mutex_t mu;

    /* SQ: slots [sq_head, sq_local) are handed out, [sq_head, sq_tail) published. */
    struct io_uring_sqe *sqes;
    uint64_t *sq_tag; /* annotate(): tag per SQ slot */
    uint8_t *sq_tagged;
    unsigned sq_mask;
    uint32_t sq_head, sq_tail, sq_local;

    /* CQ ring and the overflow backlog (the kernel's IORING_SQ_CQ_OVERFLOW). */
    struct io_uring_cqe *cqes;
    unsigned cq_mask;
    uint32_t cq_head, cq_tail;
    struct pend_cqe *ovf_head, *ovf_tail;
    unsigned ovf_len;

    struct sop *ops_head, *ops_tail;
    unsigned nqueued; /* live ops in S_QUEUED: next_ready() stops at once on 0 */
    unsigned nops;
    struct sop *spare; /* retired records kept for reuse (linked by next) */
    unsigned nspare;
    uint64_t next_seq;

    struct pend_cqe *notifs; /* delayed zero-copy notifications, oldest first */
    struct pend_cqe *held;   /* held by rules, oldest first */
    struct rule *rules;

    struct buf_ring *buf_rings;
    /* bgid -> its ring (NULL: none), grown on demand.  The core hands out the
     * lowest free bgid, so this stays about as long as the rings are many;
     * every multishot leg looks its ring up here. */
    struct buf_ring **bgid_map;
    unsigned bgid_map_len;
    int *files; /* registered file table, -1 = empty */
    unsigned nfiles;
    struct iovec *bufs; /* registered buffers */
    unsigned nbufs;

    int64_t vnow;           /* virtual clock, ns */
    uint64_t cqes_posted;
    uint64_t cqe_hash;
    unsigned overflowed;

    /* decision source */
    enum ringio_sim_source source;
    uint64_t seed, rng;
    uint8_t *bytes;
    size_t nbytes, bpos;
    uint64_t decisions, dhash;
    bool record, diverged;
    uint8_t *trace;
    size_t trace_len, trace_cap;

    struct ringio_sim_faults faults;
    uint32_t faults_on; /* bit per site, decided at creation */

    int wake_fd;     /* eventfd: sleepers in enter() are poked through it */
    unsigned sleepers;
    int epfd;        /* notify mode: b->fd; -1 otherwise */
    int cq_evt;      /* notify mode: eventfd, readable while CQEs wait */
    bool cq_evt_set;
    bool notify_on;  /* ringio_sim_notify_enable() was called */
    struct { int fd; short ev; } *epreg;
    unsigned nepreg, epcap;
};

/* decide.c */
uint32_t sim_decide(struct sim *s, enum sim_site site, uint32_t n);
bool sim_fault(struct sim *s, enum ringio_sim_fault f);
int sim_decide_init(struct sim *s, const struct ringio_sim_config *cfg);
void sim_decide_free(struct sim *s);

/* cq.c: producing CQEs */
void sim_post(struct sim *s, const struct sop *op, uint64_t user_data, int32_t res,
              uint32_t flags);
bool sim_cq_full(const struct sim *s);
void sim_flush_overflow(struct sim *s);
void sim_queue_notif(struct sim *s, const struct sop *op, int32_t res, bool errored);
void sim_tick_notifs(struct sim *s, bool drain);
unsigned sim_cq_ready(const struct sim *s);
struct rule *sim_rule(struct sim *s, uint64_t tag, bool create);
void sim_notify_update(struct sim *s);
unsigned sim_release_user_data(struct sim *s, uint64_t user_data);

/* engine.c */
int sim_enter(struct ringio_backend *b, unsigned to_submit, unsigned min_complete,
              int64_t timeout_ns, unsigned flags);
void sim_complete(struct sim *s, struct sop *op, int32_t res, uint32_t flags);
void sim_zc_finish(struct sim *s, struct sop *op, int32_t res);
void sim_wait_fd(struct sim *s, struct sop *op, int fd, short events);
/* Every change of op->state goes through here: it keeps s->nqueued. */
static inline void sim_set_state(struct sim *s, struct sop *op, enum sop_state st)
{
    if (op->state == S_QUEUED)
        s->nqueued--;
    if (st == S_QUEUED)
        s->nqueued++;
    op->state = (uint8_t)st;
}
int sim_resolve_fd(struct sim *s, const struct sop *op, int *fd);
int sim_install_fixed(struct sim *s, const struct sop *op, int fd);

/* ops.c: run one operation once.  Returns true when the op is finished (its
 * final CQE posted, op freed), false when it waits (state set). */
bool sim_issue(struct sim *s, struct sop *op);
bool sim_opcode_supported(unsigned opcode);
int32_t sim_injected(struct sim *s, const struct sop *op);

/* ops_net.c / ops_file.c: one handler per opcode family, called through the
 * table in ops.c with the resolved fd (fixed or not) when the table says the
 * opcode's sqe->fd is a file; same return as sim_issue(). */
bool sim_op_recv(struct sim *s, struct sop *op, int fd);
bool sim_op_send(struct sim *s, struct sop *op, int fd); /* SEND, SEND_ZC */
bool sim_op_msg(struct sim *s, struct sop *op, int fd);  /* RECVMSG, SENDMSG, SENDMSG_ZC */
bool sim_op_accept(struct sim *s, struct sop *op, int fd);
bool sim_op_connect(struct sim *s, struct sop *op, int fd);
bool sim_op_shutdown(struct sim *s, struct sop *op, int fd);
bool sim_op_close(struct sim *s, struct sop *op, int fd);
bool sim_op_socket(struct sim *s, struct sop *op, int fd);
bool sim_op_rw(struct sim *s, struct sop *op, int fd); /* READ/WRITE[V|_FIXED] */
bool sim_op_openat(struct sim *s, struct sop *op, int fd);
bool sim_op_path(struct sim *s, struct sop *op, int fd); /* UNLINKAT, MKDIRAT, RENAMEAT, STATX */
bool sim_op_fsync(struct sim *s, struct sop *op, int fd);
bool sim_op_fallocate(struct sim *s, struct sop *op, int fd);
struct buf_ring *sim_buf_ring(struct sim *s, unsigned bgid);

#endif
