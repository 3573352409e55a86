/*
 * ringio._ringio: internal declarations shared by the extension's sources.
 *
 * One file per concern:
 *   module.c       multi-phase init, module state, exceptions, constants, argument helpers
 *   ring.c         the Ring type: lifecycle, locks, wait/wait_many/break_wait, serving, batch
 *   completion.c   the Completion type, turning core events into Completions
 *   owner.c        the deferred release machinery and the generic submit path
 *   probe.c        probe(), is_available(), unavailable_reason()
 *   submit_basic.c submit_nop / submit_timeout / submit_cancel / submit_poll
 *   submit_socket.c recv / recv_multishot / send / send_zc / accept / accept_multishot /
 *                  connect / shutdown / close / socket, and the shared buffer export
 *   submit_msg.c   recvmsg / sendto / sendmsg / sendmsg_zc (msghdr-based operations)
 *   submit_file.c  openat / read / write / readv / writev / fsync / fallocate / statx /
 *                  unlinkat / renameat / mkdirat, registered files and buffers, link()
 *   sockaddr.c     socket addresses and ancillary data <-> Python objects
 *   capi.c         the ringio._ringio._C_API capsule (ringio/include/ringio_capi.h)
 *
 * A new family of operations (sockets: submit_socket.c) plugs in by
 *   - declaring its Ring methods here and listing them in a RINGIO_*_METHODS macro
 *     that ring.c puts into the Ring method table,
 *   - describing each operation kind with a ringio_kind_ops (result builder and
 *     resource release), stored in the Completion,
 *   - keeping what the kernel may touch in the Completion (the timespec `ts`,
 *     the Py_buffer `view`, or a heap record on `extra` freed by ops->release),
 *     and calling ringio_submit() with a callback that invokes the matching
 *     ringio_submit_* of the core.
 *
 * Locking (see core.h for the core's side):
 *   ring lock  (RingioRing.lock)      every core call except ringio_core_wait_block.
 *              Taken with the GIL held; its holders never wait for the GIL and
 *              never run Python code, so GIL -> ring lock is the only order.
 *   wait lock  (RingioRing.wait_lock) serialises waiters (wait, wait_many,
 *              serve_completions, close).  Taken with the GIL released, so
 *              wait lock -> GIL -> ring lock.
 * Nothing runs Python code while holding the ring lock: the core's release
 * callback only queues the Completion on RingioRing.released, and the deliver
 * callback only allocates fresh objects with the cyclic GC disabled.  The queue
 * is emptied (PyBuffer_Release, Py_DECREF, ...) after the lock is dropped.
 */
#ifndef RINGIO_EXT_H
#define RINGIO_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sys/socket.h>

#include "ringio/backend.h"
#include "ringio/core.h"

/* ---- operation kinds ---------------------------------------------------- */

/* Values of Completion.kind (exported as COMPLETION_KIND_*).  The numbering is
 * fixed: kinds that are not implemented yet keep their slot so that adding
 * them never renumbers the public constants. */
enum ringio_kind {
    RINGIO_KIND_NOP = 0,
    RINGIO_KIND_TIMEOUT = 1,
    RINGIO_KIND_CANCEL = 2,
    RINGIO_KIND_POLL = 3,
    RINGIO_KIND_RECV = 4,
    RINGIO_KIND_RECV_MULTISHOT = 5,
    RINGIO_KIND_SEND = 6,
    RINGIO_KIND_SEND_ZC = 7,
    RINGIO_KIND_RECVMSG = 8,
    RINGIO_KIND_SENDTO = 9,
    RINGIO_KIND_SENDMSG = 10,
    RINGIO_KIND_SENDMSG_ZC = 11,
    RINGIO_KIND_ACCEPT = 12,
    RINGIO_KIND_ACCEPT_MULTISHOT = 13,
    RINGIO_KIND_CONNECT = 14,
    RINGIO_KIND_SHUTDOWN = 15,
    RINGIO_KIND_CLOSE = 16,
    RINGIO_KIND_SOCKET = 17,
    /* files (submit_file.c) */
    RINGIO_KIND_OPENAT = 18,
    RINGIO_KIND_READ = 19,
    RINGIO_KIND_WRITE = 20,
    RINGIO_KIND_READV = 21,
    RINGIO_KIND_WRITEV = 22,
    RINGIO_KIND_FSYNC = 23,
    RINGIO_KIND_FALLOCATE = 24,
    RINGIO_KIND_STATX = 25,
    RINGIO_KIND_UNLINKAT = 26,
    RINGIO_KIND_RENAMEAT = 27,
    RINGIO_KIND_MKDIRAT = 28,
    RINGIO_KIND_COUNT
};

