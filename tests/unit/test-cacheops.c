// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The cache-maintenance engine: the instruction chosen for each CPUID answer
 * (through a CPUID stub in the seam), each choice executed on this host
 * where the host has the instruction, copies identical to memcpy at every
 * size class and alignment, no byte outside a range written, no fault at
 * the edge of a range, the streaming copy's edges, the read side's order
 * (no load before its line's invalidation is fenced), and the errors.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cacheops.h"
#include "internal.h"

#define GUARD	  128
#define BIG	  (2 * 1024 * 1024 + 17)
#define SRC_GUARD 0x5a
#define DST_GUARD 0xa5

/* What the CPUID stub answers. */
struct cpu_model {
	const char *name;
	int err;	   /* returned for every leaf when non-zero */
	uint32_t max_leaf; /* leaf 0 EAX */
	uint32_t edx1;	   /* leaf 1 EDX */
	uint32_t ebx1;	   /* leaf 1 EBX (line size in 15:8) */
	uint32_t ebx7;	   /* leaf 7 EBX */
	int err7;	   /* returned for leaf 7 only */
	/* What the engine must choose. */
	int want_err;
	enum kvmnc_cache_insn inval, wb;
	uint32_t line;
};

#define CLFLUSH_BIT (1u << 19)
#define OPT_BIT	    (1u << 23)
#define CLWB_BIT    (1u << 24)
#define LINE64	    (8u << 8)

static const struct cpu_model models[] = {
	{"clflush only", 0, 7, CLFLUSH_BIT, LINE64, 0, 0, 0, KVMNC_CACHE_CLFLUSH,
	 KVMNC_CACHE_CLFLUSH, 64},
	{"clflushopt", 0, 7, CLFLUSH_BIT, LINE64, OPT_BIT, 0, 0, KVMNC_CACHE_CLFLUSHOPT,
	 KVMNC_CACHE_CLFLUSHOPT, 64},
	{"clflushopt+clwb", 0, 7, CLFLUSH_BIT, LINE64, OPT_BIT | CLWB_BIT, 0, 0,
	 KVMNC_CACHE_CLFLUSHOPT, KVMNC_CACHE_CLWB, 64},
	{"clwb without clflushopt", 0, 7, CLFLUSH_BIT, LINE64, CLWB_BIT, 0, 0, KVMNC_CACHE_CLFLUSH,
	 KVMNC_CACHE_CLWB, 64},
	{"no cpuid", -EOPNOTSUPP, 0, 0, 0, 0, 0, -EOPNOTSUPP, KVMNC_CACHE_NONE, KVMNC_CACHE_NONE,
	 0},
	{"no clflush", 0, 7, 0, LINE64, OPT_BIT | CLWB_BIT, 0, -EOPNOTSUPP, KVMNC_CACHE_NONE,
	 KVMNC_CACHE_NONE, 0},
	{"max leaf 0", 0, 0, CLFLUSH_BIT, LINE64, OPT_BIT, 0, -EOPNOTSUPP, KVMNC_CACHE_NONE,
	 KVMNC_CACHE_NONE, 0},
	/* Leaf 7 is beyond the maximum: its bits must not be believed. */
	{"max leaf 1", 0, 1, CLFLUSH_BIT, LINE64, OPT_BIT | CLWB_BIT, 0, 0, KVMNC_CACHE_CLFLUSH,
	 KVMNC_CACHE_CLFLUSH, 64},
	{"leaf 7 unreadable", 0, 7, CLFLUSH_BIT, LINE64, OPT_BIT, -EOPNOTSUPP, 0,
	 KVMNC_CACHE_CLFLUSH, KVMNC_CACHE_CLFLUSH, 64},
	{"line size 0", 0, 7, CLFLUSH_BIT, 0, 0, 0, 0, KVMNC_CACHE_CLFLUSH, KVMNC_CACHE_CLFLUSH,
	 32},
	{"line size 48", 0, 7, CLFLUSH_BIT, 6u << 8, OPT_BIT, 0, 0, KVMNC_CACHE_CLFLUSHOPT,
	 KVMNC_CACHE_CLFLUSHOPT, 32},
	{"line size 128", 0, 7, CLFLUSH_BIT, 16u << 8, OPT_BIT, 0, 0, KVMNC_CACHE_CLFLUSHOPT,
	 KVMNC_CACHE_CLFLUSHOPT, 128},
	{"cpuid fails", -EIO, 7, 0, 0, 0, 0, -EIO, KVMNC_CACHE_NONE, KVMNC_CACHE_NONE, 0},
	{"leaf 7 fails", 0, 7, CLFLUSH_BIT, LINE64, OPT_BIT, -EIO, -EIO, KVMNC_CACHE_NONE,
	 KVMNC_CACHE_NONE, 0},
};

static const struct cpu_model *model;
static int cpuid_calls;
static struct kvmnc_sys stub_sys;

static int stub_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	(void)subleaf;
	__atomic_add_fetch(&cpuid_calls, 1, __ATOMIC_RELAXED);
	if (model->err)
		return model->err;
	/*
	 * Leaves past the maximum answer anyway, as on Intel CPUs (the highest
	 * basic leaf's data): the engine must check leaf 0 itself.
	 */
	memset(regs, 0, 4 * sizeof(uint32_t));
	if (leaf == 0) {
		regs[0] = model->max_leaf;
	} else if (leaf == 1) {
		regs[1] = model->ebx1;
		regs[3] = model->edx1;
	} else if (leaf == 7) {
		if (model->err7)
			return model->err7;
		regs[1] = model->ebx7;
	}
	return 0;
}

