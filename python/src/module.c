/*
 * ringio._ringio: multi-phase module initialisation, module state, exception
 * types, constants and the argument helpers shared by the other files.
 */
#include "ringio_ext.h"

#include <errno.h>
#include <math.h>
#include <string.h>

const char *const ringio_kind_names[RINGIO_KIND_COUNT] = {
    [RINGIO_KIND_NOP] = "nop",
    [RINGIO_KIND_TIMEOUT] = "timeout",
    [RINGIO_KIND_CANCEL] = "cancel",
    [RINGIO_KIND_POLL] = "poll",
    [RINGIO_KIND_RECV] = "recv",
    [RINGIO_KIND_RECV_MULTISHOT] = "recv_multishot",
    [RINGIO_KIND_SEND] = "send",
    [RINGIO_KIND_SEND_ZC] = "send_zc",
    [RINGIO_KIND_RECVMSG] = "recvmsg",
    [RINGIO_KIND_SENDTO] = "sendto",
    [RINGIO_KIND_SENDMSG] = "sendmsg",
    [RINGIO_KIND_SENDMSG_ZC] = "sendmsg_zc",
    [RINGIO_KIND_ACCEPT] = "accept",
    [RINGIO_KIND_ACCEPT_MULTISHOT] = "accept_multishot",
    [RINGIO_KIND_CONNECT] = "connect",
    [RINGIO_KIND_SHUTDOWN] = "shutdown",
    [RINGIO_KIND_CLOSE] = "close",
    [RINGIO_KIND_SOCKET] = "socket",
    [RINGIO_KIND_OPENAT] = "openat",
    [RINGIO_KIND_READ] = "read",
    [RINGIO_KIND_WRITE] = "write",
    [RINGIO_KIND_READV] = "readv",
    [RINGIO_KIND_WRITEV] = "writev",
    [RINGIO_KIND_FSYNC] = "fsync",
    [RINGIO_KIND_FALLOCATE] = "fallocate",
    [RINGIO_KIND_STATX] = "statx",
    [RINGIO_KIND_UNLINKAT] = "unlinkat",
    [RINGIO_KIND_RENAMEAT] = "renameat",
    [RINGIO_KIND_MKDIRAT] = "mkdirat",
};

/* ---- module state -------------------------------------------------------- */

static ringio_state *get_state(PyObject *module) { return (ringio_state *)PyModule_GetState(module); }

ringio_state *ringio_state_from_type(PyTypeObject *tp)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *mod = PyType_GetModuleByDef(tp, &ringio_module_def);
    if (mod == NULL)
        return NULL;
    return get_state(mod);
#else
    PyObject *mro = tp->tp_mro;
    if (mro != NULL && PyTuple_Check(mro)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
            PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
            if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE))
                continue;
            PyObject *mod = PyType_GetModule(t);
            if (mod == NULL) {
                PyErr_Clear();
                continue;
            }
            if (PyModule_GetDef(mod) == &ringio_module_def)
                return get_state(mod);
        }
    }
    PyErr_Format(PyExc_TypeError, "%s is not a ringio type", tp->tp_name);
    return NULL;
#endif
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    ringio_state *st = get_state(m);
    if (st == NULL)
        return 0;
    Py_VISIT(st->ring_type);
    Py_VISIT(st->completion_type);
    Py_VISIT(st->batch_type);
    Py_VISIT(st->link_type);
    Py_VISIT(st->statx_type);
    Py_VISIT(st->SubmissionQueueFull);
    Py_VISIT(st->RingClosed);
    Py_VISIT(st->BackendFallbackWarning);
    return 0;
}

static int module_clear(PyObject *m)
{
    ringio_state *st = get_state(m);
    if (st == NULL)
        return 0;
    Py_CLEAR(st->ring_type);
    Py_CLEAR(st->completion_type);
    Py_CLEAR(st->batch_type);
    Py_CLEAR(st->link_type);
    Py_CLEAR(st->statx_type);
    Py_CLEAR(st->SubmissionQueueFull);
    Py_CLEAR(st->RingClosed);
    Py_CLEAR(st->BackendFallbackWarning);
    ringio_completion_freelist_clear(st);
    return 0;
}

