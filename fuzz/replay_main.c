/*
 * Standalone replay driver: feeds files (or every regular file of a
 * directory, in name order) to a harness's entry point, without the fuzzing
 * engine, so a crash can be reproduced and debugged under gdb/valgrind or with
 * gcc.  Built with -DRINGIO_FUZZ_REPLAY, which renames each harness's entry
 * point to ringio_fuzz_<target>_one.
 *
 *   replay [-t TARGET] [-v] [--allow-missing] PATH...
 *
 * Without -t the target is the first path component naming one (for example
 * fuzz/corpus/fuzz_uring_sqe/seed or build/fuzz/artifacts/fuzz_core/crash-x);
 * failing that, fuzz_core.  -v sets RINGIO_FUZZ_TRACE=1 (the harnesses then
 * print every decoded action).  --allow-missing skips paths that do not exist
 * (the meson test passes fuzz/regressions/<target>, which may be absent).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int ringio_fuzz_core_one(const uint8_t *data, size_t size);
int ringio_fuzz_uring_sqe_one(const uint8_t *data, size_t size);
int ringio_fuzz_sim_one(const uint8_t *data, size_t size);
int ringio_fuzz_diff_one(const uint8_t *data, size_t size);
int ringio_fuzz_sim_trace_one(const uint8_t *data, size_t size);

typedef int (*entry_fn)(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    entry_fn fn;
} targets[] = {
    {"fuzz_core", ringio_fuzz_core_one},
    {"fuzz_uring_sqe", ringio_fuzz_uring_sqe_one},
    {"fuzz_sim", ringio_fuzz_sim_one},
    {"fuzz_diff", ringio_fuzz_diff_one},
    {"fuzz_sim_trace", ringio_fuzz_sim_trace_one},
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static entry_fn by_name(const char *name)
{
    for (size_t i = 0; i < NTARGETS; i++)
        if (strcmp(targets[i].name, name) == 0)
            return targets[i].fn;
    return NULL;
}

/* The target named by a path component, or NULL. */
static entry_fn from_path(const char *path)
{
    entry_fn found = NULL;
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    for (char *save = NULL, *tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        entry_fn f = by_name(tok);
        if (f)
            found = f; /* the innermost one wins */
    }
    free(copy);
    return found;
}

static int run_file(entry_fn fn, const char *path, unsigned *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return -1;
    }
    for (;;) {
        if (len == cap) {
            cap *= 2;
            uint8_t *n = realloc(buf, cap);
            if (!n) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = n;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    fclose(f);
    /* An exact-size heap copy, so ASan sees reads past the input's end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    fn(exact, len);
    free(exact);
    (*count)++;
    return 0;
}

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(entry_fn fn, const char *path, int allow_missing, unsigned *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (allow_missing && errno == ENOENT)
            return 0;
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(fn, path, count);
    struct dirent **names;
    int n = scandir(path, &names, NULL, cmp_names);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *d = names[i]->d_name;
        if (d[0] != '.' && rc == 0) {
            size_t sz = strlen(path) + strlen(d) + 2;
            char *p = malloc(sz);
            if (!p) {
                rc = -1;
            } else {
                snprintf(p, sz, "%s/%s", path, d);
                struct stat fs;
                if (stat(p, &fs) == 0 && S_ISREG(fs.st_mode))
                    rc = run_file(fn, p, count);
                free(p);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: replay [-t TARGET] [-v] [--allow-missing] PATH...\n  targets:");
    for (size_t i = 0; i < NTARGETS; i++)
        fprintf(stderr, " %s", targets[i].name);
    fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
    entry_fn forced = NULL;
    int allow_missing = 0, npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            forced = by_name(argv[++i]);
            if (!forced) {
                fprintf(stderr, "replay: unknown target %s\n", argv[i]);
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "-v") == 0) {
            setenv("RINGIO_FUZZ_TRACE", "1", 1);
        } else if (strcmp(argv[i], "--allow-missing") == 0) {
            allow_missing = 1;
        } else if (argv[i][0] == '-') {
            usage();
            return 2;
        } else {
            npaths++;
        }
    }
    if (npaths == 0) {
        usage();
        return 2;
    }
    unsigned count = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0) {
            i++;
            continue;
        }
        if (argv[i][0] == '-')
            continue;
        entry_fn fn = forced ? forced : from_path(argv[i]);
        if (!fn)
            fn = ringio_fuzz_core_one;
        if (run_path(fn, argv[i], allow_missing, &count) < 0)
            return 1;
    }
    fprintf(stderr, "replay: %u input(s), no failure\n", count);
    return 0;
}
