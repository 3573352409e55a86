/*
 * The physical limit of the "nop" scenario of `python -m ringio bench`:
 * NOP submit+complete round trips on liburing, no Python anywhere.
 *
 *   nop N BATCH      N round trips, BATCH per io_uring_submit_and_wait()
 *   nop N 1          one at a time: get_sqe, prep_nop, submit, wait_cqe, seen
 *
 * Prints one JSON object: {"ops": N, "seconds": elapsed, "syscalls_hint": ...}.
 * Built at bench time: cc -O2 nop.c -o build/bench/nop -luring
 */
#define _GNU_SOURCE
#define BENCH_PROG "nop"
#include "bench_common.h"

#include <liburing.h>

int main(int argc, char **argv)
{
    check_usage(argc == 3, "N BATCH");
    long n = strtol(argv[1], NULL, 10);
    long batch = strtol(argv[2], NULL, 10);
    check_args(n > 0 && batch > 0 && batch <= 4096, "N > 0 and 0 < BATCH <= 4096");
    struct io_uring ring;
    unsigned entries = batch < 8 ? 8 : (unsigned)batch;
    int rc = io_uring_queue_init(entries, &ring, 0);
    if (rc < 0)
        die("io_uring_queue_init", rc);

    long done = 0;
    unsigned long long check = 0;
    double t0 = now();
    if (batch == 1) {
        while (done < n) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, (unsigned long long)done);
            rc = io_uring_submit(&ring);
            if (rc < 0)
                die("io_uring_submit", rc);
            struct io_uring_cqe *cqe;
            rc = io_uring_wait_cqe(&ring, &cqe);
            if (rc < 0)
                die("io_uring_wait_cqe", rc);
            check += cqe->user_data + (unsigned)cqe->res;
            io_uring_cqe_seen(&ring, cqe);
            done++;
        }
    } else {
        while (done < n) {
            long want = n - done < batch ? n - done : batch;
            for (long i = 0; i < want; i++) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data64(sqe, (unsigned long long)(done + i));
            }
            rc = io_uring_submit_and_wait(&ring, (unsigned)want);
            if (rc < 0)
                die("io_uring_submit_and_wait", rc);
            long got = 0;
            while (got < want) {
                struct io_uring_cqe *cqe;
                unsigned head, seen = 0;
                io_uring_for_each_cqe(&ring, head, cqe)
                {
                    check += cqe->user_data + (unsigned)cqe->res;
                    seen++;
                }
                io_uring_cq_advance(&ring, seen);
                got += seen;
                if (got < want) {
                    rc = io_uring_wait_cqe(&ring, &cqe);
                    if (rc < 0)
                        die("io_uring_wait_cqe", rc);
                }
            }
            done += want;
        }
    }
    double t1 = now();
    io_uring_queue_exit(&ring);
    /* The checksum keeps the loop honest: sum of 0..n-1 (every res is 0). */
    unsigned long long expect = (unsigned long long)n * (unsigned long long)(n - 1) / 2;
    return report_ops(n, t1 - t0, check == expect);
}
