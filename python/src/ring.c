/*
 * The Ring type: lifecycle, the ring and wait locks, wait / wait_many /
 * break_wait, completion serving, batches.
 *
 * Lock order (see ringio_ext.h): wait lock -> GIL -> ring lock.  The ring lock
 * is taken with the GIL held and its holders never run Python code nor wait
 * for the GIL; the one long holder, close(), drops the GIL before taking it.
 * The wait lock is taken with the GIL released and is held across the
 * blocking ringio_core_wait_block(), so only one thread at a time is in the
 * kernel waiting for completions, and close() can exclude waiters by taking
 * it.
 */
#include "ringio_ext.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* close() waits at most this long for cancelled operations' final CQEs. */
#define RINGIO_CLOSE_TIMEOUT_NS 1000000000LL
/* Events reaped per core call by wait_many(). */
#define RINGIO_REAP_CHUNK 64u
/* Kernel limits (IORING_MAX_ENTRIES / IORING_MAX_CQ_ENTRIES). */
#define RINGIO_MAX_ENTRIES 32768LL
#define RINGIO_MAX_CQ_ENTRIES 65536LL

static uint64_t ring_serial_counter;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline unsigned long self_id(void) { return (unsigned long)pthread_self(); }

/* ---- locks ---------------------------------------------------------------- */

static void raw_lock(RingioRing *r)
{
    pthread_mutex_lock(&r->lock);
    __atomic_store_n(&r->lock_owner, self_id(), __ATOMIC_RELAXED);
}

static void raw_unlock(RingioRing *r)
{
    __atomic_store_n(&r->lock_owner, 0UL, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&r->lock);
}

void ringio_raise_closed(RingioRing *r) { PyErr_SetString(r->state->RingClosed, "ring is closed"); }

int ringio_ring_lock(RingioRing *r)
{
    /* Only this thread can have stored its own id, so a relaxed read is enough. */
    if (__atomic_load_n(&r->lock_owner, __ATOMIC_RELAXED) == self_id()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "re-entrant use of a ringio.Ring from code running while this thread "
                        "holds the ring's lock");
        return -1;
    }
    raw_lock(r);
    return 0;
}

int ringio_ring_lock_open(RingioRing *r)
{
    if (ringio_ring_lock(r) < 0)
        return -1;
    if (r->core == NULL || r->closing) {
        RingioCompletion *list = ringio_ring_unlock(r);
        ringio_release_list(list);
        ringio_raise_closed(r);
        return -1;
    }
    return 0;
}

RingioCompletion *ringio_ring_unlock(RingioRing *r)
{
    RingioCompletion *list = r->released;
    r->released = NULL;
    raw_unlock(r);
    return list;
}

static int wait_lock_acquire(RingioRing *r)
{
    if (__atomic_load_n(&r->wait_owner, __ATOMIC_RELAXED) == self_id()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "re-entrant wait on a ringio.Ring from code running inside a wait on the "
                        "same ring in the same thread");
        return -1;
    }
    if (pthread_mutex_trylock(&r->wait_lock) != 0) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&r->wait_lock);
        Py_END_ALLOW_THREADS
    }
    __atomic_store_n(&r->wait_owner, self_id(), __ATOMIC_RELAXED);
    return 0;
}

static void wait_lock_release(RingioRing *r)
{
    __atomic_store_n(&r->wait_owner, 0UL, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&r->wait_lock);
}

static bool ring_is_closed(RingioRing *r) { return __atomic_load_n(&r->core, __ATOMIC_ACQUIRE) == NULL; }

/* ---- creation --------------------------------------------------------------- */

enum backend_choice { BACKEND_AUTO, BACKEND_URING, BACKEND_SIM };

/* backend= argument, else RINGIO_BACKEND, else "auto".  An explicit
 * argument wins over the environment; "auto" in either means: io_uring if a
 * ring can be created, else the simulated kernel with a warning. */
static int select_backend(PyObject *backend_o, enum backend_choice *out)
{
    const char *name = NULL;
    bool from_env = false;
    if (backend_o != NULL && backend_o != Py_None) {
        if (!PyUnicode_Check(backend_o)) {
            PyErr_Format(PyExc_TypeError, "backend must be a str, not %.100s",
                         Py_TYPE(backend_o)->tp_name);
            return -1;
        }
        name = PyUnicode_AsUTF8(backend_o);
        if (name == NULL)
            return -1;
    }
    if (name == NULL || strcmp(name, "auto") == 0) {
        const char *env = getenv("RINGIO_BACKEND");
        if (env != NULL && env[0] != '\0') {
            name = env;
            from_env = true;
        }
    }
    if (name == NULL || strcmp(name, "auto") == 0)
        *out = BACKEND_AUTO;
    else if (strcmp(name, "uring") == 0)
        *out = BACKEND_URING;
    else if (strcmp(name, "sim") == 0)
        *out = BACKEND_SIM;
    else {
        PyErr_Format(PyExc_ValueError,
                     "unknown backend '%s'%s: expected \"auto\", \"uring\" or \"sim\"", name,
                     from_env ? " (from the RINGIO_BACKEND environment variable)" : "");
        return -1;
    }
    return 0;
}

/* Errors of io_uring_setup that mean "not available here", as opposed to
 * "your arguments are wrong": only these make "auto" fall back. */
static bool setup_unavailable(int err)
{
    return err == EPERM || err == EACCES || err == ENOSYS || err == ENOMEM;
}

static int create_uring(const struct ringio_setup *setup, struct ringio_backend **b)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ringio_uring_backend_new(setup, b);
    Py_END_ALLOW_THREADS
    return rc;
}