static void use_model(const struct cpu_model *m)
{
	model = m;
	stub_sys = kvmnc_sys_real;
	stub_sys.cpuid = stub_cpuid;
	kvmnc_sys = &stub_sys;
	cpuid_calls = 0;
}

static const struct cpu_model *find_model(const char *name)
{
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
		if (!strcmp(models[i].name, name))
			return &models[i];
	fail_msg("no model %s", name);
	return NULL;
}

/* The engine's defaults, read before any test changes them. */
static struct kvmnc_cache_tuning defaults;

static int restore(void **state)
{
	(void)state;
	kvmnc_sys = &kvmnc_sys_real;
	kvmnc_cache_reselect();
	kvmnc_cache_tune(&defaults, NULL);
	return 0;
}

/* Whether the real CPU runs what @m makes the engine use. */
static bool host_has(const struct cpu_model *m, const char **why)
{
	uint32_t r[4];
	bool opt = false, clwb = false, clflush = false;

	if (kvmnc_sys_real.cpuid(1, 0, r) == 0)
		clflush = r[3] & CLFLUSH_BIT;
	if (kvmnc_sys_real.cpuid(7, 0, r) == 0) {
		opt = r[1] & OPT_BIT;
		clwb = r[1] & CLWB_BIT;
	}
	*why = NULL;
	if ((m->inval == KVMNC_CACHE_CLFLUSH || m->wb == KVMNC_CACHE_CLFLUSH) && !clflush)
		*why = "this CPU (or valgrind's) has no CLFLUSH";
	if ((m->inval == KVMNC_CACHE_CLFLUSHOPT || m->wb == KVMNC_CACHE_CLFLUSHOPT) && !opt)
		*why = "this CPU (or valgrind's) has no CLFLUSHOPT";
	if (m->wb == KVMNC_CACHE_CLWB && !clwb)
		*why = "this CPU (or valgrind's) has no CLWB";
	return !*why;
}

/* Every model selects what it must, and each answer is cached. */
static void test_dispatch(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		const struct cpu_model *m = &models[i];
		struct kvmnc_cache_info info;
		int calls;

		use_model(m);
		print_message("model %s\n", m->name);
#if !defined(__x86_64__)
		/* Elsewhere the engine answers -EOPNOTSUPP without asking CPUID. */
		static const struct cpu_model none = {.want_err = -EOPNOTSUPP};
		m = &none;
#endif
		assert_int_equal(kvmnc_cache_reselect(), m->want_err);
		assert_int_equal(kvmnc_cache_info(&info), m->want_err);
		assert_int_equal(info.inval, m->inval);
		assert_int_equal(info.wb, m->wb);
		assert_int_equal(info.line, m->line);
		calls = cpuid_calls;
		if (m->want_err == 0 || m->want_err == -EOPNOTSUPP) {
			/* A definitive answer: later calls do not execute CPUID. */
			assert_int_equal(kvmnc_cache_info(&info), m->want_err);
			assert_int_equal(kvmnc_cache_flush(&info, 0), m->want_err);
			assert_int_equal(cpuid_calls, calls);
		} else {
			/* A failed CPUID is asked again, never cached as "unsupported". */
			assert_int_equal(kvmnc_cache_flush(&info, 0), m->want_err);
			assert_true(cpuid_calls > calls);
		}
		if (m->want_err == 0) {
#if defined(__x86_64__)
			assert_true(info.nt_stores);
#endif
		}
	}
}

