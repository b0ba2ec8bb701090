// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The KVM VIRTIO device path. Each device model the VMM enables gets its own
 * KVM device; the kernel counts them and honors guest PAT VM-wide while any
 * has KVM_DEV_VIRTIO_NONCOHERENT_SET. Closing the device fd drops the count.
 */
#include <errno.h>

#include "compat-kvm.h"
#include "internal.h"

/* A new device fd with NONCOHERENT_SET done, or negative errno and no fd. */
int kvmnc_create_virtio_device(int vm_fd)
{
	struct kvm_create_device cd = {.type = KVM_DEV_TYPE_VIRTIO};
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VIRTIO_NONCOHERENT,
		.attr = KVM_DEV_VIRTIO_NONCOHERENT_SET,
	};
	int r;

	r = SYS(ioctl, vm_fd, KVM_CREATE_DEVICE, (unsigned long)&cd);
	if (r < 0)
		return r;
	r = SYS(ioctl, (int)cd.fd, KVM_SET_DEVICE_ATTR, (unsigned long)&attr);
	if (r < 0) {
		SYS(close, (int)cd.fd);
		return r;
	}
	return (int)cd.fd;
}

static struct kvmnc_dev *find_dev(struct kvmnc *h, uint32_t id)
{
	for (uint32_t i = 0; i < h->ndevs; i++)
		if (h->devs[i].id == id)
			return &h->devs[i];
	return NULL;
}

KVMNC_API int kvmnc_device_enable(struct kvmnc *h, uint32_t device_id)
{
	int r, fd = -1;

	r = kvmnc_handle_get(h);
	if (r < 0)
		return r;
	if (find_dev(h, device_id))
		goto out;
	/* Room first, so that nothing is created that could not be recorded. */
	r = kvmnc_grow((void **)&h->devs, &h->cap_devs, h->ndevs + 1, sizeof(*h->devs));
	if (r < 0)
		goto out;

	switch (h->device_mech) {
	case KVMNC_MECH_VIRTIO_DEVICE:
		fd = kvmnc_create_virtio_device(h->vm_fd);
		if (fd < 0)
			r = fd;
		break;
	case KVMNC_MECH_GUEST_PAT_QUIRK:
		r = kvmnc_quirk_disable(h);
		break;
	case KVMNC_MECH_NATIVE:
		break;
	default:
		r = -EOPNOTSUPP;
	}
	if (r < 0)
		goto out;
	h->devs[h->ndevs].id = device_id;
	h->devs[h->ndevs].fd = fd;
	h->ndevs++;
	pr_debug("device %u non-coherent via %s", device_id, kvmnc_mechanism_name(h->device_mech));
out:
	kvmnc_handle_put(h);
	return r;
}

KVMNC_API int kvmnc_device_disable(struct kvmnc *h, uint32_t device_id)
{
	struct kvmnc_dev *d;
	int r;

	r = kvmnc_handle_get(h);
	if (r < 0)
		return r;
	d = find_dev(h, device_id);
	if (!d) {
		r = -ENOENT;
	} else {
		if (d->fd >= 0)
			SYS(close, d->fd);
		*d = h->devs[--h->ndevs];
	}
	kvmnc_handle_put(h);
	return r;
}

void kvmnc_close_devices(struct kvmnc *h)
{
	for (uint32_t i = 0; i < h->ndevs; i++)
		if (h->devs[i].fd >= 0)
			SYS(close, h->devs[i].fd);
	h->ndevs = 0;
	if (h->region_dev_fd >= 0)
		SYS(close, h->region_dev_fd);
	h->region_dev_fd = -1;
}
