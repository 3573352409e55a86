/*
 * ringio_capi_client: a small extension module that uses ringio only through
 * the C API capsule (ringio_capi.h), built by tests/python/test_capi.py with
 * the system C compiler.
 *
 *   layout()                         the table as this header sees it
 *   import_at_least(size)            RingioCAPI_ImportAtLeast(size) -> True
 *   echo_roundtrip(fd_a, fd_b, data) send data on fd_a, recv it on fd_b -> bytes
 *   tcp_roundtrip(listen_fd, address, data)
 *                                    socket/connect/accept/send/recv/shutdown/close
 *                                    -> (bytes, peer address)
 *   install_counter(ring, stop_after=0, fail_at=0, fail_with=ValueError)
 *                                    a Counter installed as the ring's C serving callback
 *   serve(ring)                      the C API's ring_serve_completions
 */
#define PY_SSIZE_T_CLEAN
#include <ringio_capi.h>

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

/* Seconds any single wait may take before the test is declared stuck. */
#define WAIT_SECONDS 10.0

typedef struct {
    const RingioCAPI *api;
    PyTypeObject *counter_type;
} client_state;

static client_state *get_state(PyObject *module)
{
    return (client_state *)PyModule_GetState(module);
}

/* ---- layout ---------------------------------------------------------------------- */

/* Every member of the table, in order. */
#define RINGIO_CAPI_MEMBERS(X)                                                             \
    X(abi_version) X(struct_size) X(feature_flags) X(ring_new) X(ring_check) X(ring_close) \
    X(ring_fd) X(ring_submit_nop) X(ring_wait) X(ring_break_wait) X(completion_check)      \
    X(completion_user_data) X(completion_result) X(completion_res) X(completion_flags)     \
    X(completion_sequence) X(completion_kind) X(completion_more) X(completion_done)        \
    X(probe) X(ring_new_ex) X(ring_closed) X(ring_sq_entries) X(ring_cq_entries)           \
    X(ring_features) X(ring_setup_flags) X(ring_submit) X(ring_wait_many)                  \
    X(ring_submit_timeout) X(ring_submit_cancel) X(ring_submit_poll) X(ring_submit_recv)   \
    X(ring_submit_recv_multishot) X(ring_submit_send) X(ring_submit_send_zc)               \
    X(ring_submit_recvmsg) X(ring_submit_sendto) X(ring_submit_sendmsg)                    \
    X(ring_submit_sendmsg_zc) X(ring_submit_accept) X(ring_submit_accept_multishot)        \
    X(ring_submit_connect) X(ring_submit_shutdown) X(ring_submit_close)                    \
    X(ring_submit_socket) X(ring_set_callback) X(ring_set_c_callback)                      \
    X(ring_serve_completions) X(ring_stop_serving) X(ring_reset_serving)                   \
    X(completion_zc_copied) X(completion_ancdata) X(completion_msg_flags)                  \
    X(sockaddr_to_address) X(address_to_sockaddr)

static int add_size(PyObject *d, const char *key, size_t v)
{
    PyObject *o = PyLong_FromSize_t(v);
    if (o == NULL)
        return -1;
    int rc = PyDict_SetItemString(d, key, o);
    Py_DECREF(o);
    return rc;
}

