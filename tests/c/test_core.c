/*
 * C tests of the ringio core against the scriptable fake backend.
 *
 * Plain main, no framework: CHECK() reports file:line and counts a failure,
 * REQUIRE() does the same and leaves the current test.  Exit status 0 when
 * every check passed.
 */
#include "fake_backend.h"
#include "ringio/core.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- mini framework ------------------------------------------------------ */

static int g_failures;
static int g_test_failures;
static const char *g_test = "?";

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__, g_test,     \
                    #cond);                                                                   \
            g_failures++;                                                                     \
            g_test_failures++;                                                                \
        }                                                                                     \
    } while (0)

#define CHECK_EQ(a, b)                                                                        \
    do {                                                                                      \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                 \
        if (va_ != vb_) {                                                                     \
            fprintf(stderr, "%s:%d: [%s] CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, \
                    __LINE__, g_test, #a, #b, va_, vb_);                                      \
            g_failures++;                                                                     \
            g_test_failures++;                                                                \
        }                                                                                     \
    } while (0)

#define REQUIRE(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: [%s] REQUIRE failed: %s (test aborted)\n", __FILE__,      \
                    __LINE__, g_test, #cond);                                                 \
            g_failures++;                                                                     \
            g_test_failures++;                                                                \
            return;                                                                           \
        }                                                                                     \
    } while (0)

/* ---- owners ---------------------------------------------------------------- */

struct towner {
    struct ringio_owner base; /* first, as core.h asks */
    unsigned released;
    unsigned delivered;
};

static void towner_release(struct ringio_owner *o)
{
    struct towner *t = (struct towner *)o;
    t->released++;
}

static void towner_init(struct towner *t)
{
    memset(t, 0, sizeof(*t));
    t->base.release = towner_release;
}

static struct towner *towners_new(size_t n)
{
    struct towner *t = calloc(n, sizeof(*t));
    if (!t)
        abort();
    for (size_t i = 0; i < n; i++)
        towner_init(&t[i]);
    return t;
}

/* ---- event capture ------------------------------------------------------------ */

#define CAP_MAX 2048
#define CAP_DATA 256

struct cap {
    unsigned n;     /* events consumed (kept up to CAP_MAX) */
    unsigned calls; /* callback invocations, refused ones included */
    struct ringio_event ev[CAP_MAX];
    unsigned char data[CAP_MAX][CAP_DATA];
    /* refusal script: refuse events of this token refuse_times times */
    uint64_t refuse_token;
    unsigned refuse_times;
    int refuse_ret;
    unsigned after_release; /* events whose owner was already released: a bug */
};

static struct cap *cap_new(void)
{
    struct cap *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    return c;
}

static int cap_fn(void *ctx, const struct ringio_event *ev)
{
    struct cap *c = ctx;
    c->calls++;
    if (ev->owner && ((struct towner *)ev->owner)->released)
        c->after_release++;
    if (c->refuse_times > 0 && ev->token == c->refuse_token) {
        c->refuse_times--;
        return c->refuse_ret;
    }
    if (c->n < CAP_MAX) {
        c->ev[c->n] = *ev;
        if (ev->data) {
            uint32_t n = ev->data_len < CAP_DATA ? ev->data_len : CAP_DATA;
            memcpy(c->data[c->n], ev->data, n);
            c->ev[c->n].data = c->data[c->n];
        }
    }
    c->n++;
    if (ev->owner)
        ((struct towner *)ev->owner)->delivered++;
    return 0;
}

/* Number of captured events carrying this token. */
static unsigned cap_count(const struct cap *c, uint64_t token)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->n && i < CAP_MAX; i++)
        n += c->ev[i].token == token && !c->ev[i].wake;
    return n;
}

static const struct ringio_event *cap_find(const struct cap *c, uint64_t token)
{
    for (unsigned i = 0; i < c->n && i < CAP_MAX; i++)
        if (c->ev[i].token == token && !c->ev[i].wake)
            return &c->ev[i];
    return NULL;
}

/* ---- environment ------------------------------------------------------------- */

struct env {
    struct fake_record rec;
    struct fake_backend *fb; /* owned by the core; invalid after close */
    struct ringio_core *c;
    struct cap *cap;
};

static int env_open(struct env *e, unsigned sq, unsigned cq)
{
    memset(e, 0, sizeof(*e));
    fake_record_init(&e->rec);
    struct fake_config cfg;
    fake_config_default(&cfg, &e->rec);
    cfg.sq_entries = sq;
    cfg.cq_entries = cq;
    int ret = fake_backend_new(&cfg, &e->fb);
    if (ret < 0)
        return ret;
    ret = ringio_core_new(&e->fb->base, &e->c);
    if (ret < 0) {
        e->fb->base.ops->destroy(&e->fb->base);
        e->fb = NULL;
        return ret;
    }
    e->cap = cap_new();
    return 0;
}

/* Close (if needed) and free everything; checks the backend did not leak. */
static void env_done(struct env *e)
{
    if (e->c) {
        if (!ringio_core_closed(e->c))
            ringio_core_close(e->c, 0);
        ringio_core_free(e->c);
    }
    CHECK_EQ(e->rec.destroys, 1);
    CHECK_EQ(e->rec.bufrings_live_at_destroy, 0);
    CHECK_EQ(e->rec.bad_unregisters, 0);
    CHECK_EQ(e->rec.advance_errors, 0);
    CHECK_EQ(e->rec.bad_buf_recycles, 0);
    if (e->cap)
        CHECK_EQ(e->cap->after_release, 0);
    free(e->cap);
    fake_record_free(&e->rec);
    memset(e, 0, sizeof(*e));
}

/* Reap until a call delivers nothing; returns the total (stops at refusals). */
static int reap_all(struct env *e)
{
    int total = 0;
    for (int guard = 0; guard < 10000; guard++) {
        int n = ringio_core_reap(e->c, 1024, cap_fn, e->cap);
        if (n <= 0)
            return n < 0 ? n : total;
        total += n;
    }
    return total;
}

static struct ringio_stats stats_of(struct ringio_core *c)
{
    struct ringio_stats st;
    memset(&st, 0, sizeof(st));
    ringio_core_stats(c, &st);
    return st;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static bool fd_is_closed(int fd)
{
    errno = 0;
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/* A real, otherwise unused fd. */
static int real_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror("open /dev/null");
        abort();
    }
    return fd;
}

static bool tokens_distinct(uint64_t *t, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = t[i];
        size_t j = i;
        while (j > 0 && t[j - 1] > v) {
            t[j] = t[j - 1];
            j--;
        }
        t[j] = v;
    }
    for (size_t i = 1; i < n; i++)
        if (t[i] == t[i - 1])
            return false;
    return true;
}

/* ================================================================== */
/* 0. basics                                                           */
/* ================================================================== */

static void test_basic_nop(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    CHECK(!ringio_core_closed(e.c));
    CHECK(ringio_core_backend(e.c) == &e.fb->base);

    struct towner o;
    towner_init(&o);
    uint64_t tok = 0;
    CHECK_EQ(ringio_submit_nop(e.c, &o.base, &tok), 0);
    CHECK(tok != RINGIO_TOKEN_WAKE);
    /* NOW mode: in the kernel when the call returns. */
    CHECK_EQ(e.rec.consumed, 1);
    CHECK_EQ(ringio_core_staged(e.c), 0);
    CHECK_EQ(ringio_core_inflight(e.c), 1);
    CHECK(ringio_core_ready(e.c));

    CHECK_EQ(reap_all(&e), 1);
    REQUIRE(e.cap->n == 1);
    const struct ringio_event *ev = &e.cap->ev[0];
    CHECK(ev->owner == &o.base);
    CHECK(ev->token == tok);
    CHECK_EQ(ev->res, 0);
    CHECK_EQ(ev->flags, 0);
    CHECK_EQ(ev->sequence, 0);
    CHECK_EQ(ev->opcode, IORING_OP_NOP);
    CHECK(!ev->more);
    CHECK(ev->final);
    CHECK(!ev->wake);
    CHECK_EQ(ev->zc_copied, -1);
    CHECK(ev->data == NULL);
    CHECK_EQ(ev->data_len, 0);
    CHECK_EQ(o.released, 1);
    CHECK_EQ(ringio_core_inflight(e.c), 0);

    struct ringio_stats st = stats_of(e.c);
    CHECK_EQ(st.submitted, 1);
    CHECK_EQ(st.completed, 1);
    CHECK_EQ(st.delivered, 1);
    CHECK_EQ(st.stale_cqes, 0);
    CHECK_EQ(st.inflight, 0);
    CHECK_EQ(st.enters, 1); /* the NOW-mode submit; reaping a ready CQ needs no enter */
    CHECK_EQ(ringio_core_wait_block(e.c, 0, 0, 0), 0);
    CHECK_EQ(stats_of(e.c).enters, 2); /* counted although wait_block runs unlocked */

    uint8_t sup[IORING_OP_LAST + 8];
    memset(sup, 0xff, sizeof(sup));
    CHECK_EQ(ringio_core_probe_opcodes(e.c, sup, sizeof(sup)), IORING_OP_LAST);
    CHECK_EQ(sup[IORING_OP_NOP], 1);
    CHECK_EQ(sup[IORING_OP_SEND_ZC], 1);
    CHECK_EQ(sup[IORING_OP_LAST], 0);

    CHECK_EQ(ringio_core_close(e.c, 0), 0);
    CHECK(ringio_core_closed(e.c));
    CHECK_EQ(o.released, 1);
    env_done(&e);
}

/* ================================================================== */
/* 1. token reuse                                                      */
/* ================================================================== */

