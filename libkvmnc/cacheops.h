/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cache maintenance for memory that a device reads or writes without
 * snooping the CPU caches. Internal to the library; not installed.
 *
 * The instructions are chosen once per process from CPUID, read through the
 * system-call seam (internal.h), and cached:
 *   invalidate (read side, kvmnc_cache_flush): CLFLUSHOPT, else CLFLUSH
 *   write back (write side, kvmnc_cache_writeback): CLWB, else CLFLUSHOPT,
 *     else CLFLUSH
 * x86-64 only for now. Elsewhere, or on an x86 CPU without CLFLUSH, or when
 * CPUID cannot be executed, every call answers -EOPNOTSUPP (whatever the
 * length): nothing is ever skipped silently.
 *
 * Common rules for every call below:
 *   - Returns 0, -EINVAL (NULL with a non-zero length, a range that wraps
 *     the address space, overlapping copy buffers), -EOPNOTSUPP, or the
 *     seam's error if CPUID failed for another reason (not cached; the
 *     next call asks again).
 *   - Zero length: nothing is touched; 0 where the engine is supported.
 *   - Only bytes inside the given ranges are written. Cache instructions
 *     act on whole lines, which may hold bytes outside a range: those lines
 *     are written back (contents unchanged) or dropped after being written
 *     back, never modified. Every address used lies inside the range, so a
 *     call faults only where a memcpy of the same range would.
 *   - The caller must make sure the device has finished (writes) or has not
 *     started (reads) accessing the range; nothing here synchronises with
 *     the device itself.
 */
#ifndef KVMNC_CACHEOPS_H
#define KVMNC_CACHEOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kvmnc_cache_insn {
	KVMNC_CACHE_NONE = 0,
	KVMNC_CACHE_CLFLUSH,
	KVMNC_CACHE_CLFLUSHOPT,
	KVMNC_CACHE_CLWB,
};

struct kvmnc_cache_info {
	enum kvmnc_cache_insn inval; /* read side and kvmnc_cache_flush */
	enum kvmnc_cache_insn wb;    /* write side's partial lines, kvmnc_cache_writeback */
	uint32_t line;		     /* bytes per line the loops step by */
	bool nt_stores;		     /* write side's whole lines: non-temporal stores */
};

/*
 * What the engine uses on this CPU. Fills @out in every case (NONE, line 0
 * when unsupported) and returns 0 or the error the operations would return.
 */
int kvmnc_cache_info(struct kvmnc_cache_info *out);
const char *kvmnc_cache_insn_name(enum kvmnc_cache_insn insn);
/* What kvmnc_cache_info() returns, without filling anything: one atomic load once selected. */
int kvmnc_cache_ready(void);

/*
 * The selection, for the inline check below (cacheops.c owns it): 0 not
 * selected yet, else KVMNC_CACHE_ST_VALID with the instructions in the low
 * bits, KVMNC_CACHE_NONE in the lowest four when there are none.
 */
#define KVMNC_CACHE_ST_VALID (1u << 31)
extern uint32_t kvmnc_cache_state;

/* kvmnc_cache_ready() == 0 once selected; false also when not selected yet. */
static inline bool kvmnc_cache_usable(void)
{
	uint32_t st = __atomic_load_n(&kvmnc_cache_state, __ATOMIC_ACQUIRE);

	return (st & KVMNC_CACHE_ST_VALID) && (st & 0xf) != KVMNC_CACHE_NONE;
}

/*
 * Read side: the device wrote [src, src + len) without snooping; copy it to
 * @dst without reading stale cached lines. Each line of the source is
 * invalidated, then an MFENCE completes the invalidation before any load
 * of it, then the bytes are copied (in chunks, the invalidation of the
 * next chunk overlapping the copy of this one, spread through it with
 * CLFLUSHOPT). @dst is ordinary memory:
 * below 1 MiB it is written with ordinary stores and stays cached; from
 * 1 MiB on, like a large memcpy, with non-temporal stores, followed by an
 * SFENCE. On return @dst holds what memory held when the call began,
 * provided the device's writes had reached memory by then, and the stores
 * to @dst are ordered before the caller's later stores.
 */
