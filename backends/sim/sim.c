/*
 * ringio simulated kernel: creation, the backend ops table, registration and
 * the scripting API.  See ringio/sim.h for what it is, engine.c for how
 * operations run.
 *
 * Known differences from Linux (kept in sync with docs/sim.md):
 *
 * | area                | Linux                                         | the sim                                              |
 * |---------------------|-----------------------------------------------|------------------------------------------------------|
 * | zero copy           | pages pinned, F_NOTIF when the skb is freed   | data copied at send time; ZC_COPIED always reported   |
 * | notification timing | when the peer's stack frees the skb           | 0-2 progress rounds later (faults: much later)       |
 * | async progress      | the kernel completes work with nobody waiting | work runs only inside enter(); b->fd (epoll) says when enter would progress |
 * | closed fd in flight | the request holds a file reference            | the next attempt fails with -EBADF                   |
 * | O_NONBLOCK          | never touched                                 | set around connect(2) on a blocking socket           |
 * | multishot poll      | one CQE per wakeup                            | one CQE per ready check, 1 ms of virtual time apart  |
 * | timeouts            | CLOCK_MONOTONIC (or BOOTTIME/REALTIME)        | virtual clock; jumps when only timers are pending     |
 * | TIMEOUT_REMOVE      | also updates (IORING_TIMEOUT_UPDATE)          | removal only; an update gets -EINVAL                 |
 * | IOSQE_IO_DRAIN      | waits for everything before it                | accepted, no effect                                   |
 * | IOSQE_ASYNC         | forces io-wq                                  | accepted, no effect (order is decided anyway)        |
 * | recvmsg multishot   | supported                                     | -EINVAL                                               |
 * | setup flags         | SQPOLL, IOPOLL, COOP_TASKRUN... change timing | accepted and ignored (SQE128/CQE32 refused)          |
 * | opcodes             | ~60                                           | the ones sim_opcode_supported() lists; others -EINVAL |
 * | SQ/CQ memory        | shared mmap with the kernel                    | plain heap arrays in the process                      |
 * | reads on O_DIRECT   | alignment enforced by the device              | whatever pread(2) on that fd does                    |
 * | CQE_F_SOCK_NONEMPTY | set on a recv when the socket still has data  | never set (a hint; fuzz/fuzz_diff.c masks it)        |
 * | connect, full AF_UNIX backlog | sleeps in io-wq until accept makes room | retried every 1 ms of virtual time            |
 */
#include "internal.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SIM_MAX_ENTRIES 32768u
#define SIM_MAX_CQ_ENTRIES (2 * SIM_MAX_ENTRIES)
/* Setup bits the sim accepts (and ignores, see the table above): the ones
 * kernels up to 6.x define, minus the ring formats it does not emulate.  An
 * unknown bit gets -EINVAL, as from a kernel that does not know it. */
#define SIM_KNOWN_SETUP ((1u << 20) - 1)
#define SIM_REFUSED_SETUP (IORING_SETUP_SQE128 | IORING_SETUP_CQE32 | ~SIM_KNOWN_SETUP)

static const struct ringio_backend_ops sim_ops;

static const char *const fault_names[RINGIO_SIM_FAULT_COUNT] = {
    "short_read",        "short_write",         "inject_error",  "notif_delay",
    "notif_reorder",     "notif_after_error",   "multishot_end", "enter_busy",
};

const char *ringio_sim_fault_name(unsigned site)
{
    return site < RINGIO_SIM_FAULT_COUNT ? fault_names[site] : NULL;
}

int ringio_sim_is(const struct ringio_backend *b)
{
    return b && b->ops == &sim_ops;
}

static struct sim *to_sim(struct ringio_backend *b)
{
    return (struct sim *)b;
}

/* ---- SQ / CQ ------------------------------------------------------------- */

static struct io_uring_sqe *sim_get_sqe(struct ringio_backend *b)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    struct io_uring_sqe *sqe = NULL;
    if (s->sq_local - s->sq_head <= s->sq_mask)
        sqe = &s->sqes[s->sq_local++ & s->sq_mask];
    pthread_mutex_unlock(&s->mu);
    return sqe;
}

static unsigned sim_sq_space_left(struct ringio_backend *b)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    unsigned n = s->sq_mask + 1 - (s->sq_local - s->sq_head);
    pthread_mutex_unlock(&s->mu);
    return n;
}

