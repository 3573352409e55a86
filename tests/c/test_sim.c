/*
 * C-level behaviour of the simulated kernel (backends/sim), driven through
 * the core: determinism of the decision sources, record/replay, overflow
 * backlog ordering, link chains, hold/release, that a connect waiting for a
 * full AF_UNIX backlog sleeps instead of spinning, and poll's POLLRDHUP.
 *
 * Plain main, no framework: CHECK() reports file:line and counts a failure.
 */
#include "ringio/core.h"
#include "ringio/sim.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int g_failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            g_failures++;                                                           \
        }                                                                           \
    } while (0)

struct rec {
    struct ringio_owner o; /* first */
    uint8_t buf[64];
    struct __kernel_timespec ts;
    int fd;
};

static unsigned g_live;

static void rec_release(struct ringio_owner *o)
{
    struct rec *r = (struct rec *)o;
    if (r->fd >= 0)
        close(r->fd);
    free(r);
    g_live--;
}

static struct rec *rec_new(uint64_t tag)
{
    struct rec *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->o.release = rec_release;
    r->o.tag = tag;
    r->fd = -1;
    g_live++;
    return r;
}

/* Events seen by collect(), in delivery order. */
struct seen {
    uint64_t token[64];
    int32_t res[64];
    unsigned n;
};

static int collect(void *ctx, const struct ringio_event *ev)
{
    struct seen *s = ctx;
    if (!ev->wake && s->n < 64) {
        s->token[s->n] = ev->token;
        s->res[s->n] = ev->res;
        s->n++;
    }
    return 0;
}

static struct ringio_core *sim_core(const struct ringio_sim_config *cfg, unsigned sq, unsigned cq)
{
    struct ringio_setup setup = {.entries = sq, .cq_entries = cq,
                                 .flags = cq ? IORING_SETUP_CQSIZE : 0};
    struct ringio_backend *b;
    if (ringio_sim_backend_new(&setup, cfg, &b) < 0)
        return NULL;
    struct ringio_core *c;
    if (ringio_core_new(b, &c) < 0) {
        b->ops->destroy(b);
        return NULL;
    }
    return c;
}

static struct ringio_backend *backend_of(struct ringio_core *c)
{
    return (struct ringio_backend *)ringio_core_backend(c);
}

static void wait_reap(struct ringio_core *c, struct seen *s, int64_t timeout_ns)
{
    unsigned n = ringio_core_wait_prepare(c);
    (void)ringio_core_wait_block(c, n, 1, timeout_ns);
    ringio_core_wait_finish(c);
    (void)ringio_core_reap(c, UINT32_MAX, collect, s);
}

/* A program whose completion order the sim decides: send/recv, nops, timers. */
static void run_program(const struct ringio_sim_config *cfg, struct ringio_sim_info *info,
                        uint8_t **trace, size_t *trace_len)
{
    struct ringio_core *c = sim_core(cfg, 8, 0);
    CHECK(c);
    if (!c)
        return;
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    uint64_t tok;
    struct seen s = {0};
    for (int i = 0; i < 4; i++) {
        struct rec *r = rec_new(1);
        CHECK(ringio_submit_nop(c, &r->o, &tok) == 0);
        r = rec_new(2);
        r->ts.tv_nsec = 1000 * (i + 1);
        CHECK(ringio_submit_timeout(c, &r->o, &r->ts, 0, 0, &tok) == 0);
        r = rec_new(3);
        CHECK(ringio_submit_recv(c, &r->o, sp[1], r->buf, 7, 0, &tok) == 0);
        r = rec_new(4);
        memset(r->buf, 'a' + i, sizeof(r->buf));
        CHECK(ringio_submit_send(c, &r->o, sp[0], r->buf, 5, MSG_NOSIGNAL, &tok) == 0);
    }
    for (int i = 0; i < 8 && g_live; i++)
        wait_reap(c, &s, 0);
    CHECK(ringio_sim_info(backend_of(c), info) == 0);
    if (trace) {
        const uint8_t *t;
        CHECK(ringio_sim_trace(backend_of(c), &t, trace_len) == 0);
        *trace = malloc(*trace_len);
        memcpy(*trace, t, *trace_len);
    }
    ringio_core_close(c, 0);
    ringio_core_free(c);
    CHECK(g_live == 0);
    close(sp[0]);
    close(sp[1]);
}

