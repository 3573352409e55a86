/*
 * ringio simulated kernel: the backend contract (ringio/backend.h) served by
 * an in-process simulation that reads the same SQEs the kernel would, does
 * the I/O with ordinary non-blocking syscalls and posts kernel-shaped CQEs.
 *
 * Every choice the simulation makes (completion order, short transfers,
 * injected faults, which side of a cancel race wins) goes through one
 * decision source: a PRNG seeded with a 64-bit seed, a byte stream (fuzzers),
 * or a recorded trace (replay).  The same source, fault profile and sequence
 * of calls give the same CQE stream byte for byte.
 *
 * The table of every known difference from Linux is in backends/sim/sim.c
 * (and docs/sim.md).
 */
#ifndef RINGIO_SIM_H
#define RINGIO_SIM_H

#include "ringio/backend.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fault sites.  Each is switched on for a whole run with probability
 * enable/1000 (decided once, at creation) and then fires with probability
 * fire/1000 each time the simulation passes it. */
enum ringio_sim_fault {
    RINGIO_SIM_SHORT_READ = 0,     /* a read/recv returns fewer bytes than it could */
    RINGIO_SIM_SHORT_WRITE,        /* a write/send transfers a prefix */
    RINGIO_SIM_INJECT_ERROR,       /* an operation fails with one of its profile errnos */
    RINGIO_SIM_NOTIF_DELAY,        /* a zero-copy notification comes several steps late */
    RINGIO_SIM_NOTIF_REORDER,      /* pending notifications are posted in a shuffled order */
    RINGIO_SIM_NOTIF_AFTER_ERROR,  /* an errored zero-copy send's notification is held back */
    RINGIO_SIM_MULTISHOT_END,      /* a multishot leg ends the operation (no F_MORE) */
    RINGIO_SIM_ENTER_BUSY,         /* enter() refuses SQEs with -EBUSY while CQEs wait */
    RINGIO_SIM_FAULT_COUNT
};

#define RINGIO_SIM_MAX_ERRNOS 4
#define RINGIO_SIM_OPCODES 64 /* opcodes the profile can name (IORING_OP_* < 64) */

struct ringio_sim_site {
    uint16_t enable; /* per mille */
    uint16_t fire;   /* per mille */
};

struct ringio_sim_faults {
    struct ringio_sim_site site[RINGIO_SIM_FAULT_COUNT];
    /* Positive errnos RINGIO_SIM_INJECT_ERROR may choose from, per opcode;
     * 0 ends a list.  An opcode with no errnos is never injected. */
    int16_t errors[RINGIO_SIM_OPCODES][RINGIO_SIM_MAX_ERRNOS];
};

enum ringio_sim_source {
    RINGIO_SIM_SOURCE_SEED = 0, /* splitmix64 from seed */
    RINGIO_SIM_SOURCE_BYTES,    /* bytes/nbytes, then zeros (libFuzzer) */
    RINGIO_SIM_SOURCE_REPLAY,   /* a trace recorded by ringio_sim_trace() */
};

struct ringio_sim_config {
    enum ringio_sim_source source;
    uint64_t seed;
    const uint8_t *bytes; /* BYTES: the stream; REPLAY: a trace; copied */
    size_t nbytes;
    const struct ringio_sim_faults *faults; /* NULL: faithful mode only; copied */
    int record;  /* keep the decisions so ringio_sim_trace() can save them */
    int notify;  /* give the ring an fd (b->fd, an epoll fd) that
                  * ringio_sim_notify_enable() makes readable whenever enter()
                  * would make progress: CQEs wait or an op's fd is ready */
};

/* Create a simulated ring.  Sizes follow the kernel's rules (powers of two,
 * CQ twice the SQ unless IORING_SETUP_CQSIZE, -EINVAL on absurd sizes). */
int ringio_sim_backend_new(const struct ringio_setup *setup, const struct ringio_sim_config *cfg,
                           struct ringio_backend **out);

/* Start maintaining b->fd (config.notify): from now on it is readable
 * exactly when CQEs wait, work is pending, or an fd some operation waits on
 * is ready.  Off until asked for, because keeping it costs two syscalls per
 * completion; callers enable it when they hand the fd to a poller. */
int ringio_sim_notify_enable(struct ringio_backend *b);

/* True when b is a simulated backend. */
int ringio_sim_is(const struct ringio_backend *b);

/* ---- scripted mode -------------------------------------------------------
 * Rules are keyed on the tag the core passes through annotate() (Python: the
 * user_data).  They apply to operations submitted before or after the rule.
 * All return 0 or -errno. */

/* Hold back CQEs of operations with this tag (notif_only: only their F_NOTIF
 * notifications) until ringio_sim_release(). */
int ringio_sim_hold(struct ringio_backend *b, uint64_t tag, int notif_only);
/* Post what is held for tag, in the order it was produced, and drop the hold.
 * Returns the number of CQEs released. */
int ringio_sim_release(struct ringio_backend *b, uint64_t tag);
/* The next operation with this tag completes with res instead of doing its
 * I/O (once). */
int ringio_sim_force(struct ringio_backend *b, uint64_t tag, int32_t res);
/* Advance the virtual clock; due timeouts complete at the next enter(). */
int ringio_sim_advance(struct ringio_backend *b, uint64_t ns);

struct ringio_sim_info {
    uint64_t seed;
    uint64_t now_ns;         /* virtual clock */
    uint64_t decisions;      /* decisions taken so far */
    uint64_t decision_hash;  /* FNV-1a over (site, range, value) of every decision */
    uint64_t cqe_hash;       /* FNV-1a over every CQE posted (user_data, res, flags) */
    uint64_t cqes_posted;
    unsigned pending;        /* operations not yet completed */
    unsigned held;           /* CQEs held by scripted rules */
    unsigned overflowed;     /* CQEs that went through the overflow backlog */
    uint32_t faults_enabled; /* bit i: fault site i switched on for this run */
    int replay_diverged;     /* replay: the calls asked for a decision the trace lacks */
};
int ringio_sim_info(struct ringio_backend *b, struct ringio_sim_info *out);

/* The recorded trace (config.record): *out points at n bytes owned by the
 * sim, valid until the next decision or destroy.  Feed it back with
 * RINGIO_SIM_SOURCE_REPLAY to repeat the run. */
int ringio_sim_trace(struct ringio_backend *b, const uint8_t **out, size_t *n);

/* Name of a fault site ("short_read", ...), NULL past the end. */
const char *ringio_sim_fault_name(unsigned site);

#ifdef __cplusplus
}
#endif
#endif /* RINGIO_SIM_H */
