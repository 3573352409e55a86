/*
 * The simulated backend from Python: building its configuration from Ring()
 * arguments, and the private methods behind ringio.sim.SimControl
 * (ring.sim): hold, release, force, advance, info, trace.
 *
 * File formats and fault-profile parsing live in Python (ringio/sim.py);
 * this file only converts their output to the C structs of ringio/sim.h.
 */
#include "ringio_ext.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "ringio/sim.h"

uint64_t ringio_tag_of(PyObject *user_data)
{
    if (user_data == NULL || user_data == Py_None)
        return 0;
    if (PyLong_Check(user_data)) {
        uint64_t v = (uint64_t)PyLong_AsUnsignedLongLongMask(user_data);
        if (PyErr_Occurred())
            PyErr_Clear();
        return v;
    }
    Py_hash_t h = PyObject_Hash(user_data);
    if (h == -1 && PyErr_Occurred()) {
        PyErr_Clear(); /* unhashable user_data: no scripting by tag, nothing else */
        return 0;
    }
    return (uint64_t)h;
}

/* Call ringio.sim.<name>(arg) and return its result (new reference). */
static PyObject *call_sim_helper(const char *name, PyObject *arg)
{
    PyObject *mod = PyImport_ImportModule("ringio.sim");
    if (mod == NULL)
        return NULL;
    PyObject *res = PyObject_CallMethod(mod, name, "O", arg);
    Py_DECREF(mod);
    return res;
}

/* spec: ((enable, fire) * RINGIO_SIM_FAULT_COUNT, {opcode: (errno, ...)}) in
 * per mille, as FaultProfile._c_spec() returns it. */
static int faults_from_spec(PyObject *spec, struct ringio_sim_faults *f)
{
    PyObject *sites, *errors;
    if (!PyArg_ParseTuple(spec, "OO!;FaultProfile._c_spec() must return (sites, errors)", &sites,
                          &PyDict_Type, &errors))
        return -1;
    PyObject *seq = PySequence_Fast(sites, "fault sites must be a sequence");
    if (seq == NULL)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != RINGIO_SIM_FAULT_COUNT) {
        PyErr_Format(PyExc_ValueError, "expected %d fault sites", RINGIO_SIM_FAULT_COUNT);
        Py_DECREF(seq);
        return -1;
    }
    for (int i = 0; i < RINGIO_SIM_FAULT_COUNT; i++) {
        int en, fi;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ii", &en, &fi)) {
            Py_DECREF(seq);
            return -1;
        }
        if (en < 0 || en > 1000 || fi < 0 || fi > 1000) {
            PyErr_SetString(PyExc_ValueError, "fault probabilities must be in 0..1000 per mille");
            Py_DECREF(seq);
            return -1;
        }
        f->site[i].enable = (uint16_t)en;
        f->site[i].fire = (uint16_t)fi;
    }
    Py_DECREF(seq);
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(errors, &pos, &k, &v)) {
        long op = PyLong_AsLong(k);
        if (op == -1 && PyErr_Occurred())
            return -1;
        if (op < 0 || op >= RINGIO_SIM_OPCODES) {
            PyErr_Format(PyExc_ValueError, "opcode %ld out of range", op);
            return -1;
        }
        PyObject *ev = PySequence_Fast(v, "errnos must be a sequence");
        if (ev == NULL)
            return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(ev);
        for (Py_ssize_t i = 0; i < n && i < RINGIO_SIM_MAX_ERRNOS; i++) {
            long e = PyLong_AsLong(PySequence_Fast_GET_ITEM(ev, i));
            if (e <= 0 || e > 4095) {
                Py_DECREF(ev);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "injected errnos must be positive");
                return -1;
            }
            f->errors[op][i] = (int16_t)e;
        }
        Py_DECREF(ev);
    }
    return 0;
}

void ringio_sim_args_clear(struct ringio_sim_args *a)
{
    Py_CLEAR(a->faults);
    Py_CLEAR(a->replay);
}

