/*
 * Harness 3: fuzz_sim, an operation-program fuzzer of the core over the
 * simulated kernel (backends/sim), with a shadow model of ownership.
 *
 * Input: h0 (SQ/CQ size), h1 (fault profile switch), a u16 program length L,
 * L program bytes, then the sim's decision stream (RINGIO_SIM_SOURCE_BYTES:
 * completion order, cancel races, short transfers, fault firing; zeros past
 * the end).  With h1 bit 0 the next program bytes describe a fault profile.
 *
 * Each input gets its own descriptors (two AF_UNIX stream socketpairs, a
 * pipe, a memfd, an abstract AF_UNIX listener), closed afterwards; every
 * wait is bounded and the sim's clock is virtual, so inputs stay fast.
 *
 * The shadow model (checked with __builtin_trap, see CHECK):
 *  - no event for an unknown or released token, owner pointer matches;
 *  - one-shot operations: one event, final; multishot: sequence first,
 *    first+1, ... with more == !final; zero-copy: one event, and the release
 *    after it only once the notification arrived (final or later);
 *  - release exactly once (the record is freed in release: a second one, or
 *    any touch afterwards, is an ASan use-after-free), never while an event
 *    is being delivered, never before the final event outside close, and a
 *    consumed final event is released before ringio_core_reap returns;
 *  - received bytes are the bytes that stream carries (each stream has its
 *    own byte value) and the part of a buffer past res is untouched; over
 *    the run no stream delivers more bytes than were sent into it;
 *  - a failed submit released nothing; stats.inflight == live records;
 *  - the end: holds released, everything cancelled, reaped until idle:
 *    every token had exactly one final completion; close releases the rest
 *    (midway close: everything, then every call fails with -EBADF); no
 *    descriptor leaks out of the input, and no input takes seconds (the sim
 *    must sleep, not spin, while nothing can progress).
 */
#include "harness_common.h"

#include "ringio/core.h"
#include "ringio/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef RINGIO_FUZZ_REPLAY
#define LLVMFuzzerTestOneInput ringio_fuzz_sim_one
#endif

#define FUZZ_RUN (S.run)
#define MAX_OPS 96
#define MAX_CLIENTS 8
#define CANARY 0xEE
#define FILE_BYTE 0x20

enum act {
    A_NOP, A_TIMEOUT, A_CANCEL, A_POLL, A_RECV, A_RECV_MS, A_SEND, A_SEND_ZC, A_RECVMSG,
    A_SENDMSG, A_ACCEPT, A_ACCEPT_MS, A_CONNECT, A_READ, A_WRITE, A_OPENAT, A_SHUTDOWN_OP,
    A_PEER_WRITE, A_PEER_SHUT, A_CLIENT, A_REAP, A_WAIT, A_SUBMIT, A_MODE, A_WAKE, A_LINK,
    A_EXHAUST, A_HOLD, A_RELEASE, A_FORCE, A_ADVANCE, A_CLOSE, A_OPEN_REAL, A_SOCKET,
    A_RWV, A_FSYNC, A_FALLOCATE, A_STATX, A_FSOP, A_REG_FILES, A_FIXED_FILE_RW, A_REG_BUFS,
    A_RW_FIXED, A_CLOSE_DIRECT, A_COUNT
};
static const char *const names[A_COUNT] = {
    "nop", "timeout", "cancel", "poll", "recv", "recv_ms", "send", "send_zc", "recvmsg",
    "sendmsg", "accept", "accept_ms", "connect", "read", "write", "openat", "shutdown_op",
    "peer_write", "peer_shut", "client", "reap", "wait", "submit", "mode", "wake", "link",
    "exhaust", "hold", "release", "force", "advance", "close", "open_real", "socket",
    "rwv", "fsync", "fallocate", "statx", "fsop", "reg_files", "fixed_file_rw", "reg_bufs",
    "rw_fixed", "close_direct",
};

enum kind { K_ONESHOT, K_MULTI, K_ZC };

/* What the harness lends an operation: freed in release. */
struct rec {
    struct ringio_owner o; /* first */
    unsigned id;
    int own_fd;            /* a socket the harness made for this op (connect), or -1 */
    uint8_t *buf;
    size_t len;
    struct iovec iov;
    struct msghdr msg;
    struct sockaddr_un addr;
    socklen_t addrlen;
    struct __kernel_timespec ts;
    char path[64], path2[64];
    struct iovec iov2[2];
    struct statx stx;
    bool direct;           /* openat into the fixed table: res is a slot, not an fd */
};

/* The shadow of one operation, kept after its record is gone. */
struct shadow {
    uint64_t token;
    struct rec *rec;      /* NULL once released */
    uint8_t kind, opcode;
    int recv_fd;          /* >= 0: the data it receives must be this stream's */
    int send_fd;          /* >= 0: res counts as bytes sent into this stream */
    bool file_read;
    uint32_t first, legs; /* multishot sequences */
    unsigned events;
    bool final_seen, released;
    bool zc_more;       /* zero copy: its CQE had F_MORE, a notification must follow */
    bool notif_posted;  /* zero copy: the core has peeked its F_NOTIF CQE */
};

static struct {
    struct fuzz_run run;
    struct ringio_core *c;
    struct ringio_backend *b;
    struct shadow sh[MAX_OPS];
    unsigned nops, live;
    bool closed, closed_midway, in_close, in_deliver, draining;
    int refuse_every; /* deliver refuses event k where k % refuse_every == 0 (0: never) */
    unsigned delivered;
    enum ringio_submit_mode mode;
    int sp0[2], sp1[2], pp[2], memfd, lfd;
    struct sockaddr_un laddr;
    socklen_t laddrlen;
    int clients[MAX_CLIENTS];
    unsigned nclients;
    uint64_t sent[5], recvd[5]; /* per stream */
    uint64_t held_tags[8];
    unsigned nheld;
    uint8_t fixbuf[2][256]; /* registered buffers (READ_FIXED/WRITE_FIXED) */
    size_t prog_end;
} S;

static uint8_t u8(void)
{
    if (S.run.in_pos >= S.prog_end) {
        S.run.eof = true;
        return 0;
    }
    return fuzz_u8(&S.run);
}

