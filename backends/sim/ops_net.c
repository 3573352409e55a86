/*
 * Socket operations of the simulated kernel.  Every syscall is non-blocking
 * (MSG_DONTWAIT, or poll() first where there is no flag); EAGAIN turns into
 * waiting for the fd, as the kernel's internal poll does.
 */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static bool finish(struct sim *s, struct sop *op, int32_t res)
{
    sim_complete(s, op, res, 0);
    return true;
}

static bool would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

/* A transfer of want bytes, maybe cut short by the fault profile. */
static size_t maybe_short(struct sim *s, size_t want, enum ringio_sim_fault f)
{
    if (want > 1 && sim_fault(s, f))
        return 1 + sim_decide(s, D_SHORT_LEN, (uint32_t)(want - 1 > 0xffffffffu ? 0xffffffffu : want - 1));
    return want;
}

/* ---- provided buffers ---------------------------------------------------- */

struct buf_ring *sim_buf_ring(struct sim *s, unsigned bgid)
{
    return bgid < s->bgid_map_len ? s->bgid_map[bgid] : NULL;
}

/* The buffer at the kernel's head, or NULL when the ring is empty. */
static struct io_uring_buf *buf_peek(struct buf_ring *r)
{
    uint16_t tail = __atomic_load_n(&r->br->tail, __ATOMIC_ACQUIRE);
    if (tail == r->head)
        return NULL;
    return &r->br->bufs[r->head & (r->entries - 1)];
}

/* ---- recv ---------------------------------------------------------------- */

static bool recv_leg(struct sim *s, struct sop *op, int fd, bool multishot)
{
    bool select = (op->sqe.flags & IOSQE_BUFFER_SELECT) != 0;
    for (;;) {
        void *addr = (void *)(uintptr_t)op->sqe.addr;
        size_t len = op->sqe.len;
        struct buf_ring *br = NULL;
        struct io_uring_buf *buf = NULL;
        if (select) {
            br = sim_buf_ring(s, op->sqe.buf_group);
            buf = br ? buf_peek(br) : NULL;
            if (!buf)
                return finish(s, op, -ENOBUFS);
            addr = (void *)(uintptr_t)buf->addr;
            len = (len && len < buf->len) ? len : buf->len;
        }
        size_t off = multishot ? 0 : op->done;
        size_t want = maybe_short(s, len - off, RINGIO_SIM_SHORT_READ);
        int uflags = (int)op->sqe.msg_flags;
        ssize_t n = recv(fd, (char *)addr + off, want, uflags | MSG_DONTWAIT);
        if (n < 0) {
            int e = errno;
            if (would_block(e) && !(uflags & MSG_DONTWAIT)) {
                sim_wait_fd(s, op, fd, POLLIN);
                return false;
            }
            return finish(s, op, op->done ? (int32_t)op->done : -e);
        }
        uint32_t flags = 0;
        if (buf && n > 0) {
            flags = IORING_CQE_F_BUFFER | ((uint32_t)buf->bid << IORING_CQE_BUFFER_SHIFT);
            br->head++;
        }
        if (!multishot) {
            op->done += (uint32_t)n;
            if ((uflags & MSG_WAITALL) && n > 0 && op->done < len && !select) {
                sim_wait_fd(s, op, fd, POLLIN);
                return false;
            }
            sim_complete(s, op, (int32_t)op->done, flags);
            return true;
        }
        if (n == 0 || sim_cq_full(s) || sim_fault(s, RINGIO_SIM_MULTISHOT_END)) {
            sim_complete(s, op, (int32_t)n, flags); /* final leg: no F_MORE */
            return true;
        }
        sim_post(s, op, op->sqe.user_data, (int32_t)n, flags | IORING_CQE_F_MORE);
        op->legs++;
        if (sim_decide(s, D_LEG_YIELD, 8) == 0) {
            sim_set_state(s, op, S_QUEUED); /* let others run; continue next round */
            return false;
        }
    }
}

bool sim_op_recv(struct sim *s, struct sop *op, int fd)
{
    bool multishot = (op->sqe.ioprio & IORING_RECV_MULTISHOT) != 0;
    if (multishot && !(op->sqe.flags & IOSQE_BUFFER_SELECT))
        return finish(s, op, -EINVAL);
    return recv_leg(s, op, fd, multishot);
}