static void test_determinism_and_replay(void)
{
    /* Short transfers switched on, so the run is full of decisions. */
    static struct ringio_sim_faults faults;
    for (unsigned f = RINGIO_SIM_SHORT_READ; f <= RINGIO_SIM_SHORT_WRITE; f++)
        faults.site[f] = (struct ringio_sim_site){.enable = 1000, .fire = 500};
    struct ringio_sim_config cfg = {.source = RINGIO_SIM_SOURCE_SEED, .seed = 42, .record = 1,
                                    .faults = &faults};
    struct ringio_sim_info a, b, r;
    uint8_t *trace = NULL;
    size_t n = 0;
    run_program(&cfg, &a, &trace, &n);
    cfg.record = 0;
    run_program(&cfg, &b, NULL, NULL);
    CHECK(a.decisions > 0);
    CHECK(a.decision_hash == b.decision_hash && a.cqe_hash == b.cqe_hash);

    struct ringio_sim_config rc = {.source = RINGIO_SIM_SOURCE_REPLAY, .bytes = trace, .nbytes = n,
                                   .faults = &faults};
    run_program(&rc, &r, NULL, NULL);
    CHECK(!r.replay_diverged);
    CHECK(r.decision_hash == a.decision_hash && r.cqe_hash == a.cqe_hash);
    free(trace);

    /* Bytes source: the same stream twice gives the same run. */
    static const uint8_t bytes[] = {7, 1, 200, 3, 9, 0, 255, 4, 4, 4, 1, 2, 3};
    struct ringio_sim_config bc = {.source = RINGIO_SIM_SOURCE_BYTES, .bytes = bytes,
                                   .nbytes = sizeof(bytes), .faults = &faults};
    run_program(&bc, &a, NULL, NULL);
    run_program(&bc, &b, NULL, NULL);
    CHECK(a.decision_hash == b.decision_hash && a.cqe_hash == b.cqe_hash);

    /* A trace that is not one is refused. */
    static const uint8_t bad[] = {'R', 'S', 'I', 'X', 1, 0, 0, 0, 0, 0, 0, 0, 0};
    struct ringio_setup setup = {.entries = 4};
    struct ringio_backend *be;
    struct ringio_sim_config badc = {.source = RINGIO_SIM_SOURCE_REPLAY, .bytes = bad,
                                     .nbytes = sizeof(bad)};
    CHECK(ringio_sim_backend_new(&setup, &badc, &be) == -EINVAL);
}

/* CQ of 2 entries, 12 nops: the overflow backlog hands them over in order. */
static void test_overflow_order(void)
{
    struct ringio_sim_config cfg = {.source = RINGIO_SIM_SOURCE_SEED, .seed = 7};
    struct ringio_core *c = sim_core(&cfg, 2, 2);
    CHECK(c);
    if (!c)
        return;
    uint64_t tokens[12];
    for (int i = 0; i < 12; i++) {
        struct rec *r = rec_new(10 + (uint64_t)i);
        CHECK(ringio_submit_nop(c, &r->o, &tokens[i]) == 0);
    }
    struct seen s = {0};
    for (int i = 0; i < 8 && s.n < 12; i++)
        wait_reap(c, &s, 0);
    CHECK(s.n == 12);
    for (unsigned i = 0; i < s.n && i < 12; i++)
        CHECK(s.token[i] == tokens[i]);
    struct ringio_sim_info info;
    CHECK(ringio_sim_info(backend_of(c), &info) == 0);
    CHECK(info.overflowed > 0);
    ringio_core_close(c, 0);
    ringio_core_free(c);
    CHECK(g_live == 0);
}

