/*
 * File operations on Ring: submit_openat, submit_read, submit_write,
 * submit_readv, submit_writev, submit_fsync, submit_fallocate, submit_statx,
 * submit_unlinkat, submit_renameat, submit_mkdirat; registered files and
 * buffers (register_files, register_buffers, and their unregister_*); linked
 * chains (Ring.link()).
 *
 * Same pattern as submit_socket.c: the pending Completion owns what the
 * kernel reads or writes until the core released the operation.  Here that
 * is the exported buffer (`view`), or on `extra`:
 *   - a path (bytes from os.fsencode) or a tuple of two, for the path-based
 *     operations (PyObject *, released by release_obj);
 *   - the bytes object a sized read fills (submit_read with an int): it is
 *     allocated without zero-filling and handed over as the result when the
 *     read is complete; a short read copies the prefix into a new bytes (the
 *     only copy, and only then) because resizing a bytes in place needs the
 *     private _PyBytes_Resize;
 *   - a struct vec_rec (iovecs + exported buffers) for readv/writev;
 *   - a struct statx_rec (the struct statx the kernel fills + the path).
 */
#include "ringio_ext.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

/* Linux's MAX_RW_COUNT: longer buffers give short transfers anyway. */
#define RINGIO_MAX_RW 0x7ffff000u

/* ---- per-operation records -------------------------------------------------- */

struct vec_rec {
    Py_ssize_t n;        /* exported views */
    struct iovec *iov;   /* n entries, after the views */
    Py_buffer views[];
};

struct statx_rec {
    struct statx stx;
    PyObject *path; /* bytes */
};

static void release_obj(RingioCompletion *c)
{
    PyObject *o = c->extra;
    c->extra = NULL;
    Py_XDECREF(o);
}

static void release_vec(RingioCompletion *c)
{
    struct vec_rec *v = c->extra;
    c->extra = NULL;
    if (v == NULL)
        return;
    for (Py_ssize_t i = 0; i < v->n; i++)
        PyBuffer_Release(&v->views[i]);
    PyMem_Free(v);
}

static void release_statx(RingioCompletion *c)
{
    struct statx_rec *s = c->extra;
    c->extra = NULL;
    if (s == NULL)
        return;
    Py_XDECREF(s->path);
    PyMem_Free(s);
}

/* ---- results (under the ring lock, GC disabled: fresh objects only) ---------- */

static PyObject *result_none(RingioCompletion *c, const struct ringio_event *ev)
{
    (void)c;
    (void)ev;
    Py_RETURN_NONE;
}

static PyObject *result_read_new(RingioCompletion *c, const struct ringio_event *ev)
{
    PyObject *b = c->extra;
    if (ev->res < 0 || b == NULL)
        Py_RETURN_NONE;
    if (ev->res >= PyBytes_GET_SIZE(b))
        return Py_NewRef(b); /* complete: the buffer itself, no copy */
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(b), ev->res);
}

static PyObject *ts_float(const struct statx_timestamp *t)
{
    return PyFloat_FromDouble((double)t->tv_sec + (double)t->tv_nsec * 1e-9);
}

static PyObject *ts_ns(const struct statx_timestamp *t)
{
    return PyLong_FromLongLong((long long)t->tv_sec * 1000000000LL + t->tv_nsec);
}

/* Field order of ringio.StatxResult (see statx_fields below). */
static PyObject *result_statx(RingioCompletion *c, const struct ringio_event *ev)
{
    struct statx_rec *s = c->extra;
    if (ev->res < 0 || s == NULL)
        Py_RETURN_NONE;
    const struct statx *x = &s->stx;
    PyObject *r = PyStructSequence_New(c->state->statx_type);
    if (r == NULL)
        return NULL;
    PyObject *v[] = {
        PyLong_FromUnsignedLong(x->stx_mode),
        PyLong_FromUnsignedLongLong(x->stx_ino),
        PyLong_FromUnsignedLongLong(makedev(x->stx_dev_major, x->stx_dev_minor)),
        PyLong_FromUnsignedLong(x->stx_nlink),
        PyLong_FromUnsignedLong(x->stx_uid),
        PyLong_FromUnsignedLong(x->stx_gid),
        PyLong_FromUnsignedLongLong(x->stx_size),
        PyLong_FromLongLong(x->stx_atime.tv_sec),
        PyLong_FromLongLong(x->stx_mtime.tv_sec),
        PyLong_FromLongLong(x->stx_ctime.tv_sec),
        ts_float(&x->stx_atime),
        ts_float(&x->stx_mtime),
        ts_float(&x->stx_ctime),
        ts_ns(&x->stx_atime),
        ts_ns(&x->stx_mtime),
        ts_ns(&x->stx_ctime),
        ts_float(&x->stx_btime),
        ts_ns(&x->stx_btime),
        PyLong_FromUnsignedLong(x->stx_blksize),
        PyLong_FromUnsignedLongLong(x->stx_blocks),
        PyLong_FromUnsignedLongLong(makedev(x->stx_rdev_major, x->stx_rdev_minor)),
        PyLong_FromUnsignedLongLong(x->stx_attributes),
        PyLong_FromUnsignedLong(x->stx_mask),
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (v[i] == NULL)
            ok = false;
        else
            PyStructSequence_SET_ITEM(r, (Py_ssize_t)i, v[i]);
    }
    if (!ok) {
        Py_DECREF(r); /* fresh objects only: their deallocs run, nothing else */
        return NULL;
    }
    return r;
}

static PyStructSequence_Field statx_fields[] = {
    {"st_mode", "protection bits and file type"},
    {"st_ino", "inode"},
    {"st_dev", "device"},
    {"st_nlink", "number of hard links"},
    {"st_uid", "user ID of owner"},
    {"st_gid", "group ID of owner"},
    {"st_size", "total size, in bytes"},
    /* items 7..9: names set to PyStructSequence_UnnamedField at init (a NULL
     * name would end the list) */
    {"st_atime_int", "integer time of last access"},
    {"st_mtime_int", "integer time of last modification"},
    {"st_ctime_int", "integer time of last change"},
    {"st_atime", "time of last access"},
    {"st_mtime", "time of last modification"},
    {"st_ctime", "time of last change"},
    {"st_atime_ns", "time of last access in nanoseconds"},
    {"st_mtime_ns", "time of last modification in nanoseconds"},
    {"st_ctime_ns", "time of last change in nanoseconds"},
    {"st_birthtime", "time of creation (valid when stx_mask has STATX_BTIME)"},
    {"st_birthtime_ns", "time of creation in nanoseconds"},
    {"st_blksize", "blocksize for filesystem I/O"},
    {"st_blocks", "number of 512-byte blocks allocated"},
    {"st_rdev", "device type (if inode device)"},
    {"stx_attributes", "STATX_ATTR_* flags"},
    {"stx_mask", "STATX_* fields the kernel filled in"},
    {NULL, NULL},
};

