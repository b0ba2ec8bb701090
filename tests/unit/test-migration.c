// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Migration: what counts as non-coherent (per range, by host and guest
 * address, and in snapshots) through register/delete/enable/disable
 * sequences and VMM-owned slots; the lock-free sets against the tables they
 * mirror; copies identical to memcpy at every size class and alignment with
 * guard bytes intact; the cache instruction chosen through the seam's CPUID
 * for each path; the policy; running out of memory on the way.
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

#include <cmocka.h>

#include "cacheops.h"
#include "helpers.h"

#define LEN   (256 * 1024 + 100)
#define GUARD 256
#define MIB   (1024 * 1024)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed + (i >> 8));
}

/* A 4 KiB-aligned buffer of @len bytes (a multiple of 4 KiB). */
static unsigned char *guest_mem(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

/* A memslot @slot at @gpa whose host range is @mem. */
static struct kvmnc_region region_at(uint32_t slot, uint64_t gpa, void *mem, size_t len, bool nc)
{
	struct kvmnc_region r = region(slot, gpa, len, nc);

	r.userspace_addr = (uintptr_t)mem;
	return r;
}

static void set_mem(struct kvmnc *h, uint32_t slot, uint64_t gpa, void *mem, size_t len, bool nc)
{
	struct kvmnc_region r = region_at(slot, gpa, mem, len, nc);

	assert_int_equal(kvmnc_set_region(h, &r), 0);
}

static void del_mem(struct kvmnc *h, uint32_t slot, uint64_t gpa, void *mem)
{
	struct kvmnc_region r = region_at(slot, gpa, mem, 0, false);

	assert_int_equal(kvmnc_set_region(h, &r), 0);
}

static int hva_nc(struct kvmnc *h, const void *p, size_t len)
{
	return kvmnc_hva_is_noncoherent(h, p, len);
}

static const struct kvmnc_range *range_at(const struct kvmnc_snapshot *s, size_t i)
{
	return (const void *)((const char *)s->ranges + i * s->range_sz);
}

/* The snapshot's range for @slot, NULL if none. */
static const struct kvmnc_range *snap_slot(const struct kvmnc_snapshot *s, uint32_t slot)
{
	for (size_t i = 0; i < s->count; i++)
		if (range_at(s, i)->slot == slot)
			return range_at(s, i);
	return NULL;
}

static struct kvmnc_snapshot *snap(struct kvmnc *h)
{
	struct kvmnc_snapshot *s = NULL;

	assert_int_equal(kvmnc_snapshot_take(h, sizeof(struct kvmnc_range), &s), 0);
	assert_non_null(s);
	assert_int_equal(s->sz, sizeof(*s));
	for (size_t i = 1; i < s->count; i++)
		assert_true(range_at(s, i - 1)->userspace_addr <= range_at(s, i)->userspace_addr);
	return s;
}

/* Slot @slot in @s with exactly @why, at @mem. */
static void expect_range(const struct kvmnc_snapshot *s, uint32_t slot, uint32_t why, uint64_t gpa,
			 const void *mem, size_t len, int mech)
{
	const struct kvmnc_range *r = snap_slot(s, slot);

	assert_non_null(r);
	assert_int_equal(r->why, why);
	assert_int_equal(r->guest_phys_addr, gpa);
	assert_int_equal(r->userspace_addr, (uintptr_t)mem);
	assert_int_equal(r->memory_size, len);
	assert_int_equal(r->mechanism, mech);
}

/* Every kind of memslot through the public answers, one step at a time. */
static void test_range_answers(void **state)
{
	const size_t L = 64 * 1024;
	unsigned char *ram = guest_mem(L), *blob = guest_mem(L), *vmm = guest_mem(L),
		      *other = guest_mem(L), *heap = guest_mem(L);
	struct kvmnc_region_plan p = KVMNC_OPTS_INIT(kvmnc_region_plan);
	struct kvmnc_snapshot *s;
	struct kvmnc_region r;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	s = snap(h);
	assert_int_equal(s->count, 0);
	kvmnc_snapshot_free(s);

	/* A plain slot and a non-coherent one: only the latter, by either address. */
	set_mem(h, 0, 0, ram, L, false);
	set_mem(h, 1, 1ULL << 32, blob, L, true);
	assert_int_equal(hva_nc(h, ram, L), 0);
	assert_int_equal(hva_nc(h, blob, 1), 1);
	assert_int_equal(hva_nc(h, blob + L - 1, 1), 1);
	assert_int_equal(hva_nc(h, blob + L, 1), 0);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 0, L), 0);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, (1ULL << 32) - 1, 2), 1);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, (1ULL << 32) + L, 4096), 0);
	/* Address space 1 has nothing; 2 does not exist on x86. */
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 1, 1ULL << 32, L), 0);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 2, 1ULL << 32, L), -EINVAL);
	s = snap(h);
	assert_int_equal(s->count, 1);
	expect_range(s, 1, KVMNC_RANGE_REGION, 1ULL << 32, blob, L, KVMNC_MECH_MEMSLOT_FLAG);
	assert_int_equal(s->noncoherent_regions, 1);
	assert_int_equal(s->enabled_devices, 0);
	kvmnc_snapshot_free(s);

	/* A device: every memslot the library knows, and nothing else. */
	assert_int_equal(kvmnc_device_enable(h, 7), 0);
	assert_int_equal(hva_nc(h, ram, 1), 1);
	assert_int_equal(hva_nc(h, heap, L), 0);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, L - 1, 1), 1);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, L, 4096), 0);
	s = snap(h);
	assert_int_equal(s->count, 2);
	expect_range(s, 0, KVMNC_RANGE_DEVICE, 0, ram, L, KVMNC_MECH_VIRTIO_DEVICE);
	expect_range(s, 1, KVMNC_RANGE_REGION | KVMNC_RANGE_DEVICE, 1ULL << 32, blob, L,
		     KVMNC_MECH_MEMSLOT_FLAG);
	assert_int_equal(s->enabled_devices, 1);
	kvmnc_snapshot_free(s);

	/* A VMM-owned plain slot under the device: from its plan on. */
	r = region_at(3, 2ULL << 32, vmm, L, false);
	assert_int_equal(kvmnc_region_prepare(h, &r, &p), 0);
	assert_int_equal(hva_nc(h, vmm, 4096), 1);
	s = snap(h);
	expect_range(s, 3, KVMNC_RANGE_DEVICE | KVMNC_RANGE_PLANNED, 2ULL << 32, vmm, L,
		     KVMNC_MECH_VIRTIO_DEVICE);
	kvmnc_snapshot_free(s);
	assert_int_equal(kvmnc_region_complete(h, 3, 0), 0);
	s = snap(h);
	expect_range(s, 3, KVMNC_RANGE_DEVICE, 2ULL << 32, vmm, L, KVMNC_MECH_VIRTIO_DEVICE);
	kvmnc_snapshot_free(s);

	/* The device goes: plain memory is plain again. */
	assert_int_equal(kvmnc_device_disable(h, 7), 0);
	assert_int_equal(hva_nc(h, ram, L), 0);
	assert_int_equal(hva_nc(h, vmm, L), 0);
	assert_int_equal(hva_nc(h, blob, L), 1);

	/* A VMM-owned non-coherent slot: planned, then KVM's answer. */
	r = region_at(4, 3ULL << 32, other, L, true);
	assert_int_equal(kvmnc_region_prepare(h, &r, &p), 0);
	assert_int_equal(p.add_flags, KVMNC_MEM_NON_COHERENT_DMA);
	assert_int_equal(hva_nc(h, other + 100, 1), 1);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 3ULL << 32, 1), 1);
	s = snap(h);
	expect_range(s, 4, KVMNC_RANGE_REGION | KVMNC_RANGE_PLANNED, 3ULL << 32, other, L,
		     KVMNC_MECH_MEMSLOT_FLAG);
	assert_int_equal(s->planned_regions, 1);
	kvmnc_snapshot_free(s);
	/* The VMM's ioctl failed: gone again. */
	assert_int_equal(kvmnc_region_complete(h, 4, -EINVAL), 0);
	assert_int_equal(hva_nc(h, other, L), 0);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 3ULL << 32, L), 0);
	/* Again, and this time it worked; later the VMM deletes it. */
	assert_int_equal(kvmnc_region_prepare(h, &r, &p), 0);
	assert_int_equal(kvmnc_region_complete(h, 4, 0), 0);
	assert_int_equal(hva_nc(h, other, L), 1);
	assert_int_equal(kvmnc_region_removed(h, 4), 0);
	assert_int_equal(hva_nc(h, other, L), 0);
	/* Forgetting a plain slot is allowed too; an unknown one is -ENOENT. */
	assert_int_equal(kvmnc_region_removed(h, 3), 0);
	assert_int_equal(kvmnc_region_removed(h, 3), -ENOENT);

	/* Moving the non-coherent slot moves its guest range, not its host one. */
	set_mem(h, 1, 5ULL << 32, blob, L, true);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 1ULL << 32, L), 0);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 5ULL << 32, L), 1);
	assert_int_equal(hva_nc(h, blob, L), 1);
	del_mem(h, 1, 5ULL << 32, blob);
	assert_int_equal(hva_nc(h, blob, L), 0);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 0, UINT64_MAX), 0);
	s = snap(h);
	assert_int_equal(s->count, 0);
	kvmnc_snapshot_free(s);

	/* Address space 1 (SMM) is apart from 0. */
	set_mem(h, 1u << 16 | 9, 1ULL << 32, blob, L, true);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 1, 1ULL << 32, 1), 1);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 1ULL << 32, 1), 0);
	assert_int_equal(hva_nc(h, blob, 1), 1);

	/* Bad input. */
	assert_int_equal(kvmnc_hva_is_noncoherent(h, NULL, 1), -EINVAL);
	assert_int_equal(kvmnc_hva_is_noncoherent(h, (void *)(UINTPTR_MAX - 8), 16), -EINVAL);
	assert_int_equal(kvmnc_hva_is_noncoherent(h, NULL, 0), 0);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, UINT64_MAX - 8, 16), -EINVAL);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, UINT32_MAX, 0, 16), -EINVAL);
	kvmnc_close(h);
	assert_int_equal(hva_nc(h, blob, 1), -EBADF);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 0, 1), -EBADF);
	assert_int_equal(hva_nc(NULL, blob, 1), -EBADF);
	munmap(ram, L);
	munmap(blob, L);
	munmap(vmm, L);
	munmap(other, L);
	munmap(heap, L);
}

