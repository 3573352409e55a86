/*
 * The msghdr family: submit_recvmsg, submit_sendto, submit_sendmsg,
 * submit_sendmsg_zc.
 *
 * Everything the kernel reads or writes (the msghdr, its iovec array, the
 * socket address, the control buffer) lives in one heap record, struct
 * ringio_msg, hung on Completion.extra and freed by msg_release() after the
 * core released the operation (for sendmsg_zc: after the notification).  A
 * single buffer is exported into Completion.view; a sequence of buffers into
 * the record's own views[], one export each, all held to the same point.
 *
 * recvmsg and SCM_RIGHTS: the kernel installs received descriptors in our
 * fd table when the receive completes, before anyone reaps the CQE.  They
 * become the user's when make_result turns the control buffer into
 * Completion.ancdata (handed_over).  If the operation is released without
 * that (the ring was closed after the CQE arrived but before it was
 * delivered, or the completion failed to be built), msg_release() closes
 * them.  The control buffer is zeroed at submit so that an operation the
 * kernel never completed has nothing to close.
 */
#include "ringio_ext.h"

#include "sockaddr.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* The kernel's UIO_MAXIOV: more iovecs fail with -EMSGSIZE. */
#define RINGIO_MAX_IOV 1024
/* Largest control buffer recvmsg accepts (the kernel caps what it writes
 * far lower, by net.core.optmem_max; this only bounds our allocation). */
#define RINGIO_MAX_ANCBUF (1 << 20)

struct ringio_msg {
    struct msghdr hdr;
    struct sockaddr_storage name;
    void *control;     /* PyMem: the control buffer, or NULL */
    Py_buffer *views;  /* exports of a sequence of buffers (after iov[]), or NULL */
    Py_ssize_t nviews; /* how many of views[] are exported */
    bool receive;
    bool handed_over; /* recvmsg: ancillary data (and its fds) given to the user */
    struct iovec iov[];
};

static void msg_release(RingioCompletion *c)
{
    struct ringio_msg *m = c->extra;
    if (m == NULL)
        return;
    c->extra = NULL;
    if (m->receive && !m->handed_over && m->control != NULL)
        ringio_cmsg_close_fds(&m->hdr); /* received fds nobody will ever see */
    for (Py_ssize_t i = 0; i < m->nviews; i++)
        PyBuffer_Release(&m->views[i]);
    PyMem_Free(m->control);
    PyMem_Free(m);
}

static PyObject *result_recvmsg(RingioCompletion *c, const struct ringio_event *ev)
{
    struct ringio_msg *m = c->extra;
    if (ev->res < 0 || m == NULL)
        Py_RETURN_NONE;
    socklen_t namelen = m->hdr.msg_namelen;
    if (namelen > (socklen_t)sizeof(m->name))
        namelen = (socklen_t)sizeof(m->name);
    PyObject *addr = ringio_addr_to_py((const struct sockaddr *)&m->name, namelen);
    if (addr == NULL)
        return NULL;
    /* msg_controllen is what the kernel wrote back: the bytes it used. */
    PyObject *anc = ringio_cmsg_parse(&m->hdr);
    if (anc == NULL) {
        Py_DECREF(addr); /* fresh objects only */
        return NULL;
    }
    if (c->ancdata == NULL)
        c->ancdata = anc; /* a one-shot operation gets here once */
    else
        Py_DECREF(anc);
    c->msg_flags = m->hdr.msg_flags;
    m->handed_over = true;
    return addr;
}

static const ringio_kind_ops recvmsg_ops = {RINGIO_KIND_RECVMSG, result_recvmsg, msg_release};
static const ringio_kind_ops sendto_ops = {RINGIO_KIND_SENDTO, NULL,
                                           msg_release};
static const ringio_kind_ops sendmsg_ops = {RINGIO_KIND_SENDMSG, NULL,
                                            msg_release};
static const ringio_kind_ops sendmsg_zc_ops = {RINGIO_KIND_SENDMSG_ZC, NULL,
                                               msg_release};

/*
 * Allocate c->extra for `data` (one buffer, or an iterable of buffers) and
 * export them.  On failure the Completion still owns whatever was exported:
 * dropping it releases everything (msg_release via its dealloc).
 */