int ringio_sim_args_parse(PyObject *seed_o, PyObject *faults_o, PyObject *replay_o,
                          int record, struct ringio_sim_args *a)
{
    memset(a, 0, sizeof(*a));
    a->cfg.record = record;
    a->cfg.notify = 1;
    /* replay: a path or bytes, read by ringio.sim._load_replay into
     * (trace bytes, FaultProfile or None, seed). */
    if (replay_o != NULL && replay_o != Py_None) {
        PyObject *r = call_sim_helper("_load_replay", replay_o);
        if (r == NULL)
            return -1;
        PyObject *trace, *prof;
        unsigned long long seed;
        if (!PyArg_ParseTuple(r, "O!OK", &PyBytes_Type, &trace, &prof, &seed)) {
            Py_DECREF(r);
            return -1;
        }
        a->replay = Py_NewRef(trace);
        if (faults_o == NULL || faults_o == Py_None)
            faults_o = prof;
        a->cfg.source = RINGIO_SIM_SOURCE_REPLAY;
        a->cfg.bytes = (const uint8_t *)PyBytes_AS_STRING(trace);
        a->cfg.nbytes = (size_t)PyBytes_GET_SIZE(trace);
        a->cfg.seed = seed;
        Py_INCREF(faults_o);
        Py_DECREF(r);
    } else {
        Py_XINCREF(faults_o);
        if (seed_o != NULL && seed_o != Py_None) {
            if (!PyLong_Check(seed_o)) {
                PyErr_Format(PyExc_TypeError, "seed must be an int, not %.100s",
                             Py_TYPE(seed_o)->tp_name);
                Py_XDECREF(faults_o);
                return -1;
            }
            a->cfg.seed = (uint64_t)PyLong_AsUnsignedLongLongMask(seed_o);
            if (PyErr_Occurred()) {
                Py_XDECREF(faults_o);
                return -1;
            }
        } else {
            const char *env = getenv("RINGIO_SIM_SEED");
            char *end = NULL;
            if (env != NULL && env[0] != '\0') {
                a->cfg.seed = strtoull(env, &end, 0);
                if (*end != '\0') {
                    PyErr_Format(PyExc_ValueError, "RINGIO_SIM_SEED=%s is not an integer", env);
                    Py_XDECREF(faults_o);
                    return -1;
                }
            } else if (getrandom(&a->cfg.seed, sizeof(a->cfg.seed), 0) != sizeof(a->cfg.seed)) {
                a->cfg.seed = (uint64_t)(uintptr_t)a ^ 0x9e3779b97f4a7c15ull;
            }
        }
    }
    /* faults: None (RINGIO_SIM_FAULTS or faithful), a spec string, or a
     * FaultProfile; normalised to a FaultProfile by ringio.sim._profile. */
    if (faults_o == NULL || faults_o == Py_None) {
        Py_XDECREF(faults_o);
        const char *env = getenv("RINGIO_SIM_FAULTS");
        faults_o = (env != NULL && env[0] != '\0') ? PyUnicode_FromString(env) : NULL;
        if (env != NULL && env[0] != '\0' && faults_o == NULL)
            return -1;
    }
    if (faults_o != NULL) {
        PyObject *prof = call_sim_helper("_profile", faults_o);
        Py_DECREF(faults_o);
        if (prof == NULL) {
            ringio_sim_args_clear(a);
            return -1;
        }
        PyObject *spec = PyObject_CallMethod(prof, "_c_spec", NULL);
        int rc = spec == NULL ? -1 : faults_from_spec(spec, &a->faults_c);
        Py_XDECREF(spec);
        if (rc < 0) {
            Py_DECREF(prof);
            ringio_sim_args_clear(a);
            return -1;
        }
        a->faults = prof;
        a->cfg.faults = &a->faults_c;
    }
    return 0;
}

/* ---- methods behind ringio.sim.SimControl ---------------------------------- */

/* The ring's sim backend with the ring lock held, or NULL with an exception. */
static struct ringio_backend *sim_locked(RingioRing *r)
{
    if (!r->is_sim) {
        PyErr_SetString(PyExc_TypeError, "this ring does not run on the simulated backend");
        return NULL;
    }
    if (ringio_ring_lock_open(r) < 0)
        return NULL;
    return r->sim_backend;
}

