/*
 * Operation slots and generation-tagged tokens.
 *
 * A token is (generation << 32) | slot index and travels as the SQE's
 * user_data.  Releasing a slot bumps its generation, so a late or duplicated
 * CQE carrying an old token no longer matches and is counted as stale rather
 * than delivered to the slot's next occupant.
 */
#include "internal.h"

#include <stdlib.h>

static uint32_t next_gen(uint32_t gen)
{
    /* Generations stay in [1, RINGIO_GEN_LIMIT): 0 never appears in a token
     * and the reserved tokens (wake, internal) can never collide. */
    return gen + 1 >= RINGIO_GEN_LIMIT ? 1 : gen + 1;
}

static int grow(struct ringio_core *c)
{
    uint32_t ncap = c->cap ? c->cap * 2 : 64;
    if (ncap > (1u << 30))
        return -ENOMEM;
    struct ringio_op *n = realloc(c->ops, (size_t)ncap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    memset(n + c->cap, 0, (size_t)(ncap - c->cap) * sizeof(*n));
    c->ops = n;
    c->cap = ncap;
    return 0;
}

int op_alloc(struct ringio_core *c, uint32_t *idx)
{
    if (c->free_head) {
        *idx = c->free_head - 1;
        c->free_head = c->ops[*idx].next_free;
    } else {
        if (c->nops == c->cap) {
            int rc = grow(c);
            if (rc < 0)
                return rc;
        }
        *idx = c->nops++;
        c->ops[*idx].gen = 1;
    }
    struct ringio_op *op = &c->ops[*idx];
    uint32_t gen = op->gen;
    memset(op, 0, sizeof(*op));
    op->gen = gen;
    op->state = OP_LIVE;
    op->zc_copied = -1;
    return 0;
}

/* Return a slot that never reached the SQ: no owner to release. */
void op_unalloc(struct ringio_core *c, uint32_t idx)
{
    struct ringio_op *op = &c->ops[idx];
    op->state = OP_FREE;
    op->gen = next_gen(op->gen);
    op->next_free = c->free_head;
    c->free_head = idx + 1;
}

uint64_t op_token(const struct ringio_core *c, uint32_t idx)
{
    return ((uint64_t)c->ops[idx].gen << 32) | idx;
}

struct ringio_op *op_lookup(struct ringio_core *c, uint64_t token)
{
    uint32_t idx = (uint32_t)token;
    uint32_t gen = (uint32_t)(token >> 32);
    if (idx >= c->nops)
        return NULL;
    struct ringio_op *op = &c->ops[idx];
    if (op->state != OP_LIVE || op->gen != gen)
        return NULL;
    return op;
}

/* The one place an owner is released: exactly once per operation. */
void op_release(struct ringio_core *c, struct ringio_op *op)
{
    struct ringio_owner *owner = op->owner;
    if (op->bufring) {
        bufring_destroy(c, op->bufring);
        op->bufring = NULL;
    }
    op->owner = NULL;
    op_unalloc(c, (uint32_t)(op - c->ops));
    c->live--;
    if (owner && owner->release)
        owner->release(owner);
}