/* After a failed CPUID, the next call selects without any hook. */
static void test_failure_not_cached(void **state)
{
	struct kvmnc_cache_info info;
	char buf[100];

	(void)state;
	use_model(find_model("cpuid fails"));
	kvmnc_cache_reselect();
	assert_int_equal(kvmnc_cache_copy_read(buf, buf + 50, 50), -EIO);
	use_model(find_model("clflush only"));
	assert_int_equal(kvmnc_cache_info(&info), 0);
	assert_int_equal(info.inval, KVMNC_CACHE_CLFLUSH);
}

/* Unsupported means -EOPNOTSUPP from every call, even for nothing to do. */
static void test_unsupported(void **state)
{
	char a[64], b[64];

	(void)state;
	use_model(find_model("no cpuid"));
	kvmnc_cache_reselect();
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	assert_int_equal(kvmnc_cache_copy_read(a, b, sizeof(a)), -EOPNOTSUPP);
	assert_int_equal(kvmnc_cache_copy_write(a, b, sizeof(a)), -EOPNOTSUPP);
	assert_int_equal(kvmnc_cache_flush(a, sizeof(a)), -EOPNOTSUPP);
	assert_int_equal(kvmnc_cache_writeback(a, sizeof(a)), -EOPNOTSUPP);
	assert_int_equal(kvmnc_cache_copy_read(a, b, 0), -EOPNOTSUPP);
	assert_int_equal(kvmnc_cache_flush(NULL, 0), -EOPNOTSUPP);
	/* And nothing was copied. */
	for (size_t i = 0; i < sizeof(a); i++)
		assert_int_equal(a[i], 1);
	/* Bad input is still bad input. */
	assert_int_equal(kvmnc_cache_copy_read(NULL, b, 1), -EINVAL);
}

static void test_bad_args(void **state)
{
	struct kvmnc_cache_tuning t = {0, true, true, 0, true, true}, old;
	char a[256];

	(void)state;
	kvmnc_cache_reselect();
	assert_int_equal(kvmnc_cache_copy_read(NULL, a, 1), -EINVAL);
	assert_int_equal(kvmnc_cache_copy_read(a, NULL, 1), -EINVAL);
	assert_int_equal(kvmnc_cache_copy_write(NULL, a, 1), -EINVAL);
	assert_int_equal(kvmnc_cache_copy_write(a, NULL, 1), -EINVAL);
	assert_int_equal(kvmnc_cache_flush(NULL, 1), -EINVAL);
	assert_int_equal(kvmnc_cache_writeback(NULL, 1), -EINVAL);
	/* Overlap, both ways, and exact. */
	assert_int_equal(kvmnc_cache_copy_read(a, a + 8, 16), -EINVAL);
	assert_int_equal(kvmnc_cache_copy_write(a + 8, a, 16), -EINVAL);
	assert_int_equal(kvmnc_cache_copy_write(a, a, 1), -EINVAL);
	/* Wrapping the address space. */
	assert_int_equal(kvmnc_cache_flush((const void *)(UINTPTR_MAX - 8), 16), -EINVAL);
	assert_int_equal(kvmnc_cache_copy_read(a, (const void *)(UINTPTR_MAX - 8), 16), -EINVAL);
	assert_int_equal(kvmnc_cache_copy_write((void *)(UINTPTR_MAX - 8), a, 16), -EINVAL);
	/* Zero length: nothing touched, NULL accepted; adjacent buffers are fine. */
	assert_int_equal(kvmnc_cache_copy_read(NULL, NULL, 0), 0);
	assert_int_equal(kvmnc_cache_copy_write(NULL, a, 0), 0);
	assert_int_equal(kvmnc_cache_flush(NULL, 0), 0);
	assert_int_equal(kvmnc_cache_writeback(NULL, 0), 0);
	assert_int_equal(kvmnc_cache_copy_read(a, a + 128, 128), 0);
	assert_int_equal(kvmnc_cache_tune(&t, &old), -EINVAL);
	assert_int_equal(old.read_chunk, defaults.read_chunk);
	assert_int_equal(old.read_pipeline, defaults.read_pipeline);
	assert_int_equal(old.write_nt, defaults.write_nt);
	assert_int_equal(old.read_nt_min, defaults.read_nt_min);
	assert_int_equal(old.streams, defaults.streams);
	assert_int_equal(old.read_spread, defaults.read_spread);
}