/* ---- streams: which byte value travels where ----------------------------- */

/* Stream index of data read from fd (-1: not a stream). */
static int stream_of_reader(int fd)
{
    if (fd == S.sp0[1]) return 0;
    if (fd == S.sp0[0]) return 1;
    if (fd == S.sp1[1]) return 2;
    if (fd == S.sp1[0]) return 3;
    if (fd == S.pp[0]) return 4;
    return -1;
}

static int stream_of_writer(int fd)
{
    if (fd == S.sp0[0]) return 0;
    if (fd == S.sp0[1]) return 1;
    if (fd == S.sp1[0]) return 2;
    if (fd == S.sp1[1]) return 3;
    if (fd == S.pp[1]) return 4;
    return -1;
}

static uint8_t stream_byte(int stream)
{
    return (uint8_t)(0x10 + stream);
}

/* A socket end (0..3) or the pipe end matching the direction. */
static int pick_sock(uint8_t v)
{
    int fds[4] = {S.sp0[0], S.sp0[1], S.sp1[0], S.sp1[1]};
    return fds[v & 3];
}

static int pick_reader(uint8_t v)
{
    return (v % 5) == 4 ? S.pp[0] : pick_sock(v);
}

static int pick_writer(uint8_t v)
{
    return (v % 5) == 4 ? S.pp[1] : pick_sock(v);
}

/* ---- records and the shadow ------------------------------------------------ */

static void check_bytes(const uint8_t *p, size_t n, uint8_t want, const char *what)
{
    for (size_t i = 0; i < n; i++)
        CHECKF(p[i] == want, "%s byte %zu is 0x%02x, want 0x%02x", what, i, p[i], want);
}

static void on_release(struct ringio_owner *o)
{
    struct rec *r = (struct rec *)o;
    struct shadow *sh = &S.sh[r->id];
    CHECKF(!S.in_deliver, "op %u released while an event is being delivered", r->id);
    CHECKF(!sh->released && sh->rec == r, "op %u released twice", r->id);
    /* Outside close, a release is explained by the final event, or for a
     * zero-copy send by its (non-final) event followed by the notification. */
    CHECKF(S.in_close || sh->final_seen || (sh->kind == K_ZC && sh->events == 1),
           "op %u (opcode %u) released before its final completion (events %u)", r->id,
           sh->opcode, sh->events);
    CHECKF(S.in_close || sh->kind != K_ZC || !sh->zc_more || sh->notif_posted,
           "zero-copy op %u released before its F_NOTIF was posted", r->id);
    sh->released = true;
    sh->rec = NULL;
    S.live--;
    if (r->own_fd >= 0)
        close(r->own_fd);
    if (r->buf) {
        memset(r->buf, 0xDD, r->len);
        free(r->buf);
    }
    free(r);
}

static struct rec *rec_new(size_t len)
{
    /* The last slots are kept for the cancels of the final drain. */
    if (S.nops >= (S.draining ? MAX_OPS : MAX_OPS - 32))
        return NULL;
    struct rec *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->o.release = on_release;
    r->id = S.nops;
    r->o.tag = r->id + 1;
    r->own_fd = -1;
    if (len) {
        r->buf = malloc(len);
        if (!r->buf) {
            free(r);
            return NULL;
        }
        memset(r->buf, CANARY, len);
        r->len = len;
    }
    return r;
}

/* A submit returned rc: register the op in the shadow or take the record back. */
static void submitted(struct rec *r, int rc, uint64_t token, enum kind kind, uint8_t opcode,
                      int recv_fd, int send_fd, uint32_t first)
{
    if (rc < 0) {
        CHECKF(rc != -EBADF || S.closed, "submit -EBADF on an open ring");
        CHECKF(!S.closed || rc == -EBADF, "submit on a closed ring gave %d", rc);
        /* Nothing was queued: the record is still ours, release never ran. */
        if (r->own_fd >= 0)
            close(r->own_fd);
        free(r->buf);
        free(r);
        return;
    }
    CHECK(!S.closed);
    struct shadow *sh = &S.sh[S.nops++];
    memset(sh, 0, sizeof(*sh));
    sh->token = token;
    sh->rec = r;
    sh->kind = (uint8_t)kind;
    sh->opcode = opcode;
    sh->recv_fd = recv_fd;
    sh->send_fd = send_fd;
    sh->first = first;
    for (unsigned i = 0; i + 1 < S.nops; i++)
        CHECKF(S.sh[i].released || S.sh[i].token != token, "token %#llx handed out twice",
               (unsigned long long)token);
    S.live++;
}

static struct shadow *by_token(uint64_t token)
{
    for (unsigned i = 0; i < S.nops; i++)
        if (!S.sh[i].released && S.sh[i].token == token)
            return &S.sh[i];
    return NULL;
}

static void check_received(struct shadow *sh, const struct ringio_event *ev)
{
    if (ev->res <= 0)
        return;
    int stream = stream_of_reader(sh->recv_fd);
    if (ev->data) {
        CHECKF(ev->data_len == (uint32_t)ev->res, "data_len %u res %d", ev->data_len, ev->res);
        check_bytes(ev->data, ev->data_len, stream_byte(stream), "provided buffer");
        S.recvd[stream] += (uint64_t)ev->res;
        return;
    }
    struct rec *r = sh->rec;
    if (!r->buf || sh->kind == K_MULTI)
        return;
    CHECKF((size_t)ev->res <= r->len, "res %d > buffer %zu", ev->res, r->len);
    if (sh->file_read) {
        for (int i = 0; i < ev->res; i++)
            CHECKF(r->buf[i] == 0 || r->buf[i] == FILE_BYTE, "file byte %d is 0x%02x", i,
                   r->buf[i]);
    } else {
        check_bytes(r->buf, (size_t)ev->res, stream_byte(stream), "received");
        S.recvd[stream] += (uint64_t)ev->res;
    }
    check_bytes(r->buf + ev->res, r->len - (size_t)ev->res, CANARY, "past res");
}