static void test_token_reuse(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);

    struct towner a, b;
    towner_init(&a);
    towner_init(&b);
    uint64_t ta = 0, tb = 0;
    CHECK_EQ(ringio_submit_nop(e.c, &a.base, &ta), 0);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(a.released, 1);
    CHECK_EQ(ringio_submit_nop(e.c, &b.base, &tb), 0);
    CHECK(ta != tb);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(cap_count(e.cap, ta), 1);
    CHECK_EQ(cap_count(e.cap, tb), 1);

    /* The old token comes back: never delivered again. */
    fake_post_cqe(e.fb, ta, 0, 0);
    CHECK_EQ(reap_all(&e), 0);
    CHECK_EQ(cap_count(e.cap, ta), 1);
    CHECK_EQ(stats_of(e.c).stale_cqes, 1);
    CHECK_EQ(a.released, 1);
    CHECK_EQ(b.released, 1);

    /* A slot reused by a pending op: a CQE of the previous occupant must not
     * reach (or release) the new one. */
    struct towner r1, r2;
    towner_init(&r1);
    towner_init(&r2);
    char buf[16];
    uint64_t t1 = 0, t2 = 0;
    CHECK_EQ(ringio_submit_recv(e.c, &r1.base, 5, buf, sizeof(buf), 0, &t1), 0);
    CHECK_EQ(fake_complete(e.fb, t1, 3, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(r1.released, 1);
    CHECK_EQ(ringio_submit_recv(e.c, &r2.base, 5, buf, sizeof(buf), 0, &t2), 0);
    CHECK(t1 != t2);
    fake_post_cqe(e.fb, t1, 7, 0);
    fake_post_cqe(e.fb, t1, 7, IORING_CQE_F_MORE);
    CHECK_EQ(reap_all(&e), 0);
    CHECK_EQ(r2.released, 0);
    CHECK_EQ(r2.delivered, 0);
    CHECK_EQ(stats_of(e.c).stale_cqes, 3);
    CHECK_EQ(ringio_core_inflight(e.c), 1);
    CHECK_EQ(fake_complete(e.fb, t2, 9, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    const struct ringio_event *ev = cap_find(e.cap, t2);
    REQUIRE(ev != NULL);
    CHECK_EQ(ev->res, 9);
    CHECK(ev->owner == &r2.base);
    CHECK_EQ(r2.released, 1);
    CHECK_EQ(cap_count(e.cap, t1), 1);

    /* Many cycles through the same slot(s): every token is new. */
    enum { CYCLES = 1000 };
    uint64_t *toks = calloc(CYCLES + 2, sizeof(*toks));
    REQUIRE(toks != NULL);
    struct towner *o = towners_new(CYCLES);
    size_t nt = 0;
    for (unsigned i = 0; i < CYCLES; i++) {
        uint64_t t = 0;
        if (ringio_submit_nop(e.c, &o[i].base, &t) != 0)
            break;
        toks[nt++] = t;
        CHECK(t != RINGIO_TOKEN_WAKE);
        if (ringio_core_reap(e.c, 16, cap_fn, e.cap) != 1)
            break;
    }
    CHECK_EQ(nt, CYCLES);
    for (unsigned i = 0; i < CYCLES; i++)
        CHECK_EQ(o[i].released, 1);
    free(o);
    toks[nt++] = ta;
    toks[nt++] = tb;
    CHECK(tokens_distinct(toks, nt));
    free(toks);
    CHECK_EQ(stats_of(e.c).stale_cqes, 3);
    env_done(&e);
}

/* ================================================================== */
/* 2. stale tokens and wake                                            */
/* ================================================================== */

static void test_stale_and_wake(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);

    /* A live multishot recv with a provided-buffer ring: a stale F_BUFFER CQE
     * must not recycle into it. */
    struct towner m;
    towner_init(&m);
    uint64_t tm = 0;
    CHECK_EQ(ringio_submit_recv_multishot(e.c, &m.base, 5, 64, 8, 0, 0, &tm), 0);
    const struct io_uring_sqe *sqe = fake_pending_find(e.fb, tm);
    REQUIRE(sqe != NULL);
    struct fake_bufring *br = fake_bufring_find(e.fb, sqe->buf_group);
    REQUIRE(br != NULL);
    uint16_t tail0 = fake_bufring_tail(br);

    fake_post_cqe(e.fb, 0, 0, 0);
    fake_post_cqe(e.fb, 0xdeadbeef12345678ull, -EIO, IORING_CQE_F_MORE);
    fake_post_cqe(e.fb, 0x1234, 0, IORING_CQE_F_NOTIF);
    fake_post_cqe(e.fb, tm ^ 0xffff00000000ull, 10,
                  IORING_CQE_F_BUFFER | (3u << IORING_CQE_BUFFER_SHIFT));
    fake_post_cqe(e.fb, tm + 0x100000000ull, 10,
                  IORING_CQE_F_BUFFER | (2u << IORING_CQE_BUFFER_SHIFT) | IORING_CQE_F_MORE);
    fake_post_cqe(e.fb, tm - 0x100000000ull, 10, IORING_CQE_F_BUFFER);
    CHECK_EQ(reap_all(&e), 0);
    CHECK_EQ(e.cap->calls, 0);
    struct ringio_stats st = stats_of(e.c);
    CHECK_EQ(st.stale_cqes, 6);
    CHECK_EQ(st.delivered, 0);
    CHECK_EQ(ringio_core_inflight(e.c), 1);
    CHECK_EQ(m.released, 0);
    CHECK_EQ(fake_bufring_tail(br), tail0);

    /* a sweep of garbage tokens around the slot table's edges: never a
     * crash, never a delivery (64 slots used in all with the multishot
     * above: a power of two, the edge of many slot tables) */
    {
        struct towner *many = towners_new(64);
        uint64_t mt;
        for (int i = 0; i < 63; i++)
            CHECK_EQ(ringio_submit_nop(e.c, &many[i].base, &mt), 0);
        CHECK_EQ(reap_all(&e), 63);
        unsigned nstale = 0;
        uint32_t gens[] = {0, 1, 2, 3, 0x7fffffffu, 0xfffffff0u, 0xfffffffeu, 0xffffffffu};
        for (size_t g = 0; g < sizeof(gens) / sizeof(gens[0]); g++) {
            for (uint32_t idx = 0; idx < 300; idx++) {
                uint64_t tk = ((uint64_t)gens[g] << 32) | idx;
                /* UINT64_MAX - 1: the core's own cancels (internal.h) */
                if (tk == tm || tk == RINGIO_TOKEN_WAKE || tk == UINT64_MAX - 1)
                    continue;
                fake_post_cqe(e.fb, tk, 1, 0);
                nstale++;
            }
            for (uint32_t idx = 0xfffffff0u; idx != 0; idx++) {
                uint64_t tk = ((uint64_t)gens[g] << 32) | idx;
                if (tk == RINGIO_TOKEN_WAKE || tk == UINT64_MAX - 1)
                    continue;
                fake_post_cqe(e.fb, tk, 1, IORING_CQE_F_MORE);
                nstale++;
            }
        }
        unsigned calls0 = e.cap->calls;
        CHECK_EQ(reap_all(&e), 0);
        CHECK_EQ(e.cap->calls, calls0);
        CHECK_EQ(stats_of(e.c).stale_cqes, 6 + nstale);
        for (int i = 0; i < 63; i++)
            CHECK_EQ(many[i].released, 1);
        CHECK_EQ(m.released, 0);
        free(many);
        e.cap->n = 0;
        e.cap->calls = 0;
    }

    /* wake: an event with wake set, no owner, not an operation. */
    CHECK_EQ(ringio_core_wake(e.c), 0);
    const struct io_uring_sqe *w = fake_log_find(&e.rec, RINGIO_TOKEN_WAKE);
    REQUIRE(w != NULL);
    CHECK_EQ(w->opcode, IORING_OP_NOP);
    CHECK_EQ(ringio_core_inflight(e.c), 1);
    uint64_t stale_now = stats_of(e.c).stale_cqes;
    CHECK_EQ(reap_all(&e), 1);
    REQUIRE(e.cap->n == 1);
    CHECK(e.cap->ev[0].wake);
    CHECK(e.cap->ev[0].owner == NULL);
    CHECK_EQ(stats_of(e.c).stale_cqes, stale_now);

    /* wake goes to the kernel at once even in a staging mode. */
    ringio_core_set_mode(e.c, RINGIO_SUBMIT_STRICT);
    unsigned consumed = e.rec.consumed;
    CHECK_EQ(ringio_core_wake(e.c), 0);
    CHECK_EQ(e.rec.consumed, consumed + 1);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(e.cap->n, 2);
    CHECK(e.cap->n == 2 && e.cap->ev[1].wake);

    CHECK_EQ(fake_complete(e.fb, tm, 0, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(m.released, 1);
    CHECK_EQ(e.rec.bufrings_live, 0);
    env_done(&e);
}

/* ================================================================== */
/* 3. release exactly once                                             */
/* ================================================================== */

static void test_release_oneshot(void)
{
    struct env e;
    REQUIRE(env_open(&e, 32, 64) == 0);
    enum { N = 14 };
    struct towner *o = towners_new(N);
    uint64_t t[N];
    memset(t, 0, sizeof(t));
    static char buf[64];
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    socklen_t slen = sizeof(sin);
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    struct __kernel_timespec ts = {0, 1000000};

    CHECK_EQ(ringio_submit_recv(e.c, &o[0].base, 5, buf, sizeof(buf), 0, &t[0]), 0);
    CHECK_EQ(ringio_submit_send(e.c, &o[1].base, 5, buf, sizeof(buf), 0, &t[1]), 0);
    CHECK_EQ(ringio_submit_accept(e.c, &o[2].base, 5, (struct sockaddr *)&sin, &slen, 0, &t[2]),
             0);
    CHECK_EQ(ringio_submit_connect(e.c, &o[3].base, 5, (struct sockaddr *)&sin, sizeof(sin),
                                   &t[3]),
             0);
    CHECK_EQ(ringio_submit_shutdown(e.c, &o[4].base, 5, SHUT_WR, &t[4]), 0);
    CHECK_EQ(ringio_submit_close(e.c, &o[5].base, 99, &t[5]), 0);
    CHECK_EQ(ringio_submit_socket(e.c, &o[6].base, AF_INET, SOCK_STREAM, 0, &t[6]), 0);
    CHECK_EQ(ringio_submit_timeout(e.c, &o[7].base, &ts, 0, 0, &t[7]), 0);
    CHECK_EQ(ringio_submit_poll(e.c, &o[8].base, 5, POLLIN, false, 0, &t[8]), 0);
    CHECK_EQ(ringio_submit_recvmsg(e.c, &o[9].base, 5, &msg, 0, &t[9]), 0);
    CHECK_EQ(ringio_submit_sendmsg(e.c, &o[10].base, 5, &msg, 0, &t[10]), 0);
    CHECK_EQ(ringio_submit_cancel(e.c, &o[11].base, 0x77, 0, &t[11]), 0); /* -ENOENT */
    CHECK_EQ(ringio_submit_recv(e.c, &o[12].base, 5, buf, sizeof(buf), 0, &t[12]), 0);
    CHECK_EQ(ringio_submit_send(e.c, &o[13].base, 5, buf, sizeof(buf), 0, &t[13]), 0);
    CHECK_EQ(ringio_core_inflight(e.c), N);

    static const int32_t res[N] = {10, 64, -EAGAIN, 0, 0, 0, -EMFILE, -ETIME, POLLIN,
                                   10, 64, -ENOENT, -ECONNRESET, -EPIPE};
    static const uint8_t opc[N] = {IORING_OP_RECV,     IORING_OP_SEND,    IORING_OP_ACCEPT,
                                   IORING_OP_CONNECT,  IORING_OP_SHUTDOWN, IORING_OP_CLOSE,
                                   IORING_OP_SOCKET,   IORING_OP_TIMEOUT, IORING_OP_POLL_ADD,
                                   IORING_OP_RECVMSG,  IORING_OP_SENDMSG, IORING_OP_ASYNC_CANCEL,
                                   IORING_OP_RECV,     IORING_OP_SEND};
    /* the fake answered the cancel itself (-ENOENT: target 0x77 unknown) */
    for (int i = 0; i < N; i++) {
        if (i == 11)
            continue;
        CHECK_EQ(fake_complete(e.fb, t[i], res[i], i == 0 ? IORING_CQE_F_SOCK_NONEMPTY : 0), 0);
    }
    CHECK_EQ(reap_all(&e), N);
    for (int i = 0; i < N; i++) {
        const struct ringio_event *ev = cap_find(e.cap, t[i]);
        CHECK_EQ(cap_count(e.cap, t[i]), 1);
        CHECK_EQ(o[i].released, 1);
        if (!ev)
            continue;
        CHECK_EQ(ev->res, res[i]);
        CHECK_EQ(ev->opcode, opc[i]);
        CHECK(ev->final);
        CHECK(!ev->more);
        CHECK(ev->owner == &o[i].base);
        CHECK_EQ(ev->zc_copied, -1);
        CHECK(ev->data == NULL);
    }
    const struct ringio_event *ev0 = cap_find(e.cap, t[0]);
    CHECK(ev0 && ev0->flags == IORING_CQE_F_SOCK_NONEMPTY); /* raw flags kept */
    CHECK_EQ(ringio_core_inflight(e.c), 0);
    /* A repeat of a final CQE is stale, not a second release. */
    fake_post_cqe(e.fb, t[0], 1, 0);
    CHECK_EQ(reap_all(&e), 0);
    CHECK_EQ(o[0].released, 1);
    env_done(&e);
    for (int i = 0; i < N; i++)
        CHECK_EQ(o[i].released, 1);
    free(o);
}

static void test_zerocopy(void)
{
    struct env e;
    REQUIRE(env_open(&e, 16, 32) == 0);
    static char buf[128];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;

    /* (a) op CQE with F_MORE delivered, owner kept until the notification,
     * which is not delivered. */
    struct towner a;
    towner_init(&a);
    uint64_t ta = 0;
    CHECK_EQ(ringio_submit_send_zc(e.c, &a.base, 5, buf, sizeof(buf), 0, 0, &ta), 0);
    CHECK_EQ(fake_complete(e.fb, ta, 128, IORING_CQE_F_MORE), 0);
    CHECK_EQ(reap_all(&e), 1);
    const struct ringio_event *ev = cap_find(e.cap, ta);
    REQUIRE(ev != NULL);
    CHECK_EQ(ev->res, 128);
    CHECK_EQ(ev->flags, IORING_CQE_F_MORE); /* raw */
    CHECK_EQ(ev->opcode, IORING_OP_SEND_ZC);
    CHECK(!ev->final);
    CHECK(!ev->more); /* no further *event* follows: the notif is internal */
    CHECK_EQ(ev->zc_copied, -1);
    CHECK_EQ(a.released, 0);
    CHECK_EQ(ringio_core_inflight(e.c), 1);
    CHECK_EQ(fake_complete(e.fb, ta, 0, IORING_CQE_F_NOTIF), 0);
    CHECK_EQ(reap_all(&e), 0);
    CHECK_EQ(a.released, 1);
    CHECK_EQ(cap_count(e.cap, ta), 1);
    CHECK_EQ(ringio_core_inflight(e.c), 0);
    CHECK_EQ(stats_of(e.c).stale_cqes, 0);
    /* a second notification is stale */
    fake_post_cqe(e.fb, ta, 0, IORING_CQE_F_NOTIF);
    CHECK_EQ(reap_all(&e), 0);
    CHECK_EQ(a.released, 1);
    CHECK_EQ(stats_of(e.c).stale_cqes, 1);

    /* (b) failed zc send without F_MORE: final, released at once. */
    struct towner b;
    towner_init(&b);
    uint64_t tb = 0;
    CHECK_EQ(ringio_submit_send_zc(e.c, &b.base, 5, buf, sizeof(buf), 0, 0, &tb), 0);
    CHECK_EQ(fake_complete(e.fb, tb, -EPIPE, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    ev = cap_find(e.cap, tb);
    REQUIRE(ev != NULL);
    CHECK_EQ(ev->res, -EPIPE);
    CHECK(ev->final);
    CHECK(!ev->more);
    CHECK_EQ(b.released, 1);

    /* (c) REPORT_USAGE: the op CQE is held until the notification. */
    for (int copied = 0; copied <= 1; copied++) {
        struct towner r;
        towner_init(&r);
        uint64_t tr = 0;
        unsigned before = e.cap->n;
        CHECK_EQ(ringio_submit_send_zc(e.c, &r.base, 5, buf, sizeof(buf), 0,
                                       IORING_SEND_ZC_REPORT_USAGE, &tr),
                 0);
        CHECK_EQ(fake_complete(e.fb, tr, 100, IORING_CQE_F_MORE), 0);
        CHECK_EQ(reap_all(&e), 0);
        CHECK_EQ(e.cap->n, before);
        CHECK_EQ(r.released, 0);
        int32_t nres = copied ? (int32_t)IORING_NOTIF_USAGE_ZC_COPIED : 0;
        CHECK_EQ(fake_complete(e.fb, tr, nres, IORING_CQE_F_NOTIF), 0);
        CHECK_EQ(reap_all(&e), 1);
        ev = cap_find(e.cap, tr);
        REQUIRE(ev != NULL);
        CHECK_EQ(ev->res, 100);
        CHECK_EQ(ev->zc_copied, copied);
        CHECK(ev->final);
        CHECK(!ev->more);
        CHECK_EQ(r.released, 1);
        CHECK_EQ(cap_count(e.cap, tr), 1);
    }

    /* (d) REPORT_USAGE, send failed without F_MORE: no notif follows. */
    {
        struct towner r;
        towner_init(&r);
        uint64_t tr = 0;
        CHECK_EQ(ringio_submit_send_zc(e.c, &r.base, 5, buf, sizeof(buf), 0,
                                       IORING_SEND_ZC_REPORT_USAGE, &tr),
                 0);
        CHECK_EQ(fake_complete(e.fb, tr, -ECONNRESET, 0), 0);
        CHECK_EQ(reap_all(&e), 1);
        ev = cap_find(e.cap, tr);
        REQUIRE(ev != NULL);
        CHECK_EQ(ev->res, -ECONNRESET);
        CHECK(ev->final);
        CHECK_EQ(r.released, 1);
    }

    /* (e) notification before the op CQE, same reap and separate reaps,
     * with and without REPORT_USAGE. */
    for (int variant = 0; variant < 4; variant++) {
        bool report = variant & 1, separate = variant & 2;
        struct towner r;
        towner_init(&r);
        uint64_t tr = 0;
        uint64_t stale0 = stats_of(e.c).stale_cqes;
        CHECK_EQ(ringio_submit_send_zc(e.c, &r.base, 5, buf, sizeof(buf), 0,
                                       report ? IORING_SEND_ZC_REPORT_USAGE : 0, &tr),
                 0);
        fake_post_cqe(e.fb, tr, report ? (int32_t)IORING_NOTIF_USAGE_ZC_COPIED : 0,
                      IORING_CQE_F_NOTIF);
        if (separate) {
            CHECK_EQ(reap_all(&e), 0);
            CHECK_EQ(r.released, 0);
            CHECK_EQ(r.delivered, 0);
        }
        fake_complete(e.fb, tr, 77, IORING_CQE_F_MORE);
        CHECK_EQ(reap_all(&e), 1);
        ev = cap_find(e.cap, tr);
        REQUIRE(ev != NULL);
        CHECK_EQ(ev->res, 77);
        CHECK(ev->final);
        if (report)
            CHECK_EQ(ev->zc_copied, 1);
        CHECK_EQ(r.released, 1);
        CHECK_EQ(r.delivered, 1);
        CHECK_EQ(stats_of(e.c).stale_cqes, stale0);
        CHECK_EQ(ringio_core_inflight(e.c), 0);
    }

    /* (f) sendmsg_zc follows the same rules. */
    {
        struct towner r;
        towner_init(&r);
        uint64_t tr = 0;
        CHECK_EQ(ringio_submit_sendmsg_zc(e.c, &r.base, 5, &msg, 0, 0, &tr), 0);
        CHECK_EQ(fake_complete(e.fb, tr, 128, IORING_CQE_F_MORE), 0);
        CHECK_EQ(reap_all(&e), 1);
        ev = cap_find(e.cap, tr);
        REQUIRE(ev != NULL);
        CHECK_EQ(ev->opcode, IORING_OP_SENDMSG_ZC);
        CHECK(!ev->final);
        CHECK_EQ(r.released, 0);
        CHECK_EQ(fake_complete(e.fb, tr, 0, IORING_CQE_F_NOTIF), 0);
        CHECK_EQ(reap_all(&e), 0);
        CHECK_EQ(r.released, 1);
    }

    /* (g) close while a notification is outstanding: released exactly once. */
    {
        struct towner r;
        towner_init(&r);
        uint64_t tr = 0;
        CHECK_EQ(ringio_submit_send_zc(e.c, &r.base, 5, buf, sizeof(buf), 0, 0, &tr), 0);
        CHECK_EQ(fake_complete(e.fb, tr, 128, IORING_CQE_F_MORE), 0);
        CHECK_EQ(reap_all(&e), 1);
        CHECK_EQ(r.released, 0);
        /* the fake never posts the notif: the close bound expires */
        int forced = ringio_core_close(e.c, 5 * 1000 * 1000);
        CHECK_EQ(forced, 1);
        CHECK_EQ(r.released, 1);
        CHECK_EQ(a.released, 1);
        CHECK_EQ(b.released, 1);
    }
    env_done(&e);
}

/* Submit a multishot recv and return the fake's view of its buffer ring. */
static struct fake_bufring *ms_ring(struct env *e, uint64_t tok)
{
    const struct io_uring_sqe *sqe = fake_pending_find(e->fb, tok);
    if (!sqe)
        return NULL;
    return fake_bufring_find(e->fb, sqe->buf_group);
}

static void test_multishot_recv(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    enum { BS = 64, BC = 8, LEGS = 20 };
    struct towner o;
    towner_init(&o);
    uint64_t tok = 0;
    CHECK_EQ(ringio_submit_recv_multishot(e.c, &o.base, 5, BS, BC, 0, 0, &tok), 0);
    CHECK_EQ(e.rec.bufrings_live, 1);
    struct fake_bufring *br = ms_ring(&e, tok);
    REQUIRE(br != NULL);
    CHECK_EQ(br->entries, BC);
    /* all buffers provided: distinct bids < BC, BS bytes each, no overlap */
    CHECK_EQ(fake_bufring_tail(br), BC);
    bool seen[BC] = {false};
    for (unsigned i = 0; i < BC; i++) {
        const struct io_uring_buf *b = &br->br->bufs[i];
        CHECK(b->bid < BC);
        if (b->bid < BC) {
            CHECK(!seen[b->bid]);
            seen[b->bid] = true;
        }
        CHECK_EQ(b->len, BS);
        CHECK(b->addr != 0);
        for (unsigned j = 0; j < i; j++) {
            const struct io_uring_buf *c2 = &br->br->bufs[j];
            CHECK(b->addr >= c2->addr + BS || c2->addr >= b->addr + BS);
        }
    }

    uint16_t tail = fake_bufring_tail(br);
    for (unsigned leg = 0; leg < LEGS; leg++) {
        char msgb[48];
        int n = snprintf(msgb, sizeof(msgb), "leg %u payload", leg);
        int bid = fake_recv_into(e.fb, tok, msgb, (uint32_t)n, true);
        CHECK(bid >= 0);
        unsigned before = e.cap->n;
        CHECK_EQ(reap_all(&e), 1);
        REQUIRE(e.cap->n == before + 1);
        const struct ringio_event *ev = &e.cap->ev[before];
        CHECK(ev->token == tok);
        CHECK_EQ(ev->sequence, leg);
        CHECK_EQ(ev->res, n);
        CHECK(ev->more);
        CHECK(!ev->final);
        CHECK_EQ(ev->opcode, IORING_OP_RECV);
        CHECK(ev->flags & IORING_CQE_F_MORE);
        CHECK(ev->data != NULL);
        CHECK_EQ(ev->data_len, (uint32_t)n);
        if (ev->data)
            CHECK(memcmp(ev->data, msgb, (size_t)n) == 0);
        CHECK_EQ(o.released, 0);
        /* recycled at once */
        tail++;
        CHECK_EQ(fake_bufring_tail(br), tail);
        CHECK_EQ(fake_bufring_available(br), BC);
    }
    /* several legs queued before one reap */
    for (unsigned k = 0; k < 5; k++) {
        char msgb[8] = {'x', (char)('0' + k)};
        CHECK(fake_recv_into(e.fb, tok, msgb, 2, true) >= 0);
    }
    unsigned before = e.cap->n;
    CHECK_EQ(reap_all(&e), 5);
    for (unsigned k = 0; k < 5 && before + k < e.cap->n; k++) {
        const struct ringio_event *ev = &e.cap->ev[before + k];
        CHECK_EQ(ev->sequence, LEGS + k);
        CHECK(ev->data_len == 2 && ev->data && ((const char *)ev->data)[1] == '0' + (char)k);
    }
    CHECK_EQ(fake_bufring_available(br), BC);

    /* final leg carrying data, without F_MORE */
    CHECK(fake_recv_into(e.fb, tok, "bye", 3, false) >= 0);
    before = e.cap->n;
    CHECK_EQ(reap_all(&e), 1);
    REQUIRE(e.cap->n == before + 1);
    const struct ringio_event *ev = &e.cap->ev[before];
    CHECK_EQ(ev->sequence, LEGS + 5);
    CHECK(!ev->more);
    CHECK(ev->final);
    CHECK(ev->data_len == 3 && ev->data && memcmp(ev->data, "bye", 3) == 0);
    CHECK_EQ(o.released, 1);
    CHECK_EQ(e.rec.bufrings_live, 0);
    CHECK_EQ(e.rec.bufrings_unregistered, 1);
    CHECK_EQ(ringio_core_inflight(e.c), 0);

    /* EOF: res 0 without F_MORE and without a buffer */
    struct towner o2;
    towner_init(&o2);
    uint64_t t2 = 0;
    CHECK_EQ(ringio_submit_recv_multishot(e.c, &o2.base, 5, BS, BC, 0, 0, &t2), 0);
    CHECK(fake_recv_into(e.fb, t2, "a", 1, true) >= 0);
    CHECK_EQ(fake_complete(e.fb, t2, 0, 0), 0);
    before = e.cap->n;
    CHECK_EQ(reap_all(&e), 2);
    if (e.cap->n == before + 2) {
        CHECK_EQ(e.cap->ev[before].sequence, 0);
        CHECK_EQ(e.cap->ev[before + 1].sequence, 1);
        CHECK_EQ(e.cap->ev[before + 1].res, 0);
        CHECK(e.cap->ev[before + 1].final);
        CHECK(!e.cap->ev[before + 1].more);
        CHECK(e.cap->ev[before + 1].data == NULL);
    }
    CHECK_EQ(o2.released, 1);
    CHECK_EQ(e.rec.bufrings_live, 0);

    /* two concurrent multishot recvs: distinct groups, data not mixed */
    struct towner p, q;
    towner_init(&p);
    towner_init(&q);
    uint64_t tp = 0, tq = 0;
    CHECK_EQ(ringio_submit_recv_multishot(e.c, &p.base, 6, 32, 4, 0, 0, &tp), 0);
    CHECK_EQ(ringio_submit_recv_multishot(e.c, &q.base, 7, 32, 4, 0, 0, &tq), 0);
    const struct io_uring_sqe *sp = fake_pending_find(e.fb, tp);
    const struct io_uring_sqe *sq = fake_pending_find(e.fb, tq);
    REQUIRE(sp && sq);
    CHECK(sp->buf_group != sq->buf_group);
    CHECK_EQ(e.rec.bufrings_live, 2);
    CHECK(fake_recv_into(e.fb, tp, "PPPP", 4, true) >= 0);
    CHECK(fake_recv_into(e.fb, tq, "QQ", 2, true) >= 0);
    before = e.cap->n;
    CHECK_EQ(reap_all(&e), 2);
    const struct ringio_event *ep = NULL, *eq = NULL;
    for (unsigned i = before; i < e.cap->n; i++) {
        if (e.cap->ev[i].token == tp)
            ep = &e.cap->ev[i];
        if (e.cap->ev[i].token == tq)
            eq = &e.cap->ev[i];
    }
    CHECK(ep && ep->data_len == 4 && ep->data && memcmp(ep->data, "PPPP", 4) == 0);
    CHECK(eq && eq->data_len == 2 && eq->data && memcmp(eq->data, "QQ", 2) == 0);
    CHECK_EQ(fake_complete(e.fb, tp, -ECANCELED, 0), 0);
    CHECK_EQ(fake_complete(e.fb, tq, -ECONNRESET, 0), 0);
    CHECK_EQ(reap_all(&e), 2);
    CHECK_EQ(p.released, 1);
    CHECK_EQ(q.released, 1);
    CHECK_EQ(e.rec.bufrings_live, 0);
    CHECK_EQ(e.rec.bufrings_registered, 4);
    env_done(&e);
}

static void test_multishot_enobufs_and_first_seq(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 32) == 0);
    enum { BC = 4 };
    struct towner o;
    towner_init(&o);
    uint64_t tok = 0;
    CHECK_EQ(ringio_submit_recv_multishot(e.c, &o.base, 5, 16, BC, 0, 0, &tok), 0);
    /* The app does not reap: the kernel runs out of buffers. */
    for (unsigned i = 0; i < BC; i++) {
        char d[4] = {'a', (char)('0' + i), 'z', 0};
        CHECK(fake_recv_into(e.fb, tok, d, 3, true) >= 0);
    }
    CHECK_EQ(fake_recv_into(e.fb, tok, "zz", 2, true), -ENOBUFS);
    CHECK_EQ(reap_all(&e), BC + 1);
    REQUIRE(e.cap->n == BC + 1);
    for (unsigned i = 0; i < BC; i++) {
        const struct ringio_event *ev = &e.cap->ev[i];
        CHECK_EQ(ev->sequence, i);
        CHECK(ev->more);
        CHECK(!ev->final);
        CHECK(ev->data_len == 3 && ev->data && ((const char *)ev->data)[1] == '0' + (char)i);
    }
    const struct ringio_event *last = &e.cap->ev[BC];
    CHECK_EQ(last->res, -ENOBUFS);
    CHECK_EQ(last->sequence, BC);
    CHECK(!last->more);
    CHECK(last->final);
    CHECK(last->data == NULL);
    CHECK_EQ(o.released, 1);
    CHECK_EQ(e.rec.bufrings_live, 0);

    /* first_sequence honoured */
    struct towner f;
    towner_init(&f);
    uint64_t tf = 0;
    CHECK_EQ(ringio_submit_recv_multishot(e.c, &f.base, 5, 16, 2, 0, 5, &tf), 0);
    for (unsigned i = 0; i < 3; i++) {
        CHECK(fake_recv_into(e.fb, tf, "k", 1, true) >= 0);
        CHECK_EQ(reap_all(&e), 1);
    }
    CHECK_EQ(fake_complete(e.fb, tf, -ECANCELED, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    unsigned k = 0;
    for (unsigned i = 0; i < e.cap->n; i++) {
        if (e.cap->ev[i].token != tf)
            continue;
        CHECK_EQ(e.cap->ev[i].sequence, 5 + k);
        k++;
    }
    CHECK_EQ(k, 4);
    CHECK_EQ(f.released, 1);
    CHECK_EQ(e.rec.bufrings_live, 0);

    /* A refused leg is re-delivered with the same bytes, even though the
     * kernel keeps receiving into other buffers meanwhile.  (The core may
     * hold the refused leg's buffer until the event is consumed.) */
    struct towner g;
    towner_init(&g);
    uint64_t tg = 0;
    CHECK_EQ(ringio_submit_recv_multishot(e.c, &g.base, 5, 16, 4, 0, 0, &tg), 0);
    struct fake_bufring *gr = ms_ring(&e, tg);
    REQUIRE(gr != NULL);
    CHECK(fake_recv_into(e.fb, tg, "first", 5, true) >= 0);
    e.cap->refuse_token = tg;
    e.cap->refuse_times = 1;
    e.cap->refuse_ret = 42;
    unsigned before = e.cap->n;
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 42);
    CHECK_EQ(e.cap->n, before);
    CHECK(fake_recv_into(e.fb, tg, "second", 6, true) >= 0);
    CHECK(fake_recv_into(e.fb, tg, "third", 5, true) >= 0);
    CHECK_EQ(reap_all(&e), 3);
    REQUIRE(e.cap->n == before + 3);
    CHECK(e.cap->ev[before].data_len == 5 && e.cap->ev[before].data &&
          memcmp(e.cap->ev[before].data, "first", 5) == 0);
    CHECK(e.cap->ev[before + 1].data_len == 6 && e.cap->ev[before + 1].data &&
          memcmp(e.cap->ev[before + 1].data, "second", 6) == 0);
    CHECK(e.cap->ev[before + 2].data_len == 5 && e.cap->ev[before + 2].data &&
          memcmp(e.cap->ev[before + 2].data, "third", 5) == 0);
    CHECK_EQ(e.cap->ev[before].sequence, 0);
    CHECK_EQ(e.cap->ev[before + 1].sequence, 1);
    CHECK_EQ(e.cap->ev[before + 2].sequence, 2);
    CHECK_EQ(fake_bufring_available(gr), 4); /* every buffer back once consumed */
    CHECK_EQ(fake_complete(e.fb, tg, 0, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(g.released, 1);
    env_done(&e);
}

static void test_multishot_accept_and_poll(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    struct towner o;
    towner_init(&o);
    uint64_t tok = 0;
    CHECK_EQ(ringio_submit_accept_multishot(e.c, &o.base, 5, SOCK_CLOEXEC, 3, &tok), 0);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = real_fd();
        CHECK_EQ(fake_complete(e.fb, tok, fds[i], IORING_CQE_F_MORE), 0);
    }
    CHECK_EQ(reap_all(&e), 3);
    for (unsigned i = 0; i < 3 && i < e.cap->n; i++) {
        const struct ringio_event *ev = &e.cap->ev[i];
        CHECK(ev->token == tok);
        CHECK_EQ(ev->res, fds[i]);
        CHECK_EQ(ev->sequence, 3 + i);
        CHECK(ev->more);
        CHECK(!ev->final);
        CHECK_EQ(ev->opcode, IORING_OP_ACCEPT);
        /* delivered fds belong to the user now */
        CHECK(fd_is_open(fds[i]));
    }
    CHECK_EQ(o.released, 0);
    CHECK_EQ(fake_complete(e.fb, tok, -ECANCELED, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    REQUIRE(e.cap->n == 4);
    CHECK_EQ(e.cap->ev[3].sequence, 6);
    CHECK(e.cap->ev[3].final);
    CHECK(!e.cap->ev[3].more);
    CHECK_EQ(o.released, 1);
    for (int i = 0; i < 3; i++) {
        CHECK(fd_is_open(fds[i]));
        close(fds[i]);
    }

    /* multishot poll */
    struct towner p;
    towner_init(&p);
    uint64_t tp = 0;
    CHECK_EQ(ringio_submit_poll(e.c, &p.base, 5, POLLIN, true, 0, &tp), 0);
    CHECK_EQ(fake_complete(e.fb, tp, POLLIN, IORING_CQE_F_MORE), 0);
    CHECK_EQ(fake_complete(e.fb, tp, POLLIN, IORING_CQE_F_MORE), 0);
    CHECK_EQ(fake_complete(e.fb, tp, -ECANCELED, 0), 0);
    unsigned before = e.cap->n;
    CHECK_EQ(reap_all(&e), 3);
    REQUIRE(e.cap->n == before + 3);
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ(e.cap->ev[before + i].sequence, i);
        CHECK_EQ(e.cap->ev[before + i].more, i < 2);
        CHECK_EQ(e.cap->ev[before + i].final, i == 2);
    }
    CHECK_EQ(p.released, 1);
    env_done(&e);
}

/* ================================================================== */
/* 4. deliver callback refusing                                        */
/* ================================================================== */

static void test_refuse(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    struct towner o[3];
    uint64_t t[3];
    for (int i = 0; i < 3; i++) {
        towner_init(&o[i]);
        CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
    }
    e.cap->refuse_token = t[1];
    e.cap->refuse_times = 2;
    e.cap->refuse_ret = 7;
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 7);
    CHECK_EQ(e.cap->n, 1);
    CHECK_EQ(o[0].released, 1);
    CHECK_EQ(o[1].released, 0); /* not consumed: not released */
    CHECK_EQ(o[2].released, 0); /* the reap stopped */
    CHECK_EQ(o[2].delivered, 0);
    CHECK(ringio_core_ready(e.c));
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 7);
    CHECK_EQ(e.cap->n, 1);
    CHECK_EQ(o[1].released, 0);
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 2);
    REQUIRE(e.cap->n == 3);
    CHECK(e.cap->ev[1].token == t[1]); /* order kept */
    CHECK(e.cap->ev[2].token == t[2]);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(o[i].released, 1);
        CHECK_EQ(o[i].delivered, 1);
    }
    CHECK_EQ(stats_of(e.c).delivered, 3);
    CHECK_EQ(ringio_core_inflight(e.c), 0);

    /* max is honoured and the rest stays queued */
    struct towner m[5];
    for (int i = 0; i < 5; i++) {
        towner_init(&m[i]);
        uint64_t tt;
        CHECK_EQ(ringio_submit_nop(e.c, &m[i].base, &tt), 0);
    }
    CHECK_EQ(ringio_core_reap(e.c, 2, cap_fn, e.cap), 2);
    CHECK_EQ(ringio_core_reap(e.c, 2, cap_fn, e.cap), 2);
    CHECK_EQ(ringio_core_reap(e.c, 2, cap_fn, e.cap), 1);
    CHECK_EQ(ringio_core_reap(e.c, 2, cap_fn, e.cap), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(m[i].released, 1);

    /* a refused event is still released exactly once if the ring closes */
    struct towner z;
    towner_init(&z);
    uint64_t tz;
    CHECK_EQ(ringio_submit_nop(e.c, &z.base, &tz), 0);
    e.cap->refuse_token = tz;
    e.cap->refuse_times = 1;
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 7);
    CHECK_EQ(z.released, 0);
    CHECK_EQ(ringio_core_close(e.c, 0), 0);
    CHECK_EQ(z.released, 1);
    env_done(&e);
    CHECK_EQ(z.released, 1);
}

/* Refusals on the special paths: a held zero-copy event, a zero-copy op
 * CQE, a wake. */
static void test_refuse_special(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    static char buf[32];

    /* held REPORT_USAGE event refused when the notification releases it */
    struct towner r;
    towner_init(&r);
    uint64_t tr = 0;
    CHECK_EQ(ringio_submit_send_zc(e.c, &r.base, 5, buf, sizeof(buf), 0,
                                   IORING_SEND_ZC_REPORT_USAGE, &tr),
             0);
    CHECK_EQ(fake_complete(e.fb, tr, 32, IORING_CQE_F_MORE), 0);
    CHECK_EQ(fake_complete(e.fb, tr, (int32_t)IORING_NOTIF_USAGE_ZC_COPIED, IORING_CQE_F_NOTIF),
             0);
    e.cap->refuse_token = tr;
    e.cap->refuse_times = 2;
    e.cap->refuse_ret = 9;
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 9);
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 9);
    CHECK_EQ(r.released, 0);
    CHECK_EQ(reap_all(&e), 1);
    const struct ringio_event *ev = cap_find(e.cap, tr);
    REQUIRE(ev != NULL);
    CHECK_EQ(ev->res, 32);
    CHECK_EQ(ev->zc_copied, 1);
    CHECK(ev->final);
    CHECK_EQ(r.released, 1);
    CHECK_EQ(cap_count(e.cap, tr), 1);

    /* zero-copy op CQE refused, notification queued behind it */
    struct towner z;
    towner_init(&z);
    uint64_t tz = 0;
    CHECK_EQ(ringio_submit_send_zc(e.c, &z.base, 5, buf, sizeof(buf), 0, 0, &tz), 0);
    CHECK_EQ(fake_complete(e.fb, tz, 32, IORING_CQE_F_MORE), 0);
    CHECK_EQ(fake_complete(e.fb, tz, 0, IORING_CQE_F_NOTIF), 0);
    e.cap->refuse_token = tz;
    e.cap->refuse_times = 1;
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 9);
    CHECK_EQ(z.released, 0);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(cap_count(e.cap, tz), 1);
    CHECK_EQ(z.released, 1);

    /* notification first, then the op CQE refused once */
    struct towner n;
    towner_init(&n);
    uint64_t tn = 0;
    CHECK_EQ(ringio_submit_send_zc(e.c, &n.base, 5, buf, sizeof(buf), 0, 0, &tn), 0);
    fake_post_cqe(e.fb, tn, 0, IORING_CQE_F_NOTIF);
    fake_post_cqe(e.fb, tn, 32, IORING_CQE_F_MORE);
    e.cap->refuse_token = tn;
    e.cap->refuse_times = 1;
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 9);
    CHECK_EQ(n.released, 0);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(cap_count(e.cap, tn), 1);
    CHECK_EQ(n.released, 1);

    /* wake refused: delivered again */
    CHECK_EQ(ringio_core_wake(e.c), 0);
    e.cap->refuse_token = RINGIO_TOKEN_WAKE;
    e.cap->refuse_times = 1;
    unsigned before = e.cap->n;
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 9);
    CHECK_EQ(reap_all(&e), 1);
    CHECK(e.cap->n == before + 1 && e.cap->ev[before].wake);
    CHECK_EQ(stats_of(e.c).stale_cqes, 0);
    CHECK_EQ(ringio_core_inflight(e.c), 0);
    env_done(&e);
}