static void fill_random(unsigned char *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

/* Random bytes, generated once; each fill starts at a seed-dependent offset. */
#define PATTERN_SKEW 1021
static unsigned char *pattern;

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
	if (!pattern) {
		pattern = malloc(BIG + PATTERN_SKEW);
		assert_non_null(pattern);
		fill_random(pattern, BIG + PATTERN_SKEW, 1);
	}
	assert_true(n <= BIG);
	memcpy(p, pattern + seed % PATTERN_SKEW, n);
}

/* Source and destination guards differ, so a byte copied past the end shows. */
#define MAX_SPAN (GUARD + 64 + BIG + GUARD)
static unsigned char *guard_img[2];

static void check_guards(const unsigned char *p, size_t n, unsigned char guard)
{
	int k = guard == SRC_GUARD;

	if (!guard_img[k]) {
		guard_img[k] = malloc(MAX_SPAN);
		assert_non_null(guard_img[k]);
		memset(guard_img[k], guard, MAX_SPAN);
	}
	assert_true(n <= MAX_SPAN);
	if (!memcmp(p, guard_img[k], n))
		return;
	for (size_t i = 0; i < n; i++)
		if (p[i] != guard)
			fail_msg("guard byte %zu of %zu changed to 0x%02x", i, n, p[i]);
}

/*
 * Buffers: GUARD bytes, then 64 bytes of alignment slack, then the data,
 * then GUARD bytes; the allocations are line-aligned, so an offset of
 * 0..63 puts the data at that alignment within a line.
 */
struct bufs {
	unsigned char *src, *dst, *want;
	size_t cap;
};

static void bufs_init(struct bufs *b, size_t max)
{
	/* aligned_alloc() wants a multiple of the alignment. */
	b->cap = (GUARD + 64 + max + GUARD + 63) & ~(size_t)63;
	b->src = aligned_alloc(64, b->cap);
	b->dst = aligned_alloc(64, b->cap);
	b->want = malloc(b->cap);
	assert_non_null(b->src);
	assert_non_null(b->dst);
	assert_non_null(b->want);
}

static void bufs_free(struct bufs *b)
{
	free(b->src);
	free(b->dst);
	free(b->want);
}

enum op { OP_READ, OP_WRITE, OP_FLUSH, OP_WRITEBACK };

static const char *const op_names[] = {"copy_read", "copy_write", "flush", "writeback"};

/* One call of @op at the given alignments; checks content and guards. */
static void one(struct bufs *b, enum op op, size_t len, size_t soff, size_t doff, uint32_t seed)
{
	unsigned char *s = b->src + GUARD + soff, *d = b->dst + GUARD + doff;
	size_t span = GUARD + 64 + len + GUARD;
	int r = -1;

	memset(b->src, SRC_GUARD, span);
	memset(b->dst, DST_GUARD, span);
	fill(s, len, seed);
	memcpy(b->want, s, len);
	switch (op) {
	case OP_READ:
		r = kvmnc_cache_copy_read(d, s, len);
		break;
	case OP_WRITE:
		r = kvmnc_cache_copy_write(d, s, len);
		break;
	case OP_FLUSH:
		r = kvmnc_cache_flush(s, len);
		break;
	case OP_WRITEBACK:
		r = kvmnc_cache_writeback(s, len);
		break;
	}
	if (r != 0)
		fail_msg("%s len %zu src+%zu dst+%zu: %d", op_names[op], len, soff, doff, r);
	/* The source is never written, the destination holds exactly the copy. */
	check_guards(b->src, GUARD + soff, SRC_GUARD);
	if (memcmp(s, b->want, len))
		fail_msg("%s len %zu src+%zu changed the source", op_names[op], len, soff);
	check_guards(s + len, span - (GUARD + soff + len), SRC_GUARD);
	if (op == OP_FLUSH || op == OP_WRITEBACK) {
		check_guards(b->dst, span, DST_GUARD);
		return;
	}
	check_guards(b->dst, GUARD + doff, DST_GUARD);
	if (memcmp(d, b->want, len))
		fail_msg("%s len %zu src+%zu dst+%zu: copy differs from memcpy", op_names[op], len,
			 soff, doff);
	check_guards(d + len, span - (GUARD + doff + len), DST_GUARD);
}

static const size_t small_sizes[] = {0, 1, 63, 64, 65, 4095, 4096, 4097};

