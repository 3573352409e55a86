/*
 * The ringio._ringio._C_API capsule (python/ringio/include/ringio_capi.h).
 *
 * The table is static and shared by every module instance: its functions
 * find the module state through the objects they are given, and ring_new()
 * looks the Ring type up in the importing interpreter's ringio._ringio.
 *
 * Every function checks the type of its ring / completion argument (a C
 * caller can pass anything), turns C arguments into what the submit entry
 * points take (ringio_ext.h), and validates what those do not check because
 * the Python methods already did (negative flags, NULL objects).  Members are
 * only ever appended to the table (see the header's compatibility rules).
 */
#include "ringio_ext.h"

#include "ringio_capi.h"
#include "sockaddr.h"

#include <limits.h>
#include <netinet/in.h>
#include <sys/un.h>

static ringio_state *state_of(PyObject *o)
{
    ringio_state *st = ringio_state_from_type(Py_TYPE(o));
    if (st == NULL)
        PyErr_Clear();
    return st;
}

static int capi_ring_check(PyObject *o)
{
    ringio_state *st = o != NULL ? state_of(o) : NULL;
    return st != NULL && PyObject_TypeCheck(o, st->ring_type);
}

static int capi_completion_check(PyObject *o)
{
    ringio_state *st = o != NULL ? state_of(o) : NULL;
    return st != NULL && PyObject_TypeCheck(o, st->completion_type);
}

static RingioRing *as_ring(PyObject *o)
{
    if (capi_ring_check(o))
        return (RingioRing *)o;
    PyErr_Format(PyExc_TypeError, "expected a ringio.Ring, not %.100s",
                 o != NULL ? Py_TYPE(o)->tp_name : "NULL");
    return NULL;
}

static RingioCompletion *as_completion(PyObject *o)
{
    if (capi_completion_check(o))
        return (RingioCompletion *)o;
    PyErr_Format(PyExc_TypeError, "expected a ringio.Completion, not %.100s",
                 o != NULL ? Py_TYPE(o)->tp_name : "NULL");
    return NULL;
}

/* A required object argument. */
static int need(PyObject *o, const char *fname, const char *argname)
{
    if (o != NULL)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s() %s must not be NULL", fname, argname);
    return -1;
}

/* MSG_* / SOCK_* flags: the Python methods refuse negative values. */
static int check_flags(int flags, const char *fname)
{
    if (flags >= 0)
        return 0;
    PyErr_Format(PyExc_ValueError, "%s() flags must be >= 0, not %d", fname, flags);
    return -1;
}

/* Seconds as the C API gives them: < 0, NaN or huge means no limit. */
static int64_t timeout_ns(double timeout)
{
    if (timeout >= 0 && timeout < 9.0e9)
        return (int64_t)(timeout * 1e9);
    return -1;
}

/* ---- rings ---------------------------------------------------------------------- */

static PyObject *ring_type(void)
{
    PyObject *mod = PyImport_ImportModule("ringio._ringio");
    if (mod == NULL)
        return NULL;
    PyObject *tp = PyObject_GetAttrString(mod, "Ring");
    Py_DECREF(mod);
    return tp;
}

static PyObject *capi_ring_new_ex(unsigned entries, unsigned flags, PyObject *kwargs)
{
    if (kwargs == Py_None)
        kwargs = NULL;
    if (kwargs != NULL && !PyDict_Check(kwargs)) {
        PyErr_Format(PyExc_TypeError, "ring_new_ex() kwargs must be a dict, None or NULL, not %.100s",
                     Py_TYPE(kwargs)->tp_name);
        return NULL;
    }
    PyObject *tp = ring_type();
    if (tp == NULL)
        return NULL;
    PyObject *args = Py_BuildValue("(II)", entries, flags);
    PyObject *ring = NULL;
    if (args != NULL)
        ring = PyObject_Call(tp, args, kwargs);
    Py_XDECREF(args);
    Py_DECREF(tp);
    return ring;
}

static PyObject *capi_ring_new(unsigned entries, unsigned flags)
{
    return capi_ring_new_ex(entries, flags, NULL);
}

