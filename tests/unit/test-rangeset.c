// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The lock-free range set against a brute-force model: randomised add,
 * remove and replace sequences (fixed seed) with every query checked,
 * straddling and edge-of-address-space queries, allocation failure at
 * every allocation leaving the old set, reclamation with a reader holding
 * a view, and readers racing a writer (run under TSan in CI).
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

#include <cmocka.h>

#include "rangeset.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static struct kvmnc_rs_range mk(uint64_t start, uint64_t len, uint32_t slot)
{
	struct kvmnc_rs_range r = {
		.start = start, .len = len, .aux = start ^ 0x5555, .slot = slot, .why = slot % 3};
	return r;
}

/* The model: an unsorted array. */
struct model {
	struct kvmnc_rs_range *r;
	size_t n, cap;
};

static int key_cmp(const struct kvmnc_rs_range *a, const struct kvmnc_rs_range *b)
{
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return a->slot < b->slot ? -1 : a->slot > b->slot;
}

static int key_qsort(const void *a, const void *b)
{
	return key_cmp(a, b);
}

static ssize_t model_find(const struct model *m, uint64_t start, uint64_t len, uint32_t slot)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->r[i].start == start && m->r[i].len == len && m->r[i].slot == slot)
			return (ssize_t)i;
	return -1;
}

static void model_add(struct model *m, struct kvmnc_rs_range r)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->r = realloc(m->r, m->cap * sizeof(*m->r));
		assert_non_null(m->r);
	}
	m->r[m->n++] = r;
}

static bool covers(const struct kvmnc_rs_range *r, uint64_t x)
{
	return x >= r->start && x - r->start < r->len;
}

/* Coverage of every address below m's universe, one byte each. */
static unsigned char *model_coverage(const struct model *m, uint64_t size)
{
	unsigned char *cov = calloc(size, 1);

	assert_non_null(cov);
	for (size_t i = 0; i < m->n; i++)
		for (uint64_t x = m->r[i].start; covers(&m->r[i], x) && x < size; x++)
			cov[x] = 1;
	return cov;
}

static bool model_overlaps(const struct model *m, uint64_t start, uint64_t len)
{
	uint64_t last = start + len - 1;

	if (!len)
		return false;
	for (size_t i = 0; i < m->n; i++) {
		uint64_t rl = m->r[i].start + m->r[i].len - 1;

		if (m->r[i].start <= last && rl >= start)
			return true;
	}
	return false;
}

struct collect {
	struct kvmnc_rs_range r[4096];
	size_t n;
	size_t stop_at;
};

static int collect_fn(const struct kvmnc_rs_range *r, void *arg)
{
	struct collect *c = arg;

	assert_true(c->n < 4096);
	c->r[c->n++] = *r;
	return c->n == c->stop_at ? 42 : 0;
}

static void check_walk(const struct kvmnc_rs_view *v, struct kvmnc_rs *s, struct kvmnc_rs_hint *h,
		       const unsigned char *cov, uint64_t start, uint64_t len);

/* Checks every query on @v for [start, start + len) against the model. */
static void check_query(const struct kvmnc_rs_view *v, const struct model *m,
			const unsigned char *cov, uint64_t start, uint64_t len)
{
	static struct collect got;
	static struct kvmnc_rs_range want[4096];
	size_t nwant = 0;

	assert_int_equal(kvmnc_rs_view_overlaps(v, start, len), model_overlaps(m, start, len));
	/* for_each: exactly the overlapping ranges, in sorted order. */
	for (size_t i = 0; i < m->n; i++)
		if (len && m->r[i].start <= start + len - 1 &&
		    m->r[i].start + m->r[i].len - 1 >= start)
			want[nwant++] = m->r[i];
	qsort(want, nwant, sizeof(want[0]), key_qsort);
	got.n = 0;
	got.stop_at = 0;
	assert_int_equal(kvmnc_rs_view_for_each(v, start, len, collect_fn, &got), 0);
	assert_int_equal(got.n, nwant);
	assert_memory_equal(got.r, want, nwant * sizeof(want[0]));
	if (nwant >= 2) {
		got.n = 0;
		got.stop_at = 2;
		assert_int_equal(kvmnc_rs_view_for_each(v, start, len, collect_fn, &got), 42);
		assert_int_equal(got.n, 2);
	}
	check_walk(v, NULL, NULL, cov, start, len);
}

/*
 * Walks [start, start + len) segment by segment, on view @v, or with
 * kvmnc_rs_segment() on @s and @hint: each segment uniformly covered or
 * not, ending where that changes.
 */