/* ================================================================== */
/* 5. SQ full                                                          */
/* ================================================================== */

static void test_sq_full(void)
{
    /* BATCH with a kernel that does not consume: flush, retry once, -EBUSY. */
    {
        struct env e;
        REQUIRE(env_open(&e, 4, 8) == 0);
        CHECK_EQ(ringio_core_set_mode(e.c, RINGIO_SUBMIT_BATCH), RINGIO_SUBMIT_NOW);
        e.fb->refuse_consume = true;
        struct towner o[6];
        uint64_t t[6] = {0};
        for (int i = 0; i < 6; i++)
            towner_init(&o[i]);
        for (int i = 0; i < 4; i++)
            CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
        CHECK_EQ(e.rec.enters, 0);
        CHECK_EQ(ringio_core_staged(e.c), 4);
        CHECK_EQ(ringio_submit_nop(e.c, &o[4].base, &t[4]), -EBUSY);
        CHECK_EQ(e.rec.enters, 1);
        CHECK_EQ(o[4].released, 0);
        CHECK_EQ(ringio_core_inflight(e.c), 4);
        CHECK_EQ(fake_sq_unpublished(e.fb), 0); /* nothing half-prepared */
        CHECK_EQ(ringio_core_staged(e.c), 4);
        CHECK(stats_of(e.c).sq_full_flushes >= 1);
        /* the kernel recovers */
        e.fb->refuse_consume = false;
        CHECK_EQ(ringio_core_submit(e.c), 4);
        CHECK_EQ(ringio_core_staged(e.c), 0);
        CHECK_EQ(reap_all(&e), 4);
        for (int i = 0; i < 4; i++) {
            CHECK_EQ(cap_count(e.cap, t[i]), 1);
            CHECK_EQ(o[i].released, 1);
        }
        CHECK_EQ(o[4].delivered, 0);
        CHECK_EQ(o[4].released, 0);
        CHECK_EQ(ringio_submit_nop(e.c, &o[5].base, &t[5]), 0);
        CHECK_EQ(ringio_core_submit(e.c), 1);
        CHECK_EQ(reap_all(&e), 1);
        CHECK_EQ(o[5].released, 1);
        CHECK_EQ(e.rec.consumed, 5);
        env_done(&e);
        CHECK_EQ(o[4].released, 0);
    }
    /* STRICT: never enters early. */
    {
        struct env e;
        REQUIRE(env_open(&e, 4, 8) == 0);
        ringio_core_set_mode(e.c, RINGIO_SUBMIT_STRICT);
        struct towner o[5];
        uint64_t t[5] = {0};
        for (int i = 0; i < 5; i++)
            towner_init(&o[i]);
        for (int i = 0; i < 4; i++)
            CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
        CHECK_EQ(ringio_submit_nop(e.c, &o[4].base, &t[4]), -EBUSY);
        CHECK_EQ(e.rec.enters, 0);
        CHECK_EQ(o[4].released, 0);
        CHECK_EQ(ringio_core_inflight(e.c), 4);
        CHECK_EQ(stats_of(e.c).sq_full_flushes, 0);
        CHECK_EQ(ringio_core_submit(e.c), 4);
        CHECK_EQ(reap_all(&e), 4);
        CHECK_EQ(ringio_submit_nop(e.c, &o[4].base, &t[4]), 0);
        CHECK_EQ(ringio_core_submit(e.c), 1);
        CHECK_EQ(reap_all(&e), 1);
        for (int i = 0; i < 5; i++)
            CHECK_EQ(o[i].released, 1);
        CHECK_EQ(ringio_core_set_mode(e.c, RINGIO_SUBMIT_NOW), RINGIO_SUBMIT_STRICT);
        env_done(&e);
    }
    /* BATCH, healthy kernel: the 5th submit flushes and succeeds. */
    {
        struct env e;
        REQUIRE(env_open(&e, 4, 8) == 0);
        ringio_core_set_mode(e.c, RINGIO_SUBMIT_BATCH);
        struct towner o[5];
        uint64_t t[5] = {0};
        for (int i = 0; i < 5; i++) {
            towner_init(&o[i]);
            CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
        }
        CHECK_EQ(e.rec.enters, 1);
        CHECK_EQ(e.rec.consumed, 4);
        CHECK_EQ(stats_of(e.c).sq_full_flushes, 1);
        CHECK_EQ(ringio_core_staged(e.c), 1);
        CHECK_EQ(ringio_core_submit(e.c), 1);
        CHECK_EQ(reap_all(&e), 5);
        for (int i = 0; i < 5 && i < (int)e.cap->n; i++)
            CHECK(e.cap->ev[i].token == t[i]);
        for (int i = 0; i < 5; i++)
            CHECK_EQ(o[i].released, 1);
        /* leaving a staging mode does not flush */
        struct towner x;
        towner_init(&x);
        uint64_t tx;
        CHECK_EQ(ringio_submit_nop(e.c, &x.base, &tx), 0);
        unsigned enters = e.rec.enters;
        ringio_core_set_mode(e.c, RINGIO_SUBMIT_NOW);
        CHECK_EQ(e.rec.enters, enters);
        CHECK_EQ(ringio_core_staged(e.c), 1);
        CHECK_EQ(ringio_core_submit(e.c), 1);
        CHECK_EQ(reap_all(&e), 1);
        CHECK_EQ(x.released, 1);
        env_done(&e);
    }
    /* A multishot recv refused for a full SQ must not keep its buffer ring. */
    {
        struct env e;
        REQUIRE(env_open(&e, 4, 8) == 0);
        ringio_core_set_mode(e.c, RINGIO_SUBMIT_STRICT);
        struct towner o[5];
        uint64_t t[5];
        for (int i = 0; i < 5; i++)
            towner_init(&o[i]);
        for (int i = 0; i < 4; i++)
            CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
        CHECK_EQ(ringio_submit_recv_multishot(e.c, &o[4].base, 5, 64, 8, 0, 0, &t[4]), -EBUSY);
        CHECK_EQ(e.rec.bufrings_live, 0);
        CHECK_EQ(o[4].released, 0);
        CHECK_EQ(ringio_core_inflight(e.c), 4);
        env_done(&e);
        for (int i = 0; i < 4; i++)
            CHECK_EQ(o[i].released, 1);
    }
}

