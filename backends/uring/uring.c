/*
 * ringio uring backend: the backend contract (ringio/backend.h) on liburing.
 *
 * liburing is used for ring setup/teardown, SQE allocation, registration and
 * probing.  Publishing SQEs (flush), entering the kernel (enter) and reading
 * CQEs (peek_cqes) are written here against the public struct io_uring
 * fields, because the contract splits them differently from liburing:
 * flush() never enters the kernel, enter() is only the syscall (it may run
 * concurrently with a locked submitter), and peek_cqes() never enters.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll; meson passes -D_GNU_SOURCE too */
#endif

#include "compat.h" /* first: brings <liburing.h> before <linux/io_uring.h> */

#include "ringio/backend.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Setup flags whose ABI bits we must refuse even when the headers we build
 * against are too old to name them (the values are kernel ABI). */
#define RINGIO_SETUP_REGISTERED_FD_ONLY (1u << 15) /* no ring fd to poll/enter */
#define RINGIO_SETUP_CQE_MIXED (1u << 18)          /* 32-byte CQEs in the ring */
#define RINGIO_SETUP_SQE_MIXED (1u << 19)          /* 128-byte SQEs in the ring */
#define RINGIO_SETUP_SQ_REWIND (1u << 20)          /* kernel ignores head/tail */

#define RINGIO_SETUP_REFUSED                                                           \
    (IORING_SETUP_SQE128 | IORING_SETUP_CQE32 | RINGIO_SETUP_REGISTERED_FD_ONLY |        \
     RINGIO_SETUP_CQE_MIXED | RINGIO_SETUP_SQE_MIXED | RINGIO_SETUP_SQ_REWIND)

#ifdef IORING_SETUP_REGISTERED_FD_ONLY
_Static_assert(IORING_SETUP_REGISTERED_FD_ONLY == RINGIO_SETUP_REGISTERED_FD_ONLY, "ABI bit");
#endif
#ifdef IORING_SETUP_CQE_MIXED
_Static_assert(IORING_SETUP_CQE_MIXED == RINGIO_SETUP_CQE_MIXED, "ABI bit");
#endif
#ifdef IORING_SETUP_SQE_MIXED
_Static_assert(IORING_SETUP_SQE_MIXED == RINGIO_SETUP_SQE_MIXED, "ABI bit");
#endif
#ifdef IORING_SETUP_SQ_REWIND
_Static_assert(IORING_SETUP_SQ_REWIND == RINGIO_SETUP_SQ_REWIND, "ABI bit");
#endif

/* A registered provided-buffer ring, remembered so that unregister can
 * validate its arguments and destroy() can unmap what the core left. */
struct uring_buf_ring {
    struct uring_buf_ring *next;
    struct io_uring_buf_ring *br;
    unsigned entries;
    unsigned bgid;
};

struct uring_backend {
    struct ringio_backend base; /* first: the contract pointer is a plain cast */
    struct io_uring ring;
    struct uring_buf_ring *buf_rings;
};

static struct uring_backend *to_uring(struct ringio_backend *b)
{
    return (struct uring_backend *)b;
}

/* ---- SQ ------------------------------------------------------------- */

static struct io_uring_sqe *uring_get_sqe(struct ringio_backend *b)
{
    return io_uring_get_sqe(&to_uring(b)->ring);
}

static unsigned uring_sq_space_left(struct ringio_backend *b)
{
    return io_uring_sq_space_left(&to_uring(b)->ring);
}

/*
 * Our own __io_uring_flush_sq (not exported by liburing 2.3).  sqe_tail is
 * the next slot get_sqe() hands out; sqe_head is the tail last published
 * (liburing's own convention, so mixing with liburing calls stays coherent).
 * The SQ index array, if the ring has one, is the identity map filled by
 * io_uring_queue_init_params(), so only the tail needs storing.
 */
static unsigned uring_flush(struct ringio_backend *b)
{
    struct io_uring_sq *sq = &to_uring(b)->ring.sq;
    unsigned tail = sq->sqe_tail;

    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        /* Release: every SQE written by prep is visible before the new tail,
         * whether the reader is io_uring_enter on another CPU (a waiter
         * thread) or the SQPOLL kernel thread, which polls the tail. */
        io_uring_smp_store_release(sq->ktail, tail);
    }
    /* The kernel advances khead as it consumes SQEs (concurrently under
     * SQPOLL); acquire so that a slot it has released is truly done with. */
    return tail - io_uring_smp_load_acquire(sq->khead);
}

