/*
 * Socket address and ancillary-data conversion (see sockaddr.h).
 */
#include "sockaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

int ringio_socket_family(int fd)
{
    int family = 0;
    socklen_t len = sizeof(family);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return family;
}

/* Numeric host for family into dst; '' means the wildcard address. */
static int parse_host(PyObject *host, int family, void *dst)
{
    if (!PyUnicode_Check(host)) {
        PyErr_Format(PyExc_TypeError, "host must be str, not %.100s", Py_TYPE(host)->tp_name);
        return -1;
    }
    const char *s = PyUnicode_AsUTF8(host);
    if (!s)
        return -1;
    if (s[0] == '\0') {
        if (family == AF_INET)
            ((struct in_addr *)dst)->s_addr = htonl(INADDR_ANY);
        else
            *(struct in6_addr *)dst = in6addr_any;
        return 0;
    }
    if (strcmp(s, "localhost") == 0)
        s = family == AF_INET ? "127.0.0.1" : "::1";
    if (inet_pton(family, s, dst) != 1) {
        PyErr_Format(PyExc_ValueError,
                     "%R is not a numeric %s address (resolve names before submitting)", host,
                     family == AF_INET ? "IPv4" : "IPv6");
        return -1;
    }
    return 0;
}

static int parse_port(PyObject *obj, uint16_t *port)
{
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError))
            PyErr_SetString(PyExc_TypeError, "port must be int");
        return -1;
    }
    if (v < 0 || v > 65535) {
        PyErr_SetString(PyExc_OverflowError, "port must be 0-65535");
        return -1;
    }
    *port = htons((uint16_t)v);
    return 0;
}

static int inet_from_py(PyObject *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) != 2) {
        PyErr_SetString(PyExc_TypeError, "AF_INET address must be a (host, port) tuple");
        return -1;
    }
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    if (parse_host(PyTuple_GET_ITEM(addr, 0), AF_INET, &sin->sin_addr) < 0 ||
        parse_port(PyTuple_GET_ITEM(addr, 1), &sin->sin_port) < 0)
        return -1;
    *len = sizeof(*sin);
    return 0;
}

static int inet6_from_py(PyObject *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    Py_ssize_t n = PyTuple_Check(addr) ? PyTuple_GET_SIZE(addr) : 0;
    if (n < 2 || n > 4) {
        PyErr_SetString(PyExc_TypeError,
                        "AF_INET6 address must be a (host, port[, flowinfo[, scope_id]]) tuple");
        return -1;
    }
    memset(sin6, 0, sizeof(*sin6));
    sin6->sin6_family = AF_INET6;
    if (parse_host(PyTuple_GET_ITEM(addr, 0), AF_INET6, &sin6->sin6_addr) < 0 ||
        parse_port(PyTuple_GET_ITEM(addr, 1), &sin6->sin6_port) < 0)
        return -1;
    if (n >= 3) {
        unsigned long flow = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 2));
        if (flow == (unsigned long)-1 && PyErr_Occurred())
            return -1;
        if (flow > 0xfffff) {
            PyErr_SetString(PyExc_OverflowError, "flowinfo must be 0-1048575");
            return -1;
        }
        sin6->sin6_flowinfo = htonl((uint32_t)flow);
    }
    if (n == 4) {
        unsigned long scope = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 3));
        if (scope == (unsigned long)-1 && PyErr_Occurred())
            return -1;
        sin6->sin6_scope_id = (uint32_t)scope;
    }
    *len = sizeof(*sin6);
    return 0;
}

static int unix_from_py(PyObject *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    PyObject *bytes = NULL;
    if (PyUnicode_Check(addr)) {
        bytes = PyUnicode_EncodeFSDefault(addr);
        if (!bytes)
            return -1;
    } else if (PyBytes_Check(addr) || PyByteArray_Check(addr)) {
        bytes = PyBytes_FromObject(addr);
        if (!bytes)
            return -1;
    } else {
        PyErr_Format(PyExc_TypeError, "AF_UNIX address must be str or bytes, not %.100s",
                     Py_TYPE(addr)->tp_name);
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    /* An abstract name (leading NUL) is not NUL-terminated; a path is. */
    bool abstract = n > 0 && PyBytes_AS_STRING(bytes)[0] == '\0';
    if ((size_t)n > sizeof(sun->sun_path) - (abstract ? 0 : 1)) {
        Py_DECREF(bytes);
        PyErr_SetString(PyExc_OSError, "AF_UNIX path too long");
        return -1;
    }
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, PyBytes_AS_STRING(bytes), (size_t)n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + (abstract ? 0 : 1));
    Py_DECREF(bytes);
    return 0;
}

int ringio_addr_from_py(PyObject *addr, int family, struct sockaddr_storage *ss,
                        socklen_t *len)
{
    switch (family) {
    case AF_INET:
        return inet_from_py(addr, ss, len);
    case AF_INET6:
        return inet6_from_py(addr, ss, len);
    case AF_UNIX:
        return unix_from_py(addr, ss, len);
    default:
        PyErr_Format(PyExc_ValueError, "unsupported address family %d", family);
        return -1;
    }
}

