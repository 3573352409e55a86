/*
 * Harness 4: fuzz_diff, the differential fuzzer.  One program runs through
 * the core on the real io_uring backend, then on the simulated kernel in
 * faithful mode (no faults; the rest of the input is the sim's decision
 * stream, so completion order is fuzzed), and what must agree is compared
 * per operation (keyed by the program's item number, not by completion
 * order): the result (errno or byte count), the CQE flags that mean
 * something to the caller (F_MORE, F_BUFFER), whether the operation was
 * still pending when the step ended, the bytes received, and at the end the
 * file's content and the bytes left in each socket direction.
 *
 * Input: u16 program length L, L program bytes, then the sim's decisions.
 * Items also include one-shot polls (POLLIN, POLLOUT): their result is the
 * event mask, which both must report the same.
 * The program is a list of steps; a step is a batch of up to 3 items
 * submitted together, then waited for.  The decoder keeps every batch free
 * of races whose outcome the kernel itself does not fix: at most one reader
 * and one writer per socket direction, a file write only alone with other
 * file items absent, shutdown alone.  A receive the model says cannot
 * complete (empty direction, no writer in the batch, peer not shut) is left
 * pending and cancelled at the end of the step: -ECANCELED on both, cancel 0.
 *
 * Allowed divergences come from the sim's divergence table (the comment at
 * the top of backends/sim/sim.c); the ones this program domain can meet:
 *  - "notification timing": zero-copy notifications come at other times, so
 *    only the SEND_ZC result is compared, not when its owner is released;
 *  - IORING_CQE_F_SOCK_NONEMPTY is a hint the kernel sets when the socket
 *    still holds data and the sim never sets (row "CQE_F_SOCK_NONEMPTY"):
 *    masked out;
 *  - "timeouts": the sim's clock is virtual; only -ETIME is compared.
 * Nothing else is skipped.  A mismatch prints both sides and traps.
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef RINGIO_FUZZ_REPLAY
#define LLVMFuzzerTestOneInput ringio_fuzz_diff_one
#endif

#define FUZZ_RUN (D.run)
#define MAX_ITEMS 64
#define MAX_LEN 256
#define FILE_SPAN 4096
#define MAX_BUFFERED 32768

enum ikind {
    I_NOP, I_TIMEOUT, I_SEND, I_SENDMSG, I_SEND_ZC, I_RECV, I_RECVMSG, I_READ, I_WRITE,
    I_OPENAT, I_CANCEL_GARBAGE, I_SHUTDOWN, I_POLL_IN, I_POLL_OUT, I_COUNT
};
static const char *const inames[I_COUNT] = {
    "nop", "timeout", "send", "sendmsg", "send_zc", "recv", "recvmsg", "read", "write",
    "openat", "cancel_garbage", "shutdown", "poll_in", "poll_out",
};

struct item {
    uint8_t kind;
    uint8_t end;       /* socket end 0/1: sends go from it, receives read at it */
    uint16_t len;
    uint16_t off;      /* file offset */
    uint32_t serial;   /* data pattern of a send or write */
    bool expect_pending;
};

struct step {
    uint8_t first, n; /* items[first .. first+n) */
};

/* What one backend did with one item. */
struct outcome {
    bool done;
    bool pending_at_end; /* still pending when the step ended: cancelled by us */
    int32_t res;
    uint32_t flags;
    bool more;
    int32_t cancel_res;  /* the cancel's result when pending_at_end */
    uint16_t dlen;
    uint8_t data[MAX_LEN];
};

struct drec {
    struct ringio_owner o; /* first */
    int item;              /* -1: a harness cancel */
    uint8_t buf[MAX_LEN];
    struct iovec iov;
    struct msghdr msg;
    struct __kernel_timespec ts;
};

struct side {
    const char *name;
    struct ringio_core *c;
    int sp[2], memfd;
    struct outcome out[MAX_ITEMS];
    uint64_t token[MAX_ITEMS];
    uint64_t cancel_token[MAX_ITEMS];
    unsigned live;
    uint8_t file[FILE_SPAN + MAX_LEN];
    ssize_t file_len;
    uint8_t left[2][MAX_BUFFERED];
    ssize_t left_len[2];
};

static struct {
    struct fuzz_run run;
    size_t prog_end;
    struct item items[MAX_ITEMS];
    unsigned nitems;
    struct step steps[MAX_ITEMS];
    unsigned nsteps;
    struct side side[2]; /* 0: uring, 1: sim */
    struct side *cur;
} D;