static int deliver(void *ctx, const struct ringio_event *ev)
{
    (void)ctx;
    if (ev->wake) {
        CHECK(ev->owner == NULL && ev->token == RINGIO_TOKEN_WAKE);
        return 0;
    }
    struct shadow *sh = by_token(ev->token);
    CHECKF(sh, "event for unknown or released token %#llx (res %d flags %#x)",
           (unsigned long long)ev->token, ev->res, ev->flags);
    CHECKF(ev->owner == &sh->rec->o, "event owner does not match the token");
    CHECKF(!sh->final_seen, "event after the final one (token %#llx)",
           (unsigned long long)ev->token);
    S.delivered++;
    if (S.refuse_every && S.delivered % (unsigned)S.refuse_every == 0)
        return 7; /* left queued: delivered again, identical, by the next reap */
    S.in_deliver = true;
    switch (sh->kind) {
    case K_ONESHOT:
        CHECKF(ev->final && !ev->more && ev->sequence == 0, "one-shot event final %d more %d",
               ev->final, ev->more);
        break;
    case K_MULTI:
        CHECKF(ev->sequence == sh->first + sh->legs, "sequence %u, want %u", ev->sequence,
               sh->first + sh->legs);
        CHECKF(ev->more == !ev->final, "multishot more %d final %d", ev->more, ev->final);
        sh->legs++;
        break;
    case K_ZC:
        CHECKF(sh->events == 0, "second event of a zero-copy send");
        CHECKF(!(ev->flags & IORING_CQE_F_NOTIF), "a notification delivered as an event");
        sh->zc_more = (ev->flags & IORING_CQE_F_MORE) != 0;
        break;
    }
    if (sh->recv_fd >= 0 || sh->file_read)
        check_received(sh, ev);
    if (sh->send_fd >= 0 && ev->res > 0)
        S.sent[stream_of_writer(sh->send_fd)] += (uint64_t)ev->res;
    /* Accepted descriptors delivered to us are ours to close. */
    if ((sh->opcode == IORING_OP_ACCEPT || sh->opcode == IORING_OP_SOCKET ||
         (sh->opcode == IORING_OP_OPENAT && !sh->rec->direct)) &&
        ev->res >= 0)
        close(ev->res);
    sh->events++;
    if (ev->final)
        sh->final_seen = true;
    S.in_deliver = false;
    return 0;
}

/* After a reap: a consumed final event has been followed by its release. */
static void check_after_reap(void)
{
    for (unsigned i = 0; i < S.nops; i++)
        CHECKF(S.sh[i].released || !S.sh[i].final_seen, "op %u: final event, no release", i);
    if (!S.closed) {
        struct ringio_stats st;
        ringio_core_stats(S.c, &st);
        CHECKF(st.inflight == S.live, "stats.inflight %u, live %u", st.inflight, S.live);
    }
}

static int reap(unsigned max)
{
    int n = ringio_core_reap(S.c, max, deliver, NULL);
    CHECKF(S.closed ? n == -EBADF : (n >= 0 || n == 7 || n == -EINTR || n == -EBUSY ||
                                     n == -EAGAIN),
           "reap returned %d", n);
    check_after_reap();
    return n;
}

static void wait_once(int64_t timeout_ns)
{
    if (S.closed)
        return;
    unsigned to_submit = ringio_core_wait_prepare(S.c);
    int rc = ringio_core_wait_block(S.c, to_submit, 1, timeout_ns);
    CHECKF(rc == 0 || rc == -ETIME || rc == -EINTR || rc == -EBUSY || rc == -EAGAIN,
           "wait_block returned %d", rc);
    ringio_core_wait_finish(S.c);
}

/* ---- the backend, seen through a wrapped ops table ------------------------- */

/* The core reads CQEs through peek_cqes(): the wrapper notes each F_NOTIF it
 * hands over, so release of a zero-copy send can be checked against it. */
static const struct ringio_backend_ops *real_ops;
static struct ringio_backend_ops wrapped_ops;

static unsigned w_peek_cqes(struct ringio_backend *b, struct io_uring_cqe **cqes, unsigned max)
{
    unsigned n = real_ops->peek_cqes(b, cqes, max);
    for (unsigned i = 0; i < n; i++) {
        if (!(cqes[i]->flags & IORING_CQE_F_NOTIF))
            continue;
        struct shadow *sh = by_token(cqes[i]->user_data);
        if (sh)
            sh->notif_posted = true;
    }
    return n;
}

/* The sim's scripting API recognises its backend by its ops table: hand it
 * the real one for the call (sim_api() ... sim_api_done()). */
static struct ringio_backend *sim_api(void)
{
    S.b->ops = real_ops;
    return S.b;
}

static void sim_api_done(void)
{
    S.b->ops = &wrapped_ops;
}

/* ---- actions -------------------------------------------------------------- */

static void do_send(uint8_t kind)
{
    int fd = pick_writer(u8());
    size_t len = 1 + u8() % 96;
    struct rec *r = rec_new(len);
    if (!r)
        return;
    memset(r->buf, stream_byte(stream_of_writer(fd)), len);
    uint64_t tok = 0;
    int rc;
    int zc = kind == A_SEND_ZC;
    if (kind == A_SENDMSG || (zc && (u8() & 1))) {
        r->iov.iov_base = r->buf;
        r->iov.iov_len = len;
        r->msg.msg_iov = &r->iov;
        r->msg.msg_iovlen = 1;
        rc = zc ? ringio_submit_sendmsg_zc(S.c, &r->o, fd, &r->msg, MSG_NOSIGNAL,
                                           IORING_SEND_ZC_REPORT_USAGE, &tok)
                : ringio_submit_sendmsg(S.c, &r->o, fd, &r->msg, MSG_NOSIGNAL, &tok);
        submitted(r, rc, tok, zc ? K_ZC : K_ONESHOT,
                  zc ? IORING_OP_SENDMSG_ZC : IORING_OP_SENDMSG, -1, fd, 0);
        return;
    }
    if (zc) {
        rc = ringio_submit_send_zc(S.c, &r->o, fd, r->buf, len, MSG_NOSIGNAL, 0, &tok);
        submitted(r, rc, tok, K_ZC, IORING_OP_SEND_ZC, -1, fd, 0);
    } else if (fd == S.pp[1]) {
        rc = ringio_submit_write(S.c, &r->o, fd, r->buf, len, RINGIO_OFFSET_CURRENT, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_WRITE, -1, fd, 0);
    } else {
        rc = ringio_submit_send(S.c, &r->o, fd, r->buf, len, MSG_NOSIGNAL, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_SEND, -1, fd, 0);
    }
}