/* ---- enter ---------------------------------------------------------- */

/* The raw syscall: liburing's wrappers differ across versions in how they
 * report errors, and io_uring_submit/wait touch userspace ring state. */
static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                     const void *arg, size_t argsz)
{
    long r = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);

    return r < 0 ? -errno : (int)r;
}

static struct timespec ns_to_timespec(int64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000),
                             .tv_nsec = (long)(ns % 1000000000)};
}

/*
 * SQPOLL: the kernel thread picks up the published tail by itself unless it
 * went idle, in which case it set IORING_SQ_NEED_WAKEUP.  Full barrier
 * between our tail store (flush) and the flag load, pairing with the
 * kernel's barrier between setting the flag and re-reading the tail: either
 * it sees our tail or we see the flag (the Dekker pattern liburing uses).
 */
static bool sqpoll_needs_wakeup(struct uring_backend *u)
{
    io_uring_smp_mb();
    return IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_NEED_WAKEUP;
}

/* GETEVENTS with a timeout on kernels without IORING_FEAT_EXT_ARG (< 5.11):
 * submit (and flush the overflow backlog) without waiting, then poll the
 * ring fd, which is readable while CQEs (or overflowed ones) are pending.
 * Limitation: this waits for at least one CQE, not for min_complete. */
static int enter_poll_timeout(struct uring_backend *u, unsigned to_submit, unsigned min_complete,
                              int64_t timeout_ns, unsigned kflags)
{
    int fd = u->ring.ring_fd;
    int submitted = sys_enter(fd, to_submit, 0, kflags, NULL, 0);

    if (submitted < 0 || min_complete == 0)
        return submitted;

    struct timespec ts = ns_to_timespec(timeout_ns);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = ppoll(&pfd, 1, &ts, NULL);

    /* As the kernel does: SQEs consumed outrank a wait error or timeout. */
    if (submitted > 0)
        return submitted;
    if (r < 0)
        return -errno;
    return r == 0 ? -ETIME : 0;
}

static int uring_enter(struct ringio_backend *b, unsigned to_submit, unsigned min_complete,
                       int64_t timeout_ns, unsigned flags)
{
    struct uring_backend *u = to_uring(b);
    int fd = u->ring.ring_fd;
    unsigned kflags = 0;

    if (u->ring.flags & IORING_SETUP_SQPOLL) {
        if (sqpoll_needs_wakeup(u))
            kflags |= IORING_ENTER_SQ_WAKEUP;
        /* The kernel ignores to_submit under SQPOLL and returns it as is:
         * with the thread awake and nothing to wait for, skip the syscall. */
        else if (!(flags & RINGIO_ENTER_GETEVENTS))
            return (int)to_submit;
    }
    if (!(flags & RINGIO_ENTER_GETEVENTS))
        return sys_enter(fd, to_submit, 0, kflags, NULL, 0);

    kflags |= IORING_ENTER_GETEVENTS;
    if (timeout_ns < 0)
        return sys_enter(fd, to_submit, min_complete, kflags, NULL, _NSIG / 8);

    /* b->features is read here on purpose (not a copy): a test may clear
     * IORING_FEAT_EXT_ARG to exercise the poll fallback. */
    if (!(b->features & IORING_FEAT_EXT_ARG))
        return enter_poll_timeout(u, to_submit, min_complete, timeout_ns, kflags);

    struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
                                   .tv_nsec = timeout_ns % 1000000000};
    struct io_uring_getevents_arg arg = {
        .sigmask = 0,
        .sigmask_sz = _NSIG / 8,
        .ts = (uint64_t)(uintptr_t)&ts,
    };
    return sys_enter(fd, to_submit, min_complete, kflags | IORING_ENTER_EXT_ARG, &arg,
                     sizeof(arg));
}

/* ---- CQ ------------------------------------------------------------- */

