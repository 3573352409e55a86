/*
 * The Completion type: the handle of one operation and the record of its
 * outcome.  submit_* returns a pending Completion; for a one-shot operation
 * wait() returns that same object once it completed, for a multishot one each
 * leg is a new Completion (so legs can be processed out of order by several
 * threads) and the handle itself becomes done with the final leg.
 *
 * While an operation is in flight the Completion is also its ownership record
 * (struct ringio_py_owner): the core holds a reference to it, dropped only
 * after the core released the operation (owner.c).
 */
#include "ringio_ext.h"

#include <stddef.h>
#include <string.h>

/* The type is final (no Py_TPFLAGS_BASETYPE) and its tp_alloc is the
 * default, so instead of PyType_GenericAlloc (which zeroes the whole object)
 * allocate untracked, zero only the fields before `view` (view and ts are
 * written before they are ever read), and track once initialised. */
#define COMPLETION_ZEROED_END offsetof(RingioCompletion, view)

/*
 * A free list of Completion memory per module state: one-at-a-time traffic
 * otherwise allocates and frees one object per operation, and pymalloc then
 * sets up and tears down a whole pool each time.  A cached block is a dead
 * object: untracked, its GC header still linked into the allocator's
 * accounting (as CPython's own list and tuple free lists do); reuse
 * re-initialises the header (PyObject_Init) and tracks it again.  Disabled
 * under AddressSanitizer so that a use after free stays detectable.
 */
#define RINGIO_FREELIST_MAX 128u
#if defined(__SANITIZE_ADDRESS__)
#define RINGIO_NO_FREELIST 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGIO_NO_FREELIST 1
#endif
#endif

void ringio_completion_freelist_clear(ringio_state *st)
{
    while (st->free_completions != NULL) {
        RingioCompletion *c = st->free_completions;
        st->free_completions = c->next_released;
        PyObject_GC_Del(c);
    }
    st->n_free_completions = 0;
}

/* st: the module state of tp (the type is always st->completion_type). */
static RingioCompletion *completion_alloc(ringio_state *st, PyTypeObject *tp)
{
    RingioCompletion *c = NULL;
#ifndef RINGIO_NO_FREELIST
    if (st->free_completions != NULL) {
        c = st->free_completions;
        st->free_completions = c->next_released;
        st->n_free_completions--;
        (void)PyObject_Init((PyObject *)c, tp); /* type (a new reference), refcount 1 */
    }
#endif
    if (c == NULL) {
        c = PyObject_GC_New(RingioCompletion, tp);
        if (c == NULL)
            return NULL;
    }
    memset((char *)c + sizeof(PyObject), 0, COMPLETION_ZEROED_END - sizeof(PyObject));
    c->res_obj = PyLong_FromLong(0); /* a cached small int: cannot fail */
    c->result = Py_NewRef(Py_None);
    c->state = st;
    c->zc_copied = -1;
    ringio_owner_init(c);
    PyObject_GC_Track(c);
    return c;
}

RingioCompletion *ringio_completion_new(RingioRing *ring, const ringio_kind_ops *ops,
                                        PyObject *user_data, bool multishot)
{
    RingioCompletion *c = completion_alloc(ring->state, ring->state->completion_type);
    if (c == NULL)
        return NULL;
    c->ops = ops;
    c->kind = ops->kind;
    c->multishot = multishot;
    c->user_data = Py_NewRef(user_data != NULL ? user_data : Py_None);
    if (ring->is_sim)
        c->owner.base.tag = ringio_tag_of(user_data);
    return c;
}

PyObject *ringio_completion_result(RingioCompletion *c)
{
    return Py_NewRef(c->result != NULL ? c->result : Py_None);
}

void ringio_completion_release_resources(RingioCompletion *c)
{
    if (c->has_view) {
        c->has_view = false;
        PyBuffer_Release(&c->view);
    }
    if (!c->resources_released) {
        c->resources_released = true;
        if (c->ops != NULL && c->ops->release != NULL)
            c->ops->release(c);
    }
}