static void check_walk(const struct kvmnc_rs_view *v, struct kvmnc_rs *s, struct kvmnc_rs_hint *h,
		       const unsigned char *cov, uint64_t start, uint64_t len)
{
	for (uint64_t pos = start, left = len; left;) {
		bool nc;
		uint64_t n = h ? kvmnc_rs_segment(s, h, pos, left, &nc)
			       : kvmnc_rs_view_segment(v, pos, left, &nc);

		assert_true(n > 0 && n <= left);
		for (uint64_t x = pos; x < pos + n; x++)
			if (cov[x] != nc)
				fail_msg("%s segment [%llu, +%llu) covered=%d wrong at %llu",
					 h ? "hinted" : "view", (unsigned long long)pos,
					 (unsigned long long)n, nc, (unsigned long long)x);
		/* A view's segment is maximal; a hinted one may end where the hint did. */
		if (n < left && !h)
			assert_true(cov[pos + n] != nc);
		pos += n;
		left -= n;
	}
}

/* A hint that lives across set changes, for check_walk(). */
static struct kvmnc_rs_hint hint;

/* The whole content of @v equals the model. */
static void check_content(const struct kvmnc_rs_view *v, struct model *m)
{
	if (m->n)
		qsort(m->r, m->n, sizeof(m->r[0]), key_qsort);
	assert_int_equal(kvmnc_rs_view_count(v), m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct kvmnc_rs_range *r = kvmnc_rs_view_at(v, i);

		assert_non_null(r);
		assert_memory_equal(r, &m->r[i], sizeof(*r));
	}
	assert_null(kvmnc_rs_view_at(v, m->n));
}

/*
 * The set's content and @queries random queries, on a read-locked view and
 * on a snapshot. Ranges start below @universe and are shorter than 1024.
 */
static void check_all(struct kvmnc_rs *s, struct model *m, uint64_t universe, int queries)
{
	unsigned char *cov = model_coverage(m, universe + 2048);
	struct kvmnc_rs_view *snap;
	const struct kvmnc_rs_view *v;
	unsigned int tok;

	assert_int_equal(kvmnc_rs_count(s), m->n);
	v = kvmnc_rs_read_lock(s, &tok);
	check_content(v, m);
	for (int q = 0; q < queries; q++) {
		uint64_t start = rnd_below(universe), len = rnd_below(q % 4 ? 64 : 512);

		check_query(v, m, cov, start, len);
	}
	kvmnc_rs_read_unlock(s, tok);
	/* Page-walk-like runs of small queries, mostly answered from the hint. */
	for (int q = 0; q < queries / 4; q++) {
		uint64_t start = rnd_below(universe);

		for (int k = 0; k < 8; k++, start += 16)
			check_walk(NULL, s, &hint, cov, start, 16);
	}
	/* A snapshot answers the same, and knows it is current. */
	assert_int_equal(kvmnc_rs_snapshot(s, &snap), 0);
	assert_true(kvmnc_rs_view_gen(snap) == kvmnc_rs_gen(s));
	check_content(snap, m);
	for (int q = 0; q < queries / 4; q++)
		check_query(snap, m, cov, rnd_below(universe), rnd_below(300));
	kvmnc_rs_view_free(snap);
	free(cov);
}

