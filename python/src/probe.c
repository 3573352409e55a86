/*
 * probe(), is_available(), unavailable_reason().
 *
 * Everything is found at run time: a private ring is created with the
 * requested entries and flags, the kernel's opcode probe (IORING_REGISTER_PROBE
 * through the backend) says which operations exist, the ring's feature bits
 * say the rest, and for the capabilities neither can show (multishot accept
 * and receive, zero-copy sends) a runtime operation probe submits the real
 * operation.  Kernel versions are never compared.
 */
#include "ringio_ext.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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

/* ---- runtime operation probes ----------------------------------------------------
 *
 * Some capabilities share their opcode with an older operation (multishot
 * accept and receive are flags on ACCEPT and RECV) or may be refused at run
 * time (zero-copy sends), so the opcode probe cannot answer for them.  These
 * probes submit the real operation on a private ring, through the core like
 * any other submission, and look at the first completion.  No Python object is
 * involved: they run with the GIL released.  Each waits at most
 * PROBE_WAIT_NS; every descriptor they create (including any the kernel
 * accepts for them) is closed before they return.
 */

#define PROBE_WAIT_NS (300 * 1000000LL)

static void probe_owner_release(struct ringio_owner *o) { (void)o; }

struct probe_event {
    bool got;
    int32_t res;
    uint32_t flags;
    bool more;
};

static int probe_deliver(void *ctx, const struct ringio_event *ev)
{
    struct probe_event *p = ctx;
    if (ev->wake || ev->owner == NULL)
        return 0;
    if (!p->got) {
        p->got = true;
        p->res = ev->res;
        p->flags = ev->flags;
        p->more = ev->more;
    }
    if (ev->opcode == IORING_OP_ACCEPT && ev->res >= 0)
        close(ev->res); /* the accepted connection itself is not needed */
    return 0;
}

static int64_t probe_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reap until the first event of the probe operation arrives, for at most
 * PROBE_WAIT_NS.  0 when it arrived. */
static int probe_wait(struct ringio_core *core, struct probe_event *p)
{
    int64_t deadline = probe_now_ns() + PROBE_WAIT_NS;
    for (;;) {
        int rc = ringio_core_reap(core, UINT32_MAX, probe_deliver, p);
        if (rc < 0)
            return rc;
        if (p->got)
            return 0;
        int64_t left = deadline - probe_now_ns();
        if (left <= 0)
            return -ETIME;
        unsigned to_submit = ringio_core_wait_prepare(core);
        rc = ringio_core_wait_block(core, to_submit, 1, left);
        ringio_core_wait_finish(core);
        if (rc < 0 && rc != -ETIME && rc != -EINTR)
            return rc;
    }
}

/* A listening socket on the loopback interface (AF_UNIX with an
 * autobound abstract name where there is no usable loopback), and a client
 * socket of the same family connected to it.  0 or -1. */
static int probe_listener(int *lfd, int *cfd)
{
    struct sockaddr_storage ss;
    socklen_t len;
    *lfd = *cfd = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        int family = attempt == 0 ? AF_INET : AF_UNIX;
        memset(&ss, 0, sizeof(ss));
        if (family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            sin->sin_family = AF_INET;
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            len = sizeof(*sin);
        }
        else {
            ss.ss_family = AF_UNIX;
            len = sizeof(sa_family_t); /* autobind an abstract name */
        }
        *lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (*lfd < 0)
            continue;
        if (bind(*lfd, (struct sockaddr *)&ss, len) == 0 && listen(*lfd, 4) == 0) {
            len = sizeof(ss);
            if (getsockname(*lfd, (struct sockaddr *)&ss, &len) == 0) {
                *cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (*cfd >= 0 && (connect(*cfd, (struct sockaddr *)&ss, len) == 0 ||
                                  errno == EINPROGRESS))
                    return 0;
                if (*cfd >= 0)
                    close(*cfd);
                *cfd = -1;
            }
        }
        close(*lfd);
        *lfd = -1;
    }
    return -1;
}

/* One runtime probe: its private core, the owner of its operation (nothing
 * to release: no Python object), and the first event. */
struct probe_run {
    struct ringio_core *core;
    struct ringio_owner owner;
    struct probe_event ev;
    uint64_t token;
};

/* false when no core can be created for the probe. */
static bool probe_start(struct probe_run *r, unsigned entries, unsigned flags)
{
    memset(r, 0, sizeof(*r));
    r->owner.release = probe_owner_release;
    return probe_core(entries, flags, &r->core) >= 0;
}

/* The end of a probe: its core first (cancel what is still armed, reap it
 * briefly, close what it accepted meanwhile), so that nothing in flight still
 * uses the descriptors or the probe's memory, then the descriptors (-1: none). */
static void probe_finish(struct probe_run *r, int fd1, int fd2)
{
    (void)ringio_core_close(r->core, PROBE_WAIT_NS);
    ringio_core_free(r->core);
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
}