/* Lower-case names of the kinds, for repr(); indexed by enum ringio_kind. */
extern const char *const ringio_kind_names[RINGIO_KIND_COUNT];

/* ---- module state ------------------------------------------------------- */

typedef struct ringio_state {
    PyTypeObject *ring_type;
    PyTypeObject *completion_type;
    PyTypeObject *batch_type;
    PyTypeObject *link_type;   /* submit_file.c: Ring.link() */
    PyTypeObject *statx_type;  /* submit_file.c: ringio.StatxResult */
    PyObject *SubmissionQueueFull; /* RuntimeError subclass */
    PyObject *RingClosed;          /* RuntimeError subclass */
    PyObject *BackendFallbackWarning; /* RuntimeWarning subclass */
    /* Memory of dead Completions kept for reuse (completion.c), linked by
     * next_released; GIL. */
    struct RingioCompletion *free_completions;
    unsigned n_free_completions;
} ringio_state;

extern PyModuleDef ringio_module_def;

/* The module state for an instance of one of our types (or a subclass);
 * NULL with TypeError set when tp is not ours. */
ringio_state *ringio_state_from_type(PyTypeObject *tp);

/* ---- Completion --------------------------------------------------------- */

typedef struct RingioCompletion RingioCompletion;
typedef struct RingioRing RingioRing;

/* What an operation kind does at completion time. */
typedef struct ringio_kind_ops {
    uint8_t kind; /* enum ringio_kind */
    /* Build Completion.result for one event: a new reference, or NULL with an
     * exception set (the event then stays queued in the core).  Called with
     * the ring lock and the GIL held and the cyclic GC disabled: it may only
     * allocate fresh objects and read the Completion; it must not run Python
     * code nor drop references to existing objects.
     * NULL for kinds whose result is just res (res if res >= 0, else None):
     * the result is then the res object the reap builds anyway (or None).
     * Only kinds whose payload must
     * be captured when the event is reaped (copied bytes, an address the
     * kernel wrote, ancillary data) need a make_result. */
    PyObject *(*make_result)(RingioCompletion *c, const struct ringio_event *ev);
    /* Optional: release per-operation resources other than `view` (which is
     * released generically).  Called with the GIL and no lock, once, after the
     * core released the operation. */
    void (*release)(RingioCompletion *c);
} ringio_kind_ops;

/* The ownership record handed to the core, embedded in the Completion, with
 * an explicit back-pointer (no container_of arithmetic on PyObject structs). */
struct ringio_py_owner {
    struct ringio_owner base; /* must stay first: the core sees &base */
    RingioCompletion *completion;
};

struct RingioCompletion {
    PyObject_HEAD
    struct ringio_py_owner owner;
    ringio_state *state;             /* of the module that made the type (free list) */
    RingioCompletion *next_released; /* link in RingioRing.released, or the free list */
    RingioRing *ring;                /* while the core holds the operation, else NULL */
    const ringio_kind_ops *ops;
    /* user_data, res_obj and result are object slots read as members
     * (T_OBJECT_EX): CPython's specialising interpreter turns `c.res`,
     * `c.result` and `c.user_data` into a direct load, where a getter is a call
     * (and, for res, an int allocation).  None of them is NULL while the
     * Completion is alive. */
    PyObject *user_data;
    PyObject *res_obj; /* Completion.res: the int 0 until done, then res */
    PyObject *result;  /* None until done */
    PyObject *weakreflist;
    uint64_t ring_serial; /* RingioRing.serial of the submitting ring, 0 if none */
    uint64_t token;       /* the core's token (SQE user_data) */
    int32_t res;
    uint32_t flags;
    uint32_t sequence;
    uint8_t kind;
    bool multishot; /* legs are delivered as new Completion objects */
    bool more;
    bool done;
    bool in_flight; /* the core holds a reference (dropped by the drain) */
    bool has_view;
    bool resources_released; /* ops->release ran */
    int8_t zc_copied; /* -1 unknown / 0 / 1 (zero-copy sends) */
    int msg_flags;    /* recvmsg: msghdr.msg_flags the kernel returned */
    PyObject *ancdata; /* recvmsg: list of (level, type, bytes) once done, else NULL */
    void *extra;      /* per-kind heap data, freed by ops->release (submit_msg.c:
                       * struct ringio_msg, the msghdr family; submit_socket.c:
                       * struct ringio_sockaddr, connect and accept) */
    /* Everything above is zeroed at allocation.  What follows is not (most
     * operations never touch it): it is only valid as stated. */
    Py_buffer view;              /* while has_view: the exported buffer the kernel
                                  * reads or writes */
    struct __kernel_timespec ts; /* submit_timeout: written before submission */
};