static uint8_t u8(void)
{
    if (D.run.in_pos >= D.prog_end) {
        D.run.eof = true;
        return 0;
    }
    return fuzz_u8(&D.run);
}

/* ---- decoding: a program both backends must run identically ------------ */

static bool is_send(uint8_t k)
{
    return k == I_SEND || k == I_SENDMSG || k == I_SEND_ZC;
}

static bool is_recv(uint8_t k)
{
    return k == I_RECV || k == I_RECVMSG;
}

/* Readers for the batch rules: a POLLIN poll races a receive at its end the
 * way a second receive would (it may see the bytes before or after). */
static bool is_reader(uint8_t k)
{
    return is_recv(k) || k == I_POLL_IN;
}

static bool is_file(uint8_t k)
{
    return k == I_READ || k == I_WRITE;
}

/* The model the decoder keeps to build race-free batches. */
struct model {
    uint32_t buffered[2]; /* bytes waiting to be read at end i */
    bool shut[2];         /* end i shut its writing side */
};

/* Can item `it` join the batch items[first..nitems)?  A receive at end e and
 * a send into e (from the other end) may share a batch only when e has nothing
 * buffered: otherwise whether the receive sees the new bytes depends on the
 * order the backend runs them in. */
static bool fits(const struct item *it, unsigned first, const struct model *m)
{
    for (unsigned i = first; i < D.nitems; i++) {
        const struct item *o = &D.items[i];
        const struct item *rx = is_reader(it->kind) ? it : o, *tx = is_reader(it->kind) ? o : it;
        if (is_reader(rx->kind) && is_send(tx->kind) && rx->end != tx->end &&
            m->buffered[rx->end] > 0)
            return false;
        if (it->kind == I_SHUTDOWN || o->kind == I_SHUTDOWN)
            return false;
        if (is_send(it->kind) && is_send(o->kind) && it->end == o->end)
            return false;
        if (is_reader(it->kind) && is_reader(o->kind) && it->end == o->end)
            return false;
        if (is_file(it->kind) && is_file(o->kind) && (it->kind == I_WRITE || o->kind == I_WRITE))
            return false;
    }
    return true;
}

static void model_apply(struct model *m, unsigned first)
{
    /* Sends first: a receive in the same batch may see the send's bytes. */
    bool writer_into[2] = {false, false};
    for (unsigned i = first; i < D.nitems; i++) {
        struct item *it = &D.items[i];
        if (it->kind == I_SEND || it->kind == I_SENDMSG) {
            if (!m->shut[it->end])
                writer_into[!it->end] = true;
        }
    }
    for (unsigned i = first; i < D.nitems; i++) {
        struct item *it = &D.items[i];
        if (is_reader(it->kind)) {
            unsigned e = it->end;
            it->expect_pending = m->buffered[e] == 0 && !writer_into[e] && !m->shut[!e];
        } else if (it->kind == I_POLL_OUT) {
            /* An AF_UNIX stream end stops polling writable once a quarter of
             * its send buffer is in flight (skb overhead included): with a
             * few KiB unread at the peer, do not wait for it.  A pending
             * guess only shortens the wait; a ready poll completes inline
             * at submit on both, so the comparison stands either way. */
            it->expect_pending = m->buffered[!it->end] > 2048;
        }
    }
    for (unsigned i = first; i < D.nitems; i++) {
        struct item *it = &D.items[i];
        if ((it->kind == I_SEND || it->kind == I_SENDMSG) && !m->shut[it->end])
            m->buffered[!it->end] += it->len;
        else if (it->kind == I_SHUTDOWN)
            m->shut[it->end] = true;
    }
    for (unsigned i = first; i < D.nitems; i++) {
        struct item *it = &D.items[i];
        if (is_recv(it->kind) && !it->expect_pending) {
            uint32_t *b = &m->buffered[it->end];
            *b = *b > it->len ? *b - it->len : 0;
        }
    }
}