static PyStructSequence_Desc statx_desc = {
    "ringio.StatxResult",
    "The result of Ring.submit_statx(): like os.stat_result (the first ten items are the "
    "same tuple), from statx(2).  stx_mask says which fields the filesystem filled in.",
    statx_fields,
    10,
};

static const ringio_kind_ops openat_ops = {RINGIO_KIND_OPENAT, NULL, release_obj};
static const ringio_kind_ops read_ops = {RINGIO_KIND_READ, NULL, NULL};
static const ringio_kind_ops read_new_ops = {RINGIO_KIND_READ, result_read_new, release_obj};
static const ringio_kind_ops write_ops = {RINGIO_KIND_WRITE, NULL, NULL};
static const ringio_kind_ops readv_ops = {RINGIO_KIND_READV, NULL, release_vec};
static const ringio_kind_ops writev_ops = {RINGIO_KIND_WRITEV, NULL, release_vec};
static const ringio_kind_ops fsync_ops = {RINGIO_KIND_FSYNC, result_none, NULL};
static const ringio_kind_ops fallocate_ops = {RINGIO_KIND_FALLOCATE, result_none, NULL};
static const ringio_kind_ops statx_ops = {RINGIO_KIND_STATX, result_statx, release_statx};
static const ringio_kind_ops unlinkat_ops = {RINGIO_KIND_UNLINKAT, result_none, release_obj};
static const ringio_kind_ops renameat_ops = {RINGIO_KIND_RENAMEAT, result_none, release_obj};
static const ringio_kind_ops mkdirat_ops = {RINGIO_KIND_MKDIRAT, result_none, release_obj};
static const ringio_kind_ops close_direct_ops = {RINGIO_KIND_CLOSE, result_none, NULL};

/* ---- argument helpers ----------------------------------------------------------- */

struct file_args {
    int fd, dfd, dfd2;
    int flags;
    unsigned mode;
    unsigned opts;
    unsigned file_index;
    int buf_index; /* -1: not a fixed-buffer operation */
    unsigned mask;
    uint64_t off;
    uint64_t len;
    const char *path, *path2;
    void *buf;
    size_t nbytes;
};

/* An optional int argument in [min, max] (absent or None: dflt). */
static int opt_int(PyObject *o, const char *name, long long min, long long max, long long dflt,
                   long long *out)
{
    if (o == NULL || o == Py_None) {
        *out = dflt;
        return 0;
    }
    return ringio_int_arg(o, name, min, max, out);
}

static int opt_bool(PyObject *o, bool *out)
{
    int v = o != NULL ? PyObject_IsTrue(o) : 0;
    if (v < 0)
        return -1;
    *out = v != 0;
    return 0;
}

/* A descriptor: an int or an object with fileno(); with fixed, a slot
 * index of the registered file table (a plain int >= 0). */
static int arg_fd(PyObject *o, bool fixed, const char *fname, int *fd)
{
    if (fixed) {
        long long v;
        if (ringio_int_arg(o, "fd (a registered file slot with fixed=True)", 0, INT_MAX, &v) < 0)
            return -1;
        *fd = (int)v;
        return 0;
    }
    int v = ringio_fd_of(o);
    if (v < 0)
        return -1;
    (void)fname;
    *fd = v;
    return 0;
}

/* dir_fd: AT_FDCWD (the default), an int >= 0 or an object with fileno(). */
static int arg_dir_fd(PyObject *o, int *dfd)
{
    if (o == NULL || o == Py_None) {
        *dfd = AT_FDCWD;
        return 0;
    }
    if (PyLong_Check(o)) {
        long v = PyLong_AsLong(o);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (v == AT_FDCWD) {
            *dfd = AT_FDCWD;
            return 0;
        }
    }
    int v = ringio_fd_of(o);
    if (v < 0)
        return -1;
    *dfd = v;
    return 0;
}

/* A path (str, bytes or os.PathLike) as a new bytes reference, or NULL. */
static PyObject *arg_path(PyObject *o)
{
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(o, &b))
        return NULL;
    return b;
}

/* offset: -1 (the current file position) or >= 0. */
static int arg_offset(PyObject *o, uint64_t *off)
{
    long long v;
    if (opt_int(o, "offset", -1, LLONG_MAX, -1, &v) < 0)
        return -1;
    *off = v < 0 ? RINGIO_OFFSET_CURRENT : (uint64_t)v;
    return 0;
}

static size_t clamp_len(Py_ssize_t len)
{
    return (size_t)len > RINGIO_MAX_RW ? RINGIO_MAX_RW : (size_t)len;
}

/* For buffer_index=i: view must lie inside registered buffer i, else the
 * kernel fails the operation with -EFAULT; say so before submitting. */
static int check_fixed_buffer(RingioRing *r, const Py_buffer *view, long long idx,
                              const char *fname)
{
    PyObject *regs = r->registered_buffers;
    Py_ssize_t n = regs != NULL ? PyTuple_GET_SIZE(regs) : 0;
    if (idx >= n) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): buffer_index %lld is not a registered buffer (%zd registered: "
                     "see Ring.register_buffers)",
                     fname, idx, n);
        return -1;
    }
    const Py_buffer *reg = PyMemoryView_GET_BUFFER(PyTuple_GET_ITEM(regs, (Py_ssize_t)idx));
    const char *lo = reg->buf, *hi = lo + reg->len, *p = view->buf;
    if (p < lo || p + clamp_len(view->len) > hi) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): the buffer must lie inside registered buffer %lld (pass a "
                     "memoryview slice of it)",
                     fname, idx);
        return -1;
    }
    return 0;
}

/* ---- core calls ------------------------------------------------------------------ */

static int do_openat(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct file_args *a = arg;
    return ringio_submit_openat(core, &c->owner.base, a->dfd, a->path, a->flags, a->mode,
                                a->file_index, token);
}

