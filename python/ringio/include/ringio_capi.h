/*
 * ringio C API: a function table exported as the capsule
 * "ringio._ringio._C_API", for C extensions that drive rings without going
 * through Python attribute lookups.  `ringio.get_include()` is the directory
 * holding this header; it needs nothing but Python.h, <sys/socket.h> and the
 * C standard headers.
 *
 *     #include <ringio_capi.h>
 *
 *     static const RingioCAPI *api;     // in the module's exec slot:
 *     api = RingioCAPI_Import();        // NULL with ImportError set
 *
 *     PyObject *ring = api->ring_new(8, 0);
 *     PyObject *op = api->ring_submit_send(ring, fd, payload, NULL, 0);
 *     PyObject *done = api->ring_wait(ring, 1.0);   // `op` itself, or None
 *     int32_t res;
 *     api->completion_res(done, &res);              // bytes sent or -errno
 *     api->ring_close(ring);
 *
 * ---- Rules for every member ----
 *
 * GIL: call every function with the GIL held (an attached thread state).
 * The functions that block release it themselves while they wait:
 * probe and ring_new (ring setup, runtime probes), ring_close (reaping
 * cancelled operations, at most one second), ring_wait, ring_wait_many and
 * ring_serve_completions.
 *
 * References: PyObject * arguments are borrowed; a function that keeps an
 * object takes its own reference (a submitted operation keeps user_data, its
 * buffers exported with PyObject_GetBuffer and its address until its final
 * completion).  Every PyObject * result is a NEW reference, or NULL with an
 * exception set.  user_data, ancdata and address arguments documented as
 * optional may be NULL, which means None.
 *
 * Errors: functions returning int return 0 (or the documented non-negative
 * value) on success and -1 with an exception set on failure; the same
 * exceptions as the Python methods: TypeError / ValueError for bad arguments
 * (a ring or completion argument of the wrong type raises TypeError),
 * ringio.RingClosed, ringio.SubmissionQueueFull, OSError.  A completion's
 * `res` is raw: >= 0 or a negative errno, as in the kernel's CQE.
 *
 * Submissions: each ring_submit_* is the Ring.submit_* method of the same
 * name with converted arguments, in the same order; it returns the pending
 * Completion.  fd arguments are plain descriptors (>= 0); `flags` are MSG_*
 * flags for data operations, SOCK_NONBLOCK | SOCK_CLOEXEC for accept and
 * socket.  Addresses are Python objects, as for the Python methods:
 * (host, port) for AF_INET, (host, port[, flowinfo[, scope_id]]) for
 * AF_INET6 (numeric hosts only: a submit never resolves names), a str or
 * bytes path for AF_UNIX (a leading NUL byte names an abstract socket); the
 * family is the socket's.  sockaddr_to_address() and address_to_sockaddr()
 * convert from and to struct sockaddr.
 *
 * ---- Compatibility ----
 *
 * abi_version changes only when a member that exists changes its signature,
 * meaning or position; RingioCAPI_Import() refuses a table whose abi_version
 * differs from RINGIO_CAPI_ABI_VERSION.  New members are only ever APPENDED
 * (and the version stays), so a client compiled against an older header keeps
 * working with a newer ringio: struct_size tells which members the provider
 * has.  RingioCAPI_Import() requires every member of this header;
 * RingioCAPI_ImportAtLeast(RINGIO_CAPI_SIZE_1) accepts an older provider, and
 * RINGIO_CAPI_HAS(api, member) then says whether a member may be used.
 * feature_flags names the surface areas the provider implements
 * (RINGIO_CAPI_FEATURE_*); it says nothing about what the running kernel
 * supports: use probe() for that.
 */
#ifndef RINGIO_CAPI_H
#define RINGIO_CAPI_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RINGIO_CAPI_CAPSULE_NAME "ringio._ringio._C_API"
#define RINGIO_CAPI_ABI_VERSION 1u

/* Surface areas (feature_flags). */
/* Rings (lifecycle, metadata, flush), nop / timeout / cancel / poll, wait,
 * wait_many, break_wait, completion inspection, probe. */
#define RINGIO_CAPI_FEATURE_CORE (1ull << 0)
/* Every socket submission and the address converters. */
#define RINGIO_CAPI_FEATURE_SOCKETS (1ull << 1)
/* Python and C serving callbacks, serve_completions, stop/reset_serving. */
#define RINGIO_CAPI_FEATURE_SERVING (1ull << 2)

