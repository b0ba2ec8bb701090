// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The keyed tables the handles keep their memslots, plans and devices in:
 * dense records and an open-addressing index (internal.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Slot ids and device ids are small and dense: Fibonacci hashing spreads them. */
static uint32_t hash(uint32_t key, uint32_t mask)
{
	return (key * 2654435761u) & mask;
}

static uint32_t key_of(const struct kvmnc_table *t, uint32_t i)
{
	return *(const uint32_t *)kvmnc_table_at(t, i);
}

void kvmnc_table_init(struct kvmnc_table *t, size_t rec_size)
{
	memset(t, 0, sizeof(*t));
	t->rec_size = rec_size;
}

void kvmnc_table_free(struct kvmnc_table *t)
{
	free(t->recs);
	free(t->index);
	kvmnc_table_init(t, t->rec_size);
}

/* The index slot holding record @i, or of the first empty slot on @key's chain. */
static uint32_t probe_slot(const struct kvmnc_table *t, uint32_t key)
{
	uint32_t p = hash(key, t->index_mask);

	while (t->index[p] && key_of(t, t->index[p] - 1) != key)
		p = (p + 1) & t->index_mask;
	return p;
}

int kvmnc_table_reserve(struct kvmnc_table *t)
{
	return kvmnc_table_reserve_n(t, 1);
}

int kvmnc_table_reserve_n(struct kvmnc_table *t, uint32_t more)
{
	uint32_t ncap, nmask;
	uint32_t *index;
	void *recs;

	if (more <= t->cap - t->n)
		return 0;
	if (more > UINT32_MAX / 4 - t->n)
		return -ENOMEM;
	/* Doubling, as far as needed: one allocation per growth, amortised. */
	for (ncap = t->cap ? t->cap * 2 : 8; ncap < t->n + more; ncap *= 2)
		;
	/* At most half full, so that chains stay short. */
	nmask = ncap * 2 - 1;
	recs = SYS(realloc, t->recs, (size_t)ncap * t->rec_size);
	if (!recs)
		return -ENOMEM;
	t->recs = recs;
	index = SYS(calloc, (size_t)nmask + 1, sizeof(*index));
	if (!index)
		return -ENOMEM; /* the larger record array is kept; cap is not */
	free(t->index);
	t->index = index;
	t->index_mask = nmask;
	t->cap = ncap;
	for (uint32_t i = 0; i < t->n; i++)
		t->index[probe_slot(t, key_of(t, i))] = i + 1;
	return 0;
}

void *kvmnc_table_find(const struct kvmnc_table *t, uint32_t key)
{
	uint32_t p;

	if (!t->n)
		return NULL;
	p = probe_slot(t, key);
	return t->index[p] ? kvmnc_table_at(t, t->index[p] - 1) : NULL;
}

void *kvmnc_table_insert(struct kvmnc_table *t, uint32_t key)
{
	void *rec;

	/* A caller that did not reserve gets NULL, never a record past the end. */
	if (t->n >= t->cap)
		return NULL;
	rec = kvmnc_table_at(t, t->n);
	memset(rec, 0, t->rec_size);
	*(uint32_t *)rec = key;
	t->index[probe_slot(t, key)] = ++t->n;
	return rec;
}

void kvmnc_table_remove(struct kvmnc_table *t, void *rec)
{
	uint32_t i = (uint32_t)(((unsigned char *)rec - t->recs) / t->rec_size);
	uint32_t p = probe_slot(t, key_of(t, i)), q = p;

	/* Backward-shift deletion keeps every chain unbroken without tombstones. */
	t->index[p] = 0;
	for (;;) {
		uint32_t h;

		q = (q + 1) & t->index_mask;
		if (!t->index[q])
			break;
		h = hash(key_of(t, t->index[q] - 1), t->index_mask);
		/* Move q's entry into the hole unless its home lies in (p, q]. */
		if (((q - h) & t->index_mask) >= ((q - p) & t->index_mask)) {
			t->index[p] = t->index[q];
			t->index[q] = 0;
			p = q;
		}
	}

	/* The last record fills the gap; its index entry follows it. */
	if (i != --t->n) {
		memcpy(rec, kvmnc_table_at(t, t->n), t->rec_size);
		t->index[probe_slot(t, key_of(t, i))] = i + 1;
	}
}