/* ---- send ---------------------------------------------------------------- */

static bool send_done(struct sim *s, struct sop *op, int32_t res)
{
    bool zc = op->sqe.opcode == IORING_OP_SEND_ZC || op->sqe.opcode == IORING_OP_SENDMSG_ZC;
    if (zc)
        sim_zc_finish(s, op, res);
    else
        sim_complete(s, op, res, 0);
    return true;
}

/* Zero copy exists for TCP and UDP only (SOCK_SUPPORT_ZC); elsewhere the
 * kernel fails the send with -EOPNOTSUPP (still F_MORE + notification). */
static bool zc_unsupported(const struct sop *op, int fd)
{
    if (op->sqe.opcode != IORING_OP_SEND_ZC && op->sqe.opcode != IORING_OP_SENDMSG_ZC)
        return false;
    int domain = 0;
    socklen_t len = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
        return false; /* not a socket: the send itself reports it */
    return domain != AF_INET && domain != AF_INET6;
}

bool sim_op_send(struct sim *s, struct sop *op, int fd)
{
    if (op->done == 0 && zc_unsupported(op, fd))
        return send_done(s, op, -EOPNOTSUPP);
    const char *buf = (const char *)(uintptr_t)op->sqe.addr;
    size_t len = op->sqe.len;
    int uflags = (int)op->sqe.msg_flags;
    const struct sockaddr *dest = (const void *)(uintptr_t)op->sqe.addr2;
    socklen_t destlen = dest ? op->sqe.addr_len : 0;
    size_t want = maybe_short(s, len - op->done, RINGIO_SIM_SHORT_WRITE);
    ssize_t n = sendto(fd, buf + op->done, want, uflags | MSG_DONTWAIT | MSG_NOSIGNAL,
                       destlen ? dest : NULL, destlen);
    if (n < 0) {
        int e = errno;
        if (would_block(e) && !(uflags & MSG_DONTWAIT)) {
            sim_wait_fd(s, op, fd, POLLOUT);
            return false;
        }
        return send_done(s, op, op->done ? (int32_t)op->done : -e);
    }
    op->done += (uint32_t)n;
    if ((uflags & MSG_WAITALL) && op->done < len) {
        sim_wait_fd(s, op, fd, POLLOUT);
        return false;
    }
    return send_done(s, op, (int32_t)op->done);
}

bool sim_op_msg(struct sim *s, struct sop *op, int fd)
{
    struct msghdr *msg = (struct msghdr *)(uintptr_t)op->sqe.addr;
    int uflags = (int)op->sqe.msg_flags;
    bool is_recv = op->sqe.opcode == IORING_OP_RECVMSG;
    if (!msg)
        return finish(s, op, -EFAULT);
    if (is_recv && (op->sqe.ioprio & IORING_RECV_MULTISHOT))
        return finish(s, op, -EINVAL); /* not simulated: see the divergence table */
    if (!is_recv && zc_unsupported(op, fd))
        return send_done(s, op, -EOPNOTSUPP);
    ssize_t n = is_recv ? recvmsg(fd, msg, uflags | MSG_DONTWAIT)
                        : sendmsg(fd, msg, uflags | MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
        int e = errno;
        if (would_block(e) && !(uflags & MSG_DONTWAIT)) {
            sim_wait_fd(s, op, fd, is_recv ? POLLIN : POLLOUT);
            return false;
        }
        return is_recv ? finish(s, op, -e) : send_done(s, op, -e);
    }
    return is_recv ? finish(s, op, (int32_t)n) : send_done(s, op, (int32_t)n);
}

/* ---- accept / connect ---------------------------------------------------- */