/* Operation kinds: what completion_kind() returns (ringio.COMPLETION_KIND_* in
 * Python).  The numbering never changes. */
#define RINGIO_CAPI_KIND_NOP 0
#define RINGIO_CAPI_KIND_TIMEOUT 1
#define RINGIO_CAPI_KIND_CANCEL 2
#define RINGIO_CAPI_KIND_POLL 3
#define RINGIO_CAPI_KIND_RECV 4
#define RINGIO_CAPI_KIND_RECV_MULTISHOT 5
#define RINGIO_CAPI_KIND_SEND 6
#define RINGIO_CAPI_KIND_SEND_ZC 7
#define RINGIO_CAPI_KIND_RECVMSG 8
#define RINGIO_CAPI_KIND_SENDTO 9
#define RINGIO_CAPI_KIND_SENDMSG 10
#define RINGIO_CAPI_KIND_SENDMSG_ZC 11
#define RINGIO_CAPI_KIND_ACCEPT 12
#define RINGIO_CAPI_KIND_ACCEPT_MULTISHOT 13
#define RINGIO_CAPI_KIND_CONNECT 14
#define RINGIO_CAPI_KIND_SHUTDOWN 15
#define RINGIO_CAPI_KIND_CLOSE 16
#define RINGIO_CAPI_KIND_SOCKET 17

/* File operations (kinds only: they are submitted through Python methods). */
#define RINGIO_CAPI_KIND_OPENAT 18
#define RINGIO_CAPI_KIND_READ 19
#define RINGIO_CAPI_KIND_WRITE 20
#define RINGIO_CAPI_KIND_READV 21
#define RINGIO_CAPI_KIND_WRITEV 22
#define RINGIO_CAPI_KIND_FSYNC 23
#define RINGIO_CAPI_KIND_FALLOCATE 24
#define RINGIO_CAPI_KIND_STATX 25
#define RINGIO_CAPI_KIND_UNLINKAT 26
#define RINGIO_CAPI_KIND_RENAMEAT 27
#define RINGIO_CAPI_KIND_MKDIRAT 28

/*
 * A C serving callback (ring_set_c_callback).  A serve_completions() worker
 * calls it, with the GIL held, for every completion it reaps, instead of
 * Ring.callback.  `ring` and `completion` are borrowed for the duration of
 * the call (Py_INCREF what you keep); `user` is the pointer given to
 * ring_set_c_callback.  Return 0, or -1 with an exception set: like an
 * exception raised by a Python callback, an Exception is reported through
 * sys.unraisablehook (the object named is the ring) and the whole worker
 * group stops; a BaseException that is not an Exception (KeyboardInterrupt,
 * SystemExit) stops the group and is raised by serve_completions in that
 * worker.  -1 without an exception is reported as SystemError, and so is an
 * exception left set with a return of 0.
 *
 * Several workers may run it concurrently if it releases the GIL; it must
 * not call ring_wait / ring_wait_many / ring_close on its ring (they raise
 * RuntimeError while workers run), but may submit and call
 * ring_stop_serving.
 */
typedef int (*RingioCCallback)(PyObject *ring, PyObject *completion, void *user);

