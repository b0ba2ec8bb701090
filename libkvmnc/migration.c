// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Live migration of non-coherent memory. A device that writes without
 * snooping can leave the CPU caches holding stale lines for that memory,
 * and the host reads guest RAM through WB mappings; a device that reads
 * without snooping does not see what the CPU left in its caches. Reading
 * such memory coherently means invalidating its lines first, writing it
 * for a device means writing the lines back (cacheops.c does both).
 *
 * What is non-coherent is defined in ncstate.c. The helpers here read it
 * without the handle lock: a reference on the handle (one compare-and-swap),
 * then the range set by host address through a per-thread hint, which
 * answers a page inside the run of memory the previous call of this thread
 * found with one load and one compare. Only when the sets are stale (a
 * writer ran out of memory) do they take the lock and ask the tables.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cacheops.h"
#include "internal.h"

/*
 * One hint per thread for all handles: a hint names the set generation it
 * was found in, and generations are unique in the process, so a hint from
 * another handle (or an older state) simply misses.
 */
static __thread struct kvmnc_rs_hint hva_hint;

enum op { OP_READ, OP_WRITE, OP_FLUSH };

static bool bad_range(const void *p, size_t len)
{
	return (!p && len) || (uintptr_t)p + len < (uintptr_t)p;
}

static bool overlaps(const void *a, const void *b, size_t len)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return x < y + len && y < x + len;
}

void (*kvmnc_migration_trace)(int op, const void *guest, size_t len);

/* The part of the operation on [off, off + n) of the guest side. */
static inline void run(enum op op, char *dst, const char *src, size_t off, size_t n, bool nc)
{
	if (nc && kvmnc_migration_trace)
		kvmnc_migration_trace(op, (op == OP_WRITE ? dst : src) + off, n);
	switch (op) {
	case OP_READ:
		if (nc)
			kvmnc_cache_copy_read(dst + off, src + off, n);
		else
			memcpy(dst + off, src + off, n);
		break;
	case OP_WRITE:
		if (nc)
			kvmnc_cache_copy_write(dst + off, src + off, n);
		else
			memcpy(dst + off, src + off, n);
		break;
	case OP_FLUSH:
		if (nc)
			kvmnc_cache_flush(src + off, n);
		break;
	}
}

/*
 * The stale-set path: the tables under the lock (rebuilding the sets if
 * memory allows), then the whole range as one part.
 */
static int slow(struct kvmnc *h, enum op op, char *dst, const char *src, const void *guest,
		size_t len)
{
	struct kvmnc *locked;
	int r = kvmnc_handle_get(h->token, &locked);
	bool nc;

	if (r < 0)
		return r;
	nc = kvmnc_range_noncoherent(h, (uintptr_t)guest, len);
	if (!kvmnc_ncs_ok(h))
		kvmnc_ncs_rebuild(h);
	kvmnc_handle_put(h);
	if (nc) {
		r = kvmnc_cache_ready();
		if (r < 0)
			return r;
	}
	run(op, dst, src, 0, len, nc);
	return 0;
}

/*
 * [off, len), the caller holding a reference: what the hint could not
 * answer, the stale-set path, and CPUs without cache maintenance.
 */
static int segments(struct kvmnc *h, enum op op, char *dst, const char *src, const char *guest,
		    size_t off, size_t len)
{
	struct kvmnc_rs *set = &h->ncs->hva;
	int r = 0;

	if (!kvmnc_ncs_ok(h)) {
		r = slow(h, op, dst + (dst ? off : 0), src + off, guest + off, len - off);
	} else if ((r = kvmnc_cache_ready()) < 0) {
		/* No cache maintenance here: fine only if nothing needs it, and then all of it. */
		if (!kvmnc_rs_overlaps(set, (uintptr_t)guest + off, len - off)) {
			run(op, dst, src, off, len - off, false);
			r = 0;
		}
	} else {
		for (size_t n; off < len; off += n) {
			bool nc;

			n = (size_t)kvmnc_rs_segment(set, &hva_hint, (uintptr_t)guest + off,
						     len - off, &nc);
			run(op, dst, src, off, n, nc);
		}
	}
	return r;
}

/*
 * @guest is the side that is guest memory: src for reads and flushes, dst
 * for writes. The reference keeps the handle's memory (it is freed with
 * the last one) for what the hint does not answer.
 */