static unsigned uring_peek_cqes(struct ringio_backend *b, struct io_uring_cqe **cqes,
                                unsigned max)
{
    struct io_uring_cq *cq = &to_uring(b)->ring.cq;
    /* Only we store khead (under the ring lock); the kernel only reads it. */
    unsigned head = IO_URING_READ_ONCE(*cq->khead);
    /* Acquire pairs with the kernel's release of ktail: the CQE contents it
     * wrote before publishing are visible to the reads below. */
    unsigned ready = io_uring_smp_load_acquire(cq->ktail) - head;
    unsigned n = ready < max ? ready : max;

    /* CQE32 rings are refused at setup, so a slot is one io_uring_cqe. */
    for (unsigned i = 0; i < n; i++)
        cqes[i] = &cq->cqes[(head + i) & cq->ring_mask];
    return n;
}

static void uring_advance(struct ringio_backend *b, unsigned n)
{
    /* Store-release of khead: our reads of the CQEs finish before the kernel
     * may reuse their slots. */
    io_uring_cq_advance(&to_uring(b)->ring, n);
}

static bool uring_cq_overflow_pending(struct ringio_backend *b)
{
    /* A stale read is harmless: a missed flag is caught by the next
     * enter(GETEVENTS), which flushes the backlog before it waits. */
    return IO_URING_READ_ONCE(*to_uring(b)->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW;
}

/* ---- provided-buffer rings ------------------------------------------ */

static int uring_register_buf_ring(struct ringio_backend *b, unsigned entries, unsigned bgid,
                                   struct io_uring_buf_ring **out)
{
    struct uring_backend *u = to_uring(b);
    struct uring_buf_ring *node;
    int err;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!ringio_buf_ring_entries_valid(entries) || bgid > UINT16_MAX)
        return -EINVAL;

    node = calloc(1, sizeof(*node));
    if (!node)
        return -ENOMEM;
    node->br = ringio_setup_buf_ring(&u->ring, entries, bgid, &err);
    if (!node->br) {
        free(node);
        return err;
    }
    node->entries = entries;
    node->bgid = bgid;
    node->next = u->buf_rings;
    u->buf_rings = node;
    *out = node->br;
    return 0;
}

/* Only rings this backend registered are unmapped: a stale or repeated
 * pointer gets -EINVAL instead of munmap()ing someone else's memory. */
static int uring_unregister_buf_ring(struct ringio_backend *b, struct io_uring_buf_ring *br,
                                     unsigned entries, unsigned bgid)
{
    struct uring_backend *u = to_uring(b);
    struct uring_buf_ring **link = &u->buf_rings;

    while (*link && (*link)->br != br)
        link = &(*link)->next;

    struct uring_buf_ring *node = *link;
    if (!br || !node || node->entries != entries || node->bgid != bgid)
        return -EINVAL;

    /* On failure the ring stays mapped and listed; destroy() unmaps it. */
    int ret = ringio_free_buf_ring(&u->ring, br, entries, bgid);
    if (ret < 0)
        return ret;
    *link = node->next;
    free(node);
    return 0;
}

/* ---- probe ---------------------------------------------------------- */

/* io_uring_register_probe rather than io_uring_get_probe_ring: the latter
 * turns every failure into NULL, and the contract wants -errno. */
static int uring_probe_opcodes(struct ringio_backend *b, uint8_t *supported, unsigned n)
{
    enum { NOPS = 256 }; /* opcodes are a __u8 */
    struct io_uring_probe *probe;
    int ret;

    if (n && !supported)
        return -EINVAL;
    probe = calloc(1, sizeof(*probe) + NOPS * sizeof(struct io_uring_probe_op));
    if (!probe)
        return -ENOMEM;
    ret = io_uring_register_probe(&to_uring(b)->ring, probe, NOPS);
    if (ret < 0) {
        free(probe);
        return ret;
    }
    for (unsigned op = 0; op < n; op++)
        supported[op] = op < NOPS && io_uring_opcode_supported(probe, (int)op);
    ret = probe->last_op + 1;
    free(probe);
    return ret;
}

/* ---- registered files and buffers ----------------------------------- */

