// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The memslot path. A non-coherent region gets KVM_MEM_NON_COHERENT_DMA
 * where the kernel takes it, or rides on a VM-wide mechanism; plain regions
 * pass through. Every change is the same three steps, whoever issues the
 * ioctl: plan (validate, decide the flags, take the VM-wide step first),
 * the KVM call, commit (make the library's view what KVM did).
 * kvmnc_set_region() runs all three; a VMM that keeps its own memslot code
 * runs the middle one itself between kvmnc_region_prepare() and
 * kvmnc_region_complete().
 *
 * Slots are tracked in two tables keyed by slot: non-coherent ones, and,
 * where a device can be enabled, plain ones that went through the library
 * (the guest memory an enabled device may write; a record each, room taken
 * after KVM's success so that a failed call grows nothing). Every change is bracketed by
 * kvmnc_ncs_begin()/end(), which keep the copy helpers' lock-free view
 * (ncstate.c) in step.
 */
#include <errno.h>
#include <string.h>

#include "compat-kvm.h"
#include "internal.h"

#define KNOWN_MEM_FLAGS (KVMNC_MEM_LOG_DIRTY_PAGES | KVMNC_MEM_READONLY | KVMNC_MEM_GUEST_MEMFD)

struct plan {
	struct kvmnc_region reg; /* flags without the non-coherent bit */
	uint32_t flags;		 /* what goes to KVM */
	bool nc;		 /* the slot is to be non-coherent (not for deletes) */
	bool took_device;	 /* this plan created the region device */
};

/* Without the address fields a region means nothing (and 0 would delete). */
static int region_in(const struct kvmnc_region *r, struct kvmnc_region *reg)
{
	if (!r)
		return -EINVAL;
	return kvmnc_struct_in(reg, sizeof(*reg), r,
			       offsetofend(struct kvmnc_region, userspace_addr));
}

/* What KVM would refuse anyway (deletes included), refused before any kernel call. */
static int check_region(const struct kvmnc *h, const struct kvmnc_region *r, bool vmm)
{
	const uint64_t mask = KVMNC_PAGE_SIZE - 1;
	uint32_t known = KNOWN_MEM_FLAGS | (vmm ? KVMNC_MEM_NON_COHERENT_DMA : 0);
	bool nc = (r->kvmnc_flags & KVMNC_REGION_NONCOHERENT) ||
		  (r->flags & KVMNC_MEM_NON_COHERENT_DMA);

	if ((r->slot >> 16) >= h->nr_as || (r->slot & 0xffff) >= h->nr_slots)
		return -EINVAL;
	if (r->flags & ~known)
		return -EINVAL;
	if (r->kvmnc_flags & ~KVMNC_REGION_NONCOHERENT)
		return -EINVAL;
	if ((r->guest_phys_addr | r->memory_size | r->userspace_addr) & mask)
		return -EINVAL;
	if ((r->flags & KVMNC_MEM_GUEST_MEMFD) && (r->guest_memfd_offset & mask))
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr ||
	    r->userspace_addr + r->memory_size < r->userspace_addr)
		return -EINVAL;
	/* Private memory is never mapped by a device doing host DMA. */
	if ((r->flags & KVMNC_MEM_GUEST_MEMFD) && nc && r->memory_size)
		return -EINVAL;
	return 0;
}

/*
 * Makes the VM-wide mechanism cover a new non-coherent region. Only the
 * VIRTIO device leaves something behind to undo: *took says so.
 */
static int cover_region(struct kvmnc *h, bool *took)
{
	int fd;

	*took = false;
	switch (h->region_mech) {
	case KVMNC_MECH_NATIVE:
	case KVMNC_MECH_MEMSLOT_FLAG:
		return 0;
	case KVMNC_MECH_GUEST_PAT_QUIRK:
		return kvmnc_quirk_disable(h); /* done at open: a no-op */
	case KVMNC_MECH_VIRTIO_DEVICE:
		if (h->region_dev_fd >= 0)
			return 0;
		fd = kvmnc_kvm_virtio_device(h->vm_fd, h->host.feat.virtio_device_type);
		if (fd < 0)
			return fd;
		h->region_dev_fd = fd;
		*took = true;
		return 0;
	}
	return -EOPNOTSUPP;
}

/*
 * The region device stays while any non-coherent region exists or is
 * planned, or while the handle is armed: each time it comes or goes, KVM
 * zaps every stage-2 mapping of the VM.
 */
static void drop_unused_device(struct kvmnc *h)
{
	if (!h->armed && h->nc.n == 0 && h->pending_nc == 0 && h->region_dev_fd >= 0) {
		SYS(close, h->region_dev_fd);
		h->region_dev_fd = -1;
	}
}

static int plan_change(struct kvmnc *h, const struct kvmnc_region *reg, struct plan *p)
{
	const struct kvmnc_slot *rec = kvmnc_table_find(&h->nc, reg->slot);
	bool flag = h->region_mech == KVMNC_MECH_MEMSLOT_FLAG;
	int r;

	memset(p, 0, sizeof(*p));
	p->reg = *reg;
	p->reg.flags &= ~KVMNC_MEM_NON_COHERENT_DMA;
	p->flags = p->reg.flags;
	if (reg->memory_size == 0) {
		/* KVM ignores the flags of a delete but checks them: keep the slot's. */
		if (rec && flag)
			p->flags |= KVMNC_MEM_NON_COHERENT_DMA;
		return 0;
	}
	p->nc = (reg->kvmnc_flags & KVMNC_REGION_NONCOHERENT) ||
		(reg->flags & KVMNC_MEM_NON_COHERENT_DMA);
	if (!p->nc)
		return 0;
	if (h->region_mech == KVMNC_MECH_NONE)
		return -EOPNOTSUPP;
	if (!rec) {
		/*
		 * Room first, so that a kernel success is always recorded: for
		 * this slot and for every plan still waiting for its outcome,
		 * each of which inserts when it completes.
		 */
		r = kvmnc_table_reserve_n(&h->nc, h->pending_nc + 1);
		if (r < 0)
			return r;
		r = cover_region(h, &p->took_device);
		if (r < 0)
			return r;
	}
	if (flag)
		p->flags |= KVMNC_MEM_NON_COHERENT_DMA;
	return 0;
}

/*
 * KVM's answer is the truth: a success makes the slot what was asked, so a
 * plain success over a stale non-coherent record (the VMM deleted the slot
 * with its own ioctl) drops it, and a failure changes nothing.
 */
static void commit(struct kvmnc *h, const struct plan *p, int result)
{
	struct kvmnc_slot *rec = kvmnc_table_find(&h->nc, p->reg.slot);
	struct kvmnc_slot *pl = kvmnc_table_find(&h->plain, p->reg.slot);

	if (result < 0) {
		/* Nothing changed. */
	} else if (p->reg.memory_size == 0) {
		if (rec)
			kvmnc_table_remove(&h->nc, rec);
		if (pl)
			kvmnc_table_remove(&h->plain, pl);
	} else if (p->nc) {
		/* plan_change() reserved this record's room. */
		if (!rec)
			rec = kvmnc_table_insert(&h->nc, p->reg.slot);
		if (rec) {
			rec->flags = p->flags;
			rec->gpa = p->reg.guest_phys_addr;
			rec->size = p->reg.memory_size;
			rec->hva = p->reg.userspace_addr;
		} else {
			hpr_warn(h, "slot %#x: no room reserved for its record (a library bug)",
				 p->reg.slot);
		}
		if (pl)
			kvmnc_table_remove(&h->plain, pl);
	} else if (h->device_mech == KVMNC_MECH_NONE) {
		/* No device can be enabled: plain memory never needs to be known. */
		if (rec)
			kvmnc_table_remove(&h->nc, rec);
	} else {
		if (rec)
			kvmnc_table_remove(&h->nc, rec);
		if (!pl && kvmnc_table_reserve(&h->plain) == 0)
			pl = kvmnc_table_insert(&h->plain, p->reg.slot);
		if (pl) {
			pl->flags = p->flags;
			pl->gpa = p->reg.guest_phys_addr;
			pl->size = p->reg.memory_size;
			pl->hva = p->reg.userspace_addr;
		} else {
			/* Unknown guest memory: a device makes every address count. */
			h->plain_lost = true;
		}
	}
	drop_unused_device(h);
	if (result == 0)
		hpr_debug(h, "slot %#x: %s (flags %#x)", p->reg.slot,
			  !p->reg.memory_size ? "deleted"
			  : p->nc	      ? "non-coherent"
					      : "plain",
			  p->flags);
}

KVMNC_API int kvmnc_set_region(struct kvmnc *hd, const struct kvmnc_region *r)
{
	struct kvmnc *h;
	struct kvmnc_region reg;
	struct plan p;
	int err;

	/* The handle before the region: nothing of @r is read for a bad handle. */
	err = kvmnc_handle_get(hd, &h);
	if (err < 0)
		return err;
	err = region_in(r, &reg);
	if (err == 0)
		err = check_region(h, &reg, false);
	/* The VMM is changing this slot itself: its outcome comes first. */
	if (err == 0 && kvmnc_table_find(&h->pending, reg.slot))
		err = -EALREADY;
	if (err == 0)
		err = plan_change(h, &reg, &p);
	if (err == 0) {
		err = kvmnc_kvm_set_region(h->vm_fd, h->host.user_memory2, &p.reg, p.flags);
		kvmnc_ncs_begin(h, reg.slot);
		commit(h, &p, err);
		kvmnc_ncs_end(h, reg.slot);
	}
	kvmnc_handle_put(h);
	return err;
}

KVMNC_API int kvmnc_region_prepare(struct kvmnc *hd, const struct kvmnc_region *r,
				   struct kvmnc_region_plan *plan)
{
	struct kvmnc *h;
	struct kvmnc_region_plan out = {.sz = sizeof(out)};
	struct kvmnc_pending *pend;
	struct kvmnc_region reg;
	struct plan p;
	int err;

	err = kvmnc_handle_get(hd, &h);
	if (err < 0)
		return err;
	err = plan ? kvmnc_struct_out_ok(plan) : -EINVAL;
	if (err == 0)
		err = region_in(r, &reg);
	if (err == 0)
		err = check_region(h, &reg, true);
	if (err == 0 && kvmnc_table_find(&h->pending, reg.slot))
		err = -EALREADY;
	if (err == 0)
		err = kvmnc_table_reserve(&h->pending);
	if (err == 0)
		err = plan_change(h, &reg, &p);
	if (err < 0)
		goto out;

	kvmnc_ncs_begin(h, reg.slot);
	pend = kvmnc_table_insert(&h->pending, reg.slot);
	pend->r = p.reg;
	pend->flags = p.flags;
	pend->nc = p.nc;
	pend->took_device = p.took_device;
	/* A new non-coherent slot counts from now: the VMM may be mapping it already. */
	pend->counts = p.nc && !kvmnc_table_find(&h->nc, reg.slot);
	h->pending_nc += pend->counts;
	kvmnc_table_reserve(&h->pending);
	kvmnc_ncs_end(h, reg.slot);

	out.flags = p.flags;
	out.add_flags = p.flags & ~p.reg.flags;
	out.mechanism = p.nc ? h->region_mech : KVMNC_MECH_NONE;
	out.vm_wide_step = p.took_device;
out:
	kvmnc_handle_put(h);
	if (err == 0)
		kvmnc_struct_out(plan, &out, sizeof(out));
	return err;
}

KVMNC_API int kvmnc_region_complete(struct kvmnc *hd, uint32_t slot, int result)
{
	struct kvmnc *h;
	struct kvmnc_pending *pend;
	struct plan p;
	int err;

	err = kvmnc_handle_get(hd, &h);
	if (err < 0)
		return err;
	pend = kvmnc_table_find(&h->pending, slot);
	if (result > 0) {
		err = -EINVAL;
	} else if (!pend) {
		err = kvmnc_err(-ENOENT, "No region plan waits for an outcome on this memslot");
	} else {
		p = (struct plan){
			.reg = pend->r,
			.flags = pend->flags,
			.nc = pend->nc,
			.took_device = pend->took_device,
		};
		kvmnc_ncs_begin(h, slot);
		h->pending_nc -= pend->counts;
		kvmnc_table_remove(&h->pending, pend);
		commit(h, &p, result);
		kvmnc_ncs_end(h, slot);
	}
	kvmnc_handle_put(h);
	return err;
}

KVMNC_API int kvmnc_region_abort(struct kvmnc *hd, uint32_t slot)
{
	/* What a failed outcome does: the plan goes, its VM-wide step with it. */
	return kvmnc_region_complete(hd, slot, -ECANCELED);
}

static bool listed(const uint32_t *slots, size_t n, uint32_t slot)
{
	for (size_t i = 0; i < n; i++)
		if (slots[i] == slot)
			return true;
	return false;
}

/* Forgets every record of @t not in @slots and without a plan; how many. */
static int forget_unlisted(struct kvmnc *h, struct kvmnc_table *t, const uint32_t *slots, size_t n)
{
	int dropped = 0;

	for (uint32_t i = 0; i < t->n;) {
		struct kvmnc_slot *rec = kvmnc_table_at(t, i);
		uint32_t slot = rec->slot;

		if (listed(slots, n, slot) || kvmnc_table_find(&h->pending, slot)) {
			i++;
			continue;
		}
		/* The last record moves into this place: look at i again. */
		kvmnc_ncs_begin(h, slot);
		kvmnc_table_remove(t, rec);
		kvmnc_ncs_end(h, slot);
		dropped++;
	}
	return dropped;
}

KVMNC_API int kvmnc_region_resync(struct kvmnc *hd, const uint32_t *slots, size_t n)
{
	struct kvmnc *h;
	int err;

	if (!slots && n)
		return -EINVAL;
	err = kvmnc_handle_get(hd, &h);
	if (err < 0)
		return err;
	err = forget_unlisted(h, &h->nc, slots, n) + forget_unlisted(h, &h->plain, slots, n);
	drop_unused_device(h);
	if (err)
		hpr_info(h, "resync: forgot %d memslots the VMM no longer has", err);
	kvmnc_handle_put(h);
	return err;
}

KVMNC_API int kvmnc_region_removed(struct kvmnc *hd, uint32_t slot)
{
	struct kvmnc *h;
	struct kvmnc_slot *rec, *pl;
	int err;

	err = kvmnc_handle_get(hd, &h);
	if (err < 0)
		return err;
	rec = kvmnc_table_find(&h->nc, slot);
	pl = kvmnc_table_find(&h->plain, slot);
	if (kvmnc_table_find(&h->pending, slot)) {
		err = -EALREADY;
	} else if (!rec && !pl) {
		err = kvmnc_err(-ENOENT, "The library knows no memslot at this slot");
	} else {
		kvmnc_ncs_begin(h, slot);
		if (rec)
			kvmnc_table_remove(&h->nc, rec);
		else
			kvmnc_table_remove(&h->plain, pl);
		drop_unused_device(h);
		kvmnc_ncs_end(h, slot);
	}
	kvmnc_handle_put(h);
	return err;
}

KVMNC_API int kvmnc_vm_wide_arm(struct kvmnc *hd)
{
	struct kvmnc *h;
	bool took;
	int err;

	err = kvmnc_handle_get(hd, &h);
	if (err < 0)
		return err;
	if (!h->armed) {
		/* The step a non-coherent region would take, taken now and kept. */
		err = cover_region(h, &took);
		if (err == 0) {
			h->armed = true;
			hpr_debug(h, "VM-wide mechanism %s armed%s",
				  kvmnc_mechanism_name(h->region_mech),
				  took ? " (VIRTIO device created)" : "");
		}
	}
	kvmnc_handle_put(h);
	return err;
}

KVMNC_API int kvmnc_vm_wide_disarm(struct kvmnc *hd)
{
	struct kvmnc *h;
	int err;

	err = kvmnc_handle_get(hd, &h);
	if (err < 0)
		return err;
	h->armed = false;
	drop_unused_device(h);
	kvmnc_handle_put(h);
	return 0;
}
