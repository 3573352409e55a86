/*
 * What the C programs of `python -m ringio bench` share.  Each program is
 * still compiled alone (cc -O2 PROG.c -o build/bench/PROG [-luring]); this
 * header, next to it, is found by its #include "...".  Define BENCH_PROG (the
 * program's name, a string literal) before including it.
 */
#ifndef RINGIO_BENCH_COMMON_H
#define RINGIO_BENCH_COMMON_H

#ifndef BENCH_PROG
#error "define BENCH_PROG before including bench_common.h"
#endif

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Unless ok: "usage: PROG ARGS" on stderr, exit 2. */
static inline void check_usage(bool ok, const char *args)
{
    if (!ok) {
        fprintf(stderr, "usage: " BENCH_PROG " %s\n", args);
        exit(2);
    }
}

/* Unless ok: "PROG: WHY" on stderr, exit 2. */
static inline void check_args(bool ok, const char *why)
{
    if (!ok) {
        fprintf(stderr, BENCH_PROG ": %s\n", why);
        exit(2);
    }
}

/* Monotonic seconds. */
static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "PROG: WHAT: strerror" and exit 1; err is an errno value, either sign. */
static inline void die(const char *what, int err)
{
    fprintf(stderr, BENCH_PROG ": %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

/* The one line the bench reads, {"ops": N, "seconds": S, "ok": B}; the exit status. */
static inline int report_ops(long ops, double seconds, bool ok)
{
    printf("{\"ops\": %ld, \"seconds\": %.9f, \"ok\": %s}\n", ops, seconds, ok ? "true" : "false");
    return ok ? 0 : 1;
}

#endif
