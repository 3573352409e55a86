/*
 * Ring.submit_nop / submit_timeout / submit_cancel / submit_poll.
 *
 * Each builds a pending Completion (the operation's handle and ownership
 * record), stores in it what the kernel will read (the timespec of a
 * timeout), and hands it to ringio_submit() with a callback that calls the
 * core.  Socket operations (submit_socket.c) follow the same pattern.
 *
 * As there, each operation has a C entry point (ringio_ring_submit_*, taking
 * converted arguments and validating them; the C API calls it) and a Ring
 * method (ringio_meth_submit_*) that only parses its arguments.
 */
#include "ringio_ext.h"

#include <math.h>

static const ringio_kind_ops nop_ops = {RINGIO_KIND_NOP, NULL, NULL};
static const ringio_kind_ops timeout_ops = {RINGIO_KIND_TIMEOUT, NULL, NULL};
static const ringio_kind_ops cancel_ops = {RINGIO_KIND_CANCEL, NULL, NULL};
static const ringio_kind_ops poll_ops = {RINGIO_KIND_POLL, NULL, NULL};

/* ---- nop -------------------------------------------------------------------- */

static int do_nop(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    (void)arg;
    return ringio_submit_nop(core, &c->owner.base, token);
}

const char ringio_doc_submit_nop[] =
    "submit_nop($self, user_data=None)\n--\n\n"
    "Submit a no-op.  Returns its pending Completion; it completes with res 0.";

PyObject *ringio_ring_submit_nop(RingioRing *r, PyObject *user_data)
{
    RingioCompletion *c = ringio_completion_new(r, &nop_ops, user_data, false);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_nop, NULL);
}

PyObject *ringio_meth_submit_nop(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    static const char *const names[] = {"user_data", NULL};
    PyObject *argv[1];
    if (ringio_parse_args("submit_nop", args, nargs, kwnames, names, 1, 0, argv) < 0)
        return NULL;
    return ringio_ring_submit_nop((RingioRing *)self, argv[0]);
}

/* ---- timeout ------------------------------------------------------------------- */

static int do_timeout(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    (void)arg;
    return ringio_submit_timeout(core, &c->owner.base, &c->ts, 0, 0, token);
}

const char ringio_doc_submit_timeout[] =
    "submit_timeout($self, seconds, user_data=None)\n--\n\n"
    "Submit a relative timeout of `seconds` (a real number >= 0).  It completes with "
    "res == -errno.ETIME when the time passed (its normal outcome; result is None), or "
    "-errno.ECANCELED when cancelled.";

PyObject *ringio_ring_submit_timeout(RingioRing *r, double seconds, PyObject *user_data)
{
    if (!isfinite(seconds) || seconds < 0 || seconds > 9.0e15) {
        PyErr_SetString(PyExc_ValueError, "seconds must be a finite number >= 0");
        return NULL;
    }
    RingioCompletion *c = ringio_completion_new(r, &timeout_ops, user_data, false);
    if (c == NULL)
        return NULL;
    double whole = floor(seconds);
    long long sec = (long long)whole;
    long long nsec = llround((seconds - whole) * 1e9);
    if (nsec >= 1000000000LL) {
        sec++;
        nsec -= 1000000000LL;
    }
    c->ts.tv_sec = sec;
    c->ts.tv_nsec = nsec;
    return ringio_submit(r, c, do_timeout, NULL);
}

PyObject *ringio_meth_submit_timeout(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
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
    return ringio_ring_submit_timeout((RingioRing *)self, d, argv[1]);
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

PyObject *ringio_ring_submit_cancel(RingioRing *r, PyObject *target, PyObject *user_data,
                                    unsigned flags)
{
    if (target == NULL || !PyObject_TypeCheck(target, r->state->completion_type)) {
        PyErr_Format(PyExc_TypeError, "target must be a ringio.Completion, not %.100s",
                     target != NULL ? Py_TYPE(target)->tp_name : "NULL");
        return NULL;
    }
    RingioCompletion *t = (RingioCompletion *)target;
    if (t->ring_serial != r->serial) {
        PyErr_SetString(PyExc_ValueError,
                        "target is not an operation submitted to this ring");
        return NULL;
    }
    /* The operation is named by its token; ANY / FD keys would ignore it. */
    if (flags & ~(unsigned)IORING_ASYNC_CANCEL_ALL) {
        PyErr_SetString(PyExc_ValueError,
                        "submit_cancel() flags may only contain IORING_ASYNC_CANCEL_ALL");
        return NULL;
    }
    struct cancel_args a = {t->token, flags};
    RingioCompletion *c = ringio_completion_new(r, &cancel_ops, user_data, false);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_cancel, &a);
}

PyObject *ringio_meth_submit_cancel(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    static const char *const names[] = {"target", "user_data", "flags", NULL};
    PyObject *argv[3];
    long long flags = 0;
    if (ringio_parse_args("submit_cancel", args, nargs, kwnames, names, 2, 1, argv) < 0)
        return NULL;
    if (argv[2] != NULL && ringio_int_arg(argv[2], "flags", 0, UINT32_MAX, &flags) < 0)
        return NULL;
    return ringio_ring_submit_cancel((RingioRing *)self, argv[0], argv[1], (unsigned)flags);
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

PyObject *ringio_ring_submit_poll(RingioRing *r, int fd, unsigned mask, PyObject *user_data,
                                  bool multishot)
{
    if (ringio_check_fd(fd, "submit_poll") < 0)
        return NULL;
    struct poll_args a = {fd, mask, multishot};
    RingioCompletion *c = ringio_completion_new(r, &poll_ops, user_data, multishot);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_poll, &a);
}

PyObject *ringio_meth_submit_poll(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"fd", "mask", "user_data", "multishot", NULL};
    PyObject *argv[4];
    long long mask;
    if (ringio_parse_args("submit_poll", args, nargs, kwnames, names, 4, 2, argv) < 0)
        return NULL;
    int fd = ringio_fd_of(argv[0]); /* TypeError / ValueError for fd < 0 */
    if (fd < 0)
        return NULL;
    if (ringio_int_arg(argv[1], "mask", 0, UINT32_MAX, &mask) < 0)
        return NULL;
    int multishot = argv[3] != NULL ? PyObject_IsTrue(argv[3]) : 0;
    if (multishot < 0)
        return NULL;
    return ringio_ring_submit_poll((RingioRing *)self, fd, (unsigned)mask, argv[2],
                                   multishot != 0);
}
