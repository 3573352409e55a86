/*
 * fuzz_uring_sqe: programs of safe operations through the ringio core to the
 * REAL io_uring backend (backends/uring).
 *
 * Every input gets a fresh ring (sizes from the header) and its own
 * descriptors: a pipe, an AF_UNIX stream socketpair, a connected UDP pair on
 * loopback and an AF_UNIX listener on an abstract address.  The operations are
 * the harmless ones: NOP, TIMEOUT (at most 255 us), ASYNC_CANCEL of live,
 * stale or garbage tokens, POLL_ADD (one-shot and multishot) on those
 * descriptors, removed by cancel, RECV/RECVMSG/multishot RECV into
 * harness-owned and provided buffers, SEND/SENDMSG/SEND_ZC/SENDMSG_ZC of
 * harness-owned bytes, ACCEPT (one-shot, multishot) on the listener, CONNECT
 * of fresh sockets to it, SOCKET, SHUTDOWN, and CLOSE of a dup()ed descriptor.
 * The harness itself writes datagrams and stream bytes, connects clients,
 * drains the pipe, and reaps, waits (at most 1 ms), wakes, changes submit
 * mode, closes early.  If no ring can be created (seccomp, sysctl, old
 * kernel) every input is a no-op.
 *
 * Invariants (CHECK -> __builtin_trap):
 *  - each owner released exactly once, never before its final event (or the
 *    notification of a zero-copy send), always by the end; no event after
 *    release; a final event is followed by the release before reap returns;
 *  - multishot: sequence from first_sequence, +1 per consumed leg, more ==
 *    F_MORE == !final; one-shot operations: one final event;
 *  - data only for multishot receives, within the buffer, readable, and for
 *    UDP the bytes of a datagram the harness sent (the same checks for the
 *    harness-owned buffer of a one-shot UDP recv);
 *  - the SQE the core prepared equals the liburing encoding (read back from
 *    the SQ through a wrapped backend); stats.inflight == unreleased owners;
 *  - close returns within its bound (+2 s slack) and releases everything;
 *  - memory released to the harness is not written to afterwards: released
 *    owner records are poisoned and kept until the ring is gone, then checked;
 *  - no descriptor leaks: after the input every descriptor opened during it
 *    is closed (accepted/socket fds nobody saw are the core's to close) unless
 *    close had to force releases, and a delivered fd is never closed by the
 *    core.
 */
#include "harness_common.h"
#include "ringio/backend.h"
#include "ringio/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef RINGIO_FUZZ_REPLAY
#define FUZZ_ENTRY ringio_fuzz_uring_sqe_one
#else
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif
int FUZZ_ENTRY(const uint8_t *data, size_t size);

#define MAX_SLOTS 256
#define MAX_FDSET 4096
#define MAX_BUFS 16
#define BUFLEN 64

enum action {
    U_NOP, U_TIMEOUT, U_CANCEL, U_POLL, U_RECV, U_RECV_MS, U_SEND, U_SEND_ZC, U_RECVMSG,
    U_SENDMSG, U_SENDMSG_ZC, U_ACCEPT, U_CONNECT, U_SOCKET, U_SHUTDOWN, U_CLOSE, U_WRITE,
    U_DRAIN, U_CLIENT, U_REAP, U_WAIT, U_SUBMIT, U_WAKE, U_MODE, U_CLOSE_EARLY, U_COUNT
};

static const char *const unames[U_COUNT] = {
    "nop", "timeout", "cancel", "poll", "recv", "recv_multishot", "send", "send_zc",
    "recvmsg", "sendmsg", "sendmsg_zc", "accept", "connect", "socket", "shutdown", "close",
    "write", "drain", "client", "reap", "wait", "submit", "wake", "mode", "close_early",
};

#define UO_MAGIC 0x55524e47u
#define POISON 0xDB

struct uowner {
    struct ringio_owner base;
    uint32_t magic;
    uint32_t slot;
    /* what the kernel may touch */
    unsigned char buf[BUFLEN];
    struct iovec iov;
    struct msghdr msg;
    struct sockaddr_un addr;
    socklen_t addrlen;
    struct __kernel_timespec ts;
    struct uowner *grave_next;
};

struct uslot {
    struct uowner *o;
    uint64_t token;
    uint8_t opcode;
    bool released, final_seen, op_event_seen;
    bool multishot, zc, udp_recv;
    uint32_t seq;
    unsigned buf_size, buf_count;
    int client_fd; /* connect: the harness's socket; close: the dup */
};

static struct {
    struct fuzz_run run; /* input, step, action, trace */