/* ---- events -> Completions ------------------------------------------------------ */

int ringio_reaped_prepare(ringio_reaped *s, const struct ringio_event *ev)
{
    RingioCompletion *h = ((struct ringio_py_owner *)ev->owner)->completion;

    s->res = ev->res;
    s->flags = ev->flags;
    s->sequence = ev->sequence;
    s->more = ev->more;
    s->zc_copied = ev->zc_copied;

    PyObject *res_obj = PyLong_FromLong(ev->res);
    if (res_obj == NULL)
        return -1;
    /* A kind without make_result has res itself as its result (None if < 0).
     * Only submitted Completions are reaped, and those always have ops. */
    PyObject *result = h->ops->make_result != NULL ? h->ops->make_result(h, ev)
                                                    : Py_NewRef(ev->res >= 0 ? res_obj : Py_None);
    if (result == NULL) {
        Py_DECREF(res_obj); /* an int: nothing but its own dealloc runs */
        return -1;
    }
    if (h->multishot) {
        RingioCompletion *leg = completion_alloc(h->state, Py_TYPE(h));
        if (leg == NULL) {
            Py_DECREF(result); /* fresh objects (or None): nothing but their own dealloc runs */
            Py_DECREF(res_obj);
            return -1;
        }
        leg->ops = h->ops;
        leg->kind = h->kind;
        leg->multishot = true;
        leg->user_data = Py_NewRef(h->user_data);
        Py_SETREF(leg->result, result);
        leg->ring_serial = h->ring_serial;
        leg->token = h->token;
        leg->res = ev->res;
        Py_SETREF(leg->res_obj, res_obj);
        leg->flags = ev->flags;
        leg->sequence = ev->sequence;
        leg->more = ev->more;
        leg->zc_copied = ev->zc_copied;
        leg->done = true;
        s->leg = leg;
    }
    else {
        s->result = result;
        s->res_obj = res_obj;
    }
    s->handle = (RingioCompletion *)Py_NewRef(h);
    return 0;
}

PyObject *ringio_reaped_commit(ringio_reaped *s)
{
    RingioCompletion *h = s->handle;
    PyObject *ret;
    if (h == NULL)
        return NULL;
    s->handle = NULL;
    if (s->leg != NULL) {
        ret = (PyObject *)s->leg;
        s->leg = NULL;
        h->more = s->more;
        h->sequence = s->sequence;
        if (!s->more) {
            /* Final leg: the operation is over; mirror it on the handle. */
            h->res = s->res;
            Py_SETREF(h->res_obj, Py_NewRef(((RingioCompletion *)ret)->res_obj));
            h->flags = s->flags;
            h->done = true;
            Py_XSETREF(h->result, Py_NewRef(((RingioCompletion *)ret)->result));
        }
    }
    else {
        h->res = s->res;
        Py_SETREF(h->res_obj, s->res_obj);
        s->res_obj = NULL;
        h->flags = s->flags;
        h->sequence = s->sequence;
        h->more = s->more;
        h->zc_copied = s->zc_copied;
        h->done = true;
        Py_XSETREF(h->result, s->result);
        s->result = NULL;
        ret = Py_NewRef(h);
    }
    Py_DECREF(h);
    return ret;
}

void ringio_reaped_discard(ringio_reaped *s)
{
    Py_CLEAR(s->leg);
    Py_CLEAR(s->result);
    Py_CLEAR(s->res_obj);
    Py_CLEAR(s->handle);
}

/* ---- the type ------------------------------------------------------------------------ */

static int completion_traverse(RingioCompletion *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->user_data);
    Py_VISIT(self->result);
    Py_VISIT(self->ancdata);
    return 0;
}

static int completion_clear(RingioCompletion *self)
{
    Py_CLEAR(self->user_data);
    Py_CLEAR(self->res_obj);
    Py_CLEAR(self->result);
    Py_CLEAR(self->ancdata);
    return 0;
}