static PyObject *layout(PyObject *module, PyObject *unused)
{
    (void)unused;
    const RingioCAPI *api = get_state(module)->api;
    PyObject *offsets = PyList_New(0);
    PyObject *nulls = PyList_New(0);
    PyObject *d = PyDict_New();
    if (offsets == NULL || nulls == NULL || d == NULL)
        goto fail;
#define ADD_OFFSET(name)                                                                      \
    {                                                                                         \
        PyObject *t = Py_BuildValue("(sn)", #name, (Py_ssize_t)offsetof(RingioCAPI, name));  \
        if (t == NULL || PyList_Append(offsets, t) < 0) {                                     \
            Py_XDECREF(t);                                                                    \
            goto fail;                                                                        \
        }                                                                                     \
        Py_DECREF(t);                                                                         \
    }
    RINGIO_CAPI_MEMBERS(ADD_OFFSET)
#undef ADD_OFFSET
    /* Every function pointer of this header's table must be set. */
#define CHECK_NULL(name)                                                                      \
    if (offsetof(RingioCAPI, name) >= offsetof(RingioCAPI, ring_new) &&                       \
        *(void *const *)((const char *)api + offsetof(RingioCAPI, name)) == NULL) {           \
        PyObject *n = PyUnicode_FromString(#name);                                            \
        if (n == NULL || PyList_Append(nulls, n) < 0) {                                       \
            Py_XDECREF(n);                                                                    \
            goto fail;                                                                        \
        }                                                                                     \
        Py_DECREF(n);                                                                         \
    }
    RINGIO_CAPI_MEMBERS(CHECK_NULL)
#undef CHECK_NULL
    if (add_size(d, "sizeof", sizeof(RingioCAPI)) < 0 ||
        add_size(d, "struct_size", api->struct_size) < 0 ||
        add_size(d, "abi_version", api->abi_version) < 0 ||
        add_size(d, "header_abi_version", RINGIO_CAPI_ABI_VERSION) < 0 ||
        add_size(d, "feature_flags", (size_t)api->feature_flags) < 0 ||
        add_size(d, "size_1", RINGIO_CAPI_SIZE_1) < 0 ||
        add_size(d, "size_2", RINGIO_CAPI_SIZE_2) < 0 ||
        add_size(d, "has_address_to_sockaddr", RINGIO_CAPI_HAS(api, address_to_sockaddr)) < 0 ||
        add_size(d, "kind_socket", RINGIO_CAPI_KIND_SOCKET) < 0 ||
        PyDict_SetItemString(d, "offsets", offsets) < 0 ||
        PyDict_SetItemString(d, "null_members", nulls) < 0)
        goto fail;
    Py_DECREF(offsets);
    Py_DECREF(nulls);
    return d;
fail:
    Py_XDECREF(offsets);
    Py_XDECREF(nulls);
    Py_XDECREF(d);
    return NULL;
}

static PyObject *import_at_least(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_ssize_t size = PyLong_AsSsize_t(arg);
    if (size < 0)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "size < 0");
    if (RingioCAPI_ImportAtLeast((size_t)size) == NULL)
        return NULL;
    Py_RETURN_TRUE;
}

/* ---- helpers ------------------------------------------------------------------------ */

/* Close ring, keeping the exception that is being raised. */
static void close_quietly(const RingioCAPI *api, PyObject *ring)
{
    if (ring == NULL)
        return;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (api->ring_close(ring) < 0)
        PyErr_WriteUnraisable(ring);
    PyErr_Restore(t, v, tb);
}

/* Wait for the completion of `op` (a one-shot operation submitted to ring),
 * which must be the next one.  Its res, or INT32_MIN with an exception. */
static int32_t wait_for(const RingioCAPI *api, PyObject *ring, PyObject *op, const char *what)
{
    PyObject *c = api->ring_wait(ring, WAIT_SECONDS);
    if (c == NULL)
        return INT32_MIN;
    if (c == Py_None) {
        Py_DECREF(c);
        PyErr_Format(PyExc_TimeoutError, "%s: no completion within %.0f s", what, WAIT_SECONDS);
        return INT32_MIN;
    }
    int32_t res = INT32_MIN;
    if (c != op || api->completion_check(c) != 1 || api->completion_done(c) != 1) {
        PyErr_Format(PyExc_AssertionError, "%s: wait() returned %R, expected %R", what, c, op);
    }
    else if (api->completion_res(c, &res) < 0) {
        res = INT32_MIN;
    }
    Py_DECREF(c);
    return res;
}

/* Submit-and-wait for an operation whose result must be >= 0. */
static int32_t run(const RingioCAPI *api, PyObject *ring, PyObject *op, const char *what)
{
    if (op == NULL)
        return INT32_MIN;
    int32_t res = wait_for(api, ring, op, what);
    Py_DECREF(op);
    if (res != INT32_MIN && res < 0) {
        errno = -res;
        PyErr_SetFromErrno(PyExc_OSError);
        return INT32_MIN;
    }
    return res;
}

/* Receive exactly len(buf) bytes from fd into the bytearray buf. */
static int recv_all(const RingioCAPI *api, PyObject *ring, int fd, PyObject *buf)
{
    Py_ssize_t want = PyByteArray_GET_SIZE(buf), got = 0;
    PyObject *view = PyMemoryView_FromObject(buf);
    if (view == NULL)
        return -1;
    int rc = -1;
    while (got < want) {
        PyObject *rest = PySequence_GetSlice(view, got, want);
        if (rest == NULL)
            goto out;
        PyObject *op = api->ring_submit_recv(ring, fd, rest, NULL, 0);
        /* The operation holds its own export of `rest` until it completes. */
        Py_DECREF(rest);
        int32_t res = run(api, ring, op, "recv");
        if (res == INT32_MIN)
            goto out;
        if (res == 0) {
            PyErr_Format(PyExc_EOFError, "recv: EOF after %zd of %zd bytes", got, want);
            goto out;
        }
        got += res;
    }
    rc = 0;
out:
    Py_DECREF(view);
    return rc;
}

/* ---- echo_roundtrip ----------------------------------------------------------------------- */

/* The two completions of send(a) and recv(b), in whichever order they come. */
static PyObject *echo_roundtrip(PyObject *module, PyObject *args)
{
    const RingioCAPI *api = get_state(module)->api;
    int fd_a, fd_b;
    PyObject *payload;
    if (!PyArg_ParseTuple(args, "iiS:echo_roundtrip", &fd_a, &fd_b, &payload))
        return NULL;
    Py_ssize_t n = PyBytes_GET_SIZE(payload);
    PyObject *ring = NULL, *buf = NULL, *send = NULL, *recv = NULL, *out = NULL;
    PyObject *tag_send = PyUnicode_FromString("send"), *tag_recv = PyUnicode_FromString("recv");
    if (tag_send == NULL || tag_recv == NULL)
        goto out;

    ring = api->ring_new(8, 0);
    if (ring == NULL)
        goto out;
    buf = PyByteArray_FromStringAndSize(NULL, n);
    if (buf == NULL)
        goto out;
    memset(PyByteArray_AS_STRING(buf), 0, (size_t)n);
    send = api->ring_submit_send(ring, fd_a, payload, tag_send, 0);
    if (send == NULL)
        goto out;
    recv = api->ring_submit_recv(ring, fd_b, buf, tag_recv, 0);
    if (recv == NULL)
        goto out;

    int32_t sent = -1, received = -1;
    for (int i = 0; i < 2; i++) {
        PyObject *c = api->ring_wait(ring, WAIT_SECONDS);
        if (c == NULL)
            goto out;
        if (c == Py_None) {
            Py_DECREF(c);
            PyErr_SetString(PyExc_TimeoutError, "echo_roundtrip: no completion");
            goto out;
        }
        int32_t res;
        PyObject *ud = api->completion_user_data(c);
        PyObject *result = api->completion_result(c);
        int kind = api->completion_kind(c);
        int ok = ud != NULL && result != NULL && kind >= 0 && api->completion_res(c, &res) == 0;
        if (ok && c == send && ud == tag_send && kind == RINGIO_CAPI_KIND_SEND)
            sent = res;
        else if (ok && c == recv && ud == tag_recv && kind == RINGIO_CAPI_KIND_RECV)
            received = res;
        else if (ok)
            PyErr_Format(PyExc_AssertionError, "unexpected completion %R", c);
        /* result is res as an int for both kinds */
        if (ok && !PyErr_Occurred() &&
            (!PyLong_Check(result) || PyLong_AsLong(result) != (long)res))
            PyErr_Format(PyExc_AssertionError, "result %R != res %d", result, (int)res);
        Py_XDECREF(ud);
        Py_XDECREF(result);
        Py_DECREF(c);
        if (PyErr_Occurred())
            goto out;
    }
    if (sent != (int32_t)n) {
        PyErr_Format(PyExc_AssertionError, "send res %d, expected %zd", (int)sent, n);
        goto out;
    }
    if (received < 0) {
        errno = -received;
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    /* A stream socket may deliver the payload in pieces. */
    if (received < (int32_t)n) {
        PyObject *rest = PyByteArray_FromStringAndSize(NULL, n - received);
        if (rest == NULL)
            goto out;
        if (recv_all(api, ring, fd_b, rest) < 0) {
            Py_DECREF(rest);
            goto out;
        }
        memcpy(PyByteArray_AS_STRING(buf) + received, PyByteArray_AS_STRING(rest),
               (size_t)(n - received));
        Py_DECREF(rest);
    }
    if (api->ring_close(ring) < 0)
        goto out;
    if (api->ring_closed(ring) != 1) {
        PyErr_SetString(PyExc_AssertionError, "ring_closed() != 1 after ring_close()");
        goto out;
    }
    out = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf), n);
out:
    close_quietly(api, ring);
    Py_XDECREF(ring);
    Py_XDECREF(buf);
    Py_XDECREF(send);
    Py_XDECREF(recv);
    Py_XDECREF(tag_send);
    Py_XDECREF(tag_recv);
    return out;
}

