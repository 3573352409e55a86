/*
 * Issuing one operation: validation, forced results and injected errors,
 * then the opcode's own code.  NOP, timeouts, cancellation and poll live
 * here; sockets in ops_net.c, files in ops_file.c.
 */
#include "internal.h"

#include <poll.h>
#include <stdlib.h>

/* ---- timeouts ----------------------------------------------------------- */

static int read_timespec(const struct sop *op, int64_t *ns)
{
    const struct __kernel_timespec *ts = (const void *)(uintptr_t)op->sqe.addr;
    if (!ts)
        return -EFAULT;
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
        return -EINVAL;
    *ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
    return 0;
}

/* First issue arms the timer; a later issue means it is due. */
static bool issue_timeout(struct sim *s, struct sop *op, int unused)
{
    (void)unused;
    if (op->legs == 0) { /* arming */
        int64_t ns;
        int rc = read_timespec(op, &ns);
        if (rc < 0) {
            sim_complete(s, op, rc, 0);
            return true;
        }
        bool abs = (op->sqe.timeout_flags & IORING_TIMEOUT_ABS) != 0;
        op->legs = 1;
        sim_set_state(s, op, S_WAIT_TIMER);
        op->deadline = abs ? ns : s->vnow + ns;
        if (op->sqe.opcode == IORING_OP_TIMEOUT && op->sqe.off) {
            op->count_target = (uint32_t)op->sqe.off;
            op->count_base = s->cqes_posted;
        }
        return false;
    }
    if (op->count_target && s->cqes_posted - op->count_base >= op->count_target) {
        sim_complete(s, op, 0, 0);
        return true;
    }
    int32_t res = -ETIME;
    if (op->sqe.opcode == IORING_OP_TIMEOUT &&
        (op->sqe.timeout_flags & IORING_TIMEOUT_ETIME_SUCCESS))
        op->hardlink = true; /* -ETIME does not break the chain */
    sim_complete(s, op, res, 0);
    return true;
}

static struct sop *find_user_data(struct sim *s, const struct sop *self, uint64_t ud,
                                  uint8_t opcode_only)
{
    for (struct sop *op = s->ops_head; op; op = op->next) {
        if (op == self || op->sqe.user_data != ud)
            continue;
        if (opcode_only && op->sqe.opcode != opcode_only)
            continue;
        return op;
    }
    return NULL;
}

/* TIMEOUT_REMOVE / POLL_REMOVE: the target (by user_data, of that opcode)
 * ends with -ECANCELED and the remove gets 0, or -ENOENT if it is gone. */
static bool remove_target(struct sim *s, struct sop *op, uint8_t opcode)
{
    struct sop *t = find_user_data(s, op, op->sqe.addr, opcode);
    if (!t) {
        sim_complete(s, op, -ENOENT, 0);
        return true;
    }
    sim_complete(s, t, -ECANCELED, 0);
    sim_complete(s, op, 0, 0);
    return true;
}

static bool issue_timeout_remove(struct sim *s, struct sop *op, int unused)
{
    (void)unused;
    if (op->sqe.timeout_flags & ~(unsigned)IORING_TIMEOUT_ABS) {
        sim_complete(s, op, -EINVAL, 0); /* updates are not simulated (divergence table) */
        return true;
    }
    return remove_target(s, op, IORING_OP_TIMEOUT);
}

/* ---- cancellation --------------------------------------------------------- */

static bool cancel_matches(const struct sop *c, const struct sop *op)
{
    unsigned fl = c->sqe.cancel_flags;
    if (op == c || op->sqe.opcode == IORING_OP_ASYNC_CANCEL)
        return false;
    if (fl & IORING_ASYNC_CANCEL_ANY)
        return true;
    if (fl & IORING_ASYNC_CANCEL_FD)
        return op->sqe.fd == c->sqe.fd &&
               !!(op->sqe.flags & IOSQE_FIXED_FILE) == !!(fl & IORING_ASYNC_CANCEL_FD_FIXED);
    return op->sqe.user_data == c->sqe.addr;
}

/* Cancel one target.  A target whose fd is ready right now races the cancel:
 * the decision source says which wins; never both, never neither. */
static bool cancel_one(struct sim *s, struct sop *t)
{
    /* Scripted holds end with the operation: what a rule held for it is
     * posted first, and its last CQEs are not held (legs of a multishot
     * accept carry fds that only their delivery lets the core close;
     * close() cancels everything this way). */
    sim_release_user_data(s, t->sqe.user_data);
    t->unheld = true;

    bool ready = t->state == S_QUEUED && t->started; /* woken, about to run */
    if (t->state == S_WAIT_FD) {
        struct pollfd p = {.fd = t->wait_fd, .events = t->wait_events};
        ready = poll(&p, 1, 0) > 0;
    }
    if (ready) {
        if (sim_decide(s, D_CANCEL_RACE, 2) == 1) {
            uint64_t seq = t->seq;
            (void)sim_issue(s, t); /* the completion wins; a multishot may stay armed */
            for (struct sop *o = s->ops_head; o; o = o->next)
                if (o->seq == seq) {
                    sim_complete(s, o, -ECANCELED, 0);
                    return true;
                }
            return false; /* it finished first: the cancel found nothing */
        }
    }
    sim_complete(s, t, -ECANCELED, 0);
    return true;
}

