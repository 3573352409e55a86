/*
 * Socket operations without a msghdr: submit_recv, submit_recv_multishot,
 * submit_send, submit_send_zc, submit_accept, submit_accept_multishot,
 * submit_connect, submit_shutdown, submit_close, submit_socket; and the
 * helpers the msghdr family (submit_msg.c) shares: buffer export, fd and
 * address-family checks.
 *
 * Same pattern as submit_basic.c: a pending Completion is the operation's
 * handle and ownership record; what the kernel reads or writes lives in it
 * (the exported Py_buffer `view`, the sockaddr of connect/accept in a
 * struct ringio_sockaddr on `extra`), and is released only after the core released the operation:
 * after the final CQE, or for zero-copy sends after the F_NOTIF
 * notification.  Outgoing payloads are exported, never copied.
 *
 * Each operation has a C entry point (ringio_ring_submit_*, taking converted
 * arguments; the C API calls it) and a Ring method (ringio_meth_submit_*)
 * that only parses its arguments and calls the entry point.
 */
#include "ringio_ext.h"

#include "sockaddr.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

/* Largest transfer one operation asks for (Linux's MAX_RW_COUNT: the kernel
 * never moves more in one call anyway); longer buffers give short transfers. */
#define RINGIO_MAX_RW 0x7ffff000u

/* Largest provided-buffer ring: the kernel's limit on entries, and the core's
 * bound on one operation's buffer memory. */
#define RINGIO_MAX_BUF_COUNT 32768LL
#define RINGIO_MAX_BUFRING_BYTES (1LL << 30)

#define ACCEPT_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC)
#define ZC_FLAGS (IORING_RECVSEND_POLL_FIRST | IORING_SEND_ZC_REPORT_USAGE)

/* ---- shared helpers ------------------------------------------------------------ */

/* Replace the current exception by TypeError(message), chained to it
 * (`raise TypeError(...) from original`). */
static void raise_type_error_from_current(PyObject *message)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *cause = PyErr_GetRaisedException();
    PyErr_SetObject(PyExc_TypeError, message);
    if (cause != NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        PyException_SetCause(exc, Py_NewRef(cause));
        PyException_SetContext(exc, cause); /* steals cause */
        PyErr_SetRaisedException(exc);
    }
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v != NULL && tb != NULL)
        PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    PyErr_SetObject(PyExc_TypeError, message);
    if (v != NULL) {
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        PyException_SetCause(v2, Py_NewRef(v));
        PyException_SetContext(v2, v); /* steals v */
        PyErr_Restore(t2, v2, tb2);
    }
#endif
}

int ringio_export_buffer(PyObject *obj, Py_buffer *view, bool writable, const char *fname,
                         const char *argname)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) == 0)
        return 0;
    if (!PyErr_ExceptionMatches(PyExc_BufferError) && !PyErr_ExceptionMatches(PyExc_TypeError))
        return -1; /* MemoryError, an exporter's own exception, ... */
    /* Say which requirement failed; CPython's message stays as the cause. */
    PyObject *msg;
    const char *tname = Py_TYPE(obj)->tp_name;
    Py_buffer probe;
    if (!PyObject_CheckBuffer(obj)) {
        msg = PyUnicode_FromFormat("%s() %s must be a %sbytes-like object, not %.100s", fname,
                                   argname, writable ? "writable " : "", tname);
    }
    else if (PyObject_GetBuffer(obj, &probe, PyBUF_FULL_RO) == 0) {
        bool contiguous = PyBuffer_IsContiguous(&probe, 'C') != 0;
        bool readonly = probe.readonly != 0;
        PyBuffer_Release(&probe);
        if (!contiguous)
            msg = PyUnicode_FromFormat(
                "%s() %s must be a C-contiguous buffer; this %.100s is not (the kernel reads and "
                "writes one flat memory range: copy it with bytes()/bytearray() first)",
                fname, argname, tname);
        else if (writable && readonly)
            msg = PyUnicode_FromFormat(
                "%s() %s must be a writable buffer (bytearray, memoryview of one, array, "
                "mmap...), not a read-only %.100s",
                fname, argname, tname);
        else
            msg = PyUnicode_FromFormat("%s() %s: %.100s does not export a usable buffer", fname,
                                       argname, tname);
    }
    else {
        PyErr_Clear(); /* keep the first error as the cause */
        msg = PyUnicode_FromFormat("%s() %s: %.100s does not export a usable buffer", fname,
                                   argname, tname);
    }
    if (msg == NULL)
        return -1;
    raise_type_error_from_current(msg);
    Py_DECREF(msg);
    return -1;
}