static void module_free(void *m) { module_clear((PyObject *)m); }

/* ---- argument helpers ------------------------------------------------------- */

int ringio_parse_args_full(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames, const char *const *names, int maxpos, int required,
                           PyObject **out)
{
    int n = 0;
    while (names[n] != NULL)
        n++;
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    if (nargs > maxpos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional argument%s (%zd given)",
                     fname, maxpos, maxpos == 1 ? "" : "s", nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        out[i] = args[i];
    if (kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nkw; k++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, k);
            int found = -1;
            for (int i = 0; i < n; i++) {
                if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
                    found = i;
                    break;
                }
            }
            if (found < 0) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
                             fname, key);
                return -1;
            }
            if (out[found] != NULL) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                             names[found]);
                return -1;
            }
            out[found] = args[nargs + k];
        }
    }
    for (int i = 0; i < required; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

int ringio_int_arg(PyObject *o, const char *name, long long min, long long max, long long *out)
{
    if (PyLong_CheckExact(o)) { /* the common case: no __index__, no float check */
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow == 0 && v >= min && v <= max) {
            *out = v;
            return 0;
        }
        /* out of range: the general path raises the error */
    }
    if (PyFloat_Check(o) || !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an integer, not %.100s", name,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    PyObject *idx = PyNumber_Index(o);
    if (idx == NULL)
        return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    Py_DECREF(idx);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow != 0 || v < min || v > max) {
        PyErr_Format(PyExc_ValueError, "%s must be in the range [%lld, %lld]", name, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int ringio_timeout_arg(PyObject *o, const char *name, int64_t *ns)
{
    if (o == NULL || o == Py_None) {
        *ns = -1;
        return 0;
    }
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s must be a number of seconds or None, not %.100s",
                         name, Py_TYPE(o)->tp_name);
        }
        return -1;
    }
    if (isnan(d) || d < 0) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0 (or None for no limit)", name);
        return -1;
    }
    if (isinf(d) || d >= 9.0e9) { /* ~285 years: treat as no limit */
        *ns = -1;
        return 0;
    }
    *ns = (int64_t)(d * 1e9);
    return 0;
}

/* ---- errors ------------------------------------------------------------------------ */

const char *ringio_setup_advice(int err)
{
    switch (err) {
    case EPERM:
    case EACCES:
        return "io_uring is blocked in this environment: a seccomp profile (the default one of "
               "Docker and other container runtimes rejects io_uring_setup) or the sysctl "
               "kernel.io_uring_disabled (1: only members of kernel.io_uring_group, 2: nobody) "
               "forbids creating rings";
    case ENOMEM:
        return "the kernel could not allocate or lock the ring memory: raise RLIMIT_MEMLOCK "
               "(`ulimit -l`, or LimitMEMLOCK= for systemd services) or ask for fewer entries";
    case ENOSYS:
        return "this kernel has no io_uring (io_uring_setup is not implemented; it needs "
               "CONFIG_IO_URING)";
    case EINVAL:
        return "the kernel rejected the ring parameters: check entries, cq_entries and the "
               "IORING_SETUP_* flags (some flags need a newer kernel or other flags with them)";
    case EMFILE:
    case ENFILE:
        return "too many open files: no descriptor left for the ring";
    default:
        return "io_uring_setup failed";
    }
}

void ringio_set_setup_error(int err)
{
    PyObject *msg = PyUnicode_FromFormat("%s: %s", strerror(err), ringio_setup_advice(err));
    if (msg == NULL)
        return;
    PyObject *args = Py_BuildValue("(iN)", err, msg);
    if (args == NULL)
        return;
    /* OSError(errno, strerror) picks the subclass (PermissionError, ...). */
    PyErr_SetObject(PyExc_OSError, args);
    Py_DECREF(args);
}

