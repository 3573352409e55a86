/*
 * File operations of the simulated kernel.  Regular files and block devices
 * never block, so they are read and written directly (pread/pwrite family,
 * honouring RWF_* flags); anything else (pipes, ttys, eventfds) is polled
 * first and waited for, as the kernel's internal poll would.
 */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h> /* renameat2 */
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static bool finish(struct sim *s, struct sop *op, int32_t res)
{
    sim_complete(s, op, res, 0);
    return true;
}

static int32_t ret(ssize_t n)
{
    return n < 0 ? -errno : (int32_t)n;
}

/* True when fd can be read/written without blocking; otherwise the op now
 * waits for `events`.  Regular files and block devices are always ready. */
static bool ready_or_wait(struct sim *s, struct sop *op, int fd, short events, int32_t *err)
{
    struct stat st;
    *err = 0;
    if (fstat(fd, &st) < 0) {
        *err = -errno;
        return true;
    }
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
        return true;
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 0) > 0)
        return true;
    sim_wait_fd(s, op, fd, events);
    return false;
}

/* A fixed buffer must contain [addr, addr + len). */
static int32_t check_fixed(struct sim *s, const struct sop *op)
{
    unsigned i = op->sqe.buf_index;
    if (i >= s->nbufs)
        return -EFAULT;
    uintptr_t a = (uintptr_t)op->sqe.addr, base = (uintptr_t)s->bufs[i].iov_base;
    if (a < base || a + op->sqe.len > base + s->bufs[i].iov_len || a + op->sqe.len < a)
        return -EFAULT;
    return 0;
}

bool sim_op_rw(struct sim *s, struct sop *op, int fd)
{
    uint8_t opc = op->sqe.opcode;
    bool is_read = opc == IORING_OP_READ || opc == IORING_OP_READV || opc == IORING_OP_READ_FIXED;
    bool vec = opc == IORING_OP_READV || opc == IORING_OP_WRITEV;
    if (opc == IORING_OP_READ_FIXED || opc == IORING_OP_WRITE_FIXED) {
        int32_t e = check_fixed(s, op);
        if (e < 0)
            return finish(s, op, e);
    }
    int32_t err;
    if (!ready_or_wait(s, op, fd, is_read ? POLLIN : POLLOUT, &err))
        return false;
    if (err < 0)
        return finish(s, op, err);
    struct iovec one;
    const struct iovec *iov = &one;
    int cnt = 1;
    if (vec) {
        iov = (const struct iovec *)(uintptr_t)op->sqe.addr;
        cnt = (int)op->sqe.len;
        if (!iov && cnt)
            return finish(s, op, -EFAULT);
    } else {
        one.iov_base = (void *)(uintptr_t)op->sqe.addr;
        one.iov_len = op->sqe.len;
        enum ringio_sim_fault f = is_read ? RINGIO_SIM_SHORT_READ : RINGIO_SIM_SHORT_WRITE;
        if (one.iov_len > 1 && sim_fault(s, f))
            one.iov_len = 1 + sim_decide(s, D_SHORT_LEN, (uint32_t)one.iov_len - 1);
    }
    /* off == -1 (as u64): the file position, like read(2)/write(2). */
    off_t off = op->sqe.off == UINT64_MAX ? -1 : (off_t)op->sqe.off;
    int rwf = (int)op->sqe.rw_flags;
    ssize_t n = is_read ? preadv2(fd, iov, cnt, off, rwf) : pwritev2(fd, iov, cnt, off, rwf);
    if (n < 0 && (errno == EAGAIN) && !(rwf & RWF_NOWAIT)) {
        sim_wait_fd(s, op, fd, is_read ? POLLIN : POLLOUT);
        return false;
    }
    return finish(s, op, ret(n));
}

bool sim_op_openat(struct sim *s, struct sop *op, int unused)
{
    (void)unused; /* sqe->fd is a directory fd */
    const char *path = (const char *)(uintptr_t)op->sqe.addr;
    if (!path)
        return finish(s, op, -EFAULT);
    int fd = openat(op->sqe.fd, path, (int)op->sqe.open_flags, (mode_t)op->sqe.len);
    if (fd < 0)
        return finish(s, op, -errno);
    return finish(s, op, op->sqe.file_index ? sim_install_fixed(s, op, fd) : fd);
}

bool sim_op_path(struct sim *s, struct sop *op, int unused)
{
    (void)unused; /* sqe->fd is a directory fd */
    const char *path = (const char *)(uintptr_t)op->sqe.addr;
    if (!path)
        return finish(s, op, -EFAULT);
    int rc;
    switch (op->sqe.opcode) {
    case IORING_OP_UNLINKAT:
        rc = unlinkat(op->sqe.fd, path, (int)op->sqe.unlink_flags);
        break;
    case IORING_OP_MKDIRAT:
        rc = mkdirat(op->sqe.fd, path, (mode_t)op->sqe.len);
        break;
    case IORING_OP_RENAMEAT: {
        const char *to = (const char *)(uintptr_t)op->sqe.addr2;
        if (!to)
            return finish(s, op, -EFAULT);
        rc = renameat2(op->sqe.fd, path, (int)op->sqe.len, to, op->sqe.rename_flags);
        break;
    }
    default: /* STATX */
        rc = statx(op->sqe.fd, path, (int)op->sqe.statx_flags, op->sqe.len,
                   (struct statx *)(uintptr_t)op->sqe.addr2);
        break;
    }
    return finish(s, op, rc < 0 ? -errno : 0);
}

bool sim_op_fsync(struct sim *s, struct sop *op, int fd)
{
    bool data = (op->sqe.fsync_flags & IORING_FSYNC_DATASYNC) != 0;
    return finish(s, op, (data ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0);
}

bool sim_op_fallocate(struct sim *s, struct sop *op, int fd)
{
    int rc = fallocate(fd, (int)op->sqe.len, (off_t)op->sqe.off, (off_t)op->sqe.addr);
    return finish(s, op, rc < 0 ? -errno : 0);
}