static void decode(void)
{
    struct model m = {{0, 0}, {false, false}};
    uint32_t serial = 1;
    while (D.nsteps < MAX_ITEMS && D.nitems + 3 <= MAX_ITEMS) {
        uint8_t h = u8();
        if (D.run.eof)
            break;
        unsigned first = D.nitems, want = 1 + h % 3;
        for (unsigned k = 0; k < want; k++) {
            struct item it = {0};
            uint8_t a = u8(), b = u8();
            it.kind = a % I_COUNT;
            it.end = (a >> 7) & 1;
            it.len = (uint16_t)(1 + b % MAX_LEN);
            it.off = (uint16_t)((a >> 4 & 7) * 512 + (b & 0x3f));
            it.serial = serial++;
            /* Keep socket buffers far below their limits: sends never block. */
            if (is_send(it.kind) && m.buffered[!it.end] + it.len > MAX_BUFFERED)
                it.kind = I_NOP;
            if (fits(&it, first, &m))
                D.items[D.nitems++] = it;
        }
        if (D.nitems == first)
            continue;
        model_apply(&m, first);
        D.steps[D.nsteps++] = (struct step){(uint8_t)first, (uint8_t)(D.nitems - first)};
    }
}

/* ---- running on one backend -------------------------------------------- */

static void on_release(struct ringio_owner *o)
{
    struct drec *r = (struct drec *)o;
    D.cur->live--;
    free(r);
}

static struct drec *drec_new(int item)
{
    struct drec *r = calloc(1, sizeof(*r));
    CHECK(r);
    r->o.release = on_release;
    r->item = item;
    return r;
}

static int deliver(void *ctx, const struct ringio_event *ev)
{
    (void)ctx;
    if (ev->wake)
        return 0;
    struct drec *r = (struct drec *)ev->owner;
    struct side *s = D.cur;
    if (r->item < 0) { /* a harness cancel: record on the item it cancelled */
        int target = -r->item - 1;
        s->out[target].cancel_res = ev->res;
        return 0;
    }
    struct outcome *o = &s->out[r->item];
    const struct item *it = &D.items[r->item];
    CHECKF(!o->done || it->kind == I_SEND_ZC, "%s: second event for item %d", s->name, r->item);
    o->done = true;
    o->res = ev->res;
    o->flags = ev->flags & ~(uint32_t)IORING_CQE_F_SOCK_NONEMPTY;
    o->more = ev->more;
    if (is_recv(it->kind) || it->kind == I_READ) {
        if (ev->res > 0 && ev->res <= MAX_LEN) {
            o->dlen = (uint16_t)ev->res;
            memcpy(o->data, r->buf, (size_t)ev->res);
        }
    }
    return 0;
}

static void submit_item(struct side *s, int idx)
{
    const struct item *it = &D.items[idx];
    struct drec *r = drec_new(idx);
    int fd = s->sp[it->end];
    uint64_t tok = 0;
    int rc = -EINVAL;
    for (unsigned i = 0; i < it->len; i++)
        r->buf[i] = fuzz_pat(it->serial, i);
    r->iov.iov_base = r->buf;
    r->iov.iov_len = it->len;
    r->msg.msg_iov = &r->iov;
    r->msg.msg_iovlen = 1;
    switch (it->kind) {
    case I_NOP: rc = ringio_submit_nop(s->c, &r->o, &tok); break;
    case I_TIMEOUT:
        r->ts.tv_nsec = 1000 + it->len * 100;
        rc = ringio_submit_timeout(s->c, &r->o, &r->ts, 0, 0, &tok);
        break;
    case I_SEND: rc = ringio_submit_send(s->c, &r->o, fd, r->buf, it->len, MSG_NOSIGNAL, &tok); break;
    case I_SENDMSG: rc = ringio_submit_sendmsg(s->c, &r->o, fd, &r->msg, MSG_NOSIGNAL, &tok); break;
    case I_SEND_ZC:
        rc = ringio_submit_send_zc(s->c, &r->o, fd, r->buf, it->len, MSG_NOSIGNAL, 0, &tok);
        break;
    case I_RECV: rc = ringio_submit_recv(s->c, &r->o, fd, r->buf, it->len, 0, &tok); break;
    case I_RECVMSG: rc = ringio_submit_recvmsg(s->c, &r->o, fd, &r->msg, 0, &tok); break;
    case I_READ: rc = ringio_submit_read(s->c, &r->o, s->memfd, r->buf, it->len, it->off, 0, &tok); break;
    case I_WRITE: rc = ringio_submit_write(s->c, &r->o, s->memfd, r->buf, it->len, it->off, 0, &tok); break;
    case I_OPENAT:
        rc = ringio_submit_openat(s->c, &r->o, AT_FDCWD, "/nonexistent-ringio-fuzz-diff/x",
                                  O_RDONLY | O_CLOEXEC, 0, 0, &tok);
        break;
    case I_CANCEL_GARBAGE: rc = ringio_submit_cancel(s->c, &r->o, 0x5eed0000beefull, 0, &tok); break;
    case I_SHUTDOWN: rc = ringio_submit_shutdown(s->c, &r->o, fd, SHUT_WR, &tok); break;
    case I_POLL_IN: rc = ringio_submit_poll(s->c, &r->o, fd, POLLIN, false, 0, &tok); break;
    case I_POLL_OUT: rc = ringio_submit_poll(s->c, &r->o, fd, POLLOUT, false, 0, &tok); break;
    }
    CHECKF(rc == 0, "%s: submit %s: %d", s->name, inames[it->kind], rc);
    s->token[idx] = tok;
    s->live++;
}