/*
 * A device with no known guest memory: the library cannot tell guest memory
 * apart, so every address counts (1.0 flushed everything then, too); the
 * first plain memslot through the library makes the answers exact.
 */
static void test_any_address(void **state)
{
	const size_t L = 64 * 1024;
	unsigned char *ram = guest_mem(L), *heap = guest_mem(L);
	struct kvmnc_snapshot *s;
	const struct kvmnc_range *r;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	assert_int_equal(kvmnc_device_enable(h, 1), 0);
	assert_int_equal(hva_nc(h, heap, 1), 1);
	assert_int_equal(kvmnc_gpa_is_noncoherent(h, 1, 123, 1), 1);
	s = snap(h);
	assert_int_equal(s->count, 1);
	r = range_at(s, 0);
	assert_int_equal(r->slot, KVMNC_RANGE_ANY_SLOT);
	assert_int_equal(r->why, KVMNC_RANGE_ANY | KVMNC_RANGE_DEVICE);
	assert_int_equal(r->userspace_addr, 0);
	assert_int_equal(r->memory_size, UINT64_MAX);
	kvmnc_snapshot_free(s);

	set_mem(h, 0, 0, ram, L, false);
	assert_int_equal(hva_nc(h, heap, L), 0);
	assert_int_equal(hva_nc(h, ram, L), 1);
	del_mem(h, 0, 0, ram);
	assert_int_equal(hva_nc(h, heap, L), 1);
	assert_int_equal(kvmnc_device_disable(h, 1), 0);
	assert_int_equal(hva_nc(h, heap, L), 0);
	kvmnc_close(h);
	munmap(ram, L);
	munmap(heap, L);
}

