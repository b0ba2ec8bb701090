// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The cache-maintenance engine behind the migration helpers (cacheops.h).
 *
 * Ordering rules relied on (Intel SDM vol. 2 CLFLUSH/CLFLUSHOPT/CLWB, vol. 3
 * §9.2.2; AMD APM vol. 3): CLFLUSH, CLFLUSHOPT and CLWB are ordered after
 * older writes to the same line, so no fence is needed before them. Loads
 * are not ordered after any of them, so an MFENCE separates invalidating a
 * line from reading it. CLFLUSHOPT and CLWB are not ordered with younger
 * stores and non-temporal stores are weakly ordered: an SFENCE makes them
 * complete before the caller's next store.
 */
#include <errno.h>
#include <string.h>

#include "cacheops.h"
#include "internal.h"

#if defined(__x86_64__)
#define CACHE_X86 1
#include <emmintrin.h>
#else
#define CACHE_X86 0
#endif

#define NT_BLOCK 64 /* a write-combining buffer: the unit of a full NT write */

/*
 * The selection, packed into one word so that one atomic load gives all of
 * it: VALID, then the invalidate and write-back instructions, log2 of the
 * line size, and whether non-temporal stores are usable. 0: not selected.
 */
#define ST_VALID	  KVMNC_CACHE_ST_VALID
#define ST_NT		  (1u << 16)
#define ST_INVAL(st)	  ((enum kvmnc_cache_insn)((st)&0xf))
#define ST_WB(st)	  ((enum kvmnc_cache_insn)(((st) >> 4) & 0xf))
#define ST_LINE_SHIFT(st) (((st) >> 8) & 0xff)

uint32_t kvmnc_cache_state;

void (*kvmnc_cache_trace)(enum kvmnc_cache_event ev, const void *p, size_t n);

/* One predictable branch per chunk when no test listens. */
static inline void trace(enum kvmnc_cache_event ev, const void *p, size_t n)
{
	void (*fn)(enum kvmnc_cache_event, const void *, size_t) = kvmnc_cache_trace;

	if (__builtin_expect(fn != NULL, 0))
		fn(ev, p, n);
}

static size_t tune_chunk = 256 * 1024;
static bool tune_pipeline = true;
static bool tune_nt = true;
/*
 * From this length on the read side writes its destination with
 * non-temporal stores, as glibc's memcpy does from 3/4 of a thread's share
 * of the L3 (0.5 to 2 MiB on current servers): such a destination mostly
 * leaves the caches before anyone reads it, and ordinary stores would
 * first read every line for ownership and later write it back. Measured
 * here (kvmnc-copy-bench --variants): a 2 MiB read from 0.89 to 1.25
 * times memcpy's throughput.
 */
static size_t tune_read_nt = 1u << 20;
/*
 * The streaming copy's body runs as STREAMS interleaved streams 4 KiB
 * apart, STREAM_STEP bytes of each in turn, as glibc's memcpy does above
 * its non-temporal threshold: each stream is one 4 KiB page for the L2
 * streamer, which then has four pages in flight instead of one
 * (kvmnc-copy-bench --variants compares; figures in docs/migration.md).
 */
#define STREAMS	    4
#define STREAM_DIST 4096
#define STREAM_STEP 128
static bool tune_streams = true;
/*
 * With CLFLUSHOPT, the read side spreads the next chunk's invalidations
 * through the copy of this one (two lines per 128 bytes copied) instead of
 * issuing them all before it: the core's fill buffers, which the
 * invalidations, the loads and the non-temporal stores all occupy, then
 * serve the three kinds together. CLFLUSH is ordered with stores, so
 * spreading it would stall every non-temporal store: it keeps the batch.
 */
static bool tune_spread = true;

#define CPUID_1_EDX_CLFLUSH    (1u << 19)
#define CPUID_7_EBX_CLFLUSHOPT (1u << 23)
#define CPUID_7_EBX_CLWB       (1u << 24)

/*
 * Leaf 1 EBX[15:8] is the CLFLUSH line size in 8-byte units. An answer that
 * is not a power of two in [16, 4096] (some hypervisors report 0) falls
 * back to 32: stepping by less than the real line only repeats work, while
 * stepping by more would skip lines.
 */
