/*
 * Harness 5: fuzz_sim_trace, the sim's decision sources and its one parser,
 * the trace reader of RINGIO_SIM_SOURCE_REPLAY (backends/sim/decide.c).
 *
 * Input byte 0 picks the mode:
 *  - even: the rest is a trace.  With bit 1 the "RSIM\1" magic and a zero
 *    seed are put in front (so mutations reach the decision records); the
 *    sim must either refuse it at creation (-EINVAL) or run a fixed program
 *    on it, marking replay_diverged when the trace runs out or disagrees.
 *  - odd: the rest is a byte-stream decision source.  The fixed program runs
 *    with record on; its trace is then replayed, and the same bytes run once
 *    more: decision and CQE hashes must match across all three runs, the
 *    replay must not diverge, and it must consume the trace exactly.
 *
 * The fixed program (nops, a timeout, send/recv on a socketpair, a multishot
 * receive, a poll, a cancel, reaps at virtual times) never sleeps: waits use
 * a zero timeout and the clock moves with ringio_sim_advance().
 */
#include "harness_common.h"

#include "ringio/core.h"
#include "ringio/sim.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef RINGIO_FUZZ_REPLAY
#define LLVMFuzzerTestOneInput ringio_fuzz_sim_trace_one
#endif

#define FUZZ_RUN (T.run)

static const char *const tnames[1] = {"program"};

static struct {
    struct fuzz_run run;
    unsigned live;
} T;

struct trec {
    struct ringio_owner o;
    uint8_t buf[64];
    struct __kernel_timespec ts;
};

static void on_release(struct ringio_owner *o)
{
    T.live--;
    free(o);
}

static struct trec *trec_new(void)
{
    struct trec *r = calloc(1, sizeof(*r));
    CHECK(r);
    r->o.release = on_release;
    r->o.tag = 1 + T.live;
    memset(r->buf, 0x42, sizeof(r->buf));
    T.live++;
    return r;
}

static int deliver(void *ctx, const struct ringio_event *ev)
{
    (void)ctx;
    (void)ev;
    return 0;
}

struct outcome {
    struct ringio_sim_info info;
    uint8_t *trace;
    size_t trace_len;
};

/* Submit helper: on failure the record is still ours. */
#define SUBMIT(call, r)          \
    do {                         \
        if ((call) < 0) {        \
            T.live--;            \
            free(r);             \
        }                        \
    } while (0)