/*
 * Issue 11 point 6: non-coherent means what the VMM declared. The quirk in
 * force by itself declares nothing, in snapshots and per range too.
 */
static void test_semantics(void **state)
{
	unsigned char *guest = guest_mem(1 << 20);
	struct kvmnc_region_plan p = KVMNC_OPTS_INIT(kvmnc_region_plan);
	struct kvmnc_snapshot *s;
	struct kvmnc_region r;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("stable-6.12-intel", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	assert_true(OBJ(h)->quirk_disabled);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	set_mem(h, 0, 0, guest + 8192, 8192, false);
	assert_int_equal(hva_nc(h, guest, 1 << 20), 0);
	s = snap(h);
	assert_int_equal(s->count, 0);
	assert_int_equal(kvmnc_migration_advise(s, KVMNC_MIGRATION_NONE, NULL),
			 KVMNC_MIGRATE_PLAIN);
	kvmnc_snapshot_free(s);
	set_mem(h, 1, 1ULL << 30, guest, 8192, true);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	assert_int_equal(hva_nc(h, guest, 4096), 1);
	assert_int_equal(hva_nc(h, guest + 8192, 4096), 0);
	s = snap(h);
	expect_range(s, 1, KVMNC_RANGE_REGION, 1ULL << 30, guest, 8192, KVMNC_MECH_GUEST_PAT_QUIRK);
	kvmnc_snapshot_free(s);
	kvmnc_close(h);

	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	r = region_at(2, 1ULL << 30, guest, 1 << 20, true);
	assert_int_equal(kvmnc_region_prepare(h, &r, &p), 0);
	assert_true(kvmnc_range_noncoherent(OBJ(h), (uintptr_t)guest + 4096, 64));
	assert_int_equal(kvmnc_region_complete(h, r.slot, 0), 0);
	assert_true(kvmnc_range_noncoherent(OBJ(h), (uintptr_t)guest + 4096, 64));
	assert_int_equal(kvmnc_region_removed(h, r.slot), 0);
	assert_false(kvmnc_range_noncoherent(OBJ(h), (uintptr_t)guest + 4096, 64));
	kvmnc_close(h);
	munmap(guest, 1 << 20);
}

/*
 * The lock-free sets against the tables they mirror, after every step of a
 * random mix of library and VMM-owned memslot changes and devices.
 */
static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

#define NSLOTS 24
#define PAGES  64

/* The parts of the last helper call that got cache maintenance. */
static struct {
	uintptr_t a[64];
	size_t n[64];
	int count;
} traced;

static void trace(int op, const void *guest, size_t len)
{
	(void)op;
	assert_true(traced.count < 64);
	traced.a[traced.count] = (uintptr_t)guest;
	traced.n[traced.count++] = len;
}

static bool tables_nc(struct kvmnc *h, uintptr_t a, size_t len)
{
	bool nc;

	pthread_mutex_lock(&OBJ(h)->lock);
	nc = kvmnc_range_noncoherent(OBJ(h), a, len);
	pthread_mutex_unlock(&OBJ(h)->lock);
	return nc;
}

/*
 * A flush of [p, p + len) maintained exactly the non-coherent parts: every
 * traced part is non-coherent page by page (memslots are page-granular),
 * every gap between them is not.
 */
static void check_flush_parts(struct kvmnc *h, unsigned char *p, size_t len)
{
	uintptr_t at = (uintptr_t)p, end = at + len;

	traced.count = 0;
	assert_int_equal(kvmnc_flush(h, p, len), 0);
	for (int i = 0; i <= traced.count; i++) {
		uintptr_t a = i < traced.count ? traced.a[i] : end;

		assert_true(a >= at);
		if (a > at)
			assert_false(tables_nc(h, at, a - at));
		if (i == traced.count)
			break;
		for (uintptr_t x = a; x < a + traced.n[i];) {
			uintptr_t next =
				(x | 4095) + 1 < a + traced.n[i] ? (x | 4095) + 1 : a + traced.n[i];

			assert_true(tables_nc(h, x, next - x));
			x = next;
		}
		at = a + traced.n[i];
	}
}

static void check_against_tables(struct kvmnc *h, unsigned char *mem)
{
	assert_true(kvmnc_ncs_ok(OBJ(h)));
	for (int q = 0; q < 64; q++) {
		size_t off = (size_t)(rnd() % (PAGES * 4096)), len = (size_t)(rnd() % 20000);
		uint64_t gpa = rnd() % ((uint64_t)PAGES << 12), glen = rnd() % 20000;
		uint32_t as = (uint32_t)(rnd() % 2);
		bool want;

		if (off + len > PAGES * 4096)
			len = PAGES * 4096 - off;
		pthread_mutex_lock(&OBJ(h)->lock);
		want = kvmnc_range_noncoherent(OBJ(h), (uintptr_t)mem + off, len);
		pthread_mutex_unlock(&OBJ(h)->lock);
		assert_int_equal(hva_nc(h, mem + off, len), want);
		check_flush_parts(h, mem + off, len);
		pthread_mutex_lock(&OBJ(h)->lock);
		want = kvmnc_ncs_overlaps(OBJ(h), (int)as, gpa, glen);
		pthread_mutex_unlock(&OBJ(h)->lock);
		assert_int_equal(kvmnc_gpa_is_noncoherent(h, as, gpa, glen), want);
	}
}

static void test_sets_match_tables(void **state)
{
	unsigned char *mem = guest_mem(PAGES * 4096);
	struct kvmnc_region_plan p = KVMNC_OPTS_INIT(kvmnc_region_plan);
	bool planned[NSLOTS] = {0};
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	kvmnc_migration_trace = trace;
	for (int step = 0; step < 3000; step++) {
		uint32_t id = (uint32_t)(rnd() % NSLOTS), slot = (id % 3 == 0 ? 1u << 16 : 0) | id;
		/* Host ranges overlap freely (aliases); guest ranges are per slot. */
		size_t pg = (size_t)(rnd() % (PAGES - 4)), npg = 1 + (size_t)(rnd() % 4);
		struct kvmnc_region r = region_at(slot, (uint64_t)id * 4 * 4096, mem + pg * 4096,
						  npg * 4096, rnd() % 2);
		int op = (int)(rnd() % 8), ret;

		if (planned[id]) {
			ret = kvmnc_region_complete(h, slot, rnd() % 4 ? 0 : -EINVAL);
			assert_int_equal(ret, 0);
			planned[id] = false;
		} else if (op == 0) {
			kvmnc_device_enable(h, (uint32_t)(rnd() % 3));
		} else if (op == 1) {
			kvmnc_device_disable(h, (uint32_t)(rnd() % 3));
		} else if (op == 2) {
			r.memory_size = 0;
			kvmnc_set_region(h, &r);
		} else if (op == 3) {
			kvmnc_region_removed(h, slot);
		} else if (op == 4) {
			if (rnd() % 2)
				r.memory_size = 0;
			planned[id] = kvmnc_region_prepare(h, &r, &p) == 0;
		} else {
			/* KVM refuses a few (an overlap, an immutable host address): fine. */
			kvmnc_set_region(h, &r);
		}
		check_against_tables(h, mem);
	}
	kvmnc_migration_trace = NULL;
	kvmnc_close(h);
	munmap(mem, PAGES * 4096);
}

/* ---- copies ---------------------------------------------------------------- */

/*
 * @fn copies @len bytes between offsets in two guarded buffers, one of them
 * inside a non-coherent slot; the result must be what memcpy gives, and no
 * byte outside the destination range may change.
 */
enum dir { FROM, TO, FLUSH };

static void one_copy(struct kvmnc *h, enum dir d, unsigned char *g, unsigned char *b, size_t goff,
		     size_t boff, size_t len, unsigned seed)
{
	unsigned char *src = d == TO ? b + GUARD + boff : g + GUARD + goff;
	unsigned char *dst = d == TO ? g + GUARD + goff : b + GUARD + boff;
	size_t span = len + 2 * GUARD + 64;
	unsigned char *want_dst = malloc(span), *want_src = malloc(span);
	unsigned char *dbase = d == TO ? g : b, *sbase = d == TO ? b : g;
	int r;

	memset(dbase, 0xa5, span);
	fill(sbase, span, seed);
	memcpy(want_src, sbase, span);
	memcpy(want_dst, dbase, span);
	if (d != FLUSH)
		memcpy(want_dst + (dst - dbase), src, len);
	if (d == FROM)
		r = kvmnc_copy_from_guest(h, dst, src, len);
	else if (d == TO)
		r = kvmnc_copy_to_guest(h, dst, src, len);
	else
		r = kvmnc_flush(h, src, len);
	assert_int_equal(r, 0);
	assert_memory_equal(sbase, want_src, span);
	if (d != FLUSH)
		assert_memory_equal(dbase, want_dst, span);
	free(want_dst);
	free(want_src);
}

static void test_copies_exact(void **state)
{
	static const size_t sizes[] = {0, 1, 63, 64, 65, 4095, 4096, 4097};
	const size_t big = MIB + 17, blen = 2 * MIB;
	unsigned char *g = guest_mem(blen), *b = guest_mem(blen);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	set_mem(h, 1, 1ULL << 30, g, blen, true);
	for (int d = FROM; d <= FLUSH; d++) {
		for (size_t k = 0; k < ARRAY_SIZE(sizes); k++)
			for (size_t a = 0; a < 64; a++)
				one_copy(h, (enum dir)d, g, b, a, (a * 7 + 3) % 64, sizes[k],
					 (unsigned)(a + k));
		/* Large: every alignment within a line, on both sides. */
		for (size_t a = 0; a < 64; a++)
			one_copy(h, (enum dir)d, g, b, a, (a * 13 + 5) % 64, big, (unsigned)a);
	}
	kvmnc_close(h);
	munmap(g, blen);
	munmap(b, blen);
}

/* A copy across the edge of a non-coherent slot, and copies of plain memory. */
static void test_copies_straddle(void **state)
{
	unsigned char *mem = guest_mem(1 << 20);
	unsigned char *buf = malloc(LEN), *want = malloc(LEN);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	/* The middle half is non-coherent; copies run from plain into it and out. */
	set_mem(h, 1, 1ULL << 30, mem + (256 << 10), 512 << 10, true);
	for (int pass = 0; pass < 3; pass++) {
		unsigned char *g = mem + (pass == 0 ? 13 : pass == 1 ? (256 << 10) - 4099 : 700000);
		size_t n = pass == 2 ? LEN - 100 : LEN;

		fill(want, n, 7u + pass);
		assert_int_equal(kvmnc_copy_to_guest(h, g, want, n), 0);
		assert_memory_equal(g, want, n);
		memset(buf, 0, n);
		assert_int_equal(kvmnc_copy_from_guest(h, buf, g, n), 0);
		assert_memory_equal(buf, want, n);
		assert_int_equal(kvmnc_flush(h, g, n), 0);
		assert_memory_equal(g, want, n);
	}
	fill(want, 1000, 3);
	assert_int_equal(kvmnc_copy_from_guest(h, buf, want, 1000), 0);
	assert_memory_equal(buf, want, 1000);
	assert_int_equal(kvmnc_copy_to_guest(h, buf, want, 0), 0);
	kvmnc_close(h);
	munmap(mem, 1 << 20);
	free(buf);
	free(want);
}

/*
 * Large copies across both edges of a non-coherent slot, in the sizes where
 * the engine streams (non-temporal, four streams, invalidations spread):
 * the bytes are memcpy's, and the engine's own reports (kvmnc_cache_trace)
 * show that exactly the slot's part went through it, each chunk loaded
 * only after its lines were invalidated and fenced.
 */
struct straddle_trace {
	uintptr_t lo, hi;     /* the slot's part of the copy */
	uintptr_t inval_end;  /* invalidated, pending */
	uintptr_t fenced_end; /* invalidated and fenced */
	uintptr_t copied_end; /* loaded, in order */
	bool bad;
};

static struct straddle_trace st;

static void straddle_trace(enum kvmnc_cache_event ev, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;

	switch (ev) {
	case KVMNC_CACHE_EV_INVAL:
		st.bad |= a != st.inval_end || a + n > st.hi;
		st.inval_end = a + n;
		break;
	case KVMNC_CACHE_EV_FENCE:
		st.fenced_end = st.inval_end;
		break;
	case KVMNC_CACHE_EV_COPY:
		st.bad |= a != st.copied_end || a + n > st.fenced_end;
		st.copied_end = a + n;
		break;
	}
}

static void test_copies_straddle_streams(void **state)
{
	const size_t mlen = 4 * MIB, lo = MIB, hi = 3 * MIB;
	unsigned char *mem = guest_mem(mlen), *buf = guest_mem(mlen), *want = guest_mem(mlen);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	set_mem(h, 1, 1ULL << 30, mem + lo, hi - lo, true);
	for (int pass = 0; pass < 3; pass++) {
		/* Edges inside a line, a page, and exactly on the slot's. */
		size_t start = pass == 0 ? lo - 4099 : pass == 1 ? lo - 17 : lo;
		size_t n = pass == 0 ? hi - lo + 8197 : pass == 1 ? hi - lo + 33 : hi - lo;
		unsigned char *g = mem + start;

		fill(want, n, 11u + (unsigned)pass);
		assert_int_equal(kvmnc_copy_to_guest(h, g, want, n), 0);
		assert_memory_equal(g, want, n);
		memset(buf, 0, n + 64);
		memset(&st, 0, sizeof(st));
		st.lo = st.inval_end = st.fenced_end = st.copied_end = (uintptr_t)(mem + lo);
		st.hi = (uintptr_t)(mem + hi);
		kvmnc_cache_trace = straddle_trace;
		assert_int_equal(kvmnc_copy_from_guest(h, buf + 5, g, n), 0);
		kvmnc_cache_trace = NULL;
		assert_memory_equal(buf + 5, want, n);
		assert_int_equal(buf[4], 0);
		assert_int_equal(buf[5 + n], 0);
		assert_false(st.bad);
		assert_true(st.copied_end == st.hi);
	}
	kvmnc_close(h);
	munmap(mem, mlen);
	munmap(buf, mlen);
	munmap(want, mlen);
}

static void test_bad_args(void **state)
{
	unsigned char a[256], b[256];
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_copy_from_guest(h, NULL, b, 10), -EINVAL);
	assert_int_equal(kvmnc_copy_from_guest(h, a, NULL, 10), -EINVAL);
	assert_int_equal(kvmnc_copy_to_guest(h, a, a + 8, 16), -EINVAL); /* overlap */
	assert_int_equal(kvmnc_copy_to_guest(h, (void *)(UINTPTR_MAX - 8), b, 16), -EINVAL);
	assert_int_equal(kvmnc_flush(h, NULL, 1), -EINVAL);
	assert_int_equal(kvmnc_device_enable(h, 1), -EOPNOTSUPP); /* SLOT scope */
	assert_int_equal(kvmnc_copy_from_guest(h, NULL, NULL, 0), 0);
	assert_int_equal(kvmnc_copy_from_guest(NULL, a, b, 10), -EBADF);
	kvmnc_close(h);
	/* Nothing to flush touches nothing, even while every address counts. */
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	assert_int_equal(kvmnc_device_enable(h, 1), 0);
	assert_int_equal(kvmnc_flush(h, (const void *)0x1001, 0), 0);
	kvmnc_close(h);
	assert_int_equal(kvmnc_copy_from_guest(h, a, b, 10), -EBADF);
	assert_int_equal(kvmnc_flush(h, a, 10), -EBADF);
	assert_int_equal(kvmnc_flush(h, a, 0), -EBADF);
}

