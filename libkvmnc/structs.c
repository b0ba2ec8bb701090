// SPDX-License-Identifier: LGPL-2.1-or-later
/* Caller structs that carry their own size (libbpf's OPTS pattern). */
#include <errno.h>
#include <string.h>

#include "internal.h"

int kvmnc_struct_in(void *dst, size_t known, const void *src, size_t min_sz)
{
	size_t sz = *(const size_t *)src;

	if (sz < min_sz || sz < sizeof(size_t))
		return -EINVAL;
	/* Bounded before anything past sz is read, as openat2() bounds usize. */
	if (sz > KVMNC_STRUCT_MAX)
		return -E2BIG;
	for (size_t i = known; i < sz; i++)
		if (((const unsigned char *)src)[i])
			return -E2BIG;
	memset(dst, 0, known);
	memcpy(dst, src, sz < known ? sz : known);
	return 0;
}

int kvmnc_struct_out_ok(const void *dst)
{
	size_t sz = *(const size_t *)dst;

	if (sz < sizeof(size_t))
		return -EINVAL;
	return sz > KVMNC_STRUCT_MAX ? -E2BIG : 0;
}

void kvmnc_struct_out(void *dst, const void *src, size_t src_sz)
{
	size_t dst_sz = *(size_t *)dst;
	size_t n = dst_sz < src_sz ? dst_sz : src_sz;

	/* A newer caller's fields we do not know read as zero. */
	memcpy(dst, src, n);
	if (dst_sz > n)
		memset((char *)dst + n, 0, dst_sz - n);
	*(size_t *)dst = dst_sz;
}
