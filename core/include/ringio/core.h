/*
 * ringio core: operations, tokens, ownership and completion normalisation.
 *
 * Plain C, no Python.  A caller (the CPython extension, a fuzzer, a C test)
 * creates a backend, wraps it in a ringio_core, prepares operations with the
 * ringio_submit_* functions and receives normalised events from
 * ringio_core_reap().
 *
 * Locking contract: the core is not internally locked.  Every function here
 * must be called with the caller's ring lock held, except
 * ringio_core_wait_block(), which is meant to run with that lock released
 * (and the GIL released) while other threads keep submitting.
 *
 * Ownership: each operation carries a caller-provided struct ringio_owner
 * (embed it first in your own record).  The core calls owner->release exactly
 * once, after the operation's last CQE (for zero-copy sends: after the
 * F_NOTIF notification), on cancellation, on error, or at close.  release may
 * run without the GIL and while the ring lock is held: it must only queue the
 * record for later cleanup, never call back into the ring.
 *
 * Every function returns 0 / a count on success and -errno on failure.
 */
#ifndef RINGIO_CORE_H
#define RINGIO_CORE_H

#include "ringio/backend.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ringio_core;

struct ringio_owner {
    void (*release)(struct ringio_owner *self);
    /* The caller's label for the operation (Python: its user_data).  The core
     * only hands it to the backend's annotate() hook, see backend.h. */
    uint64_t tag;
};

/* user_data of the internal wake NOP; never a valid operation token. */
#define RINGIO_TOKEN_WAKE UINT64_MAX

/* Submission modes (ringio_core_set_mode). */
enum ringio_submit_mode {
    RINGIO_SUBMIT_NOW = 0,   /* enter the kernel in every submit call */
    RINGIO_SUBMIT_BATCH = 1, /* stage; flush when the SQ is full or on wait/end */
    RINGIO_SUBMIT_STRICT = 2 /* stage; never enter early: SQ full -> -EBUSY */
};

/* One normalised completion, as seen by the deliver callback. */
struct ringio_event {
    struct ringio_owner *owner; /* NULL for an internal wake */
    uint64_t token;             /* the operation's token (its SQE user_data) */
    int32_t res;                /* raw CQE res (negative errno on failure) */
    uint32_t flags;             /* raw CQE flags as the kernel set them */
    uint32_t sequence;          /* multishot leg number from the first sequence; 0 otherwise */
    uint8_t opcode;             /* IORING_OP_* of the operation */
    bool more;                  /* operation still armed: more events will follow */
    bool final;                 /* the owner is released right after this event */
    bool wake;                  /* internal wake (break_wait); owner is NULL */
    int8_t zc_copied;           /* zero-copy with REPORT_USAGE: 1 copied, 0 not; -1 unknown */
    const void *data;           /* provided-buffer bytes (multishot recv), valid only
                                 * during the callback; NULL otherwise */
    uint32_t data_len;
};

/* Return 0 to consume the event; nonzero leaves it queued (delivered again by
 * the next reap) and stops the reap, which then returns that value.  The
 * callback runs under the ring lock and must not call ringio_* on the same
 * core. */
typedef int (*ringio_deliver_fn)(void *ctx, const struct ringio_event *ev);

struct ringio_stats {
    uint64_t submitted;        /* SQEs the kernel accepted */
    uint64_t completed;        /* CQEs drained from the backend */
    uint64_t delivered;        /* events handed to deliver callbacks */
    uint64_t stale_cqes;       /* CQEs whose token matched no live operation (a bug) */
    uint64_t overflow_flushes; /* times the kernel CQ overflow backlog was pulled in */
    uint64_t sq_full_flushes;  /* times a full SQ forced an early flush */
    uint64_t busy_retries;     /* enter() returned -EBUSY/-EAGAIN and we reaped first */
    uint64_t enters;           /* calls of the backend's enter() (io_uring_enter(2)) */
    unsigned inflight;         /* operations not yet released */
};

/* ---- lifecycle ------------------------------------------------------- */

/* Wrap a backend.  On success the core owns b. */
int ringio_core_new(struct ringio_backend *b, struct ringio_core **out);