static int do_read(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct file_args *a = arg;
    if (a->buf_index >= 0)
        return ringio_submit_read_fixed(core, &c->owner.base, a->fd, a->buf, a->nbytes, a->off,
                                        (unsigned)a->buf_index, a->opts, token);
    return ringio_submit_read(core, &c->owner.base, a->fd, a->buf, a->nbytes, a->off, a->opts,
                              token);
}

static int do_write(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct file_args *a = arg;
    if (a->buf_index >= 0)
        return ringio_submit_write_fixed(core, &c->owner.base, a->fd, a->buf, a->nbytes,
                                         a->off, (unsigned)a->buf_index, a->opts, token);
    return ringio_submit_write(core, &c->owner.base, a->fd, a->buf, a->nbytes, a->off, a->opts,
                               token);
}

static int do_readv(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct file_args *a = arg;
    struct vec_rec *v = c->extra;
    return ringio_submit_readv(core, &c->owner.base, a->fd, v->iov, (unsigned)v->n, a->off,
                               a->opts, token);
}

static int do_writev(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct file_args *a = arg;
    struct vec_rec *v = c->extra;
    return ringio_submit_writev(core, &c->owner.base, a->fd, v->iov, (unsigned)v->n, a->off,
                                a->opts, token);
}

static int do_fsync(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct file_args *a = arg;
    return ringio_submit_fsync(core, &c->owner.base, a->fd, (unsigned)a->flags, a->opts, token);
}

static int do_fallocate(struct ringio_core *core, RingioCompletion *c, void *arg,
                        uint64_t *token)
{
    struct file_args *a = arg;
    return ringio_submit_fallocate(core, &c->owner.base, a->fd, (int)a->mode, a->off, a->len,
                                   a->opts, token);
}

static int do_statx(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct file_args *a = arg;
    struct statx_rec *s = c->extra;
    return ringio_submit_statx(core, &c->owner.base, a->dfd, a->path, a->flags, a->mask,
                               &s->stx, token);
}

static int do_unlinkat(struct ringio_core *core, RingioCompletion *c, void *arg,
                       uint64_t *token)
{
    struct file_args *a = arg;
    return ringio_submit_unlinkat(core, &c->owner.base, a->dfd, a->path, a->flags, token);
}

static int do_renameat(struct ringio_core *core, RingioCompletion *c, void *arg,
                       uint64_t *token)
{
    struct file_args *a = arg;
    return ringio_submit_renameat(core, &c->owner.base, a->dfd, a->path, a->dfd2, a->path2,
                                  (unsigned)a->flags, token);
}

static int do_mkdirat(struct ringio_core *core, RingioCompletion *c, void *arg, uint64_t *token)
{
    struct file_args *a = arg;
    return ringio_submit_mkdirat(core, &c->owner.base, a->dfd, a->path, a->mode, token);
}

static int do_close_direct(struct ringio_core *core, RingioCompletion *c, void *arg,
                           uint64_t *token)
{
    struct file_args *a = arg;
    return ringio_submit_close_direct(core, &c->owner.base, (unsigned)a->fd, token);
}

/* A pending Completion owning `obj` (a path) on extra; NULL on failure. */
static RingioCompletion *new_with_obj(RingioRing *r, const ringio_kind_ops *ops,
                                      PyObject *user_data, PyObject *obj)
{
    RingioCompletion *c = ringio_completion_new(r, ops, user_data, false);
    if (c == NULL) {
        Py_DECREF(obj);
        return NULL;
    }
    c->extra = obj; /* stolen */
    return c;
}

/* ---- openat ------------------------------------------------------------------------ */

const char ringio_doc_submit_openat[] =
    "submit_openat($self, path, flags=os.O_RDONLY, mode=0o666, dir_fd=AT_FDCWD, "
    "user_data=None, *, file_index=None)\n--\n\n"
    "openat(2): open path (str, bytes or os.PathLike; relative to dir_fd) with os.O_* flags.  "
    "result is the new fd, yours to close (O_CLOEXEC is added, as os.open does); if the ring "
    "is closed before anyone saw the completion, the fd is closed.\n\n"
    "file_index=i opens into slot i of the registered file table (Ring.register_files) as a "
    "direct descriptor (res 0); file_index=ringio.FILE_INDEX_ALLOC lets the kernel pick a "
    "free slot (result: the slot).  Use the slot with fixed=True on read/write/fsync/close.";

PyObject *ringio_meth_submit_openat(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    static const char *const names[] = {"path",      "flags",      "mode", "dir_fd",
                                        "user_data", "file_index", NULL};
    PyObject *argv[6];
    long long flags, mode, fi;
    struct file_args a = {.buf_index = -1};
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_openat", args, nargs, kwnames, names, 5, 1, argv) < 0 ||
        opt_int(argv[1], "flags", INT_MIN, INT_MAX, O_RDONLY, &flags) < 0 ||
        opt_int(argv[2], "mode", 0, 07777, 0666, &mode) < 0 || arg_dir_fd(argv[3], &a.dfd) < 0 ||
        opt_int(argv[5], "file_index", 0, IORING_FILE_INDEX_ALLOC, -1, &fi) < 0)
        return NULL;
    if (fi < 0) {
        a.file_index = 0;
        flags |= O_CLOEXEC;
    } else if (fi == IORING_FILE_INDEX_ALLOC) {
        a.file_index = IORING_FILE_INDEX_ALLOC;
    } else if (fi >= IORING_FILE_INDEX_ALLOC - 1) {
        PyErr_SetString(PyExc_ValueError, "submit_openat(): file_index out of range");
        return NULL;
    } else {
        a.file_index = (unsigned)fi + 1;
    }
    if (a.file_index != 0 && (flags & O_CLOEXEC)) {
        PyErr_SetString(PyExc_ValueError,
                        "submit_openat(): O_CLOEXEC means nothing for a direct descriptor (the "
                        "kernel refuses it with EINVAL)");
        return NULL;
    }
    PyObject *path = arg_path(argv[0]);
    if (path == NULL)
        return NULL;
    a.path = PyBytes_AS_STRING(path);
    a.flags = (int)flags;
    a.mode = (unsigned)mode;
    RingioCompletion *c = new_with_obj(r, &openat_ops, argv[4], path);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_openat, &a);
}

/* ---- read / write -------------------------------------------------------------------- */