/* The address of submit_connect (read by the kernel) and submit_accept
 * (written by it), on Completion.extra. */
struct ringio_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Free the module state's cached Completion memory (module clear/free). */
void ringio_completion_freelist_clear(ringio_state *st);

/* A Completion for a new operation of `ops` on `ring`: pending, not yet
 * submitted.  New reference or NULL. */
RingioCompletion *ringio_completion_new(RingioRing *ring, const ringio_kind_ops *ops,
                                        PyObject *user_data, bool multishot);

/* Release the per-operation resources (view, ops->release) once.  GIL held,
 * no lock; the kernel must be done with them. */
void ringio_completion_release_resources(RingioCompletion *c);

/* Completion.result: a new reference (None while pending).  GIL held, no
 * lock. */
PyObject *ringio_completion_result(RingioCompletion *c);

/* One reaped event, prepared under the ring lock, committed after it. */
typedef struct ringio_reaped {
    RingioCompletion *handle; /* strong; NULL for a wake */
    RingioCompletion *leg;    /* strong; the new Completion of a multishot leg */
    PyObject *result;         /* strong; for the handle of a one-shot operation */
    PyObject *res_obj;        /* strong; res as an int, for the handle or the leg */
    int32_t res;
    uint32_t flags;
    uint32_t sequence;
    bool more;
    bool wake;
    int8_t zc_copied;
} ringio_reaped;

/* Under the ring lock, GC disabled: take references and allocate what the
 * event needs.  0, or -1 with an exception set and nothing held. */
int ringio_reaped_prepare(ringio_reaped *slot, const struct ringio_event *ev);
/* GIL held, no lock: apply the event, return the Completion to hand to the
 * user (new reference; NULL for a wake).  Consumes the slot's references. */
PyObject *ringio_reaped_commit(ringio_reaped *slot);
/* Drop the slot's references without delivering (error paths). */
void ringio_reaped_discard(ringio_reaped *slot);

/* ---- Ring ---------------------------------------------------------------- */

/* A C serving callback: 0, or -1 with an exception set (the same type as
 * RingioCCallback in ringio_capi.h). */
typedef int (*ringio_c_callback)(PyObject *ring, PyObject *completion, void *user);

