/*
 * What the two libFuzzer harnesses (fuzz_core.c, fuzz_uring_sqe.c) share: the
 * byte reader over the input, the failure report and CHECK/CHECKF/TRACE, the
 * byte pattern of harness-written data and the blank expected SQE.
 *
 * A harness keeps one struct fuzz_run in its state, starts it with
 * fuzz_run_start() at the top of every input, and defines FUZZ_RUN as that
 * struct (for example `#define FUZZ_RUN (H.run)`), which CHECK, CHECKF and
 * TRACE use.
 */
#ifndef RINGIO_FUZZ_HARNESS_COMMON_H
#define RINGIO_FUZZ_HARNESS_COMMON_H

#include <linux/io_uring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct fuzz_run {
    const char *target;              /* "fuzz_core": names the harness in reports */
    const char *const *action_names; /* indexed by action */
    int action_count;
    int trace; /* RINGIO_FUZZ_TRACE is set: print every decoded action */
    const uint8_t *in;
    size_t in_len, in_pos;
    bool eof;      /* a read ran past the input's end */
    unsigned step; /* number of the action being run (1-based) */
    int action;    /* the action being run, -1 outside the program */
};

/* Zeroes *r and points it at the input; trace from RINGIO_FUZZ_TRACE. */
void fuzz_run_start(struct fuzz_run *r, const char *target, const char *const *action_names,
                    int action_count, const uint8_t *data, size_t size);

/* The next input byte; 0 and eof once the input is used up. */
static inline uint8_t fuzz_u8(struct fuzz_run *r)
{
    if (r->in_pos < r->in_len)
        return r->in[r->in_pos++];
    r->eof = true;
    return 0;
}

/* Prints "<target>: INVARIANT VIOLATED at <target>.c:LINE (action #N NAME)",
 * the condition and the formatted details (fmt may be NULL), then traps. */
__attribute__((noreturn, format(printf, 4, 5))) void fuzz_fail(const struct fuzz_run *r, int line,
                                                              const char *cond, const char *fmt,
                                                              ...);

#define CHECK(cond)                                         \
    do {                                                    \
        if (!(cond))                                        \
            fuzz_fail(&(FUZZ_RUN), __LINE__, #cond, NULL);  \
    } while (0)
#define CHECKF(cond, ...)                                          \
    do {                                                           \
        if (!(cond))                                               \
            fuzz_fail(&(FUZZ_RUN), __LINE__, #cond, __VA_ARGS__);  \
    } while (0)
#define TRACE(...)                                  \
    do {                                            \
        if ((FUZZ_RUN).trace)                       \
            fprintf(stderr, __VA_ARGS__);           \
    } while (0)

/* Byte i of the data the harness writes for serial (checked when read back). */
static inline uint8_t fuzz_pat(uint32_t serial, uint32_t i)
{
    return (uint8_t)(serial * 131u + i * 7u + 1u);
}

/* An expected SQE to fill in: all zero but the opcode, and fd -1. */
static inline void fuzz_expect_base(struct io_uring_sqe *e, uint8_t opcode)
{
    memset(e, 0, sizeof(*e));
    e->opcode = opcode;
    e->fd = -1;
}

#endif