static struct ringio_msg *msg_new(RingioCompletion *c, PyObject *data, bool writable,
                                  const char *fname, const char *argname)
{
    PyObject *items = NULL;
    Py_ssize_t n = 1;
    bool single = PyObject_CheckBuffer(data) != 0;
    if (!single) {
        if (PyUnicode_Check(data)) {
            PyErr_Format(PyExc_TypeError,
                         "%s() %s must be a bytes-like object or a sequence of them, not str",
                         fname, argname);
            return NULL;
        }
        /* A tuple snapshot: exporting an item cannot reshape what we iterate. */
        items = PySequence_Tuple(data);
        if (items == NULL) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError,
                             "%s() %s must be a %sbytes-like object or a sequence of them, not "
                             "%.100s",
                             fname, argname, writable ? "writable " : "",
                             Py_TYPE(data)->tp_name);
            }
            return NULL;
        }
        n = PyTuple_GET_SIZE(items);
        if (n > RINGIO_MAX_IOV) {
            Py_DECREF(items);
            PyErr_Format(PyExc_ValueError, "%s() %s: at most %d buffers, not %zd", fname,
                         argname, RINGIO_MAX_IOV, n);
            return NULL;
        }
    }
    size_t size = sizeof(struct ringio_msg) + (size_t)n * sizeof(struct iovec);
    if (!single)
        size += (size_t)n * sizeof(Py_buffer);
    struct ringio_msg *m = PyMem_Calloc(1, size);
    if (m == NULL) {
        Py_XDECREF(items);
        PyErr_NoMemory();
        return NULL;
    }
    c->extra = m;
    m->receive = writable;
    m->hdr.msg_iov = m->iov;
    if (single) {
        if (ringio_export_buffer(data, &c->view, writable, fname, argname) < 0)
            return NULL;
        c->has_view = true;
        m->iov[0].iov_base = c->view.buf;
        m->iov[0].iov_len = (size_t)c->view.len;
        m->hdr.msg_iovlen = 1;
        return m;
    }
    m->views = (Py_buffer *)(void *)(m->iov + n);
    for (Py_ssize_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof(what), "%s[%zd]", argname, i);
        if (ringio_export_buffer(PyTuple_GET_ITEM(items, i), &m->views[i], writable, fname,
                                 what) < 0) {
            Py_DECREF(items);
            return NULL;
        }
        m->nviews = i + 1;
        m->iov[i].iov_base = m->views[i].buf;
        m->iov[i].iov_len = (size_t)m->views[i].len;
    }
    m->hdr.msg_iovlen = (size_t)n;
    Py_DECREF(items);
    return m;
}

/* Destination address (NULL or None: none, for connected sockets). */
static int msg_set_address(struct ringio_msg *m, int fd, PyObject *address)
{
    if (address == NULL || address == Py_None)
        return 0;
    int family = ringio_address_family(fd, address);
    if (family < 0)
        return -1;
    socklen_t len = 0;
    if (ringio_addr_from_py(address, family, &m->name, &len) < 0)
        return -1;
    m->hdr.msg_name = &m->name;
    m->hdr.msg_namelen = len;
    return 0;
}

static int msg_set_ancdata(struct ringio_msg *m, PyObject *ancdata)
{
    void *buf = NULL;
    size_t len = 0;
    if (ringio_cmsg_build(ancdata, &buf, &len) < 0)
        return -1;
    m->control = buf;
    m->hdr.msg_control = buf;
    m->hdr.msg_controllen = len;
    return 0;
}

struct msg_args {
    int fd;
    int flags;
    unsigned zc_flags;
};

static int do_recvmsg(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct msg_args *a = arg;
    struct ringio_msg *m = c->extra;
    return ringio_submit_recvmsg(core, &c->owner.base, a->fd, &m->hdr, a->flags, token);
}

static int do_sendmsg(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct msg_args *a = arg;
    struct ringio_msg *m = c->extra;
    return ringio_submit_sendmsg(core, &c->owner.base, a->fd, &m->hdr, a->flags, token);
}

static int do_sendmsg_zc(struct ringio_core *core, RingioCompletion *c, void *arg,
                         uint64_t *token)
{
    struct msg_args *a = arg;
    struct ringio_msg *m = c->extra;
    return ringio_submit_sendmsg_zc(core, &c->owner.base, a->fd, &m->hdr, a->flags, a->zc_flags,
                                    token);
}