static PyObject *capi_probe(unsigned entries, unsigned flags)
{
    unsigned max = (flags & IORING_SETUP_CLAMP) ? UINT32_MAX : 32768u;
    if (entries < 1 || entries > max) {
        PyErr_Format(PyExc_ValueError, "probe() entries must be in [1, %u], not %u", max,
                     entries);
        return NULL;
    }
    return ringio_probe_dict(entries, flags);
}

static int capi_ring_close(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_close(r) : -1;
}

static bool is_closed(RingioRing *r)
{
    return __atomic_load_n(&r->core, __ATOMIC_ACQUIRE) == NULL;
}

/* The ring, if it is open; else NULL with TypeError or RingClosed. */
static RingioRing *open_ring(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL)
        return NULL;
    if (is_closed(r)) {
        ringio_raise_closed(r);
        return NULL;
    }
    return r;
}

static int capi_ring_fd(PyObject *ring)
{
    RingioRing *r = open_ring(ring);
    if (r == NULL || ringio_ring_fd_used(r) < 0)
        return -1;
    return r->fd;
}

static int capi_ring_closed(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? (int)is_closed(r) : -1;
}

#define RING_UINT_GETTER(name, field)                                                     \
    static int capi_ring_##name(PyObject *ring, unsigned *out)                            \
    {                                                                                     \
        RingioRing *r = open_ring(ring);                                                  \
        if (r == NULL)                                                                    \
            return -1;                                                                    \
        *out = r->field;                                                                  \
        return 0;                                                                         \
    }

RING_UINT_GETTER(sq_entries, sq_entries)
RING_UINT_GETTER(cq_entries, cq_entries)
RING_UINT_GETTER(features, features)
RING_UINT_GETTER(setup_flags, setup_flags)

static int capi_ring_submit(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_flush(r) : -1;
}

static PyObject *capi_ring_wait(PyObject *ring, double timeout)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_wait_one(r, timeout_ns(timeout)) : NULL;
}

static PyObject *capi_ring_wait_many(PyObject *ring, unsigned max, double timeout)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_wait_many(r, max, timeout_ns(timeout)) : NULL;
}

static int capi_ring_break_wait(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_break_wait(r) : -1;
}

/* ---- submissions: nop / timeout / cancel / poll ------------------------------------- */

static PyObject *capi_ring_submit_nop(PyObject *ring, PyObject *user_data)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_nop(r, user_data) : NULL;
}

static PyObject *capi_ring_submit_timeout(PyObject *ring, double seconds, PyObject *user_data)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_timeout(r, seconds, user_data) : NULL;
}

static PyObject *capi_ring_submit_cancel(PyObject *ring, PyObject *target, PyObject *user_data,
                                         unsigned flags)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_cancel(r, target, user_data, flags) : NULL;
}

static PyObject *capi_ring_submit_poll(PyObject *ring, int fd, unsigned mask,
                                       PyObject *user_data, int multishot)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_poll(r, fd, mask, user_data, multishot != 0) : NULL;
}

/* ---- submissions: sockets ------------------------------------------------------------ */

static PyObject *capi_ring_submit_recv(PyObject *ring, int fd, PyObject *buf,
                                       PyObject *user_data, int flags)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL || need(buf, "submit_recv", "buf") < 0 || check_flags(flags, "submit_recv") < 0)
        return NULL;
    return ringio_ring_submit_recv(r, fd, buf, user_data, flags);
}

static PyObject *capi_ring_submit_recv_multishot(PyObject *ring, int fd, size_t buffer_size,
                                                 unsigned buffer_count, PyObject *user_data,
                                                 int flags, uint32_t sequence)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL || check_flags(flags, "submit_recv_multishot") < 0)
        return NULL;
    /* The entry point range-checks both (a huge size_t stays huge). */
    long long size = buffer_size > (size_t)LLONG_MAX ? LLONG_MAX : (long long)buffer_size;
    return ringio_ring_submit_recv_multishot(r, fd, size, (long long)buffer_count, user_data,
                                             flags, sequence);
}

static PyObject *capi_ring_submit_send(PyObject *ring, int fd, PyObject *data,
                                       PyObject *user_data, int flags)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL || need(data, "submit_send", "data") < 0 ||
        check_flags(flags, "submit_send") < 0)
        return NULL;
    return ringio_ring_submit_send(r, fd, data, user_data, flags);
}

