/*
 * ringio backend contract.
 *
 * The interface between the core and every backend is the kernel's own
 * struct io_uring_sqe / struct io_uring_cqe.  The core prepares SQEs in slots
 * handed out by the backend, makes them visible with flush(), and hands them
 * to the "kernel" with enter().  Completions are read with peek_cqes() and
 * released with advance().  A backend therefore sees exactly what the kernel
 * would see, whether it is liburing (backends/uring) or a simulation.
 *
 * Threading: every function except enter() and wake() is called with the
 * owning ring's lock held (the core is not internally locked).  enter() may
 * run concurrently with one locked caller: it must not touch userspace SQ
 * state beyond what the kernel itself reads, and for the uring backend it is
 * a plain io_uring_enter(2).  Only one thread calls enter() with
 * min_complete > 0 at a time (the core's wait lock guarantees this).
 *
 * Errors are returned as -errno; nothing here sets errno for the caller.
 */
#ifndef RINGIO_BACKEND_H
#define RINGIO_BACKEND_H

#include <linux/io_uring.h>
#include <stdbool.h>
#include <sys/uio.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The contract is the kernel ABI: pin the layouts we rely on. */
_Static_assert(sizeof(struct io_uring_sqe) == 64, "io_uring_sqe must be 64 bytes");
_Static_assert(sizeof(struct io_uring_cqe) == 16, "io_uring_cqe must be 16 bytes");
_Static_assert(offsetof(struct io_uring_sqe, user_data) == 32, "sqe.user_data offset");
_Static_assert(offsetof(struct io_uring_cqe, res) == 8, "cqe.res offset");
_Static_assert(offsetof(struct io_uring_cqe, flags) == 12, "cqe.flags offset");
_Static_assert(sizeof(struct io_uring_buf) == 16, "io_uring_buf must be 16 bytes");

/* Flags for enter(). */
#define RINGIO_ENTER_GETEVENTS (1u << 0) /* wait for min_complete / flush CQ overflow */

/* Setup parameters common to all backends. */
struct ringio_setup {
    unsigned entries;    /* requested SQ depth (rounded up by the backend) */
    unsigned cq_entries; /* 0: backend default (2 x SQ) */
    unsigned flags;      /* IORING_SETUP_* */
};

struct ringio_backend;

struct ringio_backend_ops {
    const char *name;

    /* A free SQE (zeroed by the caller's prep), or NULL when the SQ is full. */
    struct io_uring_sqe *(*get_sqe)(struct ringio_backend *b);

    /* Number of SQE slots that get_sqe() can still hand out. */
    unsigned (*sq_space_left)(struct ringio_backend *b);

    /* Publish every SQE obtained so far (store the SQ tail).  Returns how
     * many published SQEs the kernel has not consumed yet. */
    unsigned (*flush)(struct ringio_backend *b);

    /* io_uring_enter: consume up to to_submit published SQEs and, with
     * RINGIO_ENTER_GETEVENTS, wait until min_complete CQEs are available or
     * timeout_ns passes (timeout_ns < 0: no timeout).  Returns the number of
     * SQEs consumed, or -ETIME on timeout, -EINTR, -EBUSY/-EAGAIN when the
     * kernel refuses to take SQEs until completions are reaped. */
    int (*enter)(struct ringio_backend *b, unsigned to_submit, unsigned min_complete,
                 int64_t timeout_ns, unsigned flags);

    /* Up to max pointers to available CQEs, oldest first; valid until advance(). */
    unsigned (*peek_cqes)(struct ringio_backend *b, struct io_uring_cqe **cqes, unsigned max);

    /* Mark n CQEs returned by peek_cqes() as consumed. */
    void (*advance)(struct ringio_backend *b, unsigned n);

    /* True when completions wait in the kernel's overflow backlog
     * (IORING_SQ_CQ_OVERFLOW); enter(GETEVENTS) moves them into the CQ ring. */
    bool (*cq_overflow_pending)(struct ringio_backend *b);

    /* Map and register a provided-buffer ring of `entries` (power of two)
     * io_uring_buf slots for group bgid.  *out points at the shared ring. */
    int (*register_buf_ring)(struct ringio_backend *b, unsigned entries, unsigned bgid,
                             struct io_uring_buf_ring **out);
    /* Unregister and unmap a ring obtained from register_buf_ring(). */
    int (*unregister_buf_ring)(struct ringio_backend *b, struct io_uring_buf_ring *br,
                               unsigned entries, unsigned bgid);

    /* Fill supported[op] (0/1) for op < n; returns the number of opcodes the
     * backend knows (IORING_OP_LAST of the kernel), or -errno. */
    int (*probe_opcodes)(struct ringio_backend *b, uint8_t *supported, unsigned n);

    /* Release everything; the kernel cancels what is still in flight. */
    void (*destroy)(struct ringio_backend *b);

    /* Optional (NULL: -EOPNOTSUPP).  A fixed-file table of n slots (fds[i] or
     * -1 for an empty slot), as IORING_REGISTER_FILES; n == 0 unregisters.
     * SQEs with IOSQE_FIXED_FILE then carry a slot index in sqe->fd. */
    int (*register_files)(struct ringio_backend *b, const int *fds, unsigned n);

    /* Optional (NULL: -EOPNOTSUPP).  Fixed buffers, as
     * IORING_REGISTER_BUFFERS; n == 0 unregisters.  READ_FIXED/WRITE_FIXED
     * SQEs name one with sqe->buf_index. */
    int (*register_buffers)(struct ringio_backend *b, const struct iovec *iov, unsigned n);

    /* Optional (NULL: ignored).  Called by the core for every operation it
     * prepares, after the SQE is written and before it is published: the
     * token (the SQE's user_data) and the caller's tag for it (struct
     * ringio_owner.tag, the Python user_data).  The simulated kernel keys its
     * scripted holds and forced results on the tag; the kernel never sees it. */
    void (*annotate)(struct ringio_backend *b, uint64_t token, uint64_t tag);
};

/* Every backend embeds this header first. */
struct ringio_backend {
    const struct ringio_backend_ops *ops;
    int fd;              /* ring fd, or -1 */
    unsigned features;   /* IORING_FEAT_* */
    unsigned sq_entries; /* actual sizes after setup */
    unsigned cq_entries;
    unsigned setup_flags;
};

/* backends/uring: create a ring on liburing.  -errno on failure (EPERM:
 * blocked by seccomp or kernel.io_uring_disabled, ENOMEM: RLIMIT_MEMLOCK,
 * ENOSYS: no io_uring in this kernel, EINVAL: bad sizes or flags). */
int ringio_uring_backend_new(const struct ringio_setup *setup, struct ringio_backend **out);

/* Human-readable liburing version the uring backend was compiled against. */
const char *ringio_uring_backend_version(void);

#ifdef __cplusplus
}
#endif
#endif /* RINGIO_BACKEND_H */
