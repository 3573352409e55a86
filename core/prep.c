/*
 * One function per operation: fill the SQE exactly as the kernel ABI (and
 * liburing's io_uring_prep_* helpers) would.  The core never includes
 * liburing.h, so the encodings are spelled out here against
 * <linux/io_uring.h>.
 */
#include "internal.h"

#include <limits.h>

static void set_rw(struct io_uring_sqe *sqe, int fd, const void *addr, uint32_t len,
                   uint64_t off)
{
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)addr;
    sqe->len = len;
    sqe->off = off;
}

/* Every submit function is BEGIN (slot + SQE reserved, opcode set), a few
 * op-specific stores, COMMIT (token written, kernel entered per the mode).
 * Argument checks come before BEGIN so a refusal leaves nothing behind. */
#define BEGIN(opcode)                                                  \
    uint32_t idx;                                                      \
    struct io_uring_sqe *sqe;                                          \
    int rc_ = op_begin(c, o, (opcode), token, &idx, &sqe);             \
    if (rc_ < 0)                                                       \
        return rc_;                                                    \
    struct ringio_op *op = &c->ops[idx];                               \
    (void)op

#define COMMIT() return op_commit(c, idx, sqe, token)

static int check_fd(int fd)
{
    return fd < 0 ? -EBADF : 0;
}

static int check_len(size_t len)
{
    /* The SQE carries a 32-bit length: refuse rather than truncate. */
    return len > UINT32_MAX ? -EINVAL : 0;
}

int ringio_submit_nop(struct ringio_core *c, struct ringio_owner *o, uint64_t *token)
{
    BEGIN(IORING_OP_NOP);
    COMMIT();
}