static void random_ops(uint64_t universe, uint64_t maxlen, int ops, int target)
{
	struct kvmnc_rs s;
	struct model m = {0};

	kvmnc_rs_init(&s);
	memset(&hint, 0, sizeof(hint));
	for (int op = 0; op < ops; op++) {
		uint64_t k = rnd_below(100), add_below = m.n < (size_t)target ? 65 : 45;
		uint64_t gen = kvmnc_rs_gen(&s);
		bool changed = true;

		if (k < 2) {
			/* Replace with a fresh random set. */
			size_t n = (size_t)rnd_below((uint64_t)target * 2 + 1);
			struct model nm = {0};

			for (size_t i = 0; i < n; i++) {
				struct kvmnc_rs_range r =
					mk(rnd_below(universe), 1 + rnd_below(maxlen),
					   (uint32_t)rnd_below(8));

				if (model_find(&nm, r.start, r.len, r.slot) < 0)
					model_add(&nm, r);
			}
			assert_int_equal(kvmnc_rs_replace(&s, nm.r, nm.n), 0);
			free(m.r);
			m = nm;
		} else if (k < add_below) {
			struct kvmnc_rs_range r = mk(rnd_below(universe), 1 + rnd_below(maxlen),
						     (uint32_t)rnd_below(8));
			int want = model_find(&m, r.start, r.len, r.slot) < 0 ? 0 : -EEXIST;

			assert_int_equal(kvmnc_rs_add(&s, &r), want);
			if (!want)
				model_add(&m, r);
			changed = !want;
		} else if (m.n && k < 95) {
			size_t i = (size_t)rnd_below(m.n);

			assert_int_equal(kvmnc_rs_remove(&s, m.r[i].start, m.r[i].len, m.r[i].slot),
					 0);
			m.r[i] = m.r[--m.n];
		} else {
			/* Not there: a wrong slot or length. */
			uint64_t start = rnd_below(universe), len = 1 + rnd_below(maxlen);
			uint32_t slot = 100 + (uint32_t)rnd_below(8);

			assert_int_equal(kvmnc_rs_remove(&s, start, len, slot), -ENOENT);
			changed = false;
		}
		/* Every change, and only a change, gives a new generation. */
		if (changed)
			assert_true(kvmnc_rs_gen(&s) > gen);
		else
			assert_true(kvmnc_rs_gen(&s) == gen);
		if (op % 97 == 0 || op == ops - 1)
			check_all(&s, &m, universe, 40);
	}
	/* Empty it by removals: blocks shrink, merge and disappear. */
	while (m.n) {
		size_t i = (size_t)rnd_below(m.n);

		assert_int_equal(kvmnc_rs_remove(&s, m.r[i].start, m.r[i].len, m.r[i].slot), 0);
		m.r[i] = m.r[--m.n];
		if (m.n % 53 == 0)
			check_all(&s, &m, universe, 10);
	}
	assert_int_equal(kvmnc_rs_count(&s), 0);
	assert_false(kvmnc_rs_overlaps(&s, 0, UINT64_MAX));
	kvmnc_rs_destroy(&s);
	free(m.r);
}

/* Few ranges, dense overlaps: merging of overlapping and adjacent runs. */
static void test_random_small(void **state)
{
	(void)state;
	rng = 12345;
	random_ops(2000, 120, 6000, 20);
}

/* Thousands of ranges: many blocks, splits and merges. */
static void test_random_large(void **state)
{
	(void)state;
	rng = 777;
	random_ops(400000, 300, 12000, 3000);
}