int ringio_check_fd(int fd, const char *fname)
{
    if (fd < 0) {
        PyErr_Format(PyExc_ValueError, "%s(): fd must be a non-negative file descriptor, not %d",
                     fname, fd);
        return -1;
    }
    return 0;
}

int ringio_address_family(int fd, PyObject *address)
{
    int family = 0;
    socklen_t len = sizeof(family);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) == 0)
        return family;
    if (errno != EBADF && errno != ENOTSOCK) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    /* Not an open socket: the kernel fails the operation (-EBADF, -ENOTSOCK)
     * as it would any other; the address only has to be well-formed. */
    if (PyUnicode_Check(address) || PyBytes_Check(address) || PyByteArray_Check(address))
        return AF_UNIX;
    if (PyTuple_Check(address)) {
        Py_ssize_t n = PyTuple_GET_SIZE(address);
        if (n == 3 || n == 4)
            return AF_INET6;
        if (n == 2) {
            PyObject *host = PyTuple_GET_ITEM(address, 0);
            if (PyUnicode_Check(host) && PyUnicode_FindChar(host, ':', 0,
                                                            PyUnicode_GET_LENGTH(host), 1) >= 0)
                return AF_INET6;
            return AF_INET;
        }
    }
    PyErr_Format(PyExc_TypeError,
                 "address must be a (host, port) tuple, a (host, port, flowinfo, scope_id) "
                 "tuple or an AF_UNIX path (str or bytes), not %.100s",
                 Py_TYPE(address)->tp_name);
    return -1;
}

static size_t clamp_len(Py_ssize_t len)
{
    return (size_t)len > RINGIO_MAX_RW ? RINGIO_MAX_RW : (size_t)len;
}

/* Results. */
static PyObject *result_none(RingioCompletion *c, const struct ringio_event *ev)
{
    (void)c;
    (void)ev;
    Py_RETURN_NONE;
}

static PyObject *result_leg_bytes(RingioCompletion *c, const struct ringio_event *ev)
{
    (void)c;
    if (ev->res < 0)
        Py_RETURN_NONE;
    /* ev->data is the provided buffer, valid only now: copy it out (bytes are
     * not GC-tracked, so allocating them under the ring lock is safe). */
    if (ev->data == NULL)
        return PyBytes_FromStringAndSize(NULL, 0);
    return PyBytes_FromStringAndSize((const char *)ev->data, (Py_ssize_t)ev->data_len);
}

