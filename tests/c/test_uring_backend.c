/*
 * The uring backend against the real kernel, through the backend contract
 * only (liburing is used just for its SQE prep helpers).
 *
 * Exit status: 0 pass, 1 fail, 77 skip (io_uring unavailable: EPERM/ENOSYS).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

/* <liburing.h> before "ringio/backend.h": both headers' io_uring uapi copies
 * share one include guard, and liburing needs its own (see compat.h). */
#include <liburing.h>

#include "ringio/backend.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SKIP 77
#define MS 1000000LL

/* On failure: report, mark the test failed and jump to its cleanup. */
#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__,       \
                    __func__, #cond);                                                  \
            rc = 1;                                                                    \
            goto out;                                                                  \
        }                                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                            \
        if (a_ != b_) {                                                                \
            fprintf(stderr, "%s:%d: %s: %s == %lld, expected %s == %lld\n", __FILE__,  \
                    __LINE__, __func__, #a, a_, #b, b_);                               \
            rc = 1;                                                                    \
            goto out;                                                                  \
        }                                                                              \
    } while (0)

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* True when no page of [p, p+len) is mapped any more. */
static int unmapped(void *p, size_t len)
{
    unsigned char vec[64];
    long page = sysconf(_SC_PAGESIZE);

    for (size_t off = 0; off < len; off += (size_t)page * 64) {
        size_t chunk = len - off < (size_t)page * 64 ? len - off : (size_t)page * 64;
        if (mincore((char *)p + off, chunk, vec) == 0 || errno != ENOMEM)
            return 0;
    }
    return 1;
}

static int new_ring(unsigned entries, unsigned cq_entries, unsigned flags,
                    struct ringio_backend **b)
{
    struct ringio_setup s = {.entries = entries, .cq_entries = cq_entries, .flags = flags};

    return ringio_uring_backend_new(&s, b);
}

static void destroy(struct ringio_backend *b)
{
    if (b)
        b->ops->destroy(b);
}

/* Prepare a NOP with user_data ud; 0 when the SQ is full. */
static int queue_nop(struct ringio_backend *b, uint64_t ud)
{
    struct io_uring_sqe *sqe = b->ops->get_sqe(b);

    if (!sqe)
        return 0;
    io_uring_prep_nop(sqe);
    sqe->user_data = ud;
    return 1;
}

/* ---- tests ------------------------------------------------------------ */

static int test_setup(void)
{
    struct ringio_backend *b = NULL;
    int rc = 0;

    CHECK_EQ(new_ring(8, 0, 0, &b), 0);
    CHECK(b != NULL && b->ops != NULL);
    CHECK(strcmp(b->ops->name, "uring") == 0);
    CHECK(b->fd >= 0);
    CHECK_EQ(b->sq_entries, 8);
    CHECK_EQ(b->cq_entries, 16);
    CHECK(!(b->setup_flags & (IORING_SETUP_SQE128 | IORING_SETUP_CQE32)));
    CHECK(b->features & IORING_FEAT_SINGLE_MMAP);
    CHECK_EQ(b->ops->sq_space_left(b), 8);
    CHECK_EQ(b->ops->flush(b), 0);
    CHECK(!b->ops->cq_overflow_pending(b));
    /* Sizes round up to powers of two. */
    destroy(b);
    b = NULL;
    CHECK_EQ(new_ring(5, 9, 0, &b), 0);
    CHECK_EQ(b->sq_entries, 8);
    CHECK_EQ(b->cq_entries, 16);
    CHECK(b->setup_flags & IORING_SETUP_CQSIZE);
    CHECK(strncmp(ringio_uring_backend_version(), "liburing ", 9) == 0);
out:
    destroy(b);
    return rc;
}