static unsigned sim_flush(struct ringio_backend *b)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    s->sq_tail = s->sq_local;
    unsigned n = s->sq_tail - s->sq_head;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static unsigned sim_peek_cqes(struct ringio_backend *b, struct io_uring_cqe **cqes, unsigned max)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    unsigned n = sim_cq_ready(s);
    if (n > max)
        n = max;
    for (unsigned i = 0; i < n; i++)
        cqes[i] = &s->cqes[(s->cq_head + i) & s->cq_mask];
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void sim_advance(struct ringio_backend *b, unsigned n)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    s->cq_head += n;
    if (s->notify_on && s->cq_evt_set && sim_cq_ready(s) == 0)
        sim_notify_update(s);
    pthread_mutex_unlock(&s->mu);
}

static bool sim_cq_overflow_pending(struct ringio_backend *b)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    bool v = s->ovf_head != NULL;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* ---- registration --------------------------------------------------------- */

/* Make bgid_map[bgid] addressable.  0 or -ENOMEM (the map unchanged). */
static int bgid_map_reserve(struct sim *s, unsigned bgid)
{
    if (bgid < s->bgid_map_len)
        return 0;
    unsigned len = s->bgid_map_len ? s->bgid_map_len : 16;
    while (len <= bgid)
        len *= 2;
    struct buf_ring **m = realloc(s->bgid_map, (size_t)len * sizeof(*m));
    if (!m)
        return -ENOMEM;
    memset(m + s->bgid_map_len, 0, (size_t)(len - s->bgid_map_len) * sizeof(*m));
    s->bgid_map = m;
    s->bgid_map_len = len;
    return 0;
}

