/*
 * probe(), is_available(), unavailable_reason().
 *
 * Everything is found at run time: a private ring is created with the
 * requested entries and flags, the kernel's opcode probe (IORING_REGISTER_PROBE
 * through the backend) says which operations exist, and the ring's feature
 * bits say the rest.  Kernel versions are never compared.
 */
#include "ringio_ext.h"

#include <errno.h>
#include <string.h>

/* Opcode names by ABI number.  The kernel ABI never renumbers opcodes, so
 * entries past the build headers' IORING_OP_LAST can be named too; the
 * static asserts pin the table to the header for everything it declares. */
static const char *const opcode_names[] = {
    "NOP", "READV", "WRITEV", "FSYNC", "READ_FIXED", "WRITE_FIXED", "POLL_ADD", "POLL_REMOVE",
    "SYNC_FILE_RANGE", "SENDMSG", "RECVMSG", "TIMEOUT", "TIMEOUT_REMOVE", "ACCEPT",
    "ASYNC_CANCEL", "LINK_TIMEOUT", "CONNECT", "FALLOCATE", "OPENAT", "CLOSE", "FILES_UPDATE",
    "STATX", "READ", "WRITE", "FADVISE", "MADVISE", "SEND", "RECV", "OPENAT2", "EPOLL_CTL",
    "SPLICE", "PROVIDE_BUFFERS", "REMOVE_BUFFERS", "TEE", "SHUTDOWN", "RENAMEAT", "UNLINKAT",
    "MKDIRAT", "SYMLINKAT", "LINKAT", "MSG_RING", "FSETXATTR", "SETXATTR", "FGETXATTR",
    "GETXATTR", "SOCKET", "URING_CMD", "SEND_ZC", "SENDMSG_ZC",
    /* newer than the oldest headers we build against (Linux 6.1) */
    "READ_MULTISHOT", "WAITID", "FUTEX_WAIT", "FUTEX_WAKE", "FUTEX_WAITV", "FIXED_FD_INSTALL",
    "FTRUNCATE", "BIND", "LISTEN", "RECV_ZC", "EPOLL_WAIT", "READV_FIXED", "WRITEV_FIXED",
    "PIPE", "NOP128", "URING_CMD128",
};
#define N_OPCODE_NAMES (sizeof(opcode_names) / sizeof(opcode_names[0]))

_Static_assert(IORING_OP_SENDMSG_ZC == 48, "io_uring opcode numbering");
_Static_assert(IORING_OP_SOCKET == 45, "io_uring opcode numbering");
_Static_assert(IORING_OP_ASYNC_CANCEL == 14, "io_uring opcode numbering");
_Static_assert(IORING_OP_LAST >= 49, "headers older than Linux 6.1");
/* Opcodes past the table (newer kernels) are reported as IORING_OP_<number>. */

/* Feature bit names by bit number (ABI, like the opcodes). */
static const char *const feature_names[] = {
    "SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS", "CUR_PERSONALITY", "FAST_POLL",
    "POLL_32BITS", "SQPOLL_NONFIXED", "EXT_ARG", "NATIVE_WORKERS", "RSRC_TAGS", "CQE_SKIP",
    "LINKED_FILE", "REG_REG_RING", "RECVSEND_BUNDLE", "MIN_TIMEOUT", "RW_ATTR", "NO_IOWAIT",
};
#define N_FEATURE_NAMES (sizeof(feature_names) / sizeof(feature_names[0]))
_Static_assert(IORING_FEAT_LINKED_FILE == (1U << 12), "io_uring feature numbering");

/* Create a private core; 0 or -errno. */
static int probe_core(unsigned entries, unsigned flags, struct ringio_core **out)
{
    struct ringio_setup setup = {.entries = entries, .cq_entries = 0, .flags = flags};
    struct ringio_backend *b = NULL;
    int rc = ringio_uring_backend_new(&setup, &b);
    if (rc < 0)
        return rc;
    rc = ringio_core_new(b, out);
    if (rc < 0)
        b->ops->destroy(b);
    return rc;
}

static int set_bool(PyObject *d, const char *key, bool v)
{
    return PyDict_SetItemString(d, key, v ? Py_True : Py_False);
}