/* ================================================================== */
/* 6. CQ overflow and -EBUSY from enter                                */
/* ================================================================== */

static void test_overflow(void)
{
    enum { N = 256 };
    /* 256 completions outstanding against a 4-entry CQ. */
    for (int small_reaps = 0; small_reaps <= 1; small_reaps++) {
        struct env e;
        REQUIRE(env_open(&e, 4, 4) == 0);
        e.fb->auto_nop = false;
        struct towner *o = towners_new(N);
        uint64_t *t = calloc(N, sizeof(*t));
        REQUIRE(t != NULL);
        for (int i = 0; i < N; i++)
            CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
        CHECK_EQ(fake_pending_count(e.fb), N);
        for (int i = 0; i < N; i++)
            CHECK_EQ(fake_complete(e.fb, t[i], i, 0), 0);
        CHECK_EQ(e.rec.cqes_overflowed, N - 4);
        CHECK(ringio_core_ready(e.c));
        if (small_reaps) {
            int total = 0, r;
            while ((r = ringio_core_reap(e.c, 10, cap_fn, e.cap)) > 0) {
                CHECK(r <= 10);
                total += r;
            }
            CHECK_EQ(total, N);
        } else {
            CHECK_EQ(ringio_core_reap(e.c, 100000, cap_fn, e.cap), N);
            CHECK_EQ(ringio_core_reap(e.c, 100000, cap_fn, e.cap), 0);
        }
        CHECK_EQ(e.cap->n, N);
        for (int i = 0; i < N && i < (int)e.cap->n; i++) {
            CHECK(e.cap->ev[i].token == t[i]);
            CHECK_EQ(e.cap->ev[i].res, i);
        }
        for (int i = 0; i < N; i++)
            CHECK_EQ(o[i].released, 1);
        struct ringio_stats st = stats_of(e.c);
        CHECK(st.overflow_flushes > 0);
        CHECK_EQ(st.completed, N);
        CHECK_EQ(st.delivered, N);
        CHECK_EQ(fake_cq_backlog(e.fb), 0);
        CHECK_EQ(ringio_core_inflight(e.c), 0);
        env_done(&e);
        free(o);
        free(t);
    }

    /* NOPs completing at submission into a 4-entry CQ, kernel -EBUSY while
     * the backlog is not empty (5.x behaviour): nothing is lost. */
    {
        struct env e;
        REQUIRE(env_open(&e, 4, 4) == 0);
        e.fb->busy_on_backlog = true;
        struct towner *o = towners_new(N);
        uint64_t *t = calloc(N, sizeof(*t));
        int *rc = calloc(N, sizeof(*rc));
        REQUIRE(t && rc);
        int ok = 0;
        for (int i = 0; i < N; i++) {
            rc[i] = ringio_submit_nop(e.c, &o[i].base, &t[i]);
            CHECK(rc[i] == 0 || rc[i] == -EBUSY);
            ok += rc[i] == 0;
        }
        CHECK_EQ(ok, N);
        for (int guard = 0; guard < 100 && ringio_core_inflight(e.c) > 0; guard++) {
            ringio_core_submit(e.c);
            reap_all(&e);
        }
        CHECK_EQ(ringio_core_inflight(e.c), 0);
        unsigned k = 0;
        for (int i = 0; i < N; i++) {
            if (rc[i] != 0) {
                CHECK_EQ(o[i].released, 0);
                CHECK_EQ(o[i].delivered, 0);
                continue;
            }
            CHECK_EQ(o[i].released, 1);
            CHECK_EQ(o[i].delivered, 1);
            /* in submission order */
            while (k < e.cap->n && e.cap->ev[k].wake)
                k++;
            CHECK(k < e.cap->n && e.cap->ev[k].token == t[i]);
            k++;
        }
        CHECK_EQ(fake_cq_backlog(e.fb), 0);
        env_done(&e);
        free(o);
        free(t);
        free(rc);
    }

    /* enter() returning -EBUSY during submission: the core reaps and retries;
     * every accepted op is delivered exactly once, refused ones never. */
    for (unsigned busy = 1; busy <= 3; busy++) {
        struct env e;
        REQUIRE(env_open(&e, 8, 8) == 0);
        enum { M = 64 };
        struct towner *o = towners_new(M);
        uint64_t t[M];
        int rc[M];
        unsigned ok = 0;
        for (int i = 0; i < M; i++) {
            if (i % 8 == 3)
                e.fb->enter_busy_count = busy;
            rc[i] = ringio_submit_nop(e.c, &o[i].base, &t[i]);
            CHECK(rc[i] == 0 || rc[i] == -EBUSY || rc[i] == -EAGAIN);
            ok += rc[i] == 0;
        }
        CHECK(ok > 0);
        CHECK(e.rec.busy_returned > 0);
        CHECK(stats_of(e.c).busy_retries > 0);
        e.fb->enter_busy_count = 0;
        for (int guard = 0; guard < 100 && ringio_core_inflight(e.c) > 0; guard++) {
            ringio_core_submit(e.c);
            reap_all(&e);
        }
        CHECK_EQ(ringio_core_inflight(e.c), 0);
        CHECK_EQ(ringio_core_staged(e.c), 0);
        for (int i = 0; i < M; i++) {
            CHECK_EQ(o[i].released, rc[i] == 0 ? 1u : 0u);
            CHECK_EQ(o[i].delivered, rc[i] == 0 ? 1u : 0u);
        }
        CHECK_EQ(stats_of(e.c).delivered, ok);
        if (busy == 1)
            CHECK_EQ(ok, M); /* a single -EBUSY is absorbed by the retry */
        env_done(&e);
        free(o);
    }
}