void ringio_set_core_error(ringio_state *st, int rc)
{
    int err = rc < 0 ? -rc : rc;
    if (err == EBUSY) {
        PyErr_SetString(st->SubmissionQueueFull,
                        "the submission queue is full even after a flush: reap completions "
                        "(wait/wait_many) or leave the strict batch, then retry");
        return;
    }
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
}

/* ---- constants ---------------------------------------------------------------------- */

struct ringio_const {
    const char *name;
    long long value;
};

#define C(x) {#x, (long long)(x)}
static const struct ringio_const ringio_constants[] = {
    /* setup flags */
    C(IORING_SETUP_IOPOLL),
    C(IORING_SETUP_SQPOLL),
    C(IORING_SETUP_SQ_AFF),
    C(IORING_SETUP_CQSIZE),
    C(IORING_SETUP_CLAMP),
    C(IORING_SETUP_ATTACH_WQ),
    C(IORING_SETUP_R_DISABLED),
    C(IORING_SETUP_SUBMIT_ALL),
#ifdef IORING_SETUP_COOP_TASKRUN
    C(IORING_SETUP_COOP_TASKRUN),
#endif
#ifdef IORING_SETUP_TASKRUN_FLAG
    C(IORING_SETUP_TASKRUN_FLAG),
#endif
#ifdef IORING_SETUP_SQE128
    C(IORING_SETUP_SQE128),
#endif
#ifdef IORING_SETUP_CQE32
    C(IORING_SETUP_CQE32),
#endif
#ifdef IORING_SETUP_SINGLE_ISSUER
    C(IORING_SETUP_SINGLE_ISSUER),
#endif
#ifdef IORING_SETUP_DEFER_TASKRUN
    C(IORING_SETUP_DEFER_TASKRUN),
#endif
#ifdef IORING_SETUP_NO_MMAP
    C(IORING_SETUP_NO_MMAP),
#endif
#ifdef IORING_SETUP_REGISTERED_FD_ONLY
    C(IORING_SETUP_REGISTERED_FD_ONLY),
#endif
#ifdef IORING_SETUP_NO_SQARRAY
    C(IORING_SETUP_NO_SQARRAY),
#endif
    /* feature bits (Ring.features) */
    C(IORING_FEAT_SINGLE_MMAP),
    C(IORING_FEAT_NODROP),
    C(IORING_FEAT_SUBMIT_STABLE),
    C(IORING_FEAT_RW_CUR_POS),
    C(IORING_FEAT_CUR_PERSONALITY),
    C(IORING_FEAT_FAST_POLL),
    C(IORING_FEAT_POLL_32BITS),
    C(IORING_FEAT_SQPOLL_NONFIXED),
    C(IORING_FEAT_EXT_ARG),
    C(IORING_FEAT_NATIVE_WORKERS),
    C(IORING_FEAT_RSRC_TAGS),
#ifdef IORING_FEAT_CQE_SKIP
    C(IORING_FEAT_CQE_SKIP),
#endif
#ifdef IORING_FEAT_LINKED_FILE
    C(IORING_FEAT_LINKED_FILE),
#endif
#ifdef IORING_FEAT_REG_REG_RING
    C(IORING_FEAT_REG_REG_RING),
#endif
    /* CQE flags */
    C(IORING_CQE_F_BUFFER),
    /* opcodes (the sim's fault profiles name them; liburing 2.3 headers know all of these) */
    C(IORING_OP_NOP),
    C(IORING_OP_READV),
    C(IORING_OP_WRITEV),
    C(IORING_OP_FSYNC),
    C(IORING_OP_READ_FIXED),
    C(IORING_OP_WRITE_FIXED),
    C(IORING_OP_POLL_ADD),
    C(IORING_OP_POLL_REMOVE),
    C(IORING_OP_SENDMSG),
    C(IORING_OP_RECVMSG),
    C(IORING_OP_TIMEOUT),
    C(IORING_OP_TIMEOUT_REMOVE),
    C(IORING_OP_ACCEPT),
    C(IORING_OP_ASYNC_CANCEL),
    C(IORING_OP_LINK_TIMEOUT),
    C(IORING_OP_CONNECT),
    C(IORING_OP_FALLOCATE),
    C(IORING_OP_OPENAT),
    C(IORING_OP_CLOSE),
    C(IORING_OP_STATX),
    C(IORING_OP_READ),
    C(IORING_OP_WRITE),
    C(IORING_OP_SEND),
    C(IORING_OP_RECV),
    C(IORING_OP_SHUTDOWN),
    C(IORING_OP_RENAMEAT),
    C(IORING_OP_UNLINKAT),
    C(IORING_OP_MKDIRAT),
    C(IORING_OP_SOCKET),
    C(IORING_OP_SEND_ZC),
    C(IORING_OP_SENDMSG_ZC),
    C(IORING_CQE_F_MORE),
    C(IORING_CQE_F_SOCK_NONEMPTY),
    C(IORING_CQE_F_NOTIF),
#ifdef IORING_CQE_F_BUF_MORE
    C(IORING_CQE_F_BUF_MORE),
#endif
    C(IORING_CQE_BUFFER_SHIFT),
    /* zero-copy send reporting */
    C(IORING_SEND_ZC_REPORT_USAGE),
    C(IORING_NOTIF_USAGE_ZC_COPIED),
    /* cancel flags */
    C(IORING_ASYNC_CANCEL_ALL),
    C(IORING_ASYNC_CANCEL_FD),
    C(IORING_ASYNC_CANCEL_ANY),
    C(IORING_ASYNC_CANCEL_FD_FIXED),
#ifdef IORING_ASYNC_CANCEL_USERDATA
    C(IORING_ASYNC_CANCEL_USERDATA),
#endif
#ifdef IORING_ASYNC_CANCEL_OP
    C(IORING_ASYNC_CANCEL_OP),
#endif
    /* send_zc / sendmsg_zc zc_flags (with IORING_SEND_ZC_REPORT_USAGE above) */
    C(IORING_RECVSEND_POLL_FIRST),
    /* Completion.kind values */
    {"COMPLETION_KIND_NOP", RINGIO_KIND_NOP},
    {"COMPLETION_KIND_TIMEOUT", RINGIO_KIND_TIMEOUT},
    {"COMPLETION_KIND_CANCEL", RINGIO_KIND_CANCEL},
    {"COMPLETION_KIND_POLL", RINGIO_KIND_POLL},
    {"COMPLETION_KIND_RECV", RINGIO_KIND_RECV},
    {"COMPLETION_KIND_RECV_MULTISHOT", RINGIO_KIND_RECV_MULTISHOT},
    {"COMPLETION_KIND_SEND", RINGIO_KIND_SEND},
    {"COMPLETION_KIND_SEND_ZC", RINGIO_KIND_SEND_ZC},
    {"COMPLETION_KIND_RECVMSG", RINGIO_KIND_RECVMSG},
    {"COMPLETION_KIND_SENDTO", RINGIO_KIND_SENDTO},
    {"COMPLETION_KIND_SENDMSG", RINGIO_KIND_SENDMSG},
    {"COMPLETION_KIND_SENDMSG_ZC", RINGIO_KIND_SENDMSG_ZC},
    {"COMPLETION_KIND_ACCEPT", RINGIO_KIND_ACCEPT},
    {"COMPLETION_KIND_ACCEPT_MULTISHOT", RINGIO_KIND_ACCEPT_MULTISHOT},
    {"COMPLETION_KIND_CONNECT", RINGIO_KIND_CONNECT},
    {"COMPLETION_KIND_SHUTDOWN", RINGIO_KIND_SHUTDOWN},
    {"COMPLETION_KIND_CLOSE", RINGIO_KIND_CLOSE},
    {"COMPLETION_KIND_SOCKET", RINGIO_KIND_SOCKET},
    /* limits checked by Ring() */
    {"IORING_MAX_ENTRIES", 32768},
    {"IORING_MAX_CQ_ENTRIES", 65536},
};
#undef C

