// SPDX-License-Identifier: LGPL-2.1-or-later
/* The memslot path on each kind of kernel, and its bad inputs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "compat-kvm.h"
#include "helpers.h"

#define MB (1ULL << 20)

static void test_flag_path(void **state)
{
	struct kvmnc_region nc = region(1, 0x100000000ULL, 2 * MB, true);
	struct kvmnc_region plain = region(2, 0, 2 * MB, false);
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_set_region(h, &nc), 0);
	assert_int_equal(kvmnc_set_region(h, &plain), 0);
	assert_int_equal(fake_slot_flags(vm, 1), KVM_MEM_NON_COHERENT_DMA);
	assert_int_equal(fake_slot_flags(vm, 2), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.v2_calls, 2);
	assert_int_equal(vs.v1_calls, 0);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);

	/* Moving keeps the flag; dirty logging may be toggled. */
	nc.guest_phys_addr = 0x200000000ULL;
	nc.flags = KVMNC_MEM_LOG_DIRTY_PAGES;
	assert_int_equal(kvmnc_set_region(h, &nc), 0);
	assert_int_equal(fake_slot_flags(vm, 1),
			 KVM_MEM_NON_COHERENT_DMA | KVM_MEM_LOG_DIRTY_PAGES);

	/* Non-coherence is fixed at creation, both ways. */
	nc.kvmnc_flags = 0;
	assert_int_equal(kvmnc_set_region(h, &nc), -EINVAL);
	plain.kvmnc_flags = KVMNC_REGION_NONCOHERENT;
	assert_int_equal(kvmnc_set_region(h, &plain), -EINVAL);
	assert_int_equal(fake_slot_flags(vm, 1),
			 KVM_MEM_NON_COHERENT_DMA | KVM_MEM_LOG_DIRTY_PAGES);
	assert_int_equal(fake_slot_flags(vm, 2), 0);

	/* Delete, then the slot can come back plain. */
	nc.memory_size = 0;
	assert_int_equal(kvmnc_set_region(h, &nc), 0);
	assert_int_equal(fake_slot_flags(vm, 1), -1);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	nc = region(1, 0x100000000ULL, 2 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &nc), 0);
	assert_int_equal(fake_slot_flags(vm, 1), 0);
	kvmnc_close(h);
}

/* ChromeOS before 6.8: no USER_MEMORY2, the flag rides in the v1 ioctl. */
static void test_flag_v1(void **state)
{
	struct kvmnc_region nc = region(3, 0, 4096, true);
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("chromeos-6.6", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_set_region(h, &nc), 0);
	assert_int_equal(fake_slot_flags(vm, 3), KVM_MEM_NON_COHERENT_DMA);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.v1_calls, 1);
	assert_int_equal(vs.v2_calls, 0);
	/* guest_memfd needs the v2 ioctl. */
	nc = region(4, 1 * MB, 4096, false);
	nc.flags = KVMNC_MEM_GUEST_MEMFD;
	assert_int_equal(kvmnc_set_region(h, &nc), -EOPNOTSUPP);
	kvmnc_close(h);
}

/* Plain regions pass through, v1 where that is all the kernel has. */
static void test_passthrough(void **state)
{
	struct kvmnc_region r = region(0, 0, 1 * MB, false);
	struct kvmnc_region nc = region(1, 1 * MB, 1 * MB, true);
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("debian-6.1", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	r.flags = KVMNC_MEM_READONLY;
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	assert_int_equal(fake_slot_flags(vm, 0), KVM_MEM_READONLY);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.v1_calls, 1);
	/* Nothing can honor guest PAT here. */
	assert_int_equal(kvmnc_set_region(h, &nc), -EOPNOTSUPP);
	assert_int_equal(fake_slot_flags(vm, 1), -1);
	/* The kernel's own errors come back as they are. */
	r = region(5, 512 * 1024, 1 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EEXIST);
	kvmnc_close(h);
}

/* VIRTIO device for regions: one device while any non-coherent region exists. */
static void test_device_for_regions(void **state)
{
	struct kvmnc_region a = region(1, 0, 1 * MB, true);
	struct kvmnc_region b = region(2, 1 * MB, 1 * MB, true);
	struct kvmnc_region c;
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, &vm);
	assert_int_equal(kvmnc_set_region(h, &a), 0);
	assert_int_equal(kvmnc_set_region(h, &b), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 1);
	assert_int_equal(vs.devices, 1);
	assert_int_equal(fake_slot_flags(vm, 1), 0); /* no flag on this kernel */
	a.memory_size = 0;
	assert_int_equal(kvmnc_set_region(h, &a), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 1);
	b.memory_size = 0;
	assert_int_equal(kvmnc_set_region(h, &b), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 0);
	assert_int_equal(vs.devices, 0);

	/* A region the kernel refuses leaves no device behind. */
	a = region(1, 0, 1 * MB, true);
	b = region(2, 512 * 1024, 1 * MB, true);
	assert_int_equal(kvmnc_set_region(h, &a), 0);
	a.memory_size = 0;
	assert_int_equal(kvmnc_set_region(h, &a), 0);
	c = region(3, 0, 1 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &c), 0);
	assert_int_equal(kvmnc_set_region(h, &b), -EEXIST);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	kvmnc_close(h);
}