/* A backlog far larger than the CQ: nothing lost, order kept. */
static void test_overflow_large(void)
{
    enum { N = 20000 };
    struct env e;
    REQUIRE(env_open(&e, 4, 4) == 0);
    struct towner *o = towners_new(N);
    uint64_t *t = calloc(N, sizeof(*t));
    REQUIRE(t != NULL);
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += ringio_submit_nop(e.c, &o[i].base, &t[i]) == 0;
    CHECK_EQ(ok, N);
    CHECK(fake_cq_backlog(e.fb) > 0);
    struct cap *big = calloc(1, sizeof(*big));
    REQUIRE(big != NULL);
    /* one reap with a large max should hand over everything */
    unsigned long delivered = 0, expected = 0;
    bool order_ok = true;
    int first = -1, calls = 0, r;
    do {
        big->n = 0;
        r = ringio_core_reap(e.c, N + 10, cap_fn, big);
        calls++;
        if (first < 0)
            first = r;
        for (unsigned i = 0; i < big->n && i < CAP_MAX; i++)
            order_ok &= big->ev[i].token == t[expected + i];
        if (r > 0) {
            delivered += (unsigned long)r;
            expected += (unsigned long)r;
        }
    } while (r > 0 && calls < 1000);
    CHECK_EQ(delivered, N);
    CHECK(order_ok);
    if (first != N)
        fprintf(stderr, "note: [%s] first reap(max=%d) delivered %d of %d (backlog pulled "
                        "in several reaps)\n", g_test, N + 10, first, N);
    unsigned released = 0;
    for (int i = 0; i < N; i++)
        released += o[i].released == 1;
    CHECK_EQ(released, N);
    CHECK_EQ(fake_cq_backlog(e.fb), 0);
    free(big);
    env_done(&e);
    free(o);
    free(t);
}

/* Completions keep arriving between partial reaps: the core's internal
 * queue wraps and grows while partly consumed; order and count survive. */
static void test_fifo_wrap(void)
{
    enum { N = 1500 };
    struct env e;
    REQUIRE(env_open(&e, 8, 8) == 0);
    e.fb->auto_nop = false;
    struct towner *o = towners_new(N);
    uint64_t *t = calloc(N, sizeof(*t));
    REQUIRE(t != NULL);
    for (int i = 0; i < N; i++)
        CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
    int posted = 0;
    int batches[] = {256, 50, 300, 7, 500, 387};
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        for (int k = 0; k < batches[b] && posted < N; k++, posted++)
            CHECK_EQ(fake_complete(e.fb, t[posted], posted, 0), 0);
        int r = ringio_core_reap(e.c, 10 + (unsigned)b * 3, cap_fn, e.cap);
        CHECK(r > 0);
    }
    CHECK_EQ(posted, N);
    unsigned have = e.cap->n;
    CHECK_EQ(reap_all(&e), (int)(N - have));
    CHECK_EQ(e.cap->n, N);
    bool order = true;
    for (unsigned i = 0; i < e.cap->n && i < CAP_MAX; i++)
        order &= e.cap->ev[i].token == t[i] && e.cap->ev[i].res == (int32_t)i;
    CHECK(order);
    for (int i = 0; i < N; i++)
        CHECK_EQ(o[i].released, 1);
    env_done(&e);
    free(o);
    free(t);
}

/* enter() refusing more often than the core retries: the op stays staged
 * (or is refused), never lost, never released twice. */
static void test_busy_storm(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 8) == 0);
    struct towner o[4];
    uint64_t t[4];
    int rc[4];
    e.fb->enter_busy_count = 100;
    for (int i = 0; i < 4; i++) {
        towner_init(&o[i]);
        rc[i] = ringio_submit_nop(e.c, &o[i].base, &t[i]);
        CHECK(rc[i] == 0 || rc[i] == -EBUSY || rc[i] == -EAGAIN);
    }
    e.fb->enter_busy_count = 0;
    for (int guard = 0; guard < 10 && ringio_core_inflight(e.c) > 0; guard++) {
        ringio_core_submit(e.c);
        reap_all(&e);
    }
    CHECK_EQ(ringio_core_inflight(e.c), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(o[i].released, rc[i] == 0 ? 1u : 0u);
        CHECK_EQ(o[i].delivered, rc[i] == 0 ? 1u : 0u);
    }
    env_done(&e);
}

/* ================================================================== */
/* 7. close with operations in flight                                  */
/* ================================================================== */

static bool cancel_logged_for(const struct fake_record *r, uint64_t tok)
{
    for (size_t i = 0; i < r->log_len; i++) {
        const struct io_uring_sqe *s = &r->log[i];
        if (s->opcode != IORING_OP_ASYNC_CANCEL)
            continue;
        if (s->cancel_flags & IORING_ASYNC_CANCEL_ANY)
            return true;
        if (!(s->cancel_flags & IORING_ASYNC_CANCEL_FD) && s->addr == tok)
            return true;
    }
    return false;
}

static void test_close_inflight(void)
{
    enum { N = 100 };
    static char buf[64];
    /* (a) the fake answers cancels */
    {
        struct env e;
        REQUIRE(env_open(&e, 32, 64) == 0);
        struct towner *o = towners_new(N + 1);
        uint64_t t[N + 1];
        for (int i = 0; i < N; i++)
            CHECK_EQ(ringio_submit_recv(e.c, &o[i].base, 5, buf, sizeof(buf), 0, &t[i]), 0);
        CHECK_EQ(ringio_submit_recv_multishot(e.c, &o[N].base, 6, 64, 8, 0, 0, &t[N]), 0);
        CHECK_EQ(fake_pending_count(e.fb), N + 1);
        CHECK_EQ(ringio_core_inflight(e.c), N + 1);
        int64_t t0 = now_ns();
        int forced = ringio_core_close(e.c, 200 * 1000 * 1000);
        CHECK_EQ(forced, 0);
        CHECK(now_ns() - t0 < 2000000000);
        CHECK(ringio_core_closed(e.c));
        for (int i = 0; i <= N; i++) {
            CHECK_EQ(o[i].released, 1);
            CHECK(cancel_logged_for(&e.rec, t[i]));
        }
        CHECK_EQ(e.rec.destroys, 1);
        CHECK_EQ(e.rec.pending_at_destroy, 0);
        CHECK_EQ(e.rec.bufrings_live_at_destroy, 0);
        CHECK_EQ(e.cap->calls, 0); /* close delivers nothing */
        /* idempotent */
        CHECK_EQ(ringio_core_close(e.c, 200 * 1000 * 1000), 0);
        CHECK_EQ(e.rec.destroys, 1);
        for (int i = 0; i <= N; i++)
            CHECK_EQ(o[i].released, 1);
        /* closed ring refuses new work without touching the owner */
        struct towner x;
        towner_init(&x);
        uint64_t tx;
        CHECK(ringio_submit_nop(e.c, &x.base, &tx) < 0);
        CHECK(ringio_submit_recv(e.c, &x.base, 5, buf, sizeof(buf), 0, &tx) < 0);
        CHECK(ringio_submit_recv_multishot(e.c, &x.base, 5, 64, 8, 0, 0, &tx) < 0);
        CHECK(ringio_submit_send_zc(e.c, &x.base, 5, buf, sizeof(buf), 0, 0, &tx) < 0);
        CHECK(ringio_submit_accept_multishot(e.c, &x.base, 5, 0, 0, &tx) < 0);
        CHECK(ringio_submit_cancel(e.c, &x.base, t[0], 0, &tx) < 0);
        struct __kernel_timespec kts = {0, 1};
        CHECK(ringio_submit_timeout(e.c, &x.base, &kts, 0, 0, &tx) < 0);
        CHECK(ringio_core_wake(e.c) < 0);
        CHECK(ringio_core_submit(e.c) < 0);
        CHECK_EQ(ringio_core_staged(e.c), 0);
        CHECK(!ringio_core_ready(e.c));
        uint8_t sup[8];
        CHECK(ringio_core_probe_opcodes(e.c, sup, sizeof(sup)) < 0);
        unsigned ts_ = ringio_core_wait_prepare(e.c);
        CHECK_EQ(ts_, 0);
        CHECK(ringio_core_wait_block(e.c, ts_, 1, 0) < 0);
        ringio_core_wait_finish(e.c);
        struct ringio_stats st = stats_of(e.c);
        CHECK_EQ(st.inflight, 0);
        CHECK_EQ(x.released, 0);
        CHECK_EQ(ringio_core_inflight(e.c), 0);
        CHECK(ringio_core_reap(e.c, 16, cap_fn, e.cap) <= 0);
        env_done(&e);
        free(o);
    }
    /* (b) the fake never answers cancels: bounded, everything force-released */
    {
        struct env e;
        REQUIRE(env_open(&e, 32, 64) == 0);
        e.fb->cancel_policy = FAKE_CANCEL_HOLD;
        struct towner *o = towners_new(N + 1);
        uint64_t t[N + 1];
        for (int i = 0; i < N; i++)
            CHECK_EQ(ringio_submit_recv(e.c, &o[i].base, 5, buf, sizeof(buf), 0, &t[i]), 0);
        /* a live multishot recv: its buffer ring must be unregistered before
         * the backend goes, even when its owner is force-released */
        CHECK_EQ(ringio_submit_recv_multishot(e.c, &o[N].base, 6, 64, 8, 0, 0, &t[N]), 0);
        CHECK(fake_recv_into(e.fb, t[N], "abc", 3, true) >= 0);
        CHECK_EQ(reap_all(&e), 1);
        int64_t t0 = now_ns();
        int forced = ringio_core_close(e.c, 20 * 1000 * 1000);
        int64_t dt = now_ns() - t0;
        CHECK_EQ(forced, N + 1);
        CHECK(dt < 2000000000);
        for (int i = 0; i <= N; i++) {
            CHECK_EQ(o[i].released, 1);
            CHECK(cancel_logged_for(&e.rec, t[i]));
        }
        CHECK_EQ(e.rec.destroys, 1);
        CHECK_EQ(e.rec.bufrings_live_at_destroy, 0);
        CHECK_EQ(e.rec.bufrings_unregistered, 1);
        CHECK_EQ(ringio_core_close(e.c, 20 * 1000 * 1000), 0);
        for (int i = 0; i <= N; i++)
            CHECK_EQ(o[i].released, 1);
        env_done(&e);
        free(o);
    }
    /* (b2) the kernel answers cancels asynchronously, while close waits:
     * nothing must be force-released when the bound allows the wait */
    {
        struct env e;
        REQUIRE(env_open(&e, 32, 64) == 0);
        e.fb->cancel_policy = FAKE_CANCEL_DEFERRED;
        struct towner *o = towners_new(N);
        uint64_t t[N];
        for (int i = 0; i < N; i++)
            CHECK_EQ(ringio_submit_recv(e.c, &o[i].base, 5, buf, sizeof(buf), 0, &t[i]), 0);
        CHECK_EQ(ringio_core_close(e.c, 500 * 1000 * 1000), 0);
        for (int i = 0; i < N; i++)
            CHECK_EQ(o[i].released, 1);
        CHECK_EQ(e.rec.pending_at_destroy, 0);
        env_done(&e);
        free(o);
    }
    /* (c) some completions already posted, some answered by cancel; a zero
     * timeout still releases everyone exactly once */
    {
        struct env e;
        REQUIRE(env_open(&e, 16, 32) == 0);
        struct towner *o = towners_new(N);
        uint64_t t[N];
        for (int i = 0; i < N; i++)
            CHECK_EQ(ringio_submit_recv(e.c, &o[i].base, 5, buf, sizeof(buf), 0, &t[i]), 0);
        for (int i = 0; i < N; i += 3)
            CHECK_EQ(fake_complete(e.fb, t[i], 1, 0), 0);
        int forced = ringio_core_close(e.c, 0);
        CHECK(forced >= 0 && forced <= N);
        for (int i = 0; i < N; i++)
            CHECK_EQ(o[i].released, 1);
        CHECK_EQ(e.cap->calls, 0);
        env_done(&e);
        free(o);
    }
}

