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