typedef struct RingioCAPI {
    uint32_t abi_version;   /* RINGIO_CAPI_ABI_VERSION of the provider */
    uint32_t struct_size;   /* sizeof(RingioCAPI) of the provider: which members exist */
    uint64_t feature_flags; /* RINGIO_CAPI_FEATURE_* */

    /* ======== table revision 1 (RINGIO_CAPI_SIZE_1) ======== */

    /* ---- rings (CORE) ---- */
    /* ringio.Ring(entries, flags): a new Ring.  entries is the SQ depth
     * (1..32768), flags IORING_SETUP_* bits.  OSError explains a refusal. */
    PyObject *(*ring_new)(unsigned entries, unsigned flags);
    /* 1 if obj is a ringio.Ring (or a subclass), else 0; never fails. */
    int (*ring_check)(PyObject *obj);
    /* Ring.close(): cancels what is in flight and releases everything;
     * idempotent; RuntimeError while serving workers run.  Also clears the
     * C serving callback.  Releases the GIL while it waits. */
    int (*ring_close)(PyObject *ring);
    /* Ring.fd (>= 0); RingClosed on a closed ring. */
    int (*ring_fd)(PyObject *ring);
    /* Ring.submit_nop(user_data): the pending Completion.  user_data may be
     * NULL. */
    PyObject *(*ring_submit_nop)(PyObject *ring, PyObject *user_data);
    /* Ring.wait(timeout): one Completion (for a one-shot operation the very
     * object its submit returned; a new one for each multishot leg), or
     * Py_None (new reference) when the timeout passes or break_wait() is
     * called.  timeout in seconds; < 0 (or NaN) waits without limit.
     * Releases the GIL while blocked; a signal handler's exception
     * (KeyboardInterrupt) ends the wait with -1/NULL. */
    PyObject *(*ring_wait)(PyObject *ring, double timeout);
    /* Ring.break_wait(): wake a waiter (or the next wait). */
    int (*ring_break_wait)(PyObject *ring);

    /* ---- completions (CORE) ---- */
    /* 1 if obj is a ringio.Completion, else 0; never fails. */
    int (*completion_check)(PyObject *obj);
    /* Completion.user_data: new reference (None when none was given). */
    PyObject *(*completion_user_data)(PyObject *completion);
    /* Completion.result, the kind-specific payload: new reference; None
     * while pending or when res < 0. */
    PyObject *(*completion_result)(PyObject *completion);
    /* Completion.res into *res (0 while pending). */
    int (*completion_res)(PyObject *completion, int32_t *res);
    /* Completion.flags (IORING_CQE_F_*) into *flags. */
    int (*completion_flags)(PyObject *completion, uint32_t *flags);
    /* Completion.sequence (multishot leg number, from 0) into *sequence. */
    int (*completion_sequence)(PyObject *completion, uint32_t *sequence);
    /* Completion.kind: a COMPLETION_KIND_* value (>= 0), or -1. */
    int (*completion_kind)(PyObject *completion);
    /* Completion.more: 1 while a multishot operation stays armed, 0, or -1. */
    int (*completion_more)(PyObject *completion);
    /* Completion.done: 1 once complete, 0 while pending, or -1. */
    int (*completion_done)(PyObject *completion);

    /* ======== table revision 2 (RINGIO_CAPI_SIZE_2) ======== */

    /* ---- probe and rings (CORE) ---- */
    /* ringio.probe(entries, flags): a new dict, {} when this process cannot
     * create a ring. */
    PyObject *(*probe)(unsigned entries, unsigned flags);
    /* ringio.Ring(entries, flags, **kwargs): kwargs is NULL (or None) or a dict of the
     * keyword-only arguments (cq_entries, backend, ...), so that options
     * added later need no new member. */
    PyObject *(*ring_new_ex)(unsigned entries, unsigned flags, PyObject *kwargs);
    /* Ring.closed: 1 / 0, or -1 (not a Ring). */
    int (*ring_closed)(PyObject *ring);
    /* Ring.sq_entries / cq_entries / features (IORING_FEAT_*) / setup_flags
     * (IORING_SETUP_*) into *out; RingClosed on a closed ring. */
    int (*ring_sq_entries)(PyObject *ring, unsigned *out);
    int (*ring_cq_entries)(PyObject *ring, unsigned *out);
    int (*ring_features)(PyObject *ring, unsigned *out);
    int (*ring_setup_flags)(PyObject *ring, unsigned *out);
    /* Ring.submit(): hand staged submissions (batch mode) to the kernel now;
     * returns how many it took (>= 0). */
    int (*ring_submit)(PyObject *ring);
    /* Ring.wait_many(max, timeout): a new list of every completion ready, up
     * to max (>= 1): at least one unless the timeout passes or break_wait()
     * is called.  timeout < 0 waits without limit.  Releases the GIL. */
    PyObject *(*ring_wait_many)(PyObject *ring, unsigned max, double timeout);

    /* ---- more submissions (CORE) ---- */
    /* A relative timeout of `seconds` (finite, >= 0): res -ETIME when it
     * expired, -ECANCELED when cancelled. */
    PyObject *(*ring_submit_timeout)(PyObject *ring, double seconds, PyObject *user_data);
    /* Cancel `target` (a Completion submitted to this ring).  flags: 0 or
     * IORING_ASYNC_CANCEL_ALL. */
    PyObject *(*ring_submit_cancel)(PyObject *ring, PyObject *target, PyObject *user_data,
                                    unsigned flags);
    /* Poll fd for the POLL* events in mask; multishot != 0 keeps it armed
     * (each event is a new Completion leg). */
    PyObject *(*ring_submit_poll)(PyObject *ring, int fd, unsigned mask, PyObject *user_data,
                                  int multishot);

    /* ---- socket submissions (SOCKETS) ---- */
    /* recv into buf (a writable C-contiguous buffer, exported until the
     * completion).  result: bytes received. */
    PyObject *(*ring_submit_recv)(PyObject *ring, int fd, PyObject *buf, PyObject *user_data,
                                  int flags);
    /* Multishot recv into an internal ring of buffer_count (a power of two,
     * <= 32768) buffers of buffer_size bytes; each leg's result is a bytes
     * object; legs numbered from `sequence`. */
    PyObject *(*ring_submit_recv_multishot)(PyObject *ring, int fd, size_t buffer_size,
                                            unsigned buffer_count, PyObject *user_data,
                                            int flags, uint32_t sequence);
    /* send data (any C-contiguous buffer; not copied).  result: bytes sent. */
    PyObject *(*ring_submit_send)(PyObject *ring, int fd, PyObject *data, PyObject *user_data,
                                  int flags);
    /* Zero-copy send; zc_flags: IORING_SEND_ZC_REPORT_USAGE,
     * IORING_RECVSEND_POLL_FIRST.  data is released after the notification. */
    PyObject *(*ring_submit_send_zc)(PyObject *ring, int fd, PyObject *data,
                                     PyObject *user_data, int flags, unsigned zc_flags);
    /* recvmsg into buf (one writable buffer or a sequence of them); with
     * ancbufsize > 0, ancillary data too (completion_ancdata).  result: the
     * sender's address or None. */
    PyObject *(*ring_submit_recvmsg)(PyObject *ring, int fd, PyObject *buf, PyObject *user_data,
                                     int flags, size_t ancbufsize);
    /* sendto: data is one buffer, address is required. */
    PyObject *(*ring_submit_sendto)(PyObject *ring, int fd, PyObject *data, PyObject *address,
                                    PyObject *user_data, int flags);
    /* sendmsg: data is one buffer or a sequence of them; address (NULL for a
     * connected socket) and ancdata (an iterable of (level, type, bytes),
     * or NULL) are optional. */
    PyObject *(*ring_submit_sendmsg)(PyObject *ring, int fd, PyObject *data, PyObject *address,
                                     PyObject *user_data, int flags, PyObject *ancdata);
    PyObject *(*ring_submit_sendmsg_zc)(PyObject *ring, int fd, PyObject *data,
                                        PyObject *address, PyObject *user_data, int flags,
                                        unsigned zc_flags, PyObject *ancdata);
    /* accept: result (new_fd, peer_address); the new fd is the caller's. */
    PyObject *(*ring_submit_accept)(PyObject *ring, int fd, PyObject *user_data, int flags);
    /* Multishot accept: one leg per connection, result the new fd. */
    PyObject *(*ring_submit_accept_multishot)(PyObject *ring, int fd, PyObject *user_data,
                                              int flags, uint32_t sequence);
    /* connect fd to address (required).  result None, res 0 or -errno. */
    PyObject *(*ring_submit_connect)(PyObject *ring, int fd, PyObject *address,
                                     PyObject *user_data);
    /* shutdown(fd, how): how is SHUT_RD, SHUT_WR or SHUT_RDWR. */
    PyObject *(*ring_submit_shutdown)(PyObject *ring, int fd, int how, PyObject *user_data);
    PyObject *(*ring_submit_close)(PyObject *ring, int fd, PyObject *user_data);
    /* socket(domain, type | flags, protocol): result the new fd. */
    PyObject *(*ring_submit_socket)(PyObject *ring, int domain, int type, int protocol,
                                    int flags, PyObject *user_data);

    /* ---- serving (SERVING) ---- */
    /* Ring.callback = callback (a callable, or NULL / None to clear). */
    int (*ring_set_callback)(PyObject *ring, PyObject *callback);
    /* Install fn as the ring's C serving callback with `user` as its last
     * argument (see RingioCCallback), or clear it with fn == NULL.  While set
     * it takes precedence over Ring.callback.  The ring stores `user` but
     * does not own it: keep it valid until the callback is cleared or the
     * ring is closed (ring_close clears it).  Clearing does not wait for a
     * call already running on another worker: to free `user` safely, stop
     * the workers (ring_stop_serving and join them) first.  Workers that
     * keep serving after it is cleared call Ring.callback (none set: the
     * group stops with a RuntimeError reported as unraisable).  Installing
     * on a closed ring raises RingClosed; clearing never fails. */
    int (*ring_set_c_callback)(PyObject *ring, RingioCCallback fn, void *user);
    /* Ring.serve_completions(): serve on the calling thread until
     * ring_stop_serving(); 0 then, -1 with the exception of a propagated
     * BaseException, RingClosed, ...  Releases the GIL while waiting.
     * RuntimeError if neither callback is set. */
    int (*ring_serve_completions)(PyObject *ring);
    /* Ring.stop_serving() / Ring.reset_serving(). */
    int (*ring_stop_serving)(PyObject *ring);
    int (*ring_reset_serving)(PyObject *ring);

    /* ---- more completion inspection (CORE) ---- */
    /* Completion.zc_copied into *copied: 1 / 0, or -1 when unknown. */
    int (*completion_zc_copied)(PyObject *completion, int *copied);
    /* Completion.ancdata: new reference to a list of (level, type, bytes)
     * for a finished recvmsg with ancbufsize > 0, else None. */
    PyObject *(*completion_ancdata)(PyObject *completion);
    /* Completion.msg_flags: 1 and *msg_flags set for a finished recvmsg, 0
     * (None in Python) otherwise, -1 on error. */
    int (*completion_msg_flags)(PyObject *completion, int *msg_flags);

    /* ---- addresses (SOCKETS) ---- */
    /* The Python form of an AF_INET / AF_INET6 / AF_UNIX address (new
     * reference); len must cover the family's structure (ValueError);
     * len == 0 gives None. */
    PyObject *(*sockaddr_to_address)(const struct sockaddr *addr, socklen_t len);
    /* Convert the Python form of an address of `family` into *out and *len
     * (TypeError / ValueError as the submit calls). */
    int (*address_to_sockaddr)(PyObject *address, int family, struct sockaddr_storage *out,
                               socklen_t *len);
} RingioCAPI;

