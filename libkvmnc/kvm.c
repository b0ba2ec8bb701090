// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The KVM ioctls the library issues, each in one place: the probe's trials
 * and the handle's calls share them, so a struct is filled the same way
 * whoever asks.
 */
#include <errno.h>

#include "compat-kvm.h"
#include "internal.h"

_Static_assert(KVMNC_MEM_LOG_DIRTY_PAGES == KVM_MEM_LOG_DIRTY_PAGES, "LOG_DIRTY_PAGES");
_Static_assert(KVMNC_MEM_READONLY == KVM_MEM_READONLY, "READONLY");
_Static_assert(KVMNC_MEM_GUEST_MEMFD == KVM_MEM_GUEST_MEMFD, "GUEST_MEMFD");
_Static_assert(KVMNC_MEM_NON_COHERENT_DMA == KVM_MEM_NON_COHERENT_DMA, "NON_COHERENT_DMA");

int kvmnc_kvm_api_version(int fd)
{
	return SYS(ioctl, fd, KVM_GET_API_VERSION, 0);
}

int kvmnc_kvm_create_vm(int kvm_fd, unsigned long type)
{
	return SYS(ioctl, kvm_fd, KVM_CREATE_VM, type);
}

int kvmnc_kvm_check(int fd, unsigned long cap)
{
	return SYS(ioctl, fd, KVM_CHECK_EXTENSION, cap);
}

int kvmnc_kvm_set_region(int vm_fd, bool v2, const struct kvmnc_region *r, uint32_t flags)
{
	if (v2) {
		struct kvm_userspace_memory_region2 m = {
			.slot = r->slot,
			.flags = flags,
			.guest_phys_addr = r->guest_phys_addr,
			.memory_size = r->memory_size,
			.userspace_addr = r->userspace_addr,
			.guest_memfd_offset = r->guest_memfd_offset,
			.guest_memfd = (uint32_t)r->guest_memfd,
		};
		return SYS(ioctl, vm_fd, KVM_SET_USER_MEMORY_REGION2, (unsigned long)&m);
	}
	if (flags & KVM_MEM_GUEST_MEMFD)
		return -EOPNOTSUPP;

	struct kvm_userspace_memory_region m = {
		.slot = r->slot,
		.flags = flags,
		.guest_phys_addr = r->guest_phys_addr,
		.memory_size = r->memory_size,
		.userspace_addr = r->userspace_addr,
	};
	return SYS(ioctl, vm_fd, KVM_SET_USER_MEMORY_REGION, (unsigned long)&m);
}

int kvmnc_kvm_device_test(int vm_fd, uint32_t type)
{
	struct kvm_create_device cd = {.type = type, .flags = KVM_CREATE_DEVICE_TEST};

	return SYS(ioctl, vm_fd, KVM_CREATE_DEVICE, (unsigned long)&cd);
}

int kvmnc_kvm_device_create(int vm_fd, uint32_t type)
{
	struct kvm_create_device cd = {.type = type};
	int r = SYS(ioctl, vm_fd, KVM_CREATE_DEVICE, (unsigned long)&cd);

	return r < 0 ? r : (int)cd.fd;
}

static struct kvm_device_attr nc_attr(void)
{
	return (struct kvm_device_attr){
		.group = KVM_DEV_VIRTIO_NONCOHERENT,
		.attr = KVM_DEV_VIRTIO_NONCOHERENT_SET,
	};
}

int kvmnc_kvm_device_has_nc(int dev_fd)
{
	struct kvm_device_attr attr = nc_attr();

	return SYS(ioctl, dev_fd, KVM_HAS_DEVICE_ATTR, (unsigned long)&attr);
}

int kvmnc_kvm_virtio_device(int vm_fd, uint32_t type)
{
	struct kvm_device_attr attr = nc_attr();
	int fd, r;

	fd = kvmnc_kvm_device_create(vm_fd, type);
	if (fd < 0)
		return fd;
	r = SYS(ioctl, fd, KVM_SET_DEVICE_ATTR, (unsigned long)&attr);
	if (r < 0) {
		SYS(close, fd);
		return r;
	}
	return fd;
}

int kvmnc_kvm_disable_quirks(int vm_fd, uint64_t quirks)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_DISABLE_QUIRKS2,
		.args[0] = quirks,
	};

	return SYS(ioctl, vm_fd, KVM_ENABLE_CAP, (unsigned long)&cap);
}

int kvmnc_kvm_enable_wbinvd(int vm_fd)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_EMULATE_WBINVD};

	return SYS(ioctl, vm_fd, KVM_ENABLE_CAP, (unsigned long)&cap);
}

int kvmnc_kvm_access_run(int kvm_fd, int vm_fd, uint64_t code_gpa, uint64_t data_gpa)
{
#if defined(__x86_64__) || defined(__i386__)
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = code_gpa & 0xf, .rflags = 2};
	struct kvm_run *run;
	void *map;
	int vcpu, size, r;

	if (code_gpa >= 0x10000 || data_gpa >= 0x10000)
		return -EINVAL;
	size = SYS(ioctl, kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		return size;
	if ((size_t)size < sizeof(*run))
		return -EPROTO;
	vcpu = SYS(ioctl, vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return vcpu;
	r = SYS(mmap_fd, vcpu, (size_t)size, &map);
	if (r < 0)
		goto out;
	run = map;
	r = SYS(ioctl, vcpu, KVM_GET_SREGS, (unsigned long)&sregs);
	if (r < 0)
		goto unmap;
	/* Real mode, CS at the code's 16-byte paragraph, DS at 0. */
	sregs.cs.base = code_gpa & ~0xfull;
	sregs.cs.selector = (uint16_t)(code_gpa >> 4);
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	r = SYS(ioctl, vcpu, KVM_SET_SREGS, (unsigned long)&sregs);
	if (r == 0)
		r = SYS(ioctl, vcpu, KVM_SET_REGS, (unsigned long)&regs);
	if (r == 0)
		r = SYS(ioctl, vcpu, KVM_RUN, 0);
	/* KVM_EXIT_MEMORY_FAULT comes with -EFAULT from KVM_RUN; the exit says why. */
	if (r == 0 || (r == -EFAULT && run->exit_reason == KVM_EXIT_MEMORY_FAULT))
		r = (int)run->exit_reason;
unmap:
	SYS(munmap, map, (size_t)size);
out:
	SYS(close, vcpu);
	return r;
#else
	(void)kvm_fd;
	(void)vm_fd;
	(void)code_gpa;
	(void)data_gpa;
	return -EOPNOTSUPP;
#endif
}