static int sim_register_buf_ring(struct ringio_backend *b, unsigned entries, unsigned bgid,
                                 struct io_uring_buf_ring **out)
{
    struct sim *s = to_sim(b);
    if (entries == 0 || entries > 32768 || (entries & (entries - 1)) || bgid > 0xffff)
        return -EINVAL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = ((size_t)entries * sizeof(struct io_uring_buf) + page - 1) & ~(page - 1);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    struct buf_ring *r = NULL;
    if (sim_buf_ring(s, bgid)) {
        rc = -EEXIST;
        goto out;
    }
    rc = bgid_map_reserve(s, bgid);
    if (rc < 0)
        goto out;
    r = calloc(1, sizeof(*r));
    void *mem = r ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                  : MAP_FAILED;
    if (mem == MAP_FAILED) {
        free(r);
        rc = -ENOMEM;
        goto out;
    }
    r->br = mem;
    r->map_len = len;
    r->entries = entries;
    r->bgid = bgid;
    r->next = s->buf_rings;
    s->buf_rings = r;
    s->bgid_map[bgid] = r;
    *out = r->br;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_unregister_buf_ring(struct ringio_backend *b, struct io_uring_buf_ring *br,
                                   unsigned entries, unsigned bgid)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    int rc = -ENOENT;
    for (struct buf_ring **pp = &s->buf_rings; *pp; pp = &(*pp)->next) {
        struct buf_ring *r = *pp;
        if (r->bgid != bgid)
            continue;
        if (r->br != br || r->entries != entries) {
            rc = -EINVAL;
            break;
        }
        *pp = r->next;
        s->bgid_map[bgid] = NULL;
        munmap(r->br, r->map_len);
        free(r);
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void drop_files(struct sim *s)
{
    for (unsigned i = 0; i < s->nfiles; i++)
        if (s->files[i] >= 0)
            close(s->files[i]); /* the table owns what ops installed */
    free(s->files);
    s->files = NULL;
    s->nfiles = 0;
}

/* As IORING_REGISTER_FILES, with the contract's replace semantics (the uring
 * backend unregisters first; n == 0 with nothing registered is fine).  The
 * table holds its own references (dups), as the kernel's holds files. */
static int sim_register_files(struct ringio_backend *b, const int *fds, unsigned n)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    drop_files(s);
    if (n == 0)
        goto out;
    if (n > 65536 || !(s->files = malloc(n * sizeof(int)))) {
        rc = n > 65536 ? -EINVAL : -ENOMEM;
        goto out;
    }
    s->nfiles = n;
    for (unsigned i = 0; i < n; i++) {
        s->files[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (fds[i] >= 0 && s->files[i] < 0) {
            rc = -EBADF;
            s->nfiles = i;
            drop_files(s);
            goto out;
        }
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_register_buffers(struct ringio_backend *b, const struct iovec *iov, unsigned n)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    free(s->bufs); /* replace semantics, as the uring backend */
    s->bufs = NULL;
    s->nbufs = 0;
    if (n == 0) {
        rc = 0;
    } else if (n > 16384) {
        rc = -EINVAL;
    } else if (!(s->bufs = malloc(n * sizeof(*iov)))) {
        rc = -ENOMEM;
    } else {
        memcpy(s->bufs, iov, n * sizeof(*iov));
        s->nbufs = n;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_probe_opcodes(struct ringio_backend *b, uint8_t *supported, unsigned n)
{
    (void)b;
    for (unsigned op = 0; op < n; op++)
        supported[op] = sim_opcode_supported(op);
    return IORING_OP_LAST;
}

static void sim_annotate(struct ringio_backend *b, uint64_t token, uint64_t tag)
{
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    /* The SQE the core just prepared is normally the last one handed out. */
    for (uint32_t i = s->sq_local; i != s->sq_tail; i--) {
        unsigned slot = (i - 1) & s->sq_mask;
        if (s->sqes[slot].user_data == token) {
            s->sq_tag[slot] = tag;
            s->sq_tagged[slot] = 1;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- lifecycle ------------------------------------------------------------- */

static void free_list(struct pend_cqe *p)
{
    while (p) {
        struct pend_cqe *n = p->next;
        free(p);
        p = n;
    }
}

static void sim_destroy(struct ringio_backend *b)
{
    struct sim *s = to_sim(b);
    /* The kernel cancels what is in flight at teardown; nobody reads the CQ
     * any more, so the sim just forgets its operations. */
    while (s->ops_head) {
        struct sop *op = s->ops_head;
        s->ops_head = op->next;
        free(op);
    }
    while (s->spare) {
        struct sop *op = s->spare;
        s->spare = op->next;
        free(op);
    }
    free_list(s->ovf_head);
    free_list(s->notifs);
    free_list(s->held);
    while (s->rules) {
        struct rule *r = s->rules;
        s->rules = r->next;
        free(r);
    }
    while (s->buf_rings) {
        struct buf_ring *r = s->buf_rings;
        s->buf_rings = r->next;
        munmap(r->br, r->map_len);
        free(r);
    }
    free(s->bgid_map);
    drop_files(s);
    free(s->bufs);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->cq_evt >= 0)
        close(s->cq_evt);
    free(s->epreg);
    sim_decide_free(s);
    free(s->sqes);
    free(s->sq_tag);
    free(s->sq_tagged);
    free(s->cqes);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const struct ringio_backend_ops sim_ops = {
    .name = "sim",
    .get_sqe = sim_get_sqe,
    .sq_space_left = sim_sq_space_left,
    .flush = sim_flush,
    .enter = sim_enter,
    .peek_cqes = sim_peek_cqes,
    .advance = sim_advance,
    .cq_overflow_pending = sim_cq_overflow_pending,
    .register_buf_ring = sim_register_buf_ring,
    .unregister_buf_ring = sim_unregister_buf_ring,
    .probe_opcodes = sim_probe_opcodes,
    .destroy = sim_destroy,
    .register_files = sim_register_files,
    .register_buffers = sim_register_buffers,
    .annotate = sim_annotate,
};

static unsigned roundup_pow2(unsigned v)
{
    unsigned p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* The kernel's sizing rules (io_uring_setup(2)). */
static int sim_sizes(const struct ringio_setup *setup, unsigned *sq, unsigned *cq)
{
    unsigned e = setup->entries;
    bool clamp = (setup->flags & IORING_SETUP_CLAMP) != 0;
    if (e == 0)
        return -EINVAL;
    if (e > SIM_MAX_ENTRIES) {
        if (!clamp)
            return -EINVAL;
        e = SIM_MAX_ENTRIES;
    }
    *sq = roundup_pow2(e);
    unsigned c = setup->cq_entries;
    if (c == 0) {
        *cq = 2 * *sq;
        return 0;
    }
    if (c > SIM_MAX_CQ_ENTRIES) {
        if (!clamp)
            return -EINVAL;
        c = SIM_MAX_CQ_ENTRIES;
    }
    *cq = roundup_pow2(c);
    return *cq < *sq ? -EINVAL : 0;
}

static int sim_fds(struct sim *s, bool notify)
{
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0)
        return -errno;
    if (!notify)
        return 0;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->cq_evt = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->epfd < 0 || s->cq_evt < 0)
        return -errno;
    struct epoll_event e = {.events = EPOLLIN, .data.fd = s->cq_evt};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->cq_evt, &e) < 0)
        return -errno;
    return 0;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ringio_sim_backend_new(const struct ringio_setup *setup, const struct ringio_sim_config *cfg,
                           struct ringio_backend **out)
{
    static const struct ringio_sim_config faithful = {0};
    if (!setup || !out)
        return -EINVAL;
    if (!cfg)
        cfg = &faithful;
    if (setup->flags & SIM_REFUSED_SETUP)
        return -EINVAL;
    unsigned sq, cq;
    int rc = sim_sizes(setup, &sq, &cq);
    if (rc < 0)
        return rc;
    struct sim *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    s->wake_fd = s->epfd = s->cq_evt = -1;
    s->sqes = calloc(sq, sizeof(*s->sqes));
    s->sq_tag = calloc(sq, sizeof(*s->sq_tag));
    s->sq_tagged = calloc(sq, 1);
    s->cqes = calloc(cq, sizeof(*s->cqes));
    s->base.ops = &sim_ops;
    if (!s->sqes || !s->sq_tag || !s->sq_tagged || !s->cqes) {
        sim_destroy(&s->base);
        return -ENOMEM;
    }
    s->sq_mask = sq - 1;
    s->cq_mask = cq - 1;
    /* The virtual clock starts at the real one, so IORING_TIMEOUT_ABS
     * deadlines taken from CLOCK_MONOTONIC mean what they say. */
    s->vnow = monotonic_ns();
    rc = sim_fds(s, cfg->notify != 0);
    if (rc == 0)
        rc = sim_decide_init(s, cfg);
    if (rc < 0) {
        sim_destroy(&s->base);
        return rc;
    }
    s->base.fd = s->epfd;
    s->base.features = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_SUBMIT_STABLE |
                       IORING_FEAT_RW_CUR_POS | IORING_FEAT_FAST_POLL |
                       IORING_FEAT_POLL_32BITS | IORING_FEAT_EXT_ARG;
    s->base.sq_entries = sq;
    s->base.cq_entries = cq;
    s->base.setup_flags = setup->flags | (setup->cq_entries ? IORING_SETUP_CQSIZE : 0);
    *out = &s->base;
    return 0;
}

int ringio_sim_notify_enable(struct ringio_backend *b)
{
    if (!ringio_sim_is(b))
        return -EINVAL;
    struct sim *s = to_sim(b);
    if (s->epfd < 0)
        return -ENOTSUP;
    pthread_mutex_lock(&s->mu);
    s->notify_on = true;
    sim_notify_update(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- scripting --------------------------------------------------------------- */

static int with_rule(struct ringio_backend *b, uint64_t tag, int kind, int32_t res)
{
    if (!ringio_sim_is(b))
        return -EINVAL;
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    struct rule *r = sim_rule(s, tag, true);
    if (r) {
        if (kind == 0) {
            r->hold = true;
            r->notif_only = res != 0;
        } else {
            r->force = true;
            r->res = res;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return r ? 0 : -ENOMEM;
}

int ringio_sim_hold(struct ringio_backend *b, uint64_t tag, int notif_only)
{
    return with_rule(b, tag, 0, notif_only != 0);
}

int ringio_sim_force(struct ringio_backend *b, uint64_t tag, int32_t res)
{
    return with_rule(b, tag, 1, res);
}

int ringio_sim_advance(struct ringio_backend *b, uint64_t ns)
{
    if (!ringio_sim_is(b) || ns > (uint64_t)INT64_MAX / 2)
        return -EINVAL;
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    s->vnow += (int64_t)ns;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int ringio_sim_info(struct ringio_backend *b, struct ringio_sim_info *out)
{
    if (!ringio_sim_is(b) || !out)
        return -EINVAL;
    struct sim *s = to_sim(b);
    pthread_mutex_lock(&s->mu);
    unsigned held = 0;
    for (struct pend_cqe *p = s->held; p; p = p->next)
        held++;
    *out = (struct ringio_sim_info){
        .seed = s->seed,
        .now_ns = (uint64_t)s->vnow,
        .decisions = s->decisions,
        .decision_hash = s->dhash,
        .cqe_hash = s->cqe_hash,
        .cqes_posted = s->cqes_posted,
        .pending = s->nops,
        .held = held,
        .overflowed = s->overflowed,
        .faults_enabled = s->faults_on,
        .replay_diverged = s->diverged,
    };
    pthread_mutex_unlock(&s->mu);
    return 0;
}