static void completion_dealloc(RingioCompletion *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* Never in flight here: the core's reference keeps in-flight ones alive.
     * A Completion whose submission failed may still hold its resources. */
    ringio_completion_release_resources(self);
    completion_clear(self);
#ifndef RINGIO_NO_FREELIST
    ringio_state *st = self->state;
    if (st->completion_type == tp &&
        st->n_free_completions < RINGIO_FREELIST_MAX) {
        self->next_released = st->free_completions;
        st->free_completions = self;
        st->n_free_completions++;
        Py_DECREF(tp);
        return;
    }
#endif
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *completion_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"user_data", "res", "result", "flags", "sequence", "kind", "more",
                             NULL};
    PyObject *user_data = Py_None, *result = Py_None;
    PyObject *res_o = NULL, *flags_o = NULL, *seq_o = NULL, *kind_o = NULL;
    int more = 0;
    long long res = 0, flags = 0, seq = 0, kind = RINGIO_KIND_NOP;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOOO$Op:Completion", kwlist, &user_data,
                                     &res_o, &result, &flags_o, &seq_o, &kind_o, &more))
        return NULL;
    if (res_o != NULL && ringio_int_arg(res_o, "res", INT32_MIN, INT32_MAX, &res) < 0)
        return NULL;
    if (flags_o != NULL && ringio_int_arg(flags_o, "flags", 0, UINT32_MAX, &flags) < 0)
        return NULL;
    if (seq_o != NULL && ringio_int_arg(seq_o, "sequence", 0, UINT32_MAX, &seq) < 0)
        return NULL;
    if (kind_o != NULL && ringio_int_arg(kind_o, "kind", 0, RINGIO_KIND_COUNT - 1, &kind) < 0)
        return NULL;
    ringio_state *st = PyType_GetModuleState(tp);
    if (st == NULL)
        return NULL;
    RingioCompletion *c = completion_alloc(st, tp);
    if (c == NULL)
        return NULL;
    c->user_data = Py_NewRef(user_data);
    Py_SETREF(c->result, Py_NewRef(result));
    c->res = (int32_t)res;
    Py_SETREF(c->res_obj, PyLong_FromLongLong(res));
    if (c->res_obj == NULL) {
        Py_DECREF(c);
        return NULL;
    }
    c->flags = (uint32_t)flags;
    c->sequence = (uint32_t)seq;
    c->kind = (uint8_t)kind;
    c->more = more != 0;
    c->done = true;
    return (PyObject *)c;
}

static PyObject *completion_repr(RingioCompletion *self)
{
    const char *kind = self->kind < RINGIO_KIND_COUNT ? ringio_kind_names[self->kind] : "?";
    PyObject *ud = self->user_data != NULL ? self->user_data : Py_None;
    if (!self->done)
        return PyUnicode_FromFormat("<ringio.Completion %s pending user_data=%R>", kind, ud);
    PyObject *result = ringio_completion_result(self);
    if (result == NULL)
        return NULL;
    PyObject *s = PyUnicode_FromFormat(
        "<ringio.Completion %s res=%d result=%R flags=0x%x sequence=%u more=%s user_data=%R>",
        kind, (int)self->res, result, (unsigned)self->flags, (unsigned)self->sequence,
        self->more ? "True" : "False", ud);
    Py_DECREF(result);
    return s;
}

static PyObject *get_kind(RingioCompletion *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->kind);
}
static PyObject *get_flags(RingioCompletion *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->flags);
}
static PyObject *get_sequence(RingioCompletion *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->sequence);
}
static PyObject *get_more(RingioCompletion *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->more);
}
static PyObject *get_done(RingioCompletion *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->done);
}
static PyObject *get_zc_copied(RingioCompletion *self, void *closure)
{
    (void)closure;
    if (self->zc_copied < 0)
        Py_RETURN_NONE;
    return PyBool_FromLong(self->zc_copied);
}
static PyObject *get_ancdata(RingioCompletion *self, void *closure)
{
    (void)closure;
    if (!self->done || self->ancdata == NULL)
        Py_RETURN_NONE;
    return Py_NewRef(self->ancdata);
}
static PyObject *get_msg_flags(RingioCompletion *self, void *closure)
{
    (void)closure;
    if (!self->done || self->kind != RINGIO_KIND_RECVMSG || self->ring_serial == 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->msg_flags);
}