/* connect / accept: the address record on c->extra. */
static struct ringio_sockaddr *sa_new(RingioCompletion *c)
{
    struct ringio_sockaddr *sa = PyMem_Calloc(1, sizeof(*sa));
    if (sa == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    c->extra = sa;
    return sa;
}

static void sa_release(RingioCompletion *c)
{
    PyMem_Free(c->extra);
    c->extra = NULL;
}

static PyObject *result_accept(RingioCompletion *c, const struct ringio_event *ev)
{
    struct ringio_sockaddr *sa = c->extra;
    if (ev->res < 0 || sa == NULL)
        Py_RETURN_NONE;
    socklen_t len = sa->len;
    if (len > (socklen_t)sizeof(sa->ss))
        len = (socklen_t)sizeof(sa->ss);
    PyObject *addr = ringio_addr_to_py((const struct sockaddr *)&sa->ss, len);
    if (addr == NULL)
        return NULL;
    PyObject *fd = PyLong_FromLong(ev->res);
    if (fd == NULL) {
        Py_DECREF(addr); /* fresh objects only: nothing but their own dealloc runs */
        return NULL;
    }
    PyObject *t = PyTuple_Pack(2, fd, addr);
    Py_DECREF(fd);
    Py_DECREF(addr);
    return t;
}

static const ringio_kind_ops recv_ops = {RINGIO_KIND_RECV, NULL, NULL};
static const ringio_kind_ops recv_multishot_ops = {RINGIO_KIND_RECV_MULTISHOT, result_leg_bytes,
                                                   NULL};
static const ringio_kind_ops send_ops = {RINGIO_KIND_SEND, NULL, NULL};
static const ringio_kind_ops send_zc_ops = {RINGIO_KIND_SEND_ZC, NULL, NULL};
static const ringio_kind_ops accept_ops = {RINGIO_KIND_ACCEPT, result_accept, sa_release};
static const ringio_kind_ops accept_multishot_ops = {RINGIO_KIND_ACCEPT_MULTISHOT,
                                                     NULL, NULL};
static const ringio_kind_ops connect_ops = {RINGIO_KIND_CONNECT, result_none, sa_release};
static const ringio_kind_ops shutdown_ops = {RINGIO_KIND_SHUTDOWN, result_none, NULL};
static const ringio_kind_ops close_ops = {RINGIO_KIND_CLOSE, result_none, NULL};
static const ringio_kind_ops socket_ops = {RINGIO_KIND_SOCKET, NULL, NULL};

/* Arguments handed through ringio_submit() to the do_* callbacks. */
struct sock_args {
    int fd;
    int flags;
    unsigned zc_flags;
    unsigned buf_size;
    unsigned buf_count;
    uint32_t sequence;
    int how;
    int domain, type, protocol;
};

/* ---- recv / send --------------------------------------------------------------------- */

static int do_recv(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct sock_args *a = arg;
    return ringio_submit_recv(core, &c->owner.base, a->fd, c->view.buf, clamp_len(c->view.len),
                              a->flags, token);
}

static int do_send(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct sock_args *a = arg;
    return ringio_submit_send(core, &c->owner.base, a->fd, c->view.buf, clamp_len(c->view.len),
                              a->flags, token);
}

static int do_send_zc(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct sock_args *a = arg;
    return ringio_submit_send_zc(core, &c->owner.base, a->fd, c->view.buf,
                                 clamp_len(c->view.len), a->flags, a->zc_flags, token);
}

/* A data operation on one exported buffer. */
static PyObject *submit_buffer_op(RingioRing *r, const ringio_kind_ops *ops, const char *fname,
                                  const char *argname, int fd, PyObject *buf, bool writable,
                                  PyObject *user_data, struct sock_args *a, ringio_submit_fn fn)
{
    if (ringio_check_fd(fd, fname) < 0)
        return NULL;
    RingioCompletion *c = ringio_completion_new(r, ops, user_data, false);
    if (c == NULL)
        return NULL;
    if (ringio_export_buffer(buf, &c->view, writable, fname, argname) < 0) {
        Py_DECREF(c);
        return NULL;
    }
    c->has_view = true;
    return ringio_submit(r, c, fn, a);
}

static int check_zc_flags(unsigned zc_flags, const char *fname)
{
    if (zc_flags & ~(unsigned)ZC_FLAGS) {
        PyErr_Format(PyExc_ValueError,
                     "%s() zc_flags may only contain IORING_SEND_ZC_REPORT_USAGE and "
                     "IORING_RECVSEND_POLL_FIRST",
                     fname);
        return -1;
    }
    return 0;
}

PyObject *ringio_ring_submit_recv(RingioRing *r, int fd, PyObject *buf, PyObject *user_data,
                                  int flags)
{
    struct sock_args a = {.fd = fd, .flags = flags};
    return submit_buffer_op(r, &recv_ops, "submit_recv", "buf", fd, buf, true, user_data, &a,
                            do_recv);
}

PyObject *ringio_ring_submit_send(RingioRing *r, int fd, PyObject *data, PyObject *user_data,
                                  int flags)
{
    struct sock_args a = {.fd = fd, .flags = flags};
    return submit_buffer_op(r, &send_ops, "submit_send", "data", fd, data, false, user_data, &a,
                            do_send);
}

PyObject *ringio_ring_submit_send_zc(RingioRing *r, int fd, PyObject *data, PyObject *user_data,
                                     int flags, unsigned zc_flags)
{
    if (check_zc_flags(zc_flags, "submit_send_zc") < 0)
        return NULL;
    struct sock_args a = {.fd = fd, .flags = flags, .zc_flags = zc_flags};
    return submit_buffer_op(r, &send_zc_ops, "submit_send_zc", "data", fd, data, false,
                            user_data, &a, do_send_zc);
}

/* ---- recv_multishot ---------------------------------------------------------------- */

static int do_recv_multishot(struct ringio_core *core, RingioCompletion *c, void *arg,
                             uint64_t *token)
{
    struct sock_args *a = arg;
    return ringio_submit_recv_multishot(core, &c->owner.base, a->fd, a->buf_size, a->buf_count,
                                        a->flags, a->sequence, token);
}

PyObject *ringio_ring_submit_recv_multishot(RingioRing *r, int fd, long long buffer_size,
                                            long long buffer_count, PyObject *user_data,
                                            int flags, uint32_t sequence)
{
    if (ringio_check_fd(fd, "submit_recv_multishot") < 0)
        return NULL;
    if (buffer_size < 1 || buffer_size > RINGIO_MAX_BUFRING_BYTES) {
        PyErr_Format(PyExc_ValueError,
                     "submit_recv_multishot() buffer_size must be in [1, %lld], not %lld",
                     RINGIO_MAX_BUFRING_BYTES, buffer_size);
        return NULL;
    }
    if (buffer_count < 1 || buffer_count > RINGIO_MAX_BUF_COUNT ||
        (buffer_count & (buffer_count - 1)) != 0) {
        PyErr_Format(PyExc_ValueError,
                     "submit_recv_multishot() buffer_count must be a power of two in [1, %lld], "
                     "not %lld",
                     RINGIO_MAX_BUF_COUNT, buffer_count);
        return NULL;
    }
    if (buffer_size * buffer_count > RINGIO_MAX_BUFRING_BYTES) {
        PyErr_Format(PyExc_ValueError,
                     "submit_recv_multishot() buffer_size * buffer_count must be at most %lld "
                     "bytes",
                     RINGIO_MAX_BUFRING_BYTES);
        return NULL;
    }
    RingioCompletion *c = ringio_completion_new(r, &recv_multishot_ops, user_data, true);
    if (c == NULL)
        return NULL;
    struct sock_args a = {.fd = fd,
                          .flags = flags,
                          .buf_size = (unsigned)buffer_size,
                          .buf_count = (unsigned)buffer_count,
                          .sequence = sequence};
    return ringio_submit(r, c, do_recv_multishot, &a);
}

/* ---- accept --------------------------------------------------------------------------- */

static int check_sock_flags(int flags, const char *fname)
{
    if (flags & ~ACCEPT_FLAGS) {
        PyErr_Format(PyExc_ValueError,
                     "%s() flags may only contain socket.SOCK_NONBLOCK and socket.SOCK_CLOEXEC",
                     fname);
        return -1;
    }
    return 0;
}

static int do_accept(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct sock_args *a = arg;
    struct ringio_sockaddr *sa = c->extra;
    return ringio_submit_accept(core, &c->owner.base, a->fd, (struct sockaddr *)&sa->ss,
                                &sa->len, a->flags, token);
}

static int do_accept_multishot(struct ringio_core *core, RingioCompletion *c, void *arg,
                               uint64_t *token)
{
    struct sock_args *a = arg;
    return ringio_submit_accept_multishot(core, &c->owner.base, a->fd, a->flags, a->sequence,
                                          token);
}

PyObject *ringio_ring_submit_accept(RingioRing *r, int fd, PyObject *user_data, int flags)
{
    if (ringio_check_fd(fd, "submit_accept") < 0 || check_sock_flags(flags, "submit_accept") < 0)
        return NULL;
    RingioCompletion *c = ringio_completion_new(r, &accept_ops, user_data, false);
    if (c == NULL)
        return NULL;
    struct ringio_sockaddr *sa = sa_new(c);
    if (sa == NULL) {
        Py_DECREF(c);
        return NULL;
    }
    sa->len = (socklen_t)sizeof(sa->ss);
    struct sock_args a = {.fd = fd, .flags = flags};
    return ringio_submit(r, c, do_accept, &a);
}

PyObject *ringio_ring_submit_accept_multishot(RingioRing *r, int fd, PyObject *user_data,
                                              int flags, uint32_t sequence)
{
    if (ringio_check_fd(fd, "submit_accept_multishot") < 0 ||
        check_sock_flags(flags, "submit_accept_multishot") < 0)
        return NULL;
    RingioCompletion *c = ringio_completion_new(r, &accept_multishot_ops, user_data, true);
    if (c == NULL)
        return NULL;
    struct sock_args a = {.fd = fd, .flags = flags, .sequence = sequence};
    return ringio_submit(r, c, do_accept_multishot, &a);
}

/* ---- connect / shutdown / close / socket --------------------------------------------------- */

static int do_connect(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct sock_args *a = arg;
    struct ringio_sockaddr *sa = c->extra;
    return ringio_submit_connect(core, &c->owner.base, a->fd, (const struct sockaddr *)&sa->ss,
                                 sa->len, token);
}

PyObject *ringio_ring_submit_connect(RingioRing *r, int fd, PyObject *address,
                                     PyObject *user_data)
{
    if (ringio_check_fd(fd, "submit_connect") < 0)
        return NULL;
    if (address == NULL) {
        PyErr_SetString(PyExc_TypeError, "submit_connect() address is required");
        return NULL;
    }
    int family = ringio_address_family(fd, address);
    if (family < 0)
        return NULL;
    RingioCompletion *c = ringio_completion_new(r, &connect_ops, user_data, false);
    if (c == NULL)
        return NULL;
    struct ringio_sockaddr *sa = sa_new(c);
    if (sa == NULL || ringio_addr_from_py(address, family, &sa->ss, &sa->len) < 0) {
        Py_DECREF(c);
        return NULL;
    }
    struct sock_args a = {.fd = fd};
    return ringio_submit(r, c, do_connect, &a);
}

static int do_shutdown(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct sock_args *a = arg;
    return ringio_submit_shutdown(core, &c->owner.base, a->fd, a->how, token);
}

PyObject *ringio_ring_submit_shutdown(RingioRing *r, int fd, int how, PyObject *user_data)
{
    if (ringio_check_fd(fd, "submit_shutdown") < 0)
        return NULL;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
        PyErr_Format(PyExc_ValueError,
                     "submit_shutdown() how must be socket.SHUT_RD, SHUT_WR or SHUT_RDWR, not %d",
                     how);
        return NULL;
    }
    RingioCompletion *c = ringio_completion_new(r, &shutdown_ops, user_data, false);
    if (c == NULL)
        return NULL;
    struct sock_args a = {.fd = fd, .how = how};
    return ringio_submit(r, c, do_shutdown, &a);
}

