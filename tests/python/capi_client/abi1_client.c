/*
 * A client compiled against the frozen revision-1 header (abi1/ringio_capi.h):
 * the current ringio must keep serving it unchanged (members are only ever
 * appended to the table, abi_version stays 1).
 *
 *   roundtrip() -> (op_is_completion, res, struct_size_seen)
 */
#define PY_SSIZE_T_CLEAN
#include <ringio_capi.h>

static PyObject *roundtrip(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    const RingioCAPI *api = RingioCAPI_Import();
    if (api == NULL)
        return NULL;
    PyObject *ring = api->ring_new(8, 0);
    if (ring == NULL)
        return NULL;
    PyObject *out = NULL, *done = NULL;
    PyObject *op = api->ring_submit_nop(ring, Py_None);
    if (op == NULL)
        goto out;
    done = api->ring_wait(ring, 10.0);
    if (done == NULL)
        goto out;
    int32_t res = -1;
    if (done != Py_None && api->completion_res(done, &res) < 0)
        goto out;
    out = Py_BuildValue("(iiI)", done == op, (int)res, (unsigned)api->struct_size);
out:
    Py_XDECREF(op);
    Py_XDECREF(done);
    if (api->ring_close(ring) < 0)
        Py_CLEAR(out);
    Py_DECREF(ring);
    return out;
}

static PyMethodDef methods[] = {
    {"roundtrip", roundtrip, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {{0, NULL}};

static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ringio_capi_abi1_client",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC PyInit_ringio_capi_abi1_client(void) { return PyModuleDef_Init(&def); }