static PyGetSetDef completion_getset[] = {
    {"kind", (getter)get_kind, NULL, "The operation kind (a COMPLETION_KIND_* constant).", NULL},
    {"flags", (getter)get_flags, NULL, "The raw IORING_CQE_F_* flags the kernel set.", NULL},
    {"sequence", (getter)get_sequence, NULL,
     "The leg number of a multishot operation (from 0); 0 for one-shot operations.", NULL},
    {"more", (getter)get_more, NULL, "True while the operation stays armed (multishot).", NULL},
    {"done", (getter)get_done, NULL,
     "True once the operation completed (for a multishot handle: after its final leg).", NULL},
    {"zc_copied", (getter)get_zc_copied, NULL,
     "Zero-copy sends submitted with zc_flags=IORING_SEND_ZC_REPORT_USAGE: True when the "
     "kernel copied the payload after all (always on loopback), False when it really sent "
     "from the buffer; None when unknown (not requested, not a zero-copy send, pending).",
     NULL},
    {"ancdata", (getter)get_ancdata, NULL,
     "recvmsg: the ancillary data received, a list of (level, type, bytes) like "
     "socket.recvmsg (SCM_RIGHTS descriptors are then yours to close); None otherwise.",
     NULL},
    {"msg_flags", (getter)get_msg_flags, NULL,
     "recvmsg: the MSG_* flags the kernel returned (MSG_TRUNC, MSG_CTRUNC, MSG_EOR...); "
     "None otherwise.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* res, result and user_data are object members rather than getters: see res_obj. */
static PyMemberDef completion_members[] = {
    {"user_data", RINGIO_T_OBJECT_EX, offsetof(RingioCompletion, user_data), RINGIO_READONLY,
     "The object passed to submit_*; it comes back unchanged."},
    {"res", RINGIO_T_OBJECT_EX, offsetof(RingioCompletion, res_obj), RINGIO_READONLY,
     "The raw CQE result: >= 0 on success, a negative errno on failure (0 while pending)."},
    {"result", RINGIO_T_OBJECT_EX, offsetof(RingioCompletion, result), RINGIO_READONLY,
     "The kind-specific payload, None when res < 0 (and while pending): res for "
     "nop/timeout/cancel/poll, recv, send, send_zc, sendto, sendmsg, sendmsg_zc and socket "
     "(the new fd); the sender address for recvmsg; (fd, address) for accept; the fd for "
     "each accept_multishot leg; the bytes received for each recv_multishot leg; None for "
     "connect, shutdown and close."},
    {"__weaklistoffset__", RINGIO_T_PYSSIZET, offsetof(RingioCompletion, weakreflist),
     RINGIO_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(completion_doc,
             "Completion(user_data=None, res=0, result=None, flags=0, sequence=0, *, kind=0, "
             "more=False)\n--\n\n"
             "The handle of an operation and the record of its outcome.\n\n"
             "Ring.submit_* return a pending Completion; Ring.wait() returns the same object "
             "once the operation completed (for multishot operations each leg is a new "
             "Completion).  Constructing one directly gives a finished Completion that belongs "
             "to no ring (useful to fake completions in tests).");

static PyType_Slot completion_slots[] = {
    {Py_tp_doc, (void *)completion_doc},
    {Py_tp_new, completion_new},
    {Py_tp_dealloc, completion_dealloc},
    {Py_tp_traverse, completion_traverse},
    {Py_tp_clear, completion_clear},
    {Py_tp_repr, completion_repr},
    {Py_tp_getset, completion_getset},
    {Py_tp_members, completion_members},
    {0, NULL},
};

PyType_Spec ringio_completion_spec = {
    .name = "ringio.Completion",
    .basicsize = sizeof(RingioCompletion),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = completion_slots,
};