/* Multishot accept: the first completion keeps the request armed (F_MORE).
 * The listener is created (and the client connects) before the accept is
 * submitted, so the first completion comes at once. */
static bool probe_accept_multishot(unsigned entries, unsigned flags)
{
    struct probe_run r;
    int lfd = -1, cfd = -1;
    if (!probe_start(&r, entries, flags))
        return false;
    bool ok = probe_listener(&lfd, &cfd) == 0 &&
              ringio_submit_accept_multishot(r.core, &r.owner, lfd, SOCK_CLOEXEC, 0,
                                             &r.token) == 0 &&
              probe_wait(r.core, &r.ev) == 0 && r.ev.res >= 0 && r.ev.more;
    probe_finish(&r, cfd, lfd);
    return ok;
}

/* Multishot receive: the first completion selects a provided buffer and
 * keeps the request armed. */
static bool probe_recv_multishot(unsigned entries, unsigned flags)
{
    struct probe_run r;
    int sv[2];
    if (!probe_start(&r, entries, flags))
        return false;
    bool ok = false;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0)
        ok = ringio_submit_recv_multishot(r.core, &r.owner, sv[0], 64, 2, 0, 0, &r.token) == 0 &&
             write(sv[1], "x", 1) == 1 && probe_wait(r.core, &r.ev) == 0 && r.ev.res == 1 &&
             (r.ev.flags & IORING_CQE_F_BUFFER) && r.ev.more;
    else
        sv[0] = sv[1] = -1;
    probe_finish(&r, sv[0], sv[1]);
    return ok;
}

/* Zero-copy sends: one byte with IORING_OP_SENDMSG_ZC to a bound UDP socket
 * on the loopback interface succeeds.  It answers for IORING_OP_SEND_ZC too
 * (same kernel machinery, as uring-api reports them). */
static bool probe_send_zc(unsigned entries, unsigned flags)
{
    struct probe_run r;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    struct msghdr msg;
    if (!probe_start(&r, entries, flags))
        return false;
    bool ok = false;
    int rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (rx >= 0 && tx >= 0 && bind(rx, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(rx, (struct sockaddr *)&sin, &len) == 0) {
        memset(&msg, 0, sizeof(msg));
        msg.msg_name = &sin;
        msg.msg_namelen = len;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (ringio_submit_sendmsg_zc(r.core, &r.owner, tx, &msg, 0, 0, &r.token) == 0 &&
            probe_wait(r.core, &r.ev) == 0)
            ok = r.ev.res >= 0;
    }
    /* Before `byte`, `msg` and `sin` go out of scope: the notification is
     * reaped (or the ring torn down) here. */
    probe_finish(&r, rx, tx);
    return ok;
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

    bool accept_ms = false, recv_ms = false, zc = false;

    Py_BEGIN_ALLOW_THREADS
    rc = probe_core(entries, flags, &core);
    if (rc == 0) {
        memset(supported, 0, sizeof(supported));
        known = ringio_core_probe_opcodes(core, supported, sizeof(supported));
        features = ringio_core_backend(core)->features;
        ringio_core_free(core);
        if (known > IORING_OP_ACCEPT && supported[IORING_OP_ACCEPT])
            accept_ms = probe_accept_multishot(entries, flags);
        if (known > IORING_OP_RECV && supported[IORING_OP_RECV])
            recv_ms = probe_recv_multishot(entries, flags);
        if (known > IORING_OP_SENDMSG_ZC && supported[IORING_OP_SENDMSG_ZC])
            zc = probe_send_zc(entries, flags);
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
     * The uring-api capability names, from runtime operation probes (above):
     * the multishot variants share their opcodes with the one-shot ones, and a
     * kernel may list the zero-copy opcodes yet refuse the operation, so only
     * submitting them answers.  IORING_OP_SEND_ZC and IORING_OP_SENDMSG_ZC
     * replace the opcode probe's answer with the sendmsg_zc probe's (and the
     * opcode probe's for SEND_ZC itself).
     */
    if (set_bool(d, "IORING_ACCEPT_MULTISHOT", accept_ms) < 0 ||
        set_bool(d, "IORING_RECV_MULTISHOT", recv_ms) < 0 ||
        set_bool(d, "IORING_OP_SEND_ZC",
                 zc && known > IORING_OP_SEND_ZC && supported[IORING_OP_SEND_ZC]) < 0 ||
        set_bool(d, "IORING_OP_SENDMSG_ZC", zc) < 0)
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
    "\"IORING_RECV_MULTISHOT\", \"IORING_OP_SEND_ZC\", \"IORING_OP_SENDMSG_ZC\" from runtime "
    "operation probes: each submits the real operation on a private ring (loopback sockets, "
    "a socket pair) and checks its first completion, waiting at most 0.3 s.";

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