struct RingioRing {
    PyObject_HEAD
    ringio_state *state;
    struct ringio_core *core; /* NULL once closed; guarded by lock */
    pthread_mutex_t lock;     /* the ring lock */
    unsigned long lock_owner; /* thread holding `lock` (atomic access), 0 if none */
    pthread_mutex_t wait_lock;
    unsigned long wait_owner;     /* thread holding `wait_lock` (atomic access) */
    RingioCompletion *released;   /* guarded by lock: owners the core released */
    PyObject *callback;           /* GIL */
    /* The C API's serving callback (ringio_ring_set_c_callback), GIL: when set,
     * serve_completions() workers call it instead of `callback`.  The ring
     * does not own c_callback_user (nothing to traverse); the C client keeps
     * it alive until it clears the callback or the ring is closed. */
    ringio_c_callback c_callback;
    void *c_callback_user;
    PyObject *weakreflist;
    uint64_t serial;              /* process-unique id of this ring */
    const char *backend_name;
    int fd;
    unsigned features;
    unsigned sq_entries;
    unsigned cq_entries;
    unsigned setup_flags;
    /* guarded by lock: */
    unsigned batch_depth;  /* open batch() blocks */
    unsigned strict_depth; /* ... of which strict */
    unsigned workers;      /* threads inside serve_completions() */
    unsigned swallow_wakes; /* wakes sent to stop workers, not consumed yet */
    bool in_kernel;        /* a waiter is between wait_prepare and wait_finish */
    /* The inline-completion predictor of ring_wait_events (ring.c): waits with
     * staged work left to skip before it submits and looks with the GIL held
     * again, and what the next miss sets that to. */
    unsigned inline_skip;
    unsigned inline_backoff;
    bool stop;             /* stop_serving() requested */
    bool closing;          /* close() in progress: no new work */
    /* The simulated backend (sim.c).  sim_backend is valid while core is;
     * use it only with the ring lock held and the ring open. */
    bool is_sim;
    struct ringio_backend *sim_backend;
    PyObject *sim_faults;  /* the FaultProfile in effect, or NULL */
    PyObject *sim_control; /* ringio.sim.SimControl for ring.sim, created lazily */
    uint64_t sim_seed;
    bool sim_notify; /* ringio_sim_notify_enable() done (atomic access) */
    /* submit_file.c, GIL: */
    PyObject *registered_buffers; /* tuple of memoryviews holding the exports of
                                   * the registered buffers, or NULL */
    unsigned long link_owner;     /* thread that opened a link() chain, 0 if none
                                   * (guarded by lock) */
};

/* ---- the simulated backend (sim.c) ------------------------------------- */

#include "ringio/sim.h"

/* Ring(..., seed=, faults=, replay=, record=) converted for ringio_sim_backend_new. */
struct ringio_sim_args {
    struct ringio_sim_config cfg;
    struct ringio_sim_faults faults_c;
    PyObject *faults; /* FaultProfile (new reference) or NULL */
    PyObject *replay; /* bytes backing cfg.bytes, or NULL */
};
int ringio_sim_args_parse(PyObject *seed_o, PyObject *faults_o, PyObject *replay_o, int record,
                          struct ringio_sim_args *a);
void ringio_sim_args_clear(struct ringio_sim_args *a);
/* The 64-bit tag scripted rules match: an int user_data itself, else its hash. */
uint64_t ringio_tag_of(PyObject *user_data);
/* Someone asked for the ring fd (ring.fd, the C API): on the sim, start
 * keeping it readable.  0, or -1 with an exception. */
int ringio_ring_fd_used(RingioRing *r);
PyObject *ringio_ring_sim_hold(RingioRing *r, PyObject *args);
PyObject *ringio_ring_sim_release(RingioRing *r, PyObject *user_data);
PyObject *ringio_ring_sim_force(RingioRing *r, PyObject *args);
PyObject *ringio_ring_sim_advance(RingioRing *r, PyObject *ns);
PyObject *ringio_ring_sim_info(RingioRing *r, PyObject *unused);
PyObject *ringio_ring_sim_trace(RingioRing *r, PyObject *unused);

/* Lock helpers (GIL held).  ringio_ring_lock raises RuntimeError instead of
 * self-deadlocking when this thread already holds the lock;
 * ringio_ring_lock_open also raises RingClosed on a closed ring.  Both return
 * 0 or -1.  ringio_ring_unlock drops the lock and returns the list of
 * Completions the core released meanwhile: pass it to ringio_release_list()
 * once the lock is gone. */
int ringio_ring_lock(RingioRing *r);
int ringio_ring_lock_open(RingioRing *r);
RingioCompletion *ringio_ring_unlock(RingioRing *r);

/* Raise RingClosed. */
void ringio_raise_closed(RingioRing *r);

/* ---- owners (owner.c) ----------------------------------------------------- */

/* Point c->owner at the deferred release callback. */
void ringio_owner_init(RingioCompletion *c);

/* Release every Completion of the list (GIL held, no ring lock): per-op
 * resources, then the core's reference.  May run arbitrary Python code;
 * preserves a pending exception. */
void ringio_release_list(RingioCompletion *list);

/* Append list b to list a, returning the head. */
RingioCompletion *ringio_list_concat(RingioCompletion *a, RingioCompletion *b);

/* Calls the core's ringio_submit_* for c; returns 0 or -errno. */
typedef int (*ringio_submit_fn)(struct ringio_core *core, RingioCompletion *c, void *arg,
                                uint64_t *token);