static int test_nop_round_trip(void)
{
    struct ringio_backend *b = NULL;
    struct io_uring_cqe *cqes[16];
    int rc = 0;

    CHECK_EQ(new_ring(8, 0, 0, &b), 0);

    /* One NOP: prepared, published (twice: idempotent), submitted, reaped. */
    CHECK(queue_nop(b, 0x1234));
    CHECK_EQ(b->ops->sq_space_left(b), 7);
    CHECK_EQ(b->ops->peek_cqes(b, cqes, 16), 0);
    CHECK_EQ(b->ops->flush(b), 1);
    CHECK_EQ(b->ops->flush(b), 1);
    CHECK_EQ(b->ops->enter(b, 1, 1, -1, RINGIO_ENTER_GETEVENTS), 1);
    CHECK_EQ(b->ops->flush(b), 0);
    CHECK_EQ(b->ops->sq_space_left(b), 8);
    CHECK_EQ(b->ops->peek_cqes(b, cqes, 16), 1);
    CHECK_EQ(cqes[0]->user_data, 0x1234);
    CHECK_EQ(cqes[0]->res, 0);
    b->ops->advance(b, 1);
    CHECK_EQ(b->ops->peek_cqes(b, cqes, 16), 0);

    /* A full SQ: get_sqe returns NULL, one enter takes all, peek honours max
     * and returns CQEs oldest first. */
    unsigned n = 0;
    while (queue_nop(b, 100 + n))
        n++;
    CHECK_EQ(n, b->sq_entries);
    CHECK_EQ(b->ops->sq_space_left(b), 0);
    CHECK_EQ(b->ops->flush(b), n);
    /* Submit without waiting, then wait for all of them. */
    CHECK_EQ(b->ops->enter(b, n, 0, -1, 0), (int)n);
    CHECK_EQ(b->ops->enter(b, 0, n, 1000 * MS, RINGIO_ENTER_GETEVENTS), 0);
    unsigned seen = 0;
    for (int rounds = 0; seen < n && rounds < 16; rounds++) {
        unsigned got = b->ops->peek_cqes(b, cqes, 3);
        CHECK(got <= 3);
        for (unsigned i = 0; i < got; i++)
            CHECK_EQ(cqes[i]->user_data, 100 + seen + i);
        b->ops->advance(b, got);
        seen += got;
    }
    CHECK_EQ(seen, n);
    CHECK_EQ(b->ops->peek_cqes(b, cqes, 16), 0);
    /* Nothing to do: a bare enter is harmless. */
    CHECK_EQ(b->ops->enter(b, 0, 0, -1, 0), 0);
out:
    destroy(b);
    return rc;
}

/* enter() with a timeout, on the EXT_ARG path or (ext_arg false) on the
 * ppoll fallback used by kernels older than 5.11. */
