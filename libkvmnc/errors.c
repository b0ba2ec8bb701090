// SPDX-License-Identifier: LGPL-2.1-or-later
/* Error texts, the log callback and the version getters. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define LOG_MSG_MAX 512

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static kvmnc_log_fn log_fn;
static void *log_ctx;
static int log_max = -1;

/* The meaning of the last error the library returned in this thread (kvmnc_err()). */
static __thread int last_err;
static __thread const char *last_meaning;

int kvmnc_err(int err, const char *meaning)
{
	last_err = err;
	last_meaning = meaning;
	return err;
}

KVMNC_API void kvmnc_set_log(kvmnc_log_fn fn, int max_level, void *ctx)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_ctx = ctx;
	__atomic_store_n(&log_max, fn ? max_level : -1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&log_lock);
}

static void deliver(int level, const char *msg)
{
	kvmnc_log_fn fn;
	void *ctx;

	pthread_mutex_lock(&log_lock);
	fn = level <= log_max ? log_fn : NULL;
	ctx = log_ctx;
	pthread_mutex_unlock(&log_lock);
	if (fn)
		fn(level, msg, ctx);
}

/* Formatting costs; skip it when nobody listens at this level. */
static bool listened(int level)
{
	return level <= __atomic_load_n(&log_max, __ATOMIC_RELAXED);
}