    struct ringio_backend *b;
    struct ringio_core *c;
    struct ringio_backend_ops wops;
    const struct ringio_backend_ops *bops;
    struct io_uring_sqe *last_sqe;
    bool closing, closed;
    enum ringio_submit_mode mode;

    struct uslot slots[MAX_SLOTS];
    unsigned nslots, live;
    struct uowner *grave;

    int pipe_r, pipe_w, s0, s1, u0, u1, lsn;
    struct sockaddr_un lsn_addr;
    socklen_t lsn_len;
    int clients[16];
    unsigned nclients;
    int delivered_fds[MAX_SLOTS * 2];
    unsigned ndelivered;
    uint32_t serial;

    bool forced_any; /* close had to release without final CQEs */
    bool in_reap;
    int refuse_at;
    unsigned calls, accepted;
    bool refused;

    unsigned char scratch[512];
    uint8_t fds_before[MAX_FDSET / 8];
} U;

#define FUZZ_RUN (U.run) /* for CHECK, CHECKF, TRACE (harness_common.h) */

static uint8_t u8(void)
{
    return fuzz_u8(&U.run);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- descriptors --------------------------------------------------------- */

static void fd_snapshot(uint8_t *set)
{
    memset(set, 0, MAX_FDSET / 8);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dfd || fd < 0 || fd >= MAX_FDSET)
            continue;
        set[fd / 8] |= (uint8_t)(1u << (fd % 8));
    }
    closedir(d);
}

static bool fd_open(int fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) != -1;
}

