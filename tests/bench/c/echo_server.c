/*
 * The physical limit of the "echo" scenario of `python -m ringio bench`: a TCP
 * echo server on liburing doing what the ringio server loop does, in C.
 *
 *   echo_server [PORT]     listen on 127.0.0.1:PORT (0 or absent: any free port)
 *
 * One multishot accept; per connection one multishot recv over a shared
 * provided-buffer ring (BUF_COUNT buffers of BUF_SIZE bytes); every received
 * chunk is sent back from the provided buffer itself, which is recycled when
 * the send completes (a short send resubmits the rest).  One
 * io_uring_submit_and_wait() per loop turn; IORING_SETUP_COOP_TASKRUN.  Prints "PORT <n>" once listening;
 * exits on SIGTERM/SIGINT or when stdin reaches EOF.
 *
 * Built at bench time: cc -O2 echo_server.c -o build/bench/echo_server -luring
 * liburing 2.3 has no io_uring_setup_buf_ring(), so the buffer ring is mapped
 * and registered by hand.
 */
#define _GNU_SOURCE
#define BENCH_PROG "echo_server"
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 4096u
#define BUF_COUNT 4096u /* power of two */
#define BGID 1
#define ENTRIES 1024u

enum { KIND_ACCEPT = 1, KIND_RECV = 2, KIND_SEND = 3, KIND_STDIN = 4 };

/* user_data: kind (8 bits) | buffer id (16 bits) | offset (16 bits) | fd (24 bits) */
static inline uint64_t ud(unsigned kind, unsigned bid, unsigned off, int fd)
{
    return ((uint64_t)kind << 56) | ((uint64_t)bid << 40) | ((uint64_t)off << 24) |
           (uint64_t)(unsigned)fd;
}
#define UD_KIND(u) ((unsigned)((u) >> 56))
#define UD_BID(u) ((unsigned)(((u) >> 40) & 0xffff))
#define UD_OFF(u) ((unsigned)(((u) >> 24) & 0xffff))
#define UD_FD(u) ((int)((u)&0xffffff))

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static unsigned char *bufs;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
        if (!sqe)
            die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
}

static void recycle(unsigned bid)
{
    io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), 0);
    io_uring_buf_ring_advance(br, 1);
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud(KIND_RECV, 0, 0, fd));
}

static void send_chunk(int fd, unsigned bid, unsigned off, unsigned len)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, fd, bufs + (size_t)bid * BUF_SIZE + off, len, 0);
    io_uring_sqe_set_data64(sqe, ud(KIND_SEND, bid, off, fd));
}

/* Bytes still to send from buffer bid, indexed by bid (a send is per buffer). */
static unsigned pending_len[BUF_COUNT];

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    /* COOP_TASKRUN: completions are run when the loop enters the kernel
     * anyway instead of interrupting it (the ringio servers use it too). */
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(ENTRIES, &ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof(p));
        rc = io_uring_queue_init_params(ENTRIES, &ring, &p);
    }
    if (rc < 0)
        die("io_uring_queue_init_params", rc);

    size_t ring_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
    br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED)
        die("mmap", errno);
    bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
    if (!bufs)
        die("malloc", ENOMEM);
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = BUF_COUNT,
                                   .bgid = BGID};
    rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc < 0)
        die("io_uring_register_buf_ring", rc);
    io_uring_buf_ring_init(br);
    for (unsigned i = 0; i < BUF_COUNT; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(BUF_COUNT), (int)i);
    io_uring_buf_ring_advance(br, BUF_COUNT);

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0)
        die("bind/listen", errno);
    socklen_t alen = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &alen);
    printf("PORT %d\n", ntohs(a.sin_port));
    fflush(stdout);

    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(sqe, ud(KIND_ACCEPT, 0, 0, lfd));
    /* stdin EOF (the harness went away) stops the server too */
    static char stdin_byte;
    sqe = sqe_get();
    io_uring_prep_read(sqe, 0, &stdin_byte, 1, 0);
    io_uring_sqe_set_data64(sqe, ud(KIND_STDIN, 0, 0, 0));

    while (!stop) {
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR)
            die("io_uring_submit_and_wait", rc);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            uint64_t u = cqe->user_data;
            int res = cqe->res;
            switch (UD_KIND(u)) {
            case KIND_ACCEPT:
                if (res >= 0) {
                    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    arm_recv(res);
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    sqe = sqe_get();
                    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
                    io_uring_sqe_set_data64(sqe, ud(KIND_ACCEPT, 0, 0, lfd));
                }
                break;
            case KIND_RECV: {
                int fd = UD_FD(u);
                if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
                    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                    pending_len[bid] = (unsigned)res;
                    send_chunk(fd, bid, 0, (unsigned)res);
                }
                else if (cqe->flags & IORING_CQE_F_BUFFER) {
                    recycle(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    if (res == -ENOBUFS || res > 0)
                        arm_recv(fd); /* ran out of buffers: re-arm */
                    else
                        close(fd); /* EOF or error */
                }
                break;
            }
            case KIND_SEND: {
                unsigned bid = UD_BID(u), off = UD_OFF(u);
                int fd = UD_FD(u);
                if (res > 0 && off + (unsigned)res < pending_len[bid]) {
                    send_chunk(fd, bid, off + (unsigned)res, pending_len[bid] - off - (unsigned)res);
                }
                else {
                    recycle(bid); /* done, or the peer went away */
                }
                break;
            }
            case KIND_STDIN:
                stop = 1;
                break;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    close(lfd);
    return 0;
}
