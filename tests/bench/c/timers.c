/*
 * The physical limit of the "timers" scenario of `python -m ringio bench`:
 * N relative timeouts of SECONDS each, submitted in one go and reaped, on
 * liburing.
 *
 *   timers N SECONDS
 *
 * Prints {"ops": N, "seconds": elapsed, "ok": bool}; elapsed runs from the
 * first io_uring_prep_timeout() to the last completion (so it is at least
 * SECONDS).  Built at bench time: cc -O2 timers.c -o build/bench/timers -luring
 */
#define _GNU_SOURCE
#define BENCH_PROG "timers"
#include "bench_common.h"

#include <errno.h>
#include <liburing.h>

int main(int argc, char **argv)
{
    check_usage(argc == 3, "N SECONDS");
    long n = strtol(argv[1], NULL, 10);
    double secs = strtod(argv[2], NULL);
    check_args(n > 0 && !(secs < 0), "N > 0 and SECONDS >= 0");
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    int rc = io_uring_queue_init_params(4096, &ring, &p);
    if (rc < 0)
        die("io_uring_queue_init_params", rc);
    /* The kernel copies the timespec when it prepares the request. */
    struct __kernel_timespec ts = {.tv_sec = (long long)secs,
                                   .tv_nsec = (long long)((secs - (double)(long long)secs) * 1e9)};
    long submitted = 0, done = 0, expired = 0;
    double t0 = now();
    while (done < n) {
        while (submitted < n) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            if (!sqe)
                break;
            io_uring_prep_timeout(sqe, &ts, 0, 0);
            io_uring_sqe_set_data64(sqe, (unsigned long long)submitted);
            submitted++;
        }
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR)
            die("io_uring_submit_and_wait", rc);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            expired += cqe->res == -ETIME;
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        done += seen;
    }
    double t1 = now();
    io_uring_queue_exit(&ring);
    return report_ops(n, t1 - t0, expired == n);
}
