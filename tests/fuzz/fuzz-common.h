/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the fuzz harnesses: a reader over the fuzz input that never
 * fails (it yields zeros once the input is used up), and the invariant
 * checks every harness asserts. A violated invariant aborts, so that
 * libFuzzer records the input as a crash and the regression runner fails.
 */
#ifndef KVMNC_FUZZ_COMMON_H
#define KVMNC_FUZZ_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake-kernel.h"
#include "internal.h"

/* libFuzzer's entry point, also called by standalone-main.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fz_u8(struct fuzz_in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static inline uint16_t fz_u16(struct fuzz_in *in)
{
	uint16_t v = fz_u8(in);

	return (uint16_t)(v | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t fz_u32(struct fuzz_in *in)
{
	uint32_t v = fz_u16(in);

	return v | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(struct fuzz_in *in)
{
	uint64_t v = fz_u32(in);

	return v | (uint64_t)fz_u32(in) << 32;
}

/* Copies up to @len input bytes into @dst, zero-fills the rest. */
static inline void fz_bytes(struct fuzz_in *in, void *dst, size_t len)
{
	size_t n = len < in->left ? len : in->left;

	memcpy(dst, in->p, n);
	memset((char *)dst + n, 0, len - n);
	in->p += n;
	in->left -= n;
}

static inline __attribute__((noreturn)) void fz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
	abort();
}

/* Not assert(): the checks must stay in a -DNDEBUG build. */
#define FZ_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fz_fail(__FILE__, __LINE__, #cond);                                        \
	} while (0)

/* kvmnc_strerror() has a text for whatever the library returned. */
static inline void fz_check_strerror(int r)
{
	const char *s = kvmnc_strerror(r);

	FZ_CHECK(s != NULL && s[0] != '\0');
}

/*
 * Every entry point returns 0, a positive value or a negative errno; those
 * that return no count return 0 or a negative errno.
 */
#define FZ_ERRNO_MAX 4095
#define FZ_CHECK_RET0(r)                                                                           \
	do {                                                                                       \
		FZ_CHECK((r) <= 0 && (r) >= -FZ_ERRNO_MAX);                                        \
		fz_check_strerror(r);                                                              \
	} while (0)

/* Errnos a kernel call can fail with, for fault injection. */
static const int fz_errnos[] = {
	EINTR,	ENOMEM, EMFILE, ENFILE, EIO,	EINVAL, ENOTTY, EBADF,	EPERM, EACCES, ENOENT,
	ENODEV, ENXIO,	EFAULT, EAGAIN, ENOSPC, EEXIST, E2BIG,	EPROTO, EBUSY, ENOSYS, EOPNOTSUPP,
};

static inline int fz_errno(struct fuzz_in *in)
{
	return fz_errnos[fz_u8(in) % (sizeof(fz_errnos) / sizeof(fz_errnos[0]))];
}

/* A mechanism status as documented: 1, 0 or a negative errno, and a C string reason. */
static inline void fz_check_status(const struct kvmnc_mech_status *st)
{
	FZ_CHECK(st->supported <= 1 && st->supported >= -FZ_ERRNO_MAX);
	FZ_CHECK(memchr(st->reason, '\0', sizeof(st->reason)) != NULL);
}

/* A features struct the library filled in for a caller whose struct is @sz bytes. */
static inline void fz_check_features(const struct kvmnc_features *f, size_t sz)
{
	const unsigned char *b = (const unsigned char *)f;

	FZ_CHECK(f->sz == sz);
	/* Bytes a newer caller knows and the library does not read as zero. */
	for (size_t i = sizeof(*f); i < sz; i++)
		FZ_CHECK(b[i] == 0);
	if (sz < sizeof(*f))
		return;
	fz_check_status(&f->native);
	fz_check_status(&f->memslot_flag);
	fz_check_status(&f->virtio_device);
	fz_check_status(&f->guest_pat_quirk);
	FZ_CHECK(f->recommended >= KVMNC_MECH_NONE && f->recommended <= KVMNC_MECH_GUEST_PAT_QUIRK);
	FZ_CHECK(kvmnc_mechanism_name(f->recommended) != NULL);
	FZ_CHECK(memchr(f->kernel_release, '\0', sizeof(f->kernel_release)) != NULL);
	FZ_CHECK(memchr(f->cpu_vendor, '\0', sizeof(f->cpu_vendor)) != NULL);
	FZ_CHECK(f->self_snoop >= -1 && f->self_snoop <= 1);
	FZ_CHECK(f->tdp <= 1 && f->tdp >= -FZ_ERRNO_MAX);
	FZ_CHECK(f->memslot_flag_cap == 0 || f->memslot_flag_cap == 236 ||
		 f->memslot_flag_cap == 239 || f->memslot_flag_cap == 250);
	FZ_CHECK(f->virtio_device_type == 0 || f->virtio_device_type == 32 ||
		 f->virtio_device_type == 17 || f->virtio_device_type == 12);
	/* Since 1.3: WBINVD emulation, named by the capability only when it is "yes". */
	fz_check_status(&f->wbinvd_emulation);
	FZ_CHECK(f->wbinvd_emulation_cap == (f->wbinvd_emulation.supported == 1 ? 251u : 0u));
	FZ_CHECK(kvmnc_reason_name((int)f->wbinvd_emulation_reason) != NULL);
}

/* The log callback checks that each message is a C string of sane length. */
static inline void fz_log(int level, const char *msg, void *ctx)
{
	(void)ctx;
	FZ_CHECK(level >= KVMNC_LOG_ERROR && level <= KVMNC_LOG_DEBUG);
	FZ_CHECK(msg != NULL && strlen(msg) < 512);
}

#endif /* KVMNC_FUZZ_COMMON_H */