/* ---- the cache instructions, chosen through the fake's CPUID ---------------- */

static bool host_has(uint32_t leaf, int reg, uint32_t bit)
{
	uint32_t r[4];

	return kvmnc_sys_real.cpuid(leaf, 0, r) == 0 && (r[reg] & bit);
}

static void copies_through(struct kvmnc *h, unsigned char *g, unsigned char *b, size_t n, int want)
{
	memset(b, 0x11, n);
	memset(g, 0x22, n);
	assert_int_equal(kvmnc_copy_to_guest(h, g, b, n), want);
	/* Refused: nothing was copied. */
	assert_int_equal(g[0], want ? 0x22 : 0x11);
	assert_int_equal(g[n - 1], want ? 0x22 : 0x11);
	memset(b, 0x33, n);
	assert_int_equal(kvmnc_copy_from_guest(h, b, g, n), want);
	assert_int_equal(b[n / 2], want ? 0x33 : g[n / 2]);
	assert_int_equal(kvmnc_flush(h, g, n), want);
}

static void test_cpuid_paths(void **state)
{
	static const struct {
		bool clflush, opt, clwb;
		enum kvmnc_cache_insn inval, wb;
		const char *inval_name, *wb_name;
	} paths[] = {
		{true, false, false, KVMNC_CACHE_CLFLUSH, KVMNC_CACHE_CLFLUSH, "clflush",
		 "clflush"},
		{true, true, false, KVMNC_CACHE_CLFLUSHOPT, KVMNC_CACHE_CLFLUSHOPT, "clflushopt",
		 "clflushopt"},
		{true, true, true, KVMNC_CACHE_CLFLUSHOPT, KVMNC_CACHE_CLWB, "clflushopt", "clwb"},
		{false, true, true, KVMNC_CACHE_NONE, KVMNC_CACHE_NONE, "none", "none"},
	};
	const size_t n = 3 * MIB + 5;
	unsigned char *g = guest_mem(4 * MIB), *b = guest_mem(4 * MIB), *plain = guest_mem(4096);
	struct kvmnc_cache_info ci;
	struct kvmnc *h;
	int vm, before;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	set_mem(h, 1, 1ULL << 30, g, 4 * MIB, true);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		struct kvmnc_snapshot *s;

		/* The fake only hides what this CPU has: skip paths it cannot run. */
		if ((paths[i].opt && !host_has(7, 1, 1u << 23)) ||
		    (paths[i].clwb && !host_has(7, 1, 1u << 24))) {
			printf("# path %s/%s: not on this CPU\n", paths[i].inval_name,
			       paths[i].wb_name);
			continue;
		}
		before = fake_calls();
		fake_cpuid_cache(paths[i].clflush, paths[i].opt, paths[i].clwb);
		/* Selected through the seam: leaves 0, 1 and 7 asked. */
		assert_true(fake_calls() > before);
		kvmnc_cache_info(&ci);
		assert_int_equal(ci.inval, paths[i].inval);
		assert_int_equal(ci.wb, paths[i].wb);
		if (paths[i].clflush)
			assert_int_equal(ci.line, 64);
		s = snap(h);
		assert_string_equal(s->invalidate_insn, paths[i].inval_name);
		assert_string_equal(s->writeback_insn, paths[i].wb_name);
		assert_int_equal(s->cache_maintenance, paths[i].clflush ? 0 : -EOPNOTSUPP);
		assert_int_equal(kvmnc_migration_advise(s, KVMNC_MIGRATION_PRECOPY, NULL),
				 paths[i].clflush ? KVMNC_MIGRATE_COHERENT : KVMNC_MIGRATE_BLOCK);
		kvmnc_snapshot_free(s);
		/* Cached: copies ask nothing more. */
		before = fake_calls();
		copies_through(h, g, b, n, paths[i].clflush ? 0 : -EOPNOTSUPP);
		copies_through(h, g + 100, b, 4096, paths[i].clflush ? 0 : -EOPNOTSUPP);
		/* Plain memory never needs the instructions. */
		copies_through(h, plain, b, 4096, 0);
		assert_int_equal(fake_calls(), before);
	}
	kvmnc_close(h);

	/* Not x86 (no CPUID): no cache maintenance, plain copies still work. */
	h = fake_handle("arm64", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_cache_info(&ci), -EOPNOTSUPP);
	copies_through(h, plain, b, 4096, 0);
	kvmnc_close(h);
	munmap(g, 4 * MIB);
	munmap(b, 4 * MIB);
	munmap(plain, 4096);
}