static int do_close(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct sock_args *a = arg;
    return ringio_submit_close(core, &c->owner.base, a->fd, token);
}

PyObject *ringio_ring_submit_close(RingioRing *r, int fd, PyObject *user_data)
{
    if (ringio_check_fd(fd, "submit_close") < 0)
        return NULL;
    RingioCompletion *c = ringio_completion_new(r, &close_ops, user_data, false);
    if (c == NULL)
        return NULL;
    struct sock_args a = {.fd = fd};
    return ringio_submit(r, c, do_close, &a);
}

static int do_socket(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct sock_args *a = arg;
    return ringio_submit_socket(core, &c->owner.base, a->domain, a->type, a->protocol, token);
}

PyObject *ringio_ring_submit_socket(RingioRing *r, int domain, int type, int protocol, int flags,
                                    PyObject *user_data)
{
    if (domain < 0 || type < 0 || protocol < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "submit_socket() domain, type and protocol must be >= 0");
        return NULL;
    }
    if (check_sock_flags(flags, "submit_socket") < 0)
        return NULL;
    RingioCompletion *c = ringio_completion_new(r, &socket_ops, user_data, false);
    if (c == NULL)
        return NULL;
    /* IORING_OP_SOCKET's own flags field must be 0: SOCK_NONBLOCK and
     * SOCK_CLOEXEC travel in the type, as for socket(2). */
    struct sock_args a = {.domain = domain, .type = type | flags, .protocol = protocol};
    return ringio_submit(r, c, do_socket, &a);
}

