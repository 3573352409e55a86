/* FROZEN: ringio_capi.h as released with table revision 1 (ABI 1).  Do not edit:
 * test_capi.py builds abi1_client.c against it to prove that the current table still
 * serves clients compiled against revision 1. */
/*
 * ringio C API: a function table exported as the capsule
 * "ringio._ringio._C_API", for C extensions that drive rings without going
 * through Python attribute lookups.
 *
 *     #include <ringio_capi.h>          // ringio.get_include() has it
 *
 *     const RingioCAPI *api = RingioCAPI_Import();
 *     if (api == NULL)
 *         return NULL;                  // ImportError set
 *     PyObject *ring = api->ring_new(8, 0);
 *     PyObject *op = api->ring_submit_nop(ring, Py_None);
 *     PyObject *done = api->ring_wait(ring, 1.0);   // `op` itself, or None
 *
 * Rules: call everything with the GIL held (functions that block release it
 * themselves).  Functions returning PyObject * return a new reference, or
 * NULL with an exception set; functions returning int return 0 (or a
 * non-negative value) on success and -1 with an exception set.  Objects of the
 * wrong type raise TypeError.
 *
 * Compatibility: abi_version changes only on incompatible changes; new
 * functions are appended, so check struct_size (or feature_flags) before using
 * a member added after the version you compiled against.
 */
#ifndef RINGIO_CAPI_H
#define RINGIO_CAPI_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RINGIO_CAPI_CAPSULE_NAME "ringio._ringio._C_API"
#define RINGIO_CAPI_ABI_VERSION 1u

/* Ring lifecycle, nop, wait/break_wait and completion accessors. */
#define RINGIO_CAPI_FEATURE_CORE (1ull << 0)

typedef struct RingioCAPI {
    uint32_t abi_version;   /* RINGIO_CAPI_ABI_VERSION of the provider */
    uint32_t struct_size;   /* sizeof(RingioCAPI) of the provider */
    uint64_t feature_flags; /* RINGIO_CAPI_FEATURE_* */

    /* ---- rings (RINGIO_CAPI_FEATURE_CORE) ---- */
    /* ringio.Ring(entries, flags). */
    PyObject *(*ring_new)(unsigned entries, unsigned flags);
    /* 1 if obj is a ringio.Ring (or subclass), else 0; never fails. */
    int (*ring_check)(PyObject *obj);
    /* Ring.close(). */
    int (*ring_close)(PyObject *ring);
    /* Ring.fd (>= 0). */
    int (*ring_fd)(PyObject *ring);
    /* Ring.submit_nop(user_data): the pending Completion. */
    PyObject *(*ring_submit_nop)(PyObject *ring, PyObject *user_data);
    /* Ring.wait(timeout); timeout < 0 waits without limit.  A Completion or None. */
    PyObject *(*ring_wait)(PyObject *ring, double timeout);
    /* Ring.break_wait(). */
    int (*ring_break_wait)(PyObject *ring);

    /* ---- completions (RINGIO_CAPI_FEATURE_CORE) ---- */
    /* 1 if obj is a ringio.Completion, else 0; never fails. */
    int (*completion_check)(PyObject *obj);
    PyObject *(*completion_user_data)(PyObject *completion);
    PyObject *(*completion_result)(PyObject *completion);
    int (*completion_res)(PyObject *completion, int32_t *res);
    int (*completion_flags)(PyObject *completion, uint32_t *flags);
    int (*completion_sequence)(PyObject *completion, uint32_t *sequence);
    /* Completion.kind (a COMPLETION_KIND_* value). */
    int (*completion_kind)(PyObject *completion);
    /* 1 / 0 */
    int (*completion_more)(PyObject *completion);
    int (*completion_done)(PyObject *completion);
} RingioCAPI;

/* Import the table and check that it is compatible with this header. */
static inline const RingioCAPI *RingioCAPI_Import(void)
{
    const RingioCAPI *api = (const RingioCAPI *)PyCapsule_Import(RINGIO_CAPI_CAPSULE_NAME, 0);
    if (api == NULL)
        return NULL;
    if (api->abi_version != RINGIO_CAPI_ABI_VERSION ||
        api->struct_size < (uint32_t)offsetof(RingioCAPI, completion_done) + sizeof(void *)) {
        PyErr_Format(PyExc_ImportError,
                     "ringio C API mismatch: module has ABI %u (table size %u), this header "
                     "expects ABI %u",
                     (unsigned)api->abi_version, (unsigned)api->struct_size,
                     (unsigned)RINGIO_CAPI_ABI_VERSION);
        return NULL;
    }
    return api;
}

#ifdef __cplusplus
}
#endif
#endif /* RINGIO_CAPI_H */
