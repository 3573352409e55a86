/*
 * ringio uring backend: helpers missing from liburing 2.3.  See compat.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* <liburing.h> needs cpu_set_t; meson passes it too */
#endif

#include "compat.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

size_t ringio_buf_ring_size(unsigned entries)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = (size_t)entries * sizeof(struct io_uring_buf);

    return (len + page - 1) / page * page;
}

struct io_uring_buf_ring *ringio_setup_buf_ring(struct io_uring *ring, unsigned entries,
                                                unsigned bgid, int *err)
{
    size_t len = ringio_buf_ring_size(entries);
    struct io_uring_buf_ring *br;
    void *mem;
    int ret;

    /* Private anonymous memory, as liburing does: the kernel pins these pages
     * at registration, and pinned pages are copied eagerly for a fork()ed
     * child, so the parent keeps the pages the kernel reads. */
    mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        *err = -errno;
        return NULL;
    }
    br = mem;
    /* The kernel reads the tail only once the ring is registered; a fresh
     * anonymous map is zero anyway, this just makes the invariant explicit. */
    io_uring_buf_ring_init(br);

    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)mem,
        .ring_entries = entries,
        .bgid = (uint16_t)bgid,
    };
    ret = io_uring_register_buf_ring(ring, &reg, 0);
    if (ret < 0) {
        munmap(mem, len);
        *err = ret;
        return NULL;
    }
    *err = 0;
    return br;
}

int ringio_free_buf_ring(struct io_uring *ring, struct io_uring_buf_ring *br, unsigned entries,
                         unsigned bgid)
{
    int ret = io_uring_unregister_buf_ring(ring, (int)bgid);

    if (ret < 0)
        return ret;
    ringio_unmap_buf_ring(br, entries);
    return 0;
}

void ringio_unmap_buf_ring(struct io_uring_buf_ring *br, unsigned entries)
{
    munmap(br, ringio_buf_ring_size(entries));
}