static PyObject *sim_done(RingioRing *r, int rc, PyObject *ok)
{
    ringio_release_list(ringio_ring_unlock(r));
    if (rc < 0) {
        Py_XDECREF(ok);
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return ok;
}

PyObject *ringio_ring_sim_hold(RingioRing *r, PyObject *args)
{
    PyObject *ud;
    int notif_only = 0;
    if (!PyArg_ParseTuple(args, "O|p:_sim_hold", &ud, &notif_only))
        return NULL;
    uint64_t tag = ringio_tag_of(ud);
    struct ringio_backend *b = sim_locked(r);
    if (b == NULL)
        return NULL;
    return sim_done(r, ringio_sim_hold(b, tag, notif_only), Py_NewRef(Py_None));
}

PyObject *ringio_ring_sim_release(RingioRing *r, PyObject *ud)
{
    uint64_t tag = ringio_tag_of(ud);
    struct ringio_backend *b = sim_locked(r);
    if (b == NULL)
        return NULL;
    int rc = ringio_sim_release(b, tag);
    return sim_done(r, rc, rc < 0 ? NULL : PyLong_FromLong(rc));
}

PyObject *ringio_ring_sim_force(RingioRing *r, PyObject *args)
{
    PyObject *ud;
    int res;
    if (!PyArg_ParseTuple(args, "Oi:_sim_force", &ud, &res))
        return NULL;
    uint64_t tag = ringio_tag_of(ud);
    struct ringio_backend *b = sim_locked(r);
    if (b == NULL)
        return NULL;
    return sim_done(r, ringio_sim_force(b, tag, res), Py_NewRef(Py_None));
}

PyObject *ringio_ring_sim_advance(RingioRing *r, PyObject *arg)
{
    unsigned long long ns = PyLong_AsUnsignedLongLong(arg);
    if (ns == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    struct ringio_backend *b = sim_locked(r);
    if (b == NULL)
        return NULL;
    return sim_done(r, ringio_sim_advance(b, ns), Py_NewRef(Py_None));
}

PyObject *ringio_ring_sim_info(RingioRing *r, PyObject *unused)
{
    (void)unused;
    struct ringio_backend *b = sim_locked(r);
    if (b == NULL)
        return NULL;
    struct ringio_sim_info i;
    int rc = ringio_sim_info(b, &i);
    ringio_release_list(ringio_ring_unlock(r));
    if (rc < 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *enabled = PyList_New(0);
    if (enabled == NULL)
        return NULL;
    for (unsigned f = 0; f < RINGIO_SIM_FAULT_COUNT; f++) {
        if (!(i.faults_enabled & (1u << f)))
            continue;
        PyObject *name = PyUnicode_FromString(ringio_sim_fault_name(f));
        if (name == NULL || PyList_Append(enabled, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(enabled);
            return NULL;
        }
        Py_DECREF(name);
    }
    return Py_BuildValue("{sKsKsKsKsKsKsIsIsIsNsO}", "seed", i.seed, "now_ns", i.now_ns,
                         "decisions", i.decisions, "decision_hash", i.decision_hash, "cqe_hash",
                         i.cqe_hash, "cqes_posted", i.cqes_posted, "pending", i.pending, "held",
                         i.held, "overflowed", i.overflowed, "faults_enabled", enabled,
                         "replay_diverged", i.replay_diverged ? Py_True : Py_False);
}

PyObject *ringio_ring_sim_trace(RingioRing *r, PyObject *unused)
{
    (void)unused;
    struct ringio_backend *b = sim_locked(r);
    if (b == NULL)
        return NULL;
    const uint8_t *p;
    size_t n;
    int rc = ringio_sim_trace(b, &p, &n);
    PyObject *out = rc < 0 ? NULL : PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    ringio_release_list(ringio_ring_unlock(r));
    if (rc == -ENODATA) {
        PyErr_SetString(PyExc_ValueError,
                        "this ring does not record its decisions: create it with record=True");
        return NULL;
    }
    if (rc < 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return out;
}
