/*
 * The client of the "echo" scenario of `python -m ringio bench`: the same
 * load for every server (ringio, uring-api, asyncio, uvloop, C liburing).
 *
 *   echo_client PORT CONNS MSGS SIZE [spin]
 *
 * Opens CONNS TCP connections to 127.0.0.1:PORT (non-blocking, TCP_NODELAY,
 * plain epoll: no io_uring), does one untimed warm-up round trip on each,
 * then on every connection MSGS request/response round trips of SIZE bytes:
 * send a message, read back exactly SIZE bytes, check every byte, send the
 * next.  Prints {"messages": CONNS*MSGS, "seconds": t, "ok": bool}.
 *
 * With "spin" the client polls epoll without sleeping (for a client pinned to
 * a CPU of its own): its wake-up latency then never paces the server, so the
 * rate measures the server rather than the ping-pong of two sleepers.
 */
#define _GNU_SOURCE
#define BENCH_PROG "echo_client"
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    long round;     /* current round trip: 0 is the warm-up */
    size_t sent, got;
    unsigned char *out, *in;
};

static size_t size;
static long msgs;

static void fill(struct conn *c, long idx)
{
    for (size_t i = 0; i < size; i++)
        c->out[i] = (unsigned char)(idx * 31 + c->round * 7 + (long)i);
    c->sent = c->got = 0;
}

/* Push what can be sent; returns -1 on error. */
static int pump_out(struct conn *c)
{
    while (c->sent < size) {
        ssize_t n = send(c->fd, c->out + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->sent += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    check_usage(argc == 5 || (argc == 6 && strcmp(argv[5], "spin") == 0),
                "PORT CONNS MSGS SIZE [spin]");
    int port = atoi(argv[1]);
    int nconn = atoi(argv[2]);
    msgs = atol(argv[3]);
    size = (size_t)atol(argv[4]);
    int spin = argc == 6;
    check_args(nconn > 0 && msgs > 0 && size != 0, "CONNS, MSGS and SIZE must be > 0");
    struct conn *cs = calloc((size_t)nconn, sizeof(*cs));
    int ep = epoll_create1(0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &cs[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("connect", errno);
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int fl = 1;
        ioctl(c->fd, FIONBIO, &fl);
        c->out = malloc(size);
        c->in = malloc(size);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl", errno);
    }

    /* Round 0 (warm-up) on every connection, untimed; then the timed rounds. */
    double t0 = 0;
    int ok = 1;
    for (int phase = 0; phase < 2; phase++) {
        long target = phase == 0 ? 1 : msgs + 1;
        int active = nconn;
        if (phase == 1)
            t0 = now();
        for (int i = 0; i < nconn; i++) {
            fill(&cs[i], i);
            if (pump_out(&cs[i]) < 0)
                die("send", errno);
        }
        struct epoll_event evs[256];
        double idle_since = now();
        while (active > 0) {
            int n = epoll_wait(ep, evs, 256, spin ? 0 : 10000);
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 && spin && now() - idle_since < 10.0)
                continue;
            idle_since = now();
            if (n <= 0) {
                fprintf(stderr, "echo_client: no progress for 10 s (%d connections waiting)\n",
                        active);
                return 1;
            }
            for (int k = 0; k < n; k++) {
                struct conn *c = &cs[evs[k].data.u32];
                if (c->sent < size && pump_out(c) < 0)
                    die("send", errno);
                for (;;) {
                    ssize_t r = recv(c->fd, c->in + c->got, size - c->got, 0);
                    if (r < 0) {
                        if (errno == EAGAIN)
                            break;
                        die("recv", errno);
                    }
                    if (r == 0) {
                        fprintf(stderr, "echo_client: server closed a connection\n");
                        return 1;
                    }
                    c->got += (size_t)r;
                    if (c->got < size)
                        continue;
                    if (memcmp(c->in, c->out, size) != 0)
                        ok = 0;
                    c->round++;
                    if (c->round == target) {
                        active--;
                        break;
                    }
                    fill(c, evs[k].data.u32);
                    if (pump_out(c) < 0)
                        die("send", errno);
                    break; /* the echo is not back yet: epoll says when it is */
                }
            }
        }
    }
    double t1 = now();
    for (int i = 0; i < nconn; i++)
        close(cs[i].fd);
    printf("{\"messages\": %ld, \"seconds\": %.9f, \"ok\": %s}\n", (long)nconn * msgs, t1 - t0,
           ok ? "true" : "false");
    return ok ? 0 : 1;
}