/* close when even the cancels cannot get into a full SQ */
static void test_close_sq_stuck(void)
{
    struct env e;
    REQUIRE(env_open(&e, 4, 8) == 0);
    ringio_core_set_mode(e.c, RINGIO_SUBMIT_STRICT);
    e.fb->refuse_consume = true;
    struct towner o[4];
    uint64_t t[4];
    static char buf[8];
    for (int i = 0; i < 4; i++) {
        towner_init(&o[i]);
        CHECK_EQ(ringio_submit_recv(e.c, &o[i].base, 5, buf, sizeof(buf), 0, &t[i]), 0);
    }
    int64_t t0 = now_ns();
    CHECK_EQ(ringio_core_close(e.c, 10 * 1000 * 1000), 4);
    CHECK(now_ns() - t0 < 2000000000);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(o[i].released, 1);
    CHECK_EQ(e.rec.unpublished_at_destroy, 0);
    env_done(&e);
}

static bool hook_accept_fd(void *ctx, struct fake_backend *fb, const struct io_uring_sqe *sqe)
{
    /* The accept completes with a new fd just as the cancel arrives. */
    int *fd = ctx;
    if (sqe->opcode == IORING_OP_ASYNC_CANCEL && *fd >= 0 && fake_pending_find(fb, sqe->addr) &&
        fake_pending_find(fb, sqe->addr)->opcode == IORING_OP_ACCEPT &&
        !(fake_pending_find(fb, sqe->addr)->ioprio & IORING_ACCEPT_MULTISHOT)) {
        fake_complete(fb, sqe->addr, *fd, 0);
        fake_post_cqe(fb, sqe->user_data, -EALREADY, 0);
        *fd = -1;
        return true;
    }
    return false;
}

static void test_close_fds(void)
{
    struct env e;
    REQUIRE(env_open(&e, 16, 32) == 0);
    struct towner a, m, s, d, r, h;
    towner_init(&a);
    towner_init(&m);
    towner_init(&s);
    towner_init(&d);
    towner_init(&r);
    towner_init(&h);
    uint64_t ta, tm, ts, td, tr, th;
    CHECK_EQ(ringio_submit_accept(e.c, &a.base, 5, NULL, NULL, 0, &ta), 0);
    CHECK_EQ(ringio_submit_accept_multishot(e.c, &m.base, 5, 0, 0, &tm), 0);
    CHECK_EQ(ringio_submit_socket(e.c, &s.base, AF_INET, SOCK_STREAM, 0, &ts), 0);
    CHECK_EQ(ringio_submit_accept(e.c, &d.base, 5, NULL, NULL, 0, &td), 0);
    CHECK_EQ(ringio_submit_accept(e.c, &r.base, 5, NULL, NULL, 0, &tr), 0);
    CHECK_EQ(ringio_submit_accept(e.c, &h.base, 5, NULL, NULL, 0, &th), 0);

    /* d: delivered to the user: the user owns the fd, close must not touch it */
    int fd_d = real_fd();
    CHECK_EQ(fake_complete(e.fb, td, fd_d, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(d.released, 1);
    /* r: completed, but the callback refused the event: nobody saw it */
    int fd_r = real_fd();
    CHECK_EQ(fake_complete(e.fb, tr, fd_r, 0), 0);
    e.cap->refuse_token = tr;
    e.cap->refuse_times = 1000;
    e.cap->refuse_ret = 1;
    CHECK_EQ(ringio_core_reap(e.c, 16, cap_fn, e.cap), 1);
    CHECK_EQ(r.released, 0);
    /* a, m, s: completions in the CQ nobody reaped */
    int fd_a = real_fd(), fd_m1 = real_fd(), fd_m2 = real_fd(), fd_s = real_fd();
    CHECK_EQ(fake_complete(e.fb, ta, fd_a, 0), 0);
    CHECK_EQ(fake_complete(e.fb, tm, fd_m1, IORING_CQE_F_MORE), 0);
    CHECK_EQ(fake_complete(e.fb, tm, fd_m2, IORING_CQE_F_MORE), 0);
    CHECK_EQ(fake_complete(e.fb, ts, fd_s, 0), 0);
    /* h: completes with an fd in answer to the close-time cancel */
    int fd_h = real_fd();
    int hook_fd = fd_h;
    e.fb->hook = hook_accept_fd;
    e.fb->hook_ctx = &hook_fd;

    unsigned calls = e.cap->calls;
    int forced = ringio_core_close(e.c, 50 * 1000 * 1000);
    CHECK_EQ(forced, 0);
    CHECK_EQ(hook_fd, -1);
    CHECK_EQ(e.cap->calls, calls);
    CHECK(fd_is_closed(fd_a));
    CHECK(fd_is_closed(fd_m1));
    CHECK(fd_is_closed(fd_m2));
    CHECK(fd_is_closed(fd_s));
    CHECK(fd_is_closed(fd_r));
    CHECK(fd_is_closed(fd_h));
    CHECK(fd_is_open(fd_d));
    close(fd_d);
    CHECK_EQ(a.released, 1);
    CHECK_EQ(m.released, 1);
    CHECK_EQ(s.released, 1);
    CHECK_EQ(d.released, 1);
    CHECK_EQ(r.released, 1);
    CHECK_EQ(h.released, 1);
    env_done(&e);
    /* fds the test closed itself if the core did not, to keep the run clean */
    int all[] = {fd_a, fd_m1, fd_m2, fd_s, fd_r, fd_h};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (fd_is_open(all[i]))
            close(all[i]);
}

static void test_free_without_close(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    struct towner o[4];
    uint64_t t[4];
    static char buf[8];
    for (int i = 0; i < 4; i++) {
        towner_init(&o[i]);
        CHECK_EQ(ringio_submit_recv(e.c, &o[i].base, 5, buf, sizeof(buf), 0, &t[i]), 0);
    }
    CHECK_EQ(fake_complete(e.fb, t[0], 3, 0), 0);
    ringio_core_free(e.c);
    e.c = NULL;
    for (int i = 0; i < 4; i++)
        CHECK_EQ(o[i].released, 1);
    env_done(&e);

    /* staged but never submitted ops are released too */
    REQUIRE(env_open(&e, 8, 16) == 0);
    ringio_core_set_mode(e.c, RINGIO_SUBMIT_STRICT);
    for (int i = 0; i < 4; i++) {
        towner_init(&o[i]);
        CHECK_EQ(ringio_submit_recv(e.c, &o[i].base, 5, buf, sizeof(buf), 0, &t[i]), 0);
    }
    CHECK_EQ(ringio_core_staged(e.c), 4);
    int forced = ringio_core_close(e.c, 1000 * 1000);
    CHECK(forced >= 0 && forced <= 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(o[i].released, 1);
    env_done(&e);
}

/* ================================================================== */
/* 8. SQE contents                                                     */
/* ================================================================== */

enum { DC_FD = 1, DC_LEN = 2 };

static void expect_sqe_at(int line, const char *what, const struct io_uring_sqe *got,
                          const struct io_uring_sqe *want, unsigned dont_care)
{
    if (!got) {
        fprintf(stderr, "%s:%d: [%s] %s: no SQE logged\n", __FILE__, line, g_test, what);
        g_failures++;
        g_test_failures++;
        return;
    }
    struct io_uring_sqe w = *want;
    if (dont_care & DC_FD)
        w.fd = got->fd;
    if (dont_care & DC_LEN)
        w.len = got->len;
    if (memcmp(got, &w, sizeof(w)) == 0)
        return;
    g_failures++;
    g_test_failures++;
#define F(name)                                                                               \
    if (got->name != w.name)                                                                  \
        fprintf(stderr, "%s:%d: [%s] %s: sqe." #name " = %#llx, want %#llx\n", __FILE__, line,  \
                g_test, what, (unsigned long long)got->name, (unsigned long long)w.name);
    F(opcode) F(flags) F(ioprio) F(fd) F(off) F(addr) F(len) F(rw_flags) F(user_data)
    F(buf_index) F(personality) F(splice_fd_in) F(addr3) F(__pad2[0])
#undef F
}
#define EXPECT_SQE(what, got, want, dc) expect_sqe_at(__LINE__, what, got, want, dc)

static struct io_uring_sqe sqe_base(uint8_t op, int fd, uint64_t addr, uint32_t len, uint64_t off,
                                    uint64_t ud)
{
    struct io_uring_sqe s;
    memset(&s, 0, sizeof(s));
    s.opcode = op;
    s.fd = fd;
    s.addr = addr;
    s.len = len;
    s.off = off;
    s.user_data = ud;
    return s;
}

static void test_sqe_contents(void)
{
    struct env e;
    REQUIRE(env_open(&e, 32, 64) == 0);
    e.fb->cancel_policy = FAKE_CANCEL_HOLD;
    enum { N = 20 };
    struct towner *o = towners_new(N);
    uint64_t t[N];
    memset(t, 0, sizeof(t));
    static char buf[100];
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    socklen_t slen = sizeof(sin);
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    struct __kernel_timespec kts = {1, 500};
    struct io_uring_sqe w;

    CHECK_EQ(ringio_submit_nop(e.c, &o[0].base, &t[0]), 0);
    w = sqe_base(IORING_OP_NOP, 0, 0, 0, 0, t[0]);
    EXPECT_SQE("nop", fake_log_find(&e.rec, t[0]), &w, DC_FD);

    CHECK_EQ(ringio_submit_timeout(e.c, &o[1].base, &kts, 3, IORING_TIMEOUT_ABS, &t[1]), 0);
    w = sqe_base(IORING_OP_TIMEOUT, 0, (uintptr_t)&kts, 1, 3, t[1]);
    w.timeout_flags = IORING_TIMEOUT_ABS;
    EXPECT_SQE("timeout", fake_log_find(&e.rec, t[1]), &w, DC_FD);

    CHECK_EQ(ringio_submit_cancel(e.c, &o[2].base, t[1], IORING_ASYNC_CANCEL_ALL, &t[2]), 0);
    w = sqe_base(IORING_OP_ASYNC_CANCEL, 0, t[1], 0, 0, t[2]);
    w.cancel_flags = IORING_ASYNC_CANCEL_ALL;
    EXPECT_SQE("cancel", fake_log_find(&e.rec, t[2]), &w, DC_FD);

    CHECK_EQ(ringio_submit_poll(e.c, &o[3].base, 7, POLLIN | POLLPRI, false, 0, &t[3]), 0);
    w = sqe_base(IORING_OP_POLL_ADD, 7, 0, 0, 0, t[3]);
    w.poll32_events = POLLIN | POLLPRI;
    EXPECT_SQE("poll", fake_log_find(&e.rec, t[3]), &w, 0);

    CHECK_EQ(ringio_submit_poll(e.c, &o[4].base, 7, POLLOUT, true, 0, &t[4]), 0);
    w = sqe_base(IORING_OP_POLL_ADD, 7, 0, IORING_POLL_ADD_MULTI, 0, t[4]);
    w.poll32_events = POLLOUT;
    EXPECT_SQE("poll multishot", fake_log_find(&e.rec, t[4]), &w, 0);

    CHECK_EQ(ringio_submit_recv(e.c, &o[5].base, 8, buf, 77, MSG_PEEK, &t[5]), 0);
    w = sqe_base(IORING_OP_RECV, 8, (uintptr_t)buf, 77, 0, t[5]);
    w.msg_flags = MSG_PEEK;
    EXPECT_SQE("recv", fake_log_find(&e.rec, t[5]), &w, 0);

    CHECK_EQ(ringio_submit_recv_multishot(e.c, &o[6].base, 9, 256, 16, MSG_DONTWAIT, 0, &t[6]),
             0);
    {
        const struct io_uring_sqe *g = fake_log_find(&e.rec, t[6]);
        REQUIRE(g != NULL);
        CHECK(fake_bufring_find(e.fb, g->buf_group) != NULL);
        CHECK_EQ(e.rec.bufrings_live, 1);
        w = sqe_base(IORING_OP_RECV, 9, 0, 0, 0, t[6]);
        w.msg_flags = MSG_DONTWAIT;
        w.ioprio = IORING_RECV_MULTISHOT;
        w.flags = IOSQE_BUFFER_SELECT;
        w.buf_group = g->buf_group; /* checked against the registry above */
        EXPECT_SQE("recv multishot", g, &w, 0);
    }

    CHECK_EQ(ringio_submit_send(e.c, &o[7].base, 10, buf, 55, MSG_NOSIGNAL, &t[7]), 0);
    w = sqe_base(IORING_OP_SEND, 10, (uintptr_t)buf, 55, 0, t[7]);
    w.msg_flags = MSG_NOSIGNAL;
    EXPECT_SQE("send", fake_log_find(&e.rec, t[7]), &w, 0);

    CHECK_EQ(ringio_submit_send_zc(e.c, &o[8].base, 11, buf, 44, MSG_NOSIGNAL,
                                   IORING_SEND_ZC_REPORT_USAGE | IORING_RECVSEND_POLL_FIRST,
                                   &t[8]),
             0);
    w = sqe_base(IORING_OP_SEND_ZC, 11, (uintptr_t)buf, 44, 0, t[8]);
    w.msg_flags = MSG_NOSIGNAL;
    w.ioprio = IORING_SEND_ZC_REPORT_USAGE | IORING_RECVSEND_POLL_FIRST;
    EXPECT_SQE("send_zc", fake_log_find(&e.rec, t[8]), &w, 0);

    CHECK_EQ(ringio_submit_recvmsg(e.c, &o[9].base, 12, &msg, MSG_TRUNC, &t[9]), 0);
    w = sqe_base(IORING_OP_RECVMSG, 12, (uintptr_t)&msg, 1, 0, t[9]);
    w.msg_flags = MSG_TRUNC;
    EXPECT_SQE("recvmsg", fake_log_find(&e.rec, t[9]), &w, DC_LEN);

    CHECK_EQ(ringio_submit_sendmsg(e.c, &o[10].base, 13, &msg, MSG_MORE, &t[10]), 0);
    w = sqe_base(IORING_OP_SENDMSG, 13, (uintptr_t)&msg, 1, 0, t[10]);
    w.msg_flags = MSG_MORE;
    EXPECT_SQE("sendmsg", fake_log_find(&e.rec, t[10]), &w, DC_LEN);

    CHECK_EQ(ringio_submit_sendmsg_zc(e.c, &o[11].base, 14, &msg, 0, 0, &t[11]), 0);
    w = sqe_base(IORING_OP_SENDMSG_ZC, 14, (uintptr_t)&msg, 1, 0, t[11]);
    EXPECT_SQE("sendmsg_zc", fake_log_find(&e.rec, t[11]), &w, DC_LEN);

    CHECK_EQ(ringio_submit_accept(e.c, &o[12].base, 15, (struct sockaddr *)&sin, &slen,
                                  SOCK_NONBLOCK | SOCK_CLOEXEC, &t[12]),
             0);
    w = sqe_base(IORING_OP_ACCEPT, 15, (uintptr_t)&sin, 0, (uintptr_t)&slen, t[12]);
    w.accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    EXPECT_SQE("accept", fake_log_find(&e.rec, t[12]), &w, 0);

    CHECK_EQ(ringio_submit_accept(e.c, &o[13].base, 15, NULL, NULL, 0, &t[13]), 0);
    w = sqe_base(IORING_OP_ACCEPT, 15, 0, 0, 0, t[13]);
    EXPECT_SQE("accept NULL addr", fake_log_find(&e.rec, t[13]), &w, 0);

    CHECK_EQ(ringio_submit_accept_multishot(e.c, &o[14].base, 16, SOCK_CLOEXEC, 0, &t[14]), 0);
    w = sqe_base(IORING_OP_ACCEPT, 16, 0, 0, 0, t[14]);
    w.accept_flags = SOCK_CLOEXEC;
    w.ioprio = IORING_ACCEPT_MULTISHOT;
    EXPECT_SQE("accept multishot", fake_log_find(&e.rec, t[14]), &w, 0);

    CHECK_EQ(ringio_submit_connect(e.c, &o[15].base, 17, (struct sockaddr *)&sin, sizeof(sin),
                                   &t[15]),
             0);
    w = sqe_base(IORING_OP_CONNECT, 17, (uintptr_t)&sin, 0, sizeof(sin), t[15]);
    EXPECT_SQE("connect", fake_log_find(&e.rec, t[15]), &w, 0);

    CHECK_EQ(ringio_submit_shutdown(e.c, &o[16].base, 18, SHUT_RDWR, &t[16]), 0);
    w = sqe_base(IORING_OP_SHUTDOWN, 18, 0, SHUT_RDWR, 0, t[16]);
    EXPECT_SQE("shutdown", fake_log_find(&e.rec, t[16]), &w, 0);

    CHECK_EQ(ringio_submit_close(e.c, &o[17].base, 19, &t[17]), 0);
    w = sqe_base(IORING_OP_CLOSE, 19, 0, 0, 0, t[17]);
    EXPECT_SQE("close", fake_log_find(&e.rec, t[17]), &w, 0);

    CHECK_EQ(ringio_submit_socket(e.c, &o[18].base, AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 17,
                                  &t[18]),
             0);
    w = sqe_base(IORING_OP_SOCKET, AF_INET6, 0, 17, SOCK_DGRAM | SOCK_CLOEXEC, t[18]);
    EXPECT_SQE("socket", fake_log_find(&e.rec, t[18]), &w, 0);

    CHECK_EQ(ringio_submit_timeout(e.c, &o[19].base, &kts, 0, 0, &t[19]), 0);
    w = sqe_base(IORING_OP_TIMEOUT, 0, (uintptr_t)&kts, 1, 0, t[19]);
    EXPECT_SQE("timeout count 0", fake_log_find(&e.rec, t[19]), &w, DC_FD);

    /* every token distinct, none is the wake token */
    uint64_t copy[N];
    memcpy(copy, t, sizeof(copy));
    CHECK(tokens_distinct(copy, N));
    for (int i = 0; i < N; i++)
        CHECK(t[i] != RINGIO_TOKEN_WAKE);
    /* opcode reported back in events */
    CHECK_EQ(fake_complete(e.fb, t[17], 0, 0), 0);
    CHECK_EQ(fake_complete(e.fb, t[16], -ENOTCONN, 0), 0);
    CHECK_EQ(reap_all(&e), 3); /* + the nop */
    const struct ringio_event *ev = cap_find(e.cap, t[17]);
    CHECK(ev && ev->opcode == IORING_OP_CLOSE);
    ev = cap_find(e.cap, t[16]);
    CHECK(ev && ev->opcode == IORING_OP_SHUTDOWN && ev->res == -ENOTCONN);

    int forced = ringio_core_close(e.c, 1000 * 1000);
    CHECK(forced >= 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ(o[i].released, 1);
    env_done(&e);
    free(o);
}

/* ================================================================== */
/* 9. bad arguments                                                    */
/* ================================================================== */

static void expect_nothing_queued(int line, struct env *e, struct towner *o, unsigned consumed0)
{
    if (ringio_core_inflight(e->c) != 0 || ringio_core_staged(e->c) != 0 ||
        fake_sq_unpublished(e->fb) != 0 || fake_sq_published(e->fb) != 0 ||
        e->rec.consumed != consumed0 || e->rec.bufrings_live != 0 || o->released != 0) {
        fprintf(stderr,
                "%s:%d: [%s] something was queued/leaked: inflight %u staged %u unpublished %u "
                "consumed %u->%u bufrings %u released %u\n",
                __FILE__, line, g_test, ringio_core_inflight(e->c), ringio_core_staged(e->c),
                fake_sq_unpublished(e->fb), consumed0, e->rec.consumed, e->rec.bufrings_live,
                o->released);
        g_failures++;
        g_test_failures++;
    }
}

static void test_bad_args(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    struct towner o;
    towner_init(&o);
    uint64_t tok = 0x5555;
    static char buf[16];
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    struct __kernel_timespec kts = {0, 1};
    unsigned c0 = e.rec.consumed;
    struct ringio_core *c = e.c;

#define BAD(call)                                                                             \
    do {                                                                                      \
        int r_ = (call);                                                                      \
        if (r_ != -EINVAL) {                                                                  \
            fprintf(stderr, "%s:%d: [%s] %s returned %d, want -EINVAL\n", __FILE__, __LINE__, \
                    g_test, #call, r_);                                                       \
            g_failures++;                                                                     \
            g_test_failures++;                                                                \
        }                                                                                     \
        expect_nothing_queued(__LINE__, &e, &o, c0);                                          \
    } while (0)

    /* NULL owner */
    BAD(ringio_submit_nop(c, NULL, &tok));
    BAD(ringio_submit_timeout(c, NULL, &kts, 0, 0, &tok));
    BAD(ringio_submit_cancel(c, NULL, 1, 0, &tok));
    BAD(ringio_submit_poll(c, NULL, 5, POLLIN, false, 0, &tok));
    BAD(ringio_submit_recv(c, NULL, 5, buf, sizeof(buf), 0, &tok));
    BAD(ringio_submit_recv_multishot(c, NULL, 5, 64, 8, 0, 0, &tok));
    BAD(ringio_submit_send(c, NULL, 5, buf, sizeof(buf), 0, &tok));
    BAD(ringio_submit_send_zc(c, NULL, 5, buf, sizeof(buf), 0, 0, &tok));
    BAD(ringio_submit_recvmsg(c, NULL, 5, &msg, 0, &tok));
    BAD(ringio_submit_sendmsg(c, NULL, 5, &msg, 0, &tok));
    BAD(ringio_submit_sendmsg_zc(c, NULL, 5, &msg, 0, 0, &tok));
    BAD(ringio_submit_accept(c, NULL, 5, NULL, NULL, 0, &tok));
    BAD(ringio_submit_accept_multishot(c, NULL, 5, 0, 0, &tok));
    BAD(ringio_submit_connect(c, NULL, 5, (struct sockaddr *)&sin, sizeof(sin), &tok));
    BAD(ringio_submit_shutdown(c, NULL, 5, SHUT_RD, &tok));
    BAD(ringio_submit_close(c, NULL, 5, &tok));
    BAD(ringio_submit_socket(c, NULL, AF_INET, SOCK_STREAM, 0, &tok));
    /* NULL token */
    BAD(ringio_submit_nop(c, &o.base, NULL));
    BAD(ringio_submit_timeout(c, &o.base, &kts, 0, 0, NULL));
    BAD(ringio_submit_cancel(c, &o.base, 1, 0, NULL));
    BAD(ringio_submit_poll(c, &o.base, 5, POLLIN, false, 0, NULL));
    BAD(ringio_submit_recv(c, &o.base, 5, buf, sizeof(buf), 0, NULL));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, 64, 8, 0, 0, NULL));
    BAD(ringio_submit_send(c, &o.base, 5, buf, sizeof(buf), 0, NULL));
    BAD(ringio_submit_send_zc(c, &o.base, 5, buf, sizeof(buf), 0, 0, NULL));
    BAD(ringio_submit_recvmsg(c, &o.base, 5, &msg, 0, NULL));
    BAD(ringio_submit_sendmsg(c, &o.base, 5, &msg, 0, NULL));
    BAD(ringio_submit_sendmsg_zc(c, &o.base, 5, &msg, 0, 0, NULL));
    BAD(ringio_submit_accept(c, &o.base, 5, NULL, NULL, 0, NULL));
    BAD(ringio_submit_accept_multishot(c, &o.base, 5, 0, 0, NULL));
    BAD(ringio_submit_connect(c, &o.base, 5, (struct sockaddr *)&sin, sizeof(sin), NULL));
    BAD(ringio_submit_shutdown(c, &o.base, 5, SHUT_RD, NULL));
    BAD(ringio_submit_close(c, &o.base, 5, NULL));
    BAD(ringio_submit_socket(c, &o.base, AF_INET, SOCK_STREAM, 0, NULL));
    /* provided-buffer geometry */
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, 64, 0, 0, 0, &tok));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, 64, 3, 0, 0, &tok));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, 64, 12, 0, 0, &tok));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, 64, 65536, 0, 0, &tok));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, 64, 32769, 0, 0, &tok));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, 0, 8, 0, 0, &tok));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, UINT_MAX, 8, 0, 0, &tok));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, 0x80000000u, 1, 0, 0, &tok));
    BAD(ringio_submit_recv_multishot(c, &o.base, 5, UINT_MAX, 32768, 0, 0, &tok));