/* Cancel everything in flight, reap final CQEs for at most timeout_ns
 * (< 0: no bound), release every owner exactly once, close fds accepted or
 * created into completions nobody will see, and destroy the backend.
 * Blocking: call it without the GIL.  Idempotent.  Returns the number of
 * operations that had to be released without their final CQE. */
int ringio_core_close(struct ringio_core *c, int64_t timeout_ns);

/* Free the core (closing it first with a zero timeout if needed). */
void ringio_core_free(struct ringio_core *c);

bool ringio_core_closed(const struct ringio_core *c);
const struct ringio_backend *ringio_core_backend(const struct ringio_core *c);
void ringio_core_stats(const struct ringio_core *c, struct ringio_stats *out);

/* ---- submission ------------------------------------------------------ */

/* Returns the previous mode.  Leaving a staging mode does not flush:
 * call ringio_core_submit() for that. */
enum ringio_submit_mode ringio_core_set_mode(struct ringio_core *c, enum ringio_submit_mode m);

/* Hand every staged SQE to the kernel now.  Returns how many were taken. */
int ringio_core_submit(struct ringio_core *c);

/* Number of SQEs prepared but not yet consumed by the kernel.  Publishes
 * the SQ tail as a side effect (under SQPOLL that hands them over). */
unsigned ringio_core_staged(struct ringio_core *c);

/*
 * Each ringio_submit_* reserves an operation slot and SQE(s), prepares them
 * and, depending on the mode (or when a waiter is blocked), enters the
 * kernel.  On success *token receives the operation's token.  On failure
 * nothing was queued and owner->release has NOT been called: the caller
 * still owns everything it passed.  -EBUSY means the SQ stayed full after
 * one flush (backpressure: reap, then retry).
 *
 * Pointers passed in (buffers, addresses, msghdrs, timespecs) must stay
 * valid until owner->release runs.
 */
int ringio_submit_nop(struct ringio_core *c, struct ringio_owner *o, uint64_t *token);
int ringio_submit_timeout(struct ringio_core *c, struct ringio_owner *o,
                          struct __kernel_timespec *ts, unsigned count, unsigned flags,
                          uint64_t *token);
/* Cancel the operation whose token is target (flags: IORING_ASYNC_CANCEL_*). */
int ringio_submit_cancel(struct ringio_core *c, struct ringio_owner *o, uint64_t target,
                         unsigned flags, uint64_t *token);
int ringio_submit_poll(struct ringio_core *c, struct ringio_owner *o, int fd, unsigned mask,
                       bool multishot, uint32_t first_sequence, uint64_t *token);

int ringio_submit_recv(struct ringio_core *c, struct ringio_owner *o, int fd, void *buf,
                       size_t len, int msg_flags, uint64_t *token);
/* Multishot recv into an internal provided-buffer ring of buf_count
 * (power of two, <= 32768) buffers of buf_size bytes each. */
int ringio_submit_recv_multishot(struct ringio_core *c, struct ringio_owner *o, int fd,
                                 unsigned buf_size, unsigned buf_count, int msg_flags,
                                 uint32_t first_sequence, uint64_t *token);
int ringio_submit_send(struct ringio_core *c, struct ringio_owner *o, int fd, const void *buf,
                       size_t len, int msg_flags, uint64_t *token);
/* zc_flags: IORING_RECVSEND_* / IORING_SEND_ZC_REPORT_USAGE. */
int ringio_submit_send_zc(struct ringio_core *c, struct ringio_owner *o, int fd,
                          const void *buf, size_t len, int msg_flags, unsigned zc_flags,
                          uint64_t *token);
int ringio_submit_recvmsg(struct ringio_core *c, struct ringio_owner *o, int fd,
                          struct msghdr *msg, int msg_flags, uint64_t *token);
int ringio_submit_sendmsg(struct ringio_core *c, struct ringio_owner *o, int fd,
                          const struct msghdr *msg, int msg_flags, uint64_t *token);
int ringio_submit_sendmsg_zc(struct ringio_core *c, struct ringio_owner *o, int fd,
                             const struct msghdr *msg, int msg_flags, unsigned zc_flags,
                             uint64_t *token);