static PyObject *capi_ring_submit_send_zc(PyObject *ring, int fd, PyObject *data,
                                          PyObject *user_data, int flags, unsigned zc_flags)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL || need(data, "submit_send_zc", "data") < 0 ||
        check_flags(flags, "submit_send_zc") < 0)
        return NULL;
    return ringio_ring_submit_send_zc(r, fd, data, user_data, flags, zc_flags);
}

static PyObject *capi_ring_submit_recvmsg(PyObject *ring, int fd, PyObject *buf,
                                          PyObject *user_data, int flags, size_t ancbufsize)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL || need(buf, "submit_recvmsg", "buf") < 0 ||
        check_flags(flags, "submit_recvmsg") < 0)
        return NULL;
    Py_ssize_t anc = ancbufsize > (size_t)PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)ancbufsize;
    return ringio_ring_submit_recvmsg(r, fd, buf, user_data, flags, anc);
}

static PyObject *capi_ring_submit_sendto(PyObject *ring, int fd, PyObject *data,
                                         PyObject *address, PyObject *user_data, int flags)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL || need(data, "submit_sendto", "data") < 0 ||
        check_flags(flags, "submit_sendto") < 0)
        return NULL;
    return ringio_ring_submit_sendto(r, fd, data, address, user_data, flags);
}

static PyObject *capi_ring_submit_sendmsg(PyObject *ring, int fd, PyObject *data,
                                          PyObject *address, PyObject *user_data, int flags,
                                          PyObject *ancdata)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL || need(data, "submit_sendmsg", "data") < 0 ||
        check_flags(flags, "submit_sendmsg") < 0)
        return NULL;
    return ringio_ring_submit_sendmsg(r, fd, data, address, user_data, flags, ancdata);
}

static PyObject *capi_ring_submit_sendmsg_zc(PyObject *ring, int fd, PyObject *data,
                                             PyObject *address, PyObject *user_data, int flags,
                                             unsigned zc_flags, PyObject *ancdata)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL || need(data, "submit_sendmsg_zc", "data") < 0 ||
        check_flags(flags, "submit_sendmsg_zc") < 0)
        return NULL;
    return ringio_ring_submit_sendmsg_zc(r, fd, data, address, user_data, flags, zc_flags,
                                         ancdata);
}

static PyObject *capi_ring_submit_accept(PyObject *ring, int fd, PyObject *user_data, int flags)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_accept(r, fd, user_data, flags) : NULL;
}

static PyObject *capi_ring_submit_accept_multishot(PyObject *ring, int fd, PyObject *user_data,
                                                   int flags, uint32_t sequence)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_accept_multishot(r, fd, user_data, flags, sequence)
                     : NULL;
}

static PyObject *capi_ring_submit_connect(PyObject *ring, int fd, PyObject *address,
                                          PyObject *user_data)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_connect(r, fd, address, user_data) : NULL;
}

static PyObject *capi_ring_submit_shutdown(PyObject *ring, int fd, int how, PyObject *user_data)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_shutdown(r, fd, how, user_data) : NULL;
}

static PyObject *capi_ring_submit_close(PyObject *ring, int fd, PyObject *user_data)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_close(r, fd, user_data) : NULL;
}

static PyObject *capi_ring_submit_socket(PyObject *ring, int domain, int type, int protocol,
                                         int flags, PyObject *user_data)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_submit_socket(r, domain, type, protocol, flags, user_data)
                     : NULL;
}

/* ---- serving --------------------------------------------------------------------------- */

static int capi_ring_set_callback(PyObject *ring, PyObject *callback)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_set_callback(r, callback) : -1;
}

static int capi_ring_set_c_callback(PyObject *ring, RingioCCallback fn, void *user)
{
    /* No cast: RingioCCallback (header) and ringio_c_callback (the Ring's
     * field) must stay the same type, or this does not compile. */
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_set_c_callback(r, fn, user) : -1;
}

static int capi_ring_serve_completions(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_serve(r) : -1;
}

static int capi_ring_stop_serving(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_stop_serving(r) : -1;
}

static int capi_ring_reset_serving(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_reset_serving(r) : -1;
}

/* ---- completions ---------------------------------------------------------------------- */