#undef BAD
    {
        /* huge total: -EINVAL or -ENOMEM, but never a half-built ring */
        int r = ringio_submit_recv_multishot(c, &o.base, 5, 1u << 30, 32768, 0, 0, &tok);
        CHECK(r == -EINVAL || r == -ENOMEM);
        expect_nothing_queued(__LINE__, &e, &o, c0);
    }
    CHECK_EQ(tok, 0x5555); /* untouched on failure */

    /* core-level arguments */
    CHECK_EQ(ringio_core_reap(c, 16, NULL, NULL), -EINVAL);
    {
        struct ringio_core *nc = (struct ringio_core *)0x1;
        CHECK_EQ(ringio_core_new(NULL, &nc), -EINVAL);
        CHECK(nc == (struct ringio_core *)0x1);
    }

    /* the backend refuses the buffer ring */
    e.fb->register_error = -ENOMEM;
    CHECK_EQ(ringio_submit_recv_multishot(c, &o.base, 5, 64, 8, 0, 0, &tok), -ENOMEM);
    expect_nothing_queued(__LINE__, &e, &o, c0);
    e.fb->register_error = 0;
    CHECK_EQ(e.rec.bufrings_registered, e.rec.bufrings_unregistered);

    /* a valid edge: the largest ring the kernel accepts, tiny buffers */
    CHECK_EQ(ringio_submit_recv_multishot(c, &o.base, 5, 1, 32768, 0, 0, &tok), 0);
    CHECK_EQ(e.rec.bufrings_live, 1);
    CHECK_EQ(fake_complete(e.fb, tok, -ENOBUFS, 0), 0);
    CHECK_EQ(reap_all(&e), 1);
    CHECK_EQ(o.released, 1);
    CHECK_EQ(e.rec.bufrings_live, 0);
    CHECK_EQ(stats_of(c).stale_cqes, 0);
    env_done(&e);
}

/* ================================================================== */
/* extra: wait protocol                                                */
/* ================================================================== */