static int check_enter_timeout(bool ext_arg)
{
    struct ringio_backend *b = NULL;
    struct io_uring_cqe *cqes[4];
    int rc = 0;

    CHECK_EQ(new_ring(4, 0, 0, &b), 0);
    if (!ext_arg)
        b->features &= ~IORING_FEAT_EXT_ARG;
    else if (!(b->features & IORING_FEAT_EXT_ARG)) {
        fprintf(stderr, "note: kernel lacks IORING_FEAT_EXT_ARG, testing fallback only\n");
        goto out;
    }

    /* Nothing pending: -ETIME after about the timeout. */
    int64_t t0 = now_ns();
    CHECK_EQ(b->ops->enter(b, 0, 1, 50 * MS, RINGIO_ENTER_GETEVENTS), -ETIME);
    int64_t dt = now_ns() - t0;
    CHECK(dt >= 45 * MS && dt < 1500 * MS);

    /* Zero timeout: a poll. */
    t0 = now_ns();
    CHECK_EQ(b->ops->enter(b, 0, 1, 0, RINGIO_ENTER_GETEVENTS), -ETIME);
    CHECK(now_ns() - t0 < 200 * MS);

    /* min_complete == 0 never waits. */
    CHECK_EQ(b->ops->enter(b, 0, 0, 1000 * MS, RINGIO_ENTER_GETEVENTS), 0);

    /* A completion that arrives within the timeout ends the wait early: a
     * 20 ms kernel timeout, waited for with a 5 s bound.  The return value
     * is the number of SQEs consumed (1). */
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 20 * MS};
    struct io_uring_sqe *sqe = b->ops->get_sqe(b);
    CHECK(sqe != NULL);
    io_uring_prep_timeout(sqe, &ts, 0, 0);
    sqe->user_data = 7;
    CHECK_EQ(b->ops->flush(b), 1);
    t0 = now_ns();
    CHECK_EQ(b->ops->enter(b, 1, 1, 5000 * MS, RINGIO_ENTER_GETEVENTS), 1);
    dt = now_ns() - t0;
    CHECK(dt >= 15 * MS && dt < 2000 * MS);
    CHECK_EQ(b->ops->peek_cqes(b, cqes, 4), 1);
    CHECK_EQ(cqes[0]->user_data, 7);
    CHECK_EQ(cqes[0]->res, -ETIME);
    b->ops->advance(b, 1);

    /* A ready CQE: the wait returns at once. */
    CHECK(queue_nop(b, 8));
    CHECK_EQ(b->ops->flush(b), 1);
    CHECK_EQ(b->ops->enter(b, 1, 0, -1, 0), 1);
    t0 = now_ns();
    CHECK_EQ(b->ops->enter(b, 0, 1, 5000 * MS, RINGIO_ENTER_GETEVENTS), 0);
    CHECK(now_ns() - t0 < 1000 * MS);
    CHECK_EQ(b->ops->peek_cqes(b, cqes, 4), 1);
    CHECK_EQ(cqes[0]->user_data, 8);
    b->ops->advance(b, 1);
out:
    destroy(b);
    return rc;
}

static int test_enter_timeout(void)
{
    return check_enter_timeout(true) | check_enter_timeout(false);
}

/* Record CQEs into seen[]; each user_data must appear once. */
static int drain_visible(struct ringio_backend *b, unsigned char *seen, unsigned total,
                         unsigned *count)
{
    struct io_uring_cqe *cqes[8];
    unsigned n = b->ops->peek_cqes(b, cqes, 8);

    for (unsigned i = 0; i < n; i++) {
        uint64_t ud = cqes[i]->user_data;
        if (ud >= total || seen[ud] || cqes[i]->res != 0) {
            fprintf(stderr, "bad or duplicate CQE: user_data %llu res %d\n",
                    (unsigned long long)ud, cqes[i]->res);
            return -1;
        }
        seen[ud] = 1;
    }
    b->ops->advance(b, n);
    *count += n;
    return (int)n;
}