/* ---- snapshots and the policy ------------------------------------------------ */

static void test_snapshot_layout(void **state)
{
	unsigned char *g = guest_mem(3 * 8192);
	struct kvmnc_snapshot *s = (void *)0x1;
	struct big_range {
		struct kvmnc_range r;
		uint64_t future[3];
	};
	const struct big_range *br;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	set_mem(h, 2, 2ULL << 30, g + 16384, 8192, true);
	set_mem(h, 1, 1ULL << 30, g, 8192, true);
	assert_int_equal(kvmnc_snapshot_take(h, sizeof(struct kvmnc_range), NULL), -EINVAL);
	assert_int_equal(kvmnc_snapshot_take(h, offsetof(struct kvmnc_range, mechanism), &s),
			 -EINVAL);
	assert_int_equal(kvmnc_snapshot_take(h, 4097, &s), -EINVAL);
	assert_ptr_equal(s, (void *)0x1);
	/* A newer caller's longer record: the stride is its own, the tail zero. */
	assert_int_equal(kvmnc_snapshot_take(h, sizeof(struct big_range), &s), 0);
	assert_int_equal(s->count, 2);
	assert_int_equal(s->range_sz, sizeof(struct big_range));
	br = (const void *)s->ranges;
	assert_int_equal(br[0].r.slot, 1);
	assert_int_equal(br[1].r.slot, 2);
	assert_int_equal(br[1].r.userspace_addr, (uintptr_t)g + 16384);
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 3; k++)
			assert_int_equal(br[i].future[k], 0);
	/*
	 * The accessor strides by range_sz: indexing ranges[] as the header
	 * types it would read range 1 inside range 0's zeroed tail.
	 */
	assert_ptr_equal(kvmnc_snapshot_range(s, 0), &br[0].r);
	assert_ptr_equal(kvmnc_snapshot_range(s, 1), &br[1].r);
	assert_int_equal(kvmnc_snapshot_range(s, 1)->slot, 2);
	assert_int_not_equal(s->ranges[1].slot, 2);
	assert_null(kvmnc_snapshot_range(s, 2));
	assert_null(kvmnc_snapshot_range(s, SIZE_MAX));
	assert_null(kvmnc_snapshot_range(NULL, 0));
	/* Current until the state changes; a change elsewhere does not count. */
	assert_int_equal(kvmnc_snapshot_stale(h, s), 0);
	assert_int_equal(kvmnc_hva_is_noncoherent(h, g, 1), 1);
	assert_int_equal(kvmnc_snapshot_stale(h, s), 0);
	del_mem(h, 2, 2ULL << 30, g + 16384);
	assert_int_equal(kvmnc_snapshot_stale(h, s), 1);
	/* The snapshot stays what it was. */
	assert_int_equal(s->count, 2);
	assert_int_equal(kvmnc_snapshot_stale(h, NULL), -EINVAL);
	kvmnc_close(h);
	assert_int_equal(kvmnc_snapshot_stale(h, s), -EBADF);
	assert_int_equal(kvmnc_snapshot_take(h, sizeof(struct kvmnc_range), &s), -EBADF);
	kvmnc_snapshot_free(s);
	kvmnc_snapshot_free(NULL);
	munmap(g, 3 * 8192);
}