static void do_recv(uint8_t kind)
{
    int fd = pick_reader(u8());
    size_t len = 1 + u8() % 96;
    struct rec *r = rec_new(len);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc;
    if (kind == A_RECVMSG && fd != S.pp[0]) {
        r->iov.iov_base = r->buf;
        r->iov.iov_len = len;
        r->msg.msg_iov = &r->iov;
        r->msg.msg_iovlen = 1;
        rc = ringio_submit_recvmsg(S.c, &r->o, fd, &r->msg, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_RECVMSG, fd, -1, 0);
    } else if (fd == S.pp[0]) {
        rc = ringio_submit_read(S.c, &r->o, fd, r->buf, len, RINGIO_OFFSET_CURRENT, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_READ, fd, -1, 0);
    } else {
        rc = ringio_submit_recv(S.c, &r->o, fd, r->buf, len, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_RECV, fd, -1, 0);
    }
}

static uint32_t first_seq(uint8_t v)
{
    return (v & 0x80) ? UINT32_MAX - (v & 3) : (v & 3);
}

static void do_recv_ms(void)
{
    int fd = pick_sock(u8());
    unsigned size = 1 + u8() % 64, count = 1u << (u8() % 4);
    uint32_t first = first_seq(u8());
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc = ringio_submit_recv_multishot(S.c, &r->o, fd, size, count, 0, first, &tok);
    submitted(r, rc, tok, K_MULTI, IORING_OP_RECV, fd, -1, first);
}

static void do_poll(void)
{
    uint8_t v = u8();
    int fds[6] = {S.sp0[0], S.sp0[1], S.sp1[0], S.pp[0], S.pp[1], S.lfd};
    int fd = fds[v % 6];
    unsigned mask = (v & 0x40) ? POLLOUT : POLLIN;
    bool ms = v & 0x80;
    uint32_t first = ms ? first_seq(u8()) : 0;
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc = ringio_submit_poll(S.c, &r->o, fd, mask, ms, first, &tok);
    submitted(r, rc, tok, ms ? K_MULTI : K_ONESHOT, IORING_OP_POLL_ADD, -1, -1, first);
}

static void do_accept(bool ms)
{
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc;
    if (ms) {
        uint32_t first = first_seq(u8());
        rc = ringio_submit_accept_multishot(S.c, &r->o, S.lfd, SOCK_CLOEXEC, first, &tok);
        submitted(r, rc, tok, K_MULTI, IORING_OP_ACCEPT, -1, -1, first);
    } else {
        r->addrlen = sizeof(r->addr);
        bool with_addr = u8() & 1;
        rc = ringio_submit_accept(S.c, &r->o, S.lfd, with_addr ? (struct sockaddr *)&r->addr : NULL,
                                  with_addr ? &r->addrlen : NULL, SOCK_CLOEXEC, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_ACCEPT, -1, -1, 0);
    }
}

static void do_connect(void)
{
    struct rec *r = rec_new(0);
    if (!r)
        return;
    r->own_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | ((u8() & 1) ? SOCK_NONBLOCK : 0), 0);
    if (r->own_fd < 0) {
        free(r);
        return;
    }
    r->addr = S.laddr;
    uint64_t tok = 0;
    int rc = ringio_submit_connect(S.c, &r->o, r->own_fd, (struct sockaddr *)&r->addr,
                                   S.laddrlen, &tok);
    submitted(r, rc, tok, K_ONESHOT, IORING_OP_CONNECT, -1, -1, 0);
}

static void do_file(bool write)
{
    size_t len = 1 + u8() % 128;
    uint64_t off = u8() * 16u;
    struct rec *r = rec_new(len);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc;
    if (write) {
        memset(r->buf, FILE_BYTE, len);
        rc = ringio_submit_write(S.c, &r->o, S.memfd, r->buf, len, off, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_WRITE, -1, -1, 0);
    } else {
        rc = ringio_submit_read(S.c, &r->o, S.memfd, r->buf, len, off, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_READ, -1, -1, 0);
        if (rc >= 0)
            S.sh[S.nops - 1].file_read = true;
    }
}

static void do_openat(void)
{
    struct rec *r = rec_new(0);
    if (!r)
        return;
    snprintf(r->path, sizeof(r->path), "/nonexistent-ringio-fuzz/%u", u8());
    uint64_t tok = 0;
    int rc = ringio_submit_openat(S.c, &r->o, AT_FDCWD, r->path, O_RDONLY | O_CLOEXEC, 0, 0, &tok);
    submitted(r, rc, tok, K_ONESHOT, IORING_OP_OPENAT, -1, -1, 0);
}

static uint64_t pick_target(uint8_t v)
{
    if (v == 0xff)
        return 0x123456789abcull; /* garbage */
    if (S.nops == 0)
        return v;
    return S.sh[v % S.nops].token; /* live or stale */
}

static void do_cancel(void)
{
    uint8_t v = u8(), f = u8();
    unsigned flags = (f & 1) ? IORING_ASYNC_CANCEL_ALL : 0;
    if (f & 2)
        flags |= IORING_ASYNC_CANCEL_ANY;
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc = ringio_submit_cancel(S.c, &r->o, pick_target(v), flags, &tok);
    submitted(r, rc, tok, K_ONESHOT, IORING_OP_ASYNC_CANCEL, -1, -1, 0);
}

