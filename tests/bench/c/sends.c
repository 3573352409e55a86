/*
 * The physical limit of the "sends" scenario of `python -m ringio bench`:
 * batches of small sends on an AF_UNIX stream socketpair, drained by a reader.
 *
 *   sends N BATCH SIZE    N sends of SIZE bytes, BATCH per io_uring_submit_and_wait()
 *   sends drain           read stdin until EOF: the reader of the Python rows
 *
 * A forked child drains the other end with 1 MiB read()s, the same loop the
 * Python rows' reader process (`sends drain`) runs.  Prints {"ops": N, "seconds": elapsed, "ok": every
 * send sent all its bytes}; the clock stops when the last send completes.
 * Built at bench time: cc -O2 sends.c -o build/bench/sends -luring
 */
#define _GNU_SOURCE
#define BENCH_PROG "sends"
#include "bench_uring.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void drain(int fd)
{
    static char sink[1 << 20];
    while (read(fd, sink, sizeof(sink)) > 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "drain") == 0) {
        drain(0);
        return 0;
    }
    check_usage(argc == 4, "N BATCH SIZE | drain");
    long n = strtol(argv[1], NULL, 10);
    long batch = strtol(argv[2], NULL, 10);
    long size = strtol(argv[3], NULL, 10);
    check_args(n > 0 && batch > 0 && batch <= 4096 && size > 0 && size <= 65536,
               "N > 0, 0 < BATCH <= 4096, 0 < SIZE <= 65536");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        die("socketpair", errno);
    pid_t child = fork();
    if (child < 0)
        die("fork", errno);
    if (child == 0) { /* the reader */
        close(sv[0]);
        drain(sv[1]);
        _exit(0);
    }
    close(sv[1]);
    struct io_uring ring;
    int rc = io_uring_queue_init((unsigned)batch, &ring, 0);
    if (rc < 0)
        die("io_uring_queue_init", rc);
    char *msg = malloc((size_t)size);
    if (msg == NULL)
        die("malloc", ENOMEM);
    memset(msg, 's', (size_t)size);
    bool ok = true;
    long done = 0;
    double t0 = now();
    while (done < n) {
        long want = n - done < batch ? n - done : batch;
        for (long i = 0; i < want; i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_send(sqe, sv[0], msg, (size_t)size, 0);
            sqe->user_data = (unsigned long long)i;
        }
        rc = io_uring_submit_and_wait(&ring, (unsigned)want);
        if (rc < 0)
            die("io_uring_submit_and_wait", rc);
        ok = reap_expect(&ring, want, (int)size) && ok;
        done += want;
    }
    double t1 = now();
    io_uring_queue_exit(&ring);
    close(sv[0]);
    int status;
    waitpid(child, &status, 0);
    return report_ops(n, t1 - t0, ok);
}
