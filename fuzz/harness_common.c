/* The shared part of the fuzz harnesses: see harness_common.h. */
#include "harness_common.h"

#include <stdarg.h>
#include <stdlib.h>

void fuzz_run_start(struct fuzz_run *r, const char *target, const char *const *action_names,
                    int action_count, const uint8_t *data, size_t size)
{
    static int trace = -1;
    if (trace < 0) {
        const char *t = getenv("RINGIO_FUZZ_TRACE");
        trace = t && *t && *t != '0';
    }
    memset(r, 0, sizeof(*r));
    r->target = target;
    r->action_names = action_names;
    r->action_count = action_count;
    r->trace = trace;
    r->in = data;
    r->in_len = size;
    r->action = -1;
}

void fuzz_fail(const struct fuzz_run *r, int line, const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "\n%s: INVARIANT VIOLATED at %s.c:%d (action #%u %s)\n  %s\n", r->target,
            r->target, line, r->step,
            r->action >= 0 && r->action < r->action_count ? r->action_names[r->action] : "-",
            cond);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "  ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    fflush(stderr);
    __builtin_trap();
}