static void do_simple(uint8_t kind)
{
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc;
    if (kind == A_TIMEOUT) {
        uint8_t v = u8();
        r->ts.tv_sec = 0;
        r->ts.tv_nsec = (long long)(v & 0x3f) * 50000;
        rc = ringio_submit_timeout(S.c, &r->o, &r->ts, (v >> 6), 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_TIMEOUT, -1, -1, 0);
    } else if (kind == A_SHUTDOWN_OP) {
        /* only the pipe-free socketpair 1, write side: keeps other streams alive */
        rc = ringio_submit_shutdown(S.c, &r->o, S.sp1[u8() & 1], SHUT_WR, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_SHUTDOWN, -1, -1, 0);
    } else {
        rc = ringio_submit_nop(S.c, &r->o, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_NOP, -1, -1, 0);
    }
}

static void do_peer_write(void)
{
    int fd = pick_writer(u8());
    uint8_t buf[128];
    size_t len = 1 + u8() % sizeof(buf);
    int stream = stream_of_writer(fd);
    memset(buf, stream_byte(stream), len);
    ssize_t n = fd == S.pp[1] ? write(fd, buf, len) : send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0)
        S.sent[stream] += (uint64_t)n;
}

static void do_client(void)
{
    if (S.nclients >= MAX_CLIENTS)
        return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    if (connect(fd, (struct sockaddr *)&S.laddr, S.laddrlen) < 0 && errno != EINPROGRESS &&
        errno != EAGAIN) {
        close(fd);
        return;
    }
    S.clients[S.nclients++] = fd;
}

static void do_link(void)
{
    uint8_t v = u8();
    int rc = ringio_core_link_begin(S.c, v & 1);
    CHECKF(S.closed ? rc == -EBADF : rc == 0, "link_begin %d", rc);
    if (rc < 0)
        return;
    unsigned n = 1 + (v >> 1) % 3;
    for (unsigned i = 0; i < n; i++) {
        uint8_t k = u8() % 4;
        if (k == 0)
            do_simple(A_NOP);
        else if (k == 1)
            do_simple(A_TIMEOUT);
        else if (k == 2)
            do_file(u8() & 1);
        else
            do_send(A_SEND);
    }
    rc = ringio_core_link_end(S.c, (v & 0x80) != 0);
    CHECKF(rc >= 0 || rc == -EBUSY || rc == -EINVAL || rc == -EAGAIN, "link_end %d", rc);
}

static void do_exhaust(void)
{
    enum ringio_submit_mode old = ringio_core_set_mode(S.c, RINGIO_SUBMIT_STRICT);
    CHECK(old == S.mode);
    unsigned cap = S.b->sq_entries + 2;
    for (unsigned i = 0; i < cap; i++) {
        struct rec *r = rec_new(0);
        if (!r)
            break;
        uint64_t tok = 0;
        int rc = ringio_submit_nop(S.c, &r->o, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_NOP, -1, -1, 0);
        if (rc == -EBUSY)
            break;
        CHECKF(rc == 0, "STRICT nop %d", rc);
    }
    ringio_core_set_mode(S.c, S.mode);
}

static void do_hold(void)
{
    uint8_t v = u8();
    if (S.nheld >= 8 || S.nops == 0)
        return;
    uint64_t tag = v % S.nops + 1;
    if (ringio_sim_hold(sim_api(), tag, v & 0x80) == 0)
        S.held_tags[S.nheld++] = tag;
    sim_api_done();
}

static void release_holds(void)
{
    for (unsigned i = 0; i < S.nheld; i++)
        CHECK(ringio_sim_release(sim_api(), S.held_tags[i]) >= 0);
    if (S.nheld)
        sim_api_done();
    S.nheld = 0;
}

static void do_force(void)
{
    uint8_t v = u8();
    /* The next op with this tag: an op not submitted yet.  Only errors: a
     * scripted byte count or descriptor would be a lie the oracle rejects. */
    static const int32_t errs[4] = {-ECONNRESET, -EIO, -EPIPE, -ENOMEM};
    int32_t res = errs[v & 3];
    ringio_sim_force(sim_api(), S.nops + 1 + (v >> 6), res);
    sim_api_done();
}

/* ---- files: vectored, sync, statx, directories, registered files/buffers -- */

static int fsdir = -1; /* a private directory, opened once per process */
static char fsdir_path[] = "/tmp/ringio-fuzz-sim-XXXXXX";

static void fsdir_remove(void)
{
    rmdir(fsdir_path);
}

static void do_open_real(void)
{
    uint8_t v = u8();
    struct rec *r = rec_new(0);
    if (!r)
        return;
    unsigned index = 0;
    if (v & 0x40) /* slots 4 and 5, or the kernel's pick (the empty slot 2 first) */
        index = (v & 0x80) ? IORING_FILE_INDEX_ALLOC : 5u + (v & 1u);
    r->direct = index != 0;
    /* Into the table only /dev/null: fixed reads of a slot see no foreign bytes. */
    snprintf(r->path, sizeof(r->path), "%s", (v & 1) || index ? "/dev/null" : "/proc/self/stat");
    uint64_t tok = 0;
    int rc = ringio_submit_openat(S.c, &r->o, AT_FDCWD, r->path, O_RDONLY | O_CLOEXEC, 0, index,
                                  &tok);
    submitted(r, rc, tok, K_ONESHOT, IORING_OP_OPENAT, -1, -1, 0);
}

