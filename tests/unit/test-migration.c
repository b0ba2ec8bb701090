// SPDX-License-Identifier: LGPL-2.1-or-later
/* Migration helpers: what counts as non-coherent, and copies that stay exact. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"

#define LEN (256 * 1024 + 100)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed);
}

/* Registers a non-coherent slot whose host range is @mem. */
static void register_mem(struct kvmnc *h, uint32_t slot, void *mem, size_t len)
{
	struct kvmnc_region r = region(slot, (uint64_t)slot << 30, len, true);

	r.userspace_addr = (uintptr_t)mem;
	assert_int_equal(kvmnc_set_region(h, &r), 0);
}

static void test_ranges(void **state)
{
	unsigned char *guest = aligned_alloc(4096, 1 << 20);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	assert_false(kvmnc_range_noncoherent(h, (uintptr_t)guest, 4096));
	register_mem(h, 1, guest + 4096, 8192);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	assert_false(kvmnc_range_noncoherent(h, (uintptr_t)guest, 4096));
	assert_true(kvmnc_range_noncoherent(h, (uintptr_t)guest, 4097));
	assert_true(kvmnc_range_noncoherent(h, (uintptr_t)guest + 12287, 1));
	assert_false(kvmnc_range_noncoherent(h, (uintptr_t)guest + 12288, 4096));
	/* A device makes everything suspect. */
	assert_int_equal(kvmnc_device_enable(h, 1), 0);
	assert_true(kvmnc_range_noncoherent(h, (uintptr_t)guest, 4096));
	assert_int_equal(kvmnc_device_disable(h, 1), 0);
	assert_false(kvmnc_range_noncoherent(h, (uintptr_t)guest, 4096));
	kvmnc_close(h);
	free(guest);
}

static void test_copies(void **state)
{
	unsigned char *guest = aligned_alloc(4096, 1 << 20);
	unsigned char *buf = malloc(LEN), *want = malloc(LEN);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	register_mem(h, 1, guest, 1 << 20);
	for (int pass = 0; pass < 2; pass++) {
		/* Unaligned start and odd length, inside and outside the slot. */
		unsigned char *g = pass ? guest + 13 : guest + 4096 * 3 + 1;

		fill(want, LEN, 7u + pass);
		assert_int_equal(kvmnc_copy_to_guest(h, g, want, LEN), 0);
		assert_memory_equal(g, want, LEN);
		memset(buf, 0, LEN);
		assert_int_equal(kvmnc_copy_from_guest(h, buf, g, LEN), 0);
		assert_memory_equal(buf, want, LEN);
		assert_int_equal(kvmnc_flush(h, g, LEN), 0);
		assert_memory_equal(g, want, LEN);
	}
	/* Plain memory: plain copies. */
	fill(want, 1000, 3);
	assert_int_equal(kvmnc_copy_from_guest(h, buf, want, 1000), 0);
	assert_memory_equal(buf, want, 1000);
	assert_int_equal(kvmnc_copy_to_guest(h, buf, want, 0), 0);
	kvmnc_close(h);
	free(guest);
	free(buf);
	free(want);
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
	/* Nothing to flush touches nothing, even while a device makes all memory suspect. */
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	assert_int_equal(kvmnc_device_enable(h, 1), 0);
	assert_int_equal(kvmnc_flush(h, (const void *)0x1001, 0), 0);
	kvmnc_close(h);
	assert_int_equal(kvmnc_copy_from_guest(h, a, b, 10), -EBADF);
	assert_int_equal(kvmnc_flush(h, a, 10), -EBADF);
}

/*
 * Point 6: non-coherent means what the VMM declared. The quirk in force by
 * itself declares nothing; a VMM-owned slot is flushed like a library one.
 */
static void test_semantics(void **state)
{
	unsigned char *guest = aligned_alloc(4096, 1 << 20);
	struct kvmnc_region_plan p = KVMNC_OPTS_INIT(kvmnc_region_plan);
	struct kvmnc_region r;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("stable-6.12-intel", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	assert_true(h->quirk_disabled);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	assert_false(kvmnc_range_noncoherent(h, (uintptr_t)guest, 4096));
	register_mem(h, 1, guest, 8192);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	assert_true(kvmnc_range_noncoherent(h, (uintptr_t)guest, 4096));
	assert_false(kvmnc_range_noncoherent(h, (uintptr_t)guest + 8192, 4096));
	kvmnc_close(h);

	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	r = region(2, 1ULL << 30, 1 << 20, true);
	r.userspace_addr = (uintptr_t)guest;
	assert_int_equal(kvmnc_region_prepare(h, &r, &p), 0);
	assert_true(kvmnc_range_noncoherent(h, (uintptr_t)guest + 4096, 64));
	assert_int_equal(kvmnc_region_complete(h, r.slot, 0), 0);
	assert_true(kvmnc_range_noncoherent(h, (uintptr_t)guest + 4096, 64));
	assert_int_equal(kvmnc_region_removed(h, r.slot), 0);
	assert_false(kvmnc_range_noncoherent(h, (uintptr_t)guest + 4096, 64));
	kvmnc_close(h);
	free(guest);
}

/* The flush instruction comes from CPUID through the seam (1.0 asked the CPU directly). */
static void test_cpuid_through_seam(void **state)
{
	int before;

	(void)state;
	fake_reset(fake_personality("patched-6.12"));
	before = fake_calls();
	/* The fake's leaf 7 lists no CLFLUSHOPT, whatever this CPU has. */
	assert_int_equal(kvmnc_cpu_flush_insn(), KVMNC_FLUSH_CLFLUSH);
	assert_int_equal(fake_calls(), before + 1);
	/* Cached: asked once. */
	assert_int_equal(kvmnc_cpu_flush_insn(), KVMNC_FLUSH_CLFLUSH);
	assert_int_equal(fake_calls(), before + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_ranges, teardown_fake),
		cmocka_unit_test_teardown(test_copies, teardown_fake),
		cmocka_unit_test_teardown(test_bad_args, teardown_fake),
		cmocka_unit_test_teardown(test_semantics, teardown_fake),
		cmocka_unit_test_teardown(test_cpuid_through_seam, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
