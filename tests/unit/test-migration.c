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
	/* Nothing to flush touches nothing, even with a VM-wide mechanism in force. */
	assert_int_equal(kvmnc_device_enable(h, 1), -EOPNOTSUPP); /* SLOT scope */
	h->quirk_disabled = true;
	assert_int_equal(kvmnc_flush(h, (const void *)0x1001, 0), 0);
	h->quirk_disabled = false;
	assert_int_equal(kvmnc_copy_from_guest(h, NULL, NULL, 0), 0);
	assert_int_equal(kvmnc_copy_from_guest(NULL, a, b, 10), -EBADF);
	kvmnc_close(h);
	assert_int_equal(kvmnc_copy_from_guest(h, a, b, 10), -EBADF);
	assert_int_equal(kvmnc_flush(h, a, 10), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_ranges, teardown_fake),
		cmocka_unit_test_teardown(test_copies, teardown_fake),
		cmocka_unit_test_teardown(test_bad_args, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