/*
 * Every size class. @full: every pair of source and destination alignments
 * within a line for the small sizes, and 64 pairs for the large one in
 * which each source and each destination alignment occurs once (37 is
 * odd). Otherwise those 64 pairs for the small sizes and 4 for the large:
 * the instruction paths do not depend on the alignment, the head and tail
 * handling does, and that runs in full with the host's selection.
 */
static void run_all_sizes(enum op op, bool full)
{
	struct bufs b;
	uint32_t seed = 1;

	bufs_init(&b, BIG);
	for (size_t k = 0; k < sizeof(small_sizes) / sizeof(small_sizes[0]); k++) {
		for (size_t so = 0; so < 64; so++) {
			if (!full) {
				one(&b, op, small_sizes[k], so, (so * 37 + 11) % 64, seed++);
				continue;
			}
			for (size_t dof = 0; dof < 64; dof++)
				one(&b, op, small_sizes[k], so, dof, seed++);
		}
	}
	for (size_t so = 0; so < 64; so += full ? 1 : 21)
		one(&b, op, BIG, so, (so * 37 + 11) % 64, seed++);
	bufs_free(&b);
}

/* All operations, at all sizes, with the current selection and tuning. */
static void run_all_ops(bool full)
{
	run_all_sizes(OP_READ, full);
	run_all_sizes(OP_WRITE, full);
	run_all_sizes(OP_FLUSH, full);
	run_all_sizes(OP_WRITEBACK, full);
}

/* Executes the choice @name makes on this CPU, if this CPU has it. */
static void exec_model(const char *name)
{
	const struct cpu_model *m = find_model(name);
	struct kvmnc_cache_info info;
	const char *why;

	if (!host_has(m, &why)) {
		print_message("skip: %s: %s\n", name, why);
		skip();
	}
	use_model(m);
	assert_int_equal(kvmnc_cache_reselect(), 0);
	assert_int_equal(kvmnc_cache_info(&info), 0);
	assert_int_equal(info.inval, m->inval);
	assert_int_equal(info.wb, m->wb);
	run_all_ops(false);
}

static void test_exec_clflush(void **state)
{
	(void)state;
	exec_model("clflush only");
}

static void test_exec_clflushopt(void **state)
{
	(void)state;
	exec_model("clflushopt");
}

static void test_exec_clwb(void **state)
{
	(void)state;
	exec_model("clflushopt+clwb");
}

static void test_exec_clwb_clflush(void **state)
{
	(void)state;
	exec_model("clwb without clflushopt");
}

/* A line stride smaller than the real line only repeats work. */
static void test_exec_short_line(void **state)
{
	(void)state;
	exec_model("line size 0");
}

/* What the host's own CPUID selects, as the library will run. */
static void test_exec_host(void **state)
{
	struct kvmnc_cache_info info;
	int r;

	(void)state;
	kvmnc_sys = &kvmnc_sys_real;
	r = kvmnc_cache_reselect();
	if (r == -EOPNOTSUPP) {
		print_message("skip: no CLFLUSH on this host\n");
		skip();
	}
	assert_int_equal(r, 0);
	kvmnc_cache_info(&info);
	print_message("host: invalidate %s, write back %s, line %u, nt %d\n",
		      kvmnc_cache_insn_name(info.inval), kvmnc_cache_insn_name(info.wb), info.line,
		      info.nt_stores);
	run_all_ops(true);
}

/* The variants the benchmark compares: same results. */
static void test_exec_variants(void **state)
{
	static const struct kvmnc_cache_tuning variants[] = {
		/* chunk by chunk, memcpy + write-back, ordinary read destination */
		{64 * 1024, false, false, SIZE_MAX, true, true},
		/* tiny chunks: edges in every test size; non-temporal read destination */
		{128, true, true, 0, true, true},
		{100, true, false, 4096, true, true}, /* rounded up to a line */
		{1, false, true, 0, false, false},
		{SIZE_MAX, true, true, 1, true, true}, /* the whole range as one chunk */
		{64 * 1024, true, true, 0, true, true},
		/* 1.2's engine: one stream, invalidations all before each chunk */
		{256 * 1024, true, true, 1 << 20, false, false},
		{64 * 1024, true, true, 0, false, true},
		{64 * 1024, true, true, 0, true, false},
	};

	(void)state;
	kvmnc_sys = &kvmnc_sys_real;
	if (kvmnc_cache_reselect() == -EOPNOTSUPP) {
		print_message("skip: no CLFLUSH on this host\n");
		skip();
	}
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		assert_int_equal(kvmnc_cache_tune(&variants[i], NULL), 0);
		run_all_sizes(OP_READ, false);
		run_all_sizes(OP_WRITE, false);
	}
}

