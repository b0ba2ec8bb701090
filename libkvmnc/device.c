// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Device models doing non-coherent DMA. With the VIRTIO device mechanism
 * each gets its own KVM device; the kernel counts them and honors guest PAT
 * VM-wide while any has KVM_DEV_VIRTIO_NONCOHERENT_SET. Closing the device
 * fd drops the count.
 */
#include <errno.h>

#include "internal.h"

KVMNC_API int kvmnc_device_enable(struct kvmnc *hd, uint32_t device_id)
{
	struct kvmnc *h;
	struct kvmnc_dev *d;
	int r, fd = -1;

	r = kvmnc_handle_get(hd, &h);
	if (r < 0)
		return r;
	if (kvmnc_table_find(&h->devs, device_id))
		goto out;
	/* Room first, so that nothing is created that could not be recorded. */
	r = kvmnc_table_reserve(&h->devs);
	if (r < 0)
		goto out;

	switch (h->device_mech) {
	case KVMNC_MECH_VIRTIO_DEVICE:
		fd = kvmnc_kvm_virtio_device(h->vm_fd, h->host.feat.virtio_device_type);
		if (fd < 0)
			r = fd;
		break;
	case KVMNC_MECH_GUEST_PAT_QUIRK:
		/* Disabled at open or never: KVM would not recompute what is mapped. */
		if (!h->quirk_disabled) {
			hpr_warn(h,
				 "device %u: the guest-PAT quirk was not disabled at open "
				 "(KVMNC_OPEN_DEVICES); memory mapped by now would stay WB",
				 device_id);
			r = -EBUSY;
		}
		break;
	case KVMNC_MECH_NATIVE:
		break;
	default:
		r = -EOPNOTSUPP;
	}
	if (r < 0)
		goto out;
	d = kvmnc_table_insert(&h->devs, device_id);
	d->fd = fd;
	kvmnc_table_reserve(&h->devs);
	kvmnc_ncs_devices(h, h->devs.n - 1);
	hpr_debug(h, "device %u non-coherent via %s", device_id,
		  kvmnc_mechanism_name(h->device_mech));
out:
	kvmnc_handle_put(h);
	return r;
}

KVMNC_API int kvmnc_device_disable(struct kvmnc *hd, uint32_t device_id)
{
	struct kvmnc *h;
	struct kvmnc_dev *d;
	int r;

	r = kvmnc_handle_get(hd, &h);
	if (r < 0)
		return r;
	d = kvmnc_table_find(&h->devs, device_id);
	if (!d) {
		r = kvmnc_err(-ENOENT, "This device model is not enabled on the handle");
	} else {
		if (d->fd >= 0)
			SYS(close, d->fd);
		kvmnc_table_remove(&h->devs, d);
		kvmnc_ncs_devices(h, h->devs.n + 1);
	}
	kvmnc_handle_put(h);
	return r;
}