/* fd, offset, fixed and buffer_index of read and write. */
static int rw_common(RingioRing *r, PyObject *fd_o, PyObject *off_o, PyObject *fixed_o,
                     PyObject *bi_o, const char *fname, struct file_args *a)
{
    bool fixed;
    long long bi;
    if (opt_bool(fixed_o, &fixed) < 0 || arg_fd(fd_o, fixed, fname, &a->fd) < 0 ||
        arg_offset(off_o, &a->off) < 0 || opt_int(bi_o, "buffer_index", 0, UINT16_MAX, -1, &bi) < 0)
        return -1;
    (void)r;
    a->opts = fixed ? RINGIO_OPT_FIXED_FILE : 0;
    a->buf_index = (int)bi;
    return 0;
}

static PyObject *submit_buffer(RingioRing *r, const ringio_kind_ops *ops, const char *fname,
                               PyObject *buf, bool writable, PyObject *user_data,
                               struct file_args *a, ringio_submit_fn fn)
{
    RingioCompletion *c = ringio_completion_new(r, ops, user_data, false);
    if (c == NULL)
        return NULL;
    if (ringio_export_buffer(buf, &c->view, writable, fname, writable ? "buf" : "data") < 0) {
        Py_DECREF(c);
        return NULL;
    }
    c->has_view = true;
    if (a->buf_index >= 0 && check_fixed_buffer(r, &c->view, a->buf_index, fname) < 0) {
        Py_DECREF(c);
        return NULL;
    }
    a->buf = c->view.buf;
    a->nbytes = clamp_len(c->view.len);
    return ringio_submit(r, c, fn, a);
}

const char ringio_doc_submit_read[] =
    "submit_read($self, fd, buf, offset=-1, user_data=None, *, fixed=False, "
    "buffer_index=None)\n--\n\n"
    "read/pread: read from fd at offset (-1: the current file position, which advances).  "
    "buf is either a writable C-contiguous buffer (result: the number of bytes read into "
    "it) or an int n (result: a new bytes of the size actually read, b'' at EOF; the memory "
    "is not zero-filled first, and a complete read is handed over without a copy).\n\n"
    "fixed=True: fd is a slot of the registered file table.  buffer_index=i: a READ_FIXED "
    "into registered buffer i (buf must lie inside it, e.g. a memoryview slice).";

PyObject *ringio_meth_submit_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"fd",    "buf",          "offset", "user_data",
                                        "fixed", "buffer_index", NULL};
    PyObject *argv[6];
    struct file_args a = {0};
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_read", args, nargs, kwnames, names, 4, 2, argv) < 0 ||
        rw_common(r, argv[0], argv[2], argv[4], argv[5], "submit_read", &a) < 0)
        return NULL;
    if (!PyLong_Check(argv[1]))
        return submit_buffer(r, &read_ops, "submit_read", argv[1], true, argv[3], &a, do_read);
    if (a.buf_index >= 0) {
        PyErr_SetString(PyExc_TypeError,
                        "submit_read(): buffer_index needs buf to be a slice of the registered "
                        "buffer, not a size");
        return NULL;
    }
    long long n;
    if (ringio_int_arg(argv[1], "buf (a size)", 0, RINGIO_MAX_RW, &n) < 0)
        return NULL;
    /* Not zero-filled: the kernel writes it; only the part read is shown. */
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (b == NULL)
        return NULL;
    a.buf = PyBytes_AS_STRING(b);
    a.nbytes = (size_t)n;
    RingioCompletion *c = new_with_obj(r, &read_new_ops, argv[3], b);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_read, &a);
}

const char ringio_doc_submit_write[] =
    "submit_write($self, fd, data, offset=-1, user_data=None, *, fixed=False, "
    "buffer_index=None)\n--\n\n"
    "write/pwrite data (any C-contiguous bytes-like object, exported, not copied) to fd at "
    "offset (-1: the current file position; with O_APPEND the end).  result is the number "
    "of bytes written.  fixed and buffer_index as for submit_read (WRITE_FIXED).";

PyObject *ringio_meth_submit_write(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"fd",    "data",         "offset", "user_data",
                                        "fixed", "buffer_index", NULL};
    PyObject *argv[6];
    struct file_args a = {0};
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_write", args, nargs, kwnames, names, 4, 2, argv) < 0 ||
        rw_common(r, argv[0], argv[2], argv[4], argv[5], "submit_write", &a) < 0)
        return NULL;
    return submit_buffer(r, &write_ops, "submit_write", argv[1], a.buf_index >= 0, argv[3], &a,
                         do_write);
}

/* ---- readv / writev ---------------------------------------------------------------------- */

static PyObject *submit_vec(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, bool writable)
{
    static const char *const names[] = {"fd", "buffers", "offset", "user_data", "fixed", NULL};
    const char *fname = writable ? "submit_readv" : "submit_writev";
    PyObject *argv[5];
    struct file_args a = {0};
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args(fname, args, nargs, kwnames, names, 4, 2, argv) < 0 ||
        rw_common(r, argv[0], argv[2], argv[4], NULL, fname, &a) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(argv[1], "buffers must be a sequence of buffers");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > IOV_MAX) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "%s(): at most %d buffers", fname, IOV_MAX);
        return NULL;
    }
    RingioCompletion *c =
        ringio_completion_new(r, writable ? &readv_ops : &writev_ops, argv[3], false);
    if (c == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    struct vec_rec *v = PyMem_Malloc(sizeof(*v) + (size_t)n * (sizeof(Py_buffer) +
                                                                 sizeof(struct iovec)));
    if (v == NULL) {
        Py_DECREF(seq);
        Py_DECREF(c);
        return PyErr_NoMemory();
    }
    v->n = 0;
    v->iov = (struct iovec *)(void *)&v->views[n];
    c->extra = v;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ringio_export_buffer(PySequence_Fast_GET_ITEM(seq, i), &v->views[i], writable, fname,
                                 "buffers item") < 0) {
            Py_DECREF(seq);
            Py_DECREF(c); /* releases the views exported so far */
            return NULL;
        }
        v->n = i + 1;
        /* Keep the total within what one operation transfers. */
        size_t len = clamp_len(v->views[i].len);
        if (len > RINGIO_MAX_RW - total)
            len = RINGIO_MAX_RW - total;
        total += len;
        v->iov[i].iov_base = v->views[i].buf;
        v->iov[i].iov_len = len;
    }
    Py_DECREF(seq);
    return ringio_submit(r, c, writable ? do_readv : do_writev, &a);
}

const char ringio_doc_submit_readv[] =
    "submit_readv($self, fd, buffers, offset=-1, user_data=None, *, fixed=False)\n--\n\n"
    "preadv: scatter a read from fd at offset into a sequence of writable buffers.  result "
    "is the total number of bytes read.";

