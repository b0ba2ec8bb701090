// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The memslot path. A non-coherent region gets KVM_MEM_NON_COHERENT_DMA
 * where the kernel takes it, or rides on a VM-wide mechanism; plain regions
 * pass through. The handle keeps a table indexed by slot id so that each
 * call costs one ioctl and O(1) bookkeeping, however many slots there are.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compat-kvm.h"
#include "internal.h"

#define KNOWN_MEM_FLAGS (KVMNC_MEM_LOG_DIRTY_PAGES | KVMNC_MEM_READONLY | KVMNC_MEM_GUEST_MEMFD)

_Static_assert(KVMNC_MEM_LOG_DIRTY_PAGES == KVM_MEM_LOG_DIRTY_PAGES, "LOG_DIRTY_PAGES");
_Static_assert(KVMNC_MEM_READONLY == KVM_MEM_READONLY, "READONLY");
_Static_assert(KVMNC_MEM_GUEST_MEMFD == KVM_MEM_GUEST_MEMFD, "GUEST_MEMFD");

void kvmnc_free_slots(struct kvmnc *h)
{
	for (int i = 0; i < KVMNC_MAX_AS; i++) {
		free(h->slots[i]);
		h->slots[i] = NULL;
		h->nslots[i] = 0;
	}
}

static int check_region(const struct kvmnc_region *r)
{
	const uint64_t mask = KVMNC_PAGE_SIZE - 1;

	if ((r->slot >> 16) >= KVMNC_MAX_AS || (r->slot & 0xffff) >= KVMNC_MAX_SLOT_ID)
		return -EINVAL;
	if (r->flags & ~KNOWN_MEM_FLAGS)
		return -EINVAL;
	if (r->kvmnc_flags & ~KVMNC_REGION_NONCOHERENT)
		return -EINVAL;
	if (r->memory_size == 0)
		return 0;
	if ((r->guest_phys_addr | r->memory_size | r->userspace_addr) & mask)
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr ||
	    r->userspace_addr + r->memory_size < r->userspace_addr)
		return -EINVAL;
	/* Private memory is never mapped by a device doing host DMA. */
	if ((r->flags & KVMNC_MEM_GUEST_MEMFD) && (r->kvmnc_flags & KVMNC_REGION_NONCOHERENT))
		return -EINVAL;
	return 0;
}