/* n == 0 unregisters; -ENXIO (nothing registered) is then success.  A table
 * may hold -1 for empty slots (sparse), which openat with a file_index or
 * IORING_FILE_INDEX_ALLOC fills.  Replacing a table unregisters the old one
 * first, as the kernel refuses a second registration with -EBUSY. */
static int uring_register_files(struct ringio_backend *b, const int *fds, unsigned n)
{
    struct io_uring *ring = &to_uring(b)->ring;
    int ret = io_uring_unregister_files(ring);

    if (ret < 0 && ret != -ENXIO)
        return ret;
    if (n == 0)
        return 0;
    return io_uring_register_files(ring, fds, n);
}

/* -ENOMEM here is almost always RLIMIT_MEMLOCK: the kernel pins the pages and
 * charges them to the locked-memory limit (kernels before 5.12 always did;
 * newer ones when the ring's user lacks CAP_IPC_LOCK). */
static int uring_register_buffers(struct ringio_backend *b, const struct iovec *iov, unsigned n)
{
    struct io_uring *ring = &to_uring(b)->ring;
    int ret = io_uring_unregister_buffers(ring);

    if (ret < 0 && ret != -ENXIO)
        return ret;
    if (n == 0)
        return 0;
    return io_uring_register_buffers(ring, iov, n);
}

/* ---- lifecycle ------------------------------------------------------ */

static void uring_destroy(struct ringio_backend *b)
{
    struct uring_backend *u = to_uring(b);

    if (!u)
        return;
    /* Closing the ring drops the kernel's buffer-ring registrations (their
     * pages stay pinned until the ring is torn down, so unmapping after is
     * safe); then unmap whatever the core did not unregister. */
    io_uring_queue_exit(&u->ring);
    while (u->buf_rings) {
        struct uring_buf_ring *node = u->buf_rings;

        u->buf_rings = node->next;
        ringio_unmap_buf_ring(node->br, node->entries);
        free(node);
    }
    free(u);
}

static const struct ringio_backend_ops uring_ops = {
    .name = "uring",
    .get_sqe = uring_get_sqe,
    .sq_space_left = uring_sq_space_left,
    .flush = uring_flush,
    .enter = uring_enter,
    .peek_cqes = uring_peek_cqes,
    .advance = uring_advance,
    .cq_overflow_pending = uring_cq_overflow_pending,
    .register_buf_ring = uring_register_buf_ring,
    .unregister_buf_ring = uring_unregister_buf_ring,
    .probe_opcodes = uring_probe_opcodes,
    .destroy = uring_destroy,
    .register_files = uring_register_files,
    .register_buffers = uring_register_buffers,
};

int ringio_uring_backend_new(const struct ringio_setup *setup, struct ringio_backend **out)
{
    struct io_uring_params p = {0};
    struct uring_backend *u;
    int ret;

    if (!out)
        return -EINVAL;
    *out = NULL;
    /* entries == 0 is refused here, not by the kernel; the refused flags
     * would break the 64-byte SQE / 16-byte CQE / ring-fd contract. */
    if (!setup || setup->entries == 0 || (setup->flags & RINGIO_SETUP_REFUSED))
        return -EINVAL;

    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;

    p.flags = setup->flags;
    if (setup->cq_entries != 0) {
        p.flags |= IORING_SETUP_CQSIZE;
        p.cq_entries = setup->cq_entries;
    }
    /* liburing >= 2.2 returns -errno as the kernel gave it and releases the
     * fd and mappings itself on failure. */
    ret = io_uring_queue_init_params(setup->entries, &u->ring, &p);
    if (ret < 0) {
        free(u);
        return ret;
    }

    u->base.ops = &uring_ops;
    u->base.fd = u->ring.ring_fd;
    u->base.features = p.features;
    u->base.sq_entries = u->ring.sq.ring_entries;
    u->base.cq_entries = u->ring.cq.ring_entries;
    /* ring.flags: what the kernel accepted, including flags a newer liburing
     * adds by itself (IORING_SETUP_NO_SQARRAY). */
    u->base.setup_flags = u->ring.flags;
    *out = &u->base;
    return 0;
}

const char *ringio_uring_backend_version(void)
{
    return RINGIO_LIBURING_VERSION_STRING;
}