/* Run the fixed program on cfg; false when the sim refused the config. */
static bool run_program(const struct ringio_sim_config *cfg, uint8_t variant, struct outcome *out)
{
    struct ringio_setup setup = {.entries = 4, .cq_entries = (variant & 4) ? 4 : 0,
                                 .flags = (variant & 4) ? IORING_SETUP_CQSIZE : 0};
    struct ringio_backend *b;
    int rc = ringio_sim_backend_new(&setup, cfg, &b);
    if (rc < 0) {
        CHECKF(rc == -EINVAL, "sim creation: %d", rc);
        return false;
    }
    struct ringio_core *c;
    CHECK(ringio_core_new(b, &c) == 0);
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) == 0);
    uint64_t tok, recv_tok = 0;
    struct trec *r;

    r = trec_new();
    SUBMIT(ringio_submit_nop(c, &r->o, &tok), r);
    r = trec_new();
    r->ts.tv_nsec = 50000;
    SUBMIT(ringio_submit_timeout(c, &r->o, &r->ts, 0, 0, &tok), r);
    r = trec_new();
    SUBMIT(ringio_submit_recv(c, &r->o, sp[1], r->buf, 5, 0, &recv_tok), r);
    r = trec_new();
    SUBMIT(ringio_submit_send(c, &r->o, sp[0], r->buf, 12, MSG_NOSIGNAL, &tok), r);
    r = trec_new();
    SUBMIT(ringio_submit_recv_multishot(c, &r->o, sp[0], 8, 4, 0, 0, &tok), r);
    r = trec_new();
    SUBMIT(ringio_submit_send(c, &r->o, sp[1], r->buf, 20, MSG_NOSIGNAL, &tok), r);
    if (variant & 8) {
        r = trec_new();
        SUBMIT(ringio_submit_send_zc(c, &r->o, sp[1], r->buf, 16, MSG_NOSIGNAL, 0, &tok), r);
    }
    r = trec_new();
    SUBMIT(ringio_submit_poll(c, &r->o, sp[1], POLLIN, (variant & 16) != 0, 0, &tok), r);
    for (int round = 0; round < 6; round++) {
        unsigned n = ringio_core_wait_prepare(c);
        rc = ringio_core_wait_block(c, n, 1, 0);
        CHECKF(rc == 0 || rc == -ETIME || rc == -EBUSY || rc == -EAGAIN, "wait %d", rc);
        ringio_core_wait_finish(c);
        rc = ringio_core_reap(c, (variant & 2) ? 2 : UINT32_MAX, deliver, NULL);
        CHECKF(rc >= 0 || rc == -EBUSY || rc == -EAGAIN, "reap %d", rc);
        ringio_sim_advance(ringio_core_backend(c) ? (struct ringio_backend *)ringio_core_backend(c)
                                                  : NULL,
                           20000);
        if (round == 2) {
            r = trec_new();
            SUBMIT(ringio_submit_cancel(c, &r->o, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL,
                                        &tok),
                   r);
        }
    }
    struct ringio_backend *sb = (struct ringio_backend *)ringio_core_backend(c);
    CHECK(ringio_sim_info(sb, &out->info) == 0);
    out->trace = NULL;
    out->trace_len = 0;
    const uint8_t *t;
    size_t tn;
    if (cfg->record && ringio_sim_trace(sb, &t, &tn) == 0) {
        out->trace = malloc(tn ? tn : 1);
        CHECK(out->trace);
        memcpy(out->trace, t, tn);
        out->trace_len = tn;
    }
    ringio_core_close(c, 0);
    ringio_core_free(c);
    CHECKF(T.live == 0, "%u owners left", T.live);
    close(sp[0]);
    close(sp[1]);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&T, 0, sizeof(T));
    fuzz_run_start(&T.run, "fuzz_sim_trace", tnames, 1, data, size);
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    T.run.action = 0;
    struct outcome a;
    if (!(mode & 1)) {
        static const uint8_t hdr[13] = {'R', 'S', 'I', 'M', 1};
        size_t n = size - 1 + ((mode & 2) ? sizeof(hdr) : 0);
        uint8_t *buf = malloc(n ? n : 1);
        CHECK(buf);
        if (mode & 2)
            memcpy(buf, hdr, sizeof(hdr));
        memcpy(buf + ((mode & 2) ? sizeof(hdr) : 0), data + 1, size - 1);
        struct ringio_sim_config cfg = {.source = RINGIO_SIM_SOURCE_REPLAY, .bytes = buf, .nbytes = n};
        run_program(&cfg, mode, &a);
        free(buf);
        return 0;
    }
    struct ringio_sim_config cfg = {
        .source = RINGIO_SIM_SOURCE_BYTES, .bytes = data + 1, .nbytes = size - 1, .record = 1,
    };
    CHECK(run_program(&cfg, mode, &a));
    CHECK(a.trace && a.trace_len >= 13);
    struct outcome b, c;
    struct ringio_sim_config rcfg = {
        .source = RINGIO_SIM_SOURCE_REPLAY, .bytes = a.trace, .nbytes = a.trace_len, .record = 1,
    };
    CHECK(run_program(&rcfg, mode, &b));
    cfg.record = 0;
    CHECK(run_program(&cfg, mode, &c));
    CHECKF(!b.info.replay_diverged, "replay of a recorded trace diverged");
    CHECKF(a.info.decisions == b.info.decisions && a.info.decision_hash == b.info.decision_hash,
           "decisions: recorded %llu (%#llx), replayed %llu (%#llx)",
           (unsigned long long)a.info.decisions, (unsigned long long)a.info.decision_hash,
           (unsigned long long)b.info.decisions, (unsigned long long)b.info.decision_hash);
    CHECKF(a.info.cqe_hash == b.info.cqe_hash && a.info.cqes_posted == b.info.cqes_posted,
           "CQE stream differs between the run and its replay");
    CHECKF(b.trace_len == a.trace_len && memcmp(a.trace, b.trace, a.trace_len) == 0,
           "the replay recorded a different trace");
    CHECKF(a.info.decision_hash == c.info.decision_hash && a.info.cqe_hash == c.info.cqe_hash,
           "same bytes, different run");
    free(a.trace);
    free(b.trace);
    free(c.trace);
    return 0;
}