static void do_socket(void)
{
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint8_t v = u8();
    uint64_t tok = 0;
    int rc = ringio_submit_socket(S.c, &r->o, (v & 1) ? AF_UNIX : AF_INET,
                                  ((v & 2) ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0, &tok);
    submitted(r, rc, tok, K_ONESHOT, IORING_OP_SOCKET, -1, -1, 0);
}

static void do_rwv(void)
{
    uint8_t v = u8();
    size_t a = 1 + u8() % 64, b = 1 + u8() % 64;
    struct rec *r = rec_new(a + b);
    if (!r)
        return;
    r->iov2[0] = (struct iovec){r->buf, a};
    r->iov2[1] = (struct iovec){r->buf + a, b};
    uint64_t off = (uint64_t)(v >> 1) * 8, tok = 0;
    int rc;
    if (v & 1) {
        memset(r->buf, FILE_BYTE, a + b);
        rc = ringio_submit_writev(S.c, &r->o, S.memfd, r->iov2, 2, off, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_WRITEV, -1, -1, 0);
    } else {
        rc = ringio_submit_readv(S.c, &r->o, S.memfd, r->iov2, 2, off, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_READV, -1, -1, 0);
        if (rc >= 0)
            S.sh[S.nops - 1].file_read = true;
    }
}

static void do_sync(bool fallocate)
{
    uint8_t v = u8();
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc;
    if (fallocate) {
        rc = ringio_submit_fallocate(S.c, &r->o, S.memfd, 0, (uint64_t)v * 64, 1 + (v & 15) * 32,
                                     0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_FALLOCATE, -1, -1, 0);
    } else {
        rc = ringio_submit_fsync(S.c, &r->o, (v & 2) ? S.sp0[0] : S.memfd,
                                 (v & 1) ? IORING_FSYNC_DATASYNC : 0, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_FSYNC, -1, -1, 0);
    }
}

static void do_statx(void)
{
    uint8_t v = u8();
    struct rec *r = rec_new(0);
    if (!r)
        return;
    snprintf(r->path, sizeof(r->path), "%s", (v & 1) ? "/" : (v & 2) ? "" : "/nonexistent/x");
    uint64_t tok = 0;
    int rc = ringio_submit_statx(S.c, &r->o, (v & 2) ? S.memfd : AT_FDCWD, r->path,
                                 (v & 2) ? AT_EMPTY_PATH : 0, STATX_BASIC_STATS, &r->stx, &tok);
    submitted(r, rc, tok, K_ONESHOT, IORING_OP_STATX, -1, -1, 0);
}

/* mkdirat/unlinkat/renameat on names d0..d3 of the private directory. */
static void do_fsop(void)
{
    uint8_t v = u8();
    struct rec *r = rec_new(0);
    if (!r || fsdir < 0) {
        free(r);
        return;
    }
    snprintf(r->path, sizeof(r->path), "d%u", v & 3);
    snprintf(r->path2, sizeof(r->path2), "d%u", (v >> 2) & 3);
    uint64_t tok = 0;
    int rc;
    switch ((v >> 4) % 3) {
    case 0:
        rc = ringio_submit_mkdirat(S.c, &r->o, fsdir, r->path, 0700, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_MKDIRAT, -1, -1, 0);
        break;
    case 1:
        rc = ringio_submit_unlinkat(S.c, &r->o, fsdir, r->path, (v & 0x80) ? AT_REMOVEDIR : 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_UNLINKAT, -1, -1, 0);
        break;
    default:
        rc = ringio_submit_renameat(S.c, &r->o, fsdir, r->path, fsdir, r->path2, 0, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_RENAMEAT, -1, -1, 0);
        break;
    }
}

static void fsdir_clean(void)
{
    if (fsdir < 0)
        return;
    for (unsigned i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof(name), "d%u", i);
        unlinkat(fsdir, name, AT_REMOVEDIR);
        unlinkat(fsdir, name, 0);
    }
}

static void do_reg_files(void)
{
    uint8_t v = u8();
    int fds[6] = {S.memfd, S.sp0[0], -1, S.pp[1], -1, -1};
    int rc = ringio_core_register_files(S.c, fds, (v & 1) ? 0 : 6);
    CHECKF(rc == 0 || rc == -EBUSY || rc == -ENXIO || rc == -EINVAL, "register_files %d", rc);
}

static void do_fixed_file_rw(void)
{
    uint8_t v = u8();
    size_t len = 1 + u8() % 64;
    struct rec *r = rec_new(len);
    if (!r)
        return;
    unsigned slot = v & 3; /* 0: the memfd, 2: empty, 3: the pipe's write end */
    if (slot == 1)
        slot = 0; /* the socket: its stream carries other bytes */
    uint64_t tok = 0;
    int rc;
    if (v & 0x80) {
        memset(r->buf, slot == 3 ? stream_byte(4) : FILE_BYTE, len);
        rc = ringio_submit_write(S.c, &r->o, (int)slot, r->buf, len, slot == 3 ? RINGIO_OFFSET_CURRENT : 0,
                                 RINGIO_OPT_FIXED_FILE, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_WRITE, -1, slot == 3 ? S.pp[1] : -1, 0);
    } else {
        slot &= 2; /* a readable slot: the memfd or the empty one */
        rc = ringio_submit_read(S.c, &r->o, (int)slot, r->buf, len, 0, RINGIO_OPT_FIXED_FILE, &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_READ, -1, -1, 0);
        if (rc >= 0)
            S.sh[S.nops - 1].file_read = true;
    }
}

static void do_reg_bufs(void)
{
    uint8_t v = u8();
    struct iovec iov[2] = {{S.fixbuf[0], sizeof(S.fixbuf[0])}, {S.fixbuf[1], sizeof(S.fixbuf[1])}};
    int rc = ringio_core_register_buffers(S.c, iov, (v & 1) ? 0 : 2);
    CHECKF(rc == 0 || rc == -EBUSY || rc == -ENXIO || rc == -EINVAL || rc == -ENOMEM,
           "register_buffers %d", rc);
}

static void do_rw_fixed(void)
{
    uint8_t v = u8(), w = u8();
    unsigned idx = v & 1;
    size_t off = w % 200, len = 1 + (v >> 1) % 64; /* may run past the buffer: -EFAULT */
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc;
    if (v & 0x80) {
        rc = ringio_submit_write_fixed(S.c, &r->o, S.memfd, S.fixbuf[idx] + off, len, 0, idx, 0,
                                       &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_WRITE_FIXED, -1, -1, 0);
    } else {
        rc = ringio_submit_read_fixed(S.c, &r->o, S.memfd, S.fixbuf[idx] + off, len, 0, idx, 0,
                                      &tok);
        submitted(r, rc, tok, K_ONESHOT, IORING_OP_READ_FIXED, -1, -1, 0);
    }
}

static void do_close_direct(void)
{
    struct rec *r = rec_new(0);
    if (!r)
        return;
    uint64_t tok = 0;
    int rc = ringio_submit_close_direct(S.c, &r->o, u8() % 6, &tok);
    submitted(r, rc, tok, K_ONESHOT, IORING_OP_CLOSE, -1, -1, 0);
}