PyObject *ringio_meth_submit_readv(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    return submit_vec(self, args, nargs, kwnames, true);
}

const char ringio_doc_submit_writev[] =
    "submit_writev($self, fd, buffers, offset=-1, user_data=None, *, fixed=False)\n--\n\n"
    "pwritev: gather a write to fd at offset from a sequence of bytes-like objects.  result "
    "is the total number of bytes written.";

PyObject *ringio_meth_submit_writev(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    return submit_vec(self, args, nargs, kwnames, false);
}

/* ---- fsync / fallocate ---------------------------------------------------------------------- */

const char ringio_doc_submit_fsync[] =
    "submit_fsync($self, fd, datasync=False, user_data=None, *, fixed=False)\n--\n\n"
    "fsync(fd), or fdatasync(fd) with datasync=True (IORING_FSYNC_DATASYNC).  result is None.";

PyObject *ringio_meth_submit_fsync(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"fd", "datasync", "user_data", "fixed", NULL};
    PyObject *argv[4];
    bool datasync, fixed;
    struct file_args a = {.buf_index = -1};
    if (ringio_parse_args("submit_fsync", args, nargs, kwnames, names, 3, 1, argv) < 0 ||
        opt_bool(argv[1], &datasync) < 0 || opt_bool(argv[3], &fixed) < 0 ||
        arg_fd(argv[0], fixed, "submit_fsync", &a.fd) < 0)
        return NULL;
    a.flags = datasync ? (int)IORING_FSYNC_DATASYNC : 0;
    a.opts = fixed ? RINGIO_OPT_FIXED_FILE : 0;
    RingioCompletion *c = ringio_completion_new((RingioRing *)self, &fsync_ops, argv[2], false);
    if (c == NULL)
        return NULL;
    return ringio_submit((RingioRing *)self, c, do_fsync, &a);
}

const char ringio_doc_submit_fallocate[] =
    "submit_fallocate($self, fd, mode, offset, length, user_data=None, *, fixed=False)\n--\n\n"
    "fallocate(2): mode 0 allocates [offset, offset+length) (extending the file), or "
    "FALLOC_FL_* flags (KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ...).  result is None.";

PyObject *ringio_meth_submit_fallocate(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                       PyObject *kwnames)
{
    static const char *const names[] = {"fd", "mode", "offset", "length", "user_data", "fixed",
                                        NULL};
    PyObject *argv[6];
    long long mode, off, len;
    bool fixed;
    struct file_args a = {.buf_index = -1};
    if (ringio_parse_args("submit_fallocate", args, nargs, kwnames, names, 5, 4, argv) < 0 ||
        opt_bool(argv[5], &fixed) < 0 || arg_fd(argv[0], fixed, "submit_fallocate", &a.fd) < 0 ||
        ringio_int_arg(argv[1], "mode", 0, INT_MAX, &mode) < 0 ||
        ringio_int_arg(argv[2], "offset", 0, LLONG_MAX, &off) < 0 ||
        ringio_int_arg(argv[3], "length", 1, LLONG_MAX, &len) < 0)
        return NULL;
    a.mode = (unsigned)mode;
    a.off = (uint64_t)off;
    a.len = (uint64_t)len;
    a.opts = fixed ? RINGIO_OPT_FIXED_FILE : 0;
    RingioCompletion *c =
        ringio_completion_new((RingioRing *)self, &fallocate_ops, argv[4], false);
    if (c == NULL)
        return NULL;
    return ringio_submit((RingioRing *)self, c, do_fallocate, &a);
}

/* ---- statx ------------------------------------------------------------------------------------ */

const char ringio_doc_submit_statx[] =
    "submit_statx($self, path, dir_fd=AT_FDCWD, flags=0, mask=STATX_BASIC_STATS|STATX_BTIME, "
    "user_data=None)\n--\n\n"
    "statx(2) of path (relative to dir_fd), or of an open file when path is an int fd (or an "
    "object with fileno()): AT_EMPTY_PATH is then implied.  flags: AT_* flags "
    "(AT_SYMLINK_NOFOLLOW, AT_STATX_*).  result is a ringio.StatxResult, like "
    "os.stat_result.";

PyObject *ringio_meth_submit_statx(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"path", "dir_fd", "flags", "mask", "user_data", NULL};
    PyObject *argv[5];
    long long flags, mask;
    struct file_args a = {.buf_index = -1};
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_statx", args, nargs, kwnames, names, 5, 1, argv) < 0 ||
        arg_dir_fd(argv[1], &a.dfd) < 0 ||
        opt_int(argv[2], "flags", 0, INT_MAX, 0, &flags) < 0 ||
        opt_int(argv[3], "mask", 0, UINT32_MAX, STATX_BASIC_STATS | STATX_BTIME, &mask) < 0)
        return NULL;
    PyObject *path;
    if (PyLong_Check(argv[0]) || (!PyUnicode_Check(argv[0]) && !PyBytes_Check(argv[0]) &&
                                  PyObject_HasAttrString(argv[0], "fileno"))) {
        int fd = ringio_fd_of(argv[0]);
        if (fd < 0)
            return NULL;
        a.dfd = fd;
        flags |= AT_EMPTY_PATH;
        path = PyBytes_FromStringAndSize("", 0);
    } else {
        path = arg_path(argv[0]);
    }
    if (path == NULL)
        return NULL;
    struct statx_rec *s = PyMem_Calloc(1, sizeof(*s));
    if (s == NULL) {
        Py_DECREF(path);
        return PyErr_NoMemory();
    }
    s->path = path;
    RingioCompletion *c = ringio_completion_new(r, &statx_ops, argv[4], false);
    if (c == NULL) {
        Py_DECREF(path);
        PyMem_Free(s);
        return NULL;
    }
    c->extra = s;
    a.path = PyBytes_AS_STRING(path);
    a.flags = (int)flags;
    a.mask = (unsigned)mask;
    return ringio_submit(r, c, do_statx, &a);
}

/* ---- unlinkat / renameat / mkdirat ---------------------------------------------------------- */

const char ringio_doc_submit_unlinkat[] =
    "submit_unlinkat($self, path, dir_fd=AT_FDCWD, flags=0, user_data=None)\n--\n\n"
    "unlinkat(2): remove a file, or a directory with flags=AT_REMOVEDIR.  result is None.";