static PyObject *unix_to_py(const struct sockaddr_un *sun, socklen_t len)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    if (len <= off)
        return PyUnicode_FromString(""); /* unnamed */
    size_t n = len - off;
    if (sun->sun_path[0] == '\0') /* abstract: bytes, as the socket module */
        return PyBytes_FromStringAndSize(sun->sun_path, (Py_ssize_t)n);
    n = strnlen(sun->sun_path, n);
    return PyUnicode_DecodeFSDefaultAndSize(sun->sun_path, (Py_ssize_t)n);
}

PyObject *ringio_addr_to_py(const struct sockaddr *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (len == 0)
        Py_RETURN_NONE;
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, (int)ntohs(sin->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(siII)", host, (int)ntohs(sin6->sin6_port),
                             (unsigned)ntohl(sin6->sin6_flowinfo), (unsigned)sin6->sin6_scope_id);
    }
    case AF_UNIX:
        return unix_to_py((const struct sockaddr_un *)sa, len);
    default:
        /* Unknown family: (family, raw bytes) rather than guessing. */
        return Py_BuildValue("(iy#)", (int)sa->sa_family, (const char *)sa,
                             (Py_ssize_t)len);
    }
}

/* One (level, type, data) item: fills *level, *type and a buffer view. */
static int cmsg_item(PyObject *item, int *level, int *type, Py_buffer *view)
{
    if (!PyArg_ParseTuple(item, "iiy*:ancillary data item", level, type, view)) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_SystemError) ||
            PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError,
                            "ancillary data items must be (level, type, data) tuples: two ints "
                            "and a C-contiguous bytes-like object");
        }
        return -1;
    }
    return 0;
}

int ringio_cmsg_build(PyObject *ancdata, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (ancdata == NULL || ancdata == Py_None)
        return 0;
    /* A tuple snapshot, and every item parsed exactly once with its buffer
     * held until the copy: converting an item (its __index__) may run Python
     * code, which must not be able to change a size we already counted. */
    PyObject *seq = PySequence_Tuple(ancdata);
    if (!seq) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "ancdata must be an iterable of (level, type, data) tuples, not %.100s",
                         Py_TYPE(ancdata)->tp_name);
        }
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    struct item {
        int level, type;
        Py_buffer view;
    } *items = NULL;
    Py_ssize_t parsed = 0;
    size_t total = 0;
    int rc = -1;
    if (n == 0) {
        rc = 0;
        goto out;
    }
    items = PyMem_Calloc((size_t)n, sizeof(*items));
    if (!items) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (cmsg_item(PyTuple_GET_ITEM(seq, i), &items[i].level, &items[i].type,
                      &items[i].view) < 0)
            goto out;
        parsed = i + 1;
        if ((size_t)items[i].view.len > (size_t)INT32_MAX - total) {
            PyErr_SetString(PyExc_OverflowError, "ancillary data too large");
            goto out;
        }
        total += CMSG_SPACE((size_t)items[i].view.len);
    }
    unsigned char *mem = PyMem_Calloc(1, total);
    if (!mem) {
        PyErr_NoMemory();
        goto out;
    }
    struct msghdr msg = {.msg_control = mem, .msg_controllen = total};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    for (Py_ssize_t i = 0; i < n && cm; i++) {
        cm->cmsg_level = items[i].level;
        cm->cmsg_type = items[i].type;
        cm->cmsg_len = CMSG_LEN((size_t)items[i].view.len);
        memcpy(CMSG_DATA(cm), items[i].view.buf, (size_t)items[i].view.len);
        cm = CMSG_NXTHDR(&msg, cm);
    }
    *buf = mem;
    *len = total;
    rc = 0;
out:
    for (Py_ssize_t i = 0; i < parsed; i++)
        PyBuffer_Release(&items[i].view);
    PyMem_Free(items);
    Py_DECREF(seq);
    return rc;
}

/* The bytes of cm's data that lie inside msg's control buffer; 0 for a
 * malformed header (the kernel never writes one; stay safe anyway). */
static size_t cmsg_data_len(const struct msghdr *msg, const struct cmsghdr *cm)
{
    const unsigned char *end = (const unsigned char *)msg->msg_control + msg->msg_controllen;
    const unsigned char *data = CMSG_DATA(cm);
    if (cm->cmsg_len < CMSG_LEN(0) || data > end)
        return 0;
    size_t dlen = cm->cmsg_len - CMSG_LEN(0);
    if (dlen > (size_t)(end - data))
        dlen = (size_t)(end - data);
    return dlen;
}

PyObject *ringio_cmsg_parse(const struct msghdr *msg)
{
    PyObject *list = PyList_New(0);
    if (!list || !msg->msg_control)
        return list;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)msg); cm;
         cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
        if (cm->cmsg_len < CMSG_LEN(0))
            break; /* malformed: nothing after it can be trusted */
        size_t dlen = cmsg_data_len(msg, cm);
        PyObject *item = Py_BuildValue("(iiy#)", cm->cmsg_level, cm->cmsg_type,
                                       (const char *)CMSG_DATA(cm), (Py_ssize_t)dlen);
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

void ringio_cmsg_close_fds(const struct msghdr *msg)
{
    if (!msg->msg_control)
        return;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)msg); cm;
         cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        if (cm->cmsg_len < CMSG_LEN(0))
            break;
        size_t n = cmsg_data_len(msg, cm) / sizeof(int);
        const unsigned char *p = CMSG_DATA(cm);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, p + i * sizeof(int), sizeof(int));
            close(fd);
        }
    }
}