static void test_basics(void **state)
{
	struct kvmnc_rs s;
	struct kvmnc_rs_range r = mk(100, 50, 1), bad;
	struct model m = {0};
	bool nc;

	(void)state;
	kvmnc_rs_init(&s);
	assert_int_equal(kvmnc_rs_count(&s), 0);
	assert_false(kvmnc_rs_overlaps(&s, 0, UINT64_MAX));
	assert_int_equal(kvmnc_rs_remove(&s, 100, 50, 1), -ENOENT);
	/* A NULL view is the empty set. */
	assert_int_equal(kvmnc_rs_view_segment(NULL, 5, 10, &nc), 10);
	assert_false(nc);
	assert_int_equal(kvmnc_rs_view_count(NULL), 0);
	assert_null(kvmnc_rs_view_at(NULL, 0));

	assert_int_equal(kvmnc_rs_add(&s, &r), 0);
	assert_int_equal(kvmnc_rs_add(&s, &r), -EEXIST);
	bad = mk(5, 0, 1);
	assert_int_equal(kvmnc_rs_add(&s, &bad), -EINVAL);
	bad = mk(UINT64_MAX - 9, 11, 1);
	assert_int_equal(kvmnc_rs_add(&s, &bad), -EINVAL);
	assert_int_equal(kvmnc_rs_replace(&s, &bad, 1), -EINVAL);
	assert_int_equal(kvmnc_rs_replace(&s, NULL, 3), -EINVAL);
	/* Same start and length, another slot: a different range. */
	r.slot = 2;
	assert_int_equal(kvmnc_rs_add(&s, &r), 0);
	assert_int_equal(kvmnc_rs_count(&s), 2);
	assert_int_equal(kvmnc_rs_remove(&s, 100, 49, 1), -ENOENT);
	assert_int_equal(kvmnc_rs_remove(&s, 100, 50, 1), 0);
	assert_int_equal(kvmnc_rs_remove(&s, 100, 50, 1), -ENOENT);

	/* Straddling queries: [100, 150) covered. */
	assert_true(kvmnc_rs_overlaps(&s, 99, 2));
	assert_false(kvmnc_rs_overlaps(&s, 0, 100));
	assert_true(kvmnc_rs_overlaps(&s, 149, 1));
	assert_false(kvmnc_rs_overlaps(&s, 150, 1000));
	assert_false(kvmnc_rs_overlaps(&s, 120, 0));

	/* The top of the address space. */
	r = mk(UINT64_MAX - 9, 10, 3);
	assert_int_equal(kvmnc_rs_add(&s, &r), 0);
	assert_true(kvmnc_rs_overlaps(&s, UINT64_MAX, 1));
	assert_true(kvmnc_rs_overlaps(&s, UINT64_MAX - 100, UINT64_MAX)); /* clipped */
	assert_false(kvmnc_rs_overlaps(&s, UINT64_MAX - 100, 91));
	{
		unsigned int tok;
		const struct kvmnc_rs_view *v = kvmnc_rs_read_lock(&s, &tok);

		assert_int_equal(kvmnc_rs_view_segment(v, UINT64_MAX - 20, 100, &nc), 11);
		assert_false(nc);
		assert_int_equal(kvmnc_rs_view_segment(v, UINT64_MAX - 9, 100, &nc), 10);
		assert_true(nc);
		/* A straddling copy: outside, inside, outside. */
		assert_int_equal(kvmnc_rs_view_segment(v, 90, 100, &nc), 10);
		assert_false(nc);
		assert_int_equal(kvmnc_rs_view_segment(v, 100, 90, &nc), 50);
		assert_true(nc);
		assert_int_equal(kvmnc_rs_view_segment(v, 150, 40, &nc), 40);
		assert_false(nc);
		kvmnc_rs_read_unlock(&s, tok);
	}
	/* Replace by nothing empties it. */
	assert_int_equal(kvmnc_rs_replace(&s, NULL, 0), 0);
	assert_int_equal(kvmnc_rs_count(&s), 0);
	/* Replace refuses duplicates and keeps the old set. */
	{
		struct kvmnc_rs_range two[3] = {mk(1, 1, 1), mk(5, 5, 5), mk(1, 1, 1)};

		assert_int_equal(kvmnc_rs_replace(&s, two, 2), 0);
		assert_int_equal(kvmnc_rs_replace(&s, two, 3), -EEXIST);
		model_add(&m, two[0]);
		model_add(&m, two[1]);
		check_all(&s, &m, 20, 50);
	}
	/* Adjacent ranges merge into one covered segment. */
	{
		struct kvmnc_rs_range adj[3] = {mk(10, 10, 1), mk(20, 5, 2), mk(24, 10, 3)};
		unsigned int tok;
		const struct kvmnc_rs_view *v;

		assert_int_equal(kvmnc_rs_replace(&s, adj, 3), 0);
		v = kvmnc_rs_read_lock(&s, &tok);
		assert_int_equal(kvmnc_rs_view_segment(v, 12, 100, &nc), 22);
		assert_true(nc);
		kvmnc_rs_read_unlock(&s, tok);
	}
	kvmnc_rs_destroy(&s);
	free(m.r);
}

/* Fails the n-th allocation from now on (1-based); 0: never. */
static int fail_nth, alloc_calls;

static void *failing_alloc(size_t sz)
{
	if (++alloc_calls == fail_nth)
		return NULL;
	return malloc(sz);
}

static int restore_alloc(void **state)
{
	(void)state;
	kvmnc_rs_alloc = kvmnc_rs_default_alloc;
	return 0;
}

/* Runs @op with the n-th allocation failing for n = 1, 2, ... until it succeeds. */
static void each_failure(struct kvmnc_rs *s, struct model *m, int (*op)(struct kvmnc_rs *, void *),
			 void *arg, int want)
{
	int r, n;

	for (n = 1;; n++) {
		alloc_calls = 0;
		fail_nth = n;
		kvmnc_rs_alloc = failing_alloc;
		uint64_t gen = kvmnc_rs_gen(s);

		r = op(s, arg);
		kvmnc_rs_alloc = kvmnc_rs_default_alloc;
		if (alloc_calls < n)
			break; /* no allocation failed: the op ran through */
		assert_int_equal(r, -ENOMEM);
		assert_true(kvmnc_rs_gen(s) == gen);
		/* Exactly the old set. */
		check_all(s, m, 3000, 20);
	}
	assert_int_equal(r, want);
	assert_true(n > 1);
}

static int op_add(struct kvmnc_rs *s, void *arg)
{
	return kvmnc_rs_add(s, arg);
}