static bool issue_cancel(struct sim *s, struct sop *op, int unused)
{
    (void)unused;
    unsigned fl = op->sqe.cancel_flags;
    bool all = (fl & (IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY)) != 0;
    int n = 0;
    uint64_t after = 0; /* ops are in seq order: resume the scan past the last target */
    for (;;) {
        struct sop *t = NULL;
        for (struct sop *o = s->ops_head; o; o = o->next)
            if (o->seq >= after && o->state != S_LINKED && cancel_matches(op, o) &&
                o->timeout_of == NULL) {
                t = o;
                break;
            }
        if (!t)
            break;
        after = t->seq + 1;
        n += cancel_one(s, t);
        if (!all)
            break;
    }
    /* A target that finished before us: the kernel says -ENOENT.  If a
     * scripted hold keeps its CQEs back, the cancel lets them go: a cancel
     * means the user wants the operation over, and those CQEs may carry
     * descriptors (accept, SCM_RIGHTS) that only their delivery closes. */
    if (n == 0 && !(fl & (IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_FD)))
        sim_release_user_data(s, op->sqe.addr);
    sim_complete(s, op, n ? (all ? n : 0) : -ENOENT, 0);
    return true;
}

/* ---- poll ------------------------------------------------------------------ */

static bool issue_poll(struct sim *s, struct sop *op, int fd)
{
    /* The kernel polls for the requested events plus IO_POLL_UNMASK (ERR,
     * HUP, NVAL and RDHUP) and reports them; poll(2) adds all but RDHUP on
     * its own.  (fuzz_diff: POLLIN after the peer's SHUT_WR is 0x2001.) */
    short events = (short)((op->sqe.poll32_events & 0xffff) | POLLRDHUP);
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 0) < 0) {
        sim_complete(s, op, -errno, 0);
        return true;
    }
    if (p.revents & POLLNVAL) {
        sim_complete(s, op, -EBADF, 0);
        return true;
    }
    bool multi = (op->sqe.len & IORING_POLL_ADD_MULTI) != 0;
    if (!p.revents) {
        sim_wait_fd(s, op, fd, events);
        return false;
    }
    if (!multi || sim_cq_full(s) || sim_fault(s, RINGIO_SIM_MULTISHOT_END)) {
        sim_complete(s, op, p.revents, 0);
        return true;
    }
    sim_post(s, op, op->sqe.user_data, p.revents, IORING_CQE_F_MORE);
    /* Level-triggered readiness would post forever: like the kernel's
     * multishot poll (edge-style wakeups), wait for the next change; the sim
     * approximates "next change" by the next progress round. */
    op->legs++;
    sim_set_state(s, op, S_WAIT_TIMER);
    op->deadline = s->vnow + 1000000; /* 1 ms of virtual time */
    return false;
}

static bool issue_poll_remove(struct sim *s, struct sop *op, int unused)
{
    (void)unused;
    return remove_target(s, op, IORING_OP_POLL_ADD);
}

/* ---- dispatch ---------------------------------------------------------------- */

int32_t sim_injected(struct sim *s, const struct sop *op)
{
    unsigned opc = op->sqe.opcode;
    if (opc >= RINGIO_SIM_OPCODES || s->faults.errors[opc][0] == 0)
        return 0;
    if (!sim_fault(s, RINGIO_SIM_INJECT_ERROR))
        return 0;
    unsigned n = 0;
    while (n < RINGIO_SIM_MAX_ERRNOS && s->faults.errors[opc][n])
        n++;
    return -s->faults.errors[opc][sim_decide(s, D_ERRNO, n)];
}

static bool issue_nop(struct sim *s, struct sop *op, int unused)
{
    (void)unused;
    sim_complete(s, op, 0, 0);
    return true;
}

/* Every opcode the sim implements.  with_fd: sqe->fd names a file (plain or,
 * with IOSQE_FIXED_FILE, a slot), resolved before the handler runs. */
struct handler {
    bool (*issue)(struct sim *s, struct sop *op, int fd);
    bool with_fd;
};