/* ---- Ring methods: argument parsing only ---------------------------------------------------- */

static int arg_fd(PyObject *o, int *fd)
{
    int v = ringio_fd_of(o); /* int or fileno(); ValueError when < 0 */
    if (v < 0)
        return -1;
    *fd = v;
    return 0;
}

/* An optional int argument in [min, max] (absent: dflt). */
static int arg_int(PyObject *o, const char *name, long long min, long long max, long long dflt,
                   long long *out)
{
    if (o == NULL) {
        *out = dflt;
        return 0;
    }
    return ringio_int_arg(o, name, min, max, out);
}

#define FLAGS_MAX ((long long)INT_MAX)

const char ringio_doc_submit_recv[] =
    "submit_recv($self, fd, buf, user_data=None, flags=0)\n--\n\n"
    "Receive into buf (a writable C-contiguous buffer: bytearray, memoryview, array, "
    "mmap...) from the socket fd (an int or an object with fileno()), with MSG_* flags.  "
    "result is the number of bytes received (0 at EOF).  buf stays exported until the "
    "completion, so resizing a bytearray meanwhile raises BufferError.";

PyObject *ringio_meth_submit_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"fd", "buf", "user_data", "flags", NULL};
    PyObject *argv[4];
    int fd;
    long long flags;
    if (ringio_parse_args("submit_recv", args, nargs, kwnames, names, 4, 2, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[3], "flags", 0, FLAGS_MAX, 0, &flags) < 0)
        return NULL;
    return ringio_ring_submit_recv((RingioRing *)self, fd, argv[1], argv[2], (int)flags);
}