/* ---- module -------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"probe", (PyCFunction)(void (*)(void))ringio_probe, METH_FASTCALL | METH_KEYWORDS,
     ringio_doc_probe},
    {"is_available", ringio_is_available, METH_NOARGS, ringio_doc_is_available},
    {"unavailable_reason", (PyCFunction)(void (*)(void))ringio_unavailable_reason,
     METH_FASTCALL | METH_KEYWORDS, ringio_doc_unavailable_reason},
    {NULL, NULL, 0, NULL},
};

static PyObject *new_exception_base(PyObject *module, const char *name, const char *doc,
                                    PyObject *base)
{
    PyObject *exc = PyErr_NewExceptionWithDoc(name, doc, base, NULL);
    if (exc == NULL)
        return NULL;
    const char *dot = strrchr(name, '.');
    if (PyModule_AddObjectRef(module, dot ? dot + 1 : name, exc) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    return exc;
}

static PyObject *new_exception(PyObject *module, const char *name, const char *doc)
{
    return new_exception_base(module, name, doc, PyExc_RuntimeError);
}

static PyTypeObject *add_type(PyObject *module, PyType_Spec *spec)
{
    PyTypeObject *tp = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    if (tp == NULL)
        return NULL;
    if (PyModule_AddType(module, tp) < 0) {
        Py_DECREF(tp);
        return NULL;
    }
    return tp;
}

static int module_exec(PyObject *module)
{
    ringio_state *st = get_state(module);

    st->ring_type = add_type(module, &ringio_ring_spec);
    if (st->ring_type == NULL)
        return -1;
    st->completion_type = add_type(module, &ringio_completion_spec);
    if (st->completion_type == NULL)
        return -1;
    st->batch_type = add_type(module, &ringio_batch_spec);
    if (st->batch_type == NULL)
        return -1;

    if (ringio_files_init(module, st) < 0)
        return -1;

    st->SubmissionQueueFull = new_exception(
        module, "ringio.SubmissionQueueFull",
        "No submission queue entry is free, even after flushing prepared entries to the "
        "kernel.\n\nBackpressure, not a broken ring: nothing was submitted by the failing call; "
        "reap completions and retry.");
    if (st->SubmissionQueueFull == NULL)
        return -1;
    st->RingClosed = new_exception(module, "ringio.RingClosed",
                                   "The ring is closed (or closing); a RuntimeError subclass.");
    if (st->RingClosed == NULL)
        return -1;
    st->BackendFallbackWarning = new_exception_base(
        module, "ringio.BackendFallbackWarning",
        "Ring(backend=\"auto\") could not create an io_uring ring and runs on the simulated "
        "backend instead; the message says why io_uring is unavailable.",
        PyExc_RuntimeWarning);
    if (st->BackendFallbackWarning == NULL)
        return -1;

    for (size_t i = 0; i < sizeof(ringio_constants) / sizeof(ringio_constants[0]); i++) {
        PyObject *v = PyLong_FromLongLong(ringio_constants[i].value);
        if (v == NULL)
            return -1;
        int rc = PyModule_AddObjectRef(module, ringio_constants[i].name, v);
        Py_DECREF(v);
        if (rc < 0)
            return -1;
    }
    const char *version = ringio_uring_backend_version();
    if (PyModule_AddStringConstant(module, "__liburing_version__", version ? version : "") < 0)
        return -1;
    if (ringio_capi_init(module) < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, (void *)module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* No process-wide Python objects: every interpreter gets its own state. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Completion fields and serving state still rely on the GIL. */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

PyModuleDef ringio_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ringio._ringio",
    .m_doc = "C core of ringio: io_uring rings, operations and completions.",
    .m_size = sizeof(ringio_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__ringio(void) { return PyModuleDef_Init(&ringio_module_def); }