static int advise(const struct kvmnc_snapshot *s, int mode, uint32_t *flags)
{
	struct kvmnc_migration_advice a = KVMNC_OPTS_INIT(kvmnc_migration_advice);
	int r = kvmnc_migration_advise(s, mode, &a);

	assert_int_equal(r, a.action);
	assert_true(strlen(a.reason) > 10);
	*flags = a.flags;
	return r;
}

static void test_policy(void **state)
{
	unsigned char *g = guest_mem(8192), *ram = guest_mem(8192);
	struct kvmnc_migration_advice a;
	struct kvmnc_snapshot *s;
	struct kvmnc *h;
	uint32_t fl;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	set_mem(h, 0, 0, ram, 8192, false);
	s = snap(h);
	for (int m = KVMNC_MIGRATION_NONE; m <= KVMNC_MIGRATION_POSTCOPY; m++) {
		assert_int_equal(advise(s, m, &fl), KVMNC_MIGRATE_PLAIN);
		assert_int_equal(fl, 0);
	}
	kvmnc_snapshot_free(s);

	set_mem(h, 1, 1ULL << 30, g, 8192, true);
	s = snap(h);
	assert_int_equal(advise(s, KVMNC_MIGRATION_NONE, &fl), KVMNC_MIGRATE_BLOCK);
	assert_int_equal(advise(s, KVMNC_MIGRATION_PRECOPY, &fl), KVMNC_MIGRATE_COHERENT);
	assert_int_equal(fl, KVMNC_ADVICE_RESEND);
	assert_int_equal(advise(s, KVMNC_MIGRATION_POSTCOPY, &fl), KVMNC_MIGRATE_COHERENT);
	assert_int_equal(fl, KVMNC_ADVICE_RESEND | KVMNC_ADVICE_POSTCOPY_ORDER);
	kvmnc_snapshot_free(s);

	/* A device may DMA to pages post-copy has not brought yet. */
	assert_int_equal(kvmnc_device_enable(h, 3), 0);
	s = snap(h);
	assert_int_equal(advise(s, KVMNC_MIGRATION_PRECOPY, &fl), KVMNC_MIGRATE_COHERENT);
	assert_int_equal(advise(s, KVMNC_MIGRATION_POSTCOPY, &fl), KVMNC_MIGRATE_BLOCK);

	/* Bad input; the out struct is left alone. */
	memset(&a, 0x5a, sizeof(a));
	a.sz = sizeof(a);
	assert_int_equal(kvmnc_migration_advise(NULL, KVMNC_MIGRATION_PRECOPY, &a), -EINVAL);
	assert_int_equal(kvmnc_migration_advise(s, 3, &a), -EINVAL);
	assert_int_equal(kvmnc_migration_advise(s, -1, &a), -EINVAL);
	assert_int_equal(a.action, 0x5a5a5a5a);
	a.sz = 0;
	assert_int_equal(kvmnc_migration_advise(s, KVMNC_MIGRATION_PRECOPY, &a), -EINVAL);
	a.sz = 8192;
	assert_int_equal(kvmnc_migration_advise(s, KVMNC_MIGRATION_PRECOPY, &a), -E2BIG);
	/* An older caller's shorter struct: only what it has is written. */
	memset(&a, 0x5a, sizeof(a));
	a.sz = offsetofend(struct kvmnc_migration_advice, action);
	assert_int_equal(kvmnc_migration_advise(s, KVMNC_MIGRATION_PRECOPY, &a),
			 KVMNC_MIGRATE_COHERENT);
	assert_int_equal(a.action, KVMNC_MIGRATE_COHERENT);
	assert_int_equal(a.flags, 0x5a5a5a5a);
	kvmnc_snapshot_free(s);
	kvmnc_close(h);
	munmap(g, 8192);
	munmap(ram, 8192);
}