static int test_cq_overflow(void)
{
    enum { TOTAL = 64 };
    unsigned char seen[TOTAL] = {0};
    struct ringio_backend *b = NULL;
    unsigned queued = 0, reaped = 0, flushes = 0, idle = 0;
    bool reaped_early = false;
    int rc = 0;

    CHECK_EQ(new_ring(2, 4, 0, &b), 0);
    CHECK_EQ(b->sq_entries, 2);
    CHECK_EQ(b->cq_entries, 4);
    if (!(b->features & IORING_FEAT_NODROP)) {
        fprintf(stderr, "note: kernel lacks IORING_FEAT_NODROP, overflow test skipped\n");
        goto out;
    }

    /* Submit 64 NOPs, two per round, reaping nothing: the CQ ring holds 4
     * and the kernel keeps the rest in its overflow backlog. */
    while (queued < TOTAL) {
        while (queued < TOTAL && queue_nop(b, queued))
            queued++;
        unsigned pending = b->ops->flush(b);
        int r = b->ops->enter(b, pending, 0, -1, 0);
        if (r == -EBUSY || r == -EAGAIN) {
            /* Older kernels refuse SQEs while the backlog is non-empty. */
            reaped_early = true;
            CHECK(drain_visible(b, seen, TOTAL, &reaped) >= 0);
            if (b->ops->cq_overflow_pending(b))
                CHECK(b->ops->enter(b, 0, 0, -1, RINGIO_ENTER_GETEVENTS) >= 0);
            continue;
        }
        CHECK_EQ(r, (int)pending);
    }
    CHECK_EQ(b->ops->flush(b), 0);
    if (!reaped_early)
        CHECK(b->ops->cq_overflow_pending(b));

    /* Drain: peek/advance what is visible; when nothing is, pull the
     * backlog in with enter(GETEVENTS) or wait for more. */
    while (reaped < TOTAL) {
        int n = drain_visible(b, seen, TOTAL, &reaped);
        CHECK(n >= 0);
        if (n > 0)
            continue;
        if (b->ops->cq_overflow_pending(b)) {
            CHECK(b->ops->enter(b, 0, 0, -1, RINGIO_ENTER_GETEVENTS) >= 0);
            flushes++;
            continue;
        }
        CHECK(++idle < 100);
        int r = b->ops->enter(b, 0, 1, 100 * MS, RINGIO_ENTER_GETEVENTS);
        CHECK(r == 0 || r == -ETIME);
    }
    CHECK_EQ(reaped, TOTAL);
    for (unsigned i = 0; i < TOTAL; i++)
        CHECK(seen[i]);
    CHECK(reaped_early || flushes > 0);

    /* Exactly once: nothing more appears. */
    struct io_uring_cqe *cqe;
    CHECK(!b->ops->cq_overflow_pending(b));
    CHECK_EQ(b->ops->peek_cqes(b, &cqe, 1), 0);
    CHECK_EQ(b->ops->enter(b, 0, 1, 20 * MS, RINGIO_ENTER_GETEVENTS), -ETIME);
    CHECK_EQ(b->ops->peek_cqes(b, &cqe, 1), 0);
out:
    destroy(b);
    return rc;
}

static int test_buf_ring(void)
{
    struct ringio_backend *b = NULL;
    struct io_uring_buf_ring *br = NULL, *br2 = NULL, *big = NULL;
    struct io_uring_cqe *cqe;
    static char bufs[4][64];
    int pfd[2] = {-1, -1};
    int rc = 0;

    CHECK_EQ(new_ring(4, 0, 0, &b), 0);
    int fds = count_fds();

    /* Refused before the kernel is asked. */
    static const unsigned bad_entries[] = {0, 3, 6, 65536, 1u << 20, 32768 + 1};
    for (unsigned i = 0; i < sizeof(bad_entries) / sizeof(bad_entries[0]); i++) {
        br = (void *)1;
        CHECK_EQ(b->ops->register_buf_ring(b, bad_entries[i], 1, &br), -EINVAL);
        CHECK(br == NULL);
    }
    CHECK_EQ(b->ops->register_buf_ring(b, 8, 70000, &br), -EINVAL);

    /* Register, then the same group again: the kernel says EEXIST and the
     * second mapping is released. */
    CHECK_EQ(b->ops->register_buf_ring(b, 8, 3, &br), 0);
    CHECK(br != NULL);
    CHECK(((uintptr_t)br & ((uintptr_t)sysconf(_SC_PAGESIZE) - 1)) == 0);
    CHECK_EQ(br->tail, 0);
    CHECK_EQ(b->ops->register_buf_ring(b, 8, 3, &br2), -EEXIST);
    CHECK(br2 == NULL);

    /* The ring works: a buffer-select read from a pipe picks one of ours. */
    for (unsigned short i = 0; i < 4; i++)
        io_uring_buf_ring_add(br, bufs[i], sizeof(bufs[i]), i, io_uring_buf_ring_mask(8), i);
    io_uring_buf_ring_advance(br, 4);
    CHECK(pipe(pfd) == 0);
    CHECK(write(pfd[1], "hello", 5) == 5);
    struct io_uring_sqe *sqe = b->ops->get_sqe(b);
    CHECK(sqe != NULL);
    io_uring_prep_read(sqe, pfd[0], NULL, sizeof(bufs[0]), (uint64_t)-1);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 3;
    sqe->user_data = 42;
    CHECK_EQ(b->ops->flush(b), 1);
    CHECK_EQ(b->ops->enter(b, 1, 1, 2000 * MS, RINGIO_ENTER_GETEVENTS), 1);
    CHECK_EQ(b->ops->peek_cqes(b, &cqe, 1), 1);
    CHECK_EQ(cqe->user_data, 42);
    CHECK_EQ(cqe->res, 5);
    CHECK(cqe->flags & IORING_CQE_F_BUFFER);
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    CHECK(bid < 4);
    CHECK(memcmp(bufs[bid], "hello", 5) == 0);
    b->ops->advance(b, 1);

    /* Unregister refuses what it did not hand out, then unmaps. */
    CHECK_EQ(b->ops->unregister_buf_ring(b, br, 8, 4), -EINVAL);
    CHECK_EQ(b->ops->unregister_buf_ring(b, br, 16, 3), -EINVAL);
    CHECK_EQ(b->ops->unregister_buf_ring(b, NULL, 8, 3), -EINVAL);
    CHECK_EQ(b->ops->unregister_buf_ring(b, br, 8, 3), 0);
    CHECK(unmapped(br, (size_t)sysconf(_SC_PAGESIZE)));
    CHECK_EQ(b->ops->unregister_buf_ring(b, br, 8, 3), -EINVAL);
    br = NULL;

    /* The largest ring; and a ring left registered is unmapped by destroy. */
    CHECK_EQ(b->ops->register_buf_ring(b, 32768, 5, &big), 0);
    CHECK_EQ(b->ops->unregister_buf_ring(b, big, 32768, 5), 0);
    CHECK(unmapped(big, 32768 * sizeof(struct io_uring_buf)));
    big = NULL;
    CHECK_EQ(b->ops->register_buf_ring(b, 1, 6, &br), 0);
    close(pfd[0]);
    close(pfd[1]);
    pfd[0] = pfd[1] = -1;
    CHECK_EQ(count_fds(), fds);
    destroy(b);
    b = NULL;
    CHECK(unmapped(br, (size_t)sysconf(_SC_PAGESIZE)));
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    destroy(b);
    return rc;
}