/* Submit c (stolen reference) under the ring lock: the core gets its own
 * reference.  Returns c (new reference) or NULL with SubmissionQueueFull
 * (-EBUSY), RingClosed or OSError set. */
PyObject *ringio_submit(RingioRing *r, RingioCompletion *c, ringio_submit_fn fn, void *arg);

/* Set the Python exception for a failed core call (-errno). */
void ringio_set_core_error(ringio_state *st, int rc);

/* ---- argument helpers (module.c) -------------------------------------------- */

/* Parse vectorcall arguments by name.  names is NULL-terminated; the first
 * maxpos may be given positionally, the first `required` are mandatory.  out
 * receives borrowed references (NULL for missing ones).  0 or -1 (TypeError). */
int ringio_parse_args_full(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames, const char *const *names, int maxpos, int required,
                           PyObject **out);

/* The common case inline: positional arguments only, within [required,
 * maxpos] (with `names` a static array the compiler folds the loop); anything
 * else, including every error, goes through ringio_parse_args_full. */
static inline int ringio_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames, const char *const *names, int maxpos,
                                    int required, PyObject **out)
{
    if ((kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) && nargs >= required &&
        nargs <= maxpos) {
        int i = 0;
        for (; i < (int)nargs; i++)
            out[i] = args[i];
        for (; names[i] != NULL; i++)
            out[i] = NULL;
        return 0;
    }
    return ringio_parse_args_full(fname, args, nargs, kwnames, names, maxpos, required, out);
}

/* An integer argument in [min, max]: TypeError for a non-integer, ValueError
 * outside the range. */
int ringio_int_arg(PyObject *o, const char *name, long long min, long long max,
                   long long *out);

/* A timeout in seconds: None (or NULL, or +inf) -> -1 (no limit); a real
 * number >= 0 -> nanoseconds.  TypeError / ValueError otherwise. */
int ringio_timeout_arg(PyObject *o, const char *name, int64_t *ns);

/* Ring creation errors: OSError(errno, message with advice). */
void ringio_set_setup_error(int err);
/* The advice part of that message (static string). */
const char *ringio_setup_advice(int err);

/* ---- submit entry points and Ring methods defined outside ring.c ---------------------- */

/*
 * nop / timeout / cancel / poll (submit_basic.c), same contract as the socket
 * operations below.  seconds: finite and >= 0 (ValueError otherwise); target:
 * a Completion submitted to this ring (TypeError / ValueError); cancel flags:
 * 0 or IORING_ASYNC_CANCEL_ALL; mask: POLL* events.
 */
PyObject *ringio_ring_submit_nop(RingioRing *r, PyObject *user_data);
PyObject *ringio_ring_submit_timeout(RingioRing *r, double seconds, PyObject *user_data);
PyObject *ringio_ring_submit_cancel(RingioRing *r, PyObject *target, PyObject *user_data,
                                    unsigned flags);
PyObject *ringio_ring_submit_poll(RingioRing *r, int fd, unsigned mask, PyObject *user_data,
                                  bool multishot);

/*
 * Socket operations.  Each has a C entry point taking converted arguments
 * (used by the Ring method after parsing, and by the C API capsule), and a
 * Ring method (ringio_meth_submit_*) that only parses.  The entry points
 * validate what a C caller could get wrong (negative fd, ranges, buffer
 * shape, address shape) exactly like the methods, and return the pending
 * Completion (new reference) or NULL with an exception set:
 * TypeError / ValueError for bad arguments, RingClosed, SubmissionQueueFull,
 * OSError.  `flags` are MSG_* flags for the data operations, SOCK_NONBLOCK |
 * SOCK_CLOEXEC for accept/socket.  user_data may be NULL (None).
 */
PyObject *ringio_ring_submit_recv(RingioRing *r, int fd, PyObject *buf, PyObject *user_data,
                                  int flags);
PyObject *ringio_ring_submit_recv_multishot(RingioRing *r, int fd, long long buffer_size,
                                            long long buffer_count, PyObject *user_data,
                                            int flags, uint32_t sequence);
PyObject *ringio_ring_submit_send(RingioRing *r, int fd, PyObject *data, PyObject *user_data,
                                  int flags);
