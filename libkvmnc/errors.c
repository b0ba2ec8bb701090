// SPDX-License-Identifier: LGPL-2.1-or-later
/* Error texts, the log callback and the version getters. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static kvmnc_log_fn log_fn;
static void *log_ctx;
static int log_max = -1;

KVMNC_API void kvmnc_set_log(kvmnc_log_fn fn, int max_level, void *ctx)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_ctx = ctx;
	log_max = fn ? max_level : -1;
	pthread_mutex_unlock(&log_lock);
}

void kvmnc_log(int level, const char *fmt, ...)
{
	kvmnc_log_fn fn;
	char msg[512];
	va_list ap;
	void *ctx;

	pthread_mutex_lock(&log_lock);
	fn = level <= log_max ? log_fn : NULL;
	ctx = log_ctx;
	pthread_mutex_unlock(&log_lock);
	if (!fn)
		return;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(level, msg, ctx);
}

/*
 * What each errno means when this library returns it; the generic text
 * ("Operation not supported") would not tell a VMM author what to do.
 */
KVMNC_API const char *kvmnc_strerror(int err)
{
	const char *s;

	switch (err < 0 ? -err : err) {
	case 0:
		return "Success";
	case EOPNOTSUPP:
		return "No non-coherent DMA mechanism is available within the accepted scope";
	case EBADF:
		return "Not an open file descriptor, or not an open libkvmnc handle";
	case ENOTTY:
		return "Not a KVM VM file descriptor (or not a KVM node)";
	case E2BIG:
		return "Struct has non-zero bytes this version of libkvmnc does not know";
	case EINVAL:
		return "Invalid argument";
	case ENOENT:
		return "No such KVM node, memslot or enabled device";
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
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	s = strerrordesc_np(err < 0 ? -err : err);
	if (s)
		return s;
#endif
	s = "Unknown error";
	return s;
}

KVMNC_API const char *kvmnc_mechanism_name(int mechanism)
{
	switch (mechanism) {
	case KVMNC_MECH_NONE:
		return "none";
	case KVMNC_MECH_NATIVE:
		return "native";
	case KVMNC_MECH_MEMSLOT_FLAG:
		return "memslot_flag";
	case KVMNC_MECH_VIRTIO_DEVICE:
		return "virtio_device";
	case KVMNC_MECH_GUEST_PAT_QUIRK:
		return "guest_pat_quirk";
	}
	return NULL;
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
