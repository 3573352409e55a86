/*
 * Ring.submit_nop / submit_timeout / submit_cancel / submit_poll.
 *
 * Each builds a pending Completion (the operation's handle and ownership
 * record), stores in it what the kernel will read (the timespec of a
 * timeout), and hands it to ringio_submit() with a callback that calls the
 * core.  Socket operations (submit_socket.c) follow the same pattern.
 */
#include "ringio_ext.h"

#include <math.h>

static const ringio_kind_ops nop_ops = {RINGIO_KIND_NOP, ringio_result_res_or_none, NULL};
static const ringio_kind_ops timeout_ops = {RINGIO_KIND_TIMEOUT, ringio_result_res_or_none, NULL};
static const ringio_kind_ops cancel_ops = {RINGIO_KIND_CANCEL, ringio_result_res_or_none, NULL};
static const ringio_kind_ops poll_ops = {RINGIO_KIND_POLL, ringio_result_res_or_none, NULL};

/* ---- nop -------------------------------------------------------------------- */

static int do_nop(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    (void)arg;
    return ringio_submit_nop(core, &c->owner.base, token);
}

const char ringio_doc_submit_nop[] =
    "submit_nop($self, user_data=None)\n--\n\n"
    "Submit a no-op.  Returns its pending Completion; it completes with res 0.";

PyObject *ringio_ring_submit_nop(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    static const char *const names[] = {"user_data", NULL};
    PyObject *argv[1];
    if (ringio_parse_args("submit_nop", args, nargs, kwnames, names, 1, 0, argv) < 0)
        return NULL;
    RingioRing *r = (RingioRing *)self;
    RingioCompletion *c = ringio_completion_new(r, &nop_ops, argv[0], false);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_nop, NULL);
}

/* ---- timeout ------------------------------------------------------------------- */

static int do_timeout(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    (void)arg;
    return ringio_submit_timeout(core, &c->owner.base, &c->op.ts, 0, 0, token);
}

const char ringio_doc_submit_timeout[] =
    "submit_timeout($self, seconds, user_data=None)\n--\n\n"
    "Submit a relative timeout of `seconds` (a real number >= 0).  It completes with "
    "res == -errno.ETIME when the time passed (its normal outcome; result is None), or "
    "-errno.ECANCELED when cancelled.";

PyObject *ringio_ring_submit_timeout(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"seconds", "user_data", NULL};
    PyObject *argv[2];
    if (ringio_parse_args("submit_timeout", args, nargs, kwnames, names, 2, 1, argv) < 0)
        return NULL;
    double d = PyFloat_AsDouble(argv[0]);
    if (d == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "seconds must be a real number, not %.100s",
                         Py_TYPE(argv[0])->tp_name);
        }
        return NULL;
    }
    if (!isfinite(d) || d < 0 || d > 9.0e15) {
        PyErr_SetString(PyExc_ValueError, "seconds must be a finite number >= 0");
        return NULL;
    }
    RingioRing *r = (RingioRing *)self;
    RingioCompletion *c = ringio_completion_new(r, &timeout_ops, argv[1], false);
    if (c == NULL)
        return NULL;
    double whole = floor(d);
    long long sec = (long long)whole;
    long long nsec = llround((d - whole) * 1e9);
    if (nsec >= 1000000000LL) {
        sec++;
        nsec -= 1000000000LL;
    }
    c->op.ts.tv_sec = sec;
    c->op.ts.tv_nsec = nsec;
    return ringio_submit(r, c, do_timeout, NULL);
}

/* ---- cancel ------------------------------------------------------------------------ */

struct cancel_args {
    uint64_t target;
    unsigned flags;
};

static int do_cancel(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct cancel_args *a = arg;
    return ringio_submit_cancel(core, &c->owner.base, a->target, a->flags, token);
}

const char ringio_doc_submit_cancel[] =
    "submit_cancel($self, target, user_data=None, *, flags=0)\n--\n\n"
    "Ask the kernel to cancel the operation whose Completion is `target` (a Completion "
    "returned by a submit_* of this ring).  The cancel's own Completion has res 0 when the "
    "target was found, -errno.ENOENT when it had already finished, -errno.EALREADY when it "
    "was running and could not be stopped; the target then completes with "
    "-errno.ECANCELED.  flags may hold IORING_ASYNC_CANCEL_ALL.";

PyObject *ringio_ring_submit_cancel(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    static const char *const names[] = {"target", "user_data", "flags", NULL};
    PyObject *argv[3];
    long long flags = 0;
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_cancel", args, nargs, kwnames, names, 2, 1, argv) < 0)
        return NULL;
    if (!PyObject_TypeCheck(argv[0], r->state->completion_type)) {
        PyErr_Format(PyExc_TypeError, "target must be a ringio.Completion, not %.100s",
                     Py_TYPE(argv[0])->tp_name);
        return NULL;
    }
    RingioCompletion *target = (RingioCompletion *)argv[0];
    if (target->ring_serial != r->serial) {
        PyErr_SetString(PyExc_ValueError,
                        "target is not an operation submitted to this ring");
        return NULL;
    }
    if (argv[2] != NULL && ringio_int_arg(argv[2], "flags", 0, UINT32_MAX, &flags) < 0)
        return NULL;
    /* The operation is named by its token; ANY / FD keys would ignore it. */
    if (flags & ~(long long)IORING_ASYNC_CANCEL_ALL) {
        PyErr_SetString(PyExc_ValueError,
                        "submit_cancel() flags may only contain IORING_ASYNC_CANCEL_ALL");
        return NULL;
    }
    struct cancel_args a = {target->token, (unsigned)flags};
    RingioCompletion *c = ringio_completion_new(r, &cancel_ops, argv[1], false);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_cancel, &a);
}

/* ---- poll -------------------------------------------------------------------------- */

struct poll_args {
    int fd;
    unsigned mask;
    bool multishot;
};

static int do_poll(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct poll_args *a = arg;
    return ringio_submit_poll(core, &c->owner.base, a->fd, a->mask, a->multishot, 0, token);
}

const char ringio_doc_submit_poll[] =
    "submit_poll($self, fd, mask, user_data=None, multishot=False)\n--\n\n"
    "Wait until fd (an int or an object with fileno()) is ready for the poll events in mask "
    "(select.POLLIN, ...).  result is the ready mask.  With multishot=True the poll stays "
    "armed: each readiness event is delivered as a new Completion (sequence 0, 1, ...; more "
    "is False on the last one) and the returned handle becomes done with the final leg.";

PyObject *ringio_ring_submit_poll(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"fd", "mask", "user_data", "multishot", NULL};
    PyObject *argv[4];
    long long mask;
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_poll", args, nargs, kwnames, names, 4, 2, argv) < 0)
        return NULL;
    int fd = PyObject_AsFileDescriptor(argv[0]); /* TypeError / ValueError for fd < 0 */
    if (fd < 0)
        return NULL;
    if (ringio_int_arg(argv[1], "mask", 0, UINT32_MAX, &mask) < 0)
        return NULL;
    int multishot = argv[3] != NULL ? PyObject_IsTrue(argv[3]) : 0;
    if (multishot < 0)
        return NULL;
    struct poll_args a = {fd, (unsigned)mask, multishot != 0};
    RingioCompletion *c = ringio_completion_new(r, &poll_ops, argv[2], multishot != 0);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_poll, &a);
}