const char ringio_doc_submit_recv_multishot[] =
    "submit_recv_multishot($self, fd, buffer_size, buffer_count, user_data=None, flags=0, *, "
    "sequence=0)\n--\n\n"
    "Receive repeatedly from fd into an internal ring of buffer_count (a power of two, "
    "<= 32768) buffers of buffer_size bytes.  Each receive is delivered as a new Completion "
    "(a leg) whose result is the bytes received (b'' at EOF), copied out so the kernel buffer "
    "is recycled at once; legs are numbered by `sequence` from the given value; `more` is "
    "False on the final leg (EOF, error, cancellation, or res == -errno.ENOBUFS when the "
    "buffers ran out because completions were not reaped fast enough: submit again with "
    "sequence=last.sequence + 1 to continue).  The returned handle becomes done with the "
    "final leg.";

PyObject *ringio_meth_submit_recv_multishot(PyObject *self, PyObject *const *args,
                                            Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fd",        "buffer_size", "buffer_count", "user_data",
                                        "flags",     "sequence",    NULL};
    PyObject *argv[6];
    int fd;
    long long size, count, flags, seq;
    if (ringio_parse_args("submit_recv_multishot", args, nargs, kwnames, names, 5, 3, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 ||
        arg_int(argv[1], "buffer_size", LLONG_MIN, LLONG_MAX, 0, &size) < 0 ||
        arg_int(argv[2], "buffer_count", LLONG_MIN, LLONG_MAX, 0, &count) < 0 ||
        arg_int(argv[4], "flags", 0, FLAGS_MAX, 0, &flags) < 0 ||
        arg_int(argv[5], "sequence", 0, UINT32_MAX, 0, &seq) < 0)
        return NULL;
    return ringio_ring_submit_recv_multishot((RingioRing *)self, fd, size, count, argv[3],
                                             (int)flags, (uint32_t)seq);
}