PyObject *ringio_ring_submit_send_zc(RingioRing *r, int fd, PyObject *data, PyObject *user_data,
                                     int flags, unsigned zc_flags);
/* buf: one writable buffer or a sequence of them (scatter). */
PyObject *ringio_ring_submit_recvmsg(RingioRing *r, int fd, PyObject *buf, PyObject *user_data,
                                     int flags, Py_ssize_t ancbufsize);
PyObject *ringio_ring_submit_sendto(RingioRing *r, int fd, PyObject *data, PyObject *address,
                                    PyObject *user_data, int flags);
/* data: one buffer or a sequence of them (gather); address and ancdata may be
 * NULL or None. */
PyObject *ringio_ring_submit_sendmsg(RingioRing *r, int fd, PyObject *data, PyObject *address,
                                     PyObject *user_data, int flags, PyObject *ancdata);
PyObject *ringio_ring_submit_sendmsg_zc(RingioRing *r, int fd, PyObject *data,
                                        PyObject *address, PyObject *user_data, int flags,
                                        unsigned zc_flags, PyObject *ancdata);
PyObject *ringio_ring_submit_accept(RingioRing *r, int fd, PyObject *user_data, int flags);
PyObject *ringio_ring_submit_accept_multishot(RingioRing *r, int fd, PyObject *user_data,
                                              int flags, uint32_t sequence);
PyObject *ringio_ring_submit_connect(RingioRing *r, int fd, PyObject *address,
                                     PyObject *user_data);
PyObject *ringio_ring_submit_shutdown(RingioRing *r, int fd, int how, PyObject *user_data);
PyObject *ringio_ring_submit_close(RingioRing *r, int fd, PyObject *user_data);
PyObject *ringio_ring_submit_socket(RingioRing *r, int domain, int type, int protocol, int flags,
                                    PyObject *user_data);

/* Shared by submit_socket.c and submit_msg.c (GIL held). */
/* Export obj into view (C-contiguous; writable when `writable`).  TypeError
 * naming fname/argname, chained to CPython's own error, on failure. */
int ringio_export_buffer(PyObject *obj, Py_buffer *view, bool writable, const char *fname,
                         const char *argname);
/* ValueError unless fd >= 0. */
int ringio_check_fd(int fd, const char *fname);
/* The address family for converting `address` for fd: the socket's own
 * (SO_DOMAIN), or, when fd is not an open socket (the kernel will fail the
 * operation with -EBADF / -ENOTSOCK), the family the address's shape implies.
 * -1 with an exception set. */
int ringio_address_family(int fd, PyObject *address);

#define RINGIO_DECLARE_METHOD(name)                                                        \
    PyObject *ringio_meth_##name(PyObject *self, PyObject *const *args, Py_ssize_t nargs,   \
                                 PyObject *kwnames);                                       \
    extern const char ringio_doc_##name[]

RINGIO_DECLARE_METHOD(submit_nop);
RINGIO_DECLARE_METHOD(submit_timeout);
RINGIO_DECLARE_METHOD(submit_cancel);
RINGIO_DECLARE_METHOD(submit_poll);
RINGIO_DECLARE_METHOD(submit_recv);
RINGIO_DECLARE_METHOD(submit_recv_multishot);
RINGIO_DECLARE_METHOD(submit_send);
RINGIO_DECLARE_METHOD(submit_send_zc);
RINGIO_DECLARE_METHOD(submit_recvmsg);
RINGIO_DECLARE_METHOD(submit_sendto);
RINGIO_DECLARE_METHOD(submit_sendmsg);
RINGIO_DECLARE_METHOD(submit_sendmsg_zc);
RINGIO_DECLARE_METHOD(submit_accept);
RINGIO_DECLARE_METHOD(submit_accept_multishot);
RINGIO_DECLARE_METHOD(submit_connect);
RINGIO_DECLARE_METHOD(submit_shutdown);
RINGIO_DECLARE_METHOD(submit_close);
RINGIO_DECLARE_METHOD(submit_socket);