/*
 * @span accessible bytes (whole pages) at *@mid, between two inaccessible
 * pages; returns the mapping, @span plus two pages long.
 */
static unsigned char *between_holes(size_t span, unsigned char **mid)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *map = mmap(NULL, span + 2 * pg, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map, pg, PROT_NONE), 0);
	assert_int_equal(mprotect(map + pg + span, pg, PROT_NONE), 0);
	*mid = map + pg;
	return map;
}

/*
 * Ranges of @lens that end at, or start right after, an inaccessible page
 * (@span bytes between two): every address the engine uses stays inside
 * the range, and the copies are exact.
 */
static void no_fault_at_edges(size_t span, const size_t *lens, size_t nlens)
{
	unsigned char *mid, *map = between_holes(span, &mid);
	unsigned char *other = malloc(span);

	assert_non_null(other);
	for (size_t k = 0; k < nlens; k++) {
		size_t n = lens[k];
		unsigned char *ends = mid + span - n, *starts = mid;

		fill_random(other, n, (uint32_t)n);
		assert_int_equal(kvmnc_cache_copy_write(ends, other, n), 0);
		assert_memory_equal(ends, other, n);
		assert_int_equal(kvmnc_cache_copy_write(starts, other, n), 0);
		assert_memory_equal(starts, other, n);
		memset(other, 0, n);
		assert_int_equal(kvmnc_cache_copy_read(other, ends, n), 0);
		assert_memory_equal(other, ends, n);
		memset(other, 0, n);
		assert_int_equal(kvmnc_cache_copy_read(other, starts, n), 0);
		assert_memory_equal(other, starts, n);
		assert_int_equal(kvmnc_cache_flush(ends, n), 0);
		assert_int_equal(kvmnc_cache_flush(starts, n), 0);
		assert_int_equal(kvmnc_cache_writeback(ends, n), 0);
		assert_int_equal(kvmnc_cache_writeback(starts, n), 0);
	}
	free(other);
	munmap(map, span + 2 * (size_t)sysconf(_SC_PAGESIZE));
}

static void test_no_fault_outside(void **state)
{
	static const size_t lens[] = {1, 17, 63, 64, 65, 100, 1000, 4000};

	(void)state;
	kvmnc_sys = &kvmnc_sys_real;
	if (kvmnc_cache_reselect() == -EOPNOTSUPP) {
		print_message("skip: no CLFLUSH on this host\n");
		skip();
	}
	no_fault_at_edges((size_t)sysconf(_SC_PAGESIZE), lens, sizeof(lens) / sizeof(lens[0]));
}

/* ---- the streams and the spread invalidations ---------------------------------- */

/*
 * Lengths around the streaming copy's edges: one block of four 4 KiB
 * streams is 16 KiB; a non-temporal body shorter than that runs as one
 * stream, a longer one as whole blocks and then one stream for the rest.
 * The offsets move the destination's head and tail (stores before the
 * first 64-byte boundary and after the last) and the source's alignment.
 */
static const size_t stream_sizes[] = {
	16384 - 64,	   16384 - 1,	  16384,
	16384 + 1,	   16384 + 63,	  16384 + 64,
	16384 + 128,	   2 * 16384 - 1, 2 * 16384 + 4096 + 65,
	5 * 16384 + 12345, 64 * 1024,	  64 * 1024 + 16384 + 100,
};

static const struct kvmnc_cache_tuning stream_tunings[] = {
	{256 * 1024, true, true, 0, true, true},
	/* Chunks of one block, of one block and a line, and of less than one. */
	{16384, true, true, 0, true, true},
	{16384 + 64, true, true, 0, true, true},
	{12288, true, true, 0, true, true},
	/* Not pipelined, or not spread: the streams alone. */
	{20000, false, true, 0, true, true},
	{20000, true, true, 0, true, false},
};