const char ringio_doc_submit_send[] =
    "submit_send($self, fd, data, user_data=None, flags=0)\n--\n\n"
    "Send data (any C-contiguous bytes-like object; not copied: it stays exported until the "
    "completion) on fd with MSG_* flags.  result is the number of bytes sent, which may be "
    "less than len(data).";

PyObject *ringio_meth_submit_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"fd", "data", "user_data", "flags", NULL};
    PyObject *argv[4];
    int fd;
    long long flags;
    if (ringio_parse_args("submit_send", args, nargs, kwnames, names, 4, 2, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[3], "flags", 0, FLAGS_MAX, 0, &flags) < 0)
        return NULL;
    return ringio_ring_submit_send((RingioRing *)self, fd, argv[1], argv[2], (int)flags);
}

const char ringio_doc_submit_send_zc[] =
    "submit_send_zc($self, fd, data, user_data=None, flags=0, zc_flags=0)\n--\n\n"
    "Zero-copy send (IORING_OP_SEND_ZC).  The Completion is delivered with the flags the "
    "kernel set (IORING_CQE_F_MORE when a notification follows); the notification is "
    "consumed internally and only then is data released.  zc_flags may hold "
    "IORING_SEND_ZC_REPORT_USAGE (the completion is then delivered after the notification and "
    "zc_copied says whether the kernel copied after all) and IORING_RECVSEND_POLL_FIRST.";

PyObject *ringio_meth_submit_send_zc(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"fd", "data", "user_data", "flags", "zc_flags", NULL};
    PyObject *argv[5];
    int fd;
    long long flags, zc;
    if (ringio_parse_args("submit_send_zc", args, nargs, kwnames, names, 5, 2, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[3], "flags", 0, FLAGS_MAX, 0, &flags) < 0 ||
        arg_int(argv[4], "zc_flags", 0, UINT16_MAX, 0, &zc) < 0)
        return NULL;
    return ringio_ring_submit_send_zc((RingioRing *)self, fd, argv[1], argv[2], (int)flags,
                                      (unsigned)zc);
}

const char ringio_doc_submit_accept[] =
    "submit_accept($self, fd, user_data=None, flags=0)\n--\n\n"
    "Accept a connection on the listening socket fd.  result is (new_fd, peer_address); the "
    "new fd is yours to close.  flags may hold socket.SOCK_NONBLOCK and socket.SOCK_CLOEXEC.";

PyObject *ringio_meth_submit_accept(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    static const char *const names[] = {"fd", "user_data", "flags", NULL};
    PyObject *argv[3];
    int fd;
    long long flags;
    if (ringio_parse_args("submit_accept", args, nargs, kwnames, names, 3, 1, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[2], "flags", 0, FLAGS_MAX, 0, &flags) < 0)
        return NULL;
    return ringio_ring_submit_accept((RingioRing *)self, fd, argv[1], (int)flags);
}

const char ringio_doc_submit_accept_multishot[] =
    "submit_accept_multishot($self, fd, user_data=None, flags=0, *, sequence=0)\n--\n\n"
    "Accept connections on fd until cancelled: one leg (a new Completion) per connection, "
    "whose result is the new fd (the kernel reports no peer address for multishot accepts: "
    "use getpeername).  Legs are numbered from `sequence`; `more` is False on the final one.  "
    "Connections accepted into legs nobody will see (the ring was closed) are closed.  flags "
    "may hold socket.SOCK_NONBLOCK and socket.SOCK_CLOEXEC.";

PyObject *ringio_meth_submit_accept_multishot(PyObject *self, PyObject *const *args,
                                              Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"fd", "user_data", "flags", "sequence", NULL};
    PyObject *argv[4];
    int fd;
    long long flags, seq;
    if (ringio_parse_args("submit_accept_multishot", args, nargs, kwnames, names, 3, 1, argv) <
            0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[2], "flags", 0, FLAGS_MAX, 0, &flags) < 0 ||
        arg_int(argv[3], "sequence", 0, UINT32_MAX, 0, &seq) < 0)
        return NULL;
    return ringio_ring_submit_accept_multishot((RingioRing *)self, fd, argv[1], (int)flags,
                                               (uint32_t)seq);
}