void kvmnc_log(int level, const char *fmt, ...)
{
	char msg[LOG_MSG_MAX];
	va_list ap;

	if (!listened(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	deliver(level, msg);
}

void kvmnc_logq_add(struct kvmnc_logq *q, int level, const char *fmt, ...)
{
	va_list ap;

	if (q->fn ? level > q->max : !listened(level))
		return;
	if (q->n == KVMNC_LOGQ) {
		q->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(q->m[q->n].msg, sizeof(q->m[0].msg), fmt, ap);
	va_end(ap);
	q->m[q->n++].level = level;
}

/* A handle's messages go to its own callback when it has one, else to the process's. */
void kvmnc_logq_deliver(const struct kvmnc_logq *q)
{
	char msg[LOG_MSG_MAX];

	for (uint32_t i = 0; i < q->n; i++) {
		if (q->fn)
			q->fn(q->m[i].level, q->m[i].msg, q->ctx);
		else
			deliver(q->m[i].level, q->m[i].msg);
	}
	if (!q->dropped)
		return;
	if (!q->fn) {
		kvmnc_log(KVMNC_LOG_WARN, "%u more library messages were dropped", q->dropped);
	} else if (q->max >= KVMNC_LOG_WARN) {
		snprintf(msg, sizeof(msg), "%u more library messages were dropped", q->dropped);
		q->fn(KVMNC_LOG_WARN, msg, q->ctx);
	}
}

KVMNC_API int kvmnc_set_handle_log(struct kvmnc *hd, kvmnc_log_fn fn, int max_level, void *ctx)
{
	struct kvmnc *h;
	int r = kvmnc_handle_get(hd, &h);

	if (r < 0)
		return r;
	/* Under the handle lock: the queue's copy taken at delivery sees both or neither. */
	h->logq.fn = fn;
	h->logq.ctx = fn ? ctx : NULL;
	h->logq.max = fn ? max_level : -1;
	kvmnc_handle_put(h);
	return 0;
}

void kvmnc_log_fork_lock(void)
{
	pthread_mutex_lock(&log_lock);
}

void kvmnc_log_fork_unlock(void)
{
	pthread_mutex_unlock(&log_lock);
}

/*
 * What each errno means when this library returns it; the generic text
 * ("Operation not supported") would not tell a VMM author what to do.
 */
KVMNC_API const char *kvmnc_strerror(int err)
{
	const char *s;
	int e;

	/* -INT_MIN does not exist; no errno is that large anyway. */
	if (err == INT_MIN)
		return "Unknown error";
	/* The meaning this thread's last error had, where one errno has several. */
	if (err < 0 && err == last_err && last_meaning)
		return last_meaning;
	e = err < 0 ? -err : err;
	switch (e) {
	case 0:
		return "Success";
	case EOPNOTSUPP:
		return "No non-coherent DMA mechanism is available within the accepted scope";
	case EBADF:
		return "Not an open file descriptor, or not an open libkvmnc handle";
	case ENOTTY:
		return "Not a KVM VM file descriptor (or not a KVM node)";
	case E2BIG:
		return "Struct has non-zero bytes this version of libkvmnc does not know, or is "
		       "larger than 4096 bytes";
	case EINVAL:
		return "Invalid argument";
	case ENOENT:
		return "No such KVM node, memslot, enabled device or pending region plan";
	case EACCES:
	case EPERM:
		return "Permission denied on the KVM node";
	case EEXIST:
		return "Memslot overlaps an existing one";
	case EPROTO:
		return "Unsupported KVM API version (libkvmnc speaks version 12)";
	case ENODEV:
		return "KVM device type not registered in this kernel";
	case ENOMEM:
		return "Out of memory";
	case EMFILE:
		return "Too many open files";
	case EBUSY:
		return "Too late for the guest-PAT quirk: memory mapped before now would not be "
		       "covered (declare KVMNC_OPEN_DEVICES in kvmnc_open())";
	case EALREADY:
		return "A region plan for this memslot is already waiting for its outcome";
	case EISCONN:
		return "This VM already has an open libkvmnc handle in this process (one VM, one "
		       "handle)";
	case ENOTRECOVERABLE:
		return "A trial memslot could not be deleted from the VM: it keeps the slot (and "
		       "the page behind it); discard the VM";
	case EIO:
		return "KVM refused the VM to this process (a child after fork() may only close "
		       "handles)";
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	s = strerrordesc_np(e);
	if (s)
		return s;
#endif
	s = "Unknown error";
	return s;
}

KVMNC_API const char *kvmnc_reason_name(int reason)
{
	/* docs/reasons.tsv; unit: misc test_reason_table keeps the two equal. */
	static const char *const names[] = {
		[KVMNC_REASON_UNSET] = "unset",
		[KVMNC_REASON_SUPPORTED] = "supported",
		[KVMNC_REASON_COULD_NOT_TELL] = "could_not_tell",
		[KVMNC_REASON_KERNEL_LACKS] = "kernel_lacks",
		[KVMNC_REASON_ARCH] = "arch",
		[KVMNC_REASON_IGNORES_GUEST_PAT] = "ignores_guest_pat",
		[KVMNC_REASON_UNKNOWN_VENDOR] = "unknown_vendor",
		[KVMNC_REASON_NO_TDP] = "no_tdp",
		[KVMNC_REASON_NO_SELF_SNOOP] = "no_self_snoop",
		[KVMNC_REASON_NATIVE_ALREADY] = "native_already",
		[KVMNC_REASON_OTHER_MEANING] = "other_meaning",
		[KVMNC_REASON_VM_TYPE] = "vm_type",
	};

	if (reason < 0 || (size_t)reason >= ARRAY_SIZE(names))
		return NULL;
	return names[reason];
}

KVMNC_API const char *kvmnc_mechanism_name(int mechanism)
{
	const struct kvmnc_mech_entry *m = kvmnc_mechanism_of(mechanism);

	if (mechanism == KVMNC_MECH_NONE)
		return "none";
	return m ? m->name : NULL;
}

#define STR_(x) #x
#define STR(x)	STR_(x)

KVMNC_API const char *kvmnc_version(void)
{
	return STR(KVMNC_VERSION_MAJOR) "." STR(KVMNC_VERSION_MINOR) "." STR(KVMNC_VERSION_PATCH);
}

KVMNC_API unsigned int kvmnc_version_major(void)
{
	return KVMNC_VERSION_MAJOR;
}

KVMNC_API unsigned int kvmnc_version_minor(void)
{
	return KVMNC_VERSION_MINOR;
}

KVMNC_API unsigned int kvmnc_version_patch(void)
{
	return KVMNC_VERSION_PATCH;
}