static PyObject *capi_completion_user_data(PyObject *o)
{
    RingioCompletion *c = as_completion(o);
    if (c == NULL)
        return NULL;
    return Py_NewRef(c->user_data != NULL ? c->user_data : Py_None);
}

static PyObject *capi_completion_result(PyObject *o)
{
    RingioCompletion *c = as_completion(o);
    if (c == NULL)
        return NULL;
    return ringio_completion_result(c);
}

static int capi_completion_res(PyObject *o, int32_t *res)
{
    RingioCompletion *c = as_completion(o);
    if (c == NULL)
        return -1;
    *res = c->res;
    return 0;
}

static int capi_completion_flags(PyObject *o, uint32_t *flags)
{
    RingioCompletion *c = as_completion(o);
    if (c == NULL)
        return -1;
    *flags = c->flags;
    return 0;
}

static int capi_completion_sequence(PyObject *o, uint32_t *sequence)
{
    RingioCompletion *c = as_completion(o);
    if (c == NULL)
        return -1;
    *sequence = c->sequence;
    return 0;
}

static int capi_completion_kind(PyObject *o)
{
    RingioCompletion *c = as_completion(o);
    return c != NULL ? (int)c->kind : -1;
}

static int capi_completion_more(PyObject *o)
{
    RingioCompletion *c = as_completion(o);
    return c != NULL ? (int)c->more : -1;
}

static int capi_completion_done(PyObject *o)
{
    RingioCompletion *c = as_completion(o);
    return c != NULL ? (int)c->done : -1;
}

static int capi_completion_zc_copied(PyObject *o, int *copied)
{
    RingioCompletion *c = as_completion(o);
    if (c == NULL)
        return -1;
    *copied = c->zc_copied < 0 ? -1 : (int)c->zc_copied;
    return 0;
}

/* Same rules as the Completion.ancdata / msg_flags getters (completion.c). */
static PyObject *capi_completion_ancdata(PyObject *o)
{
    RingioCompletion *c = as_completion(o);
    if (c == NULL)
        return NULL;
    if (!c->done || c->ancdata == NULL)
        Py_RETURN_NONE;
    return Py_NewRef(c->ancdata);
}

static int capi_completion_msg_flags(PyObject *o, int *msg_flags)
{
    RingioCompletion *c = as_completion(o);
    if (c == NULL)
        return -1;
    if (!c->done || c->kind != RINGIO_KIND_RECVMSG || c->ring_serial == 0)
        return 0;
    *msg_flags = c->msg_flags;
    return 1;
}

/* ---- addresses --------------------------------------------------------------------------- */

static PyObject *capi_sockaddr_to_address(const struct sockaddr *sa, socklen_t len)
{
    if (len == 0)
        Py_RETURN_NONE;
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t)) {
        PyErr_SetString(PyExc_ValueError, "sockaddr_to_address(): no address");
        return NULL;
    }
    size_t min, max;
    switch (sa->sa_family) {
    case AF_INET:
        min = max = sizeof(struct sockaddr_in);
        break;
    case AF_INET6:
        min = max = sizeof(struct sockaddr_in6);
        break;
    case AF_UNIX:
        min = offsetof(struct sockaddr_un, sun_path);
        max = sizeof(struct sockaddr_un);
        break;
    default:
        PyErr_Format(PyExc_ValueError,
                     "sockaddr_to_address(): unsupported address family %d (AF_INET, AF_INET6 "
                     "and AF_UNIX are)",
                     (int)sa->sa_family);
        return NULL;
    }
    if ((size_t)len < min || (size_t)len > max) {
        PyErr_Format(PyExc_ValueError,
                     "sockaddr_to_address(): length %u does not fit address family %d",
                     (unsigned)len, (int)sa->sa_family);
        return NULL;
    }
    return ringio_addr_to_py(sa, len);
}

static int capi_address_to_sockaddr(PyObject *address, int family, struct sockaddr_storage *out,
                                    socklen_t *len)
{
    if (need(address, "address_to_sockaddr", "address") < 0)
        return -1;
    if (out == NULL || len == NULL) {
        PyErr_SetString(PyExc_ValueError, "address_to_sockaddr(): out and len are required");
        return -1;
    }
    return ringio_addr_from_py(address, family, out, len);
}