static const struct handler handlers[IORING_OP_LAST] = {
    [IORING_OP_NOP] = {issue_nop, false},
    [IORING_OP_TIMEOUT] = {issue_timeout, false},
    [IORING_OP_LINK_TIMEOUT] = {issue_timeout, false},
    [IORING_OP_TIMEOUT_REMOVE] = {issue_timeout_remove, false},
    [IORING_OP_ASYNC_CANCEL] = {issue_cancel, false},
    [IORING_OP_POLL_ADD] = {issue_poll, true},
    [IORING_OP_POLL_REMOVE] = {issue_poll_remove, false},
    [IORING_OP_RECV] = {sim_op_recv, true},
    [IORING_OP_SEND] = {sim_op_send, true},
    [IORING_OP_SEND_ZC] = {sim_op_send, true},
    [IORING_OP_RECVMSG] = {sim_op_msg, true},
    [IORING_OP_SENDMSG] = {sim_op_msg, true},
    [IORING_OP_SENDMSG_ZC] = {sim_op_msg, true},
    [IORING_OP_ACCEPT] = {sim_op_accept, true},
    [IORING_OP_CONNECT] = {sim_op_connect, true},
    [IORING_OP_SHUTDOWN] = {sim_op_shutdown, true},
    [IORING_OP_CLOSE] = {sim_op_close, false},
    [IORING_OP_SOCKET] = {sim_op_socket, false},
    [IORING_OP_READ] = {sim_op_rw, true},
    [IORING_OP_WRITE] = {sim_op_rw, true},
    [IORING_OP_READV] = {sim_op_rw, true},
    [IORING_OP_WRITEV] = {sim_op_rw, true},
    [IORING_OP_READ_FIXED] = {sim_op_rw, true},
    [IORING_OP_WRITE_FIXED] = {sim_op_rw, true},
    [IORING_OP_FSYNC] = {sim_op_fsync, true},
    [IORING_OP_FALLOCATE] = {sim_op_fallocate, true},
    [IORING_OP_OPENAT] = {sim_op_openat, false},
    [IORING_OP_STATX] = {sim_op_path, false},
    [IORING_OP_UNLINKAT] = {sim_op_path, false},
    [IORING_OP_RENAMEAT] = {sim_op_path, false},
    [IORING_OP_MKDIRAT] = {sim_op_path, false},
};

bool sim_opcode_supported(unsigned opcode)
{
    return opcode < IORING_OP_LAST && handlers[opcode].issue != NULL;
}

/* First-issue checks: flags, forced results, injected errors. */
static bool preflight(struct sim *s, struct sop *op)
{
    if (op->started)
        return false; /* not the first issue */
    op->started = true;
    if (op->sqe.flags & ~(unsigned)SQE_FLAGS_KNOWN_MASK) {
        sim_complete(s, op, -EINVAL, 0);
        return true;
    }
    if (!sim_opcode_supported(op->sqe.opcode)) {
        sim_complete(s, op, -EINVAL, 0);
        return true;
    }
    if (op->link_timeout && op->link_timeout->state == S_LINKED) {
        struct sop *lt = op->link_timeout;
        int64_t ns;
        int rc = read_timespec(lt, &ns);
        sim_set_state(s, lt, S_WAIT_TIMER);
        lt->legs = 1;
        lt->deadline = rc < 0 ? s->vnow
                              : ((lt->sqe.timeout_flags & IORING_TIMEOUT_ABS) ? ns : s->vnow + ns);
    }
    if (op->tagged && s->rules) {
        struct rule *r = sim_rule(s, op->tag, false);
        if (r && r->force) {
            r->force = false;
            sim_complete(s, op, r->res, 0);
            return true;
        }
    }
    if (op->sqe.opcode != IORING_OP_NOP && op->sqe.opcode != IORING_OP_ASYNC_CANCEL &&
        op->sqe.opcode != IORING_OP_TIMEOUT && op->sqe.opcode != IORING_OP_LINK_TIMEOUT) {
        int32_t inj = sim_injected(s, op);
        if (inj < 0) {
            if (op->sqe.opcode == IORING_OP_SEND_ZC || op->sqe.opcode == IORING_OP_SENDMSG_ZC) {
                /* As the kernel: the notification was set up at prep, so an
                 * errored zero-copy send still says F_MORE and notifies. */
                sim_zc_finish(s, op, inj);
                return true;
            }
            sim_complete(s, op, inj, 0);
            return true;
        }
    }
    return false;
}

bool sim_issue(struct sim *s, struct sop *op)
{
    if (preflight(s, op)) /* also answers -EINVAL for opcodes without a handler */
        return true;
    const struct handler *h = &handlers[op->sqe.opcode];
    int fd = -1;
    if (h->with_fd) {
        int rc = sim_resolve_fd(s, op, &fd);
        if (rc < 0) {
            sim_complete(s, op, rc, 0);
            return true;
        }
    }
    return h->issue(s, op, fd);
}