/* struct_size of each table revision. */
#define RINGIO_CAPI_SIZE_1 (offsetof(RingioCAPI, completion_done) + sizeof(void *))
#define RINGIO_CAPI_SIZE_2 (offsetof(RingioCAPI, address_to_sockaddr) + sizeof(void *))

/* Whether the provider's table has `member` (for RingioCAPI_ImportAtLeast). */
#define RINGIO_CAPI_HAS(api, member)                                                       \
    ((size_t)(api)->struct_size >= offsetof(RingioCAPI, member) + sizeof((api)->member))

/* Import the table; NULL with ImportError unless its abi_version is ours and
 * it has at least min_size bytes of members. */
static inline const RingioCAPI *RingioCAPI_ImportAtLeast(size_t min_size)
{
    const RingioCAPI *api = (const RingioCAPI *)PyCapsule_Import(RINGIO_CAPI_CAPSULE_NAME, 0);
    if (api == NULL)
        return NULL;
    if (api->abi_version != RINGIO_CAPI_ABI_VERSION || (size_t)api->struct_size < min_size) {
        PyErr_Format(PyExc_ImportError,
                     "ringio C API mismatch: the installed ringio has ABI %u with a %u-byte "
                     "table; this extension was compiled for ABI %u and needs %u bytes",
                     (unsigned)api->abi_version, (unsigned)api->struct_size,
                     (unsigned)RINGIO_CAPI_ABI_VERSION, (unsigned)min_size);
        return NULL;
    }
    return api;
}

/* Import the table, requiring every member of this header. */
static inline const RingioCAPI *RingioCAPI_Import(void)
{
    return RingioCAPI_ImportAtLeast(sizeof(RingioCAPI));
}

#ifdef __cplusplus
}
#endif
#endif /* RINGIO_CAPI_H */