static int set_memory_region(struct kvmnc *h, const struct kvmnc_region *r, uint32_t flags)
{
	if (h->host.user_memory2) {
		struct kvm_userspace_memory_region2 m = {
			.slot = r->slot,
			.flags = flags,
			.guest_phys_addr = r->guest_phys_addr,
			.memory_size = r->memory_size,
			.userspace_addr = r->userspace_addr,
			.guest_memfd_offset = r->guest_memfd_offset,
			.guest_memfd = (uint32_t)r->guest_memfd,
		};
		return SYS(ioctl, h->vm_fd, KVM_SET_USER_MEMORY_REGION2, (unsigned long)&m);
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
	return SYS(ioctl, h->vm_fd, KVM_SET_USER_MEMORY_REGION, (unsigned long)&m);
}

/* The caller has made room (before the kernel call, so this cannot fail). */
static void add_range(struct kvmnc *h, const struct kvmnc_region *r)
{
	h->ranges[h->nranges++] = (struct kvmnc_range){
		.start = r->userspace_addr,
		.len = r->memory_size,
		.slot = r->slot,
	};
}

static void del_range(struct kvmnc *h, uint32_t slot)
{
	for (uint32_t i = 0; i < h->nranges; i++) {
		if (h->ranges[i].slot == slot) {
			h->ranges[i] = h->ranges[--h->nranges];
			return;
		}
	}
}

/*
 * Makes the VM-wide mechanism cover a new non-coherent region. Only the
 * VIRTIO device leaves something behind to undo: *created says so.
 */
static int cover_region(struct kvmnc *h, bool *created)
{
	int fd;

	*created = false;
	switch (h->region_mech) {
	case KVMNC_MECH_NATIVE:
	case KVMNC_MECH_MEMSLOT_FLAG:
		return 0;
	case KVMNC_MECH_GUEST_PAT_QUIRK:
		return kvmnc_quirk_disable(h);
	case KVMNC_MECH_VIRTIO_DEVICE:
		if (h->region_dev_fd >= 0)
			return 0;
		fd = kvmnc_create_virtio_device(h->vm_fd);
		if (fd < 0)
			return fd;
		h->region_dev_fd = fd;
		*created = true;
		return 0;
	}
	return -EOPNOTSUPP;
}

static void drop_region_device(struct kvmnc *h)
{
	if (h->nc_regions == 0 && h->region_dev_fd >= 0) {
		SYS(close, h->region_dev_fd);
		h->region_dev_fd = -1;
	}
}

KVMNC_API int kvmnc_set_region(struct kvmnc *h, const struct kvmnc_region *r)
{
	struct kvmnc_region reg = {.sz = sizeof(reg)};
	struct kvmnc_slot *s;
	uint32_t as, id, flags;
	bool nc, created = false;
	int err;

	/* Without the address fields a region means nothing (and 0 would delete). */
	if (!r || r->sz < offsetofend(struct kvmnc_region, userspace_addr))
		return -EINVAL;
	err = kvmnc_check_opts(r, sizeof(*r));
	if (err < 0)
		return err;
	memcpy(&reg, r, r->sz < sizeof(reg) ? r->sz : sizeof(reg));
	err = check_region(&reg);
	if (err < 0)
		return err;
	as = reg.slot >> 16;
	id = reg.slot & 0xffff;
	nc = reg.kvmnc_flags & KVMNC_REGION_NONCOHERENT;

	err = kvmnc_handle_get(h);
	if (err < 0)
		return err;

	/* Room first, so that a kernel success is always recorded. */
	err = kvmnc_grow((void **)&h->slots[as], &h->nslots[as], id + 1, sizeof(*h->slots[as]));
	if (err < 0)
		goto out;
	s = &h->slots[as][id];

	if (reg.memory_size == 0) {
		err = set_memory_region(h, &reg, reg.flags);
		if (err < 0)
			goto out;
		if (s->present && s->noncoherent) {
			del_range(h, reg.slot);
			h->nc_regions--;
			drop_region_device(h);
		}
		memset(s, 0, sizeof(*s));
		goto out;
	}

	if (s->present && s->noncoherent != nc) {
		/* As in the kernel: fixed at creation, whatever the mechanism. */
		err = -EINVAL;
		goto out;
	}
	flags = reg.flags;
	if (nc && !s->present) {
		if (h->region_mech == KVMNC_MECH_NONE) {
			err = -EOPNOTSUPP;
			goto out;
		}
		err = kvmnc_grow((void **)&h->ranges, &h->cap_ranges, h->nranges + 1,
				 sizeof(*h->ranges));
		if (err == 0)
			err = cover_region(h, &created);
		if (err < 0)
			goto out;
	}
	if (nc && h->region_mech == KVMNC_MECH_MEMSLOT_FLAG)
		flags |= KVM_MEM_NON_COHERENT_DMA;

	err = set_memory_region(h, &reg, flags);
	if (err < 0) {
		if (created) {
			SYS(close, h->region_dev_fd);
			h->region_dev_fd = -1;
		}
		goto out;
	}
	if (nc && !s->present) {
		add_range(h, &reg);
		h->nc_regions++;
	} else if (nc) {
		for (uint32_t i = 0; i < h->nranges; i++)
			if (h->ranges[i].slot == reg.slot)
				h->ranges[i] = (struct kvmnc_range){reg.userspace_addr,
								    reg.memory_size, reg.slot};
	}
	*s = (struct kvmnc_slot){
		.gpa = reg.guest_phys_addr,
		.size = reg.memory_size,
		.hva = reg.userspace_addr,
		.flags = reg.flags,
		.present = true,
		.noncoherent = nc,
	};
out:
	kvmnc_handle_put(h);
	return err;
}
