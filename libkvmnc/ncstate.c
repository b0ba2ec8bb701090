// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What is non-coherent, in one place: the definition (kvmnc_ncs_entry(),
 * read from the handle's tables under its lock) and the lock-free range
 * sets the copy helpers read it from (one by host address, one per address
 * space by guest address; rangeset.h).
 *
 * Writers hold the handle lock. Around each change of the tables for a
 * slot, begin() notes the slot's entry and end() replaces it in the sets
 * when it changed: the sets stay equal to what the tables say, at a cost of
 * O(64 + n / 64) copied words per change. Enabling the first device or
 * disabling the last changes every entry (DEVICE comes or goes for every
 * known memslot): the sets are rebuilt. A set operation that fails (no
 * memory) marks the sets stale, and readers take the lock and ask the
 * tables until a rebuild succeeds; nothing is ever answered wrong.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Shared by all handles, so that a snapshot never matches another handle's state. */
static uint64_t gen_source;

static void bump(struct kvmnc *h)
{
	__atomic_store_n(&h->ncs->gen, __atomic_add_fetch(&gen_source, 1, __ATOMIC_RELAXED),
			 __ATOMIC_RELEASE);
}

void kvmnc_ncs_init(struct kvmnc *h)
{
	kvmnc_rs_init(&h->ncs->hva);
	for (size_t i = 0; i < ARRAY_SIZE(h->ncs->gpa); i++)
		kvmnc_rs_init(&h->ncs->gpa[i]);
	h->ncs->any = false;
	h->ncs->had = false;
	__atomic_store_n(&h->ncs->ok, true, __ATOMIC_RELEASE);
	bump(h);
}

void kvmnc_ncs_destroy(struct kvmnc *h)
{
	kvmnc_rs_destroy(&h->ncs->hva);
	for (size_t i = 0; i < ARRAY_SIZE(h->ncs->gpa); i++)
		kvmnc_rs_destroy(&h->ncs->gpa[i]);
}

bool kvmnc_ncs_any(const struct kvmnc *h)
{
	return h->devs.n && (h->plain.n == 0 || h->plain_lost);
}

static void fill(struct kvmnc_ncs_entry *e, uint32_t slot, uint64_t gpa, uint64_t hva,
		 uint64_t size)
{
	e->slot = slot;
	e->gpa = gpa;
	e->hva = hva;
	e->size = size;
}

bool kvmnc_ncs_entry(const struct kvmnc *h, uint32_t slot, struct kvmnc_ncs_entry *e)
{
	const struct kvmnc_slot *nc = NULL, *pl = NULL;
	const struct kvmnc_pending *p = NULL;
	bool dev = h->devs.n > 0;

	memset(e, 0, sizeof(*e));
	/* Each table is asked only when the answer can depend on it. */
	if (kvmnc_ncs_nothing(h))
		return false;
	e->why = dev ? KVMNC_RANGE_DEVICE : 0;
	e->mechanism = h->region_mech;
	if ((nc = kvmnc_table_find(&h->nc, slot))) {
		fill(e, slot, nc->gpa, nc->hva, nc->size);
		e->why |= KVMNC_RANGE_REGION;
		return true;
	}
	p = kvmnc_table_find(&h->pending, slot);
	if (p && p->counts) {
		/* The VMM may be mapping it already. */
		fill(e, slot, p->r.guest_phys_addr, p->r.userspace_addr, p->r.memory_size);
		e->why |= KVMNC_RANGE_REGION | KVMNC_RANGE_PLANNED;
		return true;
	}
	if (!dev)
		return false;
	e->mechanism = h->device_mech;
	if ((pl = kvmnc_table_find(&h->plain, slot))) {
		fill(e, slot, pl->gpa, pl->hva, pl->size);
		return true;
	}
	if (p && p->r.memory_size) {
		/* A plain memslot on its way in: guest memory the device may reach. */
		fill(e, slot, p->r.guest_phys_addr, p->r.userspace_addr, p->r.memory_size);
		e->why |= KVMNC_RANGE_PLANNED;
		return true;
	}
	return false;
}

int kvmnc_ncs_for_each(const struct kvmnc *h, int (*fn)(const struct kvmnc_ncs_entry *, void *),
		       void *arg)
{
	/* Each slot once: the first table that holds it answers for it. */
	const struct kvmnc_table *tabs[3] = {&h->nc, &h->pending, &h->plain};
	struct kvmnc_ncs_entry e;
	int r;

	if (kvmnc_ncs_any(h))
		return 0;
	for (int t = 0; t < 3; t++) {
		if (t == 2 && !h->devs.n)
			break;
		for (uint32_t i = 0; i < tabs[t]->n; i++) {
			uint32_t slot = *(const uint32_t *)kvmnc_table_at(tabs[t], i);

			if (t >= 1 && kvmnc_table_find(&h->nc, slot))
				continue;
			if (t == 2 && kvmnc_table_find(&h->pending, slot))
				continue;
			if (!kvmnc_ncs_entry(h, slot, &e))
				continue;
			r = fn(&e, arg);
			if (r)
				return r;
		}
	}
	return 0;
}

struct overlap_q {
	int as;
	uint64_t start, len;
};

