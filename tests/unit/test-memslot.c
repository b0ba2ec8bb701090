// SPDX-License-Identifier: LGPL-2.1-or-later
/* The memslot path on each kind of kernel, and its bad inputs. */
#include <errno.h>
#include <malloc.h>
#include <sys/mman.h>
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

/* The VMM's own KVM_SET_USER_MEMORY_REGION2, as QEMU and crosvm issue it. */
static int vmm_ioctl(int vm, const struct kvmnc_region *r, uint32_t flags)
{
	struct kvm_userspace_memory_region2 m = {
		.slot = r->slot,
		.flags = flags,
		.guest_phys_addr = r->guest_phys_addr,
		.memory_size = r->memory_size,
		.userspace_addr = r->userspace_addr,
	};

	return fake_vmm_ioctl(vm, KVM_SET_USER_MEMORY_REGION2, (unsigned long)&m);
}

static struct kvmnc_region_plan plan_of(struct kvmnc *h, const struct kvmnc_region *r, int want)
{
	struct kvmnc_region_plan p = KVMNC_OPTS_INIT(kvmnc_region_plan);

	assert_int_equal(kvmnc_region_prepare(h, r, &p), want);
	return p;
}

/* Point 1: the VMM issues the ioctl; the library says what to OR in and follows. */
static void test_vmm_owned_flag(void **state)
{
	struct kvmnc_region nc = region(3, 0x100000000ULL, 2 * MB, true);
	struct kvmnc_handle_info info = {.sz = sizeof(info)};
	struct kvmnc_region_plan p;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	nc.flags = KVMNC_MEM_LOG_DIRTY_PAGES;
	p = plan_of(h, &nc, 0);
	assert_int_equal(p.flags, KVMNC_MEM_LOG_DIRTY_PAGES | KVMNC_MEM_NON_COHERENT_DMA);
	assert_int_equal(p.add_flags, KVMNC_MEM_NON_COHERENT_DMA);
	assert_int_equal(p.mechanism, KVMNC_MECH_MEMSLOT_FLAG);
	assert_int_equal(p.vm_wide_step, 0);
	/* Planned counts: the VMM may be mapping it already. */
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	assert_true(kvmnc_range_noncoherent(OBJ(h), nc.userspace_addr, 1));
	/* One plan per slot at a time, and no change of the library's own meanwhile. */
	plan_of(h, &nc, -EALREADY);
	assert_int_equal(kvmnc_region_removed(h, nc.slot), -EALREADY);
	assert_int_equal(kvmnc_set_region(h, &nc), -EALREADY);
	assert_int_equal(vmm_ioctl(vm, &nc, p.flags), 0);
	assert_int_equal(kvmnc_region_complete(h, nc.slot, 0), 0);
	assert_int_equal(kvmnc_region_complete(h, nc.slot, 0), -ENOENT);
	assert_int_equal(fake_slot_flags(vm, 3),
			 KVM_MEM_NON_COHERENT_DMA | KVM_MEM_LOG_DIRTY_PAGES);
	assert_int_equal(kvmnc_get_info(h, &info), 0);
	assert_int_equal(info.noncoherent_regions, 1);

	/* Dirty logging off (QEMU's kvm_slot_update_flags): the bit stays. */
	nc.flags = 0;
	p = plan_of(h, &nc, 0);
	assert_int_equal(p.flags, KVMNC_MEM_NON_COHERENT_DMA);
	assert_int_equal(vmm_ioctl(vm, &nc, p.flags), 0);
	assert_int_equal(kvmnc_region_complete(h, nc.slot, 0), 0);
	assert_int_equal(fake_slot_flags(vm, 3), KVM_MEM_NON_COHERENT_DMA);

	/* Later the VMM deletes it and says so. */
	nc.memory_size = 0;
	assert_int_equal(vmm_ioctl(vm, &nc, 0), 0);
	assert_int_equal(kvmnc_region_removed(h, nc.slot), 0);
	assert_int_equal(kvmnc_region_removed(h, nc.slot), -ENOENT);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);

	/* crosvm ORs the flag itself: that is a request for non-coherence. */
	nc = region(4, 0x200000000ULL, 2 * MB, false);
	nc.flags = KVMNC_MEM_NON_COHERENT_DMA;
	p = plan_of(h, &nc, 0);
	assert_int_equal(p.flags, KVMNC_MEM_NON_COHERENT_DMA);
	assert_int_equal(p.mechanism, KVMNC_MECH_MEMSLOT_FLAG);
	/* The kernel refused: nothing stays. */
	assert_int_equal(kvmnc_region_complete(h, nc.slot, -EEXIST), 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	assert_int_equal(kvmnc_get_info(h, &info), 0);
	assert_int_equal(info.noncoherent_regions, 0);
	/* kvmnc_set_region keeps 1.0's rule: the flag is the library's to set. */
	assert_int_equal(kvmnc_set_region(h, &nc), -EINVAL);

	/* Plain regions and deletes may be planned too: they pass through. */
	nc = region(5, 0x300000000ULL, 2 * MB, false);
	nc.flags = KVMNC_MEM_READONLY;
	p = plan_of(h, &nc, 0);
	assert_int_equal(p.flags, KVMNC_MEM_READONLY);
	assert_int_equal(p.add_flags, 0);
	assert_int_equal(p.mechanism, KVMNC_MECH_NONE);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	assert_int_equal(kvmnc_region_complete(h, nc.slot, 0), 0);

	/* Bad input. */
	assert_int_equal(kvmnc_region_prepare(h, &nc, NULL), -EINVAL);
	assert_int_equal(kvmnc_region_prepare(h, NULL, &p), -EINVAL);
	assert_int_equal(kvmnc_region_prepare(NULL, &nc, &p), -EBADF);
	p.sz = 2;
	assert_int_equal(kvmnc_region_prepare(h, &nc, &p), -EINVAL);
	p.sz = 8192;
	assert_int_equal(kvmnc_region_prepare(h, &nc, &p), -E2BIG);
	assert_int_equal(kvmnc_region_complete(h, 77, 0), -ENOENT);
	p = plan_of(h, &nc, 0);
	assert_int_equal(kvmnc_region_complete(h, nc.slot, 5), -EINVAL);
	assert_int_equal(kvmnc_region_complete(h, nc.slot, -EFAULT), 0);
	nc.kvmnc_flags = 1u << 4;
	plan_of(h, &nc, -EINVAL);
	assert_int_equal(fake_open_fds(), 1);
	kvmnc_close(h);
	assert_int_equal(kvmnc_region_complete(h, 1, 0), -EBADF);
	assert_int_equal(kvmnc_region_removed(h, 1), -EBADF);
}