static unsigned int line_shift(uint32_t ebx)
{
	uint32_t line = ((ebx >> 8) & 0xff) * 8;

	if (line < 16 || line > 4096 || (line & (line - 1)))
		line = 32;
	return (unsigned int)__builtin_ctz(line);
}

/* The new state word, 0 with *err set when CPUID could not be read. */
static uint32_t select_insns(int *err)
{
	uint32_t r0[4], r1[4], r7[4];
	uint32_t inval = KVMNC_CACHE_CLFLUSH, wb = KVMNC_CACHE_CLFLUSH;
	int r;

	*err = 0;
	if (!CACHE_X86)
		return ST_VALID;
	r = SYS(cpuid, 0, 0, r0);
	if (r == 0 && r0[0] >= 1)
		r = SYS(cpuid, 1, 0, r1);
	else if (r == 0)
		return ST_VALID; /* no leaf 1: nothing to go on */
	if (r == -EOPNOTSUPP)
		return ST_VALID;
	if (r < 0) {
		*err = r;
		return 0;
	}
	if (!(r1[3] & CPUID_1_EDX_CLFLUSH))
		return ST_VALID;
	if (r0[0] >= 7) {
		r = SYS(cpuid, 7, 0, r7);
		if (r < 0 && r != -EOPNOTSUPP) {
			*err = r;
			return 0;
		}
		if (r == 0 && (r7[1] & CPUID_7_EBX_CLFLUSHOPT))
			inval = wb = KVMNC_CACHE_CLFLUSHOPT;
		if (r == 0 && (r7[1] & CPUID_7_EBX_CLWB))
			wb = KVMNC_CACHE_CLWB;
	}
	/* SSE2 (MOVNTDQ) is part of x86-64 itself. */
	return ST_VALID | ST_NT | line_shift(r1[1]) << 8 | wb << 4 | inval;
}

/* The cached state; 0 (and *err) when CPUID failed and nothing was cached. */
static uint32_t get_state(int *err)
{
	uint32_t st = __atomic_load_n(&kvmnc_cache_state, __ATOMIC_ACQUIRE);

	*err = 0;
	if (st)
		return st;
	/* Racing selections compute the same word; either store is right. */
	st = select_insns(err);
	if (st)
		__atomic_store_n(&kvmnc_cache_state, st, __ATOMIC_RELEASE);
	return st;
}

static int state_err(uint32_t st, int err)
{
	if (!st)
		return err;
	return ST_INVAL(st) == KVMNC_CACHE_NONE ? -EOPNOTSUPP : 0;
}

int kvmnc_cache_info(struct kvmnc_cache_info *out)
{
	int err;
	uint32_t st = get_state(&err);

	memset(out, 0, sizeof(*out));
	err = state_err(st, err);
	if (err)
		return err;
	out->inval = ST_INVAL(st);
	out->wb = ST_WB(st);
	out->line = 1u << ST_LINE_SHIFT(st);
	out->nt_stores = st & ST_NT;
	return 0;
}

int kvmnc_cache_ready(void)
{
	int err;
	uint32_t st = get_state(&err);

	return state_err(st, err);
}

int kvmnc_cache_reselect(void)
{
	struct kvmnc_cache_info info;

	__atomic_store_n(&kvmnc_cache_state, 0, __ATOMIC_RELEASE);
	return kvmnc_cache_info(&info);
}

const char *kvmnc_cache_insn_name(enum kvmnc_cache_insn insn)
{
	switch (insn) {
	case KVMNC_CACHE_NONE:
		return "none";
	case KVMNC_CACHE_CLFLUSH:
		return "clflush";
	case KVMNC_CACHE_CLFLUSHOPT:
		return "clflushopt";
	case KVMNC_CACHE_CLWB:
		return "clwb";
	}
	return "?";
}

