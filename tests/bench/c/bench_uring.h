/*
 * What the liburing programs of `python -m ringio bench` share, on top of
 * bench_common.h (define BENCH_PROG first, as for that header).
 */
#ifndef RINGIO_BENCH_URING_H
#define RINGIO_BENCH_URING_H

#include <liburing.h>

#include "bench_common.h"

/* Reap exactly `want` CQEs (waiting whenever the CQ runs dry); true if every
 * res was `expect`. */
static inline bool reap_expect(struct io_uring *ring, long want, int expect)
{
    bool ok = true;
    long got = 0;
    while (got < want) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            ok = ok && cqe->res == expect;
            seen++;
        }
        io_uring_cq_advance(ring, seen);
        got += seen;
        if (got < want) {
            int rc = io_uring_wait_cqe(ring, &cqe);
            if (rc < 0)
                die("io_uring_wait_cqe", rc);
        }
    }
    return ok;
}

#endif