/* The VM-wide step comes first and a failure report undoes it. */
static void test_vmm_owned_vm_wide(void **state)
{
	struct kvmnc_region a = region(1, 0, 1 * MB, true), b = region(2, 1 * MB, 1 * MB, true);
	struct kvmnc_region_plan p;
	struct fake_vm_state vs;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, &vm);
	p = plan_of(h, &a, 0);
	assert_int_equal(p.mechanism, KVMNC_MECH_VIRTIO_DEVICE);
	assert_int_equal(p.vm_wide_step, 1);
	assert_int_equal(p.add_flags, 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 1);
	/* The kernel refused the VMM's ioctl: the device goes again. */
	assert_int_equal(kvmnc_region_complete(h, a.slot, -ENOMEM), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);

	/* Two regions share the device; it stays while either exists. */
	p = plan_of(h, &a, 0);
	assert_int_equal(vmm_ioctl(vm, &a, p.flags), 0);
	assert_int_equal(kvmnc_region_complete(h, a.slot, 0), 0);
	p = plan_of(h, &b, 0);
	assert_int_equal(p.vm_wide_step, 0);
	assert_int_equal(kvmnc_region_complete(h, b.slot, -EEXIST), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 1);
	assert_int_equal(kvmnc_region_removed(h, a.slot), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	kvmnc_close(h);

	/* The quirk went at open: nothing to do per region. */
	h = fake_handle("stable-6.12-intel", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	p = plan_of(h, &a, 0);
	assert_int_equal(p.mechanism, KVMNC_MECH_GUEST_PAT_QUIRK);
	assert_int_equal(p.vm_wide_step, 0);
	assert_int_equal(p.flags, 0);
	assert_int_equal(kvmnc_region_complete(h, a.slot, 0), 0);
	kvmnc_close(h);

	/* Nothing can honor it: refused, nothing planned. */
	h = fake_handle("debian-6.1", KVMNC_SCOPE_VM_IRREVERSIBLE, 0, &vm);
	plan_of(h, &a, -EOPNOTSUPP);
	assert_int_equal(kvmnc_region_complete(h, a.slot, 0), -ENOENT);
	kvmnc_close(h);
}

/* Point 11: a raw delete by the VMM does not wedge the slot. */
static void test_resync(void **state)
{
	struct kvmnc_region r = region(1, 0, 1 * MB, true);
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	r.memory_size = 0;
	assert_int_equal(vmm_ioctl(vm, &r, KVM_MEM_NON_COHERENT_DMA), 0);
	/* KVM has no slot 1: re-creating it plain is what KVM says. */
	r = region(1, 0, 1 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	assert_int_equal(fake_slot_flags(vm, 1), 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	/* KVM keeps the flag of a slot that does exist: that is still refused. */
	r = region(2, 4 * MB, 1 * MB, true);
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	r.kvmnc_flags = 0;
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	/* A raw delete the VMM reports. */
	r.memory_size = 0;
	assert_int_equal(vmm_ioctl(vm, &r, KVM_MEM_NON_COHERENT_DMA), 0);
	assert_int_equal(kvmnc_region_removed(h, r.slot), 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	kvmnc_close(h);
}

/*
 * Issue 19, API: a plan the VMM will not carry out is aborted (its VM-wide
 * step undone), and a VMM that forgot kvmnc_region_removed() tells the
 * library which slots it has, rather than holding kvmnc_is_noncoherent() at
 * 1 for ever.
 */
static void test_abort_and_resync(void **state)
{
	struct kvmnc_region_plan plan = KVMNC_OPTS_INIT(kvmnc_region_plan);
	struct fake_vm_state vs;
	struct kvmnc_region r;
	uint32_t keep[] = {1, 3, 77};
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, &vm);
	r = region(5, 1ULL << 32, 1 * MB, true);
	assert_int_equal(kvmnc_region_prepare(h, &r, &plan), 0);
	assert_true(plan.vm_wide_step);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 1);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	assert_int_equal(kvmnc_region_abort(h, 5), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 0);
	assert_int_equal(vs.devices, 0);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	assert_int_equal(kvmnc_region_abort(h, 5), -ENOENT);
	assert_int_equal(kvmnc_region_complete(h, 5, 0), -ENOENT);

	for (uint32_t s = 1; s <= 3; s++) {
		r = region(s, (uint64_t)s << 30, 1 * MB, true);
		assert_int_equal(kvmnc_set_region(h, &r), 0);
	}
	/* The VMM deletes slot 2 itself and forgets to say so. */
	r = region(2, 2ULL << 30, 0, true);
	assert_int_equal(vmm_ioctl(vm, &r, 0), 0);
	assert_int_equal(kvmnc_region_resync(h, keep, 3), 1);
	assert_int_equal(kvmnc_region_removed(h, 2), -ENOENT);
	assert_int_equal(kvmnc_is_noncoherent(h), 1);
	assert_int_equal(kvmnc_region_resync(h, keep, 3), 0);
	/* Nothing left: the VM-wide mechanism goes with the last region. */
	assert_int_equal(kvmnc_region_resync(h, NULL, 0), 2);
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 0);
	assert_int_equal(kvmnc_region_resync(h, NULL, 1), -EINVAL);
	/* A slot whose plan waits is the VMM's to complete first. */
	r = region(4, 4ULL << 30, 1 * MB, true);
	assert_int_equal(kvmnc_region_prepare(h, &r, &plan), 0);
	assert_int_equal(kvmnc_region_resync(h, NULL, 0), 0);
	assert_int_equal(kvmnc_region_abort(h, 4), 0);
	kvmnc_close(h);
	assert_int_equal(kvmnc_region_abort(h, 4), -EBADF);
	assert_int_equal(kvmnc_region_resync(h, NULL, 0), -EBADF);
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* Point 12: rejected calls grow nothing; address spaces are what the VM has. */
static void test_failures_grow_nothing(void **state)
{
	struct kvmnc_region r;
	struct kvmnc *h;
	size_t heap;
	uint32_t cap;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	cap = OBJ(h)->nc.cap;
	/* After the one call that succeeds: its region takes memory, the failures none. */
	r = region((1u << 16) | 32763, 0, 4096, true);
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	heap = heap_in_use();
	for (uint32_t as = 0; as < 16; as++) {
		r = region((as << 16) | 32767, 0, 4096, as & 1);
		assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	}
	/* x86: two address spaces (SMM), 32764 user slot ids. */
	r = region((2u << 16) | 1, 0, 4096, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	r = region(32764, 0, 4096, true);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	/* The kernel refuses the next (it overlaps): no growth either. */
	for (uint32_t id = 100; id < 200; id++) {
		r = region((1u << 16) | id, 0, 4096, true);
		assert_int_equal(kvmnc_set_region(h, &r), -EEXIST);
	}
	assert_int_equal(OBJ(h)->nc.cap, cap);
	assert_true(heap_in_use() < heap + 4096);
	kvmnc_close(h);

	/* A VM type with private memory has one address space. */
	fake_reset(fake_personality("patched-v2"));
	vm = fake_create_vm_type(FAKE_VM_SW_PROTECTED);
	KVMNC_OPTS(kvmnc_open_opts, o);
	assert_int_equal(kvmnc_open(vm, &o, &h), 0);
	r = region((1u << 16) | 1, 0, 4096, false);
	assert_int_equal(kvmnc_set_region(h, &r), -EINVAL);
	kvmnc_close(h);
}

static void set_region_on_guard(struct kvmnc *h, size_t claimed, int want)
{
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvmnc_region *r;

	assert_true(p != MAP_FAILED);
	assert_int_equal(mprotect(p + 4096, 4096, PROT_NONE), 0);
	/* The struct ends where the inaccessible page starts. */
	r = (struct kvmnc_region *)(p + 4096 - sizeof(*r));
	*r = region(1, 0, 4096, false);
	r->sz = claimed;
	assert_int_equal(kvmnc_set_region(h, r), want);
	munmap(p, 8192);
}

/* Point 13: sz is bounded, and nothing of a region is read for a bad handle. */
static void test_sz_bounds(void **state)
{
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	set_region_on_guard(NULL, 1u << 20, -EBADF);
	set_region_on_guard(h, 1u << 20, -E2BIG);
	set_region_on_guard(h, (size_t)-1, -E2BIG);
	set_region_on_guard(h, sizeof(struct kvmnc_region), 0);
	kvmnc_close(h);
	set_region_on_guard(h, 1u << 20, -EBADF);
}

/*
 * Issue 19, bug 1: two VMM-owned plans for new non-coherent slots wait
 * while the table has room for exactly one more record. Each plan must
 * hold its own room: when the allocation after the first outcome fails,
 * the second outcome still has a place to go (1.1 wrote it past the end).
 */
static void test_plans_hold_their_room(void **state)
{
	struct kvmnc_region_plan plan = KVMNC_OPTS_INIT(kvmnc_region_plan);
	struct kvmnc_region r;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	for (uint32_t s = 1; s <= 7; s++) {
		r = region(s, (uint64_t)s << 30, 4096, true);
		assert_int_equal(kvmnc_set_region(h, &r), 0);
	}
	assert_int_equal(OBJ(h)->nc.n, 7);
	for (uint32_t s = 8; s <= 9; s++) {
		r = region(s, (uint64_t)s << 30, 4096, true);
		assert_int_equal(kvmnc_region_prepare(h, &r, &plan), 0);
	}
	for (uint32_t s = 8; s <= 9; s++) {
		/* Whatever the outcome call allocates fails; it needs nothing new. */
		fake_fail_alloc_nth(1);
		assert_int_equal(kvmnc_region_complete(h, s, 0), 0);
		fake_fail_alloc_nth(0);
		assert_true(OBJ(h)->nc.n <= OBJ(h)->nc.cap);
	}
	assert_int_equal(OBJ(h)->nc.n, 9);
	assert_int_equal(kvmnc_region_removed(h, 8), 0);
	assert_int_equal(kvmnc_region_removed(h, 9), 0);
	kvmnc_close(h);
}

/*
 * Issue 19, bug 5: with the VIRTIO device as the VM-wide mechanism, each
 * transition of the VM's non-coherent count zaps every stage-2 mapping of
 * the VM. Mapping and unmapping one blob 100 times made 200 of them;
 * armed, the mechanism stays in force and there is one transition at the
 * arm and one at the disarm, while only the blob is non-coherent.
 */
static void test_vm_wide_armed(void **state)
{
	struct kvmnc_snapshot *snap;
	struct fake_vm_state vs;
	struct kvmnc_region r;
	struct kvmnc *h;
	int vm;

	(void)state;
	h = fake_handle("patched-6.12", KVMNC_SCOPE_VM, KVMNC_MECH_VIRTIO_DEVICE, &vm);
	for (int i = 0; i < 100; i++) {
		r = region(4, 1ULL << 32, 1 * MB, true);
		assert_int_equal(kvmnc_set_region(h, &r), 0);
		r.memory_size = 0;
		assert_int_equal(kvmnc_set_region(h, &r), 0);
	}
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.vm_wide_transitions, 200);

	assert_int_equal(kvmnc_vm_wide_arm(h), 0);
	assert_int_equal(kvmnc_vm_wide_arm(h), 0); /* armed already: nothing */
	assert_int_equal(kvmnc_is_noncoherent(h), 0);
	for (int i = 0; i < 100; i++) {
		r = region(4, 1ULL << 32, 1 * MB, true);
		assert_int_equal(kvmnc_set_region(h, &r), 0);
		assert_int_equal(kvmnc_is_noncoherent(h), 1);
		r.memory_size = 0;
		assert_int_equal(kvmnc_set_region(h, &r), 0);
		assert_int_equal(kvmnc_is_noncoherent(h), 0);
	}
	/* Only what is declared is non-coherent: a plain slot stays plain. */
	r = region(5, 2ULL << 32, 1 * MB, false);
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	r = region(4, 1ULL << 32, 1 * MB, true);
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	assert_int_equal(kvmnc_snapshot_take(h, sizeof(struct kvmnc_range), &snap), 0);
	assert_int_equal(snap->count, 1);
	assert_int_equal(kvmnc_snapshot_range(snap, 0)->slot, 4);
	kvmnc_snapshot_free(snap);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.vm_wide_transitions, 201);
	assert_int_equal(vs.noncoherent_devices, 1);

	/* Disarmed with a region left: the device stays for it, until it goes. */
	assert_int_equal(kvmnc_vm_wide_disarm(h), 0);
	assert_int_equal(kvmnc_vm_wide_disarm(h), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 1);
	r.memory_size = 0;
	assert_int_equal(kvmnc_set_region(h, &r), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.noncoherent_devices, 0);
	assert_int_equal(vs.vm_wide_transitions, 202);

	/* Armed until close: one transition each way. */
	assert_int_equal(kvmnc_vm_wide_arm(h), 0);
	kvmnc_close(h);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.vm_wide_transitions, 204);
	assert_int_equal(vs.devices, 0);

	/* Nothing to arm where the mechanism is per slot; nothing at all without one. */
	h = fake_handle("patched-6.12", KVMNC_SCOPE_SLOT, 0, &vm);
	assert_int_equal(kvmnc_vm_wide_arm(h), 0);
	fake_vm_state(vm, &vs);
	assert_int_equal(vs.devices, 0);
	kvmnc_close(h);
	h = fake_handle("debian-6.1", KVMNC_SCOPE_VM, 0, &vm);
	assert_int_equal(kvmnc_vm_wide_arm(h), -EOPNOTSUPP);
	kvmnc_close(h);
	assert_int_equal(kvmnc_vm_wide_arm(h), -EBADF);
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
		cmocka_unit_test_teardown(test_vmm_owned_flag, teardown_fake),
		cmocka_unit_test_teardown(test_vmm_owned_vm_wide, teardown_fake),
		cmocka_unit_test_teardown(test_resync, teardown_fake),
		cmocka_unit_test_teardown(test_failures_grow_nothing, teardown_fake),
		cmocka_unit_test_teardown(test_sz_bounds, teardown_fake),
		cmocka_unit_test_teardown(test_plans_hold_their_room, teardown_fake),
		cmocka_unit_test_teardown(test_vm_wide_armed, teardown_fake),
		cmocka_unit_test_teardown(test_abort_and_resync, teardown_fake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