/* Close midway (or at the end): everything live is released inside close. */
static void do_close(int64_t timeout_ns)
{
    if (S.closed)
        return;
    /* A held CQE is invisible to the core: an accepted descriptor in it
     * would leak, as a CQE a kernel never posts would.  Holds are a test
     * facility, so they end before the ring does. */
    release_holds();
    unsigned before = S.live;
    S.in_close = true;
    int rc = ringio_core_close(S.c, timeout_ns);
    S.in_close = false;
    S.closed = true;
    CHECKF(rc >= 0 && (unsigned)rc <= before, "close returned %d with %u live", rc, before);
    CHECKF(S.live == 0, "%u operations not released by close", S.live);
    CHECK(ringio_core_closed(S.c));
    uint64_t tok;
    struct rec r = {.o = {.release = on_release}};
    CHECK(ringio_submit_nop(S.c, &r.o, &tok) == -EBADF);
    CHECK(ringio_core_wake(S.c) == -EBADF);
    CHECK(ringio_core_submit(S.c) == -EBADF);
    CHECK(ringio_core_reap(S.c, 8, deliver, NULL) == -EBADF);
}

/* Bring the ring to idle: every live op must reach its final completion
 * (holds released, everything cancelled, bounded rounds of virtual time). */
static void drain_all(void)
{
    if (S.closed)
        return;
    release_holds();
    ringio_core_set_mode(S.c, RINGIO_SUBMIT_NOW);
    S.refuse_every = 0;
    S.draining = true;
    if (S.live == 0)
        return;
    for (int round = 0; round < 200 && S.live > 0; round++) {
        struct rec *r = round % 8 == 0 ? rec_new(0) : NULL;
        if (r) {
            uint64_t tok = 0;
            int rc = ringio_submit_cancel(S.c, &r->o, 0,
                                          IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL, &tok);
            submitted(r, rc, tok, K_ONESHOT, IORING_OP_ASYNC_CANCEL, -1, -1, 0);
        }
        wait_once(1000 * 1000);
        reap(UINT32_MAX);
    }
    for (unsigned i = 0; i < S.nops; i++)
        CHECKF(S.sh[i].released, "op %u (opcode %u, token %#llx, %u events) never completed",
               i, S.sh[i].opcode, (unsigned long long)S.sh[i].token, S.sh[i].events);
}

/* ---- setup ------------------------------------------------------------------- */

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 256; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

/* On a leak: what is open, for the report. */
static void list_fds(void)
{
    for (int fd = 0; fd < 256; fd++) {
        char p[64], t[256];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(p, t, sizeof(t) - 1);
        if (n > 0) {
            t[n] = 0;
            fprintf(stderr, "  fd %d -> %s\n", fd, t);
        }
    }
}

static bool make_resources(void)
{
    static unsigned serial;
    S.sp0[0] = S.sp0[1] = S.sp1[0] = S.sp1[1] = S.pp[0] = S.pp[1] = S.memfd = S.lfd = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, S.sp0) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, S.sp1) < 0 ||
        pipe2(S.pp, O_CLOEXEC | O_NONBLOCK) < 0)
        return false;
    S.memfd = memfd_create("ringio-fuzz-sim", MFD_CLOEXEC);
    S.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (S.memfd < 0 || S.lfd < 0)
        return false;
    memset(&S.laddr, 0, sizeof(S.laddr));
    S.laddr.sun_family = AF_UNIX;
    int n = snprintf(S.laddr.sun_path + 1, sizeof(S.laddr.sun_path) - 1, "ringio-fuzz-sim-%d-%u",
                     (int)getpid(), serial++);
    S.laddrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    return bind(S.lfd, (struct sockaddr *)&S.laddr, S.laddrlen) == 0 && listen(S.lfd, 16) == 0;
}