/* addr/addrlen may be NULL. */
int ringio_submit_accept(struct ringio_core *c, struct ringio_owner *o, int fd,
                         struct sockaddr *addr, socklen_t *addrlen, int flags, uint64_t *token);
int ringio_submit_accept_multishot(struct ringio_core *c, struct ringio_owner *o, int fd,
                                   int flags, uint32_t first_sequence, uint64_t *token);
int ringio_submit_connect(struct ringio_core *c, struct ringio_owner *o, int fd,
                          const struct sockaddr *addr, socklen_t addrlen, uint64_t *token);
int ringio_submit_shutdown(struct ringio_core *c, struct ringio_owner *o, int fd, int how,
                           uint64_t *token);
int ringio_submit_close(struct ringio_core *c, struct ringio_owner *o, int fd, uint64_t *token);
int ringio_submit_socket(struct ringio_core *c, struct ringio_owner *o, int domain, int type,
                         int protocol, uint64_t *token);

/* ---- files (prep_file.c) ------------------------------------------------ */

struct statx; /* <sys/stat.h> with _GNU_SOURCE, or <linux/stat.h> */
struct iovec;

/* opts for the fd-based file operations. */
#define RINGIO_OPT_FIXED_FILE (1u << 0) /* fd is a slot of the registered file
                                         * table (IOSQE_FIXED_FILE) */

/* Offset meaning "the file's current position" (the kernel's -1). */
#define RINGIO_OFFSET_CURRENT UINT64_MAX

/* file_index for openat: 0 opens a normal fd (res = fd); n > 0 installs the
 * file as direct descriptor n - 1 of the registered table (res = 0); and
 * IORING_FILE_INDEX_ALLOC lets the kernel pick a free slot (res = slot). */
int ringio_submit_openat(struct ringio_core *c, struct ringio_owner *o, int dfd,
                         const char *path, int flags, unsigned mode, unsigned file_index,
                         uint64_t *token);
int ringio_submit_read(struct ringio_core *c, struct ringio_owner *o, int fd, void *buf,
                       size_t len, uint64_t off, unsigned opts, uint64_t *token);
int ringio_submit_write(struct ringio_core *c, struct ringio_owner *o, int fd, const void *buf,
                        size_t len, uint64_t off, unsigned opts, uint64_t *token);
/* READ_FIXED / WRITE_FIXED: buf..buf+len must lie inside registered buffer
 * buf_index (the kernel checks: -EFAULT otherwise). */
int ringio_submit_read_fixed(struct ringio_core *c, struct ringio_owner *o, int fd, void *buf,
                             size_t len, uint64_t off, unsigned buf_index, unsigned opts,
                             uint64_t *token);
int ringio_submit_write_fixed(struct ringio_core *c, struct ringio_owner *o, int fd,
                              const void *buf, size_t len, uint64_t off, unsigned buf_index,
                              unsigned opts, uint64_t *token);
int ringio_submit_readv(struct ringio_core *c, struct ringio_owner *o, int fd,
                        const struct iovec *iov, unsigned iovcnt, uint64_t off, unsigned opts,
                        uint64_t *token);
int ringio_submit_writev(struct ringio_core *c, struct ringio_owner *o, int fd,
                         const struct iovec *iov, unsigned iovcnt, uint64_t off, unsigned opts,
                         uint64_t *token);
/* fsync_flags: 0 or IORING_FSYNC_DATASYNC. */
int ringio_submit_fsync(struct ringio_core *c, struct ringio_owner *o, int fd,
                        unsigned fsync_flags, unsigned opts, uint64_t *token);
int ringio_submit_fallocate(struct ringio_core *c, struct ringio_owner *o, int fd, int mode,
                            uint64_t off, uint64_t len, unsigned opts, uint64_t *token);
int ringio_submit_statx(struct ringio_core *c, struct ringio_owner *o, int dfd,
                        const char *path, int flags, unsigned mask, struct statx *out,
                        uint64_t *token);
