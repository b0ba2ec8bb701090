/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A set of address ranges [start, start + len) with tags, for answering
 * "does this copy touch non-coherent memory, and which parts" without a
 * lock. Internal to the library; not installed. The same structure serves
 * host-virtual or guest-physical addresses: use one set per address kind.
 *
 * Writers (add, remove, replace, reclaim, destroy) are serialised by the
 * caller, e.g. under the handle lock. Readers take no lock: they register
 * with kvmnc_rs_read_lock(), which costs two atomic increments in all and
 * retries only if a writer retires memory at that very moment, and get an
 * immutable view that stays valid until kvmnc_rs_read_unlock(). A writer
 * builds a new view next to the old one, publishes it with one atomic
 * exchange and frees the old parts once no reader that could still see
 * them remains (two reader counters and an epoch per set; a writer never
 * waits for readers). Ranges may overlap each other (HVA aliases, address
 * spaces); a range is identified by (start, len, slot).
 */
#ifndef KVMNC_RANGESET_H
#define KVMNC_RANGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvmnc_rs_range {
	uint64_t start;
	uint64_t len; /* > 0; start + len must not exceed 2^64 */
	uint64_t aux; /* the caller's, e.g. the GPA of an HVA range */
	uint32_t slot;
	uint32_t why;
};

/* Opaque immutable set of ranges, sorted by (start, len, slot). */
struct kvmnc_rs_view;

/* Embeddable; all fields belong to rangeset.c. */
struct kvmnc_rs {
	struct kvmnc_rs_view *cur; /* NULL: never written */
	uint64_t gen;		   /* cur's generation, 0 while never written */
	uint64_t epoch;
	uint64_t readers[2];
	struct kvmnc_rs_retired *retired;
};

/* An empty set; allocates nothing, cannot fail. */
void kvmnc_rs_init(struct kvmnc_rs *s);
/*
 * Frees everything, retired views included, and leaves an empty set. No
 * reader may be inside, except kvmnc_rs_hinted(), which needs no view.
 */
void kvmnc_rs_destroy(struct kvmnc_rs *s);

/*
 * Writer side. Each returns 0 or a negative errno and on failure leaves the
 * set exactly as it was:
 *   add: -EINVAL (len 0, range past 2^64), -EEXIST (same start, len and
 *     slot present), -ENOMEM
 *   remove: -ENOENT (no range with that start, len and slot), -ENOMEM
 *   replace: the whole set becomes @r[0..n) (any order; n 0 empties it);
 *     -EINVAL, -EEXIST (a duplicate within @r), -ENOMEM
 * Cost: an O(log n) search, then a copy of the one block of at most 64
 * ranges that changes and of the block index (one entry per block);
 * replace is O(n log n).
 */
int kvmnc_rs_add(struct kvmnc_rs *s, const struct kvmnc_rs_range *r);
int kvmnc_rs_remove(struct kvmnc_rs *s, uint64_t start, uint64_t len, uint32_t slot);
int kvmnc_rs_replace(struct kvmnc_rs *s, const struct kvmnc_rs_range *r, size_t n);
/* Number of ranges; writer side (or under a read lock: use the view). */
size_t kvmnc_rs_count(const struct kvmnc_rs *s);
/*
 * Frees retired views no reader can hold any more. Every writer call does
 * this on its own; a writer may call it to release memory sooner after a
 * long reader finished. Returns how many retired views are still held.
 */
size_t kvmnc_rs_reclaim(struct kvmnc_rs *s);

/*
 * Reader side, from any thread, concurrently with one writer. Returns the
 * current view (NULL: the set is empty, and every query below accepts
 * NULL as the empty set). Pass *tok to the matching unlock. Hold it for as
 * long as needed, but a held view keeps retired memory alive.
 */
const struct kvmnc_rs_view *kvmnc_rs_read_lock(struct kvmnc_rs *s, unsigned int *tok);
void kvmnc_rs_read_unlock(struct kvmnc_rs *s, unsigned int tok);

/*
 * Queries on a view (a read-locked one or a snapshot). A query range that
 * runs past 2^64 is clipped there. len 0 overlaps nothing.
 */