static PyObject *ring_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"entries", "flags",  "cq_entries", "backend",
                             "seed",    "faults", "replay",     "record", NULL};
    PyObject *entries_o = NULL, *flags_o = NULL, *cq_o = NULL, *backend_o = NULL;
    PyObject *seed_o = NULL, *faults_o = NULL, *replay_o = NULL;
    int record = 0;
    long long entries = 8, flags = 0, cq = 0;
    enum backend_choice backend;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO$OOOOOp:Ring", kwlist, &entries_o, &flags_o,
                                     &cq_o, &backend_o, &seed_o, &faults_o, &replay_o, &record))
        return NULL;
    if (flags_o != NULL && ringio_int_arg(flags_o, "flags", 0, UINT32_MAX, &flags) < 0)
        return NULL;
    bool clamp = (flags & IORING_SETUP_CLAMP) != 0;
    if (entries_o != NULL && ringio_int_arg(entries_o, "entries", LLONG_MIN, LLONG_MAX, &entries) < 0)
        return NULL;
    if (entries <= 0) {
        PyErr_SetString(PyExc_ValueError, "entries must be >= 1");
        return NULL;
    }
    if (entries > (clamp ? (long long)UINT32_MAX : RINGIO_MAX_ENTRIES)) {
        PyErr_Format(PyExc_ValueError,
                     "entries must be <= %lld (the kernel's IORING_MAX_ENTRIES), or pass "
                     "IORING_SETUP_CLAMP in flags to have it clamped",
                     RINGIO_MAX_ENTRIES);
        return NULL;
    }
    if (cq_o != NULL && cq_o != Py_None) {
        if (ringio_int_arg(cq_o, "cq_entries", LLONG_MIN, LLONG_MAX, &cq) < 0)
            return NULL;
        if (cq < entries) {
            PyErr_SetString(PyExc_ValueError, "cq_entries must be >= entries");
            return NULL;
        }
        if (cq > (clamp ? (long long)UINT32_MAX : RINGIO_MAX_CQ_ENTRIES)) {
            PyErr_Format(PyExc_ValueError,
                         "cq_entries must be <= %lld (the kernel's IORING_MAX_CQ_ENTRIES), or "
                         "pass IORING_SETUP_CLAMP in flags",
                         RINGIO_MAX_CQ_ENTRIES);
            return NULL;
        }
    }
    if (select_backend(backend_o, &backend) < 0)
        return NULL;
    bool sim_args = (seed_o && seed_o != Py_None) || (faults_o && faults_o != Py_None) ||
                    (replay_o && replay_o != Py_None) || record;
    if (backend == BACKEND_URING && sim_args) {
        PyErr_SetString(PyExc_ValueError,
                        "seed, faults, replay and record configure the simulated backend; they "
                        "mean nothing with backend=\"uring\"");
        return NULL;
    }

    ringio_state *st = ringio_state_from_type(type);
    if (st == NULL)
        return NULL;
    struct ringio_setup setup = {
        .entries = (unsigned)entries,
        .cq_entries = (unsigned)cq,
        .flags = (unsigned)flags,
    };
    struct ringio_backend *b = NULL;
    int rc = -EINVAL;
    if (backend != BACKEND_SIM) {
        rc = create_uring(&setup, &b);
        if (rc < 0 && (backend == BACKEND_URING || !setup_unavailable(-rc))) {
            ringio_set_setup_error(-rc);
            return NULL;
        }
        if (rc < 0) {
            /* auto: say why, then take the simulated kernel. */
            if (PyErr_WarnFormat(st->BackendFallbackWarning, 1,
                                 "io_uring is unavailable (%s: %s); ringio runs this Ring on the "
                                 "simulated backend (backend=\"sim\")",
                                 strerror(-rc), ringio_setup_advice(-rc)) < 0)
                return NULL;
            backend = BACKEND_SIM;
        }
    }
    struct ringio_sim_args sa = {0};
    if (backend == BACKEND_SIM) {
        if (ringio_sim_args_parse(seed_o, faults_o, replay_o, record, &sa) < 0)
            return NULL;
        Py_BEGIN_ALLOW_THREADS
        rc = ringio_sim_backend_new(&setup, &sa.cfg, &b);
        Py_END_ALLOW_THREADS
        if (rc < 0) {
            ringio_sim_args_clear(&sa);
            if (rc == -EINVAL && sa.cfg.source == RINGIO_SIM_SOURCE_REPLAY)
                PyErr_SetString(PyExc_ValueError, "replay: not a ringio simulation trace");
            else
                ringio_set_setup_error(-rc);
            return NULL;
        }
    }

    RingioRing *self = (RingioRing *)type->tp_alloc(type, 0);
    if (self == NULL) {
        b->ops->destroy(b);
        ringio_sim_args_clear(&sa);
        return NULL;
    }
    self->state = st;
    self->fd = -1;
    self->backend_name = backend == BACKEND_SIM ? "sim" : "uring";
    self->serial = __atomic_add_fetch(&ring_serial_counter, 1, __ATOMIC_RELAXED);
    pthread_mutex_init(&self->lock, NULL);
    pthread_mutex_init(&self->wait_lock, NULL);
    if (backend == BACKEND_SIM) {
        self->is_sim = true;
        self->sim_backend = b;
        self->sim_seed = sa.cfg.seed;
        self->sim_faults = sa.faults; /* steals the reference */
        sa.faults = NULL;
        struct ringio_sim_info info;
        if (ringio_sim_info(b, &info) == 0)
            self->sim_seed = info.seed;
        ringio_sim_args_clear(&sa);
    }
    struct ringio_core *core = NULL;
    rc = ringio_core_new(b, &core);
    if (rc < 0) {
        b->ops->destroy(b);
        ringio_set_core_error(st, rc);
        Py_DECREF(self);
        return NULL;
    }
    self->fd = b->fd;
    self->features = b->features;
    self->sq_entries = b->sq_entries;
    self->cq_entries = b->cq_entries;
    self->setup_flags = b->setup_flags;
    __atomic_store_n(&self->core, core, __ATOMIC_RELEASE);
    return (PyObject *)self;
}

/* Everything happens in tp_new; accepting the same arguments here lets
 * subclasses call super().__init__(entries, ...). */
static int ring_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    (void)self;
    (void)args;
    (void)kwds;
    return 0;
}

/* ---- close -------------------------------------------------------------------- */

static int ring_close_impl(RingioRing *self)
{
    if (ringio_ring_lock(self) < 0)
        return -1;
    if (self->core == NULL) {
        ringio_release_list(ringio_ring_unlock(self));
        return 0;
    }
    if (self->workers > 0) {
        ringio_release_list(ringio_ring_unlock(self));
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot close the ring while serve_completions() workers are running: "
                        "call stop_serving() and join them first");
        return -1;
    }
    bool first = !self->closing;
    self->closing = true; /* no new operations, no new waiters from now on */
    if (first && self->in_kernel)
        (void)ringio_core_wake(self->core); /* unblock the waiter in the kernel */
    ringio_release_list(ringio_ring_unlock(self));

    /* Once we hold the wait lock, nobody is inside ringio_core_wait_block(). */
    if (wait_lock_acquire(self) < 0) {
        if (first) {
            raw_lock(self);
            self->closing = false;
            ringio_release_list(ringio_ring_unlock(self));
        }
        return -1;
    }
    struct ringio_core *core;
    RingioCompletion *list;
    Py_BEGIN_ALLOW_THREADS
    raw_lock(self);
    core = self->core;
    if (core != NULL) {
        /* Cancels what is in flight, reaps final CQEs (bounded) and releases
         * every owner: they all land on self->released. */
        (void)ringio_core_close(core, RINGIO_CLOSE_TIMEOUT_NS);
        __atomic_store_n(&self->core, NULL, __ATOMIC_RELEASE);
    }
    list = self->released;
    self->released = NULL;
    raw_unlock(self);
    if (core != NULL)
        ringio_core_free(core);
    Py_END_ALLOW_THREADS
    wait_lock_release(self);
    /* The C client's user pointer may die with the ring: forget it. */
    self->c_callback = NULL;
    self->c_callback_user = NULL;
    ringio_release_list(list);
    Py_CLEAR(self->registered_buffers); /* the ring that pinned them is gone */
    return 0;
}