static void wait_reap(struct side *s, int64_t timeout_ns)
{
    unsigned to_submit = ringio_core_wait_prepare(s->c);
    int rc = ringio_core_wait_block(s->c, to_submit, 1, timeout_ns);
    CHECKF(rc == 0 || rc == -ETIME || rc == -EINTR, "%s: wait %d", s->name, rc);
    ringio_core_wait_finish(s->c);
    int n = ringio_core_reap(s->c, UINT32_MAX, deliver, NULL);
    CHECKF(n >= 0, "%s: reap %d", s->name, n);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait until every item of the step the model expects to finish is done
 * (bounded: 2 s of real time), then cancel what is still pending. */
static void run_step(struct side *s, const struct step *st)
{
    for (unsigned i = st->first; i < st->first + st->n; i++)
        submit_item(s, (int)i);
    CHECK(ringio_core_submit(s->c) >= 0);
    int64_t deadline = now_ns() + 2000000000;
    for (;;) {
        bool waiting = false;
        for (unsigned i = st->first; i < st->first + st->n; i++)
            if (!s->out[i].done && !D.items[i].expect_pending)
                waiting = true;
        if (!waiting || now_ns() > deadline)
            break;
        wait_reap(s, 20 * 1000 * 1000);
    }
    /* Let expected-pending receives show that they stay pending: one poll. */
    wait_reap(s, 0);
    unsigned cancels = 0;
    for (unsigned i = st->first; i < st->first + st->n; i++) {
        if (s->out[i].done)
            continue;
        s->out[i].pending_at_end = true;
        struct drec *r = drec_new(-(int)i - 1);
        uint64_t tok;
        CHECK(ringio_submit_cancel(s->c, &r->o, s->token[i], 0, &tok) == 0);
        s->live++;
        cancels++;
    }
    if (cancels)
        CHECK(ringio_core_submit(s->c) >= 0);
    deadline = now_ns() + 2000000000;
    for (;;) {
        bool waiting = false;
        for (unsigned i = st->first; i < st->first + st->n; i++)
            if (!s->out[i].done)
                waiting = true;
        if (!waiting || now_ns() > deadline)
            break;
        wait_reap(s, 20 * 1000 * 1000);
    }
}

static void snapshot(struct side *s)
{
    s->file_len = pread(s->memfd, s->file, sizeof(s->file), 0);
    for (int e = 0; e < 2; e++) {
        s->left_len[e] = recv(s->sp[e], s->left[e], sizeof(s->left[e]), MSG_DONTWAIT);
        if (s->left_len[e] < 0)
            s->left_len[e] = -errno;
    }
}

/* Returns false when the backend is unavailable (no io_uring here). */
static bool run_side(struct side *s, bool sim, const uint8_t *dec, size_t ndec)
{
    memset(s->out, 0, sizeof(s->out));
    s->name = sim ? "sim" : "uring";
    struct ringio_setup setup = {.entries = 8};
    struct ringio_backend *b = NULL;
    int rc;
    if (sim) {
        struct ringio_sim_config cfg = {
            .source = RINGIO_SIM_SOURCE_BYTES, .bytes = dec, .nbytes = ndec, .faults = NULL,
        };
        rc = ringio_sim_backend_new(&setup, &cfg, &b);
        CHECKF(rc == 0, "sim backend: %d", rc);
    } else {
        rc = ringio_uring_backend_new(&setup, &b);
        if (rc < 0)
            return false;
    }
    CHECK(ringio_core_new(b, &s->c) == 0);
    ringio_core_set_mode(s->c, RINGIO_SUBMIT_BATCH);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sp) == 0);
    s->memfd = memfd_create("ringio-fuzz-diff", MFD_CLOEXEC);
    CHECK(s->memfd >= 0);
    D.cur = s;
    for (unsigned i = 0; i < D.nsteps; i++) {
        D.run.step = i + 1;
        run_step(s, &D.steps[i]);
    }
    /* Zero-copy notifications may still be on their way: close waits. */
    ringio_core_close(s->c, 1000 * 1000 * 1000);
    CHECKF(s->live == 0, "%s: %u owners left after close", s->name, s->live);
    ringio_core_free(s->c);
    snapshot(s);
    close(s->sp[0]);
    close(s->sp[1]);
    close(s->memfd);
    return true;
}