/* A failing link cancels the rest of its chain; a hold keeps a CQE back. */
static void test_link_and_hold(void)
{
    struct ringio_sim_config cfg = {.source = RINGIO_SIM_SOURCE_SEED, .seed = 3};
    struct ringio_core *c = sim_core(&cfg, 8, 0);
    CHECK(c);
    if (!c)
        return;
    struct ringio_backend *b = backend_of(c);
    CHECK(ringio_sim_force(b, 100, -EIO) == 0);
    uint64_t t1, t2, t3;
    CHECK(ringio_core_link_begin(c, false) == 0);
    struct rec *r = rec_new(100);
    CHECK(ringio_submit_nop(c, &r->o, &t1) == 0);
    r = rec_new(101);
    CHECK(ringio_submit_nop(c, &r->o, &t2) == 0);
    CHECK(ringio_core_link_end(c, false) == 2);
    CHECK(ringio_sim_hold(b, 102, 0) == 0);
    r = rec_new(102);
    CHECK(ringio_submit_nop(c, &r->o, &t3) == 0);
    struct seen s = {0};
    for (int i = 0; i < 4; i++)
        wait_reap(c, &s, 0);
    CHECK(s.n == 2);
    for (unsigned i = 0; i < s.n; i++) {
        if (s.token[i] == t1)
            CHECK(s.res[i] == -EIO);
        else
            CHECK(s.token[i] == t2 && s.res[i] == -ECANCELED);
    }
    CHECK(ringio_sim_release(b, 102) == 1);
    wait_reap(c, &s, 0);
    CHECK(s.n == 3 && s.token[2] == t3 && s.res[2] == 0);
    ringio_core_close(c, 0);
    ringio_core_free(c);
    CHECK(g_live == 0);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Connects to a listener whose backlog is full wait without burning CPU
 * (the sim used to retry on POLLOUT, which an unconnected socket always has). */
static void test_connect_backlog_sleeps(void)
{
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int len = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "ringio-test-sim-%d", (int)getpid());
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, alen) == 0 && listen(lfd, 0) == 0);
    struct ringio_sim_config cfg = {.source = RINGIO_SIM_SOURCE_SEED, .seed = 1};
    struct ringio_core *c = sim_core(&cfg, 8, 0);
    CHECK(c);
    if (!c)
        return;
    static struct sockaddr_un addr;
    addr = a;
    for (int i = 0; i < 6; i++) {
        struct rec *r = rec_new(200);
        r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        uint64_t tok;
        CHECK(ringio_submit_connect(c, &r->o, r->fd, (struct sockaddr *)&addr, alen, &tok) == 0);
    }
    /* A pending recv keeps the sim sleeping in poll() for real time. */
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    struct rec *r = rec_new(201);
    uint64_t tok;
    CHECK(ringio_submit_recv(c, &r->o, sp[0], r->buf, 8, 0, &tok) == 0);
    struct seen s = {0};
    double cpu0 = cpu_seconds();
    for (int i = 0; i < 10; i++)
        wait_reap(c, &s, 20 * 1000 * 1000);
    double used = cpu_seconds() - cpu0;
    CHECK(used < 0.1); /* 200 ms of waiting; spinning used all of it */
    if (used >= 0.1)
        fprintf(stderr, "  connect wait used %.3f s of CPU\n", used);
    ringio_core_close(c, 0);
    ringio_core_free(c);
    CHECK(g_live == 0);
    close(sp[0]);
    close(sp[1]);
    close(lfd);
}

/* The kernel's poll reports POLLRDHUP whatever was asked (IO_POLL_UNMASK). */
static void test_poll_rdhup(void)
{
    struct ringio_sim_config cfg = {.source = RINGIO_SIM_SOURCE_SEED, .seed = 5};
    struct ringio_core *c = sim_core(&cfg, 4, 0);
    CHECK(c);
    if (!c)
        return;
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    CHECK(shutdown(sp[1], SHUT_WR) == 0);
    struct rec *r = rec_new(300);
    uint64_t tok;
    CHECK(ringio_submit_poll(c, &r->o, sp[0], POLLIN, false, 0, &tok) == 0);
    struct seen s = {0};
    wait_reap(c, &s, 0);
    CHECK(s.n == 1 && s.res[0] == (POLLIN | POLLRDHUP));
    ringio_core_close(c, 0);
    ringio_core_free(c);
    CHECK(g_live == 0);
    close(sp[0]);
    close(sp[1]);
}

int main(void)
{
    test_determinism_and_replay();
    test_overflow_order();
    test_link_and_hold();
    test_connect_backlog_sleeps();
    test_poll_rdhup();
    if (g_failures) {
        fprintf(stderr, "test_sim: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test_sim: ok\n");
    return 0;
}