PyObject *ringio_meth_submit_unlinkat(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames)
{
    static const char *const names[] = {"path", "dir_fd", "flags", "user_data", NULL};
    PyObject *argv[4];
    long long flags;
    struct file_args a = {.buf_index = -1};
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_unlinkat", args, nargs, kwnames, names, 4, 1, argv) < 0 ||
        arg_dir_fd(argv[1], &a.dfd) < 0 || opt_int(argv[2], "flags", 0, INT_MAX, 0, &flags) < 0)
        return NULL;
    PyObject *path = arg_path(argv[0]);
    if (path == NULL)
        return NULL;
    a.path = PyBytes_AS_STRING(path);
    a.flags = (int)flags;
    RingioCompletion *c = new_with_obj(r, &unlinkat_ops, argv[3], path);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_unlinkat, &a);
}

const char ringio_doc_submit_renameat[] =
    "submit_renameat($self, old, new, old_dir_fd=AT_FDCWD, new_dir_fd=AT_FDCWD, flags=0, "
    "user_data=None)\n--\n\n"
    "renameat2(2): rename old to new; flags: RENAME_NOREPLACE / RENAME_EXCHANGE values.  "
    "result is None.";

PyObject *ringio_meth_submit_renameat(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames)
{
    static const char *const names[] = {"old",   "new",       "old_dir_fd", "new_dir_fd",
                                        "flags", "user_data", NULL};
    PyObject *argv[6];
    long long flags;
    struct file_args a = {.buf_index = -1};
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_renameat", args, nargs, kwnames, names, 6, 2, argv) < 0 ||
        arg_dir_fd(argv[2], &a.dfd) < 0 || arg_dir_fd(argv[3], &a.dfd2) < 0 ||
        opt_int(argv[4], "flags", 0, UINT32_MAX, 0, &flags) < 0)
        return NULL;
    PyObject *p1 = arg_path(argv[0]);
    if (p1 == NULL)
        return NULL;
    PyObject *p2 = arg_path(argv[1]);
    if (p2 == NULL) {
        Py_DECREF(p1);
        return NULL;
    }
    PyObject *both = PyTuple_Pack(2, p1, p2);
    Py_DECREF(p1);
    Py_DECREF(p2);
    if (both == NULL)
        return NULL;
    a.path = PyBytes_AS_STRING(PyTuple_GET_ITEM(both, 0));
    a.path2 = PyBytes_AS_STRING(PyTuple_GET_ITEM(both, 1));
    a.flags = (int)flags;
    RingioCompletion *c = new_with_obj(r, &renameat_ops, argv[5], both);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_renameat, &a);
}

const char ringio_doc_submit_mkdirat[] =
    "submit_mkdirat($self, path, mode=0o777, dir_fd=AT_FDCWD, user_data=None)\n--\n\n"
    "mkdirat(2).  result is None.";

PyObject *ringio_meth_submit_mkdirat(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"path", "mode", "dir_fd", "user_data", NULL};
    PyObject *argv[4];
    long long mode;
    struct file_args a = {.buf_index = -1};
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("submit_mkdirat", args, nargs, kwnames, names, 4, 1, argv) < 0 ||
        opt_int(argv[1], "mode", 0, 07777, 0777, &mode) < 0 || arg_dir_fd(argv[2], &a.dfd) < 0)
        return NULL;
    PyObject *path = arg_path(argv[0]);
    if (path == NULL)
        return NULL;
    a.path = PyBytes_AS_STRING(path);
    a.mode = (unsigned)mode;
    RingioCompletion *c = new_with_obj(r, &mkdirat_ops, argv[3], path);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_mkdirat, &a);
}

/* submit_close(fd, fixed=True): close a direct descriptor (submit_socket.c
 * calls this for the fixed case). */
PyObject *ringio_ring_submit_close_direct(RingioRing *r, PyObject *slot, PyObject *user_data)
{
    struct file_args a = {.buf_index = -1};
    if (arg_fd(slot, true, "submit_close", &a.fd) < 0)
        return NULL;
    RingioCompletion *c = ringio_completion_new(r, &close_direct_ops, user_data, false);
    if (c == NULL)
        return NULL;
    return ringio_submit(r, c, do_close_direct, &a);
}

/* ---- registration ------------------------------------------------------------------------------ */

/* OSError for a failed registration, explaining RLIMIT_MEMLOCK on ENOMEM. */
static void set_register_error(RingioRing *r, int rc, const char *what)
{
    if (rc == -ENOMEM) {
        struct rlimit rl;
        char limit[64] = "unknown";
        if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
            if (rl.rlim_cur == RLIM_INFINITY)
                snprintf(limit, sizeof(limit), "unlimited");
            else
                snprintf(limit, sizeof(limit), "%llu bytes", (unsigned long long)rl.rlim_cur);
        }
        PyObject *msg = PyUnicode_FromFormat(
            "%s: the kernel could not pin the memory (ENOMEM).  Registered buffers are locked "
            "in RAM and charged to RLIMIT_MEMLOCK (now %s): raise it (`ulimit -l`, "
            "LimitMEMLOCK= for systemd services, resource.setrlimit), register less memory, "
            "or run with CAP_IPC_LOCK",
            what, limit);
        if (msg == NULL)
            return;
        PyObject *args = Py_BuildValue("(iO)", ENOMEM, msg);
        Py_DECREF(msg);
        if (args == NULL)
            return;
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
        return;
    }
    if (rc == -EOPNOTSUPP) {
        PyErr_Format(PyExc_OSError, "%s: the %s backend has no such registration", what,
                     r->backend_name);
        return;
    }
    ringio_set_core_error(r->state, rc);
}

static int register_files_locked(RingioRing *r, const int *fds, unsigned n)
{
    if (ringio_ring_lock_open(r) < 0)
        return -1;
    int rc = ringio_core_register_files(r->core, fds, n);
    ringio_release_list(ringio_ring_unlock(r));
    return rc;
}

const char ringio_doc_register_files[] =
    "register_files($self, fds)\n--\n\n"
    "Register a fixed file table (IORING_REGISTER_FILES): fds is a sequence of descriptors "
    "(ints or objects with fileno()), with -1 or None for empty slots that openat with "
    "file_index= fills.  Slot i is then used with fixed=True (fd=i).  The ring refers to the "
    "files, not to the descriptor numbers: closing an fd does not empty its slot.  Replaces a "
    "previous table; an empty sequence unregisters.";