/* ---- tcp_roundtrip -------------------------------------------------------------------------- */

static PyObject *tcp_roundtrip(PyObject *module, PyObject *args)
{
    const RingioCAPI *api = get_state(module)->api;
    int listen_fd;
    PyObject *address, *payload;
    if (!PyArg_ParseTuple(args, "iOS:tcp_roundtrip", &listen_fd, &address, &payload))
        return NULL;
    Py_ssize_t n = PyBytes_GET_SIZE(payload);
    PyObject *ring = NULL, *kwargs = NULL, *addr = NULL, *accept = NULL, *connect = NULL;
    PyObject *buf = NULL, *peer = NULL, *out = NULL;
    int client = -1, server = -1;

    /* Through struct sockaddr and back: both converters. */
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (api->address_to_sockaddr(address, AF_INET, &ss, &sslen) < 0)
        return NULL;
    if (ss.ss_family != AF_INET || sslen != sizeof(struct sockaddr_in))
        return PyErr_Format(PyExc_AssertionError, "address_to_sockaddr gave family %d len %u",
                            (int)ss.ss_family, (unsigned)sslen);
    addr = api->sockaddr_to_address((const struct sockaddr *)&ss, sslen);
    if (addr == NULL)
        return NULL;

    kwargs = Py_BuildValue("{sI}", "cq_entries", 64u);
    if (kwargs == NULL)
        goto out;
    ring = api->ring_new_ex(16, 0, kwargs);
    if (ring == NULL)
        goto out;
    unsigned cq = 0;
    if (api->ring_cq_entries(ring, &cq) < 0)
        goto out;
    if (cq != 64) {
        PyErr_Format(PyExc_AssertionError, "cq_entries %u, expected 64", cq);
        goto out;
    }

    int32_t res = run(api, ring, api->ring_submit_socket(ring, AF_INET, SOCK_STREAM, 0,
                                                         SOCK_CLOEXEC, NULL),
                      "socket");
    if (res == INT32_MIN)
        goto out;
    client = res;

    accept = api->ring_submit_accept(ring, listen_fd, NULL, SOCK_CLOEXEC);
    if (accept == NULL)
        goto out;
    connect = api->ring_submit_connect(ring, client, addr, NULL);
    if (connect == NULL)
        goto out;
    PyObject *done = api->ring_wait_many(ring, 2, WAIT_SECONDS);
    if (done == NULL)
        goto out;
    Py_ssize_t got = PyList_GET_SIZE(done);
    Py_DECREF(done);
    while (got < 2) {
        PyObject *c = api->ring_wait(ring, WAIT_SECONDS);
        if (c == NULL)
            goto out;
        int none = c == Py_None;
        Py_DECREF(c);
        if (none) {
            PyErr_SetString(PyExc_TimeoutError, "accept/connect: no completion");
            goto out;
        }
        got++;
    }
    int32_t cres, ares;
    if (api->completion_res(connect, &cres) < 0 || api->completion_res(accept, &ares) < 0)
        goto out;
    if (cres < 0 || ares < 0) {
        errno = cres < 0 ? -cres : -ares;
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    PyObject *accepted = api->completion_result(accept); /* (fd, peer address) */
    if (accepted == NULL)
        goto out;
    if (!PyArg_ParseTuple(accepted, "iO", &server, &peer)) {
        Py_DECREF(accepted);
        goto out;
    }
    Py_INCREF(peer);
    Py_DECREF(accepted);

    if (run(api, ring, api->ring_submit_send(ring, client, payload, NULL, 0), "send") !=
        (int32_t)n) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AssertionError, "short send");
        goto out;
    }
    buf = PyByteArray_FromStringAndSize(NULL, n);
    if (buf == NULL || recv_all(api, ring, server, buf) < 0)
        goto out;
    if (run(api, ring, api->ring_submit_shutdown(ring, client, SHUT_WR, NULL), "shutdown") ==
        INT32_MIN)
        goto out;
    PyObject *eof_buf = PyByteArray_FromStringAndSize(NULL, 16);
    if (eof_buf == NULL)
        goto out;
    res = run(api, ring, api->ring_submit_recv(ring, server, eof_buf, NULL, 0), "recv EOF");
    Py_DECREF(eof_buf);
    if (res != 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_AssertionError, "expected EOF, got %d bytes", (int)res);
        goto out;
    }
    out = Py_BuildValue("(NO)", PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf), n), peer);
