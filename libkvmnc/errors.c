// SPDX-License-Identifier: LGPL-2.1-or-later
/* The texts of the errnos the library returns, and which meaning one had. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "internal.h"

/* The meaning of the last error the library returned in this thread (kvmnc_err()). */
static __thread int last_err;
static __thread const char *last_meaning;

int kvmnc_err(int err, const char *meaning)
{
	last_err = err;
	last_meaning = meaning;
	return err;
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
