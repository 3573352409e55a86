/*
 * Provided-buffer rings for multishot receives.
 *
 * Each multishot receive owns one ring of buf_count buffers of buf_size
 * bytes, registered under a buffer group id (bgid) unique within the core.
 * The kernel picks a buffer per CQE (IORING_CQE_F_BUFFER | bid << 16); the
 * core hands the bytes to the deliver callback and puts the buffer back at
 * once, so a slow Python consumer never pins kernel buffers.
 */
#include "internal.h"

#include <stdlib.h>

static int bgid_alloc(struct ringio_core *c, uint16_t *out)
{
    for (unsigned w = 0; w < sizeof(c->bgid_used) / sizeof(c->bgid_used[0]); w++) {
        if (c->bgid_used[w] == UINT64_MAX)
            continue;
        unsigned bit = (unsigned)__builtin_ctzll(~c->bgid_used[w]);
        c->bgid_used[w] |= 1ull << bit;
        *out = (uint16_t)(w * 64 + bit);
        return 0;
    }
    return -ENOSPC;
}

static void bgid_free(struct ringio_core *c, uint16_t bgid)
{
    c->bgid_used[bgid / 64] &= ~(1ull << (bgid % 64));
}

/* Make entries [0, tail) visible to the kernel.  Release ordering: the
 * buffer descriptors must be visible before the kernel sees the new tail. */
static void publish_tail(struct ringio_bufring *r)
{
    __atomic_store_n(&r->br->tail, r->tail, __ATOMIC_RELEASE);
}

static void add_buf(struct ringio_bufring *r, unsigned bid)
{
    struct io_uring_buf *buf = &r->br->bufs[r->tail & (r->buf_count - 1)];
    buf->addr = (uint64_t)(uintptr_t)(r->mem + (size_t)bid * r->buf_size);
    buf->len = r->buf_size;
    buf->bid = (uint16_t)bid;
    r->tail++;
}

int bufring_create(struct ringio_core *c, unsigned buf_size, unsigned buf_count,
                   struct ringio_bufring **out)
{
    if (buf_size == 0 || buf_count == 0 || buf_count > RINGIO_MAX_BUF_COUNT ||
        (buf_count & (buf_count - 1)) != 0 ||
        (uint64_t)buf_size * buf_count > RINGIO_MAX_BUFRING_BYTES)
        return -EINVAL;

    struct ringio_bufring *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->buf_count = buf_count;
    r->buf_size = buf_size;
    r->mem = malloc((size_t)buf_size * buf_count);
    int rc = r->mem ? bgid_alloc(c, &r->bgid) : -ENOMEM;
    if (rc < 0)
        goto fail_mem;
    rc = c->b->ops->register_buf_ring(c->b, buf_count, r->bgid, &r->br);
    if (rc < 0)
        goto fail_bgid;
    for (unsigned bid = 0; bid < buf_count; bid++)
        add_buf(r, bid);
    publish_tail(r);
    *out = r;
    return 0;

fail_bgid:
    bgid_free(c, r->bgid);
fail_mem:
    free(r->mem);
    free(r);
    return rc;
}

void bufring_destroy(struct ringio_core *c, struct ringio_bufring *r)
{
    /* After close the backend is gone and took the registration with it. */
    if (c->b)
        c->b->ops->unregister_buf_ring(c->b, r->br, r->buf_count, r->bgid);
    bgid_free(c, r->bgid);
    free(r->mem);
    free(r);
}

const void *bufring_data(const struct ringio_bufring *r, unsigned bid)
{
    return r->mem + (size_t)bid * r->buf_size;
}

void bufring_recycle(struct ringio_bufring *r, unsigned bid)
{
    add_buf(r, bid);
    publish_tail(r);
}