out:
    if (ring != NULL && !api->ring_closed(ring)) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (client >= 0 &&
            run(api, ring, api->ring_submit_close(ring, client, NULL), "close") == INT32_MIN)
            PyErr_WriteUnraisable(ring);
        if (server >= 0 &&
            run(api, ring, api->ring_submit_close(ring, server, NULL), "close") == INT32_MIN)
            PyErr_WriteUnraisable(ring);
        PyErr_Restore(t, v, tb);
    }
    close_quietly(api, ring);
    Py_XDECREF(ring);
    Py_XDECREF(kwargs);
    Py_XDECREF(addr);
    Py_XDECREF(accept);
    Py_XDECREF(connect);
    Py_XDECREF(buf);
    Py_XDECREF(peer);
    return out;
}

/* ---- Counter: a C serving callback ---------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    const RingioCAPI *api;
    PyObject *ring;      /* strong */
    PyObject *seen;      /* list of user_data, strong */
    PyObject *fail_with; /* exception type, or None: return -1 without one */
    long count;
    long long res_sum;
    long stop_after; /* call ring_stop_serving once count reaches it (0: never) */
    long fail_at;    /* fail on this call (0: never) */
    int installed;
} Counter;

static int counter_cb(PyObject *ring, PyObject *completion, void *user)
{
    Counter *self = (Counter *)user; /* kept alive by the test while installed */
    const RingioCAPI *api = self->api;
    if (ring != self->ring) {
        PyErr_SetString(PyExc_SystemError, "C callback called with another ring");
        return -1;
    }
    int32_t res;
    if (api->completion_res(completion, &res) < 0)
        return -1;
    PyObject *ud = api->completion_user_data(completion);
    if (ud == NULL)
        return -1;
    int rc = PyList_Append(self->seen, ud);
    Py_DECREF(ud);
    if (rc < 0)
        return -1;
    self->count++;
    self->res_sum += res;
    if (self->fail_at > 0 && self->count == self->fail_at) {
        if (self->fail_with != Py_None)
            PyErr_Format(self->fail_with, "C callback failed on completion %ld", self->count);
        return -1;
    }
    if (self->stop_after > 0 && self->count >= self->stop_after)
        return api->ring_stop_serving(ring);
    return 0;
}