static int op_remove(struct kvmnc_rs *s, void *arg)
{
	const struct kvmnc_rs_range *r = arg;

	return kvmnc_rs_remove(s, r->start, r->len, r->slot);
}

struct many {
	struct kvmnc_rs_range *r;
	size_t n;
};

static int op_replace(struct kvmnc_rs *s, void *arg)
{
	struct many *mm = arg;

	return kvmnc_rs_replace(s, mm->r, mm->n);
}

static int op_snapshot(struct kvmnc_rs *s, void *arg)
{
	struct kvmnc_rs_view *snap = (void *)1;
	int r = kvmnc_rs_snapshot(s, &snap);

	(void)arg;
	if (r)
		assert_null(snap);
	kvmnc_rs_view_free(snap);
	return r;
}

static void test_enomem(void **state)
{
	struct kvmnc_rs s;
	struct model m = {0};
	struct kvmnc_rs_range r;
	struct many mm;

	(void)state;
	rng = 99;
	kvmnc_rs_init(&s);
	/* Into an empty set, then until blocks split. */
	for (int i = 0; i < 300; i++) {
		r = mk(rnd_below(3000), 1 + rnd_below(40), (uint32_t)i);
		if (i < 3 || i % 37 == 0) {
			each_failure(&s, &m, op_add, &r, 0);
		} else {
			assert_int_equal(kvmnc_rs_add(&s, &r), 0);
		}
		model_add(&m, r);
	}
	each_failure(&s, &m, op_snapshot, NULL, 0);
	/* Removals, with and without merging blocks, down to empty. */
	qsort(m.r, m.n, sizeof(m.r[0]), key_qsort);
	while (m.n) {
		size_t i = m.n % 3 ? m.n / 2 : m.n - 1;

		r = m.r[i];
		/* Failures are checked against the set before the removal. */
		if (m.n % 7 == 0 || m.n < 4)
			each_failure(&s, &m, op_remove, &r, 0);
		else
			assert_int_equal(op_remove(&s, &r), 0);
		memmove(&m.r[i], &m.r[i + 1], (m.n - i - 1) * sizeof(m.r[0]));
		m.n--;
	}
	/* Replace, from empty and over a full set. */
	mm.n = 500;
	mm.r = calloc(mm.n, sizeof(*mm.r));
	assert_non_null(mm.r);
	for (size_t i = 0; i < mm.n; i++)
		mm.r[i] = mk(i * 7, 5, 1);
	each_failure(&s, &m, op_replace, &mm, 0);
	for (size_t i = 0; i < mm.n; i++)
		model_add(&m, mm.r[i]);
	for (size_t i = 0; i < mm.n; i++)
		mm.r[i] = mk(i * 11, 3, 2);
	each_failure(&s, &m, op_replace, &mm, 0);
	kvmnc_rs_destroy(&s);
	free(mm.r);
	free(m.r);
}

/* A reader's view stays whole while the writer replaces it; freed afterwards. */
static void test_reclaim(void **state)
{
	struct kvmnc_rs s;
	struct kvmnc_rs_range r[200];
	const struct kvmnc_rs_view *v;
	unsigned int tok;

	(void)state;
	kvmnc_rs_init(&s);
	for (int i = 0; i < 200; i++)
		r[i] = mk((uint64_t)i * 10, 5, 1);
	assert_int_equal(kvmnc_rs_replace(&s, r, 200), 0);
	assert_int_equal(kvmnc_rs_reclaim(&s), 0);
	v = kvmnc_rs_read_lock(&s, &tok);
	for (int i = 0; i < 50; i++) {
		struct kvmnc_rs_range x = mk(5000 + (uint64_t)i * 10, 5, 2);

		assert_int_equal(kvmnc_rs_add(&s, &x), 0);
		assert_int_equal(kvmnc_rs_remove(&s, (uint64_t)i * 10, 5, 1), 0);
	}
	assert_int_equal(kvmnc_rs_replace(&s, r, 10), 0);
	/* Under ASan or valgrind, reading a freed view fails here. */
	assert_int_equal(kvmnc_rs_view_count(v), 200);
	for (int i = 0; i < 200; i++)
		assert_true(kvmnc_rs_view_overlaps(v, (uint64_t)i * 10 + 4, 1));
	assert_true(kvmnc_rs_reclaim(&s) > 0);
	kvmnc_rs_read_unlock(&s, tok);
	assert_int_equal(kvmnc_rs_reclaim(&s), 0);
	assert_int_equal(kvmnc_rs_count(&s), 10);

	/* Destroy frees what is still retired (leak checkers watch). */
	v = kvmnc_rs_read_lock(&s, &tok);
	assert_int_equal(kvmnc_rs_replace(&s, r, 20), 0);
	kvmnc_rs_read_unlock(&s, tok);
	kvmnc_rs_destroy(&s);
}