static int overlap_fn(const struct kvmnc_ncs_entry *e, void *arg)
{
	const struct overlap_q *q = arg;
	uint64_t a = q->as < 0 ? e->hva : e->gpa;

	if (q->as >= 0 && (e->slot >> 16) != (uint32_t)q->as)
		return 0;
	/* [a, a + size) against the query; neither wraps (checked on the way in). */
	return q->start < a + e->size && a < q->start + q->len;
}

bool kvmnc_ncs_overlaps(const struct kvmnc *h, int as, uint64_t start, uint64_t len)
{
	struct overlap_q q = {.as = as, .start = start, .len = len};

	if (!len)
		return false;
	if (kvmnc_ncs_any(h))
		return true;
	return kvmnc_ncs_for_each(h, overlap_fn, &q) != 0;
}

bool kvmnc_range_noncoherent(const struct kvmnc *h, uint64_t start, uint64_t len)
{
	return kvmnc_ncs_overlaps(h, -1, start, len);
}

static struct kvmnc_rs_range rs_range(const struct kvmnc_ncs_entry *e, bool by_gpa)
{
	struct kvmnc_rs_range r = {
		.start = by_gpa ? e->gpa : e->hva,
		.len = e->size,
		.aux = by_gpa ? e->hva : e->gpa,
		.slot = e->slot,
		.why = e->why,
	};
	return r;
}

static void stale(struct kvmnc *h)
{
	__atomic_store_n(&h->ncs->ok, false, __ATOMIC_RELEASE);
}

/* The GPA set of @slot's address space (slots are checked against nr_as on the way in). */
static struct kvmnc_rs *gpa_set(struct kvmnc *h, uint32_t slot)
{
	return &h->ncs->gpa[(slot >> 16) % KVMNC_MAX_AS];
}

void kvmnc_ncs_end_slow(struct kvmnc *h, uint32_t slot)
{
	struct kvmnc_ncs_entry e;
	struct kvmnc_rs_range r;
	bool has = kvmnc_ncs_entry(h, slot, &e);

	if (has == h->ncs->had && (!has || !memcmp(&e, &h->ncs->old, sizeof(e))))
		return;
	bump(h);
	/* The first plain memslot under a device, or the last, turns "any" off or on. */
	if (!kvmnc_ncs_ok(h) || h->ncs->any != kvmnc_ncs_any(h)) {
		kvmnc_ncs_rebuild(h);
		return;
	}
	if (h->ncs->any)
		return;
	if (h->ncs->had &&
	    (kvmnc_rs_remove(&h->ncs->hva, h->ncs->old.hva, h->ncs->old.size, slot) ||
	     kvmnc_rs_remove(gpa_set(h, slot), h->ncs->old.gpa, h->ncs->old.size, slot))) {
		stale(h);
		return;
	}
	if (!has)
		return;
	r = rs_range(&e, false);
	if (kvmnc_rs_add(&h->ncs->hva, &r)) {
		stale(h);
		return;
	}
	r = rs_range(&e, true);
	if (kvmnc_rs_add(gpa_set(h, slot), &r))
		stale(h);
}

void kvmnc_ncs_devices(struct kvmnc *h, uint32_t before)
{
	bump(h);
	if (!kvmnc_ncs_ok(h) || (before == 0) != (h->devs.n == 0))
		kvmnc_ncs_rebuild(h);
}

struct collect {
	struct kvmnc_rs_range *r;
	size_t n, cap;
	int as; /* -1: by host address */
};

static int collect_fn(const struct kvmnc_ncs_entry *e, void *arg)
{
	struct collect *c = arg;

	if (c->as >= 0 && (e->slot >> 16) != (uint32_t)c->as)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct kvmnc_rs_range *r = SYS(realloc, c->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		c->r = r;
		c->cap = cap;
	}
	c->r[c->n++] = rs_range(e, c->as >= 0);
	return 0;
}

/* Replaces @s with the entries of address space @as (-1: all, by host address). */
static int rebuild_one(struct kvmnc *h, struct kvmnc_rs *s, int as, bool any)
{
	struct collect c = {.as = as};
	int r;

	if (any) {
		struct kvmnc_rs_range all = {
			.len = UINT64_MAX,
			.slot = KVMNC_RANGE_ANY_SLOT,
			.why = KVMNC_RANGE_ANY | KVMNC_RANGE_DEVICE,
		};
		return kvmnc_rs_replace(s, &all, 1);
	}
	r = kvmnc_ncs_for_each(h, collect_fn, &c);
	if (r == 0)
		r = kvmnc_rs_replace(s, c.r, c.n);
	free(c.r);
	return r;
}

bool kvmnc_ncs_rebuild(struct kvmnc *h)
{
	bool any = kvmnc_ncs_any(h);
	uint32_t nas = h->nr_as < KVMNC_MAX_AS ? h->nr_as : KVMNC_MAX_AS;

	stale(h);
	if (rebuild_one(h, &h->ncs->hva, -1, any))
		return false;
	for (uint32_t as = 0; as < nas; as++)
		if (rebuild_one(h, &h->ncs->gpa[as], (int)as, any))
			return false;
	h->ncs->any = any;
	__atomic_store_n(&h->ncs->ok, true, __ATOMIC_RELEASE);
	return true;
}