static void xclose(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int pick_fd(uint8_t b, bool recv_side)
{
    switch (b & 3) {
    case 0:
        return recv_side ? U.s0 : U.s1;
    case 1:
        return recv_side ? U.u0 : U.u1;
    case 2:
        return recv_side ? U.pipe_r : U.pipe_w;
    default:
        return recv_side ? U.u0 : U.s1;
    }
}

static bool make_resources(void)
{
    static unsigned counter;
    int p[2], s[2];
    U.pipe_r = U.pipe_w = U.s0 = U.s1 = U.u0 = U.u1 = U.lsn = -1;
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return false;
    U.pipe_r = p[0];
    U.pipe_w = p[1];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) < 0)
        return false;
    U.s0 = s[0];
    U.s1 = s[1];
    U.u0 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    U.u1 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (U.u0 < 0 || U.u1 < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in a0, a1;
    socklen_t l = sizeof(a0);
    if (bind(U.u0, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        bind(U.u1, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(U.u0, (struct sockaddr *)&a0, &l) < 0 ||
        (l = sizeof(a1), getsockname(U.u1, (struct sockaddr *)&a1, &l)) < 0 ||
        connect(U.u0, (struct sockaddr *)&a1, sizeof(a1)) < 0 ||
        connect(U.u1, (struct sockaddr *)&a0, sizeof(a0)) < 0)
        return false;
    U.lsn = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (U.lsn < 0)
        return false;
    memset(&U.lsn_addr, 0, sizeof(U.lsn_addr));
    U.lsn_addr.sun_family = AF_UNIX;
    int n = snprintf(U.lsn_addr.sun_path + 1, sizeof(U.lsn_addr.sun_path) - 1,
                     "ringio-fuzz-%d-%u", (int)getpid(), counter++);
    U.lsn_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (bind(U.lsn, (struct sockaddr *)&U.lsn_addr, U.lsn_len) < 0 || listen(U.lsn, 16) < 0)
        return false;
    return true;
}

static void free_resources(void)
{
    xclose(&U.pipe_r);
    xclose(&U.pipe_w);
    xclose(&U.s0);
    xclose(&U.s1);
    xclose(&U.u0);
    xclose(&U.u1);
    xclose(&U.lsn);
    for (unsigned i = 0; i < U.nclients; i++)
        xclose(&U.clients[i]);
    U.nclients = 0;
}

/* ---- owners ----------------------------------------------------------------- */

static struct uslot *slot_live(uint64_t token)
{
    for (unsigned i = 0; i < U.nslots; i++)
        if (U.slots[i].token == token && !U.slots[i].released)
            return &U.slots[i];
    return NULL;
}

static void on_release(struct ringio_owner *base)
{
    struct uowner *o = (struct uowner *)base;
    CHECKF(o && o->magic == UO_MAGIC, "release of a record that is no live owner");
    CHECK(o->slot < U.nslots);
    struct uslot *s = &U.slots[o->slot];
    CHECKF(s->o == o && !s->released, "owner released twice (token %#llx)",
           (unsigned long long)s->token);
    if (!U.closing)
        CHECKF(s->final_seen || (s->zc && s->op_event_seen),
               "owner (token %#llx opcode %u) released before its final event",
               (unsigned long long)s->token, s->opcode);
    s->released = true;
    s->o = NULL;
    U.live--;
    /* Keep the memory, poisoned, until the ring is gone: a write after
     * release (by the kernel, or by the core) shows up at the end. */
    o->magic = 0;
    memset(o->buf, POISON, sizeof(*o) - offsetof(struct uowner, buf) - sizeof(o->grave_next));
    o->grave_next = U.grave;
    U.grave = o;
}

static void graveyard_check(void)
{
    while (U.grave) {
        struct uowner *o = U.grave;
        const unsigned char *p = o->buf;
        size_t n = sizeof(*o) - offsetof(struct uowner, buf) - sizeof(o->grave_next);
        for (size_t i = 0; i < n; i++)
            CHECKF(p[i] == POISON, "released owner memory was written to (offset %zu: %#x)",
                   i, p[i]);
        U.grave = o->grave_next;
        free(o);
    }
}

/* ---- deliver ------------------------------------------------------------------- */

/* Bytes of a datagram the harness sent: 4-byte serial, then the pattern. */
static void check_datagram(const unsigned char *d, uint32_t n)
{
    if (n < 4)
        return;
    uint32_t serial;
    memcpy(&serial, d, 4);
    CHECKF(serial >= 1 && serial <= U.serial, "datagram serial %u never sent", serial);
    for (uint32_t i = 4; i < n; i++)
        CHECKF(d[i] == fuzz_pat(serial, i), "datagram %u byte %u corrupted", serial, i);
}

static int on_deliver(void *ctx, const struct ringio_event *ev)
{
    CHECK(ctx == &U && U.in_reap && !U.closing);
    U.calls++;
    if (ev->wake) {
        CHECK(ev->owner == NULL && ev->token == RINGIO_TOKEN_WAKE && ev->final && !ev->more);
    } else {
        struct uslot *s = slot_live(ev->token);
        CHECKF(s != NULL, "event for token %#llx, which is no live operation",
               (unsigned long long)ev->token);
        CHECKF(ev->owner == &s->o->base, "event owner does not match its token");
        CHECK(ev->opcode == s->opcode);
        CHECKF(!s->final_seen, "event after the final one (token %#llx)",
               (unsigned long long)ev->token);
        CHECK(!(ev->more && ev->final));
        if (s->multishot) {
            CHECKF(ev->sequence == s->seq, "token %#llx: sequence %u, expected %u",
                   (unsigned long long)ev->token, ev->sequence, s->seq);
            CHECKF(ev->more == !ev->final && ev->more == !!(ev->flags & IORING_CQE_F_MORE),
                   "multishot more %d final %d flags %#x", ev->more, ev->final, ev->flags);
        } else if (s->zc) {
            CHECK(!ev->more && ev->sequence == 0);
            CHECKF(!s->op_event_seen, "two events for one zero-copy send");
            CHECK(ev->zc_copied >= -1 && ev->zc_copied <= 1);
        } else {
            CHECKF(ev->final && !ev->more && ev->sequence == 0,
                   "one-shot op %u: final %d more %d", s->opcode, ev->final, ev->more);
        }
        if (ev->data) {
            CHECKF(s->buf_count && (ev->flags & IORING_CQE_F_BUFFER) &&
                       (ev->flags >> IORING_CQE_BUFFER_SHIFT) < s->buf_count,
                   "data for a CQE without a provided buffer (flags %#x)", ev->flags);
            CHECK(ev->res > 0 && ev->data_len == (uint32_t)ev->res);
            CHECK(ev->data_len <= s->buf_size && ev->data_len <= sizeof(U.scratch));
            memcpy(U.scratch, ev->data, ev->data_len);
            if (s->udp_recv)
                check_datagram(U.scratch, ev->data_len);
        } else {
            CHECK(ev->data_len == 0);
            if (s->buf_count && ev->res > 0 && (ev->flags & IORING_CQE_F_BUFFER))
                CHECKF((uint32_t)ev->res > s->buf_size ||
                           (ev->flags >> IORING_CQE_BUFFER_SHIFT) >= s->buf_count,
                       "a filled provided buffer was not shown");
        }
        if (!s->buf_count && s->udp_recv && ev->res > 0)
            check_datagram(s->o->buf, (uint32_t)ev->res < BUFLEN ? (uint32_t)ev->res : BUFLEN);
    }
    TRACE("    event token=%#llx op=%u res=%d flags=%#x seq=%u more=%d final=%d zc=%d data=%u\n",
          (unsigned long long)ev->token, ev->opcode, ev->res, ev->flags, ev->sequence, ev->more,
          ev->final, ev->zc_copied, ev->data_len);
    if ((int)(U.calls - 1) == U.refuse_at) {
        U.refused = true;
        return 7;
    }
    U.accepted++;
    if (!ev->wake) {
        struct uslot *s = slot_live(ev->token);
        if (s->multishot)
            s->seq++;
        if (ev->final)
            s->final_seen = true;
        s->op_event_seen = true;
        if (s->opcode == IORING_OP_CLOSE && ev->res == 0)
            s->client_fd = -1; /* the kernel closed the dup */
        if ((s->opcode == IORING_OP_ACCEPT || s->opcode == IORING_OP_SOCKET) && ev->res >= 0) {
            CHECK(fd_open(ev->res));
            if (U.ndelivered < sizeof(U.delivered_fds) / sizeof(U.delivered_fds[0]))
                U.delivered_fds[U.ndelivered++] = ev->res; /* ours now: checked at the end */
            else
                close(ev->res); /* ours, and no room to track it */
        }
    }
    return 0;
}

/* ---- backend wrapper: see the SQE the core prepared ---------------------------- */

static struct io_uring_sqe *w_get_sqe(struct ringio_backend *b)
{
    U.last_sqe = U.bops->get_sqe(b);
    return U.last_sqe;
}

static void w_destroy(struct ringio_backend *b)
{
    CHECKF(U.closing, "backend destroyed outside close");
    U.bops->destroy(b);
    U.b = NULL;
}

/* ---- submissions ------------------------------------------------------------------ */

static struct uowner *owner_new(void)
{
    struct uowner *o = calloc(1, sizeof(*o));
    if (!o)
        abort();
    o->base.release = on_release;
    o->magic = UO_MAGIC;
    o->slot = U.nslots;
    return o;
}

static void after_submit(struct uowner *o, struct io_uring_sqe *want, int rc, uint64_t token,
                         struct uslot *proto)
{
    TRACE("    -> rc=%d token=%#llx\n", rc, (unsigned long long)token);
    if (rc < 0) {
        if (U.closed)
            CHECK(rc == -EBADF);
        else
            CHECKF(rc == -EBUSY || rc == -ENOMEM || rc == -ENOSPC || rc == -EINVAL,
                   "submit failed with %d", rc);
        if (proto->client_fd >= 0)
            close(proto->client_fd);
        free(o);
        return;
    }
    CHECK(!U.closed);
    CHECK(slot_live(token) == NULL);
    struct uslot *s = &U.slots[U.nslots++];
    *s = *proto;
    s->o = o;
    s->token = token;
    s->opcode = want->opcode;
    U.live++;
    want->user_data = token;
    CHECK(U.last_sqe != NULL);
    if (s->buf_count)
        want->buf_group = U.last_sqe->buf_group;
    if (memcmp(U.last_sqe, want, sizeof(*want)) != 0) {
        const uint8_t *g = (const uint8_t *)U.last_sqe, *w = (const uint8_t *)want;
        unsigned off = 0;
        while (off < sizeof(*want) && g[off] == w[off])
            off++;
        fuzz_fail(&U.run, __LINE__, "SQE differs from the liburing encoding",
                  "opcode %u: first differing byte at %u (got %#x want %#x)", want->opcode, off,
                  g[off], w[off]);
    }
}

static void act_submit(int a)
{
    if (U.nslots >= MAX_SLOTS) {
        U.run.eof = true;
        return;
    }
    struct uowner *o = owner_new();
    struct uslot proto;
    memset(&proto, 0, sizeof(proto));
    proto.client_fd = -1;
    struct io_uring_sqe want;
    uint64_t token = 0;
    int rc;
    U.last_sqe = NULL;
    for (size_t i = 0; i < BUFLEN; i++)
        o->buf[i] = (unsigned char)i;

    switch (a) {
    case U_NOP:
        fuzz_expect_base(&want, IORING_OP_NOP);
        rc = ringio_submit_nop(U.c, &o->base, &token);
        break;
    case U_TIMEOUT: {
        uint8_t t = u8();
        o->ts.tv_sec = 0;
        o->ts.tv_nsec = (long long)t * 1000;
        unsigned count = (t & 1) ? 1 : 0;
        unsigned fl = (t & 2) ? IORING_TIMEOUT_ETIME_SUCCESS : 0;
        fuzz_expect_base(&want, IORING_OP_TIMEOUT);
        want.addr = (uintptr_t)&o->ts;
        want.len = 1;
        want.off = count;
        want.timeout_flags = fl;
        rc = ringio_submit_timeout(U.c, &o->base, &o->ts, count, fl, &token);
        break;
    }
    case U_CANCEL: {
        uint8_t sel = u8(), arg = u8();
        static const unsigned cf[4] = {0, IORING_ASYNC_CANCEL_ALL, IORING_ASYNC_CANCEL_ANY, 0};
        unsigned fl = cf[(sel >> 2) & 3];
        uint64_t target = ((uint64_t)arg << 8) | 5; /* generation 0: never a token */
        if ((sel & 3) != 2 && U.nslots) {
            unsigned n = 0;
            for (unsigned i = 0; i < U.nslots; i++)
                n += (sel & 3) == 1 || !U.slots[i].released;
            for (unsigned i = 0, k = n ? arg % n : 0; n && i < U.nslots; i++) {
                if ((sel & 3) != 1 && U.slots[i].released)
                    continue;
                if (k-- == 0) {
                    target = U.slots[i].token;
                    break;
                }
            }
        }
        fuzz_expect_base(&want, IORING_OP_ASYNC_CANCEL);
        want.addr = target;
        want.cancel_flags = fl;
        rc = ringio_submit_cancel(U.c, &o->base, target, fl, &token);
        break;
    }
    case U_POLL: {
        uint8_t f = u8(), m = u8();
        int fd = pick_fd(f, !(f & 4));
        unsigned mask = (m & 1) ? POLLOUT : POLLIN;
        bool ms = (m & 2) != 0;
        proto.multishot = ms;
        proto.seq = (m & 4) ? UINT32_MAX - 1 : m >> 3;
        fuzz_expect_base(&want, IORING_OP_POLL_ADD);
        want.fd = fd;
        want.poll32_events = mask;
        if (ms)
            want.len = IORING_POLL_ADD_MULTI;
        rc = ringio_submit_poll(U.c, &o->base, fd, mask, ms, proto.seq, &token);
        break;
    }
    case U_RECV:
    case U_RECVMSG: {
        uint8_t f = u8();
        int fd = (f & 1) ? U.u0 : U.s0;
        proto.udp_recv = fd == U.u0;
        size_t len = (size_t)(u8() % (BUFLEN + 1));
        if (a == U_RECV) {
            fuzz_expect_base(&want, IORING_OP_RECV);
            want.fd = fd;
            want.addr = (uintptr_t)o->buf;
            want.len = (uint32_t)len;
            rc = ringio_submit_recv(U.c, &o->base, fd, o->buf, len, 0, &token);
        } else {
            proto.udp_recv = false; /* the iovec path: checked by length only */
            o->iov.iov_base = o->buf;
            o->iov.iov_len = len;
            o->msg.msg_iov = &o->iov;
            o->msg.msg_iovlen = 1;
            fuzz_expect_base(&want, IORING_OP_RECVMSG);
            want.fd = fd;
            want.addr = (uintptr_t)&o->msg;
            want.len = 1;
            rc = ringio_submit_recvmsg(U.c, &o->base, fd, &o->msg, 0, &token);
        }
        break;
    }
    case U_RECV_MS: {
        uint8_t f = u8(), g = u8();
        int fd = (f & 1) ? U.u0 : U.s0;
        static const unsigned sizes[4] = {1, 16, 64, 256};
        proto.buf_size = sizes[g & 3];
        proto.buf_count = 1u << ((g >> 2) & 3);
        proto.multishot = true;
        proto.udp_recv = fd == U.u0;
        proto.seq = g >> 4;
        fuzz_expect_base(&want, IORING_OP_RECV);
        want.fd = fd;
        want.ioprio = IORING_RECV_MULTISHOT;
        want.flags = IOSQE_BUFFER_SELECT;
        rc = ringio_submit_recv_multishot(U.c, &o->base, fd, proto.buf_size, proto.buf_count, 0,
                                          proto.seq, &token);
        break;
    }
    case U_SEND:
    case U_SEND_ZC:
    case U_SENDMSG:
    case U_SENDMSG_ZC: {
        uint8_t f = u8(), l = u8();
        int fd = (f & 1) ? U.u1 : U.s1;
        size_t len = (size_t)(l % (BUFLEN + 1));
        if (fd == U.u1 && len >= 4) {
            /* a datagram the receivers can recognise */
            uint32_t serial = ++U.serial;
            memcpy(o->buf, &serial, 4);
            for (size_t i = 4; i < len; i++)
                o->buf[i] = fuzz_pat(serial, (uint32_t)i);
        }
        unsigned zcf = (f & 2) ? IORING_SEND_ZC_REPORT_USAGE : 0;
        bool msg = a == U_SENDMSG || a == U_SENDMSG_ZC;
        bool zc = a == U_SEND_ZC || a == U_SENDMSG_ZC;
        proto.zc = zc;
        uint8_t op = a == U_SEND ? IORING_OP_SEND
                     : a == U_SEND_ZC ? IORING_OP_SEND_ZC
                     : a == U_SENDMSG ? IORING_OP_SENDMSG
                                      : IORING_OP_SENDMSG_ZC;
        fuzz_expect_base(&want, op);
        want.fd = fd;
        want.msg_flags = MSG_NOSIGNAL;
        if (zc)
            want.ioprio = (uint16_t)zcf;
        if (msg) {
            o->iov.iov_base = o->buf;
            o->iov.iov_len = len;
            o->msg.msg_iov = &o->iov;
            o->msg.msg_iovlen = 1;
            want.addr = (uintptr_t)&o->msg;
            want.len = 1;
        } else {
            want.addr = (uintptr_t)o->buf;
            want.len = (uint32_t)len;
        }
        if (a == U_SEND)
            rc = ringio_submit_send(U.c, &o->base, fd, o->buf, len, MSG_NOSIGNAL, &token);
        else if (a == U_SEND_ZC)
            rc = ringio_submit_send_zc(U.c, &o->base, fd, o->buf, len, MSG_NOSIGNAL, zcf, &token);
        else if (a == U_SENDMSG)
            rc = ringio_submit_sendmsg(U.c, &o->base, fd, &o->msg, MSG_NOSIGNAL, &token);
        else
            rc = ringio_submit_sendmsg_zc(U.c, &o->base, fd, &o->msg, MSG_NOSIGNAL, zcf, &token);
        break;
    }
    case U_ACCEPT: {
        uint8_t f = u8();
        fuzz_expect_base(&want, IORING_OP_ACCEPT);
        want.fd = U.lsn;
        want.accept_flags = SOCK_CLOEXEC;
        if (f & 1) {
            proto.multishot = true;
            proto.seq = f >> 2;
            want.ioprio = IORING_ACCEPT_MULTISHOT;
            rc = ringio_submit_accept_multishot(U.c, &o->base, U.lsn, SOCK_CLOEXEC, proto.seq,
                                                &token);
        } else if (f & 2) {
            o->addrlen = sizeof(o->addr);
            want.addr = (uintptr_t)&o->addr;
            want.off = (uintptr_t)&o->addrlen;
            rc = ringio_submit_accept(U.c, &o->base, U.lsn, (struct sockaddr *)&o->addr,
                                      &o->addrlen, SOCK_CLOEXEC, &token);
        } else {
            rc = ringio_submit_accept(U.c, &o->base, U.lsn, NULL, NULL, SOCK_CLOEXEC, &token);
        }
        break;
    }
    case U_CONNECT: {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            free(o);
            return;
        }
        proto.client_fd = fd; /* the harness's; closed when the op is done */
        o->addr = U.lsn_addr;
        fuzz_expect_base(&want, IORING_OP_CONNECT);
        want.fd = fd;
        want.addr = (uintptr_t)&o->addr;
        want.off = U.lsn_len;
        rc = ringio_submit_connect(U.c, &o->base, fd, (struct sockaddr *)&o->addr, U.lsn_len,
                                   &token);
        break;
    }
    case U_SOCKET: {
        uint8_t f = u8();
        int domain = (f & 1) ? AF_UNIX : AF_INET;
        int type = ((f & 2) ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC;
        fuzz_expect_base(&want, IORING_OP_SOCKET);
        want.fd = domain;
        want.off = (uint64_t)type;
        rc = ringio_submit_socket(U.c, &o->base, domain, type, 0, &token);
        break;
    }
    case U_SHUTDOWN: {
        uint8_t f = u8();
        int fd = (f & 1) ? U.s1 : U.s0;
        fuzz_expect_base(&want, IORING_OP_SHUTDOWN);
        want.fd = fd;
        want.len = (uint32_t)(SHUT_WR);
        rc = ringio_submit_shutdown(U.c, &o->base, fd, SHUT_WR, &token);
        break;
    }
    case U_CLOSE: {
        int fd = fcntl(U.pipe_w, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            free(o);
            return;
        }
        proto.client_fd = fd;
        fuzz_expect_base(&want, IORING_OP_CLOSE);
        want.fd = fd;
        rc = ringio_submit_close(U.c, &o->base, fd, &token);
        break;
    }
    default:
        abort();
    }
    TRACE("  submit %s\n", unames[a]);
    after_submit(o, &want, rc, token, &proto);
}

/* ---- the harness's own I/O ------------------------------------------------------------ */

static void act_write(void)
{
    uint8_t f = u8(), l = u8();
    unsigned len = l % 200u + 1u;
    switch (f % 3) {
    case 0: {
        uint32_t serial = ++U.serial;
        memcpy(U.scratch, &serial, 4);
        for (unsigned i = 4; i < len; i++)
            U.scratch[i] = fuzz_pat(serial, i);
        (void)!send(U.u1, U.scratch, len < 4 ? 4 : len, MSG_DONTWAIT);
        break;
    }
    case 1:
        memset(U.scratch, 'p', len);
        (void)!write(U.pipe_w, U.scratch, len);
        break;
    default:
        memset(U.scratch, 's', len);
        (void)!send(U.s1, U.scratch, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
    }
}

static void act_drain(void)
{
    uint8_t f = u8();
    int fd = (f & 1) ? U.pipe_r : U.s0;
    while (read(fd, U.scratch, sizeof(U.scratch)) > 0) {
    }
}

static void act_client(void)
{
    if (U.nclients == sizeof(U.clients) / sizeof(U.clients[0]))
        return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    (void)!connect(fd, (struct sockaddr *)&U.lsn_addr, U.lsn_len);
    U.clients[U.nclients++] = fd;
}

/* ---- core calls --------------------------------------------------------------------------- */

static void act_reap(void)
{
    static const unsigned maxes[4] = {1, 4, 64, UINT_MAX};
    uint8_t m = u8(), r = u8();
    unsigned max = maxes[m & 3];
    U.refuse_at = r < 0x10 ? (int)r : -1;
    U.calls = U.accepted = 0;
    U.refused = false;
    U.in_reap = true;
    int rc = ringio_core_reap(U.c, max, on_deliver, &U);
    U.in_reap = false;
    TRACE("  reap max=%u refuse_at=%d -> %d\n", max, U.refuse_at, rc);
    if (U.closed) {
        CHECK(rc == -EBADF);
        return;
    }
    if (U.refused)
        CHECKF(rc == 7, "reap returned %d after a refusal", rc);
    else
        CHECKF(rc >= 0 && (unsigned)rc == U.accepted && (unsigned)rc <= max,
               "reap returned %d, %u consumed", rc, U.accepted);
    for (unsigned i = 0; i < U.nslots; i++)
        CHECKF(!U.slots[i].final_seen || U.slots[i].released,
               "token %#llx: final event consumed, owner not released",
               (unsigned long long)U.slots[i].token);
}

static void act_wait(void)
{
    uint8_t f = u8();
    unsigned min_complete = f & 1;
    int64_t timeout = (f & 2) ? 0 : 1000 * 1000; /* at most 1 ms */
    unsigned to_submit = ringio_core_wait_prepare(U.c);
    int r = ringio_core_wait_block(U.c, to_submit, min_complete, timeout);
    ringio_core_wait_finish(U.c);
    TRACE("  wait min=%u -> %d\n", min_complete, r);
    if (U.closed)
        CHECK(r == -EBADF);
    else
        CHECKF(r == 0 || r == -ETIME || r == -EINTR, "wait returned %d", r);
}

static void do_close(int64_t timeout)
{
    if (U.closed) {
        CHECK(ringio_core_close(U.c, timeout) == 0);
        return;
    }
    unsigned live0 = U.live;
    int64_t t0 = now_ns();
    U.closing = true;
    int forced = ringio_core_close(U.c, timeout);
    U.closing = false;
    U.closed = true;
    int64_t took = now_ns() - t0;
    TRACE("  close timeout=%lld live=%u -> forced %d in %lld ns\n", (long long)timeout, live0,
          forced, (long long)took);
    CHECKF(took < timeout + 2000000000LL, "close took %lld ms", (long long)(took / 1000000));
    CHECKF(U.b == NULL, "close did not destroy the backend");
    CHECKF(U.live == 0, "%u owner(s) not released by close", U.live);
    CHECKF(forced >= 0 && (unsigned)forced <= live0, "close returned %d with %u live", forced,
           live0);
    for (unsigned i = 0; i < U.nslots; i++)
        CHECK(U.slots[i].released);
    if (forced > 0)
        U.forced_any = true; /* descriptors may legitimately be left behind */
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    static int unavailable;
    if (unavailable || size < 2)
        return 0;
    memset(&U, 0, sizeof(U));
    fuzz_run_start(&U.run, "fuzz_uring_sqe", unames, U_COUNT, data, size);
    U.refuse_at = -1;
    for (unsigned i = 0; i < 16; i++)
        U.clients[i] = -1;
    fd_snapshot(U.fds_before);

    uint8_t h0 = u8(), h1 = u8();
    struct ringio_setup setup = {
        .entries = 1u << (h0 & 7),             /* 1 .. 128 */
        .cq_entries = (h0 & 8) ? 1u << (h0 & 7) : 0, /* CQ == SQ: overflows early */
        .flags = (h0 & 8) ? IORING_SETUP_CQSIZE : 0,
    };
    int rc = ringio_uring_backend_new(&setup, &U.b);
    if (rc < 0) {
        if (rc == -EPERM || rc == -ENOSYS || rc == -ENOMEM) {
            if (!unavailable)
                fprintf(stderr, "fuzz_uring_sqe: no io_uring here (%s): every input is a no-op\n",
                        strerror(-rc));
            unavailable = 1;
        }
        return 0;
    }
    U.bops = U.b->ops;
    U.wops = *U.bops;
    U.wops.get_sqe = w_get_sqe;
    U.wops.destroy = w_destroy;
    U.b->ops = &U.wops;
    if (ringio_core_new(U.b, &U.c) < 0) {
        U.bops->destroy(U.b);
        return 0;
    }
    if (!make_resources()) {
        U.closing = true;
        ringio_core_free(U.c);
        free_resources();
        return 0;
    }
    U.mode = (enum ringio_submit_mode)(h1 % 3);
    ringio_core_set_mode(U.c, U.mode);
    TRACE("setup sq=%u cq=%u mode=%d\n", U.b->sq_entries, U.b->cq_entries, U.mode);

    for (U.run.step = 1;; U.run.step++) {
        uint8_t op = u8();
        if (U.run.eof)
            break;
        U.run.action = op % U_COUNT;
        TRACE("#%u %s\n", U.run.step, unames[U.run.action]);
        switch (U.run.action) {
        case U_WRITE:
            act_write();
            break;
        case U_DRAIN:
            act_drain();
            break;
        case U_CLIENT:
            act_client();
            break;
        case U_REAP:
            act_reap();
            break;
        case U_WAIT:
            act_wait();
            break;
        case U_SUBMIT: {
            int r = ringio_core_submit(U.c);
            CHECK(U.closed ? r == -EBADF : (r >= 0 || r == -EBUSY || r == -EAGAIN));
            break;
        }
        case U_WAKE: {
            int r = ringio_core_wake(U.c);
            CHECK(U.closed ? r == -EBADF : (r == 0 || r == -EBUSY || r == -EAGAIN));
            break;
        }
        case U_MODE: {
            enum ringio_submit_mode m = (enum ringio_submit_mode)(u8() % 3);
            CHECK(ringio_core_set_mode(U.c, m) == U.mode);
            U.mode = m;
            break;
        }
        case U_CLOSE_EARLY:
            do_close((u8() & 1) ? 50 * 1000 * 1000 : 0);
            break;
        default:
            act_submit(U.run.action);
            break;
        }
        if (!U.closed) {
            struct ringio_stats st;
            ringio_core_stats(U.c, &st);
            CHECKF(st.inflight == U.live, "stats.inflight %u, %u unreleased", st.inflight,
                   U.live);
        }
        if (U.run.eof)
            break;
    }
    U.run.action = U_CLOSE_EARLY;
    do_close(50 * 1000 * 1000);
    ringio_core_free(U.c);
    graveyard_check();

    /* Descriptors: delivered ones are the harness's (must still be open);
     * a connect's socket and a CLOSE op's dup are closed by the harness unless
     * the kernel closed the dup. */
    for (unsigned i = 0; i < U.ndelivered; i++) {
        CHECKF(fd_open(U.delivered_fds[i]), "delivered fd %d closed by the core",
               U.delivered_fds[i]);
        close(U.delivered_fds[i]);
    }
    for (unsigned i = 0; i < U.nslots; i++) {
        struct uslot *s = &U.slots[i];
        if (s->client_fd >= 0 && fd_open(s->client_fd))
            close(s->client_fd);
    }
    free_resources();
    uint8_t after[MAX_FDSET / 8];
    fd_snapshot(after);
    for (int fd = 0; fd < MAX_FDSET; fd++) {
        bool was = U.fds_before[fd / 8] & (1u << (fd % 8));
        bool is = after[fd / 8] & (1u << (fd % 8));
        if (is && !was) {
            CHECKF(U.forced_any, "fd %d leaked (an accept/socket result nobody saw?)", fd);
            close(fd);
        }
    }
    return 0;
}