/* ---- the table ------------------------------------------------------------------------------ */

static const RingioCAPI ringio_capi = {
    .abi_version = RINGIO_CAPI_ABI_VERSION,
    .struct_size = (uint32_t)sizeof(RingioCAPI),
    .feature_flags =
        RINGIO_CAPI_FEATURE_CORE | RINGIO_CAPI_FEATURE_SOCKETS | RINGIO_CAPI_FEATURE_SERVING,
    /* revision 1 */
    .ring_new = capi_ring_new,
    .ring_check = capi_ring_check,
    .ring_close = capi_ring_close,
    .ring_fd = capi_ring_fd,
    .ring_submit_nop = capi_ring_submit_nop,
    .ring_wait = capi_ring_wait,
    .ring_break_wait = capi_ring_break_wait,
    .completion_check = capi_completion_check,
    .completion_user_data = capi_completion_user_data,
    .completion_result = capi_completion_result,
    .completion_res = capi_completion_res,
    .completion_flags = capi_completion_flags,
    .completion_sequence = capi_completion_sequence,
    .completion_kind = capi_completion_kind,
    .completion_more = capi_completion_more,
    .completion_done = capi_completion_done,
    /* revision 2 */
    .probe = capi_probe,
    .ring_new_ex = capi_ring_new_ex,
    .ring_closed = capi_ring_closed,
    .ring_sq_entries = capi_ring_sq_entries,
    .ring_cq_entries = capi_ring_cq_entries,
    .ring_features = capi_ring_features,
    .ring_setup_flags = capi_ring_setup_flags,
    .ring_submit = capi_ring_submit,
    .ring_wait_many = capi_ring_wait_many,
    .ring_submit_timeout = capi_ring_submit_timeout,
    .ring_submit_cancel = capi_ring_submit_cancel,
    .ring_submit_poll = capi_ring_submit_poll,
    .ring_submit_recv = capi_ring_submit_recv,
    .ring_submit_recv_multishot = capi_ring_submit_recv_multishot,
    .ring_submit_send = capi_ring_submit_send,
    .ring_submit_send_zc = capi_ring_submit_send_zc,
    .ring_submit_recvmsg = capi_ring_submit_recvmsg,
    .ring_submit_sendto = capi_ring_submit_sendto,
    .ring_submit_sendmsg = capi_ring_submit_sendmsg,
    .ring_submit_sendmsg_zc = capi_ring_submit_sendmsg_zc,
    .ring_submit_accept = capi_ring_submit_accept,
    .ring_submit_accept_multishot = capi_ring_submit_accept_multishot,
    .ring_submit_connect = capi_ring_submit_connect,
    .ring_submit_shutdown = capi_ring_submit_shutdown,
    .ring_submit_close = capi_ring_submit_close,
    .ring_submit_socket = capi_ring_submit_socket,
    .ring_set_callback = capi_ring_set_callback,
    .ring_set_c_callback = capi_ring_set_c_callback,
    .ring_serve_completions = capi_ring_serve_completions,
    .ring_stop_serving = capi_ring_stop_serving,
    .ring_reset_serving = capi_ring_reset_serving,
    .completion_zc_copied = capi_completion_zc_copied,
    .completion_ancdata = capi_completion_ancdata,
    .completion_msg_flags = capi_completion_msg_flags,
    .sockaddr_to_address = capi_sockaddr_to_address,
    .address_to_sockaddr = capi_address_to_sockaddr,
};