size_t kvmnc_rs_view_count(const struct kvmnc_rs_view *v);
/* The i-th range in sorted order, NULL past the end; O(log n). */
const struct kvmnc_rs_range *kvmnc_rs_view_at(const struct kvmnc_rs_view *v, size_t i);
bool kvmnc_rs_view_overlaps(const struct kvmnc_rs_view *v, uint64_t start, uint64_t len);
/*
 * The first segment of [start, start + len) that is either entirely covered
 * by the union of the ranges (*covered true) or entirely outside it. Returns
 * its length (len when the whole query is one segment; 0 only for len 0).
 * Adjacent and overlapping ranges merge into one covered segment, so a
 * copy can walk a range that straddles and treat each part in one call:
 *   for (; len; start += n, len -= n)
 *           n = kvmnc_rs_view_segment(v, start, len, &nc), ...
 */
uint64_t kvmnc_rs_view_segment(const struct kvmnc_rs_view *v, uint64_t start, uint64_t len,
			       bool *covered);
/*
 * Calls @fn for every range that overlaps [start, start + len), in sorted
 * order (ranges unclipped). Stops at the first non-zero return of @fn and
 * returns it; 0 when all were visited.
 */
typedef int (*kvmnc_rs_fn)(const struct kvmnc_rs_range *r, void *arg);
int kvmnc_rs_view_for_each(const struct kvmnc_rs_view *v, uint64_t start, uint64_t len,
			   kvmnc_rs_fn fn, void *arg);

/* read_lock + kvmnc_rs_view_overlaps + read_unlock. */
bool kvmnc_rs_overlaps(struct kvmnc_rs *s, uint64_t start, uint64_t len);

/*
 * kvmnc_rs_view_segment() on the current view, remembering the run it
 * found in a caller-owned @hint (zero it before first use; one per thread,
 * never shared). While the set is unchanged, a query that starts inside
 * the remembered run is answered from @hint with no atomic read-modify-
 * write and no search: a migration pass walking pages in order pays the
 * search once per run of coherent or non-coherent memory.
 */
struct kvmnc_rs_hint {
	uint64_t gen;
	uint64_t lo, hi;
	bool covered;
};
uint64_t kvmnc_rs_segment(struct kvmnc_rs *s, struct kvmnc_rs_hint *hint, uint64_t start,
			  uint64_t len, bool *covered);
/*
 * The part of kvmnc_rs_segment() that needs no view: the length @hint
 * answers for (then *covered), or 0 when the set changed or @start lies
 * outside the remembered run; a set never written is empty (all of @len,
 * not covered). Loads only: safe on a set being destroyed, whose
 * generation goes to 0 (empty) and never comes back.
 */
static inline uint64_t kvmnc_rs_hinted(const struct kvmnc_rs *s, const struct kvmnc_rs_hint *hint,
				       uint64_t start, uint64_t len, bool *covered)
{
	uint64_t gen = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST);

	if (!len)
		return 0;
	/* Clipped at 2^64, as every query. */
	if (start + (len - 1) < start)
		len = 0 - start;
	if (!gen) {
		/* Never written (or destroyed): empty, no hint needed. */
		*covered = false;
		return len;
	}
	if (gen != hint->gen || start < hint->lo || start > hint->hi)
		return 0;
	*covered = hint->covered;
	return hint->hi >= start + (len - 1) ? len : hint->hi - start + 1;
}

/*
 * Generations: every change of a set gives it a new one, unique in the
 * process (0: never written). A snapshot keeps the generation it copied,
 * so kvmnc_rs_gen(s) == kvmnc_rs_view_gen(snap) says it is still current.
 */
uint64_t kvmnc_rs_gen(const struct kvmnc_rs *s);
uint64_t kvmnc_rs_view_gen(const struct kvmnc_rs_view *v);

/*
 * A caller-owned copy of the whole set as one flat view, for a migration
 * pass that walks it without touching the set again: queries on it cost
 * no atomic operation. Safe from a reader thread. *out is NULL for an empty
 * set. Free it with kvmnc_rs_view_free() (only snapshots, never a view
 * from kvmnc_rs_read_lock()). -ENOMEM.
 */
int kvmnc_rs_snapshot(struct kvmnc_rs *s, struct kvmnc_rs_view **out);
void kvmnc_rs_view_free(struct kvmnc_rs_view *v);

/*
 * The allocator behind every allocation here: kvmnc_rs_default_alloc(),
 * the seam's malloc. Tests may point it elsewhere and put the default back.
 */
extern void *(*kvmnc_rs_alloc)(size_t size);
void *kvmnc_rs_default_alloc(size_t size);

#endif /* KVMNC_RANGESET_H */