static int test_probe(void)
{
    struct ringio_backend *b = NULL;
    uint8_t sup[300];
    int rc = 0;

    CHECK_EQ(new_ring(4, 0, 0, &b), 0);
    memset(sup, 0xaa, sizeof(sup));
    int known = b->ops->probe_opcodes(b, sup, sizeof(sup));
    CHECK(known > IORING_OP_NOP);
    CHECK(known <= 256);
    CHECK_EQ(sup[IORING_OP_NOP], 1);
    CHECK_EQ(sup[IORING_OP_READ], 1);
    for (unsigned op = 0; op < sizeof(sup); op++)
        CHECK(sup[op] == 0 || sup[op] == 1);
    for (unsigned op = (unsigned)known; op < sizeof(sup); op++)
        CHECK_EQ(sup[op], 0);
    CHECK_EQ(b->ops->probe_opcodes(b, NULL, 0), known);
out:
    destroy(b);
    return rc;
}

static int test_bad_setup(void)
{
    static const struct {
        unsigned entries, cq_entries, flags;
    } bad[] = {
        {0, 0, 0},                                   /* refused before the kernel */
        {0, 8, 0},
        {1u << 20, 0, 0},                            /* > IORING_MAX_ENTRIES, no CLAMP */
        {8, 1u << 30, 0},                            /* CQ too big, no CLAMP */
        {8, 4, 0},                                   /* CQ smaller than SQ */
        {8, 0, IORING_SETUP_SQE128},                 /* the contract is 64-byte SQEs */
        {8, 0, IORING_SETUP_CQE32},                  /* and 16-byte CQEs */
        {8, 0, IORING_SETUP_SQE128 | IORING_SETUP_CQE32},
        {8, 0, 1u << 31},                            /* unknown flag */
    };
    struct ringio_backend *b = NULL;
    int rc = 0;
    int fds = count_fds();

    CHECK(fds > 0);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b = (void *)1;
        int r = new_ring(bad[i].entries, bad[i].cq_entries, bad[i].flags, &b);
        if (r != -EINVAL)
            fprintf(stderr, "case %u: entries %u cq %u flags %#x\n", i, bad[i].entries,
                    bad[i].cq_entries, bad[i].flags);
        CHECK_EQ(r, -EINVAL);
        CHECK(b == NULL);
    }
    CHECK_EQ(ringio_uring_backend_new(NULL, &b), -EINVAL);
    CHECK(b == NULL);
    CHECK_EQ(count_fds(), fds);

    /* With CLAMP the same size is accepted and clamped. */
    int r = new_ring(1u << 20, 0, IORING_SETUP_CLAMP, &b);
    if (r == -ENOMEM) {
        fprintf(stderr, "note: clamped ring: ENOMEM, not checked\n");
    } else {
        CHECK_EQ(r, 0);
        CHECK_EQ(b->sq_entries, 32768);
        destroy(b);
        b = NULL;
    }
    CHECK_EQ(count_fds(), fds);
