/*
 * The physical limit of the "pingpong" scenario of `python -m ringio bench`:
 * 64-byte ping-pong over an AF_UNIX stream socketpair, both ends on one ring.
 *
 *   pingpong N SIZE     N round trips of SIZE-byte messages
 *
 * A round trip is two hops (a -> b, then b -> a); each hop is one send and one
 * receive prepared together and handed to the kernel by one
 * io_uring_submit_and_wait(2), the loop the Python rows run.
 * Prints {"ops": N, "seconds": elapsed, "ok": every byte arrived}.
 * Built at bench time: cc -O2 pingpong.c -o build/bench/pingpong -luring
 */
#define _GNU_SOURCE
#define BENCH_PROG "pingpong"
#include "bench_uring.h"

#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    check_usage(argc == 3, "N SIZE");
    long n = strtol(argv[1], NULL, 10);
    long size = strtol(argv[2], NULL, 10);
    check_args(n > 0 && size > 0 && size <= 65536, "N > 0 and 0 < SIZE <= 65536");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        die("socketpair", errno);
    struct io_uring ring;
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0)
        die("io_uring_queue_init", rc);
    char *msg = malloc((size_t)size), *buf = malloc((size_t)size);
    if (msg == NULL || buf == NULL)
        die("malloc", ENOMEM);
    memset(msg, 'p', (size_t)size);
    bool ok = true;
    double t0 = now();
    for (long i = 0; i < 2 * n; i++) {
        int from = sv[i & 1], to = sv[(i & 1) ^ 1];
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_send(sqe, from, msg, (size_t)size, 0);
        sqe->user_data = 1;
        sqe = io_uring_get_sqe(&ring);
        io_uring_prep_recv(sqe, to, buf, (size_t)size, 0);
        sqe->user_data = 2;
        rc = io_uring_submit_and_wait(&ring, 2);
        if (rc < 0)
            die("io_uring_submit_and_wait", rc);
        ok = reap_expect(&ring, 2, (int)size) && ok;
    }
    double t1 = now();
    ok = ok && memcmp(msg, buf, (size_t)size) == 0;
    io_uring_queue_exit(&ring);
    close(sv[0]);
    close(sv[1]);
    return report_ops(n, t1 - t0, ok);
}
