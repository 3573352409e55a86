/*
 * Deferred release of operations.
 *
 * The core calls owner->release exactly once per operation, with the ring
 * lock held and possibly without the GIL (ringio_core_close runs with the GIL
 * released).  So release only pushes the Completion onto the ring's
 * `released` list: plain pointer stores, no Python API.  Whoever drops the
 * ring lock takes the list (ringio_ring_unlock) and, with the GIL and no lock
 * held, releases the operation's resources and the core's reference
 * (ringio_release_list).  That Py_DECREF may run arbitrary Python code
 * (__del__, weakref callbacks), which is why it must not happen under the
 * lock.
 */
#include "ringio_ext.h"

#include <errno.h>

static void owner_release(struct ringio_owner *o)
{
    RingioCompletion *c = ((struct ringio_py_owner *)o)->completion;
    RingioRing *r = c->ring;
    if (r == NULL)
        return; /* cannot happen: c->ring is set for as long as the core holds c */
    c->next_released = r->released;
    r->released = c;
}

void ringio_owner_init(RingioCompletion *c)
{
    c->owner.base.release = owner_release;
    c->owner.completion = c;
}

RingioCompletion *ringio_list_concat(RingioCompletion *a, RingioCompletion *b)
{
    if (a == NULL)
        return b;
    RingioCompletion *t = a;
    while (t->next_released != NULL)
        t = t->next_released;
    t->next_released = b;
    return a;
}

static void release_all(RingioCompletion *list)
{
    while (list != NULL) {
        RingioCompletion *c = list;
        list = c->next_released;
        c->next_released = NULL;
        c->in_flight = false;
        c->ring = NULL;
        ringio_completion_release_resources(c);
        Py_DECREF(c); /* the core's reference, taken in ringio_submit() */
    }
}

void ringio_release_list(RingioCompletion *list)
{
    if (list == NULL)
        return;
    /* Releasing may run Python code (a buffer exporter, __del__, weakref
     * callbacks), which must neither see nor clobber a pending exception.
     * Saving and restoring it is only needed when there is one; without one,
     * whatever a release leaves behind is dropped, as a restore of "nothing
     * pending" would. */
    if (PyErr_Occurred()) {
        ringio_saved_exc saved = ringio_exc_save();
        release_all(list);
        ringio_exc_restore(saved);
        return;
    }
    release_all(list);
    if (PyErr_Occurred())
        PyErr_Clear();
}

PyObject *ringio_submit(RingioRing *r, RingioCompletion *c, ringio_submit_fn fn, void *arg)
{
    if (ringio_ring_lock_open(r) < 0) {
        Py_DECREF(c);
        return NULL;
    }
    /* An open link() chain takes every operation submitted meanwhile: only
     * its own thread may add to it. */
    if (r->link_owner != 0 && r->link_owner != PyThread_get_thread_ident()) {
        ringio_release_list(ringio_ring_unlock(r));
        Py_DECREF(c);
        PyErr_SetString(PyExc_RuntimeError,
                        "another thread is building a link() chain on this ring");
        return NULL;
    }
    uint64_t token = 0;
    c->ring = r;
    c->ring_serial = r->serial;
    c->in_flight = true;
    /* The core's reference.  Taken before the call: release() may only queue c,
     * and the queue is drained below, after this reference exists. */
    Py_INCREF(c);
    int rc = fn(r->core, c, arg, &token);
    if (rc < 0) {
        /* Nothing was queued and release() was not called (core contract). */
        c->in_flight = false;
        c->ring = NULL;
    }
    else {
        c->token = token;
    }
    RingioCompletion *list = ringio_ring_unlock(r);
    if (rc < 0)
        Py_DECREF(c); /* the core never took it; c stays alive through the caller's ref */
    ringio_release_list(list);
    if (rc < 0) {
        ringio_set_core_error(r->state, rc);
        Py_DECREF(c);
        return NULL;
    }
    return (PyObject *)c;
}