out:
    if (b != (void *)1)
        destroy(b);
    return rc;
}

/* SQPOLL: the kernel thread reads the published tail; after it idles
 * (default sq_thread_idle: 1 s) enter() must wake it. */
static int test_sqpoll(void)
{
    struct ringio_backend *b = NULL;
    struct io_uring_cqe *cqe;
    int rc = 0;

    int r = new_ring(4, 0, IORING_SETUP_SQPOLL, &b);
    if (r == -EPERM) {
        fprintf(stderr, "note: SQPOLL unavailable (%s), skipped\n", strerror(-r));
        b = NULL;
        goto out;
    }
    CHECK_EQ(r, 0);
    CHECK(b->setup_flags & IORING_SETUP_SQPOLL);
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            usleep(1300 * 1000); /* let the SQ thread go idle */
        CHECK(queue_nop(b, 500 + round));
        CHECK(b->ops->flush(b) <= 1);
        CHECK_EQ(b->ops->enter(b, 1, 0, -1, 0), 1);
        r = b->ops->enter(b, 0, 1, 3000 * MS, RINGIO_ENTER_GETEVENTS);
        CHECK(r == 0);
        CHECK_EQ(b->ops->peek_cqes(b, &cqe, 1), 1);
        CHECK_EQ(cqe->user_data, 500 + round);
        b->ops->advance(b, 1);
        /* The SQ thread may post the CQE of an inline completion before it
         * stores the new SQ head (it commits the head after its batch), so
         * under load the head can lag the CQE by a moment: wait for it. */
        unsigned left = b->ops->flush(b);
        for (int i = 0; i < 2000 && left > 0; i++) {
            usleep(1000);
            left = b->ops->flush(b);
        }
        CHECK_EQ(left, 0);
    }
out:
    destroy(b);
    return rc;
}

int main(void)
{
    struct ringio_backend *b = NULL;
    int r = new_ring(4, 0, 0, &b);

    if (r == -EPERM || r == -ENOSYS) {
        printf("SKIP: io_uring unavailable: %s\n", strerror(-r));
        return SKIP;
    }
    destroy(b);
    printf("backend version: %s\n", ringio_uring_backend_version());

    static const struct {
        const char *name;
        int (*fn)(void);
    } tests[] = {
        {"setup", test_setup},
        {"nop_round_trip", test_nop_round_trip},
        {"enter_timeout", test_enter_timeout},
        {"cq_overflow", test_cq_overflow},
        {"buf_ring", test_buf_ring},
        {"probe", test_probe},
        {"bad_setup", test_bad_setup},
        {"sqpoll", test_sqpoll},
    };
    int failed = 0;

    for (unsigned i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        int f = tests[i].fn();
        printf("%s %s\n", f ? "FAIL" : "ok  ", tests[i].name);
        failed |= f;
    }
    return failed ? 1 : 0;
}
