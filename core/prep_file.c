/*
 * File operations: fill the SQE as the kernel ABI (and liburing's
 * io_uring_prep_* helpers) would; see prep.c for the shared conventions.
 * Pointers (paths, buffers, iovecs, the statx buffer) must stay valid until
 * the owner is released.
 */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>

#define BEGIN(opcode)                                                  \
    uint32_t idx;                                                      \
    struct io_uring_sqe *sqe;                                          \
    int rc_ = op_begin(c, o, (opcode), token, &idx, &sqe);             \
    if (rc_ < 0)                                                       \
        return rc_;                                                    \
    struct ringio_op *op = &c->ops[idx];                               \
    (void)op

#define COMMIT() return op_commit(c, idx, sqe, token)

static void set_rw(struct io_uring_sqe *sqe, int fd, const void *addr, uint32_t len,
                   uint64_t off)
{
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)addr;
    sqe->len = len;
    sqe->off = off;
}

/* An fd operand: a descriptor (>= 0) or, with RINGIO_OPT_FIXED_FILE, a slot
 * of the registered file table. */
static int check_opts(int fd, unsigned opts)
{
    if (fd < 0)
        return -EBADF;
    return (opts & ~RINGIO_OPT_FIXED_FILE) ? -EINVAL : 0;
}

static void apply_opts(struct io_uring_sqe *sqe, unsigned opts)
{
    if (opts & RINGIO_OPT_FIXED_FILE)
        sqe->flags |= IOSQE_FIXED_FILE;
}

/* A directory fd operand: AT_FDCWD or a descriptor. */
static int check_dfd(int dfd)
{
    return (dfd < 0 && dfd != AT_FDCWD) ? -EBADF : 0;
}

int ringio_submit_openat(struct ringio_core *c, struct ringio_owner *o, int dfd,
                         const char *path, int flags, unsigned mode, unsigned file_index,
                         uint64_t *token)
{
    if (check_dfd(dfd) < 0)
        return -EBADF;
    if (!path)
        return -EINVAL;
    BEGIN(IORING_OP_OPENAT);
    set_rw(sqe, dfd, path, mode, 0);
    sqe->open_flags = (uint32_t)flags;
    /* file_index is the slot + 1 (0 = a normal fd), or IORING_FILE_INDEX_ALLOC. */
    sqe->file_index = file_index;
    op->direct = file_index != 0;
    COMMIT();
}

static int prep_rw(struct ringio_core *c, struct ringio_owner *o, uint8_t opcode, int fd,
                   const void *addr, size_t len, uint64_t off, unsigned opts, int buf_index,
                   uint64_t *token)
{
    int rc = check_opts(fd, opts);
    if (rc < 0)
        return rc;
    /* The SQE carries a 32-bit length: refuse rather than truncate. */
    if (len > UINT32_MAX || (!addr && len))
        return -EINVAL;
    if (buf_index > UINT16_MAX)
        return -EINVAL;
    BEGIN(opcode);
    set_rw(sqe, fd, addr, (uint32_t)len, off);
    apply_opts(sqe, opts);
    if (buf_index >= 0)
        sqe->buf_index = (uint16_t)buf_index;
    COMMIT();
}

int ringio_submit_read(struct ringio_core *c, struct ringio_owner *o, int fd, void *buf,
                       size_t len, uint64_t off, unsigned opts, uint64_t *token)
{
    return prep_rw(c, o, IORING_OP_READ, fd, buf, len, off, opts, -1, token);
}

int ringio_submit_write(struct ringio_core *c, struct ringio_owner *o, int fd, const void *buf,
                        size_t len, uint64_t off, unsigned opts, uint64_t *token)
{
    return prep_rw(c, o, IORING_OP_WRITE, fd, buf, len, off, opts, -1, token);
}

int ringio_submit_read_fixed(struct ringio_core *c, struct ringio_owner *o, int fd, void *buf,
                             size_t len, uint64_t off, unsigned buf_index, unsigned opts,
                             uint64_t *token)
{
    if (buf_index > UINT16_MAX)
        return -EINVAL;
    return prep_rw(c, o, IORING_OP_READ_FIXED, fd, buf, len, off, opts, (int)buf_index, token);
}

int ringio_submit_write_fixed(struct ringio_core *c, struct ringio_owner *o, int fd,
                              const void *buf, size_t len, uint64_t off, unsigned buf_index,
                              unsigned opts, uint64_t *token)
{
    if (buf_index > UINT16_MAX)
        return -EINVAL;
    return prep_rw(c, o, IORING_OP_WRITE_FIXED, fd, buf, len, off, opts, (int)buf_index,
                   token);
}

static int prep_vec(struct ringio_core *c, struct ringio_owner *o, uint8_t opcode, int fd,
                    const struct iovec *iov, unsigned iovcnt, uint64_t off, unsigned opts,
                    uint64_t *token)
{
    int rc = check_opts(fd, opts);
    if (rc < 0)
        return rc;
    if ((!iov && iovcnt) || iovcnt > IOV_MAX)
        return -EINVAL;
    BEGIN(opcode);
    set_rw(sqe, fd, iov, iovcnt, off);
    apply_opts(sqe, opts);
    COMMIT();
}

