/*
 * The physical limit of the "files" scenario of `python -m ringio bench`:
 * reads of a page-cached file on liburing, no Python anywhere.
 *
 *   file_reads PATH random N BS QD   N reads of BS bytes at random BS-aligned
 *                                    offsets, QD in flight
 *   file_reads PATH seq N BS QD      N reads of BS bytes front to back (wrapping
 *                                    around), QD in flight
 *
 * Every completion must return BS bytes.  The offsets of the random mode come
 * from the same xorshift generator as the Python rows (seeded with 1), so all
 * rows read the same blocks.  Prints {"ops": N, "seconds": t, "ok": true}.
 * Built at bench time: cc -O2 file_reads.c -o build/bench/file_reads -luring
 */
#define _GNU_SOURCE
#define BENCH_PROG "file_reads"
#include "bench_common.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long long rng_state = 1;

/* xorshift64: ringio/bench_files.py's _offsets() computes the same sequence. */
static unsigned long long next_rand(void)
{
    unsigned long long x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static unsigned long long next_offset(bool random_mode, unsigned long long *seq,
                                      unsigned long long blocks, unsigned long long bs)
{
    if (random_mode)
        return (next_rand() % blocks) * bs;
    unsigned long long off = (*seq % blocks) * bs;
    (*seq)++;
    return off;
}

int main(int argc, char **argv)
{
    check_usage(argc == 6, "PATH random|seq N BS QD");
    bool random_mode = strcmp(argv[2], "random") == 0;
    check_args(random_mode || strcmp(argv[2], "seq") == 0, "mode must be random or seq");
    long n = strtol(argv[3], NULL, 10);
    long bs = strtol(argv[4], NULL, 10);
    long qd = strtol(argv[5], NULL, 10);
    check_args(n > 0 && bs > 0 && qd > 0 && qd <= 4096, "N > 0, BS > 0, 0 < QD <= 4096");
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0)
        die("open", errno);
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat", errno);
    unsigned long long blocks = (unsigned long long)st.st_size / (unsigned long long)bs;
    check_args(blocks > 0, "the file is smaller than one block");

    struct io_uring ring;
    int rc = io_uring_queue_init((unsigned)qd, &ring, 0);
    if (rc < 0)
        die("io_uring_queue_init", rc);
    char *bufs = aligned_alloc(4096, (size_t)qd * (size_t)bs);
    if (!bufs)
        die("aligned_alloc", ENOMEM);

    long submitted = 0, done = 0;
    unsigned long long seq = 0;
    bool ok = true;
    double t0 = now();
    /* Fill the queue, then refill one slot per completion; one enter per round. */
    for (long i = 0; i < qd && submitted < n; i++, submitted++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_read(sqe, fd, bufs + i * bs, (unsigned)bs,
                           next_offset(random_mode, &seq, blocks, (unsigned long long)bs));
        io_uring_sqe_set_data64(sqe, (unsigned long long)i);
    }
    while (done < n) {
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0)
            die("io_uring_submit_and_wait", rc);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            done++;
            ok &= cqe->res == bs;
            unsigned long long slot = cqe->user_data;
            if (submitted < n) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                io_uring_prep_read(sqe, fd, bufs + slot * (unsigned long long)bs, (unsigned)bs,
                                   next_offset(random_mode, &seq, blocks,
                                               (unsigned long long)bs));
                io_uring_sqe_set_data64(sqe, slot);
                submitted++;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    double t1 = now();
    io_uring_queue_exit(&ring);
    free(bufs);
    close(fd);
    return report_ops(n, t1 - t0, ok);
}