RINGIO_DECLARE_METHOD(submit_openat);
RINGIO_DECLARE_METHOD(submit_read);
RINGIO_DECLARE_METHOD(submit_write);
RINGIO_DECLARE_METHOD(submit_readv);
RINGIO_DECLARE_METHOD(submit_writev);
RINGIO_DECLARE_METHOD(submit_fsync);
RINGIO_DECLARE_METHOD(submit_fallocate);
RINGIO_DECLARE_METHOD(submit_statx);
RINGIO_DECLARE_METHOD(submit_unlinkat);
RINGIO_DECLARE_METHOD(submit_renameat);
RINGIO_DECLARE_METHOD(submit_mkdirat);
RINGIO_DECLARE_METHOD(register_files);
RINGIO_DECLARE_METHOD(register_buffers);
RINGIO_DECLARE_METHOD(link);
/* METH_NOARGS ones */
PyObject *ringio_meth_unregister_files(PyObject *self, PyObject *unused);
PyObject *ringio_meth_unregister_buffers(PyObject *self, PyObject *unused);
extern const char ringio_doc_unregister_files[];
extern const char ringio_doc_unregister_buffers[];
/* submit_close(fd, fixed=True): close direct descriptor `slot`. */
PyObject *ringio_ring_submit_close_direct(RingioRing *r, PyObject *slot, PyObject *user_data);
/* Module init of the file pieces: Link and StatxResult types, constants. */
int ringio_files_init(PyObject *module, ringio_state *st);

#define RINGIO_METH_FASTKW(name, fn, doc) \
    {name, (PyCFunction)(void (*)(void))(fn), METH_FASTCALL | METH_KEYWORDS, doc}