int ringio_submit_readv(struct ringio_core *c, struct ringio_owner *o, int fd,
                        const struct iovec *iov, unsigned iovcnt, uint64_t off, unsigned opts,
                        uint64_t *token)
{
    return prep_vec(c, o, IORING_OP_READV, fd, iov, iovcnt, off, opts, token);
}

int ringio_submit_writev(struct ringio_core *c, struct ringio_owner *o, int fd,
                         const struct iovec *iov, unsigned iovcnt, uint64_t off, unsigned opts,
                         uint64_t *token)
{
    return prep_vec(c, o, IORING_OP_WRITEV, fd, iov, iovcnt, off, opts, token);
}

int ringio_submit_fsync(struct ringio_core *c, struct ringio_owner *o, int fd,
                        unsigned fsync_flags, unsigned opts, uint64_t *token)
{
    int rc = check_opts(fd, opts);
    if (rc < 0)
        return rc;
    if (fsync_flags & ~(unsigned)IORING_FSYNC_DATASYNC)
        return -EINVAL;
    BEGIN(IORING_OP_FSYNC);
    sqe->fd = fd;
    sqe->fsync_flags = fsync_flags;
    apply_opts(sqe, opts);
    COMMIT();
}

int ringio_submit_fallocate(struct ringio_core *c, struct ringio_owner *o, int fd, int mode,
                            uint64_t off, uint64_t len, unsigned opts, uint64_t *token)
{
    int rc = check_opts(fd, opts);
    if (rc < 0)
        return rc;
    if (mode < 0)
        return -EINVAL;
    BEGIN(IORING_OP_FALLOCATE);
    /* The kernel ABI: len = mode, off = offset, addr = length. */
    sqe->fd = fd;
    sqe->len = (uint32_t)mode;
    sqe->off = off;
    sqe->addr = len;
    apply_opts(sqe, opts);
    COMMIT();
}

int ringio_submit_statx(struct ringio_core *c, struct ringio_owner *o, int dfd,
                        const char *path, int flags, unsigned mask, struct statx *out,
                        uint64_t *token)
{
    if (check_dfd(dfd) < 0)
        return -EBADF;
    if (!path || !out)
        return -EINVAL;
    BEGIN(IORING_OP_STATX);
    /* The kernel ABI: len = mask, off (addr2) = the statx buffer. */
    set_rw(sqe, dfd, path, mask, (uint64_t)(uintptr_t)out);
    sqe->statx_flags = (uint32_t)flags;
    COMMIT();
}

int ringio_submit_close_direct(struct ringio_core *c, struct ringio_owner *o, unsigned slot,
                               uint64_t *token)
{
    if (slot >= UINT32_MAX - 1)
        return -EINVAL;
    BEGIN(IORING_OP_CLOSE);
    sqe->fd = 0; /* the kernel wants fd 0 with a file_index */
    sqe->file_index = slot + 1;
    COMMIT();
}

int ringio_submit_unlinkat(struct ringio_core *c, struct ringio_owner *o, int dfd,
                           const char *path, int flags, uint64_t *token)
{
    if (check_dfd(dfd) < 0)
        return -EBADF;
    if (!path)
        return -EINVAL;
    BEGIN(IORING_OP_UNLINKAT);
    set_rw(sqe, dfd, path, 0, 0);
    sqe->unlink_flags = (uint32_t)flags;
    COMMIT();
}

int ringio_submit_renameat(struct ringio_core *c, struct ringio_owner *o, int olddfd,
                           const char *oldpath, int newdfd, const char *newpath, unsigned flags,
                           uint64_t *token)
{
    if (check_dfd(olddfd) < 0 || check_dfd(newdfd) < 0)
        return -EBADF;
    if (!oldpath || !newpath)
        return -EINVAL;
    BEGIN(IORING_OP_RENAMEAT);
    /* The kernel ABI: len = newdfd, off (addr2) = newpath. */
    set_rw(sqe, olddfd, oldpath, (uint32_t)newdfd, (uint64_t)(uintptr_t)newpath);
    sqe->rename_flags = flags;
    COMMIT();
}

int ringio_submit_mkdirat(struct ringio_core *c, struct ringio_owner *o, int dfd,
                          const char *path, unsigned mode, uint64_t *token)
{
    if (check_dfd(dfd) < 0)
        return -EBADF;
    if (!path)
        return -EINVAL;
    BEGIN(IORING_OP_MKDIRAT);
    set_rw(sqe, dfd, path, mode, 0);
    COMMIT();
}

/* ---- registration -------------------------------------------------------- */

int ringio_core_register_files(struct ringio_core *c, const int *fds, unsigned n)
{
    if (c->closed)
        return -EBADF;
    if (n && !fds)
        return -EINVAL;
    if (!c->b->ops->register_files)
        return -EOPNOTSUPP;
    return c->b->ops->register_files(c->b, fds, n);
}

int ringio_core_register_buffers(struct ringio_core *c, const struct iovec *iov, unsigned n)
{
    if (c->closed)
        return -EBADF;
    if (n && !iov)
        return -EINVAL;
    if (!c->b->ops->register_buffers)
        return -EOPNOTSUPP;
    return c->b->ops->register_buffers(c->b, iov, n);
}