int kvmnc_cache_tune(const struct kvmnc_cache_tuning *t, struct kvmnc_cache_tuning *old)
{
	if (old) {
		old->read_chunk = __atomic_load_n(&tune_chunk, __ATOMIC_RELAXED);
		old->read_pipeline = __atomic_load_n(&tune_pipeline, __ATOMIC_RELAXED);
		old->write_nt = __atomic_load_n(&tune_nt, __ATOMIC_RELAXED);
		old->read_nt_min = __atomic_load_n(&tune_read_nt, __ATOMIC_RELAXED);
		old->streams = __atomic_load_n(&tune_streams, __ATOMIC_RELAXED);
		old->read_spread = __atomic_load_n(&tune_spread, __ATOMIC_RELAXED);
	}
	if (!t)
		return 0;
	if (!t->read_chunk)
		return -EINVAL;
	__atomic_store_n(&tune_chunk, t->read_chunk, __ATOMIC_RELAXED);
	__atomic_store_n(&tune_pipeline, t->read_pipeline, __ATOMIC_RELAXED);
	__atomic_store_n(&tune_nt, t->write_nt, __ATOMIC_RELAXED);
	__atomic_store_n(&tune_read_nt, t->read_nt_min, __ATOMIC_RELAXED);
	__atomic_store_n(&tune_streams, t->streams, __ATOMIC_RELAXED);
	__atomic_store_n(&tune_spread, t->read_spread, __ATOMIC_RELAXED);
	return 0;
}

/*
 * The read side's invalidations spread through a copy: @lines lines still
 * to be invalidated, the first at @next (the range's start), every later
 * one at the start of the line after it. A count rather than an end
 * address, so that the step past the last line may wrap without effect.
 */
struct inval {
	uintptr_t next;
	size_t lines;
	uintptr_t mask; /* bytes per line - 1 */
};

/* The lines still to invalidate in [p, p + n), n > 0. */
static struct inval inval_init(const char *p, size_t n, uint32_t st)
{
	uintptr_t a = (uintptr_t)p;
	unsigned int shift = ST_LINE_SHIFT(st);

	return (struct inval){
		.next = a,
		.lines = (size_t)(((a + n - 1) >> shift) - (a >> shift)) + 1,
		.mask = ((uintptr_t)1 << shift) - 1,
	};
}

/*
 * Bytes of [p, end) whose lines @iv (started at p) has invalidated, from
 * where its loop got to (for the trace): a wrong count shows as a gap.
 * Past @end, or wrapped past the top of the address space: all of it.
 */
static size_t inval_done(const struct inval *iv, const char *p, const char *end)
{
	uintptr_t a = (uintptr_t)p, e = (uintptr_t)end;

	return iv->next >= e || iv->next < a ? (size_t)(e - a) : (size_t)(iv->next - a);
}

#if CACHE_X86
/*
 * The "+m" operand is a byte inside the caller's range: the compiler keeps
 * the instruction in order with the copy's accesses to that memory, and the
 * address never leaves the range.
 */
#define LINE_LOOP(insn, a, first, last, line)                                                      \
	do {                                                                                       \
		__asm__ volatile(insn " %0" : "+m"(*(volatile char *)(a)));                        \
		for (uintptr_t x_ = (first) + (line); x_ <= (last); x_ += (line))                  \
			__asm__ volatile(insn " %0" : "+m"(*(volatile char *)x_));                 \
	} while (0)

/* Issues @insn on every line of [p, p + n), n > 0, without any fence. */
static void lines(enum kvmnc_cache_insn insn, const void *p, size_t n, uint32_t st)
{
	uintptr_t mask = ((uintptr_t)1 << ST_LINE_SHIFT(st)) - 1;
	uintptr_t a = (uintptr_t)p;
	uintptr_t first = a & ~mask, last = (a + n - 1) & ~mask;

	switch (insn) {
	case KVMNC_CACHE_CLWB:
		LINE_LOOP("clwb", a, first, last, mask + 1);
		break;
	case KVMNC_CACHE_CLFLUSHOPT:
		LINE_LOOP("clflushopt", a, first, last, mask + 1);
		break;
	case KVMNC_CACHE_CLFLUSH:
		LINE_LOOP("clflush", a, first, last, mask + 1);
		break;
	case KVMNC_CACHE_NONE:
		break;
	}
}