static int copy_op(const struct kvmnc *token, enum op op, void *dst, const void *src, size_t len)
{
	const char *guest = op == OP_WRITE ? dst : src;
	size_t off = 0, n;
	struct kvmnc *h;
	int r;

	/* Nothing to copy: only whether the handle is open, as a plain check says. */
	if (!len)
		return kvmnc_handle_ncs(token) ? 0 : -EBADF;
	r = kvmnc_handle_ref(token, &h);
	if (r < 0)
		return r;
	if (len && kvmnc_ncs_ok(h) && kvmnc_cache_usable()) {
		for (bool nc; off < len; off += n) {
			n = (size_t)kvmnc_rs_hinted(&h->ncs->hva, &hva_hint, (uintptr_t)guest + off,
						    len - off, &nc);
			if (!n)
				break;
			run(op, dst, src, off, n, nc);
		}
	}
	if (off < len)
		r = segments(h, op, dst, src, guest, off, len);
	kvmnc_handle_unref(h);
	return r;
}

/*
 * The common case, inline in each entry point: the thread's hint answers
 * for the whole range, with nothing but loads and no reference. The range
 * sets live in the handle's registry slot, which is never freed, and a
 * hint names a set generation that no change, close or reuse of the slot
 * brings back: a close racing with this answers as if the call came first.
 */
static inline bool fast(const struct kvmnc *token, const void *guest, size_t len, bool *nc)
{
	struct kvmnc_ncs *ncs;

	return len && (ncs = kvmnc_handle_ncs(token)) &&
	       __atomic_load_n(&ncs->ok, __ATOMIC_ACQUIRE) && kvmnc_cache_usable() &&
	       kvmnc_rs_hinted(&ncs->hva, &hva_hint, (uintptr_t)guest, len, nc) == len;
}

static bool bad_copy(const void *dst, const void *src, size_t len)
{
	return bad_range(dst, len) || bad_range(src, len) || (len && overlaps(dst, src, len));
}

KVMNC_API int kvmnc_copy_from_guest(struct kvmnc *h, void *dst, const void *src, size_t len)
{
	bool nc;

	if (bad_copy(dst, src, len))
		return -EINVAL;
	if (!fast(h, src, len, &nc))
		return copy_op(h, OP_READ, dst, src, len);
	run(OP_READ, dst, src, 0, len, nc);
	return 0;
}

KVMNC_API int kvmnc_copy_to_guest(struct kvmnc *h, void *dst, const void *src, size_t len)
{
	bool nc;

	if (bad_copy(dst, src, len))
		return -EINVAL;
	if (!fast(h, dst, len, &nc))
		return copy_op(h, OP_WRITE, dst, src, len);
	run(OP_WRITE, dst, src, 0, len, nc);
	return 0;
}

KVMNC_API int kvmnc_flush(struct kvmnc *h, const void *addr, size_t len)
{
	bool nc;

	if (bad_range(addr, len))
		return -EINVAL;
	if (!fast(h, addr, len, &nc))
		return copy_op(h, OP_FLUSH, NULL, addr, len);
	run(OP_FLUSH, NULL, addr, 0, len, nc);
	return 0;
}

KVMNC_API int kvmnc_is_noncoherent(struct kvmnc *hd)
{
	struct kvmnc *h;
	int r = kvmnc_handle_get(hd, &h);

	if (r < 0)
		return r;
	r = h->nc.n || h->pending_nc || h->devs.n;
	kvmnc_handle_put(h);
	return r;
}

/* A range query on one set: as < 0 by host address. */
static int query(const struct kvmnc *token, int as, uint64_t start, uint64_t len)
{
	struct kvmnc *h, *locked;
	int r = kvmnc_handle_ref(token, &h);

	if (r < 0)
		return r;
	if (as >= (int)h->nr_as) {
		r = -EINVAL;
	} else if (kvmnc_ncs_ok(h)) {
		r = kvmnc_rs_overlaps(as < 0 ? &h->ncs->hva : &h->ncs->gpa[as % KVMNC_MAX_AS],
				      start, len);
	} else {
		r = kvmnc_handle_get(token, &locked);
		if (r == 0) {
			r = kvmnc_ncs_overlaps(h, as, start, len);
			kvmnc_handle_put(locked);
		}
	}
	kvmnc_handle_unref(h);
	return r;
}