static void test_streams(void **state)
{
	struct bufs b;
	uint32_t seed = 7;

	(void)state;
	kvmnc_sys = &kvmnc_sys_real;
	if (kvmnc_cache_reselect() == -EOPNOTSUPP) {
		print_message("skip: no CLFLUSH on this host\n");
		skip();
	}
	bufs_init(&b, BIG);
	for (size_t t = 0; t < sizeof(stream_tunings) / sizeof(stream_tunings[0]); t++) {
		assert_int_equal(kvmnc_cache_tune(&stream_tunings[t], NULL), 0);
		for (size_t k = 0; k < sizeof(stream_sizes) / sizeof(stream_sizes[0]); k++) {
			static const size_t offs[][2] = {
				{0, 0}, {1, 63}, {63, 1}, {17, 40}, {32, 0}};

			for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
				one(&b, OP_READ, stream_sizes[k], offs[o][0], offs[o][1], seed++);
				one(&b, OP_WRITE, stream_sizes[k], offs[o][0], offs[o][1], seed++);
			}
		}
	}
	bufs_free(&b);
}

/*
 * What kvmnc_cache_copy_read() reports (kvmnc_cache_trace), checked as it
 * comes: the source bytes invalidated since the last fence (pending) and
 * before it (done), each kept as one run growing upwards from the start,
 * which is how the engine goes through a range. A COPY outside the done
 * run is a load that could pass an invalidation: a stale line read.
 */
struct order {
	uintptr_t start, pending_end, done_end;
	size_t copies, fences, inval_after_copy;
	bool last_was_copy;
	char err[160];
};

static struct order ord;

static void order_trace(enum kvmnc_cache_event ev, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;

	if (ord.err[0])
		return;
	switch (ev) {
	case KVMNC_CACHE_EV_INVAL:
		/* Contiguous with what came before (done or pending), never a gap. */
		if (a != ord.pending_end)
			snprintf(ord.err, sizeof(ord.err), "INVAL at +%zu, expected +%zu",
				 (size_t)(a - ord.start), (size_t)(ord.pending_end - ord.start));
		ord.pending_end = a + n;
		ord.inval_after_copy += ord.last_was_copy;
		break;
	case KVMNC_CACHE_EV_FENCE:
		ord.done_end = ord.pending_end;
		ord.fences++;
		break;
	case KVMNC_CACHE_EV_COPY:
		if (a < ord.start || a + n > ord.done_end)
			snprintf(ord.err, sizeof(ord.err),
				 "COPY of [+%zu, +%zu) with only [+0, +%zu) invalidated and fenced",
				 (size_t)(a - ord.start), (size_t)(a + n - ord.start),
				 (size_t)(ord.done_end - ord.start));
		ord.copies++;
		break;
	}
	ord.last_was_copy = ev == KVMNC_CACHE_EV_COPY;
}

static void read_in_order(struct bufs *b, size_t len, size_t soff, size_t doff, uint32_t seed)
{
	memset(&ord, 0, sizeof(ord));
	ord.start = ord.pending_end = ord.done_end = (uintptr_t)(b->src + GUARD + soff);
	kvmnc_cache_trace = order_trace;
	one(b, OP_READ, len, soff, doff, seed);
	kvmnc_cache_trace = NULL;
	if (ord.err[0])
		fail_msg("len %zu src+%zu dst+%zu: %s", len, soff, doff, ord.err);
	/* Every byte read, and every byte invalidated and fenced. */
	if (ord.done_end - ord.start != len || !ord.copies || !ord.fences)
		fail_msg("len %zu src+%zu: %zu of %zu bytes invalidated, %zu copies, %zu fences",
			 len, soff, ord.done_end - ord.start, len, ord.copies, ord.fences);
}

/*
 * Every tuning, every size class: no part of the source is loaded before
 * its lines were invalidated and an MFENCE completed that. With the
 * defaults on a CPU with CLFLUSHOPT, the invalidations are spread through
 * the copy (reported after it), so that order is the one checked there.
 */