#define READERS	    3
#define GENERATIONS 1500
#define EXTRA	    8

static struct kvmnc_rs shared;
static int stop, bad;

/*
 * Generation g: replace with base(g) ranges, then add up to EXTRA more, all
 * with aux g. A reader must see one generation, whole.
 */
static size_t base_n(uint64_t g)
{
	return 1 + (size_t)(g * 37 % 400);
}

static struct kvmnc_rs_range gen_range(uint64_t g, size_t i)
{
	struct kvmnc_rs_range r = {.start = i * 64 + g % 5, .len = 32 + g % 7, .aux = g, .slot = 1};

	return r;
}

/* In every generation: [ALWAYS, ALWAYS + 4096) covered, [NEVER, ...) not. */
#define ALWAYS (1ull << 40)
#define NEVER  (1ull << 41)

static void *reader(void *arg)
{
	struct kvmnc_rs_hint h = {0};

	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		unsigned int tok;
		const struct kvmnc_rs_view *v = kvmnc_rs_read_lock(&shared, &tok);
		size_t n = kvmnc_rs_view_count(v);
		const struct kvmnc_rs_range *r0 = kvmnc_rs_view_at(v, 0);
		uint64_t g = r0 ? r0->aux : 0;
		bool nc;

		if (n && (n < base_n(g) + 1 || n > base_n(g) + 1 + EXTRA))
			__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
		for (size_t i = 0; i < n; i++) {
			const struct kvmnc_rs_range *r = kvmnc_rs_view_at(v, i);

			if (r->aux != g || !kvmnc_rs_view_overlaps(v, r->start + r->len - 1, 1) ||
			    kvmnc_rs_view_segment(v, r->start, r->len, &nc) != r->len || !nc)
				__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
		}
		kvmnc_rs_read_unlock(&shared, tok);
		/* The one-shot query, hinted walks and snapshots too. */
		kvmnc_rs_overlaps(&shared, 100, 10);
		for (uint64_t off = 0; off < 4096; off += 512) {
			if (kvmnc_rs_segment(&shared, &h, ALWAYS + off, 512, &nc) != 512 ||
			    (n && !nc))
				__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
			if (kvmnc_rs_segment(&shared, &h, NEVER + off, 512, &nc) != 512 || nc)
				__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
		}
		if (n % 16 == 0) {
			struct kvmnc_rs_view *snap;

			if (kvmnc_rs_snapshot(&shared, &snap) == 0) {
				size_t sn = kvmnc_rs_view_count(snap);

				if (sn && kvmnc_rs_view_at(snap, sn - 1)->aux !=
						  kvmnc_rs_view_at(snap, 0)->aux)
					__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
				kvmnc_rs_view_free(snap);
			}
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	static struct kvmnc_rs_range buf[401];
	pthread_t th[READERS];

	(void)state;
	kvmnc_rs_init(&shared);
	stop = 0;
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, NULL), 0);
	for (uint64_t g = 1; g <= GENERATIONS; g++) {
		size_t n = base_n(g);

		for (size_t i = 0; i < n; i++)
			buf[i] = gen_range(g, i);
		buf[n] = (struct kvmnc_rs_range){.start = ALWAYS, .len = 4096, .aux = g, .slot = 2};
		assert_int_equal(kvmnc_rs_replace(&shared, buf, n + 1), 0);
		for (size_t i = 0; i < EXTRA; i++) {
			struct kvmnc_rs_range r = gen_range(g, n + 10 + i);

			assert_int_equal(kvmnc_rs_add(&shared, &r), 0);
			if (i % 3 == 2)
				assert_int_equal(kvmnc_rs_remove(&shared, r.start, r.len, r.slot),
						 0);
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(bad, 0);
	assert_int_equal(kvmnc_rs_reclaim(&shared), 0);
	kvmnc_rs_destroy(&shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basics),
		cmocka_unit_test(test_random_small),
		cmocka_unit_test(test_random_large),
		cmocka_unit_test_teardown(test_enomem, restore_alloc),
		cmocka_unit_test(test_reclaim),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