/* The header's kind numbers are the extension's. */
_Static_assert(RINGIO_CAPI_KIND_NOP == RINGIO_KIND_NOP, "kind NOP");
_Static_assert(RINGIO_CAPI_KIND_TIMEOUT == RINGIO_KIND_TIMEOUT, "kind TIMEOUT");
_Static_assert(RINGIO_CAPI_KIND_CANCEL == RINGIO_KIND_CANCEL, "kind CANCEL");
_Static_assert(RINGIO_CAPI_KIND_POLL == RINGIO_KIND_POLL, "kind POLL");
_Static_assert(RINGIO_CAPI_KIND_RECV == RINGIO_KIND_RECV, "kind RECV");
_Static_assert(RINGIO_CAPI_KIND_RECV_MULTISHOT == RINGIO_KIND_RECV_MULTISHOT, "kind RECV_MULTISHOT");
_Static_assert(RINGIO_CAPI_KIND_SEND == RINGIO_KIND_SEND, "kind SEND");
_Static_assert(RINGIO_CAPI_KIND_SEND_ZC == RINGIO_KIND_SEND_ZC, "kind SEND_ZC");
_Static_assert(RINGIO_CAPI_KIND_RECVMSG == RINGIO_KIND_RECVMSG, "kind RECVMSG");
_Static_assert(RINGIO_CAPI_KIND_SENDTO == RINGIO_KIND_SENDTO, "kind SENDTO");
_Static_assert(RINGIO_CAPI_KIND_SENDMSG == RINGIO_KIND_SENDMSG, "kind SENDMSG");
_Static_assert(RINGIO_CAPI_KIND_SENDMSG_ZC == RINGIO_KIND_SENDMSG_ZC, "kind SENDMSG_ZC");
_Static_assert(RINGIO_CAPI_KIND_ACCEPT == RINGIO_KIND_ACCEPT, "kind ACCEPT");
_Static_assert(RINGIO_CAPI_KIND_ACCEPT_MULTISHOT == RINGIO_KIND_ACCEPT_MULTISHOT, "kind ACCEPT_MULTISHOT");
_Static_assert(RINGIO_CAPI_KIND_CONNECT == RINGIO_KIND_CONNECT, "kind CONNECT");
_Static_assert(RINGIO_CAPI_KIND_SHUTDOWN == RINGIO_KIND_SHUTDOWN, "kind SHUTDOWN");
_Static_assert(RINGIO_CAPI_KIND_CLOSE == RINGIO_KIND_CLOSE, "kind CLOSE");
_Static_assert(RINGIO_CAPI_KIND_SOCKET == RINGIO_KIND_SOCKET, "kind SOCKET");
_Static_assert(RINGIO_CAPI_KIND_OPENAT == RINGIO_KIND_OPENAT, "kind OPENAT");
_Static_assert(RINGIO_CAPI_KIND_READ == RINGIO_KIND_READ, "kind READ");
_Static_assert(RINGIO_CAPI_KIND_WRITE == RINGIO_KIND_WRITE, "kind WRITE");
_Static_assert(RINGIO_CAPI_KIND_READV == RINGIO_KIND_READV, "kind READV");
_Static_assert(RINGIO_CAPI_KIND_WRITEV == RINGIO_KIND_WRITEV, "kind WRITEV");
_Static_assert(RINGIO_CAPI_KIND_FSYNC == RINGIO_KIND_FSYNC, "kind FSYNC");
_Static_assert(RINGIO_CAPI_KIND_FALLOCATE == RINGIO_KIND_FALLOCATE, "kind FALLOCATE");
_Static_assert(RINGIO_CAPI_KIND_STATX == RINGIO_KIND_STATX, "kind STATX");
_Static_assert(RINGIO_CAPI_KIND_UNLINKAT == RINGIO_KIND_UNLINKAT, "kind UNLINKAT");
_Static_assert(RINGIO_CAPI_KIND_RENAMEAT == RINGIO_KIND_RENAMEAT, "kind RENAMEAT");
_Static_assert(RINGIO_CAPI_KIND_MKDIRAT == RINGIO_KIND_MKDIRAT, "kind MKDIRAT");

/* The table as built must be exactly the header's latest revision. */
_Static_assert(sizeof(RingioCAPI) == RINGIO_CAPI_SIZE_2, "append RINGIO_CAPI_SIZE_<n>");
_Static_assert(offsetof(RingioCAPI, ring_new) == 16, "revision 1 layout moved");
_Static_assert(RINGIO_CAPI_SIZE_1 == 16 + 16 * sizeof(void *), "revision 1 layout changed");

int ringio_capi_init(PyObject *module)
{
    /* The capsule API takes a non-const pointer; nobody writes through it. */
    PyObject *capsule =
        PyCapsule_New((void *)(uintptr_t)&ringio_capi, RINGIO_CAPI_CAPSULE_NAME, NULL);
    if (capsule == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, "_C_API", capsule);
    Py_DECREF(capsule);
    return rc;
}