static void free_resources(void)
{
    int *fds[] = {&S.sp0[0], &S.sp0[1], &S.sp1[0], &S.sp1[1], &S.pp[0], &S.pp[1], &S.memfd, &S.lfd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    for (unsigned i = 0; i < S.nclients; i++)
        close(S.clients[i]);
}

/* Fault profile from the program bytes (h1 bit 0). */
static void read_faults(struct ringio_sim_faults *f)
{
    memset(f, 0, sizeof(*f));
    uint8_t on = u8();
    for (unsigned i = 0; i < RINGIO_SIM_FAULT_COUNT; i++) {
        if (!(on & (1u << i)))
            continue;
        f->site[i].enable = 1000;
        f->site[i].fire = (uint16_t)(1 + u8() * 3);
    }
    static const uint8_t ops[] = {IORING_OP_RECV, IORING_OP_SEND, IORING_OP_READ,
                                  IORING_OP_WRITE, IORING_OP_ACCEPT, IORING_OP_SEND_ZC,
                                  IORING_OP_SENDMSG, IORING_OP_RECVMSG, IORING_OP_CONNECT,
                                  IORING_OP_NOP};
    static const int16_t errs[] = {EIO, ECONNRESET, ENOMEM, EPIPE};
    for (size_t i = 0; i < sizeof(ops); i++)
        for (int j = 0; j < RINGIO_SIM_MAX_ERRNOS; j++)
            f->errors[ops[i]][j] = errs[j];
}

static void run_action(uint8_t a)
{
    switch (a) {
    case A_NOP: case A_TIMEOUT: case A_SHUTDOWN_OP: do_simple(a); break;
    case A_CANCEL: do_cancel(); break;
    case A_POLL: do_poll(); break;
    case A_RECV: case A_RECVMSG: do_recv(a); break;
    case A_RECV_MS: do_recv_ms(); break;
    case A_SEND: case A_SEND_ZC: case A_SENDMSG: do_send(a); break;
    case A_ACCEPT: do_accept(false); break;
    case A_ACCEPT_MS: do_accept(true); break;
    case A_CONNECT: do_connect(); break;
    case A_READ: do_file(false); break;
    case A_WRITE: do_file(true); break;
    case A_OPENAT: do_openat(); break;
    case A_PEER_WRITE: do_peer_write(); break;
    case A_PEER_SHUT: shutdown(S.sp0[u8() & 1], SHUT_WR); break;
    case A_CLIENT: do_client(); break;
    case A_REAP: {
        uint8_t v = u8();
        S.refuse_every = (v & 0x80) ? 1 + (v >> 4 & 3) : 0;
        reap((v & 0xf) == 0xf ? UINT32_MAX : (v & 0xf));
        S.refuse_every = 0;
        break;
    }
    case A_WAIT: {
        uint8_t v = u8();
        wait_once((v & 3) == 0 ? 0 : (int64_t)(v >> 2) * 5000);
        reap(UINT32_MAX);
        break;
    }
    case A_SUBMIT: {
        int rc = ringio_core_submit(S.c);
        CHECKF(rc >= 0 || rc == -EBUSY || rc == -EAGAIN || rc == -EINTR, "submit %d", rc);
        break;
    }
    case A_MODE: {
        enum ringio_submit_mode m = (enum ringio_submit_mode)(u8() % 3);
        CHECK(ringio_core_set_mode(S.c, m) == S.mode);
        S.mode = m;
        break;
    }
    case A_WAKE: {
        int rc = ringio_core_wake(S.c);
        CHECKF(rc == 0 || rc == -EBUSY || rc == -EAGAIN, "wake %d", rc);
        break;
    }
    case A_LINK: do_link(); break;
    case A_EXHAUST: do_exhaust(); break;
    case A_HOLD: do_hold(); break;
    case A_RELEASE: release_holds(); break;
    case A_FORCE: do_force(); break;
    case A_ADVANCE:
        ringio_sim_advance(sim_api(), (uint64_t)u8() * 100000);
        sim_api_done();
        break;
    case A_OPEN_REAL: do_open_real(); break;
    case A_SOCKET: do_socket(); break;
    case A_RWV: do_rwv(); break;
    case A_FSYNC: do_sync(false); break;
    case A_FALLOCATE: do_sync(true); break;
    case A_STATX: do_statx(); break;
    case A_FSOP: do_fsop(); break;
    case A_REG_FILES: do_reg_files(); break;
    case A_FIXED_FILE_RW: do_fixed_file_rw(); break;
    case A_REG_BUFS: do_reg_bufs(); break;
    case A_RW_FIXED: do_rw_fixed(); break;
    case A_CLOSE_DIRECT: do_close_direct(); break;
    case A_CLOSE:
        S.closed_midway = true;
        do_close((u8() & 1) ? 1000 * 1000 : 0);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fsdir < 0) {
        if (mkdtemp(fsdir_path)) {
            fsdir = open(fsdir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            atexit(fsdir_remove);
        }
    }
    /* Per input: libFuzzer itself opens pipes between inputs (symbolizer). */
    int fds_base = count_fds();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&S, 0, sizeof(S));
    fuzz_run_start(&S.run, "fuzz_sim", names, A_COUNT, data, size);
    if (size < 4)
        return 0;
    uint8_t h0 = data[0], h1 = data[1];
    size_t plen = (size_t)data[2] | (size_t)data[3] << 8;
    if (plen > size - 4)
        plen = size - 4;
    S.prog_end = 4 + plen;
    S.run.in_pos = 4;

    struct ringio_sim_faults faults;
    if (h1 & 1)
        read_faults(&faults);
    unsigned sq = 1u << (h0 & 3) << ((h0 >> 2) & 1); /* 1 .. 16 */
    struct ringio_setup setup = {
        .entries = sq,
        .cq_entries = (h0 & 0x10) ? sq : 0, /* CQ as small as the SQ: overflow */
        .flags = (h0 & 0x10) ? IORING_SETUP_CQSIZE : 0,
    };
    struct ringio_sim_config cfg = {
        .source = RINGIO_SIM_SOURCE_BYTES,
        .bytes = data + S.prog_end,
        .nbytes = size - S.prog_end,
        .faults = (h1 & 1) ? &faults : NULL,
        .notify = (h1 >> 1) & 1,
    };
    if (!make_resources()) {
        free_resources();
        return 0;
    }
    int rc = ringio_sim_backend_new(&setup, &cfg, &S.b);
    CHECKF(rc == 0, "sim backend: %d", rc);
    if (cfg.notify) /* the pollable ring fd, as the asyncio integration uses it */
        CHECK(ringio_sim_notify_enable(S.b) == 0);
    real_ops = S.b->ops;
    wrapped_ops = *real_ops;
    wrapped_ops.peek_cqes = w_peek_cqes;
    S.b->ops = &wrapped_ops;
    CHECK(ringio_core_new(S.b, &S.c) == 0);
    S.mode = (enum ringio_submit_mode)((h0 >> 5) % 3);
    ringio_core_set_mode(S.c, S.mode);
    TRACE("fuzz_sim: sq %u cq %u mode %d faults %d\n", S.b->sq_entries, S.b->cq_entries, S.mode,
          h1 & 1);

    for (S.run.step = 1; !S.run.eof && !S.closed; S.run.step++) {
        uint8_t a = u8();
        if (S.run.eof)
            break;
        S.run.action = a % A_COUNT;
        TRACE("#%u %s\n", S.run.step, names[S.run.action]);
        run_action((uint8_t)S.run.action);
        if (!S.closed)
            check_after_reap();
    }
    S.run.action = -1;
    drain_all();
    do_close(1000 * 1000);
    ringio_core_free(S.c);
    for (unsigned i = 0; i < S.nops; i++)
        CHECKF(S.sh[i].released, "op %u never released", i);
    /* Sends completed inside a midway close were never counted. */
    for (int i = 0; i < 5 && !S.closed_midway; i++)
        CHECKF(S.recvd[i] <= S.sent[i], "stream %d: %llu bytes received, %llu sent", i,
               (unsigned long long)S.recvd[i], (unsigned long long)S.sent[i]);
    free_resources();
    fsdir_clean();
    int now = count_fds();
    if (now != fds_base)
        list_fds();
    CHECKF(now == fds_base, "descriptor leak: %d open, %d before", now, fds_base);
    /* Every wait is bounded and the clock is virtual: an input taking
     * seconds means the sim spins (it did on a full AF_UNIX backlog). */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECKF(secs < 3.0, "input took %.1f s", secs);
    return 0;
}