static void compare(void)
{
    const struct side *u = &D.side[0], *m = &D.side[1];
    for (unsigned i = 0; i < D.nitems; i++) {
        const struct outcome *a = &u->out[i], *b = &m->out[i];
        const struct item *it = &D.items[i];
        D.run.action = -1;
        TRACE("item %u %s: uring res %d%s, sim res %d%s\n", i, inames[it->kind], a->res,
              a->pending_at_end ? " (cancelled)" : "", b->res, b->pending_at_end ? " (cancelled)" : "");
        CHECKF(a->done == b->done && a->pending_at_end == b->pending_at_end,
               "item %u %s (end %u len %u): uring done %d pending %d res %d, sim done %d "
               "pending %d res %d",
               i, inames[it->kind], it->end, it->len, a->done, a->pending_at_end, a->res,
               b->done, b->pending_at_end, b->res);
        if (it->kind == I_TIMEOUT) {
            CHECKF((a->res == -ETIME) == (b->res == -ETIME), "timeout: uring %d sim %d", a->res,
                   b->res);
            continue;
        }
        CHECKF(a->res == b->res, "item %u %s (end %u len %u off %u): uring res %d, sim res %d",
               i, inames[it->kind], it->end, it->len, it->off, a->res, b->res);
        uint32_t mask = IORING_CQE_F_MORE | IORING_CQE_F_BUFFER;
        if (it->kind != I_SEND_ZC)
            CHECKF((a->flags & mask) == (b->flags & mask) && a->more == b->more,
                   "item %u %s: uring flags %#x, sim flags %#x", i, inames[it->kind], a->flags,
                   b->flags);
        if (a->pending_at_end)
            CHECKF(a->cancel_res == b->cancel_res, "item %u: cancel uring %d sim %d", i,
                   a->cancel_res, b->cancel_res);
        CHECKF(a->dlen == b->dlen && memcmp(a->data, b->data, a->dlen) == 0,
               "item %u %s: received bytes differ", i, inames[it->kind]);
    }
    CHECKF(u->file_len == m->file_len && memcmp(u->file, m->file, (size_t)u->file_len) == 0,
           "file content differs (uring %zd bytes, sim %zd)", u->file_len, m->file_len);
    for (int e = 0; e < 2; e++)
        CHECKF(u->left_len[e] == m->left_len[e] &&
                   (u->left_len[e] <= 0 ||
                    memcmp(u->left[e], m->left[e], (size_t)u->left_len[e]) == 0),
               "bytes left at end %d differ (uring %zd, sim %zd)", e, u->left_len[e],
               m->left_len[e]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int unavailable;
    memset(&D, 0, sizeof(D));
    fuzz_run_start(&D.run, "fuzz_diff", inames, I_COUNT, data, size);
    if (size < 2 || unavailable)
        return 0;
    size_t plen = (size_t)data[0] | (size_t)data[1] << 8;
    if (plen > size - 2)
        plen = size - 2;
    D.prog_end = 2 + plen;
    D.run.in_pos = 2;
    decode();
    if (D.nsteps == 0)
        return 0;
    for (unsigned i = 0; i < D.nitems && D.run.trace; i++)
        TRACE("item %u: %s end %u len %u off %u pending %d\n", i, inames[D.items[i].kind],
              D.items[i].end, D.items[i].len, D.items[i].off, D.items[i].expect_pending);
    if (!run_side(&D.side[0], false, NULL, 0)) {
        fprintf(stderr, "fuzz_diff: no io_uring here: every input is a no-op\n");
        unavailable = 1;
        return 0;
    }
    run_side(&D.side[1], true, data + D.prog_end, size - D.prog_end);
    compare();
    return 0;
}