/* ---- no memory on the way ---------------------------------------------------- */

static int alloc_budget = -1;

static void *failing_alloc(size_t n)
{
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	return malloc(n);
}

/*
 * The sets cannot follow (no memory): the answers come from the tables under
 * the lock and stay right, and the next reader that can rebuilds the sets.
 */
static void test_sets_out_of_memory(void **state)
{
	unsigned char *g = guest_mem(1 << 20), *b = guest_mem(1 << 20);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	for (int budget = 0; budget < 8; budget++) {
		kvmnc_rs_alloc = failing_alloc;
		alloc_budget = budget;
		set_mem(h, 1, 1ULL << 30, g, 1 << 20, true);
		assert_int_equal(hva_nc(h, g + 5000, 1), 1);
		assert_int_equal(hva_nc(h, b, 4096), 0);
		assert_int_equal(kvmnc_gpa_is_noncoherent(h, 0, 1ULL << 30, 1), 1);
		fill(b, 1 << 20, (unsigned)budget);
		assert_int_equal(kvmnc_copy_to_guest(h, g, b, 1 << 20), 0);
		assert_memory_equal(g, b, 1 << 20);
		/* Memory again: the first copy rebuilds the sets. */
		kvmnc_rs_alloc = kvmnc_rs_default_alloc;
		alloc_budget = -1;
		assert_int_equal(kvmnc_copy_from_guest(h, b, g + 1, 4096), 0);
		assert_true(kvmnc_ncs_ok(OBJ(h)));
		assert_int_equal(hva_nc(h, g, 1), 1);
		del_mem(h, 1, 1ULL << 30, g);
		assert_int_equal(hva_nc(h, g, 1), 0);
	}
	kvmnc_close(h);
	munmap(g, 1 << 20);
	munmap(b, 1 << 20);
}