int ringio_ring_close(RingioRing *r) { return ring_close_impl(r); }

static void ring_finalize(RingioRing *self)
{
    if (self->state == NULL)
        return; /* creation failed before anything was set up */
    ringio_saved_exc saved = ringio_exc_save();
    if (!ring_is_closed(self) &&
        PyErr_ResourceWarning((PyObject *)self, 1, "unclosed ringio.Ring %R", self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    if (ring_close_impl(self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    ringio_exc_restore(saved);
}

static int ring_traverse(RingioRing *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->callback);
    Py_VISIT(self->sim_faults);
    Py_VISIT(self->sim_control);
    Py_VISIT(self->registered_buffers);
    return 0;
}

static int ring_clear(RingioRing *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->sim_faults);
    Py_CLEAR(self->sim_control);
    Py_CLEAR(self->registered_buffers);
    return 0;
}

static void ring_dealloc(RingioRing *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* resurrected */
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    ring_clear(self);
    if (self->core != NULL) {
        /* Only reachable if the finalizer could not close (it always can). */
        struct ringio_core *core = self->core;
        self->core = NULL;
        ringio_core_free(core);
        RingioCompletion *list = self->released;
        self->released = NULL;
        ringio_release_list(list);
    }
    if (self->state != NULL) {
        pthread_mutex_destroy(&self->lock);
        pthread_mutex_destroy(&self->wait_lock);
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* ---- reaping ----------------------------------------------------------------------- */

typedef struct {
    ringio_reaped *slots;
    unsigned cap;
    unsigned n;
} reap_buf;

/* The core's deliver callback: ring lock and GIL held, cyclic GC disabled. */
static int deliver_cb(void *ctx, const struct ringio_event *ev)
{
    reap_buf *b = ctx;
    if (b->n >= b->cap)
        return -ENOSPC; /* cannot happen: we never ask for more than cap */
    ringio_reaped *s = &b->slots[b->n];
    memset(s, 0, sizeof(*s));
    if (ev->wake) {
        s->wake = true;
        b->n++;
        return 0;
    }
    if (ev->owner == NULL)
        return 0; /* not ours (the core reports stale CQEs in its stats) */
    if (ringio_reaped_prepare(s, ev) < 0)
        return -ENOMEM; /* exception set; the event stays queued in the core */
    b->n++;
    return 0;
}

/* Reap up to `max` events into b (ring lock held).  Wakes sent by
 * stop_serving() that reach a non-serving waiter are dropped.  Returns the
 * core's result (< 0 on error, possibly with an exception set). */
static int reap_locked(RingioRing *self, reap_buf *b, unsigned max, bool serving)
{
    unsigned start = b->n;
    if (max > b->cap - b->n)
        max = b->cap - b->n;
    /* Allocation must not trigger a collection here: finalizers could run
     * Python code (or release the GIL) while we hold the ring lock. */
    int gc_was_enabled = PyGC_Disable();
    int rc = ringio_core_reap(self->core, max, deliver_cb, b);
    if (gc_was_enabled)
        PyGC_Enable();
    unsigned w = start;
    for (unsigned i = start; i < b->n; i++) {
        if (b->slots[i].wake && self->swallow_wakes > 0) {
            self->swallow_wakes--;
            if (!serving)
                continue; /* a stop_serving() wake nobody needs any more */
        }
        b->slots[w++] = b->slots[i];
    }
    b->n = w;
    return rc;
}

/* After a reap: success if anything was delivered (a later error is retried
 * by the next reap), else turn rc into an exception. */
static int reap_outcome(int rc, const reap_buf *b)
{
    if (b->n > 0) {
        if (PyErr_Occurred())
            PyErr_Clear();
        return 0;
    }
    if (rc < 0) {
        if (!PyErr_Occurred()) {
            errno = -rc;
            PyErr_SetFromErrno(PyExc_OSError);
        }
        return -1;
    }
    return 0;
}

/*
 * Staged work often completes inside the io_uring_enter that submits it (a
 * send or a receive with data waiting, a page-cache read): a wait that
 * submits it then returns at once, and releasing the GIL around that enter
 * costs more than the enter's own entry.  So with staged work a wait first
 * submits with the GIL (and the ring lock) held and looks at the CQ; only if
 * nothing is there does it release the GIL and block, in a second enter.  A
 * loop whose staged work does not complete inline would pay that second enter
 * every time, so misses back off: after a miss the next `inline_backoff`
 * waits go straight to the blocking enter, and the backoff doubles (up to
 * 256) with every further miss; a hit resets it.  The simulated backend is
 * left out: its enters are its scheduler, and they stay as they were.
 */
#define INLINE_BACKOFF_MAX 256u

static bool inline_predicted(RingioRing *self)
{
    if (self->is_sim)
        return false;
    if (self->inline_skip > 0) {
        self->inline_skip--;
        return false;
    }
    return true;
}

static void inline_learn(RingioRing *self, bool hit)
{
    if (hit) {
        self->inline_backoff = 1;
        return;
    }
    unsigned backoff = self->inline_backoff ? self->inline_backoff : 1; /* 0: a new ring */
    self->inline_skip = backoff;
    self->inline_backoff = backoff < INLINE_BACKOFF_MAX ? backoff * 2 : INLINE_BACKOFF_MAX;
}

/*
 * Wait until at least one event is available, then reap up to `max` into b.
 * Returns 0 (b->n == 0 means timeout, or *stopped when serving and asked to
 * stop) or -1 with an exception (RingClosed, a signal handler's exception,
 * OSError).
 */
static int ring_wait_events(RingioRing *self, reap_buf *b, unsigned max, int64_t timeout_ns,
                            bool serving, bool *stopped)
{
    /* deadline: -1 none; 0 a poll (timeout 0: no clock read, the common
     * wait(0) of asyncio); else CLOCK_MONOTONIC ns, which is never 0. */
    int64_t deadline = timeout_ns < 0 ? -1 : timeout_ns == 0 ? 0 : now_ns() + timeout_ns;
    RingioCompletion *pending = NULL;
    int ret = -1;

    if (wait_lock_acquire(self) < 0)
        return -1;
    for (;;) {
        if (ringio_ring_lock(self) < 0)
            goto out;
        if (self->core == NULL || self->closing) {
            pending = ringio_list_concat(pending, ringio_ring_unlock(self));
            ringio_raise_closed(self);
            goto out;
        }
        if (serving && self->stop) {
            pending = ringio_list_concat(pending, ringio_ring_unlock(self));
            *stopped = true;
            ret = 0;
            goto out;
        }
        /* With nothing staged, reap straight away: it finds out itself
         * whether anything is ready (a separate ringio_core_ready() would
         * peek the CQ twice).  With staged work, submit it here when an
         * event is ready or inline completions are predicted (see
         * inline_predicted); otherwise wait_prepare hands it to the same
         * io_uring_enter that waits. */
        bool staged = ringio_core_staged(self->core) > 0;
        bool try_inline = staged && inline_predicted(self);
        if (!staged || try_inline || ringio_core_ready(self->core)) {
            /* A wait inside batch() submits what is staged even when it
             * need not block: staged work must never wait for the CQ to
             * run dry. */
            if (staged)
                (void)ringio_core_submit(self->core);
            int rc = reap_locked(self, b, max, serving);
            if (try_inline)
                inline_learn(self, b->n > 0);
            if (b->n > 0 || rc < 0) {
                pending = ringio_list_concat(pending, ringio_ring_unlock(self));
                ret = reap_outcome(rc, b);
                goto out;
            }
        }
        unsigned to_submit = ringio_core_wait_prepare(self->core);
        struct ringio_core *core = self->core;
        self->in_kernel = true;
        pending = ringio_list_concat(pending, ringio_ring_unlock(self));

        int64_t remaining = -1;
        if (deadline == 0) {
            remaining = 0;
        }
        else if (deadline > 0) {
            remaining = deadline - now_ns();
            if (remaining < 0)
                remaining = 0;
        }
        /* A zero timeout only polls: entering with min_complete 0 still
         * submits, runs task work and flushes the overflow backlog (and lets
         * the sim make progress), without arming a kernel timer (~20 us). */
        unsigned min_complete = remaining == 0 ? 0 : 1;
        int brc;
        Py_BEGIN_ALLOW_THREADS
        brc = ringio_core_wait_block(core, to_submit, min_complete, remaining);
        Py_END_ALLOW_THREADS

        /* The core is still there: close() needs the wait lock we hold. */
        raw_lock(self);
        ringio_core_wait_finish(core);
        self->in_kernel = false;
        int rc = reap_locked(self, b, max, serving);
        pending = ringio_list_concat(pending, ringio_ring_unlock(self));
        if (b->n > 0 || rc < 0) {
            ret = reap_outcome(rc, b);
            goto out;
        }
        if (brc == -EINTR) {
            /* Run signal handlers (KeyboardInterrupt...) without our locks. */
            wait_lock_release(self);
            ringio_release_list(pending);
            pending = NULL;
            if (PyErr_CheckSignals() < 0)
                return -1;
            if (wait_lock_acquire(self) < 0)
                return -1;
            continue;
        }
        if (brc < 0 && brc != -ETIME) {
            errno = -brc;
            PyErr_SetFromErrno(PyExc_OSError);
            goto out;
        }
        if (deadline >= 0 && (brc == -ETIME || deadline == 0 || now_ns() >= deadline)) {
            ret = 0; /* timeout */
            goto out;
        }
        /* Woken without a deliverable event (an internal CQE): wait again. */
    }
out:
    wait_lock_release(self);
    ringio_release_list(pending);
    return ret;
}

static int check_not_serving(RingioRing *self, const char *what)
{
    if (__atomic_load_n(&self->workers, __ATOMIC_RELAXED) > 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s() cannot be used while serve_completions() workers are running", what);
        return -1;
    }
    return 0;
}

PyObject *ringio_ring_wait_one(RingioRing *self, int64_t timeout_ns)
{
    if (check_not_serving(self, "wait") < 0)
        return NULL;
    ringio_reaped slot;
    memset(&slot, 0, sizeof(slot));
    reap_buf b = {&slot, 1, 0};
    if (ring_wait_events(self, &b, 1, timeout_ns, false, NULL) < 0)
        return NULL;
    if (b.n == 0 || slot.wake)
        Py_RETURN_NONE;
    return ringio_reaped_commit(&slot);
}

PyDoc_STRVAR(ring_wait_doc,
             "wait($self, timeout=None)\n--\n\n"
             "Wait for one completion and return it, or None when the timeout (seconds) passes "
             "or break_wait() is called.\n\n"
             "For a one-shot operation the returned object is the Completion its submit_* "
             "returned; each leg of a multishot operation is a new Completion.  The GIL is "
             "released while blocked; signals (KeyboardInterrupt) interrupt the wait.  "
             "Concurrent wait() calls are serialised.  Inside a batch() block, staged "
             "submissions are handed to the kernel by the same system call that waits.");

static PyObject *ring_wait(RingioRing *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    static const char *const names[] = {"timeout", NULL};
    PyObject *argv[1];
    int64_t timeout_ns;
    if (ringio_parse_args("wait", args, nargs, kwnames, names, 1, 0, argv) < 0)
        return NULL;
    if (ringio_timeout_arg(argv[0], "timeout", &timeout_ns) < 0)
        return NULL;
    return ringio_ring_wait_one(self, timeout_ns);
}

/* Commit slots [0, n) into list (skipping wakes).  Sets *woke on a wake. */
static int commit_into(PyObject *list, reap_buf *b, bool *woke)
{
    int err = 0;
    for (unsigned i = 0; i < b->n; i++) {
        if (b->slots[i].wake) {
            *woke = true;
            continue;
        }
        PyObject *c = ringio_reaped_commit(&b->slots[i]);
        if (c == NULL)
            continue;
        if (!err && PyList_Append(list, c) < 0)
            err = -1; /* keep committing: every slot's references must be consumed */
        Py_DECREF(c);
    }
    b->n = 0;
    return err;
}

PyDoc_STRVAR(ring_wait_many_doc,
             "wait_many($self, max=64, timeout=None)\n--\n\n"
             "Wait for completions and return a list of every completion ready, up to max: at "
             "least one, unless the timeout passes or break_wait() is called (then the list may "
             "be empty).");

static PyObject *ring_wait_many(RingioRing *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    static const char *const names[] = {"max", "timeout", NULL};
    PyObject *argv[2];
    long long max = 64;
    int64_t timeout_ns;
    if (ringio_parse_args("wait_many", args, nargs, kwnames, names, 2, 0, argv) < 0)
        return NULL;
    if (argv[0] != NULL && ringio_int_arg(argv[0], "max", 1, UINT32_MAX, &max) < 0)
        return NULL;
    if (ringio_timeout_arg(argv[1], "timeout", &timeout_ns) < 0)
        return NULL;
    return ringio_ring_wait_many(self, (unsigned)max, timeout_ns);
}

PyObject *ringio_ring_wait_many(RingioRing *self, unsigned max, int64_t timeout_ns)
{
    if (max < 1) {
        PyErr_SetString(PyExc_ValueError, "max must be >= 1");
        return NULL;
    }
    if (check_not_serving(self, "wait_many") < 0)
        return NULL;

    ringio_reaped slots[RINGIO_REAP_CHUNK];
    unsigned cap = max < RINGIO_REAP_CHUNK ? max : RINGIO_REAP_CHUNK;
    reap_buf b = {slots, cap, 0};
    /* The list exists before anything is reaped: a MemoryError here must not
     * drop events that carry fds (accept results, SCM_RIGHTS). */
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    if (ring_wait_events(self, &b, cap, timeout_ns, false, NULL) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    bool woke = false;
    bool full = b.n == cap;
    if (commit_into(list, &b, &woke) < 0)
        goto fail;
    /* Everything else that is ready, without blocking. */
    while (!woke && full && (size_t)PyList_GET_SIZE(list) < max) {
        unsigned want = max - (unsigned)PyList_GET_SIZE(list);
        if (want > RINGIO_REAP_CHUNK)
            want = RINGIO_REAP_CHUNK;
        if (ringio_ring_lock_open(self) < 0)
            goto fail;
        int rc = 0;
        b.n = 0;
        b.cap = want;
        rc = reap_locked(self, &b, want, false); /* finds nothing when nothing is ready */
        ringio_release_list(ringio_ring_unlock(self));
        full = b.n == want;
        if (b.n == 0) {
            if (rc < 0 && PyErr_Occurred())
                PyErr_Clear(); /* the event stays queued; return what we have */
            break;
        }
        if (PyErr_Occurred())
            PyErr_Clear();
        if (commit_into(list, &b, &woke) < 0)
            goto fail;
    }
    return list;
fail:
    Py_DECREF(list);
    return NULL;
}

int ringio_ring_break_wait(RingioRing *self)
{
    if (ringio_ring_lock_open(self) < 0)
        return -1;
    int rc = ringio_core_wake(self->core);
    ringio_release_list(ringio_ring_unlock(self));
    if (rc < 0) {
        ringio_set_core_error(self->state, rc);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(ring_break_wait_doc,
             "break_wait($self)\n--\n\n"
             "Make a wait() blocked in another thread return None (or, if nobody is waiting, the "
             "next wait()).  Safe from any thread.");

static PyObject *ring_break_wait_meth(RingioRing *self, PyObject *unused)
{
    (void)unused;
    if (ringio_ring_break_wait(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- serving ---------------------------------------------------------------------------- */

/* Ask the workers to stop and wake the one waiting in the kernel, if any. */
static void request_stop_locked(RingioRing *self)
{
    self->stop = true;
    if (self->core != NULL && self->in_kernel && self->workers > 0) {
        if (ringio_core_wake(self->core) == 0)
            self->swallow_wakes++;
    }
}

static void stop_group(RingioRing *self)
{
    if (ringio_ring_lock(self) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    request_stop_locked(self);
    ringio_release_list(ringio_ring_unlock(self));
}

PyDoc_STRVAR(ring_serve_doc,
             "serve_completions($self)\n--\n\n"
             "Serve completions on the calling thread until stop_serving(): wait for each "
             "completion (GIL released) and call ring.callback(completion), or the C callback "
             "installed through the C API (ring_set_c_callback), which takes precedence.\n\n"
             "Several threads may serve the same ring: one waits in the kernel while the others "
             "run callbacks.  If a callback raises an Exception it is reported through "
             "sys.unraisablehook and the whole worker group stops; KeyboardInterrupt and "
             "SystemExit stop the group and propagate.  Returns at once if stop_serving() was "
             "called and reset_serving() was not.");

/* Deliver one completion to the C callback or Ring.callback.  0, or -1 with
 * an exception set and *report_obj set to the object to name when it is
 * reported as unraisable (a new reference, or NULL). */
static int serve_one(RingioRing *self, PyObject *completion, PyObject **report_obj)
{
    *report_obj = NULL;
    ringio_c_callback fn = self->c_callback;
    if (fn != NULL) {
        int rc = fn((PyObject *)self, completion, self->c_callback_user);
        if (rc < 0 && !PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError,
                            "ringio C serving callback returned -1 without setting an exception");
        if (rc >= 0 && PyErr_Occurred()) {
            /* A contract violation: still report it, as CPython would. */
            rc = -1;
        }
        if (rc < 0) {
            *report_obj = Py_NewRef((PyObject *)self);
            return -1;
        }
        return 0;
    }
    PyObject *cb = Py_XNewRef(self->callback);
    if (cb == NULL || cb == Py_None) {
        Py_XDECREF(cb);
        PyErr_SetString(PyExc_RuntimeError, "Ring.callback was cleared while serving");
        return -1;
    }
    PyObject *res = PyObject_CallOneArg(cb, completion);
    if (res == NULL) {
        *report_obj = cb;
        return -1;
    }
    Py_DECREF(res);
    Py_DECREF(cb);
    return 0;
}

int ringio_ring_serve(RingioRing *self)
{
    if (self->c_callback == NULL && (self->callback == NULL || self->callback == Py_None)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "set Ring.callback (or a C callback through the C API) before "
                        "serve_completions()");
        return -1;
    }
    if (ringio_ring_lock_open(self) < 0)
        return -1;
    if (self->stop) {
        ringio_release_list(ringio_ring_unlock(self));
        return 0;
    }
    __atomic_add_fetch(&self->workers, 1, __ATOMIC_RELAXED);
    ringio_release_list(ringio_ring_unlock(self));

    int err = 0;
    for (;;) {
        ringio_reaped slot;
        memset(&slot, 0, sizeof(slot));
        reap_buf b = {&slot, 1, 0};
        bool stopped = false;
        if (ring_wait_events(self, &b, 1, -1, true, &stopped) < 0) {
            err = -1;
            break;
        }
        if (stopped)
            break;
        if (b.n == 0 || slot.wake)
            continue; /* the loop re-checks the stop flag */
        PyObject *completion = ringio_reaped_commit(&slot);
        if (completion == NULL)
            continue;
        PyObject *report_obj;
        int rc = serve_one(self, completion, &report_obj);
        Py_DECREF(completion);
        if (rc < 0) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                err = -1; /* KeyboardInterrupt, SystemExit: propagate */
                Py_XDECREF(report_obj);
                break;
            }
            PyErr_WriteUnraisable(report_obj != NULL ? report_obj : Py_None);
            Py_XDECREF(report_obj);
            stop_group(self);
            break;
        }
    }
    if (err < 0) {
        ringio_saved_exc saved = ringio_exc_save();
        stop_group(self);
        ringio_exc_restore(saved);
    }
    raw_lock(self);
    __atomic_sub_fetch(&self->workers, 1, __ATOMIC_RELAXED);
    RingioCompletion *list = ringio_ring_unlock(self);
    ringio_release_list(list);
    return err;
}

static PyObject *ring_serve_completions(RingioRing *self, PyObject *unused)
{
    (void)unused;
    if (ringio_ring_serve(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ring_stop_serving_doc,
             "stop_serving($self)\n--\n\n"
             "Ask every serve_completions() worker to return, waking the one blocked in the "
             "kernel.  Join the worker threads before close().");

int ringio_ring_stop_serving(RingioRing *self)
{
    if (ringio_ring_lock_open(self) < 0)
        return -1;
    request_stop_locked(self);
    ringio_release_list(ringio_ring_unlock(self));
    return 0;
}

static PyObject *ring_stop_serving(RingioRing *self, PyObject *unused)
{
    (void)unused;
    if (ringio_ring_stop_serving(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ring_reset_serving_doc,
             "reset_serving($self)\n--\n\n"
             "Clear the stop request so that serve_completions() can be entered again.");

int ringio_ring_reset_serving(RingioRing *self)
{
    if (ringio_ring_lock_open(self) < 0)
        return -1;
    self->stop = false;
    ringio_release_list(ringio_ring_unlock(self));
    return 0;
}

static PyObject *ring_reset_serving(RingioRing *self, PyObject *unused)
{
    (void)unused;
    if (ringio_ring_reset_serving(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- submission control ------------------------------------------------------------------- */

static enum ringio_submit_mode batch_mode(const RingioRing *r)
{
    if (r->strict_depth > 0)
        return RINGIO_SUBMIT_STRICT;
    if (r->batch_depth > 0)
        return RINGIO_SUBMIT_BATCH;
    return RINGIO_SUBMIT_NOW;
}

PyDoc_STRVAR(ring_submit_doc,
             "submit($self)\n--\n\n"
             "Hand every staged submission to the kernel now; returns how many it took.");

int ringio_ring_flush(RingioRing *self)
{
    if (ringio_ring_lock_open(self) < 0)
        return -1;
    int rc = ringio_core_submit(self->core);
    ringio_release_list(ringio_ring_unlock(self));
    if (rc < 0) {
        ringio_set_core_error(self->state, rc);
        return -1;
    }
    return rc;
}

static PyObject *ring_submit_meth(RingioRing *self, PyObject *unused)
{
    (void)unused;
    int rc = ringio_ring_flush(self);
    if (rc < 0)
        return NULL;
    return PyLong_FromLong(rc);
}

typedef struct {
    PyObject_HEAD
    RingioRing *ring;
    bool strict;
    bool active;
} RingioBatch;

PyDoc_STRVAR(ring_batch_doc,
             "batch($self, strict=False)\n--\n\n"
             "Context manager: stage every submit_* inside the block and enter the kernel once, "
             "at the end of the block or at the first wait() inside it.\n\n"
             "With strict=True nothing is flushed early: once the submission queue is full, "
             "submit_* raises SubmissionQueueFull (nothing half-submitted).  Without it a full "
             "queue is flushed once before giving up.  Blocks nest; the outermost one submits.  "
             "The mode applies to the ring, so submissions from other threads are staged too "
             "(they are flushed at once while a thread waits).  __enter__ returns the ring.");

static PyObject *ring_batch(RingioRing *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    static const char *const names[] = {"strict", NULL};
    PyObject *argv[1];
    if (ringio_parse_args("batch", args, nargs, kwnames, names, 1, 0, argv) < 0)
        return NULL;
    int strict = argv[0] != NULL ? PyObject_IsTrue(argv[0]) : 0;
    if (strict < 0)
        return NULL;
    if (ring_is_closed(self)) {
        ringio_raise_closed(self);
        return NULL;
    }
    PyTypeObject *tp = self->state->batch_type;
    RingioBatch *bt = (RingioBatch *)tp->tp_alloc(tp, 0);
    if (bt == NULL)
        return NULL;
    bt->ring = (RingioRing *)Py_NewRef(self);
    bt->strict = strict != 0;
    return (PyObject *)bt;
}

static PyObject *batch_enter(RingioBatch *self, PyObject *unused)
{
    (void)unused;
    RingioRing *r = self->ring;
    if (self->active) {
        PyErr_SetString(PyExc_RuntimeError, "this batch is already active");
        return NULL;
    }
    if (ringio_ring_lock_open(r) < 0)
        return NULL;
    self->active = true;
    r->batch_depth++;
    if (self->strict)
        r->strict_depth++;
    ringio_core_set_mode(r->core, batch_mode(r));
    ringio_release_list(ringio_ring_unlock(r));
    return Py_NewRef(r);
}

static PyObject *batch_exit(RingioBatch *self, PyObject *args)
{
    PyObject *exc_type = Py_None, *exc = Py_None, *tb = Py_None;
    if (!PyArg_UnpackTuple(args, "__exit__", 0, 3, &exc_type, &exc, &tb))
        return NULL;
    RingioRing *r = self->ring;
    if (!self->active) {
        PyErr_SetString(PyExc_RuntimeError, "batch.__exit__() without __enter__()");
        return NULL;
    }
    if (ringio_ring_lock(r) < 0)
        return NULL;
    self->active = false;
    r->batch_depth--;
    if (self->strict)
        r->strict_depth--;
    int rc = 0;
    if (r->core != NULL && !r->closing) {
        ringio_core_set_mode(r->core, batch_mode(r));
        if (r->batch_depth == 0)
            rc = ringio_core_submit(r->core);
    }
    ringio_release_list(ringio_ring_unlock(r));
    if (rc < 0 && exc_type == Py_None) {
        ringio_set_core_error(r->state, rc);
        return NULL;
    }
    Py_RETURN_FALSE;
}

static int batch_traverse(RingioBatch *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->ring);
    return 0;
}

static int batch_clear(RingioBatch *self)
{
    Py_CLEAR(self->ring);
    return 0;
}

static void batch_dealloc(RingioBatch *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    batch_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef batch_methods[] = {
    {"__enter__", (PyCFunction)batch_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)batch_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot batch_slots[] = {
    {Py_tp_doc, (void *)"A Ring.batch() context manager."},
    {Py_tp_dealloc, batch_dealloc},
    {Py_tp_traverse, batch_traverse},
    {Py_tp_clear, batch_clear},
    {Py_tp_methods, batch_methods},
    {0, NULL},
};

PyType_Spec ringio_batch_spec = {
    .name = "ringio.Batch",
    .basicsize = sizeof(RingioBatch),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = batch_slots,
};

/* ---- misc methods ------------------------------------------------------------------------- */

PyDoc_STRVAR(ring_close_doc,
             "close($self)\n--\n\n"
             "Close the ring.  Operations still in flight are cancelled, their final "
             "completions reaped (waiting at most one second) and everything they own released; "
             "their Completions stay pending.  A thread blocked in wait() is woken (it returns "
             "None).  Idempotent.  Raises RuntimeError while serve_completions() workers run.");

static PyObject *ring_close_meth(RingioRing *self, PyObject *unused)
{
    (void)unused;
    if (ring_close_impl(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *ring_enter(RingioRing *self, PyObject *unused)
{
    (void)unused;
    if (ring_is_closed(self)) {
        ringio_raise_closed(self);
        return NULL;
    }
    return Py_NewRef(self);
}

static PyObject *ring_exit(RingioRing *self, PyObject *args)
{
    (void)args;
    if (ring_close_impl(self) < 0)
        return NULL;
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(ring_stats_doc,
             "stats($self)\n--\n\n"
             "Counters of the core as a dict: submitted, completed, delivered, stale_cqes, "
             "overflow_flushes, sq_full_flushes, busy_retries, enters (io_uring_enter calls), "
             "inflight.");

static PyObject *ring_stats(RingioRing *self, PyObject *unused)
{
    (void)unused;
    struct ringio_stats s;
    if (ringio_ring_lock_open(self) < 0)
        return NULL;
    ringio_core_stats(self->core, &s);
    ringio_release_list(ringio_ring_unlock(self));
    return Py_BuildValue("{sKsKsKsKsKsKsKsKsI}", "submitted", (unsigned long long)s.submitted,
                         "completed", (unsigned long long)s.completed, "delivered",
                         (unsigned long long)s.delivered, "stale_cqes",
                         (unsigned long long)s.stale_cqes, "overflow_flushes",
                         (unsigned long long)s.overflow_flushes, "sq_full_flushes",
                         (unsigned long long)s.sq_full_flushes, "busy_retries",
                         (unsigned long long)s.busy_retries, "enters",
                         (unsigned long long)s.enters, "inflight", s.inflight);
}

static PyObject *ring_repr(RingioRing *self)
{
    if (ring_is_closed(self))
        return PyUnicode_FromFormat("<ringio.Ring backend=%s closed>", self->backend_name);
    return PyUnicode_FromFormat("<ringio.Ring backend=%s fd=%d sq_entries=%u cq_entries=%u>",
                                self->backend_name, self->fd, self->sq_entries,
                                self->cq_entries);
}

/* ---- properties ------------------------------------------------------------------------------ */

static PyObject *open_uint(RingioRing *self, unsigned v)
{
    if (ring_is_closed(self)) {
        ringio_raise_closed(self);
        return NULL;
    }
    return PyLong_FromUnsignedLong(v);
}

int ringio_ring_fd_used(RingioRing *r)
{
    /* The sim keeps its fd readable only once someone may poll it. */
    if (!r->is_sim || __atomic_load_n(&r->sim_notify, __ATOMIC_ACQUIRE))
        return 0;
    if (ringio_ring_lock_open(r) < 0)
        return -1;
    int rc = ringio_sim_notify_enable(r->sim_backend);
    __atomic_store_n(&r->sim_notify, true, __ATOMIC_RELEASE);
    ringio_release_list(ringio_ring_unlock(r));
    if (rc < 0) {
        errno = -rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static PyObject *get_fd(RingioRing *self, void *c)
{
    (void)c;
    if (ring_is_closed(self)) {
        ringio_raise_closed(self);
        return NULL;
    }
    if (ringio_ring_fd_used(self) < 0)
        return NULL;
    return PyLong_FromLong(self->fd);
}
static PyObject *get_features(RingioRing *self, void *c)
{
    (void)c;
    return open_uint(self, self->features);
}
static PyObject *get_sq_entries(RingioRing *self, void *c)
{
    (void)c;
    return open_uint(self, self->sq_entries);
}
static PyObject *get_cq_entries(RingioRing *self, void *c)
{
    (void)c;
    return open_uint(self, self->cq_entries);
}
static PyObject *get_setup_flags(RingioRing *self, void *c)
{
    (void)c;
    return open_uint(self, self->setup_flags);
}
static PyObject *get_closed(RingioRing *self, void *c)
{
    (void)c;
    return PyBool_FromLong(ring_is_closed(self));
}
static PyObject *get_backend(RingioRing *self, void *c)
{
    (void)c;
    return PyUnicode_FromString(self->backend_name);
}
static PyObject *get_sim(RingioRing *self, void *c)
{
    (void)c;
    if (!self->is_sim)
        Py_RETURN_NONE;
    if (self->sim_control == NULL) {
        PyObject *mod = PyImport_ImportModule("ringio.sim");
        if (mod == NULL)
            return NULL;
        PyObject *ctl = PyObject_CallMethod(mod, "SimControl", "OKO", (PyObject *)self,
                                            (unsigned long long)self->sim_seed,
                                            self->sim_faults ? self->sim_faults : Py_None);
        Py_DECREF(mod);
        if (ctl == NULL)
            return NULL;
        if (self->sim_control == NULL)
            self->sim_control = ctl;
        else
            Py_DECREF(ctl);
    }
    return Py_NewRef(self->sim_control);
}
static PyObject *get_running(RingioRing *self, void *c)
{
    (void)c;
    return PyBool_FromLong(__atomic_load_n(&self->workers, __ATOMIC_RELAXED) > 0);
}
static PyObject *get_inflight(RingioRing *self, void *c)
{
    (void)c;
    if (ringio_ring_lock(self) < 0)
        return NULL;
    unsigned n = self->core != NULL ? ringio_core_inflight(self->core) : 0;
    ringio_release_list(ringio_ring_unlock(self));
    return PyLong_FromUnsignedLong(n);
}
static PyObject *get_staged(RingioRing *self, void *c)
{
    (void)c;
    if (ringio_ring_lock(self) < 0)
        return NULL;
    unsigned n = self->core != NULL ? ringio_core_staged(self->core) : 0;
    ringio_release_list(ringio_ring_unlock(self));
    return PyLong_FromUnsignedLong(n);
}
static PyObject *get_callback(RingioRing *self, void *c)
{
    (void)c;
    return Py_NewRef(self->callback != NULL ? self->callback : Py_None);
}
int ringio_ring_set_callback(RingioRing *self, PyObject *v)
{
    if (v == NULL)
        v = Py_None;
    if (v != Py_None && !PyCallable_Check(v)) {
        PyErr_Format(PyExc_TypeError, "callback must be callable or None, not %.100s",
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    Py_XSETREF(self->callback, Py_NewRef(v));
    return 0;
}

static int set_callback(RingioRing *self, PyObject *v, void *c)
{
    (void)c;
    return ringio_ring_set_callback(self, v);
}

int ringio_ring_set_c_callback(RingioRing *self, ringio_c_callback fn, void *user)
{
    /* Both fields change together under the GIL, which every worker holds
     * while it reads them (the module is not free-threaded). */
    if (fn == NULL) {
        self->c_callback = NULL;
        self->c_callback_user = NULL;
        return 0;
    }
    if (ring_is_closed(self)) {
        ringio_raise_closed(self);
        return -1;
    }
    self->c_callback = fn;
    self->c_callback_user = user;
    return 0;
}

static PyGetSetDef ring_getset[] = {
    {"fd", (getter)get_fd, NULL, "The ring's file descriptor.", NULL},
    {"features", (getter)get_features, NULL, "IORING_FEAT_* bits the kernel reported.", NULL},
    {"sq_entries", (getter)get_sq_entries, NULL, "Actual submission queue size.", NULL},
    {"cq_entries", (getter)get_cq_entries, NULL, "Actual completion queue size.", NULL},
    {"setup_flags", (getter)get_setup_flags, NULL, "IORING_SETUP_* flags the ring uses.", NULL},
    {"closed", (getter)get_closed, NULL, "True once close() ran.", NULL},
    {"backend", (getter)get_backend, NULL, "Name of the backend: \"uring\" or \"sim\".", NULL},
    {"sim", (getter)get_sim, NULL,
     "ringio.sim.SimControl of a simulated ring (scripting, seed, trace), None on io_uring.",
     NULL},
    {"running", (getter)get_running, NULL, "True while serve_completions() workers run.", NULL},
    {"inflight", (getter)get_inflight, NULL,
     "Operations submitted (or staged) whose resources are not released yet.", NULL},
    {"staged", (getter)get_staged, NULL,
     "Submissions prepared but not yet handed to the kernel (batch mode).", NULL},
    {"callback", (getter)get_callback, (setter)set_callback,
     "Callable invoked by serve_completions() with each Completion, or None.  A C "
     "callback installed through the C API takes precedence.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef ring_members[] = {
    {"__weaklistoffset__", RINGIO_T_PYSSIZET, offsetof(RingioRing, weakreflist), RINGIO_READONLY,
     NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef ring_methods[] = {
    {"close", (PyCFunction)ring_close_meth, METH_NOARGS, ring_close_doc},
    {"__enter__", (PyCFunction)ring_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)ring_exit, METH_VARARGS, NULL},
    RINGIO_METH_FASTKW("wait", ring_wait, ring_wait_doc),
    RINGIO_METH_FASTKW("wait_many", ring_wait_many, ring_wait_many_doc),
    {"break_wait", (PyCFunction)ring_break_wait_meth, METH_NOARGS, ring_break_wait_doc},
    {"submit", (PyCFunction)ring_submit_meth, METH_NOARGS, ring_submit_doc},
    RINGIO_METH_FASTKW("batch", ring_batch, ring_batch_doc),
    {"serve_completions", (PyCFunction)ring_serve_completions, METH_NOARGS, ring_serve_doc},
    {"stop_serving", (PyCFunction)ring_stop_serving, METH_NOARGS, ring_stop_serving_doc},
    {"reset_serving", (PyCFunction)ring_reset_serving, METH_NOARGS, ring_reset_serving_doc},
    {"stats", (PyCFunction)ring_stats, METH_NOARGS, ring_stats_doc},
    RINGIO_SUBMIT_BASIC_METHODS,
    RINGIO_SUBMIT_SOCKET_METHODS,
    {"_sim_hold", (PyCFunction)ringio_ring_sim_hold, METH_VARARGS, NULL},
    {"_sim_release", (PyCFunction)ringio_ring_sim_release, METH_O, NULL},
    {"_sim_force", (PyCFunction)ringio_ring_sim_force, METH_VARARGS, NULL},
    {"_sim_advance", (PyCFunction)ringio_ring_sim_advance, METH_O, NULL},
    {"_sim_info", (PyCFunction)ringio_ring_sim_info, METH_NOARGS, NULL},
    {"_sim_trace", (PyCFunction)ringio_ring_sim_trace, METH_NOARGS, NULL},
    RINGIO_SUBMIT_FILE_METHODS,
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(ring_doc,
             "Ring(entries=8, flags=0, *, cq_entries=None, backend=\"auto\", seed=None, "
             "faults=None, replay=None, record=False)\n--\n\n"
             "An io_uring instance: submit operations, wait for their completions.\n\n"
             "entries is the requested submission queue depth (1..32768; the kernel rounds it "
             "up to a power of two), flags are IORING_SETUP_* bits, cq_entries the completion "
             "queue size (default: twice the SQ).  backend is \"uring\", \"sim\" or \"auto\" "
             "(io_uring when a ring can be created, else the simulated kernel with a "
             "BackendFallbackWarning; the RINGIO_BACKEND environment variable overrides "
             "\"auto\").  seed, faults (a ringio.sim.FaultProfile or its string form), replay "
             "(a trace file or bytes) and record configure the simulated backend.  Raises OSError with an "
             "explanatory message when the kernel refuses the ring.  Usable as a context "
             "manager; close() releases everything.");

static PyType_Slot ring_slots[] = {
    {Py_tp_doc, (void *)ring_doc},
    {Py_tp_new, ring_new},
    {Py_tp_init, ring_init},
    {Py_tp_dealloc, ring_dealloc},
    {Py_tp_finalize, ring_finalize},
    {Py_tp_traverse, ring_traverse},
    {Py_tp_clear, ring_clear},
    {Py_tp_repr, ring_repr},
    {Py_tp_methods, ring_methods},
    {Py_tp_getset, ring_getset},
    {Py_tp_members, ring_members},
    {0, NULL},
};

PyType_Spec ringio_ring_spec = {
    .name = "ringio.Ring",
    .basicsize = sizeof(RingioRing),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = ring_slots,
};