#define RINGIO_SOCKET_METHOD(name) \
    RINGIO_METH_FASTKW(#name, ringio_meth_##name, ringio_doc_##name)

#define RINGIO_SUBMIT_BASIC_METHODS                                                   \
    RINGIO_SOCKET_METHOD(submit_nop), RINGIO_SOCKET_METHOD(submit_timeout),           \
    RINGIO_SOCKET_METHOD(submit_cancel), RINGIO_SOCKET_METHOD(submit_poll)

#define RINGIO_SUBMIT_SOCKET_METHODS                                                  \
    RINGIO_SOCKET_METHOD(submit_recv), RINGIO_SOCKET_METHOD(submit_recv_multishot),   \
    RINGIO_SOCKET_METHOD(submit_send), RINGIO_SOCKET_METHOD(submit_send_zc),          \
    RINGIO_SOCKET_METHOD(submit_recvmsg), RINGIO_SOCKET_METHOD(submit_sendto),        \
    RINGIO_SOCKET_METHOD(submit_sendmsg), RINGIO_SOCKET_METHOD(submit_sendmsg_zc),    \
    RINGIO_SOCKET_METHOD(submit_accept), RINGIO_SOCKET_METHOD(submit_accept_multishot), \
    RINGIO_SOCKET_METHOD(submit_connect), RINGIO_SOCKET_METHOD(submit_shutdown),      \
    RINGIO_SOCKET_METHOD(submit_close), RINGIO_SOCKET_METHOD(submit_socket)

#define RINGIO_SUBMIT_FILE_METHODS                                                    \
    RINGIO_SOCKET_METHOD(submit_openat), RINGIO_SOCKET_METHOD(submit_read),           \
    RINGIO_SOCKET_METHOD(submit_write), RINGIO_SOCKET_METHOD(submit_readv),           \
    RINGIO_SOCKET_METHOD(submit_writev), RINGIO_SOCKET_METHOD(submit_fsync),          \
    RINGIO_SOCKET_METHOD(submit_fallocate), RINGIO_SOCKET_METHOD(submit_statx),       \
    RINGIO_SOCKET_METHOD(submit_unlinkat), RINGIO_SOCKET_METHOD(submit_renameat),     \
    RINGIO_SOCKET_METHOD(submit_mkdirat), RINGIO_SOCKET_METHOD(register_files),       \
    RINGIO_SOCKET_METHOD(register_buffers),                                           \
    {"unregister_files", (PyCFunction)ringio_meth_unregister_files, METH_NOARGS,      \
     ringio_doc_unregister_files},                                                    \
    {"unregister_buffers", (PyCFunction)ringio_meth_unregister_buffers, METH_NOARGS,  \
     ringio_doc_unregister_buffers},                                                  \
    RINGIO_SOCKET_METHOD(link)

/* ---- types and module pieces ----------------------------------------------------- */

extern PyType_Spec ringio_ring_spec;
extern PyType_Spec ringio_completion_spec;
extern PyType_Spec ringio_batch_spec;

/* Ring.close() for the C API (0 / -1). */
int ringio_ring_close(RingioRing *r);
/* Ring.wait() for the C API: timeout_ns < 0 = no limit.  Completion, None, or NULL. */
PyObject *ringio_ring_wait_one(RingioRing *r, int64_t timeout_ns);
/* Ring.break_wait() for the C API (0 / -1). */
int ringio_ring_break_wait(RingioRing *r);
/* Ring.wait_many(max, timeout) for the C API: max >= 1, timeout_ns < 0 = no
 * limit.  A new list, or NULL. */
PyObject *ringio_ring_wait_many(RingioRing *r, unsigned max, int64_t timeout_ns);
/* Ring.submit(): the number of submissions handed to the kernel, or -1. */
int ringio_ring_flush(RingioRing *r);
/* Ring.callback = cb (NULL means None): 0 / -1 (TypeError if not callable). */
int ringio_ring_set_callback(RingioRing *r, PyObject *cb);
/* Install (fn != NULL) or clear (fn == NULL) the C serving callback: 0 / -1
 * (RingClosed when installing on a closed ring; clearing always works). */
int ringio_ring_set_c_callback(RingioRing *r, ringio_c_callback fn, void *user);
/* Ring.serve_completions() / stop_serving() / reset_serving() (0 / -1). */
int ringio_ring_serve(RingioRing *r);
int ringio_ring_stop_serving(RingioRing *r);
int ringio_ring_reset_serving(RingioRing *r);

/* probe.c */
PyObject *ringio_probe(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames);
PyObject *ringio_is_available(PyObject *module, PyObject *unused);
PyObject *ringio_unavailable_reason(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames);
extern const char ringio_doc_probe[];
extern const char ringio_doc_is_available[];
extern const char ringio_doc_unavailable_reason[];
/* The probe dictionary for (entries, flags), {} when no ring can be created. */
PyObject *ringio_probe_dict(unsigned entries, unsigned flags);

/* capi.c: add the _C_API capsule to the module. */
int ringio_capi_init(PyObject *module);

/* ---- exception helpers (version-independent) -------------------------------------- */

#if PY_VERSION_HEX >= 0x030C0000
typedef PyObject *ringio_saved_exc;
static inline ringio_saved_exc ringio_exc_save(void) { return PyErr_GetRaisedException(); }
static inline void ringio_exc_restore(ringio_saved_exc e) { PyErr_SetRaisedException(e); }
#else
typedef struct {
    PyObject *type, *value, *tb;
} ringio_saved_exc;
static inline ringio_saved_exc ringio_exc_save(void)
{
    ringio_saved_exc e;
    PyErr_Fetch(&e.type, &e.value, &e.tb);
    return e;
}
static inline void ringio_exc_restore(ringio_saved_exc e) { PyErr_Restore(e.type, e.value, e.tb); }
#endif

/* PyObject_AsFileDescriptor with the common case first: an exact int in
 * [0, INT_MAX] is the descriptor; anything else (fileno(), negative, wrong
 * type) takes the general path and its error. */
static inline int ringio_fd_of(PyObject *o)
{
    if (PyLong_CheckExact(o)) {
        int overflow = 0;
        long v = PyLong_AsLongAndOverflow(o, &overflow);
        if (overflow == 0 && v >= 0 && v <= INT_MAX)
            return (int)v;
    }
    return PyObject_AsFileDescriptor(o);
}

/* PyMemberDef types and flag (structmember.h before 3.12). */
#if PY_VERSION_HEX >= 0x030C0000
#define RINGIO_T_PYSSIZET Py_T_PYSSIZET
#define RINGIO_T_OBJECT_EX Py_T_OBJECT_EX
#define RINGIO_READONLY Py_READONLY
#else
#include <structmember.h>
#define RINGIO_T_PYSSIZET T_PYSSIZET
#define RINGIO_T_OBJECT_EX T_OBJECT_EX
#define RINGIO_READONLY READONLY
#endif

#endif /* RINGIO_EXT_H */