/* ---- threads ------------------------------------------------------------------ */

struct copier {
	struct kvmnc *h;
	unsigned char *g;
	int errors;
};

static bool stop_copiers;

static void *copier_main(void *arg)
{
	struct copier *c = arg;
	unsigned char *buf = malloc(16384), *want = malloc(16384);

	fill(want, 16384, 9);
	while (!__atomic_load_n(&stop_copiers, __ATOMIC_RELAXED)) {
		for (size_t off = 0; off < (1 << 20); off += 16384) {
			memset(buf, 0, 16384);
			if (kvmnc_copy_from_guest(c->h, buf, c->g + off, 16384) ||
			    memcmp(buf, want, 16384))
				c->errors++;
		}
	}
	free(buf);
	free(want);
	return NULL;
}

/* Copies on other threads while the sets change under them: always exact. */
static void test_copies_while_changing(void **state)
{
	unsigned char *g = guest_mem(1 << 20);
	struct copier c[2];
	pthread_t t[2];
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	for (size_t off = 0; off < (1 << 20); off += 16384)
		fill(g + off, 16384, 9);
	stop_copiers = false;
	for (int i = 0; i < 2; i++) {
		c[i] = (struct copier){.h = h, .g = g};
		pthread_create(&t[i], NULL, copier_main, &c[i]);
	}
	for (int i = 0; i < 300; i++) {
		uint32_t slot = (uint32_t)(i % 5);

		set_mem(h, slot, (uint64_t)slot << 30, g + slot * 65536, 65536, i % 2);
		if (i % 7 == 0)
			kvmnc_device_enable(h, 1);
		if (i % 11 == 0)
			kvmnc_device_disable(h, 1);
		del_mem(h, slot, (uint64_t)slot << 30, g + slot * 65536);
	}
	__atomic_store_n(&stop_copiers, true, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].errors, 0);
	}
	kvmnc_close(h);
	munmap(g, 1 << 20);
}

static int teardown(void **state)
{
	kvmnc_migration_trace = NULL;
	kvmnc_cache_trace = NULL;
	kvmnc_rs_alloc = kvmnc_rs_default_alloc;
	return teardown_fake(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_range_answers, teardown),
		cmocka_unit_test_teardown(test_any_address, teardown),
		cmocka_unit_test_teardown(test_semantics, teardown),
		cmocka_unit_test_teardown(test_sets_match_tables, teardown),
		cmocka_unit_test_teardown(test_copies_exact, teardown),
		cmocka_unit_test_teardown(test_copies_straddle, teardown),
		cmocka_unit_test_teardown(test_copies_straddle_streams, teardown),
		cmocka_unit_test_teardown(test_bad_args, teardown),
		cmocka_unit_test_teardown(test_cpuid_paths, teardown),
		cmocka_unit_test_teardown(test_snapshot_layout, teardown),
		cmocka_unit_test_teardown(test_policy, teardown),
		cmocka_unit_test_teardown(test_sets_out_of_memory, teardown),
		cmocka_unit_test_teardown(test_copies_while_changing, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