/* Native: nothing to do in the kernel, but the library keeps count. */
static void test_native(void **state)
{
	struct kvmnc_region a = region(1, 0, 1 * MB, true);
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("amd-npt", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_set_region(h, &a), 0);
	assert_int_equal(fake_slot_flags(vm, 1), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	kvmnc_close(h);
}

static void test_quirk_path(void **state)
{
	struct kvmnc_region a = region(1, 0, 1 * MB, true);
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("stable-6.12-intel", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.disabled_quirks, KVMNC_QUIRK_IGNORE_GUEST_PAT);
	assert_int_equal(kvmnc_set_region(h, &a), 0);
	assert_int_equal(fake_slot_flags(vm, 1), 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	kvmnc_close(h);
}

static void test_bad_regions(void **state)
{
	struct kvmnc_region r;
	struct {
		struct kvmnc_region r;
		uint32_t newer;
	} big;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, 0, &vm);
	assert_int_equal(kvmnc_set_region(h, NULL), -EINVAL);
	r = region(1, 0, 1 * MB, false);
	r.sz = 0;
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r.sz = offsetof(struct kvmnc_region, userspace_addr);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(1, 4095, 1 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(1, 0, 1 * MB + 1, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(1, 0, 1 * MB, false);
	r.userspace_addr = 0x1001;
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(1, 0xfffffffffff00000ULL, 2 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(1, 0, 1 * MB, false);
	r.userspace_addr = 0xfffffffffff00000ULL;
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(1, 0, 1 * MB, false);
	r.flags = 1u << 3; /* the kernel's flag is ours to set */
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r.flags = 1u << 7;
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r.flags = 0;
	r.kvmnc_flags = 1u << 1;
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(1, 0, 1 * MB, true);
	r.flags = KVMNC_MEM_GUEST_MEMFD;
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(16u << 16, 0, 1 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(40000, 0, 1 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	/* Deleting what does not exist is the kernel's EINVAL. */
	r = region(7, 0, 0, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);

	memset(&big, 0, sizeof(big));
	big.r = region(1, 0, 1 * MB, false);
	big.r.sz = sizeof(big);
	big.newer = 9;
	assert_int_equal(kvmnc_set_region(h, &big.r), -E2BIG);
	big.newer = 0;
	assert_int_equal(kvmnc_set_region(h, &big.r), 0);

	/* An older caller without guest_memfd fields. */
	r = region(2, 1 * MB, 1 * MB, true);
	r.sz = offsetofend(struct kvmnc_region, userspace_addr);
	r.kvmnc_flags = 0; /* beyond sz: must not be read */
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	assert_int_equal(fake_slot_flags(vm, 2), 0);
	assert_int_equal(fake_open_fds(), 1);
	kvmnc_close(h);
}

/* Slots in the second address space (SMM) are kept apart. */
static void test_address_spaces(void **state)
{
	struct kvmnc_region a = region(1, 0, 1 * MB, true);
	struct kvmnc_region b = region((1u << 16) | 1, 8 * MB, 1 * MB, false);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_set_region(h, &a), 0);
	assert_int_equal(kvmnc_set_region(h, &b), 0);
	assert_int_equal(fake_slot_flags(vm, 1), KVM_MEM_NON_COHERENT_DMA);
	assert_int_equal(fake_slot_flags(vm, (1u << 16) | 1), 0);
	kvmnc_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_flag_path, teardown_fake),
		cmocka_unit_test_teardown(test_flag_v1, teardown_fake),
		cmocka_unit_test_teardown(test_passthrough, teardown_fake),
		cmocka_unit_test_teardown(test_device_for_regions, teardown_fake),
		cmocka_unit_test_teardown(test_native, teardown_fake),
		cmocka_unit_test_teardown(test_quirk_path, teardown_fake),
		cmocka_unit_test_teardown(test_bad_regions, teardown_fake),
		cmocka_unit_test_teardown(test_address_spaces, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