KVMNC_API int kvmnc_hva_is_noncoherent(struct kvmnc *h, const void *hva, size_t len)
{
	if (bad_range(hva, len))
		return -EINVAL;
	return query(h, -1, (uintptr_t)hva, len);
}

KVMNC_API int kvmnc_gpa_is_noncoherent(struct kvmnc *h, uint32_t as_id, uint64_t gpa, uint64_t len)
{
	if (gpa + len < gpa || as_id > INT32_MAX)
		return -EINVAL;
	return query(h, (int)as_id, gpa, len);
}

/* ---- snapshots ---------------------------------------------------------------- */

/* What a 1.1 caller's struct kvmnc_range holds at least. */
#define RANGE_MIN_SZ offsetofend(struct kvmnc_range, mechanism)

struct snapshot {
	struct kvmnc_snapshot pub;
	unsigned char ranges[];
};

struct gather {
	struct kvmnc_range *r;
	size_t n, cap;
};

static int gather_fn(const struct kvmnc_ncs_entry *e, void *arg)
{
	struct gather *g = arg;
	struct kvmnc_range *r;

	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;

		r = SYS(realloc, g->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		g->r = r;
		g->cap = cap;
	}
	r = &g->r[g->n++];
	memset(r, 0, sizeof(*r));
	r->slot = e->slot;
	r->why = e->why;
	r->guest_phys_addr = e->gpa;
	r->memory_size = e->size;
	r->userspace_addr = e->hva;
	r->mechanism = e->mechanism;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct kvmnc_range *x = a, *y = b;

	if (x->userspace_addr != y->userspace_addr)
		return x->userspace_addr < y->userspace_addr ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* Under the lock: the entries, sorted, in @g; the ANY range alone while it applies. */
static int gather(const struct kvmnc *h, struct gather *g)
{
	struct kvmnc_ncs_entry any = {
		.slot = KVMNC_RANGE_ANY_SLOT,
		.why = KVMNC_RANGE_ANY | KVMNC_RANGE_DEVICE,
		.mechanism = h->device_mech,
		.size = UINT64_MAX,
	};
	int r;

	if (kvmnc_ncs_any(h))
		return gather_fn(&any, g);
	r = kvmnc_ncs_for_each(h, gather_fn, g);
	if (r == 0 && g->n > 1)
		qsort(g->r, g->n, sizeof(*g->r), cmp_range);
	return r;
}

KVMNC_API int kvmnc_snapshot_take(struct kvmnc *hd, size_t range_sz, struct kvmnc_snapshot **out)
{
	struct kvmnc *h;
	struct kvmnc_cache_info ci;
	struct gather g = {0};
	struct snapshot *s = NULL;
	size_t copy_sz =
		range_sz < sizeof(struct kvmnc_range) ? range_sz : sizeof(struct kvmnc_range);
	int r;

	if (!out || range_sz < RANGE_MIN_SZ || range_sz > KVMNC_STRUCT_MAX)
		return -EINVAL;
	r = kvmnc_handle_get(hd, &h);
	if (r < 0)
		return r;
	r = gather(h, &g);
	if (r == 0 && g.n > (SIZE_MAX - sizeof(*s)) / range_sz)
		r = -ENOMEM;
	if (r == 0) {
		s = SYS(calloc, 1, sizeof(*s) + g.n * range_sz);
		if (!s)
			r = -ENOMEM;
	}
	if (r == 0) {
		s->pub.sz = sizeof(s->pub);
		s->pub.generation = __atomic_load_n(&h->ncs->gen, __ATOMIC_ACQUIRE);
		s->pub.count = g.n;
		s->pub.range_sz = range_sz;
		s->pub.ranges = (const struct kvmnc_range *)s->ranges;
		s->pub.enabled_devices = h->devs.n;
		s->pub.noncoherent_regions = h->nc.n;
		s->pub.planned_regions = h->pending_nc;
		s->pub.region_mechanism = h->region_mech;
		s->pub.device_mechanism = h->device_mech;
		for (size_t i = 0; i < g.n; i++)
			memcpy(s->ranges + i * range_sz, &g.r[i], copy_sz);
	}
	kvmnc_handle_put(h);
	free(g.r);
	if (r < 0)
		return r;
	s->pub.cache_maintenance = kvmnc_cache_info(&ci);
	s->pub.invalidate_insn = kvmnc_cache_insn_name(ci.inval);
	s->pub.writeback_insn = kvmnc_cache_insn_name(ci.wb);
	*out = &s->pub;
	return 0;
}

KVMNC_API int kvmnc_snapshot_stale(struct kvmnc *hd, const struct kvmnc_snapshot *snap)
{
	struct kvmnc *h;
	int r;

	if (!snap)
		return -EINVAL;
	r = kvmnc_handle_ref(hd, &h);
	if (r < 0)
		return r;
	r = __atomic_load_n(&h->ncs->gen, __ATOMIC_ACQUIRE) != snap->generation;
	kvmnc_handle_unref(h);
	return r;
}

KVMNC_API void kvmnc_snapshot_free(struct kvmnc_snapshot *snap)
{
	/* pub is the first member. */
	free(snap);
}

KVMNC_API const struct kvmnc_range *kvmnc_snapshot_range(const struct kvmnc_snapshot *snap,
							 size_t i)
{
	if (!snap || i >= snap->count)
		return NULL;
	return (const void *)((const char *)snap->ranges + i * snap->range_sz);
}

/* ---- the policy ---------------------------------------------------------------- */

static void advice(struct kvmnc_migration_advice *a, int action, uint32_t flags, const char *why)
{
	a->action = action;
	a->flags = flags;
	snprintf(a->reason, sizeof(a->reason), "%s", why);
}

static bool any_device(const struct kvmnc_snapshot *s)
{
	for (size_t i = 0; i < s->count; i++) {
		const struct kvmnc_range *r = kvmnc_snapshot_range(s, i);

		if (r->why & KVMNC_RANGE_DEVICE)
			return true;
	}
	return false;
}

KVMNC_API int kvmnc_migration_advise(const struct kvmnc_snapshot *snap, int mode,
				     struct kvmnc_migration_advice *out)
{
	struct kvmnc_migration_advice a = {.sz = sizeof(a)};
	int r;

	if (!snap || snap->range_sz < RANGE_MIN_SZ || mode < KVMNC_MIGRATION_NONE ||
	    mode > KVMNC_MIGRATION_POSTCOPY)
		return -EINVAL;
	if (out) {
		r = kvmnc_struct_out_ok(out);
		if (r < 0)
			return r;
	}
	if (snap->count == 0)
		advice(&a, KVMNC_MIGRATE_PLAIN, 0,
		       "no memory is non-coherent: guest memory can be copied as usual");
	else if (mode == KVMNC_MIGRATION_NONE)
		advice(&a, KVMNC_MIGRATE_BLOCK, 0,
		       "guest memory is non-coherent and the VMM copies it without the "
		       "coherent helpers: stale cache lines would be migrated");
	else if (snap->cache_maintenance < 0)
		advice(&a, KVMNC_MIGRATE_BLOCK, 0,
		       "guest memory is non-coherent and this CPU has no cache-line flush "
		       "the helpers can use");
	else if (mode == KVMNC_MIGRATION_POSTCOPY && any_device(snap))
		advice(&a, KVMNC_MIGRATE_BLOCK, 0,
		       "a device model is enabled and may DMA to guest pages that have not "
		       "arrived; DMA raises no userfault: migrate with pre-copy");
	else if (mode == KVMNC_MIGRATION_POSTCOPY)
		advice(&a, KVMNC_MIGRATE_COHERENT,
		       KVMNC_ADVICE_RESEND | KVMNC_ADVICE_POSTCOPY_ORDER,
		       "copy the listed ranges with the coherent helpers, fill their pages with "
		       "UFFDIO_COPY_MODE_DONTWAKE, kvmnc_flush(), UFFDIO_WAKE, and keep the device "
		       "models stopped until their ranges have arrived");
	else
		advice(&a, KVMNC_MIGRATE_COHERENT, KVMNC_ADVICE_RESEND,
		       "copy the listed ranges with the coherent helpers, and again after the "
		       "device models stopped: KVM's dirty log does not see their writes");
	if (out)
		kvmnc_struct_out(out, &a, sizeof(a));
	return a.action;
}