int ringio_submit_timeout(struct ringio_core *c, struct ringio_owner *o,
                          struct __kernel_timespec *ts, unsigned count, unsigned flags,
                          uint64_t *token)
{
    if (!ts || ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
        return -EINVAL;
    BEGIN(IORING_OP_TIMEOUT);
    set_rw(sqe, -1, ts, 1, count);
    sqe->timeout_flags = flags;
    COMMIT();
}

int ringio_submit_cancel(struct ringio_core *c, struct ringio_owner *o, uint64_t target,
                         unsigned flags, uint64_t *token)
{
    BEGIN(IORING_OP_ASYNC_CANCEL);
    sqe->addr = target;
    sqe->cancel_flags = flags;
    COMMIT();
}

int ringio_submit_poll(struct ringio_core *c, struct ringio_owner *o, int fd, unsigned mask,
                       bool multishot, uint32_t first_sequence, uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    BEGIN(IORING_OP_POLL_ADD);
    sqe->fd = fd;
    /* poll32_events is little-endian in the ABI; liburing swaps on big-endian
     * hosts.  ringio targets little-endian Linux (x86_64, aarch64). */
    sqe->poll32_events = mask;
    if (multishot) {
        sqe->len = IORING_POLL_ADD_MULTI;
        op->multishot = true;
        op->sequence = first_sequence;
    }
    COMMIT();
}

int ringio_submit_recv(struct ringio_core *c, struct ringio_owner *o, int fd, void *buf,
                       size_t len, int msg_flags, uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    if (check_len(len) < 0 || (!buf && len))
        return -EINVAL;
    BEGIN(IORING_OP_RECV);
    set_rw(sqe, fd, buf, (uint32_t)len, 0);
    sqe->msg_flags = (uint32_t)msg_flags;
    COMMIT();
}

int ringio_submit_recv_multishot(struct ringio_core *c, struct ringio_owner *o, int fd,
                                 unsigned buf_size, unsigned buf_count, int msg_flags,
                                 uint32_t first_sequence, uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    if (!o || !token)
        return -EINVAL;
    if (c->closed)
        return -EBADF;
    struct ringio_bufring *r;
    int rc = bufring_create(c, buf_size, buf_count, &r);
    if (rc < 0)
        return rc;
    uint32_t idx;
    struct io_uring_sqe *sqe;
    rc = op_begin(c, o, IORING_OP_RECV, token, &idx, &sqe);
    if (rc < 0) {
        bufring_destroy(c, r);
        return rc;
    }
    struct ringio_op *op = &c->ops[idx];
    set_rw(sqe, fd, NULL, 0, 0);
    sqe->msg_flags = (uint32_t)msg_flags;
    sqe->ioprio |= IORING_RECV_MULTISHOT;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = r->bgid;
    op->multishot = true;
    op->sequence = first_sequence;
    op->bufring = r;
    return op_commit(c, idx, sqe, token);
}

static int prep_send(struct ringio_core *c, struct ringio_owner *o, uint8_t opcode, int fd,
                     const void *buf, size_t len, int msg_flags, unsigned zc_flags,
                     uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    if (check_len(len) < 0 || (!buf && len))
        return -EINVAL;
    BEGIN(opcode);
    set_rw(sqe, fd, buf, (uint32_t)len, 0);
    sqe->msg_flags = (uint32_t)msg_flags;
    if (opcode == IORING_OP_SEND_ZC) {
        sqe->ioprio = (uint16_t)zc_flags;
        op->zc = true;
        op->zc_report = (zc_flags & IORING_SEND_ZC_REPORT_USAGE) != 0;
    }
    COMMIT();
}

int ringio_submit_send(struct ringio_core *c, struct ringio_owner *o, int fd, const void *buf,
                       size_t len, int msg_flags, uint64_t *token)
{
    return prep_send(c, o, IORING_OP_SEND, fd, buf, len, msg_flags, 0, token);
}

int ringio_submit_send_zc(struct ringio_core *c, struct ringio_owner *o, int fd,
                          const void *buf, size_t len, int msg_flags, unsigned zc_flags,
                          uint64_t *token)
{
    if (zc_flags > UINT16_MAX)
        return -EINVAL;
    return prep_send(c, o, IORING_OP_SEND_ZC, fd, buf, len, msg_flags, zc_flags, token);
}

static int prep_msg(struct ringio_core *c, struct ringio_owner *o, uint8_t opcode, int fd,
                    const struct msghdr *msg, int msg_flags, unsigned zc_flags, uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    if (!msg || zc_flags > UINT16_MAX)
        return -EINVAL;
    BEGIN(opcode);
    set_rw(sqe, fd, msg, 1, 0);
    sqe->msg_flags = (uint32_t)msg_flags;
    if (opcode == IORING_OP_SENDMSG_ZC) {
        sqe->ioprio = (uint16_t)zc_flags;
        op->zc = true;
        op->zc_report = (zc_flags & IORING_SEND_ZC_REPORT_USAGE) != 0;
    }
    COMMIT();
}

int ringio_submit_recvmsg(struct ringio_core *c, struct ringio_owner *o, int fd,
                          struct msghdr *msg, int msg_flags, uint64_t *token)
{
    return prep_msg(c, o, IORING_OP_RECVMSG, fd, msg, msg_flags, 0, token);
}

int ringio_submit_sendmsg(struct ringio_core *c, struct ringio_owner *o, int fd,
                          const struct msghdr *msg, int msg_flags, uint64_t *token)
{
    return prep_msg(c, o, IORING_OP_SENDMSG, fd, msg, msg_flags, 0, token);
}

int ringio_submit_sendmsg_zc(struct ringio_core *c, struct ringio_owner *o, int fd,
                             const struct msghdr *msg, int msg_flags, unsigned zc_flags,
                             uint64_t *token)
{
    return prep_msg(c, o, IORING_OP_SENDMSG_ZC, fd, msg, msg_flags, zc_flags, token);
}

static int prep_accept(struct ringio_core *c, struct ringio_owner *o, int fd,
                       struct sockaddr *addr, socklen_t *addrlen, int flags, bool multishot,
                       uint32_t first_sequence, uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    if ((addr == NULL) != (addrlen == NULL))
        return -EINVAL;
    BEGIN(IORING_OP_ACCEPT);
    set_rw(sqe, fd, addr, 0, (uint64_t)(uintptr_t)addrlen);
    sqe->accept_flags = (uint32_t)flags;
    if (multishot) {
        sqe->ioprio |= IORING_ACCEPT_MULTISHOT;
        op->multishot = true;
        op->sequence = first_sequence;
    }
    COMMIT();
}

int ringio_submit_accept(struct ringio_core *c, struct ringio_owner *o, int fd,
                         struct sockaddr *addr, socklen_t *addrlen, int flags, uint64_t *token)
{
    return prep_accept(c, o, fd, addr, addrlen, flags, false, 0, token);
}

int ringio_submit_accept_multishot(struct ringio_core *c, struct ringio_owner *o, int fd,
                                   int flags, uint32_t first_sequence, uint64_t *token)
{
    return prep_accept(c, o, fd, NULL, NULL, flags, true, first_sequence, token);
}

int ringio_submit_connect(struct ringio_core *c, struct ringio_owner *o, int fd,
                          const struct sockaddr *addr, socklen_t addrlen, uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    if (!addr)
        return -EINVAL;
    BEGIN(IORING_OP_CONNECT);
    set_rw(sqe, fd, addr, 0, addrlen);
    COMMIT();
}

int ringio_submit_shutdown(struct ringio_core *c, struct ringio_owner *o, int fd, int how,
                           uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    if (how < 0)
        return -EINVAL;
    BEGIN(IORING_OP_SHUTDOWN);
    set_rw(sqe, fd, NULL, (uint32_t)how, 0);
    COMMIT();
}

int ringio_submit_close(struct ringio_core *c, struct ringio_owner *o, int fd, uint64_t *token)
{
    if (check_fd(fd) < 0)
        return -EBADF;
    BEGIN(IORING_OP_CLOSE);
    sqe->fd = fd;
    COMMIT();
}

int ringio_submit_socket(struct ringio_core *c, struct ringio_owner *o, int domain, int type,
                         int protocol, uint64_t *token)
{
    if (domain < 0 || type < 0 || protocol < 0)
        return -EINVAL;
    BEGIN(IORING_OP_SOCKET);
    /* The kernel ABI: fd = domain, off = type, len = protocol. */
    set_rw(sqe, domain, NULL, (uint32_t)protocol, (uint64_t)type);
    COMMIT();
}