PyObject *ringio_probe_dict(unsigned entries, unsigned flags)
{
    struct ringio_core *core = NULL;
    int rc;
    uint8_t supported[256];
    int known = 0;
    unsigned features = 0;

    Py_BEGIN_ALLOW_THREADS
    rc = probe_core(entries, flags, &core);
    if (rc == 0) {
        memset(supported, 0, sizeof(supported));
        known = ringio_core_probe_opcodes(core, supported, sizeof(supported));
        features = ringio_core_backend(core)->features;
        ringio_core_free(core);
    }
    Py_END_ALLOW_THREADS
    PyObject *d = PyDict_New();
    if (d == NULL || rc < 0)
        return d; /* {}: no ring can be created here */
    if (known < 0) {
        /* Kernels without IORING_REGISTER_PROBE: report every opcode unknown. */
        memset(supported, 0, sizeof(supported));
        known = 0;
    }
    if (set_bool(d, "available", true) < 0)
        goto fail;
    char key[64];
    for (unsigned op = 0; op < sizeof(supported); op++) {
        bool have = (int)op < known && supported[op];
        if (op < N_OPCODE_NAMES)
            snprintf(key, sizeof(key), "IORING_OP_%s", opcode_names[op]);
        else if (have)
            snprintf(key, sizeof(key), "IORING_OP_%u", op);
        else
            continue;
        if (set_bool(d, key, have) < 0)
            goto fail;
    }
    for (unsigned bit = 0; bit < 32; bit++) {
        bool have = (features >> bit) & 1u;
        if (bit < N_FEATURE_NAMES)
            snprintf(key, sizeof(key), "IORING_FEAT_%s", feature_names[bit]);
        else if (have)
            snprintf(key, sizeof(key), "IORING_FEAT_BIT%u", bit);
        else
            continue;
        if (set_bool(d, key, have) < 0)
            goto fail;
    }
    /*
     * The uring-api capability names.  IORING_OP_SEND_ZC and
     * IORING_OP_SENDMSG_ZC come straight from the opcode probe above.  The
     * multishot variants share their opcodes with the one-shot ones, so the
     * opcode probe cannot see them; they are derived from opcodes that reached
     * the kernel in the same release: multishot accept came with
     * IORING_OP_SOCKET, multishot receive (and the provided-buffer rings it
     * uses) with IORING_OP_SEND_ZC.  The socket-operation layer (issue #3)
     * replaces these derivations with runtime operation probes.
     */
    if (set_bool(d, "IORING_ACCEPT_MULTISHOT",
                 known > IORING_OP_SOCKET && supported[IORING_OP_ACCEPT] &&
                     supported[IORING_OP_SOCKET]) < 0)
        goto fail;
    if (set_bool(d, "IORING_RECV_MULTISHOT",
                 known > IORING_OP_SEND_ZC && supported[IORING_OP_RECV] &&
                     supported[IORING_OP_SEND_ZC]) < 0)
        goto fail;
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static int parse_probe_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, unsigned *entries, unsigned *flags)
{
    static const char *const names[] = {"entries", "flags", NULL};
    PyObject *argv[2];
    long long e = 2, f = 0;
    if (ringio_parse_args(fname, args, nargs, kwnames, names, 2, 0, argv) < 0)
        return -1;
    if (argv[1] != NULL && ringio_int_arg(argv[1], "flags", 0, UINT32_MAX, &f) < 0)
        return -1;
    if (argv[0] != NULL &&
        ringio_int_arg(argv[0], "entries", 1,
                       (f & IORING_SETUP_CLAMP) ? (long long)UINT32_MAX : 32768, &e) < 0)
        return -1;
    *entries = (unsigned)e;
    *flags = (unsigned)f;
    return 0;
}

const char ringio_doc_probe[] =
    "probe(entries=2, flags=0)\n--\n\n"
    "Create a private ring with these parameters and report what this kernel offers: {} "
    "when no ring can be created (see unavailable_reason()), else a flat dict of booleans: "
    "\"available\": True, \"IORING_OP_<NAME>\" for every opcode (from the kernel's opcode "
    "probe), \"IORING_FEAT_<NAME>\" for every feature bit, and \"IORING_ACCEPT_MULTISHOT\", "
    "\"IORING_RECV_MULTISHOT\".";

PyObject *ringio_probe(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    (void)module;
    unsigned entries, flags;
    if (parse_probe_args("probe", args, nargs, kwnames, &entries, &flags) < 0)
        return NULL;
    return ringio_probe_dict(entries, flags);
}

const char ringio_doc_is_available[] =
    "is_available()\n--\n\n"
    "True when this process can create an io_uring ring.";

PyObject *ringio_is_available(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    struct ringio_core *core = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = probe_core(2, 0, &core);
    if (rc == 0)
        ringio_core_free(core);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(rc == 0);
}

const char ringio_doc_unavailable_reason[] =
    "unavailable_reason(entries=2, flags=0)\n--\n\n"
    "None when a ring with these parameters can be created, else a str saying why not "
    "(errno and what to do about it).";

PyObject *ringio_unavailable_reason(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    (void)module;
    unsigned entries, flags;
    if (parse_probe_args("unavailable_reason", args, nargs, kwnames, &entries, &flags) < 0)
        return NULL;
    struct ringio_core *core = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = probe_core(entries, flags, &core);
    if (rc == 0)
        ringio_core_free(core);
    Py_END_ALLOW_THREADS
    if (rc == 0)
        Py_RETURN_NONE;
    int err = -rc;
    return PyUnicode_FromFormat("io_uring_setup failed: [Errno %d] %s: %s", err, strerror(err),
                                ringio_setup_advice(err));
}