/* Close direct descriptor `slot` of the registered file table. */
int ringio_submit_close_direct(struct ringio_core *c, struct ringio_owner *o, unsigned slot,
                               uint64_t *token);
int ringio_submit_unlinkat(struct ringio_core *c, struct ringio_owner *o, int dfd,
                           const char *path, int flags, uint64_t *token);
int ringio_submit_renameat(struct ringio_core *c, struct ringio_owner *o, int olddfd,
                           const char *oldpath, int newdfd, const char *newpath, unsigned flags,
                           uint64_t *token);
int ringio_submit_mkdirat(struct ringio_core *c, struct ringio_owner *o, int dfd,
                          const char *path, unsigned mode, uint64_t *token);

/* Registered files (fds[i] or -1 for an empty slot) and buffers; n == 0
 * unregisters.  -EOPNOTSUPP when the backend has no such registration,
 * -ENOMEM for buffers usually means RLIMIT_MEMLOCK (pinned pages). */
int ringio_core_register_files(struct ringio_core *c, const int *fds, unsigned n);
int ringio_core_register_buffers(struct ringio_core *c, const struct iovec *iov, unsigned n);

/*
 * Linked chains (IOSQE_IO_LINK).  Between link_begin and link_end every
 * operation prepared is held back in the core, not in the SQ.  link_end
 * reserves SQ room for the whole chain at once, copies it contiguously with
 * IOSQE_IO_LINK on every SQE but the last, and submits it per the mode (the
 * chain is never split across enters).  When that reservation fails (-EBUSY)
 * or abort is true, no SQE of the chain reaches the kernel and each of its
 * operations completes with -ECANCELED, as the kernel completes the rest of a
 * failed chain.  Returns the chain length or -errno.  link_begin: -EBUSY when
 * a chain is already open (chains do not nest).  A chain is at most
 * sq_entries long (the next op_begin fails with -EBUSY).
 */
/* hard: IOSQE_IO_HARDLINK instead of IOSQE_IO_LINK, so that a failure (or a
 * short read/write) does not cancel the rest of the chain. */
int ringio_core_link_begin(struct ringio_core *c, bool hard);
int ringio_core_link_end(struct ringio_core *c, bool abort);
bool ringio_core_linking(const struct ringio_core *c);

/* Wake a thread blocked in ringio_core_wait_block(): submits the internal
 * wake NOP at once, whatever the mode.  The waiter sees an event with
 * wake == true. */
int ringio_core_wake(struct ringio_core *c);

/* ---- completion ------------------------------------------------------ */

/* Under the lock: register a waiter, publish staged SQEs.  Returns the
 * to_submit count to pass to ringio_core_wait_block(). */
unsigned ringio_core_wait_prepare(struct ringio_core *c);

/* WITHOUT the lock: submit to_submit published SQEs and block until at least
 * min_complete CQEs are available or timeout_ns passes (< 0: forever,
 * 0: poll).  Returns 0 when completions may be ready, -ETIME on timeout,
 * -EINTR when interrupted by a signal, other -errno on failure. */
int ringio_core_wait_block(struct ringio_core *c, unsigned to_submit, unsigned min_complete,
                           int64_t timeout_ns);

/* Under the lock: unregister the waiter. */
void ringio_core_wait_finish(struct ringio_core *c);

/* True when an event can be reaped without blocking. */
bool ringio_core_ready(struct ringio_core *c);

/* Drain CQEs (including the kernel's overflow backlog) and deliver up to
 * max normalised events to fn.  Returns the number delivered, or the
 * nonzero value fn returned.  Zero-copy notifications, provided-buffer
 * recycling and owner release happen here. */
int ringio_core_reap(struct ringio_core *c, unsigned max, ringio_deliver_fn fn, void *ctx);

/* Number of operations whose owners have not been released yet. */
unsigned ringio_core_inflight(const struct ringio_core *c);

/* Fill supported[op] for op < n via the backend probe; see backend.h. */
int ringio_core_probe_opcodes(struct ringio_core *c, uint8_t *supported, unsigned n);

#ifdef __cplusplus
}
#endif
#endif /* RINGIO_CORE_H */