PyObject *ringio_meth_register_files(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"fds", NULL};
    PyObject *argv[2]; /* one spare: GCC's -Warray-bounds misreads the inlined parser */
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("register_files", args, nargs, kwnames, names, 1, 1, argv) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(argv[0], "fds must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > 1 << 20) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "register_files(): at most 1048576 slots");
        return NULL;
    }
    int *fds = PyMem_Malloc(((size_t)n + 1) * sizeof(int));
    if (fds == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        long v = PyLong_Check(o) ? PyLong_AsLong(o) : 0;
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(fds);
            Py_DECREF(seq);
            return NULL;
        }
        if (o == Py_None || (PyLong_Check(o) && v == -1)) {
            fds[i] = -1; /* an empty slot */
            continue;
        }
        fds[i] = ringio_fd_of(o);
        if (fds[i] < 0) {
            PyMem_Free(fds);
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    int rc = register_files_locked(r, fds, (unsigned)n);
    PyMem_Free(fds);
    if (rc == -1 && PyErr_Occurred())
        return NULL;
    if (rc < 0) {
        set_register_error(r, rc, "register_files()");
        return NULL;
    }
    Py_RETURN_NONE;
}

const char ringio_doc_unregister_files[] =
    "unregister_files($self)\n--\n\n"
    "Drop the fixed file table (closing its direct descriptors).";

PyObject *ringio_meth_unregister_files(PyObject *self, PyObject *unused)
{
    (void)unused;
    RingioRing *r = (RingioRing *)self;
    int rc = register_files_locked(r, NULL, 0);
    if (rc == -1 && PyErr_Occurred())
        return NULL;
    if (rc < 0) {
        set_register_error(r, rc, "unregister_files()");
        return NULL;
    }
    Py_RETURN_NONE;
}

static int register_buffers_locked(RingioRing *r, const struct iovec *iov, unsigned n)
{
    if (ringio_ring_lock_open(r) < 0)
        return -1;
    int rc = ringio_core_register_buffers(r->core, iov, n);
    ringio_release_list(ringio_ring_unlock(r));
    return rc;
}

const char ringio_doc_register_buffers[] =
    "register_buffers($self, buffers)\n--\n\n"
    "Register fixed buffers (IORING_REGISTER_BUFFERS): a sequence of writable C-contiguous "
    "buffers (bytearray, mmap, ringio.aligned_buffer...).  They stay exported (a bytearray "
    "cannot be resized) until unregister_buffers() or close().  Use a slice of buffer i with "
    "submit_read/submit_write(..., buffer_index=i).  The kernel pins the pages: ENOMEM means "
    "RLIMIT_MEMLOCK is too low, and the OSError says so.  Replaces a previous registration; "
    "an empty sequence unregisters.";

PyObject *ringio_meth_register_buffers(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                       PyObject *kwnames)
{
    static const char *const names[] = {"buffers", NULL};
    PyObject *argv[2]; /* one spare: GCC's -Warray-bounds misreads the inlined parser */
    RingioRing *r = (RingioRing *)self;
    if (ringio_parse_args("register_buffers", args, nargs, kwnames, names, 1, 1, argv) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(argv[0], "buffers must be a sequence of buffers");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > UINT16_MAX) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "register_buffers(): at most 65535 buffers");
        return NULL;
    }
    PyObject *views = PyTuple_New(n);
    struct iovec *iov = PyMem_Malloc(((size_t)n + 1) * sizeof(*iov));
    if (views == NULL || iov == NULL) {
        Py_XDECREF(views);
        PyMem_Free(iov);
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        /* A memoryview holds the export (and the buffer) for as long as the
         * registration lasts. */
        /* Exported once for the checks (and their messages); the memoryview
         * then holds its own export, and the buffer, for as long as the
         * registration lasts. */
        Py_buffer view;
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (ringio_export_buffer(item, &view, true, "register_buffers", "buffers item") < 0)
            goto fail;
        Py_ssize_t len = view.len;
        PyBuffer_Release(&view);
        if (len == 0) {
            PyErr_SetString(PyExc_ValueError, "register_buffers(): empty buffer");
            goto fail;
        }
        PyObject *mv = PyMemoryView_FromObject(item);
        if (mv == NULL)
            goto fail;
        PyTuple_SET_ITEM(views, i, mv);
        const Py_buffer *b = PyMemoryView_GET_BUFFER(mv);
        iov[i].iov_base = b->buf;
        iov[i].iov_len = (size_t)b->len;
    }
    Py_DECREF(seq);
    int rc = register_buffers_locked(r, iov, (unsigned)n);
    PyMem_Free(iov);
    if (rc < 0) {
        Py_DECREF(views);
        if (!(rc == -1 && PyErr_Occurred()))
            set_register_error(r, rc, "register_buffers()");
        return NULL;
    }
    Py_XSETREF(r->registered_buffers, n > 0 ? views : NULL);
    if (n == 0)
        Py_DECREF(views);
    Py_RETURN_NONE;
fail:
    Py_DECREF(views);
    PyMem_Free(iov);
    Py_DECREF(seq);
    return NULL;
}

const char ringio_doc_unregister_buffers[] =
    "unregister_buffers($self)\n--\n\n"
    "Drop the fixed buffers and release their exports.";

PyObject *ringio_meth_unregister_buffers(PyObject *self, PyObject *unused)
{
    (void)unused;
    RingioRing *r = (RingioRing *)self;
    int rc = register_buffers_locked(r, NULL, 0);
    if (rc < 0) {
        if (!(rc == -1 && PyErr_Occurred()))
            set_register_error(r, rc, "unregister_buffers()");
        return NULL;
    }
    Py_CLEAR(r->registered_buffers);
    Py_RETURN_NONE;
}

