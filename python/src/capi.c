/*
 * The ringio._ringio._C_API capsule (python/ringio/include/ringio_capi.h).
 *
 * The table is static and shared by every module instance: its functions
 * find the module state through the objects they are given, and ring_new()
 * looks the Ring type up in the importing interpreter's ringio._ringio.
 */
#include "ringio_ext.h"

#include "ringio_capi.h"

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

static PyObject *capi_ring_new(unsigned entries, unsigned flags)
{
    PyObject *mod = PyImport_ImportModule("ringio._ringio");
    if (mod == NULL)
        return NULL;
    PyObject *tp = PyObject_GetAttrString(mod, "Ring");
    Py_DECREF(mod);
    if (tp == NULL)
        return NULL;
    PyObject *ring = PyObject_CallFunction(tp, "II", entries, flags);
    Py_DECREF(tp);
    return ring;
}

static int capi_ring_close(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_close(r) : -1;
}

static int capi_ring_fd(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL)
        return -1;
    if (__atomic_load_n(&r->core, __ATOMIC_ACQUIRE) == NULL) {
        ringio_raise_closed(r);
        return -1;
    }
    return r->fd;
}

static PyObject *capi_ring_submit_nop(PyObject *ring, PyObject *user_data)
{
    if (as_ring(ring) == NULL)
        return NULL;
    PyObject *args[1] = {user_data != NULL ? user_data : Py_None};
    return ringio_ring_submit_nop(ring, args, 1, NULL);
}

static PyObject *capi_ring_wait(PyObject *ring, double timeout)
{
    RingioRing *r = as_ring(ring);
    if (r == NULL)
        return NULL;
    int64_t ns = -1; /* negative, NaN or huge: no limit */
    if (timeout >= 0 && timeout < 9.0e9)
        ns = (int64_t)(timeout * 1e9);
    return ringio_ring_wait_one(r, ns);
}

static int capi_ring_break_wait(PyObject *ring)
{
    RingioRing *r = as_ring(ring);
    return r != NULL ? ringio_ring_break_wait(r) : -1;
}

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
    return Py_NewRef(c->result != NULL ? c->result : Py_None);
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

static const RingioCAPI ringio_capi = {
    .abi_version = RINGIO_CAPI_ABI_VERSION,
    .struct_size = (uint32_t)sizeof(RingioCAPI),
    .feature_flags = RINGIO_CAPI_FEATURE_CORE,
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
};

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
