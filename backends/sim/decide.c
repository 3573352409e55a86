/*
 * The decision source: every choice of the simulation comes from here.
 *
 * A decision is a value in [0, n) for a site.  The source is splitmix64 of
 * the seed, a caller's byte stream (libFuzzer), or a recorded trace.  Every
 * decision, whatever the source, is folded into an FNV-1a hash so a test can
 * prove determinism by running twice; with record on it is also appended to
 * the trace, whose format is:
 *
 *   "RSIM" 0x01, seed (u64 LE), then per decision: site (u8), value (LEB128)
 *
 * Decisions with n <= 1 are not decisions: they take nothing from the
 * source and are not recorded, so a trace only holds real choices.
 */
#include "internal.h"

#include <stdlib.h>

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define TRACE_MAGIC_LEN 5
#define TRACE_HEADER (TRACE_MAGIC_LEN + 8)

static const uint8_t trace_magic[TRACE_MAGIC_LEN] = {'R', 'S', 'I', 'M', 1};

static uint64_t fnv(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int trace_put(struct sim *s, const uint8_t *p, size_t n)
{
    if (s->trace_len + n > s->trace_cap) {
        size_t cap = s->trace_cap ? s->trace_cap * 2 : 4096;
        while (cap < s->trace_len + n)
            cap *= 2;
        uint8_t *t = realloc(s->trace, cap);
        if (!t)
            return -ENOMEM;
        s->trace = t;
        s->trace_cap = cap;
    }
    memcpy(s->trace + s->trace_len, p, n);
    s->trace_len += n;
    return 0;
}

static void trace_record(struct sim *s, uint8_t site, uint32_t v)
{
    uint8_t buf[6];
    size_t n = 0;
    buf[n++] = site;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        buf[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    if (trace_put(s, buf, n) < 0)
        s->record = false; /* out of memory: stop recording, keep running */
}

/* Next value from a trace; false when the trace disagrees with the calls. */
static bool replay_next(struct sim *s, uint8_t site, uint32_t n, uint32_t *v)
{
    if (s->bpos >= s->nbytes || s->bytes[s->bpos] != site)
        return false;
    size_t p = s->bpos + 1;
    uint32_t val = 0;
    for (unsigned shift = 0; shift < 35; shift += 7) {
        if (p >= s->nbytes)
            return false;
        uint8_t byte = s->bytes[p++];
        val |= (uint32_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            break;
    }
    if (val >= n)
        return false;
    s->bpos = p;
    *v = val;
    return true;
}

/* Bytes source: as many bytes as n needs, little endian, then mod n. */
static uint32_t bytes_next(struct sim *s, uint32_t n)
{
    uint32_t v = 0;
    for (uint32_t span = n - 1, i = 0; span; span >>= 8, i++) {
        uint8_t byte = s->bpos < s->nbytes ? s->bytes[s->bpos++] : 0;
        v |= (uint32_t)byte << (8 * i);
    }
    return v % n;
}

uint32_t sim_decide(struct sim *s, enum sim_site site, uint32_t n)
{
    if (n <= 1)
        return 0;
    uint32_t v = 0;
    switch (s->source) {
    case RINGIO_SIM_SOURCE_SEED:
        v = (uint32_t)(((splitmix64(&s->rng) >> 32) * (uint64_t)n) >> 32);
        break;
    case RINGIO_SIM_SOURCE_BYTES:
        v = bytes_next(s, n);
        break;
    case RINGIO_SIM_SOURCE_REPLAY:
        if (s->diverged || !replay_next(s, (uint8_t)site, n, &v)) {
            s->diverged = true;
            v = 0;
        }
        break;
    }
    s->decisions++;
    s->dhash = fnv(fnv(fnv(s->dhash, site), n), v);
    if (s->record)
        trace_record(s, (uint8_t)site, v);
    return v;
}

bool sim_fault(struct sim *s, enum ringio_sim_fault f)
{
    if (!(s->faults_on & (1u << f)))
        return false;
    return sim_decide(s, D_FAULT_FIRE, 1000) < s->faults.site[f].fire;
}

int sim_decide_init(struct sim *s, const struct ringio_sim_config *cfg)
{
    s->source = cfg->source;
    s->seed = cfg->seed;
    s->rng = cfg->seed;
    s->dhash = FNV_OFFSET;
    s->cqe_hash = FNV_OFFSET;
    s->record = cfg->record != 0;
    if (cfg->nbytes) {
        if (!cfg->bytes)
            return -EINVAL;
        s->bytes = malloc(cfg->nbytes);
        if (!s->bytes)
            return -ENOMEM;
        memcpy(s->bytes, cfg->bytes, cfg->nbytes);
        s->nbytes = cfg->nbytes;
    }
    if (s->source == RINGIO_SIM_SOURCE_REPLAY) {
        if (s->nbytes < TRACE_HEADER || memcmp(s->bytes, trace_magic, TRACE_MAGIC_LEN) != 0)
            return -EINVAL;
        uint64_t seed = 0;
        for (int i = 0; i < 8; i++)
            seed |= (uint64_t)s->bytes[TRACE_MAGIC_LEN + i] << (8 * i);
        s->seed = s->rng = seed;
        s->bpos = TRACE_HEADER;
    }
    if (s->record) {
        uint8_t hdr[TRACE_HEADER];
        memcpy(hdr, trace_magic, TRACE_MAGIC_LEN);
        for (int i = 0; i < 8; i++)
            hdr[TRACE_MAGIC_LEN + i] = (uint8_t)(s->seed >> (8 * i));
        if (trace_put(s, hdr, sizeof(hdr)) < 0)
            return -ENOMEM;
    }
    if (cfg->faults)
        s->faults = *cfg->faults;
    /* Each site is on or off for the whole run, so a run concentrates on a
     * few faults instead of sprinkling all of them thinly. */
    for (unsigned f = 0; f < RINGIO_SIM_FAULT_COUNT; f++) {
        const struct ringio_sim_site *site = &s->faults.site[f];
        if (site->enable == 0 || site->fire == 0)
            continue;
        if (sim_decide(s, D_FAULT_ENABLE, 1000) < site->enable)
            s->faults_on |= 1u << f;
    }
    return 0;
}

void sim_decide_free(struct sim *s)
{
    free(s->bytes);
    free(s->trace);
    s->bytes = s->trace = NULL;
}

int ringio_sim_trace(struct ringio_backend *b, const uint8_t **out, size_t *n)
{
    if (!ringio_sim_is(b) || !out || !n)
        return -EINVAL;
    struct sim *s = (struct sim *)b;
    if (!s->record)
        return -ENODATA;
    *out = s->trace;
    *n = s->trace_len;
    return 0;
}