PyObject *ringio_ring_submit_recvmsg(RingioRing *r, int fd, PyObject *buf, PyObject *user_data,
                                     int flags, Py_ssize_t ancbufsize)
{
    if (ringio_check_fd(fd, "submit_recvmsg") < 0)
        return NULL;
    if (ancbufsize < 0 || ancbufsize > RINGIO_MAX_ANCBUF) {
        PyErr_Format(PyExc_ValueError, "submit_recvmsg() ancbufsize must be in [0, %d], not %zd",
                     RINGIO_MAX_ANCBUF, ancbufsize);
        return NULL;
    }
    RingioCompletion *c = ringio_completion_new(r, &recvmsg_ops, user_data, false);
    if (c == NULL)
        return NULL;
    struct ringio_msg *m = msg_new(c, buf, true, "submit_recvmsg", "buf");
    if (m == NULL)
        goto fail;
    m->hdr.msg_name = &m->name;
    m->hdr.msg_namelen = (socklen_t)sizeof(m->name);
    if (ancbufsize > 0) {
        /* Zeroed: see the note on SCM_RIGHTS at the top of this file. */
        m->control = PyMem_Calloc(1, (size_t)ancbufsize);
        if (m->control == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        m->hdr.msg_control = m->control;
        m->hdr.msg_controllen = (size_t)ancbufsize;
    }
    struct msg_args a = {.fd = fd, .flags = flags};
    return ringio_submit(r, c, do_recvmsg, &a);
fail:
    Py_DECREF(c);
    return NULL;
}

/* sendto, sendmsg, sendmsg_zc. */
static PyObject *submit_send_msg(RingioRing *r, const ringio_kind_ops *ops, const char *fname,
                                 int fd, PyObject *data, PyObject *address, PyObject *user_data,
                                 int flags, unsigned zc_flags, PyObject *ancdata,
                                 ringio_submit_fn fn)
{
    if (ringio_check_fd(fd, fname) < 0)
        return NULL;
    if (zc_flags & ~(unsigned)(IORING_RECVSEND_POLL_FIRST | IORING_SEND_ZC_REPORT_USAGE)) {
        PyErr_Format(PyExc_ValueError,
                     "%s() zc_flags may only contain IORING_SEND_ZC_REPORT_USAGE and "
                     "IORING_RECVSEND_POLL_FIRST",
                     fname);
        return NULL;
    }
    RingioCompletion *c = ringio_completion_new(r, ops, user_data, false);
    if (c == NULL)
        return NULL;
    struct ringio_msg *m = msg_new(c, data, false, fname, "data");
    if (m == NULL || msg_set_address(m, fd, address) < 0 || msg_set_ancdata(m, ancdata) < 0) {
        Py_DECREF(c);
        return NULL;
    }
    struct msg_args a = {.fd = fd, .flags = flags, .zc_flags = zc_flags};
    return ringio_submit(r, c, fn, &a);
}

PyObject *ringio_ring_submit_sendto(RingioRing *r, int fd, PyObject *data, PyObject *address,
                                    PyObject *user_data, int flags)
{
    if (address == NULL || address == Py_None) {
        PyErr_SetString(PyExc_TypeError, "submit_sendto() address is required");
        return NULL;
    }
    if (!PyObject_CheckBuffer(data)) {
        /* one buffer, as socket.sendto (sendmsg takes sequences) */
        PyErr_Format(PyExc_TypeError, "submit_sendto() data must be a bytes-like object, not %.100s",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    return submit_send_msg(r, &sendto_ops, "submit_sendto", fd, data, address, user_data, flags,
                           0, NULL, do_sendmsg);
}

PyObject *ringio_ring_submit_sendmsg(RingioRing *r, int fd, PyObject *data, PyObject *address,
                                     PyObject *user_data, int flags, PyObject *ancdata)
{
    return submit_send_msg(r, &sendmsg_ops, "submit_sendmsg", fd, data, address, user_data,
                           flags, 0, ancdata, do_sendmsg);
}

PyObject *ringio_ring_submit_sendmsg_zc(RingioRing *r, int fd, PyObject *data,
                                        PyObject *address, PyObject *user_data, int flags,
                                        unsigned zc_flags, PyObject *ancdata)
{
    return submit_send_msg(r, &sendmsg_zc_ops, "submit_sendmsg_zc", fd, data, address,
                           user_data, flags, zc_flags, ancdata, do_sendmsg_zc);
}

/* ---- Ring methods: argument parsing only ---------------------------------------------------- */

static int arg_fd(PyObject *o, int *fd)
{
    int v = ringio_fd_of(o);
    if (v < 0)
        return -1;
    *fd = v;
    return 0;
}

static int arg_int(PyObject *o, const char *name, long long min, long long max, long long *out)
{
    if (o == NULL) {
        *out = 0;
        return 0;
    }
    return ringio_int_arg(o, name, min, max, out);
}

const char ringio_doc_submit_recvmsg[] =
    "submit_recvmsg($self, fd, buf, user_data=None, flags=0, *, ancbufsize=0)\n--\n\n"
    "recvmsg(2) into buf: one writable C-contiguous buffer or a sequence of them (filled in "
    "order).  result is the sender's address (None when the socket reports none, e.g. TCP); "
    "res the number of bytes.  With ancbufsize > 0 ancillary data is received too: the "
    "Completion's ancdata is a list of (level, type, bytes) like socket.recvmsg (descriptors "
    "passed with SCM_RIGHTS are then yours to close; if the ring is closed before the "
    "completion is delivered they are closed for you), msg_flags the MSG_* flags returned.";

PyObject *ringio_meth_submit_recvmsg(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"fd", "buf", "user_data", "flags", "ancbufsize", NULL};
    PyObject *argv[5];
    int fd;
    long long flags, anc;
    if (ringio_parse_args("submit_recvmsg", args, nargs, kwnames, names, 4, 2, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[3], "flags", 0, INT_MAX, &flags) < 0 ||
        arg_int(argv[4], "ancbufsize", 0, RINGIO_MAX_ANCBUF, &anc) < 0)
        return NULL;
    return ringio_ring_submit_recvmsg((RingioRing *)self, fd, argv[1], argv[2], (int)flags,
                                      (Py_ssize_t)anc);
}

const char ringio_doc_submit_sendto[] =
    "submit_sendto($self, fd, data, address, user_data=None, flags=0)\n--\n\n"
    "Send data (one C-contiguous buffer, not copied) to address (see submit_connect for the "
    "shapes; the family is the socket's).  result is the number of bytes sent.";

PyObject *ringio_meth_submit_sendto(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    static const char *const names[] = {"fd", "data", "address", "user_data", "flags", NULL};
    PyObject *argv[5];
    int fd;
    long long flags;
    if (ringio_parse_args("submit_sendto", args, nargs, kwnames, names, 5, 3, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[4], "flags", 0, INT_MAX, &flags) < 0)
        return NULL;
    return ringio_ring_submit_sendto((RingioRing *)self, fd, argv[1], argv[2], argv[3],
                                     (int)flags);
}

const char ringio_doc_submit_sendmsg[] =
    "submit_sendmsg($self, fd, data, address=None, user_data=None, flags=0, *, "
    "ancdata=None)\n--\n\n"
    "sendmsg(2): data is one C-contiguous buffer or a sequence of them (gathered in order; "
    "each stays exported until the completion, none is copied); address None for a "
    "connected socket; ancdata an iterable of (level, type, bytes) like socket.sendmsg "
    "(e.g. (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))).  result is the "
    "number of bytes sent.";

PyObject *ringio_meth_submit_sendmsg(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"fd",    "data",    "address", "user_data",
                                        "flags", "ancdata", NULL};
    PyObject *argv[6];
    int fd;
    long long flags;
    if (ringio_parse_args("submit_sendmsg", args, nargs, kwnames, names, 5, 2, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[4], "flags", 0, INT_MAX, &flags) < 0)
        return NULL;
    return ringio_ring_submit_sendmsg((RingioRing *)self, fd, argv[1], argv[2], argv[3],
                                      (int)flags, argv[5]);
}

const char ringio_doc_submit_sendmsg_zc[] =
    "submit_sendmsg_zc($self, fd, data, address=None, user_data=None, flags=0, *, "
    "zc_flags=0, ancdata=None)\n--\n\n"
    "Zero-copy sendmsg (IORING_OP_SENDMSG_ZC); arguments as submit_sendmsg, zc_flags and the "
    "notification handling as submit_send_zc.";

PyObject *ringio_meth_submit_sendmsg_zc(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                        PyObject *kwnames)
{
    static const char *const names[] = {"fd",    "data",     "address", "user_data",
                                        "flags", "zc_flags", "ancdata", NULL};
    PyObject *argv[7];
    int fd;
    long long flags, zc;
    if (ringio_parse_args("submit_sendmsg_zc", args, nargs, kwnames, names, 5, 2, argv) < 0 ||
        arg_fd(argv[0], &fd) < 0 || arg_int(argv[4], "flags", 0, INT_MAX, &flags) < 0 ||
        arg_int(argv[5], "zc_flags", 0, UINT16_MAX, &zc) < 0)
        return NULL;
    return ringio_ring_submit_sendmsg_zc((RingioRing *)self, fd, argv[1], argv[2], argv[3],
                                         (int)flags, (unsigned)zc, argv[6]);
}