static void test_wait(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    ringio_core_set_mode(e.c, RINGIO_SUBMIT_BATCH);
    struct towner o[4];
    uint64_t t[4];
    for (int i = 0; i < 3; i++) {
        towner_init(&o[i]);
        CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
    }
    CHECK_EQ(e.rec.consumed, 0);
    CHECK(!ringio_core_ready(e.c));
    unsigned to_submit = ringio_core_wait_prepare(e.c);
    CHECK_EQ(to_submit, 3);
    /* a submission while a waiter is registered goes to the kernel at once */
    towner_init(&o[3]);
    CHECK_EQ(ringio_submit_nop(e.c, &o[3].base, &t[3]), 0);
    CHECK_EQ(ringio_core_staged(e.c), 0);
    CHECK_EQ(ringio_core_wait_block(e.c, to_submit, 1, 0), 0);
    ringio_core_wait_finish(e.c);
    CHECK(ringio_core_ready(e.c));
    CHECK_EQ(reap_all(&e), 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(o[i].released, 1);
    CHECK_EQ(ringio_core_inflight(e.c), 0);

    /* nothing to wait for: -ETIME from the backend, no hang */
    to_submit = ringio_core_wait_prepare(e.c);
    CHECK_EQ(to_submit, 0);
    CHECK_EQ(ringio_core_wait_block(e.c, to_submit, 1, 1000), -ETIME);
    ringio_core_wait_finish(e.c);
    CHECK(!ringio_core_ready(e.c));

    /* a pending CQE in the overflow backlog counts as ready */
    e.fb->auto_nop = false;
    ringio_core_set_mode(e.c, RINGIO_SUBMIT_NOW);
    struct towner p[40];
    uint64_t tp[40];
    for (int i = 0; i < 40; i++) {
        towner_init(&p[i]);
        CHECK_EQ(ringio_submit_nop(e.c, &p[i].base, &tp[i]), 0);
    }
    for (int i = 0; i < 40; i++)
        CHECK_EQ(fake_complete(e.fb, tp[i], 0, 0), 0);
    CHECK(fake_cq_backlog(e.fb) > 0);
    CHECK(ringio_core_ready(e.c));
    CHECK_EQ(reap_all(&e), 40);
    for (int i = 0; i < 40; i++)
        CHECK_EQ(p[i].released, 1);
    env_done(&e);
}

/* ================================================================== */
/* files and linked chains                                             */
/* ================================================================== */

static void test_link_chain(void)
{
    /* NOW mode: the chain waits in the core until link_end, then goes in
     * one enter, contiguous, LINK on all but the last. */
    {
        struct env e;
        REQUIRE(env_open(&e, 8, 16) == 0);
        struct towner o[3];
        uint64_t t[3] = {0};
        for (int i = 0; i < 3; i++)
            towner_init(&o[i]);
        CHECK_EQ(ringio_core_link_begin(e.c, false), 0);
        CHECK_EQ(ringio_core_link_begin(e.c, false), -EBUSY); /* no nesting */
        CHECK(ringio_core_linking(e.c));
        for (int i = 0; i < 3; i++)
            CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
        CHECK_EQ(e.rec.enters, 0);
        CHECK_EQ(fake_sq_unpublished(e.fb), 0);
        CHECK_EQ(ringio_core_link_end(e.c, false), 3);
        CHECK(!ringio_core_linking(e.c));
        CHECK_EQ(e.rec.enters, 1);
        REQUIRE(e.rec.log_len == 3);
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(e.rec.log[i].user_data, t[i]);
            CHECK_EQ(e.rec.log[i].flags & IOSQE_IO_LINK, i < 2 ? IOSQE_IO_LINK : 0);
            CHECK_EQ(e.rec.log[i].flags & IOSQE_IO_HARDLINK, 0);
        }
        CHECK_EQ(reap_all(&e), 3); /* the fake kernel completes NOPs by itself */
        for (int i = 0; i < 3; i++)
            CHECK_EQ(o[i].released, 1);
        /* hard links, and an empty chain */
        CHECK_EQ(ringio_core_link_begin(e.c, true), 0);
        CHECK_EQ(ringio_submit_nop(e.c, &o[0].base, &t[0]), 0);
        CHECK_EQ(ringio_submit_nop(e.c, &o[1].base, &t[1]), 0);
        CHECK_EQ(ringio_core_link_end(e.c, false), 2);
        REQUIRE(e.rec.log_len == 5);
        CHECK_EQ(e.rec.log[3].flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK), IOSQE_IO_HARDLINK);
        CHECK_EQ(e.rec.log[4].flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK), 0);
        CHECK_EQ(ringio_core_link_begin(e.c, false), 0);
        CHECK_EQ(ringio_core_link_end(e.c, false), 0);
        CHECK_EQ(ringio_core_link_end(e.c, false), -EINVAL); /* not linking */
        env_done(&e);
        CHECK_EQ(o[0].released, 2);
        CHECK_EQ(o[1].released, 2);
    }
    /* Longer than the SQ: the op past sq_entries is refused; an aborted chain
     * reaches nobody and completes -ECANCELED, each owner released once. */
    {
        struct env e;
        REQUIRE(env_open(&e, 4, 16) == 0);
        struct towner o[5];
        uint64_t t[5] = {0};
        for (int i = 0; i < 5; i++)
            towner_init(&o[i]);
        CHECK_EQ(ringio_core_link_begin(e.c, false), 0);
        for (int i = 0; i < 4; i++)
            CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
        CHECK_EQ(ringio_submit_nop(e.c, &o[4].base, &t[4]), -EBUSY);
        CHECK_EQ(o[4].released, 0);
        CHECK_EQ(ringio_core_link_end(e.c, true), 0);
        CHECK_EQ(e.rec.enters, 0);
        CHECK_EQ(e.rec.log_len, 0);
        CHECK_EQ(reap_all(&e), 4);
        for (int i = 0; i < 4; i++) {
            const struct ringio_event *ev = cap_find(e.cap, t[i]);
            REQUIRE(ev != NULL);
            CHECK_EQ(ev->res, -ECANCELED);
            CHECK(ev->final);
            CHECK_EQ(o[i].released, 1);
        }
        env_done(&e);
    }
    /* Strict batch with too little room: the chain fails whole (-EBUSY),
     * the staged work before it is untouched. */
    {
        struct env e;
        REQUIRE(env_open(&e, 4, 16) == 0);
        ringio_core_set_mode(e.c, RINGIO_SUBMIT_STRICT);
        struct towner o[5];
        uint64_t t[5] = {0};
        for (int i = 0; i < 5; i++)
            towner_init(&o[i]);
        for (int i = 0; i < 3; i++)
            CHECK_EQ(ringio_submit_nop(e.c, &o[i].base, &t[i]), 0);
        CHECK_EQ(ringio_core_link_begin(e.c, false), 0);
        CHECK_EQ(ringio_submit_nop(e.c, &o[3].base, &t[3]), 0);
        CHECK_EQ(ringio_submit_nop(e.c, &o[4].base, &t[4]), 0);
        CHECK_EQ(ringio_core_link_end(e.c, false), -EBUSY);
        CHECK_EQ(ringio_core_submit(e.c), 3);
        CHECK_EQ(reap_all(&e), 5);
        CHECK_EQ(cap_find(e.cap, t[3])->res, -ECANCELED);
        CHECK_EQ(cap_find(e.cap, t[4])->res, -ECANCELED);
        CHECK_EQ(cap_find(e.cap, t[0])->res, 0);
        for (int i = 0; i < 5; i++)
            CHECK_EQ(o[i].released, 1);
        env_done(&e);
    }
    /* Close with a chain open: its owners are released exactly once. */
    {
        struct env e;
        REQUIRE(env_open(&e, 4, 16) == 0);
        struct towner o;
        uint64_t t = 0;
        towner_init(&o);
        CHECK_EQ(ringio_core_link_begin(e.c, false), 0);
        CHECK_EQ(ringio_submit_nop(e.c, &o.base, &t), 0);
        ringio_core_close(e.c, 0);
        CHECK_EQ(o.released, 1);
        env_done(&e);
        CHECK_EQ(o.released, 1);
    }
}

static void test_file_sqes(void)
{
    struct env e;
    REQUIRE(env_open(&e, 32, 64) == 0);
    struct towner o[12];
    uint64_t t[12] = {0};
    for (int i = 0; i < 12; i++)
        towner_init(&o[i]);
    char buf[64];
    struct iovec iov[2] = {{buf, 8}, {buf + 8, 8}};
    char stx[256];
    CHECK_EQ(ringio_submit_openat(e.c, &o[0].base, AT_FDCWD, "p", O_RDONLY, 0644, 3, &t[0]), 0);
    CHECK_EQ(ringio_submit_read(e.c, &o[1].base, 2, buf, 64, RINGIO_OFFSET_CURRENT,
                                RINGIO_OPT_FIXED_FILE, &t[1]), 0);
    CHECK_EQ(ringio_submit_write_fixed(e.c, &o[2].base, 5, buf, 16, 4096, 7, 0, &t[2]), 0);
    CHECK_EQ(ringio_submit_readv(e.c, &o[3].base, 5, iov, 2, 100, 0, &t[3]), 0);
    CHECK_EQ(ringio_submit_fsync(e.c, &o[4].base, 5, IORING_FSYNC_DATASYNC, 0, &t[4]), 0);
    CHECK_EQ(ringio_submit_fallocate(e.c, &o[5].base, 5, 1, 10, 20, 0, &t[5]), 0);
    CHECK_EQ(ringio_submit_statx(e.c, &o[6].base, 9, "s", AT_EMPTY_PATH, 0x7ff,
                                 (struct statx *)(void *)stx, &t[6]), 0);
    CHECK_EQ(ringio_submit_close_direct(e.c, &o[7].base, 3, &t[7]), 0);
    CHECK_EQ(ringio_submit_renameat(e.c, &o[8].base, 4, "a", 6, "b", 1, &t[8]), 0);
    CHECK_EQ(ringio_submit_unlinkat(e.c, &o[9].base, AT_FDCWD, "u", AT_REMOVEDIR, &t[9]), 0);
    CHECK_EQ(ringio_submit_mkdirat(e.c, &o[10].base, AT_FDCWD, "m", 0755, &t[10]), 0);
    CHECK_EQ(ringio_submit_openat(e.c, &o[11].base, AT_FDCWD, "q", O_RDONLY, 0,
                                  IORING_FILE_INDEX_ALLOC, &t[11]), 0);
    const struct io_uring_sqe *s;
    s = fake_log_find(&e.rec, t[0]);
    REQUIRE(s != NULL);
    CHECK_EQ(s->opcode, IORING_OP_OPENAT);
    CHECK_EQ(s->fd, AT_FDCWD);
    CHECK_EQ(s->len, 0644);
    CHECK_EQ(s->open_flags, (unsigned)O_RDONLY);
    CHECK_EQ(s->file_index, 3);
    s = fake_log_find(&e.rec, t[1]);
    CHECK_EQ(s->opcode, IORING_OP_READ);
    CHECK_EQ(s->off, UINT64_MAX);
    CHECK_EQ(s->flags & IOSQE_FIXED_FILE, IOSQE_FIXED_FILE);
    CHECK_EQ(s->fd, 2);
    s = fake_log_find(&e.rec, t[2]);
    CHECK_EQ(s->opcode, IORING_OP_WRITE_FIXED);
    CHECK_EQ(s->buf_index, 7);
    CHECK_EQ(s->off, 4096);
    CHECK_EQ(s->len, 16);
    s = fake_log_find(&e.rec, t[3]);
    CHECK_EQ(s->opcode, IORING_OP_READV);
    CHECK_EQ(s->addr, (uint64_t)(uintptr_t)iov);
    CHECK_EQ(s->len, 2);
    CHECK_EQ(s->off, 100);
    s = fake_log_find(&e.rec, t[4]);
    CHECK_EQ(s->opcode, IORING_OP_FSYNC);
    CHECK_EQ(s->fsync_flags, IORING_FSYNC_DATASYNC);
    s = fake_log_find(&e.rec, t[5]);
    CHECK_EQ(s->opcode, IORING_OP_FALLOCATE);
    CHECK_EQ(s->len, 1);
    CHECK_EQ(s->off, 10);
    CHECK_EQ(s->addr, 20);
    s = fake_log_find(&e.rec, t[6]);
    CHECK_EQ(s->opcode, IORING_OP_STATX);
    CHECK_EQ(s->fd, 9);
    CHECK_EQ(s->len, 0x7ff);
    CHECK_EQ(s->off, (uint64_t)(uintptr_t)stx);
    CHECK_EQ(s->statx_flags, (unsigned)AT_EMPTY_PATH);
    s = fake_log_find(&e.rec, t[7]);
    CHECK_EQ(s->opcode, IORING_OP_CLOSE);
    CHECK_EQ(s->fd, 0);
    CHECK_EQ(s->file_index, 4);
    s = fake_log_find(&e.rec, t[8]);
    CHECK_EQ(s->opcode, IORING_OP_RENAMEAT);
    CHECK_EQ(s->fd, 4);
    CHECK_EQ(s->len, 6);
    CHECK_EQ(s->rename_flags, 1);
    s = fake_log_find(&e.rec, t[9]);
    CHECK_EQ(s->opcode, IORING_OP_UNLINKAT);
    CHECK_EQ(s->unlink_flags, (unsigned)AT_REMOVEDIR);
    s = fake_log_find(&e.rec, t[10]);
    CHECK_EQ(s->opcode, IORING_OP_MKDIRAT);
    CHECK_EQ(s->len, 0755);
    s = fake_log_find(&e.rec, t[11]);
    CHECK_EQ(s->file_index, IORING_FILE_INDEX_ALLOC);
    /* bad arguments leave nothing behind */
    struct towner x;
    towner_init(&x);
    uint64_t tx;
    CHECK_EQ(ringio_submit_read(e.c, &x.base, -1, buf, 1, 0, 0, &tx), -EBADF);
    CHECK_EQ(ringio_submit_read(e.c, &x.base, 1, buf, 1, 0, 0x80, &tx), -EINVAL);
    CHECK_EQ(ringio_submit_openat(e.c, &x.base, -5, "p", 0, 0, 0, &tx), -EBADF);
    CHECK_EQ(ringio_submit_fsync(e.c, &x.base, 1, 0x40, 0, &tx), -EINVAL);
    CHECK_EQ(ringio_submit_statx(e.c, &x.base, AT_FDCWD, "s", 0, 0, NULL, &tx), -EINVAL);
    CHECK_EQ(x.released, 0);
    /* registration on a backend without it */
    int fds[1] = {-1};
    int rf = ringio_core_register_files(e.c, fds, 1);
    CHECK(rf == -EOPNOTSUPP || rf == 0);
    env_done(&e);
}

/* An openat completion nobody saw is closed at close, unless it opened into
 * the fixed file table (res is then a slot or 0, never an fd: fd 0 stays). */
static void test_close_openat_fds(void)
{
    struct env e;
    REQUIRE(env_open(&e, 8, 16) == 0);
    struct towner a, d;
    towner_init(&a);
    towner_init(&d);
    uint64_t ta, td;
    CHECK_EQ(ringio_submit_openat(e.c, &a.base, AT_FDCWD, "x", O_RDONLY, 0, 0, &ta), 0);
    CHECK_EQ(ringio_submit_openat(e.c, &d.base, AT_FDCWD, "x", O_RDONLY, 0, 1, &td), 0);
    int fd_a = real_fd();
    int fd_keep = real_fd(); /* what a direct open's res could be mistaken for */
    CHECK_EQ(fake_complete(e.fb, ta, fd_a, 0), 0);
    CHECK_EQ(fake_complete(e.fb, td, fd_keep, 0), 0);
    ringio_core_close(e.c, 0);
    CHECK(fd_is_closed(fd_a));
    CHECK(fd_is_open(fd_keep));
    CHECK_EQ(a.released, 1);
    CHECK_EQ(d.released, 1);
    env_done(&e);
    close(fd_keep);
    if (fd_is_open(fd_a))
        close(fd_a);
}

/* ================================================================== */

struct test {
    const char *name;
    void (*fn)(void);
};

static const struct test tests[] = {
    {"basic_nop", test_basic_nop},
    {"token_reuse", test_token_reuse},
    {"stale_and_wake", test_stale_and_wake},
    {"release_oneshot", test_release_oneshot},
    {"zerocopy", test_zerocopy},
    {"multishot_recv", test_multishot_recv},
    {"multishot_enobufs_first_seq", test_multishot_enobufs_and_first_seq},
    {"multishot_accept_poll", test_multishot_accept_and_poll},
    {"refuse", test_refuse},
    {"refuse_special", test_refuse_special},
    {"sq_full", test_sq_full},
    {"overflow", test_overflow},
    {"overflow_large", test_overflow_large},
    {"fifo_wrap", test_fifo_wrap},
    {"busy_storm", test_busy_storm},
    {"close_inflight", test_close_inflight},
    {"close_sq_stuck", test_close_sq_stuck},
    {"close_fds", test_close_fds},
    {"free_without_close", test_free_without_close},
    {"sqe_contents", test_sqe_contents},
    {"bad_args", test_bad_args},
    {"wait", test_wait},
    {"link_chain", test_link_chain},
    {"file_sqes", test_file_sqes},
    {"close_openat_fds", test_close_openat_fds},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int failed_tests = 0, run = 0;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (argc > 1) {
            bool want = false;
            for (int a = 1; a < argc; a++)
                want |= strcmp(argv[a], tests[i].name) == 0;
            if (!want)
                continue;
        }
        g_test = tests[i].name;
        g_test_failures = 0;
        tests[i].fn();
        run++;
        printf("%s %s\n", g_test_failures ? "FAIL" : "ok  ", tests[i].name);
        failed_tests += g_test_failures != 0;
    }
    printf("%d/%d tests passed, %d failed checks\n", run - failed_tests, run, g_failures);
    return g_failures ? 1 : 0;
}