/* ---- link ---------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    RingioRing *ring;
    bool active;
    bool hard;
} RingioLink;

const char ringio_doc_link[] =
    "link($self, hard=False)\n--\n\n"
    "Context manager for a linked chain (IOSQE_IO_LINK): the operations submitted inside "
    "the block run one after the other, in order, and when one fails (res < 0, or a short "
    "read/write) the kernel completes the rest with res == -errno.ECANCELED.  With "
    "hard=True (IOSQE_IO_HARDLINK) the chain goes on whatever each result is (a read "
    "shorter than asked, at the end of a file, then does not cancel the close after "
    "it).\n\n"
    "The chain is held back until the block ends, then placed in the submission queue in "
    "one piece and submitted in one enter (staged instead inside batch()).  If the queue "
    "cannot take the whole chain, or the block raises, nothing of it is submitted: each of "
    "its operations completes with -ECANCELED and __exit__ raises SubmissionQueueFull (or "
    "lets the block's exception through).  A chain is at most sq_entries long.  Chains do "
    "not nest, and while a chain is open only the thread that opened it may submit to the "
    "ring (others get RuntimeError).  Its completions cannot arrive before the block ends: "
    "do not wait() for them inside it.  open -> read -> close in one chain needs direct "
    "descriptors: register_files() a table, submit_openat(..., file_index=i), then "
    "fixed=True with fd=i.";

static PyObject *ring_link(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    static const char *const names[] = {"hard", NULL};
    PyObject *argv[2]; /* one spare: GCC's -Warray-bounds misreads the inlined parser */
    bool hard;
    if (ringio_parse_args("link", args, nargs, kwnames, names, 1, 0, argv) < 0 ||
        opt_bool(argv[0], &hard) < 0)
        return NULL;
    RingioRing *r = (RingioRing *)self;
    PyTypeObject *tp = r->state->link_type;
    RingioLink *l = (RingioLink *)tp->tp_alloc(tp, 0);
    if (l == NULL)
        return NULL;
    l->ring = (RingioRing *)Py_NewRef(r);
    l->hard = hard;
    return (PyObject *)l;
}

PyObject *ringio_meth_link(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    return ring_link(self, args, nargs, kwnames);
}

static PyObject *link_enter(RingioLink *self, PyObject *unused)
{
    (void)unused;
    RingioRing *r = self->ring;
    if (self->active) {
        PyErr_SetString(PyExc_RuntimeError, "this link() block is already active");
        return NULL;
    }
    if (ringio_ring_lock_open(r) < 0)
        return NULL;
    int rc = ringio_core_link_begin(r->core, self->hard);
    if (rc == 0) {
        self->active = true;
        r->link_owner = PyThread_get_thread_ident();
    }
    ringio_release_list(ringio_ring_unlock(r));
    if (rc == -EBUSY) {
        PyErr_SetString(PyExc_RuntimeError, "a link() chain is already open on this ring");
        return NULL;
    }
    if (rc < 0) {
        ringio_set_core_error(r->state, rc);
        return NULL;
    }
    return Py_NewRef(r);
}

static PyObject *link_exit(RingioLink *self, PyObject *args)
{
    PyObject *exc_type = Py_None, *exc = Py_None, *tb = Py_None;
    if (!PyArg_UnpackTuple(args, "__exit__", 0, 3, &exc_type, &exc, &tb))
        return NULL;
    RingioRing *r = self->ring;
    if (!self->active) {
        PyErr_SetString(PyExc_RuntimeError, "link.__exit__() without __enter__()");
        return NULL;
    }
    if (ringio_ring_lock(r) < 0)
        return NULL;
    self->active = false;
    r->link_owner = 0;
    int rc = 0;
    if (r->core != NULL)
        rc = ringio_core_link_end(r->core, exc_type != Py_None);
    ringio_release_list(ringio_ring_unlock(r));
    if (rc < 0 && exc_type == Py_None) {
        ringio_set_core_error(r->state, rc);
        return NULL;
    }
    Py_RETURN_FALSE;
}

static int link_traverse(RingioLink *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->ring);
    return 0;
}

static int link_clear(RingioLink *self)
{
    Py_CLEAR(self->ring);
    return 0;
}

static void link_dealloc(RingioLink *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    link_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef link_methods[] = {
    {"__enter__", (PyCFunction)link_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)link_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot link_slots[] = {
    {Py_tp_doc, (void *)"A Ring.link() context manager."},
    {Py_tp_dealloc, link_dealloc},
    {Py_tp_traverse, link_traverse},
    {Py_tp_clear, link_clear},
    {Py_tp_methods, link_methods},
    {0, NULL},
};

static PyType_Spec link_spec = {
    .name = "ringio.Link",
    .basicsize = sizeof(RingioLink),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = link_slots,
};

/* ---- module init ---------------------------------------------------------------------------------- */

int ringio_files_init(PyObject *module, ringio_state *st)
{
    st->link_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &link_spec, NULL);
    if (st->link_type == NULL)
        return -1;
    for (int i = 7; i <= 9; i++)
        statx_fields[i].name = PyStructSequence_UnnamedField;
    st->statx_type = PyStructSequence_NewType(&statx_desc);
    if (st->statx_type == NULL)
        return -1;
    if (PyModule_AddObjectRef(module, "StatxResult", (PyObject *)st->statx_type) < 0)
        return -1;
    static const struct {
        const char *name;
        long long value;
    } consts[] = {
        {"FILE_INDEX_ALLOC", IORING_FILE_INDEX_ALLOC},
        {"IORING_FSYNC_DATASYNC", IORING_FSYNC_DATASYNC},
        {"AT_FDCWD", AT_FDCWD},
        {"AT_REMOVEDIR", AT_REMOVEDIR},
        {"AT_EMPTY_PATH", AT_EMPTY_PATH},
        {"AT_SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW},
        {"STATX_BASIC_STATS", STATX_BASIC_STATS},
        {"STATX_BTIME", STATX_BTIME},
        {"STATX_ALL", STATX_ALL},
        {"RENAME_NOREPLACE", RENAME_NOREPLACE},
        {"RENAME_EXCHANGE", RENAME_EXCHANGE},
        {"COMPLETION_KIND_OPENAT", RINGIO_KIND_OPENAT},
        {"COMPLETION_KIND_READ", RINGIO_KIND_READ},
        {"COMPLETION_KIND_WRITE", RINGIO_KIND_WRITE},
        {"COMPLETION_KIND_READV", RINGIO_KIND_READV},
        {"COMPLETION_KIND_WRITEV", RINGIO_KIND_WRITEV},
        {"COMPLETION_KIND_FSYNC", RINGIO_KIND_FSYNC},
        {"COMPLETION_KIND_FALLOCATE", RINGIO_KIND_FALLOCATE},
        {"COMPLETION_KIND_STATX", RINGIO_KIND_STATX},
        {"COMPLETION_KIND_UNLINKAT", RINGIO_KIND_UNLINKAT},
        {"COMPLETION_KIND_RENAMEAT", RINGIO_KIND_RENAMEAT},
        {"COMPLETION_KIND_MKDIRAT", RINGIO_KIND_MKDIRAT},
    };
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
        if (PyModule_AddIntConstant(module, consts[i].name, (long)consts[i].value) < 0)
            return -1;
    return 0;
}
