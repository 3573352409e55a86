/*
 * ringio uring backend: the one compat layer over liburing versions.
 *
 * The minimum is liburing 2.3 (Debian bookworm).  Helpers that appeared in
 * later releases are provided here under ringio_ names, so that building
 * against a newer liburing that has its own versions never clashes.
 *
 * Include order matters: include this (and so <liburing.h>) BEFORE
 * "ringio/backend.h".  Both <liburing/io_uring.h> and the system's
 * <linux/io_uring.h> use the include guard LINUX_IO_URING_H; whichever comes
 * first wins, and liburing's inline helpers need liburing's own copy (a newer
 * liburing references opcodes and structs an older system uapi lacks).
 */
#ifndef RINGIO_URING_COMPAT_H
#define RINGIO_URING_COMPAT_H

#include <liburing.h>

#include <stddef.h>

#define RINGIO_COMPAT_STR_(x) #x
#define RINGIO_COMPAT_STR(x) RINGIO_COMPAT_STR_(x)

/* IO_URING_VERSION_MAJOR/MINOR (<liburing/io_uring_version.h>) are 2.4+. */
#if defined(IO_URING_VERSION_MAJOR) && defined(IO_URING_VERSION_MINOR)
#define RINGIO_LIBURING_VERSION_STRING                                                 \
    "liburing " RINGIO_COMPAT_STR(IO_URING_VERSION_MAJOR) "." RINGIO_COMPAT_STR(   \
        IO_URING_VERSION_MINOR)
#else
#define RINGIO_LIBURING_VERSION_STRING "liburing <2.4 (2.3 headers)"
#endif

/* The kernel caps a provided-buffer ring at 32768 entries (and below 65536
 * in every version), and the count must be a power of two. */
#define RINGIO_BUF_RING_MAX_ENTRIES 32768u

/* True when entries is a power of two in 1..RINGIO_BUF_RING_MAX_ENTRIES. */
static inline int ringio_buf_ring_entries_valid(unsigned entries)
{
    return entries != 0 && entries <= RINGIO_BUF_RING_MAX_ENTRIES &&
           (entries & (entries - 1)) == 0;
}

/* Bytes mapped for a ring of `entries` slots: whole pages, so the address
 * handed to the kernel is page aligned and munmap() covers exactly the map. */
size_t ringio_buf_ring_size(unsigned entries);

/*
 * Like liburing 2.4's io_uring_setup_buf_ring() (flags = 0): map anonymous
 * memory for `entries` io_uring_buf slots, reset its tail and register it for
 * buffer group bgid.  On failure returns NULL with *err = -errno and nothing
 * mapped or registered.  entries must satisfy ringio_buf_ring_entries_valid().
 */
struct io_uring_buf_ring *ringio_setup_buf_ring(struct io_uring *ring, unsigned entries,
                                                unsigned bgid, int *err);

/*
 * Like liburing 2.4's io_uring_free_buf_ring(): unregister group bgid, then
 * unmap.  When the kernel refuses to unregister, the memory stays mapped
 * (the kernel may still be reading it) and -errno is returned.
 */
int ringio_free_buf_ring(struct io_uring *ring, struct io_uring_buf_ring *br, unsigned entries,
                         unsigned bgid);

/* Unmap a ring without unregistering it: only after io_uring_queue_exit(),
 * when the kernel has dropped its registration. */
void ringio_unmap_buf_ring(struct io_uring_buf_ring *br, unsigned entries);

#endif /* RINGIO_URING_COMPAT_H */