static inline void mfence(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

static inline void sfence(void)
{
	__asm__ volatile("sfence" ::: "memory");
}

/*
 * Invalidates (CLFLUSHOPT) the next line of the range, if any is left. The
 * copy loops keep the three fields in registers (a struct in memory would
 * add loads and stores to the stack between the non-temporal stores).
 */
static inline void inval_next(uintptr_t *next, size_t *left, uintptr_t mask)
{
	if (*left) {
		__asm__ volatile("clflushopt %0" : "+m"(*(volatile char *)*next));
		*next = (*next | mask) + 1;
		(*left)--;
	}
}

/* Invalidates every line left in @iv. */
static void inval_rest(struct inval *iv)
{
	while (iv->lines)
		inval_next(&iv->next, &iv->lines, iv->mask);
}

/* One NT_BLOCK: four 16-byte loads, four non-temporal stores. */
static inline void block_nt(char *d, const char *s)
{
	__m128i a = _mm_loadu_si128((const __m128i *)s);
	__m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
	__m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
	__m128i e = _mm_loadu_si128((const __m128i *)(s + 48));

	_mm_stream_si128((__m128i *)d, a);
	_mm_stream_si128((__m128i *)(d + 16), b);
	_mm_stream_si128((__m128i *)(d + 32), c);
	_mm_stream_si128((__m128i *)(d + 48), e);
}

/*
 * @d is NT_BLOCK-aligned and @n a multiple of NT_BLOCK. Whole blocks of
 * STREAMS * STREAM_DIST bytes go as interleaved streams (tune_streams),
 * each stream's source prefetched two steps ahead; the rest in order,
 * prefetched 1 KiB ahead (about 10% more throughput from 2 to 256 MiB
 * than no prefetch, on an AMD EPYC). Loads stay inside [s, s + n). A
 * prefetch never faults, and one that lands past the range or in the read
 * side's next chunk (invalidated before it is read, see
 * kvmnc_cache_copy_read) changes no result. @iv (may be NULL): lines to
 * invalidate along the way, two per 128 bytes copied; what is left of it
 * when the copy ends stays for the caller.
 */
#define NT_PREFETCH 1024

static void copy_nt(char *d, const char *s, size_t n, struct inval *iv)
{
	const size_t blk = STREAMS * STREAM_DIST;
	/* No @iv: nothing left to invalidate, and no branch on it in the loops. */
	uintptr_t next = iv ? iv->next : 0, mask = iv ? iv->mask : 0;
	size_t left = iv ? iv->lines : 0;

	if (__atomic_load_n(&tune_streams, __ATOMIC_RELAXED)) {
		for (; n >= blk; n -= blk, d += blk, s += blk) {
			for (size_t i = 0; i < STREAM_DIST; i += STREAM_STEP) {
				for (size_t k = 0; k < STREAMS; k++) {
					size_t o = k * STREAM_DIST + i;

					for (size_t b = 0; b < STREAM_STEP; b += NT_BLOCK)
						inval_next(&next, &left, mask);
					_mm_prefetch((const char *)((uintptr_t)s + o + STREAM_STEP),
						     _MM_HINT_T0);
					_mm_prefetch(
						(const char *)((uintptr_t)s + o + 2 * STREAM_STEP),
						_MM_HINT_T0);
					for (size_t b = 0; b < STREAM_STEP; b += NT_BLOCK)
						block_nt(d + o + b, s + o + b);
				}
			}
		}
	}
	for (; n; n -= NT_BLOCK, d += NT_BLOCK, s += NT_BLOCK) {
		inval_next(&next, &left, mask);
		_mm_prefetch((const char *)((uintptr_t)s + NT_PREFETCH), _MM_HINT_T0);
		block_nt(d, s);
	}
	if (iv) {
		iv->next = next;
		iv->lines = left;
	}
}
#else
static void lines(enum kvmnc_cache_insn insn, const void *p, size_t n, uint32_t st)
{
	/* Unreachable: the state never names an instruction here. */
	(void)insn;
	(void)p;
	(void)n;
	(void)st;
}

static inline void mfence(void)
{
}

static inline void sfence(void)
{
}

static void inval_rest(struct inval *iv)
{
	/* Unreachable as well. */
	(void)iv;
}

static void copy_nt(char *d, const char *s, size_t n, struct inval *iv)
{
	(void)iv;
	memcpy(d, s, n);
}
#endif

static bool bad_range(const void *p, size_t len)
{
	return (!p && len) || (uintptr_t)p + len < (uintptr_t)p;
}

static int check_copy(const void *dst, const void *src, size_t len)
{
	uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;

	if (bad_range(dst, len) || bad_range(src, len))
		return -EINVAL;
	if (len && d < s + len && s < d + len)
		return -EINVAL;
	return 0;
}

/* Checks, selects; >0: go on with *st; otherwise the return value. */
static int begin(uint32_t *st, size_t len)
{
	int err;

	*st = get_state(&err);
	err = state_err(*st, err);
	if (err)
		return err;
	return len ? 1 : 0;
}

/* The step: the tuned chunk, a whole number of lines. */
static size_t chunk_size(uint32_t st)
{
	size_t line = (size_t)1 << ST_LINE_SHIFT(st);
	size_t c = __atomic_load_n(&tune_chunk, __ATOMIC_RELAXED);

	return c > SIZE_MAX - line ? SIZE_MAX & ~(line - 1) : (c + line - 1) & ~(line - 1);
}

/* End of the chunk that starts at @p: the next line-aligned step, or @end. */
static const char *chunk_end(const char *p, const char *end, size_t chunk, uint32_t st)
{
	uintptr_t mask = ((uintptr_t)1 << ST_LINE_SHIFT(st)) - 1;
	uintptr_t base = (uintptr_t)p & ~mask;
	size_t step = chunk - (size_t)((uintptr_t)p - base);

	/* Chunk edges on line boundaries, so no line is invalidated twice. */
	return step >= (size_t)(end - p) ? end : p + step;
}

/*
 * Copies with non-temporal stores for the whole NT_BLOCKs of @d and
 * ordinary stores for the partial blocks at the ends; @wb writes those
 * back (the write side). @iv as for copy_nt(). No fence.
 */
static void copy_stream(char *d, const char *s, size_t len, bool wb, uint32_t st, struct inval *iv)
{
	size_t head = (size_t)(-(uintptr_t)d & (NT_BLOCK - 1)), body, tail;

	if (head > len)
		head = len;
	body = (len - head) & ~(size_t)(NT_BLOCK - 1);
	tail = len - head - body;
	if (head) {
		memcpy(d, s, head);
		if (wb)
			lines(ST_WB(st), d, head, st);
	}
	copy_nt(d + head, s + head, body, iv);
	if (tail) {
		memcpy(d + head + body, s + head + body, tail);
		if (wb)
			lines(ST_WB(st), d + head + body, tail, st);
	}
}

/* The read side's copy of one chunk; see tune_read_nt. @iv only when @nt. */
static void read_chunk(char *d, const char *s, size_t n, bool nt, uint32_t st, struct inval *iv)
{
	trace(KVMNC_CACHE_EV_COPY, s, n);
	if (nt)
		copy_stream(d, s, n, false, st, iv);
	else
		memcpy(d, s, n);
}

/* Invalidates every line of [p, p + n), n > 0, without a fence. */
static void inval_range(enum kvmnc_cache_insn insn, const char *p, size_t n, uint32_t st)
{
	lines(insn, p, n, st);
	trace(KVMNC_CACHE_EV_INVAL, p, n);
}

static void fence_inval(void)
{
	mfence();
	trace(KVMNC_CACHE_EV_FENCE, NULL, 0);
}

/* Checks the buffers, selects; >0: go on with *st; otherwise the return value. */
static int begin_copy(const void *dst, const void *src, size_t len, uint32_t *st)
{
	int r = check_copy(dst, src, len);

	return r ? r : begin(st, len);
}

/*
 * Chunk by chunk: chunk k + 1's lines are invalidated while chunk k is
 * copied (spread through the copy, or all before it), then an MFENCE, so
 * that no load of chunk k + 1 can pass its invalidation. A chunk is never
 * read before the fence that follows its last invalidation; the tests
 * check that order through kvmnc_cache_trace.
 */
int kvmnc_cache_copy_read(void *dst, const void *src, size_t len)
{
	const char *s = src, *end, *c0, *c1;
	char *d = dst;
	enum kvmnc_cache_insn insn;
	bool nt, pipe, spread;
	size_t chunk;
	uint32_t st;
	int r;

	r = begin_copy(dst, src, len, &st);
	if (r <= 0)
		return r;
	end = s + len;
	insn = ST_INVAL(st);
	chunk = chunk_size(st);
	nt = (st & ST_NT) && len >= __atomic_load_n(&tune_read_nt, __ATOMIC_RELAXED);
	pipe = __atomic_load_n(&tune_pipeline, __ATOMIC_RELAXED);
	spread = pipe && nt && insn == KVMNC_CACHE_CLFLUSHOPT &&
		 __atomic_load_n(&tune_spread, __ATOMIC_RELAXED);
	c0 = s;
	c1 = chunk_end(c0, end, chunk, st);
	if (pipe) {
		inval_range(insn, c0, (size_t)(c1 - c0), st);
		fence_inval();
	}
	while (c0 < end) {
		const char *c2 = c1 < end ? chunk_end(c1, end, chunk, st) : end;
		struct inval iv = {0};

		if (c1 < end)
			iv = inval_init(c1, (size_t)(c2 - c1), st);
		if (!pipe) {
			inval_range(insn, c0, (size_t)(c1 - c0), st);
			fence_inval();
		} else if (c1 < end && !spread) {
			/* The next chunk's lines drain while this one is copied. */
			inval_range(insn, c1, (size_t)(c2 - c1), st);
		}
		read_chunk(d + (c0 - s), c0, (size_t)(c1 - c0), nt, st,
			   spread && c1 < end ? &iv : NULL);
		if (pipe && c1 < end) {
			if (spread) {
				/* What the copy did not cover (its ends, a shorter chunk). */
				inval_rest(&iv);
				trace(KVMNC_CACHE_EV_INVAL, c1, inval_done(&iv, c1, c2));
			}
			fence_inval();
		}
		c0 = c1;
		c1 = c2;
	}
	/* Non-temporal stores are weakly ordered: complete them before returning. */
	if (nt)
		sfence();
	return 0;
}

int kvmnc_cache_copy_write(void *dst, const void *src, size_t len)
{
	const char *s = src;
	char *d = dst;
	uint32_t st;
	int r;

	r = begin_copy(dst, src, len, &st);
	if (r <= 0)
		return r;
	if (!(st & ST_NT) || !__atomic_load_n(&tune_nt, __ATOMIC_RELAXED)) {
		size_t chunk = chunk_size(st);

		/* Each chunk's write-backs drain while the next is copied. */
		for (size_t off = 0, n; off < len; off += n) {
			n = len - off < chunk ? len - off : chunk;

			memcpy(d + off, s + off, n);
			lines(ST_WB(st), d + off, n, st);
		}
		sfence();
		return 0;
	}
	copy_stream(d, s, len, true, st, NULL);
	sfence();
	return 0;
}

/* Invalidates (@inval) or writes back every line of the range, then fences. */
static int maintain(const void *addr, size_t len, bool inval)
{
	uint32_t st;
	int r;

	if (bad_range(addr, len))
		return -EINVAL;
	r = begin(&st, len);
	if (r <= 0)
		return r;
	lines(inval ? ST_INVAL(st) : ST_WB(st), addr, len, st);
	/* Invalidations must complete before later loads, write-backs before later stores. */
	if (inval)
		mfence();
	else
		sfence();
	return 0;
}

int kvmnc_cache_flush(const void *addr, size_t len)
{
	return maintain(addr, len, true);
}

int kvmnc_cache_writeback(const void *addr, size_t len)
{
	return maintain(addr, len, false);
}