int kvmnc_cache_copy_read(void *dst, const void *src, size_t len);

/*
 * Write side: copy @src to [dst, dst + len) so that a device reading
 * without snooping sees it. Whole 64-byte blocks of @dst are written with
 * non-temporal stores (they bypass the caches and evict cached copies;
 * from 16 KiB on in four interleaved streams 4 KiB apart);
 * the partial blocks at either end are written normally and then written
 * back line by line. A final SFENCE drains all of it: on return the data is
 * in memory, and any store the caller makes afterwards (a doorbell, an
 * MMIO write, a wake-up) becomes visible only after it.
 */
int kvmnc_cache_copy_write(void *dst, const void *src, size_t len);

/*
 * Write back and invalidate every line of [addr, addr + len), then MFENCE:
 * on return the range is in memory and its lines were dropped from every
 * cache, before any later load or store of this thread (prefetchers may
 * bring clean copies back, which then match memory). Use before handing
 * memory to a device that reads it, or before reading what it wrote.
 *
 * Every call here touches the range like a read (cache instructions check
 * permissions and take page faults as loads do): call it only on memory
 * that is mapped, e.g. after UFFDIO_COPY has filled a post-copy page, never
 * on a page a userfaultfd would have to resolve.
 */
int kvmnc_cache_flush(const void *addr, size_t len);

/*
 * Write back every dirty line of [addr, addr + len) without necessarily
 * dropping it (CLWB where available), then SFENCE: on return the range is
 * in memory, and later stores are ordered after it. Enough when the CPU
 * wrote the memory and a device will read it (e.g. after UFFDIO_COPY).
 */
int kvmnc_cache_writeback(const void *addr, size_t len);

/*
 * Tests and benchmarks only. Selects again through the current seam and
 * returns what kvmnc_cache_info() then returns.
 */
int kvmnc_cache_reselect(void);

/*
 * Tests and benchmarks only: the engine's variants. Defaults (what the
 * measurements in bench/kvmnc-copy-bench.c --variants support): read_chunk
 * 256 KiB, pipelined, non-temporal write side, read_nt_min 1 MiB, four
 * streams, invalidations spread.
 *   read_chunk: bytes invalidated and copied per step (also the write
 *     side's step when write_nt is off); rounded up to a line
 *   read_pipeline: invalidate chunk k + 1 while chunk k is copied; off:
 *     invalidate, fence, copy, chunk after chunk
 *   write_nt: off: copy a chunk with memcpy, then write its lines back
 *   read_nt_min: read side copies of at least this many bytes write the
 *     destination with non-temporal stores (SIZE_MAX: never)
 *   streams: non-temporal copies of 16 KiB and more run as four
 *     interleaved streams 4 KiB apart; off: one stream, in order
 *   read_spread: with CLFLUSHOPT, pipelined and non-temporal, chunk k + 1's
 *     invalidations are spread through chunk k's copy; off: all before it
 * Returns -EINVAL (read_chunk 0) or 0; @old (may be NULL) gets the
 * previous values.
 */
struct kvmnc_cache_tuning {
	size_t read_chunk;
	bool read_pipeline;
	bool write_nt;
	size_t read_nt_min;
	bool streams;
	bool read_spread;
};
int kvmnc_cache_tune(const struct kvmnc_cache_tuning *t, struct kvmnc_cache_tuning *old);

/*
 * Tests only: when set, kvmnc_cache_copy_read() reports the order of its
 * steps, per chunk: INVAL, the bytes whose lines it has invalidated
 * (counted from where its invalidation loop actually got to); FENCE, the
 * MFENCE that completes every invalidation before it; COPY, a range of
 * the source about to be loaded. Every COPY must lie inside INVALs that
 * came before the latest FENCE. NULL (the default) costs one predictable
 * branch per chunk.
 */
enum kvmnc_cache_event {
	KVMNC_CACHE_EV_INVAL,
	KVMNC_CACHE_EV_FENCE,
	KVMNC_CACHE_EV_COPY,
};
extern void (*kvmnc_cache_trace)(enum kvmnc_cache_event ev, const void *p, size_t n);

#endif /* KVMNC_CACHEOPS_H */