static int counter_uninstall_impl(Counter *self)
{
    if (!self->installed)
        return 0;
    self->installed = 0;
    return self->api->ring_set_c_callback(self->ring, NULL, NULL);
}

static PyObject *counter_uninstall(Counter *self, PyObject *unused)
{
    (void)unused;
    if (counter_uninstall_impl(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *counter_get_count(Counter *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->count);
}

static PyObject *counter_get_res_sum(Counter *self, void *c)
{
    (void)c;
    return PyLong_FromLongLong(self->res_sum);
}

static PyObject *counter_get_seen(Counter *self, void *c)
{
    (void)c;
    return PyList_GetSlice(self->seen, 0, PyList_GET_SIZE(self->seen));
}

static int counter_traverse(Counter *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->ring);
    Py_VISIT(self->seen);
    Py_VISIT(self->fail_with);
    return 0;
}

static int counter_clear(Counter *self)
{
    /* The ring must not keep a pointer to a dead Counter. */
    if (self->ring != NULL && counter_uninstall_impl(self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_CLEAR(self->ring);
    Py_CLEAR(self->seen);
    Py_CLEAR(self->fail_with);
    return 0;
}

static void counter_dealloc(Counter *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    counter_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef counter_methods[] = {
    {"uninstall", (PyCFunction)counter_uninstall, METH_NOARGS,
     "Clear the ring's C callback (ring_set_c_callback(ring, NULL, NULL))."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef counter_getset[] = {
    {"count", (getter)counter_get_count, NULL, "completions seen", NULL},
    {"res_sum", (getter)counter_get_res_sum, NULL, "sum of their res", NULL},
    {"seen", (getter)counter_get_seen, NULL, "their user_data, in order", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot counter_slots[] = {
    {Py_tp_dealloc, counter_dealloc},
    {Py_tp_traverse, counter_traverse},
    {Py_tp_clear, counter_clear},
    {Py_tp_methods, counter_methods},
    {Py_tp_getset, counter_getset},
    {0, NULL},
};

static PyType_Spec counter_spec = {
    .name = "ringio_capi_client.Counter",
    .basicsize = sizeof(Counter),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = counter_slots,
};

static PyObject *install_counter(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ring", "stop_after", "fail_at", "fail_with", NULL};
    client_state *st = get_state(module);
    PyObject *ring, *fail_with = PyExc_ValueError;
    long stop_after = 0, fail_at = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|llO:install_counter", kwlist, &ring,
                                     &stop_after, &fail_at, &fail_with))
        return NULL;
    if (!st->api->ring_check(ring))
        return PyErr_Format(PyExc_TypeError, "not a ring: %R", ring);
    Counter *c = PyObject_GC_New(Counter, st->counter_type);
    if (c == NULL)
        return NULL;
    c->api = st->api;
    c->ring = Py_NewRef(ring);
    c->seen = PyList_New(0);
    c->fail_with = Py_NewRef(fail_with);
    c->count = 0;
    c->res_sum = 0;
    c->stop_after = stop_after;
    c->fail_at = fail_at;
    c->installed = 0;
    PyObject_GC_Track(c);
    if (c->seen == NULL) {
        Py_DECREF(c);
        return NULL;
    }
    if (st->api->ring_set_c_callback(ring, counter_cb, c) < 0) {
        Py_DECREF(c);
        return NULL;
    }
    c->installed = 1;
    return (PyObject *)c;
}

static PyObject *serve(PyObject *module, PyObject *ring)
{
    if (get_state(module)->api->ring_serve_completions(ring) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- NULL arguments ---------------------------------------------------------------------------- */

/* Record (name, exception type) for a call that must fail. */
static int expect_failure(PyObject *list, const char *name, int failed)
{
    PyObject *item;
    if (!failed) {
        item = Py_BuildValue("(sO)", name, Py_None);
    }
    else {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        item = Py_BuildValue("(sO)", name, t != NULL ? t : Py_None);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    if (item == NULL)
        return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* Calls a C caller can get wrong: required objects given as NULL, NULL out
 * pointers, objects of the wrong type.  [(name, exception type or None)]. */
static PyObject *null_checks(PyObject *module, PyObject *ring)
{
    const RingioCAPI *api = get_state(module)->api;
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    struct sockaddr_storage ss;
    socklen_t len;
    PyObject *o;
#define EXPECT_NULL(name, call)                                                              \
    o = (call);                                                                              \
    if (expect_failure(list, name, o == NULL) < 0)                                           \
        goto fail;                                                                           \
    Py_XDECREF(o);
#define EXPECT_MINUS1(name, call)                                                            \
    if (expect_failure(list, name, (call) == -1) < 0)                                        \
        goto fail;
    EXPECT_NULL("ring_submit_nop(NULL ring)", api->ring_submit_nop(NULL, NULL));
    EXPECT_NULL("ring_submit_nop(list)", api->ring_submit_nop(list, NULL));
    EXPECT_NULL("ring_submit_recv(buf NULL)", api->ring_submit_recv(ring, 0, NULL, NULL, 0));
    EXPECT_NULL("ring_submit_send(data NULL)", api->ring_submit_send(ring, 0, NULL, NULL, 0));
    EXPECT_NULL("ring_submit_send_zc(data NULL)",
                api->ring_submit_send_zc(ring, 0, NULL, NULL, 0, 0));
    EXPECT_NULL("ring_submit_recvmsg(buf NULL)",
                api->ring_submit_recvmsg(ring, 0, NULL, NULL, 0, 0));
    EXPECT_NULL("ring_submit_sendto(data NULL)",
                api->ring_submit_sendto(ring, 0, NULL, Py_None, NULL, 0));
    EXPECT_NULL("ring_submit_sendto(address NULL)",
                api->ring_submit_sendto(ring, 0, list, NULL, NULL, 0));
    EXPECT_NULL("ring_submit_sendmsg(data NULL)",
                api->ring_submit_sendmsg(ring, 0, NULL, NULL, NULL, 0, NULL));
    EXPECT_NULL("ring_submit_sendmsg_zc(data NULL)",
                api->ring_submit_sendmsg_zc(ring, 0, NULL, NULL, NULL, 0, 0, NULL));
    EXPECT_NULL("ring_submit_connect(address NULL)",
                api->ring_submit_connect(ring, 0, NULL, NULL));
    EXPECT_NULL("ring_submit_cancel(target NULL)", api->ring_submit_cancel(ring, NULL, NULL, 0));
    EXPECT_NULL("completion_user_data(NULL)", api->completion_user_data(NULL));
    EXPECT_NULL("sockaddr_to_address(NULL, 16)", api->sockaddr_to_address(NULL, 16));
    EXPECT_NULL("sockaddr_to_address(short)",
                api->sockaddr_to_address((const struct sockaddr *)&sin, 4));
    EXPECT_MINUS1("address_to_sockaddr(NULL)",
                  api->address_to_sockaddr(NULL, AF_INET, &ss, &len));
    EXPECT_MINUS1("address_to_sockaddr(out NULL)",
                  api->address_to_sockaddr(Py_None, AF_INET, NULL, &len));
    EXPECT_MINUS1("ring_close(NULL)", api->ring_close(NULL));
    EXPECT_MINUS1("ring_set_c_callback(NULL ring)",
                  api->ring_set_c_callback(NULL, counter_cb, NULL));
#undef EXPECT_NULL
#undef EXPECT_MINUS1
    /* Never failing ones. */
    if (api->ring_check(NULL) != 0 || api->completion_check(NULL) != 0) {
        PyErr_SetString(PyExc_AssertionError, "ring_check / completion_check(NULL) != 0");
        goto fail;
    }
    o = api->sockaddr_to_address(NULL, 0); /* len 0: None */
    if (o != Py_None) {
        Py_XDECREF(o);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AssertionError, "sockaddr_to_address(NULL, 0) is not None");
        goto fail;
    }
    Py_DECREF(o);
    return list;
fail:
    Py_DECREF(list);
    return NULL;
}

/* ---- module -------------------------------------------------------------------------------- */

static PyMethodDef client_methods[] = {
    {"layout", layout, METH_NOARGS, NULL},
    {"import_at_least", import_at_least, METH_O, NULL},
    {"echo_roundtrip", echo_roundtrip, METH_VARARGS, NULL},
    {"tcp_roundtrip", tcp_roundtrip, METH_VARARGS, NULL},
    {"install_counter", (PyCFunction)(void (*)(void))install_counter,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"serve", serve, METH_O, NULL},
    {"null_checks", null_checks, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static int client_exec(PyObject *module)
{
    client_state *st = get_state(module);
    st->api = RingioCAPI_Import();
    if (st->api == NULL)
        return -1;
    const uint64_t need = RINGIO_CAPI_FEATURE_CORE | RINGIO_CAPI_FEATURE_SOCKETS |
                          RINGIO_CAPI_FEATURE_SERVING;
    if ((st->api->feature_flags & need) != need) {
        PyErr_SetString(PyExc_ImportError, "ringio C API lacks a surface area");
        return -1;
    }
    st->counter_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &counter_spec, NULL);
    if (st->counter_type == NULL)
        return -1;
    return PyModule_AddObjectRef(module, "Counter", (PyObject *)st->counter_type);
}

static int client_traverse(PyObject *module, visitproc visit, void *arg)
{
    Py_VISIT(get_state(module)->counter_type);
    return 0;
}

static int client_clear(PyObject *module)
{
    Py_CLEAR(get_state(module)->counter_type);
    return 0;
}

static void client_free(void *module) { client_clear((PyObject *)module); }

static PyModuleDef_Slot client_slots[] = {
    {Py_mod_exec, client_exec},
    {0, NULL},
};

static struct PyModuleDef client_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ringio_capi_client",
    .m_doc = "Test client of the ringio C API.",
    .m_size = sizeof(client_state),
    .m_methods = client_methods,
    .m_slots = client_slots,
    .m_traverse = client_traverse,
    .m_clear = client_clear,
    .m_free = client_free,
};

PyMODINIT_FUNC PyInit_ringio_capi_client(void) { return PyModuleDef_Init(&client_def); }