static void test_read_order(void **state)
{
	static const size_t sizes[] = {1, 64, 4097, 16385, 300000, 1 << 20, BIG};
	static const struct kvmnc_cache_tuning tunings[] = {
		{256 * 1024, true, true, 1 << 20, true, true},
		{256 * 1024, true, true, 0, true, true},
		{16384 + 64, true, true, 0, true, true},
		{4096, true, true, 0, true, true},
		{256 * 1024, true, true, 0, true, false},
		{256 * 1024, true, true, 0, false, true},
		{128, true, true, 0, true, true},
		{64 * 1024, false, true, 0, true, true},
		{SIZE_MAX, true, true, 0, true, true},
		{64 * 1024, true, true, SIZE_MAX, true, true},
	};
	struct kvmnc_cache_info info;
	struct bufs b;
	uint32_t seed = 3;

	(void)state;
	kvmnc_sys = &kvmnc_sys_real;
	if (kvmnc_cache_reselect() == -EOPNOTSUPP) {
		print_message("skip: no CLFLUSH on this host\n");
		skip();
	}
	kvmnc_cache_info(&info);
	bufs_init(&b, BIG);
	for (size_t t = 0; t < sizeof(tunings) / sizeof(tunings[0]); t++) {
		assert_int_equal(kvmnc_cache_tune(&tunings[t], NULL), 0);
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
			for (size_t so = 0; so < 64; so += 21)
				read_in_order(&b, sizes[k], so, (so * 37 + 11) % 64, seed++);
	}
	/* The defaults spread where they can: 2 MiB is 8 chunks. */
	assert_int_equal(kvmnc_cache_tune(&defaults, NULL), 0);
	read_in_order(&b, 2 << 20, 0, 0, seed);
	if (info.inval == KVMNC_CACHE_CLFLUSHOPT)
		assert_int_equal(ord.inval_after_copy, 7);
	else
		assert_int_equal(ord.inval_after_copy, 0);
	bufs_free(&b);
}

/* The same in the streaming sizes, reads non-temporal from the smallest. */
static void test_streams_no_fault_outside(void **state)
{
	static const size_t lens[] = {16384, 16385, 16384 + 4095, 3 * 16384 + 100, 1 << 20};
	struct kvmnc_cache_tuning t = defaults;

	(void)state;
	kvmnc_sys = &kvmnc_sys_real;
	if (kvmnc_cache_reselect() == -EOPNOTSUPP) {
		print_message("skip: no CLFLUSH on this host\n");
		skip();
	}
	t.read_nt_min = 0;
	assert_int_equal(kvmnc_cache_tune(&t, NULL), 0);
	no_fault_at_edges((1 << 20) + 4 * 4096, lens, sizeof(lens) / sizeof(lens[0]));
}

static void *select_racer(void *arg)
{
	struct kvmnc_cache_info *info = arg;
	unsigned char a[256], b[256];

	memset(b, 7, sizeof(b));
	for (int i = 0; i < 200; i++) {
		if (kvmnc_cache_info(info) != 0 || kvmnc_cache_copy_write(a, b, sizeof(a)) != 0 ||
		    memcmp(a, b, sizeof(a)))
			info->line = 0;
	}
	return NULL;
}

/* Threads racing the first selection all see one consistent answer (TSan). */
static void test_select_race(void **state)
{
	struct kvmnc_cache_info info[4];
	pthread_t th[4];

	(void)state;
	kvmnc_sys = &kvmnc_sys_real;
	if (kvmnc_cache_reselect() == -EOPNOTSUPP) {
		print_message("skip: no CLFLUSH on this host\n");
		skip();
	}
	for (int round = 0; round < 20; round++) {
		kvmnc_cache_reselect();
		/* Cleared by hand too: the threads race the selection itself. */
		for (int i = 0; i < 4; i++)
			assert_int_equal(pthread_create(&th[i], NULL, select_racer, &info[i]), 0);
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		for (int i = 1; i < 4; i++) {
			assert_int_not_equal(info[i].line, 0);
			assert_memory_equal(&info[i], &info[0], sizeof(info[0]));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_dispatch, restore),
		cmocka_unit_test_teardown(test_failure_not_cached, restore),
		cmocka_unit_test_teardown(test_unsupported, restore),
		cmocka_unit_test_teardown(test_bad_args, restore),
		cmocka_unit_test_teardown(test_exec_clflush, restore),
		cmocka_unit_test_teardown(test_exec_clflushopt, restore),
		cmocka_unit_test_teardown(test_exec_clwb, restore),
		cmocka_unit_test_teardown(test_exec_clwb_clflush, restore),
		cmocka_unit_test_teardown(test_exec_short_line, restore),
		cmocka_unit_test_teardown(test_exec_host, restore),
		cmocka_unit_test_teardown(test_exec_variants, restore),
		cmocka_unit_test_teardown(test_no_fault_outside, restore),
		cmocka_unit_test_teardown(test_streams, restore),
		cmocka_unit_test_teardown(test_read_order, restore),
		cmocka_unit_test_teardown(test_streams_no_fault_outside, restore),
		cmocka_unit_test_teardown(test_select_race, restore),
	};

	int r;

	kvmnc_cache_tune(NULL, &defaults);
	r = cmocka_run_group_tests(tests, NULL, NULL);

	free(pattern);
	free(guard_img[0]);
	free(guard_img[1]);
	return r;
}
