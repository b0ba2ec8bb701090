// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Live migration of non-coherent memory. A device that writes without
 * snooping leaves the CPU caches possibly holding stale lines for that
 * memory, and the host reads guest RAM through WB mappings. Reading such
 * memory coherently means invalidating its lines first; writing it for a
 * device means writing the lines back afterwards.
 *
 * What is non-coherent is what the VMM declared: registered non-coherent
 * regions (planned ones too: the VMM may be mapping them), and, while a
 * device model is enabled, any memory (it may DMA anywhere in the guest).
 * A VM-wide mechanism in force by itself declares nothing.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define CACHE_LINE 64
#define CHUNK	   (64 * 1024)

static bool overlaps_range(uint64_t start, uint64_t len, uint64_t rs, uint64_t rlen)
{
	return start < rs + rlen && rs < start + len;
}

bool kvmnc_range_noncoherent(const struct kvmnc *h, uint64_t start, uint64_t len)
{
	if (h->devs.n)
		return true;
	for (uint32_t i = 0; i < h->nc.n; i++) {
		const struct kvmnc_slot *s = kvmnc_table_at(&h->nc, i);

		if (overlaps_range(start, len, s->hva, s->size))
			return true;
	}
	for (uint32_t i = 0; i < h->pending.n; i++) {
		const struct kvmnc_pending *p = kvmnc_table_at(&h->pending, i);

		if (p->counts && overlaps_range(start, len, p->r.userspace_addr, p->r.memory_size))
			return true;
	}
	return false;
}

#if defined(__x86_64__) || defined(__i386__)
/* Write back and invalidate every line of [p, p + len). */
static void flush_lines(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(CACHE_LINE - 1);
	uintptr_t end = (uintptr_t)p + len;

	if (kvmnc_cpu_flush_insn() == KVMNC_FLUSH_CLFLUSHOPT) {
		for (; a < end; a += CACHE_LINE)
			__asm__ volatile("clflushopt %0" : "+m"(*(volatile char *)a));
	} else {
		/* CLFLUSH is ordered against writes by itself. */
		for (; a < end; a += CACHE_LINE)
			__asm__ volatile("clflush %0" : "+m"(*(volatile char *)a));
	}
	/* CLFLUSHOPT is weakly ordered: fence before the memory is used. */
	__asm__ volatile("mfence" ::: "memory");
}
#define HAVE_FLUSH 1
#else
#define HAVE_FLUSH 0
static void flush_lines(const void *p, size_t len)
{
	(void)p;
	(void)len;
}
#endif

static bool overlaps(const void *a, const void *b, size_t len)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return x < y + len && y < x + len;
}

static bool bad_range(const void *p, size_t len)
{
	return (!p && len) || (uintptr_t)p + len < (uintptr_t)p;
}

/* 1 when [addr, addr + len) needs cache maintenance, 0 not, negative errno. */
static int need_flush(struct kvmnc *h, const void *addr, size_t len)
{
	int r = kvmnc_handle_get(h);
	bool nc;

	if (r < 0)
		return r;
	nc = kvmnc_range_noncoherent(h, (uintptr_t)addr, len);
	kvmnc_handle_put(h);
	if (nc && !HAVE_FLUSH)
		return -EOPNOTSUPP;
	return nc;
}

KVMNC_API int kvmnc_is_noncoherent(struct kvmnc *h)
{
	int r = kvmnc_handle_get(h);

	if (r < 0)
		return r;
	r = h->nc.n || h->pending_nc || h->devs.n;
	kvmnc_handle_put(h);
	return r;
}

/*
 * Copies in chunks so that the lines flushed are still close by: before the
 * copy when reading guest memory (drop stale lines), after it when writing
 * (push the data out to memory).
 */
static int copy_coherent(struct kvmnc *h, void *dst, const void *src, size_t len, bool to_guest)
{
	int nc;

	if (bad_range(dst, len) || bad_range(src, len) || (len && overlaps(dst, src, len)))
		return -EINVAL;
	nc = need_flush(h, to_guest ? dst : src, len);
	if (nc <= 0) {
		if (nc == 0 && len)
			memcpy(dst, src, len);
		return nc;
	}
	for (size_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;

		if (!to_guest)
			flush_lines((const char *)src + off, n);
		memcpy((char *)dst + off, (const char *)src + off, n);
		if (to_guest)
			flush_lines((char *)dst + off, n);
	}
	return 0;
}

KVMNC_API int kvmnc_copy_from_guest(struct kvmnc *h, void *dst, const void *src, size_t len)
{
	return copy_coherent(h, dst, src, len, false);
}

KVMNC_API int kvmnc_copy_to_guest(struct kvmnc *h, void *dst, const void *src, size_t len)
{
	return copy_coherent(h, dst, src, len, true);
}

KVMNC_API int kvmnc_flush(struct kvmnc *h, const void *addr, size_t len)
{
	int nc;

	if (bad_range(addr, len))
		return -EINVAL;
	if (len == 0) {
		/* Still say whether the handle is open. */
		nc = kvmnc_handle_ref(h);
		if (nc == 0)
			kvmnc_handle_unref(h);
		return nc;
	}
	nc = need_flush(h, addr, len);
	if (nc > 0)
		flush_lines(addr, len);
	return nc < 0 ? nc : 0;
}