const char ringio_doc_submit_connect[] =
    "submit_connect($self, fd, address, user_data=None)\n--\n\n"
    "Connect the socket fd to address: (host, port) with a numeric host for AF_INET, "
    "(host, port[, flowinfo[, scope_id]]) for AF_INET6 (the family is the socket's), a str "
    "or bytes path for AF_UNIX ('\\0name' or b'\\0name' for an abstract name).  result is "
    "None; res is 0 or -errno.";

PyObject *ringio_meth_submit_connect(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"fd", "address", "user_data", NULL};
    PyObject *argv[3];
    int fd;
    if (ringio_parse_args("submit_connect", args, nargs, kwnames, names, 3, 2, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0)
        return NULL;
    return ringio_ring_submit_connect((RingioRing *)self, fd, argv[1], argv[2]);
}

const char ringio_doc_submit_shutdown[] =
    "submit_shutdown($self, fd, how, user_data=None)\n--\n\n"
    "shutdown(fd, how) with how one of socket.SHUT_RD, SHUT_WR, SHUT_RDWR.  result is None.";

PyObject *ringio_meth_submit_shutdown(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames)
{
    static const char *const names[] = {"fd", "how", "user_data", NULL};
    PyObject *argv[3];
    int fd;
    long long how;
    if (ringio_parse_args("submit_shutdown", args, nargs, kwnames, names, 3, 2, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[1], "how", INT_MIN, INT_MAX, 0, &how) < 0)
        return NULL;
    return ringio_ring_submit_shutdown((RingioRing *)self, fd, (int)how, argv[2]);
}

const char ringio_doc_submit_close[] =
    "submit_close($self, fd, user_data=None, *, fixed=False)\n--\n\n"
    "Close fd.  Pass a descriptor nobody else owns (socket.detach() it first): Python "
    "would otherwise close it again.  With fixed=True, fd is a slot of the registered file "
    "table and the direct descriptor in it is closed.  result is None; res is 0 or -errno.";

PyObject *ringio_meth_submit_close(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"fd", "user_data", "fixed", NULL};
    PyObject *argv[3];
    int fd;
    if (ringio_parse_args("submit_close", args, nargs, kwnames, names, 2, 1, argv) < 0)
        return NULL;
    int fixed = argv[2] != NULL ? PyObject_IsTrue(argv[2]) : 0;
    if (fixed < 0)
        return NULL;
    if (fixed) /* a direct descriptor: slot argv[0] of the registered file table */
        return ringio_ring_submit_close_direct((RingioRing *)self, argv[0], argv[1]);
    if (arg_fd(argv[0], &fd) < 0)
        return NULL;
    return ringio_ring_submit_close((RingioRing *)self, fd, argv[1]);
}

const char ringio_doc_submit_socket[] =
    "submit_socket($self, domain, type, protocol=0, flags=0, user_data=None)\n--\n\n"
    "Create a socket like socket(2).  flags (socket.SOCK_NONBLOCK, socket.SOCK_CLOEXEC) are "
    "OR'ed into type.  result is the new fd (yours to close); if the ring is closed before "
    "the completion is seen, the fd is closed.";

PyObject *ringio_meth_submit_socket(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    static const char *const names[] = {"domain", "type", "protocol", "flags", "user_data", NULL};
    PyObject *argv[5];
    long long domain, type, protocol, flags;
    if (ringio_parse_args("submit_socket", args, nargs, kwnames, names, 5, 2, argv) < 0 ||
        arg_int(argv[0], "domain", 0, INT_MAX, 0, &domain) < 0 ||
        arg_int(argv[1], "type", 0, INT_MAX, 0, &type) < 0 ||
        arg_int(argv[2], "protocol", 0, INT_MAX, 0, &protocol) < 0 ||
        arg_int(argv[3], "flags", 0, FLAGS_MAX, 0, &flags) < 0)
        return NULL;
    return ringio_ring_submit_socket((RingioRing *)self, (int)domain, (int)type, (int)protocol,
                                     (int)flags, argv[4]);
}