bool sim_op_accept(struct sim *s, struct sop *op, int fd)
{
    bool multishot = (op->sqe.ioprio & IORING_ACCEPT_MULTISHOT) != 0;
    bool direct = op->sqe.file_index != 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) < 0)
            return finish(s, op, -errno);
        if (p.revents & POLLNVAL)
            return finish(s, op, -EBADF);
        if (!p.revents) {
            sim_wait_fd(s, op, fd, POLLIN);
            return false;
        }
        struct sockaddr *addr = (void *)(uintptr_t)op->sqe.addr;
        socklen_t *alen = (void *)(uintptr_t)op->sqe.addr2;
        int cfd = accept4(fd, addr, alen, (int)op->sqe.accept_flags | SOCK_NONBLOCK);
        if (cfd < 0) {
            int e = errno;
            if (would_block(e) || e == ECONNABORTED) {
                sim_wait_fd(s, op, fd, POLLIN);
                return false;
            }
            return finish(s, op, -e);
        }
        /* accept4 with SOCK_NONBLOCK avoids a blocking race with other
         * acceptors; the fd the user gets has the flags they asked for. */
        if (!(op->sqe.accept_flags & SOCK_NONBLOCK)) {
            int fl = fcntl(cfd, F_GETFL);
            if (fl >= 0)
                (void)fcntl(cfd, F_SETFL, fl & ~O_NONBLOCK);
        }
        int32_t res = direct ? sim_install_fixed(s, op, cfd) : cfd;
        if (!multishot || res < 0 || sim_cq_full(s) || sim_fault(s, RINGIO_SIM_MULTISHOT_END)) {
            sim_complete(s, op, res, 0);
            return true;
        }
        sim_post(s, op, op->sqe.user_data, res, IORING_CQE_F_MORE);
        op->legs++;
    }
}

static bool connect_finish(struct sim *s, struct sop *op, int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    return finish(s, op, -err);
}

#define SIM_CONNECT_RETRY_NS 1000000

bool sim_op_connect(struct sim *s, struct sop *op, int fd)
{
    if (op->connecting)
        return connect_finish(s, op, fd);
    const struct sockaddr *addr = (const void *)(uintptr_t)op->sqe.addr;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return finish(s, op, -errno);
    /* connect(2) has no MSG_DONTWAIT: make it non-blocking for the call.
     * The connection proceeds whatever the flags are afterwards. */
    if (!(fl & O_NONBLOCK))
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int rc = connect(fd, addr, (socklen_t)op->sqe.off);
    int e = rc < 0 ? errno : 0;
    if (!(fl & O_NONBLOCK))
        (void)fcntl(fd, F_SETFL, fl);
    if (e == EINPROGRESS || e == EALREADY) {
        op->connecting = true;
        sim_wait_fd(s, op, fd, POLLOUT);
        return false;
    }
    if (e == EAGAIN) {
        /* AF_UNIX backlog full.  Nothing on this fd says when the listener
         * makes room (an unconnected socket polls writable at once, so
         * waiting for POLLOUT spun), so retry after 1 ms of virtual time:
         * a sleeping enter() wakes for it, and a ring with only timers
         * pending jumps its clock instead of burning CPU. */
        sim_set_state(s, op, S_WAIT_TIMER);
        op->deadline = s->vnow + SIM_CONNECT_RETRY_NS;
        return false;
    }
    return finish(s, op, -e);
}

/* ---- the rest -------------------------------------------------------------- */

bool sim_op_close(struct sim *s, struct sop *op, int unused)
{
    (void)unused; /* sqe->fd or a fixed slot (file_index): resolved here */
    if (op->sqe.file_index) {
        unsigned slot = op->sqe.file_index - 1;
        if (op->sqe.fd || slot >= s->nfiles || s->files[slot] < 0)
            return finish(s, op, op->sqe.fd ? -EINVAL : -EBADF);
        int fd = s->files[slot];
        s->files[slot] = -1;
        return finish(s, op, close(fd) < 0 ? -errno : 0);
    }
    if (op->sqe.flags & IOSQE_FIXED_FILE)
        return finish(s, op, -EINVAL);
    return finish(s, op, close(op->sqe.fd) < 0 ? -errno : 0);
}

bool sim_op_socket(struct sim *s, struct sop *op, int unused)
{
    (void)unused; /* sqe->fd is the domain */
    if (op->sqe.rw_flags)
        return finish(s, op, -EINVAL);
    int fd = socket(op->sqe.fd, (int)op->sqe.off, (int)op->sqe.len);
    if (fd < 0)
        return finish(s, op, -errno);
    return finish(s, op, op->sqe.file_index ? sim_install_fixed(s, op, fd) : fd);
}

bool sim_op_shutdown(struct sim *s, struct sop *op, int fd)
{
    return finish(s, op, shutdown(fd, (int)op->sqe.len) < 0 ? -errno : 0);
}
